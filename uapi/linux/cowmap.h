/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * cowmap: private copy-on-write views of a shared memory-mapped file.
 *
 * This header is the whole contract between the cowmap kernel module and
 * userspace: the /dev/cowmap ioctls, the event records read(2) returns, the
 * log file format (written by both the kernel and libcowmap) and the generic
 * netlink family "cowmap".
 *
 * Conventions
 * - Every structure has fixed-size, naturally aligned fields and explicit
 *   padding.  Fields named reserved* must be zero on input (-EINVAL
 *   otherwise) and are zero on output.
 * - ioctl structures grow only at their end.  The kernel takes the caller's
 *   structure size from the ioctl number (_IOC_SIZE): a shorter (older)
 *   structure is zero-extended, a longer (newer) one is accepted only if the
 *   bytes the kernel does not know are zero (-E2BIG otherwise).  Output is
 *   truncated to the caller's size; the bytes of a longer one past the
 *   kernel's structure are set to zero (the output-only VERSION and INFO
 *   included).
 * - -EFAULT means nothing was done: the structure is read and written back
 *   before BIND, DRAIN or DISCARD acts.  If another thread unmaps it while
 *   the action runs, the ioctl still returns 0 (the action happened) and
 *   its results are lost; COWMAP_IOC_INFO tells the id and the counters.
 * - Unknown flag bits are refused with -EINVAL.
 * - All offsets and lengths are in bytes; times are CLOCK_REALTIME in
 *   nanoseconds.
 * - The log format is little-endian on every architecture.
 */
#ifndef _UAPI_LINUX_COWMAP_H
#define _UAPI_LINUX_COWMAP_H

#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/const.h>

#define COWMAP_DEVICE_NAME	"cowmap"
#define COWMAP_DEVICE_PATH	"/dev/cowmap"

/* Version of this interface.  The ABI number changes only incompatibly. */
#define COWMAP_VERSION_MAJOR	1
#define COWMAP_VERSION_MINOR	0
#define COWMAP_VERSION_PATCH	0
#define COWMAP_ABI_VERSION	1

/* ------------------------------------------------------------------------
 * Session ioctls on an open file of /dev/cowmap
 *
 * One open of /dev/cowmap is one session.  A session is bound once to a
 * backing file (COWMAP_IOC_BIND), then mmap(2)ed with MAP_SHARED at
 * offset = file offset.  Every mapping of the session, in any process that
 * holds the file (fork, SCM_RIGHTS), shares one set of private pages.
 * ------------------------------------------------------------------------
 */
#define COWMAP_IOC_MAGIC	0xC7

/* Features reported by COWMAP_IOC_VERSION. */
#define COWMAP_FEAT_LOG_FD	_BITULL(0)	/* bind with a log fd, final drain */
#define COWMAP_FEAT_DIFF	_BITULL(1)	/* COWMAP_IOC_DIFF */
#define COWMAP_FEAT_DISCARD	_BITULL(2)	/* COWMAP_IOC_DISCARD */
#define COWMAP_FEAT_NETLINK	_BITULL(3)	/* generic netlink family */

/**
 * struct cowmap_version - COWMAP_IOC_VERSION (out)
 * @major, @minor, @patch: module version (COWMAP_VERSION_*).
 * @abi: COWMAP_ABI_VERSION the module implements.
 * @features: COWMAP_FEAT_* bits.
 * @page_size: the kernel's PAGE_SIZE; offsets must be multiples of it.
 * @reserved: zero.
 *
 * Works on bound and unbound sessions.  Errors: -EFAULT.
 */
struct cowmap_version {
	__u32 major;
	__u32 minor;
	__u32 patch;
	__u32 abi;
	__u64 features;
	__u32 page_size;
	__u32 reserved[3];
};

/* Bind flags. */
#define COWMAP_BIND_LOG		_BITUL(0)	/* @log_fd is valid */
#define COWMAP_BIND_FLAGS	(COWMAP_BIND_LOG)

#define COWMAP_RING_DEFAULT	1024	/* events */
#define COWMAP_RING_MIN		16
#define COWMAP_RING_MAX		1048576U

/**
 * struct cowmap_bind - COWMAP_IOC_BIND (in/out)
 * @fd: (in) the backing file: a regular file open for reading, on a
 *	filesystem whose read path is plain page cache (ext4, XFS, btrfs).
 * @log_fd: (in) with COWMAP_BIND_LOG: an empty regular file open for
 *	writing.  The kernel writes the log header to it at once, appends
 *	records on COWMAP_IOC_DRAIN, and appends every change not yet drained
 *	when the session's last user goes away (exit, crash, SIGKILL).
 * @flags: (in) COWMAP_BIND_*.
 * @ring_size: (in) event ring capacity in events; 0 selects
 *	COWMAP_RING_DEFAULT; otherwise a power of two in
 *	[COWMAP_RING_MIN, COWMAP_RING_MAX].
 * @id: (out) the session id, unique until reboot, never 0.
 * @size: (out) the backing file's size at bind.
 * @reserved: zero.
 *
 * Errors:
 * -EBADF	@fd (or @log_fd with COWMAP_BIND_LOG) is not an open file.
 * -EISDIR	@fd is a directory.
 * -EINVAL	@fd is not a regular file; unknown @flags; bad @ring_size;
 *		non-zero reserved; @log_fd is the backing file, not a regular
 *		file or not writable.
 * -EACCES	@fd is not open for reading.
 * -EOPNOTSUPP	the filesystem is not supported (tmpfs/shmem, hugetlbfs,
 *		DAX, network and FUSE filesystems, ...).
 * -ENOTEMPTY	@log_fd is not empty, or another BIND or DRAIN_FD is writing
 *		a log header to the same file at this moment (one file, one
 *		header: exactly one of them succeeds).
 * -EBUSY	the session is already bound.
 * -EFAULT, -ENOMEM.
 */
struct cowmap_bind {
	__s32 fd;
	__s32 log_fd;
	__u32 flags;
	__u32 ring_size;
	__u64 id;
	__u64 size;
	__u64 reserved[2];
};

/**
 * struct cowmap_info - COWMAP_IOC_INFO (out)
 * @id: session id.
 * @dev, @ino: the backing file's st_dev (as stat(2) encodes it) and st_ino.
 * @size: the backing file's size at bind.
 * @cur_size: its size now.
 * @private_pages: pages this session has copied.
 * @undrained_pages: private pages with changes not yet drained.
 * @cow_faults: copies made since bind (discards make room for more).
 * @events: events produced since bind.
 * @events_lost: events overwritten before they were read.
 * @mapped_bytes: bytes currently mapped through this session.
 * @bind_time_ns: CLOCK_REALTIME at bind.
 * @owner_uid: uid of the session's creator.
 * @ring_size: event ring capacity.
 * @flags: the bind flags.
 * @reserved: zero.
 *
 * Errors: -ENODEV (session not bound), -EFAULT.
 */
struct cowmap_info {
	__u64 id;
	__u64 dev;
	__u64 ino;
	__u64 size;
	__u64 cur_size;
	__u64 private_pages;
	__u64 undrained_pages;
	__u64 cow_faults;
	__u64 events;
	__u64 events_lost;
	__u64 mapped_bytes;
	__u64 bind_time_ns;
	__u32 owner_uid;
	__u32 ring_size;
	__u32 flags;
	__u32 reserved[5];
};

/* Diff flags. */
#define COWMAP_DIFF_FLAGS	0

/**
 * struct cowmap_diff - COWMAP_IOC_DIFF (in/out): read changes, drain nothing
 * @offset: (in) file offset to start at, a multiple of the page size;
 *	(out) where to continue, or COWMAP_DIFF_END when every private page
 *	was visited.
 * @end: (in) file offset to stop before (0 means the end of the file's
 *	offset space).
 * @buf: (in) user address of a buffer.
 * @buf_len: (in) its size; at least COWMAP_DIFF_MIN_BUF.
 * @used: (out) bytes written to @buf: whole log records
 *	(struct cowmap_log_record and payload), in ascending offset order.
 * @records: (out) number of records in @buf.
 * @flags: (in) COWMAP_DIFF_*; none defined yet.
 * @reserved: zero.
 *
 * Each private page is compared with its base snapshot (the page as it
 * was when copied, or as it was last drained).  The page is frozen while
 * it is read, so a store to it cannot be seen half-done.  Records never
 * span pages; nearby changed runs are coalesced into one record, whose
 * unchanged bytes have equal old and new values.  Pages without changes
 * give no record.  The ioctl stops before a page whose records would not
 * fit and reports where to continue.
 *
 * Errors: -ENODEV (not bound), -EINVAL (bad offset, flags, reserved or
 * buffer too small), -EFAULT, -ENOMEM.
 */
struct cowmap_diff {
	__u64 offset;
	__u64 end;
	__u64 buf;
	__u64 buf_len;
	__u64 used;
	__u32 records;
	__u32 flags;
	__u64 reserved[2];
};

#define COWMAP_DIFF_END		(~0ULL)
/* Enough for the records of any one page with a 64 KiB page size. */
#define COWMAP_DIFF_MIN_BUF	(3U * 65536U)

/* Drain flags. */
#define COWMAP_DRAIN_FD		_BITUL(0)	/* use @log_fd, not the bound log */
#define COWMAP_DRAIN_FLAGS	(COWMAP_DRAIN_FD)

/**
 * struct cowmap_drain - COWMAP_IOC_DRAIN (in/out): move changes to a log
 * @log_fd: (in) with COWMAP_DRAIN_FD: an empty regular file open for
 *	writing, on ext4, XFS, btrfs or tmpfs; the log header is written
 *	first.  Otherwise the log bound with COWMAP_BIND_LOG is used.
 * @flags: (in) COWMAP_DRAIN_*.
 * @records: (out) records appended.
 * @pages: (out) pages whose changes were appended.
 * @bytes: (out) bytes appended to the log.
 * @reserved: zero.
 *
 * Appends the changes made since the last drain of every private page to
 * the log, page by page in ascending offset order, and makes each page's
 * current contents its new base snapshot once its records are written.  A
 * page whose records could not be written keeps its changes for the next
 * drain, so a failed drain loses nothing.  When a write to the log fails
 * part way, the whole records that reached it count as drained and the
 * rest is cut off again.  If that cut fails too (the file refused the
 * truncate), the log ends in a torn tail, which readers skip; a drain
 * with records for the bound log cuts it first (and fails, appending
 * nothing, while it cannot).  The logs and COWMAP_IOC_DIFF together always
 * say exactly what the session changed.  The private pages stay: the session goes on seeing what it
 * wrote.
 *
 * Errors: -ENODEV (not bound), -EBADFD (no log bound and no
 * COWMAP_DRAIN_FD), -EBADF, -EINVAL (log fd unusable, flags, reserved),
 * -ENOTEMPTY (COWMAP_DRAIN_FD: the file is not empty, or another BIND or
 * DRAIN_FD is writing its header at this moment: exactly one succeeds),
 * -EOPNOTSUPP (log on another filesystem), -EINTR (fatal signal; the
 * pages not yet drained keep their changes), errors of the write itself
 * (-ENOSPC, -EIO, ...), -EFAULT, -ENOMEM.
 */
struct cowmap_drain {
	__s32 log_fd;
	__u32 flags;
	__u64 records;
	__u64 pages;
	__u64 bytes;
	__u64 reserved[2];
};

/* Range flags. */
#define COWMAP_RANGE_ALL	_BITUL(0)	/* ignore @offset and @length */
#define COWMAP_RANGE_FLAGS	(COWMAP_RANGE_ALL)

/**
 * struct cowmap_range - COWMAP_IOC_DISCARD (in/out)
 * @offset: (in) first byte, a multiple of the page size.
 * @length: (in) bytes, a multiple of the page size, not 0.
 * @flags: (in) COWMAP_RANGE_*.
 * @reserved0: zero.
 * @pages: (out) private pages dropped.
 * @reserved: zero.
 *
 * Drops the private pages in the range (changes not drained are lost) and
 * their base snapshots; the session's mappings show the backing file there
 * again.  Pages being copied while the discard runs may survive it.
 *
 * Errors: -ENODEV (not bound), -EINVAL (alignment, zero length, overflow,
 * flags, reserved), -EFAULT.
 */
struct cowmap_range {
	__u64 offset;
	__u64 length;
	__u32 flags;
	__u32 reserved0;
	__u64 pages;
	__u64 reserved[2];
};

#define COWMAP_IOC_VERSION	_IOR(COWMAP_IOC_MAGIC, 0x00, struct cowmap_version)
#define COWMAP_IOC_BIND		_IOWR(COWMAP_IOC_MAGIC, 0x01, struct cowmap_bind)
#define COWMAP_IOC_INFO		_IOR(COWMAP_IOC_MAGIC, 0x02, struct cowmap_info)
#define COWMAP_IOC_DIFF		_IOWR(COWMAP_IOC_MAGIC, 0x03, struct cowmap_diff)
#define COWMAP_IOC_DRAIN	_IOWR(COWMAP_IOC_MAGIC, 0x04, struct cowmap_drain)
#define COWMAP_IOC_DISCARD	_IOWR(COWMAP_IOC_MAGIC, 0x05, struct cowmap_range)

/* ------------------------------------------------------------------------
 * Events: read(2) on the session fd
 *
 * read(2) returns whole struct cowmap_event records (a buffer smaller than
 * one record gets -EINVAL).  It blocks while the ring is empty unless the
 * file is O_NONBLOCK (-EAGAIN); poll(2) reports EPOLLIN when events are
 * ready.  The ring never blocks a fault: when it is full the oldest unread
 * event is overwritten, and the next read(2) starts with one
 * COWMAP_EVENT_LOST record whose @count says how many were lost.  Events
 * are notifications; the private pages are the authoritative record of
 * what changed, so a lost event loses no data.
 * ------------------------------------------------------------------------
 */
enum cowmap_event_type {
	COWMAP_EVENT_COW = 1,		/* first write to a page: copied */
	COWMAP_EVENT_LOST = 2,		/* @count events were overwritten */
	COWMAP_EVENT_CAP = 3,		/* a write hit a cap: SIGBUS */
};

/**
 * struct cowmap_event - one record read(2) returns
 * @seq: sequence number, from 1, counting every event produced.
 * @offset: file offset of the page (COW, CAP).
 * @time_ns: CLOCK_REALTIME.
 * @tgid, @tid: the faulting process and thread (COW, CAP).
 * @type: enum cowmap_event_type.
 * @count: events lost (LOST); otherwise 0.
 */
struct cowmap_event {
	__u64 seq;
	__u64 offset;
	__u64 time_ns;
	__u32 tgid;
	__u32 tid;
	__u32 type;
	__u32 count;
};

/* ------------------------------------------------------------------------
 * Log files
 *
 * A log is one struct cowmap_log_header (followed by the backing file's
 * path, NUL-padded to a multiple of 8 bytes) and then records.  Each
 * record is a struct cowmap_log_record followed by @length old bytes and
 * @length new bytes, zero-padded to a multiple of 8 bytes.  All integers
 * are little-endian.  CRCs are CRC32C (Castagnoli, the iSCSI/ext4 one:
 * initial value ~0, final xor ~0) over the whole header or record,
 * padding included, with the crc field taken as zero.
 *
 * Records are in the order they were drained; within one drain, in
 * ascending offset order.  Applying them in order reproduces the
 * session's view.  A byte whose old and new values are equal is not a
 * change (coalesced records carry such bytes).
 *
 * A reader treats a record that runs past the end of the file, or a last
 * record that fails its CRC, as a torn tail (an interrupted append):
 * records before it stay valid.  libcowmap tells the kinds apart (a record
 * cut short, zero bytes where blocks were not written, a whole last record
 * with a wrong CRC: damage, which its users report).  Any other damage
 * makes the log invalid.
 * ------------------------------------------------------------------------
 */
#define COWMAP_LOG_MAGIC	"COWMAPLG"	/* 8 bytes, no NUL */
#define COWMAP_LOG_VERSION	1
#define COWMAP_LOG_REC_MAGIC	0x52504d43U	/* "CMPR" read as LE bytes */
#define COWMAP_LOG_PATH_MAX	4096
#define COWMAP_LOG_REC_MAX	0x40000000U	/* max @length of one record */

/**
 * struct cowmap_log_header - first bytes of a log (96 bytes + path)
 * @magic: COWMAP_LOG_MAGIC.
 * @version: COWMAP_LOG_VERSION.
 * @header_len: bytes of header including the padded path; multiple of 8.
 * @dev, @ino: the backing file's st_dev and st_ino.
 * @size: the backing file's size when the session was bound.
 * @session_id: the session's id (0 for logs written without a session).
 * @bind_time_ns: CLOCK_REALTIME when the session was bound.
 * @pid: the process that bound the session.
 * @uid: its uid.
 * @comm: its command name, NUL-padded.
 * @path_len: bytes of the path that follows (no NUL), < COWMAP_LOG_PATH_MAX.
 * @flags: zero for now.
 * @reserved: zero.
 * @crc: CRC32C of the @header_len bytes with @crc zero.
 */
struct cowmap_log_header {
	__u8 magic[8];
	__le32 version;
	__le32 header_len;
	__le64 dev;
	__le64 ino;
	__le64 size;
	__le64 session_id;
	__le64 bind_time_ns;
	__le32 pid;
	__le32 uid;
	__u8 comm[16];
	__le32 path_len;
	__le32 flags;
	__le32 reserved;
	__le32 crc;
};

/**
 * struct cowmap_log_record - one change (32 bytes + payload)
 * @magic: COWMAP_LOG_REC_MAGIC.
 * @crc: CRC32C of the record and its padded payload with @crc zero.
 * @offset: file offset of the first byte.
 * @length: bytes in the range, 1..COWMAP_LOG_REC_MAX.
 * @flags: zero for now.
 * @seq: record number in this log, from 0, without gaps.
 */
struct cowmap_log_record {
	__le32 magic;
	__le32 crc;
	__le64 offset;
	__le32 length;
	__le32 flags;
	__le64 seq;
};

/* Bytes a record with @len bytes of range takes in a log. */
#define COWMAP_LOG_REC_SIZE(len) \
	(sizeof(struct cowmap_log_record) + ((2 * (__u64)(len) + 7) & ~7ULL))

/* ------------------------------------------------------------------------
 * Generic netlink family "cowmap"
 *
 * Commands take and give attributes of enum cowmap_attr; every command has
 * its own strict policy (unknown attributes are refused, reserved bits
 * too) and every refusal carries an extack message.  Attribute and
 * command numbers start at 1 and are only ever appended to.
 *
 * COWMAP_CMD_GET_CONFIG	(do) -> CONFIG nest.
 * COWMAP_CMD_SET_CONFIG	(do, CAP_SYS_ADMIN) CONFIG nest in; only the
 *				attributes given change.
 * COWMAP_CMD_GET_STATS		(do) -> STATS nest.
 * COWMAP_CMD_GET_SESSION	(dump) -> one SESSION nest per message;
 *				other users' sessions only for CAP_SYS_ADMIN;
 *				NLM_F_DUMP_INTR when the set changed mid-dump.
 *				(do) with COWMAP_A_SESSION_ID -> that session.
 * COWMAP_CMD_DISCARD		(do) COWMAP_A_SESSION_ID: drop all private
 *				pages (owner or CAP_SYS_ADMIN).
 * COWMAP_CMD_DRAIN		(do) COWMAP_A_SESSION_ID, COWMAP_A_LOG_FD
 *				(a file open for writing in the caller):
 *				drain into it (owner or CAP_SYS_ADMIN).
 * Notifications (group COWMAP_MCGRP_EVENTS; joining needs CAP_SYS_ADMIN):
 *	COWMAP_CMD_SESSION_NEW and COWMAP_CMD_SESSION_DEL carry a SESSION
 *	nest with only COWMAP_SESSION_A_ID and COWMAP_SESSION_A_UID (the
 *	owner); COWMAP_CMD_CAP_REACHED and COWMAP_CMD_RING_OVERFLOW carry
 *	COWMAP_A_SESSION_ID, COWMAP_A_OFFSET and the same SESSION nest.
 *	Details come from COWMAP_CMD_GET_SESSION, which applies the
 *	permission rules above.
 * ------------------------------------------------------------------------
 */
#define COWMAP_GENL_NAME	"cowmap"
#define COWMAP_GENL_VERSION	1
#define COWMAP_MCGRP_EVENTS	"events"

enum cowmap_cmd {
	COWMAP_CMD_UNSPEC,
	COWMAP_CMD_GET_CONFIG,
	COWMAP_CMD_SET_CONFIG,
	COWMAP_CMD_GET_STATS,
	COWMAP_CMD_GET_SESSION,
	COWMAP_CMD_DISCARD,
	COWMAP_CMD_DRAIN,
	COWMAP_CMD_SESSION_NEW,
	COWMAP_CMD_SESSION_DEL,
	COWMAP_CMD_CAP_REACHED,
	COWMAP_CMD_RING_OVERFLOW,

	__COWMAP_CMD_MAX
};

#define COWMAP_CMD_MAX (__COWMAP_CMD_MAX - 1)

/* Top-level attributes. */
enum cowmap_attr {
	COWMAP_A_UNSPEC,
	COWMAP_A_CONFIG,	/* nest of enum cowmap_config_attr */
	COWMAP_A_STATS,		/* nest of enum cowmap_stats_attr */
	COWMAP_A_SESSION,	/* nest of enum cowmap_session_attr */
	COWMAP_A_SESSION_ID,	/* u64 */
	COWMAP_A_LOG_FD,	/* u32: fd in the sender */
	COWMAP_A_OFFSET,	/* u64: file offset (notifications) */
	COWMAP_A_PAD,

	__COWMAP_A_MAX
};

#define COWMAP_A_MAX (__COWMAP_A_MAX - 1)

enum cowmap_config_attr {
	COWMAP_CONFIG_A_UNSPEC,
	COWMAP_CONFIG_A_MAX_SESSION_PAGES,	/* u64: per-session cap, 0 = none */
	COWMAP_CONFIG_A_MAX_TOTAL_PAGES,	/* u64: global cap, 0 = none */
	COWMAP_CONFIG_A_PAD,

	__COWMAP_CONFIG_A_MAX
};

#define COWMAP_CONFIG_A_MAX (__COWMAP_CONFIG_A_MAX - 1)

enum cowmap_stats_attr {
	COWMAP_STATS_A_UNSPEC,
	COWMAP_STATS_A_SESSIONS,	/* u64: sessions open */
	COWMAP_STATS_A_PRIVATE_PAGES,	/* u64: private pages now */
	COWMAP_STATS_A_COW_FAULTS,	/* u64: copies made */
	COWMAP_STATS_A_READ_FAULTS,	/* u64: read faults served */
	COWMAP_STATS_A_EVENTS_LOST,	/* u64 */
	COWMAP_STATS_A_CAP_HITS,	/* u64: writes refused by a cap */
	COWMAP_STATS_A_DRAINED_BYTES,	/* u64: log bytes written by drains */
	COWMAP_STATS_A_PAD,

	__COWMAP_STATS_A_MAX
};

#define COWMAP_STATS_A_MAX (__COWMAP_STATS_A_MAX - 1)

enum cowmap_session_attr {
	COWMAP_SESSION_A_UNSPEC,
	COWMAP_SESSION_A_ID,		/* u64 */
	COWMAP_SESSION_A_PID,		/* u32: creator */
	COWMAP_SESSION_A_UID,		/* u32: owner */
	COWMAP_SESSION_A_COMM,		/* string */
	COWMAP_SESSION_A_DEV,		/* u64: backing st_dev */
	COWMAP_SESSION_A_INO,		/* u64: backing st_ino */
	COWMAP_SESSION_A_PATH,		/* string: backing path */
	COWMAP_SESSION_A_MAPPED_BYTES,	/* u64 */
	COWMAP_SESSION_A_PRIVATE_PAGES,	/* u64 */
	COWMAP_SESSION_A_EVENTS,	/* u64 */
	COWMAP_SESSION_A_EVENTS_LOST,	/* u64 */
	COWMAP_SESSION_A_BIND_TIME,	/* u64: ns, CLOCK_REALTIME */
	COWMAP_SESSION_A_PAD,

	__COWMAP_SESSION_A_MAX
};

#define COWMAP_SESSION_A_MAX (__COWMAP_SESSION_A_MAX - 1)

#endif /* _UAPI_LINUX_COWMAP_H */
