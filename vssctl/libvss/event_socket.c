// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The socket events arrive on. Alone in its file for the same reason as
 * vss_open(): a test program can supply its own.
 */
#include <unistd.h>
#include <sys/socket.h>

#include "internal.h"

/* Room for bursts of events (a set of 64 devices failing at once). */
#define VSS_EVENT_RCVBUF	(1024 * 1024)

int vss_event_open_socket(struct vss_handle *h, int *fd_out)
{
	int rcvbuf = VSS_EVENT_RCVBUF;
	int fd, err;

	err = vss_netlink_socket(&fd);
	if (err)
		return err;
	if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
		       &h->events_group, sizeof(h->events_group)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	/* Best effort: the default buffer still works, only loses sooner. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	*fd_out = fd;
	return 0;
}
