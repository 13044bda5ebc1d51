// SPDX-License-Identifier: GPL-2.0
/*
 * Synchronous chunk I/O. Callers are workers in process context that may
 * sleep; memory comes from GFP_NOIO so that reclaim never recurses into
 * the block layer we are serving, and the callers that hold origin writes
 * back (copy and image workers, the control path with a gate closed) run
 * in a memalloc_noio_save() scope, so that what the VFS allocates for a
 * file store (page cache, filesystem metadata) does not recurse either.
 */
#include "vss.h"
#include "chunk_io.h"
#include "intercept.h"
#include <linux/completion.h>
#include <linux/uio.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/slab.h>

/* @gfp: GFP_NOIO, maybe with flags that make it fail rather than wait */
struct vss_chunk_buf *vss_chunk_buf_alloc(unsigned int bytes, gfp_t gfp)
{
	unsigned int nr = DIV_ROUND_UP(bytes, PAGE_SIZE);
	struct vss_chunk_buf *buf;
	unsigned int i;

	buf = kmalloc(struct_size(buf, bvec, nr), gfp);
	if (!buf)
		return NULL;
	buf->nr_pages = 0;
	buf->bytes = bytes;
	for (i = 0; i < nr; i++) {
		struct page *page = alloc_page(gfp);

		if (!page) {
			vss_chunk_buf_free(buf);
			return NULL;
		}
		bvec_set_page(&buf->bvec[i], page,
			      min_t(unsigned int, PAGE_SIZE,
				    bytes - i * PAGE_SIZE), 0);
		buf->nr_pages++;
	}
	return buf;
}

/* Zeros @len bytes of @buf from byte @offset on. */
void vss_chunk_buf_zero(struct vss_chunk_buf *buf, size_t offset, size_t len)
{
	while (len) {
		struct bio_vec *bv = &buf->bvec[offset >> PAGE_SHIFT];
		size_t in_page = offset & ~PAGE_MASK;
		size_t n = min_t(size_t, len, bv->bv_len - in_page);

		memzero_page(bv->bv_page, in_page, n);
		offset += n;
		len -= n;
	}
}

void vss_chunk_buf_free(struct vss_chunk_buf *buf)
{
	unsigned int i;

	if (!buf)
		return;
	for (i = 0; i < buf->nr_pages; i++)
		__free_page(buf->bvec[i].bv_page);
	kfree(buf);
}

static void vss_bio_wait_endio(struct bio *bio)
{
	complete(bio->bi_private);
}

/*
 * Sends @bio and waits for it: through submit_bio_wait(), which passes
 * through vss's own interception like any bio, or with @direct through
 * vss_submit_bio_direct(), which bypasses it.
 */
static int vss_bio_submit_wait(struct bio *bio, bool direct)
{
	DECLARE_COMPLETION_ONSTACK(done);

	if (!direct)
		return submit_bio_wait(bio);
	bio->bi_private = &done;
	bio->bi_end_io = vss_bio_wait_endio;
	bio->bi_opf |= REQ_SYNC;
	vss_submit_bio_direct(bio);
	wait_for_completion_io(&done);
	return blk_status_to_errno(bio->bi_status);
}

static int vss_bdev_do_rw_bvec(struct block_device *bdev, sector_t sector,
			       struct bio_vec *bvec, unsigned int nr_bvec,
			       size_t skip, unsigned int bytes, bool write,
			       bool direct)
{
	struct bvec_iter iter = {
		.bi_size = skip + bytes,
	};
	struct bio_vec page;
	struct bio *bio;
	int ret;

	/* Never fails: GFP_NOIO waits for the reserve (see vss.h). */
	bio = bio_alloc_bioset(bdev, min_t(unsigned int, nr_bvec, BIO_MAX_VECS),
			       write ? REQ_OP_WRITE : REQ_OP_READ, GFP_NOIO,
			       &vss_bio_set);
	bio->bi_iter.bi_sector = sector;
	bvec_iter_advance(bvec, &iter, skip);
	for_each_bvec(page, bvec, iter, iter) {
		if (bio_add_page(bio, page.bv_page, page.bv_len,
				 page.bv_offset) != page.bv_len) {
			bio_put(bio);
			return -EIO;
		}
	}
	ret = vss_bio_submit_wait(bio, direct);
	bio_put(bio);
	return ret;
}

/**
 * vss_bdev_rw_bvec - read or write @bytes at @sector from or into pages
 * @bdev: device
 * @sector: first sector on @bdev
 * @bvec: pages holding the data, one page each
 * @nr_bvec: entries in @bvec
 * @skip: bytes of @bvec to skip before the data starts
 * @bytes: multiple of 512, at most BIO_MAX_VECS pages
 * @write: direction
 *
 * The bio passes through vss's interception, as any bio does.
 *
 * Return: 0 or a negative errno.
 */
int vss_bdev_rw_bvec(struct block_device *bdev, sector_t sector,
		     struct bio_vec *bvec, unsigned int nr_bvec, size_t skip,
		     unsigned int bytes, bool write)
{
	return vss_bdev_do_rw_bvec(bdev, sector, bvec, nr_bvec, skip, bytes,
				   write, false);
}

/**
 * vss_bdev_rw_bvec_direct - vss_bdev_rw_bvec(), bypassing interception
 * @bdev: device
 * @sector: first sector on @bdev
 * @bvec: pages holding the data, one page each
 * @nr_bvec: entries in @bvec
 * @skip: bytes of @bvec to skip before the data starts
 * @bytes: multiple of 512, at most BIO_MAX_VECS pages
 * @write: direction
 *
 * For a store that lies on an origin (store_samevol.c): its writes are
 * never copied, never tracked and never held by a write gate.
 *
 * Return: 0 or a negative errno.
 */
int vss_bdev_rw_bvec_direct(struct block_device *bdev, sector_t sector,
			    struct bio_vec *bvec, unsigned int nr_bvec,
			    size_t skip, unsigned int bytes, bool write)
{
	return vss_bdev_do_rw_bvec(bdev, sector, bvec, nr_bvec, skip, bytes,
				   write, true);
}

/* Reads or writes the first @bytes of @buf at @sector of @bdev. */
int vss_bdev_rw(struct block_device *bdev, sector_t sector,
		struct vss_chunk_buf *buf, unsigned int bytes, bool write)
{
	return vss_bdev_rw_bvec(bdev, sector, buf->bvec, buf->nr_pages, 0,
				bytes, write);
}

/**
 * vss_file_freeze_protect - take @file's filesystem's freeze protection
 * @file: a file about to be written or grown
 * @nowait: fail rather than wait for a frozen filesystem
 *
 * A store's writes take the protection themselves, around a direct call
 * of the filesystem's method: vfs_iter_write() takes none on 6.1 (it
 * would write into a frozen filesystem) and takes it from 6.7 on, where
 * it waits for the thaw, and taking it twice could deadlock against a
 * freezer waiting in between. Copy-on-write must never make an origin's
 * writes wait for a thaw: it asks for @nowait and fails its snapshot.
 *
 * Return: 0, or -EBUSY if @nowait and the filesystem is frozen (or
 * freezing). Undone by sb_end_write().
 */
int vss_file_freeze_protect(struct file *file, bool nowait)
{
	struct super_block *sb = file_inode(file)->i_sb;

	if (!nowait)
		sb_start_write(sb);
	else if (!sb_start_write_trylock(sb))
		return -EBUSY;
	return 0;
}

/* Writes @iter at @pos of @file, as vfs_iter_write() but see above. */
static ssize_t vss_file_write(struct file *file, struct iov_iter *iter,
			      loff_t pos, unsigned int flags)
{
	struct kiocb kiocb;
	ssize_t ret;

	ret = vss_file_freeze_protect(file, flags & VSS_FILE_NOWAIT);
	if (ret)
		return ret;
	init_sync_kiocb(&kiocb, file);
	kiocb.ki_pos = pos;
	if (flags & VSS_FILE_DIRECT)
		kiocb.ki_flags |= IOCB_DIRECT;
	ret = file->f_op->write_iter(&kiocb, iter);
	sb_end_write(file_inode(file)->i_sb);
	return ret;
}

/**
 * vss_file_rw - read or write @bytes at @pos of @file through the VFS
 * @file: open file
 * @pos: byte offset in @file
 * @bvec: pages holding the data
 * @nr_bvec: entries in @bvec
 * @skip: bytes of @bvec to skip before the data starts
 * @bytes: length
 * @write: direction
 * @flags: for a write, VSS_FILE_NOWAIT (fail with -EBUSY rather than wait
 *	   for a frozen filesystem) and VSS_FILE_DIRECT (bypass the page
 *	   cache; the caller has checked that the file and the alignment
 *	   allow it)
 *
 * A short transfer is an error: the store never reads past what it wrote.
 *
 * Return: 0 or a negative errno.
 */
int vss_file_rw(struct file *file, loff_t pos, struct bio_vec *bvec,
		unsigned int nr_bvec, size_t skip, size_t bytes, bool write,
		unsigned int flags)
{
	struct iov_iter iter;
	ssize_t ret;

	iov_iter_bvec(&iter, write ? ITER_SOURCE : ITER_DEST, bvec, nr_bvec,
		      skip + bytes);
	iov_iter_advance(&iter, skip);
	if (write)
		ret = vss_file_write(file, &iter, pos, flags);
	else
		ret = vfs_iter_read(file, &iter, &pos, 0);
	if (ret < 0)
		return ret;
	return ret == bytes ? 0 : -EIO;
}

/**
 * vss_file_rw_bio - read or write the data of @bio at @pos of @file
 * @file: open file
 * @pos: byte offset in @file
 * @bio: describes the pages, from its current position (bi_iter) on
 * @write: direction
 *
 * @bio is not submitted: it only names the pages (typically a clone of
 * part of an image request). A short transfer is an error.
 *
 * Return: 0 or a negative errno.
 */
int vss_file_rw_bio(struct file *file, loff_t pos, struct bio *bio,
		    bool write)
{
	struct bvec_iter iter = bio->bi_iter;
	size_t span = iter.bi_bvec_done + iter.bi_size;
	struct bio_vec *bvec = &bio->bi_io_vec[iter.bi_idx];
	unsigned int nr = 0;

	/* The (multi-page) segments the data spans, from the current one. */
	while (span) {
		span -= min_t(size_t, span, bvec[nr].bv_len);
		nr++;
	}
	return vss_file_rw(file, pos, bvec, nr, iter.bi_bvec_done,
			   iter.bi_size, write, 0);
}
