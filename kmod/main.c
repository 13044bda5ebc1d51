// SPDX-License-Identifier: GPL-2.0
/*
 * vss: Volume Shadow Copy Service for Linux.
 *
 * Module setup and teardown only; each concept lives in its own file:
 * intercept.c (catching bios), origin.c (write path and write gate),
 * cow.c (copy-on-write and the exception chain), store.c (diff storage),
 * snapshot.c (sets, commit, delete), image.c (image devices), netlink.c
 * (control plane), event.c (multicast events).
 */
#include "vss.h"
#include "netlink.h"
#include "intercept.h"
#include "origin.h"
#include "image.h"
#include "store.h"
#include <linux/module.h>

/* Orders every change to the object graph; see vss.h. */
DEFINE_MUTEX(vss_ctl_lock);
DEFINE_SRCU(vss_image_srcu);
struct workqueue_struct *vss_cow_wq;
struct workqueue_struct *vss_cow_chunk_wq;
struct workqueue_struct *vss_image_wq;
struct bio_set vss_bio_set;

static int __init vss_init(void)
{
	int ret;

	ret = bioset_init(&vss_bio_set, VSS_BIO_RESERVE, 0, BIOSET_NEED_BVECS);
	if (ret)
		return ret;
	ret = -ENOMEM;
	/* WQ_MEM_RECLAIM: writeback may depend on these making progress. */
	vss_cow_wq = alloc_workqueue("vss_cow", WQ_UNBOUND | WQ_MEM_RECLAIM,
				     0);
	if (!vss_cow_wq)
		goto err_bioset;
	vss_cow_chunk_wq = alloc_workqueue("vss_cow_chunk",
					   WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!vss_cow_chunk_wq)
		goto err_cow_wq;
	vss_image_wq = alloc_workqueue("vss_image",
				       WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!vss_image_wq)
		goto err_cow_chunk_wq;
	ret = vss_store_init();
	if (ret)
		goto err_image_wq;
	ret = vss_origin_init();
	if (ret)
		goto err_store;
	ret = vss_image_init();
	if (ret)
		goto err_origin;
	ret = vss_intercept_init();
	if (ret)
		goto err_image;
	ret = vss_netlink_init();
	if (ret)
		goto err_intercept;
	pr_info("version %s, protocol %u\n", VSS_VERSION,
		VSS_PROTOCOL_VERSION);
	return 0;

err_intercept:
	vss_intercept_exit();
err_image:
	vss_image_exit();
err_origin:
	vss_origin_exit();
err_store:
	vss_store_exit();
err_image_wq:
	destroy_workqueue(vss_image_wq);
err_cow_chunk_wq:
	destroy_workqueue(vss_cow_chunk_wq);
err_cow_wq:
	destroy_workqueue(vss_cow_wq);
err_bioset:
	bioset_exit(&vss_bio_set);
	return ret;
}

/*
 * Every snapshot set holds a module reference, so this runs only when
 * none exists: there is nothing left to tear down but the machinery.
 */
static void __exit vss_exit(void)
{
	vss_netlink_exit();
	/* Growths ahead of need may still hold the stores; they go first. */
	vss_store_exit();
	vss_intercept_exit();
	rcu_barrier();
	srcu_barrier(&vss_image_srcu);
	vss_image_exit();
	vss_origin_exit();
	destroy_workqueue(vss_image_wq);
	destroy_workqueue(vss_cow_wq);
	destroy_workqueue(vss_cow_chunk_wq);
	bioset_exit(&vss_bio_set);
	/* vss_image_srcu is cleaned up by the module loader (DEFINE_SRCU). */
}

module_init(vss_init);
module_exit(vss_exit);

MODULE_DESCRIPTION("Volume Shadow Copy Service: point-in-time images of live block devices");
MODULE_AUTHOR("The vss developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(VSS_VERSION);
MODULE_ALIAS_GENL_FAMILY(VSS_GENL_NAME);
