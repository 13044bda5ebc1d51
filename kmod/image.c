// SPDX-License-Identifier: GPL-2.0
/*
 * Image devices. "vssN" is a bio-based disk with its origin's size and
 * block sizes. Reads resolve each chunk through the snapshot's private
 * overlay, then the exception chain, then the origin; writes go to the
 * overlay in the snapshot's store, so a journal can be replayed on the
 * image without touching the origin or the other snapshots.
 *
 * An image request is cut into pieces, each a run of chunks with one
 * source: the origin, or consecutive slots of one store. A piece is a
 * clone of the request's bio, and all the pieces of a request are in
 * flight at once: origin and block-store pieces are submitted, file-store
 * pieces are read or written through the VFS by a worker each. The request
 * completes when its last piece does.
 *
 * Requests are cut in vss_image_wq, one work item each: the first write
 * to a chunk fills its overlay slot with the chunk's old data
 * synchronously, and pinning allocates. The worker never waits for the
 * pieces it sends, and the submitter goes on while it cuts (on the test
 * machine, cutting reads in the submitter was slower: see
 * Documentation/performance.rst).
 *
 * A request holds vss_image_srcu from its submission to its completion,
 * so that deleting a snapshot waits for every request that still uses its
 * origin, chain or slots. Origin chunks stay pinned (see
 * vss_pending_reader_get()) until the piece reading them completes, so
 * that copy-on-write cannot overwrite them under the read. Unpinning takes
 * the origin's cow_lock, which is not taken in interrupt context, so it
 * runs in a worker (vss_image_unpin_wq) after the request has completed:
 * the data is in by then, and the request's hold on vss_image_srcu lasts
 * until the last piece is unpinned. Deleted and failed snapshots answer
 * with an I/O error.
 *
 * Memory: requests and pieces come from mempools, so they are always
 * allocated in the end, by waiting for earlier requests to complete
 * (clones are allocated in a worker, never under current->bio_list).
 * Their number follows the image bios in flight, which the submitters
 * bound; nothing is queued that is not already in flight.
 */
#include "vss.h"
#include "image.h"
#include "snapshot.h"
#include "origin.h"
#include "store.h"
#include "cow.h"
#include "intercept.h"
#include "cbt.h"
#include <linux/idr.h>
#include <linux/llist.h>
#include <linux/mempool.h>
#include <linux/slab.h>

/* Origin chunks one piece may pin; a longer run goes out as more pieces. */
#define VSS_IMAGE_PIECE_PINS	32
/* Requests and pieces kept in reserve, for progress under memory pressure. */
#define VSS_IMAGE_RESERVE	16

static int vss_image_major;
static DEFINE_IDA(vss_image_ida);

/* One bio sent to an image. */
struct vss_image_req {
	struct bio *bio;
	struct vss_snapshot *snap;
	int srcu_idx;			/* vss_image_srcu, held until released */
	atomic_t pieces;		/* I/O in flight, plus one while cutting */
	atomic_t holds;			/* 1 until @bio ends, + pinning pieces */
	blk_status_t status;		/* an error of some piece, else OK */
	struct work_struct work;	/* cutting, in vss_image_wq */
};

/* A run of a request with one source: the front pad of a clone. */
struct vss_image_piece {
	struct vss_image_req *req;
	unsigned long exc;		/* its first slot; 0: the origin */
	u32 offset;			/* bytes into that slot */
	unsigned int nr_pins;
	union {
		struct work_struct work;	/* a file store's VFS I/O */
		struct llist_node unpin_node;	/* done, on vss_image_unpinning */
	};
	struct vss_pending *pins[VSS_IMAGE_PIECE_PINS];
	struct bio clone;		/* last: the bio set's front pad ends here */
};

/* The piece being cut from a request, not sent yet. */
struct vss_image_cut {
	struct vss_image_req *req;
	struct vss_image_piece *piece;
	sector_t start;			/* where the piece starts (image sector) */
	sector_t end;			/* and where it ends so far */
	unsigned long next_exc;		/* the exception that would extend it */
};

static struct bio_set vss_image_bio_set;
static mempool_t vss_image_req_pool;

/*
 * Completed pieces whose origin chunks are still pinned, and the one work
 * item that unpins them; highpri and bound, so that it runs soon and on
 * the CPU that completed them.
 */
static struct workqueue_struct *vss_image_unpin_wq;
static LLIST_HEAD(vss_image_unpinning);
static void vss_image_unpin_work(struct work_struct *work);
static DECLARE_WORK(vss_image_unpin, vss_image_unpin_work);

static const struct block_device_operations vss_image_fops;

bool vss_image_is_disk(struct gendisk *disk)
{
	return disk->fops == &vss_image_fops;
}

unsigned int vss_image_openers(struct vss_image *image)
{
	return atomic_read(&image->openers);
}

static void vss_image_req_error(struct vss_image_req *req,
				blk_status_t status)
{
	WRITE_ONCE(req->status, status);
}

/* Drops a hold on @req; the last one ends its use of vss_image_srcu. */
static void vss_image_req_release(struct vss_image_req *req)
{
	int idx = req->srcu_idx;

	if (!atomic_dec_and_test(&req->holds))
		return;
	mempool_free(req, &vss_image_req_pool);
	__acquire(&vss_image_srcu);	/* held by the request until here */
	vss_srcu_up_read(&vss_image_srcu, idx);
}

/* The I/O of a piece, or the cutting, is over; the last one ends the bio. */
static void vss_image_req_put(struct vss_image_req *req)
{
	struct bio *bio = req->bio;

	if (!atomic_dec_and_test(&req->pieces))
		return;
	bio->bi_status = READ_ONCE(req->status);
	bio_endio(bio);
	vss_image_req_release(req);
}

static void vss_image_piece_done(struct vss_image_piece *piece)
{
	struct vss_image_req *req = piece->req;

	bio_put(&piece->clone);
	vss_image_req_put(req);
}

/*
 * Unpins the origin chunks of pieces whose reads are complete. Their
 * clones go only now: a clone never touches the bio it was cloned from
 * (which may be gone) once its own I/O is over.
 */
static void vss_image_unpin_work(struct work_struct *work)
{
	struct llist_node *done = llist_del_all(&vss_image_unpinning);
	struct vss_image_piece *piece, *next;

	llist_for_each_entry_safe(piece, next, done, unpin_node) {
		struct vss_image_req *req = piece->req;
		struct vss_origin *origin = req->snap->origin;

		while (piece->nr_pins)
			vss_pending_reader_put(origin,
					       piece->pins[--piece->nr_pins]);
		bio_put(&piece->clone);
		vss_image_req_release(req);
	}
}

static void vss_image_clone_endio(struct bio *clone)
{
	struct vss_image_piece *piece = container_of(clone,
						     struct vss_image_piece,
						     clone);
	struct vss_image_req *req = piece->req;

	if (clone->bi_status)
		vss_image_req_error(req, clone->bi_status);
	if (!piece->nr_pins) {
		vss_image_piece_done(piece);
		return;
	}
	/* The data is in: the request may complete before the unpinning. */
	if (llist_add(&piece->unpin_node, &vss_image_unpinning))
		queue_work(vss_image_unpin_wq, &vss_image_unpin);
	vss_image_req_put(req);
}

/* A file store's piece, in a worker of its own. */
static void vss_image_file_work(struct work_struct *work)
{
	struct vss_image_piece *piece = container_of(work,
						     struct vss_image_piece,
						     work);
	struct vss_store *store;
	int ret;

	store = vss_store_get_by_id(vss_exc_store_id(piece->exc));
	ret = vss_store_file_rw_bio(store, vss_exc_slot(piece->exc),
				    piece->offset, &piece->clone,
				    op_is_write(bio_op(&piece->clone)));
	if (ret)
		vss_image_req_error(piece->req, errno_to_blk_status(ret));
	vss_image_piece_done(piece);
}

/* Starts a piece at @pos, from @exc (0: the origin) at @offset bytes. */
static void vss_image_cut_start(struct vss_image_cut *cut, sector_t pos,
				unsigned long exc, u32 offset)
{
	struct vss_image_req *req = cut->req;
	struct block_device *bdev = req->snap->origin->handle.bdev;
	struct vss_image_piece *piece;
	struct bio *clone;

	if (exc) {
		struct vss_store *store;

		store = vss_store_get_by_id(vss_exc_store_id(exc));
		if (store->kind == VSS_STORAGE_BLOCK)
			bdev = store->handle.bdev;
	}
	/* Never fails: GFP_NOIO waits for the bio set's reserve. */
	clone = bio_alloc_clone(bdev, req->bio, GFP_NOIO, &vss_image_bio_set);
	clone->bi_opf &= ~(REQ_PREFLUSH | REQ_FUA);
	clone->bi_end_io = vss_image_clone_endio;
	piece = container_of(clone, struct vss_image_piece, clone);
	piece->req = req;
	piece->exc = exc;
	piece->offset = offset;
	piece->nr_pins = 0;
	atomic_inc(&req->pieces);
	cut->piece = piece;
	cut->start = pos;
	cut->end = pos;
}

/* Sends the piece being cut, which ends at cut->end. */
static void vss_image_cut_send(struct vss_image_cut *cut)
{
	struct vss_image_piece *piece = cut->piece;
	struct bio *bio = cut->req->bio;
	struct bio *clone = &piece->clone;
	struct vss_store *store;

	cut->piece = NULL;
	bio_trim(clone, cut->start - bio->bi_iter.bi_sector,
		 cut->end - cut->start);
	if (!piece->exc) {
		clone->bi_iter.bi_sector = cut->start;
		vss_submit_bio_direct(clone);
		return;
	}
	store = vss_store_get_by_id(vss_exc_store_id(piece->exc));
	if (store->kind == VSS_STORAGE_BLOCK) {
		clone->bi_iter.bi_sector =
			vss_store_sector(store, vss_exc_slot(piece->exc)) +
			(piece->offset >> SECTOR_SHIFT);
		vss_submit_bio_direct(clone);
		return;
	}
	INIT_WORK(&piece->work, vss_image_file_work);
	queue_work(vss_image_wq, &piece->work);
}

/*
 * Adds sectors [@pos, @next) of the request, which live in @exc at
 * @offset bytes into its slot (@exc 0: on the origin, pinned by @pin), to
 * the piece being cut when they continue it; else sends that piece and
 * starts another.
 */
static void vss_image_cut_add(struct vss_image_cut *cut, sector_t pos,
			      sector_t next, unsigned long exc, u32 offset,
			      struct vss_pending *pin)
{
	struct vss_image_piece *piece = cut->piece;

	if (piece && (exc != cut->next_exc ||
		      (pin && piece->nr_pins == VSS_IMAGE_PIECE_PINS)))
		vss_image_cut_send(cut);
	if (!cut->piece)
		vss_image_cut_start(cut, pos, exc, offset);
	piece = cut->piece;
	if (pin) {
		if (!piece->nr_pins)
			atomic_inc(&cut->req->holds);
		piece->pins[piece->nr_pins++] = pin;
	}
	cut->end = next;
	/* The origin continues itself; a store run, with the next slot. */
	cut->next_exc = exc ? exc + 1 : 0;
}

/*
 * Cuts a read chunk by chunk. Chunks that still read from the origin are
 * pinned there, and consecutive ones go out as one piece, as do chunks in
 * consecutive slots of a store.
 */
static void vss_image_read(struct vss_image_req *req)
{
	struct vss_snapshot *snap = req->snap;
	struct vss_origin *origin = snap->origin;
	unsigned int shift = origin->chunk_shift - SECTOR_SHIFT;
	struct bio *bio = req->bio;
	sector_t pos = bio->bi_iter.bi_sector;
	sector_t end = bio_end_sector(bio);
	struct vss_image_cut cut = { .req = req };

	while (pos < end) {
		u64 chunk = pos >> shift;
		sector_t chunk_start = chunk << shift;
		sector_t next = min_t(sector_t, chunk_start + (1 << shift),
				      end);
		struct vss_pending *pin = NULL;
		unsigned long exc;
		void *entry;

		entry = xa_load(&snap->overlay, chunk);
		if (entry)
			exc = xa_to_value(entry);
		else
			pin = vss_pending_reader_get(origin, snap, chunk, &exc);
		vss_image_cut_add(&cut, pos, next, exc,
				  (pos - chunk_start) << SECTOR_SHIFT, pin);
		pos = next;
	}
	if (cut.piece)
		vss_image_cut_send(&cut);
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

/* Cuts a write chunk by chunk, making each chunk's overlay slot first. */
static void vss_image_write(struct vss_image_req *req)
{
	struct vss_snapshot *snap = req->snap;
	unsigned int shift = snap->origin->chunk_shift - SECTOR_SHIFT;
	struct bio *bio = req->bio;
	sector_t pos = bio->bi_iter.bi_sector;
	sector_t end = bio_end_sector(bio);
	struct vss_image_cut cut = { .req = req };
	int ret;

	/* A backup taken from this image must copy these blocks again. */
	vss_cbt_mark_image_write(snap->origin, &snap->cbt_generation,
				 snap->cbt_seq, pos, end);
	while (pos < end) {
		u64 chunk = pos >> shift;
		sector_t chunk_start = chunk << shift;
		sector_t next = min_t(sector_t, chunk_start + (1 << shift),
				      end);
		bool whole = pos == chunk_start &&
			     next == chunk_start + (1 << shift);
		unsigned long exc;

		ret = vss_image_overlay_get(snap, chunk, whole, &exc);
		if (ret) {
			vss_image_req_error(req, errno_to_blk_status(ret));
			break;
		}
		vss_image_cut_add(&cut, pos, next, exc,
				  (pos - chunk_start) << SECTOR_SHIFT, NULL);
		pos = next;
	}
	if (cut.piece)
		vss_image_cut_send(&cut);
}

static void vss_image_work(struct work_struct *work)
{
	struct vss_image_req *req = container_of(work, struct vss_image_req,
						 work);
	struct blk_plug plug;

	blk_start_plug(&plug);
	if (bio_op(req->bio) == REQ_OP_WRITE)
		vss_image_write(req);
	else
		vss_image_read(req);
	blk_finish_plug(&plug);
	vss_image_req_put(req);
}

static void vss_image_submit_bio(struct bio *bio)
{
	struct vss_image *image = bio->bi_bdev->bd_disk->private_data;
	struct vss_snapshot *snap = image->snap;
	struct vss_image_req *req;

	req = mempool_alloc(&vss_image_req_pool,
			    bio->bi_opf & REQ_NOWAIT ? GFP_NOWAIT : GFP_NOIO);
	if (!req) {
		bio_wouldblock_error(bio);
		return;
	}
	req->bio = bio;
	req->snap = snap;
	req->status = BLK_STS_OK;
	atomic_set(&req->pieces, 1);
	atomic_set(&req->holds, 1);
	req->srcu_idx = vss_srcu_down_read(&vss_image_srcu);
	/* The request holds it now, until vss_image_req_release(). */
	__release(&vss_image_srcu);
	if (READ_ONCE(snap->image_dead) || vss_snapshot_failed(snap)) {
		req->status = BLK_STS_IOERR;
	} else if (!bio_sectors(bio)) {
		req->status = BLK_STS_OK;	/* images are not persistent */
	} else if (bio_op(bio) != REQ_OP_READ && bio_op(bio) != REQ_OP_WRITE) {
		req->status = BLK_STS_NOTSUPP;
	} else {
		/* The worker drops the cutter's count when it is done. */
		INIT_WORK(&req->work, vss_image_work);
		queue_work(vss_image_wq, &req->work);
		return;
	}
	vss_image_req_put(req);
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
	int ret;

	ret = bioset_init(&vss_image_bio_set, VSS_IMAGE_RESERVE,
			  offsetof(struct vss_image_piece, clone), 0);
	if (ret)
		return ret;
	ret = mempool_init_kmalloc_pool(&vss_image_req_pool, VSS_IMAGE_RESERVE,
					sizeof(struct vss_image_req));
	if (ret)
		goto err_bioset;
	/* WQ_MEM_RECLAIM: copy-on-write, so writeback, may wait for it. */
	vss_image_unpin_wq = alloc_workqueue("vss_image_unpin",
					     WQ_MEM_RECLAIM | WQ_HIGHPRI, 0);
	if (!vss_image_unpin_wq) {
		ret = -ENOMEM;
		goto err_pool;
	}
	vss_image_major = register_blkdev(0, "vss");
	if (vss_image_major < 0) {
		ret = vss_image_major;
		goto err_wq;
	}
	return 0;

err_wq:
	destroy_workqueue(vss_image_unpin_wq);
err_pool:
	mempool_exit(&vss_image_req_pool);
err_bioset:
	bioset_exit(&vss_image_bio_set);
	return ret;
}

/* Every image is gone, and with it every request. */
void vss_image_exit(void)
{
	unregister_blkdev(vss_image_major, "vss");
	ida_destroy(&vss_image_ida);
	/* File pieces end in vss_image_wq, unpinned ones in ours. */
	flush_workqueue(vss_image_wq);
	destroy_workqueue(vss_image_unpin_wq);
	mempool_exit(&vss_image_req_pool);
	bioset_exit(&vss_image_bio_set);
}
