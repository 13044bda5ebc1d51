// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvsswriter: see libvsswriter.h. One thread per writer owns the
 * connection: it connects (and reconnects), registers, reads events,
 * calls the callbacks one at a time and answers them, and keeps the
 * watchdog (a timerfd) that undoes a freeze nobody thaws.
 *
 * Locking: w->lock protects what other threads read or hand over (the
 * registration outcome, the error text, queued failure reports, the
 * components, the frozen flag, the stop request). Everything else is the
 * thread's alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#include "wire.h"

#ifndef LIBVSSWRITER_VERSION_STRING
#define LIBVSSWRITER_VERSION_STRING "0.4.0"
#endif

#define MAX_REPORTS	16

struct report {
	uint32_t failure;
	char message[VSW_MESSAGE_MAX];
};

struct vsw_writer {
	/* Set at start, read-only after. */
	char name[VSW_NAME_MAX + 1];
	char class_id[VSW_ID_STRLEN];
	char instance_id[VSW_ID_STRLEN];
	uint32_t writer_class;
	uint32_t freeze_window_ms;
	char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint32_t reconnect_ms;
	struct vsw_callbacks cb;
	void *arg;
	pthread_t thread;
	int wake_fd;
	int timer_fd;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock. */
	bool stop;
	bool registered;
	bool frozen_flag;
	int reg_error;			/* negative errno of the last refusal */
	char error[VSW_MESSAGE_MAX];
	struct json_object *components;	/* array, as Register sends it */
	struct report reports[MAX_REPORTS];
	size_t report_count;

	/* The thread's own. */
	int fd;
	struct vsw_reader in;
	struct vsw_writebuf out;
	uint64_t seq_session;		/* the sequence it takes part in */
	bool in_sequence;		/* from prepare-backup to post-snapshot */
	bool frozen;
	bool self_aborted;		/* the watchdog undid this sequence */
	uint64_t deadline_ns;		/* CLOCK_MONOTONIC end of the window */
	uint32_t window_ms;
	bool in_callback;
	bool cb_failed;
	uint32_t cb_failure;
	char cb_message[VSW_MESSAGE_MAX];
};

const char *vsw_library_version(void)
{
	return LIBVSSWRITER_VERSION_STRING;
}

/* ---- components ---- */

static struct json_object *string_array(const char *const *items, size_t n)
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_string(items[i]));
	return arr;
}

static int components_json(const struct vsw_component *c, size_t n,
			   struct json_object **out)
{
	struct json_object *arr;
	size_t i, j, k;

	if (n > VSW_MAX_COMPONENTS || (n && !c))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!c[i].name || !*c[i].name || strlen(c[i].name) > VSW_NAME_MAX ||
		    !vsw_is_clean_text(c[i].name) || (!c[i].path_count && !c[i].device_count) ||
		    c[i].path_count > VSW_MAX_COMPONENT_ITEMS ||
		    c[i].device_count > VSW_MAX_COMPONENT_ITEMS ||
		    (c[i].path_count && !c[i].paths) || (c[i].device_count && !c[i].devices) ||
		    (c[i].backup_types & ~VSW_BACKUP_ALL))
			return -EINVAL;
		for (j = 0; j < c[i].path_count; j++)
			if (!c[i].paths[j] || c[i].paths[j][0] != '/')
				return -EINVAL;
		for (j = 0; j < c[i].device_count; j++)
			if (!c[i].devices[j] || !*c[i].devices[j])
				return -EINVAL;
		for (j = 0; j < i; j++)
			if (!strcmp(c[i].name, c[j].name))
				return -EINVAL;
	}
	arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object(), *types = json_object_new_array();
		uint32_t bits = c[i].backup_types ? c[i].backup_types : VSW_BACKUP_FULL;

		json_object_object_add(o, "name", json_object_new_string(c[i].name));
		json_object_object_add(o, "paths", string_array(c[i].paths, c[i].path_count));
		json_object_object_add(o, "devices", string_array(c[i].devices, c[i].device_count));
		for (k = 0; k < 5; k++)
			if (bits & (1U << k))
				json_object_array_add(types, json_object_new_string(
					vsw_backup_type_name(1U << k)));
		json_object_object_add(o, "backup_types", types);
		json_object_array_add(arr, o);
	}
	*out = arr;
	return 0;
}

/* ---- sending ---- */

static void send_message(struct vsw_writer *w, char *text, size_t len)
{
	if (!text || !len) {
		free(text);
		return;
	}
	if (!text || w->fd < 0) {
		free(text);
		return;
	}
	if (vsw_writebuf_append(&w->out, text, len) == 0)
		(void)vsw_writebuf_flush(&w->out, w->fd);
	free(text);
}

static void send_register(struct vsw_writer *w)
{
	struct json_object *p = json_object_new_object();
	size_t len = 0;
	char *text;

	json_object_object_add(p, "protocol", json_object_new_int(VSW_WIRE_PROTOCOL));
	json_object_object_add(p, "name", json_object_new_string(w->name));
	json_object_object_add(p, "class_id", json_object_new_string(w->class_id));
	json_object_object_add(p, "instance_id", json_object_new_string(w->instance_id));
	json_object_object_add(p, "class", json_object_new_string(vsw_class_name(w->writer_class)));
	json_object_object_add(p, "freeze_window_ms", json_object_new_int64(w->freeze_window_ms));
	pthread_mutex_lock(&w->lock);
	json_object_object_add(p, "components", json_object_get(w->components));
	pthread_mutex_unlock(&w->lock);
	text = vsw_msg_call(VSW_M_REGISTER, p, true, false, &len);
	send_message(w, text, len);
}

static void send_answer(struct vsw_writer *w, uint64_t id, uint32_t step, bool ok,
			uint32_t failure, const char *message)
{
	struct json_object *p = json_object_new_object();
	size_t len = 0;
	char *text;

	json_object_object_add(p, "id", json_object_new_uint64(id));
	json_object_object_add(p, "ok", json_object_new_boolean(ok));
	if (!ok) {
		json_object_object_add(p, "failure", json_object_new_string(vsw_failure_name(failure)));
		json_object_object_add(p, "message", json_object_new_string(message ? message : ""));
	}
	if (ok && step == VSW_STEP_IDENTIFY) {
		pthread_mutex_lock(&w->lock);
		json_object_object_add(p, "components", json_object_get(w->components));
		pthread_mutex_unlock(&w->lock);
	}
	text = vsw_msg_call(VSW_M_ANSWER, p, false, true, &len);
	send_message(w, text, len);
}

static void send_reports(struct vsw_writer *w)
{
	struct report reports[MAX_REPORTS];
	size_t n, i, len;
	char *text;

	pthread_mutex_lock(&w->lock);
	n = w->report_count;
	memcpy(reports, w->reports, n * sizeof(*reports));
	w->report_count = 0;
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < n; i++) {
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "failure",
				       json_object_new_string(vsw_failure_name(reports[i].failure)));
		json_object_object_add(p, "message", json_object_new_string(reports[i].message));
		len = 0;
		text = vsw_msg_call(VSW_M_SET_FAILURE, p, false, true, &len);
		send_message(w, text, len);
	}
}

/* ---- the watchdog ---- */

static void set_frozen(struct vsw_writer *w, bool frozen)
{
	struct itimerspec its = { 0 };

	w->frozen = frozen;
	pthread_mutex_lock(&w->lock);
	w->frozen_flag = frozen;
	pthread_mutex_unlock(&w->lock);
	if (frozen) {
		its.it_value.tv_sec = (time_t)(w->deadline_ns / 1000000000ULL);
		its.it_value.tv_nsec = (long)(w->deadline_ns % 1000000000ULL);
		timerfd_settime(w->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
	} else {
		timerfd_settime(w->timer_fd, 0, &its, NULL);
	}
}

static int call(struct vsw_writer *w, vsw_event_fn fn, const struct vsw_event *ev)
{
	int rc;

	if (!fn)
		return 0;
	w->in_callback = true;
	w->cb_failed = false;
	w->cb_failure = VSW_FAILURE_NON_RETRYABLE;
	w->cb_message[0] = '\0';
	rc = fn(w, ev, w->arg);
	w->in_callback = false;
	if (rc && !w->cb_failed) {
		w->cb_failure = VSW_FAILURE_NON_RETRYABLE;
		snprintf(w->cb_message, sizeof(w->cb_message), "the %s callback returned %d",
			 vsw_step_name(ev->step), rc);
	}
	return rc;
}

/* The library undoes the sequence itself: nobody else will. */
static void self_abort(struct vsw_writer *w, const char *reason)
{
	struct vsw_event ev = {
		.step = VSW_STEP_ABORT,
		.session = w->seq_session,
		.reason = reason,
		.by_watchdog = true,
	};
	bool frozen = w->frozen;

	set_frozen(w, false);
	w->in_sequence = false;
	w->self_aborted = true;
	if (w->cb.abort)
		call(w, w->cb.abort, &ev);
	else if (frozen && w->cb.thaw) {
		ev.step = VSW_STEP_THAW;
		call(w, w->cb.thaw, &ev);
	}
}

/* ---- events ---- */

static void handle_event(struct vsw_writer *w, struct json_object *p)
{
	struct vsw_event ev = { 0 };
	const char *name = NULL, *text = NULL;
	const char *volumes[VSW_MAX_COMPONENT_ITEMS];
	struct json_object *vols = NULL;
	uint64_t id = 0, v = 0, received = vsw_now_ns();
	char why[256];
	vsw_event_fn fn = NULL;
	size_t i;
	int step, rc;

	if (vsw_get_string(p, "event", true, 64, &name, why, sizeof(why)))
		return;
	if (!strcmp(name, "registered")) {
		pthread_mutex_lock(&w->lock);
		w->registered = true;
		w->reg_error = 0;
		w->error[0] = '\0';
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		if (w->cb.connection)
			w->cb.connection(w, true, w->arg);
		return;
	}
	step = vsw_step_from_name(name);
	if (step <= VSW_STEP_NONE || vsw_get_uint(p, "id", true, UINT64_MAX, &id, why, sizeof(why)))
		return;
	ev.step = (uint32_t)step;
	if (!vsw_get_uint(p, "session", false, UINT64_MAX, &v, why, sizeof(why)))
		ev.session = v;
	if (!vsw_get_string(p, "set_id", false, VSW_ID_STRLEN, &text, why, sizeof(why)))
		ev.set_id = text;
	text = NULL;
	if (!vsw_get_string(p, "backup_type", false, 32, &text, why, sizeof(why)) &&
	    vsw_backup_type_from_name(text) > 0)
		ev.backup_type = (uint32_t)vsw_backup_type_from_name(text);
	if (!vsw_get_uint(p, "timeout_ms", false, UINT32_MAX, &v, why, sizeof(why)))
		ev.timeout_ms = (uint32_t)v;
	ev.freeze_window_ms = w->freeze_window_ms;
	if (!vsw_get_uint(p, "freeze_window_ms", false, VSW_MAX_FREEZE_WINDOW_MS, &v, why,
			  sizeof(why)) && v)
		ev.freeze_window_ms = (uint32_t)v;
	vsw_get_bool(p, "success", false, &ev.success, why, sizeof(why));
	text = NULL;
	if (!vsw_get_string(p, "reason", false, VSW_MESSAGE_MAX, &text, why, sizeof(why)))
		ev.reason = text;
	if (!vsw_get_array(p, "volumes", false, VSW_MAX_COMPONENT_ITEMS, &vols, why, sizeof(why))) {
		for (i = 0; i < json_object_array_length(vols); i++) {
			struct json_object *e = json_object_array_get_idx(vols, i);

			if (json_object_is_type(e, json_type_string))
				volumes[ev.volume_count++] = json_object_get_string(e);
		}
		ev.volumes = volumes;
	}

	if (ev.step == VSW_STEP_PREPARE_BACKUP) {
		w->seq_session = ev.session;
		w->in_sequence = true;
		w->self_aborted = false;
	}
	if (w->self_aborted && ev.session == w->seq_session &&
	    ev.step >= VSW_STEP_PREPARE_SNAPSHOT && ev.step != VSW_STEP_BACKUP_COMPLETE) {
		/* Undone already: say so instead of running the step again. */
		if (ev.step == VSW_STEP_ABORT)
			send_answer(w, id, ev.step, true, 0, NULL);
		else
			send_answer(w, id, ev.step, false, VSW_FAILURE_TIMEOUT,
				    "the writer undid this sequence on its own (its watchdog)");
		return;
	}
	switch (ev.step) {
	case VSW_STEP_IDENTIFY:
		fn = w->cb.identify;
		break;
	case VSW_STEP_PREPARE_BACKUP:
		fn = w->cb.prepare_backup;
		break;
	case VSW_STEP_PREPARE_SNAPSHOT:
		fn = w->cb.prepare_snapshot;
		break;
	case VSW_STEP_FREEZE:
		fn = w->cb.freeze;
		break;
	case VSW_STEP_THAW:
		fn = w->cb.thaw;
		break;
	case VSW_STEP_POST_SNAPSHOT:
		fn = w->cb.post_snapshot;
		break;
	case VSW_STEP_BACKUP_COMPLETE:
		fn = w->cb.backup_complete;
		break;
	case VSW_STEP_ABORT:
		fn = w->cb.abort;
		if (!fn && w->frozen)
			fn = w->cb.thaw;
		break;
	default:
		return;
	}
	rc = call(w, fn, &ev);
	switch (ev.step) {
	case VSW_STEP_FREEZE:
		if (rc)
			break;
		w->window_ms = ev.freeze_window_ms;
		w->deadline_ns = received + (uint64_t)ev.freeze_window_ms * 1000000ULL;
		set_frozen(w, true);
		if (vsw_now_ns() >= w->deadline_ns) {
			char reason[128];

			snprintf(reason, sizeof(reason),
				 "freeze took longer than the freeze window of %u ms",
				 ev.freeze_window_ms);
			self_abort(w, reason);
			send_answer(w, id, ev.step, false, VSW_FAILURE_TIMEOUT, reason);
			return;
		}
		break;
	case VSW_STEP_THAW:
		set_frozen(w, false);
		break;
	case VSW_STEP_ABORT:
		set_frozen(w, false);
		w->in_sequence = false;
		break;
	case VSW_STEP_POST_SNAPSHOT:
		/* Past post-snapshot there is no abort: nothing to undo. */
		w->in_sequence = false;
		break;
	default:
		break;
	}
	send_answer(w, id, ev.step, rc == 0, w->cb_failure, w->cb_message);
}

static void disconnect(struct vsw_writer *w, const char *why)
{
	bool was_registered;

	if (w->fd < 0)
		return;
	close(w->fd);
	w->fd = -1;
	vsw_reader_free(&w->in);
	vsw_writebuf_free(&w->out);
	pthread_mutex_lock(&w->lock);
	was_registered = w->registered;
	w->registered = false;
	pthread_mutex_unlock(&w->lock);
	if (w->in_sequence || w->frozen) {
		char reason[VSW_MESSAGE_MAX];

		snprintf(reason, sizeof(reason), "the connection to vsswriterd was lost (%s)", why);
		self_abort(w, reason);
	}
	/* The next connection may be to another daemon: its sessions are new. */
	w->self_aborted = false;
	if (was_registered && w->cb.connection)
		w->cb.connection(w, false, w->arg);
}

static void refused(struct vsw_writer *w, const struct vsw_msg *m)
{
	const char *message = "";
	char why[64];
	int err = -EINVAL;

	vsw_get_string(m->parameters, "message", false, VSW_MESSAGE_MAX, &message, why, sizeof(why));
	if (!strcmp(m->error, VSW_E_PERMISSION_DENIED))
		err = -EACCES;
	else if (!strcmp(m->error, VSW_E_NAME_IN_USE))
		err = -EEXIST;
	else if (!strcmp(m->error, VSW_E_PROTOCOL))
		err = -EPROTO;
	else if (!strcmp(m->error, VSW_E_BUSY) || !strcmp(m->error, VSW_E_SHUTTING_DOWN))
		err = -EAGAIN;
	pthread_mutex_lock(&w->lock);
	w->reg_error = err;
	snprintf(w->error, sizeof(w->error), "%s: %s", m->error, message);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Returns false when the connection ended. */
static bool read_messages(struct vsw_writer *w)
{
	const char *text;
	size_t len;
	ssize_t n;
	int rc;

	const char *ended = NULL;
	char errtext[128];

	for (;;) {
		n = vsw_reader_fill(&w->in, w->fd);
		if (n == -EAGAIN || n == -EMSGSIZE)
			break;
		if (n <= 0) {
			snprintf(errtext, sizeof(errtext), "%s",
				 n == 0 ? "closed by vsswriterd" : strerror((int)-n));
			ended = errtext;
			break;
		}
	}
	/* What came before the end is handled first: a thaw, an abort. */
	while ((rc = vsw_reader_next(&w->in, &text, &len)) == 1) {
		struct vsw_msg m;
		char why[256];
		bool registered;

		if (vsw_msg_parse(text, len, &m, why, sizeof(why))) {
			disconnect(w, why);
			return false;
		}
		pthread_mutex_lock(&w->lock);
		registered = w->registered;
		pthread_mutex_unlock(&w->lock);
		if (m.kind == VSW_MSG_ERROR) {
			if (!registered)
				refused(w, &m);
			vsw_msg_free(&m);
			disconnect(w, "vsswriterd ended the registration");
			return false;
		}
		if (m.kind != VSW_MSG_REPLY || !m.continues) {
			vsw_msg_free(&m);
			disconnect(w, "vsswriterd ended the registration");
			return false;
		}
		handle_event(w, m.parameters);
		vsw_msg_free(&m);
		if (w->fd < 0)
			return false;
	}
	if (rc == -EMSGSIZE) {
		disconnect(w, "message too long");
		return false;
	}
	if (ended) {
		disconnect(w, ended);
		return false;
	}
	return true;
}

static int connect_socket(struct vsw_writer *w)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	memcpy(addr.sun_path, w->socket_path, strlen(w->socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static bool stop_requested(struct vsw_writer *w)
{
	bool stop;

	pthread_mutex_lock(&w->lock);
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return stop;
}

static void drain_wake(struct vsw_writer *w)
{
	uint64_t v;

	(void)!read(w->wake_fd, &v, sizeof(v));
}

static void watchdog(struct vsw_writer *w)
{
	uint64_t expirations;
	char reason[128];

	(void)!read(w->timer_fd, &expirations, sizeof(expirations));
	/* A thaw may be waiting in the socket: it wins over the watchdog. */
	if (w->fd >= 0)
		read_messages(w);
	if (!w->frozen || vsw_now_ns() < w->deadline_ns)
		return;
	snprintf(reason, sizeof(reason), "the freeze window of %u ms passed without thaw",
		 w->window_ms);
	self_abort(w, reason);
}

static void *writer_thread(void *arg)
{
	struct vsw_writer *w = arg;

	while (!stop_requested(w)) {
		struct pollfd pfd[3];
		int n;

		if (w->fd < 0) {
			int fd = connect_socket(w);

			if (fd >= 0) {
				w->fd = fd;
				vsw_reader_init(&w->in);
				send_register(w);
			} else {
				struct pollfd wait[2] = {
					{ .fd = w->wake_fd, .events = POLLIN },
					{ .fd = w->timer_fd, .events = POLLIN },
				};

				pthread_mutex_lock(&w->lock);
				if (!w->reg_error) {
					w->reg_error = fd;
					snprintf(w->error, sizeof(w->error), "cannot connect to %s: %s",
						 w->socket_path, strerror(-fd));
					pthread_cond_broadcast(&w->cond);
				}
				pthread_mutex_unlock(&w->lock);
				n = poll(wait, 2, (int)w->reconnect_ms);
				if (n > 0 && (wait[0].revents & POLLIN))
					drain_wake(w);
				if (n > 0 && (wait[1].revents & POLLIN))
					watchdog(w);
				continue;
			}
		}
		pfd[0] = (struct pollfd){ .fd = w->fd, .events = POLLIN };
		if (vsw_writebuf_pending(&w->out))
			pfd[0].events |= POLLOUT;
		pfd[1] = (struct pollfd){ .fd = w->wake_fd, .events = POLLIN };
		pfd[2] = (struct pollfd){ .fd = w->timer_fd, .events = POLLIN };
		n = poll(pfd, 3, -1);
		if (n < 0)
			continue;
		if (pfd[1].revents & POLLIN) {
			drain_wake(w);
			send_reports(w);
		}
		if (pfd[0].revents & POLLOUT)
			(void)vsw_writebuf_flush(&w->out, w->fd);
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (!read_messages(w)) {
				/* Refused or lost: wait before trying again. */
				struct pollfd wait = { .fd = w->wake_fd, .events = POLLIN };

				if (poll(&wait, 1, (int)w->reconnect_ms) > 0)
					drain_wake(w);
				continue;
			}
		}
		if (pfd[2].revents & POLLIN)
			watchdog(w);
	}
	/* Leaving: undo a sequence in progress, then say goodbye. */
	if (w->in_sequence || w->frozen)
		self_abort(w, "the writer is stopping");
	if (w->fd >= 0) {
		size_t len = 0;
		int fl = fcntl(w->fd, F_GETFL);
		char *text;

		text = vsw_msg_call(VSW_M_UNREGISTER, NULL, false, true, &len);
		send_message(w, text, len);
		fcntl(w->fd, F_SETFL, fl & ~O_NONBLOCK);
		(void)vsw_writebuf_flush(&w->out, w->fd);
		close(w->fd);
		w->fd = -1;
	}
	vsw_reader_free(&w->in);
	vsw_writebuf_free(&w->out);
	return NULL;
}

/* ---- the API ---- */

int vsw_writer_start(const struct vsw_writer_params *params,
		     const struct vsw_callbacks *callbacks, void *arg,
		     struct vsw_writer **out)
{
	const char *socket_path;
	struct vsw_writer *w;
	int err;

	*out = NULL;
	if (!params || !params->name || !*params->name || strlen(params->name) > VSW_NAME_MAX ||
	    !vsw_is_clean_text(params->name) || !params->class_id ||
	    !vsw_is_uuid(params->class_id) || params->freeze_window_ms > VSW_MAX_FREEZE_WINDOW_MS ||
	    (params->writer_class != VSW_CLASS_FRONT_END &&
	     params->writer_class != VSW_CLASS_BACK_END && params->writer_class != VSW_CLASS_SYSTEM))
		return -EINVAL;
	socket_path = params->socket_path ? params->socket_path : getenv("VSS_WRITERD_SOCKET");
	if (!socket_path || !*socket_path)
		socket_path = VSW_DEFAULT_SOCKET;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	if (strlen(socket_path) >= sizeof(w->socket_path)) {
		free(w);
		return -ENAMETOOLONG;
	}
	err = components_json(params->components, params->component_count, &w->components);
	if (err) {
		free(w);
		return err;
	}
	snprintf(w->name, sizeof(w->name), "%s", params->name);
	snprintf(w->class_id, sizeof(w->class_id), "%s", params->class_id);
	snprintf(w->socket_path, sizeof(w->socket_path), "%s", socket_path);
	w->writer_class = params->writer_class;
	w->freeze_window_ms = params->freeze_window_ms ? params->freeze_window_ms :
			      VSW_DEFAULT_FREEZE_WINDOW_MS;
	w->reconnect_ms = params->reconnect_ms ? params->reconnect_ms : 1000;
	if (callbacks)
		w->cb = *callbacks;
	w->arg = arg;
	w->fd = -1;
	err = vsw_random_uuid(w->instance_id);
	if (err)
		goto fail;
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (w->wake_fd < 0 || w->timer_fd < 0) {
		err = -errno;
		goto fail;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	err = -pthread_create(&w->thread, NULL, writer_thread, w);
	if (err) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		goto fail;
	}
	*out = w;
	return 0;
fail:
	if (w->wake_fd > 0)
		close(w->wake_fd);
	if (w->timer_fd > 0)
		close(w->timer_fd);
	json_object_put(w->components);
	free(w);
	return err;
}

int vsw_writer_wait_registered(struct vsw_writer *w, int timeout_ms)
{
	struct timespec deadline;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	if (timeout_ms >= 0) {
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&w->lock);
	/* A refusal counts; a daemon not running yet is waited for. */
	while (!w->registered && (w->reg_error == 0 || w->reg_error == -ENOENT ||
				  w->reg_error == -ECONNREFUSED)) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&w->cond, &w->lock);
		} else if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == ETIMEDOUT) {
			err = -ETIMEDOUT;
			break;
		}
	}
	if (!err && !w->registered)
		err = w->reg_error;
	pthread_mutex_unlock(&w->lock);
	return err;
}

const char *vsw_writer_error(struct vsw_writer *w)
{
	return w->error;
}

void vsw_writer_stop(struct vsw_writer *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_mutex_unlock(&w->lock);
	(void)!write(w->wake_fd, &one, sizeof(one));
	pthread_join(w->thread, NULL);
	close(w->wake_fd);
	close(w->timer_fd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	json_object_put(w->components);
	free(w);
}

int vsw_event_fail(struct vsw_writer *w, uint32_t failure, const char *fmt, ...)
{
	va_list ap;

	if (!w->in_callback || !pthread_equal(pthread_self(), w->thread))
		return -1;
	if (failure < VSW_FAILURE_INCONSISTENT_SNAPSHOT || failure > VSW_FAILURE_NON_RETRYABLE)
		failure = VSW_FAILURE_NON_RETRYABLE;
	w->cb_failed = true;
	w->cb_failure = failure;
	va_start(ap, fmt);
	vsnprintf(w->cb_message, sizeof(w->cb_message), fmt, ap);
	va_end(ap);
	return -1;
}

int vsw_writer_report_failure(struct vsw_writer *w, uint32_t failure, const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;
	int err = 0;

	if (failure < VSW_FAILURE_INCONSISTENT_SNAPSHOT || failure > VSW_FAILURE_NON_RETRYABLE)
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	if (!w->registered) {
		err = -ENOTCONN;
	} else if (w->report_count < MAX_REPORTS) {
		struct report *r = &w->reports[w->report_count++];

		r->failure = failure;
		va_start(ap, fmt);
		vsnprintf(r->message, sizeof(r->message), fmt, ap);
		va_end(ap);
	} else {
		err = -EAGAIN;
	}
	pthread_mutex_unlock(&w->lock);
	if (!err)
		(void)!write(w->wake_fd, &one, sizeof(one));
	return err;
}

int vsw_writer_set_components(struct vsw_writer *w,
			      const struct vsw_component *components, size_t count)
{
	struct json_object *arr;
	int err = components_json(components, count, &arr);

	if (err)
		return err;
	pthread_mutex_lock(&w->lock);
	json_object_put(w->components);
	w->components = arr;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

const char *vsw_writer_instance_id(const struct vsw_writer *w)
{
	return w->instance_id;
}

bool vsw_writer_registered(struct vsw_writer *w)
{
	bool r;

	pthread_mutex_lock(&w->lock);
	r = w->registered;
	pthread_mutex_unlock(&w->lock);
	return r;
}

bool vsw_writer_frozen(struct vsw_writer *w)
{
	bool r;

	pthread_mutex_lock(&w->lock);
	r = w->frozen_flag;
	pthread_mutex_unlock(&w->lock);
	return r;
}
