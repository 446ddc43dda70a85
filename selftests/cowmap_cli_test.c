// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the cowmap command (cli/) in the VM: every subcommand's normal
 * path and its errors (bad arguments: usage on stderr, exit status 2,
 * nothing changed), --json output checked by a real JSON parser, what a
 * non-root user (uid 1000) may and may not do and the kernel's extack
 * message it gets, monitor notifications, 'cowmap run' through a program
 * that maps a file twice, forks, execs and is killed with SIGKILL, and the
 * demo program driving it, cowmap-demo (examples/demo.c).
 *
 * The tool under test is $COWMAP_CLI, else "cowmap" in $PATH; the demo is
 * $COWMAP_DEMO, else "cowmap-demo" in $PATH.  Files live
 * under $COWMAP_SCRATCH (ext4).  This binary is also the program that
 * 'cowmap run' runs (argv[1] = --run-parent / --run-exec-child).
 */

/* Paths here are far shorter than PATH_MAX; truncation is not a concern. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "cowmap_harness.h"
#include "cowmap_json_valid.h"
#include "cowmap.h"

#define PG		4096UL
#define TESTER_UID	1000
#define TESTER_GID	1000
#define MODPARAM	"/sys/module/cowmap/parameters/"

/* Every non-empty line of @s is a JSON value (JSON Lines). */
static bool json_lines_valid(const char *s, int *lines)
{
	*lines = 0;
	while (s && *s) {
		const char *nl = strchrnul(s, '\n');

		if (nl > s) {
			if (!json_valid_n(s, (size_t)(nl - s)))
				return false;
			(*lines)++;
		}
		s = *nl ? nl + 1 : nl;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Running the tool
 * ------------------------------------------------------------------------
 */
struct res {
	int status;		/* exit status, or 128 + signal */
	char *out, *err;
};

static const char *cli_path(void)
{
	const char *p = getenv("COWMAP_CLI");

	return p && *p ? p : "cowmap";
}

static void res_free(struct res *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static void drop_to_tester(void)
{
	if (setgroups(0, NULL) || setresgid(TESTER_GID, TESTER_GID, TESTER_GID) ||
	    setresuid(TESTER_UID, TESTER_UID, TESTER_UID)) {
		perror("drop privileges");
		_exit(126);
	}	/*
	 * Dumpable again, as after an exec: a process that changed its uid
	 * without exec is not, and cowmap keeps the sessions it binds out of
	 * its uid's other processes' reach (netlink), like its memory.
	 */
	prctl(PR_SET_DUMPABLE, 1);
}

static void slurp(int fd, char **buf, size_t *len, size_t *cap)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n <= 0)
		return;
	if (*len + (size_t)n + 1 > *cap) {
		*cap = (*len + (size_t)n + 1) * 2;
		*buf = realloc(*buf, *cap);
	}
	memcpy(*buf + *len, tmp, (size_t)n);
	*len += (size_t)n;
	(*buf)[*len] = '\0';
}

/*
 * Run "@prog ARGS..." as root (@uid 0) or as the tester, with @env
 * ("NAME=value", or NULL) added; collect stdout and stderr.
 */
static void prog_runv(struct res *r, const char *prog, uid_t uid, const char *env,
		      const char *const *args)
{
	int o[2], e[2];
	size_t ol = 0, oc = 0, el = 0, ec = 0;
	const char *argv[64];
	int n = 0, status;
	pid_t pid;

	argv[n++] = prog;
	while (*args && n < 63)
		argv[n++] = *args++;
	argv[n] = NULL;
	r->out = calloc(1, 1);
	r->err = calloc(1, 1);
	oc = ec = 1;
	if (pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC))
		abort();
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		dup2(devnull, 0);
		dup2(o[1], 1);
		dup2(e[1], 2);
		if (uid)
			drop_to_tester();
		if (env)
			putenv((char *)env);
		execvp(argv[0], (char **)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	for (;;) {
		struct pollfd p[2] = { { o[0], POLLIN, 0 }, { e[0], POLLIN, 0 } };
		int open_fds = 0;

		if (o[0] >= 0)
			open_fds++;
		if (e[0] >= 0)
			open_fds++;
		if (!open_fds)
			break;
		if (poll(p, 2, -1) < 0)
			continue;
		for (int i = 0; i < 2; i++) {
			int *fd = i ? &e[0] : &o[0];

			if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (p[i].revents & POLLIN) {
				size_t before = i ? el : ol;

				if (i)
					slurp(*fd, &r->err, &el, &ec);
				else
					slurp(*fd, &r->out, &ol, &oc);
				if ((i ? el : ol) != before)
					continue;
			}
			close(*fd);
			*fd = -1;
			p[i].fd = -1;
		}
	}
	waitpid(pid, &status, 0);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Run "cowmap ARGS..." (the tool under test), as prog_runv(). */
static void cli_runv(struct res *r, uid_t uid, const char *env, const char *const *args)
{
	prog_runv(r, cli_path(), uid, env, args);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define CLI(r, ...) cli_runv((r), 0, NULL, ARGS(__VA_ARGS__))
#define CLI_AS_TESTER(r, ...) cli_runv((r), TESTER_UID, NULL, ARGS(__VA_ARGS__))
/* A command that must succeed and print valid JSON. */
#define CLI_JSON(r, ...)						\
	do {								\
		CLI(r, __VA_ARGS__);					\
		EXPECT_EQ(0, (r)->status) SHOW(r);			\
		EXPECT_TRUE(json_valid((r)->out)) SHOW(r);		\
	} while (0)

/* Log a command's output when an assertion about it fails. */
#define SHOW(r) TH_LOG("status %d\n--- stdout:\n%s--- stderr:\n%s---", (r)->status, \
		       (r)->out, (r)->err)

/* ------------------------------------------------------------------------
 * Files, sessions, parameters
 * ------------------------------------------------------------------------
 */
static void write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || fsync(fd) || close(fd))
		abort();
	chmod(path, mode);
}

/* The whole file, NUL-terminated; *len its size. */
static char *read_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st))
		return NULL;
	buf = calloc(1, (size_t)st.st_size + 1);
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	if (len)
		*len = (size_t)st.st_size;
	return buf;
}

static bool file_equals(const char *path, const void *expect, size_t len)
{
	size_t n;
	char *buf = read_file(path, &n);
	bool eq = buf && n == len && !memcmp(buf, expect, len);

	free(buf);
	return eq;
}

static uint64_t read_param(const char *name)
{
	char path[256], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), MODPARAM "%s", name);
	f = fopen(path, "r");
	if (!f)
		return UINT64_MAX;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strtoull(buf, NULL, 10);
}

static void write_param(const char *name, uint64_t v)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), MODPARAM "%s", name);
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "%llu\n", (unsigned long long)v);
		fclose(f);
	}
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int count_files(const char *dir, const char *suffix)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), s = strlen(suffix);

		if (de->d_name[0] != '.' && l > s && !strcmp(de->d_name + l - s, suffix))
			n++;
	}
	closedir(d);
	return n;
}

/*
 * A session of another process owned by @uid that wrote @text at offset 0
 * of @path (optionally bound to log @log); it lives until stop_holder().
 */
struct holder {
	pid_t pid;
	uint64_t id;
	int go;
};

static int start_holder(struct holder *h, uid_t uid, const char *path, const char *log,
			const char *text)
{
	int ready[2], go[2];
	ssize_t n;

	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		return -1;
	h->pid = fork();
	if (h->pid == 0) {
		struct cowmap_session *s;
		char *map, c;

		/* Only our ends: another holder's would keep it alive. */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != ready[1] && fd != go[0])
				close(fd);
		if (uid)
			drop_to_tester();
		if (cowmap_session_open(path, 0, log, 0, &s)) {
			fprintf(stderr, "holder: %s\n", cowmap_errmsg());
			_exit(1);
		}
		if (cowmap_session_map(s, 0, PG, PROT_READ | PROT_WRITE, (void **)&map))
			_exit(1);
		memcpy(map, text, strlen(text));
		h->id = cowmap_session_id(s);
		if (write(ready[1], &h->id, sizeof(h->id)) != sizeof(h->id))
			_exit(1);
		while (read(go[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	h->go = go[1];
	n = read(ready[0], &h->id, sizeof(h->id));
	close(ready[0]);
	return n == sizeof(h->id) ? 0 : -1;
}

static int stop_holder(struct holder *h)
{
	int status = -1;

	if (h->pid <= 0)
		return -1;
	close(h->go);
	waitpid(h->pid, &status, 0);
	h->pid = 0;
	return status;
}

/* Make a log against @file with one record: strlen(@new) bytes at @off. */
static int make_log(const char *log, const char *file, uint64_t off, const char *old,
		    const char *new)
{
	struct cowmap_log_writer *w;

	if (cowmap_log_create(log, file, 0, &w))
		return -1;
	if (cowmap_log_append(w, off, old, new, (uint32_t)strlen(new))) {
		cowmap_log_writer_close(w);
		return -1;
	}
	return cowmap_log_writer_close(w);
}

/* ------------------------------------------------------------------------
 * The fixture: a scratch directory (mode 0777) under $COWMAP_SCRATCH.
 * ------------------------------------------------------------------------
 */
FIXTURE(cli) {
	char dir[PATH_MAX];
	char file[PATH_MAX];	/* "text", 3 pages, mode 0644 */
	char *orig;		/* its contents */
	size_t orig_len;
};

FIXTURE_SETUP(cli)
{
	const char *scratch = getenv("COWMAP_SCRATCH");
	struct res r;

	/*
	 * Outside the VM a missing module, scratch directory or CLI is a
	 * skip; in it ($COWMAP_VM set) each is a failure: the VM has them all.
	 */
	if (getenv("COWMAP_VM")) {
		ASSERT_EQ(0, access(COWMAP_DEVICE_PATH, F_OK))
			TH_LOG(COWMAP_DEVICE_PATH " is absent in the VM");
		ASSERT_TRUE(scratch && *scratch) TH_LOG("$COWMAP_SCRATCH unset in the VM");
	}
	if (access(COWMAP_DEVICE_PATH, F_OK))
		SKIP({ fflush(NULL); _exit(255); }, COWMAP_DEVICE_PATH " absent: module not loaded");
	if (!scratch || !*scratch)
		SKIP({ fflush(NULL); _exit(255); }, "COWMAP_SCRATCH is not set");
	CLI(&r, "--version");
	if (getenv("COWMAP_VM"))
		ASSERT_EQ(0, r.status) TH_LOG("%s --version: status %d in the VM: %s",
					      cli_path(), r.status, r.err ? r.err : "");
	if (r.status != 0)
		SKIP({ fflush(NULL); _exit(255); }, "%s does not run (status %d)", cli_path(),
		     r.status);
	res_free(&r);
	snprintf(self->dir, sizeof(self->dir), "%s/cli.XXXXXX", scratch);
	ASSERT_NE(NULL, mkdtemp(self->dir));
	ASSERT_EQ(0, chmod(self->dir, 0777));
	snprintf(self->file, sizeof(self->file), "%s/text", self->dir);
	self->orig_len = 3 * PG;
	self->orig = malloc(self->orig_len);
	for (size_t i = 0; i < self->orig_len; i++)
		self->orig[i] = "abcdefghijklmnopqrstuvwxyz\n"[i % 27];
	write_file(self->file, self->orig, self->orig_len, 0644);
}

FIXTURE_TEARDOWN(cli)
{
	if (self->dir[0])
		nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(self->orig);
}

static char *path_in(const char *dir, const char *name)
{
	static char bufs[8][PATH_MAX];
	static int i;
	char *b = bufs[i++ % 8];

	snprintf(b, PATH_MAX, "%s/%s", dir, name);
	return b;
}

/* ------------------------------------------------------------------------
 * help, version, usage errors
 * ------------------------------------------------------------------------
 */
static const char *const subcommands[] = {
	"status", "sessions", "config", "monitor", "drain", "discard", "log", "merge",
	"merge-all", "recover", "run", "help",
};

TEST_F_TIMEOUT(cli, help_and_version, 120)
{
	struct res r;

	CLI(&r, "--help");
	EXPECT_EQ(0, r.status);
	EXPECT_NE(NULL, strstr(r.out, "Usage: cowmap"));
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++) {
		EXPECT_NE(NULL, strstr(r.out, subcommands[i])) TH_LOG("%s", subcommands[i]);
	}
	res_free(&r);
	CLI(&r, "--version");
	EXPECT_EQ(0, r.status);
	EXPECT_EQ(0, strncmp(r.out, "cowmap ", 7));
	res_free(&r);
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++) {
		CLI(&r, subcommands[i], "--help");
		EXPECT_EQ(0, r.status) SHOW(&r);
		EXPECT_NE(NULL, strstr(r.out, "Usage: cowmap ")) SHOW(&r);
		EXPECT_EQ('\0', r.err[0]) SHOW(&r);
		res_free(&r);
		CLI(&r, subcommands[i], "--version");
		EXPECT_EQ(0, r.status) SHOW(&r);
		EXPECT_EQ(0, strncmp(r.out, "cowmap ", 7)) SHOW(&r);
		res_free(&r);
		CLI(&r, "help", subcommands[i]);
		EXPECT_EQ(0, r.status) SHOW(&r);
		res_free(&r);
	}
	CLI(&r, "help", "nosuch");
	EXPECT_EQ(2, r.status);
	res_free(&r);
	CLI(&r, "nosuch");
	EXPECT_EQ(2, r.status);
	EXPECT_NE(NULL, strstr(r.err, "unknown subcommand 'nosuch'"));
	EXPECT_NE(NULL, strstr(r.err, "Usage: cowmap"));
	EXPECT_EQ('\0', r.out[0]);
	res_free(&r);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

TEST_F_TIMEOUT(cli, usage_errors_change_nothing, 120)
{
	uint64_t sp = read_param("max_session_pages"), tp = read_param("max_total_pages");
	char *log = path_in(self->dir, "must-not-exist.cowlog");
	char *out = path_in(self->dir, "out");
	struct {
		const char *args[10];
		const char *msg;
	} cases[] = {
		{ { "status", "extra" }, "unexpected argument" },
		{ { "status", "--bogus" }, "unknown option '--bogus'" },
		{ { "sessions", "abc" }, "not a session id" },
		{ { "sessions", "1", "2" }, "too many arguments" },
		{ { "config", "max_session_pages" }, "has no value" },
		{ { "config", "max_session_pages", "12x" }, "not a number" },
		{ { "config", "max_session_pages", "-1" }, "unknown option '-1'" },
		{ { "config", "max_session_pages", "1k" }, "not a number" },
		{ { "config", "nosuch", "1" }, "unknown key" },
		{ { "config", "max_session_pages", "1", "max_session_pages", "2" }, "twice" },
		{ { "config", "max_total_pages", "7", "bogus", "1" }, "unknown key" },
		{ { "monitor", "-c", "0" }, "not a positive count" },
		{ { "monitor", "extra" }, "unexpected argument" },
		{ { "drain" }, "session id is needed" },
		{ { "drain", "0", "-o", log }, "not a session id" },
		{ { "drain", "abc", "-o", log }, "not a session id" },
		{ { "drain", "1", "2", "-o", log }, "too many arguments" },
		{ { "drain", "1", "-o" }, "needs an argument" },
		{ { "discard" }, "session id is needed" },
		{ { "discard", "-5" }, "unknown option" },
		{ { "discard", "1", "2" }, "too many arguments" },
		{ { "log" }, "a verb is needed" },
		{ { "log", "frob", log }, "unknown verb" },
		{ { "log", "show" }, "a log file is needed" },
		{ { "merge", self->file }, "at least one log" },
		{ { "merge" }, "a file and at least one log" },
		{ { "merge", "--prefer", "middle", self->file, log }, "--prefer takes" },
		{ { "merge", "-o", out, "--bogus", self->file, log }, "unknown option" },
		{ { "merge-all", self->file }, "a file and a directory" },
		{ { "merge-all", self->file, self->dir, "x" }, "too many arguments" },
		{ { "recover" }, "a file is needed" },
		{ { "recover", self->file, "x" }, "too many arguments" },
		{ { "run" }, "a program to run is needed" },
		{ { "run", "-f", self->file }, "a program to run is needed" },
		{ { "run", "--", "true" }, "at least one -f FILE" },
		{ { "run", "-x", "--", "true" }, "unknown option '-x'" },
		{ { "help", "a", "b" }, "too many arguments" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct res r;

		cli_runv(&r, 0, NULL, cases[i].args);
		EXPECT_EQ(2, r.status) TH_LOG("case %zu (%s %s)", i, cases[i].args[0],
					     cases[i].args[1] ? cases[i].args[1] : "");
		EXPECT_NE(NULL, strstr(r.err, cases[i].msg)) SHOW(&r);
		EXPECT_NE(NULL, strstr(r.err, "Usage: cowmap")) SHOW(&r);
		/* The error, one usage line and a hint: not the whole help. */
		EXPECT_NE(NULL, strstr(r.err, "--help' for more")) SHOW(&r);
		EXPECT_EQ(3, count_lines(r.err)) SHOW(&r);
		EXPECT_EQ('\0', r.out[0]) SHOW(&r);
		res_free(&r);
	}
	/* Nothing changed. */
	EXPECT_EQ(sp, read_param("max_session_pages"));
	EXPECT_EQ(tp, read_param("max_total_pages"));
	EXPECT_FALSE(exists(log));
	EXPECT_FALSE(exists(out));
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));
}

/* ------------------------------------------------------------------------
 * status, config
 * ------------------------------------------------------------------------
 */
TEST_F(cli, status)
{
	char version[64] = "", want[128];
	struct res r;
	FILE *f = fopen("/sys/module/cowmap/version", "r");

	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(version, sizeof(version), f));
	fclose(f);
	version[strcspn(version, "\n")] = '\0';

	CLI(&r, "status");
	ASSERT_EQ(0, r.status) SHOW(&r);
	snprintf(want, sizeof(want), "loaded, version %s", version);
	EXPECT_NE(NULL, strstr(r.out, want)) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "max_session_pages")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "COW faults")) SHOW(&r);
	res_free(&r);

	cli_runv(&r, 0, NULL, (const char *const[]){ NULL });	/* no arguments */
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, want)) SHOW(&r);
	res_free(&r);

	CLI(&r, "status", "--json");
	ASSERT_EQ(0, r.status) SHOW(&r);
	EXPECT_TRUE(json_valid(r.out)) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "\"loaded\":true")) SHOW(&r);
	snprintf(want, sizeof(want), "\"version\":\"%s\"", version);
	EXPECT_NE(NULL, strstr(r.out, want)) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "\"cow_faults\":")) SHOW(&r);
	res_free(&r);

	/* An unprivileged user may look. */
	CLI_AS_TESTER(&r, "status", "--json");
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_TRUE(json_valid(r.out)) SHOW(&r);
	res_free(&r);
}

TEST_F(cli, config)
{
	uint64_t sp = read_param("max_session_pages"), tp = read_param("max_total_pages");
	char want[128];
	struct res r;

	CLI(&r, "config");
	ASSERT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "max_session_pages")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "max_total_pages")) SHOW(&r);
	res_free(&r);

	CLI(&r, "config", "max_session_pages", "123", "max_total_pages", "4567");
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "max_session_pages  123")) SHOW(&r);
	res_free(&r);
	EXPECT_EQ(123, read_param("max_session_pages"));
	EXPECT_EQ(4567, read_param("max_total_pages"));

	/* Only what is given changes. */
	CLI(&r, "config", "max_session_pages", "0");
	EXPECT_EQ(0, r.status) SHOW(&r);
	res_free(&r);
	EXPECT_EQ(0, read_param("max_session_pages"));
	EXPECT_EQ(4567, read_param("max_total_pages"));

	CLI_JSON(&r, "config", "--json");
	snprintf(want, sizeof(want), "{\"max_session_pages\":0,\"max_total_pages\":4567}");
	EXPECT_NE(NULL, strstr(r.out, want)) SHOW(&r);
	res_free(&r);

	/* Restore through the tool. */
	snprintf(want, sizeof(want), "%llu", (unsigned long long)sp);
	{
		char tps[32];

		snprintf(tps, sizeof(tps), "%llu", (unsigned long long)tp);
		CLI(&r, "config", "max_session_pages", want, "max_total_pages", tps);
	}
	EXPECT_EQ(0, r.status) SHOW(&r);
	res_free(&r);
	EXPECT_EQ(sp, read_param("max_session_pages"));
	EXPECT_EQ(tp, read_param("max_total_pages"));
	write_param("max_session_pages", sp);
	write_param("max_total_pages", tp);
}

TEST_F(cli, config_needs_admin)
{
	uint64_t sp = read_param("max_session_pages");
	struct res r;

	CLI_AS_TESTER(&r, "config", "max_session_pages", "5");
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "cowmap config: set configuration: Operation not "
			       "permitted")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "CAP_SYS_ADMIN")) SHOW(&r);
	res_free(&r);
	EXPECT_EQ(sp, read_param("max_session_pages"));

	CLI_AS_TESTER(&r, "config", "--json");
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_TRUE(json_valid(r.out)) SHOW(&r);
	res_free(&r);
}

/* ------------------------------------------------------------------------
 * sessions, drain, discard; permissions
 * ------------------------------------------------------------------------
 */
TEST_F(cli, sessions)
{
	struct holder h = {};
	char id[32], want[PATH_MAX + 64];
	struct res r;

	ASSERT_EQ(0, start_holder(&h, 0, self->file, NULL, "HELLO"));
	snprintf(id, sizeof(id), "%llu", (unsigned long long)h.id);

	CLI(&r, "sessions");
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "ID")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, self->file)) SHOW(&r);
	res_free(&r);

	CLI_JSON(&r, "sessions", "--json");
	snprintf(want, sizeof(want), "{\"id\":%s,", id);
	EXPECT_NE(NULL, strstr(r.out, want)) SHOW(&r);
	snprintf(want, sizeof(want), "\"path\":\"%s\"", self->file);
	EXPECT_NE(NULL, strstr(r.out, want)) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "\"private_pages\":1")) SHOW(&r);
	res_free(&r);

	CLI(&r, "sessions", id);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "Private pages:  1")) SHOW(&r);
	res_free(&r);
	CLI_JSON(&r, "sessions", "--json", id);
	res_free(&r);

	CLI(&r, "sessions", "999999999");
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "session 999999999: No such file or directory: no "
			       "such session")) SHOW(&r);
	res_free(&r);

	/* __complete for the bash completion. */
	CLI(&r, "__complete", "sessions");
	EXPECT_EQ(0, r.status) SHOW(&r);
	snprintf(want, sizeof(want), "%s\n", id);
	EXPECT_NE(NULL, strstr(r.out, want)) SHOW(&r);
	res_free(&r);
	CLI(&r, "__complete", "subcommands");
	EXPECT_NE(NULL, strstr(r.out, "merge-all\n")) SHOW(&r);
	EXPECT_EQ(NULL, strstr(r.out, "__complete")) SHOW(&r);
	res_free(&r);

	EXPECT_EQ(0, stop_holder(&h));
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));
}

TEST_F(cli, drain_and_discard)
{
	char *log = path_in(self->dir, "drained.cowlog");
	char *log2 = path_in(self->dir, "bound.cowlog");
	struct holder h = {}, hb = {};
	char id[32], idb[32];
	struct res r;

	ASSERT_EQ(0, start_holder(&h, 0, self->file, NULL, "Drain\001Me\n"));
	snprintf(id, sizeof(id), "%llu", (unsigned long long)h.id);

	CLI(&r, "drain", id, "-o", log);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "1 record drained")) SHOW(&r);
	res_free(&r);

	CLI(&r, "log", "show", log);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "Offset: 0, Length: 9, Old: abcdefghi, Data: "
			       "Drain\\x01Me\\n")) SHOW(&r);
	res_free(&r);
	CLI_JSON(&r, "log", "show", "--json", log);
	EXPECT_NE(NULL, strstr(r.out, "\"new\":\"447261696e014d650a\"")) SHOW(&r);
	res_free(&r);

	/* A non-empty log is refused, and stays as it was. */
	{
		size_t before, after;
		char *a = read_file(log, &before), *b;

		CLI(&r, "drain", id, "-o", log);
		EXPECT_EQ(1, r.status) SHOW(&r);
		EXPECT_NE(NULL, strstr(r.err, "not empty")) SHOW(&r);
		res_free(&r);
		b = read_file(log, &after);
		EXPECT_EQ(before, after);
		EXPECT_EQ(0, memcmp(a, b, before));
		free(a);
		free(b);
	}
	/* No -o and no log of its own: the kernel's reason, and a hint. */
	CLI(&r, "drain", id);
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "has no log of its own")) SHOW(&r);
	res_free(&r);

	CLI(&r, "discard", id);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "discarded")) SHOW(&r);
	res_free(&r);
	CLI(&r, "sessions", "--json", id);
	EXPECT_NE(NULL, strstr(r.out, "\"private_pages\":0")) SHOW(&r);
	res_free(&r);
	CLI(&r, "discard", "999999999");
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "no such session")) SHOW(&r);
	res_free(&r);
	EXPECT_EQ(0, stop_holder(&h));

	/* A session bound to a log: drain appends to it. */
	ASSERT_EQ(0, start_holder(&hb, 0, self->file, log2, "BOUND"));
	snprintf(idb, sizeof(idb), "%llu", (unsigned long long)hb.id);
	CLI(&r, "drain", idb);
	EXPECT_EQ(0, r.status) SHOW(&r);
	res_free(&r);
	CLI(&r, "log", "show", log2);
	EXPECT_NE(NULL, strstr(r.out, "Old: abcde, Data: BOUND")) SHOW(&r);
	res_free(&r);
	EXPECT_EQ(0, stop_holder(&hb));
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));
}

TEST_F(cli, other_users_sessions)
{
	char *tlog = path_in(self->dir, "tester.cowlog");
	struct holder root = {}, mine = {};
	char rid[32], tid[32], want[64];
	struct res r;

	ASSERT_EQ(0, start_holder(&root, 0, self->file, NULL, "ROOT"));
	ASSERT_EQ(0, start_holder(&mine, TESTER_UID, self->file, NULL, "MINE"));
	snprintf(rid, sizeof(rid), "%llu", (unsigned long long)root.id);
	snprintf(tid, sizeof(tid), "%llu", (unsigned long long)mine.id);

	/* The tester sees its own session only. */
	CLI_AS_TESTER(&r, "sessions", "--json");
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_TRUE(json_valid(r.out)) SHOW(&r);
	snprintf(want, sizeof(want), "{\"id\":%s,", tid);
	EXPECT_NE(NULL, strstr(r.out, want)) SHOW(&r);
	snprintf(want, sizeof(want), "{\"id\":%s,", rid);
	EXPECT_EQ(NULL, strstr(r.out, want)) SHOW(&r);
	res_free(&r);
	/* Root sees both. */
	CLI(&r, "sessions", "--json");
	EXPECT_NE(NULL, strstr(r.out, want)) SHOW(&r);
	snprintf(want, sizeof(want), "{\"id\":%s,", tid);
	EXPECT_NE(NULL, strstr(r.out, want)) SHOW(&r);
	res_free(&r);

	/* Nor look at, discard or drain root's: the kernel's reasons. */
	CLI_AS_TESTER(&r, "sessions", rid);
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "Operation not permitted: session belongs to another "
			       "user (needs CAP_SYS_ADMIN)")) SHOW(&r);
	res_free(&r);
	CLI_AS_TESTER(&r, "discard", rid);
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "cowmap discard: discard session")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "Operation not permitted: not the session's owner "
			       "(needs CAP_SYS_ADMIN)")) SHOW(&r);
	res_free(&r);
	CLI_AS_TESTER(&r, "drain", rid, "-o", tlog);
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "not the session's owner (needs CAP_SYS_ADMIN)"))
		SHOW(&r);
	res_free(&r);
	EXPECT_FALSE(exists(tlog));	/* nothing left behind */
	CLI(&r, "sessions", "--json", rid);
	EXPECT_NE(NULL, strstr(r.out, "\"private_pages\":1")) SHOW(&r);
	res_free(&r);

	/* Its own: drain and discard work. */
	CLI_AS_TESTER(&r, "drain", tid, "-o", tlog);
	EXPECT_EQ(0, r.status) SHOW(&r);
	res_free(&r);
	CLI_AS_TESTER(&r, "log", "show", tlog);
	EXPECT_NE(NULL, strstr(r.out, "Old: abcd, Data: MINE")) SHOW(&r);
	res_free(&r);
	CLI_AS_TESTER(&r, "discard", tid);
	EXPECT_EQ(0, r.status) SHOW(&r);
	res_free(&r);
	/* Root may act on anyone's. */
	CLI(&r, "discard", tid);
	EXPECT_EQ(0, r.status) SHOW(&r);
	res_free(&r);

	EXPECT_EQ(0, stop_holder(&root));
	EXPECT_EQ(0, stop_holder(&mine));
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));
}

/* ------------------------------------------------------------------------
 * monitor
 * ------------------------------------------------------------------------
 */

/* Start "cowmap ARGS" in the background (as @uid) with stdout to @out_path. */
static pid_t spawn_cli_as(uid_t uid, const char *out_path, const char *const *args)
{
	const char *argv[16];
	int n = 0;
	pid_t pid;

	argv[n++] = cli_path();
	while (*args)
		argv[n++] = *args++;
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		if (uid)
			drop_to_tester();
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	return pid;
}

static pid_t spawn_cli(const char *out_path, const char *const *args)
{
	return spawn_cli_as(0, out_path, args);
}

enum poke {
	POKE_CLOSE,		/* open and close a session here */
	POKE_EXIT,		/* a child opens one and exits without closing it */
};

/* Make sessions come and go until @pid exits (at most @secs seconds). */
static int poke_until_exit(pid_t pid, const char *file, int secs, enum poke how)
{
	int status;

	for (int i = 0; i < secs * 10; i++) {
		struct cowmap_session *s;
		pid_t c;

		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (how == POKE_CLOSE) {
			/* Long enough for monitor to ask for its details. */
			if (cowmap_session_open(file, 0, NULL, 0, &s) == 0) {
				usleep(300000);
				cowmap_session_close(s);
			}
		} else {
			fflush(NULL);
			c = fork();
			if (c == 0)	/* exit(2) ends it, in the exit path */
				_exit(cowmap_session_open(file, 0, NULL, 0, &s) ? 1 : 0);
			waitpid(c, &status, 0);
		}
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/*
 * "monitor --json -c 2" into @out while sessions of @file come and go
 * (@how): its output, which must be JSON lines (*@lines of them).
 */
static char *monitor_json(struct __test_metadata *_metadata, const char *file,
			  const char *out, enum poke how, int *lines)
{
	size_t len;
	char *text;

	ASSERT_EQ(0, poke_until_exit(spawn_cli(out, ARGS("monitor", "--json", "-c", "2")),
				     file, 20, how));
	text = read_file(out, &len);
	ASSERT_NE(NULL, text);
	EXPECT_TRUE(json_lines_valid(text, lines)) TH_LOG("%s", text);
	return text;
}

TEST_F_TIMEOUT(cli, monitor, 120)
{
	char *out = path_in(self->dir, "monitor.out");
	size_t len;
	char *text;
	int lines;

	text = monitor_json(_metadata, self->file, out, POKE_CLOSE, &lines);
	EXPECT_EQ(2, lines) TH_LOG("%s", text);
	EXPECT_NE(NULL, strstr(text, "\"event\":\"session-new\"")) TH_LOG("%s", text);
	EXPECT_NE(NULL, strstr(text, "\"path\":")) TH_LOG("%s", text);
	free(text);

	ASSERT_EQ(0, poke_until_exit(spawn_cli(out, ARGS("monitor", "-c", "2")),
				     self->file, 20, POKE_CLOSE));
	text = read_file(out, &len);
	ASSERT_NE(NULL, text);
	EXPECT_NE(NULL, strstr(text, "session-new session ")) TH_LOG("%s", text);
	EXPECT_NE(NULL, strstr(text, self->file)) TH_LOG("%s", text);
	free(text);

	/*
	 * A user may not watch (monitor_needs_admin): refused with status 1
	 * and a message, nothing on stdout; a user's bad option is a usage
	 * error (status 2) naming the option, before that refusal.
	 */
	{
		struct res r;

		CLI_AS_TESTER(&r, "monitor", "-c", "1");
		EXPECT_EQ(1, r.status) SHOW(&r);
		EXPECT_NE(NULL, strstr(r.err, "CAP_SYS_ADMIN")) SHOW(&r);
		EXPECT_STREQ("", r.out) SHOW(&r);
		res_free(&r);
		CLI_AS_TESTER(&r, "monitor", "--bogus");
		EXPECT_EQ(2, r.status) SHOW(&r);
		EXPECT_NE(NULL, strstr(r.err, "unknown option '--bogus'")) SHOW(&r);
		EXPECT_EQ(NULL, strstr(r.err, "CAP_SYS_ADMIN")) SHOW(&r);
		EXPECT_STREQ("", r.out) SHOW(&r);
		res_free(&r);
	}
}

/* ------------------------------------------------------------------------
 * log show
 * ------------------------------------------------------------------------
 */
TEST_F(cli, log_show)
{
	char *log = path_in(self->dir, "bin.cowlog");
	char *torn = path_in(self->dir, "torn.cowlog");
	char *bad = path_in(self->dir, "bad.cowlog");
	struct cowmap_log_writer *w;
	const char newb[] = { 'x', 0, '\\', '\t', (char)0xff, '"' };
	char big[200];
	struct res r;
	size_t len;
	char *buf;

	memset(big, 'B', sizeof(big));
	ASSERT_EQ(0, cowmap_log_create(log, self->file, 0, &w));
	ASSERT_EQ(0, cowmap_log_append(w, 8, "ijklmn", newb, sizeof(newb)));
	ASSERT_EQ(0, cowmap_log_append(w, 1000, self->orig + 1000, big, sizeof(big)));
	ASSERT_EQ(0, cowmap_log_writer_close(w));

	CLI(&r, "log", "show", log);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "Records:  2")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "Offset: 8, Length: 6, Old: ijklmn, Data: "
			       "x\\x00\\\\\\t\\xff\"\n")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "...(+136 bytes)")) SHOW(&r);
	res_free(&r);
	CLI(&r, "log", "show", "--full", log);
	EXPECT_EQ(NULL, strstr(r.out, "...(+")) SHOW(&r);
	res_free(&r);
	CLI_JSON(&r, "log", "show", "--json", log, log);
	EXPECT_NE(NULL, strstr(r.out, "\"new\":\"78005c09ff22\"")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "\"torn\":false")) SHOW(&r);
	res_free(&r);

	/* A torn tail: reported, records before it shown. */
	buf = read_file(log, &len);
	ASSERT_NE(NULL, buf);
	write_file(torn, buf, len - 20, 0644);
	CLI(&r, "log", "show", torn);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "Torn:     tail at byte")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "Offset: 8, Length: 6")) SHOW(&r);
	res_free(&r);
	CLI(&r, "log", "show", "--json", torn);
	EXPECT_TRUE(json_valid(r.out)) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "\"torn\":true")) SHOW(&r);
	res_free(&r);

	/* A damaged header: refused with the library's reason. */
	buf[20] ^= 0x55;
	write_file(bad, buf, len, 0644);
	free(buf);
	CLI(&r, "log", "show", bad);
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "cowmap log show: ")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "bad.cowlog")) SHOW(&r);
	res_free(&r);
	CLI(&r, "log", "show", path_in(self->dir, "nosuch"));
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "No such file")) SHOW(&r);
	res_free(&r);
}

/* ------------------------------------------------------------------------
 * merge, merge-all, recover
 * ------------------------------------------------------------------------
 */
TEST_F(cli, merge)
{
	char *l1 = path_in(self->dir, "l1.cowlog"), *l2 = path_in(self->dir, "l2.cowlog");
	char *l3 = path_in(self->dir, "l3.cowlog"), *out = path_in(self->dir, "merged");
	char *other = path_in(self->dir, "other"), *lo = path_in(self->dir, "other.cowlog");
	char *expect = malloc(self->orig_len);
	struct res r;

	ASSERT_EQ(0, make_log(l1, self->file, 4, "efgh", "1111"));
	ASSERT_EQ(0, make_log(l2, self->file, 6, "ghij", "2222"));	/* overlaps l1 */
	ASSERT_EQ(0, make_log(l3, self->file, 5000, self->orig + 5000, "333"));
	write_file(other, "other file\n", 11, 0644);
	ASSERT_EQ(0, make_log(lo, other, 0, "other", "OTHER"));

	/* Dry run: a report, nothing written. */
	CLI(&r, "merge", "--dry-run", self->file, l1, l3);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "Dry run:")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));

	/* A conflict: exit 3, every conflict listed, nothing written. */
	CLI(&r, "merge", self->file, l1, l2, l3);
	EXPECT_EQ(3, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "conflict: bytes 6-7 (2): ")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "nothing written")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));
	CLI(&r, "merge", "--json", self->file, l1, l2, l3);
	EXPECT_EQ(3, r.status) SHOW(&r);
	EXPECT_TRUE(json_valid(r.out)) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "\"result\":\"conflicts\"")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "\"kind\":\"logs\",\"resolved\":false,\"offset\":6,"
			       "\"length\":2")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));
	CLI(&r, "merge", "--dry-run", self->file, l1, l2);
	EXPECT_EQ(3, r.status) SHOW(&r);
	res_free(&r);

	/* A merged copy: the file stays. */
	memcpy(expect, self->orig, self->orig_len);
	memcpy(expect + 4, "1122", 4);
	memcpy(expect + 8, "22", 2);
	memcpy(expect + 5000, "333", 3);
	CLI(&r, "merge", "--prefer", "last", "-o", out, self->file, l1, l2, l3);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "resolved conflict: bytes 6-7")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(out, expect, self->orig_len));
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));

	/* A log of another file: refused unless --force; nothing written. */
	CLI(&r, "merge", self->file, l1, lo);
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "other.cowlog")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));
	/* A log that is not a log. */
	CLI(&r, "merge", self->file, l1, other);
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "cowmap merge: ")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));

	/* In place, --prefer first, JSON report. */
	memcpy(expect, self->orig, self->orig_len);
	memcpy(expect + 4, "1111", 4);
	memcpy(expect + 8, "22", 2);
	memcpy(expect + 5000, "333", 3);
	CLI_JSON(&r, "merge", "--json", "--prefer", "first", self->file, l1, l2, l3);
	EXPECT_NE(NULL, strstr(r.out, "\"result\":\"merged\"")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, expect, self->orig_len));
	/* Merging again is harmless (already applied)... */
	CLI(&r, "merge", self->file, l1, l3);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "already in place")) SHOW(&r);
	res_free(&r);
	/* ...but l2 is now stale where l1 won. */
	CLI(&r, "merge", self->file, l2);
	EXPECT_EQ(3, r.status) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, expect, self->orig_len));
	free(expect);
}

TEST_F_TIMEOUT(cli, merge_all_and_recover, 300)
{
	char *logs = path_in(self->dir, "logs");
	char *other = path_in(self->dir, "other");
	char *expect = malloc(self->orig_len);
	char name[PATH_MAX];
	struct res r;
	bool done = false;

	ASSERT_EQ(0, mkdir(logs, 0755));
	write_file(other, "other file\n", 11, 0644);
	snprintf(name, sizeof(name), "%s/a.cowlog", logs);
	ASSERT_EQ(0, make_log(name, self->file, 0, "abc", "AAA"));
	snprintf(name, sizeof(name), "%s/b.cowlog", logs);
	ASSERT_EQ(0, make_log(name, self->file, 2, "cde", "BBB"));	/* conflict at 2 */
	snprintf(name, sizeof(name), "%s/o.cowlog", logs);
	ASSERT_EQ(0, make_log(name, other, 0, "other", "OTHER"));
	snprintf(name, sizeof(name), "%s/notes.txt", logs);
	write_file(name, "not a log\n", 10, 0644);

	CLI(&r, "merge-all", self->file, logs);
	EXPECT_EQ(3, r.status) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));

	CLI_JSON(&r, "merge-all", "--json", "--dry-run", "--prefer", "last", self->file, logs);
	EXPECT_NE(NULL, strstr(r.out, "\"skipped_logs\":1")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "\"result\":\"planned\"")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));

	memcpy(expect, self->orig, self->orig_len);
	memcpy(expect, "AABBB", 5);
	CLI(&r, "merge-all", "--prefer", "last", self->file, logs);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "1 log of another file skipped")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, expect, self->orig_len));
	EXPECT_TRUE(file_equals(other, "other file\n", 11));

	CLI(&r, "merge-all", self->file, path_in(self->dir, "nosuchdir"));
	EXPECT_EQ(1, r.status) SHOW(&r);
	res_free(&r);

	/* recover: nothing to do... */
	CLI(&r, "recover", self->file);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "no interrupted merge")) SHOW(&r);
	res_free(&r);
	/* ...then merges killed at each crash point: after recover the file
	 * is wholly old or wholly new, and a complete one is replayed. */
	snprintf(name, sizeof(name), "%s/c.cowlog", logs);
	ASSERT_EQ(0, make_log(name, self->file, 100, self->orig + 100, "CRASH"));
	memcpy(expect + 100, "CRASH", 5);
	for (int point = 1; point < 40 && !done; point++) {
		char env[64], *before = read_file(self->file, NULL);
		size_t len;
		char *now;

		snprintf(env, sizeof(env), "COWMAP_TEST_CRASH_AT=%d", point);
		cli_runv(&r, 0, env, ARGS("merge", self->file, name));
		done = r.status == 0;
		EXPECT_TRUE(r.status == 0 || r.status == 128 + SIGKILL) SHOW(&r);
		res_free(&r);
		CLI(&r, "recover", self->file);
		EXPECT_EQ(0, r.status) SHOW(&r);
		res_free(&r);
		now = read_file(self->file, &len);
		EXPECT_TRUE(!memcmp(now, expect, len) || !memcmp(now, before, len))
			TH_LOG("crash point %d: the file is neither old nor new", point);
		if (!memcmp(now, expect, len))
			done = true;
		free(now);
		free(before);
	}
	EXPECT_TRUE(done);
	EXPECT_TRUE(file_equals(self->file, expect, self->orig_len));
	free(expect);
}

/* ------------------------------------------------------------------------
 * run: a program that maps the file twice (through a hard link, too),
 * forks (the child shares the session), execs a child (a session of its
 * own), and is killed with SIGKILL.  Every change reaches the logs and
 * merge-all rebuilds what the processes saw.
 * ------------------------------------------------------------------------
 */
#define RUN_P1_OFF	0
#define RUN_P2_OFF	(PG + 100)	/* second mapping: file offset PG */
#define RUN_FORK_OFF	200
#define RUN_EXEC_OFF	(2 * PG + 300)

static void report_ready(int fd)
{
	pid_t me = getpid();

	if (write(fd, &me, sizeof(me)) != sizeof(me))
		_exit(1);
}

static int run_exec_child(char **argv)
{
	/* argv: --run-exec-child FILE READY_FD */
	int fd = open(argv[2], O_RDWR);
	char *m;

	if (fd < 0)
		return 1;
	m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 2 * PG);
	if (m == MAP_FAILED)
		return 1;
	memcpy(m + 300, "exec-child", 10);
	report_ready(atoi(argv[3]));
	for (;;)
		pause();
}

static int run_parent(char **argv)
{
	/* argv: --run-parent FILE LINK READY_FD */
	int fd = open(argv[2], O_RDWR), fd2 = open(argv[3], O_RDWR), ready = atoi(argv[4]), fd3;
	char *m1, *m2, *m3, rfd[16];
	pid_t c1, c2;

	if (fd < 0 || fd2 < 0)
		return 1;
	m1 = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	m2 = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, PG);
	if (m1 == MAP_FAILED || m2 == MAP_FAILED)
		return 1;
	memcpy(m1 + RUN_P1_OFF, "parent-map1", 11);
	memcpy(m2 + 100, "parent-map2", 11);
	/* A third mapping, read-only, from an O_RDONLY fd: the same session,
	 * so it shows what this process wrote.  Writable from that fd: EACCES,
	 * as for the file itself. */
	fd3 = open(argv[2], O_RDONLY);
	if (fd3 < 0 || mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd3, 0) != MAP_FAILED ||
	    errno != EACCES)
		return 2;
	m3 = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd3, 0);
	if (m3 == MAP_FAILED || memcmp(m3, "parent-map1", 11) || memcmp(m3 + PG + 100,
									 "parent-map2", 11))
		return 3;
	c1 = fork();
	if (c1 == 0) {
		memcpy(m1 + RUN_FORK_OFF, "child-fork", 10);
		report_ready(ready);
		for (;;)
			pause();
	}
	c2 = fork();
	if (c2 == 0) {
		snprintf(rfd, sizeof(rfd), "%d", ready);
		execl("/proc/self/exe", "cowmap_cli_test", "--run-exec-child", argv[2], rfd,
		      (char *)NULL);
		_exit(1);
	}
	report_ready(ready);
	for (;;)
		pause();
}

TEST_F_TIMEOUT(cli, run, 120)
{
	char *lnk = path_in(self->dir, "text-link"), *logs = path_in(self->dir, "runlogs");
	char *expect = malloc(self->orig_len), exe[PATH_MAX], rfd[16];
	int ready[2], status, nready = 0, nlogs;
	pid_t pids[3], tool;
	struct res r;
	ssize_t n;

	ASSERT_EQ(0, link(self->file, lnk));
	ASSERT_EQ(0, mkdir(logs, 0755));
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ASSERT_LT(0, n);
	exe[n] = '\0';
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
	snprintf(rfd, sizeof(rfd), "%d", ready[1]);

	fflush(NULL);
	tool = fork();
	if (tool == 0) {
		close(ready[0]);
		execlp(cli_path(), "cowmap", "run", "-f", self->file, "-d", logs, "--", exe,
		       "--run-parent", self->file, lnk, rfd, (char *)NULL);
		_exit(127);
	}
	close(ready[1]);
	while (nready < 3) {
		struct pollfd p = { ready[0], POLLIN, 0 };

		if (poll(&p, 1, 60000) != 1)
			break;
		n = read(ready[0], &pids[nready], sizeof(pid_t));
		if (n != sizeof(pid_t))
			break;
		nready++;
	}
	EXPECT_EQ(3, nready);
	/* The file is untouched while they run. */
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));
	CLI(&r, "sessions", "--json");
	EXPECT_TRUE(json_valid(r.out)) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "\"comm\":\"cowmap_cli_test\"")) SHOW(&r);
	res_free(&r);

	/* SIGKILL everyone; the cowmap run process is the parent itself. */
	kill(tool, SIGKILL);
	for (int i = 0; i < nready; i++)
		kill(pids[i], SIGKILL);
	while (waitpid(-1, &status, 0) > 0 || errno == EINTR)
		;
	close(ready[0]);

	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));
	/* One log for the parent and its forked child, one for the exec'd one. */
	nlogs = count_files(logs, ".cowlog");
	EXPECT_EQ(2, nlogs);

	memcpy(expect, self->orig, self->orig_len);
	memcpy(expect + RUN_P1_OFF, "parent-map1", 11);
	memcpy(expect + RUN_P2_OFF, "parent-map2", 11);
	memcpy(expect + RUN_FORK_OFF, "child-fork", 10);
	memcpy(expect + RUN_EXEC_OFF, "exec-child", 10);
	CLI(&r, "merge-all", self->file, logs);
	EXPECT_EQ(0, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "Merged 2 logs")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, expect, self->orig_len));
	free(expect);
}

TEST_F(cli, run_errors)
{
	char *tmpfile = "/tmp/cowmap-cli-test-tmpfs";
	struct res r;

	/* busybox in the VM is static. */
	if (!access("/bin/busybox", X_OK)) {
		CLI(&r, "run", "-f", self->file, "--", "/bin/busybox", "true");
		EXPECT_EQ(1, r.status) SHOW(&r);
		EXPECT_NE(NULL, strstr(r.err, "/bin/busybox is statically linked; cowmap run "
				       "cannot reach its mmap calls")) SHOW(&r);
		res_free(&r);
	}
	CLI(&r, "run", "-f", self->file, "--", "/nonexistent/program");
	EXPECT_EQ(127, r.status) SHOW(&r);
	res_free(&r);
	CLI(&r, "run", "-f", self->file, "--", "no-such-program-anywhere");
	EXPECT_EQ(127, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "command not found")) SHOW(&r);
	res_free(&r);
	CLI(&r, "run", "-f", path_in(self->dir, "nosuch"), "--", "true");
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "No such file")) SHOW(&r);
	res_free(&r);
	CLI(&r, "run", "-f", self->file, "-d", path_in(self->dir, "nosuch"), "--", "true");
	EXPECT_EQ(1, r.status) SHOW(&r);
	res_free(&r);
	write_file(tmpfile, "x", 1, 0644);
	CLI(&r, "run", "-f", tmpfile, "--", "true");
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "is on tmpfs, which cowmap does not support")) SHOW(&r);
	res_free(&r);
	unlink(tmpfile);

	/* The program's own status comes back. */
	CLI(&r, "run", "-f", self->file, "-d", self->dir, "--", "bash", "-c", "exit 42");
	EXPECT_EQ(42, r.status) SHOW(&r);
	res_free(&r);

	/*
	 * No /dev/cowmap: a tmpfs over /dev in a mount namespace of this
	 * test's process alone (the device itself is never renamed; the
	 * namespace ends with the process, whatever happens to it).
	 */
	ASSERT_EQ(0, unshare(CLONE_NEWNS)) TH_LOG("unshare: %s", strerror(errno));
	ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		TH_LOG("mount --make-rprivate /: %s", strerror(errno));
	ASSERT_EQ(0, mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755"))
		TH_LOG("tmpfs on /dev: %s", strerror(errno));
	ASSERT_EQ(0, mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3)));
	ASSERT_EQ(-1, access(COWMAP_DEVICE_PATH, F_OK));
	CLI(&r, "run", "-f", self->file, "--", "true");
	EXPECT_EQ(0, umount("/dev")) TH_LOG("umount /dev: %s", strerror(errno));
	EXPECT_EQ(0, access(COWMAP_DEVICE_PATH, F_OK));
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "/dev/cowmap: No such file or directory (is the cowmap "
			       "module loaded?)")) SHOW(&r);
	res_free(&r);
	EXPECT_TRUE(file_equals(self->file, self->orig, self->orig_len));
}

/* ------------------------------------------------------------------------
 * demo
 * ------------------------------------------------------------------------
 */
static const char *demo_path(void)
{
	const char *p = getenv("COWMAP_DEMO");

	return p && *p ? p : "cowmap-demo";
}

TEST_F_TIMEOUT(cli, demo, 180)
{
	const char *untouched, *final;
	char env[PATH_MAX + 16];
	struct res r;

	/* The demo drives the tool under test. */
	snprintf(env, sizeof(env), "COWMAP=%s", cli_path());
	prog_runv(&r, demo_path(), 0, env, ARGS("extra"));
	EXPECT_EQ(2, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "unexpected argument")) SHOW(&r);
	EXPECT_EQ('\0', r.out[0]) SHOW(&r);
	res_free(&r);

	prog_runv(&r, demo_path(), 0, env, (const char *const[]){ NULL });
	EXPECT_EQ(0, r.status) SHOW(&r);
	untouched = strstr(r.out, "While they run, the files are untouched");
	EXPECT_NE(NULL, untouched) SHOW(&r);
	if (untouched) {
		EXPECT_NE(NULL, strstr(untouched, "----- Hello World! -----")) SHOW(&r);
		EXPECT_NE(NULL, strstr(untouched, "The quick brown fox jumps over the lazy dog."))
			SHOW(&r);
	}
	EXPECT_NE(NULL, strstr(r.out, "----- Hexxx World! -----")) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "exit status 3")) SHOW(&r);
	final = strstr(r.out, "Resolve it");
	EXPECT_NE(NULL, final) SHOW(&r);
	if (final)
		EXPECT_NE(NULL, strstr(final, "The swift black cat jumps over the cute dog."))
			SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "Demo complete")) SHOW(&r);
	res_free(&r);
}

/*
 * A session whose owner exits without closing it ends in the exit path
 * (after exit_fs()); its SESSION_DEL notification still comes.  (This
 * oopsed in d_path() before kmod 042b3be.)
 */
TEST_F_TIMEOUT(cli, monitor_sees_owner_exit, 120)
{
	char *out = path_in(self->dir, "monitor-exit.out");
	char *text;
	int lines;

	text = monitor_json(_metadata, self->file, out, POKE_EXIT, &lines);
	EXPECT_NE(NULL, strstr(text, "\"event\":\"session-del\"")) TH_LOG("%s", text);
	free(text);
}

/* Monotonic seconds. */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Whether the file at @path holds @needle. */
static bool file_has(const char *path, const char *needle)
{
	char *text = read_file(path, NULL);
	bool found = text && strstr(text, needle);

	free(text);
	return found;
}

/* A session of @uid that lives @ms milliseconds, in a child. */
static void hold_session(uid_t uid, const char *file, int ms)
{
	pid_t c;
	int status;

	fflush(NULL);
	c = fork();
	if (c == 0) {
		struct cowmap_session *s;

		if (uid)
			drop_to_tester();
		if (cowmap_session_open(file, 0, NULL, 0, &s))
			_exit(1);
		usleep((useconds_t)ms * 1000);
		cowmap_session_close(s);
		_exit(0);
	}
	waitpid(c, &status, 0);
}

/*
 * Notifications name every session's id, owner and write offsets, so only
 * CAP_SYS_ADMIN may listen: a user's monitor is refused with a message
 * saying so, and root's sees the sessions of every uid.
 */
TEST_F_TIMEOUT(cli, monitor_needs_admin, 120)
{
	char *out = path_in(self->dir, "monitor-root.out");
	bool saw_root = false, saw_user = false;
	const char *scale = getenv("COWMAP_TIMEOUT_SCALE");
	double bound = 30.0 * (scale && atoi(scale) > 1 ? atoi(scale) : 1), t0;
	int status, lines;
	struct res r;
	size_t len;
	char *text, *line;
	pid_t mon;

	CLI_AS_TESTER(&r, "monitor", "--json");
	EXPECT_EQ(1, r.status) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.err, "CAP_SYS_ADMIN")) SHOW(&r);
	/* --json: the refusal as an error object, one line */
	EXPECT_TRUE(json_valid(r.out)) SHOW(&r);
	EXPECT_NE(NULL, strstr(r.out, "{\"error\":\"join the \\\"events\\\" multicast "
			       "group: Operation not permitted (needs CAP_SYS_ADMIN)\"}\n")) SHOW(&r);
	res_free(&r);

	/*
	 * Root's sessions go unseen until monitor has subscribed: make them
	 * until one is seen, then one of uid 1000 and wait for it (polls,
	 * 30 s times $COWMAP_TIMEOUT_SCALE at most each, within the test's
	 * own timeout: the debug kernel under TCG is slow to start monitor).
	 */
	mon = spawn_cli_as(0, out, ARGS("monitor", "--json"));
	for (t0 = now_s(); now_s() - t0 < bound && !file_has(out, "\"uid\":0");)
		hold_session(0, self->file, 100);
	EXPECT_TRUE(file_has(out, "\"uid\":0")) TH_LOG("no event of root's sessions");
	hold_session(TESTER_UID, self->file, 100);
	for (t0 = now_s(); now_s() - t0 < bound && !file_has(out, "\"uid\":1000");)
		usleep(100000);
	kill(mon, SIGTERM);
	waitpid(mon, &status, 0);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	text = read_file(out, &len);
	ASSERT_NE(NULL, text);
	EXPECT_TRUE(json_lines_valid(text, &lines)) TH_LOG("%s", text);
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (strstr(line, "\"uid\":0"))
			saw_root = true;
		if (strstr(line, "\"uid\":1000"))
			saw_user = true;
	}
	EXPECT_TRUE(saw_root);
	EXPECT_TRUE(saw_user);
	free(text);
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "--run-parent"))
		return run_parent(argv);
	if (argc >= 4 && !strcmp(argv[1], "--run-exec-child"))
		return run_exec_child(argv);
	cm_scale_timeouts();
	return test_harness_run(argc, argv);
}
