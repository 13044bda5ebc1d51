// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Backup sessions through vsswriterd: the requester side of the writer
 * protocol (Documentation/writers.rst). A session is one connection;
 * every call is a blocking varlink call on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#include "internal.h"
#include "../../vsswriterd/wire.h"

struct vss_session {
	int fd;
	struct vsw_reader in;
	uint32_t step_timeout_ms;
	uint32_t queue_timeout_ms;
	uint32_t backup_type;
	char *volumes[VSS_MAX_SET_DEVICES];
	size_t volume_count;
	bool writer_volumes;
	bool monitoring;
	char message[VSS_WRITER_MESSAGE_MAX];
	char writer[VSS_WRITER_NAME_MAX];
	struct vss_writer_result *results;
	size_t result_count;
	bool has_timing;
	struct vss_session_timing timing;
};

/* ---- names ---- */

VSS_EXPORT const char *vss_writer_state_name(uint32_t state)
{
	return vsw_state_name(state);
}

VSS_EXPORT const char *vss_writer_failure_name(uint32_t failure)
{
	return vsw_failure_name(failure);
}

VSS_EXPORT const char *vss_writer_step_name(uint32_t step)
{
	return vsw_step_name(step);
}

VSS_EXPORT const char *vss_writer_class_name(uint32_t writer_class)
{
	return vsw_class_name(writer_class);
}

VSS_EXPORT const char *vss_writer_kind_name(uint32_t kind)
{
	return vsw_kind_name(kind);
}

/* ---- reading replies ---- */

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static uint64_t get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_int64(v) < 0 ? 0 : json_object_get_uint64(v);
}

static bool get_bool(struct json_object *o, const char *key)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, key, &v) &&
	       json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

static void copy_str(char *dst, size_t len, struct json_object *o, const char *key)
{
	const char *v = get_str(o, key);

	snprintf(dst, len, "%s", v ? v : "");
}

static uint32_t kind_of(const char *name)
{
	if (name && !strcmp(name, "process"))
		return VSS_WRITER_PROCESS;
	if (name && !strcmp(name, "hook"))
		return VSS_WRITER_HOOK;
	if (name && !strcmp(name, "qemu-ga-hook"))
		return VSS_WRITER_QEMU_GA_HOOK;
	return 0;
}

static uint32_t class_of(const char *name)
{
	int c = vsw_class_from_name(name);

	return c < 0 ? 0 : (uint32_t)c;
}

static uint32_t failure_of(const char *name)
{
	int f = vsw_failure_from_name(name);

	return f < 0 ? 0 : (uint32_t)f;
}

static uint32_t step_of(const char *name)
{
	int st = vsw_step_from_name(name);

	return st < 0 ? 0 : (uint32_t)st;
}

static void parse_result(struct json_object *o, struct vss_writer_result *r)
{
	memset(r, 0, sizeof(*r));
	copy_str(r->name, sizeof(r->name), o, "name");
	copy_str(r->class_id, sizeof(r->class_id), o, "class_id");
	copy_str(r->instance_id, sizeof(r->instance_id), o, "instance_id");
	r->kind = kind_of(get_str(o, "kind"));
	r->writer_class = class_of(get_str(o, "class"));
	r->state = (uint32_t)get_u64(o, "state");
	r->failure = failure_of(get_str(o, "failure"));
	r->failed_step = step_of(get_str(o, "failed_step"));
	copy_str(r->message, sizeof(r->message), o, "message");
	r->excluded = get_bool(o, "excluded");
	copy_str(r->excluded_why, sizeof(r->excluded_why), o, "excluded_why");
	r->frozen_us = get_u64(o, "frozen_us");
}

/* Keeps the "writers" of a reply or an error as the session's results. */
static void take_results(struct vss_session *s, struct json_object *params)
{
	struct json_object *arr;
	size_t i, n;

	if (!json_object_object_get_ex(params, "writers", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return;
	free(s->results);
	s->results = NULL;
	s->result_count = 0;
	n = json_object_array_length(arr);
	if (!n)
		return;
	s->results = calloc(n, sizeof(*s->results));
	if (!s->results)
		return;
	for (i = 0; i < n; i++)
		parse_result(json_object_array_get_idx(arr, i), &s->results[i]);
	s->result_count = n;
}

static char **string_list(struct json_object *o, const char *key, size_t *count)
{
	struct json_object *arr;
	char **items;
	size_t i, n;

	*count = 0;
	if (!json_object_object_get_ex(o, key, &arr) || !json_object_is_type(arr, json_type_array))
		return NULL;
	n = json_object_array_length(arr);
	items = n ? calloc(n, sizeof(*items)) : NULL;
	for (i = 0; items && i < n; i++) {
		const char *v = json_object_get_string(json_object_array_get_idx(arr, i));

		items[i] = strdup(v ? v : "");
		if (items[i])
			(*count)++;
	}
	return items;
}

static void free_strings(char **items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(items[i]);
	free(items);
}

static void parse_components(struct json_object *o, struct vss_writer_info *w)
{
	struct json_object *arr;
	size_t i, j, n;

	if (!json_object_object_get_ex(o, "components", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return;
	n = json_object_array_length(arr);
	w->components = n ? calloc(n, sizeof(*w->components)) : NULL;
	if (!w->components)
		return;
	w->component_count = n;
	for (i = 0; i < n; i++) {
		struct json_object *c = json_object_array_get_idx(arr, i), *types;
		struct vss_writer_component *wc = &w->components[i];
		char **vols;
		size_t nv;
		const char *name = get_str(c, "name");

		wc->name = strdup(name ? name : "");
		wc->paths = string_list(c, "paths", &wc->path_count);
		wc->devices = string_list(c, "devices", &wc->device_count);
		if (json_object_object_get_ex(c, "backup_types", &types) &&
		    json_object_is_type(types, json_type_array))
			for (j = 0; j < json_object_array_length(types); j++) {
				int bit = vsw_backup_type_from_name(
					json_object_get_string(json_object_array_get_idx(types, j)));

				if (bit > 0)
					wc->backup_types |= (uint32_t)bit;
			}
		vols = string_list(c, "volumes", &nv);
		wc->volumes = nv ? calloc(nv, sizeof(*wc->volumes)) : NULL;
		for (j = 0; wc->volumes && j < nv; j++) {
			unsigned int ma = 0, mi = 0;

			if (sscanf(vols[j], "%u:%u", &ma, &mi) == 2) {
				wc->volumes[wc->volume_count].major = ma;
				wc->volumes[wc->volume_count].minor = mi;
				vss_sysfs_name(ma, mi, wc->volumes[wc->volume_count].name,
					       sizeof(wc->volumes[0].name));
				wc->volume_count++;
			}
		}
		free_strings(vols, nv);
	}
}

static void parse_writer(struct json_object *o, struct vss_writer_info *w)
{
	struct json_object *le;

	memset(w, 0, sizeof(*w));
	copy_str(w->name, sizeof(w->name), o, "name");
	copy_str(w->class_id, sizeof(w->class_id), o, "class_id");
	copy_str(w->instance_id, sizeof(w->instance_id), o, "instance_id");
	w->kind = kind_of(get_str(o, "kind"));
	w->writer_class = class_of(get_str(o, "class"));
	w->state = (uint32_t)get_u64(o, "state");
	w->connected = !json_object_object_get_ex(o, "connected", NULL) || get_bool(o, "connected");
	w->pid = (int32_t)get_u64(o, "pid");
	w->uid = (uint32_t)get_u64(o, "uid");
	w->freeze_window_ms = (uint32_t)get_u64(o, "freeze_window_ms");
	w->registered_ns = get_u64(o, "registered_ns");
	w->excluded = get_bool(o, "excluded");
	copy_str(w->excluded_why, sizeof(w->excluded_why), o, "excluded_why");
	if (json_object_object_get_ex(o, "last_error", &le) &&
	    json_object_is_type(le, json_type_object)) {
		w->last_error_state = (uint32_t)get_u64(le, "state");
		w->last_error_step = step_of(get_str(le, "step"));
		w->last_error_failure = failure_of(get_str(le, "failure"));
		copy_str(w->last_error_message, sizeof(w->last_error_message), le, "message");
		w->last_error_ns = get_u64(le, "time_ns");
		copy_str(w->last_error_set_id, sizeof(w->last_error_set_id), le, "set_id");
	} else if (get_str(o, "failure") && failure_of(get_str(o, "failure"))) {
		/* A participant of a gather: its failure in this session. */
		w->last_error_state = w->state;
		w->last_error_step = step_of(get_str(o, "failed_step"));
		w->last_error_failure = failure_of(get_str(o, "failure"));
		copy_str(w->last_error_message, sizeof(w->last_error_message), o, "message");
	}
	parse_components(o, w);
}

VSS_EXPORT void vss_writer_info_array_free(struct vss_writer_info *writers, size_t count)
{
	size_t i, j;

	for (i = 0; writers && i < count; i++) {
		for (j = 0; j < writers[i].component_count; j++) {
			struct vss_writer_component *c = &writers[i].components[j];

			free(c->name);
			free_strings(c->paths, c->path_count);
			free_strings(c->devices, c->device_count);
			free(c->volumes);
		}
		free(writers[i].components);
	}
	free(writers);
}

static int writers_from(struct json_object *params, struct vss_writer_info **out,
			size_t *count)
{
	struct json_object *arr;
	size_t i, n;

	*out = NULL;
	*count = 0;
	if (!json_object_object_get_ex(params, "writers", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return -EPROTO;
	n = json_object_array_length(arr);
	if (!n)
		return 0;
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		parse_writer(json_object_array_get_idx(arr, i), &(*out)[i]);
	*count = n;
	return 0;
}

/* ---- calls ---- */

static int error_code(const char *name, struct json_object *params)
{
	struct json_object *v;

	if (!strcmp(name, VSW_E_PERMISSION_DENIED))
		return -EACCES;
	if (!strcmp(name, VSW_E_WRITER_FAILED) || !strcmp(name, VSW_E_INCONSISTENT))
		return -LIBVSS_EWRITER;
	if (!strcmp(name, VSW_E_QUEUE_TIMEOUT) || !strcmp(name, VSW_E_BUSY))
		return -EBUSY;
	if (!strcmp(name, VSW_E_TIMEOUT))
		return -ETIMEDOUT;
	if (!strcmp(name, VSW_E_NO_SUCH_SET))
		return -ENOENT;
	if (!strcmp(name, VSW_E_SHUTTING_DOWN))
		return -ESHUTDOWN;
	if (!strcmp(name, VSW_E_PROVIDER)) {
		if (json_object_object_get_ex(params, "errno", &v) && json_object_get_int(v) > 0)
			return -json_object_get_int(v);
		return -EIO;
	}
	if (!strcmp(name, VSW_E_INVALID_PARAMETER) || !strcmp(name, VSW_E_WRONG_STATE) ||
	    !strcmp(name, VSW_E_NO_VOLUMES))
		return -EINVAL;
	return -EPROTO;
}

static int send_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The next message, waiting up to @timeout_ms (-1 forever). */
static int receive(struct vss_session *s, struct vsw_msg *out, int timeout_ms)
{
	const char *text;
	char why[256];
	size_t len;
	int rc;

	for (;;) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		ssize_t n;

		rc = vsw_reader_next(&s->in, &text, &len);
		if (rc == 1) {
			if (vsw_msg_parse(text, len, out, why, sizeof(why))) {
				snprintf(s->message, sizeof(s->message),
					 "vsswriterd sent a bad message: %s", why);
				return -EPROTO;
			}
			return 0;
		}
		if (rc < 0) {
			snprintf(s->message, sizeof(s->message), "vsswriterd sent a message too long");
			return -EPROTO;
		}
		if (s->in.eof) {
			snprintf(s->message, sizeof(s->message), "vsswriterd closed the connection");
			return -ECONNRESET;
		}
		rc = poll(&pfd, 1, timeout_ms);
		if (rc < 0 && errno == EINTR)
			return -EINTR;
		if (rc < 0)
			return -errno;
		if (rc == 0)
			return -ETIMEDOUT;
		n = vsw_reader_fill(&s->in, s->fd);
		if (n < 0 && n != -EAGAIN && n != -EMSGSIZE) {
			snprintf(s->message, sizeof(s->message), "lost vsswriterd: %s",
				 strerror((int)-n));
			return (int)n;
		}
	}
}

/*
 * One call: sends @method with @params (consumed), waits for the reply.
 * A reply leaves its parameters in *@reply (caller puts them); an error
 * sets the message and the results and returns its errno.
 */
static int call(struct vss_session *s, const char *method, struct json_object *params,
		struct json_object **reply)
{
	struct vsw_msg m;
	size_t len = 0;
	char *text;
	int err;

	if (reply)
		*reply = NULL;
	s->message[0] = '\0';
	s->writer[0] = '\0';
	if (s->monitoring) {
		json_object_put(params);
		snprintf(s->message, sizeof(s->message), "a monitoring session makes no calls");
		return -EINVAL;
	}
	text = vsw_msg_call(method, params, false, false, &len);
	if (!text)
		return -ENOMEM;
	err = send_all(s->fd, text, len);
	free(text);
	if (err) {
		snprintf(s->message, sizeof(s->message), "cannot talk to vsswriterd: %s",
			 strerror(-err));
		return err;
	}
	/* vsswriterd bounds every step: waiting for it is safe. A signal
	 * does not end the call; closing the session would. */
	do
		err = receive(s, &m, -1);
	while (err == -EINTR);
	if (err)
		return err;
	if (m.kind == VSW_MSG_ERROR) {
		const char *msg = get_str(m.parameters, "message");
		const char *who = get_str(m.parameters, "writer");

		snprintf(s->message, sizeof(s->message), "%s", msg ? msg : m.error);
		snprintf(s->writer, sizeof(s->writer), "%s", who ? who : "");
		take_results(s, m.parameters);
		err = error_code(m.error, m.parameters);
		vsw_msg_free(&m);
		return err;
	}
	if (m.kind != VSW_MSG_REPLY) {
		vsw_msg_free(&m);
		snprintf(s->message, sizeof(s->message), "vsswriterd answered with a call");
		return -EPROTO;
	}
	take_results(s, m.parameters);
	if (reply)
		*reply = json_object_get(m.parameters);
	vsw_msg_free(&m);
	return 0;
}

/* ---- the API ---- */

VSS_EXPORT int vss_session_open(const struct vss_session_params *params,
				struct vss_session **out)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *path = params ? params->socket_path : NULL;
	struct vss_session *s;
	int err;

	*out = NULL;
	if (!path)
		path = getenv("VSS_WRITERD_SOCKET");
	if (!path || !*path)
		path = VSW_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	vsw_reader_init(&s->in);
	if (params) {
		s->step_timeout_ms = params->step_timeout_ms;
		s->queue_timeout_ms = params->queue_timeout_ms;
		s->backup_type = params->backup_type;
	}
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		err = -errno;
		free(s);
		return err;
	}
	if (connect(s->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		err = -errno;
		close(s->fd);
		free(s);
		return err == -ENOENT || err == -ECONNREFUSED ? -LIBVSS_ENOWRITERD : err;
	}
	*out = s;
	return 0;
}

VSS_EXPORT void vss_session_close(struct vss_session *s)
{
	size_t i;

	if (!s)
		return;
	close(s->fd);
	vsw_reader_free(&s->in);
	for (i = 0; i < s->volume_count; i++)
		free(s->volumes[i]);
	free(s->results);
	free(s);
}

VSS_EXPORT int vss_session_gather(struct vss_session *s, struct vss_writer_info **out,
				  size_t *count)
{
	struct json_object *p = json_object_new_object(), *reply;
	struct vss_writer_info *writers = NULL;
	size_t n = 0;
	int err;

	if (out)
		*out = NULL;
	if (count)
		*count = 0;
	if (s->step_timeout_ms)
		json_object_object_add(p, "step_timeout_ms", json_object_new_int64(s->step_timeout_ms));
	err = call(s, VSW_M_GATHER, p, &reply);
	if (err)
		return err;
	err = writers_from(reply, &writers, &n);
	json_object_put(reply);
	if (err)
		return err;
	if (out) {
		*out = writers;
		if (count)
			*count = n;
	} else {
		vss_writer_info_array_free(writers, n);
		if (count)
			*count = n;
	}
	return 0;
}

VSS_EXPORT int vss_session_add_volume(struct vss_session *s, const char *device_path)
{
	struct vss_device dev;
	int err;

	err = vss_device_lookup(device_path, &dev);
	if (err) {
		snprintf(s->message, sizeof(s->message), "%s: %s", device_path,
			 err == -ENOTBLK ? "not a block device" : strerror(-err));
		return err;
	}
	if (s->volume_count >= VSS_MAX_SET_DEVICES)
		return -E2BIG;
	s->volumes[s->volume_count] = strdup(device_path);
	if (!s->volumes[s->volume_count])
		return -ENOMEM;
	s->volume_count++;
	return 0;
}

VSS_EXPORT int vss_session_add_writer_volumes(struct vss_session *s)
{
	s->writer_volumes = true;
	return 0;
}

VSS_EXPORT int vss_session_prepare(struct vss_session *s)
{
	struct json_object *p = json_object_new_object(), *vols = json_object_new_array();
	uint32_t q = s->queue_timeout_ms;
	size_t i;

	for (i = 0; i < s->volume_count; i++)
		json_object_array_add(vols, json_object_new_string(s->volumes[i]));
	json_object_object_add(p, "volumes", vols);
	if (s->writer_volumes)
		json_object_object_add(p, "writer_volumes", json_object_new_boolean(1));
	json_object_object_add(p, "backup_type", json_object_new_string(
		vsw_backup_type_name(s->backup_type ? s->backup_type : VSW_BACKUP_FULL)));
	json_object_object_add(p, "queue_timeout_ms", json_object_new_int64(
		q == VSS_SESSION_NO_WAIT ? 0 : q ? q : 60000));
	return call(s, VSW_M_PREPARE, p, NULL);
}

static void parse_device(struct json_object *o, struct vss_device *d)
{
	memset(d, 0, sizeof(*d));
	d->major = (uint32_t)get_u64(o, "major");
	d->minor = (uint32_t)get_u64(o, "minor");
	copy_str(d->name, sizeof(d->name), o, "name");
}

static int parse_snapshot(struct json_object *o, struct vss_snapshot_info *si)
{
	struct json_object *v, *st, *cbt;
	const char *text;

	memset(si, 0, sizeof(*si));
	text = get_str(o, "id");
	if (!text || vss_id_parse(text, &si->id))
		return -EPROTO;
	text = get_str(o, "set_id");
	if (text)
		vss_id_parse(text, &si->set_id);
	if (json_object_object_get_ex(o, "origin", &v))
		parse_device(v, &si->origin);
	if (json_object_object_get_ex(o, "image", &v))
		parse_device(v, &si->image);
	si->index = (uint32_t)get_u64(o, "index");
	si->created_ns = get_u64(o, "created_ns");
	si->state = (uint32_t)get_u64(o, "state");
	si->chunk_size = (uint32_t)get_u64(o, "chunk_size");
	copy_str(si->label, sizeof(si->label), o, "label");
	si->hold_us = get_u64(o, "hold_us");
	st = NULL;
	json_object_object_get_ex(o, "storage", &st);
	text = get_str(st, "path");
	si->storage_path = strdup(text ? text : "");
	if (!si->storage_path)
		return -ENOMEM;
	si->storage_kind = (uint32_t)get_u64(st, "kind");
	si->storage_used = get_u64(st, "used");
	si->storage_size = get_u64(st, "size");
	si->storage_limit = get_u64(st, "limit");
	if (json_object_object_get_ex(o, "cbt_point", &cbt) && get_str(cbt, "generation") &&
	    vss_id_parse(get_str(cbt, "generation"), &si->cbt_point.generation) == 0) {
		si->cbt_point.seq = get_u64(cbt, "seq");
		si->has_cbt_point = true;
	}
	return 0;
}

VSS_EXPORT int vss_session_create(struct vss_session *s, const struct vss_create_params *params,
				  struct vss_create_result *out)
{
	struct json_object *p = json_object_new_object(), *reply, *arr, *t;
	char storage[PATH_MAX];
	const char *set_id;
	size_t i, n;
	int err;

	memset(out, 0, sizeof(*out));
	s->has_timing = false;
	if (!params || !params->storage_path) {
		json_object_put(p);
		snprintf(s->message, sizeof(s->message), "no storage path");
		return -EINVAL;
	}
	if (!realpath(params->storage_path, storage)) {
		err = -errno;
		json_object_put(p);
		snprintf(s->message, sizeof(s->message), "storage %s: %s", params->storage_path,
			 strerror(-err));
		return err;
	}
	json_object_object_add(p, "storage_path", json_object_new_string(storage));
	if (params->storage_limit)
		json_object_object_add(p, "storage_limit", json_object_new_uint64(params->storage_limit));
	if (params->chunk_size)
		json_object_object_add(p, "chunk_size", json_object_new_int64(params->chunk_size));
	if (params->label)
		json_object_object_add(p, "label", json_object_new_string(params->label));
	if (params->flags & VSS_CREATE_NO_FREEZE)
		json_object_object_add(p, "no_freeze", json_object_new_boolean(1));
	if (params->hold_limit_ms)
		json_object_object_add(p, "hold_limit_ms", json_object_new_int64(params->hold_limit_ms));
	err = call(s, VSW_M_DO_SET, p, &reply);
	if (err)
		return err;
	set_id = get_str(reply, "set_id");
	if (!set_id || vss_id_parse(set_id, &out->set_id)) {
		json_object_put(reply);
		snprintf(s->message, sizeof(s->message), "vsswriterd gave no set id");
		return -EPROTO;
	}
	out->hold_us = get_u64(reply, "hold_us");
	if (json_object_object_get_ex(reply, "snapshots", &arr) &&
	    json_object_is_type(arr, json_type_array) && (n = json_object_array_length(arr))) {
		out->snapshots = calloc(n, sizeof(*out->snapshots));
		for (i = 0; out->snapshots && i < n; i++) {
			if (parse_snapshot(json_object_array_get_idx(arr, i),
					   &out->snapshots[out->snapshot_count]))
				break;
			out->snapshot_count++;
		}
	}
	if (json_object_object_get_ex(reply, "timing", &t)) {
		s->timing.prepare_snapshot_us = get_u64(t, "prepare_snapshot_us");
		s->timing.freeze_us = get_u64(t, "freeze_us");
		s->timing.commit_us = get_u64(t, "commit_us");
		s->timing.thaw_us = get_u64(t, "thaw_us");
		s->timing.frozen_us = get_u64(t, "frozen_us");
		s->timing.total_us = get_u64(t, "total_us");
		s->timing.request_to_commit_us = get_u64(t, "request_to_commit_us");
		s->has_timing = true;
	}
	json_object_put(reply);
	return 0;
}

VSS_EXPORT int vss_session_backup_complete(struct vss_session *s, bool success)
{
	struct json_object *p = json_object_new_object();

	json_object_object_add(p, "success", json_object_new_boolean(success));
	return call(s, VSW_M_BACKUP_COMPLETE, p, NULL);
}

VSS_EXPORT int vss_session_abort(struct vss_session *s)
{
	return call(s, VSW_M_ABORT, NULL, NULL);
}

VSS_EXPORT int vss_session_detach(struct vss_session *s)
{
	return call(s, VSW_M_DETACH, NULL, NULL);
}

VSS_EXPORT int vss_session_complete_set(struct vss_session *s, const struct vss_id *set_id,
					bool success)
{
	struct json_object *p = json_object_new_object();
	char id[VSS_ID_STRLEN];

	vss_id_format(set_id, id);
	json_object_object_add(p, "set_id", json_object_new_string(id));
	json_object_object_add(p, "success", json_object_new_boolean(success));
	return call(s, VSW_M_BACKUP_COMPLETE, p, NULL);
}

VSS_EXPORT int vss_session_abort_set(struct vss_session *s, const struct vss_id *set_id,
				     bool *deleted)
{
	struct json_object *p = json_object_new_object(), *reply;
	char id[VSS_ID_STRLEN];
	int err;

	vss_id_format(set_id, id);
	json_object_object_add(p, "set_id", json_object_new_string(id));
	err = call(s, VSW_M_ABORT, p, &reply);
	if (deleted)
		*deleted = !err && get_bool(reply, "set_deleted");
	json_object_put(reply);
	return err;
}

VSS_EXPORT int vss_session_list_writers(struct vss_session *s, struct vss_writer_info **out,
					size_t *count)
{
	struct json_object *reply;
	int err;

	*out = NULL;
	*count = 0;
	err = call(s, VSW_M_LIST_WRITERS, NULL, &reply);
	if (err)
		return err;
	err = writers_from(reply, out, count);
	json_object_put(reply);
	/* A listing is no session outcome. */
	free(s->results);
	s->results = NULL;
	s->result_count = 0;
	return err;
}

VSS_EXPORT int vss_session_results(const struct vss_session *s,
				   const struct vss_writer_result **out, size_t *count)
{
	*out = s->results;
	*count = s->result_count;
	return 0;
}

VSS_EXPORT const char *vss_session_error_message(const struct vss_session *s)
{
	return s->message[0] ? s->message : NULL;
}

VSS_EXPORT const char *vss_session_error_writer(const struct vss_session *s)
{
	return s->writer[0] ? s->writer : NULL;
}

VSS_EXPORT int vss_session_timing(const struct vss_session *s, struct vss_session_timing *out)
{
	if (!s->has_timing)
		return -ENODATA;
	*out = s->timing;
	return 0;
}

VSS_EXPORT int vss_session_monitor_start(struct vss_session *s)
{
	struct vsw_msg m;
	size_t len = 0;
	char *text = vsw_msg_call(VSW_M_MONITOR, NULL, true, false, &len);
	int err;

	if (!text)
		return -ENOMEM;
	err = send_all(s->fd, text, len);
	free(text);
	if (err)
		return err;
	err = receive(s, &m, 10000);
	if (err)
		return err;
	if (m.kind != VSW_MSG_REPLY || !m.continues) {
		snprintf(s->message, sizeof(s->message), "vsswriterd refused to send events: %s",
			 m.error ? m.error : "no stream");
		vsw_msg_free(&m);
		return -EPROTO;
	}
	vsw_msg_free(&m);
	s->monitoring = true;
	return 0;
}

VSS_EXPORT int vss_session_fd(const struct vss_session *s)
{
	return s->monitoring ? s->fd : -EBADF;
}

VSS_EXPORT int vss_session_monitor_next(struct vss_session *s, struct vss_writer_event *out,
					int timeout_ms)
{
	struct vsw_msg m;
	int err;

	if (!s->monitoring)
		return -EBADF;
	err = receive(s, &m, timeout_ms);
	if (err)
		return err;
	memset(out, 0, sizeof(*out));
	if (m.kind != VSW_MSG_REPLY) {
		vsw_msg_free(&m);
		return -ECONNRESET;
	}
	copy_str(out->type, sizeof(out->type), m.parameters, "event");
	out->time_ns = get_u64(m.parameters, "time_ns");
	copy_str(out->writer, sizeof(out->writer), m.parameters, "writer");
	out->state = (uint32_t)get_u64(m.parameters, "state");
	out->previous = (uint32_t)get_u64(m.parameters, "previous");
	copy_str(out->step, sizeof(out->step), m.parameters, "step");
	copy_str(out->failure, sizeof(out->failure), m.parameters, "failure");
	copy_str(out->message, sizeof(out->message), m.parameters, "message");
	if (!out->message[0])
		copy_str(out->message, sizeof(out->message), m.parameters, "reason");
	copy_str(out->set_id, sizeof(out->set_id), m.parameters, "set_id");
	out->session = get_u64(m.parameters, "session");
	out->success = get_bool(m.parameters, "success");
	vsw_msg_free(&m);
	return 0;
}
