/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Changed-block tracking over the raw netlink client: track, untrack,
 * describe, query (streamed), mark, save and restore, independent of
 * libvss so that the kernel's side is checked on its own.
 */
#ifndef VSS_SELFTEST_CBT_H
#define VSS_SELFTEST_CBT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "vss_nl.h"

struct cbt_info {
	uint8_t generation[VSS_ID_LEN];
	uint64_t seq, oldest, size, map_bytes, started_ns;
	uint32_t block_size;
	char name[32];
};

/* A point: a generation and a sequence number. */
struct cbt_point {
	uint8_t generation[VSS_ID_LEN];
	uint64_t seq;
};

static inline void cbt_info_parse(const struct nlattr *nest,
				  struct cbt_info *out)
{
	struct vss_attrs c, d;

	memset(out, 0, sizeof(*out));
	if (!nest)
		return;
	vss_parse_nested(nest, &c);
	if (c.a[VSS_A_CBT_GENERATION])
		memcpy(out->generation, NLA_DATA(c.a[VSS_A_CBT_GENERATION]),
		       VSS_ID_LEN);
	out->seq = vss_get_u64(c.a[VSS_A_CBT_SEQ]);
	out->oldest = vss_get_u64(c.a[VSS_A_CBT_OLDEST_SEQ]);
	out->size = vss_get_u64(c.a[VSS_A_CBT_SIZE]);
	out->map_bytes = vss_get_u64(c.a[VSS_A_CBT_MAP_BYTES]);
	out->started_ns = vss_get_u64(c.a[VSS_A_CBT_STARTED_NS]);
	out->block_size = vss_get_u32(c.a[VSS_A_CBT_BLOCK_SIZE]);
	if (c.a[VSS_A_DEVICE]) {
		vss_parse_nested(c.a[VSS_A_DEVICE], &d);
		if (d.a[VSS_A_DEV_NAME])
			snprintf(out->name, sizeof(out->name), "%s",
				 (const char *)NLA_DATA(d.a[VSS_A_DEV_NAME]));
	}
}

/* A request on one device: TRACK, UNTRACK, GET_CBT. */
static inline int cbt_simple(struct vss_nl *nl, uint8_t cmd, dev_t dev,
			     struct cbt_info *out)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg *m = calloc(1, sizeof(*m));
	struct vss_attrs top;
	size_t len = 0;
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, cmd, 0);
	vss_msg_put_dev(m, VSS_A_DEVICE, dev);
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (!ret && out) {
		vss_parse(reply, len, &top);
		cbt_info_parse(top.a[VSS_A_CBT], out);
	}
	return ret;
}

static inline int cbt_track(struct vss_nl *nl, dev_t dev, struct cbt_info *out)
{
	return cbt_simple(nl, VSS_CMD_TRACK, dev, out);
}

static inline int cbt_untrack(struct vss_nl *nl, dev_t dev)
{
	return cbt_simple(nl, VSS_CMD_UNTRACK, dev, NULL);
}

static inline int cbt_get(struct vss_nl *nl, dev_t dev, struct cbt_info *out)
{
	return cbt_simple(nl, VSS_CMD_GET_CBT, dev, out);
}

static inline int cbt_mark(struct vss_nl *nl, dev_t dev, uint64_t offset,
			   uint64_t length)
{
	struct vss_msg *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_CBT_MARK_DIRTY, 0);
	vss_msg_put_dev(m, VSS_A_DEVICE, dev);
	vss_msg_put_u64(m, VSS_A_CBT_OFFSET, offset);
	vss_msg_put_u64(m, VSS_A_CBT_LENGTH, length);
	ret = vss_nl_call(nl, m, NULL, NULL);
	free(m);
	return ret;
}

/*
 * Sends a dump request and hands each message of the reply to @fn, as it
 * arrives. Return: 0, the dump's negative errno (its extack message in
 * nl->errmsg), or @fn's non-zero return.
 */
static inline int cbt_stream(struct vss_nl *nl, struct vss_msg *m,
			     int (*fn)(const struct nlmsghdr *nlh, void *arg),
			     void *arg)
{
	static char buf[VSS_NL_BUF * 4];
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int stop = 0;

	nl->errmsg[0] = 0;
	if (sendto(nl->fd, m->buf, m->nlh.nlmsg_len, 0, (struct sockaddr *)&sa,
		   sizeof(sa)) < 0)
		return -errno;
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
			if (nlh->nlmsg_seq != m->nlh.nlmsg_seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR ||
			    nlh->nlmsg_type == NLMSG_DONE) {
				int err = *(int *)NLMSG_DATA(nlh);
				size_t off = NLMSG_HDRLEN + sizeof(int);

				/* An error carries the request, unless capped. */
				if (nlh->nlmsg_type == NLMSG_ERROR) {
					const struct nlmsgerr *e = NLMSG_DATA(nlh);

					off = NLMSG_HDRLEN + sizeof(*e);
					if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
						off += NLMSG_ALIGN(e->msg.nlmsg_len) -
						       NLMSG_HDRLEN;
				}

				if (err && (nlh->nlmsg_flags & NLM_F_ACK_TLVS) &&
				    off < nlh->nlmsg_len) {
					const struct nlattr *a = (const void *)((const char *)nlh + off);
					int left = nlh->nlmsg_len - off;

					for (; left >= (int)sizeof(*a) &&
					       a->nla_len >= sizeof(*a) &&
					       a->nla_len <= left;
					     left -= NLA_ALIGN(a->nla_len),
					     a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len)))
						if ((a->nla_type & NLA_TYPE_MASK) ==
						    NLMSGERR_ATTR_MSG)
							snprintf(nl->errmsg,
								 sizeof(nl->errmsg),
								 "%s", (const char *)NLA_DATA(a));
				}
				return err ?: stop;
			}
			if (!stop)
				stop = fn(nlh, arg);
		}
	}
}

/* Called with each extent of a changes query, in bytes. */
typedef int (*cbt_extent_fn)(uint64_t offset, uint64_t length, void *arg);

struct cbt_changes_ctx {
	cbt_extent_fn fn;
	void *arg;
	uint32_t block_size;
	uint64_t messages;
	uint64_t extents;
	uint64_t last_end;		/* to check order */
	bool disorder;
};

static inline int cbt_changes_msg(const struct nlmsghdr *nlh, void *arg)
{
	struct cbt_changes_ctx *ctx = arg;
	const struct vss_cbt_extent *e;
	struct vss_attrs top;
	size_t i, n;
	int ret;

	vss_parse((const char *)nlh, nlh->nlmsg_len, &top);
	ctx->messages++;
	ctx->block_size = vss_get_u32(top.a[VSS_A_CBT_BLOCK_SIZE]);
	if (!top.a[VSS_A_CBT_EXTENTS])
		return 0;
	e = NLA_DATA(top.a[VSS_A_CBT_EXTENTS]);
	n = (top.a[VSS_A_CBT_EXTENTS]->nla_len - NLA_HDRLEN) / sizeof(*e);
	for (i = 0; i < n; i++) {
		if (e[i].offset < ctx->last_end || !e[i].length)
			ctx->disorder = true;
		ctx->last_end = e[i].offset + e[i].length;
		ctx->extents++;
		ret = ctx->fn ? ctx->fn(e[i].offset, e[i].length, ctx->arg) : 0;
		if (ret)
			return ret;
	}
	return 0;
}

/* Streams the changes from @from to @to (NULL: now) of @dev. */
static inline int cbt_changes(struct vss_nl *nl, dev_t dev,
			      const struct cbt_point *from,
			      const struct cbt_point *to,
			      struct cbt_changes_ctx *ctx)
{
	struct vss_msg *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_CBT_CHANGES, NLM_F_DUMP);
	vss_msg_put_dev(m, VSS_A_DEVICE, dev);
	vss_msg_put(m, VSS_A_CBT_GENERATION, from->generation, VSS_ID_LEN);
	vss_msg_put_u64(m, VSS_A_CBT_FROM, from->seq);
	if (to)
		vss_msg_put_u64(m, VSS_A_CBT_TO, to->seq);
	ret = cbt_stream(nl, m, cbt_changes_msg, ctx);
	free(m);
	return ret;
}

/* A saved map, kept in memory: the state nest and each interval's extents. */
struct cbt_saved {
	char state[1024];		/* the VSS_A_CBT_STATE attribute */
	size_t state_len;
	size_t nr;
	struct {
		uint64_t seq;
		size_t bytes;
		void *extents;
	} iv[2048];
};

static inline int cbt_save_msg(const struct nlmsghdr *nlh, void *arg)
{
	struct cbt_saved *s = arg;
	const struct nlattr *a;
	struct vss_attrs top;

	vss_parse((const char *)nlh, nlh->nlmsg_len, &top);
	a = top.a[VSS_A_CBT_STATE];
	if (a) {
		if (a->nla_len > sizeof(s->state))
			return -E2BIG;
		memcpy(s->state, a, a->nla_len);
		s->state_len = a->nla_len;
		return 0;
	}
	if (!top.a[VSS_A_CBT_SEQ] || s->nr == 2048)
		return -EPROTO;
	s->iv[s->nr].seq = vss_get_u64(top.a[VSS_A_CBT_SEQ]);
	a = top.a[VSS_A_CBT_EXTENTS];
	s->iv[s->nr].bytes = a ? a->nla_len - NLA_HDRLEN : 0;
	s->iv[s->nr].extents = malloc(s->iv[s->nr].bytes + 1);
	if (!s->iv[s->nr].extents)
		return -ENOMEM;
	if (a)
		memcpy(s->iv[s->nr].extents, NLA_DATA(a), s->iv[s->nr].bytes);
	s->nr++;
	return 0;
}

static inline void cbt_saved_release(struct cbt_saved *s)
{
	size_t i;

	for (i = 0; i < s->nr; i++)
		free(s->iv[i].extents);
	s->nr = 0;
	s->state_len = 0;
}

/* Saves (and so stops tracking) @dev's map into @s. */
static inline int cbt_save(struct vss_nl *nl, dev_t dev, struct cbt_saved *s)
{
	struct vss_msg *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	memset(s, 0, offsetof(struct cbt_saved, iv));
	vss_msg_init(nl, m, VSS_CMD_CBT_SAVE, NLM_F_DUMP);
	vss_msg_put_dev(m, VSS_A_DEVICE, dev);
	ret = cbt_stream(nl, m, cbt_save_msg, s);
	free(m);
	if (!ret && !s->state_len)
		ret = -EPROTO;
	return ret;
}

/* The nested attribute @type of the saved state, for tests to alter. */
static inline struct nlattr *cbt_saved_attr(struct cbt_saved *s, int type)
{
	struct nlattr *a = (struct nlattr *)(s->state + NLA_HDRLEN);
	int left = s->state_len - NLA_HDRLEN;

	for (; left >= (int)NLA_HDRLEN && a->nla_len <= left;
	     left -= NLA_ALIGN(a->nla_len),
	     a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len)))
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
	return NULL;
}

struct cbt_restored {
	uint32_t verdict;
	char reason[256];
	struct cbt_info info;
};

static inline int cbt_restore_step(struct vss_nl *nl, dev_t dev, uint32_t flags,
				   struct cbt_saved *s, size_t iv,
				   struct cbt_restored *out)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg *m = calloc(1, sizeof(*m));
	struct vss_attrs top;
	size_t len = 0;
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_CBT_RESTORE, 0);
	vss_msg_put_dev(m, VSS_A_DEVICE, dev);
	if (flags)
		vss_msg_put_u32(m, VSS_A_FLAGS, flags);
	if (flags & VSS_CBT_RESTORE_BEGIN)
		vss_msg_put(m, VSS_A_CBT_STATE | NLA_F_NESTED,
			    s->state + NLA_HDRLEN,
			    s->state_len - NLA_HDRLEN);
	if (!flags) {
		vss_msg_put_u64(m, VSS_A_CBT_SEQ, s->iv[iv].seq);
		vss_msg_put(m, VSS_A_CBT_EXTENTS, s->iv[iv].extents,
			    s->iv[iv].bytes);
	}
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (!ret && out && flags) {
		vss_parse(reply, len, &top);
		out->verdict = vss_get_u32(top.a[VSS_A_CBT_VERDICT]);
		out->reason[0] = 0;
		if (top.a[VSS_A_REASON])
			snprintf(out->reason, sizeof(out->reason), "%s",
				 (const char *)NLA_DATA(top.a[VSS_A_REASON]));
		cbt_info_parse(top.a[VSS_A_CBT], &out->info);
	}
	return ret;
}

/* The whole restore: begin, every interval, commit. */
static inline int cbt_restore(struct vss_nl *nl, dev_t dev, struct cbt_saved *s,
			      struct cbt_restored *out)
{
	size_t i;
	int ret;

	ret = cbt_restore_step(nl, dev, VSS_CBT_RESTORE_BEGIN, s, 0, out);
	for (i = 0; !ret && i < s->nr; i++)
		if (s->iv[i].bytes)
			ret = cbt_restore_step(nl, dev, 0, s, i, NULL);
	if (!ret)
		ret = cbt_restore_step(nl, dev, VSS_CBT_RESTORE_COMMIT, s, 0,
				       out);
	return ret;
}

/* The tracking point a snapshot was taken at. */
static inline int cbt_snap_point(struct vss_nl *nl, const uint8_t *snap_id,
				 struct cbt_point *out)
{
	static char reply[VSS_NL_BUF * 4];
	struct vss_msg *m = calloc(1, sizeof(*m));
	struct vss_attrs top, snap;
	size_t len = 0;
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, VSS_CMD_GET_SNAPSHOT, 0);
	vss_msg_put(m, VSS_A_SNAP_ID, snap_id, VSS_ID_LEN);
	ret = vss_nl_call(nl, m, reply, &len);
	free(m);
	if (ret)
		return ret;
	vss_parse(reply, len, &top);
	vss_parse_nested(top.a[VSS_A_SNAPSHOT], &snap);
	if (!snap.a[VSS_A_CBT_GENERATION] || !snap.a[VSS_A_CBT_SEQ])
		return -EPROTO;
	memcpy(out->generation, NLA_DATA(snap.a[VSS_A_CBT_GENERATION]),
	       VSS_ID_LEN);
	out->seq = vss_get_u64(snap.a[VSS_A_CBT_SEQ]);
	return 0;
}

#endif /* VSS_SELFTEST_CBT_H */
