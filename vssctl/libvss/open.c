// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vss_open() alone in its file: a test program linking libvss.a can then
 * define its own vss_open() that connects to a simulated kernel, without
 * any test hook in the library itself.
 */
#include "internal.h"

VSS_EXPORT int vss_open(struct vss_handle **out)
{
	int fd, err;

	*out = NULL;
	err = vss_netlink_socket(&fd);
	if (err)
		return err;
	return vss_open_fd(fd, out);
}
