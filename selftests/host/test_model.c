// SPDX-License-Identifier: GPL-2.0
/*
 * Randomized merges checked against a naive byte-array model of the
 * semantics in lib/cowmap.h: overlapping records inside a log (chains,
 * coalesced unchanged bytes), overlapping logs, stale bytes, prefer modes,
 * dry run and -o.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "tutil.h"

#define MAXLOGS 6

struct model {
	size_t size;
	uint8_t *base;			/* the file when the logs were made */
	uint8_t *file;			/* the file at merge time */
	int nlogs;
	bool *touched[MAXLOGS];
	uint8_t *nold[MAXLOGS], *nnew[MAXLOGS];
};

/* Make a log: a session view of @base written by random records. */
static void gen_log(struct model *md, int l, const char *file, const char *log)
{
	uint8_t *view = malloc(md->size);
	int nrec = 1 + (int)rnd(12);
	struct chg *c = calloc((size_t)nrec, sizeof(*c));
	uint8_t **bufs = calloc(2 * (size_t)nrec, sizeof(*bufs));

	memcpy(view, md->base, md->size);
	md->touched[l] = calloc(md->size, 1);
	md->nold[l] = malloc(md->size);
	md->nnew[l] = malloc(md->size);
	for (int i = 0; i < nrec; i++) {
		uint32_t len = rnd(8) == 0 ? 1 + rnd((uint32_t)md->size / 2) : 1 + rnd(300);
		uint64_t off;
		uint8_t *o, *n;

		if (len > md->size)
			len = (uint32_t)md->size;
		off = rnd((uint32_t)(md->size - len + 1));
		/* cluster some records so that logs overlap */
		if (rnd(3) == 0)
			off = (rnd(4) * md->size / 4) % (md->size - len + 1);
		o = malloc(len);
		n = malloc(len);
		memcpy(o, view + off, len);
		for (uint32_t k = 0; k < len; k++) {
			uint32_t r = rnd(10);

			n[k] = r < 3 ? o[k] :		/* coalesced unchanged byte */
			       r < 5 ? (uint8_t)('A' + rnd(3)) :	/* likely equal across logs */
			       (uint8_t)rnd64();
		}
		for (uint32_t k = 0; k < len; k++) {
			uint64_t b = off + k;

			if (!md->touched[l][b]) {
				md->touched[l][b] = true;
				md->nold[l][b] = o[k];
			}
			md->nnew[l][b] = n[k];
			view[b] = n[k];
		}
		c[i] = (struct chg){ off, len, o, n };
		bufs[2 * i] = o;
		bufs[2 * i + 1] = n;
	}
	mklog(log, file, c, nrec);
	for (int i = 0; i < 2 * nrec; i++)
		free(bufs[i]);
	free(bufs);
	free(c);
	free(view);
}

/* The expected result: returns 0 or -COWMAP_ECONFLICT, fills @out and the
 * number of (byte, conflict) pairs. */
static int model_merge(const struct model *md, unsigned int flags, uint8_t *out,
		       uint64_t *conflict_bytes, uint64_t *write_bytes)
{
	bool first = flags & COWMAP_MERGE_PREFER_FIRST, last = flags & COWMAP_MERGE_PREFER_LAST;
	bool any = false;

	memcpy(out, md->file, md->size);
	*conflict_bytes = 0;
	*write_bytes = 0;
	for (size_t b = 0; b < md->size; b++) {
		int ch[MAXLOGS], nc = 0;
		uint8_t f = md->file[b], v;
		bool conflict = false;

		for (int l = 0; l < md->nlogs; l++)
			if (md->touched[l][b] && md->nold[l][b] != md->nnew[l][b])
				ch[nc++] = l;
		if (!nc)
			continue;
		for (int i = 0; i < nc; i++)
			if (f != md->nold[ch[i]][b] && f != md->nnew[ch[i]][b]) {
				conflict = true;
				++*conflict_bytes;
			}
		for (int i = 1; i < nc; i++)
			if (md->nnew[ch[i - 1]][b] != md->nnew[ch[i]][b]) {
				conflict = true;
				++*conflict_bytes;
			}
		if (conflict && !first && !last) {
			any = true;
			continue;
		}
		v = last ? md->nnew[ch[nc - 1]][b] : md->nnew[ch[0]][b];
		if (v != f) {
			out[b] = v;
			++*write_bytes;
		}
	}
	if (any) {
		memcpy(out, md->file, md->size);
		return -COWMAP_ECONFLICT;
	}
	return 0;
}

TEST(merge_random_model)
{
	char f[4096], o[4096], lognames[MAXLOGS][4096];
	int iters = 300, bad = 0, conflicts = 0, clean = 0;

	/* tmpfs: the fsyncs of 300 merges would only measure the disk */
	snprintf(f, sizeof(f), "%s/model.file", fastdir());
	snprintf(o, sizeof(o), "%s/model.out", fastdir());
	for (int l = 0; l < MAXLOGS; l++)
		snprintf(lognames[l], sizeof(lognames[l]), "%s/model%d.log", fastdir(), l);

	for (int it = 0; it < iters && bad < 5; it++) {
		struct model md = { 0 };
		static const unsigned int modes[] = { 0, COWMAP_MERGE_PREFER_FIRST,
						      COWMAP_MERGE_PREFER_LAST };
		unsigned int flags = modes[rnd(3)];
		bool use_out = rnd(4) == 0, dry = rnd(6) == 0;
		struct cowmap_merge_stats st;
		struct cowmap_merge *m;
		uint64_t cbytes, wbytes;
		uint8_t *want, *got;
		size_t got_len;
		int ret, want_ret;

		md.size = rnd(8) == 0 ? (2U << 20) + rnd(1 << 20) : 1 + rnd(4096);
		md.base = malloc(md.size);
		md.file = malloc(md.size);
		want = malloc(md.size);
		fill_random(md.base, md.size);
		for (size_t k = 0; k < md.size; k++)
			if (rnd(3) == 0)
				md.base[k] = (uint8_t)('A' + rnd(3));
		write_file(f, md.base, md.size);
		md.nlogs = 1 + (int)rnd(MAXLOGS);
		for (int l = 0; l < md.nlogs; l++)
			gen_log(&md, l, f, lognames[l]);
		/* the file changes under the logs, sometimes */
		memcpy(md.file, md.base, md.size);
		if (rnd(2)) {
			int n = (int)rnd(20);

			for (int k = 0; k < n; k++)
				md.file[rnd((uint32_t)md.size)] = (uint8_t)rnd64();
		}
		/* merging once already (file holds some new bytes): sometimes */
		if (rnd(5) == 0)
			for (size_t k = 0; k < md.size; k++)
				if (md.touched[0][k] && rnd(2))
					md.file[k] = md.nnew[0][k];
		write_file(f, md.file, md.size);

		want_ret = model_merge(&md, flags, want, &cbytes, &wbytes);
		ASSERT(!cowmap_merge_new(f, flags | (dry ? COWMAP_MERGE_DRY_RUN : 0), &m), "new");
		if (use_out)
			cowmap_merge_set_output(m, o);
		for (int l = 0; l < md.nlogs; l++)
			cowmap_merge_add_log(m, lognames[l]);
		ret = cowmap_merge_run(m);
		cowmap_merge_stats(m, &st);
		got = read_file(use_out && !dry ? o : f, &got_len);
		if (ret != want_ret) {
			DIAG("iteration %d: ret %d, model %d (%s)", it, ret, want_ret, cowmap_errmsg());
			bad++;
		} else if (st.conflict_bytes != cbytes) {
			DIAG("iteration %d: %llu conflict bytes, model %llu", it,
			     (unsigned long long)st.conflict_bytes, (unsigned long long)cbytes);
			bad++;
		} else if (!ret && st.write_bytes != wbytes) {
			DIAG("iteration %d: %llu bytes written, model %llu", it,
			     (unsigned long long)st.write_bytes, (unsigned long long)wbytes);
			bad++;
		} else if (!(use_out && (ret || dry))) {
			const uint8_t *exp = dry ? md.file : want;

			if (!got || got_len != md.size || memcmp(got, exp, md.size)) {
				DIAG("iteration %d: content differs from the model (flags 0x%x out %d dry %d)",
				     it, flags, use_out, dry);
				bad++;
			}
		}
		if (use_out) {
			/* the input is untouched */
			size_t n;
			uint8_t *in = read_file(f, &n);

			if (!in || n != md.size || memcmp(in, md.file, n)) {
				DIAG("iteration %d: -o modified the input", it);
				bad++;
			}
			free(in);
			unlink(o);
		}
		if (ret)
			conflicts++;
		else
			clean++;
		free(got);
		cowmap_merge_free(m);
		for (int l = 0; l < md.nlogs; l++) {
			free(md.touched[l]);
			free(md.nold[l]);
			free(md.nnew[l]);
		}
		free(md.base);
		free(md.file);
		free(want);
	}
	unlink(f);
	for (int l = 0; l < MAXLOGS; l++)
		unlink(lognames[l]);
	DIAG("%d merges: %d clean, %d with conflicts", iters, clean, conflicts);
	EXPECT(bad == 0, "%d merges differ from the model", bad);
	EXPECT(clean > 50 && conflicts > 50, "poor coverage");
}
