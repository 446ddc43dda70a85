// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Log files (format: <linux/cowmap.h>): the validating reader and the
 * writer.
 *
 * The reader maps the log read-only and validates it in one sequential
 * pass, so records can be handed out as pointers into the mapping and a
 * large log is never copied into memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Byte offsets inside the on-disk structures. */
#define H_MAGIC		offsetof(struct cowmap_log_header, magic)
#define H_VERSION	offsetof(struct cowmap_log_header, version)
#define H_HEADER_LEN	offsetof(struct cowmap_log_header, header_len)
#define H_DEV		offsetof(struct cowmap_log_header, dev)
#define H_INO		offsetof(struct cowmap_log_header, ino)
#define H_SIZE		offsetof(struct cowmap_log_header, size)
#define H_SESSION_ID	offsetof(struct cowmap_log_header, session_id)
#define H_BIND_TIME	offsetof(struct cowmap_log_header, bind_time_ns)
#define H_PID		offsetof(struct cowmap_log_header, pid)
#define H_UID		offsetof(struct cowmap_log_header, uid)
#define H_COMM		offsetof(struct cowmap_log_header, comm)
#define H_PATH_LEN	offsetof(struct cowmap_log_header, path_len)
#define H_FLAGS		offsetof(struct cowmap_log_header, flags)
#define H_RESERVED	offsetof(struct cowmap_log_header, reserved)
#define H_CRC		offsetof(struct cowmap_log_header, crc)

#define R_MAGIC		offsetof(struct cowmap_log_record, magic)
#define R_CRC		offsetof(struct cowmap_log_record, crc)
#define R_OFFSET	offsetof(struct cowmap_log_record, offset)
#define R_LENGTH	offsetof(struct cowmap_log_record, length)
#define R_FLAGS		offsetof(struct cowmap_log_record, flags)
#define R_SEQ		offsetof(struct cowmap_log_record, seq)

_Static_assert(sizeof(struct cowmap_log_header) == 96, "log header is 96 bytes");
_Static_assert(sizeof(struct cowmap_log_record) == 32, "log record is 32 bytes");
_Static_assert(H_CRC == 92 && R_SEQ == 24, "on-disk layout");

static const uint8_t zero8[8];

uint32_t log_hdr_crc(const uint8_t *hdr, uint32_t len)
{
	return crc32c_skip4(hdr, len, H_CRC);
}

uint32_t log_rec_crc(const uint8_t *rec, uint64_t total)
{
	return crc32c_skip4(rec, total, R_CRC);
}

/* ------------------------------------------------------------------------
 * Reader
 */

#define BAD(log, off, fmt, ...)						\
	err_set(COWMAP_EBADLOG, "%s: byte %llu: " fmt, (log)->name,	\
		(unsigned long long)(off), ##__VA_ARGS__)

static int validate_header(struct cowmap_log *log)
{
	const uint8_t *m = log->map;
	uint64_t size = log->map_len;
	uint32_t version, hlen, path_len, crc, want;

	if (size == 0)
		return BAD(log, 0, "empty file, no log header");
	if (memcmp(m, COWMAP_LOG_MAGIC, MIN(size, 8)) != 0)
		return BAD(log, 0, "not a cowmap log (bad magic)");
	if (size < LOG_HDR_SIZE)
		return BAD(log, size, "file ends inside the log header (%llu of %u bytes)",
			   (unsigned long long)size, LOG_HDR_SIZE);
	version = get_le32(m + H_VERSION);
	if (version != COWMAP_LOG_VERSION)
		return BAD(log, H_VERSION, "unsupported log version %u (expected %u)",
			   version, COWMAP_LOG_VERSION);
	path_len = get_le32(m + H_PATH_LEN);
	if (path_len >= COWMAP_LOG_PATH_MAX)
		return BAD(log, H_PATH_LEN, "path length %u out of range (< %u)",
			   path_len, COWMAP_LOG_PATH_MAX);
	hlen = get_le32(m + H_HEADER_LEN);
	if (hlen != LOG_HDR_SIZE + ALIGN8(path_len))
		return BAD(log, H_HEADER_LEN, "header length %u, expected %u for a %u-byte path",
			   hlen, (unsigned)(LOG_HDR_SIZE + ALIGN8(path_len)), path_len);
	if (hlen > size)
		return BAD(log, size, "file ends inside the log header (%llu of %u bytes)",
			   (unsigned long long)size, hlen);
	crc = get_le32(m + H_CRC);
	want = log_hdr_crc(m, hlen);
	if (crc != want)
		return BAD(log, H_CRC, "header CRC mismatch (stored 0x%08x, computed 0x%08x)",
			   crc, want);
	if (get_le32(m + H_FLAGS))
		return BAD(log, H_FLAGS, "unknown header flags 0x%x", get_le32(m + H_FLAGS));
	if (get_le32(m + H_RESERVED))
		return BAD(log, H_RESERVED, "reserved header field is 0x%x, not 0",
			   get_le32(m + H_RESERVED));
	if (memchr(m + LOG_HDR_SIZE, 0, path_len))
		return BAD(log, LOG_HDR_SIZE + (uint64_t)((const uint8_t *)memchr(m + LOG_HDR_SIZE, 0, path_len) - (m + LOG_HDR_SIZE)),
			   "NUL byte inside the path");
	if (!mem_is_zero(m + LOG_HDR_SIZE + path_len, hlen - LOG_HDR_SIZE - path_len))
		return BAD(log, LOG_HDR_SIZE + path_len, "path padding is not zero");

	log->info.version = version;
	log->info.header_len = hlen;
	log->info.dev = get_le64(m + H_DEV);
	log->info.ino = get_le64(m + H_INO);
	log->info.size = get_le64(m + H_SIZE);
	log->info.session_id = get_le64(m + H_SESSION_ID);
	log->info.bind_time_ns = get_le64(m + H_BIND_TIME);
	log->info.pid = get_le32(m + H_PID);
	log->info.uid = get_le32(m + H_UID);
	memcpy(log->info.comm, m + H_COMM, 16);
	log->info.comm[16] = 0;
	memcpy(log->info.path, m + LOG_HDR_SIZE, path_len);
	log->info.path[path_len] = 0;
	return 0;
}

static void set_torn(struct cowmap_log *log, uint64_t off, uint64_t seq,
		     uint32_t kind, const char *why)
{
	log->info.torn = 1;
	log->info.torn_kind = kind;
	log->info.torn_offset = off;
	err_set(0, "%s: torn tail at byte %llu (record %llu: %s); %llu byte%s ignored, "
		"the %llu record%s before it %s valid", log->name, (unsigned long long)off,
		(unsigned long long)seq, why, (unsigned long long)(log->map_len - off),
		log->map_len - off == 1 ? "" : "s", (unsigned long long)seq,
		seq == 1 ? "" : "s", seq == 1 ? "is" : "are");
}

/*
 * A record that runs past the end of the file is a torn tail only if it
 * is the last one.  If its length field was damaged instead, the record
 * that should follow it is still there: look for a valid record with the
 * next sequence number at any 8-byte boundary after @p.  Real torn
 * appends cannot contain one (it would need a matching CRC32C); the CRC
 * work is bounded so that crafted input stays linear.
 */
static uint64_t next_record_after(const struct cowmap_log *log, uint64_t p, uint64_t seq)
{
	const uint8_t *m = log->map;
	uint64_t size = log->map_len, budget = 64ULL << 20;
	int tries = 64;

	for (uint64_t q = p + 8; q + LOG_REC_SIZE <= size && tries > 0; q += 8) {
		const uint8_t *r = m + q;
		uint32_t len;
		uint64_t total;

		if (get_le32(r + R_MAGIC) != COWMAP_LOG_REC_MAGIC ||
		    get_le64(r + R_SEQ) != seq + 1 || get_le32(r + R_FLAGS))
			continue;
		len = get_le32(r + R_LENGTH);
		if (!len || len > COWMAP_LOG_REC_MAX)
			continue;
		total = COWMAP_LOG_REC_SIZE(len);
		if (total > size - q || total > budget)
			continue;
		tries--;
		budget -= total;
		if (log_rec_crc(r, total) == get_le32(r + R_CRC))
			return q;
	}
	return 0;
}

/*
 * A crash after the file was extended but before all of its last blocks
 * were written leaves zero bytes from a block boundary on.  The last
 * record (at @p, @total bytes, whole in the file, failing its checksum)
 * looks like that if every byte from a 512-byte boundary inside it to the
 * end of the file is zero; otherwise it is damage (COWMAP_LOG_TORN_CRC).
 */
static bool unwritten_blocks(const struct cowmap_log *log, uint64_t p, uint64_t total)
{
	const uint8_t *m = log->map;
	uint64_t end = log->map_len, z = end;

	while (z > p && !m[z - 1])
		z--;			/* m[z..end) is the run of zero bytes */
	z = (z + 511) & ~(uint64_t)511;
	return z > p && z < p + total;
}

static int validate_records(struct cowmap_log *log)
{
	const uint8_t *m = log->map;
	uint64_t size = log->map_len;
	uint64_t p = log->info.header_len, seq = 0;

	if (size > (1 << 20))
		madvise((void *)m, size, MADV_SEQUENTIAL);
	while (p < size) {
		const uint8_t *r = m + p;
		uint64_t rem = size - p, total, off;
		uint32_t magic, len, crc, want, flags;
		uint64_t rseq;

		if (rem < LOG_REC_SIZE) {
			if (mem_is_zero(r, rem))
				set_torn(log, p, seq, COWMAP_LOG_TORN_ZERO, "zero bytes");
			else
				set_torn(log, p, seq, COWMAP_LOG_TORN_SHORT,
					 "record header cut short by the end of the file");
			break;
		}
		magic = get_le32(r + R_MAGIC);
		if (magic != COWMAP_LOG_REC_MAGIC) {
			if (mem_is_zero(r, rem)) {
				set_torn(log, p, seq, COWMAP_LOG_TORN_ZERO, "zero bytes");
				break;
			}
			return BAD(log, p, "record %llu: bad record magic 0x%08x",
				   (unsigned long long)seq, magic);
		}
		len = get_le32(r + R_LENGTH);
		if (len == 0 || len > COWMAP_LOG_REC_MAX)
			return BAD(log, p + R_LENGTH, "record %llu: length %u out of range 1..%u",
				   (unsigned long long)seq, len, COWMAP_LOG_REC_MAX);
		total = COWMAP_LOG_REC_SIZE(len);
		if (total > rem) {
			uint64_t q = next_record_after(log, p, seq);

			if (q)
				return BAD(log, p + R_LENGTH, "record %llu: length %u runs past the "
					   "end of the file, but record %llu follows at byte %llu",
					   (unsigned long long)seq, len, (unsigned long long)seq + 1,
					   (unsigned long long)q);
			set_torn(log, p, seq, COWMAP_LOG_TORN_SHORT,
				 "record cut short by the end of the file");
			break;
		}
		crc = get_le32(r + R_CRC);
		want = log_rec_crc(r, total);
		if (crc != want) {
			if (total == rem || mem_is_zero(r + total, rem - total)) {
				if (unwritten_blocks(log, p, total))
					set_torn(log, p, seq, COWMAP_LOG_TORN_ZERO,
						 "zero bytes from a block boundary inside the "
						 "last record to the end of the file");
				else
					set_torn(log, p, seq, COWMAP_LOG_TORN_CRC,
						 "whole last record fails its checksum");
				break;
			}
			return BAD(log, p, "record %llu: CRC mismatch (stored 0x%08x, computed 0x%08x) "
				   "with %llu bytes after it", (unsigned long long)seq, crc, want,
				   (unsigned long long)(rem - total));
		}
		flags = get_le32(r + R_FLAGS);
		if (flags)
			return BAD(log, p + R_FLAGS, "record %llu: unknown flags 0x%x",
				   (unsigned long long)seq, flags);
		rseq = get_le64(r + R_SEQ);
		if (rseq != seq)
			return BAD(log, p + R_SEQ, "record sequence number %llu, expected %llu",
				   (unsigned long long)rseq, (unsigned long long)seq);
		off = get_le64(r + R_OFFSET);
		if (off > (uint64_t)INT64_MAX - len)
			return BAD(log, p + R_OFFSET, "record %llu: range %llu+%u beyond the largest file offset",
				   (unsigned long long)seq, (unsigned long long)off, len);
		if (!mem_is_zero(r + LOG_REC_SIZE + 2 * (uint64_t)len,
				 total - LOG_REC_SIZE - 2 * (uint64_t)len))
			return BAD(log, p + LOG_REC_SIZE + 2 * (uint64_t)len,
				   "record %llu: padding is not zero", (unsigned long long)seq);
		p += total;
		seq++;
	}
	log->info.records = seq;
	log->info.valid_end = log->info.torn ? log->info.torn_offset : p;
	if (size > (1 << 20))
		madvise((void *)m, size, MADV_NORMAL);
	return 0;
}

static int log_open_common(int fd, const char *name, unsigned int flags,
			   struct cowmap_log **logp)
{
	struct cowmap_log *log;
	struct stat st;
	int ret;

	if (flags)
		return err_set(EINVAL, "%s: unknown log open flags 0x%x", name, flags);
	log = calloc(1, sizeof(*log));
	if (!log)
		return err_set(ENOMEM, "out of memory");
	log->fd = fd;
	log->name = xstrdup(name);
	if (!log->name) {
		ret = -ENOMEM;
		goto err_free;
	}
	if (fstat(fd, &st) < 0) {
		ret = err_set(errno, "%s: %s", name, strerror(errno));
		goto err_free;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = err_set(EINVAL, "%s: not a regular file", name);
		goto err_free;
	}
	log->map_len = (uint64_t)st.st_size;
	log->info.log_size = log->map_len;
	if (log->map_len) {
		ret = read_whole(fd, name, log->map_len, &log->map);
		if (ret)
			goto err_free;
	}
	ret = validate_header(log);
	if (ret)
		goto err_unmap;
	ret = validate_records(log);
	if (ret)
		goto err_unmap;
	log->pos = log->info.header_len;
	*logp = log;
	return 0;

err_unmap:
	if (log->map)
		munmap((void *)log->map, log->map_len);
err_free:
	free(log->name);
	free(log);
	close(fd);
	return ret;
}

COWMAP_EXPORT int cowmap_log_open(const char *path, unsigned int flags,
				  struct cowmap_log **logp)
{
	int fd;

	if (!path || !logp)
		return err_set(EINVAL, "cowmap_log_open: NULL argument");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "%s: %s", path, strerror(errno));
	return log_open_common(fd, path, flags, logp);
}

COWMAP_EXPORT int cowmap_log_open_fd(int fd, const char *name, unsigned int flags,
				     struct cowmap_log **logp)
{
	int dfd;

	if (!logp || fd < 0)
		return err_set(EINVAL, "cowmap_log_open_fd: bad argument");
	if (!name)
		name = "(log)";
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return err_set(errno, "%s: %s", name, strerror(errno));
	return log_open_common(dfd, name, flags, logp);
}

COWMAP_EXPORT int cowmap_log_info(const struct cowmap_log *log,
				  struct cowmap_log_info *info)
{
	if (!log || !info)
		return err_set(EINVAL, "cowmap_log_info: NULL argument");
	*info = log->info;
	return 0;
}

COWMAP_EXPORT int cowmap_log_next(struct cowmap_log *log, struct cowmap_log_rec *rec)
{
	const uint8_t *r;
	uint32_t len;

	if (!log || !rec)
		return err_set(EINVAL, "cowmap_log_next: NULL argument");
	if (log->pos >= log->info.valid_end)
		return 0;
	/* Validated at open; re-check the bounds in case the file changed. */
	if (log->info.valid_end - log->pos < LOG_REC_SIZE)
		return BAD(log, log->pos, "log changed while open");
	r = log->map + log->pos;
	len = get_le32(r + R_LENGTH);
	if (get_le32(r + R_MAGIC) != COWMAP_LOG_REC_MAGIC || !len ||
	    len > COWMAP_LOG_REC_MAX ||
	    COWMAP_LOG_REC_SIZE(len) > log->info.valid_end - log->pos)
		return BAD(log, log->pos, "log changed while open");
	rec->seq = get_le64(r + R_SEQ);
	rec->offset = get_le64(r + R_OFFSET);
	rec->length = len;
	rec->flags = get_le32(r + R_FLAGS);
	rec->log_offset = log->pos;
	rec->old_data = r + LOG_REC_SIZE;
	rec->new_data = r + LOG_REC_SIZE + len;
	log->pos += COWMAP_LOG_REC_SIZE(len);
	return 1;
}

COWMAP_EXPORT int cowmap_log_rewind(struct cowmap_log *log)
{
	if (!log)
		return err_set(EINVAL, "cowmap_log_rewind: NULL argument");
	log->pos = log->info.header_len;
	return 0;
}

COWMAP_EXPORT void cowmap_log_close(struct cowmap_log *log)
{
	if (!log)
		return;
	if (log->map)
		munmap((void *)log->map, log->map_len);
	close(log->fd);
	free(log->name);
	free(log);
}

/* ------------------------------------------------------------------------
 * Writer
 */

#define WBUF_SIZE	(1U << 20)

struct cowmap_log_writer {
	int fd;
	bool failed;
	uint64_t seq;
	uint64_t end;		/* file size: header + whole records written */
	uint8_t *buf;
	size_t buf_used, buf_cap;
	char *name;
};

COWMAP_EXPORT int cowmap_log_info_init(struct cowmap_log_info *info, int fd,
				       const char *path)
{
	char *abs = NULL;
	struct stat st;
	struct timespec ts;
	char comm[17] = "";

	if (!info || !path)
		return err_set(EINVAL, "cowmap_log_info_init: NULL argument");
	memset(info, 0, sizeof(*info));
	if (fstat(fd, &st) < 0)
		return err_set(errno, "%s: %s", path, strerror(errno));
	info->dev = (uint64_t)st.st_dev;
	info->ino = (uint64_t)st.st_ino;
	info->size = (uint64_t)st.st_size;
	info->version = COWMAP_LOG_VERSION;
	info->pid = (uint32_t)getpid();
	info->uid = (uint32_t)getuid();
	clock_gettime(CLOCK_REALTIME, &ts);
	info->bind_time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	if (prctl(PR_GET_NAME, comm, 0, 0, 0) == 0)
		memcpy(info->comm, comm, 16);
	abs = realpath(path, NULL);
	if (!abs && path[0] != '/') {
		char *cwd = getcwd(NULL, 0);

		if (cwd && strlen(cwd) + strlen(path) + 2 < COWMAP_LOG_PATH_MAX) {
			size_t cl = strlen(cwd);

			memcpy(info->path, cwd, cl);
			info->path[cl] = '/';
			strcpy(info->path + cl + 1, path);
			free(cwd);
			return 0;
		}
		free(cwd);
	}
	if (strlen(abs ? abs : path) >= COWMAP_LOG_PATH_MAX) {
		free(abs);
		return err_set(ENAMETOOLONG, "%s: path too long for a log header", path);
	}
	strcpy(info->path, abs ? abs : path);
	free(abs);
	return 0;
}

static int writer_flush(struct cowmap_log_writer *w)
{
	int ret;

	if (!w->buf_used)
		return 0;
	ret = pwrite_full(w->fd, w->buf, w->buf_used, w->end);
	if (ret < 0) {
		/* Cut back to the last whole record; nothing half-written. */
		if (ftruncate(w->fd, (off_t)w->end) < 0) {
			/* A torn tail at worst, which readers detect. */
		}
		w->failed = true;
		return err_set(-ret, "%s: write at byte %llu: %s", w->name,
			       (unsigned long long)w->end, strerror(-ret));
	}
	w->end += w->buf_used;
	w->buf_used = 0;
	return 0;
}

COWMAP_EXPORT int cowmap_log_create_fd(int log_fd, const struct cowmap_log_info *info,
				       unsigned int flags, struct cowmap_log_writer **wp)
{
	struct cowmap_log_writer *w;
	size_t path_len;
	uint32_t hlen;
	struct stat st;
	uint8_t *h;
	int ret;

	if (!info || !wp || log_fd < 0)
		return err_set(EINVAL, "cowmap_log_create_fd: bad argument");
	if (flags)
		return err_set(EINVAL, "cowmap_log_create_fd: unknown flags 0x%x", flags);
	path_len = strnlen(info->path, sizeof(info->path));
	if (path_len >= COWMAP_LOG_PATH_MAX)
		return err_set(ENAMETOOLONG, "log header path too long");
	if (fstat(log_fd, &st) < 0)
		return err_set(errno, "log: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(EINVAL, "log: not a regular file");
	if (st.st_size)
		return err_set(ENOTEMPTY, "log: file is not empty");

	w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(ENOMEM, "out of memory");
	w->name = xstrdup("log");
	if (buf_reserve(&w->buf, &w->buf_cap, 64 << 10) || !w->name) {
		ret = err_set(ENOMEM, "out of memory");
		goto err_free;
	}
	w->fd = fcntl(log_fd, F_DUPFD_CLOEXEC, 3);
	if (w->fd < 0) {
		ret = err_set(errno, "log: %s", strerror(errno));
		goto err_free;
	}
	hlen = LOG_HDR_SIZE + (uint32_t)ALIGN8(path_len);
	h = w->buf;
	memset(h, 0, hlen);
	memcpy(h + H_MAGIC, COWMAP_LOG_MAGIC, 8);
	put_le32(h + H_VERSION, COWMAP_LOG_VERSION);
	put_le32(h + H_HEADER_LEN, hlen);
	put_le64(h + H_DEV, info->dev);
	put_le64(h + H_INO, info->ino);
	put_le64(h + H_SIZE, info->size);
	put_le64(h + H_SESSION_ID, info->session_id);
	put_le64(h + H_BIND_TIME, info->bind_time_ns);
	put_le32(h + H_PID, info->pid);
	put_le32(h + H_UID, info->uid);
	memcpy(h + H_COMM, info->comm, strnlen(info->comm, 16));
	put_le32(h + H_PATH_LEN, (uint32_t)path_len);
	memcpy(h + LOG_HDR_SIZE, info->path, path_len);
	put_le32(h + H_CRC, log_hdr_crc(h, hlen));
	w->buf_used = hlen;
	ret = writer_flush(w);
	if (ret)
		goto err_close;
	*wp = w;
	return 0;

err_close:
	close(w->fd);
err_free:
	free(w->buf);
	free(w->name);
	free(w);
	return ret;
}

COWMAP_EXPORT int cowmap_log_create(const char *log_path, const char *file_path,
				    unsigned int flags, struct cowmap_log_writer **wp)
{
	struct cowmap_log_info *info;
	struct stat st;
	int fd, lfd, ret;

	if (!log_path || !file_path || !wp)
		return err_set(EINVAL, "cowmap_log_create: NULL argument");
	if (flags & ~COWMAP_LOG_CREATE_EXCL)
		return err_set(EINVAL, "cowmap_log_create: unknown flags 0x%x", flags);
	info = malloc(sizeof(*info));
	if (!info)
		return err_set(ENOMEM, "out of memory");
	fd = open(file_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = err_set(errno, "%s: %s", file_path, strerror(errno));
		goto out_free;
	}
	ret = cowmap_log_info_init(info, fd, file_path);
	if (!ret && fstat(fd, &st) < 0)
		ret = err_set(errno, "%s: %s", file_path, strerror(errno));
	close(fd);
	if (ret)
		goto out_free;
	lfd = open(log_path, O_WRONLY | O_CREAT | O_CLOEXEC |
		   ((flags & COWMAP_LOG_CREATE_EXCL) ? O_EXCL : O_TRUNC),
		   st.st_mode & 0666);
	if (lfd < 0) {
		ret = err_set(errno, "%s: %s", log_path, strerror(errno));
		goto out_free;
	}
	ret = cowmap_log_create_fd(lfd, info, 0, wp);
	close(lfd);
	if (ret) {
		int e = errno;

		err_prefix(e, "%s", log_path);
		unlink(log_path);
		errno = e;
		goto out_free;
	}
	free((*wp)->name);
	(*wp)->name = xstrdup(log_path);
	if (!(*wp)->name) {
		cowmap_log_writer_close(*wp);
		unlink(log_path);
		ret = -ENOMEM;
	}
out_free:
	free(info);
	return ret;
}

COWMAP_EXPORT int cowmap_log_append(struct cowmap_log_writer *w, uint64_t offset,
				    const void *old_data, const void *new_data,
				    uint32_t length)
{
	uint8_t rec[LOG_REC_SIZE];
	uint64_t total, pad;
	uint32_t c;
	int ret;

	if (!w || !old_data || !new_data)
		return err_set(EINVAL, "cowmap_log_append: NULL argument");
	if (w->failed)
		return err_set(EIO, "%s: an earlier write failed", w->name);
	if (!length || length > COWMAP_LOG_REC_MAX)
		return err_set(EINVAL, "%s: record length %u out of range 1..%u",
			       w->name, length, COWMAP_LOG_REC_MAX);
	if (offset > (uint64_t)INT64_MAX - length)
		return err_set(EINVAL, "%s: record range %llu+%u beyond the largest file offset",
			       w->name, (unsigned long long)offset, length);
	total = COWMAP_LOG_REC_SIZE(length);
	pad = total - LOG_REC_SIZE - 2 * (uint64_t)length;

	put_le32(rec + R_MAGIC, COWMAP_LOG_REC_MAGIC);
	put_le32(rec + R_CRC, 0);
	put_le64(rec + R_OFFSET, offset);
	put_le32(rec + R_LENGTH, length);
	put_le32(rec + R_FLAGS, 0);
	put_le64(rec + R_SEQ, w->seq);
	c = crc32c_update(~0U, rec, LOG_REC_SIZE);
	c = crc32c_update(c, old_data, length);
	c = crc32c_update(c, new_data, length);
	c = crc32c_update(c, zero8, pad);
	put_le32(rec + R_CRC, ~c);

	if (total <= WBUF_SIZE - w->buf_used) {
		uint8_t *p;

		ret = buf_reserve(&w->buf, &w->buf_cap, w->buf_used + total);
		if (ret)
			return ret;
		p = w->buf + w->buf_used;
		memcpy(p, rec, LOG_REC_SIZE);
		memcpy(p + LOG_REC_SIZE, old_data, length);
		memcpy(p + LOG_REC_SIZE + length, new_data, length);
		memset(p + LOG_REC_SIZE + 2 * (uint64_t)length, 0, pad);
		w->buf_used += total;
	} else {
		uint64_t at;

		ret = writer_flush(w);
		if (ret)
			return ret;
		at = w->end;
		ret = pwrite_full(w->fd, rec, LOG_REC_SIZE, at);
		if (!ret)
			ret = pwrite_full(w->fd, old_data, length, at + LOG_REC_SIZE);
		if (!ret)
			ret = pwrite_full(w->fd, new_data, length, at + LOG_REC_SIZE + length);
		if (!ret && pad)
			ret = pwrite_full(w->fd, zero8, pad, at + LOG_REC_SIZE + 2 * (uint64_t)length);
		if (ret) {
			if (ftruncate(w->fd, (off_t)w->end) < 0) {
				/* A torn tail at worst. */
			}
			w->failed = true;
			return err_set(-ret, "%s: write at byte %llu: %s", w->name,
				       (unsigned long long)at, strerror(-ret));
		}
		w->end += total;
	}
	w->seq++;
	return 0;
}

COWMAP_EXPORT int cowmap_log_sync(struct cowmap_log_writer *w)
{
	int ret;

	if (!w)
		return err_set(EINVAL, "cowmap_log_sync: NULL argument");
	if (w->failed)
		return err_set(EIO, "%s: an earlier write failed", w->name);
	ret = writer_flush(w);
	if (ret)
		return ret;
	if (fsync(w->fd) < 0)
		return err_set(errno, "%s: fsync: %s", w->name, strerror(errno));
	return 0;
}

COWMAP_EXPORT int cowmap_log_writer_close(struct cowmap_log_writer *w)
{
	int ret = 0;

	if (!w)
		return 0;
	if (!w->failed)
		ret = cowmap_log_sync(w);
	close(w->fd);
	free(w->buf);
	free(w->name);
	free(w);
	return ret;
}
