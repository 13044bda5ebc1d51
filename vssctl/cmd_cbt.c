// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl cbt: changed-block tracking. This file hands over to the
 * subcommand and holds the small ones, info and mark-dirty; changes is in
 * cmd_cbt_changes.c, save and restore in cmd_cbt_state.c.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cmd_cbt.h"
#include "output.h"

static void cbt_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl cbt info [--json] [DEV]\n"
		"       vssctl cbt changes [--json] DEV --from SNAP|POINT [--to SNAP|POINT]\n"
		"       vssctl cbt mark-dirty [--json] DEV OFFSET LENGTH\n"
		"       vssctl cbt save [--json] [--dir DIR] DEV... | --all\n"
		"       vssctl cbt restore [--json] [--dir DIR] [--device DEV] [FILE...]\n"
		"\n"
		"Changed-block tracking: which blocks of a device were written between\n"
		"two of its snapshots, for incremental backups. A POINT is\n"
		"GENERATION:SEQ as 'cbt info' and 'show' print it. 'vssctl cbt COMMAND\n"
		"--help' tells more.\n");
}

static void info_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl cbt info [--json] [DEV]\n"
		"\n"
		"Show the tracking state of DEV, or of every tracked device: generation,\n"
		"block size, sequence (the current interval, also the newest point),\n"
		"oldest point still answered, tracked size, map memory, start time.\n");
}

static void mark_dirty_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl cbt mark-dirty [--json] DEV OFFSET LENGTH\n"
		"\n"
		"Report LENGTH bytes from OFFSET of DEV as changed (rounded out to whole\n"
		"blocks), so that the next incremental backup copies them again.\n"
		"OFFSET and LENGTH are bytes, or numbers with K, M, G, T (binary units).\n");
}

int vssctl_cbt_simple_options(struct vssctl *ctx, int argc, char **argv,
			      void (*usage)(FILE *))
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
	return 0;
}

int vssctl_cbt_report(const struct vssctl *ctx, const struct vss_handle *h,
		      int err, const char *device)
{
	return vssctl_report(ctx, h, err, device, "not tracked (see 'vssctl track')");
}

static int cbt_info(struct vssctl *ctx, int argc, char **argv)
{
	struct vss_cbt_info *infos = NULL, one;
	struct vss_handle *h = NULL;
	const char *device = NULL;
	char buf[PATH_MAX];
	size_t count = 0;
	int code, err;

	code = vssctl_cbt_simple_options(ctx, argc, argv, info_usage);
	if (code)
		return code < 0 ? VSSCTL_EXIT_OK : code;
	if (argc - optind > 1)
		return vssctl_usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
	if (optind < argc) {
		struct vss_device dev;

		device = vssctl_device_path(argv[optind], buf, sizeof(buf));
		code = vssctl_lookup_device(ctx, device, &dev);
		if (code)
			return code;
	}
	code = vssctl_open(ctx, &h);
	if (code)
		return code;
	if (device) {
		err = vss_cbt_get_info(h, device, &one);
		if (err)
			code = vssctl_cbt_report(ctx, h, err, device);
		else if (ctx->json)
			code = vssctl_json_print(ctx, vssctl_json_cbt_info(&one), stdout) ?
				VSSCTL_EXIT_FAILURE : VSSCTL_EXIT_OK;
		else
			vssctl_print_cbt_details(stdout, &one);
	} else {
		err = vss_cbt_list(h, &infos, &count);
		if (err)
			code = vssctl_report(ctx, h, err, NULL, NULL);
		else if (ctx->json)
			code = vssctl_json_print(ctx, vssctl_json_cbt_info_array(infos, count),
						 stdout) ? VSSCTL_EXIT_FAILURE : VSSCTL_EXIT_OK;
		else if (count && vssctl_print_cbt_table(stdout, infos, count))
			code = VSSCTL_EXIT_FAILURE;
		vss_cbt_info_array_free(infos);
	}
	vss_close(h);
	return code;
}

static int parse_byte_count(const struct vssctl *ctx, const char *what,
			    const char *text, uint64_t *out)
{
	if (vss_parse_size(text, out))
		return vssctl_usage_error(ctx,
					  "invalid %s '%s': give bytes, or a number with K, M, G, T, P or E",
					  what, text);
	return 0;
}

static int cbt_mark_dirty(struct vssctl *ctx, int argc, char **argv)
{
	struct vss_handle *h = NULL;
	struct vss_device dev;
	uint64_t offset, length;
	char buf[PATH_MAX], size_text[16], offset_text[16];
	const char *device;
	int code, err;

	code = vssctl_cbt_simple_options(ctx, argc, argv, mark_dirty_usage);
	if (code)
		return code < 0 ? VSSCTL_EXIT_OK : code;
	if (argc - optind < 3)
		return vssctl_usage_error(ctx, "give DEV, OFFSET and LENGTH");
	if (argc - optind > 3)
		return vssctl_usage_error(ctx, "unexpected argument '%s'", argv[optind + 3]);
	if (!*argv[optind])
		return vssctl_usage_error(ctx, "empty device name");
	code = parse_byte_count(ctx, "offset", argv[optind + 1], &offset);
	if (!code)
		code = parse_byte_count(ctx, "length", argv[optind + 2], &length);
	if (code)
		return code;
	if (!length)
		return vssctl_usage_error(ctx, "the length must not be zero");
	if (offset > UINT64_MAX - length)
		return vssctl_usage_error(ctx, "offset plus length is past any device's end");
	device = vssctl_device_path(argv[optind], buf, sizeof(buf));

	code = vssctl_check_privilege(ctx);
	if (!code)
		code = vssctl_lookup_device(ctx, device, &dev);
	if (!code)
		code = vssctl_open(ctx, &h);
	if (code)
		goto out;
	err = vss_cbt_mark_dirty(h, device, offset, length);
	if (err) {
		code = vssctl_cbt_report(ctx, h, err, device);
		goto out;
	}
	if (ctx->json) {
		struct json_object *obj = json_object_new_object();

		json_object_object_add(obj, "device", vssctl_json_device(&dev));
		json_object_object_add(obj, "offset", json_object_new_uint64(offset));
		json_object_object_add(obj, "length", json_object_new_uint64(length));
		if (vssctl_json_print(ctx, obj, stdout))
			code = VSSCTL_EXIT_FAILURE;
	} else {
		printf("marked %s at offset %s of %s as changed\n",
		       vss_format_size(length, size_text, sizeof(size_text)),
		       vss_format_size(offset, offset_text, sizeof(offset_text)), device);
	}
out:
	vss_close(h);
	return code;
}

struct subcommand {
	const char *name;
	int (*run)(struct vssctl *ctx, int argc, char **argv);
	const char *label;	/* ctx->command while it runs */
};

static const struct subcommand subcommands[] = {
	{ "info", cbt_info, "cbt info" },
	{ "changes", vssctl_cbt_changes, "cbt changes" },
	{ "mark-dirty", cbt_mark_dirty, "cbt mark-dirty" },
	{ "save", vssctl_cbt_save, "cbt save" },
	{ "restore", vssctl_cbt_restore, "cbt restore" },
};

int cmd_cbt(struct vssctl *ctx, int argc, char **argv)
{
	size_t i;

	if (argc < 2)
		return vssctl_usage_error(ctx, "say what to do: info, changes, mark-dirty, "
					  "save or restore");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		cbt_usage(stdout);
		return VSSCTL_EXIT_OK;
	}
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (strcmp(argv[1], subcommands[i].name))
			continue;
		ctx->command = subcommands[i].label;
		return subcommands[i].run(ctx, argc - 1, argv + 1);
	}
	return vssctl_usage_error(ctx, "unknown subcommand '%s': info, changes, mark-dirty, "
				  "save or restore", argv[1]);
}
