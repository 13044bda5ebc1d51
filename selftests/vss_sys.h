/* SPDX-License-Identifier: GPL-2.0 */
/*
 * System helpers for the selftests that set up filesystems and stacked
 * devices: running tools quietly, waiting for device nodes, mounting.
 */
#ifndef VSS_SELFTEST_SYS_H
#define VSS_SELFTEST_SYS_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Runs a shell command with its output captured; when it fails, prints
 * the command and its output as TAP comments. Return: the exit status,
 * or -1 if it could not run.
 */
static inline int __attribute__((format(printf, 1, 2)))
run(const char *fmt, ...)
{
	char cmd[2048], line[512];
	va_list ap;
	FILE *p;
	int status;
	static char out[16384];
	size_t used = 0;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	fflush(stdout);
	fflush(stderr);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	out[0] = 0;
	while (fgets(line, sizeof(line), p)) {
		size_t n = strlen(line);

		if (used + n < sizeof(out)) {
			memcpy(out + used, line, n + 1);
			used += n;
		}
	}
	status = pclose(p);
	if (status == -1)
		return -1;
	status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (status) {
		char *save, *l;

		fprintf(stderr, "# command failed (%d): %s\n", status, cmd);
		for (l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			fprintf(stderr, "#   %s\n", l);
	}
	return status;
}

/* Like run(), but says nothing when the command fails. */
static inline int __attribute__((format(printf, 1, 2)))
run_quiet(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 32, fmt, ap);
	va_end(ap);
	strcat(cmd, " >/dev/null 2>&1");
	status = system(cmd);
	if (status == -1)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs a command and returns the first line of its output, trimmed. */
static inline int __attribute__((format(printf, 3, 4)))
run_output(char *buf, size_t len, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	FILE *p;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	buf[0] = 0;
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fgets(buf, len, p))
		buf[strcspn(buf, "\n")] = 0;
	while (fgetc(p) != EOF)
		;
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* Waits until @path exists (and is a block device if @blk). */
static inline bool wait_for_path(const char *path, bool blk, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	struct stat st;

	do {
		if (!stat(path, &st) && (!blk || S_ISBLK(st.st_mode)))
			return true;
		usleep(20000);
	} while (now_ms() < end);
	return false;
}

static inline bool wait_for_absence(const char *path, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	do {
		if (access(path, F_OK))
			return true;
		usleep(20000);
	} while (now_ms() < end);
	return false;
}

/* Is something mounted on @dir? */
static inline bool is_mountpoint(const char *dir)
{
	char line[1024], mnt[512];
	bool found = false;
	FILE *f = fopen("/proc/self/mounts", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %511s", mnt) == 1 && !strcmp(mnt, dir))
			found = true;
	fclose(f);
	return found;
}

/* Unmounts everything on @dir; lazily as a last resort. */
static inline void umount_all(const char *dir)
{
	int i;

	for (i = 0; i < 20 && is_mountpoint(dir); i++) {
		if (umount(dir) && errno == EBUSY) {
			sync();
			usleep(100000);
			if (i == 19)
				umount2(dir, MNT_DETACH);
		}
	}
}

/* Number of entries in @dir, without "." and "..", or -1. */
static inline int dir_entries(const char *dir)
{
	char cmd[600], buf[64];

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	if (run_output(buf, sizeof(buf), "%s", cmd))
		return -1;
	return atoi(buf);
}

/* Writes @s to the sysfs or proc file @path. */
static inline int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -errno ?: -EIO;
}

static inline int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	buf[0] = 0;
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static inline dev_t rdev_of(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return 0;
	return st.st_rdev;
}

#endif /* VSS_SELFTEST_SYS_H */
