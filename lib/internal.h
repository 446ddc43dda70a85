/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libcowmap internals: shared by the library's sources and the host tests,
 * never exported (-fvisibility=hidden, lib/libcowmap.map).
 */
#ifndef COWMAP_INTERNAL_H
#define COWMAP_INTERNAL_H

#include <endian.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "cowmap.h"

#define COWMAP_EXPORT __attribute__((visibility("default")))

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define ALIGN8(x)	(((x) + 7) & ~(uint64_t)7)
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))

#define LOG_HDR_SIZE	((uint32_t)sizeof(struct cowmap_log_header))
#define LOG_REC_SIZE	((uint32_t)sizeof(struct cowmap_log_record))

/* error.c: record a detailed message and return -err (errno = err). */
int err_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with "prefix: " and return -err. */
int err_prefix(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Return -errno as is, with errno set (no message change). */
int err_ret(int err);

/* crc32c.c */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool crc32c_hw_available(void);
/* Raw update without the initial/final inversion (crc is the register). */
uint32_t crc32c_update(uint32_t reg, const void *buf, size_t len);
/* CRC32C of @len bytes at @buf whose 4-byte CRC field at @crc_at counts as 0. */
uint32_t crc32c_skip4(const void *buf, uint64_t len, size_t crc_at);

/* util.c */
int pread_full(int fd, void *buf, size_t len, uint64_t off);
/*
 * Read @len bytes of @fd (a log or journal, its size at open) into a
 * private read-only copy (munmap() it): a sealed memfd's mapping, or
 * anonymous memory where memfds cannot be had.  Not a mapping of the file
 * itself: its owner could truncate it under us, and a read of the mapping
 * past the new end would kill the process (SIGBUS).  A file that shrinks
 * while read is an error (EIO); what it grows later is not seen.
 */
int read_whole(int fd, const char *name, uint64_t len, const uint8_t **mapp);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
int write_full(int fd, const void *buf, size_t len);
int fsync_dir_of(const char *path);
int fsync_dir_fd(int dirfd);
char *path_dirname(const char *path);
const char *path_basename(const char *path);
char *journal_path(const char *file_path);
/* @jpath + ".new": the journal's name until it is complete and durable. */
char *journal_tmp_path(const char *jpath);
/* @jpath + ".d": hard links of the logs a journal's entries point into. */
char *journal_links_path(const char *jpath);
int open_tmpfile_in(const char *dir, const char *hint, char **namep);
/* open(@path, @flags | O_NOFOLLOW | O_CLOEXEC), naming a link as such. */
int open_nofollow(const char *path, int flags);
/* realpath() of @path's directory, then its last component as given. */
char *real_target(const char *path);
/* May a log or journal owned by @owner touch a file owned by @file_owner? */
bool owner_trusted(uid_t owner, uid_t file_owner);
mode_t current_umask(void);
/* 0 if a file near @near_path may grow to @end bytes; else -EFBIG. */
int check_size_limit(const char *near_path, const char *file, uint64_t end);
bool mem_is_zero(const void *p, size_t len);
char *xstrdup(const char *s);
/* Grow *buf (doubling from 64 KiB) to hold @need bytes; keeps contents. */
int buf_reserve(uint8_t **buf, size_t *cap, size_t need);
void *xrealloc_array(void *p, size_t n, size_t size);

/* Test hooks, compiled only into test builds (-DCOWMAP_TEST_HOOKS: the
 * host tests' and the VM selftests' library, 'make test-build'), never into
 * the released library and CLI: the environment variable
 * COWMAP_TEST_CRASH_AT=N makes the library kill itself with SIGKILL at its
 * N-th crash point (1-based) of a merge; COWMAP_TEST_CRASH_TRACE=1 prints
 * each point to stderr.  Both are read once.  crash_points_passed() counts
 * points passed so far.  COWMAP_TEST_NO_MEMFD=1 (read at each call)
 * makes read_whole() take its fallback, anonymous memory. */
#ifdef COWMAP_TEST_HOOKS
void crash_point(const char *what);
uint64_t crash_points_passed(void);
void crash_reset(void);
bool test_no_memfd(void);
#else
static inline void crash_point(const char *what)
{
	(void)what;
}

static inline bool test_no_memfd(void)
{
	return false;
}
#endif

static inline uint32_t get_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t get_le64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void put_le32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void put_le64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/* log.c: a validated, mapped log. */
struct cowmap_log {
	int fd;
	char *name;
	const uint8_t *map;	/* whole file as read at open, read-only (NULL if empty) */
	uint64_t map_len;
	uint64_t pos;		/* iteration cursor */
	uint64_t seq;		/* next expected seq while iterating */
	struct cowmap_log_info info;
};

/* Compute a record's CRC (crc field taken as zero); @rec points at the
 * 32-byte record followed by its padded payload of @len bytes. */
uint32_t log_rec_crc(const uint8_t *rec, uint64_t total);
/* Compute a header's CRC over @len bytes (crc field taken as zero). */
uint32_t log_hdr_crc(const uint8_t *hdr, uint32_t len);

/* journal.c */
struct journal;
struct journal_target {
	int fd;			/* file to write (O_RDWR) */
	const char *path;	/* for messages */
	uint64_t dev, ino;	/* identity of the file (in place) */
	uint64_t size;		/* size before */
	uid_t uid;		/* owner of the file */
	bool undo;		/* keep the old bytes (rollback possible) */
};
/* Lock the file (flock LOCK_EX) and complete any interrupted merge;
 * returns COWMAP_RECOVER_* or -errno.  With JOURNAL_CHECK_ONLY in @flags,
 * a pending journal is -EBUSY instead (nothing is written). */
#define JOURNAL_CHECK_ONLY	(1U << 31)
int journal_lock_and_recover(const char *path, int fd, bool can_write,
			     unsigned int flags);
/* Begin a journal at @jpath (which must not exist). */
int journal_begin(struct journal **jp, const char *jpath,
		  const struct journal_target *t);
/*
 * Offer @len bytes at @base, a private copy of the whole of the log open
 * as @fd (valid until the journal is freed): entries whose new bytes lie
 * there point into the log (hard-linked beside the journal) instead of
 * holding them, where the log can be linked and trusted.
 */
int journal_add_source(struct journal *j, const uint8_t *base, uint64_t len, int fd);
/* Add an entry; @newb and @oldb must stay valid until journal_flush(). */
int journal_add(struct journal *j, uint64_t off, const uint8_t *newb,
		const uint8_t *oldb, uint32_t len);
/* 0 if the file can grow to the end of every entry (before the commit). */
int journal_check_size(const struct journal *j);
/* Write the pending entries. */
int journal_flush(struct journal *j);
/* Make the journal complete and durable (entries and trailer, fsync,
 * rename to its name, directory fsync). */
int journal_commit(struct journal *j);
/* Apply a committed journal to its target, fsync the target. */
int journal_apply(struct journal *j);
/* Remove the journal, fsync its directory, free it. */
int journal_finish(struct journal *j);
/* Abort: remove an uncommitted journal, free it. */
void journal_abort(struct journal *j);
/* Free, leaving the journal file for recovery. */
void journal_release(struct journal *j);

#endif /* COWMAP_INTERNAL_H */
