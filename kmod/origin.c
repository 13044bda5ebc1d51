// SPDX-License-Identifier: GPL-2.0
/*
 * Origins: the devices whose writes vss intercepts, the write gate that
 * lets a snapshot set switch copy-on-write on at one instant, and the
 * write path itself.
 *
 * The write path costs, for a write to a chunk already preserved in the
 * newest snapshot, one walk of a short RCU list, one counter increment and
 * one xarray lookup per chunk. Only first writes after a snapshot leave
 * the submitter's context: they are deferred to vss_cow_wq, which copies
 * the old data and then sends the write on. Deferring (rather than copying
 * in place) is what makes stacked submitters safe: dm and md send bios
 * with current->bio_list set, where a synchronous read would deadlock.
 */
#include "vss.h"
#include "origin.h"
#include "snapshot.h"
#include "cow.h"
#include "intercept.h"
#include "image.h"
#include "event.h"
#include "cbt.h"
#include "cbt_witness.h"
#include <linux/blk-integrity.h>
#include <linux/delay.h>
#include <linux/blk-mq.h>
#include <linux/mempool.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

/*
 * Origins a write record holds in place. A bio through a whole disk can
 * cover any number of its partitions, so more go into an array of the
 * write's own; two partitions and their disk is the common worst case.
 */
#define VSS_WRITE_INLINE_ORIGINS	4

/* Origins; RCU for the write path, changed under vss_ctl_lock. */
static LIST_HEAD(vss_origins);

/* Ends or renews tracking of origins flagged in ->todo or removed. */
static void vss_origins_maintain(struct work_struct *work);
static DECLARE_WORK(vss_origins_work, vss_origins_maintain);

/* One intercepted write, from admission until its completion. */
struct vss_write {
	bio_end_io_t *end_io;		/* the submitter's, restored at end */
	void *private;
	struct bio *bio;
	struct work_struct work;	/* deferred copy-on-write */
	unsigned int nr_origins;
	/* @inline_origins, or a kmalloc'ed array the write owns */
	struct vss_origin **origins;
	struct vss_origin *inline_origins[VSS_WRITE_INLINE_ORIGINS];
};

static struct kmem_cache *vss_write_cache;
static mempool_t *vss_write_pool;

/*
 * Spare write records, a few per CPU. Every write admitted to an origin
 * takes a record and its completion gives it back; from the slab each
 * would be zeroed (init_on_alloc, on in Debian's kernels) and go through
 * the mempool and the slab's lock-free paths twice, which in the VM was
 * about 40% of what tracking adds to a write. Only its own CPU touches a
 * stock, with interrupts off, since writes complete in interrupt context.
 * Records that find their stock full go back to the pool, so the stocks
 * hold VSS_WRITE_STOCK records per CPU at most.
 */
#define VSS_WRITE_STOCK	16
struct vss_write_stock {
	unsigned int nr;
	struct vss_write *spare[VSS_WRITE_STOCK];
};

static DEFINE_PER_CPU(struct vss_write_stock, vss_write_stock);

static struct vss_write *vss_write_alloc(gfp_t gfp)
{
	struct vss_write_stock *stock;
	struct vss_write *write = NULL;
	unsigned long flags;

	local_irq_save(flags);
	stock = this_cpu_ptr(&vss_write_stock);
	if (stock->nr)
		write = stock->spare[--stock->nr];
	local_irq_restore(flags);
	return write ?: mempool_alloc(vss_write_pool, gfp);
}

static void vss_write_free(struct vss_write *write)
{
	struct vss_write_stock *stock;
	unsigned long flags;

	local_irq_save(flags);
	stock = this_cpu_ptr(&vss_write_stock);
	if (stock->nr < VSS_WRITE_STOCK) {
		stock->spare[stock->nr++] = write;
		write = NULL;
	}
	local_irq_restore(flags);
	if (write)
		mempool_free(write, vss_write_pool);
}

/* Gives the spare records back; no write is in flight any more. */
static void vss_write_stock_drain(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct vss_write_stock *stock = per_cpu_ptr(&vss_write_stock,
							    cpu);

		while (stock->nr)
			mempool_free(stock->spare[--stock->nr], vss_write_pool);
	}
}

/* The disk sectors @bio covers, whether or not it names a partition. */
static void vss_bio_range(struct bio *bio, sector_t *start, sector_t *end)
{
	*start = bio->bi_iter.bi_sector;
	/* Once remapped (a resubmitted remainder), the sector is the disk's. */
	if (!bio_flagged(bio, BIO_REMAPPED))
		*start += bio->bi_bdev->bd_start_sect;
	*end = *start + bio_sectors(bio);
}

/* Chunks of @origin that [start, end) (disk sectors) touches. */
static void vss_origin_chunks(struct vss_origin *origin, sector_t start,
			      sector_t end, u64 *first, u64 *last)
{
	unsigned int shift = origin->chunk_shift - SECTOR_SHIFT;
	sector_t from = max(start, origin->start) - origin->start;
	sector_t to = min(end, origin->start + origin->nr_sectors) -
		      origin->start;

	*first = from >> shift;
	*last = (to - 1) >> shift;
}

/*
 * Counts a write in on this CPU. Per-CPU, so that admitting and completing
 * writes never contend for one cache line; the caller then issues a full
 * barrier before it looks at the gate. See struct vss_origin for why a
 * count raised and lowered again by the admission itself must stay on
 * one CPU.
 */
static void vss_origin_admit(struct vss_origin *origin)
{
	this_cpu_inc(*origin->inflight);
}

static void vss_origin_unadmit(struct vss_origin *origin)
{
	/*
	 * RCU keeps @origin alive between the decrement and the wake-up:
	 * its owner waits for zero and then for a grace period.
	 */
	rcu_read_lock();
	this_cpu_dec(*origin->inflight);
	/* Counted out, then the drainer looked for: wq_has_sleeper(). */
	if (wq_has_sleeper(&origin->drain_wait))
		wake_up_all(&origin->drain_wait);
	rcu_read_unlock();
}

/*
 * Have all admitted writes completed? Exact once no write can be admitted
 * any more (gate closed, or origin unlisted after a grace period): the
 * sum of counts read one after the other is then never below the true
 * number (see struct vss_origin), and zero means zero.
 */
static bool vss_origin_drained(struct vss_origin *origin)
{
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(*per_cpu_ptr(origin->inflight, cpu));
	return !sum;
}

static void vss_write_endio(struct bio *bio)
{
	struct vss_write *write = bio->bi_private;
	struct vss_origin *inline_copy[VSS_WRITE_INLINE_ORIGINS];
	struct vss_origin **origins = write->origins;
	unsigned int i, nr = write->nr_origins;

	bio->bi_end_io = write->end_io;
	bio->bi_private = write->private;
	if (origins == write->inline_origins) {
		memcpy(inline_copy, origins, nr * sizeof(origins[0]));
		origins = inline_copy;
	}
	/* Given back while admitted, so that a drained origin has it back. */
	vss_write_free(write);
	for (i = 0; i < nr; i++)
		vss_origin_unadmit(origins[i]);
	if (origins != inline_copy)
		kfree(origins);
	if (bio->bi_end_io)
		bio->bi_end_io(bio);
}

static void vss_write_cow_work(struct work_struct *work)
{
	struct vss_write *write = container_of(work, struct vss_write, work);
	struct bio *bio = write->bio;
	sector_t start, end;
	unsigned int i, noio;

	/*
	 * The write is held here until its chunks are copied: reclaim from
	 * an allocation of the copy (a file store's page cache, a buffer)
	 * must not write back to an origin and wait for it.
	 */
	noio = memalloc_noio_save();
	vss_bio_range(bio, &start, &end);
	for (i = 0; i < write->nr_origins; i++) {
		struct vss_origin *origin = write->origins[i];
		u64 first, last;

		vss_origin_chunks(origin, start, end, &first, &last);
		vss_cow_chunks(origin, first, last);
	}
	for (i = 0; i < write->nr_origins; i++)
		vss_origin_defer_put(write->origins[i]);
	/* The origin may now change: every touched chunk is preserved. */
	vss_submit_bio_direct(bio);
	memalloc_noio_restore(noio);
}

static bool vss_origin_needs_cow(struct vss_origin *origin, sector_t start,
				 sector_t end)
{
	struct vss_chain *chain;
	u64 chunk, first, last;
	bool needed = false;

	rcu_read_lock();
	chain = rcu_dereference(origin->chain);
	if (chain && chain->nr) {
		vss_origin_chunks(origin, start, end, &first, &last);
		for (chunk = first; chunk <= last; chunk++) {
			if (!vss_cow_covered(chain, chunk)) {
				needed = true;
				break;
			}
		}
		if (!needed) {
			/*
			 * Copied already, but an image read that began
			 * before the copy may still read the old data from
			 * the origin: the copy-on-write path waits for it.
			 * Exceptions seen, then pins looked for; see cow.c.
			 */
			smp_mb();
			needed = vss_read_pinned(origin, first, last);
		}
	}
	rcu_read_unlock();
	return needed;
}

/**
 * vss_origin_defer_get - take one of @origin's VSS_MAX_DEFERRED places
 * @origin: the origin
 *
 * For a write waiting for copy-on-write, or a chunk copy made for one by
 * another worker. Writes take theirs in a wait's condition, so that
 * submitters woken together cannot all take the last one.
 *
 * Return: true if one was free.
 */
bool vss_origin_defer_get(struct vss_origin *origin)
{
	int deferred = atomic_read(&origin->deferred);

	do {
		if (deferred >= VSS_MAX_DEFERRED)
			return false;
	} while (!atomic_try_cmpxchg(&origin->deferred, &deferred,
				     deferred + 1));
	return true;
}

/* Gives back a place taken with vss_origin_defer_get(). */
void vss_origin_defer_put(struct vss_origin *origin)
{
	if (atomic_dec_return(&origin->deferred) < VSS_MAX_DEFERRED)
		wake_up(&origin->deferred_wait);
}

/* Queues @bio behind @origin's closed gate; false if it opened meanwhile. */
static bool vss_origin_hold(struct vss_origin *origin, struct bio *bio)
{
	unsigned long flags;
	bool held = false;

	spin_lock_irqsave(&origin->gate_lock, flags);
	if (origin->gate_closed) {
		bio_list_add(&origin->held, bio);
		held = true;
	}
	spin_unlock_irqrestore(&origin->gate_lock, flags);
	return held;
}

static void vss_origin_note_resize(struct vss_origin *origin)
{
	if (!test_and_set_bit(VSS_ORIGIN_RESIZED, &origin->todo))
		queue_work(system_unbound_wq, &vss_origins_work);
}

/**
 * vss_origin_cbt_broken - a changed block of @origin could not be recorded
 * @origin: the origin
 * @cbt: its generation, which cannot be trusted any more
 *
 * The generation is ended at once (queries fail from now on) and a new one
 * is started from process context. May be called in any context.
 */
void vss_origin_cbt_broken(struct vss_origin *origin, struct vss_cbt *cbt)
{
	WRITE_ONCE(cbt->broken, true);
	if (!test_and_set_bit(VSS_ORIGIN_CBT_BROKEN, &origin->todo))
		queue_work(system_unbound_wq, &vss_origins_work);
}

/*
 * Marks the blocks an admitted write changes, and notices a resize.
 * Returns -EAGAIN only for a REQ_NOWAIT write that would need to sleep
 * for memory; any other failure ends the generation instead.
 */
static int vss_origin_track_write(struct vss_origin *origin, struct bio *bio,
				  sector_t start, sector_t end)
{
	struct vss_cbt *cbt = READ_ONCE(origin->cbt);
	bool nowait = bio->bi_opf & REQ_NOWAIT;
	sector_t from, to;

	if (unlikely(bdev_nr_sectors(origin->handle.bdev) !=
		     READ_ONCE(origin->seen_sectors)))
		vss_origin_note_resize(origin);
	if (!cbt)
		return 0;
	from = max(start, origin->start) - origin->start;
	to = min(end, origin->start + origin->nr_sectors) - origin->start;
	if (!vss_cbt_mark_sectors(cbt, from, to,
				  nowait ? GFP_NOWAIT : GFP_NOIO))
		return 0;
	if (nowait)
		return -EAGAIN;
	vss_origin_cbt_broken(origin, cbt);
	return 0;
}

/*
 * May [@start, @end) (disk sectors) overlap @origin while its gate is
 * closed? Its range may be changing then (a resize, vss_origin_renew_cbt()):
 * the end it had and the one it gets are both within the larger of the
 * one last set and the device's size now, which the resize set first.
 */
static bool vss_origin_may_cover(struct vss_origin *origin, sector_t start,
				 sector_t end)
{
	sector_t sectors = max(READ_ONCE(origin->nr_sectors),
			       bdev_nr_sectors(origin->handle.bdev));

	return start < origin->start + sectors && origin->start < end;
}

/*
 * Admits @bio to every origin of its disk that it overlaps, into @hit,
 * which has room for @room. Returns how many were admitted; none if a
 * closed gate was met (*@closed) or if more origins than @room may be hit
 * (*@more says how many others there are: the caller retries with room
 * for them). The caller holds the RCU read lock.
 *
 * Preemption is off throughout, so that a count raised here and lowered
 * again here is raised and lowered on one CPU (see struct vss_origin).
 */
static unsigned int vss_admit(struct bio *bio, sector_t start, sector_t end,
			      struct vss_origin **hit, unsigned int room,
			      unsigned int *more, struct vss_origin **closed)
{
	struct vss_origin *origin;
	unsigned int nr = 0;

	*more = 0;
	*closed = NULL;
	preempt_disable();
	list_for_each_entry_rcu(origin, &vss_origins, node) {
		if (origin->disk != bio->bi_bdev->bd_disk)
			continue;
		/* Its snapshots have failed and its tracking is ending. */
		if (READ_ONCE(origin->removed))
			continue;
		if (nr == room) {
			(*more)++;
			continue;
		}
		vss_origin_admit(origin);
		smp_mb(); /* pairs with vss_origin_gate_close() */
		/*
		 * A closed gate holds the writes that may overlap the origin,
		 * and only those: others, such as vss's own store writes to
		 * another partition of the disk, which the drain behind the
		 * gate may be waiting for, go on.
		 */
		if (READ_ONCE(origin->gate_closed)) {
			vss_origin_unadmit(origin);
			if (!vss_origin_may_cover(origin, start, end))
				continue;
			*closed = origin;
			break;
		}
		/* The range only changes with the gate closed and drained. */
		smp_rmb();
		if (end <= origin->start ||
		    start >= origin->start + READ_ONCE(origin->nr_sectors)) {
			vss_origin_unadmit(origin);
			continue;
		}
		hit[nr++] = origin;
	}
	if (*closed || *more) {
		while (nr)
			vss_origin_unadmit(hit[--nr]);
	}
	preempt_enable();
	return nr;
}

/**
 * vss_intercept_write - the write path
 * @bio: a bio entering submit_bio_noacct()
 *
 * A bio may cover any number of origins (a write through a whole disk
 * covers all of its partitions): it is admitted to every one, or held.
 *
 * Return: true if vss took the bio over (held, deferred or completed);
 * false if the caller must submit it now.
 */
bool vss_intercept_write(struct bio *bio)
{
	struct vss_origin *inline_hit[VSS_WRITE_INLINE_ORIGINS];
	struct vss_origin **hit = inline_hit;
	unsigned int room = ARRAY_SIZE(inline_hit);
	bool nowait = bio->bi_opf & REQ_NOWAIT;
	gfp_t gfp = nowait ? GFP_NOWAIT : GFP_NOIO;
	struct vss_origin *closed;
	struct vss_write *write;
	unsigned int nr, more, i;
	sector_t start, end;
	bool needs_cow = false;

	if (!op_is_write(bio_op(bio)) || !bio_sectors(bio))
		return false;
	/* A remainder the block core resubmits was admitted already. */
	if (bio->bi_end_io == vss_write_endio)
		return false;
	if (list_empty_careful(&vss_origins))
		return false;

	vss_bio_range(bio, &start, &end);
retry:
	rcu_read_lock();
	nr = vss_admit(bio, start, end, hit, room, &more, &closed);
	if (closed) {
		/*
		 * A REQ_NOWAIT write must not wait behind the gate: it would be
		 * failed later from the committing task, where io_uring does
		 * not retry it. Refused now, its submitter retries it blocking.
		 */
		if (nowait || vss_origin_hold(closed, bio)) {
			rcu_read_unlock();
			if (hit != inline_hit)
				kfree(hit);
			if (nowait)
				bio_wouldblock_error(bio);
			return true;
		}
		rcu_read_unlock();
		goto retry;
	}
	rcu_read_unlock();
	if (more) {
		/* Never skipped: room for all of them, then again. */
		room += more;
		if (hit != inline_hit)
			kfree(hit);
		hit = kmalloc_array(room, sizeof(*hit),
				    nowait ? gfp : gfp | __GFP_NOFAIL);
		if (!hit) {
			bio_wouldblock_error(bio);
			return true;
		}
		goto retry;
	}
	if (!nr) {
		if (hit != inline_hit)
			kfree(hit);
		return false;
	}

	/* Admitted: each origin stays alive until vss_write_endio(). */
	write = vss_write_alloc(gfp);
	if (!write) {
		for (i = 0; i < nr; i++)
			vss_origin_unadmit(hit[i]);
		if (hit != inline_hit)
			kfree(hit);
		bio_wouldblock_error(bio);
		return true;
	}
	write->end_io = bio->bi_end_io;
	write->private = bio->bi_private;
	write->bio = bio;
	write->nr_origins = nr;
	if (hit == inline_hit) {
		memcpy(write->inline_origins, hit, nr * sizeof(hit[0]));
		hit = write->inline_origins;
	}
	/* The write owns @hit from now on, and frees it at completion. */
	write->origins = hit;
	bio->bi_end_io = vss_write_endio;
	bio->bi_private = write;

	/* Changed blocks are marked before the write can reach the disk. */
	for (i = 0; i < nr; i++) {
		if (vss_origin_track_write(hit[i], bio, start, end)) {
			bio_wouldblock_error(bio);
			return true;
		}
	}

	for (i = 0; i < nr && !needs_cow; i++)
		needs_cow = vss_origin_needs_cow(hit[i], start, end);
	if (!needs_cow)
		return false;

	if (nowait) {
		bio_wouldblock_error(bio);
		return true;
	}
	/* Back-pressure: a write storm waits here, never in a queue. */
	for (i = 0; i < nr; i++)
		wait_event(hit[i]->deferred_wait, vss_origin_defer_get(hit[i]));
	INIT_WORK(&write->work, vss_write_cow_work);
	queue_work(vss_cow_wq, &write->work);
	return true;
}

/**
 * vss_origin_gate_close - hold new writes to @origin
 * @origin: the origin
 *
 * Writes admitted before this keep going; vss_origin_gate_drain() waits
 * for them.
 */
void vss_origin_gate_close(struct vss_origin *origin)
{
	spin_lock_irq(&origin->gate_lock);
	WRITE_ONCE(origin->gate_closed, true);
	spin_unlock_irq(&origin->gate_lock);
	smp_mb(); /* pairs with the barrier in vss_intercept_write() */
}

/**
 * vss_origin_gate_drain - wait for admitted writes to complete
 * @origin: the origin, gate closed
 * @deadline: jiffies by which they must have drained
 *
 * Return: 0, or -ETIMEDOUT.
 */
int vss_origin_gate_drain(struct vss_origin *origin, unsigned long deadline)
{
	long left = (long)(deadline - jiffies);

	if (left <= 0)
		left = 1;
	if (!wait_event_timeout(origin->drain_wait,
				vss_origin_drained(origin), left))
		return -ETIMEDOUT;
	return 0;
}

/* Waits, without a limit, for the writes admitted to @origin to complete. */
static void vss_origin_drain(struct vss_origin *origin)
{
	wait_event(origin->drain_wait, vss_origin_drained(origin));
}

/* Opens the gate and sends the held writes on, through the write path. */
void vss_origin_gate_open(struct vss_origin *origin)
{
	struct bio_list held;
	struct bio *bio;

	spin_lock_irq(&origin->gate_lock);
	/*
	 * What changed behind the gate (the range, a snapshot marked
	 * deleting) is seen by a write that sees it open: pairs with the
	 * smp_rmb() after the write path's look at the gate.
	 */
	smp_store_release(&origin->gate_closed, false);
	held = origin->held;
	bio_list_init(&origin->held);
	spin_unlock_irq(&origin->gate_lock);

	while ((bio = bio_list_pop(&held))) {
		if (!vss_intercept_write(bio))
			vss_submit_bio_direct(bio);
	}
}

struct vss_chain *vss_chain_alloc(unsigned int nr)
{
	struct vss_chain *chain;

	chain = kzalloc(struct_size(chain, snap, nr), GFP_KERNEL);
	if (chain)
		chain->nr = nr;
	return chain;
}

/*
 * Publishes @chain. The caller holds vss_ctl_lock with the gate closed
 * and drained, and frees the old chain after RCU and image I/O are done
 * with it.
 */
void vss_origin_set_chain(struct vss_origin *origin, struct vss_chain *chain)
{
	rcu_assign_pointer(origin->chain, chain);
}

/* Finds the origin of @dev. The caller holds vss_ctl_lock. */
struct vss_origin *vss_origin_find(dev_t dev)
{
	struct vss_origin *origin;

	lockdep_assert_held(&vss_ctl_lock);
	list_for_each_entry(origin, &vss_origins, node)
		if (origin->dev == dev)
			return origin;
	return NULL;
}

/* The @n-th origin (from 0), or NULL. The caller holds vss_ctl_lock. */
struct vss_origin *vss_origin_nth(unsigned long n)
{
	struct vss_origin *origin;

	lockdep_assert_held(&vss_ctl_lock);
	list_for_each_entry(origin, &vss_origins, node)
		if (!n--)
			return origin;
	return NULL;
}

/*
 * Does @bdev overlap an origin (with snapshots only, if @snapshotted)? The
 * caller holds vss_ctl_lock, under which origins and chains change.
 */
static bool vss_origin_overlaps(struct block_device *bdev, bool snapshotted)
{
	sector_t start = bdev->bd_start_sect;
	sector_t end = start + bdev_nr_sectors(bdev);
	struct vss_origin *origin;

	lockdep_assert_held(&vss_ctl_lock);
	list_for_each_entry(origin, &vss_origins, node) {
		if (origin->disk == bdev->bd_disk &&
		    start < origin->start + origin->nr_sectors &&
		    origin->start < end &&
		    (!snapshotted || vss_origin_has_snapshots(origin)))
			return true;
	}
	return false;
}

bool vss_origin_on_device(struct block_device *bdev)
{
	return vss_origin_overlaps(bdev, false);
}

/*
 * Is an origin held open by the filesystem of @sb, one that names no
 * single device (btrfs)? Such a filesystem holds its devices with itself
 * or its type as the holder. The caller holds vss_ctl_lock.
 */
bool vss_origin_held_by_fs(struct super_block *sb)
{
	struct vss_origin *origin;

	lockdep_assert_held(&vss_ctl_lock);
	list_for_each_entry(origin, &vss_origins, node) {
		void *holder = READ_ONCE(origin->handle.bdev->bd_holder);

		if (holder && (holder == sb || holder == sb->s_type))
			return true;
	}
	return false;
}

bool vss_origin_snapshotted_on_device(struct block_device *bdev)
{
	return vss_origin_overlaps(bdev, true);
}

static int vss_origin_check_device(struct block_device *bdev,
				   struct netlink_ext_ack *extack)
{
	if (bdev_is_zoned(bdev)) {
		NL_SET_ERR_MSG(extack, "zoned devices are not supported");
		return -EOPNOTSUPP;
	}
	if (blk_get_integrity(bdev->bd_disk)) {
		NL_SET_ERR_MSG(extack,
			       "devices with integrity metadata are not supported");
		return -EOPNOTSUPP;
	}
#ifdef CONFIG_BLK_INLINE_ENCRYPTION
	if (bdev_get_queue(bdev)->crypto_profile) {
		NL_SET_ERR_MSG(extack,
			       "devices with inline encryption are not supported");
		return -EOPNOTSUPP;
	}
#endif
	if (vss_image_is_disk(bdev->bd_disk)) {
		NL_SET_ERR_MSG(extack, "a vss image cannot be snapshotted");
		return -EOPNOTSUPP;
	}
	if (!bdev_nr_sectors(bdev)) {
		NL_SET_ERR_MSG(extack, "device is empty");
		return -ENODEV;
	}
	return 0;
}

/* Bio-based devices count their writes in flight: wait until none is. */
static void vss_origin_wait_bio_based(struct block_device *bdev,
				      unsigned long deadline)
{
	if (queue_is_mq(bdev_get_queue(bdev)))
		return;
	while (vss_cbt_writes_in_flight(bdev) && time_before(jiffies, deadline))
		usleep_range(1000, 2000);
}

/**
 * vss_origin_get - find or start intercepting the origin of @dev
 * @dev: device number
 * @keep_gate_closed: return a new origin with its write gate still closed
 *                    (the caller opens it with vss_origin_gate_open())
 * @extack: receives the reason of a failure
 * @out: the origin
 *
 * The caller holds vss_ctl_lock. A new origin has no snapshots and is not
 * tracked; the caller gives it one or the other, or calls
 * vss_origin_put_if_unused().
 *
 * A new origin starts with its write gate closed, and writes submitted
 * before it was intercepted are drained before the gate opens, so that a
 * commit or a tracking start right after sees every write: they were never
 * counted by the gate. A caller that keeps the gate closed runs in a NOIO
 * scope until it opens it (see vss_origin_quiesce()). Freezing the queue waits for every request in
 * flight on a request-based disk (virtio, nvme, scsi, loop); a bio-based
 * one (dm, md) counts its writes in flight when its I/O statistics are on.
 *
 * Return: 0 or a negative errno.
 */
int vss_origin_get(dev_t dev, bool keep_gate_closed,
		   struct netlink_ext_ack *extack, struct vss_origin **out)
{
	unsigned long deadline;
	struct vss_origin *origin;
	struct block_device *bdev;
	unsigned int noio;
	int ret;

	lockdep_assert_held(&vss_ctl_lock);
	origin = vss_origin_find(dev);
	if (origin) {
		if (READ_ONCE(origin->removed)) {
			NL_SET_ERR_MSG(extack, "device has been removed");
			return -ENODEV;
		}
		*out = origin;
		return 0;
	}

	origin = kzalloc(sizeof(*origin), GFP_KERNEL);
	if (!origin)
		return -ENOMEM;
	origin->inflight = alloc_percpu(unsigned long);
	if (!origin->inflight) {
		kfree(origin);
		return -ENOMEM;
	}
	ret = vss_bdev_open(dev, false, NULL, &origin->handle);
	if (ret) {
		if (ret == -ENXIO || ret == -ENODEV)
			NL_SET_ERR_MSG(extack, "no such block device");
		else
			NL_SET_ERR_MSG(extack, "cannot open the device");
		goto err_free;
	}
	bdev = origin->handle.bdev;
	ret = vss_origin_check_device(bdev, extack);
	if (ret)
		goto err_close;

	origin->dev = dev;
	origin->disk = bdev->bd_disk;
	origin->start = bdev->bd_start_sect;
	origin->nr_sectors = bdev_nr_sectors(bdev);
	origin->seen_sectors = origin->nr_sectors;
	snprintf(origin->name, sizeof(origin->name), "%pg", bdev);
	spin_lock_init(&origin->gate_lock);
	origin->gate_closed = true;
	bio_list_init(&origin->held);
	init_waitqueue_head(&origin->drain_wait);
	atomic_set(&origin->deferred, 0);
	init_waitqueue_head(&origin->deferred_wait);
	spin_lock_init(&origin->cow_lock);
	hash_init(origin->pending);
	init_waitqueue_head(&origin->cow_wait);
	spin_lock_init(&origin->read_pin_lock);
	INIT_LIST_HEAD(&origin->read_pins);
	atomic_set(&origin->nr_read_pins, 0);
	origin->next_index = 1;
	/* The gate is closed from here: see vss_origin_quiesce(). */
	noio = memalloc_noio_save();
	list_add_tail_rcu(&origin->node, &vss_origins);
	/* Bios that entered the write path before now are submitted. */
	vss_intercept_sync();
	blk_mq_freeze_queue(bdev_get_queue(bdev));
	blk_mq_unfreeze_queue(bdev_get_queue(bdev));
	deadline = jiffies + msecs_to_jiffies(VSS_DEFAULT_HOLD_LIMIT_MS);
	vss_origin_wait_bio_based(bdev, deadline);
	if (!keep_gate_closed)
		vss_origin_gate_open(origin);
	memalloc_noio_restore(noio);
	*out = origin;
	return 0;

err_close:
	vss_bdev_close(&origin->handle, false, false);
err_free:
	free_percpu(origin->inflight);
	kfree(origin);
	return ret;
}

bool vss_origin_has_snapshots(struct vss_origin *origin)
{
	struct vss_chain *chain;

	chain = rcu_dereference_protected(origin->chain,
					  lockdep_is_held(&vss_ctl_lock));
	return chain && chain->nr;
}

/*
 * Stops intercepting @origin once it has no snapshots left and is not
 * tracked. The caller holds vss_ctl_lock.
 */
void vss_origin_put_if_unused(struct vss_origin *origin)
{
	struct vss_chain *chain;

	lockdep_assert_held(&vss_ctl_lock);
	if (vss_origin_has_snapshots(origin))
		return;
	if (origin->cbt || origin->restore) {
		/* A resize waited for the last snapshot to go. */
		if (bdev_nr_sectors(origin->handle.bdev) != origin->nr_sectors)
			vss_origin_note_resize(origin);
		return;
	}
	chain = rcu_dereference_protected(origin->chain,
					  lockdep_is_held(&vss_ctl_lock));
	list_del_rcu(&origin->node);
	synchronize_rcu();
	/* Writes admitted before the removal finish normally. */
	vss_origin_drain(origin);
	synchronize_rcu();
	WARN_ON(!hash_empty(origin->pending));
	WARN_ON(!list_empty(&origin->read_pins));
	WARN_ON(!bio_list_empty(&origin->held));
	vss_bdev_close(&origin->handle, false, false);
	kfree(chain);
	free_percpu(origin->inflight);
	kfree(origin);
}

/**
 * vss_origin_quiesce - close @origin's write gate and drain it
 * @origin: the origin; the caller holds vss_ctl_lock
 *
 * Until vss_origin_gate_open(), no write that may overlap the origin is
 * admitted to it and none admitted is in progress in vss: the origin's
 * state may change. Writes elsewhere on its disk go on.
 *
 * The caller runs in a memalloc_noio_save() scope from here until the
 * gate is open again, as does every task that closes a gate: reclaim
 * entered from an allocation there could write back to the origin and
 * wait for a write the gate holds.
 */
void vss_origin_quiesce(struct vss_origin *origin)
{
	lockdep_assert_held(&vss_ctl_lock);
	vss_origin_gate_close(origin);
	vss_origin_drain(origin);
}

/**
 * vss_origin_attach_cbt - start tracking @origin with generation @cbt
 * @origin: an untracked origin, quiesced (or never opened to writes)
 * @cbt: the generation; the origin owns it from now on
 *
 * The caller holds vss_ctl_lock. Tracking holds a module reference.
 */
void vss_origin_attach_cbt(struct vss_origin *origin, struct vss_cbt *cbt)
{
	lockdep_assert_held(&vss_ctl_lock);
	WARN_ON(origin->cbt);
	__module_get(THIS_MODULE);
	WRITE_ONCE(origin->cbt, cbt);
}

/**
 * vss_origin_detach_cbt - stop tracking @origin and take its generation
 * @origin: a quiesced origin; the caller holds vss_ctl_lock
 *
 * Return: the generation, which nobody marks or reads any more once the
 * caller has opened the gate again; the caller frees it.
 */
struct vss_cbt *vss_origin_detach_cbt(struct vss_origin *origin)
{
	struct vss_cbt *cbt = origin->cbt;

	lockdep_assert_held(&vss_ctl_lock);
	WRITE_ONCE(origin->cbt, NULL);
	/* Image writes mark under vss_image_srcu. */
	synchronize_srcu(&vss_image_srcu);
	if (cbt)
		module_put(THIS_MODULE);
	return cbt;
}

/**
 * vss_origin_end_tracking - stop tracking @origin and forget its map
 * @origin: the origin; the caller holds vss_ctl_lock
 * @reason: why, for the event
 *
 * A restore in progress is abandoned too. The origin goes if nothing
 * else keeps it.
 */
void vss_origin_end_tracking(struct vss_origin *origin, const char *reason)
{
	unsigned int noio;
	struct vss_cbt *cbt;

	lockdep_assert_held(&vss_ctl_lock);
	vss_cbt_restore_free(origin->restore);
	origin->restore = NULL;
	if (!origin->cbt)
		return;
	noio = memalloc_noio_save();
	vss_origin_quiesce(origin);
	cbt = vss_origin_detach_cbt(origin);
	vss_origin_gate_open(origin);
	memalloc_noio_restore(noio);
	vss_event_cbt(origin, cbt, VSS_EVENT_CBT_STOPPED, reason);
	vss_cbt_free(cbt);
}

/*
 * Replaces @origin's generation with a new one, sized to the device when
 * the origin has no snapshots (whose images keep the old size). The
 * caller holds vss_ctl_lock.
 */
static void vss_origin_renew_cbt(struct vss_origin *origin,
				 const char *reason)
{
	sector_t device_sectors = bdev_nr_sectors(origin->handle.bdev);
	sector_t sectors = origin->nr_sectors;
	struct vss_cbt *cbt, *old;
	unsigned int noio;

	if (!vss_origin_has_snapshots(origin))
		sectors = device_sectors;
	cbt = vss_cbt_alloc((u64)sectors << SECTOR_SHIFT,
			    vss_cbt_block_shift_for((u64)sectors <<
						    SECTOR_SHIFT),
			    NULL, 0, 0);
	if (!cbt) {
		/* The old one stays broken: queries fail; try again later. */
		if (origin->cbt)
			WRITE_ONCE(origin->cbt->broken, true);
		pr_err("%s: no memory for a new tracking generation\n",
		       origin->name);
		return;
	}
	noio = memalloc_noio_save();
	vss_origin_quiesce(origin);
	WRITE_ONCE(origin->nr_sectors, sectors);
	WRITE_ONCE(origin->seen_sectors, device_sectors);
	old = origin->cbt;
	WRITE_ONCE(origin->cbt, cbt);
	vss_origin_gate_open(origin);
	memalloc_noio_restore(noio);
	synchronize_srcu(&vss_image_srcu);
	vss_cbt_free(old);
	pr_info("%s: new tracking generation %pUb: %s\n", origin->name,
		&cbt->generation, reason);
	vss_event_cbt(origin, cbt, VSS_EVENT_CBT_NEW_GENERATION, reason);
}

/**
 * vss_origin_check_size - notice a resize of @origin now
 * @origin: the origin; the caller holds vss_ctl_lock
 *
 * Control commands call this first, so that no answer is given from a
 * generation that a resize has ended.
 *
 * Return: 0, or -ESTALE if the device was resized (a new generation was
 * started if the origin is tracked).
 */
int vss_origin_check_size(struct vss_origin *origin)
{
	sector_t size = bdev_nr_sectors(origin->handle.bdev);

	lockdep_assert_held(&vss_ctl_lock);
	if (size == READ_ONCE(origin->seen_sectors) &&
	    !test_bit(VSS_ORIGIN_RESIZED, &origin->todo))
		return 0;
	clear_bit(VSS_ORIGIN_RESIZED, &origin->todo);
	if (origin->cbt)
		vss_origin_renew_cbt(origin, "the device was resized");
	else
		WRITE_ONCE(origin->seen_sectors, size);
	return -ESTALE;
}

static void vss_origins_maintain(struct work_struct *work)
{
	struct vss_origin *origin, *next;

	mutex_lock(&vss_ctl_lock);
	list_for_each_entry_safe(origin, next, &vss_origins, node) {
		if (READ_ONCE(origin->removed)) {
			if (origin->cbt || origin->restore) {
				vss_origin_end_tracking(origin,
							"the device was removed");
				vss_origin_put_if_unused(origin);
			}
			continue;
		}
		vss_origin_check_size(origin);
		if (test_and_clear_bit(VSS_ORIGIN_CBT_BROKEN, &origin->todo) &&
		    origin->cbt && READ_ONCE(origin->cbt->broken))
			vss_origin_renew_cbt(origin,
					     "a changed block could not be recorded (out of memory)");
	}
	mutex_unlock(&vss_ctl_lock);
}

/*
 * Called on entry to del_gendisk(): the snapshots of every origin on
 * @disk lose their data source, and its tracking ends (from a worker).
 * Lock-free, because del_gendisk() callers hold driver locks that the
 * control path may take when it opens devices.
 */
void vss_origins_mark_removed(struct gendisk *disk)
{
	struct vss_origin *origin;
	struct vss_chain *chain;
	bool tracked = false;
	unsigned int i;

	rcu_read_lock();
	list_for_each_entry_rcu(origin, &vss_origins, node) {
		if (origin->disk != disk)
			continue;
		WRITE_ONCE(origin->removed, true);
		vss_event_origin(origin, VSS_EVENT_ORIGIN_REMOVED);
		chain = rcu_dereference(origin->chain);
		for (i = 0; chain && i < chain->nr; i++)
			vss_snapshot_fail(chain->snap[i], ENODEV,
					  "origin device was removed");
		tracked = true;
	}
	rcu_read_unlock();
	if (tracked)
		queue_work(system_unbound_wq, &vss_origins_work);
}

int __init vss_origin_init(void)
{
	vss_write_cache = KMEM_CACHE(vss_write, 0);
	if (!vss_write_cache)
		return -ENOMEM;
	vss_write_pool = mempool_create_slab_pool(64, vss_write_cache);
	if (!vss_write_pool) {
		kmem_cache_destroy(vss_write_cache);
		return -ENOMEM;
	}
	return 0;
}

void vss_origin_exit(void)
{
	flush_work(&vss_origins_work);
	WARN_ON(!list_empty(&vss_origins));
	vss_write_stock_drain();
	mempool_destroy(vss_write_pool);
	kmem_cache_destroy(vss_write_cache);
}
