// SPDX-License-Identifier: GPL-2.0
/*
 * The changed-block tracking commands of the generic netlink family "vss":
 * track, untrack, describe, query, mark, save and restore. Parsing,
 * policy and privilege checks live here; uapi/linux/vss.h documents the
 * protocol. Every handler holds vss_ctl_lock while it looks at an origin
 * and its generation, and checks the device's size first, so that no
 * answer comes from a generation a resize has ended.
 */
#include "vss.h"
#include "netlink.h"
#include "origin.h"
#include "cbt.h"
#include "cbt_witness.h"
#include "event.h"
#include <linux/blk-mq.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

/* Extents a query or save gathers before it puts them in a message. */
#define VSS_NL_EXTENTS_MAX	1024
/* Room for one message's attributes other than the extents. */
#define VSS_NL_CBT_OVERHEAD	256
/*
 * The newest point a saved state may have. Points count snapshots, so no
 * generation comes near it; it keeps the points that follow a restored
 * one from wrapping round to 0 and from reaching U64_MAX, which a query
 * uses for "now".
 */
#define VSS_NL_CBT_MAX_SEQ	S64_MAX

/* The shape of a saved generation, from VSS_A_CBT_STATE. */
struct vss_cbt_restore_state {
	uuid_t generation;
	u64 seq;
	u64 oldest;
	u64 size;
	u64 started_ns;
	unsigned int block_shift;
};

int vss_nl_put_cbt(struct sk_buff *skb, struct vss_origin *origin,
		   struct vss_cbt *cbt)
{
	struct nlattr *nest = nla_nest_start(skb, VSS_A_CBT);

	if (!nest)
		return -EMSGSIZE;
	if (vss_nl_put_device(skb, VSS_A_DEVICE, origin->dev, origin->name) ||
	    nla_put(skb, VSS_A_CBT_GENERATION, VSS_ID_LEN, &cbt->generation) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_SEQ, vss_cbt_seq(cbt),
			      VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_OLDEST_SEQ,
			      vss_cbt_oldest_seq(cbt), VSS_A_PAD) ||
	    nla_put_u32(skb, VSS_A_CBT_BLOCK_SIZE, 1U << cbt->block_shift) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_SIZE, cbt->size, VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_MAP_BYTES, vss_cbt_map_bytes(cbt),
			      VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_STARTED_NS, cbt->started_ns,
			      VSS_A_PAD)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

/* The device of the request, required. */
static int vss_nl_cbt_device(struct nlattr **attrs,
			     struct netlink_ext_ack *extack, dev_t *dev)
{
	if (!attrs[VSS_A_DEVICE]) {
		NL_SET_ERR_MSG(extack, "no device given");
		return -EINVAL;
	}
	return vss_nl_parse_device(attrs[VSS_A_DEVICE], dev, extack);
}

/*
 * The tracked origin of @dev, its size checked. The caller holds
 * vss_ctl_lock. -ENOENT when the device is not tracked.
 */
static int vss_nl_tracked_origin(dev_t dev, struct nlattr *dev_attr,
				 struct netlink_ext_ack *extack,
				 struct vss_origin **out)
{
	struct vss_origin *origin = vss_origin_find(dev);

	if (!origin || !origin->cbt) {
		NL_SET_ERR_MSG_ATTR(extack, dev_attr, "device is not tracked");
		return -ENOENT;
	}
	vss_origin_check_size(origin);
	*out = origin;
	return 0;
}

/* Replies with the VSS_A_CBT nest of @origin, or @cbt if given. */
static int vss_nl_reply_cbt(struct genl_info *info, u8 cmd,
			    struct vss_origin *origin, struct vss_cbt *cbt,
			    u32 verdict, const char *reason)
{
	struct sk_buff *msg;
	void *hdr;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &vss_genl_family, 0, cmd);
	if (!hdr || vss_nl_put_cbt(msg, origin, cbt ?: origin->cbt) ||
	    (verdict && nla_put_u32(msg, VSS_A_CBT_VERDICT, verdict)) ||
	    (reason && nla_put_string(msg, VSS_A_REASON, reason))) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

int vss_nl_track(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *dev_attr = info->attrs[VSS_A_DEVICE];
	struct vss_origin *origin;
	unsigned int noio;
	struct vss_cbt *cbt;
	u64 bytes;
	dev_t dev;
	int ret;

	ret = vss_nl_require_admin(skb, info->extack);
	if (!ret)
		ret = vss_nl_cbt_device(info->attrs, info->extack, &dev);
	if (!ret)
		ret = vss_nl_hold_module(info->extack);
	if (ret)
		return ret;

	mutex_lock(&vss_ctl_lock);
	origin = vss_origin_find(dev);
	if (origin && (origin->cbt || origin->restore)) {
		NL_SET_ERR_MSG_ATTR(info->extack, dev_attr,
				    "device is already tracked");
		ret = -EALREADY;
		goto out;
	}
	ret = vss_origin_get(dev, false, info->extack, &origin);
	if (ret) {
		info->extack->bad_attr = dev_attr;
		goto out;
	}
	vss_origin_check_size(origin);
	bytes = (u64)origin->nr_sectors << SECTOR_SHIFT;
	cbt = vss_cbt_alloc(bytes, vss_cbt_block_shift_for(bytes), NULL, 0, 0);
	if (!cbt) {
		vss_origin_put_if_unused(origin);
		ret = -ENOMEM;
		goto out;
	}
	noio = memalloc_noio_save();
	vss_origin_quiesce(origin);
	vss_origin_attach_cbt(origin, cbt);
	vss_origin_gate_open(origin);
	memalloc_noio_restore(noio);
	vss_event_cbt(origin, cbt, VSS_EVENT_CBT_NEW_GENERATION,
		      "tracking started");
	ret = vss_nl_reply_cbt(info, VSS_CMD_TRACK, origin, NULL, 0, NULL);
out:
	mutex_unlock(&vss_ctl_lock);
	module_put(THIS_MODULE);
	return ret;
}

int vss_nl_untrack(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *dev_attr = info->attrs[VSS_A_DEVICE];
	struct vss_origin *origin;
	dev_t dev;
	int ret;

	ret = vss_nl_require_admin(skb, info->extack);
	if (!ret)
		ret = vss_nl_cbt_device(info->attrs, info->extack, &dev);
	if (ret)
		return ret;

	mutex_lock(&vss_ctl_lock);
	origin = vss_origin_find(dev);
	if (!origin || (!origin->cbt && !origin->restore)) {
		NL_SET_ERR_MSG_ATTR(info->extack, dev_attr,
				    "device is not tracked");
		ret = -ENOENT;
	} else {
		vss_origin_end_tracking(origin, "tracking stopped on request");
		vss_origin_put_if_unused(origin);
	}
	mutex_unlock(&vss_ctl_lock);
	return ret;
}

int vss_nl_get_cbt(struct sk_buff *skb, struct genl_info *info)
{
	struct vss_origin *origin;
	dev_t dev;
	int ret;

	ret = vss_nl_cbt_device(info->attrs, info->extack, &dev);
	if (ret)
		return ret;
	mutex_lock(&vss_ctl_lock);
	ret = vss_nl_tracked_origin(dev, info->attrs[VSS_A_DEVICE],
				    info->extack, &origin);
	if (!ret)
		ret = vss_nl_reply_cbt(info, VSS_CMD_GET_CBT, origin, NULL, 0,
				       NULL);
	mutex_unlock(&vss_ctl_lock);
	return ret;
}

/* Dump of every tracked device; cb->args[0] counts origins looked at. */
int vss_nl_dump_cbt(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct vss_origin *origin;
	void *hdr;

	mutex_lock(&vss_ctl_lock);
	while ((origin = vss_origin_nth(cb->args[0]))) {
		if (origin->cbt) {
			hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
					  cb->nlh->nlmsg_seq, &vss_genl_family,
					  NLM_F_MULTI, VSS_CMD_GET_CBT);
			if (!hdr)
				break;
			if (vss_nl_put_cbt(skb, origin, origin->cbt)) {
				genlmsg_cancel(skb, hdr);
				break;
			}
			genlmsg_end(skb, hdr);
		}
		cb->args[0]++;
	}
	mutex_unlock(&vss_ctl_lock);
	return skb->len;
}

/*
 * A query or a save being dumped. A query finds its generation again on
 * every round; a save owns the generation it detached.
 */
struct vss_nl_cbt_dump {
	dev_t dev;
	uuid_t generation;
	u64 from;
	u64 to;				/* U64_MAX: now */
	struct vss_cbt *saved;		/* a save's generation */
	struct vss_cbt_witness witness;	/* a save's witness */
	char name[BDEVNAME_SIZE];	/* a save's device name */
	bool started;			/* the request was checked */
	bool state_sent;		/* a save's first message went out */
	u64 interval;			/* a save's interval being sent */
	bool done;
	struct vss_cbt_cursor cursor;
	struct vss_cbt_extent *extents;	/* VSS_NL_EXTENTS_MAX of them */
};

static struct vss_nl_cbt_dump *vss_nl_cbt_dump_alloc(void)
{
	struct vss_nl_cbt_dump *ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);

	if (!ctx)
		return NULL;
	ctx->extents = kvmalloc_array(VSS_NL_EXTENTS_MAX,
				      sizeof(*ctx->extents), GFP_KERNEL);
	if (!ctx->extents || vss_cbt_cursor_init(&ctx->cursor)) {
		kvfree(ctx->extents);
		kfree(ctx);
		return NULL;
	}
	return ctx;
}

static void vss_nl_cbt_dump_free(struct vss_nl_cbt_dump *ctx)
{
	if (!ctx)
		return;
	vss_cbt_free(ctx->saved);
	vss_cbt_cursor_release(&ctx->cursor);
	kvfree(ctx->extents);
	kfree(ctx);
}

static struct vss_nl_cbt_dump *vss_nl_cbt_dump_ctx(struct netlink_callback *cb)
{
	return (struct vss_nl_cbt_dump *)cb->args[0];
}

/*
 * Gathers the runs of @ctx's cursor, bound to @cbt, into @ctx->extents:
 * as many as fit @skb. Returns the number gathered; ctx->done tells
 * whether the walk is over.
 */
static unsigned int vss_nl_gather_runs(struct sk_buff *skb,
				       struct vss_nl_cbt_dump *ctx,
				       struct vss_cbt *cbt)
{
	int room = skb_tailroom(skb) - VSS_NL_CBT_OVERHEAD;
	unsigned int max, nr = 0;
	u64 first, count;

	if (room < (int)sizeof(struct vss_cbt_extent))
		return 0;
	max = min_t(unsigned int, VSS_NL_EXTENTS_MAX,
		    room / sizeof(struct vss_cbt_extent));
	while (nr < max) {
		struct vss_cbt_extent *extent = &ctx->extents[nr];
		u64 end;

		if (!vss_cbt_next_run(cbt, &ctx->cursor, &first, &count)) {
			ctx->done = true;
			break;
		}
		extent->offset = first << cbt->block_shift;
		end = min((first + count) << cbt->block_shift, cbt->size);
		extent->length = end - extent->offset;
		nr++;
	}
	return nr;
}

/* Puts the gathered extents, with the generation and block size. */
static int vss_nl_put_extents(struct sk_buff *skb, struct vss_cbt *cbt,
			      struct vss_nl_cbt_dump *ctx, unsigned int nr)
{
	if (nla_put(skb, VSS_A_CBT_GENERATION, VSS_ID_LEN, &cbt->generation) ||
	    nla_put_u32(skb, VSS_A_CBT_BLOCK_SIZE, 1U << cbt->block_shift))
		return -EMSGSIZE;
	if (nr && nla_put(skb, VSS_A_CBT_EXTENTS,
			  nr * sizeof(struct vss_cbt_extent), ctx->extents))
		return -EMSGSIZE;
	return 0;
}

/*
 * Checks that the points of a query can be answered by @cbt. The caller
 * holds vss_ctl_lock. Formatted extack messages are cut at 80 bytes.
 */
static int vss_nl_check_points(struct vss_cbt *cbt, const uuid_t *generation,
			       u64 from, u64 to, struct netlink_ext_ack *extack)
{
	u64 seq = vss_cbt_seq(cbt);

	if (!uuid_equal(generation, &cbt->generation)) {
		NL_SET_ERR_MSG(extack,
			       "the point is of another generation of the device: take a full backup");
		return -ESTALE;
	}
	if (READ_ONCE(cbt->broken)) {
		NL_SET_ERR_MSG(extack,
			       "the generation has ended (a changed block could not be recorded): take a full backup");
		return -ESTALE;
	}
	if (from < vss_cbt_oldest_seq(cbt)) {
		VSS_NL_SET_ERR_MSG_FMT(extack,
				       "the map no longer reaches back to that point: take a full backup",
				       "the map starts at point %llu, after %llu: take a full backup",
				       vss_cbt_oldest_seq(cbt), from);
		return -ENODATA;
	}
	if (from > seq || (to != U64_MAX && to > seq)) {
		VSS_NL_SET_ERR_MSG_FMT(extack,
				       "the point is not reached yet",
				       "point %llu is past the newest point, %llu",
				       from > seq ? from : to, seq);
		return -EINVAL;
	}
	if (to < from) {
		NL_SET_ERR_MSG(extack, "the from point is after the to point");
		return -EINVAL;
	}
	return 0;
}

/*
 * Dumps check their request in their first round rather than in .start:
 * before 6.2 a .start has no extended ack to explain a refusal with.
 */
int vss_nl_changes_start(struct netlink_callback *cb)
{
	struct vss_nl_cbt_dump *ctx = vss_nl_cbt_dump_alloc();

	if (!ctx)
		return -ENOMEM;
	cb->args[0] = (long)ctx;
	return 0;
}

/* Reads and checks the query's request, in its first round. */
static int vss_nl_changes_parse(struct netlink_callback *cb,
				struct vss_nl_cbt_dump *ctx)
{
	struct nlattr **attrs = vss_dumpit_attrs(cb);
	struct netlink_ext_ack *extack = cb->extack;
	int ret;

	ret = vss_nl_require_admin(cb->skb, extack);
	if (ret)
		return ret;
	if (!attrs[VSS_A_CBT_GENERATION] || !attrs[VSS_A_CBT_FROM]) {
		NL_SET_ERR_MSG(extack, "a generation and a from point are required");
		return -EINVAL;
	}
	ret = vss_nl_cbt_device(attrs, extack, &ctx->dev);
	if (ret)
		return ret;
	memcpy(&ctx->generation, nla_data(attrs[VSS_A_CBT_GENERATION]),
	       VSS_ID_LEN);
	ctx->from = nla_get_u64(attrs[VSS_A_CBT_FROM]);
	ctx->to = attrs[VSS_A_CBT_TO] ? nla_get_u64(attrs[VSS_A_CBT_TO]) :
		  U64_MAX;
	ctx->started = true;
	return 0;
}

int vss_nl_changes_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct vss_nl_cbt_dump *ctx = vss_nl_cbt_dump_ctx(cb);
	struct vss_origin *origin;
	struct vss_cbt *cbt;
	unsigned int nr;
	void *hdr;
	u64 hi;
	int ret;

	if (ctx->done)
		return 0;
	if (!ctx->started) {
		ret = vss_nl_changes_parse(cb, ctx);
		if (ret)
			return ret;
	}
	mutex_lock(&vss_ctl_lock);
	ret = vss_nl_tracked_origin(ctx->dev, NULL, cb->extack, &origin);
	if (ret)
		goto out;
	cbt = origin->cbt;
	/* Ended, resized or trimmed since the last round? */
	ret = vss_nl_check_points(cbt, &ctx->generation, ctx->from,
				  ctx->to, cb->extack);
	if (ret)
		goto out;
	hi = ctx->to == U64_MAX ? vss_cbt_seq(cbt) : ctx->to - 1;
	if (ctx->to == ctx->from)
		ctx->cursor.nr = 0;	/* no interval: nothing changed */
	else
		vss_cbt_cursor_bind(&ctx->cursor, cbt, ctx->from, hi);

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &vss_genl_family, NLM_F_MULTI, VSS_CMD_CBT_CHANGES);
	if (!hdr) {
		ret = skb->len ? 0 : -EMSGSIZE;
		goto out;
	}
	nr = vss_nl_gather_runs(skb, ctx, cbt);
	if (vss_nl_put_extents(skb, cbt, ctx, nr)) {
		genlmsg_cancel(skb, hdr);
		ret = -EMSGSIZE;
		goto out;
	}
	genlmsg_end(skb, hdr);
out:
	mutex_unlock(&vss_ctl_lock);
	return ret ?: skb->len;
}

int vss_nl_changes_done(struct netlink_callback *cb)
{
	vss_nl_cbt_dump_free(vss_nl_cbt_dump_ctx(cb));
	return 0;
}

int vss_nl_mark_dirty(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct vss_origin *origin;
	u64 offset, length;
	dev_t dev;
	int ret;

	ret = vss_nl_require_admin(skb, info->extack);
	if (!ret)
		ret = vss_nl_cbt_device(attrs, info->extack, &dev);
	if (ret)
		return ret;
	if (!attrs[VSS_A_CBT_OFFSET] || !attrs[VSS_A_CBT_LENGTH]) {
		NL_SET_ERR_MSG(info->extack, "an offset and a length are required");
		return -EINVAL;
	}
	offset = nla_get_u64(attrs[VSS_A_CBT_OFFSET]);
	length = nla_get_u64(attrs[VSS_A_CBT_LENGTH]);
	if (!length) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[VSS_A_CBT_LENGTH],
				    "length must not be zero");
		return -EINVAL;
	}

	mutex_lock(&vss_ctl_lock);
	ret = vss_nl_tracked_origin(dev, attrs[VSS_A_DEVICE], info->extack,
				    &origin);
	if (ret)
		goto out;
	if (offset >= origin->cbt->size ||
	    length > origin->cbt->size - offset) {
		VSS_NL_SET_ERR_MSG_FMT(info->extack,
				       "range ends past the end of the device",
				       "range ends past the end of the device (%llu bytes)",
				       origin->cbt->size);
		ret = -ERANGE;
		goto out;
	}
	ret = vss_cbt_mark_bytes(origin->cbt, offset, length, GFP_KERNEL);
	if (ret)
		NL_SET_ERR_MSG(info->extack, "no memory for the map");
out:
	mutex_unlock(&vss_ctl_lock);
	return ret;
}

int vss_nl_save_start(struct netlink_callback *cb)
{
	struct vss_nl_cbt_dump *ctx = vss_nl_cbt_dump_alloc();

	if (!ctx)
		return -ENOMEM;
	cb->args[0] = (long)ctx;
	return 0;
}

/*
 * Saving detaches the generation at an instant when the device's writes
 * are drained and its counters settled: every write before it is in the
 * map, every write after it moves the counters. Done in the dump's first
 * round, where a refusal can be explained.
 */
static int vss_nl_save_detach(struct netlink_callback *cb,
			      struct vss_nl_cbt_dump *ctx)
{
	struct nlattr **attrs = vss_dumpit_attrs(cb);
	struct netlink_ext_ack *extack = cb->extack;
	struct vss_origin *origin;
	struct request_queue *q;
	unsigned int noio;
	int ret;

	ret = vss_nl_require_admin(cb->skb, extack);
	if (!ret)
		ret = vss_nl_cbt_device(attrs, extack, &ctx->dev);
	if (ret)
		return ret;

	mutex_lock(&vss_ctl_lock);
	ret = vss_nl_tracked_origin(ctx->dev, attrs[VSS_A_DEVICE], extack,
				    &origin);
	if (ret)
		goto out;
	if (vss_origin_has_snapshots(origin)) {
		NL_SET_ERR_MSG_ATTR(extack, attrs[VSS_A_DEVICE],
				    "device has snapshots: delete them before saving its map");
		ret = -EBUSY;
		goto out;
	}
	/* The restore's commit merges into the generation a save would take. */
	if (origin->restore) {
		NL_SET_ERR_MSG_ATTR(extack, attrs[VSS_A_DEVICE],
				    "a restore of the device's map is in progress: commit it before saving");
		ret = -EBUSY;
		goto out;
	}
	noio = memalloc_noio_save();
	vss_origin_quiesce(origin);
	/* Completion is counted after the bio ends: let it settle. */
	q = bdev_get_queue(origin->handle.bdev);
	blk_mq_freeze_queue(q);
	blk_mq_unfreeze_queue(q);
	vss_cbt_witness_read(origin->handle.bdev, &ctx->witness);
	ctx->saved = vss_origin_detach_cbt(origin);
	vss_origin_gate_open(origin);
	memalloc_noio_restore(noio);
	strscpy(ctx->name, origin->name, sizeof(ctx->name));
	ctx->interval = vss_cbt_oldest_seq(ctx->saved);
	ctx->started = true;
	vss_event_cbt(origin, ctx->saved, VSS_EVENT_CBT_STOPPED,
		      "map saved for a later restore");
	vss_origin_put_if_unused(origin);
out:
	mutex_unlock(&vss_ctl_lock);
	return ret;
}

static int vss_nl_put_state(struct sk_buff *skb, struct vss_nl_cbt_dump *ctx)
{
	const struct vss_cbt_witness *w = &ctx->witness;
	struct vss_cbt *cbt = ctx->saved;
	struct nlattr *nest = nla_nest_start(skb, VSS_A_CBT_STATE);

	if (!nest ||
	    vss_nl_put_device(skb, VSS_A_DEVICE, ctx->dev, ctx->name) ||
	    nla_put(skb, VSS_A_CBT_GENERATION, VSS_ID_LEN, &cbt->generation) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_SEQ, vss_cbt_seq(cbt), VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_OLDEST_SEQ,
			      vss_cbt_oldest_seq(cbt), VSS_A_PAD) ||
	    nla_put_u32(skb, VSS_A_CBT_BLOCK_SIZE, 1U << cbt->block_shift) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_SIZE, cbt->size, VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_STARTED_NS, cbt->started_ns,
			      VSS_A_PAD) ||
	    nla_put(skb, VSS_A_CBT_BOOT_ID, VSS_ID_LEN, &w->boot_id) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_DISKSEQ, w->diskseq, VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_WRITE_IOS, w->write_ios,
			      VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_DIRECT_WRITE_IOS,
			      w->direct_write_ios, VSS_A_PAD) ||
	    nla_put_u32(skb, VSS_A_CBT_SAVE_FLAGS, w->flags))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

int vss_nl_save_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct vss_nl_cbt_dump *ctx = vss_nl_cbt_dump_ctx(cb);
	struct vss_cbt *cbt;
	unsigned int nr;
	void *hdr;
	int ret;

	if (!ctx->started) {
		ret = vss_nl_save_detach(cb, ctx);
		if (ret)
			return ret;
	}
	cbt = ctx->saved;
	while (!ctx->done) {
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &vss_genl_family,
				  NLM_F_MULTI, VSS_CMD_CBT_SAVE);
		if (!hdr)
			break;
		if (!ctx->state_sent) {
			if (vss_nl_put_state(skb, ctx))
				goto full;
			ctx->state_sent = true;
			vss_cbt_cursor_bind(&ctx->cursor, cbt, ctx->interval,
					    ctx->interval);
			genlmsg_end(skb, hdr);
			continue;
		}
		if (nla_put_u64_64bit(skb, VSS_A_CBT_SEQ, ctx->interval,
				      VSS_A_PAD))
			goto full;
		nr = vss_nl_gather_runs(skb, ctx, cbt);
		if (!nr && !ctx->done)
			goto full;
		if (nr && nla_put(skb, VSS_A_CBT_EXTENTS,
				  nr * sizeof(struct vss_cbt_extent),
				  ctx->extents))
			goto full;	/* cannot happen: sized to fit */
		genlmsg_end(skb, hdr);
		if (ctx->done && ctx->interval < vss_cbt_seq(cbt)) {
			/* On to the next interval. */
			ctx->done = false;
			ctx->interval++;
			ctx->cursor.pos = 0;
			vss_cbt_cursor_bind(&ctx->cursor, cbt, ctx->interval,
					    ctx->interval);
		}
	}
	return skb->len;
full:
	genlmsg_cancel(skb, hdr);
	return skb->len ?: -EMSGSIZE;
}

int vss_nl_save_done(struct netlink_callback *cb)
{
	vss_nl_cbt_dump_free(vss_nl_cbt_dump_ctx(cb));
	return 0;
}

/* Reads a saved state nest: the witness @w and the shape @st. */
static int vss_nl_parse_state(struct nlattr *nest, struct vss_cbt_witness *w,
			      struct vss_cbt_restore_state *st,
			      struct netlink_ext_ack *extack)
{
	static const int required[] = {
		VSS_A_CBT_GENERATION, VSS_A_CBT_SEQ, VSS_A_CBT_OLDEST_SEQ,
		VSS_A_CBT_BLOCK_SIZE, VSS_A_CBT_SIZE, VSS_A_CBT_STARTED_NS,
		VSS_A_CBT_BOOT_ID, VSS_A_CBT_DISKSEQ, VSS_A_CBT_WRITE_IOS,
		VSS_A_CBT_DIRECT_WRITE_IOS, VSS_A_CBT_SAVE_FLAGS,
	};
	struct nlattr *tb[VSS_A_MAX + 1];
	unsigned int i;
	u32 block_size;
	int ret;

	ret = nla_parse_nested(tb, VSS_A_MAX, nest, NULL, extack);
	if (ret)
		return ret;
	for (i = 0; i < ARRAY_SIZE(required); i++) {
		if (!tb[required[i]]) {
			NL_SET_ERR_MSG_ATTR(extack, nest,
					    "saved state is incomplete");
			return -EINVAL;
		}
	}
	memcpy(&st->generation, nla_data(tb[VSS_A_CBT_GENERATION]),
	       VSS_ID_LEN);
	st->seq = nla_get_u64(tb[VSS_A_CBT_SEQ]);
	st->oldest = nla_get_u64(tb[VSS_A_CBT_OLDEST_SEQ]);
	block_size = nla_get_u32(tb[VSS_A_CBT_BLOCK_SIZE]);
	st->size = nla_get_u64(tb[VSS_A_CBT_SIZE]);
	st->started_ns = nla_get_u64(tb[VSS_A_CBT_STARTED_NS]);
	memset(w, 0, sizeof(*w));
	memcpy(&w->boot_id, nla_data(tb[VSS_A_CBT_BOOT_ID]), VSS_ID_LEN);
	w->diskseq = nla_get_u64(tb[VSS_A_CBT_DISKSEQ]);
	w->write_ios = nla_get_u64(tb[VSS_A_CBT_WRITE_IOS]);
	w->direct_write_ios = nla_get_u64(tb[VSS_A_CBT_DIRECT_WRITE_IOS]);
	w->flags = nla_get_u32(tb[VSS_A_CBT_SAVE_FLAGS]);
	if (!is_power_of_2(block_size) || block_size < VSS_CBT_MIN_BLOCK_SIZE ||
	    st->seq > VSS_NL_CBT_MAX_SEQ || st->oldest > st->seq ||
	    st->seq - st->oldest >= VSS_CBT_MAX_INTERVALS ||
	    uuid_is_null(&st->generation)) {
		NL_SET_ERR_MSG_ATTR(extack, nest, "saved state is inconsistent");
		return -EINVAL;
	}
	st->block_shift = ilog2(block_size);
	return 0;
}

/* Why the saved generation @st may not go on, or NULL. */
static const char *vss_nl_restore_verdict(struct vss_origin *origin,
					  const struct vss_cbt_restore_state *st,
					  const struct vss_cbt_witness *saved)
{
	u64 bytes = (u64)origin->nr_sectors << SECTOR_SHIFT;
	struct vss_cbt_witness now;

	if (st->size != bytes)
		return "the device's size changed since its map was saved";
	if (st->block_shift != vss_cbt_block_shift_for(bytes))
		return "the saved map has another block size than this device gets";
	vss_cbt_witness_read(origin->handle.bdev, &now);
	return vss_cbt_witness_verdict(saved, &now);
}

static int vss_nl_restore_begin(struct genl_info *info, dev_t dev)
{
	struct nlattr **attrs = info->attrs;
	struct netlink_ext_ack *extack = info->extack;
	struct vss_cbt_restore_state st;
	struct vss_cbt_restore *restore;
	struct vss_cbt_witness saved;
	struct vss_origin *origin;
	struct vss_cbt *cbt;
	u64 bytes, left;
	unsigned int noio;
	int ret;

	if (!attrs[VSS_A_CBT_STATE]) {
		NL_SET_ERR_MSG(extack, "no saved state given");
		return -EINVAL;
	}
	ret = vss_nl_parse_state(attrs[VSS_A_CBT_STATE], &saved, &st, extack);
	if (ret)
		return ret;
	restore = kzalloc(sizeof(*restore), GFP_KERNEL);
	if (!restore)
		return -ENOMEM;

	mutex_lock(&vss_ctl_lock);
	origin = vss_origin_find(dev);
	if (origin && (origin->cbt || origin->restore)) {
		NL_SET_ERR_MSG_ATTR(extack, attrs[VSS_A_DEVICE],
				    "device is already tracked");
		ret = -EALREADY;
		goto err;
	}
	if (origin) {
		NL_SET_ERR_MSG_ATTR(extack, attrs[VSS_A_DEVICE],
				    "device has snapshots: delete them before restoring its map");
		ret = -EBUSY;
		goto err;
	}
	/*
	 * Writes are held from here until tracking is on: nothing in between
	 * may wait for them (see vss_origin_get()).
	 */
	noio = memalloc_noio_save();
	ret = vss_origin_get(dev, true, extack, &origin);
	if (ret) {
		memalloc_noio_restore(noio);
		extack->bad_attr = attrs[VSS_A_DEVICE];
		goto err;
	}
	bytes = (u64)origin->nr_sectors << SECTOR_SHIFT;
	cbt = vss_cbt_alloc(bytes, vss_cbt_block_shift_for(bytes), NULL, 0, 0);
	restore->reason = vss_nl_restore_verdict(origin, &st, &saved);
	if (!restore->reason) {
		restore->saved = vss_cbt_alloc(st.size, st.block_shift,
					       &st.generation, st.oldest,
					       st.started_ns);
		/* Fewer than VSS_CBT_MAX_INTERVALS: vss_nl_parse_state(). */
		for (left = st.seq - st.oldest; restore->saved && left; left--) {
			if (vss_cbt_add_interval(restore->saved,
						 vss_cbt_seq(restore->saved) + 1)) {
				vss_cbt_free(restore->saved);
				restore->saved = NULL;
			}
		}
		if (!restore->saved)
			restore->reason = "no memory for the saved map";
	}
	if (!cbt) {
		vss_origin_gate_open(origin);
		memalloc_noio_restore(noio);
		vss_origin_put_if_unused(origin);
		ret = -ENOMEM;
		goto err;
	}
	vss_origin_attach_cbt(origin, cbt);
	vss_origin_gate_open(origin);
	memalloc_noio_restore(noio);
	origin->restore = restore;
	if (restore->reason) {
		pr_info("%s: saved map of generation %pUb not restored: %s\n",
			origin->name, &st.generation, restore->reason);
		vss_event_cbt(origin, cbt, VSS_EVENT_CBT_NEW_GENERATION,
			      restore->reason);
	}
	ret = vss_nl_reply_cbt(info, VSS_CMD_CBT_RESTORE, origin, NULL,
			       restore->reason ? VSS_CBT_VERDICT_NEW_GENERATION :
			       VSS_CBT_VERDICT_CONTINUED, restore->reason);
	mutex_unlock(&vss_ctl_lock);
	return ret;
err:
	mutex_unlock(&vss_ctl_lock);
	vss_cbt_restore_free(restore);
	return ret;
}

/* Abandons the saved generation of @origin's restore: @reason says why. */
static void vss_nl_restore_abandon(struct vss_origin *origin,
				   const char *reason)
{
	struct vss_cbt_restore *restore = origin->restore;

	vss_cbt_free(restore->saved);
	restore->saved = NULL;
	restore->reason = reason;
	pr_info("%s: saved map not restored: %s\n", origin->name, reason);
	vss_event_cbt(origin, origin->cbt, VSS_EVENT_CBT_NEW_GENERATION,
		      reason);
}

static int vss_nl_restore_extents(struct genl_info *info,
				  struct vss_origin *origin)
{
	struct nlattr **attrs = info->attrs;
	struct vss_cbt *saved = origin->restore->saved;
	const struct vss_cbt_extent *extents;
	struct vss_cbt_interval *iv;
	unsigned int nr, i;
	u64 mask;

	if (!attrs[VSS_A_CBT_SEQ] || !attrs[VSS_A_CBT_EXTENTS]) {
		NL_SET_ERR_MSG(info->extack, "an interval and extents are required");
		return -EINVAL;
	}
	if (!saved)
		return 0;	/* a new generation anyway: nothing to keep */
	iv = vss_cbt_find_interval(saved, nla_get_u64(attrs[VSS_A_CBT_SEQ]));
	nr = nla_len(attrs[VSS_A_CBT_EXTENTS]) / sizeof(*extents);
	if (!iv || nla_len(attrs[VSS_A_CBT_EXTENTS]) % sizeof(*extents)) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[VSS_A_CBT_SEQ],
				    "extents do not fit the saved map");
		vss_nl_restore_abandon(origin, "the saved map is inconsistent");
		return -EINVAL;
	}
	extents = nla_data(attrs[VSS_A_CBT_EXTENTS]);
	mask = (1ULL << saved->block_shift) - 1;
	for (i = 0; i < nr; i++) {
		u64 offset = extents[i].offset, length = extents[i].length;

		if ((offset & mask) || !length || offset >= saved->size ||
		    length > saved->size - offset) {
			NL_SET_ERR_MSG_ATTR(info->extack,
					    attrs[VSS_A_CBT_EXTENTS],
					    "an extent does not fit the device");
			vss_nl_restore_abandon(origin,
					       "the saved map does not fit the device");
			return -EINVAL;
		}
		if (vss_cbt_map_set(&iv->map, offset >> saved->block_shift,
				    (offset + length - 1) >> saved->block_shift,
				    GFP_KERNEL, &saved->nr_pages)) {
			vss_nl_restore_abandon(origin,
					       "no memory for the saved map");
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * The saved generation takes over from the one begun meanwhile, with the
 * writes that one saw added to its current interval.
 */
static int vss_nl_restore_commit(struct genl_info *info,
				 struct vss_origin *origin)
{
	struct vss_cbt_restore *restore = origin->restore;
	struct vss_cbt *interim;
	unsigned int noio;
	const char *reason;
	u32 verdict;
	int ret;

	if (restore->saved) {
		noio = memalloc_noio_save();
		vss_origin_quiesce(origin);
		if (vss_cbt_merge_current(restore->saved, origin->cbt)) {
			vss_origin_gate_open(origin);
			memalloc_noio_restore(noio);
			vss_nl_restore_abandon(origin,
					       "no memory for the saved map");
		} else {
			interim = vss_origin_detach_cbt(origin);
			vss_origin_attach_cbt(origin, restore->saved);
			restore->saved = NULL;
			vss_origin_gate_open(origin);
			memalloc_noio_restore(noio);
			vss_cbt_free(interim);
			vss_cbt_trim_history(origin->cbt);
			pr_info("%s: tracking generation %pUb resumed at point %llu\n",
				origin->name, &origin->cbt->generation,
				vss_cbt_seq(origin->cbt));
		}
	}
	reason = restore->reason;
	verdict = reason ? VSS_CBT_VERDICT_NEW_GENERATION :
		  VSS_CBT_VERDICT_CONTINUED;
	ret = vss_nl_reply_cbt(info, VSS_CMD_CBT_RESTORE, origin, NULL,
			       verdict, reason);
	vss_cbt_restore_free(restore);
	origin->restore = NULL;
	return ret;
}

int vss_nl_restore(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct vss_origin *origin;
	u32 flags = 0;
	dev_t dev;
	int ret;

	ret = vss_nl_require_admin(skb, info->extack);
	if (!ret)
		ret = vss_nl_cbt_device(attrs, info->extack, &dev);
	if (ret)
		return ret;
	if (attrs[VSS_A_FLAGS])
		flags = nla_get_u32(attrs[VSS_A_FLAGS]);
	if (flags & ~(VSS_CBT_RESTORE_BEGIN | VSS_CBT_RESTORE_COMMIT) ||
	    flags == (VSS_CBT_RESTORE_BEGIN | VSS_CBT_RESTORE_COMMIT)) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[VSS_A_FLAGS],
				    "unknown or contradictory restore flags");
		return -EINVAL;
	}
	/* Begin starts tracking; commit swaps generations (put, then get). */
	ret = vss_nl_hold_module(info->extack);
	if (ret)
		return ret;
	if (flags & VSS_CBT_RESTORE_BEGIN) {
		ret = vss_nl_restore_begin(info, dev);
		module_put(THIS_MODULE);
		return ret;
	}

	mutex_lock(&vss_ctl_lock);
	origin = vss_origin_find(dev);
	if (!origin || !origin->restore) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[VSS_A_DEVICE],
				    "no restore of the device is in progress");
		ret = -ENOENT;
	} else if (flags & VSS_CBT_RESTORE_COMMIT) {
		ret = vss_nl_restore_commit(info, origin);
	} else {
		ret = vss_nl_restore_extents(info, origin);
	}
	mutex_unlock(&vss_ctl_lock);
	module_put(THIS_MODULE);
	return ret;
}
