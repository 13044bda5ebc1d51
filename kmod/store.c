// SPDX-License-Identifier: GPL-2.0
/*
 * Diff storage, the part every backend shares. A store hands out
 * chunk-sized slots, has its backend make room for them up to its limit,
 * and reports low space and overflow. Every allocated slot holds a
 * reference on its store, so a store lives exactly as long as some
 * exception points into it. The backends: store_bdev.c, store_file.c.
 */
#include "vss.h"
#include "store.h"
#include "event.h"
#include <linux/namei.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

/* Stores by id; exceptions name their store by this id. */
static DEFINE_XARRAY_ALLOC(vss_stores);

/* Growths ahead of need (see store.h), and how many hold a store. */
struct workqueue_struct *vss_store_wq;
static atomic_t vss_store_growths = ATOMIC_INIT(0);

/* The backends, in the order they are asked whether they take a path. */
static const struct vss_store_ops *const vss_store_backends[] = {
	&vss_store_bdev_ops,
	&vss_store_file_ops,
	&vss_store_samevol_ops,		/* a directory on an origin */
	&vss_store_tmpfile_ops,
};

static struct vss_store *vss_store_find_shared(struct inode *inode,
					       unsigned int chunk_shift,
					       struct netlink_ext_ack *extack)
{
	struct vss_store *store;
	unsigned long id;

	rcu_read_lock();
	xa_for_each(&vss_stores, id, store) {
		if (!kref_get_unless_zero(&store->kref))
			continue;
		rcu_read_unlock();
		if (store->ops->same_space &&
		    store->ops->same_space(store, inode)) {
			if (store->chunk_shift == chunk_shift)
				return store;
			vss_store_put(store);
			NL_SET_ERR_MSG(extack,
				       "storage is in use with another chunk size");
			return ERR_PTR(-EINVAL);
		}
		vss_store_put(store);
		rcu_read_lock();
	}
	rcu_read_unlock();
	return NULL;
}

/**
 * vss_store_on_device - does a store keep its data on @bdev?
 * @bdev: a device about to become an origin
 *
 * A store's own writes would then need copies of their own, made from
 * inside the copies they serve; an origin is therefore never a store, as
 * a store never lies on an origin. The caller holds vss_ctl_lock, under
 * which no store goes away (stores go with their sets and slots, which
 * only the control path frees last).
 *
 * A same-volume store is the exception: its I/O is never intercepted, so
 * it may lie on an origin (store_samevol.c).
 *
 * Return: true if some store's device (a block store, or the device of a
 * file store's filesystem) overlaps @bdev.
 */
bool vss_store_on_device(struct block_device *bdev)
{
	sector_t start = bdev->bd_start_sect;
	sector_t end = start + bdev_nr_sectors(bdev);
	struct vss_store *store;
	unsigned long id;
	bool found = false;

	lockdep_assert_held(&vss_ctl_lock);
	rcu_read_lock();
	xa_for_each(&vss_stores, id, store) {
		struct block_device *backing = store->backing;

		/* Such a store is excluded from its origin's copies. */
		if (store->ops->on_origin)
			continue;
		if (backing && backing->bd_disk == bdev->bd_disk &&
		    backing->bd_start_sect < end &&
		    start < backing->bd_start_sect + bdev_nr_sectors(backing)) {
			found = true;
			break;
		}
	}
	rcu_read_unlock();
	return found;
}

/**
 * vss_store_open - open the diff storage named by @params->path
 * @params: path, limit in bytes (0: default for the kind), chunk size
 * @extack: receives the reason of a failure
 *
 * The path may name a block device, a regular file, or a directory in
 * which an unnamed file is created: the first backend that accepts it
 * serves it. A store that grows gets its first room reserved at once, so
 * that a full filesystem is reported now rather than at the first write.
 *
 * A block device or named file already serving another set is shared:
 * the caller gets the existing store, whose limit stays as it was.
 * The caller holds vss_ctl_lock.
 *
 * Return: the store with one reference, or an ERR_PTR.
 */
struct vss_store *vss_store_open(const struct vss_store_params *params,
				 struct netlink_ext_ack *extack)
{
	const struct vss_store_ops *ops = NULL;
	struct vss_store *store;
	struct path path;
	unsigned int i;
	u32 id;
	int ret;

	ret = kern_path(params->path, LOOKUP_FOLLOW, &path);
	if (ret) {
		NL_SET_ERR_MSG(extack, "storage path does not exist");
		return ERR_PTR(ret);
	}
	for (i = 0; i < ARRAY_SIZE(vss_store_backends) && !ops; i++)
		if (vss_store_backends[i]->accepts(d_inode(path.dentry)))
			ops = vss_store_backends[i];
	store = vss_store_find_shared(d_inode(path.dentry), params->chunk_shift,
				      extack);
	path_put(&path);
	if (store)
		return store;
	if (!ops) {
		NL_SET_ERR_MSG(extack,
			       "storage must be a block device, a file or a directory");
		return ERR_PTR(-EINVAL);
	}

	store = kzalloc(sizeof(*store), GFP_KERNEL);
	if (!store)
		return ERR_PTR(-ENOMEM);
	kref_init(&store->kref);
	ida_init(&store->slots);
	store->ops = ops;
	store->chunk_shift = params->chunk_shift;
	store->limit = params->limit;
	store->path = kstrdup(params->path, GFP_KERNEL);
	if (!store->path) {
		ret = -ENOMEM;
		goto err_free;
	}

	ret = ops->open(store, params->path, extack);
	if (ret)
		goto err_close;

	store->limit = round_down(store->limit, 1ULL << store->chunk_shift);
	store->max_slots = min_t(u64, store->limit >> store->chunk_shift,
				 INT_MAX);
	if (!store->max_slots) {
		NL_SET_ERR_MSG(extack, "storage is smaller than one chunk");
		ret = -ENOSPC;
		goto err_close;
	}
	if (ops->reserve) {
		ret = ops->reserve(store, 1ULL << store->chunk_shift, false);
		if (ret) {
			NL_SET_ERR_MSG(extack,
				       "cannot reserve space in the storage filesystem");
			goto err_close;
		}
	}

	ret = xa_alloc(&vss_stores, &id, store,
		       XA_LIMIT(1, (1U << (BITS_PER_LONG - 2 - VSS_SLOT_BITS)) - 1),
		       GFP_KERNEL);
	if (ret)
		goto err_close;
	store->id = id;
	return store;

err_close:
	ops->close(store);
err_free:
	kfree(store->path);
	kfree(store);
	return ERR_PTR(ret);
}

static void vss_store_release(struct kref *kref)
{
	struct vss_store *store = container_of(kref, struct vss_store, kref);

	xa_erase(&vss_stores, store->id);
	store->ops->close(store);
	ida_destroy(&store->slots);
	kfree(store->path);
	/* vss_store_find_shared() may be looking at it under RCU. */
	kfree_rcu(store, rcu);
}

void vss_store_put(struct vss_store *store)
{
	if (store)
		kref_put(&store->kref, vss_store_release);
}

/* Looks up a store that an exception points into; the exception pins it. */
struct vss_store *vss_store_get_by_id(int id)
{
	return xa_load(&vss_stores, id);
}

static int vss_range_cmp(const void *a, const void *b)
{
	const struct vss_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Adds what @store holds of [@start, @end) of @disk to @mask, if it fits. */
static unsigned int vss_store_mask_add(struct vss_store *store,
				       struct gendisk *disk, sector_t start,
				       sector_t end, struct vss_store_mask *mask,
				       unsigned int room)
{
	struct vss_range *ranges;
	unsigned int nr, i, added = 0;

	if (!store->ops->ranges || store->backing->bd_disk != disk)
		return 0;
	nr = store->ops->ranges(store, NULL, 0);
	if (!mask)
		return nr;
	ranges = kmalloc_array(nr, sizeof(*ranges), GFP_KERNEL);
	if (!ranges)
		return UINT_MAX;
	nr = store->ops->ranges(store, ranges, nr);
	for (i = 0; i < nr && added < room; i++) {
		sector_t s = max(ranges[i].start, start);
		sector_t e = min(ranges[i].end, end);

		if (s >= e)
			continue;
		mask->range[mask->nr++] = (struct vss_range){
			.start = s - start, .end = e - start,
		};
		added++;
	}
	kfree(ranges);
	return added;
}

/**
 * vss_store_mask_build - where stores lie on the origin [@start, +@nr_sectors)
 * @disk: the origin's disk
 * @start: the origin's first sector on @disk
 * @nr_sectors: its size
 *
 * Called for a snapshot about to be taken, under vss_ctl_lock (which keeps
 * every store and its place as they are).
 *
 * Return: the ranges, sorted, in sectors of the origin; NULL when no store
 * lies on it; or ERR_PTR(-ENOMEM).
 */
struct vss_store_mask *vss_store_mask_build(struct gendisk *disk,
					    sector_t start,
					    sector_t nr_sectors)
{
	struct vss_store_mask *mask;
	struct vss_store *store;
	unsigned int nr = 0, n;
	unsigned long id;

	lockdep_assert_held(&vss_ctl_lock);
	xa_for_each(&vss_stores, id, store)
		nr += vss_store_mask_add(store, disk, 0, 0, NULL, 0);
	if (!nr)
		return NULL;
	mask = kmalloc(struct_size(mask, range, nr), GFP_KERNEL);
	if (!mask)
		return ERR_PTR(-ENOMEM);
	mask->nr = 0;
	xa_for_each(&vss_stores, id, store) {
		n = vss_store_mask_add(store, disk, start, start + nr_sectors,
				       mask, nr - mask->nr);
		if (n == UINT_MAX) {
			kfree(mask);
			return ERR_PTR(-ENOMEM);
		}
	}
	if (!mask->nr) {
		kfree(mask);
		return NULL;
	}
	sort(mask->range, mask->nr, sizeof(mask->range[0]), vss_range_cmp,
	     NULL);
	return mask;
}

u64 vss_store_used_bytes(struct vss_store *store)
{
	return (u64)atomic_read(&store->used_slots) << store->chunk_shift;
}

static void vss_store_check_low(struct vss_store *store)
{
	u64 used = vss_store_used_bytes(store);

	if (used > store->limit - store->limit / 8) {
		if (!test_and_set_bit(VSS_STORE_LOW_REPORTED, &store->flags))
			vss_event_storage(store, VSS_EVENT_STORAGE_LOW);
	} else if (used < store->limit - store->limit / 4) {
		clear_bit(VSS_STORE_LOW_REPORTED, &store->flags);
	}
}

/*
 * A slot could not be had because of @err: an overflow when the limit is
 * reached or the filesystem (or the owner's quota) is full, reported
 * once. Anything else, a frozen filesystem (there may be room once
 * thawed), one that failed or went read-only, a lack of memory, is no
 * overflow: the caller says what it was.
 */
static void vss_store_note_full(struct vss_store *store, int err)
{
	if (err != -ENOSPC && err != -EDQUOT)
		return;
	if (!test_and_set_bit(VSS_STORE_FULL_REPORTED, &store->flags))
		vss_event_storage(store, VSS_EVENT_STORAGE_OVERFLOW);
}

/**
 * vss_store_alloc_slot - reserve one chunk slot
 * @store: the store
 * @slot: receives the slot number
 * @nowait: fail rather than wait for a file store's frozen filesystem
 *
 * Has the backend make room when the slot lies past the room made so far;
 * a backend that grows ahead (see struct vss_store_ops) is never waited
 * for: its slots come from the room it made, and it is told after each
 * allocation, so that it grows before that room runs out.
 * The slot holds a reference on @store until vss_store_free_exc().
 *
 * Return: 0, -ENOSPC when the limit is reached or the filesystem is full
 * (or a store that grows ahead has no room left now), -EDQUOT when the
 * owner's quota is, -EBUSY when @nowait and growing would wait for a
 * frozen filesystem, or another negative errno (the filesystem failed
 * growing the file, or memory ran out).
 */
int vss_store_alloc_slot(struct vss_store *store, u32 *slot, bool nowait)
{
	u32 max = store->max_slots;
	u64 end;
	int ret;

	if (store->ops->grow_ahead)
		/* What a slot below it needs was published before it. */
		max = min_t(u64, max, smp_load_acquire(&store->size) >>
				      store->chunk_shift);
	ret = max ? ida_alloc_max(&store->slots, max - 1, GFP_NOIO) : -ENOSPC;
	if (ret < 0) {
		if (store->ops->grow_ahead)
			store->ops->grow_ahead(store);
		vss_store_note_full(store, ret);
		return ret;
	}
	*slot = ret;
	end = ((u64)ret + 1) << store->chunk_shift;
	if (store->ops->reserve && end > READ_ONCE(store->size)) {
		ret = store->ops->reserve(store, end, nowait);
		if (ret) {
			ida_free(&store->slots, *slot);
			vss_store_note_full(store, ret);
			return ret;
		}
	}
	kref_get(&store->kref);
	atomic_inc(&store->used_slots);
	vss_store_check_low(store);
	if (store->ops->grow_ahead)
		store->ops->grow_ahead(store);
	return 0;
}

/**
 * vss_store_claim_slot - take slot @slot of @store, as vss_store_alloc_slot()
 * @store: the store
 * @slot: the slot, which its backend is about to publish room for
 *
 * For a backend whose new room must keep what it holds for the
 * snapshots older than it (see vss_cow_keep_in_place()).
 *
 * Return: 0, or a negative errno if the slot is taken.
 */
int vss_store_claim_slot(struct vss_store *store, u32 slot)
{
	int ret = ida_alloc_range(&store->slots, slot, slot, GFP_KERNEL);

	if (ret < 0)
		return ret;
	kref_get(&store->kref);
	atomic_inc(&store->used_slots);
	vss_store_check_low(store);
	return 0;
}

/**
 * vss_store_full_reason - why @store had no slot (-ENOSPC or -EDQUOT)
 * @store: the store
 *
 * Return: a snapshot's failure reason, static: whether the store reached
 * its limit, or, for one that grows ahead, its filesystem had no room
 * for it to grow, what it grew is held for its snapshots (see
 * vss_cow_keep_in_place()), or the growth did not come in time (a frozen
 * filesystem, or writes that outran the reserve).
 */
const char *vss_store_full_reason(const struct vss_store *store)
{
	if (!store->ops->grow_ahead ||
	    READ_ONCE(store->size) >> store->chunk_shift >= store->max_slots)
		return "diff storage is full";
	if (test_bit(VSS_STORE_GROW_FAILED, &store->flags))
		return "diff storage is full: its filesystem has no room for it to grow";
	if (test_bit(VSS_STORE_GROW_HELD, &store->flags))
		return "diff storage is full: what it grew holds data its snapshots need";
	return "diff storage is full: it could not grow in time";
}

/* A growth of @store is about to be queued: it holds the store. */
void vss_store_grow_get(struct vss_store *store)
{
	atomic_inc(&vss_store_growths);
	kref_get(&store->kref);
}

/*
 * A growth of @store is over; the last reference may go with it, under
 * vss_ctl_lock as everywhere else. Called last in the growth's work.
 */
void vss_store_grow_put(struct vss_store *store)
{
	mutex_lock(&vss_ctl_lock);
	vss_store_put(store);
	mutex_unlock(&vss_ctl_lock);
	if (atomic_dec_and_test(&vss_store_growths))
		wake_up_var(&vss_store_growths);
}

/* Frees the slot an exception points to, and its reference on the store. */
void vss_store_free_exc(unsigned long exc)
{
	struct vss_store *store = vss_store_get_by_id(vss_exc_store_id(exc));

	if (WARN_ON_ONCE(!store))
		return;
	ida_free(&store->slots, vss_exc_slot(exc));
	atomic_dec(&store->used_slots);
	vss_store_check_low(store);
	vss_store_put(store);
}

/**
 * vss_store_rw_bvec - read or write slots from @slot on from or into pages
 * @store: the store
 * @slot: first slot
 * @bvec: pages holding the data
 * @nr_bvec: entries in @bvec
 * @skip: bytes of @bvec to skip before the data starts
 * @bytes: length; more than a chunk runs on into the slots after @slot
 * @write: direction
 * @copy: a copy-on-write's: a write to a store in a filesystem fails with
 *	  -EBUSY rather than wait for its freeze, and may bypass a page cache
 *
 * Return: 0 or a negative errno.
 */
int vss_store_rw_bvec(struct vss_store *store, u32 slot, struct bio_vec *bvec,
		      unsigned int nr_bvec, size_t skip, unsigned int bytes,
		      bool write, bool copy)
{
	return store->ops->rw_bvec(store, slot, bvec, nr_bvec, skip, bytes,
				   write, copy);
}

/*
 * Reads or writes a whole chunk slot from or into @buf, for image I/O:
 * that may wait for a frozen filesystem, as any writer of a file does.
 */
int vss_store_rw_buf(struct vss_store *store, u32 slot,
		     struct vss_chunk_buf *buf, bool write)
{
	return vss_store_rw_bvec(store, slot, buf->bvec, buf->nr_pages, 0,
				 buf->bytes, write, false);
}

/**
 * vss_store_map - where an image piece from @slot at @offset is sent
 * @store: the store
 * @slot: the piece's first slot
 * @offset: bytes into @slot where the piece starts
 * @sector: receives the sector on the returned device
 *
 * A piece that starts there may run on into the slots after @slot.
 *
 * Return: the device to send the piece's bio to (with
 * vss_submit_bio_direct()), or NULL when the piece must be moved with
 * vss_store_rw_bio() from a worker instead.
 */
struct block_device *vss_store_map(struct vss_store *store, u32 slot,
				   u32 offset, sector_t *sector)
{
	if (!store->ops->map)
		return NULL;
	return store->ops->map(store, slot, offset, sector);
}

/**
 * vss_store_rw_bio - read or write a store from or into a bio
 * @store: a store that vss_store_map() does not map
 * @slot: first slot
 * @offset: byte offset into @slot where the data starts
 * @bio: names the pages (not submitted); its data may run on into the
 *	 slots that follow @slot
 * @write: direction
 *
 * Synchronous: called by a worker, one per piece of an image request.
 *
 * Return: 0 or a negative errno.
 */
int vss_store_rw_bio(struct vss_store *store, u32 slot, u32 offset,
		     struct bio *bio, bool write)
{
	return store->ops->rw_bio(store, slot, offset, bio, write);
}

int vss_store_init(void)
{
	/* Never in the write path's way: growth may wait for a thaw. */
	vss_store_wq = alloc_workqueue("vss_store", WQ_UNBOUND, 0);
	return vss_store_wq ? 0 : -ENOMEM;
}

void vss_store_exit(void)
{
	/* No set is left: each growth sees its store unused and ends. */
	wait_var_event(&vss_store_growths, !atomic_read(&vss_store_growths));
	destroy_workqueue(vss_store_wq);
	WARN_ON(!xa_empty(&vss_stores));
	xa_destroy(&vss_stores);
}
