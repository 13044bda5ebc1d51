// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "harness.h"
#include "wdtest.h"

static struct wdt *current;

void wdt_start(struct wdt *t, const char *config)
{
	struct wd_options opts = { .listen_fd = -1 };
	char sock[600], state[600], conf[600], why[512];
	struct wd_config cfg;
	int err;

	memset(t, 0, sizeof(*t));
	current = t;
	snprintf(t->dir, sizeof(t->dir), "%s/d%d-%ld", t_tmpdir(), getpid(), (long)random());
	mkdir(t->dir, 0700);
	snprintf(sock, sizeof(sock), "%s/s", t->dir);
	snprintf(state, sizeof(state), "%s/state", t->dir);
	snprintf(conf, sizeof(conf), "%s/conf", t->dir);
	wd_config_defaults(&cfg);
	cfg.hook_dir[0] = '\0';
	if (config) {
		FILE *f = fopen(conf, "w");

		fputs(config, f);
		fclose(f);
		err = wd_config_load(&cfg, conf, false, why, sizeof(why));
		if (err) {
			t_diag("config: %s", why);
			abort();
		}
	}
	opts.socket_path = sock;
	opts.state_dir = state;
	opts.provider = &fake_provider_ops;
	opts.provider_ctx = &t->fp;
	wd_log_init(WD_LOG_NONE, true);
	err = wd_daemon_new(&opts, &cfg, &t->d, why, sizeof(why));
	wd_config_free(&cfg);
	if (err) {
		t_diag("daemon: %s", why);
		abort();
	}
}

void wdt_stop(struct wdt *t)
{
	int i;

	for (i = 0; i < t->client_count; i++) {
		if (!t->clients[i].closed)
			close(t->clients[i].fd);
		vsw_reader_free(&t->clients[i].in);
	}
	/* Let the daemon see the closes before it goes. */
	for (i = 0; i < 50; i++)
		if (wd_daemon_run_once(t->d, 5) == 0)
			break;
	wd_daemon_free(t->d);
	t->d = NULL;
}

struct wdt_client *wdt_client(struct wdt *t, uid_t uid, gid_t gid)
{
	struct wdt_client *c = &t->clients[t->client_count++];
	int sv[2];

	memset(c, 0, sizeof(*c));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	c->fd = sv[0];
	vsw_reader_init(&c->in);
	c->conn = wd_daemon_adopt(t->d, sv[1], uid, gid, 4242 + t->client_count);
	return c;
}

void wdt_send_raw(struct wdt_client *c, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			/* The daemon reads only when the loop turns. */
			if (errno == EAGAIN && current && current->d) {
				wd_daemon_run_once(current->d, 2);
				continue;
			}
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

void wdt_send(struct wdt_client *c, const char *text)
{
	wdt_send_raw(c, text, strlen(text) + 1);
}

void wdt_close(struct wdt_client *c)
{
	if (!c->closed)
		close(c->fd);
	c->closed = true;
}

static void log_event(struct wdt *t, struct wdt_client *c, uint32_t step)
{
	char entry[sizeof(t->log[0])];

	if (t->log_count >= WDT_LOG_MAX)
		return;
	snprintf(entry, sizeof(entry), "%s:%s", c->name, vsw_step_name(step));
	memcpy(t->log[t->log_count++], entry, sizeof(entry));
}

static void answer(struct wdt_client *c, uint64_t id, uint32_t step)
{
	char buf[1024];

	if (c->on[step] == WDT_FAIL)
		snprintf(buf, sizeof(buf),
			 "{\"method\":\"io.vss.Writer.Answer\",\"oneway\":true,\"parameters\":"
			 "{\"id\":%llu,\"ok\":false,\"failure\":\"%s\",\"message\":\"%s\"}}",
			 (unsigned long long)id, c->failure ? c->failure : "retryable",
			 c->fail_message ? c->fail_message : "fake failure");
	else
		snprintf(buf, sizeof(buf),
			 "{\"method\":\"io.vss.Writer.Answer\",\"oneway\":true,\"parameters\":"
			 "{\"id\":%llu,\"ok\":true}}", (unsigned long long)id);
	wdt_send(c, buf);
}

/* Reads what a fake writer got and answers what is due. */
static void service_writer(struct wdt *t, struct wdt_client *c)
{
	const char *text;
	size_t len;
	int i;

	if (c->closed)
		return;
	while (vsw_reader_fill(&c->in, c->fd) > 0)
		;
	while (vsw_reader_next(&c->in, &text, &len) == 1) {
		struct vsw_msg m;
		const char *ev;
		uint64_t id = 0;
		bool success = false;
		char why[128];
		int step;

		if (vsw_msg_parse(text, len, &m, why, sizeof(why)))
			continue;
		if (vsw_get_string(m.parameters, "event", true, 64, &ev, why, sizeof(why)) ||
		    !strcmp(ev, "registered")) {
			vsw_msg_free(&m);
			continue;
		}
		step = vsw_step_from_name(ev);
		vsw_get_uint(m.parameters, "id", true, UINT64_MAX, &id, why, sizeof(why));
		if (!vsw_get_bool(m.parameters, "success", false, &success, why, sizeof(why)))
			c->success_seen = success;
		vsw_msg_free(&m);
		if (step <= 0)
			continue;
		c->events[step]++;
		log_event(t, c, (uint32_t)step);
		if (c->on[step] == WDT_IGNORE)
			continue;
		if (c->on[step] == WDT_CLOSE) {
			wdt_close(c);
			return;
		}
		if (c->pending_count < 8) {
			c->pending[c->pending_count].id = id;
			c->pending[c->pending_count].step = (uint32_t)step;
			c->pending[c->pending_count].due_ns = vsw_now_ns() +
				(uint64_t)c->delay_ms * 1000000ULL;
			c->pending_count++;
		}
	}
	for (i = 0; i < c->pending_count; i++) {
		if (c->pending[i].due_ns > vsw_now_ns())
			continue;
		answer(c, c->pending[i].id, c->pending[i].step);
		c->pending[i] = c->pending[--c->pending_count];
		i--;
	}
}

static void service_all(struct wdt *t)
{
	int i;

	for (i = 0; i < t->client_count; i++)
		if (t->clients[i].is_writer)
			service_writer(t, &t->clients[i]);
}

void wdt_pump(struct wdt *t, int ms)
{
	uint64_t end = vsw_now_ns() + (uint64_t)ms * 1000000ULL;

	do {
		service_all(t);
		wd_daemon_run_once(t->d, 2);
		service_all(t);
	} while (vsw_now_ns() < end);
}

int wdt_recv(struct wdt *t, struct wdt_client *c, struct vsw_msg *out, int ms)
{
	uint64_t end = vsw_now_ns() + (uint64_t)ms * 1000000ULL;
	const char *text;
	size_t len;
	char why[256];
	ssize_t n;

	memset(out, 0, sizeof(*out));
	for (;;) {
		if (!c->closed) {
			do
				n = vsw_reader_fill(&c->in, c->fd);
			while (n > 0);
			if (vsw_reader_next(&c->in, &text, &len) == 1) {
				if (vsw_msg_parse(text, len, out, why, sizeof(why))) {
					t_diag("unparseable reply: %s", why);
					return -1;
				}
				return 1;
			}
			if (c->in.eof)
				return -1;
		}
		if (vsw_now_ns() >= end)
			return 0;
		service_all(t);
		wd_daemon_run_once(t->d, 2);
	}
}

int wdt_call(struct wdt *t, struct wdt_client *c, const char *text, struct vsw_msg *out,
	     int ms)
{
	wdt_send(c, text);
	return wdt_recv(t, c, out, ms);
}

struct wdt_client *wdt_writer(struct wdt *t, const char *name, const char *cls,
			      const char *components_json, uid_t uid)
{
	struct wdt_client *c = wdt_client(t, uid, uid);
	char buf[4096], cid[VSW_ID_STRLEN], iid[VSW_ID_STRLEN];
	struct vsw_msg m;
	int rc;

	c->is_writer = true;
	snprintf(c->name, sizeof(c->name), "%s", name);
	vsw_random_uuid(cid);
	vsw_random_uuid(iid);
	snprintf(buf, sizeof(buf),
		 "{\"method\":\"io.vss.Writer.Register\",\"more\":true,\"parameters\":{"
		 "\"protocol\":1,\"name\":\"%s\",\"class_id\":\"%s\",\"instance_id\":\"%s\","
		 "\"class\":\"%s\",\"freeze_window_ms\":5000%s%s}}",
		 name, cid, iid, cls, components_json ? ",\"components\":" : "",
		 components_json ? components_json : "");
	wdt_send(c, buf);
	/* The registration reply, read here rather than by the servicing. */
	c->is_writer = false;
	rc = wdt_recv(t, c, &m, 2000);
	c->is_writer = true;
	if (rc != 1 || m.kind != VSW_MSG_REPLY) {
		t_diag("writer %s not registered: %s", name,
		       rc == 1 ? wdt_param_string(&m, "message") : "no reply");
		if (rc == 1)
			vsw_msg_free(&m);
		return NULL;
	}
	vsw_msg_free(&m);
	return c;
}

int wdt_log_index(const struct wdt *t, const char *entry)
{
	int i;

	for (i = 0; i < t->log_count; i++)
		if (!strcmp(t->log[i], entry))
			return i;
	return -1;
}

void wdt_dump_log(const struct wdt *t)
{
	int i;

	for (i = 0; i < t->log_count; i++)
		t_diag("  %d %s", i, t->log[i]);
}

const char *wdt_param_string(const struct vsw_msg *m, const char *key)
{
	struct json_object *v;

	if (!m->parameters || !json_object_object_get_ex(m->parameters, key, &v))
		return NULL;
	return json_object_get_string(v);
}

struct json_object *wdt_writer_result(const struct vsw_msg *m, const char *name)
{
	struct json_object *arr, *o, *n;
	size_t i;

	if (!json_object_object_get_ex(m->parameters, "writers", &arr))
		return NULL;
	for (i = 0; i < json_object_array_length(arr); i++) {
		o = json_object_array_get_idx(arr, i);
		if (json_object_object_get_ex(o, "name", &n) &&
		    !strcmp(json_object_get_string(n), name))
			return o;
	}
	return NULL;
}
