/* SPDX-License-Identifier: GPL-2.0 */
/*
 * /etc/vss/vsswriterd.conf: who may be a requester, which uid each named
 * writer connects from, where the hooks are, and the time limits. The
 * format is described in vsswriterd(8) and Documentation/writers.rst.
 */
#ifndef WD_CONFIG_H
#define WD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire.h"

#define WD_DEFAULT_CONFIG	"/etc/vss/vsswriterd.conf"
#define WD_DEFAULT_HOOK_DIR	"/etc/vss/writers.d"
#define WD_DEFAULT_STATE_DIR	"/run/vss/writerd"

struct wd_writer_rule {
	char name[VSW_NAME_MAX + 1];
	uid_t uid;
};

struct wd_hook_rule {
	char name[VSW_NAME_MAX + 1];	/* file name in a hook directory */
	uint32_t writer_class;		/* 0: the default */
	uint32_t timeout_ms;		/* 0: the default */
	char **paths;			/* its components, if any */
	size_t path_count;
	char **devices;
	size_t device_count;
};

struct wd_config {
	bool has_requester_group;
	gid_t requester_gid;
	char hook_dir[VSW_WIRE_PATH_MAX];	/* "" for none */
	char qemu_ga_hook_dir[VSW_WIRE_PATH_MAX];
	uint32_t hook_class;		/* of hooks without a rule */
	uint32_t qemu_ga_hook_class;
	uint32_t hook_timeout_ms;	/* per hook and step */
	uint32_t step_timeout_ms;	/* default for every step */
	uint32_t max_step_timeout_ms;	/* the most a requester may ask */
	uint32_t hold_limit_ms;		/* default kernel hold limit */
	uint32_t max_connections;
	struct wd_writer_rule *writers;
	size_t writer_count;
	struct wd_hook_rule *hooks;
	size_t hook_count;
};

void wd_config_defaults(struct wd_config *c);
/*
 * Reads @path over the defaults. A missing file is no error when
 * @missing_ok. Users and groups may be names (looked up now, once) or
 * numbers. Returns 0, or -errno with @why saying "PATH:LINE: what".
 */
int wd_config_load(struct wd_config *c, const char *path, bool missing_ok,
		   char *why, size_t why_len);
void wd_config_free(struct wd_config *c);

const struct wd_writer_rule *wd_config_writer(const struct wd_config *c,
					      const char *name);
const struct wd_hook_rule *wd_config_hook(const struct wd_config *c,
					  const char *name);

#endif /* WD_CONFIG_H */
