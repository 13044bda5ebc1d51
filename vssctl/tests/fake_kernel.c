// SPDX-License-Identifier: GPL-2.0
/*
 * The simulated vss module: see fake_kernel.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/genetlink.h>

#include <netlink/genl/genl.h>

#include "fake_kernel.h"
#include "libvss/internal.h"

#define FAKE_STATE_MAGIC	0x76737367u	/* "vssg" */
#define FAKE_CREATED_BASE_NS	UINT64_C(1700000000000000000)

char fake_system_root[4096];

/* The library's view of /dev, /sys and /proc: see fake_kernel.h. */
const char *vss_system_root(void)
{
	return fake_system_root;
}

static void hex_to_bytes(const char *hex, uint8_t out[VSS_ID_LEN]);

void fake_send_msg(int fd, struct nl_msg *msg)
{
	struct nlmsghdr *hdr = nlmsg_hdr(msg);

	if (send(fd, hdr, hdr->nlmsg_len, 0) < 0)
		perror("fake kernel: send");
	nlmsg_free(msg);
}

struct nl_msg *fake_reply_new(const struct nlmsghdr *req, uint16_t type,
				int flags, uint8_t cmd)
{
	struct nl_msg *msg = nlmsg_alloc_size(65536);

	if (!msg || !genlmsg_put(msg, 0, req->nlmsg_seq, type, 0, flags, cmd, 1))
		abort();
	return msg;
}

/* An NLMSG_ERROR as the kernel makes it on a socket with NETLINK_CAP_ACK. */
void fake_send_ack(struct fake_kernel *k, const struct nlmsghdr *req, int error,
		     const char *message, const struct nlattr *blamed)
{
	int flags = NLM_F_CAPPED | (message || blamed ? NLM_F_ACK_TLVS : 0);
	struct nl_msg *msg = nlmsg_alloc_simple(NLMSG_ERROR, flags);
	struct nlmsgerr e = { .error = error, .msg = *req };

	if (!msg)
		abort();
	nlmsg_hdr(msg)->nlmsg_seq = req->nlmsg_seq;
	nlmsg_append(msg, &e, sizeof(e), NLMSG_ALIGNTO);
	if (message)
		nla_put_string(msg, NLMSGERR_ATTR_MSG, message);
	if (blamed)
		nla_put_u32(msg, NLMSGERR_ATTR_OFFS,
			    (uint32_t)((const char *)blamed - (const char *)req));
	fake_send_msg(k->fd, msg);
}

static void handle_ctrl(struct fake_kernel *k, const struct nlmsghdr *req)
{
	struct nlattr *tb[CTRL_ATTR_MAX + 1] = { NULL };
	struct nlattr *groups, *group;
	struct nl_msg *msg;

	genlmsg_parse((struct nlmsghdr *)req, 0, tb, CTRL_ATTR_MAX, NULL);
	if (!tb[CTRL_ATTR_FAMILY_NAME] || k->opts.no_family ||
	    strcmp(nla_data(tb[CTRL_ATTR_FAMILY_NAME]), VSS_GENL_NAME)) {
		fake_send_ack(k, req, -ENOENT, NULL, NULL);
		return;
	}
	msg = fake_reply_new(req, GENL_ID_CTRL, 0, CTRL_CMD_NEWFAMILY);
	nla_put_u16(msg, CTRL_ATTR_FAMILY_ID, FAKE_FAMILY_ID);
	nla_put_string(msg, CTRL_ATTR_FAMILY_NAME, VSS_GENL_NAME);
	nla_put_u32(msg, CTRL_ATTR_VERSION, VSS_GENL_VERSION);
	groups = nla_nest_start(msg, CTRL_ATTR_MCAST_GROUPS);
	group = nla_nest_start(msg, 1);
	nla_put_string(msg, CTRL_ATTR_MCAST_GRP_NAME, VSS_MCGRP_EVENTS);
	nla_put_u32(msg, CTRL_ATTR_MCAST_GRP_ID, FAKE_EVENTS_GROUP);
	nla_nest_end(msg, group);
	nla_nest_end(msg, groups);
	fake_send_msg(k->fd, msg);
	fake_send_ack(k, req, 0, NULL, NULL);
}

void fake_put_device(struct nl_msg *msg, int type, uint32_t major,
		       uint32_t minor, const char *name)
{
	struct nlattr *nest = nla_nest_start(msg, type);

	nla_put_u32(msg, VSS_A_DEV_MAJOR, major);
	nla_put_u32(msg, VSS_A_DEV_MINOR, minor);
	if (name && *name)
		nla_put_string(msg, VSS_A_DEV_NAME, name);
	nla_nest_end(msg, nest);
}

static void put_snapshot(struct nl_msg *msg, int type, const struct fake_snapshot *s)
{
	struct nlattr *nest = nla_nest_start(msg, type);
	char image[32];

	snprintf(image, sizeof(image), "vss%u", s->image_minor);
	nla_put(msg, VSS_A_SNAP_ID, VSS_ID_LEN, s->id);
	nla_put(msg, VSS_A_SET_ID, VSS_ID_LEN, s->set_id);
	fake_put_device(msg, VSS_A_ORIGIN, s->origin_major, s->origin_minor, s->origin_name);
	fake_put_device(msg, VSS_A_IMAGE, FAKE_IMAGE_MAJOR, s->image_minor, image);
	nla_put_u32(msg, VSS_A_INDEX, s->index);
	nla_put_u64(msg, VSS_A_CREATED_NS, s->created_ns);
	nla_put_u32(msg, VSS_A_STATE, s->state);
	if (s->state == VSS_STATE_FAILED) {
		nla_put_u32(msg, VSS_A_ERRNO, s->error);
		nla_put_string(msg, VSS_A_REASON, s->reason);
	}
	nla_put_u32(msg, VSS_A_CHUNK_SIZE, s->chunk_size);
	if (s->label[0])
		nla_put_string(msg, VSS_A_LABEL, s->label);
	nla_put_string(msg, VSS_A_STORAGE_PATH, s->storage_path);
	nla_put_u32(msg, VSS_A_STORAGE_KIND, s->storage_kind);
	nla_put_u64(msg, VSS_A_STORAGE_USED, s->storage_used);
	nla_put_u64(msg, VSS_A_STORAGE_SIZE, s->storage_size);
	nla_put_u64(msg, VSS_A_STORAGE_LIMIT, s->storage_limit);
	nla_put_u64(msg, VSS_A_HOLD_US, s->hold_us);
	nla_put_u32(msg, VSS_A_OPEN_COUNT, s->open_count);
	if (s->has_cbt) {
		nla_put(msg, VSS_A_CBT_GENERATION, VSS_ID_LEN, s->cbt_generation);
		nla_put_u64(msg, VSS_A_CBT_SEQ, s->cbt_seq);
	}
	nla_nest_end(msg, nest);
}

void fake_save_if_kept(struct fake_kernel *k)
{
	if (k->opts.state_file)
		fake_state_save(k->opts.state_file, &k->state);
}

void fake_make_id(uint8_t out[VSS_ID_LEN], uint8_t first, uint32_t n)
{
	size_t i;

	for (i = 0; i < VSS_ID_LEN; i++)
		out[i] = (uint8_t)(n * 37u + i * 11u + first);
	out[0] = first;
	out[6] = (uint8_t)(0x40 | (out[6] & 0x0f));
	out[8] = (uint8_t)(0x80 | (out[8] & 0x3f));
}

static uint32_t storage_kind_of(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return 0;
	if (S_ISBLK(st.st_mode))
		return VSS_STORAGE_BLOCK;
	return S_ISDIR(st.st_mode) ? VSS_STORAGE_TMPFILE : VSS_STORAGE_FILE;
}

uint64_t fake_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void handle_create(struct fake_kernel *k, const struct nlmsghdr *req,
			  struct nlattr **tb)
{
	struct fake_create_request *rq = &k->state.last_create;
	struct nlattr *dev, *snaps;
	uint32_t first = k->state.count;
	uint8_t set_id[VSS_ID_LEN];
	struct nl_msg *msg;
	int rem;
	uint32_t i, j;

	memset(rq, 0, sizeof(*rq));
	if (k->opts.deny) {
		fake_send_ack(k, req, -EPERM, NULL, NULL);
		return;
	}
	if (!tb[VSS_A_DEVICES] || !tb[VSS_A_STORAGE_PATH]) {
		fake_send_ack(k, req, -EINVAL, "devices and storage path are required", NULL);
		return;
	}
	nla_for_each_nested(dev, tb[VSS_A_DEVICES], rem) {
		struct nlattr *dtb[VSS_A_MAX + 1] = { NULL };

		nla_parse_nested(dtb, VSS_A_MAX, dev, NULL);
		if (nla_type(dev) != VSS_A_DEVICE || !dtb[VSS_A_DEV_MAJOR] ||
		    !dtb[VSS_A_DEV_MINOR] || rq->device_count == VSS_MAX_SET_DEVICES) {
			fake_send_ack(k, req, -EINVAL, "malformed device", dev);
			return;
		}
		rq->majors[rq->device_count] = nla_get_u32(dtb[VSS_A_DEV_MAJOR]);
		rq->minors[rq->device_count] = nla_get_u32(dtb[VSS_A_DEV_MINOR]);
		if (k->opts.busy_major &&
		    rq->majors[rq->device_count] == k->opts.busy_major &&
		    rq->minors[rq->device_count] == k->opts.busy_minor) {
			fake_send_ack(k, req, -EBUSY,
				 "device is already in a snapshot set being created", dev);
			return;
		}
		rq->device_count++;
	}
	nla_strlcpy(rq->storage_path, tb[VSS_A_STORAGE_PATH], sizeof(rq->storage_path));
	if (strstr(rq->storage_path, "exdev")) {
		fake_send_ack(k, req, -EXDEV, "storage lies on a device of the set",
			 tb[VSS_A_STORAGE_PATH]);
		return;
	}
	if ((rq->has_limit = tb[VSS_A_STORAGE_LIMIT]))
		rq->storage_limit = nla_get_u64(tb[VSS_A_STORAGE_LIMIT]);
	if ((rq->has_chunk = tb[VSS_A_CHUNK_SIZE]))
		rq->chunk_size = nla_get_u32(tb[VSS_A_CHUNK_SIZE]);
	if ((rq->has_flags = tb[VSS_A_FLAGS]))
		rq->flags = nla_get_u32(tb[VSS_A_FLAGS]);
	if ((rq->has_hold = tb[VSS_A_HOLD_LIMIT_MS]))
		rq->hold_limit_ms = nla_get_u32(tb[VSS_A_HOLD_LIMIT_MS]);
	if ((rq->has_label = tb[VSS_A_LABEL]))
		nla_strlcpy(rq->label, tb[VSS_A_LABEL], sizeof(rq->label));
	if (k->state.count + rq->device_count > FAKE_MAX_SNAPSHOTS) {
		fake_send_ack(k, req, -E2BIG, "too many snapshots", NULL);
		return;
	}

	fake_make_id(set_id, 0x5e, ++k->state.next_id);
	for (i = 0; i < rq->device_count; i++) {
		struct fake_snapshot *s = &k->state.snaps[k->state.count++];
		uint32_t index = 0;

		for (j = 0; j < first; j++)
			if (k->state.snaps[j].origin_major == rq->majors[i] &&
			    k->state.snaps[j].origin_minor == rq->minors[i] &&
			    k->state.snaps[j].index > index)
				index = k->state.snaps[j].index;
		memset(s, 0, sizeof(*s));
		fake_make_id(s->id, 0xc0, ++k->state.next_id);
		memcpy(s->set_id, set_id, VSS_ID_LEN);
		s->origin_major = rq->majors[i];
		s->origin_minor = rq->minors[i];
		snprintf(s->origin_name, sizeof(s->origin_name), "fake%u", rq->minors[i]);
		s->image_minor = k->state.next_image_minor++;
		s->index = index + 1;
		s->created_ns = fake_realtime_ns();
		s->state = VSS_STATE_ACTIVE;
		s->chunk_size = rq->has_chunk ? rq->chunk_size : VSS_DEFAULT_CHUNK_SIZE;
		snprintf(s->label, sizeof(s->label), "%s", rq->label);
		memcpy(s->storage_path, rq->storage_path, sizeof(s->storage_path) - 1);
		s->storage_kind = storage_kind_of(rq->storage_path);
		s->storage_limit = rq->storage_limit;
		s->hold_us = 1234;
		fake_cbt_snapshot_point(k, s->origin_major, s->origin_minor, s);
	}

	if (k->opts.create_without_reply) {
		/* What vss.ko does when the description does not fit. */
		fake_send_ack(k, req, 0, NULL, NULL);
		fake_save_if_kept(k);
		return;
	}
	msg = fake_reply_new(req, FAKE_FAMILY_ID, 0, VSS_CMD_CREATE_SET);
	nla_put(msg, VSS_A_SET_ID, VSS_ID_LEN, set_id);
	nla_put_u64(msg, VSS_A_HOLD_US, 1234);
	snaps = nla_nest_start(msg, VSS_A_SNAPSHOTS);
	for (i = first; i < k->state.count; i++)
		put_snapshot(msg, VSS_A_SNAPSHOT, &k->state.snaps[i]);
	nla_nest_end(msg, snaps);
	fake_send_msg(k->fd, msg);
	/* Events before the ack, so a test sees them in a fixed order. */
	for (i = first; i < k->state.count; i++)
		fake_kernel_send_event(k, VSS_EVENT_SNAPSHOT_CREATED,
				       &k->state.snaps[i], 0, NULL, false);
	fake_send_ack(k, req, 0, NULL, NULL);
	fake_save_if_kept(k);
}

/* The whole dump in one datagram, as the kernel packs small messages. */
static void handle_dump(struct fake_kernel *k, const struct nlmsghdr *req,
			struct nlattr **tb)
{
	int extra = 0, done_error = k->opts.dump_error ? -ENOBUFS : 0;
	uint32_t major = 0, minor = 0, i;
	unsigned char *buf = malloc(1 << 20);
	size_t used = 0;
	struct nl_msg *msg;

	if (!buf)
		abort();
	if (k->opts.dump_interrupt_once && !k->interrupted_once) {
		k->interrupted_once = true;
		extra = NLM_F_DUMP_INTR;
	}
	if (tb[VSS_A_DEVICE]) {
		struct nlattr *dtb[VSS_A_MAX + 1] = { NULL };

		nla_parse_nested(dtb, VSS_A_MAX, tb[VSS_A_DEVICE], NULL);
		if (!dtb[VSS_A_DEV_MAJOR] || !dtb[VSS_A_DEV_MINOR]) {
			fake_send_ack(k, req, -EINVAL, "malformed device", tb[VSS_A_DEVICE]);
			free(buf);
			return;
		}
		major = nla_get_u32(dtb[VSS_A_DEV_MAJOR]);
		minor = nla_get_u32(dtb[VSS_A_DEV_MINOR]);
	}
	for (i = 0; i < k->state.count; i++) {
		const struct fake_snapshot *s = &k->state.snaps[i];
		struct nlmsghdr *hdr;

		if (tb[VSS_A_DEVICE] && (s->origin_major != major || s->origin_minor != minor))
			continue;
		msg = fake_reply_new(req, FAKE_FAMILY_ID, NLM_F_MULTI | extra,
				VSS_CMD_GET_SNAPSHOT);
		put_snapshot(msg, VSS_A_SNAPSHOT, s);
		hdr = nlmsg_hdr(msg);
		memcpy(buf + used, hdr, NLMSG_ALIGN(hdr->nlmsg_len));
		used += NLMSG_ALIGN(hdr->nlmsg_len);
		nlmsg_free(msg);
	}
	msg = nlmsg_alloc_simple(NLMSG_DONE, NLM_F_MULTI | extra |
				 (done_error ? NLM_F_ACK_TLVS : 0));
	nlmsg_hdr(msg)->nlmsg_seq = req->nlmsg_seq;
	nlmsg_append(msg, &done_error, sizeof(done_error), NLMSG_ALIGNTO);
	if (done_error)
		nla_put_string(msg, NLMSGERR_ATTR_MSG, "dump failed half way");
	memcpy(buf + used, nlmsg_hdr(msg), nlmsg_hdr(msg)->nlmsg_len);
	used += nlmsg_hdr(msg)->nlmsg_len;
	nlmsg_free(msg);
	if (send(k->fd, buf, used, 0) < 0)
		perror("fake kernel: send");
	free(buf);
}

static struct fake_snapshot *find_snapshot(struct fake_kernel *k, const struct nlattr *id)
{
	uint32_t i;

	if (!id || nla_len(id) != VSS_ID_LEN)
		return NULL;
	for (i = 0; i < k->state.count; i++)
		if (!memcmp(k->state.snaps[i].id, nla_data(id), VSS_ID_LEN))
			return &k->state.snaps[i];
	return NULL;
}

static void handle_get(struct fake_kernel *k, const struct nlmsghdr *req,
		       struct nlattr **tb)
{
	struct fake_snapshot *s = find_snapshot(k, tb[VSS_A_SNAP_ID]);
	struct nl_msg *msg;

	if (!s) {
		fake_send_ack(k, req, -ENOENT, "no such snapshot", tb[VSS_A_SNAP_ID]);
		return;
	}
	msg = fake_reply_new(req, FAKE_FAMILY_ID, 0, VSS_CMD_GET_SNAPSHOT);
	put_snapshot(msg, VSS_A_SNAPSHOT, s);
	fake_send_msg(k->fd, msg);
	fake_send_ack(k, req, 0, NULL, NULL);
}

static void remove_snapshot(struct fake_kernel *k, struct fake_snapshot *s)
{
	struct fake_snapshot gone = *s;
	size_t index = (size_t)(s - k->state.snaps);

	memmove(s, s + 1, (k->state.count - index - 1) * sizeof(*s));
	k->state.count--;
	fake_kernel_send_event(k, VSS_EVENT_SNAPSHOT_DELETED, &gone, 0, NULL, false);
}

static void handle_delete(struct fake_kernel *k, const struct nlmsghdr *req,
			  struct nlattr **tb)
{
	uint32_t flags = tb[VSS_A_FLAGS] ? nla_get_u32(tb[VSS_A_FLAGS]) : 0;
	bool force = flags & VSS_DELETE_FORCE;
	uint32_t i, members = 0;

	k->state.last_delete_flags = flags;
	if (k->opts.deny) {
		fake_send_ack(k, req, -EPERM, NULL, NULL);
		return;
	}
	if (!tb[VSS_A_SNAP_ID] == !tb[VSS_A_SET_ID]) {
		fake_send_ack(k, req, -EINVAL, "exactly one of snapshot id and set id", NULL);
		return;
	}
	if (tb[VSS_A_SNAP_ID]) {
		struct fake_snapshot *s = find_snapshot(k, tb[VSS_A_SNAP_ID]);

		if (!s) {
			fake_send_ack(k, req, -ENOENT, "no such snapshot", tb[VSS_A_SNAP_ID]);
			return;
		}
		if (s->open_count && !force) {
			fake_send_ack(k, req, -EBUSY, NULL, NULL);
			return;
		}
		remove_snapshot(k, s);
	} else {
		for (i = 0; i < k->state.count; i++) {
			const struct fake_snapshot *s = &k->state.snaps[i];

			if (memcmp(s->set_id, nla_data(tb[VSS_A_SET_ID]), VSS_ID_LEN))
				continue;
			members++;
			if (s->open_count && !force) {
				fake_send_ack(k, req, -EBUSY, "an image of the set is open",
					 tb[VSS_A_SET_ID]);
				return;
			}
		}
		if (!members) {
			fake_send_ack(k, req, -ENOENT, "no such snapshot set", tb[VSS_A_SET_ID]);
			return;
		}
		for (i = 0; i < k->state.count;)
			if (!memcmp(k->state.snaps[i].set_id, nla_data(tb[VSS_A_SET_ID]),
				    VSS_ID_LEN))
				remove_snapshot(k, &k->state.snaps[i]);
			else
				i++;
	}
	fake_send_ack(k, req, 0, NULL, NULL);
	fake_save_if_kept(k);
}

static void handle_vss(struct fake_kernel *k, const struct nlmsghdr *req)
{
	const struct genlmsghdr *genl = NLMSG_DATA(req);
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL };
	struct nl_msg *msg;

	k->state.requests++;
	k->state.last_cmd = genl->cmd;
	if (genlmsg_parse((struct nlmsghdr *)req, 0, tb, VSS_A_MAX, NULL) < 0) {
		fake_send_ack(k, req, -EINVAL, "malformed attributes", NULL);
		return;
	}
	switch (genl->cmd) {
	case VSS_CMD_GET_VERSION:
		msg = fake_reply_new(req, FAKE_FAMILY_ID, 0, VSS_CMD_GET_VERSION);
		nla_put_string(msg, VSS_A_VERSION, "0.3.0-fake");
		nla_put_u32(msg, VSS_A_PROTOCOL,
			    k->opts.protocol ? k->opts.protocol : VSS_PROTOCOL_VERSION);
		fake_send_msg(k->fd, msg);
		fake_send_ack(k, req, 0, NULL, NULL);
		break;
	case VSS_CMD_CREATE_SET:
		handle_create(k, req, tb);
		break;
	case VSS_CMD_GET_SNAPSHOT:
		if (req->nlmsg_flags & NLM_F_DUMP)
			handle_dump(k, req, tb);
		else
			handle_get(k, req, tb);
		break;
	case VSS_CMD_DELETE_SNAPSHOT:
		handle_delete(k, req, tb);
		break;
	case VSS_CMD_TRACK:
	case VSS_CMD_UNTRACK:
	case VSS_CMD_GET_CBT:
	case VSS_CMD_CBT_CHANGES:
	case VSS_CMD_CBT_MARK_DIRTY:
	case VSS_CMD_CBT_SAVE:
	case VSS_CMD_CBT_RESTORE:
		fake_cbt_handle(k, req, tb, genl->cmd);
		break;
	default:
		fake_send_ack(k, req, -EOPNOTSUPP, "unknown command", NULL);
		break;
	}
}

static void *serve(void *arg)
{
	struct fake_kernel *k = arg;
	unsigned char *buf = malloc(65536);

	if (!buf)
		abort();
	for (;;) {
		ssize_t n = recv(k->fd, buf, 65536, 0);
		struct nlmsghdr *req = (struct nlmsghdr *)buf;

		if (n <= 0)
			break;
		if (!NLMSG_OK(req, (int)n) || !(req->nlmsg_flags & NLM_F_REQUEST))
			continue;
		pthread_mutex_lock(&k->lock);
		if (req->nlmsg_type == GENL_ID_CTRL)
			handle_ctrl(k, req);
		else if (req->nlmsg_type == FAKE_FAMILY_ID)
			handle_vss(k, req);
		else
			fake_send_ack(k, req, -ENOENT, NULL, NULL);
		pthread_mutex_unlock(&k->lock);
	}
	free(buf);
	return NULL;
}

struct fake_kernel *fake_kernel_start(const struct fake_options *opts,
				      int *client_fd)
{
	struct fake_kernel *k = calloc(1, sizeof(*k));
	int sv[2];

	if (!k || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		abort();
	k->fd = sv[0];
	k->event_fd = -1;
	k->opts = *opts;
	k->state.next_image_minor = 0;
	if (opts->state_file)
		fake_state_load(opts->state_file, &k->state);
	if (!k->state.boot_id[0])
		hex_to_bytes(FAKE_BOOT_ID, k->state.boot_id);
	pthread_mutex_init(&k->lock, NULL);
	if (pthread_create(&k->thread, NULL, serve, k))
		abort();
	*client_fd = sv[1];
	return k;
}

void fake_kernel_stop(struct fake_kernel *k)
{
	if (!k)
		return;
	pthread_join(k->thread, NULL);
	close(k->fd);
	if (k->event_fd >= 0)
		close(k->event_fd);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

int fake_kernel_event_socket(struct fake_kernel *k)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	k->event_fd = sv[0];
	return sv[1];
}

int fake_kernel_send_event(struct fake_kernel *k, uint32_t type,
			   const struct fake_snapshot *about, uint32_t error,
			   const char *reason, bool storage)
{
	struct nl_msg *msg;

	if (k->event_fd < 0)
		return 0;
	msg = nlmsg_alloc();
	if (!msg || !genlmsg_put(msg, 0, 0, FAKE_FAMILY_ID, 0, 0, VSS_CMD_EVENT, 1))
		abort();
	nla_put_u32(msg, VSS_A_EVENT, type);
	if (about) {
		nla_put(msg, VSS_A_SNAP_ID, VSS_ID_LEN, about->id);
		nla_put(msg, VSS_A_SET_ID, VSS_ID_LEN, about->set_id);
		fake_put_device(msg, VSS_A_ORIGIN, about->origin_major, about->origin_minor,
			   about->origin_name);
	}
	if (error || reason) {
		nla_put_u32(msg, VSS_A_ERRNO, error);
		if (reason)
			nla_put_string(msg, VSS_A_REASON, reason);
	}
	if (storage) {
		nla_put_u64(msg, VSS_A_STORAGE_USED, about ? about->storage_used : 0);
		nla_put_u64(msg, VSS_A_STORAGE_LIMIT, about ? about->storage_limit : 0);
	}
	fake_send_msg(k->event_fd, msg);
	return 0;
}

int fake_kernel_send_cbt_event(struct fake_kernel *k, uint32_t type,
			       const struct fake_cbt *t, const char *reason)
{
	struct nl_msg *msg;
	struct nlattr *nest;
	char name[32];

	if (k->event_fd < 0)
		return 0;
	msg = nlmsg_alloc();
	if (!msg || !genlmsg_put(msg, 0, 0, FAKE_FAMILY_ID, 0, 0, VSS_CMD_EVENT, 1))
		abort();
	nla_put_u32(msg, VSS_A_EVENT, type);
	nest = nla_nest_start(msg, VSS_A_CBT);
	snprintf(name, sizeof(name), "fake%u", t->minor);
	fake_put_device(msg, VSS_A_DEVICE, t->major, t->minor, name);
	nla_put(msg, VSS_A_CBT_GENERATION, VSS_ID_LEN, t->generation);
	nla_put_u64(msg, VSS_A_CBT_SEQ, t->seq);
	nla_put_u64(msg, VSS_A_CBT_OLDEST_SEQ, t->oldest_seq);
	nla_put_u32(msg, VSS_A_CBT_BLOCK_SIZE, FAKE_CBT_BLOCK_SIZE);
	nla_nest_end(msg, nest);
	if (reason)
		nla_put_string(msg, VSS_A_REASON, reason);
	fake_send_msg(k->event_fd, msg);
	return 0;
}

static void hex_to_bytes(const char *hex, uint8_t out[VSS_ID_LEN])
{
	struct vss_id id;

	if (vss_id_parse(hex, &id))
		abort();
	memcpy(out, id.bytes, VSS_ID_LEN);
}

void fake_snapshot_init(struct fake_snapshot *s, const char *id_hex,
			const char *set_hex, uint32_t major, uint32_t minor,
			const char *name, uint32_t index)
{
	memset(s, 0, sizeof(*s));
	hex_to_bytes(id_hex, s->id);
	hex_to_bytes(set_hex, s->set_id);
	s->origin_major = major;
	s->origin_minor = minor;
	snprintf(s->origin_name, sizeof(s->origin_name), "%s", name);
	s->image_minor = index;
	s->index = index;
	s->created_ns = FAKE_CREATED_BASE_NS + index;
	s->state = VSS_STATE_ACTIVE;
	s->chunk_size = VSS_DEFAULT_CHUNK_SIZE;
	snprintf(s->storage_path, sizeof(s->storage_path), "/var/lib/vss");
	s->storage_kind = VSS_STORAGE_TMPFILE;
	s->storage_used = 12 * 1024 * 1024;
	s->storage_size = 16 * 1024 * 1024;
	s->storage_limit = UINT64_C(1) << 30;
	s->hold_us = 800;
}

int fake_state_load(const char *path, struct fake_state *state)
{
	FILE *f = fopen(path, "rb");
	uint32_t magic = 0;
	int err = 0;

	if (!f)
		return -errno;
	if (fread(&magic, sizeof(magic), 1, f) != 1 || magic != FAKE_STATE_MAGIC ||
	    fread(state, sizeof(*state), 1, f) != 1)
		err = -EINVAL;
	fclose(f);
	return err;
}

int fake_state_save(const char *path, const struct fake_state *state)
{
	uint32_t magic = FAKE_STATE_MAGIC;
	FILE *f = fopen(path, "wb");
	int err = 0;

	if (!f)
		return -errno;
	if (fwrite(&magic, sizeof(magic), 1, f) != 1 ||
	    fwrite(state, sizeof(*state), 1, f) != 1)
		err = -EIO;
	if (fclose(f))
		err = -EIO;
	return err;
}
