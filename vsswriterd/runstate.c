// SPDX-License-Identifier: GPL-2.0
/*
 * The state file, STATE_DIR/state.json, on /run (a tmpfs: writing it is
 * allowed while writers are frozen, and it dies with the boot). It holds
 * the sets handed over and not yet completed, with their writers, and the
 * commit in flight. After a crash the next vsswriterd reads it:
 *   - a commit in flight (the sequence died around the commit): the set
 *     it made, named or found by its devices and time, is deleted;
 *   - a set detached by its requester keeps waiting for backup-complete;
 *   - a set its requester still owned is deleted, and its writers get
 *     backup-complete with success false when they register again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sysmacros.h>

#include "daemon.h"

struct wd_session *wd_session_restore(struct wd_daemon *d, size_t part_count);
int wd_session_restore_part(struct wd_session *s, const char *name, uint32_t kind,
			    const char *class_id, const char *instance_id, uint32_t cls);
void wd_session_restore_released(struct wd_session *s);

static void path_of(const struct wd_daemon *d, const char *leaf, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", d->state_dir, leaf);
}

static struct json_object *set_record(const struct wd_session *s)
{
	struct json_object *o = json_object_new_object(), *writers = json_object_new_array();
	size_t i;

	json_object_object_add(o, "set_id", json_object_new_string(s->set_id));
	json_object_object_add(o, "detached", json_object_new_boolean(s->detached));
	json_object_object_add(o, "requester_uid", json_object_new_int64(s->uid));
	json_object_object_add(o, "created_ns", json_object_new_uint64(s->created_ns));
	json_object_object_add(o, "step_timeout_ms", json_object_new_int64(s->step_timeout_ms));
	for (i = 0; i < s->part_count; i++) {
		const struct wd_part *p = &s->parts[i];
		struct json_object *w;

		/* In flight, a writer sent post-snapshot may wait for
		 * backup-complete already. */
		if (p->excluded || !(p->post_done || (s->inflight && p->post_sent)))
			continue;
		w = json_object_new_object();
		json_object_object_add(w, "name", json_object_new_string(p->name));
		json_object_object_add(w, "kind", json_object_new_int(p->kind));
		json_object_object_add(w, "class", json_object_new_int(p->writer_class));
		json_object_object_add(w, "class_id", json_object_new_string(p->class_id));
		json_object_object_add(w, "instance_id", json_object_new_string(p->instance_id));
		json_object_array_add(writers, w);
	}
	json_object_object_add(o, "writers", writers);
	return o;
}

void wd_runstate_save(struct wd_daemon *d)
{
	struct json_object *root, *sets;
	struct wd_list *pos;
	char path[VSW_WIRE_PATH_MAX + 32], tmp[VSW_WIRE_PATH_MAX + 32];
	const char *text;
	size_t len;
	int fd;

	if (!d)
		return;
	root = json_object_new_object();
	sets = json_object_new_array();
	json_object_object_add(root, "version", json_object_new_int(1));
	for (pos = d->sessions.next; pos != &d->sessions; pos = pos->next) {
		struct wd_session *s = wd_container_of(pos, struct wd_session, link);

		if (s->inflight) {
			struct json_object *in = json_object_new_object(), *devs;
			size_t i;

			json_object_object_add(in, "session", json_object_new_uint64(s->id));
			json_object_object_add(in, "started_ns",
					       json_object_new_uint64(s->t_request_real));
			devs = json_object_new_array();
			for (i = 0; i < s->volume_count; i++) {
				char text_dev[32];

				snprintf(text_dev, sizeof(text_dev), "%u:%u", major(s->volumes[i]),
					 minor(s->volumes[i]));
				json_object_array_add(devs, json_object_new_string(text_dev));
			}
			json_object_object_add(in, "devices", devs);
			json_object_object_add(in, "set_id", s->committed ?
					       json_object_new_string(s->set_id) : NULL);
			if (s->committed) {
				struct json_object *rec = set_record(s), *w;

				/* Those that finished post-snapshot are told. */
				if (json_object_object_get_ex(rec, "writers", &w))
					json_object_object_add(in, "writers", json_object_get(w));
				json_object_put(rec);
			}
			json_object_object_add(root, "inflight", in);
			continue;
		}
		if (!s->committed || s->set_deleted)
			continue;
		if (s->state != WS_CREATED && s->state != WS_COMPLETING &&
		    s->state != WS_RELEASING)
			continue;
		if (s->recovered && s->state == WS_RELEASING)
			continue;	/* deleted already */
		json_object_array_add(sets, set_record(s));
	}
	json_object_object_add(root, "sets", sets);
	text = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
	path_of(d, "state.json", path, sizeof(path));
	path_of(d, "state.json.new", tmp, sizeof(tmp));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    close(fd) < 0 || rename(tmp, path) < 0) {
		wd_err("cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
	}
	json_object_put(root);
}

void wd_runstate_commit_begin(struct wd_daemon *d, struct wd_session *s)
{
	s->inflight = true;
	wd_runstate_save(d);
}

void wd_runstate_commit_end(struct wd_daemon *d, struct wd_session *s)
{
	s->inflight = false;
	wd_runstate_save(d);
}

static void recover_set(struct wd_daemon *d, struct json_object *o);

static void delete_set(struct wd_daemon *d, const char *set_id, const char *why)
{
	struct wd_provider_error e = { 0 };

	if (d->provider->delete_set(d->provider_ctx, set_id, &e))
		wd_err("recovery: cannot delete set %s (%s): %s", set_id, why,
		       e.message[0] ? e.message : strerror(-e.err));
	else
		wd_info("recovery: deleted set %s: %s", set_id, why);
}

static bool known_set(struct json_object *sets, const char *id)
{
	size_t i;

	for (i = 0; sets && i < json_object_array_length(sets); i++) {
		struct json_object *o = json_object_array_get_idx(sets, i), *v;

		if (json_object_object_get_ex(o, "set_id", &v) &&
		    !strcasecmp(json_object_get_string(v), id))
			return true;
	}
	return false;
}

static void recover_inflight(struct wd_daemon *d, struct json_object *in,
			     struct json_object *sets)
{
	struct json_object *v, *devs;
	char ids[WD_MAX_VOLUMES][VSW_ID_STRLEN];
	dev_t devices[WD_MAX_VOLUMES];
	size_t n = 0, count = 0, i;
	uint64_t since = 0;

	if (json_object_object_get_ex(in, "set_id", &v) && json_object_is_type(v, json_type_string)) {
		struct json_object *w;

		/* Writers that got post-snapshot wait for backup-complete:
		 * they get it, with failure, when they come back. */
		if (json_object_object_get_ex(in, "writers", &w) &&
		    json_object_array_length(w) > 0) {
			json_object_object_add(in, "detached", json_object_new_boolean(0));
			recover_set(d, in);
			return;
		}
		delete_set(d, json_object_get_string(v),
			   "vsswriterd died before the set was handed over");
		return;
	}
	if (json_object_object_get_ex(in, "started_ns", &v))
		since = json_object_get_uint64(v);
	if (!json_object_object_get_ex(in, "devices", &devs) ||
	    !json_object_is_type(devs, json_type_array))
		return;
	for (i = 0; i < json_object_array_length(devs) && n < WD_MAX_VOLUMES; i++) {
		unsigned int ma, mi;

		if (sscanf(json_object_get_string(json_object_array_get_idx(devs, i)), "%u:%u",
			   &ma, &mi) == 2)
			devices[n++] = makedev(ma, mi);
	}
	/* It died inside the commit: the kernel may have made the set. */
	if (!n || d->provider->sets_since(d->provider_ctx, devices, n, since, ids,
					  WD_MAX_VOLUMES, &count))
		return;
	for (i = 0; i < count; i++)
		if (!known_set(sets, ids[i]))
			delete_set(d, ids[i], "vsswriterd died during its commit");
}

static void recover_set(struct wd_daemon *d, struct json_object *o)
{
	struct json_object *v, *writers;
	const char *set_id;
	struct wd_session *s;
	bool detached = false;
	size_t i, n;

	if (!json_object_object_get_ex(o, "set_id", &v) || !vsw_is_uuid(json_object_get_string(v)))
		return;
	set_id = json_object_get_string(v);
	if (d->provider->set_exists(d->provider_ctx, set_id) != 1) {
		wd_info("recovery: set %s is gone already", set_id);
		return;
	}
	if (json_object_object_get_ex(o, "detached", &v))
		detached = json_object_get_boolean(v);
	if (!json_object_object_get_ex(o, "writers", &writers) ||
	    !json_object_is_type(writers, json_type_array))
		writers = NULL;
	n = writers ? json_object_array_length(writers) : 0;
	s = wd_session_restore(d, n);
	if (!s)
		return;
	s->committed = true;
	snprintf(s->set_id, sizeof(s->set_id), "%s", set_id);
	if (json_object_object_get_ex(o, "created_ns", &v))
		s->created_ns = json_object_get_uint64(v);
	if (json_object_object_get_ex(o, "requester_uid", &v))
		s->uid = (uid_t)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "step_timeout_ms", &v) && json_object_get_int64(v) > 0)
		s->step_timeout_ms = (uint32_t)json_object_get_int64(v);
	for (i = 0; i < n; i++) {
		struct json_object *w = json_object_array_get_idx(writers, i), *name, *kind,
				   *cls, *cid, *iid;

		if (!json_object_object_get_ex(w, "name", &name) ||
		    !json_object_object_get_ex(w, "kind", &kind) ||
		    !json_object_object_get_ex(w, "class", &cls) ||
		    !json_object_object_get_ex(w, "class_id", &cid) ||
		    !json_object_object_get_ex(w, "instance_id", &iid))
			continue;
		wd_session_restore_part(s, json_object_get_string(name),
					(uint32_t)json_object_get_int(kind),
					json_object_get_string(cid), json_object_get_string(iid),
					(uint32_t)json_object_get_int(cls));
	}
	if (detached) {
		s->detached = true;
		s->state = WS_CREATED;
		wd_info("recovery: set %s waits for backup-complete", set_id);
		return;
	}
	delete_set(d, set_id, "it was not handed over to a requester that detached it");
	s->set_deleted = true;
	wd_session_restore_released(s);
}

void wd_runstate_recover(struct wd_daemon *d)
{
	char path[VSW_WIRE_PATH_MAX + 32];
	struct json_object *root, *in, *sets;
	size_t i;

	path_of(d, "state.json", path, sizeof(path));
	root = json_object_from_file(path);
	if (!root) {
		if (access(path, F_OK) == 0)
			wd_err("recovery: %s is unreadable; ignoring it", path);
		return;
	}
	if (!json_object_object_get_ex(root, "sets", &sets) ||
	    !json_object_is_type(sets, json_type_array))
		sets = NULL;
	if (d->provider->prepare) {
		struct wd_provider_error e = { 0 };

		if (d->provider->prepare(d->provider_ctx, &e)) {
			wd_err("recovery: %s: the sets of the last run stay as they are",
			       e.message[0] ? e.message : "the vss module is not available");
			json_object_put(root);
			return;
		}
	}
	if (json_object_object_get_ex(root, "inflight", &in) &&
	    json_object_is_type(in, json_type_object))
		recover_inflight(d, in, sets);
	for (i = 0; sets && i < json_object_array_length(sets); i++)
		recover_set(d, json_object_array_get_idx(sets, i));
	json_object_put(root);
	wd_runstate_save(d);
}
