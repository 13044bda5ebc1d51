/* SPDX-License-Identifier: GPL-2.0 */
/* Copy-on-write: preserving a chunk before its first overwrite. */
#ifndef VSS_COW_H
#define VSS_COW_H

#include <linux/types.h>

struct vss_origin;
struct vss_chain;
struct vss_snapshot;

bool vss_cow_covered(struct vss_chain *chain, u64 chunk);
void vss_cow_chunk(struct vss_origin *origin, u64 chunk);
unsigned long vss_chain_lookup(struct vss_chain *chain,
			       struct vss_snapshot *snap, u64 chunk);

struct vss_pending *vss_pending_reader_get(struct vss_origin *origin,
					   struct vss_snapshot *snap,
					   u64 chunk, unsigned long *exc);
void vss_pending_reader_put(struct vss_origin *origin,
			    struct vss_pending *pending);

#endif /* VSS_COW_H */
