// SPDX-License-Identifier: GPL-2.0
/*
 * The daemon object, its connections and the coordinator's own methods
 * (GetInfo, ListWriters, ListSets, Monitor). A connection is read
 * whenever it is readable, but a requester's next call is taken only once
 * the previous one has been answered: calls on one connection are
 * answered in order, as varlink wants. A writer's Answer and SetFailure
 * are oneway calls and are taken at once, while its Register goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "daemon.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#ifndef VSSWRITERD_VERSION
#define VSSWRITERD_VERSION "0.4.0"
#endif

/* Bytes read from one connection per wake, so no client starves others. */
#define READ_BUDGET	(64 * 1024)

static void conn_ready(struct wd_watch *w, uint32_t events);

/* ---- sending ---- */

static void conn_update_events(struct wd_conn *c)
{
	uint32_t ev = EPOLLIN | EPOLLRDHUP;

	if (c->dead)
		return;
	if (vsw_writebuf_pending(&c->out))
		ev |= EPOLLOUT;
	wd_watch_modify(c->d->loop, &c->watch, ev);
}

static void conn_send(struct wd_conn *c, char *text, size_t len)
{
	int err;

	if (!text) {
		wd_err("connection %llu: out of memory for a message; closing it",
		       (unsigned long long)c->id);
		wd_conn_close(c);
		return;
	}
	if (c->dead) {
		free(text);
		return;
	}
	if (vsw_writebuf_pending(&c->out) + len > WD_MAX_OUTPUT) {
		free(text);
		wd_warn("connection %llu (pid %d): more than %d bytes wait to be read; closing it",
			(unsigned long long)c->id, (int)c->pid, WD_MAX_OUTPUT);
		wd_conn_close(c);
		return;
	}
	err = vsw_writebuf_append(&c->out, text, len);
	free(text);
	if (!err)
		err = vsw_writebuf_flush(&c->out, c->fd);
	if (err) {
		wd_debug("connection %llu: cannot send: %s", (unsigned long long)c->id,
			 strerror(-err));
		wd_conn_close(c);
		return;
	}
	if (c->closing && !vsw_writebuf_pending(&c->out)) {
		wd_conn_close(c);
		return;
	}
	conn_update_events(c);
}

static void process_input(struct wd_conn *c);

static void call_finished(struct wd_conn *c)
{
	c->call_pending = false;
	/*
	 * Calls that arrived meanwhile wait in the reader. Inside
	 * process_input() its loop takes them; recursing instead would let
	 * a client that pipelines many calls exhaust the stack.
	 */
	if (!c->dead && !c->in_dispatch && c->in.len > c->in.start)
		process_input(c);
}

/* Varlink: a oneway call is never answered, not even with an error. */
static bool answering_oneway(struct wd_conn *c, struct json_object *params)
{
	if (!c->oneway_call)
		return false;
	json_object_put(params);
	return true;
}

void wd_conn_reply(struct wd_conn *c, struct json_object *params)
{
	size_t len = 0;
	char *text;

	if (answering_oneway(c, params))
		return;
	text = vsw_msg_reply(params, false, &len);

	conn_send(c, text, len);
	call_finished(c);
}

void wd_conn_reply_more(struct wd_conn *c, struct json_object *params)
{
	size_t len = 0;
	char *text = vsw_msg_reply(params, true, &len);

	conn_send(c, text, len);
}

void wd_conn_error(struct wd_conn *c, const char *error, struct json_object *params)
{
	size_t len = 0;
	char *text;

	if (answering_oneway(c, params))
		return;
	text = vsw_msg_error(error, params, &len);

	conn_send(c, text, len);
	call_finished(c);
}

void wd_conn_error_text(struct wd_conn *c, const char *error,
			const char *parameter, const char *fmt, ...)
{
	char message[VSW_MESSAGE_MAX];
	size_t len = 0;
	char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (c->oneway_call) {
		wd_debug("connection %llu: oneway call failed: %s",
			 (unsigned long long)c->id, message);
		return;
	}
	text = vsw_msg_error_text(error, parameter, message, &len);
	conn_send(c, text, len);
	call_finished(c);
}

void wd_conn_close_later(struct wd_conn *c)
{
	c->closing = true;
	if (!vsw_writebuf_pending(&c->out))
		wd_conn_close(c);
}

bool wd_conn_may_request(const struct wd_conn *c)
{
	const struct wd_config *cfg = &c->d->cfg;
	int i;

	if (c->uid == 0)
		return true;
	if (!cfg->has_requester_group)
		return false;
	if (c->gid == cfg->requester_gid)
		return true;
	for (i = 0; i < c->group_count; i++)
		if (c->groups[i] == cfg->requester_gid)
			return true;
	return false;
}

void wd_conn_close(struct wd_conn *c)
{
	struct wd_daemon *d = c->d;

	if (c->dead)
		return;
	c->dead = true;
	wd_watch_del(d->loop, &c->watch);
	close(c->fd);
	c->fd = -1;
	wd_list_del(&c->link);
	d->conn_count--;
	wd_list_add_tail(&d->graveyard, &c->link);
	switch (c->role) {
	case WD_ROLE_WRITER:
		if (c->writer) {
			struct wd_writer *w = c->writer;

			c->writer = NULL;
			wd_writer_disconnected(w);
		}
		break;
	case WD_ROLE_REQUESTER:
		if (c->session) {
			struct wd_session *s = c->session;

			c->session = NULL;
			s->conn = NULL;
			wd_session_requester_gone(s);
		}
		break;
	default:
		break;
	}
	/* A connection waiting for a detached set's answer. */
	{
		struct wd_list *pos, *tmp;

		wd_list_for_each_safe(pos, tmp, &d->sessions) {
			struct wd_session *s = wd_container_of(pos, struct wd_session, link);

			if (s->waiter == c)
				s->waiter = NULL;
		}
	}
}

static void reap(struct wd_daemon *d)
{
	while (!wd_list_empty(&d->session_graveyard))
		wd_session_free(wd_list_first(&d->session_graveyard, struct wd_session, link));
	while (!wd_list_empty(&d->graveyard)) {
		struct wd_conn *c = wd_list_first(&d->graveyard, struct wd_conn, link);

		wd_list_del(&c->link);
		vsw_reader_free(&c->in);
		vsw_writebuf_free(&c->out);
		free(c);
	}
}

int wd_daemon_run_once(struct wd_daemon *d, int timeout_ms)
{
	int n = wd_loop_run_once(d->loop, timeout_ms);

	reap(d);
	return n;
}

/* ---- the coordinator's own methods ---- */

static void get_info(struct wd_conn *c)
{
	struct json_object *p = json_object_new_object();
	struct json_object *ifaces = json_object_new_array();

	json_object_object_add(p, "vendor", json_object_new_string("vss"));
	json_object_object_add(p, "product", json_object_new_string("vsswriterd"));
	json_object_object_add(p, "version", json_object_new_string(VSSWRITERD_VERSION));
	json_object_object_add(p, "url", json_object_new_string(""));
	json_object_array_add(ifaces, json_object_new_string("io.vss.Writer"));
	json_object_array_add(ifaces, json_object_new_string("io.vss.Requester"));
	json_object_array_add(ifaces, json_object_new_string("io.vss.Coordinator"));
	json_object_object_add(p, "interfaces", ifaces);
	json_object_object_add(p, "protocol", json_object_new_int(VSW_WIRE_PROTOCOL));
	wd_conn_reply(c, p);
}

static void list_writers(struct wd_conn *c)
{
	struct wd_daemon *d = c->d;
	struct json_object *p = json_object_new_object();
	struct json_object *arr = json_object_new_array();
	struct wd_list *pos, *tmp;

	char why[VSW_MESSAGE_MAX];

	/* Hooks are found by looking; never while something is frozen. */
	if (!d->frozen)
		wd_hooks_scan(d);
	wd_list_for_each_safe(pos, tmp, &d->writers) {
		struct wd_writer *w = wd_container_of(pos, struct wd_writer, link);

		if (!d->frozen && !w->active)
			(void)wd_components_resolve(d, w->components, w->component_count, why,
						    sizeof(why));
		json_object_array_add(arr, wd_writer_json(w, true));
	}
	json_object_object_add(p, "writers", arr);
	wd_conn_reply(c, p);
}

static const char *const session_state_names[] = {
	[WS_OPEN] = "open",
	[WS_GATHERING] = "gathering",
	[WS_GATHERED] = "gathered",
	[WS_QUEUED] = "queued",
	[WS_PREPARING] = "preparing",
	[WS_PREPARED] = "prepared",
	[WS_CREATING] = "creating",
	[WS_CREATED] = "waiting-for-backup-complete",
	[WS_COMPLETING] = "completing",
	[WS_ABORTING] = "aborting",
	[WS_RELEASING] = "releasing",
	[WS_DONE] = "done",
};

static void list_sets(struct wd_conn *c)
{
	struct wd_daemon *d = c->d;
	struct json_object *p = json_object_new_object();
	struct json_object *arr = json_object_new_array();
	struct wd_list *pos, *tmp;
	size_t i;

	wd_list_for_each_safe(pos, tmp, &d->sessions) {
		struct wd_session *s = wd_container_of(pos, struct wd_session, link);
		struct json_object *o, *writers;

		o = json_object_new_object();
		json_object_object_add(o, "session", json_object_new_uint64(s->id));
		json_object_object_add(o, "state",
				       json_object_new_string(session_state_names[s->state]));
		json_object_object_add(o, "set_id", s->committed ?
				       json_object_new_string(s->set_id) : NULL);
		json_object_object_add(o, "detached", json_object_new_boolean(s->detached));
		json_object_object_add(o, "requester_uid", json_object_new_int64(s->uid));
		json_object_object_add(o, "requester_pid", json_object_new_int64(s->pid));
		json_object_object_add(o, "created_ns", json_object_new_uint64(s->created_ns));
		writers = json_object_new_array();
		for (i = 0; i < s->part_count; i++)
			if (!s->parts[i].excluded)
				json_object_array_add(writers, wd_part_json(&s->parts[i]));
		json_object_object_add(o, "writers", writers);
		json_object_array_add(arr, o);
	}
	json_object_object_add(p, "sets", arr);
	wd_conn_reply(c, p);
}

void wd_monitor_emit(struct wd_daemon *d, const char *event,
		     struct json_object *params)
{
	struct wd_list *pos, *tmp;

	if (!params)
		return;
	json_object_object_add(params, "event", json_object_new_string(event));
	json_object_object_add(params, "time_ns", json_object_new_uint64(vsw_realtime_ns()));
	wd_list_for_each_safe(pos, tmp, &d->conns) {
		struct wd_conn *c = wd_container_of(pos, struct wd_conn, link);

		if (c->role == WD_ROLE_MONITOR && !c->dead)
			wd_conn_reply_more(c, json_object_get(params));
	}
	json_object_put(params);
}

static void coordinator_method(struct wd_conn *c, const struct vsw_msg *m)
{
	if (!strcmp(m->method, VSW_M_LIST_WRITERS)) {
		list_writers(c);
	} else if (!strcmp(m->method, VSW_M_LIST_SETS)) {
		list_sets(c);
	} else if (!strcmp(m->method, VSW_M_MONITOR)) {
		if (!m->more) {
			wd_conn_error_text(c, VSW_E_EXPECTED_MORE, NULL,
					   "Monitor streams events: call it with \"more\": true");
			return;
		}
		if (c->role != WD_ROLE_NEW) {
			wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL,
					   "a connection that is a %s cannot also monitor",
					   c->role == WD_ROLE_WRITER ? "writer" : "requester");
			return;
		}
		c->role = WD_ROLE_MONITOR;
		wd_conn_reply_more(c, json_object_new_object());
	} else {
		wd_conn_error_text(c, VSW_E_METHOD_NOT_FOUND, NULL,
				   "no method \"%s\"", m->method);
	}
}

/* ---- receiving ---- */

static bool has_prefix(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static void dispatch(struct wd_conn *c, const struct vsw_msg *m)
{
	if (m->kind != VSW_MSG_CALL) {
		wd_conn_error_text(c, VSW_E_MALFORMED, NULL,
				   "expected a call (an object with \"method\"), got %s",
				   m->kind == VSW_MSG_ERROR ? "an error" : "a reply");
		return;
	}
	if (c->role == WD_ROLE_MONITOR) {
		wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL,
				   "this connection monitors; open another one for \"%s\"",
				   m->method);
		return;
	}
	if (!strcmp(m->method, VSW_M_GET_INFO)) {
		get_info(c);
	} else if (has_prefix(m->method, "io.vss.Writer.")) {
		wd_writer_method(c, m);
	} else if (has_prefix(m->method, "io.vss.Requester.")) {
		if (c->role == WD_ROLE_WRITER) {
			wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL,
					   "a writer's connection cannot make requester calls");
			return;
		}
		wd_requester_method(c, m);
	} else if (has_prefix(m->method, "io.vss.Coordinator.")) {
		coordinator_method(c, m);
	} else {
		wd_conn_error_text(c, VSW_E_METHOD_NOT_FOUND, NULL,
				   "no method \"%s\"", m->method);
	}
}

static void process_one(struct wd_conn *c);

/* Takes the calls waiting in the reader, in order, as far as allowed. */
static void process_input(struct wd_conn *c)
{
	if (c->in_dispatch)
		return;
	c->in_dispatch = true;
	process_one(c);
	c->in_dispatch = false;
}

static void process_one(struct wd_conn *c)
{
	char why[256];
	const char *text;
	size_t len;
	int rc;

	while (!c->dead && !c->closing) {
		struct vsw_msg m;

		/* A writer's oneway answers never wait behind its Register. */
		if (c->call_pending && c->role != WD_ROLE_WRITER)
			return;
		rc = vsw_reader_next(&c->in, &text, &len);
		if (rc == 0)
			return;
		if (rc == -EMSGSIZE) {
			wd_warn("connection %llu (pid %d, uid %d): message longer than %d bytes; closing it",
				(unsigned long long)c->id, (int)c->pid, (int)c->uid,
				VSW_WIRE_MAX_MESSAGE);
			c->call_pending = false;
			wd_conn_error_text(c, VSW_E_TOO_LARGE, NULL,
					   "a message may hold at most %d bytes; closing the connection",
					   VSW_WIRE_MAX_MESSAGE - 1);
			wd_conn_close_later(c);
			return;
		}
		if (vsw_msg_parse(text, len, &m, why, sizeof(why))) {
			wd_warn("connection %llu (pid %d, uid %d): malformed message (%s); closing it",
				(unsigned long long)c->id, (int)c->pid, (int)c->uid, why);
			c->call_pending = false;
			wd_conn_error_text(c, VSW_E_MALFORMED, NULL,
					   "%s; closing the connection", why);
			wd_conn_close_later(c);
			return;
		}
		if (!m.oneway)
			c->call_pending = true;
		c->oneway_call = m.oneway;
		dispatch(c, &m);
		c->oneway_call = false;
		/* A oneway call gets nothing back, whatever the handler did. */
		vsw_msg_free(&m);
	}
}

static void conn_ready(struct wd_watch *w, uint32_t events)
{
	struct wd_conn *c = w->arg;
	size_t budget = READ_BUDGET;
	ssize_t n;

	if (c->dead)
		return;
	if (events & EPOLLOUT) {
		int err = vsw_writebuf_flush(&c->out, c->fd);

		if (err) {
			wd_conn_close(c);
			return;
		}
		if (c->closing && !vsw_writebuf_pending(&c->out)) {
			wd_conn_close(c);
			return;
		}
		conn_update_events(c);
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		while (budget > 0 && !c->in.eof) {
			n = vsw_reader_fill(&c->in, c->fd);
			if (n == -EAGAIN)
				break;
			if (n == -EMSGSIZE)
				break;	/* process_input() says so */
			if (n < 0) {
				wd_conn_close(c);
				return;
			}
			budget = (size_t)n > budget ? 0 : budget - (size_t)n;
		}
	}
	process_input(c);
	if (!c->dead && c->in.eof && !c->closing) {
		/*
		 * The peer is gone (or shut its side): what it sent was
		 * handled above; a call still in progress ends with it.
		 */
		wd_conn_close(c);
		return;
	}
	if (!c->dead && (events & (EPOLLHUP | EPOLLERR)) && c->closing)
		wd_conn_close(c);
}

static struct wd_conn *conn_new(struct wd_daemon *d, int fd)
{
	struct wd_conn *c = calloc(1, sizeof(*c));
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!c)
		return NULL;
	c->d = d;
	c->fd = fd;
	c->id = ++d->next_conn_id;
	vsw_reader_init(&c->in);
	wd_watch_init(&c->watch);
	wd_list_init(&c->link);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->pid = cred.pid;
		c->uid = cred.uid;
		c->gid = cred.gid;
	} else {
		/* Nobody: a peer we cannot name gets no privilege. */
		c->uid = (uid_t)65534;
		c->gid = (gid_t)65534;
	}
	len = sizeof(c->groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) == 0)
		c->group_count = (int)(len / sizeof(gid_t));
	return c;
}

static int conn_start(struct wd_daemon *d, struct wd_conn *c)
{
	int err = wd_watch_add(d->loop, &c->watch, c->fd, EPOLLIN | EPOLLRDHUP,
			       conn_ready, c);

	if (err)
		return err;
	wd_list_add_tail(&d->conns, &c->link);
	d->conn_count++;
	return 0;
}

struct wd_conn *wd_daemon_adopt(struct wd_daemon *d, int fd, uid_t uid,
				gid_t gid, pid_t pid)
{
	struct wd_conn *c;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c = conn_new(d, fd);
	if (!c)
		return NULL;
	c->uid = uid;
	c->gid = gid;
	c->pid = pid;
	c->group_count = 0;
	if (conn_start(d, c)) {
		free(c);
		return NULL;
	}
	return c;
}

static void listen_ready(struct wd_watch *w, uint32_t events)
{
	struct wd_daemon *d = w->arg;
	struct wd_conn *c;
	int fd;

	(void)events;
	for (;;) {
		fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				wd_warn("accept: %s", strerror(errno));
			return;
		}
		c = conn_new(d, fd);
		if (!c) {
			close(fd);
			continue;
		}
		if (d->conn_count >= d->cfg.max_connections) {
			size_t len = 0;
			char *text = vsw_msg_error_text(VSW_E_BUSY, NULL,
							"too many connections; try again later",
							&len);

			wd_warn("refusing a connection of pid %d: %zu connections already",
				(int)c->pid, d->conn_count);
			if (text)
				(void)!send(fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			free(text);
			close(fd);
			free(c);
			continue;
		}
		if (conn_start(d, c)) {
			close(fd);
			free(c);
			continue;
		}
		wd_debug("connection %llu from pid %d uid %d", (unsigned long long)c->id,
			 (int)c->pid, (int)c->uid);
	}
}

/* ---- deferred work ---- */

static void run_deferred(struct wd_timer *t)
{
	struct wd_daemon *d = t->arg;

	while (!d->frozen && !wd_list_empty(&d->deferred)) {
		struct wd_deferred *dw = wd_list_first(&d->deferred, struct wd_deferred, link);

		wd_list_del(&dw->link);
		dw->fn(dw);
	}
	if (!d->frozen)
		wd_hooks_resume(d);
}

void wd_defer(struct wd_daemon *d, struct wd_deferred *dw)
{
	wd_list_del(&dw->link);
	wd_list_add_tail(&d->deferred, &dw->link);
	if (!d->frozen)
		wd_timer_arm_ms(&d->deferred_timer, 0);
}

void wd_defer_cancel(struct wd_deferred *dw)
{
	wd_list_del(&dw->link);
}

void wd_part_set_frozen(struct wd_part *p, bool frozen)
{
	struct wd_daemon *d = p->s->d;

	if (p->frozen == frozen)
		return;
	p->frozen = frozen;
	if (frozen) {
		if (d->frozen++ == 0)
			wd_log_hold();
		return;
	}
	if (--d->frozen == 0) {
		wd_log_release();
		wd_timer_arm_ms(&d->deferred_timer, 0);
	}
}

/* ---- the daemon ---- */

static int make_parent_dirs(const char *path, char *why, size_t why_len)
{
	char buf[VSW_WIRE_PATH_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST) {
			snprintf(why, why_len, "cannot create %s: %s", buf, strerror(errno));
			return -errno;
		}
		*p = '/';
	}
	return 0;
}

static int bind_socket(struct wd_daemon *d, char *why, size_t why_len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(d->socket_path) >= sizeof(addr.sun_path)) {
		snprintf(why, why_len, "%s: socket path too long", d->socket_path);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, d->socket_path, strlen(d->socket_path) + 1);
	err = make_parent_dirs(d->socket_path, why, why_len);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int probe;

		if (errno != EADDRINUSE)
			goto fail_fd;
		/* A stale socket of a daemon that died, or a live one? */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
			close(probe);
			close(fd);
			snprintf(why, why_len, "%s: another vsswriterd answers there",
				 d->socket_path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(d->socket_path);
		if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			goto fail_fd;
	}
	/* Anyone may connect: peer credentials decide what they may do. */
	if (chmod(d->socket_path, 0666) < 0 || listen(fd, 128) < 0)
		goto fail_fd;
	d->listen_fd = fd;
	d->bound = true;
	return 0;
fail_fd:
	err = -errno;
	close(fd);
	snprintf(why, why_len, "%s: %s", d->socket_path, strerror(-err));
	return err;
fail:
	err = -errno;
	snprintf(why, why_len, "socket: %s", strerror(-err));
	return err;
}

static int lock_state_dir(struct wd_daemon *d, char *why, size_t why_len)
{
	char path[VSW_WIRE_PATH_MAX + 8];
	int err;

	err = make_parent_dirs(d->state_dir, why, why_len);
	if (err)
		return err;
	if (mkdir(d->state_dir, 0700) && errno != EEXIST) {
		err = -errno;
		snprintf(why, why_len, "cannot create %s: %s", d->state_dir, strerror(-err));
		return err;
	}
	snprintf(path, sizeof(path), "%s/lock", d->state_dir);
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		err = -errno;
		snprintf(why, why_len, "%s: %s", path, strerror(-err));
		return err;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		err = -errno;
		snprintf(why, why_len, "%s: another vsswriterd holds it (%s)", path,
			 strerror(-err));
		return err == -EWOULDBLOCK ? -EADDRINUSE : err;
	}
	return 0;
}

int wd_daemon_new(const struct wd_options *opts, struct wd_config *cfg,
		  struct wd_daemon **out, char *why, size_t why_len)
{
	struct wd_daemon *d = calloc(1, sizeof(*d));
	int err;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	d->listen_fd = -1;
	d->lock_fd = -1;
	d->devnull_fd = -1;
	wd_watch_init(&d->listen_watch);
	wd_list_init(&d->conns);
	wd_list_init(&d->writers);
	wd_list_init(&d->sessions);
	wd_list_init(&d->queue);
	wd_list_init(&d->deferred);
	wd_list_init(&d->graveyard);
	wd_list_init(&d->session_graveyard);
	wd_list_init(&d->hook_children);
	snprintf(d->socket_path, sizeof(d->socket_path), "%s",
		 opts->socket_path ? opts->socket_path : VSW_DEFAULT_SOCKET);
	snprintf(d->state_dir, sizeof(d->state_dir), "%s",
		 opts->state_dir ? opts->state_dir : WD_DEFAULT_STATE_DIR);
	snprintf(d->sysroot, sizeof(d->sysroot), "%s", opts->sysroot ? opts->sysroot : "");
	d->provider = opts->provider;
	/* Session numbers go on across restarts: a writer that undid session
	 * N of a killed daemon must not take the next daemon's N for it. */
	d->next_session_id = vsw_realtime_ns() / 1000;
	d->provider_ctx = opts->provider_ctx;

	err = wd_loop_new(&d->loop);
	if (err) {
		snprintf(why, why_len, "epoll: %s", strerror(-err));
		goto fail;
	}
	err = wd_timer_init(d->loop, &d->deferred_timer, run_deferred, d);
	if (err) {
		snprintf(why, why_len, "timerfd: %s", strerror(-err));
		goto fail;
	}
	d->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (d->devnull_fd < 0) {
		err = -errno;
		snprintf(why, why_len, "/dev/null: %s", strerror(-err));
		goto fail;
	}
	err = lock_state_dir(d, why, why_len);
	if (err)
		goto fail;
	if (opts->listen_fd >= 0) {
		struct sockaddr_un addr;
		socklen_t len = sizeof(addr);

		d->listen_fd = opts->listen_fd;
		/* The socket systemd made: its name is the one to tell. */
		memset(&addr, 0, sizeof(addr));
		if (getsockname(d->listen_fd, (struct sockaddr *)&addr, &len) == 0 &&
		    addr.sun_family == AF_UNIX && addr.sun_path[0])
			snprintf(d->socket_path, sizeof(d->socket_path), "%.*s",
				 (int)sizeof(addr.sun_path), addr.sun_path);
		fcntl(d->listen_fd, F_SETFL, fcntl(d->listen_fd, F_GETFL) | O_NONBLOCK);
		fcntl(d->listen_fd, F_SETFD, FD_CLOEXEC);
	} else {
		err = bind_socket(d, why, why_len);
		if (err)
			goto fail;
	}
	err = wd_watch_add(d->loop, &d->listen_watch, d->listen_fd, EPOLLIN,
			   listen_ready, d);
	if (err) {
		snprintf(why, why_len, "epoll: %s", strerror(-err));
		goto fail;
	}
	*out = d;
	return 0;
fail:
	wd_daemon_free(d);
	return err;
}

void wd_daemon_stop(struct wd_daemon *d)
{
	d->stopping = true;
	wd_sessions_shutdown(d);
	if (!wd_sessions_busy(d))
		d->stopped = true;
}

void wd_daemon_free(struct wd_daemon *d)
{
	struct wd_list *pos, *tmp;

	if (!d)
		return;
	wd_list_for_each_safe(pos, tmp, &d->conns)
		wd_conn_close(wd_container_of(pos, struct wd_conn, link));
	wd_list_for_each_safe(pos, tmp, &d->sessions)
		wd_session_free(wd_container_of(pos, struct wd_session, link));
	wd_list_for_each_safe(pos, tmp, &d->session_graveyard)
		wd_session_free(wd_container_of(pos, struct wd_session, link));
	wd_list_for_each_safe(pos, tmp, &d->writers)
		wd_writer_unlist(wd_container_of(pos, struct wd_writer, link));
	if (d->loop)
		wd_hooks_fini(d);
	while (!wd_list_empty(&d->deferred))
		wd_list_del(d->deferred.next);
	reap(d);
	if (d->loop) {
		wd_watch_del(d->loop, &d->listen_watch);
		wd_timer_fini(d->loop, &d->deferred_timer);
	}
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	if (d->bound)
		unlink(d->socket_path);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->devnull_fd >= 0)
		close(d->devnull_fd);
	if (d->provider && d->provider->close)
		d->provider->close(d->provider_ctx);
	wd_loop_free(d->loop);
	wd_config_free(&d->cfg);
	free(d);
}
