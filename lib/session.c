// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Sessions: thin wrappers over the /dev/cowmap ioctls of <linux/cowmap.h>,
 * and commit (a session's own changes merged into its file).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct cowmap_session {
	int fd;			/* /dev/cowmap */
	int file_fd;		/* the backing file, read-only */
	char *path;		/* the backing file, absolute */
	uint64_t id;
	uint64_t size;
};

static int dev_open(void)
{
	int fd = open(COWMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
		return err_set(errno, "%s: %s (is the cowmap module loaded?)",
			       COWMAP_DEVICE_PATH, strerror(errno));
	return err_set(errno, "%s: %s", COWMAP_DEVICE_PATH, strerror(errno));
}

static int ioctl_err(const struct cowmap_session *s, const char *what)
{
	int e = errno;

	return err_set(e, "session %llu: %s: %s", s ? (unsigned long long)s->id : 0ULL,
		       what, strerror(e));
}

COWMAP_EXPORT int cowmap_session_open(const char *path, unsigned int flags,
				      const char *log_path, uint32_t ring_size,
				      struct cowmap_session **sp)
{
	struct cowmap_bind b;
	struct cowmap_session *s;
	struct stat st;
	int lfd = -1, ret;

	if (!path || !sp)
		return err_set(EINVAL, "cowmap_session_open: NULL argument");
	if (flags)
		return err_set(EINVAL, "cowmap_session_open: unknown flags 0x%x", flags);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(ENOMEM, "out of memory");
	s->fd = -1;
	s->file_fd = -1;
	s->path = realpath(path, NULL);
	if (!s->path) {
		ret = err_set(errno, "%s: %s", path, strerror(errno));
		goto err_free;
	}
	s->file_fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (s->file_fd < 0) {
		ret = err_set(errno, "%s: %s", path, strerror(errno));
		goto err_free;
	}
	if (fstat(s->file_fd, &st) < 0) {
		ret = err_set(errno, "%s: %s", path, strerror(errno));
		goto err_free;
	}
	ret = dev_open();
	if (ret < 0)
		goto err_free;
	s->fd = ret;
	if (log_path) {
		lfd = open(log_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			   (st.st_mode & 0666) | 0600);
		if (lfd < 0) {
			ret = err_set(errno, "%s: %s", log_path, strerror(errno));
			goto err_free;
		}
	}
	memset(&b, 0, sizeof(b));
	b.fd = s->file_fd;
	b.log_fd = lfd;
	b.flags = lfd >= 0 ? COWMAP_BIND_LOG : 0;
	b.ring_size = ring_size;
	if (ioctl(s->fd, COWMAP_IOC_BIND, &b) < 0) {
		int e = errno;

		ret = err_set(e, "%s: bind%s%s: %s", path, log_path ? " with log " : "",
			      log_path ? log_path : "",
			      e == EOPNOTSUPP ? "filesystem not supported by cowmap" : strerror(e));
		goto err_unlink;
	}
	s->id = b.id;
	s->size = b.size;
	if (lfd >= 0)
		close(lfd);	/* the session holds the log now */
	*sp = s;
	return 0;

err_unlink:
	if (lfd >= 0) {
		close(lfd);
		unlink(log_path);
	}
err_free:
	if (s->fd >= 0)
		close(s->fd);
	if (s->file_fd >= 0)
		close(s->file_fd);
	free(s->path);
	free(s);
	return ret;
}

COWMAP_EXPORT int cowmap_session_fd(const struct cowmap_session *s)
{
	if (!s)
		return err_set(EINVAL, "cowmap_session_fd: NULL session");
	return s->fd;
}

COWMAP_EXPORT uint64_t cowmap_session_id(const struct cowmap_session *s)
{
	return s ? s->id : 0;
}

COWMAP_EXPORT int cowmap_session_map(struct cowmap_session *s, uint64_t offset, size_t length,
				     int prot, void **addrp)
{
	void *p;

	if (!s || !addrp || !length)
		return err_set(EINVAL, "cowmap_session_map: bad argument");
	if (offset > (uint64_t)INT64_MAX)
		return err_set(EINVAL, "cowmap_session_map: offset %llu too large",
			       (unsigned long long)offset);
	p = mmap(NULL, length, prot, MAP_SHARED, s->fd, (off_t)offset);
	if (p == MAP_FAILED)
		return err_set(errno, "session %llu: mmap of %zu bytes at %llu: %s",
			       (unsigned long long)s->id, length,
			       (unsigned long long)offset, strerror(errno));
	*addrp = p;
	return 0;
}

COWMAP_EXPORT int cowmap_session_unmap(struct cowmap_session *s, void *addr, size_t length)
{
	if (!addr)
		return err_set(EINVAL, "cowmap_session_unmap: NULL address");
	if (munmap(addr, length) < 0)
		return err_set(errno, "munmap: %s", strerror(errno));
	return 0;
}

COWMAP_EXPORT int cowmap_session_info(struct cowmap_session *s, struct cowmap_info *info)
{
	if (!s || !info)
		return err_set(EINVAL, "cowmap_session_info: NULL argument");
	memset(info, 0, sizeof(*info));
	if (ioctl(s->fd, COWMAP_IOC_INFO, info) < 0)
		return ioctl_err(s, "info");
	return 0;
}

COWMAP_EXPORT int cowmap_session_version(struct cowmap_session *s, struct cowmap_version *v)
{
	int fd, ret = 0;

	if (!v)
		return err_set(EINVAL, "cowmap_session_version: NULL argument");
	fd = s ? s->fd : dev_open();
	if (fd < 0)
		return fd;
	memset(v, 0, sizeof(*v));
	if (ioctl(fd, COWMAP_IOC_VERSION, v) < 0)
		ret = ioctl_err(s, "version");
	if (!s)
		close(fd);
	return ret;
}

COWMAP_EXPORT int cowmap_session_read_events(struct cowmap_session *s, struct cowmap_event *ev,
					     size_t max, int nonblock)
{
	ssize_t n;

	if (!s || !ev || !max)
		return err_set(EINVAL, "cowmap_session_read_events: bad argument");
	if (max > INT_MAX / sizeof(*ev))
		max = INT_MAX / sizeof(*ev);
	if (nonblock) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		int r = poll(&p, 1, 0);

		if (r < 0)
			return err_set(errno, "poll: %s", strerror(errno));
		if (r == 0)
			return err_set(EAGAIN, "no events");
	}
	n = read(s->fd, ev, max * sizeof(*ev));
	if (n < 0)
		return ioctl_err(s, "read events");
	if (n % (ssize_t)sizeof(*ev))
		return err_set(EIO, "session %llu: read returned %zd bytes, not whole events",
			       (unsigned long long)s->id, n);
	return (int)(n / (ssize_t)sizeof(*ev));
}

COWMAP_EXPORT int cowmap_session_drain(struct cowmap_session *s, int log_fd,
				       struct cowmap_drain *st)
{
	struct cowmap_drain d;

	if (!s)
		return err_set(EINVAL, "cowmap_session_drain: NULL session");
	memset(&d, 0, sizeof(d));
	if (log_fd >= 0) {
		d.log_fd = log_fd;
		d.flags = COWMAP_DRAIN_FD;
	}
	if (ioctl(s->fd, COWMAP_IOC_DRAIN, &d) < 0)
		return ioctl_err(s, log_fd >= 0 ? "drain to fd" : "drain to the bound log");
	if (st)
		*st = d;
	return 0;
}

COWMAP_EXPORT int cowmap_session_discard(struct cowmap_session *s, uint64_t offset,
					 uint64_t length)
{
	struct cowmap_range r;

	if (!s)
		return err_set(EINVAL, "cowmap_session_discard: NULL session");
	memset(&r, 0, sizeof(r));
	if (length == COWMAP_DISCARD_ALL) {
		r.flags = COWMAP_RANGE_ALL;
	} else {
		r.offset = offset;
		r.length = length;
	}
	if (ioctl(s->fd, COWMAP_IOC_DISCARD, &r) < 0)
		return ioctl_err(s, "discard");
	return r.pages > INT_MAX ? INT_MAX : (int)r.pages;
}

COWMAP_EXPORT int cowmap_session_diff(struct cowmap_session *s, uint64_t *offset, uint64_t end,
				      void *buf, size_t buf_len, size_t *used)
{
	struct cowmap_diff d;

	if (!s || !offset || !buf || !used)
		return err_set(EINVAL, "cowmap_session_diff: NULL argument");
	if (buf_len < COWMAP_DIFF_MIN_BUF)
		return err_set(EINVAL, "cowmap_session_diff: buffer of %zu bytes, at least %u needed",
			       buf_len, COWMAP_DIFF_MIN_BUF);
	memset(&d, 0, sizeof(d));
	d.offset = *offset;
	d.end = end;
	d.buf = (uint64_t)(uintptr_t)buf;
	d.buf_len = buf_len;
	if (ioctl(s->fd, COWMAP_IOC_DIFF, &d) < 0)
		return ioctl_err(s, "diff");
	if (d.used > buf_len)
		return err_set(EIO, "session %llu: diff used %llu bytes of a %zu-byte buffer",
			       (unsigned long long)s->id, (unsigned long long)d.used, buf_len);
	*offset = d.offset;
	*used = (size_t)d.used;
	return d.records > INT_MAX ? INT_MAX : (int)d.records;
}

COWMAP_EXPORT int cowmap_diff_next(const void *buf, size_t used, size_t *pos,
				   struct cowmap_log_rec *rec)
{
	const uint8_t *r;
	uint64_t total;
	uint32_t len;

	if (!buf || !pos || !rec)
		return err_set(EINVAL, "cowmap_diff_next: NULL argument");
	if (*pos >= used)
		return 0;
	r = (const uint8_t *)buf + *pos;
	if (used - *pos < LOG_REC_SIZE)
		return err_set(COWMAP_EBADLOG, "diff buffer: byte %zu: truncated record", *pos);
	len = get_le32(r + offsetof(struct cowmap_log_record, length));
	if (get_le32(r) != COWMAP_LOG_REC_MAGIC || !len || len > COWMAP_LOG_REC_MAX)
		return err_set(COWMAP_EBADLOG, "diff buffer: byte %zu: bad record header", *pos);
	total = COWMAP_LOG_REC_SIZE(len);
	if (total > used - *pos)
		return err_set(COWMAP_EBADLOG, "diff buffer: byte %zu: record runs past the "
			       "data", *pos);
	if (log_rec_crc(r, total) != get_le32(r + offsetof(struct cowmap_log_record, crc)))
		return err_set(COWMAP_EBADLOG, "diff buffer: byte %zu: record CRC mismatch", *pos);
	rec->seq = get_le64(r + offsetof(struct cowmap_log_record, seq));
	rec->offset = get_le64(r + offsetof(struct cowmap_log_record, offset));
	rec->length = len;
	rec->flags = get_le32(r + offsetof(struct cowmap_log_record, flags));
	rec->log_offset = *pos;
	rec->old_data = r + LOG_REC_SIZE;
	rec->new_data = r + LOG_REC_SIZE + len;
	*pos += total;
	return 1;
}

#define DIFF_BUF	(4U << 20)

/* Write the session's current changes (COWMAP_IOC_DIFF) as a log to @fd. */
static int diff_to_log(struct cowmap_session *s, int fd)
{
	struct cowmap_log_writer *w = NULL;
	struct cowmap_log_info *info;
	struct cowmap_info si;
	uint64_t off = 0;
	uint8_t *buf;
	int ret;

	info = malloc(sizeof(*info));
	buf = malloc(DIFF_BUF);
	if (!info || !buf) {
		ret = err_set(ENOMEM, "out of memory");
		goto out;
	}
	ret = cowmap_log_info_init(info, s->file_fd, s->path);
	if (ret)
		goto out;
	info->session_id = s->id;
	if (!cowmap_session_info(s, &si))
		info->bind_time_ns = si.bind_time_ns;
	ret = cowmap_log_create_fd(fd, info, 0, &w);
	if (ret)
		goto out;
	while (off != COWMAP_DIFF_END) {
		uint64_t prev = off;
		struct cowmap_log_rec r;
		size_t used = 0, pos = 0;
		int n = cowmap_session_diff(s, &off, 0, buf, DIFF_BUF, &used);

		if (n < 0) {
			ret = n;
			goto out;
		}
		while ((ret = cowmap_diff_next(buf, used, &pos, &r)) == 1) {
			ret = cowmap_log_append(w, r.offset, r.old_data, r.new_data, r.length);
			if (ret)
				goto out;
		}
		if (ret < 0)
			goto out;
		if (off != COWMAP_DIFF_END && off <= prev && !used) {
			ret = err_set(EIO, "session %llu: diff made no progress at offset %llu",
				      (unsigned long long)s->id, (unsigned long long)prev);
			goto out;
		}
	}
	ret = cowmap_log_sync(w);
out:
	if (w) {
		int r2 = cowmap_log_writer_close(w);

		if (!ret)
			ret = r2;
	}
	free(buf);
	free(info);
	return ret;
}

COWMAP_EXPORT int cowmap_session_commit(struct cowmap_session *s, unsigned int flags,
					struct cowmap_merge_stats *st)
{
	struct cowmap_merge *m = NULL;
	char *dir = NULL, name[64];
	int tfd = -1, ret;

	if (!s)
		return err_set(EINVAL, "cowmap_session_commit: NULL session");
	if (flags & ~COWMAP_COMMIT_FORCE)
		return err_set(EINVAL, "cowmap_session_commit: unknown flags 0x%x", flags);
	dir = path_dirname(s->path);
	if (!dir)
		return -ENOMEM;
	tfd = open_tmpfile_in(dir, "cowmap-commit", NULL);
	if (tfd < 0) {
		ret = tfd;
		goto out;
	}
	ret = diff_to_log(s, tfd);
	if (ret)
		goto out;
	ret = cowmap_merge_new(s->path, (flags & COWMAP_COMMIT_FORCE) ?
			       COWMAP_MERGE_PREFER_LAST : 0, &m);
	if (ret)
		goto out;
	snprintf(name, sizeof(name), "session %llu", (unsigned long long)s->id);
	ret = cowmap_merge_add_log_fd(m, tfd, name);
	if (ret)
		goto out;
	ret = cowmap_merge_run(m);
	if (st)
		cowmap_merge_stats(m, st);
	if (ret)
		goto out;
	ret = cowmap_session_discard(s, 0, COWMAP_DISCARD_ALL);
	if (ret > 0)
		ret = 0;
	if (ret)
		err_prefix(-ret, "%s: changes merged, but dropping the private pages failed",
			   s->path);
out:
	cowmap_merge_free(m);
	if (tfd >= 0)
		close(tfd);
	free(dir);
	return ret ? err_ret(ret) : 0;
}

COWMAP_EXPORT void cowmap_session_close(struct cowmap_session *s)
{
	if (!s)
		return;
	close(s->fd);
	close(s->file_fd);
	free(s->path);
	free(s);
}

/*
 * The session calls' 1.0 names (COWMAP_1.0 in libcowmap.map): the same
 * functions, for programs built against libcowmap 1.0.
 */
#define COWMAP_ALIAS(old, new) \
	COWMAP_EXPORT extern __typeof__(new) old __attribute__((alias(#new)))
COWMAP_ALIAS(cowmap_map, cowmap_session_map);
COWMAP_ALIAS(cowmap_unmap, cowmap_session_unmap);
COWMAP_ALIAS(cowmap_version, cowmap_session_version);
COWMAP_ALIAS(cowmap_read_events, cowmap_session_read_events);
COWMAP_ALIAS(cowmap_drain, cowmap_session_drain);
COWMAP_ALIAS(cowmap_discard, cowmap_session_discard);
COWMAP_ALIAS(cowmap_diff, cowmap_session_diff);
COWMAP_ALIAS(cowmap_commit, cowmap_session_commit);
