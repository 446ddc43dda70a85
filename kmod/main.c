// SPDX-License-Identifier: GPL-2.0
/*
 * cowmap: private copy-on-write views of a shared memory-mapped file.
 *
 * Module init/exit, the /dev/cowmap file operations and the parameters.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/stringify.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/uaccess.h>

#include "internal.h"

DEFINE_PER_CPU(struct cowmap_stats, cowmap_stats);
atomic_long_t cowmap_private_pages;

u64 cowmap_stat_sum(enum cowmap_stat item)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(cowmap_stats, cpu).n[item];
	return sum;
}

unsigned long cowmap_max_session_pages;
module_param_named(max_session_pages, cowmap_max_session_pages, ulong, 0644);
MODULE_PARM_DESC(max_session_pages,
		 "Private pages one session may hold; writes beyond get SIGBUS (0: no cap)");

/* A cap of 0 would mean "none" to some and "nothing" to others: refused. */
static int set_cap(const char *val, const struct kernel_param *kp)
{
	unsigned long v;
	int err = kstrtoul(val, 0, &v);

	if (err)
		return err;
	if (!v)
		return -EINVAL;
	WRITE_ONCE(*(unsigned long *)kp->arg, v);
	return 0;
}

static const struct kernel_param_ops cap_ops = {
	.set = set_cap,
	.get = param_get_ulong,
};

/* Each private page holds two pages of memory: the copy and its base. */
unsigned long cowmap_max_total_pages;
module_param_cb(max_total_pages, &cap_ops, &cowmap_max_total_pages, 0644);
MODULE_PARM_DESC(max_total_pages,
		 "Private pages all sessions may hold (default: RAM/8, i.e. a quarter of RAM in memory)");

unsigned long cowmap_max_user_pages;
module_param_cb(max_user_pages, &cap_ops, &cowmap_max_user_pages, 0644);
MODULE_PARM_DESC(max_user_pages,
		 "Private pages the sessions one uid bound may hold, event rings included (default: RAM/16)");

static int cowmap_open(struct inode *inode, struct file *file)
{
	struct cowmap_session *s = cowmap_session_create(file);

	if (!s)
		return -ENOMEM;
	file->private_data = s;
	return 0;
}

static int cowmap_release(struct inode *inode, struct file *file)
{
	cowmap_session_release(file->private_data);
	return 0;
}

static long cowmap_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (_IOC_TYPE(cmd) == COWMAP_IOC_MAGIC && _IOC_NR(cmd) == 0 &&
	    _IOC_DIR(cmd) == _IOC_READ) {
		struct cowmap_version v = {
			.major = COWMAP_VERSION_MAJOR,
			.minor = COWMAP_VERSION_MINOR,
			.patch = COWMAP_VERSION_PATCH,
			.abi = COWMAP_ABI_VERSION,
			.features = COWMAP_FEAT_LOG_FD | COWMAP_FEAT_DIFF |
				    COWMAP_FEAT_DISCARD | COWMAP_FEAT_NETLINK,
			.page_size = PAGE_SIZE,
		};

		if (_IOC_SIZE(cmd) < sizeof(v))
			return -EINVAL;
		/* A newer caller's larger structure: zeroes past ours. */
		if (copy_to_user(uarg, &v, sizeof(v)) ||
		    clear_user(uarg + sizeof(v), _IOC_SIZE(cmd) - sizeof(v)))
			return -EFAULT;
		return 0;
	}
	return cowmap_session_ioctl(file->private_data, cmd, uarg);
}

static ssize_t cowmap_read(struct file *file, char __user *buf, size_t len,
			   loff_t *ppos)
{
	struct cowmap_session *s = file->private_data;

	return cowmap_ring_read(&s->ring, buf, len, file->f_flags & O_NONBLOCK);
}

static __poll_t cowmap_poll(struct file *file, poll_table *wait)
{
	struct cowmap_session *s = file->private_data;

	return cowmap_ring_poll(&s->ring, file, wait);
}

static const struct file_operations cowmap_fops = {
	.owner = THIS_MODULE,
	.open = cowmap_open,
	.release = cowmap_release,
	.read = cowmap_read,
	.poll = cowmap_poll,
	.unlocked_ioctl = cowmap_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = cowmap_mmap,
	.get_unmapped_area = cowmap_get_unmapped_area,
	.llseek = noop_llseek,
};

static struct miscdevice cowmap_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = COWMAP_DEVICE_NAME,
	.fops = &cowmap_fops,
	.mode = 0666,
};

static int __init cowmap_init(void)
{
	int err;

	if (!cowmap_max_total_pages)
		cowmap_max_total_pages = max(totalram_pages() / 8, 1UL);
	if (!cowmap_max_user_pages)
		cowmap_max_user_pages = max(totalram_pages() / 16, 1UL);

	err = cowmap_netlink_init();
	if (err)
		return err;
	err = misc_register(&cowmap_misc);
	if (err)
		goto err_netlink;
	pr_info("version %d.%d.%d loaded\n", COWMAP_VERSION_MAJOR,
		COWMAP_VERSION_MINOR, COWMAP_VERSION_PATCH);
	return 0;

err_netlink:
	cowmap_netlink_exit();
	return err;
}

static void __exit cowmap_exit(void)
{
	misc_deregister(&cowmap_misc);
	cowmap_netlink_exit();
}

module_init(cowmap_init);
module_exit(cowmap_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Private copy-on-write views of a shared memory-mapped file");
MODULE_AUTHOR("cowmap developers");
/* The uapi header's version, which scripts/version.sh keeps equal to VERSION. */
MODULE_VERSION(__stringify(COWMAP_VERSION_MAJOR) "." __stringify(COWMAP_VERSION_MINOR)
	       "." __stringify(COWMAP_VERSION_PATCH));
