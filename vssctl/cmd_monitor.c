// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl monitor: print the module's events as they happen.
 */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "output.h"
#include "writers_output.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void monitor_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl monitor [--count N] [--timeout SEC] [--no-writers] [--json]\n"
		"\n"
		"Print one line per event of the vss module and, when vsswriterd runs, of\n"
		"the writers (state changes, vetoes, timeouts, sets created and aborted),\n"
		"one JSON object per line with --json, until interrupted.\n"
		"\n"
		"Options:\n"
		"  -c, --count N      exit after N events\n"
		"  -t, --timeout SEC  exit after SEC seconds; with --count, failing\n"
		"                     (exit status 1) if fewer than N events came\n"
		"      --no-writers   only the module's events\n"
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

static int print_writer_event(const struct vssctl *ctx, const struct vss_writer_event *ev)
{
	char line[2048];

	if (ctx->json) {
		if (vssctl_json_print(ctx, vssctl_json_writer_event(ev), stdout))
			return -ENOMEM;
	} else {
		vssctl_format_writer_event(ev, line, sizeof(line));
		printf("%s\n", line);
	}
	if (fflush(stdout))
		return -errno;
	return 0;
}

struct monitor_state {
	const struct vssctl *ctx;
	uint64_t count;
	uint64_t seen;
	int err;
};

static int on_kernel_event(const struct vss_event_info *ev, void *arg)
{
	struct monitor_state *m = arg;

	m->err = print_event(m->ctx, ev);
	if (m->err)
		return 1;
	m->seen++;
	return m->count && m->seen >= m->count;
}

int cmd_monitor(struct vssctl *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "no-writers", no_argument, NULL, 'N' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct monitor_state st = { .ctx = ctx };
	uint64_t timeout_s = 0;
	struct vss_handle *h = NULL;
	struct vss_session *w = NULL;
	bool no_writers = false;
	int64_t deadline = 0;
	int opt, code = VSSCTL_EXIT_OK, err;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":c:t:jh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (parse_positive(optarg, UINT32_MAX, &st.count))
				return vssctl_usage_error(ctx, "invalid count '%s'", optarg);
			break;
		case 't':
			/* A day at most keeps the millisecond arithmetic in range. */
			if (parse_positive(optarg, 24 * 3600, &timeout_s))
				return vssctl_usage_error(ctx,
					"invalid timeout '%s': seconds from 1 to 86400", optarg);
			break;
		case 'N':
			no_writers = true;
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

	if (!no_writers && vssctl_writerd_open(ctx, &w, NULL, true) == VSSCTL_EXIT_OK &&
	    vss_session_monitor_start(w)) {
		vssctl_error("%s: vsswriterd sends no events: %s", ctx->command,
			     vss_session_error_message(w) ? vss_session_error_message(w) : "refused");
		vss_session_close(w);
		w = NULL;
	}
	err = vss_open(&h);
	if (err == -LIBVSS_ENOMODULE && w) {
		h = NULL;	/* the writers' events alone */
	} else if (err) {
		code = vssctl_open_failed(ctx, err);
		goto out;
	} else {
		err = vss_event_subscribe(h);
		if (err) {
			code = vssctl_report(ctx, h, err, NULL, NULL);
			goto out;
		}
	}
	install_stop_handlers();
	if (timeout_s)
		deadline = monotonic_ms() + (int64_t)timeout_s * 1000;

	while (!stop_requested && (!st.count || st.seen < st.count)) {
		struct pollfd pfd[2] = {
			{ .fd = h ? vss_event_fd(h) : -1, .events = POLLIN },
			{ .fd = w ? vss_session_fd(w) : -1, .events = POLLIN },
		};
		int wait_ms = -1, n;

		if (deadline) {
			int64_t left = deadline - monotonic_ms();

			if (left <= 0)
				break;
			wait_ms = (int)left;
		}
		if (!h && !w)
			break;
		n = poll(pfd, 2, wait_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue;
		if (h && pfd[0].revents) {
			err = vss_event_dispatch(h, on_kernel_event, &st);
			if (st.err) {
				vssctl_error("%s: cannot write: %s", ctx->command, vss_strerror(st.err));
				code = VSSCTL_EXIT_FAILURE;
				goto out;
			}
			if (err == -ENOBUFS)
				vssctl_error("%s: %s", ctx->command, vss_last_error_message(h));
			else if (err < 0) {
				code = vssctl_report(ctx, h, err, NULL, NULL);
				goto out;
			}
		}
		while (w && pfd[1].revents && (!st.count || st.seen < st.count)) {
			struct vss_writer_event ev;

			err = vss_session_monitor_next(w, &ev, 0);
			if (err == -ETIMEDOUT)
				break;
			if (err) {
				vssctl_error("%s: vsswriterd went away: no more writer events",
					     ctx->command);
				vss_session_close(w);
				w = NULL;
				break;
			}
			err = print_writer_event(ctx, &ev);
			if (err) {
				vssctl_error("%s: cannot write: %s", ctx->command, vss_strerror(err));
				code = VSSCTL_EXIT_FAILURE;
				goto out;
			}
			st.seen++;
		}
	}
	if (!stop_requested && st.count && st.seen < st.count) {
		vssctl_error("%s: timed out after %llu of %llu events", ctx->command,
			     (unsigned long long)st.seen, (unsigned long long)st.count);
		code = VSSCTL_EXIT_FAILURE;
	}
out:
	vss_session_close(w);
	vss_close(h);
	return code;
}
