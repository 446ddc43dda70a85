// SPDX-License-Identifier: GPL-2.0
/*
 * The session ioctls: copying their structures in and out, checking their
 * fields, and calling the session's operations (session.c, diff.c).
 * Structures may be smaller than ours (older callers) or larger (newer
 * ones): see copy_struct_from_user().
 */
#include <linux/uaccess.h>
#include <linux/string.h>
#include <linux/log2.h>
#include <linux/mm.h>

#include "internal.h"

/* The structure size comes from the ioctl number. */
static int copy_in(void *k, size_t ksize, unsigned int cmd, void __user *arg)
{
	return copy_struct_from_user(k, ksize, arg, _IOC_SIZE(cmd));
}

/* A caller's structure larger than ours gets zeroes past our fields. */
static int copy_out(void __user *arg, unsigned int cmd, const void *k,
		    size_t ksize)
{
	size_t usize = _IOC_SIZE(cmd);

	if (copy_to_user(arg, k, min(ksize, usize)))
		return -EFAULT;
	if (usize > ksize && clear_user(arg + ksize, usize - ksize))
		return -EFAULT;
	return 0;
}

/*
 * The results of an action that happened (BIND, DRAIN, DISCARD).  fetch()
 * probed the structure, but another thread may unmap it before this copy:
 * the action stands, so it is not reported as failed (a retried BIND would
 * get -EBUSY, a retried DRAIN would find nothing); the results are lost,
 * and COWMAP_IOC_INFO still tells the id and the counters.
 */
static int report(void __user *arg, unsigned int cmd, const void *k,
		  size_t ksize)
{
	copy_out(arg, cmd, k, ksize);
	return 0;
}

/*
 * Read the caller's structure, and fail with -EFAULT before acting if the
 * result could not be returned (bad input changes nothing): the probe writes
 * back what the caller passed.
 */
static int fetch(void *k, size_t ksize, unsigned int cmd, void __user *arg)
{
	return copy_in(k, ksize, cmd, arg) ?: copy_out(arg, cmd, k, ksize);
}

static bool zeroed(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

static long do_bind(struct cowmap_session *s, unsigned int cmd, void __user *arg)
{
	struct cowmap_bind b;
	u32 ring;
	int err;

	err = fetch(&b, sizeof(b), cmd, arg);
	if (err)
		return err;
	if (b.flags & ~COWMAP_BIND_FLAGS || !zeroed(b.reserved, sizeof(b.reserved)))
		return -EINVAL;
	ring = b.ring_size ? b.ring_size : COWMAP_RING_DEFAULT;
	if (ring < COWMAP_RING_MIN || ring > COWMAP_RING_MAX || !is_power_of_2(ring))
		return -EINVAL;

	err = cowmap_session_bind(s, &b, ring);
	if (err)
		return err;
	return report(arg, cmd, &b, sizeof(b));
}

static long do_info(struct cowmap_session *s, unsigned int cmd, void __user *arg)
{
	struct cowmap_info in = {};
	unsigned long idx;
	void *entry;

	if (!cowmap_session_bound(s))
		return -ENODEV;
	in.id = s->id;
	in.dev = s->dev_nr;
	in.ino = s->ino;
	in.size = s->size;
	in.cur_size = i_size_read(file_inode(s->ro));
	in.private_pages = atomic_long_read(&s->npriv);
	xa_for_each_marked(&s->pages, idx, entry, COWMAP_CHANGED)
		in.undrained_pages++;
	in.cow_faults = atomic64_read(&s->cow_faults);
	spin_lock(&s->ring.lock);
	in.events = s->ring.head;
	in.events_lost = s->ring.total_lost;
	spin_unlock(&s->ring.lock);
	in.mapped_bytes = cowmap_session_mapped_bytes(s);
	in.bind_time_ns = s->bind_time_ns;
	in.owner_uid = from_kuid_munged(current_user_ns(), s->owner);
	in.ring_size = s->ring.mask + 1;
	in.flags = s->flags;
	return copy_out(arg, cmd, &in, sizeof(in));
}

static long do_diff(struct cowmap_session *s, unsigned int cmd, void __user *arg)
{
	struct cowmap_diff d;
	long err;

	err = fetch(&d, sizeof(d), cmd, arg) ?: (cowmap_session_bound(s) ? 0 : -ENODEV);
	if (err)
		return err;
	if (d.flags & ~COWMAP_DIFF_FLAGS || !zeroed(d.reserved, sizeof(d.reserved)))
		return -EINVAL;
	err = cowmap_do_diff(s, &d);
	if (err)
		return err;
	return copy_out(arg, cmd, &d, sizeof(d));
}

static long do_drain(struct cowmap_session *s, unsigned int cmd, void __user *arg)
{
	struct cowmap_drain d;
	long err;

	err = fetch(&d, sizeof(d), cmd, arg) ?: (cowmap_session_bound(s) ? 0 : -ENODEV);
	if (err)
		return err;
	if (d.flags & ~COWMAP_DRAIN_FLAGS || !zeroed(d.reserved, sizeof(d.reserved)))
		return -EINVAL;
	if ((d.flags & COWMAP_DRAIN_FD) && d.log_fd < 0)
		return -EBADF;
	d.records = 0;
	d.pages = 0;
	d.bytes = 0;
	err = cowmap_do_drain(s, d.flags & COWMAP_DRAIN_FD ? d.log_fd : -1, &d);
	if (err)
		return err;
	return report(arg, cmd, &d, sizeof(d));
}

static long do_discard(struct cowmap_session *s, unsigned int cmd, void __user *arg)
{
	struct cowmap_range r;
	pgoff_t first = 0, last = ULONG_MAX;
	long err;

	err = fetch(&r, sizeof(r), cmd, arg) ?: (cowmap_session_bound(s) ? 0 : -ENODEV);
	if (err)
		return err;
	if (r.flags & ~COWMAP_RANGE_FLAGS || r.reserved0 ||
	    !zeroed(r.reserved, sizeof(r.reserved)))
		return -EINVAL;
	if (!(r.flags & COWMAP_RANGE_ALL)) {
		if (!r.length || !PAGE_ALIGNED(r.offset) || !PAGE_ALIGNED(r.length) ||
		    r.offset + r.length < r.offset)
			return -EINVAL;
		first = r.offset >> PAGE_SHIFT;
		last = ((r.offset + r.length) >> PAGE_SHIFT) - 1;
	}
	err = cowmap_do_discard(s, first, last);
	if (err < 0)
		return err;
	r.pages = err;
	return report(arg, cmd, &r, sizeof(r));
}

long cowmap_session_ioctl(struct cowmap_session *s, unsigned int cmd,
			  void __user *arg)
{
	static const struct {
		unsigned int cmd;
		long (*fn)(struct cowmap_session *s, unsigned int cmd,
			   void __user *arg);
	} table[] = {
		{ COWMAP_IOC_BIND, do_bind },
		{ COWMAP_IOC_INFO, do_info },
		{ COWMAP_IOC_DIFF, do_diff },
		{ COWMAP_IOC_DRAIN, do_drain },
		{ COWMAP_IOC_DISCARD, do_discard },
	};
	unsigned int i;

	/*
	 * Match type, number and direction; the size may differ (older or
	 * newer callers), within the first version's size at least.
	 */
	for (i = 0; i < ARRAY_SIZE(table); i++) {
		unsigned int want = table[i].cmd;

		if (_IOC_TYPE(cmd) != _IOC_TYPE(want) || _IOC_NR(cmd) != _IOC_NR(want) ||
		    _IOC_DIR(cmd) != _IOC_DIR(want))
			continue;
		if (_IOC_SIZE(cmd) < _IOC_SIZE(want))
			return -EINVAL;
		return table[i].fn(s, cmd, arg);
	}
	return -ENOTTY;
}
