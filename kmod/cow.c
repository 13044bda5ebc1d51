// SPDX-License-Identifier: GPL-2.0
/*
 * Copy-on-write and the exception chain.
 *
 * The copy target is the newest healthy snapshot T. A chunk is covered,
 * needing no copy, when it is in the table of T or of a snapshot newer
 * than T (newer ones can only be failed ones, whose tables still hold
 * valid data, or one being deleted, whose table moves to the snapshot
 * below it). When saving into T fails (storage full, storage or origin
 * I/O error), T fails and the copy is retried for the next healthy
 * snapshot, so that older snapshots whose data can still be saved keep
 * working.
 *
 * A chunk being copied is pending: concurrent first writes wait for the
 * copy instead of copying twice.
 *
 * Image reads of chunks that still live on the origin are pinned there
 * (struct vss_read_pin): a write may change a pinned chunk only once the
 * pin is gone, whether it copied the chunk or found it copied already.
 * A read adds its pin before it looks up where its chunks live, and a
 * write looks for pins after it has seen (or made) the chunk's exception,
 * each with a full barrier in between, so that one of the two sees the
 * other: either the read finds the exception and reads the store, or the
 * write finds the pin and waits. A pin covers a run of chunks, so a read
 * pins once, with no allocation, and unpins from its completion.
 */
#include "vss.h"
#include "cow.h"
#include "origin.h"
#include "snapshot.h"
#include "store.h"
#include "chunk_io.h"
#include <linux/completion.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

bool vss_cow_covered(struct vss_chain *chain, u64 chunk)
{
	unsigned int i;

	for (i = chain->nr; i-- > 0;) {
		struct vss_snapshot *snap = chain->snap[i];

		if (xa_load(&snap->exceptions, chunk))
			return true;
		if (vss_snapshot_takes_copies(snap))
			return false;
	}
	return true;	/* every snapshot failed: nothing left to preserve */
}

static struct vss_snapshot *vss_cow_target(struct vss_chain *chain)
{
	unsigned int i;

	for (i = chain->nr; i-- > 0;)
		if (vss_snapshot_takes_copies(chain->snap[i]))
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

/*
 * A run: consecutive chunks of one write that still need a copy, copied
 * together. It is read from the origin with one request and written to
 * the store with one request per group of consecutive slots, where a copy
 * per chunk takes two requests per chunk. Its buffer holds at most
 * VSS_COW_RUN_BYTES (the largest chunk size) and VSS_COW_RUN_CHUNKS
 * chunks, which bounds the arrays a run keeps on the stack. A run covers
 * only chunks its write touches, so its buffer exceeds the write's own
 * data by less than two chunks. It takes only memory that is free without
 * reclaim: without it at hand, a run is copied chunk by chunk.
 */
#define VSS_COW_RUN_BYTES	VSS_MAX_CHUNK_SIZE
#define VSS_COW_RUN_CHUNKS	64

static unsigned int vss_cow_run_max(struct vss_origin *origin)
{
	return clamp(VSS_COW_RUN_BYTES >> origin->chunk_shift, 1,
		     VSS_COW_RUN_CHUNKS);
}

/*
 * Writes the first @nr of the chunks at @index in @buf (run positions,
 * increasing) to @slot of @store, one request per stretch that is
 * consecutive both in the run and in the store.
 *
 * Return: how many were written, all of them unless a request failed,
 * whose error is then in @err.
 */
static unsigned int vss_cow_write_slots(struct vss_store *store,
					struct vss_chunk_buf *buf,
					const u8 *index, const u32 *slot,
					unsigned int nr, int *err)
{
	unsigned int i, j;

	for (i = 0; i < nr; i = j) {
		size_t skip = (size_t)index[i] << store->chunk_shift;
		unsigned int bytes;

		for (j = i + 1; j < nr; j++)
			if (index[j] != index[j - 1] + 1 ||
			    slot[j] != slot[j - 1] + 1)
				break;
		bytes = min_t(size_t, (size_t)(j - i) << store->chunk_shift,
			      buf->bytes - skip);
		/*
		 * A copy's: never waits for a frozen filesystem (see
		 * vss_cow_save()), and bypasses a file store's page cache.
		 */
		*err = vss_store_rw_bvec(store, slot[i], buf->bvec,
					 buf->nr_pages, skip, bytes, true, true);
		if (*err)
			return i;
	}
	return nr;
}

/*
 * Saves @buf, the old data of the @nr chunks from @first on (one chunk, or
 * a run), into the newest healthy snapshot. What a failure does is what
 * it would do to the chunks saved one by one: the chunks before it stay
 * in that snapshot, the failure fails it, and the chunks from there on go
 * to the next one.
 */
static void vss_cow_save(struct vss_chain *chain, u64 first, unsigned int nr,
			 struct vss_chunk_buf *buf)
{
	u32 slot[VSS_COW_RUN_CHUNKS];
	u8 index[VSS_COW_RUN_CHUNKS];
	struct vss_snapshot *target;

	/* index[] holds run positions in a byte. */
	BUILD_BUG_ON(VSS_COW_RUN_CHUNKS > 256);
	while ((target = vss_cow_target(chain))) {
		struct vss_store *store = target->set->store;
		int alloc_err = 0, write_err = 0, insert_err = 0;
		unsigned int i, n = 0, written;

		for (i = 0; i < nr; i++) {
			if (vss_cow_covered(chain, first + i))
				continue;
			alloc_err = vss_store_alloc_slot(store, &slot[n], true);
			if (alloc_err)
				break;
			index[n++] = i;
		}
		if (!n && !alloc_err)
			return;
		written = vss_cow_write_slots(store, buf, index, slot, n,
					      &write_err);
		/* Each slot holds its old data now: publish (see the top). */
		for (i = 0; i < written; i++) {
			void *exc = xa_mk_value(vss_exc_pack(store, slot[i]));

			insert_err = xa_insert(&target->exceptions,
					       first + index[i], exc, GFP_NOIO);
			if (insert_err)
				break;
		}
		/* Those inserted stay, valid even in a failed snapshot. */
		for (; i < n; i++)
			vss_store_free_exc(vss_exc_pack(store, slot[i]));
		/*
		 * A store's frozen filesystem would hold the origin's writes
		 * until the thaw: the snapshot fails instead.
		 */
		if (insert_err)
			vss_snapshot_fail(target, -insert_err,
					  "out of memory for the chunk map");
		else if (vss_store_freezable(store) &&
			 (write_err == -EBUSY || alloc_err == -EBUSY))
			vss_snapshot_fail(target, EBUSY,
					  "the diff storage's filesystem is frozen");
		else if (write_err)
			vss_snapshot_fail(target, -write_err,
					  "cannot write to the diff storage");
		else if (alloc_err == -ENOSPC || alloc_err == -EDQUOT)
			vss_snapshot_fail(target, -alloc_err,
					  vss_store_full_reason(store));
		else if (alloc_err == -ENOMEM)
			vss_snapshot_fail(target, ENOMEM,
					  "out of memory for a diff storage slot");
		else if (alloc_err)
			vss_snapshot_fail(target, -alloc_err,
					  "cannot grow the diff storage");
		else
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

	buf = vss_chunk_buf_alloc(bytes, GFP_NOIO);
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
		vss_cow_save(chain, chunk, 1, buf);
	}
	vss_chunk_buf_free(buf);
}

/* Waits until no image read pins a chunk of [@first, @last] on the origin. */
static void vss_read_pins_wait(struct vss_origin *origin, u64 first, u64 last)
{
	/* The exceptions are in; now look for pins (see the top of the file). */
	smp_mb();
	wait_event(origin->cow_wait, !vss_read_pinned(origin, first, last));
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
	/* Admitted writes pin the chain; see struct vss_chain. */
	struct vss_chain *chain = rcu_dereference_raw(origin->chain);
	struct vss_pending *spare = NULL;
	struct vss_pending *pending;

	/*
	 * Copied already: an exception is published only once its slot holds
	 * the old data (vss_cow_save()), so seeing it needs no lock.
	 */
	if (!chain || vss_cow_covered(chain, chunk))
		goto wait_pins;
	/* Most likely still needed when the lock is taken. */
	spare = vss_pending_alloc();

	spin_lock(&origin->cow_lock);
	while ((pending = vss_pending_find(origin, chunk)) &&
	       pending->copying) {
		/* Another write is copying it: wait, then look again. */
		pending->users++;
		spin_unlock(&origin->cow_lock);
		wait_event(origin->cow_wait, !READ_ONCE(pending->copying));
		spin_lock(&origin->cow_lock);
		vss_pending_put_locked(pending);
	}
	if (vss_cow_covered(chain, chunk)) {
		spin_unlock(&origin->cow_lock);
		goto wait_pins;
	}
	pending = vss_pending_get_locked(origin, chunk, &spare);
	WRITE_ONCE(pending->copying, true);
	spin_unlock(&origin->cow_lock);

	vss_cow_copy(origin, chain, chunk);

	spin_lock(&origin->cow_lock);
	WRITE_ONCE(pending->copying, false);
	wake_up_all(&origin->cow_wait);
	vss_pending_put_locked(pending);
	spin_unlock(&origin->cow_lock);
wait_pins:
	kfree(spare);
	/* Image reads that began on the origin must see the old data. */
	vss_read_pins_wait(origin, chunk, chunk);
}

/*
 * Claims chunks from @first on for copying, as vss_cow_chunk() claims one,
 * up to @nr of them: stops at the first one that is covered or being
 * copied. Returns how many it claimed. @spare is the caller's pool of
 * pending entries: its empty places are filled before the lock is taken,
 * and those the claims use are emptied. Not inlined, so that its work
 * leaves nothing on the stack under the copy's I/O.
 */
static noinline_for_stack unsigned int
vss_cow_claim(struct vss_origin *origin, struct vss_chain *chain, u64 first,
	      unsigned int nr, struct vss_pending **spare)
{
	unsigned int i, got;

	/* Most likely all still needed when the lock is taken. */
	for (i = 0; i < nr; i++)
		if (!spare[i])
			spare[i] = vss_pending_alloc();

	spin_lock(&origin->cow_lock);
	for (got = 0; got < nr; got++) {
		struct vss_pending *pending = vss_pending_find(origin,
							       first + got);

		if ((pending && pending->copying) ||
		    vss_cow_covered(chain, first + got))
			break;
		pending = vss_pending_get_locked(origin, first + got,
						 &spare[got]);
		WRITE_ONCE(pending->copying, true);
	}
	spin_unlock(&origin->cow_lock);
	return got;
}

/*
 * Ends the copies of chunks @first .. @first + @nr - 1 that
 * vss_cow_claim() claimed, and wakes the writes waiting for them. Their
 * entries are found again: nobody else takes a chunk being copied.
 */
static void vss_cow_release(struct vss_origin *origin, u64 first,
			    unsigned int nr)
{
	unsigned int i;

	spin_lock(&origin->cow_lock);
	for (i = 0; i < nr; i++) {
		struct vss_pending *pending = vss_pending_find(origin,
							       first + i);

		WRITE_ONCE(pending->copying, false);
		vss_pending_put_locked(pending);
	}
	wake_up_all(&origin->cow_wait);
	spin_unlock(&origin->cow_lock);
}

/*
 * Copies the @nr claimed chunks from @first on. A run whose buffer or read
 * fails is copied chunk by chunk, so that it never fails a snapshot that
 * the chunks copied one by one would not.
 */
static void vss_cow_copy_run(struct vss_origin *origin,
			     struct vss_chain *chain, u64 first,
			     unsigned int nr)
{
	sector_t sector = first << (origin->chunk_shift - SECTOR_SHIFT);
	unsigned int bytes = min_t(u64, (u64)nr << origin->chunk_shift,
				   (u64)(origin->nr_sectors - sector) <<
				   SECTOR_SHIFT);
	struct vss_chunk_buf *buf;
	unsigned int i;

	buf = vss_chunk_buf_alloc(bytes, (GFP_NOIO & ~__GFP_DIRECT_RECLAIM) |
				  __GFP_NOWARN);
	if (buf && !vss_bdev_rw(origin->handle.bdev, sector, buf, bytes,
				false)) {
		vss_cow_save(chain, first, nr, buf);
		vss_chunk_buf_free(buf);
		return;
	}
	vss_chunk_buf_free(buf);
	for (i = 0; i < nr; i++)
		vss_cow_copy(origin, chain, first + i);
}

/**
 * vss_cow_run - preserve chunks @first .. @first + @nr - 1 of @origin
 * @origin: the origin
 * @first: first chunk
 * @nr: at most vss_cow_run_max() chunks
 *
 * As vss_cow_chunk() for each, copying those that still need it as runs.
 */
static void vss_cow_run(struct vss_origin *origin, u64 first,
			unsigned int nr)
{
	/* Admitted writes pin the chain; see struct vss_chain. */
	struct vss_chain *chain = rcu_dereference_raw(origin->chain);
	struct vss_pending *spare[VSS_COW_RUN_CHUNKS] = {};
	unsigned int got, i;

	while (chain && nr > 1) {
		got = 0;
		if (!vss_cow_covered(chain, first))
			got = vss_cow_claim(origin, chain, first, nr, spare);
		if (got) {
			vss_cow_copy_run(origin, chain, first, got);
			vss_cow_release(origin, first, got);
			vss_read_pins_wait(origin, first, first + got - 1);
		} else {
			/* Covered, or being copied: as a single write. */
			vss_cow_chunk(origin, first);
			got = 1;
		}
		first += got;
		nr -= got;
	}
	while (nr--)
		vss_cow_chunk(origin, first++);
	for (i = 0; i < ARRAY_SIZE(spare); i++)
		kfree(spare[i]);
}

/* Copies of one write's chunks in flight at once, at most. */
#define VSS_COW_PARALLEL	32

/* The copies of a write's chunks that other workers make for it. */
struct vss_cow_batch {
	atomic_t left;
	struct completion done;
};

struct vss_cow_job {
	struct work_struct work;
	struct vss_origin *origin;
	u64 first;
	unsigned int nr;
	struct vss_cow_batch *batch;
};

static void vss_cow_job_work(struct work_struct *work)
{
	struct vss_cow_job *job = container_of(work, struct vss_cow_job, work);
	struct vss_cow_batch *batch = job->batch;
	/* A write waits for this copy: see vss_write_cow_work(). */
	unsigned int noio = memalloc_noio_save();

	vss_cow_run(job->origin, job->first, job->nr);
	memalloc_noio_restore(noio);
	vss_origin_defer_put(job->origin);
	/* Whoever drops the last count, maybe the caller, ends the wait. */
	if (atomic_dec_and_test(&batch->left))
		complete(&batch->done);
}

/* Drops the caller's count of @batch and waits for the workers' copies. */
static void vss_cow_batch_wait(struct vss_cow_batch *batch)
{
	if (!atomic_dec_and_test(&batch->left))
		wait_for_completion_io(&batch->done);
	atomic_set(&batch->left, 1);
	reinit_completion(&batch->done);
}

/**
 * vss_cow_chunks - preserve chunks @first .. @last of @origin
 * @origin: the origin
 * @first: first chunk
 * @last: last chunk, inclusive
 *
 * As vss_cow_chunk() for each. The chunks that still need a copy go as
 * runs (vss_cow_run()), up to VSS_COW_PARALLEL runs at once: a large
 * write's copies each wait for two synchronous I/Os, and one after the
 * other they would make it wait for all of them in turn. Only runs go to
 * other workers; chunks copied already cost the caller a lookup, as they
 * would without this. Each run handed over takes one of the origin's
 * deferred places, so that the copy buffers in use stay as bounded as the
 * writes waiting; the caller copies the runs it could not hand over
 * itself, as it does without memory for the jobs, and always copies one
 * of its own while the workers copy theirs.
 */
void vss_cow_chunks(struct vss_origin *origin, u64 first, u64 last)
{
	/* Admitted writes pin the chain; see struct vss_chain. */
	struct vss_chain *chain = rcu_dereference_raw(origin->chain);
	unsigned int run_max = vss_cow_run_max(origin);
	struct vss_cow_job *jobs = NULL;
	struct vss_cow_batch batch;
	unsigned int handed = 0, own_nr = 0, nr;
	u64 chunk, own = 0;

	if (!chain) {
		/* No copy to make, but image reads may still pin chunks. */
		for (chunk = first; chunk <= last; chunk++)
			vss_cow_chunk(origin, chunk);
		return;
	}
	if (last > first)
		jobs = kmalloc_array(VSS_COW_PARALLEL - 1, sizeof(*jobs),
				     GFP_NOIO | __GFP_NOWARN);
	/* The caller's own count: the batch cannot complete before it. */
	atomic_set(&batch.left, 1);
	init_completion(&batch.done);
	for (chunk = first; chunk <= last; chunk += nr) {
		/* Copied already, as in vss_cow_chunk(). */
		if (vss_cow_covered(chain, chunk)) {
			vss_read_pins_wait(origin, chunk, chunk);
			nr = 1;
			continue;
		}
		for (nr = 1; nr < run_max && chunk + nr <= last; nr++)
			if (vss_cow_covered(chain, chunk + nr))
				break;
		if (!own_nr) {
			own = chunk;
			own_nr = nr;
			continue;
		}
		if (!jobs || !vss_origin_defer_get(origin)) {
			vss_cow_run(origin, chunk, nr);
			continue;
		}
		jobs[handed] = (struct vss_cow_job){
			.origin = origin,
			.first = chunk,
			.nr = nr,
			.batch = &batch,
		};
		INIT_WORK(&jobs[handed].work, vss_cow_job_work);
		atomic_inc(&batch.left);
		queue_work(vss_cow_chunk_wq, &jobs[handed].work);
		if (++handed == VSS_COW_PARALLEL - 1) {
			vss_cow_run(origin, own, own_nr);
			own_nr = 0;
			vss_cow_batch_wait(&batch);
			handed = 0;
		}
	}
	if (own_nr)
		vss_cow_run(origin, own, own_nr);
	if (handed)
		vss_cow_batch_wait(&batch);
	kfree(jobs);
}

/*
 * Is [@start, @start + @nr) of @disk on @origin, fully (1), partly (-1)
 * or not at all (0)?
 */
static int vss_origin_overlap(struct vss_origin *origin, struct gendisk *disk,
			      sector_t start, sector_t nr)
{
	sector_t end = origin->start + origin->nr_sectors;

	if (origin->disk != disk || start >= end ||
	    start + nr <= origin->start)
		return 0;
	return start >= origin->start && start + nr <= end ? 1 : -1;
}

/**
 * vss_cow_keep_in_place - keep what new store room holds for older snapshots
 * @store: a store that lies on origins (see struct vss_store_ops.on_origin)
 * @disk: the disk it lies on
 * @sector: where slot @first_slot starts on @disk (absolute)
 * @first_slot: the first of @nr_slots slots at consecutive chunks of @disk
 * @nr_slots: how many
 *
 * A store that grows takes space that is free in its filesystem now, but
 * may not have been at the instant of a snapshot of the origin it lies
 * on: a file deleted since then reads, in that snapshot, from these very
 * sectors, and the store's writes are never copied. So before the room is
 * handed out, every chunk there that a snapshot still reads from the
 * origin (not covered, as copy-on-write says it) becomes an exception of
 * the newest healthy snapshot that points to the slot at that very chunk:
 * the slot keeps the old data where it is, with no I/O, and is never
 * handed out while a snapshot reads it. The other slots are free room.
 * Chunks of the store's file are written by nobody but the store, so no
 * copy of them races this; a snapshot that fails meanwhile keeps its
 * exceptions, valid for the older ones, as in vss_cow_save().
 *
 * The caller holds vss_ctl_lock, under which chains do not change, and has
 * published where the slots lie (image reads may use them at once).
 *
 * Return: how many slots were kept, or -EINVAL when the slots are not
 * chunks of the origins they lie on (another chunk size or alignment), or
 * lie on more than one origin with snapshots: the room cannot be used.
 */
int vss_cow_keep_in_place(struct vss_store *store, struct gendisk *disk,
			  sector_t sector, u32 first_slot, u32 nr_slots)
{
	unsigned int shift = store->chunk_shift - SECTOR_SHIFT;
	sector_t nr = (sector_t)nr_slots << shift;
	struct vss_origin *origin, *found = NULL;
	struct vss_chain *chain = NULL;
	unsigned long n;
	u64 chunk;
	u32 i;
	int kept = 0;

	lockdep_assert_held(&vss_ctl_lock);
	for (n = 0; (origin = vss_origin_nth(n)); n++) {
		struct vss_chain *c = rcu_dereference_protected(origin->chain,
					lockdep_is_held(&vss_ctl_lock));
		int overlap = vss_origin_overlap(origin, disk, sector, nr);

		if (!overlap || !c)
			continue;
		if (overlap < 0 || found ||
		    origin->chunk_shift != store->chunk_shift ||
		    (sector - origin->start) & ((1ULL << shift) - 1))
			return -EINVAL;
		found = origin;
		chain = c;
	}
	if (!found)
		return 0;
	chunk = (sector - found->start) >> shift;
	for (i = 0; i < nr_slots; i++, chunk++) {
		struct vss_snapshot *target;
		unsigned long exc;
		int ret;

		if (vss_cow_covered(chain, chunk))
			continue;
		target = vss_cow_target(chain);
		ret = vss_store_claim_slot(store, first_slot + i);
		if (WARN_ON_ONCE(ret))
			return ret;
		exc = vss_exc_pack(store, first_slot + i);
		ret = xa_insert(&target->exceptions, chunk, xa_mk_value(exc),
				GFP_KERNEL | __GFP_NOFAIL);
		if (ret) {
			/*
			 * A raw write to the device over the file copied the
			 * chunk meanwhile: it is covered, the slot is room.
			 */
			vss_store_free_exc(exc);
			continue;
		}
		kept++;
		cond_resched();
	}
	return kept;
}

/**
 * vss_read_pin_add - pin chunks [@first, @last] of @origin for an image read
 * @origin: the origin
 * @pin: the pin, owned by the read until vss_read_pin_del()
 * @first: first chunk
 * @last: last chunk
 *
 * Called before the read looks up where those chunks live.
 */
void vss_read_pin_add(struct vss_origin *origin, struct vss_read_pin *pin,
		      u64 first, u64 last)
{
	unsigned long flags;

	pin->first = first;
	pin->last = last;
	spin_lock_irqsave(&origin->read_pin_lock, flags);
	list_add(&pin->node, &origin->read_pins);
	atomic_inc(&origin->nr_read_pins);
	spin_unlock_irqrestore(&origin->read_pin_lock, flags);
	/* Pin, then look up; see the top of the file. */
	smp_mb();
}

/* Shrinks @pin to the chunks its read found on the origin. */
void vss_read_pin_narrow(struct vss_origin *origin, struct vss_read_pin *pin,
			 u64 first, u64 last)
{
	unsigned long flags;

	spin_lock_irqsave(&origin->read_pin_lock, flags);
	pin->first = first;
	pin->last = last;
	spin_unlock_irqrestore(&origin->read_pin_lock, flags);
}

/* The read is over (or reads nothing from the origin). Any context. */
void vss_read_pin_del(struct vss_origin *origin, struct vss_read_pin *pin)
{
	unsigned long flags;

	spin_lock_irqsave(&origin->read_pin_lock, flags);
	list_del(&pin->node);
	atomic_dec(&origin->nr_read_pins);
	spin_unlock_irqrestore(&origin->read_pin_lock, flags);
	if (wq_has_sleeper(&origin->cow_wait))
		wake_up_all(&origin->cow_wait);
}

/**
 * vss_read_pinned - does an image read pin a chunk of [@first, @last]?
 * @origin: the origin
 * @first: first chunk
 * @last: last chunk
 *
 * The caller has seen every chunk of the range covered by an exception,
 * then issued a full barrier.
 */
bool vss_read_pinned(struct vss_origin *origin, u64 first, u64 last)
{
	struct vss_read_pin *pin;
	unsigned long flags;
	bool pinned = false;

	if (!atomic_read(&origin->nr_read_pins))
		return false;
	spin_lock_irqsave(&origin->read_pin_lock, flags);
	list_for_each_entry(pin, &origin->read_pins, node) {
		if (pin->first <= last && first <= pin->last) {
			pinned = true;
			break;
		}
	}
	spin_unlock_irqrestore(&origin->read_pin_lock, flags);
	return pinned;
}
