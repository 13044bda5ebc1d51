/* SPDX-License-Identifier: GPL-2.0 */
/*
 * How vssctl shows things: tables and details for people, JSON (json-c)
 * for scripts. The JSON shapes are documented in vssctl(8); change them
 * only by adding keys.
 */
#ifndef VSSCTL_OUTPUT_H
#define VSSCTL_OUTPUT_H

#include <stdio.h>

#include <json-c/json.h>

#include "vssctl.h"

/* Room for any time text made below. */
#define VSSCTL_TIME_MAX		64
/* Room for a device text: "/dev/" and a name, or "major:minor". */
#define VSSCTL_DEVICE_TEXT_MAX	(VSS_DEVICE_NAME_MAX + 8)

/* "2024-05-01 12:34:56", local time. */
void vssctl_time_local(uint64_t ns, char *buf, size_t len);
/* "2024-05-01 12:34:56.123456789 +0200", local time. */
void vssctl_time_local_precise(uint64_t ns, char *buf, size_t len);
/* "2024-05-01T12:34:56.123456789Z", UTC, for JSON. */
void vssctl_time_iso8601_utc(uint64_t ns, char *buf, size_t len);
/* "2024-05-01T12:34:56.123+02:00", local time, for monitor lines. */
void vssctl_time_iso8601_local_ms(uint64_t ns, char *buf, size_t len);

/* "/dev/vdb" when the kernel named the device, else "252:16". */
void vssctl_device_text(const struct vss_device *dev, char *buf, size_t len);

/* Copies @in with control characters replaced, so a terminal is safe. */
void vssctl_sanitize(const char *in, char *out, size_t len);

/* A table with aligned columns; the last column is not padded. */
struct vssctl_table {
	size_t columns;
	size_t rows;
	size_t capacity;
	char **cells;		/* (rows + 1) * columns, row 0 the headers */
};

int vssctl_table_init(struct vssctl_table *t, size_t columns,
		      const char *const *headers);
int vssctl_table_add(struct vssctl_table *t, const char *const *cells);
void vssctl_table_print(const struct vssctl_table *t, FILE *out);
void vssctl_table_free(struct vssctl_table *t);

struct json_object *vssctl_json_id(const struct vss_id *id);
struct json_object *vssctl_json_device(const struct vss_device *dev);
struct json_object *vssctl_json_snapshot(const struct vss_snapshot_info *snap);
struct json_object *vssctl_json_snapshot_array(const struct vss_snapshot_info *snaps,
					       size_t count);
struct json_object *vssctl_json_event(const struct vss_event_info *ev);
/* "GENERATION:SEQ" */
struct json_object *vssctl_json_cbt_point(const struct vss_cbt_point *point);
struct json_object *vssctl_json_cbt_info(const struct vss_cbt_info *info);
struct json_object *vssctl_json_cbt_info_array(const struct vss_cbt_info *infos,
					       size_t count);

/*
 * Prints @obj on one line (or pretty with --pretty) and releases it.
 * Returns 0 or -ENOMEM.
 */
int vssctl_json_print(const struct vssctl *ctx, struct json_object *obj,
		      FILE *out);

/* The list/create table of snapshots. Returns 0 or -ENOMEM. */
int vssctl_print_snapshot_table(FILE *out, const struct vss_snapshot_info *snaps,
				size_t count);
/* Every field of one snapshot, one per line. */
void vssctl_print_snapshot_details(FILE *out, const struct vss_snapshot_info *snap);
/* The tracking table of `cbt info` without a device. Returns 0 or -ENOMEM. */
int vssctl_print_cbt_table(FILE *out, const struct vss_cbt_info *infos,
			   size_t count);
/* Every field of one device's tracking, one per line. */
void vssctl_print_cbt_details(FILE *out, const struct vss_cbt_info *info);
/* Prints @obj pretty, every line after the first indented by @indent. */
void vssctl_json_print_nested(FILE *out, struct json_object *obj, bool pretty,
			      int indent);
/* One monitor line, without newline. */
void vssctl_format_event(const struct vss_event_info *ev, char *buf, size_t len);

#endif /* VSSCTL_OUTPUT_H */
