/* SPDX-License-Identifier: GPL-2.0 */
/* Device helpers shared by the selftests that move data. */
#ifndef VSS_SELFTEST_UTIL_H
#define VSS_SELFTEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "stamp.h"

/* The n-th scratch disk the VM harness attached, or NULL. */
static inline const char *scratch_disk(unsigned int n)
{
	static char disks[16][64];
	static unsigned int nr_disks;
	const char *env = getenv("VSS_DISKS");

	if (!nr_disks && env) {
		char copy[1024], *tok, *save;

		snprintf(copy, sizeof(copy), "%s", env);
		for (tok = strtok_r(copy, " ", &save); tok && nr_disks < 16;
		     tok = strtok_r(NULL, " ", &save))
			snprintf(disks[nr_disks++], sizeof(disks[0]), "%s", tok);
	}
	return n < nr_disks ? disks[n] : NULL;
}

static inline uint64_t dev_sectors(int fd)
{
	uint64_t bytes = 0;

	if (ioctl(fd, BLKGETSIZE64, &bytes))
		return 0;
	return bytes / SECTOR;
}

static inline void *aligned_buf(size_t bytes)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, bytes))
		return NULL;
	return p;
}

/*
 * Writes stamps of @seq for device sectors [first, first + nr), at sector
 * @base + first of @fd (a device that starts @base sectors into @fd).
 */
static inline int write_stamps_at(int fd, void *buf, uint64_t base,
				  uint64_t first, unsigned int nr, uint64_t seq)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		stamp_make((char *)buf + i * SECTOR, first + i, seq);
	if (pwrite(fd, buf, (size_t)nr * SECTOR, (base + first) * SECTOR) !=
	    (ssize_t)nr * SECTOR)
		return -errno ?: -EIO;
	return 0;
}

/* Writes stamps of @seq to sectors [first, first + nr) with one pwrite. */
static inline int write_stamps(int fd, void *buf, uint64_t first,
			       unsigned int nr, uint64_t seq)
{
	return write_stamps_at(fd, buf, 0, first, nr, seq);
}

/* Fills the whole device with stamps of @seq. */
static inline int fill_stamps(int fd, uint64_t sectors, uint64_t seq)
{
	const unsigned int batch = 2048;
	void *buf = aligned_buf(batch * SECTOR);
	uint64_t s;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (s = 0; s < sectors && !ret; s += batch)
		ret = write_stamps(fd, buf, s,
				   sectors - s < batch ? sectors - s : batch,
				   seq);
	free(buf);
	return ret;
}

/*
 * Checks every sector of a device that starts at sector @base of @fd
 * against @expect (a sequence per sector, or @constant when @expect is
 * NULL). Returns the number of bad sectors and describes the first in @why.
 */
static inline long verify_stamps_at(int fd, uint64_t base, uint64_t sectors,
				    const uint16_t *expect, uint64_t constant,
				    char *why, size_t why_len)
{
	const unsigned int batch = 2048;
	void *buf = aligned_buf(batch * SECTOR);
	long bad = 0;
	uint64_t s;

	if (!buf)
		return -ENOMEM;
	why[0] = 0;
	for (s = 0; s < sectors; s += batch) {
		unsigned int n = sectors - s < batch ? sectors - s : batch;

		if (pread(fd, buf, (size_t)n * SECTOR, (base + s) * SECTOR) !=
		    (ssize_t)n * SECTOR) {
			snprintf(why, why_len, "read at sector %llu failed: %s",
				 (unsigned long long)(base + s), strerror(errno));
			free(buf);
			return -EIO;
		}
		for (unsigned int i = 0; i < n; i++) {
			uint64_t want = expect ? expect[s + i] : constant;
			const struct stamp *st = (const void *)((char *)buf + i * SECTOR);
			int r = stamp_check(st, s + i, want);

			if (r && !bad++)
				snprintf(why, why_len,
					 "sector %llu: %s (want seq %llu, has sector %llu seq %llu)",
					 (unsigned long long)(s + i),
					 r == -1 ? "bad checksum" :
					 r == -2 ? "misplaced" : "wrong sequence",
					 (unsigned long long)want,
					 (unsigned long long)st->sector,
					 (unsigned long long)st->seq);
		}
	}
	free(buf);
	return bad;
}

static inline long verify_image_at(const char *image, uint64_t base,
				   uint64_t sectors, const uint16_t *expect,
				   uint64_t constant, char *why)
{
	int fd = open(image, O_RDONLY | O_DIRECT);
	long bad;

	if (fd < 0) {
		snprintf(why, 256, "open %s: %s", image, strerror(errno));
		return -1;
	}
	bad = verify_stamps_at(fd, base, sectors, expect, constant, why, 256);
	close(fd);
	return bad;
}

static inline long verify_stamps(int fd, uint64_t sectors,
				 const uint16_t *expect, uint64_t constant,
				 char *why, size_t why_len)
{
	return verify_stamps_at(fd, 0, sectors, expect, constant, why, why_len);
}

/* verify_stamps() of an image device, opened for the purpose. */
static inline long verify_image(const char *image, uint64_t sectors,
				const uint16_t *expect, uint64_t constant,
				char *why)
{
	return verify_image_at(image, 0, sectors, expect, constant, why);
}

static inline uint64_t rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

#endif /* VSS_SELFTEST_UTIL_H */
