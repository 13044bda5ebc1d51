// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Versions: of this library, and of the module as read at open.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#ifndef LIBVSS_VERSION_STRING
#error "LIBVSS_VERSION_STRING must be defined by the build"
#endif

VSS_EXPORT const char *vss_library_version(void)
{
	/*
	 * The build may add a suffix ("0.4.0-rc1"), never another number:
	 * the Makefile refuses a VERSION that contradicts the header.
	 */
	return LIBVSS_VERSION_STRING;
}

VSS_EXPORT int vss_get_version(struct vss_handle *h, struct vss_module_version *out)
{
	vss_error_clear(h);
	memset(out, 0, sizeof(*out));
	snprintf(out->version, sizeof(out->version), "%s", h->module_version);
	out->protocol = h->module_protocol;
	out->family_version = h->family_version;
	return 0;
}
