/* SPDX-License-Identifier: GPL-2.0 */
/* vssctl and vsswriterd: writers, their results and events, shown. */
#ifndef VSSCTL_WRITERS_OUTPUT_H
#define VSSCTL_WRITERS_OUTPUT_H

#include <stdio.h>

#include <json-c/json.h>

#include "vssctl.h"

/* Opens a session; reports failures (exit 12 when vsswriterd is absent,
 * silently if @quiet_absent). Returns an exit code. */
int vssctl_writerd_open(const struct vssctl *ctx, struct vss_session **s,
			const struct vss_session_params *params, bool quiet_absent);
/* Reports a failed session call; returns its exit code (11 for a writer). */
int vssctl_session_report(const struct vssctl *ctx, const struct vss_session *s, int err,
			  const char *object);
void vssctl_print_writer_results(FILE *out, const struct vss_writer_result *r, size_t n);
struct json_object *vssctl_json_writer_results(const struct vss_writer_result *r, size_t n);
void vssctl_print_writer_info(FILE *out, const struct vss_writer_info *w);
struct json_object *vssctl_json_writer_info(const struct vss_writer_info *w);
struct json_object *vssctl_json_writer_event(const struct vss_writer_event *ev);
void vssctl_format_writer_event(const struct vss_writer_event *ev, char *buf, size_t len);

#endif
