// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#include "harness.h"
#include "tutil.h"

int mklog_meta(const char *log, const char *file, const struct chg *c, int n,
	       uint64_t bind_time, uint64_t session_id)
{
	struct cowmap_log_writer *w;
	struct cowmap_log_info info;
	int fd, lfd, ret;

	fd = open(file, O_RDONLY);
	if (fd < 0)
		return -errno;
	ret = cowmap_log_info_init(&info, fd, file);
	close(fd);
	if (ret)
		return ret;
	if (bind_time)
		info.bind_time_ns = bind_time;
	info.session_id = session_id;
	lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (lfd < 0)
		return -errno;
	ret = cowmap_log_create_fd(lfd, &info, 0, &w);
	close(lfd);
	if (ret)
		return ret;
	for (int i = 0; i < n && !ret; i++)
		ret = cowmap_log_append(w, c[i].off, c[i].old, c[i].new, c[i].len);
	if (cowmap_log_writer_close(w) && !ret)
		ret = -EIO;
	return ret;
}

int mklog(const char *log, const char *file, const struct chg *c, int n)
{
	return mklog_meta(log, file, c, n, 0, 0);
}

static int vmerge(struct cowmap_merge **mp, const char *file, unsigned int flags,
		  const char *out, int n, va_list ap)
{
	struct cowmap_merge *m;
	int ret = cowmap_merge_new(file, flags, &m);

	if (ret) {
		if (mp)
			*mp = NULL;
		return ret;
	}
	if (out)
		ret = cowmap_merge_set_output(m, out);
	for (int i = 0; i < n && !ret; i++)
		ret = cowmap_merge_add_log(m, va_arg(ap, const char *));
	if (!ret)
		ret = cowmap_merge_run(m);
	if (mp)
		*mp = m;
	else
		cowmap_merge_free(m);
	return ret;
}

int merge(const char *file, unsigned int flags, const char *out, int n, ...)
{
	va_list ap;
	int ret;

	va_start(ap, n);
	ret = vmerge(NULL, file, flags, out, n, ap);
	va_end(ap);
	return ret;
}

int merge_keep(struct cowmap_merge **mp, const char *file, unsigned int flags,
	       const char *out, int n, ...)
{
	va_list ap;
	int ret;

	va_start(ap, n);
	ret = vmerge(mp, file, flags, out, n, ap);
	va_end(ap);
	return ret;
}

bool file_is(const char *path, const void *data, size_t len)
{
	size_t n;
	uint8_t *d = read_file(path, &n);
	bool ok = d && n == len && !memcmp(d, data, len);

	free(d);
	return ok;
}
