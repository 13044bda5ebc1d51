/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where a path lives: the mount that holds it, the block device under that
 * mount, and the path relative to the root of that device's filesystem.
 * A writer names its components by path; the set needs their devices, and
 * a post-snapshot fix-up needs the same path inside the device's image.
 */
#ifndef VSS_MOUNTINFO_H
#define VSS_MOUNTINFO_H

#include <limits.h>
#include <sys/types.h>

struct vss_mount_of {
	dev_t dev;			/* st_dev of the mount (major:minor) */
	char mount_point[PATH_MAX];	/* where it is mounted here */
	char fs_root[PATH_MAX];		/* the mount's root within its fs */
	char fs_type[32];		/* "ext4", "xfs", ... */
	char source[PATH_MAX];		/* mount source as mountinfo says */
	char rel_path[PATH_MAX];	/* the path, relative to the fs root */
};

/*
 * Resolves @path (made absolute and canonical; it must exist) against
 * @mountinfo (NULL: /proc/self/mountinfo). Return: 0, or a negative errno
 * (-ENOENT for a missing path, -EINVAL for unparseable mountinfo).
 */
int vss_mount_of_path(const char *path, const char *mountinfo,
		      struct vss_mount_of *out);

/*
 * Joins the fs-relative @rel_path onto @image_root, the directory where
 * the device's image is mounted (its fs root). Return: 0 or -ENAMETOOLONG.
 */
int vss_path_in_image(const char *image_root, const char *rel_path,
		      char *out, size_t len);

#endif /* VSS_MOUNTINFO_H */
