// SPDX-License-Identifier: GPL-2.0
/*
 * cowmap: private copy-on-write views of a shared memory-mapped file.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/uaccess.h>

#include <linux/cowmap.h>

static long cowmap_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct cowmap_version v = {
		.major = COWMAP_VERSION_MAJOR,
		.minor = COWMAP_VERSION_MINOR,
		.patch = COWMAP_VERSION_PATCH,
		.abi = COWMAP_ABI_VERSION,
		.page_size = PAGE_SIZE,
	};

	if (cmd != COWMAP_IOC_VERSION)
		return -ENOTTY;
	if (copy_to_user((void __user *)arg, &v, sizeof(v)))
		return -EFAULT;
	return 0;
}

static const struct file_operations cowmap_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = cowmap_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
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
	return misc_register(&cowmap_misc);
}

static void __exit cowmap_exit(void)
{
	misc_deregister(&cowmap_misc);
}

module_init(cowmap_init);
module_exit(cowmap_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Private copy-on-write views of a shared memory-mapped file");
MODULE_AUTHOR("cowmap developers");
MODULE_VERSION("1.0.0");
