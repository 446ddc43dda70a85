// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The merge journal: failure-atomic in-place merges.
 *
 * File ".NAME.cowmap-journal" in the directory of the (resolved) file:
 *
 *   header   64 bytes: "COWMAPJN", version 3, header_len 64, st_dev,
 *            st_ino and size of the file before the merge, flags,
 *            reserved, CRC32C of the header (crc field taken as zero).
 *            Flag JF_UNDO (1): the entries hold the old bytes too.
 *   entries  32 bytes (magic "CMJE", crc, offset, length, flags, seq)
 *            then the length new bytes, or (flag JEF_REF) where they are:
 *            24 bytes (link number, CRC32C of the new bytes, offset in
 *            the log, the log's inode); then either (JF_UNDO) the length
 *            old bytes or the CRC32C of the old bytes of each piece of the
 *            range that one 512-byte block of the file holds (4 bytes
 *            each, in file order), zero padded to 8: the entry's CRC32C
 *            covers entry and payload.
 *   links    ".NAME.cowmap-journal.d/N": hard links of the logs JEF_REF
 *            entries point into (the logs' private copies are what the
 *            merge read; a log is linked only if recovery would trust it
 *            and the filesystem allows, else its entries hold the bytes).
 *   trailer  32 bytes (magic "CMJC", crc, entries, data bytes, CRC32C
 *            chained over every entry's crc, reserved), the last bytes of
 *            the file.
 *
 * Version 1 journals (always with the old bytes, flags 0) and version 2
 * (no entry flags) are still recovered and rolled back as before.
 *
 * Order of a merge: the logs are linked, the journal is written whole
 * (header, entries, trailer) under the name ".NAME.cowmap-journal.new",
 * the linked logs and the links directory are fsynced, the journal is
 * fsynced once, then renamed to its own name and the directory fsynced;
 * only then is the file touched (pwrite of every entry's new bytes,
 * fsync), then the journal is unlinked, the directory fsynced and the
 * links removed.  The journal holds no changed byte that a linked log
 * holds (4 bytes per 512 and 56 per entry), each other one once, and the
 * old ones too if the merge asked (COWMAP_MERGE_UNDO_JOURNAL).
 *
 * Why one fsync of the journal is enough: until that fsync returns, a
 * power cut may leave any mix of the journal's blocks on disk, a valid
 * trailer over entries never written among them.  But until then the
 * journal has only its temporary name, which recovery never reads (a
 * merge or recovery under the lock just removes it), and the file is not
 * touched.  The rename comes after the fsync returned, so a journal under
 * its own name is complete and durable, whatever the filesystem reordered;
 * the directory fsync makes the name durable before the first write to
 * the file.  So a journal without a valid trailer, or whose trailer is
 * valid but whose entries are not, was damaged after it was written (or
 * planted): the first is dropped as before (version 1 journals got their
 * trailer only after their entries' fsync), the second is left for a human
 * (-COWMAP_EBADJOURNAL).  One with a valid trailer and entries is complete:
 * replaying it forward is idempotent.  Only a journal with the old bytes
 * (JF_UNDO, or version 1) can be rolled back by cowmap_recover() with
 * COWMAP_RECOVER_ROLLBACK; for one without, that is -EOPNOTSUPP and
 * nothing is written.  A rollback cuts a grown file back to its old size.
 *
 * A journal is trusted only if it is a regular file, owned by the caller,
 * the file's owner or root, and not writable by group or others: anyone
 * who can write the directory could otherwise plant one.  Before a replay
 * or rollback writes anything, every journalled byte of the file must
 * hold its old or its new value (else another program wrote the file
 * after the merge was interrupted, and the journal would undo that), and
 * the file must be able to reach the journal's end.  Without the old
 * bytes, each 512-byte piece must hold its new bytes or match the CRC32C
 * of its old ones: a write of the file (a page from the page cache, a
 * sector on the disk) is never torn inside such a piece.  New bytes read
 * from a link must match their CRC32C, and the link must be the log's
 * inode and trusted as a journal is; else nothing is written and the
 * error names the link.
 *
 * The merge lock is flock(LOCK_EX) on the file itself: it is released
 * when the process dies, and it serializes merges, commits and
 * recoveries of one file (other flock users of the file wait too).  Anyone
 * who can read the file can hold it, so the wait is bounded
 * (cowmap_set_lock_wait(), 10 s by default) and the error names the
 * holder's pid when /proc/locks tells it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

#define J_MAGIC		"COWMAPJN"
#define J_VERSION	3
#define J_VERSION_2	2	/* no entry flags */
#define J_VERSION_1	1	/* entries always with the old bytes */
#define JF_UNDO		(1U << 0)	/* header flag: entries hold the old bytes */
#define JEF_REF		(1U << 0)	/* entry flag: the new bytes are in a log */
#define J_REF_SIZE	24	/* link, CRC of the new bytes, offset, inode */
#define J_SRC_MAX	(1U << 20)	/* links per journal */
#define J_BLK		512		/* file block whose old bytes get one CRC */
#define J_CRC_BYTES	(64U << 10)	/* old-byte CRCs per writev */
#define J_HDR_SIZE	64
#define J_ENT_MAGIC	0x454a4d43U	/* "CMJE" */
#define J_END_MAGIC	0x434a4d43U	/* "CMJC" */
#define J_ENT_SIZE	32
#define J_END_SIZE	32
#define J_ENT_MAX	(1U << 20)	/* bytes of range per entry */
#define J_IOV_MAX	1024		/* iovecs per writev */
#define J_SLOTS		256		/* entry headers per writev */
#define J_FLUSH_BYTES	(8U << 20)	/* bytes per writev */

/* header fields */
#define JH_VERSION	8
#define JH_HLEN		12
#define JH_DEV		16
#define JH_INO		24
#define JH_SIZE		32
#define JH_FLAGS	40
#define JH_CRC		60
/* entry fields */
#define JE_CRC		4
#define JE_OFFSET	8
#define JE_LENGTH	16
#define JE_FLAGS	20
#define JE_SEQ		24
/* fields of a reference to a log (after the entry header) */
#define JR_SRC		0
#define JR_CRC		4
#define JR_OFF		8
#define JR_INO		16
/* trailer fields */
#define JT_CRC		4
#define JT_ENTRIES	8
#define JT_BYTES	16
#define JT_ECRC		24

struct jsrc_key {
	const uint8_t *base;
	uint32_t idx;
};

/* A log the new bytes of entries may point into (journal_add_source()). */
struct jsrc {
	const uint8_t *base;	/* the whole log, as read at open */
	uint64_t len;
	int fd;
	int linked;		/* 0 not yet tried, 1 linked, -1 cannot be */
	uint64_t ino;
};

/*
 * Entries are written with writev(2) straight from the caller's buffers
 * (the logs' mappings, the file window), which stay valid until
 * journal_flush(): no copy of the data in userspace.
 */
struct journal {
	int fd;
	char *path;
	char *tmp;		/* its name until committed */
	bool named;		/* renamed to path */
	struct journal_target t;
	uint8_t head[J_HDR_SIZE];	/* header or trailer, written first */
	size_t head_len;
	struct iovec iov[J_IOV_MAX];
	int n_iov;
	size_t iov_bytes;
	uint8_t hdrs[J_SLOTS][J_ENT_SIZE];
	int n_hdrs;
	uint64_t entries;
	uint64_t bytes;
	uint32_t ecrc;		/* chained entry CRCs */
	uint64_t maxend;	/* end of the last byte journalled */
	bool committed;
	uint8_t crcs[J_CRC_BYTES];	/* old-byte CRCs of the pending entries */
	size_t crc_used;
	uint8_t refs[J_SLOTS][J_REF_SIZE];	/* references of the pending entries */
	struct jsrc *src;
	uint32_t n_src;
	struct jsrc_key *order;	/* src by base */
	bool sorted;
	char *ldir;		/* journal_links_path() */
	int ldfd;		/* that directory, once made */
	bool no_links;		/* it cannot be made: copy every byte */
};

static const uint8_t zero8[8];
static const uint8_t zero_blk[J_BLK];

/* File blocks of J_BLK bytes that [off, off + len) touches (len > 0). */
static uint32_t blocks_of(uint64_t off, uint32_t len)
{
	return (uint32_t)((off + len - 1) / J_BLK - off / J_BLK + 1);
}

/* Bytes after an entry's header, before its padding. */
static uint64_t payload_len(bool has_old, bool ref, uint64_t off, uint32_t len)
{
	if (has_old)
		return 2 * (uint64_t)len;
	return (ref ? J_REF_SIZE : len) + 4 * (uint64_t)blocks_of(off, len);
}

static uint64_t entry_total(bool has_old, bool ref, uint64_t off, uint32_t len)
{
	return J_ENT_SIZE + ALIGN8(payload_len(has_old, ref, off, len));
}

/* CRC32C of the piece of @len bytes at @off that file block @i (counted
 * from the block of @off) holds, and its offset in the range. */
static uint32_t piece(uint64_t off, uint32_t len, uint32_t i, uint32_t *startp)
{
	uint64_t b = (off / J_BLK + i) * J_BLK;
	uint64_t start = MAX(b, off) - off, end = MIN(b + J_BLK, off + len) - off;

	*startp = (uint32_t)start;
	return (uint32_t)(end - start);
}

int journal_flush(struct journal *j)
{
	struct iovec *iov = j->iov;
	int n = j->n_iov, ret;

	if (j->head_len) {
		ret = write_full(j->fd, j->head, j->head_len);
		if (ret < 0)
			return err_set(-ret, "%s: write: %s", j->path, strerror(-ret));
		j->head_len = 0;
	}
	if (!n)
		return 0;
	while (n) {
		ssize_t w = writev(j->fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return err_set(errno, "%s: write: %s", j->path, strerror(errno));
		}
		if (w == 0)
			return err_set(EIO, "%s: write returned 0", j->path);
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	j->n_iov = 0;
	j->n_hdrs = 0;
	j->iov_bytes = 0;
	j->crc_used = 0;
	crash_point("journal write");
	return 0;
}

int journal_begin(struct journal **jp, const char *jpath,
		  const struct journal_target *t)
{
	struct journal *j;
	uint8_t *h;
	int ret;

	j = calloc(1, sizeof(*j));
	if (!j)
		return err_set(ENOMEM, "out of memory");
	j->t = *t;
	j->fd = -1;
	j->ldfd = -1;
	j->path = xstrdup(jpath);
	j->tmp = journal_tmp_path(jpath);
	j->ldir = journal_links_path(jpath);
	if (!j->path || !j->tmp || !j->ldir) {
		ret = -ENOMEM;
		goto err_free;
	}
	/* One left by a merge that died before its commit: never applied. */
	unlink(j->tmp);
	j->fd = open(j->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (j->fd < 0) {
		ret = err_set(errno, "%s: cannot create the merge journal: %s",
			      j->tmp, strerror(errno));
		goto err_free;
	}
	crash_point("journal created");
	h = j->head;
	memset(h, 0, J_HDR_SIZE);
	memcpy(h, J_MAGIC, 8);
	put_le32(h + JH_VERSION, J_VERSION);
	put_le32(h + JH_HLEN, J_HDR_SIZE);
	put_le64(h + JH_DEV, t->dev);
	put_le64(h + JH_INO, t->ino);
	put_le64(h + JH_SIZE, t->size);
	put_le32(h + JH_FLAGS, t->undo ? JF_UNDO : 0);
	put_le32(h + JH_CRC, crc32c_skip4(h, J_HDR_SIZE, JH_CRC));
	j->head_len = J_HDR_SIZE;
	*jp = j;
	return 0;

err_free:
	if (j->fd >= 0) {
		close(j->fd);
		unlink(j->tmp);
	}
	free(j->ldir);
	free(j->tmp);
	free(j->path);
	free(j);
	return ret;
}

int journal_add_source(struct journal *j, const uint8_t *base, uint64_t len, int fd)
{
	struct jsrc *src;
	struct jsrc_key *order;

	if (j->t.undo || j->n_src == J_SRC_MAX)
		return 0;	/* entries hold every byte */
	src = xrealloc_array(j->src, j->n_src + 1, sizeof(*src));
	if (!src)
		return err_set(ENOMEM, "out of memory");
	j->src = src;
	order = xrealloc_array(j->order, j->n_src + 1, sizeof(*order));
	if (!order)
		return err_set(ENOMEM, "out of memory");
	j->order = order;
	src[j->n_src] = (struct jsrc){ .base = base, .len = len, .fd = fd };
	order[j->n_src] = (struct jsrc_key){ base, j->n_src };
	j->n_src++;
	j->sorted = false;
	return 0;
}

static int src_cmp(const void *a, const void *b)
{
	const uint8_t *x = ((const struct jsrc_key *)a)->base;
	const uint8_t *y = ((const struct jsrc_key *)b)->base;

	return x < y ? -1 : x > y;
}

/* The source holding all of [p, p + len), or -1. */
static int64_t find_src(struct journal *j, const uint8_t *p, uint32_t len)
{
	uint32_t lo = 0, hi = j->n_src;
	const struct jsrc *s;

	if (!j->n_src)
		return -1;
	if (!j->sorted) {
		qsort(j->order, j->n_src, sizeof(*j->order), src_cmp);
		j->sorted = true;
	}
	/* the last source that starts at or before p */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (j->order[mid].base <= p)
			lo = mid;
		else
			hi = mid;
	}
	s = &j->src[j->order[lo].idx];
	if (p < s->base || (uint64_t)(p - s->base) > s->len ||
	    s->len - (uint64_t)(p - s->base) < len)
		return -1;
	return j->order[lo].idx;
}

/* A links directory, a journal or a link in it that we may trust: see
 * check_trusted(). */
static bool trusted_st(const struct stat *st, uid_t file_uid, mode_t type)
{
	return (st->st_mode & S_IFMT) == type && !(st->st_mode & 022) &&
	       owner_trusted(st->st_uid, file_uid);
}

/* Remove the links directory @ldir and what a merge put in it, if it is
 * one we may trust (else it stays, and is neither used nor read). */
static void remove_links(const char *ldir, uid_t file_uid)
{
	int dfd = open(ldir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	struct dirent *d;
	DIR *dir;

	if (dfd < 0)
		return;
	if (fstat(dfd, &st) < 0 || !trusted_st(&st, file_uid, S_IFDIR) ||
	    !(dir = fdopendir(dfd))) {
		close(dfd);
		return;
	}
	while ((d = readdir(dir)))
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
			unlinkat(dfd, d->d_name, 0);
	closedir(dir);
	rmdir(ldir);
}

/*
 * Hard-link the log of source @i as "<i>" in the links directory, which
 * is made at the first link: entries may then point into it.  Only a log
 * that recovery will trust (regular, owned by the caller, the file's
 * owner or root, not writable by group or others) and whose link is the
 * very file open (not one put at its path since); anything else, and a
 * link the filesystem refuses (another filesystem, no hard links), makes
 * its entries hold the bytes, as they always did.
 */
static bool src_link(struct journal *j, uint32_t i)
{
	struct jsrc *s = &j->src[i];
	struct stat st, lst;
	char name[16], proc[64];

	if (s->linked)
		return s->linked > 0;
	s->linked = -1;
	if (fstat(s->fd, &st) < 0 || !trusted_st(&st, j->t.uid, S_IFREG) ||
	    (uint64_t)st.st_size < s->len)
		return false;
	if (j->ldfd < 0 && !j->no_links) {
		struct stat dst;

		if (mkdir(j->ldir, 0700) < 0 && errno == EEXIST) {
			remove_links(j->ldir, j->t.uid);	/* left by a merge that died */
			(void)mkdir(j->ldir, 0700);
		}
		j->ldfd = open(j->ldir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (j->ldfd >= 0 && (fstat(j->ldfd, &dst) < 0 ||
				     !trusted_st(&dst, j->t.uid, S_IFDIR))) {
			close(j->ldfd);
			j->ldfd = -1;
		}
		j->no_links = j->ldfd < 0;
		crash_point("journal links directory made");
	}
	if (j->no_links)
		return false;
	snprintf(name, sizeof(name), "%u", i);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", s->fd);
	if (linkat(AT_FDCWD, proc, j->ldfd, name, AT_SYMLINK_FOLLOW) < 0)
		return false;
	if (fstatat(j->ldfd, name, &lst, AT_SYMLINK_NOFOLLOW) < 0 ||
	    lst.st_dev != st.st_dev || lst.st_ino != st.st_ino) {
		unlinkat(j->ldfd, name, 0);
		return false;
	}
	s->ino = (uint64_t)st.st_ino;
	s->linked = 1;
	return true;
}

/* The CRC32C of the old bytes of each file block's piece of the range. */
static void old_crcs(uint8_t *out, uint64_t off, const uint8_t *oldb, uint32_t len)
{
	uint32_t n = blocks_of(off, len), start, plen;

	for (uint32_t i = 0; i < n; i++) {
		plen = piece(off, len, i, &start);
		put_le32(out + 4 * i, ~crc32c_update(~0U, oldb + start, plen));
	}
}

static int add_one(struct journal *j, uint64_t off, const uint8_t *newb,
		   const uint8_t *oldb, uint32_t len)
{
	int64_t src = j->t.undo ? -1 : find_src(j, newb, len);
	bool ref = src >= 0 && src_link(j, (uint32_t)src);
	uint64_t plen = payload_len(j->t.undo, ref, off, len);
	uint64_t total = J_ENT_SIZE + ALIGN8(plen), pad = total - J_ENT_SIZE - plen;
	const uint8_t *tail = oldb;	/* what follows the new bytes */
	uint32_t head_len = ref ? J_REF_SIZE : len;
	uint32_t tail_len = (uint32_t)(plen - head_len);
	const uint8_t *head = newb;	/* the new bytes, or where they are */
	uint8_t *e;
	uint32_t c;
	int ret;

	if (j->n_iov + 4 > J_IOV_MAX || j->n_hdrs == J_SLOTS ||
	    j->iov_bytes >= J_FLUSH_BYTES || j->crc_used + tail_len > J_CRC_BYTES) {
		ret = journal_flush(j);
		if (ret)
			return ret;
	}
	if (ref) {
		const struct jsrc *s = &j->src[src];
		uint8_t *r = j->refs[j->n_hdrs];

		put_le32(r + JR_SRC, (uint32_t)src);
		put_le32(r + JR_CRC, ~crc32c_update(~0U, newb, len));
		put_le64(r + JR_OFF, (uint64_t)(newb - s->base));
		put_le64(r + JR_INO, s->ino);
		head = r;
	}
	e = j->hdrs[j->n_hdrs++];
	put_le32(e, J_ENT_MAGIC);
	put_le32(e + JE_CRC, 0);
	put_le64(e + JE_OFFSET, off);
	put_le32(e + JE_LENGTH, len);
	put_le32(e + JE_FLAGS, ref ? JEF_REF : 0);
	put_le64(e + JE_SEQ, j->entries);
	if (!j->t.undo) {
		old_crcs(j->crcs + j->crc_used, off, oldb, len);
		tail = j->crcs + j->crc_used;
		j->crc_used += tail_len;
	}
	c = crc32c_update(~0U, e, J_ENT_SIZE);
	c = crc32c_update(c, head, head_len);
	c = crc32c_update(c, tail, tail_len);
	c = crc32c_update(c, zero8, pad);
	put_le32(e + JE_CRC, ~c);
	j->ecrc = crc32c_update(j->ecrc, e + JE_CRC, 4);
	j->iov[j->n_iov++] = (struct iovec){ e, J_ENT_SIZE };
	j->iov[j->n_iov++] = (struct iovec){ (void *)head, head_len };
	j->iov[j->n_iov++] = (struct iovec){ (void *)tail, tail_len };
	if (pad)
		j->iov[j->n_iov++] = (struct iovec){ (void *)zero8, pad };
	j->iov_bytes += total;
	j->entries++;
	j->bytes += len;
	j->maxend = MAX(j->maxend, off + len);
	return 0;
}

int journal_add(struct journal *j, uint64_t off, const uint8_t *newb,
		const uint8_t *oldb, uint32_t len)
{
	while (len) {
		uint32_t n = MIN(len, J_ENT_MAX);
		int ret = add_one(j, off, newb, oldb, n);

		if (ret)
			return ret;
		off += n;
		newb += n;
		oldb += n;
		len -= n;
	}
	return 0;
}

int journal_check_size(const struct journal *j)
{
	if (j->maxend <= j->t.size)
		return 0;
	return check_size_limit(j->path, j->t.path, j->maxend);
}

/* The logs entries point into, and their links, durable before the
 * journal gets its name. */
static int sync_links(struct journal *j)
{
	int ret;

	if (j->ldfd < 0)
		return 0;
	for (uint32_t i = 0; i < j->n_src; i++)
		if (j->src[i].linked > 0 && fsync(j->src[i].fd) < 0)
			return err_set(errno, "%s/%u: fsync: %s", j->ldir, i, strerror(errno));
	ret = fsync_dir_fd(j->ldfd);
	if (ret)
		return err_set(-ret, "%s: fsync: %s", j->ldir, strerror(-ret));
	crash_point("journal links synced");
	return 0;
}

int journal_commit(struct journal *j)
{
	uint8_t *tr;
	int ret;

	ret = journal_flush(j);
	if (ret)
		return ret;
	tr = j->head;
	memset(tr, 0, J_END_SIZE);
	put_le32(tr, J_END_MAGIC);
	put_le64(tr + JT_ENTRIES, j->entries);
	put_le64(tr + JT_BYTES, j->bytes);
	put_le32(tr + JT_ECRC, j->ecrc);
	put_le32(tr + JT_CRC, crc32c_skip4(tr, J_END_SIZE, JT_CRC));
	j->head_len = J_END_SIZE;
	ret = journal_flush(j);
	if (ret)
		return ret;
	crash_point("journal trailer written");
	ret = sync_links(j);
	if (ret)
		return ret;
	/* Entries and trailer together: the name comes after (see above). */
	if (fsync(j->fd) < 0)
		return err_set(errno, "%s: fsync: %s", j->tmp, strerror(errno));
	crash_point("journal synced");
	if (rename(j->tmp, j->path) < 0)
		return err_set(errno, "%s: rename to %s: %s", j->tmp, j->path, strerror(errno));
	j->named = true;
	crash_point("journal renamed");
	ret = fsync_dir_of(j->path);
	if (ret)
		return ret;
	crash_point("journal directory synced");
	j->committed = true;
	return 0;
}

/* ------------------------------------------------------------------------
 * Reading a journal back
 */

struct jview {
	const char *name;
	const uint8_t *m;
	uint64_t len;
	uint64_t dev, ino, size;
	uint64_t entries, bytes;
	bool has_old;		/* entries hold the old bytes (else their CRCs) */
	uint32_t version;
	/* Where the new bytes of JEF_REF entries are: in this process's
	 * copies of the logs (src), or in the links directory (recovery). */
	const struct jsrc *src;
	uint32_t n_src;
	const char *ldir;
	uid_t file_uid;
	int ldfd;
	int *fds;		/* links opened, by index (-1: not yet) */
	uint32_t n_fds;
	uint8_t *nbuf;		/* new bytes read from a link */
};

#define JBAD(v, off, fmt, ...)						\
	err_set(COWMAP_EBADJOURNAL, "%s: byte %llu: " fmt, (v)->name,	\
		(unsigned long long)(off), ##__VA_ARGS__)

static bool ent_ref(const uint8_t *e)
{
	return get_le32(e + JE_FLAGS) & JEF_REF;
}

static uint64_t ent_total(const struct jview *v, const uint8_t *e)
{
	return entry_total(v->has_old, ent_ref(e), get_le64(e + JE_OFFSET),
			   get_le32(e + JE_LENGTH));
}

/* What follows an entry's new bytes or reference: old bytes or CRCs. */
static const uint8_t *ent_tail(const uint8_t *e)
{
	return e + J_ENT_SIZE + (ent_ref(e) ? J_REF_SIZE : get_le32(e + JE_LENGTH));
}

/* The link @idx, opened and checked once: a trusted regular file, the
 * log (inode @ino) that the merge linked there. */
static int link_fd(struct jview *v, uint32_t idx, uint64_t ino, const char **why)
{
	char name[16];
	struct stat st;
	int fd;

	if (v->ldfd < 0) {
		v->ldfd = open(v->ldir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (v->ldfd < 0) {
			*why = strerror(errno);
			return -1;
		}
		if (fstat(v->ldfd, &st) < 0 || !trusted_st(&st, v->file_uid, S_IFDIR)) {
			*why = "the directory is not one this library made (not owned by you, "
			       "the file's owner or root, or writable by others)";
			return -1;
		}
	}
	if (idx >= v->n_fds) {
		int *fds = xrealloc_array(v->fds, idx + 1, sizeof(*fds));

		if (!fds) {
			*why = strerror(ENOMEM);
			return -1;
		}
		for (uint32_t i = v->n_fds; i <= idx; i++)
			fds[i] = -1;
		v->fds = fds;
		v->n_fds = idx + 1;
	}
	if (v->fds[idx] >= 0)
		return v->fds[idx];
	snprintf(name, sizeof(name), "%u", idx);
	fd = openat(v->ldfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) < 0 || !trusted_st(&st, v->file_uid, S_IFREG) ||
	    (uint64_t)st.st_ino != ino) {
		*why = "it is not the log the merge linked there";
		close(fd);
		return -1;
	}
	v->fds[idx] = fd;
	return fd;
}

/*
 * The new bytes of the entry at @e (byte @at of the journal): in the
 * entry, in this process's copy of a log, or read from the log's link and
 * checked against their CRC.  NULL (error set) if they cannot be had.
 */
static const uint8_t *ent_new(struct jview *v, const uint8_t *e, uint64_t at)
{
	const uint8_t *r = e + J_ENT_SIZE;
	uint32_t len = get_le32(e + JE_LENGTH), idx = get_le32(r + JR_SRC);
	uint64_t loff = get_le64(r + JR_OFF);
	const char *why = NULL;
	int fd, ret;

	if (!ent_ref(e))
		return r;
	if (v->src || !v->ldir) {
		if (idx < v->n_src && loff <= v->src[idx].len && v->src[idx].len - loff >= len)
			return v->src[idx].base + loff;
		JBAD(v, at, "journal entry points outside log %u", idx);
		return NULL;
	}
	if (!v->nbuf && !(v->nbuf = malloc(J_ENT_MAX))) {
		err_set(ENOMEM, "out of memory");
		return NULL;
	}
	fd = link_fd(v, idx, get_le64(r + JR_INO), &why);
	if (fd >= 0) {
		ret = pread_full(fd, v->nbuf, len, loff);
		if (ret)
			why = ret == -ENODATA ? "it is shorter than when the merge read it" :
				strerror(-ret);
		else if (~crc32c_update(~0U, v->nbuf, len) != get_le32(r + JR_CRC))
			why = "the bytes there changed since the merge read them";
	}
	if (!why)
		return v->nbuf;
	err_set(COWMAP_EBADJOURNAL, "%s: byte %llu: the new bytes of this entry are in "
		"%s/%u, a hard link of a log the interrupted merge read (bytes %llu to "
		"%llu), and %s; nothing written.  Restore that log, or check the file, "
		"then 'cowmap recover --discard' removes the journal", v->name,
		(unsigned long long)at, v->ldir, idx, (unsigned long long)loff,
		(unsigned long long)(loff + len), why);
	return NULL;
}

static void jview_close(struct jview *v)
{
	if (v->m)
		munmap((void *)v->m, v->len);
	for (uint32_t i = 0; i < v->n_fds; i++)
		if (v->fds[i] >= 0)
			close(v->fds[i]);
	if (v->ldfd >= 0)
		close(v->ldfd);
	free(v->fds);
	free(v->nbuf);
}

/* Return 1 if the journal has a valid trailer (it claims to be complete). */
static int jview_complete(const struct jview *v)
{
	const uint8_t *tr;

	if (v->len < J_HDR_SIZE + J_END_SIZE)
		return 0;
	tr = v->m + v->len - J_END_SIZE;
	if (get_le32(tr) != J_END_MAGIC)
		return 0;
	return get_le32(tr + JT_CRC) == crc32c_skip4(tr, J_END_SIZE, JT_CRC);
}

/* Validate a complete journal; 0 or -COWMAP_EBADJOURNAL. */
static int jview_validate(struct jview *v)
{
	const uint8_t *m = v->m, *tr = v->m + v->len - J_END_SIZE;
	uint64_t p = J_HDR_SIZE, end = v->len - J_END_SIZE, n = 0, bytes = 0;
	uint32_t ecrc = 0, ver, flags;

	if (memcmp(m, J_MAGIC, 8) || get_le32(m + JH_HLEN) != J_HDR_SIZE)
		return JBAD(v, 0, "bad journal header");
	if (get_le32(m + JH_CRC) != crc32c_skip4(m, J_HDR_SIZE, JH_CRC))
		return JBAD(v, JH_CRC, "journal header CRC mismatch");
	ver = get_le32(m + JH_VERSION);
	if (ver < J_VERSION_1 || ver > J_VERSION)
		return JBAD(v, JH_VERSION, "unknown journal version %u (this library reads "
			    "versions %u to %u)", ver, J_VERSION_1, J_VERSION);
	flags = get_le32(m + JH_FLAGS);
	if (flags & ~(ver >= J_VERSION_2 ? JF_UNDO : 0))
		return JBAD(v, JH_FLAGS, "unknown journal flags");
	v->version = ver;
	v->has_old = ver == J_VERSION_1 || (flags & JF_UNDO);
	v->dev = get_le64(m + JH_DEV);
	v->ino = get_le64(m + JH_INO);
	v->size = get_le64(m + JH_SIZE);
	while (p < end) {
		const uint8_t *e = m + p;
		uint64_t total, off;
		uint32_t len, eflags, allowed;

		if (end - p < J_ENT_SIZE || get_le32(e) != J_ENT_MAGIC)
			return JBAD(v, p, "bad journal entry");
		len = get_le32(e + JE_LENGTH);
		off = get_le64(e + JE_OFFSET);
		eflags = get_le32(e + JE_FLAGS);
		allowed = ver == J_VERSION && !v->has_old ? JEF_REF : 0;
		if (get_le64(e + JE_SEQ) != n || (eflags & ~allowed))
			return JBAD(v, p, "journal entry %llu: bad sequence or flags",
				    (unsigned long long)n);
		if (!len || len > J_ENT_MAX || off > (uint64_t)INT64_MAX - len ||
		    (total = ent_total(v, e)) > end - p)
			return JBAD(v, p, "bad journal entry length %u", len);
		if (get_le32(e + JE_CRC) != crc32c_skip4(e, total, JE_CRC))
			return JBAD(v, p, "journal entry %llu: CRC mismatch",
				    (unsigned long long)n);
		if ((eflags & JEF_REF) && get_le32(e + J_ENT_SIZE + JR_SRC) >= J_SRC_MAX)
			return JBAD(v, p, "journal entry %llu: bad log link %u",
				    (unsigned long long)n, get_le32(e + J_ENT_SIZE + JR_SRC));
		ecrc = crc32c_update(ecrc, e + JE_CRC, 4);
		bytes += len;
		n++;
		p += total;
	}
	if (n != get_le64(tr + JT_ENTRIES) || bytes != get_le64(tr + JT_BYTES) ||
	    ecrc != get_le32(tr + JT_ECRC))
		return JBAD(v, end, "journal trailer does not match its entries "
			    "(%llu entries, %llu bytes)", (unsigned long long)n,
			    (unsigned long long)bytes);
	v->entries = n;
	v->bytes = bytes;
	return 0;
}

/* Report byte @off of @path holding @have, which a replay or rollback
 * would overwrite. */
static int changed_since(const char *path, uint64_t off, uint8_t have, uint8_t newv,
			 const uint8_t *oldv, bool old)
{
	char before[64];

	if (oldv)
		snprintf(before, sizeof(before), "its value before (0x%02x)", *oldv);
	else
		snprintf(before, sizeof(before), "(by the checksum of its 512-byte block) "
			 "its value before");
	return err_set(COWMAP_EBADJOURNAL, "%s: byte %llu holds 0x%02x, neither %s nor "
		       "after (0x%02x) the interrupted merge: the file changed since, and %s "
		       "the journal would overwrite that; nothing written.  Check the file, "
		       "then 'cowmap recover --discard' removes the journal and leaves the "
		       "file as it is", path, (unsigned long long)off, have, before, newv,
		       old ? "rolling back" : "replaying");
}

/* Index of the first byte of an entry (@len bytes at @off, @have of them
 * in @buf from the file) holding neither its old nor its new value, or
 * @len.  Without the old bytes, a block's piece passes whole, if it holds
 * its new bytes or matches its old bytes' CRC (a byte the file lacks
 * counts as the zero the merge saw there). */
static uint32_t first_changed(const struct jview *v, const uint8_t *e, const uint8_t *nb,
			      const uint8_t *buf, uint32_t have)
{
	uint32_t len = get_le32(e + JE_LENGTH), i, n, start, plen, in;
	uint64_t off = get_le64(e + JE_OFFSET);
	const uint8_t *ob = ent_tail(e);

	if (v->has_old) {
		for (i = 0; i < have && (buf[i] == nb[i] || buf[i] == ob[i]); i++)
			;
		return i < have ? i : len;
	}
	n = blocks_of(off, len);
	for (i = 0; i < n; i++) {
		plen = piece(off, len, i, &start);
		in = start < have ? MIN(plen, have - start) : 0;
		if (!memcmp(buf + start, nb + start, in))
			continue;
		if (~crc32c_update(crc32c_update(~0U, buf + start, in), zero_blk, plen - in) ==
		    get_le32(ob + 4 * i))
			continue;
		while (buf[start] == nb[start])
			start++;
		return start;
	}
	return len;
}

/*
 * Before a recovery writes anything: every journalled byte the file has
 * must hold its old or its new value, and a byte the file lacks must lie
 * beyond the size it had before the merge; replaying forward, the file
 * must be able to grow to the journal's end.
 */
static int jview_check_file(struct jview *v, int fd, const char *path,
			    uint64_t fsize, bool old)
{
	uint64_t p = J_HDR_SIZE, end = v->len - J_END_SIZE, maxend = 0;
	uint8_t *buf = malloc(J_ENT_MAX);
	int ret = 0;

	if (!buf)
		return err_set(ENOMEM, "out of memory");
	while (p < end && !ret) {
		const uint8_t *e = v->m + p;
		uint32_t len = get_le32(e + JE_LENGTH), i;
		uint64_t off = get_le64(e + JE_OFFSET);
		const uint8_t *nb = ent_new(v, e, p);
		uint32_t have = off < fsize ? (uint32_t)MIN((uint64_t)len, fsize - off) : 0;

		if (!nb) {
			ret = -COWMAP_EBADJOURNAL;
			break;
		}
		p += ent_total(v, e);
		maxend = MAX(maxend, off + len);
		ret = pread_full(fd, buf, have, off);
		if (ret < 0) {
			ret = err_set(-ret, "%s: read at %llu: %s", path,
				      (unsigned long long)off, strerror(-ret));
			break;
		}
		i = first_changed(v, e, nb, buf, have);
		if (i < len)
			ret = changed_since(path, off + i, buf[i], nb[i],
					    v->has_old ? ent_tail(e) + i : NULL, old);
		else if (have < len && off + have < v->size)
			ret = err_set(COWMAP_EBADJOURNAL, "%s: the file ends at byte %llu, before "
				      "its size when the interrupted merge began (%llu): it changed "
				      "since; nothing written.  Check the file, then 'cowmap "
				      "recover --discard' removes the journal", path,
				      (unsigned long long)fsize, (unsigned long long)v->size);
	}
	free(buf);
	if (!ret && !old && maxend > fsize)
		ret = check_size_limit(path, path, maxend);
	return ret;
}

/* Write every entry's new (or, rollback, old) bytes to @fd, then fsync.
 * A rollback writes no old bytes past the old size: it cuts the file
 * back to that size. */
static int jview_apply(struct jview *v, int fd, const char *path, bool old)
{
	uint64_t p = J_HDR_SIZE, end = v->len - J_END_SIZE, maxend = 0;
	int ret;

	while (p < end) {
		const uint8_t *e = v->m + p;
		uint32_t len = get_le32(e + JE_LENGTH), wlen = len;
		uint64_t off = get_le64(e + JE_OFFSET);
		const uint8_t *data = old ? ent_tail(e) : ent_new(v, e, p);

		if (!data)
			return -COWMAP_EBADJOURNAL;
		if (old)
			wlen = off < v->size ? (uint32_t)MIN((uint64_t)len, v->size - off) : 0;
		ret = pwrite_full(fd, data, wlen, off);
		if (ret < 0)
			return err_set(-ret, "%s: write of %u bytes at %llu: %s", path, wlen,
				       (unsigned long long)off, strerror(-ret));
		crash_point("file write");
		maxend = MAX(maxend, off + len);
		p += ent_total(v, e);
	}
	if (old && maxend > v->size && ftruncate(fd, (off_t)v->size) < 0)
		return err_set(errno, "%s: truncate to %llu: %s", path,
			       (unsigned long long)v->size, strerror(errno));
	if (fsync(fd) < 0)
		return err_set(errno, "%s: fsync: %s", path, strerror(errno));
	crash_point("file synced");
	return 0;
}

static int map_journal(int fd, const char *name, struct jview *v)
{
	struct stat st;

	memset(v, 0, sizeof(*v));
	v->name = name;
	v->ldfd = -1;
	if (fstat(fd, &st) < 0)
		return err_set(errno, "%s: %s", name, strerror(errno));
	v->len = (uint64_t)st.st_size;
	if (!v->len)
		return 0;
	return read_whole(fd, name, v->len, &v->m);
}

int journal_apply(struct journal *j)
{
	struct jview v;
	int ret;

	if (!j->committed)
		return err_set(EINVAL, "journal not committed");
	ret = map_journal(j->fd, j->path, &v);
	if (ret)
		return ret;
	/* Written by this process just now: its CRCs are for recovery. */
	v.size = j->t.size;
	v.has_old = j->t.undo;
	v.src = j->src;		/* the bytes entries point to, as read */
	v.n_src = j->n_src;
	if (v.len < J_HDR_SIZE + J_END_SIZE)
		ret = err_set(EIO, "%s: journal shorter than written", j->path);
	else
		ret = jview_apply(&v, j->t.fd, j->t.path, false);
	jview_close(&v);
	return ret;
}

int journal_finish(struct journal *j)
{
	int ret = 0;

	/* The directory too: a journal that came back after a crash would
	 * be replayed over whatever was written to the file since (recovery
	 * refuses that, and a human has to decide). */
	if (unlink(j->path) < 0)
		ret = err_set(errno, "%s: unlink: %s", j->path, strerror(errno));
	crash_point("journal unlinked");
	if (!ret)
		ret = fsync_dir_of(j->path);
	/* Not needed any more; one a crash leaves here is removed later. */
	if (!ret && j->ldfd >= 0)
		remove_links(j->ldir, j->t.uid);
	journal_release(j);
	return ret;
}

void journal_release(struct journal *j)
{
	close(j->fd);
	if (j->ldfd >= 0)
		close(j->ldfd);
	free(j->src);
	free(j->order);
	free(j->ldir);
	free(j->tmp);
	free(j->path);
	free(j);
}

void journal_abort(struct journal *j)
{
	if (!j)
		return;
	unlink(j->named ? j->path : j->tmp);
	if (j->ldfd >= 0)
		remove_links(j->ldir, j->t.uid);
	journal_release(j);
}

/* ------------------------------------------------------------------------
 * Lock and recovery
 */

/* Refuse a journal that someone other than the caller, the file's owner
 * or root could have written (git's safe.directory rule, CVE-2022-24765). */
static int check_trusted(const char *path, const char *jpath, const struct stat *st,
			 const struct stat *fst)
{
	char why[160];

	if (S_ISLNK(st->st_mode))
		snprintf(why, sizeof(why), "it is a symbolic link");
	else if (!S_ISREG(st->st_mode))
		snprintf(why, sizeof(why), "it is not a regular file");
	else if (!owner_trusted(st->st_uid, fst->st_uid))
		snprintf(why, sizeof(why), "it is owned by uid %u, neither you (uid %u), "
			 "the file's owner (uid %u) nor root", (unsigned int)st->st_uid,
			 (unsigned int)geteuid(), (unsigned int)fst->st_uid);
	else if (st->st_mode & 022)
		snprintf(why, sizeof(why), "it is writable by group or others (mode %04o)",
			 (unsigned int)(st->st_mode & 07777));
	else
		return 0;
	return err_set(EPERM, "%s: refusing the merge journal %s: %s.  Anyone who can "
		       "write the directory can plant a journal that rewrites the file: "
		       "if you did not interrupt a merge of this file, check the journal "
		       "and remove it (rm, or 'cowmap recover --discard')", path, jpath, why);
}

static int discard_journal(const char *jpath)
{
	if (unlink(jpath) < 0)
		return err_set(errno, "%s: cannot remove the merge journal: %s",
			       jpath, strerror(errno));
	return fsync_dir_of(jpath);
}

/* A journal still under its temporary name was never applied (see the top
 * of this file): the merge writing it died.  We hold the lock. */
static void remove_tmp(const char *jpath)
{
	char *tmp = journal_tmp_path(jpath);

	if (tmp)
		unlink(tmp);
	free(tmp);
}

static int do_recover(const char *path, int fd, bool can_write, unsigned int flags)
{
	char *jpath = journal_path(path), *ldir = jpath ? journal_links_path(jpath) : NULL;
	struct stat st, jst;
	struct jview v = { .ldfd = -1 };
	int jfd, jerr, wfd = -1, ret;

	if (!ldir || fstat(fd, &st) < 0) {
		ret = ldir ? err_set(errno, "%s: %s", path, strerror(errno)) : -ENOMEM;
		free(ldir);
		free(jpath);
		return ret;
	}
	if (!(flags & JOURNAL_CHECK_ONLY))
		remove_tmp(jpath);
	/* O_NONBLOCK: a FIFO planted there must not hang the merge. */
	jfd = open(jpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	jerr = errno;
	if (jfd < 0 ? lstat(jpath, &jst) : fstat(jfd, &jst)) {
		ret = errno == ENOENT ? COWMAP_RECOVER_NONE :
			err_set(errno, "%s: %s", jpath, strerror(errno));
		goto out;
	}
	if (flags & COWMAP_RECOVER_DISCARD) {
		/* The user checked the file: remove whatever is there. */
		ret = discard_journal(jpath);
		if (!ret)
			ret = COWMAP_RECOVER_DISCARDED;
		goto out;
	}
	/* Say why a journal that cannot be opened is not to be trusted. */
	ret = check_trusted(path, jpath, &jst, &st);
	if (!ret && jfd < 0)
		ret = err_set(jerr, "%s: %s", jpath, strerror(jerr));
	if (ret)
		goto out;
	if (flags & JOURNAL_CHECK_ONLY) {
		ret = err_set(EBUSY, "%s: an interrupted merge is pending (%s); recover the "
			      "file first (a dry run or a merge into another file does not "
			      "modify it)", path, jpath);
		goto out;
	}
	ret = map_journal(jfd, jpath, &v);
	if (ret)
		goto out;
	v.ldir = ldir;
	v.file_uid = st.st_uid;
	if (!jview_complete(&v)) {
		/* Never applied: the trailer is written after the entries are
		 * durable and before the file is touched. */
		ret = discard_journal(jpath);
		if (ret)
			err_prefix(-ret, "%s: cannot remove an incomplete merge journal", path);
		else
			ret = COWMAP_RECOVER_DROPPED;
		goto out;
	}
	ret = jview_validate(&v);
	if (ret) {
		err_prefix(COWMAP_EBADJOURNAL, "%s: interrupted merge cannot be completed", path);
		goto out;
	}
	if ((uint64_t)st.st_dev != v.dev || (uint64_t)st.st_ino != v.ino) {
		ret = err_set(COWMAP_EBADJOURNAL, "%s: merge journal %s belongs to another "
			      "file (dev %u:%u inode %llu; the file is dev %u:%u inode %llu)",
			      path, jpath, major((dev_t)v.dev), minor((dev_t)v.dev),
			      (unsigned long long)v.ino, major(st.st_dev), minor(st.st_dev),
			      (unsigned long long)st.st_ino);
		goto out;
	}
	if ((flags & COWMAP_RECOVER_ROLLBACK) && !v.has_old) {
		ret = err_set(EOPNOTSUPP, "%s: cannot roll back the interrupted merge: its "
			      "journal %s holds only the new bytes (a merge keeps the old ones "
			      "with COWMAP_MERGE_UNDO_JOURNAL); nothing written.  Recovery "
			      "without rollback completes the merge", path, jpath);
		goto out;
	}
	ret = jview_check_file(&v, fd, path, (uint64_t)st.st_size,
			       flags & COWMAP_RECOVER_ROLLBACK);
	if (ret)
		goto out;
	if (!can_write) {
		struct stat wst;

		wfd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (wfd < 0) {
			ret = err_set(errno, "%s: an interrupted merge must be completed first, "
				      "which needs write access: %s", path, strerror(errno));
			goto out;
		}
		if (fstat(wfd, &wst) < 0 || wst.st_dev != st.st_dev || wst.st_ino != st.st_ino) {
			ret = err_set(EAGAIN, "%s: file replaced during recovery", path);
			goto out;
		}
		fd = wfd;
	}
	ret = jview_apply(&v, fd, path, flags & COWMAP_RECOVER_ROLLBACK);
	if (ret)
		goto out;
	ret = discard_journal(jpath);
	if (!ret)
		ret = (flags & COWMAP_RECOVER_ROLLBACK) ? COWMAP_RECOVER_ROLLED_BACK :
			COWMAP_RECOVER_REPLAYED;
out:
	jview_close(&v);
	/* No journal under its name (any more): links left are stale. */
	if (ret >= 0 && !(flags & JOURNAL_CHECK_ONLY))
		remove_links(ldir, st.st_uid);
	if (wfd >= 0)
		close(wfd);
	if (jfd >= 0)
		close(jfd);
	free(ldir);
	free(jpath);
	return ret;
}

static int lock_wait_ms = 10000;

COWMAP_EXPORT void cowmap_set_lock_wait(int ms)
{
	__atomic_store_n(&lock_wait_ms, ms < 0 ? -1 : ms, __ATOMIC_RELAXED);
}

/* The pid of a process holding a flock on @fd's file, from /proc/locks;
 * 0 if not found. */
static long lock_holder(int fd)
{
	char line[256], want[64];
	struct stat st;
	long pid = 0;
	FILE *f;

	if (fstat(fd, &st) < 0)
		return 0;
	snprintf(want, sizeof(want), " %02x:%02x:%llu ", major(st.st_dev), minor(st.st_dev),
		 (unsigned long long)st.st_ino);
	f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	while (!pid && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, want);
		long v;

		if (!p || strstr(line, "->") || !strstr(line, "FLOCK"))
			continue;
		*p = '\0';		/* "N: FLOCK ADVISORY WRITE PID" */
		p = strrchr(line, ' ');
		v = p ? strtol(p + 1, NULL, 10) : 0;
		if (v > 0)
			pid = v;
	}
	fclose(f);
	return pid;
}

static int lock_bounded(const char *path, int fd)
{
	int wait = __atomic_load_n(&lock_wait_ms, __ATOMIC_RELAXED);
	struct timespec step = { 0, 20 * 1000 * 1000 };
	long waited = 0, pid;
	char who[64] = "";

	for (;;) {
		if (flock(fd, LOCK_EX | (wait < 0 ? 0 : LOCK_NB)) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return err_set(errno, "%s: lock: %s", path, strerror(errno));
		if (waited >= wait)
			break;
		nanosleep(&step, NULL);
		waited += 20;
	}
	pid = lock_holder(fd);
	if (pid)
		snprintf(who, sizeof(who), " (pid %ld holds it)", pid);
	return err_set(EWOULDBLOCK, "%s: locked by another process%s for %d.%03d s: a merge or "
		       "recovery of the file, or any program with a flock on it; try again "
		       "later or wait longer (--wait SECONDS)", path, who, wait / 1000,
		       wait % 1000);
}

int journal_lock_and_recover(const char *path, int fd, bool can_write,
			     unsigned int flags)
{
	int ret = lock_bounded(path, fd);

	return ret ? ret : do_recover(path, fd, can_write, flags);
}

COWMAP_EXPORT int cowmap_recover(const char *path, unsigned int flags)
{
	const unsigned int known = COWMAP_RECOVER_ROLLBACK | COWMAP_RECOVER_DISCARD;
	struct stat st;
	char *real;
	int fd, ret;
	bool rw = true;

	if (!path)
		return err_set(EINVAL, "cowmap_recover: NULL path");
	if (flags & ~known)
		return err_set(EINVAL, "cowmap_recover: unknown flags 0x%x", flags & ~known);
	if ((flags & COWMAP_RECOVER_ROLLBACK) && (flags & COWMAP_RECOVER_DISCARD))
		return err_set(EINVAL, "rollback and discard are exclusive");
	real = real_target(path);
	if (!real)
		return -errno;
	fd = open_nofollow(real, O_RDWR);
	if (fd < 0 && fd != -ELOOP) {
		rw = false;
		fd = open_nofollow(real, O_RDONLY);
	}
	if (fd < 0) {
		free(real);
		return fd;
	}
	/* A directory has no journal of its own: not "nothing to recover". */
	if (fstat(fd, &st) < 0)
		ret = err_set(errno, "%s: %s", path, strerror(errno));
	else if (S_ISDIR(st.st_mode))
		ret = err_set(EISDIR, "%s: %s", path, strerror(EISDIR));
	else if (!S_ISREG(st.st_mode))
		ret = err_set(EINVAL, "%s: not a regular file", path);
	else
		ret = journal_lock_and_recover(real, fd, rw, flags);
	close(fd);	/* drops the lock */
	free(real);
	return ret < 0 ? err_ret(ret) : ret;
}
