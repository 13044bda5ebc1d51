// SPDX-License-Identifier: GPL-2.0
#include "image_mount.h"

#include <errno.h>
#include <fcntl.h>
#include <libvss.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int vsw_private_mounts(void)
{
	if (unshare(CLONE_NEWNS))
		return -errno;
	/* Host mounts still reach us; ours never reach the host. */
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL))
		return -errno;
	return 0;
}

/* The image device of @origin_dev in @set_id, as "/dev/vssN". */
static int find_image(const char *set_id, dev_t origin_dev, char *image,
		      size_t len, char *why, size_t why_len)
{
	struct vss_snapshot_info *snaps = NULL;
	struct vss_handle *h = NULL;
	struct vss_id set;
	size_t count = 0, i;
	int ret;

	ret = vss_id_parse(set_id, &set);
	if (ret) {
		snprintf(why, why_len, "bad snapshot set id \"%s\"", set_id);
		return ret;
	}
	ret = vss_open(&h);
	if (!ret)
		ret = vss_list_snapshots(h, NULL, &snaps, &count);
	if (ret) {
		snprintf(why, why_len, "cannot list the snapshots: %s",
			 vss_strerror(ret));
		vss_close(h);
		return ret;
	}
	ret = -ENOENT;
	for (i = 0; i < count; i++) {
		if (memcmp(&snaps[i].set_id, &set, sizeof(set)) ||
		    snaps[i].origin.major != major(origin_dev) ||
		    snaps[i].origin.minor != minor(origin_dev))
			continue;
		if (snaps[i].state != VSS_STATE_ACTIVE) {
			snprintf(why, why_len, "the snapshot of %u:%u is %s: %s",
				 major(origin_dev), minor(origin_dev),
				 vss_state_name(snaps[i].state), snaps[i].reason);
			ret = -EIO;
		} else {
			snprintf(image, len, "/dev/%s", snaps[i].image.name);
			ret = 0;
		}
		break;
	}
	if (ret == -ENOENT)
		snprintf(why, why_len, "device %u:%u is not in snapshot set %s",
			 major(origin_dev), minor(origin_dev), set_id);
	vss_snapshot_info_array_free(snaps, count);
	vss_close(h);
	return ret;
}

int image_mount(const char *set_id, dev_t origin_dev, const char *fs_type,
		struct image_mount *out, char *why, size_t why_len)
{
	const char *opts = strcmp(fs_type, "xfs") ? "" : "nouuid";
	int ret;

	memset(out, 0, sizeof(*out));
	ret = find_image(set_id, origin_dev, out->image, sizeof(out->image),
			 why, why_len);
	if (ret)
		return ret;
	if (mkdir("/run/vss", 0755) && errno != EEXIST) {
		ret = -errno;
		snprintf(why, why_len, "/run/vss: %s", strerror(errno));
		return ret;
	}
	snprintf(out->dir, sizeof(out->dir), "/run/vss/writer-image.XXXXXX");
	if (!mkdtemp(out->dir)) {
		ret = -errno;
		snprintf(why, why_len, "%s: %s", out->dir, strerror(errno));
		out->dir[0] = 0;
		return ret;
	}
	if (mount(out->image, out->dir, fs_type, MS_NOATIME | MS_NODEV |
		  MS_NOSUID, opts)) {
		ret = -errno;
		snprintf(why, why_len, "cannot mount the image %s (%s): %s",
			 out->image, fs_type, strerror(errno));
		rmdir(out->dir);
		out->dir[0] = 0;
		return ret;
	}
	return 0;
}

int image_umount(struct image_mount *m)
{
	int fd, ret = 0;

	if (!m->dir[0])
		return 0;
	fd = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (syncfs(fd))
			ret = -errno;
		close(fd);
	}
	if (umount(m->dir) && !ret)
		ret = -errno;
	if (!ret)
		rmdir(m->dir);
	m->dir[0] = 0;
	return ret;
}
