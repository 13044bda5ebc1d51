// SPDX-License-Identifier: GPL-2.0
/*
 * The same-volume backend (VSS_STORAGE_SAMEVOL): the store lives in a
 * filesystem on a device that is snapshotted itself, for machines with
 * one disk. It is a series of files ("segments") DIR/.vss-store/<uuid>.<n>
 * on ext4 or XFS, each allocated in full with fallocate() when it is made
 * (unwritten extents: nothing is written), then pinned as the kernel pins
 * an active swap file:
 *
 * - the filesystem's own swap_activate() checks and maps it (no holes, no
 *   inline data, no shared extents, metadata committed, one device) and
 *   hands its extents to add_swap_extent() in a private swap_info_struct;
 * - S_SWAPFILE on the inode makes the VFS and the filesystems refuse, for
 *   as long as the store lives, writes, truncate, fallocate, reflink,
 *   dedupe, copy_file_range, unlink, rename, e4defrag's extent moves and
 *   xfs_fsr's extent swaps.
 *
 * Chunks go straight to those extents on the device, as swap does, through
 * vss_submit_bio_direct(): they pass no interception, so they are never
 * copied, never tracked and never held by a write gate, and the
 * filesystem never sees them (its file stays all unwritten extents: it
 * reads as zeros, and fsck of the filesystem or of an image is clean).
 * Each snapshot of the origin the store lies on records where the store
 * was at its instant (vss_store_mask_build()), and its image reads those
 * sectors as zeros, so an image never carries diff data.
 *
 * Such a store only ever lies under snapshots that know of it: it opens
 * only when no snapshot of its device exists yet (later ones mask it);
 * else the set must use the store its device's snapshots use, which a
 * create with the same directory shares. Its files go with the store;
 * one left by a crash is unpinned, and the next store opened in that
 * directory removes it (see "Leftovers" below).
 *
 * Growth (see "Growth" below): the store opens with its limit of room, or
 * half of the free space if that is less, and a worker adds segments
 * toward the limit ahead of need, never in the write path and never while
 * the filesystem is frozen. A growth step takes at most half of the
 * filesystem's free space at that moment, so the filesystem stays
 * writable for its users; when it cannot grow, the snapshots fail once
 * the room is used up, saying that the filesystem is full.
 */
#include "vss.h"
#include "store.h"
#include "origin.h"
#include "cow.h"
#include "event.h"
#include <linux/ctype.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <linux/namei.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/swap.h>
#include <linux/uuid.h>
#include <linux/workqueue.h>

#define VSS_SAMEVOL_DIR		".vss-store"
/* A store takes at most 1/VSS_SAMEVOL_FREE_SHARE of the free space. */
#define VSS_SAMEVOL_FREE_SHARE	2
/* Without a limit, it takes 1/VSS_SAMEVOL_DEFAULT_SHARE of the filesystem. */
#define VSS_SAMEVOL_DEFAULT_SHARE	8

/* Growth steps: 1/16 of the limit, within these bounds (as file stores). */
#define VSS_SAMEVOL_STEP_MIN	SZ_16M
#define VSS_SAMEVOL_STEP_MAX	SZ_1G
/* How often a growth looks again at a frozen filesystem. */
#define VSS_SAMEVOL_FROZEN_DELAY	msecs_to_jiffies(50)
/* A growth that failed is tried again after this long, at the earliest. */
#define VSS_SAMEVOL_RETRY	HZ

/*
 * Consecutive slots at consecutive sectors of the store's device, in one
 * extent of a segment. Slots start on chunk boundaries of the disk, so
 * that a slot is a chunk of the origin it lies on (vss_cow_keep_in_place()
 * needs that): an extent may hold no slot at all.
 */
struct vss_samevol_extent {
	u32 first_slot;
	u32 nr_slots;
	sector_t sector;	/* of the first slot, on store->backing */
	sector_t start;		/* of the whole extent, on store->backing */
	sector_t nr_sectors;	/* of the whole extent, head and tail included */
};

/*
 * Where the slots lie, by first_slot. A growth builds a new map (the old
 * extents and the new segment's) and publishes it with smp_store_release()
 * before it publishes the larger store->size; readers take it with
 * smp_load_acquire() and no lock, so any slot below the size they have
 * seen is in the map they find. Superseded maps stay on @old_maps of
 * struct vss_samevol until close, since a reader may still be using one
 * (growths are few), so that no reader needs RCU around its sleeping I/O.
 */
struct vss_samevol_map {
	struct list_head old;		/* in vss_samevol.old_maps, once old */
	u32 nr_slots;
	unsigned int nr;
	struct vss_samevol_extent extent[];
};

/* One file of the store. */
struct vss_samevol_segment {
	struct list_head node;		/* in vss_samevol.segments */
	struct file *file;
	bool pinned;			/* S_SWAPFILE set by us */
};

struct vss_samevol {
	struct vss_store *store;	/* fixed */
	struct path dir;		/* the directory given: what is shared */
	struct path store_dir;		/* its .vss-store, where segments are */
	uuid_t id;			/* names the segments, fixed */
	u64 step;			/* bytes a growth adds, fixed */
	u32 reserve;			/* slots of room kept ahead, fixed */
	/*
	 * Written by the open, then by the growth worker (one at a time, see
	 * @grow_flags), then read by close, which runs after the last
	 * growth: the worker holds a reference on the store.
	 */
	struct list_head segments;
	unsigned int nr_segments;	/* names tried: <uuid>.0 on */
	struct list_head old_maps;
	struct vss_samevol_map *map;	/* see struct vss_samevol_map */
	struct delayed_work grow_work;	/* in vss_store_wq */
	unsigned long grow_flags;	/* atomic bitops */
#define VSS_SAMEVOL_GROW_QUEUED	0	/* grow_work is queued or running */
#define VSS_SAMEVOL_GROW_STUCK	1	/* room that can never be used */
	unsigned long failed_at;	/* jiffies of the last failed growth */
	u32 held_mark;			/* slots in use when GROW_HELD was set */
};

static struct vss_samevol *vss_samevol(const struct vss_store *store)
{
	return store->private;
}

/*
 * A directory in a filesystem on an origin; vss_ctl_lock is held. A
 * filesystem that names no device of its own (btrfs) is judged by the
 * origins it holds open, so that it is refused here rather than taken
 * for a directory off the snapshotted devices.
 */
static bool vss_samevol_accepts(struct inode *inode)
{
	struct super_block *sb = inode->i_sb;

	if (!S_ISDIR(inode->i_mode))
		return false;
	if (sb->s_bdev)
		return vss_origin_on_device(sb->s_bdev);
	return vss_origin_held_by_fs(sb);
}

static bool vss_samevol_same_space(const struct vss_store *store,
				   struct inode *inode)
{
	return d_inode(vss_samevol(store)->dir.dentry) == inode;
}

static int vss_samevol_check_fs(struct vss_store *store,
				struct vss_samevol *sv, u64 *first,
				struct netlink_ext_ack *extack)
{
	struct super_block *sb = sv->dir.dentry->d_sb;
	struct kstatfs st;
	u64 free, total;
	int ret;

	if (sb->s_magic != EXT4_SUPER_MAGIC && sb->s_magic != XFS_SUPER_MAGIC) {
		NL_SET_ERR_MSG(extack,
			       "storage on a snapshotted device needs ext4 or XFS: this filesystem cannot pin the store's blocks");
		return -EOPNOTSUPP;
	}
	/* Without it, swap_activate() and S_SWAPFILE's users are stubs. */
	if (!IS_ENABLED(CONFIG_SWAP)) {
		NL_SET_ERR_MSG(extack,
			       "storage on a snapshotted device needs a kernel with swap support (CONFIG_SWAP), with which a filesystem pins a file's blocks");
		return -EOPNOTSUPP;
	}
	if (vss_origin_snapshotted_on_device(sb->s_bdev)) {
		NL_SET_ERR_MSG(extack,
			       "the storage's device has snapshots that do not exclude a new store: use the storage they use, or delete them");
		return -EBUSY;
	}
	if (READ_ONCE(sb->s_writers.frozen) != SB_UNFROZEN) {
		NL_SET_ERR_MSG(extack, "the storage's filesystem is frozen");
		return -EBUSY;
	}
	ret = vfs_statfs(&sv->dir, &st);
	if (ret) {
		NL_SET_ERR_MSG(extack, "cannot read the storage filesystem's free space");
		return ret;
	}
	free = (u64)st.f_bavail * st.f_bsize;
	total = (u64)st.f_blocks * st.f_bsize;
	if (!store->limit)
		store->limit = min(total / VSS_SAMEVOL_DEFAULT_SHARE,
				   free / VSS_SAMEVOL_FREE_SHARE);
	store->limit = round_down(store->limit, 1ULL << store->chunk_shift);
	/*
	 * The first room is all the snapshot taken with it can count on
	 * (see "Growth"): the limit, or half of the free space if that is
	 * less, and the store grows on from there as the space allows.
	 */
	*first = round_down(min(store->limit, free / VSS_SAMEVOL_FREE_SHARE),
			    1ULL << store->chunk_shift);
	/* A chunk more if it fits: slots start on chunk boundaries. */
	if (*first == store->limit &&
	    store->limit < free / VSS_SAMEVOL_FREE_SHARE)
		*first += 1ULL << store->chunk_shift;
	if (!*first) {
		NL_SET_ERR_MSG(extack, "no room for a store in the storage's filesystem");
		return -ENOSPC;
	}
	store->backing = sb->s_bdev;
	return 0;
}

/* Makes DIR/.vss-store, if it is not there yet. */
static int vss_samevol_mkdir(const char *path)
{
	struct dentry *dentry;
	struct path parent;
	char *name;
	int ret;

	name = kasprintf(GFP_KERNEL, "%s/" VSS_SAMEVOL_DIR, path);
	if (!name)
		return -ENOMEM;
	dentry = kern_path_create(AT_FDCWD, name, &parent, LOOKUP_DIRECTORY);
	kfree(name);
	if (IS_ERR(dentry))
		return PTR_ERR(dentry) == -EEXIST ? 0 : PTR_ERR(dentry);
	ret = vfs_mkdir(vss_mnt_idmap(parent.mnt), d_inode(parent.dentry),
			dentry, 0700);
	done_path_create(&parent, dentry);
	return ret;
}

/*
 * Leftovers: a store's files outlive it only when the machine stopped
 * (crash, power loss) or its filesystem was frozen at release. Nothing
 * pins them then: the next store opened in the same directory removes
 * every file of ours there (named "<uuid>.<n>") that is not pinned. A
 * pinned one belongs to a live store (or is somebody's active swap file):
 * S_SWAPFILE is tested under the directory's lock, and the VFS refuses
 * to unlink such a file anyway. At most VSS_SAMEVOL_SCAN_MAX files go per
 * open; the next open takes the rest.
 */
#define VSS_SAMEVOL_SCAN_MAX	64
#define VSS_SAMEVOL_NAME_MAX	48

struct vss_samevol_scan {
	struct dir_context ctx;
	char (*names)[VSS_SAMEVOL_NAME_MAX];
	unsigned int nr;
};

/* Is @name what vss_samevol_create() names a segment: "<uuid>.<n>"? */
static bool vss_samevol_is_segment_name(const char *name, int len)
{
	int i;

	if (len <= UUID_STRING_LEN + 1 || len >= VSS_SAMEVOL_NAME_MAX ||
	    name[UUID_STRING_LEN] != '.')
		return false;
	for (i = 0; i < UUID_STRING_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? name[i] != '-' : !isxdigit(name[i]))
			return false;
	}
	for (i = UUID_STRING_LEN + 1; i < len; i++)
		if (!isdigit(name[i]))
			return false;
	return true;
}

static bool vss_samevol_collect(struct dir_context *ctx, const char *name,
				int len, loff_t pos, u64 ino, unsigned int type)
{
	struct vss_samevol_scan *scan =
		container_of(ctx, struct vss_samevol_scan, ctx);

	if ((type != DT_REG && type != DT_UNKNOWN) ||
	    !vss_samevol_is_segment_name(name, len))
		return true;
	memcpy(scan->names[scan->nr], name, len);
	scan->names[scan->nr][len] = '\0';
	return ++scan->nr < VSS_SAMEVOL_SCAN_MAX;
}

/* Unlinks @name in the directory @dir unless it is pinned; 0 if gone. */
static int vss_samevol_unlink_leftover(struct file *dir, const char *name)
{
	struct dentry *parent = dir->f_path.dentry;
	struct inode *inode = d_inode(parent);
	struct dentry *victim;
	int ret;

	inode_lock_nested(inode, I_MUTEX_PARENT);
	victim = lookup_one_len(name, parent, strlen(name));
	ret = PTR_ERR_OR_ZERO(victim);
	if (!ret) {
		if (!d_is_reg(victim))
			ret = -ENOENT;
		else if (IS_SWAPFILE(d_inode(victim)))
			ret = -EBUSY;
		else
			ret = vfs_unlink(vss_mnt_idmap(dir->f_path.mnt), inode,
					 victim, NULL);
		dput(victim);
	}
	inode_unlock(inode);
	return ret;
}

/* Removes what crashed stores left in DIR/.vss-store (see above). */
static void vss_samevol_remove_leftovers(const char *path)
{
	struct vss_samevol_scan scan = { .ctx.actor = vss_samevol_collect };
	struct vfsmount *mnt;
	struct file *dir;
	unsigned int i;
	char *name;

	name = kasprintf(GFP_KERNEL, "%s/" VSS_SAMEVOL_DIR, path);
	if (!name)
		return;
	dir = filp_open(name, O_RDONLY | O_DIRECTORY, 0);
	if (IS_ERR(dir))
		goto out;
	mnt = dir->f_path.mnt;
	scan.names = kcalloc(VSS_SAMEVOL_SCAN_MAX, sizeof(*scan.names),
			     GFP_KERNEL);
	if (!scan.names || iterate_dir(dir, &scan.ctx) || !scan.nr)
		goto out_dir;
	/* Never wait for a thaw under vss_ctl_lock: leave them for later. */
	if (READ_ONCE(mnt->mnt_sb->s_writers.frozen) != SB_UNFROZEN ||
	    mnt_want_write(mnt))
		goto out_dir;
	for (i = 0; i < scan.nr; i++)
		if (!vss_samevol_unlink_leftover(dir, scan.names[i]))
			pr_info("removed the leftover store file %s/%s\n", name,
				scan.names[i]);
	mnt_drop_write(mnt);
out_dir:
	kfree(scan.names);
	fput(dir);
out:
	kfree(name);
}

/*
 * Unlinks a segment. A frozen filesystem is not waited for (the caller
 * holds vss_ctl_lock): the file stays as a leftover, unpinned, for the
 * next create to remove.
 *
 * vfs_unlink() ends in d_delete(), which turns a dentry that has one
 * reference only into a negative one. The file's reference must not be
 * that one (__fput() still needs the inode behind its dentry), so the
 * unlink holds a reference of its own, as a lookup by name would: the
 * dentry is then only unhashed.
 */
static void vss_samevol_unlink(struct file *file)
{
	struct vfsmount *mnt = file->f_path.mnt;
	struct dentry *dentry, *parent;
	struct inode *dir;
	int ret = -EBUSY;

	if (READ_ONCE(mnt->mnt_sb->s_writers.frozen) == SB_UNFROZEN)
		ret = mnt_want_write(mnt);
	if (ret)
		goto out;
	dentry = dget(file->f_path.dentry);
	parent = dget_parent(dentry);
	dir = d_inode(parent);
	inode_lock_nested(dir, I_MUTEX_PARENT);
	if (dentry->d_parent == parent && !d_unhashed(dentry) &&
	    d_is_positive(dentry))
		ret = vfs_unlink(vss_mnt_idmap(mnt), dir, dentry, NULL);
	else
		ret = 0;	/* gone already */
	inode_unlock(dir);
	dput(parent);
	dput(dentry);
	mnt_drop_write(mnt);
out:
	if (ret)
		pr_warn("store file %pD left behind (%d): the next create in its directory removes it\n",
			file, ret);
}

/* Unpins, unlinks and closes a segment. */
static void vss_samevol_segment_free(struct vss_samevol_segment *seg)
{
	struct inode *inode = file_inode(seg->file);

	if (seg->pinned) {
		inode_lock(inode);
		inode->i_flags &= ~S_SWAPFILE;
		inode_unlock(inode);
	}
	vss_samevol_unlink(seg->file);
	fput(seg->file);
	kfree(seg);
}

/*
 * Creates segment number @sv->nr_segments in .vss-store, found from the
 * directory the store opened (not by its name again, which may have come
 * to mean another place), with @bytes of blocks allocated.
 */
static int vss_samevol_create(struct vss_samevol *sv, u64 bytes,
			      struct vss_samevol_segment **out,
			      const char **why)
{
	struct vss_samevol_segment *seg;
	struct file *file;
	char name[VSS_SAMEVOL_NAME_MAX];
	int ret;

	seg = kzalloc(sizeof(*seg), GFP_KERNEL);
	if (!seg)
		return -ENOMEM;
	/* A name is never tried twice: one that failed may still be there. */
	snprintf(name, sizeof(name), "%pUb.%u", &sv->id, sv->nr_segments++);
	file = file_open_root(&sv->store_dir, name, O_RDWR | O_CREAT | O_EXCL |
			      O_LARGEFILE | O_NOATIME, 0600);
	if (IS_ERR(file)) {
		kfree(seg);
		*why = "cannot create the store file";
		return PTR_ERR(file);
	}
	seg->file = file;
	if (!file->f_op->fallocate) {
		*why = "storage filesystem does not support fallocate";
		ret = -EOPNOTSUPP;
		goto err;
	}
	ret = vfs_fallocate(file, 0, 0, bytes);
	if (ret) {
		*why = ret == -ENOSPC ? "its filesystem is full" :
		       ret == -EDQUOT ? "the owner's quota is used up" :
		       "cannot allocate the store in its filesystem";
		goto err;
	}
	*out = seg;
	return 0;

err:
	vss_samevol_segment_free(seg);
	return ret;
}

static unsigned int vss_samevol_count_extents(struct swap_info_struct *sis)
{
	struct rb_node *node;
	unsigned int nr = 0;

	for (node = rb_first(&sis->swap_extent_root); node;
	     node = rb_next(node))
		nr++;
	return nr;
}

/*
 * Builds the map that adds the extents swap_activate() found in a new
 * segment to @old (NULL for the first segment), up to @max_slots slots
 * in all. Slots start on chunk boundaries of the disk.
 */
static struct vss_samevol_map *
vss_samevol_map_extend(struct vss_store *store,
		       const struct vss_samevol_map *old,
		       struct swap_info_struct *sis, u32 max_slots)
{
	unsigned int shift = store->chunk_shift - SECTOR_SHIFT;
	sector_t base = store->backing->bd_start_sect;
	unsigned int old_nr = old ? old->nr : 0;
	struct vss_samevol_map *map;
	struct rb_node *node;
	u32 slots;

	map = kzalloc(struct_size(map, extent, old_nr +
				  vss_samevol_count_extents(sis)),
		      GFP_KERNEL);
	if (!map)
		return NULL;
	INIT_LIST_HEAD(&map->old);
	if (old)
		memcpy(map->extent, old->extent, old_nr * sizeof(old->extent[0]));
	map->nr = old_nr;
	slots = old ? old->nr_slots : 0;
	for (node = rb_first(&sis->swap_extent_root); node;
	     node = rb_next(node)) {
		struct swap_extent *se = rb_entry(node, struct swap_extent,
						  rb_node);
		struct vss_samevol_extent *e = &map->extent[map->nr++];
		sector_t start = (sector_t)se->start_block <<
				 (PAGE_SHIFT - SECTOR_SHIFT);
		sector_t sectors = (sector_t)se->nr_pages <<
				   (PAGE_SHIFT - SECTOR_SHIFT);
		sector_t head = round_up(base + start, 1ULL << shift) -
				(base + start);

		e->start = start;
		e->nr_sectors = sectors;
		e->sector = start + head;
		e->first_slot = slots;
		e->nr_slots = head < sectors ?
			      min_t(u64, (sectors - head) >> shift,
				    max_slots - slots) : 0;
		slots += e->nr_slots;
	}
	map->nr_slots = slots;
	return map;
}

static void vss_samevol_free_extents(struct swap_info_struct *sis)
{
	struct rb_node *node;

	while ((node = rb_first(&sis->swap_extent_root))) {
		rb_erase(node, &sis->swap_extent_root);
		kfree(rb_entry(node, struct swap_extent, rb_node));
	}
}

/*
 * Maps and pins a new segment, as swapon does a swap file, and builds the
 * map that adds its slots to @sv->map into @out.
 */
static int vss_samevol_pin(struct vss_store *store, struct vss_samevol *sv,
			   struct vss_samevol_segment *seg, u32 max_slots,
			   struct vss_samevol_map **out, const char **why)
{
	struct file *file = seg->file;
	struct inode *inode = file_inode(file);
	const struct address_space_operations *aops = file->f_mapping->a_ops;
	struct swap_info_struct *sis;
	sector_t span;
	int ret;

	if (!aops->swap_activate) {
		*why = "the storage's filesystem cannot pin a file's blocks (as for a swap file)";
		return -EOPNOTSUPP;
	}
	sis = kzalloc(sizeof(*sis), GFP_KERNEL);
	if (!sis)
		return -ENOMEM;
	sis->bdev = store->backing;
	sis->swap_extent_root = RB_ROOT;
	sis->max = i_size_read(inode) >> PAGE_SHIFT;

	inode_lock(inode);
	if (IS_SWAPFILE(inode)) {
		ret = -EBUSY;
		goto out;
	}
	ret = aops->swap_activate(sis, file, &span);
	if (ret < 0) {
		*why = "the storage's filesystem cannot map the store file's blocks";
		goto out;
	}
	/* XFS names its realtime device here for a file that lives there. */
	if (sis->bdev != store->backing) {
		*why = "the store file is not on its filesystem's main device";
		ret = -EOPNOTSUPP;
		goto out;
	}
	ret = -ENOMEM;
	*out = vss_samevol_map_extend(store, sv->map, sis, max_slots);
	if (!*out)
		goto out;
	inode->i_flags |= S_SWAPFILE;
	ret = inode_drain_writes(inode);
	if (ret) {
		inode->i_flags &= ~S_SWAPFILE;
		kfree(*out);
		*out = NULL;
	} else {
		seg->pinned = true;
	}
out:
	inode_unlock(inode);
	vss_samevol_free_extents(sis);
	kfree(sis);
	return ret;
}

/*
 * Makes, allocates and pins the next segment of @bytes; on success it is
 * in @sv->segments and @out is the map with its slots, not published.
 */
static int vss_samevol_add_segment(struct vss_store *store,
				   struct vss_samevol *sv, u64 bytes,
				   u32 max_slots, struct vss_samevol_map **out,
				   const char **why)
{
	struct vss_samevol_segment *seg;
	int ret;

	ret = vss_samevol_create(sv, bytes, &seg, why);
	if (ret)
		return ret;
	ret = vss_samevol_pin(store, sv, seg, max_slots, out, why);
	if (ret) {
		vss_samevol_segment_free(seg);
		return ret;
	}
	list_add_tail(&seg->node, &sv->segments);
	return 0;
}

/*
 * Growth. The store keeps room ahead of need: when the room left (the
 * slots below store->size not in use) falls below @sv->reserve, half a
 * growth step, vss_samevol_grow_ahead() queues the worker, which adds a
 * segment of one step. A step is 1/16 of the limit, between 16 MiB and
 * 1 GiB (as for file stores); it is made in the time fallocate() and
 * swap_activate() take for it, in which the reserve takes the copies.
 * Copies never wait for it: a slot beyond store->size fails at once, and
 * its snapshot fails as for a full store ("it could not grow in time").
 *
 * The worker never waits for a thaw: on a frozen filesystem it looks
 * again every VSS_SAMEVOL_FROZEN_DELAY. A freeze that begins after that
 * look may still hold it in filp_open() or fallocate() until the thaw;
 * it holds no lock then, and nothing waits for it (close does not cancel
 * it: it holds a reference on the store, see vss_store_grow_get()).
 *
 * A step is made only if it is at most half of the filesystem's free
 * space at that moment (f_bavail), so the store never takes more than
 * half of what is free, and the filesystem stays writable for its users.
 * When that rule, ENOSPC or EDQUOT stops a growth, the failure is logged
 * once and sent as a STORAGE_LOW event; when the room is used up, the
 * snapshots fail, "its filesystem has no room for it to grow". A growth
 * is tried again VSS_SAMEVOL_RETRY later at the earliest.
 *
 * The new room lies in what is free in the filesystem now, which may have
 * been in use at the instant of the snapshots that exist (a file deleted
 * since): masking it in their images would read that file as zeros, and
 * not masking it would read diff data. So it is published under
 * vss_ctl_lock in this order: the map with the new extents; then, for
 * the origin it lies on, every chunk there that its snapshots still read
 * from the origin becomes one of their exceptions, pointing to the slot
 * at that very chunk (vss_cow_keep_in_place(): the slot is held, no data
 * moves); then store->size. Snapshots taken later mask the whole segment
 * (vss_store_mask_build()). Image reads never see a slot change under
 * them: a held slot is never written, and a free one is a chunk the
 * snapshots already read from their exceptions.
 *
 * Which chunks of free space a snapshot still needs cannot be told apart
 * from those that were free at its instant too, so the snapshots that
 * exist gain from a growth only the chunks written since their instant
 * (and freed again); the rest comes back as they go, and serves the
 * snapshots taken after the growth in full. That is why the store opens
 * with all of its limit when the free space allows (see check_fs()): a
 * snapshot can count on the room there was at its instant. When more
 * than half of a growth is held, the store stops growing
 * (VSS_STORE_GROW_HELD) until fewer slots are in use than then, rather
 * than take free space for nothing.
 */
static u64 vss_samevol_step(const struct vss_store *store)
{
	u64 step = clamp_t(u64, store->limit / 16, VSS_SAMEVOL_STEP_MIN,
			   VSS_SAMEVOL_STEP_MAX);

	return min(round_up(step, 1ULL << store->chunk_shift), store->limit);
}

/* Bytes of the next segment: a step, or what is left to the limit. */
static u64 vss_samevol_next_bytes(const struct vss_store *store,
				  const struct vss_samevol *sv, u32 max_slots)
{
	u64 left = (u64)(max_slots - sv->map->nr_slots) << store->chunk_shift;

	/* A chunk more: slots start on chunk boundaries of the disk. */
	return min(sv->step, left) + (1ULL << store->chunk_shift);
}

/* Should the store grow now? */
static bool vss_samevol_wants_growth(struct vss_store *store,
				     struct vss_samevol *sv)
{
	u32 size = READ_ONCE(store->size) >> store->chunk_shift;
	u32 used = atomic_read(&store->used_slots);

	if (size >= store->max_slots ||
	    (used < size && size - used >= sv->reserve))
		return false;
	if (test_bit(VSS_SAMEVOL_GROW_STUCK, &sv->grow_flags))
		return false;
	/* Held room comes back as its snapshots go: see vss_samevol_publish(). */
	if (test_bit(VSS_STORE_GROW_HELD, &store->flags)) {
		if (used >= READ_ONCE(sv->held_mark))
			return false;
		clear_bit(VSS_STORE_GROW_HELD, &store->flags);
	}
	return !test_bit(VSS_STORE_GROW_FAILED, &store->flags) ||
	       time_after_eq(jiffies, READ_ONCE(sv->failed_at) +
				      VSS_SAMEVOL_RETRY);
}

/* Any context: only queues. */
static void vss_samevol_grow_ahead(struct vss_store *store)
{
	struct vss_samevol *sv = vss_samevol(store);

	if (!vss_samevol_wants_growth(store, sv) ||
	    test_and_set_bit(VSS_SAMEVOL_GROW_QUEUED, &sv->grow_flags))
		return;
	vss_store_grow_get(store);
	queue_delayed_work(vss_store_wq, &sv->grow_work, 0);
}

/* Publishes a grown map; see "Growth" above. Under vss_ctl_lock. */
static int vss_samevol_publish(struct vss_store *store, struct vss_samevol *sv,
			       struct vss_samevol_map *map)
{
	struct vss_samevol_map *old = sv->map;
	sector_t base = store->backing->bd_start_sect;
	u32 added = map->nr_slots - old->nr_slots;
	u32 held = 0;
	unsigned int i;
	int ret;

	lockdep_assert_held(&vss_ctl_lock);
	/* The extents before any slot in them: pairs with map_of(). */
	smp_store_release(&sv->map, map);
	list_add(&old->old, &sv->old_maps);
	for (i = old->nr; i < map->nr; i++) {
		const struct vss_samevol_extent *e = &map->extent[i];

		if (!e->nr_slots)
			continue;
		ret = vss_cow_keep_in_place(store, store->backing->bd_disk,
					    base + e->sector, e->first_slot,
					    e->nr_slots);
		if (ret < 0)
			return ret;
		held += ret;
	}
	/*
	 * Mostly held: the snapshots that exist would hold the next growth
	 * as well. Growth waits until some of them go (fewer slots in use)
	 * rather than take the filesystem's free space for nothing.
	 */
	if (held > added / 2) {
		WRITE_ONCE(sv->held_mark, atomic_read(&store->used_slots));
		set_bit(VSS_STORE_GROW_HELD, &store->flags);
	}
	/* Map and kept slots first: pairs with vss_store_alloc_slot(). */
	smp_store_release(&store->size, (u64)map->nr_slots << store->chunk_shift);
	return 0;
}

/* The outcome of a growth: a failure is logged and sent once. */
static void vss_samevol_grown(struct vss_store *store, struct vss_samevol *sv,
			      int ret, const char *why)
{
	if (!ret) {
		clear_bit(VSS_STORE_GROW_FAILED, &store->flags);
		return;
	}
	WRITE_ONCE(sv->failed_at, jiffies);
	if (test_and_set_bit(VSS_STORE_GROW_FAILED, &store->flags))
		return;
	pr_warn("same-volume store in %s cannot grow (%d): %s; its snapshots fail when its room is used up\n",
		store->path, ret, why);
	vss_event_storage(store, VSS_EVENT_STORAGE_LOW);
}

/* Is the worker's the only reference left? */
static bool vss_samevol_unused(struct vss_store *store)
{
	bool unused;

	mutex_lock(&vss_ctl_lock);
	unused = kref_read(&store->kref) == 1;
	mutex_unlock(&vss_ctl_lock);
	return unused;
}

static void vss_samevol_grow_work(struct work_struct *work)
{
	struct vss_samevol *sv = container_of(to_delayed_work(work),
					      struct vss_samevol, grow_work);
	struct vss_store *store = sv->store;
	struct super_block *sb = sv->dir.dentry->d_sb;
	const char *why = "cannot grow the diff storage";
	struct vss_samevol_map *map = NULL;
	struct kstatfs st;
	u64 bytes;
	int ret;

	if (vss_samevol_unused(store))
		goto out;
	if (READ_ONCE(sb->s_writers.frozen) != SB_UNFROZEN) {
		queue_delayed_work(vss_store_wq, &sv->grow_work,
				   VSS_SAMEVOL_FROZEN_DELAY);
		return;
	}
	bytes = vss_samevol_next_bytes(store, sv, store->max_slots);
	ret = vfs_statfs(&sv->dir, &st);
	if (!ret && bytes > (u64)st.f_bavail * st.f_bsize /
			    VSS_SAMEVOL_FREE_SHARE) {
		why = "its filesystem has less than twice a step free";
		ret = -ENOSPC;
	}
	if (!ret)
		ret = vss_samevol_add_segment(store, sv, bytes,
					      store->max_slots, &map, &why);
	if (!ret) {
		mutex_lock(&vss_ctl_lock);
		ret = vss_samevol_publish(store, sv, map);
		mutex_unlock(&vss_ctl_lock);
		if (ret) {
			/* The room stays unused, and so does what follows. */
			set_bit(VSS_SAMEVOL_GROW_STUCK, &sv->grow_flags);
			why = "its new room is not chunks of one origin";
		}
	}
	vss_samevol_grown(store, sv, ret, why);
out:
	clear_bit(VSS_SAMEVOL_GROW_QUEUED, &sv->grow_flags);
	/* A grow_ahead() that saw the bit still set has not queued. */
	smp_mb__after_atomic();
	if (vss_samevol_wants_growth(store, sv) && !vss_samevol_unused(store) &&
	    !test_and_set_bit(VSS_SAMEVOL_GROW_QUEUED, &sv->grow_flags)) {
		queue_delayed_work(vss_store_wq, &sv->grow_work, 0);
		return;
	}
	vss_store_grow_put(store);
}

static int vss_samevol_open(struct vss_store *store, const char *path,
			    struct netlink_ext_ack *extack)
{
	struct vss_samevol *sv;
	const char *why = NULL;
	u32 max_slots;
	u64 first;
	char *name;
	int ret;

	sv = kzalloc(sizeof(*sv), GFP_KERNEL);
	if (!sv)
		return -ENOMEM;
	store->private = sv;
	sv->store = store;
	INIT_LIST_HEAD(&sv->segments);
	INIT_LIST_HEAD(&sv->old_maps);
	INIT_DELAYED_WORK(&sv->grow_work, vss_samevol_grow_work);
	ret = kern_path(path, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &sv->dir);
	if (ret) {
		sv->dir.dentry = NULL;
		NL_SET_ERR_MSG(extack, "storage path does not exist");
		return ret;
	}
	ret = vss_samevol_check_fs(store, sv, &first, extack);
	if (ret)
		return ret;
	ret = vss_samevol_mkdir(path);
	if (!ret) {
		name = kasprintf(GFP_KERNEL, "%s/" VSS_SAMEVOL_DIR, path);
		ret = name ? kern_path(name, LOOKUP_DIRECTORY, &sv->store_dir) :
			     -ENOMEM;
		kfree(name);
		if (ret)
			sv->store_dir.dentry = NULL;
		else if (sv->store_dir.mnt->mnt_sb != sv->dir.mnt->mnt_sb)
			ret = -EXDEV;
	}
	if (ret) {
		NL_SET_ERR_MSG(extack,
			       "cannot create " VSS_SAMEVOL_DIR " in the storage directory");
		return ret;
	}
	vss_samevol_remove_leftovers(path);
	uuid_gen(&sv->id);

	max_slots = min_t(u64, store->limit >> store->chunk_shift, INT_MAX);
	sv->step = vss_samevol_step(store);
	sv->reserve = max_t(u32, (sv->step >> store->chunk_shift) / 2, 1);
	ret = vss_samevol_add_segment(store, sv, first, max_slots, &sv->map,
				      &why);
	if (ret) {
		/* The reasons are static strings, as NL_SET_ERR_MSG() wants. */
		if (extack)
			extack->_msg = why ?: "cannot create the store file";
		return ret;
	}
	if (!sv->map->nr_slots) {
		NL_SET_ERR_MSG(extack, "the store file holds no whole chunk");
		return -ENOSPC;
	}
	store->size = (u64)sv->map->nr_slots << store->chunk_shift;
	return 0;
}

static void vss_samevol_close(struct vss_store *store)
{
	struct vss_samevol *sv = vss_samevol(store);
	struct vss_samevol_segment *seg, *next_seg;
	struct vss_samevol_map *map, *next_map;

	if (!sv)
		return;
	/* The last growth held a reference: none is queued or running. */
	list_for_each_entry_safe(seg, next_seg, &sv->segments, node)
		vss_samevol_segment_free(seg);
	list_for_each_entry_safe(map, next_map, &sv->old_maps, old)
		kfree(map);
	kfree(sv->map);
	if (sv->store_dir.dentry)
		path_put(&sv->store_dir);
	if (sv->dir.dentry)
		path_put(&sv->dir);
	kfree(sv);
}

/* The extent of @map that holds @slot; the slot is below @map->nr_slots. */
static const struct vss_samevol_extent *
vss_samevol_extent(const struct vss_samevol_map *map, u32 slot)
{
	unsigned int lo = 0, hi = map->nr;

	/* The last extent that starts at or before @slot: empty ones do not. */
	while (hi - lo > 1) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (map->extent[mid].first_slot <= slot)
			lo = mid;
		else
			hi = mid;
	}
	return &map->extent[lo];
}

static const struct vss_samevol_map *
vss_samevol_map_of(const struct vss_store *store)
{
	/* Pairs with vss_samevol_publish(): holds every slot below size. */
	return smp_load_acquire(&vss_samevol(store)->map);
}

static sector_t vss_samevol_sector(const struct vss_store *store,
				   const struct vss_samevol_extent *e,
				   u32 slot)
{
	return e->sector + ((sector_t)(slot - e->first_slot) <<
			    (store->chunk_shift - SECTOR_SHIFT));
}

static int vss_samevol_rw_bvec(struct vss_store *store, u32 slot,
			       struct bio_vec *bvec, unsigned int nr_bvec,
			       size_t skip, unsigned int bytes, bool write,
			       bool copy)
{
	const struct vss_samevol_map *map = vss_samevol_map_of(store);

	/* One request per stretch of slots that are consecutive on disk. */
	while (bytes) {
		const struct vss_samevol_extent *e = vss_samevol_extent(map,
									slot);
		u32 nr = e->first_slot + e->nr_slots - slot;
		unsigned int len = min_t(u64, bytes,
					 (u64)nr << store->chunk_shift);
		int ret;

		ret = vss_bdev_rw_bvec_direct(store->backing,
					      vss_samevol_sector(store, e, slot),
					      bvec, nr_bvec, skip, len, write);
		if (ret)
			return ret;
		skip += len;
		bytes -= len;
		slot += nr;
	}
	return 0;
}

static struct block_device *vss_samevol_map(struct vss_store *store,
					    u32 slot, u32 offset,
					    sector_t *sector)
{
	const struct vss_samevol_extent *e =
		vss_samevol_extent(vss_samevol_map_of(store), slot);

	*sector = vss_samevol_sector(store, e, slot) + (offset >> SECTOR_SHIFT);
	return store->backing;
}

static bool vss_samevol_contiguous(const struct vss_store *store, u32 slot)
{
	const struct vss_samevol_extent *e =
		vss_samevol_extent(vss_samevol_map_of(store), slot);

	return slot + 1 < e->first_slot + e->nr_slots;
}

/* Every extent of every segment, slots or not: all of it is the store's. */
static unsigned int vss_samevol_ranges(const struct vss_store *store,
				       struct vss_range *out, unsigned int max)
{
	const struct vss_samevol_map *map = vss_samevol_map_of(store);
	sector_t base = store->backing->bd_start_sect;
	unsigned int i;

	for (i = 0; i < map->nr && i < max; i++)
		out[i] = (struct vss_range){
			.start = base + map->extent[i].start,
			.end = base + map->extent[i].start +
			       map->extent[i].nr_sectors,
		};
	return map->nr;
}

const struct vss_store_ops vss_store_samevol_ops = {
	.kind = VSS_STORAGE_SAMEVOL,
	.accepts = vss_samevol_accepts,
	.open = vss_samevol_open,
	.close = vss_samevol_close,
	.grow_ahead = vss_samevol_grow_ahead,
	.same_space = vss_samevol_same_space,
	.rw_bvec = vss_samevol_rw_bvec,
	.map = vss_samevol_map,
	.contiguous = vss_samevol_contiguous,
	.ranges = vss_samevol_ranges,
	.on_origin = true,
};
