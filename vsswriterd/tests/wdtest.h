/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Drives the daemon's core in the test's own thread: clients are the
 * other ends of socketpairs the daemon adopted, with the credentials the
 * test chooses. Fake writers answer events by a script, as the loop
 * turns; every event they see is logged in order, across writers.
 */
#ifndef WD_TEST_H
#define WD_TEST_H

#include <stdbool.h>

#include "daemon.h"
#include "fake_provider.h"

#define WDT_MAX_CLIENTS	16
#define WDT_LOG_MAX	256

enum wdt_behaviour {
	WDT_OK = 0,
	WDT_FAIL,		/* answer ok=false with the failure below */
	WDT_IGNORE,		/* never answer */
	WDT_CLOSE,		/* close the connection instead of answering */
};

struct wdt_client {
	int fd;
	struct vsw_reader in;
	struct wd_conn *conn;
	bool is_writer;
	bool closed;
	/* Writers only. */
	char name[64];
	enum wdt_behaviour on[VSW_STEP_COUNT];
	const char *failure;
	const char *fail_message;
	unsigned int delay_ms;	/* before answering (the loop goes on) */
	struct {
		uint64_t id;
		uint32_t step;
		uint64_t due_ns;
	} pending[8];
	int pending_count;
	int events[VSW_STEP_COUNT];
	bool success_seen;	/* backup-complete's flag */
};

struct wdt {
	struct wd_daemon *d;
	struct fake_provider fp;
	char dir[512];
	struct wdt_client clients[WDT_MAX_CLIENTS];
	int client_count;
	/* "writer:step" in the order the writers received them. */
	char log[WDT_LOG_MAX][80];
	int log_count;
};

/* A daemon with @config (text of vsswriterd.conf, or NULL). */
void wdt_start(struct wdt *t, const char *config);
void wdt_stop(struct wdt *t);
struct wdt_client *wdt_client(struct wdt *t, uid_t uid, gid_t gid);
void wdt_send(struct wdt_client *c, const char *text);
void wdt_send_raw(struct wdt_client *c, const void *data, size_t len);
/* Runs the loop until a message arrives for @c (1), or @ms pass (0), or
 * @c is closed by the daemon (-1). @out must be freed with vsw_msg_free. */
int wdt_recv(struct wdt *t, struct wdt_client *c, struct vsw_msg *out, int ms);
/* Runs the loop for @ms, answering for the fake writers. */
void wdt_pump(struct wdt *t, int ms);
/* A registered fake writer ("front-end", ...), components as JSON or NULL. */
struct wdt_client *wdt_writer(struct wdt *t, const char *name, const char *cls,
			      const char *components_json, uid_t uid);
void wdt_close(struct wdt_client *c);
/* A call from a requester: sends and waits for the reply (or error). */
int wdt_call(struct wdt *t, struct wdt_client *c, const char *text, struct vsw_msg *out,
	     int ms);
/* Index in the log of "writer:step", or -1. */
int wdt_log_index(const struct wdt *t, const char *entry);
const char *wdt_param_string(const struct vsw_msg *m, const char *key);
struct json_object *wdt_writer_result(const struct vsw_msg *m, const char *name);
void wdt_dump_log(const struct wdt *t);

#endif
