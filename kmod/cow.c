// SPDX-License-Identifier: GPL-2.0
/*
 * Copy-on-write and the exception chain.
 *
 * The copy target is the newest healthy snapshot T. A chunk is covered,
 * needing no copy, when it is in the table of T or of a snapshot newer
 * than T (newer ones can only be failed ones, whose tables still hold
 * valid data). When saving into T fails (storage full, storage or origin
 * I/O error), T fails and the copy is retried for the next healthy
 * snapshot, so that older snapshots whose data can still be saved keep
 * working.
 *
 * A chunk being copied, or read from the origin by an image, is pending:
 * concurrent first writes wait for the copy instead of copying twice, and
 * the write that triggered a copy waits for image reads of the old data
 * to finish before it may overwrite them.
 */
#include "vss.h"
#include "cow.h"
#include "origin.h"
#include "snapshot.h"
#include "store.h"
#include "chunk_io.h"
#include <linux/slab.h>

bool vss_cow_covered(struct vss_chain *chain, u64 chunk)
{
	unsigned int i;

	for (i = chain->nr; i-- > 0;) {
		struct vss_snapshot *snap = chain->snap[i];

		if (xa_load(&snap->exceptions, chunk))
			return true;
		if (!vss_snapshot_failed(snap))
			return false;
	}
	return true;	/* every snapshot failed: nothing left to preserve */
}

static struct vss_snapshot *vss_cow_target(struct vss_chain *chain)
{
	unsigned int i;

	for (i = chain->nr; i-- > 0;)
		if (!vss_snapshot_failed(chain->snap[i]))
			return chain->snap[i];
	return NULL;
}

/**
 * vss_chain_lookup - where chunk @chunk of @snap lives
 * @chain: the origin's chain
 * @snap: a snapshot in @chain
 * @chunk: chunk number
 *
 * Return: the exception (a packed store id and slot), or 0 when the chunk
 * still reads from the origin.
 */
unsigned long vss_chain_lookup(struct vss_chain *chain,
			       struct vss_snapshot *snap, u64 chunk)
{
	unsigned int i;
	bool found = false;

	for (i = 0; i < chain->nr; i++) {
		void *entry;

		if (chain->snap[i] == snap)
			found = true;
		if (!found)
			continue;
		entry = xa_load(&chain->snap[i]->exceptions, chunk);
		if (entry)
			return xa_to_value(entry);
	}
	return 0;
}

static struct vss_pending *vss_pending_find(struct vss_origin *origin,
					    u64 chunk)
{
	struct vss_pending *pending;

	hash_for_each_possible(origin->pending, pending, node, chunk)
		if (pending->chunk == chunk)
			return pending;
	return NULL;
}

/* Gets the pending entry of @chunk, using @spare if there is none yet. */
static struct vss_pending *vss_pending_get_locked(struct vss_origin *origin,
						  u64 chunk,
						  struct vss_pending **spare)
{
	struct vss_pending *pending = vss_pending_find(origin, chunk);

	if (!pending) {
		pending = *spare;
		*spare = NULL;
		pending->chunk = chunk;
		pending->users = 0;
		pending->readers = 0;
		pending->copying = false;
		hash_add(origin->pending, &pending->node, chunk);
	}
	pending->users++;
	return pending;
}

static void vss_pending_put_locked(struct vss_pending *pending)
{
	if (--pending->users)
		return;
	hash_del(&pending->node);
	kfree(pending);
}

static struct vss_pending *vss_pending_alloc(void)
{
	return kmalloc(sizeof(struct vss_pending), GFP_NOIO | __GFP_NOFAIL);
}

/* Saves @buf, the chunk's old data, into the newest healthy snapshot. */
static void vss_cow_save(struct vss_chain *chain, u64 chunk,
			 struct vss_chunk_buf *buf)
{
	struct vss_snapshot *target;

	while ((target = vss_cow_target(chain)) &&
	       !vss_cow_covered(chain, chunk)) {
		struct vss_store *store = target->set->store;
		u32 slot;
		int ret;

		ret = vss_store_alloc_slot(store, &slot);
		if (ret) {
			vss_snapshot_fail(target, ENOSPC,
					  "diff storage is full");
			continue;
		}
		ret = vss_store_rw_buf(store, slot, buf, true);
		if (ret) {
			vss_store_free_exc(vss_exc_pack(store, slot));
			vss_snapshot_fail(target, -ret,
					  "cannot write to the diff storage");
			continue;
		}
		ret = xa_insert(&target->exceptions, chunk,
				xa_mk_value(vss_exc_pack(store, slot)),
				GFP_NOIO);
		if (ret) {
			vss_store_free_exc(vss_exc_pack(store, slot));
			vss_snapshot_fail(target, -ret,
					  "out of memory for the chunk map");
			continue;
		}
		return;
	}
}

static void vss_cow_copy(struct vss_origin *origin, struct vss_chain *chain,
			 u64 chunk)
{
	sector_t sector = chunk << (origin->chunk_shift - SECTOR_SHIFT);
	unsigned int bytes = min_t(u64, 1U << origin->chunk_shift,
				   (u64)(origin->nr_sectors - sector) <<
				   SECTOR_SHIFT);
	struct vss_snapshot *target;
	struct vss_chunk_buf *buf;
	int ret;

	buf = vss_chunk_buf_alloc(bytes);
	if (!buf) {
		while ((target = vss_cow_target(chain)))
			vss_snapshot_fail(target, ENOMEM,
					  "out of memory for copy-on-write");
		return;
	}
	ret = vss_bdev_rw(origin->handle.bdev, sector, buf, bytes, false);
	if (ret) {
		/* The old data is unknown: no snapshot can hold it. */
		while ((target = vss_cow_target(chain)) &&
		       !vss_cow_covered(chain, chunk))
			vss_snapshot_fail(target, -ret,
					  "cannot read the origin to preserve it");
	} else {
		vss_cow_save(chain, chunk, buf);
	}
	vss_chunk_buf_free(buf);
}

/**
 * vss_cow_chunk - preserve @chunk of @origin before it is overwritten
 * @origin: the origin
 * @chunk: chunk number
 *
 * Called for an admitted write, so the chain cannot change meanwhile.
 * Never fails: what cannot be preserved fails the snapshots that needed
 * it, and the write goes on.
 */
void vss_cow_chunk(struct vss_origin *origin, u64 chunk)
{
	struct vss_pending *spare = vss_pending_alloc();
	struct vss_pending *pending;
	struct vss_chain *chain;

	/* Admitted writes pin the chain; see struct vss_chain. */
	chain = rcu_dereference_raw(origin->chain);

	spin_lock(&origin->cow_lock);
	for (;;) {
		pending = vss_pending_find(origin, chunk);
		if (!pending || !pending->copying)
			break;
		/* Another write is copying it: wait, then look again. */
		pending->users++;
		spin_unlock(&origin->cow_lock);
		wait_event(origin->cow_wait, !READ_ONCE(pending->copying));
		spin_lock(&origin->cow_lock);
		vss_pending_put_locked(pending);
	}
	if (!chain || vss_cow_covered(chain, chunk)) {
		spin_unlock(&origin->cow_lock);
		kfree(spare);
		return;
	}
	pending = vss_pending_get_locked(origin, chunk, &spare);
	WRITE_ONCE(pending->copying, true);
	spin_unlock(&origin->cow_lock);

	vss_cow_copy(origin, chain, chunk);

	spin_lock(&origin->cow_lock);
	WRITE_ONCE(pending->copying, false);
	wake_up_all(&origin->cow_wait);
	/* Image reads that began on the origin must see the old data. */
	while (pending->readers) {
		spin_unlock(&origin->cow_lock);
		wait_event(origin->cow_wait, !READ_ONCE(pending->readers));
		spin_lock(&origin->cow_lock);
	}
	vss_pending_put_locked(pending);
	spin_unlock(&origin->cow_lock);
	kfree(spare);
}

/**
 * vss_pending_reader_get - start reading chunk @chunk of @snap
 * @origin: @snap's origin
 * @snap: the snapshot being read, its chain held under vss_image_srcu
 * @chunk: chunk number
 * @exc: receives the exception if the chunk lives in a store
 *
 * Return: NULL when *@exc names where to read; otherwise the chunk reads
 * from the origin and is pinned there until vss_pending_reader_put().
 */
struct vss_pending *vss_pending_reader_get(struct vss_origin *origin,
					   struct vss_snapshot *snap,
					   u64 chunk, unsigned long *exc)
{
	struct vss_pending *spare = vss_pending_alloc();
	struct vss_pending *pending = NULL;
	struct vss_chain *chain;

	spin_lock(&origin->cow_lock);
	chain = srcu_dereference(origin->chain, &vss_image_srcu);
	*exc = vss_chain_lookup(chain, snap, chunk);
	if (!*exc) {
		pending = vss_pending_get_locked(origin, chunk, &spare);
		pending->readers++;
	}
	spin_unlock(&origin->cow_lock);
	kfree(spare);
	return pending;
}

void vss_pending_reader_put(struct vss_origin *origin,
			    struct vss_pending *pending)
{
	spin_lock(&origin->cow_lock);
	if (!--pending->readers)
		wake_up_all(&origin->cow_wait);
	vss_pending_put_locked(pending);
	spin_unlock(&origin->cow_lock);
}
