// SPDX-License-Identifier: GPL-2.0
/*
 * Which block devices a writer's components live on, and whether a set
 * of volumes holds all of a device's data. A device is covered when it is
 * in the set, or when everything below it is: the whole disk of a
 * partition, every device a device-mapper or md device is stacked on
 * (sysfs "slaves"). Only stat(), /proc and /sys are read: none of them
 * can be frozen.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "daemon.h"

#define MAX_STACK_DEPTH	16

static int read_small_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static void sys_block_path(const struct wd_daemon *d, dev_t dev, const char *leaf,
			   char *buf, size_t len)
{
	snprintf(buf, len, "%s/sys/dev/block/%u:%u%s%s", d->sysroot, major(dev), minor(dev),
		 leaf ? "/" : "", leaf ? leaf : "");
}

static int parse_majmin(const char *text, dev_t *out)
{
	unsigned int ma, mi;
	char tail;

	if (sscanf(text, "%u:%u%c", &ma, &mi, &tail) == 3 && tail != '\n')
		return -EINVAL;
	if (sscanf(text, "%u:%u", &ma, &mi) != 2)
		return -EINVAL;
	*out = makedev(ma, mi);
	return 0;
}

int wd_device_parse(const struct wd_daemon *d, const char *text, dev_t *out,
		    char *why, size_t why_len)
{
	struct stat st;

	(void)d;
	if (text[0] != '/') {
		if (parse_majmin(text, out)) {
			snprintf(why, why_len, "\"%s\" is neither a device path nor MAJOR:MINOR",
				 text);
			return -EINVAL;
		}
		return 0;
	}
	if (stat(text, &st) < 0) {
		snprintf(why, why_len, "%s: %s", text, strerror(errno));
		return -errno;
	}
	if (!S_ISBLK(st.st_mode)) {
		snprintf(why, why_len, "%s: not a block device", text);
		return -ENOTBLK;
	}
	*out = st.st_rdev;
	return 0;
}

/* The source device of the mount whose device number is @fsdev. */
static int mount_source(dev_t fsdev, dev_t *out)
{
	char line[8192];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char majmin[64], *sep, source[4096];
		struct stat st;
		dev_t dev;

		if (sscanf(line, "%*d %*d %63s", majmin) != 1 || parse_majmin(majmin, &dev) ||
		    dev != fsdev)
			continue;
		sep = strstr(line, " - ");
		if (!sep || sscanf(sep + 3, "%*s %4095s", source) != 1)
			continue;
		if (source[0] == '/' && stat(source, &st) == 0 && S_ISBLK(st.st_mode)) {
			*out = st.st_rdev;
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

int wd_device_of_path(const struct wd_daemon *d, const char *path, dev_t *out,
		      char *why, size_t why_len)
{
	struct stat st;

	(void)d;
	if (stat(path, &st) < 0) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (S_ISBLK(st.st_mode)) {
		*out = st.st_rdev;
		return 0;
	}
	if (major(st.st_dev) != 0) {
		*out = st.st_dev;
		return 0;
	}
	/* btrfs and the like number their filesystems anonymously. */
	if (mount_source(st.st_dev, out) == 0)
		return 0;
	snprintf(why, why_len, "%s is on a filesystem without a block device", path);
	return -ENODEV;
}

static bool in_set(dev_t dev, const dev_t *vols, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (vols[i] == dev)
			return true;
	return false;
}

static int dev_of_sysdir(const char *dir, dev_t *out)
{
	char path[PATH_MAX + 8], text[64];

	snprintf(path, sizeof(path), "%s/dev", dir);
	if (read_small_file(path, text, sizeof(text)))
		return -ENOENT;
	return parse_majmin(text, out);
}

static bool covered(const struct wd_daemon *d, dev_t dev, const dev_t *vols,
		    size_t count, int depth)
{
	char path[PATH_MAX], real[PATH_MAX], sub[PATH_MAX + 300];
	struct dirent *de;
	bool any = false, all = true;
	DIR *dir;
	dev_t lower;

	if (in_set(dev, vols, count))
		return true;
	if (depth >= MAX_STACK_DEPTH)
		return false;
	sys_block_path(d, dev, NULL, path, sizeof(path));
	if (!realpath(path, real))
		return false;
	snprintf(sub, sizeof(sub), "%s/partition", real);
	if (access(sub, F_OK) == 0) {
		char *slash = strrchr(real, '/');

		if (!slash)
			return false;
		*slash = '\0';
		return dev_of_sysdir(real, &lower) == 0 &&
		       covered(d, lower, vols, count, depth + 1);
	}
	snprintf(sub, sizeof(sub), "%s/slaves", real);
	dir = opendir(sub);
	if (!dir)
		return false;
	while ((de = readdir(dir))) {
		char lowdir[PATH_MAX * 2];

		if (de->d_name[0] == '.')
			continue;
		snprintf(lowdir, sizeof(lowdir), "%s/%s", sub, de->d_name);
		if (dev_of_sysdir(lowdir, &lower)) {
			all = false;
			break;
		}
		any = true;
		if (!covered(d, lower, vols, count, depth + 1)) {
			all = false;
			break;
		}
	}
	closedir(dir);
	return any && all;
}

bool wd_device_covered(const struct wd_daemon *d, dev_t dev, const dev_t *vols,
		       size_t count)
{
	return covered(d, dev, vols, count, 0);
}

void wd_device_name(const struct wd_daemon *d, dev_t dev, char *buf, size_t len)
{
	char path[PATH_MAX], text[1024], *p;

	sys_block_path(d, dev, "uevent", path, sizeof(path));
	if (read_small_file(path, text, sizeof(text)) == 0) {
		p = strstr(text, "DEVNAME=");
		if (p) {
			p += strlen("DEVNAME=");
			p[strcspn(p, "\n")] = '\0';
			snprintf(buf, len, "%s", p);
			return;
		}
	}
	snprintf(buf, len, "%u:%u", major(dev), minor(dev));
}

struct json_object *wd_device_json(const struct wd_daemon *d, dev_t dev)
{
	struct json_object *o = json_object_new_object();
	char name[64];

	wd_device_name(d, dev, name, sizeof(name));
	json_object_object_add(o, "major", json_object_new_int64(major(dev)));
	json_object_object_add(o, "minor", json_object_new_int64(minor(dev)));
	json_object_object_add(o, "name", json_object_new_string(name));
	return o;
}

static int add_volume(struct wd_component *c, dev_t dev)
{
	dev_t *grown;

	if (in_set(dev, c->volumes, c->volume_count))
		return 0;
	grown = realloc(c->volumes, (c->volume_count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	c->volumes = grown;
	c->volumes[c->volume_count++] = dev;
	return 0;
}

int wd_components_resolve(const struct wd_daemon *d, struct wd_component *c,
			  size_t n, char *why, size_t why_len)
{
	char inner[VSW_MESSAGE_MAX];
	size_t i, j;
	dev_t dev;
	int err;

	for (i = 0; i < n; i++) {
		c[i].volume_count = 0;
		for (j = 0; j < c[i].path_count; j++) {
			err = wd_device_of_path(d, c[i].paths[j], &dev, inner, sizeof(inner));
			if (!err)
				err = add_volume(&c[i], dev);
			if (err)
				goto fail;
		}
		for (j = 0; j < c[i].device_count; j++) {
			err = wd_device_parse(d, c[i].devices[j], &dev, inner, sizeof(inner));
			if (!err)
				err = add_volume(&c[i], dev);
			if (err)
				goto fail;
		}
	}
	return 0;
fail:
	if (err == -ENOMEM)
		snprintf(inner, sizeof(inner), "out of memory");
	snprintf(why, why_len, "component \"%s\": %s", c[i].name, inner);
	return err;
}
