// SPDX-License-Identifier: GPL-2.0
/*
 * vsswriterd: the writer coordinator of vss. See vsswriterd(8).
 *
 * Started by systemd (Type=notify, socket activation through
 * vsswriterd.socket) or by hand (--foreground). Everything it needs while
 * writers are frozen is set up here: memory locked, the log ring
 * allocated, /dev/null open, time zone read.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"

#ifndef VSSWRITERD_VERSION
#define VSSWRITERD_VERSION "0.4.0"
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vsswriterd [OPTIONS]\n"
		"\n"
		"Coordinates writers (applications that quiesce their data) around every\n"
		"snapshot set that a requester creates through it.\n"
		"\n"
		"Options:\n"
		"  -f, --foreground       stay in the foreground, log to stderr\n"
		"  -s, --socket PATH      listen on PATH (default " VSW_DEFAULT_SOCKET ")\n"
		"  -c, --config PATH      configuration (default " WD_DEFAULT_CONFIG ")\n"
		"      --state-dir DIR    state under DIR (default " WD_DEFAULT_STATE_DIR ")\n"
		"      --no-mlock         do not lock memory (tests under sanitizers)\n"
		"  -d, --debug            log every state change\n"
		"  -V, --version          print the version\n"
		"  -h, --help             print this help\n"
		"\n"
		"Signals: TERM and INT stop (aborting what is not committed), HUP reloads\n"
		"the configuration. See vsswriterd(8) and vss-writers(7).\n");
}

struct signals {
	struct wd_watch watch;
	struct wd_daemon *d;
	const char *config_path;
	bool config_given;
};

static void reload(struct signals *sig)
{
	struct wd_daemon *d = sig->d;
	struct wd_config cfg;
	char why[512];

	wd_config_defaults(&cfg);
	if (wd_config_load(&cfg, sig->config_path, !sig->config_given, why, sizeof(why))) {
		wd_err("reload: %s; the old configuration stays", why);
		wd_config_free(&cfg);
		return;
	}
	wd_config_free(&d->cfg);
	d->cfg = cfg;
	wd_info("configuration reloaded from %s", sig->config_path);
}

static void signal_ready(struct wd_watch *w, uint32_t events)
{
	struct signals *sig = w->arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			reload(sig);
			break;
		default:
			if (!sig->d->stopping) {
				wd_info("stopping (signal %u)", si.ssi_signo);
				sd_notify(0, "STOPPING=1");
			}
			wd_daemon_stop(sig->d);
			break;
		}
	}
}

static int listen_fd_from_systemd(void)
{
	int n = sd_listen_fds(1);

	if (n <= 0)
		return -1;
	if (n > 1)
		wd_warn("systemd passed %d sockets; using the first", n);
	if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0) {
		wd_err("the socket systemd passed is not a listening AF_UNIX stream socket");
		return -2;
	}
	return SD_LISTEN_FDS_START;
}

static void daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0) {
		perror("vsswriterd: fork");
		exit(1);
	}
	if (pid > 0)
		_exit(0);
	setsid();
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "no-mlock", no_argument, NULL, 'M' },
		{ "debug", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct wd_options opts = { .listen_fd = -1, .provider = &wd_provider_vss };
	struct signals sig = { .config_path = WD_DEFAULT_CONFIG };
	bool foreground = false, lock_memory = true, debug = false;
	struct wd_daemon *d = NULL;
	struct wd_config cfg;
	struct rlimit rl;
	sigset_t mask;
	char why[1024];
	int opt, sfd, err;

	while ((opt = getopt_long(argc, argv, "fs:c:dVh", options, NULL)) != -1) {
		switch (opt) {
		case 'f':
			foreground = true;
			break;
		case 's':
			opts.socket_path = optarg;
			break;
		case 'c':
			sig.config_path = optarg;
			sig.config_given = true;
			break;
		case 'S':
			opts.state_dir = optarg;
			break;
		case 'M':
			lock_memory = false;
			break;
		case 'd':
			debug = true;
			break;
		case 'V':
			printf("vsswriterd %s (protocol %d)\n", VSSWRITERD_VERSION, VSW_WIRE_PROTOCOL);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vsswriterd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (opts.socket_path && opts.socket_path[0] != '/') {
		fprintf(stderr, "vsswriterd: --socket needs an absolute path\n");
		return 2;
	}

	wd_config_defaults(&cfg);
	if (wd_config_load(&cfg, sig.config_path, !sig.config_given, why, sizeof(why))) {
		fprintf(stderr, "vsswriterd: %s\n", why);
		wd_config_free(&cfg);
		return 1;
	}
	if (!foreground && !getenv("LISTEN_FDS") && !getenv("NOTIFY_SOCKET"))
		daemonize();
	wd_log_init(foreground || getenv("NOTIFY_SOCKET") ? WD_LOG_STDERR : WD_LOG_SYSLOG,
		    debug);

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	/* Every writer and hook child holds descriptors: room for them. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	opts.listen_fd = listen_fd_from_systemd();
	if (opts.listen_fd == -2)
		return 1;
	err = wd_daemon_new(&opts, &cfg, &d, why, sizeof(why));
	wd_config_free(&cfg);
	if (err) {
		wd_err("%s", why);
		wd_log_fini();
		sd_notifyf(0, "STATUS=%s\nERRNO=%d", why, -err);
		return 1;
	}
	sig.d = d;
	wd_watch_init(&sig.watch);
	if (sfd < 0 || wd_watch_add(d->loop, &sig.watch, sfd, EPOLLIN, signal_ready, &sig)) {
		wd_err("signalfd: %s", strerror(errno));
		wd_daemon_free(d);
		return 1;
	}
	wd_runstate_recover(d);
	wd_hooks_scan(d);
	/* After everything is allocated: no page of ours is ever read back
	 * from a file while writers are frozen. */
	if (lock_memory && mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		wd_warn("mlockall: %s: pages may be faulted in while writers are frozen",
			strerror(errno));
	wd_info("vsswriterd %s ready on %s%s (%zu writer%s)", VSSWRITERD_VERSION,
		d->socket_path, opts.listen_fd >= 0 ? " (socket activation)" : "",
		d->writer_count, d->writer_count == 1 ? "" : "s");
	sd_notifyf(0, "READY=1\nSTATUS=ready on %s\nMAINPID=%d", d->socket_path, (int)getpid());
	while (!d->stopped) {
		err = wd_daemon_run_once(d, -1);
		if (err < 0) {
			wd_err("event loop: %s", strerror(-err));
			break;
		}
	}
	wd_info("stopped");
	wd_watch_del(d->loop, &sig.watch);
	close(sfd);
	wd_daemon_free(d);
	wd_log_fini();
	return err < 0 ? 1 : 0;
}
