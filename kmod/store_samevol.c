// SPDX-License-Identifier: GPL-2.0
/*
 * The same-volume backend (VSS_STORAGE_SAMEVOL): the store lives in a
 * filesystem on a device that is snapshotted itself, for machines with
 * one disk. It is a file ("segment") DIR/.vss-store/<uuid>.0 on ext4 or
 * XFS, allocated in full with fallocate() when the store opens (unwritten
 * extents: nothing is written), then pinned as the kernel pins an active
 * swap file:
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
 * create with the same directory shares. It takes at most half of its
 * filesystem's free space, so the filesystem stays writable for its users.
 * Its file goes with the store; one left by a crash is unpinned, and the
 * next store opened in that directory removes it (see "Leftovers" below).
 */
#include "vss.h"
#include "store.h"
#include "origin.h"
#include <linux/ctype.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <linux/namei.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/swap.h>
#include <linux/uuid.h>

#define VSS_SAMEVOL_DIR		".vss-store"
/* A store takes at most 1/VSS_SAMEVOL_FREE_SHARE of the free space. */
#define VSS_SAMEVOL_FREE_SHARE	2
/* Without a limit, it takes 1/VSS_SAMEVOL_DEFAULT_SHARE of the filesystem. */
#define VSS_SAMEVOL_DEFAULT_SHARE	8

/* Consecutive slots at consecutive sectors of the store's device. */
struct vss_samevol_extent {
	u32 first_slot;
	u32 nr_slots;
	sector_t sector;	/* of the first slot, on store->backing */
	sector_t nr_sectors;	/* of the whole extent, its tail included */
};

/* Fixed once the store is open. */
struct vss_samevol {
	struct path dir;		/* the directory given: what is shared */
	struct file *file;		/* the segment */
	bool pinned;			/* S_SWAPFILE set by us */
	unsigned int nr_extents;
	struct vss_samevol_extent *extents;	/* by first_slot */
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
				struct vss_samevol *sv,
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
	if (store->limit > free / VSS_SAMEVOL_FREE_SHARE) {
		NL_SET_ERR_MSG(extack,
			       "storage limit exceeds half the free space of its filesystem (a store on a snapshotted device never takes more)");
		return -ENOSPC;
	}
	store->limit = round_down(store->limit, 1ULL << store->chunk_shift);
	if (!store->limit) {
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

/* Creates the segment, with all of its blocks allocated. */
static int vss_samevol_create(struct vss_store *store, struct vss_samevol *sv,
			      const char *path, struct netlink_ext_ack *extack)
{
	struct file *file;
	uuid_t id;
	char *name;
	int ret;

	ret = vss_samevol_mkdir(path);
	if (ret) {
		NL_SET_ERR_MSG(extack,
			       "cannot create " VSS_SAMEVOL_DIR " in the storage directory");
		return ret;
	}
	vss_samevol_remove_leftovers(path);
	uuid_gen(&id);
	name = kasprintf(GFP_KERNEL, "%s/" VSS_SAMEVOL_DIR "/%pUb.0", path, &id);
	if (!name)
		return -ENOMEM;
	file = filp_open(name, O_RDWR | O_CREAT | O_EXCL | O_LARGEFILE |
			 O_NOATIME, 0600);
	kfree(name);
	if (IS_ERR(file)) {
		NL_SET_ERR_MSG(extack, "cannot create the store file");
		return PTR_ERR(file);
	}
	sv->file = file;
	if (!file->f_op->fallocate) {
		NL_SET_ERR_MSG(extack,
			       "storage filesystem does not support fallocate");
		return -EOPNOTSUPP;
	}
	ret = vfs_fallocate(file, 0, 0, store->limit);
	if (ret) {
		NL_SET_ERR_MSG(extack,
			       "cannot allocate the store in its filesystem");
		return ret;
	}
	return 0;
}

/* Turns the extents swap_activate() found into slots, and frees them. */
static int vss_samevol_take_extents(struct vss_store *store,
				    struct vss_samevol *sv,
				    struct swap_info_struct *sis)
{
	unsigned int shift = store->chunk_shift - SECTOR_SHIFT;
	struct rb_node *node;
	unsigned int nr = 0;
	u64 slots = 0;

	for (node = rb_first(&sis->swap_extent_root); node;
	     node = rb_next(node))
		nr++;
	sv->extents = kcalloc(nr, sizeof(*sv->extents), GFP_KERNEL);
	if (!sv->extents)
		return -ENOMEM;
	for (node = rb_first(&sis->swap_extent_root); node;
	     node = rb_next(node)) {
		struct swap_extent *se = rb_entry(node, struct swap_extent,
						  rb_node);
		struct vss_samevol_extent *e = &sv->extents[sv->nr_extents];
		sector_t sectors = (sector_t)se->nr_pages <<
				   (PAGE_SHIFT - SECTOR_SHIFT);

		e->first_slot = slots;
		e->nr_slots = min_t(u64, sectors >> shift, INT_MAX - slots);
		e->sector = (sector_t)se->start_block <<
			    (PAGE_SHIFT - SECTOR_SHIFT);
		e->nr_sectors = sectors;
		slots += e->nr_slots;
		sv->nr_extents++;
	}
	store->limit = min_t(u64, store->limit, slots << store->chunk_shift);
	store->size = store->limit;
	return 0;
}

static void vss_samevol_free_extents(struct swap_info_struct *sis)
{
	struct rb_node *node;

	while ((node = rb_first(&sis->swap_extent_root))) {
		rb_erase(node, &sis->swap_extent_root);
		kfree(rb_entry(node, struct swap_extent, rb_node));
	}
}

/* Maps and pins the segment, as swapon does a swap file. */
static int vss_samevol_pin(struct vss_store *store, struct vss_samevol *sv,
			   struct netlink_ext_ack *extack)
{
	struct file *file = sv->file;
	struct inode *inode = file_inode(file);
	const struct address_space_operations *aops = file->f_mapping->a_ops;
	struct swap_info_struct *sis;
	sector_t span;
	int ret;

	if (!aops->swap_activate) {
		NL_SET_ERR_MSG(extack,
			       "the storage's filesystem cannot pin a file's blocks (as for a swap file)");
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
		NL_SET_ERR_MSG(extack,
			       "the storage's filesystem cannot map the store file's blocks");
		goto out;
	}
	/* XFS names its realtime device here for a file that lives there. */
	if (sis->bdev != store->backing) {
		NL_SET_ERR_MSG(extack,
			       "the store file is not on its filesystem's main device");
		ret = -EOPNOTSUPP;
		goto out;
	}
	ret = vss_samevol_take_extents(store, sv, sis);
	if (ret)
		goto out;
	inode->i_flags |= S_SWAPFILE;
	ret = inode_drain_writes(inode);
	if (ret)
		inode->i_flags &= ~S_SWAPFILE;
	else
		sv->pinned = true;
out:
	inode_unlock(inode);
	vss_samevol_free_extents(sis);
	kfree(sis);
	return ret;
}

static int vss_samevol_open(struct vss_store *store, const char *path,
			    struct netlink_ext_ack *extack)
{
	struct vss_samevol *sv;
	int ret;

	sv = kzalloc(sizeof(*sv), GFP_KERNEL);
	if (!sv)
		return -ENOMEM;
	store->private = sv;
	ret = kern_path(path, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &sv->dir);
	if (ret) {
		sv->dir.dentry = NULL;
		NL_SET_ERR_MSG(extack, "storage path does not exist");
		return ret;
	}
	ret = vss_samevol_check_fs(store, sv, extack);
	if (ret)
		return ret;
	ret = vss_samevol_create(store, sv, path, extack);
	if (ret)
		return ret;
	return vss_samevol_pin(store, sv, extack);
}

/*
 * Unlinks the segment. A frozen filesystem is not waited for (the caller
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

static void vss_samevol_close(struct vss_store *store)
{
	struct vss_samevol *sv = vss_samevol(store);
	struct inode *inode;

	if (!sv)
		return;
	if (sv->file) {
		inode = file_inode(sv->file);
		if (sv->pinned) {
			inode_lock(inode);
			inode->i_flags &= ~S_SWAPFILE;
			inode_unlock(inode);
		}
		vss_samevol_unlink(sv->file);
		fput(sv->file);
	}
	kfree(sv->extents);
	if (sv->dir.dentry)
		path_put(&sv->dir);
	kfree(sv);
}

/* The extent that holds @slot; the slot is below max_slots. */
static const struct vss_samevol_extent *
vss_samevol_extent(const struct vss_samevol *sv, u32 slot)
{
	unsigned int lo = 0, hi = sv->nr_extents;

	while (hi - lo > 1) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (sv->extents[mid].first_slot <= slot)
			lo = mid;
		else
			hi = mid;
	}
	return &sv->extents[lo];
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
	const struct vss_samevol *sv = vss_samevol(store);

	/* One request per stretch of slots that are consecutive on disk. */
	while (bytes) {
		const struct vss_samevol_extent *e = vss_samevol_extent(sv, slot);
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
		vss_samevol_extent(vss_samevol(store), slot);

	*sector = vss_samevol_sector(store, e, slot) + (offset >> SECTOR_SHIFT);
	return store->backing;
}

static bool vss_samevol_contiguous(const struct vss_store *store, u32 slot)
{
	const struct vss_samevol_extent *e =
		vss_samevol_extent(vss_samevol(store), slot);

	return slot + 1 < e->first_slot + e->nr_slots;
}

static unsigned int vss_samevol_ranges(const struct vss_store *store,
				       struct vss_range *out, unsigned int max)
{
	const struct vss_samevol *sv = vss_samevol(store);
	sector_t base = store->backing->bd_start_sect;
	unsigned int i;

	for (i = 0; i < sv->nr_extents && i < max; i++)
		out[i] = (struct vss_range){
			.start = base + sv->extents[i].sector,
			.end = base + sv->extents[i].sector +
			       sv->extents[i].nr_sectors,
		};
	return sv->nr_extents;
}

const struct vss_store_ops vss_store_samevol_ops = {
	.kind = VSS_STORAGE_SAMEVOL,
	.accepts = vss_samevol_accepts,
	.open = vss_samevol_open,
	.close = vss_samevol_close,
	.same_space = vss_samevol_same_space,
	.rw_bvec = vss_samevol_rw_bvec,
	.map = vss_samevol_map,
	.contiguous = vss_samevol_contiguous,
	.ranges = vss_samevol_ranges,
	.on_origin = true,
};
