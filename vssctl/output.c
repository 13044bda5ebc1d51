// SPDX-License-Identifier: GPL-2.0
/*
 * Tables, details, monitor lines and JSON.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "output.h"

static void split_ns(uint64_t ns, time_t *sec, unsigned long *frac)
{
	*sec = (time_t)(ns / 1000000000u);
	*frac = (unsigned long)(ns % 1000000000u);
}

void vssctl_time_local(uint64_t ns, char *buf, size_t len)
{
	unsigned long frac;
	struct tm tm;
	time_t sec;

	split_ns(ns, &sec, &frac);
	if (!localtime_r(&sec, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "%llu", (unsigned long long)ns);
}

void vssctl_time_local_precise(uint64_t ns, char *buf, size_t len)
{
	char date[32], zone[16];
	unsigned long frac;
	struct tm tm;
	time_t sec;

	split_ns(ns, &sec, &frac);
	if (!localtime_r(&sec, &tm) ||
	    !strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm) ||
	    !strftime(zone, sizeof(zone), "%z", &tm)) {
		snprintf(buf, len, "%llu", (unsigned long long)ns);
		return;
	}
	snprintf(buf, len, "%s.%09lu %s", date, frac, zone);
}

void vssctl_time_iso8601_utc(uint64_t ns, char *buf, size_t len)
{
	unsigned long frac;
	char date[32];
	struct tm tm;
	time_t sec;

	split_ns(ns, &sec, &frac);
	if (!gmtime_r(&sec, &tm) ||
	    !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, len, "%llu", (unsigned long long)ns);
		return;
	}
	snprintf(buf, len, "%s.%09luZ", date, frac);
}

void vssctl_time_iso8601_local_ms(uint64_t ns, char *buf, size_t len)
{
	char date[32], zone[16];
	unsigned long frac;
	struct tm tm;
	time_t sec;

	split_ns(ns, &sec, &frac);
	if (!localtime_r(&sec, &tm) ||
	    !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) ||
	    !strftime(zone, sizeof(zone), "%z", &tm) || strlen(zone) != 5) {
		snprintf(buf, len, "%llu", (unsigned long long)ns);
		return;
	}
	/* ISO 8601 wants "+02:00" where strftime gives "+0200". */
	snprintf(buf, len, "%s.%03lu%.3s:%s", date, frac / 1000000, zone, zone + 3);
}

void vssctl_device_text(const struct vss_device *dev, char *buf, size_t len)
{
	char name[VSS_DEVICE_NAME_MAX];

	if (dev->name[0]) {
		vssctl_sanitize(dev->name, name, sizeof(name));
		snprintf(buf, len, "/dev/%s", name);
	} else {
		snprintf(buf, len, "%u:%u", dev->major, dev->minor);
	}
}

void vssctl_sanitize(const char *in, char *out, size_t len)
{
	size_t i;

	if (!len)
		return;
	for (i = 0; in[i] && i + 1 < len; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[i] = '\0';
}

int vssctl_table_init(struct vssctl_table *t, size_t columns,
		      const char *const *headers)
{
	memset(t, 0, sizeof(*t));
	t->columns = columns;
	t->rows = (size_t)-1;	/* the header row is row 0, not counted */
	if (vssctl_table_add(t, headers)) {
		vssctl_table_free(t);
		return -ENOMEM;
	}
	return 0;
}

int vssctl_table_add(struct vssctl_table *t, const char *const *cells)
{
	size_t row = t->rows + 1, c;

	if (row == t->capacity) {
		size_t capacity = t->capacity ? 2 * t->capacity : 16;
		char **grown = realloc(t->cells, capacity * t->columns * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		t->cells = grown;
		t->capacity = capacity;
	}
	for (c = 0; c < t->columns; c++) {
		const char *text = cells[c] ? cells[c] : "";
		char *copy = malloc(strlen(text) + 1);

		if (!copy) {
			while (c--)
				free(t->cells[row * t->columns + c]);
			return -ENOMEM;
		}
		vssctl_sanitize(text, copy, strlen(text) + 1);
		t->cells[row * t->columns + c] = copy;
	}
	t->rows = row;
	return 0;
}

void vssctl_table_print(const struct vssctl_table *t, FILE *out)
{
	size_t widths[16] = { 0 };
	size_t r, c;

	if (t->columns > sizeof(widths) / sizeof(widths[0]))
		return;
	for (r = 0; r <= t->rows; r++)
		for (c = 0; c < t->columns; c++) {
			size_t w = strlen(t->cells[r * t->columns + c]);

			if (w > widths[c])
				widths[c] = w;
		}
	for (r = 0; r <= t->rows; r++) {
		for (c = 0; c < t->columns; c++) {
			const char *cell = t->cells[r * t->columns + c];

			if (c + 1 == t->columns)
				fprintf(out, "%s\n", cell);
			else
				fprintf(out, "%-*s  ", (int)widths[c], cell);
		}
	}
}

void vssctl_table_free(struct vssctl_table *t)
{
	size_t i;

	if (t->cells)
		for (i = 0; i < (t->rows + 1) * t->columns; i++)
			free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

struct json_object *vssctl_json_id(const struct vss_id *id)
{
	char text[VSS_ID_STRLEN];

	vss_id_format(id, text);
	return json_object_new_string(text);
}

static struct json_object *json_string_or_null(const char *s)
{
	return s && *s ? json_object_new_string(s) : NULL;
}

struct json_object *vssctl_json_device(const struct vss_device *dev)
{
	struct json_object *obj = json_object_new_object();
	char path[VSSCTL_DEVICE_TEXT_MAX];

	if (!obj)
		return NULL;
	json_object_object_add(obj, "major", json_object_new_int64(dev->major));
	json_object_object_add(obj, "minor", json_object_new_int64(dev->minor));
	json_object_object_add(obj, "name", json_string_or_null(dev->name));
	if (dev->name[0])
		snprintf(path, sizeof(path), "/dev/%s", dev->name);
	json_object_object_add(obj, "path",
			       json_string_or_null(dev->name[0] ? path : NULL));
	return obj;
}

static struct json_object *json_error_name(int err)
{
	return err ? json_string_or_null(vss_errno_name(err)) : NULL;
}

struct json_object *vssctl_json_snapshot(const struct vss_snapshot_info *snap)
{
	struct json_object *obj = json_object_new_object();
	struct json_object *storage = json_object_new_object();
	char created[VSSCTL_TIME_MAX];

	if (!obj || !storage) {
		json_object_put(obj);
		json_object_put(storage);
		return NULL;
	}
	vssctl_time_iso8601_utc(snap->created_ns, created, sizeof(created));
	json_object_object_add(obj, "id", vssctl_json_id(&snap->id));
	json_object_object_add(obj, "set_id", vssctl_json_id(&snap->set_id));
	json_object_object_add(obj, "origin", vssctl_json_device(&snap->origin));
	json_object_object_add(obj, "image", vssctl_json_device(&snap->image));
	json_object_object_add(obj, "index", json_object_new_int64(snap->index));
	json_object_object_add(obj, "created_ns",
			       json_object_new_uint64(snap->created_ns));
	json_object_object_add(obj, "created", json_object_new_string(created));
	json_object_object_add(obj, "state",
			       json_object_new_string(vss_state_name(snap->state)));
	json_object_object_add(obj, "errno", json_object_new_int(snap->error));
	json_object_object_add(obj, "error", json_error_name(snap->error));
	json_object_object_add(obj, "reason", json_string_or_null(snap->reason));
	json_object_object_add(obj, "chunk_size",
			       json_object_new_int64(snap->chunk_size));
	json_object_object_add(obj, "label", json_string_or_null(snap->label));
	json_object_object_add(storage, "path",
			       json_object_new_string(snap->storage_path ?
						      snap->storage_path : ""));
	json_object_object_add(storage, "kind",
			       json_object_new_string(vss_storage_kind_name(snap->storage_kind)));
	json_object_object_add(storage, "used",
			       json_object_new_uint64(snap->storage_used));
	json_object_object_add(storage, "size",
			       json_object_new_uint64(snap->storage_size));
	json_object_object_add(storage, "limit",
			       json_object_new_uint64(snap->storage_limit));
	json_object_object_add(obj, "storage", storage);
	json_object_object_add(obj, "hold_us", json_object_new_uint64(snap->hold_us));
	json_object_object_add(obj, "open_count",
			       json_object_new_int64(snap->open_count));
	json_object_object_add(obj, "cbt_point", snap->has_cbt_point ?
			       vssctl_json_cbt_point(&snap->cbt_point) : NULL);
	return obj;
}

struct json_object *vssctl_json_cbt_point(const struct vss_cbt_point *point)
{
	char text[VSS_CBT_POINT_STRLEN];

	vss_cbt_point_format(point, text);
	return json_object_new_string(text);
}

struct json_object *vssctl_json_cbt_info(const struct vss_cbt_info *info)
{
	struct json_object *obj = json_object_new_object();
	struct vss_cbt_point oldest = { info->generation, info->oldest_seq };
	struct vss_cbt_point newest = { info->generation, info->seq };
	char started[VSSCTL_TIME_MAX];

	if (!obj)
		return NULL;
	vssctl_time_iso8601_utc(info->started_ns, started, sizeof(started));
	json_object_object_add(obj, "device", vssctl_json_device(&info->device));
	json_object_object_add(obj, "generation", vssctl_json_id(&info->generation));
	json_object_object_add(obj, "block_size", json_object_new_int64(info->block_size));
	json_object_object_add(obj, "seq", json_object_new_uint64(info->seq));
	json_object_object_add(obj, "point", vssctl_json_cbt_point(&newest));
	json_object_object_add(obj, "oldest_seq", json_object_new_uint64(info->oldest_seq));
	json_object_object_add(obj, "oldest_point", vssctl_json_cbt_point(&oldest));
	json_object_object_add(obj, "size", json_object_new_uint64(info->size));
	json_object_object_add(obj, "map_bytes", json_object_new_uint64(info->map_bytes));
	json_object_object_add(obj, "started_ns", json_object_new_uint64(info->started_ns));
	json_object_object_add(obj, "started", json_object_new_string(started));
	return obj;
}

struct json_object *vssctl_json_cbt_info_array(const struct vss_cbt_info *infos,
					       size_t count)
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	if (!arr)
		return NULL;
	for (i = 0; i < count; i++)
		json_object_array_add(arr, vssctl_json_cbt_info(&infos[i]));
	return arr;
}

void vssctl_json_print_nested(FILE *out, struct json_object *obj, bool pretty,
			      int indent)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED :
			      JSON_C_TO_STRING_PLAIN);
	const char *text = json_object_to_json_string_ext(obj, flags);

	for (; text && *text; text++) {
		fputc(*text, out);
		if (*text == '\n')
			fprintf(out, "%*s", indent, "");
	}
}

struct json_object *vssctl_json_snapshot_array(const struct vss_snapshot_info *snaps,
					       size_t count)
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	if (!arr)
		return NULL;
	for (i = 0; i < count; i++)
		json_object_array_add(arr, vssctl_json_snapshot(&snaps[i]));
	return arr;
}

struct json_object *vssctl_json_event(const struct vss_event_info *ev)
{
	struct json_object *obj = json_object_new_object();
	bool has_error = ev->present & VSS_EVENT_HAS_ERROR;
	bool has_storage = ev->present & VSS_EVENT_HAS_STORAGE;
	char when[VSSCTL_TIME_MAX];

	if (!obj)
		return NULL;
	vssctl_time_iso8601_utc(ev->received_ns, when, sizeof(when));
	json_object_object_add(obj, "event",
			       json_object_new_string(vss_event_name(ev->type)));
	json_object_object_add(obj, "type", json_object_new_int64(ev->type));
	json_object_object_add(obj, "time_ns", json_object_new_uint64(ev->received_ns));
	json_object_object_add(obj, "time", json_object_new_string(when));
	json_object_object_add(obj, "id", ev->present & VSS_EVENT_HAS_SNAP_ID ?
			       vssctl_json_id(&ev->snap_id) : NULL);
	json_object_object_add(obj, "set_id", ev->present & VSS_EVENT_HAS_SET_ID ?
			       vssctl_json_id(&ev->set_id) : NULL);
	json_object_object_add(obj, "origin", ev->present & VSS_EVENT_HAS_ORIGIN ?
			       vssctl_json_device(&ev->origin) : NULL);
	json_object_object_add(obj, "errno",
			       json_object_new_int(has_error ? ev->error : 0));
	json_object_object_add(obj, "error",
			       has_error ? json_error_name(ev->error) : NULL);
	json_object_object_add(obj, "reason",
			       has_error ? json_string_or_null(ev->reason) : NULL);
	json_object_object_add(obj, "storage_used", has_storage ?
			       json_object_new_uint64(ev->storage_used) : NULL);
	json_object_object_add(obj, "storage_limit", has_storage ?
			       json_object_new_uint64(ev->storage_limit) : NULL);
	json_object_object_add(obj, "cbt", ev->present & VSS_EVENT_HAS_CBT ?
			       vssctl_json_cbt_info(&ev->cbt) : NULL);
	return obj;
}

int vssctl_json_print(const struct vssctl *ctx, struct json_object *obj,
		      FILE *out)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		    (ctx->pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED :
				   JSON_C_TO_STRING_PLAIN);
	const char *text = obj ? json_object_to_json_string_ext(obj, flags) : NULL;
	int err = 0;

	if (text)
		fprintf(out, "%s\n", text);
	else
		err = -ENOMEM;
	json_object_put(obj);
	return err;
}

static void state_text(const struct vss_snapshot_info *snap, char *buf, size_t len)
{
	const char *name = vss_errno_name(snap->error);
	char reason[VSS_REASON_MAX];

	if (snap->state != VSS_STATE_FAILED) {
		snprintf(buf, len, "%s", vss_state_name(snap->state));
		return;
	}
	vssctl_sanitize(snap->reason, reason, sizeof(reason));
	if (reason[0] && name)
		snprintf(buf, len, "failed: %s (%s)", reason, name);
	else if (reason[0])
		snprintf(buf, len, "failed: %s", reason);
	else if (name)
		snprintf(buf, len, "failed (%s)", name);
	else
		snprintf(buf, len, "failed");
}

/* Ids in the table are shortened as far as they stay unique, to 8 at least. */
#define TABLE_ID_DIGITS	8

static void short_id(const struct vss_id *id, size_t digits, char *buf)
{
	char full[VSS_ID_STRLEN];
	size_t i, o = 0, seen = 0;

	vss_id_format(id, full);
	for (i = 0; full[i] && seen < digits; i++) {
		if (full[i] != '-')
			seen++;
		buf[o++] = full[i];
	}
	buf[o] = '\0';
}

int vssctl_print_snapshot_table(FILE *out, const struct vss_snapshot_info *snaps,
				size_t count)
{
	static const char *const headers[] = {
		"ID", "SET", "ORIGIN", "IMAGE", "CREATED", "USED", "LIMIT",
		"LABEL", "STATE",
	};
	struct vss_id *ids, *set_ids;
	size_t id_digits, set_digits, i;
	struct vssctl_table table;
	int err = -ENOMEM;

	ids = calloc(count ? count : 1, sizeof(*ids));
	set_ids = calloc(count ? count : 1, sizeof(*set_ids));
	if (!ids || !set_ids || vssctl_table_init(&table, 9, headers)) {
		free(ids);
		free(set_ids);
		return -ENOMEM;
	}
	for (i = 0; i < count; i++) {
		ids[i] = snaps[i].id;
		set_ids[i] = snaps[i].set_id;
	}
	id_digits = vss_id_unique_prefix_len(ids, count, TABLE_ID_DIGITS);
	set_digits = vss_id_unique_prefix_len(set_ids, count, TABLE_ID_DIGITS);

	for (i = 0; i < count; i++) {
		const struct vss_snapshot_info *s = &snaps[i];
		char id[VSS_ID_STRLEN], set[VSS_ID_STRLEN];
		char origin[VSSCTL_DEVICE_TEXT_MAX], image[VSSCTL_DEVICE_TEXT_MAX];
		char created[VSSCTL_TIME_MAX], used[16], limit[16];
		char state[VSS_REASON_MAX + 32];
		const char *cells[9] = { id, set, origin, image, created, used,
					 limit, s->label[0] ? s->label : "-", state };

		short_id(&s->id, id_digits, id);
		short_id(&s->set_id, set_digits, set);
		vssctl_device_text(&s->origin, origin, sizeof(origin));
		vssctl_device_text(&s->image, image, sizeof(image));
		vssctl_time_local(s->created_ns, created, sizeof(created));
		vss_format_size(s->storage_used, used, sizeof(used));
		if (s->storage_limit)
			vss_format_size(s->storage_limit, limit, sizeof(limit));
		else
			snprintf(limit, sizeof(limit), "-");
		state_text(s, state, sizeof(state));
		if (vssctl_table_add(&table, cells))
			goto out;
	}
	vssctl_table_print(&table, out);
	err = 0;
out:
	vssctl_table_free(&table);
	free(ids);
	free(set_ids);
	return err;
}

static void size_line(FILE *out, const char *key, uint64_t bytes)
{
	char human[16];

	fprintf(out, "%-15s %s (%llu bytes)\n", key,
		vss_format_size(bytes, human, sizeof(human)),
		(unsigned long long)bytes);
}

void vssctl_print_snapshot_details(FILE *out, const struct vss_snapshot_info *s)
{
	char id[VSS_ID_STRLEN], set[VSS_ID_STRLEN];
	char origin[VSSCTL_DEVICE_TEXT_MAX], image[VSSCTL_DEVICE_TEXT_MAX];
	char created[VSSCTL_TIME_MAX], state[VSS_REASON_MAX + 32];
	char label[VSS_LABEL_MAX], path[VSS_PATH_MAX], chunk[16];

	vss_id_format(&s->id, id);
	vss_id_format(&s->set_id, set);
	vssctl_device_text(&s->origin, origin, sizeof(origin));
	vssctl_device_text(&s->image, image, sizeof(image));
	vssctl_time_local_precise(s->created_ns, created, sizeof(created));
	state_text(s, state, sizeof(state));
	vssctl_sanitize(s->label, label, sizeof(label));
	vssctl_sanitize(s->storage_path ? s->storage_path : "", path, sizeof(path));

	fprintf(out, "%-15s %s\n", "id:", id);
	fprintf(out, "%-15s %s\n", "set:", set);
	fprintf(out, "%-15s %s (%u:%u)\n", "origin:", origin, s->origin.major,
		s->origin.minor);
	fprintf(out, "%-15s %s (%u:%u)\n", "image:", image, s->image.major,
		s->image.minor);
	fprintf(out, "%-15s %u\n", "index:", s->index);
	fprintf(out, "%-15s %s\n", "created:", created);
	fprintf(out, "%-15s %s\n", "state:", state);
	fprintf(out, "%-15s %s\n", "label:", label[0] ? label : "-");
	fprintf(out, "%-15s %s\n", "chunk size:",
		vss_format_size(s->chunk_size, chunk, sizeof(chunk)));
	fprintf(out, "%-15s %s (%s)\n", "storage:", path,
		vss_storage_kind_name(s->storage_kind));
	size_line(out, "storage used:", s->storage_used);
	size_line(out, "storage size:", s->storage_size);
	size_line(out, "storage limit:", s->storage_limit);
	fprintf(out, "%-15s %llu us\n", "writes held:",
		(unsigned long long)s->hold_us);
	fprintf(out, "%-15s %u\n", "open count:", s->open_count);
	if (s->has_cbt_point) {
		char point[VSS_CBT_POINT_STRLEN];

		vss_cbt_point_format(&s->cbt_point, point);
		fprintf(out, "%-15s %s\n", "cbt point:", point);
	} else {
		fprintf(out, "%-15s -\n", "cbt point:");
	}
}

int vssctl_print_cbt_table(FILE *out, const struct vss_cbt_info *infos,
			   size_t count)
{
	static const char *const headers[] = {
		"DEVICE", "GENERATION", "BLOCK", "SEQ", "OLDEST", "SIZE", "MAP",
		"STARTED",
	};
	struct vssctl_table table;
	size_t i;
	int err = 0;

	if (vssctl_table_init(&table, 8, headers))
		return -ENOMEM;
	for (i = 0; i < count && !err; i++) {
		const struct vss_cbt_info *c = &infos[i];
		char device[VSSCTL_DEVICE_TEXT_MAX], generation[VSS_ID_STRLEN];
		char block[16], seq[24], oldest[24], size[16], map[16];
		char started[VSSCTL_TIME_MAX];
		const char *cells[8] = { device, generation, block, seq, oldest, size,
					 map, started };

		vssctl_device_text(&c->device, device, sizeof(device));
		vss_id_format(&c->generation, generation);
		vss_format_size(c->block_size, block, sizeof(block));
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)c->seq);
		snprintf(oldest, sizeof(oldest), "%llu", (unsigned long long)c->oldest_seq);
		vss_format_size(c->size, size, sizeof(size));
		vss_format_size(c->map_bytes, map, sizeof(map));
		vssctl_time_local(c->started_ns, started, sizeof(started));
		err = vssctl_table_add(&table, cells);
	}
	if (!err)
		vssctl_table_print(&table, out);
	vssctl_table_free(&table);
	return err;
}

void vssctl_print_cbt_details(FILE *out, const struct vss_cbt_info *c)
{
	struct vss_cbt_point newest = { c->generation, c->seq };
	struct vss_cbt_point oldest = { c->generation, c->oldest_seq };
	char device[VSSCTL_DEVICE_TEXT_MAX], generation[VSS_ID_STRLEN];
	char point[VSS_CBT_POINT_STRLEN], block[16], started[VSSCTL_TIME_MAX];

	vssctl_device_text(&c->device, device, sizeof(device));
	vss_id_format(&c->generation, generation);
	vssctl_time_local_precise(c->started_ns, started, sizeof(started));
	fprintf(out, "%-15s %s (%u:%u)\n", "device:", device, c->device.major,
		c->device.minor);
	fprintf(out, "%-15s %s\n", "generation:", generation);
	fprintf(out, "%-15s %s\n", "block size:",
		vss_format_size(c->block_size, block, sizeof(block)));
	vss_cbt_point_format(&newest, point);
	fprintf(out, "%-15s %llu (current interval; newest point %s)\n", "sequence:",
		(unsigned long long)c->seq, point);
	vss_cbt_point_format(&oldest, point);
	fprintf(out, "%-15s %s\n", "oldest point:", point);
	size_line(out, "tracked size:", c->size);
	size_line(out, "map memory:", c->map_bytes);
	fprintf(out, "%-15s %s\n", "started:", started);
}

/* Appends to a line being built, never past its end. */
static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used = *used + (size_t)n < len ? *used + (size_t)n : len - 1;
}

/* A reason in double quotes, with quotes and backslashes escaped. */
static void quote(const char *in, char *out, size_t len)
{
	size_t o = 0;

	if (len < 3) {
		if (len)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (; *in && o + 3 < len; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '"' || c == '\\')
			out[o++] = '\\';
		out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[o++] = '"';
	out[o] = '\0';
}

void vssctl_format_event(const struct vss_event_info *ev, char *buf, size_t len)
{
	char when[VSSCTL_TIME_MAX], text[VSS_REASON_MAX * 2 + 3];
	size_t used = 0;

	if (len)
		buf[0] = '\0';
	vssctl_time_iso8601_local_ms(ev->received_ns, when, sizeof(when));
	append(buf, len, &used, "%s %s", when, vss_event_name(ev->type));
	if (ev->present & VSS_EVENT_HAS_SNAP_ID) {
		vss_id_format(&ev->snap_id, text);
		append(buf, len, &used, " id=%s", text);
	}
	if (ev->present & VSS_EVENT_HAS_SET_ID) {
		vss_id_format(&ev->set_id, text);
		append(buf, len, &used, " set=%s", text);
	}
	if (ev->present & VSS_EVENT_HAS_ORIGIN) {
		vssctl_device_text(&ev->origin, text, sizeof(text));
		append(buf, len, &used, " origin=%s(%u:%u)", text, ev->origin.major,
		       ev->origin.minor);
	}
	if (ev->present & VSS_EVENT_HAS_CBT) {
		const struct vss_cbt_info *c = &ev->cbt;
		char block[16];

		vssctl_device_text(&c->device, text, sizeof(text));
		append(buf, len, &used, " device=%s(%u:%u)", text, c->device.major,
		       c->device.minor);
		vss_id_format(&c->generation, text);
		append(buf, len, &used, " generation=%s seq=%llu oldest=%llu block=%s", text,
		       (unsigned long long)c->seq, (unsigned long long)c->oldest_seq,
		       vss_format_size(c->block_size, block, sizeof(block)));
	}
	if (ev->present & VSS_EVENT_HAS_ERROR) {
		const char *name = vss_errno_name(ev->error);

		if (name)
			append(buf, len, &used, " error=%s", name);
		else if (ev->error)
			append(buf, len, &used, " error=%d", ev->error);
		if (ev->reason[0]) {
			quote(ev->reason, text, sizeof(text));
			append(buf, len, &used, " reason=%s", text);
		}
	}
	if (ev->present & VSS_EVENT_HAS_STORAGE) {
		char used_text[16], limit_text[16];

		append(buf, len, &used, " used=%s limit=%s",
		       vss_format_size(ev->storage_used, used_text, sizeof(used_text)),
		       vss_format_size(ev->storage_limit, limit_text,
				       sizeof(limit_text)));
	}
}
