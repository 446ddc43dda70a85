// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * I/O and path helpers, and the crash-point test hook.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

enum io_op { IO_PREAD, IO_PWRITE, IO_WRITE };

/*
 * @op on @fd (into @rbuf for a read, from @wbuf for a write; at @off but for
 * IO_WRITE) until @len bytes are done, again after EINTR.  A call that
 * transfers nothing ends it with @none: a read at the end of the file, a
 * write that cannot make progress.
 */
static int io_full(enum io_op op, int fd, void *rbuf, const void *wbuf, size_t len,
		   uint64_t off, int none)
{
	size_t done = 0;

	while (done < len) {
		off_t at = (off_t)(off + done);
		ssize_t n;

		if (op == IO_PREAD)
			n = pread(fd, (uint8_t *)rbuf + done, len - done, at);
		else if (op == IO_PWRITE)
			n = pwrite(fd, (const uint8_t *)wbuf + done, len - done, at);
		else
			n = write(fd, (const uint8_t *)wbuf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return none;
		done += (size_t)n;
	}
	return 0;
}

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return io_full(IO_PREAD, fd, buf, NULL, len, off, -ENODATA);	/* short file */
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	return io_full(IO_PWRITE, fd, NULL, buf, len, off, -EIO);
}

int write_full(int fd, const void *buf, size_t len)
{
	return io_full(IO_WRITE, fd, NULL, buf, len, 0, -EIO);
}

bool mem_is_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len && ((uintptr_t)b & 7)) {
		if (*b++)
			return false;
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, b, 8);
		if (v)
			return false;
		b += 8;
		len -= 8;
	}
	while (len--)
		if (*b++)
			return false;
	return true;
}

int buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	size_t c = *cap ? *cap : 64 << 10;
	uint8_t *p;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	p = realloc(*buf, c);
	if (!p)
		return err_set(ENOMEM, "out of memory");
	*buf = p;
	*cap = c;
	return 0;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d)
		err_set(ENOMEM, "out of memory");
	return d;
}

void *xrealloc_array(void *p, size_t n, size_t size)
{
	void *q;

	if (size && n > SIZE_MAX / size) {
		err_set(ENOMEM, "out of memory");
		return NULL;
	}
	q = realloc(p, (n && size) ? n * size : 1);
	if (!q)
		err_set(ENOMEM, "out of memory");
	return q;
}

char *path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d;

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	d = strndup(path, (size_t)(slash - path));
	if (!d)
		err_set(ENOMEM, "out of memory");
	return d;
}

const char *path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* ".NAME.cowmap-journal" in the directory of @file_path. */
char *journal_path(const char *file_path)
{
	const char *base = path_basename(file_path);
	size_t dlen = (size_t)(base - file_path);
	size_t len = dlen + strlen(base) + sizeof(".") + sizeof(".cowmap-journal");
	char *j = malloc(len);

	if (!j) {
		err_set(ENOMEM, "out of memory");
		return NULL;
	}
	snprintf(j, len, "%.*s.%s.cowmap-journal", (int)dlen, file_path, base);
	return j;
}

static char *path_plus(const char *path, const char *suffix)
{
	size_t len = strlen(path) + strlen(suffix) + 1;
	char *t = malloc(len);

	if (!t) {
		err_set(ENOMEM, "out of memory");
		return NULL;
	}
	snprintf(t, len, "%s%s", path, suffix);
	return t;
}

char *journal_tmp_path(const char *jpath)
{
	return path_plus(jpath, ".new");
}

char *journal_links_path(const char *jpath)
{
	return path_plus(jpath, ".d");
}

int fsync_dir_fd(int dirfd)
{
	if (fsync(dirfd) < 0 && errno != EINVAL && errno != EROFS)
		return -errno;
	return 0;
}

int fsync_dir_of(const char *path)
{
	char *dir = path_dirname(path);
	int fd, ret;

	if (!dir)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		err_set(-ret, "%s: %s", dir, strerror(-ret));
		free(dir);
		return ret;
	}
	ret = fsync_dir_fd(fd);
	if (ret < 0)
		err_set(-ret, "fsync %s: %s", dir, strerror(-ret));
	close(fd);
	free(dir);
	return ret;
}

/*
 * Open @path without following a symbolic link in its last component:
 * a link planted where the file was expected must not redirect a write
 * (a privileged merge) to the file it points to.
 */
int open_nofollow(const char *path, int flags)
{
	int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd >= 0)
		return fd;
	if (errno == ELOOP && !lstat(path, &st) && S_ISLNK(st.st_mode))
		return err_set(ELOOP, "%s is a symbolic link; give the target path "
			       "(cowmap does not follow a link to the file it writes)", path);
	return err_set(errno, "%s: %s", path, strerror(errno));
}

/* The absolute path of @path with its directory resolved but not its last
 * component (which open_nofollow() then refuses if it is a link). */
char *real_target(const char *path)
{
	char *dir = path_dirname(path), *rdir, *p;
	const char *base = path_basename(path);
	size_t len;

	if (!dir)
		return NULL;
	rdir = realpath(dir, NULL);
	free(dir);
	if (!rdir) {
		err_set(errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		err_set(EISDIR, "%s: not a regular file", path);
		free(rdir);
		return NULL;
	}
	len = strlen(rdir) + strlen(base) + 2;
	p = malloc(len);
	if (p)
		snprintf(p, len, "%s/%s", strcmp(rdir, "/") ? rdir : "", base);
	else
		err_set(ENOMEM, "out of memory");
	free(rdir);
	return p;
}

/* Files owned by the caller, by the file's owner or by root are trusted
 * (root could write the file anyway); those of other users are not. */
bool owner_trusted(uid_t owner, uid_t file_owner)
{
	return owner == geteuid() || owner == file_owner || owner == 0;
}

/* The process's umask, read without changing it (umask(2) would race
 * with other threads creating files). */
mode_t current_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	unsigned int v;
	mode_t m;

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "Umask: %o", &v) == 1) {
				fclose(f);
				return (mode_t)v & 0777;
			}
		}
		fclose(f);
	}
	m = umask(022);
	umask(m);
	return m;
}

/*
 * Can a file in the directory of @near_path grow to @end bytes?  Checked
 * before a merge commits to writing there: the limit of RLIMIT_FSIZE
 * (without raising SIGXFSZ), then the filesystem's maximum file size,
 * probed by extending an anonymous, sparse file (no blocks allocated).
 */
int check_size_limit(const char *near_path, const char *file, uint64_t end)
{
	struct rlimit rl;
	char *dir;
	int fd, ret = 0;

	if (end > (uint64_t)INT64_MAX ||
	    (!getrlimit(RLIMIT_FSIZE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	     end > (uint64_t)rl.rlim_cur))
		return err_set(EFBIG, "%s: the changes end at byte %llu, beyond the file size "
			       "limit of this process (ulimit -f); nothing written", file,
			       (unsigned long long)end);
	dir = path_dirname(near_path);
	if (!dir)
		return -ENOMEM;
	fd = open_tmpfile_in(dir, path_basename(near_path), NULL);
	if (fd < 0) {
		free(dir);
		return fd;
	}
	if (ftruncate(fd, (off_t)end) < 0)
		ret = err_set(errno == EINVAL ? EFBIG : errno, "%s: the changes end at byte "
			      "%llu, beyond what the file system of %s allows: %s; nothing "
			      "written", file, (unsigned long long)end, dir, strerror(errno));
	close(fd);
	free(dir);
	return ret;
}

/*
 * An anonymous file in @dir: O_TMPFILE, or a named temporary file when
 * the filesystem lacks O_TMPFILE.  With @namep, the file is named (for a
 * later rename) and *namep receives its path; otherwise it is unlinked.
 */
int open_tmpfile_in(const char *dir, const char *hint, char **namep)
{
	size_t len;
	char *name;
	int fd;

	if (!namep) {
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return err_set(errno, "%s: cannot create a temporary file: %s",
				       dir, strerror(errno));
	}
	len = strlen(dir) + strlen(hint) + 32;
	name = malloc(len);
	if (!name)
		return err_set(ENOMEM, "out of memory");
	snprintf(name, len, "%s/.%s.XXXXXX", dir, hint);
	fd = mkostemp(name, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		err_set(e, "%s: cannot create a temporary file: %s", dir, strerror(e));
		free(name);
		return -e;
	}
	if (namep) {
		*namep = name;
	} else {
		unlink(name);
		free(name);
	}
	return fd;
}

/* ------------------------------------------------------------------------
 * Crash points (test builds only): COWMAP_TEST_CRASH_AT=N kills the process
 * at the N-th.
 */
#ifdef COWMAP_TEST_HOOKS
static int crash_inited;
static uint64_t crash_at;
static int crash_trace;
static uint64_t crash_count;

void crash_reset(void)
{
	crash_inited = 0;
	crash_count = 0;
}

uint64_t crash_points_passed(void)
{
	return crash_count;
}

bool test_no_memfd(void)
{
	const char *s = getenv("COWMAP_TEST_NO_MEMFD");

	return s && *s == '1';
}

void crash_point(const char *what)
{
	if (!crash_inited) {
		const char *s = getenv("COWMAP_TEST_CRASH_AT");
		const char *t = getenv("COWMAP_TEST_CRASH_TRACE");

		crash_at = s ? strtoull(s, NULL, 10) : 0;
		crash_trace = t && *t == '1';
		crash_inited = 1;
	}
	crash_count++;
	if (crash_trace) {
		char msg[128];
		int n = snprintf(msg, sizeof(msg), "cowmap crash point %llu: %s\n",
				 (unsigned long long)crash_count, what);

		if (write(2, msg, (size_t)MIN(n, (int)sizeof(msg) - 1)) < 0)
			crash_trace = 0;
	}
	if (crash_at && crash_count == crash_at)
		raise(SIGKILL);
}
#endif /* COWMAP_TEST_HOOKS */

/*
 * Every page of @p is about to be written: allocate them in one call, in
 * huge pages where the kernel has them, instead of one page fault per
 * 4 KiB inside read(): a log or journal of a big merge is hundreds of MiB,
 * read 5 to 15 times faster so where page faults are expensive (as in some
 * virtual machines).  Advice only: an older kernel without
 * MADV_POPULATE_WRITE (Linux 5.14) or without THP just faults as before.
 */
static void prefault(void *p, size_t len)
{
	madvise(p, len, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
	madvise(p, len, MADV_POPULATE_WRITE);
#endif
}

static int shrank(const char *name, uint64_t len)
{
	return err_set(EIO, "%s: shrank below its %llu bytes while it was read (another "
		       "program truncated it)", name, (unsigned long long)len);
}

/*
 * Copy the file into a sealed memfd and map that: the kernel copies page
 * cache pages straight into new shmem pages (a page written whole is not
 * zeroed first, as new anonymous memory is: half the memory traffic), and
 * the seals make the copy immutable and unshrinkable, so nothing changes
 * it under us and no access of it can SIGBUS.  1: not available here
 * (no memfd, sendfile or sealing, or a file size limit below @len, which
 * applies to a memfd too and would raise SIGXFSZ): read it the other way;
 * else 0 or -errno.
 */
static int read_sealed(int fd, const char *name, uint64_t len, const uint8_t **mapp)
{
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
	struct rlimit rl;
	off_t off = 0;
	int mfd, ret = 0;
	void *p;

	if (test_no_memfd() || getrlimit(RLIMIT_FSIZE, &rl) < 0 ||
	    (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < len))
		return 1;
	mfd = memfd_create("cowmap-read", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return 1;
	while (!ret && (uint64_t)off < len) {
		ssize_t n = sendfile(mfd, fd, &off, (size_t)MIN(len - (uint64_t)off, 1U << 30));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = off || (errno != EINVAL && errno != ENOSYS) ?
				err_set(errno, "%s: read: %s", name, strerror(errno)) : 1;
		else if (n == 0)
			ret = shrank(name, len);
	}
	if (!ret && fcntl(mfd, F_ADD_SEALS, seals) < 0)
		ret = 1;
	if (!ret) {
		p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED | MAP_POPULATE, mfd, 0);
		if (p == MAP_FAILED)
			ret = err_set(errno, "%s: cannot map %llu bytes to read it: %s", name,
				      (unsigned long long)len, strerror(errno));
		else
			*mapp = p;
	}
	close(mfd);
	return ret;
}

int read_whole(int fd, const char *name, uint64_t len, const uint8_t **mapp)
{
	uint8_t *p;
	int ret;

	if (len > SIZE_MAX)
		return err_set(EFBIG, "%s: too large to read", name);
	ret = read_sealed(fd, name, len, mapp);
	if (ret <= 0)
		return ret;
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return err_set(errno, "%s: cannot allocate %llu bytes to read it: %s", name,
			       (unsigned long long)len, strerror(errno));
	prefault(p, (size_t)len);
	ret = pread_full(fd, p, (size_t)len, 0);
	if (ret) {
		munmap(p, (size_t)len);
		if (ret == -ENODATA)
			return shrank(name, len);
		return err_set(-ret, "%s: read: %s", name, strerror(-ret));
	}
	mprotect(p, (size_t)len, PROT_READ);
	*mapp = p;
	return 0;
}
