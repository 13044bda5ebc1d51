// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl as a user runs it. The real binaries (VSSCTL_BIN, and the
 * sanitized VSSCTL_SAN_BIN) run on this host, where the vss family is not
 * registered: they must say the module is not loaded and exit 3. The same
 * tool linked against the simulated kernel (VSSCTL_FAKE_BIN) goes through
 * create, list, show, delete and monitor, with its state in a file.
 */
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "fake_kernel.h"
#include "harness.h"

#define TEST_MAJOR 240

static char dev_a[PATH_MAX], dev_b[PATH_MAX], dev_c[PATH_MAX], dev_d[PATH_MAX];
static char store[PATH_MAX], exdev_store[PATH_MAX], state_file[PATH_MAX];
static char env_state[PATH_MAX + 32], env_default_dir[PATH_MAX + 32];
static char root[PATH_MAX / 2], env_root[PATH_MAX];
static char default_dir[PATH_MAX];
static bool have_devices = true;

struct result {
	int code;
	char *out;
	char *err;
};

static void result_free(struct result *r)
{
	free(r->out);
	free(r->err);
}

/* Runs @bin with up to 12 arguments and extra environment. */
static struct result run(const char *bin, const char *const *env, const char *a0, ...)
{
	const char *argv[16] = { bin };
	struct result r;
	va_list ap;
	int i = 1;

	va_start(ap, a0);
	for (const char *a = a0; a && i < 15; a = va_arg(ap, const char *))
		argv[i++] = a;
	va_end(ap);
	argv[i] = NULL;
	r.code = t_run(argv, env, &r.out, &r.err);
	return r;
}

/* Runs a command whose outcome does not matter. */
static void run_quiet(const char *bin, const char *const *env, const char *a0,
		      const char *a1)
{
	struct result r = run(bin, env, a0, a1, NULL);

	result_free(&r);
}

static void expect(struct result r, int code, const char *out_part, const char *err_part,
		   const char *what)
{
	if (!t_ok(r.code == code && (!out_part || strstr(r.out, out_part)) &&
		  (!err_part || strstr(r.err, err_part)), "%s", what)) {
		t_diag("exit %d (want %d)", r.code, code);
		t_diag("stdout: %s", r.out);
		t_diag("stderr: %s", r.err);
	}
	result_free(&r);
}

static void test_host_binary(const char *bin, const char *label)
{
	const char *const no_env[] = { NULL };
	struct json_object *obj, *v;
	struct result r;

	r = run(bin, no_env, "version", NULL);
	t_int_eq(r.code, 3, "version without the module exits 3");
	t_ok(strstr(r.out, "vssctl 0.4") && strstr(r.out, "libvss 0.4") &&
	     strstr(r.out, "(protocol 1)"), "version still prints the tool and library");
	t_str_eq(r.err, "vssctl: the vss kernel module is not loaded (modprobe vss)\n",
		 "version says the module is not loaded");
	result_free(&r);

	r = run(bin, no_env, "--json", "version", NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 3 && obj && json_object_object_get_ex(obj, "module", &v) && !v &&
	     json_object_object_get_ex(obj, "vssctl", &v) && json_object_is_type(v, json_type_string),
	     "version --json: module null, exit 3");
	json_object_put(obj);
	result_free(&r);

	expect(run(bin, no_env, "list", NULL), 3,
	       "", "vssctl: the vss kernel module is not loaded (modprobe vss)\n",
	       "list without the module exits 3");
	expect(run(bin, no_env, "show", "3f2a", NULL), 3, NULL, "not loaded", "show: exit 3");
	expect(run(bin, no_env, "delete", "--all", NULL), 3, NULL, "not loaded", "delete: exit 3");
	expect(run(bin, no_env, "monitor", "--count", "1", NULL), 3, NULL, "not loaded",
	       "monitor: exit 3");

	expect(run(bin, no_env, NULL), 2, NULL, "Usage:", "no command: usage, exit 2");
	expect(run(bin, no_env, "frobnicate", NULL), 2, NULL,
	       "vssctl: unknown command 'frobnicate'", "unknown command: exit 2");
	expect(run(bin, no_env, "--frob", NULL), 2, NULL, "unknown option '--frob'",
	       "unknown global option: exit 2");
	expect(run(bin, no_env, "--help", NULL), 0, "vssctl create", NULL, "--help: exit 0");
	expect(run(bin, no_env, "-V", NULL), 0, "vssctl 0.4", NULL, "-V: exit 0");
	expect(run(bin, no_env, "create", "--help", NULL), 0, "--storage-limit", NULL,
	       "create --help");
	expect(run(bin, no_env, "exec", "--help", NULL), 0, "--idle", NULL,
	       "exec --help names --idle");
	expect(run(bin, no_env, "exec", "--idle", NULL), 2, NULL, "no COMMAND: give it after --",
	       "exec --idle is an option: without COMMAND, exit 2");
	expect(run(bin, no_env, "exec", "--idle=yes", "--", "true", NULL), 2, NULL,
	       "unknown option '--idle=yes'", "exec --idle=yes: exit 2");
	expect(run(bin, no_env, "create", NULL), 2, NULL, "create: no device given",
	       "create without device: exit 2");
	expect(run(bin, no_env, "create", "--chunk-size", "12Q", "vdb", NULL), 2, NULL,
	       "invalid chunk size '12Q'", "bad chunk size: exit 2");
	expect(run(bin, no_env, "create", "--chunk-size", "3K", "vdb", NULL), 2, NULL,
	       "power of two", "chunk size not a power of two: exit 2");
	expect(run(bin, no_env, "create", "--storage-limit", "1.5G", "vdb", NULL), 2, NULL,
	       "invalid storage limit '1.5G'", "fractional limit: exit 2");
	expect(run(bin, no_env, "create", "--hold-limit", "60001", "vdb", NULL), 2, NULL,
	       "invalid hold limit", "hold limit too large: exit 2");
	expect(run(bin, no_env, "create", "--label",
		   "0123456789012345678901234567890123456789012345678901234567890123", "vdb",
		   NULL), 2, NULL, "label longer than 63 bytes", "label too long: exit 2");
	expect(run(bin, no_env, "create", "--storage", NULL), 2, NULL,
	       "option '--storage' needs an argument", "missing option argument: exit 2");
	expect(run(bin, no_env, "create", "/dev/null", NULL), 2, NULL,
	       "vssctl: /dev/null: not a block device", "character device: exit 2");
	expect(run(bin, no_env, "create", "/nonexistent/vdx", NULL), 5, NULL,
	       "vssctl: /nonexistent/vdx: no such device", "missing device: exit 5");
	expect(run(bin, no_env, "list", "a", "b", NULL), 2, NULL, "unexpected argument 'b'",
	       "list with two devices: exit 2");
	expect(run(bin, no_env, "show", NULL), 2, NULL, "no snapshot id given",
	       "show without id: exit 2");
	expect(run(bin, no_env, "show", "xyz", NULL), 2, NULL, "'xyz' is not a snapshot id",
	       "show with a non-hex id: exit 2");
	expect(run(bin, no_env, "delete", NULL), 2, NULL, "say what to delete",
	       "delete without target: exit 2");
	expect(run(bin, no_env, "delete", "--all", "3f2a", NULL), 2, NULL, "only one of",
	       "delete with two targets: exit 2");
	expect(run(bin, no_env, "monitor", "--timeout", "0", NULL), 2, NULL,
	       "invalid timeout", "monitor timeout 0: exit 2");
	expect(run(bin, no_env, "monitor", "--count", "-1", NULL), 2, NULL,
	       "invalid count", "monitor negative count: exit 2");
	expect(run(bin, no_env, "cbt", "info", NULL), 3, NULL, "not loaded",
	       "cbt info: exit 3");
	expect(run(bin, no_env, "cbt", NULL), 2, NULL, "say what to do", "cbt alone: exit 2");
	expect(run(bin, no_env, "cbt", "mark-dirty", "vdb", "0", "0", NULL), 2, NULL,
	       "the length must not be zero", "mark-dirty zero length: exit 2");
	expect(run(bin, no_env, "cbt", "changes", "vdb", "--from", "3f2a:1", NULL), 2, NULL,
	       "invalid point '3f2a:1'", "changes from a bad point: exit 2");
	expect(run(bin, no_env, "track", NULL), 2, NULL, "no device given",
	       "track without device: exit 2");
	expect(run(bin, no_env, "--help", NULL), 0, "vssctl cbt restore", NULL,
	       "--help lists the tracking commands");
	expect(run(bin, no_env, "--help", NULL), 0, "9 full backup required, 10 already tracked",
	       NULL, "--help lists the new exit codes");
	t_diag("(%s done)", label);
}

static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static void make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t i;

	snprintf(buf, sizeof(buf), "%s", path);
	for (i = 1; buf[i]; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		mkdir(buf, 0755);
		buf[i] = '/';
	}
	mkdir(buf, 0755);
}

/*
 * What the library reads of /proc and /sys, for the simulated disks
 * fake1..fake3 (TEST_MAJOR:1..3): the module's boot id, and the kernel
 * name of each device number.
 */
static void setup_root(const char *dir)
{
	char path[PATH_MAX], target[PATH_MAX], text[64];
	unsigned int minor;

	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(env_root, sizeof(env_root), "FAKE_VSS_ROOT=%s", root);
	snprintf(path, sizeof(path), "%s/proc/sys/kernel/random", root);
	make_dirs(path);
	snprintf(path, sizeof(path), "%s/proc/sys/kernel/random/boot_id", root);
	put_file(path, FAKE_BOOT_ID "\n");
	snprintf(path, sizeof(path), "%s/sys/dev/block", root);
	make_dirs(path);
	snprintf(path, sizeof(path), "%s/sys/class/block", root);
	make_dirs(path);
	for (minor = 1; minor <= 3; minor++) {
		snprintf(path, sizeof(path), "%s/sys/devices/virtual/block/fake%u", root, minor);
		make_dirs(path);
		snprintf(path, sizeof(path), "%s/sys/devices/virtual/block/fake%u/dev", root,
			 minor);
		snprintf(text, sizeof(text), "%u:%u\n", TEST_MAJOR, minor);
		put_file(path, text);
		snprintf(target, sizeof(target), "../../devices/virtual/block/fake%u", minor);
		snprintf(path, sizeof(path), "%s/sys/dev/block/%u:%u", root, TEST_MAJOR, minor);
		if (symlink(target, path))
			abort();
		snprintf(path, sizeof(path), "%s/sys/class/block/fake%u", root, minor);
		if (symlink(target, path))
			abort();
	}
}

#define OTHER_BOOT_ID	"b0070000-0000-4000-8000-0000000000ff"

static void set_root_boot_id(const char *id)
{
	char path[PATH_MAX], text[64];

	snprintf(path, sizeof(path), "%s/proc/sys/kernel/random/boot_id", root);
	snprintf(text, sizeof(text), "%s\n", id);
	put_file(path, text);
}

static void setup(void)
{
	const char *dir = t_tmpdir();

	snprintf(dev_a, sizeof(dev_a), "%s/blk-a", dir);
	snprintf(dev_b, sizeof(dev_b), "%s/blk-b", dir);
	snprintf(dev_c, sizeof(dev_c), "%s/blk-c", dir);
	/* No sysfs entry in the fake tree: a device that is gone after a reboot. */
	snprintf(dev_d, sizeof(dev_d), "%s/blk-d", dir);
	if (mknod(dev_a, S_IFBLK | 0600, makedev(TEST_MAJOR, 1)) ||
	    mknod(dev_b, S_IFBLK | 0600, makedev(TEST_MAJOR, 2)) ||
	    mknod(dev_c, S_IFBLK | 0600, makedev(TEST_MAJOR, 3)) ||
	    mknod(dev_d, S_IFBLK | 0600, makedev(TEST_MAJOR, 4)))
		have_devices = false;
	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(exdev_store, sizeof(exdev_store), "%s/exdev-store", dir);
	snprintf(state_file, sizeof(state_file), "%s/fake-state", dir);
	snprintf(default_dir, sizeof(default_dir), "%s/default-store", dir);
	snprintf(env_state, sizeof(env_state), "FAKE_VSS_STATE=%s", state_file);
	snprintf(env_default_dir, sizeof(env_default_dir), "VSSCTL_STORAGE_DIR=%s", default_dir);
	mkdir(store, 0700);
	mkdir(exdev_store, 0700);
	setup_root(dir);
}

static struct fake_state load_state(void)
{
	struct fake_state st;

	memset(&st, 0, sizeof(st));
	fake_state_load(state_file, &st);
	return st;
}

static void id_text(const uint8_t *bytes, char *out, size_t digits)
{
	struct vss_id id;
	char full[VSS_ID_STRLEN];

	memcpy(id.bytes, bytes, VSS_ID_LEN);
	vss_id_format(&id, full);
	snprintf(out, digits + 1, "%s", full);
}

static void test_fake_create_list_show(const char *fake)
{
	const char *const env[] = { env_state, env_default_dir, NULL };
	struct json_object *arr, *first, *v;
	char id0[VSS_ID_STRLEN], set0[VSS_ID_STRLEN];
	struct fake_state st;
	struct result r;
	struct stat sb;

	expect(run(fake, env, "create", "--storage", store, "--storage-limit", "1G",
		   "--label", "nightly", "--chunk-size", "256K", "--no-freeze",
		   "--hold-limit", "3000", dev_a, dev_b, NULL),
	       0, "2 snapshots, writes held 1234 us", NULL, "create a set of two");
	st = load_state();
	t_ok(st.count == 2 && st.last_create.device_count == 2 &&
	     st.last_create.minors[1] == 2, "the module got both devices");
	t_ok(st.last_create.storage_limit == UINT64_C(1) << 30 &&
	     st.last_create.chunk_size == 256 * 1024 &&
	     st.last_create.flags == VSS_CREATE_NO_FREEZE &&
	     st.last_create.hold_limit_ms == 3000 && !strcmp(st.last_create.label, "nightly"),
	     "options reached the module");

	r = run(fake, env, "-j", "list", NULL);
	arr = json_tokener_parse(r.out);
	t_ok(r.code == 0 && arr && json_object_is_type(arr, json_type_array) &&
	     json_object_array_length(arr) == 2, "list --json: an array of two");
	first = arr ? json_object_array_get_idx(arr, 0) : NULL;
	t_ok(first && json_object_object_get_ex(first, "id", &v) &&
	     strlen(json_object_get_string(v)) == 36, "ids in full in JSON");
	json_object_put(arr);
	result_free(&r);
	expect(run(fake, env, "list", "--json", dev_b, NULL), 0, "\"minor\":2", NULL,
	       "--json after the command, list of one origin");
	expect(run(fake, env, "list", NULL), 0, "ID ", NULL, "list table");

	id_text(st.snaps[0].id, id0, 12);
	id_text(st.snaps[0].set_id, set0, 8);
	expect(run(fake, env, "show", id0, NULL), 0, "label:          nightly", NULL,
	       "show by prefix");
	expect(run(fake, env, "show", "C0", NULL), 7, NULL, "C0: ambiguous id prefix: matches",
	       "ambiguous prefix: exit 7");
	expect(run(fake, env, "show", "ffff", NULL), 5, NULL, "vssctl: ffff: no such snapshot\n",
	       "unknown id: exit 5");
	expect(run(fake, env, "show", set0, NULL), 5, NULL, "that is a snapshot set id",
	       "a set id given to show is recognised");

	expect(run(fake, env, "create", dev_c, NULL), 0, "1 snapshot,",
	       "vssctl: using storage directory", "create with the default storage");
	t_ok(stat(default_dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700,
	     "default storage directory made with mode 0700");
	st = load_state();
	t_ok(st.last_create.has_limit && st.last_create.storage_limit > 0,
	     "a default limit was sent for the directory");
	t_contains(st.last_create.storage_path, "default-store", "... and its path");
}

static void test_fake_errors(const char *fake)
{
	const char *const env[] = { env_state, NULL };
	const char *const deny[] = { env_state, "FAKE_VSS_DENY=1", NULL };
	const char *const busy[] = { env_state, "FAKE_VSS_BUSY=240:2", NULL };
	const char *const gone[] = { env_state, "FAKE_VSS_NO_MODULE=1", NULL };
	const char *const newer[] = { env_state, "FAKE_VSS_PROTOCOL=2", NULL };
	char expected[3 * PATH_MAX];
	struct fake_state before = load_state(), after;

	expect(run(fake, deny, "create", "--storage", store, "--storage-limit", "1M",
		   dev_a, NULL),
	       4, NULL, "vssctl: create: permission denied (need CAP_SYS_ADMIN)\n",
	       "unprivileged create: exit 4");
	snprintf(expected, sizeof(expected),
		 "vssctl: %s: device is already in a snapshot set being created (EBUSY)\n", dev_b);
	expect(run(fake, busy, "create", "--storage", store, "--storage-limit", "1M",
		   dev_a, dev_b, NULL), 6, NULL, expected, "busy device named: exit 6");
	snprintf(expected, sizeof(expected),
		 "vssctl: storage %s: storage lies on a device of the set (EXDEV)\n",
		 exdev_store);
	expect(run(fake, env, "create", "--storage", exdev_store, "--storage-limit", "1M",
		   dev_a, NULL), 8, NULL, expected, "storage on the set: exit 8");
	after = load_state();
	t_int_eq(after.count, before.count, "failed creates left nothing behind");

	snprintf(expected, sizeof(expected),
		 "vssctl: %s: device is listed twice (also as %s)\n", dev_a, dev_a);
	expect(run(fake, env, "create", "--storage", store, "--storage-limit", "1M",
		   dev_a, dev_a, NULL), 2, NULL, expected, "the same device twice: exit 2");
	expect(run(fake, env, "create", "--storage", "/nonexistent/store",
		   "--storage-limit", "1M", dev_a, NULL), 5, NULL,
	       "vssctl: storage /nonexistent/store: no such file or directory\n",
	       "missing storage named as the storage: exit 5");
	expect(run(fake, gone, "list", NULL), 3, NULL, "not loaded", "no family: exit 3");
	expect(run(fake, newer, "version", NULL), 1, "vss module 0.3.0-fake (protocol 2)",
	       "speaks protocol 2, this vssctl speaks 1", "protocol mismatch in version");
	expect(run(fake, newer, "list", NULL), 1, NULL, "(EPROTONOSUPPORT)",
	       "protocol mismatch refuses list");
	expect(run(fake, env, "version", NULL), 0, "vss module 0.3.0-fake (protocol 1)", NULL,
	       "version against the module");
}

/* Can @dir's filesystem hold a same-volume store (ext4, XFS)? */
static bool on_ext4_or_xfs(const char *dir)
{
	struct statfs fs;

	return statfs(dir, &fs) == 0 &&
	       (fs.f_type == EXT4_SUPER_MAGIC || fs.f_type == XFS_SUPER_MAGIC);
}

/*
 * The default storage is not on a device of the set while a directory
 * off it exists; else it is a same-volume store, if the filesystem can
 * hold one.
 */
static void test_fake_default_storage_refused(const char *fake)
{
	char self_dev[PATH_MAX], env_dir[PATH_MAX + 32], dir[PATH_MAX];
	const char *const env[] = { env_state, env_dir, NULL };
	struct stat tmp_st, here_st, sb;
	struct fake_state st;

	snprintf(dir, sizeof(dir), "%s/never-made", t_tmpdir());
	snprintf(env_dir, sizeof(env_dir), "VSSCTL_STORAGE_DIR=%s", dir);
	snprintf(self_dev, sizeof(self_dev), "%s/blk-self", t_tmpdir());
	if (stat(t_tmpdir(), &here_st) || stat("/tmp", &tmp_st) ||
	    major(here_st.st_dev) == 0 || here_st.st_dev != tmp_st.st_dev ||
	    mknod(self_dev, S_IFBLK | 0600, here_st.st_dev)) {
		t_skip("scratch space and /tmp not on one block device",
		       "default storage refused on a set device");
		return;
	}
	if (!on_ext4_or_xfs(t_tmpdir())) {
		expect(run(fake, env, "create", self_dev, NULL), 8, NULL,
		       "give one with --storage", "no usable default storage: exit 8");
		t_ok(stat(dir, &sb) != 0, "the refused directory was not created");
		return;
	}
	/* On ext4 or XFS, the last resort is a same-volume store. */
	st = load_state();
	expect(run(fake, env, "create", self_dev, NULL), 0, NULL,
	       "a snapshotted device: a same-volume store",
	       "no default storage off the set: a same-volume store, said");
	t_ok(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode),
	     "... in the preferred directory");
	rmdir(dir);
	fake_state_save(state_file, &st);
}

static void test_fake_delete(const char *fake)
{
	const char *const env[] = { env_state, NULL };
	char id0[VSS_ID_STRLEN], id1[VSS_ID_STRLEN], set[VSS_ID_STRLEN];
	struct json_object *obj, *v;
	struct fake_state st = load_state();
	struct result r;

	st.snaps[0].open_count = 1;
	fake_state_save(state_file, &st);
	id_text(st.snaps[0].id, id0, 36);
	id_text(st.snaps[1].id, id1, 10);
	id_text(st.snaps[2].set_id, set, 9);

	expect(run(fake, env, "delete", id0, NULL), 6, NULL,
	       "(EBUSY); --force deletes it anyway", "open image: exit 6 with a hint");
	expect(run(fake, env, "delete", id1, "ffff", NULL), 5, NULL, "nothing deleted",
	       "one unknown id: nothing deleted");
	t_int_eq(load_state().count, 3, "all three snapshots still there");
	expect(run(fake, env, "delete", "--force", id0, NULL), 0, "deleted ", NULL,
	       "forced delete");
	st = load_state();
	t_int_eq(st.last_delete_flags, VSS_DELETE_FORCE, "force flag sent");
	t_int_eq(st.count, 2, "one deleted");
	expect(run(fake, env, "delete", "--set", set, NULL), 0, "deleted ", NULL,
	       "delete a set by prefix");
	expect(run(fake, env, "delete", "--oldest", dev_c, NULL), 5, NULL,
	       "no snapshot of this device", "oldest of a device without snapshots: exit 5");
	expect(run(fake, env, "delete", "--oldest", dev_b, NULL), 0, "deleted ", NULL,
	       "delete the oldest of a device");

	r = run(fake, env, "create", "--storage", store, "--storage-limit", "1M", dev_a,
		dev_b, NULL);
	result_free(&r);
	r = run(fake, env, "--json", "delete", "--all", NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 0 && obj && json_object_object_get_ex(obj, "deleted", &v) &&
	     json_object_array_length(v) == 2 && json_object_object_get_ex(obj, "failed", &v) &&
	     json_object_array_length(v) == 0, "delete --all --json: two deleted, none failed");
	json_object_put(obj);
	result_free(&r);
	t_int_eq(load_state().count, 0, "nothing left");
	expect(run(fake, env, "delete", "--all", NULL), 0, "", "", "delete --all of nothing");
}

static void test_fake_monitor(const char *fake)
{
	const char *const three[] = { env_state, "FAKE_VSS_EVENTS=3", NULL };
	const char *const none[] = { env_state, NULL };
	struct json_object *obj, *v;
	struct result r;
	char *line, *next;
	int lines = 0;

	expect(run(fake, three, "monitor", "--count", "3", NULL), 0,
	       "snapshot-failed id=0badcafe-0000-4000-8000-000000000001", NULL,
	       "monitor prints events");
	r = run(fake, three, "monitor", "--json", "--count", "2", NULL);
	for (line = r.out; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		obj = json_tokener_parse(line);
		if (obj && json_object_object_get_ex(obj, "event", &v))
			lines++;
		json_object_put(obj);
	}
	t_ok(r.code == 0 && lines == 2, "monitor --json: one object per line");
	result_free(&r);
	expect(run(fake, three, "monitor", "--count", "5", "--timeout", "1", NULL), 1, NULL,
	       "timed out after 3 of 5 events", "too few events before the timeout: exit 1");
	expect(run(fake, none, "monitor", "--timeout", "1", NULL), 0, "", "",
	       "timeout without a count: exit 0");
}

/* The privilege check comes first, as in the module. */
static void test_unprivileged(const char *fake)
{
	const char *const env[] = { env_state, NULL };
	static const char *const cases[][8] = {
		{ "create", "--storage", "/tmp", "--storage-limit", "16M", "/dev/null", NULL },
		{ "delete", "--all", NULL },
		{ "delete", "00000000-0000-0000-0000-000000000001", NULL },
		{ "delete", "--oldest", "/dev/null", NULL },
		{ "track", "/dev/null", NULL },
		{ "untrack", "/dev/null", NULL },
		{ "cbt", "changes", "/dev/null", "--from", "3f2a", NULL },
		{ "cbt", "mark-dirty", "/dev/null", "0", "1", NULL },
		{ "cbt", "save", "--all", NULL },
		{ "cbt", "restore", "/nonexistent.cbt", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[10] = { fake };
		struct result r;
		size_t j;

		for (j = 0; cases[i][j]; j++)
			argv[j + 1] = cases[i][j];
		r.code = t_run_unprivileged(argv, env, &r.out, &r.err);
		if (r.code == T_RUN_CANNOT_DROP) {
			t_skip("cannot drop CAP_SYS_ADMIN", "unprivileged %s", cases[i][0]);
			result_free(&r);
			continue;
		}
		if (!t_ok(r.code == 4 && strstr(r.err, "vssctl: ") &&
			  strstr(r.err, ": permission denied (need CAP_SYS_ADMIN)\n"),
			  "unprivileged %s %s: exit 4 before anything else", cases[i][0],
			  cases[i][1]))
			t_diag("exit %d: %s", r.code, r.err);
		result_free(&r);
	}
	{
		const char *argv[] = { fake, "list", NULL };
		struct result r;

		r.code = t_run_unprivileged(argv, env, &r.out, &r.err);
		t_ok(r.code == 0 || r.code == T_RUN_CANNOT_DROP, "unprivileged list works");
		result_free(&r);
	}
}

static const char *json_str(struct json_object *obj, const char *key)
{
	struct json_object *v;

	return obj && json_object_object_get_ex(obj, key, &v) && v ?
	       json_object_get_string(v) : NULL;
}

static long long json_int(struct json_object *obj, const char *key)
{
	struct json_object *v;

	return obj && json_object_object_get_ex(obj, key, &v) && v ?
	       (long long)json_object_get_int64(v) : -1;
}

/* The id of the newest snapshot of TEST_MAJOR:@minor in the state. */
static void newest_snapshot(unsigned int minor, char *id)
{
	struct fake_state st = load_state();
	uint32_t i, best = UINT32_MAX;

	for (i = 0; i < st.count; i++)
		if (st.snaps[i].origin_minor == minor &&
		    (best == UINT32_MAX || st.snaps[i].index > st.snaps[best].index))
			best = i;
	id[0] = '\0';
	if (best != UINT32_MAX)
		id_text(st.snaps[best].id, id, 36);
}

static void fake_write(unsigned int minor, uint64_t offset, uint64_t length)
{
	struct fake_state st = load_state();

	fake_cbt_write(&st, TEST_MAJOR, minor, offset, length);
	fake_state_save(state_file, &st);
}

static bool is_mode(const char *path, mode_t type, mode_t mode)
{
	struct stat sb;

	return stat(path, &sb) == 0 && (sb.st_mode & S_IFMT) == type &&
	       (sb.st_mode & 0777) == mode;
}

static void test_fake_track(const char *fake)
{
	const char *const env[] = { env_state, env_root, NULL };
	struct json_object *obj, *v;
	char expected[2 * PATH_MAX];
	struct result r;

	/* Earlier tests' snapshots started tracking: start from nothing. */
	run_quiet(fake, env, "untrack", dev_a);
	run_quiet(fake, env, "untrack", dev_b);
	run_quiet(fake, env, "untrack", dev_c);
	expect(run(fake, env, "--json", "cbt", "info", NULL), 0, "[]", NULL,
	       "cbt info of nothing tracked: []");
	expect(run(fake, env, "cbt", "info", NULL), 0, "", "", "... and no table");

	snprintf(expected, sizeof(expected), "tracking %s: generation ", dev_a);
	expect(run(fake, env, "track", dev_a, NULL), 0, expected, NULL, "track a device");
	snprintf(expected, sizeof(expected),
		 "vssctl: %s: device is already tracked (EALREADY)\n", dev_a);
	expect(run(fake, env, "track", dev_a, NULL), 10, NULL, expected,
	       "tracked twice: exit 10");
	r = run(fake, env, "--json", "track", dev_b, NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 0 && obj && json_int(obj, "seq") == 0 &&
	     json_int(obj, "block_size") == FAKE_CBT_BLOCK_SIZE &&
	     json_int(obj, "size") == FAKE_CBT_SIZE && json_int(obj, "oldest_seq") == 0 &&
	     json_str(obj, "generation") && strlen(json_str(obj, "generation")) == 36 &&
	     json_str(obj, "point") && strstr(json_str(obj, "point"), ":0") &&
	     json_str(obj, "started") && json_object_object_get_ex(obj, "device", &v) &&
	     !strcmp(json_str(v, "name"), "fake2"),
	     "track --json: the tracking state");
	json_object_put(obj);
	result_free(&r);

	expect(run(fake, env, "cbt", "info", dev_a, NULL), 0,
	       "block size:     4KiB\nsequence:       0 (current interval; newest point ", NULL,
	       "cbt info of one device");
	r = run(fake, env, "cbt", "info", NULL);
	t_ok(r.code == 0 && strstr(r.out, "DEVICE ") && strstr(r.out, "GENERATION") &&
	     strstr(r.out, "/dev/fake1 ") && strstr(r.out, "/dev/fake2 "),
	     "cbt info of all: a table of both");
	result_free(&r);
	r = run(fake, env, "cbt", "info", "--json", NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 0 && obj && json_object_is_type(obj, json_type_array) &&
	     json_object_array_length(obj) == 2, "cbt info --json of all: an array of two");
	json_object_put(obj);
	result_free(&r);

	snprintf(expected, sizeof(expected), "stopped tracking %s", dev_b);
	expect(run(fake, env, "untrack", dev_b, NULL), 0, expected, NULL, "untrack");
	snprintf(expected, sizeof(expected), "vssctl: %s: device is not tracked\n", dev_b);
	expect(run(fake, env, "untrack", dev_b, NULL), 5, NULL, expected,
	       "untrack twice: exit 5, not tracked");
	expect(run(fake, env, "cbt", "info", dev_b, NULL), 5, NULL, "not tracked",
	       "cbt info of an untracked device: exit 5");
	expect(run(fake, env, "track", "/dev/null", NULL), 2, NULL,
	       "vssctl: /dev/null: not a block device\n", "track a character device: exit 2");
	expect(run(fake, env, "track", "/nonexistent/vdx", NULL), 5, NULL,
	       "vssctl: /nonexistent/vdx: no such device\n", "track a missing device: exit 5");
	expect(run(fake, env, "cbt", "info", "/dev/null", NULL), 2, NULL,
	       "not a block device", "cbt info of a character device: exit 2");
	expect(run(fake, env, "track", NULL), 2, NULL, "no device given", "track nothing: exit 2");
	expect(run(fake, env, "track", dev_a, dev_b, NULL), 2, NULL, "unexpected argument",
	       "track two devices: exit 2");
}

static void test_fake_changes(const char *fake)
{
	const char *const env[] = { env_state, env_root, NULL };
	char snap1[VSS_ID_STRLEN], snap2[VSS_ID_STRLEN], other[VSS_ID_STRLEN];
	char point1[VSS_CBT_POINT_STRLEN], expected[3 * PATH_MAX];
	struct json_object *obj, *v;
	struct fake_state st;
	struct result r;

	expect(run(fake, env, "create", "--storage", store, "--storage-limit", "1M", dev_a,
		   NULL), 0, NULL, NULL, "a snapshot of the tracked device");
	newest_snapshot(1, snap1);
	r = run(fake, env, "--json", "show", snap1, NULL);
	obj = json_tokener_parse(r.out);
	snprintf(point1, sizeof(point1), "%s", json_str(obj, "cbt_point") ?
		 json_str(obj, "cbt_point") : "");
	t_ok(r.code == 0 && strlen(point1) == 38 && !strcmp(point1 + 36, ":1"),
	     "show --json: the snapshot's point GENERATION:1");
	json_object_put(obj);
	result_free(&r);
	snprintf(expected, sizeof(expected), "cbt point:      %s\n", point1);
	expect(run(fake, env, "show", snap1, NULL), 0, expected, NULL, "show: the point");

	fake_write(1, 0, 13 * FAKE_CBT_BLOCK_SIZE);
	r = run(fake, env, "cbt", "changes", dev_a, "--from", snap1, NULL);
	snprintf(expected, sizeof(expected),
		 "OFFSET                LENGTH\n0                     53248\n"
		 "1 extent, 53248 bytes (52KiB) changed from %s to now; block size 4KiB\n",
		 point1);
	t_ok(r.code == 0 && !strcmp(r.out, expected),
	     "cbt changes --from SNAP: the extents, merged, and totals");
	if (r.code || strcmp(r.out, expected))
		t_diag("got: %s / %s", r.out, r.err);
	result_free(&r);

	r = run(fake, env, "--json", "cbt", "changes", dev_a, "--from", point1, NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 0 && obj && json_object_object_get_ex(obj, "device", &v) &&
	     json_int(v, "minor") == 1 && json_str(v, "name") &&
	     !strcmp(json_str(v, "name"), "fake1") && json_str(obj, "generation") &&
	     !strncmp(json_str(obj, "generation"), point1, 36) &&
	     json_int(obj, "block_size") == FAKE_CBT_BLOCK_SIZE &&
	     !strcmp(json_str(obj, "from"), point1) &&
	     json_object_object_get_ex(obj, "to", &v) && !v &&
	     json_object_object_get_ex(obj, "extents", &v) &&
	     json_object_array_length(v) == 1 &&
	     json_int(json_object_array_get_idx(v, 0), "offset") == 0 &&
	     json_int(json_object_array_get_idx(v, 0), "length") == 53248 &&
	     json_int(obj, "extent_count") == 1 && json_int(obj, "total_bytes") == 53248,
	     "cbt changes --json --from POINT: the documented object");
	json_object_put(obj);
	result_free(&r);

	expect(run(fake, env, "create", "--storage", store, "--storage-limit", "1M", dev_a,
		   NULL), 0, NULL, NULL, "a second snapshot");
	newest_snapshot(1, snap2);
	fake_write(1, 100 * FAKE_CBT_BLOCK_SIZE, 1);
	r = run(fake, env, "--json", "--pretty", "cbt", "changes", dev_a, "--from", snap1,
		"--to", snap2, NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 0 && obj && strchr(r.out, '\n') != strrchr(r.out, '\n') &&
	     json_str(obj, "to") && json_int(obj, "extent_count") == 1 &&
	     json_int(obj, "total_bytes") == 53248,
	     "cbt changes --pretty --from SNAP --to SNAP: indented, valid, only up to TO");
	json_object_put(obj);
	result_free(&r);
	r = run(fake, env, "--json", "--pretty", "cbt", "changes", dev_a, "--from", snap2, NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 0 && obj && json_int(obj, "extent_count") == 1 &&
	     json_object_object_get_ex(obj, "extents", &v) &&
	     json_int(json_object_array_get_idx(v, 0), "offset") == 100 * FAKE_CBT_BLOCK_SIZE,
	     "changes since the second snapshot: the later write only");
	json_object_put(obj);
	result_free(&r);
	r = run(fake, env, "--json", "--pretty", "cbt", "changes", dev_a, "--from", snap2,
		"--to", snap2, NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 0 && obj && json_int(obj, "extent_count") == 0 &&
	     json_object_object_get_ex(obj, "extents", &v) && json_object_array_length(v) == 0,
	     "no changes: an empty list, still valid JSON");
	json_object_put(obj);
	result_free(&r);

	expect(run(fake, env, "create", "--storage", store, "--storage-limit", "1M", dev_c,
		   NULL), 0, NULL, NULL, "a snapshot of another device");
	newest_snapshot(3, other);
	snprintf(expected, sizeof(expected), "snapshot %s is of /dev/fake3 (240:3), not of "
		 "%s (240:1)", other, dev_a);
	expect(run(fake, env, "cbt", "changes", dev_a, "--from", other, NULL), 2, NULL, expected,
	       "a snapshot of another device: exit 2, naming both");
	expect(run(fake, env, "cbt", "changes", dev_a, "--from", "xyz:1", NULL), 2, NULL,
	       "invalid point 'xyz:1' for --from", "a bad point: exit 2");
	expect(run(fake, env, "cbt", "changes", dev_a, "--from", snap1, "--to", "zz", NULL), 2,
	       NULL, "'zz' for --to is neither a snapshot id nor a point",
	       "neither id nor point: exit 2");
	expect(run(fake, env, "cbt", "changes", dev_a, NULL), 2, NULL, "--from SNAP|POINT",
	       "no --from: exit 2");
	expect(run(fake, env, "cbt", "changes", dev_a, "--from", "ffff", NULL), 5, NULL,
	       "vssctl: ffff: no such snapshot", "an unknown snapshot: exit 5");
	expect(run(fake, env, "cbt", "changes", dev_a, "--from",
		   "00000000-0000-4000-8000-000000000000:1", NULL), 9, NULL,
	       "is of another generation than the device's", "another generation: exit 9");
	expect(run(fake, env, "cbt", "changes", dev_a, "--from",
		   "00000000-0000-4000-8000-000000000000:1", NULL), 9, NULL,
	       "take a full backup", "... saying to take a full backup");
	st = load_state();
	fake_cbt_find(&st, TEST_MAJOR, 1)->oldest_seq = 2;
	fake_state_save(state_file, &st);
	snprintf(expected, sizeof(expected), "the map reaches back to point %.36s:2 only, not "
		 "to %s: take a full backup", point1, point1);
	expect(run(fake, env, "cbt", "changes", dev_a, "--from", snap1, NULL), 9, NULL, expected,
	       "older than the map: exit 9");
	st = load_state();
	fake_cbt_find(&st, TEST_MAJOR, 1)->oldest_seq = 0;
	fake_state_save(state_file, &st);
	snprintf(expected, sizeof(expected), "vssctl: %s: device is not tracked", dev_b);
	expect(run(fake, env, "cbt", "changes", dev_b, "--from", point1, NULL), 5, NULL,
	       expected, "an untracked device: exit 5");

	snprintf(expected, sizeof(expected), "marked 4KiB at offset 1MiB of %s as changed",
		 dev_a);
	expect(run(fake, env, "cbt", "mark-dirty", dev_a, "1M", "4K", NULL), 0, expected, NULL,
	       "mark-dirty");
	st = load_state();
	t_ok(st.last_mark_offset == 1 << 20 && st.last_mark_length == 4096,
	     "... the range reached the module");
	expect(run(fake, env, "--json", "cbt", "mark-dirty", dev_a, "0", "1", NULL), 0,
	       "\"offset\":0,\"length\":1", NULL, "mark-dirty --json");
	expect(run(fake, env, "cbt", "mark-dirty", dev_a, "0", "0", NULL), 2, NULL,
	       "the length must not be zero", "zero length: exit 2");
	expect(run(fake, env, "cbt", "mark-dirty", dev_a, "1.5G", "4K", NULL), 2, NULL,
	       "invalid offset '1.5G'", "a fractional offset: exit 2");
	expect(run(fake, env, "cbt", "mark-dirty", dev_a, "0", "4KB", NULL), 2, NULL,
	       "invalid length '4KB'", "a decimal unit: exit 2");
	expect(run(fake, env, "cbt", "mark-dirty", dev_a, "0", NULL), 2, NULL,
	       "give DEV, OFFSET and LENGTH", "too few arguments: exit 2");
	snprintf(expected, sizeof(expected),
		 "vssctl: %s: range past the end of the device (ERANGE)\n", dev_a);
	expect(run(fake, env, "cbt", "mark-dirty", dev_a, "0", "1G", NULL), 2, NULL, expected,
	       "past the end: exit 2, the module's words");
	expect(run(fake, env, "cbt", "mark-dirty", "/dev/null", "0", "1", NULL), 2, NULL,
	       "vssctl: /dev/null: not a block device", "mark-dirty a character device");
}

static void test_fake_save_restore(const char *fake)
{
	const char *const env[] = { env_state, env_root, NULL };
	char dir[PATH_MAX], file[PATH_MAX * 2], file2[PATH_MAX * 2], bad[PATH_MAX * 2];
	char snap1[VSS_ID_STRLEN], expected[4 * PATH_MAX];
	struct json_object *obj, *v, *entry;
	struct result r;

	snprintf(dir, sizeof(dir), "%s/cbt-state/maps", t_tmpdir());
	snprintf(file, sizeof(file), "%s/fake1.cbt", dir);
	snprintf(file2, sizeof(file2), "%s/fake2.cbt", dir);
	newest_snapshot(1, snap1);
	snprintf(expected, sizeof(expected), "vssctl: %s: the device has snapshots (EBUSY)\n",
		 dev_a);
	expect(run(fake, env, "cbt", "save", "--dir", dir, dev_a, NULL), 6, NULL, expected,
	       "save a device with snapshots: exit 6");
	expect(run(fake, env, "cbt", "save", "--dir", dir, dev_b, NULL), 5, NULL,
	       "device is not tracked", "save an untracked device: exit 5");
	t_ok(access(file, F_OK) != 0, "... nothing saved");
	run_quiet(fake, env, "delete", "--all");
	r = run(fake, env, "delete", "--all", "--force", NULL);
	result_free(&r);
	/* Its snapshot made the third device tracked: not wanted below. */
	run_quiet(fake, env, "untrack", dev_c);

	snprintf(expected, sizeof(expected), "saved %s to %s\n", dev_a, file);
	expect(run(fake, env, "cbt", "save", "--dir", dir, dev_a, NULL), 0, expected, NULL,
	       "save a device");
	t_ok(is_mode(dir, S_IFDIR, 0700) && is_mode(file, S_IFREG, 0600),
	     "the directory is made 0700, the file is 0600");
	expect(run(fake, env, "cbt", "info", dev_a, NULL), 5, NULL, "not tracked",
	       "... and tracking ended");
	snprintf(expected, sizeof(expected), "%s: /dev/fake1: continued at point ", file);
	expect(run(fake, env, "cbt", "restore", "--dir", dir, NULL), 0, expected, NULL,
	       "restore every map of the directory");
	t_ok(access(file, F_OK) != 0, "... the used file is gone");
	expect(run(fake, env, "--json", "cbt", "changes", dev_a, "--from", snap1, NULL), 5,
	       NULL, "no such snapshot", "(the snapshots are gone)");

	expect(run(fake, env, "track", dev_b, NULL), 0, NULL, NULL, "track a second device");
	r = run(fake, env, "--json", "cbt", "save", "--all", "--dir", dir, NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 0 && obj && json_object_object_get_ex(obj, "saved", &v) &&
	     json_object_array_length(v) == 2 && json_object_object_get_ex(obj, "failed", &v) &&
	     json_object_array_length(v) == 0 && access(file, F_OK) == 0 &&
	     access(file2, F_OK) == 0, "save --all --json: both saved, a file each");
	json_object_put(obj);
	result_free(&r);

	fake_write(2, 0, 1);
	r = run(fake, env, "--json", "cbt", "restore", "--dir", dir, NULL);
	obj = json_tokener_parse(r.out);
	v = NULL;
	json_object_object_get_ex(obj, "restored", &v);
	entry = v && json_object_array_length(v) == 2 ? json_object_array_get_idx(v, 1) : NULL;
	t_ok(r.code == 0 && entry && !strcmp(json_str(json_object_array_get_idx(v, 0), "verdict"),
					      "continued") &&
	     !strcmp(json_str(entry, "verdict"), "new-generation") &&
	     strstr(json_str(entry, "reason"), "written 1 times") &&
	     json_str(entry, "saved_point") && json_str(entry, "point") &&
	     strcmp(json_str(entry, "saved_point"), json_str(entry, "point")),
	     "restore --json: one continued, one new generation with its reason");
	json_object_put(obj);
	result_free(&r);

	expect(run(fake, env, "cbt", "save", "--dir", dir, dev_b, NULL), 0, NULL, NULL,
	       "save the second device again");
	fake_write(2, 0, 1);
	snprintf(expected, sizeof(expected), "%s: /dev/fake2: new generation ", file2);
	r = run(fake, env, "cbt", "restore", file2, NULL);
	t_ok(r.code == 0 && strstr(r.out, expected) &&
	     strstr(r.out, "is lost): the device was written 1 times"),
	     "restore FILE: a new generation is said, with the reason");
	result_free(&r);

	/* A map its boot did not restore must not reach a later boot. */
	r = run(fake, env, "untrack", dev_b, NULL);
	result_free(&r);
	r = run(fake, env, "untrack", dev_a, NULL);
	result_free(&r);
	expect(run(fake, env, "track", dev_d, NULL), 0, NULL, NULL, "track a fourth device");
	expect(run(fake, env, "cbt", "save", "--dir", dir, dev_d, NULL), 0, NULL, NULL,
	       "... save it");
	set_root_boot_id(OTHER_BOOT_ID);
	snprintf(expected, sizeof(expected),
		 "%s/fake4.cbt: removed: saved in an earlier boot and not restored since; "
		 "/dev/fake4 starts a new generation when tracked again\n", dir);
	r = run(fake, env, "cbt", "restore", "--dir", dir, NULL);
	t_ok(r.code == 5 && strstr(r.err, "the saved device fake4 is not present") &&
	     strstr(r.out, expected),
	     "restore at boot: a device not present fails, and its map is removed");
	if (!strstr(r.out, expected))
		t_diag("%s / %s", r.out, r.err);
	result_free(&r);
	snprintf(expected, sizeof(expected), "%s/fake4.cbt", dir);
	t_ok(access(expected, F_OK) != 0, "... it is gone");
	set_root_boot_id(FAKE_BOOT_ID);
	expect(run(fake, env, "track", dev_d, NULL), 0, NULL, NULL, "track it again");
	expect(run(fake, env, "cbt", "save", "--dir", dir, dev_d, NULL), 0, NULL, NULL,
	       "... save it again");
	set_root_boot_id(OTHER_BOOT_ID);
	r = run(fake, env, "--json", "cbt", "save", "--all", "--dir", dir, NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 0 && obj && json_object_object_get_ex(obj, "removed", &v) &&
	     json_object_array_length(v) == 1 && access(expected, F_OK) != 0,
	     "save --all: a map of an earlier boot is removed first");
	json_object_put(obj);
	result_free(&r);
	set_root_boot_id(FAKE_BOOT_ID);

	snprintf(bad, sizeof(bad), "%s/bad.cbt", dir);
	put_file(bad, "this is not a state file, but it is long enough to be read as one\n");
	snprintf(expected, sizeof(expected),
		 "vssctl: %s: not a valid changed-block state file: truncated: no end record", bad);
	expect(run(fake, env, "cbt", "restore", bad, NULL), 1, NULL, expected,
	       "a corrupt file: exit 1, named, and why");
	t_ok(access(bad, F_OK) == 0, "... it stays");
	unlink(bad);
	expect(run(fake, env, "cbt", "restore", "--dir", dir, "x.cbt", NULL), 2, NULL,
	       "give either FILE... or --dir", "--dir with files: exit 2");
	expect(run(fake, env, "cbt", "restore", "--device", dev_a, NULL), 2, NULL,
	       "--device takes exactly one FILE", "--device without a file: exit 2");
	expect(run(fake, env, "cbt", "save", "--dir", dir, NULL), 2, NULL,
	       "say what to save", "save of nothing: exit 2");
	expect(run(fake, env, "cbt", "save", "--all", dev_a, NULL), 2, NULL,
	       "give either DEV... or --all", "save of DEV and --all: exit 2");
	snprintf(dir, sizeof(dir), "%s/cbt-state/never-made", t_tmpdir());
	expect(run(fake, env, "cbt", "restore", "--dir", dir, NULL), 0, "", "",
	       "restore from a missing directory: nothing to do");
	expect(run(fake, env, "cbt", NULL), 2, NULL, "say what to do: info, changes",
	       "cbt without a subcommand: exit 2");
	expect(run(fake, env, "cbt", "frob", NULL), 2, NULL, "unknown subcommand 'frob'",
	       "an unknown subcommand: exit 2");
	expect(run(fake, env, "cbt", "--help", NULL), 0, "vssctl cbt changes", NULL,
	       "cbt --help");
	expect(run(fake, env, "cbt", "save", "--help", NULL), 0, "/var/lib/vss/cbt", NULL,
	       "cbt save --help names the default directory");
}

static void test_fake_cbt_monitor(const char *fake)
{
	const char *const env[] = { env_state, "FAKE_VSS_CBT_EVENTS=1", NULL };
	struct json_object *obj, *v;
	struct result r;

	r = run(fake, env, "monitor", "--count", "3", NULL);
	t_ok(r.code == 0 &&
	     strstr(r.out, " cbt-new-generation device=/dev/fake16(254:16) generation=9e") &&
	     strstr(r.out, " seq=7 oldest=3 block=4KiB reason=\"the device was resized\"\n") &&
	     strstr(r.out, " cbt-stopped device=") && strstr(r.out, "reason=\"untracked\"") &&
	     strstr(r.out, " cbt-history-dropped device="),
	     "monitor prints the tracking events with their fields");
	if (r.code)
		t_diag("%s / %s", r.out, r.err);
	result_free(&r);
	r = run(fake, env, "--json", "monitor", "--count", "1", NULL);
	obj = json_tokener_parse(r.out);
	t_ok(r.code == 0 && obj && !strcmp(json_str(obj, "event"), "cbt-new-generation") &&
	     json_object_object_get_ex(obj, "cbt", &v) && json_int(v, "seq") == 7 &&
	     json_int(v, "oldest_seq") == 3 && !strcmp(json_str(obj, "reason"),
							"the device was resized"),
	     "monitor --json: the tracking state under \"cbt\"");
	json_object_put(obj);
	result_free(&r);
}

static void test_fake_monitor_signal(const char *fake)
{
	char *const argv[] = { (char *)fake, (char *)"monitor", NULL };
	int status = -1;
	pid_t pid = fork();

	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(126);
		execv(fake, argv);
		_exit(127);
	}
	usleep(300 * 1000);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	t_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "monitor ends with 0 on SIGTERM");
}

int main(void)
{
	const char *bin = getenv("VSSCTL_BIN");
	const char *san = getenv("VSSCTL_SAN_BIN");
	const char *fake = getenv("VSSCTL_FAKE_BIN");

	setup();
	if (bin && *bin)
		test_host_binary(bin, "vssctl");
	else
		t_skip("VSSCTL_BIN not set", "the built vssctl on this host");
	if (san && *san)
		test_host_binary(san, "sanitized vssctl");
	else
		t_skip("VSSCTL_SAN_BIN not set", "the sanitized vssctl on this host");
	if (!fake || !*fake) {
		t_skip("VSSCTL_FAKE_BIN not set", "vssctl against the simulated module");
	} else if (!have_devices) {
		t_skip("mknod not permitted", "vssctl against the simulated module");
	} else {
		test_fake_create_list_show(fake);
		test_fake_errors(fake);
		test_fake_default_storage_refused(fake);
		test_fake_delete(fake);
		test_fake_monitor(fake);
		test_fake_track(fake);
		test_fake_changes(fake);
		test_fake_save_restore(fake);
		test_fake_cbt_monitor(fake);
		test_fake_monitor_signal(fake);
		test_unprivileged(fake);
	}
	return t_done();
}
