// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Sizes as people write them, and as people read them.
 */
#include <stdio.h>

#include "internal.h"

static const char size_units[] = "KMGTPE";

static int unit_shift(char c)
{
	size_t i;

	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	for (i = 0; size_units[i]; i++)
		if (size_units[i] == c)
			return (int)(10 * (i + 1));
	return -1;
}

VSS_EXPORT int vss_parse_size(const char *text, uint64_t *out)
{
	const char *p = text;
	uint64_t value = 0;
	int shift = 0;

	if (!p || *p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned int digit = (unsigned int)(*p - '0');

		if (value > (UINT64_MAX - digit) / 10)
			return -EINVAL;
		value = value * 10 + digit;
	}
	if (*p) {
		shift = unit_shift(*p);
		if (shift < 0)
			return -EINVAL;
		p++;
		/* "KiB" is the same unit as "K"; "KB" is refused, not guessed. */
		if (*p && !((p[0] == 'i' || p[0] == 'I') &&
			    (p[1] == 'b' || p[1] == 'B') && !p[2]))
			return -EINVAL;
	}
	if (shift && value > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = value << shift;
	return 0;
}

VSS_EXPORT char *vss_format_size(uint64_t bytes, char *buf, size_t len)
{
	int unit = 0;
	unsigned int shift;
	uint64_t whole, tenths;

	while (unit < 6 && bytes >> (10 * (unit + 1)))
		unit++;
	if (unit == 0) {
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
		return buf;
	}
	shift = 10 * (unsigned int)unit;
	whole = bytes >> shift;
	if ((bytes & ((UINT64_C(1) << shift) - 1)) == 0) {
		snprintf(buf, len, "%llu%ciB", (unsigned long long)whole,
			 size_units[unit - 1]);
		return buf;
	}
	tenths = ((bytes & ((UINT64_C(1) << shift) - 1)) * 10) >> shift;
	snprintf(buf, len, "%llu.%llu%ciB", (unsigned long long)whole,
		 (unsigned long long)tenths, size_units[unit - 1]);
	return buf;
}
