/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvss: client library of vss, the Volume Shadow Copy Service for Linux.
 *
 * libvss talks to the vss kernel module over the generic netlink family
 * described in <linux/vss.h>. It is what vssctl is built on, and what a
 * backup agent links to take, list, watch and release snapshot sets.
 *
 * Conventions
 *   - Every function that can fail returns 0 (or a documented non-negative
 *     value) on success and a negative errno value on failure. Besides the
 *     errno values of the system and of the kernel module, some values
 *     have a meaning of their own here, see LIBVSS_ENOMODULE,
 *     LIBVSS_EAMBIGUOUS, LIBVSS_EPROTOCOL, LIBVSS_ECBT_STALE and
 *     LIBVSS_ECBT_TOO_OLD.
 *   - A handle keeps the details of the last failure of a call made with
 *     it: the kernel's extended-ack message, the object the failure
 *     concerns (a device path as the caller gave it, the storage path, an
 *     id), and the attribute the kernel blamed. See vss_last_error().
 *   - A handle is not thread safe: use one handle per thread, or lock.
 *   - Nothing returned by the library needs to be freed with free():
 *     every allocating call has its own release function.
 *
 * ABI rules (libvss.so.1; checked by vssctl/abi-check.sh at every build
 * and by debian/libvss1.symbols when the packages are built):
 *   - Functions are only ever added, never removed or changed. A new
 *     function is marked VSS_EXPORT, declared here, and listed in a new
 *     version node of vssctl/libvss.map (LIBVSS_1.1 inheriting LIBVSS_1.0,
 *     and so on: one node per release that adds functions) and in
 *     debian/libvss1.symbols with that release's version. A node is frozen
 *     once a release has shipped it: the build fails if a function is added
 *     to a node of an earlier release.
 *   - Structures the caller fills in and passes (struct vss_create_params)
 *     start with a size member: the caller sets it to sizeof the structure
 *     as it knows it (VSS_CREATE_PARAMS_INIT does), members are only ever
 *     appended, and the library takes every member beyond the caller's
 *     size as zero ("default"). Such structures grow without a new soname.
 *     0 stands for the size of LIBVSS_1.0, so that a zeroed structure keeps
 *     meaning what it meant in 1.0; set the size to use a later member.
 *   - Every other structure (what the library fills in: infos, results,
 *     events; and struct vss_id, struct vss_device) is fixed for the
 *     soname. Changing one, or changing the meaning of a member or of a
 *     function, is a new soname (libvss.so.2, package libvss2) and a new
 *     LIBVSS_2.0 node; new data goes instead into a new structure that a
 *     new function fills in.
 *   - libvss.so.1 (0.4.0) is the first release with this ABI. (Builds
 *     before it, never packaged, had other sonames.)
 */
#ifndef LIBVSS_H
#define LIBVSS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vss.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LIBVSS_VERSION_MAJOR	0
#define LIBVSS_VERSION_MINOR	4
#define LIBVSS_VERSION_PATCH	0

/**
 * LIBVSS_ENOMODULE - the vss kernel module is not loaded
 *
 * Returned (negated) by vss_open() when the generic netlink family "vss"
 * is not registered. A distinct value so a caller can tell "module not
 * loaded" from "no such snapshot" (ENOENT).
 */
#define LIBVSS_ENOMODULE	ENOPROTOOPT

/**
 * LIBVSS_EAMBIGUOUS - an id prefix matches more than one object
 */
#define LIBVSS_EAMBIGUOUS	ENOTUNIQ

/**
 * LIBVSS_EPROTOCOL - the module speaks another protocol version
 *
 * vss_open() succeeds against such a module so that its version can still
 * be read with vss_get_version(); every other request then fails with it.
 */
#define LIBVSS_EPROTOCOL	EPROTONOSUPPORT

/**
 * LIBVSS_ECBT_STALE - a changed-block point of another generation
 *
 * Returned (negated) by vss_cbt_changes() when a point given belongs to
 * a generation the device no longer has (tracking was interrupted in a
 * way that could hide a write), or the two points are of different
 * generations. No list of changes can be trusted; take a full backup.
 * See vss_cbt_needs_full_backup().
 */
#define LIBVSS_ECBT_STALE	ESTALE

/**
 * LIBVSS_ECBT_TOO_OLD - a changed-block point older than the map reaches
 *
 * Returned (negated) by vss_cbt_changes() when the device's map no longer
 * holds the intervals since that point (old ones are dropped to bound
 * memory). Take a full backup.
 */
#define LIBVSS_ECBT_TOO_OLD	ENODATA

/* Canonical text form of an id: 36 characters and the terminating NUL. */
#define VSS_ID_STRLEN		37
/* Hex digits of an id, the longest meaningful prefix. */
#define VSS_ID_HEX_DIGITS	(2 * VSS_ID_LEN)

/* Longest kernel device name kept ("nvme0n1p12", "dm-3"), with its NUL. */
#define VSS_DEVICE_NAME_MAX	32
/* Longest failure reason kept, with its NUL; longer ones are truncated. */
#define VSS_REASON_MAX		256
/* Longest module version string kept, with its NUL. */
#define VSS_MODULE_VERSION_MAX	64
/*
 * Text form of a changed-block point, "GENERATION:SEQ": an id, a colon,
 * up to 20 decimal digits, and the terminating NUL.
 */
#define VSS_CBT_POINT_STRLEN	(VSS_ID_STRLEN + 1 + 20)

struct vss_handle;

/* A snapshot or snapshot set id: 16 raw bytes, shown as a UUID. */
struct vss_id {
	uint8_t bytes[VSS_ID_LEN];
};

/* A block device, named by number as on the wire. */
struct vss_device {
	uint32_t major;
	uint32_t minor;
	char name[VSS_DEVICE_NAME_MAX];	/* kernel name ("vdb1"), or "" */
};

/* What vss_get_version() reports about the loaded module. */
struct vss_module_version {
	char version[VSS_MODULE_VERSION_MAX];	/* module version, "0.4.0" */
	uint32_t protocol;		/* its VSS_PROTOCOL_VERSION */
	uint32_t family_version;	/* generic netlink family version */
};

/*
 * A changed-block tracking point: a sequence number within one generation
 * of a device's tracking. Each snapshot records the point at which it was
 * taken; vss_cbt_changes() tells what changed between two points.
 */
struct vss_cbt_point {
	struct vss_id generation;
	uint64_t seq;
};

/* One snapshot, as VSS_CMD_GET_SNAPSHOT describes it. */
struct vss_snapshot_info {
	struct vss_id id;
	struct vss_id set_id;
	struct vss_device origin;
	struct vss_device image;	/* "vss3": readable as /dev/vss3 */
	uint32_t index;			/* per origin, from 1, never reused */
	uint64_t created_ns;		/* CLOCK_REALTIME of the commit */
	uint32_t state;			/* enum vss_snapshot_state */
	int error;			/* positive errno when failed, else 0 */
	char reason[VSS_REASON_MAX];	/* why it failed, or "" */
	uint32_t chunk_size;		/* bytes */
	char label[VSS_LABEL_MAX];	/* "" when none was given */
	char *storage_path;		/* as given at creation; never NULL */
	uint32_t storage_kind;		/* enum vss_storage_kind */
	uint64_t storage_used;		/* bytes holding chunks, whole set */
	uint64_t storage_size;		/* bytes allocated now */
	uint64_t storage_limit;		/* bytes */
	uint64_t hold_us;		/* how long writes were held */
	uint32_t open_count;		/* openers of the image now */
	struct vss_cbt_point cbt_point;	/* tracking point of the snapshot */
	bool has_cbt_point;		/* false: the module gave none */
};

/* A tracked device's changed-block tracking state (the VSS_A_CBT nest). */
struct vss_cbt_info {
	struct vss_device device;
	struct vss_id generation;
	uint64_t seq;			/* current interval = newest point */
	uint64_t oldest_seq;		/* oldest point still answered */
	uint32_t block_size;		/* bytes per tracked block */
	uint64_t size;			/* bytes tracked: the device's size */
	uint64_t map_bytes;		/* kernel memory of the maps now */
	uint64_t started_ns;		/* CLOCK_REALTIME: generation start */
};

/* What vss_cbt_changes() handed over, summed up. */
struct vss_cbt_totals {
	uint64_t extents;		/* calls of the extent function */
	uint64_t bytes;			/* their lengths added up */
	uint32_t block_size;		/* granularity of the map */
	struct vss_id generation;	/* of both points */
};

/* What a state file holds, read without applying it. */
struct vss_cbt_state_file {
	struct vss_cbt_info saved;	/* device, generation, points, size */
	struct vss_id boot_id;		/* of the boot it was saved in */
	uint64_t saved_ns;		/* CLOCK_REALTIME of the save */
	bool this_boot;			/* saved in the running boot */
};

/* What vss_cbt_restore() did. */
struct vss_cbt_restore_result {
	struct vss_cbt_info info;	/* the device's tracking state now */
	struct vss_cbt_info saved;	/* the state the file held */
	uint32_t verdict;		/* enum vss_cbt_verdict */
	char reason[VSS_REASON_MAX];	/* why a new generation, or "" */
	char device_path[VSS_PATH_MAX];	/* the device it was restored to */
};

/*
 * What to create with vss_create_set(). Zero means "default" throughout.
 * Grows at its end without a new soname: see "ABI rules" above.
 */
struct vss_create_params {
	size_t size;			/* sizeof(struct vss_create_params), or
					 * 0 for the LIBVSS_1.0 members only */
	const char *const *devices;	/* paths of the origin block devices */
	size_t device_count;		/* 1..VSS_MAX_SET_DEVICES */
	const char *storage_path;	/* block device, file or directory;
					 * relative paths are resolved */
	uint64_t storage_limit;		/* bytes; required for a directory */
	uint32_t chunk_size;		/* power of two, 4 KiB..1 MiB */
	const char *label;		/* NULL or < VSS_LABEL_MAX bytes */
	uint32_t flags;			/* VSS_CREATE_* */
	uint32_t hold_limit_ms;		/* 1..VSS_MAX_HOLD_LIMIT_MS */
	/* Members added after LIBVSS_1.0 go here, and only here. */
};

/* An empty struct vss_create_params of this header's size. */
#define VSS_CREATE_PARAMS_INIT	{ .size = sizeof(struct vss_create_params) }

/* What vss_create_set() created; release with vss_create_result_free(). */
struct vss_create_result {
	struct vss_id set_id;
	uint64_t hold_us;
	struct vss_snapshot_info *snapshots;
	size_t snapshot_count;
};

/* Which optional fields of a struct vss_event_info are filled in. */
#define VSS_EVENT_HAS_SNAP_ID	(1U << 0)
#define VSS_EVENT_HAS_SET_ID	(1U << 1)
#define VSS_EVENT_HAS_ORIGIN	(1U << 2)
#define VSS_EVENT_HAS_ERROR	(1U << 3)
#define VSS_EVENT_HAS_STORAGE	(1U << 4)
#define VSS_EVENT_HAS_CBT	(1U << 5)

/* One multicast event of the module (VSS_CMD_EVENT), decoded. */
struct vss_event_info {
	uint32_t type;			/* enum vss_event */
	uint32_t present;		/* VSS_EVENT_HAS_* */
	uint64_t received_ns;		/* CLOCK_REALTIME at reception */
	struct vss_id snap_id;
	struct vss_id set_id;
	struct vss_device origin;
	int error;			/* positive errno */
	char reason[VSS_REASON_MAX];
	uint64_t storage_used;
	uint64_t storage_limit;
	struct vss_cbt_info cbt;	/* tracking events */
};

/**
 * vss_library_version() - version of this library
 *
 * Return: the version libvss was built as, "0.4.0" or a longer string
 * starting with LIBVSS_VERSION_MAJOR.MINOR.PATCH. Never NULL.
 */
const char *vss_library_version(void);

/**
 * vss_open() - connect to the vss kernel module
 * @out: receives the new handle on success
 *
 * Opens a generic netlink socket with extended acks, resolves the family
 * "vss" and reads the module's version.
 *
 * Return: 0; -LIBVSS_ENOMODULE if the module is not loaded; another
 * negative errno if the socket cannot be opened (-EAFNOSUPPORT, -EPERM in
 * a restricted sandbox) or the module does not answer properly (-EPROTO).
 */
int vss_open(struct vss_handle **out);

/**
 * vss_close() - release a handle and everything it holds
 * @h: handle from vss_open(), or NULL
 */
void vss_close(struct vss_handle *h);

/**
 * vss_get_version() - version and protocol of the loaded module
 * @h: handle
 * @out: filled in on success
 *
 * Answered from what vss_open() read; never fails on a protocol mismatch.
 *
 * Return: 0 or a negative errno.
 */
int vss_get_version(struct vss_handle *h, struct vss_module_version *out);

/**
 * vss_last_error() - the result of the last failed call on @h
 * @h: handle
 *
 * Return: a negative errno, or 0 when the last call succeeded.
 */
int vss_last_error(const struct vss_handle *h);

/**
 * vss_last_error_message() - why the last call on @h failed, in words
 * @h: handle
 *
 * Return: the kernel's extended-ack message ("device is already in a
 * snapshot set being created") or a message of the library, or NULL when
 * there is none beyond the errno. Valid until the next call on @h.
 */
const char *vss_last_error_message(const struct vss_handle *h);

/**
 * vss_last_error_object() - what the last failure on @h concerns
 * @h: handle
 *
 * Return: the device path as the caller gave it (the kernel blamed that
 * device's attribute, or the library found it is no block device), the
 * storage path, or the id of the snapshot or set concerned; NULL when
 * the failure concerns the request as a whole. Valid until the next call
 * on @h.
 */
const char *vss_last_error_object(const struct vss_handle *h);

/**
 * vss_last_error_attr() - the attribute the kernel blamed
 * @h: handle
 *
 * Return: the VSS_A_* type the kernel's extended ack pointed at, or 0.
 */
int vss_last_error_attr(const struct vss_handle *h);

/**
 * vss_strerror() - describe an error code of this library
 * @err: an errno value, negative (as returned) or positive
 *
 * Return: a text for the library's own codes ("the vss kernel module is
 * not loaded" for LIBVSS_ENOMODULE, "ambiguous id prefix" for
 * LIBVSS_EAMBIGUOUS, one that says "take a full backup" for
 * LIBVSS_ECBT_STALE and LIBVSS_ECBT_TOO_OLD, ...), strerror() otherwise.
 * Never NULL.
 */
const char *vss_strerror(int err);

/**
 * vss_errno_name() - symbolic name of an errno value
 * @err: an errno value, negative or positive
 *
 * Return: "EBUSY" and the like, or NULL for a value without a name.
 */
const char *vss_errno_name(int err);

/**
 * vss_state_name() - "active" or "failed"
 * @state: enum vss_snapshot_state
 *
 * Return: the name, or "unknown" for a value this library does not know.
 */
const char *vss_state_name(uint32_t state);

/**
 * vss_storage_kind_name() - "block", "file", "tmpfile" or "same-volume"
 * @kind: enum vss_storage_kind
 *
 * Return: the name, or "unknown".
 */
const char *vss_storage_kind_name(uint32_t kind);

/**
 * vss_event_name() - "snapshot-created", "storage-low", "cbt-stopped", ...
 * @type: enum vss_event
 *
 * Return: the name, or "unknown".
 */
const char *vss_event_name(uint32_t type);

/**
 * vss_check_privilege() - whether this process may change snapshots
 *
 * Creating and deleting snapshots, and every tracking call but
 * vss_cbt_get_info() and vss_cbt_list(), need CAP_SYS_ADMIN. The module
 * is the judge (it wants the capability in the initial user namespace);
 * this only looks at the effective set, so that a caller can say so
 * before anything else. Every function that needs it calls it first.
 *
 * Return: 0, -EPERM without CAP_SYS_ADMIN, or the errno of capget().
 */
int vss_check_privilege(void);

/**
 * vss_device_lookup() - the block device a path names
 * @path: path of a block device node
 * @out: filled in with its numbers and, where sysfs tells, its name
 *
 * Only stat()s the path; the device is not opened.
 *
 * Return: 0; -ENOTBLK if @path is not a block device; the errno of stat()
 * (-ENOENT, -EACCES, ...) otherwise.
 */
int vss_device_lookup(const char *path, struct vss_device *out);

/**
 * vss_create_set() - snapshot several devices at one instant
 * @h: handle
 * @params: what to create; see struct vss_create_params
 * @out: receives the set; release with vss_create_result_free()
 *
 * The library checks the request before sending it: every device path
 * must name a distinct block device (-ENOTBLK, -ENOENT or -EINVAL naming
 * the path in vss_last_error_object()), the storage path must exist and
 * is made absolute, a directory needs a storage limit, and the sizes and
 * the label must fit the protocol (-EINVAL). All or nothing: on failure no
 * snapshot of the request exists.
 *
 * @params->size below the size of LIBVSS_1.0 (other than 0) is -EINVAL;
 * a size beyond what this library knows is accepted when the unknown
 * members are all zero, and is -E2BIG otherwise (the caller asks for
 * something this version cannot do).
 *
 * Return: 0 or a negative errno; the kernel's errors are listed under
 * VSS_CMD_CREATE_SET in <linux/vss.h>.
 */
int vss_create_set(struct vss_handle *h, const struct vss_create_params *params,
		   struct vss_create_result *out);

/**
 * vss_create_result_free() - release what vss_create_set() returned
 * @result: the result; its fields are cleared. NULL is allowed.
 */
void vss_create_result_free(struct vss_create_result *result);

/**
 * vss_list_snapshots() - every snapshot, or those of one origin
 * @h: handle
 * @origin_path: path of an origin block device, or NULL for all
 * @out: receives an array ordered by origin and index; NULL when empty
 * @count: receives the number of elements
 *
 * Return: 0 or a negative errno (-ENOTBLK, -ENOENT for a bad
 * @origin_path). Release the array with vss_snapshot_info_array_free().
 */
int vss_list_snapshots(struct vss_handle *h, const char *origin_path,
		       struct vss_snapshot_info **out, size_t *count);

/**
 * vss_get_snapshot() - one snapshot by its full id
 * @h: handle
 * @id: snapshot id
 * @out: filled in; release with vss_snapshot_info_clear()
 *
 * Return: 0, -ENOENT if there is no such snapshot, or a negative errno.
 */
int vss_get_snapshot(struct vss_handle *h, const struct vss_id *id,
		     struct vss_snapshot_info *out);

/**
 * vss_snapshot_info_clear() - release what one snapshot info holds
 * @info: filled in by this library, or zeroed; NULL is allowed
 */
void vss_snapshot_info_clear(struct vss_snapshot_info *info);

/**
 * vss_snapshot_info_array_free() - release an array of snapshot infos
 * @infos: from vss_list_snapshots(), or NULL
 * @count: its number of elements
 */
void vss_snapshot_info_array_free(struct vss_snapshot_info *infos, size_t count);

/**
 * vss_resolve_snapshot_id() - the snapshot an id or id prefix names
 * @h: handle
 * @text: full id or unique prefix: hex digits, any case, with or without
 *        the dashes of the canonical form
 * @out: receives the full id
 *
 * Return: 0; -EINVAL if @text is no id prefix; -ENOENT if no snapshot
 * matches; -LIBVSS_EAMBIGUOUS if several do.
 */
int vss_resolve_snapshot_id(struct vss_handle *h, const char *text,
			    struct vss_id *out);

/**
 * vss_resolve_set_id() - the snapshot set an id or id prefix names
 * @h: handle
 * @text: as for vss_resolve_snapshot_id(), matched against set ids
 * @out: receives the full set id
 *
 * Return: as vss_resolve_snapshot_id().
 */
int vss_resolve_set_id(struct vss_handle *h, const char *text,
		       struct vss_id *out);

/**
 * vss_delete_snapshot() - delete one snapshot
 * @h: handle
 * @id: snapshot id
 * @flags: VSS_DELETE_FORCE to delete even while its image is open (the
 *         openers then get EIO)
 *
 * Return: 0; -ENOENT; -EBUSY if the image is open and @flags lacks
 * VSS_DELETE_FORCE; or another negative errno.
 */
int vss_delete_snapshot(struct vss_handle *h, const struct vss_id *id,
			uint32_t flags);

/**
 * vss_delete_set() - delete every snapshot of a set
 * @h: handle
 * @set_id: set id
 * @flags: as for vss_delete_snapshot()
 *
 * Return: as vss_delete_snapshot().
 */
int vss_delete_set(struct vss_handle *h, const struct vss_id *set_id,
		   uint32_t flags);

/**
 * vss_delete_oldest() - delete the oldest snapshot of one origin
 * @h: handle
 * @origin_path: path of the origin block device
 * @flags: as for vss_delete_snapshot()
 * @deleted: if not NULL, receives the id of the deleted snapshot
 *
 * Return: 0; -ENOENT if the device has no snapshot; as
 * vss_delete_snapshot() otherwise.
 */
int vss_delete_oldest(struct vss_handle *h, const char *origin_path,
		      uint32_t flags, struct vss_id *deleted);

/**
 * typedef vss_delete_progress_fn - told about each deletion of
 * vss_delete_all()
 * @snapshot: the snapshot it tried to delete
 * @err: 0 or the negative errno of that deletion
 * @message: the kernel's message about a failure, or NULL
 * @arg: the caller's argument
 */
typedef void (*vss_delete_progress_fn)(const struct vss_snapshot_info *snapshot,
				       int err, const char *message, void *arg);

/**
 * vss_delete_all() - delete every snapshot
 * @h: handle
 * @flags: as for vss_delete_snapshot()
 * @progress: called after each deletion, or NULL
 * @arg: passed to @progress
 * @deleted: if not NULL, receives how many were deleted
 *
 * Goes on after a failure so that one open image does not keep the
 * others. A snapshot that vanished meanwhile is skipped silently.
 *
 * Return: 0 if all were deleted, else the first failure's negative errno.
 */
int vss_delete_all(struct vss_handle *h, uint32_t flags,
		   vss_delete_progress_fn progress, void *arg, size_t *deleted);

/**
 * vss_event_subscribe() - start receiving the module's events
 * @h: handle
 *
 * Opens a second socket joined to the multicast group "events". Events
 * are queued by the kernel from then on.
 *
 * Return: 0 (also when already subscribed) or a negative errno.
 */
int vss_event_subscribe(struct vss_handle *h);

/**
 * vss_event_fd() - the descriptor to poll for events
 * @h: handle subscribed with vss_event_subscribe()
 *
 * Readable when vss_event_dispatch() has work. Owned by @h.
 *
 * Return: the descriptor, or -EBADF if @h is not subscribed.
 */
int vss_event_fd(const struct vss_handle *h);

/**
 * vss_event_next() - wait for the next event
 * @h: handle subscribed with vss_event_subscribe()
 * @out: receives the event
 * @timeout_ms: how long to wait; -1 forever, 0 not at all
 *
 * Return: 0 with an event in @out; -ETIMEDOUT; -EINTR when a signal
 * arrived while waiting (so a caller can stop on SIGINT); -ENOBUFS when
 * the kernel dropped events because they were not read fast enough
 * (subscription stays valid, later events still arrive); or another
 * negative errno.
 */
int vss_event_next(struct vss_handle *h, struct vss_event_info *out,
		   int timeout_ms);

/**
 * typedef vss_event_fn - receives events from vss_event_dispatch()
 * @event: the event, valid during the call
 * @arg: the caller's argument
 *
 * Return: 0 to go on, non-zero to stop dispatching.
 */
typedef int (*vss_event_fn)(const struct vss_event_info *event, void *arg);

/**
 * vss_event_dispatch() - hand every event ready now to @callback
 * @h: handle subscribed with vss_event_subscribe()
 * @callback: called once per event
 * @arg: passed to @callback
 *
 * Never blocks: meant for a caller that polls vss_event_fd() itself.
 *
 * Return: the number of events handed over, or a negative errno as for
 * vss_event_next() (-ENOBUFS: events were lost).
 */
int vss_event_dispatch(struct vss_handle *h, vss_event_fn callback, void *arg);

/*
 * Changed-block tracking (CBT)
 *
 * A tracked device has a map of the blocks written to it. Each snapshot
 * of the device records a point (struct vss_cbt_point); the blocks
 * written between two points, or since a point until now, are what an
 * incremental backup copies. Whenever vss cannot prove that it saw every
 * write, the device gets a new generation and points of the old one are
 * refused with LIBVSS_ECBT_STALE: the list is never silently short. The
 * model is described in <linux/vss.h>, "Changed-block tracking".
 *
 * The map lives in kernel memory. vss_cbt_save() hands it over to a state
 * file (before a module unload or a shutdown) and vss_cbt_restore()
 * resumes tracking from it, the module checking that no write can have
 * been missed in between. The file format is described in
 * Documentation/cbt-state-file.rst.
 */

/**
 * vss_track() - start tracking a device's changed blocks
 * @h: handle
 * @device_path: path of the block device
 * @out: if not NULL, receives the new tracking state (generation, point 0)
 *
 * A device is also tracked from its first snapshot on.
 *
 * Return: 0; -EPERM without CAP_SYS_ADMIN; -ENOTBLK or -ENOENT for a bad
 * @device_path; -EALREADY if the device is already tracked; -EOPNOTSUPP
 * for a device vss cannot track; or another negative errno.
 */
int vss_track(struct vss_handle *h, const char *device_path,
	      struct vss_cbt_info *out);

/**
 * vss_untrack() - stop tracking a device and forget its map
 * @h: handle
 * @device_path: path of the block device
 *
 * Snapshots of the device stay. Points of the ended generation are never
 * answered again.
 *
 * Return: 0; -ENOENT if the device is not tracked; as vss_track()
 * otherwise.
 */
int vss_untrack(struct vss_handle *h, const char *device_path);

/**
 * vss_cbt_get_info() - a tracked device's tracking state
 * @h: handle
 * @device_path: path of the block device
 * @out: filled in on success
 *
 * Needs no privilege.
 *
 * Return: 0; -ENOENT if the device is not tracked; -ENOTBLK or -ENOENT
 * (naming the path in vss_last_error_object()) for a bad @device_path.
 */
int vss_cbt_get_info(struct vss_handle *h, const char *device_path,
		     struct vss_cbt_info *out);

/**
 * vss_cbt_list() - the tracking state of every tracked device
 * @h: handle
 * @out: receives an array ordered by device number; NULL when empty
 * @count: receives the number of elements
 *
 * Needs no privilege. Release the array with vss_cbt_info_array_free().
 *
 * Return: 0 or a negative errno.
 */
int vss_cbt_list(struct vss_handle *h, struct vss_cbt_info **out,
		 size_t *count);

/**
 * vss_cbt_info_array_free() - release what vss_cbt_list() returned
 * @infos: the array, or NULL
 */
void vss_cbt_info_array_free(struct vss_cbt_info *infos);

/**
 * typedef vss_cbt_extent_fn - receives the changed extents, in order
 * @offset: bytes from the start of the device, block-aligned
 * @length: bytes; block-aligned except for a last block that ends at the
 *          device's end
 * @arg: the caller's argument
 *
 * Return: 0 to go on; any other value stops vss_cbt_changes(), which then
 * returns it. Return a positive value to tell a stop from an error of the
 * library (those are negative).
 */
typedef int (*vss_cbt_extent_fn)(uint64_t offset, uint64_t length, void *arg);

/**
 * vss_cbt_changes() - the byte ranges written between two points
 * @h: handle
 * @device_path: path of the tracked block device
 * @from: the older point, typically a snapshot's cbt_point
 * @to: the newer point, or NULL for "now" (writes made while the answer
 *      streams in may or may not be included)
 * @fn: called once per extent, in ascending order
 * @arg: passed to @fn
 * @totals: if not NULL, receives the count and sum of what @fn was given,
 *          the block size and the generation (also when @fn stopped)
 *
 * The map is streamed, never held whole in memory. The module may cut a
 * run of blocks where a message ends: extents that touch are merged
 * before @fn sees them, so @fn gets each changed run once. Extents that
 * are out of order or overlap fail the call with -EPROTO.
 *
 * Return: 0; the non-zero value @fn returned to stop; -EINVAL if @from
 * is after @to, or a point was not reached yet; -LIBVSS_ECBT_STALE if
 * @from and @to are of different generations or the points are of another
 * generation than the device's, -LIBVSS_ECBT_TOO_OLD if the map no longer
 * reaches back to @from (for both: take a full backup); -ENOENT if the
 * device is not tracked; -EAGAIN if the module flagged the answer as
 * interrupted (what @fn got is incomplete: start over); -EPERM without
 * CAP_SYS_ADMIN; or another negative errno.
 */
int vss_cbt_changes(struct vss_handle *h, const char *device_path,
		    const struct vss_cbt_point *from,
		    const struct vss_cbt_point *to, vss_cbt_extent_fn fn,
		    void *arg, struct vss_cbt_totals *totals);

/**
 * vss_cbt_needs_full_backup() - whether an error means "copy everything"
 * @err: an error returned by vss_cbt_changes(), negative or positive
 *
 * Return: true for LIBVSS_ECBT_STALE and LIBVSS_ECBT_TOO_OLD.
 */
bool vss_cbt_needs_full_backup(int err);

/**
 * vss_cbt_mark_dirty() - report a byte range as changed
 * @h: handle
 * @device_path: path of the tracked block device
 * @offset: first byte
 * @length: bytes, at least 1
 *
 * Marks the range, rounded out to whole blocks, in the current interval,
 * so that the next incremental backup copies it again (after a restore
 * into the device, or when a copy failed).
 *
 * Return: 0; -EINVAL for a zero @length or a range that overflows;
 * -ERANGE past the end of the device; -ENOENT if not tracked; -EPERM
 * without CAP_SYS_ADMIN; or another negative errno.
 */
int vss_cbt_mark_dirty(struct vss_handle *h, const char *device_path,
		       uint64_t offset, uint64_t length);

/**
 * vss_cbt_point_format() - text form of a point
 * @point: the point
 * @out: receives "GENERATION:SEQ", the generation in canonical form
 *       ("3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8:12")
 */
void vss_cbt_point_format(const struct vss_cbt_point *point,
			  char out[VSS_CBT_POINT_STRLEN]);

/**
 * vss_cbt_point_parse() - read a point
 * @text: "GENERATION:SEQ": a full id (32 hex digits, any case, with or
 *        without the canonical dashes), a colon, and a decimal sequence
 *        number without sign or spaces that fits 64 bits
 * @out: receives the point
 *
 * Return: 0 or -EINVAL.
 */
int vss_cbt_point_parse(const char *text, struct vss_cbt_point *out);

/**
 * vss_cbt_verdict_name() - "continued" or "new-generation"
 * @verdict: enum vss_cbt_verdict
 *
 * Return: the name, or "unknown".
 */
const char *vss_cbt_verdict_name(uint32_t verdict);

/**
 * vss_cbt_save() - hand a device's map over to a state file
 * @h: handle
 * @device_path: path of the tracked block device; it must have no
 *               snapshots
 * @file_path: the state file to write (replaced if it exists)
 *
 * Ends tracking of the device in the module (VSS_CMD_CBT_SAVE) and writes
 * what it hands over, with the device's identity (kernel name, number,
 * and stable names: /dev/disk/by-id links, PARTUUID, device-mapper uuid,
 * hardware serial, whichever exist), to @file_path: first a temporary
 * file of mode 0600 in the same directory, synced, then renamed over
 * @file_path, then the directory synced. Everything that can be checked
 * is checked before the module is asked, so that a bad @file_path leaves
 * tracking as it was. If the file cannot be completed once the module has
 * handed the map over, nothing is left behind and the map is lost: the
 * next tracking of the device starts a new generation.
 *
 * Return: 0; -ENOENT if the device is not tracked; -EBUSY if it has
 * snapshots; the errno of a file operation (naming @file_path in
 * vss_last_error_object()); -EPERM without CAP_SYS_ADMIN; or another
 * negative errno.
 */
int vss_cbt_save(struct vss_handle *h, const char *device_path,
		 const char *file_path);

/**
 * vss_cbt_save_device() - vss_cbt_save() of a device named by number
 * @h: handle
 * @device: the device, as vss_cbt_list() gives it
 * @file_path: the state file to write
 * @saved: if not NULL, receives the state written
 *
 * For saving every tracked device without a path for each. Failures name
 * the device as "/dev/NAME", or "MAJOR:MINOR" without a name.
 *
 * Return: as vss_cbt_save().
 */
int vss_cbt_save_device(struct vss_handle *h, const struct vss_device *device,
			const char *file_path, struct vss_cbt_info *saved);

/**
 * vss_cbt_restore() - resume tracking from a state file
 * @h: handle
 * @file_path: a file written by vss_cbt_save()
 * @device_path: the device to restore to, or NULL to find it from the
 *               identity recorded in the file
 * @out: receives the outcome
 *
 * Reads and checks the whole file first (magic, format version, CRC,
 * sizes): a file that fails is refused with -EBADMSG, naming it in
 * vss_last_error_object(), and left in place. The device is found by its
 * stable names; its kernel name and number count only within the boot
 * the file was written in. Then the module starts tracking the device at
 * once under a new generation, so that no write is missed whatever
 * follows, checks whether the saved generation can go on (same size, and
 * provably no write since the save), takes the saved intervals and
 * commits. From the moment the module accepted the first step the file
 * is removed, whatever the verdict, so that a map is never applied twice.
 *
 * When the device's identity cannot be proven (another boot and no
 * stable name), tracking starts under a new generation without asking
 * the module to continue the saved one, and the file is removed too.
 * If the module refuses the map half way (-EINVAL), tracking goes on
 * under the new generation; after any other failure once the module took
 * the first step, the device is untracked rather than left to continue
 * with part of its map. vss_last_error_message() says which.
 *
 * @out->verdict is VSS_CBT_VERDICT_CONTINUED when the saved generation and
 * its points go on, VSS_CBT_VERDICT_NEW_GENERATION (with @out->reason)
 * when a full backup is needed.
 *
 * Return: 0; -EBADMSG for a corrupt file; the errno of opening it;
 * -ENODEV if the saved device is not present (the file stays, for a
 * later attempt); -EINVAL if @device_path is not the saved device;
 * -EALREADY if the device is tracked already, -EBUSY if it has snapshots
 * (the file stays); -EPERM without CAP_SYS_ADMIN; or another negative
 * errno.
 */
int vss_cbt_restore(struct vss_handle *h, const char *file_path,
		    const char *device_path,
		    struct vss_cbt_restore_result *out);

/**
 * vss_cbt_read_state_file() - what a state file holds, checked, unapplied
 * @h: handle (for the error details only; nothing is sent)
 * @file_path: a file written by vss_cbt_save()
 * @out: filled in on success
 *
 * Checks the file as vss_cbt_restore() does. Meant for housekeeping: a
 * file of another boot that was not restored early in this boot must be
 * removed, because its device is being written untracked from then on
 * and a later restore could not tell (vssctl does that for its state
 * directories).
 *
 * Return: 0; -EBADMSG for a corrupt file; the errno of opening it.
 */
int vss_cbt_read_state_file(struct vss_handle *h, const char *file_path,
			    struct vss_cbt_state_file *out);

/**
 * vss_id_format() - canonical text of an id
 * @id: the id
 * @out: receives "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" in lower case
 */
void vss_id_format(const struct vss_id *id, char out[VSS_ID_STRLEN]);

/**
 * vss_id_parse() - read a full id
 * @text: 32 hex digits, any case, with or without the canonical dashes
 * @out: receives the id
 *
 * Return: 0 or -EINVAL.
 */
int vss_id_parse(const char *text, struct vss_id *out);

/**
 * vss_id_prefix_match() - find the one id a prefix names
 * @prefix: 1..32 hex digits, any case, dashes only where the canonical
 *          form has them
 * @ids: candidates; equal ids count once (the snapshots of one set)
 * @count: number of candidates
 * @index: receives the index of the first candidate that matches, or NULL
 *
 * With no candidates it only checks @prefix: -EINVAL or -ENOENT.
 *
 * Return: 0; -EINVAL if @prefix is not an id prefix; -ENOENT if nothing
 * matches; -LIBVSS_EAMBIGUOUS if different ids match.
 */
int vss_id_prefix_match(const char *prefix, const struct vss_id *ids,
			size_t count, size_t *index);

/**
 * vss_id_unique_prefix_len() - shortest prefix length that tells ids apart
 * @ids: the ids; equal ids do not need telling apart
 * @count: their number
 * @min_digits: the least number of hex digits wanted (1..32)
 *
 * Return: a number of hex digits from @min_digits to 32.
 */
size_t vss_id_unique_prefix_len(const struct vss_id *ids, size_t count,
				size_t min_digits);

/**
 * vss_id_equal() - whether two ids are the same
 * @a: an id
 * @b: another id
 *
 * Return: true when equal.
 */
bool vss_id_equal(const struct vss_id *a, const struct vss_id *b);

/**
 * vss_parse_size() - read a size in bytes
 * @text: decimal digits and an optional binary unit: K, M, G, T, P or E,
 *        any case, optionally followed by "iB" ("64K", "64KiB", "1m")
 * @out: receives the number of bytes
 *
 * Rejected with -EINVAL: empty text, signs, spaces, fractions, decimal
 * units ("KB"), unknown units, and values that do not fit 64 bits.
 *
 * Return: 0 or -EINVAL.
 */
int vss_parse_size(const char *text, uint64_t *out);

/**
 * vss_format_size() - a size for people
 * @bytes: the size
 * @buf: receives "512B", "64KiB", "1.5GiB": an exact multiple of a unit
 *       without decimals, else with one, rounded down
 * @len: size of @buf; 16 bytes always suffice
 *
 * Return: @buf.
 */
char *vss_format_size(uint64_t bytes, char *buf, size_t len);

/*
 * Writers: backup sessions through vsswriterd (libvss 0.4.0,
 * version node LIBVSS_1.0)
 *
 * A snapshot set that applications take part in goes through vsswriterd,
 * the writer coordinator. A requester (a backup agent, vssctl) opens a
 * session, which is its connection to vsswriterd, and runs the sequence:
 *
 *   vss_session_open()
 *   vss_session_gather()            every writer identifies itself
 *   vss_session_add_volume() ...    the set's devices, and/or
 *   vss_session_add_writer_volumes()  every device of the writers' components
 *   vss_session_prepare()           waits its turn, then prepare-backup
 *   vss_session_create()            prepare-snapshot, freeze, commit, thaw,
 *                                   post-snapshot: the set
 *   ... copy the data ...
 *   vss_session_backup_complete()   (or vss_session_detach(): the set then
 *                                   waits for vss_session_complete_set()
 *                                   from any later session)
 *   vss_session_close()
 *
 * Closing (or dying) before the set was handed over aborts it: every
 * writer gets abort and no snapshot is left. Closing after it without
 * backup-complete or detach tells the writers that the backup failed and
 * deletes the set. After every call vss_session_results() gives each
 * writer's outcome (name, state, failure code, message), and a failed
 * call leaves its reason in vss_session_error_message().
 *
 * Only root and members of vsswriterd's requester-group may run a
 * session; anyone may list the writers.
 */

/**
 * LIBVSS_ENOWRITERD - vsswriterd is not running
 *
 * Returned (negated) by vss_session_open() when nothing listens on the
 * socket: a set can still be taken with vss_create_set(), without writers.
 */
#define LIBVSS_ENOWRITERD	EHOSTDOWN

/**
 * LIBVSS_EWRITER - a writer failed the sequence (or vetoed the set)
 *
 * vss_session_error_writer() names it; vss_session_results() has its
 * state and failure code (an inconsistent-snapshot among them when the
 * set lacks one of its devices).
 */
#define LIBVSS_EWRITER		ECANCELED

/* Backup types, as bits (the writers' components say which they support). */
#define VSS_BACKUP_FULL		(1U << 0)
#define VSS_BACKUP_INCREMENTAL	(1U << 1)
#define VSS_BACKUP_DIFFERENTIAL	(1U << 2)
#define VSS_BACKUP_LOG		(1U << 3)
#define VSS_BACKUP_COPY		(1U << 4)

/* How a writer takes part. */
enum vss_writer_kind {
	VSS_WRITER_PROCESS = 1,		/* a process on libvsswriter */
	VSS_WRITER_HOOK = 2,		/* an executable in writers.d */
	VSS_WRITER_QEMU_GA_HOOK = 3,	/* an unchanged fsfreeze-hook.d script */
};

/* Writer states and failure codes: see vss-writers(7). */
#define VSS_WRITER_STATE_STABLE		1
#define VSS_WRITER_FAILURE_NONE		0

#define VSS_WRITER_NAME_MAX	129
#define VSS_WRITER_MESSAGE_MAX	512

struct vss_session;

/* One component of a writer: data that must be in the set together. */
struct vss_writer_component {
	char *name;
	char **paths;
	size_t path_count;
	char **devices;
	size_t device_count;
	uint32_t backup_types;		/* VSS_BACKUP_* */
	struct vss_device *volumes;	/* where they live, as vsswriterd found */
	size_t volume_count;
};

/* A writer, as vss_session_gather() and vss_session_list_writers() say. */
struct vss_writer_info {
	char name[VSS_WRITER_NAME_MAX];
	char class_id[VSS_ID_STRLEN];
	char instance_id[VSS_ID_STRLEN];
	uint32_t kind;			/* enum vss_writer_kind */
	uint32_t writer_class;		/* 1 front-end, 2 back-end, 3 system */
	uint32_t state;			/* numbered as in Windows VSS */
	bool connected;			/* false: it went away and is kept to show why */
	int32_t pid;			/* processes; 0 for hooks */
	uint32_t uid;
	uint32_t freeze_window_ms;
	uint64_t registered_ns;		/* CLOCK_REALTIME */
	/* Its last failure, kept until it fails again (time 0: none). */
	uint32_t last_error_state;
	uint32_t last_error_step;
	uint32_t last_error_failure;
	char last_error_message[VSS_WRITER_MESSAGE_MAX];
	uint64_t last_error_ns;
	char last_error_set_id[VSS_ID_STRLEN];
	bool excluded;			/* gather: not taking part in this session */
	char excluded_why[VSS_WRITER_MESSAGE_MAX];
	struct vss_writer_component *components;
	size_t component_count;
};

/* A writer's outcome in a session. */
struct vss_writer_result {
	char name[VSS_WRITER_NAME_MAX];
	char class_id[VSS_ID_STRLEN];
	char instance_id[VSS_ID_STRLEN];
	uint32_t kind;
	uint32_t writer_class;
	uint32_t state;			/* where it stands in this session */
	uint32_t failure;		/* 0, or the failure code */
	uint32_t failed_step;		/* the step it failed at, or 0 */
	char message[VSS_WRITER_MESSAGE_MAX];
	bool excluded;			/* did not take part; excluded_why says why */
	char excluded_why[VSS_WRITER_MESSAGE_MAX];
	uint64_t frozen_us;		/* from its freeze to its thaw, when known */
};

/* What vsswriterd measured of vss_session_create(), in microseconds. */
struct vss_session_timing {
	uint64_t prepare_snapshot_us;	/* request to the first freeze */
	uint64_t freeze_us;		/* the first freeze to the commit */
	uint64_t commit_us;		/* the kernel's commit, its freeze included */
	uint64_t thaw_us;		/* the commit to the last thaw */
	uint64_t frozen_us;		/* the first freeze to the last thaw */
	uint64_t total_us;		/* request to reply */
	uint64_t request_to_commit_us;	/* request to the commit instant */
};

struct vss_session_params {
	const char *socket_path;	/* NULL: $VSS_WRITERD_SOCKET, else
					 * /run/vss/writerd.sock */
	uint32_t step_timeout_ms;	/* 0: vsswriterd's (60 s by default) */
	uint32_t queue_timeout_ms;	/* how long to wait for another
					 * requester's set; 0: 60 s */
	uint32_t backup_type;		/* one VSS_BACKUP_* bit; 0: full */
};

/* queue_timeout_ms for "do not wait at all" */
#define VSS_SESSION_NO_WAIT	UINT32_MAX

/**
 * vss_session_open() - connect to vsswriterd
 * @params: NULL for the defaults
 * @out: receives the session
 *
 * Return: 0; -LIBVSS_ENOWRITERD when vsswriterd is not running; another
 * negative errno of socket() or connect().
 */
int vss_session_open(const struct vss_session_params *params,
		     struct vss_session **out);

/**
 * vss_session_close() - end the session
 * @s: the session, or NULL
 *
 * Before the set was created this aborts it; after, without
 * backup-complete or detach, vsswriterd tells the writers the backup
 * failed and deletes the set.
 */
void vss_session_close(struct vss_session *s);

/**
 * vss_session_gather() - every writer identifies itself
 * @s: the session
 * @out: if not NULL, receives the writers (release with
 *       vss_writer_info_array_free()); those that failed identify or that
 *       the set leaves out are marked excluded
 * @count: receives their number
 *
 * Return: 0; -EACCES if this user may not be a requester; -EINVAL if
 * called twice after the sequence began; or another negative errno.
 */
int vss_session_gather(struct vss_session *s, struct vss_writer_info **out,
		       size_t *count);

/**
 * vss_session_add_volume() - put a device in the set
 * @s: the session, gathered
 * @device_path: a block device
 *
 * Return: 0; -ENOTBLK, -ENOENT for a bad path; -E2BIG past
 * VSS_MAX_SET_DEVICES.
 */
int vss_session_add_volume(struct vss_session *s, const char *device_path);

/**
 * vss_session_add_writer_volumes() - put the writers' devices in the set
 * @s: the session
 *
 * At vss_session_prepare() every device a component of a writer lives on
 * joins the set.
 *
 * Return: 0.
 */
int vss_session_add_writer_volumes(struct vss_session *s);

/**
 * vss_session_prepare() - wait for the creation slot, then prepare-backup
 * @s: the session, gathered, with volumes
 *
 * Another requester creating a set is waited for, up to the queue
 * timeout. A writer that needs a device the set lacks fails the call with
 * -LIBVSS_EWRITER (inconsistent-snapshot) before anything is frozen.
 *
 * Return: 0; -EBUSY when the queue timeout passed; -LIBVSS_EWRITER; or
 * another negative errno.
 */
int vss_session_prepare(struct vss_session *s);

/**
 * vss_session_create() - take the set, with the writers frozen around it
 * @s: the session, prepared
 * @params: storage, limit, chunk size, label, flags and hold limit as for
 *          vss_create_set(); its devices are ignored (the session's
 *          volumes are the set); the storage path must exist
 * @out: receives the set; release with vss_create_result_free()
 *
 * Return: 0; -LIBVSS_EWRITER when a writer failed or vetoed (nothing is
 * left of the set); the kernel's errno when it refused the set (see
 * vss_create_set()); or another negative errno.
 */
int vss_session_create(struct vss_session *s, const struct vss_create_params *params,
		       struct vss_create_result *out);

/**
 * vss_session_backup_complete() - the backup is over
 * @s: the session, created
 * @success: whether it worked; the writers are told
 *
 * The set stays (delete it with vss_delete_set()).
 *
 * Return: 0 or a negative errno; per-writer results as for every call.
 */
int vss_session_backup_complete(struct vss_session *s, bool success);

/**
 * vss_session_abort() - give the backup up
 * @s: the session
 *
 * Before the set: abort to every writer, nothing is left. After it: the
 * writers are told the backup failed (abort is not allowed after
 * post-snapshot), and the set is deleted.
 *
 * Return: 0 or a negative errno.
 */
int vss_session_abort(struct vss_session *s);

/**
 * vss_session_detach() - let the created set outlive the session
 * @s: the session, created
 *
 * The set then waits for vss_session_complete_set() or
 * vss_session_abort_set(), from any session, also after vsswriterd
 * restarted.
 *
 * Return: 0 or a negative errno.
 */
int vss_session_detach(struct vss_session *s);

/**
 * vss_session_complete_set() - backup-complete for a detached set
 * @s: a session (not running a sequence of its own)
 * @set_id: the set
 * @success: whether the backup worked
 *
 * Return: 0; -ENOENT when vsswriterd holds no such set waiting.
 */
int vss_session_complete_set(struct vss_session *s, const struct vss_id *set_id,
			     bool success);

/**
 * vss_session_abort_set() - give a detached set up: the writers are told
 * the backup failed, and the set is deleted
 * @s: a session
 * @set_id: the set
 * @deleted: if not NULL, whether the set could be deleted
 *
 * Return: as vss_session_complete_set().
 */
int vss_session_abort_set(struct vss_session *s, const struct vss_id *set_id,
			  bool *deleted);

/**
 * vss_session_list_writers() - every writer vsswriterd knows
 * @s: a session; no privilege needed
 * @out: receives them; release with vss_writer_info_array_free()
 * @count: their number
 *
 * Return: 0 or a negative errno.
 */
int vss_session_list_writers(struct vss_session *s, struct vss_writer_info **out,
			     size_t *count);

/**
 * vss_writer_info_array_free() - release writers
 * @writers: as returned, or NULL
 * @count: their number
 */
void vss_writer_info_array_free(struct vss_writer_info *writers, size_t count);

/**
 * vss_session_results() - each writer's outcome after the last call
 * @s: the session
 * @out: receives the array, owned by @s, valid until its next call
 * @count: its length
 *
 * Return: 0.
 */
int vss_session_results(const struct vss_session *s,
			const struct vss_writer_result **out, size_t *count);

/**
 * vss_session_error_message() - why the last call failed, in words
 * @s: the session
 *
 * Return: vsswriterd's message ("writer db failed at freeze: retryable:
 * checkpoint in progress"), or NULL.
 */
const char *vss_session_error_message(const struct vss_session *s);

/**
 * vss_session_error_writer() - the writer that failed the last call
 * @s: the session
 *
 * Return: its name, or NULL when no writer is to blame.
 */
const char *vss_session_error_writer(const struct vss_session *s);

/**
 * vss_session_timing() - what vss_session_create() took, as measured by
 * vsswriterd
 * @s: the session, after vss_session_create() succeeded
 * @out: filled in
 *
 * Return: 0, or -ENODATA before a set was created.
 */
int vss_session_timing(const struct vss_session *s, struct vss_session_timing *out);

/* One event of vsswriterd (vss_session_monitor_next()). */
struct vss_writer_event {
	char type[32];			/* "writer-state", "writer-failed",
					 * "writer-registered", "writer-disconnected",
					 * "sequence-started", "set-created",
					 * "set-aborted", "backup-complete" */
	uint64_t time_ns;		/* CLOCK_REALTIME */
	char writer[VSS_WRITER_NAME_MAX];	/* "" when none */
	uint32_t state;			/* writer-state: the new one */
	uint32_t previous;		/* writer-state: the old one */
	char step[32];			/* writer-failed */
	char failure[32];		/* writer-failed */
	char message[VSS_WRITER_MESSAGE_MAX];	/* the failure or the reason */
	char set_id[VSS_ID_STRLEN];	/* "" when none */
	uint64_t session;
	bool success;			/* backup-complete */
};

/**
 * vss_session_monitor_start() - turn a session into an event stream
 * @s: a fresh session; it can do nothing else afterwards
 *
 * Return: 0 or a negative errno.
 */
int vss_session_monitor_start(struct vss_session *s);

/* The descriptor to poll for events; -EBADF when not monitoring. */
int vss_session_fd(const struct vss_session *s);

/**
 * vss_session_monitor_next() - the next event of vsswriterd
 * @s: a monitoring session
 * @out: receives the event
 * @timeout_ms: -1 forever, 0 not at all
 *
 * Return: 0; -ETIMEDOUT; -EINTR; -ECONNRESET when vsswriterd went away.
 */
int vss_session_monitor_next(struct vss_session *s, struct vss_writer_event *out,
			     int timeout_ms);

/* "stable", "waiting-for-thaw", "failed-at-freeze", ...; "unknown". */
const char *vss_writer_state_name(uint32_t state);
/* "none", "retryable", "inconsistent-snapshot", ... */
const char *vss_writer_failure_name(uint32_t failure);
/* "identify" ... "abort"; "none" for 0 */
const char *vss_writer_step_name(uint32_t step);
/* "front-end", "back-end", "system" */
const char *vss_writer_class_name(uint32_t writer_class);
/* "process", "hook", "qemu-ga-hook" */
const char *vss_writer_kind_name(uint32_t kind);

#ifdef __cplusplus
}
#endif

#endif /* LIBVSS_H */
