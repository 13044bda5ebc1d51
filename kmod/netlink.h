/* SPDX-License-Identifier: GPL-2.0 */
/* The generic netlink family "vss": the whole control plane. */
#ifndef VSS_NETLINK_H
#define VSS_NETLINK_H

#include <net/genetlink.h>

struct vss_snapshot;

extern struct genl_family vss_genl_family;

int vss_netlink_init(void);
void vss_netlink_exit(void);

int vss_nl_put_snapshot(struct sk_buff *skb, struct vss_snapshot *snap);
int vss_nl_put_device(struct sk_buff *skb, int attrtype, dev_t dev,
		      const char *name);

#endif /* VSS_NETLINK_H */
