/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every difference between the supported kernels (Debian 12: 6.1 and 6.12)
 * lives here, so the rest of the module reads as if written for one kernel.
 */
#ifndef VSS_COMPAT_H
#define VSS_COMPAT_H

#include <linux/version.h>
#include <linux/blkdev.h>
#include <linux/ftrace.h>
#include <linux/fs.h>
#include <linux/mount.h>
#include <linux/srcu.h>
#include <net/genetlink.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0)
#error "vss needs Linux 6.1 or newer"
#endif

/*
 * An open block device. 6.1 hands out the block_device itself; from 6.9
 * an open device is a struct file.
 */
struct vss_bdev_handle {
	struct block_device *bdev;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	struct file *file;
#endif
};

/*
 * Opening a dev_t that no disk has makes the block layer load a driver
 * for its major (BLOCK_LEGACY_AUTOLOAD) and wait for modprobe. vss opens
 * devices from its netlink handlers, which run under genl's cb_lock; a
 * driver that registers a netlink family of its own (drbd, nbd) takes that
 * lock for writing in its init, so both would wait for good, and every
 * netlink user of the machine with them. A device must therefore exist
 * already: vss never loads a driver. A disk deleted between this check and
 * the open still has its driver loaded, so the block layer's modprobe
 * returns at once.
 */
static inline bool vss_bdev_exists(dev_t dev)
{
	struct inode *inode = ilookup(blockdev_superblock, dev);

	if (!inode)
		return false;
	iput(inode);
	return true;
}

/*
 * Opens @dev, for writing if @write. A non-NULL @holder opens it
 * exclusively: nobody may mount it or open it exclusively meanwhile.
 * A device that does not exist is -ENXIO, without loading any driver.
 */
static inline int vss_bdev_open(dev_t dev, bool write, void *holder,
				struct vss_bdev_handle *handle)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	struct file *file;

	if (!vss_bdev_exists(dev))
		return -ENXIO;
	file = bdev_file_open_by_dev(dev, BLK_OPEN_READ |
				     (write ? BLK_OPEN_WRITE : 0), holder,
				     NULL);
	if (IS_ERR(file))
		return PTR_ERR(file);
	handle->file = file;
	handle->bdev = file_bdev(file);
#else
	struct block_device *bdev;

	if (!vss_bdev_exists(dev))
		return -ENXIO;
	bdev = blkdev_get_by_dev(dev, FMODE_READ | (write ? FMODE_WRITE : 0) |
				 (holder ? FMODE_EXCL : 0), holder);
	if (IS_ERR(bdev))
		return PTR_ERR(bdev);
	handle->bdev = bdev;
#endif
	return 0;
}

static inline void vss_bdev_close(struct vss_bdev_handle *handle, bool write,
				  bool exclusive)
{
	if (!handle->bdev)
		return;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	fput(handle->file);
	handle->file = NULL;
#else
	blkdev_put(handle->bdev, FMODE_READ | (write ? FMODE_WRITE : 0) |
		   (exclusive ? FMODE_EXCL : 0));
#endif
	handle->bdev = NULL;
}

/* The block device behind an open file of a block special file. */
static inline struct block_device *vss_file_bdev(struct file *file)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	return file_bdev(file);
#else
	return I_BDEV(file->f_mapping->host);
#endif
}

static inline int vss_bdev_freeze(struct block_device *bdev)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	return bdev_freeze(bdev);
#else
	return freeze_bdev(bdev);
#endif
}

static inline int vss_bdev_thaw(struct block_device *bdev)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	return bdev_thaw(bdev);
#else
	return thaw_bdev(bdev);
#endif
}

/*
 * The opens of its whole disk that the opens of partition @part account
 * for: every open of a partition opens the whole disk too, from 6.5 once
 * per open, before once for all the opens of one partition.
 */
static inline int vss_part_whole_opens(struct block_device *part)
{
	int openers = atomic_read(&part->bd_openers);

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	return openers;
#else
	return openers > 0;
#endif
}

/* Image disks: queue limits moved into blk_alloc_disk() in 6.9. */
static inline struct gendisk *vss_alloc_disk(unsigned int logical_block_size,
					     unsigned int physical_block_size,
					     unsigned int max_discard_sectors)
{
	struct gendisk *disk;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	struct queue_limits lim = {
		.logical_block_size = logical_block_size,
		.physical_block_size = physical_block_size,
		.io_min = physical_block_size,
		.max_hw_discard_sectors = max_discard_sectors,
		.max_write_zeroes_sectors = max_discard_sectors,
		.discard_granularity = max_discard_sectors ?
				       logical_block_size : 0,
	};

	disk = blk_alloc_disk(&lim, NUMA_NO_NODE);
	if (IS_ERR(disk))
		return NULL;
#else
	disk = blk_alloc_disk(NUMA_NO_NODE);
	if (!disk)
		return NULL;
	blk_queue_logical_block_size(disk->queue, logical_block_size);
	blk_queue_physical_block_size(disk->queue, physical_block_size);
	blk_queue_io_min(disk->queue, physical_block_size);
	if (max_discard_sectors) {
		blk_queue_max_discard_sectors(disk->queue, max_discard_sectors);
		blk_queue_max_write_zeroes_sectors(disk->queue,
						   max_discard_sectors);
		disk->queue->limits.discard_granularity = logical_block_size;
	}
#endif
	return disk;
}

/* block_device_operations open/release changed their arguments in 6.5. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#define VSS_BDOPS_OPEN_ARGS	struct gendisk *disk, blk_mode_t mode
#define VSS_BDOPS_OPEN_DISK	disk
#define VSS_BDOPS_RELEASE_ARGS	struct gendisk *disk
#else
#define VSS_BDOPS_OPEN_ARGS	struct block_device *bdev, fmode_t mode
#define VSS_BDOPS_OPEN_DISK	(bdev->bd_disk)
#define VSS_BDOPS_RELEASE_ARGS	struct gendisk *disk, fmode_t mode
#endif

/* Redirecting a traced function: the name of the setter changed in 6.8. */
static inline void vss_ftrace_set_ip(struct ftrace_regs *fregs,
				     unsigned long ip)
{
#ifdef ftrace_regs_set_instruction_pointer
	ftrace_regs_set_instruction_pointer(fregs, ip);
#else
	ftrace_instruction_pointer_set(fregs, ip);
#endif
}

/*
 * Joining the events group needs CAP_SYS_ADMIN (see uapi/linux/vss.h):
 * generic netlink checks GENL_MCAST_CAP_SYS_ADMIN when a socket binds the
 * group. The flag came with 6.7 and the stable updates of 6.1 and 6.6
 * (Debian's 6.1 has it); without it the group would be open to every
 * user, so vss does not build.
 */
#ifndef GENL_MCAST_CAP_SYS_ADMIN
#error "vss needs GENL_MCAST_CAP_SYS_ADMIN (6.7, or a 6.1/6.6 stable update from December 2023 on)"
#endif

/* Parsed attributes of a dump request moved into a genl_info in 6.2. */
static inline struct nlattr **vss_dumpit_attrs(struct netlink_callback *cb)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	return genl_dumpit_info(cb)->info.attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

/*
 * Extended-ack messages with numbers in them came in 6.2; before, the
 * plain message (without the numbers) is what the caller gets.
 */
#ifdef NL_SET_ERR_MSG_FMT
#define VSS_NL_SET_ERR_MSG_FMT(extack, plain, fmt, args...) \
	NL_SET_ERR_MSG_FMT(extack, fmt, ##args)
#else
#define VSS_NL_SET_ERR_MSG_FMT(extack, plain, fmt, args...) \
	NL_SET_ERR_MSG(extack, plain)
#endif

/*
 * An SRCU read section that another context ends (image I/O completes in
 * interrupt context): srcu_down_read() and srcu_up_read() came in 6.3;
 * before, the same counters without lockdep's per-task tracking.
 */
static inline int vss_srcu_down_read(struct srcu_struct *ssp)
	__acquires(ssp)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	return srcu_down_read(ssp);
#else
	return srcu_read_lock_notrace(ssp);
#endif
}

static inline void vss_srcu_up_read(struct srcu_struct *ssp, int idx)
	__releases(ssp)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	srcu_up_read(ssp, idx);
#else
	srcu_read_unlock_notrace(ssp, idx);
#endif
}

/*
 * The mount's id mapping that vfs_mkdir() and vfs_unlink() take: a
 * struct mnt_idmap from 6.3 on, the mount's user namespace before.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define vss_mnt_idmap(mnt)	mnt_idmap(mnt)
#else
#define vss_mnt_idmap(mnt)	mnt_user_ns(mnt)
#endif

#endif /* VSS_COMPAT_H */
