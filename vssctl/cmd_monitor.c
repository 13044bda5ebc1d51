// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl monitor: print the module's events as they happen.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "output.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void monitor_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl monitor [--count N] [--timeout SEC] [--json]\n"
		"\n"
		"Print one line per event of the vss module (one JSON object per line\n"
		"with --json) until interrupted.\n"
		"\n"
		"Options:\n"
		"  -c, --count N      exit after N events\n"
		"  -t, --timeout SEC  exit after SEC seconds; with --count, failing\n"
		"                     (exit status 1) if fewer than N events came\n"
		"  -j, --json         print JSON\n"
		"  -h, --help         print this help\n");
}

static int parse_positive(const char *text, uint64_t max, uint64_t *out)
{
	if (!text || !*text || text[strspn(text, "0123456789")] != '\0' ||
	    vss_parse_size(text, out) || *out < 1 || *out > max)
		return -EINVAL;
	return 0;
}

/*
 * Without SA_RESTART, so that a signal wakes vss_event_next() with EINTR
 * and the loop can end cleanly.
 */
static void install_stop_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int print_event(const struct vssctl *ctx, const struct vss_event_info *ev)
{
	char line[2048];

	if (ctx->json) {
		if (vssctl_json_print(ctx, vssctl_json_event(ev), stdout))
			return -ENOMEM;
	} else {
		vssctl_format_event(ev, line, sizeof(line));
		printf("%s\n", line);
	}
	/* Whoever reads a pipe from us wants each event when it happens. */
	if (fflush(stdout))
		return -errno;
	return 0;
}

int cmd_monitor(struct vssctl *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t count = 0, seen = 0, timeout_s = 0;
	struct vss_handle *h = NULL;
	int64_t deadline = 0;
	int opt, code, err;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":c:t:jh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (parse_positive(optarg, UINT32_MAX, &count))
				return vssctl_usage_error(ctx, "invalid count '%s'", optarg);
			break;
		case 't':
			/* A day at most keeps the millisecond arithmetic in range. */
			if (parse_positive(optarg, 24 * 3600, &timeout_s))
				return vssctl_usage_error(ctx,
					"invalid timeout '%s': seconds from 1 to 86400", optarg);
			break;
		case 'j':
			ctx->json = true;
			break;
		case 'h':
			monitor_usage(stdout);
			return VSSCTL_EXIT_OK;
		default:
			return vssctl_bad_option(ctx, argv, opt);
		}
	}
	if (optind < argc)
		return vssctl_usage_error(ctx, "unexpected argument '%s'", argv[optind]);

	code = vssctl_open(ctx, &h);
	if (code)
		return code;
	err = vss_event_subscribe(h);
	if (err) {
		code = vssctl_report(ctx, h, err, NULL, NULL);
		goto out;
	}
	install_stop_handlers();
	if (timeout_s)
		deadline = monotonic_ms() + (int64_t)timeout_s * 1000;

	while (!stop_requested && (!count || seen < count)) {
		struct vss_event_info ev;
		int wait_ms = -1;

		if (deadline) {
			int64_t left = deadline - monotonic_ms();

			wait_ms = left > 0 ? (int)left : 0;
		}
		err = vss_event_next(h, &ev, wait_ms);
		if (err == -EINTR)
			continue;
		if (err == -ETIMEDOUT)
			break;
		if (err == -ENOBUFS) {
			/* Lost events are worth a warning, not the end. */
			vssctl_error("%s: %s", ctx->command, vss_last_error_message(h));
			continue;
		}
		if (err) {
			code = vssctl_report(ctx, h, err, NULL, NULL);
			goto out;
		}
		err = print_event(ctx, &ev);
		if (err) {
			vssctl_error("%s: cannot write: %s", ctx->command, vss_strerror(err));
			code = VSSCTL_EXIT_FAILURE;
			goto out;
		}
		seen++;
	}
	if (!stop_requested && count && seen < count) {
		vssctl_error("%s: timed out after %llu of %llu events", ctx->command,
			     (unsigned long long)seen, (unsigned long long)count);
		code = VSSCTL_EXIT_FAILURE;
	}
out:
	vss_close(h);
	return code;
}
