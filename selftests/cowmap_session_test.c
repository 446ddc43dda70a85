// SPDX-License-Identifier: GPL-2.0
/*
 * Session semantics of /dev/cowmap (docs/design.md, section 1): reads share the file, the
 * first write to a page copies it once and nobody else sees the copy,
 * events, exact byte-level diffs, drains and logs (also when the process is
 * killed), discard, caps and COWMAP_IOC_INFO.
 *
 * The core read/write/diff cases run over ext4, XFS and btrfs
 * ($COWMAP_SCRATCH, $COWMAP_SCRATCH_XFS, $COWMAP_SCRATCH_BTRFS); the
 * others use ext4.  Memory-management interactions (threads sharing
 * mappings, fork, fd passing, munmap/mremap/madvise/mprotect, truncate,
 * O_DIRECT, reclaim, rmmod) are in cowmap_mm_test.c.
 *
 * Logs are read with libcowmap's reader and, independently, with this
 * file's own parser and CRC32C.
 */
#include <pthread.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/magic.h>

#include "cowmap_harness.h"
#include "cowmap_fs_variants.h"
#include "lib/util.h"
#include "cowmap.h"	/* libcowmap: the log reader */

/* ------------------------------------------------------------------------
 * Helpers
 */

/* A copy of @len bytes of @src: what a test expects after its writes. */
static uint8_t *copy_of(struct __test_metadata *_metadata, const uint8_t *src,
			size_t len)
{
	uint8_t *p = malloc(len);

	ASSERT_NE(NULL, p);
	return memcpy(p, src, len);
}

/* A read-write mapping of the session's first @len bytes. */
static void *map_rw(struct __test_metadata *_metadata, int dev, size_t len)
{
	void *m = cm_map(dev, 0, len, PROT_READ | PROT_WRITE);

	ASSERT_NE(MAP_FAILED, m);
	return m;
}

/* A session of @fd logging to a new file @logp, opened into *@lfdp. */
static int logged_session(struct __test_metadata *_metadata, int fd,
			  const char *logp, int *lfdp)
{
	int dev;

	*lfdp = open(logp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ASSERT_LE(0, *lfdp);
	dev = cm_session(fd, *lfdp, 0);
	ASSERT_LE(0, dev);
	return dev;
}

/*
 * Both fixtures' files: a directory in @scratch holding "backing", @len
 * bytes made by @fill, which the fixture keeps in *@origp too.
 */
static void backing_setup(struct __test_metadata *_metadata,
			  const char *scratch, size_t len,
			  void (*fill)(uint8_t *buf, size_t len),
			  char **dirp, char **pathp, uint8_t **origp, int *fdp)
{
	*dirp = cm_mkdtemp(scratch, "cowmap-session");
	ASSERT_NE(NULL, *dirp);
	_metadata->setup_completed = true;
	*origp = malloc(len);
	ASSERT_NE(NULL, *origp);
	fill(*origp, len);
	*pathp = cm_path(*dirp, "backing");
	*fdp = cm_create(*pathp, *origp, len);
	ASSERT_LE(0, *fdp);
}

#define BACKING_SETUP(self, scratch, len, fill)				\
	backing_setup(_metadata, scratch, len, fill, &(self)->dir,	\
		      &(self)->path, &(self)->orig, &(self)->fd)

static void backing_teardown(int fd, char *dir, char *path, uint8_t *orig)
{
	if (fd >= 0)
		close(fd);
	cm_rm_rf(dir);
	free(dir);
	free(path);
	free(orig);
}

/* A view of the file through a fresh mapping, or NULL. */
static uint8_t *view_of(int dev, size_t len)
{
	uint8_t *m = cm_map(dev, 0, len, PROT_READ), *copy;

	if (m == MAP_FAILED)
		return NULL;
	copy = malloc(len);
	if (copy)
		memcpy(copy, m, len);
	munmap(m, len);
	return copy;
}

/* Does the backing file still hold @want? */
static bool file_is(int fd, const uint8_t *want, size_t len)
{
	uint8_t *buf = malloc(len);
	bool same;

	same = buf && !cm_read_all(fd, buf, len, 0) && !memcmp(buf, want, len);
	free(buf);
	return same;
}

/* Offset of the first difference, or -1. */
static long first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return i;
	return -1;
}

/*
 * Reads a log with libcowmap and applies its records to @img (@len bytes),
 * checking that each record's old bytes are what @img holds (the log
 * chain).  Returns the number of records, or -1 (with a TH_LOG).
 */
static long apply_log(struct __test_metadata *_metadata, const char *path,
		      uint8_t *img, size_t len, struct cowmap_log_info *lip)
{
	struct cowmap_log_info li;
	struct cowmap_log_rec rec;
	struct cowmap_log *log;
	long n = 0;
	int err;

	if (lip)
		memset(lip, 0, sizeof(*lip));
	err = cowmap_log_open(path, 0, &log);
	if (err) {
		TH_LOG("cowmap_log_open %s: %s (%s)", path, cowmap_strerror(err),
		       cowmap_errmsg());
		return -1;
	}
	cowmap_log_info(log, &li);
	if (li.torn) {
		TH_LOG("%s: torn tail at %llu: %s", path,
		       (unsigned long long)li.torn_offset, cowmap_errmsg());
		n = -1;
	}
	while (n >= 0 && (err = cowmap_log_next(log, &rec)) == 1) {
		if (rec.seq != (uint64_t)n) {
			TH_LOG("%s: record %ld has seq %llu", path, n,
			       (unsigned long long)rec.seq);
			n = -1;
			break;
		}
		if (rec.offset + rec.length > len) {
			TH_LOG("%s: record %ld at %llu+%u is past the file", path,
			       n, (unsigned long long)rec.offset, rec.length);
			n = -1;
			break;
		}
		if (memcmp(img + rec.offset, rec.old_data, rec.length)) {
			TH_LOG("%s: record %ld at %llu+%u: old bytes differ from "
			       "the image at %ld", path, n,
			       (unsigned long long)rec.offset, rec.length,
			       first_diff(img + rec.offset, rec.old_data, rec.length));
			n = -1;
			break;
		}
		memcpy(img + rec.offset, rec.new_data, rec.length);
		n++;
	}
	if (n >= 0 && err < 0) {
		TH_LOG("cowmap_log_next %s: %s", path, cowmap_strerror(err));
		n = -1;
	}
	if (lip)
		*lip = li;
	cowmap_log_close(log);
	return n;
}

/* The records part of a log file (after its header), as a malloc()ed copy. */
static uint8_t *log_records(const char *path, size_t *lenp, uint32_t *hlenp)
{
	const struct cowmap_log_header *h;
	uint8_t *all, *recs;
	size_t len;
	uint32_t hlen;

	all = cm_slurp(path, &len);
	if (!all || len < sizeof(*h)) {
		free(all);
		return NULL;
	}
	h = (const void *)all;
	hlen = le32toh(h->header_len);
	if (hlen > len) {
		free(all);
		return NULL;
	}
	recs = malloc(len - hlen + 1);
	if (recs)
		memcpy(recs, all + hlen, len - hlen);
	free(all);
	*lenp = len - hlen;
	*hlenp = hlen;
	return recs;
}

/*
 * Deterministic scribbles over @npages pages of @dst (a mapping or an
 * image): every page gets one of several kinds of change, or none.
 * @phase varies the pattern for a second round over the same pages.
 */
static void scribble(uint8_t *dst, uint64_t seed, size_t npages, int phase)
{
	uint64_t s = seed * 1000003 + phase * 7919 + 1;

	for (size_t p = 0; p < npages; p++) {
		uint8_t *pg = dst + PGS(p);
		uint32_t kind = cm_rand(&s) % 6, n, off, len;

		switch (kind) {
		case 0:		/* untouched */
			break;
		case 1:		/* the whole page */
			cm_fill(cm_rand(&s), pg, PG);
			break;
		case 2:		/* scattered single bytes */
			n = 1 + cm_rand(&s) % 16;
			while (n--)
				pg[cm_rand(&s) % PG] = cm_rand(&s);
			break;
		case 3:		/* one run */
			off = cm_rand(&s) % PG;
			len = 1 + cm_rand(&s) % 300;
			if (len > PG - off)
				len = PG - off;
			memset(pg + off, (int)cm_rand(&s), len);
			break;
		case 4:		/* NUL and newline bytes, and the page ends */
			pg[cm_rand(&s) % PG] = 0;
			pg[cm_rand(&s) % PG] = '\n';
			pg[0] = (uint8_t)(pg[0] + 1);
			pg[PG - 1] = (uint8_t)(pg[PG - 1] - 1);
			break;
		case 5:		/* written with the bytes it holds */
			off = cm_rand(&s) % (PG - 64);
			memmove(pg + off, pg + off, 64);
			pg[off] = pg[off];
			break;
		}
	}
}

/* ------------------------------------------------------------------------
 * FIXTURE(fs): one backing file on each filesystem
 *
 * Pages: 0 text lines, 1 zeros, 2 random, 3 all 0xff, 4..7 random.
 */

#define FS_PAGES	8
#define FS_SIZE		PGS(FS_PAGES)

FIXTURE(fs) {
	char *dir;
	char *path;
	uint8_t *orig;
	int fd;		/* O_RDWR */
};

FIXTURE_VARIANT(fs) {
	COWMAP_FS_VARIANT_FIELDS;
};

COWMAP_FS_VARIANTS(fs);

/* The layout above: @len is FS_SIZE. */
static void fill_fs_file(uint8_t *buf, size_t len)
{
	size_t n = 0;

	for (int line = 0; n < PG; line++) {
		char l[64];
		int k = snprintf(l, sizeof(l), "line %04d: the quick brown fox\n", line);

		memcpy(buf + n, l, k < (int)(PG - n) ? (size_t)k : PG - n);
		n += k;
	}
	memset(buf + PG, 0, PG);
	cm_fill(2, buf + PGS(2), PG);
	memset(buf + PGS(3), 0xff, PG);
	cm_fill(4, buf + PGS(4), PGS(4));
}

FIXTURE_SETUP(fs)
{
	const char *scratch, *why;
	struct statfs sf;

	self->fd = -1;
	CM_SKIP_IF_NO_DEVICE();
	scratch = cm_scratch_dir(variant->env, &why);
	if (!scratch)
		CM_SETUP_SKIP("$%s %s: no %s scratch directory", variant->env,
			      why, variant->name);
	if (statfs(scratch, &sf) || (unsigned long)sf.f_type != variant->magic)
		CM_SETUP_SKIP("$%s (%s) is not %s", variant->env, scratch,
			      variant->name);
	if (sysconf(_SC_PAGESIZE) != PG)
		CM_SETUP_SKIP("the tables assume %lu-byte pages", PG);

	BACKING_SETUP(self, scratch, FS_SIZE, fill_fs_file);
}

FIXTURE_TEARDOWN(fs)
{
	backing_teardown(self->fd, self->dir, self->path, self->orig);
}

/* Reads show the file and copy nothing. */
TEST_F(fs, reads_share_the_file)
{
	struct cowmap_event ev;
	struct cowmap_info in;
	struct stat st;
	uint8_t *diff = NULL;
	size_t used = 0;
	uint32_t records = 0;
	int dev = cm_session(self->fd, -1, 0);
	uint8_t *m, *m3;

	ASSERT_LE(0, dev);
	m = map_rw(_metadata, dev, FS_SIZE);
	m3 = cm_map(dev, PGS(3), PGS(3), PROT_READ);
	ASSERT_NE(MAP_FAILED, m3);

	EXPECT_EQ(-1, first_diff(m, self->orig, FS_SIZE));
	EXPECT_EQ(-1, first_diff(m3, self->orig + PGS(3), PGS(3)));
	/* Twice, backwards: fault-around must not matter. */
	for (long i = FS_SIZE - 1; i >= 0; i -= 97) {
		ASSERT_EQ(self->orig[i], m[i]) TH_LOG("byte %ld", i);
	}

	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(0, in.private_pages);
	EXPECT_EQ(0, in.undrained_pages);
	EXPECT_EQ(0, in.cow_faults);
	EXPECT_EQ(0, in.events);
	/* The file's identity as stat(2) gives it (btrfs: the subvolume's dev). */
	ASSERT_EQ(0, fstat(self->fd, &st));
	EXPECT_EQ((uint64_t)st.st_dev, in.dev);
	EXPECT_EQ((uint64_t)st.st_ino, in.ino);
	EXPECT_EQ(FS_SIZE, in.size);
	EXPECT_EQ(PGS(FS_PAGES + 3), in.mapped_bytes);
	ASSERT_EQ(0, cm_set_nonblock(dev, true));
	EXPECT_EQ(-EAGAIN, cm_events(dev, &ev, 1));
	ASSERT_EQ(1, cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF, &diff, &used,
				 &records));
	EXPECT_EQ(0, records);
	EXPECT_EQ(0, used);
	free(diff);

	/* Someone else's write shows on pages the session has not copied. */
	ASSERT_EQ(0, cm_write_all(self->fd, "changed", 7, PG + 9));
	EXPECT_EQ(0, memcmp(m + PG + 9, "changed", 7));
	munmap(m3, PGS(3));
	munmap(m, FS_SIZE);
	close(dev);
}

/* The first write to a page copies it once; nobody else sees the copy. */
TEST_F(fs, first_write_copies_once)
{
	static const struct {
		bool read_first;
		uint64_t off;
	} cases[] = {
		{ false, 0 }, { true, 0 }, { false, PGS(2) + 77 },
		{ true, PGS(2) + 77 }, { false, FS_SIZE - 1 }, { true, PG + PG / 2 },
	};

	uint8_t *want = malloc(FS_SIZE);

	ASSERT_NE(NULL, want);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t off = cases[i].off, page = off & ~(PG - 1);
		uint8_t newb = self->orig[off] ^ 0x5a, *plain_before, *plain_after;
		struct cowmap_event ev[4];
		struct cowmap_info in;
		uint64_t t0, t1;
		volatile uint8_t *m, *m2, *other;
		int dev, dev2, ro, n;

		dev = cm_session(self->fd, -1, 0);
		ASSERT_LE(0, dev);
		dev2 = cm_session(self->fd, -1, 0);
		ASSERT_LE(0, dev2);
		m = map_rw(_metadata, dev, FS_SIZE);
		m2 = cm_map(dev, 0, FS_SIZE, PROT_READ);
		ASSERT_NE(MAP_FAILED, m2);
		other = map_rw(_metadata, dev2, FS_SIZE);
		ro = open(self->path, O_RDONLY | O_CLOEXEC);
		ASSERT_LE(0, ro);
		plain_before = mmap(NULL, FS_SIZE, PROT_READ, MAP_SHARED, ro, 0);
		ASSERT_NE(MAP_FAILED, plain_before);
		/* Fault everything in, in every mapping, first. */
		EXPECT_EQ(-1, first_diff(plain_before, self->orig, FS_SIZE));
		EXPECT_EQ(-1, first_diff((uint8_t *)other, self->orig, FS_SIZE));
		if (cases[i].read_first) {
			EXPECT_EQ(-1, first_diff((uint8_t *)m, self->orig, FS_SIZE));
			EXPECT_EQ(-1, first_diff((uint8_t *)m2, self->orig, FS_SIZE));
		}

		t0 = cm_now_ns();
		m[off] = newb;
		t1 = cm_now_ns();

		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(1, in.private_pages) TH_LOG("case %zu", i);
		EXPECT_EQ(1, in.cow_faults) TH_LOG("case %zu", i);
		EXPECT_EQ(1, in.events) TH_LOG("case %zu", i);
		EXPECT_EQ(1, in.undrained_pages) TH_LOG("case %zu", i);
		ASSERT_EQ(0, cm_set_nonblock(dev, true));
		n = cm_events(dev, ev, 4);
		ASSERT_EQ(1, n) TH_LOG("case %zu: %d events", i, n);
		EXPECT_EQ(COWMAP_EVENT_COW, ev[0].type);
		EXPECT_EQ(1, ev[0].seq);
		EXPECT_EQ(page, ev[0].offset) TH_LOG("case %zu", i);
		EXPECT_EQ((uint32_t)getpid(), ev[0].tgid);
		EXPECT_EQ((uint32_t)gettid(), ev[0].tid);
		EXPECT_EQ(0, ev[0].count);
		EXPECT_LE(t0, ev[0].time_ns);
		EXPECT_GE(t1, ev[0].time_ns);

		/* More writes to that page: no copy, no event. */
		m[off] = newb ^ 1;
		m[page] = m[page] + 1;
		memset((uint8_t *)m + page + 100, 'w', 1000);
		m[page + PG - 1] = 'e';
		m[off] = newb;
		/* The same writes on a copy of the file. */
		memcpy(want, self->orig, FS_SIZE);
		want[off] = newb ^ 1;
		want[page] = want[page] + 1;
		memset(want + page + 100, 'w', 1000);
		want[page + PG - 1] = 'e';
		want[off] = newb;
		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(1, in.private_pages) TH_LOG("case %zu", i);
		EXPECT_EQ(1, in.cow_faults) TH_LOG("case %zu", i);
		EXPECT_EQ(1, in.events) TH_LOG("case %zu", i);
		EXPECT_EQ(-EAGAIN, cm_events(dev, ev, 4));
		EXPECT_EQ(newb, m[off]);
		EXPECT_EQ(off == page + PG - 1 ? newb : 'e', m[page + PG - 1]);
		/* Both mappings of the session show what it wrote. */
		EXPECT_EQ(-1, first_diff((uint8_t *)m, want, FS_SIZE)) TH_LOG("case %zu", i);
		EXPECT_EQ(-1, first_diff((uint8_t *)m2, want, FS_SIZE)) TH_LOG("case %zu", i);

		/* Nobody else sees it. */
		EXPECT_TRUE(file_is(self->fd, self->orig, FS_SIZE)) TH_LOG("case %zu", i);
		EXPECT_EQ(-1, first_diff(plain_before, self->orig, FS_SIZE));
		plain_after = mmap(NULL, FS_SIZE, PROT_READ, MAP_SHARED, ro, 0);
		ASSERT_NE(MAP_FAILED, plain_after);
		EXPECT_EQ(-1, first_diff(plain_after, self->orig, FS_SIZE));
		EXPECT_EQ(-1, first_diff((uint8_t *)other, self->orig, FS_SIZE));
		ASSERT_EQ(0, cm_info(dev2, &in));
		EXPECT_EQ(0, in.private_pages);
		/* Pages the session did not write are still the file's. */
		EXPECT_EQ(-1, first_diff((uint8_t *)m, self->orig, page));
		EXPECT_EQ(-1, first_diff((uint8_t *)m + page + PG,
					 self->orig + page + PG, FS_SIZE - page - PG));

		munmap(plain_after, FS_SIZE);
		munmap(plain_before, FS_SIZE);
		close(ro);
		munmap((void *)other, FS_SIZE);
		munmap((void *)m2, FS_SIZE);
		munmap((void *)m, FS_SIZE);
		close(dev2);
		close(dev);
	}
	free(want);
}

/* ------------------------------------------------------------------------
 * Exact diffs
 */

enum wkind { W_END, W_FILL, W_NOT, W_ORIG, W_DATA, W_STRIDE };

struct wr {
	enum wkind kind;
	uint64_t off;
	uint32_t len;		/* bytes; W_STRIDE: count */
	uint8_t val;		/* W_FILL */
	const char *data;	/* W_DATA */
	uint32_t stride;	/* W_STRIDE */
};

struct xrec {
	uint64_t off;
	uint32_t len;		/* 0 ends the list */
};

struct diff_case {
	const char *name;
	struct wr w[5];
	struct xrec x[5];
};

/*
 * Expected records are written out by hand from the contract: one record
 * per changed run, runs fewer than 40 unchanged bytes apart coalesced,
 * never across a page boundary, nothing for bytes written with their old
 * value.
 */
#define FILL(o, l, v)	{ .kind = W_FILL, .off = (o), .len = (l), .val = (v) }
#define NOT(o, l)	{ .kind = W_NOT, .off = (o), .len = (l) }
#define ORIG(o, l)	{ .kind = W_ORIG, .off = (o), .len = (l) }
#define DATA(o, l, d)	{ .kind = W_DATA, .off = (o), .len = (l), .data = (d) }
#define STRIDE(o, n, s)	{ .kind = W_STRIDE, .off = (o), .len = (n), .stride = (s) }
#define X(o, l)		{ .off = (o), .len = (l) }
#define NONE		{ X(0, 0) }

static const struct diff_case diff_cases[] = {
	{ "one byte",
	  { FILL(100, 1, 'X') }, { X(100, 1) } },
	{ "NUL over text",
	  { FILL(5, 1, 0) }, { X(5, 1) } },
	{ "newline into zeros",
	  { FILL(PG + 7, 1, '\n') }, { X(PG + 7, 1) } },
	{ "NUL run over text",
	  { FILL(1024, 32, 0) }, { X(1024, 32) } },
	{ "run",
	  { NOT(200, 10) }, { X(200, 10) } },
	{ "written with the same bytes",
	  { ORIG(300, 16) }, NONE },
	{ "changed and changed back",
	  { FILL(100, 1, 'X'), ORIG(100, 1) }, NONE },
	{ "overwritten",
	  { FILL(50, 1, 'A'), FILL(50, 1, 'B') }, { X(50, 1) } },
	{ "equal bytes inside a run",
	  { DATA(PG + 10, 4, "A\0\0B") }, { X(PG + 10, 4) } },
	{ "equal bytes at the ends of a write",
	  { DATA(PG + 100, 6, "\0\0AB\0\0") }, { X(PG + 102, 2) } },
	{ "newline, NUL, newline over zeros",
	  { DATA(PG + 500, 3, "\n\0\n") }, { X(PG + 500, 3) } },
	{ "whole page",
	  { NOT(PGS(2), PG) }, { X(PGS(2), PG) } },
	{ "page ends",
	  { NOT(0, 1), NOT(PG - 1, 2), NOT(PGS(4) - 1, 1) },
	  { X(0, 1), X(PG - 1, 1), X(PG, 1), X(PGS(4) - 1, 1) } },
	{ "two bytes 39 unchanged apart",
	  { NOT(1000, 1), NOT(1040, 1) }, { X(1000, 41) } },
	{ "two bytes 40 unchanged apart",
	  { NOT(2000, 1), NOT(2041, 1) }, { X(2000, 1), X(2041, 1) } },
	{ "two runs 39 apart",
	  { NOT(3000, 5), NOT(3044, 5) }, { X(3000, 49) } },
	{ "two runs 40 apart",
	  { NOT(3500, 5), NOT(3545, 5) }, { X(3500, 5), X(3545, 5) } },
	{ "a page of bytes 39 apart",
	  { STRIDE(PGS(3), 103, 40) }, { X(PGS(3), 4081) } },
	{ "bytes 40 apart at a page's start, and its last byte",
	  { STRIDE(PGS(3), 2, 41), NOT(PGS(4) - 1, 1) },
	  { X(PGS(3), 1), X(PGS(3) + 41, 1), X(PGS(4) - 1, 1) } },
	{ "one byte in each of four pages",
	  { NOT(1, 1), NOT(PG + 2, 1), NOT(PGS(2) + 3, 1), NOT(PGS(3) + 4, 1) },
	  { X(1, 1), X(PG + 2, 1), X(PGS(2) + 3, 1), X(PGS(3) + 4, 1) } },
};

/* Applies @w to @dst (a mapping or an image); @orig is the file. */
static void apply_wr(uint8_t *dst, const uint8_t *orig, const struct wr *w)
{
	uint32_t i;

	switch (w->kind) {
	case W_END:
		break;
	case W_FILL:
		memset(dst + w->off, w->val, w->len);
		break;
	case W_NOT:
		for (i = 0; i < w->len; i++)
			dst[w->off + i] = ~orig[w->off + i];
		break;
	case W_ORIG:
		memcpy(dst + w->off, orig + w->off, w->len);
		break;
	case W_DATA:
		memcpy(dst + w->off, w->data, w->len);
		break;
	case W_STRIDE:
		for (i = 0; i < w->len; i++)
			dst[w->off + (uint64_t)i * w->stride] =
				~orig[w->off + (uint64_t)i * w->stride];
		break;
	}
}

/*
 * Checks a buffer of records against the expected list: offsets, lengths,
 * old bytes from @old_img, new bytes from @new_img, seq from @seq0.
 */
static void check_records(struct __test_metadata *_metadata, const char *what,
			  const uint8_t *buf, size_t used,
			  const struct xrec *x, size_t nx, uint64_t seq0,
			  const uint8_t *old_img, const uint8_t *new_img)
{
	struct cm_rec r;
	size_t pos = 0, i = 0;
	char why[64];
	int ret;

	while ((ret = cm_rec_next(buf, used, &pos, &r, why)) == 1) {
		if (i >= nx) {
			TH_LOG("%s: unexpected record %zu at %llu+%u", what, i,
			       (unsigned long long)r.offset, r.length);
			EXPECT_GT(nx, i);
			i++;
			continue;
		}
		EXPECT_EQ(x[i].off, r.offset) TH_LOG("%s: record %zu", what, i);
		EXPECT_EQ(x[i].len, r.length) TH_LOG("%s: record %zu", what, i);
		EXPECT_EQ(seq0 + i, r.seq) TH_LOG("%s: record %zu", what, i);
		EXPECT_EQ(0, r.flags) TH_LOG("%s: record %zu", what, i);
		if (r.offset == x[i].off && r.length == x[i].len) {
			EXPECT_EQ(-1, first_diff(r.old, old_img + r.offset, r.length))
				TH_LOG("%s: record %zu old bytes", what, i);
			EXPECT_EQ(-1, first_diff(r.new, new_img + r.offset, r.length))
				TH_LOG("%s: record %zu new bytes", what, i);
		}
		i++;
	}
	EXPECT_EQ(0, ret) TH_LOG("%s: %s", what, why);
	EXPECT_EQ(nx, i) TH_LOG("%s: %zu records, want %zu", what, i, nx);
}

TEST_F(fs, diff_exact)
{
	for (size_t c = 0; c < ARRAY_SIZE(diff_cases); c++) {
		const struct diff_case *dc = &diff_cases[c];
		uint8_t *final, *diff1 = NULL, *diff2 = NULL, *m, *img, *recs;
		bool touched[FS_PAGES] = { false };
		size_t nx = 0, used1 = 0, used2 = 0, rlen = 0;
		uint32_t records1 = 0, records2 = 0, hlen, npages = 0;
		uint64_t want_used = 0;
		struct cowmap_drain dr;
		struct cowmap_info in;
		char *logp, name[32];
		int dev, lfd;

		while (nx < ARRAY_SIZE(dc->x) && dc->x[nx].len) {
			want_used += COWMAP_LOG_REC_SIZE(dc->x[nx].len);
			nx++;
		}
		final = copy_of(_metadata, self->orig, FS_SIZE);

		dev = cm_session(self->fd, -1, 0);
		ASSERT_LE(0, dev);
		m = map_rw(_metadata, dev, FS_SIZE);
		for (size_t k = 0; k < ARRAY_SIZE(dc->w) && dc->w[k].kind; k++) {
			const struct wr *w = &dc->w[k];
			uint64_t last = w->kind == W_STRIDE ?
				w->off + (uint64_t)(w->len - 1) * w->stride :
				w->off + w->len - 1;

			apply_wr(m, self->orig, w);
			apply_wr(final, self->orig, w);
			for (uint64_t p = w->off / PG; p <= last / PG; p++)
				touched[p] = true;
		}
		for (int p = 0; p < FS_PAGES; p++)
			npages += touched[p];

		/* The session sees what it wrote; the file is unchanged. */
		EXPECT_EQ(-1, first_diff(m, final, FS_SIZE)) TH_LOG("%s", dc->name);
		EXPECT_TRUE(file_is(self->fd, self->orig, FS_SIZE)) TH_LOG("%s", dc->name);
		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(npages, in.private_pages) TH_LOG("%s", dc->name);
		EXPECT_EQ(npages, in.cow_faults) TH_LOG("%s", dc->name);

		/* DIFF: exact records; a second DIFF gives the same bytes. */
		ASSERT_EQ(1, cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF, &diff1,
					 &used1, &records1));
		EXPECT_EQ(nx, records1) TH_LOG("%s", dc->name);
		EXPECT_EQ(want_used, used1) TH_LOG("%s", dc->name);
		check_records(_metadata, dc->name, diff1, used1, dc->x, nx, 0,
			      self->orig, final);
		ASSERT_EQ(1, cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF, &diff2,
					 &used2, &records2));
		EXPECT_EQ(used1, used2) TH_LOG("%s: second DIFF", dc->name);
		if (used1 == used2) {
			EXPECT_EQ(0, memcmp(diff1, diff2, used1))
				TH_LOG("%s: second DIFF differs", dc->name);
		}

		/* DRAIN into a new log: the same records, byte for byte. */
		snprintf(name, sizeof(name), "diff-%zu.log", c);
		logp = cm_path(self->dir, name);
		lfd = open(logp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		ASSERT_LE(0, lfd);
		ASSERT_EQ(0, cm_drain(dev, lfd, &dr));
		EXPECT_EQ(nx, dr.records) TH_LOG("%s", dc->name);
		EXPECT_EQ(used1, dr.bytes) TH_LOG("%s", dc->name);
		close(lfd);
		recs = log_records(logp, &rlen, &hlen);
		ASSERT_NE(NULL, recs);
		EXPECT_EQ(used1, rlen) TH_LOG("%s", dc->name);
		if (used1 == rlen) {
			EXPECT_EQ(0, memcmp(recs, diff1, used1))
				TH_LOG("%s: drained records differ from DIFF's", dc->name);
		}
		img = copy_of(_metadata, self->orig, FS_SIZE);
		EXPECT_EQ((long)nx, apply_log(_metadata, logp, img, FS_SIZE, NULL));
		EXPECT_EQ(-1, first_diff(img, final, FS_SIZE)) TH_LOG("%s", dc->name);

		/* Drained: DIFF is empty now, the view is unchanged. */
		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(0, in.undrained_pages) TH_LOG("%s", dc->name);
		EXPECT_EQ(npages, in.private_pages) TH_LOG("%s", dc->name);
		free(diff2);
		ASSERT_EQ(1, cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF, &diff2,
					 &used2, &records2));
		EXPECT_EQ(0, records2) TH_LOG("%s: DIFF after DRAIN", dc->name);
		EXPECT_EQ(-1, first_diff(m, final, FS_SIZE)) TH_LOG("%s", dc->name);

		munmap(m, FS_SIZE);
		close(dev);
		free(img);
		free(recs);
		free(logp);
		free(diff2);
		free(diff1);
		free(final);
	}
}

/* The diff is against the page as copied, not the file's current bytes. */
TEST_F(fs, diff_against_base_not_file)
{
	static const char later[] = "written to the file after the copy";
	uint8_t *m, *diff = NULL, *img, *final;
	size_t used = 0;
	uint32_t records = 0;
	struct xrec x[] = { { 10, 1 } };
	char *logp = cm_path(self->dir, "base.log");
	int dev, lfd;

	dev = logged_session(_metadata, self->fd, logp, &lfd);
	m = map_rw(_metadata, dev, FS_SIZE);
	m[10] = 'S';

	/* Someone changes the file, in the copied page and in another. */
	ASSERT_EQ(0, cm_write_all(self->fd, later, sizeof(later), 5));
	ASSERT_EQ(0, cm_write_all(self->fd, later, sizeof(later), 3000));
	ASSERT_EQ(0, cm_write_all(self->fd, later, sizeof(later), PGS(2) + 5));

	/* The session keeps its copy; other pages follow the file. */
	EXPECT_EQ('S', m[10]);
	EXPECT_EQ(self->orig[5], m[5]);
	EXPECT_EQ(-1, first_diff(m + 3000, self->orig + 3000, sizeof(later)));
	EXPECT_EQ(0, memcmp(m + PGS(2) + 5, later, sizeof(later)));

	final = copy_of(_metadata, self->orig, FS_SIZE);
	final[10] = 'S';
	ASSERT_EQ(1, cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF, &diff, &used,
				 &records));
	EXPECT_EQ(1, records);
	check_records(_metadata, "after the file changed", diff, used, x, 1, 0,
		      self->orig, final);

	/* Drained (at close) the same way: old bytes are the base's. */
	munmap(m, FS_SIZE);
	close(dev);
	close(lfd);
	img = copy_of(_metadata, self->orig, FS_SIZE);
	EXPECT_EQ(1, apply_log(_metadata, logp, img, FS_SIZE, NULL));
	EXPECT_EQ(-1, first_diff(img, final, FS_SIZE));
	free(img);
	free(final);
	free(diff);
	free(logp);
}

/*
 * A log applied to a copy of the original gives what the test wrote (the
 * same scribbles applied to a copy), as does the view.
 */
TEST_F(fs, log_reproduces_view)
{
	uint8_t *m, *view, *img, *want;
	struct cowmap_log_info li;
	struct cowmap_drain dr;
	char *logp = cm_path(self->dir, "view.log");
	long n;
	int dev, lfd;

	dev = logged_session(_metadata, self->fd, logp, &lfd);
	m = map_rw(_metadata, dev, FS_SIZE);

	/* The same scribbles on a copy of the file: what the view must be. */
	want = copy_of(_metadata, self->orig, FS_SIZE);
	scribble(want, 11, FS_PAGES, 0);
	scribble(want, 11, FS_PAGES, 1);
	scribble(want, 12, FS_PAGES, 0);

	scribble(m, 11, FS_PAGES, 0);
	ASSERT_EQ(0, cm_drain(dev, -1, &dr));
	scribble(m, 11, FS_PAGES, 1);
	ASSERT_EQ(0, cm_drain(dev, -1, &dr));
	scribble(m, 12, FS_PAGES, 0);
	EXPECT_EQ(-1, first_diff(m, want, FS_SIZE));
	view = view_of(dev, FS_SIZE);
	ASSERT_NE(NULL, view);
	EXPECT_EQ(-1, first_diff(view, want, FS_SIZE));
	munmap(m, FS_SIZE);
	close(dev);	/* the last changes go to the log now */
	close(lfd);

	img = copy_of(_metadata, self->orig, FS_SIZE);
	n = apply_log(_metadata, logp, img, FS_SIZE, &li);
	EXPECT_LT(0, n);
	EXPECT_EQ(-1, first_diff(img, want, FS_SIZE))
		TH_LOG("the log replayed differs from the scribbles at byte %ld",
		       first_diff(img, want, FS_SIZE));
	EXPECT_TRUE(file_is(self->fd, self->orig, FS_SIZE));
	free(img);
	free(view);
	free(want);
	free(logp);
}

/* ------------------------------------------------------------------------
 * FIXTURE(sess): a larger backing file on ext4
 */

#define S_PAGES		256
#define S_SIZE		PGS(S_PAGES)

FIXTURE(sess) {
	char *dir;
	char *path;
	uint8_t *orig;
	int fd;			/* O_RDWR */
	char saved_session[32];	/* module parameters to restore */
	char saved_total[32];
	bool params_changed;
	char *mnt;		/* a small tmpfs mounted by a test */
};

static void fill_sess_file(uint8_t *buf, size_t len)
{
	cm_fill(3, buf, len);
}

FIXTURE_SETUP(sess)
{
	const char *scratch, *why;

	self->fd = -1;
	CM_SKIP_IF_NO_DEVICE();
	scratch = cm_scratch_dir("COWMAP_SCRATCH", &why);
	if (!scratch)
		CM_SETUP_SKIP("$COWMAP_SCRATCH %s: no ext4 scratch directory", why);
	if (sysconf(_SC_PAGESIZE) != PG)
		CM_SETUP_SKIP("the tests assume %lu-byte pages", PG);
	BACKING_SETUP(self, scratch, S_SIZE, fill_sess_file);
}

static void restore_params(FIXTURE_DATA(sess) *self)
{
	if (!self->params_changed)
		return;
	cm_param_write("max_session_pages", self->saved_session);
	cm_param_write("max_total_pages", self->saved_total);
	self->params_changed = false;
}

/* The parameters read back as they were before the test. */
static void check_params(struct __test_metadata *_metadata,
			 FIXTURE_DATA(sess) *self)
{
	char now[32];

	ASSERT_EQ(0, cm_param_read("max_session_pages", now, sizeof(now)));
	EXPECT_STREQ(self->saved_session, now);
	ASSERT_EQ(0, cm_param_read("max_total_pages", now, sizeof(now)));
	EXPECT_STREQ(self->saved_total, now);
}

FIXTURE_TEARDOWN(sess)
{
	restore_params(self);
	if (self->mnt) {
		umount2(self->mnt, MNT_DETACH);
		free(self->mnt);
	}
	backing_teardown(self->fd, self->dir, self->path, self->orig);
}

static char *new_log(FIXTURE_DATA(sess) *self, const char *name, int *fdp)
{
	char *p = cm_path(self->dir, name);

	*fdp = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	return p;
}

/* ------------------------------------------------------------------------
 * Events
 */

TEST_F(sess, event_read_sizes)
{
	struct cowmap_event ev[4];
	uint8_t buf[4 * sizeof(struct cowmap_event)];
	int dev = cm_session(self->fd, -1, 0);
	volatile uint8_t *m;

	ASSERT_LE(0, dev);
	ASSERT_EQ(40, sizeof(struct cowmap_event));
	/* Too small, ring empty: EINVAL, not EAGAIN or a block. */
	for (size_t len = 0; len < sizeof(struct cowmap_event); len += 13) {
		errno = 0;
		EXPECT_EQ(-1, read(dev, buf, len)) TH_LOG("len %zu", len);
		EXPECT_EQ(EINVAL, errno) TH_LOG("len %zu", len);
	}

	m = map_rw(_metadata, dev, S_SIZE);
	for (int i = 0; i < 3; i++)
		m[PGS(i)] ^= 1;

	/* Too small, events pending: EINVAL and nothing consumed. */
	for (size_t len = 0; len < sizeof(struct cowmap_event); len++) {
		errno = 0;
		EXPECT_EQ(-1, read(dev, buf, len)) TH_LOG("len %zu", len);
		EXPECT_EQ(EINVAL, errno) TH_LOG("len %zu", len);
	}
	/* Whole records only. */
	EXPECT_EQ(40, read(dev, buf, 79));
	memcpy(ev, buf, 40);
	EXPECT_EQ(1, ev[0].seq);
	EXPECT_EQ(0, ev[0].offset);
	EXPECT_EQ(40, read(dev, buf, 40));
	memcpy(ev, buf, 40);
	EXPECT_EQ(2, ev[0].seq);
	EXPECT_EQ(PG, ev[0].offset);
	EXPECT_EQ(40, read(dev, buf, sizeof(buf)));
	memcpy(ev, buf, 40);
	EXPECT_EQ(3, ev[0].seq);
	EXPECT_EQ(PGS(2), ev[0].offset);
	munmap((void *)m, S_SIZE);
	close(dev);
}

TEST_F(sess, event_nonblock_and_poll)
{
	struct pollfd pfd;
	struct cowmap_event ev[8];
	int dev = cm_session(self->fd, -1, 0);
	volatile uint8_t *m;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, cm_set_nonblock(dev, true));
	pfd = (struct pollfd){ .fd = dev, .events = POLLIN };
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(-EAGAIN, cm_events(dev, ev, 8));

	m = map_rw(_metadata, dev, S_SIZE);
	(void)m[PGS(5)];	/* a read: no event */
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	m[PGS(5)] = 1;
	m[PGS(6)] = 1;
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL));
	EXPECT_EQ(2, cm_events(dev, ev, 8));
	EXPECT_EQ(PGS(5), ev[0].offset);
	EXPECT_EQ(PGS(6), ev[1].offset);
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(-EAGAIN, cm_events(dev, ev, 8));
	munmap((void *)m, S_SIZE);
	close(dev);
}

struct writer_arg {
	volatile uint8_t *m;
	uint64_t off;
	int delay_ms;
	pid_t tid;
};

static void *writer_thread(void *p)
{
	struct writer_arg *a = p;

	a->tid = gettid();
	usleep(a->delay_ms * 1000);
	a->m[a->off] ^= 0xff;
	return NULL;
}

/* A blocked read(2), and a blocked poll(2), wake up on another thread's write. */
TEST_F(sess, event_blocking_wakeup)
{
	struct writer_arg a;
	struct cowmap_event ev[4];
	struct pollfd pfd;
	pthread_t t;
	uint64_t t0, dt;
	int dev = cm_session(self->fd, -1, 0);
	volatile uint8_t *m;

	ASSERT_LE(0, dev);
	m = map_rw(_metadata, dev, S_SIZE);

	a = (struct writer_arg){ .m = m, .off = PGS(9) + 1, .delay_ms = 300 };
	ASSERT_EQ(0, pthread_create(&t, NULL, writer_thread, &a));
	t0 = cm_now_ns();
	ASSERT_EQ(1, cm_events(dev, ev, 4));
	dt = cm_now_ns() - t0;
	pthread_join(t, NULL);
	EXPECT_LE(200000000ULL, dt) TH_LOG("read returned after %llu ns",
					   (unsigned long long)dt);
	EXPECT_EQ(COWMAP_EVENT_COW, ev[0].type);
	EXPECT_EQ(PGS(9), ev[0].offset);
	EXPECT_EQ((uint32_t)getpid(), ev[0].tgid);
	EXPECT_EQ((uint32_t)a.tid, ev[0].tid);
	EXPECT_NE((uint32_t)gettid(), ev[0].tid);

	a = (struct writer_arg){ .m = m, .off = PGS(10), .delay_ms = 300 };
	pfd = (struct pollfd){ .fd = dev, .events = POLLIN };
	ASSERT_EQ(0, pthread_create(&t, NULL, writer_thread, &a));
	t0 = cm_now_ns();
	EXPECT_EQ(1, poll(&pfd, 1, 10000));
	dt = cm_now_ns() - t0;
	pthread_join(t, NULL);
	EXPECT_LE(200000000ULL, dt);
	EXPECT_TRUE(pfd.revents & POLLIN);
	ASSERT_EQ(1, cm_events(dev, ev, 4));
	EXPECT_EQ(PGS(10), ev[0].offset);
	EXPECT_EQ((uint32_t)a.tid, ev[0].tid);
	munmap((void *)m, S_SIZE);
	close(dev);
}

static void on_alarm(int sig)
{
	(void)sig;
}

TEST_F(sess, event_blocking_read_eintr)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct cowmap_event ev;
	int dev = cm_session(self->fd, -1, 0);

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	alarm(1);
	EXPECT_EQ(-EINTR, cm_events(dev, &ev, 1));
	alarm(0);
	close(dev);
}

/* Ring of 16, 100 COWs: LOST(84), then the last 16 in order. */
TEST_F(sess, ring_overflow)
{
	static const struct {
		const char *name;
		size_t per_read;
	} cases[] = {
		{ "one read", 256 },
		{ "one event per read", 1 },
		{ "five events per read", 5 },
	};

	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		struct cowmap_event ev[256];
		struct cowmap_info in;
		size_t got = 0;
		int dev = cm_session(self->fd, -1, 16), n;
		volatile uint8_t *m;

		ASSERT_LE(0, dev);
		m = map_rw(_metadata, dev, S_SIZE);
		for (int i = 0; i < 100; i++)
			m[PGS(i) + i] = ~self->orig[PGS(i) + i];

		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(100, in.cow_faults);
		EXPECT_EQ(100, in.events);
		EXPECT_EQ(84, in.events_lost) TH_LOG("%s", cases[c].name);
		EXPECT_EQ(16, in.ring_size);

		ASSERT_EQ(0, cm_set_nonblock(dev, true));
		for (;;) {
			size_t max = 256 - got < cases[c].per_read ?
				     256 - got : cases[c].per_read;

			ASSERT_LT(0, max);
			n = cm_events(dev, ev + got, max);
			if (n <= 0)
				break;
			got += n;
		}
		EXPECT_EQ(-EAGAIN, n);
		ASSERT_EQ(17, got) TH_LOG("%s: %zu records", cases[c].name, got);
		EXPECT_EQ(COWMAP_EVENT_LOST, ev[0].type) TH_LOG("%s", cases[c].name);
		EXPECT_EQ(84, ev[0].count) TH_LOG("%s", cases[c].name);
		for (int i = 1; i < 17; i++) {
			EXPECT_EQ(COWMAP_EVENT_COW, ev[i].type)
				TH_LOG("%s: record %d", cases[c].name, i);
			EXPECT_EQ(84 + i, ev[i].seq)
				TH_LOG("%s: record %d", cases[c].name, i);
			EXPECT_EQ(PGS(83 + i), ev[i].offset)
				TH_LOG("%s: record %d", cases[c].name, i);
			EXPECT_EQ(0, ev[i].count);
			EXPECT_EQ((uint32_t)gettid(), ev[i].tid);
		}
		/* The count does not come back; new events read normally. */
		m[PGS(100)] ^= 1;
		EXPECT_EQ(1, cm_events(dev, ev, 4));
		EXPECT_EQ(COWMAP_EVENT_COW, ev[0].type);
		EXPECT_EQ(101, ev[0].seq);
		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(84, in.events_lost);
		munmap((void *)m, S_SIZE);
		close(dev);
	}
}

/* ------------------------------------------------------------------------
 * DIFF: resuming with a small buffer, limits, no consumption
 */

TEST_F(sess, diff_small_buffer_resumes)
{
	const uint64_t rec = COWMAP_LOG_REC_SIZE(PG);	/* a whole-page record */
	const uint32_t fit = COWMAP_DIFF_MIN_BUF / rec;
	uint8_t *buf = malloc(COWMAP_DIFF_MIN_BUF), *all, *final;
	struct xrec x[50];
	size_t used, total = 0;
	uint32_t records, calls = 0;
	uint64_t off = 0;
	int dev = cm_session(self->fd, -1, 0);
	uint8_t *m;

	ASSERT_NE(NULL, buf);
	ASSERT_LE(0, dev);
	m = map_rw(_metadata, dev, S_SIZE);
	final = copy_of(_metadata, self->orig, S_SIZE);
	/* 50 whole-page changes on every other page from page 3. */
	for (int i = 0; i < 50; i++) {
		uint64_t p = PGS(3 + 2 * i);

		for (uint64_t b = 0; b < PG; b++)
			final[p + b] = ~self->orig[p + b];
		memcpy(m + p, final + p, PG);
		x[i] = (struct xrec){ p, PG };
	}

	all = malloc(50 * rec);
	ASSERT_NE(NULL, all);
	while (off != COWMAP_DIFF_END) {
		struct cowmap_diff d = {
			.offset = off, .buf = (uintptr_t)buf,
			.buf_len = COWMAP_DIFF_MIN_BUF,
		};
		uint32_t want = 50 - calls * fit < fit ? 50 - calls * fit : fit;
		struct cm_rec r;
		size_t pos = 0;
		char why[64];

		ASSERT_EQ(0, cm_ioctl(dev, COWMAP_IOC_DIFF, &d));
		EXPECT_EQ(want, d.records) TH_LOG("call %u", calls);
		EXPECT_EQ(want * rec, d.used) TH_LOG("call %u", calls);
		/* seq counts from 0 in each call */
		ASSERT_EQ(1, cm_rec_next(buf, d.used, &pos, &r, why));
		EXPECT_EQ(0, r.seq);
		if (d.offset != COWMAP_DIFF_END) {
			/* Continue at the first page that did not fit. */
			EXPECT_EQ(x[(calls + 1) * fit].off, d.offset)
				TH_LOG("call %u", calls);
			ASSERT_LT(off, d.offset);
		} else {
			EXPECT_EQ(50, calls * fit + d.records);
		}
		ASSERT_GE(50 * rec, total + d.used);
		memcpy(all + total, buf, d.used);
		total += d.used;
		off = d.offset;
		ASSERT_GT(10, ++calls);
	}
	EXPECT_EQ((50 + fit - 1) / fit, calls);
	EXPECT_EQ(50 * rec, total);
	/* Records of different calls restart seq; compare each call's part. */
	for (size_t pos = 0, i = 0; pos < total; i++) {
		struct cm_rec r;
		char why[64];

		ASSERT_EQ(1, cm_rec_next(all, total, &pos, &r, why)) TH_LOG("%s", why);
		EXPECT_EQ(x[i].off, r.offset);
		EXPECT_EQ(PG, r.length);
		EXPECT_EQ(i % fit, r.seq);
		EXPECT_EQ(-1, first_diff(r.old, self->orig + r.offset, PG));
		EXPECT_EQ(-1, first_diff(r.new, final + r.offset, PG));
	}

	/* A buffer one record larger holds one more page. */
	free(buf);
	buf = malloc(COWMAP_DIFF_MIN_BUF + rec);
	ASSERT_NE(NULL, buf);
	do {
		struct cowmap_diff d = {
			.buf = (uintptr_t)buf, .buf_len = COWMAP_DIFF_MIN_BUF + rec,
		};

		ASSERT_EQ(0, cm_ioctl(dev, COWMAP_IOC_DIFF, &d));
		EXPECT_EQ(fit + 1, d.records);
		EXPECT_EQ(x[fit + 1].off, d.offset);
	} while (0);
	(void)records;
	(void)used;
	munmap(m, S_SIZE);
	close(dev);
	free(all);
	free(final);
	free(buf);
}

TEST_F(sess, diff_offset_and_end)
{
	static const struct {
		uint64_t offset, end;
		uint32_t records;
		uint64_t first;
	} cases[] = {
		{ 0, 0, 6, PGS(1) },
		{ PGS(10), PGS(12), 2, PGS(10) },	/* pages 10, 11 */
		{ PGS(10), PGS(11), 1, PGS(10) },
		{ PGS(11), PGS(12), 1, PGS(11) },
		{ PGS(2), PGS(10), 0, 0 },		/* nothing there */
		{ PGS(12), PGS(13), 0, 0 },
		{ PGS(13), 0, 3, PGS(20) },
		{ PGS(20), PGS(20) + 1, 1, PGS(20) },	/* end inside page 20 */
		{ PGS(100), 0, 1, PGS(255) },
		{ PGS(256), 0, 0, 0 },
	};
	uint8_t *buf = malloc(COWMAP_DIFF_MIN_BUF);
	static const int pages[] = { 1, 10, 11, 20, 30, 255 };
	int dev = cm_session(self->fd, -1, 0);
	volatile uint8_t *m;

	ASSERT_NE(NULL, buf);
	ASSERT_LE(0, dev);
	m = map_rw(_metadata, dev, S_SIZE);
	for (size_t i = 0; i < ARRAY_SIZE(pages); i++)
		m[PGS(pages[i]) + 17] ^= 0x80;
	/* Copied but unchanged pages give no record. */
	m[PGS(12)] = m[PGS(12)];
	m[PGS(40)] = m[PGS(40)];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cowmap_diff d = {
			.offset = cases[i].offset, .end = cases[i].end,
			.buf = (uintptr_t)buf, .buf_len = COWMAP_DIFF_MIN_BUF,
		};
		struct cm_rec r;
		size_t pos = 0;
		char why[64];

		ASSERT_EQ(0, cm_ioctl(dev, COWMAP_IOC_DIFF, &d)) TH_LOG("case %zu", i);
		EXPECT_EQ(cases[i].records, d.records) TH_LOG("case %zu", i);
		EXPECT_EQ(COWMAP_DIFF_END, d.offset) TH_LOG("case %zu", i);
		EXPECT_EQ(cases[i].records * COWMAP_LOG_REC_SIZE(1), d.used);
		if (cases[i].records) {
			ASSERT_EQ(1, cm_rec_next(buf, d.used, &pos, &r, why));
			EXPECT_EQ(cases[i].first + 17, r.offset) TH_LOG("case %zu", i);
		}
	}
	munmap((void *)m, S_SIZE);
	close(dev);
	free(buf);
}

/* ------------------------------------------------------------------------
 * DRAIN and logs
 */

TEST_F(sess, drain_bound_log)
{
	uint8_t *m, *diff = NULL, *recs, *img, *final;
	struct cowmap_log_info li;
	struct cowmap_drain dr;
	struct cowmap_info in;
	size_t used = 0, rlen = 0;
	uint32_t records = 0, hlen = 0;
	struct xrec x[1];
	off_t hsize;
	int dev, lfd;
	char *logp = new_log(self, "bound.log", &lfd);

	ASSERT_LE(0, lfd);
	dev = cm_session(self->fd, lfd, 0);
	ASSERT_LE(0, dev);
	hsize = cm_fsize(lfd);
	EXPECT_LE((off_t)sizeof(struct cowmap_log_header), hsize);
	EXPECT_EQ(0, hsize % 8);
	m = map_rw(_metadata, dev, S_SIZE);
	final = copy_of(_metadata, self->orig, S_SIZE);

	scribble(m, 21, 40, 0);
	scribble(final, 21, 40, 0);
	ASSERT_EQ(0, cm_info(dev, &in));
	ASSERT_LT(0, in.undrained_pages);
	ASSERT_EQ(1, cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF * 4, &diff, &used,
				 &records));
	ASSERT_LT(0, records);

	ASSERT_EQ(0, cm_drain(dev, -1, &dr));
	EXPECT_EQ(records, dr.records);
	EXPECT_EQ(in.undrained_pages, dr.pages);
	EXPECT_EQ(used, dr.bytes);
	EXPECT_EQ(hsize + (off_t)used, cm_fsize(lfd));
	recs = log_records(logp, &rlen, &hlen);
	ASSERT_NE(NULL, recs);
	EXPECT_EQ(hsize, hlen);
	EXPECT_EQ(used, rlen);
	if (used == rlen) {
		EXPECT_EQ(0, memcmp(recs, diff, used));
	}
	free(recs);
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(0, in.undrained_pages);
	EXPECT_LT(0, in.private_pages);
	EXPECT_EQ(-1, first_diff(m, final, S_SIZE));

	/* Nothing new: a second drain appends nothing. */
	ASSERT_EQ(0, cm_drain(dev, -1, &dr));
	EXPECT_EQ(0, dr.records);
	EXPECT_EQ(0, dr.pages);
	EXPECT_EQ(0, dr.bytes);
	EXPECT_EQ(hsize + (off_t)used, cm_fsize(lfd));

	/* A write after the drain: only it, against the drained value. */
	x[0] = (struct xrec){ PGS(300 % 40) + 123, 1 };
	{
		uint8_t drained = final[x[0].off];
		uint8_t *old_img = malloc(S_SIZE);
		size_t used2 = 0;
		uint32_t records2 = 0;
		uint8_t *diff2 = NULL;

		ASSERT_NE(NULL, old_img);
		memcpy(old_img, final, S_SIZE);
		m[x[0].off] = drained ^ 0x0f;
		final[x[0].off] = drained ^ 0x0f;
		ASSERT_EQ(1, cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF, &diff2,
					 &used2, &records2));
		check_records(_metadata, "after drain", diff2, used2, x, 1, 0,
			      old_img, final);
		ASSERT_EQ(0, cm_drain(dev, -1, &dr));
		EXPECT_EQ(1, dr.records);
		EXPECT_EQ(1, dr.pages);
		/* In the log, the record continues the numbering. */
		recs = log_records(logp, &rlen, &hlen);
		ASSERT_NE(NULL, recs);
		ASSERT_EQ(used + used2, rlen);
		check_records(_metadata, "log tail", recs + used, used2, x, 1,
			      records, old_img, final);
		free(recs);
		free(diff2);
		free(old_img);
	}

	/* libcowmap reads the log; applied, it gives the session's view. */
	img = copy_of(_metadata, self->orig, S_SIZE);
	EXPECT_EQ((long)records + 1, apply_log(_metadata, logp, img, S_SIZE, &li));
	EXPECT_EQ(-1, first_diff(img, final, S_SIZE));
	EXPECT_EQ(0, li.torn);
	EXPECT_EQ(records + 1, li.records);

	/* Closing appends nothing more: everything was drained. */
	munmap(m, S_SIZE);
	close(dev);
	EXPECT_EQ(hsize + (off_t)(used + COWMAP_LOG_REC_SIZE(1)), cm_fsize(lfd));
	EXPECT_TRUE(file_is(self->fd, self->orig, S_SIZE));
	close(lfd);
	free(img);
	free(final);
	free(diff);
	free(logp);
}

TEST_F(sess, drain_fd_new_files)
{
	uint8_t *m, *diff = NULL, *recs, *img, *final;
	struct cowmap_drain dr;
	size_t used = 0, rlen = 0;
	uint32_t records = 0, hlen = 0;
	int dev, dev2, a, b, c, d, bound;
	char *pa = new_log(self, "a.log", &a), *pb = new_log(self, "b.log", &b);
	char *pc = new_log(self, "c.log", &c), *pd = new_log(self, "d.log", &d);
	char *pbound = new_log(self, "bound.log", &bound);

	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_LE(0, c);
	ASSERT_LE(0, d);
	ASSERT_LE(0, bound);
	dev = cm_session(self->fd, -1, 0);
	ASSERT_LE(0, dev);
	m = map_rw(_metadata, dev, S_SIZE);
	final = copy_of(_metadata, self->orig, S_SIZE);
	scribble(m, 31, 20, 0);
	scribble(final, 31, 20, 0);

	/* No log bound: only DRAIN_FD works. */
	EXPECT_EQ(-EBADFD, cm_drain(dev, -1, &dr));
	ASSERT_EQ(1, cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF * 4, &diff, &used,
				 &records));
	ASSERT_EQ(0, cm_drain(dev, a, &dr));
	EXPECT_EQ(records, dr.records);
	EXPECT_EQ(used, dr.bytes);
	recs = log_records(pa, &rlen, &hlen);
	ASSERT_NE(NULL, recs);
	EXPECT_EQ(used, rlen);
	EXPECT_EQ((off_t)(hlen + used), cm_fsize(a));
	if (used == rlen) {
		EXPECT_EQ(0, memcmp(recs, diff, used));
	}
	free(recs);

	/* Drained: a second new log gets only a header. */
	ASSERT_EQ(0, cm_drain(dev, b, &dr));
	EXPECT_EQ(0, dr.records);
	EXPECT_EQ(0, dr.bytes);
	EXPECT_EQ((off_t)hlen, cm_fsize(b));

	/* New changes go to a third log, numbered from 0, old = drained. */
	do {
		/*
		 * Two bytes at the first byte the drain moved to the log: its
		 * old value must be the drained one, not the original.
		 */
		long at = first_diff(final, self->orig, S_SIZE);
		struct xrec x[1];
		uint8_t *old_img = malloc(S_SIZE);

		ASSERT_LE(0, at);
		if ((at & (PG - 1)) == PG - 1)
			at--;	/* records never span pages */
		x[0] = (struct xrec){ at, 2 };
		ASSERT_GT(PGS(20) - 2, at);
		ASSERT_NE(NULL, old_img);
		memcpy(old_img, final, S_SIZE);
		m[at] = final[at] ^ 0x40;
		m[at + 1] = final[at + 1] ^ 0x40;
		final[at] ^= 0x40;
		final[at + 1] ^= 0x40;
		ASSERT_EQ(0, cm_drain(dev, c, &dr));
		EXPECT_EQ(1, dr.records);
		recs = log_records(pc, &rlen, &hlen);
		ASSERT_NE(NULL, recs);
		check_records(_metadata, "third log", recs, rlen, x, 1, 0,
			      old_img, final);
		free(recs);
		free(old_img);
	} while (0);

	/* a + c applied in order give what the test wrote; b is empty. */
	img = copy_of(_metadata, self->orig, S_SIZE);
	EXPECT_EQ((long)records, apply_log(_metadata, pa, img, S_SIZE, NULL));
	EXPECT_EQ(0, apply_log(_metadata, pb, img, S_SIZE, NULL));
	EXPECT_EQ(1, apply_log(_metadata, pc, img, S_SIZE, NULL));
	EXPECT_EQ(-1, first_diff(img, final, S_SIZE));
	EXPECT_EQ(-1, first_diff(m, final, S_SIZE));
	munmap(m, S_SIZE);
	close(dev);

	/* With a bound log, DRAIN_FD goes to the new file only. */
	dev2 = cm_session(self->fd, bound, 0);
	ASSERT_LE(0, dev2);
	m = map_rw(_metadata, dev2, S_SIZE);
	m[7] ^= 1;
	ASSERT_EQ(0, cm_drain(dev2, d, &dr));
	EXPECT_EQ(1, dr.records);
	hlen = cm_fsize(bound);
	munmap(m, S_SIZE);
	close(dev2);
	/* ... and counts as drained: the final drain has nothing to add. */
	EXPECT_EQ(hlen, cm_fsize(bound));
	memcpy(img, self->orig, S_SIZE);
	EXPECT_EQ(1, apply_log(_metadata, pd, img, S_SIZE, NULL));
	EXPECT_EQ(self->orig[7] ^ 1, img[7]);

	close(a);
	close(b);
	close(c);
	close(d);
	close(bound);
	free(img);
	free(final);
	free(diff);
	free(pa);
	free(pb);
	free(pc);
	free(pd);
	free(pbound);
}

/*
 * The writer's part of drain_enospc_loses_nothing, as whoever runs it (no
 * ASSERT: it may run in a child).  A filler file leaves the log ~64 KiB;
 * the first drain fails with ENOSPC, the filler goes, the second drain
 * must complete the log.  The first @npages pages are inverted, and the
 * view must then be @want.  Returns 0, or the step that failed.
 */
static int enospc_writer(struct __test_metadata *_metadata, int fd,
			 const uint8_t *orig, const char *mnt, int lfd,
			 const uint8_t *want, int npages, bool make_room)
{
	char *filler = cm_path(mnt, "filler");
	struct cowmap_info in;
	uint8_t *m, *buf;
	int dev, ffd, err, ret = 0, passed = _metadata->passed;

	_metadata->passed = 1;	/* this call's own checks, restored below */
	buf = calloc(1, 448 << 10);
	ffd = open(filler, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (!buf || ffd < 0 || cm_write_all(ffd, buf, 448 << 10, 0)) {
		TH_LOG("filler: %s", strerror(errno));
		return 1;
	}
	close(ffd);
	dev = cm_session(fd, lfd, 0);
	if (dev < 0) {
		TH_LOG("bind: %s", strerror(-dev));
		return 2;
	}
	m = cm_map(dev, 0, S_SIZE, PROT_READ | PROT_WRITE);
	if (m == MAP_FAILED)
		return 3;
	for (int i = 0; i < npages; i++)
		for (uint64_t b = 0; b < PG; b++)
			m[PGS(i) + b] = ~orig[PGS(i) + b];
	EXPECT_EQ(-1, first_diff(m, want, S_SIZE)) TH_LOG("the view is not what was written");

	err = cm_drain(dev, -1, NULL);
	EXPECT_EQ(-ENOSPC, err) TH_LOG("drain into a full log: %s", strerror(-err));
	EXPECT_EQ(0, cm_info(dev, &in));
	/* At most 64 KiB of whole-page records got out: 7 pages. */
	EXPECT_LE(npages - 7, in.undrained_pages);
	EXPECT_EQ(npages, in.private_pages);

	if (make_room) {
		/* Room again: the next drain completes the log. */
		EXPECT_EQ(0, unlink(filler));
		err = cm_drain(dev, -1, NULL);
		EXPECT_EQ(0, err) TH_LOG("drain after making room: %s",
					 strerror(-err));
		EXPECT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(0, in.undrained_pages);
	}
	munmap(m, S_SIZE);
	close(dev);	/* the final drain: nothing left, or still no room */
	unlink(filler);
	free(buf);
	free(filler);
	if (!_metadata->passed)
		ret = 4;
	_metadata->passed &= passed;
	return ret;
}

/*
 * A drain that fails for lack of space loses nothing: the pages whose
 * records were not written keep their changes, and once there is room the
 * next drain appends them to a log that is still valid (a torn append must
 * not stay in the middle of the log).  Also when the session belongs to a
 * user who was given the log's fd but could not open its path.
 */
TEST_F(sess, drain_enospc_loses_nothing)
{
	static const struct {
		const char *name;
		uid_t uid;
		bool make_room;
	} cases[] = {
		{ "log opened by the writer", 0, true },
		{ "log fd given to uid 1000 (file mode 0600, root's)", 1000, true },
		{ "still no room at the final drain", 0, false },
	};
	const int npages = 40;	/* ~330 KB of records */

	/* uid 1000 must reach the small filesystem (to make room on it). */
	ASSERT_EQ(0, chmod(self->dir, 0711));
	self->mnt = cm_path(self->dir, "small");
	ASSERT_EQ(0, mkdir(self->mnt, 0755));
	if (mount("cowmap-test", self->mnt, "tmpfs", 0, "size=512k,mode=0777")) {
		free(self->mnt);
		self->mnt = NULL;
		SKIP(return, "cannot mount a small tmpfs: %s", strerror(errno));
	}

	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		struct cowmap_log_info li;
		uint8_t *want, *img;
		char name[32], *logp;
		long n;
		int lfd, st, ret;
		pid_t pid;

		snprintf(name, sizeof(name), "log-%zu", c);
		logp = cm_path(self->mnt, name);
		lfd = open(logp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		ASSERT_LE(0, lfd);
		/* What the writer writes: its first npages pages inverted. */
		want = copy_of(_metadata, self->orig, S_SIZE);
		for (uint64_t b = 0; b < PGS(npages); b++)
			want[b] = ~self->orig[b];

		if (!cases[c].uid) {
			ret = enospc_writer(_metadata, self->fd, self->orig,
					    self->mnt, lfd, want, npages,
					    cases[c].make_room);
		} else {
			pid = fork();
			ASSERT_LE(0, pid);
			if (!pid) {
				if (setresgid(cases[c].uid, cases[c].uid, cases[c].uid) ||
				    setresuid(cases[c].uid, cases[c].uid, cases[c].uid))
					_exit(100);
				_exit(enospc_writer(_metadata, self->fd, self->orig,
						    self->mnt, lfd, want, npages,
						    cases[c].make_room));
			}
			st = cm_wait(pid);
			ret = WIFEXITED(st) ? WEXITSTATUS(st) : 200;
		}
		EXPECT_EQ(0, ret) TH_LOG("%s: writer failed at step %d",
					 cases[c].name, ret);
		close(lfd);

		img = copy_of(_metadata, self->orig, S_SIZE);
		n = apply_log(_metadata, logp, img, S_SIZE, &li);
		EXPECT_EQ(0, li.torn) TH_LOG("%s", cases[c].name);
		if (cases[c].make_room) {
			EXPECT_EQ(npages, n)
				TH_LOG("%s: the log is not complete and valid",
				       cases[c].name);
			EXPECT_EQ(-1, first_diff(img, want, S_SIZE))
				TH_LOG("%s: changes lost: first difference at byte %ld",
				       cases[c].name, first_diff(img, want, S_SIZE));
		} else {
			/* Valid, with the pages that fitted (whole ones). */
			EXPECT_LE(0, n) TH_LOG("%s: the log is not valid",
					       cases[c].name);
			EXPECT_GE(7, n);
			EXPECT_EQ(0, n >= 0 ? memcmp(img, want, PGS(n)) : 0);
			EXPECT_EQ(0, n >= 0 ? memcmp(img + PGS(n), self->orig + PGS(n),
						     S_SIZE - PGS(n)) : 0);
		}
		unlink(logp);
		free(img);
		free(want);
		free(logp);
	}
	umount2(self->mnt, MNT_DETACH);
	free(self->mnt);
	self->mnt = NULL;
}

struct busy_writer {
	uint8_t *m;
	int npages;
	volatile int stop;
	unsigned long stores;
};

#define BUSY_SEED	77

/*
 * The writer's next store, drawn from *@s: a whole aligned 8-byte store or
 * a single byte.  The same function replays the stores on an image, so the
 * test knows every byte the writer left.
 */
static void busy_store(volatile uint8_t *dst, int npages, uint64_t *s)
{
	uint64_t r = cm_rand(s);
	uint64_t off = PGS(r % npages) + ((r >> 20) % (PG / 8)) * 8;

	if (r & (1ULL << 63))
		*(volatile uint64_t *)(dst + off) = cm_rand(s);
	else
		dst[off + (r >> 40) % 8] = (uint8_t)r;
}

static void *busy_writer_fn(void *p)
{
	struct busy_writer *w = p;
	uint64_t s = BUSY_SEED;

	while (!w->stop) {
		busy_store(w->m, w->npages, &s);
		w->stores++;
	}
	return NULL;
}

/*
 * Drains racing with a writer thread: every store lands in exactly one
 * drain, so the log, replayed, is the final view (each record's old bytes
 * are checked against the replay so far).  The expected image is the
 * writer's stores replayed on a copy of the file: the writer is
 * deterministic, only the number of stores depends on the timing.
 */
TEST_F_TIMEOUT(sess, drain_while_writing, 120)
{
	struct busy_writer w = { .npages = 24 };
	struct cowmap_log_info li;
	struct cowmap_drain dr;
	uint8_t *want, *img;
	uint64_t s = BUSY_SEED;
	pthread_t t;
	int dev, lfd, drains = 0;
	char *logp = new_log(self, "busy.log", &lfd);
	uint64_t t0;

	ASSERT_LE(0, lfd);
	dev = cm_session(self->fd, lfd, 0);
	ASSERT_LE(0, dev);
	w.m = cm_map(dev, 0, S_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, w.m);
	ASSERT_EQ(0, pthread_create(&t, NULL, busy_writer_fn, &w));
	t0 = cm_now_ns();
	while (cm_now_ns() - t0 < 2000000000ULL) {
		ASSERT_EQ(0, cm_drain(dev, -1, &dr));
		drains++;
		usleep(drains % 5 * 1000);
	}
	w.stop = 1;
	pthread_join(t, NULL);
	TH_LOG("%d drains, %lu stores", drains, w.stores);
	/* Enough stores that drains raced them. */
	EXPECT_LT(1000, w.stores);

	want = copy_of(_metadata, self->orig, S_SIZE);
	for (unsigned long i = 0; i < w.stores; i++)
		busy_store(want, w.npages, &s);
	EXPECT_EQ(-1, first_diff(w.m, want, S_SIZE))
		TH_LOG("the view differs from the writer's stores at byte %ld",
		       first_diff(w.m, want, S_SIZE));
	munmap(w.m, S_SIZE);
	close(dev);	/* the final drain takes the rest */
	close(lfd);

	img = copy_of(_metadata, self->orig, S_SIZE);
	EXPECT_LT(0, apply_log(_metadata, logp, img, S_SIZE, &li));
	EXPECT_EQ(-1, first_diff(img, want, S_SIZE))
		TH_LOG("replay differs from the writer's stores at byte %ld",
		       first_diff(img, want, S_SIZE));
	EXPECT_EQ(0, li.torn);
	free(img);
	free(want);
	free(logp);
}

/* Header fields, checked by hand and through libcowmap. */
TEST_F(sess, log_header)
{
	char *logp, *logp2, *real, comm[32] = "";
	const struct cowmap_log_header *h;
	struct cowmap_log_info li;
	struct cowmap_bind b;
	struct stat st;
	uint64_t t0, t1;
	size_t len, plen;
	uint8_t *log;
	int dev, lfd, lfd2, cfd;

	logp = new_log(self, "header.log", &lfd);
	logp2 = new_log(self, "header2.log", &lfd2);
	ASSERT_LE(0, lfd);
	ASSERT_LE(0, lfd2);
	real = realpath(self->path, NULL);
	ASSERT_NE(NULL, real);
	plen = strlen(real);
	ASSERT_EQ(0, fstat(self->fd, &st));

	/* Opened under one name, bound under another: the header has the binder's. */
	dev = cm_open_dev();
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, prctl(PR_SET_NAME, "cm-hdr\n\x01name"));
	cfd = open("/proc/self/comm", O_RDONLY);
	ASSERT_LE(0, cfd);
	memset(comm, 0, sizeof(comm));
	ASSERT_LT(0, read(cfd, comm, sizeof(comm) - 1));
	close(cfd);
	comm[strlen(comm) - 1] = 0;	/* the newline /proc adds */
	t0 = cm_now_ns();
	ASSERT_EQ(0, cm_bind(dev, self->fd, lfd, COWMAP_BIND_LOG, 0, &b));
	t1 = cm_now_ns();
	/* The file grows after the bind: the header keeps the bind-time size. */
	ASSERT_EQ(0, cm_write_all(self->fd, "tail", 4, S_SIZE));

	for (int i = 0; i < 2; i++) {
		const char *p = i ? logp2 : logp;

		if (i)	/* a log made by DRAIN_FD carries the same header */
			ASSERT_EQ(0, cm_drain(dev, lfd2, NULL));
		log = cm_slurp(p, &len);
		ASSERT_NE(NULL, log);
		ASSERT_LE(sizeof(*h), len);
		h = (const void *)log;
		EXPECT_EQ(0, memcmp(h->magic, COWMAP_LOG_MAGIC, 8));
		EXPECT_EQ(COWMAP_LOG_VERSION, le32toh(h->version));
		EXPECT_EQ(sizeof(*h) + ((plen + 7) & ~7UL), le32toh(h->header_len));
		EXPECT_EQ(len, le32toh(h->header_len)) TH_LOG("log %d: no records yet", i);
		EXPECT_EQ((uint64_t)st.st_dev, le64toh(h->dev));
		EXPECT_EQ((uint64_t)st.st_ino, le64toh(h->ino));
		EXPECT_EQ(S_SIZE, le64toh(h->size));
		EXPECT_EQ(b.id, le64toh(h->session_id));
		EXPECT_LE(t0, le64toh(h->bind_time_ns));
		EXPECT_GE(t1, le64toh(h->bind_time_ns));
		EXPECT_EQ((uint32_t)getpid(), le32toh(h->pid));
		EXPECT_EQ((uint32_t)getuid(), le32toh(h->uid));
		EXPECT_EQ(0, strncmp((const char *)h->comm, comm, 16))
			TH_LOG("comm '%.16s', want '%s'", h->comm, comm);
		for (size_t k = strnlen((const char *)h->comm, 16); k < 16; k++) {
			EXPECT_EQ(0, h->comm[k]);
		}
		EXPECT_EQ(plen, le32toh(h->path_len));
		EXPECT_EQ(0, le32toh(h->flags));
		EXPECT_EQ(0, le32toh(h->reserved));
		if (len >= sizeof(*h) + ((plen + 7) & ~7UL)) {
			EXPECT_EQ(0, memcmp(log + sizeof(*h), real, plen))
				TH_LOG("path '%.*s', want '%s'", (int)plen,
				       log + sizeof(*h), real);
			for (size_t k = sizeof(*h) + plen; k < le32toh(h->header_len); k++) {
				EXPECT_EQ(0, log[k]) TH_LOG("padding byte %zu", k);
			}
			EXPECT_EQ(cm_crc32c_skip(log, le32toh(h->header_len),
						 offsetof(struct cowmap_log_header, crc)),
				  le32toh(h->crc));
		}

		memset(&li, 0, sizeof(li));
		EXPECT_EQ(0, apply_log(_metadata, p, self->orig, S_SIZE, &li));
		EXPECT_EQ((uint64_t)st.st_dev, li.dev);
		EXPECT_EQ((uint64_t)st.st_ino, li.ino);
		EXPECT_EQ(S_SIZE, li.size);
		EXPECT_EQ(b.id, li.session_id);
		EXPECT_EQ((uint32_t)getpid(), li.pid);
		EXPECT_STREQ(comm, li.comm);
		EXPECT_STREQ(real, li.path);
		EXPECT_EQ(0, li.records);
		EXPECT_EQ(0, li.torn);
		free(log);
	}
	close(dev);
	close(lfd);
	close(lfd2);
	free(real);
	free(logp);
	free(logp2);
}

/* ------------------------------------------------------------------------
 * The final drain: the last user goes away without draining
 */

enum end_mode {
	END_SIGKILL,		/* killed while mapped and open */
	END_SIGKILL_DRAINED,	/* drained half way, then killed */
	END_EXIT,		/* _exit() without drain, munmap or close */
	END_CRASH,		/* SIGSEGV */
	END_CLOSE_MUNMAP,	/* close + munmap while alive */
	END_CLOSE_THEN_KILL,	/* fd closed, still mapped, then killed */
};

static const struct {
	const char *name;
	enum end_mode mode;
} end_cases[] = {
	{ "SIGKILL", END_SIGKILL },
	{ "drain, more writes, SIGKILL", END_SIGKILL_DRAINED },
	{ "exit without drain", END_EXIT },
	{ "SIGSEGV", END_CRASH },
	{ "close and munmap", END_CLOSE_MUNMAP },
	{ "close, then SIGKILL while mapped", END_CLOSE_THEN_KILL },
};

#define END_PAGES	200

static void end_child(int fd, int lfd, int pipe_w, enum end_mode mode)
{
	struct rlimit no_core = { 0, 0 };
	uint8_t *m;
	int dev;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	setrlimit(RLIMIT_CORE, &no_core);
	dev = cm_session(fd, lfd, 0);
	if (dev < 0)
		_exit(10);
	close(lfd);
	m = cm_map(dev, 0, S_SIZE, PROT_READ | PROT_WRITE);
	if (m == MAP_FAILED)
		_exit(11);
	scribble(m, 41, END_PAGES, 0);
	if (mode == END_SIGKILL_DRAINED) {
		if (cm_drain(dev, -1, NULL))
			_exit(12);
		scribble(m, 41, END_PAGES, 1);
	}
	switch (mode) {
	case END_EXIT:
		_exit(0);
	case END_CRASH: {
		volatile int *volatile bad = NULL;

		*bad = 1;
		_exit(13);
	}
	case END_CLOSE_MUNMAP:
		close(dev);
		munmap(m, S_SIZE);
		break;
	case END_CLOSE_THEN_KILL:
		close(dev);
		break;
	default:
		break;
	}
	if (write(pipe_w, "R", 1) != 1)
		_exit(14);
	for (;;)
		pause();
}

TEST_F(sess, final_drain)
{
	for (size_t c = 0; c < ARRAY_SIZE(end_cases); c++) {
		enum end_mode mode = end_cases[c].mode;
		struct cowmap_log_info li;
		uint8_t *want, *img;
		char name[32], *logp, r;
		int lfd, p[2], st;
		off_t hsize;
		long n;
		pid_t pid;

		snprintf(name, sizeof(name), "final-%zu.log", c);
		logp = new_log(self, name, &lfd);
		ASSERT_LE(0, lfd);
		ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			close(p[0]);
			end_child(self->fd, lfd, p[1], mode);
		}
		close(p[1]);

		want = malloc(S_SIZE);
		img = malloc(S_SIZE);
		ASSERT_NE(NULL, want);
		ASSERT_NE(NULL, img);
		memcpy(want, self->orig, S_SIZE);
		scribble(want, 41, END_PAGES, 0);
		if (mode == END_SIGKILL_DRAINED)
			scribble(want, 41, END_PAGES, 1);

		if (mode != END_EXIT && mode != END_CRASH) {
			ASSERT_EQ(1, read(p[0], &r, 1))
				TH_LOG("%s: the child died early", end_cases[c].name);
			if (mode == END_CLOSE_MUNMAP) {
				/* Last user gone: the log is complete already. */
				memcpy(img, self->orig, S_SIZE);
				EXPECT_LT(0, apply_log(_metadata, logp, img,
						       S_SIZE, NULL));
				EXPECT_EQ(-1, first_diff(img, want, S_SIZE))
					TH_LOG("%s: log incomplete while the "
					       "child lives", end_cases[c].name);
			}
			if (mode == END_CLOSE_THEN_KILL) {
				/* Still mapped: nothing drained yet. */
				memcpy(img, self->orig, S_SIZE);
				EXPECT_EQ(0, apply_log(_metadata, logp, img,
						       S_SIZE, NULL));
			}
			kill(pid, SIGKILL);
		}
		close(p[0]);
		st = cm_wait(pid);
		switch (mode) {
		case END_EXIT:
			EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st))
				TH_LOG("%s: status %#x", end_cases[c].name, st);
			break;
		case END_CRASH:
			EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV)
				TH_LOG("%s: status %#x", end_cases[c].name, st);
			break;
		default:
			EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
				TH_LOG("%s: status %#x", end_cases[c].name, st);
		}

		/* Every change is in the log once the child is reaped. */
		memcpy(img, self->orig, S_SIZE);
		n = apply_log(_metadata, logp, img, S_SIZE, &li);
		EXPECT_LT(0, n) TH_LOG("%s", end_cases[c].name);
		EXPECT_EQ(-1, first_diff(img, want, S_SIZE))
			TH_LOG("%s: first difference at byte %ld", end_cases[c].name,
			       first_diff(img, want, S_SIZE));
		EXPECT_EQ((uint32_t)pid, li.pid);
		EXPECT_NE(0, li.session_id);
		EXPECT_EQ(0, li.torn);
		hsize = cm_fsize(lfd);
		EXPECT_EQ((off_t)li.valid_end, hsize);
		EXPECT_TRUE(file_is(self->fd, self->orig, S_SIZE))
			TH_LOG("%s: the backing file changed", end_cases[c].name);
		close(lfd);
		free(img);
		free(want);
		free(logp);
	}
}

/* ------------------------------------------------------------------------
 * DISCARD
 */

TEST_F(sess, discard)
{
	struct cowmap_event ev[32];
	struct cowmap_info in;
	uint8_t *diff = NULL;
	size_t used = 0;
	uint32_t records = 0;
	uint64_t pages;
	int dev = cm_session(self->fd, -1, 0), n;
	volatile uint8_t *m;

	ASSERT_LE(0, dev);
	m = map_rw(_metadata, dev, S_SIZE);
	for (int i = 0; i < 8; i++)
		m[PGS(i) + 5] = 'a' + i;
	/* Someone else writes page 3 of the file. */
	ASSERT_EQ(0, cm_write_all(self->fd, "OTHER", 5, PGS(3) + 100));

	ASSERT_EQ(0, cm_discard(dev, PGS(2), PGS(3), 0, &pages));
	EXPECT_EQ(3, pages);
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(5, in.private_pages);
	EXPECT_EQ(5, in.undrained_pages);
	EXPECT_EQ(8, in.cow_faults);
	EXPECT_EQ(8, in.events);
	/* Pages 2..4 show the file again (with the other writer's bytes). */
	for (int i = 0; i < 8; i++) {
		uint8_t want = i >= 2 && i <= 4 ? self->orig[PGS(i) + 5] : 'a' + i;

		EXPECT_EQ(want, m[PGS(i) + 5]) TH_LOG("page %d", i);
	}
	EXPECT_EQ(0, memcmp((uint8_t *)m + PGS(3) + 100, "OTHER", 5));
	EXPECT_EQ(-1, first_diff((uint8_t *)m + PGS(2), self->orig + PGS(2), PG));

	/* Events are not affected. */
	ASSERT_EQ(0, cm_set_nonblock(dev, true));
	n = cm_events(dev, ev, 32);
	ASSERT_EQ(8, n);
	for (int i = 0; i < 8; i++) {
		EXPECT_EQ(PGS(i), ev[i].offset);
	}

	/* A later write copies again, from the file's current page. */
	m[PGS(3) + 6] = ~self->orig[PGS(3) + 6];
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(6, in.private_pages);
	EXPECT_EQ(9, in.cow_faults);
	EXPECT_EQ(9, in.events);
	ASSERT_EQ(1, cm_events(dev, ev, 32));
	EXPECT_EQ(PGS(3), ev[0].offset);
	EXPECT_EQ(9, ev[0].seq);
	EXPECT_EQ(0, memcmp((uint8_t *)m + PGS(3) + 100, "OTHER", 5));
	ASSERT_EQ(1, cm_diff_all(dev, PGS(3), PGS(4), COWMAP_DIFF_MIN_BUF, &diff,
				 &used, &records));
	EXPECT_EQ(1, records);	/* only byte 6: the base has "OTHER" */
	free(diff);

	/* A range with no private pages drops nothing. */
	ASSERT_EQ(0, cm_discard(dev, PGS(100), PGS(50), 0, &pages));
	EXPECT_EQ(0, pages);

	/* Everything. */
	ASSERT_EQ(0, cm_discard(dev, 0, 0, COWMAP_RANGE_ALL, &pages));
	EXPECT_EQ(6, pages);
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(0, in.private_pages);
	EXPECT_EQ(0, in.undrained_pages);
	EXPECT_EQ(9, in.cow_faults);
	EXPECT_EQ(9, in.events);
	do {
		/* The file as the test wrote it: the original and "OTHER". */
		uint8_t *now = malloc(S_SIZE);

		ASSERT_NE(NULL, now);
		memcpy(now, self->orig, S_SIZE);
		memcpy(now + PGS(3) + 100, "OTHER", 5);
		EXPECT_EQ(-1, first_diff((uint8_t *)m, now, S_SIZE));
		EXPECT_TRUE(file_is(self->fd, now, S_SIZE));
		free(now);
	} while (0);
	ASSERT_EQ(1, cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF, &diff, &used,
				 &records));
	EXPECT_EQ(0, records);
	free(diff);
	EXPECT_EQ(-EAGAIN, cm_events(dev, ev, 32));

	/* And writes copy again. */
	m[0] = 'q';
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(1, in.private_pages);
	EXPECT_EQ(10, in.cow_faults);
	munmap((void *)m, S_SIZE);
	close(dev);
}

/* ------------------------------------------------------------------------
 * Caps
 */

static void save_params(struct __test_metadata *_metadata,
			FIXTURE_DATA(sess) *self)
{
	if (cm_param_read("max_session_pages", self->saved_session,
			  sizeof(self->saved_session)) ||
	    cm_param_read("max_total_pages", self->saved_total,
			  sizeof(self->saved_total)))
		SKIP(return, "cannot read the module parameters");
	if (access(MODPARAM_DIR "max_session_pages", W_OK) ||
	    access(MODPARAM_DIR "max_total_pages", W_OK))
		SKIP(return, "the module parameters are not writable (not root)");
	self->params_changed = true;
}

/*
 * Child: write one byte to pages [@first, @first + @count) in order, with
 * *@done = pages written so far.  Dies of SIGBUS at the cap.
 */
static void cap_child(int dev, uint64_t first, int count, bool read_first,
		      volatile int *done)
{
	volatile uint8_t *m = cm_map(dev, 0, S_SIZE, PROT_READ | PROT_WRITE);

	if (m == MAP_FAILED)
		_exit(20);
	if (read_first) {
		for (int i = 0; i < count; i++)
			(void)m[PGS(first + i)];
	}
	for (int i = 0; i < count; i++) {
		m[PGS(first + i) + 1] ^= 0x33;
		*done = i + 1;
	}
	_exit(0);
}

static pid_t run_cap_child(int dev, uint64_t first, int count, bool read_first,
			   volatile int *done, int *status)
{
	pid_t pid = fork();

	if (!pid)
		cap_child(dev, first, count, read_first, done);
	*status = pid > 0 ? cm_wait(pid) : -1;
	return pid;
}

TEST_F(sess, cap_session)
{
	static const struct {
		const char *name;
		bool read_first;
	} cases[] = {
		{ "write faults", false },
		{ "read, then write", true },
	};
	const int N = 8;
	volatile int *done;

	save_params(_metadata, self);
	if (!self->params_changed)
		return;
	done = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, done);

	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		struct cowmap_event ev[32];
		struct cowmap_info in;
		uint64_t pages;
		volatile uint8_t *m;
		int dev, dev2, st, n;
		pid_t pid;

		ASSERT_EQ(0, cm_param_write_u64("max_session_pages", N));
		dev = cm_session(self->fd, -1, 0);
		ASSERT_LE(0, dev);
		*done = -1;
		pid = run_cap_child(dev, 0, N + 1, cases[c].read_first, done, &st);
		ASSERT_LT(0, pid);
		EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS)
			TH_LOG("%s: status %#x after %d pages", cases[c].name, st, *done);
		EXPECT_EQ(N, *done) TH_LOG("%s", cases[c].name);

		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(N, in.private_pages) TH_LOG("%s", cases[c].name);
		EXPECT_EQ(N, in.cow_faults) TH_LOG("%s", cases[c].name);
		ASSERT_EQ(0, cm_set_nonblock(dev, true));
		n = cm_events(dev, ev, 32);
		ASSERT_EQ(N + 1, n) TH_LOG("%s", cases[c].name);
		for (int i = 0; i < N; i++) {
			EXPECT_EQ(COWMAP_EVENT_COW, ev[i].type);
			EXPECT_EQ(PGS(i), ev[i].offset);
			EXPECT_EQ((uint32_t)pid, ev[i].tgid);
		}
		EXPECT_EQ(COWMAP_EVENT_CAP, ev[N].type) TH_LOG("%s", cases[c].name);
		EXPECT_EQ(PGS(N), ev[N].offset) TH_LOG("%s", cases[c].name);
		EXPECT_EQ((uint32_t)pid, ev[N].tgid);
		EXPECT_EQ((uint32_t)pid, ev[N].tid);

		/* Reads are not capped, nor writes to private pages. */
		m = map_rw(_metadata, dev, S_SIZE);
		EXPECT_EQ(self->orig[PGS(N) + 1], m[PGS(N) + 1]);
		EXPECT_EQ(self->orig[PGS(N + 50)], m[PGS(N + 50)]);
		for (int i = 0; i < N; i++)
			m[PGS(i) + 2] = 'p';
		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(N, in.cow_faults);

		/* Another session has its own allowance. */
		dev2 = cm_session(self->fd, -1, 0);
		ASSERT_LE(0, dev2);
		pid = run_cap_child(dev2, 20, N, false, done, &st);
		EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st))
			TH_LOG("%s: second session: status %#x", cases[c].name, st);
		close(dev2);

		/* Discarding makes room. */
		ASSERT_EQ(0, cm_discard(dev, 0, PG, 0, &pages));
		EXPECT_EQ(1, pages);
		m[PGS(N)] ^= 1;
		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(N, in.private_pages);

		/*
		 * Raised again (the saved value: no cap, 0, in the VM): the
		 * session takes 4 more private pages past N, in a child that
		 * a cap would kill with SIGBUS.
		 */
		ASSERT_EQ(0, cm_param_write("max_session_pages", self->saved_session));
		if (strtoull(self->saved_session, NULL, 10) == 0 ||
		    strtoull(self->saved_session, NULL, 10) >= N + 4) {
			*done = -1;
			pid = run_cap_child(dev, N + 1, 4, cases[c].read_first, done, &st);
			ASSERT_LT(0, pid);
			EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st))
				TH_LOG("%s: raised again: status %#x after %d pages",
				       cases[c].name, st, *done);
			EXPECT_EQ(4, *done) TH_LOG("%s", cases[c].name);
			ASSERT_EQ(0, cm_info(dev, &in));
			EXPECT_EQ(N + 4, in.private_pages) TH_LOG("%s", cases[c].name);
		}
		munmap((void *)m, S_SIZE);
		close(dev);
	}
	restore_params(self);
	check_params(_metadata, self);
	munmap((void *)done, PG);
}

/*
 * Defaults: no per-session cap, a per-uid cap of RAM/16 and a global cap of
 * RAM/8 private pages (each holds two pages of memory).
 */
TEST_F(sess, cap_defaults)
{
	unsigned long long total_kb = 0;
	char line[256], v[32];
	FILE *f;

	ASSERT_EQ(0, cm_param_read("max_session_pages", v, sizeof(v)));
	EXPECT_STREQ("0", v);
	f = fopen("/proc/meminfo", "re");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &total_kb) == 1)
			break;
	fclose(f);
	ASSERT_LT(0, total_kb);
	ASSERT_EQ(0, cm_param_read("max_total_pages", v, sizeof(v)));
	EXPECT_EQ(total_kb / (PG / 1024) / 8, strtoull(v, NULL, 10))
		TH_LOG("max_total_pages %s, MemTotal %llu kB", v, total_kb);
	ASSERT_EQ(0, cm_param_read("max_user_pages", v, sizeof(v)));
	EXPECT_EQ(total_kb / (PG / 1024) / 16, strtoull(v, NULL, 10))
		TH_LOG("max_user_pages %s, MemTotal %llu kB", v, total_kb);
}

TEST_F(sess, cap_total)
{
	const int N = 8, A = 5;
	struct cowmap_event ev[32];
	struct cowmap_info in;
	uint64_t base = 0, pages;
	volatile uint8_t *ma;
	volatile int *done;
	int deva, devb, st, n;
	pid_t pid;

	save_params(_metadata, self);
	if (!self->params_changed)
		return;
	done = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, done);
	ASSERT_EQ(0, cm_nl_stat(COWMAP_STATS_A_PRIVATE_PAGES, &base))
		TH_LOG("netlink GET_STATS failed");

	ASSERT_EQ(0, cm_param_write("max_session_pages", "0"));
	ASSERT_EQ(0, cm_param_write_u64("max_total_pages", base + N));
	deva = cm_session(self->fd, -1, 0);
	devb = cm_session(self->fd, -1, 0);
	ASSERT_LE(0, deva);
	ASSERT_LE(0, devb);
	ma = map_rw(_metadata, deva, S_SIZE);
	for (int i = 0; i < A; i++)
		ma[PGS(i)] ^= 1;

	*done = -1;
	pid = run_cap_child(devb, 10, N, false, done, &st);
	ASSERT_LT(0, pid);
	EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) TH_LOG("status %#x", st);
	EXPECT_EQ(N - A, *done);
	ASSERT_EQ(0, cm_info(devb, &in));
	EXPECT_EQ(N - A, in.private_pages);
	ASSERT_EQ(0, cm_info(deva, &in));
	EXPECT_EQ(A, in.private_pages);
	ASSERT_EQ(0, cm_set_nonblock(devb, true));
	n = cm_events(devb, ev, 32);
	ASSERT_EQ(N - A + 1, n);
	EXPECT_EQ(COWMAP_EVENT_CAP, ev[N - A].type);
	EXPECT_EQ(PGS(10 + N - A), ev[N - A].offset);
	EXPECT_EQ((uint32_t)pid, ev[N - A].tgid);
	/* Session A is at the cap too now. */
	pid = run_cap_child(deva, 100, 1, false, done, &st);
	EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) TH_LOG("status %#x", st);

	/* Two pages discarded in A: B gets exactly two more. */
	ASSERT_EQ(0, cm_discard(deva, 0, PGS(2), 0, &pages));
	EXPECT_EQ(2, pages);
	pid = run_cap_child(devb, 10 + N - A, 3, false, done, &st);
	EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) TH_LOG("status %#x", st);
	EXPECT_EQ(2, *done);
	ASSERT_EQ(0, cm_info(devb, &in));
	EXPECT_EQ(N - A + 2, in.private_pages);

	restore_params(self);
	check_params(_metadata, self);
	munmap((void *)ma, S_SIZE);
	close(devb);
	close(deva);
	munmap((void *)done, PG);
}

/* ------------------------------------------------------------------------
 * COWMAP_IOC_INFO
 */

TEST_F(sess, info_fields)
{
	struct cowmap_info in, in2;
	struct cowmap_bind b, b2;
	struct stat st;
	uint64_t t0, t1;
	int dev, dev2, lfd;
	char *logp = new_log(self, "info.log", &lfd);

	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, fstat(self->fd, &st));
	dev = cm_open_dev();
	ASSERT_LE(0, dev);
	t0 = cm_now_ns();
	ASSERT_EQ(0, cm_bind(dev, self->fd, lfd, COWMAP_BIND_LOG, 64, &b));
	t1 = cm_now_ns();
	EXPECT_NE(0, b.id);
	EXPECT_EQ(S_SIZE, b.size);

	memset(&in, 0xa5, sizeof(in));
	ASSERT_EQ(0, cm_ioctl(dev, COWMAP_IOC_INFO, &in));
	EXPECT_EQ(b.id, in.id);
	EXPECT_EQ((uint64_t)st.st_dev, in.dev);
	EXPECT_EQ((uint64_t)st.st_ino, in.ino);
	EXPECT_EQ(S_SIZE, in.size);
	EXPECT_EQ(S_SIZE, in.cur_size);
	EXPECT_EQ(0, in.private_pages);
	EXPECT_EQ(0, in.undrained_pages);
	EXPECT_EQ(0, in.cow_faults);
	EXPECT_EQ(0, in.events);
	EXPECT_EQ(0, in.events_lost);
	EXPECT_EQ(0, in.mapped_bytes);
	EXPECT_LE(t0, in.bind_time_ns);
	EXPECT_GE(t1, in.bind_time_ns);
	EXPECT_EQ(getuid(), in.owner_uid);
	EXPECT_EQ(64, in.ring_size);
	EXPECT_EQ(COWMAP_BIND_LOG, in.flags);
	for (int i = 0; i < 5; i++) {
		EXPECT_EQ(0, in.reserved[i]);
	}

	/* Another session: another id, same file identity. */
	dev2 = cm_open_dev();
	ASSERT_LE(0, dev2);
	ASSERT_EQ(0, cm_bind(dev2, self->fd, -1, 0, 0, &b2));
	ASSERT_EQ(0, cm_info(dev2, &in2));
	EXPECT_NE(b.id, b2.id);
	EXPECT_EQ(b2.id, in2.id);
	EXPECT_EQ(in.dev, in2.dev);
	EXPECT_EQ(in.ino, in2.ino);
	EXPECT_EQ(COWMAP_RING_DEFAULT, in2.ring_size);
	EXPECT_EQ(0, in2.flags);
	close(dev2);
	close(dev);
	close(lfd);
	free(logp);
}

TEST_F(sess, info_mapped_bytes)
{
	struct cowmap_info in;
	int dev = cm_session(self->fd, -1, 0), dev2;
	uint8_t *m1, *m2;

	ASSERT_LE(0, dev);
	m1 = cm_map(dev, 0, PGS(16), PROT_READ);
	ASSERT_NE(MAP_FAILED, m1);
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(PGS(16), in.mapped_bytes);
	m2 = cm_map(dev, PGS(20), PGS(4), PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m2);
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(PGS(20), in.mapped_bytes);

	/* Another session's mappings are its own. */
	dev2 = cm_session(self->fd, -1, 0);
	ASSERT_LE(0, dev2);
	ASSERT_EQ(0, cm_info(dev2, &in));
	EXPECT_EQ(0, in.mapped_bytes);
	close(dev2);

	ASSERT_EQ(0, munmap(m1 + PGS(4), PGS(2)));	/* a hole */
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(PGS(18), in.mapped_bytes);
	ASSERT_EQ(0, munmap(m1, PG));			/* the front */
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(PGS(17), in.mapped_bytes);
	ASSERT_EQ(0, munmap(m1 + PGS(15), PG));		/* the back */
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(PGS(16), in.mapped_bytes);
	/* The remaining pieces still show the file. */
	EXPECT_EQ(-1, first_diff(m1 + PGS(6), self->orig + PGS(6), PGS(9)));
	ASSERT_EQ(0, munmap(m1, PGS(16)));
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(PGS(4), in.mapped_bytes);
	ASSERT_EQ(0, munmap(m2, PGS(4)));
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(0, in.mapped_bytes);
	close(dev);
}

TEST_F(sess, info_cur_size)
{
	struct cowmap_info in;
	int dev = cm_session(self->fd, -1, 0);

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, ftruncate(self->fd, S_SIZE + PGS(3)));
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(S_SIZE, in.size);
	EXPECT_EQ(S_SIZE + PGS(3), in.cur_size);
	ASSERT_EQ(0, cm_write_all(self->fd, "x", 1, S_SIZE + PGS(3) + 99));
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(S_SIZE, in.size);
	EXPECT_EQ(S_SIZE + PGS(3) + 100, in.cur_size);
	close(dev);
}

TEST_F(sess, info_undrained_pages)
{
	struct cowmap_info in;
	uint64_t pages;
	int dev = cm_session(self->fd, -1, 0), lfd, lfd2;
	char *p1 = new_log(self, "u1.log", &lfd), *p2 = new_log(self, "u2.log", &lfd2);
	volatile uint8_t *m;

	ASSERT_LE(0, dev);
	ASSERT_LE(0, lfd);
	ASSERT_LE(0, lfd2);
	m = map_rw(_metadata, dev, S_SIZE);
	m[PGS(1)] ^= 1;
	m[PGS(2)] ^= 1;
	m[PGS(3)] ^= 1;
	(void)m[PGS(4)];
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(3, in.undrained_pages);
	EXPECT_EQ(3, in.private_pages);
	ASSERT_EQ(0, cm_drain(dev, lfd, NULL));
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(0, in.undrained_pages);
	EXPECT_EQ(3, in.private_pages);
	m[PGS(2) + 1] ^= 1;		/* a drained page again */
	m[PGS(5)] ^= 1;			/* a new one */
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(2, in.undrained_pages);
	EXPECT_EQ(4, in.private_pages);
	ASSERT_EQ(0, cm_discard(dev, PGS(5), PG, 0, &pages));
	EXPECT_EQ(1, pages);
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(1, in.undrained_pages);
	EXPECT_EQ(3, in.private_pages);
	ASSERT_EQ(0, cm_drain(dev, lfd2, NULL));
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(0, in.undrained_pages);
	munmap((void *)m, S_SIZE);
	close(dev);
	close(lfd);
	close(lfd2);
	free(p1);
	free(p2);
}

/* The owner is the uid that made the session (root only: drops to 1000). */
TEST_F(sess, info_owner_uid)
{
	int st, lfd;
	char *logp = new_log(self, "owner.log", &lfd);
	pid_t pid;

	ASSERT_LE(0, lfd);
	if (geteuid()) {
		close(lfd);
		free(logp);
		SKIP(return, "needs root to switch to uid 1000");
	}
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct cowmap_info in;
		int dev;

		if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000))
			_exit(30);
		/* The backing and log fds were opened by root: passing them works. */
		dev = cm_session(self->fd, lfd, 0);
		if (dev < 0)
			_exit(31);
		if (cm_info(dev, &in))
			_exit(32);
		_exit(in.owner_uid == 1000 ? 0 : 33);
	}
	st = cm_wait(pid);
	EXPECT_TRUE(WIFEXITED(st)) TH_LOG("status %#x", st);
	EXPECT_EQ(0, WEXITSTATUS(st));
	do {
		struct cowmap_log_info li;

		EXPECT_EQ(0, apply_log(_metadata, logp, self->orig, S_SIZE, &li));
		EXPECT_EQ(1000, li.uid);
		EXPECT_EQ((uint32_t)pid, li.pid);
	} while (0);
	close(lfd);
	free(logp);
}

TEST_HARNESS_MAIN
