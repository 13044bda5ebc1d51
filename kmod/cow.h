/* SPDX-License-Identifier: GPL-2.0 */
/* Copy-on-write: preserving a chunk before its first overwrite. */
#ifndef VSS_COW_H
#define VSS_COW_H

#include <linux/list.h>
#include <linux/types.h>

struct vss_origin;
struct vss_chain;
struct vss_snapshot;
struct gendisk;

bool vss_cow_covered(struct vss_chain *chain, u64 chunk);
void vss_cow_chunk(struct vss_origin *origin, u64 chunk);
void vss_cow_chunks(struct vss_origin *origin, u64 first, u64 last);
struct vss_store;
int vss_cow_keep_in_place(struct vss_store *store, struct gendisk *disk,
			  sector_t sector, u32 first_slot, u32 nr_slots);
unsigned long vss_chain_lookup(struct vss_chain *chain,
			       struct vss_snapshot *snap, u64 chunk);

/*
 * An image read of chunks [@first, @last] of an origin, some of which it
 * reads from the origin itself: writes to them wait until it is over.
 * In vss_origin.read_pins, under its read_pin_lock.
 */
struct vss_read_pin {
	struct list_head node;
	u64 first;
	u64 last;
};

void vss_read_pin_add(struct vss_origin *origin, struct vss_read_pin *pin,
		      u64 first, u64 last);
void vss_read_pin_narrow(struct vss_origin *origin, struct vss_read_pin *pin,
			 u64 first, u64 last);
void vss_read_pin_del(struct vss_origin *origin, struct vss_read_pin *pin);
bool vss_read_pinned(struct vss_origin *origin, u64 first, u64 last);

#endif /* VSS_COW_H */
