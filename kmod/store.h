/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The diff area: where chunks copied before their first overwrite live.
 *
 * A store is one interface with interchangeable backends (struct
 * vss_store_ops), as dm-snapshot's exception stores are: store.c hands
 * out chunk-sized slots, counts them, shares a store between sets and
 * reports low space and overflow; a backend says where a slot's bytes
 * live and moves them. Copy-on-write and image I/O reach storage only
 * through the functions below, never through a backend's insides, so a
 * new backend is one file and one line in store.c's list of backends.
 */
#ifndef VSS_STORE_H
#define VSS_STORE_H

#include <linux/kref.h>
#include <linux/idr.h>
#include <uapi/linux/vss.h>
#include "compat.h"
#include "chunk_io.h"

struct vss_store;

/* Sectors [@start, @end) of a disk, or of an origin. */
struct vss_range {
	sector_t start;
	sector_t end;
};

/**
 * struct vss_store_ops - a storage backend
 * @kind: what list and events call it
 * @accepts: may this backend serve @inode, the inode the storage path
 *	names? The backends are asked in store.c's order.
 * @open: makes @store serve @path: sets @store->backing, the default
 *	@store->limit when it is 0, @store->size, and @store->private.
 *	Undone by @close, also when it fails half way.
 * @close: releases what @open took; called once, last.
 * @reserve: makes room for the slots before @end bytes, for a store that
 *	grows when a slot needs it (NULL: all its room exists from @open,
 *	or the backend grows ahead). With @nowait, fails with -EBUSY rather
 *	than wait for a frozen filesystem.
 * @grow_ahead: for a store that grows ahead of need, in a worker of its
 *	own, never in the write path (NULL: it does not). Called after
 *	every slot allocation, successful or not, from any context that may
 *	allocate a slot; it must never block, and only queues growth when
 *	the room left (@store->size less the slots in use) falls below the
 *	backend's reserve. Slots are then never handed out beyond
 *	@store->size: an allocation past it fails with -ENOSPC at once.
 * @same_space: does @store already serve the space @inode names? Two slot
 *	allocators on the same space would overwrite each other's chunks.
 * @rw_bvec: synchronous I/O of @bytes from the start of @slot on (runs on
 *	into the slots after it), from or into pages; @copy: a
 *	copy-on-write's write, which must never wait for a frozen filesystem
 *	(-EBUSY instead) and may bypass a page cache.
 * @map: where a bio for @slot at @offset bytes goes: the device, with the
 *	sector in @sector, of a store whose slots a bio may address (one
 *	that vss_submit_bio_direct() sends untouched); NULL if not, and then
 *	@rw_bio moves the data from a worker.
 * @rw_bio: synchronous I/O of the data of @bio (not submitted, it only
 *	names the pages) at @offset bytes into @slot, running on into the
 *	slots after it.
 * @contiguous: does @slot + 1 follow @slot where @map puts it? NULL: always.
 * @ranges: for a store that lies on an origin, the disk sectors it holds
 *	(absolute on store->backing's disk): up to @max of them into @out,
 *	returning how many there are. Images read them as zeros.
 * @freezable: the store lives in a filesystem that can be frozen: its
 *	copies fail with -EBUSY meanwhile, rather than hold origin writes.
 * @on_origin: the store may lie on an origin: its I/O bypasses
 *	interception (never copied, never tracked) and @ranges says where.
 */
struct vss_store_ops {
	enum vss_storage_kind kind;
	bool (*accepts)(struct inode *inode);
	int (*open)(struct vss_store *store, const char *path,
		    struct netlink_ext_ack *extack);
	void (*close)(struct vss_store *store);
	int (*reserve)(struct vss_store *store, u64 end, bool nowait);
	void (*grow_ahead)(struct vss_store *store);
	bool (*same_space)(const struct vss_store *store, struct inode *inode);
	int (*rw_bvec)(struct vss_store *store, u32 slot, struct bio_vec *bvec,
		       unsigned int nr_bvec, size_t skip, unsigned int bytes,
		       bool write, bool copy);
	struct block_device *(*map)(struct vss_store *store, u32 slot,
				    u32 offset, sector_t *sector);
	int (*rw_bio)(struct vss_store *store, u32 slot, u32 offset,
		      struct bio *bio, bool write);
	bool (*contiguous)(const struct vss_store *store, u32 slot);
	unsigned int (*ranges)(const struct vss_store *store,
			       struct vss_range *out, unsigned int max);
	bool freezable;
	bool on_origin;
};

extern const struct vss_store_ops vss_store_bdev_ops;
extern const struct vss_store_ops vss_store_file_ops;
extern const struct vss_store_ops vss_store_tmpfile_ops;
extern const struct vss_store_ops vss_store_samevol_ops;

struct vss_store {
	struct kref kref;
	struct rcu_head rcu;
	int id;				/* in vss_stores, fixed */
	const struct vss_store_ops *ops;	/* fixed */
	char *path;			/* as given at creation, fixed */
	/*
	 * The device that holds the data (a block store's, or a file
	 * store's filesystem's); fixed once open. Never an origin's range,
	 * and no origin's range covers it, unless the backend says so.
	 */
	struct block_device *backing;
	void *private;			/* the backend's, fixed once open */
	unsigned int chunk_shift;	/* log2(chunk bytes), fixed */
	u64 limit;			/* bytes, fixed */
	u32 max_slots;			/* limit >> chunk_shift, fixed */

	/* Slot numbers in use; the IDA has its own lock. */
	struct ida slots;
	atomic_t used_slots;

	/*
	 * Bytes of room the backend has made; written by the backend (under
	 * a lock of its own), read without one: it only grows. A backend
	 * that grows ahead (@ops->grow_ahead) publishes it with
	 * smp_store_release() once everything a slot below it needs is in
	 * place, and vss_store_alloc_slot() reads it with smp_load_acquire().
	 */
	u64 size;

	/* Bits of storage-level state, atomic bitops. */
	unsigned long flags;
#define VSS_STORE_LOW_REPORTED	0	/* low-space event sent */
#define VSS_STORE_FULL_REPORTED	1	/* overflow event sent */
#define VSS_STORE_GROW_FAILED	2	/* grows ahead, and could not */
#define VSS_STORE_GROW_HELD	3	/* grew, but its snapshots hold it */
};

/*
 * An exception names a chunk slot in a store: the store's id in the top
 * bits, the slot in the low bits, packed into an xarray value entry.
 */
#define VSS_SLOT_BITS	40
static inline unsigned long vss_exc_pack(const struct vss_store *store,
					 u32 slot)
{
	return ((unsigned long)store->id << VSS_SLOT_BITS) | slot;
}

static inline int vss_exc_store_id(unsigned long exc)
{
	return exc >> VSS_SLOT_BITS;
}

static inline u32 vss_exc_slot(unsigned long exc)
{
	return exc & ((1UL << VSS_SLOT_BITS) - 1);
}

struct vss_store_params {
	const char *path;
	u64 limit;
	unsigned int chunk_shift;
};

struct vss_store *vss_store_open(const struct vss_store_params *params,
				 struct netlink_ext_ack *extack);
struct vss_store *vss_store_get_by_id(int id);
void vss_store_put(struct vss_store *store);
bool vss_store_on_device(struct block_device *bdev);
static inline void vss_store_get(struct vss_store *store)
{
	kref_get(&store->kref);
}

int vss_store_alloc_slot(struct vss_store *store, u32 *slot, bool nowait);
int vss_store_claim_slot(struct vss_store *store, u32 slot);
const char *vss_store_full_reason(const struct vss_store *store);
void vss_store_free_exc(unsigned long exc);

int vss_store_rw_bvec(struct vss_store *store, u32 slot, struct bio_vec *bvec,
		      unsigned int nr_bvec, size_t skip, unsigned int bytes,
		      bool write, bool copy);
int vss_store_rw_buf(struct vss_store *store, u32 slot,
		     struct vss_chunk_buf *buf, bool write);
struct block_device *vss_store_map(struct vss_store *store, u32 slot,
				   u32 offset, sector_t *sector);
int vss_store_rw_bio(struct vss_store *store, u32 slot, u32 offset,
		     struct bio *bio, bool write);

/* Does @slot + 1 follow @slot, so that one bio may address both? */
static inline bool vss_store_contiguous(const struct vss_store *store,
					u32 slot)
{
	return !store->ops->contiguous || store->ops->contiguous(store, slot);
}

/*
 * Where the stores that lie on an origin are, in sectors of that origin,
 * sorted: what its snapshot's image reads as zeros (see image.c).
 */
struct vss_store_mask {
	unsigned int nr;
	struct vss_range range[];
};

struct vss_store_mask *vss_store_mask_build(struct gendisk *disk,
					    sector_t start,
					    sector_t nr_sectors);

/* Does @store wait for a frozen filesystem (see struct vss_store_ops)? */
static inline bool vss_store_freezable(const struct vss_store *store)
{
	return store->ops->freezable;
}

/* Byte offset of @slot from the start of a store's space. */
static inline loff_t vss_store_slot_pos(const struct vss_store *store,
					u32 slot)
{
	return (loff_t)slot << store->chunk_shift;
}

u64 vss_store_used_bytes(struct vss_store *store);

/*
 * Growth ahead of need runs in vss_store_wq. A queued or running growth
 * holds a reference on its store, taken by vss_store_grow_get() and
 * dropped by vss_store_grow_put(), which takes vss_ctl_lock for the put:
 * the last reference may go there, and a store is only ever released
 * under that lock (vss_store_on_device() and vss_store_mask_build()
 * rely on it). Nothing waits for a growth, so it may take vss_ctl_lock
 * and block on a frozen filesystem; module exit waits for the last one.
 */
extern struct workqueue_struct *vss_store_wq;
void vss_store_grow_get(struct vss_store *store);
void vss_store_grow_put(struct vss_store *store);

int vss_store_init(void);
void vss_store_exit(void);

#endif /* VSS_STORE_H */
