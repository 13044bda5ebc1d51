// SPDX-License-Identifier: GPL-2.0
/*
 * libvss changed-block tracking against the simulated module: tracking,
 * points, the changes streamed and merged, mark-dirty, and the state file
 * (format, checksum, atomic write, restore after a module reload or a
 * reboot, device identity). A fake tree of /dev, /sys and /proc is built
 * under the scratch directory and handed to the library through
 * vss_system_root() (tests/fake_kernel.c).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <linux/capability.h>

#include "fake_kernel.h"
#include "harness.h"
#include "libvss/internal.h"

#define TEST_MAJOR	240
#define BS		FAKE_CBT_BLOCK_SIZE
#define DISKS		7

static char nodes[DISKS][PATH_MAX];	/* nodes[n]: TEST_MAJOR:n */
static char root[PATH_MAX], state_dir[PATH_MAX / 2], store_dir[PATH_MAX];
static bool have_devices = true;

/* ---- the fake system tree ---- */

static void make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t i;

	snprintf(buf, sizeof(buf), "%s", path);
	for (i = 1; buf[i]; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		mkdir(buf, 0755);
		buf[i] = '/';
	}
	mkdir(buf, 0755);
}

static void put_file(const char *rel, const char *text)
{
	char path[PATH_MAX * 2], dir[PATH_MAX * 2];
	char *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	make_dirs(dir);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static void remove_file(const char *rel)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	unlink(path);
}

static void put_link(const char *rel, const char *target)
{
	char path[PATH_MAX * 2], dir[PATH_MAX * 2];
	char *slash;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	make_dirs(dir);
	unlink(path);
	if (symlink(target, path))
		abort();
}

/* A block device of the fake sysfs, under devices/virtual/block/@path. */
static void sys_device(const char *path, const char *name, unsigned int minor)
{
	char rel[PATH_MAX], target[PATH_MAX], dev[32];

	snprintf(dev, sizeof(dev), "%u:%u\n", TEST_MAJOR, minor);
	snprintf(rel, sizeof(rel), "sys/devices/virtual/block/%s/dev", path);
	put_file(rel, dev);
	snprintf(rel, sizeof(rel), "sys/class/block/%s", name);
	snprintf(target, sizeof(target), "../../devices/virtual/block/%s", path);
	put_link(rel, target);
	snprintf(rel, sizeof(rel), "sys/dev/block/%u:%u", TEST_MAJOR, minor);
	put_link(rel, target);
	if (!strchr(path, '/')) {
		snprintf(rel, sizeof(rel), "sys/block/%s", name);
		snprintf(target, sizeof(target), "../devices/virtual/block/%s", path);
		put_link(rel, target);
	}
}

static void set_boot_id(const char *id)
{
	char text[64];

	snprintf(text, sizeof(text), "%s\n", id);
	put_file("proc/sys/kernel/random/boot_id", text);
}

#define OTHER_BOOT_ID	"b0070000-0000-4000-8000-0000000000ff"

/*
 * fake1: serial and a by-id link; fake2: nothing stable; fake3: a
 * device-mapper uuid; fake4: partition 1 of a disk with a serial; fake5:
 * a PARTUUID in udev's database; fake6: no serial yet.
 */
static void setup(void)
{
	const char *dir = t_tmpdir();
	int i;

	for (i = 1; i < DISKS; i++) {
		snprintf(nodes[i], PATH_MAX, "%s/blk-%d", dir, i);
		if (mknod(nodes[i], S_IFBLK | 0600, makedev(TEST_MAJOR, (unsigned int)i)))
			have_devices = false;
	}
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
	snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
	mkdir(root, 0755);
	mkdir(state_dir, 0700);
	mkdir(store_dir, 0700);
	snprintf(fake_system_root, sizeof(fake_system_root), "%s", root);
	set_boot_id(FAKE_BOOT_ID);

	sys_device("fake1", "fake1", 1);
	put_file("sys/devices/virtual/block/fake1/serial", "SER-ONE\n");
	put_link("dev/disk/by-id/virtio-SER-ONE", nodes[1]);
	sys_device("fake2", "fake2", 2);
	sys_device("fake3", "fake3", 3);
	put_file("sys/devices/virtual/block/fake3/dm/uuid", "LVM-abcdef\n");
	put_file("sys/devices/virtual/block/disk4/serial", "SER-FOUR\n");
	sys_device("disk4/fake4", "fake4", 4);
	put_file("sys/devices/virtual/block/disk4/fake4/partition", "1\n");
	sys_device("fake5", "fake5", 5);
	put_file("run/udev/data/b240:5", "S:disk/by-partuuid/x\nE:ID_PART_ENTRY_UUID=1234abcd-01\n");
	sys_device("fake6", "fake6", 6);
}

/* ---- sessions ---- */

struct session {
	struct fake_kernel *k;
	struct vss_handle *h;
};

static void session_open(struct session *s, const struct fake_options *opts)
{
	int fd;

	s->k = fake_kernel_start(opts, &fd);
	if (vss_open_fd(fd, &s->h))
		abort();
}

static void session_close(struct session *s)
{
	vss_close(s->h);
	fake_kernel_stop(s->k);
}

static struct fake_state *st(struct session *s)
{
	return &s->k->state;
}

/*
 * The boot both the module and /proc say it is. A new boot starts the
 * disks' counters from zero, as the block layer's do.
 */
static void boot(struct session *s, const char *id, bool fresh)
{
	struct vss_id bytes;

	set_boot_id(id);
	if (vss_id_parse(id, &bytes))
		abort();
	memcpy(st(s)->boot_id, bytes.bytes, VSS_ID_LEN);
	if (fresh)
		memset(st(s)->disks, 0, sizeof(st(s)->disks));
}

static void write_blocks(struct session *s, unsigned int minor, uint64_t first,
			 uint64_t count)
{
	fake_cbt_write(st(s), TEST_MAJOR, minor, first * BS, count * BS);
}

/* A set of one snapshot of @minor; its point in @point. */
static int snapshot(struct session *s, unsigned int minor, struct vss_cbt_point *point)
{
	const char *one[] = { nodes[minor] };
	struct vss_create_params p = {
		.devices = one, .device_count = 1, .storage_path = store_dir,
		.storage_limit = 1 << 20,
	};
	struct vss_create_result set;
	int err = vss_create_set(s->h, &p, &set);

	if (err)
		return err;
	if (set.snapshot_count != 1 || !set.snapshots[0].has_cbt_point)
		err = -EPROTO;
	else if (point)
		*point = set.snapshots[0].cbt_point;
	vss_create_result_free(&set);
	return err;
}

static void delete_all(struct session *s)
{
	vss_delete_all(s->h, VSS_DELETE_FORCE, NULL, NULL, NULL);
}

/* Collects what vss_cbt_changes() hands over. */
struct collected {
	struct vss_cbt_extent items[2048];
	size_t count;
	int stop_after;			/* 0: never */
};

static int collect(uint64_t offset, uint64_t length, void *arg)
{
	struct collected *c = arg;

	if (c->count < sizeof(c->items) / sizeof(c->items[0])) {
		c->items[c->count].offset = offset;
		c->items[c->count].length = length;
	}
	c->count++;
	return c->stop_after && (int)c->count == c->stop_after ? 7 : 0;
}

static int changes(struct session *s, unsigned int minor, const struct vss_cbt_point *from,
		   const struct vss_cbt_point *to, struct collected *c,
		   struct vss_cbt_totals *totals)
{
	memset(c, 0, sizeof(*c));
	return vss_cbt_changes(s->h, nodes[minor], from, to, collect, c, totals);
}

static bool extent_is(const struct collected *c, size_t i, uint64_t offset,
		      uint64_t length)
{
	return i < c->count && c->items[i].offset == offset && c->items[i].length == length;
}

static size_t count_dir_entries(const char *dir, bool hidden_only)
{
	struct dirent *e;
	size_t n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    (!hidden_only || e->d_name[0] == '.'))
			n++;
	closedir(d);
	return n;
}

static void clear_dir(const char *dir)
{
	char path[PATH_MAX * 2];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

/* ---- the tests ---- */

static void test_crc32c(void)
{
	t_int_eq(vss_crc32c(0, "123456789", 9), 0xE3069283, "CRC-32C check value");
	t_int_eq(vss_crc32c(vss_crc32c(0, "1234", 4), "56789", 5), 0xE3069283,
		 "CRC-32C computed in two parts");
	t_int_eq(vss_crc32c(0, "", 0), 0, "CRC-32C of nothing");
}

static void test_points(void)
{
	struct vss_cbt_point p, q;
	char text[VSS_CBT_POINT_STRLEN];
	static const char *const bad[] = {
		"", ":", "3f2a:1", "9e000000-0000-4000-8000-0000000000aa",
		"9e000000-0000-4000-8000-0000000000aa:",
		"9e000000-0000-4000-8000-0000000000aa:-1",
		"9e000000-0000-4000-8000-0000000000aa:+1",
		"9e000000-0000-4000-8000-0000000000aa: 1",
		"9e000000-0000-4000-8000-0000000000aa:1a",
		"9e000000-0000-4000-8000-0000000000aa:1:2",
		"9e000000-0000-4000-8000-0000000000aa:18446744073709551616",
		"9e00-0000-0000-4000-8000-0000000000aa:1",
		"zz000000-0000-4000-8000-0000000000aa:1",
	};
	size_t i;
	bool all = true;

	t_int_eq(vss_cbt_point_parse("9E000000-0000-4000-8000-0000000000AA:12", &p), 0,
		 "point parses, any case");
	vss_cbt_point_format(&p, text);
	t_str_eq(text, "9e000000-0000-4000-8000-0000000000aa:12", "point formats canonically");
	t_int_eq(vss_cbt_point_parse("9e000000000040008000" "0000000000aa:18446744073709551615",
				     &q), 0, "generation without dashes, largest sequence");
	t_ok(vss_id_equal(&p.generation, &q.generation) && q.seq == UINT64_MAX,
	     "... read right");
	vss_cbt_point_format(&q, text);
	t_int_eq((long long)strlen(text) + 1, VSS_CBT_POINT_STRLEN,
		 "the longest point fills VSS_CBT_POINT_STRLEN exactly");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vss_cbt_point_parse(bad[i], &p) != -EINVAL) {
			t_diag("accepted: \"%s\"", bad[i]);
			all = false;
		}
	t_ok(all, "malformed points refused with EINVAL");
	t_int_eq(vss_cbt_point_parse(NULL, &p), -EINVAL, "NULL point refused");

	t_ok(vss_cbt_needs_full_backup(-LIBVSS_ECBT_STALE) &&
	     vss_cbt_needs_full_backup(LIBVSS_ECBT_TOO_OLD) &&
	     !vss_cbt_needs_full_backup(-ENOENT) && !vss_cbt_needs_full_backup(0),
	     "needs_full_backup for ESTALE and ENODATA only");
	t_contains(vss_strerror(-LIBVSS_ECBT_STALE), "take a full backup",
		   "ESTALE text says to take a full backup");
	t_contains(vss_strerror(-LIBVSS_ECBT_TOO_OLD), "take a full backup",
		   "ENODATA text says to take a full backup");
	t_str_eq(vss_cbt_verdict_name(VSS_CBT_VERDICT_CONTINUED), "continued", "verdict name");
	t_str_eq(vss_cbt_verdict_name(VSS_CBT_VERDICT_NEW_GENERATION), "new-generation",
		 "verdict name of a new generation");
	t_str_eq(vss_cbt_verdict_name(0), "unknown", "unknown verdict");
	t_str_eq(vss_event_name(VSS_EVENT_CBT_HISTORY_DROPPED), "cbt-history-dropped",
		 "tracking event name");
}

static void test_track(void)
{
	struct fake_options opts = { 0 };
	struct vss_cbt_info info, again, *list;
	struct vss_event_info ev;
	struct session s;
	uint32_t before;
	size_t n;

	session_open(&s, &opts);
	vss_event_attach_fd(s.h, fake_kernel_event_socket(s.k));
	t_int_eq(vss_track(s.h, nodes[1], &info), 0, "track a device");
	t_ok(info.device.major == TEST_MAJOR && info.device.minor == 1 &&
	     !strcmp(info.device.name, "fake1"), "... its device");
	t_ok(info.seq == 0 && info.oldest_seq == 0 && info.block_size == BS &&
	     info.size == FAKE_CBT_SIZE && info.started_ns > 0,
	     "... a new generation at point 0, block size and size");
	t_int_eq(vss_event_next(s.h, &ev, 1000), 0, "an event of the new generation");
	t_ok(ev.type == VSS_EVENT_CBT_NEW_GENERATION && (ev.present & VSS_EVENT_HAS_CBT) &&
	     ev.cbt.device.minor == 1 && vss_id_equal(&ev.cbt.generation, &info.generation) &&
	     !strcmp(ev.reason, "tracking started"), "... carrying the tracking state");

	t_int_eq(vss_track(s.h, nodes[1], &again), -EALREADY, "tracked twice: EALREADY");
	t_str_eq(vss_last_error_object(s.h), nodes[1], "... naming the device as given");
	t_str_eq(vss_last_error_message(s.h), "device is already tracked",
		 "... with the module's message");
	t_int_eq(vss_cbt_get_info(s.h, nodes[1], &again), 0, "get the tracking state");
	t_ok(vss_id_equal(&again.generation, &info.generation) && again.map_bytes > 0,
	     "... same generation, map memory told");
	t_int_eq(vss_track(s.h, nodes[2], NULL), 0, "track without wanting the state");
	t_int_eq(vss_cbt_list(s.h, &list, &n), 0, "list tracked devices");
	t_ok(n == 2 && list[0].device.minor == 1 && list[1].device.minor == 2 &&
	     !vss_id_equal(&list[0].generation, &list[1].generation),
	     "two devices, ordered, each its own generation");
	vss_cbt_info_array_free(list);
	t_int_eq(vss_untrack(s.h, nodes[2]), 0, "untrack");
	t_int_eq(vss_untrack(s.h, nodes[2]), -ENOENT, "untrack twice: ENOENT");
	t_str_eq(vss_last_error_object(s.h), nodes[2], "... naming the device");
	t_int_eq(vss_cbt_get_info(s.h, nodes[2], &again), -ENOENT, "untracked: no state");
	t_str_eq(vss_last_error_message(s.h), "device is not tracked", "... not tracked");

	before = st(&s)->requests;
	t_int_eq(vss_track(s.h, "/dev/null", NULL), -ENOTBLK, "character device: ENOTBLK");
	t_str_eq(vss_last_error_message(s.h), "not a block device", "... said so");
	t_int_eq(vss_track(s.h, "/nonexistent/dev", NULL), -ENOENT, "missing device: ENOENT");
	t_str_eq(vss_last_error_object(s.h), "/nonexistent/dev", "... naming it");
	t_int_eq(vss_track(s.h, NULL, NULL), -EINVAL, "no device: EINVAL");
	t_int_eq(vss_cbt_get_info(s.h, "", &again), -EINVAL, "empty device: EINVAL");
	t_int_eq(st(&s)->requests, before, "none of these reached the module");
	t_int_eq(vss_track(s.h, "/nonexistent/dev", &info), -ENOENT, "failed track ...");
	t_ok(info.block_size == 0, "... leaves nothing in the output");
	session_close(&s);

	opts.deny = true;
	session_open(&s, &opts);
	t_int_eq(vss_track(s.h, nodes[1], NULL), -EPERM, "module says EPERM");
	session_close(&s);
}

static void test_changes(void)
{
	struct fake_options opts = { 0 };
	struct vss_cbt_point p0, p1, p2, later, other;
	struct vss_cbt_totals totals;
	struct vss_snapshot_info *snaps;
	struct vss_cbt_info info;
	struct collected c;
	struct session s;
	uint32_t before;
	size_t n;

	session_open(&s, &opts);
	t_int_eq(vss_track(s.h, nodes[1], &info), 0, "track");
	p0 = (struct vss_cbt_point){ info.generation, 0 };
	t_int_eq(snapshot(&s, 1, &p1), 0, "a snapshot makes a point");
	t_ok(vss_id_equal(&p1.generation, &info.generation) && p1.seq == 1,
	     "... point 1 of the generation");
	t_int_eq(vss_list_snapshots(s.h, nodes[1], &snaps, &n), 0, "list the snapshot");
	t_ok(n == 1 && snaps[0].has_cbt_point && snaps[0].cbt_point.seq == 1 &&
	     vss_id_equal(&snaps[0].cbt_point.generation, &info.generation),
	     "the listed snapshot carries its point");
	vss_snapshot_info_array_free(snaps, n);

	/* 13 blocks: cut into 4+4+4+1 across two messages of three extents. */
	write_blocks(&s, 1, 0, 13);
	write_blocks(&s, 1, 20, 2);
	write_blocks(&s, 1, FAKE_CBT_BLOCKS - 1, 1);
	t_int_eq(changes(&s, 1, &p1, NULL, &c, &totals), 0, "changes since point 1");
	t_int_eq((long long)c.count, 3, "runs cut by the module are merged again");
	t_ok(extent_is(&c, 0, 0, 13 * BS) && extent_is(&c, 1, 20 * BS, 2 * BS) &&
	     extent_is(&c, 2, (FAKE_CBT_BLOCKS - 1) * BS, BS - 1024),
	     "extents in order; the last ends at the device's end");
	t_ok(totals.extents == 3 && totals.bytes == 15 * BS + BS - 1024 &&
	     totals.block_size == BS && vss_id_equal(&totals.generation, &info.generation),
	     "totals: count, bytes, block size, generation");
	t_int_eq(changes(&s, 1, &p0, NULL, &c, NULL), 0, "changes since point 0");
	t_int_eq((long long)c.count, 3, "... the same (interval 0 is empty)");

	t_int_eq(snapshot(&s, 1, &p2), 0, "second snapshot: point 2");
	write_blocks(&s, 1, 100, 1);
	t_int_eq(changes(&s, 1, &p1, &p2, &c, NULL), 0, "changes from point 1 to 2");
	t_ok(c.count == 3 && extent_is(&c, 0, 0, 13 * BS), "... what was written between");
	t_int_eq(changes(&s, 1, &p2, NULL, &c, NULL), 0, "changes since point 2");
	t_ok(c.count == 1 && extent_is(&c, 0, 100 * BS, BS), "... only the newer write");
	t_int_eq(changes(&s, 1, &p1, NULL, &c, NULL), 0, "changes since point 1, again");
	t_int_eq((long long)c.count, 4, "... the union");
	t_int_eq(changes(&s, 1, &p2, &p2, &c, &totals), 0, "from a point to itself");
	t_ok(c.count == 0 && totals.extents == 0 && totals.block_size == BS,
	     "... nothing, block size still told");

	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	t_int_eq(vss_cbt_changes(s.h, nodes[1], &p1, NULL, collect, &c, &totals), 7,
		 "the extent function stops the walk with its value");
	t_ok(c.count == 2 && totals.extents == 2, "... after two extents");
	t_int_eq(vss_last_error(s.h), 0, "... which is no error");
	t_int_eq(vss_cbt_get_info(s.h, nodes[1], &info), 0, "the handle works afterwards");

	before = st(&s)->requests;
	t_int_eq(changes(&s, 1, &p2, &p1, &c, NULL), -EINVAL, "FROM after TO: EINVAL");
	t_contains(vss_last_error_message(s.h), "is after point", "... explained");
	other = p1;
	other.generation.bytes[3] ^= 0x55;
	t_int_eq(changes(&s, 1, &p1, &other, &c, NULL), -LIBVSS_ECBT_STALE,
		 "points of two generations: ESTALE, a full backup");
	t_contains(vss_last_error_message(s.h), "different generations", "... explained");
	t_int_eq(vss_cbt_changes(s.h, nodes[1], NULL, NULL, collect, &c, NULL), -EINVAL,
		 "no starting point: EINVAL");
	t_int_eq(vss_cbt_changes(s.h, nodes[1], &p1, NULL, NULL, NULL, NULL), -EINVAL,
		 "no extent function: EINVAL");
	t_int_eq(st(&s)->requests, before, "none of these reached the module");

	later = (struct vss_cbt_point){ info.generation, 99 };
	t_int_eq(changes(&s, 1, &p1, &later, &c, NULL), -EINVAL, "a point not reached: EINVAL");
	t_int_eq(changes(&s, 1, &other, NULL, &c, NULL), -LIBVSS_ECBT_STALE,
		 "another generation: LIBVSS_ECBT_STALE");
	t_ok(vss_cbt_needs_full_backup(vss_last_error(s.h)), "... a full backup is needed");
	t_str_eq(vss_last_error_object(s.h), nodes[1], "... naming the device");
	t_str_eq(vss_last_error_message(s.h), "the generation is not the device's",
		 "... with the module's message");
	st(&s)->tracked[0].oldest_seq = 2;
	t_int_eq(changes(&s, 1, &p1, NULL, &c, NULL), -LIBVSS_ECBT_TOO_OLD,
		 "older than the map reaches: LIBVSS_ECBT_TOO_OLD");
	t_int_eq(changes(&s, 1, &p2, NULL, &c, NULL), 0, "the oldest point still answers");
	t_int_eq(changes(&s, 2, &p1, NULL, &c, NULL), -ENOENT, "untracked device: ENOENT");

	/* mark-dirty */
	t_int_eq(vss_cbt_mark_dirty(s.h, nodes[1], 50 * BS + 1, 1), 0, "mark one byte");
	t_ok(st(&s)->last_mark_offset == 50 * BS + 1 && st(&s)->last_mark_length == 1,
	     "... sent as given");
	t_int_eq(changes(&s, 1, &p2, NULL, &c, NULL), 0, "changes since point 2");
	t_ok(c.count == 2 && extent_is(&c, 0, 50 * BS, BS) && extent_is(&c, 1, 100 * BS, BS),
	     "the marked byte shows as its whole block");
	before = st(&s)->requests;
	t_int_eq(vss_cbt_mark_dirty(s.h, nodes[1], 0, 0), -EINVAL, "zero length: EINVAL");
	t_str_eq(vss_last_error_message(s.h), "zero length", "... said so");
	t_int_eq(vss_cbt_mark_dirty(s.h, nodes[1], UINT64_MAX, 2), -EINVAL,
		 "overflowing range: EINVAL");
	t_int_eq(st(&s)->requests, before, "... neither reached the module");
	t_int_eq(vss_cbt_mark_dirty(s.h, nodes[1], FAKE_CBT_SIZE - 10, 11), -ERANGE,
		 "past the end: ERANGE from the module");
	t_str_eq(vss_last_error_object(s.h), nodes[1], "... naming the device");
	t_int_eq(vss_cbt_mark_dirty(s.h, nodes[2], 0, 1), -ENOENT, "untracked: ENOENT");
	session_close(&s);

	opts.cbt_unsorted = true;
	session_open(&s, &opts);
	vss_track(s.h, nodes[1], &info);
	p0 = (struct vss_cbt_point){ info.generation, 0 };
	write_blocks(&s, 1, 0, 1);
	write_blocks(&s, 1, 10, 1);
	t_int_eq(changes(&s, 1, &p0, NULL, &c, NULL), -EPROTO,
		 "extents out of order: EPROTO");
	t_contains(vss_last_error_message(s.h), "out of order", "... explained");
	t_int_eq(vss_cbt_get_info(s.h, nodes[1], &info), 0, "the socket is clean afterwards");
	session_close(&s);
}

/* ---- the state file ---- */

static char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void write_whole(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(buf, 1, len, f) != len)
		abort();
	fclose(f);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void set_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* The CRC is the last four bytes, over everything before them. */
static void fix_crc(unsigned char *buf, size_t len)
{
	set_le32(buf + len - 4, vss_crc32c(0, buf, len - 4));
}

/* The offset of the first record of @type, or 0. */
static size_t find_record(const unsigned char *buf, size_t len, uint32_t type)
{
	size_t at = 16;

	while (at + 8 <= len) {
		uint32_t rlen = le32(buf + at + 4);

		if (le32(buf + at) == type)
			return at;
		at += 8 + (rlen + 7) / 8 * 8;
	}
	return 0;
}

static bool has_record_text(const unsigned char *buf, size_t len, uint32_t type,
			    const char *text)
{
	size_t at = 16;

	while (at + 8 <= len) {
		uint32_t rlen = le32(buf + at + 4);

		if (le32(buf + at) == type && rlen == strlen(text) + 1 &&
		    !memcmp(buf + at + 8, text, rlen))
			return true;
		at += 8 + (rlen + 7) / 8 * 8;
	}
	return false;
}

static void state_path(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", state_dir, name);
}

static bool exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

static void test_save_restore(void)
{
	struct fake_options opts = { 0 };
	struct vss_cbt_restore_result res;
	struct vss_cbt_point p1, p2;
	struct vss_cbt_info info, saved;
	struct collected c;
	struct session s;
	char file[PATH_MAX];
	unsigned char *buf;
	struct stat sb;
	size_t len, before_count;
	uint64_t b;

	session_open(&s, &opts);
	state_path(file, "fake1.cbt");
	vss_track(s.h, nodes[1], &info);
	snapshot(&s, 1, &p1);
	write_blocks(&s, 1, 3, 5);
	snapshot(&s, 1, &p2);
	write_blocks(&s, 1, 40, 1);

	before_count = count_dir_entries(state_dir, false);
	t_int_eq(vss_cbt_save(s.h, nodes[1], file), -EBUSY, "save with snapshots: EBUSY");
	t_str_eq(vss_last_error_object(s.h), nodes[1], "... naming the device");
	t_ok(!exists(file) && count_dir_entries(state_dir, false) == before_count,
	     "... no file, no temporary file left");
	t_int_eq(vss_cbt_get_info(s.h, nodes[1], &saved), 0, "... and tracking goes on");
	delete_all(&s);

	t_int_eq(vss_cbt_save_device(s.h, &info.device, file, &saved), 0, "save the map");
	t_ok(vss_id_equal(&saved.generation, &info.generation) && saved.seq == 2 &&
	     saved.block_size == BS && saved.size == FAKE_CBT_SIZE,
	     "... the saved state is told");
	t_ok(stat(file, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0777) == 0600,
	     "the state file has mode 0600");
	t_int_eq((long long)count_dir_entries(state_dir, true), 0, "no temporary file left");
	t_int_eq(vss_cbt_get_info(s.h, nodes[1], &info), -ENOENT, "tracking ended with the save");
	buf = (unsigned char *)read_whole(file, &len);
	t_ok(buf && len > 16 && !memcmp(buf, "\x89VSSCBT\n", 8) && le32(buf + 8) == 1,
	     "the file starts with the magic and version 1");
	t_ok(buf && le32(buf + len - 4) == vss_crc32c(0, buf, len - 4),
	     "its last four bytes are the CRC-32C of the rest");
	t_ok(buf && has_record_text(buf, len, VSS_CBT_ID_BY_ID, "virtio-SER-ONE") &&
	     has_record_text(buf, len, VSS_CBT_ID_HARDWARE, "serial=SER-ONE"),
	     "the device's stable names are recorded");
	t_ok(buf && find_record(buf, len, 2) && !strcmp((char *)buf + find_record(buf, len, 2) + 16,
							"fake1"),
	     "... and its kernel name");
	free(buf);

	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), 0, "restore in the same boot");
	t_int_eq(res.verdict, VSS_CBT_VERDICT_CONTINUED, "... the generation continues");
	t_ok(vss_id_equal(&res.info.generation, &p1.generation) && res.info.seq == 2 &&
	     vss_id_equal(&res.saved.generation, &p1.generation) && !res.reason[0],
	     "... with its points");
	t_str_eq(res.device_path, "/dev/fake1", "... found by its stable names");
	t_ok(!exists(file), "the used file is removed");
	t_ok(st(&s)->restore_log.begins == 1 && st(&s)->restore_log.commits == 1 &&
	     st(&s)->restore_log.interval_requests >= 1 && st(&s)->restore_log.begin_had_diskseq &&
	     !st(&s)->restore_log.begin_had_direct_ios,
	     "begin, intervals, commit; the state sent back as saved");
	t_int_eq(changes(&s, 1, &p1, NULL, &c, NULL), 0, "changes since point 1 after it");
	t_ok(c.count == 2 && extent_is(&c, 0, 3 * BS, 5 * BS) && extent_is(&c, 1, 40 * BS, BS),
	     "... are what they were before the save");
	t_int_eq(changes(&s, 1, &p2, NULL, &c, NULL), 0, "and since point 2");
	t_ok(c.count == 1 && extent_is(&c, 0, 40 * BS, BS), "... too");

	t_int_eq(vss_cbt_save(s.h, nodes[1], file), 0, "save again");
	write_blocks(&s, 1, 7, 1);
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), 0, "restore after a write while saved");
	t_int_eq(res.verdict, VSS_CBT_VERDICT_NEW_GENERATION, "... a new generation");
	t_contains(res.reason, "written 1 times while it was not tracked", "... and why");
	t_ok(!vss_id_equal(&res.info.generation, &p1.generation) &&
	     vss_id_equal(&res.saved.generation, &p1.generation), "... told apart from the saved one");
	t_ok(!exists(file), "the file is removed whatever the verdict");
	t_int_eq(changes(&s, 1, &p1, NULL, &c, NULL), -LIBVSS_ECBT_STALE,
		 "old points: take a full backup");

	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), -ENOENT, "restore a missing file");
	t_str_eq(vss_last_error_object(s.h), file, "... naming it");

	/* Every other block: more extents than one restore request holds. */
	for (b = 0; b < FAKE_CBT_BLOCKS; b += 2)
		write_blocks(&s, 1, b, 1);
	memset(&st(&s)->restore_log, 0, sizeof(st(&s)->restore_log));
	t_int_eq(vss_cbt_save(s.h, nodes[1], file), 0, "save a map of 1024 extents");
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), 0, "restore it");
	t_ok(res.verdict == VSS_CBT_VERDICT_CONTINUED &&
	     st(&s)->restore_log.extents == FAKE_CBT_BLOCKS / 2,
	     "every extent was sent");
	t_int_eq(st(&s)->restore_log.interval_requests, 2,
		 "... in two requests, the file's small records gathered");
	t_ok(st(&s)->restore_log.max_request_len > 8 * 1024 &&
	     st(&s)->restore_log.max_request_len < 16 * 1024,
	     "every request stays well under 32 KiB");
	t_diag("largest restore request: %u bytes", st(&s)->restore_log.max_request_len);

	t_int_eq(vss_cbt_save(s.h, nodes[1], file), 0, "save once more");
	vss_track(s.h, nodes[1], NULL);
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), -EALREADY,
		 "restore onto a tracked device: EALREADY");
	t_ok(exists(file), "... the file stays");
	vss_untrack(s.h, nodes[1]);
	snapshot(&s, 1, NULL);
	vss_untrack(s.h, nodes[1]);
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), -EBUSY,
		 "restore onto a device with snapshots: EBUSY");
	t_ok(exists(file), "... the file stays");
	delete_all(&s);
	unlink(file);
	session_close(&s);
}

static void test_save_errors(void)
{
	struct fake_options opts = { 0 };
	struct vss_cbt_info info;
	struct session s;
	char file[PATH_MAX];

	session_open(&s, &opts);
	vss_track(s.h, nodes[1], &info);
	t_int_eq(vss_cbt_save(s.h, nodes[1], "/nonexistent/dir/fake1.cbt"), -ENOENT,
		 "save into a missing directory: ENOENT");
	t_str_eq(vss_last_error_object(s.h), "/nonexistent/dir/fake1.cbt", "... naming the file");
	t_ok(st(&s)->last_cmd != VSS_CMD_CBT_SAVE, "... before asking the module");
	t_int_eq(vss_cbt_get_info(s.h, nodes[1], &info), 0, "... tracking goes on");
	t_ok(vss_cbt_save(s.h, nodes[1], state_dir) != 0, "a directory as the file: refused");
	t_int_eq(vss_cbt_save(s.h, nodes[1], NULL), -EINVAL, "no file: EINVAL");
	t_int_eq(vss_cbt_get_info(s.h, nodes[1], &info), 0, "... tracking goes on");
	state_path(file, "fake2.cbt");
	t_int_eq(vss_cbt_save(s.h, nodes[2], file), -ENOENT, "save an untracked device: ENOENT");
	t_ok(!exists(file) && count_dir_entries(state_dir, false) == 0,
	     "... leaves no file behind");
	session_close(&s);

	opts.cbt_save_breaks = true;
	session_open(&s, &opts);
	vss_track(s.h, nodes[1], &info);
	state_path(file, "fake1.cbt");
	t_int_eq(vss_cbt_save(s.h, nodes[1], file), -EPROTO,
		 "a bad map from the module: EPROTO");
	t_contains(vss_last_error_message(s.h), "the map is lost",
		   "... saying that tracking ended without a saved map");
	t_ok(!exists(file) && count_dir_entries(state_dir, false) == 0,
	     "... no file and no temporary file left");
	t_int_eq(vss_cbt_get_info(s.h, nodes[1], &info), -ENOENT, "... not tracked any more");
	session_close(&s);
}

/* Saves fake@minor to @file in a fresh session of @s. */
static void make_state_file(struct session *s, unsigned int minor, const char *file)
{
	struct vss_cbt_info info;

	vss_track(s->h, nodes[minor], &info);
	snapshot(s, minor, NULL);
	write_blocks(s, minor, 5, 2);
	delete_all(s);
	if (vss_cbt_save(s->h, nodes[minor], file))
		t_diag("save of fake%u failed: %s", minor, vss_last_error_message(s->h));
}

static void expect_bad_file(struct session *s, const char *file, const char *what,
			    const char *label)
{
	struct vss_cbt_restore_result res;
	uint32_t begins = st(s)->restore_log.begins;
	struct vss_cbt_info info;

	t_int_eq(vss_cbt_restore(s->h, file, NULL, &res), -EBADMSG, label);
	t_contains(vss_last_error_message(s->h), what, "... said why");
	t_str_eq(vss_last_error_object(s->h), file, "... naming the file");
	t_ok(exists(file) && st(s)->restore_log.begins == begins &&
	     vss_cbt_get_info(s->h, nodes[1], &info) == -ENOENT,
	     "... nothing changed: file kept, module not asked");
}

/* The module refuses the map half way: the restore ends cleanly. */
static void test_restore_refused(void)
{
	struct fake_options opts = { .cbt_interval_error = EINVAL };
	struct vss_cbt_restore_result res;
	struct vss_cbt_info info;
	char file[PATH_MAX];
	struct session s;

	session_open(&s, &opts);
	state_path(file, "fake1.cbt");
	make_state_file(&s, 1, file);
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), -EINVAL,
		 "the module refuses an interval: EINVAL");
	t_contains(vss_last_error_message(s.h), "the interval could not be taken; the saved "
		   "map was not applied: tracking goes on under a new generation",
		   "... its words, and what became of the device");
	t_ok(st(&s)->restore_log.commits == 1 && !exists(file) &&
	     vss_cbt_get_info(s.h, nodes[1], &info) == 0 &&
	     !vss_id_equal(&info.generation, &res.saved.generation) &&
	     !fake_cbt_find(st(&s), TEST_MAJOR, 1)->restoring,
	     "... the restore was closed, under a new generation; the file is used up");
	vss_untrack(s.h, nodes[1]);
	session_close(&s);

	opts.cbt_interval_error = EIO;
	session_open(&s, &opts);
	make_state_file(&s, 1, file);
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), -EIO,
		 "an interval fails otherwise: its error");
	t_contains(vss_last_error_message(s.h), "tracking of the device ended",
		   "... and tracking ended rather than continue with part of the map");
	t_ok(st(&s)->restore_log.commits == 0 && !exists(file) &&
	     vss_cbt_get_info(s.h, nodes[1], &info) == -ENOENT,
	     "... no commit, the device untracked, the file used up");
	session_close(&s);
}

static void test_corrupt_files(void)
{
	struct fake_options opts = { 0 };
	unsigned char *good, *bad;
	char file[PATH_MAX];
	struct session s;
	size_t len, at;

	session_open(&s, &opts);
	state_path(file, "fake1.cbt");
	make_state_file(&s, 1, file);
	good = (unsigned char *)read_whole(file, &len);
	if (!good) {
		t_ok(false, "a state file to corrupt");
		session_close(&s);
		return;
	}
	bad = malloc(len);

	memcpy(bad, good, len);
	bad[len / 2] ^= 0x10;
	write_whole(file, bad, len);
	expect_bad_file(&s, file, "checksum mismatch", "a flipped bit: EBADMSG");

	{
		struct vss_cbt_state_file sf;

		t_int_eq(vss_cbt_read_state_file(s.h, file, &sf), -EBADMSG,
			 "reading the head of a corrupt file: EBADMSG too");
	}
	write_whole(file, good, len - 10);
	expect_bad_file(&s, file, "truncated", "a truncated file: EBADMSG");
	write_whole(file, good, 20);
	expect_bad_file(&s, file, "truncated", "a file cut after the preamble: EBADMSG");
	write_whole(file, good, 0);
	expect_bad_file(&s, file, "truncated", "an empty file: EBADMSG");

	memcpy(bad, good, len);
	bad[1] = 'X';
	fix_crc(bad, len);
	write_whole(file, bad, len);
	expect_bad_file(&s, file, "bad magic", "another magic: EBADMSG");

	memcpy(bad, good, len);
	set_le32(bad + 8, 2);
	fix_crc(bad, len);
	write_whole(file, bad, len);
	expect_bad_file(&s, file, "format version 2 is not supported",
			"another format version: EBADMSG");

	memcpy(bad, good, len);
	at = find_record(bad, len, 16);
	t_ok(at != 0, "the file has an interval record");
	if (at) {
		set_le32(bad + at + 16, 0x10000000);	/* an extent's offset, low half */
		fix_crc(bad, len);
		write_whole(file, bad, len);
		expect_bad_file(&s, file, "past the end of the device",
				"an extent past the device's end: EBADMSG");
	}

	memcpy(bad, good, len);
	at = find_record(bad, len, 1);
	set_le32(bad + at + 8 + 96, 3000);	/* block size */
	fix_crc(bad, len);
	write_whole(file, bad, len);
	expect_bad_file(&s, file, "block size", "a bad block size: EBADMSG");

	memcpy(bad, good, len);
	set_le32(bad + at, 77);			/* the state record's type */
	fix_crc(bad, len);
	write_whole(file, bad, len);
	expect_bad_file(&s, file, "no state record first", "records out of order: EBADMSG");

	write_whole(file, good, len);
	{
		struct vss_cbt_restore_result res;

		t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), 0, "the good file restores");
	}
	free(bad);
	free(good);
	session_close(&s);
}

static void test_other_boot(void)
{
	struct fake_options opts = { 0 };
	struct vss_cbt_restore_result res;
	struct vss_cbt_state_file sf;
	struct vss_cbt_info info;
	char file[PATH_MAX], other[PATH_MAX];
	struct session s;
	unsigned int minor;

	session_open(&s, &opts);
	state_path(file, "fake1.cbt");
	make_state_file(&s, 1, file);
	t_int_eq(vss_cbt_read_state_file(s.h, file, &sf), 0, "read a state file's head");
	t_ok(sf.this_boot && sf.saved.device.minor == 1 && !strcmp(sf.saved.device.name, "fake1") &&
	     sf.saved.block_size == BS && sf.saved_ns > 0,
	     "... its device and state, saved in this boot");
	/* A reboot: another boot id, counters from zero, numbers unchanged. */
	boot(&s, OTHER_BOOT_ID, true);
	t_int_eq(vss_cbt_read_state_file(s.h, file, &sf), 0, "read it after a reboot");
	t_ok(!sf.this_boot, "... saved in another boot");
	t_ok(exists(file) && vss_cbt_get_info(s.h, nodes[1], &info) == -ENOENT,
	     "... reading changed nothing");
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), 0, "restore after a reboot");
	t_int_eq(res.verdict, VSS_CBT_VERDICT_CONTINUED, "... continued: quiescent, unwritten");
	t_ok(st(&s)->restore_log.begin_minor == 1, "... onto the device its serial names");

	/* Written after boot before tracking resumed. */
	boot(&s, FAKE_BOOT_ID, false);
	vss_cbt_save(s.h, nodes[1], file);
	boot(&s, OTHER_BOOT_ID, true);
	write_blocks(&s, 1, 1, 1);
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), 0, "restore after a write at boot");
	t_ok(res.verdict == VSS_CBT_VERDICT_NEW_GENERATION &&
	     strstr(res.reason, "written since boot"), "... a new generation, and why");

	/* Opened by someone else when saved. */
	boot(&s, FAKE_BOOT_ID, false);
	st(&s)->disks[1].other_openers = 1;
	vss_cbt_save(s.h, nodes[1], file);
	boot(&s, OTHER_BOOT_ID, true);
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), 0, "restore of a busy device's map");
	t_ok(res.verdict == VSS_CBT_VERDICT_NEW_GENERATION &&
	     strstr(res.reason, "other openers"), "... a new generation, and why");
	vss_untrack(s.h, nodes[1]);

	/* No stable name: nothing proves it is the same disk. */
	boot(&s, FAKE_BOOT_ID, false);
	state_path(other, "fake2.cbt");
	make_state_file(&s, 2, other);
	boot(&s, OTHER_BOOT_ID, true);
	memset(&st(&s)->restore_log, 0, sizeof(st(&s)->restore_log));
	t_int_eq(vss_cbt_restore(s.h, other, NULL, &res), 0,
		 "restore of a device without stable names after a reboot");
	t_ok(res.verdict == VSS_CBT_VERDICT_NEW_GENERATION &&
	     strstr(res.reason, "no stable name"), "... starts afresh, and says why");
	t_ok(st(&s)->restore_log.begins == 0 && !exists(other) &&
	     vss_cbt_get_info(s.h, nodes[2], &info) == 0 &&
	     !vss_id_equal(&info.generation, &res.saved.generation),
	     "... tracked under a new generation without the saved map; file used up");
	vss_untrack(s.h, nodes[2]);

	/* The same boot: its kernel name and number are enough. */
	boot(&s, FAKE_BOOT_ID, false);
	make_state_file(&s, 2, other);
	t_int_eq(vss_cbt_restore(s.h, other, nodes[3], &res), -EINVAL,
		 "same boot, another device given than saved: EINVAL");
	t_contains(vss_last_error_message(s.h), "was saved from fake2 (240:2) in this boot",
		   "... said so");
	t_int_eq(vss_cbt_restore(s.h, other, NULL, &res), 0,
		 "same boot, no stable name: by kernel name and number");
	t_int_eq(res.verdict, VSS_CBT_VERDICT_CONTINUED, "... continued");
	vss_untrack(s.h, nodes[2]);

	/* Another boot, a device given but nothing to prove it is the one. */
	make_state_file(&s, 2, other);
	boot(&s, OTHER_BOOT_ID, true);
	t_int_eq(vss_cbt_restore(s.h, other, nodes[2], &res), 0,
		 "another boot, no stable name, the device given");
	t_ok(res.verdict == VSS_CBT_VERDICT_NEW_GENERATION && strstr(res.reason, "no stable name") &&
	     !exists(other), "... starts afresh, and the file is used up");
	vss_untrack(s.h, nodes[2]);
	boot(&s, FAKE_BOOT_ID, false);

	/* dm uuid, partition of a disk with a serial, PARTUUID from udev. */
	for (minor = 3; minor <= 5; minor++) {
		state_path(other, "other.cbt");
		boot(&s, FAKE_BOOT_ID, false);
		make_state_file(&s, minor, other);
		boot(&s, OTHER_BOOT_ID, true);
		memset(&st(&s)->restore_log, 0, sizeof(st(&s)->restore_log));
		t_int_eq(vss_cbt_restore(s.h, other, NULL, &res), 0, "restore after a reboot");
		t_ok(res.verdict == VSS_CBT_VERDICT_CONTINUED &&
		     st(&s)->restore_log.begin_minor == minor,
		     "... fake%u found by its %s", minor,
		     minor == 3 ? "device-mapper uuid" : minor == 4 ?
		     "disk serial and partition number" : "PARTUUID");
		vss_untrack(s.h, nodes[minor]);
	}

	/* The disk came back under another number. */
	boot(&s, FAKE_BOOT_ID, false);
	make_state_file(&s, 1, file);
	boot(&s, OTHER_BOOT_ID, true);
	remove_file("sys/devices/virtual/block/fake1/serial");
	put_file("sys/devices/virtual/block/fake6/serial", "SER-ONE\n");
	put_link("dev/disk/by-id/virtio-SER-ONE", nodes[6]);
	memset(st(&s)->disks, 0, sizeof(st(&s)->disks));
	memset(&st(&s)->restore_log, 0, sizeof(st(&s)->restore_log));
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), 0, "restore of a renumbered disk");
	t_ok(res.verdict == VSS_CBT_VERDICT_CONTINUED && res.info.device.minor == 6 &&
	     st(&s)->restore_log.begin_minor == 6 && st(&s)->restore_log.state_minor == 1,
	     "... onto its new number, the state as saved");
	t_str_eq(res.device_path, "/dev/fake6", "... told");
	vss_untrack(s.h, nodes[6]);

	/* Its names disagree: refused. */
	boot(&s, FAKE_BOOT_ID, false);
	make_state_file(&s, 6, file);
	put_link("dev/disk/by-id/virtio-SER-ONE", nodes[2]);
	boot(&s, OTHER_BOOT_ID, true);
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), -EINVAL,
		 "stable names naming two devices: EINVAL");
	t_contains(vss_last_error_message(s.h), "disagree", "... said so");
	t_ok(exists(file), "... the file stays");

	/* Gone: the file waits for it. */
	remove_file("sys/devices/virtual/block/fake6/serial");
	remove_file("dev/disk/by-id/virtio-SER-ONE");
	t_int_eq(vss_cbt_restore(s.h, file, NULL, &res), -ENODEV,
		 "the saved device is not present: ENODEV");
	t_contains(vss_last_error_message(s.h), "not present", "... said so");
	t_ok(exists(file), "... the file stays for later");

	/* Given explicitly. */
	put_file("sys/devices/virtual/block/fake6/serial", "SER-ONE\n");
	t_int_eq(vss_cbt_restore(s.h, file, nodes[2], &res), -EINVAL,
		 "restore onto another device than saved: EINVAL");
	t_str_eq(vss_last_error_object(s.h), nodes[2], "... naming the device given");
	t_contains(vss_last_error_message(s.h), "was saved from another device",
		   "... and why");
	t_ok(exists(file), "... the file stays");
	memset(st(&s)->disks, 0, sizeof(st(&s)->disks));
	t_int_eq(vss_cbt_restore(s.h, file, nodes[6], &res), 0,
		 "restore onto the device given, which is the saved one");
	t_ok(res.verdict == VSS_CBT_VERDICT_CONTINUED && res.info.device.minor == 6 &&
	     !strcmp(res.device_path, nodes[6]), "... continued there");
	vss_untrack(s.h, nodes[6]);

	/* Restore the tree for the other tests. */
	remove_file("sys/devices/virtual/block/fake6/serial");
	put_file("sys/devices/virtual/block/fake1/serial", "SER-ONE\n");
	put_link("dev/disk/by-id/virtio-SER-ONE", nodes[1]);
	boot(&s, FAKE_BOOT_ID, false);
	clear_dir(state_dir);
	session_close(&s);
}

/*
 * Every call that changes something is refused before a request is made
 * when CAP_SYS_ADMIN is missing; reading the state is not. In a child
 * that drops the capability from its effective set.
 */
static int unprivileged_calls(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	struct fake_options opts = { 0 };
	struct vss_cbt_restore_result res;
	struct vss_cbt_point point = { { { 0 } }, 0 };
	struct vss_cbt_info info, *list;
	struct vss_device dev = { .major = TEST_MAJOR, .minor = 1 };
	struct collected *c = malloc(sizeof(*c));
	struct session s;
	uint32_t before;
	size_t n;
	int bad = 0;

	if (!c || syscall(SYS_capget, &hdr, data))
		return 2;
	data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
	if (syscall(SYS_capset, &hdr, data))
		return 2;
	session_open(&s, &opts);
	before = st(&s)->requests;
	bad |= vss_track(s.h, nodes[1], NULL) != -EPERM;
	bad |= vss_untrack(s.h, nodes[1]) != -EPERM;
	bad |= vss_cbt_changes(s.h, nodes[1], &point, NULL, collect, c, NULL) != -EPERM;
	bad |= vss_cbt_mark_dirty(s.h, nodes[1], 0, 1) != -EPERM;
	bad |= vss_cbt_save(s.h, nodes[1], "/nonexistent/x.cbt") != -EPERM;
	bad |= vss_cbt_save_device(s.h, &dev, "/nonexistent/x.cbt", NULL) != -EPERM;
	bad |= vss_cbt_restore(s.h, "/nonexistent/x.cbt", NULL, &res) != -EPERM;
	bad |= strcmp(vss_last_error_message(s.h), "CAP_SYS_ADMIN is required") != 0;
	bad |= st(&s)->requests != before;
	bad |= vss_cbt_get_info(s.h, nodes[1], &info) != -ENOENT;
	bad |= vss_cbt_list(s.h, &list, &n) != 0;
	vss_cbt_info_array_free(list);
	session_close(&s);
	free(c);
	return bad ? 1 : 0;
}

static void test_privilege(void)
{
	int status = -1;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(unprivileged_calls());
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		t_skip("capabilities cannot be changed here", "tracking calls without privilege");
	else
		t_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "without CAP_SYS_ADMIN, changing calls fail with EPERM before any "
		     "request; reading works");
}

int main(void)
{
	setup();
	test_crc32c();
	test_points();
	if (!have_devices) {
		t_skip("mknod not permitted", "changed-block tracking against the module");
		return t_done();
	}
	test_privilege();
	test_track();
	test_changes();
	test_save_restore();
	test_save_errors();
	test_restore_refused();
	test_corrupt_files();
	test_other_boot();
	return t_done();
}
