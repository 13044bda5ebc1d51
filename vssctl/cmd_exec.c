// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl exec: take a set (with the writers), mount every image read-only
 * with the live system's layout, run a backup tool on it, then tell the
 * writers how it went, unmount and delete the set.
 *
 * Who holds what, so that nothing outlives a killed vssctl or COMMAND:
 *
 *   vssctl        the vsswriterd session and the set. After the set it
 *                 enters a mount namespace of its own (a slave of the
 *                 host's: the images are mounted there and nowhere else),
 *                 then a PID namespace for its next child.
 *   guardian      forked just after the set, before the namespaces: it
 *                 only holds a copy of the session's socket. If vssctl
 *                 dies, it waits until the PID namespace is gone and the
 *                 images are closed, then exits; vsswriterd sees the
 *                 session end only then, tells the writers the backup
 *                 failed and deletes the set, which nothing holds open.
 *   init          PID 1 of the new PID namespace, killed with vssctl
 *                 (PR_SET_PDEATHSIG). When it ends, the kernel kills
 *                 every process left in the namespace, so COMMAND's
 *                 children cannot keep the mounts alive.
 *   COMMAND       a child of init, with the set in its environment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "writers_output.h"

#define EXEC_DEFAULT_MOUNT_DIR	"/run/vss/exec"
#define EXEC_MAX_MOUNTS		256
#define EXEC_MAX_FS_OPTIONS	16
/* How long the guardian waits for the namespace and the images. */
#define GUARDIAN_WAIT_MS	30000
/* getopt's value of --idle, which has no short form. */
#define OPT_IDLE		0x100

static void exec_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl exec [CREATE OPTIONS] [-m DIR] [-o TYPE:OPTS]... [-k] [--idle]\n"
		"                   [DEV...] -- COMMAND [ARG...]\n"
		"\n"
		"Take a snapshot set with the writers, mount every image read-only under\n"
		"DIR with the same layout as the live system, run COMMAND there, then send\n"
		"backup-complete (a failed one if COMMAND failed), unmount and delete the\n"
		"set. Without DEV, the set holds every device of the writers' components.\n"
		"COMMAND's exit status is vssctl's.\n"
		"\n"
		"Options:\n"
		"  -m, --mount DIR            where the images are mounted (default\n"
		"                             " EXEC_DEFAULT_MOUNT_DIR "); seen by COMMAND only\n"
		"  -o, --mount-options TYPE:OPTS  mount options for filesystem TYPE (default:\n"
		"                             ext4/ext3 noload, xfs nouuid,norecovery; always ro)\n"
		"  -k, --keep                 keep the set after the backup\n"
		"      --idle                 run COMMAND at idle priority (nice 19, the idle\n"
		"                             I/O class): the system being backed up goes first\n"
		"  the options of `vssctl create`: --storage, --storage-limit, --chunk-size,\n"
		"  --label, --no-freeze, --hold-limit, --no-writers, --writer-volumes,\n"
		"  --queue-timeout (see vssctl create --help)\n"
		"  -h, --help                 print this help\n"
		"\n"
		"COMMAND's environment:\n"
		"  VSS_SET_ID       the set's id\n"
		"  VSS_MOUNT_ROOT   DIR\n"
		"  VSS_MOUNTS       the mount points of the images, one a line\n"
		"  VSS_IMAGES, VSS_ORIGINS  the images and their origins, one a line\n"
		"  VSS_IMAGE_COUNT, VSS_IMAGE_<i>, VSS_ORIGIN_<i>, VSS_MOUNT_<i>  per image\n"
		"  (VSS_MOUNT_<i> is empty for an image whose origin is not mounted)\n"
		"\n"
		"COMMAND runs in a PID namespace of its own: when it ends, whatever it left\n"
		"running is killed. If vssctl is killed, COMMAND is killed, the images are\n"
		"unmounted and the set is deleted.\n");
}

struct fs_options {
	char type[32];
	const char *options;
};

struct exec_args {
	struct create_args create;
	const char *mount_dir;
	bool keep;
	bool idle;
	struct fs_options fs[EXEC_MAX_FS_OPTIONS];
	size_t fs_count;
	char **command;
};

/* One live mount of an origin of the set, and where its image goes. */
struct exec_mount {
	char target[PATH_MAX];		/* DIR + the live mount point */
	char fs_root[PATH_MAX];		/* the mount's root within its fs */
	char fs_type[32];
	size_t image;			/* index into the set's snapshots */
	bool mounted;
	bool bound;			/* a bind of fs_root over the mount */
};

struct exec_state {
	struct vss_create_result set;
	bool have_set;
	char set_id[VSS_ID_STRLEN];
	struct exec_mount mounts[EXEC_MAX_MOUNTS];
	size_t mount_count;
	bool tmpfs_mounted;
	char root[PATH_MAX];
	pid_t init_pid;
	int guardian_fd;		/* write end: vssctl is alive */
	pid_t guardian_pid;
};

static volatile sig_atomic_t forward_to;
static volatile sig_atomic_t got_signal;

static void forward_signal(int sig)
{
	got_signal = sig;
	if (forward_to > 0)
		kill((pid_t)forward_to, sig);
}

static const int handled_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define HANDLED_SIGNAL_COUNT (sizeof(handled_signals) / sizeof(handled_signals[0]))

static void set_handlers(void (*handler)(int))
{
	struct sigaction sa = { 0 };
	size_t i;

	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < HANDLED_SIGNAL_COUNT; i++)
		sigaction(handled_signals[i], &sa, NULL);
}

static int parse_fs_options(struct vssctl *ctx, const char *text, struct exec_args *args)
{
	const char *colon = strchr(text, ':');
	size_t len = colon ? (size_t)(colon - text) : 0;
	struct fs_options *f;

	if (!colon || !len || len >= sizeof(f->type))
		return vssctl_usage_error(ctx, "invalid mount options '%s': give TYPE:OPTIONS, "
					  "such as xfs:nouuid,norecovery", text);
	if (args->fs_count == EXEC_MAX_FS_OPTIONS)
		return vssctl_usage_error(ctx, "more than %d --mount-options", EXEC_MAX_FS_OPTIONS);
	f = &args->fs[args->fs_count++];
	memcpy(f->type, text, len);
	f->type[len] = 0;
	f->options = colon + 1;
	return 0;
}

static int parse_exec_args(struct vssctl *ctx, int argc, char **argv, struct exec_args *args)
{
	struct option options[VSSCTL_CREATE_OPTION_COUNT + 6];
	int opt, code, i, dashes = -1;

	memcpy(options, vssctl_create_options, sizeof(vssctl_create_options));
	options[VSSCTL_CREATE_OPTION_COUNT] = (struct option){ "mount", required_argument, NULL, 'm' };
	options[VSSCTL_CREATE_OPTION_COUNT + 1] =
		(struct option){ "mount-options", required_argument, NULL, 'o' };
	options[VSSCTL_CREATE_OPTION_COUNT + 2] = (struct option){ "keep", no_argument, NULL, 'k' };
	options[VSSCTL_CREATE_OPTION_COUNT + 3] = (struct option){ "help", no_argument, NULL, 'h' };
	options[VSSCTL_CREATE_OPTION_COUNT + 4] = (struct option){ "idle", no_argument, NULL, OPT_IDLE };
	options[VSSCTL_CREATE_OPTION_COUNT + 5] = (struct option){ NULL, 0, NULL, 0 };
	optind = 0;
	/* "+": COMMAND's own options must never be taken for ours. */
	while ((opt = getopt_long(argc, argv, "+:" VSSCTL_CREATE_SHORT_OPTIONS "m:o:kh",
				  options, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (optarg[0] != '/')
				return vssctl_usage_error(ctx, "--mount %s: give an absolute path",
							  optarg);
			args->mount_dir = optarg;
			break;
		case 'o':
			code = parse_fs_options(ctx, optarg, args);
			if (code)
				return code;
			break;
		case 'k':
			args->keep = true;
			break;
		case OPT_IDLE:
			args->idle = true;
			break;
		case 'h':
			exec_usage(stdout);
			return -1;
		default:
			code = vssctl_create_option(ctx, opt, optarg, &args->create);
			if (code == -ENOENT)
				return vssctl_bad_option(ctx, argv, opt);
			if (code)
				return code;
		}
	}
	/* getopt ate a "--" right after the options. */
	if (optind > 0 && optind <= argc && !strcmp(argv[optind - 1], "--"))
		dashes = optind - 1;
	for (i = optind; dashes < 0 && i < argc; i++)
		if (!strcmp(argv[i], "--"))
			dashes = i;
	if (dashes < 0 || dashes + 1 >= argc)
		return vssctl_usage_error(ctx, "no COMMAND: give it after --");
	args->command = argv + dashes + 1;
	if (dashes < optind)
		optind = dashes;
	/* Without devices, the writers' devices make the set. */
	if (optind >= dashes && !args->create.no_writers)
		args->create.writer_volumes = true;
	if (optind >= dashes && args->create.no_writers)
		return vssctl_usage_error(ctx, "--no-writers: give the devices to snapshot");
	return vssctl_create_devices(ctx, dashes, argv, optind, &args->create);
}

/* ---- the layout ---- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = 0;
}

static int by_depth(const void *a, const void *b)
{
	const struct exec_mount *x = a, *y = b;
	size_t lx = strlen(x->target), ly = strlen(y->target);

	return lx < ly ? -1 : lx > ly;
}

/* Every live mount of an origin of the set, parents before children. */
static int find_layout(const struct vssctl *ctx, struct exec_state *st)
{
	char line[3 * PATH_MAX + 256];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	size_t i;

	if (!f) {
		vssctl_error("%s: /proc/self/mountinfo: %s", ctx->command, strerror(errno));
		return VSSCTL_EXIT_FAILURE;
	}
	while (fgets(line, sizeof(line), f)) {
		char *field[6], *save = NULL, *tok, *type = NULL;
		unsigned int maj, min, k = 0;
		struct exec_mount *m;

		line[strcspn(line, "\n")] = 0;
		for (tok = strtok_r(line, " ", &save); tok && k < 6; tok = strtok_r(NULL, " ", &save))
			field[k++] = tok;
		while (tok && strcmp(tok, "-"))
			tok = strtok_r(NULL, " ", &save);
		if (tok)
			type = strtok_r(NULL, " ", &save);
		if (k < 6 || !type || sscanf(field[2], "%u:%u", &maj, &min) != 2)
			continue;
		for (i = 0; i < st->set.snapshot_count; i++)
			if (st->set.snapshots[i].origin.major == maj &&
			    st->set.snapshots[i].origin.minor == min)
				break;
		if (i == st->set.snapshot_count)
			continue;
		if (st->mount_count == EXEC_MAX_MOUNTS) {
			fclose(f);
			vssctl_error("%s: the set's devices are mounted more than %d times",
				     ctx->command, EXEC_MAX_MOUNTS);
			return VSSCTL_EXIT_FAILURE;
		}
		unescape(field[3]);
		unescape(field[4]);
		m = &st->mounts[st->mount_count];
		memset(m, 0, sizeof(*m));
		m->image = i;
		snprintf(m->fs_root, sizeof(m->fs_root), "%s", field[3]);
		snprintf(m->fs_type, sizeof(m->fs_type), "%s", type);
		if (snprintf(m->target, sizeof(m->target), "%s%s", st->root,
			     strcmp(field[4], "/") ? field[4] : "") >= (int)sizeof(m->target)) {
			fclose(f);
			vssctl_error("%s%s: path too long", st->root, field[4]);
			return VSSCTL_EXIT_FAILURE;
		}
		st->mount_count++;
	}
	fclose(f);
	qsort(st->mounts, st->mount_count, sizeof(st->mounts[0]), by_depth);
	return 0;
}

static const char *mount_options(const struct exec_args *args, const char *type)
{
	size_t i;

	for (i = 0; i < args->fs_count; i++)
		if (!strcmp(args->fs[i].type, type))
			return args->fs[i].options;
	/* Read-only and without replaying a journal: the image stays as taken. */
	if (!strcmp(type, "ext4") || !strcmp(type, "ext3"))
		return "noload";
	if (!strcmp(type, "xfs"))
		return "nouuid,norecovery";
	return "";
}

/* mkdir -p: into the tmpfs, or an existing directory of a parent image. */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; ; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;

		*p = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
		*p = c;
	}
}

static int mount_images(const struct vssctl *ctx, const struct exec_args *args,
			struct exec_state *st)
{
	size_t i;
	int err;

	if (mkdir(st->root, 0700) && errno != EEXIST) {
		err = errno;
		if (errno == ENOENT && make_dirs(st->root) == 0)
			err = 0;
		if (err) {
			vssctl_error("%s: cannot make the directory: %s", st->root, strerror(err));
			return VSSCTL_EXIT_FAILURE;
		}
	}
	/* A tmpfs of our own holds the mount points: nothing is made on the host. */
	if (mount("vss-exec", st->root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")) {
		vssctl_error("%s: cannot mount a tmpfs for the layout: %s", st->root, strerror(errno));
		return VSSCTL_EXIT_FAILURE;
	}
	st->tmpfs_mounted = true;
	for (i = 0; i < st->mount_count; i++) {
		struct exec_mount *m = &st->mounts[i];
		const struct vss_snapshot_info *snap = &st->set.snapshots[m->image];
		const char *opts = mount_options(args, m->fs_type);
		char image[64], sub[PATH_MAX];

		snprintf(image, sizeof(image), "/dev/%s", snap->image.name);
		err = make_dirs(m->target);
		if (err) {
			vssctl_error("%s: cannot make the mount point for %s: %s", m->target, image,
				     strerror(-err));
			return VSSCTL_EXIT_FAILURE;
		}
		if (mount(image, m->target, m->fs_type, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOATIME,
			  opts)) {
			vssctl_error("%s: cannot mount %s (image of /dev/%s, %s, options \"%s\") read-only: %s",
				     m->target, image, snap->origin.name, m->fs_type, opts,
				     strerror(errno));
			return VSSCTL_EXIT_FAILURE;
		}
		m->mounted = true;
		/* A bind mount of a subdirectory shows that subdirectory only. */
		if (strcmp(m->fs_root, "/")) {
			snprintf(sub, sizeof(sub), "%s%s", m->target, m->fs_root);
			if (mount(sub, m->target, NULL, MS_BIND, NULL)) {
				vssctl_error("%s: cannot bind %s of %s: %s", m->target, m->fs_root,
					     image, strerror(errno));
				return VSSCTL_EXIT_FAILURE;
			}
			m->bound = true;
		}
	}
	(void)ctx;
	return 0;
}

/* Unmounts in reverse order; a busy mount is detached. 0 or an exit code. */
static int unmount_images(struct exec_state *st)
{
	int code = 0;
	size_t i;

	for (i = st->mount_count; i-- > 0;) {
		struct exec_mount *m = &st->mounts[i];

		if (m->bound && umount2(m->target, 0) && umount2(m->target, MNT_DETACH))
			code = VSSCTL_EXIT_FAILURE;
		m->bound = false;
		if (!m->mounted)
			continue;
		if (umount2(m->target, 0)) {
			vssctl_error("%s: cannot unmount: %s; detaching it", m->target, strerror(errno));
			if (umount2(m->target, MNT_DETACH))
				code = VSSCTL_EXIT_FAILURE;
		}
		m->mounted = false;
	}
	if (st->tmpfs_mounted && umount2(st->root, MNT_DETACH))
		code = VSSCTL_EXIT_FAILURE;
	st->tmpfs_mounted = false;
	return code;
}

/* ---- the environment ---- */

static int put_env(const char *name, const char *value)
{
	return setenv(name, value, 1) ? -errno : 0;
}

static int set_environment(struct exec_state *st)
{
	char name[64], list_mounts[8192] = "", list_images[4096] = "", list_origins[4096] = "";
	size_t i, j;
	int err = 0;

	err = put_env("VSS_SET_ID", st->set_id);
	if (!err)
		err = put_env("VSS_MOUNT_ROOT", st->root);
	for (i = 0; !err && i < st->set.snapshot_count; i++) {
		const struct vss_snapshot_info *snap = &st->set.snapshots[i];
		char image[64], origin[64];
		const char *where = "";

		snprintf(image, sizeof(image), "/dev/%s", snap->image.name);
		snprintf(origin, sizeof(origin), "/dev/%s", snap->origin.name);
		for (j = 0; j < st->mount_count; j++)
			if (st->mounts[j].image == i) {
				where = st->mounts[j].target;
				break;
			}
		snprintf(name, sizeof(name), "VSS_IMAGE_%zu", i);
		err = put_env(name, image);
		snprintf(name, sizeof(name), "VSS_ORIGIN_%zu", i);
		if (!err)
			err = put_env(name, origin);
		snprintf(name, sizeof(name), "VSS_MOUNT_%zu", i);
		if (!err)
			err = put_env(name, where);
		snprintf(list_images + strlen(list_images), sizeof(list_images) - strlen(list_images),
			 "%s%s", i ? "\n" : "", image);
		snprintf(list_origins + strlen(list_origins),
			 sizeof(list_origins) - strlen(list_origins), "%s%s", i ? "\n" : "", origin);
	}
	for (j = 0; j < st->mount_count; j++)
		snprintf(list_mounts + strlen(list_mounts), sizeof(list_mounts) - strlen(list_mounts),
			 "%s%s", j ? "\n" : "", st->mounts[j].target);
	snprintf(name, sizeof(name), "%zu", st->set.snapshot_count);
	if (!err)
		err = put_env("VSS_IMAGE_COUNT", name);
	if (!err)
		err = put_env("VSS_IMAGES", list_images);
	if (!err)
		err = put_env("VSS_ORIGINS", list_origins);
	if (!err)
		err = put_env("VSS_MOUNTS", list_mounts);
	return err;
}

/* ---- the guardian ---- */

static long ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Whether every snapshot of @set_id is closed (or gone). */
static bool images_closed(const struct vss_id *set_id)
{
	struct vss_snapshot_info *snaps = NULL;
	struct vss_handle *h = NULL;
	size_t count = 0, i;
	bool closed = true;

	if (vss_open(&h) || vss_list_snapshots(h, NULL, &snaps, &count)) {
		vss_close(h);
		return true;
	}
	for (i = 0; i < count; i++)
		if (!memcmp(&snaps[i].set_id, set_id, sizeof(*set_id)) && snaps[i].open_count)
			closed = false;
	vss_snapshot_info_array_free(snaps, count);
	vss_close(h);
	return closed;
}

/*
 * The guardian's whole life. It holds the session's socket (inherited):
 * vsswriterd ends the session when the guardian exits, never while the
 * images are still mounted in a namespace that is being torn down.
 */
static void __attribute__((noreturn)) guardian(int alive_fd, const struct vss_id *set_id)
{
	struct timespec t0;
	pid_t init_pid = 0;
	int pidfd = -1, devnull;
	char msg;
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < HANDLED_SIGNAL_COUNT; i++)
		signal(handled_signals[i], SIG_IGN);
	/* Never keep a pipe of the caller open. */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
	}
	for (;;) {
		ssize_t n = read(alive_fd, &msg, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (msg == 'D')
			_exit(0);
		if (msg == 'P' && read(alive_fd, &init_pid, sizeof(init_pid)) == sizeof(init_pid))
			pidfd = (int)syscall(SYS_pidfd_open, init_pid, 0);
	}
	/* vssctl is gone: its init follows it (PR_SET_PDEATHSIG), then the rest. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pidfd >= 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };

		while (poll(&p, 1, GUARDIAN_WAIT_MS) < 0 && errno == EINTR)
			;
	}
	while (!images_closed(set_id) && ms_since(&t0) < GUARDIAN_WAIT_MS)
		usleep(20000);
	_exit(0);
}

static int start_guardian(const struct vssctl *ctx, struct exec_state *st)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC)) {
		vssctl_error("%s: pipe: %s", ctx->command, strerror(errno));
		return VSSCTL_EXIT_FAILURE;
	}
	pid = fork();
	if (pid < 0) {
		vssctl_error("%s: fork: %s", ctx->command, strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return VSSCTL_EXIT_FAILURE;
	}
	if (pid == 0) {
		close(fds[1]);
		guardian(fds[0], &st->set.set_id);
	}
	close(fds[0]);
	st->guardian_fd = fds[1];
	st->guardian_pid = pid;
	return 0;
}

static void stop_guardian(struct exec_state *st)
{
	char done = 'D';

	if (st->guardian_fd < 0)
		return;
	if (write(st->guardian_fd, &done, 1) != 1)
		kill(st->guardian_pid, SIGKILL);
	close(st->guardian_fd);
	st->guardian_fd = -1;
	while (waitpid(st->guardian_pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- COMMAND ---- */

/*
 * PID 1 of the namespace: runs COMMAND (at idle priority with @idle),
 * forwards signals, reaps orphans.
 */
static void __attribute__((noreturn)) run_init(char **command, bool idle, int status_fd)
{
	sigset_t none;
	pid_t child, pid;
	int status = 0, child_status = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/*
	 * vssctl may have died before the line above. Its pid cannot tell:
	 * from inside the new PID namespace getppid() is 0 whoever the
	 * parent is. The status pipe can: vssctl holds its read end, and a
	 * write end whose readers are gone polls POLLERR.
	 */
	{
		struct pollfd alive = { .fd = status_fd, .events = POLLOUT };

		if (poll(&alive, 1, 0) < 0 || (alive.revents & POLLERR))
			_exit(127);
	}
	child = fork();
	if (child < 0) {
		fprintf(stderr, "vssctl: exec: fork: %s\n", strerror(errno));
		_exit(127);
	}
	if (child == 0) {
		size_t i;

		for (i = 0; i < HANDLED_SIGNAL_COUNT; i++)
			signal(handled_signals[i], SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (idle) {
			const char *what = "";
			int err = vssctl_idle_priority(&what);

			if (err) {
				fprintf(stderr, "vssctl: exec: --idle: cannot lower %s's %s: %s\n",
					command[0], what, strerror(-err));
				_exit(126);
			}
		}
		execvp(command[0], command);
		fprintf(stderr, "vssctl: exec: %s: %s\n", command[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	forward_to = child;
	set_handlers(forward_signal);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (;;) {
		pid = waitpid(-1, &status, 0);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			break;
		if (pid == child) {
			child_status = status;
			break;
		}
	}
	if (write(status_fd, &child_status, sizeof(child_status)) != sizeof(child_status))
		_exit(127);
	/* Leaving kills whatever COMMAND left behind in the namespace. */
	_exit(0);
}

/* Runs COMMAND; returns its wait status, or -1 when it could not run. */
static int run_command(const struct vssctl *ctx, struct exec_state *st, char **command,
		       bool idle)
{
	sigset_t block, old;
	int fds[2], status = -1, wstatus;
	pid_t pid;
	ssize_t n;

	if (unshare(CLONE_NEWPID)) {
		vssctl_error("%s: cannot make a PID namespace for COMMAND: %s", ctx->command,
			     strerror(errno));
		return -1;
	}
	if (pipe2(fds, O_CLOEXEC)) {
		vssctl_error("%s: pipe: %s", ctx->command, strerror(errno));
		return -1;
	}
	/* Signals wait until init can forward them. */
	sigemptyset(&block);
	for (size_t i = 0; i < HANDLED_SIGNAL_COUNT; i++)
		sigaddset(&block, handled_signals[i]);
	sigprocmask(SIG_BLOCK, &block, &old);
	pid = fork();
	if (pid < 0) {
		vssctl_error("%s: fork: %s", ctx->command, strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		close(st->guardian_fd);
		run_init(command, idle, fds[1]);
	}
	close(fds[1]);
	st->init_pid = pid;
	{
		char msg[1 + sizeof(pid)];

		msg[0] = 'P';
		memcpy(msg + 1, &pid, sizeof(pid));
		if (write(st->guardian_fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			vssctl_error("%s: the guardian is gone: a killed vssctl may leave the set behind",
				     ctx->command);
	}
	forward_to = pid;
	set_handlers(forward_signal);
	sigprocmask(SIG_SETMASK, &old, NULL);
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	forward_to = 0;
	do
		n = read(fds[0], &status, sizeof(status));
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	if (n != sizeof(status))
		return -1;
	return status;
}

/* ---- the sequence ---- */

static int take_set(struct vssctl *ctx, struct exec_args *args, struct vss_session **session,
		    struct vss_handle **h, struct exec_state *st)
{
	struct vss_device devices[VSS_MAX_SET_DEVICES];
	struct vss_create_params params = { 0 };
	struct vss_session_params sp = { 0 };
	static char storage[PATH_MAX];
	int code, err;

	code = vssctl_check_privilege(ctx);
	if (code)
		return code;
	if (!args->create.no_writers) {
		sp.queue_timeout_ms = args->create.queue_timeout_ms;
		code = vssctl_writerd_open(ctx, session, &sp, false);
		if (code)
			return code;
	}
	code = vssctl_check_devices(ctx, &args->create, devices);
	if (!code)
		code = vssctl_open(ctx, h);
	if (code)
		return code;
	params.devices = (const char *const *)args->create.devices;
	params.device_count = args->create.device_count;
	params.storage_path = storage;
	params.chunk_size = args->create.chunk_size;
	params.label = args->create.label;
	params.flags = args->create.flags;
	params.hold_limit_ms = args->create.hold_limit_ms;
	if (*session) {
		code = vssctl_session_set(ctx, &args->create, *session, *h, devices, &params,
					  storage, sizeof(storage), &st->set);
		if (code)
			return code;
	} else {
		code = vssctl_choose_storage(ctx, *h, &args->create, devices,
					     args->create.device_count, storage, sizeof(storage),
					     &params.storage_limit);
		if (code)
			return code;
		err = vss_create_set(*h, &params, &st->set);
		if (err)
			return vssctl_report(ctx, *h, err, NULL, "no such device");
	}
	st->have_set = true;
	vss_id_format(&st->set.set_id, st->set_id);
	return 0;
}

/* Deletes the set, waiting a little for images that are still closing. */
static int delete_set(const struct vssctl *ctx, struct vss_handle *h, struct exec_state *st)
{
	int err, tries = 0;

	do {
		err = vss_delete_set(h, &st->set.set_id, 0);
		if (err != -EBUSY)
			break;
		usleep(50000);
	} while (++tries < 100);
	if (err && err != -ENOENT)
		return vssctl_report(ctx, h, err, st->set_id, "no such set");
	return 0;
}

/* The exit status a shell would give for COMMAND's wait status. */
static int command_exit_code(int status)
{
	if (status < 0)
		return 127;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return VSSCTL_EXIT_FAILURE;
}

int cmd_exec(struct vssctl *ctx, int argc, char **argv)
{
	struct exec_args args = { .mount_dir = EXEC_DEFAULT_MOUNT_DIR };
	struct exec_state *st;
	struct vss_session *session = NULL;
	struct vss_handle *h = NULL;
	int code, status = -1, err;
	bool success;

	code = parse_exec_args(ctx, argc, argv, &args);
	if (code) {
		vssctl_free_device_paths(args.create.devices, args.create.device_count);
		return code < 0 ? VSSCTL_EXIT_OK : code;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		vssctl_error("%s: out of memory", ctx->command);
		vssctl_free_device_paths(args.create.devices, args.create.device_count);
		return VSSCTL_EXIT_FAILURE;
	}
	st->guardian_fd = -1;
	snprintf(st->root, sizeof(st->root), "%s", args.mount_dir);
	while (strlen(st->root) > 1 && st->root[strlen(st->root) - 1] == '/')
		st->root[strlen(st->root) - 1] = 0;

	/* Until COMMAND runs, a signal ends vssctl: the session undoes the set. */
	code = take_set(ctx, &args, &session, &h, st);
	if (code)
		goto out;
	code = start_guardian(ctx, st);
	if (code)
		goto release;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL)) {
		vssctl_error("%s: cannot make a mount namespace: %s", ctx->command, strerror(errno));
		code = VSSCTL_EXIT_FAILURE;
		goto release;
	}
	code = find_layout(ctx, st);
	if (!code)
		code = mount_images(ctx, &args, st);
	if (!code && set_environment(st)) {
		vssctl_error("%s: cannot set the environment: %s", ctx->command, strerror(errno));
		code = VSSCTL_EXIT_FAILURE;
	}
	if (code)
		goto release;
	vssctl_error("set %s: %zu image%s, %zu mount%s under %s; running %s", st->set_id,
		     st->set.snapshot_count, st->set.snapshot_count == 1 ? "" : "s",
		     st->mount_count, st->mount_count == 1 ? "" : "s", st->root, args.command[0]);
	status = run_command(ctx, st, args.command, args.idle);
	code = command_exit_code(status);

release:
	success = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (session && st->have_set) {
		err = vss_session_backup_complete(session, success);
		if (err) {
			vssctl_session_report(ctx, session, err, st->set_id);
		} else {
			const struct vss_writer_result *results;
			size_t rn;

			vss_session_results(session, &results, &rn);
			for (size_t i = 0; i < rn; i++)
				if (results[i].failure && !results[i].excluded)
					vssctl_error("writer %s: backup-complete: %s", results[i].name,
						     results[i].message);
		}
	}
	if (unmount_images(st) && !code)
		code = VSSCTL_EXIT_FAILURE;
	if (st->have_set && !args.keep) {
		err = delete_set(ctx, h, st);
		if (err && !code)
			code = err;
	}
	if (st->have_set)
		vssctl_error("set %s: backup-complete (%s)%s", st->set_id,
			     success ? "success" : "failure", args.keep ? ", kept" : ", deleted");
	stop_guardian(st);
out:
	if (st->have_set)
		vss_create_result_free(&st->set);
	vss_session_close(session);
	vss_close(h);
	free(st);
	vssctl_free_device_paths(args.create.devices, args.create.device_count);
	return code;
}
