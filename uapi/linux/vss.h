/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vss: Volume Shadow Copy Service for Linux - control protocol.
 *
 * The kernel module vss.ko is driven over the generic netlink family
 * "vss" (VSS_GENL_NAME), protocol VSS_PROTOCOL_VERSION. Every mutating
 * command, and joining the events group, needs CAP_SYS_ADMIN in the
 * initial user namespace and fails with EPERM otherwise. Attribute
 * policies are strict: an unknown attribute, a wrong type or a wrong
 * length fails the whole request with EINVAL (or ERANGE for an
 * out-of-range value) and changes nothing. Errors carry an extended ack:
 * a message and, where one attribute is to blame, its offset
 * (NLMSGERR_ATTR_OFFS), so a client can name the device it concerns.
 *
 * Objects
 *   origin    a block device whose writes vss intercepts
 *   set       snapshots of several origins taken at one instant
 *   snapshot  one origin's point-in-time image, exposed as a block device
 *             "vssN"; identified by a UUID (16 raw bytes on the wire)
 *   storage   the diff area that receives chunks copied before they are
 *             overwritten: a block device, a file, or an unnamed file made
 *             in a directory
 *
 * A device is always named by number: VSS_A_DEVICE is a nest holding
 * VSS_A_DEV_MAJOR and VSS_A_DEV_MINOR (u32 each); in replies the nest also
 * holds VSS_A_DEV_NAME, the kernel's name ("vdb1", "dm-0").
 *
 * Commands
 *
 * Compatibility: VSS_PROTOCOL_VERSION changes only when a command or
 * attribute changes meaning; additions (new commands, attributes, flags,
 * events) keep it. A client must refuse a module whose protocol differs
 * from the one it was built for, except to report versions.
 *
 * VSS_CMD_GET_VERSION (do; no privilege)
 *   request:  nothing
 *   reply:    VSS_A_VERSION     string, module version ("0.3.0")
 *             VSS_A_PROTOCOL    u32, VSS_PROTOCOL_VERSION of the module
 *
 * VSS_CMD_CREATE_SET (do; CAP_SYS_ADMIN)
 *   Takes one snapshot of each listed device, all at the same instant: new
 *   writes to every device are held, writes in flight are drained,
 *   copy-on-write is switched on for all of them, and the held writes are
 *   released. Unless VSS_CREATE_NO_FREEZE is given, a filesystem mounted
 *   on a device is frozen just around that commit and thawed right after.
 *   All or nothing: on any error no snapshot exists afterwards and the
 *   origins are as before.
 *   request:  VSS_A_DEVICES       nest of 1..VSS_MAX_SET_DEVICES
 *                                  VSS_A_DEVICE (required)
 *             VSS_A_STORAGE_PATH  string, absolute path of the diff
 *                                  storage: block device, regular file, or
 *                                  directory (required)
 *             VSS_A_STORAGE_LIMIT u64, bytes the storage may use; a file
 *                                  store grows in steps up to it (default:
 *                                  a block device's size; required for a
 *                                  directory; a file's size if absent)
 *             VSS_A_CHUNK_SIZE    u32, bytes copied per first write; a
 *                                  power of two from 4 KiB to 1 MiB
 *                                  (default VSS_DEFAULT_CHUNK_SIZE)
 *             VSS_A_LABEL         string, up to VSS_LABEL_MAX - 1 bytes
 *             VSS_A_FLAGS         u32, VSS_CREATE_* flags
 *             VSS_A_HOLD_LIMIT_MS u32, limit on freeze + hold, 1..60000
 *                                  (default VSS_DEFAULT_HOLD_LIMIT_MS);
 *                                  exceeding it aborts with ETIMEDOUT
 *   reply:    VSS_A_SET_ID        16 bytes
 *             VSS_A_HOLD_US       u64, microseconds writes were held
 *             VSS_A_SNAPSHOTS     nest of VSS_A_SNAPSHOT, as in
 *                                  VSS_CMD_GET_SNAPSHOT
 *   The extack offset points at the VSS_A_DEVICE or VSS_A_STORAGE_PATH
 *   an error concerns.
 *   errors:   ENXIO or ENODEV (a device number names no block device),
 *             EXDEV (storage lies on a device of the set or on a
 *             snapshotted or tracked device, or a device of the set holds
 *             the storage of a set: a block store, or the filesystem of a
 *             file store), EOPNOTSUPP (zoned,
 *             inline-encryption or integrity device), ENOSPC (storage too
 *             small), ETIMEDOUT (hold limit), E2BIG (too many snapshots of
 *             one origin), EINVAL
 *
 * VSS_CMD_GET_SNAPSHOT (do and dump; no privilege)
 *   do request:   VSS_A_SNAP_ID
 *   dump request: optional VSS_A_DEVICE to list one origin's snapshots
 *                 (none: an empty dump)
 *   reply (one message per snapshot), VSS_A_SNAPSHOT nest holding:
 *             VSS_A_SNAP_ID, VSS_A_SET_ID
 *             VSS_A_ORIGIN        device nest of the origin
 *             VSS_A_IMAGE         device nest of the image ("vss3")
 *             VSS_A_INDEX         u32, the snapshot's number on its
 *                                  origin, counted from 1, never reused
 *             VSS_A_CREATED_NS    u64, CLOCK_REALTIME of the commit
 *             VSS_A_STATE         u32, enum vss_snapshot_state
 *             VSS_A_ERRNO         u32, positive errno (failed only)
 *             VSS_A_REASON        string, why it failed (failed only)
 *             VSS_A_CHUNK_SIZE    u32
 *             VSS_A_LABEL         string (if set)
 *             VSS_A_STORAGE_PATH  string, storage as given at creation
 *             VSS_A_STORAGE_KIND  u32, enum vss_storage_kind
 *             VSS_A_STORAGE_USED  u64, bytes of storage holding chunks
 *                                  (shared by the whole set)
 *             VSS_A_STORAGE_SIZE  u64, bytes allocated now
 *             VSS_A_STORAGE_LIMIT u64
 *             VSS_A_HOLD_US       u64
 *             VSS_A_OPEN_COUNT    u32, openers of the image now
 *             VSS_A_CBT_GENERATION 16 bytes, and VSS_A_CBT_SEQ u64: the
 *                                  changed-block tracking point at which
 *                                  the snapshot was taken (see below)
 *
 * VSS_CMD_DELETE_SNAPSHOT (do; CAP_SYS_ADMIN)
 *   request:  exactly one of VSS_A_SNAP_ID (one snapshot) or VSS_A_SET_ID
 *             (every snapshot of a set); VSS_A_FLAGS with VSS_DELETE_FORCE
 *             to delete an image that is open (its openers then get EIO)
 *   Deleting any snapshot leaves what the others read unchanged.
 *   errors:   ENOENT, EBUSY (image open and no VSS_DELETE_FORCE)
 *
 * Changed-block tracking (CBT)
 *
 *   A tracked device has a map of the blocks written to it, kept in
 *   memory by the module. Tracking starts with the device's first
 *   snapshot or with VSS_CMD_TRACK, and lasts until VSS_CMD_UNTRACK,
 *   VSS_CMD_CBT_SAVE or the device's removal; snapshots do not end it.
 *
 *   generation  a UUID naming one unbroken stretch of tracking. Whenever
 *               vss cannot prove that it saw every write (tracking
 *               restarted without a provable saved map, the device was
 *               resized, map memory could not be allocated), the device
 *               gets a new generation and VSS_EVENT_CBT_NEW_GENERATION is
 *               sent. Points of another generation are never answered.
 *   point       a sequence number within a generation. Point 0 is the
 *               start of the generation; each snapshot commit on the
 *               device makes the next point, recorded in the snapshot
 *               (VSS_A_CBT_GENERATION, VSS_A_CBT_SEQ). Writes between
 *               point n and point n + 1 belong to interval n.
 *   block size  a power of two of at least 4 KiB, chosen when the
 *               generation starts so that the device has at most
 *               VSS_CBT_MAX_BLOCKS blocks: one interval's map never
 *               exceeds 2 MiB. Intervals are dropped oldest first when the
 *               maps of a device would exceed VSS_CBT_HISTORY_BYTES, or
 *               when more than VSS_CBT_MAX_INTERVALS are kept;
 *               VSS_A_CBT_OLDEST_SEQ is then the oldest point still
 *               answered.
 *
 *   The changes from point a to point b (a <= b) are the blocks written in
 *   intervals a .. b - 1; from point a to "now", intervals a .. current.
 *   Writes to a snapshot's image, and VSS_CMD_CBT_MARK_DIRTY, also mark
 *   blocks, so that the next incremental backup copies them again: image
 *   writes mark the intervals just before and just after the snapshot's
 *   point, VSS_CMD_CBT_MARK_DIRTY the current interval.
 *
 *   Extents (VSS_A_CBT_EXTENTS) are arrays of struct vss_cbt_extent, in
 *   bytes from the start of the device, block-aligned except that the last
 *   one ends at the device's end; sorted, never overlapping. A dump may cut
 *   a run of blocks at a message boundary: a client merges extents that
 *   touch.
 *
 * VSS_A_CBT nest (a device's tracking state):
 *             VSS_A_DEVICE          the device
 *             VSS_A_CBT_GENERATION  16 bytes
 *             VSS_A_CBT_SEQ         u64, the current interval (= newest point)
 *             VSS_A_CBT_OLDEST_SEQ  u64, the oldest point still answered
 *             VSS_A_CBT_BLOCK_SIZE  u32, bytes
 *             VSS_A_CBT_SIZE        u64, bytes tracked (the device's size)
 *             VSS_A_CBT_MAP_BYTES   u64, memory the maps use now
 *             VSS_A_CBT_STARTED_NS  u64, CLOCK_REALTIME when the
 *                                   generation started
 *
 * VSS_CMD_TRACK (do; CAP_SYS_ADMIN)
 *   Starts tracking a device: a new generation, at point 0.
 *   request:  VSS_A_DEVICE
 *   reply:    VSS_A_CBT
 *   errors:   ENXIO or ENODEV, EALREADY (already tracked), EOPNOTSUPP (as
 *             for VSS_CMD_CREATE_SET)
 *
 * VSS_CMD_UNTRACK (do; CAP_SYS_ADMIN)
 *   Stops tracking and forgets the map. Snapshots of the device stay.
 *   request:  VSS_A_DEVICE
 *   errors:   ENOENT (not tracked)
 *
 * VSS_CMD_GET_CBT (do and dump; no privilege)
 *   do request:   VSS_A_DEVICE
 *   dump request: nothing: every tracked device
 *   reply (one message per device): VSS_A_CBT
 *   errors:   ENOENT (not tracked)
 *
 * VSS_CMD_CBT_CHANGES (dump; CAP_SYS_ADMIN)
 *   The blocks written between two points, or from a point until now.
 *   request:  VSS_A_DEVICE
 *             VSS_A_CBT_GENERATION  16 bytes, of both points
 *             VSS_A_CBT_FROM        u64, the older point
 *             VSS_A_CBT_TO          u64, the newer point (absent: now;
 *                                   writes made during the dump may or
 *                                   may not be included)
 *   reply (one or more messages):
 *             VSS_A_CBT_GENERATION, VSS_A_CBT_BLOCK_SIZE,
 *             VSS_A_CBT_EXTENTS
 *   errors:   ENOENT (not tracked), ESTALE (the generation is not the
 *             device's: take a full backup), ENODATA (the map no longer
 *             reaches back to VSS_A_CBT_FROM: take a full backup), EINVAL
 *             (FROM after TO, or a point not reached yet)
 *
 * VSS_CMD_CBT_MARK_DIRTY (do; CAP_SYS_ADMIN)
 *   Marks a byte range as changed in the current interval, rounded out to
 *   whole blocks.
 *   request:  VSS_A_DEVICE, VSS_A_CBT_OFFSET u64, VSS_A_CBT_LENGTH u64
 *   errors:   ENOENT (not tracked), EINVAL (zero length), ERANGE (past
 *             the end of the device)
 *
 * VSS_CMD_CBT_SAVE (dump; CAP_SYS_ADMIN)
 *   Stops tracking the device and hands its map over, so that it can be
 *   restored after a module reload or a reboot. The device must have no
 *   snapshots. The first message holds VSS_A_CBT_STATE; each following
 *   one holds VSS_A_CBT_SEQ (an interval) and VSS_A_CBT_EXTENTS.
 *   request:  VSS_A_DEVICE
 *   VSS_A_CBT_STATE nest:
 *             VSS_A_DEVICE, VSS_A_CBT_GENERATION, VSS_A_CBT_SEQ,
 *             VSS_A_CBT_OLDEST_SEQ, VSS_A_CBT_BLOCK_SIZE, VSS_A_CBT_SIZE,
 *             VSS_A_CBT_STARTED_NS,
 *             VSS_A_CBT_BOOT_ID     16 bytes, the kernel's boot id
 *             VSS_A_CBT_DISKSEQ     u64, the disk's sequence number
 *             VSS_A_CBT_WRITE_IOS   u64, writes and discards the block
 *                                   layer completed on the device
 *             VSS_A_CBT_DIRECT_WRITE_IOS u64, of a partition: those of
 *                                   its whole disk not made through any
 *                                   partition
 *             VSS_A_CBT_SAVE_FLAGS  u32, VSS_CBT_SAVED_*
 *   errors:   ENOENT (not tracked), EBUSY (the device has snapshots)
 *
 * VSS_CMD_CBT_RESTORE (do; CAP_SYS_ADMIN)
 *   Resumes tracking from a saved map, in three steps told apart by
 *   VSS_A_FLAGS:
 *   VSS_CBT_RESTORE_BEGIN: VSS_A_DEVICE and VSS_A_CBT_STATE as saved.
 *             The device must not be tracked and must have no snapshots.
 *             Tracking starts at once under a new generation, so that no
 *             write is missed whatever follows; then vss checks that the
 *             saved generation can be continued: same size and block
 *             size, I/O statistics on, no write in flight, and either (same
 *             boot) the same disk sequence number and write counters as at
 *             the save, or (another boot) a device that had no other
 *             opener at the save and has completed no write since boot.
 *             reply: VSS_A_CBT, VSS_A_CBT_VERDICT, and VSS_A_REASON when
 *             the verdict is VSS_CBT_VERDICT_NEW_GENERATION
 *   no flag:  VSS_A_DEVICE, VSS_A_CBT_SEQ, VSS_A_CBT_EXTENTS: blocks of
 *             one saved interval; repeat as needed
 *   VSS_CBT_RESTORE_COMMIT: VSS_A_DEVICE. With a verdict of
 *             VSS_CBT_VERDICT_CONTINUED the saved generation, its points
 *             and its maps replace the new generation, and the writes
 *             seen since the first step are added to its current
 *             interval. reply: VSS_A_CBT, VSS_A_CBT_VERDICT
 *   errors:   EALREADY (already tracked), EBUSY (the device has
 *             snapshots), ENOENT (no restore in progress), EINVAL (a
 *             state that is incomplete or inconsistent, such as more than
 *             VSS_CBT_MAX_INTERVALS intervals or a newest point above
 *             2^63 - 1, which no generation reaches: nothing starts; or
 *             extents that do not fit the device: the new generation
 *             stays)
 *
 * VSS_CMD_EVENT (multicast only, group VSS_MCGRP_EVENTS; CAP_SYS_ADMIN)
 *   Joining the group (NETLINK_ADD_MEMBERSHIP, or bind() with the group
 *   in nl_groups) needs CAP_SYS_ADMIN in the initial user namespace and
 *   fails with EPERM otherwise: events are sent from the write path, where
 *   each listener costs the kernel an atomic allocation. What they report
 *   stays readable by everyone through VSS_CMD_GET_SNAPSHOT and
 *   VSS_CMD_GET_CBT. A listener that reads too slowly gets ENOBUFS from
 *   recv() (events were lost: list again to resynchronise).
 *             VSS_A_EVENT         u32, enum vss_event
 *             VSS_A_SNAP_ID, VSS_A_SET_ID, VSS_A_ORIGIN where they apply
 *             VSS_A_ERRNO, VSS_A_REASON for failures
 *             VSS_A_STORAGE_USED, VSS_A_STORAGE_LIMIT for storage events
 *             VSS_A_CBT for tracking events, with VSS_A_REASON
 */
#ifndef _UAPI_LINUX_VSS_H
#define _UAPI_LINUX_VSS_H

#include <linux/types.h>

#define VSS_GENL_NAME		"vss"
#define VSS_GENL_VERSION	1
#define VSS_PROTOCOL_VERSION	1
#define VSS_MCGRP_EVENTS	"events"

#define VSS_ID_LEN			16
#define VSS_LABEL_MAX			64
#define VSS_PATH_MAX			4096
#define VSS_MAX_SET_DEVICES		64
#define VSS_MAX_SNAPSHOTS_PER_ORIGIN	256
#define VSS_MIN_CHUNK_SIZE		4096
#define VSS_MAX_CHUNK_SIZE		(1024 * 1024)
#define VSS_DEFAULT_CHUNK_SIZE		(64 * 1024)
#define VSS_DEFAULT_HOLD_LIMIT_MS	10000
#define VSS_MAX_HOLD_LIMIT_MS		60000
#define VSS_CBT_MIN_BLOCK_SIZE		4096
#define VSS_CBT_MAX_BLOCKS		(16 * 1024 * 1024)
#define VSS_CBT_HISTORY_BYTES		(16 * 1024 * 1024)
#define VSS_CBT_MAX_INTERVALS		1024

enum vss_cmd {
	VSS_CMD_UNSPEC,
	VSS_CMD_GET_VERSION,
	VSS_CMD_CREATE_SET,
	VSS_CMD_GET_SNAPSHOT,
	VSS_CMD_DELETE_SNAPSHOT,
	VSS_CMD_EVENT,
	VSS_CMD_TRACK,
	VSS_CMD_UNTRACK,
	VSS_CMD_GET_CBT,
	VSS_CMD_CBT_CHANGES,
	VSS_CMD_CBT_MARK_DIRTY,
	VSS_CMD_CBT_SAVE,
	VSS_CMD_CBT_RESTORE,

	__VSS_CMD_MAX,
	VSS_CMD_MAX = __VSS_CMD_MAX - 1
};

enum vss_attr {
	VSS_A_UNSPEC,
	VSS_A_PAD,
	VSS_A_VERSION,
	VSS_A_PROTOCOL,
	VSS_A_DEVICES,
	VSS_A_DEVICE,
	VSS_A_DEV_MAJOR,
	VSS_A_DEV_MINOR,
	VSS_A_DEV_NAME,
	VSS_A_STORAGE_PATH,
	VSS_A_STORAGE_LIMIT,
	VSS_A_CHUNK_SIZE,
	VSS_A_LABEL,
	VSS_A_FLAGS,
	VSS_A_HOLD_LIMIT_MS,
	VSS_A_SET_ID,
	VSS_A_SNAP_ID,
	VSS_A_SNAPSHOTS,
	VSS_A_SNAPSHOT,
	VSS_A_HOLD_US,
	VSS_A_ORIGIN,
	VSS_A_IMAGE,
	VSS_A_INDEX,
	VSS_A_CREATED_NS,
	VSS_A_STATE,
	VSS_A_ERRNO,
	VSS_A_REASON,
	VSS_A_STORAGE_KIND,
	VSS_A_STORAGE_USED,
	VSS_A_STORAGE_SIZE,
	VSS_A_OPEN_COUNT,
	VSS_A_EVENT,
	VSS_A_CBT,
	VSS_A_CBT_GENERATION,
	VSS_A_CBT_SEQ,
	VSS_A_CBT_OLDEST_SEQ,
	VSS_A_CBT_BLOCK_SIZE,
	VSS_A_CBT_SIZE,
	VSS_A_CBT_MAP_BYTES,
	VSS_A_CBT_STARTED_NS,
	VSS_A_CBT_FROM,
	VSS_A_CBT_TO,
	VSS_A_CBT_EXTENTS,
	VSS_A_CBT_OFFSET,
	VSS_A_CBT_LENGTH,
	VSS_A_CBT_STATE,
	VSS_A_CBT_BOOT_ID,
	VSS_A_CBT_DISKSEQ,
	VSS_A_CBT_WRITE_IOS,
	VSS_A_CBT_DIRECT_WRITE_IOS,
	VSS_A_CBT_SAVE_FLAGS,
	VSS_A_CBT_VERDICT,

	__VSS_A_MAX,
	VSS_A_MAX = __VSS_A_MAX - 1
};

/* VSS_A_FLAGS (u32) of VSS_CMD_CREATE_SET */
enum vss_create_flags {
	VSS_CREATE_NO_FREEZE = 1U << 0,	/* crash-consistent: no FIFREEZE */
};

#define VSS_CREATE_FLAGS_ALL	VSS_CREATE_NO_FREEZE

/* VSS_A_FLAGS (u32) of VSS_CMD_DELETE_SNAPSHOT */
enum vss_delete_flags {
	VSS_DELETE_FORCE = 1U << 0,	/* delete even if the image is open */
};

#define VSS_DELETE_FLAGS_ALL	VSS_DELETE_FORCE

enum vss_snapshot_state {
	/* the image reads the origin as it was at the commit */
	VSS_STATE_ACTIVE = 1,
	/* data lost (storage full or failing, origin gone): image I/O fails */
	VSS_STATE_FAILED = 2,
};

enum vss_storage_kind {
	VSS_STORAGE_BLOCK = 1,	/* a whole block device */
	VSS_STORAGE_FILE = 2,	/* a regular file */
	VSS_STORAGE_TMPFILE = 3,	/* an unnamed file made in a directory */
	/* files in DIR/.vss-store/ on a snapshotted device (ext4, XFS) */
	VSS_STORAGE_SAMEVOL = 4,
};

enum vss_event {
	VSS_EVENT_SNAPSHOT_CREATED = 1,
	VSS_EVENT_SNAPSHOT_DELETED = 2,
	VSS_EVENT_SNAPSHOT_FAILED = 3,	/* VSS_A_ERRNO, VSS_A_REASON */
	/*
	 * Less than 1/8 of the limit left; or a store that grows ahead of
	 * need (same-volume) could not grow, its filesystem being full: the
	 * room it has is all its snapshots get.
	 */
	VSS_EVENT_STORAGE_LOW = 4,
	VSS_EVENT_STORAGE_OVERFLOW = 5,	/* a chunk could not be saved */
	VSS_EVENT_ORIGIN_REMOVED = 6,
	/* VSS_A_CBT (the new generation), VSS_A_REASON */
	VSS_EVENT_CBT_NEW_GENERATION = 7,
	/* tracking ended (untrack, save, removal): VSS_A_CBT, VSS_A_REASON */
	VSS_EVENT_CBT_STOPPED = 8,
	/* old intervals were dropped: VSS_A_CBT (new oldest point) */
	VSS_EVENT_CBT_HISTORY_DROPPED = 9,
};

/* One run of changed bytes; VSS_A_CBT_EXTENTS is an array of them. */
struct vss_cbt_extent {
	__u64 offset;	/* bytes from the start of the device */
	__u64 length;	/* bytes */
};

/* VSS_A_CBT_SAVE_FLAGS (u32) */
enum vss_cbt_save_flags {
	/*
	 * nobody but vss had the device open when it was saved (for a
	 * partition: nor its whole disk, other than through partitions)
	 */
	VSS_CBT_SAVED_QUIESCENT = 1U << 0,
	/* the device's I/O statistics were on, so its counters are valid */
	VSS_CBT_SAVED_IOSTAT = 1U << 1,
};

/* VSS_A_FLAGS (u32) of VSS_CMD_CBT_RESTORE */
enum vss_cbt_restore_flags {
	VSS_CBT_RESTORE_BEGIN = 1U << 0,
	VSS_CBT_RESTORE_COMMIT = 1U << 1,
};

/* VSS_A_CBT_VERDICT (u32) of VSS_CMD_CBT_RESTORE */
enum vss_cbt_verdict {
	/* the saved generation goes on (after COMMIT), or will (after BEGIN) */
	VSS_CBT_VERDICT_CONTINUED = 1,
	/* a write may have been missed: a new generation, see VSS_A_REASON */
	VSS_CBT_VERDICT_NEW_GENERATION = 2,
};

#endif /* _UAPI_LINUX_VSS_H */
