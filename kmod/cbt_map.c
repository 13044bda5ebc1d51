// SPDX-License-Identifier: GPL-2.0
/*
 * Sparse block bitmaps for changed-block tracking. Setting bits is the
 * write path's share of tracking, so a bit already set costs one read of
 * its word and nothing else: a rewrite never dirties a cache line.
 */
#include "vss.h"
#include "cbt_map.h"
#include <linux/bitmap.h>
#include <linux/gfp.h>

void vss_cbt_map_init(struct vss_cbt_map *map)
{
	xa_init(&map->pages);
}

/**
 * vss_cbt_map_destroy - free every page of @map
 * @map: a map nobody sets or reads any more
 * @nr_pages: the page count the map's pages are charged to (NULL only
 *            for a map that never had a page)
 */
void vss_cbt_map_destroy(struct vss_cbt_map *map, atomic_long_t *nr_pages)
{
	unsigned long index;
	void *page;

	xa_for_each(&map->pages, index, page) {
		free_page((unsigned long)page);
		if (!WARN_ON_ONCE(!nr_pages))
			atomic_long_dec(nr_pages);
	}
	xa_destroy(&map->pages);
}

/* The page of bits of page number @index, allocated if need be. */
static unsigned long *vss_cbt_map_page_get(struct vss_cbt_map *map,
					   unsigned long index, gfp_t gfp,
					   atomic_long_t *nr_pages)
{
	unsigned long *page = xa_load(&map->pages, index);
	void *old;

	if (page)
		return page;
	page = (unsigned long *)get_zeroed_page(gfp | __GFP_NOWARN);
	if (!page)
		return NULL;
	old = xa_cmpxchg(&map->pages, index, NULL, page, gfp | __GFP_NOWARN);
	if (old) {
		/* Another setter won the race, or the xarray had no memory. */
		free_page((unsigned long)page);
		return xa_is_err(old) ? NULL : old;
	}
	atomic_long_inc(nr_pages);
	return page;
}

/* Sets the bits of @mask in *@word, writing only if one is still clear. */
static void vss_cbt_word_set(unsigned long *word, unsigned long mask)
{
	if ((READ_ONCE(*word) & mask) != mask)
		atomic_long_or(mask, (atomic_long_t *)word);
}

/**
 * vss_cbt_map_set - set the bits of blocks @first .. @last
 * @map: the map
 * @first: first block
 * @last: last block, inclusive
 * @gfp: allocation flags for pages not allocated yet
 * @nr_pages: the page count new pages are charged to
 *
 * Safe against concurrent setters and readers.
 *
 * Return: 0, or -ENOMEM when a page could not be allocated; the bits of
 * the pages that exist are set either way.
 */
int vss_cbt_map_set(struct vss_cbt_map *map, u64 first, u64 last, gfp_t gfp,
		    atomic_long_t *nr_pages)
{
	int ret = 0;

	while (first <= last) {
		unsigned long index = first / VSS_CBT_MAP_PAGE_BITS;
		unsigned long bit = first % VSS_CBT_MAP_PAGE_BITS;
		unsigned long end = min_t(u64, VSS_CBT_MAP_PAGE_BITS,
					  bit + (last - first) + 1);
		unsigned long *page;

		page = vss_cbt_map_page_get(map, index, gfp, nr_pages);
		if (!page) {
			ret = -ENOMEM;
		} else {
			while (bit < end) {
				unsigned long word = bit / BITS_PER_LONG;
				unsigned long lo = bit % BITS_PER_LONG;
				unsigned long hi = min_t(unsigned long,
							 BITS_PER_LONG,
							 lo + (end - bit));
				unsigned long mask = BITMAP_FIRST_WORD_MASK(lo) &
						     BITMAP_LAST_WORD_MASK(hi);

				vss_cbt_word_set(&page[word], mask);
				bit += hi - lo;
			}
		}
		first = (u64)(index + 1) * VSS_CBT_MAP_PAGE_BITS;
	}
	return ret;
}

/**
 * vss_cbt_map_or - add every bit of @src to @dst
 * @dst: the map to add to; setters may run on it meanwhile
 * @src: a map nobody sets any more
 * @gfp: allocation flags
 * @nr_pages: the page count new pages of @dst are charged to
 *
 * Return: 0 or -ENOMEM (then some bits of @src are missing from @dst).
 */
int vss_cbt_map_or(struct vss_cbt_map *dst, struct vss_cbt_map *src,
		   gfp_t gfp, atomic_long_t *nr_pages)
{
	unsigned long index, word;
	unsigned long *from;

	xa_for_each(&src->pages, index, from) {
		unsigned long *to = vss_cbt_map_page_get(dst, index, gfp,
							 nr_pages);

		if (!to)
			return -ENOMEM;
		for (word = 0; word < PAGE_SIZE / sizeof(long); word++)
			if (from[word])
				vss_cbt_word_set(&to[word], from[word]);
	}
	return 0;
}
