// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Snapshot sets: creating them, and describing the snapshots that exist.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "internal.h"

static const struct nla_policy device_policy[VSS_A_MAX + 1] = {
	[VSS_A_DEV_MAJOR] = { .type = NLA_U32 },
	[VSS_A_DEV_MINOR] = { .type = NLA_U32 },
	[VSS_A_DEV_NAME] = { .type = NLA_STRING },
};

#define ID_POLICY { .type = NLA_UNSPEC, .minlen = VSS_ID_LEN, .maxlen = VSS_ID_LEN }

static const struct nla_policy snapshot_policy[VSS_A_MAX + 1] = {
	[VSS_A_SNAP_ID] = ID_POLICY,
	[VSS_A_SET_ID] = ID_POLICY,
	[VSS_A_ORIGIN] = { .type = NLA_NESTED },
	[VSS_A_IMAGE] = { .type = NLA_NESTED },
	[VSS_A_INDEX] = { .type = NLA_U32 },
	[VSS_A_CREATED_NS] = { .type = NLA_U64 },
	[VSS_A_STATE] = { .type = NLA_U32 },
	[VSS_A_ERRNO] = { .type = NLA_U32 },
	[VSS_A_REASON] = { .type = NLA_STRING },
	[VSS_A_CHUNK_SIZE] = { .type = NLA_U32 },
	[VSS_A_LABEL] = { .type = NLA_STRING },
	[VSS_A_STORAGE_PATH] = { .type = NLA_STRING },
	[VSS_A_STORAGE_KIND] = { .type = NLA_U32 },
	[VSS_A_STORAGE_USED] = { .type = NLA_U64 },
	[VSS_A_STORAGE_SIZE] = { .type = NLA_U64 },
	[VSS_A_STORAGE_LIMIT] = { .type = NLA_U64 },
	[VSS_A_HOLD_US] = { .type = NLA_U64 },
	[VSS_A_OPEN_COUNT] = { .type = NLA_U32 },
	[VSS_A_CBT_GENERATION] = ID_POLICY,
	[VSS_A_CBT_SEQ] = { .type = NLA_U64 },
};

/* Top level of a GET_SNAPSHOT reply and of a CREATE_SET reply. */
static const struct nla_policy reply_policy[VSS_A_MAX + 1] = {
	[VSS_A_SNAPSHOT] = { .type = NLA_NESTED },
	[VSS_A_SNAPSHOTS] = { .type = NLA_NESTED },
	[VSS_A_SET_ID] = ID_POLICY,
	[VSS_A_HOLD_US] = { .type = NLA_U64 },
};

int vss_parse_device(const struct nlattr *nest, struct vss_device *out)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };

	memset(out, 0, sizeof(*out));
	if (nla_parse_nested(tb, VSS_A_MAX, (struct nlattr *)nest, device_policy) < 0)
		return -EPROTO;
	if (!tb[VSS_A_DEV_MAJOR] || !tb[VSS_A_DEV_MINOR])
		return -EPROTO;
	out->major = nla_get_u32(tb[VSS_A_DEV_MAJOR]);
	out->minor = nla_get_u32(tb[VSS_A_DEV_MINOR]);
	if (tb[VSS_A_DEV_NAME])
		nla_strlcpy(out->name, tb[VSS_A_DEV_NAME], sizeof(out->name));
	return 0;
}

static uint32_t get_u32(struct nlattr *attr)
{
	return attr ? nla_get_u32(attr) : 0;
}

static uint64_t get_u64(struct nlattr *attr)
{
	return attr ? nla_get_u64(attr) : 0;
}

/*
 * Only the id is required: a field the module leaves out reads as zero or
 * empty, so that a module adding or dropping an optional attribute does
 * not break listing.
 */
int vss_parse_snapshot(const struct nlattr *nest, struct vss_snapshot_info *out)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	int err;

	memset(out, 0, sizeof(*out));
	if (nla_parse_nested(tb, VSS_A_MAX, (struct nlattr *)nest, snapshot_policy) < 0)
		return -EPROTO;
	err = vss_id_get(tb[VSS_A_SNAP_ID], &out->id);
	if (err)
		return err;
	if (tb[VSS_A_SET_ID])
		vss_id_get(tb[VSS_A_SET_ID], &out->set_id);
	if (tb[VSS_A_ORIGIN] && vss_parse_device(tb[VSS_A_ORIGIN], &out->origin))
		return -EPROTO;
	if (tb[VSS_A_IMAGE] && vss_parse_device(tb[VSS_A_IMAGE], &out->image))
		return -EPROTO;
	out->index = get_u32(tb[VSS_A_INDEX]);
	out->created_ns = get_u64(tb[VSS_A_CREATED_NS]);
	out->state = get_u32(tb[VSS_A_STATE]);
	out->error = (int)get_u32(tb[VSS_A_ERRNO]);
	if (tb[VSS_A_REASON])
		nla_strlcpy(out->reason, tb[VSS_A_REASON], sizeof(out->reason));
	out->chunk_size = get_u32(tb[VSS_A_CHUNK_SIZE]);
	if (tb[VSS_A_LABEL])
		nla_strlcpy(out->label, tb[VSS_A_LABEL], sizeof(out->label));
	out->storage_kind = get_u32(tb[VSS_A_STORAGE_KIND]);
	out->storage_used = get_u64(tb[VSS_A_STORAGE_USED]);
	out->storage_size = get_u64(tb[VSS_A_STORAGE_SIZE]);
	out->storage_limit = get_u64(tb[VSS_A_STORAGE_LIMIT]);
	out->hold_us = get_u64(tb[VSS_A_HOLD_US]);
	out->open_count = get_u32(tb[VSS_A_OPEN_COUNT]);
	/* A point is whole or absent: a generation without a sequence is none. */
	if (tb[VSS_A_CBT_GENERATION] && tb[VSS_A_CBT_SEQ]) {
		err = vss_id_get(tb[VSS_A_CBT_GENERATION], &out->cbt_point.generation);
		if (err)
			return err;
		out->cbt_point.seq = nla_get_u64(tb[VSS_A_CBT_SEQ]);
		out->has_cbt_point = true;
	}
	out->storage_path = strdup(tb[VSS_A_STORAGE_PATH] ?
				   (const char *)nla_data(tb[VSS_A_STORAGE_PATH]) : "");
	if (!out->storage_path)
		return -ENOMEM;
	return 0;
}

VSS_EXPORT void vss_snapshot_info_clear(struct vss_snapshot_info *info)
{
	if (!info)
		return;
	free(info->storage_path);
	memset(info, 0, sizeof(*info));
}

VSS_EXPORT void vss_snapshot_info_array_free(struct vss_snapshot_info *infos,
					     size_t count)
{
	size_t i;

	if (!infos)
		return;
	for (i = 0; i < count; i++)
		free(infos[i].storage_path);
	free(infos);
}

/* A growing array of snapshot infos, filled by reply handlers. */
struct snapshot_array {
	struct vss_snapshot_info *items;
	size_t count;
	size_t capacity;
};

static int snapshot_array_append_parsed(struct snapshot_array *arr,
					const struct nlattr *nest)
{
	int err;

	if (arr->count == arr->capacity) {
		size_t capacity = arr->capacity ? 2 * arr->capacity : 16;
		struct vss_snapshot_info *items;

		items = realloc(arr->items, capacity * sizeof(*items));
		if (!items)
			return -ENOMEM;
		arr->items = items;
		arr->capacity = capacity;
	}
	err = vss_parse_snapshot(nest, &arr->items[arr->count]);
	if (err) {
		vss_snapshot_info_clear(&arr->items[arr->count]);
		return err;
	}
	arr->count++;
	return 0;
}

static void snapshot_array_release(struct snapshot_array *arr)
{
	vss_snapshot_info_array_free(arr->items, arr->count);
	memset(arr, 0, sizeof(*arr));
}

int vss_put_device(struct nl_msg *msg, int attrtype, uint32_t major,
		   uint32_t minor, struct nlattr **nest_out)
{
	struct nlattr *nest = nla_nest_start(msg, attrtype);

	if (!nest || nla_put_u32(msg, VSS_A_DEV_MAJOR, major) < 0 ||
	    nla_put_u32(msg, VSS_A_DEV_MINOR, minor) < 0)
		return -EMSGSIZE;
	nla_nest_end(msg, nest);
	if (nest_out)
		*nest_out = nest;
	return 0;
}

/*
 * Builds the CREATE_SET request from checked parameters. Each device nest
 * and the storage attributes are recorded as spans, so that an extended
 * ack blaming one of them names it the way the caller wrote it.
 */
int vss_build_create(struct vss_request *req,
		     const struct vss_create_params *params,
		     const struct vss_device *devices,
		     const char *absolute_storage_path)
{
	struct nl_msg *msg = req->msg;
	struct nlattr *list, *attr;
	size_t i;
	int err;

	list = nla_nest_start(msg, VSS_A_DEVICES);
	if (!list)
		return -EMSGSIZE;
	for (i = 0; i < params->device_count; i++) {
		err = vss_put_device(msg, VSS_A_DEVICE, devices[i].major,
				     devices[i].minor, &attr);
		if (err)
			return err;
		err = vss_request_add_span(req, attr, params->devices[i]);
		if (err)
			return err;
	}
	nla_nest_end(msg, list);

	attr = (struct nlattr *)nlmsg_tail(nlmsg_hdr(msg));
	if (nla_put_string(msg, VSS_A_STORAGE_PATH, absolute_storage_path) < 0)
		return -EMSGSIZE;
	err = vss_request_add_span(req, attr, params->storage_path);
	if (err)
		return err;
	if (params->storage_limit) {
		attr = (struct nlattr *)nlmsg_tail(nlmsg_hdr(msg));
		if (nla_put_u64(msg, VSS_A_STORAGE_LIMIT, params->storage_limit) < 0)
			return -EMSGSIZE;
		err = vss_request_add_span(req, attr, params->storage_path);
		if (err)
			return err;
	}
	if (params->chunk_size &&
	    nla_put_u32(msg, VSS_A_CHUNK_SIZE, params->chunk_size) < 0)
		return -EMSGSIZE;
	if (params->label && *params->label &&
	    nla_put_string(msg, VSS_A_LABEL, params->label) < 0)
		return -EMSGSIZE;
	if (params->flags && nla_put_u32(msg, VSS_A_FLAGS, params->flags) < 0)
		return -EMSGSIZE;
	if (params->hold_limit_ms &&
	    nla_put_u32(msg, VSS_A_HOLD_LIMIT_MS, params->hold_limit_ms) < 0)
		return -EMSGSIZE;
	return 0;
}

static bool is_power_of_two(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* The size of struct vss_create_params in LIBVSS_1.0, what size 0 means. */
#define CREATE_PARAMS_SIZE_3_0 \
	(offsetof(struct vss_create_params, hold_limit_ms) + sizeof(uint32_t))

/*
 * Copies the caller's parameters, of the size the caller was built with,
 * into one of this library's size; members the caller does not know are
 * zero (their default). See "ABI rules" in libvss.h.
 */
static int import_create_params(struct vss_handle *h,
				const struct vss_create_params *given,
				struct vss_create_params *p)
{
	size_t size = given->size ? given->size : CREATE_PARAMS_SIZE_3_0;
	const unsigned char *bytes = (const unsigned char *)given;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (size < CREATE_PARAMS_SIZE_3_0)
		return vss_error_set(h, -EINVAL, NULL,
				     "struct vss_create_params of %zu bytes: smaller than any version of it (%zu)",
				     size, (size_t)CREATE_PARAMS_SIZE_3_0);
	for (i = sizeof(*p); i < size; i++)
		if (bytes[i])
			return vss_error_set(h, -E2BIG, NULL,
					     "struct vss_create_params sets members this libvss %s does not know (%zu bytes given, %zu known)",
					     LIBVSS_VERSION_STRING, size, sizeof(*p));
	memcpy(p, given, size < sizeof(*p) ? size : sizeof(*p));
	p->size = sizeof(*p);
	return 0;
}

/* Checks what needs no kernel, so that bad input fails before any change. */
static int check_create_params(struct vss_handle *h,
			       const struct vss_create_params *p)
{
	if (!p->devices || p->device_count == 0)
		return vss_error_set(h, -EINVAL, NULL, "no device given");
	if (p->device_count > VSS_MAX_SET_DEVICES)
		return vss_error_set(h, -EINVAL, NULL,
				     "%zu devices given, a set holds at most %d",
				     p->device_count, VSS_MAX_SET_DEVICES);
	if (!p->storage_path || !*p->storage_path)
		return vss_error_set(h, -EINVAL, NULL, "no storage path given");
	if (p->chunk_size && (!is_power_of_two(p->chunk_size) ||
			      p->chunk_size < VSS_MIN_CHUNK_SIZE ||
			      p->chunk_size > VSS_MAX_CHUNK_SIZE))
		return vss_error_set(h, -EINVAL, NULL,
				     "chunk size %u is not a power of two from %u to %u",
				     p->chunk_size, VSS_MIN_CHUNK_SIZE,
				     VSS_MAX_CHUNK_SIZE);
	if (p->label && strlen(p->label) >= VSS_LABEL_MAX)
		return vss_error_set(h, -EINVAL, NULL,
				     "label longer than %d bytes", VSS_LABEL_MAX - 1);
	if (p->flags & ~VSS_CREATE_FLAGS_ALL)
		return vss_error_set(h, -EINVAL, NULL, "unknown flags 0x%x",
				     (unsigned int)(p->flags & ~VSS_CREATE_FLAGS_ALL));
	if (p->hold_limit_ms > VSS_MAX_HOLD_LIMIT_MS)
		return vss_error_set(h, -EINVAL, NULL,
				     "hold limit %u ms is above %d ms",
				     p->hold_limit_ms, VSS_MAX_HOLD_LIMIT_MS);
	return 0;
}

static int lookup_devices(struct vss_handle *h, const struct vss_create_params *p,
			  struct vss_device *devices)
{
	size_t i, j;

	for (i = 0; i < p->device_count; i++) {
		const char *path = p->devices[i];
		int err;

		if (!path || !*path)
			return vss_error_set(h, -EINVAL, NULL, "empty device path");
		err = vss_device_lookup(path, &devices[i]);
		if (err == -ENOTBLK)
			return vss_error_set(h, err, path, "not a block device");
		if (err == -ENOENT)
			return vss_error_set(h, err, path, "no such device");
		if (err)
			return vss_error_set(h, err, path, NULL);
		/* Two paths may name one device (/dev/vdb, /dev/disk/by-id/...). */
		for (j = 0; j < i; j++)
			if (devices[j].major == devices[i].major &&
			    devices[j].minor == devices[i].minor)
				return vss_error_set(h, -EINVAL, path,
						     "device is listed twice (also as %s)",
						     p->devices[j]);
	}
	return 0;
}

static int check_storage(struct vss_handle *h, const struct vss_create_params *p,
			 char resolved[PATH_MAX])
{
	struct stat st;

	if (!realpath(p->storage_path, resolved)) {
		int err = -errno;

		return vss_error_set(h, err, p->storage_path,
				     err == -ENOENT ? "no such file or directory" : NULL);
	}
	if (strlen(resolved) >= VSS_PATH_MAX)
		return vss_error_set(h, -ENAMETOOLONG, p->storage_path, NULL);
	if (stat(resolved, &st) < 0)
		return vss_error_set(h, -errno, p->storage_path, NULL);
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return vss_error_set(h, -EINVAL, p->storage_path,
				     "storage must be a block device, a regular file or a directory");
	if (S_ISDIR(st.st_mode) && !p->storage_limit)
		return vss_error_set(h, -EINVAL, p->storage_path,
				     "a storage directory needs a storage limit");
	return 0;
}

/* Blames the storage the way the module's extended ack would. */
static int resolve_storage(struct vss_handle *h, const struct vss_create_params *p,
			   char resolved[PATH_MAX])
{
	int err = check_storage(h, p, resolved);

	if (err)
		h->err.attr = VSS_A_STORAGE_PATH;
	return err;
}

struct create_reply {
	struct vss_create_result *result;
	struct snapshot_array snapshots;
	bool seen;
};

static int parse_create_reply(struct vss_handle *h, const struct nlmsghdr *nlh,
			      void *arg)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	struct create_reply *reply = arg;
	struct nlattr *snap;
	int rem, err;

	(void)h;
	err = vss_genl_attrs(nlh, tb, VSS_A_MAX, reply_policy);
	if (err)
		return err;
	err = vss_id_get(tb[VSS_A_SET_ID], &reply->result->set_id);
	if (err)
		return err;
	reply->result->hold_us = get_u64(tb[VSS_A_HOLD_US]);
	if (tb[VSS_A_SNAPSHOTS]) {
		nla_for_each_nested(snap, tb[VSS_A_SNAPSHOTS], rem) {
			if (nla_type(snap) != VSS_A_SNAPSHOT)
				continue;
			err = snapshot_array_append_parsed(&reply->snapshots, snap);
			if (err)
				return err;
		}
	}
	reply->seen = true;
	return 0;
}

static bool is_requested_origin(const struct vss_device *origin,
				const struct vss_device *devices, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (devices[i].major == origin->major && devices[i].minor == origin->minor)
			return true;
	return false;
}

/*
 * The module may acknowledge a new set without describing it, when the
 * description does not fit its reply. The set is then found by listing:
 * the newest set committed since the request was sent on the requested
 * devices, which must hold exactly one snapshot of each of them.
 */
static int find_created_set(struct vss_handle *h, const struct vss_device *devices,
			    size_t device_count, uint64_t not_before_ns,
			    struct vss_create_result *out)
{
	struct snapshot_array found = { 0 };
	struct vss_snapshot_info *snaps;
	const struct vss_snapshot_info *newest = NULL;
	size_t count, i;
	int err;

	err = vss_list_snapshots(h, NULL, &snaps, &count);
	if (err)
		return err;
	for (i = 0; i < count; i++)
		if (snaps[i].created_ns >= not_before_ns &&
		    is_requested_origin(&snaps[i].origin, devices, device_count) &&
		    (!newest || snaps[i].created_ns > newest->created_ns))
			newest = &snaps[i];
	if (newest) {
		out->set_id = newest->set_id;
		out->hold_us = newest->hold_us;
	}
	for (i = 0; newest && i < count; i++) {
		if (!vss_id_equal(&snaps[i].set_id, &out->set_id))
			continue;
		if (found.count == found.capacity) {
			size_t capacity = found.capacity ? 2 * found.capacity : 8;
			struct vss_snapshot_info *items;

			items = realloc(found.items, capacity * sizeof(*items));
			if (!items) {
				err = -ENOMEM;
				break;
			}
			found.items = items;
			found.capacity = capacity;
		}
		/* Moved, not copied: the listing no longer owns the path. */
		found.items[found.count++] = snaps[i];
		snaps[i].storage_path = NULL;
	}
	vss_snapshot_info_array_free(snaps, count);
	if (!err && (!newest || found.count != device_count))
		err = -EPROTO;
	if (err) {
		snapshot_array_release(&found);
		memset(out, 0, sizeof(*out));
		return vss_error_set(h, err, NULL,
				     "the module created the set without describing it, "
				     "and it could not be found");
	}
	out->snapshots = found.items;
	out->snapshot_count = found.count;
	return 0;
}

static uint64_t realtime_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

VSS_EXPORT int vss_create_set(struct vss_handle *h,
			      const struct vss_create_params *given,
			      struct vss_create_result *out)
{
	struct vss_device devices[VSS_MAX_SET_DEVICES];
	struct vss_create_params imported;
	const struct vss_create_params *params = &imported;
	struct create_reply reply = { .result = out };
	char storage[PATH_MAX];
	struct vss_request req;
	uint64_t sent_ns;
	int err;

	memset(out, 0, sizeof(*out));
	err = vss_require_admin(h);
	if (!err)
		err = import_create_params(h, given, &imported);
	if (!err)
		err = check_create_params(h, params);
	if (!err)
		err = lookup_devices(h, params, devices);
	if (!err)
		err = resolve_storage(h, params, storage);
	if (err)
		return err;

	err = vss_request_init(&req, h, h->family_id, VSS_CMD_CREATE_SET,
			       VSS_GENL_VERSION, false);
	if (err)
		return vss_error_set(h, err, NULL, NULL);
	err = vss_build_create(&req, params, devices, storage);
	if (err) {
		vss_request_fini(&req);
		return vss_error_set(h, err, NULL, "request too large");
	}
	req.on_reply = parse_create_reply;
	req.arg = &reply;
	sent_ns = realtime_now_ns();
	err = vss_transact(h, &req);
	vss_request_fini(&req);
	if (err) {
		snapshot_array_release(&reply.snapshots);
		memset(out, 0, sizeof(*out));
		return err;
	}
	if (!reply.seen) {
		snapshot_array_release(&reply.snapshots);
		return find_created_set(h, devices, params->device_count, sent_ns, out);
	}
	out->snapshots = reply.snapshots.items;
	out->snapshot_count = reply.snapshots.count;
	return 0;
}

VSS_EXPORT void vss_create_result_free(struct vss_create_result *result)
{
	if (!result)
		return;
	vss_snapshot_info_array_free(result->snapshots, result->snapshot_count);
	memset(result, 0, sizeof(*result));
}

static int parse_snapshot_reply(struct vss_handle *h, const struct nlmsghdr *nlh,
				void *arg)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	int err;

	(void)h;
	err = vss_genl_attrs(nlh, tb, VSS_A_MAX, reply_policy);
	if (err)
		return err;
	if (!tb[VSS_A_SNAPSHOT])
		return -EPROTO;
	return snapshot_array_append_parsed(arg, tb[VSS_A_SNAPSHOT]);
}

static int compare_snapshots(const void *a, const void *b)
{
	const struct vss_snapshot_info *x = a, *y = b;

	if (x->origin.major != y->origin.major)
		return x->origin.major < y->origin.major ? -1 : 1;
	if (x->origin.minor != y->origin.minor)
		return x->origin.minor < y->origin.minor ? -1 : 1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return 0;
}

/* How often a dump that raced with a change is started over. */
#define DUMP_ATTEMPTS	5

VSS_EXPORT int vss_list_snapshots(struct vss_handle *h, const char *origin_path,
				  struct vss_snapshot_info **out, size_t *count)
{
	struct vss_device origin;
	int attempt, err;

	*out = NULL;
	*count = 0;
	err = vss_require_protocol(h);
	if (err)
		return err;
	if (origin_path) {
		err = vss_device_lookup(origin_path, &origin);
		if (err)
			return vss_error_set(h, err, origin_path,
					     err == -ENOTBLK ? "not a block device" :
					     err == -ENOENT ? "no such device" : NULL);
	}

	for (attempt = 0; attempt < DUMP_ATTEMPTS; attempt++) {
		struct snapshot_array arr = { 0 };
		struct vss_request req;
		struct nlattr *attr;

		err = vss_request_init(&req, h, h->family_id, VSS_CMD_GET_SNAPSHOT,
				       VSS_GENL_VERSION, true);
		if (err)
			return vss_error_set(h, err, NULL, NULL);
		if (origin_path) {
			err = vss_put_device(req.msg, VSS_A_DEVICE, origin.major,
					     origin.minor, &attr);
			if (!err)
				err = vss_request_add_span(&req, attr, origin_path);
			if (err) {
				vss_request_fini(&req);
				return vss_error_set(h, err, NULL, NULL);
			}
		}
		req.on_reply = parse_snapshot_reply;
		req.arg = &arr;
		err = vss_transact(h, &req);
		vss_request_fini(&req);
		if (err) {
			snapshot_array_release(&arr);
			if (err == -EAGAIN)
				continue;
			return err;
		}
		if (arr.count)
			qsort(arr.items, arr.count, sizeof(*arr.items),
			      compare_snapshots);
		*out = arr.items;
		*count = arr.count;
		return 0;
	}
	return vss_error_set(h, -EAGAIN, NULL,
			     "snapshots kept changing while being listed");
}

VSS_EXPORT int vss_get_snapshot(struct vss_handle *h, const struct vss_id *id,
				struct vss_snapshot_info *out)
{
	struct snapshot_array arr = { 0 };
	char text[VSS_ID_STRLEN];
	struct vss_request req;
	int err;

	memset(out, 0, sizeof(*out));
	err = vss_require_protocol(h);
	if (err)
		return err;
	vss_id_format(id, text);
	err = vss_request_init(&req, h, h->family_id, VSS_CMD_GET_SNAPSHOT,
			       VSS_GENL_VERSION, false);
	if (err)
		return vss_error_set(h, err, NULL, NULL);
	if (nla_put(req.msg, VSS_A_SNAP_ID, VSS_ID_LEN, id->bytes) < 0) {
		vss_request_fini(&req);
		return vss_error_set(h, -EMSGSIZE, NULL, NULL);
	}
	req.on_reply = parse_snapshot_reply;
	req.arg = &arr;
	err = vss_transact(h, &req);
	vss_request_fini(&req);
	if (!err && arr.count != 1)
		err = vss_error_set(h, -EPROTO, text,
				    "expected one snapshot in the reply, got %zu",
				    arr.count);
	if (err) {
		if (!h->err.object[0])
			snprintf(h->err.object, sizeof(h->err.object), "%s", text);
		snapshot_array_release(&arr);
		return err;
	}
	*out = arr.items[0];
	free(arr.items);
	return 0;
}

enum id_kind { SNAPSHOT_ID, SET_ID };

/* Names two of the ids a prefix matches, so the user can pick. */
static void describe_ambiguity(struct vss_handle *h, const char *text,
			       const struct vss_id *ids, size_t count)
{
	char first_text[VSS_ID_STRLEN], second_text[VSS_ID_STRLEN];
	size_t first = count, second = count, i, unused;
	bool more = false;

	for (i = 0; i < count; i++) {
		if (vss_id_prefix_match(text, &ids[i], 1, &unused))
			continue;
		if (first == count) {
			first = i;
		} else if (vss_id_equal(&ids[first], &ids[i])) {
			continue;
		} else if (second == count) {
			second = i;
		} else if (!vss_id_equal(&ids[second], &ids[i])) {
			more = true;
			break;
		}
	}
	if (first == count || second == count) {
		vss_error_set(h, -LIBVSS_EAMBIGUOUS, text, "ambiguous id prefix");
		return;
	}
	vss_id_format(&ids[first], first_text);
	vss_id_format(&ids[second], second_text);
	vss_error_set(h, -LIBVSS_EAMBIGUOUS, text,
		      "ambiguous id prefix: matches %s and %s%s", first_text,
		      second_text, more ? " and more" : "");
}

static int resolve_id(struct vss_handle *h, const char *text, enum id_kind kind,
		      struct vss_id *out)
{
	struct vss_snapshot_info *snaps;
	struct vss_id *ids;
	size_t count, i, found;
	int err;

	/* A full id needs no listing; whether it exists is for the next call. */
	if (vss_id_parse(text, out) == 0) {
		vss_error_clear(h);
		return 0;
	}
	if (vss_id_prefix_match(text, NULL, 0, &found) == -EINVAL)
		return vss_error_set(h, -EINVAL, text, "not an id or id prefix");

	err = vss_list_snapshots(h, NULL, &snaps, &count);
	if (err)
		return err;
	ids = calloc(count ? count : 1, sizeof(*ids));
	if (!ids) {
		vss_snapshot_info_array_free(snaps, count);
		return vss_error_set(h, -ENOMEM, NULL, NULL);
	}
	for (i = 0; i < count; i++)
		ids[i] = kind == SNAPSHOT_ID ? snaps[i].id : snaps[i].set_id;
	err = vss_id_prefix_match(text, ids, count, &found);
	if (!err) {
		*out = ids[found];
	} else if (err == -ENOENT) {
		vss_error_set(h, err, text, kind == SNAPSHOT_ID ?
			      "no such snapshot" : "no such snapshot set");
	} else if (err == -LIBVSS_EAMBIGUOUS) {
		describe_ambiguity(h, text, ids, count);
	}
	free(ids);
	vss_snapshot_info_array_free(snaps, count);
	return err;
}

VSS_EXPORT int vss_resolve_snapshot_id(struct vss_handle *h, const char *text,
				       struct vss_id *out)
{
	return resolve_id(h, text, SNAPSHOT_ID, out);
}

VSS_EXPORT int vss_resolve_set_id(struct vss_handle *h, const char *text,
				  struct vss_id *out)
{
	return resolve_id(h, text, SET_ID, out);
}
