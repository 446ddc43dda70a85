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
 */
#include <stddef.h>
#include <sys/mount.h>

#include "cowmap_harness.h"
#include "cowmap_test_util.h"

#define NPAGES	64

FIXTURE(regress) {
	char *dir;
	char *backing;
	char small[256];
	int small_mounted;
	uint8_t data[PGS(NPAGES)];
};

FIXTURE_SETUP(regress)
{
	const char *scratch, *why;
	int fd;

	self->dir = NULL;
	self->small_mounted = 0;
	CM_SKIP_IF_NO_DEVICE();
	scratch = cm_scratch_dir("COWMAP_SCRATCH", &why);
	if (!scratch)
		CM_SETUP_SKIP("$COWMAP_SCRATCH %s", why);
	self->dir = cm_mkdtemp(scratch, "regress");
	ASSERT_NE(NULL, self->dir);
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
	if (self->dir)
		cm_rm_rf(self->dir);
	free(self->dir);
}

/*
 * Check a log: header, then whole records with seq 0, 1, 2...; replaying
 * them onto @base (NPAGES pages) must give @want.  Returns 0, or -1 with
 * the reason in @why (128 bytes).
 */
static int check_log(const char *path, const uint8_t *base, const uint8_t *want,
		     char *why)
{
	uint8_t *log, *img = malloc(PGS(NPAGES));
	size_t len, pos;
	uint64_t seq = 0;
	struct cm_rec r;
	char w[64];
	int n;

	memcpy(img, base, PGS(NPAGES));
	log = cm_slurp(path, &len);
	if (!log || len < sizeof(struct cowmap_log_header)) {
		snprintf(why, 128, "no log");
		return -1;
	}
	pos = le32toh(((struct cowmap_log_header *)log)->header_len);
	while ((n = cm_rec_next(log, len, &pos, &r, w)) == 1) {
		if (r.seq != seq) {
			snprintf(why, 128, "record %llu has seq %llu", (unsigned long long)seq,
				 (unsigned long long)r.seq);
			return -1;
		}
		if (r.offset + r.length > PGS(NPAGES) ||
		    memcmp(img + r.offset, r.old, r.length)) {
			snprintf(why, 128, "record seq %llu at %#llx does not chain",
				 (unsigned long long)r.seq, (unsigned long long)r.offset);
			return -1;
		}
		memcpy(img + r.offset, r.new, r.length);
		seq++;
	}
	if (n < 0) {
		snprintf(why, 128, "after %llu good records, at byte %zu of %zu: %s",
			 (unsigned long long)seq, pos, len, w);
		return -1;
	}
	if (memcmp(img, want, PGS(NPAGES))) {
		snprintf(why, 128, "%llu records do not reproduce the session's pages",
			 (unsigned long long)seq);
		return -1;
	}
	free(img);
	free(log);
	return 0;
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
	memcpy(want, m, PGS(NPAGES));

	err = cm_drain(dev, -1, &d);
	EXPECT_EQ(-ENOSPC, err);
	/* Room again: the next drain must complete the log. */
	ASSERT_EQ(0, mount(NULL, self->small, NULL, MS_REMOUNT, "size=8m"));
	err = cm_drain(dev, -1, &d);
	EXPECT_EQ(0, err) TH_LOG("second drain: %s", strerror(-err));
	EXPECT_EQ(0, check_log(lp, self->data, want, why)) TH_LOG("%s", why);

	munmap(m, PGS(NPAGES));
	close(dev);
	close(lfd);
	close(bfd);
	free(lp);
	free(want);
}

TEST_F_TIMEOUT(regress, drain_killed, 300)
{
	int rounds = getenv("REGRESS_ROUNDS") ? atoi(getenv("REGRESS_ROUNDS")) : 12;
	int i, bad = 0, cut = 0;
	uint8_t *want = mmap(NULL, PGS(NPAGES), PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile int *ready = mmap(NULL, PG, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, want);
	for (i = 0; i < rounds; i++) {
		char *lp, why[128], name[32];
		struct stat st;
		pid_t pid;

		snprintf(name, sizeof(name), "killed.%d.log", i);
		lp = cm_path(self->dir, name);
		*ready = 0;
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			int bfd = open(self->backing, O_RDONLY | O_CLOEXEC);
			int lfd = open(lp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			int dev = cm_session(bfd, lfd, 0);
			uint8_t *m = cm_map(dev, 0, PGS(NPAGES), PROT_READ | PROT_WRITE);

			if (m == MAP_FAILED)
				_exit(1);
			cm_fill(1000 + i, m, PGS(NPAGES));
			memcpy(want, m, PGS(NPAGES));
			for (;;) {
				/* Drain, change everything again, drain... until killed. */
				*ready = 1;
				cm_drain(dev, -1, NULL);
				cm_fill(2000 + i + (*ready)++, m, PGS(NPAGES));
				memcpy(want, m, PGS(NPAGES));
			}
		}
		while (!*ready)
			usleep(1000);
		usleep(1000 * (i % 7) + 300);
		kill(pid, SIGKILL);
		cm_wait(pid);
		/* The final drain ran when the child was reaped. */
		usleep(100000);
		if (!stat(lp, &st) && st.st_size)
			cut++;
		/*
		 * The last memcpy to @want may not have finished when the
		 * kill came: check the log's integrity, and its replay only
		 * when the child was not in the middle of rewriting.
		 */
		if (check_log(lp, self->data, want, why) &&
		    !strstr(why, "do not reproduce")) {
			bad++;
			TH_LOG("round %d: %s", i, why);
		}
		free(lp);
	}
	printf("# %d drains killed part way; %d left a log that is not valid\n", cut, bad);
	fflush(stdout);
	EXPECT_EQ(0, bad);
}

TEST_HARNESS_MAIN
