// SPDX-License-Identifier: GPL-2.0
/*
 * How vssctl shows writers and their results, and how it reaches
 * vsswriterd. The JSON shapes are documented in vssctl(8).
 */
#include <stdio.h>
#include <string.h>

#include "output.h"
#include "writers_output.h"

int vssctl_writerd_open(const struct vssctl *ctx, struct vss_session **s,
			const struct vss_session_params *params, bool quiet_absent)
{
	int err = vss_session_open(params, s);

	if (!err)
		return VSSCTL_EXIT_OK;
	if (err == -LIBVSS_ENOWRITERD) {
		if (!quiet_absent)
			vssctl_error("%s: vsswriterd is not running (start it: systemctl start vsswriterd.socket)",
				     ctx->command);
		return VSSCTL_EXIT_NO_WRITERD;
	}
	vssctl_error("%s: cannot reach vsswriterd: %s", ctx->command, vss_strerror(err));
	return VSSCTL_EXIT_FAILURE;
}

int vssctl_session_report(const struct vssctl *ctx, const struct vss_session *s, int err,
			  const char *object)
{
	const char *message = vss_session_error_message(s);
	char clean[VSS_WRITER_MESSAGE_MAX];

	/* vsswriterd's message names the writer to blame when there is one. */
	vssctl_sanitize(message ? message : vss_strerror(err), clean, sizeof(clean));
	vssctl_error("%s: %s", object ? object : ctx->command, clean);
	if (err == -LIBVSS_EWRITER)
		return VSSCTL_EXIT_WRITER;
	return vssctl_exit_code(err);
}

static const char *failure_text(uint32_t step, uint32_t failure, const char *message,
				char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s", step ? "at " : "", step ? vss_writer_step_name(step) : "",
		 step ? ": " : "", vss_writer_failure_name(failure), "");
	if (message && *message)
		snprintf(buf + strlen(buf), len - strlen(buf), ": %s", message);
	return buf;
}

void vssctl_print_writer_results(FILE *out, const struct vss_writer_result *r, size_t n)
{
	char text[VSS_WRITER_MESSAGE_MAX + 64], clean[sizeof(text)];
	size_t i, taking = 0;

	for (i = 0; i < n; i++)
		taking += !r[i].excluded;
	fprintf(out, "writers: %zu took part%s\n", taking, n ? ":" : " (none registered)");
	for (i = 0; i < n; i++) {
		vssctl_sanitize(r[i].name, clean, sizeof(clean));
		fprintf(out, "  %-24s %-9s %-12s ", clean, vss_writer_class_name(r[i].writer_class),
			vss_writer_kind_name(r[i].kind));
		if (r[i].excluded) {
			vssctl_sanitize(r[i].excluded_why, text, sizeof(text));
			fprintf(out, "left out: %s\n", text);
			continue;
		}
		fprintf(out, "[%u] %s", r[i].state, vss_writer_state_name(r[i].state));
		if (r[i].failure) {
			failure_text(r[i].failed_step, r[i].failure, r[i].message, text, sizeof(text));
			vssctl_sanitize(text, clean, sizeof(clean));
			fprintf(out, " (%s)", clean);
		}
		if (r[i].frozen_us)
			fprintf(out, ", frozen %llu us", (unsigned long long)r[i].frozen_us);
		fputc('\n', out);
	}
}

struct json_object *vssctl_json_writer_results(const struct vss_writer_result *r, size_t n)
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(r[i].name));
		json_object_object_add(o, "class_id", json_object_new_string(r[i].class_id));
		json_object_object_add(o, "instance_id", json_object_new_string(r[i].instance_id));
		json_object_object_add(o, "kind", json_object_new_string(vss_writer_kind_name(r[i].kind)));
		json_object_object_add(o, "class",
				       json_object_new_string(vss_writer_class_name(r[i].writer_class)));
		json_object_object_add(o, "state", json_object_new_int64(r[i].state));
		json_object_object_add(o, "state_name",
				       json_object_new_string(vss_writer_state_name(r[i].state)));
		json_object_object_add(o, "failure",
				       json_object_new_string(vss_writer_failure_name(r[i].failure)));
		json_object_object_add(o, "failed_step", r[i].failed_step ?
				       json_object_new_string(vss_writer_step_name(r[i].failed_step)) :
				       NULL);
		json_object_object_add(o, "message", json_object_new_string(r[i].message));
		json_object_object_add(o, "took_part", json_object_new_boolean(!r[i].excluded));
		json_object_object_add(o, "left_out_because", r[i].excluded ?
				       json_object_new_string(r[i].excluded_why) : NULL);
		json_object_object_add(o, "frozen_us", r[i].frozen_us ?
				       json_object_new_uint64(r[i].frozen_us) : NULL);
		json_object_array_add(arr, o);
	}
	return arr;
}

static struct json_object *string_array(char **items, size_t n)
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_string(items[i]));
	return arr;
}

static struct json_object *backup_types(uint32_t bits)
{
	static const char *const names[] = { "full", "incremental", "differential", "log", "copy" };
	struct json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < 5; i++)
		if (bits & (1U << i))
			json_object_array_add(arr, json_object_new_string(names[i]));
	return arr;
}

struct json_object *vssctl_json_writer_info(const struct vss_writer_info *w)
{
	struct json_object *o = json_object_new_object(), *comps = json_object_new_array();
	char when[VSSCTL_TIME_MAX];
	size_t i, j;

	json_object_object_add(o, "name", json_object_new_string(w->name));
	json_object_object_add(o, "class_id", json_object_new_string(w->class_id));
	json_object_object_add(o, "instance_id", json_object_new_string(w->instance_id));
	json_object_object_add(o, "kind", json_object_new_string(vss_writer_kind_name(w->kind)));
	json_object_object_add(o, "class", json_object_new_string(vss_writer_class_name(w->writer_class)));
	json_object_object_add(o, "state", json_object_new_int64(w->state));
	json_object_object_add(o, "state_name", json_object_new_string(vss_writer_state_name(w->state)));
	json_object_object_add(o, "connected", json_object_new_boolean(w->connected));
	json_object_object_add(o, "pid", w->pid ? json_object_new_int64(w->pid) : NULL);
	json_object_object_add(o, "uid", w->kind == VSS_WRITER_PROCESS ?
			       json_object_new_int64(w->uid) : NULL);
	json_object_object_add(o, "freeze_window_ms", json_object_new_int64(w->freeze_window_ms));
	if (w->last_error_ns) {
		struct json_object *le = json_object_new_object();

		vssctl_time_iso8601_utc(w->last_error_ns, when, sizeof(when));
		json_object_object_add(le, "state", json_object_new_int64(w->last_error_state));
		json_object_object_add(le, "state_name",
				       json_object_new_string(vss_writer_state_name(w->last_error_state)));
		json_object_object_add(le, "step",
				       json_object_new_string(vss_writer_step_name(w->last_error_step)));
		json_object_object_add(le, "failure",
				       json_object_new_string(vss_writer_failure_name(w->last_error_failure)));
		json_object_object_add(le, "message", json_object_new_string(w->last_error_message));
		json_object_object_add(le, "time_ns", json_object_new_uint64(w->last_error_ns));
		json_object_object_add(le, "time", json_object_new_string(when));
		json_object_object_add(le, "set_id", w->last_error_set_id[0] ?
				       json_object_new_string(w->last_error_set_id) : NULL);
		json_object_object_add(o, "last_error", le);
	} else {
		json_object_object_add(o, "last_error", NULL);
	}
	for (i = 0; i < w->component_count; i++) {
		const struct vss_writer_component *c = &w->components[i];
		struct json_object *co = json_object_new_object(), *vols = json_object_new_array();

		json_object_object_add(co, "name", json_object_new_string(c->name));
		json_object_object_add(co, "paths", string_array(c->paths, c->path_count));
		json_object_object_add(co, "devices", string_array(c->devices, c->device_count));
		json_object_object_add(co, "backup_types", backup_types(c->backup_types));
		for (j = 0; j < c->volume_count; j++)
			json_object_array_add(vols, vssctl_json_device(&c->volumes[j]));
		json_object_object_add(co, "volumes", vols);
		json_object_array_add(comps, co);
	}
	json_object_object_add(o, "components", comps);
	return o;
}

void vssctl_print_writer_info(FILE *out, const struct vss_writer_info *w)
{
	char clean[VSS_WRITER_MESSAGE_MAX + 64], when[VSSCTL_TIME_MAX], dev[VSSCTL_DEVICE_TEXT_MAX];
	size_t i, j;

	vssctl_sanitize(w->name, clean, sizeof(clean));
	fprintf(out, "Writer: %s\n", clean);
	fprintf(out, "   Kind:        %s, %s", vss_writer_kind_name(w->kind),
		vss_writer_class_name(w->writer_class));
	if (w->kind == VSS_WRITER_PROCESS)
		fprintf(out, ", pid %d, uid %u%s", (int)w->pid, w->uid,
			w->connected ? "" : ", disconnected");
	fputc('\n', out);
	fprintf(out, "   Class id:    %s\n", w->class_id);
	fprintf(out, "   Instance id: %s\n", w->instance_id);
	fprintf(out, "   State:       [%u] %s\n", w->state, vss_writer_state_name(w->state));
	if (w->last_error_ns) {
		vssctl_time_local(w->last_error_ns, when, sizeof(when));
		vssctl_sanitize(w->last_error_message, clean, sizeof(clean));
		fprintf(out, "   Last error:  %s: %s: %s (%s)\n",
			vss_writer_state_name(w->last_error_state),
			vss_writer_failure_name(w->last_error_failure), clean, when);
	} else {
		fprintf(out, "   Last error:  none\n");
	}
	fprintf(out, "   Freeze window: %u ms\n", w->freeze_window_ms);
	if (!w->component_count)
		fprintf(out, "   Components:  none (takes part in every set)\n");
	for (i = 0; i < w->component_count; i++) {
		const struct vss_writer_component *c = &w->components[i];

		vssctl_sanitize(c->name, clean, sizeof(clean));
		fprintf(out, "   Component:   %s:", clean);
		for (j = 0; j < c->path_count; j++) {
			vssctl_sanitize(c->paths[j], clean, sizeof(clean));
			fprintf(out, " %s", clean);
		}
		for (j = 0; j < c->device_count; j++) {
			vssctl_sanitize(c->devices[j], clean, sizeof(clean));
			fprintf(out, " %s", clean);
		}
		if (c->volume_count) {
			fprintf(out, " (on");
			for (j = 0; j < c->volume_count; j++) {
				vssctl_device_text(&c->volumes[j], dev, sizeof(dev));
				fprintf(out, " %s", dev);
			}
			fputc(')', out);
		}
		fputc('\n', out);
	}
}

struct json_object *vssctl_json_writer_event(const struct vss_writer_event *ev)
{
	struct json_object *o = json_object_new_object();
	char when[VSSCTL_TIME_MAX];

	vssctl_time_iso8601_utc(ev->time_ns, when, sizeof(when));
	json_object_object_add(o, "source", json_object_new_string("vsswriterd"));
	json_object_object_add(o, "event", json_object_new_string(ev->type));
	json_object_object_add(o, "time_ns", json_object_new_uint64(ev->time_ns));
	json_object_object_add(o, "time", json_object_new_string(when));
	json_object_object_add(o, "writer", ev->writer[0] ? json_object_new_string(ev->writer) : NULL);
	if (!strcmp(ev->type, "writer-state")) {
		json_object_object_add(o, "state", json_object_new_int64(ev->state));
		json_object_object_add(o, "state_name",
				       json_object_new_string(vss_writer_state_name(ev->state)));
		json_object_object_add(o, "previous", json_object_new_int64(ev->previous));
	}
	json_object_object_add(o, "step", ev->step[0] ? json_object_new_string(ev->step) : NULL);
	json_object_object_add(o, "failure", ev->failure[0] ? json_object_new_string(ev->failure) : NULL);
	json_object_object_add(o, "message", ev->message[0] ? json_object_new_string(ev->message) : NULL);
	json_object_object_add(o, "set_id", ev->set_id[0] ? json_object_new_string(ev->set_id) : NULL);
	if (!strcmp(ev->type, "backup-complete"))
		json_object_object_add(o, "success", json_object_new_boolean(ev->success));
	return o;
}

void vssctl_format_writer_event(const struct vss_writer_event *ev, char *buf, size_t len)
{
	char when[VSSCTL_TIME_MAX], clean[VSS_WRITER_MESSAGE_MAX];
	int n;

	vssctl_time_iso8601_local_ms(ev->time_ns, when, sizeof(when));
	n = snprintf(buf, len, "%s %s", when, ev->type);
	if (n < 0 || (size_t)n >= len)
		return;
	if (ev->writer[0]) {
		vssctl_sanitize(ev->writer, clean, sizeof(clean));
		n += snprintf(buf + n, len - (size_t)n, " writer=%s", clean);
	}
	if (!strcmp(ev->type, "writer-state") && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " state=%s previous=%s",
			      vss_writer_state_name(ev->state), vss_writer_state_name(ev->previous));
	if (ev->step[0] && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " step=%s", ev->step);
	if (ev->failure[0] && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " failure=%s", ev->failure);
	if (ev->set_id[0] && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " set=%s", ev->set_id);
	if (!strcmp(ev->type, "backup-complete") && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " success=%s", ev->success ? "yes" : "no");
	if (ev->message[0] && (size_t)n < len) {
		vssctl_sanitize(ev->message, clean, sizeof(clean));
		snprintf(buf + n, len - (size_t)n, " reason=\"%s\"", clean);
	}
}
