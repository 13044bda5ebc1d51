/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the files of vssctl cbt share: the subcommands, and the default
 * directory of saved maps.
 */
#ifndef VSSCTL_CMD_CBT_H
#define VSSCTL_CMD_CBT_H

#include <stdio.h>

#include "vssctl.h"

/* Where `cbt save` and `cbt restore` keep maps without --dir. */
#define VSSCTL_CBT_STATE_DIR	"/var/lib/vss/cbt"
/* A state file's name: the device's kernel name and this suffix. */
#define VSSCTL_CBT_SUFFIX	".cbt"

int vssctl_cbt_changes(struct vssctl *ctx, int argc, char **argv);
int vssctl_cbt_save(struct vssctl *ctx, int argc, char **argv);
int vssctl_cbt_restore(struct vssctl *ctx, int argc, char **argv);

/* --json and --help only; -1 after --help, else 0 or an exit code. */
int vssctl_cbt_simple_options(struct vssctl *ctx, int argc, char **argv,
			      void (*usage)(FILE *));

/* vssctl_report() with "not tracked" for ENOENT. */
int vssctl_cbt_report(const struct vssctl *ctx, const struct vss_handle *h,
		      int err, const char *device);

#endif /* VSSCTL_CMD_CBT_H */
