// SPDX-License-Identifier: GPL-2.0
/*
 * Events. They are raised where the object is known to be alive but
 * sleeping may not be allowed (under RCU when a disk goes away, from
 * copy-on-write workers that must not recurse into I/O), so messages are
 * built with GFP_ATOMIC. Nobody listening is not an error.
 */
#include "vss.h"
#include "event.h"
#include "netlink.h"
#include "snapshot.h"
#include "store.h"
#include "origin.h"
#include "image.h"

static struct sk_buff *vss_event_new(enum vss_event event, void **hdr)
{
	struct sk_buff *skb;

	skb = genlmsg_new(NLMSG_GOODSIZE, GFP_ATOMIC);
	if (!skb)
		return NULL;
	*hdr = genlmsg_put(skb, 0, 0, &vss_genl_family, 0, VSS_CMD_EVENT);
	if (!*hdr || nla_put_u32(skb, VSS_A_EVENT, event)) {
		nlmsg_free(skb);
		return NULL;
	}
	return skb;
}

static void vss_event_send(struct sk_buff *skb, void *hdr)
{
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&vss_genl_family, skb, 0, 0, GFP_ATOMIC);
}

void vss_event_snapshot(struct vss_snapshot *snap, enum vss_event event)
{
	struct sk_buff *skb;
	void *hdr;

	skb = vss_event_new(event, &hdr);
	if (!skb)
		return;
	/* The ids at the top, as documented; the whole snapshot nested. */
	if (nla_put(skb, VSS_A_SNAP_ID, VSS_ID_LEN, &snap->id) ||
	    nla_put(skb, VSS_A_SET_ID, VSS_ID_LEN, &snap->set->id) ||
	    vss_nl_put_device(skb, VSS_A_ORIGIN, snap->origin->dev,
			      snap->origin->name) ||
	    vss_nl_put_snapshot(skb, snap)) {
		nlmsg_free(skb);
		return;
	}
	if (event == VSS_EVENT_SNAPSHOT_FAILED &&
	    (nla_put_u32(skb, VSS_A_ERRNO, READ_ONCE(snap->fail_errno)) ||
	     nla_put_string(skb, VSS_A_REASON, READ_ONCE(snap->fail_reason)))) {
		nlmsg_free(skb);
		return;
	}
	vss_event_send(skb, hdr);
}

void vss_event_origin(struct vss_origin *origin, enum vss_event event)
{
	struct sk_buff *skb;
	void *hdr;

	skb = vss_event_new(event, &hdr);
	if (!skb)
		return;
	if (vss_nl_put_device(skb, VSS_A_ORIGIN, origin->dev, origin->name)) {
		nlmsg_free(skb);
		return;
	}
	vss_event_send(skb, hdr);
}

void vss_event_storage(struct vss_store *store, enum vss_event event)
{
	struct sk_buff *skb;
	void *hdr;

	skb = vss_event_new(event, &hdr);
	if (!skb)
		return;
	if (nla_put_string(skb, VSS_A_STORAGE_PATH, store->path) ||
	    nla_put_u32(skb, VSS_A_STORAGE_KIND, store->kind) ||
	    nla_put_u64_64bit(skb, VSS_A_STORAGE_USED,
			      vss_store_used_bytes(store), VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_STORAGE_LIMIT, store->limit,
			      VSS_A_PAD)) {
		nlmsg_free(skb);
		return;
	}
	vss_event_send(skb, hdr);
}

/* Tracking of @origin changed: @cbt is the generation concerned. */
void vss_event_cbt(struct vss_origin *origin, struct vss_cbt *cbt,
		   enum vss_event event, const char *reason)
{
	struct sk_buff *skb;
	void *hdr;

	skb = vss_event_new(event, &hdr);
	if (!skb)
		return;
	if (vss_nl_put_device(skb, VSS_A_ORIGIN, origin->dev, origin->name) ||
	    vss_nl_put_cbt(skb, origin, cbt) ||
	    (reason && nla_put_string(skb, VSS_A_REASON, reason))) {
		nlmsg_free(skb);
		return;
	}
	vss_event_send(skb, hdr);
}
