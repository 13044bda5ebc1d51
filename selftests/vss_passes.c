// SPDX-License-Identifier: GPL-2.0
/*
 * vss_passes: a writer and a checker that make "point in time" visible.
 *
 *   vss_passes write DEV    overwrites DEV front to back, again and again;
 *                           every sector of pass P carries (sector, P)
 *   vss_passes check DEV    reads DEV and describes what it holds
 *
 * At any instant the device holds a prefix written by pass P and a suffix
 * of pass P - 1. An image taken at one instant must show exactly that
 * shape, with one boundary and every stamp intact, however much the
 * writer goes on writing afterwards.
 */
#include "vss_util.h"
#include <signal.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int do_write(const char *dev)
{
	const unsigned int batch = 128;
	int fd = open(dev, O_RDWR | O_DIRECT);
	void *buf = aligned_buf(batch * SECTOR);
	uint64_t sectors, pass, s;

	if (fd < 0 || !buf) {
		perror(dev);
		return 1;
	}
	sectors = dev_sectors(fd);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	for (pass = 1; !stop; pass++) {
		for (s = 0; s < sectors && !stop; s += batch) {
			unsigned int n = sectors - s < batch ? sectors - s : batch;

			if (write_stamps(fd, buf, s, n, pass)) {
				perror("write");
				return 1;
			}
		}
	}
	close(fd);
	return 0;
}

static int do_check(const char *dev)
{
	const unsigned int batch = 2048;
	int fd = open(dev, O_RDONLY | O_DIRECT);
	void *buf = aligned_buf(batch * SECTOR);
	uint64_t sectors, s, boundary = 0, first_pass = 0, last = 0;
	unsigned int changes = 0, torn = 0;

	if (fd < 0 || !buf) {
		perror(dev);
		return 1;
	}
	sectors = dev_sectors(fd);
	for (s = 0; s < sectors; s += batch) {
		unsigned int n = sectors - s < batch ? sectors - s : batch;

		if (pread(fd, buf, (size_t)n * SECTOR, s * SECTOR) != (ssize_t)n * SECTOR) {
			perror("read");
			return 1;
		}
		for (unsigned int i = 0; i < n; i++) {
			const struct stamp *st = (const void *)((char *)buf + i * SECTOR);

			if (stamp_sum(st) != st->sum || st->sector != s + i) {
				torn++;
				continue;
			}
			if (!first_pass)
				first_pass = last = st->seq;
			if (st->seq != last) {
				changes++;
				boundary = s + i;
				last = st->seq;
			}
		}
	}
	if (torn) {
		printf("%s: %u sectors torn or misplaced: NOT a point in time\n", dev, torn);
		return 1;
	}
	if (changes == 0) {
		printf("%s: all %llu sectors from pass %llu\n", dev,
		       (unsigned long long)sectors, (unsigned long long)first_pass);
		return 0;
	}
	if (changes == 1 && last + 1 == first_pass) {
		printf("%s: sectors 0-%llu from pass %llu, %llu-%llu from pass %llu: one instant\n",
		       dev, (unsigned long long)boundary - 1,
		       (unsigned long long)first_pass, (unsigned long long)boundary,
		       (unsigned long long)sectors - 1, (unsigned long long)last);
		return 0;
	}
	printf("%s: %u pass boundaries: NOT a point in time\n", dev, changes);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "write"))
		return do_write(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "check"))
		return do_check(argv[2]);
	fprintf(stderr, "usage: vss_passes write|check DEVICE\n");
	return 2;
}
