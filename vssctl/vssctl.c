// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl: command line client of libvss. This file reads the global
 * options and hands over to one command; each command lives in its own
 * cmd_*.c file.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "vssctl.h"

struct command {
	const char *name;
	int (*run)(struct vssctl *ctx, int argc, char **argv);
	const char *synopsis;
};

static const struct command commands[] = {
	{ "version", cmd_version, "version" },
	{ "create", cmd_create,
	  "create [--storage PATH] [--storage-limit SIZE|N%] [--chunk-size SIZE]\n"
	  "              [--label TEXT] [--no-freeze] [--hold-limit MS] [--no-writers]\n"
	  "              [--writer-volumes] [--queue-timeout SEC] DEV..." },
	{ "list", cmd_list, "list [DEV]" },
	{ "show", cmd_show, "show ID" },
	{ "delete", cmd_delete,
	  "delete [--force] ID... | --set SETID | --oldest DEV | --all" },
	{ "monitor", cmd_monitor, "monitor [--count N] [--timeout SEC]" },
	{ "writers", cmd_writers, "writers" },
	{ "exec", cmd_exec,
	  "exec [create options] [--mount DIR] [--mount-options TYPE:OPTS] [--keep] [--idle]\n"
	  "              [DEV...] -- COMMAND [ARG...]" },
	{ "backup-complete", cmd_backup_complete, "backup-complete [--failed] SET" },
	{ "abort", cmd_abort, "abort SET" },
	{ "track", cmd_track, "track DEV" },
	{ "untrack", cmd_untrack, "untrack DEV" },
	{ "cbt", cmd_cbt,
	  "cbt info [DEV]\n"
	  "  vssctl cbt changes DEV --from SNAP|POINT [--to SNAP|POINT]\n"
	  "  vssctl cbt mark-dirty DEV OFFSET LENGTH\n"
	  "  vssctl cbt save [--dir DIR] DEV... | --all\n"
	  "  vssctl cbt restore [--dir DIR] [--device DEV] [FILE...]" },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"Usage: vssctl [-j|--json] [-p|--pretty] COMMAND [ARGS]\n"
		"       vssctl -h|--help | -V|--version\n"
		"\n"
		"Volume shadow copies for Linux: point-in-time images of block devices.\n"
		"\n"
		"Commands:\n");
	for (i = 0; i < COMMAND_COUNT; i++)
		fprintf(out, "  vssctl %s\n", commands[i].synopsis);
	fprintf(out,
		"\n"
		"Global options:\n"
		"  -j, --json     print JSON (also accepted after the command)\n"
		"  -p, --pretty   indent JSON output\n"
		"  -h, --help     print this help, or a command's with COMMAND --help\n"
		"  -V, --version  print the versions of vssctl and libvss\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage, 3 module not loaded,\n"
		"4 permission denied, 5 not found, 6 busy, 7 ambiguous id, 8 storage,\n"
		"9 full backup required, 10 already tracked, 11 a writer failed,\n"
		"12 vsswriterd is not running. See vssctl(8).\n");
}

static int finish_output(int code)
{
	/* A full disk or closed pipe must not pass for success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		int err = errno;

		vssctl_error("write error: %s", strerror(err));
		return code ? code : VSSCTL_EXIT_FAILURE;
	}
	return code;
}

int vssctl_main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct vssctl ctx = { .command = "vssctl" };
	const char *name;
	size_t i;
	int opt;

	opterr = 0;
	optind = 0;
	/* "+": stop at the command, whose options are its own. */
	while ((opt = getopt_long(argc, argv, "+:jphV", options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			ctx.json = true;
			break;
		case 'p':
			ctx.pretty = true;
			break;
		case 'h':
			usage(stdout);
			return finish_output(VSSCTL_EXIT_OK);
		case 'V':
			printf("vssctl %s (libvss %s, protocol %d)\n", VSSCTL_VERSION,
			       vss_library_version(), VSS_PROTOCOL_VERSION);
			return finish_output(VSSCTL_EXIT_OK);
		default:
			if (optopt > ' ' && optopt < 127)
				vssctl_error("unknown option '-%c'", optopt);
			else
				vssctl_error("unknown option '%s'", argv[optind - 1]);
			fprintf(stderr, "Try 'vssctl --help'.\n");
			return VSSCTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return VSSCTL_EXIT_USAGE;
	}
	name = argv[optind];
	if (!strcmp(name, "help")) {
		usage(stdout);
		return finish_output(VSSCTL_EXIT_OK);
	}
	for (i = 0; i < COMMAND_COUNT; i++) {
		if (strcmp(name, commands[i].name))
			continue;
		ctx.command = commands[i].name;
		return finish_output(commands[i].run(&ctx, argc - optind,
						     argv + optind));
	}
	vssctl_error("unknown command '%s'", name);
	fprintf(stderr, "Try 'vssctl --help'.\n");
	return VSSCTL_EXIT_USAGE;
}
