// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Names of the protocol's enumerations, as vssctl prints them and as its
 * JSON carries them: stable strings a script can match.
 */
#include "internal.h"

VSS_EXPORT const char *vss_state_name(uint32_t state)
{
	switch (state) {
	case VSS_STATE_ACTIVE:
		return "active";
	case VSS_STATE_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

VSS_EXPORT const char *vss_storage_kind_name(uint32_t kind)
{
	switch (kind) {
	case VSS_STORAGE_BLOCK:
		return "block";
	case VSS_STORAGE_FILE:
		return "file";
	case VSS_STORAGE_TMPFILE:
		return "tmpfile";
	case VSS_STORAGE_SAMEVOL:
		return "same-volume";
	default:
		return "unknown";
	}
}

VSS_EXPORT const char *vss_event_name(uint32_t type)
{
	switch (type) {
	case VSS_EVENT_SNAPSHOT_CREATED:
		return "snapshot-created";
	case VSS_EVENT_SNAPSHOT_DELETED:
		return "snapshot-deleted";
	case VSS_EVENT_SNAPSHOT_FAILED:
		return "snapshot-failed";
	case VSS_EVENT_STORAGE_LOW:
		return "storage-low";
	case VSS_EVENT_STORAGE_OVERFLOW:
		return "storage-overflow";
	case VSS_EVENT_ORIGIN_REMOVED:
		return "origin-removed";
	case VSS_EVENT_CBT_NEW_GENERATION:
		return "cbt-new-generation";
	case VSS_EVENT_CBT_STOPPED:
		return "cbt-stopped";
	case VSS_EVENT_CBT_HISTORY_DROPPED:
		return "cbt-history-dropped";
	default:
		return "unknown";
	}
}

VSS_EXPORT const char *vss_cbt_verdict_name(uint32_t verdict)
{
	switch (verdict) {
	case VSS_CBT_VERDICT_CONTINUED:
		return "continued";
	case VSS_CBT_VERDICT_NEW_GENERATION:
		return "new-generation";
	default:
		return "unknown";
	}
}
