// SPDX-License-Identifier: GPL-2.0
/*
 * Diff storage on the snapshotted volume itself (VSS_STORAGE_SAMEVOL): a
 * directory on an ext4 or XFS filesystem of a device in the set. The
 * store is pinned (writes, truncate, fallocate, unlink, rename, reflink
 * and defrag of its file are refused), its chunks are written straight to
 * the device (never copied, never tracked), images read its sectors as
 * zeros and fsck clean, and it goes with the last snapshot that uses it.
 *
 * Every fixture test runs on ext4 and on XFS.
 *
 * Needs scratch disks from the VM harness:
 *   0: origin (256M)   1: a block store (64M)
 *   2: another origin, for btrfs (128M: mkfs.btrfs wants 109M)
 *
 *   scripts/vm-run --disk 256M --disk 64M --disk 128M -- build/selftests/vss_samevol_test
 */
#include "vss_nl.h"
#include "vss_util.h"
#include "vss_sys.h"
#include "vss_harness.h"
#include <dirent.h>
#include <linux/fiemap.h>
#include <pthread.h>
#include <sys/statvfs.h>

#define TOP		"/tmp/vss_samevol"
#define ORIGIN_MNT	TOP "/origin"
#define IMAGE_MNT	TOP "/image"
#define STORE_DIR	ORIGIN_MNT "/vss"
#define DATA_FILE	ORIGIN_MNT "/data"
#define DATA_SECTORS	8192			/* 4 MiB of stamps */
#define MiB		(1024ULL * 1024)

/* A file's extents: logical and physical bytes, as FIEMAP gives them. */
struct extents {
	unsigned int nr;
	struct { uint64_t logical, physical, length; } e[256];
};

static int file_extents(const char *path, struct extents *out)
{
	size_t size = sizeof(struct fiemap) + 256 * sizeof(struct fiemap_extent);
	struct fiemap *fm = calloc(1, size);
	int fd, ret = 0;
	unsigned int i;

	memset(out, 0, sizeof(*out));	/* compared whole */
	if (!fm)
		return -ENOMEM;
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		free(fm);
		return -errno;
	}
	fm->fm_length = ~0ULL;
	fm->fm_flags = FIEMAP_FLAG_SYNC;
	fm->fm_extent_count = 256;
	if (ioctl(fd, FS_IOC_FIEMAP, fm))
		ret = -errno;
	out->nr = ret ? 0 : fm->fm_mapped_extents;
	for (i = 0; i < out->nr; i++) {
		out->e[i].logical = fm->fm_extents[i].fe_logical;
		out->e[i].physical = fm->fm_extents[i].fe_physical;
		out->e[i].length = fm->fm_extents[i].fe_length;
	}
	close(fd);
	free(fm);
	return ret;
}

/* Is @name a segment of a store ("<uuid>.<n>"), and is it its first? */
static bool segment_name(const char *name, bool *first)
{
	size_t len = strlen(name);

	*first = len == 38 && !strcmp(name + 36, ".0");
	return len > 37 && name[36] == '.';
}

/*
 * The stores in @dir/.vss-store: how many (files that are not segments
 * count as stores too), and the path of the first one's first segment.
 */
static int store_file(const char *dir, char *path, size_t len)
{
	char sub[256];
	struct dirent *e;
	int n = 0;
	bool first;
	DIR *d;

	path[0] = 0;
	snprintf(sub, sizeof(sub), "%s/.vss-store", dir);
	d = opendir(sub);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (segment_name(e->d_name, &first) && !first)
			continue;
		if (!n++)
			snprintf(path, len, "%s/%s", sub, e->d_name);
	}
	closedir(d);
	return n;
}

/* How many files the stores in @dir/.vss-store have. */
static int store_segments(const char *dir)
{
	char sub[256];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(sub, sizeof(sub), "%s/.vss-store", dir);
	d = opendir(sub);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * The extents of every file in @dir/.vss-store, together; 1 if every one
 * is pinned (a write gives ETXTBSY).
 */
static int store_extents(const char *dir, struct extents *out)
{
	char sub[256], path[600];
	struct extents one;
	struct dirent *e;
	int pinned = 1;
	unsigned int i;
	DIR *d;

	memset(out, 0, sizeof(*out));
	snprintf(sub, sizeof(sub), "%s/.vss-store", dir);
	d = opendir(sub);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", sub, e->d_name);
		if (file_extents(path, &one))
			pinned = -EIO;
		for (i = 0; i < one.nr && out->nr < 256; i++)
			out->e[out->nr++] = one.e[i];
		fd = open(path, O_WRONLY);
		if (fd < 0 || write(fd, "x", 1) != -1 || errno != ETXTBSY)
			pinned = pinned < 0 ? pinned : 0;
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	return pinned;
}

/* Do the physical ranges of @a and @b overlap? */
static bool extents_overlap(const struct extents *a, const struct extents *b)
{
	unsigned int i, j;

	for (i = 0; i < a->nr; i++)
		for (j = 0; j < b->nr; j++)
			if (a->e[i].physical < b->e[j].physical + b->e[j].length &&
			    b->e[j].physical < a->e[i].physical + a->e[i].length)
				return true;
	return false;
}

/* The debug kernel's slowness (see vss_harness.h), for waits. */
static unsigned int time_scale(void)
{
	const char *scale = getenv("VSS_TIMEOUT_SCALE");
	unsigned long n = scale ? strtoul(scale, NULL, 10) : 1;

	return n ? n : 1;
}

/* Waits up to @ms (scaled) for @dir's stores to have @want files or more. */
static int wait_segments(const char *dir, int want, unsigned int ms)
{
	unsigned int waited;

	ms *= time_scale();
	for (waited = 0; store_segments(dir) < want && waited < ms;
	     waited += 20)
		usleep(20 * 1000);
	return store_segments(dir);
}

/* Waits (scaled) for @dir's stores to go: a growth may still hold one. */
static int store_gone(const char *dir)
{
	char path[512];
	unsigned int waited;

	for (waited = 0; store_file(dir, path, sizeof(path)) &&
	     waited < 5000 * time_scale(); waited += 20)
		usleep(20 * 1000);
	return store_file(dir, path, sizeof(path));
}

/*
 * Checks the stamps of the data file as an image holds them: sector s of
 * the file lives at the physical place @map gives (the origin's layout,
 * which in-place O_DIRECT rewrites never change).
 */
static long verify_map_on(const char *dev, const struct extents *map,
			  uint64_t sectors, const uint16_t *expect,
			  uint16_t seq, char *why)
{
	enum { STEP = 128 };		/* sectors a read */
	char *buf = aligned_buf(STEP * SECTOR);
	long bad = 0;
	unsigned int i;
	int fd = open(dev, O_RDONLY | O_DIRECT);

	why[0] = 0;
	if (fd < 0 || !buf) {
		snprintf(why, 256, "open %s: %s", dev, strerror(errno));
		free(buf);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (i = 0; i < map->nr; i++) {
		uint64_t s, first = map->e[i].logical / SECTOR;
		uint64_t end = first + map->e[i].length / SECTOR;

		if (end > sectors)
			end = sectors;
		for (s = first; s < end; s += STEP) {
			unsigned int n = end - s < STEP ? end - s : STEP, k;
			off_t at = map->e[i].physical + (s - first) * SECTOR;

			if (pread(fd, buf, (size_t)n * SECTOR, at) != (ssize_t)n * SECTOR) {
				snprintf(why, 256, "read %s at %lld: %s", dev,
					 (long long)at, strerror(errno));
				bad = -1;
				goto out;
			}
			for (k = 0; k < n; k++) {
				uint16_t want = expect ? expect[s + k] : seq;
				int r = stamp_check(buf + k * SECTOR, s + k,
						    want);

				if (r && !bad++)
					snprintf(why, 256, "file sector %llu: %s (want seq %u)",
						 (unsigned long long)(s + k),
						 r == -1 ? "bad checksum" :
						 r == -2 ? "misplaced" : "wrong sequence",
						 want);
			}
		}
	}
out:
	close(fd);
	free(buf);
	return bad;
}

static long verify_file_on(const char *dev, const struct extents *map,
			   const uint16_t *expect, char *why)
{
	return verify_map_on(dev, map, DATA_SECTORS, expect, 0, why);
}

/* Writes @path, @sectors stamped with @seq, synced; its extents in @map. */
static int stamped_file(const char *path, uint64_t sectors, uint16_t seq,
			struct extents *map)
{
	int fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600);
	int ret;

	if (fd < 0)
		return -errno;
	ret = posix_fallocate(fd, 0, sectors * SECTOR);
	ret = ret ? -ret : fill_stamps(fd, sectors, seq);
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	return ret ?: file_extents(path, map);
}

/* Counts the non-zero bytes of @dev in the ranges of @map. */
static long nonzero_in(const char *dev, const struct extents *map)
{
	const size_t step = 64 * 1024;
	char *buf = aligned_buf(step);
	long nonzero = 0;
	unsigned int i;
	int fd = open(dev, O_RDONLY | O_DIRECT);

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (i = 0; i < map->nr; i++) {
		uint64_t off;

		for (off = 0; off < map->e[i].length; off += step) {
			size_t n = map->e[i].length - off < step ?
				   map->e[i].length - off : step;
			size_t k;

			if (pread(fd, buf, n, map->e[i].physical + off) != (ssize_t)n) {
				nonzero = -1;
				goto out;
			}
			for (k = 0; k < n; k++)
				nonzero += buf[k] != 0;
		}
	}
out:
	close(fd);
	free(buf);
	return nonzero;
}

FIXTURE(samevol) {
	struct vss_nl nl;
	struct vss_nl ev;		/* events: requests on nl skip them */
	const char *origin;
	const char *blockstore;
	uint16_t *now;			/* the data file's stamps now */
};

FIXTURE_VARIANT(samevol) {
	const char *fs;
	const char *mkfs;
	const char *image_opts;
	const char *fsck;
	/*
	 * A frozen XFS has its log quiesced but not clean: xfs_repair -n
	 * reports the log until a mount of the image has replayed it.
	 */
	bool replay_before_fsck;
};

FIXTURE_VARIANT_ADD(samevol, ext4) {
	.fs = "ext4",
	/*
	 * Inode tables and journal zeroed now, not by ext4lazyinit in the
	 * background, whose writes would take room the tests size.
	 */
	.mkfs = "mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0",
	.image_opts = "ro",
	.fsck = "e2fsck -fn",
};

FIXTURE_VARIANT_ADD(samevol, xfs) {
	.fs = "xfs",
	/* mkfs.xfs refuses filesystems under 300M unless it runs for fstests. */
	.mkfs = "TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f",
	.image_opts = "ro,nouuid",
	.fsck = "xfs_repair -n",
	.replay_before_fsck = true,
};

/* Writes stamps of @seq to file sectors [first, first + nr) of the data file. */
static int stamp_data(uint16_t *now, uint64_t first, unsigned int nr,
		      uint16_t seq)
{
	void *buf = aligned_buf((size_t)nr * SECTOR);
	int fd = open(DATA_FILE, O_WRONLY | O_DIRECT);
	int ret;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return -errno ?: -ENOMEM;
	}
	ret = write_stamps(fd, buf, first, nr, seq);
	if (!ret)
		for (unsigned int i = 0; i < nr; i++)
			now[first + i] = seq;
	close(fd);
	free(buf);
	return ret;
}

/* Rewrites @count random runs of the data file with stamps of @seq. */
static int scribble(uint16_t *now, uint64_t *state, unsigned int count,
		    uint16_t seq)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < count && !ret; i++) {
		unsigned int len = 1 + rnd(state) % 64;
		uint64_t first = rnd(state) % (DATA_SECTORS - len);

		ret = stamp_data(now, first, len, seq);
	}
	return ret;
}

FIXTURE_SETUP(samevol)
{
	int fd;

	ASSERT_EQ(0, vss_nl_open(&self->nl));
	ASSERT_EQ(0, vss_nl_open(&self->ev));
	self->origin = scratch_disk(0);
	self->blockstore = scratch_disk(1);
	ASSERT_NE(NULL, self->origin) TH_LOG("needs scratch disks (VSS_DISKS)");
	ASSERT_NE(NULL, self->blockstore);
	ASSERT_EQ(0, run("mkdir -p %s %s", ORIGIN_MNT, IMAGE_MNT));
	ASSERT_EQ(0, run("%s %s", variant->mkfs, self->origin));
	ASSERT_EQ(0, run("mount -t %s %s %s", variant->fs, self->origin,
			 ORIGIN_MNT));
	ASSERT_EQ(0, mkdir(STORE_DIR, 0700));
	if (access("/proc/swaps", F_OK)) {
		const char *devs[] = { self->origin };
		struct vss_created made;

		/* A kernel without CONFIG_SWAP cannot pin: a clear refusal. */
		ASSERT_EQ(-EOPNOTSUPP, vss_create(&self->nl, devs, 1, STORE_DIR,
						  8 * MiB, 0, 0, &made));
		ASSERT_NE(NULL, strstr(self->nl.errmsg, "CONFIG_SWAP"))
			TH_LOG("%s", self->nl.errmsg);
		ASSERT_EQ(0, run("test -z \"$(ls -A %s)\"", STORE_DIR));
		SKIP(return, "this kernel has no swap support (CONFIG_SWAP), which a same-volume store needs");
	}
	self->now = calloc(DATA_SECTORS, sizeof(*self->now));
	ASSERT_NE(NULL, self->now);
	fd = open(DATA_FILE, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_fallocate(fd, 0, DATA_SECTORS * SECTOR));
	close(fd);
	ASSERT_EQ(0, stamp_data(self->now, 0, DATA_SECTORS, 1));
	sync();
}

FIXTURE_TEARDOWN(samevol)
{
	vss_nl_close(&self->ev);
	vss_nl_teardown(_metadata, &self->nl, true);
	umount_all(IMAGE_MNT);
	umount_all(ORIGIN_MNT);
	free(self->now);
}

static int create_samevol(struct __test_metadata *_metadata,
			  FIXTURE_DATA(samevol) *self, uint64_t limit,
			  struct vss_created *made)
{
	const char *devs[] = { self->origin };
	int ret = vss_create(&self->nl, devs, 1, STORE_DIR, limit, 0, 0, made);

	if (ret)
		TH_LOG("create: %s (\"%s\")", strerror(-ret), self->nl.errmsg);
	return ret;
}

/* The image of @made is clean by fsck, and its data file is as at @expect. */
static void check_image(struct __test_metadata *_metadata,
			const FIXTURE_VARIANT(samevol) *variant, const char *image,
			const struct extents *data_map,
			const struct extents *store_map, const uint16_t *expect)
{
	char why[256];

	EXPECT_EQ(0, verify_file_on(image, data_map, expect, why))
		TH_LOG("%s: %s", image, why);
	EXPECT_EQ(0, nonzero_in(image, store_map))
		TH_LOG("%s carries data where the store lies", image);
	if (variant->replay_before_fsck) {
		EXPECT_EQ(0, run("mount -o %s %s %s", variant->image_opts,
				 image, IMAGE_MNT));
		umount_all(IMAGE_MNT);
	}
	EXPECT_EQ(0, run("%s %s", variant->fsck, image));
}

/* The store is pinned: the kernel refuses to change or move its file. */
TEST_F(samevol, store_file_is_pinned)
{
	struct extents before, after;
	struct vss_created made;
	struct vss_snap_info info;
	char path[512], moved[600];
	int fd;

	ASSERT_EQ(0, create_samevol(_metadata, self, 32 * MiB, &made));
	ASSERT_EQ(0, vss_snap_info(&self->nl, made.snap_id[0], &info));
	EXPECT_EQ(VSS_STORAGE_SAMEVOL, info.storage_kind);
	/* Each extent of the file holds whole chunks only. */
	EXPECT_GE(32 * MiB, info.storage_limit);
	EXPECT_LE(31 * MiB, info.storage_limit);
	ASSERT_EQ(1, store_file(STORE_DIR, path, sizeof(path)));
	ASSERT_EQ(0, file_extents(path, &before));
	ASSERT_LT(0, before.nr);

	fd = open(path, O_WRONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, write(fd, "x", 1));
	EXPECT_EQ(ETXTBSY, errno);
	EXPECT_EQ(-1, ftruncate(fd, 0));
	EXPECT_EQ(ETXTBSY, errno);
	EXPECT_NE(0, posix_fallocate(fd, 0, 64 * MiB));
	close(fd);
	EXPECT_EQ(-1, unlink(path));
	EXPECT_EQ(EPERM, errno);
	snprintf(moved, sizeof(moved), "%s.moved", path);
	EXPECT_EQ(-1, rename(path, moved));
	EXPECT_EQ(EPERM, errno);
	EXPECT_NE(0, run_quiet("cp --reflink=always %s %s/copy", path,
			       ORIGIN_MNT));
	if (!strcmp(variant->fs, "ext4"))
		run_quiet("e4defrag %s", path);
	else
		run_quiet("xfs_fsr %s", path);
	ASSERT_EQ(0, file_extents(path, &after));
	EXPECT_EQ(0, memcmp(&before, &after, sizeof(before)))
		TH_LOG("the store's file moved");

	EXPECT_EQ(0, vss_delete_set(&self->nl, made.set_id, false));
	EXPECT_EQ(0, store_gone(STORE_DIR))
		TH_LOG("%s left behind", path);
}

/*
 * Sector-stamped integrity with the store on the snapshotted filesystem:
 * the image's data file is as at the instant while the origin's is
 * rewritten, the store's sectors read as zeros, and fsck is clean.
 */
TEST_F(samevol, stamped_integrity)
{
	uint16_t *then = malloc(DATA_SECTORS * sizeof(*then));
	struct extents data_map, store_map;
	uint64_t state = 0x5a5a1234;
	struct vss_created made;
	struct vss_snap_info info;
	char path[512], why[256];
	unsigned int round;

	ASSERT_NE(NULL, then);
	ASSERT_EQ(0, file_extents(DATA_FILE, &data_map));
	ASSERT_EQ(0, create_samevol(_metadata, self, 48 * MiB, &made));
	memcpy(then, self->now, DATA_SECTORS * sizeof(*then));
	ASSERT_EQ(1, store_file(STORE_DIR, path, sizeof(path)));
	ASSERT_EQ(0, file_extents(path, &store_map));

	for (round = 0; round < 4; round++) {
		ASSERT_EQ(0, scribble(self->now, &state, 200, 2 + round));
		/* Sector 0, many times over. */
		ASSERT_EQ(0, stamp_data(self->now, 0, 1, 2 + round));
		ASSERT_EQ(0, run("dd if=/dev/urandom of=%s/new%u bs=1M count=4 status=none conv=fsync",
				 ORIGIN_MNT, round));
	}
	sync();
	ASSERT_EQ(0, vss_snap_info(&self->nl, made.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	EXPECT_LT(0, info.storage_used);
	check_image(_metadata, variant, made.image[0], &data_map, &store_map,
		    then);
	/* The origin holds the new writes. */
	EXPECT_EQ(0, verify_file_on(self->origin, &data_map, self->now, why))
		TH_LOG("origin: %s", why);
	EXPECT_EQ(0, run("mount -o %s %s %s", variant->image_opts,
			 made.image[0], IMAGE_MNT));
	EXPECT_EQ(0, run("test ! -e %s/new0", IMAGE_MNT));
	umount_all(IMAGE_MNT);

	EXPECT_EQ(0, vss_delete_set(&self->nl, made.set_id, false));
	EXPECT_EQ(0, store_gone(STORE_DIR));
	free(then);
}

/*
 * Sixteen sets share one store in the same directory; deleting them in a
 * random order leaves every other image as it was. The last delete
 * removes the store.
 */
TEST_F(samevol, sixteen_snapshots_random_deletes)
{
	enum { NR = 16 };
	uint16_t *then[NR];
	struct vss_created made[NR];
	struct extents data_map, store_map;
	uint64_t state = 0x1234abcd;
	bool gone[NR] = { false };
	unsigned int i, left = NR;
	char path[512];

	ASSERT_EQ(0, file_extents(DATA_FILE, &data_map));
	for (i = 0; i < NR; i++) {
		then[i] = malloc(DATA_SECTORS * sizeof(**then));
		ASSERT_NE(NULL, then[i]);
		ASSERT_EQ(0, create_samevol(_metadata, self, 64 * MiB, &made[i]));
		memcpy(then[i], self->now, DATA_SECTORS * sizeof(**then));
		ASSERT_EQ(0, scribble(self->now, &state, 20, 2 + i));
	}
	ASSERT_EQ(1, store_file(STORE_DIR, path, sizeof(path)))
		TH_LOG("the sets do not share one store");
	ASSERT_EQ(0, file_extents(path, &store_map));
	/*
	 * All hold their instant; fsck (and XFS's log replay, which writes
	 * to the image and so to the shared store) on the oldest, one in the
	 * middle and the newest.
	 */
	for (i = 0; i < NR; i++) {
		char why[256];

		if (i == 0 || i == NR / 2 || i == NR - 1) {
			check_image(_metadata, variant, made[i].image[0],
				    &data_map, &store_map, then[i]);
			continue;
		}
		EXPECT_EQ(0, verify_file_on(made[i].image[0], &data_map,
					    then[i], why))
			TH_LOG("image %u: %s", i, why);
		EXPECT_EQ(0, nonzero_in(made[i].image[0], &store_map));
	}

	while (left) {
		unsigned int pick = rnd(&state) % NR, j;

		if (gone[pick])
			continue;
		ASSERT_EQ(0, vss_delete_set(&self->nl, made[pick].set_id, false));
		gone[pick] = true;
		left--;
		/* The older neighbour took its chunks; the newest reads on. */
		for (j = pick; j-- > 0;)
			if (!gone[j])
				break;
		if (j < NR && !gone[j]) {
			char why[256];

			EXPECT_EQ(0, verify_file_on(made[j].image[0], &data_map,
						    then[j], why))
				TH_LOG("after deleting %u, image %u: %s", pick, j, why);
		}
		for (j = NR; j-- > 0;)
			if (!gone[j])
				break;
		if (j < NR && !gone[j]) {
			char why[256];

			EXPECT_EQ(0, verify_file_on(made[j].image[0], &data_map,
						    then[j], why))
				TH_LOG("after deleting %u, image %u: %s", pick, j, why);
		}
		if (left)
			EXPECT_EQ(1, store_file(STORE_DIR, path, sizeof(path)));
	}
	EXPECT_EQ(0, store_gone(STORE_DIR))
		TH_LOG("%s left behind", path);
	for (i = 0; i < NR; i++)
		free(then[i]);
}

/*
 * A workload that creates and deletes files until the filesystem is
 * full: the store fills first, the snapshot fails with an event and a
 * state that say so, the origin keeps every file, the filesystem stays
 * writable and checks clean, and the image of the failed snapshot fails.
 */
TEST_F(samevol, filling_the_filesystem)
{
	struct vss_created made;
	struct vss_snap_info info;
	struct statvfs before, after;
	struct vss_attrs ev;
	char evbuf[8192];
	unsigned int n, i, failed_events = 0, overflow_events = 0;
	int ret, type;

	ASSERT_EQ(0, statvfs(ORIGIN_MNT, &before));
	ASSERT_EQ(0, vss_subscribe_events(&self->ev));
	ASSERT_EQ(0, create_samevol(_metadata, self, 8 * MiB, &made));
	ASSERT_EQ(0, statvfs(ORIGIN_MNT, &after));
	/* A documented share of the free space is never taken: half. */
	EXPECT_LE((before.f_bavail - after.f_bavail) * (uint64_t)after.f_frsize,
		  before.f_bavail * (uint64_t)before.f_frsize / 2);

	for (n = 0;; n++) {
		ret = run_quiet("dd if=/dev/zero of=%s/fill%u bs=1M count=4 conv=fsync",
				ORIGIN_MNT, n);
		if (ret)
			break;
		if (n % 3 == 2)
			ASSERT_EQ(0, run("rm %s/fill%u", ORIGIN_MNT, n - 1));
		ASSERT_GT(400, n) TH_LOG("the filesystem never filled");
	}
	/* Full: nothing written before is lost, and a delete makes room. */
	for (i = 0; i < n; i++) {
		if (i % 3 == 1)
			continue;
		EXPECT_EQ(0, run("cmp -n 4194304 %s/fill%u /dev/zero", ORIGIN_MNT, i));
	}
	ASSERT_EQ(0, run("rm -f %s/fill*", ORIGIN_MNT));
	EXPECT_EQ(0, run("dd if=/dev/zero of=%s/after bs=1M count=4 conv=fsync status=none",
			 ORIGIN_MNT));

	ASSERT_EQ(0, vss_snap_info(&self->nl, made.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_FAILED, info.state);
	EXPECT_NE(NULL, strstr(info.reason, "full")) TH_LOG("reason: %s", info.reason);
	while ((type = vss_next_event(&self->ev, 100, &ev, evbuf)) > 0) {
		const struct nlattr *err;

		overflow_events += type == VSS_EVENT_STORAGE_OVERFLOW;
		if (type != VSS_EVENT_SNAPSHOT_FAILED)
			continue;
		failed_events++;
		err = vss_event_attr(&ev, VSS_A_ERRNO, NULL);
		EXPECT_NE(NULL, err);
		if (err)
			EXPECT_EQ(ENOSPC, (int)vss_get_u32(err));
	}
	EXPECT_EQ(1, failed_events);
	EXPECT_LE(1, overflow_events);
	EXPECT_NE(0, run_quiet("dd if=%s of=/dev/null bs=4k count=1 iflag=direct",
			       made.image[0]));

	EXPECT_EQ(0, vss_delete_set(&self->nl, made.set_id, false));
	EXPECT_EQ(0, store_gone(STORE_DIR));
	umount_all(ORIGIN_MNT);
	EXPECT_EQ(0, run("%s %s", variant->fsck, self->origin));
}

struct freezer {
	const char *dir;
	int ret;
};

static void *freeze_thaw(void *arg)
{
	struct freezer *f = arg;
	int fd = open(f->dir, O_RDONLY);

	f->ret = fd < 0 ? -errno : 0;
	if (fd < 0)
		return NULL;
	if (ioctl(fd, FIFREEZE, 0))
		f->ret = -errno;
	usleep(300 * 1000);
	if (!f->ret && ioctl(fd, FITHAW, 0))
		f->ret = -errno;
	close(fd);
	return NULL;
}

/*
 * A writer freezes the filesystem (FIFREEZE) while writes to the device
 * below it need copies: copies go straight to the store's extents and
 * never wait for the thaw, so the snapshot stays healthy.
 */
TEST_F(samevol, freeze_while_copying)
{
	struct extents data_map, store_map;
	uint16_t *then = malloc(DATA_SECTORS * sizeof(*then));
	struct freezer f = { .dir = ORIGIN_MNT };
	struct vss_created made;
	struct vss_snap_info info;
	pthread_t thread;
	char path[512];
	void *buf = aligned_buf(64 * SECTOR);
	uint64_t state = 77;
	unsigned int i;
	int fd;

	ASSERT_NE(NULL, then);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, file_extents(DATA_FILE, &data_map));
	ASSERT_EQ(0, create_samevol(_metadata, self, 32 * MiB, &made));
	memcpy(then, self->now, DATA_SECTORS * sizeof(*then));
	ASSERT_EQ(1, store_file(STORE_DIR, path, sizeof(path)));
	ASSERT_EQ(0, file_extents(path, &store_map));

	/* Raw writes to the data file's blocks, which a freeze does not hold. */
	fd = open(self->origin, O_WRONLY | O_DIRECT);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pthread_create(&thread, NULL, freeze_thaw, &f));
	usleep(50 * 1000);
	for (i = 0; i < 100; i++) {
		uint64_t s = rnd(&state) % (data_map.e[0].length / SECTOR - 64);

		ASSERT_EQ(0, write_stamps_at(fd, buf,
					     data_map.e[0].physical / SECTOR -
					     data_map.e[0].logical / SECTOR, s, 64, 9));
	}
	close(fd);
	pthread_join(thread, NULL);
	EXPECT_EQ(0, f.ret) TH_LOG("freeze: %s", strerror(-f.ret));
	ASSERT_EQ(0, vss_snap_info(&self->nl, made.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	check_image(_metadata, variant, made.image[0], &data_map, &store_map,
		    then);
	EXPECT_EQ(0, vss_delete_set(&self->nl, made.set_id, false));
	free(buf);
	free(then);
}

static int child_status(pid_t pid)
{
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/*
 * A writer of new 1 MiB files (@prefix0, @prefix1, ..., at most @max)
 * races the store's growth: it stops once the store has a second file.
 * How much the filesystem's own metadata adds to the copies differs
 * (ext4's journal), so the test watches for the growth rather than
 * count. Returns the number of the store's files, or -1.
 */
static int write_until_growth(const char *prefix, unsigned int max)
{
	const char *stop = TOP "/stop";
	unsigned int waited = 0;
	pid_t pid;
	int ret;

	unlink(stop);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		for (unsigned int i = 0; i < max && access(stop, F_OK); i++)
			if (run_quiet("dd if=/dev/urandom of=%s%u bs=1M count=1 conv=fsync",
				      prefix, i))
				_exit(1);
		_exit(0);
	}
	while (store_segments(STORE_DIR) < 2 && waitpid(pid, NULL, WNOHANG) == 0 &&
	       waited < 60000 * time_scale()) {
		usleep(20 * 1000);
		waited += 20;
	}
	close(open(stop, O_WRONLY | O_CREAT, 0600));
	ret = child_status(pid);
	unlink(stop);
	if (ret > 0 && ret != 128)
		return -1;
	ret = wait_segments(STORE_DIR, 2, 5000);
	/* From the file's creation to its room's publication. */
	usleep(300 * 1000 * time_scale());
	return ret;
}

/*
 * Allocates (without writing: no copies) the file @name so that about
 * @left bytes of the origin's filesystem stay free.
 */
static int leave_free(const char *name, uint64_t left)
{
	struct statvfs vfs;
	uint64_t free;

	if (statvfs(ORIGIN_MNT, &vfs))
		return -errno;
	free = vfs.f_bavail * (uint64_t)vfs.f_frsize;
	if (free <= left + MiB)
		return -ENOSPC;
	return run("fallocate -l %llu %s/%s",
		   (unsigned long long)((free - left) & ~(MiB - 1)), ORIGIN_MNT,
		   name);
}

/*
 * Writes stamps of @seq to file sectors [@first, @first + @nr) of the file
 * that @map maps, through the device @fd below the filesystem (which a
 * freeze does not hold).
 */
static int write_map_on(int fd, const struct extents *map, uint64_t first,
			uint64_t nr, uint16_t seq)
{
	enum { STEP = 128 };
	void *buf = aligned_buf(STEP * SECTOR);
	uint64_t s, end = first + nr;
	unsigned int i;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (i = 0; i < map->nr && !ret; i++) {
		uint64_t lo = map->e[i].logical / SECTOR;
		uint64_t hi = lo + map->e[i].length / SECTOR;
		uint64_t base = map->e[i].physical / SECTOR - lo;

		for (s = lo > first ? lo : first; s < hi && s < end && !ret;
		     s += STEP) {
			uint64_t n = hi - s < STEP ? hi - s : STEP;

			if (n > end - s)
				n = end - s;
			ret = write_stamps_at(fd, buf, base, s, n, seq);
		}
	}
	free(buf);
	return ret;
}

/*
 * The store grows ahead of need while first writes race it: its new files
 * appear and are pinned, the snapshot stays healthy, and its image is as
 * at the instant. The store opens with half of what is free (less than
 * its limit) and grows when the user frees space. Room grown while a
 * snapshot lives is held for what it may still read there; a second set
 * shares the store, the first goes, and the second's copies use the
 * grown room.
 */
TEST_F(samevol, growth_while_writes_race)
{
	uint16_t *then_a = malloc(DATA_SECTORS * sizeof(*then_a));
	uint16_t *then_b = malloc(DATA_SECTORS * sizeof(*then_b));
	struct extents data_map, store_a, store_b, all;
	struct vss_created a, b;
	struct vss_snap_info info;
	uint64_t state = 4242;
	unsigned int i;

	ASSERT_NE(NULL, then_a);
	ASSERT_NE(NULL, then_b);
	ASSERT_EQ(0, file_extents(DATA_FILE, &data_map));
	/* 64 MiB free: the store opens with 32 of its 96 MiB (steps of 16). */
	ASSERT_EQ(0, leave_free("filler", 64 * MiB));
	ASSERT_EQ(0, create_samevol(_metadata, self, 96 * MiB, &a));
	memcpy(then_a, self->now, DATA_SECTORS * sizeof(*then_a));
	ASSERT_EQ(1, store_segments(STORE_DIR));
	ASSERT_EQ(1, store_extents(STORE_DIR, &store_a));
	ASSERT_EQ(0, vss_snap_info(&self->nl, a.snap_id[0], &info));
	EXPECT_EQ(96 * MiB, info.storage_limit);
	ASSERT_EQ(0, run("rm %s/filler && sync", ORIGIN_MNT));

	/* First writes until the store grows, 24 MiB and more. */
	ASSERT_EQ(0, scribble(self->now, &state, 30, 2));
	EXPECT_LE(2, write_until_growth(ORIGIN_MNT "/a", 40))
		TH_LOG("the store did not grow");
	EXPECT_EQ(1, store_extents(STORE_DIR, &all))
		TH_LOG("a file of the store is not pinned");
	ASSERT_EQ(0, vss_snap_info(&self->nl, a.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);

	/* A second set shares the store, all its files masked. */
	ASSERT_EQ(0, create_samevol(_metadata, self, 96 * MiB, &b));
	memcpy(then_b, self->now, DATA_SECTORS * sizeof(*then_b));
	ASSERT_EQ(1, store_extents(STORE_DIR, &store_b));
	check_image(_metadata, variant, a.image[0], &data_map, &store_a, then_a);
	EXPECT_EQ(0, vss_delete_set(&self->nl, a.set_id, false));

	/* More than the first room: B's copies need what was grown. */
	ASSERT_EQ(0, scribble(self->now, &state, 30, 3));
	for (i = 0; i < 44; i++) {
		ASSERT_EQ(0, run_quiet("dd if=/dev/urandom of=%s/b%u bs=1M count=1 conv=fsync",
				       ORIGIN_MNT, i));
		ASSERT_EQ(0, vss_snap_info(&self->nl, b.snap_id[0], &info));
		if (info.storage_used > 36 * MiB)
			break;
	}
	sync();
	ASSERT_EQ(0, vss_snap_info(&self->nl, b.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	EXPECT_LT(36 * MiB, info.storage_used);
	EXPECT_EQ(1, store_extents(STORE_DIR, &all));
	check_image(_metadata, variant, b.image[0], &data_map, &store_b, then_b);
	EXPECT_EQ(0, run("mount -o %s %s %s && test ! -e %s/b0 && test -e %s/a0",
			 variant->image_opts, b.image[0], IMAGE_MNT, IMAGE_MNT,
			 IMAGE_MNT));
	umount_all(IMAGE_MNT);
	EXPECT_EQ(0, vss_delete_set(&self->nl, b.set_id, false));
	EXPECT_EQ(0, store_gone(STORE_DIR));
	free(then_a);
	free(then_b);
}

/*
 * Room grown after a snapshot's instant may lie where a file was that has
 * been deleted since: the image must still read that file as it was (a
 * store that masked its new room would read zeros there, one that did
 * not would read diff data). Here the deleted file's blocks are nearly
 * all the free space there is, so the store grows into them.
 */
TEST_F(samevol, growth_keeps_deleted_files)
{
	const uint64_t kept_sectors = 96 * MiB / SECTOR;
	struct extents data_map, kept_map, store_map, all;
	struct vss_created made;
	struct vss_snap_info info;
	char why[256];

	ASSERT_EQ(0, file_extents(DATA_FILE, &data_map));
	ASSERT_EQ(0, stamped_file(ORIGIN_MNT "/kept", kept_sectors, 7,
				  &kept_map));
	ASSERT_EQ(0, leave_free("filler", 56 * MiB));
	sync();
	/* 28 of its 64 MiB at first. */
	ASSERT_EQ(0, create_samevol(_metadata, self, 64 * MiB, &made));
	ASSERT_EQ(1, store_extents(STORE_DIR, &store_map));
	/* The rest of the free space goes, without copies; then the file. */
	ASSERT_EQ(0, leave_free("filler2", 2 * MiB));
	ASSERT_EQ(0, run("rm %s/kept && sync", ORIGIN_MNT));
	/* Copies until the room left falls below the reserve. */
	EXPECT_LE(2, write_until_growth(ORIGIN_MNT "/new", 40));
	ASSERT_EQ(1, store_extents(STORE_DIR, &all));
	EXPECT_TRUE(extents_overlap(&all, &kept_map))
		TH_LOG("the store did not grow where the deleted file was");
	ASSERT_EQ(0, vss_snap_info(&self->nl, made.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	EXPECT_EQ(0, verify_map_on(made.image[0], &kept_map, kept_sectors,
				   NULL, 7, why))
		TH_LOG("the deleted file in the image: %s", why);
	check_image(_metadata, variant, made.image[0], &data_map, &store_map,
		    self->now);
	EXPECT_EQ(0, run("mount -o %s %s %s && test -e %s/kept && test ! -e %s/new0",
			 variant->image_opts, made.image[0], IMAGE_MNT,
			 IMAGE_MNT, IMAGE_MNT));
	umount_all(IMAGE_MNT);
	EXPECT_EQ(0, vss_delete_set(&self->nl, made.set_id, false));
	EXPECT_EQ(0, store_gone(STORE_DIR));
}

/*
 * A writer freezes the filesystem (FIFREEZE) while the store must grow:
 * growth waits for the thaw (no file appears meanwhile), the freeze and
 * the thaw are not held up, the copies go on into the reserve, and once
 * thawed the store grows and the snapshot is healthy.
 */
TEST_F(samevol, freeze_while_store_must_grow)
{
	const uint64_t big_sectors = 24 * MiB / SECTOR;
	struct extents data_map, big_map, store_map, all;
	struct vss_created made;
	struct vss_snap_info info;
	struct timespec t0, t1;
	char why[256];
	int fd, dir;

	ASSERT_EQ(0, file_extents(DATA_FILE, &data_map));
	ASSERT_EQ(0, stamped_file(ORIGIN_MNT "/big", big_sectors, 5, &big_map));
	ASSERT_EQ(0, leave_free("filler", 40 * MiB));
	sync();
	/* 20 of its 64 MiB at first; then room for it to grow. */
	ASSERT_EQ(0, create_samevol(_metadata, self, 64 * MiB, &made));
	ASSERT_EQ(1, store_extents(STORE_DIR, &store_map));
	ASSERT_EQ(0, run("rm %s/filler && sync", ORIGIN_MNT));

	dir = open(ORIGIN_MNT, O_RDONLY);
	ASSERT_LE(0, dir);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, ioctl(dir, FIFREEZE, 0)) TH_LOG("%s", strerror(errno));
	/* Raw first writes under the frozen filesystem: 14 of the 20 MiB. */
	fd = open(self->origin, O_WRONLY | O_DIRECT);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_map_on(fd, &big_map, 0, 14 * MiB / SECTOR, 6));
	close(fd);
	usleep(300 * 1000 * time_scale());
	EXPECT_EQ(1, store_segments(STORE_DIR))
		TH_LOG("the store grew in a frozen filesystem");
	ASSERT_EQ(0, vss_snap_info(&self->nl, made.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	EXPECT_EQ(0, ioctl(dir, FITHAW, 0)) TH_LOG("%s", strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(dir);
	EXPECT_GT(5.0 * time_scale(),
		  (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);

	EXPECT_LE(2, wait_segments(STORE_DIR, 2, 5000))
		TH_LOG("the store did not grow after the thaw");
	EXPECT_EQ(1, store_extents(STORE_DIR, &all))
		TH_LOG("a file of the store is not pinned");
	ASSERT_EQ(0, vss_snap_info(&self->nl, made.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	EXPECT_EQ(0, verify_map_on(made.image[0], &big_map, big_sectors, NULL,
				   5, why))
		TH_LOG("the image: %s", why);
	check_image(_metadata, variant, made.image[0], &data_map, &store_map,
		    self->now);
	EXPECT_EQ(0, vss_delete_set(&self->nl, made.set_id, false));
	EXPECT_EQ(0, store_gone(STORE_DIR));
}

/*
 * The filesystem itself is full (its users created files until ENOSPC)
 * while the snapshot needs the store to grow: growth is refused (never
 * more than half of what is free), with a STORAGE_LOW event and a log
 * line; the snapshot fails once the room is used up, with an event and
 * a state saying the filesystem has no room for the store to grow; the
 * origin keeps every write, and the filesystem stays writable for its
 * users and checks clean.
 */
TEST_F(samevol, filesystem_full_stops_growth)
{
	const uint64_t big_sectors = 32 * MiB / SECTOR;
	struct extents big_map;
	struct vss_created made;
	struct vss_snap_info info;
	struct vss_attrs ev;
	char evbuf[8192], why[256];
	unsigned int n, low = 0, failed = 0, overflow = 0;
	int type, fd;

	ASSERT_EQ(0, stamped_file(ORIGIN_MNT "/big", big_sectors, 5, &big_map));
	ASSERT_EQ(0, leave_free("filler", 40 * MiB));
	sync();
	ASSERT_EQ(0, vss_subscribe_events(&self->ev));
	/* 20 of its 64 MiB at first. */
	ASSERT_EQ(0, create_samevol(_metadata, self, 64 * MiB, &made));
	/* Files until ENOSPC: allocated, not written, so nothing is copied. */
	for (n = 0; !run_quiet("fallocate -l 1M %s/fill%u", ORIGIN_MNT, n); n++)
		ASSERT_GT(100, n) TH_LOG("the filesystem never filled");
	/* First writes over 32 MiB; the store has 20. */
	fd = open(self->origin, O_WRONLY | O_DIRECT);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_map_on(fd, &big_map, 0, big_sectors, 6));
	close(fd);

	ASSERT_EQ(0, vss_snap_info(&self->nl, made.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_FAILED, info.state);
	EXPECT_NE(NULL, strstr(info.reason, "its filesystem has no room for it to grow"))
		TH_LOG("reason: %s", info.reason);
	EXPECT_EQ(1, store_segments(STORE_DIR));
	while ((type = vss_next_event(&self->ev, 100, &ev, evbuf)) > 0) {
		const struct nlattr *err;

		low += type == VSS_EVENT_STORAGE_LOW;
		overflow += type == VSS_EVENT_STORAGE_OVERFLOW;
		if (type != VSS_EVENT_SNAPSHOT_FAILED)
			continue;
		failed++;
		err = vss_event_attr(&ev, VSS_A_ERRNO, NULL);
		EXPECT_NE(NULL, err);
		if (err)
			EXPECT_EQ(ENOSPC, (int)vss_get_u32(err));
	}
	EXPECT_LE(1, low);
	EXPECT_LE(1, overflow);
	EXPECT_EQ(1, failed);
	EXPECT_EQ(0, run("dmesg | grep -q 'same-volume store in %s cannot grow'",
			 STORE_DIR));
	/* The origin kept every write; the failed image reads nothing. */
	EXPECT_EQ(0, verify_map_on(self->origin, &big_map, big_sectors, NULL, 6,
				   why))
		TH_LOG("origin: %s", why);
	EXPECT_NE(0, run_quiet("dd if=%s of=/dev/null bs=4k count=1 iflag=direct",
			       made.image[0]));
	/* Writable for its users: what they free, they can write again. */
	ASSERT_EQ(0, run("rm %s/filler", ORIGIN_MNT));
	EXPECT_EQ(0, run("dd if=/dev/zero of=%s/after bs=1M count=4 conv=fsync status=none",
			 ORIGIN_MNT));
	EXPECT_EQ(0, vss_delete_set(&self->nl, made.set_id, false));
	EXPECT_EQ(0, store_gone(STORE_DIR));
	umount_all(ORIGIN_MNT);
	EXPECT_EQ(0, run("%s %s", variant->fsck, self->origin));
}

/* What cannot hold a same-volume store is refused, and nothing changes. */
TEST_F(samevol, refusals)
{
	struct vss_snap_info info;
	struct statvfs after;
	uint64_t big;
	const char *devs[] = { self->origin };
	struct vss_created made, other;
	struct statvfs vfs;
	char path[512];
	int fd, ret;

	/*
	 * A limit above half the free space: the store takes half, and
	 * would grow on from there as the space allows.
	 */
	ASSERT_EQ(0, statvfs(ORIGIN_MNT, &vfs));
	big = (vfs.f_bavail * (uint64_t)vfs.f_frsize / 2 + 16 * MiB) & ~(MiB - 1);
	ASSERT_EQ(0, create_samevol(_metadata, self, big, &made));
	ASSERT_EQ(0, statvfs(ORIGIN_MNT, &after));
	EXPECT_GE(vfs.f_bavail * (uint64_t)vfs.f_frsize / 2 + MiB,
		  (vfs.f_bavail - after.f_bavail) * (uint64_t)vfs.f_frsize);
	ASSERT_EQ(0, vss_snap_info(&self->nl, made.snap_id[0], &info));
	EXPECT_EQ(big, info.storage_limit);
	EXPECT_EQ(0, vss_delete_set(&self->nl, made.set_id, false));
	EXPECT_EQ(0, store_gone(STORE_DIR));

	/* A named file on the origin is still refused: the VFS would write it. */
	fd = open(ORIGIN_MNT "/storefile", O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_fallocate(fd, 0, 8 * MiB));
	close(fd);
	ret = vss_create(&self->nl, devs, 1, ORIGIN_MNT "/storefile", 0, 0, 0,
			 &made);
	EXPECT_EQ(-EXDEV, ret) TH_LOG("%s", self->nl.errmsg);

	/*
	 * An older snapshot of the device, with its store elsewhere, would
	 * read a new store's chunks: refused, with the way out named.
	 */
	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->blockstore, 0, 0,
				VSS_CREATE_NO_FREEZE, &other));
	ret = vss_create(&self->nl, devs, 1, STORE_DIR, 16 * MiB, 0, 0, &made);
	EXPECT_EQ(-EBUSY, ret) TH_LOG("%s", self->nl.errmsg);
	EXPECT_NE(NULL, strstr(self->nl.errmsg, "use the storage they use"))
		TH_LOG("%s", self->nl.errmsg);
	EXPECT_EQ(0, store_gone(STORE_DIR));
	EXPECT_EQ(1, vss_count_snapshots(&self->nl));
	EXPECT_EQ(0, vss_delete_set(&self->nl, other.set_id, false));

	/* The same directory is shared; another on the same device is not. */
	ASSERT_EQ(0, create_samevol(_metadata, self, 16 * MiB, &made));
	ASSERT_EQ(0, mkdir(ORIGIN_MNT "/vss2", 0700));
	ret = vss_create(&self->nl, devs, 1, ORIGIN_MNT "/vss2", 16 * MiB, 0,
			 0, &other);
	EXPECT_EQ(-EBUSY, ret) TH_LOG("%s", self->nl.errmsg);
	EXPECT_EQ(0, store_file(ORIGIN_MNT "/vss2", path, sizeof(path)));
	ASSERT_EQ(0, create_samevol(_metadata, self, 16 * MiB, &other));
	EXPECT_EQ(2, vss_count_snapshots(&self->nl));
	EXPECT_EQ(1, store_file(STORE_DIR, path, sizeof(path)));
	EXPECT_EQ(0, vss_delete_set(&self->nl, made.set_id, false));
	EXPECT_EQ(1, store_file(STORE_DIR, path, sizeof(path)));
	EXPECT_EQ(0, vss_delete_set(&self->nl, other.set_id, false));
	EXPECT_EQ(0, store_gone(STORE_DIR));
}

/*
 * What a crash leaves in .vss-store (an unpinned file of ours) goes when
 * the next store opens there; files that are not ours, and ours that are
 * pinned (here by swapon), stay.
 */
TEST_F(samevol, leftovers_are_removed)
{
	const char *sub = STORE_DIR "/.vss-store";
	const char *leftover = STORE_DIR "/.vss-store/0b1e4a52-8a4e-4c3b-9d1e-3f2a6c7d8e90.0";
	const char *swapfile = STORE_DIR "/.vss-store/7c0d1e2f-3a4b-4c5d-8e6f-708192a3b4c5.0";
	const char *notes = STORE_DIR "/.vss-store/notes";
	struct vss_created made;
	bool swapping;

	ASSERT_EQ(0, mkdir(sub, 0700));
	ASSERT_EQ(0, run("fallocate -l 4M %s && echo keep > %s", leftover, notes));
	ASSERT_EQ(0, run("dd if=/dev/zero of=%s bs=1M count=4 status=none && chmod 600 %s && mkswap -q %s",
			 swapfile, swapfile, swapfile));
	swapping = run_quiet("swapon %s", swapfile) == 0;
	if (!swapping)
		TH_LOG("no swap in this kernel: the pinned case is not tried");

	ASSERT_EQ(0, create_samevol(_metadata, self, 8 * MiB, &made));
	EXPECT_NE(0, access(leftover, F_OK)) TH_LOG("the leftover is still there");
	EXPECT_EQ(0, access(notes, F_OK)) TH_LOG("a file not of ours was removed");
	if (swapping)
		EXPECT_EQ(0, access(swapfile, F_OK))
			TH_LOG("an active swap file was removed");
	EXPECT_EQ(0, run("dmesg | grep -q 'removed the leftover store file .*%s'",
			 strrchr(leftover, '/') + 1));
	EXPECT_EQ(0, vss_delete_set(&self->nl, made.set_id, false));
	if (swapping)
		EXPECT_EQ(0, run("swapoff %s", swapfile));
	EXPECT_EQ(0, run("rm -f %s %s", swapfile, notes));
	EXPECT_EQ(0, run("test -z \"$(ls -A %s)\"", sub)) TH_LOG("the store's file stayed");
}

/* vssctl says when a directory it is given makes a same-volume store. */
TEST_F(samevol, vssctl_says_same_volume)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "build/bin/vssctl create --no-writers --storage %s --storage-limit 8M %s 2>&1 | "
		 "grep -q 'a snapshotted device: a same-volume store'", STORE_DIR,
		 self->origin);
	EXPECT_EQ(0, run("%s", cmd));
	EXPECT_EQ(1, vss_count_snapshots(&self->nl));
	EXPECT_EQ(0, run("build/bin/vssctl delete --all >/dev/null"));
}

/* btrfs cannot promise stable extents: refused with a clear error. */
TEST(btrfs_is_refused)
{
	const char *dev = scratch_disk(2);
	const char *devs[] = { dev };
	struct vss_created made;
	struct vss_nl nl;
	int ret;

	ASSERT_NE(NULL, dev);
	if (run_quiet("command -v mkfs.btrfs"))
		SKIP(return, "no mkfs.btrfs");
	if (run_quiet("modprobe -q btrfs; grep -qw btrfs /proc/filesystems"))
		SKIP(return, "this kernel has no btrfs");
	ASSERT_EQ(0, vss_nl_open(&nl));
	ASSERT_EQ(0, run("mkfs.btrfs -q -f %s", dev));
	ASSERT_EQ(0, run("mkdir -p %s && mount -t btrfs %s %s", ORIGIN_MNT, dev,
			 ORIGIN_MNT));
	ret = vss_create(&nl, devs, 1, ORIGIN_MNT, 16 * MiB, 0, 0, &made);
	EXPECT_EQ(-EOPNOTSUPP, ret) TH_LOG("%s", nl.errmsg);
	EXPECT_NE(NULL, strstr(nl.errmsg, "ext4 or XFS")) TH_LOG("%s", nl.errmsg);
	EXPECT_EQ(0, run("test ! -e %s/.vss-store", ORIGIN_MNT));
	EXPECT_EQ(0, vss_count_snapshots(&nl));
	vss_nl_teardown(_metadata, &nl, true);
	umount_all(ORIGIN_MNT);
}

TEST_HARNESS_MAIN
