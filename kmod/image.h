/* SPDX-License-Identifier: GPL-2.0 */
/* The block device "vssN" that exposes a snapshot's point-in-time image. */
#ifndef VSS_IMAGE_H
#define VSS_IMAGE_H

#include <linux/blkdev.h>

struct vss_snapshot;

/* Freed with its disk, when the last opener is gone: see vss_snapshot. */
struct vss_image {
	struct gendisk *disk;		/* fixed */
	struct vss_snapshot *snap;	/* fixed; the disk holds a reference */
	int index;			/* fixed: N of "vssN" */
};

int vss_image_create(struct vss_snapshot *snap);
void vss_image_remove(struct vss_image *image);
unsigned int vss_image_openers(struct vss_image *image);
void vss_image_name(dev_t devt, char name[DISK_NAME_LEN]);
bool vss_image_is_disk(struct gendisk *disk);

int vss_image_init(void);
void vss_image_exit(void);

#endif /* VSS_IMAGE_H */
