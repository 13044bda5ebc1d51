// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl list and vssctl show: what snapshots exist.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

static void list_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl list [--json] [DEV]\n"
		"\n"
		"List every snapshot, or those of the origin device DEV.\n");
}

static void show_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl show [--json] ID\n"
		"\n"
		"Show every field of one snapshot. ID is its id or any unique prefix\n"
		"of it, with or without dashes.\n");
}

/* Both commands take only --json and --help. */
static int parse_simple_options(struct vssctl *ctx, int argc, char **argv,
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

int cmd_list(struct vssctl *ctx, int argc, char **argv)
{
	struct vss_snapshot_info *snaps = NULL;
	struct vss_handle *h = NULL;
	const char *device = NULL;
	char buf[PATH_MAX];
	size_t count = 0;
	int code, err;

	code = parse_simple_options(ctx, argc, argv, list_usage);
	if (code)
		return code < 0 ? VSSCTL_EXIT_OK : code;
	if (argc - optind > 1)
		return vssctl_usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
	if (optind < argc)
		device = vssctl_device_path(argv[optind], buf, sizeof(buf));

	code = vssctl_open(ctx, &h);
	if (code)
		return code;
	err = vss_list_snapshots(h, device, &snaps, &count);
	if (err) {
		code = vssctl_report(ctx, h, err, device, "no snapshot of this device");
	} else if (ctx->json) {
		if (vssctl_json_print(ctx, vssctl_json_snapshot_array(snaps, count), stdout))
			code = VSSCTL_EXIT_FAILURE;
	} else if (count) {
		if (vssctl_print_snapshot_table(stdout, snaps, count))
			code = VSSCTL_EXIT_FAILURE;
	}
	vss_snapshot_info_array_free(snaps, count);
	vss_close(h);
	return code;
}

bool vssctl_names_a_set(struct vss_handle *h, const char *text)
{
	struct vss_snapshot_info *snaps;
	struct vss_id *set_ids;
	size_t count, i, found;
	bool named = false;

	if (vss_list_snapshots(h, NULL, &snaps, &count))
		return false;
	set_ids = calloc(count ? count : 1, sizeof(*set_ids));
	if (set_ids) {
		for (i = 0; i < count; i++)
			set_ids[i] = snaps[i].set_id;
		named = vss_id_prefix_match(text, set_ids, count, &found) == 0;
		free(set_ids);
	}
	vss_snapshot_info_array_free(snaps, count);
	return named;
}

/*
 * A snapshot id that turns out to be a set id is a common slip: say so
 * rather than only "no such snapshot".
 */
static int report_unknown_snapshot(struct vss_handle *h, const char *text)
{
	if (vssctl_names_a_set(h, text))
		vssctl_error("%s: no such snapshot (that is a snapshot set id; see 'vssctl list')",
			     text);
	else
		vssctl_error("%s: no such snapshot", text);
	return VSSCTL_EXIT_NOT_FOUND;
}

int cmd_show(struct vssctl *ctx, int argc, char **argv)
{
	struct vss_snapshot_info snap = { 0 };
	struct vss_handle *h = NULL;
	struct vss_id id;
	const char *text;
	int code, err;

	code = parse_simple_options(ctx, argc, argv, show_usage);
	if (code)
		return code < 0 ? VSSCTL_EXIT_OK : code;
	if (optind >= argc)
		return vssctl_usage_error(ctx, "no snapshot id given");
	if (argc - optind > 1)
		return vssctl_usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
	text = argv[optind];
	if (vss_id_prefix_match(text, NULL, 0, NULL) == -EINVAL)
		return vssctl_usage_error(ctx, "'%s' is not a snapshot id", text);

	code = vssctl_open(ctx, &h);
	if (code)
		return code;
	err = vss_resolve_snapshot_id(h, text, &id);
	if (!err)
		err = vss_get_snapshot(h, &id, &snap);
	if (err == -ENOENT)
		code = report_unknown_snapshot(h, text);
	else if (err)
		code = vssctl_report(ctx, h, err, text, "no such snapshot");
	else if (ctx->json)
		code = vssctl_json_print(ctx, vssctl_json_snapshot(&snap), stdout) ?
			VSSCTL_EXIT_FAILURE : VSSCTL_EXIT_OK;
	else
		vssctl_print_snapshot_details(stdout, &snap);
	vss_snapshot_info_clear(&snap);
	vss_close(h);
	return code;
}
