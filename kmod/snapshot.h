/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Snapshots and snapshot sets.
 *
 * Copy-on-write chain: each snapshot S of an origin has an exception table
 * E(S) holding the chunks first overwritten while S was the newest healthy
 * snapshot, as they were before that write. A chunk is copied once, into
 * the newest healthy snapshot's table; reading chunk c of S looks in E(S),
 * then in the tables of the newer snapshots in order, and falls back to
 * the origin. So a write costs one copy however many snapshots exist.
 */
#ifndef VSS_SNAPSHOT_H
#define VSS_SNAPSHOT_H

#include <linux/kref.h>
#include <linux/uuid.h>
#include <linux/xarray.h>
#include <uapi/linux/vss.h>

struct vss_origin;
struct vss_store;
struct vss_image;
struct vss_store_mask;

struct vss_set {
	struct list_head node;		/* vss_sets, under vss_ctl_lock */
	uuid_t id;			/* fixed */
	char label[VSS_LABEL_MAX];	/* fixed */
	struct vss_store *store;	/* fixed; the set holds a reference */
	u64 hold_us;			/* fixed after commit */
	struct list_head snapshots;	/* under vss_ctl_lock */
};

struct vss_snapshot {
	/*
	 * References: the registry (vss_snapshots) holds one until delete,
	 * the image disk holds one until its last opener is gone.
	 */
	struct kref kref;
	struct list_head node;		/* vss_snapshots, under vss_ctl_lock */
	struct list_head set_node;	/* vss_set.snapshots, vss_ctl_lock */
	uuid_t id;			/* fixed */
	/*
	 * Fixed; valid while in the registry. A set is freed only after its
	 * last snapshot left its origin's chain (write gate drained, RCU and
	 * vss_image_srcu passed), so whoever found the snapshot in a chain,
	 * a copy worker or the removal hook, may use it too.
	 */
	struct vss_set *set;
	struct vss_origin *origin;	/* fixed; the origin outlives it */
	u32 index;			/* fixed: number on its origin */
	u64 created_ns;			/* fixed after commit */
	/* Fixed after commit: the tracking point taken with it. */
	uuid_t cbt_generation;
	u64 cbt_seq;

	/*
	 * Chunk -> exception (xa_mk_value of vss_exc_pack()). Inserted by
	 * copy-on-write with the chunk pending, and only once its slot holds
	 * the old data, so an admitted write that finds it (xa_load, no lock)
	 * may go on; moved or erased only by delete, with the origin's write
	 * gate closed and image I/O synced.
	 */
	struct xarray exceptions;

	/*
	 * Fixed at creation: where stores lay on the origin at the instant
	 * (sorted sectors of the origin), or NULL. Its image reads them as
	 * zeros, unless its own writes (the overlay) changed them since.
	 */
	struct vss_store_mask *store_mask;

	/* Chunks this snapshot's image has written: private to it. */
	struct xarray overlay;
	struct mutex overlay_lock;	/* serialises filling overlay chunks */

	/*
	 * Being deleted: copy-on-write passes over it as over a failed
	 * snapshot while its table moves to the next older one. Set once,
	 * under vss_ctl_lock with the write gate closed and drained (the
	 * gate opening publishes it); read by copy-on-write.
	 */
	bool deleting;

	/* VSS_STATE_*; the first failure wins and is never undone. */
	int state;
	int fail_errno;
	const char *fail_reason;	/* static string */

	/*
	 * The image device. @image belongs to the control path: set once the
	 * disk is added and cleared by delete, both under vss_ctl_lock. The
	 * object goes with the disk's last opener, which may be while a copy
	 * worker or the removal hook fails this snapshot and builds an
	 * event, so nothing outside vss_ctl_lock follows @image. What lists
	 * and events show of the image lives here, as long as the snapshot:
	 * @image_devt (0 until the disk is added, then fixed; WRITE_ONCE),
	 * @image_openers (changed by the disk's open and release) and
	 * @image_dead (WRITE_ONCE when the disk is removed: its I/O fails,
	 * and it is shown no more).
	 */
	struct vss_image *image;
	dev_t image_devt;
	atomic_t image_openers;
	bool image_dead;
};

struct vss_create_params {
	dev_t devs[VSS_MAX_SET_DEVICES];
	unsigned int nr_devs;
	const char *storage_path;
	u64 storage_limit;
	unsigned int chunk_shift;
	char label[VSS_LABEL_MAX];
	u32 flags;
	u32 hold_limit_ms;
};

struct vss_create_result {
	struct vss_set *set;
	int bad_dev;			/* index into devs of the culprit, or -1 */
	bool bad_storage;		/* the storage is the culprit */
};

int vss_set_create(const struct vss_create_params *params,
		   struct vss_create_result *result,
		   struct netlink_ext_ack *extack);

struct vss_snapshot *vss_snapshot_find(const uuid_t *id);
struct vss_set *vss_set_find(const uuid_t *id);
int vss_snapshot_delete(struct vss_snapshot *snap, bool force,
			struct netlink_ext_ack *extack);
int vss_set_delete(struct vss_set *set, bool force,
		   struct netlink_ext_ack *extack);
void vss_snapshot_put(struct vss_snapshot *snap);
void vss_snapshot_fail(struct vss_snapshot *snap, int err,
		       const char *reason);
bool vss_snapshot_failed(const struct vss_snapshot *snap);
bool vss_snapshot_takes_copies(const struct vss_snapshot *snap);

void vss_snapshots_delete_all(void);

/* Iteration for listing; the caller holds vss_ctl_lock. */
extern struct list_head vss_snapshots;

#endif /* VSS_SNAPSHOT_H */
