/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the parts of vssctl share: the global options, error reporting and
 * the command entry points. Output helpers are in output.h.
 */
#ifndef VSSCTL_H
#define VSSCTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvss.h"
#include "exit_codes.h"

#ifndef VSSCTL_VERSION
#error "VSSCTL_VERSION must be defined by the build"
#endif

struct vssctl {
	bool json;
	bool pretty;
	const char *command;	/* the subcommand, for messages */
};

int vssctl_main(int argc, char **argv);

int cmd_version(struct vssctl *ctx, int argc, char **argv);
int cmd_create(struct vssctl *ctx, int argc, char **argv);
int cmd_list(struct vssctl *ctx, int argc, char **argv);
int cmd_show(struct vssctl *ctx, int argc, char **argv);
int cmd_delete(struct vssctl *ctx, int argc, char **argv);
int cmd_monitor(struct vssctl *ctx, int argc, char **argv);
int cmd_track(struct vssctl *ctx, int argc, char **argv);
int cmd_untrack(struct vssctl *ctx, int argc, char **argv);
int cmd_cbt(struct vssctl *ctx, int argc, char **argv);
int cmd_writers(struct vssctl *ctx, int argc, char **argv);
int cmd_backup_complete(struct vssctl *ctx, int argc, char **argv);
int cmd_abort(struct vssctl *ctx, int argc, char **argv);
int cmd_exec(struct vssctl *ctx, int argc, char **argv);

/* errors.c */

/* Maps a negative errno of libvss to the exit code a script sees. */
int vssctl_exit_code(int err);

/* Prints "vssctl: " and the formatted text to stderr. */
void vssctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error of the current command: message, hint, and exit code 2. */
int vssctl_usage_error(const struct vssctl *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Reports a failed libvss call and returns its exit code. The object
 * printed is what the library blamed (a device path, the storage) or else
 * @object; the reason is the kernel's or library's message or else a text
 * chosen for the error and @not_found (used for ENOENT, e.g. "no such
 * snapshot"). @h may be NULL for calls without a handle.
 */
int vssctl_report(const struct vssctl *ctx, const struct vss_handle *h, int err,
		  const char *object, const char *not_found);

/*
 * For commands that change something: refuses early, with exit code 4,
 * a process without CAP_SYS_ADMIN, as the module would.
 */
int vssctl_check_privilege(const struct vssctl *ctx);

/* Opens the library handle, reporting failures; returns an exit code. */
int vssctl_open(const struct vssctl *ctx, struct vss_handle **h);
/* Reports a failure of vss_open() and returns its exit code. */
int vssctl_open_failed(const struct vssctl *ctx, int err);

/* Getopt boilerplate shared by the commands. */
int vssctl_bad_option(const struct vssctl *ctx, char **argv, int opt);

/* A device argument: "vdb" means /dev/vdb, anything with a slash is a path. */
const char *vssctl_device_path(const char *arg, char *buf, size_t len);

/* The device of a tracking command; reports failures, returns an exit code. */
int vssctl_lookup_device(const struct vssctl *ctx, const char *path,
			 struct vss_device *out);

/* cmd_list.c: whether @text is (a prefix of) the id of an existing set. */
bool vssctl_names_a_set(struct vss_handle *h, const char *text);

/* storage.c */

/* How the storage limit was given on the command line. */
struct vssctl_limit {
	bool given;
	bool percent;
	uint64_t bytes;		/* when !percent */
	unsigned int pct;	/* 1..100 when percent */
};

int vssctl_parse_limit(const char *text, struct vssctl_limit *out);

/* The default storage limit: this share of the free space, in percent. */
#define VSSCTL_DEFAULT_LIMIT_PERCENT	10

/* Where the storage goes when --storage is not given, in this order. */
#define VSSCTL_DEFAULT_STORAGE_DIR	"/var/lib/vss"
#define VSSCTL_FALLBACK_STORAGE_DIR	"/tmp"

/*
 * Picks a storage directory on no device in @avoid (the set's devices and
 * the origins of existing snapshots; their partitions and the devices
 * stacked on them are avoided too). If there is none, picks the preferred
 * directory on those devices when its filesystem (ext4, XFS) can hold a
 * same-volume store, and names the device in @on_device (else "").
 * Creates VSSCTL_DEFAULT_STORAGE_DIR (mode 0700) if it is chosen and
 * missing. Returns 0 or -ENOENT with @why describing what was rejected.
 */
int vssctl_pick_storage(const struct vss_device *avoid, size_t avoid_count,
			char *path, size_t path_len, char *on_device, size_t on_device_len,
			char *why, size_t why_len);

/* Can @dir's filesystem (ext4, XFS) pin a same-volume store's blocks? */
bool vssctl_can_hold_same_volume_store(const char *dir);

/*
 * Resolves a limit against the storage at @path: a percentage of the free
 * space of the filesystem holding a file or directory, or of the size of
 * a block device. Returns 0 or a negative errno.
 */
int vssctl_resolve_limit(const char *path, const struct vssctl_limit *limit,
			 uint64_t *bytes);

/*
 * Whether the filesystem holding @dir lies on one of @avoid, their
 * partitions or the devices stacked on them; @culprit gets its name.
 */
bool vssctl_dir_on_devices(const char *dir, const struct vss_device *avoid,
			   size_t avoid_count, char *culprit, size_t culprit_len);

/* cmd_create.c: what create shares with exec */

struct create_args {
	const char *storage;
	struct vssctl_limit limit;
	uint32_t chunk_size;
	const char *label;
	uint32_t flags;
	uint32_t hold_limit_ms;
	char **devices;		/* paths, "vdb" already made "/dev/vdb" */
	size_t device_count;
	bool no_writers;
	bool writer_volumes;
	uint32_t queue_timeout_ms;
	bool queue_timeout_given;
};

/*
 * Gives the calling process (and what it runs) idle priority: nice
 * VSSCTL_IDLE_NICE and the idle I/O class. 0, or a negative errno with
 * @what naming the priority that could not be set.
 */
#define VSSCTL_IDLE_NICE	19
int vssctl_idle_priority(const char **what);

/* The options of create (storage, limits, writers), without -j and -h. */
#define VSSCTL_CREATE_OPTION_COUNT	9
#define VSSCTL_CREATE_SHORT_OPTIONS	"s:l:c:L:nt:wq:"
extern const struct option vssctl_create_options[VSSCTL_CREATE_OPTION_COUNT + 1];

/* Takes one of those options: 0, an exit code, or -ENOENT for another one. */
int vssctl_create_option(struct vssctl *ctx, int opt, const char *optarg,
			 struct create_args *args);
/* The devices argv[optind..argc-1], as paths into @args; 0 or an exit code. */
int vssctl_create_devices(struct vssctl *ctx, int argc, char **argv, int optind,
			  struct create_args *args);
void vssctl_free_device_paths(char **paths, size_t count);
/* Looks every device of @args up; 0 or an exit code. */
int vssctl_check_devices(const struct vssctl *ctx, const struct create_args *args,
			 struct vss_device *devices);
/* The storage path and limit of the set; 0 or an exit code. */
int vssctl_choose_storage(const struct vssctl *ctx, struct vss_handle *h,
			  const struct create_args *args,
			  const struct vss_device *devices, size_t device_count,
			  char *path, size_t path_len, uint64_t *limit);
/*
 * Takes the set through the vsswriterd session @s (gather, volumes,
 * storage, prepare, create) and leaves it created in the session; 0 or an
 * exit code, with the writers' results printed on failure.
 */
int vssctl_session_set(const struct vssctl *ctx, const struct create_args *args,
		       struct vss_session *s, struct vss_handle *h,
		       const struct vss_device *devices, struct vss_create_params *params,
		       char *storage, size_t storage_len, struct vss_create_result *set);

#endif /* VSSCTL_H */
