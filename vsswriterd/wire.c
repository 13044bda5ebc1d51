// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The wire format of vsswriterd: framing, parsing, serializing, and the
 * names of states, failure codes, steps and classes. See wire.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "wire.h"

static const char *const state_names[VSW_STATE_COUNT] = {
	[VSW_STATE_UNKNOWN] = "unknown",
	[VSW_STATE_STABLE] = "stable",
	[VSW_STATE_WAITING_FOR_FREEZE] = "waiting-for-freeze",
	[VSW_STATE_WAITING_FOR_THAW] = "waiting-for-thaw",
	[VSW_STATE_WAITING_FOR_POST_SNAPSHOT] = "waiting-for-post-snapshot",
	[VSW_STATE_WAITING_FOR_BACKUP_COMPLETE] = "waiting-for-backup-complete",
	[VSW_STATE_FAILED_AT_IDENTIFY] = "failed-at-identify",
	[VSW_STATE_FAILED_AT_PREPARE_BACKUP] = "failed-at-prepare-backup",
	[VSW_STATE_FAILED_AT_PREPARE_SNAPSHOT] = "failed-at-prepare-snapshot",
	[VSW_STATE_FAILED_AT_FREEZE] = "failed-at-freeze",
	[VSW_STATE_FAILED_AT_THAW] = "failed-at-thaw",
	[VSW_STATE_FAILED_AT_POST_SNAPSHOT] = "failed-at-post-snapshot",
	[VSW_STATE_FAILED_AT_BACKUP_COMPLETE] = "failed-at-backup-complete",
	[VSW_STATE_FAILED_AT_PRE_RESTORE] = "failed-at-pre-restore",
	[VSW_STATE_FAILED_AT_POST_RESTORE] = "failed-at-post-restore",
	[VSW_STATE_FAILED_AT_BACKUP_SHUTDOWN] = "failed-at-backup-shutdown",
	[VSW_STATE_FAILED_AT_ABORT] = "failed-at-abort",
};

static const char *const failure_names[VSW_FAILURE_COUNT] = {
	[VSW_FAILURE_NONE] = "none",
	[VSW_FAILURE_INCONSISTENT_SNAPSHOT] = "inconsistent-snapshot",
	[VSW_FAILURE_OUT_OF_RESOURCES] = "out-of-resources",
	[VSW_FAILURE_TIMEOUT] = "timeout",
	[VSW_FAILURE_RETRYABLE] = "retryable",
	[VSW_FAILURE_NON_RETRYABLE] = "non-retryable",
	[VSW_FAILURE_NOT_RESPONDING] = "not-responding",
};

static const char *const step_names[VSW_STEP_COUNT] = {
	[VSW_STEP_NONE] = "none",
	[VSW_STEP_IDENTIFY] = "identify",
	[VSW_STEP_PREPARE_BACKUP] = "prepare-backup",
	[VSW_STEP_PREPARE_SNAPSHOT] = "prepare-snapshot",
	[VSW_STEP_FREEZE] = "freeze",
	[VSW_STEP_THAW] = "thaw",
	[VSW_STEP_POST_SNAPSHOT] = "post-snapshot",
	[VSW_STEP_BACKUP_COMPLETE] = "backup-complete",
	[VSW_STEP_ABORT] = "abort",
};

static const char *const backup_type_names[] = {
	"full", "incremental", "differential", "log", "copy",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

const char *vsw_state_name(uint32_t state)
{
	return state < VSW_STATE_COUNT ? state_names[state] : "unknown";
}

const char *vsw_failure_name(uint32_t code)
{
	return code < VSW_FAILURE_COUNT ? failure_names[code] : "unknown";
}

const char *vsw_step_name(uint32_t step)
{
	return step < VSW_STEP_COUNT ? step_names[step] : "unknown";
}

const char *vsw_class_name(uint32_t cls)
{
	switch (cls) {
	case VSW_CLASS_FRONT_END:
		return "front-end";
	case VSW_CLASS_BACK_END:
		return "back-end";
	case VSW_CLASS_SYSTEM:
		return "system";
	default:
		return "unknown";
	}
}

const char *vsw_kind_name(uint32_t kind)
{
	switch (kind) {
	case VSW_KIND_PROCESS:
		return "process";
	case VSW_KIND_HOOK:
		return "hook";
	case VSW_KIND_QEMU_GA_HOOK:
		return "qemu-ga-hook";
	default:
		return "unknown";
	}
}

const char *vsw_backup_type_name(uint32_t bit)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(backup_type_names); i++)
		if (bit == 1U << i)
			return backup_type_names[i];
	return "unknown";
}

uint32_t vsw_failed_state(uint32_t step)
{
	switch (step) {
	case VSW_STEP_IDENTIFY:
		return VSW_STATE_FAILED_AT_IDENTIFY;
	case VSW_STEP_PREPARE_BACKUP:
		return VSW_STATE_FAILED_AT_PREPARE_BACKUP;
	case VSW_STEP_PREPARE_SNAPSHOT:
		return VSW_STATE_FAILED_AT_PREPARE_SNAPSHOT;
	case VSW_STEP_FREEZE:
		return VSW_STATE_FAILED_AT_FREEZE;
	case VSW_STEP_THAW:
		return VSW_STATE_FAILED_AT_THAW;
	case VSW_STEP_POST_SNAPSHOT:
		return VSW_STATE_FAILED_AT_POST_SNAPSHOT;
	case VSW_STEP_BACKUP_COMPLETE:
		return VSW_STATE_FAILED_AT_BACKUP_COMPLETE;
	case VSW_STEP_ABORT:
		return VSW_STATE_FAILED_AT_ABORT;
	default:
		return VSW_STATE_UNKNOWN;
	}
}

static int index_of(const char *const *names, size_t count, const char *name)
{
	size_t i;

	if (!name)
		return -1;
	for (i = 0; i < count; i++)
		if (names[i] && !strcmp(names[i], name))
			return (int)i;
	return -1;
}

int vsw_failure_from_name(const char *name)
{
	return index_of(failure_names, VSW_FAILURE_COUNT, name);
}

int vsw_step_from_name(const char *name)
{
	return index_of(step_names, VSW_STEP_COUNT, name);
}

int vsw_class_from_name(const char *name)
{
	if (!name)
		return -1;
	if (!strcmp(name, "front-end"))
		return VSW_CLASS_FRONT_END;
	if (!strcmp(name, "back-end"))
		return VSW_CLASS_BACK_END;
	if (!strcmp(name, "system"))
		return VSW_CLASS_SYSTEM;
	return -1;
}

int vsw_backup_type_from_name(const char *name)
{
	int i = index_of(backup_type_names, ARRAY_SIZE(backup_type_names), name);

	return i < 0 ? -1 : (int)(1U << i);
}

/* ---- framing ---- */

void vsw_reader_init(struct vsw_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void vsw_reader_free(struct vsw_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

/* Drops consumed bytes and makes room for at least @want more. */
static int reader_reserve(struct vsw_reader *r, size_t want)
{
	size_t cap;
	char *grown;

	if (r->start) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}
	if (r->cap - r->len >= want)
		return 0;
	cap = r->cap ? r->cap : 4096;
	while (cap - r->len < want)
		cap *= 2;
	/* One byte over the limit is enough to know a message is too long. */
	if (cap > VSW_WIRE_MAX_MESSAGE + 4096)
		cap = VSW_WIRE_MAX_MESSAGE + 4096;
	if (cap - r->len < 1)
		return -EMSGSIZE;
	grown = realloc(r->buf, cap);
	if (!grown)
		return -ENOMEM;
	r->buf = grown;
	r->cap = cap;
	return 0;
}

ssize_t vsw_reader_fill(struct vsw_reader *r, int fd)
{
	ssize_t n;
	int err;

	err = reader_reserve(r, 4096);
	if (err == -EMSGSIZE)
		return err;
	if (err && r->cap == r->len)
		return err;
	n = recv(fd, r->buf + r->len, r->cap - r->len, MSG_DONTWAIT);
	if (n < 0 && errno == ENOTSOCK)
		n = read(fd, r->buf + r->len, r->cap - r->len);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0)
		r->eof = true;
	r->len += (size_t)n;
	return n;
}

int vsw_reader_feed(struct vsw_reader *r, const void *data, size_t len)
{
	int err = reader_reserve(r, len);

	if (err)
		return err;
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return 0;
}

int vsw_reader_next(struct vsw_reader *r, const char **msg, size_t *len)
{
	char *begin = r->buf + r->start;
	size_t avail = r->len - r->start;
	char *nul;

	if (!avail)
		return 0;
	nul = memchr(begin, '\0', avail);
	if (!nul)
		return avail >= VSW_WIRE_MAX_MESSAGE ? -EMSGSIZE : 0;
	if ((size_t)(nul - begin) + 1 > VSW_WIRE_MAX_MESSAGE)
		return -EMSGSIZE;
	*msg = begin;
	*len = (size_t)(nul - begin);
	r->start += *len + 1;
	return 1;
}

void vsw_writebuf_free(struct vsw_writebuf *w)
{
	free(w->data);
	memset(w, 0, sizeof(*w));
}

int vsw_writebuf_append(struct vsw_writebuf *w, const char *data, size_t len)
{
	size_t cap;
	char *grown;

	if (w->off == w->len)
		w->off = w->len = 0;
	if (w->off > 0 && w->cap - w->len < len) {
		memmove(w->data, w->data + w->off, w->len - w->off);
		w->len -= w->off;
		w->off = 0;
	}
	if (w->cap - w->len < len) {
		cap = w->cap ? w->cap : 4096;
		while (cap - w->len < len)
			cap *= 2;
		grown = realloc(w->data, cap);
		if (!grown)
			return -ENOMEM;
		w->data = grown;
		w->cap = cap;
	}
	memcpy(w->data + w->len, data, len);
	w->len += len;
	return 0;
}

int vsw_writebuf_flush(struct vsw_writebuf *w, int fd)
{
	while (w->off < w->len) {
		ssize_t n = send(fd, w->data + w->off, w->len - w->off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, w->data + w->off, w->len - w->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		w->off += (size_t)n;
	}
	w->off = w->len = 0;
	return 0;
}

/* ---- messages ---- */

static int why_set(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int why_set(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

void vsw_msg_free(struct vsw_msg *m)
{
	if (m->root)
		json_object_put(m->root);
	memset(m, 0, sizeof(*m));
}

static int optional_bool(struct json_object *root, const char *key, bool *out,
			 char *why, size_t why_len)
{
	struct json_object *v;

	*out = false;
	if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return why_set(why, why_len, "\"%s\" is not a boolean", key);
	*out = json_object_get_boolean(v);
	return 0;
}

int vsw_msg_parse(const char *text, size_t len, struct vsw_msg *out,
		  char *why, size_t why_len)
{
	struct json_tokener *tok;
	struct json_object *root, *v;
	enum json_tokener_error jerr;
	size_t consumed;
	int err;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return why_set(why, why_len, "empty message");
	if (len > INT32_MAX || memchr(text, '\0', len))
		return why_set(why, why_len, "NUL byte inside a message");
	tok = json_tokener_new_ex(VSW_WIRE_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	consumed = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr == json_tokener_continue) {
		if (root)
			json_object_put(root);
		return why_set(why, why_len, "not JSON: the text ends inside a value");
	}
	if (!root || jerr != json_tokener_success) {
		if (root)
			json_object_put(root);
		return why_set(why, why_len, "not JSON: %s at byte %zu",
			       json_tokener_error_desc(jerr), consumed);
	}
	while (consumed < len && strchr(" \t\r\n", text[consumed]))
		consumed++;
	if (consumed < len) {
		json_object_put(root);
		return why_set(why, why_len, "text after the JSON object at byte %zu",
			       consumed);
	}
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return why_set(why, why_len, "the message is not a JSON object");
	}
	out->root = root;

	if (json_object_object_get_ex(root, "parameters", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_object)) {
			err = why_set(why, why_len, "\"parameters\" is not an object");
			goto fail;
		}
		out->parameters = v;
	} else {
		out->parameters = json_object_new_object();
		if (!out->parameters) {
			err = -ENOMEM;
			goto fail;
		}
		json_object_object_add(root, "parameters", out->parameters);
	}

	if (json_object_object_get_ex(root, "method", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    !json_object_get_string_len(v)) {
			err = why_set(why, why_len, "\"method\" is not a non-empty string");
			goto fail;
		}
		out->kind = VSW_MSG_CALL;
		out->method = json_object_get_string(v);
		err = optional_bool(root, "more", &out->more, why, why_len);
		if (!err)
			err = optional_bool(root, "oneway", &out->oneway, why, why_len);
		if (err)
			goto fail;
		if (out->more && out->oneway) {
			err = why_set(why, why_len, "\"more\" and \"oneway\" together");
			goto fail;
		}
		return 0;
	}
	if (json_object_object_get_ex(root, "error", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    !json_object_get_string_len(v)) {
			err = why_set(why, why_len, "\"error\" is not a non-empty string");
			goto fail;
		}
		out->kind = VSW_MSG_ERROR;
		out->error = json_object_get_string(v);
		return 0;
	}
	out->kind = VSW_MSG_REPLY;
	err = optional_bool(root, "continues", &out->continues, why, why_len);
	if (err)
		goto fail;
	return 0;
fail:
	vsw_msg_free(out);
	return err;
}

static char *serialize(struct json_object *root, size_t *len)
{
	const char *text;
	size_t n;
	char *copy;

	if (!root)
		return NULL;
	text = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN |
						 JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	copy = text ? malloc(n + 1) : NULL;
	if (copy) {
		memcpy(copy, text, n);
		copy[n] = '\0';
		*len = n + 1;
	}
	json_object_put(root);
	return copy;
}

static struct json_object *params_or_empty(struct json_object *params)
{
	return params ? params : json_object_new_object();
}

char *vsw_msg_call(const char *method, struct json_object *params, bool more,
		   bool oneway, size_t *len)
{
	struct json_object *root = json_object_new_object();

	params = params_or_empty(params);
	if (!root || !params) {
		json_object_put(root);
		json_object_put(params);
		return NULL;
	}
	json_object_object_add(root, "method", json_object_new_string(method));
	json_object_object_add(root, "parameters", params);
	if (more)
		json_object_object_add(root, "more", json_object_new_boolean(1));
	if (oneway)
		json_object_object_add(root, "oneway", json_object_new_boolean(1));
	return serialize(root, len);
}

char *vsw_msg_reply(struct json_object *params, bool continues, size_t *len)
{
	struct json_object *root = json_object_new_object();

	params = params_or_empty(params);
	if (!root || !params) {
		json_object_put(root);
		json_object_put(params);
		return NULL;
	}
	json_object_object_add(root, "parameters", params);
	if (continues)
		json_object_object_add(root, "continues", json_object_new_boolean(1));
	return serialize(root, len);
}

char *vsw_msg_error(const char *error, struct json_object *params, size_t *len)
{
	struct json_object *root = json_object_new_object();

	params = params_or_empty(params);
	if (!root || !params) {
		json_object_put(root);
		json_object_put(params);
		return NULL;
	}
	json_object_object_add(root, "error", json_object_new_string(error));
	json_object_object_add(root, "parameters", params);
	return serialize(root, len);
}

char *vsw_msg_error_text(const char *error, const char *parameter,
			 const char *message, size_t *len)
{
	struct json_object *params = json_object_new_object();

	if (!params)
		return NULL;
	if (parameter)
		json_object_object_add(params, "parameter",
				       json_object_new_string(parameter));
	json_object_object_add(params, "message", json_object_new_string(message));
	return vsw_msg_error(error, params, len);
}

/* ---- typed parameters ---- */

static int lookup(struct json_object *obj, const char *key, bool required,
		  struct json_object **v, char *why, size_t why_len)
{
	if (!obj || !json_object_object_get_ex(obj, key, v) ||
	    json_object_is_type(*v, json_type_null)) {
		if (required) {
			why_set(why, why_len, "\"%s\" is missing", key);
			return -EINVAL;
		}
		return -ENOENT;
	}
	return 0;
}

int vsw_get_string(struct json_object *obj, const char *key, bool required,
		   size_t max_len, const char **out, char *why, size_t why_len)
{
	struct json_object *v;
	int err = lookup(obj, key, required, &v, why, why_len);

	if (err)
		return err;
	if (!json_object_is_type(v, json_type_string)) {
		why_set(why, why_len, "\"%s\" is not a string", key);
		return -EINVAL;
	}
	if ((size_t)json_object_get_string_len(v) > max_len) {
		why_set(why, why_len, "\"%s\" is longer than %zu bytes", key, max_len);
		return -EINVAL;
	}
	*out = json_object_get_string(v);
	if (strlen(*out) != (size_t)json_object_get_string_len(v)) {
		why_set(why, why_len, "\"%s\" holds a NUL character", key);
		return -EINVAL;
	}
	return 0;
}

int vsw_get_uint(struct json_object *obj, const char *key, bool required,
		 uint64_t max, uint64_t *out, char *why, size_t why_len)
{
	struct json_object *v;
	int err = lookup(obj, key, required, &v, why, why_len);
	int64_t s;
	uint64_t u;

	if (err)
		return err;
	if (!json_object_is_type(v, json_type_int)) {
		why_set(why, why_len, "\"%s\" is not an integer", key);
		return -EINVAL;
	}
	/* json-c keeps either an int64 or a uint64; negative is only int64. */
	errno = 0;
	s = json_object_get_int64(v);
	if (s < 0) {
		why_set(why, why_len, "\"%s\" is negative", key);
		return -EINVAL;
	}
	u = json_object_get_uint64(v);
	if (u > max) {
		why_set(why, why_len, "\"%s\" is larger than %llu", key,
			(unsigned long long)max);
		return -EINVAL;
	}
	*out = u;
	return 0;
}

int vsw_get_bool(struct json_object *obj, const char *key, bool required,
		 bool *out, char *why, size_t why_len)
{
	struct json_object *v;
	int err = lookup(obj, key, required, &v, why, why_len);

	if (err)
		return err;
	if (!json_object_is_type(v, json_type_boolean)) {
		why_set(why, why_len, "\"%s\" is not a boolean", key);
		return -EINVAL;
	}
	*out = json_object_get_boolean(v);
	return 0;
}

int vsw_get_array(struct json_object *obj, const char *key, bool required,
		  size_t max_items, struct json_object **out, char *why,
		  size_t why_len)
{
	struct json_object *v;
	int err = lookup(obj, key, required, &v, why, why_len);

	if (err)
		return err;
	if (!json_object_is_type(v, json_type_array)) {
		why_set(why, why_len, "\"%s\" is not an array", key);
		return -EINVAL;
	}
	if (json_object_array_length(v) > max_items) {
		why_set(why, why_len, "\"%s\" has more than %zu items", key, max_items);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int vsw_get_object(struct json_object *obj, const char *key, bool required,
		   struct json_object **out, char *why, size_t why_len)
{
	struct json_object *v;
	int err = lookup(obj, key, required, &v, why, why_len);

	if (err)
		return err;
	if (!json_object_is_type(v, json_type_object)) {
		why_set(why, why_len, "\"%s\" is not an object", key);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* ---- small helpers ---- */

bool vsw_is_uuid(const char *text)
{
	size_t i;

	if (!text || strlen(text) != VSW_ID_STRLEN - 1)
		return false;
	for (i = 0; i < VSW_ID_STRLEN - 1; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		char c = text[i];

		if (dash ? c != '-' :
		    !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

int vsw_random_uuid(char out[VSW_ID_STRLEN])
{
	unsigned char b[16];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, VSW_ID_STRLEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
		 b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

bool vsw_is_clean_text(const char *text)
{
	const unsigned char *p;

	if (!text)
		return false;
	/* json-c checked UTF-8 already; only control characters remain. */
	for (p = (const unsigned char *)text; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t vsw_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t vsw_realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}
