// SPDX-License-Identifier: GPL-2.0
/*
 * Diff storage. A store hands out chunk-sized slots, grows a file store
 * with fallocate() in steps up to its limit, and reports low space and
 * overflow. Every allocated slot holds a reference on its store, so a
 * store lives exactly as long as some exception points into it.
 */
#include "vss.h"
#include "store.h"
#include "event.h"
#include <linux/falloc.h>
#include <linux/namei.h>
#include <linux/slab.h>
#include <linux/xarray.h>

/* Stores by id; exceptions name their store by this id. */
static DEFINE_XARRAY_ALLOC(vss_stores);

static u64 vss_store_grow_step(const struct vss_store *store)
{
	u64 step = clamp_t(u64, store->limit / 16, SZ_16M, SZ_1G);

	return round_up(step, 1ULL << store->chunk_shift);
}

static int vss_store_open_block(struct vss_store *store, const char *path,
				struct netlink_ext_ack *extack)
{
	dev_t dev;
	u64 capacity;
	int ret;

	ret = lookup_bdev(path, &dev);
	if (ret) {
		NL_SET_ERR_MSG(extack, "cannot resolve the storage device");
		return ret;
	}
	ret = vss_bdev_open(dev, true, store, &store->handle);
	if (ret == -ENXIO) {
		NL_SET_ERR_MSG(extack,
			       "storage device node names no disk (its driver is not loaded)");
		return ret;
	}
	if (ret) {
		NL_SET_ERR_MSG(extack,
			       "storage device is in use (mounted or held exclusively)");
		return ret;
	}
	store->backing = store->handle.bdev;
	capacity = bdev_nr_bytes(store->handle.bdev);
	if (!store->limit || store->limit > capacity)
		store->limit = capacity;
	store->size = store->limit;
	return 0;
}

static int vss_store_open_file(struct vss_store *store, const char *path,
			       bool directory, struct netlink_ext_ack *extack)
{
	struct file *file;

	/*
	 * O_NOATIME: copy-on-write keeps changing the file, so under relatime
	 * every image read would otherwise dirty the inode again.
	 */
	if (directory) {
		file = filp_open(path, O_RDWR | O_TMPFILE | O_LARGEFILE |
				 O_NOATIME, 0600);
	} else {
		file = filp_open(path, O_RDWR | O_LARGEFILE | O_NOATIME, 0);
		if (file == ERR_PTR(-EPERM))	/* not the owner's to ask */
			file = filp_open(path, O_RDWR | O_LARGEFILE, 0);
	}
	if (IS_ERR(file)) {
		if (directory)
			NL_SET_ERR_MSG(extack,
				       "cannot create an unnamed file in the storage directory");
		else
			NL_SET_ERR_MSG(extack, "cannot open the storage file");
		return PTR_ERR(file);
	}
	store->file = file;
	store->backing = file_inode(file)->i_sb->s_bdev;
	if ((file->f_mode & FMODE_CAN_ODIRECT) && store->backing)
		store->direct_align = bdev_logical_block_size(store->backing);
	if (!(file->f_mode & FMODE_CAN_WRITE) || !file->f_op->fallocate) {
		NL_SET_ERR_MSG(extack,
			       "storage filesystem does not support fallocate");
		return -EOPNOTSUPP;
	}
	if (!store->limit)
		store->limit = i_size_read(file_inode(file));
	if (!store->limit) {
		NL_SET_ERR_MSG(extack, "storage limit is required for an empty file");
		return -EINVAL;
	}
	return 0;
}

/*
 * Reserves [@offset, @offset + @len) of the store's file. As vfs_fallocate()
 * but with the freeze protection taken as vss_file_write() takes it (see
 * vss_file_freeze_protect()), so that copy-on-write never waits for a
 * frozen filesystem. The store's file is vss's own, opened for writing
 * and checked at open; what vfs_fallocate() checks that may change since
 * is checked here.
 */
static int vss_store_fallocate(struct vss_store *store, loff_t offset,
			       loff_t len, bool nowait)
{
	struct file *file = store->file;
	struct inode *inode = file_inode(file);
	int ret;

	if (IS_IMMUTABLE(inode))
		return -EPERM;
	if (IS_SWAPFILE(inode))
		return -ETXTBSY;
	ret = vss_file_freeze_protect(file, nowait);
	if (ret)
		return ret;
	ret = file->f_op->fallocate(file, 0, offset, len);
	sb_end_write(inode->i_sb);
	return ret;
}

/*
 * Reserves space up to @want bytes (rounded up to a growth step). With
 * @nowait, fails with -EBUSY rather than wait for a frozen filesystem.
 */
static int vss_store_grow(struct vss_store *store, u64 want, bool nowait)
{
	u64 new_size;
	int ret = 0;

	mutex_lock(&store->grow_lock);
	if (want <= store->size)
		goto out;
	new_size = min(store->limit,
		       round_up(want, vss_store_grow_step(store)));
	ret = vss_store_fallocate(store, store->size, new_size - store->size,
				  nowait);
	if (!ret)
		WRITE_ONCE(store->size, new_size);
out:
	mutex_unlock(&store->grow_lock);
	return ret;
}

/*
 * A block device or a named file can serve several sets at once, but only
 * through one store object: two slot allocators on the same space would
 * overwrite each other's chunks.
 */
static bool vss_store_same_space(struct vss_store *store, struct inode *inode)
{
	switch (store->kind) {
	case VSS_STORAGE_BLOCK:
		return S_ISBLK(inode->i_mode) &&
		       store->handle.bdev->bd_dev == inode->i_rdev;
	case VSS_STORAGE_FILE:
		return file_inode(store->file) == inode;
	default:
		return false;	/* an unnamed file is never shared */
	}
}

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
		if (vss_store_same_space(store, inode)) {
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
 * which an unnamed file is created. A file store gets its first growth
 * step reserved at once, so that a full filesystem is reported now rather
 * than at the first write.
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
	struct vss_store *store;
	struct path path;
	umode_t mode;
	u32 id;
	int ret;

	ret = kern_path(params->path, LOOKUP_FOLLOW, &path);
	if (ret) {
		NL_SET_ERR_MSG(extack, "storage path does not exist");
		return ERR_PTR(ret);
	}
	mode = d_inode(path.dentry)->i_mode;
	store = vss_store_find_shared(d_inode(path.dentry), params->chunk_shift,
				      extack);
	path_put(&path);
	if (store)
		return store;

	store = kzalloc(sizeof(*store), GFP_KERNEL);
	if (!store)
		return ERR_PTR(-ENOMEM);
	kref_init(&store->kref);
	ida_init(&store->slots);
	mutex_init(&store->grow_lock);
	store->chunk_shift = params->chunk_shift;
	store->limit = params->limit;
	store->path = kstrdup(params->path, GFP_KERNEL);
	if (!store->path) {
		ret = -ENOMEM;
		goto err_free;
	}

	if (S_ISBLK(mode)) {
		store->kind = VSS_STORAGE_BLOCK;
		ret = vss_store_open_block(store, params->path, extack);
	} else if (S_ISREG(mode)) {
		store->kind = VSS_STORAGE_FILE;
		ret = vss_store_open_file(store, params->path, false, extack);
	} else if (S_ISDIR(mode)) {
		store->kind = VSS_STORAGE_TMPFILE;
		if (!store->limit) {
			NL_SET_ERR_MSG(extack,
				       "storage limit is required for a storage directory");
			ret = -EINVAL;
		} else {
			ret = vss_store_open_file(store, params->path, true,
						  extack);
		}
	} else {
		NL_SET_ERR_MSG(extack,
			       "storage must be a block device, a file or a directory");
		ret = -EINVAL;
	}
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
	if (store->file) {
		store->size = i_size_read(file_inode(store->file));
		ret = vss_store_grow(store, min(store->limit,
						vss_store_grow_step(store)),
				     false);
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
	if (store->file)
		fput(store->file);
	vss_bdev_close(&store->handle, true, true);
err_free:
	kfree(store->path);
	kfree(store);
	return ERR_PTR(ret);
}

static void vss_store_release(struct kref *kref)
{
	struct vss_store *store = container_of(kref, struct vss_store, kref);

	xa_erase(&vss_stores, store->id);
	if (store->file)
		fput(store->file);
	vss_bdev_close(&store->handle, true, true);
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
 * Grows a file store when the slot lies past the space reserved so far.
 * The slot holds a reference on @store until vss_store_free_exc().
 *
 * Return: 0, -ENOSPC when the limit is reached or the filesystem is full,
 * -EDQUOT when the owner's quota is, -EBUSY when @nowait and growing
 * would wait for a frozen filesystem, or another negative errno (the
 * filesystem failed growing the file, or memory ran out).
 */
int vss_store_alloc_slot(struct vss_store *store, u32 *slot, bool nowait)
{
	u64 end;
	int ret;

	ret = ida_alloc_max(&store->slots, store->max_slots - 1, GFP_NOIO);
	if (ret < 0) {
		vss_store_note_full(store, ret);
		return ret;
	}
	*slot = ret;
	end = ((u64)ret + 1) << store->chunk_shift;
	if (store->file && end > READ_ONCE(store->size)) {
		ret = vss_store_grow(store, end, nowait);
		if (ret) {
			ida_free(&store->slots, *slot);
			vss_store_note_full(store, ret);
			return ret;
		}
	}
	kref_get(&store->kref);
	atomic_inc(&store->used_slots);
	vss_store_check_low(store);
	return 0;
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

sector_t vss_store_sector(struct vss_store *store, u32 slot)
{
	return (sector_t)slot << (store->chunk_shift - SECTOR_SHIFT);
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
 * @copy: a copy-on-write's: a write to a file store fails with -EBUSY
 *	  rather than wait for its frozen filesystem, and bypasses the page
 *	  cache where the file allows it (see struct vss_store)
 *
 * Return: 0 or a negative errno.
 */
int vss_store_rw_bvec(struct vss_store *store, u32 slot, struct bio_vec *bvec,
		      unsigned int nr_bvec, size_t skip, unsigned int bytes,
		      bool write, bool copy)
{
	loff_t pos = (loff_t)slot << store->chunk_shift;
	unsigned int flags = 0;

	if (store->kind == VSS_STORAGE_BLOCK)
		return vss_bdev_rw_bvec(store->handle.bdev,
					vss_store_sector(store, slot), bvec,
					nr_bvec, skip, bytes, write);
	if (copy) {
		flags |= VSS_FILE_NOWAIT;
		/* Only a device's last, partial chunk may be unaligned. */
		if (store->direct_align &&
		    IS_ALIGNED(pos | skip | bytes, store->direct_align))
			flags |= VSS_FILE_DIRECT;
	}
	return vss_file_rw(store->file, pos, bvec, nr_bvec, skip, bytes, write,
			   flags);
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
 * vss_store_file_rw_bio - read or write a file store from or into a bio
 * @store: a FILE or TMPFILE store
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
int vss_store_file_rw_bio(struct vss_store *store, u32 slot, u32 offset,
			  struct bio *bio, bool write)
{
	return vss_file_rw_bio(store->file,
			       ((loff_t)slot << store->chunk_shift) + offset,
			       bio, write);
}

void vss_store_exit(void)
{
	WARN_ON(!xa_empty(&vss_stores));
	xa_destroy(&vss_stores);
}
