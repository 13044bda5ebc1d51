// SPDX-License-Identifier: GPL-2.0
/*
 * vss-backup-agent - an example image backup agent built on libvss.
 *
 * It does what a backup product does with vss: copy a live block device
 * once, then only the blocks that changed, each time from a snapshot so
 * that every copy is one instant of the device, and rebuild any of those
 * instants later.
 *
 *   vss-backup-agent full DEV REPO [--storage PATH] [--storage-limit SIZE]
 *                                  [--no-freeze] [--keep]
 *   vss-backup-agent incr DEV REPO [same options]
 *   vss-backup-agent restore REPO N OUT
 *   vss-backup-agent list REPO
 *
 * How a backup goes (full and incr):
 *   1. vss_create_set() takes a snapshot of DEV (a mounted filesystem on
 *      it is frozen around that instant unless --no-freeze). The snapshot
 *      is the block device /dev/vssN and records the changed-block
 *      tracking (CBT) point at which it was taken, GENERATION:SEQ. A
 *      device is tracked from its first snapshot on, so the first full
 *      backup also starts the tracking that later incrementals use.
 *   2. full: the whole image is copied into REPO.
 *      incr: vss_cbt_changes() lists the byte ranges written between the
 *      point of the last backup in REPO and the new snapshot's point, and
 *      only those ranges are copied from the image, into an increment
 *      file. When vss cannot vouch for that list - the device has a new
 *      generation (tracking restarted, e.g. after "vssctl untrack" or a
 *      reboot without a saved map, or the device was resized), or the map
 *      no longer reaches back that far (vss_cbt_needs_full_backup()) - a
 *      full backup is taken from the same snapshot instead, and the agent
 *      says why. The list of changes is never trusted beyond what vss
 *      vouches for.
 *   3. The file is made durable and the catalog records the new point:
 *      its CBT point, the device size, the block size, the time of the
 *      snapshot and a SHA-256 of the file.
 *   4. The snapshot is deleted, unless --keep (a test compares a restored
 *      point with the image it came from; delete it with vssctl delete).
 *      A failed backup always deletes its snapshot and records nothing;
 *      so does one stopped by SIGINT, SIGTERM or SIGHUP. One killed
 *      outright leaves its snapshot (labelled vss-backup-agent in vssctl
 *      list) and a temporary file, which the next backup removes.
 *
 * Points are numbered in the order they were taken, from 0. Each is a full
 * backup or an increment on the point before it; a full backup taken in
 * place of an incremental starts a new chain. "restore REPO N OUT" starts
 * from the newest full backup at or before N, applies the increments up
 * to N, checking every file's SHA-256 and the chain of CBT points on the
 * way, and writes the image to the file OUT (a temporary file renamed to
 * OUT when complete, so a failed restore leaves nothing; mode 0600, as it
 * holds a whole device; sparse where the image holds zeros).
 *
 * The repository REPO is a directory (made with mode 0700 by the first
 * full backup) holding:
 *   catalog               text, one line per point; described below
 *   point-NNNNNN.full     a full backup: the raw image, sparse where it
 *                         holds zeros (loop-mountable as it is); its
 *                         SHA-256 is that of the image itself
 *   point-NNNNNN.incr     an increment: an 80-byte header, the extent
 *                         index, then the data of the extents in order.
 *                         All numbers little-endian:
 *                           0  "VSSINCR1"       8 bytes
 *                           8  format version   u32, 1
 *                          12  block size       u32, of the CBT map
 *                          16  device size      u64, bytes
 *                          24  extent count     u64
 *                          32  data bytes       u64, lengths summed
 *                          40  generation       16 bytes
 *                          56  from seq         u64, the base point
 *                          64  to seq           u64, this point
 *                          72  reserved         u64, 0
 *                          80  extents          {u64 offset, u64 length}
 *                                               each, sorted, disjoint
 *                         its SHA-256 covers the whole file
 * Every file is written as a temporary file (.tmp-NAME-XXXXXX), synced,
 * renamed into place, and the directory synced: a crash leaves the old
 * state or the new one, and a data file is only ever referenced by the
 * catalog after it is durable. Leftover temporary files are removed by
 * the next backup. The repository is locked (flock on the directory):
 * exclusively by full and incr, shared by restore and list.
 *
 * The catalog:
 *   vss-backup-agent-catalog 1
 *   device PATH                  the device backed up, as first given
 *   storage PATH                 (optional) diff storage for the snapshots
 *   storage-limit BYTES          (optional) its limit
 *   point N KIND file=NAME taken=NS size=BYTES block=BYTES cbt=POINT
 *         extents=N bytes=N sha256=HEX cause=CAUSE snapshot=ID image=NAME
 *   checksum HEX                 SHA-256 of every line before this one
 * KIND is "full" or "incr"; taken is the snapshot's CLOCK_REALTIME in
 * nanoseconds; cbt is the snapshot's GENERATION:SEQ ("-" if the module
 * gave none); extents and bytes are the changed runs and bytes copied;
 * CAUSE says why a full backup was taken: requested (the full command),
 * new-generation, map-too-old, size-changed or no-point (an incr that
 * could not be one; "-" for an increment); snapshot and image name the snapshot kept by --keep
 * ("-" when it was deleted). The point line is one line.
 *
 * Diff storage: the snapshot needs somewhere to keep the blocks DEV
 * overwrites while the copy runs. --storage PATH (a block device, a file
 * or a directory, never on DEV) is remembered in the catalog for later
 * runs. Without one, an unnamed file in REPO is used, limited to the
 * device's size or half of REPO's free space, whichever is smaller.
 *
 * Exit status:
 *   0  success (also an incr that had to take a full backup: it says why)
 *   1  the backup or restore failed (I/O error, snapshot failed, no space);
 *      nothing was recorded and no snapshot is left behind
 *   2  invalid arguments, or DEV is not the device REPO backs up
 *   3  the vss kernel module is not loaded
 *   4  permission denied: full and incr need CAP_SYS_ADMIN
 *   5  not found: no such device, repository or point
 *   6  the repository is damaged: a catalog or file fails its checks
 *   7  the repository is in use by another vss-backup-agent
 * Every error names the device, file or point it concerns and the reason.
 *
 * Build: examples/Makefile, as part of "make". Against an installed
 * libvss: cc -std=c11 vss-backup-agent.c sha256.c $(pkg-config --cflags
 * --libs libvss).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <vss/libvss.h>

#include "sha256.h"

#define PROGRAM		"vss-backup-agent"

enum agent_exit {
	AGENT_EXIT_OK = 0,
	AGENT_EXIT_FAILED = 1,
	AGENT_EXIT_USAGE = 2,
	AGENT_EXIT_NO_MODULE = 3,
	AGENT_EXIT_PERMISSION = 4,
	AGENT_EXIT_NOT_FOUND = 5,
	AGENT_EXIT_DAMAGED = 6,
	AGENT_EXIT_BUSY = 7,
};

#define CATALOG_NAME		"catalog"
#define CATALOG_MAGIC		"vss-backup-agent-catalog 1"
#define CATALOG_MAX_BYTES	(64u << 20)
#define TEMP_PREFIX		".tmp-"

#define INCR_MAGIC		"VSSINCR1"
#define INCR_VERSION		1
#define INCR_HEADER_LEN		80
#define INCR_EXTENT_LEN		16

/* Bytes moved per read; zero runs of HOLE_GRAIN bytes become holes. */
#define COPY_BUFFER		(1u << 20)
#define HOLE_GRAIN		(64u << 10)

/* A dump that raced with a change of the map is read again, this often. */
#define CHANGES_ATTEMPTS	3
/* How long a snapshot whose image is still open is retried before force. */
#define DELETE_ATTEMPTS		20
#define DELETE_RETRY_MS		100

/* Why a point is a full backup; the words are the catalog's. */
enum full_cause {
	CAUSE_NONE,		/* an increment */
	CAUSE_REQUESTED,
	CAUSE_NEW_GENERATION,
	CAUSE_MAP_TOO_OLD,
	CAUSE_SIZE_CHANGED,
	CAUSE_NO_POINT,
};

static const char *const cause_names[] = {
	[CAUSE_NONE] = "-",
	[CAUSE_REQUESTED] = "requested",
	[CAUSE_NEW_GENERATION] = "new-generation",
	[CAUSE_MAP_TOO_OLD] = "map-too-old",
	[CAUSE_SIZE_CHANGED] = "size-changed",
	[CAUSE_NO_POINT] = "no-point",
};

/* One backup in the catalog. */
struct point {
	unsigned int index;
	bool full;
	enum full_cause cause;
	char file[32];			/* "point-000003.incr" */
	uint64_t taken_ns;		/* the snapshot's commit */
	uint64_t device_size;
	uint32_t block_size;		/* of the CBT map; 0 if unknown */
	bool has_cbt;
	struct vss_cbt_point cbt;
	uint64_t extents;		/* changed runs copied (increments) */
	uint64_t bytes;			/* bytes of the device copied */
	char sha256[SHA256_HEX_LEN];	/* of the file */
	bool kept;			/* the snapshot was kept (--keep) */
	struct vss_id snapshot;
	char image[VSS_DEVICE_NAME_MAX];	/* kernel name, "vss3" */
};

struct repo {
	char path[PATH_MAX];
	int dirfd;
	bool has_catalog;
	char device[PATH_MAX];		/* as first backed up */
	char storage[PATH_MAX];		/* "" = an unnamed file in the repo */
	uint64_t storage_limit;		/* 0 = default */
	struct point *points;
	size_t count;
};

struct options {
	const char *command;
	const char *device;
	const char *repo;
	const char *storage;
	uint64_t storage_limit;
	bool storage_limit_given;
	bool keep;
	bool no_freeze;
	unsigned int point;		/* restore */
	const char *out;		/* restore */
};

/* The snapshot a backup is made from. */
struct snapshot {
	bool exists;
	struct vss_id id;
	uint64_t created_ns;
	bool has_cbt;
	struct vss_cbt_point cbt;
	char image_name[VSS_DEVICE_NAME_MAX];
	char image_path[VSS_DEVICE_NAME_MAX + 8];
	int fd;				/* the image, open for reading */
	uint64_t size;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int signo)
{
	interrupted = signo;
}

static void agent_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void agent_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(PROGRAM ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(PROGRAM ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROGRAM " --help'.\n", stderr);
	return AGENT_EXIT_USAGE;
}

static int exit_code_of(int err)
{
	switch (err < 0 ? -err : err) {
	case LIBVSS_ENOMODULE:
		return AGENT_EXIT_NO_MODULE;
	case EPERM:
	case EACCES:
		return AGENT_EXIT_PERMISSION;
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return AGENT_EXIT_NOT_FOUND;
	case ENOTBLK:
		return AGENT_EXIT_USAGE;
	default:
		return AGENT_EXIT_FAILED;
	}
}

/* An error of a system call on @object. */
static int sys_failure(int err, const char *object, const char *doing)
{
	agent_error("%s: %s: %s", object, doing, strerror(err < 0 ? -err : err));
	return exit_code_of(err);
}

/*
 * An error of libvss: the object it blames (the storage path, a device)
 * or @object, what was being done, and the kernel's own words if any.
 */
static int vss_failure(const struct vss_handle *h, int err, const char *object,
		       const char *doing)
{
	const char *blamed = h ? vss_last_error_object(h) : NULL;
	const char *message = h ? vss_last_error_message(h) : NULL;
	const char *name = vss_errno_name(err);

	if (-err == LIBVSS_ENOMODULE) {
		agent_error("the vss kernel module is not loaded (modprobe vss)");
	} else if (-err == EPERM) {
		agent_error("%s: %s: permission denied (need CAP_SYS_ADMIN)", object, doing);
	} else {
		agent_error("%s: %s: %s%s%s%s", blamed && *blamed ? blamed : object, doing,
			    message ? message : vss_strerror(err), name ? " (" : "",
			    name ? name : "", name ? ")" : "");
	}
	return exit_code_of(err);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Reads exactly @len bytes at @offset: 0, -EIO at an early end, or -errno. */
static int read_exact(int fd, void *buf, size_t len, uint64_t offset)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

static int write_exact(int fd, const void *buf, size_t len, uint64_t offset)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

/*
 * Writes @len bytes at @offset of a file that reads zeros there already
 * (just truncated to size): zero runs of HOLE_GRAIN stay holes.
 */
static int write_sparse(int fd, const uint8_t *buf, size_t len, uint64_t offset)
{
	size_t done = 0;

	while (done < len) {
		size_t piece = len - done < HOLE_GRAIN ? len - done : HOLE_GRAIN;
		int err = 0;

		if (!all_zero(buf + done, piece))
			err = write_exact(fd, buf + done, piece, offset + done);
		if (err)
			return err;
		done += piece;
	}
	return 0;
}

static const char *interruption(void)
{
	return interrupted == SIGTERM ? "terminated" :
	       interrupted == SIGHUP ? "hung up" : "interrupted";
}

static int size_of_fd(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

static char *format_time(uint64_t ns, char *buf, size_t len)
{
	time_t secs = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!localtime_r(&secs, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "%" PRIu64, ns);
	return buf;
}

/* ---- files written into the repository: temporary, synced, renamed ---- */

struct staged_file {
	const struct repo *repo;
	int fd;
	char temp[NAME_MAX + 1];
	char name[NAME_MAX + 1];
	char object[PATH_MAX + NAME_MAX + 2];	/* REPO/NAME, for messages */
};

static int stage_open(struct staged_file *f, const struct repo *repo, const char *name)
{
	char path[PATH_MAX + NAME_MAX + 2];
	const char *base;

	f->repo = repo;
	f->fd = -1;
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->object, sizeof(f->object), "%s/%s", repo->path, name);
	snprintf(path, sizeof(path), "%s/" TEMP_PREFIX "%s-XXXXXX", repo->path, name);
	f->fd = mkostemp(path, O_CLOEXEC);
	if (f->fd < 0)
		return sys_failure(-errno, f->object, "cannot create a temporary file");
	base = strrchr(path, '/') + 1;
	snprintf(f->temp, sizeof(f->temp), "%s", base);
	return 0;
}

static void stage_abort(struct staged_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->temp[0])
		unlinkat(f->repo->dirfd, f->temp, 0);
	f->temp[0] = '\0';
}

/* Durable under its name, or removed with the error reported. */
static int stage_commit(struct staged_file *f)
{
	int fd = f->fd, err;
	const char *doing = NULL;

	f->fd = -1;
	if (fsync(fd))
		doing = "cannot sync";
	err = -errno;
	if (close(fd) && !doing) {
		err = -errno;
		doing = "cannot write";
	}
	if (!doing && renameat(f->repo->dirfd, f->temp, f->repo->dirfd, f->name)) {
		err = -errno;
		doing = "cannot rename the temporary file into place";
	}
	if (doing) {
		stage_abort(f);
		return sys_failure(err, f->object, doing);
	}
	f->temp[0] = '\0';
	if (fsync(f->repo->dirfd))
		return sys_failure(-errno, f->repo->path, "cannot sync the directory");
	return 0;
}

/* ---- the catalog ---- */

static bool valid_file_name(const char *name)
{
	return *name && *name != '.' && !strchr(name, '/') && strlen(name) < 32;
}

static bool parse_u64(const char *text, uint64_t *out)
{
	char *end;

	if (*text < '0' || *text > '9')
		return false;
	errno = 0;
	*out = strtoull(text, &end, 10);
	return !errno && !*end;
}

static bool parse_sha256(const char *text, char out[SHA256_HEX_LEN])
{
	if (strlen(text) != SHA256_HEX_LEN - 1 ||
	    strspn(text, "0123456789abcdef") != SHA256_HEX_LEN - 1)
		return false;
	memcpy(out, text, SHA256_HEX_LEN);
	return true;
}

/* One "point" line, tokens after "point". */
static bool parse_point_fields(char *fields, struct point *p)
{
	unsigned int seen = 0;
	char *save = NULL, *tok;
	uint64_t v;
	int i;

	memset(p, 0, sizeof(*p));
	tok = strtok_r(fields, " ", &save);
	if (!tok || !parse_u64(tok, &v) || v > UINT_MAX)
		return false;
	p->index = (unsigned int)v;
	tok = strtok_r(NULL, " ", &save);
	if (!tok || (strcmp(tok, "full") && strcmp(tok, "incr")))
		return false;
	p->full = !strcmp(tok, "full");
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *value = strchr(tok, '=');

		if (!value)
			return false;
		*value++ = '\0';
		if (!strcmp(tok, "file") && valid_file_name(value)) {
			snprintf(p->file, sizeof(p->file), "%s", value);
			seen |= 1u << 0;
		} else if (!strcmp(tok, "taken") && parse_u64(value, &p->taken_ns)) {
			seen |= 1u << 1;
		} else if (!strcmp(tok, "size") && parse_u64(value, &p->device_size)) {
			seen |= 1u << 2;
		} else if (!strcmp(tok, "block") && parse_u64(value, &v) && v <= UINT32_MAX) {
			p->block_size = (uint32_t)v;
			seen |= 1u << 3;
		} else if (!strcmp(tok, "cbt")) {
			p->has_cbt = strcmp(value, "-") != 0;
			if (p->has_cbt && vss_cbt_point_parse(value, &p->cbt))
				return false;
			seen |= 1u << 4;
		} else if (!strcmp(tok, "extents") && parse_u64(value, &p->extents)) {
			seen |= 1u << 5;
		} else if (!strcmp(tok, "bytes") && parse_u64(value, &p->bytes)) {
			seen |= 1u << 6;
		} else if (!strcmp(tok, "sha256") && parse_sha256(value, p->sha256)) {
			seen |= 1u << 7;
		} else if (!strcmp(tok, "cause")) {
			for (i = 0; i < (int)(sizeof(cause_names) / sizeof(cause_names[0])); i++)
				if (!strcmp(value, cause_names[i]))
					break;
			if (i == (int)(sizeof(cause_names) / sizeof(cause_names[0])) ||
			    (i == CAUSE_NONE) != !p->full)
				return false;
			p->cause = (enum full_cause)i;
			seen |= 1u << 8;
		} else if (!strcmp(tok, "snapshot")) {
			p->kept = strcmp(value, "-") != 0;
			if (p->kept && vss_id_parse(value, &p->snapshot))
				return false;
			seen |= 1u << 9;
		} else if (!strcmp(tok, "image") && strlen(value) < sizeof(p->image)) {
			snprintf(p->image, sizeof(p->image), "%s", strcmp(value, "-") ? value : "");
			seen |= 1u << 10;
		} else {
			return false;
		}
	}
	return seen == (1u << 11) - 1;
}

static int damaged(const struct repo *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int damaged(const struct repo *r, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	agent_error("%s/" CATALOG_NAME ": %s: the repository is damaged", r->path, what);
	return AGENT_EXIT_DAMAGED;
}

/* The points must form chains: each increment continues the point before. */
static int check_chain(const struct repo *r)
{
	for (size_t i = 0; i < r->count; i++) {
		const struct point *p = &r->points[i], *prev = i ? &r->points[i - 1] : NULL;

		if (p->index != i)
			return damaged(r, "point %u where point %zu belongs", p->index, i);
		if (p->full)
			continue;
		if (!prev)
			return damaged(r, "point 0 is an increment");
		if (!p->has_cbt || !prev->has_cbt ||
		    !vss_id_equal(&p->cbt.generation, &prev->cbt.generation) ||
		    p->cbt.seq <= prev->cbt.seq || p->device_size != prev->device_size)
			return damaged(r, "increment %u does not continue point %u", p->index,
				       prev->index);
	}
	return 0;
}

static int catalog_parse(struct repo *r, char *text, size_t len)
{
	char *line, *next, *end = text + len, *checksum_line = NULL;
	char digest[SHA256_HEX_LEN], want[SHA256_HEX_LEN];
	struct sha256 sha;
	size_t lineno = 0, capacity = 0;

	if (memchr(text, '\0', len))
		return damaged(r, "a NUL byte");
	if (!len || text[len - 1] != '\n')
		return damaged(r, "the last line is incomplete");
	/* The checksum line covers everything before it. */
	for (line = text; line < end; line = next) {
		next = memchr(line, '\n', (size_t)(end - line)) + 1;
		if (!strncmp(line, "checksum ", 9))
			checksum_line = line;
	}
	if (!checksum_line || checksum_line + 9 + SHA256_HEX_LEN != end)
		return damaged(r, "no checksum line at the end");
	sha256_init(&sha);
	sha256_update(&sha, text, (size_t)(checksum_line - text));
	sha256_final_hex(&sha, digest);
	memcpy(want, checksum_line + 9, SHA256_HEX_LEN - 1);
	want[SHA256_HEX_LEN - 1] = '\0';
	if (strcmp(digest, want))
		return damaged(r, "checksum mismatch");

	for (line = text; line < checksum_line; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		lineno++;
		if (lineno == 1) {
			if (strcmp(line, CATALOG_MAGIC))
				return damaged(r, "not a catalog of this format");
		} else if (!strncmp(line, "device ", 7) && line[7]) {
			snprintf(r->device, sizeof(r->device), "%s", line + 7);
		} else if (!strncmp(line, "storage ", 8) && line[8]) {
			snprintf(r->storage, sizeof(r->storage), "%s", line + 8);
		} else if (!strncmp(line, "storage-limit ", 14)) {
			if (!parse_u64(line + 14, &r->storage_limit))
				return damaged(r, "line %zu: bad storage limit", lineno);
		} else if (!strncmp(line, "point ", 6)) {
			if (r->count == capacity) {
				struct point *grown;

				capacity = capacity ? 2 * capacity : 16;
				grown = realloc(r->points, capacity * sizeof(*grown));
				if (!grown)
					return sys_failure(-ENOMEM, r->path, "cannot read the catalog");
				r->points = grown;
			}
			if (!parse_point_fields(line + 6, &r->points[r->count]))
				return damaged(r, "line %zu: bad point", lineno);
			r->count++;
		} else {
			return damaged(r, "line %zu: unknown", lineno);
		}
	}
	if (!r->device[0])
		return damaged(r, "no device line");
	return check_chain(r);
}

static int catalog_load(struct repo *r)
{
	char object[PATH_MAX + 16];
	struct stat st;
	char *text;
	int fd, err;

	snprintf(object, sizeof(object), "%s/" CATALOG_NAME, r->path);
	fd = openat(r->dirfd, CATALOG_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return sys_failure(-errno, object, "cannot open");
	if (fstat(fd, &st)) {
		err = sys_failure(-errno, object, "cannot read");
		close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CATALOG_MAX_BYTES) {
		close(fd);
		return damaged(r, "not a regular file of a sane size");
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		return sys_failure(-ENOMEM, object, "cannot read");
	}
	err = read_exact(fd, text, (size_t)st.st_size, 0);
	close(fd);
	if (err) {
		free(text);
		return sys_failure(err, object, "cannot read");
	}
	text[st.st_size] = '\0';
	r->has_catalog = true;
	err = catalog_parse(r, text, (size_t)st.st_size);
	free(text);
	return err;
}

static void catalog_print_point(FILE *f, const struct point *p)
{
	char cbt[VSS_CBT_POINT_STRLEN], snap[VSS_ID_STRLEN];

	if (p->has_cbt)
		vss_cbt_point_format(&p->cbt, cbt);
	if (p->kept)
		vss_id_format(&p->snapshot, snap);
	fprintf(f, "point %u %s file=%s taken=%" PRIu64 " size=%" PRIu64 " block=%" PRIu32
		" cbt=%s extents=%" PRIu64 " bytes=%" PRIu64 " sha256=%s cause=%s"
		" snapshot=%s image=%s\n",
		p->index, p->full ? "full" : "incr", p->file, p->taken_ns, p->device_size,
		p->block_size, p->has_cbt ? cbt : "-", p->extents, p->bytes, p->sha256,
		cause_names[p->cause], p->kept ? snap : "-", p->kept ? p->image : "-");
}

static int catalog_save(const struct repo *r)
{
	char digest[SHA256_HEX_LEN], *text = NULL;
	struct staged_file f;
	struct sha256 sha;
	size_t len = 0;
	FILE *mem;
	int err;

	mem = open_memstream(&text, &len);
	if (!mem)
		return sys_failure(-errno, r->path, "cannot write the catalog");
	fprintf(mem, CATALOG_MAGIC "\ndevice %s\n", r->device);
	if (r->storage[0])
		fprintf(mem, "storage %s\n", r->storage);
	if (r->storage_limit)
		fprintf(mem, "storage-limit %" PRIu64 "\n", r->storage_limit);
	for (size_t i = 0; i < r->count; i++)
		catalog_print_point(mem, &r->points[i]);
	if (fclose(mem)) {
		free(text);
		return sys_failure(-ENOMEM, r->path, "cannot write the catalog");
	}
	sha256_init(&sha);
	sha256_update(&sha, text, len);
	sha256_final_hex(&sha, digest);

	err = stage_open(&f, r, CATALOG_NAME);
	if (!err) {
		err = write_exact(f.fd, text, len, 0);
		if (!err) {
			char tail[9 + SHA256_HEX_LEN + 1];

			snprintf(tail, sizeof(tail), "checksum %s\n", digest);
			err = write_exact(f.fd, tail, strlen(tail), len);
		}
		if (err) {
			stage_abort(&f);
			err = sys_failure(err, f.object, "cannot write");
		} else {
			err = stage_commit(&f);
		}
	}
	free(text);
	return err;
}

static int catalog_append(struct repo *r, const struct point *p)
{
	struct point *grown = realloc(r->points, (r->count + 1) * sizeof(*grown));

	if (!grown)
		return sys_failure(-ENOMEM, r->path, "cannot record the point");
	r->points = grown;
	r->points[r->count++] = *p;
	return catalog_save(r);
}

/* ---- the repository ---- */

static bool is_own_entry(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..") ||
	       !strncmp(name, TEMP_PREFIX, strlen(TEMP_PREFIX)) ||
	       !strncmp(name, "point-", 6);
}

/* A directory without a catalog may only hold what a failed first run left. */
static int check_unused_dir(const struct repo *r)
{
	int fd = openat(r->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return sys_failure(-errno, r->path, "cannot read the directory");
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return sys_failure(-errno, r->path, "cannot read the directory");
	}
	while ((e = readdir(d)) && is_own_entry(e->d_name))
		;
	if (e) {
		agent_error("%s: not a " PROGRAM " repository (no catalog) and not empty "
			    "(holds '%s'): give an empty or new directory", r->path, e->d_name);
		closedir(d);
		return AGENT_EXIT_USAGE;
	}
	closedir(d);
	return 0;
}

/* What a crashed or killed run left: nobody else holds the lock. */
static void remove_temporaries(const struct repo *r)
{
	int fd = openat(r->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)))
			unlinkat(r->dirfd, e->d_name, 0);
	closedir(d);
}

enum repo_mode {
	REPO_READ,		/* restore, list: shared lock, must exist */
	REPO_APPEND,		/* incr: exclusive lock, must exist */
	REPO_CREATE,		/* full: exclusive lock, made if missing */
};

static int repo_open(struct repo *r, const char *path, enum repo_mode mode)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->dirfd = -1;
	if (strlen(path) >= sizeof(r->path))
		return usage_error("%s: path too long", path);
	snprintf(r->path, sizeof(r->path), "%s", path);
	if (mode == REPO_CREATE && mkdir(path, 0700) && errno != EEXIST)
		return sys_failure(-errno, path, "cannot make the repository directory");
	r->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0) {
		if (errno == ENOENT) {
			agent_error("%s: no such repository%s", path,
				    mode == REPO_APPEND ? " (start it with 'full')" : "");
			return AGENT_EXIT_NOT_FOUND;
		}
		return sys_failure(-errno, path, "cannot open the repository");
	}
	if (flock(r->dirfd, (mode == REPO_READ ? LOCK_SH : LOCK_EX) | LOCK_NB)) {
		if (errno == EWOULDBLOCK) {
			agent_error("%s: the repository is in use by another " PROGRAM, path);
			return AGENT_EXIT_BUSY;
		}
		return sys_failure(-errno, path, "cannot lock the repository");
	}
	err = catalog_load(r);
	if (err)
		return err;
	if (!r->has_catalog && mode != REPO_CREATE) {
		agent_error("%s: not a " PROGRAM " repository: it has no catalog%s", path,
			    mode == REPO_APPEND ? " (start it with 'full')" : "");
		return AGENT_EXIT_NOT_FOUND;
	}
	if (!r->has_catalog)
		err = check_unused_dir(r);
	if (!err && mode != REPO_READ)
		remove_temporaries(r);
	return err;
}

static void repo_close(struct repo *r)
{
	if (r->dirfd >= 0)
		close(r->dirfd);
	free(r->points);
	r->points = NULL;
	r->dirfd = -1;
}

/* Whether @device names the device the repository backs up. */
static int check_same_device(const struct repo *r, const char *device)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (!r->has_catalog || !strcmp(r->device, device))
		return 0;
	if (realpath(r->device, a) && realpath(device, b) && !strcmp(a, b))
		return 0;
	agent_error("%s: the repository holds backups of %s, not of %s", r->path,
		    r->device, device);
	return AGENT_EXIT_USAGE;
}

/* ---- the snapshot ---- */

/* The diff storage: as given now or recorded, else the repository. */
static int storage_params(const struct repo *r,
			  uint64_t device_size, const char **path, uint64_t *limit)
{
	struct statvfs vfs;
	struct stat st;

	*path = r->storage[0] ? r->storage : r->path;
	*limit = r->storage_limit;
	if (*limit || stat(*path, &st) || !S_ISDIR(st.st_mode))
		return 0;
	if (statvfs(*path, &vfs))
		return sys_failure(-errno, *path, "cannot read the free space");
	*limit = (uint64_t)vfs.f_bavail * vfs.f_frsize / 2;
	if (*limit > device_size)
		*limit = device_size;
	if (*limit < 2 * VSS_MAX_CHUNK_SIZE) {
		agent_error("%s: too little free space for the snapshot's diff storage: "
			    "free some, or give --storage", *path);
		return AGENT_EXIT_FAILED;
	}
	return 0;
}

static int take_snapshot(struct vss_handle *h, const struct options *o,
			 const struct repo *r, uint64_t device_size, struct snapshot *s)
{
	const char *devices[] = { o->device };
	struct vss_create_params params = {
		.devices = devices,
		.device_count = 1,
		.flags = o->no_freeze ? VSS_CREATE_NO_FREEZE : 0,
		.label = PROGRAM,
	};
	struct vss_create_result result;
	const struct vss_snapshot_info *info;
	int err;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	err = storage_params(r, device_size, &params.storage_path, &params.storage_limit);
	if (err)
		return err;
	err = vss_create_set(h, &params, &result);
	if (err)
		return vss_failure(h, err, o->device, "cannot take a snapshot");
	if (result.snapshot_count != 1) {
		agent_error("%s: the module made %zu snapshots instead of one", o->device,
			    result.snapshot_count);
		vss_delete_set(h, &result.set_id, VSS_DELETE_FORCE);
		vss_create_result_free(&result);
		return AGENT_EXIT_FAILED;
	}
	info = &result.snapshots[0];
	s->exists = true;
	s->id = info->id;
	s->created_ns = info->created_ns;
	s->has_cbt = info->has_cbt_point;
	s->cbt = info->cbt_point;
	snprintf(s->image_name, sizeof(s->image_name), "%s", info->image.name);
	snprintf(s->image_path, sizeof(s->image_path), "/dev/%s", info->image.name);
	vss_create_result_free(&result);

	s->fd = open(s->image_path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return sys_failure(-errno, s->image_path, "cannot open the snapshot's image");
	err = size_of_fd(s->fd, &s->size);
	if (err)
		return sys_failure(err, s->image_path, "cannot read the image's size");
	posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

/* After a read of the image failed: say so, and why if the snapshot failed. */
static int image_read_failure(struct vss_handle *h, const struct snapshot *s, int err,
			      uint64_t offset)
{
	struct vss_snapshot_info info;
	char where[64];

	if (err == -ENODATA) {
		agent_error("%s: the image ends before byte %" PRIu64, s->image_path, offset);
		return AGENT_EXIT_FAILED;
	}
	snprintf(where, sizeof(where), "cannot read at byte %" PRIu64, offset);
	if (!vss_get_snapshot(h, &s->id, &info)) {
		if (info.state == VSS_STATE_FAILED) {
			agent_error("%s: %s: the snapshot failed: %s (%s)", s->image_path, where,
				    info.reason[0] ? info.reason : "no reason given",
				    vss_errno_name(info.error) ? vss_errno_name(info.error) : "?");
			vss_snapshot_info_clear(&info);
			return AGENT_EXIT_FAILED;
		}
		vss_snapshot_info_clear(&info);
	}
	return sys_failure(err, s->image_path, where);
}

/* The copy is only good if the snapshot held until the end. */
static int check_snapshot_held(struct vss_handle *h, const struct snapshot *s)
{
	struct vss_snapshot_info info;
	int err = vss_get_snapshot(h, &s->id, &info);

	if (err)
		return vss_failure(h, err, s->image_path, "cannot check the snapshot");
	if (info.state != VSS_STATE_ACTIVE) {
		agent_error("%s: the snapshot failed while it was copied: %s; nothing recorded",
			    s->image_path, info.reason[0] ? info.reason : "no reason given");
		err = AGENT_EXIT_FAILED;
	}
	vss_snapshot_info_clear(&info);
	return err;
}

static void release_snapshot(struct vss_handle *h, struct snapshot *s, bool keep)
{
	char id[VSS_ID_STRLEN];
	int err = 0;

	if (s->fd >= 0) {
		posix_fadvise(s->fd, 0, 0, POSIX_FADV_DONTNEED);
		close(s->fd);
		s->fd = -1;
	}
	if (!s->exists || keep)
		return;
	vss_id_format(&s->id, id);
	/* Somebody may be reading the image (blkid through udev): wait a bit. */
	for (int i = 0; i < DELETE_ATTEMPTS; i++) {
		err = vss_delete_snapshot(h, &s->id, 0);
		if (err != -EBUSY)
			break;
		usleep(DELETE_RETRY_MS * 1000);
	}
	if (err == -EBUSY) {
		agent_error("warning: snapshot %s (%s): its image is still open; deleting it "
			    "anyway, its readers get I/O errors", id, s->image_path);
		err = vss_delete_snapshot(h, &s->id, VSS_DELETE_FORCE);
	}
	if (err && err != -ENOENT)
		vss_failure(h, err, id, "cannot delete the snapshot; delete it with "
			    "'vssctl delete'");
	s->exists = false;
}

/* ---- full backups ---- */

static int copy_full(struct vss_handle *h, const struct repo *r, struct snapshot *s,
		     struct point *p, uint8_t *buf)
{
	struct staged_file f;
	struct sha256 sha;
	uint64_t offset;
	int err;

	snprintf(p->file, sizeof(p->file), "point-%06u.full", p->index);
	err = stage_open(&f, r, p->file);
	if (err)
		return err;
	if (ftruncate(f.fd, (off_t)s->size)) {
		err = sys_failure(-errno, f.object, "cannot size the file");
		goto fail;
	}
	sha256_init(&sha);
	for (offset = 0; offset < s->size; offset += COPY_BUFFER) {
		size_t len = s->size - offset < COPY_BUFFER ? s->size - offset : COPY_BUFFER;

		if (interrupted) {
			agent_error("%s: %s; nothing recorded", f.object, interruption());
			err = AGENT_EXIT_FAILED;
			goto fail;
		}
		err = read_exact(s->fd, buf, len, offset);
		if (err) {
			err = image_read_failure(h, s, err, offset);
			goto fail;
		}
		sha256_update(&sha, buf, len);
		err = write_sparse(f.fd, buf, len, offset);
		if (err) {
			err = sys_failure(err, f.object, "cannot write");
			goto fail;
		}
	}
	err = check_snapshot_held(h, s);
	if (err)
		goto fail;
	sha256_final_hex(&sha, p->sha256);
	p->full = true;
	p->bytes = s->size;
	p->extents = 0;
	return stage_commit(&f);
fail:
	stage_abort(&f);
	return err;
}

/* ---- incremental backups ---- */

struct extent_list {
	struct vss_cbt_extent *v;
	size_t count;
	size_t capacity;
	uint64_t bytes;
	uint64_t device_size;
	int error;			/* why the walk was stopped */
};

static int collect_extent(uint64_t offset, uint64_t length, void *arg)
{
	struct extent_list *l = arg;

	if (offset > l->device_size || length > l->device_size - offset) {
		l->error = -ERANGE;
		return 1;
	}
	if (l->count == l->capacity) {
		size_t capacity = l->capacity ? 2 * l->capacity : 256;
		struct vss_cbt_extent *grown = realloc(l->v, capacity * sizeof(*grown));

		if (!grown) {
			l->error = -ENOMEM;
			return 1;
		}
		l->v = grown;
		l->capacity = capacity;
	}
	l->v[l->count++] = (struct vss_cbt_extent){ offset, length };
	l->bytes += length;
	return 0;
}

/*
 * The changes from @from to @to, all in memory before anything is copied,
 * so that a map that changed while it was read (-EAGAIN) can be read
 * again. 16 bytes per changed run. Returns 0, the negative errno of
 * vss_cbt_changes() for the caller to judge, or an exit code (> 0) after
 * reporting.
 */
static int collect_changes(struct vss_handle *h, const char *device,
			   const struct vss_cbt_point *from, const struct vss_cbt_point *to,
			   struct extent_list *l, uint32_t *block_size)
{
	struct vss_cbt_totals totals;
	int err = -EAGAIN;

	for (int attempt = 0; attempt < CHANGES_ATTEMPTS && err == -EAGAIN; attempt++) {
		l->count = 0;
		l->bytes = 0;
		l->error = 0;
		err = vss_cbt_changes(h, device, from, to, collect_extent, l, &totals);
	}
	if (err > 0) {
		char range[96];

		if (l->error == -ENOMEM)
			return sys_failure(l->error, device, "cannot hold the list of changes");
		snprintf(range, sizeof(range), "the module reported a change past the "
			 "device's end (%" PRIu64 " bytes)", l->device_size);
		agent_error("%s: %s", device, range);
		return AGENT_EXIT_FAILED;
	}
	if (err)
		return err;
	*block_size = totals.block_size;
	return 0;
}

static int write_increment(struct vss_handle *h, const struct repo *r, struct snapshot *s,
			   const struct extent_list *l, const struct point *base,
			   struct point *p, uint8_t *buf)
{
	uint8_t header[INCR_HEADER_LEN] = { 0 };
	uint64_t pos, done;
	struct staged_file f;
	struct sha256 sha;
	int err;

	snprintf(p->file, sizeof(p->file), "point-%06u.incr", p->index);
	err = stage_open(&f, r, p->file);
	if (err)
		return err;
	memcpy(header, INCR_MAGIC, 8);
	put_le32(header + 8, INCR_VERSION);
	put_le32(header + 12, p->block_size);
	put_le64(header + 16, s->size);
	put_le64(header + 24, l->count);
	put_le64(header + 32, l->bytes);
	memcpy(header + 40, s->cbt.generation.bytes, VSS_ID_LEN);
	put_le64(header + 56, base->cbt.seq);
	put_le64(header + 64, s->cbt.seq);
	sha256_init(&sha);
	sha256_update(&sha, header, sizeof(header));
	err = write_exact(f.fd, header, sizeof(header), 0);
	pos = sizeof(header);
	/* The index, through the buffer. */
	for (size_t i = 0; i < l->count && !err;) {
		size_t n = 0;

		for (; i < l->count && n + INCR_EXTENT_LEN <= COPY_BUFFER; i++) {
			put_le64(buf + n, l->v[i].offset);
			put_le64(buf + n + 8, l->v[i].length);
			n += INCR_EXTENT_LEN;
		}
		sha256_update(&sha, buf, n);
		err = write_exact(f.fd, buf, n, pos);
		pos += n;
	}
	if (err) {
		err = sys_failure(err, f.object, "cannot write");
		goto fail;
	}
	for (size_t i = 0; i < l->count; i++) {
		for (done = 0; done < l->v[i].length; done += COPY_BUFFER) {
			uint64_t left = l->v[i].length - done;
			size_t len = left < COPY_BUFFER ? (size_t)left : COPY_BUFFER;

			if (interrupted) {
				agent_error("%s: %s; nothing recorded", f.object, interruption());
				err = AGENT_EXIT_FAILED;
				goto fail;
			}
			err = read_exact(s->fd, buf, len, l->v[i].offset + done);
			if (err) {
				err = image_read_failure(h, s, err, l->v[i].offset + done);
				goto fail;
			}
			sha256_update(&sha, buf, len);
			err = write_exact(f.fd, buf, len, pos);
			if (err) {
				err = sys_failure(err, f.object, "cannot write");
				goto fail;
			}
			pos += len;
		}
	}
	err = check_snapshot_held(h, s);
	if (err)
		goto fail;
	sha256_final_hex(&sha, p->sha256);
	p->full = false;
	p->cause = CAUSE_NONE;
	p->extents = l->count;
	p->bytes = l->bytes;
	return stage_commit(&f);
fail:
	stage_abort(&f);
	return err;
}

/* ---- full and incr ---- */

static int device_size_of(const char *device, uint64_t *size)
{
	int fd = open(device, O_RDONLY | O_CLOEXEC);
	int err;

	if (fd < 0)
		return sys_failure(-errno, device, "cannot open");
	err = size_of_fd(fd, size);
	close(fd);
	return err ? sys_failure(err, device, "cannot read its size") : 0;
}

static void describe_point(const struct options *o, const struct repo *r,
			   const struct point *p, const struct snapshot *s)
{
	char size[16], cbt[VSS_CBT_POINT_STRLEN], id[VSS_ID_STRLEN];

	vss_format_size(p->bytes, size, sizeof(size));
	if (p->has_cbt)
		vss_cbt_point_format(&p->cbt, cbt);
	if (p->full)
		printf("point %u: full backup of %s, %s, into %s/%s\n", p->index, o->device,
		       size, r->path, p->file);
	else
		printf("point %u: incremental backup of %s, %" PRIu64 " changed extent%s, %s, "
		       "into %s/%s\n", p->index, o->device, p->extents,
		       p->extents == 1 ? "" : "s", size, r->path, p->file);
	printf("point %u: changed-block point %s, sha256 %s\n", p->index,
	       p->has_cbt ? cbt : "none", p->sha256);
	if (p->kept) {
		vss_id_format(&s->id, id);
		printf("point %u: kept snapshot %s as %s\n", p->index, id, s->image_path);
	}
}

/*
 * Decides between an increment and a full backup for the snapshot @s,
 * and collects the changes for an increment. Returns 0 with *@cause set,
 * or an exit code.
 */
static int plan_increment(struct vss_handle *h, const struct options *o,
			  const struct repo *r, const struct snapshot *s,
			  struct extent_list *l, uint32_t *block_size, enum full_cause *cause)
{
	const struct point *last = &r->points[r->count - 1];
	char was[VSS_CBT_POINT_STRLEN], now[VSS_CBT_POINT_STRLEN];
	int err;

	*cause = CAUSE_NONE;
	if (!last->has_cbt || !s->has_cbt) {
		*cause = CAUSE_NO_POINT;
		printf("%s: taking a full backup instead of an incremental: %s has no "
		       "changed-block point\n", o->device,
		       last->has_cbt ? "the new snapshot" : "the last backup");
		return 0;
	}
	vss_cbt_point_format(&last->cbt, was);
	vss_cbt_point_format(&s->cbt, now);
	if (!vss_id_equal(&last->cbt.generation, &s->cbt.generation)) {
		*cause = CAUSE_NEW_GENERATION;
		printf("%s: taking a full backup instead of an incremental: the device's "
		       "tracking has a new generation since point %u (%s, now %s): "
		       "tracking was restarted or could not vouch for every write\n",
		       o->device, last->index, was, now);
		return 0;
	}
	if (s->size != last->device_size) {
		*cause = CAUSE_SIZE_CHANGED;
		printf("%s: taking a full backup instead of an incremental: the device's "
		       "size changed since point %u\n", o->device, last->index);
		return 0;
	}
	l->device_size = s->size;
	err = collect_changes(h, o->device, &last->cbt, &s->cbt, l, block_size);
	if (err > 0)
		return err;
	if (vss_cbt_needs_full_backup(err)) {
		*cause = err == -LIBVSS_ECBT_TOO_OLD ? CAUSE_MAP_TOO_OLD : CAUSE_NEW_GENERATION;
		printf("%s: taking a full backup instead of an incremental from point %u "
		       "(%s): %s\n", o->device, last->index, was,
		       vss_last_error_message(h) ? vss_last_error_message(h) : vss_strerror(err));
		return 0;
	}
	if (err)
		return vss_failure(h, err, o->device, "cannot list the changed blocks");
	return 0;
}

static int run_backup(const struct options *o, bool incremental)
{
	struct extent_list changes = { 0 };
	struct vss_handle *h = NULL;
	struct snapshot snap = { .fd = -1 };
	struct vss_cbt_info info;
	struct vss_device dev;
	struct point p = { 0 };
	uint64_t device_size;
	uint8_t *buf = NULL;
	struct repo r;
	int code, err;

	r.dirfd = -1;
	r.points = NULL;
	err = vss_check_privilege();
	if (err)
		return vss_failure(NULL, err, o->device, o->command);
	err = vss_device_lookup(o->device, &dev);
	if (err == -ENOTBLK) {
		agent_error("%s: not a block device", o->device);
		return AGENT_EXIT_USAGE;
	}
	if (err)
		return sys_failure(err, o->device, "cannot use the device");
	err = vss_open(&h);
	if (err)
		return vss_failure(NULL, err, o->device, "cannot reach the vss module");

	code = repo_open(&r, o->repo, incremental ? REPO_APPEND : REPO_CREATE);
	if (!code)
		code = check_same_device(&r, o->device);
	if (code)
		goto out;
	if (!r.has_catalog)
		snprintf(r.device, sizeof(r.device), "%s", o->device);
	if (o->storage) {
		/* Recorded absolute: later runs may start elsewhere. */
		if (!realpath(o->storage, r.storage)) {
			code = sys_failure(-errno, o->storage, "cannot use as the diff storage");
			goto out;
		}
		r.storage_limit = o->storage_limit;
	} else if (o->storage_limit_given) {
		r.storage_limit = o->storage_limit;
	}
	buf = malloc(COPY_BUFFER);
	if (!buf) {
		code = sys_failure(-ENOMEM, o->device, o->command);
		goto out;
	}
	code = device_size_of(o->device, &device_size);
	if (!code)
		code = take_snapshot(h, o, &r, device_size, &snap);
	if (code)
		goto out;

	p.index = (unsigned int)r.count;
	p.taken_ns = snap.created_ns;
	p.device_size = snap.size;
	p.has_cbt = snap.has_cbt;
	p.cbt = snap.cbt;
	if (!incremental)
		p.cause = CAUSE_REQUESTED;
	else {
		code = plan_increment(h, o, &r, &snap, &changes, &p.block_size, &p.cause);
		if (code)
			goto out;
	}
	if (!p.block_size && !vss_cbt_get_info(h, o->device, &info))
		p.block_size = info.block_size;
	if (p.cause == CAUSE_NONE)
		code = write_increment(h, &r, &snap, &changes, &r.points[r.count - 1], &p, buf);
	else
		code = copy_full(h, &r, &snap, &p, buf);
	if (code)
		goto out;
	if (o->keep) {
		p.kept = true;
		p.snapshot = snap.id;
		snprintf(p.image, sizeof(p.image), "%s", snap.image_name);
	}
	code = catalog_append(&r, &p);
	if (!code)
		describe_point(o, &r, &p, &snap);
out:
	/* A snapshot no point refers to is of no use to anybody. */
	release_snapshot(h, &snap, o->keep && !code);
	free(changes.v);
	free(buf);
	repo_close(&r);
	vss_close(h);
	return code;
}

/* ---- restore ---- */

/* Reads @len bytes of @fd at @offset into @buf and hashes them. */
static int read_hashed(int fd, const char *object, void *buf, size_t len, uint64_t offset,
		       struct sha256 *sha)
{
	int err = read_exact(fd, buf, len, offset);

	if (err == -ENODATA) {
		agent_error("%s: ends early, at byte %" PRIu64 ": the repository is damaged",
			    object, offset);
		return AGENT_EXIT_DAMAGED;
	}
	if (err)
		return sys_failure(err, object, "cannot read");
	sha256_update(sha, buf, len);
	return 0;
}

static int open_point_file(const struct repo *r, const struct point *p, char *object,
			   size_t object_len, int *fd, uint64_t *size)
{
	int err;

	snprintf(object, object_len, "%s/%s", r->path, p->file);
	*fd = openat(r->dirfd, p->file, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		if (errno == ENOENT) {
			agent_error("%s: missing (point %u): the repository is damaged", object,
				    p->index);
			return AGENT_EXIT_DAMAGED;
		}
		return sys_failure(-errno, object, "cannot open");
	}
	err = size_of_fd(*fd, size);
	if (err) {
		close(*fd);
		*fd = -1;
		return sys_failure(err, object, "cannot read its size");
	}
	posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

static int check_digest(struct sha256 *sha, const struct point *p, const char *object)
{
	char digest[SHA256_HEX_LEN];

	sha256_final_hex(sha, digest);
	if (strcmp(digest, p->sha256)) {
		agent_error("%s: checksum mismatch (point %u): the repository is damaged",
			    object, p->index);
		return AGENT_EXIT_DAMAGED;
	}
	return 0;
}

static int apply_full(const struct repo *r, const struct point *p, int out_fd,
		      const char *out, uint8_t *buf)
{
	char object[PATH_MAX + 40];
	struct sha256 sha;
	uint64_t size, offset;
	int fd, err;

	err = open_point_file(r, p, object, sizeof(object), &fd, &size);
	if (err)
		return err;
	if (size != p->device_size) {
		agent_error("%s: %" PRIu64 " bytes, not the %" PRIu64 " of the device (point %u): "
			    "the repository is damaged", object, size, p->device_size, p->index);
		close(fd);
		return AGENT_EXIT_DAMAGED;
	}
	sha256_init(&sha);
	for (offset = 0; offset < size && !err; offset += COPY_BUFFER) {
		size_t len = size - offset < COPY_BUFFER ? size - offset : COPY_BUFFER;

		if (interrupted) {
			agent_error("%s: %s", out, interruption());
			err = AGENT_EXIT_FAILED;
			break;
		}
		err = read_hashed(fd, object, buf, len, offset, &sha);
		if (!err && (err = write_sparse(out_fd, buf, len, offset)))
			err = sys_failure(err, out, "cannot write");
	}
	close(fd);
	return err ? err : check_digest(&sha, p, object);
}

static int bad_increment(const char *object, const struct point *p, const char *what)
{
	agent_error("%s: %s (point %u): the repository is damaged", object, what, p->index);
	return AGENT_EXIT_DAMAGED;
}

/* Header and index of an increment, checked against the catalog. */
static int read_increment_index(int fd, const char *object, const struct point *base,
				const struct point *p, uint64_t file_size, struct sha256 *sha,
				struct vss_cbt_extent **out, uint64_t *count)
{
	uint8_t header[INCR_HEADER_LEN];
	struct vss_cbt_extent *v = NULL;
	uint64_t n, data, sum = 0, end = 0;
	int err;

	*out = NULL;
	err = read_hashed(fd, object, header, sizeof(header), 0, sha);
	if (err)
		return err;
	n = get_le64(header + 24);
	data = get_le64(header + 32);
	if (memcmp(header, INCR_MAGIC, 8) || get_le32(header + 8) != INCR_VERSION)
		return bad_increment(object, p, "not an increment of this format");
	if (get_le64(header + 16) != p->device_size || get_le32(header + 12) != p->block_size ||
	    memcmp(header + 40, p->cbt.generation.bytes, VSS_ID_LEN) ||
	    get_le64(header + 56) != base->cbt.seq || get_le64(header + 64) != p->cbt.seq)
		return bad_increment(object, p, "its header does not match the catalog");
	if (n != p->extents || data != p->bytes ||
	    n > (file_size - INCR_HEADER_LEN) / INCR_EXTENT_LEN ||
	    file_size - INCR_HEADER_LEN - n * INCR_EXTENT_LEN != data)
		return bad_increment(object, p, "its size does not match its header");
	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return sys_failure(-ENOMEM, object, "cannot read the index");
	for (uint64_t i = 0; i < n; i++) {
		uint8_t rec[INCR_EXTENT_LEN];

		err = read_hashed(fd, object, rec, sizeof(rec),
				  INCR_HEADER_LEN + i * INCR_EXTENT_LEN, sha);
		if (err)
			break;
		v[i].offset = get_le64(rec);
		v[i].length = get_le64(rec + 8);
		if (!v[i].length || v[i].offset < end || v[i].offset > p->device_size ||
		    v[i].length > p->device_size - v[i].offset) {
			err = bad_increment(object, p, "its index is out of order or out of range");
			break;
		}
		end = v[i].offset + v[i].length;
		sum += v[i].length;
	}
	if (!err && sum != data)
		err = bad_increment(object, p, "its index does not add up to its data");
	if (err) {
		free(v);
		return err;
	}
	*out = v;
	*count = n;
	return 0;
}

static int apply_increment(const struct repo *r, const struct point *base,
			   const struct point *p, int out_fd, const char *out, uint8_t *buf)
{
	char object[PATH_MAX + 40];
	struct vss_cbt_extent *v = NULL;
	uint64_t size, count = 0, pos;
	struct sha256 sha;
	int fd, err;

	err = open_point_file(r, p, object, sizeof(object), &fd, &size);
	if (err)
		return err;
	if (size < INCR_HEADER_LEN) {
		close(fd);
		return bad_increment(object, p, "shorter than its header");
	}
	sha256_init(&sha);
	err = read_increment_index(fd, object, base, p, size, &sha, &v, &count);
	pos = INCR_HEADER_LEN + count * INCR_EXTENT_LEN;
	for (uint64_t i = 0; i < count && !err; i++) {
		for (uint64_t done = 0; done < v[i].length && !err; done += COPY_BUFFER) {
			uint64_t left = v[i].length - done;
			size_t len = left < COPY_BUFFER ? (size_t)left : COPY_BUFFER;

			if (interrupted) {
				agent_error("%s: %s", out, interruption());
				err = AGENT_EXIT_FAILED;
				break;
			}
			err = read_hashed(fd, object, buf, len, pos, &sha);
			if (!err && (err = write_exact(out_fd, buf, len, v[i].offset + done)))
				err = sys_failure(err, out, "cannot write");
			pos += len;
		}
	}
	free(v);
	close(fd);
	return err ? err : check_digest(&sha, p, object);
}

/* A temporary file next to @out, renamed over it when complete. */
static int open_output(const char *out, char *temp, size_t temp_len, int *fd)
{
	const char *slash = strrchr(out, '/');
	struct stat st;
	int err;

	if (!stat(out, &st) && !S_ISREG(st.st_mode)) {
		agent_error("%s: exists and is not a regular file: restore to a file", out);
		return AGENT_EXIT_USAGE;
	}
	if (slash)
		snprintf(temp, temp_len, "%.*s/" TEMP_PREFIX "%s-XXXXXX", (int)(slash - out),
			 out, slash + 1);
	else
		snprintf(temp, temp_len, TEMP_PREFIX "%s-XXXXXX", out);
	*fd = mkostemp(temp, O_CLOEXEC);
	if (*fd >= 0)
		return 0;
	err = -errno;
	temp[0] = '\0';
	return sys_failure(err, out, "cannot create a temporary file next to it");
}

static int sync_parent_dir(const char *out)
{
	const char *slash = strrchr(out, '/');
	char dir[PATH_MAX];
	int fd, err = 0;

	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", slash == out ? 1 : (int)(slash - out), out);
	else
		snprintf(dir, sizeof(dir), ".");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		err = sys_failure(-errno, dir, "cannot sync the directory");
	if (fd >= 0)
		close(fd);
	return err;
}

static int cmd_restore(const struct options *o)
{
	char temp[PATH_MAX + NAME_MAX + 16] = "", size[16];
	unsigned int base, n = o->point;
	uint8_t *buf = NULL;
	int out_fd = -1, code;
	struct repo r;

	code = repo_open(&r, o->repo, REPO_READ);
	if (code)
		goto out;
	if (n >= r.count) {
		if (r.count)
			agent_error("%s: no point %u: the repository holds points 0 to %zu",
				    r.path, n, r.count - 1);
		else
			agent_error("%s: no point %u: the repository holds none", r.path, n);
		code = AGENT_EXIT_NOT_FOUND;
		goto out;
	}
	for (base = n; !r.points[base].full; base--)
		;
	buf = malloc(COPY_BUFFER);
	if (!buf) {
		code = sys_failure(-ENOMEM, o->out, "cannot restore");
		goto out;
	}
	code = open_output(o->out, temp, sizeof(temp), &out_fd);
	if (code)
		goto out;
	if (ftruncate(out_fd, (off_t)r.points[n].device_size)) {
		code = sys_failure(-errno, o->out, "cannot size the file");
		goto out;
	}
	code = apply_full(&r, &r.points[base], out_fd, o->out, buf);
	for (unsigned int i = base + 1; i <= n && !code; i++)
		code = apply_increment(&r, &r.points[i - 1], &r.points[i], out_fd, o->out, buf);
	if (code)
		goto out;
	if (fsync(out_fd) || close(out_fd)) {
		out_fd = -1;
		code = sys_failure(-errno, o->out, "cannot sync");
		goto out;
	}
	out_fd = -1;
	if (rename(temp, o->out)) {
		code = sys_failure(-errno, o->out, "cannot rename the temporary file into place");
		goto out;
	}
	temp[0] = '\0';
	code = sync_parent_dir(o->out);
	if (!code)
		printf("restored point %u of %s (full backup %u + %u increment%s) to %s, %s\n",
		       n, r.device, base, n - base, n - base == 1 ? "" : "s", o->out,
		       vss_format_size(r.points[n].device_size, size, sizeof(size)));
out:
	if (out_fd >= 0)
		close(out_fd);
	/* A restore that failed leaves nothing behind. */
	if (temp[0])
		unlink(temp);
	free(buf);
	repo_close(&r);
	return code;
}

/* ---- list ---- */

static int cmd_list(const struct options *o)
{
	char taken[32], size[16], cbt[VSS_CBT_POINT_STRLEN], copied[48];
	struct repo r;
	int code;

	code = repo_open(&r, o->repo, REPO_READ);
	if (code)
		goto out;
	printf("%s: backups of %s, %zu point%s\n", r.path, r.device, r.count,
	       r.count == 1 ? "" : "s");
	if (!r.count)
		goto out;
	printf("%-5s  %-4s  %-19s  %-47s  %-26s  %s\n", "POINT", "KIND", "TAKEN",
	       "CHANGED-BLOCK POINT", "COPIED", "NOTE");
	for (size_t i = 0; i < r.count; i++) {
		const struct point *p = &r.points[i];
		char note[96] = "";

		if (p->has_cbt)
			vss_cbt_point_format(&p->cbt, cbt);
		vss_format_size(p->bytes, size, sizeof(size));
		if (p->full)
			snprintf(copied, sizeof(copied), "%s", size);
		else
			snprintf(copied, sizeof(copied), "%s in %" PRIu64 " extent%s", size,
				 p->extents, p->extents == 1 ? "" : "s");
		if (p->full && p->cause != CAUSE_REQUESTED)
			snprintf(note, sizeof(note), "full because: %s", cause_names[p->cause]);
		if (p->kept)
			snprintf(note + strlen(note), sizeof(note) - strlen(note),
				 "%ssnapshot kept as /dev/%s", note[0] ? "; " : "", p->image);
		printf("%-5u  %-4s  %-19s  %-47s  %-26s  %s\n", p->index,
		       p->full ? "full" : "incr", format_time(p->taken_ns, taken, sizeof(taken)),
		       p->has_cbt ? cbt : "-", copied, note);
	}
out:
	repo_close(&r);
	return code;
}

/* ---- command line ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROGRAM " full DEV REPO [OPTIONS]\n"
		"       " PROGRAM " incr DEV REPO [OPTIONS]\n"
		"       " PROGRAM " restore REPO N OUT\n"
		"       " PROGRAM " list REPO\n"
		"\n"
		"An example image backup agent built on libvss (vss, the Volume Shadow\n"
		"Copy Service for Linux).\n"
		"\n"
		"  full     snapshot DEV and copy its whole image into the repository REPO\n"
		"           (a directory, made if missing), as the next point\n"
		"  incr     snapshot DEV and copy only the blocks written since the last\n"
		"           point in REPO, as vss's changed-block tracking reports them;\n"
		"           a full backup instead, saying why, when vss cannot vouch for\n"
		"           that list (a new tracking generation, or an older point than\n"
		"           its map reaches)\n"
		"  restore  rebuild point N (0 is the first; each point is a full backup\n"
		"           or an increment on the point before) into the file OUT\n"
		"  list     the points of REPO\n"
		"\n"
		"Options of full and incr (remembered in REPO for later runs):\n"
		"  -s, --storage PATH        diff storage for the snapshot: a block device,\n"
		"                            a file or a directory, not on DEV (default: an\n"
		"                            unnamed file in REPO)\n"
		"  -l, --storage-limit SIZE  how much of it the snapshot may use (default\n"
		"                            for a directory: DEV's size or half its free\n"
		"                            space, whichever is less)\n"
		"Options of full and incr for this run only:\n"
		"  -k, --keep                keep the snapshot after the backup (its id and\n"
		"                            image are printed and recorded; 'vssctl delete'\n"
		"                            removes it)\n"
		"  -n, --no-freeze           do not freeze a filesystem mounted on DEV: a\n"
		"                            crash-consistent image\n"
		"  -h, --help                print this help\n"
		"\n"
		"Exit status: 0 success; 1 the backup or restore failed (nothing recorded);\n"
		"2 usage; 3 vss module not loaded; 4 permission denied (full and incr need\n"
		"CAP_SYS_ADMIN); 5 no such device, repository or point; 6 the repository\n"
		"is damaged; 7 the repository is in use by another " PROGRAM ".\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "storage", required_argument, NULL, 's' },
		{ "storage-limit", required_argument, NULL, 'l' },
		{ "keep", no_argument, NULL, 'k' },
		{ "no-freeze", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool backup;
	int opt;

	if (argc < 2)
		return usage_error("say what to do: full, incr, restore or list");
	o->command = argv[1];
	if (!strcmp(o->command, "--help") || !strcmp(o->command, "-h") ||
	    !strcmp(o->command, "help")) {
		usage(stdout);
		return -1;
	}
	if (strcmp(o->command, "full") && strcmp(o->command, "incr") &&
	    strcmp(o->command, "restore") && strcmp(o->command, "list"))
		return usage_error("unknown command '%s': full, incr, restore or list",
				   o->command);
	backup = !strcmp(o->command, "full") || !strcmp(o->command, "incr");
	optind = 2;
	while ((opt = getopt_long(argc, argv, ":s:l:knh", longopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return -1;
		}
		if (opt == ':')
			return usage_error("%s: option %s needs a value", o->command,
					   argv[optind - 1]);
		if (opt == '?')
			return usage_error("%s: unknown option '%s'", o->command,
					   argv[optind - 1]);
		if (!backup)
			return usage_error("%s: option '%s' applies to full and incr only",
					   o->command, argv[optind - 1]);
		switch (opt) {
		case 's':
			if (!*optarg || strchr(optarg, '\n'))
				return usage_error("%s: bad storage path", o->command);
			o->storage = optarg;
			break;
		case 'l':
			if (vss_parse_size(optarg, &o->storage_limit) || !o->storage_limit)
				return usage_error("%s: invalid storage limit '%s': give bytes, or "
						   "a number with K, M, G or T", o->command, optarg);
			o->storage_limit_given = true;
			break;
		case 'k':
			o->keep = true;
			break;
		case 'n':
			o->no_freeze = true;
			break;
		}
	}
	argv += optind;
	argc -= optind;
	if (backup) {
		if (argc != 2)
			return usage_error("%s: give DEV and REPO", o->command);
		o->device = argv[0];
		o->repo = argv[1];
		if (!*o->device || strchr(o->device, '\n'))
			return usage_error("%s: bad device path", o->command);
	} else if (!strcmp(o->command, "restore")) {
		uint64_t n;

		if (argc != 3)
			return usage_error("restore: give REPO, N and OUT");
		o->repo = argv[0];
		if (!parse_u64(argv[1], &n) || n > UINT_MAX)
			return usage_error("restore: invalid point '%s': give a number from 0",
					   argv[1]);
		o->point = (unsigned int)n;
		o->out = argv[2];
		if (!*o->out)
			return usage_error("restore: empty output path");
	} else {
		if (argc != 1)
			return usage_error("list: give REPO");
		o->repo = argv[0];
	}
	if (!*o->repo)
		return usage_error("%s: empty repository path", o->command);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct options o = { 0 };
	int code;

	code = parse_options(argc, argv, &o);
	if (code)
		return code < 0 ? AGENT_EXIT_OK : code;
	/* Stop cleanly: delete the snapshot, remove the temporary file. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (!strcmp(o.command, "full"))
		code = run_backup(&o, false);
	else if (!strcmp(o.command, "incr"))
		code = run_backup(&o, true);
	else if (!strcmp(o.command, "restore"))
		code = cmd_restore(&o);
	else
		code = cmd_list(&o);
	if (fflush(stdout) && !code) {
		agent_error("cannot write the output: %s", strerror(errno));
		code = AGENT_EXIT_FAILED;
	}
	return code;
}
