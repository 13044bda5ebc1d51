// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl track and vssctl untrack: start and stop changed-block tracking
 * of a device.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "output.h"

static void track_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl track [--json] DEV\n"
		"\n"
		"Start tracking which blocks of DEV are written, under a new generation,\n"
		"for incremental backups (see 'vssctl cbt'). A device is also tracked\n"
		"from its first snapshot on. Exit status 10 if it is tracked already.\n");
}

static void untrack_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl untrack [--json] DEV\n"
		"\n"
		"Stop tracking DEV and forget its map: points of its generation are\n"
		"never answered again, so the next backup of DEV must be a full one.\n"
		"Its snapshots stay.\n");
}

/*
 * Both take --json, --help and one device. Returns -1 after --help, an
 * exit code on error, 0 with *device set.
 */
static int parse_device_command(struct vssctl *ctx, int argc, char **argv,
				void (*usage)(FILE *), char *buf, size_t len,
				const char **device)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":jh", options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			ctx->json = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			return vssctl_bad_option(ctx, argv, opt);
		}
	}
	if (optind >= argc)
		return vssctl_usage_error(ctx, "no device given");
	if (argc - optind > 1)
		return vssctl_usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
	if (!*argv[optind])
		return vssctl_usage_error(ctx, "empty device name");
	*device = vssctl_device_path(argv[optind], buf, len);
	return 0;
}

/* Privilege, the device, the module: in that order, as for every change. */
static int prepare(const struct vssctl *ctx, const char *device,
		   struct vss_device *dev, struct vss_handle **h)
{
	int code = vssctl_check_privilege(ctx);

	if (!code)
		code = vssctl_lookup_device(ctx, device, dev);
	if (!code)
		code = vssctl_open(ctx, h);
	return code;
}

int cmd_track(struct vssctl *ctx, int argc, char **argv)
{
	struct vss_handle *h = NULL;
	struct vss_cbt_info info;
	struct vss_device dev;
	char buf[PATH_MAX], generation[VSS_ID_STRLEN], block[16];
	const char *device;
	int code, err;

	code = parse_device_command(ctx, argc, argv, track_usage, buf, sizeof(buf),
				    &device);
	if (code)
		return code < 0 ? VSSCTL_EXIT_OK : code;
	code = prepare(ctx, device, &dev, &h);
	if (code)
		goto out;
	err = vss_track(h, device, &info);
	if (err) {
		code = vssctl_report(ctx, h, err, device, "no such device");
		goto out;
	}
	if (ctx->json) {
		if (vssctl_json_print(ctx, vssctl_json_cbt_info(&info), stdout))
			code = VSSCTL_EXIT_FAILURE;
	} else {
		vss_id_format(&info.generation, generation);
		printf("tracking %s: generation %s, block size %s\n", device, generation,
		       vss_format_size(info.block_size, block, sizeof(block)));
	}
out:
	vss_close(h);
	return code;
}

int cmd_untrack(struct vssctl *ctx, int argc, char **argv)
{
	struct vss_handle *h = NULL;
	struct vss_device dev;
	char buf[PATH_MAX];
	const char *device;
	int code, err;

	code = parse_device_command(ctx, argc, argv, untrack_usage, buf, sizeof(buf),
				    &device);
	if (code)
		return code < 0 ? VSSCTL_EXIT_OK : code;
	code = prepare(ctx, device, &dev, &h);
	if (code)
		goto out;
	err = vss_untrack(h, device);
	if (err) {
		code = vssctl_report(ctx, h, err, device,
				     "not tracked (see 'vssctl cbt info')");
		goto out;
	}
	if (ctx->json) {
		struct json_object *obj = json_object_new_object();

		json_object_object_add(obj, "device", vssctl_json_device(&dev));
		json_object_object_add(obj, "tracked", json_object_new_boolean(false));
		if (vssctl_json_print(ctx, obj, stdout))
			code = VSSCTL_EXIT_FAILURE;
	} else {
		printf("stopped tracking %s; its map is forgotten\n", device);
	}
out:
	vss_close(h);
	return code;
}
