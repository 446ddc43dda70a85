// SPDX-License-Identifier: GPL-2.0
/*
 * cowmap and the rest of memory management.
 *
 * Checked against the uapi header, the README's semantics and the design
 * in kmod/fault.c and kmod/cowmap.h (locking and reference rules):
 *  - read pages are the backing file's page-cache pages (same PFN as a plain
 *    mmap), fault-around never maps one over a private offset; the first
 *    write makes exactly one private copy and zaps every other mapping;
 *  - 8 threads x 20,000 random faults: one copy per page, as many COW
 *    events, no torn or lost store;
 *  - fork and SCM_RIGHTS (the shared-memory lab's ping-pong) share the
 *    session;
 *  - VMA surgery: partial munmap, MAP_FIXED, mremap (congruent: EINVAL),
 *    MADV_DONTNEED, mprotect, madvise splits, random sequences of all of
 *    them (INFO.mapped_bytes stays exact), MADV_REMOVE, MADV_PAGEOUT,
 *    MADV_POPULATE_*, mlock, MADV_COLLAPSE, userfaultfd, soft-dirty;
 *  - others' changes to the backing file: write(2), O_DIRECT, truncate,
 *    fallocate, reflink, also while the session faults;
 *  - reclaim and migration: drop_caches, MADV_PAGEOUT, memory-cgroup
 *    pressure, soft offline; memcg charging of private pages;
 *  - GUP: /proc/self/mem, process_vm_writev, O_DIRECT on cowmap buffers,
 *    and O_DIRECT reads landing while the session is drained;
 *  - the module stays pinned while mapped (delete_module: EWOULDBLOCK);
 *  - no PMD-congruent mapping, even with PMD-sized folios (XFS).
 *
 * Backing files live in $COWMAP_SCRATCH (ext4); the "mm" fixture repeats the
 * filesystem-sensitive tests on $COWMAP_SCRATCH_XFS and
 * $COWMAP_SCRATCH_BTRFS.  A missing /dev/cowmap or scratch directory skips.
 * Several tests need root (pagemap PFNs, drop_caches, cgroups,
 * delete_module, MADV_SOFT_OFFLINE) and skip without it.
 */
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <endian.h>
#include <time.h>

#include <linux/userfaultfd.h>

#include "lib/mm.h"
#include "lib/util.h"
#include "cowmap_harness.h"
#include "cowmap_fs_variants.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define PS		MM_PAGE
#define MAX_KIDS	8

/* Per-test state, shared by both fixtures. */
struct mm_ctx {
	bool skip;
	const char *fs;
	char dir[256];
	char path[320];
	char path2[336];	/* a second file, when a test needs one */
	char path3[336];	/* a third one */
	int bfd;		/* backing file, O_RDWR */
	int cfd;		/* the session */
	pid_t kids[MAX_KIDS];	/* killed and reaped by the teardown */
	int nkids;
	char cgroup[384];	/* a memory cgroup to remove */
	char cgmount[128];	/* a cgroup2 mount of ours to undo */
};

static void ctx_setup(struct __test_metadata *_metadata, struct mm_ctx *m,
		     const char *env, const char *fs, long magic)
{
	const char *dir = getenv(env);
	struct statfs sfs;
	struct stat st;

	m->bfd = -1;
	m->cfd = -1;
	m->fs = fs;
	m->skip = true;
	if (access(COWMAP_DEVICE_PATH, F_OK)) {
		/* In the VM /init loaded the module: absent is a failure. */
		ASSERT_EQ(NULL, getenv("COWMAP_VM"))
			TH_LOG(COWMAP_DEVICE_PATH " is absent in the VM");
		SKIP(return, COWMAP_DEVICE_PATH " is absent: cowmap.ko not loaded");
	}
	if (!dir || !*dir)
		SKIP(return, "$%s is not set: no %s scratch directory", env, fs);
	if (strlen(dir) > 200)
		SKIP(return, "$%s is too long", env);
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		SKIP(return, "$%s=%s is not a directory", env, dir);
	if (access(dir, W_OK | X_OK))
		SKIP(return, "$%s=%s is not writable", env, dir);
	if (statfs(dir, &sfs) || (long)sfs.f_type != magic)
		SKIP(return, "$%s=%s is not %s (f_type %#lx)", env, dir, fs,
		     (long)sfs.f_type);
	snprintf(m->dir, sizeof(m->dir), "%s", dir);
	snprintf(m->path, sizeof(m->path), "%s/cowmap_mm.%d", dir, getpid());
	snprintf(m->path2, sizeof(m->path2), "%s.2", m->path);
	snprintf(m->path3, sizeof(m->path3), "%s.3", m->path);
	m->skip = false;
}

static void ctx_teardown(struct mm_ctx *m)
{
	for (int i = 0; i < m->nkids; i++) {
		if (m->kids[i] > 0) {
			kill(m->kids[i], SIGKILL);
			waitpid(m->kids[i], NULL, 0);
		}
	}
	if (m->cfd >= 0)
		close(m->cfd);
	if (m->bfd >= 0)
		close(m->bfd);
	if (m->path[0]) {
		unlink(m->path);
		unlink(m->path2);
		unlink(m->path3);
	}
	if (m->cgroup[0]) {
		char kill_file[448];

		/* A hog left behind by a failed test goes too (5.14+). */
		snprintf(kill_file, sizeof(kill_file), "%s/cgroup.kill", m->cgroup);
		write_text(kill_file, "1");
		for (int i = 0; i < 50 && rmdir(m->cgroup) && errno == EBUSY; i++)
			usleep(100 * 1000);
	}
	if (m->cgmount[0]) {
		umount2(m->cgmount, MNT_DETACH);
		rmdir(m->cgmount);
	}
}

/* Remember a child for the teardown; forget it once reaped. */
static void kid_add(struct mm_ctx *m, pid_t pid)
{
	if (m->nkids < MAX_KIDS)
		m->kids[m->nkids++] = pid;
}

static void kid_reaped(struct mm_ctx *m, pid_t pid)
{
	for (int i = 0; i < m->nkids; i++)
		if (m->kids[i] == pid)
			m->kids[i] = 0;
}

/* Create the backing file: @pages pages of pattern @seed, synced. */
static int mm_make_file(struct mm_ctx *m, uint64_t pages, uint32_t seed)
{
	int err;

	m->bfd = open(m->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (m->bfd < 0)
		return -errno;
	err = write_pat(m->bfd, seed, 0, pages);
	if (err)
		return err;
	return fsync(m->bfd) ? -errno : 0;
}

/* Backing file and a session bound to it. */
static int mm_make(struct mm_ctx *m, uint64_t pages, uint32_t seed,
		   uint32_t ring)
{
	int err = mm_make_file(m, pages, seed);

	if (err)
		return err;
	m->cfd = cm_session(m->bfd, -1, ring);
	return m->cfd < 0 ? m->cfd : 0;
}

/* Drop the clean page cache of the backing file. */
static void mm_evict(struct mm_ctx *m)
{
	fsync(m->bfd);
	posix_fadvise(m->bfd, 0, 0, POSIX_FADV_DONTNEED);
}

#define BEGIN(fixture_self)						\
	struct mm_ctx *m = &(fixture_self)->c;				\
	if (m->skip)							\
		return

#define MAKE(pages, seed)						\
	do {								\
		int _err = mm_make(m, pages, seed, 0);			\
		ASSERT_EQ(0, _err) TH_LOG("%s: backing file or session: %s", \
					  m->path, strerror(-_err));	\
	} while (0)

/* Map @pages pages of the session at file page @pg; asserts. */
#define MAP(var, pages, pg)						\
	do {								\
		var = mmap(NULL, (pages) * PS, PROT_READ | PROT_WRITE,	\
			   MAP_SHARED, m->cfd, (off_t)(pg) * PS);	\
		ASSERT_NE(MAP_FAILED, var) TH_LOG("mmap: %s",		\
						  strerror(errno));	\
	} while (0)

#define PAGE(base, i)	((volatile char *)(base) + (size_t)(i) * PS)

/* A backing file of @pages pages of pattern @seed, a session, @var its map. */
#define MAKE_MAP(var, pages, seed)					\
	do {								\
		MAKE(pages, seed);					\
		MAP(var, pages, 0);					\
	} while (0)

/* @var: a plain read-only shared mapping of the first @pages file pages. */
#define MAP_PLAIN(var, pages)						\
	do {								\
		var = mmap(NULL, (pages) * PS, PROT_READ, MAP_SHARED,	\
			   m->bfd, 0);					\
		ASSERT_NE(MAP_FAILED, var);				\
	} while (0)

/* @fd: another O_RDWR file description of the backing file. */
#define OPEN_OTHER(fd)							\
	do {								\
		fd = open(m->path, O_RDWR | O_CLOEXEC);			\
		ASSERT_LE(0, fd);					\
	} while (0)

/* Read-fault every page of a mapping. */
static void read_pages(const char *base, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++)
		(void)*PAGE(base, i);
}

/* The same for two mappings, page by page in turn. */
static void read_pages2(const char *a, const char *b, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++) {
		(void)*PAGE(a, i);
		(void)*PAGE(b, i);
	}
}

/* Page @i of mapping @base (file page @pg) shows file pattern @seed. */
#define ASSERT_FILE_PAGE(base, i, seed, pg)				\
	do {								\
		int _j = bad_pat(PAGE(base, i), seed, pg);		\
		ASSERT_EQ(-1, _j) TH_LOG("page %lu word %d: %#" PRIx64	\
			" is not file page %lu", (unsigned long)(i), _j,\
			((volatile uint64_t *)PAGE(base, i))[_j < 0 ? 0 : _j], \
			(unsigned long)(pg));				\
	} while (0)

#define ASSERT_PRIV_PAGE(base, i, tag, pg)				\
	do {								\
		int _j = bad_priv(PAGE(base, i), tag, pg);		\
		ASSERT_EQ(-1, _j) TH_LOG("page %lu word %d: %#" PRIx64	\
			" is not private page %lu/%u", (unsigned long)(i), _j, \
			((volatile uint64_t *)PAGE(base, i))[_j < 0 ? 0 : _j], \
			(unsigned long)(pg), (unsigned)(tag));		\
	} while (0)

#define ASSERT_ZERO_PAGE(base, i)					\
	do {								\
		int _j = bad_zero(PAGE(base, i));			\
		ASSERT_EQ(-1, _j) TH_LOG("page %lu word %d: %#" PRIx64	\
			" is not zero", (unsigned long)(i), _j,		\
			((volatile uint64_t *)PAGE(base, i))[_j < 0 ? 0 : _j]); \
	} while (0)

#define INFO(in)							\
	ASSERT_EQ(0, cm_info(m->cfd, &(in))) TH_LOG("INFO: %s", strerror(errno))

#define ASSERT_COWS(n)							\
	do {								\
		struct cowmap_info _in;					\
		INFO(_in);						\
		ASSERT_EQ((uint64_t)(n), _in.cow_faults);		\
		ASSERT_EQ((uint64_t)(n), _in.private_pages);		\
	} while (0)

#define ASSERT_FILE_INTACT(seed, pages)					\
	ASSERT_EQ(-1, file_bad_page(m->bfd, seed, 0, pages))		\
		TH_LOG("the backing file changed")

#define ASSERT_MAPPED_BYTES(n)						\
	do {								\
		struct cowmap_info _in;					\
		INFO(_in);						\
		ASSERT_EQ((uint64_t)(n), _in.mapped_bytes);		\
	} while (0)

static bool is_root(void)
{
	return geteuid() == 0;
}

/*
 * A debug kernel (KASAN, lockdep, kmemleak; "-cowmap-debug") under TCG is
 * about ten times slower: the longest tests do less there.
 * $COWMAP_MM_QUICK=1 asks for the same anywhere.
 */
static bool slow_kernel(void)
{
	static int slow = -1;
	struct utsname un;

	if (slow < 0) {
		const char *q = getenv("COWMAP_MM_QUICK");

		slow = (q && *q == '1') ||
		       (!uname(&un) && strstr(un.release, "debug"));
	}
	return slow;
}

/* ------------------------------------------------------------------------
 * Fixtures: "mm" repeats a test on ext4, XFS and btrfs; "ext4" runs it once.
 */
FIXTURE(mm) {
	struct mm_ctx c;
};

FIXTURE_VARIANT(mm) {
	COWMAP_FS_VARIANT_FIELDS;
};

COWMAP_FS_VARIANTS(mm);

FIXTURE_SETUP(mm)
{
	ctx_setup(_metadata, &self->c, variant->env, variant->name, variant->magic);
}

FIXTURE_TEARDOWN(mm)
{
	ctx_teardown(&self->c);
}

FIXTURE(ext4) {
	struct mm_ctx c;
};

FIXTURE_SETUP(ext4)
{
	ctx_setup(_metadata, &self->c, "COWMAP_SCRATCH", "ext4", MM_EXT4_MAGIC);
}

FIXTURE_TEARDOWN(ext4)
{
	ctx_teardown(&self->c);
}

/* ------------------------------------------------------------------------
 * Read pages are the page cache's; the first write copies.
 */
TEST_F(mm, read_pages_are_page_cache)
{
	const uint64_t pages = 16;
	uint64_t pfn_plain[16], pfn_cm, pfn_priv, e;
	struct cowmap_info in;
	char *c, *cc, *p, *c2;
	int cfd2;

	BEGIN(self);
	if (!is_root())
		SKIP(return, "pagemap PFNs need CAP_SYS_ADMIN");
	MAKE_MAP(c, pages, 1);
	MAP_PLAIN(p, pages);

	/* Every page: same content, same PFN through both mappings. */
	for (uint64_t i = 0; i < pages; i++) {
		ASSERT_FILE_PAGE(p, i, 1, i);
		ASSERT_FILE_PAGE(c, i, 1, i);
		pfn_plain[i] = pfn_of(PAGE(p, i));
		pfn_cm = pfn_of(PAGE(c, i));
		ASSERT_NE(0, pfn_plain[i]) TH_LOG("page %lu: no PFN", (unsigned long)i);
		ASSERT_EQ(pfn_plain[i], pfn_cm) TH_LOG("page %lu", (unsigned long)i);
	}
	/* Reading copies nothing. */
	INFO(in);
	ASSERT_EQ(0, in.cow_faults);
	ASSERT_EQ(0, in.private_pages);
	ASSERT_EQ(pages * PS, in.mapped_bytes);

	/* A second mapping of the session, page 3 mapped there too. */
	cc = mmap(NULL, pages * PS, PROT_READ, MAP_SHARED, m->cfd, 0);
	ASSERT_NE(MAP_FAILED, cc);
	ASSERT_FILE_PAGE(cc, 3, 1, 3);
	ASSERT_EQ(pfn_plain[3], pfn_of(PAGE(cc, 3)));

	/*
	 * The first write: a new page for the session only.  Page 3 is not
	 * mapped in @c (a write fault without a read), but is in @cc and @p:
	 * the copy must zap those.
	 */
	ASSERT_EQ(0, madvise(c + 3 * PS, PS, MADV_DONTNEED));
	((volatile uint64_t *)PAGE(c, 3))[1] = 0xabcdef;
	pfn_priv = pfn_of(PAGE(c, 3));
	ASSERT_NE(0, pfn_priv);
	ASSERT_NE(pfn_plain[3], pfn_priv);
	ASSERT_EQ(0xabcdef, ((volatile uint64_t *)PAGE(c, 3))[1]);
	ASSERT_EQ(pat_word(1, 3, 0), ((volatile uint64_t *)PAGE(c, 3))[0]);
	for (unsigned int j = 2; j < MM_WORDS; j++) {
		ASSERT_EQ(pat_word(1, 3, j), ((volatile uint64_t *)PAGE(c, 3))[j]);
	}
	ASSERT_COWS(1);

	/* The session's other mapping shows the copy, not the file. */
	ASSERT_EQ(0xabcdef, ((volatile uint64_t *)PAGE(cc, 3))[1]);
	ASSERT_EQ(pfn_priv, pfn_of(PAGE(cc, 3)));
	munmap(cc, pages * PS);

	/* The plain mapping keeps the same page-cache page and contents. */
	ASSERT_FILE_PAGE(p, 3, 1, 3);
	ASSERT_EQ(pfn_plain[3], pfn_of(PAGE(p, 3)));
	/* Neighbours are still shared. */
	ASSERT_EQ(pfn_plain[2], pfn_of(PAGE(c, 2)));
	ASSERT_EQ(pfn_plain[4], pfn_of(PAGE(c, 4)));

	/* More writes to the page: the same private page, no second copy. */
	((volatile uint64_t *)PAGE(c, 3))[2] = 0x1234;
	ASSERT_EQ(pfn_priv, pfn_of(PAGE(c, 3)));
	ASSERT_COWS(1);
	e = pagemap_entry(PAGE(c, 3));
	ASSERT_TRUE(e & PM_PRESENT);

	/* Another session of the same file sees the file. */
	cfd2 = cm_session(m->bfd, -1, 0);
	ASSERT_LE(0, cfd2);
	c2 = mmap(NULL, pages * PS, PROT_READ, MAP_SHARED, cfd2, 0);
	ASSERT_NE(MAP_FAILED, c2);
	ASSERT_FILE_PAGE(c2, 3, 1, 3);
	ASSERT_EQ(pfn_plain[3], pfn_of(PAGE(c2, 3)));
	munmap(c2, pages * PS);
	close(cfd2);

	ASSERT_FILE_INTACT(1, pages);
	munmap(p, pages * PS);
	munmap(c, pages * PS);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------
 * 8 threads x 20,000 random faults.
 */
#define RF_THREADS	8
#define RF_OPS		20000
#define RF_PAGES	512	/* 2 MiB */
#define RF_SEED		7

struct rf_shared {
	volatile uint64_t *map;
	_Atomic uint64_t written[RF_PAGES / 64];
	pthread_barrier_t start;
};

struct rf_thread {
	struct rf_shared *sh;
	pthread_t thr;
	unsigned int t;
	pid_t tid;
	uint64_t last[RF_PAGES];	/* last value stored in slot t, or 0 */
	long errors, writes, reads, zaps;
	char err[256];
};

static uint64_t rf_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Slot @t of page @pg holds a value thread @t stored there. */
static uint64_t rf_value(unsigned int t, uint64_t pg, uint32_t seq)
{
	return 0xF000000000000000ULL | (uint64_t)t << 52 | pg << 32 | seq;
}

static bool rf_is_value_of(uint64_t v, unsigned int t, uint64_t pg)
{
	return (v >> 60) == 0xF && ((v >> 52) & 0xF) == t &&
	       ((v >> 32) & 0xFFFFF) == pg;
}

static void rf_error(struct rf_thread *rt, const char *what, uint64_t pg,
		     unsigned int j, uint64_t got, uint64_t want)
{
	if (!rt->errors++)
		snprintf(rt->err, sizeof(rt->err),
			 "thread %u: %s: page %" PRIu64 " word %u: %#" PRIx64
			 " (want %#" PRIx64 ")", rt->t, what, pg, j, got, want);
}

static void *rf_thread_fn(void *arg)
{
	struct rf_thread *rt = arg;
	volatile uint64_t *map = rt->sh->map;
	uint64_t s = 0x9E3779B97F4A7C15ULL * (rt->t + 1);

	rt->tid = syscall(SYS_gettid);
	pthread_barrier_wait(&rt->sh->start);
	for (uint32_t op = 1; op <= RF_OPS; op++) {
		uint64_t r = rf_next(&s);
		uint64_t pg = r % RF_PAGES;
		unsigned int kind = (r >> 16) & 0x3ff;
		volatile uint64_t *w = map + pg * MM_WORDS;

		if (kind == 0) {
			/*
			 * Now and then zap 16 pages, so that faults go on
			 * happening: private pages refault from the session.
			 */
			madvise((void *)(map + (pg & ~15ULL) * MM_WORDS),
				16 * PS, MADV_DONTNEED);
			rt->zaps++;
		} else if (kind < 512 && pg % 4 != 3) {
			uint64_t v = rf_value(rt->t, pg, op), got;

			w[rt->t] = v;
			rt->last[pg] = v;
			atomic_fetch_or(&rt->sh->written[pg / 64], 1ULL << (pg % 64));
			got = w[rt->t];
			if (got != v)
				rf_error(rt, "write not read back", pg, rt->t, got, v);
			rt->writes++;
		} else {
			unsigned int u = (r >> 24) % RF_THREADS;
			unsigned int j = RF_THREADS + (r >> 32) % (MM_WORDS - RF_THREADS);
			uint64_t own = rt->last[pg] ? rt->last[pg] :
				       pat_word(RF_SEED, pg, rt->t);
			uint64_t got = w[rt->t];

			if (got != own)
				rf_error(rt, "own slot lost", pg, rt->t, got, own);
			got = w[j];
			if (got != pat_word(RF_SEED, pg, j))
				rf_error(rt, "unwritten word changed", pg, j, got,
					 pat_word(RF_SEED, pg, j));
			got = w[u];
			if (got != pat_word(RF_SEED, pg, u) && !rf_is_value_of(got, u, pg))
				rf_error(rt, "foreign slot torn", pg, u, got,
					 pat_word(RF_SEED, pg, u));
			rt->reads++;
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(mm, threads_random_faults, 240)
{
	static struct rf_thread rt[RF_THREADS];
	static struct cowmap_event ev[2 * RF_PAGES];
	struct rf_shared sh = { 0 };
	bool seen[RF_PAGES] = { false };
	long errors = 0;
	uint64_t written = 0;
	struct cowmap_info in;
	long n, cows = 0;
	double t0;
	void *c;

	BEGIN(self);
	ASSERT_EQ(0, mm_make(m, RF_PAGES, RF_SEED, 1024));
	MAP(c, RF_PAGES, 0);
	sh.map = c;
	ASSERT_EQ(0, pthread_barrier_init(&sh.start, NULL, RF_THREADS));
	t0 = now_s();
	for (unsigned int t = 0; t < RF_THREADS; t++) {
		memset(&rt[t], 0, sizeof(rt[t]));
		rt[t].sh = &sh;
		rt[t].t = t;
		ASSERT_EQ(0, pthread_create(&rt[t].thr, NULL, rf_thread_fn, &rt[t]));
	}
	for (unsigned int t = 0; t < RF_THREADS; t++) {
		ASSERT_EQ(0, pthread_join(rt[t].thr, NULL));
	}
	pthread_barrier_destroy(&sh.start);
	TH_LOG("%s: %d threads x %d operations in %.1f s", m->fs, RF_THREADS,
	       RF_OPS, now_s() - t0);

	for (unsigned int t = 0; t < RF_THREADS; t++) {
		EXPECT_EQ(0, rt[t].errors) TH_LOG("%ld errors, first: %s",
						  rt[t].errors, rt[t].err);
		errors += rt[t].errors;
	}
	ASSERT_EQ(0, errors);

	/* Final contents: exactly the last value each thread stored. */
	for (uint64_t pg = 0; pg < RF_PAGES; pg++) {
		volatile uint64_t *w = sh.map + pg * MM_WORDS;

		for (unsigned int j = 0; j < MM_WORDS; j++) {
			uint64_t want = pat_word(RF_SEED, pg, j);

			if (j < RF_THREADS && rt[j].last[pg])
				want = rt[j].last[pg];
			ASSERT_EQ(want, w[j]) TH_LOG("page %lu word %u",
						     (unsigned long)pg, j);
		}
		if (atomic_load(&sh.written[pg / 64]) & (1ULL << (pg % 64)))
			written++;
	}
	/* Every page with pg % 4 != 3 was written (~117 writes each). */
	ASSERT_EQ(RF_PAGES / 4 * 3, written);

	/* One copy per page written, one event per copy, nothing lost. */
	INFO(in);
	ASSERT_EQ(written, in.cow_faults);
	ASSERT_EQ(written, in.private_pages);
	ASSERT_EQ(written, in.events);
	ASSERT_EQ(0, in.events_lost);
	n = cm_events_all(m->cfd, ev, 2 * RF_PAGES);
	ASSERT_EQ((long)written, n);
	for (long i = 0; i < n; i++) {
		uint64_t pg = ev[i].offset / PS;
		bool ours = false;

		ASSERT_EQ(COWMAP_EVENT_COW, ev[i].type) TH_LOG("event %ld", i);
		ASSERT_EQ(0, ev[i].offset % PS);
		ASSERT_LT(pg, RF_PAGES);
		ASSERT_FALSE(seen[pg]) TH_LOG("page %lu copied twice",
					      (unsigned long)pg);
		seen[pg] = true;
		ASSERT_TRUE(atomic_load(&sh.written[pg / 64]) & (1ULL << (pg % 64)));
		ASSERT_EQ((uint32_t)getpid(), ev[i].tgid);
		for (unsigned int t = 0; t < RF_THREADS; t++)
			ours |= ev[i].tid == (uint32_t)rt[t].tid;
		ASSERT_TRUE(ours) TH_LOG("tid %u is none of the threads", ev[i].tid);
		ASSERT_EQ((uint64_t)i + 1, ev[i].seq);
		cows++;
	}
	ASSERT_EQ((long)written, cows);

	ASSERT_FILE_INTACT(RF_SEED, RF_PAGES);
	munmap(c, RF_PAGES * PS);
}

/* ------------------------------------------------------------------------
 * fork: the child maps the same session.
 */
static int wait_byte(int fd)
{
	char b;

	return read(fd, &b, 1) == 1 ? b : -1;
}

static void send_byte(int fd, char b)
{
	if (write(fd, &b, 1) != 1)
		_exit(99);
}

static const struct cowmap_event *find_cow(const struct cowmap_event *ev,
					   long n, uint64_t off)
{
	for (long i = 0; i < n; i++)
		if (ev[i].type == COWMAP_EVENT_COW && ev[i].offset == off)
			return &ev[i];
	return NULL;
}

/* @ev[0..@n) has a COW event of file offset @off by process @who: @e. */
#define ASSERT_COW_BY(e, ev, n, off, who)				\
	do {								\
		e = find_cow(ev, n, off);				\
		ASSERT_NE(NULL, e);					\
		ASSERT_EQ((uint32_t)(who), e->tgid);			\
	} while (0)

TEST_F(ext4, fork_shares_session)
{
	const uint64_t pages = 8;
	struct cowmap_event ev[16];
	const struct cowmap_event *e;
	int p2c[2], c2p[2], status;
	struct cowmap_info in;
	volatile uint64_t *w;
	pid_t pid;
	void *c;
	long n;

	BEGIN(self);
	MAKE_MAP(c, pages, 2);
	w = c;
	w[1 * MM_WORDS + 0] = 0xA1;		/* parent copies page 1 */
	read_pages(c, pages);
	ASSERT_TRUE(pte_present(PAGE(c, 1)));
	ASSERT_TRUE(pte_present(PAGE(c, 0)));
	ASSERT_COWS(1);
	ASSERT_EQ(0, pipe(p2c));
	ASSERT_EQ(0, pipe(c2p));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* No anon_vma, no PFNMAP: fork copies no page table. */
		for (uint64_t i = 0; i < pages; i++)
			if (pte_present(PAGE(c, i)))
				_exit(9);
		if (w[1 * MM_WORDS + 0] != 0xA1)
			_exit(10);
		if (w[1 * MM_WORDS + 5] != pat_word(2, 1, 5))
			_exit(11);
		w[1 * MM_WORDS + 1] = 0xB1;	/* already private: no copy */
		w[2 * MM_WORDS + 0] = 0xC2;	/* child copies page 2 */
		/* Map page 3's backing page here before the parent copies it. */
		if (w[3 * MM_WORDS + 0] != pat_word(2, 3, 0))
			_exit(16);
		send_byte(c2p[1], 'w');
		if (wait_byte(p2c[0]) != 'w')
			_exit(12);
		/* The parent's copy zapped our backing PTE of page 3. */
		if (w[3 * MM_WORDS + 0] != 0xD3)
			_exit(13);
		if (w[3 * MM_WORDS + 1] != pat_word(2, 3, 1))
			_exit(17);
		if (w[1 * MM_WORDS + 2] != 0xE1)	/* parent's write */
			_exit(14);
		if (w[4 * MM_WORDS + 0] != pat_word(2, 4, 0))
			_exit(15);
		_exit(0);
	}
	kid_add(m, pid);
	ASSERT_EQ('w', wait_byte(c2p[0]));
	ASSERT_EQ(0xB1, w[1 * MM_WORDS + 1]);
	ASSERT_EQ(0xC2, w[2 * MM_WORDS + 0]);
	ASSERT_EQ(pat_word(2, 2, 1), w[2 * MM_WORDS + 1]);
	INFO(in);
	ASSERT_EQ(2, in.cow_faults);
	ASSERT_EQ(2, in.private_pages);
	ASSERT_EQ(2 * pages * PS, in.mapped_bytes);	/* both processes' VMAs */

	/* Not mapped here, mapped in the child: the copy must zap it there. */
	ASSERT_EQ(0, madvise(c + 3 * PS, PS, MADV_DONTNEED));
	w[3 * MM_WORDS + 0] = 0xD3;
	w[1 * MM_WORDS + 2] = 0xE1;
	send_byte(p2c[1], 'w');
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	kid_reaped(m, pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("child check %d failed",
						 WEXITSTATUS(status));

	INFO(in);
	ASSERT_EQ(3, in.cow_faults);
	ASSERT_EQ(3, in.private_pages);
	ASSERT_EQ(pages * PS, in.mapped_bytes);
	n = cm_events_all(m->cfd, ev, 16);
	ASSERT_EQ(3, n);
	ASSERT_COW_BY(e, ev, n, 1 * PS, getpid());
	ASSERT_COW_BY(e, ev, n, 2 * PS, pid);
	ASSERT_EQ((uint32_t)pid, e->tid);
	ASSERT_COW_BY(e, ev, n, 3 * PS, getpid());

	ASSERT_FILE_INTACT(2, pages);
	close(p2c[0]);
	close(p2c[1]);
	close(c2p[0]);
	close(c2p[1]);
	munmap(c, pages * PS);
}

/* ------------------------------------------------------------------------
 * SCM_RIGHTS: the shared-memory lab's ping-pong between two unrelated
 * processes through one session.
 */
static int send_fd(int sock, int fd)
{
	char data = 'F';
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	memset(u.buf, 0, sizeof(u.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	char data;
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

#define PP_ROUNDS	1000
#define PP_PAGES	8
#define PP_REQ_PAGE	5	/* the client's request */
#define PP_RESP_PAGE	6	/* the server's answer */


/* Spin until *@a == @want; false after @deadline. */
static bool pp_wait(_Atomic uint32_t *a, uint32_t want, double deadline)
{
	for (unsigned long i = 0;; i++) {
		if (atomic_load_explicit(a, memory_order_acquire) == want)
			return true;
		if (!(i % 256)) {
			if (now_s() > deadline)
				return false;
		}
		sched_yield();
	}
}

/* The client (the forked child): no session before it gets the fd. */
static int pp_client(int sock)
{
	double deadline = now_s() + 60;
	volatile uint64_t *req, *resp;
	_Atomic uint32_t *ping, *pong;
	char *map;
	int fd;

	fd = recv_fd(sock);
	if (fd < 0)
		return 20;
	map = mmap(NULL, PP_PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return 21;
	close(fd);	/* the mapping keeps the session */
	if (congruent(map, 0))
		return 22;
	ping = (_Atomic uint32_t *)map;
	pong = (_Atomic uint32_t *)(map + 64);
	req = (volatile uint64_t *)(map + PP_REQ_PAGE * PS);
	resp = (volatile uint64_t *)(map + PP_RESP_PAGE * PS);
	/* The parent zeroed the counters before sending the fd. */
	if (atomic_load(ping) != 0 || atomic_load(pong) != 0)
		return 23;
	for (uint32_t r = 1; r <= PP_ROUNDS; r++) {
		for (unsigned int k = 0; k < 8; k++)
			req[k] = (uint64_t)r * 1000 + k;
		atomic_store_explicit(ping, r, memory_order_release);
		if (!pp_wait(pong, r, deadline))
			return 24;
		for (unsigned int k = 0; k < 8; k++)
			if (resp[k] != (uint64_t)r * 7 + k)
				return 25;
	}
	if (send(sock, "D", 1, 0) != 1)
		return 26;
	munmap(map, PP_PAGES * PS);
	return 0;
}

TEST_F_TIMEOUT(ext4, scm_rights_pingpong, 120)
{
	const struct cowmap_event *e;
	volatile uint64_t *req, *resp;
	_Atomic uint32_t *ping, *pong;
	struct cowmap_event ev[16];
	struct cowmap_info in;
	int sv[2], status;
	double deadline;
	char *c, b;
	pid_t pid;
	long n;

	BEGIN(self);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	/* Forked before the session exists: it shares nothing with it. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(sv[0]);
		_exit(pp_client(sv[1]));
	}
	kid_add(m, pid);
	close(sv[1]);

	MAKE_MAP(c, PP_PAGES, 3);
	ping = (_Atomic uint32_t *)c;
	pong = (_Atomic uint32_t *)(c + 64);
	req = (volatile uint64_t *)(c + PP_REQ_PAGE * PS);
	resp = (volatile uint64_t *)(c + PP_RESP_PAGE * PS);
	/* The lab relies on zero-filled memory; the file is not zero. */
	atomic_store(ping, 0);
	atomic_store(pong, 0);
	ASSERT_EQ(0, send_fd(sv[0], m->cfd));

	deadline = now_s() + 60;
	for (uint32_t r = 1; r <= PP_ROUNDS; r++) {
		ASSERT_TRUE(pp_wait(ping, r, deadline)) TH_LOG("round %u: no ping", r);
		for (unsigned int k = 0; k < 8; k++) {
			ASSERT_EQ((uint64_t)r * 1000 + k, req[k]) TH_LOG("round %u", r);
		}
		for (unsigned int k = 0; k < 8; k++)
			resp[k] = (uint64_t)r * 7 + k;
		atomic_store_explicit(pong, r, memory_order_release);
	}
	ASSERT_EQ(1, read(sv[0], &b, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	kid_reaped(m, pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("client failed at check %d",
						 WEXITSTATUS(status));

	/* Three copies: the counters (parent), request (client), answer. */
	INFO(in);
	ASSERT_EQ(3, in.cow_faults);
	ASSERT_EQ(3, in.private_pages);
	ASSERT_EQ(PP_PAGES * PS, in.mapped_bytes);
	n = cm_events_all(m->cfd, ev, 16);
	ASSERT_EQ(3, n);
	ASSERT_COW_BY(e, ev, n, 0, getpid());
	ASSERT_COW_BY(e, ev, n, PP_REQ_PAGE * PS, pid);
	ASSERT_COW_BY(e, ev, n, PP_RESP_PAGE * PS, getpid());

	/* The backing file is byte-for-byte untouched. */
	ASSERT_FILE_INTACT(3, PP_PAGES);
	close(sv[0]);
	munmap(c, PP_PAGES * PS);
}

/* ------------------------------------------------------------------------
 * VMA surgery.
 */
TEST_F(ext4, partial_munmap)
{
	const uint64_t pages = 16;
	char *c, *c2, *r;

	BEGIN(self);
	MAKE_MAP(c, pages, 4);
	for (uint64_t i = 2; i < 14; i++)
		fill_priv(PAGE(c, i), 4, i);
	ASSERT_COWS(12);

	/* Unmap the middle: the VMA splits in two. */
	ASSERT_EQ(0, munmap(c + 6 * PS, 4 * PS));
	ASSERT_MAPPED_BYTES(12 * PS);
	for (uint64_t i = 0; i < pages; i++) {
		if (i >= 6 && i < 10) {
			ASSERT_EQ(SIGSEGV, probe_read(PAGE(c, i), NULL));
		} else if (i >= 2 && i < 14) {
			ASSERT_PRIV_PAGE(c, i, 4, i);
		} else {
			ASSERT_FILE_PAGE(c, i, 4, i);
		}
	}

	/* Map the hole again: the session still has the pages. */
	r = mmap(c + 6 * PS, 4 * PS, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, m->cfd, 6 * PS);
	ASSERT_EQ(c + 6 * PS, r) TH_LOG("mmap: %s", strerror(errno));
	for (uint64_t i = 6; i < 10; i++)
		ASSERT_PRIV_PAGE(c, i, 4, i);
	ASSERT_MAPPED_BYTES(16 * PS);

	/* And a second, whole mapping shows the same. */
	MAP(c2, pages, 0);
	for (uint64_t i = 0; i < pages; i++) {
		if (i >= 2 && i < 14) {
			ASSERT_PRIV_PAGE(c2, i, 4, i);
		} else {
			ASSERT_FILE_PAGE(c2, i, 4, i);
		}
	}
	ASSERT_MAPPED_BYTES(32 * PS);
	ASSERT_COWS(12);
	ASSERT_EQ(0, munmap(c2, pages * PS));
	ASSERT_EQ(0, munmap(c, pages * PS));
	ASSERT_MAPPED_BYTES(0);
	ASSERT_FILE_INTACT(4, pages);
}

TEST_F(ext4, map_fixed_replace)
{
	const uint64_t pages = 16;
	char *c, *r;

	BEGIN(self);
	MAKE_MAP(c, pages, 5);
	fill_priv(PAGE(c, 2), 5, 2);
	fill_priv(PAGE(c, 5), 5, 5);
	fill_priv(PAGE(c, 9), 5, 9);
	ASSERT_COWS(3);

	/* Pages 4..7 of the mapping become file pages 8..11. */
	ASSERT_FALSE(congruent(c + 4 * PS, 8 * PS));
	r = mmap(c + 4 * PS, 4 * PS, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, m->cfd, 8 * PS);
	ASSERT_EQ(c + 4 * PS, r) TH_LOG("mmap: %s", strerror(errno));
	ASSERT_MAPPED_BYTES(16 * PS);
	for (uint64_t i = 0; i < pages; i++) {
		uint64_t pg = (i >= 4 && i < 8) ? i + 4 : i;

		if (pg == 2 || pg == 5 || pg == 9)
			ASSERT_PRIV_PAGE(c, i, 5, pg);
		else
			ASSERT_FILE_PAGE(c, i, 5, pg);
	}
	/* Both views of file page 9 are one page. */
	((volatile uint64_t *)PAGE(c, 5))[7] = 0x99;
	ASSERT_EQ(0x99, ((volatile uint64_t *)PAGE(c, 9))[7]);
	/* A write through the new VMA copies file page 10 once. */
	((volatile uint64_t *)PAGE(c, 6))[0] = 0x10;
	ASSERT_EQ(0x10, ((volatile uint64_t *)PAGE(c, 10))[0]);
	ASSERT_COWS(4);

	/* Anonymous memory over pages 12..15. */
	r = mmap(c + 12 * PS, 4 * PS, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(c + 12 * PS, r);
	ASSERT_ZERO_PAGE(c, 12);
	ASSERT_MAPPED_BYTES(12 * PS);
	ASSERT_PRIV_PAGE(c, 2, 5, 2);
	ASSERT_FILE_PAGE(c, 11, 5, 11);
	ASSERT_COWS(4);
	ASSERT_FILE_INTACT(5, pages);
	munmap(c, pages * PS);
	ASSERT_MAPPED_BYTES(0);
}

TEST_F(ext4, mremap_move)
{
	const uint64_t pages = 16;
	char *c, *dst, *r;

	BEGIN(self);
	MAKE_MAP(c, pages, 6);
	fill_priv(PAGE(c, 1), 6, 1);
	fill_priv(PAGE(c, 7), 6, 7);
	read_pages(c, pages);
	ASSERT_COWS(2);

	/* A non-congruent destination: the pages move along. */
	dst = reserve_aligned(pages * PS + 8 * PS);
	ASSERT_NE(NULL, dst);
	dst += 5 * PS;
	ASSERT_FALSE(congruent(dst, 0));
	r = mremap(c, pages * PS, pages * PS, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(dst, r) TH_LOG("mremap: %s", strerror(errno));
	/* The page tables moved with the VMA: nothing refaults. */
	for (uint64_t i = 0; i < pages; i++) {
		ASSERT_TRUE(pte_present(PAGE(dst, i))) TH_LOG("page %lu",
							  (unsigned long)i);
	}
	ASSERT_EQ(SIGSEGV, probe_read(c, NULL));
	for (uint64_t i = 0; i < pages; i++) {
		if (i == 1 || i == 7)
			ASSERT_PRIV_PAGE(dst, i, 6, i);
		else
			ASSERT_FILE_PAGE(dst, i, 6, i);
	}
	ASSERT_MAPPED_BYTES(pages * PS);
	ASSERT_COWS(2);
	/* Writes keep working at the new place. */
	((volatile uint64_t *)PAGE(dst, 7))[3] = 0x77;
	((volatile uint64_t *)PAGE(dst, 3))[3] = 0x33;
	ASSERT_COWS(3);

	/* Shrinking is allowed. */
	r = mremap(dst, pages * PS, 8 * PS, 0);
	ASSERT_EQ(dst, r);
	ASSERT_MAPPED_BYTES(8 * PS);
	ASSERT_EQ(0x77, ((volatile uint64_t *)PAGE(dst, 7))[3]);
	ASSERT_EQ(0x33, ((volatile uint64_t *)PAGE(dst, 3))[3]);
	ASSERT_FILE_INTACT(6, pages);
	munmap(dst - 5 * PS, pages * PS + 8 * PS);
	ASSERT_MAPPED_BYTES(0);
}

TEST_F(ext4, mremap_congruent_refused)
{
	const uint64_t pages = 16;
	char *c, *dst, *r;

	BEGIN(self);
	MAKE_MAP(c, pages, 8);
	fill_priv(PAGE(c, 2), 8, 2);
	fill_priv(PAGE(c, 5), 8, 5);
	ASSERT_COWS(2);

	/* The whole mapping to a 2 MiB-aligned address (offset 0). */
	dst = reserve_aligned(MM_PMD_SIZE);
	ASSERT_NE(NULL, dst);
	ASSERT_TRUE(congruent(dst, 0));
	errno = 0;
	r = mremap(c, pages * PS, pages * PS, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(MAP_FAILED, r);
	ASSERT_EQ(EINVAL, errno);
	/* Nothing of the session is at the destination... */
	ASSERT_EQ(SIGSEGV, probe_read(dst, NULL));
	/* ...and the old mapping is intact. */
	for (uint64_t i = 0; i < pages; i++) {
		if (i == 2 || i == 5)
			ASSERT_PRIV_PAGE(c, i, 8, i);
		else
			ASSERT_FILE_PAGE(c, i, 8, i);
	}
	ASSERT_MAPPED_BYTES(pages * PS);

	/* Part of it (file pages 4..7) to a congruent address for page 4. */
	errno = 0;
	r = mremap(c + 4 * PS, 4 * PS, 4 * PS, MREMAP_MAYMOVE | MREMAP_FIXED,
		   dst + 4 * PS);
	ASSERT_EQ(MAP_FAILED, r);
	ASSERT_EQ(EINVAL, errno);
	ASSERT_PRIV_PAGE(c, 5, 8, 5);
	ASSERT_FILE_PAGE(c, 4, 8, 4);
	ASSERT_FILE_PAGE(c, 8, 8, 8);
	ASSERT_MAPPED_BYTES(pages * PS);

	/* Growing is refused (VM_DONTEXPAND). */
	errno = 0;
	r = mremap(c, pages * PS, 2 * pages * PS, MREMAP_MAYMOVE);
	ASSERT_EQ(MAP_FAILED, r);
	ASSERT_EQ(EFAULT, errno);

	/* The mapping still works, and nothing was copied meanwhile. */
	((volatile uint64_t *)PAGE(c, 5))[0] = 0x55;
	ASSERT_EQ(0x55, ((volatile uint64_t *)PAGE(c, 5))[0]);
	ASSERT_COWS(2);
	ASSERT_FILE_INTACT(8, pages);
	munmap(c, pages * PS);
	ASSERT_MAPPED_BYTES(0);
}

TEST_F(mm, madv_dontneed)
{
	const uint64_t pages = 16;
	uint64_t pfn3 = 0, pfn9 = 0;
	char *c, *p;

	BEGIN(self);
	MAKE_MAP(c, pages, 9);
	MAP_PLAIN(p, pages);
	read_pages2(c, p, pages);
	fill_priv(PAGE(c, 3), 9, 3);
	fill_priv(PAGE(c, 9), 9, 9);
	if (is_root()) {
		pfn3 = pfn_of(PAGE(c, 3));
		pfn9 = pfn_of(PAGE(c, 9));
		ASSERT_NE(0, pfn3);
	}

	ASSERT_EQ(0, madvise(c, pages * PS, MADV_DONTNEED));
	for (uint64_t i = 0; i < pages; i++) {
		ASSERT_FALSE(pte_present(PAGE(c, i))) TH_LOG("page %lu", (unsigned long)i);
	}

	for (uint64_t i = 0; i < pages; i++) {
		if (i == 3 || i == 9)
			ASSERT_PRIV_PAGE(c, i, 9, i);
		else
			ASSERT_FILE_PAGE(c, i, 9, i);
	}
	if (is_root()) {
		/* The same private pages; shared ones from the page cache. */
		ASSERT_EQ(pfn3, pfn_of(PAGE(c, 3)));
		ASSERT_EQ(pfn9, pfn_of(PAGE(c, 9)));
		for (uint64_t i = 0; i < pages; i++)
			if (i != 3 && i != 9) {
				ASSERT_EQ(pfn_of(PAGE(p, i)), pfn_of(PAGE(c, i)));
			}
	}
	/* Private pages stay writable without a new copy. */
	((volatile uint64_t *)PAGE(c, 3))[0] = 0x3;
	ASSERT_COWS(2);
	/* Zap once more after the write: it survives. */
	ASSERT_EQ(0, madvise(c + 3 * PS, PS, MADV_DONTNEED));
	ASSERT_EQ(0x3, ((volatile uint64_t *)PAGE(c, 3))[0]);
	ASSERT_EQ(priv_word(9, 3, 1), ((volatile uint64_t *)PAGE(c, 3))[1]);
	ASSERT_COWS(2);
	ASSERT_FILE_INTACT(9, pages);
	munmap(p, pages * PS);
	munmap(c, pages * PS);
}

/*
 * Random VMA surgery (mmap, MAP_FIXED, munmap, mprotect, madvise splits,
 * mremap, fork) inside one arena: after every step INFO.mapped_bytes is
 * exactly what /proc/self/maps shows of the session, and the pages show
 * what they should.
 */
static uint64_t maps_bytes(const struct stat *st)
{
	FILE *f = fopen("/proc/self/maps", "re");
	unsigned long lo, hi, off, in;
	unsigned int maj, min;
	char perms[8], line[512];
	uint64_t total = 0;

	if (!f)
		return ~0ULL;
	/*
	 * Device and inode: an inode number alone also matches other files'
	 * shared mappings (a MAP_SHARED|MAP_ANONYMOUS page is a shmem file
	 * with a small inode number).  maps prints the superblock's s_dev,
	 * which is st_dev on ext4 (not on btrfs, whose st_dev is the
	 * subvolume's).
	 */
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms,
			   &off, &maj, &min, &in) == 7 && in == st->st_ino &&
		    maj == major(st->st_dev) && min == minor(st->st_dev) &&
		    perms[3] == 's')
			total += hi - lo;
	}
	fclose(f);
	return total;
}

/* Map PROT_NONE anonymous memory over the holes in [@a, @a + @len pages). */
static int vs_refill(char *a, uint64_t len)
{
	unsigned char v;

	for (uint64_t i = 0; i < len; i++) {
		if (!mincore(a + i * PS, PS, &v) || errno != ENOMEM)
			continue;
		if (mmap(a + i * PS, PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_FIXED_NOREPLACE, -1, 0) != a + i * PS)
			return -1;
	}
	return 0;
}

#define VS_ARENA_PAGES	2048	/* 8 MiB */
#define VS_FILE_PAGES	64
#define VS_STEPS	400

TEST_F_TIMEOUT(ext4, vma_surgery_mapped_bytes, 120)
{
	uint64_t s = 0x5eedf00dULL, pg, len, off, want;
	unsigned char vec[32];
	struct cowmap_info in;
	int einval = 0, gaps = 0, steps;
	struct stat st;
	char *arena;

	BEGIN(self);
	steps = slow_kernel() ? VS_STEPS / 4 : VS_STEPS;
	MAKE(VS_FILE_PAGES, 34);
	ASSERT_EQ(0, fstat(m->bfd, &st));
	arena = reserve_aligned(VS_ARENA_PAGES * PS);
	ASSERT_NE(NULL, arena);

	for (int step = 0; step < steps; step++) {
		unsigned int op = rf_next(&s) % 8;
		char *a, *r;

		pg = rf_next(&s) % (VS_ARENA_PAGES - 32);
		len = 1 + rf_next(&s) % 24;
		off = rf_next(&s) % (VS_FILE_PAGES - len + 1);
		if (op == 1)	/* a PMD-congruent place, to be refused */
			pg = off + MM_PMD_PAGES * (rf_next(&s) % 3);
		a = arena + pg * PS;
		switch (op) {
		case 0:
		case 1:	/* map (MAP_FIXED, maybe over other mappings) */
			r = mmap(a, len * PS, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED, m->cfd, off * PS);
			if (r == MAP_FAILED) {
				ASSERT_EQ(EINVAL, errno);
				ASSERT_TRUE(congruent(a, off * PS));
				einval++;
				/* The kernel may leave a gap where it was. */
				if (mincore(a, len * PS, vec) && errno == ENOMEM)
					gaps++;
				ASSERT_EQ(a, mmap(a, len * PS, PROT_NONE,
						  MAP_PRIVATE | MAP_ANONYMOUS |
						  MAP_FIXED, -1, 0));
			} else {
				ASSERT_EQ(a, r);
				ASSERT_FALSE(congruent(a, off * PS));
				ASSERT_FILE_PAGE(a, len - 1, 34, off + len - 1);
			}
			break;
		case 2:	/* unmap: leave anonymous PROT_NONE memory there */
			ASSERT_EQ(a, mmap(a, len * PS, PROT_NONE, MAP_PRIVATE |
					  MAP_ANONYMOUS | MAP_FIXED, -1, 0));
			break;
		case 3:	/* mprotect a part */
			ASSERT_EQ(0, mprotect(a, len * PS, rf_next(&s) & 1 ?
					      PROT_READ : PROT_READ | PROT_WRITE));
			break;
		case 4:	/* split by madvise */
			ASSERT_EQ(0, madvise(a, len * PS, rf_next(&s) & 1 ?
					     MADV_DONTFORK : MADV_DOFORK))
				TH_LOG("madvise: %s", strerror(errno));
			break;
		case 5: {	/* move a range elsewhere in the arena */
			char *to = arena + (rf_next(&s) % (VS_ARENA_PAGES - 32)) * PS;

			r = mremap(a, len * PS, len * PS,
				   MREMAP_MAYMOVE | MREMAP_FIXED, to);
			if (r == MAP_FAILED) {
				/* Congruent, or the range spans several VMAs. */
				ASSERT_TRUE(errno == EINVAL || errno == EFAULT)
					TH_LOG("mremap: %s", strerror(errno));
				/* The destination was unmapped first. */
				ASSERT_EQ(0, vs_refill(to, len));
			} else {
				ASSERT_EQ(to, r);
				/* Fill the hole: the arena stays ours. */
				ASSERT_EQ(a, mmap(a, len * PS, PROT_NONE,
						  MAP_PRIVATE | MAP_ANONYMOUS |
						  MAP_FIXED_NOREPLACE, -1, 0));
			}
			break;
		}
		case 6: {	/* fork: the child's copies come and go */
			int status;
			pid_t pid = fork();

			ASSERT_LE(0, pid);
			if (pid == 0)
				_exit(0);
			ASSERT_EQ(pid, waitpid(pid, &status, 0));
			break;
		}
		default: {	/* touch: read, and write where writable */
			uint64_t v;

			if (!probe_read(a, &v))
				probe_write(a, v);
			break;
		}
		}
		want = maps_bytes(&st);
		INFO(in);
		ASSERT_EQ(want, in.mapped_bytes) TH_LOG("step %d op %u", step, op);
	}
	TH_LOG("%d congruent MAP_FIXED refused, %d of them left a gap", einval,
	       gaps);
	munmap(arena, VS_ARENA_PAGES * PS);
	INFO(in);
	ASSERT_EQ(0, in.mapped_bytes);
	ASSERT_EQ(0, maps_bytes(&st));
	ASSERT_FILE_INTACT(34, VS_FILE_PAGES);
}

TEST_F(ext4, mprotect_readonly_and_back)
{
	const uint64_t pages = 8;
	char *c;

	BEGIN(self);
	MAKE_MAP(c, pages, 10);
	fill_priv(PAGE(c, 1), 10, 1);
	ASSERT_COWS(1);

	ASSERT_EQ(0, mprotect(c, pages * PS, PROT_READ));
	ASSERT_EQ(SIGSEGV, probe_write(PAGE(c, 1), 1));		/* private */
	ASSERT_EQ(SIGSEGV, probe_write(PAGE(c, 2), 1));		/* shared */
	ASSERT_PRIV_PAGE(c, 1, 10, 1);
	ASSERT_FILE_PAGE(c, 2, 10, 2);
	ASSERT_COWS(1);

	/* Writable again in the middle only: the VMA splits in three. */
	ASSERT_EQ(0, mprotect(c + 2 * PS, 2 * PS, PROT_READ | PROT_WRITE));
	ASSERT_MAPPED_BYTES(pages * PS);
	ASSERT_EQ(0, probe_write(PAGE(c, 2), 0x22));
	ASSERT_EQ(SIGSEGV, probe_write(PAGE(c, 5), 1));
	ASSERT_EQ(SIGSEGV, probe_write(PAGE(c, 1), 1));
	ASSERT_COWS(2);

	/* All writable: private data intact, no copy for page 1. */
	ASSERT_EQ(0, mprotect(c, pages * PS, PROT_READ | PROT_WRITE));
	ASSERT_PRIV_PAGE(c, 1, 10, 1);
	ASSERT_EQ(0, probe_write(PAGE(c, 1), 0x11));
	ASSERT_EQ(0x11, *(volatile uint64_t *)PAGE(c, 1));
	ASSERT_EQ(priv_word(10, 1, 1), ((volatile uint64_t *)PAGE(c, 1))[1]);
	ASSERT_EQ(0x22, *(volatile uint64_t *)PAGE(c, 2));
	ASSERT_COWS(2);
	ASSERT_FILE_INTACT(10, pages);
	munmap(c, pages * PS);
}

TEST_F(ext4, madv_remove_does_not_punch)
{
	const uint64_t pages = 8;
	char *c;

	BEGIN(self);
	MAKE_MAP(c, pages, 11);
	fill_priv(PAGE(c, 2), 11, 2);
	errno = 0;
	ASSERT_EQ(-1, madvise(c, pages * PS, MADV_REMOVE));
	/* The VMA's file is the session's read-only clone. */
	ASSERT_EQ(EBADF, errno);
	ASSERT_PRIV_PAGE(c, 2, 11, 2);
	ASSERT_FILE_PAGE(c, 3, 11, 3);
	ASSERT_FILE_INTACT(11, pages);
	ASSERT_COWS(1);
	munmap(c, pages * PS);
}

/* ------------------------------------------------------------------------
 * Fault-around and large folios.
 */
/* The PFN of page @i of the plain mapping @p (faulted in first). */
static uint64_t plain_pfn(const char *p, uint64_t i)
{
	(void)*PAGE(p, i);
	return pfn_of(PAGE(p, i));
}

TEST_F(mm, fault_around_skips_private)
{
	const uint64_t pages = 32;
	uint64_t pfn_priv;
	char *c, *p;

	BEGIN(self);
	if (!is_root())
		SKIP(return, "pagemap PFNs need CAP_SYS_ADMIN");
	MAKE_MAP(c, pages, 12);
	MAP_PLAIN(p, pages);
	fill_priv(PAGE(c, 5), 12, 5);
	pfn_priv = pfn_of(PAGE(c, 5));
	ASSERT_NE(0, pfn_priv);
	ASSERT_NE(0, plain_pfn(p, 5));
	ASSERT_NE(pfn_priv, plain_pfn(p, 5));

	ASSERT_EQ(0, madvise(c, pages * PS, MADV_DONTNEED));
	/* One read fault on page 4 maps its neighbours... */
	ASSERT_EQ(pat_word(12, 4, 0), *(volatile uint64_t *)PAGE(c, 4));
	ASSERT_EQ(plain_pfn(p, 4), pfn_of(PAGE(c, 4)));
	ASSERT_TRUE(pte_present(PAGE(c, 6))) TH_LOG("no fault-around");
	ASSERT_EQ(plain_pfn(p, 6), pfn_of(PAGE(c, 6)));
	ASSERT_TRUE(pte_present(PAGE(c, 3)));
	ASSERT_EQ(plain_pfn(p, 3), pfn_of(PAGE(c, 3)));
	/* ...but never the backing page of a private offset. */
	if (pte_present(PAGE(c, 5))) {
		ASSERT_EQ(pfn_priv, pfn_of(PAGE(c, 5)));
	}
	ASSERT_PRIV_PAGE(c, 5, 12, 5);
	ASSERT_EQ(pfn_priv, pfn_of(PAGE(c, 5)));

	/* A write to a page mapped by fault-around copies it. */
	((volatile uint64_t *)PAGE(c, 6))[0] = 0x66;
	ASSERT_NE(plain_pfn(p, 6), pfn_of(PAGE(c, 6)));
	ASSERT_FILE_PAGE(p, 6, 12, 6);
	ASSERT_PRIV_PAGE(c, 5, 12, 5);
	ASSERT_COWS(2);
	ASSERT_FILE_INTACT(12, pages);
	munmap(p, pages * PS);
	munmap(c, pages * PS);
}

/*
 * Another process maps the file 2 MiB-aligned with MADV_HUGEPAGE, so the
 * page cache may hold PMD-sized folios (XFS) mapped by a PMD there; cowmap
 * must keep mapping them by PTE and never over a private offset.
 */
enum { HP_OK = 0, HP_MAP = 30, HP_DATA = 31, HP_PIPE = 32 };

static int hp_child(const char *path, uint64_t pages, uint32_t seed,
		    int in, int out)
{
	long r[2];
	char *a;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	a = reserve_aligned(pages * PS);
	if (fd < 0 || !a)
		return HP_MAP;
	if (mmap(a, pages * PS, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) != a)
		return HP_MAP;
	madvise(a, pages * PS, MADV_HUGEPAGE);
	for (;;) {
		int cmd = wait_byte(in);

		if (cmd == 'q' || cmd < 0)
			return HP_OK;
		if (cmd == 'z') {	/* drop the mapping's pages: fault anew */
			madvise(a, pages * PS, MADV_DONTNEED);
			continue;
		}
		r[0] = 0;
		for (uint64_t i = 0; i < pages; i++)
			if (bad_pat(PAGE(a, i), seed, i) >= 0)
				r[0]++;
		r[1] = smaps_field(a, "FilePmdMapped:");
		if (write(out, r, sizeof(r)) != sizeof(r))
			return HP_PIPE;
	}
}

static bool thp_never(void)
{
	char buf[128];

	return read_text("/sys/kernel/mm/transparent_hugepage/enabled", buf,
			 sizeof(buf)) < 0 || strstr(buf, "[never]");
}

TEST_F_TIMEOUT(mm, hugepage_neighbours, 120)
{
	const uint64_t pages = 2 * MM_PMD_PAGES;	/* 4 MiB */
	int to[2], from[2], status;
	uint64_t pfn;
	long r[2];
	char *c;
	pid_t pid;

	BEGIN(self);
	MAKE_MAP(c, pages, 13);
	ASSERT_FALSE(congruent(c, 0));

	/* Private pages first, in a small-folio page cache. */
	fill_priv(PAGE(c, 5), 13, 5);
	fill_priv(PAGE(c, 600), 13, 600);
	ASSERT_COWS(2);
	ASSERT_EQ(0, madvise(c, pages * PS, MADV_DONTNEED));
	mm_evict(m);
	if (is_root())
		write_text("/proc/sys/vm/drop_caches", "1");

	ASSERT_EQ(0, pipe(to));
	ASSERT_EQ(0, pipe(from));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(hp_child(m->path, pages, 13, to[0], from[1]));
	kid_add(m, pid);

	/* The other process faults the whole file in. */
	send_byte(to[1], 'r');
	ASSERT_EQ(sizeof(r), read(from[0], r, sizeof(r)));
	ASSERT_EQ(0, r[0]) TH_LOG("plain mapping: %ld bad pages", r[0]);
	TH_LOG("%s: plain MADV_HUGEPAGE mapping: FilePmdMapped %ld kB",
	       m->fs, r[1]);
	/*
	 * On XFS (large folios) the threat must be real for the test to
	 * count: a PMD-mapped file folio.  Fragmented memory can deny one:
	 * compact it and fault the file in again (3 more tries), then skip
	 * (selftests/expected-skips lists it as a skip that may happen).
	 */
	if (!strcmp(m->fs, "xfs") && !thp_never()) {
		for (int t = 0; t < 3 && r[1] <= 0; t++) {
			send_byte(to[1], 'z');
			mm_evict(m);
			if (is_root()) {
				write_text("/proc/sys/vm/drop_caches", "1");
				write_text("/proc/sys/vm/compact_memory", "1");
			}
			send_byte(to[1], 'r');
			ASSERT_EQ(sizeof(r), read(from[0], r, sizeof(r)));
			ASSERT_EQ(0, r[0]) TH_LOG("plain mapping, try %d: %ld bad pages",
						  t + 2, r[0]);
			TH_LOG("%s: try %d: FilePmdMapped %ld kB", m->fs, t + 2, r[1]);
		}
		if (r[1] <= 0) {
			send_byte(to[1], 'q');
			ASSERT_EQ(pid, waitpid(pid, &status, 0));
			kid_reaped(m, pid);
			munmap(c, pages * PS);
			SKIP(return, "xfs: no PMD-mapped file folio in 4 tries (memory fragmented?)");
		}
	}

	/*
	 * A fresh mapping (no page table yet, so a fault could install a PMD)
	 * that asks for huge pages too (clearing VM_NOHUGEPAGE).  The first
	 * faults are next to the private pages: fault-around or the fault
	 * itself would map the whole folio by PMD if the VMA allowed it.
	 */
	ASSERT_EQ(0, munmap(c, pages * PS));
	MAP(c, pages, 0);
	ASSERT_FALSE(congruent(c, 0));
	madvise(c, pages * PS, MADV_HUGEPAGE);
	ASSERT_FILE_PAGE(c, 4, 13, 4);
	ASSERT_PRIV_PAGE(c, 5, 13, 5);
	ASSERT_FILE_PAGE(c, 601, 13, 601);
	ASSERT_PRIV_PAGE(c, 600, 13, 600);
	for (uint64_t i = 0; i < pages; i++) {
		if (i == 5 || i == 600)
			ASSERT_PRIV_PAGE(c, i, 13, i);
		else
			ASSERT_FILE_PAGE(c, i, 13, i);
	}
	ASSERT_EQ(0, smaps_field(c, "FilePmdMapped:"));
	if (is_root()) {
		pfn = pfn_of(PAGE(c, 4));
		TH_LOG("cowmap page 4: kpageflags %#" PRIx64 " (THP %d)",
		       kpageflags(pfn), !!(kpageflags(pfn) & (1ULL << KPF_THP)));
	}

	/* A copy of a page inside a (possibly PMD-mapped) large folio. */
	fill_priv(PAGE(c, 700), 13, 700);
	ASSERT_COWS(3);
	ASSERT_FILE_PAGE(c, 699, 13, 699);
	ASSERT_FILE_PAGE(c, 701, 13, 701);
	ASSERT_PRIV_PAGE(c, 700, 13, 700);
	send_byte(to[1], 'r');
	ASSERT_EQ(sizeof(r), read(from[0], r, sizeof(r)));
	ASSERT_EQ(0, r[0]) TH_LOG("plain mapping after the copy: %ld bad pages",
				  r[0]);
	/* Everything again, after zapping the cowmap PTEs. */
	ASSERT_EQ(0, madvise(c, pages * PS, MADV_DONTNEED));
	for (uint64_t i = 0; i < pages; i++) {
		if (i == 5 || i == 600 || i == 700)
			ASSERT_PRIV_PAGE(c, i, 13, i);
		else
			ASSERT_FILE_PAGE(c, i, 13, i);
	}
	ASSERT_EQ(0, smaps_field(c, "FilePmdMapped:"));

	/* khugepaged-style collapse is refused (VM_SPECIAL, no anon_vma). */
	errno = 0;
	ASSERT_EQ(-1, madvise(c, pages * PS, MADV_COLLAPSE));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_PRIV_PAGE(c, 700, 13, 700);

	send_byte(to[1], 'q');
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	kid_reaped(m, pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(HP_OK, WEXITSTATUS(status));
	ASSERT_FILE_INTACT(13, pages);
	munmap(c, pages * PS);
}

TEST_F(ext4, no_implicit_congruent_address)
{
	const uint64_t len = 4UL << 20;
	const uint64_t offs[] = { 0, 2UL << 20, PS, (2UL << 20) + 3 * PS };
	char *c, *hint;

	BEGIN(self);
	ASSERT_EQ(0, mm_make_file(m, 1, 14));
	ASSERT_EQ(0, ftruncate(m->bfd, 8UL << 20));	/* sparse */
	m->cfd = cm_session(m->bfd, -1, 0);
	ASSERT_LE(0, m->cfd);

	for (unsigned int i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (int h = 0; h < 3; h++) {
			/* No hint, a 2 MiB-aligned hint, a congruent hint. */
			hint = NULL;
			if (h) {
				hint = reserve_aligned(len + MM_PMD_SIZE);
				ASSERT_NE(NULL, hint);
				munmap(hint, len + MM_PMD_SIZE);
				if (h == 2)
					hint += offs[i] % MM_PMD_SIZE;
			}
			c = mmap(hint, len, PROT_READ | PROT_WRITE, MAP_SHARED,
				 m->cfd, offs[i]);
			ASSERT_NE(MAP_FAILED, c) TH_LOG("off %#lx: %s",
				(unsigned long)offs[i], strerror(errno));
			ASSERT_FALSE(congruent(c, offs[i]))
				TH_LOG("off %#lx hint %p: got %p",
				       (unsigned long)offs[i], hint, c);
			/* Usable: zeros past the first page. */
			ASSERT_ZERO_PAGE(c, len / PS - 1);
			ASSERT_EQ(0, munmap(c, len));
		}
	}
	ASSERT_COWS(0);
}

/* ------------------------------------------------------------------------
 * Others' changes to the backing file.
 */
TEST_F(mm, write_by_other_fd)
{
	const uint64_t pages = 16;
	char buf[100];
	char *c;
	int fd;

	BEGIN(self);
	MAKE_MAP(c, pages, 15);
	read_pages(c, pages);
	fill_priv(PAGE(c, 2), 15, 2);
	fill_priv(PAGE(c, 5), 15, 5);

	OPEN_OTHER(fd);
	ASSERT_EQ(0, write_pat(fd, 16, 1, 6));		/* pages 1..6 */
	memset(buf, 0x5a, sizeof(buf));
	ASSERT_EQ(sizeof(buf), pwrite(fd, buf, sizeof(buf), 7 * PS + 1000));
	for (uint64_t i = 0; i < pages; i++) {
		if (i == 2 || i == 5)
			ASSERT_PRIV_PAGE(c, i, 15, i);
		else if (i >= 1 && i <= 6)
			ASSERT_FILE_PAGE(c, i, 16, i);
		else if (i != 7)
			ASSERT_FILE_PAGE(c, i, 15, i);
	}
	ASSERT_EQ(0, memcmp((char *)PAGE(c, 7) + 1000, buf, sizeof(buf)));
	ASSERT_EQ(pat_word(15, 7, 0), *(volatile uint64_t *)PAGE(c, 7));
	ASSERT_COWS(2);

	/* A copy made now starts from the new contents. */
	((volatile uint64_t *)PAGE(c, 3))[0] = 0x3;
	ASSERT_EQ(pat_word(16, 3, 1), ((volatile uint64_t *)PAGE(c, 3))[1]);
	ASSERT_COWS(3);
	/* The file has the other writer's data, not the session's. */
	ASSERT_EQ(-1, file_bad_page(m->bfd, 16, 1, 6));
	ASSERT_EQ(-1, file_bad_page(m->bfd, 15, 8, 8));
	close(fd);
	munmap(c, pages * PS);
}

TEST_F(mm, odirect_write_by_other_fd)
{
	const uint64_t pages = 16;
	char *c, *buf;
	int fd;

	BEGIN(self);
	MAKE_MAP(c, pages, 17);
	read_pages(c, pages);
	fill_priv(PAGE(c, 5), 17, 5);
	fill_priv(PAGE(c, 9), 17, 9);
	/* Page 8 not mapped at all, the others mapped. */
	ASSERT_EQ(0, madvise(c + 8 * PS, PS, MADV_DONTNEED));

	fd = open(m->path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0 && errno == EINVAL)
		SKIP(return, "%s: no O_DIRECT", m->fs);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, posix_memalign((void **)&buf, PS, 8 * PS));
	for (uint64_t i = 0; i < 8; i++)
		fill_pat(buf + i * PS, 18, 4 + i);
	/* Pages 4..11: the kernel invalidates the cached, mapped pages. */
	ASSERT_EQ(8 * PS, pwrite(fd, buf, 8 * PS, 4 * PS)) TH_LOG("%s",
							      strerror(errno));
	for (uint64_t i = 0; i < pages; i++) {
		if (i == 5 || i == 9)
			ASSERT_PRIV_PAGE(c, i, 17, i);
		else if (i >= 4 && i < 12)
			ASSERT_FILE_PAGE(c, i, 18, i);
		else
			ASSERT_FILE_PAGE(c, i, 17, i);
	}
	ASSERT_COWS(2);

	/* Again, while the private pages are mapped writable. */
	((volatile uint64_t *)PAGE(c, 5))[0] = 0x5;
	for (uint64_t i = 0; i < 8; i++)
		fill_pat(buf + i * PS, 19, 4 + i);
	ASSERT_EQ(8 * PS, pwrite(fd, buf, 8 * PS, 4 * PS));
	ASSERT_EQ(0x5, *(volatile uint64_t *)PAGE(c, 5));
	ASSERT_EQ(priv_word(17, 5, 1), ((volatile uint64_t *)PAGE(c, 5))[1]);
	ASSERT_PRIV_PAGE(c, 9, 17, 9);
	ASSERT_FILE_PAGE(c, 4, 19, 4);
	ASSERT_FILE_PAGE(c, 11, 19, 11);
	ASSERT_COWS(2);
	ASSERT_EQ(-1, file_bad_page(m->bfd, 19, 4, 8));
	ASSERT_EQ(-1, file_bad_page(m->bfd, 17, 0, 4));
	free(buf);
	close(fd);
	munmap(c, pages * PS);
}

/*
 * The fallocate tests' start: @pages pages of seed 31, all read through
 * the session, pages 3 and 20 private; @fd another descriptor of the file.
 */
#define FALLOC_SETUP(c, pages, fd)					\
	do {								\
		MAKE_MAP(c, pages, 31);					\
		read_pages(c, pages);					\
		fill_priv(PAGE(c, 3), 31, 3);				\
		fill_priv(PAGE(c, 20), 31, 20);				\
		OPEN_OTHER(fd);						\
	} while (0)

/*
 * Hole punching (fallocate) by another fd: the page cache under the
 * session's shared pages changes, private pages stay.
 */
TEST_F(mm, fallocate_by_other_fd)
{
	const uint64_t pages = 32;
	char *c;
	int fd;

	BEGIN(self);
	FALLOC_SETUP(c, pages, fd);
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * PS,
		      4 * PS)) {
		ASSERT_EQ(EOPNOTSUPP, errno);
		close(fd);
		SKIP(return, "%s: no FALLOC_FL_PUNCH_HOLE", m->fs);
	}
	for (uint64_t i = 0; i < 8; i++) {
		if (i == 3)
			ASSERT_PRIV_PAGE(c, i, 31, i);
		else if (i >= 2 && i < 6)
			ASSERT_ZERO_PAGE(c, i);
		else
			ASSERT_FILE_PAGE(c, i, 31, i);
	}
	ASSERT_COWS(2);
	ASSERT_PRIV_PAGE(c, 20, 31, 20);
	close(fd);
	munmap(c, pages * PS);
}

/*
 * Range collapsing (fallocate) by another fd: file pages after the range
 * move down under the session's shared pages, private pages stay, the
 * session sees the new size.  A test of its own, so that a filesystem
 * without FALLOC_FL_COLLAPSE_RANGE (btrfs) is a skip, not a pass.
 */
TEST_F(mm, collapse_range_by_other_fd)
{
	const uint64_t pages = 32;
	struct cowmap_info in;
	char *c;
	int fd;

	BEGIN(self);
	FALLOC_SETUP(c, pages, fd);
	/* Collapse pages 8..11: file pages 12.. move down by 4. */
	if (fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 8 * PS, 4 * PS)) {
		ASSERT_EQ(EOPNOTSUPP, errno);
		close(fd);
		munmap(c, pages * PS);
		SKIP(return, "%s: no FALLOC_FL_COLLAPSE_RANGE", m->fs);
	}
	INFO(in);
	ASSERT_EQ((pages - 4) * PS, in.cur_size);
	for (uint64_t i = 0; i < pages; i++) {
		if (i == 3 || i == 20) {
			ASSERT_PRIV_PAGE(c, i, 31, i);
		} else if (i < 8) {
			ASSERT_FILE_PAGE(c, i, 31, i);
		} else if (i < pages - 4) {
			ASSERT_FILE_PAGE(c, i, 31, i + 4);
		} else {
			ASSERT_EQ(SIGBUS, probe_read(PAGE(c, i), NULL));
		}
	}
	ASSERT_EQ(-1, file_bad_page(m->bfd, 31, 0, 2));
	ASSERT_COWS(2);
	close(fd);
	munmap(c, pages * PS);
}

/*
 * Reflink (FICLONERANGE) into the backing file replaces its extents and
 * invalidates the cached, mapped pages (XFS, btrfs).
 */
TEST_F(mm, reflink_into_backing_file)
{
	const uint64_t pages = 16;
	struct file_clone_range r;
	char *c;
	int src;

	BEGIN(self);
	MAKE_MAP(c, pages, 32);
	read_pages(c, pages);
	fill_priv(PAGE(c, 5), 32, 5);

	src = open(m->path2, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, src);
	ASSERT_EQ(0, write_pat(src, 33, 4, 4));	/* pages 4..7 hold seed 33 */
	ASSERT_EQ(0, fsync(src));
	memset(&r, 0, sizeof(r));
	r.src_fd = src;
	r.src_offset = 4 * PS;
	r.src_length = 4 * PS;
	r.dest_offset = 4 * PS;
	if (ioctl(m->bfd, FICLONERANGE, &r)) {
		int err = errno;

		close(src);
		ASSERT_TRUE(err == EOPNOTSUPP || err == EXDEV || err == EINVAL)
			TH_LOG("FICLONERANGE: %s", strerror(err));
		SKIP(return, "%s: no reflink (%s)", m->fs, strerror(err));
	}
	for (uint64_t i = 0; i < pages; i++) {
		if (i == 5)
			ASSERT_PRIV_PAGE(c, i, 32, i);
		else if (i >= 4 && i < 8)
			ASSERT_FILE_PAGE(c, i, 33, i);
		else
			ASSERT_FILE_PAGE(c, i, 32, i);
	}
	ASSERT_COWS(1);
	/* A copy of a reflinked page. */
	((volatile uint64_t *)PAGE(c, 6))[0] = 6;
	ASSERT_EQ(pat_word(33, 6, 1), ((volatile uint64_t *)PAGE(c, 6))[1]);
	ASSERT_COWS(2);
	ASSERT_EQ(-1, file_bad_page(m->bfd, 33, 4, 4));
	ASSERT_EQ(-1, file_bad_page(src, 33, 4, 4));
	close(src);
	munmap(c, pages * PS);
}

/*
 * Others' changes while the session faults: one thread writes the backing
 * file (O_DIRECT and buffered) and truncates it up and down, four threads
 * read and write through cowmap.  Private pages never lose a store nor get
 * SIGBUS; copies are counted exactly; the file ends as the writer made it.
 */
#define OC_PAGES	256
#define OC_THREADS	4
#define OC_OPS		5000
#define OC_OTHER_OPS	200
#define OC_SEED		35	/* the original contents */
#define OC_DIO		36	/* O_DIRECT writes */
#define OC_BUF		37	/* write(2) */

enum { OC_ORIG, OC_ZERO, OC_DIOW, OC_BUFW };

struct oc_shared {
	volatile uint64_t *map;
	int dfd, fd;
	_Atomic uint64_t written[OC_PAGES / 64];
	pthread_barrier_t start;
	/* The other writer's model of the file. */
	unsigned char model[OC_PAGES];
	uint64_t size;			/* pages */
	long errors;
	char err[256];
};

struct oc_thread {
	struct oc_shared *sh;
	pthread_t thr;
	unsigned int t;
	uint64_t last[OC_PAGES];
	long errors, sigbus;
	char err[256];
};

static bool oc_plausible(uint64_t v, uint64_t pg, unsigned int j)
{
	return v == pat_word(OC_SEED, pg, j) || v == pat_word(OC_DIO, pg, j) ||
	       v == pat_word(OC_BUF, pg, j) || v == 0;
}

static void oc_error(long *n, char *buf, const char *what, unsigned int t,
		     uint64_t pg, uint64_t got)
{
	if (!(*n)++)
		snprintf(buf, 256, "thread %u: %s: page %" PRIu64 ": %#" PRIx64,
			 t, what, pg, got);
}

static void *oc_fault_fn(void *arg)
{
	struct oc_thread *rt = arg;
	volatile uint64_t *map = rt->sh->map;
	uint64_t s = 0xC0FFEEULL * (rt->t + 3);
	uint32_t ops = slow_kernel() ? OC_OPS / 5 : OC_OPS;

	pthread_barrier_wait(&rt->sh->start);
	for (uint32_t op = 1; op <= ops; op++) {
		uint64_t r = rf_next(&s), pg = r % OC_PAGES, got = 0;
		volatile uint64_t *w = map + pg * MM_WORDS;
		unsigned int j = OC_THREADS + (r >> 32) % (MM_WORDS - OC_THREADS);

		if (!(op % 256))
			madvise((void *)(map + (pg & ~15ULL) * MM_WORDS), 16 * PS,
				MADV_DONTNEED);
		if ((r >> 16) & 1 && !(pg & 1)) {
			uint64_t v = rf_value(rt->t, pg, op);

			if (probe_write(&w[rt->t], v)) {
				rt->sigbus++;
				if (rt->last[pg])
					oc_error(&rt->errors, rt->err,
						 "SIGBUS writing a private page",
						 rt->t, pg, 0);
				continue;
			}
			rt->last[pg] = v;
			atomic_fetch_or(&rt->sh->written[pg / 64], 1ULL << (pg % 64));
		} else if (probe_read(&w[rt->t], &got)) {
			rt->sigbus++;
			if (rt->last[pg])
				oc_error(&rt->errors, rt->err,
					 "SIGBUS reading a private page", rt->t, pg, 0);
		} else if (rt->last[pg] ? got != rt->last[pg] :
					  !oc_plausible(got, pg, rt->t)) {
			oc_error(&rt->errors, rt->err, "bad slot", rt->t, pg, got);
		} else if (!probe_read(&w[j], &got) && !oc_plausible(got, pg, j)) {
			oc_error(&rt->errors, rt->err, "bad word", rt->t, pg, got);
		}
	}
	return NULL;
}

static void *oc_other_fn(void *arg)
{
	struct oc_shared *sh = arg;
	uint64_t s = 0xD1D0ULL, r, pg, n;
	char *buf;

	if (posix_memalign((void **)&buf, PS, 4 * PS))
		return NULL;
	pthread_barrier_wait(&sh->start);
	for (int op = 0; op < (slow_kernel() ? OC_OTHER_OPS / 4 : OC_OTHER_OPS); op++) {
		r = rf_next(&s);
		switch (r % 10) {
		case 0 ... 3:	/* O_DIRECT, 4 pages */
			pg = (r >> 8) % (OC_PAGES / 4) * 4;
			for (int i = 0; i < 4; i++)
				fill_pat(buf + i * PS, OC_DIO, pg + i);
			if (pwrite(sh->dfd, buf, 4 * PS, pg * PS) != 4 * PS) {
				oc_error(&sh->errors, sh->err, "O_DIRECT write",
					 99, pg, errno);
				break;
			}
			for (int i = 0; i < 4; i++)
				sh->model[pg + i] = OC_DIOW;
			if (sh->size < pg + 4)
				sh->size = pg + 4;
			break;
		case 4 ... 6:	/* write(2), 1 page */
			pg = (r >> 8) % OC_PAGES;
			fill_pat(buf, OC_BUF, pg);
			if (pwrite(sh->fd, buf, PS, pg * PS) != PS) {
				oc_error(&sh->errors, sh->err, "write", 99, pg, errno);
				break;
			}
			sh->model[pg] = OC_BUFW;
			if (sh->size < pg + 1)
				sh->size = pg + 1;
			break;
		default:	/* truncate */
			n = OC_PAGES / 4 + (r >> 8) % (OC_PAGES * 3 / 4 + 1);
			if (ftruncate(sh->fd, n * PS)) {
				oc_error(&sh->errors, sh->err, "ftruncate", 99, n, errno);
				break;
			}
			for (pg = n; pg < OC_PAGES; pg++)
				sh->model[pg] = OC_ZERO;
			sh->size = n;
			break;
		}
	}
	free(buf);
	return NULL;
}

static uint64_t oc_word(unsigned char model, uint64_t pg, unsigned int j)
{
	switch (model) {
	case OC_ORIG:
		return pat_word(OC_SEED, pg, j);
	case OC_DIOW:
		return pat_word(OC_DIO, pg, j);
	case OC_BUFW:
		return pat_word(OC_BUF, pg, j);
	default:
		return 0;
	}
}

TEST_F_TIMEOUT(mm, others_write_while_faulting, 240)
{
	static struct oc_thread rt[OC_THREADS];
	static struct oc_shared sh;
	uint64_t written = 0;
	pthread_t other;
	struct stat st;
	long sigbus = 0, errors = 0;
	char buf[PS];
	void *c;

	BEGIN(self);
	MAKE_MAP(c, OC_PAGES, OC_SEED);
	memset(&sh, 0, sizeof(sh));
	sh.map = c;
	sh.size = OC_PAGES;
	sh.fd = m->bfd;
	sh.dfd = open(m->path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (sh.dfd < 0 && errno == EINVAL)
		SKIP(return, "%s: no O_DIRECT", m->fs);
	ASSERT_LE(0, sh.dfd);
	ASSERT_EQ(0, pthread_barrier_init(&sh.start, NULL, OC_THREADS + 1));
	for (unsigned int t = 0; t < OC_THREADS; t++) {
		memset(&rt[t], 0, sizeof(rt[t]));
		rt[t].sh = &sh;
		rt[t].t = t;
		ASSERT_EQ(0, pthread_create(&rt[t].thr, NULL, oc_fault_fn, &rt[t]));
	}
	ASSERT_EQ(0, pthread_create(&other, NULL, oc_other_fn, &sh));
	for (unsigned int t = 0; t < OC_THREADS; t++) {
		ASSERT_EQ(0, pthread_join(rt[t].thr, NULL));
	}
	ASSERT_EQ(0, pthread_join(other, NULL));
	pthread_barrier_destroy(&sh.start);
	close(sh.dfd);

	ASSERT_EQ(0, sh.errors) TH_LOG("%s", sh.err);
	for (unsigned int t = 0; t < OC_THREADS; t++) {
		EXPECT_EQ(0, rt[t].errors) TH_LOG("%ld errors, first: %s",
						  rt[t].errors, rt[t].err);
		sigbus += rt[t].sigbus;
		errors += rt[t].errors;
	}
	ASSERT_EQ(0, errors);
	TH_LOG("%s: %ld accesses got SIGBUS; the file ends at %lu pages", m->fs,
	       sigbus, (unsigned long)sh.size);

	/* The file is what the other writer made of it. */
	ASSERT_EQ(0, fstat(m->bfd, &st));
	ASSERT_EQ(sh.size * PS, (uint64_t)st.st_size);
	for (uint64_t pg = 0; pg < sh.size; pg++) {
		ASSERT_EQ(PS, pread(m->bfd, buf, PS, pg * PS));
		for (unsigned int j = 0; j < MM_WORDS; j++) {
			ASSERT_EQ(oc_word(sh.model[pg], pg, j), ((uint64_t *)buf)[j])
				TH_LOG("file page %lu word %u", (unsigned long)pg, j);
		}
	}
	/* The session: private pages keep every store, others show the file. */
	for (uint64_t pg = 0; pg < OC_PAGES; pg++) {
		volatile uint64_t *w = sh.map + pg * MM_WORDS;
		bool priv = atomic_load(&sh.written[pg / 64]) & (1ULL << (pg % 64));

		if (priv) {
			written++;
			for (unsigned int t = 0; t < OC_THREADS; t++) {
				if (rt[t].last[pg]) {
					ASSERT_EQ(rt[t].last[pg], w[t]);
				}
			}
			continue;
		}
		if (pg >= sh.size) {
			ASSERT_EQ(SIGBUS, probe_read(w, NULL)) TH_LOG("page %lu",
							(unsigned long)pg);
			continue;
		}
		for (unsigned int j = 0; j < MM_WORDS; j++) {
			ASSERT_EQ(oc_word(sh.model[pg], pg, j), w[j])
				TH_LOG("page %lu word %u", (unsigned long)pg, j);
		}
	}
	ASSERT_COWS(written);
	munmap(c, OC_PAGES * PS);
}

TEST_F(mm, truncate_and_extend)
{
	const uint64_t pages = 16;
	struct cowmap_info in;
	uint64_t v;
	char *c;
	int fd;

	BEGIN(self);
	MAKE_MAP(c, pages, 20);
	read_pages(c, pages);
	fill_priv(PAGE(c, 2), 20, 2);
	fill_priv(PAGE(c, 10), 20, 10);
	fill_priv(PAGE(c, 13), 20, 13);
	ASSERT_COWS(3);

	/* Shrink to 8 pages and 100 bytes, through another fd. */
	OPEN_OTHER(fd);
	ASSERT_EQ(0, ftruncate(fd, 8 * PS + 100));
	INFO(in);
	ASSERT_EQ(8 * PS + 100, in.cur_size);
	ASSERT_EQ(pages * PS, in.size);

	for (uint64_t i = 0; i < 8; i++) {
		if (i == 2)
			ASSERT_PRIV_PAGE(c, i, 20, i);
		else
			ASSERT_FILE_PAGE(c, i, 20, i);
	}
	/* The page with EOF: data up to it, zeros after. */
	ASSERT_EQ(0, probe_read(PAGE(c, 8), &v));
	ASSERT_EQ(pat_word(20, 8, 0), v);
	ASSERT_EQ(0, memcmp((char *)PAGE(c, 8) + 100, (char[PS]){ 0 }, PS - 100));
	/* Beyond: SIGBUS, except private pages. */
	ASSERT_EQ(SIGBUS, probe_read(PAGE(c, 9), NULL));
	ASSERT_EQ(SIGBUS, probe_read(PAGE(c, 12), NULL));
	ASSERT_EQ(SIGBUS, probe_read(PAGE(c, 15), NULL));
	ASSERT_EQ(SIGBUS, probe_write(PAGE(c, 11), 1));
	ASSERT_EQ(0, probe_read(PAGE(c, 10), NULL));
	ASSERT_PRIV_PAGE(c, 10, 20, 10);
	ASSERT_PRIV_PAGE(c, 13, 20, 13);
	ASSERT_EQ(0, probe_write(PAGE(c, 10), 0x1010));
	ASSERT_EQ(0x1010, *(volatile uint64_t *)PAGE(c, 10));
	ASSERT_EQ(priv_word(20, 10, 1), ((volatile uint64_t *)PAGE(c, 10))[1]);
	ASSERT_COWS(3);

	/* Extend again: zeros where the file was cut, private pages kept. */
	ASSERT_EQ(0, ftruncate(fd, pages * PS));
	ASSERT_EQ(0, memcmp((char *)PAGE(c, 8) + 100, (char[PS]){ 0 }, PS - 100));
	for (uint64_t i = 9; i < pages; i++) {
		if (i == 10) {
			ASSERT_EQ(0x1010, *(volatile uint64_t *)PAGE(c, 10));
		} else if (i == 13) {
			ASSERT_PRIV_PAGE(c, i, 20, i);
		} else {
			ASSERT_EQ(0, probe_read(PAGE(c, i), NULL)) TH_LOG("page %lu",
							(unsigned long)i);
			ASSERT_ZERO_PAGE(c, i);
		}
	}
	/* A new copy of a hole page. */
	((volatile uint64_t *)PAGE(c, 9))[4] = 0x99;
	ASSERT_EQ(0, ((volatile uint64_t *)PAGE(c, 9))[3]);
	ASSERT_COWS(4);
	ASSERT_EQ(-1, file_bad_page(m->bfd, 20, 0, 8));
	ASSERT_EQ(-1, file_bad_zero(m->bfd, 9, 7));
	close(fd);
	munmap(c, pages * PS);
}

/* ------------------------------------------------------------------------
 * Reclaim.
 */
TEST_F(ext4, drop_caches_reread)
{
	const uint64_t pages = 64;
	unsigned char vec[64];
	int resident = 0;
	char *c;

	BEGIN(self);
	if (access("/proc/sys/vm/drop_caches", W_OK))
		SKIP(return, "drop_caches is not writable (not root)");
	MAKE_MAP(c, pages, 21);
	read_pages(c, pages);
	fill_priv(PAGE(c, 5), 21, 5);
	fill_priv(PAGE(c, 40), 21, 40);
	/* msync writes back the file, never the private pages. */
	ASSERT_EQ(0, msync(c, pages * PS, MS_SYNC));
	/* Unmap the second half: those cache pages can go. */
	ASSERT_EQ(0, madvise(c + 32 * PS, 32 * PS, MADV_DONTNEED));
	ASSERT_EQ(0, fsync(m->bfd));
	ASSERT_EQ(0, write_text("/proc/sys/vm/drop_caches", "3"));
	ASSERT_EQ(0, write_text("/proc/sys/vm/drop_caches", "3"));
	ASSERT_EQ(0, mincore(c, pages * PS, vec));
	for (uint64_t i = 32; i < pages; i++)
		resident += vec[i] & 1;
	TH_LOG("after drop_caches %d of the 32 unmapped pages are cached", resident);

	for (uint64_t i = 0; i < pages; i++) {
		if (i == 5 || i == 40)
			ASSERT_PRIV_PAGE(c, i, 21, i);
		else
			ASSERT_FILE_PAGE(c, i, 21, i);
	}
	ASSERT_COWS(2);
	ASSERT_FILE_INTACT(21, pages);
	munmap(c, pages * PS);
}

/* Pages of the file MADV_PAGEOUT reclaims from a plain mapping. */
static int pageout_plain(struct mm_ctx *m, uint64_t pages)
{
	static unsigned char vec[1024];
	int gone = 0;
	char *p;

	if (pages > sizeof(vec))
		return -1;
	mm_evict(m);
	p = mmap(NULL, pages * PS, PROT_READ, MAP_SHARED, m->bfd, 0);
	if (p == MAP_FAILED)
		return -1;
	read_pages(p, pages);
	if (madvise(p, pages * PS, MADV_PAGEOUT) ||
	    mincore(p, pages * PS, vec)) {
		munmap(p, pages * PS);
		return -1;
	}
	for (uint64_t i = 0; i < pages; i++)
		gone += !(vec[i] & 1);
	munmap(p, pages * PS);
	return gone;
}

TEST_F(mm, madv_pageout)
{
	const uint64_t pages = 64;
	unsigned char vec[64];
	int gone = 0;
	cpu_set_t set;
	char *c;

	BEGIN(self);
	if (!is_root())
		SKIP(return, "MADV_PAGEOUT of a file mapping needs ownership");
	/* One CPU: MADV_PAGEOUT drains only this CPU's LRU batches. */
	CPU_ZERO(&set);
	CPU_SET(sched_getcpu(), &set);
	sched_setaffinity(0, sizeof(set), &set);
	MAKE(pages, 22);
	mm_evict(m);
	MAP(c, pages, 0);
	read_pages(c, pages);
	fill_priv(PAGE(c, 10), 22, 10);
	fill_priv(PAGE(c, 20), 22, 20);

	if (madvise(c, pages * PS, MADV_PAGEOUT) && errno == EINVAL)
		SKIP(return, "no MADV_PAGEOUT");
	ASSERT_EQ(0, mincore(c, pages * PS, vec));
	for (uint64_t i = 0; i < pages; i++) {
		if (i == 10 || i == 20) {
			ASSERT_EQ(1, vec[i] & 1) TH_LOG("private page %lu",
							(unsigned long)i);
		} else {
			gone += !(vec[i] & 1);
		}
	}
	TH_LOG("%s: MADV_PAGEOUT reclaimed %d of %lu shared pages", m->fs, gone,
	       (unsigned long)pages - 2);

	for (uint64_t i = 0; i < pages; i++) {
		if (i == 10 || i == 20)
			ASSERT_PRIV_PAGE(c, i, 22, i);
		else
			ASSERT_FILE_PAGE(c, i, 22, i);
	}
	ASSERT_COWS(2);
	ASSERT_FILE_INTACT(22, pages);
	munmap(c, pages * PS);

	/*
	 * Reclaim found the pages through the backing file's rmap.  Unless
	 * the kernel pages out none of them from a plain mapping either: 6.1
	 * does not split large folios (XFS) for MADV_PAGEOUT.
	 */
	if (!gone) {
		int plain = pageout_plain(m, pages);

		if (plain == 0)
			SKIP(return, "%s: MADV_PAGEOUT reclaims nothing from a "
			     "plain mapping either", m->fs);
		ASSERT_LT(0, gone) TH_LOG("a plain mapping lost %d pages", plain);
	}
}

/*
 * Memory pressure in a memory cgroup: a file larger than the limit read
 * through cowmap (so reclaim must unmap cowmap-mapped page-cache pages), an
 * anonymous hog on top, then everything read again.
 */
/* Is @word one of the space-separated words of @list? */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n) {
		if ((p == list || p[-1] == ' ') &&
		    (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	}
	return false;
}

/*
 * A child cgroup (v2) of ours with @controller enabled: /sys/fs/cgroup, or
 * a cgroup2 mount of our own when that is not cgroup2.
 */
static int cg_make(struct mm_ctx *m, const char *controller, char *why,
		   size_t why_len)
{
	char base[256], buf[512], file[512];
	struct statfs sfs;

	snprintf(base, sizeof(base), "/sys/fs/cgroup");
	if (statfs(base, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		snprintf(m->cgmount, sizeof(m->cgmount), "/tmp/cowmap_mm_cg.XXXXXX");
		if (!mkdtemp(m->cgmount)) {
			m->cgmount[0] = 0;
			snprintf(why, why_len, "mkdtemp: %s", strerror(errno));
			return -1;
		}
		if (mount("cgroup2", m->cgmount, "cgroup2", 0, NULL)) {
			snprintf(why, why_len, "mount cgroup2: %s", strerror(errno));
			rmdir(m->cgmount);
			m->cgmount[0] = 0;
			return -1;
		}
		snprintf(base, sizeof(base), "%s", m->cgmount);
	}
	snprintf(file, sizeof(file), "%s/cgroup.controllers", base);
	if (read_text(file, buf, sizeof(buf)) < 0 || !has_word(buf, controller)) {
		snprintf(why, why_len, "no %s controller in %.64s", controller, base);
		return -1;
	}
	snprintf(file, sizeof(file), "%s/cgroup.subtree_control", base);
	snprintf(buf, sizeof(buf), "+%s", controller);
	write_text(file, buf);
	snprintf(m->cgroup, sizeof(m->cgroup), "%s/cowmap_mm.%d", base, getpid());
	if (mkdir(m->cgroup, 0755)) {
		snprintf(why, why_len, "mkdir %.64s: %.64s", m->cgroup, strerror(errno));
		m->cgroup[0] = 0;
		return -1;
	}
	return 0;
}

/* A memory cgroup limited to @limit bytes, no swap. */
static int cg_setup(struct __test_metadata *_metadata, struct mm_ctx *m,
		    long long limit, char *why, size_t why_len)
{
	char buf[64], file[512];

	if (cg_make(m, "memory", why, why_len))
		return -1;
	snprintf(file, sizeof(file), "%s/memory.max", m->cgroup);
	snprintf(buf, sizeof(buf), "%lld", limit);
	if (write_text(file, buf)) {
		snprintf(why, why_len, "cannot set %.64s", file);
		return -1;
	}
	snprintf(file, sizeof(file), "%s/memory.swap.max", m->cgroup);
	write_text(file, "0");
	return 0;
}

/*
 * The file is sparse but written: one page of data in every MP_SPARSE (the
 * rest are holes, whose zero pages the page cache holds all the same).
 */
#define MP_SPARSE	16

static int mp_bad(const volatile void *page, uint64_t pg)
{
	return pg % MP_SPARSE ? bad_zero(page) : bad_pat(page, 23, pg);
}

static int mp_make_file(struct mm_ctx *m, uint64_t pages)
{
	m->bfd = open(m->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (m->bfd < 0 || ftruncate(m->bfd, pages * PS))
		return -errno;
	for (uint64_t pg = 0; pg < pages; pg += MP_SPARSE) {
		int err = write_pat(m->bfd, 23, pg, 1);

		if (err)
			return err;
	}
	return fsync(m->bfd) ? -errno : 0;
}

enum { MP_OK = 0, MP_JOIN = 40, MP_MAP, MP_READ1, MP_HOG, MP_READ2 };

struct mp_result {
	long bad_page;
	int hog_status;
	double t_read1, t_hog, t_read2;
};

static int mp_hog(size_t bytes)
{
	char *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (a == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < bytes; i += PS)
		a[i] = 1;
	return 0;
}

static int mp_worker(struct mm_ctx *m, uint64_t pages, uint64_t stride,
		     size_t hog, int out)
{
	struct mp_result res = { .bad_page = -1 };
	char procs[512];
	double t0 = now_s();
	int ret = MP_OK;
	pid_t pid;
	char *c;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", m->cgroup);
	if (write_text(procs, "0"))
		return MP_JOIN;
	c = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, m->cfd, 0);
	if (c == MAP_FAILED)
		return MP_MAP;
	/* Pass 1: everything, more than the cgroup may hold. */
	for (uint64_t i = 0; i < pages; i++) {
		if (mp_bad(PAGE(c, i), i) >= 0) {
			res.bad_page = i;
			ret = MP_READ1;
			goto out;
		}
	}
	for (uint64_t i = 0; i < pages; i += stride)
		fill_priv(PAGE(c, i), 23, i);
	res.t_read1 = now_s() - t0;

	/* An anonymous hog in the same cgroup. */
	pid = fork();
	if (pid < 0)
		return MP_HOG;
	if (pid == 0)
		_exit(mp_hog(hog));
	if (waitpid(pid, &res.hog_status, 0) != pid)
		return MP_HOG;
	if (!WIFEXITED(res.hog_status) || WEXITSTATUS(res.hog_status)) {
		ret = MP_HOG;
		goto out;
	}
	res.t_hog = now_s() - t0;

	/* Pass 2: reclaimed pages come back from the file. */
	for (uint64_t i = 0; i < pages; i++) {
		int bad = i % stride ? mp_bad(PAGE(c, i), i) :
				       bad_priv(PAGE(c, i), 23, i);

		if (bad >= 0) {
			res.bad_page = i;
			ret = MP_READ2;
			goto out;
		}
	}
	res.t_read2 = now_s() - t0;
out:
	if (write(out, &res, sizeof(res)) != sizeof(res))
		return 99;
	return ret;
}

TEST_F_TIMEOUT(ext4, memory_pressure, 600)
{
	long long size_mb = 256, limit, steal, scan, refault, oom_kill;
	char why[256], file[512];
	struct mp_result res = { 0 };
	uint64_t pages, stride;
	struct statvfs sv;
	int pfd[2], status;
	const char *env;
	pid_t pid;

	BEGIN(self);
	if (!is_root())
		SKIP(return, "needs root (memory cgroup, drop_caches)");
	/* Smaller on debug (KASAN) kernels; $COWMAP_MM_PRESSURE_MB overrides. */
	if (slow_kernel())
		size_mb = 64;
	env = getenv("COWMAP_MM_PRESSURE_MB");
	if (env && atoll(env) > 0)
		size_mb = atoll(env);
	ASSERT_EQ(0, statvfs(m->dir, &sv));
	if ((long long)(sv.f_bavail * sv.f_frsize >> 20) < size_mb + 32)
		size_mb = (long long)(sv.f_bavail * sv.f_frsize >> 20) - 32;
	if (size_mb < 48)
		SKIP(return, "%s: not enough space for the file", m->dir);
	size_mb &= ~1LL;
	limit = (size_mb / 3) << 20;		/* the cgroup holds a third */
	pages = (uint64_t)size_mb << 20 >> 12;
	stride = 256;				/* a private page per MiB */
	if (cg_setup(_metadata, m, limit, why, sizeof(why)))
		SKIP(return, "memory cgroup: %s", why);

	ASSERT_EQ(0, mp_make_file(m, pages));
	m->cfd = cm_session(m->bfd, -1, 0);
	ASSERT_LE(0, m->cfd);
	/* Evict it, so that the worker's reads charge its cgroup. */
	mm_evict(m);
	ASSERT_EQ(0, write_text("/proc/sys/vm/drop_caches", "1"));

	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(mp_worker(m, pages, stride, limit / 2, pfd[1]));
	kid_add(m, pid);
	close(pfd[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	kid_reaped(m, pid);
	/* Nothing to read if the worker died (OOM-killed?). */
	if (read(pfd[0], &res, sizeof(res)) != sizeof(res))
		res.bad_page = -2;
	close(pfd[0]);

	snprintf(file, sizeof(file), "%s/memory.stat", m->cgroup);
	steal = keyed_value(file, "pgsteal");
	scan = keyed_value(file, "pgscan");
	refault = keyed_value(file, "workingset_refault_file");
	snprintf(file, sizeof(file), "%s/memory.events", m->cgroup);
	oom_kill = keyed_value(file, "oom_kill");
	TH_LOG("%lld MiB file, %lld MiB limit: pgscan %lld pgsteal %lld "
	       "refault_file %lld oom_kill %lld; read %.1fs, hog at %.1fs, "
	       "reread at %.1fs", size_mb, limit >> 20, scan, steal, refault,
	       oom_kill, res.t_read1, res.t_hog, res.t_read2);

	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("worker: status %#x", status);
	ASSERT_EQ(MP_OK, WEXITSTATUS(status))
		TH_LOG("worker failed at step %d, page %ld, hog status %#x",
		       WEXITSTATUS(status), res.bad_page, res.hog_status);
	ASSERT_EQ(0, oom_kill);
	/* Most of the file had to be reclaimed while mapped. */
	ASSERT_LE((long long)(pages - (uint64_t)(limit >> 12)) / 2, steal);
	ASSERT_COWS(pages / stride);
	/* The file is untouched. */
	for (uint64_t pg = 0; pg < pages; pg++) {
		char buf[PS];

		ASSERT_EQ(PS, pread(m->bfd, buf, PS, pg * PS));
		ASSERT_EQ(-1, mp_bad(buf, pg)) TH_LOG("file page %lu",
						      (unsigned long)pg);
	}
}

/* ------------------------------------------------------------------------
 * The module stays loaded while mapped.
 */
static long module_refcnt(void)
{
	char buf[32];

	if (read_text("/sys/module/cowmap/refcnt", buf, sizeof(buf)) < 0)
		return -1;
	return atol(buf);
}

TEST_F(ext4, rmmod_refused_while_mapped)
{
	const uint64_t pages = 8;
	long base, ref;
	char *c;
	int ret;

	BEGIN(self);
	if (!is_root())
		SKIP(return, "delete_module needs CAP_SYS_MODULE");
	base = module_refcnt();
	if (base < 0)
		SKIP(return, "no /sys/module/cowmap/refcnt (built in?)");
	/* Processes of a test that timed out before may still be exiting. */
	for (int i = 0; i < 300 && base > 0; i++) {
		usleep(100 * 1000);
		base = module_refcnt();
	}
	ASSERT_EQ(0, base) TH_LOG("another user holds the module");
	MAKE_MAP(c, pages, 24);
	fill_priv(PAGE(c, 1), 24, 1);
	ASSERT_EQ(1, module_refcnt());

	/* Close every fd: only the mapping holds the session now. */
	ASSERT_EQ(0, close(m->cfd));
	m->cfd = -1;
	ASSERT_EQ(0, close(m->bfd));
	m->bfd = -1;
	ref = module_refcnt();
	/* Never try to unload a module whose count says it is unused. */
	ASSERT_EQ(1, ref);

	errno = 0;
	ret = syscall(SYS_delete_module, "cowmap", O_NONBLOCK);
	ASSERT_EQ(-1, ret);
	/* delete_module(): try_stop_module() fails with -EWOULDBLOCK (== EAGAIN). */
	ASSERT_EQ(EWOULDBLOCK, errno) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(1, module_refcnt());

	/* The mapping still works: old private page, a new copy. */
	ASSERT_PRIV_PAGE(c, 1, 24, 1);
	fill_priv(PAGE(c, 2), 24, 2);
	ASSERT_PRIV_PAGE(c, 2, 24, 2);
	ASSERT_FILE_PAGE(c, 3, 24, 3);

	/* Split it: still one pin (one file), gone after the last munmap. */
	ASSERT_EQ(0, munmap(c + 4 * PS, PS));
	ASSERT_EQ(1, module_refcnt());
	ASSERT_EQ(0, munmap(c, 4 * PS));
	ASSERT_EQ(1, module_refcnt());
	ASSERT_EQ(0, munmap(c + 5 * PS, 3 * PS));
	ASSERT_EQ(0, module_refcnt());
	/* The backing file is untouched. */
	m->bfd = open(m->path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, m->bfd);
	ASSERT_FILE_INTACT(24, pages);
}

/* ------------------------------------------------------------------------
 * Populate, mlock, access through GUP, migration, memcg, large offsets.
 */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#define MADV_POPULATE_WRITE	23
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE	101
#endif

TEST_F(ext4, populate_and_mlock)
{
	const uint64_t pages = 16;
	char *c, *c2;

	BEGIN(self);
	MAKE(pages, 25);

	/* MAP_POPULATE prefaults for reading only: no copies. */
	c = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_POPULATE, m->cfd, 0);
	ASSERT_NE(MAP_FAILED, c);
	for (uint64_t i = 0; i < pages; i++) {
		ASSERT_TRUE(pte_present(PAGE(c, i))) TH_LOG("page %lu",
							(unsigned long)i);
	}
	ASSERT_COWS(0);

	/* mlock: VM_SPECIAL VMAs are never locked; it populates, no copies. */
	ASSERT_EQ(0, madvise(c, pages * PS, MADV_DONTNEED));
	ASSERT_EQ(0, mlock(c, pages * PS));
	ASSERT_EQ(0, smaps_field(c, "Locked:"));
	ASSERT_TRUE(pte_present(PAGE(c, 7)));
	ASSERT_COWS(0);
	ASSERT_EQ(0, munlock(c, pages * PS));

	/* MADV_POPULATE_READ: no copies either. */
	ASSERT_EQ(0, madvise(c, pages * PS, MADV_DONTNEED));
	if (madvise(c, pages * PS, MADV_POPULATE_READ) && errno == EINVAL)
		SKIP(return, "no MADV_POPULATE_READ");
	ASSERT_TRUE(pte_present(PAGE(c, 7)));
	ASSERT_COWS(0);

	/* MADV_POPULATE_WRITE is a write to every page: one copy each. */
	ASSERT_EQ(0, madvise(c + 4 * PS, 4 * PS, MADV_POPULATE_WRITE));
	ASSERT_COWS(4);
	for (uint64_t i = 0; i < pages; i++)
		ASSERT_FILE_PAGE(c, i, 25, i);
	ASSERT_EQ(0, madvise(c, pages * PS, MADV_POPULATE_WRITE));
	ASSERT_COWS(pages);
	ASSERT_FILE_PAGE(c, 0, 25, 0);

	/* mlockall(MCL_FUTURE): a new mapping is neither locked nor copied. */
	ASSERT_EQ(0, mlockall(MCL_CURRENT | MCL_FUTURE));
	c2 = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, m->cfd, 0);
	munlockall();
	ASSERT_NE(MAP_FAILED, c2);
	ASSERT_EQ(0, smaps_field(c2, "Locked:"));
	for (uint64_t i = 0; i < pages; i++)
		ASSERT_FILE_PAGE(c2, i, 25, i);
	ASSERT_COWS(pages);
	ASSERT_FILE_INTACT(25, pages);
	munmap(c2, pages * PS);
	munmap(c, pages * PS);
}

TEST_F(ext4, remote_access)
{
	const uint64_t pages = 8;
	struct cowmap_event ev[8];
	const struct cowmap_event *e;
	uint64_t v = 0x1122334455667788ULL, got = 0;
	struct iovec local, remote;
	int mem, status;
	char *c, *ro;
	pid_t pid;
	long n;

	BEGIN(self);
	MAKE_MAP(c, pages, 26);
	ro = mmap(NULL, pages * PS, PROT_READ, MAP_SHARED, m->cfd, 0);
	ASSERT_NE(MAP_FAILED, ro);

	/* /proc/self/mem (GUP with FOLL_FORCE) writes like a store. */
	mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, mem);
	ASSERT_EQ(8, pwrite(mem, &v, 8, (uintptr_t)PAGE(c, 2) + 16));
	ASSERT_EQ(v, ((volatile uint64_t *)PAGE(c, 2))[2]);
	ASSERT_EQ(v, ((volatile uint64_t *)PAGE(ro, 2))[2]);
	ASSERT_COWS(1);
	ASSERT_EQ(8, pread(mem, &got, 8, (uintptr_t)PAGE(ro, 2) + 16));
	ASSERT_EQ(v, got);
	/* ...but cannot force a write into a read-only shared mapping. */
	errno = 0;
	ASSERT_EQ(-1, pwrite(mem, &v, 8, (uintptr_t)PAGE(ro, 3)));
	ASSERT_EQ(EIO, errno);
	ASSERT_FILE_PAGE(ro, 3, 26, 3);
	ASSERT_COWS(1);
	close(mem);

	/* process_vm_writev from another process: that process copies. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		pid_t parent = getppid();

		local.iov_base = &v;
		local.iov_len = 8;
		remote.iov_base = (void *)PAGE(c, 5);
		remote.iov_len = 8;
		if (process_vm_writev(parent, &local, 1, &remote, 1, 0) != 8)
			_exit(1);
		local.iov_base = &got;
		remote.iov_base = (void *)PAGE(c, 2);
		remote.iov_len = 8;
		if (process_vm_readv(parent, &local, 1, &remote, 1, 0) != 8 ||
		    got != pat_word(26, 2, 0))
			_exit(2);
		_exit(0);
	}
	kid_add(m, pid);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	kid_reaped(m, pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(v, *(volatile uint64_t *)PAGE(c, 5));
	ASSERT_EQ(pat_word(26, 5, 1), ((volatile uint64_t *)PAGE(c, 5))[1]);
	ASSERT_COWS(2);
	n = cm_events_all(m->cfd, ev, 8);
	ASSERT_EQ(2, n);
	ASSERT_COW_BY(e, ev, n, 2 * PS, getpid());
	ASSERT_COW_BY(e, ev, n, 5 * PS, pid);
	ASSERT_FILE_INTACT(26, pages);
	munmap(ro, pages * PS);
	munmap(c, pages * PS);
}

/*
 * Soft-offlining a page-cache page migrates it: rmap must find the cowmap
 * VMA, and the mapping then shows the new page.  A private page is not
 * migratable and must come out of it untouched.
 */
TEST_F(ext4, soft_offline_migrates)
{
	const uint64_t pages = 8;
	uint64_t old_pfn, new_pfn, priv_pfn;
	char *c, *p;
	int ret;

	BEGIN(self);
	if (!is_root())
		SKIP(return, "MADV_SOFT_OFFLINE needs CAP_SYS_ADMIN");
	MAKE_MAP(c, pages, 27);
	MAP_PLAIN(p, pages);
	read_pages2(c, p, pages);
	fill_priv(PAGE(c, 6), 27, 6);
	priv_pfn = pfn_of(PAGE(c, 6));
	old_pfn = pfn_of(PAGE(c, 3));
	ASSERT_NE(0, old_pfn);
	ASSERT_EQ(old_pfn, pfn_of(PAGE(p, 3)));

	ret = madvise((void *)PAGE(c, 3), PS, MADV_SOFT_OFFLINE);
	if (ret && (errno == EINVAL || errno == EOPNOTSUPP))
		SKIP(return, "no MADV_SOFT_OFFLINE (CONFIG_MEMORY_FAILURE)");
	ASSERT_EQ(0, ret) TH_LOG("MADV_SOFT_OFFLINE: %s", strerror(errno));
	ASSERT_FILE_PAGE(c, 3, 27, 3);
	new_pfn = pfn_of(PAGE(c, 3));
	ASSERT_NE(0, new_pfn);
	ASSERT_NE(old_pfn, new_pfn);
	ASSERT_EQ(new_pfn, pfn_of(PAGE(p, 3)));
	ASSERT_FILE_PAGE(p, 3, 27, 3);

	/* A private page: refused, kept. */
	errno = 0;
	ret = madvise((void *)PAGE(c, 6), PS, MADV_SOFT_OFFLINE);
	TH_LOG("soft offline of a private page: %d (%s)", ret,
	       ret ? strerror(errno) : "ok");
	ASSERT_EQ(-1, ret);
	ASSERT_EQ(EIO, errno);
	ASSERT_EQ(priv_pfn, pfn_of(PAGE(c, 6)));
	ASSERT_PRIV_PAGE(c, 6, 27, 6);
	((volatile uint64_t *)PAGE(c, 6))[0] = 6;
	ASSERT_COWS(1);
	ASSERT_FILE_INTACT(27, pages);
	munmap(p, pages * PS);
	munmap(c, pages * PS);
}

/*
 * Private pages are charged to the faulting task's memcg (the exact amount;
 * cowmap_memcg_test.c covers what a too small memory.max does).
 */
static long long cg_current(struct mm_ctx *m)
{
	char file[512], buf[64];

	snprintf(file, sizeof(file), "%s/memory.current", m->cgroup);
	if (read_text(file, buf, sizeof(buf)) < 0)
		return -1;
	return atoll(buf);
}

static int memcg_worker(struct mm_ctx *m, uint64_t pages, int out)
{
	long long cur[3];
	char procs[512];
	char *c;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", m->cgroup);
	if (write_text(procs, "0"))
		return 1;
	cur[0] = cg_current(m);
	c = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, m->cfd, 0);
	if (c == MAP_FAILED)
		return 2;
	for (uint64_t i = 0; i < pages; i++)
		((volatile uint64_t *)PAGE(c, i))[0] = i;
	cur[1] = cg_current(m);
	/* The last user goes away: the session frees its pages. */
	munmap(c, pages * PS);
	close(m->cfd);
	cur[2] = cg_current(m);
	if (write(out, cur, sizeof(cur)) != sizeof(cur))
		return 3;
	return 0;
}

TEST_F(ext4, memcg_charges_private_pages)
{
	const uint64_t pages = 2048;	/* 8 MiB */
	long long cur[3], charged, want = 2 * pages * PS;
	char why[256];
	int pfd[2], status;
	pid_t pid;

	BEGIN(self);
	if (!is_root())
		SKIP(return, "needs root (memory cgroup)");
	if (cg_setup(_metadata, m, 512LL << 20, why, sizeof(why)))
		SKIP(return, "memory cgroup: %s", why);
	MAKE(pages, 28);
	/* The page cache stays charged to our cgroup, not the worker's. */
	ASSERT_EQ(-1, file_bad_page(m->bfd, 28, 0, pages));

	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(memcg_worker(m, pages, pfd[1]));
	kid_add(m, pid);
	close(m->cfd);		/* the worker holds the only reference */
	m->cfd = -1;
	close(pfd[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	kid_reaped(m, pid);
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("worker: status %#x", status);
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(sizeof(cur), read(pfd[0], cur, sizeof(cur)));
	close(pfd[0]);

	charged = cur[1] - cur[0];
	TH_LOG("memory.current: %lld before, +%lld KiB after %lu copies, "
	       "%+lld KiB after release", cur[0], charged >> 10,
	       (unsigned long)pages, (cur[2] - cur[0]) / 1024);
	/*
	 * At least the private page of each copy (today also its base
	 * snapshot: two pages); per-CPU charge batches and page tables aside.
	 */
	ASSERT_LE(want / 2 - (1LL << 20), charged);
	ASSERT_GE(want + (4LL << 20), charged);
	ASSERT_GE(1LL << 20, cur[2] - cur[0]);
	ASSERT_FILE_INTACT(28, pages);
}

/* File offsets beyond 4 GiB (and 2^32 pages of bytes). */
TEST_F(ext4, high_offset)
{
	const uint64_t base = 1ULL << 40;	/* 1 TiB, sparse */
	const uint64_t pages = 16;
	struct cowmap_event ev[4];
	struct cowmap_info in;
	char *c;
	long n;

	BEGIN(self);
	ASSERT_EQ(0, mm_make_file(m, 1, 29));
	ASSERT_EQ(0, ftruncate(m->bfd, base + pages * PS));
	ASSERT_EQ(0, write_pat(m->bfd, 29, base / PS + 8, 4));
	m->cfd = cm_session(m->bfd, -1, 0);
	ASSERT_LE(0, m->cfd);
	INFO(in);
	ASSERT_EQ(base + pages * PS, in.size);

	/* Four pages more than the file has. */
	c = mmap(NULL, (pages + 4) * PS, PROT_READ | PROT_WRITE, MAP_SHARED,
		 m->cfd, base);
	ASSERT_NE(MAP_FAILED, c) TH_LOG("mmap at 1 TiB: %s", strerror(errno));
	ASSERT_FALSE(congruent(c, base));
	for (uint64_t i = 0; i < pages; i++) {
		if (i >= 8 && i < 12)
			ASSERT_FILE_PAGE(c, i, 29, base / PS + i);
		else
			ASSERT_ZERO_PAGE(c, i);
	}
	((volatile uint64_t *)PAGE(c, 9))[0] = 9;
	((volatile uint64_t *)PAGE(c, 14))[0] = 14;
	ASSERT_COWS(2);
	n = cm_events_all(m->cfd, ev, 4);
	ASSERT_EQ(2, n);
	ASSERT_NE(NULL, find_cow(ev, n, base + 9 * PS));
	ASSERT_NE(NULL, find_cow(ev, n, base + 14 * PS));
	/* Beyond EOF, far out. */
	ASSERT_EQ(SIGBUS, probe_read(PAGE(c, pages + 1), NULL));
	ASSERT_EQ(SIGBUS, probe_write(PAGE(c, pages), 1));
	ASSERT_COWS(2);
	ASSERT_EQ(-1, file_bad_page(m->bfd, 29, base / PS + 8, 4));
	ASSERT_EQ(-1, file_bad_zero(m->bfd, base / PS + 12, 4));
	munmap(c, (pages + 4) * PS);
}

/*
 * userfaultfd: MISSING registration is refused (not anon/shmem/hugetlb, and
 * VM_SPECIAL).  Asynchronous write-protection (6.7+) works on any memory
 * unless the kernel refuses VM_SPECIAL VMAs (a 6.12 stable fix); where it is
 * accepted it makes fork copy the page tables (vma_needs_copy), and cowmap
 * must not care.
 */
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC	(1 << 15)
#endif

static int uffd_open(uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int err;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/*
 * Soft-dirty tracking (/proc/self/clear_refs, pagemap bit 55) sees writes
 * through cowmap: clearing write-protects the private pages, the next write
 * goes through page_mkwrite again, without a second copy.
 */
TEST_F(ext4, soft_dirty)
{
	const uint64_t pages = 8;
	char *c;

	BEGIN(self);
	if (access("/proc/self/clear_refs", W_OK))
		SKIP(return, "/proc/self/clear_refs is not writable");
	MAKE_MAP(c, pages, 38);
	fill_priv(PAGE(c, 1), 38, 1);
	(void)*PAGE(c, 2);
	/* A new mapping is all soft-dirty (VM_SOFTDIRTY)... if tracked at all. */
	if (!(pagemap_entry(PAGE(c, 1)) & PM_SOFT_DIRTY) ||
	    write_text("/proc/self/clear_refs", "4"))
		SKIP(return, "no soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY)");
	ASSERT_FALSE(pagemap_entry(PAGE(c, 1)) & PM_SOFT_DIRTY);
	ASSERT_FALSE(pagemap_entry(PAGE(c, 2)) & PM_SOFT_DIRTY);

	((volatile uint64_t *)PAGE(c, 1))[0] = 0x1;		/* private */
	ASSERT_TRUE(pagemap_entry(PAGE(c, 1)) & PM_SOFT_DIRTY);
	(void)*PAGE(c, 2);					/* read only */
	ASSERT_FALSE(pagemap_entry(PAGE(c, 2)) & PM_SOFT_DIRTY);
	ASSERT_COWS(1);
	((volatile uint64_t *)PAGE(c, 3))[0] = 0x3;		/* a copy */
	ASSERT_TRUE(pagemap_entry(PAGE(c, 3)) & PM_SOFT_DIRTY);
	ASSERT_COWS(2);
	ASSERT_EQ(priv_word(38, 1, 1), ((volatile uint64_t *)PAGE(c, 1))[1]);
	ASSERT_EQ(pat_word(38, 3, 1), ((volatile uint64_t *)PAGE(c, 3))[1]);
	ASSERT_FILE_INTACT(38, pages);
	munmap(c, pages * PS);
}

/*
 * O_DIRECT I/O with cowmap memory as the buffer: the kernel pins the pages
 * (GUP).  Writing from it stores what the session sees; reading into it is
 * a write to every page: one copy each, holding the data read.
 */
TEST_F(ext4, odirect_io_on_cowmap_buffers)
{
	const uint64_t pages = 8;
	char *c, *buf;
	int fd;

	BEGIN(self);
	MAKE_MAP(c, pages, 39);
	fill_priv(PAGE(c, 1), 39, 1);
	fill_priv(PAGE(c, 2), 39, 2);

	fd = open(m->path2, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EINVAL)
		SKIP(return, "no O_DIRECT");
	ASSERT_LE(0, fd);
	/* Pages 0..3 of the session (0 and 3 shared, 1 and 2 private). */
	ASSERT_EQ(4 * PS, pwrite(fd, c, 4 * PS, 0)) TH_LOG("%s", strerror(errno));
	ASSERT_COWS(2);
	ASSERT_EQ(0, posix_memalign((void **)&buf, PS, 4 * PS));
	ASSERT_EQ(4 * PS, pread(fd, buf, 4 * PS, 0));
	ASSERT_FILE_PAGE(buf, 0, 39, 0);
	ASSERT_PRIV_PAGE(buf, 1, 39, 1);
	ASSERT_PRIV_PAGE(buf, 2, 39, 2);
	ASSERT_FILE_PAGE(buf, 3, 39, 3);

	/* Read those 4 pages into session pages 4..7 (shared, 6 mapped). */
	(void)*PAGE(c, 6);
	ASSERT_EQ(4 * PS, pread(fd, c + 4 * PS, 4 * PS, 0)) TH_LOG("%s",
								    strerror(errno));
	ASSERT_COWS(6);
	ASSERT_FILE_PAGE(c, 4, 39, 0);
	ASSERT_PRIV_PAGE(c, 5, 39, 1);
	ASSERT_PRIV_PAGE(c, 6, 39, 2);
	ASSERT_FILE_PAGE(c, 7, 39, 3);
	/* Into a private page: no new copy. */
	ASSERT_EQ(PS, pread(fd, c + 1 * PS, PS, 3 * PS));
	ASSERT_FILE_PAGE(c, 1, 39, 3);
	ASSERT_COWS(6);
	ASSERT_FILE_INTACT(39, pages);
	free(buf);
	close(fd);
	munmap(c, pages * PS);
}

/*
 * Stores that do not fault: an O_DIRECT read into the mapping pins the
 * pages (GUP) first and the data lands later.  A drain in between must not
 * lose them: replaying the log over the backing file gives what was read
 * (uapi: "Applying them in order reproduces the session's view"), checked
 * against the test's own image (the source file's pattern), as are the
 * pages right after each read and the view at the end.
 * The reads are slowed down (cgroup io.max) so that drains overlap them.
 */
#define PW_PAGES	1024	/* the backing file: 4 MiB */
#define PW_SRC_PAGES	2048	/* where the reads come from */
#define PW_READS	60

/* Apply the records of log @lfd to @img; returns the number of records. */
static long log_replay(int lfd, unsigned char *img, uint64_t img_len)
{
	const struct cowmap_log_header *h;
	unsigned char *log;
	uint64_t off, len;
	struct stat st;
	long n = 0;

	if (fstat(lfd, &st) || !(log = malloc(st.st_size + 1)))
		return -1;
	if (pread(lfd, log, st.st_size, 0) != st.st_size)
		goto bad;
	h = (const void *)log;
	if ((uint64_t)st.st_size < sizeof(*h) || memcmp(h->magic, COWMAP_LOG_MAGIC, 8))
		goto bad;
	for (off = le32toh(h->header_len); off < (uint64_t)st.st_size; n++) {
		const struct cowmap_log_record *r = (const void *)(log + off);

		if (off + sizeof(*r) > (uint64_t)st.st_size ||
		    le32toh(r->magic) != COWMAP_LOG_REC_MAGIC)
			goto bad;
		len = le32toh(r->length);
		if (off + COWMAP_LOG_REC_SIZE(len) > (uint64_t)st.st_size ||
		    le64toh(r->offset) + len > img_len)
			goto bad;
		/* The new bytes follow the old ones. */
		memcpy(img + le64toh(r->offset), log + off + sizeof(*r) + len, len);
		off += COWMAP_LOG_REC_SIZE(len);
	}
	free(log);
	return n;
bad:
	free(log);
	return -1;
}

struct pw_ctx {
	int cfd;
	atomic_int stop;
	long drains, errors;
};

static void *pw_drainer(void *arg)
{
	struct pw_ctx *p = arg;

	while (!atomic_load(&p->stop)) {
		struct cowmap_drain d = { 0 };

		if (ioctl(p->cfd, COWMAP_IOC_DRAIN, &d))
			p->errors++;
		p->drains++;
	}
	return NULL;
}

struct pw_result {
	int step;
	long drains, records, bad, first_bad;
	long dma_bad, first_dma_bad;	/* reads that did not land as read */
	long view_bad, first_view_bad;	/* view pages that are not the image */
	uint64_t undrained;
};


static int pw_worker(struct mm_ctx *m, bool bounce, int out)
{
	struct pw_result res = { .first_bad = -1, .first_dma_bad = -1,
				 .first_view_bad = -1 };
	struct cowmap_drain d = { 0 };
	struct cowmap_info in;
	struct pw_ctx p = { 0 };
	struct cowmap_bind b = { 0 };
	uint64_t s = 0x9127ULL;
	unsigned char *img, *want;
	char *buf;
	char procs[512];
	pthread_t thr;
	int lfd, sfd;
	char *c;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", m->cgroup);
	res.step = 1;
	if (write_text(procs, "0"))
		goto out;
	res.step = 2;
	lfd = open(m->path3, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	sfd = open(m->path2, O_RDONLY | O_DIRECT | O_CLOEXEC);
	p.cfd = open(COWMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (lfd < 0 || sfd < 0 || p.cfd < 0)
		goto out;
	b.fd = m->bfd;
	b.log_fd = lfd;
	b.flags = COWMAP_BIND_LOG;
	res.step = 3;
	if (ioctl(p.cfd, COWMAP_IOC_BIND, &b))
		goto out;
	c = mmap(NULL, PW_PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, p.cfd, 0);
	if (c == MAP_FAILED || pthread_create(&thr, NULL, pw_drainer, &p))
		goto out;
	res.step = 4;
	/* The test's own image: the backing file's pattern, then each read. */
	want = malloc(PW_PAGES * PS);
	if (posix_memalign((void **)&buf, PS, 64 * PS) || !want)
		goto out;
	for (uint64_t pg = 0; pg < PW_PAGES; pg++)
		fill_pat(want + pg * PS, 40, pg);
	for (int i = 0; i < PW_READS; i++) {
		uint64_t n = 16 + rf_next(&s) % 49;
		uint64_t dst = rf_next(&s) % (PW_PAGES - n);
		uint64_t src = rf_next(&s) % (PW_SRC_PAGES - n);
		/* Into the mapping (GUP), or through a buffer and stores. */
		char *to = bounce ? buf : c + dst * PS;

		if (pread(sfd, to, n * PS, src * PS) == (ssize_t)(n * PS)) {
			if (bounce)
				memcpy(c + dst * PS, buf, n * PS);
		} else {
			atomic_store(&p.stop, 1);
			pthread_join(thr, NULL);
			goto out;
		}
		/* The data landed: source pages src.., as the test wrote them. */
		for (uint64_t k = 0; k < n; k++) {
			if (bad_pat(c + (dst + k) * PS, 41, src + k) >= 0) {
				if (res.first_dma_bad < 0)
					res.first_dma_bad = dst + k;
				res.dma_bad++;
			}
			fill_pat(want + (dst + k) * PS, 41, src + k);
		}
	}
	atomic_store(&p.stop, 1);
	pthread_join(thr, NULL);
	res.drains = p.drains;
	res.step = 5;
	if (p.errors || ioctl(p.cfd, COWMAP_IOC_DRAIN, &d) || cm_info(p.cfd, &in))
		goto out;
	res.undrained = in.undrained_pages;

	/*
	 * The backing file, with the log applied, is what the test wrote:
	 * its own image, built from the reads it made.  So is the view.
	 */
	res.step = 6;
	img = malloc(PW_PAGES * PS);
	if (!img || pread(m->bfd, img, PW_PAGES * PS, 0) != PW_PAGES * PS)
		goto out;
	res.records = log_replay(lfd, img, PW_PAGES * PS);
	if (res.records < 0)
		goto out;
	for (uint64_t pg = 0; pg < PW_PAGES; pg++) {
		if (memcmp(img + pg * PS, want + pg * PS, PS)) {
			if (res.first_bad < 0)
				res.first_bad = pg;
			res.bad++;
		}
		if (memcmp(c + pg * PS, want + pg * PS, PS)) {
			if (res.first_view_bad < 0)
				res.first_view_bad = pg;
			res.view_bad++;
		}
	}
	res.step = 0;
out:
	if (write(out, &res, sizeof(res)) != sizeof(res))
		return 99;
	return res.step;
}

TEST_F_TIMEOUT(ext4, odirect_read_during_drain, 180)
{
	struct pw_result res = { 0 };
	char why[256], file[512], max[96];
	int pfd[2], status, src;
	struct stat st;
	pid_t pid;

	BEGIN(self);
	if (!is_root())
		SKIP(return, "needs root (io cgroup)");
	if (cg_make(m, "io", why, sizeof(why)))
		SKIP(return, "io cgroup: %s", why);
	ASSERT_EQ(0, mm_make_file(m, PW_PAGES, 40));
	src = open(m->path2, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, src);
	ASSERT_EQ(0, write_pat(src, 41, 0, PW_SRC_PAGES));
	ASSERT_EQ(0, fsync(src));
	close(src);
	/* 4 MiB/s of reads from the scratch disk for the worker. */
	ASSERT_EQ(0, stat(m->path2, &st));
	snprintf(file, sizeof(file), "%s/io.max", m->cgroup);
	snprintf(max, sizeof(max), "%u:%u rbps=4194304", major(st.st_dev),
		 minor(st.st_dev));
	if (write_text(file, max))
		SKIP(return, "io.max \"%s\" refused: %s is not a whole disk?", max,
		     m->dir);

	/* First through a buffer (the control), then straight in. */
	for (int bounce = 1; bounce >= 0; bounce--) {
		ASSERT_EQ(0, pipe(pfd));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(pw_worker(m, bounce, pfd[1]));
		kid_add(m, pid);
		close(pfd[1]);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		kid_reaped(m, pid);
		ASSERT_EQ(sizeof(res), read(pfd[0], &res, sizeof(res)));
		close(pfd[0]);
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("worker failed at step %d",
							 res.step);
		TH_LOG("%d O_DIRECT reads %s, %ld drains meanwhile, %ld log "
		       "records", PW_READS, bounce ? "copied in" : "into the mapping",
		       res.drains, res.records);
		EXPECT_EQ(0, res.dma_bad)
			TH_LOG("%ld pages did not show the data just read into them "
			       "(first: page %ld)", res.dma_bad, res.first_dma_bad);
		EXPECT_EQ(0, res.view_bad)
			TH_LOG("%ld pages of the view are not what was read (first: "
			       "page %ld)", res.view_bad, res.first_view_bad);
		ASSERT_EQ(0, res.bad)
			TH_LOG("the file and log miss data in %ld pages (first: page "
			       "%ld); the session calls %lu pages undrained", res.bad,
			       res.first_bad, (unsigned long)res.undrained);
	}
	ASSERT_FILE_INTACT(40, PW_PAGES);
}

TEST_F(ext4, userfaultfd)
{
	const uint64_t pages = 8;
	struct uffdio_register reg;
	int fd;
	char *c;

	BEGIN(self);
	MAKE_MAP(c, pages, 30);
	fill_priv(PAGE(c, 1), 30, 1);
	fd = uffd_open(0);
	if (fd == -ENOSYS || fd == -EPERM)
		SKIP(return, "no userfaultfd: %s", strerror(-fd));
	ASSERT_LE(0, fd) TH_LOG("userfaultfd: %s", strerror(-fd));
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)c;
	reg.range.len = pages * PS;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	errno = 0;
	ASSERT_EQ(-1, ioctl(fd, UFFDIO_REGISTER, &reg));
	ASSERT_EQ(EINVAL, errno);
	close(fd);
	ASSERT_COWS(1);
	ASSERT_FILE_INTACT(30, pages);
	munmap(c, pages * PS);
}

/*
 * Async uffd-wp on the cowmap VMA: refused (EINVAL) where the kernel keeps
 * userfaultfd off VM_SPECIAL VMAs, else writes resolve the protection and
 * copy as usual, and fork copies the PTEs.  A test of its own, so that a
 * kernel without UFFD_FEATURE_WP_ASYNC (6.1) is a skip, not a pass.
 */
TEST_F(ext4, userfaultfd_wp)
{
	const uint64_t pages = 8;
	struct uffdio_register reg;
	struct uffdio_writeprotect wp;
	int fd, status;
	pid_t pid;
	char *c;

	BEGIN(self);
	MAKE_MAP(c, pages, 30);
	fill_priv(PAGE(c, 1), 30, 1);
	fd = uffd_open(UFFD_FEATURE_WP_ASYNC);
	if (fd == -ENOSYS || fd == -EPERM) {
		munmap(c, pages * PS);
		SKIP(return, "no userfaultfd: %s", strerror(-fd));
	}
	if (fd == -EINVAL) {
		munmap(c, pages * PS);
		SKIP(return, "no UFFD_FEATURE_WP_ASYNC on this kernel");
	}
	ASSERT_LE(0, fd);
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)c;
	reg.range.len = pages * PS;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(fd, UFFDIO_REGISTER, &reg)) {
		/* Kernels with "userfaultfd: do not allow VM_SPECIAL" say no. */
		ASSERT_EQ(EINVAL, errno);
		TH_LOG("async uffd-wp refused on the VM_SPECIAL cowmap VMA");
		close(fd);
		ASSERT_COWS(1);
		munmap(c, pages * PS);
		return;
	}
	read_pages(c, pages);
	memset(&wp, 0, sizeof(wp));
	wp.range.start = (uintptr_t)c;
	wp.range.len = pages * PS;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	ASSERT_EQ(0, ioctl(fd, UFFDIO_WRITEPROTECT, &wp)) TH_LOG("%s",
								  strerror(errno));
	/* Writes resolve the protection themselves, then copy as usual. */
	((volatile uint64_t *)PAGE(c, 1))[0] = 0x1;
	((volatile uint64_t *)PAGE(c, 3))[0] = 0x3;
	ASSERT_EQ(0x1, *(volatile uint64_t *)PAGE(c, 1));
	ASSERT_EQ(priv_word(30, 1, 1), ((volatile uint64_t *)PAGE(c, 1))[1]);
	ASSERT_EQ(0x3, *(volatile uint64_t *)PAGE(c, 3));
	ASSERT_EQ(pat_word(30, 3, 1), ((volatile uint64_t *)PAGE(c, 3))[1]);
	ASSERT_COWS(2);

	/* Protect again, then fork: the child gets copies of the PTEs. */
	ASSERT_EQ(0, ioctl(fd, UFFDIO_WRITEPROTECT, &wp));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		bool copied = pte_present(PAGE(c, 1));

		if (*(volatile uint64_t *)PAGE(c, 1) != 0x1 ||
		    *(volatile uint64_t *)PAGE(c, 3) != 0x3)
			_exit(1);
		((volatile uint64_t *)PAGE(c, 1))[2] = 0x12;	/* private */
		((volatile uint64_t *)PAGE(c, 4))[0] = 0x4;	/* copy */
		_exit(copied ? 0 : 2);
	}
	kid_add(m, pid);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	kid_reaped(m, pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_NE(1, WEXITSTATUS(status));
	TH_LOG("fork %s the PTEs of the uffd-wp VMA",
	       WEXITSTATUS(status) ? "did not copy" : "copied");
	ASSERT_EQ(0x12, ((volatile uint64_t *)PAGE(c, 1))[2]);
	ASSERT_EQ(0x4, *(volatile uint64_t *)PAGE(c, 4));
	ASSERT_EQ(pat_word(30, 4, 1), ((volatile uint64_t *)PAGE(c, 4))[1]);
	((volatile uint64_t *)PAGE(c, 5))[0] = 0x5;
	ASSERT_COWS(4);
	close(fd);
	ASSERT_FILE_INTACT(30, pages);
	munmap(c, pages * PS);
}

TEST_HARNESS_MAIN
