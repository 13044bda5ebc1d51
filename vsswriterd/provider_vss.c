// SPDX-License-Identifier: GPL-2.0
/*
 * The provider: the vss kernel module, through libvss. The daemon is the
 * only one that calls vss_create_set() for a writer-coordinated set; the
 * kernel freezes the mounted filesystems of the set itself, around the
 * commit, within the hold limit. The handle is opened before the first
 * freeze (prepare), so that nothing is opened while writers are frozen.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "daemon.h"
#include "libvss.h"

static struct vss_handle *handle;

static void error_from(struct wd_provider_error *e, int err, const char *object)
{
	const char *msg = handle ? vss_last_error_message(handle) : NULL;
	const char *obj = handle ? vss_last_error_object(handle) : NULL;

	e->err = err;
	snprintf(e->message, sizeof(e->message), "%s", msg ? msg : vss_strerror(err));
	snprintf(e->object, sizeof(e->object), "%s", obj ? obj : object ? object : "");
}

static int vss_prepare(void *ctx, struct wd_provider_error *e)
{
	int err;

	(void)ctx;
	if (handle)
		return 0;
	err = vss_open(&handle);
	if (err) {
		handle = NULL;
		e->err = err;
		snprintf(e->message, sizeof(e->message), "cannot open the vss module: %s",
			 vss_strerror(err));
		return err;
	}
	return 0;
}

static struct json_object *device_json(const struct vss_device *dev)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "major", json_object_new_int64(dev->major));
	json_object_object_add(o, "minor", json_object_new_int64(dev->minor));
	json_object_object_add(o, "name", json_object_new_string(dev->name));
	return o;
}

static struct json_object *snapshot_json(const struct vss_snapshot_info *s)
{
	struct json_object *o = json_object_new_object(), *st, *image;
	char id[VSS_ID_STRLEN], set[VSS_ID_STRLEN], path[64];

	vss_id_format(&s->id, id);
	vss_id_format(&s->set_id, set);
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "set_id", json_object_new_string(set));
	json_object_object_add(o, "index", json_object_new_int64(s->index));
	json_object_object_add(o, "origin", device_json(&s->origin));
	image = device_json(&s->image);
	snprintf(path, sizeof(path), "/dev/%s", s->image.name);
	json_object_object_add(image, "path", json_object_new_string(path));
	json_object_object_add(o, "image", image);
	json_object_object_add(o, "created_ns", json_object_new_uint64(s->created_ns));
	json_object_object_add(o, "state", json_object_new_int64(s->state));
	json_object_object_add(o, "chunk_size", json_object_new_int64(s->chunk_size));
	json_object_object_add(o, "label", json_object_new_string(s->label));
	json_object_object_add(o, "hold_us", json_object_new_uint64(s->hold_us));
	st = json_object_new_object();
	json_object_object_add(st, "path", json_object_new_string(s->storage_path));
	json_object_object_add(st, "kind", json_object_new_int64(s->storage_kind));
	json_object_object_add(st, "used", json_object_new_uint64(s->storage_used));
	json_object_object_add(st, "size", json_object_new_uint64(s->storage_size));
	json_object_object_add(st, "limit", json_object_new_uint64(s->storage_limit));
	json_object_object_add(o, "storage", st);
	if (s->has_cbt_point) {
		char gen[VSS_ID_STRLEN];
		struct json_object *cbt = json_object_new_object();

		vss_id_format(&s->cbt_point.generation, gen);
		json_object_object_add(cbt, "generation", json_object_new_string(gen));
		json_object_object_add(cbt, "seq", json_object_new_uint64(s->cbt_point.seq));
		json_object_object_add(o, "cbt_point", cbt);
	}
	return o;
}

static int vss_create(void *ctx, const struct wd_create_request *req,
		      struct wd_create_outcome *out, struct wd_provider_error *e)
{
	struct vss_create_params params = { 0 };
	struct vss_create_result res;
	size_t i;
	int err;

	err = vss_prepare(ctx, e);
	if (err)
		return err;
	/* The paths were checked at PrepareBackup; they must still name the
	 * same devices (/dev cannot be frozen, so looking is safe). */
	for (i = 0; i < req->device_count; i++) {
		struct stat st;

		if (stat(req->device_paths[i], &st) || !S_ISBLK(st.st_mode) ||
		    st.st_rdev != req->devices[i]) {
			e->err = -ENODEV;
			snprintf(e->message, sizeof(e->message),
				 "the device changed since PrepareBackup");
			snprintf(e->object, sizeof(e->object), "%s", req->device_paths[i]);
			return -ENODEV;
		}
	}
	params.devices = req->device_paths;
	params.device_count = req->device_count;
	params.storage_path = req->storage_path;
	params.storage_limit = req->storage_limit;
	params.chunk_size = req->chunk_size;
	params.label = req->label;
	params.flags = req->flags;
	params.hold_limit_ms = req->hold_limit_ms;
	err = vss_create_set(handle, &params, &res);
	if (err) {
		error_from(e, err, NULL);
		/* A socket error would make every later call fail: reopen. */
		if (err == -EBADF || err == -ECONNRESET || err == -EPIPE) {
			vss_close(handle);
			handle = NULL;
		}
		return err;
	}
	vss_id_format(&res.set_id, out->set_id);
	out->hold_us = res.hold_us;
	out->created_ns = res.snapshot_count ? res.snapshots[0].created_ns : vsw_realtime_ns();
	out->snapshots = json_object_new_array();
	for (i = 0; i < res.snapshot_count; i++)
		json_object_array_add(out->snapshots, snapshot_json(&res.snapshots[i]));
	vss_create_result_free(&res);
	return 0;
}

static int vss_delete(void *ctx, const char *set_id, struct wd_provider_error *e)
{
	struct vss_id id;
	int err;

	err = vss_prepare(ctx, e);
	if (err)
		return err;
	if (vss_id_parse(set_id, &id)) {
		e->err = -EINVAL;
		snprintf(e->message, sizeof(e->message), "\"%s\" is not a set id", set_id);
		return -EINVAL;
	}
	err = vss_delete_set(handle, &id, 0);
	if (err == -ENOENT)
		return 0;
	if (err)
		error_from(e, err, set_id);
	return err;
}

static int vss_sets_since(void *ctx, const dev_t *devices, size_t device_count,
			  uint64_t since_ns, char (*ids)[VSW_ID_STRLEN], size_t max,
			  size_t *count)
{
	struct wd_provider_error e = { 0 };
	struct vss_snapshot_info *snaps = NULL;
	size_t n = 0, i, j, k;
	int err;

	*count = 0;
	err = vss_prepare(ctx, &e);
	if (!err)
		err = vss_list_snapshots(handle, NULL, &snaps, &n);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		char id[VSS_ID_STRLEN];
		bool ours = false, seen = false;

		if (snaps[i].created_ns < since_ns)
			continue;
		for (j = 0; j < device_count; j++)
			if (makedev(snaps[i].origin.major, snaps[i].origin.minor) == devices[j])
				ours = true;
		if (!ours)
			continue;
		vss_id_format(&snaps[i].set_id, id);
		for (k = 0; k < *count; k++)
			if (!strcmp(ids[k], id))
				seen = true;
		if (!seen && *count < max)
			snprintf(ids[(*count)++], VSW_ID_STRLEN, "%s", id);
	}
	vss_snapshot_info_array_free(snaps, n);
	return 0;
}

static int vss_set_exists(void *ctx, const char *set_id)
{
	struct wd_provider_error e = { 0 };
	struct vss_snapshot_info *snaps = NULL;
	struct vss_id id;
	size_t n = 0, i;
	int err, found = 0;

	if (vss_id_parse(set_id, &id))
		return 0;
	err = vss_prepare(ctx, &e);
	if (!err)
		err = vss_list_snapshots(handle, NULL, &snaps, &n);
	if (err)
		return err;
	for (i = 0; i < n; i++)
		if (vss_id_equal(&snaps[i].set_id, &id))
			found = 1;
	vss_snapshot_info_array_free(snaps, n);
	return found;
}

static void vss_provider_close(void *ctx)
{
	(void)ctx;
	vss_close(handle);
	handle = NULL;
}

const struct wd_provider wd_provider_vss = {
	.prepare = vss_prepare,
	.create = vss_create,
	.delete_set = vss_delete,
	.sets_since = vss_sets_since,
	.set_exists = vss_set_exists,
	.close = vss_provider_close,
};
