/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An origin is a block device (whole disk, partition, dm, md, loop...)
 * whose writes vss intercepts, together with the chain of its snapshots.
 */
#ifndef VSS_ORIGIN_H
#define VSS_ORIGIN_H

#include <linux/blkdev.h>
#include <linux/hashtable.h>
#include <linux/list.h>
#include <linux/srcu.h>
#include <linux/wait.h>
#include "compat.h"

struct vss_snapshot;
struct vss_cbt;
struct vss_cbt_restore;

/*
 * The snapshots of an origin, oldest first. Replaced as a whole (copy,
 * update, publish) under vss_ctl_lock while the origin's write gate is
 * closed and drained, so copy-on-write never sees it change. Readers: the
 * write path under RCU, image I/O under vss_image_srcu.
 */
struct vss_chain {
	struct rcu_head rcu;
	unsigned int nr;
	struct vss_snapshot *snap[];
};

/* A chunk with a copy in flight; in vss_origin.pending. */
struct vss_pending {
	struct hlist_node node;
	u64 chunk;
	unsigned int users;	/* the copier and the writes waiting for it */
	bool copying;		/* a copy-on-write of this chunk is running */
};

struct vss_origin {
	/* In vss_origins: RCU for the write path, changes under vss_ctl_lock. */
	struct list_head node;

	dev_t dev;			/* fixed */
	struct gendisk *disk;		/* fixed: the disk the origin is on */
	sector_t start;			/* fixed: first sector on @disk */
	/*
	 * The sectors vss intercepts. Set when tracking begins; changed
	 * after a resize only while the origin has no snapshots, with the
	 * write gate closed and drained (see vss_intercept_write()).
	 */
	sector_t nr_sectors;
	/* The device's size when last looked at, to notice a resize. */
	sector_t seen_sectors;
	/* log2(chunk bytes); set by the first snapshot, ctl lock */
	unsigned int chunk_shift;
	char name[BDEVNAME_SIZE];	/* fixed: "vdb1" */
	struct vss_bdev_handle handle;	/* keeps the device open */

	/*
	 * Write gate. Every admitted write counts in @inflight until it
	 * completes: one count per CPU, raised on the CPU that admits and
	 * lowered on the one that completes, so only their sum means
	 * anything. While @gate_closed, new writes wait in @held instead; a
	 * commit closes the gate, waits on @drain_wait for the sum to reach
	 * zero, switches copy-on-write, and opens the gate again.
	 *
	 * Why the sum, read CPU by CPU (vss_origin_drained()), is never
	 * below the number of admitted writes once the gate is closed:
	 * - a write raises a count, issues a full barrier, then reads the
	 *   gate; the closer writes the gate, issues a full barrier, then
	 *   reads the counts. One of the two sees the other: a write that
	 *   saw the gate open is counted by every drain after the close.
	 * - a write that finds the gate closed lowers the count it raised
	 *   on the same CPU: vss_admit() runs with preemption off. A drain
	 *   that reads that CPU between the two counts one write too many,
	 *   never one too few. Were the two on different CPUs (a migration
	 *   in between), a drain could read the first CPU before the raise
	 *   and the second after the fall, one less than the truth: zero
	 *   while a write is in flight.
	 * - completions only lower counts, on any CPU: a completed write
	 *   adds its raise (seen) and maybe its fall to the sum, never less
	 *   than nothing; a write in flight adds one.
	 * So zero means drained. The counts are unsigned and wrap; so does
	 * their sum, correctly.
	 */
	unsigned long __percpu *inflight;
	bool gate_closed;		/* written under gate_lock */
	spinlock_t gate_lock;		/* protects @held and @gate_closed */
	struct bio_list held;
	wait_queue_head_t drain_wait;

	/*
	 * Writes waiting for copy-on-write, plus the chunk copies other
	 * workers make for them: each holds one chunk buffer at most, so
	 * the bound on this count bounds their memory (back-pressure).
	 */
	atomic_t deferred;
	wait_queue_head_t deferred_wait;

	struct vss_chain __rcu *chain;	/* see struct vss_chain */
	u32 next_index;			/* under vss_ctl_lock */
	bool creating;			/* in a set being created; ctl lock */
	bool removed;			/* device went away; WRITE_ONCE */

	/*
	 * Changed-block tracking, NULL when the device is not tracked.
	 * Replaced under vss_ctl_lock with the write gate closed and
	 * drained, and freed after vss_image_srcu: the write path reads it
	 * while its write is admitted, image writes under vss_image_srcu.
	 */
	struct vss_cbt *cbt;
	/* A restore begun and not committed yet; under vss_ctl_lock. */
	struct vss_cbt_restore *restore;
	/* VSS_ORIGIN_* bits telling vss_origins_work what to do. */
	unsigned long todo;
#define VSS_ORIGIN_RESIZED	0	/* the device's size changed */
#define VSS_ORIGIN_CBT_BROKEN	1	/* a changed block went unrecorded */

	/* Chunks with copies in flight. */
	spinlock_t cow_lock;		/* protects @pending and its entries */
	DECLARE_HASHTABLE(pending, 8);
	wait_queue_head_t cow_wait;	/* a copy or a read pin ended */

	/*
	 * Image reads that may be reading chunks from the origin (struct
	 * vss_read_pin); @nr_read_pins counts them, so that writes can skip
	 * the lock when there are none. See cow.c for the ordering.
	 */
	spinlock_t read_pin_lock;	/* irq-safe: pins end at completion */
	struct list_head read_pins;
	atomic_t nr_read_pins;
};

int vss_origin_get(dev_t dev, bool keep_gate_closed,
		   struct netlink_ext_ack *extack, struct vss_origin **out);
void vss_origin_put_if_unused(struct vss_origin *origin);
struct vss_origin *vss_origin_find(dev_t dev);
struct vss_origin *vss_origin_nth(unsigned long n);
bool vss_origin_on_device(struct block_device *bdev);
bool vss_origin_snapshotted_on_device(struct block_device *bdev);
bool vss_origin_held_by_fs(struct super_block *sb);
bool vss_origin_has_snapshots(struct vss_origin *origin);

void vss_origin_gate_close(struct vss_origin *origin);
int vss_origin_gate_drain(struct vss_origin *origin, unsigned long deadline);
void vss_origin_gate_open(struct vss_origin *origin);
void vss_origin_quiesce(struct vss_origin *origin);

void vss_origin_attach_cbt(struct vss_origin *origin, struct vss_cbt *cbt);
struct vss_cbt *vss_origin_detach_cbt(struct vss_origin *origin);
void vss_origin_end_tracking(struct vss_origin *origin, const char *reason);
int vss_origin_check_size(struct vss_origin *origin);
void vss_origin_cbt_broken(struct vss_origin *origin, struct vss_cbt *cbt);

void vss_origin_set_chain(struct vss_origin *origin, struct vss_chain *chain);
bool vss_origin_defer_get(struct vss_origin *origin);
void vss_origin_defer_put(struct vss_origin *origin);
struct vss_chain *vss_chain_alloc(unsigned int nr);

bool vss_intercept_write(struct bio *bio);
int vss_origin_init(void);
void vss_origin_exit(void);
void vss_origins_mark_removed(struct gendisk *disk);

#endif /* VSS_ORIGIN_H */
