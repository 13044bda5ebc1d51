// SPDX-License-Identifier: GPL-2.0
/*
 * libvss end to end against the simulated kernel (fake_kernel.c): the
 * requests it sends, the replies and errors it reads, and what it tells
 * its caller. Block device nodes are made with mknod in a scratch
 * directory; the library only stat()s them.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <linux/capability.h>

#include "fake_kernel.h"
#include "harness.h"
#include "libvss/internal.h"

#define TEST_MAJOR 240

static char dev_a[PATH_MAX], dev_b[PATH_MAX], dev_c[PATH_MAX], dev_a_alias[PATH_MAX];
static char store_dir[PATH_MAX], exdev_dir[PATH_MAX], plain_file[PATH_MAX];
static bool have_devices;

static void make_node(char *path, const char *name, unsigned int minor)
{
	snprintf(path, PATH_MAX, "%s/%s", t_tmpdir(), name);
	unlink(path);
	if (mknod(path, S_IFBLK | 0600, makedev(TEST_MAJOR, minor)))
		have_devices = false;
}

static void setup_files(void)
{
	FILE *f;

	have_devices = true;
	make_node(dev_a, "blk-a", 1);
	make_node(dev_b, "blk-b", 2);
	make_node(dev_c, "blk-c", 3);
	make_node(dev_a_alias, "blk-a-alias", 1);
	snprintf(store_dir, sizeof(store_dir), "%s/store", t_tmpdir());
	snprintf(exdev_dir, sizeof(exdev_dir), "%s/exdev-store", t_tmpdir());
	snprintf(plain_file, sizeof(plain_file), "%s/plain", t_tmpdir());
	mkdir(store_dir, 0700);
	mkdir(exdev_dir, 0700);
	f = fopen(plain_file, "w");
	if (f)
		fclose(f);
}

struct session {
	struct fake_kernel *k;
	struct vss_handle *h;
};

static int session_open(struct session *s, const struct fake_options *opts)
{
	int fd, err;

	s->h = NULL;
	s->k = fake_kernel_start(opts, &fd);
	err = vss_open_fd(fd, &s->h);
	if (err)
		s->h = NULL;
	return err;
}

static void session_close(struct session *s)
{
	vss_close(s->h);
	fake_kernel_stop(s->k);
}

static void add_snapshot(struct session *s, const char *id, const char *set,
			 uint32_t minor, uint32_t index, uint32_t open_count)
{
	struct fake_snapshot *snap = &s->k->state.snaps[s->k->state.count++];

	fake_snapshot_init(snap, id, set, TEST_MAJOR, minor, "blk", index);
	snap->open_count = open_count;
}

static void test_open_and_version(void)
{
	struct fake_options opts = { 0 };
	struct vss_module_version v;
	struct session s;

	t_int_eq(session_open(&s, &opts), 0, "open against the simulated module");
	t_int_eq(vss_get_version(s.h, &v), 0, "get version");
	t_str_eq(v.version, "0.3.0-fake", "module version");
	t_int_eq(v.protocol, VSS_PROTOCOL_VERSION, "module protocol");
	t_int_eq(v.family_version, VSS_GENL_VERSION, "family version");
	t_int_eq(s.h->events_group, FAKE_EVENTS_GROUP, "events group resolved");
	session_close(&s);

	opts.no_family = true;
	t_int_eq(session_open(&s, &opts), -LIBVSS_ENOMODULE,
		 "unregistered family: module not loaded");
	t_ok(s.h == NULL, "no handle when the module is missing");
	session_close(&s);
	t_str_eq(vss_strerror(-LIBVSS_ENOMODULE), "the vss kernel module is not loaded",
		 "strerror of the module code");

	opts.no_family = false;
	opts.protocol = VSS_PROTOCOL_VERSION + 1;
	t_int_eq(session_open(&s, &opts), 0, "open works against another protocol");
	t_ok(vss_get_version(s.h, &v) == 0 && v.protocol == VSS_PROTOCOL_VERSION + 1,
	     "its version can still be read");
	{
		struct vss_snapshot_info *snaps;
		size_t n;

		t_int_eq(vss_list_snapshots(s.h, NULL, &snaps, &n), -LIBVSS_EPROTOCOL,
			 "requests refused on a protocol mismatch");
		t_contains(vss_last_error_message(s.h), "protocol 2",
			   "the mismatch is explained");
		t_int_eq(s.k->state.requests, 1, "only GET_VERSION reached the module");
	}
	session_close(&s);
}

static void test_create(void)
{
	const char *two[] = { dev_a, dev_b };
	struct vss_create_params p = {
		.devices = two, .device_count = 2, .storage_path = "store",
		.storage_limit = UINT64_C(1) << 30, .chunk_size = 128 * 1024,
		.label = "nightly", .flags = VSS_CREATE_NO_FREEZE, .hold_limit_ms = 5000,
	};
	struct fake_options opts = { .busy_major = TEST_MAJOR, .busy_minor = 3 };
	struct vss_create_result set;
	const struct fake_create_request *rq;
	char cwd[PATH_MAX], want[PATH_MAX];
	struct session s;
	uint32_t before;

	if (!have_devices) {
		t_skip("mknod not permitted", "create tests");
		return;
	}
	session_open(&s, &opts);
	rq = &s.k->state.last_create;
	if (!getcwd(cwd, sizeof(cwd)) || chdir(t_tmpdir()))
		abort();
	t_int_eq(vss_create_set(s.h, &p, &set), 0, "create a set of two devices");
	if (chdir(cwd))
		abort();
	if (!realpath(store_dir, want))
		abort();
	t_int_eq(rq->device_count, 2, "two device nests sent");
	t_ok(rq->majors[0] == TEST_MAJOR && rq->minors[0] == 1 && rq->minors[1] == 2,
	     "devices sent by number, in order");
	t_str_eq(rq->storage_path, want, "relative storage path sent absolute");
	t_ok(rq->has_limit && rq->storage_limit == UINT64_C(1) << 30, "limit sent");
	t_ok(rq->has_chunk && rq->chunk_size == 128 * 1024, "chunk size sent");
	t_ok(rq->has_flags && rq->flags == VSS_CREATE_NO_FREEZE, "flags sent");
	t_ok(rq->has_hold && rq->hold_limit_ms == 5000, "hold limit sent");
	t_ok(rq->has_label && !strcmp(rq->label, "nightly"), "label sent");
	t_int_eq((long long)set.snapshot_count, 2, "two snapshots returned");
	t_int_eq((long long)set.hold_us, 1234, "hold_us returned");
	t_ok(set.snapshot_count == 2 && vss_id_equal(&set.snapshots[0].set_id, &set.set_id) &&
	     set.snapshots[1].origin.minor == 2 && !strcmp(set.snapshots[0].image.name, "vss0"),
	     "snapshots describe the set");
	vss_create_result_free(&set);
	t_ok(set.snapshots == NULL && set.snapshot_count == 0, "result cleared on free");

	p.storage_path = store_dir;
	p.label = NULL;
	p.chunk_size = 0;
	p.flags = 0;
	p.hold_limit_ms = 0;
	t_int_eq(vss_create_set(s.h, &p, &set), 0, "create with defaults");
	t_ok(!rq->has_chunk && !rq->has_flags && !rq->has_hold && !rq->has_label,
	     "defaults are left to the module");
	t_ok(set.snapshot_count == 2 && set.snapshots[0].index == 2,
	     "index counts up per origin");
	vss_create_result_free(&set);

	/* Rejected by the module, blamed on one attribute. */
	{
		const char *with_busy[] = { dev_a, dev_c };

		p.devices = with_busy;
		t_int_eq(vss_create_set(s.h, &p, &set), -EBUSY, "busy device: EBUSY");
		t_str_eq(vss_last_error_object(s.h), dev_c,
			 "the busy device is named as the caller wrote it");
		t_str_eq(vss_last_error_message(s.h),
			 "device is already in a snapshot set being created",
			 "the module's message is kept");
		t_int_eq(vss_last_error_attr(s.h), VSS_A_DEVICE, "blamed attribute");
		t_ok(set.snapshots == NULL, "nothing returned on failure");
		p.devices = two;
	}
	p.storage_path = exdev_dir;
	t_int_eq(vss_create_set(s.h, &p, &set), -EXDEV, "storage on the set: EXDEV");
	t_str_eq(vss_last_error_object(s.h), exdev_dir, "the storage is named");
	p.storage_path = store_dir;

	/* Rejected by the library: the module never hears of them. */
	before = s.k->state.requests;
	{
		const char *not_block[] = { dev_a, plain_file };
		const char *missing[] = { "/nonexistent/dev" };
		const char *twice[] = { dev_a, dev_a_alias };
		const char *none[] = { NULL };
		const char *many[VSS_MAX_SET_DEVICES + 1];
		size_t i;

		p.devices = not_block;
		t_int_eq(vss_create_set(s.h, &p, &set), -ENOTBLK, "regular file: ENOTBLK");
		t_str_eq(vss_last_error_object(s.h), plain_file, "... naming it");
		p.devices = missing;
		p.device_count = 1;
		t_int_eq(vss_create_set(s.h, &p, &set), -ENOENT, "missing device: ENOENT");
		t_str_eq(vss_last_error_object(s.h), "/nonexistent/dev", "... naming it");
		p.devices = twice;
		p.device_count = 2;
		t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "same device twice: EINVAL");
		t_str_eq(vss_last_error_object(s.h), dev_a_alias, "... naming the second path");
		p.devices = none;
		p.device_count = 1;
		t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "NULL device path: EINVAL");
		for (i = 0; i <= VSS_MAX_SET_DEVICES; i++)
			many[i] = dev_a;
		p.devices = many;
		p.device_count = VSS_MAX_SET_DEVICES + 1;
		t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "65 devices: EINVAL");
		p.device_count = 0;
		t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "no device: EINVAL");
		p.devices = two;
		p.device_count = 2;
	}
	p.chunk_size = 3000;
	t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "chunk size not a power of two");
	p.chunk_size = 2 * VSS_MAX_CHUNK_SIZE;
	t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "chunk size too large");
	p.chunk_size = 0;
	p.label = "0123456789012345678901234567890123456789012345678901234567890123";
	t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "64-byte label refused");
	p.label = NULL;
	p.hold_limit_ms = VSS_MAX_HOLD_LIMIT_MS + 1;
	t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "hold limit too large");
	p.hold_limit_ms = 0;
	p.flags = 0x80;
	t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "unknown flag refused");
	p.flags = 0;
	p.storage_limit = 0;
	t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "directory without a limit");
	t_contains(vss_last_error_message(s.h), "needs a storage limit", "... explained");
	p.storage_limit = 1 << 20;
	p.storage_path = "/nonexistent/store";
	t_int_eq(vss_create_set(s.h, &p, &set), -ENOENT, "missing storage: ENOENT");
	t_str_eq(vss_last_error_object(s.h), "/nonexistent/store", "... naming it");
	p.storage_path = "/dev/null";
	t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "character device storage refused");
	p.storage_path = NULL;
	t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "no storage refused");
	p.storage_path = store_dir;
	/* The size member (libvss.h, ABI rules). */
	p.size = offsetof(struct vss_create_params, hold_limit_ms);
	t_int_eq(vss_create_set(s.h, &p, &set), -EINVAL, "a size below that of 3.0 refused");
	t_contains(vss_last_error_message(s.h), "smaller than any version", "... explained");
	{
		/* A caller built against a later libvss, with one more member. */
		struct {
			struct vss_create_params known;
			uint64_t later_member;
		} newer = { .known = p };

		newer.known.size = sizeof(newer);
		newer.later_member = 1;
		t_int_eq(vss_create_set(s.h, &newer.known, &set), -E2BIG,
			 "an unknown member that is set: E2BIG");
		t_contains(vss_last_error_message(s.h), "members this libvss", "... explained");
		t_int_eq(s.k->state.requests, before, "none of these reached the module");
		newer.later_member = 0;
		t_int_eq(vss_create_set(s.h, &newer.known, &set), 0,
			 "unknown members left zero are their default");
		vss_create_result_free(&set);
	}
	p.size = sizeof(p);
	t_int_eq(vss_create_set(s.h, &p, &set), 0, "size of this header accepted");
	vss_create_result_free(&set);
	{
		struct vss_create_params init = VSS_CREATE_PARAMS_INIT;

		t_int_eq((long long)init.size, (long long)sizeof(init),
			 "VSS_CREATE_PARAMS_INIT sets the size");
	}
	p.size = 0;
	session_close(&s);

	opts.deny = true;
	session_open(&s, &opts);
	p.storage_path = store_dir;
	t_int_eq(vss_create_set(s.h, &p, &set), -EPERM, "unprivileged: EPERM");
	t_ok(!vss_last_error_object(s.h) && !vss_last_error_message(s.h),
	     "EPERM blames nothing in particular");
	session_close(&s);
}

static void test_create_without_reply(void)
{
	const char *two[] = { dev_a, dev_b };
	struct vss_create_params p = {
		.devices = two, .device_count = 2, .storage_path = store_dir,
		.storage_limit = 1 << 20,
	};
	struct fake_options opts = { .create_without_reply = true };
	struct vss_create_result set;
	struct session s;

	if (!have_devices) {
		t_skip("mknod not permitted", "create acknowledged without reply");
		return;
	}
	session_open(&s, &opts);
	add_snapshot(&s, "a1000000-0000-4000-8000-000000000001",
		     "5e000000-0000-4000-8000-00000000000a", 1, 1, 0);
	t_int_eq(vss_create_set(s.h, &p, &set), 0,
		 "a set acknowledged without reply is found by listing");
	t_ok(set.snapshot_count == 2 && set.snapshots[0].set_id.bytes[0] == 0x5e &&
	     vss_id_equal(&set.snapshots[0].set_id, &set.set_id) &&
	     vss_id_equal(&set.snapshots[1].set_id, &set.set_id) &&
	     set.snapshots[0].storage_path && set.snapshots[1].storage_path,
	     "... with both snapshots, not the older one");
	vss_create_result_free(&set);
	session_close(&s);
}

static void test_privilege_check(void)
{
	int status = -1;
	pid_t pid = fork();

	if (pid == 0) {
		struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
		struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

		if (syscall(SYS_capget, &hdr, data))
			_exit(2);
		if (vss_check_privilege() != 0)
			_exit(3);
		data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
		if (syscall(SYS_capset, &hdr, data))
			_exit(2);
		_exit(vss_check_privilege() == -EPERM ? 0 : 4);
	}
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		t_skip("capabilities cannot be changed here", "privilege check");
	else
		t_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		     "vss_check_privilege: 0 with CAP_SYS_ADMIN, -EPERM without");
}

static void test_list_get_resolve(void)
{
	struct fake_options opts = { 0 };
	struct vss_snapshot_info *snaps, info;
	struct vss_id id;
	struct session s;
	size_t n;

	session_open(&s, &opts);
	add_snapshot(&s, "3f2a1b2c-0000-4000-8000-000000000001",
		     "5e000000-0000-4000-8000-00000000000a", 2, 2, 0);
	add_snapshot(&s, "3f2a9999-0000-4000-8000-000000000002",
		     "5e000000-0000-4000-8000-00000000000a", 1, 1, 0);
	add_snapshot(&s, "7b000000-0000-4000-8000-000000000003",
		     "5eb00000-0000-4000-8000-00000000000b", 2, 1, 1);

	t_int_eq(vss_list_snapshots(s.h, NULL, &snaps, &n), 0, "list all");
	t_int_eq((long long)n, 3, "three snapshots");
	t_ok(n == 3 && snaps[0].origin.minor == 1 && snaps[1].origin.minor == 2 &&
	     snaps[1].index == 1 && snaps[2].index == 2, "sorted by origin and index");
	t_ok(n == 3 && !strcmp(snaps[0].storage_path, "/var/lib/vss") &&
	     snaps[0].storage_limit == UINT64_C(1) << 30 && snaps[0].chunk_size == 65536,
	     "fields read");
	vss_snapshot_info_array_free(snaps, n);

	if (have_devices) {
		t_int_eq(vss_list_snapshots(s.h, dev_b, &snaps, &n), 0, "list one origin");
		t_ok(n == 2 && snaps[0].origin.minor == 2 && snaps[1].origin.minor == 2,
		     "only that origin's snapshots");
		vss_snapshot_info_array_free(snaps, n);
	} else {
		t_skip("mknod not permitted", "list one origin");
	}
	t_int_eq(vss_list_snapshots(s.h, "/nonexistent", &snaps, &n), -ENOENT,
		 "list of a missing device");
	t_str_eq(vss_last_error_object(s.h), "/nonexistent", "... names it");
	t_int_eq(vss_list_snapshots(s.h, "/dev/null", &snaps, &n), -ENOTBLK,
		 "list of a character device");

	t_int_eq(vss_resolve_snapshot_id(s.h, "7b", &id), 0, "unique prefix resolves");
	t_int_eq(id.bytes[15], 3, "... to the right snapshot");
	t_int_eq(vss_resolve_snapshot_id(s.h, "3F2A-", &id), -EINVAL,
		 "misplaced dash is no prefix");
	t_int_eq(vss_resolve_snapshot_id(s.h, "3f2a", &id), -LIBVSS_EAMBIGUOUS,
		 "ambiguous prefix");
	t_contains(vss_last_error_message(s.h),
		   "matches 3f2a9999-0000-4000-8000-000000000002 and "
		   "3f2a1b2c-0000-4000-8000-000000000001",
		   "ambiguity names two candidates");
	t_str_eq(vss_last_error_object(s.h), "3f2a", "... and the prefix");
	t_int_eq(vss_resolve_snapshot_id(s.h, "ff", &id), -ENOENT, "unknown prefix");
	t_str_eq(vss_last_error_message(s.h), "no such snapshot", "... no such snapshot");
	t_int_eq(vss_resolve_set_id(s.h, "5e0", &id), 0,
		 "a set prefix matching two snapshots of one set is unique");
	t_int_eq(vss_resolve_set_id(s.h, "5e", &id), -LIBVSS_EAMBIGUOUS,
		 "a set prefix matching two sets is ambiguous");

	t_int_eq(vss_resolve_snapshot_id(s.h, "3f2a1b2c", &id), 0, "resolve for get");
	t_int_eq(vss_get_snapshot(s.h, &id, &info), 0, "get one snapshot");
	t_ok(info.origin.minor == 2 && info.index == 2 && !strcmp(info.image.name, "vss2"),
	     "got the right one");
	vss_snapshot_info_clear(&info);
	vss_id_parse("00000000-0000-4000-8000-000000000000", &id);
	t_int_eq(vss_get_snapshot(s.h, &id, &info), -ENOENT, "get unknown id: ENOENT");
	t_str_eq(vss_last_error_object(s.h), "00000000-0000-4000-8000-000000000000",
		 "... naming the id");
	t_str_eq(vss_last_error_message(s.h), "no such snapshot", "... with the message");
	session_close(&s);

	opts.dump_error = true;
	session_open(&s, &opts);
	add_snapshot(&s, "3f2a1b2c-0000-4000-8000-000000000001",
		     "5e000000-0000-4000-8000-00000000000a", 2, 1, 0);
	t_int_eq(vss_list_snapshots(s.h, NULL, &snaps, &n), -ENOBUFS,
		 "error in NLMSG_DONE fails the dump");
	t_ok(snaps == NULL && n == 0, "... returning nothing");
	t_str_eq(vss_last_error_message(s.h), "dump failed half way", "... with its message");
	t_int_eq(vss_get_snapshot(s.h, &id, &info), -ENOENT,
		 "the socket is usable after a failed dump");
	session_close(&s);

	opts.dump_error = false;
	opts.dump_interrupt_once = true;
	session_open(&s, &opts);
	add_snapshot(&s, "3f2a1b2c-0000-4000-8000-000000000001",
		     "5e000000-0000-4000-8000-00000000000a", 2, 1, 0);
	t_int_eq(vss_list_snapshots(s.h, NULL, &snaps, &n), 0,
		 "an interrupted dump is retried");
	t_int_eq((long long)n, 1, "... and complete");
	vss_snapshot_info_array_free(snaps, n);
	session_close(&s);
}

struct progress {
	int calls;
	int failures;
	char last_message[64];
};

static void on_progress(const struct vss_snapshot_info *snap, int err,
			const char *message, void *arg)
{
	struct progress *p = arg;

	(void)snap;
	p->calls++;
	if (err) {
		p->failures++;
		snprintf(p->last_message, sizeof(p->last_message), "%s",
			 message ? message : "");
	}
}

static void test_delete(void)
{
	struct fake_options opts = { 0 };
	struct progress progress = { 0 };
	struct vss_id id, deleted;
	struct session s;
	size_t count;

	session_open(&s, &opts);
	add_snapshot(&s, "a1000000-0000-4000-8000-000000000001",
		     "5e000000-0000-4000-8000-00000000000a", 1, 1, 0);
	add_snapshot(&s, "a2000000-0000-4000-8000-000000000002",
		     "5e000000-0000-4000-8000-00000000000a", 2, 1, 1);
	add_snapshot(&s, "a3000000-0000-4000-8000-000000000003",
		     "5eb00000-0000-4000-8000-00000000000b", 1, 2, 0);
	add_snapshot(&s, "a4000000-0000-4000-8000-000000000004",
		     "5ec00000-0000-4000-8000-00000000000c", 3, 1, 0);

	vss_id_parse("a2000000-0000-4000-8000-000000000002", &id);
	t_int_eq(vss_delete_snapshot(s.h, &id, 0), -EBUSY, "open image: EBUSY");
	t_str_eq(vss_last_error_object(s.h), "a2000000-0000-4000-8000-000000000002",
		 "... naming the snapshot");
	t_int_eq(s.k->state.count, 4, "... and nothing deleted");
	t_int_eq(vss_delete_snapshot(s.h, &id, 0x10), -EINVAL, "unknown flag refused");
	t_int_eq(vss_delete_snapshot(s.h, &id, VSS_DELETE_FORCE), 0, "forced delete");
	t_int_eq(s.k->state.last_delete_flags, VSS_DELETE_FORCE, "force flag sent");
	t_int_eq(vss_delete_snapshot(s.h, &id, 0), -ENOENT, "deleted twice: ENOENT");

	if (have_devices) {
		t_int_eq(vss_delete_oldest(s.h, dev_a, 0, &deleted), 0, "delete oldest of a");
		t_int_eq(deleted.bytes[0], 0xa1, "... the one with the lowest index");
		t_int_eq(vss_delete_oldest(s.h, dev_b, 0, &deleted), -ENOENT,
			 "no snapshot left on b");
		t_str_eq(vss_last_error_object(s.h), dev_b, "... naming b");
	} else {
		t_skip("mknod not permitted", "delete oldest");
		vss_id_parse("a1000000-0000-4000-8000-000000000001", &id);
		vss_delete_snapshot(s.h, &id, 0);
	}

	vss_id_parse("5eb00000-0000-4000-8000-00000000000b", &id);
	t_int_eq(vss_delete_set(s.h, &id, 0), 0, "delete a set");
	t_int_eq(vss_delete_set(s.h, &id, 0), -ENOENT, "delete the set again: ENOENT");
	t_str_eq(vss_last_error_message(s.h), "no such snapshot set", "... with the message");
	t_int_eq(s.k->state.count, 1, "one snapshot left");

	s.k->state.snaps[0].open_count = 2;
	add_snapshot(&s, "a5000000-0000-4000-8000-000000000005",
		     "5ed00000-0000-4000-8000-00000000000d", 1, 3, 0);
	t_int_eq(vss_delete_all(s.h, 0, on_progress, &progress, &count), -EBUSY,
		 "delete all with an open image fails with EBUSY");
	t_int_eq((long long)count, 1, "... after deleting the others");
	t_ok(progress.calls == 2 && progress.failures == 1, "progress told of each");
	t_int_eq(vss_last_error(s.h), -EBUSY, "last error is the first failure");
	t_int_eq(vss_delete_all(s.h, VSS_DELETE_FORCE, NULL, NULL, &count), 0,
		 "forced delete all");
	t_int_eq((long long)count, 1, "... deleted the last one");
	t_int_eq(vss_delete_all(s.h, 0, NULL, NULL, &count), 0, "delete all of nothing");
	t_int_eq((long long)count, 0, "... deletes nothing");
	session_close(&s);
}

static void test_events(void)
{
	struct fake_options opts = { 0 };
	struct fake_snapshot about;
	struct vss_event_info ev;
	struct session s;

	session_open(&s, &opts);
	t_int_eq(vss_event_fd(s.h), -EBADF, "no event fd before subscribing");
	t_int_eq(vss_event_next(s.h, &ev, 0), -EBADF, "no events before subscribing");
	t_int_eq(vss_event_attach_fd(s.h, fake_kernel_event_socket(s.k)), 0,
		 "event socket attached");
	t_ok(vss_event_fd(s.h) >= 0, "event fd to poll");
	t_int_eq(vss_event_next(s.h, &ev, 0), -ETIMEDOUT, "nothing yet (no wait)");
	t_int_eq(vss_event_next(s.h, &ev, 50), -ETIMEDOUT, "nothing yet (50 ms)");

	fake_snapshot_init(&about, "c0000000-0000-4000-8000-000000000001",
			   "5e000000-0000-4000-8000-000000000001", TEST_MAJOR, 7, "blk7", 1);
	about.storage_used = 900;
	about.storage_limit = 1000;
	fake_kernel_send_event(s.k, VSS_EVENT_SNAPSHOT_FAILED, &about, ENOSPC,
			       "storage full", false);
	fake_kernel_send_event(s.k, VSS_EVENT_STORAGE_LOW, &about, 0, NULL, true);
	fake_kernel_send_event(s.k, 99, NULL, 0, NULL, false);

	t_int_eq(vss_event_next(s.h, &ev, 1000), 0, "first event");
	t_ok(ev.type == VSS_EVENT_SNAPSHOT_FAILED && ev.error == ENOSPC &&
	     !strcmp(ev.reason, "storage full") && ev.origin.minor == 7 &&
	     !strcmp(ev.origin.name, "blk7") && ev.snap_id.bytes[0] == 0xc0,
	     "failure event decoded");
	t_ok((ev.present & (VSS_EVENT_HAS_ERROR | VSS_EVENT_HAS_SNAP_ID)) ==
	     (VSS_EVENT_HAS_ERROR | VSS_EVENT_HAS_SNAP_ID) &&
	     !(ev.present & VSS_EVENT_HAS_STORAGE), "present flags of the failure");
	t_ok(ev.received_ns > UINT64_C(1600000000) * 1000000000u, "reception time set");
	t_int_eq(vss_event_next(s.h, &ev, 1000), 0, "second event");
	t_ok(ev.type == VSS_EVENT_STORAGE_LOW && ev.storage_used == 900 &&
	     ev.storage_limit == 1000 && (ev.present & VSS_EVENT_HAS_STORAGE),
	     "storage event decoded");
	t_int_eq(vss_event_next(s.h, &ev, 1000), 0, "an unknown event type still arrives");
	t_str_eq(vss_event_name(ev.type), "unknown", "... named unknown");

	if (have_devices) {
		const char *one[] = { dev_a };
		struct vss_create_params p = {
			.devices = one, .device_count = 1, .storage_path = store_dir,
			.storage_limit = 1 << 20,
		};
		struct vss_create_result set;

		vss_create_set(s.h, &p, &set);
		vss_create_result_free(&set);
	} else {
		fake_kernel_send_event(s.k, VSS_EVENT_SNAPSHOT_CREATED, &about, 0, NULL,
				       false);
	}
	fake_kernel_send_event(s.k, VSS_EVENT_ORIGIN_REMOVED, &about, 0, NULL, false);
	t_int_eq(vss_event_next(s.h, &ev, 1000), 0, "event of the creation");
	t_int_eq(ev.type, VSS_EVENT_SNAPSHOT_CREATED, "... snapshot-created");
	t_int_eq(vss_event_next(s.h, &ev, 1000), 0, "next event");
	t_int_eq(ev.type, VSS_EVENT_ORIGIN_REMOVED, "... origin-removed");
	t_int_eq(vss_event_next(s.h, &ev, 0), -ETIMEDOUT, "then nothing");
	session_close(&s);
}

static int count_event(const struct vss_event_info *ev, void *arg)
{
	uint32_t *types = arg;

	types[types[0] + 1] = ev->type;
	types[0]++;
	return types[0] == 2;	/* stop after two */
}

static void test_dispatch(void)
{
	struct fake_options opts = { 0 };
	struct fake_snapshot about;
	uint32_t types[8] = { 0 };
	struct vss_event_info ev;
	struct session s;

	session_open(&s, &opts);
	vss_event_attach_fd(s.h, fake_kernel_event_socket(s.k));
	fake_snapshot_init(&about, "c0000000-0000-4000-8000-000000000001",
			   "5e000000-0000-4000-8000-000000000001", TEST_MAJOR, 7, "blk7", 1);
	t_int_eq(vss_event_dispatch(s.h, count_event, types), 0, "dispatch with nothing ready");
	fake_kernel_send_event(s.k, VSS_EVENT_SNAPSHOT_CREATED, &about, 0, NULL, false);
	fake_kernel_send_event(s.k, VSS_EVENT_SNAPSHOT_DELETED, &about, 0, NULL, false);
	fake_kernel_send_event(s.k, VSS_EVENT_ORIGIN_REMOVED, &about, 0, NULL, false);
	t_int_eq(vss_event_dispatch(s.h, count_event, types), 2,
		 "dispatch stops when the callback asks");
	t_ok(types[1] == VSS_EVENT_SNAPSHOT_CREATED && types[2] == VSS_EVENT_SNAPSHOT_DELETED,
	     "in order");
	t_int_eq(vss_event_next(s.h, &ev, 1000), 0, "the rest is still there");
	t_int_eq(ev.type, VSS_EVENT_ORIGIN_REMOVED, "... the third event");
	session_close(&s);
}

int main(void)
{
	setup_files();
	test_open_and_version();
	test_create();
	test_create_without_reply();
	test_privilege_check();
	test_list_get_resolve();
	test_delete();
	test_events();
	test_dispatch();
	return t_done();
}
