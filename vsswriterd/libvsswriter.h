/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvsswriter: the library a writer process links to take part in vss
 * snapshot sets. A writer is an application (a database, a mail store, a
 * VM manager) that quiesces its data when vsswriterd asks, so that the
 * snapshot is consistent for it, not only for the filesystem; and that
 * may veto a set it cannot take part in.
 *
 * A writer registers once with its name, a stable class id, its class
 * (frozen in the order front-end, back-end, system), its components (the
 * paths and devices whose data must be in the set, with the backup types
 * it supports) and callbacks; the library generates an instance id per
 * start. From then on the library owns the connection to vsswriterd, in a
 * thread of its own, and calls the callbacks as the sequence goes:
 *
 *   identify, prepare-backup, prepare-snapshot, freeze, thaw,
 *   post-snapshot, backup-complete; abort on any failure before the end of
 *   post-snapshot.
 *
 * Callbacks run one at a time, in that thread. A callback returns 0 for
 * success, or fails the step with vsw_event_fail() (a failure code and a
 * reason); a failure at prepare-snapshot or freeze is a veto: the set is
 * aborted, every writer gets abort, the requester gets the reason.
 *
 * The watchdog. Once freeze succeeded, the library counts the writer's
 * freeze window (at most 60 s; the writer may ask for less). If thaw or
 * abort has not come when it passes, or the connection to vsswriterd
 * drops while the writer is in a sequence (even because vsswriterd was
 * killed with SIGKILL), the library calls the writer's abort callback
 * itself (its thaw callback when it has no abort callback), with
 * by_watchdog set. An application is never left frozen. The abort
 * callback must therefore undo whatever prepare-backup, prepare-snapshot
 * and freeze did, whether freeze succeeded or not.
 *
 * The library reconnects by itself when vsswriterd comes back, with the
 * same instance id. The protocol is described in
 * Documentation/writers.rst; vss-writers(7) is the overview.
 *
 * Conventions: functions return 0 or a negative errno. Link with
 * `pkg-config --libs libvsswriter`.
 */
#ifndef LIBVSSWRITER_H
#define LIBVSSWRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LIBVSSWRITER_VERSION_MAJOR	0
#define LIBVSSWRITER_VERSION_MINOR	4
#define LIBVSSWRITER_VERSION_PATCH	0

/*
 * Writer states, numbered as Windows VSS numbers them (VSS_WRITER_STATE),
 * as vsswriterd and `vssctl writers` show them; 16 is vss's own.
 */
enum vsw_state {
	VSW_STATE_UNKNOWN = 0,
	VSW_STATE_STABLE = 1,
	VSW_STATE_WAITING_FOR_FREEZE = 2,
	VSW_STATE_WAITING_FOR_THAW = 3,
	VSW_STATE_WAITING_FOR_POST_SNAPSHOT = 4,
	VSW_STATE_WAITING_FOR_BACKUP_COMPLETE = 5,
	VSW_STATE_FAILED_AT_IDENTIFY = 6,
	VSW_STATE_FAILED_AT_PREPARE_BACKUP = 7,
	VSW_STATE_FAILED_AT_PREPARE_SNAPSHOT = 8,
	VSW_STATE_FAILED_AT_FREEZE = 9,
	VSW_STATE_FAILED_AT_THAW = 10,
	VSW_STATE_FAILED_AT_POST_SNAPSHOT = 11,
	VSW_STATE_FAILED_AT_BACKUP_COMPLETE = 12,
	VSW_STATE_FAILED_AT_PRE_RESTORE = 13,
	VSW_STATE_FAILED_AT_POST_RESTORE = 14,
	VSW_STATE_FAILED_AT_BACKUP_SHUTDOWN = 15,
	VSW_STATE_FAILED_AT_ABORT = 16,
	VSW_STATE_COUNT
};

/* What a failure is. A writer reports one of the first five. */
enum vsw_failure_code {
	VSW_FAILURE_NONE = 0,
	/* A volume it needs is missing from the set: retry with it. */
	VSW_FAILURE_INCONSISTENT_SNAPSHOT = 1,
	/* Memory, disk, connections: retry after a while. */
	VSW_FAILURE_OUT_OF_RESOURCES = 2,
	/* A time limit passed: retry after a while. */
	VSW_FAILURE_TIMEOUT = 3,
	/* Try again. */
	VSW_FAILURE_RETRYABLE = 4,
	/* Retrying will not help without a change. */
	VSW_FAILURE_NON_RETRYABLE = 5,
	/* vsswriterd only: the writer went away or never answered. */
	VSW_FAILURE_NOT_RESPONDING = 6,
	VSW_FAILURE_COUNT
};

/* The events of the sequence, in their order; and the steps failed at. */
enum vsw_step {
	VSW_STEP_NONE = 0,
	VSW_STEP_IDENTIFY = 1,
	VSW_STEP_PREPARE_BACKUP = 2,
	VSW_STEP_PREPARE_SNAPSHOT = 3,
	VSW_STEP_FREEZE = 4,
	VSW_STEP_THAW = 5,
	VSW_STEP_POST_SNAPSHOT = 6,
	VSW_STEP_BACKUP_COMPLETE = 7,
	VSW_STEP_ABORT = 8,
	VSW_STEP_COUNT
};

/* Writer classes: frozen in this order, thawed in the reverse one. */
enum vsw_class {
	VSW_CLASS_FRONT_END = 1,	/* applications in front of the data */
	VSW_CLASS_BACK_END = 2,		/* databases and stores */
	VSW_CLASS_SYSTEM = 3,		/* the system's own state */
};

/* Backup types a component supports, as bits. */
#define VSW_BACKUP_FULL		(1U << 0)
#define VSW_BACKUP_INCREMENTAL	(1U << 1)
#define VSW_BACKUP_DIFFERENTIAL	(1U << 2)
#define VSW_BACKUP_LOG		(1U << 3)
#define VSW_BACKUP_COPY		(1U << 4)
#define VSW_BACKUP_ALL		0x1fU

/* Most components, and most paths or devices in one component. */
#define VSW_MAX_COMPONENTS	64
#define VSW_MAX_COMPONENT_ITEMS	64
/* The freeze window: its default and its upper bound, milliseconds. */
#define VSW_DEFAULT_FREEZE_WINDOW_MS	60000
#define VSW_MAX_FREEZE_WINDOW_MS	60000
/* Text form of an id (a UUID), with its NUL. */
#define VSW_ID_STRLEN		37
/* Where vsswriterd listens unless told otherwise ($VSS_WRITERD_SOCKET). */
#define VSW_DEFAULT_SOCKET	"/run/vss/writerd.sock"

struct vsw_writer;

/* One component: data that must be in the set together. */
struct vsw_component {
	const char *name;		/* unique within the writer */
	const char *const *paths;	/* absolute paths: their filesystems'
					 * devices must be in the set */
	size_t path_count;
	const char *const *devices;	/* block device paths, or "MAJOR:MINOR" */
	size_t device_count;
	uint32_t backup_types;		/* VSW_BACKUP_*; 0 means full */
};

/* What a callback is told. Valid during the call only. */
struct vsw_event {
	uint32_t step;			/* enum vsw_step */
	uint64_t session;		/* vsswriterd's number of the backup */
	const char *set_id;		/* from thaw on; NULL before the commit */
	uint32_t backup_type;		/* one VSW_BACKUP_* bit */
	uint32_t timeout_ms;		/* the time this step may take */
	uint32_t freeze_window_ms;	/* freeze: the watchdog's limit */
	bool success;			/* backup-complete: the backup worked */
	const char *reason;		/* abort, or a failed backup-complete */
	const char *const *volumes;	/* the set's devices ("vdb") */
	size_t volume_count;
	bool by_watchdog;		/* the library calls on its own */
};

/*
 * A callback: 0 for success, or the value of vsw_event_fail() (any other
 * non-zero value fails the step as non-retryable).
 */
typedef int (*vsw_event_fn)(struct vsw_writer *w, const struct vsw_event *ev,
			    void *arg);

/* Every member may be NULL: the step then succeeds without a call. */
struct vsw_callbacks {
	vsw_event_fn identify;
	vsw_event_fn prepare_backup;
	vsw_event_fn prepare_snapshot;
	vsw_event_fn freeze;
	vsw_event_fn thaw;
	vsw_event_fn post_snapshot;
	vsw_event_fn backup_complete;
	vsw_event_fn abort;
	/* Told when the connection comes and goes (registered or not). */
	void (*connection)(struct vsw_writer *w, bool registered, void *arg);
};

struct vsw_writer_params {
	const char *name;		/* 1..128 printable characters */
	const char *class_id;		/* a UUID, the same at every start */
	uint32_t writer_class;		/* enum vsw_class */
	const struct vsw_component *components;
	size_t component_count;		/* 0: the writer is in every set */
	uint32_t freeze_window_ms;	/* 1..60000; 0 means 60000 */
	const char *socket_path;	/* NULL: $VSS_WRITERD_SOCKET or the default */
	uint32_t reconnect_ms;		/* retry interval; 0 means 1000 */
};

/**
 * vsw_writer_start() - register a writer with vsswriterd
 * @params: who the writer is; copied
 * @callbacks: what to call for each event; copied
 * @arg: passed to every callback
 * @out: receives the writer
 *
 * Starts the library's thread, which connects (and keeps reconnecting)
 * to vsswriterd. Returns at once; vsw_writer_wait_registered() waits for
 * the first registration.
 *
 * Return: 0; -EINVAL for bad @params; -ENOMEM; or the errno of
 * pthread_create().
 */
int vsw_writer_start(const struct vsw_writer_params *params,
		     const struct vsw_callbacks *callbacks, void *arg,
		     struct vsw_writer **out);

/**
 * vsw_writer_wait_registered() - wait until vsswriterd accepted the writer
 * @w: the writer
 * @timeout_ms: how long to wait; -1 forever
 *
 * Return: 0 once registered; -ETIMEDOUT; or the refusal of vsswriterd:
 * -EACCES (this uid may not register this name), -EEXIST (the name is in
 * use), -EPROTO or -EINVAL; vsw_writer_error() says why.
 */
int vsw_writer_wait_registered(struct vsw_writer *w, int timeout_ms);

/**
 * vsw_writer_error() - why the last registration failed, in words
 * @w: the writer
 *
 * Return: vsswriterd's message, or "" when none. Valid until the next
 * call on @w.
 */
const char *vsw_writer_error(struct vsw_writer *w);

/**
 * vsw_writer_stop() - leave and free the writer
 * @w: the writer, or NULL
 *
 * If the writer is in a sequence, its abort callback runs first. Then it
 * unregisters, and the thread ends. Must not be called from a callback.
 */
void vsw_writer_stop(struct vsw_writer *w);

/**
 * vsw_event_fail() - fail the step a callback is handling
 * @w: the writer the callback was given
 * @failure: VSW_FAILURE_INCONSISTENT_SNAPSHOT .. VSW_FAILURE_NON_RETRYABLE
 * @fmt: the reason, printf-style; it reaches the requester
 *
 * Only from a callback; return its value from the callback.
 *
 * Return: -1.
 */
int vsw_event_fail(struct vsw_writer *w, uint32_t failure, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * vsw_writer_report_failure() - tell vsswriterd that the writer failed
 * @w: the writer
 * @failure: as for vsw_event_fail()
 * @fmt: the reason
 *
 * From any thread. Inside a sequence it fails the step the writer is at
 * (aborting the set); outside, it marks the writer failed at its last
 * step, as `vssctl writers` then shows, until the next good sequence.
 *
 * Return: 0, -ENOTCONN when not connected, -EINVAL for a bad @failure.
 */
int vsw_writer_report_failure(struct vsw_writer *w, uint32_t failure,
			      const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * vsw_writer_set_components() - change the components
 * @w: the writer
 * @components: the new list; copied
 * @count: its length
 *
 * vsswriterd learns them at the next identify.
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
int vsw_writer_set_components(struct vsw_writer *w,
			      const struct vsw_component *components, size_t count);

/* The instance id of this start of the writer (a UUID). */
const char *vsw_writer_instance_id(const struct vsw_writer *w);
/* Whether vsswriterd currently has the writer registered. */
bool vsw_writer_registered(struct vsw_writer *w);
/* Whether the application is frozen now (freeze succeeded, no thaw yet). */
bool vsw_writer_frozen(struct vsw_writer *w);

/* Names: "stable", "failed-at-freeze", ...; "unknown" when out of range. */
const char *vsw_state_name(uint32_t state);
/* "retryable", "inconsistent-snapshot", ... */
const char *vsw_failure_name(uint32_t failure);
/* "freeze", "post-snapshot", ... */
const char *vsw_step_name(uint32_t step);
/* "front-end", "back-end", "system" */
const char *vsw_class_name(uint32_t writer_class);
/* The version of this library, "0.4.0". */
const char *vsw_library_version(void);

#ifdef __cplusplus
}
#endif

#endif /* LIBVSSWRITER_H */
