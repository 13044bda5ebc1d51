/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's log. Lines are formatted into a ring that was allocated
 * (and locked) at start; they reach stderr or syslog only while nothing
 * is frozen. While a writer is frozen, the destination may be a file on
 * the very filesystem that writer holds still, so nothing is written
 * until the last thaw.
 */
#ifndef WD_LOG_H
#define WD_LOG_H

#include <stdbool.h>
#include <syslog.h>

enum wd_log_target {
	WD_LOG_STDERR,		/* "vsswriterd: ..." lines, or journal-prefixed */
	WD_LOG_SYSLOG,
	WD_LOG_NONE,		/* tests: keep lines in the ring only */
};

void wd_log_init(enum wd_log_target target, bool debug);
void wd_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Held while anything is frozen; releasing the last hold flushes. */
void wd_log_hold(void);
void wd_log_release(void);
bool wd_log_held(void);
/* Writes the ring out now (only when not held). */
void wd_log_flush(void);
/* For tests: the most recent line containing @needle, or NULL. */
const char *wd_log_find(const char *needle);
void wd_log_fini(void);

#define wd_err(...)	wd_log(LOG_ERR, __VA_ARGS__)
#define wd_warn(...)	wd_log(LOG_WARNING, __VA_ARGS__)
#define wd_info(...)	wd_log(LOG_INFO, __VA_ARGS__)
#define wd_debug(...)	wd_log(LOG_DEBUG, __VA_ARGS__)

#endif /* WD_LOG_H */
