/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Changed-block tracking: which blocks of an origin were written, per
 * interval between two snapshot points, within one generation. See the
 * "Changed-block tracking" section of uapi/linux/vss.h for the model.
 */
#ifndef VSS_CBT_H
#define VSS_CBT_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/uuid.h>
#include <uapi/linux/vss.h>
#include "cbt_map.h"

struct vss_origin;

/* The blocks written between point @seq and point @seq + 1. */
struct vss_cbt_interval {
	struct list_head node;		/* vss_cbt.intervals */
	u64 seq;			/* fixed */
	struct vss_cbt_map map;
};

/*
 * One generation of tracking of one origin, owned by the origin
 * (origin->cbt) or, while it is being saved or restored, by the control
 * path. It holds a module reference while attached to an origin.
 */
struct vss_cbt {
	uuid_t generation;		/* fixed */
	u64 started_ns;			/* fixed: CLOCK_REALTIME */
	unsigned int block_shift;	/* fixed: log2 of the block size */
	u64 size;			/* fixed: bytes tracked */
	u64 nr_blocks;			/* fixed */

	/*
	 * The intervals, oldest first; the last is @current. The list, and
	 * the maps of every interval but the current one, change under
	 * @lock. Adding an interval (a new point) also needs vss_ctl_lock
	 * and the origin's write gate closed and drained, because the write
	 * path marks @current without a lock: it reads @current only while
	 * its write is admitted. Dropping old intervals needs vss_ctl_lock
	 * and @lock. So holding vss_ctl_lock keeps every interval alive.
	 */
	struct mutex lock;
	struct list_head intervals;
	unsigned int nr_intervals;	/* under @lock */
	struct vss_cbt_interval *current_iv;

	atomic_long_t nr_pages;		/* pages of every map */

	/* A mark could not be recorded: this generation must end. */
	bool broken;			/* WRITE_ONCE, read without a lock */
};

u64 vss_cbt_seq(const struct vss_cbt *cbt);
u64 vss_cbt_oldest_seq(const struct vss_cbt *cbt);
u64 vss_cbt_map_bytes(struct vss_cbt *cbt);
unsigned int vss_cbt_block_shift_for(u64 bytes);

struct vss_cbt *vss_cbt_alloc(u64 bytes, unsigned int block_shift,
			      const uuid_t *generation, u64 seq,
			      u64 started_ns);
void vss_cbt_free(struct vss_cbt *cbt);
struct vss_cbt_interval *vss_cbt_interval_alloc(void);
void vss_cbt_interval_free(struct vss_cbt *cbt, struct vss_cbt_interval *iv);

void vss_cbt_advance(struct vss_cbt *cbt, struct vss_cbt_interval *iv);
bool vss_cbt_trim_history(struct vss_cbt *cbt);
struct vss_cbt_interval *vss_cbt_find_interval(struct vss_cbt *cbt, u64 seq);
int vss_cbt_add_interval(struct vss_cbt *cbt, u64 seq);

int vss_cbt_mark_sectors(struct vss_cbt *cbt, sector_t from, sector_t to,
			 gfp_t gfp);
int vss_cbt_mark_bytes(struct vss_cbt *cbt, u64 offset, u64 length,
		       gfp_t gfp);
void vss_cbt_mark_image_write(struct vss_origin *origin,
			      const uuid_t *generation, u64 seq,
			      sector_t from, sector_t to);
int vss_cbt_merge_current(struct vss_cbt *dst, struct vss_cbt *src);

/*
 * A restore between its BEGIN and COMMIT steps: the saved generation
 * being rebuilt, and whether it may go on. Owned by the origin
 * (origin->restore), under vss_ctl_lock.
 */
struct vss_cbt_restore {
	struct vss_cbt *saved;
	const char *reason;	/* why it may not go on, or NULL */
};

void vss_cbt_restore_free(struct vss_cbt_restore *restore);

/*
 * Walks the union of the maps of intervals @lo .. @hi, run by run. The
 * caller holds vss_ctl_lock (which keeps the intervals alive) for as
 * long as it uses the cursor's interval array, and refills it with
 * vss_cbt_cursor_bind() each time it takes the lock again.
 */
struct vss_cbt_cursor {
	u64 pos;			/* next block to look at */
	unsigned long page_index;	/* of @scratch, or ULONG_MAX */
	unsigned long *scratch;		/* union of one page of bits */
	unsigned int nr;
	struct vss_cbt_interval **ivs;	/* the intervals @lo .. @hi */
	unsigned int capacity;
};

int vss_cbt_cursor_init(struct vss_cbt_cursor *cur);
void vss_cbt_cursor_release(struct vss_cbt_cursor *cur);
void vss_cbt_cursor_bind(struct vss_cbt_cursor *cur, struct vss_cbt *cbt,
			 u64 lo, u64 hi);
bool vss_cbt_next_run(struct vss_cbt *cbt, struct vss_cbt_cursor *cur,
		      u64 *first, u64 *count);

#endif /* VSS_CBT_H */
