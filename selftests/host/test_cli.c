// SPDX-License-Identifier: GPL-2.0
/*
 * The cowmap command where no module is needed (issue 13): a torn tail
 * told from a whole last record failing its checksum (log show, merge's
 * exit status 4, --strict), one JSON shape per command for every outcome,
 * the wording of messages, and the documentation (man pages, --help, bash
 * completion) agreeing with the getopt tables.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "tutil.h"
#include "../cowmap_json_valid.h"

#define FILE_DATA	"abcdefghijklmnopqrstuvwxyz"
/* 2024-12-07T16:46:40.123456789Z: above 2^53 nanoseconds. */
#define BIND_NS		1733590000123456789ULL
#define BIND_ISO	"2024-12-07T16:46:40.123456789Z"

#define CLI(...) run_cli(-1, (const char *const[]){ "cowmap", __VA_ARGS__, NULL })

static bool has(const char *s, const char *sub)
{
	return s && strstr(s, sub);
}

/* A file and a log of two 2-byte changes of it (at 0 and at 4); the
 * log's bytes and the offset of its last record. */
static uint8_t *file_and_log(const char *file, const char *log, size_t *size,
			     uint64_t *last)
{
	const struct chg c[] = { { 0, 2, "ab", "XY" }, { 4, 2, "ef", "ZW" } };

	if (write_file(file, FILE_DATA, strlen(FILE_DATA)) ||
	    mklog_meta(log, file, c, 2, BIND_NS, 0))
		return NULL;
	*last = 0;
	{
		uint8_t *d = read_file(log, size);

		if (d)
			*last = *size - COWMAP_LOG_REC_SIZE(2);
		return d;
	}
}

/* Open @len bytes as a log, through a memfd. */
static int open_mem(const uint8_t *data, size_t len, struct cowmap_log **l)
{
	int fd = memfd_create("log", MFD_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	if (pwrite(fd, data, len, 0) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	ret = cowmap_log_open_fd(fd, "mem.log", 0, l);
	close(fd);
	return ret;
}

/* The three kinds of tail, as libcowmap and 'log show' see them. */
TEST(cli_log_show_torn_kinds)
{
	char *file = tpath("kinds.file"), *good = tpath("kinds.log");
	char *cut = tpath("kinds-cut.log"), *zero = tpath("kinds-zero.log");
	char *crc = tpath("kinds-crc.log");
	struct cowmap_log_info in;
	struct cowmap_log *l;
	struct cli_res r;
	uint64_t last;
	size_t size;
	uint8_t *d = file_and_log(file, good, &size, &last), *z;

	ASSERT(d, "log: %s", cowmap_errmsg());
	z = calloc(1, size + 64);
	ASSERT(z, "memory");
	memcpy(z, d, size);
	ASSERT(!write_file(cut, d, size - 5), "cut");
	ASSERT(!write_file(zero, z, size + 64), "zero");
	z[last + 32 + 3] ^= 0x01;	/* the last record's new bytes */
	ASSERT(!write_file(crc, z, size), "crc");
	free(z);

	/* The library: which kind, where, how many records kept. */
	ASSERT(!cowmap_log_open(cut, 0, &l), "%s", cowmap_errmsg());
	cowmap_log_info(l, &in);
	EXPECT(in.torn && in.torn_kind == COWMAP_LOG_TORN_SHORT && in.torn_offset == last &&
	       in.records == 1, "cut: torn %u kind %u at %llu, %llu records", in.torn,
	       in.torn_kind, (unsigned long long)in.torn_offset, (unsigned long long)in.records);
	cowmap_log_close(l);
	ASSERT(!cowmap_log_open(zero, 0, &l), "%s", cowmap_errmsg());
	cowmap_log_info(l, &in);
	EXPECT(in.torn && in.torn_kind == COWMAP_LOG_TORN_ZERO && in.torn_offset == size &&
	       in.records == 2, "zero: torn %u kind %u", in.torn, in.torn_kind);
	cowmap_log_close(l);
	ASSERT(!cowmap_log_open(crc, 0, &l), "%s", cowmap_errmsg());
	cowmap_log_info(l, &in);
	EXPECT(in.torn && in.torn_kind == COWMAP_LOG_TORN_CRC && in.torn_offset == last &&
	       in.records == 1, "crc: torn %u kind %u", in.torn, in.torn_kind);
	EXPECT(has(cowmap_errmsg(), "the 1 record before it is valid"), "%s", cowmap_errmsg());
	cowmap_log_close(l);
	ASSERT(!cowmap_log_open(good, 0, &l), "%s", cowmap_errmsg());
	cowmap_log_info(l, &in);
	EXPECT(!in.torn && !in.torn_kind && in.records == 2, "whole: torn %u", in.torn);
	cowmap_log_close(l);

	/* A crash that left the last blocks of a big last record unwritten:
	 * zeros from a 512-byte boundary inside it to the end of the file are
	 * a torn tail; zeros with a byte after them are damage. */
	{
		static uint8_t old[1500], nw[1500];
		const struct chg big[] = { { 0, 2, "ab", "XY" }, { 2, 1500, old, nw } };
		char *blog = tpath("kinds-big.log");
		uint64_t blast, q;
		uint8_t *b;
		size_t bsize;

		memset(nw, 'N', sizeof(nw));
		ASSERT(!mklog(blog, file, big, 2), "big: %s", cowmap_errmsg());
		b = read_file(blog, &bsize);
		ASSERT(b, "read");
		blast = bsize - COWMAP_LOG_REC_SIZE(1500);
		q = (blast + 600) & ~(uint64_t)511;	/* a boundary inside it */
		ASSERT(q > blast + 40 && q < bsize, "layout %llu %llu", (unsigned long long)blast,
		       (unsigned long long)q);
		memset(b + q, 0, bsize - q);
		ASSERT(!open_mem(b, bsize, &l), "%s", cowmap_errmsg());
		cowmap_log_info(l, &in);
		EXPECT(in.torn && in.torn_kind == COWMAP_LOG_TORN_ZERO && in.torn_offset == blast &&
		       in.records == 1, "unwritten block: torn %u kind %u", in.torn, in.torn_kind);
		cowmap_log_close(l);
		b[bsize - 1] = 'N';	/* no block of zeros left inside: damage */
		ASSERT(!open_mem(b, bsize, &l), "%s", cowmap_errmsg());
		cowmap_log_info(l, &in);
		EXPECT(in.torn && in.torn_kind == COWMAP_LOG_TORN_CRC && in.torn_offset == blast,
		       "zeros off a boundary: torn %u kind %u", in.torn, in.torn_kind);
		cowmap_log_close(l);
		free(b);
	}

	/* log show: which of them it saw, and exit 4 for the damaged one. */
	r = CLI("log", "show", cut);
	EXPECT(r.status == 0 && has(r.out, "Torn:") &&
	       has(r.out, "a record cut short by the end of the file") &&
	       has(r.out, "the 1 record before it is valid"), "%d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("log", "show", zero);
	EXPECT(r.status == 0 && has(r.out, "Torn:") && has(r.out, "zero bytes") &&
	       has(r.out, "the 2 records before it are valid"), "%d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("log", "show", crc);
	EXPECT(r.status == 4 && has(r.out, "Damaged:") && has(r.out, "fails its checksum") &&
	       !has(r.out, "Torn:"), "%d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("log", "show", "--json", crc);
	EXPECT(r.status == 4 && json_valid(r.out) && has(r.out, "\"torn\":true") &&
	       has(r.out, "\"torn_kind\":\"crc\""), "%d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("log", "show", "--json", cut);
	EXPECT(r.status == 0 && json_valid(r.out) && has(r.out, "\"torn_kind\":\"short\""),
	       "%d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("log", "show", "--json", zero);
	EXPECT(r.status == 0 && has(r.out, "\"torn_kind\":\"zero\""), "%d %s", r.status, r.out);
	cli_free(&r);
	free(d);
}

/* merge: a damaged last record is left out with exit status 4; --strict
 * refuses any torn tail and writes nothing. */
TEST(cli_merge_crc_tail_exit_status)
{
	char *file = tpath("crc.file"), *good = tpath("crc-good.log");
	char *crc = tpath("crc-bad.log"), *cut = tpath("crc-cut.log");
	struct cli_res r;
	uint64_t last;
	size_t size;
	uint8_t *d = file_and_log(file, good, &size, &last);

	ASSERT(d, "log: %s", cowmap_errmsg());
	d[last + 32 + 2] ^= 0x04;	/* the last record's new bytes */
	ASSERT(!write_file(crc, d, size), "crc");
	d[last + 32 + 2] ^= 0x04;
	ASSERT(!write_file(cut, d, size - 3), "cut");
	free(d);

	/* Damaged: the first change applied, the second left out, exit 4. */
	r = CLI("merge", file, crc);
	EXPECT(r.status == 4, "exit %d: %s %s", r.status, r.out, r.err);
	EXPECT(has(r.err, "whole last record failing its checksum") &&
	       has(r.err, "the 1 record before it is used"), "%s", r.err);
	EXPECT(has(r.out, "exit status 4"), "%s", r.out);
	cli_free(&r);
	EXPECT(file_is(file, "XYcdefghijklmnopqrstuvwxyz", 26), "first change only");

	write_file(file, FILE_DATA, strlen(FILE_DATA));
	r = CLI("merge", "--json", file, crc);
	EXPECT(r.status == 4 && json_valid(r.out) && has(r.out, "\"exit_status\":4") &&
	       has(r.out, "\"crc_tail_logs\":1") && has(r.out, "\"torn_logs\":1"),
	       "%d %s", r.status, r.out);
	cli_free(&r);

	/* A conflict with another log wins: exit 3, nothing written, no word
	 * of exit status 4. */
	{
		const struct chg qc[] = { { 0, 2, "ab", "QQ" } };
		char *q = tpath("crc-conflict.log");

		write_file(file, FILE_DATA, strlen(FILE_DATA));
		ASSERT(!mklog(q, file, qc, 1), "%s", cowmap_errmsg());
		r = CLI("merge", file, crc, q);
		EXPECT(r.status == 3 && has(r.out, "nothing written") &&
		       !has(r.out, "exit status 4"), "%d %s", r.status, r.out);
		cli_free(&r);
		EXPECT(file_is(file, FILE_DATA, strlen(FILE_DATA)), "conflict wrote");
	}

	/* --strict: refused, nothing written. */
	write_file(file, FILE_DATA, strlen(FILE_DATA));
	r = CLI("merge", "--strict", file, crc);
	EXPECT(r.status == 1 && has(r.err, "strict") && has(r.err, "checksum"), "%d %s",
	       r.status, r.err);
	cli_free(&r);
	EXPECT(file_is(file, FILE_DATA, strlen(FILE_DATA)), "strict wrote");

	/* A torn tail: crash tolerance stays (exit 0), --strict refuses it. */
	r = CLI("merge", file, cut);
	EXPECT(r.status == 0 && has(r.err, "torn tail (record cut short by the end of the file)"),
	       "%d %s", r.status, r.err);
	cli_free(&r);
	EXPECT(file_is(file, "XYcdefghijklmnopqrstuvwxyz", 26), "torn: first change");
	write_file(file, FILE_DATA, strlen(FILE_DATA));
	r = CLI("merge", "--strict", "--json", file, cut);
	EXPECT(r.status == 1 && json_valid(r.out) && has(r.out, "\"result\":\"error\"") &&
	       has(r.out, "\"strict\":true"), "%d %s", r.status, r.out);
	cli_free(&r);
	EXPECT(file_is(file, FILE_DATA, strlen(FILE_DATA)), "strict wrote");
	/* The whole log merges cleanly, strict or not. */
	r = CLI("merge", "--strict", file, good);
	EXPECT(r.status == 0, "%d %s", r.status, r.err);
	cli_free(&r);
	EXPECT(file_is(file, "XYcdZWghijklmnopqrstuvwxyz", 26), "whole log");
}

/* Merge @file with @log, killed after its first write to the file (test
 * build hook): the file half merged, its journal complete.  Returns the
 * crash point, 0 if none left that state. */
static int merge_killed_mid_apply(const char *file, const char *log, bool undo)
{
	for (int at = 1; at < 40; at++) {
		char v[16];
		struct cli_res r;
		bool half;

		write_file(file, FILE_DATA, strlen(FILE_DATA));
		snprintf(v, sizeof(v), "%d", at);
		setenv("COWMAP_TEST_CRASH_AT", v, 1);
		r = undo ? CLI("merge", "--undo-journal", file, log) : CLI("merge", file, log);
		unsetenv("COWMAP_TEST_CRASH_AT");
		cli_free(&r);
		half = file_is(file, "XYcdefghijklmnopqrstuvwxyz", 26);
		if (half)
			return at;
		r = CLI("recover", "--discard", file);
		cli_free(&r);
	}
	return 0;
}

/* merge --undo-journal keeps what recover --rollback needs; without it,
 * a rollback is refused with a message and writes nothing. */
TEST(cli_undo_journal_rollback)
{
	char *file = tpath("undo.file"), *log = tpath("undo.log");
	struct cli_res r;
	uint64_t last;
	size_t size;
	uint8_t *d = file_and_log(file, log, &size, &last);

	ASSERT(d, "log: %s", cowmap_errmsg());
	free(d);
	ASSERT(merge_killed_mid_apply(file, log, true), "no crash point mid-apply");
	r = CLI("recover", "--rollback", file);
	EXPECT(r.status == 0, "rollback: %d %s %s", r.status, r.out, r.err);
	cli_free(&r);
	EXPECT(file_is(file, FILE_DATA, strlen(FILE_DATA)), "not rolled back");

	ASSERT(merge_killed_mid_apply(file, log, false), "no crash point mid-apply");
	r = CLI("recover", "--rollback", file);
	EXPECT(r.status == 1 && has(r.err, "only the new bytes") && has(r.err, "nothing written"),
	       "rollback of a redo journal: %d %s", r.status, r.err);
	cli_free(&r);
	EXPECT(file_is(file, "XYcdefghijklmnopqrstuvwxyz", 26), "a refused rollback wrote");
	r = CLI("recover", file);
	EXPECT(r.status == 0, "replay: %d %s", r.status, r.err);
	cli_free(&r);
	EXPECT(file_is(file, "XYcdZWghijklmnopqrstuvwxyz", 26), "not replayed");
}

/* Every --json run prints one JSON document of its command's shape, errors
 * included. */
TEST(cli_json_every_outcome)
{
	char *file = tpath("js.file"), *log = tpath("js.log"), *bad = tpath("js-bad.log");
	char *other = tpath("js.other"), *olog = tpath("js-other.log");
	char *missing = tpath("js-missing.log"), *dir = tpath("js.dir");
	const struct chg oc[] = { { 0, 1, "o", "O" } };
	struct cli_res r;
	uint64_t last;
	size_t size;
	uint8_t *d = file_and_log(file, log, &size, &last);

	ASSERT(d, "log: %s", cowmap_errmsg());
	d[20] ^= 0x55;				/* the header's CRC fails */
	ASSERT(!write_file(bad, d, size), "bad");
	free(d);
	ASSERT(!write_file(other, "other", 5) && !mklog(olog, other, oc, 1), "other");
	mkdir(dir, 0755);

	/* log show: always {"logs":[...]}, one object per log. */
	r = CLI("log", "show", "--json", log);
	EXPECT(r.status == 0 && json_valid(r.out) && !strncmp(r.out, "{\"logs\":[{\"log\":", 16),
	       "one: %s", r.out);
	/* nanoseconds as a number and, exactly, as a string */
	EXPECT(has(r.out, "\"bind_time_ns\":1733590000123456789,\"bind_time\":\"" BIND_ISO "\""),
	       "time: %s", r.out);
	cli_free(&r);
	r = CLI("log", "show", "--json", log, log);
	EXPECT(r.status == 0 && json_valid(r.out) && !strncmp(r.out, "{\"logs\":[{", 10),
	       "two: %s", r.out);
	cli_free(&r);
	r = CLI("log", "show", "--json", bad);
	EXPECT(r.status == 1 && json_valid(r.out) && has(r.out, "{\"logs\":[{\"log\":\"") &&
	       has(r.out, "\"error\":\"") && has(r.out, "header CRC mismatch") &&
	       has(r.err, "header CRC mismatch"), "bad: %d %s %s", r.status, r.out, r.err);
	cli_free(&r);
	r = CLI("log", "show", "--json", missing, log);
	EXPECT(r.status == 1 && json_valid(r.out) && has(r.out, "No such file or directory") &&
	       has(r.out, "\"records_count\":2"), "missing: %d %s", r.status, r.out);
	cli_free(&r);

	/* merge: always one object; "result" and "error" say what happened. */
	r = CLI("merge", "--json", file, missing);
	EXPECT(r.status == 1 && json_valid(r.out) && has(r.out, "\"result\":\"error\"") &&
	       has(r.out, "No such file or directory"), "missing: %d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("merge", "--json", file, olog);
	EXPECT(r.status == 1 && json_valid(r.out) && has(r.out, "\"result\":\"error\"") &&
	       has(r.out, "--force"), "wrong file: %d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("merge", "--json", "--dry-run", file, log);
	EXPECT(r.status == 0 && json_valid(r.out) && has(r.out, "\"result\":\"planned\"") &&
	       has(r.out, "\"exit_status\":0"), "planned: %d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("merge-all", "--json", file, missing);
	EXPECT(r.status == 1 && json_valid(r.out) && has(r.out, "\"error\":"),
	       "merge-all missing dir: %d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("merge-all", "--json", file, dir);
	EXPECT(r.status == 0 && json_valid(r.out) && has(r.out, "\"logs\":[]"),
	       "merge-all empty: %d %s", r.status, r.out);
	cli_free(&r);

	/* Usage errors: {"error":...} on stdout too, before or after --json. */
	r = CLI("merge", "--json", "--bogus", file, log);
	EXPECT(r.status == 2 && json_valid(r.out) && has(r.out, "\"error\":\"unknown option"),
	       "usage: %d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("merge", "--prefer", "middle", "--json", file, log);
	EXPECT(r.status == 2 && json_valid(r.out) && has(r.out, "--prefer takes"),
	       "usage: %d %s", r.status, r.out);
	cli_free(&r);
	r = CLI("log", "show", "--json");
	EXPECT(r.status == 2 && json_valid(r.out) && has(r.out, "a log file is needed"),
	       "usage: %d %s", r.status, r.out);
	cli_free(&r);
	/* The module's commands, where it is not loaded (always so on the
	 * host): an object with "error", exit 1. */
	if (access("/sys/module/cowmap", F_OK)) {
		static const char *const cmds[][4] = {
			{ "status", "--json" }, { "sessions", "--json" }, { "sessions", "--json", "5" },
			{ "config", "--json" }, { "monitor", "--json", "-c", "1" },
		};

		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			r = run_cli(-1, (const char *const[]){ "cowmap", cmds[i][0], cmds[i][1],
							      cmds[i][2], cmds[i][3], NULL });
			EXPECT(r.status == 1 && json_valid(r.out) && r.out[0] == '{' &&
			       has(r.out, "\"error\":\""), "%s %s: %d %s", cmds[i][0],
			       cmds[i][1], r.status, r.out);
			cli_free(&r);
		}
	}
	r = CLI("sessions", "--json", "x");
	EXPECT(r.status == 2 && json_valid(r.out) && has(r.out, "is not a session id"),
	       "usage: %d %s", r.status, r.out);
	cli_free(&r);

	/* Without --json: no JSON. */
	r = CLI("merge", "--bogus", file, log);
	EXPECT(r.status == 2 && !r.out[0], "text usage: %d %s", r.status, r.out);
	cli_free(&r);
}

/* Messages: --force, major:minor, plurals, recover and merge-all. */
TEST(cli_messages)
{
	char *file = tpath("msg.file"), *other = tpath("msg.other"), *olog = tpath("msg-o.log");
	char *cut = tpath("msg-cut.log"), *log = tpath("msg.log"), *dir = tpath("msg.dir");
	const struct chg oc[] = { { 0, 1, "o", "O" } };
	char want[256];
	struct cli_res r;
	struct stat so, sf;
	uint64_t last;
	size_t size;
	uint8_t *d = file_and_log(file, log, &size, &last);

	ASSERT(d, "log: %s", cowmap_errmsg());
	ASSERT(!write_file(cut, d, size - 1), "cut");
	free(d);
	ASSERT(!write_file(other, "other", 5) && !mklog(olog, other, oc, 1), "other");
	ASSERT(!stat(other, &so) && !stat(file, &sf), "stat");
	mkdir(dir, 0755);

	r = CLI("merge", file, olog);
	snprintf(want, sizeof(want), "(dev %u:%u inode %llu), not %s (dev %u:%u inode %llu); "
		 "--force", major(so.st_dev), minor(so.st_dev), (unsigned long long)so.st_ino,
		 file, major(sf.st_dev), minor(sf.st_dev), (unsigned long long)sf.st_ino);
	EXPECT(r.status == 1 && has(r.err, want) && !has(r.err, "0x") &&
	       !has(r.err, "use force"), "%d %s\nwant %s", r.status, r.err, want);
	cli_free(&r);

	r = CLI("merge", "--dry-run", file, cut);
	EXPECT(r.status == 0 && has(r.err, "the 1 record before it is used") &&
	       has(r.out, "(1 record)"), "%d %s %s", r.status, r.out, r.err);
	cli_free(&r);

	/* recover: nothing to do is a success and says so; a directory is
	 * not a file without a journal. */
	r = CLI("recover", file);
	EXPECT(r.status == 0 && has(r.out, "no interrupted merge, nothing to do"), "%d %s",
	       r.status, r.out);
	cli_free(&r);
	r = CLI("recover", dir);
	EXPECT(r.status == 1 && has(r.err, "Is a directory") && !r.out[0], "%d %s %s",
	       r.status, r.out, r.err);
	cli_free(&r);

	/* merge-all: one message for an empty directory, none but the error
	 * for a directory given as FILE. */
	r = CLI("merge-all", file, dir);
	snprintf(want, sizeof(want), "%s: no logs of %s: nothing to merge\n", dir, file);
	EXPECT(r.status == 0 && !strcmp(r.out, want), "%d [%s]", r.status, r.out);
	cli_free(&r);
	r = CLI("merge-all", dir, dir);
	EXPECT(r.status == 1 && !r.out[0] && has(r.err, "Is a directory"), "%d [%s] %s",
	       r.status, r.out, r.err);
	cli_free(&r);
	EXPECT(file_is(file, FILE_DATA, strlen(FILE_DATA)), "file changed");
}

/* cowmap.8, libcowmap.3, --help and the bash completion agree with the
 * getopt tables, and the man pages format without warnings. */
TEST(cli_docs_agree)
{
	char *out = tpath("docs-check.out"), cmd[2048];
	size_t len;
	char *text;
	int st;

	snprintf(cmd, sizeof(cmd), "COWMAP='%s' '%s/selftests/host/cli-docs-check.sh' '%s' "
		 ">'%s' 2>&1", COWMAP_CLI, COWMAP_TOP, COWMAP_TOP, out);
	st = system(cmd);
	text = (char *)read_file(out, &len);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cli-docs-check.sh: status %d:\n%s", st,
	       text ? text : "");
	free(text);
}
