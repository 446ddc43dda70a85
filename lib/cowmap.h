/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libcowmap: private copy-on-write views of a shared memory-mapped file.
 *
 * Sessions on /dev/cowmap, the log file format of <linux/cowmap.h>, and
 * failure-atomic merges of logs into their backing file.
 *
 * Functions that can fail return a negative errno or COWMAP_E* value
 * (errno is set too), with cowmap_errmsg() saying what failed and where.
 * Handles are not thread-safe.  The conventions, and what sessions, logs,
 * merges, recovery and the netlink calls do: libcowmap(3).  Below, each
 * call's arguments and return values.
 */
#ifndef COWMAP_H
#define COWMAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/cowmap.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cowmap-specific error numbers (returned negated, like errno values). */
#define COWMAP_EBASE		3000
#define COWMAP_ECONFLICT	3001	/* merge conflicts; nothing written */
#define COWMAP_EBADLOG		3002	/* log file is malformed or corrupt */
#define COWMAP_EWRONGFILE	3003	/* log was recorded against another file */
#define COWMAP_ECHAIN		3004	/* log records contradict each other */
#define COWMAP_EBADJOURNAL	3005	/* merge journal is corrupt */
#define COWMAP_EMAX		3005

/**
 * cowmap_strerror() - describe an error number
 * @err: an errno or COWMAP_E* value, positive or negative.
 *
 * Return: a static string; never NULL.
 */
const char *cowmap_strerror(int err);

/**
 * cowmap_errmsg() - the detailed message of the calling thread's last error
 *
 * Return: a thread-local string naming what failed and where, kept until
 * the thread's next failure; "" if nothing failed yet.
 */
const char *cowmap_errmsg(void);

/**
 * cowmap_crc32c() - CRC32C (Castagnoli), as used by the log format
 * @crc: 0 to start, or the value returned for the preceding bytes.
 * @buf: bytes.
 * @len: number of bytes.
 *
 * cowmap_crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * Return: the CRC of all bytes so far.
 */
uint32_t cowmap_crc32c(uint32_t crc, const void *buf, size_t len);

/* ------------------------------------------------------------------------
 * Log files
 * ------------------------------------------------------------------------
 */

/**
 * struct cowmap_log_info - a log's header and what validation found
 * @dev: the backing file's st_dev.
 * @ino: its st_ino.
 * @size: its size when the session was bound.
 * @session_id: the session (0: written without a session).
 * @bind_time_ns: CLOCK_REALTIME when the session was bound (or the log
 *	was created).
 * @pid: process that bound the session.
 * @uid: its uid.
 * @version: COWMAP_LOG_VERSION.
 * @header_len: bytes of header, path included.
 * @comm: its command name, NUL-terminated.
 * @path: the backing file's path, NUL-terminated.
 * @log_size: bytes in the log file when it was opened.
 * @records: valid records.
 * @valid_end: byte offset just after the last valid record.
 * @torn: 1 if the log's tail from @torn_offset on was left out.
 * @torn_kind: why, COWMAP_LOG_TORN_* (libcowmap(3), "Logs"); 0 if @torn
 *	is 0, or unknown (earlier 1.x releases).
 * @reserved0: zero.
 * @torn_offset: byte offset of the torn record.
 * @reserved: zero.
 */
struct cowmap_log_info {
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	uint64_t session_id;
	uint64_t bind_time_ns;
	uint32_t pid;
	uint32_t uid;
	uint32_t version;
	uint32_t header_len;
	char comm[17];
	char path[COWMAP_LOG_PATH_MAX];
	uint64_t log_size;
	uint64_t records;
	uint64_t valid_end;
	uint32_t torn;
	uint64_t torn_offset;
	uint32_t torn_kind;
	uint32_t reserved0;
	uint64_t reserved[7];
};

/* struct cowmap_log_info.torn_kind */
#define COWMAP_LOG_TORN_SHORT	1	/* last record cut short by the end of the file */
#define COWMAP_LOG_TORN_ZERO	2	/* zero bytes to the end: unwritten blocks */
#define COWMAP_LOG_TORN_CRC	3	/* whole last record, wrong checksum */

/**
 * struct cowmap_log_rec - one record of a log
 * @seq: its sequence number.
 * @offset: file offset of the first byte.
 * @length: number of bytes.
 * @flags: zero.
 * @log_offset: byte offset of the record in the log.
 * @old_data: @length bytes the range held before.
 * @new_data: @length bytes it holds after.
 *
 * The data pointers stay valid until the handle that produced the record
 * is closed (logs) or the buffer is reused (diffs).
 */
struct cowmap_log_rec {
	uint64_t seq;
	uint64_t offset;
	uint32_t length;
	uint32_t flags;
	uint64_t log_offset;
	const uint8_t *old_data;
	const uint8_t *new_data;
};

struct cowmap_log;

/**
 * cowmap_log_open() - open and validate a log file
 * @path: the log.
 * @flags: 0.
 * @logp: (out) the handle.
 *
 * Reads the log into private memory and validates all of it.  A torn tail
 * is not an error: cowmap_log_info() reports it (libcowmap(3), "Logs").
 *
 * Return: 0; -COWMAP_EBADLOG (damage before the tail; the byte offset in
 * cowmap_errmsg()); -EINVAL (flags); -errno of open/mmap.
 */
int cowmap_log_open(const char *path, unsigned int flags,
		    struct cowmap_log **logp);

/**
 * cowmap_log_open_fd() - open and validate a log from a file descriptor
 * @fd: a readable regular file; duplicated, the caller keeps @fd.
 * @name: name used in messages (may be NULL).
 * @flags: 0.
 * @logp: (out) the handle.
 *
 * As cowmap_log_open(); the log is read from offset 0 whatever @fd's file
 * position.
 *
 * Return: as cowmap_log_open().
 */
int cowmap_log_open_fd(int fd, const char *name, unsigned int flags,
		       struct cowmap_log **logp);

/**
 * cowmap_log_info() - the header and validation results of a log
 * @log: an open log.
 * @info: (out) filled in.
 *
 * Return: 0, or -EINVAL if an argument is NULL.
 */
int cowmap_log_info(const struct cowmap_log *log, struct cowmap_log_info *info);

/**
 * cowmap_log_next() - the next record of a log
 * @log: an open log.
 * @rec: (out) the record.
 *
 * Iterates over the valid records in order, from the first (or from where
 * cowmap_log_rewind() put the cursor).
 *
 * Return: 1 and @rec filled in; 0 at the end; -COWMAP_EBADLOG if the log
 * changed under the handle; -EINVAL.
 */
int cowmap_log_next(struct cowmap_log *log, struct cowmap_log_rec *rec);

/**
 * cowmap_log_rewind() - restart iteration at the first record
 * @log: an open log.
 *
 * Return: 0, or -EINVAL.
 */
int cowmap_log_rewind(struct cowmap_log *log);

/**
 * cowmap_log_close() - release a log handle
 * @log: the handle, or NULL.
 */
void cowmap_log_close(struct cowmap_log *log);

struct cowmap_log_writer;

/* cowmap_log_create() flags */
#define COWMAP_LOG_CREATE_EXCL	(1U << 0)	/* fail if the log exists */

/**
 * cowmap_log_info_init() - describe a backing file for a new log header
 * @info: (out) zeroed, then dev, ino, size from fstat(@fd), path from
 *	@path (made absolute), pid, uid, comm of the caller, bind_time_ns
 *	now, session_id 0.
 * @fd: the backing file, open.
 * @path: its path (as given by the user).
 *
 * Return: 0; -ENAMETOOLONG if the path is COWMAP_LOG_PATH_MAX or longer;
 * -errno of fstat.
 */
int cowmap_log_info_init(struct cowmap_log_info *info, int fd,
			 const char *path);

/**
 * cowmap_log_create() - create a log for a backing file
 * @log_path: the log to create (truncated if it exists, unless
 *	COWMAP_LOG_CREATE_EXCL).
 * @file_path: the backing file; its identity and path go into the header.
 * @flags: COWMAP_LOG_CREATE_*.
 * @wp: (out) the writer.
 *
 * Writes the header at once.
 *
 * Return: 0; -EEXIST with COWMAP_LOG_CREATE_EXCL; -errno of open, fstat,
 * write.  On failure no log is left behind.
 */
int cowmap_log_create(const char *log_path, const char *file_path,
		      unsigned int flags, struct cowmap_log_writer **wp);

/**
 * cowmap_log_create_fd() - start a log in an empty file
 * @log_fd: an empty regular file open for writing; duplicated.
 * @info: header contents: dev, ino, size, session_id, bind_time_ns, pid,
 *	uid, comm and path are used (see cowmap_log_info_init()).
 * @flags: 0.
 * @wp: (out) the writer.
 *
 * Return: 0; -ENOTEMPTY if the file is not empty; -ENAMETOOLONG; -EINVAL;
 * -errno of write.
 */
int cowmap_log_create_fd(int log_fd, const struct cowmap_log_info *info,
			 unsigned int flags, struct cowmap_log_writer **wp);

/**
 * cowmap_log_append() - append one record
 * @w: the writer.
 * @offset: file offset of the first byte.
 * @old_data: the @length bytes the range held.
 * @new_data: the @length bytes it holds now.
 * @length: 1..COWMAP_LOG_REC_MAX.
 *
 * Records are buffered until cowmap_log_sync().  After a failed write the
 * log is cut back to its last whole record and the writer refuses more.
 *
 * Return: 0; -EINVAL (length, offset overflow); -EIO after an earlier
 * failure; -errno of write.
 */
int cowmap_log_append(struct cowmap_log_writer *w, uint64_t offset,
		      const void *old_data, const void *new_data,
		      uint32_t length);

/**
 * cowmap_log_sync() - write buffered records and fsync the log
 * @w: the writer.
 *
 * Return: 0 or -errno.
 */
int cowmap_log_sync(struct cowmap_log_writer *w);

/**
 * cowmap_log_writer_close() - sync and release a writer
 * @w: the writer, or NULL.
 *
 * Return: 0, or the -errno of the final sync (the writer is freed anyway).
 */
int cowmap_log_writer_close(struct cowmap_log_writer *w);

/* ------------------------------------------------------------------------
 * Merging logs into a file
 * ------------------------------------------------------------------------
 */

/* cowmap_merge_new() flags */
#define COWMAP_MERGE_DRY_RUN		(1U << 0)  /* plan and report only */
#define COWMAP_MERGE_FORCE		(1U << 1)  /* skip the dev/ino check */
#define COWMAP_MERGE_PREFER_FIRST	(1U << 2)  /* first log wins conflicts */
#define COWMAP_MERGE_PREFER_LAST	(1U << 3)  /* last log wins conflicts */
#define COWMAP_MERGE_TRUST_ALL_LOGS	(1U << 4)  /* logs of any owner (below) */
#define COWMAP_MERGE_STRICT		(1U << 5)  /* a torn tail is an error (below) */
#define COWMAP_MERGE_UNDO_JOURNAL	(1U << 6)  /* journal keeps old bytes (below) */

/* struct cowmap_conflict.kind */
#define COWMAP_CONFLICT_LOGS	1	/* two logs, different new bytes */
#define COWMAP_CONFLICT_STALE	2	/* the file no longer holds the old bytes */

/* struct cowmap_conflict.flags */
#define COWMAP_CONFLICT_RESOLVED (1U << 0)	/* resolved by a prefer flag */

#define COWMAP_CONFLICT_PREVIEW	32

/**
 * struct cowmap_conflict - one conflicting range
 * @kind: COWMAP_CONFLICT_*.
 * @flags: COWMAP_CONFLICT_RESOLVED.
 * @log_a: index of a log involved (in the order logs were added).
 * @log_b: LOGS: index of the other log (@log_a < @log_b); STALE: -1.
 * @offset: file offset of the first byte.
 * @length: bytes in the range.
 * @preview_len: bytes valid in each preview: min(@length, 32).
 * @file: the file's current bytes.
 * @a: LOGS: @log_a's new bytes; STALE: @log_a's expected (old) bytes.
 * @b: LOGS: @log_b's new bytes; STALE: @log_a's new bytes.
 *
 * Adjacent bytes with the same kind and logs form one range; bytes past
 * the file's end show as 0.
 */
struct cowmap_conflict {
	uint32_t kind;
	uint32_t flags;
	int32_t log_a;
	int32_t log_b;
	uint64_t offset;
	uint64_t length;
	uint32_t preview_len;
	uint8_t file[COWMAP_CONFLICT_PREVIEW];
	uint8_t a[COWMAP_CONFLICT_PREVIEW];
	uint8_t b[COWMAP_CONFLICT_PREVIEW];
};

/**
 * struct cowmap_merge_stats - what a merge did (or would do)
 * @logs: logs merged.
 * @skipped_logs: logs cowmap_merge_add_dir() skipped (other files).
 * @records: valid records read.
 * @torn_logs: logs with a torn tail, of any kind (warnings).
 * @changed_bytes: bytes changed by at least one log.
 * @write_bytes: bytes whose value the merge changes (or, dry run, would
 *	change) in the file.
 * @write_ranges: writes issued (or to be issued); ranges closer than 64
 *	bytes are joined, rewriting the bytes between with their value.
 * @applied_bytes: changed bytes the file already held (no write needed).
 * @conflicts: conflict ranges, resolved ones included.
 * @unresolved: conflict ranges not resolved.
 * @conflict_bytes: bytes in conflict ranges.
 * @recovered: 1 if an interrupted merge was completed first, 2 if an
 *	incomplete journal was dropped.
 * @crc_tail_logs: of @torn_logs, those whose whole last record failed its
 *	checksum (COWMAP_LOG_TORN_CRC); earlier libcowmap 1.x releases leave
 *	it 0 (it was reserved, always zero).
 * @reserved: zero.
 */
struct cowmap_merge_stats {
	uint64_t logs;
	uint64_t skipped_logs;
	uint64_t records;
	uint64_t torn_logs;
	uint64_t changed_bytes;
	uint64_t write_bytes;
	uint64_t write_ranges;
	uint64_t applied_bytes;
	uint64_t conflicts;
	uint64_t unresolved;
	uint64_t conflict_bytes;
	uint32_t recovered;
	uint32_t crc_tail_logs;
	uint64_t reserved[6];
};

struct cowmap_merge;

/**
 * cowmap_merge_new() - prepare a merge into a file
 * @file_path: the backing file.
 * @flags: COWMAP_MERGE_*; at most one PREFER flag.
 * @mp: (out) the merge.
 *
 * Nothing is opened until cowmap_merge_run().  The flags' effects:
 * libcowmap(3), "Merges".
 *
 * Return: 0, -EINVAL (flags), -ENOMEM.
 */
int cowmap_merge_new(const char *file_path, unsigned int flags,
		     struct cowmap_merge **mp);

/**
 * cowmap_merge_set_output() - write a merged copy instead of merging in place
 * @m: the merge.
 * @out_path: the new file, replaced atomically; the input is not modified
 *	(libcowmap(3), "Merges").
 *
 * Return: 0, -EINVAL, -ENOMEM.
 */
int cowmap_merge_set_output(struct cowmap_merge *m, const char *out_path);

/**
 * cowmap_merge_add_log() - add a log, opened and validated now
 * @m: the merge.
 * @log_path: the log.
 *
 * Logs are ordered as added; cowmap_merge_run() checks they belong to
 * the file (unless COWMAP_MERGE_FORCE).
 *
 * Return: 0, or as cowmap_log_open().
 */
int cowmap_merge_add_log(struct cowmap_merge *m, const char *log_path);

/**
 * cowmap_merge_add_log_fd() - add a log from a file descriptor
 * @m: the merge.
 * @fd: readable log; duplicated.
 * @name: name in messages and cowmap_merge_log_name().
 *
 * Return: as cowmap_merge_add_log().
 */
int cowmap_merge_add_log_fd(struct cowmap_merge *m, int fd, const char *name);

/**
 * cowmap_merge_add_dir() - add every log of a directory recorded against the file
 * @m: the merge.
 * @dir: the directory.
 *
 * Logs of other files, and of untrusted owners, are skipped; the order
 * and the rules: libcowmap(3), "Merges".
 *
 * Return: number of logs added (>= 0); -COWMAP_EBADLOG (a malformed
 * log); -errno.
 */
int cowmap_merge_add_dir(struct cowmap_merge *m, const char *dir);

/**
 * cowmap_merge_run() - validate, plan and apply the merge
 * @m: the merge; run at most once.
 *
 * Return: 0 (merged, or planned with COWMAP_MERGE_DRY_RUN);
 * -COWMAP_ECONFLICT if unresolved conflicts were found (nothing written;
 * see cowmap_merge_conflict()); -COWMAP_EWRONGFILE, -COWMAP_EBADLOG,
 * -COWMAP_ECHAIN, -COWMAP_EBADJOURNAL; -EBUSY (dry run or output file
 * while an interrupted merge is pending); -ELOOP (the file is a symbolic
 * link); -EPERM (untrusted journal or log); -EFBIG; -EINVAL (output is
 * the input); -EWOULDBLOCK (lock wait ran out); -errno.  On failure the
 * file is unchanged, or the journal completes it later.
 */
int cowmap_merge_run(struct cowmap_merge *m);

/**
 * cowmap_merge_stats() - counts of a merge
 * @m: the merge.
 * @st: (out) filled in.
 *
 * Return: 0, or -EINVAL.
 */
int cowmap_merge_stats(const struct cowmap_merge *m,
		       struct cowmap_merge_stats *st);

/**
 * cowmap_merge_conflict() - one conflict found by cowmap_merge_run()
 * @m: the merge.
 * @i: index, from 0, in ascending offset order.
 * @c: (out) the conflict.
 *
 * The first 1000 conflicts are kept; the stats count them all.
 *
 * Return: 0; -ENOENT past the last one; -EINVAL.
 */
int cowmap_merge_conflict(const struct cowmap_merge *m, size_t i,
			  struct cowmap_conflict *c);

/**
 * cowmap_merge_warning() - one warning (torn tail, skipped log)
 * @m: the merge.
 * @i: index, from 0.
 *
 * Return: the message, or NULL past the last one.
 */
const char *cowmap_merge_warning(const struct cowmap_merge *m, size_t i);

/**
 * cowmap_merge_log_name() - the name of a log of the merge
 * @m: the merge.
 * @i: log index (as in struct cowmap_conflict).
 *
 * Return: the name, or NULL if @i is out of range.
 */
const char *cowmap_merge_log_name(const struct cowmap_merge *m, size_t i);

/**
 * cowmap_merge_free() - release a merge
 * @m: the merge, or NULL.
 */
void cowmap_merge_free(struct cowmap_merge *m);

/* cowmap_recover() flags */
#define COWMAP_RECOVER_ROLLBACK	(1U << 0)	/* undo a complete journal */
#define COWMAP_RECOVER_DISCARD	(1U << 1)	/* remove the journal, unapplied */

/* cowmap_recover() results */
#define COWMAP_RECOVER_NONE	0	/* no journal */
#define COWMAP_RECOVER_REPLAYED	1	/* interrupted merge completed */
#define COWMAP_RECOVER_DROPPED	2	/* incomplete journal removed */
#define COWMAP_RECOVER_ROLLED_BACK 3	/* complete journal undone */
#define COWMAP_RECOVER_DISCARDED 4	/* journal removed, file left as is */

/**
 * cowmap_recover() - finish or roll back an interrupted merge of a file
 * @path: the backing file.
 * @flags: COWMAP_RECOVER_*.
 *
 * Replays a complete journal, undoes it (COWMAP_RECOVER_ROLLBACK: only a
 * journal that kept the old bytes, COWMAP_MERGE_UNDO_JOURNAL or libcowmap
 * 1.0's, else -EOPNOTSUPP and nothing written) or removes it unapplied
 * (COWMAP_RECOVER_DISCARD); removes an incomplete one.  Which journals are
 * trusted and checked: libcowmap(3), "Recovery".
 *
 * Return: COWMAP_RECOVER_*; -COWMAP_EBADJOURNAL (corrupt, another file's,
 * or the file changed since; left in place); -EPERM (untrusted journal);
 * -ELOOP (symbolic link); -EISDIR, -EINVAL (not a regular file); -EFBIG;
 * -EOPNOTSUPP (rollback without old bytes); -EWOULDBLOCK (lock wait ran
 * out); -errno.
 */
int cowmap_recover(const char *path, unsigned int flags);

/**
 * cowmap_set_lock_wait() - how long merges and recoveries wait for the lock
 * @ms: milliseconds (default 10000); negative: wait as long as it takes.
 *
 * Process-wide.  Then cowmap_merge_run() and cowmap_recover() fail with
 * -EWOULDBLOCK (libcowmap(3), "Merges").
 */
void cowmap_set_lock_wait(int ms);

/* ------------------------------------------------------------------------
 * Sessions (/dev/cowmap)
 * ------------------------------------------------------------------------
 */

struct cowmap_session;

/**
 * cowmap_session_open() - open a session on a file
 * @path: the backing file; opened read-only.
 * @flags: 0.
 * @log_path: NULL, or a log file to create (it must not exist), which the
 *	kernel writes on each drain and when the session ends in any way.
 * @ring_size: event ring capacity (0: default; else a power of two in
 *	[COWMAP_RING_MIN, COWMAP_RING_MAX]).
 * @sp: (out) the session.
 *
 * Return: 0; -ENOENT if the module is not loaded (no /dev/cowmap), the
 * errors of COWMAP_IOC_BIND (-EOPNOTSUPP for unsupported filesystems,
 * ...), -errno of open.  On failure a created log is removed.
 */
int cowmap_session_open(const char *path, unsigned int flags,
			const char *log_path, uint32_t ring_size,
			struct cowmap_session **sp);

/**
 * cowmap_session_fd() - the session's /dev/cowmap file descriptor
 * @s: the session.
 *
 * For poll(2) and for passing to other processes.
 *
 * Return: the fd, or -EINVAL.
 */
int cowmap_session_fd(const struct cowmap_session *s);

/**
 * cowmap_session_id() - the session's id
 * @s: the session.
 *
 * Return: the id (never 0), or 0 if @s is NULL.
 */
uint64_t cowmap_session_id(const struct cowmap_session *s);

/**
 * cowmap_session_map() - map part of the file through the session
 * @s: the session.
 * @offset: file offset, a multiple of the page size.
 * @length: bytes.
 * @prot: PROT_READ, optionally | PROT_WRITE.
 * @addrp: (out) the mapping.
 *
 * Return: 0 or -errno of mmap(2) (MAP_SHARED of the session fd).
 */
int cowmap_session_map(struct cowmap_session *s, uint64_t offset, size_t length,
		       int prot, void **addrp);

/**
 * cowmap_session_unmap() - unmap a mapping made by cowmap_session_map()
 * @s: the session.
 * @addr: the mapping.
 * @length: its length.
 *
 * Return: 0 or -errno of munmap(2).
 */
int cowmap_session_unmap(struct cowmap_session *s, void *addr, size_t length);

/**
 * cowmap_session_info() - COWMAP_IOC_INFO
 * @s: the session.
 * @info: (out) filled in.
 *
 * Return: 0 or -errno.
 */
int cowmap_session_info(struct cowmap_session *s, struct cowmap_info *info);

/**
 * cowmap_session_version() - COWMAP_IOC_VERSION of the loaded module
 * @s: a session, or NULL to open /dev/cowmap just for this.
 * @v: (out) filled in.
 *
 * Return: 0 or -errno (-ENOENT: module not loaded).
 */
int cowmap_session_version(struct cowmap_session *s, struct cowmap_version *v);

/**
 * cowmap_session_read_events() - read events from the session's ring
 * @s: the session.
 * @ev: (out) array of events.
 * @max: capacity of @ev, at least 1.
 * @nonblock: if nonzero, return -EAGAIN instead of waiting.
 *
 * Return: number of events read (>= 1), or -errno (-EAGAIN, -EINTR).
 */
int cowmap_session_read_events(struct cowmap_session *s, struct cowmap_event *ev,
			       size_t max, int nonblock);

/**
 * cowmap_session_drain() - append the changes made since the last drain to a log
 * @s: the session.
 * @log_fd: a log file open for writing (its header is written if it is
 *	empty), or -1 for the log given at open.
 * @st: (out, may be NULL) records, pages and bytes appended.
 *
 * Return: 0 or -errno of COWMAP_IOC_DRAIN (-EBADFD: no log).
 */
int cowmap_session_drain(struct cowmap_session *s, int log_fd,
			 struct cowmap_drain *st);

/* cowmap_session_discard() length: the whole file */
#define COWMAP_DISCARD_ALL	UINT64_MAX

/**
 * cowmap_session_discard() - drop private pages (and their undrained changes)
 * @s: the session.
 * @offset: first byte, page aligned (ignored with COWMAP_DISCARD_ALL).
 * @length: bytes (page multiple), or COWMAP_DISCARD_ALL.
 *
 * Return: pages dropped (>= 0, saturated at INT_MAX), or -errno.
 */
int cowmap_session_discard(struct cowmap_session *s, uint64_t offset,
			   uint64_t length);

/**
 * cowmap_session_diff() - read changes without draining them (COWMAP_IOC_DIFF)
 * @s: the session.
 * @offset: (in/out) where to start (page aligned, 0 at first); set to where
 *	to continue, COWMAP_DIFF_END when done.
 * @end: offset to stop before, 0 for no limit.
 * @buf: buffer for records.
 * @buf_len: its size, at least COWMAP_DIFF_MIN_BUF.
 * @used: (out) bytes of records in @buf; iterate them with
 *	cowmap_diff_next().
 *
 * Return: records in @buf (>= 0), or -errno.
 */
int cowmap_session_diff(struct cowmap_session *s, uint64_t *offset, uint64_t end,
			void *buf, size_t buf_len, size_t *used);

/**
 * cowmap_diff_next() - iterate over records returned by cowmap_session_diff()
 * @buf: the buffer.
 * @used: bytes used in it.
 * @pos: (in/out) cursor, 0 at first.
 * @rec: (out) the record; its pointers point into @buf.
 *
 * Return: 1 with @rec filled in; 0 at the end; -COWMAP_EBADLOG if a
 * record is malformed.
 */
int cowmap_diff_next(const void *buf, size_t used, size_t *pos,
		     struct cowmap_log_rec *rec);

/* cowmap_session_commit() flags */
#define COWMAP_COMMIT_FORCE	(1U << 0)	/* session's bytes win over the file's */

/**
 * cowmap_session_commit() - merge the session's changes into its file, then drop them
 * @s: the session.
 * @flags: COWMAP_COMMIT_*.
 * @st: (out, may be NULL) what the merge did.
 *
 * Writers must be quiescent; how it merges: libcowmap(3), "Sessions".
 *
 * Return: 0; -COWMAP_ECONFLICT (the file changed under the session's
 * bytes, without COWMAP_COMMIT_FORCE: nothing written or dropped);
 * -errno; as cowmap_merge_run().
 */
int cowmap_session_commit(struct cowmap_session *s, unsigned int flags,
			  struct cowmap_merge_stats *st);

/**
 * cowmap_session_close() - end a session
 * @s: the session, or NULL.
 *
 * The session ends when its last mapping and fd (in any process) are
 * gone; its undrained changes go to its log then, if it has one.
 */
void cowmap_session_close(struct cowmap_session *s);

/*
 * The 1.0 names of the session calls above (since 1.2 they are named
 * cowmap_session_*): the same functions, kept for existing programs.
 */
int cowmap_map(struct cowmap_session *s, uint64_t offset, size_t length,
	       int prot, void **addrp);
int cowmap_unmap(struct cowmap_session *s, void *addr, size_t length);
int cowmap_version(struct cowmap_session *s, struct cowmap_version *v);
int cowmap_read_events(struct cowmap_session *s, struct cowmap_event *ev,
		       size_t max, int nonblock);
int cowmap_drain(struct cowmap_session *s, int log_fd,
		 struct cowmap_drain *st);
int cowmap_discard(struct cowmap_session *s, uint64_t offset,
		   uint64_t length);
int cowmap_diff(struct cowmap_session *s, uint64_t *offset, uint64_t end,
		void *buf, size_t buf_len, size_t *used);
int cowmap_commit(struct cowmap_session *s, unsigned int flags,
		  struct cowmap_merge_stats *st);

/* ------------------------------------------------------------------------
 * Generic netlink: configuration, statistics, sessions, notifications
 *
 * One struct cowmap_nl is one socket; requests are synchronous.  Each
 * structure's @present mask has bit (1ULL << attribute) set for each
 * attribute the kernel sent (COWMAP_NL_HAS()); libcowmap(3), "Netlink".
 * ------------------------------------------------------------------------
 */

struct cowmap_nl;

/**
 * struct cowmap_nl_config - module configuration (COWMAP_A_CONFIG)
 * @present: get: bits (1 << COWMAP_CONFIG_A_*) received; set: the
 *	attributes to change (others keep their value).
 * @reserved0: zero.
 * @max_session_pages: per-session cap on private pages, 0 = none.
 * @max_total_pages: global cap on private pages, 0 = none.
 * @reserved: zero.
 */
struct cowmap_nl_config {
	uint32_t present;
	uint32_t reserved0;
	uint64_t max_session_pages;
	uint64_t max_total_pages;
	uint64_t reserved[6];
};

#define COWMAP_NL_HAS(s, attr)	(!!((s)->present & (1ULL << (attr))))

/**
 * struct cowmap_nl_stats - global statistics (COWMAP_A_STATS)
 * @present: bits (1ULL << COWMAP_STATS_A_*) received.
 * @sessions: sessions open.
 * @private_pages: private pages now.
 * @cow_faults: copies made since the module was loaded.
 * @read_faults: read faults served.
 * @events_lost: events overwritten before they were read.
 * @cap_hits: writes refused by a cap.
 * @drained_bytes: log bytes written by drains.
 * @reserved: zero.
 */
struct cowmap_nl_stats {
	uint64_t present;
	uint64_t sessions;
	uint64_t private_pages;
	uint64_t cow_faults;
	uint64_t read_faults;
	uint64_t events_lost;
	uint64_t cap_hits;
	uint64_t drained_bytes;
	uint64_t reserved[8];
};

/**
 * struct cowmap_nl_session - one session (COWMAP_A_SESSION)
 * @present: bits (1ULL << COWMAP_SESSION_A_*) received.
 * @id: session id.
 * @dev: backing file's st_dev.
 * @ino: backing file's st_ino.
 * @mapped_bytes: bytes mapped through the session now.
 * @private_pages: pages the session has copied.
 * @events: events produced since bind.
 * @events_lost: events overwritten before they were read.
 * @bind_time_ns: CLOCK_REALTIME at bind.
 * @pid: process that bound the session.
 * @uid: its owner.
 * @comm: command name of @pid, NUL-terminated.
 * @path: the backing file's path, NUL-terminated (cut if longer).
 * @reserved: zero.
 */
struct cowmap_nl_session {
	uint64_t present;
	uint64_t id;
	uint64_t dev;
	uint64_t ino;
	uint64_t mapped_bytes;
	uint64_t private_pages;
	uint64_t events;
	uint64_t events_lost;
	uint64_t bind_time_ns;
	uint32_t pid;
	uint32_t uid;
	char comm[24];
	char path[COWMAP_LOG_PATH_MAX];
	uint64_t reserved[8];
};

/**
 * struct cowmap_nl_event - one notification of the "events" group
 * @cmd: COWMAP_CMD_SESSION_NEW, _SESSION_DEL, _CAP_REACHED or
 *	_RING_OVERFLOW (or a newer command this library does not know).
 * @reserved0: zero.
 * @session_id: the session concerned (all notifications).
 * @offset: file offset of the page (CAP_REACHED, RING_OVERFLOW).
 * @session: its id and owner only (see @session.present); the rest
 *	comes from cowmap_nl_get_session().
 * @reserved: zero.
 */
struct cowmap_nl_event {
	uint32_t cmd;
	uint32_t reserved0;
	uint64_t session_id;
	uint64_t offset;
	struct cowmap_nl_session session;
	uint64_t reserved[4];
};

/**
 * cowmap_nl_open() - connect to the module's generic netlink family
 * @flags: 0.
 * @nlp: (out) the handle.
 *
 * Return: 0; -ENOENT if the family is not registered (module not loaded);
 * -EINVAL (flags); -errno of socket(2), bind(2), sendmsg(2), recvmsg(2).
 */
int cowmap_nl_open(unsigned int flags, struct cowmap_nl **nlp);

/**
 * cowmap_nl_close() - close a handle
 * @nl: the handle, or NULL.
 */
void cowmap_nl_close(struct cowmap_nl *nl);

/**
 * cowmap_nl_fd() - the handle's socket, for poll(2)
 * @nl: the handle.
 *
 * Return: the fd, or -EINVAL.
 */
int cowmap_nl_fd(const struct cowmap_nl *nl);

/**
 * cowmap_nl_family_version() - the family version the module registered
 * @nl: the handle.
 *
 * Return: COWMAP_GENL_VERSION of the module (>= 1), or 0 if @nl is NULL.
 */
uint32_t cowmap_nl_family_version(const struct cowmap_nl *nl);

/**
 * cowmap_nl_get_config() - COWMAP_CMD_GET_CONFIG
 * @nl: the handle.
 * @cfg: (out) the configuration.
 *
 * Return: 0 or -errno.
 */
int cowmap_nl_get_config(struct cowmap_nl *nl, struct cowmap_nl_config *cfg);

/**
 * cowmap_nl_set_config() - COWMAP_CMD_SET_CONFIG (CAP_NET_ADMIN)
 * @nl: the handle.
 * @cfg: the values to set; @cfg->present says which (COWMAP_CONFIG_A_*
 *	bits), at least one.
 *
 * Return: 0; -EPERM without CAP_NET_ADMIN; -EINVAL (nothing to set,
 * unknown bits, non-zero reserved fields); -errno.
 */
int cowmap_nl_set_config(struct cowmap_nl *nl, const struct cowmap_nl_config *cfg);

/**
 * cowmap_nl_get_stats() - COWMAP_CMD_GET_STATS
 * @nl: the handle.
 * @st: (out) the statistics.
 *
 * Return: 0 or -errno.
 */
int cowmap_nl_get_stats(struct cowmap_nl *nl, struct cowmap_nl_stats *st);

/**
 * cowmap_nl_list_sessions() - dump the sessions the caller may see
 * @nl: the handle.
 * @listp: (out) an array of sessions in id order, or NULL if there are
 *	none; release it with free(3).
 * @np: (out) its length.
 *
 * Other users' sessions only for CAP_SYS_ADMIN; the list is a consistent
 * snapshot.
 *
 * Return: 0; -EAGAIN if the set kept changing over many attempts; -errno.
 */
int cowmap_nl_list_sessions(struct cowmap_nl *nl, struct cowmap_nl_session **listp,
			    size_t *np);

/**
 * cowmap_nl_get_session() - COWMAP_CMD_GET_SESSION of one session
 * @nl: the handle.
 * @id: the session id.
 * @s: (out) the session.
 *
 * Return: 0; -ENOENT (no such session); -EPERM (another user's, without
 * CAP_SYS_ADMIN); -errno.
 */
int cowmap_nl_get_session(struct cowmap_nl *nl, uint64_t id,
			  struct cowmap_nl_session *s);

/**
 * cowmap_nl_discard() - COWMAP_CMD_DISCARD: drop a session's private pages
 * @nl: the handle.
 * @id: the session id.
 *
 * Changes not drained are lost; the session's mappings show the file.
 *
 * Return: 0; -ENOENT; -EPERM (not the owner, without CAP_SYS_ADMIN); -errno.
 */
int cowmap_nl_discard(struct cowmap_nl *nl, uint64_t id);

/**
 * cowmap_nl_drain() - COWMAP_CMD_DRAIN: append a session's changes to a log
 * @nl: the handle.
 * @id: the session id.
 * @log_fd: a regular file open for writing in the calling process (empty:
 *	the kernel writes the log header first), or -1 for the log the
 *	session was bound with.
 *
 * Return: 0; -ENOENT; -EPERM; -EBADFD (no log bound and @log_fd is -1);
 * -ENOTEMPTY, -EINVAL, -EBADF (@log_fd unusable); -errno of the write.
 */
int cowmap_nl_drain(struct cowmap_nl *nl, uint64_t id, int log_fd);

/**
 * cowmap_nl_subscribe() - receive the "events" multicast group
 * @nl: the handle; for notifications only from now on (a request on it
 *	drops the notifications that arrive meanwhile).
 *
 * Return: 0; -ENOENT if the module has no such group; -errno of
 * setsockopt(2).
 */
int cowmap_nl_subscribe(struct cowmap_nl *nl);

/**
 * cowmap_nl_next_event() - wait for the next notification
 * @nl: a subscribed handle.
 * @ev: (out) the notification.
 * @timeout_ms: milliseconds to wait, -1 for ever, 0 to poll.
 *
 * Return: 1 with @ev filled in; 0 on timeout; -ENOBUFS if notifications
 * were lost because the socket's buffer overflowed (reading may go on);
 * -EINTR if a signal arrived; -EPROTO if the kernel sent a malformed
 * message; -errno.
 */
int cowmap_nl_next_event(struct cowmap_nl *nl, struct cowmap_nl_event *ev,
			 int timeout_ms);

/**
 * cowmap_nl_cmd_name() - name of a cowmap netlink command
 * @cmd: enum cowmap_cmd.
 *
 * Return: a static lowercase name ("session-new", "cap-reached", ...), or
 * "unknown".
 */
const char *cowmap_nl_cmd_name(uint32_t cmd);

#ifdef __cplusplus
}
#endif

#endif /* COWMAP_H */
