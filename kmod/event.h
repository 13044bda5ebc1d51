/* SPDX-License-Identifier: GPL-2.0 */
/* Events on the multicast group "events". */
#ifndef VSS_EVENT_H
#define VSS_EVENT_H

#include <uapi/linux/vss.h>

struct vss_snapshot;
struct vss_store;
struct vss_origin;
struct vss_cbt;

void vss_event_snapshot(struct vss_snapshot *snap, enum vss_event event);
void vss_event_storage(struct vss_store *store, enum vss_event event);
void vss_event_origin(struct vss_origin *origin, enum vss_event event);
void vss_event_cbt(struct vss_origin *origin, struct vss_cbt *cbt,
		   enum vss_event event, const char *reason);

#endif /* VSS_EVENT_H */
