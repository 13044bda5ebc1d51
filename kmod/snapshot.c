// SPDX-License-Identifier: GPL-2.0
/*
 * Snapshot sets: creation at one instant across devices, deletion of any
 * snapshot without changing what the others read, and failure.
 */
#include "vss.h"
#include "snapshot.h"
#include "origin.h"
#include "store.h"
#include "image.h"
#include "event.h"
#include "cbt.h"
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>

/* Registries; under vss_ctl_lock. */
LIST_HEAD(vss_snapshots);
static LIST_HEAD(vss_sets);

bool vss_snapshot_failed(const struct vss_snapshot *snap)
{
	return READ_ONCE(snap->state) == VSS_STATE_FAILED;
}

/* May copies go into @snap's table (see vss_snapshot_unlink())? */
bool vss_snapshot_takes_copies(const struct vss_snapshot *snap)
{
	return !vss_snapshot_failed(snap) && !READ_ONCE(snap->deleting);
}

/**
 * vss_snapshot_fail - mark @snap failed: its data can no longer be trusted
 * @snap: the snapshot
 * @err: positive errno for the record
 * @reason: static text shown by list and sent with the event
 *
 * The first failure wins. May be called in atomic context.
 */
void vss_snapshot_fail(struct vss_snapshot *snap, int err, const char *reason)
{
	if (cmpxchg(&snap->fail_errno, 0, err) != 0)
		return;
	WRITE_ONCE(snap->fail_reason, reason);
	smp_wmb(); /* reason before state, for lock-free readers */
	WRITE_ONCE(snap->state, VSS_STATE_FAILED);
	pr_warn("snapshot %pUb of %s failed: %s\n", &snap->id,
		snap->origin->name, reason);
	vss_event_snapshot(snap, VSS_EVENT_SNAPSHOT_FAILED);
}

static void vss_snapshot_release(struct kref *kref)
{
	struct vss_snapshot *snap = container_of(kref, struct vss_snapshot,
						 kref);

	xa_destroy(&snap->exceptions);
	xa_destroy(&snap->overlay);
	kfree(snap->store_mask);
	kfree(snap);
}

void vss_snapshot_put(struct vss_snapshot *snap)
{
	kref_put(&snap->kref, vss_snapshot_release);
}

struct vss_snapshot *vss_snapshot_find(const uuid_t *id)
{
	struct vss_snapshot *snap;

	lockdep_assert_held(&vss_ctl_lock);
	list_for_each_entry(snap, &vss_snapshots, node)
		if (uuid_equal(&snap->id, id))
			return snap;
	return NULL;
}

struct vss_set *vss_set_find(const uuid_t *id)
{
	struct vss_set *set;

	lockdep_assert_held(&vss_ctl_lock);
	list_for_each_entry(set, &vss_sets, node)
		if (uuid_equal(&set->id, id))
			return set;
	return NULL;
}

static struct vss_chain *vss_chain_of(struct vss_origin *origin)
{
	return rcu_dereference_protected(origin->chain,
					 lockdep_is_held(&vss_ctl_lock));
}

static void vss_chain_free_srcu(struct rcu_head *head)
{
	kfree(container_of(head, struct vss_chain, rcu));
}

static void vss_chain_free_rcu(struct rcu_head *head)
{
	call_srcu(&vss_image_srcu, head, vss_chain_free_srcu);
}

/* Frees @old once neither the write path nor image I/O can see it. */
static void vss_chain_retire(struct vss_chain *old)
{
	if (old)
		call_rcu(&old->rcu, vss_chain_free_rcu);
}

static void vss_set_free(struct vss_set *set)
{
	list_del(&set->node);
	vss_store_put(set->store);
	kfree(set);
	module_put(THIS_MODULE);
}

/* Everything that can fail before the commit, for one device. */
struct vss_create_slot {
	struct vss_origin *origin;
	struct vss_snapshot *snap;
	struct vss_chain *new_chain;
	struct vss_chain *old_chain;
	struct vss_cbt *new_cbt;	/* tracking starts with this snapshot */
	struct vss_cbt_interval *new_iv;	/* the interval after its point */
	bool cbt_started;
	bool frozen;
};

static struct vss_snapshot *vss_snapshot_alloc(struct vss_set *set,
					       struct vss_origin *origin)
{
	struct vss_snapshot *snap = kzalloc(sizeof(*snap), GFP_KERNEL);

	if (!snap)
		return NULL;
	kref_init(&snap->kref);
	uuid_gen(&snap->id);
	snap->set = set;
	snap->origin = origin;
	xa_init(&snap->exceptions);
	xa_init(&snap->overlay);
	mutex_init(&snap->overlay_lock);
	atomic_set(&snap->image_openers, 0);
	snap->state = VSS_STATE_ACTIVE;
	return snap;
}

static int vss_create_check_store(struct vss_store *store,
				  struct vss_create_slot *slots,
				  unsigned int nr, int *bad_dev,
				  struct netlink_ext_ack *extack)
{
	struct block_device *backing = store->backing;
	unsigned int i;

	/* Excluded from copies and masked in images: see store_samevol.c. */
	if (!backing || store->ops->on_origin)
		return 0;
	for (i = 0; i < nr; i++) {
		struct vss_origin *origin = slots[i].origin;

		if (origin->disk == backing->bd_disk &&
		    backing->bd_start_sect < origin->start + origin->nr_sectors &&
		    origin->start < backing->bd_start_sect +
				    bdev_nr_sectors(backing)) {
			*bad_dev = i;
			NL_SET_ERR_MSG(extack,
				       "storage lies on a device of the set");
			return -EXDEV;
		}
	}
	if (vss_origin_on_device(backing)) {
		NL_SET_ERR_MSG(extack, "storage lies on a snapshotted device");
		return -EXDEV;
	}
	return 0;
}

/*
 * The instant: freeze filesystems, hold and drain writes on every origin,
 * switch copy-on-write on by publishing the new chains, release.
 */
static int vss_set_commit(struct vss_set *set, struct vss_create_slot *slots,
			  unsigned int nr, const struct vss_create_params *p,
			  int *bad_dev, struct netlink_ext_ack *extack)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(p->hold_limit_ms);
	unsigned int i, closed = 0, noio;
	ktime_t hold_start;
	u64 now_ns;
	int ret = 0;

	if (!(p->flags & VSS_CREATE_NO_FREEZE)) {
		for (i = 0; i < nr; i++) {
			ret = vss_bdev_freeze(slots[i].origin->handle.bdev);
			if (ret) {
				*bad_dev = i;
				NL_SET_ERR_MSG(extack,
					       "cannot freeze the filesystem on a device");
				goto thaw;
			}
			slots[i].frozen = true;
		}
		if (time_after(jiffies, deadline)) {
			NL_SET_ERR_MSG(extack,
				       "freezing took longer than the hold limit");
			ret = -ETIMEDOUT;
			goto thaw;
		}
	}

	hold_start = ktime_get();
	/* Gates closed from here: see vss_origin_quiesce(). */
	noio = memalloc_noio_save();
	for (closed = 0; closed < nr; closed++)
		vss_origin_gate_close(slots[closed].origin);
	for (i = 0; i < nr; i++) {
		ret = vss_origin_gate_drain(slots[i].origin, deadline);
		if (ret) {
			*bad_dev = i;
			NL_SET_ERR_MSG(extack,
				       "writes did not drain within the hold limit");
			goto open;
		}
	}
	now_ns = ktime_get_real_ns();
	for (i = 0; i < nr; i++) {
		struct vss_origin *origin = slots[i].origin;
		struct vss_snapshot *snap = slots[i].snap;

		snap->created_ns = now_ns;
		snap->index = origin->next_index++;
		slots[i].old_chain = vss_chain_of(origin);
		vss_origin_set_chain(origin, slots[i].new_chain);
		slots[i].new_chain = NULL;
		if (slots[i].new_cbt) {
			vss_origin_attach_cbt(origin, slots[i].new_cbt);
			slots[i].new_cbt = NULL;
			slots[i].cbt_started = true;
		}
		vss_cbt_advance(origin->cbt, slots[i].new_iv);
		slots[i].new_iv = NULL;
		uuid_copy(&snap->cbt_generation, &origin->cbt->generation);
		snap->cbt_seq = vss_cbt_seq(origin->cbt);
	}
open:
	for (i = 0; i < closed; i++)
		vss_origin_gate_open(slots[i].origin);
	memalloc_noio_restore(noio);
	set->hold_us = ktime_us_delta(ktime_get(), hold_start);
thaw:
	for (i = 0; i < nr; i++) {
		if (slots[i].frozen)
			vss_bdev_thaw(slots[i].origin->handle.bdev);
		slots[i].frozen = false;
	}
	return ret;
}

static void vss_snapshot_unlink(struct vss_snapshot *snap);

/**
 * vss_set_create - take a snapshot of each device at one instant
 * @p: what to create
 * @result: receives the set, or the index of the device to blame
 * @extack: receives the reason of a failure
 *
 * All or nothing: on error no snapshot exists and the origins are as
 * before.
 *
 * Return: 0 or a negative errno.
 */
int vss_set_create(const struct vss_create_params *p,
		   struct vss_create_result *result,
		   struct netlink_ext_ack *extack)
{
	struct vss_store_params store_params = {
		.path = p->storage_path,
		.limit = p->storage_limit,
		.chunk_shift = p->chunk_shift,
	};
	struct vss_create_slot *slots;
	struct vss_set *set;
	unsigned int i, nr = 0;
	int ret;

	slots = kcalloc(p->nr_devs, sizeof(*slots), GFP_KERNEL);
	set = kzalloc(sizeof(*set), GFP_KERNEL);
	if (!slots || !set) {
		kfree(slots);
		kfree(set);
		return -ENOMEM;
	}
	if (!try_module_get(THIS_MODULE)) {
		kfree(slots);
		kfree(set);
		return -ENODEV;
	}
	uuid_gen(&set->id);
	strscpy(set->label, p->label, sizeof(set->label));
	INIT_LIST_HEAD(&set->snapshots);

	mutex_lock(&vss_ctl_lock);
	for (nr = 0; nr < p->nr_devs; nr++) {
		struct vss_create_slot *slot = &slots[nr];
		struct vss_chain *old;

		ret = vss_origin_get(p->devs[nr], false, extack, &slot->origin);
		if (ret) {
			result->bad_dev = nr;
			goto err_unwind;
		}
		/* Its writes are another set's copies: see vss_store_on_device(). */
		if (vss_store_on_device(slot->origin->handle.bdev)) {
			result->bad_dev = nr;
			NL_SET_ERR_MSG(extack,
				       "device holds the diff storage of a snapshot set");
			ret = -EXDEV;
			nr++;
			goto err_unwind;
		}
		/* A resize ends the generation before this point is made. */
		vss_origin_check_size(slot->origin);
		old = vss_chain_of(slot->origin);
		if (old && old->nr && slot->origin->chunk_shift != p->chunk_shift) {
			result->bad_dev = nr;
			NL_SET_ERR_MSG(extack,
				       "device has snapshots with another chunk size");
			ret = -EINVAL;
			nr++;
			goto err_unwind;
		}
		slot->origin->chunk_shift = p->chunk_shift;
		if (old && old->nr >= VSS_MAX_SNAPSHOTS_PER_ORIGIN) {
			result->bad_dev = nr;
			NL_SET_ERR_MSG(extack, "device has too many snapshots");
			ret = -E2BIG;
			nr++;
			goto err_unwind;
		}
		slot->snap = vss_snapshot_alloc(set, slot->origin);
		slot->new_chain = vss_chain_alloc(old ? old->nr + 1 : 1);
		slot->new_iv = vss_cbt_interval_alloc();
		if (!slot->origin->cbt) {
			u64 bytes = (u64)slot->origin->nr_sectors << SECTOR_SHIFT;

			slot->new_cbt = vss_cbt_alloc(bytes,
						      vss_cbt_block_shift_for(bytes),
						      NULL, 0, 0);
		}
		if (!slot->snap || !slot->new_chain || !slot->new_iv ||
		    (!slot->origin->cbt && !slot->new_cbt)) {
			ret = -ENOMEM;
			nr++;
			goto err_unwind;
		}
		if (old)
			memcpy(slot->new_chain->snap, old->snap,
			       old->nr * sizeof(old->snap[0]));
		slot->new_chain->snap[slot->new_chain->nr - 1] = slot->snap;
	}

	set->store = vss_store_open(&store_params, extack);
	if (IS_ERR(set->store)) {
		ret = PTR_ERR(set->store);
		set->store = NULL;
		result->bad_storage = true;
		goto err_unwind;
	}
	ret = vss_create_check_store(set->store, slots, nr, &result->bad_dev,
				     extack);
	if (ret) {
		result->bad_storage = true;
		goto err_unwind;
	}
	/* Where stores lie on each origin now: its image reads zeros there. */
	for (i = 0; i < nr; i++) {
		struct vss_origin *origin = slots[i].origin;
		struct vss_store_mask *mask;

		mask = vss_store_mask_build(origin->disk, origin->start,
					    origin->nr_sectors);
		if (IS_ERR(mask)) {
			ret = PTR_ERR(mask);
			goto err_unwind;
		}
		slots[i].snap->store_mask = mask;
	}

	ret = vss_set_commit(set, slots, nr, p, &result->bad_dev, extack);
	if (ret)
		goto err_unwind;

	list_add_tail(&set->node, &vss_sets);
	for (i = 0; i < nr; i++) {
		list_add_tail(&slots[i].snap->node, &vss_snapshots);
		list_add_tail(&slots[i].snap->set_node, &set->snapshots);
	}
	for (i = 0; i < nr; i++)
		vss_chain_retire(slots[i].old_chain);

	/* Images come last: udev and readers may open them at once. */
	for (i = 0; i < nr; i++) {
		ret = vss_image_create(slots[i].snap);
		if (ret) {
			NL_SET_ERR_MSG(extack, "cannot create the image device");
			result->bad_dev = i;
			vss_set_delete(set, true, NULL);
			mutex_unlock(&vss_ctl_lock);
			kfree(slots);
			return ret;
		}
	}
	for (i = 0; i < nr; i++) {
		struct vss_origin *origin = slots[i].origin;

		if (slots[i].cbt_started)
			vss_event_cbt(origin, origin->cbt,
				      VSS_EVENT_CBT_NEW_GENERATION,
				      "tracking started with the first snapshot");
		else if (vss_cbt_trim_history(origin->cbt))
			vss_event_cbt(origin, origin->cbt,
				      VSS_EVENT_CBT_HISTORY_DROPPED,
				      "old intervals dropped to bound map memory");
		vss_event_snapshot(slots[i].snap, VSS_EVENT_SNAPSHOT_CREATED);
	}
	result->set = set;
	mutex_unlock(&vss_ctl_lock);
	kfree(slots);
	return 0;

err_unwind:
	for (i = nr; i-- > 0;) {
		kfree(slots[i].new_chain);
		vss_cbt_interval_free(NULL, slots[i].new_iv);
		vss_cbt_free(slots[i].new_cbt);
		if (slots[i].snap)
			vss_snapshot_put(slots[i].snap);
		if (slots[i].origin)
			vss_origin_put_if_unused(slots[i].origin);
	}
	vss_store_put(set->store);
	mutex_unlock(&vss_ctl_lock);
	module_put(THIS_MODULE);
	kfree(set);
	kfree(slots);
	return ret;
}

/*
 * Takes @snap out of its origin's chain. Its exceptions move to the next
 * older snapshot, which reads through them, unless that one has its own
 * copy of the chunk; what nobody can read any more is freed.
 *
 * A table can hold millions of exceptions, so they move while the
 * origin's writes go on; the write gate is closed twice, each time only
 * for as long as the writes in flight take to drain:
 * 1. @snap is marked deleting: from then on no copy goes into its table
 *    (copy-on-write passes over it as over a failed snapshot, and its
 *    chunks still count as preserved). Once the writes in flight drain,
 *    its table changes no more.
 * 2. Its exceptions go into the older snapshot's table, gate open. A
 *    reader of the older snapshot finds a chunk there or, not yet, in
 *    @snap's table, which is still in the chain: the same slot either
 *    way. A copy into the older table (now the target, if @snap was the
 *    newest) is only ever of a chunk that @snap's table lacks, which
 *    this never moves: the two never meet on one chunk.
 * 3. The chain without @snap is published, with the gate closed and
 *    drained so that copy-on-write never sees the chain change.
 */
static void vss_snapshot_unlink(struct vss_snapshot *snap)
{
	struct vss_origin *origin = snap->origin;
	struct vss_chain *old = vss_chain_of(origin);
	struct vss_snapshot *older = NULL;
	struct vss_chain *chain;
	unsigned int i, j, noio;
	unsigned long chunk;
	void *entry;
	int ret;

	/* Small, and from here on nothing may fail half way. */
	chain = kzalloc(struct_size(chain, snap, old->nr - 1),
			GFP_KERNEL | __GFP_NOFAIL);
	chain->nr = old->nr - 1;
	for (i = 0; i < old->nr; i++)
		if (old->snap[i] == snap)
			break;
	if (i > 0)
		older = old->snap[i - 1];

	noio = memalloc_noio_save();
	vss_origin_quiesce(origin);
	WRITE_ONCE(snap->deleting, true);
	vss_origin_gate_open(origin);
	memalloc_noio_restore(noio);

	if (older) {
		xa_for_each(&snap->exceptions, chunk, entry) {
			/* -EBUSY: the older one has its own copy. */
			ret = xa_insert(&older->exceptions, chunk, entry,
					GFP_KERNEL | __GFP_NOFAIL);
			WARN_ON_ONCE(ret && ret != -EBUSY);
			cond_resched();
		}
	}

	for (i = 0, j = 0; i < old->nr; i++)
		if (old->snap[i] != snap)
			chain->snap[j++] = old->snap[i];
	noio = memalloc_noio_save();
	vss_origin_quiesce(origin);
	vss_origin_set_chain(origin, chain->nr ? chain : NULL);
	if (!chain->nr)
		kfree(chain);
	vss_origin_gate_open(origin);
	memalloc_noio_restore(noio);

	/* Wait until neither the write path nor image I/O can see @old. */
	synchronize_rcu();
	synchronize_srcu(&vss_image_srcu);
	kfree(old);

	/* Nobody reads @snap's tables now; free what was not handed on. */
	xa_for_each(&snap->exceptions, chunk, entry) {
		void *kept = older ? xa_load(&older->exceptions, chunk) : NULL;

		if (kept != entry)
			vss_store_free_exc(xa_to_value(entry));
		cond_resched();
	}
	xa_for_each(&snap->overlay, chunk, entry)
		vss_store_free_exc(xa_to_value(entry));
	xa_destroy(&snap->exceptions);
	xa_destroy(&snap->overlay);
}

/**
 * vss_snapshot_delete - delete one snapshot
 * @snap: the snapshot
 * @force: delete even if its image is open
 * @extack: receives the reason of a failure, may be NULL
 *
 * The caller holds vss_ctl_lock.
 *
 * Return: 0, or -EBUSY if the image is open and @force is false.
 */
int vss_snapshot_delete(struct vss_snapshot *snap, bool force,
			struct netlink_ext_ack *extack)
{
	struct vss_origin *origin = snap->origin;
	struct vss_set *set = snap->set;

	lockdep_assert_held(&vss_ctl_lock);
	if (snap->image && vss_image_openers(snap->image) && !force) {
		NL_SET_ERR_MSG(extack, "image is open (use force to delete anyway)");
		return -EBUSY;
	}
	vss_event_snapshot(snap, VSS_EVENT_SNAPSHOT_DELETED);
	if (snap->image) {
		vss_image_remove(snap->image);
		snap->image = NULL;
	}
	vss_snapshot_unlink(snap);
	list_del(&snap->node);
	list_del(&snap->set_node);
	if (list_empty(&set->snapshots))
		vss_set_free(set);
	snap->set = NULL;
	vss_snapshot_put(snap);
	vss_origin_put_if_unused(origin);
	return 0;
}

/* Deletes every snapshot of @set; with @force, even open ones. */
int vss_set_delete(struct vss_set *set, bool force,
		   struct netlink_ext_ack *extack)
{
	struct vss_snapshot *snap, *next;
	int ret;

	lockdep_assert_held(&vss_ctl_lock);
	if (!force) {
		list_for_each_entry(snap, &set->snapshots, set_node) {
			if (snap->image && vss_image_openers(snap->image)) {
				NL_SET_ERR_MSG(extack,
					       "an image of the set is open (use force to delete anyway)");
				return -EBUSY;
			}
		}
	}
	list_for_each_entry_safe(snap, next, &set->snapshots, set_node) {
		bool last = list_is_last(&snap->set_node, &set->snapshots);

		ret = vss_snapshot_delete(snap, true, extack);
		if (WARN_ON(ret) || last)
			break;
	}
	return 0;
}
