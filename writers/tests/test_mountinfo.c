// SPDX-License-Identifier: GPL-2.0
/*
 * vss_mount_of_path() against mountinfo files written here: the deepest
 * mount wins, a later mount on the same point hides an earlier one, a
 * bind mount's root is prefixed, escapes are undone.
 */
#include "../common/mountinfo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int failures;

#define CHECK(cond) do { if (!(cond)) { failures++; \
	fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); } } while (0)

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f)) {
		perror(path);
		exit(1);
	}
}

int main(void)
{
	char dir[] = "/tmp/vss-mountinfo.XXXXXX", mi[128], sub[160], out[256];
	char info[2048];
	struct vss_mount_of m;

	if (!mkdtemp(dir))
		return 1;
	snprintf(sub, sizeof(sub), "%s/a b/c", dir);
	snprintf(mi, sizeof(mi), "%s/a b", dir);
	mkdir(mi, 0755);
	mkdir(sub, 0755);
	snprintf(mi, sizeof(mi), "%s/mountinfo", dir);
	snprintf(info, sizeof(info),
		 "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
		 "2 1 253:0 / %s rw shared:1 - xfs /dev/vdb rw\n"
		 "3 2 253:1 /sub %s/a\\040b rw - ext4 /dev/vdc rw\n"
		 "4 2 253:2 / %s/a\\040b rw - ext4 /dev/vdd rw\n"
		 "garbage line\n", dir, dir, dir);
	write_file(mi, info);

	CHECK(vss_mount_of_path(sub, mi, &m) == 0);
	CHECK(m.dev == makedev(253, 2));
	CHECK(!strcmp(m.rel_path, "/c"));
	CHECK(!strcmp(m.fs_type, "ext4"));

	snprintf(info, sizeof(info),
		 "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
		 "3 1 253:1 /sub %s/a\\040b rw - ext4 /dev/vdc rw\n", dir);
	write_file(mi, info);
	CHECK(vss_mount_of_path(sub, mi, &m) == 0);
	CHECK(m.dev == makedev(253, 1));
	CHECK(!strcmp(m.rel_path, "/sub/c"));
	CHECK(vss_mount_of_path(dir, mi, &m) == 0);
	CHECK(m.dev == makedev(8, 1));
	CHECK(!strncmp(m.rel_path, dir, strlen(dir)));

	CHECK(vss_path_in_image("/mnt/img/", "/sub/c", out, sizeof(out)) == 0);
	CHECK(!strcmp(out, "/mnt/img/sub/c"));
	CHECK(vss_path_in_image("/mnt/img", "/", out, sizeof(out)) == 0);
	CHECK(!strcmp(out, "/mnt/img"));
	CHECK(vss_mount_of_path("/nonexistent/xyz", mi, &m) == -ENOENT);

	unlink(mi);
	rmdir(sub);
	snprintf(mi, sizeof(mi), "%s/a b", dir);
	rmdir(mi);
	rmdir(dir);
	printf("%s: %s\n", "test_mountinfo", failures ? "FAIL" : "ok");
	return failures ? 1 : 0;
}
