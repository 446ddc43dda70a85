// SPDX-License-Identifier: GPL-2.0
/*
 * cowmap_session_commit(): a session merges its own changes into its file, then
 * drops them.  And the example built on it, cowmap-counter, whose file is
 * never half-updated however it is killed.
 *
 * merges_and_discards: the file gets exactly the session's bytes (the
 *	inode is kept: another live session sees them through the page
 *	cache), the private pages are gone, the mapping reads the file.
 * nothing_to_commit: no private pages, no write, no journal left.
 * conflict_then_force: a byte the session changed was changed in the file
 *	too: -COWMAP_ECONFLICT, the file and the session untouched; with
 *	COWMAP_COMMIT_FORCE the session's bytes win, the others stay.
 * bad_flags: unknown flags are refused before anything happens.
 * counter_killed: cowmap-counter commits in a loop and is SIGKILLed at
 *	random moments; every time, the file holds a whole state equal to
 *	the last committed value or the one after it (the commit in flight),
 *	never a mix.  Kills that left a journal behind (inside a commit) are
 *	counted and must happen; the next run recovers them.
 *	COMMIT_KILLS (default 40; 12 on slow kernels via the VM runner) sets
 *	the number of kills.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "cowmap_harness.h"
#include "lib/util.h"
#include "cowmap.h"

#define NPAGES	16

FIXTURE(commit) {
	char *dir;
	char *backing;
	uint8_t data[PGS(NPAGES)];
};

FIXTURE_SETUP(commit)
{
	const char *scratch;
	int fd;

	self->dir = NULL;
	CM_SKIP_IF_NO_DEVICE();
	CM_SETUP_SCRATCH_DIR(scratch, self->dir, "commit");
	self->backing = cm_path(self->dir, "backing");
	cm_fill(7, self->data, sizeof(self->data));
	fd = cm_create(self->backing, self->data, sizeof(self->data));
	ASSERT_LE(0, fd);
	close(fd);
}

FIXTURE_TEARDOWN(commit)
{
	if (self->dir)
		cm_rm_rf(self->dir);
	free(self->dir);
}

/* The journal a merge of @dir/@name keeps beside it while it runs. */
static char *journal_path(const char *dir, const char *name)
{
	char j[256];

	snprintf(j, sizeof(j), ".%s.cowmap-journal", name);
	return cm_path(dir, j);
}

static void file_equals(struct __test_metadata *_metadata, const char *path,
			const uint8_t *want, size_t len)
{
	size_t flen;
	uint8_t *got = cm_slurp(path, &flen);

	ASSERT_NE(NULL, got);
	ASSERT_EQ(len, flen);
	if (memcmp(want, got, len)) {
		size_t i = 0;
		uint8_t g;

		while (want[i] == got[i])
			i++;
		g = got[i];
		free(got);
		ASSERT_EQ(want[i], g) TH_LOG("first difference at byte %zu", i);
	}
	free(got);
}

TEST_F(commit, merges_and_discards)
{
	uint8_t *want = malloc(PGS(NPAGES)), *p, *q;
	struct cowmap_merge_stats st;
	struct cowmap_session *s;
	struct cowmap_info in;
	struct stat before, after;
	int other, fd;

	ASSERT_NE(NULL, want);
	memcpy(want, self->data, PGS(NPAGES));
	ASSERT_EQ(0, stat(self->backing, &before));

	/* Another live session, reading (no private pages). */
	fd = open(self->backing, O_RDONLY);
	ASSERT_LE(0, fd);
	other = cm_session(fd, -1, 0);
	ASSERT_LE(0, other);
	q = cm_map(other, 0, PGS(NPAGES), PROT_READ);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_EQ(0, memcmp(q, self->data, PGS(NPAGES)));

	ASSERT_EQ(0, cowmap_session_open(self->backing, 0, NULL, 0, &s));
	ASSERT_EQ(0, cowmap_session_map(s, 0, PGS(NPAGES), PROT_READ | PROT_WRITE, (void **)&p));
	/* Binary bytes in page 1, a run across pages 5-6, one byte in 15. */
	memcpy(p + PGS(1) + 10, "\0\n\xff\0ab", 6);
	memset(p + PGS(6) - 100, 0xa5, 300);
	p[PGS(16) - 1] ^= 0x5a;
	memcpy(want + PGS(1) + 10, "\0\n\xff\0ab", 6);
	memset(want + PGS(6) - 100, 0xa5, 300);
	want[PGS(16) - 1] ^= 0x5a;
	ASSERT_EQ(0, cowmap_session_info(s, &in));
	ASSERT_EQ(4, in.private_pages);

	memset(&st, 0, sizeof(st));
	ASSERT_EQ(0, cowmap_session_commit(s, 0, &st)) TH_LOG("%s", cowmap_errmsg());
	EXPECT_EQ(1, st.logs);
	EXPECT_EQ(0, st.conflicts);
	EXPECT_GE(st.write_bytes, 306);

	file_equals(_metadata, self->backing, want, PGS(NPAGES));
	ASSERT_EQ(0, stat(self->backing, &after));
	EXPECT_EQ(before.st_ino, after.st_ino);	/* in place */
	EXPECT_NE(0, access(journal_path(self->dir, "backing"), F_OK));

	ASSERT_EQ(0, cowmap_session_info(s, &in));
	EXPECT_EQ(0, in.private_pages);
	EXPECT_EQ(0, memcmp(p, want, PGS(NPAGES)));	/* now the file's pages */
	EXPECT_EQ(0, memcmp(q, want, PGS(NPAGES)));	/* the other session too */

	/* Writing again after the commit copies again, from the new bytes. */
	p[PGS(1) + 10] = 'x';
	ASSERT_EQ(0, cowmap_session_info(s, &in));
	EXPECT_EQ(1, in.private_pages);
	file_equals(_metadata, self->backing, want, PGS(NPAGES));

	cowmap_session_unmap(s, p, PGS(NPAGES));
	cowmap_session_close(s);
	munmap(q, PGS(NPAGES));
	close(other);
	close(fd);
	free(want);
}

TEST_F(commit, nothing_to_commit)
{
	struct cowmap_merge_stats st;
	struct cowmap_session *s;
	struct stat before, after;
	uint8_t *p;

	ASSERT_EQ(0, stat(self->backing, &before));
	ASSERT_EQ(0, cowmap_session_open(self->backing, 0, NULL, 0, &s));
	ASSERT_EQ(0, cowmap_session_map(s, 0, PGS(NPAGES), PROT_READ | PROT_WRITE, (void **)&p));
	EXPECT_EQ(self->data[100], p[100]);	/* reads copy nothing */
	memset(&st, 0, sizeof(st));
	ASSERT_EQ(0, cowmap_session_commit(s, 0, &st)) TH_LOG("%s", cowmap_errmsg());
	EXPECT_EQ(0, st.write_bytes);
	ASSERT_EQ(0, stat(self->backing, &after));
	EXPECT_EQ(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
	EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
	file_equals(_metadata, self->backing, self->data, PGS(NPAGES));
	EXPECT_NE(0, access(journal_path(self->dir, "backing"), F_OK));
	cowmap_session_unmap(s, p, PGS(NPAGES));
	cowmap_session_close(s);
}

TEST_F(commit, conflict_then_force)
{
	uint8_t *want = malloc(PGS(NPAGES)), *p, theirs[10];
	struct cowmap_merge_stats st;
	struct cowmap_session *s;
	struct cowmap_info in;
	int fd;

	ASSERT_NE(NULL, want);
	memcpy(want, self->data, PGS(NPAGES));
	ASSERT_EQ(0, cowmap_session_open(self->backing, 0, NULL, 0, &s));
	ASSERT_EQ(0, cowmap_session_map(s, 0, PGS(NPAGES), PROT_READ | PROT_WRITE, (void **)&p));
	memset(p + PGS(2) + 100, 0x11, 100);	/* [100, 200) of page 2 */
	memset(p + PGS(9), 0x22, 8);		/* no conflict there */

	/* Someone else changes [150, 160) of page 2 in the file. */
	memset(theirs, 0x33, sizeof(theirs));
	fd = open(self->backing, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, cm_write_all(fd, theirs, sizeof(theirs), PGS(2) + 150));
	close(fd);
	memcpy(want + PGS(2) + 150, theirs, sizeof(theirs));

	memset(&st, 0, sizeof(st));
	ASSERT_EQ(-COWMAP_ECONFLICT, cowmap_session_commit(s, 0, &st));
	EXPECT_NE(0, st.unresolved);
	file_equals(_metadata, self->backing, want, PGS(NPAGES));
	ASSERT_EQ(0, cowmap_session_info(s, &in));
	EXPECT_EQ(2, in.private_pages);		/* nothing dropped */
	EXPECT_EQ(0x11, p[PGS(2) + 155]);

	ASSERT_EQ(0, cowmap_session_commit(s, COWMAP_COMMIT_FORCE, &st)) TH_LOG("%s", cowmap_errmsg());
	memset(want + PGS(2) + 100, 0x11, 100);
	memset(want + PGS(9), 0x22, 8);
	file_equals(_metadata, self->backing, want, PGS(NPAGES));
	ASSERT_EQ(0, cowmap_session_info(s, &in));
	EXPECT_EQ(0, in.private_pages);
	cowmap_session_unmap(s, p, PGS(NPAGES));
	cowmap_session_close(s);
	free(want);
}

TEST_F(commit, bad_flags)
{
	struct cowmap_session *s;
	struct cowmap_info in;
	uint8_t *p;

	ASSERT_EQ(0, cowmap_session_open(self->backing, 0, NULL, 0, &s));
	ASSERT_EQ(0, cowmap_session_map(s, 0, PGS(NPAGES), PROT_READ | PROT_WRITE, (void **)&p));
	p[0] ^= 1;
	ASSERT_EQ(-EINVAL, cowmap_session_commit(s, 0x80, NULL));
	EXPECT_NE(NULL, strstr(cowmap_errmsg(), "unknown flags"));
	EXPECT_EQ(-EINVAL, cowmap_session_commit(NULL, 0, NULL));
	ASSERT_EQ(0, cowmap_session_info(s, &in));
	EXPECT_EQ(1, in.private_pages);
	file_equals(_metadata, self->backing, self->data, PGS(NPAGES));
	cowmap_session_unmap(s, p, PGS(NPAGES));
	cowmap_session_close(s);
}

/* Last "committed N" in @out (0 if none). */
static long last_committed(const char *out)
{
	const char *l = out, *n;
	long v = 0;

	while ((n = strstr(l, "committed ")) != NULL) {
		v = strtol(n + 10, NULL, 10);
		l = n + 10;
	}
	return v;
}

/* Run "cowmap-counter -c FILE": the count, or -1 (torn, error). */
static long counter_check(const char *file)
{
	char cmd[512], line[256], last[256] = "";
	long v = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "cowmap-counter -c '%s' 2>&1", file);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		snprintf(last, sizeof(last), "%s", line);
	if (pclose(f) != 0 || sscanf(last, "count = %ld", &v) != 1) {
		fprintf(stderr, "# cowmap-counter -c: %s", last);
		return -1;
	}
	return v;
}

TEST_F_TIMEOUT(commit, counter_killed, 600)
{
	const char *e = getenv("COMMIT_KILLS");
	long kills = e ? strtol(e, NULL, 10) : 40, k, prev = 10, mid = 0, v;
	char *file = cm_path(self->dir, "counter");
	char *journal = journal_path(self->dir, "counter");
	char *jnew = malloc(strlen(journal) + 5);
	uint64_t seed = cm_now_ns();
	static char out[1 << 20];

	if (access("/usr/local/bin/cowmap-counter", X_OK) &&
	    system("command -v cowmap-counter >/dev/null"))
		SKIP(return, "cowmap-counter is not installed");
	/* The first run creates the file with 10 and commits 11. */
	snprintf(out, sizeof(out), "cowmap-counter '%s' >/dev/null", file);
	ASSERT_EQ(0, system(out));
	ASSERT_EQ(11, counter_check(file));
	prev = 11;
	ASSERT_NE(NULL, jnew);
	/* The journal is written under this name, then renamed. */
	sprintf(jnew, "%s.new", journal);
	for (k = 0; k < kills; k++) {
		int pfd[2], status;
		size_t used = 0;
		ssize_t r;
		pid_t pid;
		long delay_us, committed;
		bool journal_left;

		ASSERT_EQ(0, pipe(pfd));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			dup2(pfd[1], 1);
			close(pfd[0]);
			close(pfd[1]);
			execlp("cowmap-counter", "cowmap-counter", "-n", "1000000", file,
			       (char *)NULL);
			_exit(127);
		}
		close(pfd[1]);
		/* Wait for the first output line, then a random while more. */
		r = read(pfd[0], out, sizeof(out) - 1);
		ASSERT_LT(0, r) TH_LOG("cowmap-counter printed nothing");
		used = r;
		delay_us = 1000 + cm_rand(&seed) % 300000;
		usleep(delay_us);
		kill(pid, SIGKILL);
		while (used < sizeof(out) - 1 &&
		       (r = read(pfd[0], out + used, sizeof(out) - 1 - used)) > 0)
			used += r;
		out[used] = '\0';
		close(pfd[0]);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFSIGNALED(status)) TH_LOG("exit %d: %s", WEXITSTATUS(status), out);

		committed = last_committed(out);
		if (!committed)
			committed = prev;	/* killed before its first commit */
		ASSERT_GE(committed, prev);
		/* Killed while writing the journal, or after it was renamed. */
		journal_left = !access(journal, F_OK) || !access(jnew, F_OK);
		mid += journal_left;
		v = counter_check(file);
		ASSERT_NE(-1, v) TH_LOG("kill %ld after %ld us: torn or unreadable", k, delay_us);
		ASSERT_TRUE(v == committed || v == committed + 1)
			TH_LOG("kill %ld: file holds %ld, last committed %ld", k, v, committed);
		EXPECT_NE(0, access(journal, F_OK));	/* recovered by the check */
		EXPECT_NE(0, access(jnew, F_OK));
		prev = v;
	}
	printf("# %ld kills, %ld inside a commit (journal or its .new left), counter at %ld\n",
	       kills, mid, prev);
	fflush(stdout);		/* the harness's child ends in _exit() */
	EXPECT_LT(0, mid) TH_LOG("no kill landed inside a commit: the test proved nothing");
	free(file);
	free(journal);
	free(jnew);
}

TEST_HARNESS_MAIN
