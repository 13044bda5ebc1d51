// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * One request, its replies and its acknowledgement.
 *
 * libnl builds and parses the messages, but the socket I/O is ours: libnl
 * 3.x folds kernel errnos into its own NLE_* codes (ENOTBLK, EXDEV and
 * ETIMEDOUT all become NLE_FAILURE) and does not parse extended acks, and
 * both are what a caller of this library needs to say what went wrong.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/genetlink.h>

#include <netlink/genl/genl.h>

#include "internal.h"

/*
 * Room for the largest request: 64 device nests and a storage path of
 * VSS_PATH_MAX bytes fit with plenty to spare.
 */
#define VSS_REQUEST_BUFSIZE	(4 * VSS_PATH_MAX)

int vss_request_init(struct vss_request *req, struct vss_handle *h,
		     uint16_t type, uint8_t cmd, uint8_t version, bool dump)
{
	int flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : NLM_F_ACK);

	(void)h;
	memset(req, 0, sizeof(*req));
	req->dump = dump;
	req->msg = nlmsg_alloc_size(VSS_REQUEST_BUFSIZE);
	if (!req->msg)
		return -ENOMEM;
	/*
	 * Dumps are never acknowledged by the kernel, even when asked to:
	 * NLMSG_DONE ends them, carrying the error if there is one.
	 */
	if (!genlmsg_put(req->msg, 0, 0, type, 0, flags, cmd, version)) {
		nlmsg_free(req->msg);
		req->msg = NULL;
		return -ENOMEM;
	}
	return 0;
}

void vss_request_fini(struct vss_request *req)
{
	nlmsg_free(req->msg);
	req->msg = NULL;
}

/* To be called once @attr is complete (after nla_nest_end for a nest). */
int vss_request_add_span(struct vss_request *req, const struct nlattr *attr,
			 const char *object)
{
	const unsigned char *base = (const unsigned char *)nlmsg_hdr(req->msg);
	struct vss_span *span;

	if (req->span_count == VSS_REQUEST_MAX_SPANS)
		return -ENOSPC;
	span = &req->spans[req->span_count++];
	span->start = (uint32_t)((const unsigned char *)attr - base);
	span->end = span->start + NLA_ALIGN(attr->nla_len);
	span->object = object;
	return 0;
}

/*
 * Receives one datagram into the handle's buffer, growing it first if the
 * datagram is larger, so that nothing is ever truncated.
 */
ssize_t vss_recv_datagram(struct vss_handle *h, int fd, int flags,
			  bool retry_on_signal)
{
	for (;;) {
		ssize_t n = recv(fd, h->rxbuf, h->rxbuf_size,
				 flags | MSG_PEEK | MSG_TRUNC);

		if (n < 0) {
			if (errno == EINTR && retry_on_signal)
				continue;
			return -errno;
		}
		if ((size_t)n > h->rxbuf_size) {
			unsigned char *bigger = realloc(h->rxbuf, (size_t)n);

			if (!bigger)
				return -ENOMEM;
			h->rxbuf = bigger;
			h->rxbuf_size = (size_t)n;
			continue;
		}
		n = recv(fd, h->rxbuf, h->rxbuf_size, flags);
		if (n < 0) {
			if (errno == EINTR && retry_on_signal)
				continue;
			return -errno;
		}
		return n;
	}
}

static void parse_ack_tlvs(const unsigned char *tlvs, size_t len,
			   struct vss_ack *out)
{
	const struct nlattr *attr = (const struct nlattr *)tlvs;
	int rem = (int)len;

	for (; nla_ok(attr, rem); attr = nla_next(attr, &rem)) {
		const char *data = nla_data(attr);
		int payload = nla_len(attr);

		switch (nla_type(attr)) {
		case NLMSGERR_ATTR_MSG:
			if (payload > 0) {
				out->message = data;
				out->message_len = strnlen(data, (size_t)payload);
			}
			break;
		case NLMSGERR_ATTR_OFFS:
			if (payload >= 4) {
				memcpy(&out->offset, data, 4);
				out->has_offset = true;
			}
			break;
		case NLMSGERR_ATTR_MISS_TYPE:
			if (payload >= 4) {
				memcpy(&out->missing_type, data, 4);
				out->has_missing_type = true;
			}
			break;
		case NLMSGERR_ATTR_MISS_NEST:
			if (payload >= 4) {
				memcpy(&out->missing_nest, data, 4);
				out->has_missing_nest = true;
			}
			break;
		default:
			break;
		}
	}
}

/*
 * Reads an NLMSG_ERROR or NLMSG_DONE message. The TLVs of an extended ack
 * follow struct nlmsgerr and, unless the kernel capped it (NLM_F_CAPPED),
 * the echoed request; after NLMSG_DONE they follow the int error.
 */
int vss_parse_ack(const struct nlmsghdr *nlh, struct vss_ack *out)
{
	const unsigned char *payload = NLMSG_DATA(nlh);
	size_t payload_len, tlv_offset;

	memset(out, 0, sizeof(*out));
	if (nlh->nlmsg_len < NLMSG_HDRLEN)
		return -EPROTO;
	payload_len = nlh->nlmsg_len - NLMSG_HDRLEN;

	if (nlh->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr err;

		if (payload_len < sizeof(err))
			return -EPROTO;
		memcpy(&err, payload, sizeof(err));
		out->error = err.error > 0 ? -err.error : err.error;
		tlv_offset = sizeof(err);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED) &&
		    err.msg.nlmsg_len > NLMSG_HDRLEN)
			tlv_offset += err.msg.nlmsg_len - NLMSG_HDRLEN;
	} else if (nlh->nlmsg_type == NLMSG_DONE) {
		int error = 0;

		/* Old kernels may end a dump with an empty NLMSG_DONE. */
		if (payload_len >= sizeof(error))
			memcpy(&error, payload, sizeof(error));
		out->error = error > 0 ? -error : error;
		tlv_offset = sizeof(error);
	} else {
		return -EPROTO;
	}

	tlv_offset = NLMSG_ALIGN(tlv_offset);
	if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) && tlv_offset < payload_len)
		parse_ack_tlvs(payload + tlv_offset, payload_len - tlv_offset, out);
	return 0;
}

/* The innermost span holding @offset: a device nest rather than its list. */
static const struct vss_span *span_at(const struct vss_request *req,
				      uint32_t offset)
{
	const struct vss_span *best = NULL;
	size_t i;

	for (i = 0; i < req->span_count; i++) {
		const struct vss_span *s = &req->spans[i];

		if (offset < s->start || offset >= s->end)
			continue;
		if (!best || s->end - s->start < best->end - best->start)
			best = s;
	}
	return best;
}

static int attr_type_at(const struct vss_request *req, uint32_t offset)
{
	const struct nlmsghdr *hdr = nlmsg_hdr(req->msg);
	const struct nlattr *attr;

	if (offset < NLMSG_HDRLEN + GENL_HDRLEN ||
	    (uint64_t)offset + NLA_HDRLEN > hdr->nlmsg_len)
		return 0;
	attr = (const struct nlattr *)((const unsigned char *)hdr + offset);
	return nla_type(attr);
}

void vss_error_from_ack(struct vss_handle *h, const struct vss_request *req,
			const struct vss_ack *ack)
{
	const struct vss_span *span = NULL;
	size_t len;

	vss_error_set(h, ack->error, NULL, NULL);
	if (ack->message && ack->message_len) {
		len = ack->message_len;
		if (len >= sizeof(h->err.message))
			len = sizeof(h->err.message) - 1;
		memcpy(h->err.message, ack->message, len);
		h->err.message[len] = '\0';
	}
	if (ack->has_offset) {
		span = span_at(req, ack->offset);
		h->err.attr = attr_type_at(req, ack->offset);
	} else if (ack->has_missing_nest) {
		span = span_at(req, ack->missing_nest);
	}
	if (!h->err.attr && ack->has_missing_type)
		h->err.attr = (int)ack->missing_type;
	if (span && span->object)
		snprintf(h->err.object, sizeof(h->err.object), "%s", span->object);
}

int vss_genl_attrs(const struct nlmsghdr *nlh, struct nlattr **tb, int maxtype,
		   const struct nla_policy *policy)
{
	struct nlattr *head;
	int len;

	if (nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
		return -EPROTO;
	head = (struct nlattr *)((unsigned char *)NLMSG_DATA(nlh) + GENL_HDRLEN);
	len = (int)(nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN);
	if (nla_parse(tb, maxtype, head, len, policy) < 0)
		return -EPROTO;
	return 0;
}

static int send_request(struct vss_handle *h, const struct nlmsghdr *hdr)
{
	ssize_t n;

	do
		n = send(h->fd, hdr, hdr->nlmsg_len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return vss_error_set(h, -errno, NULL,
				     "cannot send a request to the kernel");
	if ((size_t)n != hdr->nlmsg_len)
		return vss_error_set(h, -EIO, NULL, "request sent only in part");
	return 0;
}

/*
 * Sends @req and reads until its acknowledgement (or NLMSG_DONE for a
 * dump), handing each reply to req->on_reply. Stale messages of earlier
 * requests are told apart by sequence number and skipped. Even when a
 * reply cannot be parsed, reading goes on to the end so that the next
 * request starts on a clean socket.
 *
 * Returns 0, the kernel's negative errno (details in h->err), -EAGAIN if
 * a dump was interrupted by a change and should be retried, or another
 * negative errno.
 */
int vss_transact(struct vss_handle *h, struct vss_request *req)
{
	struct nlmsghdr *hdr = nlmsg_hdr(req->msg);
	uint16_t reply_type = hdr->nlmsg_type;
	int reply_err = 0, kernel_err = 0;
	bool done = false, interrupted = false;
	int err;

	vss_error_clear(h);
	if (++h->seq == 0)
		h->seq = 1;
	hdr->nlmsg_seq = h->seq;
	hdr->nlmsg_pid = 0;
	err = send_request(h, hdr);
	if (err)
		return err;

	while (!done) {
		struct nlmsghdr *nlh;
		ssize_t received = vss_recv_datagram(h, h->fd, 0, true);
		int len;

		if (received < 0)
			return vss_error_set(h, (int)received, NULL,
					     "cannot receive the kernel's answer");
		if (received == 0)
			return vss_error_set(h, -ECONNRESET, NULL,
					     "the kernel closed the connection");
		len = (int)received;
		for (nlh = (struct nlmsghdr *)h->rxbuf; !done && NLMSG_OK(nlh, len);
		     nlh = NLMSG_NEXT(nlh, len)) {
			struct vss_ack ack;

			if (nlh->nlmsg_seq != h->seq)
				continue;
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				interrupted = true;
			switch (nlh->nlmsg_type) {
			case NLMSG_NOOP:
			case NLMSG_OVERRUN:
				continue;
			case NLMSG_ERROR:
			case NLMSG_DONE:
				done = true;
				if (vss_parse_ack(nlh, &ack) < 0) {
					if (!reply_err)
						reply_err = -EPROTO;
					break;
				}
				if (ack.error) {
					kernel_err = ack.error;
					vss_error_from_ack(h, req, &ack);
				}
				break;
			default:
				if (nlh->nlmsg_type != reply_type || reply_err ||
				    !req->on_reply)
					continue;
				reply_err = req->on_reply(h, nlh, req->arg);
				break;
			}
		}
	}

	if (kernel_err)
		return kernel_err;
	if (reply_err) {
		if (h->err.code != reply_err)
			vss_error_set(h, reply_err, NULL,
				      "malformed reply from the kernel");
		return reply_err;
	}
	if (interrupted)
		return -EAGAIN;
	return 0;
}
