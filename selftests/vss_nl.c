// SPDX-License-Identifier: GPL-2.0
/* Raw generic netlink client for the selftests; see vss_nl.h. */
#include "vss_nl.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define GENL_HDRLEN_ALIGNED NLMSG_ALIGN(sizeof(struct genlmsghdr))

static struct nlattr *msg_tail(struct vss_msg *m)
{
	return (struct nlattr *)(m->buf + NLMSG_ALIGN(m->nlh.nlmsg_len));
}

void vss_msg_init(struct vss_nl *nl, struct vss_msg *m, uint8_t cmd,
		  uint16_t flags)
{
	struct genlmsghdr *g;

	memset(m->buf, 0, NLMSG_HDRLEN + GENL_HDRLEN_ALIGNED);
	m->nlh.nlmsg_len = NLMSG_HDRLEN + GENL_HDRLEN_ALIGNED;
	m->nlh.nlmsg_type = nl->family;
	m->nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	m->nlh.nlmsg_seq = ++nl->seq;
	g = (struct genlmsghdr *)(m->buf + NLMSG_HDRLEN);
	g->cmd = cmd;
	g->version = VSS_GENL_VERSION;
	m->depth = 0;
}

void vss_msg_put(struct vss_msg *m, uint16_t type, const void *data,
		 size_t len)
{
	struct nlattr *a = msg_tail(m);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy(NLA_DATA(a), data, len);
	memset((char *)NLA_DATA(a) + len, 0, NLA_ALIGN(len) - len);
	m->nlh.nlmsg_len = NLMSG_ALIGN(m->nlh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

void vss_msg_put_u32(struct vss_msg *m, uint16_t type, uint32_t v)
{
	vss_msg_put(m, type, &v, sizeof(v));
}

void vss_msg_put_u64(struct vss_msg *m, uint16_t type, uint64_t v)
{
	vss_msg_put(m, type, &v, sizeof(v));
}

void vss_msg_put_str(struct vss_msg *m, uint16_t type, const char *s)
{
	vss_msg_put(m, type, s, strlen(s) + 1);
}

void vss_msg_nest_start(struct vss_msg *m, uint16_t type)
{
	struct nlattr *a = msg_tail(m);

	a->nla_type = type | NLA_F_NESTED;
	a->nla_len = NLA_HDRLEN;
	m->nlh.nlmsg_len = NLMSG_ALIGN(m->nlh.nlmsg_len) + NLA_HDRLEN;
	m->nest[m->depth++] = a;
}

void vss_msg_nest_end(struct vss_msg *m)
{
	struct nlattr *a = m->nest[--m->depth];

	a->nla_len = m->buf + m->nlh.nlmsg_len - (char *)a;
}

void vss_msg_put_dev(struct vss_msg *m, uint16_t type, dev_t dev)
{
	vss_msg_nest_start(m, type);
	vss_msg_put_u32(m, VSS_A_DEV_MAJOR, major(dev));
	vss_msg_put_u32(m, VSS_A_DEV_MINOR, minor(dev));
	vss_msg_nest_end(m);
}

uint32_t vss_get_u32(const struct nlattr *a)
{
	uint32_t v;

	memcpy(&v, NLA_DATA(a), sizeof(v));
	return v;
}

uint64_t vss_get_u64(const struct nlattr *a)
{
	uint64_t v;

	memcpy(&v, NLA_DATA(a), sizeof(v));
	return v;
}

static void parse_attrs(const char *p, int len, const struct nlattr **tb,
			int max)
{
	const struct nlattr *a;

	memset(tb, 0, sizeof(*tb) * (max + 1));
	for (a = (const struct nlattr *)p; len >= NLA_HDRLEN &&
	     a->nla_len >= NLA_HDRLEN && a->nla_len <= len;
	     len -= NLA_ALIGN(a->nla_len),
	     a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len))) {
		int type = a->nla_type & NLA_TYPE_MASK;

		if (type <= max && !tb[type])
			tb[type] = a;
	}
}

void vss_parse(const char *reply, size_t len, struct vss_attrs *out)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)reply;
	size_t hdr = NLMSG_HDRLEN + GENL_HDRLEN_ALIGNED;

	memset(out, 0, sizeof(*out));
	if (len < hdr || nlh->nlmsg_len < hdr)
		return;
	parse_attrs(reply + hdr, nlh->nlmsg_len - hdr, out->a, VSS_A_MAX);
}

void vss_parse_nested(const struct nlattr *nest, struct vss_attrs *out)
{
	memset(out, 0, sizeof(*out));
	if (nest)
		parse_attrs(NLA_DATA(nest), nest->nla_len - NLA_HDRLEN, out->a,
			    VSS_A_MAX);
}

static int nl_send(struct vss_nl *nl, const void *msg, size_t len)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	if (sendto(nl->fd, msg, len, 0, (struct sockaddr *)&sa,
		   sizeof(sa)) < 0)
		return -errno;
	return 0;
}

static void nl_record_extack(struct vss_nl *nl, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = NLMSG_DATA(nlh);
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = NLMSG_HDRLEN + sizeof(*e);

	nl->errmsg[0] = 0;
	nl->err_offset = 0;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
	if (off >= nlh->nlmsg_len)
		return;
	parse_attrs((const char *)nlh + off, nlh->nlmsg_len - off, tb,
		    NLMSGERR_ATTR_MAX);
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(nl->errmsg, sizeof(nl->errmsg), "%s",
			 (const char *)NLA_DATA(tb[NLMSGERR_ATTR_MSG]));
	if (tb[NLMSGERR_ATTR_OFFS])
		nl->err_offset = vss_get_u32(tb[NLMSGERR_ATTR_OFFS]);
}

/*
 * Receives until the ack of @seq. Data messages are appended to @reply
 * (if given) so that dumps come back whole.
 */
static int nl_recv(struct vss_nl *nl, uint32_t seq, char *reply,
		   size_t *reply_len)
{
	static char buf[VSS_NL_BUF];
	size_t used = 0;

	for (;;) {
		ssize_t n = recv(nl->fd, buf, sizeof(buf), 0);
		struct nlmsghdr *nlh;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, n);
		     nlh = NLMSG_NEXT(nlh, n)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				int err = ((struct nlmsgerr *)NLMSG_DATA(nlh))->error;

				nl_record_extack(nl, nlh);
				if (reply_len)
					*reply_len = used;
				return err;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				if (reply_len)
					*reply_len = used;
				return 0;
			}
			if (reply && used + nlh->nlmsg_len <= VSS_NL_BUF * 4) {
				memcpy(reply + used, nlh, nlh->nlmsg_len);
				used += NLMSG_ALIGN(nlh->nlmsg_len);
			}
		}
	}
}

int vss_nl_call(struct vss_nl *nl, struct vss_msg *m, char *reply,
		size_t *reply_len)
{
	int ret = nl_send(nl, m->buf, m->nlh.nlmsg_len);

	if (ret)
		return ret;
	return nl_recv(nl, m->nlh.nlmsg_seq, reply, reply_len);
}

int vss_nl_call_raw(struct vss_nl *nl, void *msg, size_t len)
{
	struct nlmsghdr *nlh = msg;
	int ret;

	nlh->nlmsg_seq = ++nl->seq;
	ret = nl_send(nl, msg, len);
	if (ret)
		return ret;
	return nl_recv(nl, nlh->nlmsg_seq, NULL, NULL);
}

static int resolve_family(struct vss_nl *nl)
{
	static char reply[VSS_NL_BUF * 4];
	const struct nlattr *tb[CTRL_ATTR_MAX + 1];
	struct vss_msg *m = calloc(1, sizeof(*m));
	struct genlmsghdr *g;
	const struct nlattr *grp;
	size_t len = 0;
	int ret, rem;

	if (!m)
		return -ENOMEM;
	nl->family = GENL_ID_CTRL;
	vss_msg_init(nl, m, CTRL_CMD_GETFAMILY, 0);
	g = (struct genlmsghdr *)(m->buf + NLMSG_HDRLEN);
	g->version = 1;
	vss_msg_put_str(m, CTRL_ATTR_FAMILY_NAME, VSS_GENL_NAME);
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (ret)
		return ret;
	parse_attrs(reply + NLMSG_HDRLEN + GENL_HDRLEN_ALIGNED,
		    ((struct nlmsghdr *)reply)->nlmsg_len - NLMSG_HDRLEN -
		    GENL_HDRLEN_ALIGNED, tb, CTRL_ATTR_MAX);
	if (!tb[CTRL_ATTR_FAMILY_ID])
		return -ENOENT;
	memcpy(&nl->family, NLA_DATA(tb[CTRL_ATTR_FAMILY_ID]), 2);
	if (!tb[CTRL_ATTR_MCAST_GROUPS])
		return 0;
	rem = tb[CTRL_ATTR_MCAST_GROUPS]->nla_len - NLA_HDRLEN;
	for (grp = NLA_DATA(tb[CTRL_ATTR_MCAST_GROUPS]); rem >= NLA_HDRLEN;
	     rem -= NLA_ALIGN(grp->nla_len),
	     grp = (const struct nlattr *)((const char *)grp + NLA_ALIGN(grp->nla_len))) {
		const struct nlattr *g_tb[CTRL_ATTR_MCAST_GRP_MAX + 1];

		parse_attrs(NLA_DATA(grp), grp->nla_len - NLA_HDRLEN, g_tb,
			    CTRL_ATTR_MCAST_GRP_MAX);
		if (g_tb[CTRL_ATTR_MCAST_GRP_NAME] && g_tb[CTRL_ATTR_MCAST_GRP_ID] &&
		    !strcmp(NLA_DATA(g_tb[CTRL_ATTR_MCAST_GRP_NAME]),
			    VSS_MCGRP_EVENTS))
			nl->mcgrp_events = vss_get_u32(g_tb[CTRL_ATTR_MCAST_GRP_ID]);
	}
	return 0;
}

int vss_nl_open(struct vss_nl *nl)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1;

	memset(nl, 0, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0)
		return -errno;
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(nl->fd);
		return err;
	}
	return resolve_family(nl);
}

void vss_nl_close(struct vss_nl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	nl->fd = -1;
}

static void fill_created(const char *reply, size_t len,
			 struct vss_created *out)
{
	struct vss_attrs top, snap, image;
	const struct nlattr *list, *a;
	int rem;

	memset(out, 0, sizeof(*out));
	vss_parse(reply, len, &top);
	if (top.a[VSS_A_SET_ID])
		memcpy(out->set_id, NLA_DATA(top.a[VSS_A_SET_ID]), VSS_ID_LEN);
	if (top.a[VSS_A_HOLD_US])
		out->hold_us = vss_get_u64(top.a[VSS_A_HOLD_US]);
	list = top.a[VSS_A_SNAPSHOTS];
	if (!list)
		return;
	rem = list->nla_len - NLA_HDRLEN;
	for (a = NLA_DATA(list); rem >= NLA_HDRLEN && out->nr < VSS_MAX_SET_DEVICES;
	     rem -= NLA_ALIGN(a->nla_len),
	     a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len))) {
		vss_parse_nested(a, &snap);
		if (snap.a[VSS_A_SNAP_ID])
			memcpy(out->snap_id[out->nr], NLA_DATA(snap.a[VSS_A_SNAP_ID]),
			       VSS_ID_LEN);
		vss_parse_nested(snap.a[VSS_A_IMAGE], &image);
		if (image.a[VSS_A_DEV_NAME])
			snprintf(out->image[out->nr], sizeof(out->image[0]),
				 "/dev/%s", (char *)NLA_DATA(image.a[VSS_A_DEV_NAME]));
		out->nr++;
	}
}

int vss_create(struct vss_nl *nl, const char *const *devs, unsigned int nr,
	       const char *storage, uint64_t limit, uint32_t chunk,
	       uint32_t flags, struct vss_created *out)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg *m = calloc(1, sizeof(*m));
	size_t len = 0;
	unsigned int i;
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_CREATE_SET, 0);
	vss_msg_nest_start(m, VSS_A_DEVICES);
	for (i = 0; i < nr; i++) {
		struct stat st;

		if (stat(devs[i], &st)) {
			free(m);
			return -errno;
		}
		vss_msg_put_dev(m, VSS_A_DEVICE, st.st_rdev);
	}
	vss_msg_nest_end(m);
	vss_msg_put_str(m, VSS_A_STORAGE_PATH, storage);
	if (limit)
		vss_msg_put_u64(m, VSS_A_STORAGE_LIMIT, limit);
	if (chunk)
		vss_msg_put_u32(m, VSS_A_CHUNK_SIZE, chunk);
	if (flags)
		vss_msg_put_u32(m, VSS_A_FLAGS, flags);
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (!ret && out)
		fill_created(reply, len, out);
	return ret;
}

static int delete_by(struct vss_nl *nl, uint16_t attr, const uint8_t *id,
		     bool force)
{
	struct vss_msg *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_DELETE_SNAPSHOT, 0);
	vss_msg_put(m, attr, id, VSS_ID_LEN);
	if (force)
		vss_msg_put_u32(m, VSS_A_FLAGS, VSS_DELETE_FORCE);
	ret = vss_nl_call(nl, m, NULL, NULL);
	free(m);
	return ret;
}

int vss_delete_snap(struct vss_nl *nl, const uint8_t *id, bool force)
{
	return delete_by(nl, VSS_A_SNAP_ID, id, force);
}

int vss_delete_set(struct vss_nl *nl, const uint8_t *id, bool force)
{
	return delete_by(nl, VSS_A_SET_ID, id, force);
}

int vss_snap_state(struct vss_nl *nl, const uint8_t *id, int *err)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg *m = calloc(1, sizeof(*m));
	struct vss_attrs top, snap;
	size_t len = 0;
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_GET_SNAPSHOT, 0);
	vss_msg_put(m, VSS_A_SNAP_ID, id, VSS_ID_LEN);
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (ret)
		return ret;
	vss_parse(reply, len, &top);
	vss_parse_nested(top.a[VSS_A_SNAPSHOT], &snap);
	if (!snap.a[VSS_A_STATE])
		return -EPROTO;
	if (err)
		*err = snap.a[VSS_A_ERRNO] ? (int)vss_get_u32(snap.a[VSS_A_ERRNO]) : 0;
	return vss_get_u32(snap.a[VSS_A_STATE]);
}

int vss_subscribe_events(struct vss_nl *nl)
{
	if (!nl->mcgrp_events)
		return -ENOENT;
	if (setsockopt(nl->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
		       &nl->mcgrp_events, sizeof(nl->mcgrp_events)))
		return -errno;
	return 0;
}

int vss_next_event(struct vss_nl *nl, int timeout_ms, struct vss_attrs *attrs,
		   char *buf)
{
	struct pollfd pfd = { .fd = nl->fd, .events = POLLIN };

	for (;;) {
		struct vss_attrs top;
		ssize_t n;
		int ret = poll(&pfd, 1, timeout_ms);

		if (ret < 0)
			return -errno;
		if (!ret)
			return -ETIMEDOUT;
		n = recv(nl->fd, buf, VSS_NL_BUF, 0);
		if (n < 0)
			return -errno;
		if (((struct nlmsghdr *)buf)->nlmsg_type != nl->family)
			continue;
		vss_parse(buf, n, &top);
		if (!top.a[VSS_A_EVENT])
			continue;
		if (attrs)
			*attrs = top;
		return vss_get_u32(top.a[VSS_A_EVENT]);
	}
}

static void copy_str(char *dst, size_t len, const struct nlattr *a)
{
	size_t n;

	dst[0] = 0;
	if (!a || a->nla_len <= NLA_HDRLEN)
		return;
	n = a->nla_len - NLA_HDRLEN;
	if (n >= len)
		n = len - 1;
	memcpy(dst, NLA_DATA(a), n);
	dst[n] = 0;
}

void vss_snap_info_parse(const struct nlattr *snapshot, struct vss_snap_info *out)
{
	struct vss_attrs s, dev;

	memset(out, 0, sizeof(*out));
	vss_parse_nested(snapshot, &s);
	if (s.a[VSS_A_SNAP_ID])
		memcpy(out->snap_id, NLA_DATA(s.a[VSS_A_SNAP_ID]), VSS_ID_LEN);
	if (s.a[VSS_A_SET_ID])
		memcpy(out->set_id, NLA_DATA(s.a[VSS_A_SET_ID]), VSS_ID_LEN);
	if (s.a[VSS_A_ORIGIN]) {
		vss_parse_nested(s.a[VSS_A_ORIGIN], &dev);
		if (dev.a[VSS_A_DEV_MAJOR])
			out->origin_major = vss_get_u32(dev.a[VSS_A_DEV_MAJOR]);
		if (dev.a[VSS_A_DEV_MINOR])
			out->origin_minor = vss_get_u32(dev.a[VSS_A_DEV_MINOR]);
		copy_str(out->origin_name, sizeof(out->origin_name),
			 dev.a[VSS_A_DEV_NAME]);
	}
	if (s.a[VSS_A_IMAGE]) {
		char name[48];

		vss_parse_nested(s.a[VSS_A_IMAGE], &dev);
		copy_str(name, sizeof(name), dev.a[VSS_A_DEV_NAME]);
		if (name[0])
			snprintf(out->image, sizeof(out->image), "/dev/%s", name);
	}
#define U32(attr, field) if (s.a[attr]) out->field = vss_get_u32(s.a[attr])
#define U64(attr, field) if (s.a[attr]) out->field = vss_get_u64(s.a[attr])
	U32(VSS_A_INDEX, index);
	U32(VSS_A_STATE, state);
	U32(VSS_A_CHUNK_SIZE, chunk_size);
	U32(VSS_A_STORAGE_KIND, storage_kind);
	U32(VSS_A_OPEN_COUNT, open_count);
	U64(VSS_A_CREATED_NS, created_ns);
	U64(VSS_A_STORAGE_USED, storage_used);
	U64(VSS_A_STORAGE_SIZE, storage_size);
	U64(VSS_A_STORAGE_LIMIT, storage_limit);
	U64(VSS_A_HOLD_US, hold_us);
#undef U32
#undef U64
	if (s.a[VSS_A_ERRNO]) {
		out->err = vss_get_u32(s.a[VSS_A_ERRNO]);
		out->has_err = true;
	}
	if (s.a[VSS_A_REASON]) {
		copy_str(out->reason, sizeof(out->reason), s.a[VSS_A_REASON]);
		out->has_reason = true;
	}
	copy_str(out->storage_path, sizeof(out->storage_path),
		 s.a[VSS_A_STORAGE_PATH]);
}

int vss_snap_info(struct vss_nl *nl, const uint8_t *id,
		  struct vss_snap_info *out)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg *m = calloc(1, sizeof(*m));
	struct vss_attrs top;
	size_t len = 0;
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_GET_SNAPSHOT, 0);
	vss_msg_put(m, VSS_A_SNAP_ID, id, VSS_ID_LEN);
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (ret)
		return ret;
	vss_parse(reply, len, &top);
	if (!top.a[VSS_A_SNAPSHOT])
		return -EPROTO;
	vss_snap_info_parse(top.a[VSS_A_SNAPSHOT], out);
	return 0;
}

/* Calls @fn on each snapshot of a full dump. */
static int dump_each(struct vss_nl *nl,
		     void (*fn)(struct vss_nl *nl, const uint8_t *id, void *arg),
		     void *arg)
{
	static char reply[VSS_NL_BUF * 4];
	static uint8_t ids[1024][VSS_ID_LEN];
	struct vss_msg *m = calloc(1, sizeof(*m));
	const struct nlmsghdr *nlh;
	size_t len = 0;
	int n = 0, i, ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_GET_SNAPSHOT, NLM_F_DUMP);
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (ret)
		return ret;
	for (nlh = (const void *)reply; len >= NLMSG_HDRLEN &&
	     NLMSG_OK(nlh, len) && n < 1024; nlh = NLMSG_NEXT(nlh, len)) {
		struct vss_attrs top, snap;

		vss_parse((const char *)nlh, nlh->nlmsg_len, &top);
		vss_parse_nested(top.a[VSS_A_SNAPSHOT], &snap);
		if (snap.a[VSS_A_SNAP_ID])
			memcpy(ids[n], NLA_DATA(snap.a[VSS_A_SNAP_ID]), VSS_ID_LEN);
		else
			memset(ids[n], 0, VSS_ID_LEN);
		n++;
	}
	/* Act only after the dump is complete: @fn may talk to the kernel. */
	for (i = 0; fn && i < n; i++)
		fn(nl, ids[i], arg);
	return n;
}

int vss_count_snapshots(struct vss_nl *nl)
{
	return dump_each(nl, NULL, NULL);
}

static void delete_one(struct vss_nl *nl, const uint8_t *id, void *arg)
{
	vss_delete_snap(nl, id, true);
}

int vss_delete_all(struct vss_nl *nl)
{
	return dump_each(nl, delete_one, NULL);
}

/* Stops tracking every tracked device; returns how many, or negative errno. */
int vss_untrack_all(struct vss_nl *nl)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg *m = calloc(1, sizeof(*m));
	const struct nlmsghdr *nlh;
	dev_t devs[256];
	size_t len = 0;
	int n = 0, i, ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_GET_CBT, NLM_F_DUMP);
	ret = vss_nl_call(nl, m, reply, &len);
	if (ret)
		goto out;
	for (nlh = (const void *)reply; len >= NLMSG_HDRLEN &&
	     NLMSG_OK(nlh, len) && n < 256; nlh = NLMSG_NEXT(nlh, len)) {
		struct vss_attrs top, cbt, dev;

		vss_parse((const char *)nlh, nlh->nlmsg_len, &top);
		vss_parse_nested(top.a[VSS_A_CBT], &cbt);
		vss_parse_nested(cbt.a[VSS_A_DEVICE], &dev);
		if (dev.a[VSS_A_DEV_MAJOR] && dev.a[VSS_A_DEV_MINOR])
			devs[n++] = makedev(vss_get_u32(dev.a[VSS_A_DEV_MAJOR]),
					    vss_get_u32(dev.a[VSS_A_DEV_MINOR]));
	}
	for (i = 0; i < n; i++) {
		vss_msg_init(nl, m, VSS_CMD_UNTRACK, 0);
		vss_msg_put_dev(m, VSS_A_DEVICE, devs[i]);
		vss_nl_call(nl, m, NULL, NULL);
	}
	ret = n;
out:
	free(m);
	return ret;
}

int vss_create_ex(struct vss_nl *nl, const struct vss_create_args *args,
		  struct vss_created *out)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg *m = calloc(1, sizeof(*m));
	size_t len = 0;
	unsigned int i;
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_CREATE_SET, 0);
	vss_msg_nest_start(m, VSS_A_DEVICES);
	for (i = 0; i < args->nr; i++)
		vss_msg_put_dev(m, VSS_A_DEVICE, args->devs[i]);
	vss_msg_nest_end(m);
	if (args->storage)
		vss_msg_put_str(m, VSS_A_STORAGE_PATH, args->storage);
	if (args->has_limit)
		vss_msg_put_u64(m, VSS_A_STORAGE_LIMIT, args->limit);
	if (args->chunk)
		vss_msg_put_u32(m, VSS_A_CHUNK_SIZE, args->chunk);
	if (args->flags)
		vss_msg_put_u32(m, VSS_A_FLAGS, args->flags);
	if (args->label)
		vss_msg_put_str(m, VSS_A_LABEL, args->label);
	if (args->hold_limit_ms)
		vss_msg_put_u32(m, VSS_A_HOLD_LIMIT_MS, args->hold_limit_ms);
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (!ret && out)
		fill_created(reply, len, out);
	return ret;
}

const struct nlattr *vss_event_attr(const struct vss_attrs *ev, int type,
				    bool *top)
{
	struct vss_attrs snap;

	if (top)
		*top = false;
	if (ev->a[type]) {
		if (top)
			*top = true;
		return ev->a[type];
	}
	if (!ev->a[VSS_A_SNAPSHOT])
		return NULL;
	vss_parse_nested(ev->a[VSS_A_SNAPSHOT], &snap);
	return snap.a[type];
}
