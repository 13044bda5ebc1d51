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
#include <sys/wait.h>

#include <json-c/json.h>

#include "fake_kernel.h"
#include "harness.h"

#define TEST_MAJOR 240

static char dev_a[PATH_MAX], dev_b[PATH_MAX], dev_c[PATH_MAX];
static char store[PATH_MAX], exdev_store[PATH_MAX], state_file[PATH_MAX];
static char env_state[PATH_MAX + 32], env_default_dir[PATH_MAX + 32];
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
	t_ok(strstr(r.out, "vssctl 0.3") && strstr(r.out, "libvss 0.3") &&
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
	expect(run(bin, no_env, "-V", NULL), 0, "vssctl 0.3", NULL, "-V: exit 0");
	expect(run(bin, no_env, "create", "--help", NULL), 0, "--storage-limit", NULL,
	       "create --help");
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
	t_diag("(%s done)", label);
}

static void setup(void)
{
	const char *dir = t_tmpdir();

	snprintf(dev_a, sizeof(dev_a), "%s/blk-a", dir);
	snprintf(dev_b, sizeof(dev_b), "%s/blk-b", dir);
	snprintf(dev_c, sizeof(dev_c), "%s/blk-c", dir);
	if (mknod(dev_a, S_IFBLK | 0600, makedev(TEST_MAJOR, 1)) ||
	    mknod(dev_b, S_IFBLK | 0600, makedev(TEST_MAJOR, 2)) ||
	    mknod(dev_c, S_IFBLK | 0600, makedev(TEST_MAJOR, 3)))
		have_devices = false;
	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(exdev_store, sizeof(exdev_store), "%s/exdev-store", dir);
	snprintf(state_file, sizeof(state_file), "%s/fake-state", dir);
	snprintf(default_dir, sizeof(default_dir), "%s/default-store", dir);
	snprintf(env_state, sizeof(env_state), "FAKE_VSS_STATE=%s", state_file);
	snprintf(env_default_dir, sizeof(env_default_dir), "VSSCTL_STORAGE_DIR=%s", default_dir);
	mkdir(store, 0700);
	mkdir(exdev_store, 0700);
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

/* The default storage must not be on a device of the set. */
static void test_fake_default_storage_refused(const char *fake)
{
	char self_dev[PATH_MAX], env_dir[PATH_MAX + 32], dir[PATH_MAX];
	const char *const env[] = { env_state, env_dir, NULL };
	struct stat tmp_st, here_st, sb;

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
	expect(run(fake, env, "create", self_dev, NULL), 8, NULL,
	       "give one with --storage", "no usable default storage: exit 8");
	t_ok(stat(dir, &sb) != 0, "the refused directory was not created");
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
		test_fake_monitor_signal(fake);
		test_unprivileged(fake);
	}
	return t_done();
}
