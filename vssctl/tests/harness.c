// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <linux/capability.h>
#include <sys/wait.h>

#include "harness.h"

static int test_number;
static int failures;

static void vreport(bool pass, const char *suffix, const char *fmt, va_list ap)
{
	printf("%s %d - ", pass ? "ok" : "not ok", ++test_number);
	vprintf(fmt, ap);
	printf("%s\n", suffix);
	fflush(stdout);
}

bool t_ok(bool pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(pass, "", fmt, ap);
	va_end(ap);
	if (!pass)
		failures++;
	return pass;
}

void t_skip(const char *reason, const char *fmt, ...)
{
	char suffix[256];
	va_list ap;

	snprintf(suffix, sizeof(suffix), " # SKIP %s", reason);
	va_start(ap, fmt);
	vreport(true, suffix, fmt, ap);
	va_end(ap);
}

void t_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

int t_done(void)
{
	printf("1..%d\n", test_number);
	return failures ? 1 : 0;
}

bool t_int_eq(long long got, long long want, const char *what)
{
	if (t_ok(got == want, "%s", what))
		return true;
	t_diag("got %lld, want %lld", got, want);
	return false;
}

bool t_str_eq(const char *got, const char *want, const char *what)
{
	bool pass = got && want ? !strcmp(got, want) : got == want;

	if (t_ok(pass, "%s", what))
		return true;
	t_diag("got  \"%s\"", got ? got : "(null)");
	t_diag("want \"%s\"", want ? want : "(null)");
	return false;
}

bool t_contains(const char *haystack, const char *needle, const char *what)
{
	if (t_ok(haystack && strstr(haystack, needle), "%s", what))
		return true;
	t_diag("\"%s\" not found in:", needle);
	t_diag("%s", haystack ? haystack : "(null)");
	return false;
}

const char *t_tmpdir(void)
{
	static char dir[PATH_MAX];
	const char *base;

	if (dir[0])
		return dir;
	base = getenv("VSS_TEST_TMP");
	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(dir, sizeof(dir), "%s/vss-test-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(99);
	}
	return dir;
}

/* Appends what is readable on @fd to a growing string. */
static bool drain(int fd, char **buf, size_t *len)
{
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));
	char *grown;

	if (n <= 0)
		return false;
	grown = realloc(*buf, *len + (size_t)n + 1);
	if (!grown)
		abort();
	memcpy(grown + *len, chunk, (size_t)n);
	*len += (size_t)n;
	grown[*len] = '\0';
	*buf = grown;
	return true;
}

static int run_child(const char *const *argv, const char *const *env_extra,
		     char **out, char **err, bool drop_admin)
{
	int out_pipe[2], err_pipe[2], status;
	size_t out_len = 0, err_len = 0;
	bool out_open = true, err_open = true;
	pid_t pid;

	*out = calloc(1, 1);
	*err = calloc(1, 1);
	if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		size_t i;

		dup2(out_pipe[1], STDOUT_FILENO);
		dup2(err_pipe[1], STDERR_FILENO);
		for (i = 0; env_extra && env_extra[i]; i++)
			putenv((char *)env_extra[i]);
		if (drop_admin && prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0))
			_exit(T_RUN_CANNOT_DROP);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(out_pipe[1]);
	close(err_pipe[1]);
	while (out_open || err_open) {
		struct pollfd pfd[2] = {
			{ .fd = out_open ? out_pipe[0] : -1, .events = POLLIN },
			{ .fd = err_open ? err_pipe[0] : -1, .events = POLLIN },
		};

		if (poll(pfd, 2, -1) < 0)
			continue;
		if (pfd[0].revents && !drain(out_pipe[0], out, &out_len))
			out_open = false;
		if (pfd[1].revents && !drain(err_pipe[0], err, &err_len))
			err_open = false;
	}
	close(out_pipe[0]);
	close(err_pipe[0]);
	while (waitpid(pid, &status, 0) < 0)
		;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int t_run(const char *const *argv, const char *const *env_extra, char **out,
	  char **err)
{
	return run_child(argv, env_extra, out, err, false);
}

int t_run_unprivileged(const char *const *argv, const char *const *env_extra,
		       char **out, char **err)
{
	return run_child(argv, env_extra, out, err, true);
}
