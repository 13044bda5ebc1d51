// SPDX-License-Identifier: GPL-2.0
/*
 * Module unload under load: rmmod is tried again and again while
 * snapshots are created, read and deleted, a device is tracked and
 * untracked, dumps are left half read and writes run on the origins.
 * Each try must either be refused (the module is in use) or unload the
 * module cleanly, after which it is loaded again at once; never an oops, a
 * leak (kmemleak on the debug kernel) or a hang. Afterwards a snapshot
 * still reads as its origin did, and with everything deleted the module
 * unloads.
 *
 * Disks (VSS_DISKS): A and B are origins, C the block store, D a device
 * that is only tracked. VSS_UNLOAD_SECONDS sets how long the storm lasts
 * (default 60; the debug kernel, VSS_TIMEOUT_SCALE, gets the same time),
 * longer if it has not unloaded the module three times by then. Every
 * 2 s the workers that hold the module pause after their round for up to
 * 300 ms, so that unloads come however fast their rounds are.
 */
#include "vss_nl.h"
#include "vss_util.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WRITE_SPAN (8u << 20)

static unsigned int tests_run, tests_failed;

static void __attribute__((format(printf, 2, 3)))
tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %u - ", ok ? "" : "not ", ++tests_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok)
		tests_failed++;
}

/* One worker's figures, in shared memory. */
struct worker_stats {
	unsigned long done;		/* rounds completed */
	unsigned long absent;		/* the family was gone (module out) */
	unsigned long refused;		/* refused for a reason expected here */
	unsigned long unexpected;	/* errors that should not happen */
	char first[160];		/* the first unexpected one */
};

enum { W_WRITER, W_CREATOR, W_TRACKER, W_DUMPER, NR_WORKERS };

static const char *const worker_names[NR_WORKERS] = {
	"writer", "creator", "tracker", "dumper",
};

struct shared {
	struct worker_stats w[NR_WORKERS];
	/*
	 * Set by the main loop for a moment every LULL_EVERY_MS: the
	 * workers that hold the module finish their round and wait, so that
	 * an unload can come, while rmmod goes on trying against the rounds'
	 * ends and the writer goes on writing. Without it the module is out
	 * only when every worker happens to rest at once.
	 */
	volatile int lull;
};

#define LULL_EVERY_MS 2000
#define LULL_MS 300

static struct shared *sh;
static volatile sig_atomic_t stopping;
static const char *disk[4];
static dev_t rdev[4];

static void on_term(int sig)
{
	stopping = 1;
}

static void __attribute__((format(printf, 2, 3)))
unexpected(struct worker_stats *w, const char *fmt, ...)
{
	va_list ap;

	if (w->unexpected++)
		return;
	va_start(ap, fmt);
	vsnprintf(w->first, sizeof(w->first), fmt, ap);
	va_end(ap);
}

static void pause_ms(unsigned int ms)
{
	usleep(ms * 1000);
}

static void wait_out_lull(void)
{
	while (sh->lull && !stopping)
		pause_ms(5);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

/*
 * (Re)opens @nl when it is closed. Return: 0, or -1 when the module is
 * out (counted as absent).
 */
static int nl_ready(struct vss_nl *nl, struct worker_stats *w)
{
	int ret;

	if (nl->fd >= 0)
		return 0;
	ret = vss_nl_open(nl);
	if (!ret)
		return 0;
	vss_nl_close(nl);
	if (ret != -ENOENT)
		unexpected(w, "open the family: %s", strerror(-ret));
	w->absent++;
	pause_ms(5);
	return -1;
}

/*
 * Sorts an error of a request made while the module may be leaving:
 * ENOENT/ENODEV/EOPNOTSUPP-like answers mean the family went (the socket
 * is reopened), the ones in @fine are expected refusals.
 */
static void sort_error(struct vss_nl *nl, struct worker_stats *w, int ret,
		       const char *what, const int *fine)
{
	for (; *fine; fine++) {
		if (ret == -*fine) {
			w->refused++;
			return;
		}
	}
	/*
	 * A request to a family id that is gone (or, after a reload, taken
	 * by the new one under another number) answers ENOENT or
	 * EOPNOTSUPP; create answers ENODEV while the module is going.
	 */
	if (ret == -ENOENT || ret == -EOPNOTSUPP || ret == -ENODEV) {
		w->absent++;
		vss_nl_close(nl);
		return;
	}
	unexpected(w, "%s: %s (%s)", what, strerror(-ret), nl->errmsg);
	vss_nl_close(nl);
}

/* --- the workers ------------------------------------------------------------ */

static void writer(struct worker_stats *w)
{
	void *buf = aligned_buf(4096);
	uint64_t state = getpid() | 1, seq = 2;
	int fd[2];

	fd[0] = open(disk[0], O_RDWR | O_DIRECT);
	fd[1] = open(disk[1], O_RDWR | O_DIRECT);
	if (fd[0] < 0 || fd[1] < 0 || !buf)
		_exit(2);
	while (!stopping) {
		unsigned int which = rnd(&state) & 1;
		uint64_t first = (rnd(&state) % (WRITE_SPAN / 4096)) * 8;
		int ret = write_stamps(fd[which], buf, first, 8, seq);

		if (ret)
			unexpected(w, "write %s sector %llu: %s", disk[which],
				   (unsigned long long)first, strerror(-ret));
		else
			w->done++;
		seq = seq == 0xffff ? 2 : seq + 1;
	}
	_exit(0);
}

/* Creates a set of A (and B), reads its images a little, deletes it. */
static void creator(struct worker_stats *w)
{
	static const int fine[] = { EBUSY, 0 };
	uint64_t state = getpid() | 1;
	struct vss_nl nl = { .fd = -1 };
	const char *devs[2] = { disk[0], disk[1] };
	char buf[4096] __attribute__((aligned(4096)));

	while (!stopping) {
		struct vss_created made;
		unsigned int i, nr = 1 + (rnd(&state) & 1);
		int ret;

		wait_out_lull();
		if (nl_ready(&nl, w))
			continue;
		ret = vss_create(&nl, devs, nr, disk[2], 0, 4096,
				 VSS_CREATE_NO_FREEZE, &made);
		if (ret) {
			sort_error(&nl, w, ret, "create", fine);
			continue;
		}
		/* An open image holds the module too. */
		for (i = 0; i < made.nr && (rnd(&state) & 1); i++) {
			int fd = open(made.image[i], O_RDONLY | O_DIRECT);

			if (fd < 0) {
				unexpected(w, "open %s: %s", made.image[i],
					   strerror(errno));
				continue;
			}
			if (pread(fd, buf, sizeof(buf), (rnd(&state) % 1024) * 4096) !=
			    sizeof(buf))
				unexpected(w, "read %s: %s", made.image[i],
					   strerror(errno));
			pause_ms(rnd(&state) % 20);
			close(fd);
		}
		pause_ms(rnd(&state) % 20);
		ret = vss_delete_set(&nl, made.set_id, true);
		if (ret) {
			/*
			 * A set keeps the module in: its family cannot have
			 * gone. Nothing else deletes it either.
			 */
			unexpected(w, "delete a set: %s (%s)", strerror(-ret),
				   nl.errmsg);
			vss_nl_close(&nl);
			continue;
		}
		w->done++;
		pause_ms(rnd(&state) % 30);
	}
	vss_nl_close(&nl);
	_exit(0);
}

static int dev_request(struct vss_nl *nl, uint8_t cmd, dev_t dev, bool range)
{
	struct vss_msg *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	vss_msg_init(nl, m, cmd, 0);
	vss_msg_put_dev(m, VSS_A_DEVICE, dev);
	if (range) {
		vss_msg_put_u64(m, VSS_A_CBT_OFFSET, 0);
		vss_msg_put_u64(m, VSS_A_CBT_LENGTH, 1 << 20);
	}
	ret = vss_nl_call(nl, m, NULL, NULL);
	free(m);
	return ret;
}

/* Tracks D, marks a range of it, and stops (untrack, or a save). */
static void tracker(struct worker_stats *w)
{
	static const int fine[] = { EALREADY, 0 };
	static const int fine_untrack[] = { 0 };
	uint64_t state = getpid() | 1;
	struct vss_nl nl = { .fd = -1 };

	while (!stopping) {
		int ret;

		wait_out_lull();
		if (nl_ready(&nl, w))
			continue;
		ret = dev_request(&nl, VSS_CMD_TRACK, rdev[3], false);
		if (ret) {
			sort_error(&nl, w, ret, "track", fine);
			/* Tracked, by a track whose answer got lost: untrack. */
			if (ret == -EALREADY && !nl_ready(&nl, w))
				dev_request(&nl, VSS_CMD_UNTRACK, rdev[3], false);
			continue;
		}
		ret = dev_request(&nl, VSS_CMD_CBT_MARK_DIRTY, rdev[3], true);
		if (ret)
			unexpected(w, "mark dirty: %s (%s)", strerror(-ret), nl.errmsg);
		pause_ms(rnd(&state) % 20);
		ret = dev_request(&nl, VSS_CMD_UNTRACK, rdev[3], false);
		if (ret) {
			/* Tracking holds the module: the family is there. */
			sort_error(&nl, w, ret, "untrack", fine_untrack);
			continue;
		}
		w->done++;
		pause_ms(rnd(&state) % 30);
	}
	vss_nl_close(&nl);
	_exit(0);
}

/*
 * Starts dumps of the snapshots and of the tracked devices and leaves
 * them part read for a while (a dump holds the module), with the events
 * group joined.
 */
static void dumper(struct worker_stats *w)
{
	uint64_t state = getpid() | 1;
	struct vss_nl nl = { .fd = -1 };
	char buf[1024];

	while (!stopping) {
		struct vss_msg *m;
		int rcvbuf = 1024;

		wait_out_lull();
		if (nl_ready(&nl, w))
			continue;
		setsockopt(nl.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		if (rnd(&state) & 1)
			vss_subscribe_events(&nl);
		m = calloc(1, sizeof(*m));
		if (!m)
			_exit(2);
		vss_msg_init(&nl, m, rnd(&state) & 1 ? VSS_CMD_GET_SNAPSHOT :
			     VSS_CMD_GET_CBT, NLM_F_DUMP);
		if (send(nl.fd, m->buf, m->nlh.nlmsg_len, 0) < 0)
			unexpected(w, "send a dump: %s", strerror(errno));
		free(m);
		/* One small read at most, then the socket just sits. */
		if (rnd(&state) & 1)
			(void)!recv(nl.fd, buf, sizeof(buf), MSG_DONTWAIT);
		pause_ms(rnd(&state) % 40);
		vss_nl_close(&nl);
		w->done++;
	}
	vss_nl_close(&nl);
	_exit(0);
}

static pid_t spawn(int which)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	signal(SIGTERM, on_term);
	switch (which) {
	case W_WRITER: writer(&sh->w[which]); break;
	case W_CREATOR: creator(&sh->w[which]); break;
	case W_TRACKER: tracker(&sh->w[which]); break;
	default: dumper(&sh->w[which]); break;
	}
	_exit(0);
}

/* --- the module ------------------------------------------------------------- */

static char module_path[512];

static int load_module(void)
{
	int fd = open(module_path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0);
	ret = ret ? -errno : 0;
	close(fd);
	return ret;
}

static bool module_loaded(void)
{
	return !access("/sys/module/vss", F_OK);
}

/* Unloads, allowing the last RCU callbacks a few seconds. */
static int unload_settled(void)
{
	uint64_t t0 = now_ms();
	int ret;

	while ((ret = syscall(SYS_delete_module, "vss", O_NONBLOCK)) &&
	       (errno == EAGAIN || errno == EBUSY) && now_ms() - t0 < 10000)
		pause_ms(100);
	return ret ? -errno : 0;
}

int main(void)
{
	const char *secs_env = getenv("VSS_UNLOAD_SECONDS");
	unsigned long secs = secs_env ? strtoul(secs_env, NULL, 10) : 60;
	unsigned long attempts = 0, unloads = 0, refusals = 0, other = 0;
	unsigned long reload_failures = 0;
	uint64_t slowest = 0, t_start, t_end, storm_ms, sectors = 0;
	uint64_t next_lull, lull_end = 0;
	uint64_t state = (uint64_t)time(NULL) | 1;
	char other_err[128] = "", why[256] = "";
	pid_t pids[NR_WORKERS];
	bool children_ok = true;
	struct vss_created made;
	struct vss_nl nl;
	unsigned int i;
	int ret, fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	if (geteuid()) {
		printf("1..0 # SKIP needs root\n");
		return 4;
	}
	printf("1..8\n");
	snprintf(module_path, sizeof(module_path), "%s/build/%s/vss.ko",
		 getenv("VSS_REPO") ?: ".", getenv("VSS_KVER") ?: "");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	for (i = 0; i < 4; i++) {
		struct stat st;

		disk[i] = scratch_disk(i);
		if (!disk[i] || stat(disk[i], &st)) {
			printf("Bail out! needs four scratch disks (VSS_DISKS)\n");
			return 1;
		}
		rdev[i] = st.st_rdev;
	}
	fd = open(disk[0], O_RDWR | O_DIRECT);
	if (fd >= 0) {
		sectors = dev_sectors(fd);
		ret = fill_stamps(fd, sectors, 1);
		close(fd);
	} else {
		ret = -errno;
	}
	tap(!ret && module_loaded() && !access(module_path, R_OK),
	    "setup: A filled, vss loaded, %s readable (%d)", module_path, ret);

	for (i = 0; i < NR_WORKERS; i++)
		pids[i] = spawn(i);

	/*
	 * The module is out only when no worker holds it, which the timing
	 * of their rounds decides: a storm that has not yet unloaded it
	 * three times goes on, for up to twice as long again.
	 */
	t_start = now_ms();
	t_end = t_start + secs * 1000;
	next_lull = t_start + LULL_EVERY_MS;
	while (now_ms() < t_end ||
	       (unloads < 3 && now_ms() < t_end + 2 * secs * 1000)) {
		uint64_t t0 = now_ms(), took;

		if (!sh->lull && t0 >= next_lull) {
			sh->lull = 1;
			lull_end = t0 + LULL_MS;
		} else if (sh->lull && t0 >= lull_end) {
			sh->lull = 0;
			next_lull = t0 + LULL_EVERY_MS;
		}

		ret = syscall(SYS_delete_module, "vss", O_NONBLOCK);
		took = now_ms() - t0;
		if (took > slowest)
			slowest = took;
		attempts++;
		if (!ret) {
			unloads++;
			/* Out for a moment, then back. */
			pause_ms(rnd(&state) % 10);
			ret = load_module();
			if (ret && !reload_failures++)
				snprintf(other_err, sizeof(other_err),
					 "insmod: %s", strerror(-ret));
			if (sh->lull) {
				sh->lull = 0;
				next_lull = now_ms() + LULL_EVERY_MS;
			}
		} else if (errno == EAGAIN || errno == EBUSY) {
			refusals++;
		} else if (!other++) {
			snprintf(other_err, sizeof(other_err), "rmmod: %s",
				 strerror(errno));
		}
		pause_ms(rnd(&state) % 15);
	}
	storm_ms = now_ms() - t_start;
	sh->lull = 0;
	for (i = 0; i < NR_WORKERS; i++)
		kill(pids[i], SIGTERM);
	for (i = 0; i < NR_WORKERS; i++) {
		int status;

		if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			children_ok = false;
			printf("# %s ended badly (status 0x%x)\n", worker_names[i], status);
		}
	}
	if (!module_loaded())
		load_module();

	tap(!other && !reload_failures && unloads >= 3 && refusals >= 3,
	    "%lu rmmod tries in %llu s: %lu unloaded (and loaded again), %lu refused as in use, %lu other errors, slowest %llu ms %s",
	    attempts, (unsigned long long)storm_ms / 1000, unloads, refusals, other + reload_failures,
	    (unsigned long long)slowest, other_err);
	for (i = 0; i < NR_WORKERS; i++) {
		struct worker_stats *w = &sh->w[i];

		if (i == W_DUMPER)
			continue;
		tap(!w->unexpected && w->done,
		    "%s: %lu rounds, %lu while the module was out, %lu refused, %lu unexpected %s",
		    worker_names[i], w->done, w->absent, w->refused, w->unexpected,
		    w->first);
	}
	tap(children_ok && !sh->w[W_DUMPER].unexpected,
	    "the workers ended cleanly; %lu dumps left part read %s",
	    sh->w[W_DUMPER].done, sh->w[W_DUMPER].first);

	/* After the storm: a snapshot of A still reads as A did. */
	ret = vss_nl_open(&nl);
	if (!ret) {
		const char *devs[1] = { disk[0] };

		vss_delete_all(&nl);
		vss_untrack_all(&nl);
		fd = open(disk[0], O_RDWR | O_DIRECT);
		ret = fd < 0 ? -errno : fill_stamps(fd, sectors, 7);
		if (!ret)
			ret = vss_create(&nl, devs, 1, disk[2], 0, 4096, 0, &made);
		if (!ret)
			ret = fill_stamps(fd, sectors / 2, 8);
		if (fd >= 0)
			close(fd);
		if (!ret) {
			long bad = verify_image(made.image[0], sectors, NULL, 7, why);

			ret = bad ? -EIO : 0;
		}
	}
	tap(!ret, "a new snapshot of A reads as A did at its commit %s", why);
	if (nl.fd >= 0) {
		ret = vss_delete_all(&nl);
		printf("# %d snapshots deleted at the end\n", ret);
		ret = vss_untrack_all(&nl);
		printf("# %d devices untracked at the end\n", ret);
		vss_nl_close(&nl);
	}
	ret = unload_settled();
	tap(!ret, "with everything deleted the module unloads%s%s",
	    ret ? ": " : "", ret ? strerror(-ret) : "");
	return tests_failed ? 1 : 0;
}
