// SPDX-License-Identifier: GPL-2.0
/*
 * The daemon's state machine, driven in-process: fake writers over
 * socketpairs answer (or fail, or hang, or vanish) by script, a fake
 * provider stands for the kernel, and requesters are raw protocol
 * clients. Covers the sequence and its order, vetoes, time limits,
 * disconnects of writers and requesters at each step, sessions and the
 * queue, permissions, inconsistent sets, recovery after a crash and
 * malformed input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "harness.h"
#include "wdtest.h"

#define ROOT 0
#define GATHER "{\"method\":\"io.vss.Requester.GatherWriterMetadata\",\"parameters\":{\"step_timeout_ms\":%d}}"
#define PREPARE "{\"method\":\"io.vss.Requester.PrepareBackup\",\"parameters\":{\"volumes\":[\"%s\"]%s}}"

static char storage_dir[512];
static char volume[64] = "7:200";	/* any device number: the fake provider takes it */

static bool is_error(const struct vsw_msg *m, const char *name)
{
	return m->kind == VSW_MSG_ERROR && !strcmp(m->error, name);
}

static const char *result_field(const struct vsw_msg *m, const char *writer, const char *key)
{
	struct json_object *o = wdt_writer_result(m, writer), *v;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_get_string(v);
}

/* Gather, prepare, do the set; returns the DoSnapshotSet reply in @out. */
static int run_sequence(struct wdt *t, struct wdt_client *r, int step_timeout,
			const char *prepare_extra, struct vsw_msg *out)
{
	char buf[1024];
	struct vsw_msg m;
	int rc;

	snprintf(buf, sizeof(buf), GATHER, step_timeout);
	rc = wdt_call(t, r, buf, &m, 5000);
	if (rc != 1)
		return -1;
	if (m.kind != VSW_MSG_REPLY) {
		*out = m;
		return 0;
	}
	vsw_msg_free(&m);
	snprintf(buf, sizeof(buf), PREPARE, volume, prepare_extra ? prepare_extra : "");
	rc = wdt_call(t, r, buf, &m, 8000);
	if (rc != 1)
		return -1;
	if (m.kind != VSW_MSG_REPLY) {
		*out = m;
		return 0;
	}
	vsw_msg_free(&m);
	snprintf(buf, sizeof(buf),
		 "{\"method\":\"io.vss.Requester.DoSnapshotSet\",\"parameters\":{\"storage_path\":\"%s\"}}",
		 storage_dir);
	rc = wdt_call(t, r, buf, out, 8000);
	return rc == 1 ? 0 : -1;
}

static struct wdt_client *three_writers(struct wdt *t, struct wdt_client **w)
{
	w[0] = wdt_writer(t, "web", "front-end", NULL, ROOT);
	w[1] = wdt_writer(t, "db", "back-end", NULL, ROOT);
	w[2] = wdt_writer(t, "sys", "system", NULL, ROOT);
	return wdt_client(t, ROOT, ROOT);
}

static void test_register_and_permissions(void)
{
	struct wdt t;
	struct wdt_client *c, *w;
	struct vsw_msg m;

	wdt_start(&t, "[vsswriterd]\nrequester-group = 4000\n[writer pg]\nuser = 1000\n");
	w = wdt_writer(&t, "pg", "back-end", NULL, 1000);
	t_ok(w != NULL, "a writer registers from its configured uid");
	t_ok(wdt_writer(&t, "pg", "back-end", NULL, ROOT) == NULL,
	     "a second writer of the same name is refused");

	c = wdt_client(&t, 1001, 1001);
	wdt_send(c, "{\"method\":\"io.vss.Writer.Register\",\"more\":true,\"parameters\":{"
		 "\"protocol\":1,\"name\":\"pg\",\"class_id\":\"11111111-2222-4333-8444-555555555555\","
		 "\"instance_id\":\"11111111-2222-4333-8444-555555555556\"}}");
	t_ok(wdt_recv(&t, c, &m, 2000) == 1 && is_error(&m, VSW_E_PERMISSION_DENIED) &&
	     strstr(wdt_param_string(&m, "message"), "uid 1000"),
	     "a writer from the wrong uid is refused, naming the uid it must have");
	vsw_msg_free(&m);

	c = wdt_client(&t, 1001, 1001);
	wdt_send(c, "{\"method\":\"io.vss.Writer.Register\",\"more\":true,\"parameters\":{"
		 "\"protocol\":1,\"name\":\"other\",\"class_id\":\"11111111-2222-4333-8444-555555555555\","
		 "\"instance_id\":\"11111111-2222-4333-8444-555555555556\"}}");
	t_ok(wdt_recv(&t, c, &m, 2000) == 1 && is_error(&m, VSW_E_PERMISSION_DENIED) &&
	     strstr(wdt_param_string(&m, "message"), "not configured"),
	     "a non-root writer whose name is not configured is refused");
	vsw_msg_free(&m);

	c = wdt_client(&t, 1002, 1002);
	t_ok(wdt_call(&t, c, "{\"method\":\"io.vss.Requester.GatherWriterMetadata\"}", &m, 2000) == 1 &&
	     is_error(&m, VSW_E_PERMISSION_DENIED), "a non-root requester outside the group is refused");
	vsw_msg_free(&m);
	t_ok(wdt_call(&t, c, "{\"method\":\"io.vss.Coordinator.ListWriters\"}", &m, 2000) == 1 &&
	     m.kind == VSW_MSG_REPLY && wdt_writer_result(&m, "pg"),
	     "anyone may list the writers");
	vsw_msg_free(&m);

	c = wdt_client(&t, 1003, 4000);
	t_ok(wdt_call(&t, c, "{\"method\":\"io.vss.Requester.GatherWriterMetadata\"}", &m, 2000) == 1 &&
	     m.kind == VSW_MSG_REPLY && wdt_writer_result(&m, "pg"),
	     "a member of the requester group may gather the writers");
	vsw_msg_free(&m);
	wdt_stop(&t);
}

static void test_full_sequence(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;
	const char *set_id;
	char buf[256];
	bool order;
	int i;

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	t_ok(run_sequence(&t, r, 2000, NULL, &m) == 0 && m.kind == VSW_MSG_REPLY,
	     "a sequence with a front-end, a back-end and a system writer creates a set");
	set_id = wdt_param_string(&m, "set_id");
	t_ok(set_id && t.fp.creates == 1 && fake_set_find(&t.fp, set_id), "the provider made the set");
	order = true;
	for (i = 0; i < 3; i++) {
		const char *n = w[i]->name;
		int steps[] = { VSW_STEP_IDENTIFY, VSW_STEP_PREPARE_BACKUP, VSW_STEP_PREPARE_SNAPSHOT,
				VSW_STEP_FREEZE, VSW_STEP_THAW, VSW_STEP_POST_SNAPSHOT };
		int j, prev = -1;

		for (j = 0; j < 6; j++) {
			snprintf(buf, sizeof(buf), "%s:%s", n, vsw_step_name(steps[j]));
			if (wdt_log_index(&t, buf) <= prev)
				order = false;
			prev = wdt_log_index(&t, buf);
		}
	}
	if (!t_ok(order, "every writer got identify .. post-snapshot in order"))
		wdt_dump_log(&t);
	t_ok(wdt_log_index(&t, "web:freeze") < wdt_log_index(&t, "db:freeze") &&
	     wdt_log_index(&t, "db:freeze") < wdt_log_index(&t, "sys:freeze"),
	     "freeze goes front-end, back-end, system");
	t_ok(wdt_log_index(&t, "sys:thaw") < wdt_log_index(&t, "db:thaw") &&
	     wdt_log_index(&t, "db:thaw") < wdt_log_index(&t, "web:thaw"),
	     "thaw goes system, back-end, front-end");
	t_ok(wdt_log_index(&t, "sys:freeze") < wdt_log_index(&t, "web:thaw") &&
	     wdt_log_index(&t, "web:post-snapshot") > wdt_log_index(&t, "web:thaw"),
	     "every freeze comes before any thaw; post-snapshot after");
	t_str_eq(result_field(&m, "db", "state_name"), "waiting-for-backup-complete",
		 "after the set: waiting-for-backup-complete");
	{
		struct json_object *timing;

		t_ok(json_object_object_get_ex(m.parameters, "timing", &timing) &&
		     json_object_object_get_ex(timing, "frozen_us", NULL),
		     "the reply says how long the writers were frozen");
	}
	vsw_msg_free(&m);
	t_ok(wdt_call(&t, r, "{\"method\":\"io.vss.Requester.BackupComplete\",\"parameters\":{\"success\":true}}",
		      &m, 5000) == 1 && m.kind == VSW_MSG_REPLY, "backup-complete");
	t_str_eq(result_field(&m, "web", "state_name"), "stable", "then the writers are stable");
	t_ok(w[0]->events[VSW_STEP_BACKUP_COMPLETE] == 1 && w[0]->success_seen,
	     "each writer got backup-complete with success");
	t_ok(w[0]->events[VSW_STEP_ABORT] == 0, "and no abort");
	vsw_msg_free(&m);
	t_ok(fake_sets_alive(&t.fp) == 1, "a completed set stays");
	wdt_stop(&t);
}

static void test_veto(uint32_t step)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;
	const char *msg;
	int i;

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	w[1]->on[step] = WDT_FAIL;
	w[1]->failure = "retryable";
	w[1]->fail_message = "checkpoint in progress";
	t_ok(run_sequence(&t, r, 2000, NULL, &m) == 0 && is_error(&m, VSW_E_WRITER_FAILED),
	     "a veto at %s fails the set", vsw_step_name(step));
	msg = wdt_param_string(&m, "message");
	t_ok(msg && strstr(msg, "db") && strstr(msg, "checkpoint in progress") &&
	     strstr(msg, vsw_step_name(step)),
	     "the requester gets the writer's name, step and reason");
	t_str_eq(result_field(&m, "db", "state_name"),
		 step == VSW_STEP_FREEZE ? "failed-at-freeze" : "failed-at-prepare-snapshot",
		 "the writer's result is failed at that step");
	t_str_eq(result_field(&m, "db", "failure"), "retryable", "with its failure code");
	vsw_msg_free(&m);
	wdt_pump(&t, 100);
	for (i = 0; i < 3; i++)
		t_ok(w[i]->events[VSW_STEP_ABORT] == 1, "%s got abort", w[i]->name);
	t_ok(t.fp.creates == 0 && fake_sets_alive(&t.fp) == 0, "no snapshot was made");
	if (step == VSW_STEP_FREEZE)
		t_ok(w[2]->events[VSW_STEP_FREEZE] == 0 && w[0]->events[VSW_STEP_THAW] == 0,
		     "the system writer was never frozen; the front-end got abort, not thaw");
	wdt_stop(&t);
}

static void test_timeout_in_freeze(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;
	uint64_t t0;

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	w[1]->on[VSW_STEP_FREEZE] = WDT_IGNORE;
	t0 = vsw_now_ns();
	t_ok(run_sequence(&t, r, 300, NULL, &m) == 0 && is_error(&m, VSW_E_WRITER_FAILED),
	     "a writer that hangs in freeze fails the set");
	t_str_eq(result_field(&m, "db", "failure"), "timeout", "with a timeout");
	t_ok((vsw_now_ns() - t0) / 1000000 < 2500, "within the step limit (300 ms per step)");
	vsw_msg_free(&m);
	wdt_pump(&t, 50);
	t_ok(w[0]->events[VSW_STEP_ABORT] == 1 && w[2]->events[VSW_STEP_ABORT] == 1,
	     "the others got abort");
	t_ok(t.d->frozen == 0, "nothing counts as frozen afterwards");
	wdt_stop(&t);
}

static void test_writer_disconnect(uint32_t step)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	w[1]->on[step] = WDT_CLOSE;
	t_ok(run_sequence(&t, r, 2000, NULL, &m) == 0 && is_error(&m, VSW_E_WRITER_FAILED),
	     "a writer gone at %s fails the set", vsw_step_name(step));
	t_str_eq(result_field(&m, "db", "failure"), "not-responding", "as not-responding");
	vsw_msg_free(&m);
	wdt_pump(&t, 50);
	t_ok(w[0]->events[VSW_STEP_ABORT] == 1 && w[2]->events[VSW_STEP_ABORT] == 1,
	     "the others got abort");
	t_ok(fake_sets_alive(&t.fp) == 0, "no set is left");
	wdt_stop(&t);
}

/*
 * A writer that answered prepare-backup and went away before DoSnapshotSet
 * (killed right after its answer): the abort is still running when the
 * requester's DoSnapshotSet comes, which must get the writer's failure.
 */
static void test_writer_gone_between_calls(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;
	char buf[512];
	const char *msg;

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	snprintf(buf, sizeof(buf), GATHER, 300);
	wdt_call(&t, r, buf, &m, 2000);
	vsw_msg_free(&m);
	snprintf(buf, sizeof(buf), PREPARE, volume, "");
	t_ok(wdt_call(&t, r, buf, &m, 2000) == 1 && m.kind == VSW_MSG_REPLY,
	     "prepare-backup succeeds");
	vsw_msg_free(&m);
	/* The front-end writer's abort takes its whole step limit. */
	w[0]->on[VSW_STEP_ABORT] = WDT_IGNORE;
	wdt_close(w[1]);
	wdt_pump(&t, 30);
	snprintf(buf, sizeof(buf),
		 "{\"method\":\"io.vss.Requester.DoSnapshotSet\",\"parameters\":{\"storage_path\":\"%s\"}}",
		 storage_dir);
	t_ok(wdt_call(&t, r, buf, &m, 2000) == 1 && is_error(&m, VSW_E_WRITER_FAILED),
	     "a writer gone after prepare-backup: DoSnapshotSet during the abort fails with it");
	msg = wdt_param_string(&m, "message");
	t_ok(msg && strstr(msg, "writer db") && strstr(msg, "not-responding"),
	     "naming the writer and why");
	vsw_msg_free(&m);
	t_ok(t.fp.creates == 0 && t.d->slot == NULL, "no set, and the creation slot is free");
	wdt_stop(&t);
}

static void test_requester_gone_before_commit(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;
	char buf[512];

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	snprintf(buf, sizeof(buf), GATHER, 2000);
	wdt_call(&t, r, buf, &m, 2000);
	vsw_msg_free(&m);
	snprintf(buf, sizeof(buf), PREPARE, volume, "");
	wdt_call(&t, r, buf, &m, 2000);
	vsw_msg_free(&m);
	/* The writers hang in freeze while the requester dies. */
	w[0]->on[VSW_STEP_FREEZE] = WDT_IGNORE;
	snprintf(buf, sizeof(buf),
		 "{\"method\":\"io.vss.Requester.DoSnapshotSet\",\"parameters\":{\"storage_path\":\"%s\"}}",
		 storage_dir);
	wdt_send(r, buf);
	wdt_pump(&t, 30);
	wdt_close(r);
	wdt_pump(&t, 200);
	t_ok(w[0]->events[VSW_STEP_ABORT] == 1 && w[1]->events[VSW_STEP_ABORT] == 1 &&
	     w[2]->events[VSW_STEP_ABORT] == 1,
	     "a requester gone during freeze: every writer that got prepare gets abort");
	t_ok(t.fp.creates == 0, "no set was made");
	t_ok(t.d->slot == NULL, "the creation slot is free again");
	wdt_stop(&t);
}

static void test_requester_gone_after_commit(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	run_sequence(&t, r, 2000, NULL, &m);
	t_ok(m.kind == VSW_MSG_REPLY, "set created");
	vsw_msg_free(&m);
	wdt_close(r);
	wdt_pump(&t, 200);
	t_ok(w[0]->events[VSW_STEP_BACKUP_COMPLETE] == 1 && !w[0]->success_seen,
	     "a requester gone after the set without detaching: backup-complete with failure");
	t_ok(w[0]->events[VSW_STEP_ABORT] == 0, "not abort (the set was handed over)");
	t_ok(fake_sets_alive(&t.fp) == 0 && t.fp.deletes == 1, "and its set is deleted");
	wdt_stop(&t);
}

static void test_detach_and_complete_later(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r, *r2;
	struct vsw_msg m;
	char set_id[VSW_ID_STRLEN], buf[512];

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	run_sequence(&t, r, 2000, NULL, &m);
	snprintf(set_id, sizeof(set_id), "%s", wdt_param_string(&m, "set_id"));
	vsw_msg_free(&m);
	t_ok(wdt_call(&t, r, "{\"method\":\"io.vss.Requester.Detach\"}", &m, 2000) == 1 &&
	     m.kind == VSW_MSG_REPLY, "detach");
	vsw_msg_free(&m);
	wdt_close(r);
	wdt_pump(&t, 100);
	t_ok(w[0]->events[VSW_STEP_BACKUP_COMPLETE] == 0 && fake_sets_alive(&t.fp) == 1,
	     "a detached set outlives its requester");
	r2 = wdt_client(&t, ROOT, ROOT);
	snprintf(buf, sizeof(buf),
		 "{\"method\":\"io.vss.Requester.BackupComplete\",\"parameters\":{\"set_id\":\"%s\"}}",
		 set_id);
	t_ok(wdt_call(&t, r2, buf, &m, 2000) == 1 && m.kind == VSW_MSG_REPLY &&
	     w[1]->events[VSW_STEP_BACKUP_COMPLETE] == 1 && w[1]->success_seen,
	     "another requester completes it by its id");
	vsw_msg_free(&m);
	t_ok(wdt_call(&t, r2, buf, &m, 2000) == 1 && is_error(&m, VSW_E_NO_SUCH_SET),
	     "a completed set cannot be completed twice");
	vsw_msg_free(&m);
	t_ok(fake_sets_alive(&t.fp) == 1, "backup-complete keeps the set");
	wdt_stop(&t);
}

static void test_abort_after_creation(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r, *r2;
	struct vsw_msg m;
	char set_id[VSW_ID_STRLEN], buf[512];

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	run_sequence(&t, r, 2000, NULL, &m);
	snprintf(set_id, sizeof(set_id), "%s", wdt_param_string(&m, "set_id"));
	vsw_msg_free(&m);
	wdt_call(&t, r, "{\"method\":\"io.vss.Requester.Detach\"}", &m, 2000);
	vsw_msg_free(&m);
	r2 = wdt_client(&t, ROOT, ROOT);
	snprintf(buf, sizeof(buf),
		 "{\"method\":\"io.vss.Requester.Abort\",\"parameters\":{\"set_id\":\"%s\"}}", set_id);
	t_ok(wdt_call(&t, r2, buf, &m, 2000) == 1 && m.kind == VSW_MSG_REPLY,
	     "abort of a detached set");
	vsw_msg_free(&m);
	t_ok(w[2]->events[VSW_STEP_BACKUP_COMPLETE] == 1 && !w[2]->success_seen &&
	     fake_sets_alive(&t.fp) == 0,
	     "the writers get backup-complete with failure, and the set is deleted");
	wdt_stop(&t);
}

static void test_inconsistent(void)
{
	struct wdt t;
	struct wdt_client *w, *r;
	struct vsw_msg m;
	char buf[512];

	wdt_start(&t, NULL);
	w = wdt_writer(&t, "pg", "back-end",
		       "[{\"name\":\"cluster\",\"devices\":[\"7:200\",\"7:201\"]}]", ROOT);
	r = wdt_client(&t, ROOT, ROOT);
	snprintf(buf, sizeof(buf), GATHER, 2000);
	wdt_call(&t, r, buf, &m, 2000);
	vsw_msg_free(&m);
	snprintf(buf, sizeof(buf), PREPARE, "7:200", "");
	t_ok(wdt_call(&t, r, buf, &m, 2000) == 1 && is_error(&m, VSW_E_INCONSISTENT),
	     "a set lacking a device of a component fails with inconsistent-snapshot");
	t_ok(wdt_param_string(&m, "message") && strstr(wdt_param_string(&m, "message"), "7:201"),
	     "naming the missing device");
	vsw_msg_free(&m);
	wdt_pump(&t, 30);
	t_ok(w->events[VSW_STEP_PREPARE_BACKUP] == 0 && w->events[VSW_STEP_FREEZE] == 0,
	     "before anything is asked of the writer");
	t_ok(wdt_call(&t, r, "{\"method\":\"io.vss.Requester.PrepareBackup\",\"parameters\":{\"writer_volumes\":true}}",
		      &m, 2000) == 1 && m.kind == VSW_MSG_REPLY,
	     "letting the writers' components choose the volumes works");
	{
		struct json_object *vols;

		t_ok(json_object_object_get_ex(m.parameters, "volumes", &vols) &&
		     json_object_array_length(vols) == 2, "and takes both devices");
	}
	vsw_msg_free(&m);
	wdt_stop(&t);
}

static void test_writer_outside_set(void)
{
	struct wdt t;
	struct wdt_client *w, *r;
	struct vsw_msg m;

	wdt_start(&t, NULL);
	w = wdt_writer(&t, "elsewhere", "back-end", "[{\"name\":\"x\",\"devices\":[\"7:250\"]}]", ROOT);
	r = wdt_client(&t, ROOT, ROOT);
	t_ok(run_sequence(&t, r, 2000, NULL, &m) == 0 && m.kind == VSW_MSG_REPLY,
	     "a writer whose components are not in the set does not stop it");
	t_ok(w->events[VSW_STEP_FREEZE] == 0, "and is not frozen");
	vsw_msg_free(&m);
	wdt_stop(&t);
}

static void test_queue(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r1, *r2;
	struct vsw_msg m;
	char buf[512];

	wdt_start(&t, NULL);
	r1 = three_writers(&t, w);
	r2 = wdt_client(&t, ROOT, ROOT);
	snprintf(buf, sizeof(buf), GATHER, 2000);
	wdt_call(&t, r1, buf, &m, 2000);
	vsw_msg_free(&m);
	wdt_call(&t, r2, buf, &m, 2000);
	t_ok(m.kind == VSW_MSG_REPLY, "two requesters gather at once");
	vsw_msg_free(&m);
	snprintf(buf, sizeof(buf), PREPARE, volume, "");
	wdt_call(&t, r1, buf, &m, 2000);
	vsw_msg_free(&m);
	snprintf(buf, sizeof(buf), PREPARE, volume, ",\"queue_timeout_ms\":5000");
	wdt_send(r2, buf);
	t_ok(wdt_recv(&t, r2, &m, 200) == 0, "the second waits in the queue");
	snprintf(buf, sizeof(buf),
		 "{\"method\":\"io.vss.Requester.DoSnapshotSet\",\"parameters\":{\"storage_path\":\"%s\"}}",
		 storage_dir);
	t_ok(wdt_call(&t, r1, buf, &m, 3000) == 1 && m.kind == VSW_MSG_REPLY, "the first creates its set");
	vsw_msg_free(&m);
	t_ok(wdt_recv(&t, r2, &m, 3000) == 1 && m.kind == VSW_MSG_REPLY,
	     "then the second gets the slot and is prepared");
	vsw_msg_free(&m);
	t_ok(wdt_call(&t, r2, buf, &m, 3000) == 1 && m.kind == VSW_MSG_REPLY,
	     "and creates its own set");
	vsw_msg_free(&m);
	t_ok(fake_sets_alive(&t.fp) == 2, "two sets, one after the other");

	/* A third with a short queue timeout behind a holder that waits. */
	{
		struct wdt_client *r3 = wdt_client(&t, ROOT, ROOT), *r4 = wdt_client(&t, ROOT, ROOT);

		snprintf(buf, sizeof(buf), GATHER, 5000);
		wdt_call(&t, r3, buf, &m, 2000);
		vsw_msg_free(&m);
		wdt_call(&t, r4, buf, &m, 2000);
		vsw_msg_free(&m);
		snprintf(buf, sizeof(buf), PREPARE, volume, "");
		wdt_call(&t, r3, buf, &m, 2000);
		vsw_msg_free(&m);
		snprintf(buf, sizeof(buf), PREPARE, volume, ",\"queue_timeout_ms\":150");
		t_ok(wdt_call(&t, r4, buf, &m, 2000) == 1 && is_error(&m, VSW_E_QUEUE_TIMEOUT),
		     "a requester gives up after its queue timeout, with a clear error");
		vsw_msg_free(&m);
	}
	wdt_stop(&t);
}

static void test_idle_requester(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;
	char buf[512];

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	snprintf(buf, sizeof(buf), GATHER, 200);
	wdt_call(&t, r, buf, &m, 2000);
	vsw_msg_free(&m);
	snprintf(buf, sizeof(buf), PREPARE, volume, "");
	wdt_call(&t, r, buf, &m, 2000);
	vsw_msg_free(&m);
	wdt_pump(&t, 500);
	t_ok(w[0]->events[VSW_STEP_ABORT] == 1 && t.d->slot == NULL,
	     "a requester that times out its step gets the sequence aborted");
	snprintf(buf, sizeof(buf),
		 "{\"method\":\"io.vss.Requester.DoSnapshotSet\",\"parameters\":{\"storage_path\":\"%s\"}}",
		 storage_dir);
	t_ok(wdt_call(&t, r, buf, &m, 2000) == 1 && is_error(&m, VSW_E_WRONG_STATE) &&
	     strstr(wdt_param_string(&m, "message"), "did not call DoSnapshotSet"),
	     "and is told why when it comes back");
	vsw_msg_free(&m);
	wdt_stop(&t);
}

static void test_failed_writer_recovers(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	w[0]->on[VSW_STEP_PREPARE_SNAPSHOT] = WDT_FAIL;
	run_sequence(&t, r, 2000, NULL, &m);
	vsw_msg_free(&m);
	wdt_close(r);
	wdt_pump(&t, 30);
	t_int_eq(wd_writer_find(t.d, "web")->state, VSW_STATE_FAILED_AT_PREPARE_SNAPSHOT,
		 "the writer shows failed-at-prepare-snapshot");
	t_ok(wd_writer_find(t.d, "web")->last_error.time_ns != 0, "with its last error and its time");
	w[0]->on[VSW_STEP_PREPARE_SNAPSHOT] = WDT_OK;
	r = wdt_client(&t, ROOT, ROOT);
	t_ok(run_sequence(&t, r, 2000, NULL, &m) == 0 && m.kind == VSW_MSG_REPLY, "the next sequence works");
	vsw_msg_free(&m);
	wdt_call(&t, r, "{\"method\":\"io.vss.Requester.BackupComplete\"}", &m, 2000);
	vsw_msg_free(&m);
	t_int_eq(wd_writer_find(t.d, "web")->state, VSW_STATE_STABLE,
		 "and the writer is stable again, without a restart");
	t_ok(wd_writer_find(t.d, "web")->last_error.time_ns != 0, "its last error is still shown");
	wdt_stop(&t);
}

static void test_provider_failure(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	t.fp.fail_create = -ENOSPC;
	t_ok(run_sequence(&t, r, 2000, NULL, &m) == 0 && is_error(&m, VSW_E_PROVIDER),
	     "a refused commit fails the set with the kernel's reason");
	t_ok(strstr(wdt_param_string(&m, "message"), "storage too small") != NULL,
	     "which reaches the requester");
	vsw_msg_free(&m);
	wdt_pump(&t, 50);
	t_ok(w[1]->events[VSW_STEP_ABORT] == 1 && w[1]->events[VSW_STEP_THAW] == 0,
	     "frozen writers get abort");
	wdt_stop(&t);
}

static struct wdt *hold_check_wdt;
static int frozen_during_create;

static void check_frozen(void *arg)
{
	(void)arg;
	frozen_during_create = hold_check_wdt->d->frozen;
}

static void test_hold_limit_and_frozen(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	hold_check_wdt = &t;
	t.fp.during_create = check_frozen;
	run_sequence(&t, r, 2000, NULL, &m);
	vsw_msg_free(&m);
	t_int_eq(frozen_during_create, 3, "all three writers count as frozen during the commit");
	t_ok(t.fp.sets[0].hold_limit_ms <= 5000 - WD_COMMIT_MARGIN_MS,
	     "the kernel's hold ends before the writers' freeze window (5 s)");
	t_int_eq(t.d->frozen, 0, "none afterwards");
	wdt_stop(&t);
}

static void test_malformed(void)
{
	struct wdt t;
	struct wdt_client *bad, *good;
	struct vsw_msg m;
	char *huge;
	unsigned int i, seed = 12345;
	char junk[512];
	int rc;

	wdt_start(&t, NULL);
	good = wdt_client(&t, ROOT, ROOT);
	bad = wdt_client(&t, 1000, 1000);
	t_ok(wdt_call(&t, bad, "{\"method\": \"io.vss.Requester.", &m, 2000) == 1 &&
	     is_error(&m, VSW_E_MALFORMED), "truncated JSON: a clear error");
	vsw_msg_free(&m);
	t_ok(wdt_recv(&t, bad, &m, 500) == -1, "and the connection is closed");
	t_ok(wdt_call(&t, good, "{\"method\":\"org.varlink.service.GetInfo\"}", &m, 2000) == 1 &&
	     m.kind == VSW_MSG_REPLY, "another client is not affected");
	vsw_msg_free(&m);

	bad = wdt_client(&t, 1000, 1000);
	t_ok(wdt_call(&t, bad, "{\"method\":\"io.vss.Writer.Register\",\"more\":true,\"parameters\":{\"protocol\":\"one\"}}",
		      &m, 2000) == 1 && is_error(&m, VSW_E_INVALID_PARAMETER) &&
	     strstr(wdt_param_string(&m, "message"), "protocol"),
	     "a wrong type: InvalidParameter naming the parameter");
	vsw_msg_free(&m);
	t_ok(wdt_call(&t, bad, "{\"method\":\"org.varlink.service.GetInfo\"}", &m, 2000) == 1 &&
	     m.kind == VSW_MSG_REPLY, "and the connection stays usable");
	vsw_msg_free(&m);
	t_ok(wdt_call(&t, bad, "[1,2,3]", &m, 2000) == 1 && is_error(&m, VSW_E_MALFORMED),
	     "an array is not a message");
	vsw_msg_free(&m);

	bad = wdt_client(&t, 1000, 1000);
	t_ok(wdt_call(&t, bad, "{\"method\":\"io.vss.Nope\"}", &m, 2000) == 1 &&
	     is_error(&m, VSW_E_METHOD_NOT_FOUND), "an unknown method: MethodNotFound");
	vsw_msg_free(&m);
	t_ok(wdt_call(&t, bad, "{\"method\":\"io.vss.Requester.GatherWriterMetadata\",\"parameters\":[]}",
		      &m, 2000) == 1 && is_error(&m, VSW_E_MALFORMED),
	     "parameters that are not an object: an error");
	vsw_msg_free(&m);

	bad = wdt_client(&t, 1000, 1000);
	huge = malloc(VSW_WIRE_MAX_MESSAGE + 1000);
	memset(huge, ' ', VSW_WIRE_MAX_MESSAGE + 999);
	huge[0] = '{';
	huge[VSW_WIRE_MAX_MESSAGE + 999] = '\0';
	wdt_send(bad, huge);
	rc = wdt_recv(&t, bad, &m, 3000);
	t_ok(rc == 1 && is_error(&m, VSW_E_TOO_LARGE), "a huge message: MessageTooLarge");
	if (rc == 1)
		vsw_msg_free(&m);
	free(huge);
	t_ok(wdt_recv(&t, bad, &m, 500) == -1, "and the connection is closed");

	for (i = 0; i < 200; i++) {
		size_t n = 1 + rand_r(&seed) % (sizeof(junk) - 1), j;

		for (j = 0; j < n; j++)
			junk[j] = (char)(rand_r(&seed) % 256);
		bad = t.client_count < WDT_MAX_CLIENTS ? wdt_client(&t, 1000, 1000) : bad;
		wdt_send_raw(bad, junk, n);
		wdt_send_raw(bad, "", 1);
		wdt_pump(&t, 1);
		if (t.client_count >= WDT_MAX_CLIENTS - 1)
			break;
	}
	t_ok(wdt_call(&t, good, "{\"method\":\"io.vss.Coordinator.ListWriters\"}", &m, 2000) == 1 &&
	     m.kind == VSW_MSG_REPLY, "random bytes: the daemon keeps answering others");
	vsw_msg_free(&m);
	{
		/* Many pipelined calls on one connection are answered in order. */
		char *many = malloc(200 * 64);
		size_t used = 0;
		int got = 0;

		for (i = 0; i < 200; i++) {
			memcpy(many + used, "{\"method\":\"org.varlink.service.GetInfo\"}", 41);
			used += 41;
		}
		wdt_send_raw(good, many, used);
		free(many);
		while (wdt_recv(&t, good, &m, 1000) == 1) {
			got++;
			vsw_msg_free(&m);
			if (got == 200)
				break;
		}
		t_int_eq(got, 200, "200 pipelined calls get 200 replies");
	}
	wdt_stop(&t);
}

static int open_fds(void)
{
	int n = 0, fd;

	for (fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* Sessions come and go without leaving a descriptor behind. */
static void test_no_fd_leak(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;
	int before, i;

	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	run_sequence(&t, r, 2000, NULL, &m);
	vsw_msg_free(&m);
	wdt_close(r);
	wdt_pump(&t, 100);
	before = open_fds();
	for (i = 0; i < 5; i++) {
		r = wdt_client(&t, ROOT, ROOT);
		run_sequence(&t, r, 2000, NULL, &m);
		vsw_msg_free(&m);
		wdt_close(r);
		wdt_pump(&t, 100);
	}
	t_int_eq(open_fds(), before, "five sessions leave no descriptor open");
	wdt_stop(&t);
}

static void test_recovery(void)
{
	struct wdt t;
	struct wdt_client *w[3], *r;
	struct vsw_msg m;
	char path[700], set_id[VSW_ID_STRLEN], dir[512], buf[1024];
	struct fake_provider saved;
	FILE *f;

	/* A daemon made a set and died before handing it over. */
	wdt_start(&t, NULL);
	r = three_writers(&t, w);
	run_sequence(&t, r, 2000, NULL, &m);
	snprintf(set_id, sizeof(set_id), "%s", wdt_param_string(&m, "set_id"));
	vsw_msg_free(&m);
	wdt_call(&t, r, "{\"method\":\"io.vss.Requester.Detach\"}", &m, 2000);
	vsw_msg_free(&m);
	snprintf(dir, sizeof(dir), "%s", t.dir);
	saved = t.fp;
	wdt_stop(&t);
	/* A second set, in flight when the daemon died. */
	saved.sets[saved.set_count] = saved.sets[0];
	vsw_random_uuid(saved.sets[saved.set_count].id);
	saved.set_count++;
	snprintf(path, sizeof(path), "%s/state/state.json", dir);
	{
		struct json_object *root = json_object_from_file(path), *in;

		t_ok(root != NULL, "the state file lists the detached set");
		in = json_object_new_object();
		json_object_object_add(in, "set_id",
				       json_object_new_string(saved.sets[saved.set_count - 1].id));
		json_object_object_add(in, "devices", json_object_new_array());
		json_object_object_add(root, "inflight", in);
		snprintf(buf, sizeof(buf), "%s", json_object_to_json_string(root));
		json_object_put(root);
		f = fopen(path, "w");
		fputs(buf, f);
		fclose(f);
	}
	/* The next daemon, on the same state directory and "kernel". */
	{
		struct wd_options opts = { .listen_fd = -1 };
		struct wd_config cfg;
		struct wd_daemon *d;
		char sock[600], state[600], why[256];
		struct wd_session *s;

		snprintf(sock, sizeof(sock), "%s/s2", dir);
		snprintf(state, sizeof(state), "%s/state", dir);
		wd_config_defaults(&cfg);
		cfg.hook_dir[0] = '\0';
		opts.socket_path = sock;
		opts.state_dir = state;
		opts.provider = &fake_provider_ops;
		opts.provider_ctx = &saved;
		t_ok(wd_daemon_new(&opts, &cfg, &d, why, sizeof(why)) == 0, "a new daemon starts");
		wd_runstate_recover(d);
		t_ok(!saved.sets[saved.set_count - 1].exists,
		     "the set of a commit in flight is deleted at start");
		s = wd_session_by_set(d, set_id);
		t_ok(s && s->detached && s->state == WS_CREATED && saved.sets[0].exists,
		     "the detached set waits for backup-complete again");
		wd_daemon_free(d);
	}
}

static void test_hooks(void)
{
	struct wdt t;
	struct wdt_client *r;
	struct vsw_msg m;
	char conf[2048], hookdir[600], qgadir[600], logpath[600], path[700];
	FILE *f;
	const char *names[] = { "10-first", "20-second" };
	int i;

	snprintf(hookdir, sizeof(hookdir), "%s/hooks-%d", t_tmpdir(), getpid());
	snprintf(qgadir, sizeof(qgadir), "%s/qga-%d", t_tmpdir(), getpid());
	snprintf(logpath, sizeof(logpath), "%s/hooklog-%d", t_tmpdir(), getpid());
	mkdir(hookdir, 0755);
	mkdir(qgadir, 0755);
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", hookdir, names[i]);
		f = fopen(path, "w");
		fprintf(f, "#!/bin/sh\necho \"%s $1 $VSS_STEP\" >> %s\n"
			"[ \"$1\" = freeze ] && [ -e %s.veto ] && { echo vetoed by %s; exit 3; }\nexit 0\n",
			names[i], logpath, logpath, names[i]);
		fclose(f);
		chmod(path, 0755);
	}
	snprintf(path, sizeof(path), "%s/30-ignored.sample", hookdir);
	f = fopen(path, "w");
	fprintf(f, "#!/bin/sh\necho sample >> %s\n", logpath);
	fclose(f);
	chmod(path, 0755);
	snprintf(path, sizeof(path), "%s/mysql.sh", qgadir);
	f = fopen(path, "w");
	fprintf(f, "#!/bin/sh\ncase \"$1\" in\n  freeze) echo \"qga freeze\" >> %s;"
		" if [ -e %s.qveto ]; then exit 1; fi;;\n  thaw) echo \"qga thaw\" >> %s;;\n  *) exit 0;;\nesac\n",
		logpath, logpath, logpath);
	fclose(f);
	chmod(path, 0755);
	snprintf(conf, sizeof(conf), "[vsswriterd]\nhook-dir = %s\nqemu-ga-hook-dir = %s\n"
		 "[hook 20-second]\nclass = system\n", hookdir, qgadir);
	wdt_start(&t, conf);
	r = wdt_client(&t, ROOT, ROOT);
	if (!t_ok(run_sequence(&t, r, 3000, NULL, &m) == 0 && m.kind == VSW_MSG_REPLY,
		  "a sequence with two hooks and a qemu-ga script"))
		t_diag("%s", m.root ? json_object_to_json_string(m.root) : "no reply");
	t_ok(wdt_writer_result(&m, "10-first") && wdt_writer_result(&m, "qemu-ga/mysql.sh") &&
	     !wdt_writer_result(&m, "30-ignored.sample"),
	     "hooks take part as writers; *.sample is skipped");
	vsw_msg_free(&m);
	wdt_call(&t, r, "{\"method\":\"io.vss.Requester.BackupComplete\"}", &m, 3000);
	vsw_msg_free(&m);
	wdt_pump(&t, 100);
	{
		char text[4096] = "";
		size_t n;

		f = fopen(logpath, "r");
		n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
		text[n] = '\0';
		if (f)
			fclose(f);
		t_ok(strstr(text, "10-first prepare-backup prepare-backup") &&
		     strstr(text, "10-first freeze freeze") && strstr(text, "10-first thaw thaw") &&
		     strstr(text, "10-first post-snapshot") &&
		     strstr(text, "10-first backup-complete"),
		     "a hook gets every step as argv[1] (and VSS_STEP)");
		t_ok(strstr(text, "qga freeze") && strstr(text, "qga thaw") &&
		     !strstr(text, "sample"), "the qemu-ga script gets only freeze and thaw");
		t_ok(strstr(text, "10-first freeze") < strstr(text, "20-second freeze") &&
		     strstr(text, "20-second thaw") < strstr(text, "10-first thaw"),
		     "classes order hooks: back-end before system at freeze, after at thaw");
		if (!t_ok(strstr(text, "10-first abort") == NULL, "no abort in a good sequence"))
			t_diag("%s", text);
	}
	unlink(logpath);

	/* A veto by exit status at freeze: abort for hooks, thaw for qemu-ga. */
	snprintf(path, sizeof(path), "%s.veto", logpath);
	f = fopen(path, "w");
	fclose(f);
	wdt_close(r);
	r = wdt_client(&t, ROOT, ROOT);
	t_ok(run_sequence(&t, r, 3000, NULL, &m) == 0 && is_error(&m, VSW_E_WRITER_FAILED) &&
	     strstr(wdt_param_string(&m, "message"), "vetoed by"),
	     "a hook's non-zero exit at freeze vetoes, with its last line as the reason");
	vsw_msg_free(&m);
	wdt_pump(&t, 300);
	{
		char text[4096] = "";
		size_t n;

		f = fopen(logpath, "r");
		n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
		text[n] = '\0';
		if (f)
			fclose(f);
		t_ok(strstr(text, "10-first abort") && strstr(text, "20-second abort"),
		     "every hook gets abort");
		t_ok(strstr(text, "qga thaw") != NULL, "the frozen qemu-ga script gets thaw");
	}
	unlink(path);
	unlink(logpath);
	/* qemu-ga script vetoes: thaw runs for it too, unlike qemu-ga. */
	snprintf(path, sizeof(path), "%s.qveto", logpath);
	f = fopen(path, "w");
	fclose(f);
	wdt_close(r);
	r = wdt_client(&t, ROOT, ROOT);
	t_ok(run_sequence(&t, r, 3000, NULL, &m) == 0 && is_error(&m, VSW_E_WRITER_FAILED),
	     "a qemu-ga script that fails freeze vetoes (unlike qemu-ga)");
	vsw_msg_free(&m);
	wdt_pump(&t, 300);
	{
		char text[4096] = "";
		size_t n;

		f = fopen(logpath, "r");
		n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
		text[n] = '\0';
		if (f)
			fclose(f);
		t_ok(strstr(text, "qga freeze") && strstr(text, "qga thaw"),
		     "and gets thaw after its failed freeze, so nothing leaks");
	}
	unlink(path);
	wdt_stop(&t);
	t_int_eq(t.fp.creates, 1, "only the good sequence committed");
}

int main(void)
{
	snprintf(storage_dir, sizeof(storage_dir), "%s", t_tmpdir());
	test_register_and_permissions();
	test_full_sequence();
	test_veto(VSW_STEP_FREEZE);
	test_veto(VSW_STEP_PREPARE_SNAPSHOT);
	test_timeout_in_freeze();
	test_writer_disconnect(VSW_STEP_PREPARE_BACKUP);
	test_writer_disconnect(VSW_STEP_PREPARE_SNAPSHOT);
	test_writer_disconnect(VSW_STEP_FREEZE);
	test_writer_disconnect(VSW_STEP_THAW);
	test_writer_disconnect(VSW_STEP_POST_SNAPSHOT);
	test_writer_gone_between_calls();
	test_requester_gone_before_commit();
	test_requester_gone_after_commit();
	test_detach_and_complete_later();
	test_abort_after_creation();
	test_inconsistent();
	test_writer_outside_set();
	test_queue();
	test_idle_requester();
	test_failed_writer_recovers();
	test_provider_failure();
	test_hold_limit_and_frozen();
	test_malformed();
	test_no_fd_leak();
	test_recovery();
	test_hooks();
	wd_log_fini();
	return t_done();
}
