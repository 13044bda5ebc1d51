// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl delete: release snapshots, by id, by set, the oldest of a
 * device, or all of them.
 *
 * Ids are all resolved before anything is deleted, so a typo in the third
 * id of a command line deletes nothing.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

static void delete_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl delete [--force] [--json] ID...\n"
		"       vssctl delete [--force] [--json] --set SETID\n"
		"       vssctl delete [--force] [--json] --oldest DEV\n"
		"       vssctl delete [--force] [--json] --all\n"
		"\n"
		"Delete snapshots. IDs are snapshot ids or unique prefixes of them.\n"
		"\n"
		"Options:\n"
		"  -s, --set SETID    every snapshot of one set\n"
		"  -o, --oldest DEV   the oldest snapshot of the origin device DEV\n"
		"  -a, --all          every snapshot\n"
		"  -f, --force        delete images that are open too; their openers\n"
		"                     then get I/O errors\n"
		"  -j, --json         print JSON\n"
		"  -h, --help         print this help\n");
}

/* What was deleted and what was not, for the final output. */
struct delete_report {
	const struct vssctl *ctx;
	struct json_object *deleted;
	struct json_object *failed;
	int first_code;
};

static void report_init(struct delete_report *r, const struct vssctl *ctx)
{
	memset(r, 0, sizeof(*r));
	r->ctx = ctx;
	r->deleted = json_object_new_array();
	r->failed = json_object_new_array();
}

static void report_deleted(struct delete_report *r, const struct vss_snapshot_info *s)
{
	char id[VSS_ID_STRLEN], image[VSSCTL_DEVICE_TEXT_MAX];
	char origin[VSSCTL_DEVICE_TEXT_MAX];

	if (r->ctx->json) {
		json_object_array_add(r->deleted, vssctl_json_snapshot(s));
		return;
	}
	vss_id_format(&s->id, id);
	vssctl_device_text(&s->image, image, sizeof(image));
	vssctl_device_text(&s->origin, origin, sizeof(origin));
	printf("deleted %s (%s, origin %s)\n", id, image, origin);
}

/*
 * @message is the kernel's, if any. EBUSY gets a hint, since the way out
 * (--force) is not obvious and has consequences.
 */
static void report_failed(struct delete_report *r, const struct vss_id *id,
			  const struct vss_id *set_id, const char *image,
			  int err, const char *message)
{
	char text[VSS_ID_STRLEN];
	const char *name = vss_errno_name(err);
	struct json_object *obj;

	vss_id_format(id ? id : set_id, text);
	if (err == -EBUSY) {
		char what[VSS_REASON_MAX + VSSCTL_DEVICE_TEXT_MAX];

		if (message)
			snprintf(what, sizeof(what), "%s", message);
		else if (image && *image)
			snprintf(what, sizeof(what), "image %s is open", image);
		else
			snprintf(what, sizeof(what), "%s", id ? "its image is open" :
				 "an image of the set is open");
		vssctl_error("%s: %s (EBUSY); --force deletes it anyway, "
			     "its openers then get I/O errors", text, what);
	} else if (err == -ENOENT)
		vssctl_error("%s: %s", text, message ? message :
			     id ? "no such snapshot" : "no such snapshot set");
	else if (err == -EPERM || err == -EACCES)
		vssctl_error("%s: permission denied (need CAP_SYS_ADMIN)", text);
	else
		vssctl_error("%s: %s (%s)", text, message ? message : vss_strerror(err),
			     name ? name : "?");
	if (!r->first_code)
		r->first_code = vssctl_exit_code(err);

	obj = json_object_new_object();
	json_object_object_add(obj, "id", id ? vssctl_json_id(id) : NULL);
	json_object_object_add(obj, "set_id", set_id ? vssctl_json_id(set_id) : NULL);
	json_object_object_add(obj, "errno", json_object_new_int(err < 0 ? -err : err));
	json_object_object_add(obj, "error", name ? json_object_new_string(name) : NULL);
	json_object_object_add(obj, "message",
			       json_object_new_string(message ? message : vss_strerror(err)));
	json_object_array_add(r->failed, obj);
}

static int report_finish(struct delete_report *r)
{
	int code = r->first_code;

	if (r->ctx->json) {
		struct json_object *obj = json_object_new_object();

		json_object_object_add(obj, "deleted", r->deleted);
		json_object_object_add(obj, "failed", r->failed);
		if (vssctl_json_print(r->ctx, obj, stdout) && !code)
			code = VSSCTL_EXIT_FAILURE;
	} else {
		json_object_put(r->deleted);
		json_object_put(r->failed);
	}
	return code;
}

static const char *image_text(const struct vss_snapshot_info *s, char *buf,
			      size_t len)
{
	vssctl_device_text(&s->image, buf, len);
	return buf;
}

static void delete_one(struct vss_handle *h, struct delete_report *r,
		       const struct vss_snapshot_info *s, uint32_t flags)
{
	char image[VSSCTL_DEVICE_TEXT_MAX];
	int err = vss_delete_snapshot(h, &s->id, flags);

	if (err)
		report_failed(r, &s->id, NULL, image_text(s, image, sizeof(image)),
			      err, vss_last_error_message(h));
	else
		report_deleted(r, s);
}

static int delete_ids(const struct vssctl *ctx, struct vss_handle *h,
		      char **texts, int count, uint32_t flags)
{
	struct vss_snapshot_info *snaps;
	struct delete_report report;
	struct vss_id *ids = NULL;
	size_t *chosen = NULL, n = 0, i, j;
	int code = 0, err;

	err = vss_list_snapshots(h, NULL, &snaps, &n);
	if (err)
		return vssctl_report(ctx, h, err, NULL, NULL);
	ids = calloc(n ? n : 1, sizeof(*ids));
	chosen = calloc((size_t)count, sizeof(*chosen));
	if (!ids || !chosen) {
		vssctl_error("%s: out of memory", ctx->command);
		code = VSSCTL_EXIT_FAILURE;
		goto out;
	}
	for (i = 0; i < n; i++)
		ids[i] = snaps[i].id;

	for (i = 0; i < (size_t)count; i++) {
		err = vss_id_prefix_match(texts[i], ids, n, &chosen[i]);
		if (err == -ENOENT && vssctl_names_a_set(h, texts[i]))
			vssctl_error("%s: no such snapshot (that is a snapshot set id; "
				     "use --set)", texts[i]);
		else if (err == -ENOENT)
			vssctl_error("%s: no such snapshot", texts[i]);
		else if (err == -LIBVSS_EAMBIGUOUS)
			vssctl_error("%s: ambiguous id prefix: give more digits", texts[i]);
		if (err && !code)
			code = vssctl_exit_code(err);
	}
	if (code) {
		vssctl_error("%s: nothing deleted", ctx->command);
		goto out;
	}

	report_init(&report, ctx);
	for (i = 0; i < (size_t)count; i++) {
		bool repeated = false;

		for (j = 0; j < i; j++)
			repeated |= chosen[j] == chosen[i];
		if (!repeated)
			delete_one(h, &report, &snaps[chosen[i]], flags);
	}
	code = report_finish(&report);
out:
	free(chosen);
	free(ids);
	vss_snapshot_info_array_free(snaps, n);
	return code;
}

static int delete_set(const struct vssctl *ctx, struct vss_handle *h,
		      const char *text, uint32_t flags)
{
	struct vss_snapshot_info *snaps;
	struct delete_report report;
	struct vss_id *set_ids;
	struct vss_id set_id;
	size_t n, i, found;
	int err;

	err = vss_list_snapshots(h, NULL, &snaps, &n);
	if (err)
		return vssctl_report(ctx, h, err, NULL, NULL);
	set_ids = calloc(n ? n : 1, sizeof(*set_ids));
	if (!set_ids) {
		vss_snapshot_info_array_free(snaps, n);
		vssctl_error("%s: out of memory", ctx->command);
		return VSSCTL_EXIT_FAILURE;
	}
	for (i = 0; i < n; i++)
		set_ids[i] = snaps[i].set_id;
	err = vss_id_prefix_match(text, set_ids, n, &found);
	if (err) {
		free(set_ids);
		vss_snapshot_info_array_free(snaps, n);
		if (err == -ENOENT) {
			vssctl_error("%s: no such snapshot set", text);
			return VSSCTL_EXIT_NOT_FOUND;
		}
		if (err == -LIBVSS_EAMBIGUOUS) {
			vssctl_error("%s: ambiguous id prefix: give more digits", text);
			return VSSCTL_EXIT_AMBIGUOUS;
		}
		return vssctl_report(ctx, NULL, err, text, NULL);
	}
	set_id = set_ids[found];
	free(set_ids);

	report_init(&report, ctx);
	err = vss_delete_set(h, &set_id, flags);
	if (err) {
		report_failed(&report, NULL, &set_id, NULL, err,
			      vss_last_error_message(h));
	} else {
		for (i = 0; i < n; i++)
			if (vss_id_equal(&snaps[i].set_id, &set_id))
				report_deleted(&report, &snaps[i]);
	}
	vss_snapshot_info_array_free(snaps, n);
	return report_finish(&report);
}

/*
 * Picks the oldest itself rather than calling vss_delete_oldest(), so that
 * what it reports is exactly the snapshot it deleted.
 */
static int delete_oldest(const struct vssctl *ctx, struct vss_handle *h,
			 const char *arg, uint32_t flags)
{
	struct vss_snapshot_info *snaps;
	const struct vss_snapshot_info *oldest = NULL;
	struct delete_report report;
	char buf[PATH_MAX];
	const char *device = vssctl_device_path(arg, buf, sizeof(buf));
	size_t n, i;
	int err;

	err = vss_list_snapshots(h, device, &snaps, &n);
	if (err)
		return vssctl_report(ctx, h, err, device, "no snapshot of this device");
	/* Index counts up per origin and is never reused: lowest is oldest. */
	for (i = 0; i < n; i++)
		if (!oldest || snaps[i].index < oldest->index)
			oldest = &snaps[i];
	if (!oldest) {
		vssctl_error("%s: no snapshot of this device", device);
		return VSSCTL_EXIT_NOT_FOUND;
	}
	report_init(&report, ctx);
	delete_one(h, &report, oldest, flags);
	vss_snapshot_info_array_free(snaps, n);
	return report_finish(&report);
}

static void on_deleted(const struct vss_snapshot_info *s, int err,
		       const char *message, void *arg)
{
	struct delete_report *r = arg;
	char image[VSSCTL_DEVICE_TEXT_MAX];

	if (err)
		report_failed(r, &s->id, NULL, image_text(s, image, sizeof(image)),
			      err, message);
	else
		report_deleted(r, s);
}

static int delete_all(const struct vssctl *ctx, struct vss_handle *h, uint32_t flags)
{
	struct delete_report report;
	int err;

	report_init(&report, ctx);
	err = vss_delete_all(h, flags, on_deleted, &report, NULL);
	/* Failures of single deletions were reported as they happened. */
	if (err && !report.first_code)
		report.first_code = vssctl_report(ctx, h, err, NULL, NULL);
	return report_finish(&report);
}

int cmd_delete(struct vssctl *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "set", required_argument, NULL, 's' },
		{ "oldest", required_argument, NULL, 'o' },
		{ "all", no_argument, NULL, 'a' },
		{ "force", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *set = NULL, *oldest = NULL;
	struct vss_handle *h = NULL;
	uint32_t flags = 0;
	bool all = false;
	int opt, modes, code, i;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":s:o:afjh", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			set = optarg;
			break;
		case 'o':
			oldest = optarg;
			break;
		case 'a':
			all = true;
			break;
		case 'f':
			flags |= VSS_DELETE_FORCE;
			break;
		case 'j':
			ctx->json = true;
			break;
		case 'h':
			delete_usage(stdout);
			return VSSCTL_EXIT_OK;
		default:
			return vssctl_bad_option(ctx, argv, opt);
		}
	}
	modes = (optind < argc) + !!set + !!oldest + all;
	if (modes == 0)
		return vssctl_usage_error(ctx, "say what to delete: ID..., --set, --oldest or --all");
	if (modes > 1)
		return vssctl_usage_error(ctx, "give only one of ID..., --set, --oldest and --all");
	for (i = optind; i < argc; i++)
		if (vss_id_prefix_match(argv[i], NULL, 0, NULL) == -EINVAL)
			return vssctl_usage_error(ctx, "'%s' is not a snapshot id", argv[i]);
	if (set && vss_id_prefix_match(set, NULL, 0, NULL) == -EINVAL)
		return vssctl_usage_error(ctx, "'%s' is not a snapshot set id", set);

	code = vssctl_check_privilege(ctx);
	if (!code)
		code = vssctl_open(ctx, &h);
	if (code)
		return code;
	if (set)
		code = delete_set(ctx, h, set, flags);
	else if (oldest)
		code = delete_oldest(ctx, h, oldest, flags);
	else if (all)
		code = delete_all(ctx, h, flags);
	else
		code = delete_ids(ctx, h, argv + optind, argc - optind, flags);
	vss_close(h);
	return code;
}
