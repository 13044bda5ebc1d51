// SPDX-License-Identifier: GPL-2.0
/*
 * Image devices. "vssN" is a bio-based disk with its origin's size and
 * block sizes. Reads resolve each chunk through the snapshot's private
 * overlay, then the exception chain, then the origin; writes go to the
 * overlay in the snapshot's store, so a journal can be replayed on the
 * image without touching the origin or the other snapshots.
 *
 * Image I/O runs in vss_image_wq under vss_image_srcu, so that deleting a
 * snapshot can wait for every request that still uses its origin, chain
 * or slots. Deleted and failed snapshots answer with an I/O error.
 */
#include "vss.h"
#include "image.h"
#include "snapshot.h"
#include "origin.h"
#include "store.h"
#include "cow.h"
#include "intercept.h"
#include <linux/idr.h>
#include <linux/slab.h>

/* Chunk pieces of one request in flight at once. */
#define VSS_IMAGE_BATCH	32

static int vss_image_major;
static DEFINE_IDA(vss_image_ida);

struct vss_image_io {
	struct work_struct work;
	struct vss_image *image;
	struct bio *bio;
};

/* Completion of the clones of one batch. */
struct vss_image_wait {
	atomic_t pending;
	blk_status_t status;
	struct completion done;
};

static const struct block_device_operations vss_image_fops;

bool vss_image_is_disk(struct gendisk *disk)
{
	return disk->fops == &vss_image_fops;
}

unsigned int vss_image_openers(struct vss_image *image)
{
	return atomic_read(&image->openers);
}

static void vss_image_clone_endio(struct bio *clone)
{
	struct vss_image_wait *wait = clone->bi_private;

	if (clone->bi_status)
		WRITE_ONCE(wait->status, clone->bi_status);
	bio_put(clone);
	if (atomic_dec_and_test(&wait->pending))
		complete(&wait->done);
}

/*
 * Sends bytes [@offset, @offset + @size) (sectors) of @bio to @bdev at
 * @sector, asynchronously, counted in @wait.
 */
static void vss_image_clone_to(struct bio *bio, sector_t offset,
			       sector_t size, struct block_device *bdev,
			       sector_t sector, struct vss_image_wait *wait)
{
	struct bio *clone;

	clone = bio_alloc_clone(bdev, bio, GFP_NOIO, &vss_bio_set);
	bio_trim(clone, offset, size);
	clone->bi_iter.bi_sector = sector;
	clone->bi_opf &= ~(REQ_PREFLUSH | REQ_FUA);
	clone->bi_end_io = vss_image_clone_endio;
	clone->bi_private = wait;
	atomic_inc(&wait->pending);
	vss_submit_bio_direct(clone);
}

/* Reads or writes part of @bio from or into a file store, synchronously. */
static int vss_image_file_rw(struct vss_store *store, u32 slot, u32 offset,
			     struct bio *bio, sector_t bio_offset,
			     sector_t size, bool write)
{
	struct bvec_iter iter = bio->bi_iter;
	struct bio_vec *bvec;
	unsigned int nr = 0;
	struct bio_vec bv;
	struct bvec_iter it;

	bio_advance_iter(bio, &iter, bio_offset << SECTOR_SHIFT);
	iter.bi_size = size << SECTOR_SHIFT;
	/* The segments of the piece, as an array the VFS can walk. */
	__bio_for_each_segment(bv, bio, it, iter)
		nr++;
	bvec = kmalloc_array(nr, sizeof(*bvec), GFP_NOIO);
	if (!bvec)
		return -ENOMEM;
	nr = 0;
	__bio_for_each_segment(bv, bio, it, iter)
		bvec[nr++] = bv;
	nr = vss_store_rw_bvec(store, slot, offset, bvec, nr, 0,
			       size << SECTOR_SHIFT, write);
	kfree(bvec);
	return nr;
}

/* Sends a piece of @bio to or from a store slot. */
static int vss_image_piece_store(struct bio *bio, sector_t bio_offset,
				 sector_t size, unsigned long exc,
				 u32 offset_bytes, struct vss_image_wait *wait)
{
	struct vss_store *store = vss_store_get_by_id(vss_exc_store_id(exc));
	u32 slot = vss_exc_slot(exc);

	if (store->kind == VSS_STORAGE_BLOCK) {
		vss_image_clone_to(bio, bio_offset, size, store->handle.bdev,
				   vss_store_sector(store, slot) +
				   (offset_bytes >> SECTOR_SHIFT), wait);
		return 0;
	}
	return vss_image_file_rw(store, slot, offset_bytes, bio, bio_offset,
				 size, op_is_write(bio_op(bio)));
}

static void vss_image_wait_batch(struct vss_image_wait *wait)
{
	if (!atomic_dec_and_test(&wait->pending))
		wait_for_completion(&wait->done);
}

static void vss_image_wait_init(struct vss_image_wait *wait)
{
	atomic_set(&wait->pending, 1);
	wait->status = BLK_STS_OK;
	init_completion(&wait->done);
}

/*
 * Reads @bio chunk by chunk. Chunks that still read from the origin are
 * pinned there (see vss_pending_reader_get()) and consecutive ones go out
 * as one clone; a plug lets the block layer merge the rest.
 */
static blk_status_t vss_image_read(struct vss_snapshot *snap, struct bio *bio)
{
	struct vss_origin *origin = snap->origin;
	unsigned int shift = origin->chunk_shift - SECTOR_SHIFT;
	struct vss_pending *readers[VSS_IMAGE_BATCH];
	sector_t pos = bio->bi_iter.bi_sector;
	sector_t end = bio_end_sector(bio);
	sector_t start = pos;
	struct vss_image_wait wait;
	blk_status_t status = BLK_STS_OK;
	struct blk_plug plug;

	while (pos < end && status == BLK_STS_OK) {
		unsigned int nr_readers = 0;
		sector_t run = pos;	/* start of a run read from the origin */

		vss_image_wait_init(&wait);
		blk_start_plug(&plug);
		while (pos < end && nr_readers < VSS_IMAGE_BATCH) {
			u64 chunk = pos >> shift;
			sector_t next = min_t(sector_t, (chunk + 1) << shift,
					      end);
			struct vss_pending *pending = NULL;
			unsigned long exc = 0;
			void *entry;
			int ret;

			entry = xa_load(&snap->overlay, chunk);
			if (entry)
				exc = xa_to_value(entry);
			else
				pending = vss_pending_reader_get(origin, snap,
								 chunk, &exc);
			if (pending) {
				readers[nr_readers++] = pending;
				pos = next;
				continue;
			}
			if (run < pos)
				vss_image_clone_to(bio, run - start, pos - run,
						   origin->handle.bdev, run,
						   &wait);
			ret = vss_image_piece_store(bio, pos - start, next - pos,
						    exc, (pos - (chunk << shift)) <<
						    SECTOR_SHIFT, &wait);
			pos = next;
			run = pos;
			if (ret) {
				status = errno_to_blk_status(ret);
				break;
			}
		}
		if (status == BLK_STS_OK && run < pos)
			vss_image_clone_to(bio, run - start, pos - run,
					   origin->handle.bdev, run, &wait);
		blk_finish_plug(&plug);
		vss_image_wait_batch(&wait);
		while (nr_readers)
			vss_pending_reader_put(origin, readers[--nr_readers]);
		if (wait.status)
			status = wait.status;
	}
	return status;
}

/* Fills a new overlay slot with the snapshot's current view of @chunk. */
static int vss_image_fill_slot(struct vss_snapshot *snap, u64 chunk,
			       struct vss_store *store, u32 slot)
{
	struct vss_origin *origin = snap->origin;
	sector_t sector = chunk << (origin->chunk_shift - SECTOR_SHIFT);
	unsigned int bytes = min_t(u64, 1U << origin->chunk_shift,
				   (u64)(origin->nr_sectors - sector) <<
				   SECTOR_SHIFT);
	struct vss_pending *pending;
	struct vss_chunk_buf *buf;
	unsigned long exc;
	int ret;

	buf = vss_chunk_buf_alloc(bytes);
	if (!buf)
		return -ENOMEM;
	pending = vss_pending_reader_get(origin, snap, chunk, &exc);
	if (pending) {
		ret = vss_bdev_rw(origin->handle.bdev, sector, buf, bytes,
				  false);
		vss_pending_reader_put(origin, pending);
	} else {
		ret = vss_store_rw_buf(vss_store_get_by_id(vss_exc_store_id(exc)),
				       vss_exc_slot(exc), buf, false);
	}
	if (!ret)
		ret = vss_store_rw_buf(store, slot, buf, true);
	vss_chunk_buf_free(buf);
	return ret;
}

/* The overlay exception of @chunk, made on the first write to it. */
static int vss_image_overlay_get(struct vss_snapshot *snap, u64 chunk,
				 bool whole_chunk, unsigned long *exc)
{
	struct vss_store *store = snap->set->store;
	void *entry;
	u32 slot;
	int ret;

	entry = xa_load(&snap->overlay, chunk);
	if (entry) {
		*exc = xa_to_value(entry);
		return 0;
	}
	mutex_lock(&snap->overlay_lock);
	entry = xa_load(&snap->overlay, chunk);
	if (entry) {
		*exc = xa_to_value(entry);
		goto out;
	}
	ret = vss_store_alloc_slot(store, &slot);
	if (ret)
		goto out_unlock;
	*exc = vss_exc_pack(store, slot);
	ret = whole_chunk ? 0 : vss_image_fill_slot(snap, chunk, store, slot);
	if (!ret)
		ret = xa_insert(&snap->overlay, chunk, xa_mk_value(*exc),
				GFP_NOIO);
	if (ret) {
		vss_store_free_exc(*exc);
		goto out_unlock;
	}
out:
	ret = 0;
out_unlock:
	mutex_unlock(&snap->overlay_lock);
	return ret;
}

static blk_status_t vss_image_write(struct vss_snapshot *snap,
				    struct bio *bio)
{
	unsigned int shift = snap->origin->chunk_shift - SECTOR_SHIFT;
	sector_t pos = bio->bi_iter.bi_sector;
	sector_t end = bio_end_sector(bio);
	struct vss_image_wait wait;
	int ret = 0;

	vss_image_wait_init(&wait);
	while (pos < end) {
		u64 chunk = pos >> shift;
		sector_t chunk_start = chunk << shift;
		sector_t next = min_t(sector_t, chunk_start + (1 << shift),
				      end);
		bool whole = pos == chunk_start &&
			     next == chunk_start + (1 << shift);
		unsigned long exc;

		ret = vss_image_overlay_get(snap, chunk, whole, &exc);
		if (ret)
			break;
		ret = vss_image_piece_store(bio, pos - bio->bi_iter.bi_sector,
					    next - pos, exc,
					    (pos - chunk_start) << SECTOR_SHIFT,
					    &wait);
		if (ret)
			break;
		pos = next;
	}
	vss_image_wait_batch(&wait);
	if (ret)
		return errno_to_blk_status(ret);
	return wait.status;
}

static void vss_image_io_work(struct work_struct *work)
{
	struct vss_image_io *io = container_of(work, struct vss_image_io,
					       work);
	struct vss_snapshot *snap = io->image->snap;
	struct bio *bio = io->bio;
	blk_status_t status;
	int idx;

	kfree(io);
	idx = srcu_read_lock(&vss_image_srcu);
	if (READ_ONCE(snap->image_dead) || vss_snapshot_failed(snap))
		status = BLK_STS_IOERR;
	else if (!bio_sectors(bio))
		status = BLK_STS_OK;	/* flush: images are not persistent */
	else if (bio_op(bio) == REQ_OP_READ)
		status = vss_image_read(snap, bio);
	else if (bio_op(bio) == REQ_OP_WRITE)
		status = vss_image_write(snap, bio);
	else
		status = BLK_STS_NOTSUPP;
	srcu_read_unlock(&vss_image_srcu, idx);
	bio->bi_status = status;
	bio_endio(bio);
}

static void vss_image_submit_bio(struct bio *bio)
{
	struct vss_image *image = bio->bi_bdev->bd_disk->private_data;
	struct vss_image_io *io;

	io = kmalloc(sizeof(*io), bio->bi_opf & REQ_NOWAIT ?
		     GFP_NOWAIT : GFP_NOIO);
	if (!io) {
		bio_wouldblock_error(bio);
		return;
	}
	io->image = image;
	io->bio = bio;
	INIT_WORK(&io->work, vss_image_io_work);
	queue_work(vss_image_wq, &io->work);
}

static int vss_image_open(VSS_BDOPS_OPEN_ARGS)
{
	struct vss_image *image = VSS_BDOPS_OPEN_DISK->private_data;

	atomic_inc(&image->openers);
	return 0;
}

static void vss_image_release(VSS_BDOPS_RELEASE_ARGS)
{
	struct vss_image *image = disk->private_data;

	atomic_dec(&image->openers);
}

static void vss_image_free_disk(struct gendisk *disk)
{
	struct vss_image *image = disk->private_data;

	ida_free(&vss_image_ida, image->index);
	vss_snapshot_put(image->snap);
	kfree(image);
}

static const struct block_device_operations vss_image_fops = {
	.owner = THIS_MODULE,
	.submit_bio = vss_image_submit_bio,
	.open = vss_image_open,
	.release = vss_image_release,
	.free_disk = vss_image_free_disk,
};

static struct vss_snapshot *vss_image_dev_snap(struct device *dev)
{
	struct vss_image *image = dev_to_disk(dev)->private_data;

	return image->snap;
}

/* sysfs attributes under /sys/block/vssN/vss/, read by the udev rules. */
static ssize_t origin_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%s\n", vss_image_dev_snap(dev)->origin->name);
}
static DEVICE_ATTR_RO(origin);

static ssize_t index_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%u\n", vss_image_dev_snap(dev)->index);
}
static DEVICE_ATTR_RO(index);

static ssize_t snapshot_id_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%pUb\n", &vss_image_dev_snap(dev)->id);
}
static DEVICE_ATTR_RO(snapshot_id);

static struct attribute *vss_image_attrs[] = {
	&dev_attr_origin.attr,
	&dev_attr_index.attr,
	&dev_attr_snapshot_id.attr,
	NULL,
};

static const struct attribute_group vss_image_attr_group = {
	.name = "vss",
	.attrs = vss_image_attrs,
};

static const struct attribute_group *vss_image_attr_groups[] = {
	&vss_image_attr_group,
	NULL,
};

/**
 * vss_image_create - expose @snap as a block device
 * @snap: a committed snapshot
 *
 * Return: 0 or a negative errno.
 */
int vss_image_create(struct vss_snapshot *snap)
{
	struct block_device *origin_bdev = snap->origin->handle.bdev;
	struct vss_image *image;
	struct gendisk *disk;
	int ret;

	image = kzalloc(sizeof(*image), GFP_KERNEL);
	if (!image)
		return -ENOMEM;
	ret = ida_alloc_max(&vss_image_ida, MINORMASK, GFP_KERNEL);
	if (ret < 0)
		goto err_free;
	image->index = ret;
	image->snap = snap;

	disk = vss_alloc_disk(bdev_logical_block_size(origin_bdev),
			      bdev_physical_block_size(origin_bdev), 0);
	if (!disk) {
		ret = -ENOMEM;
		goto err_ida;
	}
	disk->major = vss_image_major;
	disk->first_minor = image->index;
	disk->minors = 1;
	disk->fops = &vss_image_fops;
	disk->private_data = image;
	disk->flags |= GENHD_FL_NO_PART;
	snprintf(disk->disk_name, DISK_NAME_LEN, "vss%d", image->index);
	set_capacity(disk, snap->origin->nr_sectors);
	image->disk = disk;

	kref_get(&snap->kref);
	ret = device_add_disk(NULL, disk, vss_image_attr_groups);
	if (ret) {
		/* free_disk is not called for a disk never added. */
		vss_snapshot_put(snap);
		put_disk(disk);
		goto err_ida;
	}
	snap->image = image;
	return 0;

err_ida:
	ida_free(&vss_image_ida, image->index);
err_free:
	kfree(image);
	return ret;
}

/*
 * Removes the device. Openers that stay get I/O errors; the image and
 * its reference on the snapshot go with the last of them.
 */
void vss_image_remove(struct vss_image *image)
{
	WRITE_ONCE(image->snap->image_dead, true);
	del_gendisk(image->disk);
	put_disk(image->disk);
}

int __init vss_image_init(void)
{
	vss_image_major = register_blkdev(0, "vss");
	return vss_image_major < 0 ? vss_image_major : 0;
}

void vss_image_exit(void)
{
	unregister_blkdev(vss_image_major, "vss");
	ida_destroy(&vss_image_ida);
}
