// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Changed-block tracking: starting and stopping it, its state, marking
 * ranges, points in text, and the changes between two points, streamed.
 * Saving and restoring the map are in cbt_file.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ID_POLICY { .type = NLA_UNSPEC, .minlen = VSS_ID_LEN, .maxlen = VSS_ID_LEN }

static const struct nla_policy cbt_policy[VSS_A_MAX + 1] = {
	[VSS_A_DEVICE] = { .type = NLA_NESTED },
	[VSS_A_CBT_GENERATION] = ID_POLICY,
	[VSS_A_CBT_SEQ] = { .type = NLA_U64 },
	[VSS_A_CBT_OLDEST_SEQ] = { .type = NLA_U64 },
	[VSS_A_CBT_BLOCK_SIZE] = { .type = NLA_U32 },
	[VSS_A_CBT_SIZE] = { .type = NLA_U64 },
	[VSS_A_CBT_MAP_BYTES] = { .type = NLA_U64 },
	[VSS_A_CBT_STARTED_NS] = { .type = NLA_U64 },
};

/* Top level of the replies of TRACK, GET_CBT and CBT_RESTORE. */
static const struct nla_policy cbt_reply_policy[VSS_A_MAX + 1] = {
	[VSS_A_CBT] = { .type = NLA_NESTED },
	[VSS_A_CBT_VERDICT] = { .type = NLA_U32 },
	[VSS_A_REASON] = { .type = NLA_STRING },
};

static const struct nla_policy changes_policy[VSS_A_MAX + 1] = {
	[VSS_A_CBT_GENERATION] = ID_POLICY,
	[VSS_A_CBT_BLOCK_SIZE] = { .type = NLA_U32 },
	[VSS_A_CBT_EXTENTS] = { .type = NLA_UNSPEC },
};

/*
 * The device and the generation are required; a field the module leaves
 * out reads as zero, as for snapshots.
 */
int vss_parse_cbt(const struct nlattr *nest, struct vss_cbt_info *out)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };

	memset(out, 0, sizeof(*out));
	if (nla_parse_nested(tb, VSS_A_MAX, (struct nlattr *)nest, cbt_policy) < 0)
		return -EPROTO;
	if (!tb[VSS_A_DEVICE] || vss_parse_device(tb[VSS_A_DEVICE], &out->device))
		return -EPROTO;
	if (vss_id_get(tb[VSS_A_CBT_GENERATION], &out->generation))
		return -EPROTO;
	if (tb[VSS_A_CBT_SEQ])
		out->seq = nla_get_u64(tb[VSS_A_CBT_SEQ]);
	if (tb[VSS_A_CBT_OLDEST_SEQ])
		out->oldest_seq = nla_get_u64(tb[VSS_A_CBT_OLDEST_SEQ]);
	if (tb[VSS_A_CBT_BLOCK_SIZE])
		out->block_size = nla_get_u32(tb[VSS_A_CBT_BLOCK_SIZE]);
	if (tb[VSS_A_CBT_SIZE])
		out->size = nla_get_u64(tb[VSS_A_CBT_SIZE]);
	if (tb[VSS_A_CBT_MAP_BYTES])
		out->map_bytes = nla_get_u64(tb[VSS_A_CBT_MAP_BYTES]);
	if (tb[VSS_A_CBT_STARTED_NS])
		out->started_ns = nla_get_u64(tb[VSS_A_CBT_STARTED_NS]);
	return 0;
}

void vss_device_object(const struct vss_device *dev, char *buf, size_t len)
{
	if (dev->name[0])
		snprintf(buf, len, "/dev/%s", dev->name);
	else
		snprintf(buf, len, "%u:%u", dev->major, dev->minor);
}

int vss_cbt_put_device(struct vss_request *req, const struct vss_device *dev,
		       const char *object)
{
	struct nlattr *attr;
	int err;

	err = vss_put_device(req->msg, VSS_A_DEVICE, dev->major, dev->minor, &attr);
	if (!err)
		err = vss_request_add_span(req, attr, object);
	return err;
}

int vss_cbt_lookup(struct vss_handle *h, const char *device_path,
		   struct vss_device *out)
{
	int err;

	if (!device_path || !*device_path)
		return vss_error_set(h, -EINVAL, NULL, "no device given");
	err = vss_device_lookup(device_path, out);
	if (err == -ENOTBLK)
		return vss_error_set(h, err, device_path, "not a block device");
	if (err == -ENOENT)
		return vss_error_set(h, err, device_path, "no such device");
	if (err)
		return vss_error_set(h, err, device_path, NULL);
	return 0;
}

struct cbt_reply {
	struct vss_cbt_info *info;
	bool seen;
};

static int parse_cbt_reply(struct vss_handle *h, const struct nlmsghdr *nlh,
			   void *arg)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	struct cbt_reply *reply = arg;
	int err;

	(void)h;
	err = vss_genl_attrs(nlh, tb, VSS_A_MAX, cbt_reply_policy);
	if (err)
		return err;
	if (!tb[VSS_A_CBT])
		return -EPROTO;
	err = vss_parse_cbt(tb[VSS_A_CBT], reply->info);
	if (err)
		return err;
	reply->seen = true;
	return 0;
}

/* Whatever the kernel blamed, a failure of these is about the device. */
static int blame_device(struct vss_handle *h, int err, const char *object)
{
	if (err && !h->err.object[0])
		snprintf(h->err.object, sizeof(h->err.object), "%s", object);
	return err;
}

/*
 * A do request naming one device, with the VSS_A_CBT reply read into
 * @out when it is not NULL. @extra adds attributes after the device.
 */
static int cbt_request(struct vss_handle *h, uint8_t cmd,
		       const struct vss_device *dev, const char *object,
		       int (*extra)(struct nl_msg *msg, const void *arg),
		       const void *extra_arg, struct vss_cbt_info *out)
{
	struct vss_cbt_info ignored;
	struct cbt_reply reply = { .info = out ? out : &ignored };
	struct vss_request req;
	int err;

	err = vss_request_init(&req, h, h->family_id, cmd, VSS_GENL_VERSION, false);
	if (err)
		return vss_error_set(h, err, NULL, NULL);
	err = vss_cbt_put_device(&req, dev, object);
	if (!err && extra)
		err = extra(req.msg, extra_arg);
	if (err) {
		vss_request_fini(&req);
		return vss_error_set(h, err, NULL, "request too large");
	}
	req.on_reply = parse_cbt_reply;
	req.arg = &reply;
	err = vss_transact(h, &req);
	vss_request_fini(&req);
	if (!err && out && !reply.seen)
		err = vss_error_set(h, -EPROTO, NULL,
				    "the module did not describe the tracking state");
	return blame_device(h, err, object);
}

int vss_cbt_simple_request(struct vss_handle *h, uint8_t cmd,
			   const struct vss_device *dev, const char *object,
			   struct vss_cbt_info *out)
{
	return cbt_request(h, cmd, dev, object, NULL, NULL, out);
}

VSS_EXPORT int vss_track(struct vss_handle *h, const char *device_path,
			 struct vss_cbt_info *out)
{
	struct vss_device dev;
	int err;

	if (out)
		memset(out, 0, sizeof(*out));
	err = vss_require_admin(h);
	if (!err)
		err = vss_cbt_lookup(h, device_path, &dev);
	if (!err)
		err = cbt_request(h, VSS_CMD_TRACK, &dev, device_path, NULL, NULL, out);
	if (err && out)
		memset(out, 0, sizeof(*out));
	return err;
}

VSS_EXPORT int vss_untrack(struct vss_handle *h, const char *device_path)
{
	struct vss_device dev;
	int err;

	err = vss_require_admin(h);
	if (!err)
		err = vss_cbt_lookup(h, device_path, &dev);
	if (!err)
		err = cbt_request(h, VSS_CMD_UNTRACK, &dev, device_path, NULL, NULL,
				  NULL);
	return err;
}

VSS_EXPORT int vss_cbt_get_info(struct vss_handle *h, const char *device_path,
				struct vss_cbt_info *out)
{
	struct vss_device dev;
	int err;

	memset(out, 0, sizeof(*out));
	err = vss_require_protocol(h);
	if (!err)
		err = vss_cbt_lookup(h, device_path, &dev);
	if (!err)
		err = cbt_request(h, VSS_CMD_GET_CBT, &dev, device_path, NULL, NULL, out);
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}

struct cbt_array {
	struct vss_cbt_info *items;
	size_t count;
	size_t capacity;
};

static int parse_cbt_dump(struct vss_handle *h, const struct nlmsghdr *nlh,
			  void *arg)
{
	struct cbt_array *arr = arg;
	struct vss_cbt_info info;
	struct cbt_reply reply = { .info = &info };
	int err;

	err = parse_cbt_reply(h, nlh, &reply);
	if (err)
		return err;
	if (arr->count == arr->capacity) {
		size_t capacity = arr->capacity ? 2 * arr->capacity : 8;
		struct vss_cbt_info *items;

		items = realloc(arr->items, capacity * sizeof(*items));
		if (!items)
			return -ENOMEM;
		arr->items = items;
		arr->capacity = capacity;
	}
	arr->items[arr->count++] = info;
	return 0;
}

static int compare_cbt(const void *a, const void *b)
{
	const struct vss_cbt_info *x = a, *y = b;

	if (x->device.major != y->device.major)
		return x->device.major < y->device.major ? -1 : 1;
	if (x->device.minor != y->device.minor)
		return x->device.minor < y->device.minor ? -1 : 1;
	return 0;
}

/* How often a dump that raced with a change is started over. */
#define DUMP_ATTEMPTS	5

VSS_EXPORT int vss_cbt_list(struct vss_handle *h, struct vss_cbt_info **out,
			    size_t *count)
{
	int attempt, err;

	*out = NULL;
	*count = 0;
	err = vss_require_protocol(h);
	if (err)
		return err;
	for (attempt = 0; attempt < DUMP_ATTEMPTS; attempt++) {
		struct cbt_array arr = { 0 };
		struct vss_request req;

		err = vss_request_init(&req, h, h->family_id, VSS_CMD_GET_CBT,
				       VSS_GENL_VERSION, true);
		if (err)
			return vss_error_set(h, err, NULL, NULL);
		req.on_reply = parse_cbt_dump;
		req.arg = &arr;
		err = vss_transact(h, &req);
		vss_request_fini(&req);
		if (err) {
			free(arr.items);
			if (err == -EAGAIN)
				continue;
			return err;
		}
		if (arr.count)
			qsort(arr.items, arr.count, sizeof(*arr.items), compare_cbt);
		*out = arr.items;
		*count = arr.count;
		return 0;
	}
	return vss_error_set(h, -EAGAIN, NULL,
			     "tracked devices kept changing while being listed");
}

VSS_EXPORT void vss_cbt_info_array_free(struct vss_cbt_info *infos)
{
	free(infos);
}

struct range {
	uint64_t offset;
	uint64_t length;
};

static int put_range(struct nl_msg *msg, const void *arg)
{
	const struct range *r = arg;

	if (nla_put_u64(msg, VSS_A_CBT_OFFSET, r->offset) < 0 ||
	    nla_put_u64(msg, VSS_A_CBT_LENGTH, r->length) < 0)
		return -EMSGSIZE;
	return 0;
}

VSS_EXPORT int vss_cbt_mark_dirty(struct vss_handle *h, const char *device_path,
				  uint64_t offset, uint64_t length)
{
	struct range range = { .offset = offset, .length = length };
	struct vss_device dev;
	int err;

	err = vss_require_admin(h);
	if (!err)
		err = vss_cbt_lookup(h, device_path, &dev);
	if (err)
		return err;
	if (!length)
		return vss_error_set(h, -EINVAL, device_path, "zero length");
	if (offset > UINT64_MAX - length)
		return vss_error_set(h, -EINVAL, device_path,
				     "offset %llu plus length %llu overflows",
				     (unsigned long long)offset,
				     (unsigned long long)length);
	return cbt_request(h, VSS_CMD_CBT_MARK_DIRTY, &dev, device_path, put_range,
			   &range, NULL);
}

VSS_EXPORT void vss_cbt_point_format(const struct vss_cbt_point *point,
				     char out[VSS_CBT_POINT_STRLEN])
{
	char id[VSS_ID_STRLEN];

	vss_id_format(&point->generation, id);
	snprintf(out, VSS_CBT_POINT_STRLEN, "%s:%llu", id,
		 (unsigned long long)point->seq);
}

VSS_EXPORT int vss_cbt_point_parse(const char *text, struct vss_cbt_point *out)
{
	char id[VSS_ID_STRLEN];
	const char *colon, *p;
	uint64_t seq = 0;
	size_t id_len;

	if (!text)
		return -EINVAL;
	colon = strchr(text, ':');
	if (!colon || strchr(colon + 1, ':'))
		return -EINVAL;
	id_len = (size_t)(colon - text);
	if (id_len == 0 || id_len >= sizeof(id))
		return -EINVAL;
	memcpy(id, text, id_len);
	id[id_len] = '\0';
	if (!colon[1])
		return -EINVAL;
	for (p = colon + 1; *p; p++) {
		unsigned int digit;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		digit = (unsigned int)(*p - '0');
		if (seq > (UINT64_MAX - digit) / 10)
			return -EINVAL;
		seq = seq * 10 + digit;
	}
	if (vss_id_parse(id, &out->generation))
		return -EINVAL;
	out->seq = seq;
	return 0;
}

/*
 * The state of one vss_cbt_changes() walk. The last extent is held back
 * until the next one shows whether it continues it: the module may cut a
 * run where a message ends.
 */
struct changes_walk {
	vss_cbt_extent_fn fn;
	void *arg;
	struct vss_cbt_totals totals;
	bool seen_extent;
	uint64_t end;			/* of the last extent received */
	bool pending;
	uint64_t pending_offset;
	uint64_t pending_length;
	int stop_value;			/* non-zero: @fn asked to stop */
};

static int hand_over_pending(struct vss_handle *h, struct changes_walk *w)
{
	int ret;

	if (!w->pending)
		return 0;
	w->pending = false;
	w->totals.extents++;
	w->totals.bytes += w->pending_length;
	ret = w->fn(w->pending_offset, w->pending_length, w->arg);
	if (!ret)
		return 0;
	w->stop_value = ret;
	/* Any error will do to end the walk; this one is never returned. */
	return vss_error_set(h, -ECANCELED, NULL, "stopped by the caller");
}

static int take_extent(struct vss_handle *h, struct changes_walk *w,
		       const struct vss_cbt_extent *e)
{
	if (!e->length || e->offset > UINT64_MAX - e->length)
		return vss_error_set(h, -EPROTO, NULL,
				     "the module sent an empty or overflowing extent");
	if (e->offset % w->totals.block_size)
		return vss_error_set(h, -EPROTO, NULL,
				     "the module sent an extent not aligned to its block size");
	if (w->seen_extent && e->offset < w->end)
		return vss_error_set(h, -EPROTO, NULL,
				     "the module sent extents out of order or overlapping");
	w->seen_extent = true;
	w->end = e->offset + e->length;
	if (w->pending && w->pending_offset + w->pending_length == e->offset) {
		w->pending_length += e->length;
		return 0;
	}
	if (hand_over_pending(h, w))
		return -ECANCELED;
	w->pending = true;
	w->pending_offset = e->offset;
	w->pending_length = e->length;
	return 0;
}

static bool valid_block_size(uint32_t size)
{
	return size >= VSS_CBT_MIN_BLOCK_SIZE && !(size & (size - 1));
}

static int parse_changes(struct vss_handle *h, const struct nlmsghdr *nlh,
			 void *arg)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	struct changes_walk *w = arg;
	const unsigned char *data;
	struct vss_id generation;
	uint32_t block_size;
	size_t i, n;
	int err;

	err = vss_genl_attrs(nlh, tb, VSS_A_MAX, changes_policy);
	if (err)
		return err;
	if (!tb[VSS_A_CBT_GENERATION] || !tb[VSS_A_CBT_BLOCK_SIZE])
		return vss_error_set(h, -EPROTO, NULL,
				     "the module's answer lacks the generation or block size");
	vss_id_get(tb[VSS_A_CBT_GENERATION], &generation);
	if (!vss_id_equal(&generation, &w->totals.generation))
		return vss_error_set(h, -EPROTO, NULL,
				     "the module answered for another generation");
	block_size = nla_get_u32(tb[VSS_A_CBT_BLOCK_SIZE]);
	if (!valid_block_size(block_size) ||
	    (w->totals.block_size && block_size != w->totals.block_size))
		return vss_error_set(h, -EPROTO, NULL,
				     "the module sent a bad or changing block size %u",
				     block_size);
	w->totals.block_size = block_size;
	if (!tb[VSS_A_CBT_EXTENTS])
		return 0;
	n = (size_t)nla_len(tb[VSS_A_CBT_EXTENTS]);
	if (n % sizeof(struct vss_cbt_extent))
		return vss_error_set(h, -EPROTO, NULL,
				     "the module sent a partial extent");
	n /= sizeof(struct vss_cbt_extent);
	data = nla_data(tb[VSS_A_CBT_EXTENTS]);
	for (i = 0; i < n; i++) {
		struct vss_cbt_extent e;

		/* Attribute data is only 4-byte aligned. */
		memcpy(&e, data + i * sizeof(e), sizeof(e));
		err = take_extent(h, w, &e);
		if (err)
			return err;
	}
	return 0;
}

static int check_points(struct vss_handle *h, const char *device_path,
			const struct vss_cbt_point *from,
			const struct vss_cbt_point *to, vss_cbt_extent_fn fn)
{
	if (!from)
		return vss_error_set(h, -EINVAL, device_path, "no starting point given");
	if (!fn)
		return vss_error_set(h, -EINVAL, NULL, "no extent function given");
	if (!to)
		return 0;
	/* Nothing links two generations: what changed between them is unknown. */
	if (!vss_id_equal(&from->generation, &to->generation))
		return vss_error_set(h, -LIBVSS_ECBT_STALE, device_path,
				     "the two points are of different generations: take a full backup");
	if (from->seq > to->seq)
		return vss_error_set(h, -EINVAL, device_path,
				     "point %llu is after point %llu",
				     (unsigned long long)from->seq,
				     (unsigned long long)to->seq);
	return 0;
}

static int build_changes(struct vss_request *req, const struct vss_device *dev,
			 const char *object, const struct vss_cbt_point *from,
			 const struct vss_cbt_point *to)
{
	int err = vss_cbt_put_device(req, dev, object);

	if (err)
		return err;
	if (nla_put(req->msg, VSS_A_CBT_GENERATION, VSS_ID_LEN,
		    from->generation.bytes) < 0 ||
	    nla_put_u64(req->msg, VSS_A_CBT_FROM, from->seq) < 0 ||
	    (to && nla_put_u64(req->msg, VSS_A_CBT_TO, to->seq) < 0))
		return -EMSGSIZE;
	return 0;
}

VSS_EXPORT int vss_cbt_changes(struct vss_handle *h, const char *device_path,
			       const struct vss_cbt_point *from,
			       const struct vss_cbt_point *to,
			       vss_cbt_extent_fn fn, void *arg,
			       struct vss_cbt_totals *totals)
{
	struct changes_walk w = { .fn = fn, .arg = arg };
	struct vss_request req;
	struct vss_device dev;
	int err;

	if (totals)
		memset(totals, 0, sizeof(*totals));
	err = vss_require_admin(h);
	if (!err)
		err = vss_cbt_lookup(h, device_path, &dev);
	if (!err)
		err = check_points(h, device_path, from, to, fn);
	if (err)
		return err;
	w.totals.generation = from->generation;

	err = vss_request_init(&req, h, h->family_id, VSS_CMD_CBT_CHANGES,
			       VSS_GENL_VERSION, true);
	if (err)
		return vss_error_set(h, err, NULL, NULL);
	err = build_changes(&req, &dev, device_path, from, to);
	if (err) {
		vss_request_fini(&req);
		return vss_error_set(h, err, NULL, "request too large");
	}
	req.on_reply = parse_changes;
	req.arg = &w;
	err = vss_transact(h, &req);
	vss_request_fini(&req);
	if (!err && !w.stop_value)
		err = hand_over_pending(h, &w);
	if (totals)
		*totals = w.totals;
	if (w.stop_value) {
		vss_error_clear(h);
		return w.stop_value;
	}
	if (err == -EAGAIN)
		return vss_error_set(h, err, device_path,
				     "the map changed while it was being read: start over");
	return blame_device(h, err, device_path);
}
