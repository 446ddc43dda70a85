// SPDX-License-Identifier: GPL-2.0
/*
 * Merge: opt.merge_logs logs holding opt.merge_change_mb MiB of changes,
 * all together, into an opt.merge_file_mb MiB file.
 *
 * Changes are 4096-byte ranges at offsets 2048 past a page boundary (each
 * straddles two pages), at distinct random places, dealt round-robin to
 * the logs and ascending within each log, as drains write them; every
 * byte changes.  File and changes are text without NUL or newline, so the
 * prototype's text logs can carry them too.  Measured, each repetition on
 * the same original file contents (restored untimed in between):
 * - merge-all: libcowmap cowmap_merge_add_dir() + cowmap_merge_run(), in
 *   place, failure-atomic (journal, fsync, apply, fsync);
 * - pwrite of the same changed bytes in offset order, then fsync;
 * - the prototype's merge_all (seeds/000): copy the file in 1024-byte
 *   read/write chunks, then apply each text log's "Offset: %ld, Length:
 *   %zu, Data: %s" lines with lseek + write, plus an fsync of the copy.
 *   The prototype parsed lines from 1023-byte chunks and so could not hold
 *   a line this long; this reimplementation reads whole lines.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "bench.h"
#include "cowmap.h"

#define CHG 4096UL

static const char alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int alpha_idx(char c)
{
	const char *p = strchr(alpha, c);

	return p ? (int)(p - alpha) : 0;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4096];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static void put_bytes(int fd, const size_t *off, size_t n, const char *data)
{
	for (size_t i = 0; i < n; i++)
		if (pwrite(fd, data + i * CHG, CHG, off[i]) != (ssize_t)CHG)
			die("pwrite");
}

/* The prototype's merge_all, one copy then every text log in order. */
static void text_merge(const char *src, const char *dst, const char *tdir,
		       int logs, uint64_t *t_copy, uint64_t *t_apply,
		       uint64_t *t_sync)
{
	char chunk[1024], *line = NULL, *data = NULL, p[4096];
	size_t cap = 0, dcap = 0;
	int from, to;
	ssize_t n;
	uint64_t t0 = now_ns();

	from = open(src, O_RDONLY);
	to = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (from < 0 || to < 0)
		die("open for text merge");
	while ((n = read(from, chunk, sizeof(chunk))) > 0)
		if (write(to, chunk, n) != n)
			die("write");
	close(from);
	*t_copy = now_ns() - t0;

	t0 = now_ns();
	for (int i = 0; i < logs; i++) {
		FILE *f;
		ssize_t len;

		snprintf(p, sizeof(p), "%s/log-%03d.txt", tdir, i);
		f = fopen(p, "r");
		if (!f)
			die("open %s", p);
		while ((len = getline(&line, &cap, f)) > 0) {
			long off;
			size_t l;

			if ((size_t)len + 1 > dcap) {
				dcap = len + 1;
				data = realloc(data, dcap);
			}
			if (sscanf(line, "Offset: %ld, Length: %zu, Data: %[^\n]",
				   &off, &l, data) != 3)
				continue;
			lseek(to, off, SEEK_SET);
			if (write(to, data, strlen(data)) < 0)
				die("write");
		}
		fclose(f);
	}
	*t_apply = now_ns() - t0;
	t0 = now_ns();
	if (fsync(to))
		die("fsync");
	*t_sync = now_ns() - t0;
	close(to);
	free(line);
	free(data);
}

void bench_merge(void)
{
	size_t flen = opt.merge_file_mb * MIB, nchg = opt.merge_change_mb * MIB / CHG;
	size_t nslots = flen / CHG - 1, *slots, *off;
	int L = opt.merge_logs;
	char *file = path_in("bench-merge.dat"), *ldir = path_in("bench-merge-logs");
	char *tdir = path_in("bench-merge-text"), *copy = path_in("bench-merge.out");
	char *oldb, *newb, p[4096];
	struct series s_merge = { 0 }, s_pw = { 0 }, s_txt = { 0 }, s_copy = { 0 },
		      s_apply = { 0 };
	uint64_t seed = 99, t0;
	struct cowmap_merge_stats st;
	int fd, bad = 0;
	char note_[200];

	if (nchg > nslots || nchg < (size_t)L)
		die("merge: %zu MiB of changes do not fit a %zu MiB file",
		    opt.merge_change_mb, opt.merge_file_mb);
	rm_dir(ldir);
	rm_dir(tdir);
	mkdir(ldir, 0755);
	mkdir(tdir, 0755);

	fd = make_file(file, flen, 1);
	slots = malloc(nslots * sizeof(*slots));
	off = malloc(nchg * sizeof(*off));
	oldb = malloc(nchg * CHG);
	newb = malloc(nchg * CHG);
	if (!slots || !off || !oldb || !newb)
		die("malloc");
	for (size_t i = 0; i < nslots; i++)
		slots[i] = i;
	shuffle(slots, nslots, &seed);

	/* Log i gets changes i, i + L, ... of the shuffled slots, ascending. */
	for (int l = 0; l < L; l++) {
		size_t first = 0, cnt = 0;
		struct cowmap_log_writer *w;
		FILE *tf;
		int err;

		for (size_t j = l; j < nchg; j += L)
			off[first + cnt++] = slots[j];
		(void)first;
		qsort(off, cnt, sizeof(*off), cmp_size);
		snprintf(p, sizeof(p), "%s/log-%03d.cml", ldir, l);
		err = cowmap_log_create(p, file, COWMAP_LOG_CREATE_EXCL, &w);
		if (err)
			die("cowmap_log_create %s: %s", p, cowmap_errmsg());
		snprintf(p, sizeof(p), "%s/log-%03d.txt", tdir, l);
		tf = fopen(p, "w");
		if (!tf)
			die("create %s", p);
		for (size_t k = 0; k < cnt; k++) {
			char o[CHG], nw[CHG + 1];
			size_t at = off[k] * CHG + CHG / 2;

			if (pread(fd, o, CHG, at) != (ssize_t)CHG)
				die("pread");
			for (size_t b = 0; b < CHG; b++)
				nw[b] = alpha[(alpha_idx(o[b]) + 1 + rnd(&seed) % 63) % 64];
			nw[CHG] = 0;
			err = cowmap_log_append(w, at, o, nw, CHG);
			if (err)
				die("cowmap_log_append: %s", cowmap_errmsg());
			fprintf(tf, "Offset: %zu, Length: %lu, Data: %s\n", at, CHG, nw);
		}
		if (cowmap_log_writer_close(w))
			die("cowmap_log_writer_close: %s", cowmap_errmsg());
		if (fclose(tf))
			die("write %s", p);
	}
	/* All changes in offset order, with old and new bytes, for pwrite. */
	memcpy(off, slots, nchg * sizeof(*off));
	qsort(off, nchg, sizeof(*off), cmp_size);
	for (size_t i = 0; i < nchg; i++) {
		off[i] = off[i] * CHG + CHG / 2;
		if (pread(fd, oldb + i * CHG, CHG, off[i]) != (ssize_t)CHG)
			die("pread");
	}
	close(fd);
	/* The new bytes come from the text logs (same as the binary ones). */
	for (int l = 0; l < L; l++) {
		char *line = NULL;
		size_t cap = 0;
		FILE *tf;

		snprintf(p, sizeof(p), "%s/log-%03d.txt", tdir, l);
		tf = fopen(p, "r");
		while (getline(&line, &cap, tf) > 0) {
			size_t at = strtoul(line + 8, NULL, 10), *hit;
			char *d = strstr(line, "Data: ") + 6;

			hit = bsearch(&at, off, nchg, sizeof(*off), cmp_size);
			if (!hit)
				die("merge setup: change not found");
			memcpy(newb + (hit - off) * CHG, d, CHG);
		}
		free(line);
		fclose(tf);
	}
	sync();

	for (int r = 0; r < opt.merge_reps; r++) {
		struct cowmap_merge *m;
		uint64_t tc, ta, ts;
		int err;
		char chk[CHG];

		/* Restore the original contents (untimed). */
		fd = open(file, O_WRONLY);
		put_bytes(fd, off, nchg, oldb);
		fsync(fd);
		close(fd);

		t0 = now_ns();
		err = cowmap_merge_new(file, 0, &m);
		if (!err)
			err = cowmap_merge_add_dir(m, ldir) < 0 ? -1 : 0;
		if (!err)
			err = cowmap_merge_run(m);
		if (err)
			die("merge-all: %s", cowmap_errmsg());
		series_add(&s_merge, (now_ns() - t0) / 1e9, -1);
		cowmap_merge_stats(m, &st);
		cowmap_merge_free(m);
		/* Spot-check the result. */
		fd = open(file, O_RDONLY);
		for (size_t i = 0; i < nchg; i += nchg / 16 + 1)
			if (pread(fd, chk, CHG, off[i]) != (ssize_t)CHG ||
			    memcmp(chk, newb + i * CHG, CHG))
				bad++;
		close(fd);

		/* The same bytes with pwrite + fsync. */
		t0 = now_ns();
		fd = open(file, O_WRONLY);
		put_bytes(fd, off, nchg, newb);
		if (fsync(fd))
			die("fsync");
		close(fd);
		series_add(&s_pw, (now_ns() - t0) / 1e9, -1);

		/* The prototype. */
		text_merge(file, copy, tdir, L, &tc, &ta, &ts);
		series_add(&s_txt, (tc + ta + ts) / 1e9, -1);
		series_add(&s_copy, tc / 1e9, -1);
		series_add(&s_apply, ta / 1e9, -1);
		unlink(copy);
	}
	if (bad)
		note("merge-all: %d spot-checked changes missing from the file", bad);
	snprintf(note_, sizeof(note_),
		 "%d logs, %llu records, %.0f MiB changed, %.0f MiB written; in place, journaled",
		 L, (unsigned long long)st.records, st.changed_bytes / (double)MIB,
		 st.write_bytes / (double)MIB);
	row_series("merge", "merge-all (libcowmap)", "s", &s_merge, note_);
	snprintf(note_, sizeof(note_), "%zu x 4 KiB pwrite in offset order + fsync", nchg);
	row_series("merge", "pwrite+fsync same bytes", "s", &s_pw, note_);
	snprintf(note_, sizeof(note_), "copy %zu MiB in 1 KiB chunks, lseek+write per line, fsync",
		 opt.merge_file_mb);
	row_series("merge", "text merge (prototype)", "s", &s_txt, note_);
	row_series("merge", "  text merge: copy part", "s", &s_copy, "");
	row_series("merge", "  text merge: apply part", "s", &s_apply, "");
	note("merge: %zu MiB file, %zu MiB of changes in %d logs (%zu changes of 4 KiB)",
	     opt.merge_file_mb, opt.merge_change_mb, L, nchg);
	rm_dir(ldir);
	rm_dir(tdir);
	unlink(file);
	free(slots);
	free(off);
	free(oldb);
	free(newb);
}
