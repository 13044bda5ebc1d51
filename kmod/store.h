/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The diff area: where chunks copied before their first overwrite live.
 * A store is an interface with two backends, a block device and a file
 * (named, or unnamed in a directory); all I/O goes through the block layer
 * or the VFS, never to sectors behind a filesystem's back.
 */
#ifndef VSS_STORE_H
#define VSS_STORE_H

#include <linux/kref.h>
#include <linux/idr.h>
#include <uapi/linux/vss.h>
#include "compat.h"
#include "chunk_io.h"

struct vss_store {
	struct kref kref;
	struct rcu_head rcu;
	int id;				/* in vss_stores, fixed */
	enum vss_storage_kind kind;	/* fixed */
	char *path;			/* as given at creation, fixed */
	struct file *file;		/* FILE and TMPFILE kinds */
	/*
	 * Copies go to a file store with direct I/O, bypassing the page
	 * cache, when the file allows it: 0, or the alignment that direct
	 * I/O needs (the filesystem device's logical block size); fixed.
	 * Measured in Documentation/performance.rst: first writes go faster
	 * and no dirty copies pile up in memory. Image I/O stays buffered.
	 */
	unsigned int direct_align;
	struct vss_bdev_handle handle;	/* BLOCK kind */
	struct block_device *backing;	/* device that holds the data */
	unsigned int chunk_shift;	/* log2(chunk bytes), fixed */
	u64 limit;			/* bytes, fixed */
	u32 max_slots;			/* limit >> chunk_shift, fixed */

	/* Slot numbers in use; the IDA has its own lock. */
	struct ida slots;
	atomic_t used_slots;

	/*
	 * Bytes reserved in the file with fallocate(). Written under
	 * grow_lock, read without it: it only grows.
	 */
	struct mutex grow_lock;
	u64 size;

	/* Bits of storage-level state, atomic bitops. */
	unsigned long flags;
#define VSS_STORE_LOW_REPORTED	0	/* low-space event sent */
#define VSS_STORE_FULL_REPORTED	1	/* overflow event sent */
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
void vss_store_free_exc(unsigned long exc);

int vss_store_rw_bvec(struct vss_store *store, u32 slot, struct bio_vec *bvec,
		      unsigned int nr_bvec, size_t skip, unsigned int bytes,
		      bool write, bool copy);
int vss_store_rw_buf(struct vss_store *store, u32 slot,
		     struct vss_chunk_buf *buf, bool write);
int vss_store_file_rw_bio(struct vss_store *store, u32 slot, u32 offset,
			  struct bio *bio, bool write);
sector_t vss_store_sector(struct vss_store *store, u32 slot);

u64 vss_store_used_bytes(struct vss_store *store);

void vss_store_exit(void);

#endif /* VSS_STORE_H */
