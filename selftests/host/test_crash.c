// SPDX-License-Identifier: GPL-2.0
/*
 * Failure atomicity: a child merges and is SIGKILLed at every crash point
 * of the library (COWMAP_TEST_CRASH_AT); recovery must leave the file
 * byte for byte old or new.  Also journal corruption and rollback.
 * The files are on tmpfs: a killed process (not a power cut) is what is
 * simulated, and the fsyncs would only measure the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "tutil.h"

#define CF_SIZE (4U << 20)
#define NLOGS 3

static uint8_t *cf_old, *cf_new;

/* A file and NLOGS logs with disjoint changes, one of them over 1 MiB
 * (two journal entries). */
static void crash_setup(const char *f)
{
	uint8_t *tmp = malloc(CF_SIZE);

	cf_old = malloc(CF_SIZE);
	cf_new = malloc(CF_SIZE);
	fill_random(cf_old, CF_SIZE);
	memcpy(cf_new, cf_old, CF_SIZE);
	write_file(f, cf_old, CF_SIZE);
	for (int l = 0; l < NLOGS; l++) {
		struct chg c[16];
		char name[64];
		uint64_t region = CF_SIZE / NLOGS, pos = region * (uint64_t)l;
		int n = 0;

		for (; n < 16; n++) {
			uint32_t len = (l == 0 && n == 0) ? (1U << 20) + 4096 : 1 + rnd(20000);

			pos += rnd(5000);
			if (pos + len > region * (uint64_t)(l + 1))
				break;
			fill_random(tmp + pos, len);
			c[n] = (struct chg){ pos, len, cf_old + pos, tmp + pos };
			memcpy(cf_new + pos, tmp + pos, len);
			pos += len;
		}
		snprintf(name, sizeof(name), "crash%d.log", l);
		mklog(fpath(name), f, c, n);
	}
	free(tmp);
}

/*
 * Run @op(@f, @flags) in a child set to be killed at crash point @at.
 * Returns 1 if it was killed, 0 if @op succeeded (returned 0), else -1.
 */
static int crash_child(int (*op)(const char *f, unsigned int flags),
		       const char *f, uint64_t at, unsigned int flags)
{
	char v[32];
	pid_t pid = fork();
	int status;

	if (!pid) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)at);
		setenv("COWMAP_TEST_CRASH_AT", v, 1);
		crash_reset();
		_exit(op(f, flags) ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		return 1;	/* crashed */
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int merge_crash_logs(const char *f, unsigned int flags)
{
	return merge(f, flags, NULL, NLOGS, fpath("crash0.log"), fpath("crash1.log"),
		     fpath("crash2.log"));
}

static int recover_failed(const char *f, unsigned int flags)
{
	return cowmap_recover(f, flags) < 0;
}

static int child_merge_flags(const char *f, uint64_t at, unsigned int flags)
{
	return crash_child(merge_crash_logs, f, at, flags);
}

static int child_merge(const char *f, uint64_t at)
{
	return child_merge_flags(f, at, 0);
}

/* Does the journal at @j end with a valid trailer?  -1: no journal. */
static int journal_complete(const char *j)
{
	size_t n;
	uint8_t *d = read_file(j, &n);
	int r = -1;

	if (d) {
		r = n >= 96 && get_le32(d + n - 32) == 0x434a4d43U &&
		    get_le32(d + n - 28) == ~crc32c_update(crc32c_update(crc32c_update(~0U,
				d + n - 32, 4), "\0\0\0\0", 4), d + n - 24, 24);
		free(d);
	}
	return r;
}

static int child_recover(const char *f, uint64_t at, unsigned int flags)
{
	return crash_child(recover_failed, f, at, flags);
}

/* 0 old, 1 new, -1 neither */
static int which(const char *f)
{
	size_t n;
	uint8_t *d = read_file(f, &n);
	int r = -1;

	if (d && n == CF_SIZE && !memcmp(d, cf_old, n))
		r = 0;
	else if (d && n == CF_SIZE && !memcmp(d, cf_new, n))
		r = 1;
	free(d);
	return r;
}

static void restore(const char *f)
{
	int fd = open(f, O_WRONLY);

	pwrite(fd, cf_old, CF_SIZE, 0);
	close(fd);
}

TEST_SLOW(merge_crash_at_every_point)
{
	const char *f = fpath("crash.file");
	uint64_t at, olds = 0, news = 0, rec_crashes = 0;
	int ret;

	crash_setup(f);
	for (at = 1; at < 10000; at++) {
		restore(f);
		ret = child_merge(f, at);
		ASSERT(ret >= 0, "merge failed without a crash at point %llu",
		       (unsigned long long)at);
		if (ret == 0)
			break;
		/* The journal gets its name only once complete: a merge killed
		 * anywhere leaves, under that name, a complete journal or none. */
		{
			char *j = journal_path(f);

			EXPECT(journal_complete(j) != 0, "crash at point %llu left an incomplete "
			       "journal under its name", (unsigned long long)at);
			free(j);
		}
		/* crash the recovery too, at each of its points, for some */
		if (at % 3 == 0) {
			for (uint64_t r = 1; r < 1000; r++) {
				int rr = child_recover(f, r, 0);

				ASSERT(rr >= 0, "recovery failed at %llu/%llu: %s",
				       (unsigned long long)at, (unsigned long long)r, cowmap_errmsg());
				if (rr == 0)
					break;
				rec_crashes++;
				/* after a crashed recovery, old or new only once recovered */
			}
		}
		ret = cowmap_recover(f, 0);
		ASSERT(ret >= 0, "recover after crash at %llu: %s", (unsigned long long)at,
		       cowmap_errmsg());
		switch (which(f)) {
		case 0:
			olds++;
			break;
		case 1:
			news++;
			break;
		default:
			EXPECT(0, "crash at point %llu: file is neither old nor new after recovery",
			       (unsigned long long)at);
		}
		{
			char *j = journal_path(f), *t = journal_tmp_path(j);
			char *d = journal_links_path(j);

			EXPECT(access(j, F_OK) != 0, "journal left after recovery (point %llu)",
			       (unsigned long long)at);
			EXPECT(access(t, F_OK) != 0, "unfinished journal left after recovery "
			       "(point %llu)", (unsigned long long)at);
			EXPECT(access(d, F_OK) != 0, "journal's log links left after recovery "
			       "(point %llu)", (unsigned long long)at);
			free(d);
			free(t);
			free(j);
		}
	}
	DIAG("%llu crash points: %llu recovered to old, %llu to new; %llu crashed recoveries",
	     (unsigned long long)(at - 1), (unsigned long long)olds, (unsigned long long)news,
	     (unsigned long long)rec_crashes);
	EXPECT(at > 20 && olds >= 3 && news > 10, "too few crash points exercised");
	EXPECT(which(f) == 1, "uncrashed merge result");
	free(cf_old);
	free(cf_new);
}

/* Leave a complete journal and a partly written file. */
static uint64_t crash_mid_apply(const char *f, unsigned int flags)
{
	/* find the first point after which recovery replays, go 2 further */
	for (uint64_t at = 1; at < 10000; at++) {
		char *j;
		size_t n;
		uint8_t *d;
		bool complete;

		restore(f);
		if (child_merge_flags(f, at, flags) != 1)
			return 0;
		j = journal_path(f);
		d = read_file(j, &n);
		free(j);
		complete = d && n >= 96 && get_le32(d + n - 32) == 0x434a4d43U;
		free(d);
		if (complete) {
			restore(f);
			/* 3 points on: some file writes done */
			child_merge_flags(f, at + 3, flags);
			return at + 3;
		}
	}
	return 0;
}

TEST_SLOW(journal_rollback_and_corruption)
{
	const char *f = fpath("jr.file");
	char *j = journal_path(f);
	size_t n;
	uint8_t *d;
	int ret;

	crash_setup(f);
	ASSERT(crash_mid_apply(f, COWMAP_MERGE_UNDO_JOURNAL),
	       "no crash point with a complete journal");
	EXPECT(which(f) == -1, "file should be half-merged before recovery");
	d = read_file(j, &n);
	ASSERT(d, "journal missing");

	/* corrupt an entry: refused, journal kept, file untouched */
	d[200] ^= 1;
	write_file(j, d, n);
	ret = cowmap_recover(f, 0);
	EXPECT(ret == -COWMAP_EBADJOURNAL, "corrupt journal: %d", ret);
	EXPECT(strstr(cowmap_errmsg(), "byte ") != NULL, "message %s", cowmap_errmsg());
	EXPECT(access(j, F_OK) == 0, "corrupt journal removed");
	ret = merge(f, 0, NULL, 1, fpath("crash0.log"));
	EXPECT(ret == -COWMAP_EBADJOURNAL, "merge with a corrupt journal: %d", ret);
	/* dry run and -o never write the file: they refuse while a journal is there */
	ret = merge(f, COWMAP_MERGE_DRY_RUN, NULL, 1, fpath("crash0.log"));
	EXPECT(ret == -EBUSY, "dry run with a pending journal: %d", ret);
	ret = merge(f, 0, fpath("jr.out"), 1, fpath("crash0.log"));
	EXPECT(ret == -EBUSY && access(fpath("jr.out"), F_OK) != 0, "-o with a pending journal: %d", ret);
	d[200] ^= 1;
	write_file(j, d, n);

	/* roll back: the old file */
	ret = cowmap_recover(f, COWMAP_RECOVER_ROLLBACK);
	EXPECT(ret == COWMAP_RECOVER_ROLLED_BACK, "rollback %d: %s", ret, cowmap_errmsg());
	EXPECT(which(f) == 0, "rolled back file is not the old one");
	EXPECT(access(j, F_OK) != 0, "journal left");

	/* an incomplete journal (no trailer) is dropped */
	write_file(j, d, n - 32);
	ret = cowmap_recover(f, 0);
	EXPECT(ret == COWMAP_RECOVER_DROPPED, "incomplete %d", ret);
	EXPECT(which(f) == 0, "file changed");

	/* a complete journal for another inode is refused */
	write_file(j, d, n);
	{
		char *tmp = fpath("jr.replaced");

		write_file(tmp, cf_old, CF_SIZE);
		rename(tmp, f);
	}
	ret = cowmap_recover(f, 0);
	EXPECT(ret == -COWMAP_EBADJOURNAL, "other inode %d", ret);
	EXPECT(strstr(cowmap_errmsg(), "another file") != NULL, "message %s", cowmap_errmsg());
	unlink(j);
	EXPECT(cowmap_recover(f, 0) == COWMAP_RECOVER_NONE, "no journal");
	free(d);
	free(j);
	free(cf_old);
	free(cf_new);
}

/* Without COWMAP_MERGE_UNDO_JOURNAL the journal holds no old bytes: a
 * rollback is refused, precisely and without writing; a replay works. */
TEST_SLOW(journal_redo_only_rollback_refused)
{
	const char *f = fpath("jro.file");
	char *j = journal_path(f);
	size_t n, n2;
	uint8_t *before, *after;
	int ret;

	crash_setup(f);
	ASSERT(crash_mid_apply(f, 0), "no crash point with a complete journal");
	EXPECT(which(f) == -1, "file should be half-merged before recovery");
	before = read_file(f, &n);
	ret = cowmap_recover(f, COWMAP_RECOVER_ROLLBACK);
	EXPECT(ret == -EOPNOTSUPP && strstr(cowmap_errmsg(), "only the new bytes") &&
	       strstr(cowmap_errmsg(), "nothing written"), "rollback of a redo journal: %d %s",
	       ret, cowmap_errmsg());
	after = read_file(f, &n2);
	EXPECT(before && after && n == n2 && !memcmp(before, after, n),
	       "a refused rollback changed the file");
	EXPECT(access(j, F_OK) == 0, "a refused rollback removed the journal");
	ret = cowmap_recover(f, 0);
	EXPECT(ret == COWMAP_RECOVER_REPLAYED, "replay %d: %s", ret, cowmap_errmsg());
	EXPECT(which(f) == 1, "replayed file is not the new one");
	EXPECT(access(j, F_OK) != 0, "journal left");
	free(before);
	free(after);
	free(j);
	free(cf_old);
	free(cf_new);
}

/* Bytes that log @log (-1: all logs) of crash_setup() changes: each log
 * changes only its own third of the file. */
static uint64_t crash_changed_bytes(int log)
{
	uint64_t region = CF_SIZE / NLOGS, n = 0;

	for (uint64_t i = 0; i < CF_SIZE; i++)
		if (cf_old[i] != cf_new[i] && (log < 0 || i / region == (uint64_t)log))
			n++;
	return n;
}

static void crash_logs_mode(mode_t mode)
{
	char name[64];

	for (int l = 0; l < NLOGS; l++) {
		snprintf(name, sizeof(name), "crash%d.log", l);
		chmod(fpath(name), mode);
	}
}

static uint64_t file_size(const char *p)
{
	struct stat st;

	return stat(p, &st) ? 0 : (uint64_t)st.st_size;
}

/*
 * Without the old bytes, the journal of a merge of logs that can be
 * hard-linked beside it holds where each change's new bytes are in the
 * logs, not the bytes: recovery reads them from the links, so it works
 * with the logs' names gone, and no link is left afterwards.
 */
TEST_SLOW(journal_points_into_logs)
{
	const char *f = fpath("jp.file");
	char *j = journal_path(f), *d = journal_links_path(j);
	uint64_t changed;
	int ret;

	crash_setup(f);
	crash_logs_mode(0644);
	changed = crash_changed_bytes(-1);
	ASSERT(changed > (1U << 20), "setup: %llu bytes changed", (unsigned long long)changed);
	ASSERT(crash_mid_apply(f, 0), "no crash point with a complete journal");
	EXPECT(which(f) == -1, "file should be half-merged before recovery");
	EXPECT(file_size(j) < changed / 16, "journal of %llu bytes for %llu changed bytes: "
	       "it copies them", (unsigned long long)file_size(j), (unsigned long long)changed);
	for (int l = 0; l < NLOGS; l++) {
		char name[64], link[4200];

		snprintf(link, sizeof(link), "%s/%d", d, l);
		EXPECT(access(link, F_OK) == 0, "no link %s", link);
		snprintf(name, sizeof(name), "crash%d.log", l);
		unlink(fpath(name));
	}
	ret = cowmap_recover(f, 0);
	EXPECT(ret == COWMAP_RECOVER_REPLAYED, "replay without the logs' names: %d %s", ret,
	       cowmap_errmsg());
	EXPECT(which(f) == 1, "replayed file is not the new one");
	EXPECT(access(j, F_OK) != 0 && access(d, F_OK) != 0, "journal or links left");
	free(d);
	free(j);
	free(cf_old);
	free(cf_new);
}

/* A log changed after the crash: recovery refuses, writes nothing, and
 * names the link; a discard removes journal and links. */
TEST_SLOW(journal_log_changed_after_crash)
{
	const char *f = fpath("jc.file"), *lp = fpath("crash0.log");
	char *j = journal_path(f), *d = journal_links_path(j);
	size_t n, n2, ln;
	uint8_t *before, *after, *log;
	int ret;

	for (int how = 0; how < 2; how++) {
		crash_setup(f);
		crash_logs_mode(0644);
		ASSERT(crash_mid_apply(f, 0), "no crash point with a complete journal");
		before = read_file(f, &n);
		log = read_file(lp, &ln);
		ASSERT(log && ln > 8192, "log");
		if (how == 0) {
			/* rewritten in place, same size: every byte after the header */
			int fd = open(lp, O_WRONLY);

			for (size_t i = 4096; i < ln; i++)
				log[i] ^= 0x5a;
			ASSERT(fd >= 0 && pwrite(fd, log, ln, 0) == (ssize_t)ln, "rewrite");
			close(fd);
		} else {
			ASSERT(truncate(lp, 4096) == 0, "truncate");
		}
		ret = cowmap_recover(f, 0);
		EXPECT(ret == -COWMAP_EBADJOURNAL && strstr(cowmap_errmsg(), "hard link of a log") &&
		       strstr(cowmap_errmsg(), how ? "shorter" : "changed since") &&
		       strstr(cowmap_errmsg(), "nothing written"),
		       "recovery from a changed log (%d): %d %s", how, ret, cowmap_errmsg());
		after = read_file(f, &n2);
		EXPECT(before && after && n == n2 && !memcmp(before, after, n),
		       "a refused recovery changed the file");
		EXPECT(access(j, F_OK) == 0 && access(d, F_OK) == 0,
		       "a refused recovery removed the journal or its links");
		ret = cowmap_recover(f, COWMAP_RECOVER_DISCARD);
		EXPECT(ret == COWMAP_RECOVER_DISCARDED, "discard: %d %s", ret, cowmap_errmsg());
		EXPECT(access(j, F_OK) != 0 && access(d, F_OK) != 0, "journal or links left");
		free(before);
		free(after);
		free(log);
		free(cf_old);
		free(cf_new);
	}
	free(d);
	free(j);
}

/* A log that group or others can write is not linked: its changes are
 * copied into the journal, as a log on another filesystem's would be. */
TEST_SLOW(journal_copies_untrusted_log)
{
	const char *f = fpath("ju.file");
	char *j = journal_path(f), *d = journal_links_path(j), link1[4200];
	uint64_t changed1;
	int ret;

	crash_setup(f);
	crash_logs_mode(0644);
	chmod(fpath("crash1.log"), 0666);
	changed1 = crash_changed_bytes(1);
	ASSERT(changed1 > 0, "setup");
	ASSERT(crash_mid_apply(f, 0), "no crash point with a complete journal");
	EXPECT(file_size(j) >= changed1, "journal of %llu bytes, log 1 changes %llu",
	       (unsigned long long)file_size(j), (unsigned long long)changed1);
	snprintf(link1, sizeof(link1), "%s/1", d);
	EXPECT(access(link1, F_OK) != 0, "a group-writable log was linked");
	for (int l = 0; l < NLOGS; l++) {
		char name[64];

		snprintf(name, sizeof(name), "crash%d.log", l);
		unlink(fpath(name));
	}
	ret = cowmap_recover(f, 0);
	EXPECT(ret == COWMAP_RECOVER_REPLAYED, "replay: %d %s", ret, cowmap_errmsg());
	EXPECT(which(f) == 1, "replayed file is not the new one");
	free(d);
	free(j);
	free(cf_old);
	free(cf_new);
}

/* A journal as libcowmap 1.0 wrote it (version 1: old and new bytes of
 * each entry, flags 0), built here byte by byte. */
static uint32_t crc_skip4(const uint8_t *p, size_t len, size_t at)
{
	uint32_t c = crc32c_update(~0U, p, at);

	c = crc32c_update(c, "\0\0\0\0", 4);
	return ~crc32c_update(c, p + at + 4, len - at - 4);
}

static size_t v1_journal(uint8_t *b, uint32_t version, const struct stat *st,
			 const struct chg *c, int n)
{
	size_t p = 64, bytes = 0;
	uint32_t ecrc = 0;

	memset(b, 0, 64);
	memcpy(b, "COWMAPJN", 8);
	put_le32(b + 8, version);
	put_le32(b + 12, 64);
	put_le64(b + 16, (uint64_t)st->st_dev);
	put_le64(b + 24, (uint64_t)st->st_ino);
	put_le64(b + 32, (uint64_t)st->st_size);
	put_le32(b + 60, crc_skip4(b, 64, 60));
	for (int i = 0; i < n; i++) {
		size_t total = 32 + ALIGN8(2 * (size_t)c[i].len);

		memset(b + p, 0, total);
		put_le32(b + p, 0x454a4d43U);
		put_le64(b + p + 8, c[i].off);
		put_le32(b + p + 16, c[i].len);
		put_le64(b + p + 24, (uint64_t)i);
		memcpy(b + p + 32, c[i].new, c[i].len);
		memcpy(b + p + 32 + c[i].len, c[i].old, c[i].len);
		put_le32(b + p + 4, crc_skip4(b + p, total, 4));
		ecrc = crc32c_update(ecrc, b + p + 4, 4);
		bytes += c[i].len;
		p += total;
	}
	memset(b + p, 0, 32);
	put_le32(b + p, 0x434a4d43U);
	put_le64(b + p + 8, (uint64_t)n);
	put_le64(b + p + 16, bytes);
	put_le32(b + p + 24, ecrc);
	put_le32(b + p + 4, crc_skip4(b + p, 32, 4));
	return p + 32;
}

TEST(journal_version1_replayed_and_rolled_back)
{
	const char *f = fpath("v1.file");
	char *j = journal_path(f);
	const char *old = "0123456789abcdefghij", *new = "ABCD4567XYabcdefghij";
	const struct chg c[] = { { 0, 4, "0123", "ABCD" }, { 8, 2, "89", "XY" } };
	uint8_t b[512];
	struct stat st;
	size_t n, len;
	uint8_t *d;
	int ret;

	write_file(f, old, 20);
	ASSERT(stat(f, &st) == 0, "stat");
	len = v1_journal(b, 1, &st, c, 2);
	write_file(j, b, len);
	chmod(j, 0600);
	ret = cowmap_recover(f, 0);
	EXPECT(ret == COWMAP_RECOVER_REPLAYED, "version 1 replay: %d %s", ret, cowmap_errmsg());
	d = read_file(f, &n);
	EXPECT(d && n == 20 && !memcmp(d, new, 20), "version 1 journal not replayed");
	free(d);

	write_file(j, b, len);
	chmod(j, 0600);
	ret = cowmap_recover(f, COWMAP_RECOVER_ROLLBACK);
	EXPECT(ret == COWMAP_RECOVER_ROLLED_BACK, "version 1 rollback: %d %s", ret,
	       cowmap_errmsg());
	d = read_file(f, &n);
	EXPECT(d && n == 20 && !memcmp(d, old, 20), "version 1 journal not rolled back");
	free(d);

	/* a version this library does not know: refused, named */
	len = v1_journal(b, 4, &st, c, 2);
	write_file(j, b, len);
	chmod(j, 0600);
	ret = cowmap_recover(f, 0);
	EXPECT(ret == -COWMAP_EBADJOURNAL && strstr(cowmap_errmsg(), "unknown journal version 4"),
	       "version 4: %d %s", ret, cowmap_errmsg());
	EXPECT(access(j, F_OK) == 0, "an unknown journal was removed");
	unlink(j);
	free(j);
}
