// SPDX-License-Identifier: GPL-2.0
/*
 * Kept apart from vssctl.c so that the tests can link the whole tool
 * around their own main().
 */
#include "vssctl.h"

int main(int argc, char **argv)
{
	return vssctl_main(argc, argv);
}
