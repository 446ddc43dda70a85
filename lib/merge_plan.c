// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Merging: planning, the sweep over all logs' net changes that decides
 * every byte (see merge.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "merge.h"

/* ------------------------------------------------------------------------
 * Planning
 */

/* First offset >= @pos that may hold data; holes read as zeros without
 * the kernel allocating and zeroing page cache for them. */
static uint64_t data_from(struct cowmap_merge *m, uint64_t pos)
{
	off_t d, h;

	if (pos >= m->hole_from && pos < m->hole_to)
		return m->hole_to;
	if (m->no_seek || (pos >= m->data_from && pos < m->data_to))
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
	/* Where that data ends: one lseek instead of one per window in it
	 * (reading a hole punched since only reads zeros). */
	h = (uint64_t)d < m->fsize ? lseek(m->fd, d, SEEK_HOLE) : -1;
	if (h > d) {
		m->data_from = (uint64_t)d;
		m->data_to = (uint64_t)h;
	}
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
	uint64_t k = merge_first_diff(newb, cur, 0, n);

	while (k < n) {
		uint64_t e = merge_changed_end(newb, cur, k, n, JOIN_GAP, &m->st.write_bytes);
		int ret = emit(m, pos + k, newb + k, cur + k, e - k);

		if (ret)
			return ret;
		k = merge_first_diff(newb, cur, e, n);
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

int merge_plan(struct cowmap_merge *m)
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
	m->data_from = m->data_to = 0;
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
