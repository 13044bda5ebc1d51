/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kselftest harness, with a per-test time limit that suits a VM under
 * TCG: its default of 30 s is too tight for tests that move tens of
 * megabytes when the machine is busy. Tests are still stopped if they
 * hang.
 */
#ifndef VSS_SELFTEST_HARNESS_H
#define VSS_SELFTEST_HARNESS_H

#include "kselftest_harness.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#endif /* VSS_SELFTEST_HARNESS_H */
