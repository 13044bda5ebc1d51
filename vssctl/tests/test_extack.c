// SPDX-License-Identifier: GPL-2.0
/*
 * Extended acks and request layout, on hand-made buffers: what the kernel
 * sends after a failed request, how libvss reads it, and how the blamed
 * attribute's offset is turned back into the device the caller named.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/genetlink.h>

#include <netlink/genl/genl.h>

#include "harness.h"
#include "libvss/internal.h"

/* An NLMSG_ERROR message: header, nlmsgerr, optional echo, then TLVs. */
static struct nl_msg *error_msg(int error, int flags, const struct nlmsghdr *req,
				const void *echo, size_t echo_len)
{
	struct nl_msg *msg = nlmsg_alloc_simple(NLMSG_ERROR, flags);
	struct nlmsgerr e = { .error = error, .msg = *req };

	nlmsg_append(msg, &e, sizeof(e), 0);
	if (echo_len)
		nlmsg_append(msg, (void *)echo, echo_len, NLMSG_ALIGNTO);
	return msg;
}

static void test_parse_ack(void)
{
	struct nlmsghdr req = { .nlmsg_len = NLMSG_HDRLEN + 20, .nlmsg_type = 0x1d,
				.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 9 };
	unsigned char echo[20];
	struct vss_ack ack;
	struct nl_msg *msg;

	memset(echo, 0xab, sizeof(echo));

	msg = error_msg(-EBUSY, NLM_F_CAPPED | NLM_F_ACK_TLVS, &req, NULL, 0);
	nla_put_string(msg, NLMSGERR_ATTR_MSG, "device is busy");
	nla_put_u32(msg, NLMSGERR_ATTR_OFFS, 44);
	t_int_eq(vss_parse_ack(nlmsg_hdr(msg), &ack), 0, "capped error with TLVs parses");
	t_int_eq(ack.error, -EBUSY, "error is the kernel's negative errno");
	t_ok(ack.message && ack.message_len == 14 &&
	     !strncmp(ack.message, "device is busy", 14), "message read");
	t_ok(ack.has_offset && ack.offset == 44, "offset read");
	t_ok(!ack.has_missing_type && !ack.has_missing_nest, "nothing missing");
	nlmsg_free(msg);

	/* Without NETLINK_CAP_ACK the request comes back before the TLVs. */
	msg = error_msg(-EXDEV, NLM_F_ACK_TLVS, &req, echo, sizeof(echo));
	nla_put_string(msg, NLMSGERR_ATTR_MSG, "storage on a device of the set");
	nla_put_u32(msg, NLMSGERR_ATTR_OFFS, 60);
	t_int_eq(vss_parse_ack(nlmsg_hdr(msg), &ack), 0, "uncapped error parses");
	t_int_eq(ack.error, -EXDEV, "uncapped: errno");
	t_ok(ack.message && !strncmp(ack.message, "storage on a device of the set",
				      ack.message_len), "uncapped: TLVs found after the echo");
	t_ok(ack.has_offset && ack.offset == 60, "uncapped: offset");
	nlmsg_free(msg);

	msg = error_msg(-EPERM, NLM_F_CAPPED, &req, NULL, 0);
	t_int_eq(vss_parse_ack(nlmsg_hdr(msg), &ack), 0, "error without TLVs parses");
	t_ok(ack.error == -EPERM && !ack.message && !ack.has_offset,
	     "no TLVs: bare errno");
	nlmsg_free(msg);

	/* TLVs present but the flag missing: they must not be read. */
	msg = error_msg(-EPERM, NLM_F_CAPPED, &req, NULL, 0);
	nla_put_string(msg, NLMSGERR_ATTR_MSG, "ignored");
	t_ok(vss_parse_ack(nlmsg_hdr(msg), &ack) == 0 && !ack.message,
	     "TLVs without NLM_F_ACK_TLVS are ignored");
	nlmsg_free(msg);

	msg = error_msg(-EINVAL, NLM_F_CAPPED | NLM_F_ACK_TLVS, &req, NULL, 0);
	nla_put_u32(msg, NLMSGERR_ATTR_MISS_TYPE, VSS_A_STORAGE_PATH);
	nla_put_u32(msg, NLMSGERR_ATTR_MISS_NEST, 20);
	nla_put_u32(msg, 99, 1);	/* unknown TLV: skipped */
	t_ok(vss_parse_ack(nlmsg_hdr(msg), &ack) == 0 && ack.has_missing_type &&
	     ack.missing_type == VSS_A_STORAGE_PATH && ack.has_missing_nest &&
	     ack.missing_nest == 20, "missing attribute and nest read");
	nlmsg_free(msg);

	msg = error_msg(0, NLM_F_CAPPED, &req, NULL, 0);
	t_ok(vss_parse_ack(nlmsg_hdr(msg), &ack) == 0 && ack.error == 0, "plain ack");
	nlmsg_free(msg);

	msg = error_msg(EBUSY, NLM_F_CAPPED, &req, NULL, 0);
	t_ok(vss_parse_ack(nlmsg_hdr(msg), &ack) == 0 && ack.error == -EBUSY,
	     "a positive error is read as negative");
	nlmsg_free(msg);

	msg = nlmsg_alloc_simple(NLMSG_ERROR, 0);
	nlmsg_append(msg, &req, 8, 0);
	t_int_eq(vss_parse_ack(nlmsg_hdr(msg), &ack), -EPROTO, "truncated error refused");
	nlmsg_free(msg);

	{
		int done_error = -ENOBUFS;

		msg = nlmsg_alloc_simple(NLMSG_DONE, NLM_F_MULTI | NLM_F_ACK_TLVS);
		nlmsg_append(msg, &done_error, sizeof(done_error), NLMSG_ALIGNTO);
		nla_put_string(msg, NLMSGERR_ATTR_MSG, "dump failed");
		t_ok(vss_parse_ack(nlmsg_hdr(msg), &ack) == 0 && ack.error == -ENOBUFS &&
		     ack.message && !strncmp(ack.message, "dump failed", ack.message_len),
		     "NLMSG_DONE with error and message");
		nlmsg_free(msg);
	}

	msg = nlmsg_alloc_simple(NLMSG_DONE, NLM_F_MULTI);
	t_ok(vss_parse_ack(nlmsg_hdr(msg), &ack) == 0 && ack.error == 0,
	     "empty NLMSG_DONE of old kernels is success");
	nlmsg_free(msg);

	msg = nlmsg_alloc_simple(0x1d, 0);
	t_int_eq(vss_parse_ack(nlmsg_hdr(msg), &ack), -EPROTO,
		 "other message types are no ack");
	nlmsg_free(msg);
}

static uint32_t offset_of(struct nl_msg *msg, const void *p)
{
	return (uint32_t)((const char *)p - (const char *)nlmsg_hdr(msg));
}

/* Finds the n-th VSS_A_DEVICE nest inside VSS_A_DEVICES of @msg. */
static struct nlattr *device_nest(struct nl_msg *msg, int n)
{
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL }, *dev;
	int rem;

	genlmsg_parse(nlmsg_hdr(msg), 0, tb, VSS_A_MAX, NULL);
	if (!tb[VSS_A_DEVICES])
		return NULL;
	nla_for_each_nested(dev, tb[VSS_A_DEVICES], rem)
		if (n-- == 0)
			return dev;
	return NULL;
}

static void test_create_layout_and_blame(void)
{
	const char *paths[] = { "/dev/vdb", "vdc-by-label", "/dev/disk/by-id/x" };
	struct vss_device devices[3] = {
		{ .major = 252, .minor = 16 }, { .major = 252, .minor = 32 },
		{ .major = 8, .minor = 1 },
	};
	struct vss_create_params params = {
		.devices = paths, .device_count = 3, .storage_path = "store",
		.storage_limit = UINT64_C(1) << 30, .chunk_size = 128 * 1024,
		.label = "nightly", .flags = VSS_CREATE_NO_FREEZE,
		.hold_limit_ms = 5000,
	};
	struct nlattr *tb[VSS_A_MAX + 1] = { NULL }, *dtb[VSS_A_MAX + 1] = { NULL };
	struct vss_handle *h = calloc(1, sizeof(*h));
	struct vss_request req;
	struct vss_ack ack = { .error = -EBUSY, .message = "busy!", .message_len = 5 };
	struct nlattr *dev;

	h->family_id = 0x1d;
	t_int_eq(vss_request_init(&req, h, 0x1d, VSS_CMD_CREATE_SET, VSS_GENL_VERSION,
				  false), 0, "request allocated");
	t_int_eq(vss_build_create(&req, &params, devices, "/abs/store"), 0,
		 "create request built");
	t_ok(nlmsg_hdr(req.msg)->nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK),
	     "a do request asks for an ack");
	t_ok(genlmsg_parse(nlmsg_hdr(req.msg), 0, tb, VSS_A_MAX, NULL) == 0,
	     "request parses back");
	t_str_eq(tb[VSS_A_STORAGE_PATH] ? nla_data(tb[VSS_A_STORAGE_PATH]) : NULL,
		 "/abs/store", "storage path is the absolute one");
	t_ok(tb[VSS_A_STORAGE_LIMIT] && nla_get_u64(tb[VSS_A_STORAGE_LIMIT]) ==
	     UINT64_C(1) << 30, "storage limit u64");
	t_ok(tb[VSS_A_CHUNK_SIZE] && nla_get_u32(tb[VSS_A_CHUNK_SIZE]) == 128 * 1024,
	     "chunk size u32");
	t_str_eq(tb[VSS_A_LABEL] ? nla_data(tb[VSS_A_LABEL]) : NULL, "nightly", "label");
	t_ok(tb[VSS_A_FLAGS] && nla_get_u32(tb[VSS_A_FLAGS]) == VSS_CREATE_NO_FREEZE,
	     "flags");
	t_ok(tb[VSS_A_HOLD_LIMIT_MS] && nla_get_u32(tb[VSS_A_HOLD_LIMIT_MS]) == 5000,
	     "hold limit");
	dev = device_nest(req.msg, 1);
	t_ok(dev && nla_type(dev) == VSS_A_DEVICE, "devices are VSS_A_DEVICE nests");
	if (dev)
		nla_parse_nested(dtb, VSS_A_MAX, dev, NULL);
	t_ok(dtb[VSS_A_DEV_MAJOR] && dtb[VSS_A_DEV_MINOR] &&
	     nla_get_u32(dtb[VSS_A_DEV_MAJOR]) == 252 &&
	     nla_get_u32(dtb[VSS_A_DEV_MINOR]) == 32, "second nest holds 252:32");
	t_ok(device_nest(req.msg, 3) == NULL, "exactly three device nests");

	/* The kernel blames the minor inside the second device nest. */
	ack.has_offset = true;
	ack.offset = offset_of(req.msg, dtb[VSS_A_DEV_MINOR]);
	vss_error_from_ack(h, &req, &ack);
	t_int_eq(vss_last_error(h), -EBUSY, "error code kept");
	t_str_eq(vss_last_error_message(h), "busy!", "kernel message kept");
	t_str_eq(vss_last_error_object(h), "vdc-by-label",
		 "attribute inside a device nest names that device as given");
	t_int_eq(vss_last_error_attr(h), VSS_A_DEV_MINOR, "blamed attribute type");

	ack.offset = offset_of(req.msg, device_nest(req.msg, 2));
	vss_error_from_ack(h, &req, &ack);
	t_str_eq(vss_last_error_object(h), "/dev/disk/by-id/x", "the nest itself");
	t_int_eq(vss_last_error_attr(h), VSS_A_DEVICE, "attr is VSS_A_DEVICE");

	ack.offset = offset_of(req.msg, tb[VSS_A_STORAGE_PATH]);
	vss_error_from_ack(h, &req, &ack);
	t_str_eq(vss_last_error_object(h), "store",
		 "storage blamed: the path as the caller wrote it");

	ack.offset = offset_of(req.msg, tb[VSS_A_STORAGE_LIMIT]);
	vss_error_from_ack(h, &req, &ack);
	t_str_eq(vss_last_error_object(h), "store", "storage limit blames the storage");

	ack.offset = offset_of(req.msg, tb[VSS_A_DEVICES]);
	vss_error_from_ack(h, &req, &ack);
	t_str_eq(vss_last_error_object(h), NULL, "the device list names no device");
	t_int_eq(vss_last_error_attr(h), VSS_A_DEVICES, "attr is VSS_A_DEVICES");

	ack.offset = offset_of(req.msg, tb[VSS_A_CHUNK_SIZE]);
	vss_error_from_ack(h, &req, &ack);
	t_ok(!vss_last_error_object(h) && vss_last_error_attr(h) == VSS_A_CHUNK_SIZE,
	     "chunk size: no object, attr told");

	ack.offset = 1u << 30;
	vss_error_from_ack(h, &req, &ack);
	t_ok(!vss_last_error_object(h) && vss_last_error_attr(h) == 0,
	     "an offset past the request is ignored safely");

	ack.has_offset = false;
	ack.has_missing_type = true;
	ack.missing_type = VSS_A_DEV_MAJOR;
	ack.has_missing_nest = true;
	ack.missing_nest = offset_of(req.msg, device_nest(req.msg, 0));
	vss_error_from_ack(h, &req, &ack);
	t_str_eq(vss_last_error_object(h), "/dev/vdb", "missing attribute's nest names the device");
	t_int_eq(vss_last_error_attr(h), VSS_A_DEV_MAJOR, "missing attribute type");

	vss_request_fini(&req);

	t_int_eq(vss_request_init(&req, h, 0x1d, VSS_CMD_GET_SNAPSHOT, 1, true), 0,
		 "dump request allocated");
	t_ok(nlmsg_hdr(req.msg)->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP),
	     "a dump request does not ask for an ack");
	vss_request_fini(&req);
	free(h);
}

static void test_parse_snapshot(void)
{
	struct nl_msg *msg = nlmsg_alloc();
	struct vss_snapshot_info info;
	struct nlattr *nest, *dev;
	uint8_t id[VSS_ID_LEN];

	memset(id, 0x42, sizeof(id));
	nest = nla_nest_start(msg, VSS_A_SNAPSHOT);
	nla_put(msg, VSS_A_SNAP_ID, VSS_ID_LEN, id);
	dev = nla_nest_start(msg, VSS_A_ORIGIN);
	nla_put_u32(msg, VSS_A_DEV_MAJOR, 252);
	nla_put_u32(msg, VSS_A_DEV_MINOR, 16);
	nla_put_string(msg, VSS_A_DEV_NAME, "a-device-name-longer-than-thirty-two-bytes");
	nla_nest_end(msg, dev);
	nla_put_u32(msg, VSS_A_STATE, VSS_STATE_FAILED);
	nla_put_u32(msg, VSS_A_ERRNO, ENOSPC);
	nla_put_string(msg, VSS_A_REASON, "storage full");
	nla_put_u32(msg, 200, 7);	/* from a newer module: ignored */
	nla_nest_end(msg, nest);
	t_int_eq(vss_parse_snapshot(nest, &info), 0, "snapshot nest parses");
	t_ok(info.id.bytes[0] == 0x42 && info.origin.major == 252 &&
	     info.origin.minor == 16, "id and origin");
	t_int_eq((long long)strlen(info.origin.name), VSS_DEVICE_NAME_MAX - 1,
		 "long device name truncated");
	t_ok(info.state == VSS_STATE_FAILED && info.error == ENOSPC &&
	     !strcmp(info.reason, "storage full"), "failure fields");
	t_str_eq(info.storage_path, "", "absent storage path reads as empty");
	t_ok(!info.has_cbt_point, "no tracking point when the module gives none");
	vss_snapshot_info_clear(&info);
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	nest = nla_nest_start(msg, VSS_A_SNAPSHOT);
	nla_put(msg, VSS_A_SNAP_ID, VSS_ID_LEN, id);
	nla_put(msg, VSS_A_CBT_GENERATION, VSS_ID_LEN, id);
	nla_put_u64(msg, VSS_A_CBT_SEQ, 5);
	nla_nest_end(msg, nest);
	t_int_eq(vss_parse_snapshot(nest, &info), 0, "snapshot with a point parses");
	t_ok(info.has_cbt_point && info.cbt_point.seq == 5 &&
	     info.cbt_point.generation.bytes[15] == 0x42, "... the point read");
	vss_snapshot_info_clear(&info);
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	nest = nla_nest_start(msg, VSS_A_SNAPSHOT);
	nla_put(msg, VSS_A_SNAP_ID, VSS_ID_LEN, id);
	nla_put_u64(msg, VSS_A_CBT_SEQ, 5);
	nla_nest_end(msg, nest);
	t_int_eq(vss_parse_snapshot(nest, &info), 0, "a sequence without generation ...");
	t_ok(!info.has_cbt_point, "... is no point");
	vss_snapshot_info_clear(&info);
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	nest = nla_nest_start(msg, VSS_A_SNAPSHOT);
	nla_put(msg, VSS_A_SNAP_ID, 8, id);
	nla_nest_end(msg, nest);
	t_int_eq(vss_parse_snapshot(nest, &info), -EPROTO, "short id refused");
	vss_snapshot_info_clear(&info);
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	nest = nla_nest_start(msg, VSS_A_SNAPSHOT);
	nla_put_u32(msg, VSS_A_INDEX, 3);
	nla_nest_end(msg, nest);
	t_int_eq(vss_parse_snapshot(nest, &info), -EPROTO, "snapshot without id refused");
	vss_snapshot_info_clear(&info);
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	nest = nla_nest_start(msg, VSS_A_SNAPSHOT);
	nla_put(msg, VSS_A_SNAP_ID, VSS_ID_LEN, id);
	nla_put(msg, VSS_A_LABEL, 3, "abc");	/* no NUL */
	nla_nest_end(msg, nest);
	t_int_eq(vss_parse_snapshot(nest, &info), -EPROTO, "unterminated string refused");
	vss_snapshot_info_clear(&info);
	nlmsg_free(msg);
}

static void test_parse_event(void)
{
	struct nl_msg *msg = nlmsg_alloc();
	struct vss_event_info ev;
	uint8_t id[VSS_ID_LEN];
	struct nlattr *dev, *nest;

	memset(id, 0x11, sizeof(id));
	genlmsg_put(msg, 0, 0, 0x1d, 0, 0, VSS_CMD_EVENT, 1);
	nla_put_u32(msg, VSS_A_EVENT, VSS_EVENT_STORAGE_LOW);
	nla_put(msg, VSS_A_SET_ID, VSS_ID_LEN, id);
	dev = nla_nest_start(msg, VSS_A_ORIGIN);
	nla_put_u32(msg, VSS_A_DEV_MAJOR, 8);
	nla_put_u32(msg, VSS_A_DEV_MINOR, 1);
	nla_nest_end(msg, dev);
	nla_put_u64(msg, VSS_A_STORAGE_USED, 900);
	nla_put_u64(msg, VSS_A_STORAGE_LIMIT, 1000);
	t_int_eq(vss_parse_event(nlmsg_hdr(msg), &ev), 0, "event parses");
	t_int_eq(ev.type, VSS_EVENT_STORAGE_LOW, "event type");
	t_int_eq(ev.present, VSS_EVENT_HAS_SET_ID | VSS_EVENT_HAS_ORIGIN |
		 VSS_EVENT_HAS_STORAGE, "present fields");
	t_ok(ev.storage_used == 900 && ev.storage_limit == 1000 && ev.origin.minor == 1,
	     "storage and origin values");
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	genlmsg_put(msg, 0, 0, 0x1d, 0, 0, VSS_CMD_EVENT, 1);
	nla_put_u32(msg, VSS_A_EVENT, VSS_EVENT_CBT_HISTORY_DROPPED);
	nest = nla_nest_start(msg, VSS_A_CBT);
	dev = nla_nest_start(msg, VSS_A_DEVICE);
	nla_put_u32(msg, VSS_A_DEV_MAJOR, 8);
	nla_put_u32(msg, VSS_A_DEV_MINOR, 16);
	nla_put_string(msg, VSS_A_DEV_NAME, "sdb");
	nla_nest_end(msg, dev);
	nla_put(msg, VSS_A_CBT_GENERATION, VSS_ID_LEN, id);
	nla_put_u64(msg, VSS_A_CBT_SEQ, 40);
	nla_put_u64(msg, VSS_A_CBT_OLDEST_SEQ, 9);
	nla_put_u32(msg, VSS_A_CBT_BLOCK_SIZE, 65536);
	nla_nest_end(msg, nest);
	t_int_eq(vss_parse_event(nlmsg_hdr(msg), &ev), 0, "tracking event parses");
	t_ok(ev.present == VSS_EVENT_HAS_CBT && ev.cbt.device.minor == 16 &&
	     !strcmp(ev.cbt.device.name, "sdb") && ev.cbt.generation.bytes[0] == 0x11 &&
	     ev.cbt.seq == 40 && ev.cbt.oldest_seq == 9 && ev.cbt.block_size == 65536,
	     "... its tracking state");
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	genlmsg_put(msg, 0, 0, 0x1d, 0, 0, VSS_CMD_EVENT, 1);
	nla_put_u32(msg, VSS_A_EVENT, VSS_EVENT_CBT_STOPPED);
	nest = nla_nest_start(msg, VSS_A_CBT);
	nla_put_u64(msg, VSS_A_CBT_SEQ, 40);
	nla_nest_end(msg, nest);
	t_int_eq(vss_parse_event(nlmsg_hdr(msg), &ev), -EPROTO,
		 "a tracking state without device and generation is refused");
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	genlmsg_put(msg, 0, 0, 0x1d, 0, 0, VSS_CMD_GET_SNAPSHOT, 1);
	nla_put_u32(msg, VSS_A_EVENT, 1);
	t_int_eq(vss_parse_event(nlmsg_hdr(msg), &ev), -EPROTO, "not an event command");
	nlmsg_free(msg);

	msg = nlmsg_alloc();
	genlmsg_put(msg, 0, 0, 0x1d, 0, 0, VSS_CMD_EVENT, 1);
	t_int_eq(vss_parse_event(nlmsg_hdr(msg), &ev), -EPROTO, "event without type");
	nlmsg_free(msg);
}

int main(void)
{
	test_parse_ack();
	test_create_layout_and_blame();
	test_parse_snapshot();
	test_parse_event();
	return t_done();
}
