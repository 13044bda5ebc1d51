/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal TAP producer for the host unit tests: "ok N - what" and
 * "not ok N - what" lines, "# ..." diagnostics, and a plan at the end.
 * tests/run.sh adds the lines of every test program up.
 */
#ifndef VSS_TEST_HARNESS_H
#define VSS_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool t_ok(bool pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void t_skip(const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void t_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the plan; returns the exit status for main(). */
int t_done(void);

bool t_int_eq(long long got, long long want, const char *what);
bool t_str_eq(const char *got, const char *want, const char *what);
bool t_contains(const char *haystack, const char *needle, const char *what);

/* A fresh directory for this test program, removed by nobody: it lives
 * under VSS_TEST_TMP (the build tree), or /tmp. */
const char *t_tmpdir(void);

/*
 * Runs @argv with @env_extra ("NAME=value" strings, NULL-terminated, may
 * be NULL) added to the environment; captures stdout and stderr (caller
 * frees them). Returns the exit status, or 128 + signal number.
 */
int t_run(const char *const *argv, const char *const *env_extra, char **out,
	  char **err);

/* Exit status of t_run_unprivileged() when the capability cannot be dropped. */
#define T_RUN_CANNOT_DROP 125

/* As t_run(), with CAP_SYS_ADMIN dropped from the child's bounding set, so
 * that even root runs @argv without it. */
int t_run_unprivileged(const char *const *argv, const char *const *env_extra,
		       char **out, char **err);

#endif /* VSS_TEST_HARNESS_H */
