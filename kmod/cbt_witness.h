/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What proves that a device was not written while nobody tracked it: the
 * block layer's own write counters, the disk's sequence number and the
 * boot it happened in. Read when a map is saved and again when it is
 * restored; the restore may continue the saved generation only if the
 * two readings rule out a write in between.
 */
#ifndef VSS_CBT_WITNESS_H
#define VSS_CBT_WITNESS_H

#include <linux/blkdev.h>
#include <linux/uuid.h>

struct vss_cbt_witness {
	uuid_t boot_id;			/* null when it could not be read */
	u64 diskseq;
	u64 write_ios;			/* writes and discards completed */
	u64 direct_write_ios;		/* of a partition's whole disk */
	u32 flags;			/* VSS_CBT_SAVED_* */
	bool writes_in_flight;		/* bio-based device, not drained */
};

void vss_cbt_witness_read(struct block_device *bdev,
			  struct vss_cbt_witness *w);
bool vss_cbt_writes_in_flight(struct block_device *bdev);
const char *vss_cbt_witness_verdict(const struct vss_cbt_witness *saved,
				    const struct vss_cbt_witness *now);

#endif /* VSS_CBT_WITNESS_H */
