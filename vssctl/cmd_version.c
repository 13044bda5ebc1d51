// SPDX-License-Identifier: GPL-2.0
/*
 * vssctl version: what runs here, down to the kernel module.
 */
#include <getopt.h>
#include <stdio.h>

#include "output.h"

static void version_usage(FILE *out)
{
	fprintf(out,
		"Usage: vssctl version [--json]\n"
		"\n"
		"Print the versions of vssctl, libvss and the loaded vss kernel\n"
		"module, with the protocol each speaks.\n");
}

int cmd_version(struct vssctl *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vss_module_version module = { .version = "" };
	struct vss_handle *h = NULL;
	int opt, err, code;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":jh", options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			ctx->json = true;
			break;
		case 'h':
			version_usage(stdout);
			return VSSCTL_EXIT_OK;
		default:
			return vssctl_bad_option(ctx, argv, opt);
		}
	}
	if (optind < argc)
		return vssctl_usage_error(ctx, "unexpected argument '%s'", argv[optind]);

	err = vss_open(&h);
	if (!err)
		err = vss_get_version(h, &module);

	if (ctx->json) {
		struct json_object *obj = json_object_new_object();
		struct json_object *mod = NULL;

		if (!err) {
			mod = json_object_new_object();
			json_object_object_add(mod, "version",
					       json_object_new_string(module.version));
			json_object_object_add(mod, "protocol",
					       json_object_new_int64(module.protocol));
			json_object_object_add(mod, "family_version",
					       json_object_new_int64(module.family_version));
		}
		json_object_object_add(obj, "vssctl", json_object_new_string(VSSCTL_VERSION));
		json_object_object_add(obj, "libvss",
				       json_object_new_string(vss_library_version()));
		json_object_object_add(obj, "protocol",
				       json_object_new_int(VSS_PROTOCOL_VERSION));
		json_object_object_add(obj, "module", mod);
		vssctl_json_print(ctx, obj, stdout);
	} else {
		printf("vssctl %s\n", VSSCTL_VERSION);
		printf("libvss %s (protocol %d)\n", vss_library_version(),
		       VSS_PROTOCOL_VERSION);
		if (!err)
			printf("vss module %s (protocol %u)\n", module.version,
			       module.protocol);
	}

	if (err) {
		code = h ? vssctl_report(ctx, h, err, NULL, NULL) :
			   vssctl_open_failed(ctx, err);
	} else if (module.protocol != VSS_PROTOCOL_VERSION) {
		vssctl_error("the vss module speaks protocol %u, this vssctl speaks %d: "
			     "install matching versions", module.protocol,
			     VSS_PROTOCOL_VERSION);
		code = VSSCTL_EXIT_FAILURE;
	} else {
		code = VSSCTL_EXIT_OK;
	}
	vss_close(h);
	return code;
}
