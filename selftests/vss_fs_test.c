// SPDX-License-Identifier: GPL-2.0
/*
 * Filesystems on the origin: a snapshot taken with the filesystem frozen
 * around the commit (no VSS_CREATE_NO_FREEZE) holds every file as it was
 * at that instant, data still in the page cache included, and mounts and
 * checks clean; the filesystem on the origin is writable right after.
 *
 * What the image needs to mount (observed on 6.1 and 6.12): ext4 mounts
 * with plain "ro" - the freeze leaves the journal clean, so no "noload"
 * is needed; XFS needs "ro,nouuid" only because the origin, with the same
 * UUID, is mounted at the same time - the freeze leaves the log clean, so
 * no "norecovery" is needed. Each test tries the plain options first and
 * fails if the fallback was needed.
 *
 * Needs scratch disks from the VM harness:
 *   0: origin (128M)   1: storage block device (128M)
 *
 *   scripts/vm-run --disk 128M --disk 128M -- build/selftests/vss_fs_test
 */
#include "vss_nl.h"
#include "vss_util.h"
#include "vss_sys.h"
#include "vss_harness.h"
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#define TOP		"/tmp/vss_fs"
#define ORIGIN_MNT	TOP "/origin"
#define IMAGE_MNT	TOP "/image"
#define NR_DIRS		10
#define NR_FILES	200
#define NR_NEW		20
#define HOLD_LIMIT_US	(VSS_DEFAULT_HOLD_LIMIT_MS * 1000ULL)

/* One file of the tree: what it holds, by size and a streaming hash. */
struct frec {
	char rel[32];		/* "d03/f061" */
	bool exists;
	uint64_t size;
	uint64_t hash;
};

#define FNV_INIT	0xcbf29ce484222325ULL

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t len)
{
	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Deterministic content: @len bytes for @seed, starting at byte @off. */
static void gen(unsigned char *buf, size_t len, uint64_t seed, uint64_t off)
{
	size_t i;

	for (i = 0; i < len; i++) {
		uint64_t w = stamp_mix(seed * 0x9e3779b97f4a7c15ULL + (off + i) / 8);

		buf[i] = w >> (8 * ((off + i) % 8));
	}
}

/* Writes (or appends) @len bytes of @seed to @path; updates @r. */
static int put_file(const char *root, struct frec *r, size_t len,
		    uint64_t seed, bool append)
{
	char path[256];
	unsigned char *buf = malloc(len ? len : 1);
	int fd, ret = 0;

	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%s", root, r->rel);
	fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	gen(buf, len, seed, 0);
	if (len && write(fd, buf, len) != (ssize_t)len)
		ret = -errno ?: -EIO;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret) {
		if (!append || !r->exists) {
			r->size = 0;
			r->hash = FNV_INIT;
		}
		r->hash = fnv(r->hash, buf, len);
		r->size += len;
		r->exists = true;
	}
	free(buf);
	return ret;
}

/* 0 if @r matches the file under @root; otherwise why not in @why. */
static int check_file(const char *root, const struct frec *r, char *why,
		      size_t why_len)
{
	static unsigned char buf[1 << 16];
	char path[256];
	uint64_t h = FNV_INIT, size = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, r->rel);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		if (!r->exists && errno == ENOENT)
			return 0;
		snprintf(why, why_len, "%.200s: %s", path, strerror(errno));
		return -1;
	}
	if (!r->exists) {
		close(fd);
		snprintf(why, why_len, "%.200s exists, should not", path);
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		h = fnv(h, buf, n);
		size += n;
	}
	close(fd);
	if (n < 0) {
		snprintf(why, why_len, "%.200s: read: %s", path, strerror(errno));
		return -1;
	}
	if (size != r->size || h != r->hash) {
		snprintf(why, why_len, "%.100s: %llu bytes, hash %016llx; want %llu bytes, hash %016llx",
			 path, (unsigned long long)size, (unsigned long long)h,
			 (unsigned long long)r->size, (unsigned long long)r->hash);
		return -1;
	}
	return 0;
}

/* Number of files in @recs that do not match under @root. */
static int check_tree(const char *root, const struct frec *recs, int nr,
		      char *why, size_t why_len)
{
	char one[256];
	int bad = 0, i;

	why[0] = 0;
	for (i = 0; i < nr; i++) {
		if (check_file(root, &recs[i], one, sizeof(one)))
			if (!bad++)
				snprintf(why, why_len, "%s", one);
	}
	return bad;
}

/* 64-bit hash of the whole device, read with O_DIRECT. */
static int hash_device(const char *dev, uint64_t *out)
{
	const size_t len = 1 << 20;
	void *buf = aligned_buf(len);
	uint64_t h = 0x5eed;
	ssize_t n;
	int fd = open(dev, O_RDONLY | O_DIRECT);

	if (fd < 0 || !buf) {
		free(buf);
		return -1;
	}
	while ((n = read(fd, buf, len)) > 0)
		for (size_t i = 0; i < (size_t)n / 8; i++)
			h = stamp_mix(h ^ ((uint64_t *)buf)[i]);
	close(fd);
	free(buf);
	*out = h;
	return n < 0 ? -1 : 0;
}

FIXTURE(fs) {
	struct vss_nl nl;
	const char *origin;
	const char *storage;
	struct frec snap[NR_FILES + NR_NEW];	/* at snapshot time */
	struct frec now[NR_FILES + NR_NEW];	/* on the origin now */
	uint64_t state;
	char why[512];
};

FIXTURE_SETUP(fs)
{
	self->nl.fd = -1;
	self->origin = scratch_disk(0);
	self->storage = scratch_disk(1);
	if (!self->origin || !self->storage)
		SKIP(return, "needs 2 scratch disks (run under scripts/vm-run)");
	ASSERT_EQ(0, vss_nl_open(&self->nl)) TH_LOG("is vss.ko loaded?");
	vss_delete_all(&self->nl);
	umount_all(IMAGE_MNT);
	umount_all(ORIGIN_MNT);
	mkdir(TOP, 0755);
	mkdir(ORIGIN_MNT, 0755);
	mkdir(IMAGE_MNT, 0755);
	self->state = 0x1234567;
}

FIXTURE_TEARDOWN(fs)
{
	umount_all(IMAGE_MNT);
	umount_all(ORIGIN_MNT);
	vss_nl_teardown(_metadata, &self->nl, false);
}

/* Makes the tree of NR_FILES files of random sizes (0 to 256K). */
static int make_tree(FIXTURE_DATA(fs) *self)
{
	char path[256];
	int i, ret;

	for (i = 0; i < NR_DIRS; i++) {
		snprintf(path, sizeof(path), ORIGIN_MNT "/d%02d", i);
		if (mkdir(path, 0755))
			return -errno;
	}
	memset(self->now, 0, sizeof(self->now));
	for (i = 0; i < NR_FILES + NR_NEW; i++)
		snprintf(self->now[i].rel, sizeof(self->now[i].rel),
			 "d%02d/f%03d", i % NR_DIRS, i);
	for (i = 0; i < NR_FILES; i++) {
		uint64_t r = rnd(&self->state);
		size_t size = r % 5 == 0 ? (r >> 8) % 4096 : (r >> 8) % (256 << 10);

		ret = put_file(ORIGIN_MNT, &self->now[i], size, 1000 + i, false);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * After the snapshot: rewrite a quarter of the files, delete a quarter,
 * append to a quarter, and add NR_NEW new ones.
 */
static int change_tree(FIXTURE_DATA(fs) *self, const char *root,
		       struct frec *recs, uint64_t gen)
{
	char path[256];
	int i, ret = 0;

	for (i = 0; i < NR_FILES + NR_NEW && !ret; i++) {
		uint64_t r = rnd(&self->state);
		size_t size = (r >> 8) % (128 << 10);

		if (i >= NR_FILES)
			ret = put_file(root, &recs[i], size, gen * 7919 + i, false);
		else if (i % 4 == 0)
			ret = put_file(root, &recs[i], size, gen * 7919 + i, false);
		else if (i % 4 == 1) {
			snprintf(path, sizeof(path), "%s/%s", root, recs[i].rel);
			if (unlink(path))
				ret = -errno;
			recs[i].exists = false;
		} else if (i % 4 == 2)
			ret = put_file(root, &recs[i], size / 4 + 1,
				       gen * 7919 + i, true);
	}
	return ret;
}

/*
 * Is the filesystem writable right after the snapshot? A child creates
 * and fsyncs a file; if it is stuck for 20 s, the filesystem stayed
 * frozen: thaw it by hand so that the test can end.
 */
static bool writable_after_snapshot(struct __test_metadata *_metadata)
{
	uint64_t end = now_ms() + 20000;
	int status = 0;
	pid_t pid = fork();

	if (!pid) {
		int fd = open(ORIGIN_MNT "/after-snapshot",
			      O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0 || write(fd, "x", 1) != 1 || fsync(fd))
			_exit(1);
		_exit(0);
	}
	while (now_ms() < end) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) && !WEXITSTATUS(status);
		usleep(50000);
	}
	TH_LOG("a write to the origin filesystem hangs after the snapshot: still frozen?");
	{
		int fd = open(ORIGIN_MNT, O_RDONLY);

		if (fd >= 0) {
			ioctl(fd, FITHAW, 0);
			close(fd);
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return false;
}

/* Mounts @image on IMAGE_MNT, trying @plain first; says what worked. */
static int mount_image(struct __test_metadata *_metadata, const char *fstype,
		       const char *image, const char *plain,
		       const char *fallback, bool *needed_fallback)
{
	*needed_fallback = false;
	if (!run("mount -t %s -o %s %s %s", fstype, plain, image, IMAGE_MNT)) {
		TH_LOG("image mounted with -o %s", plain);
		return 0;
	}
	*needed_fallback = true;
	if (!run("mount -t %s -o %s %s %s", fstype, fallback, image, IMAGE_MNT)) {
		TH_LOG("image needed -o %s", fallback);
		return 0;
	}
	return -1;
}

/*
 * The common scenario: tree on the origin, frozen snapshot, changes on
 * the origin, image mounted read-only and compared file by file, then
 * checked with the filesystem's own checker.
 */
static void frozen_snapshot(struct __test_metadata *_metadata,
			    FIXTURE_DATA(fs) *self, const char *fstype,
			    const char *mkfs, const char *plain,
			    const char *fallback, const char *fsck)
{
	const char *devs[] = { self->origin };
	struct vss_snap_info info;
	struct vss_created c;
	bool fallback_needed;
	int bad;

	ASSERT_EQ(0, run("%s %s", mkfs, self->origin));
	ASSERT_EQ(0, run("mount -t %s %s %s", fstype, self->origin, ORIGIN_MNT));
	ASSERT_EQ(0, make_tree(self));
	/* No sync: the freeze must write back what is still dirty. */
	memcpy(self->snap, self->now, sizeof(self->snap));

	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0, 0, 0, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	TH_LOG("%s snapshot %s of %s: writes held %llu us", fstype, c.image[0],
	       self->origin, (unsigned long long)c.hold_us);
	EXPECT_LT(c.hold_us, HOLD_LIMIT_US);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(c.hold_us, info.hold_us);
	ASSERT_TRUE(writable_after_snapshot(_metadata));

	ASSERT_EQ(0, change_tree(self, ORIGIN_MNT, self->now, 2));
	sync();

	ASSERT_EQ(0, mount_image(_metadata, fstype, c.image[0], plain, fallback,
				 &fallback_needed))
		TH_LOG("cannot mount the image of %s", fstype);
	EXPECT_FALSE(fallback_needed)
		TH_LOG("a frozen snapshot should mount with -o %s", plain);
	bad = check_tree(IMAGE_MNT, self->snap, NR_FILES + NR_NEW, self->why,
			 sizeof(self->why));
	EXPECT_EQ(0, bad) TH_LOG("%d files differ on the image; first: %s",
				 bad, self->why);
	EXPECT_NE(0, access(IMAGE_MNT "/after-snapshot", F_OK))
		TH_LOG("a file made after the snapshot is in the image");
	bad = check_tree(ORIGIN_MNT, self->now, NR_FILES + NR_NEW, self->why,
			 sizeof(self->why));
	EXPECT_EQ(0, bad) TH_LOG("%d files differ on the origin; first: %s",
				 bad, self->why);
	umount_all(IMAGE_MNT);
	ASSERT_FALSE(is_mountpoint(IMAGE_MNT));

	EXPECT_EQ(0, run("%s %s", fsck, c.image[0]))
		TH_LOG("%s on the image is not clean", fsck);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	TH_LOG("storage used: %llu KiB", (unsigned long long)info.storage_used >> 10);
	umount_all(ORIGIN_MNT);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false))
		TH_LOG("delete: %s", self->nl.errmsg);
}

TEST_F_TIMEOUT(fs, ext4_frozen_snapshot, 150)
{
	frozen_snapshot(_metadata, self, "ext4",
			"mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0",
			"ro", "ro,noload", "e2fsck -fn");
}

TEST_F_TIMEOUT(fs, xfs_frozen_snapshot, 150)
{
	/* mkfs.xfs refuses filesystems under 300M unless it runs for fstests. */
	frozen_snapshot(_metadata, self, "xfs",
			"TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f",
			"ro,nouuid", "ro,nouuid,norecovery", "xfs_repair -n");
}

/*
 * The image mounted read-write: its writes stay in the snapshot and
 * never reach the origin, byte for byte.
 */
TEST_F_TIMEOUT(fs, ext4_image_read_write, 150)
{
	const char *devs[] = { self->origin };
	static struct frec image[NR_FILES + NR_NEW];
	struct vss_snap_info info;
	struct vss_created c;
	uint64_t h1, h2;
	bool fallback_needed;
	int bad;

	ASSERT_EQ(0, run("mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 %s",
			 self->origin));
	ASSERT_EQ(0, run("mount -t ext4 %s %s", self->origin, ORIGIN_MNT));
	ASSERT_EQ(0, make_tree(self));
	memcpy(self->snap, self->now, sizeof(self->snap));
	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0, 0, 0, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	TH_LOG("writes held %llu us", (unsigned long long)c.hold_us);
	EXPECT_LT(c.hold_us, HOLD_LIMIT_US);
	ASSERT_TRUE(writable_after_snapshot(_metadata));
	ASSERT_EQ(0, change_tree(self, ORIGIN_MNT, self->now, 2));
	umount_all(ORIGIN_MNT);
	ASSERT_FALSE(is_mountpoint(ORIGIN_MNT));
	ASSERT_EQ(0, hash_device(self->origin, &h1));

	/* Read-write on the image: its own changes. */
	ASSERT_EQ(0, mount_image(_metadata, "ext4", c.image[0], "rw", "rw",
				 &fallback_needed));
	memcpy(image, self->snap, sizeof(image));
	EXPECT_EQ(0, check_tree(IMAGE_MNT, image, NR_FILES + NR_NEW, self->why,
				sizeof(self->why))) TH_LOG("image: %s", self->why);
	ASSERT_EQ(0, change_tree(self, IMAGE_MNT, image, 3));
	umount_all(IMAGE_MNT);
	ASSERT_FALSE(is_mountpoint(IMAGE_MNT));

	ASSERT_EQ(0, hash_device(self->origin, &h2));
	EXPECT_EQ(h1, h2) TH_LOG("writes to the image changed the origin");

	/* The image keeps what was written to it, and checks clean. */
	EXPECT_EQ(0, run("e2fsck -fn %s", c.image[0]))
		TH_LOG("e2fsck of the written image is not clean");
	ASSERT_EQ(0, run("mount -t ext4 -o ro %s %s", c.image[0], IMAGE_MNT));
	bad = check_tree(IMAGE_MNT, image, NR_FILES + NR_NEW, self->why,
			 sizeof(self->why));
	EXPECT_EQ(0, bad) TH_LOG("%d image files lost their writes; first: %s",
				 bad, self->why);
	umount_all(IMAGE_MNT);

	/* And the origin holds exactly its own changes. */
	ASSERT_EQ(0, run("mount -t ext4 -o ro %s %s", self->origin, ORIGIN_MNT));
	bad = check_tree(ORIGIN_MNT, self->now, NR_FILES + NR_NEW, self->why,
			 sizeof(self->why));
	EXPECT_EQ(0, bad) TH_LOG("%d origin files differ; first: %s", bad,
				 self->why);
	EXPECT_EQ(0, access(ORIGIN_MNT "/after-snapshot", F_OK));
	umount_all(ORIGIN_MNT);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	TH_LOG("storage used: %llu KiB", (unsigned long long)info.storage_used >> 10);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false))
		TH_LOG("delete: %s", self->nl.errmsg);
}

TEST_HARNESS_MAIN
