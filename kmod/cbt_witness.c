// SPDX-License-Identifier: GPL-2.0
/*
 * The witness of a saved map. The block layer counts every write and
 * discard it completes on a device (when the device's I/O statistics are
 * on) in counters that live as long as the disk, so equal counters at
 * save and at restore, in the same boot and on the same disk (same disk
 * sequence number), prove that nothing was written in between. Across a
 * reboot the counters start again from zero: there the proof is that the
 * device had no user but vss when it was saved (so nothing could write to
 * it until the machine went down) and has completed no write since boot.
 *
 * A partition's counters do not see writes made through its whole disk,
 * so for a partition the whole disk's writes that went through no
 * partition are counted too, and "no user but vss" means nobody holding
 * the whole disk open either.
 */
#include "vss.h"
#include "cbt_witness.h"
#include "chunk_io.h"
#include <linux/fs.h>
#include <linux/part_stat.h>
#include <uapi/linux/vss.h>

/* Opens of an origin's device that are vss's own (struct vss_origin). */
#define VSS_OWN_OPENS	1

static u64 vss_bdev_write_ios(struct block_device *bdev)
{
	return part_stat_read(bdev, ios[STAT_WRITE]) +
	       part_stat_read(bdev, ios[STAT_DISCARD]);
}

/* Writes to @disk as a whole that went through none of its partitions. */
static u64 vss_disk_direct_write_ios(struct gendisk *disk)
{
	struct block_device *part;
	unsigned long index;
	u64 through_parts = 0;

	rcu_read_lock();
	xa_for_each_start(&disk->part_tbl, index, part, 1)
		through_parts += vss_bdev_write_ios(part);
	rcu_read_unlock();
	return vss_bdev_write_ios(disk->part0) - through_parts;
}

/*
 * Opens of @disk's whole device that are not a partition's: whoever holds
 * it open could write to any partition through it.
 */
static int vss_disk_direct_openers(struct gendisk *disk)
{
	struct block_device *part;
	unsigned long index;
	int through_parts = 0;

	rcu_read_lock();
	xa_for_each_start(&disk->part_tbl, index, part, 1)
		through_parts += vss_part_whole_opens(part);
	rcu_read_unlock();
	return atomic_read(&disk->part0->bd_openers) - through_parts;
}

/*
 * Did nobody but vss have @bdev open? For a partition, nobody may have its
 * whole disk open either, other than through partitions.
 */
static bool vss_bdev_quiescent(struct block_device *bdev)
{
	if (atomic_read(&bdev->bd_openers) > VSS_OWN_OPENS)
		return false;
	return !bdev_is_partition(bdev) ||
	       vss_disk_direct_openers(bdev->bd_disk) <= 0;
}

/*
 * The boot id the kernel shows in /proc/sys/kernel/random/boot_id: it is
 * not exported to modules, so it is read where userspace reads it.
 */
static void vss_read_boot_id(uuid_t *out)
{
	char text[UUID_STRING_LEN + 1] = { 0 };
	struct file *file;
	loff_t pos = 0;
	ssize_t len;

	uuid_copy(out, &uuid_null);
	file = filp_open("/proc/sys/kernel/random/boot_id", O_RDONLY, 0);
	if (IS_ERR(file))
		return;
	len = kernel_read(file, text, UUID_STRING_LEN, &pos);
	fput(file);
	if (len == UUID_STRING_LEN && uuid_parse(text, out))
		uuid_copy(out, &uuid_null);
}

/*
 * Whether the block layer counts @bdev's I/O. The queue's flag says so for
 * request-based disks; a bio-based driver may count whatever its flag says
 * (6.1's device-mapper does), so there a read is made and watched: a read
 * counter that moves proves the driver counts, writes included.
 */
static bool vss_bdev_io_counted(struct block_device *bdev)
{
	unsigned int bytes = bdev_logical_block_size(bdev);
	struct vss_chunk_buf *buf;
	u64 before;
	bool counted;

	if (blk_queue_io_stat(bdev_get_queue(bdev)))
		return true;
	if (queue_is_mq(bdev_get_queue(bdev)))
		return false;
	buf = vss_chunk_buf_alloc(bytes, GFP_NOIO);
	if (!buf)
		return false;
	before = part_stat_read(bdev, ios[STAT_READ]);
	counted = !vss_bdev_rw(bdev, 0, buf, bytes, false) &&
		  part_stat_read(bdev, ios[STAT_READ]) != before;
	vss_chunk_buf_free(buf);
	return counted;
}

/**
 * vss_cbt_writes_in_flight - writes started on @bdev and not completed
 * @bdev: a device
 *
 * Only bio-based devices (dm, md) keep this count; for request-based
 * ones freezing the queue drains writes, and this reads zero.
 *
 * Return: true if some are in flight.
 */
bool vss_cbt_writes_in_flight(struct block_device *bdev)
{
	long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += part_stat_local_read_cpu(bdev, in_flight[WRITE], cpu);
	return sum > 0;
}

/**
 * vss_cbt_witness_read - read the witness of @bdev now
 * @bdev: the origin's device, which vss has open once
 * @w: filled in
 *
 * The caller has drained the device's writes (write gate closed, queue
 * frozen once) so that the counters are settled.
 */
void vss_cbt_witness_read(struct block_device *bdev,
			  struct vss_cbt_witness *w)
{
	memset(w, 0, sizeof(*w));
	vss_read_boot_id(&w->boot_id);
	w->diskseq = bdev->bd_disk->diskseq;
	w->write_ios = vss_bdev_write_ios(bdev);
	if (bdev_is_partition(bdev))
		w->direct_write_ios = vss_disk_direct_write_ios(bdev->bd_disk);
	if (vss_bdev_io_counted(bdev))
		w->flags |= VSS_CBT_SAVED_IOSTAT;
	if (vss_bdev_quiescent(bdev))
		w->flags |= VSS_CBT_SAVED_QUIESCENT;
	w->writes_in_flight = vss_cbt_writes_in_flight(bdev);
}

/* Why a saved generation may not go on, as the user reads it. */
static const char *const vss_reason_no_iostat =
	"the device's I/O statistics are off: untracked writes cannot be ruled out";
static const char *const vss_reason_in_flight =
	"writes started before tracking resumed were still in flight";
static const char *const vss_reason_no_boot_id =
	"the boot id cannot be read";
static const char *const vss_reason_reattached =
	"the device was attached again since the map was saved";
static const char *const vss_reason_written =
	"the device was written while it was not tracked";
static const char *const vss_reason_in_use =
	"the device was in use when its map was saved and may have been written after";
static const char *const vss_reason_written_since_boot =
	"the device was written since boot before tracking resumed";

/**
 * vss_cbt_witness_verdict - may a saved generation go on?
 * @saved: the witness read when the map was saved
 * @now: the witness read now, with tracking already on again
 *
 * Return: NULL if no write can have been missed in between; otherwise why
 * a write may have been missed, in words for the user.
 */
const char *vss_cbt_witness_verdict(const struct vss_cbt_witness *saved,
				    const struct vss_cbt_witness *now)
{
	if (!(saved->flags & VSS_CBT_SAVED_IOSTAT) ||
	    !(now->flags & VSS_CBT_SAVED_IOSTAT))
		return vss_reason_no_iostat;
	if (now->writes_in_flight)
		return vss_reason_in_flight;
	if (uuid_is_null(&now->boot_id) || uuid_is_null(&saved->boot_id))
		return vss_reason_no_boot_id;
	if (uuid_equal(&saved->boot_id, &now->boot_id)) {
		if (saved->diskseq != now->diskseq)
			return vss_reason_reattached;
		if (saved->write_ios != now->write_ios ||
		    saved->direct_write_ios != now->direct_write_ios)
			return vss_reason_written;
		return NULL;
	}
	if (!(saved->flags & VSS_CBT_SAVED_QUIESCENT))
		return vss_reason_in_use;
	if (now->write_ios || now->direct_write_ios)
		return vss_reason_written_since_boot;
	return NULL;
}
