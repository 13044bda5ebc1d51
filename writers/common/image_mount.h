/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Post-snapshot fix-ups: an in-box writer mounts the image of one of its
 * devices read-write, privately, changes files in it (PostgreSQL puts its
 * backup label there), and unmounts it. The writer process runs in a
 * mount namespace of its own (vsw_private_mounts()), so its mounts are
 * invisible to everyone else and vanish if it dies.
 */
#ifndef VSS_IMAGE_MOUNT_H
#define VSS_IMAGE_MOUNT_H

#include <limits.h>
#include <sys/types.h>

struct image_mount {
	char dir[PATH_MAX];		/* where the image is mounted */
	char image[64];			/* "/dev/vss3" */
};

/*
 * Moves this process into a mount namespace of its own that still sees
 * every mount of the host's (a slave of it). Return: 0 or negative errno.
 */
int vsw_private_mounts(void);

/*
 * Mounts the image, in snapshot set @set_id, of the origin @origin_dev,
 * read-write, with the options its filesystem needs (XFS: nouuid). On
 * failure @why says which device and why. Return: 0 or negative errno.
 */
int image_mount(const char *set_id, dev_t origin_dev, const char *fs_type,
		struct image_mount *out, char *why, size_t why_len);

/* Syncs and unmounts, then removes the directory. Return: 0 or -errno. */
int image_umount(struct image_mount *m);

#endif /* VSS_IMAGE_MOUNT_H */
