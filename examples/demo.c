// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap-demo: the whole workflow of the cowmap command (run, sessions,
 * log show, merge, merge-all), end to end.  Three ordinary writer programs
 * map two text files MAP_SHARED and write through plain pointers; 'cowmap
 * run' sends their mappings through /dev/cowmap.
 * While they run the files are untouched; when they exit the kernel has
 * written their changes to logs; the logs are shown and merged, one, then
 * all, and a conflict between two writers is caught (exit status 3,
 * nothing written) and resolved with --prefer last.
 *
 *   cowmap-demo [-k|--keep]      -k keeps the work directory
 *
 * Each step runs the cowmap command ($COWMAP, else "cowmap" in $PATH) as
 * the transcript shows it.  The demo checks every step's result and exits
 * 1 if one is not what it shows (2 on usage errors).  The writers are this
 * program (its argument "__writer"), a plain dynamically linked program
 * as far as cowmap run is concerned.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <linux/cowmap.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2
#define EXIT_CONFLICT	3	/* cowmap merge: conflicts, nothing written */

/* The filesystems cowmap supports (statfs f_type). */
#define EXT4_MAGIC	0xEF53UL
#define XFS_MAGIC	0x58465342UL
#define BTRFS_MAGIC	0x9123683EUL

static const char HELLO[] = "----- Hello World! -----\n";
static const char FOX[] = "The quick brown fox jumps over the lazy dog.\n";

struct writer {
	const char *name;
	const char *what;	/* for the reader */
	const char *edits[10];	/* FILE OLD NEW triples, NULL-terminated */
	pid_t pid;		/* while it runs */
	pid_t log_pid;		/* the pid in its logs' names */
	int go_fd;		/* write end: closing it lets the writer exit */
};

static struct writer writers[] = {
	{ .name = "A",
	  .what = "hello.txt: \"llo\" -> \"xxx\"; "
		  "fox.txt: \"quick\" -> \"swift\"",
	  .edits = { "hello.txt", "llo", "xxx", "fox.txt", "quick", "swift" } },
	{ .name = "B",
	  .what = "hello.txt: \"World\" -> \"Earth\"; fox.txt: \"brown\" -> \"black\", "
		  "\"lazy\" -> \"slow\"",
	  .edits = { "hello.txt", "World", "Earth", "fox.txt", "brown", "black",
		     "fox.txt", "lazy", "slow" } },
	{ .name = "C",
	  .what = "fox.txt: \"fox\" -> \"cat\", \"lazy\" -> \"cute\"",
	  .edits = { "fox.txt", "fox", "cat", "fox.txt", "lazy", "cute" } },
};

static void heading(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void heading(const char *fmt, ...)
{
	va_list ap;

	printf("\n== ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static int demo_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int demo_fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "cowmap-demo: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return EXIT_FAIL;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(s);

	if (fd < 0)
		return -errno;
	if (write(fd, s, len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	if (fsync(fd) < 0 || close(fd) < 0)
		return -errno;
	return 0;
}

/* "$ cat PATH" and its contents; 0 if they equal @expect. */
static int cat(const char *path, const char *expect)
{
	char buf[4096];
	ssize_t n;
	int fd;

	say("$ cat %s\n", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return demo_fail("%s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return demo_fail("%s: %s", path, strerror(errno));
	buf[n] = '\0';
	fwrite(buf, 1, (size_t)n, stdout);
	fflush(stdout);
	if (strcmp(buf, expect))
		return demo_fail("%s does not hold what it should:\n  expected: %s  found:    %s",
				 path, expect, buf);
	return 0;
}

/* The cowmap command the demo runs. */
static const char *cowmap_cmd(void)
{
	const char *p = getenv("COWMAP");

	return p && *p ? p : "cowmap";
}

/* Replace this process by "cowmap ARGS" (argv[0] "cowmap"). */
static void exec_cowmap(char **argv)
{
	execvp(cowmap_cmd(), argv);
	demo_fail("%s: %s", cowmap_cmd(), strerror(errno));
	_exit(127);
}

/* Run @argv ("cowmap", ARGS...), as "$ cowmap ARGS" shows it; its exit status. */
static int cowmap(char **argv)
{
	int status;
	pid_t pid;

	say("$ cowmap");
	for (int i = 1; argv[i]; i++)
		say(" %s", argv[i]);
	say("\n");
	pid = fork();
	if (pid < 0)
		return demo_fail("fork: %s", strerror(errno));
	if (pid == 0)
		exec_cowmap(argv);
	if (waitpid(pid, &status, 0) < 0)
		return demo_fail("waitpid: %s", strerror(errno));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define COWMAP(...) cowmap((char *[]){ "cowmap", __VA_ARGS__, NULL })

/* Whether @path is on a filesystem cowmap supports: ext4, XFS or btrfs. */
static bool supported_fs(const char *path)
{
	struct statfs sf;

	if (statfs(path, &sf) < 0)
		return false;
	return sf.f_type == EXT4_MAGIC || sf.f_type == XFS_MAGIC || sf.f_type == BTRFS_MAGIC;
}

/* A work directory on a filesystem cowmap supports. */
static int make_workdir(char *dir, size_t size)
{
	const char *cands[] = { getenv("COWMAP_SCRATCH"), getenv("TMPDIR"), "/var/tmp", "/tmp" };
	bool scratch = cands[0] && *cands[0];

	for (size_t i = 0; i < ARRAY_SIZE(cands); i++) {
		if (!cands[i] || !*cands[i])
			continue;
		if (!supported_fs(cands[i])) {
			if (!scratch)
				continue;
			/* The user chose it: say why, stop. */
			demo_fail("%s ($COWMAP_SCRATCH) is not on ext4, XFS or btrfs", cands[i]);
			return -1;
		}
		snprintf(dir, size, "%s/cowmap-demo.XXXXXX", cands[i]);
		if (!mkdtemp(dir)) {
			demo_fail("%s: %s", dir, strerror(errno));
			return -1;
		}
		return 0;
	}
	demo_fail("no temporary directory on ext4, XFS or btrfs ($TMPDIR, /var/tmp and "
		  "/tmp are not; tmpfs is not supported): set COWMAP_SCRATCH to a "
		  "directory on one of them");
	return -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Start writer @w under cowmap run; wait until it has written. */
static int start_writer(struct writer *w, const char *exe)
{
	int ready[2], go[2];
	char rfd[16], gfd[16];
	char *argv[32];
	int argc = 0;
	ssize_t n;
	char c;
	struct pollfd p;

	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		return demo_fail("pipe: %s", strerror(errno));
	say("writer %s: %s\n", w->name, w->what);
	say("$ cowmap run -f hello.txt -f fox.txt -d logs -- writer %s\n", w->name);
	fflush(NULL);
	w->pid = fork();
	if (w->pid < 0)
		return demo_fail("fork: %s", strerror(errno));
	if (w->pid == 0) {
		/* The writer keeps ready[1] and go[0] across exec. */
		if (fcntl(ready[1], F_SETFD, 0) || fcntl(go[0], F_SETFD, 0))
			_exit(EXIT_FAIL);
		snprintf(rfd, sizeof(rfd), "%d", ready[1]);
		snprintf(gfd, sizeof(gfd), "%d", go[0]);
		argv[argc++] = "cowmap";
		argv[argc++] = "run";
		argv[argc++] = "-f";
		argv[argc++] = "hello.txt";
		argv[argc++] = "-f";
		argv[argc++] = "fox.txt";
		argv[argc++] = "-d";
		argv[argc++] = "logs";
		argv[argc++] = "--";
		argv[argc++] = (char *)exe;
		argv[argc++] = "__writer";
		argv[argc++] = (char *)w->name;
		argv[argc++] = rfd;
		argv[argc++] = gfd;
		for (int i = 0; w->edits[i]; i++)
			argv[argc++] = (char *)w->edits[i];
		argv[argc] = NULL;
		exec_cowmap(argv);
	}
	close(ready[1]);
	close(go[0]);
	w->go_fd = go[1];
	w->log_pid = w->pid;
	p = (struct pollfd){ .fd = ready[0], .events = POLLIN };
	n = poll(&p, 1, 60000) == 1 ? read(ready[0], &c, 1) : -1;
	close(ready[0]);
	if (n != 1)
		return demo_fail("writer %s (pid %d) did not start", w->name, (int)w->pid);
	return 0;
}

static int stop_writers(void)
{
	int ret = 0;

	for (size_t i = 0; i < ARRAY_SIZE(writers); i++)
		if (writers[i].go_fd >= 0) {
			close(writers[i].go_fd);
			writers[i].go_fd = -1;
		}
	for (size_t i = 0; i < ARRAY_SIZE(writers); i++) {
		int status;

		if (writers[i].pid <= 0)
			continue;
		if (waitpid(writers[i].pid, &status, 0) < 0)
			ret = demo_fail("waitpid: %s", strerror(errno));
		else if (!WIFEXITED(status) || WEXITSTATUS(status))
			ret = demo_fail("writer %s (pid %d) failed (status 0x%x)",
					writers[i].name, (int)writers[i].pid, status);
		writers[i].pid = 0;
	}
	return ret;
}

/* logs/FILE.PID.*.cowlog of writer @w, or an empty string. */
static void find_log(const struct writer *w, const char *file, char *out, size_t size)
{
	char prefix[NAME_MAX];
	struct dirent *de;
	DIR *d = opendir("logs");

	out[0] = '\0';
	if (!d)
		return;
	snprintf(prefix, sizeof(prefix), "%s.%d.", file, (int)w->log_pid);
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)) &&
		    strstr(de->d_name, ".cowlog"))
			snprintf(out, size, "logs/%s", de->d_name);
	closedir(d);
}

static int demo(const char *exe)
{
	char logs[ARRAY_SIZE(writers)][2][PATH_MAX];
	int r;

	heading("1. Two files");
	if (write_file("hello.txt", HELLO) || write_file("fox.txt", FOX) ||
	    mkdir("logs", 0755))
		return demo_fail("cannot create the demo files: %s", strerror(errno));
	if (cat("hello.txt", HELLO) || cat("fox.txt", FOX))
		return EXIT_FAIL;

	heading("2. Three writers");
	say("Each writer is an ordinary program: it opens the files read-write, maps\n"
	    "them with mmap(MAP_SHARED) and changes words with memcpy through plain\n"
	    "pointers.  'cowmap run' starts it with those mappings sent through\n"
	    "/dev/cowmap: each writer gets a private view of the files, and its changes\n"
	    "go to a log in logs/ when it ends, however it ends.\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(writers); i++)
		if (start_writer(&writers[i], exe))
			return EXIT_FAIL;

	heading("3. While they run, the files are untouched");
	if (cat("hello.txt", HELLO) || cat("fox.txt", FOX))
		return EXIT_FAIL;
	say("Their sessions (one per process and file):\n");
	if (COWMAP("sessions"))
		return EXIT_FAIL;

	heading("4. The writers exit: the kernel has written their changes to logs");
	if (stop_writers())
		return EXIT_FAIL;
	say("One log per session, named FILE.PID.SESSION.cowlog.  Changes close to each\n"
	    "other are recorded as one range; bytes with the same Old and Data value in\n"
	    "it are unchanged.\n");
	for (size_t i = 0; i < ARRAY_SIZE(writers); i++) {
		find_log(&writers[i], "hello.txt", logs[i][0], sizeof(logs[i][0]));
		find_log(&writers[i], "fox.txt", logs[i][1], sizeof(logs[i][1]));
		for (int f = 0; f < 2; f++) {
			if (!logs[i][f][0])
				continue;
			say("\n");
			if (COWMAP("log", "show", logs[i][f]))
				return EXIT_FAIL;
		}
	}
	if (!logs[0][0][0] || !logs[1][0][0] || !logs[0][1][0] || !logs[1][1][0] ||
	    !logs[2][1][0])
		return demo_fail("a writer's log is missing in logs/");

	heading("5. Merge one log into its file");
	if ((r = COWMAP("merge", "hello.txt", logs[0][0])))
		return demo_fail("merge failed (status %d)", r);
	if (cat("hello.txt", "----- Hexxx World! -----\n"))
		return EXIT_FAIL;

	heading("6. Merge all logs of hello.txt, in time order");
	say("merge-all picks the logs recorded against hello.txt (same device and inode)\n"
	    "and skips the others; A's log is already in place, merging it again is\n"
	    "harmless.\n");
	if ((r = COWMAP("merge-all", "hello.txt", "logs")))
		return demo_fail("merge-all failed (status %d)", r);
	if (cat("hello.txt", "----- Hexxx Earth! -----\n"))
		return EXIT_FAIL;

	heading("7. A conflict: B and C both changed \"lazy\" in fox.txt");
	r = COWMAP("merge-all", "fox.txt", "logs");
	say("(exit status %d: conflicts, nothing written)\n", r);
	if (r != EXIT_CONFLICT)
		return demo_fail("merge-all should have found a conflict (status 3), got %d", r);
	if (cat("fox.txt", FOX))
		return EXIT_FAIL;

	heading("8. Resolve it: the last writer wins");
	if ((r = COWMAP("merge-all", "--prefer", "last", "fox.txt", "logs")))
		return demo_fail("merge-all --prefer last failed (status %d)", r);
	if (cat("fox.txt", "The swift black cat jumps over the cute dog.\n"))
		return EXIT_FAIL;
	return EXIT_OK;
}

static int writer_main(int argc, char **argv);

static void usage(FILE *f)
{
	fprintf(f, "Usage: cowmap-demo [-k|--keep]\n\n"
		"The whole workflow of the cowmap command, end to end: writers, logs,\n"
		"merges, a conflict.  Needs the cowmap module loaded and the cowmap\n"
		"command ($COWMAP, else cowmap in $PATH).\n\n"
		"Options:\n"
		"  -k, --keep           keep the work directory\n"
		"  -h, --help           show this help\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	char dir[PATH_MAX], exe[PATH_MAX];
	bool keep = false;
	ssize_t n;
	int c, r;

	if (argc > 1 && !strcmp(argv[1], "__writer"))
		return writer_main(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "kh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keep = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		demo_fail("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (access(COWMAP_DEVICE_PATH, R_OK | W_OK) < 0)
		return demo_fail("%s: %s%s", COWMAP_DEVICE_PATH, strerror(errno),
				 errno == ENOENT ? " (is the cowmap module loaded?)" : "");
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return demo_fail("/proc/self/exe: %s", strerror(errno));
	exe[n] = '\0';
	if (make_workdir(dir, sizeof(dir)))
		return EXIT_FAIL;
	if (chdir(dir) < 0)
		return demo_fail("%s: %s", dir, strerror(errno));

	for (size_t i = 0; i < ARRAY_SIZE(writers); i++)
		writers[i].go_fd = -1;
	say("cowmap-demo: private copy-on-write views of shared memory-mapped files\n");
	say("Work directory: %s\n", dir);
	r = demo(exe);
	if (stop_writers())
		r = EXIT_FAIL;
	if (chdir("/") < 0)
		r = EXIT_FAIL;
	if (keep)
		say("\nThe files and logs stay in %s\n", dir);
	else
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (r == EXIT_OK)
		say("\nDemo complete: every step gave the expected result.\n");
	return r;
}

/*
 * cowmap-demo __writer NAME READY_FD GO_FD [FILE OLD NEW]...: map each FILE
 * MAP_SHARED read-write, replace OLD by NEW through the mapping, print what
 * this process sees, tell READY_FD, wait for GO_FD to close, exit.
 */
static int writer_main(int argc, char **argv)
{
	struct { const char *path; char label[64]; char *map; size_t len; } maps[4];
	int nmaps = 0, ready, go;
	char c, comm[16];

	if (argc < 4 || (argc - 4) % 3)
		return EXIT_USAGE;
	ready = atoi(argv[2]);
	go = atoi(argv[3]);
	/* The command name sessions and logs show. */
	snprintf(comm, sizeof(comm), "writer-%s", argv[1]);
	prctl(PR_SET_NAME, comm);
	for (int i = 4; i < argc; i += 3) {
		const char *path = argv[i], *old = argv[i + 1], *new = argv[i + 2];
		char *at;
		int m;

		for (m = 0; m < nmaps; m++)
			if (!strcmp(maps[m].path, path))
				break;
		if (m == nmaps) {
			struct stat st;
			int fd = open(path, O_RDWR | O_CLOEXEC);

			if (fd < 0 || fstat(fd, &st) < 0 || nmaps == 4)
				return demo_fail("writer: %s: %s", path, strerror(errno));
			snprintf(maps[m].label, sizeof(maps[m].label), "%s:", path);
			maps[m].path = path;
			maps[m].len = (size_t)st.st_size;
			maps[m].map = mmap(NULL, maps[m].len, PROT_READ | PROT_WRITE, MAP_SHARED,
					   fd, 0);
			close(fd);
			if (maps[m].map == MAP_FAILED)
				return demo_fail("writer: mmap %s: %s", path, strerror(errno));
			nmaps++;
		}
		at = memmem(maps[m].map, maps[m].len, old, strlen(old));
		if (!at || strlen(new) != strlen(old))
			return demo_fail("writer: %s: cannot replace '%s'", path, old);
		memcpy(at, new, strlen(new));	/* a plain store into the mapping */
	}
	for (int m = 0; m < nmaps; m++) {
		printf("  writer %s (pid %d) sees %-11s ", argv[1], (int)getpid(), maps[m].label);
		fwrite(maps[m].map, 1, maps[m].len, stdout);
	}
	fflush(stdout);
	if (write(ready, "!", 1) != 1)
		return EXIT_FAIL;
	while (read(go, &c, 1) > 0)
		;
	return EXIT_OK;
}
