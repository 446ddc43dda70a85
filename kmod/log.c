// SPDX-License-Identifier: GPL-2.0
/*
 * Log files written by the kernel: the checks on a file given as a log, its
 * header (written once per file), and draining a session's changes into it
 * as whole records (the format in uapi/linux/cowmap.h).  A drain that fails
 * part way leaves only whole records; see append().
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/falloc.h>
#include <linux/highmem.h>
#include <linux/magic.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "internal.h"

/*
 * One write to the log takes the records of up to DRAIN_PAGES pages, as
 * long as the buffer has room for one more page's worst-case records:
 * dense changes write every 31 pages, sparse ones (a few bytes a page)
 * every 1024: each write costs a reservation (fallocate) and inode
 * updates, traced at tens to a hundred sparse pages' compares.
 * The buffer starts at DRAIN_BUF_MIN, enough for a sparse batch, and grows
 * to DRAIN_BUF_MAX only for dense changes: allocations are zeroed
 * (init_on_alloc, on in distribution kernels).  Both are powers of two,
 * which kmalloc() does not round up.  The costs: docs/benchmarks.md,
 * "DRAIN beyond DIFF".
 */
#define DRAIN_PAGES	1024
#define DRAIN_BUF_MIN	SZ_64K
#define DRAIN_BUF_MAX	SZ_256K

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

static int write_header(struct cowmap_session *s, struct file *log)
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
	h->crc = cpu_to_le32(~cowmap_crc32c(~0U, h, hlen));

	err = write_all(log, h, hlen, &pos);
	kfree(h);
	return err;
}

/* Filesystems a log may live on: local ones, where a write cannot hang. */
static int log_check(struct file *log)
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

/* A log the kernel may append to: an empty (unless @may_grow) writable file. */
struct file *cowmap_log_get(int fd, struct file *backing)
{
	struct file *lf = fget(fd);
	struct inode *inode;
	int err;

	if (!lf)
		return ERR_PTR(-EBADF);
	inode = file_inode(lf);
	if (!S_ISREG(inode->i_mode) || !(lf->f_mode & FMODE_WRITE) ||
	    (lf->f_flags & O_DIRECT) || inode == file_inode(backing)) {
		fput(lf);
		return ERR_PTR(-EINVAL);
	}
	err = log_check(lf);
	if (err) {
		fput(lf);
		return ERR_PTR(err);
	}
	if (i_size_read(inode)) {
		fput(lf);
		return ERR_PTR(-ENOTEMPTY);
	}
	return lf;
}

/*
 * A log's header is written once, at offset 0 of an empty file.  The
 * emptiness check and the header write are one step per log inode: two
 * callers (BIND with a log, DRAIN_FD, over ioctl or netlink) racing on one
 * empty file cannot both pass the check and both write a header.  The
 * inode lock cannot be held across the write (->write_iter takes it), so
 * a claim on the inode: a second caller sees the claim, or the header
 * already written, and fails with -ENOTEMPTY.  Nobody waits on a claim.
 */
struct log_claim {
	struct list_head node;
	struct inode *inode;
};

static DEFINE_SPINLOCK(log_claims_lock);
static LIST_HEAD(log_claims);

int cowmap_log_start(struct cowmap_session *s, struct file *lf)
{
	struct inode *inode = file_inode(lf);
	struct log_claim c = { .inode = inode }, *o;
	int err = 0;

	spin_lock(&log_claims_lock);
	list_for_each_entry(o, &log_claims, node) {
		if (o->inode == inode) {
			err = -ENOTEMPTY;
			break;
		}
	}
	if (!err)
		list_add(&c.node, &log_claims);
	spin_unlock(&log_claims_lock);
	if (err)
		return err;
	/* The other claimant's header, if any, is in i_size by now. */
	err = i_size_read(inode) ? -ENOTEMPTY : write_header(s, lf);
	spin_lock(&log_claims_lock);
	list_del(&c.node);
	spin_unlock(&log_claims_lock);
	return err;
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
	struct page *bases[DRAIN_PAGES];
	unsigned long idx[DRAIN_PAGES];
	size_t end[DRAIN_PAGES];	/* end of each page's records in @out */
	size_t size;			/* of @out */
	unsigned int n;
	size_t used;
	u32 records;
	u64 first_seq;
};

/*
 * The log holds the first @len bytes of the batch's records: they are
 * drained, so their new bytes go into their pages' bases (bytes outside
 * the records are equal in page and base).  Returns how many records.
 */
static u32 apply_records(struct drain_batch *b, size_t len)
{
	const struct cowmap_log_record *r;
	unsigned int i = 0;
	size_t pos = 0;
	u32 n = 0;
	u64 off;
	u32 rlen;

	while (pos < len) {
		r = (const struct cowmap_log_record *)(b->out + pos);
		rlen = le32_to_cpu(r->length);
		off = le64_to_cpu(r->offset);
		while ((u64)b->idx[i] << PAGE_SHIFT != (off & PAGE_MASK))
			i++;
		memcpy_to_page(b->bases[i], offset_in_page(off),
			       (const u8 *)(r + 1) + rlen, rlen);
		n++;
		pos += COWMAP_LOG_REC_SIZE(rlen);
	}
	return n;
}

/* Write a batch; the records that reach the log update their bases. */
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
		*seq = b->first_seq + apply_records(b, kept);
		for (i = 0; i < b->n; i++) {
			if (b->end[i] > kept)
				xa_set_mark(&s->pages, b->idx[i], COWMAP_CHANGED);
			else
				st->pages++;
		}
	} else {
		apply_records(b, b->used);
		st->pages += b->n;
		kept = b->used;
	}
	st->records += *seq - b->first_seq;
	st->bytes += kept;
	atomic64_add(kept, &s->drained_bytes);
	cowmap_count(COWMAP_STAT_DRAINED_BYTES, kept);
	b->n = 0;
	b->used = 0;
	b->records = 0;
	b->first_seq = *seq;
	return err;
}

/*
 * Make room for one more page's records by moving the batch from its first
 * buffer to one of DRAIN_BUF_MAX bytes; false when it cannot (then the
 * batch is written).  A drain that fell back to a smaller buffer for lack
 * of memory does not try again.
 */
static bool grow_batch(struct drain_batch *b)
{
	u8 *out;

	if (b->size != DRAIN_BUF_MIN)
		return false;
	out = kvmalloc(DRAIN_BUF_MAX, GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!out)
		return false;
	memcpy(out, b->out, b->used);
	kvfree(b->out);
	b->out = out;
	b->size = DRAIN_BUF_MAX;
	return true;
}

/*
 * Append the changes of every page written since its last drain to @log,
 * numbering records from *@seq.  A page whose records could not be written
 * keeps its changes.
 */
int cowmap_log_drain(struct cowmap_session *s, struct file *log, u64 *seq,
		     struct cowmap_drain *st)
{
	struct drain_batch *b;
	unsigned long idx = 0, ahead = 0;
	int err = 0;

	lockdep_assert_held(&s->lock);
	b = kvzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	/*
	 * Under memory pressure, fall back to one page's records per write;
	 * only that last attempt's failure is worth the allocator's warning.
	 */
	b->size = DRAIN_BUF_MIN;
	b->out = kvmalloc(b->size, GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!b->out) {
		b->size = COWMAP_PAGE_RECS_MAX;
		b->out = kvmalloc(b->size, GFP_KERNEL_ACCOUNT);
	}
	if (!b->out) {
		err = -ENOMEM;
		goto out_free;
	}
	b->first_seq = *seq;

	while (xa_find(&s->pages, &idx, ULONG_MAX, COWMAP_CHANGED)) {
		struct page *base;
		long n;

		if (idx >= ahead)
			ahead = cowmap_freeze_ahead(s, idx, ULONG_MAX);
		n = cowmap_diff_frozen(s, idx, b->out + b->used, seq,
				       &b->records, true, &base);
		if (n >= 0) {
			b->used += n;
			b->end[b->n] = b->used;
			b->bases[b->n] = base;
			b->idx[b->n++] = idx;
			if (b->n == DRAIN_PAGES ||
			    (b->size - b->used < COWMAP_PAGE_RECS_MAX &&
			     !grow_batch(b))) {
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
	kvfree(b->out);
	kvfree(b);
	return err;
}
