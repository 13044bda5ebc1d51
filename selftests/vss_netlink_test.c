// SPDX-License-Identifier: GPL-2.0
/*
 * The control plane: version, strict policies, malformed messages, and
 * the privilege check of every mutating command. Run once as root and
 * once unprivileged (the unprivileged run checks EPERM on every mutating
 * command, that joining the events group is refused, and that reading
 * still works).
 */
#include "vss_nl.h"
#include "vss_harness.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

FIXTURE(nl) {
	struct vss_nl nl;
	struct vss_msg *m;
	char *reply;
};

FIXTURE_SETUP(nl)
{
	ASSERT_EQ(0, vss_nl_open(&self->nl)) TH_LOG("is vss.ko loaded?");
	self->m = calloc(1, sizeof(*self->m));
	self->reply = calloc(4, VSS_NL_BUF);
	ASSERT_NE(NULL, self->m);
	ASSERT_NE(NULL, self->reply);
}

FIXTURE_TEARDOWN(nl)
{
	vss_nl_close(&self->nl);
	free(self->m);
	free(self->reply);
}

/* The module still answers: nothing a test sent broke it. */
static int still_alive(struct vss_nl *nl, struct vss_msg *m)
{
	vss_msg_init(nl, m, VSS_CMD_GET_VERSION, 0);
	return vss_nl_call(nl, m, NULL, NULL);
}

/* Policy violations: the kernels differ between EINVAL and ERANGE. */
static bool is_rejection(int ret)
{
	return ret == -EINVAL || ret == -ERANGE;
}

TEST_F(nl, version)
{
	struct vss_attrs a;
	size_t len;

	vss_msg_init(&self->nl, self->m, VSS_CMD_GET_VERSION, 0);
	ASSERT_EQ(0, vss_nl_call(&self->nl, self->m, self->reply, &len));
	vss_parse(self->reply, len, &a);
	ASSERT_NE(NULL, a.a[VSS_A_VERSION]);
	ASSERT_NE(NULL, a.a[VSS_A_PROTOCOL]);
	EXPECT_EQ(VSS_PROTOCOL_VERSION, vss_get_u32(a.a[VSS_A_PROTOCOL]));
	EXPECT_NE(0, self->nl.mcgrp_events) TH_LOG("no events group");
}

TEST_F(nl, unknown_attribute_rejected)
{
	vss_msg_init(&self->nl, self->m, VSS_CMD_GET_VERSION, 0);
	vss_msg_put_u32(self->m, VSS_A_MAX + 1, 1);
	EXPECT_EQ(-EINVAL, vss_nl_call(&self->nl, self->m, NULL, NULL));
	EXPECT_EQ(0, still_alive(&self->nl, self->m));
}

TEST_F(nl, wrong_length_rejected)
{
	uint8_t short_id[VSS_ID_LEN - 1] = { 0 };
	uint16_t small = 7;

	/* A 15-byte id. */
	vss_msg_init(&self->nl, self->m, VSS_CMD_GET_SNAPSHOT, 0);
	vss_msg_put(self->m, VSS_A_SNAP_ID, short_id, sizeof(short_id));
	EXPECT_TRUE(is_rejection(vss_nl_call(&self->nl, self->m, NULL, NULL)));
	EXPECT_NE(0, self->nl.err_offset) TH_LOG("no attribute blamed");

	/* A u32 attribute carrying two bytes (6.1: EINVAL, 6.12: ERANGE). */
	vss_msg_init(&self->nl, self->m, VSS_CMD_DELETE_SNAPSHOT, 0);
	vss_msg_put(self->m, VSS_A_FLAGS, &small, sizeof(small));
	EXPECT_TRUE(is_rejection(vss_nl_call(&self->nl, self->m, NULL, NULL)));
	EXPECT_EQ(0, still_alive(&self->nl, self->m));
}

TEST_F(nl, wrong_type_rejected)
{
	/* A string without its terminating NUL, and a flat "nest". */
	vss_msg_init(&self->nl, self->m, VSS_CMD_CREATE_SET, 0);
	vss_msg_put(self->m, VSS_A_STORAGE_PATH, "/tmp", 4);
	EXPECT_NE(0, vss_nl_call(&self->nl, self->m, NULL, NULL));

	vss_msg_init(&self->nl, self->m, VSS_CMD_CREATE_SET, 0);
	vss_msg_put_u32(self->m, VSS_A_DEVICES, 3);
	vss_msg_put_str(self->m, VSS_A_STORAGE_PATH, "/tmp");
	EXPECT_NE(0, vss_nl_call(&self->nl, self->m, NULL, NULL));
	EXPECT_EQ(0, still_alive(&self->nl, self->m));
}

TEST_F(nl, out_of_range_rejected)
{
	if (geteuid())
		SKIP(return, "needs root: the privilege check comes first");
	vss_msg_init(&self->nl, self->m, VSS_CMD_CREATE_SET, 0);
	vss_msg_nest_start(self->m, VSS_A_DEVICES);
	vss_msg_put_dev(self->m, VSS_A_DEVICE, makedev(1, 3));
	vss_msg_nest_end(self->m);
	vss_msg_put_str(self->m, VSS_A_STORAGE_PATH, "/tmp");
	vss_msg_put_u32(self->m, VSS_A_CHUNK_SIZE, 512);
	EXPECT_TRUE(is_rejection(vss_nl_call(&self->nl, self->m, NULL, NULL)));
	EXPECT_NE(0, self->nl.err_offset) TH_LOG("no attribute blamed");

	vss_msg_init(&self->nl, self->m, VSS_CMD_CREATE_SET, 0);
	vss_msg_nest_start(self->m, VSS_A_DEVICES);
	vss_msg_put_dev(self->m, VSS_A_DEVICE, makedev(1, 3));
	vss_msg_nest_end(self->m);
	vss_msg_put_str(self->m, VSS_A_STORAGE_PATH, "/tmp");
	vss_msg_put_u32(self->m, VSS_A_CHUNK_SIZE, 12288);
	EXPECT_EQ(-EINVAL, vss_nl_call(&self->nl, self->m, NULL, NULL));
	EXPECT_NE(0, self->nl.errmsg[0]);

	vss_msg_init(&self->nl, self->m, VSS_CMD_DELETE_SNAPSHOT, 0);
	vss_msg_put(self->m, VSS_A_SNAP_ID, "0123456789abcdef", VSS_ID_LEN);
	vss_msg_put_u32(self->m, VSS_A_FLAGS, 0x80);
	EXPECT_EQ(-EINVAL, vss_nl_call(&self->nl, self->m, NULL, NULL));
	EXPECT_EQ(0, still_alive(&self->nl, self->m));
}

TEST_F(nl, truncated_messages_rejected)
{
	struct {
		struct nlmsghdr nlh;
		struct genlmsghdr g;
		struct nlattr a;
		char data[8];
	} raw;

	/* An attribute claiming more bytes than the message holds. */
	memset(&raw, 0, sizeof(raw));
	raw.nlh.nlmsg_len = sizeof(raw);
	raw.nlh.nlmsg_type = self->nl.family;
	raw.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	raw.g.cmd = VSS_CMD_GET_SNAPSHOT;
	raw.g.version = VSS_GENL_VERSION;
	raw.a.nla_type = VSS_A_SNAP_ID;
	raw.a.nla_len = 200;
	EXPECT_EQ(-EINVAL, vss_nl_call_raw(&self->nl, &raw, sizeof(raw)));

	/* A message too short for the genl header. */
	raw.nlh.nlmsg_len = NLMSG_HDRLEN + 2;
	EXPECT_NE(0, vss_nl_call_raw(&self->nl, &raw, NLMSG_HDRLEN + 2));

	/* An unknown command. */
	raw.nlh.nlmsg_len = NLMSG_HDRLEN + sizeof(raw.g);
	raw.g.cmd = VSS_CMD_MAX + 7;
	EXPECT_EQ(-EOPNOTSUPP, vss_nl_call_raw(&self->nl, &raw,
					       raw.nlh.nlmsg_len));

	/* The multicast-only command. */
	raw.g.cmd = VSS_CMD_EVENT;
	EXPECT_EQ(-EOPNOTSUPP, vss_nl_call_raw(&self->nl, &raw,
					       raw.nlh.nlmsg_len));
	EXPECT_EQ(0, still_alive(&self->nl, self->m));
}

TEST_F(nl, unknown_ids_are_enoent)
{
	uint8_t id[VSS_ID_LEN] = { 0xde, 0xad };

	if (geteuid())
		SKIP(return, "needs root");
	EXPECT_EQ(-ENOENT, vss_delete_snap(&self->nl, id, false));
	EXPECT_STREQ("no such snapshot", self->nl.errmsg);
	EXPECT_EQ(-ENOENT, vss_delete_set(&self->nl, id, false));
	EXPECT_EQ(-ENOENT, vss_snap_state(&self->nl, id, NULL));
}

TEST_F(nl, delete_needs_exactly_one_id)
{
	uint8_t id[VSS_ID_LEN] = { 1 };

	if (geteuid())
		SKIP(return, "needs root");
	vss_msg_init(&self->nl, self->m, VSS_CMD_DELETE_SNAPSHOT, 0);
	EXPECT_EQ(-EINVAL, vss_nl_call(&self->nl, self->m, NULL, NULL));
	vss_msg_init(&self->nl, self->m, VSS_CMD_DELETE_SNAPSHOT, 0);
	vss_msg_put(self->m, VSS_A_SNAP_ID, id, VSS_ID_LEN);
	vss_msg_put(self->m, VSS_A_SET_ID, id, VSS_ID_LEN);
	EXPECT_EQ(-EINVAL, vss_nl_call(&self->nl, self->m, NULL, NULL));
}

TEST_F(nl, dump_lists_snapshots)
{
	size_t len = 0;

	vss_msg_init(&self->nl, self->m, VSS_CMD_GET_SNAPSHOT, NLM_F_DUMP);
	EXPECT_EQ(0, vss_nl_call(&self->nl, self->m, self->reply, &len));
}

/* Every mutating command answers EPERM to a caller without CAP_SYS_ADMIN. */
TEST_F(nl, mutating_commands_need_cap_sys_admin)
{
	uint8_t id[VSS_ID_LEN] = { 1 };
	const char *devs[] = { "/dev/null" };

	if (!geteuid())
		SKIP(return, "run unprivileged to check the privilege checks");
	EXPECT_EQ(-EPERM, vss_create(&self->nl, devs, 1, "/tmp", 1 << 20, 0,
				     0, NULL));
	EXPECT_STREQ("CAP_SYS_ADMIN is required", self->nl.errmsg);
	EXPECT_EQ(-EPERM, vss_delete_snap(&self->nl, id, false));
	EXPECT_EQ(-EPERM, vss_delete_set(&self->nl, id, true));
	/* Reading stays open to everyone. */
	EXPECT_EQ(0, still_alive(&self->nl, self->m));
}

/*
 * Only CAP_SYS_ADMIN may join the events group: events are sent from the
 * write path, one atomic allocation per listener.
 */
TEST_F(nl, events_group_needs_cap_sys_admin)
{
	int ret = vss_subscribe_events(&self->nl);

	if (geteuid()) {
		EXPECT_EQ(-EPERM, ret) TH_LOG("an unprivileged user joined the events group");
	} else {
		EXPECT_EQ(0, ret) TH_LOG("root cannot join the events group: %s",
					 strerror(-ret));
	}
	EXPECT_EQ(0, still_alive(&self->nl, self->m));
}

TEST_HARNESS_MAIN
