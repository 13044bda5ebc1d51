/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sector stamps: every 512-byte sector written by the tests carries its
 * own number, a sequence number and a checksum over the rest, so any
 * sector read back can be checked on its own: misplaced, stale or torn
 * data cannot pass for the expected sector.
 */
#ifndef VSS_SELFTEST_STAMP_H
#define VSS_SELFTEST_STAMP_H

#include <stdint.h>
#include <string.h>

#define SECTOR 512

struct stamp {
	uint64_t sector;
	uint64_t seq;
	uint64_t salt;
	uint8_t fill[SECTOR - 4 * 8];
	uint64_t sum;
};

static inline uint64_t stamp_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static inline uint64_t stamp_sum(const struct stamp *s)
{
	const uint64_t *w = (const uint64_t *)s;
	uint64_t sum = 0x5eed;
	unsigned int i;

	for (i = 0; i < SECTOR / 8 - 1; i++)
		sum = stamp_mix(sum ^ w[i]);
	return sum;
}

static inline void stamp_make(void *buf, uint64_t sector, uint64_t seq)
{
	struct stamp *s = buf;
	uint64_t x = stamp_mix(sector * 31 + seq);
	unsigned int i;

	s->sector = sector;
	s->seq = seq;
	s->salt = x;
	for (i = 0; i < sizeof(s->fill); i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		s->fill[i] = x >> 56;
	}
	s->sum = stamp_sum(s);
}

/* 0 if @buf is a good stamp of @sector with sequence @seq. */
static inline int stamp_check(const void *buf, uint64_t sector, uint64_t seq)
{
	const struct stamp *s = buf;

	if (s->sum != stamp_sum(s))
		return -1;	/* torn or garbage */
	if (s->sector != sector)
		return -2;	/* misplaced */
	if (s->seq != seq)
		return -3;	/* stale or too new */
	return 0;
}

#endif /* VSS_SELFTEST_STAMP_H */
