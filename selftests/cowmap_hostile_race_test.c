// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile users racing every entry point of cowmap.  No reference model:
 * only that every call ends in an outcome allowed for it, that nothing
 * hangs, and (the VM runner's part) that the kernel reports nothing.
 *
 * Four unprivileged processes, two as uid 1000 and two as uid 1001, with
 * HR_THREADS threads each, share one backing file (root's, 0644).  Each
 * holds two persistent sessions (open for the whole run, mapped read-write
 * over the whole file) and two transient slots whose session is replaced
 * (the old fd closed while other threads fault through its mappings), and
 * a private arena of "volatile" slots where the threads map, unmap and
 * mremap sessions under each other's faults.  The threads do, at random:
 * read and write faults (fresh and already-private pages, bursts of first
 * writes), COWMAP_IOC_DISCARD (all and ranges), COWMAP_IOC_DRAIN (bound
 * log and DRAIN_FD), COWMAP_IOC_DIFF, COWMAP_IOC_INFO, event ring reads,
 * fork (the child faults, maybe binds its own logged session, and exits
 * without closing anything), and netlink GET_SESSION/DRAIN/DISCARD on
 * their own sessions and on the other uid's (EPERM).  A root "outsider"
 * process keeps a plain read-only MAP_SHARED mapping of the file and reads
 * it, and pwrite()s, ftruncate()s, punches holes and does O_DIRECT reads
 * and writes.  Process 1 keeps its logs on a 256 KiB tmpfs (drains may
 * fail with ENOSPC there), process 3 runs with RLIMIT_FSIZE 32 KiB and
 * SIGXFSZ ignored (drains may fail with EFBIG); nowhere else.
 *
 * Allowed outcomes (hr_ok() calls; anything else is printed with op, seed,
 * process, thread and step, and fails the test):
 *   fault on a persistent mapping      ok, SIGBUS (EOF after truncate, cap)
 *   fault on a volatile slot           ok, SIGBUS, SIGSEGV
 *   DISCARD, INFO, DIFF                0
 *   DRAIN (bound log)                  0; EBADFD without a log; ENOSPC
 *                                      (tmpfs logs), EFBIG (FSIZE process)
 *   DRAIN_FD (fresh file on scratch)   0; EFBIG (FSIZE process)
 *   read(2) of events (O_NONBLOCK)     whole events, EAGAIN
 *   BIND                               0; ENOSPC/EFBIG where set up
 *   mmap of a session                  ok; munmap ok; mremap ok/EFAULT/EINVAL
 *   netlink, own live session          as the ioctl
 *   netlink, other uid's live session  EPERM (GET_SESSION, DRAIN, DISCARD)
 *   netlink, a session maybe gone      ENOENT too
 *   outsider file operations           success
 *
 * COWMAP_HOSTILE_SEED=<seed> replays a run's choices (every thread's
 * operation sequence; not the interleaving); the seed is printed at start.
 * COWMAP_HOSTILE_SECS=N: seconds in all (default 20, 12 when
 * COWMAP_TIMEOUT_SCALE is set), half on ext4, a quarter each on XFS and
 * btrfs; COWMAP_HOSTILE_FS=ext4|xfs|btrfs spends them on one.
 * COWMAP_HOSTILE_DISCARD=0 leaves DISCARD (ioctl and netlink) out.
 */
#include <stddef.h>
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <grp.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <linux/falloc.h>

#include "cowmap_harness.h"
#include "cowmap_fs_variants.h"
#include "lib/util.h"
#include "lib/nl.h"

#define HR_PROCS	4		/* unprivileged workers */
#define HR_OUTSIDER	HR_PROCS	/* process index of the outsider */
#define HR_NPROC	(HR_PROCS + 1)
#define HR_THREADS	4
#define HR_PSESS	2		/* persistent sessions per process */
#define HR_TSESS	2		/* transient session slots */
#define HR_VSLOTS	8		/* volatile slots in the arena */
#define HR_VMAX		16		/* pages in one volatile mapping */
#define HR_PAGES	64		/* backing file */
#define HR_ENOSPC_PROC	1		/* logs on a small tmpfs */
#define HR_EFBIG_PROC	3		/* RLIMIT_FSIZE */
#define HR_FSIZE	(32 << 10)
#define HR_MAX_PRINT	40		/* failures printed */
/* Far below mmap(NULL)'s top-down area: a hole in it is never reused. */
#define HR_ARENA	((char *)0x200000000000UL)
#define HR_SLOT_STRIDE	(2UL << 20)
/* Slot bases sit 100 pages past a PMD boundary: with file offsets below
 * HR_PAGES no session mapping there is ever PMD-congruent (EINVAL). */
#define HR_SLOT_SKEW	100

enum hr_op {
	H_READ, H_WRITE, H_BURST, H_VREAD, H_VWRITE, H_VMAP, H_VUNMAP, H_VREMAP,
	H_DISCARD, H_DISCARD_RANGE, H_DRAIN, H_DRAIN_FD, H_DIFF, H_INFO,
	H_EVENTS, H_REPLACE, H_FORK, H_NL_GET, H_NL_DRAIN, H_NL_DISCARD,
	H_NL_OTHER, H_NL_STALE,
	/* the outsider's */
	H_OWRITE, H_OTRUNC, H_OGROW, H_OPUNCH, H_ODREAD, H_ODWRITE, H_OMAPREAD,
	/* fork children's */
	H_CHILD, H_CBIND,
	H_NR
};

static const char *const hr_name[H_NR] = {
	"read", "write", "burst", "vread", "vwrite", "vmap", "vunmap", "vremap",
	"discard", "discard-range", "drain", "drain-fd", "diff", "info",
	"events", "replace", "fork", "nl-get", "nl-drain", "nl-discard",
	"nl-other-uid", "nl-stale",
	"owrite", "otrunc", "ogrow", "opunch", "odirect-read", "odirect-write",
	"ro-map-read", "child", "child-bind",
};

/* Outcomes: 0, an errno, or HR_SIG + a signal number. */
#define HR_SIG		10000
#define HR_END		(-1)
struct hr_allow {
	int v[8];
};

#define ALLOW(...)	((struct hr_allow){ { __VA_ARGS__, HR_END } })

struct hr_thr {
	volatile int op, tid;
	volatile long step;
};

struct hr_proc {
	volatile pid_t pid;
	uid_t uid;
	volatile uint64_t anchor;	/* persistent session 0: alive all run */
	volatile uint64_t tids[HR_TSESS];	/* transient ids, maybe gone */
	struct hr_thr thr[HR_THREADS];
};

struct hr_shared {
	uint64_t seed;
	int discard;
	int odirect;
	volatile int stop;
	int quiesced;			/* workers done with netlink */
	long failures, printed;
	long count[H_NR], errs[H_NR];
	struct hr_proc proc[HR_NPROC];
	char dir[256], small[300], file[300];
};

/* Per process. */
static struct hr_shared *hr;
static int hr_me = -1;
static int hr_bfd = -1;			/* backing file, O_RDONLY */

struct hr_sess {
	int fd;
	uint64_t id;
	int log;			/* 0: none, 1: on scratch, 2: on tmpfs */
};

static struct hr_sess hr_p[HR_PSESS];
static uint8_t *hr_pmap[HR_PSESS];
static struct hr_sess hr_t[HR_TSESS];
static pthread_rwlock_t hr_tlock[HR_TSESS];

/* Per thread. */
struct hr_ctx {
	int thr;
	uint64_t rng;
	long step;
	int op;
	int sk;
	struct nlu_family fam;
};

static __thread sigjmp_buf *volatile hr_jb;

static void hr_sig(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (hr_jb)
		siglongjmp(*hr_jb, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A load or store that may fault: 0, or HR_SIG + the signal. */
static int hr_touch(volatile uint8_t *p, int write, uint64_t v)
{
	sigjmp_buf jb;
	int sig = sigsetjmp(jb, 1);

	if (sig) {
		hr_jb = NULL;
		return HR_SIG + sig;
	}
	hr_jb = &jb;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (write)
		*(volatile uint64_t *)p = v;
	else
		(void)*(volatile uint64_t *)p;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	hr_jb = NULL;
	return 0;
}

static uint64_t hr_rnd(struct hr_ctx *c, uint64_t n)
{
	return n ? cm_rand(&c->rng) % n : 0;
}

static const char *hr_outcome(int o, char *buf, size_t len)
{
	const char *n;

	if (o == 0)
		return "success";
	if (o >= HR_SIG) {
		snprintf(buf, len, "%s", sigabbrev_np(o - HR_SIG) ?: "signal");
		return buf;
	}
	n = strerrorname_np(o);
	snprintf(buf, len, "%s", n ? n : "errno");
	if (!n)
		snprintf(buf, len, "errno %d", o);
	return buf;
}

/* The one printing path: a whole line per write(2), safe in fork children. */
static void hr_say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDOUT_FILENO, line, n) < 0)
		return;
}

/* Is outcome @o in @allowed?  Counts it; prints and counts a failure. */
static bool hr_ok(struct hr_ctx *c, int op, int o, struct hr_allow allowed,
		  const char *what)
{
	char got[32], want[160], one[32];
	size_t w = 0;

	__atomic_add_fetch(&hr->count[op], 1, __ATOMIC_RELAXED);
	if (o)
		__atomic_add_fetch(&hr->errs[op], 1, __ATOMIC_RELAXED);
	for (const int *a = allowed.v; *a != HR_END; a++)
		if (*a == o)
			return true;
	__atomic_add_fetch(&hr->failures, 1, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&hr->printed, 1, __ATOMIC_RELAXED) > HR_MAX_PRINT)
		return false;
	want[0] = 0;
	for (const int *a = allowed.v; *a != HR_END && w < sizeof(want) - 40; a++)
		w += snprintf(want + w, sizeof(want) - w, "%s%s", w ? "/" : "",
			      hr_outcome(*a, one, sizeof(one)));
	hr_say("# FAIL: op %s (%s): got %s, allowed %s; seed %llu proc %d (uid %u) thread %d step %ld (COWMAP_HOSTILE_SEED=%llu replays it)",
	       hr_name[op], what, hr_outcome(o, got, sizeof(got)), want,
	       (unsigned long long)hr->seed, hr_me,
	       hr_me >= 0 ? (unsigned)hr->proc[hr_me].uid : 0, c->thr, c->step,
	       (unsigned long long)hr->seed);
	return false;
}

static bool hr_efbig(void)
{
	return hr_me == HR_EFBIG_PROC;
}

/* Allowed outcomes of a drain of @s into its bound log (@use_fd: a new file). */
static struct hr_allow hr_drain_allowed(const struct hr_sess *s, bool use_fd)
{
	if (!use_fd && !s->log)
		return ALLOW(EBADFD);
	if (hr_efbig())
		return s->log == 2 && !use_fd ? ALLOW(0, EFBIG, ENOSPC) :
						ALLOW(0, EFBIG);
	if (s->log == 2 && !use_fd)
		return ALLOW(0, ENOSPC);
	return ALLOW(0);
}

/* A new empty log file (unlinked at once): fd, or -errno. */
static int hr_new_log(int where, int thr)
{
	static int n;
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/log.%d.%d.%d",
		 where == 2 ? hr->small : hr->dir, getpid(), thr,
		 __atomic_add_fetch(&n, 1, __ATOMIC_RELAXED));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

/* Open and bind a session (logged: where 1 or 2), O_NONBLOCK. */
static int hr_bind(struct hr_sess *s, int log, int thr)
{
	struct cowmap_bind b;
	int dev, lfd = -1, err;

	s->fd = -1;
	s->log = log;
	if (log) {
		lfd = hr_new_log(log, thr);
		if (lfd < 0)
			return lfd;
	}
	dev = open(COWMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (dev < 0) {
		err = -errno;
		goto out;
	}
	err = cm_bind(dev, hr_bfd, lfd, log ? COWMAP_BIND_LOG : 0,
		      COWMAP_RING_MIN << (thr & 3), &b);
	if (err) {
		close(dev);
		goto out;
	}
	s->fd = dev;
	s->id = b.id;
out:
	if (lfd >= 0)
		close(lfd);
	return err;
}

static struct hr_allow hr_bind_allowed(int log)
{
	if (hr_efbig())
		return log == 2 ? ALLOW(0, EFBIG, ENOSPC) : ALLOW(0, EFBIG);
	return log == 2 ? ALLOW(0, ENOSPC) : ALLOW(0);
}

static char *hr_slot(int i)
{
	return HR_ARENA + i * HR_SLOT_STRIDE + HR_SLOT_SKEW * PG;
}

/* Put PROT_NONE memory back where [a, a + pages) has holes. */
static void hr_refill(char *a, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++)
		mmap(a + i * PG, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		     MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
}

static int hr_nl(struct hr_ctx *c, uint8_t cmd, uint64_t id, int log_fd)
{
	uint8_t attrs[32];
	size_t alen = nlu_put_u64(attrs, COWMAP_A_SESSION_ID, id);

	if (log_fd >= 0)
		alen += nlu_put_u32(attrs + alen, COWMAP_A_LOG_FD, log_fd);
	return -nlu_request(c->sk, c->fam.id, cmd, 0, attrs, alen, NULL, NULL,
			    60000);
}

/* A session to act on: persistent (no lock) or transient (read-locked). */
static struct hr_sess *hr_pick(struct hr_ctx *c, int *locked)
{
	int i = hr_rnd(c, HR_PSESS + HR_TSESS);

	*locked = -1;
	if (i < HR_PSESS)
		return &hr_p[i];
	i -= HR_PSESS;
	pthread_rwlock_rdlock(&hr_tlock[i]);
	if (hr_t[i].fd < 0) {
		pthread_rwlock_unlock(&hr_tlock[i]);
		return &hr_p[0];
	}
	*locked = i;
	return &hr_t[i];
}

static void hr_unpick(int locked)
{
	if (locked >= 0)
		pthread_rwlock_unlock(&hr_tlock[locked]);
}

/* Fork child: faults, maybe a session of its own, exit with it all. */
static void hr_child(struct hr_ctx *c)
{
	struct hr_sess own;
	int o;

	c->thr += 100;
	for (int k = 0; k < 24; k++) {
		int s = hr_rnd(c, HR_PSESS);
		uint64_t pg = hr_rnd(c, HR_PAGES);

		c->step++;
		o = hr_touch(hr_pmap[s] + pg * PG, k & 1, c->rng);
		hr_ok(c, H_CHILD, o, ALLOW(0, HR_SIG + SIGBUS), "persistent");
		o = hr_touch((uint8_t *)hr_slot(hr_rnd(c, HR_VSLOTS)) +
			     hr_rnd(c, HR_VMAX) * PG, k & 1, c->rng);
		hr_ok(c, H_CHILD, o, ALLOW(0, HR_SIG + SIGBUS, HR_SIG + SIGSEGV),
		      "volatile");
	}
	if (hr_rnd(c, 2)) {
		int log = hr_me == HR_ENOSPC_PROC ? 2 : 1;
		uint8_t *m;

		o = -hr_bind(&own, log, c->thr);
		if (hr_ok(c, H_CBIND, o, hr_bind_allowed(log), "bind") && !o) {
			m = cm_map(own.fd, 0, PGS(HR_PAGES), PROT_READ | PROT_WRITE);
			o = m == MAP_FAILED ? errno : 0;
			hr_ok(c, H_CBIND, o, ALLOW(0), "mmap");
			for (int k = 0; m != MAP_FAILED && k < 8; k++) {
				o = hr_touch(m + hr_rnd(c, HR_PAGES) * PG, 1, k);
				hr_ok(c, H_CBIND, o, ALLOW(0, HR_SIG + SIGBUS), "write");
			}
		}
	}
	_exit(0);	/* the session, its mappings and log go with the exit */
}

static void hr_do(struct hr_ctx *c, int op)
{
	struct hr_sess *s;
	struct cowmap_info in;
	struct cowmap_drain d;
	int o, locked, lfd, i, j;
	uint64_t pg, len, n;
	char *a, *r;

	switch (op) {
	case H_READ:
	case H_WRITE:
		i = hr_rnd(c, HR_PSESS);
		pg = hr_rnd(c, HR_PAGES);
		o = hr_touch(hr_pmap[i] + pg * PG + hr_rnd(c, PG / 8) * 8,
			     op == H_WRITE, c->rng);
		hr_ok(c, op, o, ALLOW(0, HR_SIG + SIGBUS), "persistent mapping");
		break;
	case H_BURST:	/* first writes to many pages, DISCARD's prey */
		i = hr_rnd(c, HR_PSESS);
		pg = hr_rnd(c, HR_PAGES);
		len = 1 + hr_rnd(c, 32);
		for (n = 0; n < len && pg + n < HR_PAGES; n++) {
			o = hr_touch(hr_pmap[i] + (pg + n) * PG, 1, c->rng);
			hr_ok(c, op, o, ALLOW(0, HR_SIG + SIGBUS), "persistent mapping");
		}
		break;
	case H_VREAD:
	case H_VWRITE:
		a = hr_slot(hr_rnd(c, HR_VSLOTS)) + hr_rnd(c, HR_VMAX) * PG;
		o = hr_touch((uint8_t *)a, op == H_VWRITE, c->rng);
		hr_ok(c, op, o, ALLOW(0, HR_SIG + SIGBUS, HR_SIG + SIGSEGV),
		      "volatile slot");
		break;
	case H_VMAP:
		a = hr_slot(hr_rnd(c, HR_VSLOTS));
		len = 1 + hr_rnd(c, HR_VMAX);
		pg = hr_rnd(c, HR_PAGES - len + 1);
		s = hr_pick(c, &locked);
		r = mmap(a, PGS(len), hr_rnd(c, 3) ? PROT_READ | PROT_WRITE : PROT_READ,
			 MAP_SHARED | MAP_FIXED, s->fd, PGS(pg));
		hr_unpick(locked);
		hr_ok(c, op, r == MAP_FAILED ? errno : r == a ? 0 : EFAULT, ALLOW(0),
		      "mmap MAP_FIXED");
		if (r == MAP_FAILED)
			hr_refill(a, len);
		break;
	case H_VUNMAP:	/* the last unmap of a closed session is its release */
		a = hr_slot(hr_rnd(c, HR_VSLOTS));
		pg = hr_rnd(c, HR_VMAX);
		len = 1 + hr_rnd(c, HR_VMAX - pg);
		a += pg * PG;
		if (hr_rnd(c, 2)) {
			o = munmap(a, PGS(len)) ? errno : 0;
			hr_ok(c, op, o, ALLOW(0), "munmap");
			hr_refill(a, len);
		} else {
			r = mmap(a, PGS(len), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
				 MAP_FIXED | MAP_NORESERVE, -1, 0);
			hr_ok(c, op, r == a ? 0 : errno, ALLOW(0), "mmap over");
		}
		break;
	case H_VREMAP:
		i = hr_rnd(c, HR_VSLOTS);
		j = hr_rnd(c, HR_VSLOTS - 1);
		j += j >= i;
		len = 1 + hr_rnd(c, HR_VMAX);
		r = mremap(hr_slot(i), PGS(len), PGS(len),
			   MREMAP_MAYMOVE | MREMAP_FIXED, hr_slot(j));
		/* EFAULT: the range spans several VMAs (dest unmapped first). */
		hr_ok(c, op, r == MAP_FAILED ? errno : 0, ALLOW(0, EFAULT, EINVAL),
		      "mremap");
		hr_refill(hr_slot(r == MAP_FAILED ? j : i), len);
		break;
	case H_DISCARD:
	case H_DISCARD_RANGE:
		s = hr_pick(c, &locked);
		pg = hr_rnd(c, HR_PAGES);
		o = -cm_discard(s->fd, PGS(pg), PGS(1 + hr_rnd(c, HR_PAGES - pg)),
				op == H_DISCARD ? COWMAP_RANGE_ALL : 0, NULL);
		hr_unpick(locked);
		hr_ok(c, op, o, ALLOW(0), "ioctl");
		break;
	case H_DRAIN:
		s = hr_pick(c, &locked);
		o = -cm_drain(s->fd, -1, &d);
		hr_ok(c, op, o, hr_drain_allowed(s, false), s->log ? "bound log" : "no log");
		hr_unpick(locked);
		break;
	case H_DRAIN_FD:
		lfd = hr_new_log(1, c->thr);
		if (!hr_ok(c, op, lfd < 0 ? -lfd : 0, ALLOW(0), "log file") || lfd < 0)
			break;
		s = hr_pick(c, &locked);
		o = -cm_drain(s->fd, lfd, &d);
		hr_ok(c, op, o, hr_drain_allowed(s, true), "DRAIN_FD");
		hr_unpick(locked);
		close(lfd);
		break;
	case H_DIFF: {
		uint8_t *buf = NULL;
		size_t used;
		uint32_t recs;

		s = hr_pick(c, &locked);
		pg = hr_rnd(c, HR_PAGES);
		o = cm_diff_all(s->fd, hr_rnd(c, 2) ? PGS(pg) : 0, 0,
				COWMAP_DIFF_MIN_BUF, &buf, &used, &recs);
		hr_unpick(locked);
		hr_ok(c, op, o < 0 ? -o : 0, ALLOW(0), "ioctl");
		free(buf);
		break;
	}
	case H_INFO:
		s = hr_pick(c, &locked);
		o = -cm_info(s->fd, &in);
		if (!o && (in.id != s->id || in.owner_uid != hr->proc[hr_me].uid))
			o = EPROTO;	/* printed as such: wrong session */
		hr_unpick(locked);
		hr_ok(c, op, o, ALLOW(0), "ioctl");
		break;
	case H_EVENTS: {
		struct cowmap_event ev[64];

		s = hr_pick(c, &locked);
		if (hr_rnd(c, 4) == 0) {
			struct pollfd pfd = { .fd = s->fd, .events = POLLIN };

			poll(&pfd, 1, 2);
		}
		o = cm_events(s->fd, ev, 1 + hr_rnd(c, 64));
		hr_unpick(locked);
		hr_ok(c, op, o < 0 ? -o : 0, ALLOW(0, EAGAIN), "read");
		break;
	}
	case H_REPLACE: {	/* new transient session; the old fd's last close */
		struct hr_sess ns, old;
		int log = hr_rnd(c, 3) ? (hr_me == HR_ENOSPC_PROC ? 2 : 1) : 0;

		i = hr_rnd(c, HR_TSESS);
		o = -hr_bind(&ns, log, c->thr);
		hr_ok(c, op, o, hr_bind_allowed(log), "bind");
		pthread_rwlock_wrlock(&hr_tlock[i]);
		old = hr_t[i];
		if (!o) {
			hr_t[i] = ns;
			hr->proc[hr_me].tids[i] = ns.id;
		} else {
			hr_t[i].fd = -1;
		}
		pthread_rwlock_unlock(&hr_tlock[i]);
		if (old.fd >= 0)
			hr_ok(c, op, close(old.fd) ? errno : 0, ALLOW(0), "close");
		break;
	}
	case H_FORK: {
		pid_t pid = fork();
		int st;

		if (pid == 0)
			hr_child(c);
		if (!hr_ok(c, op, pid < 0 ? errno : 0, ALLOW(0), "fork") || pid < 0)
			break;
		st = cm_wait(pid);
		hr_ok(c, op, st == 0 ? 0 : WIFSIGNALED(st) ? HR_SIG + WTERMSIG(st) : EIO,
		      ALLOW(0), "child's end");
		break;
	}
	case H_NL_GET:
	case H_NL_DISCARD:
	case H_NL_DRAIN:
		s = hr_pick(c, &locked);
		lfd = op == H_NL_DRAIN && hr_rnd(c, 2) ? hr_new_log(1, c->thr) : -1;
		o = hr_nl(c, op == H_NL_GET ? COWMAP_CMD_GET_SESSION :
			  op == H_NL_DRAIN ? COWMAP_CMD_DRAIN : COWMAP_CMD_DISCARD,
			  s->id, lfd);
		hr_ok(c, op, o, op == H_NL_DRAIN ? hr_drain_allowed(s, lfd >= 0) :
		      ALLOW(0), "own session");
		hr_unpick(locked);
		if (lfd >= 0)
			close(lfd);
		break;
	case H_NL_OTHER:
	case H_NL_STALE: {
		static const uint8_t cmds[] = { COWMAP_CMD_GET_SESSION,
			COWMAP_CMD_DRAIN, COWMAP_CMD_DISCARD };
		uint8_t cmd = cmds[hr_rnd(c, hr->discard ? 3 : 2)];
		bool other;
		uint64_t id;

		do {
			i = hr_rnd(c, HR_PROCS);
		} while (op == H_NL_OTHER && hr->proc[i].uid == hr->proc[hr_me].uid);
		other = hr->proc[i].uid != hr->proc[hr_me].uid;
		id = op == H_NL_OTHER ? hr->proc[i].anchor :
		     hr->proc[i].tids[hr_rnd(c, HR_TSESS)];
		if (!id)
			break;
		lfd = cmd == COWMAP_CMD_DRAIN && hr_rnd(c, 2) ? hr_new_log(1, c->thr) : -1;
		o = hr_nl(c, cmd, id, lfd);
		if (lfd >= 0)
			close(lfd);
		if (op == H_NL_OTHER)
			hr_ok(c, op, o, ALLOW(EPERM), "another uid's live session");
		else if (other)
			hr_ok(c, op, o, ALLOW(EPERM, ENOENT), "another uid's session");
		else if (cmd == COWMAP_CMD_DRAIN && lfd < 0)	/* log unknown */
			hr_ok(c, op, o, i == HR_ENOSPC_PROC ? hr_efbig() ?
			      ALLOW(0, ENOENT, EBADFD, ENOSPC, EFBIG) :
			      ALLOW(0, ENOENT, EBADFD, ENOSPC) : hr_efbig() ?
			      ALLOW(0, ENOENT, EBADFD, EFBIG) :
			      ALLOW(0, ENOENT, EBADFD), "own uid's session, maybe gone");
		else if (cmd == COWMAP_CMD_DRAIN)
			hr_ok(c, op, o, hr_efbig() ? ALLOW(0, ENOENT, EFBIG) :
			      ALLOW(0, ENOENT), "own uid's session, maybe gone");
		else
			hr_ok(c, op, o, ALLOW(0, ENOENT), "own uid's session, maybe gone");
		break;
	}
	}
}

/* Operation weights of a worker thread. */
static const int hr_weight[H_NL_STALE + 1] = {
	[H_READ] = 12, [H_WRITE] = 14, [H_BURST] = 6, [H_VREAD] = 8,
	[H_VWRITE] = 8, [H_VMAP] = 6, [H_VUNMAP] = 4, [H_VREMAP] = 3,
	[H_DISCARD] = 5, [H_DISCARD_RANGE] = 4, [H_DRAIN] = 4, [H_DRAIN_FD] = 2,
	[H_DIFF] = 3, [H_INFO] = 3, [H_EVENTS] = 3, [H_REPLACE] = 3,
	[H_FORK] = 1, [H_NL_GET] = 2, [H_NL_DRAIN] = 2, [H_NL_DISCARD] = 2,
	[H_NL_OTHER] = 2, [H_NL_STALE] = 2,
};

static int hr_pick_op(struct hr_ctx *c)
{
	int total = 0, r, op;

	for (op = 0; op <= H_NL_STALE; op++)
		total += hr_weight[op];
	for (;;) {
		r = hr_rnd(c, total);
		for (op = 0; r >= hr_weight[op]; op++)
			r -= hr_weight[op];
		if (hr->discard || (op != H_DISCARD && op != H_DISCARD_RANGE &&
				    op != H_NL_DISCARD))
			return op;
	}
}

static void hr_ctx_init(struct hr_ctx *c, int thr)
{
	memset(c, 0, sizeof(*c));
	c->thr = thr;
	c->rng = hr->seed * 0x9e3779b97f4a7c15ULL + hr_me * 1000 + thr + 1;
	c->sk = -1;
	if (thr >= 0)
		hr->proc[hr_me].thr[thr].tid = gettid();
}

static void *hr_worker(void *arg)
{
	struct hr_ctx c;
	int err;

	hr_ctx_init(&c, (int)(intptr_t)arg);
	c.sk = nlu_socket();
	err = c.sk < 0 ? c.sk : nlu_resolve(c.sk, &c.fam);
	if (!hr_ok(&c, H_NL_GET, -err, ALLOW(0), "netlink socket"))
		return NULL;
	while (!hr->stop) {
		c.step++;
		c.op = hr_pick_op(&c);
		hr->proc[hr_me].thr[c.thr].op = c.op;
		hr->proc[hr_me].thr[c.thr].step = c.step;
		hr_do(&c, c.op);
	}
	close(c.sk);
	return NULL;
}

/* The outsider: another process working on the backing file itself. */
static void *hr_outsider(void *arg)
{
	int thr = (int)(intptr_t)arg, fd, dfd = -1, o;
	const uint8_t *ro = NULL;
	struct hr_ctx c;
	void *buf = NULL;

	hr_ctx_init(&c, thr);
	fd = open(hr->file, O_RDWR | O_CLOEXEC);
	if (hr->odirect)
		dfd = open(hr->file, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (thr == 0)	/* the read-only mapping every copy must zap */
		ro = mmap(NULL, PGS(HR_PAGES), PROT_READ, MAP_SHARED, fd, 0);
	if (posix_memalign(&buf, PG, PG) || fd < 0 || ro == MAP_FAILED ||
	    (hr->odirect && dfd < 0)) {
		hr_ok(&c, H_OWRITE, errno ?: EIO, ALLOW(0), "outsider setup");
		return NULL;
	}
	while (!hr->stop) {
		uint64_t pg = hr_rnd(&c, HR_PAGES), len;
		int op;

		c.step++;
		if (thr == 0) {
			op = H_OMAPREAD;
		} else {
			static const int ops[] = { H_OWRITE, H_OWRITE, H_OTRUNC,
				H_OGROW, H_OGROW, H_OPUNCH, H_ODREAD, H_ODWRITE };

			op = ops[hr_rnd(&c, 8)];
			if (!hr->odirect && (op == H_ODREAD || op == H_ODWRITE))
				op = H_OWRITE;
		}
		hr->proc[hr_me].thr[thr].op = op;
		hr->proc[hr_me].thr[thr].step = c.step;
		switch (op) {
		case H_OMAPREAD:
			for (len = 0; len < HR_PAGES && !hr->stop; len++) {
				o = hr_touch((uint8_t *)ro + len * PG, 0, 0);
				hr_ok(&c, op, o, ALLOW(0, HR_SIG + SIGBUS), "read");
			}
			usleep(200);	/* leave the CPUs to the racers */
			break;
		case H_OWRITE:
			cm_fill(c.rng, buf, 64);
			o = pwrite(fd, buf, 1 + hr_rnd(&c, 64), PGS(pg) +
				   hr_rnd(&c, PG - 64)) < 0 ? errno : 0;
			hr_ok(&c, op, o, ALLOW(0), "pwrite");
			break;
		case H_OTRUNC:
			o = ftruncate(fd, PGS(HR_PAGES / 2) + hr_rnd(&c, PGS(HR_PAGES / 2)))
				? errno : 0;
			hr_ok(&c, op, o, ALLOW(0), "ftruncate down");
			break;
		case H_OGROW:
			o = ftruncate(fd, PGS(HR_PAGES)) ? errno : 0;
			hr_ok(&c, op, o, ALLOW(0), "ftruncate up");
			break;
		case H_OPUNCH:
			len = 1 + hr_rnd(&c, 8);
			o = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      PGS(pg), PGS(len)) ? errno : 0;
			hr_ok(&c, op, o, ALLOW(0), "punch hole");
			break;
		case H_ODREAD:
			o = pread(dfd, buf, PG, PGS(pg)) < 0 ? errno : 0;
			hr_ok(&c, op, o, ALLOW(0), "O_DIRECT pread");
			break;
		case H_ODWRITE:
			cm_fill(c.rng, buf, PG);
			o = pwrite(dfd, buf, PG, PGS(pg)) < 0 ? errno : 0;
			hr_ok(&c, op, o, ALLOW(0), "O_DIRECT pwrite");
			break;
		}
		if (thr)
			usleep(hr_rnd(&c, 2000));
	}
	free(buf);
	close(fd);
	if (dfd >= 0)
		close(dfd);
	return NULL;
}

static long hr_scale(void)
{
	const char *e = getenv("COWMAP_TIMEOUT_SCALE");
	long k = e ? strtol(e, NULL, 10) : 1;

	return k < 1 ? 1 : k > 100 ? 100 : k;
}

/* Seconds after the end for the processes to finish. */
static long hr_grace(void)
{
	return 60 * hr_scale();
}

static void hr_dump_thread(int p, int t)
{
	const struct hr_thr *th = &hr->proc[p].thr[t];
	char path[96], buf[2048], *l;

	hr_say("# watchdog: proc %d (pid %d, uid %u) thread %d (tid %d) stuck in op %s, step %ld; kernel stack:",
	       p, hr->proc[p].pid, (unsigned)hr->proc[p].uid, t, th->tid,
	       hr_name[th->op], th->step);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", hr->proc[p].pid,
		 th->tid);
	if (!cm_read_text(path, buf, sizeof(buf)))
		for (l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
			hr_say("#   %s", l);
}

/* One worker or the outsider: set up, run the threads, join (watched). */
static void hr_proc_main(int me, bool outsider)
{
	struct sigaction sa = { .sa_sigaction = hr_sig,
				.sa_flags = SA_SIGINFO | SA_NODEFER };
	pthread_t th[HR_THREADS];
	struct hr_ctx c;
	uid_t uid = hr->proc[me].uid;
	int n = outsider ? 2 : HR_THREADS, i, o;

	hr_me = me;
	hr->proc[me].pid = getpid();
	hr_ctx_init(&c, -1);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!outsider) {
		if (me == HR_EFBIG_PROC) {
			struct rlimit rl = { HR_FSIZE, HR_FSIZE };

			signal(SIGXFSZ, SIG_IGN);
			setrlimit(RLIMIT_FSIZE, &rl);
		}
		if (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
		    setresuid(uid, uid, uid)) {
			hr_ok(&c, H_INFO, errno, ALLOW(0), "setresuid");
			_exit(2);
		}
		/* Dumpable, as after an exec (see cowmap_hostile_test.c). */
		prctl(PR_SET_DUMPABLE, 1);
		hr_bfd = open(hr->file, O_RDONLY | O_CLOEXEC);
		if (mmap(HR_ARENA, HR_VSLOTS * HR_SLOT_STRIDE, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			 MAP_FIXED_NOREPLACE, -1, 0) != HR_ARENA || hr_bfd < 0) {
			hr_ok(&c, H_VMAP, errno, ALLOW(0), "arena/backing");
			_exit(2);
		}
		for (i = 0; i < HR_PSESS; i++) {
			int log = i ? 0 : me == HR_ENOSPC_PROC ? 2 : 1;

			o = -hr_bind(&hr_p[i], log, 0);
			if (!hr_ok(&c, H_REPLACE, o, ALLOW(0), "persistent bind") ||
			    (hr_pmap[i] = cm_map(hr_p[i].fd, 0, PGS(HR_PAGES),
						 PROT_READ | PROT_WRITE)) == MAP_FAILED) {
				hr_ok(&c, H_VMAP, errno, ALLOW(0), "persistent mmap");
				_exit(2);
			}
		}
		hr->proc[me].anchor = hr_p[0].id;
		for (i = 0; i < HR_TSESS; i++) {
			pthread_rwlock_init(&hr_tlock[i], NULL);
			hr_t[i].fd = -1;
		}
	}
	for (i = 0; i < n; i++)
		pthread_create(&th[i], NULL, outsider ? hr_outsider : hr_worker,
			       (void *)(intptr_t)i);
	while (!hr->stop)
		usleep(20000);
	for (i = 0; i < n; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += hr_grace();
		if (pthread_timedjoin_np(th[i], NULL, &ts)) {
			__atomic_add_fetch(&hr->failures, 1, __ATOMIC_RELAXED);
			hr_say("# watchdog: a thread did not finish its operation within %ld s after the end (seed %llu)",
			       hr_grace(), (unsigned long long)hr->seed);
			hr_dump_thread(me, i);
			_exit(3);
		}
	}
	if (outsider)
		_exit(0);
	/* Other uids' netlink checks need our anchor session until all end. */
	__atomic_add_fetch(&hr->quiesced, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < hr_grace() * 50 &&
		    __atomic_load_n(&hr->quiesced, __ATOMIC_SEQ_CST) < HR_PROCS; i++)
		usleep(20000);
	_exit(0);	/* every session's last reference: final drains */
}

FIXTURE(hostile) {
	char *dir;
	int mounted;
	struct hr_shared *sh;
};

FIXTURE_VARIANT(hostile) {
	COWMAP_FS_VARIANT_FIELDS;
};

COWMAP_FS_VARIANTS(hostile);

/* Quarters of COWMAP_HOSTILE_SECS a filesystem gets: ext4 half, the others a quarter. */
static int hr_share(const char *fs)
{
	return strcmp(fs, "ext4") ? 1 : 2;
}

static long hr_total_secs(void)
{
	const char *e = getenv("COWMAP_HOSTILE_SECS");

	if (e && *e)
		return strtol(e, NULL, 0);
	return getenv("COWMAP_TIMEOUT_SCALE") ? 12 : 20;
}

static const char *hr_only(void)
{
	const char *e = getenv("COWMAP_HOSTILE_FS");

	return e && *e ? e : NULL;
}

FIXTURE_SETUP(hostile)
{
	const char *scratch, *why, *only = hr_only();
	uint8_t *data;
	char *p;
	int fd;

	self->dir = NULL;
	self->mounted = 0;
	self->sh = NULL;
	CM_SKIP_IF_NO_DEVICE();
	if (only && strcmp(only, variant->name))
		CM_SETUP_SKIP("COWMAP_HOSTILE_FS=%s", only);
	if (geteuid())
		CM_SETUP_SKIP("needs root (to become uids 1000 and 1001)");
	scratch = cm_scratch_dir(variant->env, &why);
	if (!scratch)
		CM_SETUP_SKIP("$%s %s", variant->env, why);
	self->dir = cm_mkdtemp(scratch, "hostile");
	ASSERT_NE(NULL, self->dir);
	ASSERT_EQ(0, chmod(self->dir, 01777));
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	memset(self->sh, 0, sizeof(*self->sh));
	snprintf(self->sh->dir, sizeof(self->sh->dir), "%s", self->dir);
	snprintf(self->sh->small, sizeof(self->sh->small), "%s/small", self->dir);
	snprintf(self->sh->file, sizeof(self->sh->file), "%s/backing", self->dir);
	ASSERT_EQ(0, mkdir(self->sh->small, 0755));
	ASSERT_EQ(0, mount("tmpfs", self->sh->small, "tmpfs", 0,
			   "size=256k,mode=1777"))
		TH_LOG("mount tmpfs: %s", strerror(errno));
	self->mounted = 1;
	data = malloc(PGS(HR_PAGES));
	ASSERT_NE(NULL, data);
	cm_fill(7, data, PGS(HR_PAGES));
	fd = cm_create(self->sh->file, data, PGS(HR_PAGES));
	free(data);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fchmod(fd, 0644));
	close(fd);
	p = cm_path(self->dir, "odirect-probe");
	fd = open(p, O_RDWR | O_CREAT | O_DIRECT, 0600);
	self->sh->odirect = fd >= 0;
	if (fd >= 0)
		close(fd);
	unlink(p);
	free(p);
}

FIXTURE_TEARDOWN(hostile)
{
	if (self->mounted)
		umount2(self->sh->small, MNT_DETACH);
	if (self->dir && !getenv("COWMAP_KEEP"))
		cm_rm_rf(self->dir);
	free(self->dir);
	if (self->sh)
		munmap(self->sh, sizeof(*self->sh));
}

TEST_F_TIMEOUT(hostile, race, 60)
{
	struct hr_shared *sh = self->sh;
	const char *e = getenv("COWMAP_HOSTILE_SEED");
	const char *dis = getenv("COWMAP_HOSTILE_DISCARD");
	long secs = hr_total_secs() * (hr_only() ? 4 : hr_share(variant->name)) / 4;
	uint64_t t0, end;
	int left, i, st;
	char line[1024];
	size_t w = 0;

	hr = sh;
	sh->seed = e && *e ? strtoull(e, NULL, 0) : cm_now_ns() % 1000000007ULL;
	sh->discard = !(dis && !strcmp(dis, "0"));
	if (secs < 1)
		secs = 1;
	printf("# hostile race on %s: seed %llu (COWMAP_HOSTILE_SEED=%llu replays it), %ld s, discard %s, O_DIRECT %s\n",
	       variant->name, (unsigned long long)sh->seed,
	       (unsigned long long)sh->seed, secs, sh->discard ? "on" : "off",
	       sh->odirect ? "on" : "off");
	fflush(stdout);
	for (i = 0; i < HR_NPROC; i++) {
		pid_t pid;

		sh->proc[i].uid = i == HR_OUTSIDER ? 0 : 1000 + (i & 1);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0)
			hr_proc_main(i, i == HR_OUTSIDER);
		sh->proc[i].pid = pid;
	}
	t0 = cm_now_ns();
	end = t0 + secs * 1000000000ULL;
	while (cm_now_ns() < end && !__atomic_load_n(&sh->failures, __ATOMIC_RELAXED))
		usleep(50000);
	sh->stop = 1;
	/* The watchdog: every process ends within the grace period. */
	end = cm_now_ns() + (hr_grace() * 2 + 10) * 1000000000ULL;
	for (left = HR_NPROC; left && cm_now_ns() < end;) {
		pid_t pid = waitpid(-1, &st, WNOHANG);

		if (pid <= 0) {
			usleep(50000);
			continue;
		}
		for (i = 0; i < HR_NPROC; i++) {
			if (sh->proc[i].pid != pid)
				continue;
			left--;
			sh->proc[i].pid = 0;
			EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
				TH_LOG("proc %d (uid %u) ended with status %#x (seed %llu)",
				       i, (unsigned)sh->proc[i].uid, st,
				       (unsigned long long)sh->seed);
		}
	}
	for (i = 0; left && i < HR_NPROC; i++) {
		if (!sh->proc[i].pid)
			continue;
		hr_say("# watchdog: proc %d (pid %d, uid %u) still running %ld s after the end of the run: hang (seed %llu)",
		       i, sh->proc[i].pid, (unsigned)sh->proc[i].uid,
		       hr_grace() * 2 + 10, (unsigned long long)sh->seed);
		for (int t = 0; t < HR_THREADS; t++)
			if (sh->proc[i].thr[t].tid)
				hr_dump_thread(i, t);
		kill(sh->proc[i].pid, SIGKILL);
		cm_wait(sh->proc[i].pid);
	}
	EXPECT_EQ(0, left) TH_LOG("watchdog: %d processes hung (seed %llu)", left,
				  (unsigned long long)sh->seed);

	for (i = 0; i < H_NR; i++)
		if (sh->count[i] && w < sizeof(line) - 48)
			w += snprintf(line + w, sizeof(line) - w, " %s %ld/%ld",
				      hr_name[i], sh->count[i], sh->errs[i]);
	printf("# hostile %s: seed %llu, %.1f s; op count/errors-or-signals:%s\n",
	       variant->name, (unsigned long long)sh->seed,
	       (cm_now_ns() - t0) / 1e9, line);
	EXPECT_EQ(0, sh->failures) TH_LOG("%ld outcomes not allowed (seed %llu)",
					  sh->failures,
					  (unsigned long long)sh->seed);
	EXPECT_LT(0, sh->count[H_WRITE]);
}

int main(int argc, char **argv)
{
	struct __fixture_metadata *f;
	struct __test_metadata *t;

	/* Every variant's run, then its drain and exit, fit the timeout. */
	for (f = __fixture_list; f; f = f->next)
		for (t = f->tests; t; t = t->next)
			t->timeout = hr_total_secs() + 2 * hr_grace() + 60;
	cm_scale_timeouts();
	return test_harness_run(argc, argv);
}
