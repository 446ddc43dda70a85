// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile local users: journals planted in shared directories, logs of
 * other users in merge-all, a symbolic link as FILE under a root merge,
 * setuid bits copied by -o, a leftover journal replayed over newer data,
 * ranges beyond the file size limit.  Other users are simulated by
 * children that switch to uid/gid 1000 or 1001 (the tests run as root;
 * no account needs to exist).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "tutil.h"

#define BASE "0123456789abcdefghij"
#define BLEN 20
#define OWNER 1000
#define OTHER 1001
#define ROOT 0
#define BIG_OFF (1ULL << 62)

enum op { OP_RECOVER, OP_MERGE, OP_MERGE_ALL, OP_PLANT };

/* What a child does (as some user); see run_op(). */
struct op_arg {
	enum op op;
	const char *file, *log, *dir;
	unsigned int flags;
	const struct chg *c;	/* OP_PLANT: journal entries */
	int n;
	bool apply;		/* OP_PLANT: write the entries to the file too */
	bool redo;		/* OP_PLANT: without the old bytes */
	uint64_t fsize_limit;	/* RLIMIT_FSIZE if not 0 */
};

struct res {
	int ret;
	char msg[1024];
};

/* A complete journal for @a->file (as a merge writes it), left in place:
 * what a merge killed after the commit (or after the file writes) leaves,
 * or what another user plants. */
static int plant_journal(const struct op_arg *a)
{
	struct journal_target t = { .path = a->file, .undo = !a->redo };
	struct journal *j;
	struct stat st;
	char *jpath = journal_path(a->file);
	int ret;

	t.fd = open(a->file, a->apply ? O_RDWR : O_RDONLY);
	if (t.fd < 0 || fstat(t.fd, &st) < 0)
		return -errno;
	t.dev = (uint64_t)st.st_dev;
	t.ino = (uint64_t)st.st_ino;
	t.size = (uint64_t)st.st_size;
	ret = journal_begin(&j, jpath, &t);
	free(jpath);
	for (int i = 0; i < a->n && !ret; i++)
		ret = journal_add(j, a->c[i].off, a->c[i].new, a->c[i].old, a->c[i].len);
	if (!ret)
		ret = journal_commit(j);
	if (!ret && a->apply)
		ret = journal_apply(j);
	if (ret)
		journal_abort(j);
	else
		journal_release(j);
	close(t.fd);
	return ret;
}

static int run_op(const struct op_arg *a)
{
	struct cowmap_merge *m;
	int ret, added;

	if (a->fsize_limit) {
		struct rlimit rl = { a->fsize_limit, a->fsize_limit };

		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
	}
	switch (a->op) {
	case OP_RECOVER:
		return cowmap_recover(a->file, a->flags);
	case OP_MERGE:
		return merge(a->file, a->flags, NULL, 1, a->log);
	case OP_PLANT:
		return plant_journal(a);
	case OP_MERGE_ALL:
		break;
	}
	ret = cowmap_merge_new(a->file, a->flags, &m);
	if (ret)
		return ret;
	added = cowmap_merge_add_dir(m, a->dir);
	ret = added < 0 ? added : cowmap_merge_run(m);
	if (!ret && cowmap_merge_warning(m, 0))
		err_set(0, "%s", cowmap_merge_warning(m, 0));	/* for the parent */
	cowmap_merge_free(m);
	return ret ? ret : added;
}

/* Run @a in a child as @uid (gid the same, no groups); -1: as root, in a
 * child all the same (rlimits). */
static struct res as_user(int uid, const struct op_arg *a)
{
	struct res r = { INT_MIN, "" };
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return r;
	pid = fork();
	if (!pid) {
		close(p[0]);
		if (uid >= 0 && (setgroups(0, NULL) || setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) ||
				 setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid)))
			_exit(1);
		r.ret = run_op(a);
		snprintf(r.msg, sizeof(r.msg), "%s", cowmap_errmsg());
		_exit(write(p[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], &r, sizeof(r)) != sizeof(r))
		r.ret = INT_MIN;
	close(p[0]);
	waitpid(pid, NULL, 0);
	return r;
}

/* A directory under the test directory, with @mode and @uid; the test
 * directory itself becomes traversable for the simulated users. */
static const char *mkdir_as(const char *name, mode_t mode, int uid)
{
	const char *d = tpath(name);

	chmod(tmpdir(), 0711);
	mkdir(d, 0700);
	chown(d, (uid_t)uid, (gid_t)uid);
	chmod(d, mode);
	return d;
}

static char *join(const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *p = malloc(len);

	snprintf(p, len, "%s/%s", dir, name);
	return p;
}

static void give(const char *path, int uid, mode_t mode)
{
	lchown(path, (uid_t)uid, (gid_t)uid);
	if (mode)
		chmod(path, mode);
}

static const char *mkfile_as(const char *dir, const char *name, int uid, mode_t mode)
{
	char *f = join(dir, name);

	write_file(f, BASE, BLEN);
	give(f, uid, mode);
	return f;
}

#define NEED_ROOT() do {							\
	if (geteuid() != 0)						\
		SKIP("needs root to simulate other users");		\
} while (0)

static const struct chg evil[] = { { 0, 4, "0123", "EVIL" } };

/* A: .NAME.cowmap-journal planted in a sticky directory by a user who can
 * only read the file; the owner's recover and merge must not replay it. */
TEST(trust_planted_journal_refused)
{
	const char *d, *f, *log;
	struct op_arg a = { .c = evil, .n = 1 };
	struct chg c[] = { { 10, 1, "a", "A" } };
	char *jpath;
	struct res r;

	NEED_ROOT();
	d = mkdir_as("tA", 01777, ROOT);
	f = mkfile_as(d, "data", OWNER, 0644);
	log = join(d, "owner.log");
	mklog(log, f, c, 1);
	give(log, OWNER, 0644);
	jpath = journal_path(f);

	a.op = OP_PLANT;
	a.file = f;
	r = as_user(OTHER, &a);
	ASSERT(r.ret == 0, "uid %d could not plant a journal: %d %s", OTHER, r.ret, r.msg);
	chmod(jpath, 0644);	/* as uid 1001 would: readable by the owner */

	a.op = OP_RECOVER;
	r = as_user(OWNER, &a);
	EXPECT(r.ret == -EPERM, "recover of a planted journal: %d %s", r.ret, r.msg);
	EXPECT(strstr(r.msg, "owned by uid 1001") && strstr(r.msg, "remove it"),
	       "message: %s", r.msg);
	EXPECT(file_is(f, BASE, BLEN), "the planted bytes reached the file");
	a.op = OP_MERGE;
	a.log = log;
	r = as_user(OWNER, &a);
	EXPECT(r.ret == -EPERM, "merge with a planted journal: %d %s", r.ret, r.msg);
	EXPECT(file_is(f, BASE, BLEN), "the planted bytes reached the file");
	EXPECT(access(jpath, F_OK) == 0, "another user's journal was removed");
	unlink(jpath);

	/* the owner's own journal, but writable by others */
	a.op = OP_PLANT;
	r = as_user(OWNER, &a);
	ASSERT(r.ret == 0, "plant: %d %s", r.ret, r.msg);
	chmod(jpath, 0666);
	a.op = OP_RECOVER;
	r = as_user(OWNER, &a);
	EXPECT(r.ret == -EPERM && strstr(r.msg, "writable by group or others"),
	       "world-writable journal: %d %s", r.ret, r.msg);
	EXPECT(file_is(f, BASE, BLEN), "a world-writable journal was replayed");

	/* a symbolic link to a journal the owner wrote for the file */
	{
		char *own = join(d, "own.journal");

		rename(jpath, own);
		chmod(own, 0600);
		symlink(own, jpath);
		give(jpath, OTHER, 0);
		r = as_user(OWNER, &a);
		EXPECT(r.ret == -EPERM && strstr(r.msg, "symbolic link"),
		       "journal as a symlink: %d %s", r.ret, r.msg);
		EXPECT(file_is(f, BASE, BLEN), "a journal behind a symlink was replayed");
		unlink(own);
		free(own);
	}
	unlink(jpath);
	free(jpath);
}

/* A: merge-all merges only logs of the caller, the file's owner or root,
 * unless told to trust all logs. */
TEST(trust_merge_all_skips_other_users_logs)
{
	const char *d, *f, *logs;
	struct chg mine[] = { { 0, 2, "01", "XX" } };
	struct chg theirs[] = { { 5, 1, "5", "E" } };
	struct op_arg a = { .op = OP_MERGE_ALL };
	char *l1, *l2;
	struct res r;

	NEED_ROOT();
	d = mkdir_as("tA2", 0755, OWNER);
	f = mkfile_as(d, "data", OWNER, 0644);
	logs = mkdir_as("tA2/logs", 01777, ROOT);
	l1 = join(logs, "mine.log");
	l2 = join(logs, "theirs.log");
	mklog_meta(l1, f, mine, 1, 100, 1);
	mklog_meta(l2, f, theirs, 1, 200, 2);
	give(l1, OWNER, 0644);
	give(l2, OTHER, 0644);

	a.file = f;
	a.dir = logs;
	r = as_user(OWNER, &a);
	EXPECT(r.ret == 1, "merge-all as the owner: %d %s", r.ret, r.msg);
	EXPECT(strstr(r.msg, "theirs.log") && strstr(r.msg, "uid 1001"), "warning: %s", r.msg);
	EXPECT(file_is(f, "XX23456789abcdefghij", BLEN), "another user's log was merged");
	/* root merging the owner's file: the same */
	r = as_user(-1, &a);
	EXPECT(r.ret == 1, "merge-all as root: %d %s", r.ret, r.msg);
	EXPECT(file_is(f, "XX23456789abcdefghij", BLEN), "another user's log was merged by root");
	a.flags = COWMAP_MERGE_TRUST_ALL_LOGS;
	r = as_user(OWNER, &a);
	EXPECT(r.ret == 2, "merge-all trusting all logs: %d %s", r.ret, r.msg);
	EXPECT(file_is(f, "XX234E6789abcdefghij", BLEN), "trusted log not merged");
	free(l1);
	free(l2);
}

/* B: -o gives the copy the mode cp without -p would, and refuses to
 * write over the input itself. */
TEST(trust_output_mode_and_same_file)
{
	const char *f = tpath("tB.file"), *out = tpath("tB.out"), *link = tpath("tB.link");
	struct chg c[] = { { 0, 3, "012", "abc" } };
	struct stat s1, s2;
	mode_t old_mask;
	int ret;

	write_file(f, BASE, BLEN);
	chmod(f, 06755);
	mklog(tpath("tB.log"), f, c, 1);
	old_mask = umask(027);
	ret = merge(f, 0, out, 1, tpath("tB.log"));
	umask(old_mask);
	EXPECT(ret == 0, "merge -o: %d %s", ret, cowmap_errmsg());
	stat(out, &s2);
	EXPECT((s2.st_mode & 07777) == 0750, "output mode %04o, want 0750",
	       (unsigned int)(s2.st_mode & 07777));

	stat(f, &s1);
	ret = merge(f, 0, f, 1, tpath("tB.log"));
	EXPECT(ret == -EINVAL && strstr(cowmap_errmsg(), "is the input file"),
	       "merge -o FILE FILE: %d %s", ret, cowmap_errmsg());
	symlink(f, link);
	ret = merge(f, 0, link, 1, tpath("tB.log"));
	EXPECT(ret == -EINVAL, "merge -o LINK-TO-FILE FILE: %d %s", ret, cowmap_errmsg());
	stat(f, &s2);
	EXPECT(s1.st_ino == s2.st_ino, "the input was replaced by a new inode");
	EXPECT(file_is(f, BASE, BLEN), "input changed");
}

/* C: root merging through a symbolic link in another user's directory,
 * and root merging another user's logs into a file of root. */
TEST(trust_root_merge_symlink_and_foreign_logs)
{
	const char *target = tpath("tC.rootfile"), *ud, *logs;
	struct chg c[] = { { 0, 4, "0123", "PWND" } };
	struct op_arg a = { .op = OP_MERGE_ALL };
	char *link, *log;
	struct res r;

	NEED_ROOT();
	write_file(target, BASE, BLEN);
	ud = mkdir_as("tC", 0755, OTHER);
	logs = mkdir_as("tC/logs", 0755, OTHER);
	link = join(ud, "file");
	log = join(logs, "x.log");
	symlink(target, link);
	give(link, OTHER, 0);
	mklog(log, target, c, 1);
	give(log, OTHER, 0644);

	a.file = link;
	a.dir = logs;
	r = as_user(-1, &a);
	EXPECT(r.ret == -ELOOP && strstr(r.msg, "symbolic link"),
	       "merge-all through a symlink: %d %s", r.ret, r.msg);
	EXPECT(file_is(target, BASE, BLEN), "root's file changed through a symlink");
	a.op = OP_MERGE;
	a.log = log;
	r = as_user(-1, &a);
	EXPECT(r.ret == -ELOOP, "merge through a symlink: %d %s", r.ret, r.msg);
	EXPECT(file_is(target, BASE, BLEN), "root's file changed through a symlink");

	/* the real path: another user's log is not root's to merge */
	a.file = target;
	r = as_user(-1, &a);
	EXPECT(r.ret == -EPERM && strstr(r.msg, "uid 1001"),
	       "root merging uid 1001's log: %d %s", r.ret, r.msg);
	a.op = OP_MERGE_ALL;
	r = as_user(-1, &a);
	EXPECT(r.ret == 0, "root merge-all of uid 1001's logs: %d %s", r.ret, r.msg);
	EXPECT(file_is(target, BASE, BLEN), "root merged another user's log");
	a.flags = COWMAP_MERGE_TRUST_ALL_LOGS;
	r = as_user(-1, &a);
	EXPECT(r.ret == 1, "trusting all logs: %d %s", r.ret, r.msg);
	EXPECT(file_is(target, "PWND456789abcdefghij", BLEN), "trusted log not merged");
	free(link);
	free(log);
}

/* D: a merge killed after writing the file but before removing its
 * journal; another program then writes the file. */
static void leftover_journal_over_newer_data(bool redo)
{
	const char *f = tpath(redo ? "tDr.file" : "tD.file");
	struct chg c[] = { { 0, 4, "0123", "ABCD" }, { 8, 2, "89", "XY" } };
	struct op_arg a = { .op = OP_PLANT, .c = c, .n = 2, .apply = true, .redo = redo };
	char *jpath = journal_path(f);
	int fd, ret;

	write_file(f, BASE, BLEN);
	mklog(tpath("tD.log"), f, c, 1);
	a.file = f;
	ASSERT(run_op(&a) == 0, "journal: %s", cowmap_errmsg());
	ASSERT(file_is(f, "ABCD4567XYabcdefghij", BLEN), "journal not applied");
	fd = open(f, O_WRONLY);
	pwrite(fd, "Q", 1, 9);		/* the other program */
	close(fd);

	ret = cowmap_recover(f, 0);
	EXPECT(ret == -COWMAP_EBADJOURNAL && strstr(cowmap_errmsg(), "byte 9") &&
	       strstr(cowmap_errmsg(), "--discard"), "replay over newer data: %d %s",
	       ret, cowmap_errmsg());
	/* without the old bytes there is nothing to roll back to */
	ret = cowmap_recover(f, COWMAP_RECOVER_ROLLBACK);
	EXPECT(ret == (redo ? -EOPNOTSUPP : -COWMAP_EBADJOURNAL),
	       "rollback over newer data: %d %s", ret, cowmap_errmsg());
	ret = merge(f, 0, NULL, 1, tpath("tD.log"));
	EXPECT(ret == -COWMAP_EBADJOURNAL, "merge over newer data: %d %s", ret, cowmap_errmsg());
	EXPECT(file_is(f, "ABCD4567XQabcdefghij", BLEN), "the other program's byte is gone");
	EXPECT(access(jpath, F_OK) == 0, "journal removed");

	ret = cowmap_recover(f, COWMAP_RECOVER_DISCARD);
	EXPECT(ret == COWMAP_RECOVER_DISCARDED, "discard: %d %s", ret, cowmap_errmsg());
	EXPECT(access(jpath, F_OK) != 0, "journal left after discard");
	EXPECT(file_is(f, "ABCD4567XQabcdefghij", BLEN), "discard changed the file");
	free(jpath);
}

TEST(trust_leftover_journal_over_newer_data)
{
	leftover_journal_over_newer_data(false);
}

/* The same with a journal without the old bytes: their checksum tells. */
TEST(trust_leftover_redo_journal_over_newer_data)
{
	leftover_journal_over_newer_data(true);
}

/* Does the filesystem of the test directory refuse a file of BIG_OFF
 * bytes? (ext4 does; tmpfs, XFS and btrfs do not.) */
static bool fs_refuses_big(void)
{
	int fd = open(tpath("tE.probe"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	bool refused = fd >= 0 && ftruncate(fd, (off_t)(BIG_OFF + 8)) < 0 && errno == EFBIG;

	if (fd >= 0)
		close(fd);
	unlink(tpath("tE.probe"));
	return refused;
}

/* One case of E: a merge (or a recovery of a journal) with a range at 0
 * and one at @far, which the file cannot reach. */
static void check_far_range(const char *name, uint64_t far, uint64_t fsize_limit)
{
	const char *f = tpath(name);
	static uint8_t zero[4];
	struct chg c[] = { { 0, 2, "01", "XX" }, { far, 4, zero, "FAR!" } };
	struct op_arg a = { .op = OP_MERGE, .file = f, .flags = COWMAP_MERGE_PREFER_LAST,
			    .fsize_limit = fsize_limit };
	char log[256], *jpath = journal_path(f);
	struct res r;

	snprintf(log, sizeof(log), "%s.log", f);
	write_file(f, BASE, BLEN);
	mklog(log, f, c, 2);
	a.log = log;
	r = as_user(-1, &a);
	EXPECT(r.ret == -EFBIG && strstr(r.msg, "nothing written"),
	       "%s: merge beyond the limit: %d %s", name, r.ret, r.msg);
	EXPECT(file_is(f, BASE, BLEN), "%s: the first range was written", name);
	EXPECT(access(jpath, F_OK) != 0, "%s: a journal was left", name);
	unlink(jpath);

	/* a journal with such a range (as the old code left): checked whole */
	write_file(f, BASE, BLEN);
	a.op = OP_PLANT;
	a.c = c;
	a.n = 2;
	a.fsize_limit = 0;
	r = as_user(-1, &a);
	ASSERT(r.ret == 0, "%s: journal: %d %s", name, r.ret, r.msg);
	a.op = OP_RECOVER;
	a.flags = 0;
	a.fsize_limit = fsize_limit;
	r = as_user(-1, &a);
	EXPECT(r.ret == -EFBIG, "%s: recovery beyond the limit: %d %s", name, r.ret, r.msg);
	EXPECT(file_is(f, BASE, BLEN), "%s: recovery wrote the first entry", name);
	a.flags = COWMAP_RECOVER_ROLLBACK;
	r = as_user(-1, &a);
	EXPECT(r.ret == COWMAP_RECOVER_ROLLED_BACK, "%s: rollback: %d %s", name, r.ret, r.msg);
	EXPECT(file_is(f, BASE, BLEN), "%s: rollback changed the file", name);
	free(jpath);
}

/* E: records beyond the file size limit are refused before the commit. */
TEST(trust_range_beyond_file_size_limit)
{
	check_far_range("tE.rlimit", 2U << 20, 1U << 20);
	if (fs_refuses_big())
		check_far_range("tE.fsmax", BIG_OFF, 0);
	else
		DIAG("the filesystem of %s takes 2^62-byte files: only RLIMIT_FSIZE checked",
		     tmpdir());
}
