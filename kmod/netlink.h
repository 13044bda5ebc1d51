/* SPDX-License-Identifier: GPL-2.0 */
/* The generic netlink family "vss": the whole control plane. */
#ifndef VSS_NETLINK_H
#define VSS_NETLINK_H

#include <net/genetlink.h>

struct vss_snapshot;
struct vss_origin;
struct vss_cbt;

extern struct genl_family vss_genl_family;

/* Upper bound of one VSS_A_SNAPSHOT nest, less its storage path. */
#define VSS_NL_SNAPSHOT_SIZE	1024
size_t vss_nl_snapshot_size(const struct vss_snapshot *snap);

int vss_netlink_init(void);
void vss_netlink_exit(void);

int vss_nl_put_snapshot(struct sk_buff *skb, struct vss_snapshot *snap);
int vss_nl_put_device(struct sk_buff *skb, int attrtype, dev_t dev,
		      const char *name);
int vss_nl_parse_device(struct nlattr *attr, dev_t *dev,
			struct netlink_ext_ack *extack);
int vss_nl_require_admin(struct sk_buff *skb, struct netlink_ext_ack *extack);
/* Holds the module for a request that may start tracking (-ENODEV). */
int vss_nl_hold_module(struct netlink_ext_ack *extack);
int vss_nl_put_cbt(struct sk_buff *skb, struct vss_origin *origin,
		   struct vss_cbt *cbt);

/* netlink_cbt.c: the changed-block tracking commands */
int vss_nl_track(struct sk_buff *skb, struct genl_info *info);
int vss_nl_untrack(struct sk_buff *skb, struct genl_info *info);
int vss_nl_get_cbt(struct sk_buff *skb, struct genl_info *info);
int vss_nl_dump_cbt(struct sk_buff *skb, struct netlink_callback *cb);
int vss_nl_changes_start(struct netlink_callback *cb);
int vss_nl_changes_dump(struct sk_buff *skb, struct netlink_callback *cb);
int vss_nl_changes_done(struct netlink_callback *cb);
int vss_nl_mark_dirty(struct sk_buff *skb, struct genl_info *info);
int vss_nl_save_start(struct netlink_callback *cb);
int vss_nl_save_dump(struct sk_buff *skb, struct netlink_callback *cb);
int vss_nl_save_done(struct netlink_callback *cb);
int vss_nl_restore(struct sk_buff *skb, struct genl_info *info);

#endif /* VSS_NETLINK_H */
