/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The cowmap stress engine: several processes and threads ("actors") do
 * random operations on a few sessions of one backing file while an outsider
 * process writes, truncates, punches and extends that file, and a reference
 * model predicts what every session must read at every step.
 *
 * One controller (the main thread of the test process, P0) draws every
 * operation from a seeded generator and hands it to an actor: a worker
 * thread of P0, or a process forked from an actor (fork inherits mappings
 * and session fds), a process that got the session fds over SCM_RIGHTS, or
 * the outsider.  Operations are grouped into batches of up to
 * cfg.batch_max that run at the same time on different actors; the
 * generator only puts operations in one batch whose effects on the model
 * commute (disjoint byte ranges of one page, a drain racing writes, a fork
 * racing faults, MADV_DONTNEED racing writes...), so the outcome is
 * predictable whatever the interleaving, and a seed replays a run.
 *
 * The model: the file's bytes and size; per session the private pages
 * (offset -> contents) and what its logs say (offset -> contents rebuilt
 * from the records drained so far, starting from the page as it was
 * copied).  A page's visible contents are its private copy if there is one,
 * else the file's current page; a non-private page at or beyond EOF gives
 * SIGBUS.  Checks: every read; every write's outcome (ok, SIGBUS at EOF,
 * SIGSEGV on a read-only mapping); DISCARD's page count; INFO's
 * private_pages, cow_faults, undrained_pages, mapped_bytes and sizes; the
 * event ring's sequence numbers and COW count; DIFF against the drained
 * logs; every drained record's old bytes against the log image (a chain),
 * and after a quiet drain the log image of every private page against the
 * page; at the end the kernel's final drain on close.
 *
 * On a mismatch the seed and the trace of the last operations are printed;
 * COWMAP_SEED=<seed> STRESS_OPS=<n> replays the run.
 *
 * Fault injection (cowmap_faultinj_test.c) hooks in through cfg.inject:
 * actors run with make-it-fail set, and failed allocations must end as a
 * clean errno (ENOMEM, EAGAIN...), a retried fault, or nothing.  Operations
 * whose effect is then uncertain (an mmap/munmap/mremap that failed) are
 * cleaned up with injection paused, and the model stays exact.
 */
#ifndef COWMAP_STRESS_H
#define COWMAP_STRESS_H

#include <stddef.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <linux/falloc.h>

#include "lib/nl.h"

#define ST_MAX_ACTORS	16
#define ST_MAX_PROCS	12
#define ST_MAX_SESS	4
#define ST_MAX_MAPS	48
#define ST_CAP_PAGES	64		/* offsets used: [0, ST_CAP_PAGES) pages */
#define ST_MAP_MAX	12		/* pages in one mapping at most */
#define ST_BATCH_MAX	4
#define ST_TRACE_LINES	256
#define ST_P0_WORKERS	2

enum st_op {
	OP_NONE,
	OP_MAP,		/* mmap the session: addr out */
	OP_UNMAP,	/* munmap [addr, addr+len) */
	OP_READ,	/* copy the page at addr out (mode: memcpy, /proc/self/mem, O_DIRECT) */
	OP_WRITE,	/* write bytes (mode: memcpy, /proc/self/mem, O_DIRECT read into it) */
	OP_FORK,	/* fork a new actor process */
	OP_EXIT,	/* this process exits */
	OP_SEND,	/* send session fd over SCM_RIGHTS to actor peer */
	OP_RECV,	/* receive an fd */
	OP_CLOSE,	/* close session fd */
	OP_DISCARD,	/* COWMAP_IOC_DISCARD */
	OP_DRAIN,	/* drain (mode: ioctl bound, ioctl DRAIN_FD, netlink) */
	OP_MREMAP,	/* mode: move (congruent or not), shrink, grow */
	OP_MADV,	/* madvise(mode) */
	OP_OWRITE,	/* outsider: pwrite */
	OP_OTRUNC,	/* outsider: ftruncate */
	OP_OPUNCH,	/* outsider: punch a hole */
	OP_ODIRECT,	/* outsider: O_DIRECT pwrite of whole pages */
	OP_PROBE,	/* is [addr, addr+len) mapped? (cleanup after failures) */
	OP_QUIT,
	OP_NR
};

static const char *const st_op_name[OP_NR] = {
	"none", "map", "unmap", "read", "write", "fork", "exit", "send", "recv",
	"close", "discard", "drain", "mremap", "madvise", "owrite", "otrunc",
	"opunch", "odirect", "probe", "quit",
};

struct st_cmd {
	int op;
	int mode;
	int fd;
	int prot;
	int peer;		/* SEND: receiving actor; FORK: new actor */
	int sess;
	uint64_t addr, len;	/* user addresses */
	uint64_t off, flen;	/* file offset / length */
	uint32_t boff, blen;	/* WRITE: bytes within the page */
	uint64_t seed;		/* data pattern */
	uint64_t sess_id;
	char path[160];
	/* results */
	long ret;
	int err;
	int sig;
	uint64_t raddr;
	uint64_t r1, r2, r3;
	uint8_t page[PG] __attribute__((aligned(PG)));
};

struct st_slot {
	sem_t go, done;
	volatile int pid;
	struct sockaddr_un sock;	/* its process's SCM socket (autobound) */
	socklen_t socklen;
	struct st_cmd c;
};

/* Shared by every process of a run (MAP_SHARED anonymous). */
struct st_shared {
	struct st_slot slot[ST_MAX_ACTORS];
	char dir[256];
	char file[300];
	pid_t p0;
	int inject;
	int outsider;		/* actor never made to fail */
	uint64_t run_id;
	long kernel_segv;	/* SIGSEGVs the kernel sent on its own (SI_KERNEL) */
};

struct st_cfg {
	const char *dir;	/* scratch directory (created files go here) */
	uint64_t seed;
	long ops;		/* operations to run (0: by time) */
	long seconds;		/* stop after this long (0: no limit) */
	int nsess;
	int batch_max;
	int max_procs;
	int fs_odirect;		/* O_DIRECT usable on this filesystem */
	int inject;		/* fault injection: actors make-it-fail */
	/* Called around the random phase when inject is set. */
	void (*inject_on)(void *arg);
	void (*inject_off)(void *arg);
	void *inject_arg;
};

struct st_stats {
	long ops, batches, reads, writes, sigbus, sigsegv, cows, drains, records;
	long discards, forks, exits, fdpass, maps, unmaps, mremaps, madvs, owrites;
	long truncs, punches, odirects, checks, enomem, failed_ops, cleanups;
	long kernel_segv;	/* see st_sig() */
	long mismatches;
	long rmodes[3], wmodes[3];	/* READs and WRITEs by mode */
};

/* ------------------------------------------------------------------------
 * Actor side
 */

static struct st_shared *st_sh;
static __thread sigjmp_buf st_jb;
static __thread volatile int st_in_access;
static __thread int st_self = -1;
static int st_sock = -1;			/* this process's SCM socket */
static int st_ofd = -1, st_odfd = -1;		/* outsider: buffered, O_DIRECT */
static int st_sfd = -1, st_sdfd = -1;		/* per-process scratch: buffered, O_DIRECT */
static void *st_obuf;				/* aligned buffer for O_DIRECT */

static void st_sig(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!st_in_access && sig == SIGSEGV && si && si->si_code == SI_KERNEL &&
	    st_sh && st_sh->inject) {
		/*
		 * Not a fault: the kernel could not write this thread's rseq
		 * area (or a signal frame) on the way back to user space, an
		 * injected allocation failure (the page is copy-on-write after
		 * fork), and says so with SIGSEGV (kernel/rseq.c).  Carry on.
		 */
		__atomic_add_fetch(&st_sh->kernel_segv, 1, __ATOMIC_RELAXED);
		return;
	}
	if (!st_in_access) {
		/*
		 * Not during an access: say so (the runner then reports the
		 * actor dead of it) and die of it (the fault repeats with
		 * SIG_DFL).
		 */
		char m[160];
		int n = snprintf(m, sizeof(m),
				 "# stress: pid %d: signal %d (code %d, address %p) outside an access\n",
				 (int)getpid(), sig, si ? si->si_code : 0, si ? si->si_addr : NULL);

		if (n > 0 && write(2, m, (size_t)n) < 0)
			n = 0;
		signal(sig, SIG_DFL);
		return;
	}
	st_in_access = 0;
	siglongjmp(st_jb, sig);
}

/* Per process: the SCM socket, autobound to a unique abstract name. */
static int st_proc_init(int actor)
{
	struct st_slot *sl = &st_sh->slot[actor];
	sa_family_t fam = AF_UNIX;
	char p[400];

	if (st_sock >= 0)
		close(st_sock);
	st_sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (st_sock < 0)
		return -errno;
	if (bind(st_sock, (struct sockaddr *)&fam, sizeof(fam)))
		return -errno;
	sl->socklen = sizeof(sl->sock);
	if (getsockname(st_sock, (struct sockaddr *)&sl->sock, &sl->socklen))
		return -errno;
	if (st_sfd >= 0)
		close(st_sfd);
	if (st_sdfd >= 0)
		close(st_sdfd);
	snprintf(p, sizeof(p), "%s/scratch.%d", st_sh->dir, actor);
	st_sfd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	st_sdfd = open(p, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (st_sfd < 0)
		return -errno;
	return 0;
}

/*
 * Set this thread's make-it-fail.  The file stays open per thread (an
 * open() with injection on may itself fail, and turning injection off must
 * not); a forked child's copy names its parent's thread, so it is reopened
 * when the thread id changes.
 */
static void st_make_it_fail(int on)
{
	static __thread int fd = -1;
	static __thread pid_t tid;
	pid_t me = (pid_t)syscall(SYS_gettid);
	int tries;

	if (fd >= 0 && tid != me) {
		close(fd);
		fd = -1;
	}
	for (tries = 0; fd < 0 && tries < 1000; tries++)
		fd = open("/proc/thread-self/make-it-fail", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("make-it-fail");
		return;
	}
	tid = me;
	for (tries = 0; tries < 1000; tries++) {
		if (pwrite(fd, on ? "1" : "0", 1, 0) == 1)
			return;
	}
	perror("make-it-fail");
}

/*
 * The actor's own bookkeeping munmaps (the mremap reservation) run with
 * injection off for this thread: their failure would leave mappings the
 * model knows nothing of.
 */
static void st_quiet_munmap(void *addr, size_t len)
{
	if (st_sh->inject)
		st_make_it_fail(0);
	if (munmap(addr, len))
		perror("munmap (reservation)");
	if (st_sh->inject)
		st_make_it_fail(1);
}

/* Touch memory with SIGBUS/SIGSEGV caught: returns 0 or the signal. */
static int st_copy(void *dst, const void *src, size_t len)
{
	int sig = sigsetjmp(st_jb, 1);

	if (sig)
		return sig;
	st_in_access = 1;
	memcpy(dst, src, len);
	st_in_access = 0;
	return 0;
}

static int st_send_fd(int peer, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov;
	struct msghdr mh = { 0 };
	struct cmsghdr *cm;
	char b = 'f';

	iov.iov_base = &b;
	iov.iov_len = 1;
	mh.msg_name = &st_sh->slot[peer].sock;
	mh.msg_namelen = st_sh->slot[peer].socklen;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(st_sock, &mh, MSG_DONTWAIT) < 0 ? -errno : 0;
}

static int st_recv_fd(void)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov;
	struct msghdr mh = { 0 };
	struct cmsghdr *cm;
	char b;
	int fd = -1;

	iov.iov_base = &b;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	if (recvmsg(st_sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0)
		return -errno;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -EBADMSG;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static void st_actor_loop(int self);

static int st_netlink_drain(uint64_t id, int log_fd)
{
	struct nlu_family f;
	uint8_t attrs[32];
	size_t alen;
	int sk = nlu_socket(), err;

	if (sk < 0)
		return sk;
	err = nlu_resolve(sk, &f);
	if (!err) {
		alen = nlu_put_u64(attrs, COWMAP_A_SESSION_ID, id);
		if (log_fd >= 0)
			alen += nlu_put_u32(attrs + alen, COWMAP_A_LOG_FD, log_fd);
		err = nlu_request(sk, f.id, COWMAP_CMD_DRAIN, 0, attrs, alen,
				  NULL, NULL, 30000);
	}
	close(sk);
	return err;
}

/* Returns 1 if "done" was posted by someone else (a forked child). */
static int st_exec(int self, struct st_cmd *c)
{
	uint8_t *a = (uint8_t *)(uintptr_t)c->addr;
	int sig = 0, fd;
	long r = 0;

	c->ret = 0;
	c->err = 0;
	c->sig = 0;
	if (c->op == OP_READ || c->op == OP_WRITE)
		c->r3 = 0;
	switch (c->op) {
	case OP_MAP: {
		void *p = mmap(NULL, c->len, c->prot, MAP_SHARED, c->fd, c->off);

		if (p == MAP_FAILED)
			r = -errno;
		else
			c->raddr = (uintptr_t)p;
		break;
	}
	case OP_UNMAP:
		r = munmap(a, c->len) ? -errno : 0;
		break;
	case OP_PROBE: {
		/* msync fails with ENOMEM on unmapped pages. */
		uint64_t i, mapped = 0;

		for (i = 0; i < c->len; i += PG)
			if (!msync(a + i, PG, MS_ASYNC))
				mapped++;
		c->r1 = mapped;
		break;
	}
	case OP_READ:
		if (c->mode == 0) {
			sig = st_copy(c->page, a, PG);
		} else if (c->mode == 1) {
			int mfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);

			if (mfd < 0) {
				r = -errno;
				c->r3 = 1;	/* not the access */
				break;
			}
			r = pread(mfd, c->page, PG, (off_t)c->addr);
			r = r == PG ? 0 : r < 0 ? -errno : -EIO;
			close(mfd);
		} else {
			/* O_DIRECT write from the mapping into the scratch file. */
			off_t so = (off_t)self * PG;

			r = pwrite(st_sdfd, a, PG, so);
			r = r == PG ? 0 : r < 0 ? -errno : -EIO;
			if (!r && pread(st_sfd, c->page, PG, so) != PG) {
				r = -EIO;
				c->r3 = 1;
			}
		}
		break;
	case OP_WRITE: {
		static __thread uint8_t buf[PG] __attribute__((aligned(PG)));

		cm_fill(c->seed, buf, c->blen);
		if (c->mode == 0) {
			sig = st_copy(a + c->boff, buf, c->blen);
		} else if (c->mode == 1) {
			int mfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);

			if (mfd < 0) {
				r = -errno;
				c->r3 = 1;
				break;
			}
			r = pwrite(mfd, buf, c->blen, (off_t)(c->addr + c->boff));
			r = r == c->blen ? 0 : r < 0 ? -errno : -EIO;
			close(mfd);
		} else {
			/* O_DIRECT read of a whole page into the mapping. */
			off_t so = (off_t)self * PG;

			if (pwrite(st_sfd, buf, PG, so) != PG || fsync(st_sfd)) {
				r = -errno;
				c->r3 = 1;
				break;
			}
			r = pread(st_sdfd, a, PG, so);
			r = r == PG ? 0 : r < 0 ? -errno : -EIO;
		}
		break;
	}
	case OP_FORK: {
		pid_t pid;

		/* Every process is a child of P0 (CLONE_PARENT), so P0 reaps all. */
		if (getpid() == st_sh->p0)
			pid = fork();
		else
			pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL,
				      NULL, 0);
		if (pid < 0) {
			r = -errno;
		} else if (pid == 0) {
			int newa = c->peer;

			int e;

			signal(SIGCHLD, SIG_DFL);
			st_sh->slot[newa].pid = getpid();
			c->r1 = getpid();	/* reaped by P0 if the set-up fails */
			e = st_proc_init(newa);
			if (e) {
				c->ret = e;
				c->err = -e;
				sem_post(&st_sh->slot[self].done);
				_exit(99);
			}
			c->r1 = getpid();
			sem_post(&st_sh->slot[self].done);	/* the parent's reply */
			st_actor_loop(newa);
			_exit(0);
		} else {
			/*
			 * The child posts our "done" once it is ready; the
			 * controller may already be reusing the slot: hands off.
			 */
			return 1;
		}
		break;
	}
	case OP_EXIT:
		sem_post(&st_sh->slot[self].done);
		_exit(0);
	case OP_SEND:
		r = st_send_fd(c->peer, c->fd);
		break;
	case OP_RECV:
		r = st_recv_fd();
		break;
	case OP_CLOSE:
		r = close(c->fd) ? -errno : 0;
		break;
	case OP_DISCARD: {
		struct cowmap_range rg = { .offset = c->off, .length = c->flen };

		if (c->mode)
			rg.flags = COWMAP_RANGE_ALL;
		r = cm_ioctl(c->fd, COWMAP_IOC_DISCARD, &rg);
		c->r1 = rg.pages;
		break;
	}
	case OP_DRAIN: {
		struct cowmap_drain d = { .log_fd = -1 };

		if (c->mode == 1) {
			fd = open(c->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (fd < 0) {
				r = -errno;
				break;
			}
			d.log_fd = fd;
			d.flags = COWMAP_DRAIN_FD;
			r = cm_ioctl(c->fd, COWMAP_IOC_DRAIN, &d);
			close(fd);
		} else if (c->mode == 2) {
			r = st_netlink_drain(c->sess_id, -1);
		} else {
			r = cm_ioctl(c->fd, COWMAP_IOC_DRAIN, &d);
		}
		c->r1 = d.records;
		c->r2 = d.pages;
		c->r3 = d.bytes;
		break;
	}
	case OP_MREMAP: {
		void *p;

		if (c->mode == 0) {
			/* Move to a chosen address inside a reservation. */
			size_t rlen = c->len + (4UL << 20);
			uint8_t *res = mmap(NULL, rlen, PROT_NONE,
					    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			uint64_t t;

			if (res == MAP_FAILED) {
				r = -errno;
				break;
			}
			/* 2 MiB-align, then pick (c->r2) congruence. */
			t = ((uintptr_t)res + (2UL << 20) - 1) & ~((2UL << 20) - 1);
			t += ((c->off / PG) % 512) * PG;	/* congruent */
			if (!c->flen)
				t += (1 + c->seed % 511) * PG;	/* not */
			if (t + c->len > (uintptr_t)res + rlen)
				t -= 2UL << 20;
			p = mremap(a, c->len, c->len, MREMAP_MAYMOVE | MREMAP_FIXED,
				   (void *)(uintptr_t)t);
			if (p == MAP_FAILED) {
				/*
				 * A refused move whose undo failed to unmap
				 * the new range (mm/mremap.c move_vma()) left
				 * it mapped inside the reservation: this
				 * munmap takes it too.
				 */
				r = -errno;
				st_quiet_munmap(res, rlen);
			} else {
				unsigned char v;

				c->raddr = (uintptr_t)p;
				/*
				 * A move whose final munmap of the old range
				 * failed (an injected allocation failure in
				 * the VMA split or tree update) still returns
				 * the new address and leaves the old mapping
				 * in place (mm/mremap.c move_vma()).
				 */
				if (st_sh->inject)
					st_make_it_fail(0);	/* ENOMEM would mean "unmapped" */
				c->r3 = p != a && !mincore(a, PG, &v);
				if (st_sh->inject)
					st_make_it_fail(1);
				if (t > (uintptr_t)res)
					st_quiet_munmap(res, t - (uintptr_t)res);
				if (t + c->len < (uintptr_t)res + rlen)
					st_quiet_munmap((void *)(uintptr_t)(t + c->len),
							(uintptr_t)res + rlen - t - c->len);
			}
		} else if (c->mode == 1) {
			p = mremap(a, c->len, c->flen, 0);
			r = p == MAP_FAILED ? -errno : 0;
		} else {
			p = mremap(a, c->len, c->flen, MREMAP_MAYMOVE);
			if (p == MAP_FAILED) {
				r = -errno;
			} else {
				c->raddr = (uintptr_t)p;
				r = 0;
			}
		}
		break;
	}
	case OP_MADV: {
		static const int advs[] = { MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT,
					    MADV_WILLNEED, MADV_REMOVE, MADV_SEQUENTIAL };

		r = madvise(a, c->len, advs[c->mode]) ? -errno : 0;
		break;
	}
	case OP_OWRITE: {
		static uint8_t buf[2 * PG];

		cm_fill(c->seed, buf, c->flen);
		r = pwrite(st_ofd, buf, c->flen, c->off);
		r = r == (long)c->flen ? 0 : r < 0 ? -errno : -EIO;
		break;
	}
	case OP_ODIRECT:
		cm_fill(c->seed, st_obuf, c->flen);
		r = pwrite(st_odfd, st_obuf, c->flen, c->off);
		r = r == (long)c->flen ? 0 : r < 0 ? -errno : -EIO;
		break;
	case OP_OTRUNC:
		r = ftruncate(st_ofd, c->off) ? -errno : 0;
		break;
	case OP_OPUNCH:
		r = fallocate(st_ofd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      c->off, c->flen) ? -errno : 0;
		break;
	case OP_QUIT:
		break;
	}
	c->ret = r;
	c->err = r < 0 ? (int)-r : 0;
	c->sig = sig;
	return 0;
}

static void st_actor_loop(int self)
{
	struct st_slot *sl = &st_sh->slot[self];

	st_self = self;
	if (st_sh->inject && self != st_sh->outsider)
		st_make_it_fail(1);
	for (;;) {
		while (sem_wait(&sl->go) && errno == EINTR)
			;
		if (st_exec(self, &sl->c))
			continue;	/* the child posted "done" */
		if (sl->c.op == OP_QUIT) {
			sem_post(&sl->done);
			if (getpid() != st_sh->p0)
				_exit(0);
			return;
		}
		sem_post(&sl->done);
	}
}

static void *st_thread_main(void *arg)
{
	st_actor_loop((int)(intptr_t)arg);
	return NULL;
}

/* ------------------------------------------------------------------------
 * Controller side: the model
 */

struct st_proc {
	int alive;
	pid_t pid;
	int actors[ST_P0_WORKERS];
	int nactors;
	int fd[ST_MAX_SESS];		/* fd number in this process, or -1 */
	int outsider;
	int busy_struct, busy_any;	/* batch bookkeeping */
};

struct st_map {
	int alive;
	int proc;
	int sess;
	uint64_t pgoff;			/* first page */
	uint64_t npages;
	uint64_t addr;
	int prot;
};

struct st_sess {
	int fd;				/* P0's fd */
	uint64_t id;
	char log[320];
	uint64_t log_pos;		/* bytes of the bound log consumed */
	uint64_t log_seq;		/* next record seq expected */
	uint8_t *priv[ST_CAP_PAGES];
	uint8_t *logimg[ST_CAP_PAGES];
	uint8_t und[ST_CAP_PAGES];
	int und_unsure;
	int od_since_drain;		/* an O_DIRECT transfer used the mapping */
	uint64_t cows;			/* copies since bind */
	uint64_t ev_cows;		/* copies already matched with events */
	uint64_t ev_seq;		/* last event seq seen */
	uint32_t ring;
	int nfdlogs;
};

struct st_run {
	struct st_cfg cfg;
	struct st_stats st;
	uint64_t rng;
	uint8_t file[ST_CAP_PAGES * PG];
	uint64_t size;
	struct st_proc proc[ST_MAX_PROCS];
	struct st_map map[ST_MAX_MAPS];
	struct st_sess s[ST_MAX_SESS];
	int actor_proc[ST_MAX_ACTORS];	/* -1: free */
	pthread_t thr[ST_P0_WORKERS];
	int outsider_actor, fresh_actor;
	char trace[ST_TRACE_LINES][160];
	long ntrace;
	char why[512];
	struct timespec t0;
	int failed;
	int racing_ok;		/* sessions whose drain raced a write that landed */
	int batch_ops;		/* operations in the batch being completed */
};

static void st_trace(struct st_run *R, const char *fmt, ...)
{
	va_list ap;
	char *l = R->trace[R->ntrace++ % ST_TRACE_LINES];

	va_start(ap, fmt);
	vsnprintf(l, 160, fmt, ap);
	va_end(ap);
}

static void st_dump_trace(struct st_run *R)
{
	long i = R->ntrace > ST_TRACE_LINES ? R->ntrace - ST_TRACE_LINES : 0;

	fprintf(stderr, "# ---- stress trace (last %ld of %ld lines), seed %llu ----\n",
		R->ntrace - i, R->ntrace, (unsigned long long)R->cfg.seed);
	for (; i < R->ntrace; i++)
		fprintf(stderr, "#   %s\n", R->trace[i % ST_TRACE_LINES]);
	fprintf(stderr, "# replay: COWMAP_SEED=%llu STRESS_OPS=%ld (dir %s)\n",
		(unsigned long long)R->cfg.seed, R->st.ops, R->cfg.dir);
}

/* Record a mismatch; the run stops at the first one. */
static void st_fail(struct st_run *R, const char *fmt, ...)
{
	va_list ap;

	if (R->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(R->why, sizeof(R->why), fmt, ap);
	va_end(ap);
	R->failed = 1;
	R->st.mismatches++;
	st_trace(R, "MISMATCH: %s", R->why);
	fprintf(stderr, "# MISMATCH: %s\n", R->why);
	st_dump_trace(R);
}

static uint64_t st_rnd(struct st_run *R, uint64_t n)
{
	return n ? cm_rand(&R->rng) % n : 0;
}

static uint64_t st_npages_eof(struct st_run *R)
{
	return (R->size + PG - 1) / PG;
}

/* Expected page contents for session @s at page @p; returns 0 or SIGBUS. */
static int st_expect(struct st_run *R, int s, uint64_t p, uint8_t *out)
{
	if (R->s[s].priv[p]) {
		memcpy(out, R->s[s].priv[p], PG);
		return 0;
	}
	if (p >= st_npages_eof(R))
		return SIGBUS;
	memcpy(out, R->file + p * PG, PG);
	return 0;
}

static uint64_t st_hash(const uint8_t *p, size_t n)
{
	return cm_crc32c_raw(~0U, p, n);
}

/* ------------------------------------------------------------------------
 * Talking to actors
 */

static void st_post(struct st_run *R, int actor)
{
	(void)R;
	sem_post(&st_sh->slot[actor].go);
}

/*
 * Read /proc/<pid>[/task/<tid>]/stat (@tid 0: the process) into @buf and
 * return its fields after "(comm) ", state first; NULL if it is gone.
 */
static char *st_stat(pid_t pid, pid_t tid, char *buf, size_t len)
{
	char path[96], *p;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (cm_read_text(path, buf, len))
		return NULL;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] ? p + 2 : NULL;
}

/*
 * Where a stuck process is: each thread's state, minor faults (twice, 2 s
 * apart: a thread retrying a fault counts up) and kernel stack.
 */
static void st_dump_stuck(pid_t pid)
{
	char path[96], buf[4096], *p;
	unsigned long flt[2][64] = { { 0 } };
	char state[64] = { 0 };
	int tids[64], n = 0, round, i;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)) && n < 64) {
		if (de->d_name[0] != '.')
			tids[n++] = atoi(de->d_name);
	}
	closedir(d);
	for (round = 0; round < 2; round++) {
		if (round)
			sleep(2);
		for (i = 0; i < n; i++) {
			/* State, then minflt (the 10th field). */
			p = st_stat(pid, tids[i], buf, sizeof(buf));
			if (p && sscanf(p, "%c %*d %*d %*d %*d %*d %*u %lu",
					&state[i], &flt[round][i]) != 2)
				state[i] = '?';
		}
	}
	for (i = 0; i < n; i++) {
		printf("# stuck pid %d, thread %d: state %c, %lu minor faults in 2 s; kernel stack:\n",
		       pid, tids[i], state[i] ? state[i] : '?', flt[1][i] - flt[0][i]);
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", pid, tids[i]);
		if (!cm_read_text(path, buf, sizeof(buf))) {
			for (p = strtok(buf, "\n"); p; p = strtok(NULL, "\n"))
				printf("#   %s\n", p);
		}
	}
	fflush(stdout);
}

/*
 * State letter of process @pid ('?' if it is gone); a zombie's exit status
 * (the wait(2) status word: signal in the low bits) in *@status.
 */
static char st_proc_state(pid_t pid, int *status)
{
	char buf[2048], *p = st_stat(pid, 0, buf, sizeof(buf)), *q;
	int i;

	if (!p)
		return '?';
	/* exit_code is the last field (52nd; 49 fields after the state). */
	for (i = 0, q = p; q && i < 49; i++) {
		q = strchr(q, ' ');
		if (q)
			q++;
	}
	*status = q ? atoi(q) : 0;
	return p[0];
}

/*
 * Wait for @actor; fails the run if it does not answer in time, or at once
 * if its process died (of a signal it did not expect, say).
 */
static int st_wait(struct st_run *R, int actor)
{
	struct timespec ts;
	pid_t pid = st_sh->slot[actor].pid;
	int waited = 0, status = 0;
	char state;

	for (;;) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (!sem_timedwait(&st_sh->slot[actor].done, &ts))
			return 0;
		if (errno == EINTR)
			continue;
		state = st_proc_state(pid, &status);
		if (state == 'Z' || state == '?') {
			st_fail(R, "actor %d (pid %d) died running %s: %s %d", actor, pid,
				st_op_name[st_sh->slot[actor].c.op],
				WIFSIGNALED(status) ? "signal" : "exit status",
				WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			return -1;
		}
		if (++waited < 120)
			continue;
		st_dump_stuck(pid);
		st_fail(R, "actor %d (pid %d) did not answer %s within 120 s", actor,
			pid, st_op_name[st_sh->slot[actor].c.op]);
		return -1;
	}
}

static struct st_cmd *st_cmd(int actor)
{
	struct st_cmd *c = &st_sh->slot[actor].c;

	memset(c, 0, offsetof(struct st_cmd, page));
	c->fd = -1;
	return c;
}

/* Run one command on @actor synchronously. */
static struct st_cmd *st_run1(struct st_run *R, int actor)
{
	st_post(R, actor);
	if (st_wait(R, actor))
		return NULL;
	return &st_sh->slot[actor].c;
}

static int st_new_actor(struct st_run *R, int proc)
{
	int a;

	/* -1: free; -2: taken by a fork still in flight. */
	for (a = 0; a < ST_MAX_ACTORS; a++) {
		if (R->actor_proc[a] == -1) {
			R->actor_proc[a] = proc;
			return a;
		}
	}
	return -1;
}

static int st_new_proc(struct st_run *R)
{
	int i, s;

	for (i = 0; i < ST_MAX_PROCS; i++) {
		if (!R->proc[i].alive) {
			memset(&R->proc[i], 0, sizeof(R->proc[i]));
			for (s = 0; s < ST_MAX_SESS; s++)
				R->proc[i].fd[s] = -1;
			R->proc[i].alive = 1;
			return i;
		}
	}
	return -1;
}

static int st_nprocs(struct st_run *R)
{
	int i, n = 0;

	for (i = 0; i < ST_MAX_PROCS; i++)
		n += R->proc[i].alive;
	return n;
}

static int st_new_map(struct st_run *R)
{
	int i;

	for (i = 0; i < ST_MAX_MAPS; i++)
		if (!R->map[i].alive)
			return i;
	return -1;
}

static uint64_t st_mapped_bytes(struct st_run *R, int s)
{
	uint64_t b = 0;
	int i;

	for (i = 0; i < ST_MAX_MAPS; i++)
		if (R->map[i].alive && R->map[i].sess == s)
			b += R->map[i].npages * PG;
	return b;
}

/* ------------------------------------------------------------------------
 * Logs: parse what a drain appended and replay it onto the log image
 */

static int st_apply_records(struct st_run *R, int s, const uint8_t *buf, size_t len,
			    uint64_t *seq, size_t *consumed, const char *what)
{
	struct st_sess *S = &R->s[s];
	size_t pos = 0;
	struct cm_rec r;
	char why[64];
	int n;

	while ((n = cm_rec_next(buf, len, &pos, &r, why)) == 1) {
		uint64_t p = r.offset / PG, o = r.offset % PG;

		if (r.seq != *seq) {
			st_fail(R, "%s: record seq %llu, expected %llu", what,
				(unsigned long long)r.seq, (unsigned long long)*seq);
			return -1;
		}
		(*seq)++;
		if (p >= ST_CAP_PAGES || o + r.length > PG || r.flags) {
			st_fail(R, "%s: record at %#llx+%u spans pages or has flags %#x",
				what, (unsigned long long)r.offset, r.length, r.flags);
			return -1;
		}
		if (!S->logimg[p]) {
			st_fail(R, "%s: record for page %llu, which session %d never copied",
				what, (unsigned long long)p, s);
			return -1;
		}
		if (memcmp(S->logimg[p] + o, r.old, r.length)) {
			st_fail(R, "%s: record seq %llu at %#llx+%u: old bytes do not match what the log said before (chain broken)",
				what, (unsigned long long)r.seq,
				(unsigned long long)r.offset, r.length);
			return -1;
		}
		memcpy(S->logimg[p] + o, r.new, r.length);
		R->st.records++;
		*consumed = pos;
	}
	*consumed = pos;
	if (n < 0) {
		/* A partial record at the very end is a torn tail (left for later). */
		if (cm_rec_torn(buf, len, pos))
			return 1;
		st_fail(R, "%s: bad record at byte %zu of the new part: %s", what, pos, why);
		return -1;
	}
	return 0;
}

static uint8_t *st_read_file(const char *path, uint64_t from, size_t *len)
{
	size_t all;
	uint8_t *b = cm_slurp(path, &all);

	if (!b)
		return NULL;
	if (from > all)
		from = all;
	memmove(b, b + from, all - from);
	*len = all - from;
	return b;
}

static int st_check_header(struct st_run *R, int s, const uint8_t *b, size_t len,
			   const char *what)
{
	const struct cowmap_log_header *h = (const void *)b;
	uint32_t hl;

	if (len < sizeof(*h) || memcmp(h->magic, COWMAP_LOG_MAGIC, 8)) {
		st_fail(R, "%s: no log header (%zu bytes)", what, len);
		return -1;
	}
	hl = le32toh(h->header_len);
	if (hl > len || hl % 8 ||
	    cm_crc32c_skip(b, hl, offsetof(struct cowmap_log_header, crc)) !=
	    le32toh(h->crc) || le64toh(h->session_id) != R->s[s].id) {
		st_fail(R, "%s: bad log header (len %u, session %llu)", what, hl,
			(unsigned long long)le64toh(h->session_id));
		return -1;
	}
	return hl;
}

/* Consume what the bound log of @s gained. */
static int st_consume_log(struct st_run *R, int s)
{
	struct st_sess *S = &R->s[s];
	size_t len, used = 0;
	uint8_t *b = st_read_file(S->log, S->log_pos, &len);
	int r;

	if (!b) {
		st_fail(R, "cannot read %s", S->log);
		return -1;
	}
	if (!S->log_pos) {
		r = st_check_header(R, s, b, len, S->log);
		if (r < 0) {
			free(b);
			return -1;
		}
		S->log_pos = r;
		memmove(b, b + r, len - r);
		len -= r;
	}
	r = st_apply_records(R, s, b, len, &S->log_seq, &used, S->log);
	S->log_pos += used;
	free(b);
	return r;
}

static int st_consume_fdlog(struct st_run *R, int s, const char *path, int may_tear)
{
	uint64_t seq = 0;
	size_t len, used;
	uint8_t *b = st_read_file(path, 0, &len);
	int r;

	if (!b) {
		st_fail(R, "cannot read %s", path);
		return -1;
	}
	r = st_check_header(R, s, b, len, path);
	if (r >= 0) {
		r = st_apply_records(R, s, b + r, len - r, &seq, &used, path);
		if (r > 0 && !may_tear) {
			st_fail(R, "%s: torn tail after a drain that returned", path);
			r = -1;
		}
	}
	free(b);
	unlink(path);
	return r < 0 ? -1 : 0;
}

/* After a quiet drain: the logs must say what every private page holds. */
static void st_check_logimg(struct st_run *R, int s, const char *when)
{
	struct st_sess *S = &R->s[s];
	uint64_t p;

	for (p = 0; p < ST_CAP_PAGES; p++) {
		if (!S->priv[p])
			continue;
		if (!S->logimg[p] || memcmp(S->logimg[p], S->priv[p], PG)) {
			size_t i = 0;

			while (S->logimg[p] && i < PG && S->logimg[p][i] == S->priv[p][i])
				i++;
			st_fail(R, "%s: session %d page %llu: the drained logs do not reproduce it (first difference at byte %zu)",
				when, s, (unsigned long long)p, i);
			return;
		}
	}
}

/* ------------------------------------------------------------------------
 * Checks run by the controller on P0's session fds
 */

static void st_check_info(struct st_run *R, int s)
{
	struct st_sess *S = &R->s[s];
	struct cowmap_info in;
	uint64_t priv = 0, und = 0, p;
	int err = cm_info(S->fd, &in);

	R->st.checks++;
	if (err) {
		st_fail(R, "INFO of session %d: %s", s, strerror(-err));
		return;
	}
	for (p = 0; p < ST_CAP_PAGES; p++) {
		priv += !!S->priv[p];
		und += S->priv[p] && S->und[p];
	}
	st_trace(R, "info s%d: priv %llu cows %llu und %llu mapped %llu cur_size %llu",
		 s, (unsigned long long)in.private_pages,
		 (unsigned long long)in.cow_faults,
		 (unsigned long long)in.undrained_pages,
		 (unsigned long long)in.mapped_bytes,
		 (unsigned long long)in.cur_size);
	if (!S->und_unsure && in.undrained_pages != und) {
		char l[200] = "";
		size_t o = 0;

		for (p = 0; p < ST_CAP_PAGES && o < sizeof(l) - 8; p++)
			if (S->priv[p] && S->und[p])
				o += snprintf(l + o, sizeof(l) - o, " %llu", (unsigned long long)p);
		st_trace(R, "  model's undrained pages of s%d:%s", s, l);
	}
	if (in.private_pages != priv || in.cow_faults != S->cows ||
	    in.mapped_bytes != st_mapped_bytes(R, s) || in.cur_size != R->size ||
	    in.id != S->id || (!S->und_unsure && in.undrained_pages != und))
		st_fail(R, "INFO of session %d: private_pages %llu (model %llu), cow_faults %llu (%llu), mapped_bytes %llu (%llu), cur_size %llu (%llu), undrained %llu (%llu%s)",
			s, (unsigned long long)in.private_pages, (unsigned long long)priv,
			(unsigned long long)in.cow_faults, (unsigned long long)S->cows,
			(unsigned long long)in.mapped_bytes,
			(unsigned long long)st_mapped_bytes(R, s),
			(unsigned long long)in.cur_size, (unsigned long long)R->size,
			(unsigned long long)in.undrained_pages, (unsigned long long)und,
			S->und_unsure ? ", unsure" : "");
}

static void st_check_events(struct st_run *R, int s)
{
	struct st_sess *S = &R->s[s];
	struct cowmap_event ev[64];
	uint64_t cows = 0;
	int n, i;

	R->st.checks++;
	cm_set_nonblock(S->fd, true);
	for (;;) {
		n = cm_events(S->fd, ev, 64);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			st_fail(R, "read events of session %d: %s", s, strerror(-n));
			return;
		}
		for (i = 0; i < n; i++) {
			if (ev[i].type == COWMAP_EVENT_LOST) {
				S->ev_seq += ev[i].count;
				cows += ev[i].count;
				continue;
			}
			if (ev[i].type != COWMAP_EVENT_COW || ev[i].seq != S->ev_seq + 1 ||
			    ev[i].offset % PG || ev[i].offset >= PGS(ST_CAP_PAGES)) {
				st_fail(R, "session %d: event type %u seq %llu offset %#llx (expected COW seq %llu)",
					s, ev[i].type, (unsigned long long)ev[i].seq,
					(unsigned long long)ev[i].offset,
					(unsigned long long)S->ev_seq + 1);
				return;
			}
			S->ev_seq = ev[i].seq;
			cows++;
		}
	}
	if (S->ev_cows + cows != S->cows)
		st_fail(R, "session %d: %llu COW events (and lost) since the last read, the model made %llu copies",
			s, (unsigned long long)cows,
			(unsigned long long)(S->cows - S->ev_cows));
	S->ev_cows += cows;
}

/* DIFF must say exactly what the logs miss. */
static void st_check_diff(struct st_run *R, int s)
{
	struct st_sess *S = &R->s[s];
	uint8_t *buf = NULL, *img[ST_CAP_PAGES] = { 0 };
	size_t used = 0, pos = 0;
	uint32_t recs;
	struct cm_rec r;
	char why[64];
	uint64_t p;
	int n;

	R->st.checks++;
	n = cm_diff_all(S->fd, 0, 0, COWMAP_DIFF_MIN_BUF + st_rnd(R, 3) * PG, &buf,
			&used, &recs);
	if (n < 0) {
		st_fail(R, "DIFF of session %d: %s", s, strerror(-n));
		return;
	}
	for (p = 0; p < ST_CAP_PAGES; p++) {
		if (S->logimg[p]) {
			img[p] = malloc(PG);
			memcpy(img[p], S->logimg[p], PG);
		}
	}
	while ((n = cm_rec_next(buf, used, &pos, &r, why)) == 1) {
		p = r.offset / PG;
		if (p >= ST_CAP_PAGES || !img[p] || !S->priv[p] ||
		    r.offset % PG + r.length > PG ||
		    memcmp(img[p] + r.offset % PG, r.old, r.length)) {
			st_fail(R, "DIFF of session %d: record at %#llx+%u does not follow the drained logs",
				s, (unsigned long long)r.offset, r.length);
			goto out;
		}
		memcpy(img[p] + r.offset % PG, r.new, r.length);
	}
	if (n < 0) {
		st_fail(R, "DIFF of session %d: %s", s, why);
		goto out;
	}
	for (p = 0; p < ST_CAP_PAGES; p++) {
		if (S->priv[p] && (!img[p] || memcmp(img[p], S->priv[p], PG))) {
			st_fail(R, "DIFF of session %d: logs + diff do not give page %llu",
				s, (unsigned long long)p);
			break;
		}
	}
out:
	for (p = 0; p < ST_CAP_PAGES; p++)
		free(img[p]);
	free(buf);
}

/* ------------------------------------------------------------------------
 * Operations: choose, check conflicts, apply to the model
 */

struct st_pending {
	int actor;
	int proc;
	int op;
	int map;		/* mapping used, or -1 */
	int sess;
	uint64_t page;		/* READ/WRITE: file page */
	uint32_t boff, blen;	/* WRITE bytes */
	uint64_t p0, p1;	/* page range touched [p0, p1) */
	int expect_sig;		/* READ/WRITE: expected signal (or errno mode) */
	int structural;
	int size_change;
	char desc[140];
};

static int st_pick_actor(struct st_run *R, int proc)
{
	struct st_proc *P = &R->proc[proc];

	return P->actors[st_rnd(R, P->nactors)];
}

/* A random live process (not the outsider); -1 if none. */
static int st_pick_proc(struct st_run *R, int need_fd_sess)
{
	int cand[ST_MAX_PROCS], n = 0, i;

	for (i = 0; i < ST_MAX_PROCS; i++) {
		if (!R->proc[i].alive || R->proc[i].outsider)
			continue;
		if (need_fd_sess >= 0 && R->proc[i].fd[need_fd_sess] < 0)
			continue;
		cand[n++] = i;
	}
	return n ? cand[st_rnd(R, n)] : -1;
}

static int st_pick_map(struct st_run *R)
{
	int cand[ST_MAX_MAPS], n = 0, i;

	for (i = 0; i < ST_MAX_MAPS; i++)
		if (R->map[i].alive)
			cand[n++] = i;
	return n ? cand[st_rnd(R, n)] : -1;
}

static int st_overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 < b1 && b0 < a1;
}

/* May @b run in the same batch as @a? */
static int st_compatible(struct st_pending *a, struct st_pending *b)
{
	if (a->actor == b->actor)
		return 0;
	/* A process receiving an fd takes part in nothing else. */
	if (a->op == OP_SEND && (b->proc == (int)a->p0 ||
				 (b->op == OP_SEND && b->p0 == a->p0)))
		return 0;
	if (b->op == OP_SEND && a->proc == (int)b->p0)
		return 0;
	if (a->size_change || b->size_change)
		return 0;
	if (a->proc == b->proc && (a->structural || b->structural))
		return 0;
	/* Anything on pages the outsider is changing. */
	if ((a->op >= OP_OWRITE && a->op <= OP_ODIRECT) ||
	    (b->op >= OP_OWRITE && b->op <= OP_ODIRECT)) {
		struct st_pending *o = a->op >= OP_OWRITE ? a : b;
		struct st_pending *x = o == a ? b : a;

		if (x->op >= OP_OWRITE && x->op <= OP_ODIRECT)
			return 0;
		if ((x->op == OP_READ || x->op == OP_WRITE) &&
		    st_overlap(o->p0, o->p1, x->page, x->page + 1))
			return 0;
		return 1;
	}
	if (a->sess != b->sess || a->sess < 0)
		return 1;
	/* Same session. */
	if (a->op == OP_DRAIN || b->op == OP_DRAIN) {
		struct st_pending *x = a->op == OP_DRAIN ? b : a;

		return x->op == OP_READ || x->op == OP_WRITE || x->op == OP_MADV;
	}
	if (a->op == OP_DISCARD || b->op == OP_DISCARD) {
		struct st_pending *d = a->op == OP_DISCARD ? a : b;
		struct st_pending *x = d == a ? b : a;

		if (x->op == OP_DISCARD)
			return 0;
		if (x->op == OP_READ || x->op == OP_WRITE)
			return !st_overlap(d->p0, d->p1, x->page, x->page + 1);
		return 1;
	}
	if ((a->op == OP_READ || a->op == OP_WRITE) &&
	    (b->op == OP_READ || b->op == OP_WRITE) && a->page == b->page) {
		if (a->op == OP_READ && b->op == OP_READ)
			return 1;
		if (a->op == OP_WRITE && b->op == OP_WRITE &&
		    a->expect_sig == b->expect_sig &&
		    (a->boff + a->blen <= b->boff || b->boff + b->blen <= a->boff))
			return 1;	/* disjoint bytes of one page */
		return 0;
	}
	return 1;
}

static const char *st_sig_name(int sig)
{
	return sig == SIGBUS ? "SIGBUS" : sig == SIGSEGV ? "SIGSEGV" : sig ? "signal" : "ok";
}

/* Fill @c for a new operation; returns 0, or -1 if none fits now. */
static int st_choose(struct st_run *R, struct st_pending *pd, int *busy_actor)
{
	struct st_cmd *c;
	int kind = st_rnd(R, 1000), proc, m, s, a;
	struct st_map *M;

	memset(pd, 0, sizeof(*pd));
	pd->map = -1;
	pd->sess = -1;

	if (kind < 70) {				/* MAP */
		proc = st_pick_proc(R, -1);
		s = st_rnd(R, R->cfg.nsess);
		if (proc < 0 || R->proc[proc].fd[s] < 0 || st_new_map(R) < 0)
			return -1;
		pd->op = OP_MAP;
		pd->proc = proc;
		pd->sess = s;
		pd->structural = 1;
		pd->p0 = st_rnd(R, ST_CAP_PAGES);
		pd->p1 = pd->p0 + 1 + st_rnd(R, ST_MAP_MAX);
		if (pd->p1 > ST_CAP_PAGES)
			pd->p1 = ST_CAP_PAGES;
		pd->expect_sig = st_rnd(R, 8) ? PROT_READ | PROT_WRITE : PROT_READ;
	} else if (kind < 110) {			/* UNMAP part */
		m = st_pick_map(R);
		if (m < 0)
			return -1;
		M = &R->map[m];
		pd->op = OP_UNMAP;
		pd->proc = M->proc;
		pd->map = m;
		pd->sess = M->sess;
		pd->structural = 1;
		switch (st_rnd(R, 4)) {
		case 0:
			pd->p0 = 0;
			pd->p1 = M->npages;
			break;
		case 1:
			pd->p0 = 0;
			pd->p1 = 1 + st_rnd(R, M->npages);
			break;
		case 2:
			pd->p0 = st_rnd(R, M->npages);
			pd->p1 = M->npages;
			break;
		default:
			pd->p0 = st_rnd(R, M->npages);
			pd->p1 = pd->p0 + 1 + st_rnd(R, M->npages - pd->p0);
		}
	} else if (kind < 470) {			/* READ */
		m = st_pick_map(R);
		if (m < 0)
			return -1;
		M = &R->map[m];
		pd->op = OP_READ;
		pd->proc = M->proc;
		pd->map = m;
		pd->sess = M->sess;
		pd->page = M->pgoff + st_rnd(R, M->npages);
		pd->expect_sig = st_rnd(R, 10) == 0 ? 1 + st_rnd(R, R->cfg.fs_odirect ? 2 : 1) : 0;
	} else if (kind < 800) {			/* WRITE */
		m = st_pick_map(R);
		if (m < 0)
			return -1;
		M = &R->map[m];
		pd->op = OP_WRITE;
		pd->proc = M->proc;
		pd->map = m;
		pd->sess = M->sess;
		pd->page = M->pgoff + st_rnd(R, M->npages);
		pd->expect_sig = st_rnd(R, 12) == 0 ? 1 + st_rnd(R, R->cfg.fs_odirect ? 2 : 1) : 0;
		if (R->cfg.inject)
			pd->expect_sig = 0;	/* a failed GUP write may land in part */
		if (pd->expect_sig == 2) {
			pd->boff = 0;
			pd->blen = PG;
		} else {
			pd->boff = st_rnd(R, PG);
			pd->blen = 1 + st_rnd(R, st_rnd(R, 4) ? 64 : PG - pd->boff);
			if (pd->boff + pd->blen > PG)
				pd->blen = PG - pd->boff;
		}
	} else if (kind < 815) {			/* FORK */
		proc = st_pick_proc(R, -1);
		if (proc < 0 || st_nprocs(R) >= R->cfg.max_procs)
			return -1;
		pd->op = OP_FORK;
		pd->proc = proc;
		pd->structural = 0;	/* races faults of its other threads */
	} else if (kind < 827) {			/* EXIT */
		proc = st_pick_proc(R, -1);
		if (proc <= 0 || R->proc[proc].outsider || proc == R->actor_proc[R->fresh_actor])
			return -1;
		pd->op = OP_EXIT;
		pd->proc = proc;
		pd->structural = 1;
	} else if (kind < 842) {			/* SEND fd */
		int to;

		s = st_rnd(R, R->cfg.nsess);
		proc = st_pick_proc(R, s);
		to = st_pick_proc(R, -1);
		if (proc < 0 || to < 0 || to == proc || R->proc[to].fd[s] >= 0)
			return -1;
		pd->op = OP_SEND;
		pd->proc = proc;
		pd->sess = s;
		pd->p0 = to;
		pd->structural = 1;
	} else if (kind < 850) {			/* CLOSE fd */
		s = st_rnd(R, R->cfg.nsess);
		proc = st_pick_proc(R, s);
		if (proc <= 0)
			return -1;
		pd->op = OP_CLOSE;
		pd->proc = proc;
		pd->sess = s;
		pd->structural = 1;
	} else if (kind < 868) {			/* DISCARD */
		s = st_rnd(R, R->cfg.nsess);
		proc = st_pick_proc(R, s);
		if (proc < 0)
			return -1;
		pd->op = OP_DISCARD;
		pd->proc = proc;
		pd->sess = s;
		if (st_rnd(R, 4) == 0) {
			pd->p0 = 0;
			pd->p1 = ST_CAP_PAGES;
			pd->expect_sig = 1;	/* RANGE_ALL */
		} else {
			pd->p0 = st_rnd(R, ST_CAP_PAGES);
			pd->p1 = pd->p0 + 1 + st_rnd(R, 8);
			if (pd->p1 > ST_CAP_PAGES)
				pd->p1 = ST_CAP_PAGES;
		}
	} else if (kind < 900) {			/* DRAIN */
		s = st_rnd(R, R->cfg.nsess);
		proc = st_pick_proc(R, s);
		if (proc < 0)
			return -1;
		pd->op = OP_DRAIN;
		pd->proc = proc;
		pd->sess = s;
		pd->expect_sig = st_rnd(R, 6) == 0 ? 1 : st_rnd(R, 6) == 0 ? 2 : 0;
	} else if (kind < 915) {			/* MREMAP */
		m = st_pick_map(R);
		if (m < 0)
			return -1;
		M = &R->map[m];
		pd->op = OP_MREMAP;
		pd->proc = M->proc;
		pd->map = m;
		pd->sess = M->sess;
		pd->structural = 1;
		pd->expect_sig = st_rnd(R, 10);	/* 0-5 move, 6 congruent move, 7-8 shrink, 9 grow */
		if (pd->expect_sig >= 7 && pd->expect_sig <= 8 && M->npages < 2)
			pd->expect_sig = 0;
	} else if (kind < 935) {			/* MADVISE */
		m = st_pick_map(R);
		if (m < 0)
			return -1;
		M = &R->map[m];
		pd->op = OP_MADV;
		pd->proc = M->proc;
		pd->map = m;
		pd->sess = M->sess;
		pd->p0 = st_rnd(R, M->npages);
		pd->p1 = pd->p0 + 1 + st_rnd(R, M->npages - pd->p0);
		pd->expect_sig = st_rnd(R, 6);
		if (pd->expect_sig == 5) {
			/* Changes vm_flags: on part of it, it would split the VMA. */
			pd->p0 = 0;
			pd->p1 = M->npages;
		}
	} else {					/* outsider */
		uint64_t off, len;

		pd->proc = R->actor_proc[R->outsider_actor];
		kind = st_rnd(R, 100);
		if (kind < 50) {
			pd->op = OP_OWRITE;
			off = st_rnd(R, PGS(ST_CAP_PAGES));
			len = 1 + st_rnd(R, st_rnd(R, 2) ? 100 : 2 * PG);
			if (off + len > PGS(ST_CAP_PAGES))
				len = PGS(ST_CAP_PAGES) - off;
		} else if (kind < 70) {
			if (!R->cfg.fs_odirect)
				return -1;
			pd->op = OP_ODIRECT;
			off = PGS(st_rnd(R, ST_CAP_PAGES));
			len = PG * (1 + st_rnd(R, 2));
			if (off + len > PGS(ST_CAP_PAGES))
				len = PGS(ST_CAP_PAGES) - off;
		} else if (kind < 85) {
			pd->op = OP_OTRUNC;
			/* Mostly within the cap, biased towards larger sizes. */
			off = st_rnd(R, 3) ? PGS(ST_CAP_PAGES / 2) +
				st_rnd(R, PGS(ST_CAP_PAGES / 2) + 1) :
				st_rnd(R, PGS(ST_CAP_PAGES) + 1);
			if (st_rnd(R, 2))
				off &= ~(PG - 1);
			len = 0;
		} else {
			if (!R->size)
				return -1;
			pd->op = OP_OPUNCH;
			off = st_rnd(R, R->size);
			len = 1 + st_rnd(R, 3 * PG);
		}
		pd->p0 = off / PG;
		pd->p1 = len ? (off + len + PG - 1) / PG : ST_CAP_PAGES;
		pd->boff = 0;
		pd->page = off;
		pd->blen = len;
		pd->size_change = pd->op == OP_OTRUNC ||
			((pd->op == OP_OWRITE || pd->op == OP_ODIRECT) && off + len > R->size);
	}

	a = st_pick_actor(R, pd->proc);
	if (busy_actor[a])
		return -1;
	pd->actor = a;
	c = &st_sh->slot[a].c;
	(void)c;
	return 0;
}

/* Issue @pd on its actor (the model is updated after the batch). */
static void st_issue(struct st_run *R, struct st_pending *pd, int *newactor)
{
	struct st_cmd *c = st_cmd(pd->actor);
	struct st_proc *P = &R->proc[pd->proc];
	struct st_map *M = pd->map >= 0 ? &R->map[pd->map] : NULL;
	uint64_t p;

	c->op = pd->op;
	switch (pd->op) {
	case OP_MAP:
		c->fd = P->fd[pd->sess];
		c->off = PGS(pd->p0);
		c->len = PGS(pd->p1 - pd->p0);
		c->prot = pd->expect_sig;
		snprintf(pd->desc, sizeof(pd->desc), "map s%d pages [%llu,%llu) %s",
			 pd->sess, (unsigned long long)pd->p0, (unsigned long long)pd->p1,
			 c->prot & PROT_WRITE ? "rw" : "ro");
		break;
	case OP_UNMAP:
		c->addr = M->addr + PGS(pd->p0);
		c->len = PGS(pd->p1 - pd->p0);
		snprintf(pd->desc, sizeof(pd->desc), "unmap m%d [%llu,%llu) of %llu pages at file page %llu",
			 pd->map, (unsigned long long)pd->p0, (unsigned long long)pd->p1,
			 (unsigned long long)M->npages, (unsigned long long)M->pgoff);
		break;
	case OP_READ:
		c->addr = M->addr + PGS(pd->page - M->pgoff);
		c->mode = pd->expect_sig;
		snprintf(pd->desc, sizeof(pd->desc), "read s%d page %llu via m%d mode %d",
			 pd->sess, (unsigned long long)pd->page, pd->map, c->mode);
		break;
	case OP_WRITE:
		c->addr = M->addr + PGS(pd->page - M->pgoff);
		c->mode = pd->expect_sig;
		c->boff = pd->boff;
		c->blen = pd->blen;
		c->seed = cm_rand(&R->rng);
		pd->p0 = c->seed;
		snprintf(pd->desc, sizeof(pd->desc), "write s%d page %llu [%u,+%u) via m%d mode %d seed %llx",
			 pd->sess, (unsigned long long)pd->page, pd->boff, pd->blen, pd->map,
			 c->mode, (unsigned long long)c->seed);
		break;
	case OP_FORK:
		*newactor = st_new_actor(R, -2);
		c->peer = *newactor;
		snprintf(pd->desc, sizeof(pd->desc), "fork proc %d -> actor %d", pd->proc, *newactor);
		break;
	case OP_EXIT:
		snprintf(pd->desc, sizeof(pd->desc), "exit proc %d (pid %d)", pd->proc, P->pid);
		break;
	case OP_SEND:
		c->fd = P->fd[pd->sess];
		c->peer = R->proc[pd->p0].actors[0];
		snprintf(pd->desc, sizeof(pd->desc), "send s%d fd from proc %d to proc %d",
			 pd->sess, pd->proc, (int)pd->p0);
		break;
	case OP_CLOSE:
		c->fd = P->fd[pd->sess];
		snprintf(pd->desc, sizeof(pd->desc), "close s%d fd in proc %d", pd->sess, pd->proc);
		break;
	case OP_DISCARD:
		c->fd = P->fd[pd->sess];
		c->mode = pd->expect_sig;
		c->off = PGS(pd->p0);
		c->flen = PGS(pd->p1 - pd->p0);
		snprintf(pd->desc, sizeof(pd->desc), "discard s%d %s[%llu,%llu)", pd->sess,
			 c->mode ? "all " : "", (unsigned long long)pd->p0,
			 (unsigned long long)pd->p1);
		break;
	case OP_DRAIN:
		c->fd = P->fd[pd->sess];
		c->mode = pd->expect_sig;
		c->sess_id = R->s[pd->sess].id;
		snprintf(c->path, sizeof(c->path), "%s/fdlog.%d.%d", R->cfg.dir, pd->sess,
			 R->s[pd->sess].nfdlogs++);
		snprintf(pd->desc, sizeof(pd->desc), "drain s%d %s", pd->sess,
			 c->mode == 1 ? "DRAIN_FD" : c->mode == 2 ? "netlink" : "bound log");
		break;
	case OP_MREMAP:
		c->addr = M->addr;
		c->len = PGS(M->npages);
		c->off = PGS(M->pgoff);
		if (pd->expect_sig <= 6) {
			c->mode = 0;
			c->flen = pd->expect_sig == 6;	/* congruent target */
			c->seed = cm_rand(&R->rng);
		} else if (pd->expect_sig <= 8) {
			c->mode = 1;
			c->flen = PGS(1 + st_rnd(R, M->npages - 1));
		} else {
			c->mode = 2;
			c->flen = c->len + PG;
		}
		snprintf(pd->desc, sizeof(pd->desc), "mremap m%d (%llu pages) %s", pd->map,
			 (unsigned long long)M->npages,
			 c->mode == 0 ? (c->flen ? "move congruent" : "move") :
			 c->mode == 1 ? "shrink" : "grow");
		break;
	case OP_MADV:
		c->addr = M->addr + PGS(pd->p0);
		c->len = PGS(pd->p1 - pd->p0);
		c->mode = pd->expect_sig;
		snprintf(pd->desc, sizeof(pd->desc), "madvise m%d [%llu,%llu) adv %d", pd->map,
			 (unsigned long long)pd->p0, (unsigned long long)pd->p1, c->mode);
		break;
	case OP_OWRITE:
	case OP_ODIRECT:
	case OP_OTRUNC:
	case OP_OPUNCH:
		c->off = pd->page;
		c->flen = pd->blen;
		c->seed = cm_rand(&R->rng);
		pd->p0 = c->seed;
		snprintf(pd->desc, sizeof(pd->desc), "%s off %llu len %llu (size %llu)",
			 st_op_name[pd->op], (unsigned long long)c->off,
			 (unsigned long long)c->flen, (unsigned long long)R->size);
		break;
	}
	(void)p;
	st_trace(R, "b%ld a%d: %s", R->st.batches, pd->actor, pd->desc);
	st_post(R, pd->actor);
}

static void st_model_cow(struct st_run *R, int s, uint64_t p)
{
	struct st_sess *S = &R->s[s];

	S->priv[p] = malloc(PG);
	memcpy(S->priv[p], R->file + p * PG, PG);
	free(S->logimg[p]);
	S->logimg[p] = malloc(PG);
	memcpy(S->logimg[p], S->priv[p], PG);
	S->cows++;
	R->st.cows++;
}

static void st_drop_priv(struct st_run *R, int s, uint64_t p)
{
	struct st_sess *S = &R->s[s];

	free(S->priv[p]);
	S->priv[p] = NULL;
	free(S->logimg[p]);
	S->logimg[p] = NULL;
	S->und[p] = 0;
}

/*
 * An munmap the model itself needs (a tail or a child's copy it has no slot
 * to track): made with injection paused, so that it cannot fail.
 */
static int st_model_unmap(struct st_run *R, int actor, uint64_t addr, uint64_t len)
{
	struct st_cmd *c;
	int ret = 0;

	if (R->cfg.inject_off)
		R->cfg.inject_off(R->cfg.inject_arg);
	c = st_cmd(actor);
	c->op = OP_UNMAP;
	c->addr = addr;
	c->len = len;
	if (!st_run1(R, actor))
		ret = -1;	/* the actor is gone; st_run1() said why */
	else if (c->err)
		st_fail(R, "model's own munmap failed: %s", strerror(c->err));
	if (R->cfg.inject_on)
		R->cfg.inject_on(R->cfg.inject_arg);
	return ret;
}

/* An mmap/munmap/mremap failed under fault injection: drop the mapping. */
static void st_cleanup_map(struct st_run *R, int m, uint64_t extra_addr, uint64_t extra_len)
{
	struct st_map *M = &R->map[m];
	int a = R->proc[M->proc].actors[0];

	if (st_model_unmap(R, a, M->addr, PGS(M->npages)))
		return;
	if (extra_len)
		st_model_unmap(R, a, extra_addr, extra_len);
	M->alive = 0;
	R->st.cleanups++;
}

/*
 * The signal a READ or WRITE got (0: none), or -1 for an outcome no access
 * gives.  A plain access (mode 0) gets the signal itself.  Where a plain
 * access would get SIGBUS or SIGSEGV, reading or writing /proc/self/mem
 * (mode 1) fails with EIO (mem_rw(): access_remote_vm() copied nothing,
 * whatever get_user_pages() said), and an O_DIRECT transfer (mode 2) with
 * EFAULT (get_user_pages() on VM_FAULT_SIGBUS or a read-only VMA), on 6.1
 * and 6.12 alike; either errno stands for the expected signal (@want), or
 * for SIGBUS where none was expected.  A failed step around the access
 * (opening /proc/self/mem, the scratch file's buffered write or read back)
 * is never a signal.
 */
static int st_access_sig(const struct st_cmd *c, int want)
{
	if (c->mode == 0 || (!c->err && !c->sig))
		return c->sig;
	if (c->r3 || c->sig)
		return -1;
	if (c->err == (c->mode == 1 ? EIO : EFAULT))
		return want ? want : SIGBUS;
	return -1;
}

/*
 * Did a READ or WRITE end the way an allocation made to fail ends it?
 * Plain access: SIGBUS (filemap_fault() could not read the page; a failed
 * copy is VM_FAULT_OOM, retried).  /proc/self/mem: EIO (get_user_pages()
 * failed: ENOMEM or EFAULT, lost in access_remote_vm()) or ENOMEM
 * (mem_rw()'s bounce page, the open), or ENOENT (the open).  O_DIRECT: ENOMEM (VM_FAULT_OOM,
 * the dio's own allocations), and for a read of the mapping EFAULT (the
 * backing page could not be read).  The scratch file's buffered write,
 * fsync and read back: ENOMEM, EIO.
 */
static int st_access_injected(const struct st_cmd *c, int write)
{
	if (c->mode == 0)
		return c->sig == SIGBUS && !c->err;
	if (c->sig)
		return 0;
	/*
	 * Opening /proc/self/mem: ENOENT when proc could not allocate the
	 * inode of a /proc/PID entry (proc_pid_instantiate()).
	 */
	if (c->r3 && c->mode == 1 && c->err == ENOENT)
		return 1;
	if (c->r3 || c->mode == 1)
		return c->err == ENOMEM || c->err == EIO;
	return c->err == ENOMEM || (!write && c->err == EFAULT);
}

/* An errno the kernel may give when an allocation was made to fail. */
static int st_injected(struct st_run *R, int err)
{
	if (!R->cfg.inject)
		return 0;
	/* ENFILE: socket() when sock_alloc() fails (net/socket.c). */
	if (err == ENOMEM || err == EAGAIN || err == EINTR || err == ENOBUFS ||
	    err == EIO || err == ETIMEDOUT || err == ENFILE) {
		R->st.enomem++;
		return 1;
	}
	return 0;
}

/* Collect @pd's result and update the model. */
static void st_complete(struct st_run *R, struct st_pending *pd, int newactor,
			int drains_racing)
{
	struct st_cmd *c = &st_sh->slot[pd->actor].c;
	struct st_proc *P = &R->proc[pd->proc];
	struct st_map *M = pd->map >= 0 ? &R->map[pd->map] : NULL;
	int s = pd->sess, i;
	uint64_t p;

	R->st.ops++;
	switch (pd->op) {
	case OP_MAP: {
		int m;

		R->st.maps++;
		if (c->err) {
			if (!st_injected(R, c->err))
				st_fail(R, "%s: %s", pd->desc, strerror(c->err));
			R->st.failed_ops++;
			break;
		}
		if ((((c->raddr >> 12) - pd->p0) & 511) == 0)
			st_fail(R, "%s: mmap chose a PMD-congruent address %#llx", pd->desc,
				(unsigned long long)c->raddr);
		m = st_new_map(R);
		if (m < 0) {
			/* Two maps in one batch took the last slot: drop this one. */
			st_model_unmap(R, pd->actor, c->raddr, PGS(pd->p1 - pd->p0));
			break;
		}
		M = &R->map[m];
		M->alive = 1;
		M->proc = pd->proc;
		M->sess = s;
		M->pgoff = pd->p0;
		M->npages = pd->p1 - pd->p0;
		M->addr = c->raddr;
		M->prot = c->prot;
		st_trace(R, "  -> m%d at %#llx", m, (unsigned long long)c->raddr);
		break;
	}
	case OP_UNMAP:
		R->st.unmaps++;
		if (c->err) {
			if (!st_injected(R, c->err))
				st_fail(R, "%s: %s", pd->desc, strerror(c->err));
			R->st.failed_ops++;
			st_cleanup_map(R, pd->map, 0, 0);
			break;
		}
		if (pd->p0 == 0 && pd->p1 == M->npages) {
			M->alive = 0;
		} else if (pd->p0 == 0) {
			M->addr += PGS(pd->p1);
			M->pgoff += pd->p1;
			M->npages -= pd->p1;
		} else if (pd->p1 == M->npages) {
			M->npages = pd->p0;
		} else {
			int m2 = st_new_map(R);

			if (m2 < 0) {
				/* No room to track the tail: unmap it too. */
				st_model_unmap(R, pd->actor, M->addr + PGS(pd->p1),
					       PGS(M->npages - pd->p1));
				M->npages = pd->p0;
				break;
			}
			R->map[m2] = *M;
			R->map[m2].addr = M->addr + PGS(pd->p1);
			R->map[m2].pgoff = M->pgoff + pd->p1;
			R->map[m2].npages = M->npages - pd->p1;
			M->npages = pd->p0;
			st_trace(R, "  -> tail is m%d", m2);
		}
		break;
	case OP_READ: {
		uint8_t exp[PG];
		int want = st_expect(R, s, pd->page, exp);
		int got = st_access_sig(c, want);

		R->st.reads++;
		R->st.rmodes[c->mode]++;
		/*
		 * A read through /proc/self/mem or an O_DIRECT write from the
		 * mapping holds the page (GUP): a drain that finds a private
		 * page held keeps it marked (the holder could store into it),
		 * so the session may count it undrained after the drain.
		 */
		if (c->mode && (drains_racing & (1 << s))) {
			R->s[s].und_unsure = 1;
			R->racing_ok |= 1 << s;
		}
		if (c->mode == 2)
			R->s[s].od_since_drain = 1;
		if (want != got && R->cfg.inject && st_access_injected(c, 0)) {
			/* An allocation failed (reading the backing page, say). */
			R->st.enomem++;
			break;
		}
		if (want != got) {
			st_fail(R, "%s: got %s (errno %d%s), expected %s", pd->desc,
				got < 0 ? "an unexpected errno" : st_sig_name(got),
				c->err, c->r3 ? ", around the access" : "",
				st_sig_name(want));
		} else if (!want && memcmp(exp, c->page, PG)) {
			size_t i2 = 0;

			while (exp[i2] == c->page[i2])
				i2++;
			st_fail(R, "%s: contents differ from the model at byte %zu (got %#x, expected %#x; page hash %llx, expected %llx; size %llu, private %d)",
				pd->desc, i2, c->page[i2], exp[i2],
				(unsigned long long)st_hash(c->page, PG),
				(unsigned long long)st_hash(exp, PG),
				(unsigned long long)R->size, !!R->s[s].priv[pd->page]);
		}
		if (got == SIGBUS)
			R->st.sigbus++;
		break;
	}
	case OP_WRITE: {
		int want, got = c->sig;

		R->st.writes++;
		R->st.wmodes[c->mode]++;
		if (!(M->prot & PROT_WRITE))
			want = SIGSEGV;
		else if (!R->s[s].priv[pd->page] && pd->page >= st_npages_eof(R))
			want = SIGBUS;
		else
			want = 0;
		if (c->mode)
			got = st_access_sig(c, want);	/* EIO/EFAULT stand for the signal */
		if (want == 0 && got && R->cfg.inject && st_access_injected(c, 1)) {
			/*
			 * The kernel copy failed (allocation): the page may or
			 * may not have been copied already.  Resync from INFO:
			 * exact only if nothing else in the batch could have
			 * copied a page of this session.
			 */
			struct cowmap_info in;

			R->st.enomem++;
			if (R->batch_ops != 1) {
				st_fail(R, "%s: failed under injection in a batch of %d operations: the model cannot tell which one copied",
					pd->desc, R->batch_ops);
				break;
			}
			if (!cm_info(R->s[s].fd, &in) && in.cow_faults > R->s[s].cows) {
				st_model_cow(R, s, pd->page);
				R->s[s].und[pd->page] = 1;
			}
			break;
		}
		if (want != got) {
			st_fail(R, "%s: got %s (errno %d%s), expected %s", pd->desc,
				got < 0 ? "an unexpected errno" : st_sig_name(got),
				c->err, c->r3 ? ", around the access" : "",
				st_sig_name(want));
			break;
		}
		if (want == SIGBUS)
			R->st.sigbus++;
		if (want == SIGSEGV)
			R->st.sigsegv++;
		if (want)
			break;
		if (!R->s[s].priv[pd->page])
			st_model_cow(R, s, pd->page);
		{
			uint8_t buf[PG];

			cm_fill(pd->p0, buf, pd->blen);
			memcpy(R->s[s].priv[pd->page] + pd->boff, buf, pd->blen);
		}
		R->s[s].und[pd->page] = 1;
		if (drains_racing & (1 << s)) {
			R->s[s].und_unsure = 1;
			R->racing_ok |= 1 << s;
		}
		if (c->mode == 2)
			R->s[s].od_since_drain = 1;
		break;
	}
	case OP_FORK: {
		int np;

		R->st.forks++;
		if (c->err) {
			R->actor_proc[newactor] = -1;
			/*
			 * The child inherits the injection: any error of its
			 * set-up (socket, bind, open: ENOENT from XFS, ...)
			 * is one.  The child has exited; its copies are gone.
			 */
			if (!R->cfg.inject)
				st_fail(R, "%s: %s", pd->desc, strerror(c->err));
			else
				R->st.enomem++;
			/*
			 * Its copies of the mappings go when it has exited:
			 * wait for that (every process is P0's child).
			 */
			if (c->r1)
				waitpid((pid_t)c->r1, NULL, 0);
			R->st.failed_ops++;
			break;
		}
		np = st_new_proc(R);
		R->proc[np].pid = c->r1;
		R->proc[np].actors[0] = newactor;
		R->proc[np].nactors = 1;
		R->actor_proc[newactor] = np;
		for (i = 0; i < ST_MAX_SESS; i++)
			R->proc[np].fd[i] = P->fd[i];
		for (i = 0; i < ST_MAX_MAPS; i++) {
			int m2;

			if (!R->map[i].alive || R->map[i].proc != pd->proc)
				continue;
			m2 = st_new_map(R);
			if (m2 < 0) {
				/* Out of slots: the child drops the copy. */
				st_model_unmap(R, newactor, R->map[i].addr,
					       PGS(R->map[i].npages));
				continue;
			}
			R->map[m2] = R->map[i];
			R->map[m2].proc = np;
		}
		st_trace(R, "  -> proc %d pid %d", np, R->proc[np].pid);
		break;
	}
	case OP_EXIT:
		R->st.exits++;
		waitpid(P->pid, NULL, 0);
		for (i = 0; i < ST_MAX_MAPS; i++)
			if (R->map[i].alive && R->map[i].proc == pd->proc)
				R->map[i].alive = 0;
		R->actor_proc[pd->actor] = -1;
		P->alive = 0;
		break;
	case OP_SEND: {
		int to = pd->p0, ra = R->proc[to].actors[0];
		struct st_cmd *c2;

		R->st.fdpass++;
		if (c->err) {
			if (!st_injected(R, c->err))
				st_fail(R, "%s: %s", pd->desc, strerror(c->err));
			break;
		}
		c2 = st_cmd(ra);
		c2->op = OP_RECV;
		if (!st_run1(R, ra))
			break;
		if (c2->err) {
			if (!st_injected(R, c2->err))
				st_fail(R, "%s: receive: %s", pd->desc, strerror(c2->err));
			break;
		}
		R->proc[to].fd[s] = c2->ret;
		break;
	}
	case OP_CLOSE:
		if (c->err)
			st_fail(R, "%s: %s", pd->desc, strerror(c->err));
		P->fd[s] = -1;
		break;
	case OP_DISCARD: {
		uint64_t n = 0;

		R->st.discards++;
		if (c->err) {
			st_fail(R, "%s: %s", pd->desc, strerror(c->err));
			break;
		}
		for (p = pd->p0; p < pd->p1; p++) {
			if (R->s[s].priv[p]) {
				st_drop_priv(R, s, p);
				n++;
			}
		}
		if (c->r1 != n)
			st_fail(R, "%s: dropped %llu pages, the model %llu", pd->desc,
				(unsigned long long)c->r1, (unsigned long long)n);
		break;
	}
	case OP_DRAIN:
		R->st.drains++;
		if (c->err && !st_injected(R, c->err)) {
			st_fail(R, "%s: %s", pd->desc, strerror(c->err));
			break;
		}
		if (c->mode == 1) {
			if (!c->err || access(c->path, F_OK) == 0) {
				struct stat sb;

				if (!stat(c->path, &sb) && sb.st_size)
					st_consume_fdlog(R, s, c->path, c->err);
				else
					unlink(c->path);
			}
		} else if (st_consume_log(R, s) > 0 && !c->err) {
			st_fail(R, "%s: the log ends in a torn record after a drain that returned 0",
				pd->desc);
		}
		if (c->err) {
			/*
			 * A drain that failed part way (an injected failure)
			 * has drained the batches before the failure: which
			 * pages are still undrained is known again after the
			 * next drain that succeeds.
			 */
			R->s[s].und_unsure = 1;
			break;
		}
		if (!(R->racing_ok & (1 << s))) {
			/*
			 * No write raced this drain: the logs are complete.
			 * The session may still count a page undrained if an
			 * O_DIRECT transfer used it since the last drain: the
			 * block layer wakes the reader before it releases the
			 * pages (iomap_dio_bio_end_io()), and a drain keeps a
			 * held page marked.  The next drain knows again.
			 */
			for (p = 0; p < ST_CAP_PAGES; p++)
				R->s[s].und[p] = 0;
			R->s[s].und_unsure = R->s[s].od_since_drain;
			R->s[s].od_since_drain = 0;
			st_check_logimg(R, s, pd->desc);
		}
		break;
	case OP_MREMAP:
		R->st.mremaps++;
		if (c->mode == 0) {
			if (c->flen) {	/* congruent: refused, mapping unchanged */
				if (c->err != EINVAL && !(c->err && st_injected(R, c->err))) {
					st_fail(R, "%s: got %s, expected EINVAL", pd->desc,
						c->err ? strerror(c->err) : "success");
					if (!c->err)
						M->addr = c->raddr;
				}
				break;
			}
			if (c->err) {
				if (!st_injected(R, c->err))
					st_fail(R, "%s: %s", pd->desc, strerror(c->err));
				R->st.failed_ops++;
				st_cleanup_map(R, pd->map, 0, 0);
				break;
			}
			if (c->r3) {
				/* The old range stayed mapped: unmap it too. */
				if (!R->cfg.inject)
					st_fail(R, "%s: the old range is still mapped after the move",
						pd->desc);
				st_cleanup_map(R, pd->map, c->raddr, c->len);
				break;
			}
			M->addr = c->raddr;
		} else if (c->mode == 1) {
			if (c->err) {
				if (!st_injected(R, c->err))
					st_fail(R, "%s: %s", pd->desc, strerror(c->err));
				st_cleanup_map(R, pd->map, 0, 0);
				break;
			}
			M->npages = c->flen / PG;
		} else {
			if (c->err != EFAULT && !(c->err && st_injected(R, c->err)))
				st_fail(R, "%s: got %s, expected EFAULT (VM_DONTEXPAND)",
					pd->desc, c->err ? strerror(c->err) : "success");
			if (!c->err) {
				M->addr = c->raddr;
				M->npages++;
			}
		}
		break;
	case OP_MADV:
		R->st.madvs++;
		if (c->mode == 4) {
			/*
			 * MADV_REMOVE would punch the backing file: it fails
			 * with EBADF, the VMA's file being the session's
			 * read-only clone (as in cowmap_mm_test.c
			 * madv_remove_does_not_punch), read-only mapping or not
			 * (madvise_remove(): VM_SHARED | VM_MAYWRITE).
			 */
			if (c->err != EBADF)
				st_fail(R, "%s: MADV_REMOVE: got %s, expected EBADF",
					pd->desc, c->err ? strerror(c->err) : "success");
		} else if (c->err && !st_injected(R, c->err)) {
			st_fail(R, "%s: %s", pd->desc, strerror(c->err));
		}
		break;
	case OP_OWRITE:
	case OP_ODIRECT: {
		uint64_t off = pd->page, len = pd->blen;
		uint8_t buf[2 * PG];

		if (pd->op == OP_OWRITE)
			R->st.owrites++;
		else
			R->st.odirects++;
		if (c->err) {
			st_fail(R, "%s: %s", pd->desc, strerror(c->err));
			break;
		}
		cm_fill(pd->p0, buf, len);
		memcpy(R->file + off, buf, len);
		if (off + len > R->size)
			R->size = off + len;
		break;
	}
	case OP_OTRUNC:
		R->st.truncs++;
		if (c->err) {
			st_fail(R, "%s: %s", pd->desc, strerror(c->err));
			break;
		}
		if (pd->page < R->size)
			memset(R->file + pd->page, 0, R->size - pd->page);
		R->size = pd->page;
		break;
	case OP_OPUNCH: {
		uint64_t off = pd->page, end = pd->page + pd->blen;

		R->st.punches++;
		if (c->err) {
			if (c->err != EOPNOTSUPP)
				st_fail(R, "%s: %s", pd->desc, strerror(c->err));
			break;
		}
		if (end > R->size)
			end = R->size;
		if (off < end)
			memset(R->file + off, 0, end - off);
		break;
	}
	}
}

/* Read every mapped page of every process and compare with the model. */
static void st_check_all(struct st_run *R)
{
	int i;

	for (i = 0; i < ST_MAX_MAPS && !R->failed; i++) {
		struct st_map *M = &R->map[i];
		uint64_t k;

		if (!M->alive)
			continue;
		for (k = 0; k < M->npages && !R->failed; k++) {
			struct st_pending pd = {
				.op = OP_READ, .proc = M->proc, .map = i, .sess = M->sess,
				.page = M->pgoff + k,
			};

			pd.actor = R->proc[M->proc].actors[0];
			snprintf(pd.desc, sizeof(pd.desc), "check s%d page %llu via m%d",
				 M->sess, (unsigned long long)pd.page, i);
			{
				struct st_cmd *c = st_cmd(pd.actor);

				c->op = OP_READ;
				c->addr = M->addr + PGS(k);
				if (!st_run1(R, pd.actor))
					return;
			}
			st_complete(R, &pd, -1, 0);
			R->st.ops--;
		}
	}
	R->st.checks++;
}

static double st_elapsed(struct st_run *R)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - R->t0.tv_sec) + (t.tv_nsec - R->t0.tv_nsec) / 1e9;
}

static void st_quiet_checks(struct st_run *R)
{
	int s;

	for (s = 0; s < R->cfg.nsess && !R->failed; s++) {
		st_check_diff(R, s);
		if (!R->failed)
			st_check_info(R, s);
		if (!R->failed)
			st_check_events(R, s);
	}
}

/* ------------------------------------------------------------------------
 * The run
 */

static int st_setup(struct st_run *R)
{
	int i, s, a, fd;
	pid_t pid;
	struct sigaction sa = { 0 };

	clock_gettime(CLOCK_MONOTONIC, &R->t0);
	R->rng = R->cfg.seed ? R->cfg.seed : 1;
	for (a = 0; a < ST_MAX_ACTORS; a++)
		R->actor_proc[a] = -1;
	if (!R->cfg.batch_max)
		R->cfg.batch_max = 3;
	if (!R->cfg.max_procs)
		R->cfg.max_procs = 6;

	st_sh = mmap(NULL, sizeof(*st_sh), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st_sh == MAP_FAILED)
		return -errno;
	memset(st_sh, 0, sizeof(*st_sh));
	for (a = 0; a < ST_MAX_ACTORS; a++) {
		sem_init(&st_sh->slot[a].go, 1, 0);
		sem_init(&st_sh->slot[a].done, 1, 0);
	}
	snprintf(st_sh->dir, sizeof(st_sh->dir), "%s", R->cfg.dir);
	snprintf(st_sh->file, sizeof(st_sh->file), "%s/backing", R->cfg.dir);
	st_sh->p0 = getpid();
	st_sh->inject = R->cfg.inject;
	st_sh->outsider = ST_P0_WORKERS;
	st_sh->run_id = R->cfg.seed ^ ((uint64_t)getpid() << 32) ^ cm_now_ns();
	if (posix_memalign(&st_obuf, PG, 2 * PG))
		return -ENOMEM;

	sa.sa_sigaction = st_sig;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);

	/* The backing file: 48 pages of pattern. */
	R->size = PGS(ST_CAP_PAGES * 3 / 4);
	cm_fill(R->cfg.seed + 7, R->file, R->size);
	fd = cm_create(st_sh->file, R->file, R->size);
	if (fd < 0)
		return -errno;
	close(fd);

	/* P0: the controller and its worker threads. */
	i = st_new_proc(R);
	R->proc[i].pid = getpid();
	if (st_proc_init(0))
		return -errno;
	st_sh->slot[1].sock = st_sh->slot[0].sock;
	st_sh->slot[1].socklen = st_sh->slot[0].socklen;
	for (a = 0; a < ST_P0_WORKERS; a++) {
		R->actor_proc[a] = i;
		R->proc[i].actors[a] = a;
		R->proc[i].nactors++;
		st_sh->slot[a].pid = getpid();
	}

	/* The outsider and a fresh process, forked before any session exists. */
	for (a = ST_P0_WORKERS; a < ST_P0_WORKERS + 2; a++) {
		int np = st_new_proc(R);

		R->actor_proc[a] = np;
		R->proc[np].actors[0] = a;
		R->proc[np].nactors = 1;
		pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0) {
			st_sh->slot[a].pid = getpid();
			if (st_proc_init(a))
				_exit(98);
			if (a == ST_P0_WORKERS) {
				st_ofd = open(st_sh->file, O_RDWR | O_CLOEXEC);
				st_odfd = open(st_sh->file, O_RDWR | O_DIRECT | O_CLOEXEC);
				st_actor_loop(a);
			} else {
				st_actor_loop(a);
			}
			_exit(0);
		}
		R->proc[np].pid = pid;
	}
	R->outsider_actor = ST_P0_WORKERS;
	st_sh->outsider = ST_P0_WORKERS;
	R->fresh_actor = ST_P0_WORKERS + 1;
	R->proc[R->actor_proc[R->outsider_actor]].outsider = 1;

	/* Sessions, each with a bound log; session 0 has a tiny ring. */
	for (s = 0; s < R->cfg.nsess; s++) {
		struct st_sess *S = &R->s[s];
		struct cowmap_bind b;
		int bfd, lfd;

		snprintf(S->log, sizeof(S->log), "%s/sess%d.log", R->cfg.dir, s);
		bfd = open(st_sh->file, O_RDONLY | O_CLOEXEC);
		lfd = open(S->log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		S->fd = cm_open_dev();
		if (bfd < 0 || lfd < 0 || S->fd < 0)
			return -errno;
		S->ring = s == 0 ? COWMAP_RING_MIN : 0;
		i = cm_bind(S->fd, bfd, lfd, COWMAP_BIND_LOG, S->ring, &b);
		close(bfd);
		close(lfd);
		if (i)
			return i;
		S->id = b.id;
		R->proc[0].fd[s] = S->fd;
	}

	/* Start P0's workers last (they inherit nothing of the above). */
	for (a = 0; a < ST_P0_WORKERS; a++)
		if (pthread_create(&R->thr[a], NULL, st_thread_main, (void *)(intptr_t)a))
			return -EAGAIN;
	return 0;
}

/* Stop everything; then the final drains must complete every log. */
static void st_teardown(struct st_run *R)
{
	int i, s, a;
	int sk;
	struct nlu_family f;

	if (R->cfg.inject_off)
		R->cfg.inject_off(R->cfg.inject_arg);
	for (a = 0; a < ST_MAX_ACTORS; a++) {
		if (R->actor_proc[a] < 0)
			continue;
		st_cmd(a)->op = OP_QUIT;
		st_post(R, a);
		st_wait(R, a);
	}
	for (a = 0; a < ST_P0_WORKERS; a++)
		pthread_join(R->thr[a], NULL);
	/* Whoever did not quit (a failed run) is killed: nothing may linger. */
	for (i = 1; i < ST_MAX_PROCS; i++) {
		if (R->proc[i].alive) {
			int tries;

			for (tries = 0; tries < 100; tries++) {
				if (waitpid(R->proc[i].pid, NULL, WNOHANG) != 0)
					break;
				usleep(20000);
			}
			if (tries == 100) {
				fprintf(stderr, "# proc %d (pid %d) did not quit: killed\n", i,
					R->proc[i].pid);
				kill(R->proc[i].pid, SIGKILL);
				waitpid(R->proc[i].pid, NULL, 0);
			}
		}
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	for (i = 0; i < ST_MAX_MAPS; i++)
		if (R->map[i].alive && R->map[i].proc == 0)
			munmap((void *)(uintptr_t)R->map[i].addr, PGS(R->map[i].npages));
	for (s = 0; s < R->cfg.nsess; s++)
		if (R->proc[0].fd[s] >= 0)
			close(R->proc[0].fd[s]);

	/* Wait until the kernel released every session (final drain done). */
	sk = nlu_socket();
	if (sk >= 0 && !nlu_resolve(sk, &f)) {
		for (s = 0; s < R->cfg.nsess; s++) {
			int tries = 0;

			while (nlu_session_exists(sk, &f, R->s[s].id) == 1 && tries++ < 300)
				usleep(50000);
			if (tries > 300 && !R->failed)
				st_fail(R, "session %d (id %llu) still exists 15 s after its last user went away",
					s, (unsigned long long)R->s[s].id);
		}
	}
	if (sk >= 0)
		close(sk);
	for (s = 0; s < R->cfg.nsess && !R->failed; s++) {
		if (st_consume_log(R, s)) {
			st_fail(R, "%s: torn or bad tail after the final drain", R->s[s].log);
			break;
		}
		st_check_logimg(R, s, "final drain on close");
		if (!R->failed) {
			struct stat sb;

			/* Nothing after the last whole record. */
			if (!stat(R->s[s].log, &sb) && (uint64_t)sb.st_size != R->s[s].log_pos)
				st_fail(R, "%s: %llu bytes after the last record", R->s[s].log,
					(unsigned long long)(sb.st_size - R->s[s].log_pos));
		}
	}
	for (s = 0; s < R->cfg.nsess; s++) {
		for (i = 0; i < ST_CAP_PAGES; i++) {
			free(R->s[s].priv[i]);
			free(R->s[s].logimg[i]);
		}
	}
	R->st.kernel_segv = st_sh->kernel_segv;
	munmap(st_sh, sizeof(*st_sh));
	st_sh = NULL;
}

/* Returns 0 if the run matched the model all along. */
static int st_run(struct st_run *R)
{
	long next_check = 50;
	int err;

	/* The model resyncs a failed copy from INFO.cow_faults: see OP_WRITE. */
	if (R->cfg.inject && R->cfg.batch_max != 1) {
		snprintf(R->why, sizeof(R->why),
			 "fault injection needs batch_max = 1, not %d", R->cfg.batch_max);
		R->failed = 1;
		return -1;
	}
	err = st_setup(R);
	if (err) {
		snprintf(R->why, sizeof(R->why), "setup: %s", strerror(-err));
		R->failed = 1;
		return -1;
	}
	if (R->cfg.inject_on)
		R->cfg.inject_on(R->cfg.inject_arg);
	while (!R->failed) {
		struct st_pending pd[ST_BATCH_MAX];
		int busy[ST_MAX_ACTORS] = { 0 };
		int newactor[ST_BATCH_MAX];
		int n = 0, want, tries = 0, i, j, racing = 0;

		if (R->cfg.ops && R->st.ops >= R->cfg.ops)
			break;
		if (R->cfg.seconds && st_elapsed(R) >= R->cfg.seconds)
			break;
		want = 1 + st_rnd(R, R->cfg.batch_max);
		while (n < want && tries++ < 12) {
			if (st_choose(R, &pd[n], busy))
				continue;
			for (j = 0; j < n; j++)
				if (!st_compatible(&pd[j], &pd[n]))
					break;
			if (j < n)
				continue;
			busy[pd[n].actor] = 1;
			n++;
		}
		if (!n)
			continue;
		R->st.batches++;
		R->racing_ok = 0;
		R->batch_ops = n;
		for (i = 0; i < n; i++)
			if (pd[i].op == OP_DRAIN)
				for (j = 0; j < n; j++)
					if (j != i && pd[j].sess == pd[i].sess &&
					    (pd[j].op == OP_WRITE ||
					     (pd[j].op == OP_READ && pd[j].expect_sig)))
						racing |= 1 << pd[i].sess;
		for (i = 0; i < n; i++) {
			newactor[i] = -1;
			st_issue(R, &pd[i], &newactor[i]);
		}
		for (i = 0; i < n; i++)
			st_wait(R, pd[i].actor);
		if (R->failed)
			break;
		/* Model updates: everything but drains first, then the drains. */
		for (i = 0; i < n && !R->failed; i++)
			if (pd[i].op != OP_DRAIN)
				st_complete(R, &pd[i], newactor[i], racing);
		for (i = 0; i < n && !R->failed; i++)
			if (pd[i].op == OP_DRAIN)
				st_complete(R, &pd[i], newactor[i], racing);
		/* VMAs are tracked exactly: check after every batch that changes them. */
		for (i = 0; i < n && !R->failed; i++) {
			if (pd[i].structural || pd[i].op == OP_FORK) {
				for (j = 0; j < R->cfg.nsess && !R->failed; j++) {
					struct cowmap_info in;

					if (!cm_info(R->s[j].fd, &in) &&
					    in.mapped_bytes != st_mapped_bytes(R, j))
						st_fail(R, "after batch %ld: session %d mapped_bytes %llu, model %llu",
							R->st.batches, j,
							(unsigned long long)in.mapped_bytes,
							(unsigned long long)st_mapped_bytes(R, j));
				}
				break;
			}
		}
		if (R->st.ops >= next_check && !R->failed) {
			next_check = R->st.ops + 50 + st_rnd(R, 100);
			if (R->cfg.inject_off)
				R->cfg.inject_off(R->cfg.inject_arg);
			st_quiet_checks(R);
			if (st_rnd(R, 4) == 0)
				st_check_all(R);
			if (R->cfg.inject_on)
				R->cfg.inject_on(R->cfg.inject_arg);
		}
	}
	if (R->cfg.inject_off)
		R->cfg.inject_off(R->cfg.inject_arg);
	if (!R->failed) {
		st_trace(R, "final checks");
		st_check_all(R);
		st_quiet_checks(R);
	}
	st_teardown(R);
	return R->failed ? -1 : 0;
}

static void st_print_stats(struct st_run *R, const char *tag)
{
	struct st_stats *t = &R->st;

	printf("# %s: seed %llu: %ld ops in %ld batches, %.1f s: %ld reads, %ld writes, %ld COWs, %ld SIGBUS, %ld SIGSEGV, %ld drains (%ld records), %ld discards, %ld forks, %ld exits, %ld fd passes, %ld maps, %ld unmaps, %ld mremaps, %ld madvise, outsider %ld writes %ld O_DIRECT %ld truncates %ld punches; %ld checks, %ld injected-failure outcomes, %ld cleanups; %ld mismatches\n",
	       tag, (unsigned long long)R->cfg.seed, t->ops, t->batches, st_elapsed(R),
	       t->reads, t->writes, t->cows, t->sigbus, t->sigsegv, t->drains,
	       t->records, t->discards, t->forks, t->exits, t->fdpass, t->maps,
	       t->unmaps, t->mremaps, t->madvs, t->owrites, t->odirects, t->truncs,
	       t->punches, t->checks, t->enomem, t->cleanups, t->mismatches);
	printf("# %s: reads by mode (plain, /proc/self/mem, O_DIRECT): %ld %ld %ld; writes: %ld %ld %ld\n",
	       tag, t->rmodes[0], t->rmodes[1], t->rmodes[2], t->wmodes[0],
	       t->wmodes[1], t->wmodes[2]);
	fflush(stdout);
}

/*
 * Did the run do enough to mean something?  At least @min_ops operations
 * (all of cfg.ops if fewer), and every kind of operation, READ and WRITE
 * by every access mode (O_DIRECT where the filesystem has it; WRITE by
 * plain stores only under fault injection), once the run is long enough
 * that missing it is improbable: each kind's rate (per 10000 operations,
 * under the lowest seen in 17 bounded runs of 2000 operations on 6.1 and
 * 6.12) must predict 12 or more (a Poisson count of mean 12 is 0 with
 * probability 6e-6).  A default run of 2000 thus needs all but forks,
 * exits, fd passes and truncates, which longer runs need too.  Returns the number of shortfalls, listed in @why.
 */
static inline int st_coverage(struct st_run *R, long min_ops, char *why, size_t len)
{
	const struct st_stats *t = &R->st;
	const struct {
		const char *name;
		long n;
		long per_10k;
		int needed;
	} k[] = {
		{ "reads", t->reads, 4000, 1 }, { "writes", t->writes, 3000, 1 },
		{ "COWs", t->cows, 600, 1 }, { "drains", t->drains, 250, 1 },
		{ "drained records", t->records, 1400, 1 },
		{ "discards", t->discards, 140, 1 }, { "forks", t->forks, 50, 1 },
		{ "exits", t->exits, 35, 1 }, { "fd passes", t->fdpass, 25, 1 },
		{ "maps", t->maps, 300, 1 }, { "unmaps", t->unmaps, 280, 1 },
		{ "mremaps", t->mremaps, 80, 1 }, { "madvises", t->madvs, 160, 1 },
		{ "outsider writes", t->owrites, 270, 1 },
		{ "outsider O_DIRECT writes", t->odirects, 90, R->cfg.fs_odirect },
		{ "truncates", t->truncs, 30, 1 }, { "punches", t->punches, 90, 1 },
		{ "plain reads", t->rmodes[0], 4000, 1 },
		{ "/proc/self/mem reads", t->rmodes[1], 120, 1 },
		{ "O_DIRECT reads", t->rmodes[2], 110, R->cfg.fs_odirect },
		{ "plain writes", t->wmodes[0], 2700, 1 },
		{ "/proc/self/mem writes", t->wmodes[1], 100, !R->cfg.inject },
		{ "O_DIRECT writes", t->wmodes[2], 90,
		  R->cfg.fs_odirect && !R->cfg.inject },
	};
	size_t used = 0;
	int short_of = 0;

	if (R->cfg.ops && R->cfg.ops < min_ops)
		min_ops = R->cfg.ops;
	why[0] = 0;
	if (t->ops < min_ops) {
		used += snprintf(why + used, len - used, " %ld operations (at least %ld wanted);",
				 t->ops, min_ops);
		short_of++;
	}
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		if (!k[i].needed || k[i].n || t->ops * k[i].per_10k < 12 * 10000)
			continue;
		if (used < len)
			used += snprintf(why + used, len - used, " no %s;", k[i].name);
		short_of++;
	}
	return short_of;
}

/* Seed from COWMAP_SEED, else the clock. */
static uint64_t st_seed(void)
{
	const char *e = getenv("COWMAP_SEED");

	if (e && *e)
		return strtoull(e, NULL, 0);
	return cm_now_ns() % 1000000007ULL;
}

static long st_env_long(const char *name, long def)
{
	const char *e = getenv(name);

	return e && *e ? strtol(e, NULL, 0) : def;
}

#endif /* COWMAP_STRESS_H */
