// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl writers, vssctl backup-complete SET, vssctl abort SET: the
 * writers vsswriterd knows, and the end of a set that `vssctl create`
 * left waiting for backup-complete.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "output.h"
#include "writers_output.h"

static void writers_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl writers [--json]\n"
		"\n"
		"List every writer vsswriterd knows (processes and hooks): name, class id,\n"
		"instance id, kind, state with its number, last error with its time, and\n"
		"components. Needs no privilege.\n"
		"\n"
		"Options:\n"
		"  -j, --json   print JSON\n"
		"  -h, --help   print this help\n");
}

int cmd_writers(struct vssctl *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vss_writer_info *writers = NULL;
	struct vss_session *s = NULL;
	size_t n = 0, i;
	int opt, code, err;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":jh", options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			ctx->json = true;
			break;
		case 'h':
			writers_usage(stdout);
			return VSSCTL_EXIT_OK;
		default:
			return vssctl_bad_option(ctx, argv, opt);
		}
	}
	if (optind < argc)
		return vssctl_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	code = vssctl_writerd_open(ctx, &s, NULL, false);
	if (code)
		return code;
	err = vss_session_list_writers(s, &writers, &n);
	if (err) {
		code = vssctl_session_report(ctx, s, err, NULL);
		goto out;
	}
	if (ctx->json) {
		struct json_object *arr = json_object_new_array();

		for (i = 0; i < n; i++)
			json_object_array_add(arr, vssctl_json_writer_info(&writers[i]));
		if (vssctl_json_print(ctx, arr, stdout))
			code = VSSCTL_EXIT_FAILURE;
		goto out;
	}
	if (!n)
		printf("no writers (vsswriterd runs; no writer process is registered and no hook found)\n");
	for (i = 0; i < n; i++) {
		if (i)
			putchar('\n');
		vssctl_print_writer_info(stdout, &writers[i]);
	}
out:
	vss_writer_info_array_free(writers, n);
	vss_session_close(s);
	return code;
}

/* A set id or a unique prefix; the module resolves prefixes. */
static int resolve_set(const struct vssctl *ctx, const char *text, struct vss_id *id)
{
	struct vss_handle *h = NULL;
	int code, err;

	if (vss_id_parse(text, id) == 0)
		return VSSCTL_EXIT_OK;
	code = vssctl_open(ctx, &h);
	if (code)
		return code;
	err = vss_resolve_set_id(h, text, id);
	if (err)
		code = vssctl_report(ctx, h, err, text, "no such snapshot set");
	vss_close(h);
	return code;
}

static void end_usage(FILE *out, bool complete)
{
	if (complete)
		fprintf(out,
			"Usage: vssctl backup-complete [--failed] [--json] SET\n"
			"\n"
			"Tell the writers of SET (made by `vssctl create` through vsswriterd) that\n"
			"the backup is over. The set stays; delete it with `vssctl delete --set`.\n"
			"\n"
			"Options:\n"
			"  -f, --failed   the backup failed (the writers are told so)\n");
	else
		fprintf(out,
			"Usage: vssctl abort [--json] SET\n"
			"\n"
			"Give the backup of SET up: its writers are told the backup failed (abort\n"
			"is not allowed after post-snapshot) and the set is deleted.\n"
			"\n"
			"Options:\n");
	fprintf(out,
		"  -j, --json     print JSON\n"
		"  -h, --help     print this help\n"
		"SET is a set id or a unique prefix of one.\n");
}

static int end_set(struct vssctl *ctx, int argc, char **argv, bool complete)
{
	static const struct option options[] = {
		{ "failed", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct vss_writer_result *results;
	struct vss_session *s = NULL;
	char id_text[VSS_ID_STRLEN];
	bool failed = false, deleted = false;
	struct vss_id id;
	size_t n;
	int opt, code, err;

	optind = 0;
	while ((opt = getopt_long(argc, argv, complete ? ":fjh" : ":jh", options, NULL)) != -1) {
		switch (opt) {
		case 'f':
			failed = true;
			break;
		case 'j':
			ctx->json = true;
			break;
		case 'h':
			end_usage(stdout, complete);
			return VSSCTL_EXIT_OK;
		default:
			return vssctl_bad_option(ctx, argv, opt);
		}
	}
	if (optind >= argc)
		return vssctl_usage_error(ctx, "no set given");
	if (optind + 1 < argc)
		return vssctl_usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
	code = resolve_set(ctx, argv[optind], &id);
	if (code)
		return code;
	vss_id_format(&id, id_text);
	code = vssctl_writerd_open(ctx, &s, NULL, false);
	if (code)
		return code;
	err = complete ? vss_session_complete_set(s, &id, !failed) :
			 vss_session_abort_set(s, &id, &deleted);
	if (err) {
		char object[VSS_ID_STRLEN + 8];

		snprintf(object, sizeof(object), "set %s", id_text);
		code = vssctl_session_report(ctx, s, err, object);
		goto out;
	}
	vss_session_results(s, &results, &n);
	if (ctx->json) {
		struct json_object *obj = json_object_new_object();

		json_object_object_add(obj, "set_id", json_object_new_string(id_text));
		json_object_object_add(obj, "success", json_object_new_boolean(complete && !failed));
		json_object_object_add(obj, "set_deleted", json_object_new_boolean(deleted));
		json_object_object_add(obj, "writers", vssctl_json_writer_results(results, n));
		if (vssctl_json_print(ctx, obj, stdout))
			code = VSSCTL_EXIT_FAILURE;
		goto out;
	}
	if (complete)
		printf("set %s: backup-complete (%s) sent to its writers\n", id_text,
		       failed ? "failed" : "success");
	else
		printf("set %s: aborted; %s\n", id_text, deleted ? "the set is deleted" :
		       "the set could not be deleted (see vsswriterd's log)");
	vssctl_print_writer_results(stdout, results, n);
out:
	vss_session_close(s);
	return code;
}

int cmd_backup_complete(struct vssctl *ctx, int argc, char **argv)
{
	return end_set(ctx, argc, argv, true);
}

int cmd_abort(struct vssctl *ctx, int argc, char **argv)
{
	return end_set(ctx, argc, argv, false);
}
