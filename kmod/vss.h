/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Module-wide declarations: shared work queues, the bio set, and the
 * control lock that orders every change to the set of objects.
 */
#ifndef VSS_VSS_H
#define VSS_VSS_H

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mutex.h>
#include <linux/workqueue.h>
#include <linux/bio.h>
#include <linux/srcu.h>
#include "compat.h"

#define VSS_VERSION "0.4.0"

/*
 * vss_ctl_lock serialises every change to the object graph: tracking and
 * untracking origins, committing and deleting snapshots, opening and
 * releasing stores. It is a sleeping lock taken only in process context by
 * the control path; the write path never takes it.
 */
extern struct mutex vss_ctl_lock;

/*
 * Copy-on-write work (vss_cow_wq) and image I/O (vss_image_wq) run on
 * separate unbound queues: copy-on-write waits for image reads of the same
 * chunk to finish, so the two must never compete for the same workers.
 * A write's work in vss_cow_wq waits for the copies of its further chunks
 * in vss_cow_chunk_wq, which wait for nothing in vss_cow_wq.
 */
extern struct workqueue_struct *vss_cow_wq;
extern struct workqueue_struct *vss_cow_chunk_wq;
extern struct workqueue_struct *vss_image_wq;
extern struct bio_set vss_bio_set;

/*
 * Image I/O holds vss_image_srcu while it uses an origin, its chain and
 * the slots that chain entries point to; whoever retires any of those
 * waits for it.
 */
extern struct srcu_struct vss_image_srcu;

#endif /* VSS_VSS_H */
