// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * libcowmap-preload.so: the LD_PRELOAD shim behind 'cowmap run'.  Built
 * apart from libcowmap (it interposes mmap), self-contained: it speaks to
 * /dev/cowmap with the ioctls of <linux/cowmap.h> directly.
 *
 * Environment (set by cowmap run):
 *   COWMAP_RUN_FILES   "DEV:INO:HEXNAME[,DEV:INO:HEXNAME]...": the files to
 *                      redirect (st_dev, st_ino in decimal; HEXNAME the
 *                      hex-encoded name used in log names).
 *   COWMAP_RUN_LOGDIR  absolute directory for the logs.
 *
 * A MAP_SHARED mmap of a file whose st_dev/st_ino is listed, whatever path
 * or fd it came from, is made through a session instead: the first such
 * mmap in a process opens /dev/cowmap, binds it to the mmap's fd with a
 * log LOGDIR/NAME.PID.SESSION.cowlog (COWMAP_BIND_LOG: the kernel writes
 * everything to it when the session ends, even on SIGKILL), and maps the
 * device.  Later mmaps of the file in the process reuse the session.  A
 * forked child inherits the session (and shares it with its parent); a
 * program started by exec gets sessions of its own (the environment is
 * inherited, the session fds are close-on-exec).  If a session cannot be
 * made the mmap fails (never a silent plain shared mapping).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/cowmap.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_FILES 64

struct target {
	dev_t dev;
	ino_t ino;
	char name[NAME_MAX + 1];
	int fd;			/* the session (/dev/cowmap), -1 if none yet */
	dev_t rdev;		/* of that fd, to recognise it later */
	uint64_t id;
};

static struct target targets[MAX_FILES];
static int n_targets;
static char logdir[PATH_MAX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
static mmap_fn next_mmap;

static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	mmap_fn f = __atomic_load_n(&next_mmap, __ATOMIC_ACQUIRE);

	if (f)
		return f(addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static void say(const char *fmt, ...)
{
	char buf[PATH_MAX + 256];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "cowmap-preload[%d]: ", (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One "DEV:INO:HEXNAME" entry of [s, end). */
static bool parse_entry(const char *s, const char *end, struct target *t)
{
	unsigned long long dev, ino;
	const char *h;
	char *p;
	size_t n = 0;

	errno = 0;
	dev = strtoull(s, &p, 10);
	if (errno || *p != ':')
		return false;
	ino = strtoull(p + 1, &p, 10);
	if (errno || *p != ':')
		return false;
	for (h = p + 1; h + 1 < end && n < NAME_MAX; h += 2) {
		int a = hexval(h[0]), b = hexval(h[1]);

		if (a < 0 || b < 0)
			return false;
		t->name[n++] = (char)(a << 4 | b);
	}
	if (h != end || !n)
		return false;
	t->name[n] = '\0';
	if (strchr(t->name, '/'))
		return false;
	t->dev = (dev_t)dev;
	t->ino = (ino_t)ino;
	t->fd = -1;
	return true;
}

__attribute__((constructor)) static void preload_init(void)
{
	const char *files = getenv("COWMAP_RUN_FILES");
	const char *dir = getenv("COWMAP_RUN_LOGDIR");

	__atomic_store_n(&next_mmap, (mmap_fn)dlsym(RTLD_NEXT, "mmap"), __ATOMIC_RELEASE);
	if (!files || !*files)
		return;
	if (!dir || dir[0] != '/' || strlen(dir) >= sizeof(logdir)) {
		say("COWMAP_RUN_LOGDIR is not an absolute directory; mappings are not "
		    "redirected and will fail");
		n_targets = -1;
		return;
	}
	strcpy(logdir, dir);
	while (*files && n_targets < MAX_FILES) {
		const char *end = strchr(files, ',');

		if (!end)
			end = files + strlen(files);
		if (!parse_entry(files, end, &targets[n_targets])) {
			say("malformed COWMAP_RUN_FILES; mappings of the files will fail");
			n_targets = -1;
			return;
		}
		n_targets++;
		files = *end ? end + 1 : end;
	}
}

/* A session of @t still open in this process (fds can be closed under us). */
static bool session_alive(const struct target *t)
{
	struct cowmap_info info;
	struct stat st;

	if (t->fd < 0 || fstat(t->fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
	    st.st_rdev != t->rdev)
		return false;
	memset(&info, 0, sizeof(info));
	return ioctl(t->fd, COWMAP_IOC_INFO, &info) == 0 && info.id == t->id;
}

/* Make a session of @t bound to @fd with a log in logdir; -errno. */
static int new_session(struct target *t, int fd, const struct stat *st)
{
	char tmp[PATH_MAX], final[PATH_MAX];
	struct cowmap_bind b;
	struct stat dst;
	int dfd, lfd, err;

	dfd = open(COWMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (dfd < 0) {
		err = errno;
		say("%s: %s: %s", t->name, COWMAP_DEVICE_PATH, strerror(err));
		return -err;
	}
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.%d.XXXXXX", logdir, t->name,
		     (int)getpid()) >= (int)sizeof(tmp)) {
		close(dfd);
		say("%s: log path too long", t->name);
		return -ENAMETOOLONG;
	}
	lfd = mkostemp(tmp, O_CLOEXEC);
	if (lfd < 0) {
		err = errno;
		say("%s: cannot create a log in %s: %s", t->name, logdir, strerror(err));
		close(dfd);
		return -err;
	}
	/* mkostemp made it 0600, and so it stays: the log holds the file's
	 * old and new bytes, whatever the file's mode (a 0666 file can be
	 * private to a 0700 directory) and the umask. */
	memset(&b, 0, sizeof(b));
	b.fd = fd;
	b.log_fd = lfd;
	b.flags = COWMAP_BIND_LOG;
	if (ioctl(dfd, COWMAP_IOC_BIND, &b) < 0) {
		err = errno;
		say("%s: bind: %s", t->name, err == EOPNOTSUPP ?
		    "the file's filesystem is not supported by cowmap" : strerror(err));
		goto err_unlink;
	}
	if (snprintf(final, sizeof(final), "%s/%s.%d.%llu.cowlog", logdir, t->name,
		     (int)getpid(), (unsigned long long)b.id) >= (int)sizeof(final)) {
		err = ENAMETOOLONG;
		say("%s: log path too long", t->name);
		goto err_unlink;
	}
	if (rename(tmp, final) < 0) {
		err = errno;
		say("%s: rename %s to %s: %s", t->name, tmp, final, strerror(err));
		goto err_unlink;
	}
	close(lfd);		/* the session holds the log */
	t->fd = dfd;
	t->rdev = fstat(dfd, &dst) == 0 ? dst.st_rdev : 0;
	t->id = b.id;
	return 0;

err_unlink:
	close(dfd);
	close(lfd);
	unlink(tmp);
	return -err;
}

static struct target *find_target(int fd, struct stat *st)
{
	if (n_targets <= 0 || fstat(fd, st) < 0 || !S_ISREG(st->st_mode))
		return NULL;
	for (int i = 0; i < n_targets; i++)
		if (targets[i].dev == st->st_dev && targets[i].ino == st->st_ino)
			return &targets[i];
	return NULL;
}

static void *cowmap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int type = flags & MAP_TYPE;
	struct target *t;
	struct stat st;
	void *p;
	int err;

	if (fd < 0 || (flags & MAP_ANONYMOUS) ||
	    (type != MAP_SHARED && type != MAP_SHARED_VALIDATE))
		return sys_mmap(addr, len, prot, flags, fd, off);
	if (n_targets < 0) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	t = find_target(fd, &st);
	if (!t)
		return sys_mmap(addr, len, prot, flags, fd, off);
	/* As mmap(2) of the file would: a writable shared mapping needs a
	 * file open for writing (the device is). */
	if ((prot & PROT_WRITE) && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY) {
		errno = EACCES;
		return MAP_FAILED;
	}

	pthread_mutex_lock(&lock);
	if (!session_alive(t)) {
		/* None yet, or the program closed our fd (its number may be in
		 * use for something else now: leave it alone). */
		t->fd = -1;
		err = new_session(t, fd, &st);
		if (err) {
			pthread_mutex_unlock(&lock);
			errno = -err;
			return MAP_FAILED;
		}
	}
	p = sys_mmap(addr, len, prot, flags, t->fd, off);
	err = errno;
	pthread_mutex_unlock(&lock);
	errno = err;
	return p;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return cowmap_mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return cowmap_mmap(addr, len, prot, flags, fd, (off_t)off);
}

/* A child of fork(2) must not inherit a held lock. */
static void before_fork(void)
{
	pthread_mutex_lock(&lock);
}

static void after_fork(void)
{
	pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void preload_atfork(void)
{
	pthread_atfork(before_fork, after_fork, after_fork);
}
