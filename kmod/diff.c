// SPDX-License-Identifier: GPL-2.0
/*
 * Diffs of private pages against their base snapshots, as log records (the
 * format in uapi/linux/cowmap.h), for COWMAP_IOC_DIFF and for draining into
 * a log file.
 *
 * A page is read frozen: with its lock held (faults wait for it) and its
 * PTEs zapped (the TLB flush ends every store in flight), so no store can
 * be seen half done.  Changed runs closer than COALESCE_GAP bytes share a
 * record; that bounds one page's records to 2 * PAGE_SIZE + 39 bytes.
 */
#include <linux/crc32.h>
#include <linux/highmem.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/fs.h>
#include <linux/uaccess.h>
#include <linux/sched.h>
#include <linux/cred.h>
#include <linux/namei.h>
#include <linux/falloc.h>
#include <linux/magic.h>

#include "cowmap.h"

#define COALESCE_GAP	40
#define DRAIN_BATCH	32	/* pages per write to the log */

static u32 crc32c_buf(u32 crc, const void *p, size_t len)
{
	return __crc32c_le(crc, p, len);
}

/* First index in [i, n) where @a and @b differ, or @n. */
static size_t next_diff(const u8 *a, const u8 *b, size_t i, size_t n)
{
	for (; i < n && (i & 7); i++)
		if (a[i] != b[i])
			return i;
	/* Whole words first; the bytes of the first unequal word below. */
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
	r->crc = cpu_to_le32(~crc32c_buf(~0U, out, size));
	return size;
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
 * Freeze private page @idx and copy it into @snap.  Returns its base
 * snapshot, or NULL if the page is not private (any more).  The base stays
 * valid while s->lock is held.
 */
static struct page *snapshot(struct cowmap_session *s, pgoff_t idx, void *snap,
			     bool clear_mark)
{
	struct page *p, *base;

	lockdep_assert_held(&s->lock);
	p = cowmap_page_get_locked(s, idx);
	if (!p)
		return NULL;
	if (unlikely(PageHWPoison(p))) {
		/* Its contents are gone; reading them would be fatal. */
		xa_clear_mark(&s->pages, idx, COWMAP_CHANGED);
		unlock_page(p);
		put_page(p);
		pr_warn_ratelimited("session %llu: page at offset %llu is poisoned: its changes are lost\n",
				    s->id, (u64)idx << PAGE_SHIFT);
		return NULL;
	}
	cowmap_zap(s, idx);
	memcpy_from_page(snap, p, 0, PAGE_SIZE);
	/*
	 * With its PTEs gone the page holds the xarray's reference and ours.
	 * Any other (get_user_pages for O_DIRECT, say) may still store into
	 * it without a fault: keep it marked, so the next drain looks again.
	 */
	if (clear_mark && page_count(p) <= 2)
		xa_clear_mark(&s->pages, idx, COWMAP_CHANGED);
	base = (struct page *)page_private(p);
	unlock_page(p);
	put_page(p);
	return base;
}

static size_t diff_against(struct page *base, const void *snap, u8 *out,
			   u64 offset, u64 *seq, u32 *records)
{
	const u8 *old = kmap_local_page(base);
	size_t n;

	n = diff_page(out, old, snap, offset, seq, records);
	kunmap_local(old);
	return n;
}

long cowmap_diff_ioctl(struct cowmap_session *s, struct cowmap_diff *d)
{
	u8 __user *ubuf = u64_to_user_ptr(d->buf);
	unsigned long idx, last;
	u64 seq = 0;
	u8 *out;
	void *snap;
	long err = 0;

	if (!PAGE_ALIGNED(d->offset) || d->buf_len < COWMAP_DIFF_MIN_BUF ||
	    (d->end && d->end <= d->offset))
		return -EINVAL;
	idx = d->offset >> PAGE_SHIFT;
	last = d->end ? (d->end - 1) >> PAGE_SHIFT : ULONG_MAX;
	d->used = 0;
	d->records = 0;

	out = kvmalloc(COWMAP_PAGE_RECS_MAX, GFP_KERNEL_ACCOUNT);
	snap = kmalloc(PAGE_SIZE, GFP_KERNEL_ACCOUNT);
	if (!out || !snap) {
		err = -ENOMEM;
		goto out_free;
	}

	mutex_lock(&s->lock);
	d->offset = COWMAP_DIFF_END;
	while (xa_find(&s->pages, &idx, last, COWMAP_CHANGED)) {
		struct page *base = snapshot(s, idx, snap, false);
		u32 records = 0;
		size_t n;

		if (base) {
			n = diff_against(base, snap, out, (u64)idx << PAGE_SHIFT,
					 &seq, &records);
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
out_free:
	kfree(snap);
	kvfree(out);
	return err;
}

static int write_all(struct file *log, const void *buf, size_t len, loff_t *pos)
{
	ssize_t n;

	while (len) {
		n = kernel_write(log, buf, len, pos);
		if (n < 0)
			return n;
		if (!n)
			return -EIO;
		buf += n;
		len -= n;
	}
	return 0;
}

int cowmap_log_write_header(struct cowmap_session *s, struct file *log)
{
	struct cowmap_log_header *h;
	size_t plen, hlen;
	loff_t pos = 0;
	int err;

	plen = min_t(size_t, strlen(s->path), COWMAP_LOG_PATH_MAX - 1);
	hlen = sizeof(*h) + ALIGN(plen, 8);
	h = kzalloc(hlen, GFP_KERNEL);
	if (!h)
		return -ENOMEM;
	memcpy(h->magic, COWMAP_LOG_MAGIC, sizeof(h->magic));
	h->version = cpu_to_le32(COWMAP_LOG_VERSION);
	h->header_len = cpu_to_le32(hlen);
	h->dev = cpu_to_le64(s->dev_nr);
	h->ino = cpu_to_le64(s->ino);
	h->size = cpu_to_le64(s->size);
	h->session_id = cpu_to_le64(s->id);
	h->bind_time_ns = cpu_to_le64(s->bind_time_ns);
	h->pid = cpu_to_le32(s->pid);
	h->uid = cpu_to_le32(from_kuid_munged(s->cred->user_ns, s->owner));
	memcpy(h->comm, s->comm, min(sizeof(h->comm), sizeof(s->comm)));
	h->path_len = cpu_to_le32(plen);
	memcpy(h + 1, s->path, plen);
	h->crc = cpu_to_le32(~crc32c_buf(~0U, h, hlen));

	err = write_all(log, h, hlen, &pos);
	kfree(h);
	return err;
}

/* Filesystems a log may live on: local ones, where a write cannot hang. */
int cowmap_log_check(struct file *log)
{
	switch (file_inode(log)->i_sb->s_magic) {
	case EXT4_SUPER_MAGIC:
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case TMPFS_MAGIC:
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

/*
 * Cut @log to @size as ftruncate(2) on it would: the open file's write
 * access is the right to do it, whatever the caller may do by path (a log
 * an administrator opened for the user is the user's to cut).
 */
static int cut(struct file *log, loff_t size)
{
	struct dentry *dentry = log->f_path.dentry;
	struct inode *inode = d_inode(dentry);
	struct iattr ia = {
		.ia_valid = ATTR_SIZE | ATTR_MTIME | ATTR_CTIME | ATTR_FILE,
		.ia_size = size,
		.ia_file = log,
	};
	int err;

	if (IS_APPEND(inode) || IS_IMMUTABLE(inode))
		return -EPERM;
	sb_start_write(inode->i_sb);
	inode_lock(inode);
	err = notify_change(cowmap_file_idmap(log), dentry, &ia, NULL);
	inode_unlock(inode);
	sb_end_write(inode->i_sb);
	return err;
}

/* Bytes of the whole records at the start of @buf[0..@len). */
static size_t whole_records(const u8 *buf, size_t len)
{
	const struct cowmap_log_record *r;
	size_t pos = 0, size;

	while (len - pos >= sizeof(*r)) {
		r = (const struct cowmap_log_record *)(buf + pos);
		size = COWMAP_LOG_REC_SIZE(le32_to_cpu(r->length));
		if (size > len - pos)
			break;
		pos += size;
	}
	return pos;
}

/*
 * Append the records @buf[0..@len) at the end of @log.  On failure, *@kept
 * says how many bytes of whole records the log holds (they count as
 * drained); anything after them is cut off again, so the log never holds a
 * torn record before later ones.  When that cut fails too, the log ends in
 * a torn tail, which readers skip: a log given to one drain is never
 * appended to again, and the bound log has its tail cut before the next
 * append (which fails while it cannot be), the final drain's included.
 * The final drain stops at the last closer's RLIMIT_FSIZE (it runs in a
 * kworker, whose own limit is not the user's).
 */
static int append(struct cowmap_session *s, struct file *log, const u8 *buf,
		  size_t len, size_t *kept)
{
	loff_t start, pos, size;
	bool limited = false;
	int err, terr;

	lockdep_assert_held(&s->lock);
	*kept = 0;
	if (log == s->log && s->log_cut >= 0) {
		err = cut(log, s->log_cut);
		if (err)
			return err;
		s->log_cut = -1;
	}
	start = i_size_read(file_inode(log));
	if (s->dead && (u64)start + len > s->final_fsize) {
		/* The whole records that fit, as a limited write() would. */
		len = (u64)start < s->final_fsize ?
		      whole_records(buf, s->final_fsize - start) : 0;
		if (!len)
			return -EFBIG;
		limited = true;
	}
	pos = start;
	/* Reserve the space first: running out of it then writes nothing. */
	err = vfs_fallocate(log, FALLOC_FL_KEEP_SIZE, start, len);
	if (err && err != -EOPNOTSUPP)
		return err;
	err = write_all(log, buf, len, &pos);
	if (!err) {
		*kept = len;
		return limited ? -EFBIG : 0;
	}
	size = i_size_read(file_inode(log));
	if (size <= start)
		return err;
	*kept = whole_records(buf, min_t(loff_t, size - start, len));
	if (start + *kept == size)
		return err;
	terr = cut(log, start + *kept);
	if (terr) {
		pr_warn_ratelimited("session %llu: cannot cut a failed write off the log (%d)\n",
				    s->id, terr);
		if (log == s->log)
			s->log_cut = start + *kept;
	}
	return err;
}

struct drain_batch {
	u8 *out;
	void *snaps;
	struct page *bases[DRAIN_BATCH];
	unsigned long idx[DRAIN_BATCH];
	size_t end[DRAIN_BATCH];	/* end of each page's records in @out */
	unsigned int max;		/* pages per batch */
	unsigned int n;
	size_t used;
	u32 records;
	u64 first_seq;
};

/*
 * The log kept the first @kept bytes of a batch that failed: its whole
 * records are drained, so their new bytes go into their pages' bases.
 */
static void keep_records(struct drain_batch *b, size_t kept, u64 *seq,
			 struct cowmap_drain *st)
{
	const struct cowmap_log_record *r;
	unsigned int i = 0;
	size_t pos = 0;
	u64 off;
	u32 len;

	while (pos < kept) {
		r = (const struct cowmap_log_record *)(b->out + pos);
		len = le32_to_cpu(r->length);
		off = le64_to_cpu(r->offset);
		while ((u64)b->idx[i] << PAGE_SHIFT != (off & PAGE_MASK))
			i++;
		memcpy_to_page(b->bases[i], offset_in_page(off),
			       (const u8 *)(r + 1) + len, len);
		*seq = le64_to_cpu(r->seq) + 1;
		st->records++;
		pos += COWMAP_LOG_REC_SIZE(len);
	}
}

/* Write a batch; on success its snapshots become the new bases. */
static int flush_batch(struct cowmap_session *s, struct file *log,
		       struct drain_batch *b, u64 *seq, struct cowmap_drain *st)
{
	size_t kept = 0;
	unsigned int i;
	int err = 0;

	if (b->used)
		err = append(s, log, b->out, b->used, &kept);
	if (err) {
		/* Pages not wholly in the log keep their changes. */
		*seq = b->first_seq;
		keep_records(b, kept, seq, st);
		for (i = 0; i < b->n; i++) {
			if (b->end[i] > kept)
				xa_set_mark(&s->pages, b->idx[i], COWMAP_CHANGED);
			else
				st->pages++;
		}
	} else {
		for (i = 0; i < b->n; i++)
			memcpy_to_page(b->bases[i], 0, b->snaps + i * PAGE_SIZE,
				       PAGE_SIZE);
		st->records += b->records;
		st->pages += b->n;
		kept = b->used;
	}
	st->bytes += kept;
	atomic64_add(kept, &s->drained_bytes);
	atomic64_add(kept, &cowmap_stats.drained_bytes);
	b->n = 0;
	b->used = 0;
	b->records = 0;
	b->first_seq = *seq;
	return err;
}

/*
 * Append the changes of every page written since its last drain to @log,
 * numbering records from *@seq.  A page whose records could not be written
 * keeps its changes.
 */
int cowmap_drain(struct cowmap_session *s, struct file *log, u64 *seq,
		 struct cowmap_drain *st)
{
	struct drain_batch *b;
	unsigned long idx = 0;
	int err = 0;

	lockdep_assert_held(&s->lock);
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	/*
	 * Under memory pressure, fall back to one page per write; only that
	 * last attempt's failure is worth the allocator's warning.
	 */
	for (b->max = DRAIN_BATCH; b->max; b->max /= DRAIN_BATCH) {
		gfp_t gfp = GFP_KERNEL_ACCOUNT | (b->max > 1 ? __GFP_NOWARN : 0);

		b->out = kvmalloc(b->max * COWMAP_PAGE_RECS_MAX, gfp);
		b->snaps = kvmalloc(b->max * PAGE_SIZE, gfp);
		if (b->out && b->snaps)
			break;
		kvfree(b->out);
		kvfree(b->snaps);
		b->out = NULL;
		b->snaps = NULL;
	}
	if (!b->max) {
		err = -ENOMEM;
		goto out_free;
	}
	b->first_seq = *seq;

	while (xa_find(&s->pages, &idx, ULONG_MAX, COWMAP_CHANGED)) {
		void *snap = b->snaps + b->n * PAGE_SIZE;
		struct page *base = snapshot(s, idx, snap, true);

		if (base) {
			b->used += diff_against(base, snap, b->out + b->used,
						(u64)idx << PAGE_SHIFT, seq,
						&b->records);
			b->end[b->n] = b->used;
			b->bases[b->n] = base;
			b->idx[b->n++] = idx;
			if (b->n == b->max) {
				err = flush_batch(s, log, b, seq, st);
				if (err)
					goto out_free;
				/* The rest keep their changes. */
				if (fatal_signal_pending(current)) {
					err = -EINTR;
					goto out_free;
				}
			}
		}
		if (idx == ULONG_MAX)
			break;
		idx++;
		cond_resched();
	}
	err = flush_batch(s, log, b, seq, st);
out_free:
	kvfree(b->snaps);
	kvfree(b->out);
	kfree(b);
	return err;
}
