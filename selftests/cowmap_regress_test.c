// SPDX-License-Identifier: GPL-2.0
/*
 * Regression tests for bugs the robustness tests (stress, fuzz, fault
 * injection) found, each reduced to a deterministic reproduction.
 *
 * drain_enospc / drain_killed: a drain whose write to the log fails part
 * way (ENOSPC; a fatal signal cutting kernel_write() short) must not leave
 * a partial batch in the log: the next drain, or the kernel's final drain,
 * appends after it, and a log with a bad record in the middle is invalid
 * as a whole (uapi/linux/cowmap.h, "Log files"), so every change in it is
 * lost to merge.  "A failed drain loses nothing" requires the log to end
 * at its last whole record after a failure.
 *
 * drain_cut_fails: the same with the cut-off itself failing (see there).
 */
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <linux/fs.h>

#include "cowmap_harness.h"
#include "lib/util.h"

#define NPAGES	64

/* Set or clear the append-only attribute of @fd (chattr +a / -a). */
static int set_append_only(int fd, int on)
{
	int flags;

	if (ioctl(fd, FS_IOC_GETFLAGS, &flags))
		return -errno;
	flags = on ? flags | FS_APPEND_FL : flags & ~FS_APPEND_FL;
	return ioctl(fd, FS_IOC_SETFLAGS, &flags) ? -errno : 0;
}

FIXTURE(regress) {
	char *dir;
	char *backing;
	char small[256];
	int small_mounted;
	const char *append_only;	/* a file to chattr -a in teardown */
	uint8_t data[PGS(NPAGES)];
};

FIXTURE_SETUP(regress)
{
	const char *scratch;
	int fd;

	self->dir = NULL;
	self->small_mounted = 0;
	self->append_only = NULL;
	CM_SKIP_IF_NO_DEVICE();
	CM_SETUP_SCRATCH_DIR(scratch, self->dir, "regress");
	self->backing = cm_path(self->dir, "backing");
	cm_fill(3, self->data, sizeof(self->data));
	fd = cm_create(self->backing, self->data, sizeof(self->data));
	ASSERT_LE(0, fd);
	close(fd);
}

FIXTURE_TEARDOWN(regress)
{
	if (self->small_mounted)
		umount2(self->small, MNT_DETACH);
	if (self->append_only) {
		int fd = open(self->append_only, O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			set_append_only(fd, 0);
			close(fd);
		}
	}
	if (self->dir)
		cm_rm_rf(self->dir);
	free(self->dir);
}

/*
 * Replay records (a log's after its header, or DIFF's) onto @img (NPAGES
 * pages): each one's old bytes must be what @img holds.  @seq: the first
 * record's number, counted on (NULL: not checked).  A torn tail is allowed
 * if @torn_ok; *@end says where the whole records end.  Returns the number
 * of records, or -1 with the reason in @why (128 bytes).
 */
static long replay(const uint8_t *buf, size_t len, uint8_t *img, uint64_t *seq,
		   int torn_ok, size_t *end, char *why)
{
	size_t pos = 0;
	struct cm_rec r;
	long n = 0;
	char w[64];
	int k;

	while ((k = cm_rec_next(buf, len, &pos, &r, w)) == 1) {
		if (seq && r.seq != (*seq)++) {
			snprintf(why, 128, "record %ld has seq %llu", n,
				 (unsigned long long)r.seq);
			return -1;
		}
		if (r.offset + r.length > PGS(NPAGES) ||
		    memcmp(img + r.offset, r.old, r.length)) {
			snprintf(why, 128, "record %ld at %#llx+%u does not chain", n,
				 (unsigned long long)r.offset, r.length);
			return -1;
		}
		memcpy(img + r.offset, r.new, r.length);
		n++;
	}
	*end = pos;
	if (k < 0 && !(torn_ok && cm_rec_torn(buf, len, pos))) {
		snprintf(why, 128, "after %ld good records, at byte %zu of %zu: %.40s",
			 n, pos, len, w);
		return -1;
	}
	return n;
}

/*
 * Replay the log at @path onto a copy of @base into @img (NPAGES pages).
 * Returns the records replayed, or -1 with the reason in @why (128 bytes).
 * *@torn: bytes of torn tail after them (NULL: none allowed).
 */
static long replay_log(const char *path, const uint8_t *base, uint8_t *img,
		       size_t *torn, char *why)
{
	uint8_t *log;
	size_t len, hl, end;
	uint64_t seq = 0;
	long n;

	memcpy(img, base, PGS(NPAGES));
	log = cm_slurp(path, &len);
	if (!log || len < sizeof(struct cowmap_log_header)) {
		snprintf(why, 128, "no log");
		free(log);
		return -1;
	}
	hl = le32toh(((struct cowmap_log_header *)log)->header_len);
	n = hl <= len ? replay(log + hl, len - hl, img, &seq, !!torn, &end, why) : -1;
	if (hl > len)
		snprintf(why, 128, "header length %zu of %zu bytes", hl, len);
	if (n >= 0 && torn)
		*torn = len - hl - end;
	free(log);
	return n;
}

/*
 * Check a log: header, then whole records with seq 0, 1, 2...; replaying
 * them onto @base (NPAGES pages) must give @want.  Returns 0, or -1 with
 * the reason in @why (128 bytes).
 */
static int check_log(const char *path, const uint8_t *base, const uint8_t *want,
		     char *why)
{
	uint8_t *img = malloc(PGS(NPAGES));
	long n = replay_log(path, base, img, NULL, why);

	if (n >= 0 && memcmp(img, want, PGS(NPAGES))) {
		snprintf(why, 128, "%ld records do not give what the test wrote", n);
		n = -1;
	}
	free(img);
	return n < 0 ? -1 : 0;
}

/* Unmap and close what a test opened: mapping, session, log, backing file. */
static void close_session(uint8_t *m, int dev, int lfd, int bfd)
{
	munmap(m, PGS(NPAGES));
	close(dev);
	close(lfd);
	close(bfd);
}

TEST_F(regress, drain_enospc)
{
	uint8_t *m, *want = malloc(PGS(NPAGES));
	struct cowmap_drain d;
	char *lp, why[128];
	int bfd, lfd, dev, err;

	/* The log lives on a 128 KiB tmpfs: the drain (~520 KiB) hits ENOSPC. */
	snprintf(self->small, sizeof(self->small), "%s/small", self->dir);
	ASSERT_EQ(0, mkdir(self->small, 0700));
	ASSERT_EQ(0, mount("tmpfs", self->small, "tmpfs", 0, "size=128k"))
		TH_LOG("mount tmpfs: %s", strerror(errno));
	self->small_mounted = 1;
	lp = cm_path(self->small, "log");
	lfd = open(lp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, lfd);
	bfd = open(self->backing, O_RDONLY | O_CLOEXEC);
	dev = cm_session(bfd, lfd, 0);
	ASSERT_LE(0, dev);
	m = cm_map(dev, 0, PGS(NPAGES), PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	cm_fill(99, m, PGS(NPAGES));	/* every byte of every page changes */
	cm_fill(99, want, PGS(NPAGES));	/* what the log must give */
	ASSERT_EQ(0, memcmp(m, want, PGS(NPAGES)));

	err = cm_drain(dev, -1, &d);
	EXPECT_EQ(-ENOSPC, err);
	/* Room again: the next drain must complete the log. */
	ASSERT_EQ(0, mount(NULL, self->small, NULL, MS_REMOUNT, "size=8m"));
	err = cm_drain(dev, -1, &d);
	EXPECT_EQ(0, err) TH_LOG("second drain: %s", strerror(-err));
	EXPECT_EQ(0, check_log(lp, self->data, want, why)) TH_LOG("%s", why);

	close_session(m, dev, lfd, bfd);
	free(lp);
	free(want);
}

/*
 * drain_killed: a child rewrites all NPAGES pages with generation g of a
 * pattern (cm_fill(dk_seed(round, g))), drains, and goes on with g + 1
 * until it is killed.  It says where it is in shared memory (generation,
 * filling or draining) before each step, so the test knows which writes
 * were made and how far: a kill while filling leaves bytes [0, X) of
 * generation g over generation g - 1 (the file itself for g = 0), a kill
 * while draining leaves generation g whole.  That is what the log, replayed
 * over the file after the final drain, must give: nothing taken from the
 * session's view.
 *
 * Half the rounds keep the session open in the test process, so the final
 * drain waits for its close: the log as the killed drain left it is then
 * checked (whole records of a prefix of the drains' pages, no torn tail)
 * and counts as a kill inside a drain when it holds fewer records than the
 * drains started (every page changes, one record each).  The other half
 * let the final drain run when the child dies, after a cut drain.  A run
 * in which no kill landed inside a drain fails: it proved nothing.
 */
enum { DK_FILL = 1, DK_DRAIN = 2 };

/* Where the child is, in one word: generation * 4 + DK_FILL or DK_DRAIN. */
#define DK_GEN(state)	((state) / 4)
#define DK_PHASE(state)	((state) % 4)

static uint64_t dk_seed(int round, int gen)
{
	return ((uint64_t)(round + 1) << 32) + gen + 1;
}

/* Generation @gen of round @round into @buf (-1: the file's contents). */
static void dk_gen(const uint8_t *file, int round, int gen, uint8_t *buf)
{
	if (gen < 0)
		memcpy(buf, file, PGS(NPAGES));
	else
		cm_fill(dk_seed(round, gen), buf, PGS(NPAGES));
}

/*
 * Is @img bytes [0, X) of @new and [X, end) of @old, for some X?  Returns
 * -1 if so, else the first byte that is neither (and breaks the prefix).
 */
static long dk_prefix_of(const uint8_t *img, const uint8_t *new, const uint8_t *old)
{
	size_t i = 0;

	while (i < PGS(NPAGES) && img[i] == new[i])
		i++;
	for (; i < PGS(NPAGES); i++)
		if (img[i] != old[i])
			return i;
	return -1;
}

/* Has child @pid exited (without being reaped)? */
static bool dk_died(pid_t pid)
{
	siginfo_t si = { 0 };

	return !waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid == pid;
}

static void dk_child(FIXTURE_DATA(regress) *self, int round, int dev,
		     const char *lp, volatile int *st)
{
	uint8_t *m;
	int bfd, lfd;

	if (dev < 0) {
		bfd = open(self->backing, O_RDONLY | O_CLOEXEC);
		lfd = open(lp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		dev = cm_session(bfd, lfd, 0);
	}
	m = cm_map(dev, 0, PGS(NPAGES), PROT_READ | PROT_WRITE);
	if (m == MAP_FAILED)
		_exit(1);
	for (int g = 0;; g++) {
		*st = g * 4 + DK_FILL;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		cm_fill(dk_seed(round, g), m, PGS(NPAGES));
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		*st = g * 4 + DK_DRAIN;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		cm_drain(dev, -1, NULL);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
}

TEST_F_TIMEOUT(regress, drain_killed, 300)
{
	int rounds = getenv("REGRESS_ROUNDS") ? atoi(getenv("REGRESS_ROUNDS")) : 12;
	int i, bad = 0, in_drain = 0, cut_seen = 0;
	uint8_t *gnew = malloc(PGS(NPAGES)), *gold = malloc(PGS(NPAGES));
	uint8_t *img = malloc(PGS(NPAGES));
	volatile int *st = mmap(NULL, PG, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(NULL, gnew);
	ASSERT_NE(NULL, gold);
	ASSERT_NE(NULL, img);
	ASSERT_NE(MAP_FAILED, st);
	for (i = 0; i < rounds; i++) {
		int hold = i % 2 == 0, dev = -1, bfd = -1, lfd = -1, g, phase;
		char *lp, why[128], name[32];
		size_t torn = 0;
		long n, at;
		pid_t pid;

		snprintf(name, sizeof(name), "killed.%d.log", i);
		lp = cm_path(self->dir, name);
		*st = 0;
		if (hold) {
			/* The test holds the session: no final drain at the kill. */
			bfd = open(self->backing, O_RDONLY | O_CLOEXEC);
			lfd = open(lp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			ASSERT_LE(0, lfd);
			dev = cm_session(bfd, lfd, 0);
			ASSERT_LE(0, dev);
		}
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0)
			dk_child(self, i, dev, lp, st);
		/*
		 * Kill it in a drain (a little after it started, by up to a
		 * few ms) in most rounds, at any time in the others.
		 */
		if (i % 4 != 3) {
			int want = i % 3;

			while (!(DK_PHASE(*st) == DK_DRAIN && DK_GEN(*st) >= want) &&
			       !dk_died(pid))
				usleep(50);
			usleep(150 * (i / 4 % 5));
		} else {
			while (DK_GEN(*st) < 1 && !dk_died(pid))
				usleep(100);
			usleep(1000 * (i % 7) + 300);
		}
		ASSERT_FALSE(dk_died(pid)) TH_LOG("round %d: the child died before the kill", i);
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, NULL, 0));
		g = DK_GEN(*st);
		phase = DK_PHASE(*st);
		ASSERT_NE(0, phase);

		dk_gen(self->data, i, g, gnew);
		dk_gen(self->data, i, g - 1, gold);
		if (hold) {
			/*
			 * The log as the killed drain left it: generations
			 * before g whole, then a prefix of generation g's pages
			 * (drained in order) if the kill came in its drain.
			 */
			n = replay_log(lp, self->data, img, &torn, why);
			if (n < 0) {
				bad++;
				TH_LOG("round %d, after the kill: %s", i, why);
			} else if (torn) {
				bad++;
				TH_LOG("round %d, after the kill: %zu bytes of torn tail",
				       i, torn);
			} else if (phase == DK_DRAIN) {
				at = dk_prefix_of(img, gnew, gold);
				if (at >= 0) {
					bad++;
					TH_LOG("round %d, after the kill in drain %d: %ld records are not generations 0..%d then a part of %d (byte %ld)",
					       i, g, n, g - 1, g, at);
				}
				if (n < (long)NPAGES * (g + 1))
					cut_seen++;
			} else if (memcmp(img, gold, PGS(NPAGES))) {
				bad++;
				TH_LOG("round %d, after the kill in fill %d: %ld records are not generations 0..%d",
				       i, g, n, g - 1);
			}
			close(dev);	/* the final drain */
			close(lfd);
			close(bfd);
		}
		in_drain += phase == DK_DRAIN;

		/* After the final drain: exactly what the child had written. */
		n = replay_log(lp, self->data, img, NULL, why);
		if (n < 0) {
			bad++;
			TH_LOG("round %d: %s", i, why);
		} else if (phase == DK_DRAIN ? memcmp(img, gnew, PGS(NPAGES)) != 0 :
			   (at = dk_prefix_of(img, gnew, gold)) >= 0) {
			bad++;
			TH_LOG("round %d: killed in %s %d: %ld records do not give what the child wrote",
			       i, phase == DK_DRAIN ? "drain" : "fill", g, n);
		}
		free(lp);
	}
	printf("# %d rounds: %d kills in a drain (%d seen cut short in the log), %d wrong logs\n",
	       rounds, in_drain, cut_seen, bad);
	fflush(stdout);
	EXPECT_EQ(0, bad);
	EXPECT_LT(0, in_drain) TH_LOG("no kill landed in a drain: the test proved nothing");
	EXPECT_LT(0, cut_seen) TH_LOG("no kill was seen cutting a drain short");
	free(img);
	free(gold);
	free(gnew);
}


/*
 * drain_cut_fails (found by fault injection, seed 841465786): a
 * drain whose write to the log stops part way (here RLIMIT_FSIZE) and
 * whose cut-off of the partial batch then fails too (there an injected
 * ENOMEM in the filesystem's truncate; here the log is append-only, so
 * truncate gives EPERM).  The kernel used to re-mark every page of the
 * batch undrained while the log kept the whole records written before the
 * failure: DIFF then repeated changes the log already held, against bases
 * the log had moved past, and no drain could ever append again.  Now the
 * whole records count as drained, the log and DIFF together say exactly
 * what the session holds, drains fail (appending nothing) while the torn
 * tail cannot be cut, and the first one that can cut it completes the log.
 * For the bound log and for a log given to the drain (@fd_log).
 */
static void drain_cut_fails(struct __test_metadata *_metadata,
			    FIXTURE_DATA(regress) *self, int fd_log)
{
	uint8_t *m, *diff = NULL, *want = malloc(PGS(NPAGES)), *img = malloc(PGS(NPAGES));
	size_t used = 0, torn = 0, end, len0, len1;
	struct rlimit rl0, rl;
	struct cowmap_drain d;
	char *lp, why[128];
	int bfd, lfd, dfd, dev, err;
	struct stat st;
	uint32_t recs;
	long n;

	ASSERT_NE(NULL, want);
	ASSERT_NE(NULL, img);
	lp = cm_path(self->dir, "log");
	lfd = open(lp, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, lfd);
	bfd = open(self->backing, O_RDONLY | O_CLOEXEC);
	dev = cm_session(bfd, fd_log ? -1 : lfd, 0);
	ASSERT_LE(0, dev);
	dfd = fd_log ? lfd : -1;
	m = cm_map(dev, 0, PGS(NPAGES), PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	/* Even pages change whole (one record), odd ones in 64 runs. */
	memcpy(want, self->data, PGS(NPAGES));
	for (size_t p = 0; p < NPAGES; p++) {
		for (size_t i = 0; i < PG; i += p % 2 ? 64 : 1) {
			m[p * PG + i] ^= 0x5a;
			want[p * PG + i] ^= 0x5a;
		}
	}
	ASSERT_EQ(0, memcmp(m, want, PGS(NPAGES)));
	ASSERT_LE(0, cm_diff_all(dev, 0, 0, 1 << 20, &diff, &used, &recs));
	free(diff);
	diff = NULL;

	err = set_append_only(lfd, 1);
	if (err) {
		close_session(m, dev, lfd, bfd);
		SKIP(return, "chattr +a on the scratch filesystem: %s", strerror(-err));
	}
	self->append_only = lp;
	/* The log may grow to 70 % of the records (+13 bytes: mid-record). */
	ASSERT_EQ(0, fstat(lfd, &st));
	len0 = st.st_size;
	ASSERT_EQ(0, getrlimit(RLIMIT_FSIZE, &rl0));
	rl = rl0;
	rl.rlim_cur = len0 + used * 7 / 10 + 13;
	signal(SIGXFSZ, SIG_IGN);
	ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &rl));
	err = cm_drain(dev, dfd, &d);
	ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &rl0));
	EXPECT_EQ(-EFBIG, err) TH_LOG("drain: %s", strerror(-err));

	/* The log: whole records, then the torn tail nobody could cut. */
	ASSERT_EQ(0, stat(lp, &st));
	len1 = st.st_size;
	n = replay_log(lp, self->data, img, &torn, why);
	ASSERT_LT(0, n) TH_LOG("log after the failed drain: %s", why);
	EXPECT_LT(0, torn) TH_LOG("the log has no torn tail: was it cut?");
	/* DIFF says exactly the rest. */
	ASSERT_LE(0, cm_diff_all(dev, 0, 0, 1 << 20, &diff, &used, &recs));
	EXPECT_LE(0, replay(diff, used, img, NULL, 0, &end, why))
		TH_LOG("DIFF after the failed drain (%ld records in the log): %s", n, why);
	EXPECT_EQ(0, memcmp(img, want, PGS(NPAGES)))
		TH_LOG("the log and DIFF do not give the session's pages");
	free(diff);

	if (fd_log) {
		/*
		 * A log given to one drain is never appended to again: the
		 * next drain goes to a new log, and the two (the first with
		 * its torn tail) replayed in order give the session's pages.
		 */
		char *lp2 = cm_path(self->dir, "log2");
		int lfd2 = open(lp2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		ASSERT_LE(0, lfd2);
		err = cm_drain(dev, lfd2, &d);
		EXPECT_EQ(0, err) TH_LOG("drain to a new log: %s", strerror(-err));
		n = replay_log(lp, self->data, img, &torn, why);
		ASSERT_LT(0, n) TH_LOG("first log: %s", why);
		EXPECT_EQ(0, check_log(lp2, img, want, why)) TH_LOG("second log: %s", why);
		ASSERT_EQ(0, stat(lp, &st));
		EXPECT_EQ(len1, (size_t)st.st_size);
		close(lfd2);
		free(lp2);
		goto out;
	}

	/* The tail still cannot be cut: the drain fails, the log stays. */
	err = cm_drain(dev, dfd, &d);
	EXPECT_EQ(-EPERM, err) TH_LOG("drain: %s", strerror(-err));
	ASSERT_EQ(0, stat(lp, &st));
	EXPECT_EQ(len1, (size_t)st.st_size);

	/* It can be cut again: the next drain cuts it and completes the log. */
	ASSERT_EQ(0, set_append_only(lfd, 0));
	self->append_only = NULL;
	err = cm_drain(dev, dfd, &d);
	EXPECT_EQ(0, err) TH_LOG("drain: %s", strerror(-err));
	EXPECT_EQ(0, check_log(lp, self->data, want, why)) TH_LOG("%s", why);
out:

	close_session(m, dev, lfd, bfd);
	free(lp);
	free(want);
	free(img);
}

TEST_F(regress, drain_cut_fails)
{
	drain_cut_fails(_metadata, self, 0);
}

/* The same with a log given to the drain (COWMAP_DRAIN_FD). */
TEST_F(regress, drain_cut_fails_fd)
{
	drain_cut_fails(_metadata, self, 1);
}

TEST_HARNESS_MAIN
