/* SPDX-License-Identifier: GPL-2.0 */
/* Catching bios on their way into the block layer. */
#ifndef VSS_INTERCEPT_H
#define VSS_INTERCEPT_H

#include <linux/bio.h>

int vss_intercept_init(void);
void vss_intercept_exit(void);
void vss_submit_bio_direct(struct bio *bio);
void vss_intercept_sync(void);

#endif /* VSS_INTERCEPT_H */
