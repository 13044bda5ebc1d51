// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Deleting snapshots: one, a set, the oldest of an origin, or all.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int delete_by_id(struct vss_handle *h, int attrtype,
			const struct vss_id *id, uint32_t flags)
{
	char text[VSS_ID_STRLEN];
	struct vss_request req;
	struct nlattr *attr;
	int err;

	err = vss_require_admin(h);
	if (err)
		return err;
	vss_id_format(id, text);
	if (flags & ~VSS_DELETE_FLAGS_ALL)
		return vss_error_set(h, -EINVAL, text, "unknown flags 0x%x",
				     (unsigned int)(flags & ~VSS_DELETE_FLAGS_ALL));
	err = vss_request_init(&req, h, h->family_id, VSS_CMD_DELETE_SNAPSHOT,
			       VSS_GENL_VERSION, false);
	if (err)
		return vss_error_set(h, err, NULL, NULL);
	attr = (struct nlattr *)nlmsg_tail(nlmsg_hdr(req.msg));
	if (nla_put(req.msg, attrtype, VSS_ID_LEN, id->bytes) < 0 ||
	    (flags && nla_put_u32(req.msg, VSS_A_FLAGS, flags) < 0)) {
		vss_request_fini(&req);
		return vss_error_set(h, -EMSGSIZE, NULL, NULL);
	}
	err = vss_request_add_span(&req, attr, text);
	if (!err)
		err = vss_transact(h, &req);
	vss_request_fini(&req);
	/* Whatever the kernel blamed, the failure is about this id. */
	if (err && !h->err.object[0])
		snprintf(h->err.object, sizeof(h->err.object), "%s", text);
	return err;
}

VSS_EXPORT int vss_delete_snapshot(struct vss_handle *h, const struct vss_id *id,
				   uint32_t flags)
{
	return delete_by_id(h, VSS_A_SNAP_ID, id, flags);
}

VSS_EXPORT int vss_delete_set(struct vss_handle *h, const struct vss_id *set_id,
			      uint32_t flags)
{
	return delete_by_id(h, VSS_A_SET_ID, set_id, flags);
}

VSS_EXPORT int vss_delete_oldest(struct vss_handle *h, const char *origin_path,
				 uint32_t flags, struct vss_id *deleted)
{
	struct vss_snapshot_info *snaps;
	const struct vss_snapshot_info *oldest = NULL;
	struct vss_id id;
	size_t count, i;
	int err;

	err = vss_require_admin(h);
	if (err)
		return err;
	if (!origin_path || !*origin_path)
		return vss_error_set(h, -EINVAL, NULL, "no device given");
	err = vss_list_snapshots(h, origin_path, &snaps, &count);
	if (err)
		return err;
	/* Index counts up per origin and is never reused: lowest is oldest. */
	for (i = 0; i < count; i++)
		if (!oldest || snaps[i].index < oldest->index)
			oldest = &snaps[i];
	if (!oldest) {
		vss_snapshot_info_array_free(snaps, count);
		return vss_error_set(h, -ENOENT, origin_path,
				     "no snapshot of this device");
	}
	id = oldest->id;
	vss_snapshot_info_array_free(snaps, count);
	err = vss_delete_snapshot(h, &id, flags);
	if (!err && deleted)
		*deleted = id;
	return err;
}

VSS_EXPORT int vss_delete_all(struct vss_handle *h, uint32_t flags,
			      vss_delete_progress_fn progress, void *arg,
			      size_t *deleted)
{
	struct vss_error_state first_failure = { 0 };
	struct vss_snapshot_info *snaps;
	size_t count, i, done = 0;
	int err;

	if (deleted)
		*deleted = 0;
	err = vss_require_admin(h);
	if (err)
		return err;
	err = vss_list_snapshots(h, NULL, &snaps, &count);
	if (err)
		return err;
	for (i = 0; i < count; i++) {
		err = vss_delete_snapshot(h, &snaps[i].id, flags);
		/* Deleted meanwhile, by another requester or with its set. */
		if (err == -ENOENT)
			continue;
		if (!err)
			done++;
		else if (!first_failure.code)
			first_failure = h->err;
		if (progress)
			progress(&snaps[i], err, vss_last_error_message(h), arg);
	}
	vss_snapshot_info_array_free(snaps, count);
	if (deleted)
		*deleted = done;
	h->err = first_failure;
	return first_failure.code;
}
