// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Snapshot and set ids: 16 raw bytes on the wire, a UUID in text, and any
 * unique prefix of that text on the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Hex digits before which the canonical form has a dash. */
static bool dash_allowed_after(size_t digits)
{
	return digits == 8 || digits == 12 || digits == 16 || digits == 20;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static unsigned int id_nibble(const struct vss_id *id, size_t i)
{
	uint8_t byte = id->bytes[i / 2];

	return i % 2 ? byte & 0xf : byte >> 4;
}

/*
 * Reads the hex digits of an id or id prefix. Dashes are accepted only
 * where the canonical form has them, so "3f2a-1b" is refused rather than
 * silently read as "3f2a1b".
 */
static int read_nibbles(const char *text, uint8_t nibbles[VSS_ID_HEX_DIGITS],
			size_t *count)
{
	size_t n = 0;
	const char *p;

	if (!text)
		return -EINVAL;
	for (p = text; *p; p++) {
		int v;

		if (*p == '-') {
			if (!dash_allowed_after(n) || (p > text && p[-1] == '-'))
				return -EINVAL;
			continue;
		}
		v = hex_value(*p);
		if (v < 0 || n == VSS_ID_HEX_DIGITS)
			return -EINVAL;
		nibbles[n++] = (uint8_t)v;
	}
	if (n == 0)
		return -EINVAL;
	*count = n;
	return 0;
}

VSS_EXPORT void vss_id_format(const struct vss_id *id, char out[VSS_ID_STRLEN])
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < VSS_ID_HEX_DIGITS; i++) {
		if (i && dash_allowed_after(i))
			out[o++] = '-';
		out[o++] = hex[id_nibble(id, i)];
	}
	out[o] = '\0';
}

VSS_EXPORT int vss_id_parse(const char *text, struct vss_id *out)
{
	uint8_t nibbles[VSS_ID_HEX_DIGITS];
	size_t n, i;
	int err;

	err = read_nibbles(text, nibbles, &n);
	if (err)
		return err;
	if (n != VSS_ID_HEX_DIGITS)
		return -EINVAL;
	for (i = 0; i < VSS_ID_LEN; i++)
		out->bytes[i] = (uint8_t)(nibbles[2 * i] << 4 | nibbles[2 * i + 1]);
	return 0;
}

VSS_EXPORT bool vss_id_equal(const struct vss_id *a, const struct vss_id *b)
{
	return memcmp(a->bytes, b->bytes, VSS_ID_LEN) == 0;
}

static bool has_prefix(const struct vss_id *id, const uint8_t *nibbles, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (id_nibble(id, i) != nibbles[i])
			return false;
	return true;
}

VSS_EXPORT int vss_id_prefix_match(const char *prefix, const struct vss_id *ids,
				   size_t count, size_t *index)
{
	uint8_t nibbles[VSS_ID_HEX_DIGITS];
	size_t n, i, found = count;
	int err;

	err = read_nibbles(prefix, nibbles, &n);
	if (err)
		return err;
	for (i = 0; i < count; i++) {
		if (!has_prefix(&ids[i], nibbles, n))
			continue;
		if (found == count)
			found = i;
		else if (!vss_id_equal(&ids[found], &ids[i]))
			return -LIBVSS_EAMBIGUOUS;
	}
	if (found == count)
		return -ENOENT;
	if (index)
		*index = found;
	return 0;
}

static int compare_ids(const void *a, const void *b)
{
	return memcmp(a, b, VSS_ID_LEN);
}

static size_t common_nibbles(const struct vss_id *a, const struct vss_id *b)
{
	size_t i;

	for (i = 0; i < VSS_ID_HEX_DIGITS; i++)
		if (id_nibble(a, i) != id_nibble(b, i))
			break;
	return i;
}

VSS_EXPORT size_t vss_id_unique_prefix_len(const struct vss_id *ids, size_t count,
					   size_t min_digits)
{
	struct vss_id *sorted;
	size_t i, need = min_digits;

	if (need < 1)
		need = 1;
	if (need > VSS_ID_HEX_DIGITS)
		need = VSS_ID_HEX_DIGITS;
	if (count < 2)
		return need;

	/*
	 * In sorted order the longest shared prefix of any two distinct ids
	 * is shared by some neighbours, so one pass over neighbours suffices.
	 */
	sorted = malloc(count * sizeof(*sorted));
	if (!sorted)
		return VSS_ID_HEX_DIGITS;
	memcpy(sorted, ids, count * sizeof(*sorted));
	qsort(sorted, count, sizeof(*sorted), compare_ids);
	for (i = 1; i < count; i++) {
		size_t common;

		if (vss_id_equal(&sorted[i - 1], &sorted[i]))
			continue;
		common = common_nibbles(&sorted[i - 1], &sorted[i]);
		if (common + 1 > need)
			need = common + 1;
	}
	free(sorted);
	return need;
}

int vss_id_get(const struct nlattr *attr, struct vss_id *out)
{
	if (!attr || nla_len(attr) != VSS_ID_LEN)
		return -EPROTO;
	memcpy(out->bytes, nla_data(attr), VSS_ID_LEN);
	return 0;
}
