// SPDX-License-Identifier: GPL-2.0
/*
 * Diff storage: the three kinds of store (block device, named file,
 * unnamed file in a directory), how a file store grows, what happens when
 * a store overflows, that a failing store fails only the snapshots that
 * needed it, and the checks on bad requests.
 *
 * Needs scratch disks from the VM harness:
 *   0: origin (64M)   1: storage block device (64M)
 *   2: scratch disk for an ext4 filesystem holding file stores (128M)
 *
 *   scripts/vm-run --disk 64M --disk 64M --disk 128M -- build/selftests/vss_storage_test
 */
#include "vss_nl.h"
#include "vss_util.h"
#include "vss_sys.h"
#include "vss_harness.h"
#include <pthread.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#define FS_DIR		"/tmp/vss_storage_fs"
#define MiB		(1024ULL * 1024)
/* A file store grows by clamp(limit / 16, 16 MiB, 1 GiB); see kmod/store.c. */
#define GROW_STEP_MIN	(16 * MiB)

/* Events seen on the multicast group, in arrival order. */
struct ev_log {
	int n;
	struct {
		int type;
		int err;			/* VSS_A_ERRNO, -1 if absent */
		char reason[128];
		uint64_t used, limit;		/* storage events */
		bool has_used, has_limit;
		bool has_id, id_top;		/* VSS_A_SNAP_ID, top level? */
		uint8_t snap_id[VSS_ID_LEN];
	} e[64];
};

/* Collects events until one of type @until arrives or @timeout_ms pass. */
static void collect_events(struct vss_nl *ev, struct ev_log *log, int until,
			   int timeout_ms)
{
	static char buf[VSS_NL_BUF];
	uint64_t end = now_ms() + timeout_ms;

	while (log->n < 64) {
		struct vss_attrs a;
		const struct nlattr *x;
		int64_t left = (int64_t)(end - now_ms());
		int type;

		if (left < 0)
			left = 0;
		type = vss_next_event(ev, left, &a, buf);
		if (type < 0)
			break;
		log->e[log->n].type = type;
		x = vss_event_attr(&a, VSS_A_ERRNO, NULL);
		log->e[log->n].err = x ? (int)vss_get_u32(x) : -1;
		x = vss_event_attr(&a, VSS_A_REASON, NULL);
		snprintf(log->e[log->n].reason, sizeof(log->e[0].reason), "%s",
			 x ? (const char *)x + NLA_HDRLEN : "");
		if (a.a[VSS_A_STORAGE_USED]) {
			log->e[log->n].used = vss_get_u64(a.a[VSS_A_STORAGE_USED]);
			log->e[log->n].has_used = true;
		}
		if (a.a[VSS_A_STORAGE_LIMIT]) {
			log->e[log->n].limit = vss_get_u64(a.a[VSS_A_STORAGE_LIMIT]);
			log->e[log->n].has_limit = true;
		}
		x = vss_event_attr(&a, VSS_A_SNAP_ID, &log->e[log->n].id_top);
		if (x) {
			log->e[log->n].has_id = true;
			memcpy(log->e[log->n].snap_id, (const char *)x + NLA_HDRLEN,
			       VSS_ID_LEN);
		}
		log->n++;
		if (type == until)
			break;
	}
}

static int find_event(const struct ev_log *log, int type)
{
	int i;

	for (i = 0; i < log->n; i++)
		if (log->e[i].type == type)
			return i;
	return -1;
}

static const char *event_name(int type)
{
	switch (type) {
	case VSS_EVENT_SNAPSHOT_CREATED: return "created";
	case VSS_EVENT_SNAPSHOT_DELETED: return "deleted";
	case VSS_EVENT_SNAPSHOT_FAILED: return "failed";
	case VSS_EVENT_STORAGE_LOW: return "storage-low";
	case VSS_EVENT_STORAGE_OVERFLOW: return "storage-overflow";
	case VSS_EVENT_ORIGIN_REMOVED: return "origin-removed";
	}
	return "?";
}

static void log_events(struct __test_metadata *_metadata,
		       const struct ev_log *log)
{
	char line[512] = "";
	int i;

	for (i = 0; i < log->n; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 "%s%s", i ? ", " : "", event_name(log->e[i].type));
	TH_LOG("events: %s", line);
}

/* errno of an O_DIRECT read of the first 4K of @image, or 0. */
static int image_read_errno(const char *image)
{
	void *buf = aligned_buf(4096);
	int fd = open(image, O_RDONLY | O_DIRECT);
	int err = 0;

	if (fd < 0) {
		free(buf);
		return errno;
	}
	if (pread(fd, buf, 4096, 0) != 4096)
		err = errno ?: EIO;
	close(fd);
	free(buf);
	return err;
}

/* Mounted ext4 on the third disk, for file and directory stores. */
static int make_store_fs(const char *disk)
{
	umount_all(FS_DIR);
	mkdir(FS_DIR, 0755);
	if (run("mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 %s",
		disk))
		return -1;
	return run("mount -t ext4 %s %s", disk, FS_DIR) ? -1 : 0;
}

static uint64_t fs_free_bytes(const char *dir)
{
	struct statvfs sv;

	if (statvfs(dir, &sv))
		return 0;
	return (uint64_t)sv.f_bfree * sv.f_frsize;
}

FIXTURE(store) {
	struct vss_nl nl;
	struct vss_nl ev;
	const char *origin;
	const char *blockstore;
	const char *fsdisk;
	int fd;
	uint64_t sectors;
	uint16_t *expect;
	uint16_t seq;
	void *buf;
	char why[256];
};

FIXTURE_SETUP(store)
{
	self->fd = -1;
	self->ev.fd = -1;
	self->nl.fd = -1;
	self->origin = scratch_disk(0);
	self->blockstore = scratch_disk(1);
	self->fsdisk = scratch_disk(2);
	if (!self->origin || !self->blockstore || !self->fsdisk)
		SKIP(return, "needs 3 scratch disks (run under scripts/vm-run)");
	ASSERT_EQ(0, vss_nl_open(&self->nl)) TH_LOG("is vss.ko loaded?");
	/* Whatever an earlier test killed by a timeout left behind. */
	vss_delete_all(&self->nl);
	ASSERT_EQ(0, vss_nl_open(&self->ev));
	ASSERT_EQ(0, vss_subscribe_events(&self->ev));
	ASSERT_EQ(0, make_store_fs(self->fsdisk))
		TH_LOG("cannot make the store filesystem on %s", self->fsdisk);
	self->buf = aligned_buf(64 * SECTOR);
	self->fd = open(self->origin, O_RDWR | O_DIRECT);
	ASSERT_LE(0, self->fd);
	self->sectors = dev_sectors(self->fd);
	ASSERT_LT(0, self->sectors);
	self->expect = calloc(self->sectors, sizeof(uint16_t));
	ASSERT_NE(NULL, self->expect);
	self->seq = 1;
	ASSERT_EQ(0, fill_stamps(self->fd, self->sectors, 1));
	for (uint64_t s = 0; s < self->sectors; s++)
		self->expect[s] = 1;
}

FIXTURE_TEARDOWN(store)
{
	if (self->fd >= 0)
		close(self->fd);
	free(self->expect);
	free(self->buf);
	vss_nl_teardown(_metadata, &self->nl, false);
	if (self->ev.fd >= 0)
		vss_nl_close(&self->ev);
	umount_all(FS_DIR);
	if (!access("/dev/mapper/vss_st_err", F_OK))
		run_quiet("dmsetup remove vss_st_slow; dmsetup remove vss_st_err");
}

/*
 * Writes stamps of a new sequence to @nr sectors at the start of chunk
 * @chunk, which makes the chunk's first copy-on-write.
 */
static int touch_chunk(FIXTURE_DATA(store) *self, uint32_t chunk_bytes,
		       uint64_t chunk, unsigned int nr)
{
	uint64_t first = chunk * (chunk_bytes / SECTOR);
	uint16_t seq = ++self->seq;
	int ret;

	if (first + nr > self->sectors)
		return -ERANGE;
	ret = write_stamps(self->fd, self->buf, first, nr, seq);
	if (!ret)
		for (unsigned int k = 0; k < nr; k++)
			self->expect[first + k] = seq;
	return ret;
}

static int create_one(FIXTURE_DATA(store) *self, const char *storage,
		      bool has_limit, uint64_t limit, uint32_t chunk,
		      struct vss_created *c)
{
	dev_t dev = rdev_of(self->origin);
	struct vss_create_args a = {
		.devs = &dev, .nr = 1, .storage = storage,
		.has_limit = has_limit, .limit = limit, .chunk = chunk,
		.flags = VSS_CREATE_NO_FREEZE,
	};

	return vss_create_ex(&self->nl, &a, c);
}

/*
 * Copies into a store: 20 distinct chunks, each copied once however often
 * it is written; the image keeps reading the first generation.
 */
static void exercise_store(struct __test_metadata *_metadata,
			   FIXTURE_DATA(store) *self, struct vss_created *c,
			   uint32_t chunk)
{
	struct vss_snap_info info;
	uint64_t i;

	for (i = 0; i < 20; i++)
		ASSERT_EQ(0, touch_chunk(self, chunk, i * 3, 4));
	ASSERT_EQ(0, vss_snap_info(&self->nl, c->snap_id[0], &info));
	EXPECT_EQ(20ULL * chunk, info.storage_used)
		TH_LOG("20 chunks copied, storage says %llu bytes used",
		       (unsigned long long)info.storage_used);
	/* Second writes to the same chunks copy nothing. */
	for (i = 0; i < 20; i++)
		ASSERT_EQ(0, touch_chunk(self, chunk, i * 3, 8));
	ASSERT_EQ(0, vss_snap_info(&self->nl, c->snap_id[0], &info));
	EXPECT_EQ(20ULL * chunk, info.storage_used)
		TH_LOG("rewrites of copied chunks used more storage");
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state);
	EXPECT_EQ(0, verify_image(c->image[0], self->sectors, NULL, 1, self->why))
		TH_LOG("image: %s", self->why);
	EXPECT_EQ(0, verify_stamps(self->fd, self->sectors, self->expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
}

TEST_F(store, block_device_store)
{
	struct vss_snap_info info;
	struct vss_created c;
	uint64_t bytes = 0;
	int fd;

	fd = open(self->blockstore, O_RDONLY);
	ASSERT_LE(0, fd);
	ioctl(fd, BLKGETSIZE64, &bytes);
	close(fd);
	ASSERT_EQ(0, create_one(self, self->blockstore, false, 0, 0, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(VSS_STORAGE_BLOCK, info.storage_kind);
	EXPECT_STREQ(self->blockstore, info.storage_path);
	EXPECT_EQ(bytes, info.storage_limit)
		TH_LOG("the limit of a block store defaults to the device size");
	EXPECT_EQ(info.storage_limit, info.storage_size);
	EXPECT_EQ(0, info.storage_used);
	EXPECT_EQ(VSS_DEFAULT_CHUNK_SIZE, info.chunk_size);
	/* The store holds the device exclusively: it cannot be mounted. */
	fd = open(self->blockstore, O_RDONLY | O_EXCL);
	EXPECT_EQ(-1, fd) TH_LOG("the storage device is not held exclusively");
	if (fd >= 0)
		close(fd);
	exercise_store(_metadata, self, &c, VSS_DEFAULT_CHUNK_SIZE);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	fd = open(self->blockstore, O_RDONLY | O_EXCL);
	EXPECT_LE(0, fd) TH_LOG("storage device still held after delete: %m");
	if (fd >= 0)
		close(fd);

	/* A limit beyond the device is the device's size. */
	ASSERT_EQ(0, create_one(self, self->blockstore, true, 1ULL << 40, 0, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(bytes, info.storage_limit);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
}

TEST_F(store, regular_file_store)
{
	const char *path = FS_DIR "/store.file";
	struct vss_snap_info info;
	struct vss_created c;
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_fallocate(fd, 0, 32 * MiB));
	close(fd);
	ASSERT_EQ(0, create_one(self, path, false, 0, 0, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(VSS_STORAGE_FILE, info.storage_kind);
	EXPECT_STREQ(path, info.storage_path);
	EXPECT_EQ(32 * MiB, info.storage_limit)
		TH_LOG("the limit of a file store defaults to the file size");
	EXPECT_EQ(32 * MiB, info.storage_size);
	exercise_store(_metadata, self, &c, VSS_DEFAULT_CHUNK_SIZE);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	/* A named store is the user's file: it stays, at its size. */
	ASSERT_EQ(0, stat(path, &st)) TH_LOG("store file gone after delete");
	EXPECT_EQ(32 * MiB, (uint64_t)st.st_size);
	/* And nothing holds the filesystem any more. */
	umount_all(FS_DIR);
	EXPECT_FALSE(is_mountpoint(FS_DIR))
		TH_LOG("store filesystem still busy after delete");
}

/*
 * Copies go to a file store with direct I/O: none of them is left in the
 * page cache (Documentation/performance.rst says why).
 */
TEST_F(store, copies_bypass_the_page_cache)
{
	const char *path = FS_DIR "/direct.file";
	struct vss_snap_info info;
	struct vss_created c;
	char res[64];
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_fallocate(fd, 0, 32 * MiB));
	close(fd);
	ASSERT_EQ(0, create_one(self, path, false, 0, 0, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	for (uint64_t k = 0; k < 16; k++)
		ASSERT_EQ(0, touch_chunk(self, VSS_DEFAULT_CHUNK_SIZE, k * 2, 8));
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(16ULL * VSS_DEFAULT_CHUNK_SIZE, info.storage_used);
	ASSERT_EQ(0, run_output(res, sizeof(res),
				"fincore --bytes --noheadings --output RES %s", path));
	/* fincore pads the column: "  0". */
	EXPECT_EQ(0ULL, strtoull(res, NULL, 10))
		TH_LOG("%s bytes of copies in the page cache", res);
	EXPECT_EQ(0, verify_image(c.image[0], self->sectors, NULL, 1, self->why))
		TH_LOG("image: %s", self->why);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
}

TEST_F(store, directory_store)
{
	const char *dir = FS_DIR "/dir";
	struct vss_snap_info info;
	struct vss_created c;
	uint64_t free0, free1, free2 = 0;
	int i, entries;

	ASSERT_EQ(0, mkdir(dir, 0755));
	for (i = 0; i < 3; i++) {
		char name[128];
		int fd;

		snprintf(name, sizeof(name), "%s/file%d", dir, i);
		fd = open(name, O_WRONLY | O_CREAT, 0644);
		ASSERT_LE(0, fd);
		close(fd);
	}
	entries = dir_entries(dir);
	ASSERT_EQ(3, entries);
	sync();
	free0 = fs_free_bytes(FS_DIR);

	ASSERT_EQ(0, create_one(self, dir, true, 32 * MiB, 0, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(VSS_STORAGE_TMPFILE, info.storage_kind);
	EXPECT_STREQ(dir, info.storage_path);
	EXPECT_EQ(32 * MiB, info.storage_limit);
	EXPECT_EQ(GROW_STEP_MIN, info.storage_size)
		TH_LOG("a new file store reserves one growth step");
	EXPECT_EQ(entries, dir_entries(dir))
		TH_LOG("the unnamed store file shows in the directory");
	sync();
	free1 = fs_free_bytes(FS_DIR);
	EXPECT_LE(free1 + info.storage_size, free0 + MiB)
		TH_LOG("the reserved space is not taken from the filesystem (free %llu -> %llu)",
		       (unsigned long long)free0, (unsigned long long)free1);

	exercise_store(_metadata, self, &c, VSS_DEFAULT_CHUNK_SIZE);
	EXPECT_EQ(entries, dir_entries(dir));
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	EXPECT_EQ(entries, dir_entries(dir));
	/* The unnamed file goes with the store: its space comes back. */
	for (i = 0; i < 50; i++) {
		sync();
		free2 = fs_free_bytes(FS_DIR);
		if (free2 + MiB >= free0)
			break;
		usleep(100000);
	}
	EXPECT_GE(free2 + MiB, free0)
		TH_LOG("space of the unnamed store not released (free %llu before, %llu after)",
		       (unsigned long long)free0, (unsigned long long)free2);
}

/*
 * A file store starts at one growth step and grows a step at a time as
 * chunks are copied, up to its limit and never beyond.
 */
TEST_F(store, file_store_grows_in_steps)
{
	const char *path = FS_DIR "/grow.store";
	const uint32_t chunk = 256 * 1024;
	const uint64_t limit = 40 * MiB;
	uint64_t sizes[8], last_size = 0, k, nr = limit / chunk;
	struct vss_snap_info info;
	struct vss_created c;
	unsigned int nr_sizes = 0;
	struct stat st;
	int fd;

	ASSERT_LE(limit / chunk, self->sectors / (chunk / SECTOR));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, create_one(self, path, true, limit, chunk, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(VSS_STORAGE_FILE, info.storage_kind);
	EXPECT_EQ(limit, info.storage_limit);
	EXPECT_EQ(GROW_STEP_MIN, info.storage_size)
		TH_LOG("an empty file store starts with one growth step");
	for (k = 0; k < nr; k++) {
		ASSERT_EQ(0, touch_chunk(self, chunk, k, 1));
		ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
		ASSERT_EQ((k + 1) * chunk, info.storage_used);
		ASSERT_GE(info.storage_size, info.storage_used)
			TH_LOG("chunk %llu: storage size %llu < used %llu",
			       (unsigned long long)k,
			       (unsigned long long)info.storage_size,
			       (unsigned long long)info.storage_used);
		ASSERT_LE(info.storage_size, limit)
			TH_LOG("storage grew beyond its limit: %llu",
			       (unsigned long long)info.storage_size);
		ASSERT_GE(info.storage_size, last_size)
			TH_LOG("storage shrank");
		if (info.storage_size != last_size && nr_sizes < 8) {
			sizes[nr_sizes++] = info.storage_size;
			/* The file itself has that size, reserved. */
			ASSERT_EQ(0, stat(path, &st));
			EXPECT_EQ(info.storage_size, (uint64_t)st.st_size);
			EXPECT_GE((uint64_t)st.st_blocks * 512, info.storage_size)
				TH_LOG("store file is not preallocated");
		}
		last_size = info.storage_size;
	}
	TH_LOG("storage sizes while filling %llu MiB: %llu, %llu, %llu MiB...",
	       (unsigned long long)(limit / MiB),
	       (unsigned long long)(sizes[0] / MiB),
	       nr_sizes > 1 ? (unsigned long long)(sizes[1] / MiB) : 0ULL,
	       nr_sizes > 2 ? (unsigned long long)(sizes[2] / MiB) : 0ULL);
	/* 16 MiB, 32 MiB, then the 40 MiB limit. */
	ASSERT_EQ(3, nr_sizes);
	EXPECT_EQ(16 * MiB, sizes[0]);
	EXPECT_EQ(32 * MiB, sizes[1]);
	EXPECT_EQ(limit, sizes[2]);
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	EXPECT_EQ(0, verify_image(c.image[0], self->sectors, NULL, 1, self->why))
		TH_LOG("image: %s", self->why);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
}

/*
 * More distinct chunks than the store holds: storage-low, then overflow,
 * then the snapshot fails; the origin takes every write; the image
 * answers EIO; delete works.
 */
static void overflow_case(struct __test_metadata *_metadata,
			  FIXTURE_DATA(store) *self, const char *storage,
			  uint64_t limit, uint32_t chunk)
{
	struct vss_snap_info info;
	struct vss_created c;
	struct ev_log log = { 0 };
	uint64_t slots = limit / chunk, k;
	int low, over, failed, i;

	ASSERT_EQ(0, create_one(self, storage, true, limit, chunk, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(limit, info.storage_limit);
	/* Twice as many distinct chunks as there are slots. */
	for (k = 0; k < 2 * slots; k++)
		ASSERT_EQ(0, touch_chunk(self, chunk, k, 2))
			TH_LOG("write to the origin failed at chunk %llu: %m",
			       (unsigned long long)k);
	collect_events(&self->ev, &log, VSS_EVENT_SNAPSHOT_FAILED, 5000);
	log_events(_metadata, &log);

	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_FAILED, info.state);
	EXPECT_EQ(ENOSPC, info.err);
	EXPECT_TRUE(info.has_reason && info.reason[0])
		TH_LOG("a failed snapshot must say why");
	TH_LOG("state %u, errno %u, reason \"%s\", used %llu of %llu",
	       info.state, info.err, info.reason,
	       (unsigned long long)info.storage_used,
	       (unsigned long long)info.storage_limit);
	EXPECT_LE(info.storage_used, limit);

	low = find_event(&log, VSS_EVENT_STORAGE_LOW);
	over = find_event(&log, VSS_EVENT_STORAGE_OVERFLOW);
	failed = find_event(&log, VSS_EVENT_SNAPSHOT_FAILED);
	EXPECT_LE(0, low) TH_LOG("no storage-low event");
	EXPECT_LE(0, over) TH_LOG("no storage-overflow event");
	EXPECT_LE(0, failed) TH_LOG("no snapshot-failed event");
	if (low >= 0 && over >= 0)
		EXPECT_LT(low, over) TH_LOG("storage-low must come before overflow");
	if (low >= 0) {
		EXPECT_TRUE(log.e[low].has_used && log.e[low].has_limit);
		EXPECT_EQ(limit, log.e[low].limit);
		EXPECT_GT(log.e[low].used, limit - limit / 8)
			TH_LOG("storage-low with %llu of %llu used",
			       (unsigned long long)log.e[low].used,
			       (unsigned long long)limit);
	}
	if (over >= 0) {
		EXPECT_TRUE(log.e[over].has_used && log.e[over].has_limit);
		EXPECT_EQ(limit, log.e[over].limit);
	}
	if (failed >= 0) {
		EXPECT_EQ(ENOSPC, log.e[failed].err);
		EXPECT_NE(0, log.e[failed].reason[0]);
		EXPECT_TRUE(log.e[failed].has_id) TH_LOG("failed event names no snapshot");
		EXPECT_EQ(0, memcmp(log.e[failed].snap_id, c.snap_id[0], VSS_ID_LEN));
	}
	/* No storage event repeats for the same episode. */
	for (i = 0; i < log.n; i++)
		if (i != over)
			EXPECT_NE(VSS_EVENT_STORAGE_OVERFLOW, log.e[i].type);

	EXPECT_EQ(EIO, image_read_errno(c.image[0]));
	/* The origin took every write, before and after the failure. */
	for (k = 2 * slots; k < 2 * slots + 8; k++)
		ASSERT_EQ(0, touch_chunk(self, chunk, k, 1));
	EXPECT_EQ(0, verify_stamps(self->fd, self->sectors, self->expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
	EXPECT_EQ(0, vss_delete_snap(&self->nl, c.snap_id[0], false))
		TH_LOG("delete: %s", self->nl.errmsg);
	EXPECT_EQ(0, vss_count_snapshots(&self->nl));
}

TEST_F(store, overflow_directory_store)
{
	ASSERT_EQ(0, mkdir(FS_DIR "/small", 0755));
	overflow_case(_metadata, self, FS_DIR "/small", 2 * MiB, 64 * 1024);
}

TEST_F(store, overflow_block_store)
{
	overflow_case(_metadata, self, self->blockstore, 1 * MiB, 64 * 1024);
}

/*
 * The filesystem under a directory store fills up before the store
 * reaches its limit: the growth fails, which is an overflow like any
 * other.
 */
TEST_F(store, filesystem_full_before_the_limit)
{
	const char *dir = FS_DIR "/full";
	const uint32_t chunk = 64 * 1024;
	struct vss_snap_info info;
	struct vss_created c;
	struct ev_log log = { 0 };
	uint64_t avail, k;
	int fd;

	ASSERT_EQ(0, mkdir(dir, 0755));
	/* Leave about 24 MiB: one 16 MiB growth step fits, two do not. */
	sync();
	avail = fs_free_bytes(FS_DIR);
	ASSERT_LT(40 * MiB, avail);
	fd = open(FS_DIR "/filler", O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_fallocate(fd, 0, avail - 24 * MiB));
	close(fd);
	sync();
	TH_LOG("free space left: %llu MiB",
	       (unsigned long long)fs_free_bytes(FS_DIR) / MiB);

	ASSERT_EQ(0, create_one(self, dir, true, 256 * MiB, chunk, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(256 * MiB, info.storage_limit);
	EXPECT_EQ(GROW_STEP_MIN, info.storage_size);
	/* 48 MiB of distinct chunks. */
	for (k = 0; k < 48 * MiB / chunk; k++)
		ASSERT_EQ(0, touch_chunk(self, chunk, k, 1));
	collect_events(&self->ev, &log, VSS_EVENT_SNAPSHOT_FAILED, 5000);
	log_events(_metadata, &log);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_FAILED, info.state);
	EXPECT_EQ(ENOSPC, info.err);
	TH_LOG("state %u, errno %u, reason \"%s\", used %llu KiB, size %llu KiB",
	       info.state, info.err, info.reason,
	       (unsigned long long)info.storage_used >> 10,
	       (unsigned long long)info.storage_size >> 10);
	EXPECT_LE(info.storage_used, info.storage_size);
	EXPECT_LT(info.storage_size, 48 * MiB);
	EXPECT_LE(0, find_event(&log, VSS_EVENT_STORAGE_OVERFLOW))
		TH_LOG("no storage-overflow event");
	EXPECT_LE(0, find_event(&log, VSS_EVENT_SNAPSHOT_FAILED))
		TH_LOG("no snapshot-failed event");
	EXPECT_EQ(EIO, image_read_errno(c.image[0]));
	EXPECT_EQ(0, verify_stamps(self->fd, self->sectors, self->expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
	EXPECT_EQ(0, vss_delete_snap(&self->nl, c.snap_id[0], false));
}

/*
 * Two snapshots of one origin in two sets: the older one on a roomy block
 * store, the newer one on a tiny directory store. When the newer one's
 * store overflows, only it fails (kmod/cow.c: the copy is retried for the
 * next healthy snapshot); the older one keeps reading its own instant,
 * also through the chunks the failed one saved before it failed, and
 * after the failed one is deleted.
 */
TEST_F(store, only_the_overflowing_snapshot_fails)
{
	const uint32_t chunk = 64 * 1024;
	const uint64_t small_limit = 1 * MiB;	/* 16 chunks */
	uint16_t *expect_new;
	struct vss_snap_info info;
	struct vss_created older, newer;
	struct ev_log log = { 0 };
	uint64_t k;
	int failed;

	ASSERT_EQ(0, mkdir(FS_DIR "/tiny", 0755));
	ASSERT_EQ(0, create_one(self, self->blockstore, false, 0, chunk, &older))
		TH_LOG("create older: %s", self->nl.errmsg);
	/* Chunks 0..9 change between the two snapshots. */
	for (k = 0; k < 10; k++)
		ASSERT_EQ(0, touch_chunk(self, chunk, k, 8));
	expect_new = malloc(self->sectors * sizeof(uint16_t));
	ASSERT_NE(NULL, expect_new);
	memcpy(expect_new, self->expect, self->sectors * sizeof(uint16_t));
	ASSERT_EQ(0, create_one(self, FS_DIR "/tiny", true, small_limit, chunk,
				&newer))
		TH_LOG("create newer: %s", self->nl.errmsg);
	EXPECT_EQ(0, verify_image(newer.image[0], self->sectors, expect_new, 0,
				  self->why)) TH_LOG("newer image: %s", self->why);

	/* 40 distinct chunks: the newer store holds 16. */
	for (k = 0; k < 40; k++)
		ASSERT_EQ(0, touch_chunk(self, chunk, k, 4));
	collect_events(&self->ev, &log, VSS_EVENT_SNAPSHOT_FAILED, 5000);
	failed = find_event(&log, VSS_EVENT_SNAPSHOT_FAILED);
	ASSERT_LE(0, failed) TH_LOG("no snapshot-failed event");
	EXPECT_EQ(0, memcmp(log.e[failed].snap_id, newer.snap_id[0], VSS_ID_LEN))
		TH_LOG("the failed event names the wrong snapshot");

	ASSERT_EQ(0, vss_snap_info(&self->nl, newer.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_FAILED, info.state);
	EXPECT_EQ(ENOSPC, info.err);
	ASSERT_EQ(0, vss_snap_info(&self->nl, older.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state)
		TH_LOG("the older snapshot failed too: %s", info.reason);
	TH_LOG("older store used %llu bytes after the newer one failed",
	       (unsigned long long)info.storage_used);
	EXPECT_EQ(EIO, image_read_errno(newer.image[0]));
	EXPECT_EQ(0, verify_image(older.image[0], self->sectors, NULL, 1,
				  self->why)) TH_LOG("older image: %s", self->why);

	/* It keeps working: more first writes, all saved for the older one. */
	for (k = 0; k < 64; k++)
		ASSERT_EQ(0, touch_chunk(self, chunk, k * 2, 2));
	ASSERT_EQ(0, vss_snap_info(&self->nl, older.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	EXPECT_EQ(0, verify_image(older.image[0], self->sectors, NULL, 1,
				  self->why)) TH_LOG("older image: %s", self->why);

	/* Deleting the failed one changes nothing for the older one. */
	EXPECT_EQ(0, vss_delete_snap(&self->nl, newer.snap_id[0], false));
	EXPECT_EQ(0, verify_image(older.image[0], self->sectors, NULL, 1,
				  self->why))
		TH_LOG("older image after deleting the newer: %s", self->why);
	for (k = 0; k < 16; k++)
		ASSERT_EQ(0, touch_chunk(self, chunk, 200 + k, 1));
	EXPECT_EQ(0, verify_image(older.image[0], self->sectors, NULL, 1,
				  self->why)) TH_LOG("older image: %s", self->why);
	EXPECT_EQ(0, verify_stamps(self->fd, self->sectors, self->expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
	EXPECT_EQ(0, vss_delete_snap(&self->nl, older.snap_id[0], false));
	free(expect_new);
}

/*
 * One large write (in bios of up to 16 chunks, copied as runs at the same
 * time) overflows the newer snapshot's store part way through a run: the
 * newer snapshot fails, keeping the chunks it saved before, and the older
 * one gets every chunk the newer one could not take.
 */
TEST_F(store, a_large_write_overflows_part_way)
{
	const uint32_t chunk = 64 * 1024;
	const uint64_t small_limit = 1 * MiB + 5 * chunk;	/* 21 chunks */
	const unsigned int nr = 40 * (chunk / SECTOR);
	struct vss_created older, newer;
	struct vss_snap_info info;
	uint16_t seq;
	void *big;

	ASSERT_EQ(0, mkdir(FS_DIR "/tiny", 0755));
	ASSERT_EQ(0, create_one(self, self->blockstore, false, 0, chunk, &older))
		TH_LOG("create older: %s", self->nl.errmsg);
	/* Every other chunk of 0..39 changes between the two snapshots. */
	for (uint64_t k = 0; k < 40; k += 2)
		ASSERT_EQ(0, touch_chunk(self, chunk, k, 8));
	ASSERT_EQ(0, create_one(self, FS_DIR "/tiny", true, small_limit, chunk,
				&newer))
		TH_LOG("create newer: %s", self->nl.errmsg);

	big = aligned_buf((size_t)nr * SECTOR);
	ASSERT_NE(NULL, big);
	seq = ++self->seq;
	ASSERT_EQ(0, write_stamps(self->fd, big, 0, nr, seq))
		TH_LOG("the origin refused the write: %m");
	for (unsigned int k = 0; k < nr; k++)
		self->expect[k] = seq;
	free(big);

	ASSERT_EQ(0, vss_snap_info(&self->nl, newer.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_FAILED, info.state);
	EXPECT_EQ(ENOSPC, info.err);
	/* The run that failed kept the slots it had before the failure. */
	EXPECT_EQ(small_limit, info.storage_used);
	EXPECT_EQ(EIO, image_read_errno(newer.image[0]));
	ASSERT_EQ(0, vss_snap_info(&self->nl, older.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_ACTIVE, info.state)
		TH_LOG("the older snapshot failed too: %s", info.reason);
	/*
	 * Its own 20 chunks, and those of the 20 others that the newer one
	 * did not save before it failed (the older reads those through it).
	 */
	EXPECT_LE(20 * chunk, info.storage_used);
	EXPECT_GE(40 * chunk, info.storage_used);
	TH_LOG("older store used %llu bytes", (unsigned long long)info.storage_used);
	EXPECT_EQ(0, verify_image(older.image[0], self->sectors, NULL, 1,
				  self->why)) TH_LOG("older image: %s", self->why);
	EXPECT_EQ(0, verify_stamps(self->fd, self->sectors, self->expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
	EXPECT_EQ(0, vss_delete_snap(&self->nl, newer.snap_id[0], false));
	EXPECT_EQ(0, verify_image(older.image[0], self->sectors, NULL, 1,
				  self->why))
		TH_LOG("older image after deleting the newer: %s", self->why);
	EXPECT_EQ(0, vss_delete_snap(&self->nl, older.snap_id[0], false));
}

/*
 * uapi/linux/vss.h: an event carries VSS_A_SNAP_ID, VSS_A_SET_ID and
 * VSS_A_ORIGIN "where they apply", as attributes of the event message
 * (libvss reads them there), next to VSS_A_EVENT.
 */
TEST_F(store, events_name_their_snapshot)
{
	static char buf[VSS_NL_BUF];
	dev_t dev = rdev_of(self->origin);
	struct vss_created c;
	struct vss_attrs a, o;
	int type;

	ASSERT_EQ(0, create_one(self, self->blockstore, false, 0, 0, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	for (int want = VSS_EVENT_SNAPSHOT_CREATED;
	     want <= VSS_EVENT_SNAPSHOT_DELETED; want++) {
		/* A first snapshot also starts tracking: not this test's. */
		do {
			type = vss_next_event(&self->ev, 5000, &a, buf);
		} while (type == VSS_EVENT_CBT_NEW_GENERATION);
		ASSERT_EQ(want, type) TH_LOG("want a %s event", event_name(want));
		EXPECT_NE(NULL, a.a[VSS_A_SNAP_ID])
			TH_LOG("%s event: no VSS_A_SNAP_ID at the top level%s",
			       event_name(want), a.a[VSS_A_SNAPSHOT] ?
			       " (only inside a VSS_A_SNAPSHOT nest)" : "");
		EXPECT_NE(NULL, a.a[VSS_A_SET_ID])
			TH_LOG("%s event: no VSS_A_SET_ID at the top level",
			       event_name(want));
		EXPECT_NE(NULL, a.a[VSS_A_ORIGIN])
			TH_LOG("%s event: no VSS_A_ORIGIN at the top level",
			       event_name(want));
		if (a.a[VSS_A_SNAP_ID])
			EXPECT_EQ(0, memcmp((const char *)a.a[VSS_A_SNAP_ID] + NLA_HDRLEN,
					    c.snap_id[0], VSS_ID_LEN));
		if (a.a[VSS_A_SET_ID])
			EXPECT_EQ(0, memcmp((const char *)a.a[VSS_A_SET_ID] + NLA_HDRLEN,
					    c.set_id, VSS_ID_LEN));
		if (a.a[VSS_A_ORIGIN]) {
			vss_parse_nested(a.a[VSS_A_ORIGIN], &o);
			ASSERT_NE(NULL, o.a[VSS_A_DEV_MAJOR]);
			ASSERT_NE(NULL, o.a[VSS_A_DEV_MINOR]);
			EXPECT_EQ(major(dev), vss_get_u32(o.a[VSS_A_DEV_MAJOR]));
			EXPECT_EQ(minor(dev), vss_get_u32(o.a[VSS_A_DEV_MINOR]));
		}
	}
}

struct one_write {
	FIXTURE_DATA(store) *self;
	uint64_t chunk;
	int ret;
	volatile bool done;
};

/* A first write to chunk 5 (64 KiB chunks), from a thread of its own. */
static void *first_write_thread(void *arg)
{
	struct one_write *w = arg;

	w->ret = touch_chunk(w->self, 64 * 1024, w->chunk ?: 5, 8);
	w->done = true;
	return NULL;
}

/*
 * First writes while the filesystem holding a directory store is frozen.
 * With @fill, the store's first growth step is full first, so that the
 * copy needs the store to grow; otherwise it writes into reserved space.
 * Either way the write must complete at once, the snapshot fail with a
 * reason that names the frozen filesystem, and its event go out.
 */
static void frozen_store_case(struct __test_metadata *_metadata,
			      FIXTURE_DATA(store) *self, const char *fstype,
			      const char *mkfs, bool fill)
{
	static char buf[VSS_NL_BUF];
	const uint32_t chunk = 64 * 1024;
	struct one_write w = { .self = self };
	struct vss_snap_info info;
	const struct nlattr *x;
	struct vss_created c;
	struct vss_attrs a;
	uint64_t k, end;
	pthread_t t;
	int type;

	umount_all(FS_DIR);
	ASSERT_EQ(0, run("%s %s && mount -t %s %s %s", mkfs, self->fsdisk,
			 fstype, self->fsdisk, FS_DIR));
	ASSERT_EQ(0, create_one(self, FS_DIR, true, 64 * MiB, chunk, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	if (fill)
		for (k = 0; k < GROW_STEP_MIN / chunk; k++)
			ASSERT_EQ(0, touch_chunk(self, chunk, 100 + k, 1));
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	ASSERT_EQ(VSS_STATE_ACTIVE, info.state) TH_LOG("%s", info.reason);
	EXPECT_EQ(fill ? GROW_STEP_MIN : 0, info.storage_used);
	EXPECT_EQ(GROW_STEP_MIN, info.storage_size);

	ASSERT_EQ(0, run("fsfreeze -f %s", FS_DIR));
	w.chunk = 7;
	ASSERT_EQ(0, pthread_create(&t, NULL, first_write_thread, &w));
	end = now_ms() + 20000;
	while (!w.done && now_ms() < end)
		usleep(20 * 1000);
	EXPECT_TRUE(w.done) TH_LOG("%s: the first write waits for the thaw", fstype);
	/* Thawed before anything can fail, so that nothing stays stuck. */
	EXPECT_EQ(0, run("fsfreeze -u %s", FS_DIR));
	pthread_join(t, NULL);
	EXPECT_EQ(0, w.ret) TH_LOG("the origin's write failed");

	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(VSS_STATE_FAILED, info.state)
		TH_LOG("%s: a copy into the frozen store went through", fstype);
	EXPECT_EQ(EBUSY, info.err);
	EXPECT_STREQ("the diff storage's filesystem is frozen", info.reason);
	do {
		type = vss_next_event(&self->ev, 3000, &a, buf);
		/* A frozen store is not a full one. */
		EXPECT_NE(VSS_EVENT_STORAGE_OVERFLOW, type);
	} while (type >= 0 && type != VSS_EVENT_SNAPSHOT_FAILED);
	ASSERT_EQ(VSS_EVENT_SNAPSHOT_FAILED, type) TH_LOG("no failed event");
	x = vss_event_attr(&a, VSS_A_REASON, NULL);
	ASSERT_NE(NULL, x);
	EXPECT_NE(NULL, strstr((const char *)NLA_DATA(x), "frozen"));
	EXPECT_EQ(0, verify_stamps(self->fd, self->sectors, self->expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	umount_all(FS_DIR);
}

TEST_F(store, frozen_ext4_store_fails_the_snapshot)
{
	frozen_store_case(_metadata, self, "ext4", "mkfs.ext4 -q -F", false);
	frozen_store_case(_metadata, self, "ext4", "mkfs.ext4 -q -F", true);
}

TEST_F(store, frozen_xfs_store_fails_the_snapshot)
{
	/* mkfs.xfs refuses filesystems under 300M unless it runs for fstests. */
	const char *mkfs = "TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f";

	frozen_store_case(_metadata, self, "xfs", mkfs, false);
	frozen_store_case(_metadata, self, "xfs", mkfs, true);
}

/*
 * A snapshot fails while it is being deleted: its store (dm-delay over
 * dm-error) fails a copy's write only after the delete has removed the
 * image and waits for the copy. The failure's event, built by the copy
 * worker while the image is gone, must not show the image any more (it
 * once followed the image pointer, whose object goes with the disk), and
 * the origin's write completes.
 */
TEST_F(store, snapshot_fails_while_it_is_deleted)
{
	static char buf[VSS_NL_BUF];
	struct one_write w = { .self = self };
	struct vss_attrs a, snap;
	struct vss_created c;
	bool deleted = false;
	pthread_t t;
	int type;

	/* No udev in the VM: dmsetup makes the nodes. */
	ASSERT_EQ(0, run("dmsetup create vss_st_err --table '0 131072 error' && "
			 "dmsetup mknodes vss_st_err && "
			 "dmsetup create vss_st_slow --table '0 131072 delay /dev/mapper/vss_st_err 0 400' && "
			 "dmsetup mknodes vss_st_slow"));
	ASSERT_EQ(0, create_one(self, "/dev/mapper/vss_st_slow", false, 0,
				64 * 1024, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(0, pthread_create(&t, NULL, first_write_thread, &w));
	usleep(100 * 1000);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, true))
		TH_LOG("delete: %s", self->nl.errmsg);
	pthread_join(t, NULL);
	EXPECT_EQ(0, w.ret) TH_LOG("the origin's write failed");
	for (;;) {
		type = vss_next_event(&self->ev, 3000, &a, buf);
		if (type < 0 || type == VSS_EVENT_SNAPSHOT_FAILED)
			break;
		if (type == VSS_EVENT_SNAPSHOT_DELETED)
			deleted = true;
	}
	ASSERT_EQ(VSS_EVENT_SNAPSHOT_FAILED, type) TH_LOG("no failed event");
	EXPECT_TRUE(deleted) TH_LOG("the copy failed before the delete began");
	vss_parse_nested(a.a[VSS_A_SNAPSHOT], &snap);
	EXPECT_EQ(NULL, snap.a[VSS_A_IMAGE])
		TH_LOG("the event of a deleted snapshot shows its image");
	EXPECT_NE(NULL, snap.a[VSS_A_SET_ID]);
	EXPECT_EQ(0, verify_stamps(self->fd, self->sectors, self->expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
}

/*
 * A storage path of almost VSS_PATH_MAX bytes: its snapshot's events, its
 * GET_SNAPSHOT reply and its dump entry are larger than NLMSG_GOODSIZE,
 * and each must still come whole (the events used to be dropped without
 * a word, the reply to fail and the dump to end before the snapshot).
 */
TEST_F(store, events_with_a_long_storage_path)
{
	static char buf[VSS_NL_BUF], path[4096];
	const char *dir = FS_DIR;
	struct vss_snap_info info;
	struct vss_attrs a, snap;
	struct vss_created c;
	size_t len;
	int type;

	len = snprintf(path, sizeof(path), "%s", dir);
	while (len + 1 + 250 < 3900) {
		path[len++] = '/';
		memset(path + len, 'd', 250);
		len += 250;
		path[len] = 0;
		ASSERT_EQ(0, mkdir(path, 0755)) TH_LOG("mkdir: %m");
	}
	TH_LOG("storage path of %zu bytes", len);
	ASSERT_EQ(0, create_one(self, path, true, 16 * MiB, 0, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	do {
		type = vss_next_event(&self->ev, 5000, &a, buf);
	} while (type == VSS_EVENT_CBT_NEW_GENERATION);
	ASSERT_EQ(VSS_EVENT_SNAPSHOT_CREATED, type)
		TH_LOG("no created event (%d)", type);
	vss_parse_nested(a.a[VSS_A_SNAPSHOT], &snap);
	ASSERT_NE(NULL, snap.a[VSS_A_STORAGE_PATH]);
	EXPECT_STREQ(path, (const char *)NLA_DATA(snap.a[VSS_A_STORAGE_PATH]));

	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info))
		TH_LOG("GET_SNAPSHOT: %s", self->nl.errmsg);
	EXPECT_EQ(VSS_STORAGE_TMPFILE, info.storage_kind);
	EXPECT_EQ(1, vss_count_snapshots(&self->nl)) TH_LOG("the dump misses it");

	ASSERT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	type = vss_next_event(&self->ev, 5000, &a, buf);
	ASSERT_EQ(VSS_EVENT_SNAPSHOT_DELETED, type)
		TH_LOG("no deleted event (%d)", type);
	EXPECT_EQ(0, memcmp(NLA_DATA(a.a[VSS_A_SNAP_ID]), c.snap_id[0],
			    VSS_ID_LEN));
}

/*
 * Bad requests: each fails with the documented error and leaves nothing
 * behind (no snapshot, no tracked origin, no held storage).
 */
FIXTURE(bad) {
	struct vss_nl nl;
	const char *origin;
	const char *blockstore;
	const char *other;
	dev_t origin_dev;
};

FIXTURE_SETUP(bad)
{
	self->nl.fd = -1;
	self->origin = scratch_disk(0);
	self->blockstore = scratch_disk(1);
	self->other = scratch_disk(2);
	if (!self->origin || !self->blockstore || !self->other)
		SKIP(return, "needs 3 scratch disks (run under scripts/vm-run)");
	ASSERT_EQ(0, vss_nl_open(&self->nl)) TH_LOG("is vss.ko loaded?");
	vss_delete_all(&self->nl);
	self->origin_dev = rdev_of(self->origin);
	ASSERT_NE(0, self->origin_dev);
	umount_all(FS_DIR);
	mkdir(FS_DIR, 0755);
}

FIXTURE_TEARDOWN(bad)
{
	vss_nl_teardown(_metadata, &self->nl, false);
	umount_all(FS_DIR);
	rmdir(FS_DIR);
}

/* A create of the origin alone, with everything else as given. */
static int bad_create(FIXTURE_DATA(bad) *self, const char *storage,
		      bool has_limit, uint64_t limit, uint32_t chunk)
{
	struct vss_create_args a = {
		.devs = &self->origin_dev, .nr = 1, .storage = storage,
		.has_limit = has_limit, .limit = limit, .chunk = chunk,
		.flags = VSS_CREATE_NO_FREEZE,
	};

	return vss_create_ex(&self->nl, &a, NULL);
}

/*
 * Nothing is left: no snapshot; the origin is not tracked any more (a
 * tracked origin would refuse another chunk size); the storage device is
 * not held.
 */
static void assert_clean(struct __test_metadata *_metadata,
			 FIXTURE_DATA(bad) *self)
{
	int fd;

	EXPECT_EQ(0, vss_count_snapshots(&self->nl))
		TH_LOG("a failed create left a snapshot behind");
	fd = open(self->blockstore, O_RDONLY | O_EXCL);
	EXPECT_LE(0, fd) TH_LOG("storage device still held: %m");
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(0, bad_create(self, self->blockstore, false, 0, 8192))
		TH_LOG("origin still tracked? create with an 8K chunk: %s",
		       self->nl.errmsg);
	EXPECT_EQ(1, vss_count_snapshots(&self->nl));
	EXPECT_EQ(1, vss_delete_all(&self->nl));
}

static void expect_error(struct __test_metadata *_metadata,
			 FIXTURE_DATA(bad) *self, int ret, int want,
			 const char *what)
{
	EXPECT_EQ(-want, ret)
		TH_LOG("%s: want %s, got %s (\"%s\")", what, strerror(want),
		       strerror(-ret), self->nl.errmsg);
	EXPECT_NE(0, self->nl.errmsg[0]) TH_LOG("%s: no extack message", what);
	if (ret == 0)
		vss_delete_all(&self->nl);
}

TEST_F(bad, storage_is_the_origin)
{
	expect_error(_metadata, self,
		     bad_create(self, self->origin, false, 0, 0), EXDEV,
		     "storage = origin");
	assert_clean(_metadata, self);
}

/*
 * Storage on a device that another set snapshots: the device itself is
 * refused (every chunk saved there would be a write to copy); so is a
 * directory in its filesystem, since the snapshot that exists would read
 * a new same-volume store's chunks as data (it was taken without the
 * store's place masked out). The error names the way out.
 */
TEST_F(bad, storage_on_a_snapshotted_device)
{
	dev_t other = rdev_of(self->other);
	struct vss_create_args a = {
		.devs = &other, .nr = 1, .storage = self->origin,
		.flags = VSS_CREATE_NO_FREEZE,
	};
	struct vss_created c;

	int ret;

	ASSERT_EQ(0, run("mkfs.ext4 -q -F %s", self->origin));
	ASSERT_EQ(0, bad_create(self, self->blockstore, false, 0, 0))
		TH_LOG("%s", self->nl.errmsg);
	ret = vss_create_ex(&self->nl, &a, &c);
	if (!ret)
		vss_delete_set(&self->nl, c.set_id, true);
	EXPECT_EQ(-EXDEV, ret)
		TH_LOG("storage on a snapshotted device: %s (\"%s\")",
		       strerror(-ret), self->nl.errmsg);

	/* Mounted only now: a mounted device is refused as busy instead. */
	ASSERT_EQ(0, run("mount -t ext4 %s %s", self->origin, FS_DIR));
	a.storage = FS_DIR;
	a.has_limit = true;
	a.limit = 4 * MiB;
	ret = vss_create_ex(&self->nl, &a, &c);
	if (!ret)
		vss_delete_set(&self->nl, c.set_id, true);
	EXPECT_EQ(-EBUSY, ret)
		TH_LOG("directory on a snapshotted device: %s (\"%s\")",
		       strerror(-ret), self->nl.errmsg);
	EXPECT_NE(NULL, strstr(self->nl.errmsg, "use the storage they use"))
		TH_LOG("\"%s\"", self->nl.errmsg);
	EXPECT_EQ(0, run_quiet("test -z \"$(ls -A %s/.vss-store 2>/dev/null)\"",
			       FS_DIR))
		TH_LOG("a refused create left a store file behind");

	EXPECT_EQ(1, vss_count_snapshots(&self->nl));
	EXPECT_EQ(1, vss_delete_all(&self->nl));
	umount_all(FS_DIR);
	assert_clean(_metadata, self);
}

/*
 * Storage in a filesystem that lives on the origin. A named file there is
 * refused: the filesystem could move, share or rewrite its blocks under
 * the store. A directory there gets a same-volume store (pinned files in
 * DIR/.vss-store/, see vss_samevol_test), which goes with the set.
 */
TEST_F(bad, storage_file_on_the_origin)
{
	const char *path = FS_DIR "/store";
	struct vss_create_args a = {
		.devs = &self->origin_dev, .nr = 1, .storage = FS_DIR,
		.has_limit = true, .limit = 4 * MiB,
		.flags = VSS_CREATE_NO_FREEZE,
	};
	struct vss_snap_info info;
	struct vss_created c;
	int fd, ret;

	ASSERT_EQ(0, run("mkfs.ext4 -q -F %s", self->origin));
	ASSERT_EQ(0, run("mount -t ext4 %s %s", self->origin, FS_DIR));
	fd = open(path, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_fallocate(fd, 0, 4 * MiB));
	close(fd);
	expect_error(_metadata, self, bad_create(self, path, false, 0, 0),
		     EXDEV, "file store on the origin");

	ret = vss_create_ex(&self->nl, &a, &c);
	ASSERT_EQ(0, ret) TH_LOG("directory store on the origin: %s (\"%s\")",
				 strerror(-ret), self->nl.errmsg);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(VSS_STORAGE_SAMEVOL, info.storage_kind);
	/* Each extent of its file holds whole chunks only. */
	EXPECT_GE(4 * MiB, info.storage_limit);
	EXPECT_LE(3 * MiB, info.storage_limit);
	EXPECT_EQ(0, run("test -n \"$(ls -A %s/.vss-store)\"", FS_DIR));
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	EXPECT_EQ(0, run("test -z \"$(ls -A %s/.vss-store)\"", FS_DIR))
		TH_LOG("the store's file outlived its set");

	umount_all(FS_DIR);
	EXPECT_FALSE(is_mountpoint(FS_DIR));
	assert_clean(_metadata, self);
}

TEST_F(bad, storage_path_missing)
{
	expect_error(_metadata, self,
		     bad_create(self, "/tmp/vss-no-such-storage", true, 4 * MiB, 0),
		     ENOENT, "missing path");
	assert_clean(_metadata, self);
}

TEST_F(bad, storage_path_relative)
{
	int ret = bad_create(self, "tmp", true, 4 * MiB, 0);

	expect_error(_metadata, self, ret, EINVAL, "relative path");
	EXPECT_NE(0, self->nl.err_offset) TH_LOG("no attribute blamed");
	assert_clean(_metadata, self);
}

TEST_F(bad, storage_is_a_char_device)
{
	expect_error(_metadata, self,
		     bad_create(self, "/dev/null", true, 4 * MiB, 0), EINVAL,
		     "/dev/null as storage");
	expect_error(_metadata, self,
		     bad_create(self, "/dev/zero", false, 0, 0), EINVAL,
		     "/dev/zero as storage");
	assert_clean(_metadata, self);
}

TEST_F(bad, directory_needs_a_limit)
{
	uint64_t free0 = fs_free_bytes("/tmp");

	expect_error(_metadata, self, bad_create(self, "/tmp", true, 0, 0),
		     EINVAL, "directory with limit 0");
	expect_error(_metadata, self, bad_create(self, "/tmp", false, 0, 0),
		     EINVAL, "directory without a limit");
	EXPECT_GE(fs_free_bytes("/tmp") + MiB, free0);
	assert_clean(_metadata, self);
}

/* A limit is rounded down to whole chunks. */
TEST_F(bad, limit_rounds_down_to_chunks)
{
	struct vss_create_args a = {
		.devs = &self->origin_dev, .nr = 1, .storage = "/tmp",
		.has_limit = true, .limit = 1 * MiB + 1000, .chunk = 64 * 1024,
		.flags = VSS_CREATE_NO_FREEZE,
	};
	struct vss_snap_info info;
	struct vss_created c;

	ASSERT_EQ(0, vss_create_ex(&self->nl, &a, &c)) TH_LOG("%s", self->nl.errmsg);
	ASSERT_EQ(0, vss_snap_info(&self->nl, c.snap_id[0], &info));
	EXPECT_EQ(1 * MiB, info.storage_limit);
	EXPECT_EQ(1 * MiB, info.storage_size);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	assert_clean(_metadata, self);
}

TEST_F(bad, empty_file_needs_a_limit)
{
	const char *path = "/tmp/vss-empty-store";
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	ASSERT_LE(0, fd);
	close(fd);
	expect_error(_metadata, self, bad_create(self, path, false, 0, 0),
		     EINVAL, "empty file without a limit");
	unlink(path);
	assert_clean(_metadata, self);
}

TEST_F(bad, chunk_size_not_a_power_of_two)
{
	int ret = bad_create(self, self->blockstore, false, 0, 12288);

	expect_error(_metadata, self, ret, EINVAL, "chunk 12288");
	EXPECT_NE(0, self->nl.err_offset) TH_LOG("no attribute blamed");
	expect_error(_metadata, self,
		     bad_create(self, self->blockstore, false, 0, 65536 + 4096),
		     EINVAL, "chunk 69632");
	assert_clean(_metadata, self);
}

TEST_F(bad, storage_smaller_than_a_chunk)
{
	const char *path = "/tmp/vss-small-store";
	int fd;

	/* A directory store with a limit below one chunk. */
	expect_error(_metadata, self,
		     bad_create(self, "/tmp", true, 32 * 1024, 64 * 1024),
		     ENOSPC, "32K directory store, 64K chunks");
	/* A block store limited below one chunk. */
	expect_error(_metadata, self,
		     bad_create(self, self->blockstore, true, 4096, 8192),
		     ENOSPC, "4K block store, 8K chunks");
	/* A file smaller than one chunk. */
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_fallocate(fd, 0, 16 * 1024));
	close(fd);
	expect_error(_metadata, self, bad_create(self, path, false, 0, 0),
		     ENOSPC, "16K file store, 64K chunks");
	unlink(path);
	assert_clean(_metadata, self);
}

TEST_F(bad, device_listed_twice)
{
	dev_t devs[2] = { self->origin_dev, self->origin_dev };
	struct vss_create_args a = {
		.devs = devs, .nr = 2, .storage = self->blockstore,
		.flags = VSS_CREATE_NO_FREEZE,
	};

	expect_error(_metadata, self, vss_create_ex(&self->nl, &a, NULL),
		     EINVAL, "device listed twice");
	EXPECT_NE(0, self->nl.err_offset) TH_LOG("no attribute blamed");
	assert_clean(_metadata, self);
}

/*
 * One block device serving two sets (of two origins) is one store: one
 * slot allocator, whose chunks never overwrite each other's. It cannot
 * serve another chunk size at the same time.
 */
TEST_F(bad, shared_block_store)
{
	const uint64_t span = 16384;	/* check the first 8 MiB */
	const char *names[2] = { self->origin, self->other };
	dev_t devs[2] = { self->origin_dev, rdev_of(self->other) };
	struct vss_created c[2];
	struct vss_snap_info info[2];
	uint16_t *expect[2];
	void *buf = aligned_buf(64 * SECTOR);
	uint64_t state = 99;
	char why[256];
	int fd[2], i, k;

	for (i = 0; i < 2; i++) {
		fd[i] = open(names[i], O_RDWR | O_DIRECT);
		ASSERT_LE(0, fd[i]);
		ASSERT_EQ(0, fill_stamps(fd[i], span, 1));
		expect[i] = malloc(span * sizeof(uint16_t));
		for (uint64_t s = 0; s < span; s++)
			expect[i][s] = 1;
	}
	for (i = 0; i < 2; i++) {
		struct vss_create_args a = {
			.devs = &devs[i], .nr = 1, .storage = self->blockstore,
			.has_limit = true, .limit = 32 * MiB, .chunk = 64 * 1024,
			.flags = VSS_CREATE_NO_FREEZE,
		};

		if (i == 1) {
			/* The store exists with 64K chunks: not with 4K. */
			a.chunk = 4096;
			EXPECT_EQ(-EINVAL, vss_create_ex(&self->nl, &a, NULL))
				TH_LOG("shared store with another chunk size: %s",
				       self->nl.errmsg);
			EXPECT_EQ(1, vss_count_snapshots(&self->nl));
			a.chunk = 64 * 1024;
		}
		ASSERT_EQ(0, vss_create_ex(&self->nl, &a, &c[i]))
			TH_LOG("create %d: %s", i, self->nl.errmsg);
	}
	for (k = 0; k < 200; k++) {
		unsigned int len = 1 + rnd(&state) % 64;
		uint64_t first = rnd(&state) % (span - len);

		i = k % 2;
		ASSERT_EQ(0, write_stamps(fd[i], buf, first, len, 2 + k));
		for (unsigned int n = 0; n < len; n++)
			expect[i][first + n] = 2 + k;
	}
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vss_snap_info(&self->nl, c[i].snap_id[0], &info[i]));
		EXPECT_EQ(VSS_STATE_ACTIVE, info[i].state) TH_LOG("%s", info[i].reason);
		EXPECT_EQ(0, verify_image(c[i].image[0], span, NULL, 1, why))
			TH_LOG("image of %s: %s", names[i], why);
		EXPECT_EQ(0, verify_stamps(fd[i], span, expect[i], 0, why, sizeof(why)))
			TH_LOG("origin %s: %s", names[i], why);
	}
	EXPECT_EQ(info[0].storage_used, info[1].storage_used)
		TH_LOG("one store, two figures of use");
	TH_LOG("shared store: %llu KiB used, limit %llu KiB",
	       (unsigned long long)info[0].storage_used >> 10,
	       (unsigned long long)info[0].storage_limit >> 10);
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(0, vss_delete_set(&self->nl, c[i].set_id, false));
		close(fd[i]);
		free(expect[i]);
	}
	free(buf);
	assert_clean(_metadata, self);
}

/* A number no block device has: ENOTBLK, or ENXIO/ENODEV (no such device). */
TEST_F(bad, origin_number_names_no_device)
{
	dev_t none = makedev(4095, 4242);
	struct vss_create_args a = {
		.devs = &none, .nr = 1, .storage = self->blockstore,
		.flags = VSS_CREATE_NO_FREEZE,
	};
	int ret = vss_create_ex(&self->nl, &a, NULL);

	if (!ret)
		vss_delete_all(&self->nl);
	EXPECT_TRUE(ret == -ENOTBLK || ret == -ENXIO || ret == -ENODEV)
		TH_LOG("(4095, 4242): got %s (\"%s\")", strerror(-ret),
		       self->nl.errmsg);
	EXPECT_NE(0, self->nl.errmsg[0]);
	EXPECT_NE(0, self->nl.err_offset) TH_LOG("no device blamed");
	assert_clean(_metadata, self);
}

TEST_HARNESS_MAIN
