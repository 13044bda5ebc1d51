// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl create: snapshot one or more devices at one instant.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "output.h"
#include "writers_output.h"

static void create_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl create [OPTIONS] DEV...\n"
		"\n"
		"Snapshot every DEV at the same instant, as one snapshot set.\n"
		"DEV is a block device path; a bare name such as vdb means /dev/vdb.\n"
		"\n"
		"Options:\n"
		"  -s, --storage PATH         diff storage: block device, file or directory\n"
		"                             (default: " VSSCTL_DEFAULT_STORAGE_DIR
		", else " VSSCTL_FALLBACK_STORAGE_DIR ", if not on a DEV;\n"
		"                             else " VSSCTL_DEFAULT_STORAGE_DIR
		" on its DEV, if ext4 or XFS)\n"
		"  -l, --storage-limit SIZE|N%%  how much storage may be used (default for\n"
		"                             a directory: %d%% of its free space)\n"
		"  -c, --chunk-size SIZE      copy unit, a power of two from 4K to 1M (64K)\n"
		"  -L, --label TEXT           label of the snapshots (up to %d bytes)\n"
		"  -n, --no-freeze            do not freeze mounted filesystems\n"
		"                             (crash-consistent images)\n"
		"  -t, --hold-limit MS        longest freeze and write hold, 1..%d (%d)\n"
		"      --no-writers           do not go through vsswriterd: no application\n"
		"                             is asked (filesystems are still frozen)\n"
		"  -w, --writer-volumes       add every device the writers' components\n"
		"                             live on (then DEV may be left out)\n"
		"  -q, --queue-timeout SEC    wait up to SEC for another requester's set\n"
		"                             (default 60; 0 does not wait)\n"
		"  -j, --json                 print JSON\n"
		"  -h, --help                 print this help\n"
		"\n"
		"SIZE is bytes, or a number with K, M, G, T (KiB, MiB, ...: binary units).\n"
		"\n"
		"When vsswriterd runs, the set goes through it: every writer (application)\n"
		"whose data is on the set is frozen around the commit, and the set then\n"
		"waits for `vssctl backup-complete SET` or `vssctl abort SET`.\n",
		VSSCTL_DEFAULT_LIMIT_PERCENT, VSS_LABEL_MAX - 1, VSS_MAX_HOLD_LIMIT_MS,
		VSS_DEFAULT_HOLD_LIMIT_MS);
}

void vssctl_free_device_paths(char **paths, size_t count)
{
	size_t i;

	for (i = 0; paths && i < count; i++)
		free(paths[i]);
	free(paths);
}

static int parse_hold_limit(const char *text, uint32_t *out)
{
	uint64_t ms;

	/* Plain decimal milliseconds: reuse the size reader without units. */
	if (!text || !*text || text[strspn(text, "0123456789")] != '\0' ||
	    vss_parse_size(text, &ms) || ms < 1 || ms > VSS_MAX_HOLD_LIMIT_MS)
		return -EINVAL;
	*out = (uint32_t)ms;
	return 0;
}

const struct option vssctl_create_options[VSSCTL_CREATE_OPTION_COUNT + 1] = {
	{ "storage", required_argument, NULL, 's' },
	{ "storage-limit", required_argument, NULL, 'l' },
	{ "chunk-size", required_argument, NULL, 'c' },
	{ "label", required_argument, NULL, 'L' },
	{ "no-freeze", no_argument, NULL, 'n' },
	{ "hold-limit", required_argument, NULL, 't' },
	{ "no-writers", no_argument, NULL, 'N' },
	{ "writer-volumes", no_argument, NULL, 'w' },
	{ "queue-timeout", required_argument, NULL, 'q' },
	{ NULL, 0, NULL, 0 },
};

int vssctl_create_option(struct vssctl *ctx, int opt, const char *optarg,
			 struct create_args *args)
{
	uint64_t chunk, secs;
	size_t i;

	switch (opt) {
	case 's':
		if (!*optarg)
			return vssctl_usage_error(ctx, "empty storage path");
		args->storage = optarg;
		break;
	case 'l':
		if (vssctl_parse_limit(optarg, &args->limit))
			return vssctl_usage_error(ctx,
				"invalid storage limit '%s': give a size such as 10G or a share such as 20%%",
				optarg);
		break;
	case 'c':
		if (vss_parse_size(optarg, &chunk) || chunk < VSS_MIN_CHUNK_SIZE ||
		    chunk > VSS_MAX_CHUNK_SIZE || (chunk & (chunk - 1)))
			return vssctl_usage_error(ctx,
				"invalid chunk size '%s': a power of two from 4K to 1M",
				optarg);
		args->chunk_size = (uint32_t)chunk;
		break;
	case 'L':
		if (strlen(optarg) >= VSS_LABEL_MAX)
			return vssctl_usage_error(ctx, "label longer than %d bytes",
						  VSS_LABEL_MAX - 1);
		for (i = 0; optarg[i]; i++)
			if ((unsigned char)optarg[i] < 0x20 || optarg[i] == 0x7f)
				return vssctl_usage_error(ctx,
					"label contains control characters");
		args->label = optarg;
		break;
	case 'n':
		args->flags |= VSS_CREATE_NO_FREEZE;
		break;
	case 't':
		if (parse_hold_limit(optarg, &args->hold_limit_ms))
			return vssctl_usage_error(ctx,
				"invalid hold limit '%s': milliseconds from 1 to %d",
				optarg, VSS_MAX_HOLD_LIMIT_MS);
		break;
	case 'N':
		args->no_writers = true;
		break;
	case 'w':
		args->writer_volumes = true;
		break;
	case 'q':
		if (!*optarg || optarg[strspn(optarg, "0123456789")] != '\0' ||
		    vss_parse_size(optarg, &secs) || secs > 24 * 3600)
			return vssctl_usage_error(ctx,
				"invalid queue timeout '%s': seconds from 0 to 86400", optarg);
		args->queue_timeout_ms = secs ? (uint32_t)(secs * 1000) : VSS_SESSION_NO_WAIT;
		args->queue_timeout_given = true;
		break;
	default:
		return -ENOENT;
	}
	return 0;
}

int vssctl_create_devices(struct vssctl *ctx, int argc, char **argv, int optind,
			  struct create_args *args)
{
	size_t i;

	if (args->writer_volumes && args->no_writers)
		return vssctl_usage_error(ctx, "--writer-volumes needs the writers: not with --no-writers");
	if ((size_t)(argc - optind) > VSS_MAX_SET_DEVICES)
		return vssctl_usage_error(ctx, "%d devices given, a set holds at most %d",
					  argc - optind, VSS_MAX_SET_DEVICES);
	args->device_count = (size_t)(argc - optind);
	args->devices = calloc(args->device_count ? args->device_count : 1, sizeof(*args->devices));
	if (!args->devices) {
		vssctl_error("%s: out of memory", ctx->command);
		return VSSCTL_EXIT_FAILURE;
	}
	for (i = 0; i < args->device_count; i++) {
		char buf[PATH_MAX];

		args->devices[i] = strdup(vssctl_device_path(argv[optind + (int)i],
							     buf, sizeof(buf)));
		if (!args->devices[i]) {
			vssctl_error("%s: out of memory", ctx->command);
			return VSSCTL_EXIT_FAILURE;
		}
	}
	return 0;
}

static int parse_create_args(struct vssctl *ctx, int argc, char **argv,
			     struct create_args *args)
{
	struct option options[VSSCTL_CREATE_OPTION_COUNT + 3];
	int opt, code;

	memcpy(options, vssctl_create_options, sizeof(vssctl_create_options));
	options[VSSCTL_CREATE_OPTION_COUNT] = (struct option){ "json", no_argument, NULL, 'j' };
	options[VSSCTL_CREATE_OPTION_COUNT + 1] = (struct option){ "help", no_argument, NULL, 'h' };
	options[VSSCTL_CREATE_OPTION_COUNT + 2] = (struct option){ NULL, 0, NULL, 0 };
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":" VSSCTL_CREATE_SHORT_OPTIONS "jh",
				  options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			ctx->json = true;
			break;
		case 'h':
			create_usage(stdout);
			return -1;
		default:
			code = vssctl_create_option(ctx, opt, optarg, args);
			if (code == -ENOENT)
				return vssctl_bad_option(ctx, argv, opt);
			if (code)
				return code;
		}
	}
	if (optind >= argc && !args->writer_volumes)
		return vssctl_usage_error(ctx, "no device given");
	return vssctl_create_devices(ctx, argc, argv, optind, args);
}

/* Looks every device up before anything is asked of the kernel. */
int vssctl_check_devices(const struct vssctl *ctx, const struct create_args *args,
			 struct vss_device *devices)
{
	size_t i, j;

	for (i = 0; i < args->device_count; i++) {
		int err = vss_device_lookup(args->devices[i], &devices[i]);

		if (err == -ENOTBLK) {
			vssctl_error("%s: not a block device", args->devices[i]);
			return VSSCTL_EXIT_USAGE;
		}
		if (err)
			return vssctl_report(ctx, NULL, err, args->devices[i],
					     "no such device");
		for (j = 0; j < i; j++)
			if (devices[j].major == devices[i].major &&
			    devices[j].minor == devices[i].minor) {
				vssctl_error("%s: device is listed twice (also as %s)",
					     args->devices[i], args->devices[j]);
				return VSSCTL_EXIT_USAGE;
			}
	}
	return 0;
}

/*
 * Fills @path and @limit when --storage was not given, or completes the
 * limit of a given one. Says on stderr what it chose, since the user did
 * not.
 */
int vssctl_choose_storage(const struct vssctl *ctx, struct vss_handle *h,
			  const struct create_args *args,
			  const struct vss_device *devices, size_t device_count,
			  char *path, size_t path_len, uint64_t *limit)
{
	char limit_text[16], why[1024], on_device[64] = "";
	struct vss_snapshot_info *snaps = NULL;
	struct vss_device *avoid;
	size_t count = 0, i;
	struct stat st;
	bool is_dir, defaulted_limit = false;
	int err;

	if (args->storage) {
		snprintf(path, path_len, "%s", args->storage);
		is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
		/* The kernel makes such a directory a same-volume store. */
		if (!is_dir || !vssctl_can_hold_same_volume_store(path) ||
		    !vssctl_dir_on_devices(path, devices, device_count, on_device,
					   sizeof(on_device)))
			on_device[0] = '\0';
	} else {
		err = vss_list_snapshots(h, NULL, &snaps, &count);
		if (err)
			return vssctl_report(ctx, h, err, NULL, NULL);
		avoid = calloc(device_count + count + 1, sizeof(*avoid));
		if (!avoid) {
			vss_snapshot_info_array_free(snaps, count);
			vssctl_error("%s: out of memory", ctx->command);
			return VSSCTL_EXIT_FAILURE;
		}
		memcpy(avoid, devices, device_count * sizeof(*avoid));
		for (i = 0; i < count; i++)
			avoid[device_count + i] = snaps[i].origin;
		err = vssctl_pick_storage(avoid, device_count + count, path,
					  path_len, on_device, sizeof(on_device),
					  why, sizeof(why));
		free(avoid);
		vss_snapshot_info_array_free(snaps, count);
		if (err) {
			vssctl_error("%s: no storage directory off the snapshotted devices, "
				     "nor one on ext4 or XFS on them (%s); "
				     "give one with --storage", ctx->command, why);
			return VSSCTL_EXIT_STORAGE;
		}
		is_dir = true;
	}

	*limit = 0;
	if (args->limit.given) {
		err = vssctl_resolve_limit(path, &args->limit, limit);
		if (err)
			return vssctl_report(ctx, NULL, err, path, "no such file or directory");
	} else if (is_dir) {
		/* The kernel needs a limit for a directory; files and devices
		 * have a size of their own to default to. */
		struct vssctl_limit share = {
			.given = true, .percent = true,
			.pct = VSSCTL_DEFAULT_LIMIT_PERCENT,
		};

		err = vssctl_resolve_limit(path, &share, limit);
		if (err)
			return vssctl_report(ctx, NULL, err, path, "no such file or directory");
		defaulted_limit = true;
	}
	if ((args->limit.given || is_dir) && *limit == 0) {
		vssctl_error("%s: no free space for the storage", path);
		return VSSCTL_EXIT_STORAGE;
	}

	vss_format_size(*limit, limit_text, sizeof(limit_text));
	if (on_device[0])
		vssctl_error("storage directory %s is on %s, a snapshotted device: "
			     "a same-volume store (pinned files in %s/.vss-store)",
			     path, on_device, path);
	if (!args->storage && defaulted_limit)
		vssctl_error("using storage directory %s (limit %s: %d%% of its filesystem's free space)",
			     path, limit_text, VSSCTL_DEFAULT_LIMIT_PERCENT);
	else if (!args->storage)
		vssctl_error("using storage directory %s (limit %s)", path, limit_text);
	else if (defaulted_limit)
		vssctl_error("using storage limit %s (%d%% of the free space of %s's filesystem)",
			     limit_text, VSSCTL_DEFAULT_LIMIT_PERCENT, path);
	return 0;
}

static int print_created(const struct vssctl *ctx, const struct vss_create_result *set,
			 struct vss_session *session, bool writers_asked)
{
	const struct vss_writer_result *results = NULL;
	struct vss_session_timing timing;
	char set_id[VSS_ID_STRLEN];
	size_t n = 0;
	int err;

	if (session)
		vss_session_results(session, &results, &n);
	if (ctx->json) {
		struct json_object *obj = json_object_new_object();

		json_object_object_add(obj, "set_id", vssctl_json_id(&set->set_id));
		json_object_object_add(obj, "hold_us", json_object_new_uint64(set->hold_us));
		json_object_object_add(obj, "snapshots",
				       vssctl_json_snapshot_array(set->snapshots,
								  set->snapshot_count));
		json_object_object_add(obj, "writers_asked", json_object_new_boolean(writers_asked));
		json_object_object_add(obj, "writers", session ?
				       vssctl_json_writer_results(results, n) : NULL);
		if (session && vss_session_timing(session, &timing) == 0) {
			struct json_object *t = json_object_new_object();

			json_object_object_add(t, "request_to_commit_us",
					       json_object_new_uint64(timing.request_to_commit_us));
			json_object_object_add(t, "frozen_us", json_object_new_uint64(timing.frozen_us));
			json_object_object_add(t, "commit_us", json_object_new_uint64(timing.commit_us));
			json_object_object_add(t, "total_us", json_object_new_uint64(timing.total_us));
			json_object_object_add(obj, "timing", t);
		}
		return vssctl_json_print(ctx, obj, stdout);
	}
	vss_id_format(&set->set_id, set_id);
	printf("set %s: %zu snapshot%s, writes held %llu us\n", set_id,
	       set->snapshot_count, set->snapshot_count == 1 ? "" : "s",
	       (unsigned long long)set->hold_us);
	err = vssctl_print_snapshot_table(stdout, set->snapshots, set->snapshot_count);
	if (session) {
		vssctl_print_writer_results(stdout, results, n);
		printf("the set waits for `vssctl backup-complete %.8s` (or `vssctl abort %.8s`)\n",
		       set_id, set_id);
	}
	return err;
}

int vssctl_session_set(const struct vssctl *ctx, const struct create_args *args,
		       struct vss_session *s, struct vss_handle *h,
		       const struct vss_device *devices, struct vss_create_params *params,
		       char *storage, size_t storage_len, struct vss_create_result *set)
{
	struct vss_writer_info *writers = NULL;
	struct vss_device avoid[VSS_MAX_SET_DEVICES * 2];
	const struct vss_writer_result *results;
	size_t n = 0, count = args->device_count, i, j, k, rn;
	int code, err;

	err = vss_session_gather(s, &writers, &n);
	if (err)
		return vssctl_session_report(ctx, s, err, NULL);
	memcpy(avoid, devices, count * sizeof(*avoid));
	for (i = 0; args->writer_volumes && i < n; i++)
		for (j = 0; j < writers[i].component_count; j++)
			for (k = 0; k < writers[i].components[j].volume_count &&
			     count < VSS_MAX_SET_DEVICES * 2; k++)
				avoid[count++] = writers[i].components[j].volumes[k];
	vss_writer_info_array_free(writers, n);
	code = vssctl_choose_storage(ctx, h, args, avoid, count, storage, storage_len,
			      &params->storage_limit);
	if (code)
		return code;
	for (i = 0; i < args->device_count; i++) {
		err = vss_session_add_volume(s, args->devices[i]);
		if (err)
			return vssctl_session_report(ctx, s, err, args->devices[i]);
	}
	if (args->writer_volumes)
		vss_session_add_writer_volumes(s);
	err = vss_session_prepare(s);
	if (!err)
		err = vss_session_create(s, params, set);
	if (err) {
		code = vssctl_session_report(ctx, s, err, NULL);
		vss_session_results(s, &results, &rn);
		if (rn && !ctx->json)
			vssctl_print_writer_results(stderr, results, rn);
		return code;
	}
	return 0;
}

/* The set through vsswriterd: gather, volumes, prepare, create, detach. */
static int create_with_writers(const struct vssctl *ctx, const struct create_args *args,
			       struct vss_session *s, struct vss_handle *h,
			       struct vss_device *devices, struct vss_create_params *params,
			       char *storage, size_t storage_len)
{
	struct vss_create_result set;
	int code, err;

	code = vssctl_session_set(ctx, args, s, h, devices, params, storage, storage_len,
				  &set);
	if (code)
		return code;
	/* The set outlives this command: it waits for backup-complete. */
	err = vss_session_detach(s);
	if (err) {
		vss_create_result_free(&set);
		return vssctl_session_report(ctx, s, err, NULL);
	}
	code = print_created(ctx, &set, s, true) ? VSSCTL_EXIT_FAILURE : VSSCTL_EXIT_OK;
	vss_create_result_free(&set);
	return code;
}

int cmd_create(struct vssctl *ctx, int argc, char **argv)
{
	struct create_args args = { 0 };
	struct vss_device devices[VSS_MAX_SET_DEVICES];
	struct vss_create_params params = { 0 };
	struct vss_session_params sp = { 0 };
	struct vss_create_result set;
	struct vss_session *session = NULL;
	struct vss_handle *h = NULL;
	char storage[PATH_MAX];
	int code, err;

	code = parse_create_args(ctx, argc, argv, &args);
	if (code) {
		vssctl_free_device_paths(args.devices, args.device_count);
		return code < 0 ? VSSCTL_EXIT_OK : code;
	}
	if (!args.no_writers) {
		sp.queue_timeout_ms = args.queue_timeout_ms;
		code = vssctl_writerd_open(ctx, &session, &sp, true);
		if (code == VSSCTL_EXIT_NO_WRITERD) {
			if (args.writer_volumes) {
				vssctl_error("%s: --writer-volumes: vsswriterd is not running",
					     ctx->command);
				goto out;
			}
			vssctl_error("vsswriterd is not running: no writers were asked "
				     "(mounted filesystems are still frozen around the commit)");
			code = VSSCTL_EXIT_OK;
		}
		if (code)
			goto out;
	}
	/* Through vsswriterd, the daemon judges who may take a set. */
	if (!session)
		code = vssctl_check_privilege(ctx);
	if (!code)
		code = vssctl_check_devices(ctx, &args, devices);
	if (!code)
		code = vssctl_open(ctx, &h);
	if (code)
		goto out;

	params.devices = (const char *const *)args.devices;
	params.device_count = args.device_count;
	params.storage_path = storage;
	params.chunk_size = args.chunk_size;
	params.label = args.label;
	params.flags = args.flags;
	params.hold_limit_ms = args.hold_limit_ms;
	if (session) {
		code = create_with_writers(ctx, &args, session, h, devices, &params, storage,
					   sizeof(storage));
		goto out;
	}
	code = vssctl_choose_storage(ctx, h, &args, devices, args.device_count, storage,
			      sizeof(storage), &params.storage_limit);
	if (code)
		goto out;
	err = vss_create_set(h, &params, &set);
	if (err) {
		char object[PATH_MAX + 16];

		/* The module blames no attribute for these, but they are
		 * always about the storage. */
		snprintf(object, sizeof(object), "storage %s", storage);
		code = vssctl_report(ctx, h, err,
				     err == -EXDEV || err == -ENOSPC ? object : NULL,
				     "no such device");
		goto out;
	}
	if (print_created(ctx, &set, NULL, false))
		code = VSSCTL_EXIT_FAILURE;
	vss_create_result_free(&set);
out:
	vss_session_close(session);
	vss_close(h);
	vssctl_free_device_paths(args.devices, args.device_count);
	return code;
}
