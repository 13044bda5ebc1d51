// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Handles: the netlink socket, the resolution of the "vss" family and its
 * multicast group, and the module's version read once at open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/genetlink.h>

#include <netlink/genl/genl.h>

#include "internal.h"

/* Large enough for a dump message of the kernel (up to 32 KiB). */
#define VSS_RXBUF_INITIAL	(32 * 1024)

int vss_netlink_socket(int *fd_out)
{
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK };
	int one = 1;
	int fd, err;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	/*
	 * Extended acks carry the message and the blamed attribute; a kernel
	 * without them (before 4.12) still answers with a bare errno, so a
	 * failure here is not fatal. Capping keeps error messages from
	 * echoing the whole request back, which nothing here reads.
	 */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	*fd_out = fd;
	return 0;
}

static const struct nla_policy ctrl_policy[CTRL_ATTR_MAX + 1] = {
	[CTRL_ATTR_FAMILY_ID] = { .type = NLA_U16 },
	[CTRL_ATTR_FAMILY_NAME] = { .type = NLA_STRING },
	[CTRL_ATTR_VERSION] = { .type = NLA_U32 },
	[CTRL_ATTR_MCAST_GROUPS] = { .type = NLA_NESTED },
};

static const struct nla_policy mcast_group_policy[CTRL_ATTR_MCAST_GRP_MAX + 1] = {
	[CTRL_ATTR_MCAST_GRP_NAME] = { .type = NLA_STRING },
	[CTRL_ATTR_MCAST_GRP_ID] = { .type = NLA_U32 },
};

static int parse_family(struct vss_handle *h, const struct nlmsghdr *nlh,
			void *arg)
{
	struct nlattr *tb[CTRL_ATTR_MAX + 1] = { NULL };
	struct nlattr *group;
	int rem, err;

	(void)arg;
	err = vss_genl_attrs(nlh, tb, CTRL_ATTR_MAX, ctrl_policy);
	if (err)
		return err;
	if (!tb[CTRL_ATTR_FAMILY_ID])
		return -EPROTO;
	h->family_id = nla_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	if (tb[CTRL_ATTR_VERSION])
		h->family_version = nla_get_u32(tb[CTRL_ATTR_VERSION]);
	if (!tb[CTRL_ATTR_MCAST_GROUPS])
		return 0;
	nla_for_each_nested(group, tb[CTRL_ATTR_MCAST_GROUPS], rem) {
		struct nlattr *gtb[CTRL_ATTR_MCAST_GRP_MAX + 1] = { NULL };

		if (nla_parse_nested(gtb, CTRL_ATTR_MCAST_GRP_MAX, group,
				     mcast_group_policy) < 0)
			return -EPROTO;
		if (gtb[CTRL_ATTR_MCAST_GRP_NAME] && gtb[CTRL_ATTR_MCAST_GRP_ID] &&
		    !strcmp(nla_data(gtb[CTRL_ATTR_MCAST_GRP_NAME]),
			    VSS_MCGRP_EVENTS))
			h->events_group = nla_get_u32(gtb[CTRL_ATTR_MCAST_GRP_ID]);
	}
	return 0;
}

int vss_resolve_family(struct vss_handle *h)
{
	struct vss_request req;
	int err;

	err = vss_request_init(&req, h, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, false);
	if (err)
		return err;
	req.on_reply = parse_family;
	err = nla_put_string(req.msg, CTRL_ATTR_FAMILY_NAME, VSS_GENL_NAME) < 0 ?
		-ENOMEM : vss_transact(h, &req);
	vss_request_fini(&req);
	/* The controller answers ENOENT for a family nobody registered. */
	if (err == -ENOENT)
		return vss_error_set(h, -LIBVSS_ENOMODULE, NULL,
				     "generic netlink family \"%s\" is not registered",
				     VSS_GENL_NAME);
	if (!err && !h->family_id)
		return vss_error_set(h, -EPROTO, NULL,
				     "the controller did not give the family id");
	return err;
}

static const struct nla_policy version_policy[VSS_A_MAX + 1] = {
	[VSS_A_VERSION] = { .type = NLA_STRING },
	[VSS_A_PROTOCOL] = { .type = NLA_U32 },
};

static int parse_version(struct vss_handle *h, const struct nlmsghdr *nlh,
			 void *arg)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	bool *seen = arg;
	int err;

	err = vss_genl_attrs(nlh, tb, VSS_A_MAX, version_policy);
	if (err)
		return err;
	if (!tb[VSS_A_VERSION] || !tb[VSS_A_PROTOCOL])
		return -EPROTO;
	nla_strlcpy(h->module_version, tb[VSS_A_VERSION],
		    sizeof(h->module_version));
	h->module_protocol = nla_get_u32(tb[VSS_A_PROTOCOL]);
	*seen = true;
	return 0;
}

static int read_module_version(struct vss_handle *h)
{
	struct vss_request req;
	bool seen = false;
	int err;

	err = vss_request_init(&req, h, h->family_id, VSS_CMD_GET_VERSION,
			       VSS_GENL_VERSION, false);
	if (err)
		return err;
	req.on_reply = parse_version;
	req.arg = &seen;
	err = vss_transact(h, &req);
	vss_request_fini(&req);
	if (!err && !seen)
		return vss_error_set(h, -EPROTO, NULL,
				     "the module did not report its version");
	return err;
}

/*
 * Takes @fd over, closing it on failure. Split from vss_open() so that the
 * unit tests can run a handle over a socketpair to a simulated kernel.
 */
int vss_open_fd(int fd, struct vss_handle **out)
{
	struct vss_handle *h;
	int err;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->fd = fd;
	h->event_fd = -1;
	h->rxbuf_size = VSS_RXBUF_INITIAL;
	h->rxbuf = malloc(h->rxbuf_size);
	if (!h->rxbuf) {
		vss_close(h);
		return -ENOMEM;
	}
	err = vss_resolve_family(h);
	if (!err)
		err = read_module_version(h);
	if (err) {
		vss_close(h);
		return err;
	}
	vss_error_clear(h);
	*out = h;
	return 0;
}

int vss_require_protocol(struct vss_handle *h)
{
	vss_error_clear(h);
	if (h->module_protocol == VSS_PROTOCOL_VERSION)
		return 0;
	return vss_error_set(h, -LIBVSS_EPROTOCOL, NULL,
			     "the vss module speaks protocol %u, libvss %s speaks protocol %u",
			     h->module_protocol, vss_library_version(),
			     VSS_PROTOCOL_VERSION);
}

/* For mutating calls: the same order of checks as the module's. */
int vss_require_admin(struct vss_handle *h)
{
	int err = vss_require_protocol(h);

	if (!err)
		err = vss_check_privilege();
	if (err == -EPERM)
		return vss_error_set(h, err, NULL, "CAP_SYS_ADMIN is required");
	if (err)
		return vss_error_set(h, err, NULL, NULL);
	return 0;
}

VSS_EXPORT void vss_close(struct vss_handle *h)
{
	if (!h)
		return;
	if (h->fd >= 0)
		close(h->fd);
	if (h->event_fd >= 0)
		close(h->event_fd);
	free(h->events.items);
	free(h->rxbuf);
	free(h);
}
