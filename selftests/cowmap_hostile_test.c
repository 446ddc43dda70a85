// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile users: one regression test per finding of the hostile-user
 * review of the module (docs/testing.md, "Hostile users"), each expecting
 * the behaviour the fixed module has:
 *
 *  1 discard_race       DISCARD racing first-write faults and a plain
 *                       read-only mapping of the file (old: double free)
 *  2 noexec             a session mapping is never executable
 *  3 pin_hog, ring_cap  per-uid cap on private pages (private copy and base
 *                       snapshot) and on event rings
 *  4 lost_log           a torn tail the user may not truncate by path is
 *                       cut through the log's own fd, also by the final
 *                       drain; lost_log_sparse: the same when one write
 *                       carries hundreds of pages' records;
 *                       lost_log_batches: when a drain takes several
 *                       writes, the second one failing
 *  5 log_fs, final_drain_fsize, final_drain_creds
 *                       logs only on ext4/xfs/btrfs/tmpfs; the final drain
 *                       honours the closing task's RLIMIT_FSIZE and writes
 *                       with the binder's credentials
 *  6 hwpoison           a poisoned private page faults with SIGBUS
 *                       (BUS_MCEERR_AR), not an oops in __do_fault()
 *  7 fd_passing, nondumpable, events_group, pidns_pid
 *                       the binder owns a session; events need
 *                       CAP_SYS_ADMIN; pids in the reader's pid namespace
 *    zap_scope          copies and diffs zap the session's own mappings
 *                       only, not every mapping of the file
 *  8 set_config_caps, zero_caps
 *                       SET_CONFIG needs CAP_SYS_ADMIN; caps of 0 refused
 *
 * Unprivileged parts run in forked children as uid 1000 (tester) or 1001;
 * they report through their exit status (0: pass) and TH_LOG.  The tests
 * that crash the old kernel (hwpoison, discard_race) come last.
 * $COWMAP_HOSTILE_TESTS (comma-separated names) runs only those tests;
 * $COWMAP_HOSTILE_SECS bounds discard_race (default 5 s).
 */
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "cowmap_harness.h"
#include "lib/mm.h"
#include "lib/util.h"
#include "lib/nl.h"

#define TESTER		1000	/* /etc/passwd of the VM: tester */
#define OTHER		1001
#define NPAGES		40	/* lost_log, final_drain_fsize */
#define WIN_PAGES	4096	/* pin_hog: 16 MiB windows */
#define KPF_HWPOISON	19
#define WHY_LEN		192	/* check_log()'s reasons */
#ifndef BUS_MCEERR_AR
#define BUS_MCEERR_AR	4
#endif

/* In a child: become @uid (and gid) for good; _exit(126) if not. */
static void become(uid_t uid)
{
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
	    setresuid(uid, uid, uid)) {
		perror("drop privileges");
		_exit(126);
	}	/*
	 * Dumpable again, as after an exec: a process that changed its uid
	 * without exec is not, and cowmap keeps the sessions it binds out of
	 * its uid's other processes' reach (netlink), like its memory.
	 */
	prctl(PR_SET_DUMPABLE, 1);
}

/* A child's exit code; 128 + signal if killed, -1 if waiting failed. */
static int child_code(pid_t pid)
{
	int st = cm_wait(pid);

	if (st == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* /proc/meminfo MemTotal in pages. */
static uint64_t ram_pages(void)
{
	long long kb = keyed_value("/proc/meminfo", "MemTotal");

	return kb > 0 ? (uint64_t)kb / 4 : 0;
}

/* A u64 module parameter; -errno if it cannot be read. */
static int param_u64(const char *name, uint64_t *v)
{
	char buf[64];
	int err = cm_param_read(name, buf, sizeof(buf));

	if (!err)
		*v = strtoull(buf, NULL, 10);
	return err;
}

/* A resolved netlink socket; -errno. */
static int nl_open(struct nlu_family *f)
{
	int sk = nlu_socket(), err;

	if (sk < 0)
		return sk;
	err = nlu_resolve(sk, f);
	if (err) {
		close(sk);
		return err;
	}
	return sk;
}

/* Netlink command @cmd naming session @id (and a log fd if >= 0). */
static int nl_session_cmd(uint8_t cmd, uint64_t id, int log_fd)
{
	struct nlu_family f;
	uint8_t attrs[32];
	size_t len;
	int sk = nl_open(&f), err;

	if (sk < 0)
		return sk;
	len = nlu_put_u64(attrs, COWMAP_A_SESSION_ID, id);
	if (log_fd >= 0)
		len += nlu_put_u32(attrs + len, COWMAP_A_LOG_FD, log_fd);
	err = nlu_request(sk, f.id, cmd, 0, attrs, len, NULL, NULL, 5000);
	close(sk);
	return err;
}

/* SET_CONFIG with one u64 attribute of the CONFIG nest. */
static int nl_set_config(int attr, uint64_t val)
{
	struct nlu_family f;
	uint8_t nest[16], attrs[32];
	size_t nl;
	int sk = nl_open(&f), err;

	if (sk < 0)
		return sk;
	nl = nlu_put_u64(nest, attr, val);
	err = nlu_request(sk, f.id, COWMAP_CMD_SET_CONFIG, 0, attrs,
			  nlu_put(attrs, COWMAP_A_CONFIG | NLA_F_NESTED, nest, nl),
			  NULL, NULL, 5000);
	close(sk);
	return err;
}

struct pid_ctx {
	int found;
	uint32_t pid;
};

static int pid_cb(const struct nlmsghdr *nh, void *arg)
{
	struct pid_ctx *c = arg;
	const uint8_t *p = (const uint8_t *)NLMSG_DATA(nh) + GENL_HDRLEN;
	const struct nlattr *n, *a;

	n = nlu_find(p, nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN), COWMAP_A_SESSION);
	if (!n)
		return 0;
	a = nlu_find((const uint8_t *)n + NLA_HDRLEN, n->nla_len - NLA_HDRLEN,
		     COWMAP_SESSION_A_PID);
	if (a && a->nla_len == NLA_HDRLEN + 4) {
		memcpy(&c->pid, (const uint8_t *)a + NLA_HDRLEN, 4);
		c->found = 1;
	}
	return 0;
}

/* GET_SESSION (do) of @id: the session's pid attribute; -errno. */
static int nl_session_pid(uint64_t id, uint32_t *pid)
{
	struct pid_ctx c = { 0 };
	struct nlu_family f;
	uint8_t attrs[16];
	int sk = nl_open(&f), err;

	if (sk < 0)
		return sk;
	err = nlu_request(sk, f.id, COWMAP_CMD_GET_SESSION, 0, attrs,
			  nlu_put_u64(attrs, COWMAP_A_SESSION_ID, id), pid_cb, &c, 5000);
	close(sk);
	if (!err && !c.found)
		err = -ENOENT;
	if (!err)
		*pid = c.pid;
	return err;
}

/*
 * Check a log file: a header with a good CRC, then only whole records
 * (good CRC, seq 0, 1, 2...) whose old bytes chain from @base (@len bytes)
 * and whose new bytes are @want's.  No torn tail.  The replay goes to
 * @img.  Returns the number of records, or -1 with the reason in @why
 * (WHY_LEN bytes).
 */
static long check_log(const char *path, const uint8_t *base, const uint8_t *want,
		      size_t len, uint8_t *img, char *why)
{
	const struct cowmap_log_header *h;
	size_t flen, hl, pos;
	uint8_t *log = cm_slurp(path, &flen);
	struct cm_rec r;
	long n = 0;
	char w[64];
	int k;

	memcpy(img, base, len);
	if (!log || flen < sizeof(*h)) {
		snprintf(why, WHY_LEN, "log of %zu bytes: no header", log ? flen : 0);
		free(log);
		return -1;
	}
	h = (const void *)log;
	hl = le32toh(h->header_len);
	if (memcmp(h->magic, COWMAP_LOG_MAGIC, 8) || hl > flen || hl < sizeof(*h) ||
	    cm_crc32c_skip(log, hl, offsetof(struct cowmap_log_header, crc)) !=
	    le32toh(h->crc)) {
		snprintf(why, WHY_LEN, "bad log header (header_len %zu, file %zu bytes)",
			 hl, flen);
		free(log);
		return -1;
	}
	pos = 0;
	while ((k = cm_rec_next(log + hl, flen - hl, &pos, &r, w)) == 1) {
		if (r.seq != (uint64_t)n || r.offset + r.length > len ||
		    memcmp(img + r.offset, r.old, r.length) ||
		    memcmp(want + r.offset, r.new, r.length)) {
			snprintf(why, WHY_LEN, "record %ld (seq %llu, %#llx+%u) does not chain",
				 n, (unsigned long long)r.seq,
				 (unsigned long long)r.offset, r.length);
			free(log);
			return -1;
		}
		memcpy(img + r.offset, r.new, r.length);
		n++;
	}
	if (k < 0)
		snprintf(why, WHY_LEN,
			 "after %ld whole records (offsets past the %zu-byte header): %s%.40s",
			 n, hl,
			 cm_rec_torn(log + hl, flen - hl, pos) ? "torn tail: " : "", w);
	free(log);
	return k < 0 ? -1 : n;
}

FIXTURE(hostile) {
	char *dir;		/* 1777 on the ext4 scratch */
	char nx[512];		/* noexec bind mount, or "" */
	char ramfs[512];	/* ramfs mount, or "" */
	uint64_t saved_total, saved_user;
	int restore_total, restore_user;
};

FIXTURE_SETUP(hostile)
{
	const char *scratch;

	self->dir = NULL;
	self->nx[0] = self->ramfs[0] = 0;
	self->restore_total = self->restore_user = 0;
	if (!cm_selected("COWMAP_HOSTILE_TESTS", _metadata->name))
		CM_SETUP_SKIP("not in $COWMAP_HOSTILE_TESTS");
	CM_SKIP_IF_NO_DEVICE();
	if (geteuid())
		CM_SETUP_SKIP("needs root");
	CM_SETUP_SCRATCH_DIR(scratch, self->dir, "hostile");
	ASSERT_EQ(0, chmod(self->dir, 01777));
}

FIXTURE_TEARDOWN(hostile)
{
	if (self->restore_total)
		cm_param_write_u64("max_total_pages", self->saved_total);
	if (self->restore_user)
		cm_param_write_u64("max_user_pages", self->saved_user);
	if (self->nx[0])
		umount2(self->nx, MNT_DETACH);
	if (self->ramfs[0])
		umount2(self->ramfs, MNT_DETACH);
	if (self->dir)
		cm_rm_rf(self->dir);
	free(self->dir);
}

/* A file of @len bytes (cm_fill(@seed)) in the fixture's directory. */
static char *make_file(FIXTURE_DATA(hostile) *self, const char *name,
		       uint64_t seed, size_t len, uint8_t *copy)
{
	uint8_t *data = malloc(len ? len : 1);
	char *p = cm_path(self->dir, name);
	int fd;

	cm_fill(seed, data, len);
	fd = cm_create(p, data, len);
	if (fd < 0 || fchmod(fd, 0644)) {
		free(p);
		p = NULL;
	}
	if (fd >= 0)
		close(fd);
	if (copy)
		memcpy(copy, data, len);
	free(data);
	return p;
}

/* ---------------------------------------------------------------- 2 -- */

/*
 * noexec: a session mapping is never executable, whatever its file's
 * mount: PROT_EXEC is refused (EPERM) and mprotect() to PROT_EXEC too
 * (EACCES, VM_MAYEXEC cleared).  A file on a noexec mount is where the old
 * module ran code a plain mmap refuses; the same file on an exec mount
 * shows that the code is runnable when mapped plainly.
 */
TEST_F(hostile, noexec)
{
	static const uint8_t code[] = { 0xb8, 0x2a, 0, 0, 0, 0xc3 }; /* mov $42,%eax; ret */
	uint8_t page[PG] = { 0 };
	char *xdir = cm_path(self->dir, "exec"), *xp, *nxp;
	int fx, fnx, dx, dnx;
	void *m;

	memcpy(page, code, sizeof(code));
	ASSERT_EQ(0, mkdir(xdir, 0755));
	snprintf(self->nx, sizeof(self->nx), "%s/noexec", self->dir);
	ASSERT_EQ(0, mkdir(self->nx, 0755));
	ASSERT_EQ(0, mount(xdir, self->nx, NULL, MS_BIND, NULL))
		TH_LOG("bind mount: %s", strerror(errno));
	ASSERT_EQ(0, mount(NULL, self->nx, NULL, MS_BIND | MS_REMOUNT | MS_NOEXEC, NULL))
		TH_LOG("remount noexec: %s", strerror(errno));
	xp = cm_path(xdir, "code");
	nxp = cm_path(self->nx, "code");
	fx = cm_create(xp, page, PG);
	ASSERT_LE(0, fx);
	close(fx);
	fx = open(xp, O_RDONLY | O_CLOEXEC);
	fnx = open(nxp, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fx);
	ASSERT_LE(0, fnx);

	/* Sanity: the mount refuses a plain executable mapping. */
	m = mmap(NULL, PG, PROT_READ | PROT_EXEC, MAP_SHARED, fnx, 0);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EPERM, errno);
	if (m != MAP_FAILED)
		munmap(m, PG);

	dnx = cm_session(fnx, -1, 0);
	ASSERT_LE(0, dnx) TH_LOG("bind: %s", strerror(-dnx));
	errno = 0;
	m = cm_map(dnx, 0, PG, PROT_READ | PROT_EXEC);
	EXPECT_EQ(MAP_FAILED, m)
		TH_LOG("PROT_EXEC session mapping of a noexec file was allowed%s",
		       m != MAP_FAILED && ((int (*)(void))m)() == 42 ?
		       ", and its code ran (returned 42)" : "");
	EXPECT_EQ(EPERM, errno) TH_LOG("mmap(PROT_EXEC): %s", strerror(errno));
	if (m != MAP_FAILED)
		munmap(m, PG);

	m = cm_map(dnx, 0, PG, PROT_READ);
	ASSERT_NE(MAP_FAILED, m) TH_LOG("PROT_READ: %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(-1, mprotect(m, PG, PROT_READ | PROT_EXEC))
		TH_LOG("mprotect(PROT_EXEC) of a noexec session mapping was allowed");
	EXPECT_EQ(EACCES, errno) TH_LOG("mprotect: %s", strerror(errno));
	munmap(m, PG);

	/* The same file on its exec mount: plainly mapped, the code runs... */
	m = mmap(NULL, PG, PROT_READ | PROT_EXEC, MAP_SHARED, fx, 0);
	ASSERT_NE(MAP_FAILED, m) TH_LOG("plain exec mapping: %s", strerror(errno));
	EXPECT_EQ(42, ((int (*)(void))m)());
	munmap(m, PG);
	/* ...but not through a session, there either. */
	dx = cm_session(fx, -1, 0);
	ASSERT_LE(0, dx);
	errno = 0;
	m = cm_map(dx, 0, PG, PROT_READ | PROT_EXEC);
	EXPECT_EQ(MAP_FAILED, m) TH_LOG("PROT_EXEC session mapping allowed on the exec mount");
	EXPECT_EQ(EPERM, errno) TH_LOG("mmap(PROT_EXEC): %s", strerror(errno));
	if (m != MAP_FAILED)
		munmap(m, PG);

	close(dx);
	close(dnx);
	close(fx);
	close(fnx);
	free(xp);
	free(nxp);
	free(xdir);
}

/* ---------------------------------------------------------------- 3 -- */

/* The uid cap the test expects: the parameter, or the spec's default. */
static uint64_t user_cap(struct __test_metadata *_metadata, int *have)
{
	uint64_t v = 0;
	int err = param_u64("max_user_pages", &v);

	*have = !err;
	if (err) {
		TH_LOG(MODPARAM_DIR "max_user_pages: %s (no per-uid cap); "
		       "going on with totalram/16", strerror(-err));
		v = ram_pages() / 16;
	}
	return v;
}

struct hog {
	volatile int ready, stop;
	uint64_t pages;
	int sig;
	int bind_err;
};

/*
 * pin_hog: uid 1000 maps 16 MiB windows of a sparse file through new
 * sessions, writes every page, unmaps and keeps the session: the private
 * pages stay pinned.  The uid cap (in private pages, each a copy and its
 * base snapshot) must stop it with SIGBUS after at most max_user_pages
 * private pages, and a bystander (uid 1001, 128 MiB of anonymous memory it keeps
 * touching) must survive.  The hog stops at that bound plus two windows in
 * any case, so that a module without the cap fails the test instead of
 * OOM-killing the VM's processes.
 */
TEST_F_TIMEOUT(hostile, pin_hog, 600)
{
	struct hog *h = cm_shared(sizeof(*h));
	uint64_t cap, bound, slack = 64, size;
	char *bp = cm_path(self->dir, "sparse");
	pid_t by, hog;
	int have, fd, code;

	ASSERT_NE(NULL, h);
	cap = user_cap(_metadata, &have);
	EXPECT_TRUE(have);
	ASSERT_LT(0, cap);
	bound = cap + 2 * WIN_PAGES;
	size = 2 * ram_pages() * PG;
	if (size < (bound + WIN_PAGES) * PG)
		size = (bound + WIN_PAGES) * PG;
	fd = open(bp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, size));
	close(fd);

	by = fork();
	ASSERT_LE(0, by);
	if (by == 0) {
		size_t len = 128UL << 20;
		volatile uint8_t *a;

		become(OTHER);
		a = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (a == MAP_FAILED)
			_exit(2);
		for (unsigned int round = 1; ; round++) {
			for (size_t i = 0; i < len; i += PG)
				a[i] = round;
			h->ready = 1;
			if (h->stop)
				_exit(0);
		}
	}
	while (!h->ready)
		usleep(10000);

	hog = fork();
	ASSERT_LE(0, hog);
	if (hog == 0) {
		int bfd;

		become(TESTER);
		bfd = open(bp, O_RDONLY | O_CLOEXEC);
		if (bfd < 0)
			_exit(2);
		for (uint64_t w = 0; !h->sig && h->pages < bound; w++) {
			int dev = cm_session(bfd, -1, 0);
			uint8_t *m;

			if (dev < 0) {
				h->bind_err = dev;
				break;
			}
			m = cm_map(dev, PGS(w * WIN_PAGES), PGS(WIN_PAGES),
				   PROT_READ | PROT_WRITE);
			if (m == MAP_FAILED)
				_exit(3);
			for (uint64_t p = 0; p < WIN_PAGES && h->pages < bound; p++) {
				int sig = probe_write(m + PGS(p), w * WIN_PAGES + p + 1);

				if (sig) {
					h->sig = sig;
					break;
				}
				h->pages++;
			}
			munmap(m, PGS(WIN_PAGES));
		}
		/* The sessions (and their pages) go with the process. */
		_exit(0);
	}
	code = child_code(hog);
	h->stop = 1;
	EXPECT_EQ(0, child_code(by))
		TH_LOG("the bystander (uid %d, 128 MiB) did not survive the hog", OTHER);
	EXPECT_EQ(0, code);
	TH_LOG("max_user_pages %llu: the hog wrote %llu pages, then %s (bind: %s)",
	       (unsigned long long)cap, (unsigned long long)h->pages,
	       h->sig == SIGBUS ? "SIGBUS" : h->sig ? strsignal(h->sig) :
	       "no signal", h->bind_err ? strerror(-h->bind_err) : "ok");
	EXPECT_EQ(SIGBUS, h->sig)
		TH_LOG("no SIGBUS after %llu private pages (bound %llu)",
		       (unsigned long long)h->pages, (unsigned long long)bound);
	EXPECT_GE(cap + slack, h->pages);
	free(bp);
	munmap(h, sizeof(*h));
}

/*
 * ring_cap: an event ring is charged at bind.  uid 1000 binding sessions
 * with the largest ring (COWMAP_RING_MAX events) gets ENOSPC once the
 * rings would pass max_user_pages, and never holds more than that.  A ring
 * counts as the private pages its memory would hold (two pages each).
 */
TEST_F_TIMEOUT(hostile, ring_cap, 300)
{
	uint64_t ring_pages = ((uint64_t)COWMAP_RING_MAX * sizeof(struct cowmap_event) +
			       2 * PG - 1) / (2 * PG);
	char *bp = make_file(self, "backing", 1, PGS(4), NULL);
	int *res = cm_shared(2 * sizeof(int));
	uint64_t cap, bound;
	int have;
	pid_t pid;

	ASSERT_NE(NULL, bp);
	ASSERT_NE(NULL, res);
	cap = user_cap(_metadata, &have);
	EXPECT_TRUE(have);
	bound = cap / ring_pages + 2;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int bfd, i, err = 0;

		become(TESTER);
		bfd = open(bp, O_RDONLY | O_CLOEXEC);
		if (bfd < 0)
			_exit(2);
		for (i = 0; i < (int)bound; i++) {
			int dev = cm_open_dev();

			if (dev < 0)
				_exit(3);
			err = cm_bind(dev, bfd, -1, 0, COWMAP_RING_MAX, NULL);
			if (err)
				break;
		}
		res[0] = i;
		res[1] = err;
		_exit(0);
	}
	ASSERT_EQ(0, child_code(pid));
	TH_LOG("%d binds with %u-event rings (%llu pages each), then %s",
	       res[0], COWMAP_RING_MAX, (unsigned long long)ring_pages,
	       res[1] ? strerror(-res[1]) : "no refusal");
	EXPECT_EQ(-ENOSPC, res[1]);
	EXPECT_GE(cap, res[0] * ring_pages);
	free(bp);
}

/* ---------------------------------------------------------------- 4 -- */

/*
 * In a child: bind a session of the file @bp with the log @lfd and write
 * @want (@len bytes from offset 0) through it, unmapped again.  Returns
 * the session fd; _exit()s on failure.
 */
static int child_dirty(struct __test_metadata *_metadata, const char *bp,
		       int lfd, const void *want, size_t len)
{
	int bfd = open(bp, O_RDONLY | O_CLOEXEC), dev;
	uint8_t *m;

	dev = cm_session(bfd, lfd, 0);
	if (dev < 0) {
		TH_LOG("bind with the log: %s", strerror(-dev));
		_exit(2);
	}
	m = cm_map(dev, 0, len, PROT_READ | PROT_WRITE);
	if (m == MAP_FAILED)
		_exit(3);
	memcpy(m, want, len);
	munmap(m, len);
	return dev;
}

/*
 * The body of lost_log*: the file @bp (@base, @len bytes) becomes @want
 * through a session of uid 1000 with the log @lp bound (root's, 0644); a
 * drain under RLIMIT_FSIZE of the header plus @room bytes must fail with
 * EFBIG; the final drain (exit) writes the rest.  The log must then hold
 * whole records only that turn @base into @want.
 */
static void lost_log_run(struct __test_metadata *_metadata, const char *bp,
			 const char *lp, const uint8_t *base,
			 const uint8_t *want, size_t len, off_t room)
{
	uint8_t *img = malloc(len);
	char why[WHY_LEN];
	int lfd, code;
	long n;
	pid_t pid;

	ASSERT_NE(NULL, img);
	lfd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ASSERT_LE(0, lfd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
		int dev, err;

		become(TESTER);
		dev = child_dirty(_metadata, bp, lfd, want, len);
		rl.rlim_cur = cm_fsize(lfd) + room;
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl))
			_exit(4);
		err = cm_drain(dev, -1, NULL);
		rl.rlim_cur = RLIM_INFINITY;
		if (setrlimit(RLIMIT_FSIZE, &rl))
			_exit(4);
		if (err != -EFBIG) {
			TH_LOG("drain under RLIMIT_FSIZE: %s, not EFBIG", strerror(-err));
			_exit(5);
		}
		/* Exit: the final drain writes the rest. */
		_exit(0);
	}
	code = child_code(pid);
	ASSERT_EQ(0, code);
	close(lfd);
	n = check_log(lp, base, want, len, img, why);
	EXPECT_LT(0, n) TH_LOG("the log: %s", why);
	EXPECT_EQ(0, memcmp(img, want, len))
		TH_LOG("%ld records do not reproduce the %zu pages written", n, len / PG);
	free(img);
}

/*
 * lost_log: root gives uid 1000 an fd of a root-owned 0644 log (O_WRONLY);
 * the user binds it, dirties 40 pages, and a drain fails part way
 * (RLIMIT_FSIZE: EFBIG).  The user may not truncate the log by path, so
 * the torn tail must be cut through the fd; the final drain (exit) cuts it
 * too.  The log must then hold whole records only, reproducing every page.
 */
TEST_F_TIMEOUT(hostile, lost_log, 120)
{
	uint8_t *base = malloc(PGS(NPAGES)), *want = malloc(PGS(NPAGES));
	char *bp = make_file(self, "backing", 41, PGS(NPAGES), base);
	char *lp = cm_path(self->dir, "log");

	ASSERT_NE(NULL, bp);
	cm_fill(42, want, PGS(NPAGES));
	/* Room for 15 of ~40 page records, mid-record. */
	lost_log_run(_metadata, bp, lp, base, want, PGS(NPAGES),
		     15 * COWMAP_LOG_REC_SIZE(PG) + 100);
	free(bp);
	free(lp);
	free(base);
	free(want);
}

/*
 * lost_log over @npages pages of a file of seed @seed: 8 bytes of page i
 * change at (i * @stride) % (PG - 8), and every byte of every
 * @dense_every'th page (0: none); the drain has @room bytes of log.
 */
static void lost_log_pages(struct __test_metadata *_metadata,
			   FIXTURE_DATA(hostile) *self, size_t npages, int seed,
			   size_t stride, size_t dense_every, off_t room)
{
	const size_t len = PGS(npages);
	uint8_t *base = malloc(len), *want = malloc(len);
	char *bp = make_file(self, "backing", seed, len, base);
	char *lp = cm_path(self->dir, "log");

	ASSERT_NE(NULL, bp);
	memcpy(want, base, len);
	for (size_t i = 0; i < npages; i++) {
		if (dense_every && !(i % dense_every))
			cm_fill(seed + 1 + i, want + PGS(i), PG);
		else
			cm_fill(seed + 1 + i, want + PGS(i) + (i * stride) % (PG - 8), 8);
	}
	lost_log_run(_metadata, bp, lp, base, want, len, room);
	free(bp);
	free(lp);
	free(base);
	free(want);
}

/*
 * lost_log_sparse: lost_log with a few bytes changed on each of 600 pages,
 * so that one write to the log carries the records of hundreds of pages,
 * and the drain fails after 100 of them.  The pages whose records did not
 * reach the log keep their changes for the final drain: the log must still
 * reproduce every page.
 */
TEST_F_TIMEOUT(hostile, lost_log_sparse, 120)
{
	lost_log_pages(_metadata, self, 600, 43, 72, 0,
		       100 * COWMAP_LOG_REC_SIZE(8) + 13);
}

/*
 * lost_log_batches: lost_log over more pages than one write to the log
 * carries (the drain writes several batches): 8 bytes changed on each of
 * 2600 pages, every byte on every 100th, so the records outgrow the
 * drain's first buffer within a batch.  The drain fails in its second
 * write, after the first batch's 1013 sparse and 11 dense records: the
 * pages of the failed batch keep their changes for the final drain.
 */
TEST_F_TIMEOUT(hostile, lost_log_batches, 300)
{
	lost_log_pages(_metadata, self, 2600, 45, 40, 100,
		       1500 * COWMAP_LOG_REC_SIZE(8) +
		       20 * COWMAP_LOG_REC_SIZE(PG) + 13);
}

/* ---------------------------------------------------------------- 5 -- */

/*
 * log_fs: logs go only to ext4, xfs, btrfs and tmpfs.  A log on ramfs is
 * refused with EOPNOTSUPP by BIND_LOG and by DRAIN_FD; tmpfs (/tmp, the
 * test's directory) is accepted.
 */
TEST_F(hostile, log_fs)
{
	char *bp = make_file(self, "backing", 5, PGS(4), NULL), *lp;
	int bfd, lfd, tfd, dev, err;
	struct statfs sf;
	uint8_t *m;

	ASSERT_NE(NULL, bp);
	snprintf(self->ramfs, sizeof(self->ramfs), "%s/ramfs", self->dir);
	ASSERT_EQ(0, mkdir(self->ramfs, 0755));
	if (mount("ramfs", self->ramfs, "ramfs", 0, NULL)) {
		self->ramfs[0] = 0;
		SKIP(return, "mount ramfs: %s", strerror(errno));
	}
	lp = cm_path(self->ramfs, "log");
	lfd = open(lp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, lfd);
	bfd = open(bp, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, bfd);

	dev = cm_open_dev();
	ASSERT_LE(0, dev);
	err = cm_bind(dev, bfd, lfd, COWMAP_BIND_LOG, 0, NULL);
	EXPECT_EQ(-EOPNOTSUPP, err) TH_LOG("BIND_LOG to ramfs: %s",
					    err ? strerror(-err) : "accepted");
	close(dev);
	EXPECT_EQ(0, cm_fsize(lfd)) TH_LOG("a header went to the ramfs log");

	/* A fresh ramfs file for DRAIN_FD (the first may hold a header). */
	close(lfd);
	free(lp);
	lp = cm_path(self->ramfs, "log2");
	lfd = open(lp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, lfd);
	dev = cm_session(bfd, -1, 0);
	ASSERT_LE(0, dev);
	m = cm_map(dev, 0, PG, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	m[7] ^= 0xff;
	err = cm_drain(dev, lfd, NULL);
	EXPECT_EQ(-EOPNOTSUPP, err) TH_LOG("DRAIN_FD to ramfs: %s",
					    err ? strerror(-err) : "accepted");
	EXPECT_EQ(0, cm_fsize(lfd)) TH_LOG("the drain wrote %lld bytes to the ramfs log",
					   (long long)cm_fsize(lfd));

	/* Sanity: tmpfs is a log filesystem. */
	tfd = open("hostile-tmpfs.log", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, tfd);
	ASSERT_EQ(0, fstatfs(tfd, &sf));
	if (sf.f_type == 0x01021994) {	/* TMPFS_MAGIC */
		err = cm_drain(dev, tfd, NULL);
		EXPECT_EQ(0, err) TH_LOG("DRAIN_FD to tmpfs: %s", strerror(-err));
	}
	close(tfd);
	unlink("hostile-tmpfs.log");
	munmap(m, PG);
	close(dev);
	close(lfd);
	close(bfd);
	free(lp);
	free(bp);
}

/*
 * final_drain_fsize: the final drain writes as part of the last close and
 * honours the closing task's RLIMIT_FSIZE: the log stops at whole records
 * within the limit (the rest is lost, as with any failed final drain).
 * uid 1000 binds a log, dirties 40 pages, sets RLIMIT_FSIZE to the header
 * plus ~10 records and closes the session.
 */
TEST_F_TIMEOUT(hostile, final_drain_fsize, 120)
{
	uint8_t *base = malloc(PGS(NPAGES)), *want = malloc(PGS(NPAGES));
	uint8_t *img = malloc(PGS(NPAGES));
	char *bp = make_file(self, "backing", 51, PGS(NPAGES), base);
	char *lp = cm_path(self->dir, "log"), why[WHY_LEN];
	uint64_t *limit = cm_shared(sizeof(*limit));
	struct stat st;
	pid_t pid;
	long n;

	ASSERT_NE(NULL, bp);
	ASSERT_NE(NULL, limit);
	cm_fill(52, want, PGS(NPAGES));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
		int lfd, dev;

		become(TESTER);
		lfd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		dev = child_dirty(_metadata, bp, lfd, want, PGS(NPAGES));
		*limit = cm_fsize(lfd) + 10 * COWMAP_LOG_REC_SIZE(PG) + 13;
		rl.rlim_cur = *limit;
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl))
			_exit(4);
		close(dev);	/* the last close: the final drain */
		rl.rlim_cur = RLIM_INFINITY;
		setrlimit(RLIMIT_FSIZE, &rl);
		_exit(0);
	}
	ASSERT_EQ(0, child_code(pid));
	ASSERT_EQ(0, stat(lp, &st));
	EXPECT_GE(*limit, (uint64_t)st.st_size)
		TH_LOG("the final drain wrote %lld bytes past the closer's RLIMIT_FSIZE of %llu",
		       (long long)(st.st_size - *limit), (unsigned long long)*limit);
	n = check_log(lp, base, want, PGS(NPAGES), img, why);
	EXPECT_LT(0, n) TH_LOG("the log: %s", why);
	free(bp);
	free(lp);
	free(base);
	free(want);
	free(img);
	munmap(limit, sizeof(*limit));
}

/*
 * final_drain_creds: the final drain writes with the credentials of the
 * process that bound the log, not the kernel's.  Observable without an
 * LSM: a write by a task without CAP_FSETID clears the setuid bit of the
 * file it writes (file_remove_privs()).  uid 1000 binds its own log, sets
 * its setuid bit after the bind (header) and exits with changes undrained:
 * the final drain's write must clear the bit, as uid 1000's own would.
 */
TEST_F(hostile, final_drain_creds)
{
	uint8_t *base = malloc(PGS(4)), *want = malloc(PGS(4)), *img = malloc(PGS(4));
	char *bp = make_file(self, "backing", 61, PGS(4), base);
	char *lp = cm_path(self->dir, "log"), why[WHY_LEN];
	struct stat st;
	pid_t pid;
	long n;

	ASSERT_NE(NULL, bp);
	cm_fill(62, want, PGS(4));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int lfd;

		become(TESTER);
		lfd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		child_dirty(_metadata, bp, lfd, want, PGS(4));
		if (fchmod(lfd, 04600))
			_exit(4);
		_exit(0);	/* the session goes: the final drain */
	}
	ASSERT_EQ(0, child_code(pid));
	ASSERT_EQ(0, stat(lp, &st));
	n = check_log(lp, base, want, PGS(4), img, why);
	EXPECT_LT(0, n) TH_LOG("the log: %s", why);
	EXPECT_EQ(0, memcmp(img, want, PGS(4))) TH_LOG("the log lacks changes");
	EXPECT_FALSE(st.st_mode & S_ISUID)
		TH_LOG("the final drain wrote uid %d's log with CAP_FSETID: mode %o kept "
		       "its setuid bit", TESTER, st.st_mode & 07777);
	free(bp);
	free(lp);
	free(base);
	free(want);
	free(img);
}

/* ---------------------------------------------------------------- 7 -- */

/*
 * fd_passing: uid 1000 opens /dev/cowmap; a child that becomes uid 1001
 * inherits the fd and binds its own file (0600, 1001's).  The session is
 * 1001's: uid 1000 may not DRAIN, DISCARD or GET_SESSION it by netlink.
 */
TEST_F(hostile, fd_passing)
{
	char *bp = make_file(self, "secret", 7, PGS(4), NULL);
	char *lp = cm_path(self->dir, "stolen.log");
	uint64_t *id = cm_shared(sizeof(*id));
	pid_t pid;

	ASSERT_NE(NULL, bp);
	ASSERT_NE(NULL, id);
	ASSERT_EQ(0, chown(bp, OTHER, OTHER));
	ASSERT_EQ(0, chmod(bp, 0600));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int dev, lfd, err, bad = 0;
		pid_t b;

		/* uid 1000 opens, keeping root as the saved uid to fork 1001. */
		if (setgroups(0, NULL) || setresgid(TESTER, TESTER, 0) ||
		    setresuid(TESTER, TESTER, 0))
			_exit(126);
		dev = open(COWMAP_DEVICE_PATH, O_RDWR);
		if (dev < 0)
			_exit(2);
		b = fork();
		if (b < 0)
			_exit(2);
		if (b == 0) {
			struct cowmap_bind bd;
			int bfd;

			if (setresuid(0, 0, 0))
				_exit(126);
			become(OTHER);
			bfd = open(bp, O_RDONLY | O_CLOEXEC);
			err = cm_bind(dev, bfd, -1, 0, 0, &bd);
			if (err) {
				TH_LOG("uid %d bind on the inherited fd: %s", OTHER,
				       strerror(-err));
				_exit(3);
			}
			*id = bd.id;
			_exit(0);
		}
		if (child_code(b))
			_exit(4);
		/* For good now (the groups went already; no CAP_SETGID left). */
		if (setresgid(TESTER, TESTER, TESTER) || setresuid(TESTER, TESTER, TESTER))
			_exit(126);
		lfd = open(lp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (lfd < 0)
			_exit(5);
		err = nl_session_cmd(COWMAP_CMD_GET_SESSION, *id, -1);
		if (err != -EPERM) {
			TH_LOG("uid %d GET_SESSION of uid %d's session: %s", TESTER,
			       OTHER, err ? strerror(-err) : "allowed");
			bad = 1;
		}
		err = nl_session_cmd(COWMAP_CMD_DRAIN, *id, lfd);
		if (err != -EPERM) {
			TH_LOG("uid %d DRAIN of uid %d's session: %s (log %lld bytes)",
			       TESTER, OTHER, err ? strerror(-err) : "allowed",
			       (long long)cm_fsize(lfd));
			bad = 1;
		}
		err = nl_session_cmd(COWMAP_CMD_DISCARD, *id, -1);
		if (err != -EPERM) {
			TH_LOG("uid %d DISCARD of uid %d's session: %s", TESTER, OTHER,
			       err ? strerror(-err) : "allowed");
			bad = 1;
		}
		close(dev);
		_exit(bad ? 10 : 0);
	}
	EXPECT_EQ(0, child_code(pid));
	free(bp);
	free(lp);
	munmap(id, sizeof(*id));
}

/*
 * nondumpable: the owner's uid may act on a session by id (netlink) only
 * while the process that bound it is dumpable: a non-dumpable binder's
 * session is, like its memory (/proc/PID/mem), out of reach of its uid's
 * other processes.  uid 1000 binds and turns non-dumpable; another uid 1000
 * process gets EPERM for GET_SESSION, DRAIN and DISCARD; once the binder is
 * dumpable again, it may.
 */
TEST_F(hostile, nondumpable)
{
	char *bp = make_file(self, "private", 9, PGS(4), NULL);
	char *lp = cm_path(self->dir, "peek.log");
	struct { volatile int state; uint64_t id; } *sh = cm_shared(sizeof(*sh));
	pid_t binder, peer;

	ASSERT_NE(NULL, bp);
	ASSERT_NE(NULL, sh);
	binder = fork();
	ASSERT_LE(0, binder);
	if (binder == 0) {
		struct cowmap_bind bd;
		volatile uint8_t *m;
		int bfd, dev;

		become(TESTER);
		bfd = open(bp, O_RDONLY | O_CLOEXEC);
		dev = cm_open_dev();
		if (bfd < 0 || dev < 0 || cm_bind(dev, bfd, -1, 0, 0, &bd))
			_exit(2);
		m = cm_map(dev, 0, PGS(4), PROT_READ | PROT_WRITE);
		if (m == MAP_FAILED)
			_exit(3);
		m[0] = 'S';	/* a change a peek would drain */
		sh->id = bd.id;
		if (prctl(PR_SET_DUMPABLE, 0))
			_exit(4);
		sh->state = 1;
		while (sh->state < 2)
			usleep(1000);
		if (prctl(PR_SET_DUMPABLE, 1))
			_exit(5);
		if (sh->state < 3)
			sh->state = 3;
		while (sh->state < 4)
			usleep(1000);
		_exit(0);
	}
	while (sh->state != 1)
		usleep(1000);
	peer = fork();
	ASSERT_LE(0, peer);
	if (peer == 0) {
		int lfd, err, bad = 0;

		become(TESTER);
		lfd = open(lp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (lfd < 0)
			_exit(5);
		err = nl_session_cmd(COWMAP_CMD_GET_SESSION, sh->id, -1);
		if (err != -EPERM) {
			TH_LOG("GET_SESSION of a non-dumpable binder's session: %s",
			       err ? strerror(-err) : "allowed");
			bad = 1;
		}
		err = nl_session_cmd(COWMAP_CMD_DRAIN, sh->id, lfd);
		if (err != -EPERM) {
			TH_LOG("DRAIN of a non-dumpable binder's session: %s (log %lld bytes)",
			       err ? strerror(-err) : "allowed", (long long)cm_fsize(lfd));
			bad = 1;
		}
		err = nl_session_cmd(COWMAP_CMD_DISCARD, sh->id, -1);
		if (err != -EPERM) {
			TH_LOG("DISCARD of a non-dumpable binder's session: %s",
			       err ? strerror(-err) : "allowed");
			bad = 1;
		}
		sh->state = 2;
		while (sh->state < 3)
			usleep(1000);
		err = nl_session_cmd(COWMAP_CMD_GET_SESSION, sh->id, -1);
		if (err) {
			TH_LOG("GET_SESSION once the binder is dumpable: %s", strerror(-err));
			bad = 1;
		}
		sh->state = 4;
		_exit(bad ? 10 : 0);
	}
	EXPECT_EQ(0, child_code(peer));
	sh->state = 4;
	EXPECT_EQ(0, child_code(binder));
	free(bp);
	free(lp);
	munmap(sh, sizeof(*sh));
}

/* events_group: joining the "events" multicast group needs CAP_SYS_ADMIN. */
TEST_F(hostile, events_group)
{
	struct nlu_family f;
	int sk, err;
	pid_t pid;

	sk = nl_open(&f);
	ASSERT_LE(0, sk);
	ASSERT_NE(0, f.events_grp);
	EXPECT_EQ(0, nlu_subscribe(sk, f.events_grp));	/* root may */
	close(sk);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		become(TESTER);
		sk = nl_open(&f);
		if (sk < 0)
			_exit(2);
		err = nlu_subscribe(sk, f.events_grp);
		if (err != -EPERM) {
			TH_LOG("uid %d joined the events group: %s", TESTER,
			       err ? strerror(-err) : "allowed");
			_exit(10);
		}
		_exit(0);
	}
	EXPECT_EQ(0, child_code(pid));
}

/*
 * pidns_pid: GET_SESSION reports the session's pid in the reader's pid
 * namespace: a reader in a new pid namespace, for a session whose process
 * is outside it, gets 0.
 */
TEST_F(hostile, pidns_pid)
{
	char *bp = make_file(self, "backing", 9, PGS(4), NULL);
	uint32_t *got = cm_shared(sizeof(*got));
	struct cowmap_bind bd;
	uint32_t pid_here = 0;
	int bfd, dev, err;
	pid_t c;

	ASSERT_NE(NULL, bp);
	ASSERT_NE(NULL, got);
	bfd = open(bp, O_RDONLY | O_CLOEXEC);
	dev = cm_open_dev();
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, cm_bind(dev, bfd, -1, 0, 0, &bd));
	err = nl_session_pid(bd.id, &pid_here);
	ASSERT_EQ(0, err) TH_LOG("GET_SESSION: %s", strerror(-err));
	EXPECT_EQ((uint32_t)getpid(), pid_here);

	*got = 0xffffffff;
	c = fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		pid_t d;

		if (unshare(CLONE_NEWPID))
			_exit(2);
		d = fork();
		if (d == 0) {
			uint32_t p = 0xffffffff;

			if (getpid() != 1)
				_exit(3);
			if (nl_session_pid(bd.id, &p))
				_exit(4);
			*got = p;
			_exit(0);
		}
		_exit(d < 0 ? 5 : child_code(d));
	}
	ASSERT_EQ(0, child_code(c));
	EXPECT_EQ(0, *got)
		TH_LOG("a reader in a new pid namespace was told pid %u (the binder is %d "
		       "outside it)", *got, getpid());
	close(dev);
	close(bfd);
	free(bp);
	munmap(got, sizeof(*got));
}

/* ---------------------------------------------------------------- 8 -- */

/* Keep only the capabilities in @keep (a bit mask of the first 32). */
static int caps_only(uint32_t keep)
{
	struct __user_cap_header_struct hd = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ .effective = keep, .permitted = keep, .inheritable = 0 },
	};

	return syscall(SYS_capset, &hd, d) ? -errno : 0;
}

/* set_config_caps: CAP_NET_ADMIN without CAP_SYS_ADMIN may not SET_CONFIG. */
TEST_F(hostile, set_config_caps)
{
	uint64_t cur;
	pid_t pid;

	ASSERT_EQ(0, param_u64("max_session_pages", &cur));
	/* Root may (the value does not change). */
	EXPECT_EQ(0, nl_set_config(COWMAP_CONFIG_A_MAX_SESSION_PAGES, cur));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int err;

		if (caps_only(1U << CAP_NET_ADMIN)) {
			perror("capset");
			_exit(2);
		}
		err = nl_set_config(COWMAP_CONFIG_A_MAX_SESSION_PAGES, cur + 1);
		if (err != -EPERM) {
			TH_LOG("SET_CONFIG with CAP_NET_ADMIN only: %s",
			       err ? strerror(-err) : "allowed");
			/* Put it back (CAP_NET_ADMIN still suffices here). */
			nl_set_config(COWMAP_CONFIG_A_MAX_SESSION_PAGES, cur);
			_exit(10);
		}
		_exit(0);
	}
	EXPECT_EQ(0, child_code(pid));
	cm_param_write_u64("max_session_pages", cur);
}

/*
 * zero_caps: max_total_pages and max_user_pages of 0 are refused (EINVAL)
 * from sysfs and (max_total_pages) from netlink SET_CONFIG.  The values
 * are put back afterwards whatever happened.
 */
TEST_F(hostile, zero_caps)
{
	uint64_t v = 1;
	int err;

	ASSERT_EQ(0, param_u64("max_total_pages", &self->saved_total));
	self->restore_total = 1;
	err = nl_set_config(COWMAP_CONFIG_A_MAX_TOTAL_PAGES, 0);
	EXPECT_EQ(-EINVAL, err) TH_LOG("SET_CONFIG max_total_pages 0: %s",
					err ? strerror(-err) : "accepted");
	EXPECT_EQ(0, param_u64("max_total_pages", &v));
	EXPECT_EQ(self->saved_total, v);
	cm_param_write_u64("max_total_pages", self->saved_total);

	err = cm_param_write("max_total_pages", "0");
	EXPECT_EQ(-EINVAL, err) TH_LOG("sysfs max_total_pages=0: %s",
					err ? strerror(-err) : "accepted");
	cm_param_write_u64("max_total_pages", self->saved_total);

	err = param_u64("max_user_pages", &self->saved_user);
	EXPECT_EQ(0, err) TH_LOG(MODPARAM_DIR "max_user_pages: %s", strerror(-err));
	if (!err) {
		self->restore_user = 1;
		err = cm_param_write("max_user_pages", "0");
		EXPECT_EQ(-EINVAL, err) TH_LOG("sysfs max_user_pages=0: %s",
						err ? strerror(-err) : "accepted");
	}
}

/* ------------------------------------------------------------ 7 zap -- */

/*
 * zap_scope: a session's copies and diffs zap its own mappings only.  A
 * plain read-only mapping of the file (a bystander: every process mapping
 * libc, say) keeps its PTE while uid 1000 copies the page through a
 * session and loops DIFF on it; the old module zapped the offset in every
 * mapping of the file each time (unmap_mapping_range()), so the
 * bystander's PTE was gone after the copy and after each DIFF.  The
 * session's second mapping of the offset must still be zapped (it read
 * the backing page and must now see the copy), and a forked child sharing
 * the session must see it too.  While a child holds the session's
 * mappings, DIFF zaps no plain PTE of an unchanged page between changed
 * ones.
 */
TEST_F(hostile, zap_scope)
{
	uint8_t want[PGS(8)];
	char *bp = make_file(self, "shared", 7, sizeof(want), want);
	pid_t pid;
	int st;

	ASSERT_NE(NULL, bp);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		volatile uint8_t *plain, *m1, *m2;
		int bfd, dev, i, bad = 0, p[2], q[2];
		uint8_t *recs = NULL, c;
		size_t used;
		uint32_t nrec;
		pid_t kid;

		/* Dumpable again after setuid(), to read its own pagemap. */
		if (setgid(TESTER) || setuid(TESTER) || prctl(PR_SET_DUMPABLE, 1))
			_exit(90);
		bfd = open(bp, O_RDONLY | O_CLOEXEC);
		dev = bfd < 0 ? -1 : cm_session(bfd, -1, 0);
		if (dev < 0)
			_exit(91);
		plain = mmap(NULL, sizeof(want), PROT_READ, MAP_SHARED, bfd, 0);
		m1 = cm_map(dev, 0, sizeof(want), PROT_READ | PROT_WRITE);
		m2 = cm_map(dev, 0, sizeof(want), PROT_READ | PROT_WRITE);
		if (plain == MAP_FAILED || m1 == MAP_FAILED || m2 == MAP_FAILED)
			_exit(92);
		/* Backing PTEs of page 2 in all three mappings. */
		if (plain[PGS(2)] != want[PGS(2)] || m1[PGS(2)] != want[PGS(2)] ||
		    m2[PGS(2) + 1] != want[PGS(2) + 1] || !pte_present(plain + PGS(2)))
			_exit(93);
		m1[PGS(2) + 5] = (uint8_t)(want[PGS(2) + 5] ^ 0xff);
		/* Looked at first: reading the plain mapping would refault it. */
		if (!pte_present(plain + PGS(2))) {
			TH_LOG("the copy zapped the plain mapping's PTE");
			bad = 1;
		}
		if (m2[PGS(2) + 5] != (uint8_t)(want[PGS(2) + 5] ^ 0xff)) {
			TH_LOG("the session's other mapping still shows the file");
			bad = 1;
		}
		if (plain[PGS(2) + 5] != want[PGS(2) + 5]) {
			TH_LOG("the plain mapping shows the session's write");
			bad = 1;
		}
		for (i = 0; i < 50; i++) {
			(void)plain[PGS(2)];		/* mapped again if zapped */
			m1[PGS(2) + 6] = (uint8_t)i;	/* mapped while diffed */
			if (cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF, &recs, &used, &nrec) < 0)
				_exit(94);
			free(recs);
			if (!pte_present(plain + PGS(2))) {
				TH_LOG("DIFF %d zapped the plain mapping's PTE", i);
				bad = 1;
				break;
			}
		}
		/* A child's copy of the mappings shares the session. */
		if (pipe(p) || pipe(q))
			_exit(95);
		kid = fork();
		if (kid < 0)
			_exit(96);
		if (!kid) {
			uint8_t seen;

			if (m2[PGS(3)] != want[PGS(3)] || write(p[1], "r", 1) != 1 ||
			    read(q[0], &c, 1) != 1)
				_exit(1);
			seen = m2[PGS(3)];
			_exit(seen == (uint8_t)(want[PGS(3)] ^ 0x11) ? 0 : 2);
		}
		if (read(p[0], &c, 1) != 1)
			_exit(97);
		m1[PGS(3)] = (uint8_t)(want[PGS(3)] ^ 0x11);
		if (write(q[1], "w", 1) != 1 || waitpid(kid, &st, 0) != kid)
			_exit(98);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			TH_LOG("the forked child does not see the parent's copy (%#x)", st);
			bad = 1;
		}
		/*
		 * While a child holds the session's mappings (VMAs in two
		 * mms), a zap falls back to every mapping of the file, but
		 * DIFF's batch zap ahead of its freezes must not: page 5,
		 * between the changed pages 4 and 6, keeps its plain PTE.
		 */
		m1[PGS(4)] = (uint8_t)(want[PGS(4)] ^ 0x22);
		m1[PGS(6)] = (uint8_t)(want[PGS(6)] ^ 0x22);
		kid = fork();
		if (kid < 0)
			_exit(96);
		if (!kid)
			_exit(write(p[1], "r", 1) != 1 || read(q[0], &c, 1) != 1);
		if (read(p[0], &c, 1) != 1)
			_exit(97);
		(void)plain[PGS(5)];
		if (!pte_present(plain + PGS(5)))
			_exit(99);
		if (cm_diff_all(dev, 0, 0, COWMAP_DIFF_MIN_BUF, &recs, &used, &nrec) < 0)
			_exit(94);
		free(recs);
		if (!pte_present(plain + PGS(5))) {
			TH_LOG("DIFF with the session in two mms zapped the plain PTE of an unchanged page");
			bad = 1;
		}
		if (write(q[1], "w", 1) != 1 || waitpid(kid, &st, 0) != kid)
			_exit(98);
		_exit(bad);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
		TH_LOG("uid %d's part: status %#x", TESTER, st);
	free(bp);
}

/* ---------------------------------------------------------------- 6 -- */

static volatile int bus_code;
static sigjmp_buf bus_jb;

static void bus_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	bus_code = si->si_code;
	siglongjmp(bus_jb, 1);
}

#define CORRUPT_PFN	"/sys/kernel/debug/hwpoison/corrupt-pfn"

/*
 * hwpoison: a private page mapped in VMA B of a session is poisoned
 * (hwpoison_inject); a fresh VMA A' of the same offset faults on it: the
 * fault must give SIGBUS with BUS_MCEERR_AR and leave the kernel clean
 * (the old module handed the page to __do_fault(), which oopsed unmapping
 * it through its NULL mapping).  A drain then skips the page.
 */
TEST_F_TIMEOUT(hostile, hwpoison, 120)
{
	char *bp = make_file(self, "backing", 6, PGS(16), NULL);
	char *lp = cm_path(self->dir, "log"), buf[32];
	volatile uint8_t *a, *b, *a2;
	struct sigaction sa = { .sa_sigaction = bus_handler, .sa_flags = SA_SIGINFO };
	uint64_t pfn;
	int bfd, dev, lfd, err;

	ASSERT_NE(NULL, bp);
	if (access(CORRUPT_PFN, W_OK)) {
		if (access("/sys/kernel/debug/hwpoison", F_OK))
			mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
		if (system("modprobe hwpoison_inject 2>/dev/null"))
			TH_LOG("modprobe hwpoison_inject failed");
	}
	if (access(CORRUPT_PFN, W_OK))
		SKIP(return, CORRUPT_PFN " is absent (no hwpoison_inject)");

	bfd = open(bp, O_RDONLY | O_CLOEXEC);
	dev = cm_session(bfd, -1, 0);
	ASSERT_LE(0, dev);
	a = cm_map(dev, PGS(3), PG, PROT_READ | PROT_WRITE);
	b = cm_map(dev, PGS(3), PG, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, a);
	ASSERT_NE(MAP_FAILED, b);
	a[100] = 0x5a;			/* the private copy */
	ASSERT_EQ(0x5a, b[100]);	/* B maps it too */
	munmap((void *)a, PG);
	a2 = cm_map(dev, PGS(3), PG, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, a2);

	pfn = pfn_of(b);
	ASSERT_NE(0, pfn) TH_LOG("no pfn for the private page in pagemap");
	snprintf(buf, sizeof(buf), "%#llx", (unsigned long long)pfn);
	err = cm_write_text(CORRUPT_PFN, buf);
	if (err)	/* an unknown (module-owned) page: poisoned, "Ignored" */
		TH_LOG("corrupt-pfn %s: %s", buf, strerror(-err));
	ASSERT_TRUE(kpageflags(pfn) >> KPF_HWPOISON & 1)
		TH_LOG("pfn %s is not marked HWPoison", buf);

	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, NULL));
	bus_code = -1;
	if (!sigsetjmp(bus_jb, 1)) {
		uint8_t v = a2[100];

		TH_LOG("read the poisoned page through a fresh VMA: %#x, no SIGBUS", v);
	}
	signal(SIGBUS, SIG_DFL);
	EXPECT_EQ(BUS_MCEERR_AR, bus_code);

	lfd = open(lp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, lfd);
	err = cm_drain(dev, lfd, NULL);
	EXPECT_EQ(0, err) TH_LOG("drain with a poisoned page: %s", strerror(-err));

	munmap((void *)a2, PG);
	munmap((void *)b, PG);
	close(lfd);
	close(dev);
	close(bfd);
	free(bp);
	free(lp);
}

/* ---------------------------------------------------------------- 1 -- */

#define RACE_SIZE	(1UL << 20)
#define RACE_PAGES	(RACE_SIZE / PG)
#define RACE_WRITERS	2

struct race {
	volatile uint8_t *m;
	const uint8_t *orig;
	int dev;
	volatile int stop;
	uint64_t discards, writes[RACE_WRITERS];
	int err;
};

struct writer {
	struct race *r;
	int t;
};

/* Write one byte (never the file's) into every page, over and over. */
static void *race_writer(void *arg)
{
	struct writer *w = arg;
	struct race *r = w->r;

	while (!r->stop) {
		for (size_t p = 0; p < RACE_PAGES; p++) {
			size_t i = p * PG + 64 * w->t + (p % 32);

			r->m[i] = ~r->orig[i];
		}
		r->writes[w->t]++;
	}
	return NULL;
}

static void *race_discarder(void *arg)
{
	struct race *r = arg;

	while (!r->stop) {
		int err = cm_discard(r->dev, 0, 0, COWMAP_RANGE_ALL, NULL);

		if (err) {
			r->err = err;
			break;
		}
		r->discards++;
	}
	return NULL;
}

/*
 * discard_race: uid 1000 writes every page of a 1 MiB file through a
 * session (two threads) while a third thread DISCARDs everything in a loop
 * and another process reads the file through a plain read-only MAP_SHARED
 * mapping.  The old module freed private pages twice (kernel BUG in
 * list_debug, Bad page state).  The reader must only ever see the file's
 * bytes, and after a last DISCARD the session must show them again.
 */
TEST_F_TIMEOUT(hostile, discard_race, 300)
{
	const char *e = getenv("COWMAP_HOSTILE_SECS");
	int secs = e && atoi(e) > 0 ? atoi(e) : 5;
	uint8_t *orig = malloc(RACE_SIZE);
	char *bp = make_file(self, "backing", 1, RACE_SIZE, orig);
	pid_t pid;

	ASSERT_NE(NULL, bp);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct race r = { .orig = orig };
		struct writer w[RACE_WRITERS];
		pthread_t th[RACE_WRITERS + 1];
		int bfd, reader, code, bad = 0;
		time_t end;

		become(TESTER);
		bfd = open(bp, O_RDONLY | O_CLOEXEC);
		end = time(NULL) + secs;
		reader = fork();
		if (reader == 0) {
			const volatile uint8_t *f = mmap(NULL, RACE_SIZE, PROT_READ,
							 MAP_SHARED, bfd, 0);
			long seen = 0;

			if (f == MAP_FAILED)
				_exit(2);
			while (time(NULL) < end + 1) {
				for (size_t i = 0; i < RACE_SIZE; i += 61) {
					if (f[i] != orig[i]) {
						TH_LOG("the file's mapping shows %#x at %#zx, "
						       "the file holds %#x", f[i], i, orig[i]);
						_exit(3);
					}
				}
				seen++;
			}
			_exit(seen ? 0 : 4);
		}
		r.dev = cm_session(bfd, -1, 0);
		if (r.dev < 0)
			_exit(5);
		r.m = cm_map(r.dev, 0, RACE_SIZE, PROT_READ | PROT_WRITE);
		if (r.m == MAP_FAILED)
			_exit(6);
		for (int t = 0; t < RACE_WRITERS; t++) {
			w[t] = (struct writer){ .r = &r, .t = t };
			pthread_create(&th[t], NULL, race_writer, &w[t]);
		}
		pthread_create(&th[RACE_WRITERS], NULL, race_discarder, &r);
		while (time(NULL) < end && !r.err)
			usleep(100000);
		r.stop = 1;
		for (int t = 0; t <= RACE_WRITERS; t++)
			pthread_join(th[t], NULL);
		code = child_code(reader);
		if (code) {
			TH_LOG("the reader of the file ended with %d", code);
			bad = 1;
		}
		if (r.err) {
			TH_LOG("DISCARD: %s", strerror(-r.err));
			bad = 1;
		}
		if (cm_discard(r.dev, 0, 0, COWMAP_RANGE_ALL, NULL) ||
		    memcmp((const void *)r.m, orig, RACE_SIZE)) {
			TH_LOG("after the last DISCARD the session does not show the file");
			bad = 1;
		}
		printf("# %llu discards, %llu+%llu write passes in %d s\n",
		       (unsigned long long)r.discards,
		       (unsigned long long)r.writes[0],
		       (unsigned long long)r.writes[1], secs);
		fflush(stdout);
		_exit(bad ? 10 : 0);
	}
	EXPECT_EQ(0, child_code(pid));
	free(bp);
	free(orig);
}

TEST_HARNESS_MAIN
