// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <grp.h>
#include <unistd.h>
#include <sys/wait.h>

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

/* A file's bytes as a string ("" if it cannot be read); read_file()
 * does not NUL-terminate. */
static char *read_text(const char *path)
{
	size_t len;
	uint8_t *d = read_file(path, &len);
	char *s;

	if (!d)
		return strdup("");
	s = realloc(d, len + 1);
	if (!s) {
		free(d);
		return strdup("");
	}
	s[len] = 0;
	return s;
}

/* Run the (test build's) cowmap CLI with @argv (NULL-terminated) as @uid
 * (-1: as root) in a directory of the tests. */
struct cli_res run_cli(int uid, const char *const *argv)
{
	struct cli_res r = { -1, NULL, NULL };
	char *op = tpath("cli.stdout"), *ep = tpath("cli.stderr");
	int st;
	pid_t pid;

	unlink(op);
	unlink(ep);
	pid = fork();
	if (!pid) {
		int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0666);
		int e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0666);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		if (uid >= 0 && (setgroups(0, NULL) || setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) ||
				 setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid)))
			_exit(126);
		execv(COWMAP_CLI, (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) == pid)
		r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.out = read_text(op);
	r.err = read_text(ep);
	return r;
}

void cli_free(struct cli_res *r)
{
	free(r->out);
	free(r->err);
}
