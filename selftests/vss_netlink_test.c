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
#include <sys/stat.h>
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

static bool module_loaded(const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return access(path, F_OK) == 0;
}

/*
 * A device number no disk has is refused at once, and loads no driver:
 * opening it the usual way makes the block layer run modprobe for its
 * major, from inside the netlink handler. drbd and nbd register netlink
 * families of their own, and their init then waits for the lock that the
 * handler holds, for good (seen with drbd, major 147, on 6.1).
 */
TEST_F(nl, absent_device_loads_no_driver)
{
	static const struct {
		const char *module;
		unsigned int major;
	} drivers[] = { { "drbd", 147 }, { "nbd", 43 } };
	char node[] = "/tmp/vss-absent-XXXXXX";
	char loop[64] = "", cmd[96];
	struct stat st;
	dev_t origin;
	unsigned int i;
	FILE *p;
	int fd;

	if (geteuid())
		SKIP(return, "needs root: the privilege check comes first");
	/* A real origin, so that the storage is what the create opens last. */
	p = popen("modprobe loop && truncate -s 16M /tmp/vss-absent-origin && "
		  "losetup -f --show /tmp/vss-absent-origin", "r");
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, fgets(loop, sizeof(loop), p));
	pclose(p);
	loop[strcspn(loop, "\n")] = 0;
	ASSERT_EQ(0, stat(loop, &st)) TH_LOG("no loop device: '%s'", loop);
	origin = st.st_rdev;
	for (i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		dev_t dev = makedev(drivers[i].major, 0);

		if (module_loaded(drivers[i].module))
			continue;	/* it cannot show that vss loaded it */
		vss_msg_init(&self->nl, self->m, VSS_CMD_CREATE_SET, 0);
		vss_msg_nest_start(self->m, VSS_A_DEVICES);
		vss_msg_put_dev(self->m, VSS_A_DEVICE, dev);
		vss_msg_nest_end(self->m);
		vss_msg_put_str(self->m, VSS_A_STORAGE_PATH, "/tmp");
		vss_msg_put_u64(self->m, VSS_A_STORAGE_LIMIT, 16 << 20);
		EXPECT_EQ(-ENXIO, vss_nl_call(&self->nl, self->m, NULL, NULL))
			TH_LOG("create of %u:0", drivers[i].major);
		EXPECT_NE(0, self->nl.errmsg[0]);

		vss_msg_init(&self->nl, self->m, VSS_CMD_TRACK, 0);
		vss_msg_put_dev(self->m, VSS_A_DEVICE, dev);
		EXPECT_EQ(-ENXIO, vss_nl_call(&self->nl, self->m, NULL, NULL))
			TH_LOG("track of %u:0", drivers[i].major);

		/* The same device as storage, through a device node. */
		fd = mkstemp(node);
		ASSERT_LE(0, fd);
		close(fd);
		unlink(node);
		ASSERT_EQ(0, mknod(node, S_IFBLK | 0600, dev));
		vss_msg_init(&self->nl, self->m, VSS_CMD_CREATE_SET, 0);
		vss_msg_nest_start(self->m, VSS_A_DEVICES);
		vss_msg_put_dev(self->m, VSS_A_DEVICE, origin);
		vss_msg_nest_end(self->m);
		vss_msg_put_str(self->m, VSS_A_STORAGE_PATH, node);
		EXPECT_EQ(-ENXIO, vss_nl_call(&self->nl, self->m, NULL, NULL))
			TH_LOG("storage %u:0", drivers[i].major);
		EXPECT_NE(NULL, strstr(self->nl.errmsg, "names no disk"))
			TH_LOG("message: %s", self->nl.errmsg);
		unlink(node);
		memcpy(node + strlen(node) - 6, "XXXXXX", 6);

		EXPECT_FALSE(module_loaded(drivers[i].module))
			TH_LOG("vss made the kernel load %s", drivers[i].module);
	}
	snprintf(cmd, sizeof(cmd), "losetup -d %s", loop);
	EXPECT_EQ(0, system(cmd));
	unlink("/tmp/vss-absent-origin");
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
