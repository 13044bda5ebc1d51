// SPDX-License-Identifier: GPL-2.0
/*
 * Changed-block tracking. A generation of an origin keeps one sparse map
 * per interval between two snapshot points; the write path sets bits in
 * the current interval's map only, so its cost does not depend on how
 * many intervals or snapshots exist. A query is the union of the maps of
 * the intervals it spans, walked page by page so that a huge, sparsely
 * written device costs only what was written.
 *
 * The block size is chosen when a generation starts, the smallest power
 * of two of at least VSS_CBT_MIN_BLOCK_SIZE that leaves the device at most
 * VSS_CBT_MAX_BLOCKS blocks: one interval's map never exceeds 2 MiB, and
 * old intervals are dropped to keep a device's maps within
 * VSS_CBT_HISTORY_BYTES once a new point is made.
 */
#include "vss.h"
#include "cbt.h"
#include "origin.h"
#include <linux/log2.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>

u64 vss_cbt_seq(const struct vss_cbt *cbt)
{
	return cbt->current_iv->seq;
}

u64 vss_cbt_oldest_seq(const struct vss_cbt *cbt)
{
	return list_first_entry(&cbt->intervals, struct vss_cbt_interval,
				node)->seq;
}

u64 vss_cbt_map_bytes(struct vss_cbt *cbt)
{
	return (u64)atomic_long_read(&cbt->nr_pages) * PAGE_SIZE +
	       (u64)READ_ONCE(cbt->nr_intervals) *
	       sizeof(struct vss_cbt_interval) + sizeof(*cbt);
}

/**
 * vss_cbt_block_shift_for - the block size of a device of @bytes
 * @bytes: device size
 *
 * Return: log2 of the smallest block size of at least
 * VSS_CBT_MIN_BLOCK_SIZE that leaves at most VSS_CBT_MAX_BLOCKS blocks.
 */
unsigned int vss_cbt_block_shift_for(u64 bytes)
{
	unsigned int shift = ilog2(VSS_CBT_MIN_BLOCK_SIZE);

	while (DIV_ROUND_UP_ULL(bytes, 1ULL << shift) > VSS_CBT_MAX_BLOCKS)
		shift++;
	return shift;
}

struct vss_cbt_interval *vss_cbt_interval_alloc(void)
{
	struct vss_cbt_interval *iv = kzalloc(sizeof(*iv), GFP_KERNEL);

	if (iv)
		vss_cbt_map_init(&iv->map);
	return iv;
}

/* Frees @iv, which is in no list; @cbt may be NULL if @iv was never used. */
void vss_cbt_interval_free(struct vss_cbt *cbt, struct vss_cbt_interval *iv)
{
	if (!iv)
		return;
	vss_cbt_map_destroy(&iv->map, cbt ? &cbt->nr_pages : NULL);
	kfree(iv);
}

/**
 * vss_cbt_alloc - a generation with one, empty interval
 * @bytes: size of the device
 * @block_shift: log2 of the block size
 * @generation: the generation's id, or NULL for a new one
 * @seq: the number of its interval (0 for a new generation)
 * @started_ns: when the generation started, or 0 for now
 *
 * Return: the generation, or NULL without memory.
 */
struct vss_cbt *vss_cbt_alloc(u64 bytes, unsigned int block_shift,
			      const uuid_t *generation, u64 seq,
			      u64 started_ns)
{
	struct vss_cbt *cbt = kzalloc(sizeof(*cbt), GFP_KERNEL);
	struct vss_cbt_interval *iv = vss_cbt_interval_alloc();

	if (!cbt || !iv) {
		kfree(cbt);
		kfree(iv);
		return NULL;
	}
	if (generation)
		uuid_copy(&cbt->generation, generation);
	else
		uuid_gen(&cbt->generation);
	cbt->started_ns = started_ns ?: ktime_get_real_ns();
	cbt->block_shift = block_shift;
	cbt->size = bytes;
	cbt->nr_blocks = DIV_ROUND_UP_ULL(bytes, 1ULL << block_shift);
	mutex_init(&cbt->lock);
	INIT_LIST_HEAD(&cbt->intervals);
	atomic_long_set(&cbt->nr_pages, 0);
	iv->seq = seq;
	list_add_tail(&iv->node, &cbt->intervals);
	cbt->nr_intervals = 1;
	cbt->current_iv = iv;
	return cbt;
}

/* Frees @cbt; nothing may mark or read it any more. */
void vss_cbt_free(struct vss_cbt *cbt)
{
	struct vss_cbt_interval *iv, *next;

	if (!cbt)
		return;
	list_for_each_entry_safe(iv, next, &cbt->intervals, node) {
		list_del(&iv->node);
		vss_cbt_interval_free(cbt, iv);
	}
	WARN_ON(atomic_long_read(&cbt->nr_pages));
	mutex_destroy(&cbt->lock);
	kfree(cbt);
}

/**
 * vss_cbt_advance - make a new point: @iv becomes the current interval
 * @cbt: the generation
 * @iv: an interval from vss_cbt_interval_alloc()
 *
 * The caller holds vss_ctl_lock and has closed and drained the write
 * gate of @cbt's origin (if it has one): no write is marking @cbt.
 */
void vss_cbt_advance(struct vss_cbt *cbt, struct vss_cbt_interval *iv)
{
	mutex_lock(&cbt->lock);
	iv->seq = cbt->current_iv->seq + 1;
	list_add_tail(&iv->node, &cbt->intervals);
	WRITE_ONCE(cbt->nr_intervals, cbt->nr_intervals + 1);
	WRITE_ONCE(cbt->current_iv, iv);
	mutex_unlock(&cbt->lock);
}

/**
 * vss_cbt_add_interval - append an empty interval (building a restored map)
 * @cbt: a generation not attached to an origin
 * @seq: its number, one more than the current interval's
 *
 * Return: 0, -EINVAL for a number out of order, or -ENOMEM.
 */
int vss_cbt_add_interval(struct vss_cbt *cbt, u64 seq)
{
	struct vss_cbt_interval *iv;

	if (seq != vss_cbt_seq(cbt) + 1)
		return -EINVAL;
	iv = vss_cbt_interval_alloc();
	if (!iv)
		return -ENOMEM;
	vss_cbt_advance(cbt, iv);
	return 0;
}

/**
 * vss_cbt_trim_history - drop the oldest intervals beyond the bounds
 * @cbt: the generation; the caller holds vss_ctl_lock
 *
 * Keeps at most VSS_CBT_MAX_INTERVALS intervals and, as far as dropping
 * old ones helps, at most VSS_CBT_HISTORY_BYTES of maps. The current
 * interval always stays.
 *
 * Return: true if something was dropped (the oldest point moved).
 */
bool vss_cbt_trim_history(struct vss_cbt *cbt)
{
	struct vss_cbt_interval *iv;
	bool dropped = false;

	lockdep_assert_held(&vss_ctl_lock);
	mutex_lock(&cbt->lock);
	while (cbt->nr_intervals > 1 &&
	       (cbt->nr_intervals > VSS_CBT_MAX_INTERVALS ||
		(u64)atomic_long_read(&cbt->nr_pages) * PAGE_SIZE >
		VSS_CBT_HISTORY_BYTES)) {
		iv = list_first_entry(&cbt->intervals, struct vss_cbt_interval,
				      node);
		list_del(&iv->node);
		WRITE_ONCE(cbt->nr_intervals, cbt->nr_intervals - 1);
		vss_cbt_interval_free(cbt, iv);
		dropped = true;
	}
	mutex_unlock(&cbt->lock);
	return dropped;
}

/* The interval numbered @seq, or NULL. The caller holds cbt->lock or
 * vss_ctl_lock.
 */
struct vss_cbt_interval *vss_cbt_find_interval(struct vss_cbt *cbt, u64 seq)
{
	struct vss_cbt_interval *iv;

	list_for_each_entry(iv, &cbt->intervals, node)
		if (iv->seq == seq)
			return iv;
	return NULL;
}

static int vss_cbt_mark_blocks(struct vss_cbt_map *map, struct vss_cbt *cbt,
			       u64 first_byte, u64 end_byte, gfp_t gfp)
{
	u64 first = first_byte >> cbt->block_shift;
	u64 last;

	end_byte = min(end_byte, cbt->size);
	if (first_byte >= end_byte)
		return 0;
	last = (end_byte - 1) >> cbt->block_shift;
	return vss_cbt_map_set(map, first, last, gfp, &cbt->nr_pages);
}

/**
 * vss_cbt_mark_sectors - the write path: mark sectors @from .. @to - 1
 * @cbt: the generation, read while the write is admitted
 * @from: first sector, relative to the origin
 * @to: end sector, exclusive
 * @gfp: allocation flags (GFP_NOWAIT for REQ_NOWAIT writes)
 *
 * Return: 0 or -ENOMEM.
 */
int vss_cbt_mark_sectors(struct vss_cbt *cbt, sector_t from, sector_t to,
			 gfp_t gfp)
{
	struct vss_cbt_interval *iv = READ_ONCE(cbt->current_iv);

	return vss_cbt_mark_blocks(&iv->map, cbt, (u64)from << SECTOR_SHIFT,
				   (u64)to << SECTOR_SHIFT, gfp);
}

/**
 * vss_cbt_mark_bytes - mark a byte range in the current interval
 * @cbt: the generation; the caller holds vss_ctl_lock
 * @offset: first byte
 * @length: bytes, at least one; the range must lie within the device
 * @gfp: allocation flags
 *
 * Return: 0 or -ENOMEM (then part of the range may be marked).
 */
int vss_cbt_mark_bytes(struct vss_cbt *cbt, u64 offset, u64 length,
		       gfp_t gfp)
{
	lockdep_assert_held(&vss_ctl_lock);
	return vss_cbt_mark_blocks(&cbt->current_iv->map, cbt, offset,
				   offset + length, gfp);
}

/**
 * vss_cbt_mark_image_write - a snapshot's image is about to be written
 * @origin: the snapshot's origin; the caller holds vss_image_srcu
 * @generation: the generation of the snapshot's point
 * @seq: the snapshot's point
 * @from: first sector written
 * @to: end sector, exclusive
 *
 * A backup taken from the written image differs from the origin at that
 * point, so the blocks count as changed both in the interval ending at the
 * point and in the one starting there. Nothing to do when the snapshot's
 * generation is over. When a mark cannot be recorded, the generation
 * ends (see vss_origin_cbt_broken()).
 */
void vss_cbt_mark_image_write(struct vss_origin *origin,
			      const uuid_t *generation, u64 seq,
			      sector_t from, sector_t to)
{
	struct vss_cbt *cbt = READ_ONCE(origin->cbt);
	struct vss_cbt_interval *iv;
	int ret = 0;

	if (!cbt || !uuid_equal(&cbt->generation, generation))
		return;
	mutex_lock(&cbt->lock);
	list_for_each_entry(iv, &cbt->intervals, node) {
		if (iv->seq + 1 != seq && iv->seq != seq)
			continue;
		ret |= vss_cbt_mark_blocks(&iv->map, cbt,
					   (u64)from << SECTOR_SHIFT,
					   (u64)to << SECTOR_SHIFT, GFP_NOIO);
	}
	mutex_unlock(&cbt->lock);
	if (ret)
		vss_origin_cbt_broken(origin, cbt);
}

/**
 * vss_cbt_merge_current - add @src's current interval to @dst's
 * @dst: the generation that goes on
 * @src: a generation nobody marks any more
 *
 * Return: 0 or -ENOMEM.
 */
int vss_cbt_merge_current(struct vss_cbt *dst, struct vss_cbt *src)
{
	return vss_cbt_map_or(&dst->current_iv->map, &src->current_iv->map,
			      GFP_KERNEL, &dst->nr_pages);
}

void vss_cbt_restore_free(struct vss_cbt_restore *restore)
{
	if (!restore)
		return;
	vss_cbt_free(restore->saved);
	kfree(restore);
}

int vss_cbt_cursor_init(struct vss_cbt_cursor *cur)
{
	memset(cur, 0, sizeof(*cur));
	cur->page_index = ULONG_MAX;
	cur->scratch = (unsigned long *)__get_free_page(GFP_KERNEL);
	cur->capacity = VSS_CBT_MAX_INTERVALS + 1;
	cur->ivs = kvmalloc_array(cur->capacity, sizeof(*cur->ivs),
				  GFP_KERNEL);
	if (!cur->scratch || !cur->ivs) {
		vss_cbt_cursor_release(cur);
		return -ENOMEM;
	}
	return 0;
}

void vss_cbt_cursor_release(struct vss_cbt_cursor *cur)
{
	free_page((unsigned long)cur->scratch);
	kvfree(cur->ivs);
	cur->scratch = NULL;
	cur->ivs = NULL;
}

/**
 * vss_cbt_cursor_bind - point @cur at the intervals @lo .. @hi of @cbt
 * @cur: the cursor; its position is kept
 * @cbt: the generation; the caller keeps its intervals alive (holds
 *       vss_ctl_lock, or owns a detached generation) while it uses @cur
 * @lo: first interval
 * @hi: last interval, inclusive
 */
void vss_cbt_cursor_bind(struct vss_cbt_cursor *cur, struct vss_cbt *cbt,
			 u64 lo, u64 hi)
{
	struct vss_cbt_interval *iv;

	cur->nr = 0;
	cur->page_index = ULONG_MAX;
	list_for_each_entry(iv, &cbt->intervals, node) {
		if (iv->seq >= lo && iv->seq <= hi &&
		    !WARN_ON_ONCE(cur->nr == cur->capacity))
			cur->ivs[cur->nr++] = iv;
	}
}

/* Loads the union of page @index into the scratch page. */
static void vss_cbt_cursor_load(struct vss_cbt_cursor *cur,
				unsigned long index)
{
	unsigned int i;

	if (cur->page_index == index)
		return;
	bitmap_zero(cur->scratch, VSS_CBT_MAP_PAGE_BITS);
	for (i = 0; i < cur->nr; i++) {
		unsigned long *page = vss_cbt_map_page(&cur->ivs[i]->map,
						       index);

		if (page)
			bitmap_or(cur->scratch, cur->scratch, page,
				  VSS_CBT_MAP_PAGE_BITS);
	}
	cur->page_index = index;
}

/* The first page number >= @index that any interval has, or ULONG_MAX. */
static unsigned long vss_cbt_cursor_next_page(struct vss_cbt_cursor *cur,
					      unsigned long index)
{
	unsigned long next = ULONG_MAX;
	unsigned int i;

	for (i = 0; i < cur->nr; i++)
		next = min(next, vss_cbt_map_next_page(&cur->ivs[i]->map,
						       index));
	return next;
}

/* The first set block >= @pos of the union, or @limit. */
static u64 vss_cbt_find_set(struct vss_cbt_cursor *cur, u64 pos, u64 limit)
{
	while (pos < limit) {
		unsigned long index = pos / VSS_CBT_MAP_PAGE_BITS;
		unsigned long next, bit;

		next = vss_cbt_cursor_next_page(cur, index);
		if (next == ULONG_MAX)
			return limit;
		if (next != index) {
			index = next;
			pos = (u64)index * VSS_CBT_MAP_PAGE_BITS;
		}
		vss_cbt_cursor_load(cur, index);
		bit = find_next_bit(cur->scratch, VSS_CBT_MAP_PAGE_BITS,
				    pos % VSS_CBT_MAP_PAGE_BITS);
		if (bit < VSS_CBT_MAP_PAGE_BITS)
			return min((u64)index * VSS_CBT_MAP_PAGE_BITS + bit,
				   limit);
		pos = (u64)(index + 1) * VSS_CBT_MAP_PAGE_BITS;
	}
	return limit;
}

/* The first clear block >= @pos of the union, or @limit. */
static u64 vss_cbt_find_clear(struct vss_cbt_cursor *cur, u64 pos, u64 limit)
{
	while (pos < limit) {
		unsigned long index = pos / VSS_CBT_MAP_PAGE_BITS;
		unsigned long bit;

		if (vss_cbt_cursor_next_page(cur, index) != index)
			return pos;	/* no interval has this page */
		vss_cbt_cursor_load(cur, index);
		bit = find_next_zero_bit(cur->scratch, VSS_CBT_MAP_PAGE_BITS,
					 pos % VSS_CBT_MAP_PAGE_BITS);
		if (bit < VSS_CBT_MAP_PAGE_BITS)
			return min((u64)index * VSS_CBT_MAP_PAGE_BITS + bit,
				   limit);
		pos = (u64)(index + 1) * VSS_CBT_MAP_PAGE_BITS;
	}
	return limit;
}

/**
 * vss_cbt_next_run - the next run of changed blocks at or after the cursor
 * @cbt: the generation the cursor is bound to
 * @cur: the cursor, advanced past the run
 * @first: receives the run's first block
 * @count: receives its number of blocks
 *
 * Return: false when there is no run left.
 */
bool vss_cbt_next_run(struct vss_cbt *cbt, struct vss_cbt_cursor *cur,
		      u64 *first, u64 *count)
{
	u64 start = vss_cbt_find_set(cur, cur->pos, cbt->nr_blocks);
	u64 end;

	if (start >= cbt->nr_blocks) {
		cur->pos = cbt->nr_blocks;
		return false;
	}
	end = vss_cbt_find_clear(cur, start + 1, cbt->nr_blocks);
	*first = start;
	*count = end - start;
	cur->pos = end;
	return true;
}
