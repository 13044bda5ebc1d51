// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl cbt changes: the byte ranges of a device written between two
 * points (snapshots, or GENERATION:SEQ), or since one until now.
 *
 * The extents are printed as they stream in, never held in memory: a
 * large device may have millions. The JSON document is written by hand
 * for the same reason, in the shape json-c would give it.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cmd_cbt.h"
#include "output.h"

static void changes_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl cbt changes [--json] DEV --from SNAP|POINT [--to SNAP|POINT]\n"
		"\n"
		"Print the byte ranges of DEV written after the point FROM and up to the\n"
		"point TO (default: until now), with totals: what an incremental backup\n"
		"made from TO's snapshot must copy on top of FROM's.\n"
		"SNAP is a snapshot id of DEV or a unique prefix of one; POINT is\n"
		"GENERATION:SEQ as 'vssctl cbt info' and 'vssctl show' print it.\n"
		"\n"
		"Exit status 9 means the changes are unknown (a point of another\n"
		"generation, or older than the map reaches): take a full backup.\n"
		"\n"
		"Options:\n"
		"  -f, --from SNAP|POINT  the older point (required)\n"
		"  -t, --to SNAP|POINT    the newer point\n"
		"  -j, --json             print JSON\n"
		"  -h, --help             print this help\n");
}

struct changes_args {
	const char *device;
	const char *from;
	const char *to;
	char device_buf[PATH_MAX];
};

/* A point given as text: checked for form before anything else. */
static int check_point_text(const struct vssctl *ctx, const char *option,
			    const char *text)
{
	struct vss_cbt_point point;

	if (strchr(text, ':')) {
		if (vss_cbt_point_parse(text, &point))
			return vssctl_usage_error(ctx,
						  "invalid point '%s' for %s: give GENERATION:SEQ, "
						  "a full generation id and a decimal sequence number",
						  text, option);
		return 0;
	}
	if (vss_id_prefix_match(text, NULL, 0, NULL) == -EINVAL)
		return vssctl_usage_error(ctx,
					  "'%s' for %s is neither a snapshot id nor a point "
					  "(GENERATION:SEQ)", text, option);
	return 0;
}

static int parse_changes_args(struct vssctl *ctx, int argc, char **argv,
			      struct changes_args *args)
{
	static const struct option options[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, code;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":f:t:jh", options, NULL)) != -1) {
		switch (opt) {
		case 'f':
			args->from = optarg;
			break;
		case 't':
			args->to = optarg;
			break;
		case 'j':
			ctx->json = true;
			break;
		case 'h':
			changes_usage(stdout);
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
	if (!args->from)
		return vssctl_usage_error(ctx, "say where the changes start: --from SNAP|POINT");
	code = check_point_text(ctx, "--from", args->from);
	if (!code && args->to)
		code = check_point_text(ctx, "--to", args->to);
	if (code)
		return code;
	args->device = vssctl_device_path(argv[optind], args->device_buf,
					  sizeof(args->device_buf));
	return 0;
}

/* The point @text names: itself, or the point of a snapshot of @dev. */
static int resolve_point(const struct vssctl *ctx, struct vss_handle *h,
			 const char *device, const struct vss_device *dev,
			 const char *text, struct vss_cbt_point *out)
{
	struct vss_snapshot_info snap;
	char id_text[VSS_ID_STRLEN], origin[VSSCTL_DEVICE_TEXT_MAX];
	struct vss_id id;
	int err, code = VSSCTL_EXIT_OK;

	if (strchr(text, ':'))
		return vss_cbt_point_parse(text, out) ? VSSCTL_EXIT_USAGE : VSSCTL_EXIT_OK;
	err = vss_resolve_snapshot_id(h, text, &id);
	if (!err)
		err = vss_get_snapshot(h, &id, &snap);
	if (err)
		return vssctl_report(ctx, h, err, text, "no such snapshot");
	vss_id_format(&snap.id, id_text);
	vssctl_device_text(&snap.origin, origin, sizeof(origin));
	if (snap.origin.major != dev->major || snap.origin.minor != dev->minor)
		code = vssctl_usage_error(ctx, "snapshot %s is of %s (%u:%u), not of %s (%u:%u)",
					  id_text, origin, snap.origin.major,
					  snap.origin.minor, device, dev->major, dev->minor);
	else if (!snap.has_cbt_point) {
		vssctl_error("%s: the snapshot carries no changed-block point "
			     "(the module did not record one)", id_text);
		code = VSSCTL_EXIT_FAILURE;
	} else {
		*out = snap.cbt_point;
	}
	vss_snapshot_info_clear(&snap);
	return code;
}

/* What the extent printer needs, and what it has printed. */
struct printer {
	const struct vssctl *ctx;
	const struct vss_cbt_info *info;
	const struct vss_cbt_point *from;
	const struct vss_cbt_point *to;
	bool started;			/* the head is out */
	uint64_t count;
};

static void print_point_json(const struct vss_cbt_point *point)
{
	char text[VSS_CBT_POINT_STRLEN];

	if (!point) {
		fputs("null", stdout);
		return;
	}
	vss_cbt_point_format(point, text);
	printf("\"%s\"", text);
}

static void print_head(struct printer *p)
{
	const char *sep = p->ctx->pretty ? ": " : ":";
	const char *nl = p->ctx->pretty ? "\n  " : "";
	const char *comma = p->ctx->pretty ? ",\n  " : ",";
	char generation[VSS_ID_STRLEN];
	struct json_object *device;

	p->started = true;
	if (!p->ctx->json) {
		printf("%-20s  %s\n", "OFFSET", "LENGTH");
		return;
	}
	vss_id_format(&p->from->generation, generation);
	/* The module's view of the device: it knows its kernel name. */
	device = vssctl_json_device(&p->info->device);
	printf("{%s\"device\"%s", nl, sep);
	vssctl_json_print_nested(stdout, device, p->ctx->pretty, 2);
	json_object_put(device);
	printf("%s\"generation\"%s\"%s\"", comma, sep, generation);
	printf("%s\"block_size\"%s%u", comma, sep, p->info->block_size);
	printf("%s\"from\"%s", comma, sep);
	print_point_json(p->from);
	printf("%s\"to\"%s", comma, sep);
	print_point_json(p->to);
	printf("%s\"extents\"%s[", comma, sep);
}

static int print_extent(uint64_t offset, uint64_t length, void *arg)
{
	struct printer *p = arg;

	if (!p->started)
		print_head(p);
	if (!p->ctx->json)
		printf("%-20llu  %llu\n", (unsigned long long)offset,
		       (unsigned long long)length);
	else if (p->ctx->pretty)
		printf("%s\n    { \"offset\": %llu, \"length\": %llu }", p->count ? "," : "",
		       (unsigned long long)offset, (unsigned long long)length);
	else
		printf("%s{\"offset\":%llu,\"length\":%llu}", p->count ? "," : "",
		       (unsigned long long)offset, (unsigned long long)length);
	p->count++;
	/* A closed pipe or a full disk: no point in reading the rest. */
	return ferror(stdout) ? 1 : 0;
}

static void print_tail(struct printer *p, const struct vss_cbt_totals *totals)
{
	char from[VSS_CBT_POINT_STRLEN], to[VSS_CBT_POINT_STRLEN], human[16];
	char block[16];

	if (!p->started)
		print_head(p);
	if (p->ctx->json) {
		const char *sep = p->ctx->pretty ? ": " : ":";
		const char *comma = p->ctx->pretty ? ",\n  " : ",";

		if (p->ctx->pretty && p->count)
			printf("\n  ");
		printf("]%s\"extent_count\"%s%llu%s\"total_bytes\"%s%llu%s}\n", comma, sep,
		       (unsigned long long)totals->extents, comma, sep,
		       (unsigned long long)totals->bytes, p->ctx->pretty ? "\n" : "");
		return;
	}
	vss_cbt_point_format(p->from, from);
	if (p->to)
		vss_cbt_point_format(p->to, to);
	printf("%llu extent%s, %llu bytes (%s) changed from %s to %s; block size %s\n",
	       (unsigned long long)totals->extents, totals->extents == 1 ? "" : "s",
	       (unsigned long long)totals->bytes,
	       vss_format_size(totals->bytes, human, sizeof(human)), from,
	       p->to ? to : "now", vss_format_size(totals->block_size, block, sizeof(block)));
}

static int report_full_backup(const char *device, int err,
			      const struct vss_cbt_info *info,
			      const struct vss_cbt_point *from)
{
	char point[VSS_CBT_POINT_STRLEN], other[VSS_CBT_POINT_STRLEN];
	struct vss_cbt_point oldest = { info->generation, info->oldest_seq };
	char generation[VSS_ID_STRLEN];

	vss_cbt_point_format(from, point);
	if (err == -LIBVSS_ECBT_STALE) {
		vss_id_format(&info->generation, generation);
		vssctl_error("%s: point %s is of another generation than the device's "
			     "(now %s): take a full backup", device, point, generation);
	} else {
		vss_cbt_point_format(&oldest, other);
		vssctl_error("%s: the map reaches back to point %s only, not to %s: "
			     "take a full backup", device, other, point);
	}
	return VSSCTL_EXIT_FULL_BACKUP;
}

static int run_changes(const struct vssctl *ctx, struct vss_handle *h,
		       const struct changes_args *args, const struct vss_device *dev)
{
	struct vss_cbt_point from, to;
	struct vss_cbt_totals totals;
	struct vss_cbt_info info;
	struct printer p = { .ctx = ctx, .info = &info, .from = &from };
	int code, err;

	code = resolve_point(ctx, h, args->device, dev, args->from, &from);
	if (!code && args->to) {
		code = resolve_point(ctx, h, args->device, dev, args->to, &to);
		p.to = &to;
	}
	if (code)
		return code;
	if (p.to && !vss_id_equal(&from.generation, &to.generation)) {
		char a[VSS_CBT_POINT_STRLEN], b[VSS_CBT_POINT_STRLEN];

		vss_cbt_point_format(&from, a);
		vss_cbt_point_format(&to, b);
		vssctl_error("%s: points %s and %s are of different generations: the changes "
			     "between them are unknown; take a full backup", args->device, a, b);
		return VSSCTL_EXIT_FULL_BACKUP;
	}
	err = vss_cbt_get_info(h, args->device, &info);
	if (err)
		return vssctl_cbt_report(ctx, h, err, args->device);

	err = vss_cbt_changes(h, args->device, &from, p.to, print_extent, &p, &totals);
	if (err && p.started) {
		/* Whatever came out is incomplete; end its line at least. */
		putchar('\n');
		fflush(stdout);
	}
	if (err > 0) {
		vssctl_error("%s: write error", ctx->command);
		return VSSCTL_EXIT_FAILURE;
	}
	if (vss_cbt_needs_full_backup(err))
		return report_full_backup(args->device, err, &info, &from);
	if (err)
		return vssctl_cbt_report(ctx, h, err, args->device);
	print_tail(&p, &totals);
	return VSSCTL_EXIT_OK;
}

int vssctl_cbt_changes(struct vssctl *ctx, int argc, char **argv)
{
	struct changes_args args = { 0 };
	struct vss_handle *h = NULL;
	struct vss_device dev;
	int code;

	code = parse_changes_args(ctx, argc, argv, &args);
	if (code)
		return code < 0 ? VSSCTL_EXIT_OK : code;
	code = vssctl_check_privilege(ctx);
	if (!code)
		code = vssctl_lookup_device(ctx, args.device, &dev);
	if (!code)
		code = vssctl_open(ctx, &h);
	if (!code)
		code = run_changes(ctx, h, &args, &dev);
	vss_close(h);
	return code;
}
