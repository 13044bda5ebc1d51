// SPDX-License-Identifier: GPL-2.0
/*
 * A test module for the test harness, never for vss: loaded into the debug
 * kernel, it commits one real bug of the kind its "what" parameter names,
 * so that selftests/vss_debug_kernel_test.sh can check that the kernel's
 * checker reports it and scripts/vm-run fails the run for it.
 *
 *   insmod vss_provoke.ko what=lockdep|kasan|kfence|kmemleak|hung|
 *                              atomic-sleep|list|odebug-work|odebug-timer
 *
 * Each bug is made so that the guest survives it, in a function of its own
 * (noinline: the report names it): the lock inversion
 * takes the two locks in turn (lockdep reports the possible deadlock), the
 * bad accesses read memory that is still mapped, the hung task is a thread
 * that sleeps uninterruptibly for hung_s seconds and then ends.
 */
#include <linux/delay.h>
#include <linux/kfence.h>
#include <linux/kthread.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timer.h>
#include <linux/workqueue.h>

static char *what = "";
module_param(what, charp, 0444);
MODULE_PARM_DESC(what, "the bug to commit");

static unsigned int hung_s = 8;
module_param(hung_s, uint, 0444);
MODULE_PARM_DESC(hung_s, "how long the hung thread sleeps (seconds)");

/* Taken in both orders, one after the other: a deadlock lockdep foresees. */
static DEFINE_MUTEX(provoke_first);
static DEFINE_MUTEX(provoke_second);

static noinline void provoke_lockdep(void)
{
	mutex_lock(&provoke_first);
	mutex_lock(&provoke_second);
	mutex_unlock(&provoke_second);
	mutex_unlock(&provoke_first);

	mutex_lock(&provoke_second);
	mutex_lock(&provoke_first);
	mutex_unlock(&provoke_first);
	mutex_unlock(&provoke_second);
}

static noinline int provoke_kasan(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	kfree(p);
	OPTIMIZER_HIDE_VAR(p);
	pr_info("vss_provoke: read after free: %d\n", READ_ONCE(p[8]));
	return 0;
}

/* KFENCE guards one allocation in a while: allocate until one is its. */
static noinline int provoke_kfence(void)
{
	unsigned long end = jiffies + 30 * HZ;
	char *p;

	while (time_before(jiffies, end)) {
		p = kmalloc(32, GFP_KERNEL);
		if (!p)
			return -ENOMEM;
		if (is_kfence_address(p)) {
			kfree(p);
			OPTIMIZER_HIDE_VAR(p);
			pr_info("vss_provoke: read after free: %d\n",
				READ_ONCE(p[0]));
			return 0;
		}
		kfree(p);
		usleep_range(500, 1000);
	}
	pr_err("vss_provoke: no KFENCE allocation in 30 s\n");
	return -ETIMEDOUT;
}

static noinline void provoke_kmemleak(void)
{
	void *p = kmalloc(256, GFP_KERNEL);

	if (p)
		memset(p, 0x5a, 256);
	pr_info("vss_provoke: 256 bytes leaked\n");
}

static struct task_struct *provoke_hung;

static int provoke_hung_thread(void *data)
{
	msleep(hung_s * 1000);
	return 0;
}

/* mutex_lock() may sleep: uncontended it does not, but it says it might. */
static noinline void provoke_atomic_sleep(void)
{
	preempt_disable();
	mutex_lock(&provoke_first);
	mutex_unlock(&provoke_first);
	preempt_enable();
}

static noinline void provoke_list(void)
{
	LIST_HEAD(head);
	struct list_head entry;

	list_add(&entry, &head);
	list_add(&entry, &head);
	INIT_LIST_HEAD(&head);
}

static void provoke_work_fn(struct work_struct *work)
{
}

static noinline void provoke_odebug_work(void)
{
	/* An object on the stack must be announced as such (_ONSTACK). */
	struct work_struct work;

	INIT_WORK(&work, provoke_work_fn);
}

static void provoke_timer_fn(struct timer_list *timer)
{
}

static noinline void provoke_odebug_timer(void)
{
	struct timer_list timer;

	timer_setup(&timer, provoke_timer_fn, 0);
}

static int __init provoke_init(void)
{
	pr_info("vss_provoke: %s\n", what);
	if (!strcmp(what, "lockdep")) {
		provoke_lockdep();
	} else if (!strcmp(what, "kasan")) {
		return provoke_kasan();
	} else if (!strcmp(what, "kfence")) {
		return provoke_kfence();
	} else if (!strcmp(what, "kmemleak")) {
		provoke_kmemleak();
	} else if (!strcmp(what, "hung")) {
		provoke_hung = kthread_run(provoke_hung_thread, NULL,
					   "provoke_hung");
		if (IS_ERR(provoke_hung))
			return PTR_ERR(provoke_hung);
		get_task_struct(provoke_hung);
	} else if (!strcmp(what, "atomic-sleep")) {
		provoke_atomic_sleep();
	} else if (!strcmp(what, "list")) {
		provoke_list();
	} else if (!strcmp(what, "odebug-work")) {
		provoke_odebug_work();
	} else if (!strcmp(what, "odebug-timer")) {
		provoke_odebug_timer();
	} else if (strcmp(what, "nothing")) {
		pr_err("vss_provoke: unknown what=%s\n", what);
		return -EINVAL;
	}
	return 0;
}

static void __exit provoke_exit(void)
{
	if (provoke_hung) {
		kthread_stop(provoke_hung);
		put_task_struct(provoke_hung);
	}
}

module_init(provoke_init);
module_exit(provoke_exit);
MODULE_DESCRIPTION("Commits one bug so that the test harness can see it caught");
MODULE_LICENSE("GPL");
