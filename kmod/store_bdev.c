// SPDX-License-Identifier: GPL-2.0
/*
 * The block-device backend: slot N is the chunk at N chunks into a whole
 * device, held open exclusively. Its room is the device from the start.
 */
#include "vss.h"
#include "store.h"
#include <linux/slab.h>

static bool vss_store_bdev_accepts(struct inode *inode)
{
	return S_ISBLK(inode->i_mode);
}

static struct vss_bdev_handle *vss_store_handle(const struct vss_store *store)
{
	return store->private;
}

static int vss_store_bdev_open(struct vss_store *store, const char *path,
			       struct netlink_ext_ack *extack)
{
	struct vss_bdev_handle *handle;
	dev_t dev;
	u64 capacity;
	int ret;

	ret = lookup_bdev(path, &dev);
	if (ret) {
		NL_SET_ERR_MSG(extack, "cannot resolve the storage device");
		return ret;
	}
	handle = kzalloc(sizeof(*handle), GFP_KERNEL);
	if (!handle)
		return -ENOMEM;
	ret = vss_bdev_open(dev, true, store, handle);
	if (ret) {
		kfree(handle);
		if (ret == -ENXIO)
			NL_SET_ERR_MSG(extack,
				       "storage device node names no disk (its driver is not loaded)");
		else
			NL_SET_ERR_MSG(extack,
				       "storage device is in use (mounted or held exclusively)");
		return ret;
	}
	store->private = handle;
	store->backing = handle->bdev;
	capacity = bdev_nr_bytes(handle->bdev);
	if (!store->limit || store->limit > capacity)
		store->limit = capacity;
	store->size = store->limit;
	return 0;
}

static void vss_store_bdev_close(struct vss_store *store)
{
	struct vss_bdev_handle *handle = vss_store_handle(store);

	if (!handle)
		return;
	vss_bdev_close(handle, true, true);
	kfree(handle);
}

static bool vss_store_bdev_same_space(const struct vss_store *store,
				      struct inode *inode)
{
	return S_ISBLK(inode->i_mode) &&
	       vss_store_handle(store)->bdev->bd_dev == inode->i_rdev;
}

static sector_t vss_store_bdev_sector(const struct vss_store *store, u32 slot)
{
	return (sector_t)slot << (store->chunk_shift - SECTOR_SHIFT);
}

static int vss_store_bdev_rw_bvec(struct vss_store *store, u32 slot,
				  struct bio_vec *bvec, unsigned int nr_bvec,
				  size_t skip, unsigned int bytes, bool write,
				  bool copy)
{
	return vss_bdev_rw_bvec(vss_store_handle(store)->bdev,
				vss_store_bdev_sector(store, slot), bvec,
				nr_bvec, skip, bytes, write);
}

static struct block_device *vss_store_bdev_map(struct vss_store *store,
					       u32 slot, u32 offset,
					       sector_t *sector)
{
	*sector = vss_store_bdev_sector(store, slot) + (offset >> SECTOR_SHIFT);
	return vss_store_handle(store)->bdev;
}

const struct vss_store_ops vss_store_bdev_ops = {
	.kind = VSS_STORAGE_BLOCK,
	.accepts = vss_store_bdev_accepts,
	.open = vss_store_bdev_open,
	.close = vss_store_bdev_close,
	.same_space = vss_store_bdev_same_space,
	.rw_bvec = vss_store_bdev_rw_bvec,
	.map = vss_store_bdev_map,
};
