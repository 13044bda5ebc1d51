// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Who a device is, in words that survive a reboot, so that a saved
 * changed-block map goes back to the disk it came from and to no other.
 *
 * Kernel names ("vdb", "dm-3") and numbers (252:16) are handed out in
 * probe order and mean nothing in the next boot. What does:
 *   - the links udev makes in /dev/disk/by-id (serial numbers, WWNs,
 *     LVM and md uuids), when udev runs;
 *   - a partition's PARTUUID, from /dev/disk/by-partuuid or udev's
 *     database;
 *   - a device-mapper device's uuid, from sysfs;
 *   - the whole disk's wwid or serial number from sysfs, with the
 *     partition number: what udev's by-id names are made of, read
 *     directly so that it works without udev too.
 * Everything is read relative to vss_system_root(), so that the unit
 * tests can build a fake tree.
 */
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "internal.h"

/* The wwid/serial attributes tried, whole disk relative, in this order. */
static const char *const hardware_attrs[] = {
	"wwid", "device/wwid", "serial", "device/serial",
};

static void system_path(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void system_path(char *buf, size_t len, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	snprintf(buf, len, "%s", vss_system_root());
	used = strlen(buf);
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

/* Copies @src into @dst, cut to fit. */
static void copy_text(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Reads a small text file, without the trailing newline and spaces. */
static int read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	return 0;
}

static int read_dev(const char *path, struct vss_device *out)
{
	unsigned int major, minor;
	char text[32];

	if (read_text(path, text, sizeof(text)) ||
	    sscanf(text, "%u:%u", &major, &minor) != 2)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->major = major;
	out->minor = minor;
	return 0;
}

/* A name usable as one path component: no slash, not "." or "..". */
static bool plain_name(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

void vss_sysfs_name(uint32_t major, uint32_t minor, char *name, size_t len)
{
	char link[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;

	name[0] = '\0';
	system_path(link, sizeof(link), "/sys/dev/block/%u:%u", major, minor);
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/');
	snprintf(name, len, "%s", base ? base + 1 : target);
}

int vss_sysfs_device_by_name(const char *name, struct vss_device *out)
{
	char path[PATH_MAX];

	if (!plain_name(name))
		return -ENOENT;
	system_path(path, sizeof(path), "/sys/class/block/%s/dev", name);
	if (read_dev(path, out))
		return -ENOENT;
	snprintf(out->name, sizeof(out->name), "%s", name);
	return 0;
}

int vss_read_boot_id(struct vss_id *out)
{
	char path[PATH_MAX], text[64];
	int err;

	system_path(path, sizeof(path), "/proc/sys/kernel/random/boot_id");
	err = read_text(path, text, sizeof(text));
	if (err)
		return err;
	return vss_id_parse(text, out);
}

static bool same_device(const struct vss_device *a, const struct vss_device *b)
{
	return a->major == b->major && a->minor == b->minor;
}

static void add_entry(struct vss_cbt_identity *id, uint32_t kind, const char *text)
{
	struct vss_cbt_identity_entry *e;
	size_t i;

	if (!*text || strlen(text) >= VSS_CBT_IDENTITY_MAX ||
	    id->count == VSS_CBT_IDENTITY_COUNT)
		return;
	for (i = 0; i < id->count; i++)
		if (id->entries[i].kind == kind && !strcmp(id->entries[i].text, text))
			return;
	e = &id->entries[id->count++];
	e->kind = kind;
	snprintf(e->text, sizeof(e->text), "%s", text);
}

static int compare_entries(const void *a, const void *b)
{
	const struct vss_cbt_identity_entry *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->text, y->text);
}

/* Every link in a /dev/disk/by-* directory that resolves to @dev. */
static void add_links(struct vss_cbt_identity *id, uint32_t kind,
		      const char *subdir, const struct vss_device *dev)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct dirent *e;
	DIR *d;

	system_path(dir, sizeof(dir), "/dev/disk/%s", subdir);
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0 && S_ISBLK(st.st_mode) &&
		    major(st.st_rdev) == dev->major && minor(st.st_rdev) == dev->minor)
			add_entry(id, kind, e->d_name);
	}
	closedir(d);
}

/* A value of udev's database entry of a device ("E:KEY=value" lines). */
static int udev_property(const struct vss_device *dev, const char *key,
			 char *value, size_t len)
{
	char path[PATH_MAX], line[1024];
	size_t key_len = strlen(key);
	int err = -ENOENT;
	FILE *f;

	system_path(path, sizeof(path), "/run/udev/data/b%u:%u", dev->major,
		    dev->minor);
	f = fopen(path, "re");
	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "E:", 2) || strncmp(line + 2, key, key_len) ||
		    line[2 + key_len] != '=')
			continue;
		line[strcspn(line, "\n")] = '\0';
		copy_text(value, len, line + 3 + key_len);
		err = *value ? 0 : -ENOENT;
		break;
	}
	fclose(f);
	return err;
}

/*
 * The hardware key of the device whose sysfs directory is @dir (a real
 * path): the whole disk's first wwid or serial attribute, and the
 * partition number for a partition.
 */
static int hardware_key(const char *dir, char *key, size_t len)
{
	char path[PATH_MAX * 2], disk[PATH_MAX], value[VSS_CBT_IDENTITY_MAX];
	char partno[32] = "";
	size_t i;

	snprintf(path, sizeof(path), "%s/partition", dir);
	snprintf(disk, sizeof(disk), "%s", dir);
	if (read_text(path, partno, sizeof(partno)) == 0 && partno[0]) {
		char *slash = strrchr(disk, '/');

		if (!slash)
			return -ENOENT;
		*slash = '\0';
	}
	for (i = 0; i < sizeof(hardware_attrs) / sizeof(hardware_attrs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", disk, hardware_attrs[i]);
		if (read_text(path, value, sizeof(value)) || !value[0])
			continue;
		if (partno[0])
			snprintf(key, len, "%s=%s;partition=%s", hardware_attrs[i], value,
				 partno);
		else
			snprintf(key, len, "%s=%s", hardware_attrs[i], value);
		return 0;
	}
	return -ENOENT;
}

static int device_sysfs_dir(const struct vss_device *dev, char *out)
{
	char link[PATH_MAX];

	system_path(link, sizeof(link), "/sys/dev/block/%u:%u", dev->major, dev->minor);
	return realpath(link, out) ? 0 : -ENOENT;
}

void vss_cbt_identity_collect(const struct vss_device *dev,
			      struct vss_cbt_identity *out)
{
	char dir[PATH_MAX], text[VSS_CBT_IDENTITY_MAX + 64], path[PATH_MAX];

	memset(out, 0, sizeof(*out));
	add_links(out, VSS_CBT_ID_BY_ID, "by-id", dev);
	add_links(out, VSS_CBT_ID_PARTUUID, "by-partuuid", dev);
	if (udev_property(dev, "ID_PART_ENTRY_UUID", text, sizeof(text)) == 0)
		add_entry(out, VSS_CBT_ID_PARTUUID, text);
	system_path(path, sizeof(path), "/sys/dev/block/%u:%u/dm/uuid", dev->major,
		    dev->minor);
	if (read_text(path, text, sizeof(text)) == 0)
		add_entry(out, VSS_CBT_ID_DM_UUID, text);
	if (device_sysfs_dir(dev, dir) == 0 &&
	    hardware_key(dir, text, sizeof(text)) == 0)
		add_entry(out, VSS_CBT_ID_HARDWARE, text);
	qsort(out->entries, out->count, sizeof(out->entries[0]), compare_entries);
}

static int resolve_link(const char *subdir, const char *name,
			struct vss_device *out)
{
	char path[PATH_MAX];
	struct stat st;

	if (!plain_name(name))
		return -ENOENT;
	system_path(path, sizeof(path), "/dev/disk/%s/%s", subdir, name);
	if (stat(path, &st) || !S_ISBLK(st.st_mode))
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->major = major(st.st_rdev);
	out->minor = minor(st.st_rdev);
	return 0;
}

/*
 * Adds @candidate to what @found holds so far; two different devices
 * answering one name make the name useless (multipath legs sharing a
 * wwid), which -ENOTUNIQ says.
 */
static int add_match(struct vss_device *found, bool *have,
		     const struct vss_device *candidate)
{
	if (*have && !same_device(found, candidate))
		return -ENOTUNIQ;
	*found = *candidate;
	*have = true;
	return 0;
}

/* udev's database, for a PARTUUID whose by-partuuid link is missing. */
static int resolve_partuuid_in_udev(const char *uuid, struct vss_device *out)
{
	char dir[PATH_MAX], value[VSS_CBT_IDENTITY_MAX];
	struct vss_device found;
	bool have = false;
	struct dirent *e;
	int err = 0;
	DIR *d;

	system_path(dir, sizeof(dir), "/run/udev/data");
	d = opendir(dir);
	if (!d)
		return -ENOENT;
	while (!err && (e = readdir(d))) {
		struct vss_device dev = { 0 };

		if (sscanf(e->d_name, "b%u:%u", &dev.major, &dev.minor) != 2)
			continue;
		if (udev_property(&dev, "ID_PART_ENTRY_UUID", value, sizeof(value)) == 0 &&
		    !strcasecmp(value, uuid))
			err = add_match(&found, &have, &dev);
	}
	closedir(d);
	if (err)
		return err;
	if (!have)
		return -ENOENT;
	*out = found;
	return 0;
}

static int resolve_dm_uuid(const char *uuid, struct vss_device *out)
{
	char dir[PATH_MAX], path[PATH_MAX * 2], text[VSS_CBT_IDENTITY_MAX];
	struct vss_device found, dev;
	bool have = false;
	struct dirent *e;
	int err = 0;
	DIR *d;

	system_path(dir, sizeof(dir), "/sys/block");
	d = opendir(dir);
	if (!d)
		return -ENOENT;
	while (!err && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/dm/uuid", dir, e->d_name);
		if (read_text(path, text, sizeof(text)) || strcmp(text, uuid))
			continue;
		snprintf(path, sizeof(path), "%s/%s/dev", dir, e->d_name);
		if (read_dev(path, &dev) == 0)
			err = add_match(&found, &have, &dev);
	}
	closedir(d);
	if (err)
		return err;
	if (!have)
		return -ENOENT;
	*out = found;
	return 0;
}

static int resolve_hardware(const char *key, struct vss_device *out)
{
	char dir[PATH_MAX], path[PATH_MAX * 2], real[PATH_MAX];
	char text[VSS_CBT_IDENTITY_MAX + 64];
	struct vss_device found, dev;
	bool have = false;
	struct dirent *e;
	int err = 0;
	DIR *d;

	system_path(dir, sizeof(dir), "/sys/class/block");
	d = opendir(dir);
	if (!d)
		return -ENOENT;
	while (!err && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!realpath(path, real) || hardware_key(real, text, sizeof(text)) ||
		    strcmp(text, key))
			continue;
		snprintf(path, sizeof(path), "%s/dev", real);
		if (read_dev(path, &dev) == 0)
			err = add_match(&found, &have, &dev);
	}
	closedir(d);
	if (err)
		return err;
	if (!have)
		return -ENOENT;
	*out = found;
	return 0;
}

int vss_cbt_identity_resolve(const struct vss_cbt_identity_entry *entry,
			     struct vss_device *out)
{
	int err;

	switch (entry->kind) {
	case VSS_CBT_ID_BY_ID:
		return resolve_link("by-id", entry->text, out);
	case VSS_CBT_ID_PARTUUID:
		err = resolve_link("by-partuuid", entry->text, out);
		return err ? resolve_partuuid_in_udev(entry->text, out) : 0;
	case VSS_CBT_ID_DM_UUID:
		return resolve_dm_uuid(entry->text, out);
	case VSS_CBT_ID_HARDWARE:
		return resolve_hardware(entry->text, out);
	default:
		return -ENOENT;
	}
}
