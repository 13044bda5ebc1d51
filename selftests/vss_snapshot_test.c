// SPDX-License-Identifier: GPL-2.0
/*
 * Snapshot data path: every sector of every image must read exactly as
 * the origin was at the commit, whatever is written meanwhile, and the
 * origin must hold exactly what was written to it.
 *
 * Needs scratch disks from the VM harness:
 *   0: origin A (64M)   1: storage block device (512M)   2: origin B (64M)
 */
#include "vss_nl.h"
#include "vss_util.h"
#include "vss_harness.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define STRIPE		256	/* sectors a thread owns in a row */
#define WRITERS		4

struct writer_ctx {
	int fd;
	unsigned int id;
	unsigned int nr_writes;
	uint64_t sectors;
	uint16_t *expect;		/* latest sequence per sector */
	atomic_uint *seq;
	int error;
};

/*
 * Random rewrites of the stripes this writer owns, lengths 1..64 sectors
 * so that many straddle chunk boundaries; writer 0 also rewrites sector 0
 * over and over.
 */
static void *writer(void *arg)
{
	struct writer_ctx *w = arg;
	uint64_t state = 0x9e3779b97f4a7c15ULL * (w->id + 1);
	void *buf = aligned_buf(64 * SECTOR);
	uint64_t stripes = w->sectors / STRIPE;
	unsigned int i;

	for (i = 0; i < w->nr_writes && buf; i++) {
		uint64_t stripe, first;
		unsigned int len, k;
		uint16_t seq = atomic_fetch_add(w->seq, 1) + 1;

		if (w->id == 0 && i % 4 == 0) {
			first = 0;
			len = 1;
		} else {
			stripe = rnd(&state) % (stripes / WRITERS) * WRITERS +
				 w->id;
			len = 1 + rnd(&state) % 64;
			first = stripe * STRIPE + rnd(&state) % (STRIPE - len + 1);
		}
		if (write_stamps(w->fd, buf, first, len, seq)) {
			w->error = errno;
			break;
		}
		for (k = 0; k < len; k++)
			w->expect[first + k] = seq;
	}
	free(buf);
	return NULL;
}

static int run_writers(int fd, uint64_t sectors, uint16_t *expect,
		       atomic_uint *seq, unsigned int nr_writes)
{
	struct writer_ctx w[WRITERS];
	pthread_t t[WRITERS];
	unsigned int i;
	int error = 0;

	for (i = 0; i < WRITERS; i++) {
		w[i] = (struct writer_ctx){ .fd = fd, .id = i,
			.nr_writes = nr_writes, .sectors = sectors,
			.expect = expect, .seq = seq };
		pthread_create(&t[i], NULL, writer, &w[i]);
	}
	for (i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		if (w[i].error)
			error = w[i].error;
	}
	return error;
}

static int count_snapshots(struct vss_nl *nl)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg *m = calloc(1, sizeof(*m));
	const struct nlmsghdr *nlh;
	size_t len = 0;
	int n = 0, ret;

	vss_msg_init(nl, m, VSS_CMD_GET_SNAPSHOT, NLM_F_DUMP);
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (ret)
		return ret;
	for (nlh = (const void *)reply; len >= NLMSG_HDRLEN &&
	     NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len))
		n++;
	return n;
}

/* Force-deletes whatever a failed test left, so the next one starts clean. */
static void delete_all(struct vss_nl *nl)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg *m = calloc(1, sizeof(*m));
	const struct nlmsghdr *nlh;
	size_t len = 0;

	vss_msg_init(nl, m, VSS_CMD_GET_SNAPSHOT, NLM_F_DUMP);
	if (!vss_nl_call(nl, m, reply, &len)) {
		for (nlh = (const void *)reply; len >= NLMSG_HDRLEN &&
		     NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
			struct vss_attrs top, snap;

			vss_parse((const char *)nlh, nlh->nlmsg_len, &top);
			vss_parse_nested(top.a[VSS_A_SNAPSHOT], &snap);
			if (snap.a[VSS_A_SNAP_ID])
				vss_delete_snap(nl, (const uint8_t *)snap.a[VSS_A_SNAP_ID] +
						NLA_HDRLEN, true);
		}
	}
	free(m);
}

FIXTURE(snap) {
	struct vss_nl nl;
	const char *origin;
	const char *storage;
	int fd;
	uint64_t sectors;
	uint16_t *expect;
	atomic_uint seq;
	char why[256];
};

FIXTURE_SETUP(snap)
{
	self->origin = scratch_disk(0);
	self->storage = scratch_disk(1);
	if (!self->origin || !self->storage)
		SKIP(return, "needs scratch disks (run under scripts/vm-run)");
	ASSERT_EQ(0, vss_nl_open(&self->nl));
	self->fd = open(self->origin, O_RDWR | O_DIRECT);
	ASSERT_LE(0, self->fd);
	self->sectors = dev_sectors(self->fd);
	ASSERT_LT(0, self->sectors);
	self->expect = calloc(self->sectors, sizeof(uint16_t));
	ASSERT_NE(NULL, self->expect);
	atomic_init(&self->seq, 1);
	ASSERT_EQ(0, fill_stamps(self->fd, self->sectors, 1));
	for (uint64_t s = 0; s < self->sectors; s++)
		self->expect[s] = 1;
}

FIXTURE_TEARDOWN(snap)
{
	if (self->fd >= 0)
		close(self->fd);
	free(self->expect);
	EXPECT_EQ(0, count_snapshots(&self->nl)) TH_LOG("snapshots left over");
	delete_all(&self->nl);
	vss_nl_close(&self->nl);
}

static void rewrite_and_verify(struct __test_metadata *_metadata,
			       FIXTURE_DATA(snap) *self, uint32_t chunk)
{
	const char *devs[] = { self->origin };
	struct vss_created c;

	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0, chunk,
				VSS_CREATE_NO_FREEZE, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(1, c.nr);
	TH_LOG("%s on %s, hold %llu us", c.image[0], self->origin,
	       (unsigned long long)c.hold_us);

	ASSERT_EQ(0, run_writers(self->fd, self->sectors, self->expect,
				 &self->seq, 1500));
	EXPECT_EQ(0, verify_image(c.image[0], self->sectors, NULL, 1,
				  self->why)) TH_LOG("image: %s", self->why);
	/* And again after a second round: the image must not drift. */
	ASSERT_EQ(0, run_writers(self->fd, self->sectors, self->expect,
				 &self->seq, 500));
	EXPECT_EQ(0, verify_stamps(self->fd, self->sectors, self->expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
	EXPECT_EQ(0, verify_image(c.image[0], self->sectors, NULL, 1,
				  self->why)) TH_LOG("image: %s", self->why);
	EXPECT_EQ(VSS_STATE_ACTIVE, vss_snap_state(&self->nl, c.snap_id[0],
						   NULL));
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
}

/*
 * Image reads racing the first writes and the rewrites of the chunks they
 * read: a read that found a chunk on the origin must get the old data even
 * when the chunk is copied and then rewritten while the read is in flight.
 * A small hot region and 4 KiB chunks make the race frequent; each round
 * takes a new snapshot so that every chunk is copied again.
 */
#define HOT_SECTORS	512
#define HOT_ROUNDS	12
#define HOT_WRITES	300

/* What one round of the race looks like. */
struct hot_shape {
	unsigned int sectors;		/* the hot region, from sector 0 */
	unsigned int max_write;		/* sectors; 8 means one 4 KiB chunk */
	unsigned int writes;		/* per writer and round */
};

struct hot_ctx {
	int fd;
	const char *image;
	uint64_t seq;			/* what the image must read */
	atomic_bool *stop;
	unsigned int id;
	const struct hot_shape *shape;
	long bad;
	unsigned int reads;
	char why[256];
};

static void *hot_reader(void *arg)
{
	struct hot_ctx *h = arg;

	while (!atomic_load(h->stop) && !h->bad) {
		h->bad = verify_image(h->image, h->shape->sectors, NULL, h->seq,
				      h->why);
		h->reads++;
	}
	return NULL;
}

static void *hot_writer(void *arg)
{
	struct hot_ctx *h = arg;
	uint64_t state = 0x2545f4914f6cdd1dULL * (h->id + 1);
	const struct hot_shape *shape = h->shape;
	void *buf = aligned_buf(shape->max_write * SECTOR);
	unsigned int i;

	for (i = 0; i < shape->writes && buf && !h->bad; i++) {
		/* One 4 KiB chunk each, or runs of them at any alignment. */
		unsigned int len = shape->max_write == 8 ? 8 :
				   1 + rnd(&state) % shape->max_write;
		uint64_t first = len == 8 ?
				 rnd(&state) % (shape->sectors / 8) * 8 :
				 rnd(&state) % (shape->sectors - len + 1);

		if (write_stamps(h->fd, buf, first, len, h->seq + 1 + i)) {
			h->bad = -errno;
			snprintf(h->why, sizeof(h->why), "write: %s",
				 strerror(errno));
		}
	}
	free(buf);
	return NULL;
}

static void race_image_reads(struct __test_metadata *_metadata,
			     FIXTURE_DATA(snap) *self,
			     const struct hot_shape *shape)
{
	const char *devs[] = { self->origin };
	unsigned int round, i, reads = 0;

	for (round = 1; round <= HOT_ROUNDS; round++) {
		uint64_t seq = 1000 * round;
		struct hot_ctx h[4];
		pthread_t t[4];
		atomic_bool stop;
		struct vss_created c;
		void *buf = aligned_buf(shape->sectors * SECTOR);

		ASSERT_NE(NULL, buf);
		ASSERT_EQ(0, write_stamps(self->fd, buf, 0, shape->sectors,
					  seq));
		free(buf);
		ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0,
					4096, VSS_CREATE_NO_FREEZE, &c))
			TH_LOG("create: %s", self->nl.errmsg);
		atomic_init(&stop, false);
		for (i = 0; i < 4; i++) {
			h[i] = (struct hot_ctx){ .fd = self->fd,
				.image = c.image[0], .seq = seq, .stop = &stop,
				.id = i, .shape = shape };
			pthread_create(&t[i], NULL, i < 2 ? hot_reader :
				       hot_writer, &h[i]);
		}
		pthread_join(t[2], NULL);
		pthread_join(t[3], NULL);
		atomic_store(&stop, true);
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
		for (i = 0; i < 4; i++) {
			EXPECT_EQ(0, h[i].bad)
				TH_LOG("round %u, %s %u: %s", round,
				       i < 2 ? "reader" : "writer", i, h[i].why);
			if (i < 2)
				reads += h[i].reads;
		}
		EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
		if (!_metadata->passed)
			break;
	}
	TH_LOG("%u image reads of %u sectors over %u rounds", reads,
	       shape->sectors, HOT_ROUNDS);
	/* The other tests' expectations: refill what this one wrote. */
	ASSERT_EQ(0, fill_stamps(self->fd, shape->sectors, 1));
}

TEST_F(snap, image_reads_race_copies_and_rewrites)
{
	static const struct hot_shape one_chunk = {
		.sectors = HOT_SECTORS, .max_write = 8, .writes = HOT_WRITES,
	};

	race_image_reads(_metadata, self, &one_chunk);
}

/*
 * The same with writes of up to 160 chunks at any alignment, so that a
 * write's chunks are copied as runs (of up to 64 chunks), some of them
 * handed to workers, and the two writers' runs overlap: a run stops where
 * the other writer is copying, and what it left is copied after that
 * copy ends. Fewer writes a round: the region is copied after a few.
 */
TEST_F(snap, image_reads_race_copy_runs)
{
	static const struct hot_shape runs = {
		.sectors = 8 * HOT_SECTORS, .max_write = 1280, .writes = 40,
	};

	race_image_reads(_metadata, self, &runs);
}

TEST_F(snap, integrity_default_chunk)
{
	rewrite_and_verify(_metadata, self, 0);
}

TEST_F(snap, integrity_4k_chunk)
{
	rewrite_and_verify(_metadata, self, 4096);
}

TEST_F(snap, integrity_1m_chunk)
{
	rewrite_and_verify(_metadata, self, 1 << 20);
}

/* Discard and write-zeroes change data too: they must be preserved. */
TEST_F(snap, discard_and_zeroout_preserved)
{
	const char *devs[] = { self->origin };
	uint64_t range[2];
	struct vss_created c;
	uint64_t s;

	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0, 0,
				VSS_CREATE_NO_FREEZE, &c));
	range[0] = 1 << 20;
	range[1] = 4 << 20;
	EXPECT_EQ(0, ioctl(self->fd, BLKDISCARD, range)) TH_LOG("%m");
	range[0] = 9 << 20;
	range[1] = (1 << 20) + 4096;
	EXPECT_EQ(0, ioctl(self->fd, BLKZEROOUT, range)) TH_LOG("%m");
	range[0] = 20 << 20;
	range[1] = 64 << 10;
	ioctl(self->fd, BLKSECDISCARD, range); /* usually EOPNOTSUPP */
	EXPECT_EQ(0, verify_image(c.image[0], self->sectors, NULL, 1,
				  self->why)) TH_LOG("image: %s", self->why);
	/* The zeroed range reads zero on the origin. */
	{
		char *buf = aligned_buf(4096);

		ASSERT_EQ(4096, pread(self->fd, buf, 4096, 9 << 20));
		for (s = 0; s < 4096; s++)
			if (buf[s])
				break;
		EXPECT_EQ(4096, s);
		free(buf);
	}
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
}

/*
 * Reads whose origin chunks alternate with store chunks go out bridged
 * (one origin read over the span, then the store chunks over it). Every
 * other chunk is rewritten back to front, so that the store holds them in
 * the reverse of image order, plus single sectors of some other chunks;
 * the image is then read with sizes and offsets that start and end inside
 * chunks, small reads (cut in a worker) and large ones (started in the
 * submitter) alike.
 */
TEST_F(snap, bridged_reads_out_of_order_and_unaligned)
{
	const uint64_t chunk = 32;		/* sectors: 16 KiB chunks */
	const uint64_t region = 16384;		/* sectors: 8 MiB */
	static const uint64_t lengths[] = { 136, 72, 600, 2072, 4104, 1024 };
	const char *devs[] = { self->origin };
	uint64_t pos, i, reads = 0;
	struct vss_created c;
	unsigned int k = 0;
	void *buf;
	int fd;

	ASSERT_LE(region, self->sectors);
	buf = aligned_buf(8192 * SECTOR);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0,
				chunk * SECTOR, VSS_CREATE_NO_FREEZE, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	for (i = region / chunk; i-- > 0;) {
		if (i % 2) {
			ASSERT_EQ(0, write_stamps(self->fd, buf, i * chunk,
						  chunk, 2));
		} else if (i % 6 == 0) {
			ASSERT_EQ(0, write_stamps(self->fd, buf,
						  i * chunk + 7, 1, 2));
		}
	}
	fd = open(c.image[0], O_RDONLY | O_DIRECT);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", c.image[0], strerror(errno));
	for (pos = 8; pos < region; pos += lengths[k++ % 6] / 2 + 8) {
		uint64_t len = lengths[k % 6];
		unsigned int s;

		if (pos + len > region)
			len = region - pos;
		ASSERT_EQ((ssize_t)(len * SECTOR),
			  pread(fd, buf, len * SECTOR, pos * SECTOR))
			TH_LOG("read of %llu sectors at %llu: %s",
			       (unsigned long long)len,
			       (unsigned long long)pos, strerror(errno));
		for (s = 0; s < len; s++) {
			int r = stamp_check((char *)buf + s * SECTOR, pos + s,
					    1);

			ASSERT_EQ(0, r)
				TH_LOG("read of %llu sectors at %llu: sector %llu is %s",
				       (unsigned long long)len,
				       (unsigned long long)pos,
				       (unsigned long long)(pos + s),
				       r == -1 ? "corrupt" : r == -2 ?
				       "misplaced" : "from after the snapshot");
		}
		reads++;
	}
	close(fd);
	free(buf);
	TH_LOG("%llu image reads verified", (unsigned long long)reads);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
}

/* Reads every @step-th block of an image, @passes times over, and checks it. */
struct block_reader {
	const char *path;
	uint64_t first, step, block, nr_blocks;
	unsigned int passes;
	uint64_t bad;		/* the first wrong sector, or UINT64_MAX */
	int error;
	pthread_t thread;
};

static void *block_reader(void *arg)
{
	struct block_reader *r = arg;
	size_t len = r->block * SECTOR;
	void *buf = aligned_buf(len);
	unsigned int pass;
	uint64_t b, s;
	int fd;

	r->bad = UINT64_MAX;
	fd = open(r->path, O_RDONLY | O_DIRECT);
	if (fd < 0 || !buf) {
		r->error = errno ?: ENOMEM;
		goto out;
	}
	for (pass = 0; pass < r->passes; pass++) {
		for (b = r->first; b < r->nr_blocks; b += r->step) {
			uint64_t pos = b * r->block;

			if (pread(fd, buf, len, pos * SECTOR) != (ssize_t)len) {
				r->error = errno ?: EIO;
				goto out;
			}
			for (s = 0; s < r->block; s++) {
				if (stamp_check((char *)buf + s * SECTOR,
						pos + s, 1)) {
					r->bad = pos + s;
					goto out;
				}
			}
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/*
 * Bridged reads in flight together: every other chunk rewritten front to
 * back, so that the store holds them in image order and the store chunks
 * of one reader's block continue those of the block another reader has
 * just read, where the block layer may merge their store reads. Every
 * sector must still land in its own request.
 */
TEST_F(snap, bridged_reads_in_flight_together)
{
	const uint64_t chunk = 128;		/* sectors: 64 KiB chunks */
	const uint64_t block = 2048;		/* sectors: 1 MiB reads */
	const uint64_t region = 65536;		/* sectors: 32 MiB */
	const char *devs[] = { self->origin };
	struct block_reader r[4];
	struct vss_created c;
	unsigned int i;
	uint64_t k;
	void *buf;

	ASSERT_LE(region, self->sectors);
	buf = aligned_buf(chunk * SECTOR);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0,
				chunk * SECTOR, VSS_CREATE_NO_FREEZE, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	for (k = 1; k < region / chunk; k += 2)
		ASSERT_EQ(0, write_stamps(self->fd, buf, k * chunk, chunk, 2));
	free(buf);
	for (i = 0; i < ARRAY_SIZE(r); i++) {
		r[i] = (struct block_reader){
			.path = c.image[0], .first = i, .step = ARRAY_SIZE(r),
			.block = block, .nr_blocks = region / block,
			.passes = 4,
		};
		ASSERT_EQ(0, pthread_create(&r[i].thread, NULL, block_reader,
					    &r[i]));
	}
	for (i = 0; i < ARRAY_SIZE(r); i++)
		pthread_join(r[i].thread, NULL);
	for (i = 0; i < ARRAY_SIZE(r); i++) {
		EXPECT_EQ(0, r[i].error)
			TH_LOG("reader %u: %s", i, strerror(r[i].error));
		EXPECT_EQ(UINT64_MAX, r[i].bad)
			TH_LOG("reader %u: sector %llu differs from snapshot time",
			       i, (unsigned long long)r[i].bad);
	}
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
}

/* Writes to an image go to the storage only. */
TEST_F(snap, writable_image)
{
	const char *devs[] = { self->origin };
	struct vss_created c, c2;
	uint16_t *image_expect;
	void *buf = aligned_buf(64 * SECTOR);
	uint64_t state = 42;
	int fd, i;

	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0, 4096,
				VSS_CREATE_NO_FREEZE, &c));
	image_expect = calloc(self->sectors, sizeof(uint16_t));
	for (uint64_t s = 0; s < self->sectors; s++)
		image_expect[s] = 1;
	fd = open(c.image[0], O_RDWR | O_DIRECT);
	ASSERT_LE(0, fd);
	for (i = 0; i < 300; i++) {
		/* Straddle 4K chunk boundaries on purpose. */
		uint64_t first = (rnd(&state) % (self->sectors / 8 - 1)) * 8 + 5;
		unsigned int len = 1 + rnd(&state) % 20;

		ASSERT_EQ(0, write_stamps(fd, buf, first, len, 7));
		for (unsigned int k = 0; k < len; k++)
			image_expect[first + k] = 7;
	}
	/* A second snapshot taken after: must not see the image writes. */
	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0, 4096,
				VSS_CREATE_NO_FREEZE, &c2));
	ASSERT_EQ(0, run_writers(self->fd, self->sectors, self->expect,
				 &self->seq, 300));
	EXPECT_EQ(0, verify_stamps(fd, self->sectors, image_expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("image: %s", self->why);
	EXPECT_EQ(0, verify_image(c2.image[0], self->sectors, NULL, 1,
				  self->why)) TH_LOG("second image: %s", self->why);
	EXPECT_EQ(0, verify_stamps(self->fd, self->sectors, self->expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
	/* Open image: delete refuses without force. */
	EXPECT_EQ(-EBUSY, vss_delete_snap(&self->nl, c.snap_id[0], false));
	close(fd);
	EXPECT_EQ(0, vss_delete_snap(&self->nl, c.snap_id[0], false));
	EXPECT_EQ(0, vss_delete_set(&self->nl, c2.set_id, false));
	free(image_expect);
	free(buf);
}

/*
 * 64 snapshots of one device, different data between each, then random
 * deletes: every remaining image keeps reading its own point in time.
 */
TEST_F(snap, sixty_four_snapshots_random_deletes)
{
	enum { N = 64 };
	const char *devs[] = { self->origin };
	static uint8_t ids[N][VSS_ID_LEN];
	static char images[N][64];
	uint16_t *expect[N];
	bool alive[N];
	uint64_t sectors = self->sectors / 8;	/* check the first 8M */
	uint64_t state = 7;
	struct vss_created c;
	int i, order[N];

	for (i = 0; i < N; i++) {
		ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0,
					4096, VSS_CREATE_NO_FREEZE, &c))
			TH_LOG("snapshot %d: %s", i, self->nl.errmsg);
		memcpy(ids[i], c.snap_id[0], VSS_ID_LEN);
		strcpy(images[i], c.image[0]);
		expect[i] = malloc(sectors * sizeof(uint16_t));
		memcpy(expect[i], self->expect, sectors * sizeof(uint16_t));
		alive[i] = true;
		/* Change some sectors before the next one. */
		for (int w = 0; w < 40; w++) {
			void *buf = aligned_buf(16 * SECTOR);
			uint64_t first = rnd(&state) % (sectors - 16);
			unsigned int len = 1 + rnd(&state) % 16;
			uint16_t seq = atomic_fetch_add(&self->seq, 1) + 1;

			ASSERT_EQ(0, write_stamps(self->fd, buf, first, len, seq));
			for (unsigned int k = 0; k < len; k++)
				self->expect[first + k] = seq;
			free(buf);
		}
	}
	for (i = 0; i < N; i++)
		order[i] = i;
	for (i = N - 1; i > 0; i--) {
		int j = rnd(&state) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < N; i++) {
		int victim = order[i];

		ASSERT_EQ(0, vss_delete_snap(&self->nl, ids[victim], false));
		alive[victim] = false;
		/* Verify all survivors now and then (reads are slow in TCG). */
		if (i % 16 != 15 && i != 0)
			continue;
		for (int k = 0; k < N; k++) {
			if (!alive[k])
				continue;
			EXPECT_EQ(0, verify_image(images[k], sectors, expect[k], 0,
						  self->why))
				TH_LOG("snapshot %d after %d deletes: %s", k, i + 1,
				       self->why);
		}
	}
	for (i = 0; i < N; i++)
		free(expect[i]);
	EXPECT_EQ(0, verify_stamps(self->fd, sectors, self->expect, 0,
				   self->why, sizeof(self->why)));
}

struct writers_bg {
	FIXTURE_DATA(snap) *self;
	unsigned int nr_writes;
	int error;
};

static void *writers_bg_thread(void *arg)
{
	struct writers_bg *bg = arg;

	bg->error = run_writers(bg->self->fd, bg->self->sectors,
				bg->self->expect, &bg->self->seq, bg->nr_writes);
	return NULL;
}

/*
 * A delete hands the deleted snapshot's exceptions to the older one while
 * first writes go on (it used to hold the origin's writes for the whole
 * move): the middle of three snapshots, whose table moves under the
 * newest one's copies, then the newest, whose table moves into the
 * oldest while that one becomes the copy target. The oldest image must
 * read its own instant throughout, the origin every write.
 */
TEST_F(snap, delete_while_first_writes_run)
{
	const char *devs[] = { self->origin };
	struct vss_created s1, s2, s3;
	struct writers_bg bg = { .self = self, .nr_writes = 600 };
	pthread_t t;

	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0, 4096,
				VSS_CREATE_NO_FREEZE, &s1));
	ASSERT_EQ(0, run_writers(self->fd, self->sectors, self->expect,
				 &self->seq, 300));
	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0, 4096,
				VSS_CREATE_NO_FREEZE, &s2));
	ASSERT_EQ(0, run_writers(self->fd, self->sectors, self->expect,
				 &self->seq, 300));
	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, self->storage, 0, 4096,
				VSS_CREATE_NO_FREEZE, &s3));
	ASSERT_EQ(0, pthread_create(&t, NULL, writers_bg_thread, &bg));
	usleep(50 * 1000);
	EXPECT_EQ(0, vss_delete_snap(&self->nl, s2.snap_id[0], false));
	usleep(50 * 1000);
	EXPECT_EQ(0, vss_delete_snap(&self->nl, s3.snap_id[0], false));
	pthread_join(t, NULL);
	EXPECT_EQ(0, bg.error) TH_LOG("a write failed: %s", strerror(bg.error));
	EXPECT_EQ(0, verify_image(s1.image[0], self->sectors, NULL, 1, self->why))
		TH_LOG("oldest image: %s", self->why);
	EXPECT_EQ(0, verify_stamps(self->fd, self->sectors, self->expect, 0,
				   self->why, sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
	EXPECT_EQ(0, vss_delete_snap(&self->nl, s1.snap_id[0], false));
}

/* Two devices, one instant: a writer alternates between them. */
TEST_F(snap, set_is_one_instant)
{
	const char *b = scratch_disk(2);
	const char *devs[] = { self->origin, b };
	struct vss_created c;
	atomic_bool stop = false;
	uint64_t gen_a, gen_b;
	int fd_b;
	pid_t pid;
	void *buf = aligned_buf(4096);

	if (!b)
		SKIP(return, "needs a third scratch disk");
	fd_b = open(b, O_RDWR | O_DIRECT);
	ASSERT_LE(0, fd_b);
	/*
	 * The child writes generation g to A, then to B, then g + 1...
	 * At any instant A holds g and B holds g or g - 1.
	 */
	pid = fork();
	if (!pid) {
		for (uint64_t g = 2; !stop; g++) {
			if (write_stamps(self->fd, buf, 0, 8, g) ||
			    write_stamps(fd_b, buf, 0, 8, g))
				_exit(1);
			if (g > 200000)
				_exit(2);
		}
		_exit(0);
	}
	usleep(300000);
	ASSERT_EQ(0, vss_create(&self->nl, devs, 2, self->storage, 0, 0,
				VSS_CREATE_NO_FREEZE, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	{
		int fa = open(c.image[0], O_RDONLY | O_DIRECT);
		int fb = open(c.image[1], O_RDONLY | O_DIRECT);

		ASSERT_EQ(4096, pread(fa, buf, 4096, 0));
		gen_a = ((struct stamp *)buf)->seq;
		ASSERT_EQ(4096, pread(fb, buf, 4096, 0));
		gen_b = ((struct stamp *)buf)->seq;
		close(fa);
		close(fb);
	}
	TH_LOG("image A at generation %llu, B at %llu, hold %llu us",
	       (unsigned long long)gen_a, (unsigned long long)gen_b,
	       (unsigned long long)c.hold_us);
	EXPECT_TRUE(gen_a == gen_b || gen_a == gen_b + 1);
	EXPECT_LT(1, gen_a) TH_LOG("the writer never ran");
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	close(fd_b);
	free(buf);
}

TEST_HARNESS_MAIN
