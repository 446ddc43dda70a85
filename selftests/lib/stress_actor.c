// SPDX-License-Identifier: GPL-2.0
/*
 * The stress engine's actors: P0's worker threads and the processes forked
 * from them (stress.c says who they are).  Each waits on its slot's "go"
 * semaphore, runs the command the controller put in the slot with the
 * operation's handler (st_ops[].exec, below) and posts "done".
 */
#include "stress_int.h"

struct st_shared *st_sh;
static __thread sigjmp_buf st_jb;
static __thread volatile int st_in_access;
static __thread int st_self = -1;
static int st_sock = -1;			/* this process's SCM socket */
int st_ofd = -1, st_odfd = -1;			/* outsider: buffered, O_DIRECT */
static int st_sfd = -1, st_sdfd = -1;		/* per-process scratch: buffered, O_DIRECT */
void *st_obuf;					/* aligned buffer for O_DIRECT */

void st_sig(int sig, siginfo_t *si, void *uc)
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
int st_proc_init(int actor)
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

/* ------------------------------------------------------------------------
 * Operations as an actor runs them (st_ops[].exec): each sets *r (0 or
 * -errno) and *sig (the signal an access got); the results go back in @c.
 */

int st_exec_map(int self, struct st_cmd *c, long *r, int *sig)
{
	void *p = mmap(NULL, c->len, c->prot, MAP_SHARED, c->fd, c->off);

	if (p == MAP_FAILED)
		*r = -errno;
	else
		c->raddr = (uintptr_t)p;
	return 0;
}

int st_exec_unmap(int self, struct st_cmd *c, long *r, int *sig)
{
	*r = munmap(ST_ADDR(c), c->len) ? -errno : 0;
	return 0;
}

int st_exec_probe(int self, struct st_cmd *c, long *r, int *sig)
{
	uint8_t *a = ST_ADDR(c);
	uint64_t i, mapped = 0;

	/* msync fails with ENOMEM on unmapped pages. */
	for (i = 0; i < c->len; i += PG)
		if (!msync(a + i, PG, MS_ASYNC))
			mapped++;
	c->r1 = mapped;
	return 0;
}

int st_exec_read(int self, struct st_cmd *c, long *r, int *sig)
{
	uint8_t *a = ST_ADDR(c);

	if (c->mode == 0) {
		*sig = st_copy(c->page, a, PG);
	} else if (c->mode == 1) {
		int mfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);

		if (mfd < 0) {
			*r = -errno;
			c->r3 = 1;	/* not the access */
			return 0;
		}
		*r = pread(mfd, c->page, PG, (off_t)c->addr);
		*r = *r == PG ? 0 : *r < 0 ? -errno : -EIO;
		close(mfd);
	} else {
		/* O_DIRECT write from the mapping into the scratch file. */
		off_t so = (off_t)self * PG;

		*r = pwrite(st_sdfd, a, PG, so);
		*r = *r == PG ? 0 : *r < 0 ? -errno : -EIO;
		if (!*r && pread(st_sfd, c->page, PG, so) != PG) {
			*r = -EIO;
			c->r3 = 1;
		}
	}
	return 0;
}

int st_exec_write(int self, struct st_cmd *c, long *r, int *sig)
{
	static __thread uint8_t buf[PG] __attribute__((aligned(PG)));
	uint8_t *a = ST_ADDR(c);

	cm_fill(c->seed, buf, c->blen);
	if (c->mode == 0) {
		*sig = st_copy(a + c->boff, buf, c->blen);
	} else if (c->mode == 1) {
		int mfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);

		if (mfd < 0) {
			*r = -errno;
			c->r3 = 1;
			return 0;
		}
		*r = pwrite(mfd, buf, c->blen, (off_t)(c->addr + c->boff));
		*r = *r == c->blen ? 0 : *r < 0 ? -errno : -EIO;
		close(mfd);
	} else {
		/* O_DIRECT read of a whole page into the mapping. */
		off_t so = (off_t)self * PG;

		if (pwrite(st_sfd, buf, PG, so) != PG || fsync(st_sfd)) {
			*r = -errno;
			c->r3 = 1;
			return 0;
		}
		*r = pread(st_sdfd, a, PG, so);
		*r = *r == PG ? 0 : *r < 0 ? -errno : -EIO;
	}
	return 0;
}

/* The new process of a FORK: set up, answer for the parent, serve. */
static void st_forked(int self, struct st_cmd *c)
{
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
}

int st_exec_fork(int self, struct st_cmd *c, long *r, int *sig)
{
	pid_t pid;

	/* Every process is a child of P0 (CLONE_PARENT), so P0 reaps all. */
	if (getpid() == st_sh->p0)
		pid = fork();
	else
		pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid < 0) {
		*r = -errno;
		return 0;
	}
	if (pid == 0)
		st_forked(self, c);
	/*
	 * The child posts our "done" once it is ready; the controller may
	 * already be reusing the slot: hands off.
	 */
	return 1;
}

int st_exec_exit(int self, struct st_cmd *c, long *r, int *sig)
{
	sem_post(&st_sh->slot[self].done);
	_exit(0);
}

int st_exec_send(int self, struct st_cmd *c, long *r, int *sig)
{
	*r = st_send_fd(c->peer, c->fd);
	return 0;
}

int st_exec_recv(int self, struct st_cmd *c, long *r, int *sig)
{
	*r = st_recv_fd();
	return 0;
}

int st_exec_close(int self, struct st_cmd *c, long *r, int *sig)
{
	*r = close(c->fd) ? -errno : 0;
	return 0;
}

int st_exec_discard(int self, struct st_cmd *c, long *r, int *sig)
{
	struct cowmap_range rg = { .offset = c->off, .length = c->flen };

	if (c->mode)
		rg.flags = COWMAP_RANGE_ALL;
	*r = cm_ioctl(c->fd, COWMAP_IOC_DISCARD, &rg);
	c->r1 = rg.pages;
	return 0;
}

int st_exec_drain(int self, struct st_cmd *c, long *r, int *sig)
{
	struct cowmap_drain d = { .log_fd = -1 };
	int fd;

	if (c->mode == 1) {
		fd = open(c->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			*r = -errno;
			return 0;
		}
		d.log_fd = fd;
		d.flags = COWMAP_DRAIN_FD;
		*r = cm_ioctl(c->fd, COWMAP_IOC_DRAIN, &d);
		close(fd);
	} else if (c->mode == 2) {
		*r = st_netlink_drain(c->sess_id, -1);
	} else {
		*r = cm_ioctl(c->fd, COWMAP_IOC_DRAIN, &d);
	}
	c->r1 = d.records;
	c->r2 = d.pages;
	c->r3 = d.bytes;
	return 0;
}

/* MREMAP mode 0: move to a chosen address inside a reservation. */
static long st_mremap_move(struct st_cmd *c)
{
	size_t rlen = c->len + (4UL << 20);
	uint8_t *res = mmap(NULL, rlen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *a = ST_ADDR(c);
	unsigned char v;
	uint64_t t;
	void *p;

	if (res == MAP_FAILED)
		return -errno;
	/* 2 MiB-align, then pick (c->r2) congruence. */
	t = ((uintptr_t)res + (2UL << 20) - 1) & ~((2UL << 20) - 1);
	t += ((c->off / PG) % 512) * PG;	/* congruent */
	if (!c->flen)
		t += (1 + c->seed % 511) * PG;	/* not */
	if (t + c->len > (uintptr_t)res + rlen)
		t -= 2UL << 20;
	p = mremap(a, c->len, c->len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(uintptr_t)t);
	if (p == MAP_FAILED) {
		/*
		 * A refused move whose undo failed to unmap the new range
		 * (mm/mremap.c move_vma()) left it mapped inside the
		 * reservation: this munmap takes it too.
		 */
		long r = -errno;

		st_quiet_munmap(res, rlen);
		return r;
	}
	c->raddr = (uintptr_t)p;
	/*
	 * A move whose final munmap of the old range failed (an injected
	 * allocation failure in the VMA split or tree update) still returns
	 * the new address and leaves the old mapping in place (mm/mremap.c
	 * move_vma()).
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
	return 0;
}

int st_exec_mremap(int self, struct st_cmd *c, long *r, int *sig)
{
	void *p;

	if (c->mode == 0) {
		*r = st_mremap_move(c);
	} else if (c->mode == 1) {
		p = mremap(ST_ADDR(c), c->len, c->flen, 0);
		*r = p == MAP_FAILED ? -errno : 0;
	} else {
		p = mremap(ST_ADDR(c), c->len, c->flen, MREMAP_MAYMOVE);
		if (p == MAP_FAILED) {
			*r = -errno;
		} else {
			c->raddr = (uintptr_t)p;
			*r = 0;
		}
	}
	return 0;
}

int st_exec_madv(int self, struct st_cmd *c, long *r, int *sig)
{
	static const int advs[] = { MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT,
				    MADV_WILLNEED, MADV_REMOVE, MADV_SEQUENTIAL };

	*r = madvise(ST_ADDR(c), c->len, advs[c->mode]) ? -errno : 0;
	return 0;
}

int st_exec_owrite(int self, struct st_cmd *c, long *r, int *sig)
{
	static uint8_t buf[2 * PG];

	cm_fill(c->seed, buf, c->flen);
	*r = pwrite(st_ofd, buf, c->flen, c->off);
	*r = *r == (long)c->flen ? 0 : *r < 0 ? -errno : -EIO;
	return 0;
}

int st_exec_odirect(int self, struct st_cmd *c, long *r, int *sig)
{
	cm_fill(c->seed, st_obuf, c->flen);
	*r = pwrite(st_odfd, st_obuf, c->flen, c->off);
	*r = *r == (long)c->flen ? 0 : *r < 0 ? -errno : -EIO;
	return 0;
}

int st_exec_otrunc(int self, struct st_cmd *c, long *r, int *sig)
{
	*r = ftruncate(st_ofd, c->off) ? -errno : 0;
	return 0;
}

int st_exec_opunch(int self, struct st_cmd *c, long *r, int *sig)
{
	*r = fallocate(st_ofd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       c->off, c->flen) ? -errno : 0;
	return 0;
}

/* Returns 1 if "done" was posted by someone else (a forked child). */
static int st_exec(int self, struct st_cmd *c)
{
	int (*exec)(int self, struct st_cmd *c, long *r, int *sig);
	int sig = 0;
	long r = 0;

	c->ret = 0;
	c->err = 0;
	c->sig = 0;
	if (c->op == OP_READ || c->op == OP_WRITE)
		c->r3 = 0;
	exec = c->op > OP_NONE && c->op < OP_NR ? st_ops[c->op].exec : NULL;
	if (exec && exec(self, c, &r, &sig))
		return 1;
	c->ret = r;
	c->err = r < 0 ? (int)-r : 0;
	c->sig = sig;
	return 0;
}

void st_actor_loop(int self)
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

void *st_thread_main(void *arg)
{
	st_actor_loop((int)(intptr_t)arg);
	return NULL;
}
