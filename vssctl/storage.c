// SPDX-License-Identifier: GPL-2.0
/*
 * Choosing where a set's diff storage goes when the user did not say, and
 * how large it may grow.
 *
 * Storage is best off the devices of the set and the origins of existing
 * snapshots: there, every chunk saved costs one write to another disk.
 * "Lies on" includes the partitions of a whole disk and the devices
 * stacked on top (dm, md), found through sysfs: /sys/dev/block/M:m/
 * <partition>/ and .../holders/. When no such directory exists (a server
 * with one disk), a directory on ext4 or XFS on those devices still takes
 * a same-volume store: the kernel pins its files in DIR/.vss-store/ and
 * writes chunks straight to their blocks (see Documentation/design.rst).
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/sysmacros.h>

#include "vssctl.h"

int vssctl_parse_limit(const char *text, struct vssctl_limit *out)
{
	size_t len = text ? strlen(text) : 0;

	memset(out, 0, sizeof(*out));
	if (len >= 2 && text[len - 1] == '%') {
		unsigned int pct = 0;
		size_t i;

		for (i = 0; i + 1 < len; i++) {
			if (text[i] < '0' || text[i] > '9' || pct > 100)
				return -EINVAL;
			pct = pct * 10 + (unsigned int)(text[i] - '0');
		}
		if (pct < 1 || pct > 100)
			return -EINVAL;
		out->given = true;
		out->percent = true;
		out->pct = pct;
		return 0;
	}
	if (vss_parse_size(text, &out->bytes) || out->bytes == 0)
		return -EINVAL;
	out->given = true;
	return 0;
}

/* Reads a sysfs "dev" file: "252:16\n". */
static int read_dev_file(const char *path, dev_t *out)
{
	unsigned int maj, min;
	FILE *f = fopen(path, "re");
	int n;

	if (!f)
		return -errno;
	n = fscanf(f, "%u:%u", &maj, &min);
	fclose(f);
	if (n != 2)
		return -EINVAL;
	*out = makedev(maj, min);
	return 0;
}

static uint64_t block_device_bytes(dev_t dev)
{
	unsigned long long sectors = 0;
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/size", major(dev),
		 minor(dev));
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &sectors) != 1)
		sectors = 0;
	fclose(f);
	return (uint64_t)sectors * 512;	/* sysfs counts 512-byte sectors */
}

int vssctl_resolve_limit(const char *path, const struct vssctl_limit *limit,
			 uint64_t *bytes)
{
	struct statvfs vfs;
	struct stat st;
	uint64_t base;

	if (!limit->percent) {
		*bytes = limit->bytes;
		return 0;
	}
	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		base = block_device_bytes(st.st_rdev);
		if (!base)
			return -ENODEV;
	} else {
		if (statvfs(path, &vfs) < 0)
			return -errno;
		base = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	}
	*bytes = base / 100 * limit->pct;
	return 0;
}

struct devset {
	dev_t *items;
	size_t count;
	size_t capacity;
};

static bool devset_has(const struct devset *s, dev_t dev)
{
	size_t i;

	for (i = 0; i < s->count; i++)
		if (s->items[i] == dev)
			return true;
	return false;
}

static int devset_add(struct devset *s, dev_t dev)
{
	if (s->count == s->capacity) {
		size_t capacity = s->capacity ? 2 * s->capacity : 32;
		dev_t *items = realloc(s->items, capacity * sizeof(*items));

		if (!items)
			return -ENOMEM;
		s->items = items;
		s->capacity = capacity;
	}
	s->items[s->count++] = dev;
	return 0;
}

/* Deeper stacks than this (dm on md on dm ...) are not followed. */
#define MAX_STACK_DEPTH	16

/* Adds @dev, its partitions and, recursively, what is stacked on them. */
static void add_device_stack(struct devset *s, dev_t dev, int depth)
{
	char dir[96], path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (depth > MAX_STACK_DEPTH || devset_has(s, dev) || devset_add(s, dev))
		return;
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", major(dev), minor(dev));

	d = opendir(dir);
	if (d) {
		while ((e = readdir(d))) {
			dev_t part;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s/partition", dir, e->d_name);
			if (access(path, F_OK))
				continue;
			snprintf(path, sizeof(path), "%s/%s/dev", dir, e->d_name);
			if (!read_dev_file(path, &part))
				add_device_stack(s, part, depth + 1);
		}
		closedir(d);
	}

	snprintf(path, sizeof(path), "%s/holders", dir);
	d = opendir(path);
	if (d) {
		while ((e = readdir(d))) {
			dev_t holder;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/sys/class/block/%s/dev", e->d_name);
			if (!read_dev_file(path, &holder))
				add_device_stack(s, holder, depth + 1);
		}
		closedir(d);
	}
}

/*
 * The block device holding the filesystem of @dir. st_dev names it
 * directly, except on filesystems with anonymous device numbers (btrfs,
 * overlayfs), where the mount's source in mountinfo does. -ENOENT when
 * no block device is behind it (tmpfs).
 */
static int filesystem_device(const char *dir, dev_t *out)
{
	char line[4096];
	struct stat st;
	FILE *f;
	int err = -ENOENT;

	if (stat(dir, &st) < 0)
		return -errno;
	if (major(st.st_dev) != 0) {
		*out = st.st_dev;
		return 0;
	}
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned int maj, min;
		char *sep, source[PATH_MAX];
		struct stat src;

		/* "36 35 0:31 / /mnt rw - btrfs /dev/vdc rw": after " - ", type and source */
		if (sscanf(line, "%*u %*u %u:%u", &maj, &min) != 2 ||
		    makedev(maj, min) != st.st_dev)
			continue;
		sep = strstr(line, " - ");
		if (!sep || sscanf(sep + 3, "%*s %4095s", source) != 1)
			continue;
		if (source[0] == '/' && stat(source, &src) == 0 &&
		    S_ISBLK(src.st_mode)) {
			*out = src.st_rdev;
			err = 0;
		}
		break;
	}
	fclose(f);
	return err;
}

static void device_name(dev_t dev, char *buf, size_t len)
{
	char link[96], target[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0) {
		snprintf(buf, len, "%u:%u", major(dev), minor(dev));
		return;
	}
	target[n] = '\0';
	base = strrchr(target, '/');
	snprintf(buf, len, "/dev/%s", base ? base + 1 : target);
}

bool vssctl_dir_on_devices(const char *dir, const struct vss_device *avoid,
			   size_t avoid_count, char *culprit, size_t culprit_len)
{
	struct devset covered = { 0 };
	dev_t fs_dev;
	bool on = false;
	size_t i;

	if (filesystem_device(dir, &fs_dev))
		return false;
	for (i = 0; i < avoid_count; i++)
		add_device_stack(&covered, makedev(avoid[i].major, avoid[i].minor), 0);
	if (devset_has(&covered, fs_dev)) {
		on = true;
		device_name(fs_dev, culprit, culprit_len);
	}
	free(covered.items);
	return on;
}

static void append_why(char *why, size_t len, const char *fmt, const char *a,
		       const char *b)
{
	size_t used = strlen(why);

	if (used && used + 2 < len) {
		strcat(why, "; ");
		used += 2;
	}
	if (used < len)
		snprintf(why + used, len - used, fmt, a, b);
}

bool vssctl_can_hold_same_volume_store(const char *dir)
{
	struct statfs fs;

	if (statfs(dir, &fs) < 0)
		return false;
	return fs.f_type == EXT4_SUPER_MAGIC || fs.f_type == XFS_SUPER_MAGIC;
}

/*
 * The first candidate, if it does not exist yet, is judged by its parent.
 * With @on_device (not NULL), a candidate on the devices is taken if its
 * filesystem can hold a same-volume store, and @on_device names the device.
 */
static bool try_candidate(const char *dir, bool create, const struct vss_device *avoid,
			  size_t avoid_count, char *on_device, size_t on_device_len,
			  char *why, size_t why_len)
{
	char probe[PATH_MAX], culprit[64];
	struct stat st;
	bool exists = stat(dir, &st) == 0;

	if (exists && !S_ISDIR(st.st_mode)) {
		append_why(why, why_len, "%s is not a directory%s", dir, "");
		return false;
	}
	if (!exists && !create) {
		append_why(why, why_len, "%s does not exist%s", dir, "");
		return false;
	}
	snprintf(probe, sizeof(probe), "%s", dir);
	if (!exists) {
		char *slash = strrchr(probe, '/');

		if (!slash)
			snprintf(probe, sizeof(probe), ".");
		else if (slash == probe)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	if (vssctl_dir_on_devices(probe, avoid, avoid_count, culprit, sizeof(culprit))) {
		if (!on_device) {
			append_why(why, why_len,
				   "%s is on %s, which is being or has been snapshotted",
				   dir, culprit);
			return false;
		}
		if (!vssctl_can_hold_same_volume_store(probe)) {
			append_why(why, why_len,
				   "%s is on %s, which is snapshotted, and not on ext4 or XFS",
				   dir, culprit);
			return false;
		}
		snprintf(on_device, on_device_len, "%s", culprit);
	}
	if (!exists && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		append_why(why, why_len, "cannot create %s: %s", dir, strerror(errno));
		return false;
	}
	return true;
}

int vssctl_pick_storage(const struct vss_device *avoid, size_t avoid_count,
			char *path, size_t path_len, char *on_device, size_t on_device_len,
			char *why, size_t why_len)
{
	const char *preferred = getenv("VSSCTL_STORAGE_DIR");

	if (why_len)
		why[0] = '\0';
	if (on_device_len)
		on_device[0] = '\0';
	if (!preferred || !*preferred)
		preferred = VSSCTL_DEFAULT_STORAGE_DIR;
	if (try_candidate(preferred, true, avoid, avoid_count, NULL, 0, why, why_len)) {
		snprintf(path, path_len, "%s", preferred);
		return 0;
	}
	if (try_candidate(VSSCTL_FALLBACK_STORAGE_DIR, false, avoid, avoid_count,
			  NULL, 0, why, why_len)) {
		snprintf(path, path_len, "%s", VSSCTL_FALLBACK_STORAGE_DIR);
		return 0;
	}
	/* Nothing off the devices: a same-volume store on one of them. */
	if (try_candidate(preferred, true, avoid, avoid_count, on_device, on_device_len,
			  why, why_len)) {
		snprintf(path, path_len, "%s", preferred);
		return 0;
	}
	return -ENOENT;
}
