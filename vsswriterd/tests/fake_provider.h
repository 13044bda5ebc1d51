/* SPDX-License-Identifier: GPL-2.0 */
/* A provider for the unit tests: sets in memory, failures on request. */
#ifndef WD_FAKE_PROVIDER_H
#define WD_FAKE_PROVIDER_H

#include "daemon.h"

#define FAKE_MAX_SETS 32

struct fake_set {
	char id[VSW_ID_STRLEN];
	dev_t devices[WD_MAX_VOLUMES];
	size_t device_count;
	uint64_t created_ns;
	uint32_t hold_limit_ms;
	bool exists;
};

struct fake_provider {
	struct fake_set sets[FAKE_MAX_SETS];
	size_t set_count;
	int creates;
	int deletes;
	int fail_create;		/* negative errno to fail with */
	int fail_prepare;
	unsigned int create_delay_ms;
	/* Called inside create, while the writers are frozen. */
	void (*during_create)(void *arg);
	void *during_arg;
	char last_storage[256];
};

extern const struct wd_provider fake_provider_ops;
size_t fake_sets_alive(const struct fake_provider *fp);
struct fake_set *fake_set_find(struct fake_provider *fp, const char *id);

#endif
