// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl exec --idle: vssctl_idle_priority() leaves its process (and what
 * that process forks) at nice 19 in the idle I/O class, and nobody else.
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vssctl.h"

#define IOPRIO_CLASS_SHIFT	13
#define IOPRIO_WHO_PROCESS	1
#define IOPRIO_CLASS_IDLE	3

struct prio {
	int err;
	int nice;
	int io_class;
	int child_nice;		/* of a process forked after the call */
	int child_io_class;
	char what[64];
};

static int io_class(void)
{
	long v = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);

	return v < 0 ? -1 : (int)(v >> IOPRIO_CLASS_SHIFT);
}

static int nice_value(void)
{
	errno = 0;
	return getpriority(PRIO_PROCESS, 0);
}

/* Runs vssctl_idle_priority() in a child; what it and its own child saw. */
static struct prio in_child(void)
{
	struct prio p = { .err = -ECHILD };
	int fds[2];
	pid_t pid;

	if (pipe(fds))
		return p;
	pid = fork();
	if (pid == 0) {
		const char *what = "";
		int inner[2];

		close(fds[0]);
		memset(&p, 0, sizeof(p));
		p.err = vssctl_idle_priority(&what);
		strncpy(p.what, what, sizeof(p.what) - 1);
		p.nice = nice_value();
		p.io_class = io_class();
		if (!pipe(inner)) {
			pid_t grandchild = fork();

			if (grandchild == 0) {
				int v[2] = { nice_value(), io_class() };

				if (write(inner[1], v, sizeof(v)) != sizeof(v))
					_exit(1);
				_exit(0);
			}
			if (grandchild > 0) {
				int v[2] = { -100, -100 };

				if (read(inner[0], v, sizeof(v)) == sizeof(v)) {
					p.child_nice = v[0];
					p.child_io_class = v[1];
				}
				waitpid(grandchild, NULL, 0);
			}
		}
		if (write(fds[1], &p, sizeof(p)) != sizeof(p))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	if (pid > 0) {
		if (read(fds[0], &p, sizeof(p)) != sizeof(p))
			p.err = -EPIPE;
		waitpid(pid, NULL, 0);
	}
	close(fds[0]);
	return p;
}

int main(void)
{
	int nice_before = nice_value(), class_before = io_class();
	struct prio p = in_child();

	if (!t_ok(p.err == 0, "vssctl_idle_priority() succeeds unprivileged or not"))
		t_diag("error %d (%s) setting the %s", p.err, strerror(-p.err), p.what);
	t_int_eq(p.nice, VSSCTL_IDLE_NICE, "the process is at nice 19");
	t_int_eq(p.io_class, IOPRIO_CLASS_IDLE, "the process is in the idle I/O class");
	t_int_eq(p.child_nice, VSSCTL_IDLE_NICE, "a process it forks afterwards is at nice 19");
	t_int_eq(p.child_io_class, IOPRIO_CLASS_IDLE, "... and in the idle I/O class");
	t_ok(nice_value() == nice_before && io_class() == class_before,
	     "the caller's parent keeps its own priorities");
	/* Called again (a nice value is already 19): still fine. */
	p = in_child();
	t_ok(p.err == 0 && p.nice == VSSCTL_IDLE_NICE, "calling it at nice 19 already is harmless");
	return t_done();
}
