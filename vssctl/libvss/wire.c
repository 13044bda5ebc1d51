// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The wire format of vsswriterd, compiled into libvss for the session
 * API (session.c). One source for the daemon, libvsswriter and libvss:
 * its functions stay hidden in libvss.so.
 */
#include "../../vsswriterd/wire.c"
