// SPDX-License-Identifier: GPL-2.0
/*
 * Idle priority for a backup tool (vssctl exec --idle): the CPU and the
 * disks go to the system being backed up first. Set on the calling
 * process, and so inherited by everything it then runs.
 */
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vssctl.h"

/* From the kernel's uapi/linux/ioprio.h, which glibc does not wrap. */
#define IOPRIO_CLASS_SHIFT	13
#define IOPRIO_CLASS_IDLE	3
#define IOPRIO_WHO_PROCESS	1

int vssctl_idle_priority(const char **what)
{
	/*
	 * Raising one's own nice value needs no privilege; so does the idle
	 * I/O class (since Linux 2.6.25).
	 */
	if (setpriority(PRIO_PROCESS, 0, VSSCTL_IDLE_NICE)) {
		*what = "CPU priority (nice 19)";
		return -errno;
	}
	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0,
		    IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT)) {
		*what = "I/O priority (idle class)";
		return -errno;
	}
	return 0;
}
