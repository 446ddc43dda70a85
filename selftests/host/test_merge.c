// SPDX-License-Identifier: GPL-2.0
/*
 * Merge semantics: conflicts, prefer, stale changes, chains, dry run,
 * output files, merge-all, identity checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "tutil.h"

#define BASE "0123456789abcdefghij"
#define BLEN 20

static const char *setup(const char *name)
{
	const char *f = tpath(name);

	write_file(f, BASE, BLEN);
	return f;
}

static bool journal_absent(const char *file)
{
	char *j = journal_path(file);
	bool ok = access(j, F_OK) != 0;

	free(j);
	return ok;
}

TEST(merge_single_log)
{
	const char *f = setup("m1.file");
	struct chg c[] = { { 2, 3, "234", "XYZ" }, { 15, 2, "fg", "\0\n" } };
	struct cowmap_merge_stats st;
	struct cowmap_merge *m;
	int ret;

	ASSERT(!mklog(tpath("m1.log"), f, c, 2), "mklog");
	ret = merge_keep(&m, f, 0, NULL, 1, tpath("m1.log"));
	EXPECT(ret == 0, "merge: %d %s", ret, cowmap_errmsg());
	EXPECT(file_is(f, "01XYZ56789abcde\0\nhij", BLEN), "content");
	EXPECT(journal_absent(f), "journal left");
	cowmap_merge_stats(m, &st);
	EXPECT(st.logs == 1 && st.records == 2 && st.write_bytes == 5 && st.write_ranges == 2 &&
	       st.changed_bytes == 5 && st.conflicts == 0, "stats %llu %llu %llu",
	       (unsigned long long)st.records, (unsigned long long)st.write_bytes,
	       (unsigned long long)st.write_ranges);
	cowmap_merge_free(m);
	/* merging it again: every change is already there; no conflict */
	ret = merge_keep(&m, f, 0, NULL, 1, tpath("m1.log"));
	EXPECT(ret == 0, "re-merge: %s", cowmap_errmsg());
	cowmap_merge_stats(m, &st);
	EXPECT(st.applied_bytes == 5 && st.write_bytes == 0, "re-merge stats");
	cowmap_merge_free(m);
}

TEST(merge_conflict_overlap)
{
	const char *f = setup("c1.file");
	struct chg a[] = { { 4, 4, "4567", "AAAA" } };
	struct chg b[] = { { 6, 4, "6789", "BBBB" } };
	struct cowmap_merge_stats st;
	struct cowmap_conflict c;
	struct cowmap_merge *m;
	int ret;

	mklog(tpath("c1a.log"), f, a, 1);
	mklog(tpath("c1b.log"), f, b, 1);
	ret = merge_keep(&m, f, 0, NULL, 2, tpath("c1a.log"), tpath("c1b.log"));
	EXPECT(ret == -COWMAP_ECONFLICT, "ret %d", ret);
	EXPECT(errno == COWMAP_ECONFLICT, "errno");
	EXPECT(file_is(f, BASE, BLEN), "file changed");
	EXPECT(journal_absent(f), "journal left");
	cowmap_merge_stats(m, &st);
	EXPECT(st.conflicts == 1 && st.unresolved == 1 && st.conflict_bytes == 2, "stats");
	ASSERT(!cowmap_merge_conflict(m, 0, &c), "conflict 0");
	EXPECT(c.kind == COWMAP_CONFLICT_LOGS && c.offset == 6 && c.length == 2 &&
	       c.log_a == 0 && c.log_b == 1 && !c.flags, "conflict %u %llu+%llu %d/%d", c.kind,
	       (unsigned long long)c.offset, (unsigned long long)c.length, c.log_a, c.log_b);
	EXPECT(c.preview_len == 2 && !memcmp(c.file, "67", 2) && !memcmp(c.a, "AA", 2) &&
	       !memcmp(c.b, "BB", 2), "preview");
	EXPECT(cowmap_merge_conflict(m, 1, &c) == -ENOENT, "only one");
	EXPECT(!strcmp(cowmap_merge_log_name(m, 1), tpath("c1b.log")), "log name");
	cowmap_merge_free(m);

	/* dry run reports the same */
	ret = merge_keep(&m, f, COWMAP_MERGE_DRY_RUN, NULL, 2, tpath("c1a.log"), tpath("c1b.log"));
	EXPECT(ret == -COWMAP_ECONFLICT, "dry run %d", ret);
	cowmap_merge_free(m);

	/* prefer first / last */
	ret = merge(f, COWMAP_MERGE_PREFER_FIRST | COWMAP_MERGE_DRY_RUN, NULL, 2,
		    tpath("c1a.log"), tpath("c1b.log"));
	EXPECT(ret == 0, "prefer first dry %d", ret);
	EXPECT(file_is(f, BASE, BLEN), "dry run wrote");
	ret = merge_keep(&m, f, COWMAP_MERGE_PREFER_FIRST, NULL, 2, tpath("c1a.log"),
			 tpath("c1b.log"));
	EXPECT(ret == 0, "prefer first %d %s", ret, cowmap_errmsg());
	EXPECT(file_is(f, "0123AAAABBabcdefghij", BLEN), "prefer first content");
	cowmap_merge_stats(m, &st);
	EXPECT(st.conflicts == 1 && st.unresolved == 0, "resolved");
	EXPECT(!cowmap_merge_conflict(m, 0, &c) && (c.flags & COWMAP_CONFLICT_RESOLVED), "flag");
	cowmap_merge_free(m);

	f = setup("c1.file");
	ret = merge(f, COWMAP_MERGE_PREFER_LAST, NULL, 2, tpath("c1a.log"), tpath("c1b.log"));
	EXPECT(ret == 0, "prefer last %d", ret);
	EXPECT(file_is(f, "0123AABBBBabcdefghij", BLEN), "prefer last content");
}

TEST(merge_identical_and_adjacent)
{
	const char *f = setup("i1.file");
	struct chg a[] = { { 4, 4, "4567", "QQQQ" } };
	struct chg b[] = { { 5, 2, "56", "QQ" } };		/* identical change */
	struct chg c[] = { { 8, 2, "89", "RR" }, { 2, 2, "23", "SS" } };	/* adjacent */
	int ret;

	mklog(tpath("i1a.log"), f, a, 1);
	mklog(tpath("i1b.log"), f, b, 1);
	mklog(tpath("i1c.log"), f, c, 2);
	ret = merge(f, 0, NULL, 3, tpath("i1a.log"), tpath("i1b.log"), tpath("i1c.log"));
	EXPECT(ret == 0, "merge %d: %s", ret, cowmap_errmsg());
	EXPECT(file_is(f, "01SSQQQQRRabcdefghij", BLEN), "content");
}

TEST(merge_stale_change)
{
	const char *f = setup("s1.file");
	struct chg a[] = { { 10, 3, "abc", "xyz" } };
	struct cowmap_conflict c;
	struct cowmap_merge *m;
	int ret;

	mklog(tpath("s1.log"), f, a, 1);
	write_file(f, "0123456789aBcdefghij", BLEN);	/* changed under the log */
	ret = merge_keep(&m, f, 0, NULL, 1, tpath("s1.log"));
	EXPECT(ret == -COWMAP_ECONFLICT, "ret %d", ret);
	EXPECT(file_is(f, "0123456789aBcdefghij", BLEN), "file changed");
	ASSERT(!cowmap_merge_conflict(m, 0, &c), "conflict");
	EXPECT(c.kind == COWMAP_CONFLICT_STALE && c.offset == 11 && c.length == 1 &&
	       c.log_a == 0 && c.log_b == -1 && c.file[0] == 'B' && c.a[0] == 'b' && c.b[0] == 'y',
	       "stale conflict %u %llu %llu", c.kind, (unsigned long long)c.offset,
	       (unsigned long long)c.length);
	cowmap_merge_free(m);
	/* prefer: the log's bytes win over the file too */
	ret = merge(f, COWMAP_MERGE_PREFER_LAST, NULL, 1, tpath("s1.log"));
	EXPECT(ret == 0, "prefer %d", ret);
	EXPECT(file_is(f, "0123456789xyzdefghij", BLEN), "prefer content");
}

TEST(merge_beyond_eof)
{
	const char *f = setup("e1.file");
	struct chg a[] = { { 18, 2, "ij", "IJ" } };
	int ret;

	mklog(tpath("e1.log"), f, a, 1);
	ASSERT(!truncate(f, 19), "truncate");
	ret = merge(f, 0, NULL, 1, tpath("e1.log"));
	EXPECT(ret == -COWMAP_ECONFLICT, "stale beyond EOF %d", ret);
	ret = merge(f, COWMAP_MERGE_PREFER_FIRST, NULL, 1, tpath("e1.log"));
	EXPECT(ret == 0, "prefer %d %s", ret, cowmap_errmsg());
	EXPECT(file_is(f, "0123456789abcdefghIJ", BLEN), "extended");
}

TEST(merge_log_chain)
{
	const char *f = setup("ch.file");
	/* overlapping records in one log: net change, coalesced bytes */
	struct chg ok[] = {
		{ 2, 4, "2345", "AB45" },	/* 4,5 unchanged (coalesced) */
		{ 3, 4, "B456", "CD5E" },	/* chain: old B,4,5 matches */
		{ 2, 1, "A", "2" },		/* reverts byte 2: no net change */
	};
	struct chg bad[] = {
		{ 2, 2, "23", "AB" },
		{ 3, 2, "X4", "YY" },		/* old X != earlier new B */
	};
	struct cowmap_merge_stats st;
	struct cowmap_merge *m;
	int ret;

	mklog(tpath("ch1.log"), f, ok, 3);
	/* net: 3 -> C, 4 -> D, 6 -> E; bytes 2 and 5 end as they began */
	ret = merge_keep(&m, f, 0, NULL, 1, tpath("ch1.log"));
	EXPECT(ret == 0, "chain merge %d: %s", ret, cowmap_errmsg());
	EXPECT(file_is(f, "012CD5E789abcdefghij", BLEN), "chain content");
	cowmap_merge_stats(m, &st);
	EXPECT(st.changed_bytes == 3 && st.write_bytes == 3, "changed %llu written %llu",
	       (unsigned long long)st.changed_bytes, (unsigned long long)st.write_bytes);
	cowmap_merge_free(m);

	f = setup("ch.file");
	mklog(tpath("ch2.log"), f, bad, 2);
	ret = merge(f, 0, NULL, 1, tpath("ch2.log"));
	EXPECT(ret == -COWMAP_ECHAIN, "bad chain %d", ret);
	EXPECT(strstr(cowmap_errmsg(), "file offset 3") != NULL, "message: %s", cowmap_errmsg());
	EXPECT(file_is(f, BASE, BLEN), "file changed");
}

TEST(merge_coalesced_bytes_are_not_preconditions)
{
	const char *f = setup("co.file");
	/* a coalesced record: bytes 4..7 carried unchanged */
	struct chg a[] = { { 2, 8, "23456789", "X345678Y" } };
	int ret;

	mklog(tpath("co.log"), f, a, 1);
	write_file(f, "0123-567-9abcdefghij", BLEN);	/* others changed 4 and 8 */
	ret = merge(f, 0, NULL, 1, tpath("co.log"));
	EXPECT(ret == 0, "merge %d: %s", ret, cowmap_errmsg());
	EXPECT(file_is(f, "01X3-567-Yabcdefghij", BLEN), "others' bytes kept");
}

TEST(merge_dry_run_writes_nothing)
{
	const char *f = setup("d1.file");
	struct chg a[] = { { 0, 3, "012", "abc" } };
	struct cowmap_merge_stats st;
	struct cowmap_merge *m;
	struct stat s1, s2;
	int ret;

	mklog(tpath("d1.log"), f, a, 1);
	usleep(20000);
	stat(f, &s1);
	ret = merge_keep(&m, f, COWMAP_MERGE_DRY_RUN, NULL, 1, tpath("d1.log"));
	EXPECT(ret == 0, "dry %d", ret);
	cowmap_merge_stats(m, &st);
	EXPECT(st.write_bytes == 3 && st.write_ranges == 1, "would write");
	cowmap_merge_free(m);
	stat(f, &s2);
	EXPECT(file_is(f, BASE, BLEN), "content changed");
	EXPECT(s1.st_mtim.tv_sec == s2.st_mtim.tv_sec && s1.st_mtim.tv_nsec == s2.st_mtim.tv_nsec,
	       "mtime changed");
	EXPECT(journal_absent(f), "journal");
}

TEST(merge_output_file)
{
	const char *f = setup("o1.file"), *out = tpath("o1.out");
	struct chg a[] = { { 0, 3, "012", "abc" } };
	struct chg b[] = { { 1, 1, "1", "Z" } };
	struct stat s1, s2;
	int ret;

	chmod(f, 0640);
	mklog(tpath("o1.log"), f, a, 1);
	mklog(tpath("o1b.log"), f, b, 1);
	stat(f, &s1);
	ret = merge(f, 0, out, 1, tpath("o1.log"));
	EXPECT(ret == 0, "merge -o %d: %s", ret, cowmap_errmsg());
	EXPECT(file_is(f, BASE, BLEN), "input changed");
	EXPECT(file_is(out, "abc3456789abcdefghij", BLEN), "output");
	stat(out, &s2);
	EXPECT((s2.st_mode & 07777) == 0640, "mode %o", s2.st_mode & 07777);
	stat(f, &s2);
	EXPECT(s1.st_mtim.tv_nsec == s2.st_mtim.tv_nsec, "input mtime");
	/* a conflict leaves no output at all (nor a temporary file) */
	unlink(out);
	ret = merge(f, 0, out, 2, tpath("o1.log"), tpath("o1b.log"));
	EXPECT(ret == -COWMAP_ECONFLICT, "conflict %d", ret);
	EXPECT(access(out, F_OK) != 0, "output exists");
}

TEST(merge_refuses_other_file)
{
	const char *f = setup("w1.file"), *g = setup("w2.file");
	struct chg a[] = { { 0, 1, "0", "Z" } };
	int ret;

	mklog(tpath("w1.log"), g, a, 1);
	ret = merge(f, 0, NULL, 1, tpath("w1.log"));
	EXPECT(ret == -COWMAP_EWRONGFILE, "ret %d", ret);
	EXPECT(strstr(cowmap_errmsg(), "w2.file") != NULL, "message %s", cowmap_errmsg());
	EXPECT(file_is(f, BASE, BLEN), "written");
	ret = merge(f, COWMAP_MERGE_FORCE, NULL, 1, tpath("w1.log"));
	EXPECT(ret == 0, "force %d", ret);
	EXPECT(file_is(f, "Z123456789abcdefghij", BLEN), "forced content");
}

TEST(merge_bad_log_writes_nothing)
{
	const char *f = setup("b1.file");
	struct chg a[] = { { 0, 1, "0", "Z" } };
	size_t n;
	uint8_t *d;
	int ret;

	mklog(tpath("b1a.log"), f, a, 1);
	mklog(tpath("b1b.log"), f, a, 1);
	d = read_file(tpath("b1b.log"), &n);
	d[10] ^= 1;
	write_file(tpath("b1b.log"), d, n);
	free(d);
	ret = merge(f, 0, NULL, 2, tpath("b1a.log"), tpath("b1b.log"));
	EXPECT(ret == -COWMAP_EBADLOG, "ret %d", ret);
	EXPECT(file_is(f, BASE, BLEN), "written");
}

TEST(merge_torn_tail_is_a_warning)
{
	const char *f = setup("t1.file");
	struct chg a[] = { { 0, 1, "0", "A" }, { 5, 1, "5", "B" } };
	struct cowmap_merge_stats st;
	struct cowmap_merge *m;
	struct stat s;
	int ret;

	mklog(tpath("t1.log"), f, a, 2);
	stat(tpath("t1.log"), &s);
	truncate(tpath("t1.log"), s.st_size - 3);
	ret = merge_keep(&m, f, 0, NULL, 1, tpath("t1.log"));
	EXPECT(ret == 0, "ret %d", ret);
	EXPECT(file_is(f, "A123456789abcdefghij", BLEN), "prefix applied");
	cowmap_merge_stats(m, &st);
	EXPECT(st.torn_logs == 1, "torn count");
	EXPECT(cowmap_merge_warning(m, 0) && strstr(cowmap_merge_warning(m, 0), "torn tail"),
	       "warning %s", cowmap_merge_warning(m, 0));
	EXPECT(cowmap_merge_warning(m, 1) == NULL, "one warning");
	cowmap_merge_free(m);
}

TEST(merge_all_directory)
{
	const char *f = setup("a1.file"), *g = setup("a2.file");
	char dir[4096];
	struct chg x[] = { { 0, 2, "01", "XX" } };
	struct chg y[] = { { 1, 2, "12", "YY" } };
	struct chg z[] = { { 1, 1, "1", "Z" } };
	struct cowmap_merge_stats st;
	struct cowmap_merge *m;
	int ret;

	snprintf(dir, sizeof(dir), "%s/logs", tmpdir());
	mkdir(dir, 0755);
	/* time order: y (t=100) before x (t=200, sid 1) before z (t=200, sid 2) */
	mklog_meta(tpath("logs/x.log"), f, x, 1, 200, 1);
	mklog_meta(tpath("logs/y.log"), f, y, 1, 100, 7);
	mklog_meta(tpath("logs/z.log"), f, z, 1, 200, 2);
	mklog_meta(tpath("logs/other.log"), g, z, 1, 50, 3);
	write_file(tpath("logs/notes.txt"), "not a log", 9);

	ASSERT(!cowmap_merge_new(f, COWMAP_MERGE_PREFER_LAST, &m), "new");
	ret = cowmap_merge_add_dir(m, dir);
	EXPECT(ret == 3, "added %d: %s", ret, cowmap_errmsg());
	EXPECT(cowmap_merge_log_name(m, 0) && strstr(cowmap_merge_log_name(m, 0), "y.log") &&
	       strstr(cowmap_merge_log_name(m, 1), "x.log") &&
	       strstr(cowmap_merge_log_name(m, 2), "z.log"), "order");
	ret = cowmap_merge_run(m);
	EXPECT(ret == 0, "run %d %s", ret, cowmap_errmsg());
	cowmap_merge_stats(m, &st);
	EXPECT(st.skipped_logs == 1 && st.logs == 3, "skipped %llu", (unsigned long long)st.skipped_logs);
	/* byte 0: x; byte 1: y,x,z -> z (last); byte 2: y */
	EXPECT(file_is(f, "XZY3456789abcdefghij", BLEN), "content");
	cowmap_merge_free(m);

	/* an invalid log in the directory is an error */
	write_file(tpath("logs/broken.log"), "COWMAPLG garbage", 16);
	ASSERT(!cowmap_merge_new(f, 0, &m), "new");
	ret = cowmap_merge_add_dir(m, dir);
	EXPECT(ret == -COWMAP_EBADLOG, "broken %d", ret);
	cowmap_merge_free(m);
}

TEST(merge_lock_serializes)
{
	const char *f = setup("l1.file");
	struct chg a[] = { { 0, 1, "0", "L" } };
	int fd, status;
	pid_t pid;

	mklog(tpath("l1.log"), f, a, 1);
	fd = open(f, O_RDONLY);
	ASSERT(!flock(fd, LOCK_EX), "flock");
	pid = fork();
	if (!pid)
		_exit(merge(f, 0, NULL, 1, tpath("l1.log")) ? 1 : 0);
	usleep(300000);
	EXPECT(waitpid(pid, &status, WNOHANG) == 0, "merge did not wait for the lock");
	EXPECT(file_is(f, BASE, BLEN), "written while locked");
	flock(fd, LOCK_UN);
	close(fd);
	waitpid(pid, &status, 0);
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child");
	EXPECT(file_is(f, "L123456789abcdefghij", BLEN), "content");
}

TEST(merge_api_misuse)
{
	struct cowmap_merge *m;

	EXPECT(cowmap_merge_new("x", COWMAP_MERGE_PREFER_FIRST | COWMAP_MERGE_PREFER_LAST, &m) ==
	       -EINVAL, "both prefers");
	EXPECT(cowmap_merge_new("x", 1U << 20, &m) == -EINVAL, "flags");
	ASSERT(!cowmap_merge_new(tpath("nonexistent"), 0, &m), "new");
	EXPECT(cowmap_merge_run(m) == -ENOENT, "missing file");
	EXPECT(cowmap_merge_run(m) == -EINVAL, "second run");
	cowmap_merge_free(m);
}
