// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Merging: each log reduced to its net changes (see merge.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"

/* ------------------------------------------------------------------------
 * Small helpers
 */

int extv_push(struct extv *x, uint64_t off, uint64_t len,
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

void extv_free(struct extv *x)
{
	free(x->v);
	memset(x, 0, sizeof(*x));
}
#ifdef __SSE2__
#include <emmintrin.h>

/* First index >= k where a and b differ, or len. */
uint64_t merge_first_diff(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len)
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
uint64_t merge_changed_end(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len,
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
		e = merge_first_diff(a, b, i + 16, len);
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

uint64_t merge_first_diff(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len)
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

uint64_t merge_changed_end(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len,
			   uint64_t gap, uint64_t *ndiff)
{
	uint64_t nd = 0;

	for (;;) {
		uint64_t e = first_same(a, b, k, len), g;

		nd += e - k;
		g = merge_first_diff(a, b, e, len);
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

/* Drop the first @n bytes of @e. */
static void ext_skip(struct ext *e, uint64_t n)
{
	e->off += n;
	e->len -= n;
	e->old += n;
	e->new += n;
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
		} else if (x.off != y.off) {
			/* The one that starts first, up to where the other starts. */
			struct ext *e = x.off < y.off ? &x : &y;
			uint64_t h = MAX(x.off, y.off) - e->off;

			ret = extv_push(c, e->off, h, e->old, e->new);
			ext_skip(e, h);
		} else {
			uint64_t ov = MIN(x.len, y.len);
			uint64_t k = merge_first_diff(y.old, x.new, 0, ov);

			if (k < ov)
				return err_set(COWMAP_ECHAIN, "%s: byte %llu: inconsistent log: the old "
					       "value 0x%02x of file offset %llu differs from the new "
					       "value 0x%02x an earlier record (log byte %llu) gave it",
					       l->name, (unsigned long long)log_byte(l, y.old + k),
					       y.old[k], (unsigned long long)(x.off + k), x.new[k],
					       (unsigned long long)log_byte(l, x.new + k));
			ret = extv_push(c, x.off, ov, x.old, y.new);
			ext_skip(&x, ov);
			ext_skip(&y, ov);
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
		uint64_t k = merge_first_diff(e->old, e->new, 0, e->len), nd = 0;

		while (k < e->len) {
			uint64_t end = merge_changed_end(e->old, e->new, k, e->len, TRIM_GAP, &nd);

			if (extv_push(out, e->off + k, end - k, e->old + k, e->new + k))
				return -ENOMEM;
			k = merge_first_diff(e->old, e->new, end, e->len);
		}
	}
	return 0;
}

int merge_build_net(struct cowmap_merge *m, struct mlog *l)
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
