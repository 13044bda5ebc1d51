// SPDX-License-Identifier: GPL-2.0
/*
 * Snapshot sets at their limits: 64 devices at one instant, the hold limit
 * aborting a commit that cannot drain, devices that must be refused, and a
 * failing diff storage.
 *
 * Disks: 0: storage (256M)  1: unused (64M)  2: failing storage (64M)
 *        3: origin (64M)
 * Also makes loop devices, a zoned and a slow null_blk disk, and dm
 * targets of its own.
 */
#include "vss_nl.h"
#include "vss_util.h"
#include "vss_harness.h"
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define LOOPS 64

static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int nr_snapshots(struct vss_nl *nl)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg m;
	const struct nlmsghdr *nlh;
	size_t len = 0;
	int n = 0;

	vss_msg_init(nl, &m, VSS_CMD_GET_SNAPSHOT, NLM_F_DUMP);
	if (vss_nl_call(nl, &m, reply, &len))
		return -1;
	for (nlh = (const void *)reply; len >= NLMSG_HDRLEN &&
	     NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len))
		n++;
	return n;
}

FIXTURE(set) {
	struct vss_nl nl;
};

FIXTURE_SETUP(set)
{
	if (!scratch_disk(3))
		SKIP(return, "needs four scratch disks (run under scripts/vm-run)");
	ASSERT_EQ(0, vss_nl_open(&self->nl));
}

FIXTURE_TEARDOWN(set)
{
	int left = nr_snapshots(&self->nl);

	EXPECT_EQ(0, left) TH_LOG("%d snapshots left over", left);
	vss_untrack_all(&self->nl);
	vss_nl_close(&self->nl);
}

TEST_F(set, sixty_four_devices_one_instant)
{
	static char paths[LOOPS + 1][64];
	const char *devs[LOOPS + 1];
	struct vss_created c;
	void *buf = aligned_buf(64 * SECTOR);
	char why[256];
	int i, fd;

	ASSERT_EQ(0, sh("modprobe loop"));
	for (i = 0; i <= LOOPS; i++) {
		char cmd[128];
		FILE *p;

		snprintf(cmd, sizeof(cmd),
			 "truncate -s 4M /tmp/loop%d.img && losetup -f --show /tmp/loop%d.img",
			 i, i);
		p = popen(cmd, "r");
		ASSERT_NE(NULL, p);
		ASSERT_NE(NULL, fgets(paths[i], sizeof(paths[i]), p));
		pclose(p);
		paths[i][strcspn(paths[i], "\n")] = 0;
		devs[i] = paths[i];
		fd = open(paths[i], O_RDWR | O_DIRECT);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, fill_stamps(fd, 4 << 11, 1));
		close(fd);
	}

	/* 65 devices: too many, and nothing is created. */
	EXPECT_EQ(-E2BIG, vss_create(&self->nl, devs, LOOPS + 1, scratch_disk(0),
				     0, 0, VSS_CREATE_NO_FREEZE, NULL));
	EXPECT_EQ(0, nr_snapshots(&self->nl));

	ASSERT_EQ(0, vss_create(&self->nl, devs, LOOPS, scratch_disk(0), 0, 0,
				VSS_CREATE_NO_FREEZE, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	EXPECT_EQ(LOOPS, c.nr);
	TH_LOG("64 devices held for %llu us", (unsigned long long)c.hold_us);
	for (i = 0; i < LOOPS; i++) {
		fd = open(paths[i], O_RDWR | O_DIRECT);
		ASSERT_EQ(0, write_stamps(fd, buf, 0, 64, 2));
		close(fd);
	}
	for (i = 0; i < (int)c.nr; i++) {
		fd = open(c.image[i], O_RDONLY | O_DIRECT);
		ASSERT_LE(0, fd);
		EXPECT_EQ(0, verify_stamps(fd, 4 << 11, NULL, 1, why, sizeof(why)))
			TH_LOG("%s: %s", c.image[i], why);
		close(fd);
	}
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	/* Tracking outlives the snapshots and keeps the devices open. */
	vss_untrack_all(&self->nl);
	for (i = 0; i <= LOOPS; i++)
		sh("losetup -d %s; rm -f /tmp/loop%d.img", paths[i], i);
	free(buf);
}

/*
 * A memory-backed null_blk disk whose every I/O takes two seconds. Newer
 * kernels name it after its configfs directory, older ones nullbN.
 */
static const char *slow_disk_up(void)
{
	if (sh("rmmod null_blk 2>/dev/null; modprobe null_blk nr_devices=0 && "
	       "cd /sys/kernel/config/nullb && mkdir -p slownull && cd slownull && "
	       "echo 64 > size && echo 1 > memory_backed && echo 2 > irqmode && "
	       "echo 2000000000 > completion_nsec && echo 1 > power"))
		return NULL;
	if (!access("/dev/slownull", F_OK))
		return "/dev/slownull";
	return "/dev/nullb0";
}

static void slow_disk_down(void)
{
	sh("echo 0 > /sys/kernel/config/nullb/slownull/power; rmdir /sys/kernel/config/nullb/slownull; rmmod null_blk");
}

static pid_t write_in_background(const char *dev, uint64_t sector, uint64_t seq)
{
	pid_t pid = fork();

	if (!pid) {
		void *buf = aligned_buf(8 * SECTOR);
		int fd = open(dev, O_RDWR | O_DIRECT);

		_exit(fd < 0 || write_stamps(fd, buf, sector, 8, seq) ? 1 : 0);
	}
	return pid;
}

static int check_sectors(const char *dev, uint64_t sector, uint64_t seq)
{
	void *buf = aligned_buf(8 * SECTOR);
	int fd = open(dev, O_RDONLY | O_DIRECT), bad = 0;

	if (fd < 0 || pread(fd, buf, 8 * SECTOR, sector * SECTOR) != 8 * SECTOR)
		bad = -1;
	for (int i = 0; !bad && i < 8; i++)
		bad = stamp_check((char *)buf + i * SECTOR, sector + i, seq);
	close(fd);
	free(buf);
	return bad;
}

/*
 * A write in flight when a device gets its first snapshot completes
 * before the commit, so the image shows it and never changes later. A
 * write admitted later that cannot drain within the hold limit aborts the
 * commit, which changes nothing and loses no write.
 */
TEST_F(set, in_flight_writes_and_the_hold_limit)
{
	const char *slow = slow_disk_up();
	const char *devs[] = { slow };
	struct vss_created c;
	struct vss_msg m;
	struct stat st;
	int status, fd;
	void *buf = aligned_buf(64 * SECTOR);
	pid_t pid;

	if (!slow)
		SKIP(return, "cannot make a slow null_blk disk");
	fd = open(slow, O_RDWR | O_DIRECT);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, write_stamps(fd, buf, 0, 64, 1));
	close(fd);

	pid = write_in_background(slow, 8, 5);
	usleep(500000);	/* in flight for 1.5 s more */
	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, scratch_disk(0), 0, 0,
				VSS_CREATE_NO_FREEZE, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, check_sectors(c.image[0], 8, 5))
		TH_LOG("the image misses a write completed before the commit");
	pid = write_in_background(slow, 8, 6);
	waitpid(pid, &status, 0);
	EXPECT_EQ(0, check_sectors(c.image[0], 8, 5)) TH_LOG("the image changed");

	/* Admitted now, this write takes seconds: the next commit times out. */
	pid = write_in_background(slow, 16, 7);
	usleep(500000);
	ASSERT_EQ(0, stat(slow, &st));
	vss_msg_init(&self->nl, &m, VSS_CMD_CREATE_SET, 0);
	vss_msg_nest_start(&m, VSS_A_DEVICES);
	vss_msg_put_dev(&m, VSS_A_DEVICE, st.st_rdev);
	vss_msg_nest_end(&m);
	vss_msg_put_str(&m, VSS_A_STORAGE_PATH, scratch_disk(0));
	vss_msg_put_u32(&m, VSS_A_FLAGS, VSS_CREATE_NO_FREEZE);
	vss_msg_put_u32(&m, VSS_A_HOLD_LIMIT_MS, 300);
	EXPECT_EQ(-ETIMEDOUT, vss_nl_call(&self->nl, &m, NULL, NULL));
	TH_LOG("error: %s", self->nl.errmsg);
	EXPECT_EQ(1, nr_snapshots(&self->nl));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("the held write failed");
	EXPECT_EQ(0, check_sectors(slow, 16, 7)) TH_LOG("the write did not land");
	EXPECT_EQ(0, check_sectors(c.image[0], 16, 1));
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	vss_untrack_all(&self->nl);
	slow_disk_down();
	free(buf);
}

TEST_F(set, zoned_device_refused)
{
	const char *devs[] = { "/dev/nullb0" };

	if (sh("rmmod null_blk 2>/dev/null; modprobe null_blk nr_devices=1 zoned=1 gb=1 2>/dev/null"))
		SKIP(return, "null_blk cannot make a zoned device here");
	EXPECT_EQ(-EOPNOTSUPP, vss_create(&self->nl, devs, 1, scratch_disk(0), 0,
					  0, VSS_CREATE_NO_FREEZE, NULL));
	EXPECT_STREQ("zoned devices are not supported", self->nl.errmsg);
	EXPECT_NE(0, self->nl.err_offset) TH_LOG("the device was not blamed");
	sh("rmmod null_blk");
}

TEST_F(set, image_of_an_image_refused)
{
	const char *devs[] = { scratch_disk(3) };
	const char *img[1];
	struct vss_created c;

	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, scratch_disk(0), 0, 0,
				VSS_CREATE_NO_FREEZE, &c));
	img[0] = c.image[0];
	EXPECT_EQ(-EOPNOTSUPP, vss_create(&self->nl, img, 1, "/tmp", 1 << 24, 0,
					  VSS_CREATE_NO_FREEZE, NULL));
	EXPECT_EQ(1, nr_snapshots(&self->nl));
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
}

/* Storage that fails writes fails the snapshot, never the origin. */
TEST_F(set, failing_storage_fails_the_snapshot_not_the_origin)
{
	const char *flaky = "/dev/mapper/vss-flaky";
	const char *devs[] = { scratch_disk(3) };
	struct vss_created c;
	void *buf = aligned_buf(64 * SECTOR);
	uint64_t sectors;
	char why[256];
	int fd, err = 0;

	ASSERT_EQ(0, sh("dmsetup create vss-flaky --table \"0 $(blockdev --getsz %s) flakey %s 0 0 60 1 error_writes\" && dmsetup mknodes",
			scratch_disk(2), scratch_disk(2)));
	fd = open(devs[0], O_RDWR | O_DIRECT);
	ASSERT_LE(0, fd);
	sectors = dev_sectors(fd);
	ASSERT_EQ(0, fill_stamps(fd, sectors, 1));
	ASSERT_EQ(0, vss_create(&self->nl, devs, 1, flaky, 0, 0,
				VSS_CREATE_NO_FREEZE, &c))
		TH_LOG("create: %s", self->nl.errmsg);
	ASSERT_EQ(0, write_stamps(fd, buf, 100, 64, 2));
	EXPECT_EQ(VSS_STATE_FAILED, vss_snap_state(&self->nl, c.snap_id[0], &err));
	EXPECT_EQ(EIO, err);
	/* The origin has every write. */
	ASSERT_EQ(64 * SECTOR, pread(fd, buf, 64 * SECTOR, 100 * SECTOR));
	for (int i = 0; i < 64; i++)
		EXPECT_EQ(0, stamp_check((char *)buf + i * SECTOR, 100 + i, 2));
	EXPECT_EQ(0, verify_stamps(fd, 100, NULL, 1, why, sizeof(why)));
	close(fd);
	/* The image reads fail rather than lie. */
	fd = open(c.image[0], O_RDONLY | O_DIRECT);
	EXPECT_GT(0, pread(fd, buf, 4096, 0));
	close(fd);
	EXPECT_EQ(0, vss_delete_set(&self->nl, c.set_id, false));
	sh("dmsetup remove vss-flaky");
	free(buf);
}

TEST_HARNESS_MAIN
