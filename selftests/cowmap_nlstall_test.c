// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile users, part 3 (netlink and logs): generic netlink that cannot stall the
 * machine, dumps that skip nothing, one header per log, zeroed tails.
 *
 *  genl_stall     while a netlink DISCARD waits behind an ioctl DRAIN
 *                 stuck on a frozen filesystem, a new client's nlctrl
 *                 GETFAMILY and a cowmap GET_STATS answer within 3 s, and
 *                 SIGKILL ends the waiting DISCARD (old: both queue on
 *                 genl_mutex until the thaw; the DISCARD is unkillable)
 *  dump_long_path a session whose path is near PATH_MAX is dumped
 *                 (old: EMSGSIZE for the whole dump)
 *  dump_order     a session whose bind stalled (id 1, joins the list
 *                 second) is listed (old: skipped by every dump)
 *  dump_creds     a dump asked by uid 1000 and read as euid 0 lists
 *                 uid 1000's sessions only (old: root's too)
 *  header_race    two sessions DRAIN_FD into one empty file at once:
 *                 exactly one succeeds, the other gets ENOTEMPTY, the log
 *                 has one header (old: both succeed, two headers)
 *  ioctl_tail     VERSION and INFO with a larger caller structure zero
 *                 its tail (old: left as it was)
 *
 * The stalls freeze the ext4 scratch filesystem (FIFREEZE) for a few
 * seconds; a guard process thaws it after 20 s whatever happens.
 * $COWMAP_NLSTALL_TESTS (comma-separated names) runs only those tests.
 */
#include <pthread.h>
#include <sys/prctl.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <linux/fs.h>

#include "cowmap_harness.h"
#include "lib/util.h"
#include "lib/nl.h"

#define NPAGES		16
#define STALL_MS	3000	/* a probe must answer within this */

static uint64_t now_ms(void)
{
	return cm_now_ns() / 1000000;
}

/* /proc/@pid/stat's state letter, or 0. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (cm_read_text(path, buf, sizeof(buf)))
		return 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* Wait up to @ms for @pid to sleep uninterruptibly (D); 1 if it does. */
static int wait_state_d(pid_t pid, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (proc_state(pid) == 'D')
			return 1;
		usleep(10000);
	}
	return 0;
}

/* waitpid with a deadline: the status, or -1 if @pid still runs. */
static int wait_for(pid_t pid, int ms)
{
	int st;

	for (int i = 0; i <= ms / 10; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0)
			return -2;
		usleep(10000);
	}
	return -1;
}

/* A child's exit code; 128 + signal if killed, -1 if waiting failed. */
static int child_code_ok(pid_t pid)
{
	int st = cm_wait(pid);

	if (st == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

FIXTURE(nl) {
	char *dir;		/* on the ext4 scratch */
	int fsfd;		/* the scratch's root, for FIFREEZE */
	pid_t guard;		/* thaws after 20 s */
	int frozen;
};

FIXTURE_SETUP(nl)
{
	const char *scratch;

	self->dir = NULL;
	self->fsfd = -1;
	self->guard = 0;
	self->frozen = 0;
	if (!cm_selected("COWMAP_NLSTALL_TESTS", _metadata->name))
		CM_SETUP_SKIP("not in $COWMAP_NLSTALL_TESTS");
	CM_SKIP_IF_NO_DEVICE();
	if (geteuid())
		CM_SETUP_SKIP("needs root");
	CM_SETUP_SCRATCH_DIR(scratch, self->dir, "nlstall");
	self->fsfd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, self->fsfd);
}

static void thaw(FIXTURE_DATA(nl) *self)
{
	if (self->frozen)
		ioctl(self->fsfd, FITHAW, 0);
	self->frozen = 0;
	if (self->guard > 0) {
		kill(self->guard, SIGKILL);
		cm_wait(self->guard);
	}
	self->guard = 0;
}

/* Freeze the scratch filesystem, with a guard that thaws it after 20 s. */
static int freeze(FIXTURE_DATA(nl) *self)
{
	sync();
	self->guard = fork();
	if (self->guard < 0)
		return -errno;
	if (!self->guard) {
		sleep(20);
		ioctl(self->fsfd, FITHAW, 0);
		_exit(0);
	}
	if (ioctl(self->fsfd, FIFREEZE, 0)) {
		int err = -errno;

		thaw(self);
		return err;
	}
	self->frozen = 1;
	return 0;
}

FIXTURE_TEARDOWN(nl)
{
	thaw(self);
	if (self->fsfd >= 0)
		close(self->fsfd);
	if (self->dir)
		cm_rm_rf(self->dir);
	free(self->dir);
}

/* A file of @len bytes in @dir; its path (malloc'ed) or NULL. */
static char *make_file(const char *dir, const char *name, size_t len)
{
	uint8_t *data = calloc(1, len ? len : 1);
	char *p = cm_path(dir, name);
	int fd;

	cm_fill(7, data, len);
	fd = cm_create(p, data, len);
	free(data);
	if (fd < 0) {
		free(p);
		return NULL;
	}
	close(fd);
	return p;
}

static int open_session(const char *path, int log_fd, uint64_t *id)
{
	struct cowmap_info in;
	int fd = open(path, O_RDONLY | O_CLOEXEC), dev;

	if (fd < 0)
		return -errno;
	dev = cm_session(fd, log_fd, 0);
	close(fd);
	if (dev >= 0 && id) {
		if (cm_info(dev, &in)) {
			close(dev);
			return -EIO;
		}
		*id = in.id;
	}
	return dev;
}

/* ------------------------------------------------------------ stall -- */

struct probe {
	int ctrl_err, stats_err;
	uint64_t ctrl_ms, stats_ms;
};

/*
 * genl_stall: an ioctl DRAIN into the bound log on a frozen filesystem
 * holds s->lock; a netlink DISCARD of that session waits for it.  A new
 * netlink client must still get answers, and SIGKILL must end the DISCARD.
 */
TEST_F_TIMEOUT(nl, genl_stall, 120)
{
	struct probe *pr = cm_shared(sizeof(*pr));
	char *bp = make_file(self->dir, "backing", NPAGES * PG);
	char *lp = cm_path(self->dir, "log");
	int lfd = open(lp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	struct nlu_family f;
	pid_t drainer, discarder, prober;
	int dev, sk, st, killed_ms = -1, probe_done;
	uint64_t id, t0;
	uint8_t *m;

	ASSERT_NE(NULL, pr);
	ASSERT_NE(NULL, bp);
	ASSERT_LE(0, lfd);
	dev = open_session(bp, lfd, &id);
	ASSERT_LE(0, dev);
	m = cm_map(dev, 0, NPAGES * PG, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	for (int i = 0; i < NPAGES; i++)
		m[i * PG] ^= 0x5a;
	sk = nlu_socket();
	ASSERT_LE(0, sk);
	ASSERT_EQ(0, nlu_resolve(sk, &f));

	ASSERT_EQ(0, freeze(self));
	drainer = fork();
	ASSERT_LE(0, drainer);
	if (!drainer) {
		struct cowmap_drain d;

		_exit(cm_drain(dev, -1, &d) ? 1 : 0);
	}
	EXPECT_TRUE(wait_state_d(drainer, 5000)) TH_LOG("the ioctl DRAIN did not block");
	discarder = fork();
	ASSERT_LE(0, discarder);
	if (!discarder) {
		uint8_t attrs[16];
		int s2 = nlu_socket();

		if (s2 < 0)
			_exit(2);
		_exit(nlu_request(s2, f.id, COWMAP_CMD_DISCARD, 0, attrs,
				  nlu_put_u64(attrs, COWMAP_A_SESSION_ID, id),
				  NULL, NULL, 30000) ? 1 : 0);
	}
	EXPECT_TRUE(wait_state_d(discarder, 5000))
		TH_LOG("the netlink DISCARD did not block");

	/* A new client: nlctrl's GETFAMILY, then cowmap's GET_STATS. */
	pr->ctrl_err = pr->stats_err = -ETIMEDOUT;
	t0 = now_ms();
	prober = fork();
	ASSERT_LE(0, prober);
	if (!prober) {
		uint8_t attrs[64];
		int s3 = nlu_socket();
		uint64_t t = now_ms();

		if (s3 < 0)
			_exit(2);
		pr->ctrl_err = nlu_request(s3, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0, attrs,
					   nlu_put(attrs, CTRL_ATTR_FAMILY_NAME, "nlctrl", 7),
					   NULL, NULL, 30000);
		pr->ctrl_ms = now_ms() - t;
		t = now_ms();
		pr->stats_err = nlu_request(s3, f.id, COWMAP_CMD_GET_STATS, 0, NULL, 0,
					    NULL, NULL, 30000);
		pr->stats_ms = now_ms() - t;
		_exit(0);
	}
	st = wait_for(prober, STALL_MS);
	probe_done = st >= 0;
	TH_LOG("probe %s after %llu ms (nlctrl %d in %llu ms, cowmap %d in %llu ms)",
	       probe_done ? "done" : "still waiting",
	       (unsigned long long)(now_ms() - t0), pr->ctrl_err,
	       (unsigned long long)pr->ctrl_ms, pr->stats_err,
	       (unsigned long long)pr->stats_ms);

	/* SIGKILL ends the DISCARD waiting for the session. */
	t0 = now_ms();
	kill(discarder, SIGKILL);
	st = wait_for(discarder, 2000);
	if (st >= 0)
		killed_ms = now_ms() - t0;
	TH_LOG("killed DISCARD %s", killed_ms >= 0 ? "exited" : "still waits");

	thaw(self);
	if (!probe_done)
		cm_wait(prober);
	if (killed_ms < 0)
		cm_wait(discarder);
	EXPECT_EQ(0, child_code_ok(drainer));
	EXPECT_TRUE(probe_done) TH_LOG("generic netlink stalled behind cowmap");
	EXPECT_EQ(0, pr->ctrl_err);
	EXPECT_EQ(0, pr->stats_err);
	EXPECT_LE(0, killed_ms) TH_LOG("a netlink DISCARD waiting for s->lock is not killable");
	munmap(m, NPAGES * PG);
	close(dev);
	close(sk);
	close(lfd);
	free(bp);
	free(lp);
}

/* ------------------------------------------------------------- dump -- */

#define MAX_IDS 256

struct dump_ctx {
	int n;
	uint64_t ids[MAX_IDS];
	size_t path_len[MAX_IDS];
};

static int dump_cb(const struct nlmsghdr *nh, void *arg)
{
	struct dump_ctx *c = arg;
	const uint8_t *p = (const uint8_t *)NLMSG_DATA(nh) + GENL_HDRLEN;
	const struct nlattr *n, *a;

	n = nlu_find(p, nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN), COWMAP_A_SESSION);
	if (!n || c->n == MAX_IDS)
		return 0;
	a = nlu_find((const uint8_t *)n + NLA_HDRLEN, n->nla_len - NLA_HDRLEN,
		     COWMAP_SESSION_A_ID);
	c->ids[c->n] = nlu_get_u64(a);
	a = nlu_find((const uint8_t *)n + NLA_HDRLEN, n->nla_len - NLA_HDRLEN,
		     COWMAP_SESSION_A_PATH);
	c->path_len[c->n] = a ? strnlen((const char *)a + NLA_HDRLEN,
					 a->nla_len - NLA_HDRLEN) : 0;
	c->n++;
	return 0;
}

/* Dump every session; -errno. */
static int dump_sessions(struct dump_ctx *c)
{
	struct nlu_family f;
	int sk = nlu_socket(), err;

	memset(c, 0, sizeof(*c));
	if (sk < 0)
		return sk;
	err = nlu_resolve(sk, &f);
	close(sk);
	if (err)
		return err;
	/*
	 * A fresh socket: its first dump chunk is built before any recvmsg()
	 * grew its allocation, at the default size (or min_dump_alloc).
	 */
	sk = nlu_socket();
	if (sk < 0)
		return sk;
	err = nlu_request(sk, f.id, COWMAP_CMD_GET_SESSION, NLM_F_DUMP, NULL, 0,
			  dump_cb, c, 10000);
	close(sk);
	return err;
}

static int dumped(const struct dump_ctx *c, uint64_t id)
{
	for (int i = 0; i < c->n; i++)
		if (c->ids[i] == id)
			return i;
	return -1;
}

/* dump_long_path: a session whose backing path is near PATH_MAX. */
TEST_F(nl, dump_long_path)
{
	struct dump_ctx *c = calloc(1, sizeof(*c));
	char comp[201], *path = calloc(1, PATH_MAX);
	size_t len;
	uint64_t id;
	int dev, i, fd;

	ASSERT_NE(NULL, c);
	ASSERT_NE(NULL, path);
	memset(comp, 'd', 200);
	comp[200] = 0;
	len = snprintf(path, PATH_MAX, "%s", self->dir);
	while (len + 1 + 200 + 1 + 200 < 4000) {
		len += snprintf(path + len, PATH_MAX - len, "/%s", comp);
		ASSERT_EQ(0, mkdir(path, 0755));
	}
	/* The file name takes the path to 4000 bytes. */
	path[len++] = '/';
	for (i = 0; len < 4000 && i < 250; i++)
		path[len++] = 'f';
	path[len] = 0;
	fd = cm_create(path, "0123456789abcdef", 16);
	ASSERT_LE(0, fd);
	close(fd);
	dev = open_session(path, -1, &id);
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, dump_sessions(c));
	i = dumped(c, id);
	ASSERT_LE(0, i) TH_LOG("session %llu not in the dump", (unsigned long long)id);
	EXPECT_EQ(len, c->path_len[i]);
	close(dev);
	free(path);
	free(c);
}

/*
 * dump_order: session A's bind stalls writing its log header (frozen
 * filesystem) after it got its id; session B binds meanwhile and joins the
 * list first.  A dump must list both.
 */
TEST_F_TIMEOUT(nl, dump_order, 120)
{
	struct dump_ctx *c = calloc(1, sizeof(*c));
	uint64_t *ida = cm_shared(sizeof(*ida));
	char *ap = make_file(self->dir, "a", PG), *bp = make_file(self->dir, "b", PG);
	char *lp = cm_path(self->dir, "alog");
	int lfd = open(lp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int go[2], devb, i;
	uint64_t idb;
	pid_t a;

	ASSERT_NE(NULL, c);
	ASSERT_NE(NULL, ida);
	ASSERT_NE(NULL, ap);
	ASSERT_NE(NULL, bp);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, pipe(go));
	*ida = 0;
	ASSERT_EQ(0, freeze(self));
	a = fork();
	ASSERT_LE(0, a);
	if (!a) {
		uint64_t id;
		char x;
		int dev;

		close(go[1]);
		dev = open_session(ap, lfd, &id);
		if (dev < 0)
			_exit(1);
		*ida = id;
		read(go[0], &x, 1);	/* until the parent's dump is done */
		_exit(0);
	}
	close(go[0]);
	EXPECT_TRUE(wait_state_d(a, 5000)) TH_LOG("A's bind did not block");
	devb = open_session(bp, -1, &idb);
	thaw(self);
	ASSERT_LE(0, devb);
	for (i = 0; i < 500 && !*ida; i++)
		usleep(10000);
	ASSERT_NE(0, *ida);
	TH_LOG("A: id %llu, B: id %llu", (unsigned long long)*ida,
	       (unsigned long long)idb);
	EXPECT_LT(*ida, idb);
	ASSERT_EQ(0, dump_sessions(c));
	EXPECT_LE(0, dumped(c, idb));
	EXPECT_LE(0, dumped(c, *ida)) TH_LOG("session A (stalled bind) skipped by the dump");
	close(go[1]);
	EXPECT_EQ(0, child_code_ok(a));
	close(devb);
	close(lfd);
	free(ap);
	free(bp);
	free(lp);
	free(c);
}

/* ------------------------------------------------------- dump_creds -- */

#define CRED_SESSIONS	8

/*
 * dump_creds: who may see which session is decided when a dump starts,
 * from the requester, not from whoever reads its later chunks.  A process
 * of uid 1000 (saved uid 0) binds CRED_SESSIONS sessions with ~3,600-byte
 * paths, so the dump needs several chunks; root then binds one; the
 * process asks for the dump as euid 1000 (the first chunk is built then),
 * becomes euid 0 again and reads the rest, as a setuid program handed the
 * socket would.  Only uid 1000's sessions may be listed, all of them.
 */
TEST_F(nl, dump_creds)
{
	struct { volatile int state; uint64_t root_id; int listed, mine, roots; } *sh;
	char comp[201], *dir = calloc(1, PATH_MAX), *bp;
	uint64_t rid;
	size_t len;
	pid_t pid;
	int dev;

	sh = cm_shared(sizeof(*sh));
	ASSERT_NE(NULL, sh);
	ASSERT_NE(NULL, dir);
	memset(comp, 'c', 200);
	comp[200] = 0;
	ASSERT_EQ(0, chmod(self->dir, 0755));	/* uid 1000 opens files below */
	len = snprintf(dir, PATH_MAX, "%s", self->dir);
	while (len + 1 + 200 < 3600) {
		len += snprintf(dir + len, PATH_MAX - len, "/%s", comp);
		ASSERT_EQ(0, mkdir(dir, 0755));
	}
	for (int i = 0; i < CRED_SESSIONS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "file%d", i);
		bp = make_file(dir, name, 64);
		ASSERT_NE(NULL, bp);
		ASSERT_EQ(0, chmod(bp, 0644));
		free(bp);
	}
	bp = make_file(self->dir, "root-file", 64);
	ASSERT_NE(NULL, bp);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		uint8_t buf[65536] __attribute__((aligned(8)));
		struct nlu_family f;
		int devs[CRED_SESSIONS], sk, done = 0;
		uint8_t req[NLMSG_LENGTH(GENL_HDRLEN)] __attribute__((aligned(8))) = { 0 };
		struct nlmsghdr *nh = (struct nlmsghdr *)req;
		struct genlmsghdr *gh = NLMSG_DATA(nh);

		if (setgroups(0, NULL) || setresgid(1000, 1000, 0) ||
		    setresuid(1000, 1000, 0))
			_exit(126);
		prctl(PR_SET_DUMPABLE, 1);
		for (int i = 0; i < CRED_SESSIONS; i++) {
			char *p, name[32];

			snprintf(name, sizeof(name), "file%d", i);
			p = cm_path(dir, name);
			devs[i] = open_session(p, -1, NULL);
			free(p);
			if (devs[i] < 0)
				_exit(2);
		}
		sh->state = 1;
		while (sh->state < 2)
			usleep(1000);
		/* Opened and asked as euid 1000, without capabilities. */
		sk = nlu_socket();
		if (sk < 0 || nlu_resolve(sk, &f))
			_exit(3);
		close(sk);
		sk = nlu_socket();
		if (sk < 0)
			_exit(3);
		nh->nlmsg_len = sizeof(req);
		nh->nlmsg_type = f.id;
		nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		nh->nlmsg_seq = 77;
		gh->cmd = COWMAP_CMD_GET_SESSION;
		gh->version = 1;
		if (nlu_send(sk, req, sizeof(req)))
			_exit(4);
		/* The reader of the later chunks is euid 0. */
		if (setresuid(-1, 0, -1))
			_exit(5);
		while (!done) {
			ssize_t n = recv(sk, buf, sizeof(buf), 0);
			size_t left;

			if (n <= 0)
				_exit(6);
			left = n;
			for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, left);
			     nh = NLMSG_NEXT(nh, left)) {
				const uint8_t *p = (const uint8_t *)NLMSG_DATA(nh) + GENL_HDRLEN;
				const struct nlattr *nest, *a;
				uint32_t uid = 0;

				if (nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR) {
					done = 1;
					break;
				}
				nest = nlu_find(p, nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN),
						COWMAP_A_SESSION);
				if (!nest)
					continue;
				a = nlu_find((const uint8_t *)nest + NLA_HDRLEN,
					     nest->nla_len - NLA_HDRLEN, COWMAP_SESSION_A_UID);
				if (a && a->nla_len >= NLA_HDRLEN + 4)
					memcpy(&uid, (const uint8_t *)a + NLA_HDRLEN, 4);
				sh->listed++;
				if (uid == 1000)
					sh->mine++;
				else
					sh->roots++;
			}
		}
		for (int i = 0; i < CRED_SESSIONS; i++)
			close(devs[i]);
		_exit(0);
	}
	while (sh->state < 1 && !waitpid(pid, NULL, WNOHANG))
		usleep(1000);
	ASSERT_EQ(1, sh->state) TH_LOG("uid 1000 could not bind its sessions");
	dev = open_session(bp, -1, &rid);
	ASSERT_LE(0, dev);
	sh->root_id = rid;
	sh->state = 2;
	EXPECT_EQ(0, child_code_ok(pid));
	TH_LOG("dump asked as uid 1000, read as euid 0: %d sessions, %d of uid 1000, %d of others",
	       sh->listed, sh->mine, sh->roots);
	EXPECT_EQ(0, sh->roots) TH_LOG("root's sessions listed to a uid 1000 dump");
	EXPECT_EQ(CRED_SESSIONS, sh->mine);
	close(dev);
	free(bp);
	free(dir);
	munmap(sh, sizeof(*sh));
}

/* ------------------------------------------------------ header_race -- */

struct racer {
	pthread_barrier_t *bar;
	int dev, log_fd, err;
};

static void *race_drain(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->bar);
	r->err = cm_drain(r->dev, r->log_fd, NULL);
	return NULL;
}

/* header_race: two sessions DRAIN_FD into one empty file at once. */
TEST_F_TIMEOUT(nl, header_race, 300)
{
	char *bp = make_file(self->dir, "backing", PG);
	char *lp = cm_path(self->dir, "log");
	pthread_barrier_t bar;
	struct racer r[2];
	int both = 0, neither = 0, other = 0, iters = 200;
	uint64_t id[2];

	ASSERT_NE(NULL, bp);
	ASSERT_EQ(0, pthread_barrier_init(&bar, NULL, 2));
	for (int k = 0; k < 2; k++) {
		r[k].bar = &bar;
		r[k].dev = open_session(bp, -1, &id[k]);
		ASSERT_LE(0, r[k].dev);
	}
	for (int i = 0; i < iters; i++) {
		int fd = open(lp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		pthread_t t[2];
		struct cowmap_log_header h;
		int ok;

		ASSERT_LE(0, fd);
		for (int k = 0; k < 2; k++) {
			r[k].log_fd = fd;
			ASSERT_EQ(0, pthread_create(&t[k], NULL, race_drain, &r[k]));
		}
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		ok = !r[0].err + !r[1].err;
		if (ok == 2)
			both++;
		else if (!ok)
			neither++;
		else if (r[0].err + r[1].err != -ENOTEMPTY)
			other++;
		if (ok == 1) {
			/* One header, the winner's, and nothing else. */
			ASSERT_EQ(0, cm_read_all(fd, &h, sizeof(h), 0));
			EXPECT_EQ(id[r[0].err ? 1 : 0], le64toh(h.session_id));
			EXPECT_EQ(le32toh(h.header_len), cm_fsize(fd));
		}
		close(fd);
		unlink(lp);
	}
	TH_LOG("%d runs: both succeeded %d, neither %d, other errors %d",
	       iters, both, neither, other);
	EXPECT_EQ(0, both);
	EXPECT_EQ(0, neither);
	EXPECT_EQ(0, other);
	close(r[0].dev);
	close(r[1].dev);
	pthread_barrier_destroy(&bar);
	free(bp);
	free(lp);
}

/* ------------------------------------------------------- ioctl_tail -- */

/* ioctl_tail: VERSION and INFO zero the tail of a larger structure. */
TEST_F(nl, ioctl_tail)
{
	uint8_t buf[sizeof(struct cowmap_info) + 64];
	char *bp = make_file(self->dir, "backing", PG);
	size_t vs = sizeof(struct cowmap_version), is = sizeof(struct cowmap_info), i;
	int dev;

	ASSERT_NE(NULL, bp);
	dev = open_session(bp, -1, NULL);
	ASSERT_LE(0, dev);
	memset(buf, 0xff, sizeof(buf));
	ASSERT_EQ(0, cm_ioctl(dev, _IOC(_IOC_READ, COWMAP_IOC_MAGIC, 0, vs + 64), buf));
	for (i = vs; i < vs + 64; i++) {
		ASSERT_EQ(0, buf[i]) TH_LOG("VERSION: byte %zu of the tail not zeroed", i - vs);
	}
	memset(buf, 0xff, sizeof(buf));
	ASSERT_EQ(0, cm_ioctl(dev, _IOC(_IOC_READ, COWMAP_IOC_MAGIC,
					_IOC_NR(COWMAP_IOC_INFO), is + 64), buf));
	for (i = is; i < is + 64; i++) {
		ASSERT_EQ(0, buf[i]) TH_LOG("INFO: byte %zu of the tail not zeroed", i - is);
	}
	close(dev);
	free(bp);
}

TEST_HARNESS_MAIN
