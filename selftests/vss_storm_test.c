// SPDX-License-Identifier: GPL-2.0
/*
 * A write storm in a small VM (512 MiB): sixteen snapshots of one origin,
 * one set each, taken while many threads make large (1 MiB) and small
 * (4 KiB) first writes, with every set's store a directory on a slow
 * device (ext4 over dm-delay). The writes go on until the newest stores
 * overflow: those snapshots fail, with an event and a reason, and the
 * copies go to the older ones.
 *
 * Checked: every write lands (the origin never fails one); every snapshot
 * that did not fail still reads what the origin held when it was taken;
 * the failed ones are the newest, each with ENOSPC, a reason and an
 * event; no OOM kill; the module's memory at the peak (slab, kernel
 * stacks and the pages no other counter accounts for) stays under the
 * bound of Documentation/design.rst ("Memory under a write storm"). A
 * hung task fails the VM run (scripts/vm-run).
 *
 * Disks: 0: origin (96M)   1: the stores' filesystem (512M)
 *
 *   scripts/vm-run --mem 512M --disk 96M --disk 512M -- build/selftests/vss_storm_test
 */
#include "vss_nl.h"
#include "vss_util.h"
#include "vss_sys.h"
#include "vss_harness.h"
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#define MiB		(1024ULL * 1024)
#define KiB		1024ULL
#define STORE_DIR	"/tmp/vss_storm_store"
#define DELAYED		"vss_storm_slow"

#define NR_SNAPS	16
#define CHUNK		4096
#define BLOCK		4096		/* the unit of the write log */
#define LARGE		(1 * MiB)
#define SMALL		(4 * KiB)
#define LARGE_AREA	(64 * MiB)	/* origin [0, 64M): 1 MiB writes */
#define LARGE_WRITERS	4
#define LARGE_DEPTH	2		/* aio writes each keeps in flight */
#define SMALL_WRITERS	8
#define SMALL_DEPTH	32
/* Snapshot k is taken once FIRST_MARK + k x MARK_STEP bytes have landed. */
#define FIRST_MARK	(2 * MiB)
#define MARK_STEP	(3 * MiB)
#define SET_LIMIT	(24 * MiB)	/* each set's store */

/* kmod/vss.h and kmod/cow.c, for the bound. */
#define VSS_MAX_DEFERRED	256
#define VSS_COW_RUN_BYTES	(1 * MiB)
#define VSS_COW_RUN_CHUNKS	64

struct storm {
	int fd;
	uint64_t sectors;
	uint64_t small_blocks, large_units;
	atomic_ullong next_small, next_large;
	atomic_ullong landed_bytes;
	atomic_uint failed;
	atomic_int first_error;
	/* Per BLOCK of the origin: when its write was sent and reaped, in ns. */
	_Atomic uint64_t *sent, *done;
	atomic_bool stop;
	/* Snapshots taken: writers wait while more than their MARK_STEP landed. */
	atomic_uint taken;
	/* Peaks above the baseline, in KiB. */
	long base_slab, base_stack, base_other;
	atomic_long peak_slab, peak_stack, peak_other, peak_sum;
	atomic_long peak_vss_write;	/* bytes of the vss_write cache */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * Kernel memory in KiB: slab, kernel stacks, and the pages that are on no
 * LRU list and in no other counter (MemTotal - MemFree - LRU - Slab -
 * KernelStack - PageTables - Percpu - VmallocUsed is not subtracted, it
 * is mostly address space): where the copies' chunk buffers, which vss
 * takes with alloc_page(), show up.
 */
static int kernel_kib(long *slab, long *stack, long *other)
{
	long total = -1, free = -1, act = 0, inact = 0, unev = 0, pt = 0,
	     percpu = 0, v;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");

	*slab = *stack = -1;
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %ld kB", &v) == 1)
			total = v;
		else if (sscanf(line, "MemFree: %ld kB", &v) == 1)
			free = v;
		else if (sscanf(line, "Active: %ld kB", &v) == 1)
			act = v;
		else if (sscanf(line, "Inactive: %ld kB", &v) == 1)
			inact = v;
		else if (sscanf(line, "Unevictable: %ld kB", &v) == 1)
			unev = v;
		else if (sscanf(line, "Slab: %ld kB", &v) == 1)
			*slab = v;
		else if (sscanf(line, "KernelStack: %ld kB", &v) == 1)
			*stack = v;
		else if (sscanf(line, "PageTables: %ld kB", &v) == 1)
			pt = v;
		else if (sscanf(line, "Percpu: %ld kB", &v) == 1)
			percpu = v;
	}
	if (f)
		fclose(f);
	if (total < 0 || free < 0 || *slab < 0 || *stack < 0)
		return -1;
	*other = total - free - act - inact - unev - *slab - *stack - pt -
		 percpu;
	return 0;
}

/* Bytes of the vss_write cache (active objects x size), or -1. */
static long vss_write_bytes(void)
{
	char line[256], name[64];
	long active, total, size, best = -1;
	FILE *f = fopen("/proc/slabinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld %ld %ld", name, &active, &total,
			   &size) == 4 && !strcmp(name, "vss_write"))
			best = total * size;
	if (f)
		fclose(f);
	return best;
}

static void peak(atomic_long *p, long v)
{
	long old = atomic_load(p);

	while (v > old && !atomic_compare_exchange_weak(p, &old, v))
		;
}

static void *sampler(void *arg)
{
	struct storm *st = arg;

	while (!atomic_load(&st->stop)) {
		long slab, stack, other;

		if (!kernel_kib(&slab, &stack, &other)) {
			slab -= st->base_slab;
			stack -= st->base_stack;
			other -= st->base_other;
			peak(&st->peak_slab, slab);
			peak(&st->peak_stack, stack);
			peak(&st->peak_other, other);
			peak(&st->peak_sum, slab + stack + other);
		}
		peak(&st->peak_vss_write, vss_write_bytes());
		usleep(10000);
	}
	return NULL;
}

struct writer {
	struct storm *st;
	bool large;
	pthread_t thread;
};

/*
 * The byte offset of the next write of its kind, or -1 when its area is
 * done. The blocks of each area are visited in a scattered order (a
 * multiplier prime to the count), so that runs and single copies mix.
 */
static int64_t next_offset(struct storm *st, bool large)
{
	uint64_t i;

	if (large) {
		i = atomic_fetch_add(&st->next_large, 1);
		if (i >= st->large_units)
			return -1;
		return (i * 37 % st->large_units) * LARGE;
	}
	i = atomic_fetch_add(&st->next_small, 1);
	if (i >= st->small_blocks)
		return -1;
	return LARGE_AREA + (i * 7919 % st->small_blocks) * SMALL;
}

/* Asynchronous first writes of stamps (sequence 2), DEPTH in flight. */
static void *writer(void *arg)
{
	struct writer *w = arg;
	struct storm *st = w->st;
	unsigned int depth = w->large ? LARGE_DEPTH : SMALL_DEPTH;
	size_t bytes = w->large ? LARGE : SMALL;
	struct iocb *cbs = calloc(depth, sizeof(*cbs));
	struct io_event *ev = calloc(depth, sizeof(*ev));
	unsigned int *free_slots = calloc(depth, sizeof(unsigned int));
	char *bufs = aligned_buf(depth * bytes);
	unsigned int nr_free = depth, inflight = 0, i;
	aio_context_t ctx = 0;
	bool more = true;

	if (!cbs || !ev || !free_slots || !bufs ||
	    syscall(__NR_io_setup, depth, &ctx)) {
		atomic_fetch_add(&st->failed, 1);
		atomic_store(&st->first_error, -errno ?: -ENOMEM);
		goto out;
	}
	for (i = 0; i < depth; i++)
		free_slots[i] = i;
	while (more || inflight) {
		int64_t off;
		bool over;

		/*
		 * Paced while snapshots are taken, so that no snapshot gets
		 * more than its share before the next one: a snapshot's store
		 * must overflow only after the last one was taken.
		 */
		over = atomic_load(&st->taken) < NR_SNAPS &&
		       atomic_load(&st->landed_bytes) >=
		       FIRST_MARK + atomic_load(&st->taken) * MARK_STEP;
		if (over && !inflight) {
			usleep(1000);
			continue;
		}
		off = nr_free && more && !over ? next_offset(st, w->large) : -1;
		if (off >= 0) {
			unsigned int s = free_slots[--nr_free];
			char *buf = bufs + s * bytes;
			struct iocb *cb = &cbs[s];

			for (i = 0; i < bytes / SECTOR; i++)
				stamp_make(buf + i * SECTOR, off / SECTOR + i, 2);
			memset(cb, 0, sizeof(*cb));
			cb->aio_data = off;
			cb->aio_lio_opcode = IOCB_CMD_PWRITE;
			cb->aio_fildes = st->fd;
			cb->aio_buf = (uint64_t)(uintptr_t)buf;
			cb->aio_nbytes = bytes;
			cb->aio_offset = off;
			for (i = 0; i < bytes / BLOCK; i++)
				atomic_store(&st->sent[off / BLOCK + i], now_ns());
			if (syscall(__NR_io_submit, ctx, 1, &cb) != 1) {
				atomic_fetch_add(&st->failed, 1);
				atomic_store(&st->first_error, -errno);
				free_slots[nr_free++] = s;
			} else {
				inflight++;
			}
			continue;
		}
		if (nr_free && more && !over) {
			more = false;
			continue;
		}
		int n = syscall(__NR_io_getevents, ctx, 1, depth, ev, NULL);
		uint64_t t = now_ns();

		for (i = 0; i < (unsigned int)(n > 0 ? n : 0); i++) {
			struct iocb *cb = (struct iocb *)(uintptr_t)ev[i].obj;
			uint64_t o = ev[i].data;

			if (ev[i].res == (long long)bytes) {
				for (unsigned int b = 0; b < bytes / BLOCK; b++)
					atomic_store(&st->done[o / BLOCK + b], t);
				atomic_fetch_add(&st->landed_bytes, bytes);
			} else {
				atomic_fetch_add(&st->failed, 1);
				atomic_store(&st->first_error, (int)ev[i].res);
			}
			free_slots[nr_free++] = cb - cbs;
			inflight--;
		}
		if (n < 0 && errno != EINTR)
			break;
	}
out:
	if (ctx)
		syscall(__NR_io_destroy, ctx);
	free(bufs);
	free(free_slots);
	free(ev);
	free(cbs);
	return NULL;
}

/*
 * Checks an image taken between @start and @end (ns): every sector is a
 * good stamp of itself; a block whose write was reaped before @start is
 * new (2), one whose write was sent after @end, or never, is old (1), and
 * one in between may be either. Returns the number of bad sectors.
 */
static long verify_taken(struct storm *st, const char *image, uint64_t start,
			 uint64_t end, char *why)
{
	const unsigned int batch = 2048;
	void *buf = aligned_buf(batch * SECTOR);
	int fd = open(image, O_RDONLY | O_DIRECT);
	long bad = 0;
	uint64_t s;

	why[0] = 0;
	if (fd < 0 || !buf) {
		snprintf(why, 256, "open %s: %s", image, strerror(errno));
		free(buf);
		return -1;
	}
	for (s = 0; s < st->sectors; s += batch) {
		if (pread(fd, buf, batch * SECTOR, s * SECTOR) != batch * SECTOR) {
			snprintf(why, 256, "read of %s at sector %llu: %s", image,
				 (unsigned long long)s, strerror(errno));
			bad = -1;
			break;
		}
		for (unsigned int i = 0; i < batch; i++) {
			uint64_t sector = s + i, b = sector * SECTOR / BLOCK;
			uint64_t sent = st->sent[b], done = st->done[b];
			const struct stamp *x = (const void *)((char *)buf + i * SECTOR);
			int want = done && done < start ? 2 :
				   !sent || sent > end ? 1 : 0;
			int r = stamp_check(x, sector, x->seq);

			if (!r && want && x->seq != (uint64_t)want)
				r = -3;
			if (!r && !want && x->seq != 1 && x->seq != 2)
				r = -3;
			if (r && !bad++)
				snprintf(why, 256, "sector %llu: %s (want %d, has seq %llu)",
					 (unsigned long long)sector,
					 r == -1 ? "bad checksum" :
					 r == -2 ? "misplaced" : "wrong sequence",
					 want, (unsigned long long)x->seq);
		}
	}
	close(fd);
	free(buf);
	return bad;
}

static long vmstat(const char *name)
{
	char line[128], key[64];
	long v, found = -1;
	FILE *f = fopen("/proc/vmstat", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld", key, &v) == 2 && !strcmp(key, name))
			found = v;
	if (f)
		fclose(f);
	return found;
}

FIXTURE(storm) {
	struct vss_nl nl, ev;
	const char *origin, *storedisk;
	char why[256];
};

FIXTURE_SETUP(storm)
{
	self->nl.fd = -1;
	self->ev.fd = -1;
	self->origin = scratch_disk(0);
	self->storedisk = scratch_disk(1);
	if (!self->origin || !self->storedisk)
		SKIP(return, "needs 2 scratch disks (run under scripts/vm-run)");
	ASSERT_EQ(0, vss_nl_open(&self->nl)) TH_LOG("is vss.ko loaded?");
	vss_delete_all(&self->nl);
	ASSERT_EQ(0, vss_nl_open(&self->ev));
	ASSERT_EQ(0, vss_subscribe_events(&self->ev));
	umount_all(STORE_DIR);
	mkdir(STORE_DIR, 0755);
	/* mkfs on the fast disk; the stores see it through dm-delay. */
	ASSERT_EQ(0, run("mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 %s && "
			 "dmsetup create " DELAYED " --table \"0 $(blockdev --getsz %s) delay %s 0 1 %s 0 5\" && "
			 "dmsetup mknodes " DELAYED " && "
			 "mount -t ext4 /dev/mapper/" DELAYED " " STORE_DIR,
			 self->storedisk, self->storedisk, self->storedisk,
			 self->storedisk));
}

FIXTURE_TEARDOWN(storm)
{
	vss_nl_teardown(_metadata, &self->nl, false);
	if (self->ev.fd >= 0)
		vss_nl_close(&self->ev);
	umount_all(STORE_DIR);
	run_quiet("dmsetup remove " DELAYED);
}

/*
 * The bound (Documentation/design.rst, "Memory under a write storm"), in
 * KiB, for one origin with chunks of @chunk bytes, @copied chunks copied
 * and @writers writer threads: each of the VSS_MAX_DEFERRED places holds
 * one copy buffer (a run of at most VSS_COW_RUN_CHUNKS chunks and
 * VSS_COW_RUN_BYTES, less than two chunks more than the write it serves)
 * with its bio vector and pending entries, and may keep a worker thread
 * busy (stack and task); the exception tables take 64 bytes a chunk;
 * each writer its thread and aio requests; and 4 MiB for whatever else
 * the guest does meanwhile.
 */
static long bound_kib(uint64_t chunk, uint64_t copied, unsigned int writers)
{
	uint64_t run = chunk * VSS_COW_RUN_CHUNKS;

	if (run > VSS_COW_RUN_BYTES)
		run = VSS_COW_RUN_BYTES;
	return VSS_MAX_DEFERRED * (run / KiB + 8 + 40) + copied * 64 / KiB +
	       writers * 64 + 4096;
}

TEST_F_TIMEOUT(storm, sixteen_snapshots_in_512m_overflow_under_a_storm, 900)
{
	static char buf[VSS_NL_BUF];
	struct storm st = { 0 };
	struct writer w[LARGE_WRITERS + SMALL_WRITERS];
	struct vss_created c[NR_SNAPS];
	uint64_t start[NR_SNAPS], end[NR_SNAPS];
	struct vss_snap_info info[NR_SNAPS];
	bool failed_event[NR_SNAPS] = { 0 };
	long oom_before, bound;
	unsigned int i, k, nr_failed = 0, nr_active = 0, nr_writers;
	dev_t dev = rdev_of(self->origin);
	uint64_t t0, t1;
	pthread_t sample;
	char out[256];
	int type;

	st.fd = open(self->origin, O_RDWR | O_DIRECT);
	ASSERT_LE(0, st.fd);
	st.sectors = dev_sectors(st.fd);
	ASSERT_LT(LARGE_AREA / SECTOR, st.sectors);
	st.large_units = LARGE_AREA / LARGE;
	st.small_blocks = (st.sectors * SECTOR - LARGE_AREA) / SMALL;
	st.sent = calloc(st.sectors * SECTOR / BLOCK, sizeof(*st.sent));
	st.done = calloc(st.sectors * SECTOR / BLOCK, sizeof(*st.done));
	ASSERT_NE(NULL, st.sent);
	ASSERT_NE(NULL, st.done);
	ASSERT_EQ(0, fill_stamps(st.fd, st.sectors, 1));
	oom_before = vmstat("oom_kill");

	run_quiet("sync; echo 3 > /proc/sys/vm/drop_caches");
	ASSERT_EQ(0, kernel_kib(&st.base_slab, &st.base_stack, &st.base_other));
	ASSERT_EQ(0, pthread_create(&sample, NULL, sampler, &st));
	t0 = now_ms();
	nr_writers = 0;
	for (i = 0; i < LARGE_WRITERS + SMALL_WRITERS; i++) {
		w[i] = (struct writer){ .st = &st, .large = i < LARGE_WRITERS };
		ASSERT_EQ(0, pthread_create(&w[i].thread, NULL, writer, &w[i]));
		nr_writers++;
	}
	for (k = 0; k < NR_SNAPS; k++) {
		struct vss_create_args a = {
			.devs = &dev, .nr = 1, .storage = STORE_DIR,
			.has_limit = true, .limit = SET_LIMIT, .chunk = CHUNK,
			.flags = VSS_CREATE_NO_FREEZE,
		};
		uint64_t mark = FIRST_MARK + k * MARK_STEP;

		while (atomic_load(&st.landed_bytes) < mark &&
		       atomic_load(&st.landed_bytes) + atomic_load(&st.failed) * LARGE <
		       st.sectors * SECTOR)
			usleep(2000);
		start[k] = now_ns();
		ASSERT_EQ(0, vss_create_ex(&self->nl, &a, &c[k]))
			TH_LOG("snapshot %u: %s", k, self->nl.errmsg);
		end[k] = now_ns();
		atomic_store(&st.taken, k + 1);
	}
	for (i = 0; i < nr_writers; i++)
		pthread_join(w[i].thread, NULL);
	atomic_store(&st.stop, true);
	pthread_join(sample, NULL);
	t1 = now_ms();

	EXPECT_EQ(0, atomic_load(&st.failed))
		TH_LOG("%u writes failed, first with %d", atomic_load(&st.failed),
		       atomic_load(&st.first_error));
	EXPECT_EQ(st.sectors * SECTOR, atomic_load(&st.landed_bytes));
	EXPECT_EQ(oom_before, vmstat("oom_kill")) TH_LOG("an OOM kill");
	run_output(out, sizeof(out), "dmesg | grep -c -e 'Out of memory' -e 'blocked for more than' -e 'page allocation failure'");
	EXPECT_STREQ("0", out) TH_LOG("the guest log reports memory trouble or a hung task");

	for (;;) {
		struct vss_attrs a;
		const struct nlattr *id;

		type = vss_next_event(&self->ev, 500, &a, buf);
		if (type < 0)
			break;
		id = vss_event_attr(&a, VSS_A_SNAP_ID, NULL);
		if (type != VSS_EVENT_SNAPSHOT_FAILED || !id)
			continue;
		for (k = 0; k < NR_SNAPS; k++)
			if (!memcmp(NLA_DATA(id), c[k].snap_id[0], VSS_ID_LEN))
				failed_event[k] = true;
	}
	for (k = 0; k < NR_SNAPS; k++) {
		ASSERT_EQ(0, vss_snap_info(&self->nl, c[k].snap_id[0], &info[k]));
		if (info[k].state == VSS_STATE_FAILED)
			nr_failed++;
		else if (info[k].state == VSS_STATE_ACTIVE)
			nr_active++;
	}
	bound = bound_kib(CHUNK, st.sectors * SECTOR / CHUNK, nr_writers);
	TH_LOG("storm: %.1f s, %llu MiB of first writes (%u x %llu KiB and %u x %llu KiB writers), %u snapshots, %u failed; kernel memory above the baseline at the peak: %ld KiB (slab %ld, kernel stacks %ld, other pages %ld, each at its own peak; vss_write cache %ld KiB), bound %ld KiB",
	       (t1 - t0) / 1000.0,
	       (unsigned long long)(atomic_load(&st.landed_bytes) / MiB),
	       LARGE_WRITERS, LARGE / KiB, SMALL_WRITERS, SMALL / KiB,
	       NR_SNAPS, nr_failed, atomic_load(&st.peak_sum),
	       atomic_load(&st.peak_slab), atomic_load(&st.peak_stack),
	       atomic_load(&st.peak_other),
	       atomic_load(&st.peak_vss_write) / 1024, bound);
	EXPECT_LE(atomic_load(&st.peak_sum), bound);
	EXPECT_EQ(NR_SNAPS, nr_failed + nr_active);
	/* The storm must overflow the newest, and never reach the oldest. */
	EXPECT_LE(1, nr_failed);
	EXPECT_EQ(VSS_STATE_ACTIVE, info[0].state) TH_LOG("%s", info[0].reason);
	for (k = 0; k < NR_SNAPS; k++) {
		TH_LOG("snapshot %2u: %s, %llu KiB stored%s%s", k,
		       info[k].state == VSS_STATE_ACTIVE ? "active" : "failed",
		       (unsigned long long)(info[k].storage_used / KiB),
		       info[k].has_reason ? ": " : "", info[k].reason);
		if (info[k].state != VSS_STATE_FAILED) {
			/* Copies go to the newest healthy one: failures are the newest. */
			EXPECT_EQ(k, nr_active > k ? k : nr_active)
				TH_LOG("snapshot %u is active under a failed one", k);
			EXPECT_EQ(0, verify_taken(&st, c[k].image[0], start[k],
						  end[k], self->why))
				TH_LOG("snapshot %u: %s", k, self->why);
			continue;
		}
		EXPECT_EQ(ENOSPC, info[k].err) TH_LOG("snapshot %u", k);
		EXPECT_TRUE(info[k].has_reason && info[k].reason[0]);
		EXPECT_TRUE(failed_event[k]) TH_LOG("no failed event for snapshot %u", k);
	}
	EXPECT_EQ(0, verify_stamps(st.fd, st.sectors, NULL, 2, self->why,
				   sizeof(self->why)))
		TH_LOG("origin: %s", self->why);
	for (k = 0; k < NR_SNAPS; k++)
		EXPECT_EQ(0, vss_delete_set(&self->nl, c[k].set_id, true));
	close(st.fd);
	free(st.sent);
	free(st.done);
}

TEST_HARNESS_MAIN
