// SPDX-License-Identifier: GPL-2.0
/*
 * Load: LOAD_SESSIONS (64) sessions over one sparse 1 GiB file, each in its
 * own process, each writing LOAD_PAGES (128) pages and draining into its
 * bound log every LOAD_DRAIN_EVERY (64) writes while reading the others'
 * pages (which must still show the file) and its own (which must show its
 * writes).  When every writer has exited (the kernel's final drains append
 * the rest), all logs are merged at once (libcowmap's merge-all:
 * cowmap_merge_add_dir) and the file must equal the model: every session's
 * last write to each of its pages, the original bytes elsewhere.  Sessions
 * own disjoint pages (page % sessions), and all of them also write the
 * same bytes to page 0, which must not count as a conflict.
 *
 * Scaled for the test VM (2 GiB, TCG): 64 x 128 pages x (copy + base) = 64 MiB
 * of private pages.  LOAD_PAGES=4096 gives the "thousands of pages" of the
 * full-size run (2 GiB of private pages: the debug VM's 4 GiB, or more).
 */
#include <stddef.h>

#include "cowmap_harness.h"
#include "lib/util.h"
#include "cowmap.h"

#define FILE_SIZE	(1ULL << 30)
#define FILE_PAGES	(FILE_SIZE / PG)
#define DATA_PAGES	4096		/* the first 16 MiB hold data, the rest is a hole */
#define SHARED_OFF	100
static const char shared_bytes[] = "written by every session alike";

struct load_cfg {
	int sessions;
	int pages;
	int drain_every;
	uint64_t seed;
};

/* The pages session @sid writes, in order, and what. */
struct wr {
	uint64_t page;
	uint32_t off, len;
	uint64_t seed;
};

static void plan(const struct load_cfg *c, int sid, struct wr *w)
{
	uint64_t rng = c->seed * 1000003 + sid + 1;
	uint64_t own = FILE_PAGES / c->sessions;
	int i;

	for (i = 0; i < c->pages; i++) {
		/* Rewrite an earlier page now and then. */
		if (i > 8 && cm_rand(&rng) % 8 == 0) {
			w[i].page = w[cm_rand(&rng) % i].page;
		} else {
			uint64_t k = cm_rand(&rng) % own;

			/* Half in the data part, half in the hole. */
			if (i % 2)
				k %= DATA_PAGES / c->sessions;
			w[i].page = k * c->sessions + sid;
			if (w[i].page == 0)
				w[i].page = c->sessions;	/* page 0 is shared */
		}
		w[i].off = cm_rand(&rng) % (PG - 64);
		w[i].len = 1 + cm_rand(&rng) % 64;
		w[i].seed = cm_rand(&rng);
	}
}

static void orig_page(uint64_t page, uint8_t *buf)
{
	if (page < DATA_PAGES)
		cm_fill(page + 1, buf, PG);
	else
		memset(buf, 0, PG);
}

FIXTURE(load) {
	char *dir, *logs, *backing;
	struct load_cfg c;
};

FIXTURE_SETUP(load)
{
	const char *scratch;
	uint8_t *data;
	uint64_t p;
	int fd;

	self->dir = NULL;
	CM_SKIP_IF_NO_DEVICE();
	CM_SETUP_SCRATCH(scratch);
	self->c.sessions = getenv("LOAD_SESSIONS") ? atoi(getenv("LOAD_SESSIONS")) : 64;
	self->c.pages = getenv("LOAD_PAGES") ? atoi(getenv("LOAD_PAGES")) : 128;
	self->c.drain_every = getenv("LOAD_DRAIN_EVERY") ? atoi(getenv("LOAD_DRAIN_EVERY")) : 64;
	self->c.seed = getenv("COWMAP_SEED") ? strtoull(getenv("COWMAP_SEED"), NULL, 0) :
		       cm_now_ns() % 1000000007ULL;
	self->dir = cm_mkdtemp(scratch, "load");
	ASSERT_NE(NULL, self->dir);
	self->logs = cm_path(self->dir, "logs");
	ASSERT_EQ(0, mkdir(self->logs, 0700));
	self->backing = cm_path(self->dir, "backing");
	fd = open(self->backing, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, FILE_SIZE));
	data = malloc(PGS(256));
	for (p = 0; p < DATA_PAGES; p += 256) {
		for (int k = 0; k < 256; k++)
			orig_page(p + k, data + PGS(k));
		ASSERT_EQ(0, cm_write_all(fd, data, PGS(256), PGS(p)));
	}
	free(data);
	ASSERT_EQ(0, fsync(fd));
	close(fd);
}

FIXTURE_TEARDOWN(load)
{
	if (self->dir && !getenv("COWMAP_KEEP"))
		cm_rm_rf(self->dir);
}

struct shared_stats {
	volatile long drains, records, bad_reads, errors;
	volatile long done;
};

static int writer(const struct load_cfg *c, int sid, const char *backing, const char *logs,
		  struct shared_stats *ss)
{
	struct wr *w = calloc(c->pages, sizeof(*w));
	uint8_t buf[PG], exp[PG], *m;
	uint64_t rng = c->seed ^ (sid * 77 + 5);
	struct cowmap_bind b = { .flags = COWMAP_BIND_LOG };
	char lp[512];
	int dev, i;

	plan(c, sid, w);
	snprintf(lp, sizeof(lp), "%s/session-%03d.log", logs, sid);
	b.fd = open(backing, O_RDONLY | O_CLOEXEC);
	b.log_fd = open(lp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	dev = cm_open_dev();
	if (b.fd < 0 || b.log_fd < 0 || dev < 0 || ioctl(dev, COWMAP_IOC_BIND, &b))
		return 10;
	m = cm_map(dev, 0, FILE_SIZE, PROT_READ | PROT_WRITE);
	if (m == MAP_FAILED)
		return 11;
	memcpy(m + SHARED_OFF, shared_bytes, sizeof(shared_bytes));
	for (i = 0; i < c->pages; i++) {
		cm_fill(w[i].seed, buf, w[i].len);
		memcpy(m + PGS(w[i].page) + w[i].off, buf, w[i].len);
		if ((i + 1) % c->drain_every == 0) {
			struct cowmap_drain d = { 0 };

			if (cm_drain(dev, -1, &d))
				__sync_fetch_and_add(&ss->errors, 1);
			__sync_fetch_and_add(&ss->drains, 1);
			__sync_fetch_and_add(&ss->records, d.records);
		}
		if (i % 8 == 0) {
			/* Someone else's page: still the file. */
			uint64_t p = cm_rand(&rng) % FILE_PAGES;

			if (p % c->sessions == (uint64_t)sid || p == 0)
				p = (p + 1) % FILE_PAGES;
			orig_page(p, exp);
			if (memcmp(m + PGS(p), exp, PG))
				__sync_fetch_and_add(&ss->bad_reads, 1);
			/* One of ours: our bytes. */
			p = cm_rand(&rng) % (i + 1);
			cm_fill(w[p].seed, buf, w[p].len);
			if (memcmp(m + PGS(w[p].page) + w[p].off, buf, w[p].len)) {
				/* A later write may overlap it: check against the last. */
				int k, last = p;

				for (k = p + 1; k <= i; k++)
					if (w[k].page == w[p].page)
						last = k;
				if (last == (int)p)
					__sync_fetch_and_add(&ss->bad_reads, 1);
			}
		}
	}
	__sync_fetch_and_add(&ss->done, 1);
	/* Exit with undrained changes: the final drain must log them. */
	return 0;
}

TEST_F_TIMEOUT(load, sessions_drain_merge_all, 3600)
{
	struct shared_stats *ss = mmap(NULL, PG, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct cowmap_merge_stats mst;
	struct cowmap_merge *mg;
	struct timespec t0, t1, t2;
	uint8_t *model_pages, buf[PG], exp[PG];
	uint64_t *pages_of, npages = 0, p, bad = 0, checked = 0;
	struct wr *w;
	int sid, i, st, fails = 0, fd, r;

	ASSERT_NE(MAP_FAILED, ss);
	printf("# load: %d sessions x %d pages over a 1 GiB sparse file, drain every %d writes, seed %llu\n",
	       self->c.sessions, self->c.pages, self->c.drain_every,
	       (unsigned long long)self->c.seed);
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (sid = 0; sid < self->c.sessions; sid++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(writer(&self->c, sid, self->backing, self->logs, ss));
	}
	for (sid = 0; sid < self->c.sessions; sid++) {
		st = cm_wait(-1);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			fails++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	EXPECT_EQ(0, fails);
	EXPECT_EQ(self->c.sessions, ss->done);
	EXPECT_EQ(0, ss->bad_reads);
	EXPECT_EQ(0, ss->errors);

	/* Let the final drains finish (the last users are gone already). */
	usleep(200000);
	ASSERT_EQ(0, cowmap_merge_new(self->backing, 0, &mg));
	r = cowmap_merge_add_dir(mg, self->logs);
	EXPECT_EQ(self->c.sessions, r) TH_LOG("%s", cowmap_errmsg());
	r = cowmap_merge_run(mg);
	EXPECT_EQ(0, r) TH_LOG("merge-all: %s", cowmap_errmsg());
	ASSERT_EQ(0, cowmap_merge_stats(mg, &mst));
	cowmap_merge_free(mg);
	clock_gettime(CLOCK_MONOTONIC, &t2);

	/* The model: each session's last write to each page wins. */
	w = calloc(self->c.pages, sizeof(*w));
	pages_of = calloc((size_t)self->c.sessions * self->c.pages + 1, sizeof(*pages_of));
	model_pages = NULL;
	fd = open(self->backing, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	for (sid = 0; sid < self->c.sessions; sid++) {
		plan(&self->c, sid, w);
		for (i = 0; i < self->c.pages; i++) {
			int k, last = 1;

			for (k = i + 1; k < self->c.pages; k++)
				if (w[k].page == w[i].page)
					last = 0;
			if (!last)
				continue;
			/* Build the page: original, then all writes in order. */
			orig_page(w[i].page, exp);
			for (k = 0; k < self->c.pages; k++) {
				if (w[k].page != w[i].page)
					continue;
				cm_fill(w[k].seed, buf, w[k].len);
				memcpy(exp + w[k].off, buf, w[k].len);
			}
			ASSERT_EQ(0, cm_read_all(fd, buf, PG, PGS(w[i].page)));
			checked++;
			if (memcmp(buf, exp, PG)) {
				if (bad++ < 5)
					TH_LOG("session %d page %llu differs from the model", sid,
					       (unsigned long long)w[i].page);
			}
			npages++;
		}
	}
	/* Page 0 has the shared bytes; a sample of untouched pages is intact. */
	ASSERT_EQ(0, cm_read_all(fd, buf, PG, 0));
	orig_page(0, exp);
	memcpy(exp + SHARED_OFF, shared_bytes, sizeof(shared_bytes));
	EXPECT_EQ(0, memcmp(buf, exp, PG));
	for (p = 1; p < FILE_PAGES; p += 4093) {
		int touched = 0;

		for (sid = 0; sid < self->c.sessions && !touched; sid++) {
			if (p % self->c.sessions != (uint64_t)sid)
				continue;
			plan(&self->c, sid, w);
			for (i = 0; i < self->c.pages; i++)
				touched |= w[i].page == p;
		}
		if (touched)
			continue;
		ASSERT_EQ(0, cm_read_all(fd, buf, PG, PGS(p)));
		orig_page(p, exp);
		if (memcmp(buf, exp, PG))
			bad++;
		checked++;
	}
	close(fd);
	printf("# load: writers %.1f s (%ld drains, %ld records while running), merge-all %.1f s: %llu logs, %llu records, %llu bytes written in %llu ranges, %llu conflicts; %llu pages checked against the model, %llu differ\n",
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, ss->drains, ss->records,
	       (t2.tv_sec - t1.tv_sec) + (t2.tv_nsec - t1.tv_nsec) / 1e9,
	       (unsigned long long)mst.logs, (unsigned long long)mst.records,
	       (unsigned long long)mst.write_bytes, (unsigned long long)mst.write_ranges,
	       (unsigned long long)mst.conflicts, (unsigned long long)checked,
	       (unsigned long long)bad);
	fflush(stdout);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, mst.conflicts);
	free(w);
	free(pages_of);
	free(model_pages);
}

TEST_HARNESS_MAIN
