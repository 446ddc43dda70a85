// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile local users, part 2 (the library and the CLI): the CLI draining
 * into a planted file, log modes under the umask, many conflicts, a log
 * truncated under a merge, terminal escapes from logs, a merge lock held
 * by another user.  Other users are children that switch to uid/gid 1000
 * or 1001 (the tests run as root; no account needs to exist).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <dirent.h>
#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "tutil.h"

#define OWNER 1000
#define OTHER 1001

#define NEED_ROOT() do {							\
	if (geteuid() != 0)						\
		SKIP("needs root to simulate other users");		\
} while (0)

/* 5: drain -o never writes into a file that exists (another user could
 * have made it, and read or edit what is drained). */
TEST(hostile_drain_into_existing_file)
{
	char *d = tpath("h5"), *f, *l;
	const char *argv[] = { "cowmap", "drain", "7", "-o", NULL, NULL };
	struct cli_res r;
	struct stat st;

	NEED_ROOT();
	chmod(tmpdir(), 0711);
	mkdir(d, 01777);
	chmod(d, 01777);
	f = malloc(strlen(d) + 16);
	sprintf(f, "%s/s.log", d);
	l = malloc(strlen(d) + 16);
	sprintf(l, "%s/l.log", d);
	unlink(f);
	unlink(l);
	/* uid 1001 plants an empty 0666 file, and a link */
	write_file(f, "", 0);
	chown(f, OTHER, OTHER);
	chmod(f, 0666);
	symlink(f, l);
	lchown(l, OTHER, OTHER);

	argv[4] = f;
	r = run_cli(OWNER, argv);
	EXPECT(r.status == 1 && strstr(r.err, "exists; remove it or choose another name"),
	       "drain into a planted file: %d %s", r.status, r.err);
	cli_free(&r);
	argv[4] = l;
	r = run_cli(OWNER, argv);
	EXPECT(r.status == 1 && strstr(r.err, "exists; remove it or choose another name"),
	       "drain into a planted link: %d %s", r.status, r.err);
	cli_free(&r);
	EXPECT(stat(f, &st) == 0 && st.st_size == 0 && st.st_uid == OTHER,
	       "the planted file changed");
	free(f);
	free(l);
}

/* 8: the owner of a log truncates it (and makes it long again) while
 * another user's merges read it: each merge succeeds or fails with an
 * error, none dies of SIGBUS. */
TEST(hostile_log_truncated_while_read)
{
	enum { CHUNK = 256 << 10, NCHUNK = 16, SIZE = CHUNK * NCHUNK };
	char *f = tpath("h8.file"), *log = tpath("h8.log");
	static uint8_t zero[CHUNK], data[NCHUNK][CHUNK];
	struct chg c[NCHUNK];
	int merged = 0, failed = 0, killed = 0, sig = 0, st;
	struct stat lst;
	struct timespec t0, t;
	pid_t trunc;

	for (int i = 0; i < NCHUNK; i++) {
		fill_random(data[i], CHUNK);
		c[i] = (struct chg){ (uint64_t)i * CHUNK, CHUNK, zero, data[i] };
	}
	ASSERT(write_file(f, NULL, 0) == 0 && truncate(f, SIZE) == 0, "file");
	ASSERT(mklog(log, f, c, NCHUNK) == 0, "log: %s", cowmap_errmsg());
	ASSERT(stat(log, &lst) == 0, "stat");
	trunc = fork();
	if (!trunc) {
		int fd = open(log, O_WRONLY);

		for (;;) {
			ftruncate(fd, 4096);
			usleep(200);
			ftruncate(fd, lst.st_size);
			usleep(200);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		pid_t pid = fork();

		if (!pid) {
			/* every other merge reads the log the fallback way */
			if ((merged + failed) % 2)
				setenv("COWMAP_TEST_NO_MEMFD", "1", 1);
			_exit(merge(f, COWMAP_MERGE_DRY_RUN, NULL, 1, log) ? 1 : 0);
		}
		waitpid(pid, &st, 0);
		if (WIFSIGNALED(st)) {
			killed++;
			sig = WTERMSIG(st);
		} else if (WEXITSTATUS(st)) {
			failed++;
		} else {
			merged++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 2 && killed < 3);
	kill(trunc, SIGKILL);
	waitpid(trunc, NULL, 0);
	DIAG("%d merges succeeded, %d failed, %d killed", merged, failed, killed);
	EXPECT(!killed, "%d merges killed by signal %d (%s)", killed, sig, strsignal(sig));
}

/* In a child: /dev/cowmap is /dev/null (a private /dev), unlink fails
 * (seccomp), so the preload's log outlives its failed bind; then the
 * preload's mmap of @file. */
static void preload_leave_log(const char *file, const char *logdir)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __NR_unlink
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unlink, 1, 0),
#else
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unlinkat, 1, 0),
#endif
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unlinkat, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	void *(*pmmap)(void *, size_t, int, int, int, off_t);
	char env[256];
	struct stat st;
	void *h;
	int fd = open("/dev/null", O_WRONLY);

	if (fd >= 0)
		dup2(fd, 2);	/* the preload says the bind failed */
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755") ||
	    mknod("/dev/cowmap", S_IFCHR | 0666, makedev(1, 3)))
		_exit(2);
	fd = open(file, O_RDWR);
	if (fd < 0 || fstat(fd, &st))
		_exit(3);
	snprintf(env, sizeof(env), "%llu:%llu:6836", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);	/* name "h6" */
	setenv("COWMAP_RUN_FILES", env, 1);
	setenv("COWMAP_RUN_LOGDIR", logdir, 1);
	umask(022);
	h = dlopen(COWMAP_PRELOAD_SO, RTLD_NOW | RTLD_LOCAL);
	pmmap = h ? (void *(*)(void *, size_t, int, int, int, off_t))dlsym(h, "mmap") : NULL;
	if (!pmmap || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		_exit(4);
	_exit(pmmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? 0 : 5);
}

/* 6: a log of 'cowmap run' is 0600 whatever the file's mode: a 0666
 * file in a 0700 directory does not get a world-writable log. */
TEST(hostile_run_log_mode)
{
	char *d = tpath("h6"), *f = tpath("h6/file"), *logdir = tpath("h6/logs");
	struct dirent *e;
	int st, found = 0;
	DIR *dir;
	pid_t pid;

	NEED_ROOT();
	mkdir(d, 0700);
	mkdir(logdir, 0700);
	write_file(f, "0123456789", 10);
	chmod(f, 0666);
	pid = fork();
	if (!pid)
		preload_leave_log(f, logdir);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) == 2)
		SKIP("no private /dev here (mount namespace): %d", st);
	ASSERT(WEXITSTATUS(st) == 0, "the preload's mmap: status %d", WEXITSTATUS(st));
	dir = opendir(logdir);
	ASSERT(dir, "%s", logdir);
	while ((e = readdir(dir))) {
		struct stat ls;
		char p[PATH_MAX];

		if (e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, "..")))
			continue;
		snprintf(p, sizeof(p), "%s/%s", logdir, e->d_name);
		if (stat(p, &ls))
			continue;
		found++;
		EXPECT((ls.st_mode & 07777) == 0600, "log %s has mode %04o", e->d_name,
		       (unsigned int)(ls.st_mode & 07777));
		unlink(p);
	}
	closedir(dir);
	EXPECT(found == 1, "%d logs left by the failed bind", found);
}

/* 7: a log with every other byte stale: millions of conflicts are
 * counted, the first ones kept, in bounded memory. */
TEST(hostile_many_conflicts_bounded)
{
	enum { SIZE = 4 << 20, N = SIZE / 2 };
	char *f = tpath("h7.file"), *log = tpath("h7.log");
	const char *argv[] = { "cowmap", "merge", "--dry-run", f, log, NULL };
	uint8_t *file = malloc(SIZE), *old = calloc(1, SIZE), *new = malloc(SIZE);
	struct chg c = { 0, SIZE, old, new };
	struct { int ret; uint64_t conflicts, listed; long maxrss; } r = { 0 };
	struct cli_res cr;
	int p[2];
	pid_t pid;

	ASSERT(file && old && new, "out of memory");
	memset(new, 0xff, SIZE);
	for (size_t i = 0; i < SIZE; i++)
		file[i] = i & 1 ? 0x55 : 0;
	ASSERT(write_file(f, old, SIZE) == 0, "file");
	ASSERT(mklog(log, f, &c, 1) == 0, "log: %s", cowmap_errmsg());
	ASSERT(write_file(f, file, SIZE) == 0, "file");
	free(file);
	free(old);
	free(new);
	ASSERT(pipe(p) == 0, "pipe");
	pid = fork();
	if (!pid) {
		struct cowmap_merge *m;
		struct cowmap_merge_stats st;
		struct cowmap_conflict cf;
		struct rusage ru;

		r.ret = merge_keep(&m, f, COWMAP_MERGE_DRY_RUN, NULL, 1, log);
		cowmap_merge_stats(m, &st);
		r.conflicts = st.conflicts;
		while (cowmap_merge_conflict(m, r.listed, &cf) == 0)
			r.listed++;
		getrusage(RUSAGE_SELF, &ru);
		r.maxrss = ru.ru_maxrss;
		_exit(write(p[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	ASSERT(read(p[0], &r, sizeof(r)) == sizeof(r), "the merge died");
	close(p[0]);
	waitpid(pid, NULL, 0);
	DIAG("%llu conflicts, %llu kept, max RSS %ld KiB", (unsigned long long)r.conflicts,
	     (unsigned long long)r.listed, r.maxrss);
	EXPECT(r.ret == -COWMAP_ECONFLICT, "merge: %d", r.ret);
	EXPECT(r.conflicts == N, "%llu conflicts counted, want %d",
	       (unsigned long long)r.conflicts, N);
	EXPECT(r.listed == 1000, "%llu conflicts kept, want the first 1000",
	       (unsigned long long)r.listed);
	EXPECT(r.maxrss < 96 << 10, "max RSS %ld KiB", r.maxrss);

	cr = run_cli(-1, argv);
	EXPECT(cr.status == 3 && strstr(cr.out, "and 2096152 more conflicting ranges, not listed"),
	       "cowmap merge: %d %.300s", cr.status, cr.out);
	cli_free(&cr);
}

/* 10: uid 1001, who can only read the file, holds a flock on it: the
 * owner's merge fails within its wait, naming the holder. */
TEST(hostile_merge_lock_held_by_reader)
{
	char *d = tpath("h10"), *f = tpath("h10/file"), *log = tpath("h10/l.log");
	const char *argv[] = { "cowmap", "merge", "--wait", "1", f, log, NULL };
	struct chg c[] = { { 0, 2, "01", "XX" } };
	struct timespec t0, t;
	struct cli_res r;
	char pidstr[32];
	int p[2], st;
	double secs;
	pid_t holder, pid;

	NEED_ROOT();
	chmod(tmpdir(), 0711);
	mkdir(d, 0755);
	chown(d, OWNER, OWNER);
	write_file(f, "0123456789", 10);
	mklog(log, f, c, 1);
	chown(f, OWNER, OWNER);
	chown(log, OWNER, OWNER);
	chmod(f, 0644);
	ASSERT(pipe(p) == 0, "pipe");
	holder = fork();
	if (!holder) {
		int fd;

		if (setgroups(0, NULL) || setresgid(OTHER, OTHER, OTHER) ||
		    setresuid(OTHER, OTHER, OTHER))
			_exit(1);
		fd = open(f, O_RDONLY);
		if (fd < 0 || flock(fd, LOCK_SH))
			_exit(1);
		write(p[1], "L", 1);
		sleep(8);
		_exit(0);
	}
	close(p[1]);
	ASSERT(read(p[0], pidstr, 1) == 1, "the holder could not lock the file");
	close(p[0]);
	snprintf(pidstr, sizeof(pidstr), "pid %d holds it", (int)holder);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = run_cli(OWNER, argv);
	clock_gettime(CLOCK_MONOTONIC, &t);
	secs = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
	EXPECT(r.status == 1 && strstr(r.err, "locked by another process") &&
	       strstr(r.err, pidstr) && secs >= 0.9 && secs < 4,
	       "merge --wait 1 (%.1f s): %d %s", secs, r.status, r.err);
	cli_free(&r);

	/* the library's own wait, set by the program */
	pid = fork();
	if (!pid) {
		alarm(5);
		cowmap_set_lock_wait(300);
		_exit(merge(f, 0, NULL, 1, log) == -EWOULDBLOCK ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "library merge under a held lock: %#x", st);
	EXPECT(file_is(f, "0123456789", 10), "merged under another's lock");
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
}

static bool has_esc(const struct cli_res *r)
{
	return strchr(r->out, 0x1b) || strchr(r->err, 0x1b);
}

/* 9: a comm and log names with terminal escapes are printed escaped, in
 * log show, conflict lines and merge-all warnings; JSON escapes them too. */
TEST(hostile_terminal_escapes_escaped)
{
	char *d = tpath("h9"), *f = tpath("h9/file"), *log = tpath("h9/\033[2J.log");
	char *dir = tpath("h9/logs"), *other = tpath("h9/logs/\033[31mX.log");
	const char *show[] = { "cowmap", "log", "show", log, NULL };
	const char *json[] = { "cowmap", "log", "show", "--json", log, NULL };
	const char *mrg[] = { "cowmap", "merge", "--dry-run", f, log, NULL };
	const char *all[] = { "cowmap", "merge-all", "--dry-run", f, dir, NULL };
	struct chg c[] = { { 0, 2, "01", "XX" } };
	struct cli_res r;
	int st;
	pid_t pid;

	NEED_ROOT();
	mkdir(d, 0755);
	mkdir(dir, 0755);
	write_file(f, "0123456789", 10);
	pid = fork();
	if (!pid) {
		prctl(PR_SET_NAME, "\033[2J\033[31mX");
		_exit(mklog(log, f, c, 1) || mklog(other, f, c, 1));
	}
	waitpid(pid, &st, 0);
	ASSERT(WIFEXITED(st) && !WEXITSTATUS(st), "logs");
	chown(other, OTHER, OTHER);

	r = run_cli(-1, show);
	EXPECT(r.status == 0 && !has_esc(&r) && strstr(r.out, "(\\x1b[2J\\x1b[31mX)"),
	       "log show: %d %s %s", r.status, r.out, r.err);
	cli_free(&r);
	r = run_cli(-1, json);
	EXPECT(r.status == 0 && !has_esc(&r) && strstr(r.out, "\\u001b[2J"),
	       "log show --json: %d %s %s", r.status, r.out, r.err);
	cli_free(&r);
	write_file(f, "ab23456789", 10);	/* a stale log: a conflict line */
	r = run_cli(-1, mrg);
	EXPECT(r.status == 3 && !has_esc(&r) && strstr(r.out, "\\x1b[2J.log expected"),
	       "merge: %d %s %s", r.status, r.out, r.err);
	cli_free(&r);
	r = run_cli(-1, all);	/* root skips uid 1001's log, with a warning */
	EXPECT(!has_esc(&r) && strstr(r.err, "\\x1b[31mX.log"),
	       "merge-all: %d %s %s", r.status, r.out, r.err);
	cli_free(&r);
}

/* 7: many logs over one range, each writing other bytes: one conflict per
 * pair of neighbouring logs, whole-range long; the work per byte is linear
 * in the logs (it was quadratic: 1000 logs took 1.7 s). */
TEST(hostile_many_logs_one_range)
{
	enum { NLOGS = 2000, LEN = 2048 };
	char *f = fpath("h7b.file"), name[64];
	static char newb[NLOGS][LEN];
	struct cowmap_merge_stats st;
	struct cowmap_merge *m;
	struct timespec t0, t;
	char old[LEN];
	double secs;
	int ret;

	memset(old, 'o', LEN);
	ASSERT(write_file(f, old, LEN) == 0, "file");
	ASSERT(cowmap_merge_new(f, COWMAP_MERGE_DRY_RUN, &m) == 0, "%s", cowmap_errmsg());
	for (int i = 0; i < NLOGS; i++) {
		struct chg c = { 0, LEN, old, newb[i] };

		memset(newb[i], 'A' + i % 2, LEN);	/* neighbours differ */
		snprintf(name, sizeof(name), "h7b.%d.log", i);
		ASSERT(mklog(fpath(name), f, &c, 1) == 0, "log %d: %s", i, cowmap_errmsg());
		ASSERT(cowmap_merge_add_log(m, fpath(name)) == 0, "%s", cowmap_errmsg());
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = cowmap_merge_run(m);
	clock_gettime(CLOCK_MONOTONIC, &t);
	secs = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
	cowmap_merge_stats(m, &st);
	DIAG("%d logs over %d bytes: %llu conflicts in %.2f s", NLOGS, LEN,
	     (unsigned long long)st.conflicts, secs);
	EXPECT(ret == -COWMAP_ECONFLICT, "merge: %d", ret);
	EXPECT(st.conflicts == NLOGS - 1 && st.conflict_bytes == (uint64_t)(NLOGS - 1) * LEN,
	       "%llu conflicts of %llu bytes", (unsigned long long)st.conflicts,
	       (unsigned long long)st.conflict_bytes);
	EXPECT(secs < 2.5, "%.2f s", secs);
	cowmap_merge_free(m);
	for (int i = 0; i < NLOGS; i++) {
		snprintf(name, sizeof(name), "h7b.%d.log", i);
		unlink(fpath(name));
	}
}
