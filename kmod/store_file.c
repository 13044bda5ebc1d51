// SPDX-License-Identifier: GPL-2.0
/*
 * The file backends: slot N is the chunk at N chunks into a regular file,
 * named (VSS_STORAGE_FILE) or unnamed in a directory (VSS_STORAGE_TMPFILE),
 * read and written through the VFS and grown with fallocate() in steps up
 * to the limit.
 */
#include "vss.h"
#include "store.h"
#include <linux/falloc.h>
#include <linux/slab.h>

struct vss_store_file {
	struct file *file;
	/*
	 * Copies go to the file with direct I/O, bypassing the page cache,
	 * when the file allows it: 0, or the alignment that direct I/O needs
	 * (the filesystem device's logical block size); fixed. Measured in
	 * Documentation/performance.rst: first writes go faster and no dirty
	 * copies pile up in memory. Image I/O stays buffered.
	 */
	unsigned int direct_align;
	/* Serialises growth; store->size is written under it. */
	struct mutex grow_lock;
};

static struct vss_store_file *vss_store_file(const struct vss_store *store)
{
	return store->private;
}

static bool vss_store_file_accepts(struct inode *inode)
{
	return S_ISREG(inode->i_mode);
}

static bool vss_store_tmpfile_accepts(struct inode *inode)
{
	return S_ISDIR(inode->i_mode);
}

static int vss_store_file_do_open(struct vss_store *store, const char *path,
				  bool directory,
				  struct netlink_ext_ack *extack)
{
	struct vss_store_file *sf;
	struct file *file;

	sf = kzalloc(sizeof(*sf), GFP_KERNEL);
	if (!sf)
		return -ENOMEM;
	mutex_init(&sf->grow_lock);
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
		kfree(sf);
		if (directory)
			NL_SET_ERR_MSG(extack,
				       "cannot create an unnamed file in the storage directory");
		else
			NL_SET_ERR_MSG(extack, "cannot open the storage file");
		return PTR_ERR(file);
	}
	sf->file = file;
	store->private = sf;
	store->backing = file_inode(file)->i_sb->s_bdev;
	if ((file->f_mode & FMODE_CAN_ODIRECT) && store->backing)
		sf->direct_align = bdev_logical_block_size(store->backing);
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
	store->size = i_size_read(file_inode(file));
	return 0;
}

static int vss_store_file_open(struct vss_store *store, const char *path,
			       struct netlink_ext_ack *extack)
{
	return vss_store_file_do_open(store, path, false, extack);
}

static int vss_store_tmpfile_open(struct vss_store *store, const char *path,
				  struct netlink_ext_ack *extack)
{
	if (!store->limit) {
		NL_SET_ERR_MSG(extack,
			       "storage limit is required for a storage directory");
		return -EINVAL;
	}
	return vss_store_file_do_open(store, path, true, extack);
}

static void vss_store_file_close(struct vss_store *store)
{
	struct vss_store_file *sf = vss_store_file(store);

	if (!sf)
		return;
	fput(sf->file);
	kfree(sf);
}

static u64 vss_store_grow_step(const struct vss_store *store)
{
	u64 step = clamp_t(u64, store->limit / 16, SZ_16M, SZ_1G);

	return round_up(step, 1ULL << store->chunk_shift);
}

/*
 * Reserves [@offset, @offset + @len) of the store's file. As vfs_fallocate()
 * but with the freeze protection taken as vss_file_write() takes it (see
 * vss_file_freeze_protect()), so that copy-on-write never waits for a
 * frozen filesystem. The store's file is vss's own, opened for writing
 * and checked at open; what vfs_fallocate() checks that may change since
 * is checked here.
 */
static int vss_store_fallocate(struct file *file, loff_t offset, loff_t len,
			       bool nowait)
{
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
 * Reserves room up to @want bytes (rounded up to a growth step). With
 * @nowait, fails with -EBUSY rather than wait for a frozen filesystem.
 */
static int vss_store_file_reserve(struct vss_store *store, u64 want,
				  bool nowait)
{
	struct vss_store_file *sf = vss_store_file(store);
	u64 new_size;
	int ret = 0;

	mutex_lock(&sf->grow_lock);
	if (want <= store->size)
		goto out;
	new_size = min(store->limit,
		       round_up(want, vss_store_grow_step(store)));
	ret = vss_store_fallocate(sf->file, store->size,
				  new_size - store->size, nowait);
	if (!ret)
		WRITE_ONCE(store->size, new_size);
out:
	mutex_unlock(&sf->grow_lock);
	return ret;
}

/* A named file is shared; an unnamed file never is. */
static bool vss_store_file_same_space(const struct vss_store *store,
				      struct inode *inode)
{
	return file_inode(vss_store_file(store)->file) == inode;
}

static int vss_store_file_rw_bvec(struct vss_store *store, u32 slot,
				  struct bio_vec *bvec, unsigned int nr_bvec,
				  size_t skip, unsigned int bytes, bool write,
				  bool copy)
{
	struct vss_store_file *sf = vss_store_file(store);
	loff_t pos = vss_store_slot_pos(store, slot);
	unsigned int flags = 0;

	if (copy) {
		flags |= VSS_FILE_NOWAIT;
		/* Only a device's last, partial chunk may be unaligned. */
		if (sf->direct_align &&
		    IS_ALIGNED(pos | skip | bytes, sf->direct_align))
			flags |= VSS_FILE_DIRECT;
	}
	return vss_file_rw(sf->file, pos, bvec, nr_bvec, skip, bytes, write,
			   flags);
}

static int vss_store_file_rw_bio(struct vss_store *store, u32 slot,
				 u32 offset, struct bio *bio, bool write)
{
	return vss_file_rw_bio(vss_store_file(store)->file,
			       vss_store_slot_pos(store, slot) + offset, bio,
			       write);
}

const struct vss_store_ops vss_store_file_ops = {
	.kind = VSS_STORAGE_FILE,
	.accepts = vss_store_file_accepts,
	.open = vss_store_file_open,
	.close = vss_store_file_close,
	.reserve = vss_store_file_reserve,
	.same_space = vss_store_file_same_space,
	.rw_bvec = vss_store_file_rw_bvec,
	.rw_bio = vss_store_file_rw_bio,
	.freezable = true,
};

const struct vss_store_ops vss_store_tmpfile_ops = {
	.kind = VSS_STORAGE_TMPFILE,
	.accepts = vss_store_tmpfile_accepts,
	.open = vss_store_tmpfile_open,
	.close = vss_store_file_close,
	.reserve = vss_store_file_reserve,
	.rw_bvec = vss_store_file_rw_bvec,
	.rw_bio = vss_store_file_rw_bio,
	.freezable = true,
};
