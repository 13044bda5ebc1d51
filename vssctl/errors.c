// SPDX-License-Identifier: GPL-2.0
/*
 * Error messages and exit codes. Every error of vssctl goes through here,
 * so that they all read "vssctl: OBJECT: REASON" and map to the same
 * documented exit codes.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vssctl.h"

int vssctl_exit_code(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return VSSCTL_EXIT_OK;
	case LIBVSS_ENOMODULE:
		return VSSCTL_EXIT_NO_MODULE;
	case EPERM:
	case EACCES:
		return VSSCTL_EXIT_PERMISSION;
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return VSSCTL_EXIT_NOT_FOUND;
	case EBUSY:
		return VSSCTL_EXIT_BUSY;
	case LIBVSS_EAMBIGUOUS:
		return VSSCTL_EXIT_AMBIGUOUS;
	case ENOSPC:
	case EXDEV:
	case EDQUOT:
		return VSSCTL_EXIT_STORAGE;
	case LIBVSS_ECBT_STALE:
	case LIBVSS_ECBT_TOO_OLD:
		return VSSCTL_EXIT_FULL_BACKUP;
	case EALREADY:
		return VSSCTL_EXIT_ALREADY;
	/* The module's strict policies answer a bad value with these. */
	case EINVAL:
	case ERANGE:
	case ENOTBLK:
	case ENAMETOOLONG:
		return VSSCTL_EXIT_USAGE;
	default:
		return VSSCTL_EXIT_FAILURE;
	}
}

void vssctl_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("vssctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int vssctl_usage_error(const struct vssctl *ctx, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "vssctl: %s: ", ctx->command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vssctl %s --help'.\n", ctx->command);
	return VSSCTL_EXIT_USAGE;
}

int vssctl_bad_option(const struct vssctl *ctx, char **argv, int opt)
{
	const char *text = argv[optind - 1];

	if (opt == ':')
		return vssctl_usage_error(ctx, "option '%s' needs an argument", text);
	if (optopt > ' ' && optopt < 127)
		return vssctl_usage_error(ctx, "unknown option '-%c'", optopt);
	return vssctl_usage_error(ctx, "unknown option '%s'", text);
}

static const char *errno_tag(int err, char *buf, size_t len)
{
	const char *name = vss_errno_name(err);

	if (name)
		return name;
	snprintf(buf, len, "errno %d", err < 0 ? -err : err);
	return buf;
}

int vssctl_report(const struct vssctl *ctx, const struct vss_handle *h, int err,
		  const char *object, const char *not_found)
{
	const char *blamed = h ? vss_last_error_object(h) : NULL;
	const char *message = h ? vss_last_error_message(h) : NULL;
	int attr = h ? vss_last_error_attr(h) : 0;
	const char *who = blamed ? blamed : object ? object : ctx->command;
	char tag_buf[24], who_buf[VSS_PATH_MAX + 16];
	const char *tag = errno_tag(err, tag_buf, sizeof(tag_buf));

	/* "/dev/vdd: ..." could be an origin as well as the storage. */
	if (blamed && (attr == VSS_A_STORAGE_PATH || attr == VSS_A_STORAGE_LIMIT)) {
		snprintf(who_buf, sizeof(who_buf), "storage %s", blamed);
		who = who_buf;
	}

	switch (-err) {
	case LIBVSS_ENOMODULE:
		vssctl_error("the vss kernel module is not loaded (modprobe vss)");
		break;
	case EPERM:
	case EACCES:
		/* Without a culprit it is the module's CAP_SYS_ADMIN check. */
		if (!blamed && !object)
			vssctl_error("%s: permission denied (need CAP_SYS_ADMIN)", who);
		else if (message)
			vssctl_error("%s: %s (%s)", who, message, tag);
		else
			vssctl_error("%s: permission denied", who);
		break;
	case ENOENT:
		if (message)
			vssctl_error("%s: %s", who, message);
		else
			vssctl_error("%s: %s", who, not_found ? not_found : "not found");
		break;
	case LIBVSS_EAMBIGUOUS:
		vssctl_error("%s: %s", who, message ? message : "ambiguous id prefix");
		break;
	case EALREADY:
		vssctl_error("%s: %s (EALREADY)", who, message ? message : "already tracked");
		break;
	default:
		vssctl_error("%s: %s (%s)", who, message ? message : vss_strerror(err),
			     tag);
		break;
	}
	return vssctl_exit_code(err);
}

int vssctl_check_privilege(const struct vssctl *ctx)
{
	int err = vss_check_privilege();

	/* capget() itself failing says nothing: let the module judge. */
	if (err != -EPERM)
		return VSSCTL_EXIT_OK;
	return vssctl_report(ctx, NULL, err, NULL, NULL);
}

int vssctl_open_failed(const struct vssctl *ctx, int err)
{
	char tag_buf[24];

	if (err == -LIBVSS_ENOMODULE)
		return vssctl_report(ctx, NULL, err, NULL, NULL);
	vssctl_error("%s: cannot talk to the vss kernel module: %s (%s)",
		     ctx->command, vss_strerror(err),
		     errno_tag(err, tag_buf, sizeof(tag_buf)));
	return vssctl_exit_code(err);
}

int vssctl_open(const struct vssctl *ctx, struct vss_handle **h)
{
	int err = vss_open(h);

	return err ? vssctl_open_failed(ctx, err) : VSSCTL_EXIT_OK;
}

const char *vssctl_device_path(const char *arg, char *buf, size_t len)
{
	if (strchr(arg, '/'))
		return arg;
	snprintf(buf, len, "/dev/%s", arg);
	return buf;
}

int vssctl_lookup_device(const struct vssctl *ctx, const char *path,
			 struct vss_device *out)
{
	int err = vss_device_lookup(path, out);

	if (err == -ENOTBLK) {
		vssctl_error("%s: not a block device", path);
		return VSSCTL_EXIT_USAGE;
	}
	if (err)
		return vssctl_report(ctx, NULL, err, path, "no such device");
	return VSSCTL_EXIT_OK;
}
