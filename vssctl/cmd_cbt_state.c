// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl cbt save and vssctl cbt restore: hand tracked devices' maps over
 * to state files before the module goes away (unload, shutdown), and
 * resume tracking from them afterwards. One file per device, named after
 * its kernel name ("vdb.cbt"), in /var/lib/vss/cbt unless --dir says.
 */
#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cmd_cbt.h"
#include "output.h"

static void save_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl cbt save [--json] [--dir DIR] DEV...\n"
		"       vssctl cbt save [--json] [--dir DIR] --all\n"
		"\n"
		"Stop tracking each DEV (or every tracked device) and save its map, so\n"
		"that 'vssctl cbt restore' can resume it after the module is reloaded\n"
		"or the machine rebooted. A device must have no snapshots. Each map goes\n"
		"to DIR/NAME" VSSCTL_CBT_SUFFIX ", NAME the device's kernel name. With --all,\n"
		"maps of an earlier boot found in DIR are removed first: they were not\n"
		"restored in this boot, and their devices were written untracked.\n"
		"\n"
		"Options:\n"
		"  -d, --dir DIR   where the maps go (default " VSSCTL_CBT_STATE_DIR
		",\n"
		"                  created with mode 0700)\n"
		"  -a, --all       every tracked device\n"
		"  -j, --json      print JSON\n"
		"  -h, --help      print this help\n");
}

static void restore_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl cbt restore [--json] [--dir DIR] [FILE...]\n"
		"       vssctl cbt restore [--json] --device DEV FILE\n"
		"\n"
		"Resume tracking from maps saved by 'vssctl cbt save': each FILE, or every\n"
		"*" VSSCTL_CBT_SUFFIX " file in DIR. The device is found by its stable names\n"
		"(by-id, PARTUUID, device-mapper uuid, serial number), or is DEV. If the\n"
		"module can prove that no write was missed since the save, the saved\n"
		"generation goes on; otherwise the device starts a new one, and the\n"
		"reason is printed: its next backup must be a full one. A file is\n"
		"removed once used, so that it is never applied twice. Without FILE,\n"
		"maps of an earlier boot that are still left afterwards are removed\n"
		"too: their devices are written untracked from now on.\n"
		"\n"
		"Options:\n"
		"  -d, --dir DIR      where the maps are (default " VSSCTL_CBT_STATE_DIR ")\n"
		"  -D, --device DEV   restore the one FILE to DEV\n"
		"  -j, --json         print JSON\n"
		"  -h, --help         print this help\n");
}

/* Makes @dir and its missing parents; the last one with mode 0700. */
static int make_state_dir(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i, len = strlen(dir);

	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (stat(path, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				return -ENOTDIR;
		} else if (errno != ENOENT) {
			return -errno;
		} else if (mkdir(path, i == len ? 0700 : 0755) < 0 && errno != EEXIST) {
			return -errno;
		}
		path[i] = i == len ? '\0' : '/';
	}
	return 0;
}

static void state_file_path(const char *dir, const struct vss_device *dev,
			    char *buf, size_t len)
{
	if (dev->name[0])
		snprintf(buf, len, "%s/%s" VSSCTL_CBT_SUFFIX, dir, dev->name);
	else
		snprintf(buf, len, "%s/%u-%u" VSSCTL_CBT_SUFFIX, dir, dev->major,
			 dev->minor);
}

/* What was saved or restored and what failed, for the final output. */
struct state_report {
	const struct vssctl *ctx;
	struct json_object *done;
	struct json_object *failed;
	struct json_object *removed;
	int first_code;
};

static void report_init(struct state_report *r, const struct vssctl *ctx)
{
	r->ctx = ctx;
	r->done = json_object_new_array();
	r->failed = json_object_new_array();
	r->removed = json_object_new_array();
	r->first_code = 0;
}

static int report_finish(struct state_report *r, const char *done_key)
{
	int code = r->first_code;

	if (r->ctx->json) {
		struct json_object *obj = json_object_new_object();

		json_object_object_add(obj, done_key, r->done);
		json_object_object_add(obj, "failed", r->failed);
		json_object_object_add(obj, "removed", r->removed);
		if (vssctl_json_print(r->ctx, obj, stdout) && !code)
			code = VSSCTL_EXIT_FAILURE;
	} else {
		json_object_put(r->done);
		json_object_put(r->failed);
		json_object_put(r->removed);
	}
	return code;
}

static void report_failure(struct state_report *r, const struct vss_handle *h,
			   int err, const char *object, const char *not_found,
			   struct json_object *entry)
{
	const char *message = vss_last_error_message(h);
	const char *name = vss_errno_name(err);
	int code;

	if (err == -EBUSY && !message) {
		vssctl_error("%s: the device has snapshots: delete them first (EBUSY)",
			     object);
		code = VSSCTL_EXIT_BUSY;
	} else {
		code = vssctl_report(r->ctx, h, err, object, not_found);
	}
	if (!r->first_code)
		r->first_code = code;
	json_object_object_add(entry, "errno", json_object_new_int(err < 0 ? -err : err));
	json_object_object_add(entry, "error", name ? json_object_new_string(name) : NULL);
	json_object_object_add(entry, "message",
			       json_object_new_string(message ? message : vss_strerror(err)));
	json_object_array_add(r->failed, entry);
}

static int list_state_files(const char *dir, char ***out, size_t *count);

static void free_names(char **names, size_t count)
{
	while (count)
		free(names[--count]);
	free(names);
}

/*
 * A map of another boot still in @dir was not restored when this boot
 * began: its device has been written untracked since, and a restore in a
 * later boot could not tell. It goes, so that the device starts afresh.
 */
static void remove_stale_maps(struct state_report *r, struct vss_handle *h,
			      const char *dir)
{
	struct vss_cbt_state_file sf;
	char **files, device[VSSCTL_DEVICE_TEXT_MAX];
	size_t count, i;

	if (list_state_files(dir, &files, &count))
		return;
	for (i = 0; i < count; i++) {
		struct json_object *entry;

		if (vss_cbt_read_state_file(h, files[i], &sf) || sf.this_boot)
			continue;
		if (unlink(files[i])) {
			vssctl_error("%s: cannot remove a stale map: %s", files[i],
				     vss_strerror(-errno));
			continue;
		}
		vssctl_device_text(&sf.saved.device, device, sizeof(device));
		if (!r->ctx->json)
			printf("%s: removed: saved in an earlier boot and not restored "
			       "since; %s starts a new generation when tracked again\n",
			       files[i], device);
		entry = json_object_new_object();
		json_object_object_add(entry, "file", json_object_new_string(files[i]));
		json_object_object_add(entry, "device", vssctl_json_device(&sf.saved.device));
		json_object_array_add(r->removed, entry);
	}
	free_names(files, count);
}

static void save_one(struct state_report *r, struct vss_handle *h,
		     const char *device, const struct vss_device *dev,
		     const char *file, bool by_number)
{
	struct json_object *entry = json_object_new_object();
	char text[VSSCTL_DEVICE_TEXT_MAX];
	int err;

	json_object_object_add(entry, "device", vssctl_json_device(dev));
	json_object_object_add(entry, "file", json_object_new_string(file));
	err = by_number ? vss_cbt_save_device(h, dev, file, NULL) :
			  vss_cbt_save(h, device, file);
	if (err) {
		if (by_number) {
			vssctl_device_text(dev, text, sizeof(text));
			device = text;
		}
		report_failure(r, h, err, device, "not tracked (see 'vssctl track')", entry);
		return;
	}
	json_object_array_add(r->done, entry);
	if (!r->ctx->json) {
		if (by_number) {
			vssctl_device_text(dev, text, sizeof(text));
			device = text;
		}
		printf("saved %s to %s\n", device, file);
	}
}

/* Every device is looked up and found tracked before any is saved. */
static int save_devices(const struct vssctl *ctx, struct vss_handle *h,
			const char *dir, char **args, int count)
{
	struct vss_cbt_info *infos = calloc((size_t)count, sizeof(*infos));
	char (*paths)[PATH_MAX] = calloc((size_t)count, sizeof(*paths));
	struct state_report report;
	char file[PATH_MAX * 2];
	int i, j, code = 0, err;

	if (!infos || !paths) {
		vssctl_error("%s: out of memory", ctx->command);
		code = VSSCTL_EXIT_FAILURE;
		goto out;
	}
	for (i = 0; i < count && !code; i++) {
		struct vss_device dev;

		snprintf(paths[i], PATH_MAX, "%s",
			 vssctl_device_path(args[i], file, sizeof(file)));
		code = vssctl_lookup_device(ctx, paths[i], &dev);
		if (code)
			break;
		err = vss_cbt_get_info(h, paths[i], &infos[i]);
		if (err) {
			code = vssctl_cbt_report(ctx, h, err, paths[i]);
			break;
		}
		for (j = 0; j < i; j++)
			if (infos[j].device.major == infos[i].device.major &&
			    infos[j].device.minor == infos[i].device.minor) {
				vssctl_error("%s: device is listed twice (also as %s)",
					     paths[i], paths[j]);
				code = VSSCTL_EXIT_USAGE;
			}
	}
	if (code) {
		vssctl_error("%s: nothing saved", ctx->command);
		goto out;
	}
	report_init(&report, ctx);
	for (i = 0; i < count; i++) {
		state_file_path(dir, &infos[i].device, file, sizeof(file));
		save_one(&report, h, paths[i], &infos[i].device, file, false);
	}
	code = report_finish(&report, "saved");
out:
	free(paths);
	free(infos);
	return code;
}

static int save_all(const struct vssctl *ctx, struct vss_handle *h, const char *dir)
{
	struct vss_cbt_info *infos;
	struct state_report report;
	char file[PATH_MAX * 2];
	size_t count, i;
	int err;

	err = vss_cbt_list(h, &infos, &count);
	if (err)
		return vssctl_report(ctx, h, err, NULL, NULL);
	report_init(&report, ctx);
	/* What is left of an earlier boot must not reach the next one. */
	remove_stale_maps(&report, h, dir);
	for (i = 0; i < count; i++) {
		state_file_path(dir, &infos[i].device, file, sizeof(file));
		save_one(&report, h, NULL, &infos[i].device, file, true);
	}
	vss_cbt_info_array_free(infos);
	return report_finish(&report, "saved");
}

int vssctl_cbt_save(struct vssctl *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = VSSCTL_CBT_STATE_DIR;
	struct vss_handle *h = NULL;
	bool all = false;
	int opt, code, err, i;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":d:ajh", options, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (!*optarg)
				return vssctl_usage_error(ctx, "empty directory");
			dir = optarg;
			break;
		case 'a':
			all = true;
			break;
		case 'j':
			ctx->json = true;
			break;
		case 'h':
			save_usage(stdout);
			return VSSCTL_EXIT_OK;
		default:
			return vssctl_bad_option(ctx, argv, opt);
		}
	}
	if (!all && optind >= argc)
		return vssctl_usage_error(ctx, "say what to save: DEV... or --all");
	if (all && optind < argc)
		return vssctl_usage_error(ctx, "give either DEV... or --all");
	for (i = optind; i < argc; i++)
		if (!*argv[i])
			return vssctl_usage_error(ctx, "empty device name");

	code = vssctl_check_privilege(ctx);
	if (!code)
		code = vssctl_open(ctx, &h);
	if (code)
		return code;
	err = make_state_dir(dir);
	if (err) {
		vssctl_error("%s: cannot make the directory: %s", dir, vss_strerror(err));
		code = vssctl_exit_code(err);
	} else if (all) {
		code = save_all(ctx, h, dir);
	} else {
		code = save_devices(ctx, h, dir, argv + optind, argc - optind);
	}
	vss_close(h);
	return code;
}

static bool is_state_file_name(const char *name)
{
	size_t len = strlen(name), suffix = strlen(VSSCTL_CBT_SUFFIX);

	/* Dot files are save's temporary files. */
	return name[0] != '.' && len > suffix &&
	       !strcmp(name + len - suffix, VSSCTL_CBT_SUFFIX);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.cbt files of @dir, sorted; none if it does not exist. */
static int list_state_files(const char *dir, char ***out, size_t *count)
{
	char **names = NULL, path[PATH_MAX * 2];
	size_t n = 0, capacity = 0;
	struct dirent *e;
	DIR *d;

	*out = NULL;
	*count = 0;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		struct stat st;

		if (!is_state_file_name(e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		if (n == capacity) {
			char **grown;

			capacity = capacity ? 2 * capacity : 16;
			grown = realloc(names, capacity * sizeof(*names));
			if (!grown)
				break;
			names = grown;
		}
		names[n] = strdup(path);
		if (!names[n])
			break;
		n++;
	}
	closedir(d);
	if (e) {
		free_names(names, n);
		return -ENOMEM;
	}
	if (n)
		qsort(names, n, sizeof(*names), compare_names);
	*out = names;
	*count = n;
	return 0;
}

static void restore_one(struct state_report *r, struct vss_handle *h,
			const char *file, const char *device)
{
	struct json_object *entry = json_object_new_object();
	struct vss_cbt_point now, before;
	struct vss_cbt_restore_result res;
	char now_text[VSS_CBT_POINT_STRLEN], before_text[VSS_CBT_POINT_STRLEN];
	char generation[VSS_ID_STRLEN], reason[VSS_REASON_MAX];
	char device_text[VSS_PATH_MAX];
	int err;

	json_object_object_add(entry, "file", json_object_new_string(file));
	err = vss_cbt_restore(h, file, device, &res);
	if (err) {
		report_failure(r, h, err, file, "no such file", entry);
		return;
	}
	now = (struct vss_cbt_point){ res.info.generation, res.info.seq };
	before = (struct vss_cbt_point){ res.saved.generation, res.saved.seq };
	vss_cbt_point_format(&now, now_text);
	vss_cbt_point_format(&before, before_text);
	json_object_object_add(entry, "device", vssctl_json_device(&res.info.device));
	json_object_object_add(entry, "verdict",
			       json_object_new_string(vss_cbt_verdict_name(res.verdict)));
	json_object_object_add(entry, "reason", res.reason[0] ?
			       json_object_new_string(res.reason) : NULL);
	json_object_object_add(entry, "generation", vssctl_json_id(&res.info.generation));
	json_object_object_add(entry, "point", json_object_new_string(now_text));
	json_object_object_add(entry, "saved_point", json_object_new_string(before_text));
	json_object_array_add(r->done, entry);
	if (r->ctx->json)
		return;
	vssctl_sanitize(res.device_path, device_text, sizeof(device_text));
	vss_id_format(&res.info.generation, generation);
	if (res.verdict == VSS_CBT_VERDICT_CONTINUED) {
		printf("%s: %s: continued at point %s\n", file, device_text, now_text);
	} else {
		vssctl_sanitize(res.reason, reason, sizeof(reason));
		printf("%s: %s: new generation %s (saved point %s is lost): %s\n", file,
		       device_text, generation, before_text,
		       reason[0] ? reason : "no reason given");
	}
}

int vssctl_cbt_restore(struct vssctl *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "device", required_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = VSSCTL_CBT_STATE_DIR, *device = NULL;
	char device_buf[PATH_MAX], **files = NULL;
	struct state_report report;
	struct vss_handle *h = NULL;
	struct vss_device dev;
	bool dir_given = false;
	size_t count = 0, i;
	int opt, code, err;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":d:D:jh", options, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (!*optarg)
				return vssctl_usage_error(ctx, "empty directory");
			dir = optarg;
			dir_given = true;
			break;
		case 'D':
			if (!*optarg)
				return vssctl_usage_error(ctx, "empty device name");
			device = vssctl_device_path(optarg, device_buf, sizeof(device_buf));
			break;
		case 'j':
			ctx->json = true;
			break;
		case 'h':
			restore_usage(stdout);
			return VSSCTL_EXIT_OK;
		default:
			return vssctl_bad_option(ctx, argv, opt);
		}
	}
	if (device && argc - optind != 1)
		return vssctl_usage_error(ctx, "--device takes exactly one FILE");
	if (dir_given && optind < argc)
		return vssctl_usage_error(ctx, "give either FILE... or --dir");
	for (i = (size_t)optind; i < (size_t)argc; i++)
		if (!*argv[i])
			return vssctl_usage_error(ctx, "empty file name");

	code = vssctl_check_privilege(ctx);
	if (!code && device)
		code = vssctl_lookup_device(ctx, device, &dev);
	if (!code)
		code = vssctl_open(ctx, &h);
	if (code)
		return code;
	if (optind == argc) {
		err = list_state_files(dir, &files, &count);
		if (err) {
			vssctl_error("%s: cannot read the directory: %s", dir, vss_strerror(err));
			vss_close(h);
			return vssctl_exit_code(err);
		}
	}
	report_init(&report, ctx);
	if (optind == argc) {
		for (i = 0; i < count; i++)
			restore_one(&report, h, files[i], NULL);
		/* This is the restore early in the boot: what is left now stays
		 * unapplied while its device is written, so it must go. */
		remove_stale_maps(&report, h, dir);
	} else {
		for (i = (size_t)optind; i < (size_t)argc; i++)
			restore_one(&report, h, argv[i], device);
	}
	code = report_finish(&report, "restored");
	free_names(files, count);
	vss_close(h);
	return code;
}
