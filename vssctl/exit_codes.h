/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Exit codes of vssctl. Scripts rely on them: never renumber, only add.
 * Documented in vssctl(8), EXIT STATUS.
 */
#ifndef VSSCTL_EXIT_CODES_H
#define VSSCTL_EXIT_CODES_H

enum vssctl_exit {
	VSSCTL_EXIT_OK = 0,		/* success */
	VSSCTL_EXIT_FAILURE = 1,	/* any failure not listed below */
	VSSCTL_EXIT_USAGE = 2,		/* invalid arguments or usage */
	VSSCTL_EXIT_NO_MODULE = 3,	/* the vss kernel module is not loaded */
	VSSCTL_EXIT_PERMISSION = 4,	/* EPERM/EACCES: needs CAP_SYS_ADMIN */
	VSSCTL_EXIT_NOT_FOUND = 5,	/* unknown id, unknown device or path */
	VSSCTL_EXIT_BUSY = 6,		/* EBUSY: device or image in use */
	VSSCTL_EXIT_AMBIGUOUS = 7,	/* id prefix matches several objects */
	VSSCTL_EXIT_STORAGE = 8,	/* ENOSPC, EXDEV: storage problem */
	VSSCTL_EXIT_FULL_BACKUP = 9,	/* ESTALE, ENODATA: changes unknown */
	VSSCTL_EXIT_ALREADY = 10,	/* EALREADY: already tracked */
	VSSCTL_EXIT_WRITER = 11,	/* a writer failed or vetoed the set */
	VSSCTL_EXIT_NO_WRITERD = 12,	/* vsswriterd is not running */
};

#endif /* VSSCTL_EXIT_CODES_H */
