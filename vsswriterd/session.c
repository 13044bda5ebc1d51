// SPDX-License-Identifier: GPL-2.0
/*
 * Requester sessions and the backup sequence.
 *
 *   GatherWriterMetadata   identify, to every writer (not exclusive)
 *   PrepareBackup          waits in the FIFO queue for the creation slot,
 *                          then prepare-backup
 *   DoSnapshotSet          prepare-snapshot, freeze (front-end, back-end,
 *                          system), the kernel's commit, thaw (system,
 *                          back-end, front-end), post-snapshot; then the
 *                          slot goes to the next requester
 *   Detach | BackupComplete | Abort
 *
 * A step is a round: the event goes to every participant of the step at
 * once (qemu-ga hooks one after the other), each with its time limit, and
 * the round ends when all have answered. Any failure from prepare-backup
 * to the end of post-snapshot aborts the sequence at once: the events
 * still out are forgotten, and every participant that got prepare-backup
 * gets abort (system writers first, as for thaw); a set already committed
 * is deleted. After the set was handed over, abort is no longer allowed
 * (as in the model): a failed or abandoned backup ends with
 * backup-complete and success false.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <linux/vss.h>

#include "daemon.h"

/* The freeze order; thaw and abort go backwards. */
static const uint32_t class_order[3] = {
	VSW_CLASS_FRONT_END, VSW_CLASS_BACK_END, VSW_CLASS_SYSTEM,
};

static void part_event_done(struct wd_event *ev, int result, uint32_t failure,
			    const char *message);
static void begin_abort(struct wd_session *s);
static void creation_next(struct wd_session *s);
static void abort_next(struct wd_session *s);
static void release_next(struct wd_session *s);
static void gather_start(struct wd_deferred *dw);
static void session_maybe_free(struct wd_session *s);

static const char *session_owner_text(const struct wd_session *s, char *buf, size_t len)
{
	snprintf(buf, len, "session %llu of pid %d", (unsigned long long)s->id, (int)s->pid);
	return buf;
}

/* ---- results ---- */

struct json_object *wd_part_json(const struct wd_part *p)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "kind", json_object_new_string(vsw_kind_name(p->kind)));
	json_object_object_add(o, "class", json_object_new_string(vsw_class_name(p->writer_class)));
	json_object_object_add(o, "class_id", json_object_new_string(p->class_id));
	json_object_object_add(o, "instance_id", json_object_new_string(p->instance_id));
	json_object_object_add(o, "state", json_object_new_int(p->state));
	json_object_object_add(o, "state_name", json_object_new_string(vsw_state_name(p->state)));
	json_object_object_add(o, "failure", json_object_new_string(vsw_failure_name(p->failure)));
	json_object_object_add(o, "failed_step", p->failed_step ?
			       json_object_new_string(vsw_step_name(p->failed_step)) : NULL);
	json_object_object_add(o, "message", json_object_new_string(p->message));
	json_object_object_add(o, "excluded", json_object_new_boolean(p->excluded));
	if (p->excluded)
		json_object_object_add(o, "excluded_why", json_object_new_string(p->excluded_why));
	if (p->freeze_done_ns && p->thaw_done_ns >= p->freeze_done_ns)
		json_object_object_add(o, "frozen_us", json_object_new_uint64(
			(p->thaw_done_ns - p->freeze_done_ns) / 1000));
	return o;
}

static struct json_object *parts_json(const struct wd_session *s, bool with_metadata)
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < s->part_count; i++) {
		const struct wd_part *p = &s->parts[i];
		struct json_object *o = wd_part_json(p);

		if (with_metadata && p->w) {
			json_object_object_add(o, "components",
					       wd_components_json(p->w->components,
								  p->w->component_count, true));
			json_object_object_add(o, "freeze_window_ms",
					       json_object_new_int64(p->freeze_window_ms));
		}
		json_object_array_add(arr, o);
	}
	return arr;
}

static void part_set_state(struct wd_part *p, uint32_t state)
{
	p->state = state;
	/* The writer's own state follows the sequence that holds it. */
	if (p->w && (p->w->active == p || !p->w->active))
		wd_writer_set_state(p->w, state);
}

static void part_record_failure(struct wd_part *p, uint32_t step, uint32_t failure,
				const char *message)
{
	p->failure = failure;
	p->failed_step = step;
	snprintf(p->message, sizeof(p->message), "%s", message ? message : "");
	p->state = vsw_failed_state(step);
	if (p->w)
		wd_writer_record_failure(p->w, step, failure, p->message,
					 p->s->committed ? p->s->set_id : NULL);
}

/* ---- sessions ---- */

static struct wd_session *session_new(struct wd_conn *c)
{
	struct wd_daemon *d = c->d;
	struct wd_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->d = d;
	s->id = ++d->next_session_id;
	s->conn = c;
	s->uid = c->uid;
	s->pid = c->pid;
	s->state = WS_OPEN;
	s->backup_type = VSW_BACKUP_FULL;
	s->step_timeout_ms = d->cfg.step_timeout_ms;
	wd_list_init(&s->qlink);
	wd_list_init(&s->gather_work.link);
	s->gather_work.fn = gather_start;
	s->gather_work.arg = s;
	if (wd_timer_init(d->loop, &s->queue_timer, NULL, s) ||
	    wd_timer_init(d->loop, &s->idle_timer, NULL, s)) {
		wd_timer_fini(d->loop, &s->queue_timer);
		free(s);
		return NULL;
	}
	wd_list_add_tail(&d->sessions, &s->link);
	c->session = s;
	c->role = WD_ROLE_REQUESTER;
	return s;
}

static void parts_free(struct wd_session *s)
{
	size_t i;

	for (i = 0; i < s->part_count; i++) {
		struct wd_part *p = &s->parts[i];

		if (p->ev)
			wd_event_cancel(p->ev);
		wd_part_set_frozen(p, false);
		wd_timer_fini(s->d->loop, &p->window);
		if (p->w) {
			if (p->w->active == p)
				p->w->active = NULL;
			wd_writer_put(p->w);
		}
	}
	free(s->parts);
	s->parts = NULL;
	s->part_count = 0;
	free(s->chain);
	s->chain = NULL;
	s->chain_count = s->chain_next = 0;
	s->chain_running = NULL;
}

void wd_session_free(struct wd_session *s)
{
	struct wd_daemon *d = s->d;
	size_t i;

	wd_slot_release(d, s);
	wd_list_del(&s->qlink);
	wd_defer_cancel(&s->gather_work);
	wd_list_del(&s->link);
	if (s->conn) {
		s->conn->session = NULL;
		s->conn = NULL;
	}
	parts_free(s);
	wd_timer_fini(d->loop, &s->queue_timer);
	wd_timer_fini(d->loop, &s->idle_timer);
	for (i = 0; i < s->volume_count; i++)
		free(s->volume_paths[i]);
	free(s->storage_path);
	free(s->label);
	if (s->snapshots)
		json_object_put(s->snapshots);
	if (s->fail_extra)
		json_object_put(s->fail_extra);
	free(s);
}

struct wd_session *wd_session_by_set(struct wd_daemon *d, const char *set_id)
{
	struct wd_list *pos, *tmp;

	wd_list_for_each_safe(pos, tmp, &d->sessions) {
		struct wd_session *s = wd_container_of(pos, struct wd_session, link);

		if (s->committed && !s->set_deleted && !strcasecmp(s->set_id, set_id))
			return s;
	}
	return NULL;
}

/* Frees a session nobody needs any more: its requester is gone or detached
 * and nothing of it is going on. */
static void session_maybe_free(struct wd_session *s)
{
	bool owned = s->conn != NULL;
	bool waiting_set = s->committed && !s->set_deleted && s->state == WS_CREATED;

	if (owned || s->round_done || s->state == WS_COMPLETING ||
	    s->state == WS_RELEASING || s->state == WS_ABORTING ||
	    s->state == WS_CREATING || s->state == WS_PREPARING)
		return;
	if (waiting_set && s->detached)
		return;
	if (s->recovered && s->state == WS_RELEASING)
		return;
	if (s->doomed)
		return;
	/*
	 * Freed between two events: the callers up the stack may still look
	 * at it. Off the list now, so nothing finds it any more.
	 */
	s->doomed = true;
	wd_list_del(&s->link);
	wd_list_add_tail(&s->d->session_graveyard, &s->link);
	if (s->conn) {
		s->conn->session = NULL;
		s->conn = NULL;
	}
	if (s->committed)
		wd_runstate_save(s->d);
}

bool wd_sessions_busy(const struct wd_daemon *d)
{
	struct wd_list *pos;

	for (pos = d->sessions.next; pos != &d->sessions; pos = pos->next) {
		const struct wd_session *s = wd_container_of(pos, struct wd_session, link);

		switch (s->state) {
		case WS_PREPARING:
		case WS_PREPARED:
		case WS_CREATING:
		case WS_ABORTING:
		case WS_COMPLETING:
			return true;
		case WS_RELEASING:
			if (!s->recovered)
				return true;
			break;
		default:
			break;
		}
	}
	return false;
}

/* ---- the creation slot and its queue ---- */

static void start_prepare(struct wd_session *s);

void wd_slot_release(struct wd_daemon *d, struct wd_session *s)
{
	struct wd_session *next;

	if (d->slot != s || !s)
		return;
	d->slot = NULL;
	s->holds_slot = false;
	if (d->stopping)
		return;
	next = wd_list_first(&d->queue, struct wd_session, qlink);
	if (!next)
		return;
	wd_list_del(&next->qlink);
	wd_timer_disarm(&next->queue_timer);
	start_prepare(next);
}

static void queue_timeout(struct wd_timer *t)
{
	struct wd_session *s = t->arg;
	struct wd_daemon *d = s->d;
	char owner[64] = "another requester";

	wd_list_del(&s->qlink);
	s->state = WS_GATHERED;
	if (d->slot)
		session_owner_text(d->slot, owner, sizeof(owner));
	wd_info("session %llu: gave up waiting for the creation of sets after %u ms (%s holds it)",
		(unsigned long long)s->id, s->queue_timeout_ms, owner);
	if (s->conn)
		wd_conn_error_text(s->conn, VSW_E_QUEUE_TIMEOUT, NULL,
				   "waited %u ms in the queue: %s is creating a set",
				   s->queue_timeout_ms, owner);
}

/* ---- rounds ---- */

static void round_check(struct wd_session *s)
{
	void (*done)(struct wd_session *s);

	if (s->round_sending || s->round_pending || !s->round_done)
		return;
	done = s->round_done;
	s->round_done = NULL;
	done(s);
}

static void round_begin(struct wd_session *s, uint32_t step,
			void (*done)(struct wd_session *s))
{
	s->round_gen++;
	s->round_step = step;
	s->round_pending = 0;
	s->round_failed = false;
	s->round_sending = true;
	s->round_done = done;
	s->chain_count = s->chain_next = 0;
	s->chain_running = NULL;
}

/* Before an event goes out: what the participant is given from then on. */
static void part_mark_sent(struct wd_part *p, uint32_t step)
{
	switch (step) {
	case VSW_STEP_PREPARE_BACKUP:
		p->prepared = true;
		break;
	case VSW_STEP_PREPARE_SNAPSHOT:
		p->snapshot_prepared = true;
		break;
	case VSW_STEP_POST_SNAPSHOT:
		p->post_sent = true;
		break;
	case VSW_STEP_FREEZE:
		p->freeze_sent = true;
		p->freeze_sent_ns = vsw_now_ns();
		if (!p->s->t_frozen_first)
			p->s->t_frozen_first = p->freeze_sent_ns;
		wd_part_set_frozen(p, true);
		wd_timer_arm_ms(&p->window, p->freeze_window_ms);
		break;
	default:
		break;
	}
}

static uint32_t step_timeout(const struct wd_session *s, const struct wd_part *p,
			     uint32_t step)
{
	uint32_t t = s->step_timeout_ms;

	if (step == VSW_STEP_FREEZE && p->freeze_window_ms < t)
		t = p->freeze_window_ms;
	if (p->w && p->w->hook && wd_hook_timeout_ms(p->w) < t)
		t = wd_hook_timeout_ms(p->w);
	return t;
}

static void part_send(struct wd_session *s, struct wd_part *p)
{
	uint32_t step = s->round_step;
	char why[128];
	int err;

	part_mark_sent(p, step);
	err = wd_event_send(p, step, step_timeout(s, p, step), part_event_done);
	if (!err)
		return;
	/* Nothing went out: it fails now, and the round ends without it. */
	snprintf(why, sizeof(why), "vsswriterd could not send %s: %s", vsw_step_name(step),
		 strerror(-err));
	p->in_round = false;
	s->round_pending--;
	if (step == VSW_STEP_FREEZE) {
		wd_timer_disarm(&p->window);
		wd_part_set_frozen(p, false);
	}
	if (step != VSW_STEP_ABORT && step != VSW_STEP_BACKUP_COMPLETE &&
	    step != VSW_STEP_IDENTIFY) {
		part_record_failure(p, step, VSW_FAILURE_OUT_OF_RESOURCES, why);
		s->round_failed = true;
	}
}

static void round_add(struct wd_session *s, struct wd_part *p)
{
	struct wd_part **grown;

	p->in_round = true;
	s->round_pending++;
	if (p->kind == VSW_KIND_QEMU_GA_HOOK) {
		grown = realloc(s->chain, (s->chain_count + 1) * sizeof(*grown));
		if (grown) {
			s->chain = grown;
			s->chain[s->chain_count++] = p;
			return;
		}
	}
	part_send(s, p);
}

static void chain_next(struct wd_session *s)
{
	while (!s->chain_running && s->chain_next < s->chain_count) {
		struct wd_part *p = s->chain[s->chain_next++];

		/* A failed freeze stops the chain: the rest stay unfrozen. */
		if (s->round_failed && s->round_step == VSW_STEP_FREEZE) {
			p->in_round = false;
			s->round_pending--;
			continue;
		}
		s->chain_running = p;
		part_send(s, p);
		if (!p->in_round)
			s->chain_running = NULL;
	}
}

static void round_end_sending(struct wd_session *s)
{
	s->round_sending = false;
	chain_next(s);
	if (s->round_failed && !s->aborting && s->round_step != VSW_STEP_IDENTIFY &&
	    s->round_step != VSW_STEP_BACKUP_COMPLETE && s->round_step != VSW_STEP_ABORT) {
		begin_abort(s);
		return;
	}
	round_check(s);
}

static bool part_in_sequence(const struct wd_part *p)
{
	return !p->excluded;
}

/* ---- what each answer means ---- */

static void sequence_failed(struct wd_session *s, struct wd_part *p, uint32_t step,
			    uint32_t failure, const char *message)
{
	part_record_failure(p, step, failure, message);
	s->round_failed = true;
	if (!s->fail_error) {
		s->fail_error = failure == VSW_FAILURE_INCONSISTENT_SNAPSHOT ?
				VSW_E_INCONSISTENT : VSW_E_WRITER_FAILED;
		snprintf(s->fail_message, sizeof(s->fail_message),
			 "writer %s failed at %s: %s: %s", p->name, vsw_step_name(step),
			 vsw_failure_name(failure), p->message);
		if (s->fail_extra)
			json_object_put(s->fail_extra);
		s->fail_extra = json_object_new_object();
		json_object_object_add(s->fail_extra, "writer", json_object_new_string(p->name));
		json_object_object_add(s->fail_extra, "step",
				       json_object_new_string(vsw_step_name(step)));
		json_object_object_add(s->fail_extra, "failure",
				       json_object_new_string(vsw_failure_name(failure)));
		json_object_object_add(s->fail_extra, "writer_message",
				       json_object_new_string(p->message));
	}
	if (!s->round_sending && !s->aborting)
		begin_abort(s);
}

static void step_result(struct wd_session *s, struct wd_part *p, uint32_t step,
			int result, uint32_t failure, const char *message)
{
	struct wd_daemon *d = s->d;
	char why[VSW_MESSAGE_MAX];
	bool ok = result == 0;

	switch (step) {
	case VSW_STEP_IDENTIFY:
		if (ok && p->w && wd_components_resolve(d, p->w->components,
							p->w->component_count, why,
							sizeof(why))) {
			ok = false;
			failure = VSW_FAILURE_NON_RETRYABLE;
			message = why;
		}
		if (!ok) {
			part_record_failure(p, step, failure, message);
			p->excluded = true;
			snprintf(p->excluded_why, sizeof(p->excluded_why),
				 "failed identify: %s", p->message);
		}
		return;
	case VSW_STEP_BACKUP_COMPLETE:
		if (ok) {
			part_set_state(p, VSW_STATE_STABLE);
		} else {
			part_record_failure(p, step, failure, message);
		}
		return;
	case VSW_STEP_ABORT:
		wd_timer_disarm(&p->window);
		wd_part_set_frozen(p, false);
		/* A writer that failed this sequence shows it until the next;
		 * its first failure is the cause, and stays its result. */
		if (!ok && p->failed_step)
			wd_info("writer %s: abort failed too: %s", p->name, message ? message : "");
		else if (!ok)
			part_record_failure(p, step, failure, message);
		else if (!p->failed_step)
			part_set_state(p, VSW_STATE_STABLE);
		return;
	default:
		break;
	}
	if (s->aborting)
		return;
	if (!ok) {
		if (step == VSW_STEP_THAW) {
			p->thawed = true;
			p->thaw_done_ns = vsw_now_ns();
		}
		sequence_failed(s, p, step, failure, message);
		return;
	}
	switch (step) {
	case VSW_STEP_PREPARE_BACKUP:
		part_set_state(p, VSW_STATE_STABLE);
		break;
	case VSW_STEP_PREPARE_SNAPSHOT:
		part_set_state(p, VSW_STATE_WAITING_FOR_FREEZE);
		break;
	case VSW_STEP_FREEZE:
		p->freeze_done_ns = vsw_now_ns();
		part_set_state(p, VSW_STATE_WAITING_FOR_THAW);
		break;
	case VSW_STEP_THAW:
		wd_timer_disarm(&p->window);
		p->thawed = true;
		p->thaw_done_ns = vsw_now_ns();
		wd_part_set_frozen(p, false);
		part_set_state(p, VSW_STATE_WAITING_FOR_POST_SNAPSHOT);
		break;
	case VSW_STEP_POST_SNAPSHOT:
		p->post_done = true;
		part_set_state(p, VSW_STATE_WAITING_FOR_BACKUP_COMPLETE);
		break;
	default:
		break;
	}
}

static void part_event_done(struct wd_event *ev, int result, uint32_t failure,
			    const char *message)
{
	struct wd_part *p = ev->part;
	struct wd_session *s = p->s;
	uint64_t gen = s->round_gen;
	bool chained = s->chain_running == p;

	p->in_round = false;
	step_result(s, p, ev->step, result, failure, message);
	if (s->round_gen != gen)
		return;		/* an abort replaced this round */
	if (s->round_pending)
		s->round_pending--;
	if (chained) {
		s->chain_running = NULL;
		chain_next(s);
	}
	round_check(s);
}

void wd_session_part_failed(struct wd_part *p, uint32_t step, uint32_t failure,
			    const char *message)
{
	struct wd_session *s = p->s;

	if (s->aborting || s->state == WS_DONE)
		return;
	switch (s->state) {
	case WS_PREPARING:
	case WS_PREPARED:
	case WS_CREATING:
		if (p->ev) {
			/* Its pending step fails with it. */
			wd_event_finish_soon(p->ev, -ECANCELED, failure, message);
			return;
		}
		sequence_failed(s, p, step, failure, message);
		break;
	default:
		part_record_failure(p, step, failure, message);
		break;
	}
}

static void window_passed(struct wd_timer *t)
{
	struct wd_part *p = t->arg;
	struct wd_session *s = p->s;
	char message[128];

	if (!p->frozen || p->thawed || s->aborting)
		return;
	snprintf(message, sizeof(message),
		 "its freeze window of %u ms passed before it was thawed", p->freeze_window_ms);
	/* Its library thaws it on its own now: count it as thawed. */
	wd_part_set_frozen(p, false);
	if (p->ev) {
		wd_event_finish_soon(p->ev, -ETIMEDOUT, VSW_FAILURE_TIMEOUT, message);
		return;
	}
	sequence_failed(s, p, VSW_STEP_FREEZE, VSW_FAILURE_TIMEOUT, message);
}

/* ---- gather: identify ---- */

static int parts_build(struct wd_session *s)
{
	struct wd_daemon *d = s->d;
	struct wd_list *pos, *tmp;
	size_t n = 0;

	parts_free(s);
	s->parts = calloc(d->writer_count ? d->writer_count : 1, sizeof(*s->parts));
	if (!s->parts)
		return -ENOMEM;
	wd_list_for_each_safe(pos, tmp, &d->writers) {
		struct wd_writer *w = wd_container_of(pos, struct wd_writer, link);
		struct wd_part *p;

		if (!w->connected || n >= d->writer_count)
			continue;
		p = &s->parts[n];
		if (wd_timer_init(d->loop, &p->window, window_passed, p))
			return -EMFILE;
		n++;
		p->s = s;
		p->w = w;
		wd_writer_get(w);
		p->kind = w->kind;
		snprintf(p->name, sizeof(p->name), "%s", w->name);
		snprintf(p->class_id, sizeof(p->class_id), "%s", w->class_id);
		snprintf(p->instance_id, sizeof(p->instance_id), "%s", w->instance_id);
		p->writer_class = w->writer_class;
		p->freeze_window_ms = w->freeze_window_ms;
		p->state = w->state;
		s->part_count = n;
	}
	s->part_count = n;
	return 0;
}

static void gather_done(struct wd_session *s)
{
	struct json_object *reply;

	s->state = WS_GATHERED;
	if (s->requester_gone || !s->conn) {
		session_maybe_free(s);
		return;
	}
	reply = json_object_new_object();
	json_object_object_add(reply, "session", json_object_new_uint64(s->id));
	json_object_object_add(reply, "writers", parts_json(s, true));
	wd_conn_reply(s->conn, reply);
}

static void gather_start(struct wd_deferred *dw)
{
	struct wd_session *s = dw->arg;
	struct wd_daemon *d = s->d;
	char why[VSW_MESSAGE_MAX];
	size_t i;

	wd_hooks_scan(d);
	if (parts_build(s)) {
		s->state = WS_OPEN;
		if (s->conn)
			wd_conn_error_text(s->conn, VSW_E_BUSY, NULL, "out of memory or descriptors");
		return;
	}
	round_begin(s, VSW_STEP_IDENTIFY, gather_done);
	for (i = 0; i < s->part_count; i++) {
		struct wd_part *p = &s->parts[i];

		/* A writer in another set's sequence answers from its last
		 * identify instead of being asked in the middle of it. */
		if (p->w->active || p->kind != VSW_KIND_PROCESS) {
			if (wd_components_resolve(d, p->w->components, p->w->component_count,
						  why, sizeof(why))) {
				part_record_failure(p, VSW_STEP_IDENTIFY,
						    VSW_FAILURE_NON_RETRYABLE, why);
				p->excluded = true;
				snprintf(p->excluded_why, sizeof(p->excluded_why),
					 "failed identify: %s", why);
			}
			continue;
		}
		round_add(s, p);
	}
	round_end_sending(s);
}

static int parse_step_timeout(struct wd_session *s, struct json_object *params,
			      char *why, size_t why_len)
{
	uint64_t v;
	int err = vsw_get_uint(params, "step_timeout_ms", false,
			       s->d->cfg.max_step_timeout_ms, &v, why, why_len);

	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	if (v == 0) {
		snprintf(why, why_len, "\"step_timeout_ms\" must be at least 1");
		return -EINVAL;
	}
	s->step_timeout_ms = (uint32_t)v;
	return 0;
}

static void do_gather(struct wd_conn *c, const struct vsw_msg *m)
{
	struct wd_session *s = c->session;
	char why[256];

	if (!s) {
		s = session_new(c);
		if (!s) {
			wd_conn_error_text(c, VSW_E_BUSY, NULL, "out of memory or descriptors");
			return;
		}
	} else if (s->state != WS_OPEN && s->state != WS_GATHERED) {
		wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL,
				   "the writers were gathered already and the backup has begun");
		return;
	}
	if (parse_step_timeout(s, m->parameters, why, sizeof(why))) {
		wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, "step_timeout_ms", "%s", why);
		return;
	}
	s->state = WS_GATHERING;
	/* Hooks are found on a filesystem: not while something is frozen. */
	wd_defer(s->d, &s->gather_work);
}

/* ---- prepare-backup ---- */

static void idle_timeout(struct wd_timer *t)
{
	struct wd_session *s = t->arg;

	if (s->state != WS_PREPARED)
		return;
	snprintf(s->end_reason, sizeof(s->end_reason),
		 "the requester did not call DoSnapshotSet within %u ms of PrepareBackup",
		 s->step_timeout_ms);
	s->fail_error = VSW_E_TIMEOUT;
	snprintf(s->fail_message, sizeof(s->fail_message), "%s", s->end_reason);
	wd_info("session %llu: %s: aborting", (unsigned long long)s->id, s->end_reason);
	begin_abort(s);
}

static struct json_object *volumes_json(const struct wd_session *s)
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < s->volume_count; i++) {
		struct json_object *o = wd_device_json(s->d, s->volumes[i]);

		json_object_object_add(o, "path", json_object_new_string(s->volume_paths[i]));
		json_object_array_add(arr, o);
	}
	return arr;
}

static void prepare_done(struct wd_session *s)
{
	struct json_object *reply;

	s->state = WS_PREPARED;
	s->idle_timer.fn = idle_timeout;
	wd_timer_arm_ms(&s->idle_timer, s->step_timeout_ms);
	if (!s->conn)
		return;
	reply = json_object_new_object();
	json_object_object_add(reply, "volumes", volumes_json(s));
	json_object_object_add(reply, "writers", parts_json(s, false));
	wd_conn_reply(s->conn, reply);
}

static void start_prepare(struct wd_session *s)
{
	struct wd_daemon *d = s->d;
	size_t i;

	d->slot = s;
	s->holds_slot = true;
	s->state = WS_PREPARING;
	wd_info("session %llu (pid %d): prepare-backup, %zu volume%s", (unsigned long long)s->id,
		(int)s->pid, s->volume_count, s->volume_count == 1 ? "" : "s");
	{
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "session", json_object_new_uint64(s->id));
		json_object_object_add(p, "requester_pid", json_object_new_int64(s->pid));
		wd_monitor_emit(d, "sequence-started", p);
	}
	round_begin(s, VSW_STEP_PREPARE_BACKUP, prepare_done);
	for (i = 0; i < s->part_count; i++) {
		struct wd_part *p = &s->parts[i];
		char why[VSW_MESSAGE_MAX];

		if (!part_in_sequence(p))
			continue;
		if (p->w)
			p->w->active = p;
		/* A hook's undo waits, armed, from its first step on. */
		if (p->w && p->w->hook && wd_hook_prefork_undo(p, why, sizeof(why))) {
			part_mark_sent(p, VSW_STEP_PREPARE_BACKUP);
			part_record_failure(p, VSW_STEP_PREPARE_BACKUP,
					    VSW_FAILURE_OUT_OF_RESOURCES, why);
			s->round_failed = true;
			continue;
		}
		round_add(s, p);
	}
	round_end_sending(s);
}

static int add_volume(struct wd_session *s, const char *path, dev_t dev)
{
	size_t i;

	for (i = 0; i < s->volume_count; i++)
		if (s->volumes[i] == dev)
			return 0;
	if (s->volume_count >= WD_MAX_VOLUMES)
		return -E2BIG;
	s->volume_paths[s->volume_count] = strdup(path);
	if (!s->volume_paths[s->volume_count])
		return -ENOMEM;
	s->volumes[s->volume_count++] = dev;
	return 0;
}

/* A component's device that cannot stay out: the writer's data would be
 * taken at two instants, or not at all. */
static bool check_coverage(struct wd_session *s, char *why, size_t why_len,
			   struct wd_part **culprit)
{
	struct wd_daemon *d = s->d;
	size_t i, j, k;

	for (i = 0; i < s->part_count; i++) {
		struct wd_part *p = &s->parts[i];
		bool any = false;

		if (p->excluded || !p->w)
			continue;
		if (!p->w->component_count)
			continue;
		for (j = 0; j < p->w->component_count; j++) {
			struct wd_component *c = &p->w->components[j];
			size_t in = 0;
			dev_t missing = 0;

			for (k = 0; k < c->volume_count; k++) {
				if (wd_device_covered(d, c->volumes[k], s->volumes, s->volume_count))
					in++;
				else
					missing = c->volumes[k];
			}
			if (in && in < c->volume_count) {
				char name[64];

				wd_device_name(d, missing, name, sizeof(name));
				snprintf(why, why_len,
					 "component \"%s\" lives on %zu volumes and the set lacks %s",
					 c->name, c->volume_count, name);
				*culprit = p;
				return false;
			}
			if (in)
				any = true;
		}
		if (!any) {
			p->excluded = true;
			snprintf(p->excluded_why, sizeof(p->excluded_why),
				 "none of its components is on the set's volumes");
		}
	}
	return true;
}

static void do_prepare(struct wd_conn *c, const struct vsw_msg *m)
{
	struct wd_session *s = c->session;
	struct wd_daemon *d = c->d;
	struct json_object *params = m->parameters, *vols = NULL, *err_params;
	bool writer_volumes = false;
	const char *type_name = "full";
	struct wd_part *culprit = NULL;
	char why[VSW_MESSAGE_MAX], inner[VSW_MESSAGE_MAX];
	uint64_t queue_ms = 60000;
	size_t i, j, k;
	int type, err;

	if (!s || s->state != WS_GATHERED) {
		wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL, "%s",
				   !s || s->state == WS_OPEN ?
				   "call GatherWriterMetadata first" :
				   s->state == WS_DONE && s->end_reason[0] ? s->end_reason :
				   "PrepareBackup was called already");
		return;
	}
	err = vsw_get_array(params, "volumes", false, WD_MAX_VOLUMES, &vols, why, sizeof(why));
	if (err && err != -ENOENT)
		goto invalid;
	err = vsw_get_bool(params, "writer_volumes", false, &writer_volumes, why, sizeof(why));
	if (err && err != -ENOENT)
		goto invalid;
	err = vsw_get_string(params, "backup_type", false, 32, &type_name, why, sizeof(why));
	if (err && err != -ENOENT)
		goto invalid;
	type = vsw_backup_type_from_name(type_name);
	if (type < 0) {
		snprintf(why, sizeof(why),
			 "\"backup_type\" is not one of full, incremental, differential, log, copy");
		goto invalid;
	}
	err = vsw_get_uint(params, "queue_timeout_ms", false, 24ULL * 3600 * 1000, &queue_ms,
			   why, sizeof(why));
	if (err && err != -ENOENT)
		goto invalid;
	s->backup_type = (uint32_t)type;
	s->queue_timeout_ms = (uint32_t)queue_ms;

	for (i = 0; i < s->volume_count; i++)
		free(s->volume_paths[i]);
	s->volume_count = 0;
	for (i = 0; vols && i < json_object_array_length(vols); i++) {
		struct json_object *v = json_object_array_get_idx(vols, i);
		const char *path;
		dev_t dev;

		if (!json_object_is_type(v, json_type_string)) {
			snprintf(why, sizeof(why), "\"volumes\"[%zu] is not a string", i);
			goto invalid;
		}
		path = json_object_get_string(v);
		if (!*path || strlen(path) >= VSW_WIRE_PATH_MAX) {
			snprintf(why, sizeof(why), "\"volumes\"[%zu] is not a device path", i);
			goto invalid;
		}
		/* A path, or MAJOR:MINOR, named by the kernel's name. */
		err = wd_device_parse(d, path, &dev, inner, sizeof(inner));
		if (err) {
			wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, "volumes", "%s", inner);
			return;
		}
		if (path[0] != '/') {
			char name[64];

			wd_device_name(d, dev, name, sizeof(name));
			if (!strchr(name, ':')) {
				snprintf(inner, sizeof(inner), "/dev/%s", name);
				path = inner;
			}
		}
		err = add_volume(s, path, dev);
		if (err) {
			wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, "volumes",
					   "more than %d volumes", WD_MAX_VOLUMES);
			return;
		}
	}
	if (writer_volumes) {
		for (i = 0; i < s->part_count; i++) {
			struct wd_part *p = &s->parts[i];

			if (p->excluded || !p->w)
				continue;
			for (j = 0; j < p->w->component_count; j++)
				for (k = 0; k < p->w->components[j].volume_count; k++) {
					dev_t dev = p->w->components[j].volumes[k];
					char path[64];

					wd_device_name(d, dev, path, sizeof(path));
					if (!strchr(path, ':')) {
						char full[80];

						snprintf(full, sizeof(full), "/dev/%s", path);
						err = add_volume(s, full, dev);
					} else {
						err = add_volume(s, path, dev);
					}
					if (err) {
						wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, "volumes",
								   "the writers' components need more than %d volumes",
								   WD_MAX_VOLUMES);
						return;
					}
				}
		}
	}
	if (!s->volume_count) {
		wd_conn_error_text(c, VSW_E_NO_VOLUMES, "volumes",
				   writer_volumes ? "no writer has a component on a block device" :
				   "no volumes: give \"volumes\" or \"writer_volumes\": true");
		return;
	}
	if (!check_coverage(s, inner, sizeof(inner), &culprit)) {
		/* Before anything is asked of anyone. */
		part_record_failure(culprit, VSW_STEP_PREPARE_BACKUP,
				    VSW_FAILURE_INCONSISTENT_SNAPSHOT, inner);
		snprintf(why, sizeof(why), "writer %s: %s", culprit->name, inner);
		err_params = json_object_new_object();
		json_object_object_add(err_params, "message", json_object_new_string(why));
		json_object_object_add(err_params, "writer", json_object_new_string(culprit->name));
		json_object_object_add(err_params, "step", json_object_new_string("prepare-backup"));
		json_object_object_add(err_params, "failure",
				       json_object_new_string("inconsistent-snapshot"));
		json_object_object_add(err_params, "writers", parts_json(s, false));
		/* Its state shows the failure; the session may try other volumes. */
		culprit->failed_step = 0;
		culprit->failure = 0;
		for (i = 0; i < s->part_count; i++)
			if (!strcmp(s->parts[i].excluded_why,
				    "none of its components is on the set's volumes"))
				s->parts[i].excluded = false;
		wd_conn_error(c, VSW_E_INCONSISTENT, err_params);
		return;
	}
	if (!d->slot && wd_list_empty(&d->queue)) {
		start_prepare(s);
		return;
	}
	if (!s->queue_timeout_ms) {
		char owner[64] = "another requester";

		if (d->slot)
			session_owner_text(d->slot, owner, sizeof(owner));
		wd_conn_error_text(c, VSW_E_QUEUE_TIMEOUT, NULL,
				   "%s is creating a set, and queue_timeout_ms is 0", owner);
		return;
	}
	s->state = WS_QUEUED;
	wd_list_add_tail(&d->queue, &s->qlink);
	s->queue_timer.fn = queue_timeout;
	wd_timer_arm_ms(&s->queue_timer, s->queue_timeout_ms);
	wd_info("session %llu (pid %d) waits for the creation slot", (unsigned long long)s->id,
		(int)s->pid);
	return;
invalid:
	wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, NULL, "%s", why);
}

/* ---- DoSnapshotSet ---- */

/* Whether the requester itself could write @path (it names the storage). */
static bool requester_may_write(const struct wd_conn *c, const struct stat *st)
{
	mode_t bits;
	int i;

	if (c->uid == 0)
		return true;
	if (st->st_uid == c->uid) {
		bits = (st->st_mode >> 6) & 7;
	} else {
		bool member = st->st_gid == c->gid;

		for (i = 0; !member && i < c->group_count; i++)
			member = c->groups[i] == st->st_gid;
		bits = member ? (st->st_mode >> 3) & 7 : st->st_mode & 7;
	}
	if (S_ISDIR(st->st_mode))
		return (bits & 3) == 3;
	return bits & 2;
}

static void hooks_release(struct wd_session *s)
{
	size_t i;

	for (i = 0; i < s->part_count; i++)
		if (s->parts[i].w && s->parts[i].w->hook && !s->parts[i].excluded)
			wd_hook_release(s->parts[i].w);
}

static void clear_active(struct wd_session *s)
{
	size_t i;

	for (i = 0; i < s->part_count; i++)
		if (s->parts[i].w && s->parts[i].w->active == &s->parts[i])
			s->parts[i].w->active = NULL;
}

static uint64_t us_between(uint64_t a, uint64_t b)
{
	return b > a && a ? (b - a) / 1000 : 0;
}

static struct json_object *timing_json(const struct wd_session *s)
{
	struct json_object *o = json_object_new_object();
	uint64_t frozen_end = s->t_thawed_last ? s->t_thawed_last : s->t_commit_end;

	json_object_object_add(o, "prepare_snapshot_us",
			       json_object_new_uint64(us_between(s->t_request, s->t_frozen_first ?
								 s->t_frozen_first : s->t_commit_start)));
	json_object_object_add(o, "freeze_us", json_object_new_uint64(
		us_between(s->t_frozen_first, s->t_commit_start)));
	json_object_object_add(o, "commit_us", json_object_new_uint64(
		us_between(s->t_commit_start, s->t_commit_end)));
	json_object_object_add(o, "thaw_us", json_object_new_uint64(
		s->t_thawed_last ? us_between(s->t_commit_end, s->t_thawed_last) : 0));
	json_object_object_add(o, "frozen_us", json_object_new_uint64(
		s->t_frozen_first ? us_between(s->t_frozen_first, frozen_end) : 0));
	json_object_object_add(o, "total_us", json_object_new_uint64(
		us_between(s->t_request, s->t_done)));
	json_object_object_add(o, "request_to_commit_us", json_object_new_uint64(
		s->created_ns > s->t_request_real ? (s->created_ns - s->t_request_real) / 1000 : 0));
	return o;
}

static void writers_succeeded(struct wd_daemon *d)
{
	struct wd_list *pos, *tmp;

	/* A failed writer is stable again after a good sequence; a writer that
	 * went away without a word is forgotten. */
	wd_list_for_each_safe(pos, tmp, &d->writers) {
		struct wd_writer *w = wd_container_of(pos, struct wd_writer, link);

		if (!w->connected && w->kind == VSW_KIND_PROCESS) {
			wd_writer_unlist(w);
			continue;
		}
		if (!w->active && w->state >= VSW_STATE_FAILED_AT_IDENTIFY)
			wd_writer_set_state(w, VSW_STATE_STABLE);
	}
}

static void created(struct wd_session *s)
{
	struct wd_daemon *d = s->d;
	struct json_object *reply, *ev;

	s->t_done = vsw_now_ns();
	s->state = WS_CREATED;
	s->phase = PH_NONE;
	hooks_release(s);
	clear_active(s);
	d->sequences_ok++;
	wd_info("session %llu: set %s created (writes held %llu us, writers frozen %llu us)",
		(unsigned long long)s->id, s->set_id, (unsigned long long)s->hold_us,
		(unsigned long long)(s->t_frozen_first ?
				     us_between(s->t_frozen_first, s->t_thawed_last) : 0));
	writers_succeeded(d);
	wd_runstate_commit_end(d, s);
	wd_slot_release(d, s);
	ev = json_object_new_object();
	json_object_object_add(ev, "session", json_object_new_uint64(s->id));
	json_object_object_add(ev, "set_id", json_object_new_string(s->set_id));
	wd_monitor_emit(d, "set-created", ev);
	if (!s->conn) {
		/* It went away during post-snapshot: it will not complete. */
		wd_session_requester_gone(s);
		return;
	}
	reply = json_object_new_object();
	json_object_object_add(reply, "set_id", json_object_new_string(s->set_id));
	json_object_object_add(reply, "hold_us", json_object_new_uint64(s->hold_us));
	json_object_object_add(reply, "created_ns", json_object_new_uint64(s->created_ns));
	json_object_object_add(reply, "snapshots", s->snapshots ?
			       json_object_get(s->snapshots) : json_object_new_array());
	json_object_object_add(reply, "writers", parts_json(s, false));
	json_object_object_add(reply, "timing", timing_json(s));
	wd_conn_reply(s->conn, reply);
}

static bool class_has_parts(struct wd_session *s, uint32_t cls, bool frozen_only)
{
	size_t i;

	for (i = 0; i < s->part_count; i++) {
		struct wd_part *p = &s->parts[i];

		if (part_in_sequence(p) && p->writer_class == cls &&
		    (!frozen_only || p->freeze_sent))
			return true;
	}
	return false;
}

static void round_for_class(struct wd_session *s, uint32_t step, uint32_t cls,
			    void (*done)(struct wd_session *s))
{
	size_t i;

	round_begin(s, step, done);
	for (i = 0; i < s->part_count; i++) {
		struct wd_part *p = &s->parts[i];

		if (!part_in_sequence(p) || p->writer_class != cls)
			continue;
		if (step == VSW_STEP_THAW && !p->freeze_sent)
			continue;
		round_add(s, p);
	}
	round_end_sending(s);
}

static void round_for_all(struct wd_session *s, uint32_t step,
			  void (*done)(struct wd_session *s))
{
	size_t i;

	round_begin(s, step, done);
	for (i = 0; i < s->part_count; i++)
		if (part_in_sequence(&s->parts[i]))
			round_add(s, &s->parts[i]);
	round_end_sending(s);
}

/* The smallest freeze window left among frozen writers, in ms. */
static uint64_t window_left_ms(struct wd_session *s)
{
	uint64_t left = UINT64_MAX;
	size_t i;

	for (i = 0; i < s->part_count; i++) {
		struct wd_part *p = &s->parts[i];

		if (p->frozen && wd_timer_left_ms(&p->window) < left)
			left = wd_timer_left_ms(&p->window);
	}
	return left;
}

static void commit(struct wd_session *s)
{
	struct wd_daemon *d = s->d;
	struct wd_create_request req = { 0 };
	struct wd_create_outcome out = { 0 };
	struct wd_provider_error perr = { 0 };
	uint64_t hold = s->hold_limit_ms, left = window_left_ms(s);
	size_t i;
	int err;

	s->phase = PH_COMMIT;
	/* The kernel's hold ends before the first writer's window does. */
	if (left != UINT64_MAX) {
		if (left <= WD_COMMIT_MARGIN_MS) {
			s->fail_error = VSW_E_WRITER_FAILED;
			snprintf(s->fail_message, sizeof(s->fail_message),
				 "a writer's freeze window ends in %llu ms: too soon to commit",
				 (unsigned long long)left);
			begin_abort(s);
			return;
		}
		if (left - WD_COMMIT_MARGIN_MS < hold)
			hold = left - WD_COMMIT_MARGIN_MS;
	}
	for (i = 0; i < s->volume_count; i++) {
		req.device_paths[i] = s->volume_paths[i];
		req.devices[i] = s->volumes[i];
	}
	req.device_count = s->volume_count;
	req.storage_path = s->storage_path;
	req.storage_limit = s->storage_limit;
	req.chunk_size = s->chunk_size;
	req.label = s->label;
	req.flags = s->create_flags;
	req.hold_limit_ms = (uint32_t)hold;
	wd_runstate_commit_begin(d, s);
	s->t_commit_start = vsw_now_ns();
	err = d->provider->create(d->provider_ctx, &req, &out, &perr);
	s->t_commit_end = vsw_now_ns();
	if (err) {
		struct json_object *prov = json_object_new_object();

		if (!perr.err)
			perr.err = err;
		wd_info("session %llu: the commit failed: %s%s%s", (unsigned long long)s->id,
			perr.message[0] ? perr.message : strerror(-perr.err),
			perr.object[0] ? ": " : "", perr.object);
		s->fail_error = VSW_E_PROVIDER;
		snprintf(s->fail_message, sizeof(s->fail_message), "the kernel refused the set: %s",
			 perr.message[0] ? perr.message : strerror(-perr.err));
		json_object_object_add(prov, "errno", json_object_new_int(-perr.err));
		json_object_object_add(prov, "kernel_message", json_object_new_string(perr.message));
		if (perr.object[0])
			json_object_object_add(prov, "object", json_object_new_string(perr.object));
		json_object_object_add(prov, "hold_limit_ms", json_object_new_int64((int64_t)hold));
		if (s->fail_extra)
			json_object_put(s->fail_extra);
		s->fail_extra = prov;
		wd_runstate_commit_end(d, s);
		begin_abort(s);
		return;
	}
	s->committed = true;
	snprintf(s->set_id, sizeof(s->set_id), "%s", out.set_id);
	s->hold_us = out.hold_us;
	s->created_ns = out.created_ns;
	if (s->snapshots)
		json_object_put(s->snapshots);
	s->snapshots = out.snapshots;
	/* The set id goes to /run at once: a crash from here on deletes it. */
	wd_runstate_commit_begin(d, s);
	creation_next(s);
}

static void creation_next(struct wd_session *s)
{
	size_t i;

	if (s->aborting)
		return;
	switch (s->phase) {
	case PH_NONE:
		s->phase = PH_PREPARE_SNAPSHOT;
		round_for_all(s, VSW_STEP_PREPARE_SNAPSHOT, creation_next);
		return;
	case PH_PREPARE_SNAPSHOT:
		s->phase = PH_FREEZE;
		s->class_index = -1;
		/* fall through */
	case PH_FREEZE:
		while (++s->class_index < 3) {
			if (!class_has_parts(s, class_order[s->class_index], false))
				continue;
			round_for_class(s, VSW_STEP_FREEZE, class_order[s->class_index],
					creation_next);
			return;
		}
		commit(s);
		return;
	case PH_COMMIT:
		s->phase = PH_THAW;
		s->class_index = 3;
		/* fall through */
	case PH_THAW:
		while (--s->class_index >= 0) {
			if (!class_has_parts(s, class_order[s->class_index], true))
				continue;
			round_for_class(s, VSW_STEP_THAW, class_order[s->class_index],
					creation_next);
			return;
		}
		s->t_thawed_last = vsw_now_ns();
		s->phase = PH_POST_SNAPSHOT;
		/*
		 * From here a crash tells these writers that the backup failed:
		 * the state file says so before the first of them hears of
		 * post-snapshot (one may kill us as it does).
		 */
		for (i = 0; i < s->part_count; i++)
			if (part_in_sequence(&s->parts[i]))
				s->parts[i].post_sent = true;
		wd_runstate_save(s->d);
		round_for_all(s, VSW_STEP_POST_SNAPSHOT, created);
		return;
	case PH_POST_SNAPSHOT:
		created(s);
		return;
	}
}

static void do_set(struct wd_conn *c, const struct vsw_msg *m)
{
	struct wd_session *s = c->session;
	struct json_object *p = m->parameters;
	const char *storage = NULL, *label = NULL;
	uint64_t limit = 0, chunk = 0, hold = 0;
	bool no_freeze = false;
	char why[VSW_MESSAGE_MAX];
	struct stat st;
	size_t i;
	int err;

	/*
	 * A writer failed after PrepareBackup's reply (it went away right
	 * after answering): the abort's end answers this call, with the
	 * writer's failure.
	 */
	if (s && s->state == WS_ABORTING)
		return;
	if (!s || s->state != WS_PREPARED) {
		wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL, "%s",
				   s && s->end_reason[0] ? s->end_reason :
				   "call PrepareBackup first, and DoSnapshotSet once");
		return;
	}
	err = vsw_get_string(p, "storage_path", true, VSW_WIRE_PATH_MAX - 1, &storage, why,
			     sizeof(why));
	if (!err && storage[0] != '/') {
		snprintf(why, sizeof(why), "\"storage_path\" is not an absolute path");
		err = -EINVAL;
	}
	if (!err) {
		err = vsw_get_uint(p, "storage_limit", false, UINT64_MAX, &limit, why, sizeof(why));
		if (err == -ENOENT)
			err = 0;
	}
	if (!err) {
		err = vsw_get_uint(p, "chunk_size", false, VSS_MAX_CHUNK_SIZE, &chunk, why,
				   sizeof(why));
		if (err == -ENOENT)
			err = 0;
	}
	if (!err) {
		err = vsw_get_string(p, "label", false, VSS_LABEL_MAX - 1, &label, why, sizeof(why));
		if (err == -ENOENT)
			err = 0;
		else if (!err && !vsw_is_clean_text(label)) {
			snprintf(why, sizeof(why), "\"label\" holds control characters");
			err = -EINVAL;
		}
	}
	if (!err) {
		err = vsw_get_bool(p, "no_freeze", false, &no_freeze, why, sizeof(why));
		if (err == -ENOENT)
			err = 0;
	}
	if (!err) {
		err = vsw_get_uint(p, "hold_limit_ms", false, VSS_MAX_HOLD_LIMIT_MS, &hold, why,
				   sizeof(why));
		if (err == -ENOENT)
			err = 0;
		else if (!err && !hold) {
			snprintf(why, sizeof(why), "\"hold_limit_ms\" must be at least 1");
			err = -EINVAL;
		}
	}
	if (err) {
		wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, NULL, "%s", why);
		return;
	}
	if (stat(storage, &st) < 0) {
		wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, "storage_path", "%s: %s", storage,
				   strerror(errno));
		return;
	}
	if (!requester_may_write(c, &st)) {
		wd_conn_error_text(c, VSW_E_PERMISSION_DENIED, "storage_path",
				   "%s: uid %d may not write there, so it may not be the storage",
				   storage, (int)c->uid);
		return;
	}
	wd_timer_disarm(&s->idle_timer);
	free(s->storage_path);
	free(s->label);
	s->storage_path = strdup(storage);
	s->label = label ? strdup(label) : NULL;
	if (!s->storage_path || (label && !s->label)) {
		wd_conn_error_text(c, VSW_E_BUSY, NULL, "out of memory");
		return;
	}
	s->storage_limit = limit;
	s->chunk_size = (uint32_t)chunk;
	s->create_flags = no_freeze ? VSS_CREATE_NO_FREEZE : 0;
	s->hold_limit_ms = hold ? (uint32_t)hold : s->d->cfg.hold_limit_ms;
	s->state = WS_CREATING;
	s->phase = PH_NONE;
	s->t_request = vsw_now_ns();
	s->t_request_real = vsw_realtime_ns();

	/* Before anything freezes: every process a hook may need is forked,
	 * and the kernel handle is open. */
	for (i = 0; i < s->part_count; i++) {
		struct wd_part *part = &s->parts[i];

		if (part->excluded || !part->w || !part->w->hook)
			continue;
		if (wd_hook_prefork(part, why, sizeof(why))) {
			sequence_failed(s, part, VSW_STEP_PREPARE_SNAPSHOT,
					VSW_FAILURE_OUT_OF_RESOURCES, why);
			return;
		}
	}
	{
		struct wd_provider_error perr = { 0 };

		if (s->d->provider->prepare &&
		    s->d->provider->prepare(s->d->provider_ctx, &perr)) {
			s->fail_error = VSW_E_PROVIDER;
			snprintf(s->fail_message, sizeof(s->fail_message), "%s", perr.message[0] ?
				 perr.message : "the vss kernel module is not available");
			begin_abort(s);
			return;
		}
	}
	creation_next(s);
}

/* ---- abort ---- */

static void abort_finish(struct wd_session *s)
{
	struct wd_daemon *d = s->d;
	struct json_object *params, *ev;
	struct wd_provider_error perr = { 0 };

	if (s->committed && !s->set_deleted) {
		if (d->provider->delete_set(d->provider_ctx, s->set_id, &perr)) {
			snprintf(s->delete_error, sizeof(s->delete_error), "%s",
				 perr.message[0] ? perr.message : strerror(-perr.err));
			wd_err("session %llu: cannot delete the aborted set %s: %s",
			       (unsigned long long)s->id, s->set_id, s->delete_error);
		} else {
			s->set_deleted = true;
			wd_info("session %llu: deleted the aborted set %s", (unsigned long long)s->id,
				s->set_id);
		}
	}
	hooks_release(s);
	clear_active(s);
	s->aborting = false;
	s->state = WS_DONE;
	s->t_done = vsw_now_ns();
	d->sequences_failed++;
	wd_runstate_commit_end(d, s);
	wd_slot_release(d, s);
	if (!s->end_reason[0])
		snprintf(s->end_reason, sizeof(s->end_reason), "the sequence was aborted: %s",
			 s->fail_message);
	ev = json_object_new_object();
	json_object_object_add(ev, "session", json_object_new_uint64(s->id));
	json_object_object_add(ev, "reason", json_object_new_string(s->fail_message));
	if (s->committed)
		json_object_object_add(ev, "set_id", json_object_new_string(s->set_id));
	wd_monitor_emit(d, "set-aborted", ev);
	wd_info("session %llu: aborted: %s", (unsigned long long)s->id, s->fail_message);
	if (s->conn && s->conn->call_pending) {
		if (s->abort_requested) {
			params = json_object_new_object();
			json_object_object_add(params, "aborted", json_object_new_boolean(1));
			json_object_object_add(params, "writers", parts_json(s, false));
			wd_conn_reply(s->conn, params);
		} else {
			params = s->fail_extra ? s->fail_extra : json_object_new_object();
			s->fail_extra = NULL;
			json_object_object_add(params, "message",
					       json_object_new_string(s->fail_message));
			json_object_object_add(params, "writers", parts_json(s, false));
			if (s->committed)
				json_object_object_add(params, "set_deleted",
						       json_object_new_boolean(s->set_deleted));
			wd_conn_error(s->conn, s->fail_error ? s->fail_error : VSW_E_WRITER_FAILED,
				      params);
		}
	}
	if (d->stopping && !wd_sessions_busy(d))
		d->stopped = true;
	session_maybe_free(s);
}

static void abort_next(struct wd_session *s)
{
	size_t i;

	while (--s->class_index >= 0) {
		uint32_t cls = class_order[s->class_index];
		bool any = false;

		round_begin(s, VSW_STEP_ABORT, abort_next);
		for (i = 0; i < s->part_count; i++) {
			struct wd_part *p = &s->parts[i];

			if (p->excluded || !p->prepared || p->writer_class != cls)
				continue;
			any = true;
			round_add(s, p);
		}
		if (!any) {
			s->round_sending = false;
			s->round_done = NULL;
			continue;
		}
		round_end_sending(s);
		return;
	}
	abort_finish(s);
}

static void begin_abort(struct wd_session *s)
{
	size_t i;

	if (s->aborting)
		return;
	s->aborting = true;
	s->state = WS_ABORTING;
	wd_timer_disarm(&s->idle_timer);
	/* What is still out is forgotten: abort follows in each writer. */
	for (i = 0; i < s->part_count; i++) {
		struct wd_part *p = &s->parts[i];

		if (p->ev)
			wd_event_cancel(p->ev);
		p->in_round = false;
	}
	s->round_gen++;
	s->round_done = NULL;
	s->round_pending = 0;
	s->round_sending = false;
	s->chain_running = NULL;
	s->chain_count = s->chain_next = 0;
	if (!s->fail_message[0])
		snprintf(s->fail_message, sizeof(s->fail_message), "aborted");
	wd_info("session %llu: aborting: %s", (unsigned long long)s->id, s->fail_message);
	s->class_index = 3;
	abort_next(s);
}

/* ---- after the set was handed over ---- */

static void completion_finish(struct wd_session *s)
{
	struct wd_daemon *d = s->d;
	struct json_object *params, *ev;
	struct wd_conn *to = s->waiter ? s->waiter : s->conn;
	struct wd_provider_error perr = { 0 };
	bool releasing = s->state == WS_RELEASING;

	if (releasing && !s->set_deleted) {
		if (d->provider->delete_set(d->provider_ctx, s->set_id, &perr)) {
			snprintf(s->delete_error, sizeof(s->delete_error), "%s",
				 perr.message[0] ? perr.message : strerror(-perr.err));
			wd_err("session %llu: cannot delete set %s: %s", (unsigned long long)s->id,
			       s->set_id, s->delete_error);
		} else {
			s->set_deleted = true;
			wd_info("session %llu: deleted set %s", (unsigned long long)s->id,
				s->set_id);
		}
	}
	s->state = WS_DONE;
	ev = json_object_new_object();
	json_object_object_add(ev, "session", json_object_new_uint64(s->id));
	json_object_object_add(ev, "set_id", json_object_new_string(s->set_id));
	json_object_object_add(ev, "success", json_object_new_boolean(s->complete_success));
	if (!s->complete_success)
		json_object_object_add(ev, "reason", json_object_new_string(s->end_reason));
	json_object_object_add(ev, "set_deleted", json_object_new_boolean(s->set_deleted));
	wd_monitor_emit(d, "backup-complete", ev);
	if (to && to->call_pending) {
		params = json_object_new_object();
		json_object_object_add(params, "set_id", json_object_new_string(s->set_id));
		json_object_object_add(params, "writers", parts_json(s, false));
		json_object_object_add(params, "set_deleted", json_object_new_boolean(s->set_deleted));
		if (s->delete_error[0])
			json_object_object_add(params, "delete_error",
					       json_object_new_string(s->delete_error));
		wd_conn_reply(to, params);
	}
	s->waiter = NULL;
	/* A detached set is over: nobody owns the session any more. */
	if (s->detached && s->conn) {
		s->conn->session = NULL;
		s->conn = NULL;
	}
	wd_runstate_save(d);
	if (d->stopping && !wd_sessions_busy(d))
		d->stopped = true;
	session_maybe_free(s);
}

static void recovered_part_done(struct wd_event *ev, int result, uint32_t failure,
				const char *message)
{
	struct wd_part *p = ev->part;
	struct wd_session *s = p->s;
	size_t i;

	if (result)
		part_record_failure(p, VSW_STEP_BACKUP_COMPLETE, failure, message);
	else
		part_set_state(p, VSW_STATE_STABLE);
	p->post_done = false;	/* told now */
	for (i = 0; i < s->part_count; i++)
		if (s->parts[i].post_done || (s->parts[i].ev && s->parts[i].ev != ev))
			return;
	/* Everyone was told: the session has nothing left to do. */
	wd_timer_arm_ms(&s->idle_timer, 0);
}

/* Sends backup-complete to the parts that got post-snapshot. */
static void complete_round(struct wd_session *s, void (*done)(struct wd_session *s))
{
	struct wd_daemon *d = s->d;
	size_t i;

	round_begin(s, VSW_STEP_BACKUP_COMPLETE, done);
	for (i = 0; i < s->part_count; i++) {
		struct wd_part *p = &s->parts[i];
		struct wd_writer *w;

		if (p->excluded || !p->post_done)
			continue;
		if (!p->w || !p->w->connected) {
			/* The writer may have come back after a restart. */
			w = wd_writer_find_instance(d, p->kind, p->name, p->class_id,
						    p->instance_id);
			if (w && w != p->w) {
				wd_writer_put(p->w);
				p->w = w;
				wd_writer_get(w);
			}
		}
		if (!p->w || !p->w->connected) {
			p->failure = VSW_FAILURE_NOT_RESPONDING;
			p->failed_step = VSW_STEP_BACKUP_COMPLETE;
			snprintf(p->message, sizeof(p->message),
				 "this instance of the writer is gone: it was not told");
			continue;
		}
		round_add(s, p);
	}
	round_end_sending(s);
}

static void release_next(struct wd_session *s)
{
	completion_finish(s);
}

static void begin_release(struct wd_session *s, const char *reason)
{
	s->state = WS_RELEASING;
	s->complete_success = false;
	snprintf(s->end_reason, sizeof(s->end_reason), "%s", reason);
	wd_info("session %llu: set %s: %s: backup-complete with failure, then delete",
		(unsigned long long)s->id, s->set_id, reason);
	complete_round(s, release_next);
}

void wd_session_requester_gone(struct wd_session *s)
{
	s->requester_gone = true;
	switch (s->state) {
	case WS_OPEN:
	case WS_GATHERED:
	case WS_DONE:
		session_maybe_free(s);
		return;
	case WS_GATHERING:
		/* Freed when its identify round ends. */
		if (wd_list_linked(&s->gather_work.link)) {
			wd_defer_cancel(&s->gather_work);
			session_maybe_free(s);
		}
		return;
	case WS_QUEUED:
		wd_list_del(&s->qlink);
		wd_timer_disarm(&s->queue_timer);
		s->state = WS_GATHERED;
		session_maybe_free(s);
		return;
	case WS_PREPARING:
	case WS_PREPARED:
	case WS_CREATING:
		s->fail_error = VSW_E_TIMEOUT;
		snprintf(s->fail_message, sizeof(s->fail_message),
			 "the requester (pid %d) went away before the set was handed over",
			 (int)s->pid);
		if (s->phase == PH_COMMIT)
			return;	/* the commit ends first, then the round aborts */
		begin_abort(s);
		return;
	case WS_CREATED:
		if (s->detached)
			return;
		begin_release(s, "the requester went away without backup-complete");
		return;
	case WS_COMPLETING:
	case WS_ABORTING:
	case WS_RELEASING:
		return;
	}
}

static void do_detach(struct wd_conn *c)
{
	struct wd_session *s = c->session;
	struct json_object *reply;

	if (!s || s->state != WS_CREATED) {
		wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL,
				   "only a created set can be detached");
		return;
	}
	s->detached = true;
	s->conn = NULL;
	c->session = NULL;
	wd_runstate_save(c->d);
	wd_info("session %llu: set %s detached: it waits for backup-complete", (unsigned long long)s->id,
		s->set_id);
	reply = json_object_new_object();
	json_object_object_add(reply, "set_id", json_object_new_string(s->set_id));
	wd_conn_reply(c, reply);
}

static struct wd_session *target_set(struct wd_conn *c, const struct vsw_msg *m,
				     bool *own)
{
	struct wd_session *s;
	const char *set_id = NULL;
	char why[256];
	int err;

	*own = false;
	err = vsw_get_string(m->parameters, "set_id", false, VSW_ID_STRLEN, &set_id, why,
			     sizeof(why));
	if (err && err != -ENOENT) {
		wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, "set_id", "%s", why);
		return NULL;
	}
	if (!set_id) {
		if (!c->session) {
			wd_conn_error_text(c, VSW_E_WRONG_STATE, "set_id",
					   "this connection has no session: name a \"set_id\"");
			return NULL;
		}
		*own = true;
		return c->session;
	}
	if (!vsw_is_uuid(set_id)) {
		wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, "set_id", "\"%s\" is not a set id",
				   set_id);
		return NULL;
	}
	s = wd_session_by_set(c->d, set_id);
	if (!s || s->state == WS_DONE) {
		wd_conn_error_text(c, VSW_E_NO_SUCH_SET, "set_id",
				   "vsswriterd holds no set %s waiting for backup-complete", set_id);
		return NULL;
	}
	if (s->conn && s->conn != c) {
		wd_conn_error_text(c, VSW_E_WRONG_STATE, "set_id",
				   "set %s belongs to a requester still connected (pid %d)", set_id,
				   (int)s->pid);
		return NULL;
	}
	*own = s->conn == c;
	return s;
}

static void do_backup_complete(struct wd_conn *c, const struct vsw_msg *m)
{
	struct wd_session *s;
	bool own, success = true;
	char why[256];
	int err;

	err = vsw_get_bool(m->parameters, "success", false, &success, why, sizeof(why));
	if (err && err != -ENOENT) {
		wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, "success", "%s", why);
		return;
	}
	s = target_set(c, m, &own);
	if (!s)
		return;
	if (s->state != WS_CREATED) {
		wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL, "%s",
				   s->end_reason[0] ? s->end_reason :
				   "backup-complete comes after the set was created");
		return;
	}
	s->state = WS_COMPLETING;
	s->complete_success = success;
	if (!success)
		snprintf(s->end_reason, sizeof(s->end_reason), "the requester reported a failed backup");
	if (!own)
		s->waiter = c;
	if (c->role == WD_ROLE_NEW)
		c->role = WD_ROLE_REQUESTER;
	wd_info("session %llu: set %s: backup-complete (%s)", (unsigned long long)s->id,
		s->set_id, success ? "success" : "failure");
	complete_round(s, completion_finish);
}

static void do_abort(struct wd_conn *c, const struct vsw_msg *m)
{
	struct wd_session *s;
	struct json_object *reply;
	bool own;

	s = target_set(c, m, &own);
	if (!s)
		return;
	switch (s->state) {
	case WS_OPEN:
	case WS_GATHERED:
	case WS_QUEUED:
		wd_list_del(&s->qlink);
		wd_timer_disarm(&s->queue_timer);
		s->state = WS_DONE;
		snprintf(s->end_reason, sizeof(s->end_reason), "the requester aborted the session");
		reply = json_object_new_object();
		json_object_object_add(reply, "aborted", json_object_new_boolean(1));
		json_object_object_add(reply, "writers", parts_json(s, false));
		wd_conn_reply(c, reply);
		return;
	case WS_PREPARED:
		s->abort_requested = true;
		snprintf(s->fail_message, sizeof(s->fail_message), "aborted by the requester");
		begin_abort(s);
		return;
	case WS_CREATED:
		if (!own)
			s->waiter = c;
		if (c->role == WD_ROLE_NEW)
			c->role = WD_ROLE_REQUESTER;
		begin_release(s, "aborted by the requester");
		return;
	default:
		wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL, "%s",
				   s->state == WS_DONE && s->end_reason[0] ? s->end_reason :
				   "the session is busy; try again when its call has returned");
		return;
	}
}

void wd_requester_method(struct wd_conn *c, const struct vsw_msg *m)
{
	const struct wd_config *cfg = &c->d->cfg;

	if (!wd_conn_may_request(c)) {
		wd_info("refused requester call %s of pid %d uid %d", m->method, (int)c->pid,
			(int)c->uid);
		if (cfg->has_requester_group)
			wd_conn_error_text(c, VSW_E_PERMISSION_DENIED, NULL,
					   "uid %d may not act as a requester: only root and members of group %d may",
					   (int)c->uid, (int)cfg->requester_gid);
		else
			wd_conn_error_text(c, VSW_E_PERMISSION_DENIED, NULL,
					   "uid %d may not act as a requester: only root may (see requester-group in vsswriterd.conf)",
					   (int)c->uid);
		return;
	}
	if (c->d->stopping) {
		wd_conn_error_text(c, VSW_E_SHUTTING_DOWN, NULL, "vsswriterd is stopping");
		return;
	}
	if (!strcmp(m->method, VSW_M_GATHER))
		do_gather(c, m);
	else if (!strcmp(m->method, VSW_M_PREPARE))
		do_prepare(c, m);
	else if (!strcmp(m->method, VSW_M_DO_SET))
		do_set(c, m);
	else if (!strcmp(m->method, VSW_M_DETACH))
		do_detach(c);
	else if (!strcmp(m->method, VSW_M_BACKUP_COMPLETE))
		do_backup_complete(c, m);
	else if (!strcmp(m->method, VSW_M_ABORT))
		do_abort(c, m);
	else
		wd_conn_error_text(c, VSW_E_METHOD_NOT_FOUND, NULL, "no method \"%s\"", m->method);
}

/* ---- after a restart ---- */

static void recovered_give_up(struct wd_timer *t)
{
	struct wd_session *s = t->arg;
	size_t i;

	for (i = 0; i < s->part_count; i++)
		if (s->parts[i].ev)
			return;	/* wait for what was sent */
	wd_info("set %s: %s; writers that did not come back were not told",
		s->set_id, s->end_reason);
	s->state = WS_DONE;
	session_maybe_free(s);
}

void wd_sessions_writer_registered(struct wd_daemon *d, struct wd_writer *w)
{
	struct wd_list *pos, *tmp;
	size_t i;

	wd_list_for_each_safe(pos, tmp, &d->sessions) {
		struct wd_session *s = wd_container_of(pos, struct wd_session, link);

		if (!s->recovered || s->state != WS_RELEASING)
			continue;
		for (i = 0; i < s->part_count; i++) {
			struct wd_part *p = &s->parts[i];

			if (!p->post_done || p->ev || strcmp(p->name, w->name) ||
			    strcmp(p->class_id, w->class_id) ||
			    strcmp(p->instance_id, w->instance_id))
				continue;
			wd_writer_put(p->w);
			p->w = w;
			wd_writer_get(w);
			wd_event_send(p, VSW_STEP_BACKUP_COMPLETE, s->step_timeout_ms,
				      recovered_part_done);
		}
	}
}

void wd_sessions_shutdown(struct wd_daemon *d)
{
	struct wd_list *pos, *tmp;

	wd_list_for_each_safe(pos, tmp, &d->sessions) {
		struct wd_session *s = wd_container_of(pos, struct wd_session, link);

		switch (s->state) {
		case WS_QUEUED:
			wd_list_del(&s->qlink);
			wd_timer_disarm(&s->queue_timer);
			s->state = WS_GATHERED;
			if (s->conn)
				wd_conn_error_text(s->conn, VSW_E_SHUTTING_DOWN, NULL,
						   "vsswriterd is stopping");
			break;
		case WS_PREPARING:
		case WS_PREPARED:
		case WS_CREATING:
			s->fail_error = VSW_E_SHUTTING_DOWN;
			snprintf(s->fail_message, sizeof(s->fail_message), "vsswriterd is stopping");
			if (s->phase != PH_COMMIT)
				begin_abort(s);
			break;
		default:
			break;
		}
	}
}

/* Used by runstate.c to rebuild what a state file describes. */
struct wd_session *wd_session_restore(struct wd_daemon *d, size_t part_count);
struct wd_session *wd_session_restore(struct wd_daemon *d, size_t part_count)
{
	struct wd_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	/* One allocation: the parts' timers point into this array. */
	s->parts = calloc(part_count ? part_count : 1, sizeof(*s->parts));
	if (!s->parts) {
		free(s);
		return NULL;
	}
	s->d = d;
	s->id = ++d->next_session_id;
	s->recovered = true;
	s->step_timeout_ms = d->cfg.step_timeout_ms;
	s->backup_type = VSW_BACKUP_FULL;
	wd_list_init(&s->qlink);
	wd_list_init(&s->gather_work.link);
	s->gather_work.fn = gather_start;
	s->gather_work.arg = s;
	if (wd_timer_init(d->loop, &s->queue_timer, NULL, s) ||
	    wd_timer_init(d->loop, &s->idle_timer, recovered_give_up, s)) {
		wd_timer_fini(d->loop, &s->queue_timer);
		free(s->parts);
		free(s);
		return NULL;
	}
	wd_list_add_tail(&d->sessions, &s->link);
	return s;
}

int wd_session_restore_part(struct wd_session *s, const char *name, uint32_t kind,
			    const char *class_id, const char *instance_id, uint32_t cls);
int wd_session_restore_part(struct wd_session *s, const char *name, uint32_t kind,
			    const char *class_id, const char *instance_id, uint32_t cls)
{
	struct wd_part *p = &s->parts[s->part_count];

	if (wd_timer_init(s->d->loop, &p->window, window_passed, p))
		return -EMFILE;
	s->part_count++;
	p->s = s;
	p->kind = kind;
	p->writer_class = cls;
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->class_id, sizeof(p->class_id), "%s", class_id);
	snprintf(p->instance_id, sizeof(p->instance_id), "%s", instance_id);
	p->prepared = p->snapshot_prepared = p->freeze_sent = p->thawed = true;
	p->post_done = true;
	p->state = VSW_STATE_WAITING_FOR_BACKUP_COMPLETE;
	return 0;
}

/* An owned set whose requester vanished with the old daemon. */
void wd_session_restore_released(struct wd_session *s);
void wd_session_restore_released(struct wd_session *s)
{
	s->state = WS_RELEASING;
	s->complete_success = false;
	snprintf(s->end_reason, sizeof(s->end_reason),
		 "vsswriterd restarted before the requester called backup-complete");
	wd_timer_arm_ms(&s->idle_timer, s->step_timeout_ms);
}
