/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kselftest harness, with a per-test time limit that suits a VM under
 * TCG: its default of 30 s is too tight for tests that move tens of
 * megabytes when the machine is busy. Tests are still stopped if they
 * hang.
 */
#ifndef VSS_SELFTEST_HARNESS_H
#define VSS_SELFTEST_HARNESS_H

#include <stdlib.h>
#include <unistd.h>

/*
 * A kernel with lockdep, KASAN and kmemleak runs the same test several
 * times slower: scripts/vm-run sets VSS_TIMEOUT_SCALE from the kernel's
 * description (the debug kernel's TIMEOUT_SCALE), and every test's limit,
 * which the harness arms with alarm(), is multiplied by it.
 */
static inline unsigned int vss_scaled_alarm(unsigned int seconds)
{
	const char *scale = getenv("VSS_TIMEOUT_SCALE");
	unsigned long n = scale ? strtoul(scale, NULL, 10) : 1;

	return alarm(seconds * (n ? n : 1));
}

#define alarm(seconds) vss_scaled_alarm(seconds)
#include "kselftest_harness.h"
#undef alarm
#include "vss_nl.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

/*
 * The end of a fixture's teardown: no snapshot may be left, and whatever
 * a failed test left goes, with the devices' tracking when @untrack (it
 * outlives the snapshots and keeps the devices open).
 */
static inline void vss_nl_teardown(struct __test_metadata *_metadata,
				   struct vss_nl *nl, bool untrack)
{
	int left;

	if (nl->fd < 0)
		return;
	left = vss_count_snapshots(nl);
	/* (An ASSERT that failed leaves the harness's log trigger set.) */
	if (left) {
		EXPECT_EQ(0, left) TH_LOG("snapshots left over");
	}
	vss_delete_all(nl);
	if (untrack)
		vss_untrack_all(nl);
	vss_nl_close(nl);
}

#endif /* VSS_SELFTEST_HARNESS_H */
