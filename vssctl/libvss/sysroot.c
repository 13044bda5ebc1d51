// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Where the system's /dev, /sys and /proc are. Alone in its file, as
 * vss_open() is: the unit tests link their own vss_system_root() that
 * points at a tree they made, and the library has no test hook.
 */
#include "internal.h"

const char *vss_system_root(void)
{
	return "";
}
