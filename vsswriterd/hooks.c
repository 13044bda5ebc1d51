// SPDX-License-Identifier: GPL-2.0
/*
 * Hook writers: executables in the hook directory (the step as argv[1])
 * and, in qemu-ga mode, unchanged fsfreeze-hook.d scripts (only "freeze"
 * and "thaw").
 *
 * A hook runs in a child of the daemon. Every child a sequence may need
 * while something is frozen is forked before the first freeze, with the
 * hook (and, for a script, its interpreter) opened then: abort at
 * prepare-backup, freeze and thaw at the start of DoSnapshotSet. Each
 * waits on a pipe for the word to go, and then fexecve()s the descriptor. So the daemon never execs, and no path is looked up,
 * while a writer is frozen. Other steps fork when they come; if that is
 * while something is frozen, they wait for the thaw.
 *
 * The pipe carries one byte a message:
 *   'g' LEN ENV   run now; ENV is LEN bytes of NUL-terminated KEY=VALUE
 *   'a'           armed: if the pipe closes before 'g', run anyway
 *   'd'           disarmed
 *   'w' PID       before an armed run, wait for this process to end
 * The undo child of a hook (abort; in qemu-ga mode thaw) is armed as soon
 * as it may be needed, so that a vsswriterd killed by SIGKILL still has
 * every hook that was frozen undone.
 *
 * Exit status: 0 is success, 75 (EX_TEMPFAIL) a retryable failure, any
 * other a non-retryable one; a hook killed at its time limit fails with
 * timeout. Only the hook process itself is waited for: a background
 * child it leaves (the MySQL sample does) may keep running.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "daemon.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define EX_TEMPFAIL_CODE	75
#define MAX_ENV_BLOCK		(16 * 1024)
#define MAX_WAIT_PIDS		16
#define MAX_HOOK_FILES		128

struct wd_hook_run;

struct wd_hook_child {
	struct wd_list link;		/* in d->hook_children */
	struct wd_daemon *d;
	struct wd_hook *hook;		/* NULL once the hook is gone */
	struct wd_hook_run *run;	/* NULL while waiting, or abandoned */
	uint32_t step;
	pid_t pid;
	int pidfd;
	struct wd_watch pid_watch;
	int go_fd;			/* -1 once triggered or released */
	int out_fd;
	struct wd_watch out_watch;
	char line[512];
	size_t line_len;
	char last_line[256];
	bool triggered;
	bool killed;
};

struct wd_hook_run {
	struct wd_list link;		/* in hook->runs: the first one runs */
	struct wd_hook *hook;
	struct wd_event *ev;		/* NULL once cancelled */
	uint32_t step;			/* the step the hook is given */
	struct wd_hook_child *child;
	bool started;
};

struct wd_hook {
	struct wd_writer *w;
	char path[VSW_WIRE_PATH_MAX];
	char file[256];
	bool qemu_ga;
	uint32_t timeout_ms;
	dev_t st_dev;
	ino_t st_ino;
	struct timespec st_mtim;
	off_t st_size;
	bool seen;			/* in the last scan */
	struct wd_list runs;
	struct wd_hook_child *pre[VSW_STEP_COUNT];
	int exe_fd;			/* what fexecve() runs */
	int script_fd;			/* a script, kept open for its interpreter */
	char interp_arg[128];		/* the optional argument of "#!" */
	char interp[VSW_WIRE_PATH_MAX];
	bool freeze_triggered;
	bool thaw_done;
};

static void run_start(struct wd_hook_run *run);

/* ---- the child ---- */

struct child_plan {
	int go_r;
	int out_w;
	int devnull;
	int exe_fd;
	int script_fd;
	const char *file;
	const char *interp;
	const char *interp_arg;
	uint32_t step;
	bool qemu_ga;
	int wait_fds[MAX_WAIT_PIDS];
	int wait_count;
};

static int pidfd_open_compat(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (ssize_t)got;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static const char *step_argument(uint32_t step)
{
	return vsw_step_name(step);
}

static void child_exec(const struct child_plan *plan, char *env, size_t env_len)
{
	char *argv[6], *envp[64], fdpath[64];
	size_t i, n = 0;
	int a = 0;

	for (i = 0; i < env_len && n < 62; i += strlen(env + i) + 1)
		envp[n++] = env + i;
	envp[n] = NULL;
	if (plan->script_fd >= 0) {
		/* The interpreter reads the script through the descriptor
		 * opened ahead, as fexecve() of a script would. */
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", plan->script_fd);
		argv[a++] = (char *)plan->interp;
		if (plan->interp_arg[0])
			argv[a++] = (char *)plan->interp_arg;
		argv[a++] = fdpath;
	} else {
		argv[a++] = (char *)plan->file;
	}
	argv[a++] = (char *)step_argument(plan->step);
	argv[a] = NULL;
	fexecve(plan->exe_fd, argv, envp);
	dprintf(STDERR_FILENO, "cannot run %s: %s\n", plan->file, strerror(errno));
	_exit(126);
}

static void child_wait_siblings(int *fds, int count)
{
	int i;

	/* Never forever: the undo must come even if a step hangs. */
	for (i = 0; i < count; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLIN };

		while (poll(&pfd, 1, 60000) < 0 && errno == EINTR)
			;
	}
}

static __attribute__((noreturn)) void child_main(struct child_plan *plan)
{
	static char env[MAX_ENV_BLOCK];
	char fallback[256];
	struct sigaction sa;
	sigset_t none;
	bool armed = false;
	uint32_t len;
	int sig, pid;
	char op;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own process group: a time limit kills what it started too. */
	setsid();
	dup2(plan->devnull, STDIN_FILENO);
	dup2(plan->out_w, STDOUT_FILENO);
	dup2(plan->out_w, STDERR_FILENO);
	/* Nothing of the daemon reaches the hook; only the script stays. */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	if (plan->script_fd >= 0)
		fcntl(plan->script_fd, F_SETFD, 0);
	for (;;) {
		ssize_t n = read(plan->go_r, &op, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!armed)
				_exit(0);
			/* vsswriterd is gone while this hook may be frozen. */
			child_wait_siblings(plan->wait_fds, plan->wait_count);
			len = (uint32_t)snprintf(fallback, sizeof(fallback),
						 "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin%c"
						 "VSS_STEP=%s%cVSS_REASON=vsswriterd went away%c",
						 0, step_argument(plan->step), 0, 0);
			child_exec(plan, fallback, len);
		}
		switch (op) {
		case 'a':
			armed = true;
			break;
		case 'd':
			armed = false;
			break;
		case 'w':
			if (read_full(plan->go_r, &pid, sizeof(pid)) != sizeof(pid))
				_exit(0);
			if (plan->wait_count < MAX_WAIT_PIDS) {
				int fd = pidfd_open_compat(pid);

				if (fd >= 0)
					plan->wait_fds[plan->wait_count++] = fd;
			}
			break;
		case 'g':
			if (read_full(plan->go_r, &len, sizeof(len)) != sizeof(len) ||
			    len > sizeof(env) ||
			    read_full(plan->go_r, env, len) != (ssize_t)len)
				_exit(0);
			child_exec(plan, env, len);
			break;
		default:
			_exit(0);
		}
	}
}

/* ---- children, seen from the daemon ---- */

static void child_free(struct wd_hook_child *ch)
{
	struct wd_daemon *d = ch->d;

	wd_list_del(&ch->link);
	wd_watch_del(d->loop, &ch->pid_watch);
	wd_watch_del(d->loop, &ch->out_watch);
	if (ch->pidfd >= 0)
		close(ch->pidfd);
	if (ch->out_fd >= 0)
		close(ch->out_fd);
	if (ch->go_fd >= 0)
		close(ch->go_fd);
	if (ch->hook) {
		size_t i;

		for (i = 0; i < VSW_STEP_COUNT; i++)
			if (ch->hook->pre[i] == ch)
				ch->hook->pre[i] = NULL;
	}
	free(ch);
}

static const char *hook_name(const struct wd_hook_child *ch)
{
	return ch->hook ? ch->hook->w->name : "(removed hook)";
}

static void child_line(struct wd_hook_child *ch)
{
	ch->line[ch->line_len] = '\0';
	if (ch->line_len) {
		wd_info("hook %s %s: %s", hook_name(ch), vsw_step_name(ch->step), ch->line);
		snprintf(ch->last_line, sizeof(ch->last_line), "%s", ch->line);
	}
	ch->line_len = 0;
}

static void child_output(struct wd_watch *w, uint32_t events)
{
	struct wd_hook_child *ch = w->arg;
	char buf[1024];
	ssize_t n, i;

	(void)events;
	for (;;) {
		n = read(ch->out_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n' || ch->line_len == sizeof(ch->line) - 1)
				child_line(ch);
			if (buf[i] != '\n')
				ch->line[ch->line_len++] = (unsigned char)buf[i] < 0x20 &&
							   buf[i] != '\t' ? '?' : buf[i];
		}
	}
	if (n == 0) {
		/* Everyone holding the pipe is gone. */
		child_line(ch);
		wd_watch_del(ch->d->loop, &ch->out_watch);
		close(ch->out_fd);
		ch->out_fd = -1;
	}
}

static void run_finished(struct wd_hook_run *run, int result, uint32_t failure,
			 const char *message)
{
	struct wd_hook *h = run->hook;
	struct wd_hook_run *next;

	if (run->ev) {
		struct wd_event *ev = run->ev;

		run->ev = NULL;
		ev->run = NULL;
		wd_event_finish(ev, result, failure, message);
	}
	if (h) {
		wd_list_del(&run->link);
		next = wd_list_first(&h->runs, struct wd_hook_run, link);
		if (next && !next->started)
			run_start(next);
	}
	free(run);
}

static void child_exited(struct wd_watch *w, uint32_t events)
{
	struct wd_hook_child *ch = w->arg;
	struct wd_hook_run *run = ch->run;
	char message[VSW_MESSAGE_MAX];
	uint32_t failure;
	siginfo_t info;

	(void)events;
	memset(&info, 0, sizeof(info));
	if (waitid((idtype_t)P_PIDFD, (id_t)ch->pidfd, &info, WEXITED | WNOHANG) < 0 ||
	    info.si_pid == 0)
		return;
	if (ch->out_fd >= 0)
		child_output(&ch->out_watch, EPOLLIN);
	child_line(ch);
	if (!ch->triggered || !run) {
		child_free(ch);
		return;
	}
	run->child = NULL;
	if (info.si_code == CLD_EXITED && info.si_status == 0) {
		wd_debug("hook %s %s: done", hook_name(ch), vsw_step_name(ch->step));
		child_free(ch);
		run_finished(run, 0, VSW_FAILURE_NONE, NULL);
		return;
	}
	if (info.si_code == CLD_EXITED)
		snprintf(message, sizeof(message), "%s %s exited with status %d%s%s",
			 hook_name(ch), vsw_step_name(ch->step), info.si_status,
			 ch->last_line[0] ? ": " : "", ch->last_line);
	else
		snprintf(message, sizeof(message), "%s %s was killed by signal %d%s",
			 hook_name(ch), vsw_step_name(ch->step), info.si_status,
			 ch->killed ? " at its time limit" : "");
	wd_info("hook %s", message);
	failure = info.si_code == CLD_EXITED && info.si_status == EX_TEMPFAIL_CODE ?
		  VSW_FAILURE_RETRYABLE : ch->killed ? VSW_FAILURE_TIMEOUT :
		  VSW_FAILURE_NON_RETRYABLE;
	child_free(ch);
	run_finished(run, -ECANCELED, failure, message);
}

static struct wd_hook_child *child_spawn(struct wd_hook *h, uint32_t step, char *why,
					 size_t why_len)
{
	struct wd_daemon *d = h->w->d;
	struct child_plan plan = { 0 };
	struct wd_hook_child *ch;
	int go[2], out[2], err;
	size_t i;
	pid_t pid;

	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	ch->d = d;
	ch->hook = h;
	ch->step = step;
	ch->go_fd = ch->out_fd = ch->pidfd = -1;
	wd_watch_init(&ch->pid_watch);
	wd_watch_init(&ch->out_watch);
	wd_list_init(&ch->link);
	if (pipe2(go, O_CLOEXEC) < 0) {
		err = errno;
		free(ch);
		snprintf(why, why_len, "pipe: %s", strerror(err));
		return NULL;
	}
	if (pipe2(out, O_CLOEXEC) < 0) {
		err = errno;
		close(go[0]);
		close(go[1]);
		free(ch);
		snprintf(why, why_len, "pipe: %s", strerror(err));
		return NULL;
	}
	plan.go_r = go[0];
	plan.out_w = out[1];
	plan.devnull = d->devnull_fd;
	plan.exe_fd = h->exe_fd;
	plan.script_fd = h->script_fd;
	plan.file = h->file;
	plan.interp = h->interp;
	plan.interp_arg = h->interp_arg;
	plan.step = step;
	plan.qemu_ga = h->qemu_ga;
	/* The undo waits for the children forked before it. */
	for (i = 0; i < VSW_STEP_COUNT; i++)
		if (h->pre[i] && h->pre[i]->pidfd >= 0 && plan.wait_count < MAX_WAIT_PIDS)
			plan.wait_fds[plan.wait_count++] = h->pre[i]->pidfd;
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(out[0]);
		child_main(&plan);
	}
	err = errno;
	close(go[0]);
	close(out[1]);
	if (pid < 0) {
		close(go[1]);
		close(out[0]);
		free(ch);
		snprintf(why, why_len, "fork: %s", strerror(err));
		return NULL;
	}
	ch->pid = pid;
	ch->go_fd = go[1];
	ch->out_fd = out[0];
	fcntl(ch->out_fd, F_SETFL, O_NONBLOCK);
	ch->pidfd = pidfd_open_compat(pid);
	wd_list_add_tail(&d->hook_children, &ch->link);
	if (ch->pidfd < 0 ||
	    wd_watch_add(d->loop, &ch->pid_watch, ch->pidfd, EPOLLIN, child_exited, ch) ||
	    wd_watch_add(d->loop, &ch->out_watch, ch->out_fd, EPOLLIN, child_output, ch)) {
		err = errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		child_free(ch);
		snprintf(why, why_len, "pidfd: %s", strerror(err));
		return NULL;
	}
	return ch;
}

static void child_send(struct wd_hook_child *ch, const void *data, size_t len)
{
	const char *p = data;

	while (ch->go_fd >= 0 && len) {
		ssize_t n = write(ch->go_fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void child_close_go(struct wd_hook_child *ch)
{
	if (ch->go_fd >= 0) {
		close(ch->go_fd);
		ch->go_fd = -1;
	}
}

static size_t env_add(char *buf, size_t used, const char *key, const char *value)
{
	int n = snprintf(buf + used, MAX_ENV_BLOCK - used, "%s=%s", key, value);

	if (n < 0 || (size_t)n + 1 >= MAX_ENV_BLOCK - used)
		return used;
	return used + (size_t)n + 1;
}

static void child_trigger(struct wd_hook_child *ch, struct wd_event *ev)
{
	static char env[MAX_ENV_BLOCK];
	const struct wd_session *s = ev->part->s;
	char vols[2048] = "", name[64], num[32];
	size_t used = 0, i;
	uint32_t len;
	char op = 'g';

	used = env_add(env, used, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	used = env_add(env, used, "VSS_STEP", vsw_step_name(ch->step));
	used = env_add(env, used, "VSS_WRITER", ch->hook->w->name);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)s->id);
	used = env_add(env, used, "VSS_SESSION", num);
	used = env_add(env, used, "VSS_BACKUP_TYPE", vsw_backup_type_name(s->backup_type));
	if (s->committed)
		used = env_add(env, used, "VSS_SET_ID", s->set_id);
	for (i = 0; i < s->volume_count; i++) {
		wd_device_name(s->d, s->volumes[i], name, sizeof(name));
		snprintf(vols + strlen(vols), sizeof(vols) - strlen(vols), "%s%s",
			 i ? " " : "", name);
	}
	used = env_add(env, used, "VSS_VOLUMES", vols);
	if (ev->step == VSW_STEP_BACKUP_COMPLETE)
		used = env_add(env, used, "VSS_SUCCESS", ev->success ? "1" : "0");
	if (ev->step == VSW_STEP_ABORT || (ev->step == VSW_STEP_BACKUP_COMPLETE && !ev->success))
		used = env_add(env, used, "VSS_REASON", ev->reason);
	if (ch->step == VSW_STEP_FREEZE) {
		snprintf(num, sizeof(num), "%u", ev->part->freeze_window_ms);
		used = env_add(env, used, "VSS_FREEZE_WINDOW_MS", num);
	}
	len = (uint32_t)used;
	child_send(ch, &op, 1);
	child_send(ch, &len, sizeof(len));
	child_send(ch, env, used);
	child_close_go(ch);
	ch->triggered = true;
}

/* ---- opening a hook ahead ---- */

static void hook_close_files(struct wd_hook *h)
{
	if (h->exe_fd >= 0)
		close(h->exe_fd);
	if (h->script_fd >= 0)
		close(h->script_fd);
	h->exe_fd = h->script_fd = -1;
}

/* Opens the hook, and its interpreter if it is a script. */
static int hook_open_files(struct wd_hook *h, char *why, size_t why_len)
{
	char head[256 + 2];
	struct stat st;
	ssize_t n;
	int fd;

	if (h->exe_fd >= 0)
		return 0;
	fd = open(h->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "%s: %s", h->path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(why, why_len, "%s: not a regular file", h->path);
		return -EINVAL;
	}
	n = pread(fd, head, sizeof(head) - 1, 0);
	head[n > 0 ? n : 0] = '\0';
	if (n > 2 && head[0] == '#' && head[1] == '!') {
		char *line = head + 2, *end, *arg;

		end = strchr(line, '\n');
		if (!end) {
			close(fd);
			snprintf(why, why_len, "%s: its \"#!\" line is too long", h->path);
			return -ENOEXEC;
		}
		*end = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		arg = line + strcspn(line, " \t");
		if (*arg) {
			*arg++ = '\0';
			while (*arg == ' ' || *arg == '\t')
				arg++;
			/* The kernel passes the rest as one argument: so do we. */
			for (end = arg + strlen(arg); end > arg &&
			     (end[-1] == ' ' || end[-1] == '\t'); end--)
				end[-1] = '\0';
		}
		snprintf(h->interp, sizeof(h->interp), "%s", line);
		snprintf(h->interp_arg, sizeof(h->interp_arg), "%s", arg);
		h->exe_fd = open(h->interp, O_RDONLY | O_CLOEXEC);
		if (h->exe_fd < 0) {
			int err = errno;

			close(fd);
			snprintf(why, why_len, "%s: its interpreter %s: %s", h->path, h->interp,
				 strerror(err));
			return -err;
		}
		h->script_fd = fd;
		return 0;
	}
	h->interp[0] = h->interp_arg[0] = '\0';
	h->exe_fd = fd;
	h->script_fd = -1;
	return 0;
}

/* ---- runs ---- */

uint32_t wd_hook_timeout_ms(const struct wd_writer *w)
{
	return w->hook ? w->hook->timeout_ms : UINT32_MAX;
}

/* What a qemu-ga script is given for a step of the sequence, or 0. */
static uint32_t qemu_ga_step(struct wd_hook *h, uint32_t step)
{
	switch (step) {
	case VSW_STEP_FREEZE:
		return VSW_STEP_FREEZE;
	case VSW_STEP_THAW:
		return h->freeze_triggered && !h->thaw_done ? VSW_STEP_THAW : 0;
	case VSW_STEP_ABORT:
		/* Unlike qemu-ga, a failed freeze is thawed too. */
		return h->freeze_triggered && !h->thaw_done ? VSW_STEP_THAW : 0;
	default:
		return 0;
	}
}

static void run_start(struct wd_hook_run *run)
{
	struct wd_hook *h = run->hook;
	struct wd_daemon *d = h->w->d;
	struct wd_hook_child *ch;
	char why[VSW_MESSAGE_MAX];
	size_t i;

	if (!run->ev) {
		run_finished(run, 0, 0, NULL);
		return;
	}
	ch = h->pre[run->step];
	if (ch) {
		h->pre[run->step] = NULL;
	} else {
		if (d->frozen)
			return;	/* wd_hooks_resume() starts it after the thaw */
		if (hook_open_files(h, why, sizeof(why)) ||
		    !(ch = child_spawn(h, run->step, why, sizeof(why)))) {
			struct wd_hook_run *next;

			wd_event_finish_soon(run->ev, -ECANCELED, VSW_FAILURE_OUT_OF_RESOURCES, why);
			run->ev->run = NULL;
			run->ev = NULL;
			wd_list_del(&run->link);
			free(run);
			next = wd_list_first(&h->runs, struct wd_hook_run, link);
			if (next && !next->started)
				run_start(next);
			return;
		}
		/* Not needed past this run unless the sequence holds it open. */
		if (!h->pre[VSW_STEP_FREEZE] && !h->pre[VSW_STEP_THAW] &&
		    !h->pre[VSW_STEP_ABORT])
			hook_close_files(h);
	}
	run->started = true;
	run->child = ch;
	ch->run = run;
	if (run->step == VSW_STEP_FREEZE) {
		h->freeze_triggered = true;
		/* From now on its thaw must come, whatever happens to us. */
		if (h->qemu_ga && h->pre[VSW_STEP_THAW])
			child_send(h->pre[VSW_STEP_THAW], "a", 1);
	}
	if (run->step == VSW_STEP_THAW)
		h->thaw_done = true;
	/* An armed undo waits for this one if the daemon dies meanwhile. */
	for (i = 0; i < VSW_STEP_COUNT; i++)
		if (h->pre[i] && h->pre[i] != ch) {
			char msg[1 + sizeof(pid_t)];

			msg[0] = 'w';
			memcpy(msg + 1, &ch->pid, sizeof(pid_t));
			child_send(h->pre[i], msg, sizeof(msg));
		}
	wd_debug("hook %s: %s (pid %d)", h->w->name, vsw_step_name(run->step), (int)ch->pid);
	child_trigger(ch, run->ev);
}

int wd_hook_run(struct wd_event *ev)
{
	struct wd_hook *h = ev->w->hook;
	struct wd_hook_run *run;
	uint32_t step = ev->step;

	if (h->qemu_ga)
		step = qemu_ga_step(h, ev->step);
	else if (ev->step == VSW_STEP_IDENTIFY)
		step = 0;
	if (!step) {
		/* Nothing to run for this step: it succeeds. */
		wd_event_finish_soon(ev, 0, VSW_FAILURE_NONE, NULL);
		return 0;
	}
	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	run->hook = h;
	run->ev = ev;
	run->step = step;
	ev->run = run;
	wd_list_init(&run->link);
	wd_list_add_tail(&h->runs, &run->link);
	if (wd_list_first(&h->runs, struct wd_hook_run, link) == run)
		run_start(run);
	return 0;
}

void wd_hook_cancel_run(struct wd_event *ev)
{
	struct wd_hook_run *run = ev->run;

	if (!run)
		return;
	ev->run = NULL;
	run->ev = NULL;
	if (!run->started) {
		wd_list_del(&run->link);
		free(run);
		return;
	}
	/* Killed, so that what comes next for the hook does not wait on it. */
	if (run->child && !run->child->killed) {
		run->child->killed = true;
		kill(-run->child->pid, SIGKILL);
		kill(run->child->pid, SIGKILL);
	}
}

void wd_hooks_resume(struct wd_daemon *d)
{
	struct wd_list *pos, *tmp;

	wd_list_for_each_safe(pos, tmp, &d->writers) {
		struct wd_writer *w = wd_container_of(pos, struct wd_writer, link);
		struct wd_hook_run *run;

		if (!w->hook)
			continue;
		run = wd_list_first(&w->hook->runs, struct wd_hook_run, link);
		if (run && !run->started)
			run_start(run);
	}
}

int wd_hook_prefork_undo(struct wd_part *part, char *why, size_t why_len)
{
	struct wd_hook *h = part->w->hook;
	int err;

	wd_hook_release(part->w);
	h->freeze_triggered = false;
	h->thaw_done = false;
	/* qemu-ga scripts have no abort: their undo (thaw) comes with freeze. */
	if (h->qemu_ga)
		return 0;
	err = hook_open_files(h, why, why_len);
	if (err)
		return err;
	h->pre[VSW_STEP_ABORT] = child_spawn(h, VSW_STEP_ABORT, why, why_len);
	if (!h->pre[VSW_STEP_ABORT]) {
		hook_close_files(h);
		return -EAGAIN;
	}
	/* Armed at once: abort undoes whatever the sequence did so far. */
	child_send(h->pre[VSW_STEP_ABORT], "a", 1);
	return 0;
}

int wd_hook_prefork(struct wd_part *part, char *why, size_t why_len)
{
	struct wd_hook *h = part->w->hook;
	static const uint32_t steps[] = { VSW_STEP_FREEZE, VSW_STEP_THAW };
	size_t i;
	int err;

	err = hook_open_files(h, why, why_len);
	if (err)
		return err;
	for (i = 0; i < 2; i++) {
		if (h->pre[steps[i]])
			continue;
		h->pre[steps[i]] = child_spawn(h, steps[i], why, why_len);
		if (!h->pre[steps[i]]) {
			wd_hook_release(part->w);
			return -EAGAIN;
		}
	}
	return 0;
}

void wd_hook_release(struct wd_writer *w)
{
	struct wd_hook *h = w->hook;
	size_t i;

	if (!h)
		return;
	for (i = 0; i < VSW_STEP_COUNT; i++) {
		struct wd_hook_child *ch = h->pre[i];

		if (!ch)
			continue;
		h->pre[i] = NULL;
		child_send(ch, "d", 1);
		child_close_go(ch);
	}
	if (wd_list_empty(&h->runs))
		hook_close_files(h);
}

void wd_hook_free(struct wd_writer *w)
{
	struct wd_hook *h = w->hook;
	struct wd_list *pos, *tmp;

	wd_hook_release(w);
	wd_list_for_each_safe(pos, tmp, &h->runs) {
		struct wd_hook_run *run = wd_container_of(pos, struct wd_hook_run, link);

		wd_list_del(&run->link);
		if (run->ev) {
			run->ev->run = NULL;
			run->ev = NULL;
		}
		if (run->child)
			run->child->run = NULL;
		free(run);
	}
	wd_list_for_each_safe(pos, tmp, &w->d->hook_children) {
		struct wd_hook_child *ch = wd_container_of(pos, struct wd_hook_child, link);

		if (ch->hook == h)
			ch->hook = NULL;
	}
	hook_close_files(h);
	free(h);
	w->hook = NULL;
}

void wd_hooks_fini(struct wd_daemon *d)
{
	while (!wd_list_empty(&d->hook_children)) {
		struct wd_hook_child *ch = wd_list_first(&d->hook_children,
							 struct wd_hook_child, link);

		if (ch->triggered) {
			kill(-ch->pid, SIGKILL);
			kill(ch->pid, SIGKILL);
		}
		child_close_go(ch);
		waitpid(ch->pid, NULL, 0);
		child_free(ch);
	}
}

/* ---- finding hooks ---- */

static bool skipped_name(const char *name)
{
	size_t len = strlen(name);
	static const char *const suffixes[] = { ".sample", "~", ".bak", ".swp" };
	size_t i;

	if (name[0] == '.')
		return true;
	if (strstr(name, ".dpkg-") || strstr(name, ".rpmnew") || strstr(name, ".rpmsave"))
		return true;
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t sl = strlen(suffixes[i]);

		if (len >= sl && !strcmp(name + len - sl, suffixes[i]))
			return true;
	}
	return false;
}

/* A stable class id for a hook: a hash of its kind and path. */
static void hook_class_id(const char *kind, const char *path, char out[VSW_ID_STRLEN])
{
	uint64_t a = 0xcbf29ce484222325ULL, b = 0x84222325cbf29ce4ULL;
	unsigned char bytes[16];
	const char *p;
	int i;

	for (p = kind; *p; p++) {
		a = (a ^ (unsigned char)*p) * 0x100000001b3ULL;
		b = (b ^ (unsigned char)*p) * 0x1000193ULL + 0x9e3779b97f4a7c15ULL;
	}
	for (p = path; *p; p++) {
		a = (a ^ (unsigned char)*p) * 0x100000001b3ULL;
		b = (b ^ (unsigned char)*p) * 0x1000193ULL + 0x9e3779b97f4a7c15ULL;
	}
	for (i = 0; i < 8; i++) {
		bytes[i] = (unsigned char)(a >> (8 * i));
		bytes[8 + i] = (unsigned char)(b >> (8 * i));
	}
	bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x50);
	bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);
	snprintf(out, VSW_ID_STRLEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6],
		 bytes[7], bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13],
		 bytes[14], bytes[15]);
}

static int hook_components(const struct wd_hook_rule *rule, struct wd_component **out,
			   size_t *count)
{
	struct wd_component *c;
	size_t i;

	*out = NULL;
	*count = 0;
	if (!rule || (!rule->path_count && !rule->device_count))
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->name = strdup("data");
	c->paths = calloc(rule->path_count + 1, sizeof(char *));
	c->devices = calloc(rule->device_count + 1, sizeof(char *));
	if (!c->name || !c->paths || !c->devices)
		goto nomem;
	for (i = 0; i < rule->path_count; i++) {
		c->paths[i] = strdup(rule->paths[i]);
		if (!c->paths[i])
			goto nomem;
		c->path_count++;
	}
	for (i = 0; i < rule->device_count; i++) {
		c->devices[i] = strdup(rule->devices[i]);
		if (!c->devices[i])
			goto nomem;
		c->device_count++;
	}
	c->backup_types = VSW_BACKUP_ALL;
	*out = c;
	*count = 1;
	return 0;
nomem:
	wd_components_free(c, 1);
	return -ENOMEM;
}

static void scan_dir(struct wd_daemon *d, const char *dir, bool qemu_ga)
{
	struct dirent **names = NULL;
	char path[VSW_WIRE_PATH_MAX + 256], wname[VSW_NAME_MAX + 1];
	int n, i;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		if (errno != ENOENT)
			wd_warn("hook directory %s: %s", dir, strerror(errno));
		return;
	}
	for (i = 0; i < n; i++) {
		const char *file = names[i]->d_name;
		const struct wd_hook_rule *rule;
		struct wd_writer *w;
		struct wd_hook *h;
		struct stat st;

		if (skipped_name(file) || i >= MAX_HOOK_FILES)
			goto next;
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
			goto next;
		if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022)) {
			wd_warn("hook %s is skipped: it must belong to root and be writable by nobody else",
				path);
			goto next;
		}
		snprintf(wname, sizeof(wname), "%s%s", qemu_ga ? "qemu-ga/" : "", file);
		w = wd_writer_find(d, wname);
		if (w && (!w->hook || w->hook->qemu_ga != qemu_ga))
			goto next;	/* a process took the name */
		rule = wd_config_hook(&d->cfg, file);
		if (!w) {
			if (d->writer_count >= WD_MAX_WRITERS)
				goto next;
			w = calloc(1, sizeof(*w));
			h = calloc(1, sizeof(*h));
			if (!w || !h) {
				free(w);
				free(h);
				goto next;
			}
			w->d = d;
			w->refs = 1;
			w->listed = true;
			w->serial = ++d->next_writer_serial;
			w->kind = qemu_ga ? VSW_KIND_QEMU_GA_HOOK : VSW_KIND_HOOK;
			snprintf(w->name, sizeof(w->name), "%s", wname);
			hook_class_id(qemu_ga ? "qemu-ga" : "hook", path, w->class_id);
			w->connected = true;
			w->state = VSW_STATE_STABLE;
			w->registered_ns = vsw_realtime_ns();
			wd_list_init(&w->events);
			h->w = w;
			h->exe_fd = h->script_fd = -1;
			h->qemu_ga = qemu_ga;
			wd_list_init(&h->runs);
			w->hook = h;
			wd_list_add_tail(&d->writers, &w->link);
			d->writer_count++;
			wd_info("hook writer %s found: %s", w->name, path);
		}
		h = w->hook;
		snprintf(h->path, sizeof(h->path), "%s", path);
		snprintf(h->file, sizeof(h->file), "%s", file);
		h->seen = true;
		/* A changed file is another instance of the writer. */
		if (!w->instance_id[0] || h->st_ino != st.st_ino || h->st_dev != st.st_dev ||
		    h->st_size != st.st_size || h->st_mtim.tv_sec != st.st_mtim.tv_sec ||
		    h->st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
			vsw_random_uuid(w->instance_id);
			h->st_ino = st.st_ino;
			h->st_dev = st.st_dev;
			h->st_size = st.st_size;
			h->st_mtim = st.st_mtim;
		}
		w->writer_class = rule && rule->writer_class ? rule->writer_class :
				  qemu_ga ? d->cfg.qemu_ga_hook_class : d->cfg.hook_class;
		h->timeout_ms = rule && rule->timeout_ms ? rule->timeout_ms : d->cfg.hook_timeout_ms;
		w->freeze_window_ms = VSW_DEFAULT_FREEZE_WINDOW_MS;
		if (!w->active) {
			struct wd_component *c;
			size_t count;

			if (hook_components(rule, &c, &count) == 0) {
				wd_components_free(w->components, w->component_count);
				w->components = c;
				w->component_count = count;
			}
		}
next:
		free(names[i]);
	}
	free(names);
}

void wd_hooks_scan(struct wd_daemon *d)
{
	struct wd_list *pos, *tmp;

	wd_list_for_each_safe(pos, tmp, &d->writers) {
		struct wd_writer *w = wd_container_of(pos, struct wd_writer, link);

		if (w->hook)
			w->hook->seen = false;
	}
	if (d->cfg.hook_dir[0])
		scan_dir(d, d->cfg.hook_dir, false);
	if (d->cfg.qemu_ga_hook_dir[0])
		scan_dir(d, d->cfg.qemu_ga_hook_dir, true);
	wd_list_for_each_safe(pos, tmp, &d->writers) {
		struct wd_writer *w = wd_container_of(pos, struct wd_writer, link);

		if (w->hook && !w->hook->seen && !w->active) {
			wd_info("hook writer %s is gone", w->name);
			w->connected = false;
			wd_writer_unlist(w);
		}
	}
}
