// SPDX-License-Identifier: GPL-2.0
/*
 * Diffs of private pages against their base snapshots, as log records (the
 * format in uapi/linux/cowmap.h), for COWMAP_IOC_DIFF and for draining into
 * a log file (log.c).
 *
 * A page is read frozen: with its lock held (faults wait for it) and its
 * PTEs zapped (the TLB flush ends every store in flight), so no store can
 * be seen half done.  Changed runs closer than COALESCE_GAP bytes share a
 * record; that bounds one page's records to 2 * PAGE_SIZE + 39 bytes.
 */
#include <linux/highmem.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <linux/sched/signal.h>

#include "internal.h"

#define COALESCE_GAP	40
#define FREEZE_AHEAD	32	/* offsets one zap covers ahead of the freezes */

/* First index in [i, n) where @a and @b differ, or @n. */
static size_t next_diff(const u8 *a, const u8 *b, size_t i, size_t n)
{
	for (; i < n && (i & 7); i++)
		if (a[i] != b[i])
			return i;
	/*
	 * Most of a page is unchanged: 64 bytes per branch, then the word
	 * and the bytes of the first difference below.
	 */
	for (; i + 64 <= n; i += 64) {
		const u64 *x = (const u64 *)(a + i), *y = (const u64 *)(b + i);

		if ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) |
		    (x[3] ^ y[3]) | (x[4] ^ y[4]) | (x[5] ^ y[5]) |
		    (x[6] ^ y[6]) | (x[7] ^ y[7]))
			break;
	}
	for (; i + 8 <= n; i += 8)
		if (*(const u64 *)(a + i) != *(const u64 *)(b + i))
			break;
	for (; i < n; i++)
		if (a[i] != b[i])
			return i;
	return n;
}

static size_t put_record(u8 *out, u64 offset, const u8 *old, const u8 *new,
			 u32 len, u64 seq)
{
	struct cowmap_log_record *r = (struct cowmap_log_record *)out;
	size_t size = COWMAP_LOG_REC_SIZE(len);
	u8 *p = out + sizeof(*r);

	r->magic = cpu_to_le32(COWMAP_LOG_REC_MAGIC);
	r->crc = 0;
	r->offset = cpu_to_le64(offset);
	r->length = cpu_to_le32(len);
	r->flags = 0;
	r->seq = cpu_to_le64(seq);
	memcpy(p, old, len);
	memcpy(p + len, new, len);
	memset(p + 2 * len, 0, size - sizeof(*r) - 2 * len);
	return size;
}

/* Checksum the records in @out[0..@len) (put_record() leaves them open). */
static void seal_records(u8 *out, size_t len)
{
	struct cowmap_log_record *r;
	size_t pos = 0, size;

	while (pos < len) {
		r = (struct cowmap_log_record *)(out + pos);
		size = COWMAP_LOG_REC_SIZE(le32_to_cpu(r->length));
		r->crc = cpu_to_le32(~cowmap_crc32c(~0U, r, size));
		pos += size;
	}
}

/* Records for one page at file offset @offset; returns the bytes used. */
static size_t diff_page(u8 *out, const u8 *old, const u8 *new, u64 offset,
			u64 *seq, u32 *records)
{
	size_t used = 0, start, last, next;

	start = next_diff(old, new, 0, PAGE_SIZE);
	while (start < PAGE_SIZE) {
		last = start;
		for (;;) {
			next = next_diff(old, new, last + 1, PAGE_SIZE);
			if (next >= PAGE_SIZE || next - last > COALESCE_GAP)
				break;
			last = next;
		}
		used += put_record(out + used, offset + start, old + start,
				   new + start, last - start + 1, (*seq)++);
		(*records)++;
		start = next;
	}
	return used;
}

/*
 * Before the pages from @idx on are frozen one by one, zap the session's
 * PTEs of the changed ones among the next FREEZE_AHEAD offsets (up to
 * @last) at once: one page-table walk and one TLB flush instead of one per
 * page.  Offsets between them lose their PTEs in the session too and
 * refault.  Pages not mapped now need no zap (a drain after a diff finds
 * none): the unlocked look is only a hint, as each page is still checked
 * under its lock (a fault may have mapped it since).  Returns the first
 * offset after the window.
 */
unsigned long cowmap_freeze_ahead(struct cowmap_session *s, unsigned long idx,
				  unsigned long last)
{
	XA_STATE(xas, &s->pages, idx);
	unsigned long lo = 0, hi = 0, nr = 0;
	void *entry;

	lockdep_assert_held(&s->lock);
	if (last - idx >= FREEZE_AHEAD)
		last = idx + FREEZE_AHEAD - 1;
	rcu_read_lock();
	xas_for_each_marked(&xas, entry, last, COWMAP_CHANGED) {
		if (xas_retry(&xas, entry) || !page_mapped(entry))
			continue;
		if (!nr++)
			lo = xas.xa_index;
		hi = xas.xa_index;
	}
	rcu_read_unlock();
	/*
	 * Only where the session's own VMAs can be zapped: the file-wide
	 * fallback would take other mappings' PTEs of the offsets between.
	 */
	if (nr > 1)
		cowmap_zap_own(s, lo, hi - lo + 1, NULL);
	return last == ULONG_MAX ? last : last + 1;
}

/*
 * Freeze private page @idx and write the records of its changes against
 * its base snapshot to @out, numbering them from *@seq and counting them in
 * *@records.  Returns their bytes (0: no change), or -ENOENT if @idx is not
 * private (any more).  *@basep is the page's base snapshot, valid while
 * s->lock is held.  With @clear_mark the page counts as drained.
 *
 * The page is diffed in place while frozen, not copied first: the records
 * hold every changed byte, so they are all a drain needs to bring the base
 * up to date (apply_records() in log.c).
 */
long cowmap_diff_frozen(struct cowmap_session *s, pgoff_t idx, u8 *out,
			u64 *seq, u32 *records, bool clear_mark,
			struct page **basep)
{
	struct page *p, *base;
	const u8 *old, *new;
	bool busy;
	size_t n;

	lockdep_assert_held(&s->lock);
	p = cowmap_page_get_locked(s, idx);
	if (!p)
		return -ENOENT;
	if (unlikely(PageHWPoison(p))) {
		/* Its contents are gone; reading them would be fatal. */
		xa_clear_mark(&s->pages, idx, COWMAP_CHANGED);
		unlock_page(p);
		put_page(p);
		pr_warn_ratelimited("session %llu: page at offset %llu is poisoned: its changes are lost\n",
				    s->id, (u64)idx << PAGE_SHIFT);
		return -ENOENT;
	}
	/* No PTE of it can appear while it is locked: only a fault maps it. */
	if (page_mapped(p))
		cowmap_zap(s, idx, 1, NULL);
	/*
	 * With its PTEs gone the page holds the xarray's reference and ours,
	 * and no new one can be taken without the page lock.  Any other (a
	 * get_user_pages() pin for O_DIRECT, say) may store into it while it
	 * is read and after, without a fault: then it stays marked, so the
	 * next drain looks again.  Counted before the read: a pin dropped
	 * during the read may have stored what the read did not see.
	 */
	busy = page_count(p) > 2;
	base = (struct page *)page_private(p);
	old = kmap_local_page(base);
	new = kmap_local_page(p);
	n = diff_page(out, old, new, (u64)idx << PAGE_SHIFT, seq, records);
	kunmap_local(new);
	kunmap_local(old);
	if (clear_mark && !busy)
		xa_clear_mark(&s->pages, idx, COWMAP_CHANGED);
	unlock_page(p);
	put_page(p);
	seal_records(out, n);
	*basep = base;
	return n;
}

long cowmap_do_diff(struct cowmap_session *s, struct cowmap_diff *d)
{
	u8 __user *ubuf = u64_to_user_ptr(d->buf);
	unsigned long idx, last, ahead = 0;
	u64 seq = 0;
	u8 *out;
	long err = 0;

	if (!PAGE_ALIGNED(d->offset) || d->buf_len < COWMAP_DIFF_MIN_BUF ||
	    (d->end && d->end <= d->offset))
		return -EINVAL;
	idx = d->offset >> PAGE_SHIFT;
	last = d->end ? (d->end - 1) >> PAGE_SHIFT : ULONG_MAX;
	d->used = 0;
	d->records = 0;

	out = kvmalloc(COWMAP_PAGE_RECS_MAX, GFP_KERNEL_ACCOUNT);
	if (!out)
		return -ENOMEM;

	mutex_lock(&s->lock);
	d->offset = COWMAP_DIFF_END;
	while (xa_find(&s->pages, &idx, last, COWMAP_CHANGED)) {
		struct page *base;
		u32 records = 0;
		long n;

		if (idx >= ahead)
			ahead = cowmap_freeze_ahead(s, idx, last);
		n = cowmap_diff_frozen(s, idx, out, &seq, &records, false, &base);
		if (n >= 0) {
			if (d->used + n > d->buf_len) {
				d->offset = (u64)idx << PAGE_SHIFT;
				break;
			}
			if (copy_to_user(ubuf + d->used, out, n)) {
				err = -EFAULT;
				break;
			}
			d->used += n;
			d->records += records;
		}
		if (idx == last)
			break;
		idx++;
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
		cond_resched();
	}
	mutex_unlock(&s->lock);
	kvfree(out);
	return err;
}
