// SPDX-License-Identifier: GPL-2.0
/*
 * Memory limits:
 *  - a session used inside a memory cgroup (v2) with a small memory.max:
 *    its private pages are charged there (__GFP_ACCOUNT), so its writes
 *    fail inside that cgroup (SIGBUS, or the cgroup's OOM killer kills the
 *    writer) while the rest of the system goes on; nothing it wrote before
 *    is lost (the kernel's final drain on exit puts every written page in
 *    the bound log) and the charge goes away with the session;
 *  - the caps (max_session_pages, max_total_pages): the first write beyond
 *    gets SIGBUS, a COWMAP_EVENT_CAP event and a CAP_REACHED notification
 *    on the "events" multicast group; other sessions are unaffected.
 *
 * The cgroup's OOM report carries a stack dump ("Call Trace:"), which the
 * VM runner would take for a kernel error.  While the OOM may happen the
 * test marks the window in the kernel log ("cowmap-selftest: OOM expected"
 * ... "OOM window closed"); there the runner's console scan accepts the
 * "Call Trace:" line of an OOM report (within 8 lines of its "invoked
 * oom-killer") and nothing else.  The console log level is left alone:
 * every level reaches the console.  The test also reads /dev/kmsg itself
 * over that window: any other line that looks like a kernel error fails it.
 *
 * The caps test restores the module parameters in the teardown, whatever
 * happened to the test.
 */
#include <stddef.h>
#include <regex.h>
#include <sys/mount.h>

#include "cowmap_harness.h"
#include "lib/util.h"
#include "lib/nl.h"

#define CG_ROOT		"/sys/fs/cgroup"
#define FILE_PAGES	8192		/* 32 MiB backing file */
#define LIMIT		(12UL << 20)	/* memory.max of the test cgroup */

/*
 * The headlines of kernel error reports, as the VM runner's console scan
 * (KERNEL_ERROR_RE in selftests/vm/lib.sh) knows them: phrases, not bare
 * words, so that a frame of the OOM report's own stack dump (on a lockdep
 * kernel, "? lockdep_hardirqs_on_prepare+0x273/0x3e0") is not one.
 */
static const char kernel_error_re[] =
	"-----------\\[ cut here \\]|WARNING:|BUG:|Oops|general protection fault|"
	"Kernel panic|kernel BUG at|KASAN|UBSAN|Call Trace|possible circular locking|"
	"possible recursive locking|inconsistent lock state|suspicious RCU usage|"
	"bad unlock balance|held lock freed|lockdep is turned off|list_add corruption|"
	"list_del corruption|refcount_t:|Unable to handle|invalid opcode";

FIXTURE(memcg) {
	char *dir;
	char *backing;
	char cg[128];
	int cg_made;
	int kmsg;
	bool params_saved;
	char saved_s[64], saved_t[64];	/* max_session_pages, max_total_pages */
};

static long cg_value(const char *cg, const char *file, const char *key)
{
	char path[256], buf[4096], *p;

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	if (cm_read_text(path, buf, sizeof(buf)))
		return -1;
	if (!key)
		return strtol(buf, NULL, 0);
	p = strstr(buf, key);
	return p ? strtol(p + strlen(key), NULL, 0) : -1;
}

FIXTURE_SETUP(memcg)
{
	const char *scratch;
	char path[256], buf[256];
	int fd;

	self->dir = NULL;
	self->cg_made = 0;
	self->kmsg = -1;
	self->params_saved = false;
	CM_SKIP_IF_NO_DEVICE();
	CM_SETUP_SCRATCH(scratch);
	if (access(CG_ROOT "/cgroup.controllers", F_OK) &&
	    mount("cgroup2", CG_ROOT, "cgroup2", 0, NULL))
		CM_SETUP_SKIP("cannot mount cgroup2 on " CG_ROOT ": %s", strerror(errno));
	if (cm_read_text(CG_ROOT "/cgroup.controllers", buf, sizeof(buf)) || !strstr(buf, "memory"))
		CM_SETUP_SKIP("no memory controller in cgroup v2");
	cm_write_text(CG_ROOT "/cgroup.subtree_control", "+memory");
	snprintf(self->cg, sizeof(self->cg), CG_ROOT "/cowmap-test-%d", getpid());
	ASSERT_EQ(0, mkdir(self->cg, 0755)) TH_LOG("%s: %s", self->cg, strerror(errno));
	self->cg_made = 1;
	snprintf(path, sizeof(path), "%s/memory.max", self->cg);
	if (access(path, F_OK))
		CM_SETUP_SKIP("memory controller not enabled for %s", self->cg);

	self->dir = cm_mkdtemp(scratch, "memcg");
	ASSERT_NE(NULL, self->dir);
	self->backing = cm_path(self->dir, "backing");
	fd = open(self->backing, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, PGS(FILE_PAGES)));
	close(fd);
}

FIXTURE_TEARDOWN(memcg)
{
	if (self->params_saved) {
		EXPECT_EQ(0, cm_param_write("max_session_pages", self->saved_s));
		EXPECT_EQ(0, cm_param_write("max_total_pages", self->saved_t));
	}
	if (self->kmsg >= 0) {
		close(self->kmsg);
		cm_write_text("/dev/kmsg", "<2>cowmap-selftest: OOM window closed\n");
	}
	if (self->cg_made)
		rmdir(self->cg);
	if (self->dir)
		cm_rm_rf(self->dir);
	free(self->dir);
}

/* Join @cg (the calling process). */
static int cg_join(const char *cg)
{
	char path[256], pid[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return cm_write_text(path, pid);
}

/* Open the OOM window: read /dev/kmsg from here, mark the console. */
static void oom_window_open(struct __test_metadata *_metadata, FIXTURE_DATA(memcg) *self)
{
	self->kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, self->kmsg) TH_LOG("/dev/kmsg: %s", strerror(errno));
	lseek(self->kmsg, 0, SEEK_END);
	cm_write_text("/dev/kmsg", "<2>cowmap-selftest: OOM expected\n");
}

/*
 * Close the OOM window; returns the number of kernel error lines logged
 * meanwhile (printed), the "Call Trace:" of an OOM report (within 8 records
 * of its "invoked oom-killer") excepted, and counts the OOM kills.
 */
static int oom_window_close(FIXTURE_DATA(memcg) *self, int *ooms)
{
	char rec[2048];
	regex_t re;
	int since_oom = -1, bad = 0;
	ssize_t n;

	*ooms = 0;
	if (self->kmsg < 0)
		return 1;
	regcomp(&re, kernel_error_re, REG_EXTENDED | REG_NOSUB);
	while ((n = read(self->kmsg, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		char *msg;

		if (n < 0)
			continue;
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		if (since_oom >= 0)
			since_oom++;
		if (strstr(msg, "invoked oom-killer"))
			since_oom = 0;
		*ooms += !!strstr(msg, "Killed process");
		if (since_oom >= 0 && since_oom <= 8 && !strncmp(msg, "Call Trace:", 11))
			continue;
		if (!regexec(&re, msg, 0, NULL, 0)) {
			bad++;
			printf("# kernel: %s", msg);
			fflush(stdout);
		}
	}
	regfree(&re);
	close(self->kmsg);
	self->kmsg = -1;
	cm_write_text("/dev/kmsg", "<2>cowmap-selftest: OOM window closed\n");
	return bad;
}

struct progress {
	volatile uint64_t written;	/* pages whose write completed */
	volatile int sigbus;
	volatile uint64_t id;
};

static sigjmp_buf bus_jb;

static void on_bus(int sig)
{
	siglongjmp(bus_jb, sig);
}

/* Write one byte into pages [0, n) through @m; stops at the first SIGBUS. */
static void write_pages(uint8_t *m, uint64_t n, struct progress *pr)
{
	static volatile uint64_t i;
	struct sigaction sa = { .sa_handler = on_bus, .sa_flags = SA_NODEFER };

	sigaction(SIGBUS, &sa, NULL);
	if (sigsetjmp(bus_jb, 1)) {
		pr->sigbus = 1;
		return;
	}
	for (i = pr->written; i < n; i++) {
		m[PGS(i) + (i % 4000)] = (uint8_t)((i * 7) | 1);	/* never 0: the file's byte */
		pr->written = i + 1;
	}
}

/* Wait until session @id is gone (final drain done); 1 if it went. */
static int wait_gone(uint64_t id)
{
	struct nlu_family f;
	int sk = nlu_socket(), i, r = 0;

	if (sk < 0 || nlu_resolve(sk, &f))
		return 0;
	for (i = 0; i < 600; i++) {
		if (nlu_session_exists(sk, &f, id) == 0) {
			r = 1;
			break;
		}
		usleep(50000);
	}
	close(sk);
	return r;
}

/* The rest of the system is unaffected: a session outside the cgroup works. */
static void outside_session_works(struct __test_metadata *_metadata, const char *backing)
{
	int bfd = open(backing, O_RDONLY | O_CLOEXEC), dev;
	struct cowmap_info in;
	uint8_t *m;
	uint64_t i;

	dev = cm_session(bfd, -1, 0);
	ASSERT_LE(0, dev);
	m = cm_map(dev, 0, PGS(2048), PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	for (i = 0; i < 2048; i++)
		m[PGS(i)] = 1;
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(2048, in.private_pages);
	munmap(m, PGS(2048));
	close(dev);
	close(bfd);
}

TEST_F_TIMEOUT(memcg, writes_fail_inside_the_cgroup, 600)
{
	struct progress *pr = mmap(NULL, PG, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char lim[32], *lp = cm_path(self->dir, "memcg.log");
	uint64_t i, found = 0, bad_bytes = 0;
	uint8_t *log, *seen;
	int st, ooms = 0, errs, dev, k;
	size_t len, pos;
	struct cm_rec r;
	char why[64];
	long oom_kill, current;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, pr);
	snprintf(lim, sizeof(lim), "%lu", LIMIT);
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/memory.max", self->cg);
		ASSERT_EQ(0, cm_write_text(path, lim));
		snprintf(path, sizeof(path), "%s/memory.swap.max", self->cg);
		cm_write_text(path, "0");
	}
	oom_window_open(_metadata, self);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct cowmap_bind b = { .flags = COWMAP_BIND_LOG };
		uint8_t *m;

		if (cg_join(self->cg))
			_exit(10);
		b.fd = open(self->backing, O_RDONLY | O_CLOEXEC);
		b.log_fd = open(lp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		dev = cm_open_dev();
		if (b.fd < 0 || b.log_fd < 0 || dev < 0 || ioctl(dev, COWMAP_IOC_BIND, &b))
			_exit(11);
		pr->id = b.id;
		m = cm_map(dev, 0, PGS(FILE_PAGES), PROT_READ | PROT_WRITE);
		if (m == MAP_FAILED)
			_exit(12);
		write_pages(m, FILE_PAGES, pr);
		_exit(pr->sigbus ? 20 : 21);
	}
	st = cm_wait(pid);
	ASSERT_NE(0, pr->id);
	/* The session (and its final drain) outlives the killed writer only briefly. */
	EXPECT_TRUE(wait_gone(pr->id));
	errs = oom_window_close(self, &ooms);
	oom_kill = cg_value(self->cg, "memory.events", "oom_kill ");
	printf("# writer in a %lu MiB cgroup: %llu pages written, then %s (status %#x); cgroup oom_kill %ld, OOM reports %d\n",
	       LIMIT >> 20, (unsigned long long)pr->written,
	       WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) :
	       WEXITSTATUS(st) == 20 ? "SIGBUS" : "exit", st, oom_kill, ooms);
	fflush(stdout);
	EXPECT_EQ(0, errs) TH_LOG("kernel errors besides the OOM report");
	/* Its writes failed inside the cgroup: SIGBUS or the cgroup's OOM kill. */
	EXPECT_TRUE((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && oom_kill > 0) ||
		    (WIFEXITED(st) && WEXITSTATUS(st) == 20));
	EXPECT_LT(pr->written, FILE_PAGES);
	/* It got somewhere: a few MiB of private pages were charged first. */
	EXPECT_LT(64, pr->written);

	/* Nothing written is lost: the final drain logged every page. */
	log = cm_slurp(lp, &len);
	ASSERT_NE(NULL, log);
	seen = calloc(FILE_PAGES, 1);
	pos = le32toh(((struct cowmap_log_header *)log)->header_len);
	while ((k = cm_rec_next(log, len, &pos, &r, why)) == 1) {
		i = r.offset / PG;
		if (i < FILE_PAGES && r.offset % PG == i % 4000 && r.length == 1) {
			seen[i] = 1;
			if (r.new[0] != (uint8_t)((i * 7) | 1))
				bad_bytes++;
		}
	}
	EXPECT_EQ(0, k) TH_LOG("log: %s", why);
	for (i = 0; i < pr->written; i++)
		found += seen[i];
	printf("# final drain: %llu of %llu written pages in the log\n",
	       (unsigned long long)found, (unsigned long long)pr->written);
	fflush(stdout);
	EXPECT_EQ(pr->written, found);
	EXPECT_EQ(0, bad_bytes);
	free(seen);
	free(log);

	/* The charge went with the session (page cache dropped first). */
	sync();
	cm_write_text("/proc/sys/vm/drop_caches", "3");
	for (k = 0; k < 50; k++) {
		current = cg_value(self->cg, "memory.current", NULL);
		if (current >= 0 && current < (2 << 20))
			break;
		usleep(100000);
	}
	printf("# cgroup memory.current after the session ended: %ld bytes\n", current);
	fflush(stdout);
	EXPECT_GT(2 << 20, current) TH_LOG("charge left behind");
	outside_session_works(_metadata, self->backing);
	free(lp);
}

/* Wait for a CAP_REACHED notification of session @id. */
static int wait_cap(int sk, uint16_t fam, uint64_t id, uint64_t *offset)
{
	uint8_t buf[8192] __attribute__((aligned(8)));
	int tries;

	for (tries = 0; tries < 50; tries++) {
		struct pollfd pfd = { .fd = sk, .events = POLLIN };
		struct nlmsghdr *nh;
		ssize_t n;
		size_t left;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recv(sk, buf, sizeof(buf), 0);
		if (n <= 0)
			continue;
		left = n;
		for (nh = (void *)buf; NLMSG_OK(nh, left); nh = NLMSG_NEXT(nh, left)) {
			struct genlmsghdr *gh = NLMSG_DATA(nh);
			const uint8_t *p = (const uint8_t *)gh + GENL_HDRLEN;
			size_t al = nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);

			if (nh->nlmsg_type != fam || gh->cmd != COWMAP_CMD_CAP_REACHED)
				continue;
			if (nlu_get_u64(nlu_find(p, al, COWMAP_A_SESSION_ID)) != id)
				continue;
			*offset = nlu_get_u64(nlu_find(p, al, COWMAP_A_OFFSET));
			return 1;
		}
	}
	return 0;
}

TEST_F_TIMEOUT(memcg, caps_sigbus_and_netlink, 300)
{
	struct progress *pr = mmap(NULL, PG, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char saved_s[64], saved_t[64];
	struct nlu_family f;
	struct cowmap_event ev[64];
	struct cowmap_info in;
	uint64_t off = ~0ULL, total;
	int sk, dev, dev2, bfd, n, k, caps = 0;
	uint8_t *m, *m2;
	char path[256];

	ASSERT_NE(MAP_FAILED, pr);
	ASSERT_EQ(0, cm_param_read("max_session_pages", saved_s, sizeof(saved_s)));
	ASSERT_EQ(0, cm_param_read("max_total_pages", saved_t, sizeof(saved_t)));
	/* The teardown puts them back, even after a failed ASSERT here. */
	memcpy(self->saved_s, saved_s, sizeof(saved_s));
	memcpy(self->saved_t, saved_t, sizeof(saved_t));
	self->params_saved = true;
	sk = nlu_socket();
	ASSERT_LE(0, sk);
	ASSERT_EQ(0, nlu_resolve(sk, &f));
	ASSERT_NE(0, f.events_grp);
	ASSERT_EQ(0, nlu_subscribe(sk, f.events_grp));
	snprintf(path, sizeof(path), "%s/memory.max", self->cg);
	ASSERT_EQ(0, cm_write_text(path, "67108864"));

	/* Per-session cap: 16 pages. */
	ASSERT_EQ(0, cm_param_write_u64("max_session_pages", 16));
	bfd = open(self->backing, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, bfd);
	dev = cm_session(bfd, -1, 64);
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, cm_info(dev, &in));
	pr->id = in.id;
	if (fork() == 0) {
		if (cg_join(self->cg))
			_exit(10);
		m = cm_map(dev, 0, PGS(64), PROT_READ | PROT_WRITE);
		if (m == MAP_FAILED)
			_exit(11);
		write_pages(m, 64, pr);
		_exit(pr->sigbus ? 0 : 1);
	}
	EXPECT_EQ(0, cm_wait(-1) & 0xffff);
	EXPECT_EQ(1, pr->sigbus);
	EXPECT_EQ(16, pr->written);
	EXPECT_EQ(1, wait_cap(sk, f.id, pr->id, &off)) TH_LOG("no CAP_REACHED notification");
	EXPECT_EQ(PGS(16), off);
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(16, in.private_pages);
	cm_set_nonblock(dev, true);
	n = cm_events(dev, ev, 64);
	for (k = 0; k < n; k++)
		if (ev[k].type == COWMAP_EVENT_CAP && ev[k].offset == PGS(16))
			caps++;
	EXPECT_EQ(1, caps) TH_LOG("%d events", n);

	/* Another session is not held back by this one's cap. */
	dev2 = cm_session(bfd, -1, 0);
	ASSERT_LE(0, dev2);
	m2 = cm_map(dev2, 0, PGS(16), PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m2);
	memset(pr, 0, sizeof(*pr));
	write_pages(m2, 16, pr);
	EXPECT_EQ(0, pr->sigbus);
	munmap(m2, PGS(16));
	close(dev2);

	/* Global cap: what exists now plus 4. */
	ASSERT_EQ(0, cm_param_write("max_session_pages", "0"));
	ASSERT_EQ(0, nlu_get_u64_attr(sk, &f, COWMAP_CMD_GET_STATS, COWMAP_A_STATS,
				      COWMAP_STATS_A_PRIVATE_PAGES, &total));
	ASSERT_EQ(0, cm_param_write_u64("max_total_pages", total + 4));
	memset(pr, 0, sizeof(*pr));
	pr->written = 16;
	pr->id = in.id;
	m = cm_map(dev, 0, PGS(64), PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	write_pages(m, 64, pr);
	EXPECT_EQ(1, pr->sigbus);
	EXPECT_EQ(20, pr->written);
	EXPECT_EQ(1, wait_cap(sk, f.id, in.id, &off));
	EXPECT_EQ(PGS(20), off);
	munmap(m, PGS(64));

	EXPECT_EQ(0, cm_param_write("max_session_pages", saved_s));
	EXPECT_EQ(0, cm_param_write("max_total_pages", saved_t));
	printf("# caps: per-session cap hit at page 16, global cap at page 20; SIGBUS, CAP event and CAP_REACHED notification each time\n");
	fflush(stdout);
	close(dev);
	close(bfd);
	close(sk);
}

TEST_HARNESS_MAIN
