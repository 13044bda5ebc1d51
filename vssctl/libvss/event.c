// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Events: the module's multicast messages, decoded and queued.
 *
 * One datagram may carry several events and a caller of vss_event_next()
 * takes one at a time, so decoded events wait in a small queue.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <linux/genetlink.h>

#include "internal.h"

static const struct nla_policy event_policy[VSS_A_MAX + 1] = {
	[VSS_A_EVENT] = { .type = NLA_U32 },
	[VSS_A_SNAP_ID] = { .type = NLA_UNSPEC, .minlen = VSS_ID_LEN,
			    .maxlen = VSS_ID_LEN },
	[VSS_A_SET_ID] = { .type = NLA_UNSPEC, .minlen = VSS_ID_LEN,
			   .maxlen = VSS_ID_LEN },
	[VSS_A_ORIGIN] = { .type = NLA_NESTED },
	[VSS_A_ERRNO] = { .type = NLA_U32 },
	[VSS_A_REASON] = { .type = NLA_STRING },
	[VSS_A_STORAGE_USED] = { .type = NLA_U64 },
	[VSS_A_STORAGE_LIMIT] = { .type = NLA_U64 },
	[VSS_A_CBT] = { .type = NLA_NESTED },
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int vss_parse_event(const struct nlmsghdr *nlh, struct vss_event_info *out)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	const struct genlmsghdr *genl = NLMSG_DATA(nlh);
	int err;

	memset(out, 0, sizeof(*out));
	err = vss_genl_attrs(nlh, tb, VSS_A_MAX, event_policy);
	if (err)
		return err;
	if (genl->cmd != VSS_CMD_EVENT || !tb[VSS_A_EVENT])
		return -EPROTO;
	out->type = nla_get_u32(tb[VSS_A_EVENT]);
	if (tb[VSS_A_SNAP_ID] && !vss_id_get(tb[VSS_A_SNAP_ID], &out->snap_id))
		out->present |= VSS_EVENT_HAS_SNAP_ID;
	if (tb[VSS_A_SET_ID] && !vss_id_get(tb[VSS_A_SET_ID], &out->set_id))
		out->present |= VSS_EVENT_HAS_SET_ID;
	if (tb[VSS_A_ORIGIN]) {
		if (vss_parse_device(tb[VSS_A_ORIGIN], &out->origin))
			return -EPROTO;
		out->present |= VSS_EVENT_HAS_ORIGIN;
	}
	if (tb[VSS_A_ERRNO] || tb[VSS_A_REASON]) {
		out->present |= VSS_EVENT_HAS_ERROR;
		if (tb[VSS_A_ERRNO])
			out->error = (int)nla_get_u32(tb[VSS_A_ERRNO]);
		if (tb[VSS_A_REASON])
			nla_strlcpy(out->reason, tb[VSS_A_REASON], sizeof(out->reason));
	}
	if (tb[VSS_A_STORAGE_USED] || tb[VSS_A_STORAGE_LIMIT]) {
		out->present |= VSS_EVENT_HAS_STORAGE;
		if (tb[VSS_A_STORAGE_USED])
			out->storage_used = nla_get_u64(tb[VSS_A_STORAGE_USED]);
		if (tb[VSS_A_STORAGE_LIMIT])
			out->storage_limit = nla_get_u64(tb[VSS_A_STORAGE_LIMIT]);
	}
	if (tb[VSS_A_CBT]) {
		if (vss_parse_cbt(tb[VSS_A_CBT], &out->cbt))
			return -EPROTO;
		out->present |= VSS_EVENT_HAS_CBT;
	}
	return 0;
}

static int queue_push(struct vss_event_queue *q, const struct vss_event_info *ev)
{
	if (q->head + q->count == q->capacity) {
		if (q->head) {
			memmove(q->items, q->items + q->head,
				q->count * sizeof(*q->items));
			q->head = 0;
		} else {
			size_t capacity = q->capacity ? 2 * q->capacity : 8;
			struct vss_event_info *items;

			items = realloc(q->items, capacity * sizeof(*items));
			if (!items)
				return -ENOMEM;
			q->items = items;
			q->capacity = capacity;
		}
	}
	q->items[q->head + q->count++] = *ev;
	return 0;
}

static bool queue_pop(struct vss_event_queue *q, struct vss_event_info *out)
{
	if (!q->count)
		return false;
	*out = q->items[q->head++];
	if (--q->count == 0)
		q->head = 0;
	return true;
}

/*
 * Reads one datagram without blocking and queues its events. Messages
 * that are not well-formed events of our family are skipped: a newer
 * module may send what this library does not know yet.
 */
static int receive_events(struct vss_handle *h)
{
	struct nlmsghdr *nlh;
	uint64_t now;
	ssize_t received;
	int len, err;

	received = vss_recv_datagram(h, h->event_fd, MSG_DONTWAIT, false);
	if (received == -ENOBUFS)
		return vss_error_set(h, -ENOBUFS, NULL,
				     "events were lost: they came faster than they were read");
	if (received < 0)
		return (int)received;
	if (received == 0)
		return vss_error_set(h, -ECONNRESET, NULL,
				     "the event socket was closed");
	now = realtime_ns();
	len = (int)received;
	for (nlh = (struct nlmsghdr *)h->rxbuf; NLMSG_OK(nlh, len);
	     nlh = NLMSG_NEXT(nlh, len)) {
		struct vss_event_info ev;

		if (nlh->nlmsg_type != h->family_id || vss_parse_event(nlh, &ev))
			continue;
		ev.received_ns = now;
		err = queue_push(&h->events, &ev);
		if (err)
			return vss_error_set(h, err, NULL, NULL);
	}
	return 0;
}

int vss_event_attach_fd(struct vss_handle *h, int fd)
{
	if (h->event_fd >= 0)
		return -EBUSY;
	h->event_fd = fd;
	return 0;
}

VSS_EXPORT int vss_event_subscribe(struct vss_handle *h)
{
	int err, fd;

	err = vss_require_protocol(h);
	if (err)
		return err;
	if (h->event_fd >= 0)
		return 0;
	if (!h->events_group)
		return vss_error_set(h, -EPROTO, NULL,
				     "the module has no \"%s\" multicast group",
				     VSS_MCGRP_EVENTS);
	err = vss_event_open_socket(h, &fd);
	if (err)
		return vss_error_set(h, err, NULL, "cannot join the event group");
	h->event_fd = fd;
	return 0;
}

VSS_EXPORT int vss_event_fd(const struct vss_handle *h)
{
	return h->event_fd >= 0 ? h->event_fd : -EBADF;
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

VSS_EXPORT int vss_event_next(struct vss_handle *h, struct vss_event_info *out,
			      int timeout_ms)
{
	int64_t deadline = timeout_ms > 0 ? monotonic_ms() + timeout_ms : 0;

	vss_error_clear(h);
	if (h->event_fd < 0)
		return vss_error_set(h, -EBADF, NULL, "not subscribed to events");
	for (;;) {
		struct pollfd pfd = { .fd = h->event_fd, .events = POLLIN };
		int wait_ms = timeout_ms;
		int n, err;

		if (queue_pop(&h->events, out))
			return 0;
		if (timeout_ms > 0) {
			int64_t left = deadline - monotonic_ms();

			wait_ms = left > 0 ? (int)left : 0;
		}
		n = poll(&pfd, 1, wait_ms);
		if (n < 0)
			return vss_error_set(h, -errno, NULL, NULL);
		if (n == 0)
			return -ETIMEDOUT;
		err = receive_events(h);
		if (err == -EAGAIN || err == -EWOULDBLOCK)
			continue;
		if (err)
			return err;
	}
}

VSS_EXPORT int vss_event_dispatch(struct vss_handle *h, vss_event_fn callback,
				  void *arg)
{
	struct vss_event_info ev;
	int handed = 0;

	vss_error_clear(h);
	if (h->event_fd < 0)
		return vss_error_set(h, -EBADF, NULL, "not subscribed to events");
	for (;;) {
		int err;

		while (queue_pop(&h->events, &ev)) {
			handed++;
			if (callback(&ev, arg))
				return handed;
		}
		err = receive_events(h);
		if (err == -EAGAIN || err == -EWOULDBLOCK)
			return handed;
		if (err)
			return err;
	}
}
