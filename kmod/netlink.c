// SPDX-License-Identifier: GPL-2.0
/*
 * The control plane: the generic netlink family "vss". Parsing, policy and
 * privilege checks live here and nowhere else; the handlers call into the
 * snapshot code with plain arguments. The protocol is documented in
 * uapi/linux/vss.h.
 */
#include "vss.h"
#include "netlink.h"
#include "snapshot.h"
#include "origin.h"
#include "store.h"
#include "image.h"
#include <linux/capability.h>
#include <linux/log2.h>
#include <linux/kdev_t.h>
#include <linux/module.h>

static const struct nla_policy vss_device_policy[VSS_A_MAX + 1] = {
	[VSS_A_DEV_MAJOR] = { .type = NLA_U32 },
	[VSS_A_DEV_MINOR] = { .type = NLA_U32 },
};

static struct netlink_range_validation vss_chunk_size_range = {
	.min = VSS_MIN_CHUNK_SIZE,
	.max = VSS_MAX_CHUNK_SIZE,
};

static struct netlink_range_validation vss_hold_limit_range = {
	.min = 1,
	.max = VSS_MAX_HOLD_LIMIT_MS,
};

/* A device as replies describe it: with its name. */
static const struct nla_policy vss_named_device_policy[VSS_A_MAX + 1] = {
	[VSS_A_DEV_MAJOR] = { .type = NLA_U32 },
	[VSS_A_DEV_MINOR] = { .type = NLA_U32 },
	[VSS_A_DEV_NAME] = { .type = NLA_NUL_STRING, .len = BDEVNAME_SIZE },
};

/* A saved tracking state, as VSS_CMD_CBT_SAVE hands it out. */
static const struct nla_policy vss_cbt_state_policy[VSS_A_MAX + 1] = {
	[VSS_A_DEVICE] = NLA_POLICY_NESTED(vss_named_device_policy),
	[VSS_A_CBT_GENERATION] = NLA_POLICY_EXACT_LEN(VSS_ID_LEN),
	[VSS_A_CBT_SEQ] = { .type = NLA_U64 },
	[VSS_A_CBT_OLDEST_SEQ] = { .type = NLA_U64 },
	[VSS_A_CBT_BLOCK_SIZE] = { .type = NLA_U32 },
	[VSS_A_CBT_SIZE] = { .type = NLA_U64 },
	[VSS_A_CBT_STARTED_NS] = { .type = NLA_U64 },
	[VSS_A_CBT_BOOT_ID] = NLA_POLICY_EXACT_LEN(VSS_ID_LEN),
	[VSS_A_CBT_DISKSEQ] = { .type = NLA_U64 },
	[VSS_A_CBT_WRITE_IOS] = { .type = NLA_U64 },
	[VSS_A_CBT_DIRECT_WRITE_IOS] = { .type = NLA_U64 },
	[VSS_A_CBT_SAVE_FLAGS] = { .type = NLA_U32 },
};

static const struct nla_policy vss_policy[VSS_A_MAX + 1] = {
	[VSS_A_DEVICES] = NLA_POLICY_NESTED_ARRAY(vss_device_policy),
	[VSS_A_DEVICE] = NLA_POLICY_NESTED(vss_device_policy),
	[VSS_A_STORAGE_PATH] = { .type = NLA_NUL_STRING,
				 .len = VSS_PATH_MAX - 1 },
	[VSS_A_STORAGE_LIMIT] = { .type = NLA_U64 },
	[VSS_A_CHUNK_SIZE] = NLA_POLICY_FULL_RANGE(NLA_U32,
						   &vss_chunk_size_range),
	[VSS_A_LABEL] = { .type = NLA_NUL_STRING, .len = VSS_LABEL_MAX - 1 },
	[VSS_A_FLAGS] = { .type = NLA_U32 },
	[VSS_A_HOLD_LIMIT_MS] = NLA_POLICY_FULL_RANGE(NLA_U32,
						      &vss_hold_limit_range),
	[VSS_A_SET_ID] = NLA_POLICY_EXACT_LEN(VSS_ID_LEN),
	[VSS_A_SNAP_ID] = NLA_POLICY_EXACT_LEN(VSS_ID_LEN),
	[VSS_A_CBT_GENERATION] = NLA_POLICY_EXACT_LEN(VSS_ID_LEN),
	[VSS_A_CBT_SEQ] = { .type = NLA_U64 },
	[VSS_A_CBT_FROM] = { .type = NLA_U64 },
	[VSS_A_CBT_TO] = { .type = NLA_U64 },
	[VSS_A_CBT_OFFSET] = { .type = NLA_U64 },
	[VSS_A_CBT_LENGTH] = { .type = NLA_U64 },
	[VSS_A_CBT_EXTENTS] = { .type = NLA_BINARY },
	[VSS_A_CBT_STATE] = NLA_POLICY_NESTED(vss_cbt_state_policy),
};

/* Mutating commands need CAP_SYS_ADMIN in the initial user namespace. */
int vss_nl_require_admin(struct sk_buff *skb, struct netlink_ext_ack *extack)
{
	if (netlink_capable(skb, CAP_SYS_ADMIN))
		return 0;
	NL_SET_ERR_MSG(extack, "CAP_SYS_ADMIN is required");
	return -EPERM;
}

/*
 * A request that may start tracking holds the module while it runs:
 * tracking takes its own reference with __module_get(), which would
 * succeed on a module that rmmod has already begun to unload (genl lets
 * a running request finish before the family goes), leaving a tracked
 * origin behind a module that is gone.
 */
int vss_nl_hold_module(struct netlink_ext_ack *extack)
{
	if (try_module_get(THIS_MODULE))
		return 0;
	NL_SET_ERR_MSG(extack, "vss is being unloaded");
	return -ENODEV;
}

int vss_nl_put_device(struct sk_buff *skb, int attrtype, dev_t dev,
		      const char *name)
{
	struct nlattr *nest = nla_nest_start(skb, attrtype);

	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, VSS_A_DEV_MAJOR, MAJOR(dev)) ||
	    nla_put_u32(skb, VSS_A_DEV_MINOR, MINOR(dev)) ||
	    (name && nla_put_string(skb, VSS_A_DEV_NAME, name))) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

int vss_nl_parse_device(struct nlattr *attr, dev_t *dev,
			struct netlink_ext_ack *extack)
{
	struct nlattr *tb[VSS_A_MAX + 1];
	u32 major, minor;
	int ret;

	ret = nla_parse_nested(tb, VSS_A_MAX, attr, vss_device_policy, extack);
	if (ret)
		return ret;
	if (!tb[VSS_A_DEV_MAJOR] || !tb[VSS_A_DEV_MINOR]) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "device needs a major and a minor number");
		return -EINVAL;
	}
	major = nla_get_u32(tb[VSS_A_DEV_MAJOR]);
	minor = nla_get_u32(tb[VSS_A_DEV_MINOR]);
	if (major > MAJOR(~0U) || minor > MINOR(~0U)) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "device number out of range");
		return -ERANGE;
	}
	*dev = MKDEV(major, minor);
	return 0;
}

/* Room for @snap's VSS_A_SNAPSHOT nest: its storage path is up to 4 KiB. */
size_t vss_nl_snapshot_size(const struct vss_snapshot *snap)
{
	return VSS_NL_SNAPSHOT_SIZE + strlen(snap->set->store->path);
}

/*
 * Fills one VSS_A_SNAPSHOT nest. Callers hold vss_ctl_lock, or found @snap
 * in its origin's chain (which keeps its set alive).
 */
int vss_nl_put_snapshot(struct sk_buff *skb, struct vss_snapshot *snap)
{
	dev_t image_devt = READ_ONCE(snap->image_devt);
	struct vss_origin *origin = snap->origin;
	struct vss_store *store = snap->set->store;
	int state = READ_ONCE(snap->state);
	char image_name[DISK_NAME_LEN];
	struct nlattr *nest;

	/* Never through snap->image: see struct vss_snapshot. */
	if (READ_ONCE(snap->image_dead))
		image_devt = 0;
	if (image_devt)
		vss_image_name(image_devt, image_name);

	nest = nla_nest_start(skb, VSS_A_SNAPSHOT);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put(skb, VSS_A_SNAP_ID, VSS_ID_LEN, &snap->id) ||
	    nla_put(skb, VSS_A_SET_ID, VSS_ID_LEN, &snap->set->id) ||
	    vss_nl_put_device(skb, VSS_A_ORIGIN, origin->dev, origin->name) ||
	    (image_devt && vss_nl_put_device(skb, VSS_A_IMAGE, image_devt,
					     image_name)) ||
	    nla_put_u32(skb, VSS_A_INDEX, snap->index) ||
	    nla_put_u64_64bit(skb, VSS_A_CREATED_NS, snap->created_ns,
			      VSS_A_PAD) ||
	    nla_put_u32(skb, VSS_A_STATE, state) ||
	    nla_put_u32(skb, VSS_A_CHUNK_SIZE, 1U << origin->chunk_shift) ||
	    nla_put_string(skb, VSS_A_STORAGE_PATH, store->path) ||
	    nla_put_u32(skb, VSS_A_STORAGE_KIND, store->ops->kind) ||
	    nla_put_u64_64bit(skb, VSS_A_STORAGE_USED,
			      vss_store_used_bytes(store), VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_STORAGE_SIZE,
			      READ_ONCE(store->size), VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_STORAGE_LIMIT, store->limit,
			      VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_HOLD_US, snap->set->hold_us,
			      VSS_A_PAD) ||
	    nla_put_u32(skb, VSS_A_OPEN_COUNT,
			atomic_read(&snap->image_openers)) ||
	    nla_put(skb, VSS_A_CBT_GENERATION, VSS_ID_LEN,
		    &snap->cbt_generation) ||
	    nla_put_u64_64bit(skb, VSS_A_CBT_SEQ, snap->cbt_seq, VSS_A_PAD))
		goto err;
	if (snap->set->label[0] &&
	    nla_put_string(skb, VSS_A_LABEL, snap->set->label))
		goto err;
	if (state == VSS_STATE_FAILED &&
	    (nla_put_u32(skb, VSS_A_ERRNO, READ_ONCE(snap->fail_errno)) ||
	     nla_put_string(skb, VSS_A_REASON, READ_ONCE(snap->fail_reason))))
		goto err;
	nla_nest_end(skb, nest);
	return 0;
err:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

static int vss_nl_get_version(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &vss_genl_family, 0,
				VSS_CMD_GET_VERSION);
	if (!hdr ||
	    nla_put_string(msg, VSS_A_VERSION, VSS_VERSION) ||
	    nla_put_u32(msg, VSS_A_PROTOCOL, VSS_PROTOCOL_VERSION)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

static int vss_nl_parse_create(struct genl_info *info,
			       struct vss_create_params *params)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr **attrs = info->attrs;
	struct nlattr *dev_attr;
	int rem, ret;
	u32 chunk = VSS_DEFAULT_CHUNK_SIZE;

	if (!attrs[VSS_A_DEVICES]) {
		NL_SET_ERR_MSG(extack, "no devices given");
		return -EINVAL;
	}
	if (!attrs[VSS_A_STORAGE_PATH]) {
		NL_SET_ERR_MSG(extack, "no storage given");
		return -EINVAL;
	}
	nla_for_each_nested(dev_attr, attrs[VSS_A_DEVICES], rem) {
		unsigned int i;
		dev_t dev;

		if (nla_type(dev_attr) != VSS_A_DEVICE) {
			NL_SET_ERR_MSG_ATTR(extack, dev_attr,
					    "devices must be VSS_A_DEVICE nests");
			return -EINVAL;
		}
		if (params->nr_devs == VSS_MAX_SET_DEVICES) {
			NL_SET_ERR_MSG_ATTR(extack, dev_attr,
					    "a set holds at most 64 devices");
			return -E2BIG;
		}
		ret = vss_nl_parse_device(dev_attr, &dev, extack);
		if (ret)
			return ret;
		for (i = 0; i < params->nr_devs; i++) {
			if (params->devs[i] == dev) {
				NL_SET_ERR_MSG_ATTR(extack, dev_attr,
						    "device is listed twice");
				return -EINVAL;
			}
		}
		params->devs[params->nr_devs++] = dev;
	}
	if (!params->nr_devs) {
		NL_SET_ERR_MSG(extack, "no devices given");
		return -EINVAL;
	}
	params->storage_path = nla_data(attrs[VSS_A_STORAGE_PATH]);
	if (params->storage_path[0] != '/') {
		NL_SET_ERR_MSG_ATTR(extack, attrs[VSS_A_STORAGE_PATH],
				    "storage path must be absolute");
		return -EINVAL;
	}
	if (attrs[VSS_A_STORAGE_LIMIT])
		params->storage_limit = nla_get_u64(attrs[VSS_A_STORAGE_LIMIT]);
	if (attrs[VSS_A_CHUNK_SIZE])
		chunk = nla_get_u32(attrs[VSS_A_CHUNK_SIZE]);
	if (!is_power_of_2(chunk)) {
		NL_SET_ERR_MSG_ATTR(extack, attrs[VSS_A_CHUNK_SIZE],
				    "chunk size must be a power of two");
		return -EINVAL;
	}
	params->chunk_shift = ilog2(chunk);
	if (attrs[VSS_A_LABEL])
		nla_strscpy(params->label, attrs[VSS_A_LABEL],
			    sizeof(params->label));
	if (attrs[VSS_A_FLAGS]) {
		params->flags = nla_get_u32(attrs[VSS_A_FLAGS]);
		if (params->flags & ~VSS_CREATE_FLAGS_ALL) {
			NL_SET_ERR_MSG_ATTR(extack, attrs[VSS_A_FLAGS],
					    "unknown create flags");
			return -EINVAL;
		}
	}
	params->hold_limit_ms = VSS_DEFAULT_HOLD_LIMIT_MS;
	if (attrs[VSS_A_HOLD_LIMIT_MS])
		params->hold_limit_ms = nla_get_u32(attrs[VSS_A_HOLD_LIMIT_MS]);
	return 0;
}

/* Points the extack at the n-th VSS_A_DEVICE of the request. */
static void vss_nl_blame_device(struct genl_info *info, int n)
{
	struct nlattr *dev_attr;
	int rem;

	if (n < 0)
		return;
	nla_for_each_nested(dev_attr, info->attrs[VSS_A_DEVICES], rem) {
		if (!n--) {
			info->extack->bad_attr = dev_attr;
			return;
		}
	}
}

static int vss_nl_create_set(struct sk_buff *skb, struct genl_info *info)
{
	struct vss_create_params *params;
	struct vss_create_result result = { .bad_dev = -1 };
	struct vss_snapshot *snap;
	struct nlattr *list;
	struct sk_buff *msg;
	void *hdr;
	int ret;

	ret = vss_nl_require_admin(skb, info->extack);
	if (ret)
		return ret;
	params = kzalloc(sizeof(*params), GFP_KERNEL);
	if (!params)
		return -ENOMEM;
	ret = vss_nl_parse_create(info, params);
	if (ret)
		goto out;
	/* Room for every snapshot of the set, so the reply never fails. */
	msg = genlmsg_new((VSS_NL_SNAPSHOT_SIZE +
			   strlen(params->storage_path)) * (params->nr_devs + 1),
			  GFP_KERNEL);
	if (!msg) {
		ret = -ENOMEM;
		goto out;
	}

	ret = vss_set_create(params, &result, info->extack);
	if (ret) {
		if (result.bad_storage && result.bad_dev < 0)
			info->extack->bad_attr = info->attrs[VSS_A_STORAGE_PATH];
		else
			vss_nl_blame_device(info, result.bad_dev);
		nlmsg_free(msg);
		goto out;
	}

	mutex_lock(&vss_ctl_lock);
	hdr = genlmsg_put_reply(msg, info, &vss_genl_family, 0,
				VSS_CMD_CREATE_SET);
	if (!hdr ||
	    nla_put(msg, VSS_A_SET_ID, VSS_ID_LEN, &result.set->id) ||
	    nla_put_u64_64bit(msg, VSS_A_HOLD_US, result.set->hold_us,
			      VSS_A_PAD))
		goto nospace;
	list = nla_nest_start(msg, VSS_A_SNAPSHOTS);
	if (!list)
		goto nospace;
	list_for_each_entry(snap, &result.set->snapshots, set_node)
		if (vss_nl_put_snapshot(msg, snap))
			goto nospace;
	nla_nest_end(msg, list);
	mutex_unlock(&vss_ctl_lock);
	genlmsg_end(msg, hdr);
	ret = genlmsg_reply(msg, info);
	goto out;
nospace:
	/* Cannot happen: the message was sized for the whole set. */
	mutex_unlock(&vss_ctl_lock);
	nlmsg_free(msg);
	WARN_ON_ONCE(1);
	ret = -EMSGSIZE;
out:
	kfree(params);
	return ret;
}

static int vss_nl_get_snapshot(struct sk_buff *skb, struct genl_info *info)
{
	struct vss_snapshot *snap;
	struct sk_buff *msg;
	void *hdr;
	int ret;

	if (!info->attrs[VSS_A_SNAP_ID]) {
		NL_SET_ERR_MSG(info->extack, "snapshot id required");
		return -EINVAL;
	}
	mutex_lock(&vss_ctl_lock);
	snap = vss_snapshot_find(nla_data(info->attrs[VSS_A_SNAP_ID]));
	if (!snap) {
		mutex_unlock(&vss_ctl_lock);
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[VSS_A_SNAP_ID],
				    "no such snapshot");
		return -ENOENT;
	}
	msg = genlmsg_new(vss_nl_snapshot_size(snap), GFP_KERNEL);
	if (!msg) {
		mutex_unlock(&vss_ctl_lock);
		return -ENOMEM;
	}
	hdr = genlmsg_put_reply(msg, info, &vss_genl_family, 0,
				VSS_CMD_GET_SNAPSHOT);
	ret = hdr ? vss_nl_put_snapshot(msg, snap) : -EMSGSIZE;
	mutex_unlock(&vss_ctl_lock);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

/*
 * Dump: cb->args[0] counts snapshots already sent, cb->args[1] is the
 * origin filter (0: none). A snapshot deleted between two dump rounds
 * shifts the list; the client sees each remaining snapshot at most once.
 */
static int vss_nl_dump_start(struct netlink_callback *cb)
{
	struct nlattr *attr = vss_dumpit_attrs(cb)[VSS_A_DEVICE];
	dev_t dev = 0;
	int ret;

	if (attr) {
		ret = vss_nl_parse_device(attr, &dev, cb->extack);
		if (ret)
			return ret;
		if (!dev)
			return -EINVAL;
	}
	cb->args[1] = dev;
	/* One snapshot with the longest storage path fits a message. */
	cb->min_dump_alloc = NLMSG_HDRLEN + GENL_HDRLEN + VSS_NL_SNAPSHOT_SIZE +
			     VSS_PATH_MAX;
	return 0;
}

static int vss_nl_dump_snapshots(struct sk_buff *skb,
				 struct netlink_callback *cb)
{
	dev_t filter = cb->args[1];
	struct vss_snapshot *snap;
	long skip = cb->args[0];
	bool full = false;
	long sent = 0;

	mutex_lock(&vss_ctl_lock);
	list_for_each_entry(snap, &vss_snapshots, node) {
		void *hdr;

		if (filter && snap->origin->dev != filter)
			continue;
		if (skip) {
			skip--;
			continue;
		}
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &vss_genl_family,
				  NLM_F_MULTI, VSS_CMD_GET_SNAPSHOT);
		if (!hdr) {
			full = true;
			break;
		}
		if (vss_nl_put_snapshot(skb, snap)) {
			genlmsg_cancel(skb, hdr);
			full = true;
			break;
		}
		genlmsg_end(skb, hdr);
		sent++;
	}
	mutex_unlock(&vss_ctl_lock);
	cb->args[0] += sent;
	/* Not even one fitted a message sized for any: say so. */
	if (full && !skb->len)
		return -EMSGSIZE;
	return skb->len;
}

static int vss_nl_delete_snapshot(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	bool force = false;
	int ret;

	ret = vss_nl_require_admin(skb, info->extack);
	if (ret)
		return ret;
	if (!attrs[VSS_A_SNAP_ID] == !attrs[VSS_A_SET_ID]) {
		NL_SET_ERR_MSG(info->extack,
			       "give exactly one of a snapshot id or a set id");
		return -EINVAL;
	}
	if (attrs[VSS_A_FLAGS]) {
		u32 flags = nla_get_u32(attrs[VSS_A_FLAGS]);

		if (flags & ~VSS_DELETE_FLAGS_ALL) {
			NL_SET_ERR_MSG_ATTR(info->extack, attrs[VSS_A_FLAGS],
					    "unknown delete flags");
			return -EINVAL;
		}
		force = flags & VSS_DELETE_FORCE;
	}

	mutex_lock(&vss_ctl_lock);
	if (attrs[VSS_A_SNAP_ID]) {
		struct vss_snapshot *snap;

		snap = vss_snapshot_find(nla_data(attrs[VSS_A_SNAP_ID]));
		if (snap) {
			ret = vss_snapshot_delete(snap, force, info->extack);
		} else {
			NL_SET_ERR_MSG_ATTR(info->extack, attrs[VSS_A_SNAP_ID],
					    "no such snapshot");
			ret = -ENOENT;
		}
	} else {
		struct vss_set *set;

		set = vss_set_find(nla_data(attrs[VSS_A_SET_ID]));
		if (set) {
			ret = vss_set_delete(set, force, info->extack);
		} else {
			NL_SET_ERR_MSG_ATTR(info->extack, attrs[VSS_A_SET_ID],
					    "no such snapshot set");
			ret = -ENOENT;
		}
	}
	mutex_unlock(&vss_ctl_lock);
	return ret;
}

static const struct genl_ops vss_genl_ops[] = {
	{
		.cmd = VSS_CMD_GET_VERSION,
		.doit = vss_nl_get_version,
	},
	{
		.cmd = VSS_CMD_CREATE_SET,
		.doit = vss_nl_create_set,
	},
	{
		.cmd = VSS_CMD_GET_SNAPSHOT,
		.doit = vss_nl_get_snapshot,
		.start = vss_nl_dump_start,
		.dumpit = vss_nl_dump_snapshots,
	},
	{
		.cmd = VSS_CMD_DELETE_SNAPSHOT,
		.doit = vss_nl_delete_snapshot,
	},
	{
		.cmd = VSS_CMD_TRACK,
		.doit = vss_nl_track,
	},
	{
		.cmd = VSS_CMD_UNTRACK,
		.doit = vss_nl_untrack,
	},
	{
		.cmd = VSS_CMD_GET_CBT,
		.doit = vss_nl_get_cbt,
		.dumpit = vss_nl_dump_cbt,
	},
	{
		.cmd = VSS_CMD_CBT_CHANGES,
		.start = vss_nl_changes_start,
		.dumpit = vss_nl_changes_dump,
		.done = vss_nl_changes_done,
	},
	{
		.cmd = VSS_CMD_CBT_MARK_DIRTY,
		.doit = vss_nl_mark_dirty,
	},
	{
		.cmd = VSS_CMD_CBT_SAVE,
		.start = vss_nl_save_start,
		.dumpit = vss_nl_save_dump,
		.done = vss_nl_save_done,
	},
	{
		.cmd = VSS_CMD_CBT_RESTORE,
		.doit = vss_nl_restore,
	},
};

/*
 * Only CAP_SYS_ADMIN may listen (checked when a socket joins the group):
 * events are sent from the write path, where every listener costs an
 * atomic allocation, and they stream device names and failure reasons as
 * they happen. Listing stays open to every user.
 */
static const struct genl_multicast_group vss_mcgrps[] = {
	{ .name = VSS_MCGRP_EVENTS, .flags = GENL_MCAST_CAP_SYS_ADMIN },
};

struct genl_family vss_genl_family __ro_after_init = {
	.name = VSS_GENL_NAME,
	.version = VSS_GENL_VERSION,
	.maxattr = VSS_A_MAX,
	.policy = vss_policy,
	.module = THIS_MODULE,
	.ops = vss_genl_ops,
	.n_ops = ARRAY_SIZE(vss_genl_ops),
	.mcgrps = vss_mcgrps,
	.n_mcgrps = ARRAY_SIZE(vss_mcgrps),
};

int __init vss_netlink_init(void)
{
	return genl_register_family(&vss_genl_family);
}

void vss_netlink_exit(void)
{
	genl_unregister_family(&vss_genl_family);
}
