/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A sparse bitmap of blocks, one bit a block, allocated a page at a time
 * on first use, so that a map costs memory only where blocks were written.
 */
#ifndef VSS_CBT_MAP_H
#define VSS_CBT_MAP_H

#include <linux/atomic.h>
#include <linux/types.h>
#include <linux/xarray.h>

#define VSS_CBT_MAP_PAGE_BITS	(PAGE_SIZE * BITS_PER_BYTE)

/*
 * @pages maps a page number (block / VSS_CBT_MAP_PAGE_BITS) to a zeroed
 * page of bits. Pages are added with xa_cmpxchg() by any number of
 * setters at once and freed only by vss_cbt_map_destroy(), when nobody can
 * set or read the map any more. Bits are set with atomic word operations;
 * readers may see a word while it is being set.
 */
struct vss_cbt_map {
	struct xarray pages;
};

void vss_cbt_map_init(struct vss_cbt_map *map);
void vss_cbt_map_destroy(struct vss_cbt_map *map, atomic_long_t *nr_pages);
int vss_cbt_map_set(struct vss_cbt_map *map, u64 first, u64 last, gfp_t gfp,
		    atomic_long_t *nr_pages);
int vss_cbt_map_or(struct vss_cbt_map *dst, struct vss_cbt_map *src,
		   gfp_t gfp, atomic_long_t *nr_pages);

/* The page of bits of page number @index, or NULL when it has none set. */
static inline unsigned long *vss_cbt_map_page(struct vss_cbt_map *map,
					      unsigned long index)
{
	return xa_load(&map->pages, index);
}

/* The first page number >= @index that has a page, or ULONG_MAX. */
static inline unsigned long vss_cbt_map_next_page(struct vss_cbt_map *map,
						  unsigned long index)
{
	return xa_find(&map->pages, &index, ULONG_MAX, XA_PRESENT) ?
	       index : ULONG_MAX;
}

#endif /* VSS_CBT_MAP_H */
