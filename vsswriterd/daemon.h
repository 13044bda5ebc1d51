/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vsswriterd's core: the objects the event loop drives, and the functions
 * the parts of the daemon call on each other. Everything runs on the one
 * thread of the loop, so nothing here is locked.
 *
 *   connection  one accepted AF_UNIX stream; a requester, a writer, a
 *               monitor, or not yet either (conn.c)
 *   writer      a registered writer process, or a hook found in a hook
 *               directory (writers.c, hooks.c)
 *   session     a requester's backup: its writers (participants), its
 *               volumes, its set; owned by the requester's connection
 *               until detached (session.c)
 *   participant one writer's part in one session, with its result
 *   event       one step sent to one participant, with its time limit
 *
 * The rule that shapes everything: while any writer is frozen (d->frozen
 * > 0), nothing here execs, opens or writes a file outside the state
 * directory under /run, or logs synchronously. Work that needs a
 * filesystem then waits in d->deferred until the last thaw.
 */
#ifndef WD_DAEMON_H
#define WD_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "wire.h"

#define WD_MAX_VOLUMES		64
#define WD_MAX_GROUPS		64
/* A client that reads nothing is dropped when this much waits for it. */
#define WD_MAX_OUTPUT		(4 * 1024 * 1024)
/* Most writers (processes and hooks) at once. */
#define WD_MAX_WRITERS		256
/* Kept off the end of a writer's freeze window for the kernel's commit. */
#define WD_COMMIT_MARGIN_MS	50

struct wd_daemon;
struct wd_session;
struct wd_writer;
struct wd_part;
struct wd_event;

/* ---- provider: the kernel side of a set (provider_vss.c, or a fake) ---- */

struct wd_create_request {
	const char *device_paths[WD_MAX_VOLUMES];
	dev_t devices[WD_MAX_VOLUMES];
	size_t device_count;
	const char *storage_path;
	uint64_t storage_limit;
	uint32_t chunk_size;
	const char *label;
	uint32_t flags;			/* VSS_CREATE_* */
	uint32_t hold_limit_ms;
};

struct wd_create_outcome {
	char set_id[VSW_ID_STRLEN];
	uint64_t hold_us;
	uint64_t created_ns;		/* CLOCK_REALTIME of the commit */
	struct json_object *snapshots;	/* array; the caller owns it */
};

struct wd_provider_error {
	int err;			/* negative errno */
	char message[VSW_MESSAGE_MAX];
	char object[VSW_WIRE_PATH_MAX];	/* what it concerns, or "" */
};

struct wd_provider {
	/* Before anything is frozen: get ready to commit (open a handle). */
	int (*prepare)(void *ctx, struct wd_provider_error *e);
	int (*create)(void *ctx, const struct wd_create_request *req,
		      struct wd_create_outcome *out, struct wd_provider_error *e);
	int (*delete_set)(void *ctx, const char *set_id, struct wd_provider_error *e);
	/* Ids of the sets with a snapshot of one of @devices committed at or
	 * after @since_ns (CLOCK_REALTIME); for recovery after a crash. */
	int (*sets_since)(void *ctx, const dev_t *devices, size_t device_count,
			  uint64_t since_ns, char (*ids)[VSW_ID_STRLEN], size_t max,
			  size_t *count);
	/* 1 if a set exists, 0 if not, or -errno. */
	int (*set_exists)(void *ctx, const char *set_id);
	void (*close)(void *ctx);
};

extern const struct wd_provider wd_provider_vss;

/* ---- connections ---- */

enum wd_role {
	WD_ROLE_NEW,
	WD_ROLE_WRITER,
	WD_ROLE_REQUESTER,
	WD_ROLE_MONITOR,
};

struct wd_conn {
	struct wd_list link;		/* in d->conns */
	struct wd_daemon *d;
	uint64_t id;
	int fd;
	struct wd_watch watch;
	struct vsw_reader in;
	struct vsw_writebuf out;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[WD_MAX_GROUPS];
	int group_count;
	enum wd_role role;
	struct wd_writer *writer;	/* WD_ROLE_WRITER */
	struct wd_session *session;	/* WD_ROLE_REQUESTER, until detached */
	bool call_pending;		/* a requester call awaits its reply */
	bool closing;			/* close once the output is written */
	bool in_dispatch;		/* process_input() is on the stack */
	bool oneway_call;		/* the call being handled wants no reply */
	bool dead;			/* closed; freed at the end of the dispatch */
};

/* Replies and errors on a connection; they end the pending call. */
void wd_conn_reply(struct wd_conn *c, struct json_object *params);
void wd_conn_reply_more(struct wd_conn *c, struct json_object *params);
void wd_conn_error(struct wd_conn *c, const char *error,
		   struct json_object *params);
void wd_conn_error_text(struct wd_conn *c, const char *error,
			const char *parameter, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Closes after what is queued has been written. */
void wd_conn_close_later(struct wd_conn *c);
bool wd_conn_may_request(const struct wd_conn *c);
void wd_conn_close(struct wd_conn *c);

/* ---- writers ---- */

struct wd_component {
	char *name;
	char **paths;
	size_t path_count;
	char **devices;			/* "/dev/vdb" or "MAJOR:MINOR" */
	size_t device_count;
	uint32_t backup_types;		/* VSW_BACKUP_* */
	dev_t *volumes;			/* resolved at identify */
	size_t volume_count;
};

struct wd_last_error {
	uint32_t state;			/* the failed-at state, or 0 */
	uint32_t step;
	uint32_t failure;		/* enum vsw_failure_code */
	char message[VSW_MESSAGE_MAX];
	uint64_t time_ns;		/* CLOCK_REALTIME; 0 when none */
	char set_id[VSW_ID_STRLEN];
};

struct wd_hook;

struct wd_writer {
	struct wd_list link;		/* in d->writers while listed */
	struct wd_daemon *d;
	int refs;			/* the list and each participant */
	bool listed;
	uint64_t serial;
	uint32_t kind;			/* enum vsw_kind */
	char name[VSW_NAME_MAX + 1];
	char class_id[VSW_ID_STRLEN];
	char instance_id[VSW_ID_STRLEN];
	uint32_t writer_class;		/* enum vsw_class */
	uint32_t freeze_window_ms;
	struct wd_component *components;
	size_t component_count;
	uid_t uid;
	pid_t pid;
	uint64_t registered_ns;		/* CLOCK_REALTIME */
	bool connected;
	struct wd_conn *conn;		/* process writers */
	struct wd_hook *hook;		/* hook writers */
	uint32_t state;			/* enum vsw_state */
	struct wd_last_error last_error;
	struct wd_part *active;		/* its part in the set being created */
	struct wd_list events;		/* outstanding wd_event.wlink */
};

void wd_writer_get(struct wd_writer *w);
void wd_writer_put(struct wd_writer *w);
/* Takes a writer off the list (it lives on while parts refer to it). */
void wd_writer_unlist(struct wd_writer *w);
struct wd_writer *wd_writer_find(struct wd_daemon *d, const char *name);
struct wd_writer *wd_writer_find_instance(struct wd_daemon *d, uint32_t kind,
					  const char *name, const char *class_id,
					  const char *instance_id);
void wd_writer_set_state(struct wd_writer *w, uint32_t state);
void wd_writer_record_failure(struct wd_writer *w, uint32_t step,
			      uint32_t failure, const char *message,
			      const char *set_id);
struct json_object *wd_writer_json(const struct wd_writer *w, bool metadata);
struct json_object *wd_components_json(const struct wd_component *c, size_t n,
				       bool with_volumes);
/* Parses the "components" of a Register or an Answer. */
int wd_components_parse(struct json_object *array, struct wd_component **out,
			size_t *count, char *why, size_t why_len);
void wd_components_free(struct wd_component *c, size_t n);

void wd_writer_method(struct wd_conn *c, const struct vsw_msg *m);
void wd_writer_disconnected(struct wd_writer *w);

/* ---- events: one step sent to one participant ---- */

/*
 * @result is 0 (the step succeeded) or a negative errno: -ETIMEDOUT,
 * -ENOTCONN (the writer went away), -ECANCELED (the writer failed it;
 * @failure and @message say how).
 */
typedef void (*wd_event_done_fn)(struct wd_event *ev, int result,
				 uint32_t failure, const char *message);

struct wd_event {
	struct wd_list wlink;		/* in writer->events */
	struct wd_daemon *d;
	struct wd_writer *w;
	struct wd_part *part;
	uint64_t id;
	uint32_t step;
	uint32_t timeout_ms;
	struct wd_timer timer;
	uint64_t sent_ns;
	wd_event_done_fn done;
	bool finished;
	/* An outcome known at once, delivered from the loop (soon_*). */
	bool soon;
	int soon_result;
	uint32_t soon_failure;
	char soon_message[VSW_MESSAGE_MAX];
	/* What the event says besides its step. */
	bool success;			/* backup-complete */
	char reason[VSW_MESSAGE_MAX];	/* abort */
	struct wd_hook_run *run;	/* hook writers */
};

/*
 * Sends @step to @part's writer (a message, or a hook run), with a time
 * limit. @done is called exactly once, always from the loop, never before
 * this returns. Returns 0, or -errno when nothing was sent (no call).
 */
int wd_event_send(struct wd_part *part, uint32_t step, uint32_t timeout_ms,
		  wd_event_done_fn done);
/* Forgets an event without calling its done function. */
void wd_event_cancel(struct wd_event *ev);
/* Ends an event: called by the writer or hook code. */
void wd_event_finish(struct wd_event *ev, int result, uint32_t failure,
		     const char *message);
/* Ends it from the loop, never from inside the caller's stack. */
void wd_event_finish_soon(struct wd_event *ev, int result, uint32_t failure,
			  const char *message);

/* ---- hooks (hooks.c) ---- */

/* Rescans the hook directories: writers appear, change and go. */
void wd_hooks_scan(struct wd_daemon *d);
/* At prepare-backup: fork the armed undo (abort) of a hook. */
int wd_hook_prefork_undo(struct wd_part *part, char *why, size_t why_len);
/* Before the first freeze: fork the freeze and thaw children. */
int wd_hook_prefork(struct wd_part *part, char *why, size_t why_len);
/* The sequence is over for this hook: let its waiting children go. */
void wd_hook_release(struct wd_writer *w);
int wd_hook_run(struct wd_event *ev);
void wd_hook_cancel_run(struct wd_event *ev);
void wd_hook_free(struct wd_writer *w);
/* Runs that waited for the thaw. */
void wd_hooks_resume(struct wd_daemon *d);
/* The hook's own time limit per step. */
uint32_t wd_hook_timeout_ms(const struct wd_writer *w);
/* Kills and forgets every child (the daemon ends). */
void wd_hooks_fini(struct wd_daemon *d);

/* ---- deferred work ---- */

struct wd_deferred {
	struct wd_list link;
	void (*fn)(struct wd_deferred *dw);
	void *arg;
};

/* Runs @dw soon if nothing is frozen, else after the last thaw. The link
 * must have been initialized with wd_list_init(). */
void wd_defer(struct wd_daemon *d, struct wd_deferred *dw);
void wd_defer_cancel(struct wd_deferred *dw);

/* ---- sessions and the sequence (session.c) ---- */

enum wd_session_state {
	WS_OPEN,		/* nothing asked yet */
	WS_GATHERING,		/* identify */
	WS_GATHERED,
	WS_QUEUED,		/* PrepareBackup waits for the creation slot */
	WS_PREPARING,		/* prepare-backup */
	WS_PREPARED,		/* holds the slot, waits for DoSnapshotSet */
	WS_CREATING,		/* prepare-snapshot .. post-snapshot */
	WS_CREATED,		/* the set exists, waits for backup-complete */
	WS_COMPLETING,		/* backup-complete */
	WS_ABORTING,		/* abort, before the set was handed over */
	WS_RELEASING,		/* backup-complete with failure, then delete */
	WS_DONE,
};

enum wd_phase {
	PH_NONE,
	PH_PREPARE_SNAPSHOT,
	PH_FREEZE,
	PH_COMMIT,
	PH_THAW,
	PH_POST_SNAPSHOT,
};

struct wd_part {
	struct wd_session *s;
	struct wd_writer *w;		/* holds a reference; NULL if unmatched */
	/* Who it was, kept for results after the writer went away. */
	uint32_t kind;
	char name[VSW_NAME_MAX + 1];
	char class_id[VSW_ID_STRLEN];
	char instance_id[VSW_ID_STRLEN];
	uint32_t writer_class;
	uint32_t freeze_window_ms;
	bool excluded;			/* failed identify, or not on the set */
	char excluded_why[VSW_MESSAGE_MAX];
	/* This session's view of the writer. */
	uint32_t state;
	uint32_t failure;
	uint32_t failed_step;
	char message[VSW_MESSAGE_MAX];
	bool prepared;			/* got prepare-backup */
	bool snapshot_prepared;		/* got prepare-snapshot */
	bool freeze_sent;
	bool frozen;			/* counted in d->frozen */
	bool thawed;
	bool post_sent;			/* got post-snapshot */
	bool post_done;
	bool in_round;
	struct wd_event *ev;		/* outstanding */
	struct wd_timer window;		/* its freeze window */
	uint64_t freeze_sent_ns;
	uint64_t freeze_done_ns;
	uint64_t thaw_done_ns;
};

struct wd_session {
	struct wd_list link;		/* in d->sessions */
	struct wd_list qlink;		/* in d->queue */
	struct wd_daemon *d;
	uint64_t id;
	struct wd_conn *conn;		/* NULL once detached or gone */
	uid_t uid;
	pid_t pid;
	enum wd_session_state state;
	bool detached;
	bool requester_gone;
	bool recovered;			/* read back from the state file */
	bool inflight;			/* a commit began and is not settled */
	bool doomed;			/* in d->session_graveyard */
	uint32_t backup_type;
	uint32_t step_timeout_ms;
	uint32_t queue_timeout_ms;
	struct wd_part *parts;
	size_t part_count;
	/* Volumes of the set. */
	char *volume_paths[WD_MAX_VOLUMES];
	dev_t volumes[WD_MAX_VOLUMES];
	size_t volume_count;
	/* DoSnapshotSet's parameters. */
	char *storage_path;
	uint64_t storage_limit;
	uint32_t chunk_size;
	char *label;
	uint32_t create_flags;
	uint32_t hold_limit_ms;
	/* Where the sequence is. */
	enum wd_phase phase;
	int class_index;		/* into the freeze or thaw order */
	uint32_t round_step;
	uint64_t round_gen;		/* changes when a round replaces another */
	size_t round_pending;
	bool round_failed;
	bool round_sending;
	void (*round_done)(struct wd_session *s);
	/* qemu-ga hooks run one after the other, in name order. */
	struct wd_part **chain;
	size_t chain_count;
	size_t chain_next;
	struct wd_part *chain_running;
	bool aborting;			/* the abort rounds have begun */
	bool abort_requested;		/* by the requester's Abort call */
	struct wd_deferred gather_work;	/* a gather that waits for a thaw */
	uint64_t t_request_real;	/* CLOCK_REALTIME of DoSnapshotSet */
	struct wd_timer queue_timer;
	struct wd_timer idle_timer;	/* a requester that waits too long */
	bool holds_slot;
	/* The outcome. */
	bool committed;
	char set_id[VSW_ID_STRLEN];
	uint64_t hold_us;
	uint64_t created_ns;
	struct json_object *snapshots;
	bool set_deleted;
	char delete_error[VSW_MESSAGE_MAX];
	bool complete_success;		/* what backup-complete said */
	/* Why the sequence failed: the error sent to the requester. */
	const char *fail_error;		/* VSW_E_* or NULL */
	char fail_message[VSW_MESSAGE_MAX];
	struct json_object *fail_extra;	/* more error parameters */
	char end_reason[VSW_MESSAGE_MAX];	/* for a later call */
	/* Timing of the creation, CLOCK_MONOTONIC. */
	uint64_t t_request, t_frozen_first, t_commit_start, t_commit_end;
	uint64_t t_thawed_last, t_done;
	/* The connection that asked for a backup-complete or abort of a
	 * detached set, waiting for the answer. */
	struct wd_conn *waiter;
};

void wd_requester_method(struct wd_conn *c, const struct vsw_msg *m);
void wd_session_requester_gone(struct wd_session *s);
/* A participant's writer failed on its own (disconnect, SetFailure). */
void wd_session_part_failed(struct wd_part *p, uint32_t step, uint32_t failure,
			    const char *message);
struct json_object *wd_part_json(const struct wd_part *p);
struct wd_session *wd_session_by_set(struct wd_daemon *d, const char *set_id);
void wd_session_free(struct wd_session *s);
/* Writers reconnecting after a restart get what was left for them. */
void wd_sessions_writer_registered(struct wd_daemon *d, struct wd_writer *w);
/* A second session waiting for the slot, if any, goes next. */
void wd_slot_release(struct wd_daemon *d, struct wd_session *s);
/* SIGTERM: abort what can be aborted. */
void wd_sessions_shutdown(struct wd_daemon *d);
bool wd_sessions_busy(const struct wd_daemon *d);

/* Frozen accounting: the first freeze holds the log, the last thaw runs
 * the deferred work. */
void wd_part_set_frozen(struct wd_part *p, bool frozen);

/* ---- devices (devices.c) ---- */

/* The block device a path lives on, or a device path names. */
int wd_device_of_path(const struct wd_daemon *d, const char *path, dev_t *out,
		      char *why, size_t why_len);
int wd_device_parse(const struct wd_daemon *d, const char *text, dev_t *out,
		    char *why, size_t why_len);
/* Whether a set of @vols holds all of @dev's data (itself, its whole disk,
 * or everything it is stacked on). */
bool wd_device_covered(const struct wd_daemon *d, dev_t dev, const dev_t *vols,
		       size_t count);
void wd_device_name(const struct wd_daemon *d, dev_t dev, char *buf, size_t len);
struct json_object *wd_device_json(const struct wd_daemon *d, dev_t dev);
/* Resolves every component's volumes; -errno with @why on failure. */
int wd_components_resolve(const struct wd_daemon *d, struct wd_component *c,
			  size_t n, char *why, size_t why_len);

/* ---- the state file under /run (runstate.c) ---- */

/* Writes the sets that exist and the commit in flight. */
void wd_runstate_save(struct wd_daemon *d);
void wd_runstate_commit_begin(struct wd_daemon *d, struct wd_session *s);
void wd_runstate_commit_end(struct wd_daemon *d, struct wd_session *s);
/* At start: delete what a crash left half done, restore detached sets. */
void wd_runstate_recover(struct wd_daemon *d);

/* ---- monitor ---- */

/* Sends @params (consumed) to every monitor, with "event" and "time_ns". */
void wd_monitor_emit(struct wd_daemon *d, const char *event,
		     struct json_object *params);

/* ---- the daemon ---- */

struct wd_daemon {
	struct wd_loop *loop;
	struct wd_config cfg;
	char socket_path[VSW_WIRE_PATH_MAX];
	char state_dir[VSW_WIRE_PATH_MAX];
	char sysroot[VSW_WIRE_PATH_MAX];	/* "" normally; tests fake /sys */
	int listen_fd;
	struct wd_watch listen_watch;
	struct wd_list conns;
	size_t conn_count;
	uint64_t next_conn_id;
	struct wd_list writers;
	size_t writer_count;
	uint64_t next_writer_serial;
	uint64_t next_event_id;
	struct wd_list sessions;
	uint64_t next_session_id;
	struct wd_session *slot;	/* the session holding creation */
	struct wd_list queue;		/* sessions waiting for it */
	int frozen;			/* participants frozen now */
	struct wd_list deferred;
	struct wd_timer deferred_timer;	/* runs d->deferred after a thaw */
	struct wd_list graveyard;	/* connections to free between events */
	struct wd_list session_graveyard; /* sessions to free between events */
	struct wd_list hook_children;	/* every process forked for a hook */
	int lock_fd;			/* flock on the state directory */
	bool bound;			/* we made the socket: remove it at the end */
	const struct wd_provider *provider;
	void *provider_ctx;
	int devnull_fd;
	bool stopping;
	bool stopped;			/* the loop may end */
	/* Count of sequences, for the log and the benchmark. */
	uint64_t sequences_ok;
	uint64_t sequences_failed;
};

struct wd_options {
	const char *socket_path;	/* VSW_DEFAULT_SOCKET if NULL */
	const char *state_dir;
	const char *sysroot;
	int listen_fd;			/* >= 0: use it (socket activation) */
	const struct wd_provider *provider;	/* required */
	void *provider_ctx;
};

/*
 * Creates the daemon around a loaded configuration (taken over). Binds
 * the socket unless @opts->listen_fd is given. Returns 0 or -errno with
 * @why.
 */
int wd_daemon_new(const struct wd_options *opts, struct wd_config *cfg,
		  struct wd_daemon **out, char *why, size_t why_len);
void wd_daemon_free(struct wd_daemon *d);
/* Adopts an already connected socket, as if accepted (tests). */
struct wd_conn *wd_daemon_adopt(struct wd_daemon *d, int fd, uid_t uid,
				gid_t gid, pid_t pid);
void wd_daemon_stop(struct wd_daemon *d);
/* One event, then what it left to free. Returns as wd_loop_run_once(). */
int wd_daemon_run_once(struct wd_daemon *d, int timeout_ms);

#endif /* WD_DAEMON_H */
