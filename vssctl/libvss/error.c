// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The last-error state of a handle, and the texts and names of error codes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

void vss_error_clear(struct vss_handle *h)
{
	h->err.code = 0;
	h->err.attr = 0;
	h->err.message[0] = '\0';
	h->err.object[0] = '\0';
}

/*
 * Records a failure and returns @code, so that a caller can write
 * "return vss_error_set(...)". @object and @fmt may be NULL.
 */
int vss_error_set(struct vss_handle *h, int code, const char *object,
		  const char *fmt, ...)
{
	h->err.code = code;
	h->err.attr = 0;
	h->err.message[0] = '\0';
	h->err.object[0] = '\0';
	if (object)
		snprintf(h->err.object, sizeof(h->err.object), "%s", object);
	if (fmt) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(h->err.message, sizeof(h->err.message), fmt, ap);
		va_end(ap);
	}
	return code;
}

/*
 * Adds @text to the message of the failure recorded, or makes it the
 * message after the errno's text when there was none. Truncates.
 */
void vss_error_append(struct vss_handle *h, const char *text)
{
	size_t used;

	if (!h->err.message[0])
		snprintf(h->err.message, sizeof(h->err.message), "%s",
			 vss_strerror(h->err.code));
	used = strlen(h->err.message);
	snprintf(h->err.message + used, sizeof(h->err.message) - used, "%s", text);
}

VSS_EXPORT int vss_last_error(const struct vss_handle *h)
{
	return h ? h->err.code : 0;
}

VSS_EXPORT const char *vss_last_error_message(const struct vss_handle *h)
{
	return h && h->err.message[0] ? h->err.message : NULL;
}

VSS_EXPORT const char *vss_last_error_object(const struct vss_handle *h)
{
	return h && h->err.object[0] ? h->err.object : NULL;
}

VSS_EXPORT int vss_last_error_attr(const struct vss_handle *h)
{
	return h ? h->err.attr : 0;
}

VSS_EXPORT const char *vss_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case LIBVSS_ENOMODULE:
		return "the vss kernel module is not loaded";
	case LIBVSS_EAMBIGUOUS:
		return "ambiguous id prefix";
	case LIBVSS_EPROTOCOL:
		return "the vss kernel module speaks an incompatible protocol";
	case LIBVSS_ECBT_STALE:
		return "the changed-block point is of another tracking generation: take a full backup";
	case LIBVSS_ECBT_TOO_OLD:
		return "the changed-block map no longer reaches back to that point: take a full backup";
	default:
		return strerror(err);
	}
}

VSS_EXPORT bool vss_cbt_needs_full_backup(int err)
{
	if (err < 0)
		err = -err;
	return err == LIBVSS_ECBT_STALE || err == LIBVSS_ECBT_TOO_OLD;
}

#define ERRNO_NAME(e) [e] = #e

/*
 * Our own table rather than strerrorname_np(): that is glibc 2.32+ only,
 * and the names are what scripts match on in JSON output.
 */
static const char *const errno_names[] = {
	ERRNO_NAME(EPERM), ERRNO_NAME(ENOENT), ERRNO_NAME(ESRCH),
	ERRNO_NAME(EINTR), ERRNO_NAME(EIO), ERRNO_NAME(ENXIO),
	ERRNO_NAME(E2BIG), ERRNO_NAME(ENOEXEC), ERRNO_NAME(EBADF),
	ERRNO_NAME(ECHILD), ERRNO_NAME(EAGAIN), ERRNO_NAME(ENOMEM),
	ERRNO_NAME(EACCES), ERRNO_NAME(EFAULT), ERRNO_NAME(ENOTBLK),
	ERRNO_NAME(EBUSY), ERRNO_NAME(EEXIST), ERRNO_NAME(EXDEV),
	ERRNO_NAME(ENODEV), ERRNO_NAME(ENOTDIR), ERRNO_NAME(EISDIR),
	ERRNO_NAME(EINVAL), ERRNO_NAME(ENFILE), ERRNO_NAME(EMFILE),
	ERRNO_NAME(ENOTTY), ERRNO_NAME(ETXTBSY), ERRNO_NAME(EFBIG),
	ERRNO_NAME(ENOSPC), ERRNO_NAME(ESPIPE), ERRNO_NAME(EROFS),
	ERRNO_NAME(EMLINK), ERRNO_NAME(EPIPE), ERRNO_NAME(EDOM),
	ERRNO_NAME(ERANGE), ERRNO_NAME(EDEADLK), ERRNO_NAME(ENAMETOOLONG),
	ERRNO_NAME(ENOLCK), ERRNO_NAME(ENOSYS), ERRNO_NAME(ENOTEMPTY),
	ERRNO_NAME(ELOOP), ERRNO_NAME(ENOMSG), ERRNO_NAME(EIDRM),
	ERRNO_NAME(ENODATA), ERRNO_NAME(ETIME), ERRNO_NAME(ENOLINK),
	ERRNO_NAME(EPROTO), ERRNO_NAME(EBADMSG), ERRNO_NAME(EOVERFLOW),
	ERRNO_NAME(ENOTUNIQ), ERRNO_NAME(EBADFD), ERRNO_NAME(EILSEQ),
	ERRNO_NAME(EUSERS), ERRNO_NAME(ENOTSOCK), ERRNO_NAME(EDESTADDRREQ),
	ERRNO_NAME(EMSGSIZE), ERRNO_NAME(EPROTOTYPE), ERRNO_NAME(ENOPROTOOPT),
	ERRNO_NAME(EPROTONOSUPPORT), ERRNO_NAME(ESOCKTNOSUPPORT),
	ERRNO_NAME(EOPNOTSUPP), ERRNO_NAME(EPFNOSUPPORT),
	ERRNO_NAME(EAFNOSUPPORT), ERRNO_NAME(EADDRINUSE),
	ERRNO_NAME(EADDRNOTAVAIL), ERRNO_NAME(ENETDOWN),
	ERRNO_NAME(ENETUNREACH), ERRNO_NAME(ECONNABORTED),
	ERRNO_NAME(ECONNRESET), ERRNO_NAME(ENOBUFS), ERRNO_NAME(EISCONN),
	ERRNO_NAME(ENOTCONN), ERRNO_NAME(ETIMEDOUT), ERRNO_NAME(ECONNREFUSED),
	ERRNO_NAME(EALREADY), ERRNO_NAME(EINPROGRESS), ERRNO_NAME(ESTALE),
	ERRNO_NAME(EDQUOT), ERRNO_NAME(ECANCELED), ERRNO_NAME(ENOMEDIUM),
	ERRNO_NAME(EMEDIUMTYPE), ERRNO_NAME(EOWNERDEAD),
	ERRNO_NAME(ENOTRECOVERABLE), ERRNO_NAME(ERFKILL), ERRNO_NAME(EHWPOISON),
	ERRNO_NAME(ENOKEY), ERRNO_NAME(EKEYEXPIRED), ERRNO_NAME(EKEYREVOKED),
	ERRNO_NAME(EKEYREJECTED), ERRNO_NAME(EREMOTEIO), ERRNO_NAME(ENOSR),
	ERRNO_NAME(ENOSTR), ERRNO_NAME(ENOTNAM), ERRNO_NAME(EUCLEAN),
};

VSS_EXPORT const char *vss_errno_name(int err)
{
	if (err < 0)
		err = -err;
	if ((size_t)err >= sizeof(errno_names) / sizeof(errno_names[0]))
		return NULL;
	return errno_names[err];
}
