// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the
 * checksum of the changed-block state file. Bit by bit, without a table:
 * state files are small and written rarely, so a table (and the shared
 * state or the 1 KiB literal it takes) buys nothing worth having.
 */
#include "internal.h"

/*
 * @crc is the value returned for the data before @data, 0 to start; so
 * vss_crc32c(vss_crc32c(0, a, n), b, m) is the CRC of a followed by b.
 */
uint32_t vss_crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	int bit;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return ~crc;
}
