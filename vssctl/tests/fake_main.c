// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl-fake: the real vssctl, talking to tests/fake_kernel.c instead of
 * a kernel. This file's vss_open() and vss_event_open_socket() take the
 * place of libvss's (each is alone in its archive member, so the linker
 * never pulls the real ones in). Configured by the environment:
 *   FAKE_VSS_STATE=FILE     snapshots kept between runs
 *   FAKE_VSS_NO_MODULE=1    the family is not registered
 *   FAKE_VSS_DENY=1         mutating commands get EPERM
 *   FAKE_VSS_BUSY=M:m       creating a set with that device gets EBUSY
 *   FAKE_VSS_PROTOCOL=N     the module claims protocol N
 *   FAKE_VSS_EVENTS=N       N events are waiting once subscribed
 *   FAKE_VSS_CBT_EVENTS=1   and the three tracking events after them
 *   FAKE_VSS_ROOT=DIR       the library reads /dev, /sys and /proc there
 */
#include <stdio.h>
#include <stdlib.h>

#include "fake_kernel.h"
#include "libvss/internal.h"
#include "vssctl.h"

static struct fake_kernel *kernel;

static bool env_flag(const char *name)
{
	const char *v = getenv(name);

	return v && *v && *v != '0';
}

int vss_open(struct vss_handle **out)
{
	struct fake_options opts = { 0 };
	const char *busy = getenv("FAKE_VSS_BUSY");
	const char *protocol = getenv("FAKE_VSS_PROTOCOL");
	int fd;

	opts.no_family = env_flag("FAKE_VSS_NO_MODULE");
	opts.deny = env_flag("FAKE_VSS_DENY");
	opts.state_file = getenv("FAKE_VSS_STATE");
	if (busy && sscanf(busy, "%u:%u", &opts.busy_major, &opts.busy_minor) != 2)
		opts.busy_major = 0;
	if (protocol)
		opts.protocol = (uint32_t)strtoul(protocol, NULL, 10);
	if (getenv("FAKE_VSS_ROOT"))
		snprintf(fake_system_root, sizeof(fake_system_root), "%s",
			 getenv("FAKE_VSS_ROOT"));
	kernel = fake_kernel_start(&opts, &fd);
	return vss_open_fd(fd, out);
}

int vss_event_open_socket(struct vss_handle *h, int *fd_out)
{
	const char *count = getenv("FAKE_VSS_EVENTS");
	struct fake_snapshot about;
	unsigned long i, n = count ? strtoul(count, NULL, 10) : 0;
	int fd;

	(void)h;
	fd = fake_kernel_event_socket(kernel);
	if (fd < 0)
		return fd;
	fake_snapshot_init(&about, "0badcafe-0000-4000-8000-000000000001",
			   "5e7c0de0-0000-4000-8000-000000000001", 254, 16, "vdb", 1);
	for (i = 0; i < n; i++) {
		switch (i % 3) {
		case 0:
			fake_kernel_send_event(kernel, VSS_EVENT_SNAPSHOT_CREATED,
					       &about, 0, NULL, false);
			break;
		case 1:
			fake_kernel_send_event(kernel, VSS_EVENT_STORAGE_LOW, &about,
					       0, NULL, true);
			break;
		default:
			fake_kernel_send_event(kernel, VSS_EVENT_SNAPSHOT_FAILED, &about,
					       ENOSPC, "storage \"full\"", false);
			break;
		}
	}
	if (env_flag("FAKE_VSS_CBT_EVENTS")) {
		struct fake_cbt t = { .used = true, .major = 254, .minor = 16, .seq = 7,
				      .oldest_seq = 3 };

		fake_make_id(t.generation, 0x9e, 1);
		fake_kernel_send_cbt_event(kernel, VSS_EVENT_CBT_NEW_GENERATION, &t,
					   "the device was resized");
		fake_kernel_send_cbt_event(kernel, VSS_EVENT_CBT_STOPPED, &t, "untracked");
		fake_kernel_send_cbt_event(kernel, VSS_EVENT_CBT_HISTORY_DROPPED, &t, NULL);
	}
	*fd_out = fd;
	return 0;
}

int main(int argc, char **argv)
{
	int code = vssctl_main(argc, argv);

	fake_kernel_stop(kernel);
	return code;
}
