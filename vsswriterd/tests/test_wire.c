// SPDX-License-Identifier: GPL-2.0
/*
 * The wire format: framing across partial reads, parsing of every kind
 * of message and of every kind of bad one, the serializer, the typed
 * parameter readers, the names, and random input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "wire.h"

static int parse(const char *text, struct vsw_msg *m, char *why)
{
	return vsw_msg_parse(text, strlen(text), m, why, 256);
}

static void test_parse(void)
{
	struct vsw_msg m;
	char why[256];

	t_ok(parse("{\"method\":\"a.b\",\"parameters\":{\"x\":1},\"more\":true}", &m, why) == 0 &&
	     m.kind == VSW_MSG_CALL && !strcmp(m.method, "a.b") && m.more && !m.oneway,
	     "a call with more");
	vsw_msg_free(&m);
	t_ok(parse("{\"method\":\"a.b\"}", &m, why) == 0 && m.parameters &&
	     json_object_is_type(m.parameters, json_type_object), "absent parameters read as {}");
	vsw_msg_free(&m);
	t_ok(parse("{\"parameters\":{},\"continues\":true}", &m, why) == 0 &&
	     m.kind == VSW_MSG_REPLY && m.continues, "a reply that continues");
	vsw_msg_free(&m);
	t_ok(parse("{\"error\":\"x.Y\",\"parameters\":{\"message\":\"m\"}}", &m, why) == 0 &&
	     m.kind == VSW_MSG_ERROR && !strcmp(m.error, "x.Y"), "an error");
	vsw_msg_free(&m);

	t_ok(parse("{\"method\":\"a", &m, why) == -EBADMSG && strstr(why, "not JSON"),
	     "truncated JSON is refused");
	t_ok(parse("{\"method\":1}", &m, why) == -EBADMSG && strstr(why, "method"),
	     "a method that is not a string");
	t_ok(parse("{\"method\":\"\"}", &m, why) == -EBADMSG, "an empty method");
	t_ok(parse("{\"method\":\"a\",\"parameters\":3}", &m, why) == -EBADMSG &&
	     strstr(why, "parameters"), "parameters that are no object");
	t_ok(parse("{\"method\":\"a\",\"more\":\"yes\"}", &m, why) == -EBADMSG, "more that is no boolean");
	t_ok(parse("{\"method\":\"a\",\"more\":true,\"oneway\":true}", &m, why) == -EBADMSG,
	     "more and oneway together");
	t_ok(parse("[]", &m, why) == -EBADMSG && strstr(why, "not a JSON object"), "an array");
	t_ok(parse("{} {}", &m, why) == -EBADMSG, "two objects in one message");
	t_ok(parse("", &m, why) == -EBADMSG, "nothing");
	t_ok(parse("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]}", &m, why) == -EBADMSG,
	     "nesting deeper than the limit");
	t_ok(parse("{\"method\":\"a\xff\"}", &m, why) == -EBADMSG, "invalid UTF-8");
	t_ok(vsw_msg_parse("{\"a\":1}\0x", 9, &m, why, sizeof(why)) == -EBADMSG, "a NUL inside");
}

static void test_framing(void)
{
	struct vsw_reader r;
	const char *msg;
	size_t len;
	char *big;

	vsw_reader_init(&r);
	vsw_reader_feed(&r, "{\"a\"", 4);
	t_int_eq(vsw_reader_next(&r, &msg, &len), 0, "half a message: wait for more");
	vsw_reader_feed(&r, ":1}\0{\"b\":2}\0{", 13);
	t_ok(vsw_reader_next(&r, &msg, &len) == 1 && !strcmp(msg, "{\"a\":1}"), "the first message");
	t_ok(vsw_reader_next(&r, &msg, &len) == 1 && !strcmp(msg, "{\"b\":2}"), "the second");
	t_int_eq(vsw_reader_next(&r, &msg, &len), 0, "the start of a third waits");
	vsw_reader_free(&r);

	vsw_reader_init(&r);
	big = malloc(VSW_WIRE_MAX_MESSAGE + 10);
	memset(big, 'x', VSW_WIRE_MAX_MESSAGE + 10);
	t_ok(vsw_reader_feed(&r, big, VSW_WIRE_MAX_MESSAGE) == 0 &&
	     vsw_reader_next(&r, &msg, &len) == -EMSGSIZE, "a message at the limit without its end is too long");
	free(big);
	vsw_reader_free(&r);
}

static void test_serialize(void)
{
	struct json_object *p = json_object_new_object();
	struct vsw_msg m;
	size_t len = 0;
	char *text, why[256];

	json_object_object_add(p, "path", json_object_new_string("/dev/vdb"));
	text = vsw_msg_call("io.vss.X", p, false, true, &len);
	t_ok(text && len == strlen(text) + 1 && !strstr(text, "\\/"),
	     "a call is one NUL-terminated object, slashes unescaped");
	t_ok(vsw_msg_parse(text, len - 1, &m, why, sizeof(why)) == 0 && m.oneway,
	     "and reads back");
	vsw_msg_free(&m);
	free(text);
	text = vsw_msg_error_text("io.vss.E", "volumes", "bad \"quote\"", &len);
	t_ok(text && strstr(text, "\"parameter\":\"volumes\"") && strstr(text, "\\\"quote\\\""),
	     "an error with its parameter and a quoted message");
	free(text);
}

static void test_params(void)
{
	struct json_object *o = json_tokener_parse(
		"{\"s\":\"abc\",\"n\":5,\"neg\":-1,\"b\":true,\"a\":[1,2],\"nul\":\"a\\u0000b\",\"big\":18446744073709551615}");
	const char *s;
	uint64_t n;
	bool b;
	struct json_object *a;
	char why[256];

	t_ok(vsw_get_string(o, "s", true, 10, &s, why, sizeof(why)) == 0 && !strcmp(s, "abc"), "a string");
	t_ok(vsw_get_string(o, "s", true, 2, &s, why, sizeof(why)) == -EINVAL && strstr(why, "longer"),
	     "a string too long");
	t_ok(vsw_get_string(o, "n", true, 10, &s, why, sizeof(why)) == -EINVAL && strstr(why, "\"n\""),
	     "a number where a string should be, naming the key");
	t_ok(vsw_get_string(o, "nul", true, 10, &s, why, sizeof(why)) == -EINVAL, "a string with a NUL");
	t_ok(vsw_get_string(o, "zz", false, 10, &s, why, sizeof(why)) == -ENOENT, "absent and optional");
	t_ok(vsw_get_string(o, "zz", true, 10, &s, why, sizeof(why)) == -EINVAL && strstr(why, "missing"),
	     "absent and required");
	t_ok(vsw_get_uint(o, "n", true, 10, &n, why, sizeof(why)) == 0 && n == 5, "an integer");
	t_ok(vsw_get_uint(o, "n", true, 4, &n, why, sizeof(why)) == -EINVAL, "an integer too large");
	t_ok(vsw_get_uint(o, "neg", true, 10, &n, why, sizeof(why)) == -EINVAL && strstr(why, "negative"),
	     "a negative integer");
	t_ok(vsw_get_uint(o, "big", true, UINT64_MAX, &n, why, sizeof(why)) == 0 && n == UINT64_MAX,
	     "the largest unsigned integer");
	t_ok(vsw_get_uint(o, "s", true, 10, &n, why, sizeof(why)) == -EINVAL, "a string where a number should be");
	t_ok(vsw_get_bool(o, "b", true, &b, why, sizeof(why)) == 0 && b, "a boolean");
	t_ok(vsw_get_bool(o, "n", true, &b, why, sizeof(why)) == -EINVAL, "a number is no boolean");
	t_ok(vsw_get_array(o, "a", true, 1, &a, why, sizeof(why)) == -EINVAL, "an array too long");
	json_object_put(o);
}

static void test_names(void)
{
	t_str_eq(vsw_state_name(VSW_STATE_WAITING_FOR_THAW), "waiting-for-thaw", "state 3");
	t_str_eq(vsw_state_name(9), "failed-at-freeze", "state 9 as in Windows VSS");
	t_str_eq(vsw_state_name(99), "unknown", "an unknown state");
	t_int_eq(vsw_failure_from_name("inconsistent-snapshot"), VSW_FAILURE_INCONSISTENT_SNAPSHOT,
		 "failure names read back");
	t_int_eq(vsw_step_from_name("post-snapshot"), VSW_STEP_POST_SNAPSHOT, "step names read back");
	t_int_eq((int)vsw_failed_state(VSW_STEP_PREPARE_SNAPSHOT), VSW_STATE_FAILED_AT_PREPARE_SNAPSHOT,
		 "the failed-at state of a step");
	t_ok(vsw_is_uuid("3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8") && !vsw_is_uuid("3f2a1b2c"),
	     "uuid check");
}

static void test_random(void)
{
	unsigned int seed = 7;
	char buf[300], why[256];
	int i, parsed = 0;
	static const char alphabet[] = "{}[]\":,0123456789truefalsnl \\u\t-method\"parameters";

	for (i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand_r(&seed) % (sizeof(buf) - 1)), j;
		struct vsw_msg m;

		for (j = 0; j < n; j++)
			buf[j] = (i & 1) ? alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)] :
					   (char)(1 + rand_r(&seed) % 255);
		buf[n] = '\0';
		if (vsw_msg_parse(buf, strlen(buf), &m, why, sizeof(why)) == 0) {
			parsed++;
			vsw_msg_free(&m);
		}
	}
	t_ok(true, "20000 random messages parsed or refused without a crash (%d parsed)", parsed);
}

int main(void)
{
	test_parse();
	test_framing();
	test_serialize();
	test_params();
	test_names();
	test_random();
	return t_done();
}
