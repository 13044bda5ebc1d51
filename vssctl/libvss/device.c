// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Block devices named by path, turned into the numbers the protocol uses.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/capability.h>

#include "internal.h"

/* The kernel's name of a device, from the sysfs link /sys/dev/block/M:m. */
static void sysfs_device_name(uint32_t major, uint32_t minor, char *name,
			      size_t len)
{
	char link[64], target[PATH_MAX];
	const char *base;
	ssize_t n;

	name[0] = '\0';
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major, minor);
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	n = (ssize_t)strlen(base);
	if ((size_t)n >= len)
		n = (ssize_t)len - 1;	/* kernel names are shorter than this */
	memcpy(name, base, (size_t)n);
	name[n] = '\0';
}

VSS_EXPORT int vss_device_lookup(const char *path, struct vss_device *out)
{
	struct stat st;

	if (!path || !*path)
		return -EINVAL;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	memset(out, 0, sizeof(*out));
	out->major = major(st.st_rdev);
	out->minor = minor(st.st_rdev);
	sysfs_device_name(out->major, out->minor, out->name, sizeof(out->name));
	return 0;
}

VSS_EXPORT int vss_check_privilege(void)
{
	struct __user_cap_header_struct header = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	/* glibc has no capget() wrapper and libcap is not worth a dependency. */
	if (syscall(SYS_capget, &header, data) < 0)
		return -errno;
	if (!(data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)))
		return -EPERM;
	return 0;
}
