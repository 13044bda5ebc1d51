// SPDX-License-Identifier: GPL-2.0
/*
 * Ids: canonical text, full parsing, prefix matching and the shortest
 * unique prefix.
 */
#include <string.h>

#include "harness.h"
#include "libvss.h"

static struct vss_id id_of(const char *text)
{
	struct vss_id id;

	if (vss_id_parse(text, &id))
		memset(&id, 0xee, sizeof(id));
	return id;
}

static void match(const char *prefix, const struct vss_id *ids, size_t n,
		  int want_err, size_t want_index)
{
	size_t index = 999;
	int err = vss_id_prefix_match(prefix, ids, n, &index);

	if (!t_ok(err == want_err && (want_err || index == want_index),
		  "prefix \"%s\" -> %d/%zu", prefix, want_err, want_index))
		t_diag("got %d/%zu", err, index);
}

int main(void)
{
	const char *canonical = "3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8";
	struct vss_id ids[5], id;
	char text[VSS_ID_STRLEN];

	t_ok(vss_id_parse(canonical, &id) == 0, "parse canonical id");
	vss_id_format(&id, text);
	t_str_eq(text, canonical, "format gives the canonical text back");
	t_ok(vss_id_parse("3F2A1B2C4D5E4F6081728394A5B6C7D8", &id) == 0, "parse without dashes, upper case");
	vss_id_format(&id, text);
	t_str_eq(text, canonical, "case and dashes do not change the id");
	t_int_eq(id.bytes[0], 0x3f, "first byte is the first two digits");
	t_int_eq(id.bytes[15], 0xd8, "last byte is the last two digits");
	t_int_eq(vss_id_parse("3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d", &id), -EINVAL, "31 digits refused");
	t_int_eq(vss_id_parse("3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8a", &id), -EINVAL, "33 digits refused");
	t_int_eq(vss_id_parse("3f2a1b2c-4d5e-4f60-8172-8394a5b6c7dg", &id), -EINVAL, "non-hex refused");
	t_int_eq(vss_id_parse("3f2a-1b2c4d5e-4f60-8172-8394a5b6c7d8", &id), -EINVAL, "misplaced dash refused");
	t_int_eq(vss_id_parse("3f2a1b2c--4d5e4f6081728394a5b6c7d8", &id), -EINVAL, "double dash refused");
	t_int_eq(vss_id_parse("", &id), -EINVAL, "empty refused");
	t_int_eq(vss_id_parse(NULL, &id), -EINVAL, "NULL refused");

	ids[0] = id_of("3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8");
	ids[1] = id_of("3f2a9999-0000-4000-8000-000000000000");
	ids[2] = id_of("a0000000-0000-4000-8000-000000000001");
	ids[3] = id_of("3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8");	/* same set twice */
	ids[4] = id_of("a0000000-0000-4000-8000-000000000002");

	match("3f2a1", ids, 5, 0, 0);
	match("3F2A1B2C", ids, 5, 0, 0);
	match("3f2a1b2c-4d", ids, 5, 0, 0);
	match("3f2a1b2c4d", ids, 5, 0, 0);
	match(canonical, ids, 5, 0, 0);
	match("3f2a9", ids, 5, 0, 1);
	match("3f2a", ids, 5, -LIBVSS_EAMBIGUOUS, 0);
	match("3", ids, 5, -LIBVSS_EAMBIGUOUS, 0);
	match("a0000000-0000-4000-8000-00000000000", ids, 5, -LIBVSS_EAMBIGUOUS, 0);
	match("a0000000-0000-4000-8000-000000000002", ids, 5, 0, 4);
	match("b", ids, 5, -ENOENT, 0);
	match("3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d9", ids, 5, -ENOENT, 0);
	match("3f2a", ids, 0, -ENOENT, 0);
	match("", ids, 5, -EINVAL, 0);
	match("-", ids, 5, -EINVAL, 0);
	match("3f2a-", ids, 5, -EINVAL, 0);
	match("3f2a1b2c-", ids, 5, 0, 0);
	match("xyz", ids, 5, -EINVAL, 0);
	match("3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8-", ids, 5, -EINVAL, 0);
	match("3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d80", ids, 5, -EINVAL, 0);

	t_ok(vss_id_equal(&ids[0], &ids[3]) && !vss_id_equal(&ids[0], &ids[1]),
	     "id_equal");
	t_int_eq((long long)vss_id_unique_prefix_len(ids, 5, 8), 32,
		 "ids differing in the last digit need all 32");
	t_int_eq((long long)vss_id_unique_prefix_len(ids, 3, 1), 5,
		 "3f2a1 vs 3f2a9 need 5 digits");
	t_int_eq((long long)vss_id_unique_prefix_len(ids, 3, 8), 8, "at least the minimum");
	t_int_eq((long long)vss_id_unique_prefix_len(ids, 1, 8), 8, "one id: the minimum");
	t_int_eq((long long)vss_id_unique_prefix_len(ids, 0, 0), 1, "minimum is at least 1");
	t_int_eq((long long)vss_id_unique_prefix_len(ids, 0, 40), 32, "minimum is at most 32");
	ids[1] = ids[0];
	t_int_eq((long long)vss_id_unique_prefix_len(ids, 2, 8), 8,
		 "equal ids need no telling apart");
	return t_done();
}
