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
 * completes when its last piece does. A read whose origin chunks alternate
 * with store chunks goes out bridged instead (see vss_image_read_bridged()).
 *
 * A read of at least VSS_IMAGE_INLINE_MIN starts being cut in the
 * submitter, and its first piece is sent from there: for a read that is
 * one piece (what a backup's large reads mostly are) a worker hop would
 * only add to its latency. When a second piece starts, the rest of the
 * read is handed to vss_image_wq. Writes and small reads are cut there
 * from the start, one work item each: the first write to a chunk fills
 * its overlay slot with the chunk's old data synchronously, and cutting
 * many pieces, or small reads, there overlaps the submitter (on the test
 * machine, small reads were slower cut in the submitter: see
 * Documentation/performance.rst). The worker never waits for the pieces
 * it sends. Clones made in the submitter may sit on current->bio_list,
 * so the bio set has a rescuer.
 *
 * A request holds vss_image_srcu from its submission to its completion,
 * so that deleting a snapshot waits for every request that still uses its
 * origin, chain or slots. A read pins its chunks on the origin (struct
 * vss_read_pin, see cow.c) before it looks them up, and unpins them when
 * its last piece completes, so that copy-on-write cannot overwrite them
 * under the read. Deleted and failed snapshots answer with an I/O error.
 *
 * Memory: requests and pieces come from mempools, so they are always
 * allocated in the end, by waiting for earlier requests to complete (the
 * rescuer sends on what waits on current->bio_list meanwhile).
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
#include <linux/mempool.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>

/* Requests and pieces kept in reserve, for progress under memory pressure. */
#define VSS_IMAGE_RESERVE	16
/* Reads from this size on are sent from the submitter when they can be. */
#define VSS_IMAGE_INLINE_MIN	(128 << 10)
/* Store chunks of a bridged read put in store order at a time. */
#define VSS_IMAGE_GATHER_BATCH	16

static int vss_image_major;
static DEFINE_IDA(vss_image_ida);

/* One bio sent to an image. */
struct vss_image_req {
	struct bio *bio;
	struct vss_snapshot *snap;
	int srcu_idx;			/* vss_image_srcu, held until released */
	atomic_t pieces;		/* I/O in flight, plus one while cutting */
	blk_status_t status;		/* an error of some piece, else OK */
	bool pinned;			/* @pin is in the origin's read pins */
	struct vss_read_pin pin;	/* the chunks it reads from the origin */
	/* A read's cutting so far, for the worker to go on with. */
	sector_t cut_pos;		/* the first sector not cut yet */
	u64 on_origin_first;		/* the chunks found on the origin */
	u64 on_origin_last;		/* (U64_MAX, 0: none yet) */
	struct work_struct work;	/* cutting, in vss_image_wq */
	/* A bridged read: where its store chunks start being looked for. */
	sector_t fill_pos;
	struct work_struct fill_work;	/* reading them, once bridged */
};

/* A run of a request with one source: the front pad of a clone. */
struct vss_image_piece {
	struct vss_image_req *req;
	unsigned long exc;		/* its first slot; 0: the origin */
	u32 offset;			/* bytes into that slot */
	struct work_struct work;	/* a file store's VFS I/O */
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

/*
 * Piece sources besides the origin (0) and store exceptions (a store id,
 * never 0, in the top bits): VSS_EXC_ZERO, sectors where a store lay at
 * the instant, which read as zeros (struct vss_snapshot.store_mask); and
 * VSS_EXC_NONE, which nothing continues.
 */
#define VSS_EXC_ZERO	1UL
#define VSS_EXC_NONE	(~0UL)

static struct bio_set vss_image_bio_set;
static mempool_t vss_image_req_pool;

static const struct block_device_operations vss_image_fops;

bool vss_image_is_disk(struct gendisk *disk)
{
	return disk->fops == &vss_image_fops;
}

unsigned int vss_image_openers(struct vss_image *image)
{
	return atomic_read(&image->snap->image_openers);
}

/* The name of the image disk @devt: "vssN". */
void vss_image_name(dev_t devt, char name[DISK_NAME_LEN])
{
	snprintf(name, DISK_NAME_LEN, "vss%u", MINOR(devt));
}

static void vss_image_req_error(struct vss_image_req *req,
				blk_status_t status)
{
	WRITE_ONCE(req->status, status);
}

/*
 * @origin's chain, for a request. The request holds vss_image_srcu from
 * its submission to its completion, through vss_srcu_down_read(), which
 * lockdep does not track (another context may end it): say so here, since
 * srcu_dereference() would look for a read lock of this task.
 */
static struct vss_chain *vss_image_chain(struct vss_origin *origin)
{
	return srcu_dereference_check(origin->chain, &vss_image_srcu, true);
}

/*
 * The I/O of a piece, or the cutting, is over; the last one unpins, ends
 * the bio and ends the request's use of vss_image_srcu.
 */
static void vss_image_req_put(struct vss_image_req *req)
{
	struct bio *bio = req->bio;
	int idx = req->srcu_idx;

	if (!atomic_dec_and_test(&req->pieces))
		return;
	if (req->pinned)
		vss_read_pin_del(req->snap->origin, &req->pin);
	bio->bi_status = READ_ONCE(req->status);
	bio_endio(bio);
	mempool_free(req, &vss_image_req_pool);
	__acquire(&vss_image_srcu);	/* held by the request until here */
	vss_srcu_up_read(&vss_image_srcu, idx);
}

static void vss_image_piece_done(struct vss_image_piece *piece)
{
	struct vss_image_req *req = piece->req;

	bio_put(&piece->clone);
	vss_image_req_put(req);
}

static void vss_image_clone_endio(struct bio *clone)
{
	struct vss_image_piece *piece = container_of(clone,
						     struct vss_image_piece,
						     clone);

	if (clone->bi_status)
		vss_image_req_error(piece->req, clone->bi_status);
	vss_image_piece_done(piece);
}

/* A piece of a store that bios cannot address, in a worker of its own. */
static void vss_image_store_work(struct work_struct *work)
{
	struct vss_image_piece *piece = container_of(work,
						     struct vss_image_piece,
						     work);
	struct vss_store *store;
	unsigned int noio;
	int ret;

	/* Its read pins may hold origin writes: see vss_image_work(). */
	noio = memalloc_noio_save();
	store = vss_store_get_by_id(vss_exc_store_id(piece->exc));
	ret = vss_store_rw_bio(store, vss_exc_slot(piece->exc), piece->offset,
			       &piece->clone,
			       op_is_write(bio_op(&piece->clone)));
	memalloc_noio_restore(noio);
	if (ret)
		vss_image_req_error(piece->req, errno_to_blk_status(ret));
	vss_image_piece_done(piece);
}

/*
 * The device a piece from @exc at @offset (0: the origin) is sent to, with
 * its first sector in @sector; NULL: a worker moves it (a file store's).
 */
static struct block_device *vss_image_piece_bdev(struct vss_image_req *req,
						 unsigned long exc, u32 offset,
						 sector_t *sector)
{
	struct vss_store *store;

	if (!exc) {
		*sector = 0;
		return req->snap->origin->handle.bdev;
	}
	if (exc == VSS_EXC_ZERO)
		return NULL;
	store = vss_store_get_by_id(vss_exc_store_id(exc));
	return vss_store_map(store, vss_exc_slot(exc), offset, sector);
}

/* Makes the bio @bio of the bio set a piece of @req, from @exc at @offset. */
static struct vss_image_piece *vss_image_piece_init(struct vss_image_req *req,
						    struct bio *bio,
						    unsigned long exc,
						    u32 offset)
{
	struct vss_image_piece *piece;

	bio->bi_end_io = vss_image_clone_endio;
	piece = container_of(bio, struct vss_image_piece, clone);
	piece->req = req;
	piece->exc = exc;
	piece->offset = offset;
	atomic_inc(&req->pieces);
	return piece;
}

/* Starts a piece at @pos, from @exc (0: the origin) at @offset bytes. */
static void vss_image_cut_start(struct vss_image_cut *cut, sector_t pos,
				unsigned long exc, u32 offset)
{
	struct vss_image_req *req = cut->req;
	sector_t sector;
	struct block_device *bdev = vss_image_piece_bdev(req, exc, offset,
							 &sector);
	struct bio *clone;

	/* A worker's piece is not submitted: any device names its pages. */
	if (!bdev)
		bdev = req->snap->origin->handle.bdev;
	/* Never fails: GFP_NOIO waits for the bio set's reserve. */
	clone = bio_alloc_clone(bdev, req->bio, GFP_NOIO, &vss_image_bio_set);
	clone->bi_opf &= ~(REQ_PREFLUSH | REQ_FUA);
	cut->piece = vss_image_piece_init(req, clone, exc, offset);
	cut->start = pos;
	cut->end = pos;
}

/*
 * Sends @piece, whose bio is ready but for its start: @origin_sector when
 * it reads the origin; its store slot and offset tell the rest.
 */
static void vss_image_piece_send(struct vss_image_piece *piece,
				 sector_t origin_sector)
{
	struct bio *clone = &piece->clone;
	struct block_device *bdev;
	sector_t sector;

	if (!piece->exc) {
		clone->bi_iter.bi_sector = origin_sector;
		vss_submit_bio_direct(clone);
		return;
	}
	if (piece->exc == VSS_EXC_ZERO) {
		zero_fill_bio(clone);
		vss_image_piece_done(piece);
		return;
	}
	bdev = vss_image_piece_bdev(piece->req, piece->exc, piece->offset,
				    &sector);
	if (bdev) {
		clone->bi_iter.bi_sector = sector;
		vss_submit_bio_direct(clone);
		return;
	}
	INIT_WORK(&piece->work, vss_image_store_work);
	queue_work(vss_image_wq, &piece->work);
}

/* Sends the piece being cut, which ends at cut->end. */
static void vss_image_cut_send(struct vss_image_cut *cut)
{
	struct vss_image_piece *piece = cut->piece;
	struct bio *bio = cut->req->bio;

	cut->piece = NULL;
	bio_trim(&piece->clone, cut->start - bio->bi_iter.bi_sector,
		 cut->end - cut->start);
	vss_image_piece_send(piece, cut->start);
}

/* Forgets the piece being cut, unsent: its sectors went out otherwise. */
static void vss_image_cut_drop(struct vss_image_cut *cut)
{
	bio_put(&cut->piece->clone);
	cut->piece = NULL;
	/* Never the last count: the cutter holds one. */
	atomic_dec(&cut->req->pieces);
}

/* The source that continues a piece from @exc at the end of its slot. */
static unsigned long vss_image_next_exc(unsigned long exc)
{
	if (!exc || exc == VSS_EXC_ZERO)
		return exc;
	if (!vss_store_contiguous(vss_store_get_by_id(vss_exc_store_id(exc)),
				  vss_exc_slot(exc)))
		return VSS_EXC_NONE;
	return exc + 1;
}

/*
 * Adds sectors [@pos, @next) of the request, which live in @exc at
 * @offset bytes into its slot (@exc 0: on the origin), to the piece being
 * cut when they continue it; else sends that piece and starts another.
 */
static void vss_image_cut_add(struct vss_image_cut *cut, sector_t pos,
			      sector_t next, unsigned long exc, u32 offset)
{
	if (cut->piece && exc != cut->next_exc)
		vss_image_cut_send(cut);
	if (!cut->piece)
		vss_image_cut_start(cut, pos, exc, offset);
	cut->end = next;
	/*
	 * The origin and zeros continue themselves; a store run, with the
	 * next slot where that follows on the store's device.
	 */
	cut->next_exc = vss_image_next_exc(exc);
}

/* The first range of @snap's store mask that ends after @pos, or NULL. */
static const struct vss_range *vss_image_mask_next(struct vss_snapshot *snap,
						   sector_t pos)
{
	const struct vss_store_mask *mask = snap->store_mask;
	unsigned int lo = 0, hi;

	if (!mask)
		return NULL;
	hi = mask->nr;
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (mask->range[mid].end <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < mask->nr ? &mask->range[lo] : NULL;
}

/* Does a store have sectors in [@pos, @end) of @snap's origin? */
static bool vss_image_masked(struct vss_snapshot *snap, sector_t pos,
			     sector_t end)
{
	const struct vss_range *range = vss_image_mask_next(snap, pos);

	return range && range->start < end;
}

/* Where the snapshot's @chunk lives: its exception, or 0 (the origin). */
static unsigned long vss_image_chunk_source(struct vss_snapshot *snap,
					    struct vss_chain *chain, u64 chunk)
{
	void *entry = xa_load(&snap->overlay, chunk);

	return entry ? xa_to_value(entry) : vss_chain_lookup(chain, snap, chunk);
}

/* Pins a read's chunks on the origin; before any of them is looked up. */
static void vss_image_read_pin(struct vss_image_req *req)
{
	struct vss_origin *origin = req->snap->origin;
	unsigned int shift = origin->chunk_shift - SECTOR_SHIFT;
	struct bio *bio = req->bio;

	vss_read_pin_add(origin, &req->pin, bio->bi_iter.bi_sector >> shift,
			 (bio_end_sector(bio) - 1) >> shift);
	req->pinned = true;
	req->cut_pos = bio->bi_iter.bi_sector;
	req->on_origin_first = U64_MAX;
	req->on_origin_last = 0;
}

/*
 * Bridged reads. A read whose origin chunks alternate with chunks in a
 * store (an image whose origin was rewritten every other chunk since the
 * snapshot) would go out as one request per chunk, and where a request
 * costs more than the data it moves that is several times slower than
 * reading the origin. Such a read goes out as two steps instead: the
 * origin's whole span at once, into the request's own pages, stale
 * chunks included; then, once that is done, the store chunks over the
 * stale ones, in store order, with consecutive slots gathered into one bio
 * (copies made by concurrent writes land in the store slightly out of
 * order). Every byte of the request's buffer is written by at most one
 * origin read and then one store read, and nothing is read into memory
 * the request does not own (a shared scratch buffer would let an origin
 * that checks what it reads, such as dm-integrity, see one request's data
 * change under another).
 */

/* The store chunks of a bridged read being gathered into one bio. */
struct vss_image_gather {
	struct vss_image_req *req;
	struct vss_image_piece *piece;	/* being filled, not sent yet */
	unsigned long next_exc;		/* the exception that would extend it */
};

/* Sectors [@pos, @next) of a request, in @exc from @offset bytes on. */
struct vss_image_store_run {
	unsigned long exc;
	sector_t pos;
	sector_t next;
	u32 offset;
};

static void vss_image_gather_send(struct vss_image_gather *gather)
{
	struct vss_image_piece *piece = gather->piece;

	if (!piece)
		return;
	gather->piece = NULL;
	vss_image_piece_send(piece, 0);
}

/*
 * Adds the request's sectors [@pos, @next), which live in @exc at @offset
 * bytes into its slot, to the bio being gathered when they continue it in
 * the store; else sends that bio and starts another.
 */
static void vss_image_gather_add(struct vss_image_gather *gather,
				 sector_t pos, sector_t next,
				 unsigned long exc, u32 offset)
{
	struct vss_image_req *req = gather->req;
	struct bio *bio = req->bio;
	struct bvec_iter iter = bio->bi_iter;

	if (gather->piece && (exc != gather->next_exc || offset))
		vss_image_gather_send(gather);
	bio_advance_iter(bio, &iter,
			 (pos - bio->bi_iter.bi_sector) << SECTOR_SHIFT);
	iter.bi_size = (next - pos) << SECTOR_SHIFT;
	while (iter.bi_size) {
		struct bio_vec bv = bio_iter_iovec(bio, iter);
		struct bio *gathered;
		sector_t sector;

		if (!gather->piece) {
			/* Never fails: GFP_NOIO waits for the reserve. */
			gathered = bio_alloc_bioset(vss_image_piece_bdev(req, exc,
									 offset,
									 &sector),
						    BIO_MAX_VECS, REQ_OP_READ,
						    GFP_NOIO,
						    &vss_image_bio_set);
			gathered->bi_ioprio = bio->bi_ioprio;
			gather->piece = vss_image_piece_init(req, gathered,
							     exc, offset);
		}
		gathered = &gather->piece->clone;
		if (bio_add_page(gathered, bv.bv_page, bv.bv_len,
				 bv.bv_offset) != bv.bv_len) {
			if (WARN_ON_ONCE(!gathered->bi_iter.bi_size)) {
				vss_image_req_error(req, BLK_STS_IOERR);
				break;
			}
			/* Full: the rest goes on in a bio of its own. */
			vss_image_gather_send(gather);
			continue;
		}
		bio_advance_iter_single(bio, &iter, bv.bv_len);
		offset += bv.bv_len;
	}
	/* Only a run that fills its slot to the end goes on in the next. */
	gather->next_exc = offset >> req->snap->origin->chunk_shift ?
			   vss_image_next_exc(exc) : VSS_EXC_NONE;
}

static int vss_image_store_run_cmp(const void *a, const void *b)
{
	const struct vss_image_store_run *x = a, *y = b;

	return x->exc < y->exc ? -1 : x->exc > y->exc;
}

/* Gathers @nr runs of store chunks, in store order. */
static void vss_image_gather_runs(struct vss_image_gather *gather,
				  struct vss_image_store_run *runs,
				  unsigned int nr)
{
	unsigned int i;

	sort(runs, nr, sizeof(*runs), vss_image_store_run_cmp, NULL);
	for (i = 0; i < nr; i++)
		vss_image_gather_add(gather, runs[i].pos, runs[i].next,
				     runs[i].exc, runs[i].offset);
}

/* Reads a bridged read's store chunks, once its origin span is in. */
static void vss_image_fill_work(struct work_struct *work)
{
	struct vss_image_req *req = container_of(work, struct vss_image_req,
						 fill_work);
	struct vss_snapshot *snap = req->snap;
	unsigned int shift = snap->origin->chunk_shift - SECTOR_SHIFT;
	struct vss_image_store_run runs[VSS_IMAGE_GATHER_BATCH];
	struct vss_image_gather gather = { .req = req };
	sector_t end = bio_end_sector(req->bio);
	sector_t pos = req->fill_pos;
	struct vss_chain *chain;
	struct blk_plug plug;
	unsigned int nr = 0, noio;

	/* The request pins chunks: see vss_image_work(). */
	noio = memalloc_noio_save();
	blk_start_plug(&plug);
	chain = vss_image_chain(snap->origin);
	while (pos < end) {
		u64 chunk = pos >> shift;
		sector_t chunk_start = chunk << shift;
		sector_t next = min_t(sector_t, chunk_start + (1 << shift),
				      end);
		unsigned long exc = vss_image_chunk_source(snap, chain, chunk);

		/*
		 * A chunk the bridge read stays read: the pin keeps it on the
		 * origin. One that has gained an overlay slot since, from an
		 * image write racing this read, reads from there.
		 */
		if (exc) {
			runs[nr++] = (struct vss_image_store_run){
				.exc = exc, .pos = pos, .next = next,
				.offset = (pos - chunk_start) << SECTOR_SHIFT,
			};
			if (nr == ARRAY_SIZE(runs)) {
				vss_image_gather_runs(&gather, runs, nr);
				nr = 0;
			}
		}
		pos = next;
	}
	vss_image_gather_runs(&gather, runs, nr);
	vss_image_gather_send(&gather);
	blk_finish_plug(&plug);
	memalloc_noio_restore(noio);
	vss_image_req_put(req);		/* the bridge's count */
}

static void vss_image_bridge_endio(struct bio *clone)
{
	struct vss_image_piece *piece = container_of(clone,
						     struct vss_image_piece,
						     clone);
	struct vss_image_req *req = piece->req;
	blk_status_t status = clone->bi_status;

	/* Freed first: the store reads take bios from the same set. */
	bio_put(clone);
	if (status) {
		vss_image_req_error(req, status);
		vss_image_req_put(req);
		return;
	}
	INIT_WORK(&req->fill_work, vss_image_fill_work);
	queue_work(vss_image_wq, &req->fill_work);
}

/*
 * Sends sectors [@pos, @end) of a pinned read as a bridged read when its
 * origin chunks come in several runs, spread over at most twice their
 * number of chunks (past that, the bridge would read more stale data than
 * it saves requests). Return: true if it did.
 */
static bool vss_image_read_bridged(struct vss_image_req *req,
				   struct vss_chain *chain,
				   sector_t pos, sector_t end)
{
	struct vss_snapshot *snap = req->snap;
	unsigned int shift = snap->origin->chunk_shift - SECTOR_SHIFT;
	u64 first = U64_MAX, last = 0, nr = 0, chunk;
	struct vss_image_cut cut = { .req = req };
	unsigned int runs = 0;

	/* Two origin runs need a chunk between them: small reads never scan. */
	if (((end - 1) >> shift) - (pos >> shift) < 2)
		return false;
	/* Zeros over a store's sectors would need a third step. */
	if (vss_image_masked(snap, pos, end))
		return false;
	for (chunk = pos >> shift; chunk <= (end - 1) >> shift; chunk++) {
		if (vss_image_chunk_source(snap, chain, chunk))
			continue;
		if (!nr || last != chunk - 1)
			runs++;
		first = min(first, chunk);
		last = chunk;
		nr++;
	}
	if (runs < 2 || last - first + 1 > 2 * nr)
		return false;

	req->on_origin_first = min(req->on_origin_first, first);
	req->on_origin_last = last;
	req->fill_pos = pos;
	vss_image_cut_start(&cut, max_t(sector_t, pos, first << shift), 0, 0);
	cut.end = min_t(sector_t, end, (last + 1) << shift);
	cut.piece->clone.bi_end_io = vss_image_bridge_endio;
	vss_image_cut_send(&cut);
	return true;
}

/*
 * As vss_image_cut_add() for sectors [@pos, @next) of the chunk at
 * @chunk_start, from @exc, except where a store lay at the instant: those
 * read as zeros, whatever the chain or the origin hold there now.
 */
static void vss_image_cut_add_masked(struct vss_image_cut *cut, sector_t pos,
				     sector_t next, unsigned long exc,
				     sector_t chunk_start)
{
	struct vss_snapshot *snap = cut->req->snap;

	while (pos < next) {
		const struct vss_range *range = vss_image_mask_next(snap, pos);
		sector_t end;

		if (range && range->start <= pos) {
			end = min(range->end, next);
			vss_image_cut_add(cut, pos, end, VSS_EXC_ZERO, 0);
		} else {
			end = range ? min(range->start, next) : next;
			vss_image_cut_add(cut, pos, end, exc,
					  (pos - chunk_start) << SECTOR_SHIFT);
		}
		pos = end;
	}
}

/*
 * Cuts a pinned read chunk by chunk, from req->cut_pos. Consecutive
 * origin chunks go out as one piece, as do chunks in consecutive slots of
 * a store. With @first_piece, it stops where a second piece would start
 * and returns false, with req->cut_pos there, for the worker to go on.
 * Once the whole read is cut, the pin shrinks to the chunks found on the
 * origin, or goes if none was, and it returns true.
 */
static bool vss_image_read(struct vss_image_req *req, bool first_piece)
{
	struct vss_snapshot *snap = req->snap;
	struct vss_origin *origin = snap->origin;
	unsigned int shift = origin->chunk_shift - SECTOR_SHIFT;
	struct bio *bio = req->bio;
	sector_t pos = req->cut_pos;
	sector_t end = bio_end_sector(bio);
	struct vss_image_cut cut = { .req = req };
	struct vss_chain *chain;

	/* A read with zeros over a store is cut by the worker. */
	if (first_piece && vss_image_masked(snap, pos, end))
		return false;
	chain = vss_image_chain(origin);
	if (!first_piece && vss_image_read_bridged(req, chain, pos, end))
		pos = end;
	while (pos < end) {
		u64 chunk = pos >> shift;
		sector_t chunk_start = chunk << shift;
		sector_t next = min_t(sector_t, chunk_start + (1 << shift),
				      end);
		unsigned long exc;

		exc = vss_image_chunk_source(snap, chain, chunk);
		if (first_piece && cut.piece && exc != cut.next_exc) {
			/* A second piece: the whole read may bridge instead. */
			if (vss_image_read_bridged(req, chain, req->cut_pos,
						   end)) {
				vss_image_cut_drop(&cut);
				pos = end;
			}
			break;
		}
		if (!exc) {
			req->on_origin_first = min(req->on_origin_first, chunk);
			req->on_origin_last = chunk;
		}
		if (vss_image_masked(snap, pos, next) &&
		    !xa_load(&snap->overlay, chunk))
			vss_image_cut_add_masked(&cut, pos, next, exc,
						 chunk_start);
		else
			vss_image_cut_add(&cut, pos, next, exc,
					  (pos - chunk_start) << SECTOR_SHIFT);
		pos = next;
	}
	req->cut_pos = pos;
	/* The request cannot complete while it is being cut. */
	if (pos == end) {
		if (req->on_origin_first == U64_MAX) {
			req->pinned = false;
			vss_read_pin_del(origin, &req->pin);
		} else if (req->on_origin_first != req->pin.first ||
			   req->on_origin_last != req->pin.last) {
			vss_read_pin_narrow(origin, &req->pin,
					    req->on_origin_first,
					    req->on_origin_last);
		}
	}
	if (cut.piece)
		vss_image_cut_send(&cut);
	return pos == end;
}

/* Zeros what a store held, at the instant, of @buf read from @sector on. */
static void vss_image_mask_buf(struct vss_snapshot *snap, sector_t sector,
			       struct vss_chunk_buf *buf)
{
	sector_t end = sector + (buf->bytes >> SECTOR_SHIFT);
	sector_t pos = sector;
	const struct vss_range *range;

	while (pos < end && (range = vss_image_mask_next(snap, pos)) &&
	       range->start < end) {
		sector_t from = max(range->start, pos);
		sector_t to = min(range->end, end);

		vss_chunk_buf_zero(buf, (from - sector) << SECTOR_SHIFT,
				   (to - from) << SECTOR_SHIFT);
		pos = to;
	}
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
	struct vss_read_pin pin;
	struct vss_chunk_buf *buf;
	unsigned long exc;
	int ret;

	buf = vss_chunk_buf_alloc(bytes, GFP_NOIO);
	if (!buf)
		return -ENOMEM;
	vss_read_pin_add(origin, &pin, chunk, chunk);
	exc = vss_chain_lookup(vss_image_chain(origin), snap, chunk);
	if (exc) {
		vss_read_pin_del(origin, &pin);
		ret = vss_store_rw_buf(vss_store_get_by_id(vss_exc_store_id(exc)),
				       vss_exc_slot(exc), buf, false);
	} else {
		ret = vss_bdev_rw(origin->handle.bdev, sector, buf, bytes,
				  false);
		vss_read_pin_del(origin, &pin);
	}
	if (!ret) {
		vss_image_mask_buf(snap, sector, buf);
		ret = vss_store_rw_buf(store, slot, buf, true);
	}
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
	ret = vss_store_alloc_slot(store, &slot, false);
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
				  (pos - chunk_start) << SECTOR_SHIFT);
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
	unsigned int noio;

	/*
	 * Origin writes wait for this request's read pins (and for the pin
	 * of an overlay fill): reclaim from an allocation made here, a file
	 * store's page cache among them, must not write back to an origin.
	 */
	noio = memalloc_noio_save();
	blk_start_plug(&plug);
	if (bio_op(req->bio) == REQ_OP_WRITE)
		vss_image_write(req);
	else
		vss_image_read(req, false);
	blk_finish_plug(&plug);
	memalloc_noio_restore(noio);
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
	req->pinned = false;
	atomic_set(&req->pieces, 1);
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
		if (bio_op(bio) == REQ_OP_READ) {
			vss_image_read_pin(req);
			/*
			 * A large read's first piece goes out from here: the
			 * worker hop would add to its latency. Cutting more
			 * pieces, or small reads, is left to the worker, so
			 * that it overlaps the submitter. A REQ_NOWAIT read
			 * could wait for its clone here.
			 */
			if (bio->bi_iter.bi_size >= VSS_IMAGE_INLINE_MIN &&
			    !(bio->bi_opf & REQ_NOWAIT) &&
			    vss_image_read(req, true)) {
				vss_image_req_put(req);
				return;
			}
		}
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

	atomic_inc(&image->snap->image_openers);
	return 0;
}

static void vss_image_release(VSS_BDOPS_RELEASE_ARGS)
{
	struct vss_image *image = disk->private_data;

	atomic_dec(&image->snap->image_openers);
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
	vss_image_name(MKDEV(vss_image_major, image->index), disk->disk_name);
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
	WRITE_ONCE(snap->image_devt, disk_devt(disk));
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
			  offsetof(struct vss_image_piece, clone),
			  BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER);
	if (ret)
		return ret;
	ret = mempool_init_kmalloc_pool(&vss_image_req_pool, VSS_IMAGE_RESERVE,
					sizeof(struct vss_image_req));
	if (ret)
		goto err_bioset;
	vss_image_major = register_blkdev(0, "vss");
	if (vss_image_major < 0) {
		ret = vss_image_major;
		goto err_pool;
	}
	return 0;

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
	/* File pieces end in vss_image_wq. */
	flush_workqueue(vss_image_wq);
	mempool_exit(&vss_image_req_pool);
	bioset_exit(&vss_image_bio_set);
}
