// SPDX-License-Identifier: GPL-2.0
/*
 * Scale: 64 logs totalling 256 MiB of changes into a 1 GiB sparse file,
 * checked against a byte array, and timed against pwrite+fsync of the
 * same bytes.  COWMAP_BIG_MIB=N changes the total (default 256).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "tutil.h"

#define BIG_FILE	(1ULL << 30)
#define BIG_LOGS	64

struct bext {
	uint64_t off;
	uint32_t len;
	uint16_t log;
	uint8_t drain;
};

static int cmp_ext(const void *a, const void *b)
{
	const struct bext *x = a, *y = b;

	if (x->log != y->log)
		return x->log - y->log;
	if (x->drain != y->drain)
		return x->drain - y->drain;
	return x->off < y->off ? -1 : x->off > y->off;
}

static double cpu_sec(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

TEST_SLOW(merge_64_logs_256mib_into_1gib_sparse)
{
	const char *f = tpath("big.file"), *ref = tpath("big.ref");
	const char *env = getenv("COWMAP_BIG_MIB");
	uint64_t total_target = (env ? strtoull(env, NULL, 10) : 256) << 20;
	uint64_t total = 0, records = 0, cursor = 0;
	size_t n_ext = 0, cap = 1 << 16;
	struct bext *ext = malloc(cap * sizeof(*ext));
	struct cowmap_merge_stats st;
	struct cowmap_merge *m;
	struct cowmap_log_writer *w[BIG_LOGS];
	uint8_t *model, *buf;
	double t0, t_gen, t_merge, t_ref, t_check, c0, c_merge, c_ref;
	int fd, ret, bad = 0;

	model = calloc(1, BIG_FILE);
	buf = malloc(1 << 20);
	ASSERT(model && buf && ext, "memory");
	t0 = now_sec();
	/* the file: sparse, with 48 random 1 MiB data regions */
	fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT(fd >= 0 && !ftruncate(fd, (off_t)BIG_FILE), "create");
	for (int i = 0; i < 48; i++) {
		uint64_t off = (uint64_t)rnd(1024) << 20;

		fill_random(model + off, 1 << 20);
		pwrite(fd, model + off, 1 << 20, (off_t)off);
	}
	close(fd);

	/* disjoint extents over the file, each given to a random log and
	 * drain; small and large ones mixed */
	while (total < total_target) {
		uint32_t len = rnd(4) ? 1 + rnd(2048) : 4096 + rnd(256 << 10);
		uint64_t gap = rnd((uint32_t)MIN(3ULL * len + 64, 4ULL << 20));

		cursor += gap;
		if (cursor + len > BIG_FILE)
			break;
		if (n_ext == cap)
			ext = realloc(ext, (cap *= 2) * sizeof(*ext));
		ext[n_ext++] = (struct bext){ cursor, len, (uint16_t)rnd(BIG_LOGS), (uint8_t)rnd(4) };
		cursor += len;
		total += len;
	}
	qsort(ext, n_ext, sizeof(*ext), cmp_ext);
	for (int l = 0; l < BIG_LOGS; l++) {
		char name[64];

		snprintf(name, sizeof(name), "big%02d.log", l);
		ret = cowmap_log_create(tpath(name), f, 0, &w[l]);
		ASSERT(!ret, "create log: %s", cowmap_errmsg());
	}
	for (size_t i = 0; i < n_ext; i++) {
		struct bext *e = &ext[i];
		uint8_t *nb = e->len <= (1 << 20) ? buf : malloc(e->len);

		fill_random(nb, e->len);
		/* some bytes unchanged: coalesced records */
		for (uint32_t k = 0; k < e->len; k += 1 + rnd(64))
			nb[k] = model[e->off + k];
		ret = cowmap_log_append(w[e->log], e->off, model + e->off, nb, e->len);
		records++;
		/* sometimes the session wrote part of it again (a chain) */
		if (!ret && rnd(20) == 0) {
			uint32_t sub = 1 + rnd(e->len);
			uint8_t *nb2 = malloc(sub);

			fill_random(nb2, sub);
			ret = cowmap_log_append(w[e->log], e->off, nb, nb2, sub);
			memcpy(nb, nb2, sub);
			free(nb2);
			records++;
		}
		memcpy(model + e->off, nb, e->len);
		if (nb != buf)
			free(nb);
		ASSERT(!ret, "append: %s", cowmap_errmsg());
	}
	for (int l = 0; l < BIG_LOGS; l++)
		ASSERT(!cowmap_log_writer_close(w[l]), "close log");
	t_gen = now_sec() - t0;

	/* merge */
	sync();
	t0 = now_sec();
	c0 = cpu_sec();
	ASSERT(!cowmap_merge_new(f, 0, &m), "new");
	for (int l = 0; l < BIG_LOGS; l++) {
		char name[64];

		snprintf(name, sizeof(name), "big%02d.log", l);
		ret = cowmap_merge_add_log(m, tpath(name));
		ASSERT(!ret, "add: %s", cowmap_errmsg());
	}
	ret = cowmap_merge_run(m);
	t_merge = now_sec() - t0;
	c_merge = cpu_sec() - c0;
	cowmap_merge_stats(m, &st);
	cowmap_merge_free(m);
	EXPECT(ret == 0, "merge: %d %s", ret, cowmap_errmsg());

	/* check against the model */
	t0 = now_sec();
	fd = open(f, O_RDONLY);
	for (uint64_t off = 0; off < BIG_FILE && fd >= 0; off += 1 << 20) {
		pread_full(fd, buf, 1 << 20, off);
		if (memcmp(buf, model + off, 1 << 20)) {
			if (bad++ < 3)
				DIAG("MiB at %llu differs from the model", (unsigned long long)off);
		}
	}
	close(fd);
	t_check = now_sec() - t0;
	EXPECT(bad == 0, "%d MiB differ", bad);

	/* reference: pwrite the changed bytes into a sparse file, fsync */
	sync();
	t0 = now_sec();
	c0 = cpu_sec();
	fd = open(ref, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ftruncate(fd, (off_t)BIG_FILE);
	for (size_t i = 0; i < n_ext; i++)
		pwrite_full(fd, model + ext[i].off, ext[i].len, ext[i].off);
	fsync(fd);
	close(fd);
	t_ref = now_sec() - t0;
	c_ref = cpu_sec() - c0;
	unlink(ref);

	DIAG("%zu extents, %llu records, %.1f MiB changed in %d logs (%.1f MiB written); "
	     "logs made in %.2fs, checked in %.2fs", n_ext, (unsigned long long)records,
	     (double)total / (1 << 20), BIG_LOGS, (double)st.write_bytes / (1 << 20),
	     t_gen, t_check);
	DIAG("INFO merge %.2fs (cpu %.2fs) vs pwrite+fsync of the same bytes %.2fs "
	     "(cpu %.2fs): ratio %.2f", t_merge, c_merge, t_ref, c_ref, t_merge / t_ref);
	EXPECT(st.conflicts == 0 && st.records == records, "stats");
	for (int l = 0; l < BIG_LOGS; l++) {
		char name[64];

		snprintf(name, sizeof(name), "big%02d.log", l);
		unlink(tpath(name));
	}
	unlink(f);
	free(model);
	free(buf);
	free(ext);
}
