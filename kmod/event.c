// SPDX-License-Identifier: GPL-2.0
/*
 * Events. They are raised where the object is known to be alive but
 * sleeping may not be allowed (under RCU when a disk goes away, from
 * copy-on-write workers that must not recurse into I/O), so messages are
 * built with GFP_ATOMIC, each sized for what it carries (a storage path
 * takes up to 4 KiB). Nobody listening is not an error; an event that
 * cannot be built is never lost silently: the listeners get ENOBUFS, as
 * when their socket overflows, and know to list again.
 */
#include "vss.h"
#include "event.h"
#include "netlink.h"
#include "snapshot.h"
#include "store.h"
#include "origin.h"
#include "image.h"

/* Room for an event's attributes other than a snapshot nest and paths. */
#define VSS_EVENT_SIZE		512

/* An event could not be built: its listeners learn that they missed one. */
static void vss_event_lost(struct sk_buff *skb)
{
	nlmsg_free(skb);
	genl_set_err(&vss_genl_family, &init_net, 0, 0, -ENOBUFS);
}

static struct sk_buff *vss_event_new(enum vss_event event, size_t size,
				     void **hdr)
{
	struct sk_buff *skb;

	skb = genlmsg_new(size, GFP_ATOMIC);
	if (!skb) {
		vss_event_lost(NULL);
		return NULL;
	}
	*hdr = genlmsg_put(skb, 0, 0, &vss_genl_family, 0, VSS_CMD_EVENT);
	if (!*hdr || nla_put_u32(skb, VSS_A_EVENT, event)) {
		vss_event_lost(skb);
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

	skb = vss_event_new(event, VSS_EVENT_SIZE + vss_nl_snapshot_size(snap),
			    &hdr);
	if (!skb)
		return;
	/* The ids at the top, as documented; the whole snapshot nested. */
	if (nla_put(skb, VSS_A_SNAP_ID, VSS_ID_LEN, &snap->id) ||
	    nla_put(skb, VSS_A_SET_ID, VSS_ID_LEN, &snap->set->id) ||
	    vss_nl_put_device(skb, VSS_A_ORIGIN, snap->origin->dev,
			      snap->origin->name) ||
	    vss_nl_put_snapshot(skb, snap)) {
		vss_event_lost(skb);
		return;
	}
	if (event == VSS_EVENT_SNAPSHOT_FAILED &&
	    (nla_put_u32(skb, VSS_A_ERRNO, READ_ONCE(snap->fail_errno)) ||
	     nla_put_string(skb, VSS_A_REASON, READ_ONCE(snap->fail_reason)))) {
		vss_event_lost(skb);
		return;
	}
	vss_event_send(skb, hdr);
}

void vss_event_origin(struct vss_origin *origin, enum vss_event event)
{
	struct sk_buff *skb;
	void *hdr;

	skb = vss_event_new(event, VSS_EVENT_SIZE, &hdr);
	if (!skb)
		return;
	if (vss_nl_put_device(skb, VSS_A_ORIGIN, origin->dev, origin->name)) {
		vss_event_lost(skb);
		return;
	}
	vss_event_send(skb, hdr);
}

void vss_event_storage(struct vss_store *store, enum vss_event event)
{
	struct sk_buff *skb;
	void *hdr;

	skb = vss_event_new(event, VSS_EVENT_SIZE + strlen(store->path), &hdr);
	if (!skb)
		return;
	if (nla_put_string(skb, VSS_A_STORAGE_PATH, store->path) ||
	    nla_put_u32(skb, VSS_A_STORAGE_KIND, store->ops->kind) ||
	    nla_put_u64_64bit(skb, VSS_A_STORAGE_USED,
			      vss_store_used_bytes(store), VSS_A_PAD) ||
	    nla_put_u64_64bit(skb, VSS_A_STORAGE_LIMIT, store->limit,
			      VSS_A_PAD)) {
		vss_event_lost(skb);
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

	skb = vss_event_new(event, VSS_EVENT_SIZE + (reason ? strlen(reason) : 0),
			    &hdr);
	if (!skb)
		return;
	if (vss_nl_put_device(skb, VSS_A_ORIGIN, origin->dev, origin->name) ||
	    vss_nl_put_cbt(skb, origin, cbt) ||
	    (reason && nla_put_string(skb, VSS_A_REASON, reason))) {
		vss_event_lost(skb);
		return;
	}
	vss_event_send(skb, hdr);
}
