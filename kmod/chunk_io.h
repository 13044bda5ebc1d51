/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Synchronous I/O of page buffers against a block device or a file, used
 * by copy-on-write and by image I/O from process context (one worker per
 * file piece of an image request).
 */
#ifndef VSS_CHUNK_IO_H
#define VSS_CHUNK_IO_H

#include <linux/bits.h>
#include <linux/bvec.h>
#include <linux/blkdev.h>
#include <linux/fs.h>

/* A page-backed buffer of one chunk, or of a run of chunks. */
struct vss_chunk_buf {
	unsigned int nr_pages;
	unsigned int bytes;
	struct bio_vec bvec[];
};

struct vss_chunk_buf *vss_chunk_buf_alloc(unsigned int bytes, gfp_t gfp);
void vss_chunk_buf_free(struct vss_chunk_buf *buf);
void vss_chunk_buf_zero(struct vss_chunk_buf *buf, size_t offset, size_t len);

int vss_bdev_rw_bvec(struct block_device *bdev, sector_t sector,
		     struct bio_vec *bvec, unsigned int nr_bvec, size_t skip,
		     unsigned int bytes, bool write);
int vss_bdev_rw_bvec_direct(struct block_device *bdev, sector_t sector,
			    struct bio_vec *bvec, unsigned int nr_bvec,
			    size_t skip, unsigned int bytes, bool write);
int vss_bdev_rw(struct block_device *bdev, sector_t sector,
		struct vss_chunk_buf *buf, unsigned int bytes, bool write);
/* vss_file_rw() flags */
#define VSS_FILE_NOWAIT	BIT(0)	/* never wait for a frozen filesystem */
#define VSS_FILE_DIRECT	BIT(1)	/* bypass the page cache */

int vss_file_freeze_protect(struct file *file, bool nowait);
int vss_file_rw(struct file *file, loff_t pos, struct bio_vec *bvec,
		unsigned int nr_bvec, size_t skip, size_t bytes, bool write,
		unsigned int flags);
int vss_file_rw_bio(struct file *file, loff_t pos, struct bio *bio,
		    bool write);

#endif /* VSS_CHUNK_IO_H */
