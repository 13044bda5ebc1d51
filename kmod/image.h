/* SPDX-License-Identifier: GPL-2.0 */
/* The block device "vssN" that exposes a snapshot's point-in-time image. */
#ifndef VSS_IMAGE_H
#define VSS_IMAGE_H

#include <linux/blkdev.h>

struct vss_snapshot;

struct vss_image {
	struct gendisk *disk;		/* fixed */
	struct vss_snapshot *snap;	/* fixed; the disk holds a reference */
	int index;			/* fixed: N of "vssN" */
	atomic_t openers;
};

int vss_image_create(struct vss_snapshot *snap);
void vss_image_remove(struct vss_image *image);
unsigned int vss_image_openers(struct vss_image *image);
bool vss_image_is_disk(struct gendisk *disk);

int vss_image_init(void);
void vss_image_exit(void);

#endif /* VSS_IMAGE_H */
