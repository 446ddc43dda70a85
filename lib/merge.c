// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Merging logs into their backing file (semantics: lib/cowmap.h).
 *
 * 1. Each log is reduced to its net changes, a sorted list of disjoint
 *    extents whose old/new bytes point into the log's mapping: records
 *    are cut into runs of ascending, disjoint records, and runs are
 *    composed pairwise (a balanced reduction, O(n log runs)), checking the
 *    log chain where they overlap.  Bytes whose net old and new values are
 *    equal are trimmed; gaps of fewer than TRIM_GAP such bytes stay inside
 *    an extent and are skipped byte by byte later.
 * 2. A k-way sweep over all logs' extents cuts the file into segments
 *    covered by a fixed set of logs.  Each segment is compared with the
 *    file (read through a small window); a segment covered by one log
 *    whose old bytes match takes a fast path, everything else is decided
 *    byte by byte.  The bytes to write go to the journal (in place), to
 *    the new copy (-o), or are only counted (dry run).
 * 3. In place, a journal without conflicts is committed and applied.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "merge.h"

/* ------------------------------------------------------------------------
 * Small helpers
 */

static int add_warning(struct cowmap_merge *m, const char *msg)
{
	char *w;

	if (m->n_warn == m->cap_warn) {
		size_t cap = m->cap_warn ? 2 * m->cap_warn : 8;
		char **v = xrealloc_array(m->warn, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->warn = v;
		m->cap_warn = cap;
	}
	w = xstrdup(msg);
	if (!w)
		return -ENOMEM;
	m->warn[m->n_warn++] = w;
	return 0;
}

/* ------------------------------------------------------------------------
 * Public setup
 */

COWMAP_EXPORT int cowmap_merge_new(const char *file_path, unsigned int flags,
				   struct cowmap_merge **mp)
{
	struct cowmap_merge *m;
	const unsigned int known = COWMAP_MERGE_DRY_RUN | COWMAP_MERGE_FORCE |
		COWMAP_MERGE_PREFER_FIRST | COWMAP_MERGE_PREFER_LAST |
		COWMAP_MERGE_TRUST_ALL_LOGS | COWMAP_MERGE_STRICT |
		COWMAP_MERGE_UNDO_JOURNAL;

	if (!file_path || !mp)
		return err_set(EINVAL, "cowmap_merge_new: NULL argument");
	if (flags & ~known)
		return err_set(EINVAL, "cowmap_merge_new: unknown flags 0x%x", flags & ~known);
	if ((flags & COWMAP_MERGE_PREFER_FIRST) && (flags & COWMAP_MERGE_PREFER_LAST))
		return err_set(EINVAL, "prefer first and prefer last are exclusive");
	m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(ENOMEM, "out of memory");
	m->file_path = xstrdup(file_path);
	if (!m->file_path) {
		free(m);
		return -ENOMEM;
	}
	m->flags = flags;
	m->fd = -1;
	m->out_fd = -1;
	*mp = m;
	return 0;
}

COWMAP_EXPORT int cowmap_merge_set_output(struct cowmap_merge *m, const char *out_path)
{
	char *p;

	if (!m || !out_path || !*out_path)
		return err_set(EINVAL, "cowmap_merge_set_output: bad argument");
	p = xstrdup(out_path);
	if (!p)
		return -ENOMEM;
	free(m->out_path);
	m->out_path = p;
	return 0;
}

static const char *torn_what(uint32_t kind)
{
	return kind == COWMAP_LOG_TORN_CRC ? "whole last record failing its checksum" :
	       kind == COWMAP_LOG_TORN_ZERO ? "torn tail (zero bytes)" :
	       "torn tail (record cut short by the end of the file)";
}

static int add_opened(struct cowmap_merge *m, struct cowmap_log *log, const char *name)
{
	struct cowmap_log_info info;
	struct mlog *l;

	if (m->n_logs == m->cap_logs) {
		size_t cap = m->cap_logs ? 2 * m->cap_logs : 8;
		struct mlog *v = xrealloc_array(m->logs, cap, sizeof(*v));

		if (!v) {
			cowmap_log_close(log);
			return -ENOMEM;
		}
		m->logs = v;
		m->cap_logs = cap;
	}
	l = &m->logs[m->n_logs];
	memset(l, 0, sizeof(*l));
	l->log = log;
	l->name = xstrdup(name);
	if (!l->name) {
		cowmap_log_close(log);
		return -ENOMEM;
	}
	m->n_logs++;
	cowmap_log_info(log, &info);
	if (info.torn) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%.300s: %s at byte %llu left out; the %llu "
			 "record%s before it %s used", name, torn_what(info.torn_kind),
			 (unsigned long long)info.torn_offset,
			 (unsigned long long)info.records, info.records == 1 ? "" : "s",
			 info.records == 1 ? "is" : "are");
		m->st.torn_logs++;
		if (info.torn_kind == COWMAP_LOG_TORN_CRC)
			m->st.crc_tail_logs++;
		if (add_warning(m, msg))
			return -ENOMEM;
	}
	return 0;
}

/* With COWMAP_MERGE_STRICT, the first log with a torn tail fails the merge. */
static int check_strict(struct cowmap_merge *m)
{
	if (!(m->flags & COWMAP_MERGE_STRICT))
		return 0;
	for (size_t i = 0; i < m->n_logs; i++) {
		const struct cowmap_log_info *in = &m->logs[i].log->info;

		if (in->torn)
			return err_set(COWMAP_EBADLOG, "%s: byte %llu: %s (strict: a torn "
				       "tail is an error)", m->logs[i].name,
				       (unsigned long long)in->torn_offset,
				       torn_what(in->torn_kind));
	}
	return 0;
}

COWMAP_EXPORT int cowmap_merge_add_log(struct cowmap_merge *m, const char *log_path)
{
	struct cowmap_log *log;
	int ret;

	if (!m || !log_path)
		return err_set(EINVAL, "cowmap_merge_add_log: NULL argument");
	if (m->ran)
		return err_set(EINVAL, "merge already ran");
	ret = cowmap_log_open(log_path, 0, &log);
	if (ret)
		return ret;
	ret = add_opened(m, log, log_path);
	return ret ? err_ret(ret) : 0;
}

COWMAP_EXPORT int cowmap_merge_add_log_fd(struct cowmap_merge *m, int fd, const char *name)
{
	struct cowmap_log *log;
	int ret;

	if (!m || fd < 0)
		return err_set(EINVAL, "cowmap_merge_add_log_fd: bad argument");
	if (m->ran)
		return err_set(EINVAL, "merge already ran");
	if (!name)
		name = "(log)";
	ret = cowmap_log_open_fd(fd, name, 0, &log);
	if (ret)
		return ret;
	ret = add_opened(m, log, name);
	return ret ? err_ret(ret) : 0;
}

struct dirlog {
	struct cowmap_log *log;
	char *path;
	uint64_t time, sid;
};

static int dirlog_cmp(const void *pa, const void *pb)
{
	const struct dirlog *a = pa, *b = pb;

	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	if (a->sid != b->sid)
		return a->sid < b->sid ? -1 : 1;
	return strcmp(a->path, b->path);
}

COWMAP_EXPORT int cowmap_merge_add_dir(struct cowmap_merge *m, const char *dir)
{
	struct dirlog *found = NULL;
	size_t n = 0, cap = 0, added = 0;
	char *real = NULL;
	struct dirent *de;
	struct stat fst;
	DIR *d;
	int ret = 0, ffd;

	if (!m || !dir)
		return err_set(EINVAL, "cowmap_merge_add_dir: NULL argument");
	if (m->ran)
		return err_set(EINVAL, "merge already ran");
	ffd = open_nofollow(m->file_path, O_RDONLY | O_NONBLOCK);
	if (ffd < 0)
		return ffd;
	ret = fstat(ffd, &fst) < 0 ? err_set(errno, "%s: %s", m->file_path, strerror(errno)) : 0;
	close(ffd);
	if (ret)
		return ret;
	real = realpath(m->file_path, NULL);
	d = opendir(dir);
	if (!d) {
		ret = err_set(errno, "%s: %s", dir, strerror(errno));
		free(real);
		return ret;
	}
	while ((errno = 0, de = readdir(d))) {
		struct cowmap_log_info info;
		struct cowmap_log *log;
		char magic[8], *path;
		struct stat st;
		size_t len;
		int fd;

		if (de->d_name[0] == '.' && (!de->d_name[1] ||
					     (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		len = strlen(dir) + strlen(de->d_name) + 2;
		path = malloc(len);
		if (!path) {
			ret = err_set(ENOMEM, "out of memory");
			break;
		}
		snprintf(path, len, "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    pread(fd, magic, 8, 0) != 8 || memcmp(magic, COWMAP_LOG_MAGIC, 8)) {
			if (fd >= 0)
				close(fd);
			free(path);
			continue;
		}
		if (!(m->flags & COWMAP_MERGE_TRUST_ALL_LOGS) &&
		    !owner_trusted(st.st_uid, fst.st_uid)) {
			char msg[512];

			snprintf(msg, sizeof(msg), "%.250s: not merged: owned by uid %u, neither "
				 "you, the file's owner (uid %u) nor root; --trust-all-logs to "
				 "merge it", path, (unsigned int)st.st_uid,
				 (unsigned int)fst.st_uid);
			close(fd);
			free(path);
			ret = add_warning(m, msg);
			if (ret)
				break;
			continue;
		}
		ret = cowmap_log_open_fd(fd, path, 0, &log);
		close(fd);
		if (ret) {
			free(path);
			break;
		}
		cowmap_log_info(log, &info);
		if (info.dev != (uint64_t)fst.st_dev || info.ino != (uint64_t)fst.st_ino) {
			bool by_path = (m->flags & COWMAP_MERGE_FORCE) && real &&
				       !strcmp(info.path, real);

			if (!by_path) {
				char msg[512];

				snprintf(msg, sizeof(msg), "%.250s: skipped, recorded against "
					 "another file (%.200s)", path, info.path);
				cowmap_log_close(log);
				free(path);
				m->st.skipped_logs++;
				ret = add_warning(m, msg);
				if (ret)
					break;
				continue;
			}
		}
		if (n == cap) {
			size_t c = cap ? 2 * cap : 16;
			struct dirlog *v = xrealloc_array(found, c, sizeof(*v));

			if (!v) {
				cowmap_log_close(log);
				free(path);
				ret = -ENOMEM;
				break;
			}
			found = v;
			cap = c;
		}
		found[n++] = (struct dirlog){ log, path, info.bind_time_ns, info.session_id };
	}
	if (!ret && errno)
		ret = err_set(errno, "%s: %s", dir, strerror(errno));
	closedir(d);
	free(real);
	if (!ret)
		qsort(found, n, sizeof(*found), dirlog_cmp);
	for (size_t i = 0; i < n; i++) {
		if (!ret) {
			ret = add_opened(m, found[i].log, found[i].path);
			if (!ret)
				added++;
		} else {
			cowmap_log_close(found[i].log);
		}
		free(found[i].path);
	}
	free(found);
	return ret ? err_ret(ret) : (int)MIN(added, (size_t)INT32_MAX);
}
/* ------------------------------------------------------------------------
 * Running
 */

/* Copy @src (size @size) into @dst keeping holes. */
static int copy_sparse(int src, int dst, uint64_t size, const char *sname,
		       const char *dname)
{
	uint64_t pos = 0;

	if (ftruncate(dst, (off_t)size) < 0)
		return err_set(errno, "%s: truncate: %s", dname, strerror(errno));
	while (pos < size) {
		off_t data = lseek(src, (off_t)pos, SEEK_DATA), hole;

		if (data < 0) {
			if (errno == ENXIO)
				break;
			data = (off_t)pos;	/* no SEEK_DATA: copy everything */
			hole = (off_t)size;
		} else {
			hole = lseek(src, data, SEEK_HOLE);
			if (hole < 0)
				hole = (off_t)size;
		}
		if ((uint64_t)hole > size)
			hole = (off_t)size;
		while (data < hole) {
			loff_t in = data, outp = data;
			ssize_t n = copy_file_range(src, &in, dst, &outp, (size_t)(hole - data), 0);

			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
				      errno == EOPNOTSUPP)) {
				static __thread uint8_t buf[1 << 16];
				size_t want = (size_t)MIN((uint64_t)(hole - data), sizeof(buf));
				int ret = pread_full(src, buf, want, (uint64_t)data);

				if (!ret)
					ret = pwrite_full(dst, buf, want, (uint64_t)data);
				if (ret)
					return err_set(-ret, "copy %s to %s: %s", sname, dname,
						       strerror(-ret));
				n = (ssize_t)want;
			} else if (n < 0) {
				return err_set(errno, "copy %s to %s: %s", sname, dname,
					       strerror(errno));
			} else if (n == 0) {
				return err_set(EAGAIN, "%s: file changed size during the copy", sname);
			}
			data += n;
		}
		pos = (uint64_t)hole;
	}
	return 0;
}

static int check_identity(struct cowmap_merge *m, const struct stat *st)
{
	if (m->flags & COWMAP_MERGE_FORCE)
		return 0;
	for (size_t i = 0; i < m->n_logs; i++) {
		struct cowmap_log_info *in = &m->logs[i].log->info;

		if (in->dev != (uint64_t)st->st_dev || in->ino != (uint64_t)st->st_ino)
			return err_set(COWMAP_EWRONGFILE, "%s: recorded against %s (dev %u:%u "
				       "inode %llu), not %s (dev %u:%u inode %llu); "
				       "--force (COWMAP_MERGE_FORCE) merges it anyway",
				       m->logs[i].name, in->path[0] ? in->path : "another file",
				       major((dev_t)in->dev), minor((dev_t)in->dev),
				       (unsigned long long)in->ino, m->file_path,
				       major(st->st_dev), minor(st->st_dev),
				       (unsigned long long)st->st_ino);
	}
	return 0;
}

/* -o naming the input itself (a path or a link to it, a hard link) would
 * replace the file with a new inode under its live sessions. */
static int check_output(struct cowmap_merge *m, const char *real, const struct stat *st)
{
	char *out;
	struct stat ost;
	bool same;

	if (!m->out_path)
		return 0;
	out = real_target(m->out_path);
	same = (out && !strcmp(out, real)) ||
	       (!stat(m->out_path, &ost) && ost.st_dev == st->st_dev && ost.st_ino == st->st_ino);
	free(out);
	if (same)
		return err_set(EINVAL, "%s: the output %s is the input file; merge in place "
			       "(without an output) or name another file", m->file_path,
			       m->out_path);
	return 0;
}

/* Root merging logs it did not write: refuse those of other users than the
 * file's owner, unless told to trust them (merge-all skips them earlier). */
static int check_log_owners(struct cowmap_merge *m, const struct stat *st)
{
	struct stat lst;

	if (geteuid() != 0 || (m->flags & COWMAP_MERGE_TRUST_ALL_LOGS))
		return 0;
	for (size_t i = 0; i < m->n_logs; i++) {
		if (fstat(m->logs[i].log->fd, &lst) < 0)
			return err_set(errno, "%s: %s", m->logs[i].name, strerror(errno));
		if (!owner_trusted(lst.st_uid, st->st_uid))
			return err_set(EPERM, "%s: owned by uid %u, neither root nor the owner of "
				       "%s (uid %u): root does not merge another user's log into "
				       "a file without --trust-all-logs; nothing written",
				       m->logs[i].name, (unsigned int)lst.st_uid, m->file_path,
				       (unsigned int)st->st_uid);
	}
	return 0;
}

static int run_output(struct cowmap_merge *m, const struct stat *st)
{
	char *dir = path_dirname(m->out_path), *tmp = NULL;
	int ret;

	if (!dir)
		return -ENOMEM;
	ret = open_tmpfile_in(dir, path_basename(m->out_path), &tmp);
	if (ret < 0)
		goto out;
	m->out_fd = ret;
	m->out_name = tmp;
	ret = copy_sparse(m->fd, m->out_fd, m->fsize, m->file_path, tmp);
	/* As cp without -p: no setuid, setgid or sticky bit, the umask applies. */
	if (!ret && fchmod(m->out_fd, st->st_mode & 0777 & ~current_umask()) < 0)
		ret = err_set(errno, "%s: chmod: %s", tmp, strerror(errno));
	if (ret)
		goto out;
	m->sink = SINK_FILE;
	ret = merge_plan(m);
	if (ret)
		goto out;
	if (m->st.unresolved) {
		ret = err_set(COWMAP_ECONFLICT, "%s: %llu conflicting ranges, nothing written",
			      m->file_path, (unsigned long long)m->st.unresolved);
		goto out;
	}
	if (fsync(m->out_fd) < 0) {
		ret = err_set(errno, "%s: fsync: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, m->out_path) < 0) {
		ret = err_set(errno, "rename %s to %s: %s", tmp, m->out_path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	ret = fsync_dir_of(m->out_path);
out:
	if (m->out_fd >= 0)
		close(m->out_fd);
	m->out_fd = -1;
	m->out_name = NULL;
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(dir);
	return ret;
}

static int run_in_place(struct cowmap_merge *m, const char *real, const struct stat *st)
{
	struct journal_target t = {
		.fd = m->fd, .path = m->file_path,
		.dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino,
		.size = m->fsize, .uid = st->st_uid,
		.undo = m->flags & COWMAP_MERGE_UNDO_JOURNAL,
	};
	char *jpath = journal_path(real);
	int ret;

	if (!jpath)
		return -ENOMEM;
	ret = journal_begin(&m->j, jpath, &t);
	free(jpath);
	for (size_t i = 0; !ret && i < m->n_logs; i++) {
		const struct cowmap_log *log = m->logs[i].log;

		if (log->map)
			ret = journal_add_source(m->j, log->map, log->map_len, log->fd);
	}
	if (ret) {
		journal_abort(m->j);
		m->j = NULL;
		return ret;
	}
	m->sink = SINK_JOURNAL;
	ret = merge_plan(m);
	if (!ret && m->st.unresolved)
		ret = err_set(COWMAP_ECONFLICT, "%s: %llu conflicting ranges, nothing written",
			      m->file_path, (unsigned long long)m->st.unresolved);
	if (!ret && !m->st.write_bytes) {
		journal_abort(m->j);	/* nothing to do */
		m->j = NULL;
		return 0;
	}
	if (!ret)
		ret = journal_check_size(m->j);
	if (!ret)
		ret = journal_commit(m->j);
	if (ret) {
		journal_abort(m->j);
		m->j = NULL;
		return ret;
	}
	/* From here on the merge is durable: a failure leaves a journal that
	 * the next cowmap operation on the file completes. */
	ret = journal_apply(m->j);
	if (ret) {
		err_prefix(-ret, "%s: merge interrupted; the next merge or recovery of "
			   "the file completes it", m->file_path);
		journal_release(m->j);	/* the journal stays for recovery */
		m->j = NULL;
		return ret;
	}
	ret = journal_finish(m->j);
	m->j = NULL;
	return ret;
}

COWMAP_EXPORT int cowmap_merge_run(struct cowmap_merge *m)
{
	bool in_place, can_write;
	char *real = NULL;
	struct stat st;
	int ret, rec;

	if (!m)
		return err_set(EINVAL, "cowmap_merge_run: NULL argument");
	if (m->ran)
		return err_set(EINVAL, "merge already ran");
	m->ran = true;
	m->st.logs = m->n_logs;
	ret = check_strict(m);
	if (ret)
		return ret;

	for (size_t i = 0; i < m->n_logs; i++) {
		ret = merge_build_net(m, &m->logs[i]);
		if (ret)
			return err_ret(ret);
	}

	real = real_target(m->file_path);
	if (!real)
		return -errno;
	in_place = !(m->flags & COWMAP_MERGE_DRY_RUN) && !m->out_path;
	m->fd = open_nofollow(real, in_place ? O_RDWR : O_RDONLY);
	if (m->fd < 0) {
		ret = m->fd;
		goto out;
	}
	can_write = in_place;
	if (fstat(m->fd, &st) < 0) {
		ret = err_set(errno, "%s: %s", m->file_path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = err_set(EINVAL, "%s: not a regular file", m->file_path);
		goto out;
	}
	ret = check_output(m, real, &st);
	if (!ret)
		ret = check_log_owners(m, &st);
	if (ret)
		goto out;
	rec = journal_lock_and_recover(real, m->fd, can_write,
				       in_place ? 0 : JOURNAL_CHECK_ONLY);
	if (rec < 0) {
		ret = rec;
		goto out;
	}
	m->st.recovered = (uint32_t)rec;
	if (fstat(m->fd, &st) < 0) {
		ret = err_set(errno, "%s: %s", m->file_path, strerror(errno));
		goto out;
	}
	m->fsize = (uint64_t)st.st_size;
	ret = check_identity(m, &st);
	if (ret)
		goto out;

	if (m->flags & COWMAP_MERGE_DRY_RUN) {
		m->sink = SINK_COUNT;
		ret = merge_plan(m);
		if (!ret && m->st.unresolved)
			ret = err_set(COWMAP_ECONFLICT, "%s: %llu conflicting ranges",
				      m->file_path, (unsigned long long)m->st.unresolved);
	} else if (m->out_path) {
		ret = run_output(m, &st);
	} else {
		ret = run_in_place(m, real, &st);
	}
out:
	if (m->fd >= 0)
		close(m->fd);	/* drops the lock */
	m->fd = -1;
	free(real);
	return ret ? err_ret(ret) : 0;
}

COWMAP_EXPORT int cowmap_merge_stats(const struct cowmap_merge *m,
				     struct cowmap_merge_stats *st)
{
	if (!m || !st)
		return err_set(EINVAL, "cowmap_merge_stats: NULL argument");
	*st = m->st;
	if (!m->ran)
		st->logs = m->n_logs;
	return 0;
}

COWMAP_EXPORT int cowmap_merge_conflict(const struct cowmap_merge *m, size_t i,
					struct cowmap_conflict *c)
{
	if (!m || !c)
		return err_set(EINVAL, "cowmap_merge_conflict: NULL argument");
	if (i >= m->n_conf)
		return err_set(ENOENT, "no conflict %zu (there are %zu)", i, m->n_conf);
	*c = m->conf[i];
	return 0;
}

COWMAP_EXPORT const char *cowmap_merge_warning(const struct cowmap_merge *m, size_t i)
{
	if (!m || i >= m->n_warn)
		return NULL;
	return m->warn[i];
}

COWMAP_EXPORT const char *cowmap_merge_log_name(const struct cowmap_merge *m, size_t i)
{
	if (!m || i >= m->n_logs)
		return NULL;
	return m->logs[i].name;
}

COWMAP_EXPORT void cowmap_merge_free(struct cowmap_merge *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_logs; i++) {
		cowmap_log_close(m->logs[i].log);
		free(m->logs[i].name);
		extv_free(&m->logs[i].net);
	}
	for (size_t i = 0; i < m->n_warn; i++)
		free(m->warn[i]);
	if (m->j)
		journal_abort(m->j);
	if (m->fd >= 0)
		close(m->fd);
	free(m->warn);
	free(m->logs);
	free(m->conf);
	free(m->touched_prev);
	free(m->touched_cur);
	free(m->win);
	free(m->out);
	free(m->wmask);
	free(m->file_path);
	free(m->out_path);
	free(m);
}
