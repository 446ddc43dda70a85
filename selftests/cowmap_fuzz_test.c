// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzzers for every input cowmap takes from userspace:
 *  - ioctl: random commands with the cowmap magic (random direction, size
 *    and number) and sometimes other magics, on unbound, bound, logged and
 *    mapped sessions, with random, structured-random (valid structures with
 *    one or more fields broken: fds of every kind, flags, ring sizes,
 *    offsets, lengths, reserved bytes) and bad argument pointers (NULL,
 *    kernel addresses, unmapped, read-only and straddling a guard page);
 *  - read(2) of events with random lengths, poll(2), and mmap(2) with random
 *    lengths, offsets, protections and flags (then touched);
 *  - generic netlink: random messages to the "cowmap" family (random and
 *    valid headers, flags, commands, versions, attribute trees with random
 *    types, lengths and nesting, real and made-up session ids and fds),
 *    as root and as an unprivileged user;
 *  - the module parameters in sysfs.
 * Iteration counts are bounded (FUZZ_ITERS scales them: default 1.0 = the
 * counts below) and printed.  Every call must fail with an errno the
 * interface documents or succeed; the kernel must never warn or oops (the
 * VM runner fails on any); a sanity check afterwards proves the module
 * still works, and that every fuzzed session is released.
 */
#include <stddef.h>
#include <sys/resource.h>

#include "cowmap_harness.h"
#include "lib/util.h"
#include "lib/nl.h"

#define NFDS	16
#define NSESS	6
#define BUFSZ	(64 * 1024)

FIXTURE(fuzz) {
	char *dir;
	char *backing;
	int fds[NFDS];		/* a zoo of file descriptors */
	int empty_log;		/* index in fds[] of an empty RW file */
	int sess[NSESS];
	uint8_t *buf;		/* BUFSZ, followed by a PROT_NONE guard page */
	uint8_t *guard;
	uint8_t *ro;		/* a read-only page */
	uint64_t rng;
	uint64_t seed;
	double scale;
};

static uint64_t rnd(FIXTURE_DATA(fuzz) *self, uint64_t n)
{
	return n ? cm_rand(&self->rng) % n : cm_rand(&self->rng);
}

static int open_session(FIXTURE_DATA(fuzz) *self, int kind)
{
	int dev = cm_open_dev(), bfd, lfd = -1;
	struct cowmap_bind b = { 0 };
	char *lp;

	if (dev < 0 || kind == 0)
		return dev;
	bfd = open(self->backing, O_RDONLY | O_CLOEXEC);
	b.fd = bfd;
	if (kind >= 2) {
		lp = cm_path(self->dir, "log.XXXXXX");
		lfd = mkostemp(lp, O_CLOEXEC);
		unlink(lp);
		free(lp);
		b.log_fd = lfd;
		b.flags = COWMAP_BIND_LOG;
	}
	ioctl(dev, COWMAP_IOC_BIND, &b);
	if (kind == 3) {
		/* Mapped with private pages; the mapping stays (leaked on purpose
		 * until the sanity check unmaps everything by exiting).
		 */
		uint8_t *m = mmap(NULL, PGS(8), PROT_READ | PROT_WRITE, MAP_SHARED, dev, 0);

		if (m != MAP_FAILED) {
			for (int i = 0; i < 8; i += 2)
				m[PGS(i) + rnd(self, PG)] ^= 0x5a;
			munmap(m, PGS(8));
		}
	}
	close(bfd);
	if (lfd >= 0)
		close(lfd);
	return dev;
}

FIXTURE_SETUP(fuzz)
{
	const char *scratch, *sc = getenv("FUZZ_ITERS");
	uint8_t data[PGS(16)];
	int i, p[2], fd;
	char *path;

	self->dir = NULL;
	for (i = 0; i < NFDS; i++)
		self->fds[i] = -1;
	for (i = 0; i < NSESS; i++)
		self->sess[i] = -1;
	CM_SKIP_IF_NO_DEVICE();
	CM_SETUP_SCRATCH(scratch);
	self->scale = sc && *sc ? strtod(sc, NULL) : 1.0;
	self->seed = getenv("COWMAP_SEED") ? strtoull(getenv("COWMAP_SEED"), NULL, 0) :
		     cm_now_ns() % 1000000007ULL;
	self->rng = self->seed;
	self->dir = cm_mkdtemp(scratch, "fuzz");
	ASSERT_NE(NULL, self->dir);
	self->backing = cm_path(self->dir, "backing");
	cm_fill(1, data, sizeof(data));
	fd = cm_create(self->backing, data, sizeof(data));
	ASSERT_LE(0, fd);

	/* The fd zoo. */
	self->fds[0] = fd;					/* RDWR backing */
	self->fds[1] = open(self->backing, O_RDONLY | O_CLOEXEC);
	self->fds[2] = open(self->backing, O_WRONLY | O_CLOEXEC);
	self->fds[3] = open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	self->fds[4] = p[0];
	self->fds[5] = p[1];
	self->fds[6] = open("/dev/null", O_RDWR | O_CLOEXEC);
	path = cm_path(self->dir, "empty");
	self->fds[7] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	self->empty_log = 7;
	path = cm_path(self->dir, "full");
	self->fds[8] = cm_create(path, data, 100);
	free(path);
	self->fds[9] = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	self->fds[10] = cm_open_dev();
	self->fds[11] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	self->fds[12] = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	path = cm_path(self->dir, "direct");
	self->fds[13] = open(path, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
	free(path);
	self->fds[14] = open(self->backing, O_PATH | O_CLOEXEC);
	self->fds[15] = open(self->dir, O_RDONLY | O_CLOEXEC);

	self->buf = mmap(NULL, BUFSZ + 2 * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	self->guard = self->buf + BUFSZ;
	ASSERT_EQ(0, mprotect(self->guard, PG, PROT_NONE));
	self->ro = self->guard + PG;
	ASSERT_EQ(0, mprotect(self->ro, PG, PROT_READ));
	for (i = 0; i < NSESS; i++)
		self->sess[i] = open_session(self, i % 4);
}

FIXTURE_TEARDOWN(fuzz)
{
	int i;

	for (i = 0; i < NSESS; i++)
		if (self->sess[i] >= 0)
			close(self->sess[i]);
	for (i = 0; i < NFDS; i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	if (self->dir)
		cm_rm_rf(self->dir);
	free(self->dir);
}

static long iters(FIXTURE_DATA(fuzz) *self, long n)
{
	long v = (long)(n * self->scale);

	return v < 1 ? 1 : v;
}

/* A "kind of" fd for a structure field. */
static int32_t pick_fd(FIXTURE_DATA(fuzz) *self)
{
	switch (rnd(self, 8)) {
	case 0:
		return -1 - (int32_t)rnd(self, 3);
	case 1:
		return (int32_t)rnd(self, 0);
	case 2:
		return 1000 + rnd(self, 100);
	default:
		return self->fds[rnd(self, NFDS)];
	}
}

static uint64_t pick_u64(FIXTURE_DATA(fuzz) *self)
{
	static const uint64_t special[] = {
		0, 1, PG - 1, PG, PG + 1, PGS(16), PGS(17), ~0ULL, ~0ULL - PG + 1,
		1ULL << 63, (1ULL << 32) - 1, 1ULL << 32, COWMAP_DIFF_MIN_BUF,
		COWMAP_DIFF_MIN_BUF - 1, 0xffff800000000000ULL,
	};

	if (rnd(self, 2))
		return special[rnd(self, sizeof(special) / sizeof(special[0]))];
	return rnd(self, 0) >> rnd(self, 64);
}

/* Fill @p (@len bytes) with a mutated structure for ioctl number @nr. */
static void make_struct(FIXTURE_DATA(fuzz) *self, uint8_t *p, size_t len, int nr)
{
	size_t i;

	memset(p, 0, len);
	switch (nr) {
	case 1: {
		struct cowmap_bind *b = (void *)p;

		if (len < sizeof(*b))
			break;
		b->fd = pick_fd(self);
		b->log_fd = pick_fd(self);
		b->flags = rnd(self, 3) ? rnd(self, 2) : rnd(self, 0);
		b->ring_size = rnd(self, 2) ? 0 : rnd(self, 3) ? 1U << rnd(self, 22) :
			       (uint32_t)rnd(self, 0);
		break;
	}
	case 3: {
		struct cowmap_diff *d = (void *)p;
		uint64_t bufs[] = {
			(uintptr_t)self->buf, (uintptr_t)self->guard - PG,
			(uintptr_t)self->ro, 0, 0xffffffff81000000ULL, 16,
		};

		if (len < sizeof(*d))
			break;
		d->offset = rnd(self, 2) ? PGS(rnd(self, 20)) : pick_u64(self);
		d->end = rnd(self, 2) ? 0 : pick_u64(self);
		d->buf = bufs[rnd(self, 6)];
		d->buf_len = rnd(self, 2) ? BUFSZ : pick_u64(self);
		d->flags = rnd(self, 4) ? 0 : rnd(self, 0);
		break;
	}
	case 4: {
		struct cowmap_drain *d = (void *)p;

		if (len < sizeof(*d))
			break;
		d->log_fd = pick_fd(self);
		d->flags = rnd(self, 3) ? rnd(self, 2) : rnd(self, 0);
		break;
	}
	case 5: {
		struct cowmap_range *r = (void *)p;

		if (len < sizeof(*r))
			break;
		r->offset = rnd(self, 2) ? PGS(rnd(self, 20)) : pick_u64(self);
		r->length = rnd(self, 2) ? PGS(rnd(self, 20)) : pick_u64(self);
		r->flags = rnd(self, 3) ? rnd(self, 2) : rnd(self, 0);
		r->reserved0 = rnd(self, 5) ? 0 : rnd(self, 0);
		break;
	}
	default:
		break;
	}
	/* Sometimes break one more byte, reserved fields and tails included. */
	if (len && rnd(self, 4) == 0) {
		i = rnd(self, len);
		p[i] = rnd(self, 256);
	}
	if (rnd(self, 20) == 0)
		for (i = 0; i < len; i++)
			p[i] = rnd(self, 256);
}

static int errno_ok(int e)
{
	switch (e) {
	case 0: case EINVAL: case EFAULT: case ENOTTY: case ENODEV: case EBADF:
	case EISDIR: case EACCES: case EOPNOTSUPP: case EBUSY: case E2BIG:
	case ENOTEMPTY: case EBADFD: case ENOMEM: case EPERM: case ENOSPC:
	case EFBIG: case EINTR:
		return 1;
	}
	return 0;
}

static volatile sig_atomic_t touched_sig;
static sigjmp_buf touch_jb;

static void touch_handler(int sig)
{
	touched_sig = sig;
	siglongjmp(touch_jb, 1);
}

/* Touch every page of a fuzzed mapping; SIGBUS and SIGSEGV are fine. */
static void __attribute__((noinline)) touch(uint8_t *m, size_t len, int prot, size_t at)
{
	static volatile size_t k;

	for (k = 0; k < len; k += PG) {
		touched_sig = 0;
		if (sigsetjmp(touch_jb, 1) == 0) {
			if (prot & PROT_WRITE)
				m[k + at] ^= 1;
			else if (prot & PROT_READ)
				(void)*(volatile uint8_t *)(m + k);
		}
	}
}

/*
 * @n rounds of random ioctls, reads, mmaps and polls on the fixture's
 * sessions (replacing some); returns the number of unexpected results.
 * @calls counts ioctls, reads and mmaps, @errs the ioctls' errnos, @ok
 * the ioctls that succeeded.
 */
static long fuzz_sessions(struct __test_metadata *_metadata, FIXTURE_DATA(fuzz) *self,
			  long n, long calls[4], long errs[256], long *ok)
{
	struct sigaction sa = { .sa_handler = touch_handler, .sa_flags = SA_NODEFER };
	long i, bad = 0;

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	for (i = 0; i < n; i++) {
		int si = rnd(self, NSESS), dev = self->sess[si], what = rnd(self, 20);
		unsigned int dir, type, nr, size, cmd;
		uint8_t *arg;
		long r;
		int e;

		if (rnd(self, 200) == 0) {
			/* Replace a session: more binds, more releases. */
			close(self->sess[si]);
			self->sess[si] = open_session(self, rnd(self, 4));
			continue;
		}
		if (rnd(self, 100) == 0)
			ftruncate(self->fds[self->empty_log], 0);
		if (dev < 0)
			continue;
		if (what == 0) {
			/* read(2) of events with a random length. */
			size_t len = rnd(self, 3) ? rnd(self, 200) : rnd(self, BUFSZ);
			uint8_t *b = rnd(self, 4) ? self->buf :
				     rnd(self, 2) ? self->guard - 40 : self->ro;

			cm_set_nonblock(dev, true);
			r = read(dev, b, len);
			e = r < 0 ? errno : 0;
			calls[1]++;
			if (!errno_ok(e) && e != EAGAIN) {
				bad++;
				TH_LOG("read(%zu): unexpected %s", len, strerror(e));
			}
			if (r > 0 && r % sizeof(struct cowmap_event)) {
				bad++;
				TH_LOG("read(%zu) returned %ld: not whole events", len, r);
			}
			continue;
		}
		if (what == 1) {
			/* mmap with random arguments, then touch it. */
			static const int flags[] = { MAP_SHARED, MAP_PRIVATE,
				MAP_SHARED | MAP_POPULATE, MAP_SHARED_VALIDATE,
				MAP_SHARED | MAP_NORESERVE, MAP_SHARED | MAP_LOCKED };
			size_t len = rnd(self, 3) ? PGS(1 + rnd(self, 20)) : pick_u64(self);
			uint64_t off = rnd(self, 3) ? PGS(rnd(self, 24)) : pick_u64(self);
			int prot = rnd(self, 8);
			uint8_t *m;

			calls[2]++;
			m = mmap(NULL, len, prot, flags[rnd(self, 6)], dev, off);
			if (m == MAP_FAILED) {
				e = errno;
				if (!errno_ok(e) && e != EOVERFLOW && e != EAGAIN) {
					bad++;
					TH_LOG("mmap(len %zu, off %#llx): unexpected %s", len,
					       (unsigned long long)off, strerror(e));
				}
				continue;
			}
			if (len <= PGS(32))
				touch(m, len, prot, rnd(self, PG));
			munmap(m, len);
			continue;
		}
		if (what == 2) {
			struct pollfd pfd = { .fd = dev, .events = POLLIN | POLLOUT | POLLPRI };

			poll(&pfd, 1, 0);
			continue;
		}

		/* An ioctl. */
		dir = rnd(self, 4);
		type = rnd(self, 10) ? COWMAP_IOC_MAGIC : rnd(self, 256);
		nr = rnd(self, 5) ? rnd(self, 6) : rnd(self, 256);
		switch (rnd(self, 6)) {
		case 0:
			size = rnd(self, 1 << 14);
			break;
		case 1:
			size = rnd(self, 160);
			break;
		case 2:
			size = 4096;
			break;
		default: {
			static const unsigned int sizes[] = {
				sizeof(struct cowmap_version), sizeof(struct cowmap_bind),
				sizeof(struct cowmap_info), sizeof(struct cowmap_diff),
				sizeof(struct cowmap_drain), sizeof(struct cowmap_range),
			};

			size = nr < 6 ? sizes[nr] : sizes[rnd(self, 6)];
			if (rnd(self, 3) == 0)
				size += 8 * (rnd(self, 5) - 2);
			if (rnd(self, 3) == 0)
				dir = nr == 0 || nr == 2 ? _IOC_READ : _IOC_READ | _IOC_WRITE;
		}
		}
		/* Mostly the number's own direction: get past the dispatch. */
		if (nr < 6 && type == COWMAP_IOC_MAGIC && rnd(self, 10) < 7)
			dir = nr == 0 || nr == 2 ? _IOC_READ : _IOC_READ | _IOC_WRITE;
		cmd = _IOC(dir, type, nr, size);
		switch (rnd(self, 10)) {
		case 0:
			arg = NULL;
			break;
		case 1:
			arg = (uint8_t *)(uintptr_t)(rnd(self, 2) ? 0xffffffff81000000ULL : 8);
			break;
		case 2:
			arg = self->guard - (size ? rnd(self, size) : 0);
			make_struct(self, self->buf, BUFSZ - PG, nr);
			break;
		case 3:
			arg = self->ro;
			break;
		default:
			arg = self->buf;
			make_struct(self, arg, size < BUFSZ ? size : BUFSZ, nr);
		}
		r = ioctl(dev, cmd, arg);
		e = r < 0 ? errno : 0;
		calls[0]++;
		errs[e & 255]++;
		if (!e)
			(*ok)++;
		if (!errno_ok(e)) {
			bad++;
			TH_LOG("ioctl(%#x dir %u type %#x nr %u size %u): unexpected %s",
			       cmd, dir, type, nr, size, strerror(e));
		}
	}
	signal(SIGBUS, SIG_DFL);
	signal(SIGSEGV, SIG_DFL);
	return bad;
}

TEST_F_TIMEOUT(fuzz, ioctl_read_mmap, 1800)
{
	long n = iters(self, 5000), bad, calls[4] = { 0 }, ok = 0;
	long errs[256] = { 0 };

	printf("# ioctl/read/mmap fuzz: %ld iterations, seed %llu\n", n,
	       (unsigned long long)self->seed);
	fflush(stdout);
	bad = fuzz_sessions(_metadata, self, n, calls, errs, &ok);
	printf("# ioctl/read/mmap fuzz: %ld ioctls (%ld succeeded, EINVAL %ld, EFAULT %ld, ENOTTY %ld, ENODEV %ld, E2BIG %ld), %ld reads, %ld mmaps; %ld unexpected results\n",
	       calls[0], ok, errs[EINVAL], errs[EFAULT], errs[ENOTTY], errs[ENODEV],
	       errs[E2BIG], calls[1], calls[2], bad);
	fflush(stdout);
	EXPECT_EQ(0, bad);
}

/* ------------------------------------------------------------------------
 * Netlink
 */

static size_t rand_attrs(FIXTURE_DATA(fuzz) *self, uint8_t *p, size_t room, int depth,
			 const uint64_t *ids, int nids)
{
	size_t used = 0;
	int n = rnd(self, depth ? 4 : 6), i;

	for (i = 0; i < n && room - used > 64; i++) {
		struct nlattr *a = (struct nlattr *)(p + used);
		uint8_t *d = p + used + NLA_HDRLEN;
		uint16_t type = rnd(self, 10) ? rnd(self, 10) : rnd(self, 65536);
		size_t len = 0;

		switch (rnd(self, 8)) {
		case 0: {	/* u64: session ids, caps */
			uint64_t v = rnd(self, 2) && nids ? ids[rnd(self, nids)] : pick_u64(self);

			memcpy(d, &v, 8);
			len = 8;
			break;
		}
		case 1: {	/* u32: fds */
			uint32_t v = rnd(self, 2) ? (uint32_t)pick_fd(self) : (uint32_t)rnd(self, 0);

			memcpy(d, &v, 4);
			len = 4;
			break;
		}
		case 2:
			if (depth < 3 && room - used > 200) {
				len = rand_attrs(self, d, (room - used - NLA_HDRLEN) / 2,
						 depth + 1, ids, nids);
				if (rnd(self, 2))
					type |= NLA_F_NESTED;
			}
			break;
		case 3:
			len = snprintf((char *)d, 32, "cowmap%llu",
				       (unsigned long long)rnd(self, 100)) + rnd(self, 2);
			break;
		default:
			len = rnd(self, 3) ? rnd(self, 9) : rnd(self, 48);
			for (size_t k = 0; k < len; k++)
				d[k] = rnd(self, 256);
		}
		a->nla_type = type;
		a->nla_len = NLA_HDRLEN + len;
		/* Broken lengths now and then. */
		if (rnd(self, 25) == 0)
			a->nla_len = rnd(self, 2) ? rnd(self, NLA_HDRLEN) : a->nla_len + 1 + rnd(self, 300);
		memset(d + len, 0, NLA_ALIGN(NLA_HDRLEN + len) - NLA_HDRLEN - len);
		used += NLA_ALIGN(NLA_HDRLEN + len);
	}
	return used;
}

/* Fuzz @n messages on a fresh socket; returns the number of bad replies. */
static long nl_fuzz(FIXTURE_DATA(fuzz) *self, long n, const uint64_t *ids, int nids,
		    long *sent, long *replies, long *acks, long *errs_out)
{
	uint8_t msg[8192] __attribute__((aligned(8)));
	uint8_t rbuf[65536] __attribute__((aligned(8)));
	struct nlu_family f;
	long bad = 0, i;
	int sk = nlu_socket();

	if (sk < 0 || nlu_resolve(sk, &f)) {
		if (sk >= 0)
			close(sk);
		return 1;
	}
	for (i = 0; i < n; i++) {
		struct nlmsghdr *nh = (struct nlmsghdr *)msg;
		struct genlmsghdr *gh = NLMSG_DATA(nh);
		size_t alen, len;
		int wait_ms = 40;	/* a late reply is read with the next one */
		static const uint16_t fl[] = {
			NLM_F_ACK, NLM_F_DUMP, NLM_F_ECHO, NLM_F_ATOMIC, NLM_F_EXCL,
			NLM_F_CREATE, NLM_F_REPLACE, NLM_F_APPEND, NLM_F_MULTI,
		};

		memset(msg, 0, NLMSG_LENGTH(GENL_HDRLEN));
		nh->nlmsg_type = rnd(self, 20) ? f.id : rnd(self, 2) ? GENL_ID_CTRL : rnd(self, 65536);
		nh->nlmsg_flags = rnd(self, 15) ? NLM_F_REQUEST : 0;
		for (int k = rnd(self, 3); k > 0; k--)
			nh->nlmsg_flags |= fl[rnd(self, 9)];
		if (rnd(self, 20) == 0)
			nh->nlmsg_flags |= rnd(self, 65536);
		nh->nlmsg_seq = i + 1;
		gh->cmd = rnd(self, 4) ? 1 + rnd(self, COWMAP_CMD_MAX) : rnd(self, 256);
		gh->version = rnd(self, 8) ? COWMAP_GENL_VERSION : rnd(self, 256);
		gh->reserved = rnd(self, 10) ? 0 : rnd(self, 65536);
		alen = rand_attrs(self, msg + NLMSG_LENGTH(GENL_HDRLEN),
				  sizeof(msg) - NLMSG_LENGTH(GENL_HDRLEN), 0, ids, nids);
		len = NLMSG_LENGTH(GENL_HDRLEN) + alen;
		nh->nlmsg_len = len;
		if (rnd(self, 30) == 0) {
			/* Header length lies. */
			nh->nlmsg_len = rnd(self, 2) ? rnd(self, len) : len + rnd(self, 64);
		}
		if (nlu_send(sk, msg, len) == 0)
			(*sent)++;
		/* Collect whatever comes back. */
		for (;;) {
			struct pollfd pfd = { .fd = sk, .events = POLLIN };
			struct nlmsghdr *r;
			ssize_t got;
			size_t left;

			if (poll(&pfd, 1, wait_ms) <= 0)
				break;
			wait_ms = 5;
			got = recv(sk, rbuf, sizeof(rbuf), MSG_DONTWAIT);
			if (got < 0) {
				if (errno == ENOBUFS)
					continue;
				break;
			}
			left = got;
			for (r = (struct nlmsghdr *)rbuf; NLMSG_OK(r, left); r = NLMSG_NEXT(r, left)) {
				(*replies)++;
				if (r->nlmsg_type == NLMSG_ERROR) {
					struct nlmsgerr *e = NLMSG_DATA(r);

					if (r->nlmsg_len < NLMSG_LENGTH(sizeof(*e)) || e->error > 0) {
						bad++;
						fprintf(stderr, "# malformed NLMSG_ERROR (len %u, error %d)\n",
						       r->nlmsg_len, e->error);
					} else if (!e->error) {
						(*acks)++;
					} else {
						errs_out[-e->error & 255]++;
					}
				} else if (r->nlmsg_type == f.id) {
					const uint8_t *p = (const uint8_t *)NLMSG_DATA(r) + GENL_HDRLEN;
					size_t al = r->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);

					/* A reply's attributes must parse. */
					while (al >= NLA_HDRLEN) {
						const struct nlattr *a = (const void *)p;

						if (a->nla_len < NLA_HDRLEN || a->nla_len > al) {
							bad++;
							fprintf(stderr, "# malformed attribute in a reply to cmd %u\n",
							       gh->cmd);
							break;
						}
						if (NLA_ALIGN(a->nla_len) >= al)
							break;
						al -= NLA_ALIGN(a->nla_len);
						p += NLA_ALIGN(a->nla_len);
					}
				}
			}
			if (left) {
				bad++;
				fprintf(stderr, "# truncated netlink reply (%zu bytes left)\n", left);
			}
		}
	}
	close(sk);
	return bad;
}

static int config_get(uint64_t *sess_cap, uint64_t *total_cap)
{
	struct nlu_family f;
	int sk = nlu_socket(), err;

	if (sk < 0)
		return sk;
	err = nlu_resolve(sk, &f) ?:
	      nlu_get_u64_attr(sk, &f, COWMAP_CMD_GET_CONFIG, COWMAP_A_CONFIG,
			       COWMAP_CONFIG_A_MAX_SESSION_PAGES, sess_cap) ?:
	      nlu_get_u64_attr(sk, &f, COWMAP_CMD_GET_CONFIG, COWMAP_A_CONFIG,
			       COWMAP_CONFIG_A_MAX_TOTAL_PAGES, total_cap);
	close(sk);
	return err;
}

static void restore_config(struct __test_metadata *_metadata, uint64_t cap_s,
			   uint64_t cap_t);

TEST_F_TIMEOUT(fuzz, netlink, 1800)
{
	long n = iters(self, 2000), sent = 0, replies = 0, acks = 0, bad;
	long errs[256] = { 0 };
	uint64_t ids[NSESS + 2], cap_s, cap_t, c1, c2;
	int nids = 0, i, st;
	pid_t pid;

	ASSERT_EQ(0, config_get(&cap_s, &cap_t));
	for (i = 0; i < NSESS; i++) {
		struct cowmap_info in;

		if (self->sess[i] >= 0 && !cm_info(self->sess[i], &in))
			ids[nids++] = in.id;
	}
	ids[nids++] = 0;
	ids[nids++] = 0xfffffff0;
	printf("# netlink fuzz: %ld messages as root, %ld as uid 1000, seed %llu\n",
	       n * 3 / 4, n / 4, (unsigned long long)self->seed);
	fflush(stdout);

	/* As an unprivileged user, in a child. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		long s2 = 0, r2 = 0, a2 = 0, e2[256] = { 0 };

		self->rng ^= 0x1234;
		if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000))
			_exit(2);
		bad = nl_fuzz(self, n / 4, ids, nids, &s2, &r2, &a2, e2);
		printf("# netlink fuzz (uid 1000): %ld sent, %ld replies, %ld acks, EPERM %ld, EINVAL %ld, ENOENT %ld; %ld bad\n",
		       s2, r2, a2, e2[EPERM], e2[EINVAL], e2[ENOENT], bad);
		fflush(stdout);
		_exit(bad ? 1 : 0);
	}
	bad = nl_fuzz(self, n * 3 / 4, ids, nids, &sent, &replies, &acks, errs);
	st = cm_wait(pid);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	printf("# netlink fuzz (root): %ld sent, %ld replies, %ld acks, EINVAL %ld, ENOENT %ld, EOPNOTSUPP %ld, EPERM %ld, EBADF %ld, E2BIG %ld, ERANGE %ld, EMSGSIZE %ld; %ld bad\n",
	       sent, replies, acks, errs[EINVAL], errs[ENOENT], errs[EOPNOTSUPP],
	       errs[EPERM], errs[EBADF], errs[E2BIG], errs[ERANGE], errs[EMSGSIZE], bad);
	fflush(stdout);
	EXPECT_EQ(0, bad);
	restore_config(_metadata, cap_s, cap_t);
	ASSERT_EQ(0, config_get(&c1, &c2));
	EXPECT_EQ(cap_s, c1);
	EXPECT_EQ(cap_t, c2);
}

static void restore_config(struct __test_metadata *_metadata, uint64_t cap_s,
			   uint64_t cap_t)
{
	{
		struct nlu_family f;
		uint8_t attrs[64], nest[48];
		size_t nl;
		int sk = nlu_socket();

		ASSERT_LE(0, sk);
		ASSERT_EQ(0, nlu_resolve(sk, &f));
		nl = nlu_put_u64(nest, COWMAP_CONFIG_A_MAX_SESSION_PAGES, cap_s);
		nl += nlu_put_u64(nest + nl, COWMAP_CONFIG_A_MAX_TOTAL_PAGES, cap_t);
		EXPECT_EQ(0, nlu_request(sk, f.id, COWMAP_CMD_SET_CONFIG, 0, attrs,
					 nlu_put(attrs, COWMAP_A_CONFIG | NLA_F_NESTED, nest, nl),
					 NULL, NULL, 5000));
		close(sk);
	}
}

TEST_F(fuzz, module_params)
{
	static const char *const vals[] = {
		"", "0", "1", "-1", "18446744073709551615", "18446744073709551616",
		"0x10", "010", " 5", "5 ", "5\n", "abc", "1e9", "99999999999999999999999",
		"+7", "0x", "\xff\xfe",
	};
	static const char *const names[] = { "max_session_pages", "max_total_pages" };
	char saved[2][64];
	long n = iters(self, 300), i, refused = 0, taken = 0;

	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, cm_param_read(names[i], saved[i], sizeof(saved[i])));
	for (i = 0; i < n; i++) {
		char v[40];
		const char *val = vals[rnd(self, sizeof(vals) / sizeof(vals[0]))];

		if (rnd(self, 3) == 0) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)pick_u64(self));
			val = v;
		}
		if (cm_param_write(names[rnd(self, 2)], val))
			refused++;
		else
			taken++;
	}
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(0, cm_param_write(names[i], saved[i]));
	}
	printf("# module parameter fuzz: %ld writes (%ld taken, %ld refused)\n", n, taken, refused);
	fflush(stdout);
}

/*
 * After fuzzing (a round of this test's own, on the fixture's sessions:
 * each test runs in a process of its own): the module works, and the fuzzed
 * sessions go away when closed.
 */
TEST_F_TIMEOUT(fuzz, sanity_after, 600)
{
	uint8_t buf[PG], *m, *log;
	struct cowmap_drain d;
	struct cowmap_info in;
	struct cm_rec r;
	size_t len, pos;
	char why[64], *lp;
	int dev, lfd, n = 0, k, sk, live = 0;
	uint64_t before = 0, after = 0;
	struct nlu_family f;
	long calls[4] = { 0 }, errs[256] = { 0 }, ok = 0, bad;

	bad = fuzz_sessions(_metadata, self, iters(self, 1000), calls, errs, &ok);
	printf("# sanity: %ld ioctls (%ld succeeded), %ld reads, %ld mmaps fuzzed first\n",
	       calls[0], ok, calls[1], calls[2]);
	fflush(stdout);
	EXPECT_EQ(0, bad);
	for (k = 0; k < NSESS; k++)
		if (self->sess[k] >= 0 && cm_info(self->sess[k], &in) == 0)
			live++;
	/* Some fuzzed sessions are bound (open_session kinds 1-3), so live. */
	EXPECT_LT(0, live);

	sk = nlu_socket();
	ASSERT_LE(0, sk);
	ASSERT_EQ(0, nlu_resolve(sk, &f));
	ASSERT_EQ(0, nlu_get_u64_attr(sk, &f, COWMAP_CMD_GET_STATS, COWMAP_A_STATS,
				      COWMAP_STATS_A_SESSIONS, &before));

	lp = cm_path(self->dir, "sanity.log");
	lfd = open(lp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, lfd);
	dev = cm_session(self->fds[1], lfd, 0);
	ASSERT_LE(0, dev);
	m = cm_map(dev, 0, PGS(4), PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	memcpy(buf, m + PG, PG);
	memset(m + PG + 100, 0xab, 50);
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(1, in.private_pages);
	ASSERT_EQ(0, cm_drain(dev, -1, &d));
	EXPECT_EQ(1, d.records);
	munmap(m, PGS(4));
	close(dev);
	close(lfd);
	log = cm_slurp(lp, &len);
	ASSERT_NE(NULL, log);
	pos = le32toh(((struct cowmap_log_header *)log)->header_len);
	while ((k = cm_rec_next(log, len, &pos, &r, why)) == 1) {
		n++;
		EXPECT_EQ(PG + 100, r.offset);
		EXPECT_EQ(50, r.length);
		EXPECT_EQ(0, memcmp(r.old, buf + 100, 50));
	}
	EXPECT_EQ(0, k) TH_LOG("%s", why);
	EXPECT_EQ(1, n);
	free(log);
	free(lp);

	/* Closing the fuzzed sessions releases them. */
	for (k = 0; k < NSESS; k++) {
		if (self->sess[k] >= 0)
			close(self->sess[k]);
		self->sess[k] = -1;
	}
	close(self->fds[10]);
	self->fds[10] = -1;
	for (k = 0; k < 100; k++) {
		ASSERT_EQ(0, nlu_get_u64_attr(sk, &f, COWMAP_CMD_GET_STATS, COWMAP_A_STATS,
					      COWMAP_STATS_A_SESSIONS, &after));
		if (after == 0)
			break;
		usleep(20000);
	}
	printf("# sanity: sessions %llu before closing the %d live fuzzed ones, %llu after\n",
	       (unsigned long long)before, live, (unsigned long long)after);
	fflush(stdout);
	EXPECT_LE(live, before);
	EXPECT_EQ(0, after);
	close(sk);
}

TEST_HARNESS_MAIN
