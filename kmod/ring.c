// SPDX-License-Identifier: GPL-2.0
/*
 * The session's event ring.  Producers are faults, which must never block on
 * a reader: when the ring is full the oldest unread event is overwritten and
 * counted, and the next read starts with a COWMAP_EVENT_LOST record.
 */
#include <linux/slab.h>
#include <linux/poll.h>
#include <linux/uaccess.h>
#include <linux/sched/signal.h>

#include "internal.h"

#define READ_CHUNK	16

int cowmap_ring_init(struct cowmap_ring *r, u32 size)
{
	r->ev = kvcalloc(size, sizeof(*r->ev), GFP_KERNEL_ACCOUNT);
	if (!r->ev)
		return -ENOMEM;
	r->mask = size - 1;
	return 0;
}

void cowmap_ring_free(struct cowmap_ring *r)
{
	kvfree(r->ev);
	r->ev = NULL;
}

void cowmap_ring_push(struct cowmap_ring *r, u32 type, u64 offset)
{
	struct cowmap_event *ev;
	bool overflow = false;

	spin_lock(&r->lock);
	if (r->head - r->tail > r->mask) {
		r->tail++;
		r->lost++;
		r->total_lost++;
		overflow = r->lost == 1;
	}
	ev = &r->ev[r->head & r->mask];
	ev->seq = ++r->head;
	ev->offset = offset;
	ev->time_ns = cowmap_now_ns();
	ev->tgid = task_tgid_nr(current);
	ev->tid = task_pid_nr(current);
	ev->type = type;
	ev->count = 0;
	spin_unlock(&r->lock);

	if (overflow) {
		struct cowmap_session *s = container_of(r, struct cowmap_session, ring);

		cowmap_count(COWMAP_STAT_EVENTS_LOST, 1);
		cowmap_netlink_notify_offset(s, COWMAP_CMD_RING_OVERFLOW, offset);
	} else if (unlikely(r->lost)) {
		cowmap_count(COWMAP_STAT_EVENTS_LOST, 1);
	}
	if (wq_has_sleeper(&r->wait))
		wake_up_interruptible_poll(&r->wait, EPOLLIN | EPOLLRDNORM);
}

static bool ring_ready(struct cowmap_ring *r)
{
	bool ready;

	spin_lock(&r->lock);
	ready = r->head != r->tail || r->lost;
	spin_unlock(&r->lock);
	return ready;
}

ssize_t cowmap_ring_read(struct cowmap_ring *r, char __user *buf, size_t len,
			 bool nonblock)
{
	struct cowmap_event tmp[READ_CHUNK];
	size_t max = len / sizeof(tmp[0]);
	ssize_t done = 0;
	int err;

	if (!max)
		return -EINVAL;
	if (!r->ev)
		return nonblock ? -EAGAIN : -ENODEV;

	while (!ring_ready(r)) {
		if (nonblock)
			return -EAGAIN;
		err = wait_event_interruptible(r->wait, ring_ready(r));
		if (err)
			return err;
	}

	while (max) {
		size_t n = 0;

		spin_lock(&r->lock);
		if (r->lost) {
			memset(&tmp[0], 0, sizeof(tmp[0]));
			tmp[0].type = COWMAP_EVENT_LOST;
			tmp[0].count = min_t(u64, r->lost, U32_MAX);
			tmp[0].seq = r->tail;
			tmp[0].time_ns = cowmap_now_ns();
			r->lost -= tmp[0].count;
			n = 1;
		}
		while (n < min_t(size_t, max, READ_CHUNK) && r->tail != r->head)
			tmp[n++] = r->ev[r->tail++ & r->mask];
		spin_unlock(&r->lock);

		if (!n)
			break;
		/* Events copied out are consumed even if the copy faults. */
		if (copy_to_user(buf + done, tmp, n * sizeof(tmp[0])))
			return done ? done : -EFAULT;
		done += n * sizeof(tmp[0]);
		max -= n;
	}
	return done;
}

__poll_t cowmap_ring_poll(struct cowmap_ring *r, struct file *file,
			  poll_table *wait)
{
	poll_wait(file, &r->wait, wait);
	return ring_ready(r) ? EPOLLIN | EPOLLRDNORM : 0;
}
