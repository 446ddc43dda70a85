// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Merging logs into their backing file (semantics: lib/cowmap.h).
 *
 * 1. Each log is reduced to its net changes, a sorted list of disjoint
 *    extents whose old/new bytes point into the log's mapping: records
 *    are cut into runs of ascending, disjoint records, and runs are
 *    composed pairwise (a balanced reduction, O(n log runs)), checking the
 *    log chain where they overlap.  Bytes whose net old and new values are
 *    equal are trimmed; gaps of fewer than TRIM_GAP such bytes stay inside
 *    an extent and are skipped byte by byte later.
 * 2. A k-way sweep over all logs' extents cuts the file into segments
 *    covered by a fixed set of logs.  Each segment is compared with the
 *    file (read through a small window); a segment covered by one log
 *    whose old bytes match takes a fast path, everything else is decided
 *    byte by byte.  The bytes to write go to the journal (in place), to
 *    the new copy (-o), or are only counted (dry run).
 * 3. In place, a journal without conflicts is committed and applied.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

#define TRIM_GAP	64		/* unchanged bytes that split an extent */
#define CHUNK		(1U << 20)	/* bytes decided at a time */
#define WINDOW		(64U << 10)	/* file read-ahead for small segments */
#define JOIN_GAP	64		/* unchanged bytes rewritten to join writes */

struct ext {
	uint64_t off;
	uint64_t len;
	const uint8_t *old;
	const uint8_t *new;
};

struct extv {
	struct ext *v;
	size_t n, cap;
};

struct mlog {
	struct cowmap_log *log;
	char *name;
	struct extv net;
	size_t cur;		/* sweep cursor */
};

struct act {
	uint32_t log;
	const struct ext *e;
};

enum sink_mode { SINK_COUNT, SINK_JOURNAL, SINK_FILE };

/*
 * Conflicts kept for cowmap_merge_conflict(): the first MAX_KEPT_CONFLICTS;
 * later ones are only counted (in the stats), so a log with millions of
 * stale bytes costs neither memory nor time per conflict.
 */
#define MAX_KEPT_CONFLICTS 1000

/* A conflict that covers the byte before (touched_prev) or this byte
 * (touched_cur): its key, and its index in conf (SIZE_MAX: only counted). */
struct touch {
	uint32_t rank;		/* 0: stale, 1: logs (the order decide() adds them) */
	int32_t a, b;
	size_t idx;
};

struct cowmap_merge {
	char *file_path;
	char *out_path;
	unsigned int flags;
	bool ran;

	struct mlog *logs;
	size_t n_logs, cap_logs;

	struct cowmap_conflict *conf;
	size_t n_conf, cap_conf;
	struct touch *touched_prev, *touched_cur;
	size_t n_prev, n_cur, cursor;
	uint64_t touched_at;

	char **warn;
	size_t n_warn, cap_warn;

	struct cowmap_merge_stats st;

	/* planning state */
	int fd;
	uint64_t fsize;
	uint8_t *win;
	size_t win_cap;
	uint64_t win_off, win_len, win_valid;
	uint64_t hole_from, hole_to;	/* a known hole of the file */
	bool no_seek;			/* SEEK_DATA unsupported */
	uint8_t *out, *wmask;
	size_t out_cap, wmask_cap;
	enum sink_mode sink;
	bool sink_stopped;
	struct journal *j;
	int out_fd;
	const char *out_name;
};

/* ------------------------------------------------------------------------
 * Small helpers
 */

static int extv_push(struct extv *x, uint64_t off, uint64_t len,
		     const uint8_t *o, const uint8_t *n)
{
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 16;
		struct ext *v = xrealloc_array(x->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->v = v;
		x->cap = cap;
	}
	x->v[x->n++] = (struct ext){ off, len, o, n };
	return 0;
}

static void extv_free(struct extv *x)
{
	free(x->v);
	memset(x, 0, sizeof(*x));
}

static int add_warning(struct cowmap_merge *m, const char *msg)
{
	char *w;

	if (m->n_warn == m->cap_warn) {
		size_t cap = m->cap_warn ? 2 * m->cap_warn : 8;
		char **v = xrealloc_array(m->warn, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->warn = v;
		m->cap_warn = cap;
	}
	w = xstrdup(msg);
	if (!w)
		return -ENOMEM;
	m->warn[m->n_warn++] = w;
	return 0;
}

#ifdef __SSE2__
#include <emmintrin.h>

/* First index >= k where a and b differ, or len. */
static uint64_t first_diff(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len)
{
	while (k + 16 <= len) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(a + k));
		__m128i y = _mm_loadu_si128((const __m128i *)(const void *)(b + k));
		unsigned int eq = (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y));

		if (eq != 0xffff)
			return k + (uint64_t)__builtin_ctz(~eq & 0xffff);
		k += 16;
	}
	while (k < len && a[k] == b[k])
		k++;
	return k;
}

/*
 * The end of a changed region starting at @k: the start of the first run
 * of equal bytes that is at least @gap long or reaches @len.  Adds the
 * bytes that differ in between to *@ndiff.  Random data has an equal byte
 * every 256 or so; this looks only for whole equal 16-byte blocks, which
 * any run of 31 or more equal bytes contains.
 */
static uint64_t changed_end(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len,
			    uint64_t gap, uint64_t *ndiff)
{
	uint64_t i = k, nd = 0, s;

	while (i + 16 <= len) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(a + i));
		__m128i y = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
		unsigned int eq = (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y));
		uint64_t e;

		if (eq != 0xffff) {
			unsigned int ne = ~eq & 0xffff;	/* popcount without -mpopcnt */

			ne = ne - ((ne >> 1) & 0x5555);
			ne = (ne & 0x3333) + ((ne >> 2) & 0x3333);
			ne = (ne + (ne >> 4)) & 0x0f0f;
			nd += (ne + (ne >> 8)) & 0x1f;
			i += 16;
			continue;
		}
		for (s = i; s > k && a[s - 1] == b[s - 1]; s--)
			;
		e = first_diff(a, b, i + 16, len);
		if (e - s >= gap || e == len) {
			*ndiff += nd;	/* [s, i) is equal: nd counts [k, s) */
			return s;
		}
		i = e;
	}
	for (; i < len; i++)
		nd += a[i] != b[i];
	for (s = len; s > k && a[s - 1] == b[s - 1]; s--)
		;
	*ndiff += nd;
	return s;
}
#else
#define HASZERO(v) (((v) - 0x0101010101010101ULL) & ~(v) & 0x8080808080808080ULL)

static uint64_t first_diff(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len)
{
	while (k + 8 <= len) {
		uint64_t x, y;

		memcpy(&x, a + k, 8);
		memcpy(&y, b + k, 8);
		if (x != y)
			break;
		k += 8;
	}
	while (k < len && a[k] == b[k])
		k++;
	return k;
}

static uint64_t first_same(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len)
{
	while (k + 8 <= len) {
		uint64_t x, y, d;

		memcpy(&x, a + k, 8);
		memcpy(&y, b + k, 8);
		d = x ^ y;
		if (HASZERO(d))
			break;
		k += 8;
	}
	while (k < len && a[k] != b[k])
		k++;
	return k;
}

static uint64_t changed_end(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len,
			    uint64_t gap, uint64_t *ndiff)
{
	uint64_t nd = 0;

	for (;;) {
		uint64_t e = first_same(a, b, k, len), g;

		nd += e - k;
		g = first_diff(a, b, e, len);
		if (g == len || g - e >= gap) {
			*ndiff += nd;
			return e;
		}
		k = g;
	}
}
#endif

/* ------------------------------------------------------------------------
 * Per-log net changes
 */

static uint64_t log_byte(const struct mlog *l, const uint8_t *p)
{
	return (uint64_t)(p - l->log->map);
}

/* Compose @a (earlier) with @b (later) into @c. */
static int compose(const struct mlog *l, const struct extv *a, const struct extv *b,
		   struct extv *c)
{
	size_t i = 0, j = 0;
	struct ext x = { 0 }, y = { 0 };
	bool hx = false, hy = false;
	int ret;

	for (;;) {
		if (!hx && i < a->n) {
			x = a->v[i++];
			hx = true;
		}
		if (!hy && j < b->n) {
			y = b->v[j++];
			hy = true;
		}
		if (!hx && !hy)
			return 0;
		if (!hy || (hx && x.off + x.len <= y.off)) {
			ret = extv_push(c, x.off, x.len, x.old, x.new);
			hx = false;
		} else if (!hx || y.off + y.len <= x.off) {
			ret = extv_push(c, y.off, y.len, y.old, y.new);
			hy = false;
		} else if (x.off < y.off) {
			uint64_t h = y.off - x.off;

			ret = extv_push(c, x.off, h, x.old, x.new);
			x.off += h;
			x.len -= h;
			x.old += h;
			x.new += h;
		} else if (y.off < x.off) {
			uint64_t h = x.off - y.off;

			ret = extv_push(c, y.off, h, y.old, y.new);
			y.off += h;
			y.len -= h;
			y.old += h;
			y.new += h;
		} else {
			uint64_t ov = MIN(x.len, y.len);
			uint64_t k = first_diff(y.old, x.new, 0, ov);

			if (k < ov)
				return err_set(COWMAP_ECHAIN, "%s: byte %llu: inconsistent log: the old "
					       "value 0x%02x of file offset %llu differs from the new "
					       "value 0x%02x an earlier record (log byte %llu) gave it",
					       l->name, (unsigned long long)log_byte(l, y.old + k),
					       y.old[k], (unsigned long long)(x.off + k), x.new[k],
					       (unsigned long long)log_byte(l, x.new + k));
			ret = extv_push(c, x.off, ov, x.old, y.new);
			x.off += ov;
			x.len -= ov;
			x.old += ov;
			x.new += ov;
			y.off += ov;
			y.len -= ov;
			y.old += ov;
			y.new += ov;
			hx = x.len != 0;
			hy = y.len != 0;
		}
		if (ret)
			return ret;
	}
}

/* Keep only changed bytes, joined across gaps shorter than TRIM_GAP. */
static int trim(const struct extv *in, struct extv *out)
{
	for (size_t i = 0; i < in->n; i++) {
		const struct ext *e = &in->v[i];
		uint64_t k = first_diff(e->old, e->new, 0, e->len), nd = 0;

		while (k < e->len) {
			uint64_t end = changed_end(e->old, e->new, k, e->len, TRIM_GAP, &nd);

			if (extv_push(out, e->off + k, end - k, e->old + k, e->new + k))
				return -ENOMEM;
			k = first_diff(e->old, e->new, end, e->len);
		}
	}
	return 0;
}

static int build_net(struct cowmap_merge *m, struct mlog *l)
{
	struct extv *runs = NULL, merged = { 0 };
	size_t n_runs = 0, cap_runs = 0;
	struct cowmap_log_rec r;
	uint64_t prev_end = 0;
	int ret;

	cowmap_log_rewind(l->log);
	while ((ret = cowmap_log_next(l->log, &r)) == 1) {
		if (!n_runs || r.offset < prev_end) {
			if (n_runs == cap_runs) {
				size_t cap = cap_runs ? 2 * cap_runs : 4;
				struct extv *v = xrealloc_array(runs, cap, sizeof(*v));

				if (!v) {
					ret = -ENOMEM;
					goto out;
				}
				runs = v;
				cap_runs = cap;
			}
			memset(&runs[n_runs++], 0, sizeof(*runs));
		}
		ret = extv_push(&runs[n_runs - 1], r.offset, r.length, r.old_data, r.new_data);
		if (ret)
			goto out;
		prev_end = r.offset + r.length;
		m->st.records++;
	}
	if (ret < 0)
		goto out;
	/* Balanced pairwise reduction keeps the order: runs[i] before runs[i+1]. */
	while (n_runs > 1) {
		size_t o = 0;

		for (size_t i = 0; i < n_runs; i += 2) {
			if (i + 1 == n_runs) {
				runs[o++] = runs[i];
				continue;
			}
			memset(&merged, 0, sizeof(merged));
			ret = compose(l, &runs[i], &runs[i + 1], &merged);
			extv_free(&runs[i]);
			extv_free(&runs[i + 1]);
			if (ret) {
				extv_free(&merged);
				for (size_t k = i + 2; k < n_runs; k++)
					extv_free(&runs[k]);
				for (size_t k = 0; k < o; k++)
					extv_free(&runs[k]);
				n_runs = 0;
				goto out;
			}
			runs[o++] = merged;
		}
		n_runs = o;
	}
	memset(&merged, 0, sizeof(merged));
	if (n_runs)
		ret = trim(&runs[0], &l->net);
out:
	for (size_t k = 0; k < n_runs; k++)
		extv_free(&runs[k]);
	free(runs);
	if (ret > 0)
		ret = 0;
	return ret;
}

/* ------------------------------------------------------------------------
 * Public setup
 */

COWMAP_EXPORT int cowmap_merge_new(const char *file_path, unsigned int flags,
				   struct cowmap_merge **mp)
{
	struct cowmap_merge *m;
	const unsigned int known = COWMAP_MERGE_DRY_RUN | COWMAP_MERGE_FORCE |
		COWMAP_MERGE_PREFER_FIRST | COWMAP_MERGE_PREFER_LAST |
		COWMAP_MERGE_TRUST_ALL_LOGS | COWMAP_MERGE_STRICT;

	if (!file_path || !mp)
		return err_set(EINVAL, "cowmap_merge_new: NULL argument");
	if (flags & ~known)
		return err_set(EINVAL, "cowmap_merge_new: unknown flags 0x%x", flags & ~known);
	if ((flags & COWMAP_MERGE_PREFER_FIRST) && (flags & COWMAP_MERGE_PREFER_LAST))
		return err_set(EINVAL, "prefer first and prefer last are exclusive");
	m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(ENOMEM, "out of memory");
	m->file_path = xstrdup(file_path);
	if (!m->file_path) {
		free(m);
		return -ENOMEM;
	}
	m->flags = flags;
	m->fd = -1;
	m->out_fd = -1;
	*mp = m;
	return 0;
}

COWMAP_EXPORT int cowmap_merge_set_output(struct cowmap_merge *m, const char *out_path)
{
	char *p;

	if (!m || !out_path || !*out_path)
		return err_set(EINVAL, "cowmap_merge_set_output: bad argument");
	p = xstrdup(out_path);
	if (!p)
		return -ENOMEM;
	free(m->out_path);
	m->out_path = p;
	return 0;
}

static const char *torn_what(uint32_t kind)
{
	return kind == COWMAP_LOG_TORN_CRC ? "whole last record failing its checksum" :
	       kind == COWMAP_LOG_TORN_ZERO ? "torn tail (zero bytes)" :
	       "torn tail (record cut short by the end of the file)";
}

static int add_opened(struct cowmap_merge *m, struct cowmap_log *log, const char *name)
{
	struct cowmap_log_info info;
	struct mlog *l;

	if (m->n_logs == m->cap_logs) {
		size_t cap = m->cap_logs ? 2 * m->cap_logs : 8;
		struct mlog *v = xrealloc_array(m->logs, cap, sizeof(*v));

		if (!v) {
			cowmap_log_close(log);
			return -ENOMEM;
		}
		m->logs = v;
		m->cap_logs = cap;
	}
	l = &m->logs[m->n_logs];
	memset(l, 0, sizeof(*l));
	l->log = log;
	l->name = xstrdup(name);
	if (!l->name) {
		cowmap_log_close(log);
		return -ENOMEM;
	}
	m->n_logs++;
	cowmap_log_info(log, &info);
	if (info.torn) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%.300s: %s at byte %llu left out; the %llu "
			 "record%s before it %s used", name, torn_what(info.torn_kind),
			 (unsigned long long)info.torn_offset,
			 (unsigned long long)info.records, info.records == 1 ? "" : "s",
			 info.records == 1 ? "is" : "are");
		m->st.torn_logs++;
		if (info.torn_kind == COWMAP_LOG_TORN_CRC)
			m->st.crc_tail_logs++;
		if (add_warning(m, msg))
			return -ENOMEM;
	}
	return 0;
}

/* With COWMAP_MERGE_STRICT, the first log with a torn tail fails the merge. */
static int check_strict(struct cowmap_merge *m)
{
	if (!(m->flags & COWMAP_MERGE_STRICT))
		return 0;
	for (size_t i = 0; i < m->n_logs; i++) {
		const struct cowmap_log_info *in = &m->logs[i].log->info;

		if (in->torn)
			return err_set(COWMAP_EBADLOG, "%s: byte %llu: %s (strict: a torn "
				       "tail is an error)", m->logs[i].name,
				       (unsigned long long)in->torn_offset,
				       torn_what(in->torn_kind));
	}
	return 0;
}

COWMAP_EXPORT int cowmap_merge_add_log(struct cowmap_merge *m, const char *log_path)
{
	struct cowmap_log *log;
	int ret;

	if (!m || !log_path)
		return err_set(EINVAL, "cowmap_merge_add_log: NULL argument");
	if (m->ran)
		return err_set(EINVAL, "merge already ran");
	ret = cowmap_log_open(log_path, 0, &log);
	if (ret)
		return ret;
	ret = add_opened(m, log, log_path);
	return ret ? err_ret(ret) : 0;
}

COWMAP_EXPORT int cowmap_merge_add_log_fd(struct cowmap_merge *m, int fd, const char *name)
{
	struct cowmap_log *log;
	int ret;

	if (!m || fd < 0)
		return err_set(EINVAL, "cowmap_merge_add_log_fd: bad argument");
	if (m->ran)
		return err_set(EINVAL, "merge already ran");
	if (!name)
		name = "(log)";
	ret = cowmap_log_open_fd(fd, name, 0, &log);
	if (ret)
		return ret;
	ret = add_opened(m, log, name);
	return ret ? err_ret(ret) : 0;
}

struct dirlog {
	struct cowmap_log *log;
	char *path;
	uint64_t time, sid;
};

static int dirlog_cmp(const void *pa, const void *pb)
{
	const struct dirlog *a = pa, *b = pb;

	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	if (a->sid != b->sid)
		return a->sid < b->sid ? -1 : 1;
	return strcmp(a->path, b->path);
}

COWMAP_EXPORT int cowmap_merge_add_dir(struct cowmap_merge *m, const char *dir)
{
	struct dirlog *found = NULL;
	size_t n = 0, cap = 0, added = 0;
	char *real = NULL;
	struct dirent *de;
	struct stat fst;
	DIR *d;
	int ret = 0, ffd;

	if (!m || !dir)
		return err_set(EINVAL, "cowmap_merge_add_dir: NULL argument");
	if (m->ran)
		return err_set(EINVAL, "merge already ran");
	ffd = open_nofollow(m->file_path, O_RDONLY | O_NONBLOCK);
	if (ffd < 0)
		return ffd;
	ret = fstat(ffd, &fst) < 0 ? err_set(errno, "%s: %s", m->file_path, strerror(errno)) : 0;
	close(ffd);
	if (ret)
		return ret;
	real = realpath(m->file_path, NULL);
	d = opendir(dir);
	if (!d) {
		ret = err_set(errno, "%s: %s", dir, strerror(errno));
		free(real);
		return ret;
	}
	while ((errno = 0, de = readdir(d))) {
		struct cowmap_log_info info;
		struct cowmap_log *log;
		char magic[8], *path;
		struct stat st;
		size_t len;
		int fd;

		if (de->d_name[0] == '.' && (!de->d_name[1] ||
					     (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		len = strlen(dir) + strlen(de->d_name) + 2;
		path = malloc(len);
		if (!path) {
			ret = err_set(ENOMEM, "out of memory");
			break;
		}
		snprintf(path, len, "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    pread(fd, magic, 8, 0) != 8 || memcmp(magic, COWMAP_LOG_MAGIC, 8)) {
			if (fd >= 0)
				close(fd);
			free(path);
			continue;
		}
		if (!(m->flags & COWMAP_MERGE_TRUST_ALL_LOGS) &&
		    !owner_trusted(st.st_uid, fst.st_uid)) {
			char msg[512];

			snprintf(msg, sizeof(msg), "%.250s: not merged: owned by uid %u, neither "
				 "you, the file's owner (uid %u) nor root; --trust-all-logs to "
				 "merge it", path, (unsigned int)st.st_uid,
				 (unsigned int)fst.st_uid);
			close(fd);
			free(path);
			ret = add_warning(m, msg);
			if (ret)
				break;
			continue;
		}
		ret = cowmap_log_open_fd(fd, path, 0, &log);
		close(fd);
		if (ret) {
			free(path);
			break;
		}
		cowmap_log_info(log, &info);
		if (info.dev != (uint64_t)fst.st_dev || info.ino != (uint64_t)fst.st_ino) {
			bool by_path = (m->flags & COWMAP_MERGE_FORCE) && real &&
				       !strcmp(info.path, real);

			if (!by_path) {
				char msg[512];

				snprintf(msg, sizeof(msg), "%.250s: skipped, recorded against "
					 "another file (%.200s)", path, info.path);
				cowmap_log_close(log);
				free(path);
				m->st.skipped_logs++;
				ret = add_warning(m, msg);
				if (ret)
					break;
				continue;
			}
		}
		if (n == cap) {
			size_t c = cap ? 2 * cap : 16;
			struct dirlog *v = xrealloc_array(found, c, sizeof(*v));

			if (!v) {
				cowmap_log_close(log);
				free(path);
				ret = -ENOMEM;
				break;
			}
			found = v;
			cap = c;
		}
		found[n++] = (struct dirlog){ log, path, info.bind_time_ns, info.session_id };
	}
	if (!ret && errno)
		ret = err_set(errno, "%s: %s", dir, strerror(errno));
	closedir(d);
	free(real);
	if (!ret)
		qsort(found, n, sizeof(*found), dirlog_cmp);
	for (size_t i = 0; i < n; i++) {
		if (!ret) {
			ret = add_opened(m, found[i].log, found[i].path);
			if (!ret)
				added++;
		} else {
			cowmap_log_close(found[i].log);
		}
		free(found[i].path);
	}
	free(found);
	return ret ? err_ret(ret) : (int)MIN(added, (size_t)INT32_MAX);
}

/* ------------------------------------------------------------------------
 * Planning
 */

/* First offset >= @pos that may hold data; holes read as zeros without
 * the kernel allocating and zeroing page cache for them. */
static uint64_t data_from(struct cowmap_merge *m, uint64_t pos)
{
	off_t d;

	if (pos >= m->hole_from && pos < m->hole_to)
		return m->hole_to;
	if (m->no_seek)
		return pos;
	d = lseek(m->fd, (off_t)pos, SEEK_DATA);
	if (d < 0) {
		if (errno != ENXIO) {
			m->no_seek = true;
			return pos;
		}
		d = (off_t)m->fsize;
	}
	m->hole_from = pos;
	m->hole_to = (uint64_t)d;
	return (uint64_t)d;
}

/* Make [pos, pos+n) of the file available; returns a pointer to it and
 * the number of bytes the file has there (the rest reads as 0). */
static const uint8_t *file_view(struct cowmap_merge *m, uint64_t pos, uint64_t n,
				uint64_t *valid)
{
	uint64_t want, have;
	int ret;

	if (!(pos >= m->win_off && pos + n <= m->win_off + m->win_len)) {
		/* the journal may point into the window */
		if (m->sink == SINK_JOURNAL && !m->sink_stopped && journal_flush(m->j))
			return NULL;
		/* small segments: read ahead up to WINDOW (segments cluster);
		 * never past the end of the file */
		uint64_t ra = n < 4096 ? WINDOW : n;

		have = pos < m->fsize ? MIN(ra, m->fsize - pos) : 0;
		want = MAX(n, have);
		if (buf_reserve(&m->win, &m->win_cap, want))
			return NULL;
		if (have) {
			uint64_t d = MIN(data_from(m, pos) - pos, have);

			memset(m->win, 0, d);
			ret = d < have ? pread_full(m->fd, m->win + d, have - d, pos + d) : 0;
			if (ret == -ENODATA) {
				/* The file shrank under us; a lock holder would not. */
				err_set(EAGAIN, "%s: file changed size during the merge",
					m->file_path);
				return NULL;
			}
			if (ret < 0) {
				err_set(-ret, "%s: read at %llu: %s", m->file_path,
					(unsigned long long)pos, strerror(-ret));
				return NULL;
			}
		}
		memset(m->win + have, 0, want - have);
		m->win_off = pos;
		m->win_len = want;
		m->win_valid = have;
	}
	*valid = m->win_off + m->win_valid > pos ?
		MIN(n, m->win_off + m->win_valid - pos) : 0;
	return m->win + (pos - m->win_off);
}

static int emit(struct cowmap_merge *m, uint64_t off, const uint8_t *newb,
		const uint8_t *oldb, uint64_t len)
{
	int ret;

	m->st.write_ranges++;
	if (m->sink_stopped)
		return 0;
	switch (m->sink) {
	case SINK_COUNT:
		return 0;
	case SINK_JOURNAL:
		return journal_add(m->j, off, newb, oldb, (uint32_t)len);
	case SINK_FILE:
		ret = pwrite_full(m->out_fd, newb, len, off);
		if (ret)
			return err_set(-ret, "%s: write at %llu: %s", m->out_name,
				       (unsigned long long)off, strerror(-ret));
		return 0;
	}
	return 0;
}

/*
 * Emit the runs of bytes where @newb differs from @cur (the file).  Runs
 * closer than JOIN_GAP are written as one: the bytes between them get
 * the value the file already has, and random data has equal bytes every
 * 256 bytes or so, which would otherwise cut writes into tiny pieces.
 */
static int emit_diff_runs(struct cowmap_merge *m, uint64_t pos, const uint8_t *newb,
			  const uint8_t *cur, uint64_t n)
{
	uint64_t k = first_diff(newb, cur, 0, n);

	while (k < n) {
		uint64_t e = changed_end(newb, cur, k, n, JOIN_GAP, &m->st.write_bytes);
		int ret = emit(m, pos + k, newb + k, cur + k, e - k);

		if (ret)
			return ret;
		k = first_diff(newb, cur, e, n);
	}
	return 0;
}

static int touch_cmp(const struct touch *x, const struct touch *y)
{
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->a != y->a)
		return x->a < y->a ? -1 : 1;
	return x->b < y->b ? -1 : x->b > y->b;
}

/*
 * Byte @x is in conflict: extend the conflict of the same kind and logs
 * that covers byte x-1, or start one.  decide() adds the conflicts of a
 * byte in one order (stale ones by log, then the log pairs), so those of
 * byte x-1 are walked once with a cursor: the work per byte is linear in
 * the number of logs covering it.
 */
static int add_conflict(struct cowmap_merge *m, uint32_t kind, uint32_t a, int32_t b,
			uint64_t x, uint8_t f, uint8_t va, uint8_t vb)
{
	bool resolved = m->flags & (COWMAP_MERGE_PREFER_FIRST | COWMAP_MERGE_PREFER_LAST);
	struct touch key = { kind == COWMAP_CONFLICT_STALE ? 0 : 1, (int32_t)a, b, SIZE_MAX };
	struct cowmap_conflict *c;

	if (x != m->touched_at) {
		struct touch *t = m->touched_prev;

		m->touched_prev = m->touched_cur;
		m->touched_cur = t;
		m->n_prev = m->touched_at + 1 == x ? m->n_cur : 0;
		m->n_cur = 0;
		m->cursor = 0;
		m->touched_at = x;
	}
	while (m->cursor < m->n_prev && touch_cmp(&m->touched_prev[m->cursor], &key) < 0)
		m->cursor++;
	if (m->cursor < m->n_prev && !touch_cmp(&m->touched_prev[m->cursor], &key)) {
		key.idx = m->touched_prev[m->cursor++].idx;
		if (key.idx != SIZE_MAX) {
			c = &m->conf[key.idx];
			if (c->length < COWMAP_CONFLICT_PREVIEW) {
				c->file[c->length] = f;
				c->a[c->length] = va;
				c->b[c->length] = vb;
				c->preview_len++;
			}
			c->length++;
		}
		m->st.conflict_bytes++;
		m->touched_cur[m->n_cur++] = key;
		return 0;
	}
	m->st.conflicts++;
	if (!resolved)
		m->st.unresolved++;
	m->st.conflict_bytes++;
	if (!resolved)
		m->sink_stopped = true;
	if (m->n_conf >= MAX_KEPT_CONFLICTS) {
		m->touched_cur[m->n_cur++] = key;	/* counted, not kept */
		return 0;
	}
	if (m->n_conf == m->cap_conf) {
		size_t cap = m->cap_conf ? 2 * m->cap_conf : 16;
		struct cowmap_conflict *v = xrealloc_array(m->conf, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->conf = v;
		m->cap_conf = cap;
	}
	c = &m->conf[m->n_conf];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->flags = resolved ? COWMAP_CONFLICT_RESOLVED : 0;
	c->log_a = (int32_t)a;
	c->log_b = b;
	c->offset = x;
	c->length = 1;
	c->preview_len = 1;
	c->file[0] = f;
	c->a[0] = va;
	c->b[0] = vb;
	key.idx = m->n_conf++;
	m->touched_cur[m->n_cur++] = key;
	return 0;
}

struct changer {
	uint32_t log;
	uint8_t o, n;
};

/* Decide [pos, pos+n) covered by @na extents (sorted by log). */
static int decide(struct cowmap_merge *m, uint64_t pos, uint64_t n,
		  const struct act *act, size_t na, struct changer *ch)
{
	bool first = m->flags & COWMAP_MERGE_PREFER_FIRST;
	bool last = m->flags & COWMAP_MERGE_PREFER_LAST;
	const uint8_t *f;
	uint64_t valid, k;
	int ret;

	f = file_view(m, pos, n, &valid);
	if (!f)
		return -errno;
	if (na == 1 && valid == n) {
		const struct ext *e = act[0].e;
		const uint8_t *o = e->old + (pos - e->off);
		const uint8_t *nw = e->new + (pos - e->off);

		if (!memcmp(f, o, n)) {	/* every change applies */
			uint64_t before = m->st.write_bytes;

			ret = emit_diff_runs(m, pos, nw, f, n);
			m->st.changed_bytes += m->st.write_bytes - before;
			return ret;
		}
	}

	/* the journal may point into the output buffer */
	if (m->sink == SINK_JOURNAL && !m->sink_stopped) {
		ret = journal_flush(m->j);
		if (ret)
			return ret;
	}
	if (buf_reserve(&m->out, &m->out_cap, n) || buf_reserve(&m->wmask, &m->wmask_cap, n))
		return -ENOMEM;
	memcpy(m->out, f, n);	/* bytes not written keep the file's value */
	for (k = 0; k < n; k++) {
		bool present = k < valid, conflict = false;
		uint8_t fb = f[k], v;
		size_t nc = 0;

		m->wmask[k] = 0;
		for (size_t i = 0; i < na; i++) {
			const struct ext *e = act[i].e;
			uint64_t d = pos + k - e->off;

			if (e->old[d] != e->new[d])
				ch[nc++] = (struct changer){ act[i].log, e->old[d], e->new[d] };
		}
		if (!nc)
			continue;
		m->st.changed_bytes++;
		for (size_t i = 0; i < nc; i++) {
			if (present && (fb == ch[i].o || fb == ch[i].n))
				continue;
			ret = add_conflict(m, COWMAP_CONFLICT_STALE, ch[i].log, -1, pos + k,
					   fb, ch[i].o, ch[i].n);
			if (ret)
				return ret;
			conflict = true;
		}
		for (size_t i = 1; i < nc; i++) {
			if (ch[i - 1].n == ch[i].n)
				continue;
			ret = add_conflict(m, COWMAP_CONFLICT_LOGS, ch[i - 1].log,
					   (int32_t)ch[i].log, pos + k, fb, ch[i - 1].n, ch[i].n);
			if (ret)
				return ret;
			conflict = true;
		}
		if (conflict && !first && !last)
			continue;
		v = last ? ch[nc - 1].n : ch[0].n;
		if (present && fb == v) {
			m->st.applied_bytes++;
			continue;
		}
		m->out[k] = v;
		m->wmask[k] = 1;
		m->st.write_bytes++;
	}
	/* Emit runs of bytes to write, joined across gaps < JOIN_GAP. */
	for (k = 0; k < n;) {
		uint64_t e, g;

		if (!m->wmask[k]) {
			k++;
			continue;
		}
		for (e = k; e < n && m->wmask[e]; e++)
			;
		for (;;) {
			for (g = e; g < n && !m->wmask[g] && g - e < JOIN_GAP; g++)
				;
			if (g == n || !m->wmask[g])
				break;
			for (e = g; e < n && m->wmask[e]; e++)
				;
		}
		ret = emit(m, pos + k, m->out + k, f + k, e - k);
		if (ret)
			return ret;
		k = e;
	}
	return 0;
}

/* Min-heap of logs keyed by the offset of their next extent. */
struct heap {
	uint32_t *v;
	size_t n;
	struct mlog *logs;
};

static uint64_t hkey(const struct heap *h, size_t i)
{
	const struct mlog *l = &h->logs[h->v[i]];

	return l->net.v[l->cur].off;
}

static bool hless(const struct heap *h, size_t i, size_t j)
{
	uint64_t a = hkey(h, i), b = hkey(h, j);

	return a < b || (a == b && h->v[i] < h->v[j]);
}

static void heap_push(struct heap *h, uint32_t log)
{
	size_t i = h->n++;

	h->v[i] = log;
	while (i) {
		size_t p = (i - 1) / 2;
		uint32_t t;

		if (!hless(h, i, p))
			break;
		t = h->v[i];
		h->v[i] = h->v[p];
		h->v[p] = t;
		i = p;
	}
}

static uint32_t heap_pop(struct heap *h)
{
	uint32_t top = h->v[0];
	size_t i = 0;

	h->v[0] = h->v[--h->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, s = i;
		uint32_t t;

		if (l < h->n && hless(h, l, s))
			s = l;
		if (r < h->n && hless(h, r, s))
			s = r;
		if (s == i)
			break;
		t = h->v[i];
		h->v[i] = h->v[s];
		h->v[s] = t;
		i = s;
	}
	return top;
}

static int plan(struct cowmap_merge *m)
{
	size_t nl = m->n_logs, na = 0;
	struct heap h = { .logs = m->logs };
	struct changer *ch = NULL;
	struct act *act = NULL;
	uint64_t pos = 0;
	int ret = 0;

	h.v = calloc(nl ? nl : 1, sizeof(*h.v));
	act = calloc(nl ? nl : 1, sizeof(*act));
	ch = calloc(nl ? nl : 1, sizeof(*ch));
	m->touched_prev = calloc(2 * nl + 2, sizeof(*m->touched_prev));
	m->touched_cur = calloc(2 * nl + 2, sizeof(*m->touched_cur));
	if (!h.v || !act || !ch || !m->touched_prev || !m->touched_cur) {
		ret = err_set(ENOMEM, "out of memory");
		goto out;
	}
	m->touched_at = UINT64_MAX;
	m->win_len = 0;
	m->hole_from = m->hole_to = 0;
	for (uint32_t i = 0; i < nl; i++) {
		m->logs[i].cur = 0;
		if (m->logs[i].net.n)
			heap_push(&h, i);
	}
	while (h.n || na) {
		uint64_t end = UINT64_MAX;
		size_t k;

		if (!na)
			pos = hkey(&h, 0);
		while (h.n && hkey(&h, 0) == pos) {
			uint32_t li = heap_pop(&h);
			struct mlog *l = &m->logs[li];

			/* insert sorted by log index */
			for (k = na; k && act[k - 1].log > li; k--)
				act[k] = act[k - 1];
			act[k] = (struct act){ li, &l->net.v[l->cur] };
			na++;
		}
		if (h.n)
			end = hkey(&h, 0);
		for (k = 0; k < na; k++)
			end = MIN(end, act[k].e->off + act[k].e->len);
		while (pos < end) {
			uint64_t n = MIN(end - pos, CHUNK);

			ret = decide(m, pos, n, act, na, ch);
			if (ret)
				goto out;
			pos += n;
		}
		for (k = 0; k < na;) {
			if (act[k].e->off + act[k].e->len == end) {
				struct mlog *l = &m->logs[act[k].log];

				if (++l->cur < l->net.n)
					heap_push(&h, act[k].log);
				memmove(&act[k], &act[k + 1], (na - k - 1) * sizeof(*act));
				na--;
			} else {
				k++;
			}
		}
	}
out:
	free(h.v);
	free(act);
	free(ch);
	return ret;
}

/* ------------------------------------------------------------------------
 * Running
 */

/* Copy @src (size @size) into @dst keeping holes. */
static int copy_sparse(int src, int dst, uint64_t size, const char *sname,
		       const char *dname)
{
	uint64_t pos = 0;

	if (ftruncate(dst, (off_t)size) < 0)
		return err_set(errno, "%s: truncate: %s", dname, strerror(errno));
	while (pos < size) {
		off_t data = lseek(src, (off_t)pos, SEEK_DATA), hole;

		if (data < 0) {
			if (errno == ENXIO)
				break;
			data = (off_t)pos;	/* no SEEK_DATA: copy everything */
			hole = (off_t)size;
		} else {
			hole = lseek(src, data, SEEK_HOLE);
			if (hole < 0)
				hole = (off_t)size;
		}
		if ((uint64_t)hole > size)
			hole = (off_t)size;
		while (data < hole) {
			loff_t in = data, outp = data;
			ssize_t n = copy_file_range(src, &in, dst, &outp, (size_t)(hole - data), 0);

			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
				      errno == EOPNOTSUPP)) {
				static __thread uint8_t buf[1 << 16];
				size_t want = (size_t)MIN((uint64_t)(hole - data), sizeof(buf));
				int ret = pread_full(src, buf, want, (uint64_t)data);

				if (!ret)
					ret = pwrite_full(dst, buf, want, (uint64_t)data);
				if (ret)
					return err_set(-ret, "copy %s to %s: %s", sname, dname,
						       strerror(-ret));
				n = (ssize_t)want;
			} else if (n < 0) {
				return err_set(errno, "copy %s to %s: %s", sname, dname,
					       strerror(errno));
			} else if (n == 0) {
				return err_set(EAGAIN, "%s: file changed size during the copy", sname);
			}
			data += n;
		}
		pos = (uint64_t)hole;
	}
	return 0;
}

static int check_identity(struct cowmap_merge *m, const struct stat *st)
{
	if (m->flags & COWMAP_MERGE_FORCE)
		return 0;
	for (size_t i = 0; i < m->n_logs; i++) {
		struct cowmap_log_info *in = &m->logs[i].log->info;

		if (in->dev != (uint64_t)st->st_dev || in->ino != (uint64_t)st->st_ino)
			return err_set(COWMAP_EWRONGFILE, "%s: recorded against %s (dev %u:%u "
				       "inode %llu), not %s (dev %u:%u inode %llu); "
				       "--force (COWMAP_MERGE_FORCE) merges it anyway",
				       m->logs[i].name, in->path[0] ? in->path : "another file",
				       major((dev_t)in->dev), minor((dev_t)in->dev),
				       (unsigned long long)in->ino, m->file_path,
				       major(st->st_dev), minor(st->st_dev),
				       (unsigned long long)st->st_ino);
	}
	return 0;
}

/* -o naming the input itself (a path or a link to it, a hard link) would
 * replace the file with a new inode under its live sessions. */
static int check_output(struct cowmap_merge *m, const char *real, const struct stat *st)
{
	char *out;
	struct stat ost;
	bool same;

	if (!m->out_path)
		return 0;
	out = real_target(m->out_path);
	same = (out && !strcmp(out, real)) ||
	       (!stat(m->out_path, &ost) && ost.st_dev == st->st_dev && ost.st_ino == st->st_ino);
	free(out);
	if (same)
		return err_set(EINVAL, "%s: the output %s is the input file; merge in place "
			       "(without an output) or name another file", m->file_path,
			       m->out_path);
	return 0;
}

/* Root merging logs it did not write: refuse those of other users than the
 * file's owner, unless told to trust them (merge-all skips them earlier). */
static int check_log_owners(struct cowmap_merge *m, const struct stat *st)
{
	struct stat lst;

	if (geteuid() != 0 || (m->flags & COWMAP_MERGE_TRUST_ALL_LOGS))
		return 0;
	for (size_t i = 0; i < m->n_logs; i++) {
		if (fstat(m->logs[i].log->fd, &lst) < 0)
			return err_set(errno, "%s: %s", m->logs[i].name, strerror(errno));
		if (!owner_trusted(lst.st_uid, st->st_uid))
			return err_set(EPERM, "%s: owned by uid %u, neither root nor the owner of "
				       "%s (uid %u): root does not merge another user's log into "
				       "a file without --trust-all-logs; nothing written",
				       m->logs[i].name, (unsigned int)lst.st_uid, m->file_path,
				       (unsigned int)st->st_uid);
	}
	return 0;
}

static int run_output(struct cowmap_merge *m, const struct stat *st)
{
	char *dir = path_dirname(m->out_path), *tmp = NULL;
	int ret;

	if (!dir)
		return -ENOMEM;
	ret = open_tmpfile_in(dir, path_basename(m->out_path), &tmp);
	if (ret < 0)
		goto out;
	m->out_fd = ret;
	m->out_name = tmp;
	ret = copy_sparse(m->fd, m->out_fd, m->fsize, m->file_path, tmp);
	/* As cp without -p: no setuid, setgid or sticky bit, the umask applies. */
	if (!ret && fchmod(m->out_fd, st->st_mode & 0777 & ~current_umask()) < 0)
		ret = err_set(errno, "%s: chmod: %s", tmp, strerror(errno));
	if (ret)
		goto out;
	m->sink = SINK_FILE;
	ret = plan(m);
	if (ret)
		goto out;
	if (m->st.unresolved) {
		ret = err_set(COWMAP_ECONFLICT, "%s: %llu conflicting ranges, nothing written",
			      m->file_path, (unsigned long long)m->st.unresolved);
		goto out;
	}
	if (fsync(m->out_fd) < 0) {
		ret = err_set(errno, "%s: fsync: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, m->out_path) < 0) {
		ret = err_set(errno, "rename %s to %s: %s", tmp, m->out_path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	ret = fsync_dir_of(m->out_path);
out:
	if (m->out_fd >= 0)
		close(m->out_fd);
	m->out_fd = -1;
	m->out_name = NULL;
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(dir);
	return ret;
}

static int run_in_place(struct cowmap_merge *m, const char *real, const struct stat *st)
{
	struct journal_target t = {
		.fd = m->fd, .path = m->file_path,
		.dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino,
		.size = m->fsize,
	};
	char *jpath = journal_path(real);
	int ret;

	if (!jpath)
		return -ENOMEM;
	ret = journal_begin(&m->j, jpath, &t);
	free(jpath);
	if (ret)
		return ret;
	m->sink = SINK_JOURNAL;
	ret = plan(m);
	if (!ret && m->st.unresolved)
		ret = err_set(COWMAP_ECONFLICT, "%s: %llu conflicting ranges, nothing written",
			      m->file_path, (unsigned long long)m->st.unresolved);
	if (!ret && !m->st.write_bytes) {
		journal_abort(m->j);	/* nothing to do */
		m->j = NULL;
		return 0;
	}
	if (!ret)
		ret = journal_check_size(m->j);
	if (!ret)
		ret = journal_commit(m->j);
	if (ret) {
		journal_abort(m->j);
		m->j = NULL;
		return ret;
	}
	/* From here on the merge is durable: a failure leaves a journal that
	 * the next cowmap operation on the file completes. */
	ret = journal_apply(m->j);
	if (ret) {
		err_prefix(-ret, "%s: merge interrupted; the next merge or recovery of "
			   "the file completes it", m->file_path);
		journal_release(m->j);	/* the journal stays for recovery */
		m->j = NULL;
		return ret;
	}
	ret = journal_finish(m->j);
	m->j = NULL;
	return ret;
}

COWMAP_EXPORT int cowmap_merge_run(struct cowmap_merge *m)
{
	bool in_place, can_write;
	char *real = NULL;
	struct stat st;
	int ret, rec;

	if (!m)
		return err_set(EINVAL, "cowmap_merge_run: NULL argument");
	if (m->ran)
		return err_set(EINVAL, "merge already ran");
	m->ran = true;
	m->st.logs = m->n_logs;
	ret = check_strict(m);
	if (ret)
		return ret;

	for (size_t i = 0; i < m->n_logs; i++) {
		ret = build_net(m, &m->logs[i]);
		if (ret)
			return err_ret(ret);
	}

	real = real_target(m->file_path);
	if (!real)
		return -errno;
	in_place = !(m->flags & COWMAP_MERGE_DRY_RUN) && !m->out_path;
	m->fd = open_nofollow(real, in_place ? O_RDWR : O_RDONLY);
	if (m->fd < 0) {
		ret = m->fd;
		goto out;
	}
	can_write = in_place;
	if (fstat(m->fd, &st) < 0) {
		ret = err_set(errno, "%s: %s", m->file_path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = err_set(EINVAL, "%s: not a regular file", m->file_path);
		goto out;
	}
	ret = check_output(m, real, &st);
	if (!ret)
		ret = check_log_owners(m, &st);
	if (ret)
		goto out;
	rec = journal_lock_and_recover(real, m->fd, can_write,
				       in_place ? 0 : JOURNAL_CHECK_ONLY);
	if (rec < 0) {
		ret = rec;
		goto out;
	}
	m->st.recovered = (uint32_t)rec;
	if (fstat(m->fd, &st) < 0) {
		ret = err_set(errno, "%s: %s", m->file_path, strerror(errno));
		goto out;
	}
	m->fsize = (uint64_t)st.st_size;
	ret = check_identity(m, &st);
	if (ret)
		goto out;

	if (m->flags & COWMAP_MERGE_DRY_RUN) {
		m->sink = SINK_COUNT;
		ret = plan(m);
		if (!ret && m->st.unresolved)
			ret = err_set(COWMAP_ECONFLICT, "%s: %llu conflicting ranges",
				      m->file_path, (unsigned long long)m->st.unresolved);
	} else if (m->out_path) {
		ret = run_output(m, &st);
	} else {
		ret = run_in_place(m, real, &st);
	}
out:
	if (m->fd >= 0)
		close(m->fd);	/* drops the lock */
	m->fd = -1;
	free(real);
	return ret ? err_ret(ret) : 0;
}

COWMAP_EXPORT int cowmap_merge_stats(const struct cowmap_merge *m,
				     struct cowmap_merge_stats *st)
{
	if (!m || !st)
		return err_set(EINVAL, "cowmap_merge_stats: NULL argument");
	*st = m->st;
	if (!m->ran)
		st->logs = m->n_logs;
	return 0;
}

COWMAP_EXPORT int cowmap_merge_conflict(const struct cowmap_merge *m, size_t i,
					struct cowmap_conflict *c)
{
	if (!m || !c)
		return err_set(EINVAL, "cowmap_merge_conflict: NULL argument");
	if (i >= m->n_conf)
		return err_set(ENOENT, "no conflict %zu (there are %zu)", i, m->n_conf);
	*c = m->conf[i];
	return 0;
}

COWMAP_EXPORT const char *cowmap_merge_warning(const struct cowmap_merge *m, size_t i)
{
	if (!m || i >= m->n_warn)
		return NULL;
	return m->warn[i];
}

COWMAP_EXPORT const char *cowmap_merge_log_name(const struct cowmap_merge *m, size_t i)
{
	if (!m || i >= m->n_logs)
		return NULL;
	return m->logs[i].name;
}

COWMAP_EXPORT void cowmap_merge_free(struct cowmap_merge *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_logs; i++) {
		cowmap_log_close(m->logs[i].log);
		free(m->logs[i].name);
		extv_free(&m->logs[i].net);
	}
	for (size_t i = 0; i < m->n_warn; i++)
		free(m->warn[i]);
	if (m->j)
		journal_abort(m->j);
	if (m->fd >= 0)
		close(m->fd);
	free(m->warn);
	free(m->logs);
	free(m->conf);
	free(m->touched_prev);
	free(m->touched_cur);
	free(m->win);
	free(m->out);
	free(m->wmask);
	free(m->file_path);
	free(m->out_path);
	free(m);
}
