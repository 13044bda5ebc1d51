// SPDX-License-Identifier: GPL-2.0
/*
 * Writers: the registry, the io.vss.Writer methods, and the events sent
 * to a participant (a message to a writer process, a run of a hook).
 *
 * A writer process registers with a "more" call; each event is one more
 * reply to it, and the writer answers each with a oneway Answer call. A
 * writer that goes away without Unregister stays listed, disconnected,
 * until a writer of its name registers again or a sequence succeeds, so
 * that "vssctl writers" shows what happened to it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "daemon.h"

void wd_writer_get(struct wd_writer *w)
{
	w->refs++;
}

static void writer_free(struct wd_writer *w)
{
	wd_components_free(w->components, w->component_count);
	if (w->hook)
		wd_hook_free(w);
	free(w);
}

void wd_writer_put(struct wd_writer *w)
{
	if (w && --w->refs == 0)
		writer_free(w);
}

void wd_writer_unlist(struct wd_writer *w)
{
	if (!w->listed)
		return;
	w->listed = false;
	wd_list_del(&w->link);
	w->d->writer_count--;
	wd_writer_put(w);
}

struct wd_writer *wd_writer_find(struct wd_daemon *d, const char *name)
{
	struct wd_list *pos, *tmp;

	wd_list_for_each_safe(pos, tmp, &d->writers) {
		struct wd_writer *w = wd_container_of(pos, struct wd_writer, link);

		if (!strcmp(w->name, name))
			return w;
	}
	return NULL;
}

struct wd_writer *wd_writer_find_instance(struct wd_daemon *d, uint32_t kind,
					  const char *name, const char *class_id,
					  const char *instance_id)
{
	struct wd_writer *w = wd_writer_find(d, name);

	if (!w || !w->connected || w->kind != kind)
		return NULL;
	/* A hook is the same writer while its file is. */
	if (kind != VSW_KIND_PROCESS)
		return w;
	if (strcmp(w->class_id, class_id) || strcmp(w->instance_id, instance_id))
		return NULL;
	return w;
}

void wd_writer_set_state(struct wd_writer *w, uint32_t state)
{
	struct json_object *p;
	uint32_t previous = w->state;

	if (previous == state)
		return;
	w->state = state;
	wd_debug("writer %s: %s -> %s", w->name, vsw_state_name(previous),
		 vsw_state_name(state));
	p = json_object_new_object();
	json_object_object_add(p, "writer", json_object_new_string(w->name));
	json_object_object_add(p, "kind", json_object_new_string(vsw_kind_name(w->kind)));
	json_object_object_add(p, "state", json_object_new_int(state));
	json_object_object_add(p, "state_name", json_object_new_string(vsw_state_name(state)));
	json_object_object_add(p, "previous", json_object_new_int(previous));
	json_object_object_add(p, "previous_name",
			       json_object_new_string(vsw_state_name(previous)));
	wd_monitor_emit(w->d, "writer-state", p);
}

void wd_writer_record_failure(struct wd_writer *w, uint32_t step,
			      uint32_t failure, const char *message,
			      const char *set_id)
{
	struct wd_last_error *e = &w->last_error;
	struct json_object *p;

	e->state = vsw_failed_state(step);
	e->step = step;
	e->failure = failure;
	snprintf(e->message, sizeof(e->message), "%s", message ? message : "");
	e->time_ns = vsw_realtime_ns();
	snprintf(e->set_id, sizeof(e->set_id), "%s", set_id ? set_id : "");
	wd_warn("writer %s failed at %s: %s: %s", w->name, vsw_step_name(step),
		vsw_failure_name(failure), e->message);
	p = json_object_new_object();
	json_object_object_add(p, "writer", json_object_new_string(w->name));
	json_object_object_add(p, "step", json_object_new_string(vsw_step_name(step)));
	json_object_object_add(p, "failure", json_object_new_string(vsw_failure_name(failure)));
	json_object_object_add(p, "message", json_object_new_string(e->message));
	if (set_id && *set_id)
		json_object_object_add(p, "set_id", json_object_new_string(set_id));
	wd_monitor_emit(w->d, "writer-failed", p);
	wd_writer_set_state(w, e->state);
}

/* ---- components ---- */

void wd_components_free(struct wd_component *c, size_t n)
{
	size_t i, j;

	for (i = 0; c && i < n; i++) {
		free(c[i].name);
		for (j = 0; j < c[i].path_count; j++)
			free(c[i].paths[j]);
		free(c[i].paths);
		for (j = 0; j < c[i].device_count; j++)
			free(c[i].devices[j]);
		free(c[i].devices);
		free(c[i].volumes);
	}
	free(c);
}

static int string_list(struct json_object *obj, const char *key, bool paths,
		       char ***out, size_t *count, char *why, size_t why_len)
{
	struct json_object *arr;
	size_t i, n;
	int err;

	*out = NULL;
	*count = 0;
	err = vsw_get_array(obj, key, false, VSW_MAX_COMPONENT_ITEMS, &arr, why, why_len);
	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	n = json_object_array_length(arr);
	if (!n)
		return 0;
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);
		const char *text;

		if (!json_object_is_type(v, json_type_string) ||
		    (size_t)json_object_get_string_len(v) >= VSW_WIRE_PATH_MAX ||
		    !json_object_get_string_len(v)) {
			snprintf(why, why_len, "\"%s\"[%zu] is not a non-empty string", key, i);
			return -EINVAL;
		}
		text = json_object_get_string(v);
		if (strlen(text) != (size_t)json_object_get_string_len(v) ||
		    !vsw_is_clean_text(text)) {
			snprintf(why, why_len, "\"%s\"[%zu] holds control characters", key, i);
			return -EINVAL;
		}
		if (paths && text[0] != '/') {
			snprintf(why, why_len, "\"%s\"[%zu]: \"%s\" is not an absolute path",
				 key, i, text);
			return -EINVAL;
		}
		(*out)[i] = strdup(text);
		if (!(*out)[i])
			return -ENOMEM;
		(*count)++;
	}
	return 0;
}

int wd_components_parse(struct json_object *array, struct wd_component **out,
			size_t *count, char *why, size_t why_len)
{
	struct wd_component *c;
	size_t i, j, n;
	char inner[256];
	int err;

	*out = NULL;
	*count = 0;
	if (!array)
		return 0;
	if (!json_object_is_type(array, json_type_array)) {
		snprintf(why, why_len, "\"components\" is not an array");
		return -EINVAL;
	}
	n = json_object_array_length(array);
	if (n > VSW_MAX_COMPONENTS) {
		snprintf(why, why_len, "more than %d components", VSW_MAX_COMPONENTS);
		return -EINVAL;
	}
	if (!n)
		return 0;
	c = calloc(n, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(array, i), *types;
		const char *name;

		if (!json_object_is_type(o, json_type_object)) {
			snprintf(why, why_len, "components[%zu] is not an object", i);
			err = -EINVAL;
			goto fail;
		}
		err = vsw_get_string(o, "name", true, VSW_NAME_MAX, &name, inner, sizeof(inner));
		if (!err && (!*name || !vsw_is_clean_text(name))) {
			snprintf(inner, sizeof(inner), "\"name\" is empty or holds control characters");
			err = -EINVAL;
		}
		if (err)
			goto fail_inner;
		for (j = 0; j < i; j++)
			if (!strcmp(c[j].name, name)) {
				snprintf(inner, sizeof(inner), "name \"%s\" is used twice", name);
				err = -EINVAL;
				goto fail_inner;
			}
		c[i].name = strdup(name);
		if (!c[i].name) {
			err = -ENOMEM;
			goto fail;
		}
		err = string_list(o, "paths", true, &c[i].paths, &c[i].path_count, inner,
				  sizeof(inner));
		if (!err)
			err = string_list(o, "devices", false, &c[i].devices,
					  &c[i].device_count, inner, sizeof(inner));
		if (err)
			goto fail_inner;
		if (!c[i].path_count && !c[i].device_count) {
			snprintf(inner, sizeof(inner), "no \"paths\" and no \"devices\"");
			err = -EINVAL;
			goto fail_inner;
		}
		c[i].backup_types = VSW_BACKUP_FULL;
		err = vsw_get_array(o, "backup_types", false, 8, &types, inner, sizeof(inner));
		if (err == -ENOENT) {
			err = 0;
		} else if (err) {
			goto fail_inner;
		} else {
			c[i].backup_types = 0;
			for (j = 0; j < json_object_array_length(types); j++) {
				struct json_object *t = json_object_array_get_idx(types, j);
				int bit = json_object_is_type(t, json_type_string) ?
					vsw_backup_type_from_name(json_object_get_string(t)) : -1;

				if (bit < 0) {
					snprintf(inner, sizeof(inner),
						 "\"backup_types\"[%zu] is not one of full, incremental, differential, log, copy",
						 j);
					err = -EINVAL;
					goto fail_inner;
				}
				c[i].backup_types |= (uint32_t)bit;
			}
		}
	}
	*out = c;
	*count = n;
	return 0;
fail_inner:
	if (err == -EINVAL)
		snprintf(why, why_len, "components[%zu]: %s", i, inner);
fail:
	wd_components_free(c, n);
	return err;
}

static struct json_object *string_array(char **items, size_t n)
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_string(items[i]));
	return arr;
}

struct json_object *wd_components_json(const struct wd_component *c, size_t n,
				       bool with_volumes)
{
	struct json_object *arr = json_object_new_array();
	size_t i, j;

	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object(), *types, *vols;

		json_object_object_add(o, "name", json_object_new_string(c[i].name));
		json_object_object_add(o, "paths", string_array(c[i].paths, c[i].path_count));
		json_object_object_add(o, "devices",
				       string_array(c[i].devices, c[i].device_count));
		types = json_object_new_array();
		for (j = 0; j < 5; j++)
			if (c[i].backup_types & (1U << j))
				json_object_array_add(types, json_object_new_string(
					vsw_backup_type_name(1U << j)));
		json_object_object_add(o, "backup_types", types);
		if (with_volumes) {
			vols = json_object_new_array();
			for (j = 0; j < c[i].volume_count; j++) {
				char text[32];

				snprintf(text, sizeof(text), "%u:%u", major(c[i].volumes[j]),
					 minor(c[i].volumes[j]));
				json_object_array_add(vols, json_object_new_string(text));
			}
			json_object_object_add(o, "volumes", vols);
		}
		json_object_array_add(arr, o);
	}
	return arr;
}

struct json_object *wd_writer_json(const struct wd_writer *w, bool metadata)
{
	struct json_object *o = json_object_new_object();
	const struct wd_last_error *e = &w->last_error;

	json_object_object_add(o, "name", json_object_new_string(w->name));
	json_object_object_add(o, "class_id", json_object_new_string(w->class_id));
	json_object_object_add(o, "instance_id", json_object_new_string(w->instance_id));
	json_object_object_add(o, "kind", json_object_new_string(vsw_kind_name(w->kind)));
	json_object_object_add(o, "class", json_object_new_string(vsw_class_name(w->writer_class)));
	json_object_object_add(o, "state", json_object_new_int(w->state));
	json_object_object_add(o, "state_name", json_object_new_string(vsw_state_name(w->state)));
	json_object_object_add(o, "connected", json_object_new_boolean(w->connected));
	json_object_object_add(o, "freeze_window_ms", json_object_new_int64(w->freeze_window_ms));
	if (w->kind == VSW_KIND_PROCESS) {
		json_object_object_add(o, "pid", json_object_new_int64(w->pid));
		json_object_object_add(o, "uid", json_object_new_int64(w->uid));
	}
	json_object_object_add(o, "registered_ns", json_object_new_uint64(w->registered_ns));
	if (e->time_ns) {
		struct json_object *le = json_object_new_object();

		json_object_object_add(le, "state", json_object_new_int(e->state));
		json_object_object_add(le, "state_name", json_object_new_string(vsw_state_name(e->state)));
		json_object_object_add(le, "step", json_object_new_string(vsw_step_name(e->step)));
		json_object_object_add(le, "failure", json_object_new_string(vsw_failure_name(e->failure)));
		json_object_object_add(le, "message", json_object_new_string(e->message));
		json_object_object_add(le, "time_ns", json_object_new_uint64(e->time_ns));
		if (e->set_id[0])
			json_object_object_add(le, "set_id", json_object_new_string(e->set_id));
		json_object_object_add(o, "last_error", le);
	} else {
		json_object_object_add(o, "last_error", NULL);
	}
	if (metadata)
		json_object_object_add(o, "components",
				       wd_components_json(w->components, w->component_count, true));
	return o;
}

/* ---- io.vss.Writer ---- */

static void do_register(struct wd_conn *c, const struct vsw_msg *m)
{
	struct wd_daemon *d = c->d;
	struct json_object *p = m->parameters, *comps = NULL, *reply;
	const char *name, *class_id, *instance_id, *cls_text = "back-end";
	const struct wd_writer_rule *rule;
	struct wd_component *components = NULL;
	size_t component_count = 0;
	uint64_t protocol = 0, window = VSW_DEFAULT_FREEZE_WINDOW_MS;
	struct wd_writer *w, *old;
	char why[512];
	int cls, err;

	if (c->role != WD_ROLE_NEW) {
		wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL,
				   "this connection is already a %s",
				   c->role == WD_ROLE_WRITER ? "writer" : "requester");
		return;
	}
	if (!m->more) {
		wd_conn_error_text(c, VSW_E_EXPECTED_MORE, NULL,
				   "Register streams events: call it with \"more\": true");
		return;
	}
	err = vsw_get_uint(p, "protocol", true, UINT32_MAX, &protocol, why, sizeof(why));
	if (!err && protocol != VSW_WIRE_PROTOCOL) {
		wd_conn_error_text(c, VSW_E_PROTOCOL, "protocol",
				   "this vsswriterd speaks protocol %d, not %llu",
				   VSW_WIRE_PROTOCOL, (unsigned long long)protocol);
		return;
	}
	if (!err)
		err = vsw_get_string(p, "name", true, VSW_NAME_MAX, &name, why, sizeof(why));
	if (!err && (!*name || !vsw_is_clean_text(name))) {
		snprintf(why, sizeof(why), "\"name\" is empty or holds control characters");
		err = -EINVAL;
	}
	if (!err)
		err = vsw_get_string(p, "class_id", true, VSW_ID_STRLEN, &class_id, why, sizeof(why));
	if (!err && !vsw_is_uuid(class_id)) {
		snprintf(why, sizeof(why), "\"class_id\" is not a UUID");
		err = -EINVAL;
	}
	if (!err)
		err = vsw_get_string(p, "instance_id", true, VSW_ID_STRLEN, &instance_id,
				     why, sizeof(why));
	if (!err && !vsw_is_uuid(instance_id)) {
		snprintf(why, sizeof(why), "\"instance_id\" is not a UUID");
		err = -EINVAL;
	}
	if (!err) {
		err = vsw_get_string(p, "class", false, 32, &cls_text, why, sizeof(why));
		if (err == -ENOENT)
			err = 0;
	}
	cls = err ? -1 : vsw_class_from_name(cls_text);
	if (!err && cls < 0) {
		snprintf(why, sizeof(why), "\"class\" is not front-end, back-end or system");
		err = -EINVAL;
	}
	if (!err) {
		err = vsw_get_uint(p, "freeze_window_ms", false, VSW_MAX_FREEZE_WINDOW_MS,
				   &window, why, sizeof(why));
		if (err == -ENOENT)
			err = 0;
		else if (!err && window == 0) {
			snprintf(why, sizeof(why), "\"freeze_window_ms\" must be at least 1");
			err = -EINVAL;
		}
	}
	if (!err) {
		err = vsw_get_array(p, "components", false, VSW_MAX_COMPONENTS, &comps, why,
				    sizeof(why));
		if (err == -ENOENT)
			err = 0;
	}
	if (!err)
		err = wd_components_parse(comps, &components, &component_count, why, sizeof(why));
	if (err == -ENOMEM) {
		wd_conn_error_text(c, VSW_E_BUSY, NULL, "out of memory");
		return;
	}
	if (err) {
		wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, NULL, "%s", why);
		return;
	}

	/* Who may be this writer: the configured user, or root. */
	rule = wd_config_writer(&d->cfg, name);
	if (c->uid != 0 && (!rule || rule->uid != c->uid)) {
		wd_warn("refused writer \"%s\" from pid %d uid %d: %s", name, (int)c->pid,
			(int)c->uid, rule ? "not its configured user" : "not configured");
		if (rule)
			wd_conn_error_text(c, VSW_E_PERMISSION_DENIED, "name",
					   "writer \"%s\" must connect as uid %d, not uid %d",
					   name, (int)rule->uid, (int)c->uid);
		else
			wd_conn_error_text(c, VSW_E_PERMISSION_DENIED, "name",
					   "writer \"%s\" is not configured for uid %d: only root may register it (add [writer %s] user = ... to the configuration)",
					   name, (int)c->uid, name);
		wd_components_free(components, component_count);
		return;
	}
	old = wd_writer_find(d, name);
	if (old && (old->connected || old->kind != VSW_KIND_PROCESS)) {
		wd_conn_error_text(c, VSW_E_NAME_IN_USE, "name",
				   "a writer named \"%s\" is registered already (%s, pid %d)",
				   name, vsw_kind_name(old->kind), (int)old->pid);
		wd_components_free(components, component_count);
		return;
	}
	if (!old && d->writer_count >= WD_MAX_WRITERS) {
		wd_conn_error_text(c, VSW_E_BUSY, NULL, "%d writers are registered already",
				   WD_MAX_WRITERS);
		wd_components_free(components, component_count);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		wd_conn_error_text(c, VSW_E_BUSY, NULL, "out of memory");
		wd_components_free(components, component_count);
		return;
	}
	if (old)
		wd_writer_unlist(old);
	w->d = d;
	w->refs = 1;
	w->listed = true;
	w->serial = ++d->next_writer_serial;
	w->kind = VSW_KIND_PROCESS;
	snprintf(w->name, sizeof(w->name), "%s", name);
	snprintf(w->class_id, sizeof(w->class_id), "%s", class_id);
	snprintf(w->instance_id, sizeof(w->instance_id), "%s", instance_id);
	w->writer_class = (uint32_t)cls;
	w->freeze_window_ms = (uint32_t)window;
	w->components = components;
	w->component_count = component_count;
	w->uid = c->uid;
	w->pid = c->pid;
	w->registered_ns = vsw_realtime_ns();
	w->connected = true;
	w->conn = c;
	w->state = VSW_STATE_STABLE;
	wd_list_init(&w->events);
	wd_list_add_tail(&d->writers, &w->link);
	d->writer_count++;
	c->role = WD_ROLE_WRITER;
	c->writer = w;
	/* Where its components live, for the list; identify checks again. */
	if (!d->frozen)
		(void)wd_components_resolve(d, w->components, w->component_count, why, sizeof(why));

	wd_info("writer %s registered: %s, pid %d, uid %d, %zu component%s, freeze window %u ms",
		w->name, vsw_class_name(w->writer_class), (int)w->pid, (int)w->uid,
		component_count, component_count == 1 ? "" : "s", w->freeze_window_ms);
	reply = json_object_new_object();
	json_object_object_add(reply, "event", json_object_new_string("registered"));
	json_object_object_add(reply, "writer", wd_writer_json(w, true));
	json_object_object_add(reply, "step_timeout_ms",
			       json_object_new_int64(d->cfg.step_timeout_ms));
	wd_conn_reply_more(c, reply);
	{
		struct json_object *ev = json_object_new_object();

		json_object_object_add(ev, "writer", json_object_new_string(w->name));
		json_object_object_add(ev, "kind", json_object_new_string("process"));
		json_object_object_add(ev, "class", json_object_new_string(vsw_class_name(w->writer_class)));
		json_object_object_add(ev, "pid", json_object_new_int64(w->pid));
		json_object_object_add(ev, "instance_id", json_object_new_string(w->instance_id));
		wd_monitor_emit(d, "writer-registered", ev);
	}
	wd_sessions_writer_registered(d, w);
}

static struct wd_event *find_event(struct wd_writer *w, uint64_t id)
{
	struct wd_list *pos, *tmp;

	wd_list_for_each_safe(pos, tmp, &w->events) {
		struct wd_event *ev = wd_container_of(pos, struct wd_event, wlink);

		if (ev->id == id)
			return ev;
	}
	return NULL;
}

static int parse_failure(struct json_object *p, uint32_t *failure, const char **message,
			 char *why, size_t why_len)
{
	const char *name = NULL;
	int code, err;

	*failure = VSW_FAILURE_NON_RETRYABLE;
	*message = "";
	err = vsw_get_string(p, "failure", false, 64, &name, why, why_len);
	if (err && err != -ENOENT)
		return err;
	if (!err) {
		code = vsw_failure_from_name(name);
		if (code <= VSW_FAILURE_NONE || code > VSW_FAILURE_NON_RETRYABLE) {
			snprintf(why, why_len,
				 "\"failure\" is not one of inconsistent-snapshot, out-of-resources, timeout, retryable, non-retryable");
			return -EINVAL;
		}
		*failure = (uint32_t)code;
	}
	err = vsw_get_string(p, "message", false, VSW_MESSAGE_MAX - 1, message, why, why_len);
	if (err && err != -ENOENT)
		return err;
	return 0;
}

static void do_answer(struct wd_conn *c, const struct vsw_msg *m)
{
	struct wd_writer *w = c->writer;
	struct json_object *p = m->parameters, *comps;
	struct wd_component *components;
	size_t component_count;
	const char *message;
	uint32_t failure;
	struct wd_event *ev;
	char why[512];
	uint64_t id;
	bool ok;
	int err;

	err = vsw_get_uint(p, "id", true, UINT64_MAX, &id, why, sizeof(why));
	if (!err)
		err = vsw_get_bool(p, "ok", true, &ok, why, sizeof(why));
	if (!err && !ok)
		err = parse_failure(p, &failure, &message, why, sizeof(why));
	if (err) {
		wd_warn("writer %s sent a bad Answer: %s", w->name, why);
		wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, NULL, "%s", why);
		return;
	}
	ev = find_event(w, id);
	if (!ev) {
		/* Late: the event timed out or was cancelled by an abort. */
		wd_debug("writer %s answered event %llu, which is over", w->name,
			 (unsigned long long)id);
		return;
	}
	if (ok && ev->step == VSW_STEP_IDENTIFY &&
	    json_object_object_get_ex(p, "components", &comps) &&
	    !json_object_is_type(comps, json_type_null)) {
		err = wd_components_parse(comps, &components, &component_count, why, sizeof(why));
		if (err) {
			wd_event_finish(ev, -ECANCELED, VSW_FAILURE_NON_RETRYABLE, why);
			return;
		}
		wd_components_free(w->components, w->component_count);
		w->components = components;
		w->component_count = component_count;
	}
	if (ok)
		wd_event_finish(ev, 0, VSW_FAILURE_NONE, NULL);
	else
		wd_event_finish(ev, -ECANCELED, failure, *message ? message :
				"the writer gave no reason");
}

static void do_set_failure(struct wd_conn *c, const struct vsw_msg *m)
{
	struct wd_writer *w = c->writer;
	const char *message;
	uint32_t failure, step;
	char why[512];

	if (parse_failure(m->parameters, &failure, &message, why, sizeof(why))) {
		wd_conn_error_text(c, VSW_E_INVALID_PARAMETER, NULL, "%s", why);
		return;
	}
	if (!*message)
		message = "reported by the writer";
	if (w->active) {
		struct wd_part *part = w->active;

		step = part->ev ? part->ev->step : part->s->round_step;
		wd_session_part_failed(part, step ? step : VSW_STEP_PREPARE_BACKUP, failure,
				       message);
		return;
	}
	/* Outside a sequence: the failure concerns the last step it had. */
	step = w->last_error.step ? w->last_error.step : VSW_STEP_BACKUP_COMPLETE;
	switch (w->state) {
	case VSW_STATE_WAITING_FOR_BACKUP_COMPLETE:
		step = VSW_STEP_BACKUP_COMPLETE;
		break;
	case VSW_STATE_STABLE:
		step = VSW_STEP_BACKUP_COMPLETE;
		break;
	default:
		break;
	}
	wd_writer_record_failure(w, step, failure, message, NULL);
}

void wd_writer_method(struct wd_conn *c, const struct vsw_msg *m)
{
	if (!strcmp(m->method, VSW_M_REGISTER)) {
		do_register(c, m);
		return;
	}
	if (strcmp(m->method, VSW_M_ANSWER) && strcmp(m->method, VSW_M_SET_FAILURE) &&
	    strcmp(m->method, VSW_M_UNREGISTER)) {
		wd_conn_error_text(c, VSW_E_METHOD_NOT_FOUND, NULL, "no method \"%s\"",
				   m->method);
		return;
	}
	if (c->role != WD_ROLE_WRITER || !c->writer) {
		wd_conn_error_text(c, VSW_E_WRONG_STATE, NULL,
				   "%s needs a registered writer: call %s first", m->method,
				   VSW_M_REGISTER);
		return;
	}
	if (!strcmp(m->method, VSW_M_ANSWER)) {
		do_answer(c, m);
	} else if (!strcmp(m->method, VSW_M_SET_FAILURE)) {
		do_set_failure(c, m);
	} else {
		struct wd_writer *w = c->writer;

		wd_info("writer %s unregisters", w->name);
		c->writer = NULL;
		wd_writer_disconnected(w);
		wd_writer_unlist(w);
		wd_conn_close_later(c);
	}
}

void wd_writer_disconnected(struct wd_writer *w)
{
	struct wd_daemon *d = w->d;
	struct wd_list *pos, *tmp;
	struct json_object *p;
	char message[128];

	if (!w->connected)
		return;
	w->connected = false;
	if (w->conn) {
		w->conn->writer = NULL;
		w->conn = NULL;
	}
	wd_info("writer %s (pid %d) disconnected", w->name, (int)w->pid);
	/* Every step it was asked fails with it, which aborts its set. */
	wd_list_for_each_safe(pos, tmp, &w->events) {
		struct wd_event *ev = wd_container_of(pos, struct wd_event, wlink);

		snprintf(message, sizeof(message), "the writer went away during %s",
			 vsw_step_name(ev->step));
		wd_event_finish_soon(ev, -ENOTCONN, VSW_FAILURE_NOT_RESPONDING, message);
	}
	/* Between two steps of its sequence: it cannot finish it. */
	if (w->active && !w->active->ev)
		wd_session_part_failed(w->active, w->active->s->round_step ?
				       w->active->s->round_step : VSW_STEP_PREPARE_BACKUP,
				       VSW_FAILURE_NOT_RESPONDING,
				       "the writer went away during the sequence");
	p = json_object_new_object();
	json_object_object_add(p, "writer", json_object_new_string(w->name));
	json_object_object_add(p, "pid", json_object_new_int64(w->pid));
	wd_monitor_emit(d, "writer-disconnected", p);
}

/* ---- events ---- */

static void event_timeout(struct wd_timer *t)
{
	struct wd_event *ev = t->arg;
	char message[160];

	if (ev->soon) {
		wd_event_finish(ev, ev->soon_result, ev->soon_failure,
				ev->soon_message[0] ? ev->soon_message : NULL);
		return;
	}
	snprintf(message, sizeof(message), "no answer to %s within %u ms",
		 vsw_step_name(ev->step), ev->timeout_ms);
	if (ev->run)
		wd_hook_cancel_run(ev);
	wd_event_finish(ev, -ETIMEDOUT, VSW_FAILURE_TIMEOUT, message);
}

static void event_free(struct wd_event *ev)
{
	wd_timer_fini(ev->d->loop, &ev->timer);
	wd_list_del(&ev->wlink);
	if (ev->part && ev->part->ev == ev)
		ev->part->ev = NULL;
	free(ev);
}

void wd_event_finish(struct wd_event *ev, int result, uint32_t failure,
		     const char *message)
{
	wd_event_done_fn done = ev->done;

	if (ev->finished)
		return;
	ev->finished = true;
	wd_timer_disarm(&ev->timer);
	wd_list_del(&ev->wlink);
	if (ev->part && ev->part->ev == ev)
		ev->part->ev = NULL;
	if (ev->run)
		ev->run = NULL;	/* the run lives on until its process exits */
	done(ev, result, failure, message);
	/* The callback may have freed the participant: only ours is left. */
	wd_timer_fini(ev->d->loop, &ev->timer);
	free(ev);
}

void wd_event_finish_soon(struct wd_event *ev, int result, uint32_t failure,
			  const char *message)
{
	ev->soon = true;
	ev->soon_result = result;
	ev->soon_failure = failure;
	snprintf(ev->soon_message, sizeof(ev->soon_message), "%s", message ? message : "");
	wd_timer_arm_ms(&ev->timer, 0);
}

void wd_event_cancel(struct wd_event *ev)
{
	if (ev->run)
		wd_hook_cancel_run(ev);
	ev->finished = true;
	event_free(ev);
}

static struct json_object *event_json(const struct wd_event *ev)
{
	const struct wd_session *s = ev->part->s;
	const struct wd_daemon *d = s->d;
	struct json_object *o = json_object_new_object(), *vols;
	size_t i;

	json_object_object_add(o, "event", json_object_new_string(vsw_step_name(ev->step)));
	json_object_object_add(o, "id", json_object_new_uint64(ev->id));
	json_object_object_add(o, "timeout_ms", json_object_new_int64(ev->timeout_ms));
	json_object_object_add(o, "set_id", s->committed ?
			       json_object_new_string(s->set_id) : NULL);
	json_object_object_add(o, "session", json_object_new_uint64(s->id));
	json_object_object_add(o, "backup_type",
			       json_object_new_string(vsw_backup_type_name(s->backup_type)));
	if (ev->step == VSW_STEP_FREEZE)
		json_object_object_add(o, "freeze_window_ms",
				       json_object_new_int64(ev->part->freeze_window_ms));
	if (ev->step == VSW_STEP_BACKUP_COMPLETE)
		json_object_object_add(o, "success", json_object_new_boolean(ev->success));
	if (ev->step == VSW_STEP_ABORT || (ev->step == VSW_STEP_BACKUP_COMPLETE && !ev->success))
		json_object_object_add(o, "reason", json_object_new_string(ev->reason));
	if (ev->step != VSW_STEP_IDENTIFY) {
		vols = json_object_new_array();
		for (i = 0; i < s->volume_count; i++) {
			char name[64];

			wd_device_name(d, s->volumes[i], name, sizeof(name));
			json_object_array_add(vols, json_object_new_string(name));
		}
		json_object_object_add(o, "volumes", vols);
	}
	return o;
}

int wd_event_send(struct wd_part *part, uint32_t step, uint32_t timeout_ms,
		  wd_event_done_fn done)
{
	struct wd_daemon *d = part->s->d;
	struct wd_writer *w = part->w;
	struct wd_event *ev;
	int err;

	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->d = d;
	ev->w = w;
	ev->part = part;
	ev->id = ++d->next_event_id;
	ev->step = step;
	ev->timeout_ms = timeout_ms;
	ev->done = done;
	ev->sent_ns = vsw_now_ns();
	ev->success = part->s->complete_success;
	snprintf(ev->reason, sizeof(ev->reason), "%s", part->s->fail_message[0] ?
		 part->s->fail_message : part->s->end_reason);
	wd_list_init(&ev->wlink);
	err = wd_timer_init(d->loop, &ev->timer, event_timeout, ev);
	if (err) {
		free(ev);
		return err;
	}
	part->ev = ev;
	if (!w || !w->connected) {
		wd_event_finish_soon(ev, -ENOTCONN, VSW_FAILURE_NOT_RESPONDING,
				     "the writer is not connected");
		return 0;
	}
	wd_list_add_tail(&w->events, &ev->wlink);
	wd_timer_arm_ms(&ev->timer, timeout_ms);
	if (w->kind == VSW_KIND_PROCESS) {
		wd_conn_reply_more(w->conn, event_json(ev));
		return 0;
	}
	err = wd_hook_run(ev);
	if (err)
		wd_event_cancel(ev);
	return err;
}
