// SPDX-License-Identifier: GPL-2.0
/*
 * The two libraries against the daemon: libvsswriter writers (their own
 * threads, their watchdog, their reconnection) and the libvss session
 * API, talking over a real socket to the daemon's core, which runs in a
 * thread of its own with a fake provider.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_provider.h"
#include "harness.h"
#include "libvss.h"
#include "libvsswriter.h"

static char sock_path[600], state_dir[600], storage[600];

/* ---- the daemon, in a thread ---- */

struct daemon_thread {
	struct wd_daemon *d;
	struct fake_provider fp;
	pthread_t thread;
	volatile int stop;
};

static void *daemon_main(void *arg)
{
	struct daemon_thread *dt = arg;

	while (!dt->stop)
		wd_daemon_run_once(dt->d, 20);
	return NULL;
}

static void daemon_start(struct daemon_thread *dt)
{
	struct wd_options opts = { .listen_fd = -1 };
	struct wd_config cfg;
	char why[256];

	memset(dt, 0, sizeof(*dt));
	wd_config_defaults(&cfg);
	cfg.hook_dir[0] = '\0';
	opts.socket_path = sock_path;
	opts.state_dir = state_dir;
	opts.provider = &fake_provider_ops;
	opts.provider_ctx = &dt->fp;
	if (wd_daemon_new(&opts, &cfg, &dt->d, why, sizeof(why))) {
		t_diag("daemon: %s", why);
		exit(1);
	}
	pthread_create(&dt->thread, NULL, daemon_main, dt);
}

static void daemon_stop(struct daemon_thread *dt)
{
	dt->stop = 1;
	pthread_join(dt->thread, NULL);
	wd_daemon_free(dt->d);
}

/* ---- test writers ---- */

struct recorder {
	pthread_mutex_t lock;
	char name[32];
	char log[64][48];
	int count;
	uint32_t fail_step;
	uint32_t fail_code;
	bool watchdog_abort;
	bool frozen;
	unsigned int freeze_sleep_ms;
};

static void record(struct recorder *r, const char *what, bool watchdog)
{
	pthread_mutex_lock(&r->lock);
	if (r->count < 64)
		snprintf(r->log[r->count++], sizeof(r->log[0]), "%s", what);
	if (watchdog)
		r->watchdog_abort = true;
	pthread_mutex_unlock(&r->lock);
}

static int on_event(struct vsw_writer *w, const struct vsw_event *ev, void *arg)
{
	struct recorder *r = arg;

	record(r, vsw_step_name(ev->step), ev->by_watchdog);
	if (ev->step == VSW_STEP_FREEZE && r->freeze_sleep_ms)
		usleep(r->freeze_sleep_ms * 1000);
	if (ev->step == r->fail_step)
		return vsw_event_fail(w, r->fail_code, "%s cannot %s now", r->name,
				      vsw_step_name(ev->step));
	if (ev->step == VSW_STEP_FREEZE)
		r->frozen = true;
	if (ev->step == VSW_STEP_THAW || ev->step == VSW_STEP_ABORT)
		r->frozen = false;
	return 0;
}

static const struct vsw_callbacks callbacks = {
	.identify = on_event,
	.prepare_backup = on_event,
	.prepare_snapshot = on_event,
	.freeze = on_event,
	.thaw = on_event,
	.post_snapshot = on_event,
	.backup_complete = on_event,
	.abort = on_event,
};

static struct vsw_writer *start_writer(struct recorder *r, const char *name, uint32_t cls,
				       const char *device, uint32_t window_ms)
{
	const char *devices[1] = { device };
	struct vsw_component comp = { .name = "data", .devices = devices, .device_count = 1 };
	struct vsw_writer_params p = {
		.name = name, .writer_class = cls, .components = &comp, .component_count = 1,
		.freeze_window_ms = window_ms, .socket_path = sock_path, .reconnect_ms = 100,
	};
	char class_id[VSW_ID_STRLEN];
	struct vsw_writer *w;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(class_id, sizeof(class_id), "00000000-0000-4000-8000-%012d", (int)cls);
	p.class_id = class_id;
	if (vsw_writer_start(&p, &callbacks, r, &w))
		return NULL;
	return w;
}

static bool logged(struct recorder *r, const char *what)
{
	bool found = false;
	int i;

	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->count; i++)
		if (!strcmp(r->log[i], what))
			found = true;
	pthread_mutex_unlock(&r->lock);
	return found;
}

static bool wait_logged(struct recorder *r, const char *what, int ms)
{
	while (ms > 0 && !logged(r, what)) {
		usleep(10000);
		ms -= 10;
	}
	return logged(r, what);
}

static struct vss_session *open_session(uint32_t step_timeout)
{
	struct vss_session_params p = { .socket_path = sock_path, .step_timeout_ms = step_timeout };
	struct vss_session *s = NULL;

	if (vss_session_open(&p, &s))
		return NULL;
	return s;
}

static const struct vss_writer_result *result_of(struct vss_session *s, const char *name)
{
	const struct vss_writer_result *r;
	size_t n, i;

	vss_session_results(s, &r, &n);
	for (i = 0; i < n; i++)
		if (!strcmp(r[i].name, name))
			return &r[i];
	return NULL;
}

static int sequence(struct vss_session *s, struct vss_create_result *set)
{
	struct vss_create_params params = { .storage_path = storage };
	int err;

	err = vss_session_gather(s, NULL, NULL);
	if (!err)
		err = vss_session_add_writer_volumes(s);
	if (!err)
		err = vss_session_prepare(s);
	if (!err)
		err = vss_session_create(s, &params, set);
	return err;
}

/* ---- tests ---- */

static void test_sequence(struct daemon_thread *dt)
{
	struct recorder ra, rb;
	struct vsw_writer *a = start_writer(&ra, "alpha", VSW_CLASS_FRONT_END, "7:210", 0);
	struct vsw_writer *b = start_writer(&rb, "beta", VSW_CLASS_BACK_END, "7:211", 0);
	struct vss_writer_info *infos;
	struct vss_create_result set;
	struct vss_session_timing timing;
	struct vss_session *s;
	size_t n, i;
	int err;

	t_ok(a && b && vsw_writer_wait_registered(a, 3000) == 0 &&
	     vsw_writer_wait_registered(b, 3000) == 0, "two library writers register");
	s = open_session(3000);
	t_ok(s != NULL, "a requester opens a session");
	err = vss_session_gather(s, &infos, &n);
	t_ok(!err && n == 2, "gather sees both writers");
	for (i = 0; !err && i < n; i++)
		if (!strcmp(infos[i].name, "alpha"))
			t_ok(!strcmp(infos[i].instance_id, vsw_writer_instance_id(a)) &&
			     infos[i].component_count == 1 &&
			     infos[i].components[0].volume_count == 1 &&
			     infos[i].components[0].volumes[0].major == 7,
			     "with its instance id and its component's volume");
	vss_writer_info_array_free(infos, n);
	vss_session_add_writer_volumes(s);
	t_int_eq(vss_session_prepare(s), 0, "prepare (the writers' volumes)");
	{
		struct vss_create_params params = { .storage_path = storage };

		err = vss_session_create(s, &params, &set);
	}
	t_int_eq(err, 0, "the set is created");
	if (!err)
		vss_create_result_free(&set);
	t_ok(result_of(s, "alpha") && result_of(s, "alpha")->state ==
	     VSW_STATE_WAITING_FOR_BACKUP_COMPLETE, "alpha waits for backup-complete");
	t_ok(vss_session_timing(s, &timing) == 0 && timing.frozen_us > 0 &&
	     timing.frozen_us >= timing.commit_us, "the timing of the freeze is reported");
	t_ok(logged(&ra, "identify") && logged(&ra, "prepare-backup") &&
	     logged(&ra, "prepare-snapshot") && logged(&ra, "freeze") && logged(&ra, "thaw") &&
	     logged(&ra, "post-snapshot"), "the writer's callbacks ran for every step");
	t_int_eq(vss_session_backup_complete(s, true), 0, "backup-complete");
	t_ok(wait_logged(&rb, "backup-complete", 1000), "reaches the writer");
	vss_session_close(s);
	t_ok(!logged(&ra, "abort"), "no abort in a good sequence");

	/* A veto at freeze, with the reason for the requester. */
	rb.fail_step = VSW_STEP_FREEZE;
	rb.fail_code = VSW_FAILURE_RETRYABLE;
	s = open_session(3000);
	err = sequence(s, &set);
	t_int_eq(err, -LIBVSS_EWRITER, "a veto fails vss_session_create()");
	t_str_eq(vss_session_error_writer(s), "beta", "naming the writer");
	t_ok(vss_session_error_message(s) && strstr(vss_session_error_message(s), "beta cannot freeze now"),
	     "with its reason");
	t_ok(result_of(s, "beta") && result_of(s, "beta")->failure == VSW_FAILURE_RETRYABLE &&
	     result_of(s, "beta")->state == VSW_STATE_FAILED_AT_FREEZE,
	     "its result: failed-at-freeze, retryable");
	t_ok(wait_logged(&ra, "abort", 1000) && wait_logged(&rb, "abort", 1000),
	     "both writers got abort");
	t_ok(!ra.frozen, "the front-end writer is not left frozen");
	vss_session_close(s);
	rb.fail_step = 0;

	/* The list shows the failure until the next good sequence. */
	s = open_session(0);
	err = vss_session_list_writers(s, &infos, &n);
	for (i = 0; !err && i < n; i++)
		if (!strcmp(infos[i].name, "beta"))
			t_ok(infos[i].state == VSW_STATE_FAILED_AT_FREEZE && infos[i].last_error_ns &&
			     strstr(infos[i].last_error_message, "cannot freeze"),
			     "the writer list shows beta failed, with its last error");
	vss_writer_info_array_free(infos, n);
	vss_session_close(s);
	s = open_session(3000);
	t_int_eq(sequence(s, &set), 0, "the next sequence works");
	vss_create_result_free(&set);
	vss_session_backup_complete(s, true);
	vss_session_close(s);
	s = open_session(0);
	err = vss_session_list_writers(s, &infos, &n);
	for (i = 0; !err && i < n; i++)
		if (!strcmp(infos[i].name, "beta"))
			t_int_eq(infos[i].state, VSW_STATE_STABLE, "and beta is stable again");
	vss_writer_info_array_free(infos, n);
	vss_session_close(s);
	(void)dt;
	vsw_writer_stop(a);
	vsw_writer_stop(b);
}

static void test_watchdog_window(struct daemon_thread *dt)
{
	struct recorder r;
	struct vsw_writer *w = start_writer(&r, "short", VSW_CLASS_BACK_END, "7:220", 200);
	struct vss_create_result set;
	struct vss_session *s;
	size_t alive = fake_sets_alive(&dt->fp);
	uint64_t t0;

	vsw_writer_wait_registered(w, 3000);
	dt->fp.create_delay_ms = 800;	/* the commit outlasts the window */
	s = open_session(3000);
	t0 = vsw_realtime_ns();
	t_int_eq(sequence(s, &set), -LIBVSS_EWRITER, "a commit longer than a writer's freeze window fails");
	t_ok(r.watchdog_abort, "the library aborted the writer on its own");
	t_ok((vsw_realtime_ns() - t0) / 1000000 < 3000, "in bounded time");
	t_ok(!vsw_writer_frozen(w), "and it is not frozen");
	t_int_eq((int)fake_sets_alive(&dt->fp), (int)alive, "no set of it remains");
	vss_session_close(s);
	dt->fp.create_delay_ms = 0;
	vsw_writer_stop(w);
}

static struct daemon_thread *cut_dt;

/* Inside the commit: every writer connection drops, as if the daemon
 * died with SIGKILL. */
static void cut_writers(void *arg)
{
	struct wd_list *pos;

	(void)arg;
	for (pos = cut_dt->d->conns.next; pos != &cut_dt->d->conns; pos = pos->next) {
		struct wd_conn *c = wd_container_of(pos, struct wd_conn, link);

		if (c->role == WD_ROLE_WRITER)
			shutdown(c->fd, SHUT_RDWR);
	}
	usleep(300000);
}

static void test_daemon_lost(struct daemon_thread *dt)
{
	struct recorder r;
	struct vsw_writer *w = start_writer(&r, "lost", VSW_CLASS_BACK_END, "7:230", 0);
	struct vss_create_result set;
	struct vss_session *s;
	char instance[VSW_ID_STRLEN];

	vsw_writer_wait_registered(w, 3000);
	snprintf(instance, sizeof(instance), "%s", vsw_writer_instance_id(w));
	cut_dt = dt;
	dt->fp.during_create = cut_writers;
	s = open_session(3000);
	t_ok(sequence(s, &set) != 0, "a writer whose connection dropped while frozen fails the set");
	t_ok(wait_logged(&r, "abort", 1000) && r.watchdog_abort && !r.frozen,
	     "its library thawed it at once (abort, by the watchdog)");
	vss_session_close(s);
	dt->fp.during_create = NULL;
	t_ok(vsw_writer_wait_registered(w, 3000) == 0, "the library reconnects by itself");
	t_str_eq(vsw_writer_instance_id(w), instance, "with the same instance id");
	vsw_writer_stop(w);
}

struct queued {
	struct vss_session *s;
	int err;
	uint64_t done_ns;
};

static void *prepare_thread(void *arg)
{
	struct queued *q = arg;

	q->err = vss_session_prepare(q->s);
	q->done_ns = vsw_realtime_ns();
	return NULL;
}

static void test_two_requesters(void)
{
	struct recorder r;
	struct vsw_writer *w = start_writer(&r, "shared", VSW_CLASS_BACK_END, "7:240", 0);
	struct vss_create_params params = { .storage_path = storage };
	struct vss_create_result set1, set2;
	struct queued q = { 0 };
	struct vss_session *s1, *s2;
	uint64_t created1;
	pthread_t th;

	vsw_writer_wait_registered(w, 3000);
	s1 = open_session(3000);
	s2 = open_session(3000);
	vss_session_gather(s1, NULL, NULL);
	vss_session_gather(s2, NULL, NULL);
	vss_session_add_writer_volumes(s1);
	vss_session_add_writer_volumes(s2);
	t_int_eq(vss_session_prepare(s1), 0, "the first requester holds the creation slot");
	q.s = s2;
	pthread_create(&th, NULL, prepare_thread, &q);
	usleep(200000);
	t_ok(q.done_ns == 0, "the second waits");
	t_int_eq(vss_session_create(s1, &params, &set1), 0, "the first creates its set");
	created1 = vsw_realtime_ns();
	pthread_join(th, NULL);
	t_ok(q.err == 0 && q.done_ns >= created1 - 50000000ULL, "then the second is prepared");
	t_int_eq(vss_session_create(s2, &params, &set2), 0, "and creates its set");
	vss_create_result_free(&set1);
	vss_create_result_free(&set2);
	vss_session_close(s1);
	vss_session_close(s2);
	vsw_writer_stop(w);
}

static void test_monitor(void)
{
	struct vss_session *m = open_session(0), *s;
	struct recorder r;
	struct vsw_writer *w;
	struct vss_writer_event ev;
	struct vss_create_result set;
	bool registered = false, state = false, created = false;
	int i;

	t_int_eq(vss_session_monitor_start(m), 0, "a session monitors events");
	w = start_writer(&r, "watched", VSW_CLASS_SYSTEM, "7:250", 0);
	vsw_writer_wait_registered(w, 3000);
	s = open_session(3000);
	sequence(s, &set);
	vss_create_result_free(&set);
	for (i = 0; i < 50 && vss_session_monitor_next(m, &ev, 500) == 0; i++) {
		if (!strcmp(ev.type, "writer-registered") && !strcmp(ev.writer, "watched"))
			registered = true;
		if (!strcmp(ev.type, "writer-state") && ev.state == VSW_STATE_WAITING_FOR_THAW)
			state = true;
		if (!strcmp(ev.type, "set-created") && ev.set_id[0])
			created = true;
	}
	t_ok(registered && state && created, "writer registrations, state changes and sets reach it");
	vss_session_close(s);
	vss_session_close(m);
	vsw_writer_stop(w);
}

static void test_no_daemon(void)
{
	struct vss_session_params p = { .socket_path = "/nonexistent/writerd.sock" };
	struct vss_session *s;

	t_int_eq(vss_session_open(&p, &s), -LIBVSS_ENOWRITERD,
		 "without vsswriterd, vss_session_open() says so");
}

int main(void)
{
	struct daemon_thread dt;

	snprintf(sock_path, sizeof(sock_path), "%s/c.sock", t_tmpdir());
	snprintf(state_dir, sizeof(state_dir), "%s/state", t_tmpdir());
	snprintf(storage, sizeof(storage), "%s", t_tmpdir());
	wd_log_init(WD_LOG_NONE, false);
	daemon_start(&dt);
	test_sequence(&dt);
	test_watchdog_window(&dt);
	test_daemon_lost(&dt);
	test_two_requesters();
	test_monitor();
	daemon_stop(&dt);
	test_no_daemon();
	wd_log_fini();
	return t_done();
}
