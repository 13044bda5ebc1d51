// SPDX-License-Identifier: GPL-2.0
/*
 * The log ring; see log.h. Everything it needs is allocated by
 * wd_log_init(), before mlockall(), so that logging while frozen never
 * allocates, faults a page in from a file, or writes anywhere.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "log.h"
#include "wire.h"

#define RING_LINES	2048
#define LINE_MAX_LEN	480

struct log_line {
	int priority;
	uint64_t realtime_ns;
	char text[LINE_MAX_LEN];
};

static struct {
	struct log_line *lines;
	size_t head;		/* oldest unflushed */
	size_t count;		/* unflushed */
	size_t last;		/* newest ever written, for wd_log_find() */
	bool any;
	unsigned long dropped;
	int holds;
	enum wd_log_target target;
	bool debug;
	bool journal;		/* stderr is the journal: "<N>" prefixes */
} ring;

static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	return fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void wd_log_init(enum wd_log_target target, bool debug)
{
	if (!ring.lines) {
		ring.lines = calloc(RING_LINES, sizeof(*ring.lines));
		if (!ring.lines) {
			fputs("vsswriterd: out of memory for the log ring\n", stderr);
			exit(1);
		}
	}
	ring.target = target;
	ring.debug = debug;
	ring.journal = target == WD_LOG_STDERR && stderr_is_journal();
	if (target == WD_LOG_SYSLOG)
		openlog("vsswriterd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	/* localtime_r() reads /etc/localtime once: now, not while frozen. */
	tzset();
}

void wd_log_fini(void)
{
	/* At the end, whatever is still held goes out. */
	ring.holds = 0;
	wd_log_flush();
	free(ring.lines);
	memset(&ring, 0, sizeof(ring));
}

static void emit(const struct log_line *l)
{
	char stamp[32];
	struct tm tm;
	time_t secs;

	switch (ring.target) {
	case WD_LOG_SYSLOG:
		syslog(l->priority, "%s", l->text);
		break;
	case WD_LOG_STDERR:
		if (ring.journal) {
			fprintf(stderr, "<%d>%s\n", l->priority, l->text);
			break;
		}
		secs = (time_t)(l->realtime_ns / 1000000000ULL);
		localtime_r(&secs, &tm);
		strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
		fprintf(stderr, "vsswriterd[%s.%03u]: %s\n", stamp,
			(unsigned int)(l->realtime_ns / 1000000 % 1000), l->text);
		break;
	case WD_LOG_NONE:
		break;
	}
}

void wd_log_flush(void)
{
	if (ring.holds || !ring.lines)
		return;
	while (ring.count) {
		emit(&ring.lines[ring.head]);
		ring.head = (ring.head + 1) % RING_LINES;
		ring.count--;
	}
	if (ring.dropped && ring.target != WD_LOG_NONE) {
		struct log_line l = { .priority = LOG_WARNING,
				      .realtime_ns = vsw_realtime_ns() };

		snprintf(l.text, sizeof(l.text),
			 "%lu log lines were lost while writers were frozen (ring full)",
			 ring.dropped);
		emit(&l);
	}
	ring.dropped = 0;
	if (ring.target == WD_LOG_STDERR)
		fflush(stderr);
}

void wd_log(int priority, const char *fmt, ...)
{
	struct log_line *l;
	size_t slot;
	va_list ap;

	if (!ring.lines || (priority == LOG_DEBUG && !ring.debug))
		return;
	if (ring.count == RING_LINES) {
		if (ring.holds) {
			ring.dropped++;
			return;
		}
		wd_log_flush();
	}
	slot = (ring.head + ring.count) % RING_LINES;
	l = &ring.lines[slot];
	l->priority = priority;
	l->realtime_ns = vsw_realtime_ns();
	va_start(ap, fmt);
	vsnprintf(l->text, sizeof(l->text), fmt, ap);
	va_end(ap);
	ring.count++;
	ring.last = slot;
	ring.any = true;
	if (!ring.holds)
		wd_log_flush();
}

void wd_log_hold(void)
{
	ring.holds++;
}

void wd_log_release(void)
{
	if (ring.holds > 0 && --ring.holds == 0)
		wd_log_flush();
}

bool wd_log_held(void)
{
	return ring.holds > 0;
}

const char *wd_log_find(const char *needle)
{
	size_t i, slot;

	if (!ring.any)
		return NULL;
	for (i = 0; i < RING_LINES; i++) {
		slot = (ring.last + RING_LINES - i) % RING_LINES;
		if (strstr(ring.lines[slot].text, needle))
			return ring.lines[slot].text;
	}
	return NULL;
}
