// SPDX-License-Identifier: GPL-2.0
/*
 * What vssctl prints: the JSON shapes documented in vssctl(8), the tables,
 * monitor lines, times, error messages and exit codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "libvss/internal.h"
#include "output.h"

/* 2023-11-14T22:13:20Z plus a fraction. */
#define TEST_NS (UINT64_C(1700000000) * 1000000000u + 123456789u)

static void make_snapshot(struct vss_snapshot_info *s, const char *id,
			  const char *set, uint32_t minor, bool failed)
{
	memset(s, 0, sizeof(*s));
	vss_id_parse(id, &s->id);
	vss_id_parse(set, &s->set_id);
	s->origin = (struct vss_device){ .major = 252, .minor = minor };
	snprintf(s->origin.name, sizeof(s->origin.name), "vd%c", 'a' + (int)(minor / 16));
	s->image = (struct vss_device){ .major = 251, .minor = minor / 16, .name = "" };
	snprintf(s->image.name, sizeof(s->image.name), "vss%u", minor / 16);
	s->index = 1;
	s->created_ns = TEST_NS;
	s->state = failed ? VSS_STATE_FAILED : VSS_STATE_ACTIVE;
	s->error = failed ? ENOSPC : 0;
	if (failed)
		snprintf(s->reason, sizeof(s->reason), "storage full");
	s->chunk_size = 65536;
	s->storage_path = (char *)"/var/lib/vss";
	s->storage_kind = VSS_STORAGE_TMPFILE;
	s->storage_used = 12 * 1024 * 1024;
	s->storage_size = 16 * 1024 * 1024;
	s->storage_limit = UINT64_C(1) << 30;
	s->hold_us = 1234;
}

/* Checks that @obj has exactly @keys, each of the given json type. */
static void check_shape(struct json_object *obj, const char *what,
			const char *const *keys, const enum json_type *types, size_t n)
{
	size_t i, count = 0;
	bool all = true;

	json_object_object_foreach(obj, key, val) {
		(void)key;
		(void)val;
		count++;
	}
	for (i = 0; i < n; i++) {
		struct json_object *v;

		if (!json_object_object_get_ex(obj, keys[i], &v)) {
			t_diag("%s: key %s missing", what, keys[i]);
			all = false;
		} else if (json_object_get_type(v) != types[i]) {
			t_diag("%s: key %s is %s, want %s", what, keys[i],
			       json_type_to_name(json_object_get_type(v)),
			       json_type_to_name(types[i]));
			all = false;
		}
	}
	t_ok(all && count == n, "%s: keys and types as documented", what);
	if (count != n)
		t_diag("%zu keys, want %zu", count, n);
}

static const char *get_string(struct json_object *obj, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(obj, key, &v) ? json_object_get_string(v) : NULL;
}

static void test_json_snapshot(void)
{
	static const char *const keys[] = {
		"id", "set_id", "origin", "image", "index", "created_ns", "created",
		"state", "errno", "error", "reason", "chunk_size", "label", "storage",
		"hold_us", "open_count", "cbt_point",
	};
	static const enum json_type active_types[] = {
		json_type_string, json_type_string, json_type_object, json_type_object,
		json_type_int, json_type_int, json_type_string, json_type_string,
		json_type_int, json_type_null, json_type_null, json_type_int,
		json_type_null, json_type_object, json_type_int, json_type_int,
		json_type_string,
	};
	static const enum json_type failed_types[] = {
		json_type_string, json_type_string, json_type_object, json_type_object,
		json_type_int, json_type_int, json_type_string, json_type_string,
		json_type_int, json_type_string, json_type_string, json_type_int,
		json_type_string, json_type_object, json_type_int, json_type_int,
		json_type_null,
	};
	static const char *const device_keys[] = { "major", "minor", "name", "path" };
	static const enum json_type device_types[] = {
		json_type_int, json_type_int, json_type_string, json_type_string,
	};
	static const char *const storage_keys[] = { "path", "kind", "used", "size", "limit" };
	static const enum json_type storage_types[] = {
		json_type_string, json_type_string, json_type_int, json_type_int, json_type_int,
	};
	struct vss_snapshot_info s;
	struct json_object *obj, *sub, *v;

	make_snapshot(&s, "3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8",
		      "9c1d0e2f-0000-4000-8000-000000000001", 16, false);
	s.has_cbt_point = true;
	vss_id_parse("9e000000-0000-4000-8000-0000000000aa", &s.cbt_point.generation);
	s.cbt_point.seq = 12;
	obj = vssctl_json_snapshot(&s);
	check_shape(obj, "active snapshot", keys, active_types, 17);
	t_str_eq(get_string(obj, "cbt_point"), "9e000000-0000-4000-8000-0000000000aa:12",
		 "cbt_point is GENERATION:SEQ");
	t_str_eq(get_string(obj, "id"), "3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8",
		 "id is the full canonical id");
	t_str_eq(get_string(obj, "created"), "2023-11-14T22:13:20.123456789Z",
		 "created is ISO 8601 UTC with nanoseconds");
	t_ok(json_object_object_get_ex(obj, "created_ns", &v) &&
	     json_object_get_uint64(v) == TEST_NS, "created_ns is the exact integer");
	t_str_eq(get_string(obj, "state"), "active", "state name");
	json_object_object_get_ex(obj, "origin", &sub);
	check_shape(sub, "device", device_keys, device_types, 4);
	t_str_eq(get_string(sub, "path"), "/dev/vdb", "device path");
	json_object_object_get_ex(obj, "storage", &sub);
	check_shape(sub, "storage", storage_keys, storage_types, 5);
	t_str_eq(get_string(sub, "kind"), "tmpfile", "storage kind name");
	t_ok(json_object_object_get_ex(sub, "limit", &v) &&
	     json_object_get_uint64(v) == UINT64_C(1) << 30, "limit in bytes");
	json_object_put(obj);

	make_snapshot(&s, "3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8",
		      "9c1d0e2f-0000-4000-8000-000000000001", 16, true);
	snprintf(s.label, sizeof(s.label), "nightly");
	s.image.name[0] = '\0';
	obj = vssctl_json_snapshot(&s);
	check_shape(obj, "failed snapshot", keys, failed_types, 17);
	t_str_eq(get_string(obj, "error"), "ENOSPC", "error name");
	t_str_eq(get_string(obj, "reason"), "storage full", "reason");
	json_object_object_get_ex(obj, "image", &sub);
	t_ok(json_object_object_get_ex(sub, "name", &v) && v == NULL &&
	     json_object_object_get_ex(sub, "path", &v) && v == NULL,
	     "an unnamed device has null name and path");
	json_object_put(obj);

	obj = vssctl_json_snapshot_array(&s, 1);
	t_ok(json_object_is_type(obj, json_type_array) &&
	     json_object_array_length(obj) == 1, "list JSON is an array");
	json_object_put(obj);
}

static void test_json_event(void)
{
	static const char *const keys[] = {
		"event", "type", "time_ns", "time", "id", "set_id", "origin", "errno",
		"error", "reason", "storage_used", "storage_limit", "cbt",
	};
	static const enum json_type failed_types[] = {
		json_type_string, json_type_int, json_type_int, json_type_string,
		json_type_string, json_type_string, json_type_object, json_type_int,
		json_type_string, json_type_string, json_type_null, json_type_null,
		json_type_null,
	};
	static const enum json_type storage_types[] = {
		json_type_string, json_type_int, json_type_int, json_type_string,
		json_type_null, json_type_string, json_type_null, json_type_int,
		json_type_null, json_type_null, json_type_int, json_type_int,
		json_type_null,
	};
	struct vss_event_info ev = {
		.type = VSS_EVENT_SNAPSHOT_FAILED, .received_ns = TEST_NS,
		.present = VSS_EVENT_HAS_SNAP_ID | VSS_EVENT_HAS_SET_ID |
			   VSS_EVENT_HAS_ORIGIN | VSS_EVENT_HAS_ERROR,
		.origin = { .major = 252, .minor = 16, .name = "vdb" },
		.error = ENOSPC, .reason = "storage \"full\"",
	};
	struct json_object *obj;
	char line[512];

	obj = vssctl_json_event(&ev);
	check_shape(obj, "failure event", keys, failed_types, 13);
	t_str_eq(get_string(obj, "event"), "snapshot-failed", "event name");
	t_str_eq(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
					       JSON_C_TO_STRING_NOSLASHESCAPE) ?
		 strstr(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN),
			"\"reason\"") : NULL,
		 "\"reason\":\"storage \\\"full\\\"\",\"storage_used\":null,\"storage_limit\":null,"
		 "\"cbt\":null}",
		 "quotes in JSON strings escaped, absent values null");
	json_object_put(obj);

	vssctl_format_event(&ev, line, sizeof(line));
	t_str_eq(line, "2023-11-14T22:13:20.123+00:00 snapshot-failed "
		 "id=00000000-0000-0000-0000-000000000000 "
		 "set=00000000-0000-0000-0000-000000000000 "
		 "origin=/dev/vdb(252:16) error=ENOSPC reason=\"storage \\\"full\\\"\"",
		 "monitor line of a failure");

	ev = (struct vss_event_info){
		.type = VSS_EVENT_STORAGE_LOW, .received_ns = TEST_NS,
		.present = VSS_EVENT_HAS_SET_ID | VSS_EVENT_HAS_STORAGE,
		.storage_used = 7 * (UINT64_C(1) << 27), .storage_limit = UINT64_C(1) << 30,
	};
	obj = vssctl_json_event(&ev);
	check_shape(obj, "storage event", keys, storage_types, 13);
	json_object_put(obj);
	vssctl_format_event(&ev, line, sizeof(line));
	t_str_eq(line, "2023-11-14T22:13:20.123+00:00 storage-low "
		 "set=00000000-0000-0000-0000-000000000000 used=896MiB limit=1GiB",
		 "monitor line of a storage event");
	vssctl_format_event(&ev, line, 24);
	t_int_eq((long long)strlen(line), 23, "monitor line truncated to the buffer");
}

static char *capture(FILE *f)
{
	long len;
	char *text;

	fflush(f);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	if (fread(text, 1, (size_t)len, f) != (size_t)len)
		text[0] = '\0';
	return text;
}

static void test_table(void)
{
	struct vss_snapshot_info s[2];
	FILE *f = tmpfile();
	char *text;

	make_snapshot(&s[0], "3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8",
		      "9c1d0e2f-0000-4000-8000-000000000001", 16, false);
	make_snapshot(&s[1], "3f2a1b2c-9999-4f60-8172-8394a5b6c7d8",
		      "9c1d0e2f-0000-4000-8000-000000000001", 32, true);
	snprintf(s[1].label, sizeof(s[1].label), "bad\tlabel");
	s[1].storage_limit = 0;
	vssctl_print_snapshot_table(f, s, 2);
	text = capture(f);
	t_str_eq(text,
		 "ID          SET       ORIGIN    IMAGE      CREATED              USED   LIMIT  LABEL      STATE\n"
		 "3f2a1b2c-4  9c1d0e2f  /dev/vdb  /dev/vss1  2023-11-14 22:13:20  12MiB  1GiB   -          active\n"
		 "3f2a1b2c-9  9c1d0e2f  /dev/vdc  /dev/vss2  2023-11-14 22:13:20  12MiB  -      bad?label  failed: storage full (ENOSPC)\n",
		 "table: ids shortened but unique, control characters replaced");
	free(text);
	fclose(f);

	f = tmpfile();
	vssctl_print_snapshot_details(f, &s[1]);
	text = capture(f);
	t_contains(text, "id:             3f2a1b2c-9999-4f60-8172-8394a5b6c7d8\n", "show: full id");
	t_contains(text, "origin:         /dev/vdc (252:32)\n", "show: origin with numbers");
	t_contains(text, "created:        2023-11-14 22:13:20.123456789 +0000\n",
		   "show: precise local time");
	t_contains(text, "state:          failed: storage full (ENOSPC)\n", "show: state");
	t_contains(text, "storage used:   12MiB (12582912 bytes)\n", "show: sizes with bytes");
	t_contains(text, "label:          bad?label\n", "show: label sanitized");
	free(text);
	fclose(f);
}

static char *run_report(const struct vss_handle *h, int err, const char *command,
			const char *object, const char *not_found, int *code)
{
	struct vssctl ctx = { .command = command };
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	char *text;

	fflush(stderr);
	dup2(fileno(f), STDERR_FILENO);
	*code = vssctl_report(&ctx, h, err, object, not_found);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	fseek(f, 0, SEEK_END);
	text = capture(f);
	fclose(f);
	return text;
}

static void test_messages_and_codes(void)
{
	static const struct { int err; int code; } codes[] = {
		{ 0, 0 }, { -EIO, 1 }, { -ETIMEDOUT, 1 }, { -EOPNOTSUPP, 1 },
		{ -E2BIG, 1 }, { -LIBVSS_EPROTOCOL, 1 }, { -EINVAL, 2 }, { -ERANGE, 2 },
		{ -ENOTBLK, 2 }, { -LIBVSS_ENOMODULE, 3 }, { -EPERM, 4 }, { -EACCES, 4 },
		{ -ENOENT, 5 }, { -ENODEV, 5 }, { -EBUSY, 6 }, { -LIBVSS_EAMBIGUOUS, 7 },
		{ -ENOSPC, 8 }, { -EXDEV, 8 }, { EBUSY, 6 }, { -LIBVSS_ECBT_STALE, 9 },
		{ -LIBVSS_ECBT_TOO_OLD, 9 }, { -EALREADY, 10 }, { -EBADMSG, 1 },
	};
	struct vss_handle *h = calloc(1, sizeof(*h));
	char *text;
	size_t i;
	int code;
	bool all = true;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (vssctl_exit_code(codes[i].err) != codes[i].code) {
			t_diag("errno %d -> %d, want %d", codes[i].err,
			       vssctl_exit_code(codes[i].err), codes[i].code);
			all = false;
		}
	t_ok(all, "exit code of every errno class");

	text = run_report(NULL, -LIBVSS_ENOMODULE, "list", NULL, NULL, &code);
	t_str_eq(text, "vssctl: the vss kernel module is not loaded (modprobe vss)\n",
		 "module not loaded message");
	t_int_eq(code, 3, "... exit 3");
	free(text);

	text = run_report(NULL, -EPERM, "create", NULL, NULL, &code);
	t_str_eq(text, "vssctl: create: permission denied (need CAP_SYS_ADMIN)\n",
		 "permission message names the capability");
	t_int_eq(code, 4, "... exit 4");
	free(text);

	text = run_report(NULL, -ENOENT, "show", "3f2a", "no such snapshot", &code);
	t_str_eq(text, "vssctl: 3f2a: no such snapshot\n", "unknown id message");
	t_int_eq(code, 5, "... exit 5");
	free(text);

	vss_error_set(h, -EBUSY, "/dev/vdb", "device is already in a snapshot set being created");
	text = run_report(h, -EBUSY, "create", NULL, NULL, &code);
	t_str_eq(text, "vssctl: /dev/vdb: device is already in a snapshot set being created (EBUSY)\n",
		 "kernel message about the blamed device");
	t_int_eq(code, 6, "... exit 6");
	free(text);

	vss_error_set(h, -LIBVSS_EAMBIGUOUS, "3f", "ambiguous id prefix: matches a and b");
	text = run_report(h, -LIBVSS_EAMBIGUOUS, "show", "3f", NULL, &code);
	t_str_eq(text, "vssctl: 3f: ambiguous id prefix: matches a and b\n", "ambiguity message");
	t_int_eq(code, 7, "... exit 7");
	free(text);

	vss_error_clear(h);
	text = run_report(h, -ENOSPC, "create", NULL, NULL, &code);
	t_str_eq(text, "vssctl: create: No space left on device (ENOSPC)\n",
		 "bare errno: the command, strerror and the name");
	t_int_eq(code, 8, "... exit 8");
	free(text);

	vss_error_clear(h);
	text = run_report(h, -EALREADY, "track", "/dev/vdb", NULL, &code);
	t_str_eq(text, "vssctl: /dev/vdb: already tracked (EALREADY)\n",
		 "EALREADY without a message: already tracked");
	t_int_eq(code, 10, "... exit 10");
	free(text);

	text = run_report(h, -4095, "create", NULL, NULL, &code);
	t_contains(text, "(errno 4095)", "unnamed errno shown by number");
	free(text);
	free(h);

	t_str_eq(vss_errno_name(-EXDEV), "EXDEV", "errno name of a negative value");
	t_str_eq(vss_errno_name(100000), NULL, "no name past the table");
	t_str_eq(vss_strerror(-LIBVSS_EAMBIGUOUS), "ambiguous id prefix", "strerror ambiguous");
	t_str_eq(vss_strerror(EBUSY), "Device or resource busy", "strerror falls back");
}

static void make_cbt(struct vss_cbt_info *c)
{
	memset(c, 0, sizeof(*c));
	c->device = (struct vss_device){ .major = 252, .minor = 16, .name = "vdb" };
	vss_id_parse("9e000000-0000-4000-8000-0000000000aa", &c->generation);
	c->seq = 12;
	c->oldest_seq = 4;
	c->block_size = 65536;
	c->size = UINT64_C(16) << 40;
	c->map_bytes = 3 << 20;
	c->started_ns = TEST_NS;
}

static void test_cbt_output(void)
{
	static const char *const keys[] = {
		"device", "generation", "block_size", "seq", "point", "oldest_seq",
		"oldest_point", "size", "map_bytes", "started_ns", "started",
	};
	static const enum json_type types[] = {
		json_type_object, json_type_string, json_type_int, json_type_int,
		json_type_string, json_type_int, json_type_string, json_type_int,
		json_type_int, json_type_int, json_type_string,
	};
	struct vss_event_info ev = {
		.type = VSS_EVENT_CBT_NEW_GENERATION, .received_ns = TEST_NS,
		.present = VSS_EVENT_HAS_CBT | VSS_EVENT_HAS_ERROR,
		.reason = "the device was resized",
	};
	struct vss_cbt_info c[2];
	struct json_object *obj, *sub;
	char line[512], *text;
	FILE *f;

	make_cbt(&c[0]);
	obj = vssctl_json_cbt_info(&c[0]);
	check_shape(obj, "tracking state", keys, types, 11);
	t_str_eq(get_string(obj, "point"), "9e000000-0000-4000-8000-0000000000aa:12",
		 "point: the newest point");
	t_str_eq(get_string(obj, "oldest_point"), "9e000000-0000-4000-8000-0000000000aa:4",
		 "oldest_point");
	t_str_eq(get_string(obj, "started"), "2023-11-14T22:13:20.123456789Z",
		 "started in ISO 8601 UTC");
	json_object_put(obj);

	ev.cbt = c[0];
	obj = vssctl_json_event(&ev);
	t_ok(json_object_object_get_ex(obj, "cbt", &sub) &&
	     json_object_is_type(sub, json_type_object) && get_string(sub, "generation"),
	     "a tracking event carries the state under \"cbt\"");
	t_str_eq(get_string(obj, "event"), "cbt-new-generation", "... and its name");
	json_object_put(obj);
	vssctl_format_event(&ev, line, sizeof(line));
	t_str_eq(line, "2023-11-14T22:13:20.123+00:00 cbt-new-generation "
		 "device=/dev/vdb(252:16) generation=9e000000-0000-4000-8000-0000000000aa "
		 "seq=12 oldest=4 block=64KiB reason=\"the device was resized\"",
		 "monitor line of a tracking event");

	make_cbt(&c[1]);
	c[1].device = (struct vss_device){ .major = 8, .minor = 1, .name = "" };
	f = tmpfile();
	vssctl_print_cbt_table(f, c, 2);
	text = capture(f);
	t_str_eq(text,
		 "DEVICE    GENERATION                            BLOCK  SEQ  OLDEST  SIZE   MAP   STARTED\n"
		 "/dev/vdb  9e000000-0000-4000-8000-0000000000aa  64KiB  12   4       16TiB  3MiB  2023-11-14 22:13:20\n"
		 "8:1       9e000000-0000-4000-8000-0000000000aa  64KiB  12   4       16TiB  3MiB  2023-11-14 22:13:20\n",
		 "cbt info table");
	free(text);
	fclose(f);
	f = tmpfile();
	vssctl_print_cbt_details(f, &c[0]);
	text = capture(f);
	t_str_eq(text,
		 "device:         /dev/vdb (252:16)\n"
		 "generation:     9e000000-0000-4000-8000-0000000000aa\n"
		 "block size:     64KiB\n"
		 "sequence:       12 (current interval; newest point 9e000000-0000-4000-8000-0000000000aa:12)\n"
		 "oldest point:   9e000000-0000-4000-8000-0000000000aa:4\n"
		 "tracked size:   16TiB (17592186044416 bytes)\n"
		 "map memory:     3MiB (3145728 bytes)\n"
		 "started:        2023-11-14 22:13:20.123456789 +0000\n",
		 "cbt info of one device");
	free(text);
	fclose(f);
}

static void test_small_helpers(void)
{
	char buf[64], out[8];
	struct vss_device unnamed = { .major = 8, .minor = 1 };

	t_str_eq(vssctl_device_path("vdb", buf, sizeof(buf)), "/dev/vdb", "bare name under /dev");
	t_str_eq(vssctl_device_path("./vdb", buf, sizeof(buf)), "./vdb", "paths stay");
	vssctl_device_text(&unnamed, buf, sizeof(buf));
	t_str_eq(buf, "8:1", "unnamed device shown by number");
	vssctl_sanitize("a\x1b[31mb", out, sizeof(out));
	t_str_eq(out, "a?[31mb", "escape sequences defused");
	vssctl_time_iso8601_utc(0, buf, sizeof(buf));
	t_str_eq(buf, "1970-01-01T00:00:00.000000000Z", "epoch in UTC");
	t_str_eq(vss_state_name(VSS_STATE_FAILED), "failed", "state name");
	t_str_eq(vss_storage_kind_name(VSS_STORAGE_BLOCK), "block", "kind name");
	t_str_eq(vss_storage_kind_name(42), "unknown", "unknown kind");
	t_str_eq(vss_event_name(VSS_EVENT_STORAGE_OVERFLOW), "storage-overflow", "event name");
	t_ok(!strncmp(vss_library_version(), "0.3.0", 5) || strlen(vss_library_version()) > 0,
	     "library version string");
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	test_json_snapshot();
	test_json_event();
	test_table();
	test_messages_and_codes();
	test_cbt_output();
	test_small_helpers();
	return t_done();
}
