// SPDX-License-Identifier: GPL-2.0
/*
 * vss_test_writer: a small application linked with libvsswriter, for the
 * VM tests, the demo and the benchmark. It registers as a writer,
 * records every event it gets (and its frozen interval) in a log, and
 * can play the application, the faulty writer or the assassin:
 *
 *   --data FILE     an application thread appends a numbered line to FILE
 *                   every 5 ms; freeze stops it (after an fsync), thaw or
 *                   abort resumes it. The snapshot must end with the line
 *                   logged at freeze.
 *   --fail STEP[:CODE]   fail STEP (a veto at freeze or prepare-snapshot)
 *   --fail-times N       only the first N times
 *   --hang STEP:MS       sleep MS in the STEP callback
 *   --kill-at STEP:PIDFILE  SIGKILL the process whose pid is in PIDFILE
 *                   while handling STEP (vsswriterd, a requester), then
 *                   answer as usual
 *   --die-at STEP   SIGKILL itself while handling STEP
 *
 * Log lines: "TIME_NS EVENT [key=value...]", CLOCK_REALTIME. EVENT is a
 * step name, "registered", "frozen" (freeze succeeded), "data-stopped
 * seq=N" and "data-resumed".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../vsswriterd/libvsswriter.h"

static FILE *logf;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stop;

static struct {
	int fail_step;
	int fail_times;		/* < 0: always */
	uint32_t fail_code;
	int hang_step;
	unsigned int hang_ms;
	int kill_step;
	const char *kill_pidfile;
	int die_step;
} plan = { .fail_code = VSW_FAILURE_NON_RETRYABLE, .fail_times = -1 };

/* The application: a numbered line every 5 ms unless frozen. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool frozen;
	bool writing;		/* inside a write, not to be cut */
	unsigned long seq;
	int fd;
} app = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, 0, -1 };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logline(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&log_lock);
	fprintf(logf, "%llu ", (unsigned long long)now_ns());
	va_start(ap, fmt);
	vfprintf(logf, fmt, ap);
	va_end(ap);
	fputc('\n', logf);
	fflush(logf);
	pthread_mutex_unlock(&log_lock);
}

static void *app_thread(void *arg)
{
	char line[64];
	int n;

	(void)arg;
	while (!stop) {
		pthread_mutex_lock(&app.lock);
		while (app.frozen && !stop)
			pthread_cond_wait(&app.cond, &app.lock);
		app.writing = true;
		app.seq++;
		n = snprintf(line, sizeof(line), "line %lu\n", app.seq);
		if (write(app.fd, line, (size_t)n) != n)
			app.seq--;
		app.writing = false;
		pthread_mutex_unlock(&app.lock);
		usleep(5000);
	}
	return NULL;
}

static void app_freeze(void)
{
	if (app.fd < 0)
		return;
	pthread_mutex_lock(&app.lock);
	app.frozen = true;
	/* Quiesced: what was written is on disk before the snapshot. */
	fsync(app.fd);
	logline("data-stopped seq=%lu", app.seq);
	pthread_mutex_unlock(&app.lock);
}

static void app_thaw(void)
{
	if (app.fd < 0)
		return;
	pthread_mutex_lock(&app.lock);
	if (app.frozen)
		logline("data-resumed seq=%lu", app.seq);
	app.frozen = false;
	pthread_cond_broadcast(&app.cond);
	pthread_mutex_unlock(&app.lock);
}

static void kill_from_pidfile(const char *path)
{
	FILE *f = fopen(path, "r");
	int pid = 0;

	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid > 1) {
		logline("killing pid=%d", pid);
		kill(pid, SIGKILL);
	}
}

static int on_event(struct vsw_writer *w, const struct vsw_event *ev, void *arg)
{
	(void)arg;
	logline("%s session=%llu set=%s watchdog=%d%s%s", vsw_step_name(ev->step),
		(unsigned long long)ev->session, ev->set_id ? ev->set_id : "-", ev->by_watchdog,
		ev->step == VSW_STEP_BACKUP_COMPLETE ? (ev->success ? " success=1" : " success=0") : "",
		"");
	if ((int)ev->step == plan.die_step) {
		logline("dying");
		raise(SIGKILL);
	}
	if ((int)ev->step == plan.kill_step)
		kill_from_pidfile(plan.kill_pidfile);
	if ((int)ev->step == plan.hang_step)
		usleep(plan.hang_ms * 1000);
	if ((int)ev->step == plan.fail_step && plan.fail_times == 0)
		plan.fail_step = 0;
	switch (ev->step) {
	case VSW_STEP_FREEZE:
		if ((int)ev->step == plan.fail_step)
			break;
		app_freeze();
		logline("frozen");
		return 0;
	case VSW_STEP_THAW:
	case VSW_STEP_ABORT:
		app_thaw();
		break;
	default:
		break;
	}
	if ((int)ev->step == plan.fail_step) {
		if (plan.fail_times > 0)
			plan.fail_times--;
		return vsw_event_fail(w, plan.fail_code, "test writer refuses %s",
				      vsw_step_name(ev->step));
	}
	return 0;
}

static void on_connection(struct vsw_writer *w, bool registered, void *arg)
{
	(void)w;
	(void)arg;
	logline("%s", registered ? "registered" : "disconnected");
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int step_of(const char *text)
{
	static const char *const names[] = { "identify", "prepare-backup", "prepare-snapshot",
					     "freeze", "thaw", "post-snapshot", "backup-complete",
					     "abort" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strncmp(text, names[i], strlen(names[i])) &&
		    (text[strlen(names[i])] == '\0' || text[strlen(names[i])] == ':'))
			return (int)i + 1;
	fprintf(stderr, "vss_test_writer: unknown step '%s'\n", text);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "class", required_argument, NULL, 'c' },
		{ "class-id", required_argument, NULL, 'C' },
		{ "device", required_argument, NULL, 'D' },
		{ "path", required_argument, NULL, 'P' },
		{ "window", required_argument, NULL, 'w' },
		{ "socket", required_argument, NULL, 's' },
		{ "log", required_argument, NULL, 'l' },
		{ "ready", required_argument, NULL, 'r' },
		{ "data", required_argument, NULL, 'd' },
		{ "fail", required_argument, NULL, 'f' },
		{ "fail-times", required_argument, NULL, 'F' },
		{ "hang", required_argument, NULL, 'H' },
		{ "kill-at", required_argument, NULL, 'k' },
		{ "die-at", required_argument, NULL, 'x' },
		{ "reconnect", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct vsw_callbacks cb = {
		.identify = on_event, .prepare_backup = on_event,
		.prepare_snapshot = on_event, .freeze = on_event, .thaw = on_event,
		.post_snapshot = on_event, .backup_complete = on_event, .abort = on_event,
		.connection = on_connection,
	};
	const char *devices[8], *paths[8], *log_path = "/dev/stderr", *ready = NULL;
	const char *data = NULL, *class_id = NULL;
	struct vsw_writer_params p = { .name = "test", .writer_class = VSW_CLASS_BACK_END };
	struct vsw_component comp = { .name = "data", .devices = devices, .paths = paths };
	struct vsw_writer *w;
	char generated_id[VSW_ID_STRLEN];
	pthread_t th;
	int opt, err;
	char *colon;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			p.name = optarg;
			break;
		case 'c':
			p.writer_class = !strcmp(optarg, "front-end") ? VSW_CLASS_FRONT_END :
					 !strcmp(optarg, "system") ? VSW_CLASS_SYSTEM :
					 VSW_CLASS_BACK_END;
			break;
		case 'C':
			class_id = optarg;
			break;
		case 'D':
			if (comp.device_count < 8)
				devices[comp.device_count++] = optarg;
			break;
		case 'P':
			if (comp.path_count < 8)
				paths[comp.path_count++] = optarg;
			break;
		case 'w':
			p.freeze_window_ms = (uint32_t)atoi(optarg);
			break;
		case 's':
			p.socket_path = optarg;
			break;
		case 'l':
			log_path = optarg;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'd':
			data = optarg;
			break;
		case 'f':
			plan.fail_step = step_of(optarg);
			colon = strchr(optarg, ':');
			if (colon)
				plan.fail_code = !strcmp(colon + 1, "retryable") ? VSW_FAILURE_RETRYABLE :
						 !strcmp(colon + 1, "inconsistent-snapshot") ?
						 VSW_FAILURE_INCONSISTENT_SNAPSHOT :
						 !strcmp(colon + 1, "out-of-resources") ?
						 VSW_FAILURE_OUT_OF_RESOURCES :
						 !strcmp(colon + 1, "timeout") ? VSW_FAILURE_TIMEOUT :
						 VSW_FAILURE_NON_RETRYABLE;
			break;
		case 'F':
			plan.fail_times = atoi(optarg);
			break;
		case 'H':
			plan.hang_step = step_of(optarg);
			colon = strchr(optarg, ':');
			plan.hang_ms = colon ? (unsigned int)atoi(colon + 1) : 3600000;
			break;
		case 'k':
			plan.kill_step = step_of(optarg);
			colon = strchr(optarg, ':');
			if (!colon) {
				fprintf(stderr, "vss_test_writer: --kill-at STEP:PIDFILE\n");
				return 2;
			}
			plan.kill_pidfile = colon + 1;
			break;
		case 'x':
			plan.die_step = step_of(optarg);
			break;
		case 'R':
			p.reconnect_ms = (uint32_t)atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: vss_test_writer [--name N] [--class C] [--device DEV]... "
				"[--path P]... [--window MS] [--socket S] [--log F] [--ready F] "
				"[--data F] [--fail STEP[:CODE]] [--hang STEP:MS] "
				"[--kill-at STEP:PIDFILE] [--die-at STEP]\n");
			return 2;
		}
	}
	logf = fopen(log_path, "a");
	if (!logf) {
		perror(log_path);
		return 1;
	}
	if (!class_id) {
		/* Stable per name, as a real writer's would be. */
		unsigned int h = 5381;
		const char *c;

		for (c = p.name; *c; c++)
			h = h * 33 + (unsigned char)*c;
		snprintf(generated_id, sizeof(generated_id), "7e570000-0000-4000-8000-%012x", h);
		class_id = generated_id;
	}
	p.class_id = class_id;
	if (comp.device_count || comp.path_count) {
		p.components = &comp;
		p.component_count = 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (data) {
		app.fd = open(data, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (app.fd < 0) {
			perror(data);
			return 1;
		}
		pthread_create(&th, NULL, app_thread, NULL);
	}
	err = vsw_writer_start(&p, &cb, NULL, &w);
	if (err) {
		fprintf(stderr, "vss_test_writer: %s\n", strerror(-err));
		return 1;
	}
	err = vsw_writer_wait_registered(w, 10000);
	if (err) {
		fprintf(stderr, "vss_test_writer: %s: not registered: %s (%s)\n", p.name,
			vsw_writer_error(w), strerror(-err));
		vsw_writer_stop(w);
		return err == -EACCES ? 4 : 1;
	}
	logline("instance %s", vsw_writer_instance_id(w));
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (f)
			fclose(f);
	}
	while (!stop)
		pause();
	vsw_writer_stop(w);
	if (data) {
		pthread_mutex_lock(&app.lock);
		app.frozen = false;
		pthread_cond_broadcast(&app.cond);
		pthread_mutex_unlock(&app.lock);
		pthread_join(th, NULL);
		close(app.fd);
	}
	logline("stopped");
	fclose(logf);
	return 0;
}
