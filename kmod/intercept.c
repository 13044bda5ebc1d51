// SPDX-License-Identifier: GPL-2.0
/*
 * Write interception.
 *
 * Every bio of every block device enters the block layer through
 * submit_bio_noacct(): writes from filesystems and raw opens, splits and
 * remainders resubmitted by the block core, and clones sent down by dm
 * and md (also while current->bio_list is set). vss redirects that
 * exported, traceable function to its own entry with an ftrace_ops that
 * modifies the instruction pointer, the mechanism livepatch uses. No
 * symbol addresses are looked up and no function table is swapped, so
 * every partition of a disk and every stacked device is seen alike.
 *
 * Bios that vss sends on after taking them over (held, deferred, image
 * pieces) must reach the real function: the ftrace handler lets a call
 * through when it comes from this module. That call must therefore never
 * be a tail call (the caller would be our caller), which
 * vss_submit_bio_direct() guarantees. vss's synchronous chunk I/O (copies,
 * overlay fills) goes out through submit_bio_wait() instead and so comes
 * back through the hook like any bio: origin reads are reads, and store
 * writes overlap no origin (a store never lies on an origin, an origin is
 * never a store), so both pass untouched and copies never nest.
 *
 * del_gendisk() is redirected the same way so that an origin that goes
 * away (hot unplug, driver removal) fails its snapshots before its disk
 * is torn down.
 */
#include "vss.h"
#include "intercept.h"
#include "origin.h"
#include <linux/ftrace.h>
#include <linux/module.h>
#include <linux/srcu.h>

/*
 * Holds the module in place while a task runs in a redirected entry: a
 * task may have entered one just before the hook was removed.
 */
DEFINE_STATIC_SRCU(vss_hook_srcu);

/**
 * vss_submit_bio_direct - hand a bio to the real submit_bio_noacct()
 * @bio: the bio
 *
 * Bypasses interception: the caller is this module.
 */
noinline void vss_submit_bio_direct(struct bio *bio)
{
	submit_bio_noacct(bio);
	/* Not a tail call: the ftrace handler must see this module. */
	barrier();
}

/**
 * vss_intercept_sync - wait for bios already inside the write path
 *
 * When it returns, every bio that entered before has been submitted (or
 * taken over): one that missed a newly tracked origin is in its queue.
 */
void vss_intercept_sync(void)
{
	synchronize_srcu(&vss_hook_srcu);
}

static void notrace vss_submit_bio_noacct_entry(struct bio *bio)
{
	int idx = srcu_read_lock(&vss_hook_srcu);

	if (!vss_intercept_write(bio))
		vss_submit_bio_direct(bio);
	srcu_read_unlock(&vss_hook_srcu, idx);
}

static noinline void vss_del_gendisk_call(struct gendisk *disk)
{
	del_gendisk(disk);
	barrier();
}

static void notrace vss_del_gendisk_entry(struct gendisk *disk)
{
	int idx = srcu_read_lock(&vss_hook_srcu);

	vss_origins_mark_removed(disk);
	vss_del_gendisk_call(disk);
	srcu_read_unlock(&vss_hook_srcu, idx);
}

struct vss_hook {
	const char *name;
	void *entry;
	struct ftrace_ops ops;
	bool registered;
};

static void notrace vss_ftrace_handler(unsigned long ip,
				       unsigned long parent_ip,
				       struct ftrace_ops *ops,
				       struct ftrace_regs *fregs)
{
	struct vss_hook *hook = container_of(ops, struct vss_hook, ops);

	if (!within_module(parent_ip, THIS_MODULE))
		vss_ftrace_set_ip(fregs, (unsigned long)hook->entry);
}

static struct vss_hook vss_hooks[] = {
	{ .name = "submit_bio_noacct", .entry = vss_submit_bio_noacct_entry },
	{ .name = "del_gendisk", .entry = vss_del_gendisk_entry },
};

static int vss_hook_install(struct vss_hook *hook)
{
	int ret;

	hook->ops.func = vss_ftrace_handler;
	/*
	 * PERMANENT: turning ftrace off by sysctl would silently stop
	 * interception, so ftrace refuses while vss is hooked.
	 */
	hook->ops.flags = FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_PERMANENT;
#ifndef CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS
	hook->ops.flags |= FTRACE_OPS_FL_SAVE_REGS;
#endif
	ret = ftrace_set_filter(&hook->ops, (unsigned char *)hook->name,
				strlen(hook->name), 1);
	if (ret) {
		pr_err("cannot trace %s (%d): is ftrace enabled?\n",
		       hook->name, ret);
		return ret;
	}
	ret = register_ftrace_function(&hook->ops);
	if (ret) {
		pr_err("cannot hook %s (%d): is another module modifying it?\n",
		       hook->name, ret);
		ftrace_free_filter(&hook->ops);
		return ret;
	}
	hook->registered = true;
	return 0;
}

static void vss_hook_remove(struct vss_hook *hook)
{
	if (!hook->registered)
		return;
	WARN_ON(unregister_ftrace_function(&hook->ops));
	ftrace_free_filter(&hook->ops);
	hook->registered = false;
}

int __init vss_intercept_init(void)
{
	unsigned int i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(vss_hooks); i++) {
		ret = vss_hook_install(&vss_hooks[i]);
		if (ret) {
			vss_intercept_exit();
			return ret;
		}
	}
	return 0;
}

void vss_intercept_exit(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vss_hooks); i++)
		vss_hook_remove(&vss_hooks[i]);
	synchronize_srcu(&vss_hook_srcu);
}
