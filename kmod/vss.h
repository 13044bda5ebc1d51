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

/*
 * More writes than this waiting for copy-on-write on one origin (with the
 * chunk copies other workers make for them) make its submitters wait.
 */
#define VSS_MAX_DEFERRED	256

/*
 * The bios of vss's own synchronous chunk I/O (chunk_io.c): a copy's
 * origin read and block-store writes, an image overlay's fill, the
 * witness's probe read. Never the shared fs_bio_set, whose reserve the
 * very writes waiting for a copy may hold.
 *
 * Worst case: each of those callers holds one bio at a time, and each
 * bio's I/O waits for nothing of vss (a store never lies on an origin
 * and an origin is never a store, so no copy; a write gate holds only
 * writes that overlap its origin), so every holder frees its bio by
 * itself and one bio of reserve would keep them all going. One origin
 * has at most VSS_MAX_DEFERRED copies in flight, so a reserve of that
 * many lets all of them go on without waiting for memory: 256 bios and
 * 256 vectors of BIO_MAX_VECS pages, about 1.1 MiB, taken at load.
 */
#define VSS_BIO_RESERVE		VSS_MAX_DEFERRED
extern struct bio_set vss_bio_set;

/*
 * Image I/O holds vss_image_srcu while it uses an origin, its chain and
 * the slots that chain entries point to; whoever retires any of those
 * waits for it.
 */
extern struct srcu_struct vss_image_srcu;

#endif /* VSS_VSS_H */
