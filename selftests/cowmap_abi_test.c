// SPDX-License-Identifier: GPL-2.0
/*
 * ABI tests of /dev/cowmap sessions: every malformed ioctl argument gets the
 * errno <linux/cowmap.h> documents, as uffd-unit-tests' test_uffd_api does
 * for userfaultfd, and a refused call changes nothing.
 *
 * Backing files live in $COWMAP_SCRATCH (ext4).  Everything is skipped when
 * the module is not loaded or the variable is unset.
 */
#include <stddef.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <linux/magic.h>

#include "cowmap_harness.h"
#include "lib/util.h"

#define NPAGES		16
#define FILE_SIZE	PGS(NPAGES)

FIXTURE(abi) {
	char *dir;		/* private directory in $COWMAP_SCRATCH */
	char *path;		/* the backing file: NPAGES random pages */
	char *tmpfs;		/* a tmpfs mounted by the test, or NULL */
	uint8_t *data;		/* its contents */
	int fd;			/* O_RDONLY */
	int dev;		/* an unbound session */
};

FIXTURE_SETUP(abi)
{
	const char *scratch, *why;

	self->fd = -1;
	self->dev = -1;
	CM_SKIP_IF_NO_DEVICE();
	scratch = cm_scratch_dir("COWMAP_SCRATCH", &why);
	if (!scratch)
		CM_SETUP_SKIP("$COWMAP_SCRATCH %s: no ext4 scratch directory", why);
	if (sysconf(_SC_PAGESIZE) != PG)
		CM_SETUP_SKIP("the tables assume %lu-byte pages", PG);

	self->dir = cm_mkdtemp(scratch, "cowmap-abi");
	ASSERT_NE(NULL, self->dir);
	/* From here on the teardown cleans up, whatever fails. */
	_metadata->setup_completed = true;

	self->data = malloc(FILE_SIZE);
	ASSERT_NE(NULL, self->data);
	cm_fill(1, self->data, FILE_SIZE);
	self->path = cm_path(self->dir, "backing");
	self->fd = cm_create(self->path, self->data, FILE_SIZE);
	ASSERT_LE(0, self->fd);
	close(self->fd);
	self->fd = open(self->path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
	self->dev = cm_open_dev();
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", COWMAP_DEVICE_PATH,
				       strerror(errno));
}

FIXTURE_TEARDOWN(abi)
{
	if (self->dev >= 0)
		close(self->dev);
	if (self->fd >= 0)
		close(self->fd);
	if (self->tmpfs) {
		umount2(self->tmpfs, MNT_DETACH);
		free(self->tmpfs);
	}
	cm_rm_rf(self->dir);
	free(self->dir);
	free(self->path);
	free(self->data);
}

/* A new session bound to the backing file. */
static int bound_session(FIXTURE_DATA(abi) *self)
{
	return cm_session(self->fd, -1, 0);
}

/* A new file in the test directory, opened with @flags. */
static int new_file(FIXTURE_DATA(abi) *self, const char *name, size_t len,
		    int flags)
{
	char *p = cm_path(self->dir, name);
	int fd = cm_create(p, self->data, len);

	if (fd >= 0) {
		close(fd);
		fd = open(p, flags | O_CLOEXEC);
	}
	free(p);
	return fd;
}

/*
 * An fd number that is not open, and high enough that opening other files
 * before it is used does not make it valid again.
 */
static int closed_fd(void)
{
	int fd = fcntl(0, F_DUPFD_CLOEXEC, 900);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* A tmpfs of our own (or /dev/shm if mounting is not allowed), or NULL. */
static const char *tmpfs_dir(FIXTURE_DATA(abi) *self)
{
	struct statfs sf;
	char *p;

	if (self->tmpfs)
		return self->tmpfs;
	p = cm_path(self->dir, "tmpfs");
	if (!mkdir(p, 0755) && !mount("cowmap-test", p, "tmpfs", 0, "size=1m")) {
		self->tmpfs = p;
		return p;
	}
	free(p);
	if (!statfs("/dev/shm", &sf) && sf.f_type == TMPFS_MAGIC)
		return "/dev/shm";
	return NULL;
}

/* A regular file on @dir's filesystem, unlinked at once. */
static int unlinked_file_in(const char *dir, int flags)
{
	char *p;
	int fd;

	if (!dir || asprintf(&p, "%s/cowmap-abi.XXXXXX", dir) < 0)
		return -1;
	fd = mkostemp(p, O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "cowmap", 6) != 6) {
			close(fd);
			fd = -1;
		}
		if (fd >= 0 && (flags & O_ACCMODE) != O_RDWR) {
			int fd2 = open(p, flags | O_CLOEXEC);

			close(fd);
			fd = fd2;
		}
		unlink(p);
	}
	free(p);
	return fd;
}

/* ------------------------------------------------------------------------
 * COWMAP_IOC_BIND: the backing fd
 */

enum backing_kind {
	BK_NEG, BK_BIG, BK_CLOSED, BK_OPATH, BK_DIR, BK_PIPE, BK_DEVNULL,
	BK_SOCKET, BK_COWMAP, BK_WRONLY, BK_PROC, BK_SYSFS, BK_TMPFS,
	BK_DEVTMPFS, BK_MEMFD, BK_RDWR, BK_RDONLY,
};

static const struct {
	const char *name;
	enum backing_kind kind;
	int err;	/* expected errno, 0: bind succeeds */
} backing_cases[] = {
	{ "fd -1",			BK_NEG,		EBADF },
	{ "fd INT_MAX",			BK_BIG,		EBADF },
	{ "closed fd",			BK_CLOSED,	EBADF },
	{ "O_PATH fd",			BK_OPATH,	EBADF },
	{ "directory",			BK_DIR,		EISDIR },
	{ "pipe",			BK_PIPE,	EINVAL },
	{ "/dev/null",			BK_DEVNULL,	EINVAL },
	{ "socket",			BK_SOCKET,	EINVAL },
	{ "/dev/cowmap itself",		BK_COWMAP,	EINVAL },
	{ "O_WRONLY ext4 file",		BK_WRONLY,	EACCES },
	{ "/proc file",			BK_PROC,	EOPNOTSUPP },
	{ "sysfs file",			BK_SYSFS,	EOPNOTSUPP },
	{ "tmpfs file",			BK_TMPFS,	EOPNOTSUPP },
	{ "devtmpfs file",		BK_DEVTMPFS,	EOPNOTSUPP },
	{ "memfd",			BK_MEMFD,	EOPNOTSUPP },
	{ "O_RDWR ext4 file",		BK_RDWR,	0 },
	{ "O_RDONLY ext4 file",		BK_RDONLY,	0 },
};

/* Returns the fd to pass; *@close_it says whether it must be closed. */
static int make_backing(FIXTURE_DATA(abi) *self, enum backing_kind k,
			bool *close_it)
{
	int p[2], fd = -1;

	*close_it = true;
	switch (k) {
	case BK_NEG:
		*close_it = false;
		return -1;
	case BK_BIG:
		*close_it = false;
		return INT_MAX;
	case BK_CLOSED:
		*close_it = false;
		return closed_fd();
	case BK_OPATH:
		return open(self->path, O_PATH | O_CLOEXEC);
	case BK_DIR:
		return open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	case BK_PIPE:
		if (pipe2(p, O_CLOEXEC))
			return -1;
		close(p[1]);
		return p[0];
	case BK_DEVNULL:
		return open("/dev/null", O_RDONLY | O_CLOEXEC);
	case BK_SOCKET:
		return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	case BK_COWMAP:
		return cm_open_dev();
	case BK_WRONLY:
		return open(self->path, O_WRONLY | O_CLOEXEC);
	case BK_PROC:
		return open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	case BK_SYSFS:
		return open(MODPARAM_DIR "max_session_pages", O_RDONLY | O_CLOEXEC);
	case BK_TMPFS:
		return unlinked_file_in(tmpfs_dir(self), O_RDONLY);
	case BK_DEVTMPFS: {
		struct statfs sf;

		if (statfs("/dev", &sf) || sf.f_type != TMPFS_MAGIC)
			return -1;	/* /dev is not devtmpfs here */
		return unlinked_file_in("/dev", O_RDONLY);
	}
	case BK_MEMFD:
		fd = syscall(SYS_memfd_create, "cowmap-abi", 0);
		if (fd >= 0 && ftruncate(fd, PG)) {
			close(fd);
			fd = -1;
		}
		return fd;
	case BK_RDWR:
		return open(self->path, O_RDWR | O_CLOEXEC);
	case BK_RDONLY:
		return open(self->path, O_RDONLY | O_CLOEXEC);
	}
	return -1;
}

TEST_F(abi, bind_backing_fd)
{
	for (size_t i = 0; i < ARRAY_SIZE(backing_cases); i++) {
		struct cowmap_info in;
		bool close_it;
		int dev, fd, err;

		fd = make_backing(self, backing_cases[i].kind, &close_it);
		if (close_it && fd < 0) {
			/* The VM has everything each case needs: a failure there. */
			EXPECT_EQ(NULL, getenv("COWMAP_VM"))
				TH_LOG("case '%s': cannot be set up in the VM (%s)",
				       backing_cases[i].name, strerror(errno));
			TH_LOG("case '%s': cannot be set up here (%s), skipped",
			       backing_cases[i].name, strerror(errno));
			continue;
		}
		dev = cm_open_dev();
		ASSERT_LE(0, dev);
		err = cm_bind(dev, fd, -1, 0, 0, NULL);
		EXPECT_EQ(-backing_cases[i].err, err)
			TH_LOG("case '%s': bind gave %s, want %s",
			       backing_cases[i].name, strerror(-err),
			       strerror(backing_cases[i].err));
		if (backing_cases[i].err) {
			/* Refused: the session is still unbound and usable. */
			EXPECT_EQ(-ENODEV, cm_info(dev, &in))
				TH_LOG("case '%s'", backing_cases[i].name);
			EXPECT_EQ(0, cm_bind(dev, self->fd, -1, 0, 0, NULL))
				TH_LOG("case '%s': bind after refusal",
				       backing_cases[i].name);
		}
		EXPECT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(FILE_SIZE, in.size) TH_LOG("case '%s'", backing_cases[i].name);
		close(dev);
		if (close_it)
			close(fd);
	}
}

/* ------------------------------------------------------------------------
 * COWMAP_IOC_BIND: the log fd
 */

enum log_kind {
	LG_NEG, LG_CLOSED, LG_NOT_EMPTY, LG_RDONLY, LG_DIRECT, LG_SAME_FD,
	LG_SAME_INODE, LG_HARDLINK, LG_PIPE, LG_DEVNULL, LG_DIR,
	LG_WRONLY, LG_RDWR, LG_APPEND, LG_TMPFS,
};

static const struct {
	const char *name;
	enum log_kind kind;
	int err;
} log_cases[] = {
	{ "log fd -1",				LG_NEG,		EBADF },
	{ "closed log fd",			LG_CLOSED,	EBADF },
	{ "log not empty",			LG_NOT_EMPTY,	ENOTEMPTY },
	{ "log O_RDONLY",			LG_RDONLY,	EINVAL },
	{ "log O_DIRECT",			LG_DIRECT,	EINVAL },
	{ "log fd == backing fd",		LG_SAME_FD,	EINVAL },
	{ "log = backing inode, O_RDWR",	LG_SAME_INODE,	EINVAL },
	{ "log = hard link of backing",		LG_HARDLINK,	EINVAL },
	{ "log is a pipe",			LG_PIPE,	EINVAL },
	{ "log is /dev/null",			LG_DEVNULL,	EINVAL },
	{ "log is a directory",			LG_DIR,		EINVAL },
	{ "log O_WRONLY empty",			LG_WRONLY,	0 },
	{ "log O_RDWR empty",			LG_RDWR,	0 },
	{ "log O_APPEND empty",			LG_APPEND,	0 },
	{ "log on tmpfs",			LG_TMPFS,	0 },
};

/*
 * Sets *@backing (the backing fd to use) and returns the log fd.  The
 * same-inode cases use an empty backing file, so that only the inode
 * check can refuse them.
 */
static int make_log(FIXTURE_DATA(abi) *self, enum log_kind k, int *backing,
		    int *extra)
{
	char *p;
	int p2[2], fd = -1;

	*backing = self->fd;
	*extra = -1;
	switch (k) {
	case LG_NEG:
		return -1;
	case LG_CLOSED:
		return closed_fd();
	case LG_NOT_EMPTY:
		return new_file(self, "log-not-empty", 1, O_WRONLY);
	case LG_RDONLY:
		return new_file(self, "log-rdonly", 0, O_RDONLY);
	case LG_DIRECT:
		return new_file(self, "log-direct", 0, O_WRONLY | O_DIRECT);
	case LG_SAME_FD:
		return self->fd;
	case LG_SAME_INODE:
		*extra = *backing = new_file(self, "empty-backing", 0, O_RDONLY);
		return new_file(self, "empty-backing", 0, O_RDWR);
	case LG_HARDLINK: {
		char *src = cm_path(self->dir, "empty-backing2");
		char *dst = cm_path(self->dir, "hardlink");

		*extra = *backing = new_file(self, "empty-backing2", 0, O_RDONLY);
		if (!link(src, dst))
			fd = open(dst, O_WRONLY | O_CLOEXEC);
		free(src);
		free(dst);
		return fd;
	}
	case LG_PIPE:
		if (pipe2(p2, O_CLOEXEC))
			return -1;
		close(p2[0]);
		return p2[1];
	case LG_DEVNULL:
		return open("/dev/null", O_WRONLY | O_CLOEXEC);
	case LG_DIR:
		return open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	case LG_WRONLY:
		return new_file(self, "log-wronly", 0, O_WRONLY);
	case LG_RDWR:
		return new_file(self, "log-rdwr", 0, O_RDWR);
	case LG_APPEND:
		return new_file(self, "log-append", 0, O_WRONLY | O_APPEND);
	case LG_TMPFS: {
		const char *d = tmpfs_dir(self);

		if (!d || asprintf(&p, "%s/cowmap-abi-log.XXXXXX", d) < 0)
			return -1;
		fd = mkostemp(p, O_CLOEXEC);
		unlink(p);
		free(p);
		return fd;
	}
	}
	return -1;
}

TEST_F(abi, bind_log_fd)
{
	for (size_t i = 0; i < ARRAY_SIZE(log_cases); i++) {
		enum log_kind k = log_cases[i].kind;
		struct cowmap_info in;
		off_t before = -1, after;
		int dev, log_fd, backing, extra, err;

		log_fd = make_log(self, k, &backing, &extra);
		if (log_fd < 0 && k != LG_NEG && k != LG_CLOSED) {
			/* The VM has everything each case needs: a failure there. */
			EXPECT_EQ(NULL, getenv("COWMAP_VM"))
				TH_LOG("case '%s': cannot be set up in the VM (%s)",
				       log_cases[i].name, strerror(errno));
			TH_LOG("case '%s': cannot be set up here (%s), skipped",
			       log_cases[i].name, strerror(errno));
			if (extra >= 0)
				close(extra);
			continue;
		}
		ASSERT_LE(0, backing) TH_LOG("case '%s'", log_cases[i].name);
		if (k != LG_NEG && k != LG_CLOSED)
			before = cm_fsize(log_fd);
		dev = cm_open_dev();
		ASSERT_LE(0, dev);
		err = cm_bind(dev, backing, log_fd, COWMAP_BIND_LOG, 0, NULL);
		EXPECT_EQ(-log_cases[i].err, err)
			TH_LOG("case '%s': bind gave %s, want %s",
			       log_cases[i].name, strerror(-err),
			       strerror(log_cases[i].err));
		if (before >= 0 && k != LG_PIPE && k != LG_DEVNULL && k != LG_DIR) {
			after = cm_fsize(log_fd);
			if (log_cases[i].err) {
				/* Refused: the log was not written to. */
				EXPECT_EQ(before, after)
					TH_LOG("case '%s'", log_cases[i].name);
			} else {
				/* Accepted: the header is written at once. */
				EXPECT_LE((off_t)sizeof(struct cowmap_log_header),
					  after) TH_LOG("case '%s'", log_cases[i].name);
				EXPECT_EQ(0, cm_info(dev, &in));
				EXPECT_EQ(COWMAP_BIND_LOG, in.flags);
			}
		}
		if (log_cases[i].err) {
			EXPECT_EQ(-ENODEV, cm_info(dev, &in))
				TH_LOG("case '%s'", log_cases[i].name);
			/* Still bindable, without a log. */
			EXPECT_EQ(0, cm_bind(dev, self->fd, -1, 0, 0, NULL))
				TH_LOG("case '%s': bind after refusal",
				       log_cases[i].name);
			EXPECT_EQ(0, cm_info(dev, &in));
			EXPECT_EQ(0, in.flags);
		}
		close(dev);
		if (log_fd >= 0 && k != LG_SAME_FD && k != LG_CLOSED)
			close(log_fd);
		if (extra >= 0)
			close(extra);
	}
}

/* Without COWMAP_BIND_LOG the log_fd field is not looked at. */
TEST_F(abi, bind_log_fd_ignored_without_flag)
{
	struct cowmap_info in;
	struct cowmap_drain d = { 0 };

	ASSERT_EQ(0, cm_bind(self->dev, self->fd, -12345, 0, 0, NULL));
	ASSERT_EQ(0, cm_info(self->dev, &in));
	EXPECT_EQ(0, in.flags);
	/* No log bound. */
	EXPECT_EQ(-EBADFD, cm_ioctl(self->dev, COWMAP_IOC_DRAIN, &d));
}

/* ------------------------------------------------------------------------
 * COWMAP_IOC_BIND: flags, reserved fields, ring sizes
 */

static const struct {
	const char *name;
	uint32_t flags;
	uint64_t reserved0, reserved1;
	uint32_t ring;
	int err;
	uint32_t want_ring;	/* INFO.ring_size when accepted */
} bind_arg_cases[] = {
	{ "flags bit 1",	1U << 1, 0, 0, 0, EINVAL, 0 },
	{ "flags bit 31",	1U << 31, 0, 0, 0, EINVAL, 0 },
	{ "flags all",		~0U, 0, 0, 0, EINVAL, 0 },
	{ "reserved[0]",	0, 1, 0, 0, EINVAL, 0 },
	{ "reserved[1]",	0, 0, 1ULL << 63, 0, EINVAL, 0 },
	{ "ring 1",		0, 0, 0, 1, EINVAL, 0 },
	{ "ring 3",		0, 0, 0, 3, EINVAL, 0 },
	{ "ring 8",		0, 0, 0, 8, EINVAL, 0 },
	{ "ring 15",		0, 0, 0, 15, EINVAL, 0 },
	{ "ring 17",		0, 0, 0, 17, EINVAL, 0 },
	{ "ring 24",		0, 0, 0, 24, EINVAL, 0 },
	{ "ring 1000",		0, 0, 0, 1000, EINVAL, 0 },
	{ "ring 1<<21",		0, 0, 0, 1U << 21, EINVAL, 0 },
	{ "ring (1<<20)+1",	0, 0, 0, (1U << 20) + 1, EINVAL, 0 },
	{ "ring 1<<31",		0, 0, 0, 1U << 31, EINVAL, 0 },
	{ "ring ~0",		0, 0, 0, ~0U, EINVAL, 0 },
	{ "ring 0 (default)",	0, 0, 0, 0, 0, COWMAP_RING_DEFAULT },
	{ "ring 16",		0, 0, 0, 16, 0, 16 },
	{ "ring 32",		0, 0, 0, 32, 0, 32 },
	{ "ring 1024",		0, 0, 0, 1024, 0, 1024 },
	{ "ring 1<<20",		0, 0, 0, 1U << 20, 0, 1U << 20 },
};

TEST_F(abi, bind_args)
{
	for (size_t i = 0; i < ARRAY_SIZE(bind_arg_cases); i++) {
		struct cowmap_bind b = {
			.fd = self->fd,
			.log_fd = -1,
			.flags = bind_arg_cases[i].flags,
			.ring_size = bind_arg_cases[i].ring,
			.reserved = { bind_arg_cases[i].reserved0,
				      bind_arg_cases[i].reserved1 },
		};
		struct cowmap_info in;
		int dev = cm_open_dev(), err;

		ASSERT_LE(0, dev);
		err = cm_ioctl(dev, COWMAP_IOC_BIND, &b);
		EXPECT_EQ(-bind_arg_cases[i].err, err)
			TH_LOG("case '%s': %s", bind_arg_cases[i].name,
			       strerror(-err));
		if (!bind_arg_cases[i].err) {
			EXPECT_NE(0, b.id) TH_LOG("case '%s'", bind_arg_cases[i].name);
			EXPECT_EQ(FILE_SIZE, b.size);
			EXPECT_EQ(0, b.reserved[0]);
			EXPECT_EQ(0, b.reserved[1]);
			ASSERT_EQ(0, cm_info(dev, &in));
			EXPECT_EQ(bind_arg_cases[i].want_ring, in.ring_size)
				TH_LOG("case '%s'", bind_arg_cases[i].name);
		} else {
			EXPECT_EQ(-ENODEV, cm_info(dev, &in))
				TH_LOG("case '%s'", bind_arg_cases[i].name);
			EXPECT_EQ(0, cm_bind(dev, self->fd, -1, 0, 0, NULL));
		}
		close(dev);
	}
}

/* A refused second bind leaves the first binding as it was. */
TEST_F(abi, second_bind)
{
	struct cowmap_bind b1;
	struct cowmap_info in;
	struct stat st;
	char *other_path = cm_path(self->dir, "other");
	uint8_t other[PG];
	int other_fd, log_fd;
	volatile uint8_t *m;

	memset(other, 'o', sizeof(other));
	other_fd = cm_create(other_path, other, sizeof(other));
	ASSERT_LE(0, other_fd);
	log_fd = new_file(self, "second-bind-log", 0, O_WRONLY);
	ASSERT_LE(0, log_fd);

	ASSERT_EQ(0, cm_bind(self->dev, self->fd, -1, 0, 64, &b1));
	EXPECT_EQ(-EBUSY, cm_bind(self->dev, other_fd, -1, 0, 0, NULL));
	EXPECT_EQ(-EBUSY, cm_bind(self->dev, self->fd, -1, 0, 0, NULL));
	EXPECT_EQ(-EBUSY, cm_bind(self->dev, other_fd, log_fd, COWMAP_BIND_LOG,
				  16, NULL));
	/* The refused bind with a log did not write to it. */
	EXPECT_EQ(0, cm_fsize(log_fd));

	ASSERT_EQ(0, cm_info(self->dev, &in));
	ASSERT_EQ(0, fstat(self->fd, &st));
	EXPECT_EQ(b1.id, in.id);
	EXPECT_EQ((uint64_t)st.st_ino, in.ino);
	EXPECT_EQ(FILE_SIZE, in.size);
	EXPECT_EQ(64, in.ring_size);
	EXPECT_EQ(0, in.flags);

	/* The mapping shows the first file, and works. */
	m = cm_map(self->dev, 0, FILE_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_EQ(0, memcmp((void *)m, self->data, FILE_SIZE));
	m[7] = self->data[7] ^ 0xff;
	EXPECT_EQ(self->data[7] ^ 0xff, m[7]);
	ASSERT_EQ(0, cm_info(self->dev, &in));
	EXPECT_EQ(1, in.private_pages);
	munmap((void *)m, FILE_SIZE);
	close(log_fd);
	close(other_fd);
	free(other_path);
}

/* ------------------------------------------------------------------------
 * Bad user pointers
 */

enum ptr_kind { P_NULL, P_UNMAPPED, P_STRADDLE, P_RDONLY };
static const char *const ptr_names[] = {
	"NULL", "unmapped", "straddling the end of a mapping", "read-only",
};

struct ptrs {
	uint8_t *area;	/* 3 pages: RW, RO, unmapped */
};

static int ptrs_init(struct ptrs *p)
{
	p->area = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->area == MAP_FAILED)
		return -1;
	memset(p->area, 0, 2 * PG);
	if (mprotect(p->area + PG, PG, PROT_READ) || munmap(p->area + 2 * PG, PG))
		return -1;
	return 0;
}

/* A pointer to a structure of @size bytes of kind @k. */
static void *ptr_of(struct ptrs *p, enum ptr_kind k, size_t size)
{
	switch (k) {
	case P_NULL:
		return NULL;
	case P_UNMAPPED:
		return p->area + 2 * PG;
	case P_STRADDLE:
		/* Starts in the read-only page, ends in the unmapped one. */
		return p->area + 3 * PG - size / 2;
	case P_RDONLY:
		return p->area + PG;
	}
	return NULL;
}

TEST_F(abi, bad_pointers)
{
	static const struct {
		const char *name;
		unsigned long cmd;
		size_t size;
		bool bound;
	} cmds[] = {
		{ "VERSION (unbound)", COWMAP_IOC_VERSION, sizeof(struct cowmap_version), false },
		{ "VERSION (bound)", COWMAP_IOC_VERSION, sizeof(struct cowmap_version), true },
		{ "BIND", COWMAP_IOC_BIND, sizeof(struct cowmap_bind), false },
		{ "INFO", COWMAP_IOC_INFO, sizeof(struct cowmap_info), true },
		{ "DIFF", COWMAP_IOC_DIFF, sizeof(struct cowmap_diff), true },
		{ "DRAIN", COWMAP_IOC_DRAIN, sizeof(struct cowmap_drain), true },
		{ "DISCARD", COWMAP_IOC_DISCARD, sizeof(struct cowmap_range), true },
	};
	struct ptrs p;
	int log_fd;

	ASSERT_EQ(0, ptrs_init(&p));
	log_fd = new_file(self, "bad-pointers-log", 0, O_WRONLY);
	ASSERT_LE(0, log_fd);

	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		/* Read-only memory only faults for output (VERSION, INFO). */
		enum ptr_kind last = cmds[i].cmd == COWMAP_IOC_VERSION ||
				     cmds[i].cmd == COWMAP_IOC_INFO ?
				     P_RDONLY : P_STRADDLE;

		for (enum ptr_kind k = P_NULL; k <= last; k++) {
			struct cowmap_info in0, in1;
			volatile uint8_t *m;
			off_t log_size;
			int dev, err;

			dev = cm_open_dev();
			ASSERT_LE(0, dev);
			if (cmds[i].bound) {
				ASSERT_EQ(0, cm_bind(dev, self->fd, log_fd,
						     COWMAP_BIND_LOG, 0, NULL));
				/* One changed page: DIFF/DRAIN have work. */
				m = cm_map(dev, 0, FILE_SIZE, PROT_READ | PROT_WRITE);
				ASSERT_NE(MAP_FAILED, m);
				m[1] ^= 0x55;
				munmap((void *)m, FILE_SIZE);
				ASSERT_EQ(0, cm_info(dev, &in0));
			}
			log_size = cm_fsize(log_fd);
			err = cm_ioctl(dev, cmds[i].cmd, ptr_of(&p, k, cmds[i].size));
			EXPECT_EQ(-EFAULT, err)
				TH_LOG("%s with a %s pointer: %s", cmds[i].name,
				       ptr_names[k], strerror(-err));
			if (cmds[i].bound) {
				/* Nothing drained, discarded or changed. */
				ASSERT_EQ(0, cm_info(dev, &in1));
				EXPECT_EQ(in0.private_pages, in1.private_pages)
					TH_LOG("%s, %s", cmds[i].name, ptr_names[k]);
				EXPECT_EQ(in0.undrained_pages, in1.undrained_pages)
					TH_LOG("%s, %s", cmds[i].name, ptr_names[k]);
				EXPECT_EQ(log_size, cm_fsize(log_fd))
					TH_LOG("%s, %s", cmds[i].name, ptr_names[k]);
			} else if (cmds[i].cmd == COWMAP_IOC_BIND) {
				EXPECT_EQ(-ENODEV, cm_info(dev, &in1))
					TH_LOG("BIND with a %s pointer bound the session",
					       ptr_names[k]);
			}
			close(dev);
			/* The next bound session needs an empty log. */
			if (cmds[i].bound) {
				close(log_fd);
				log_fd = new_file(self, "bad-pointers-log", 0,
						  O_WRONLY | O_TRUNC);
				ASSERT_LE(0, log_fd);
			}
		}
	}
	close(log_fd);
	munmap(p.area, 2 * PG);
}

/* DIFF's output buffer, and read(2)'s buffer. */
TEST_F(abi, bad_buffers)
{
	struct ptrs p;
	volatile uint8_t *m;
	int dev;

	ASSERT_EQ(0, ptrs_init(&p));
	dev = bound_session(self);
	ASSERT_LE(0, dev);
	m = cm_map(dev, 0, FILE_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	m[PG + 3] ^= 1;

	for (enum ptr_kind k = P_NULL; k <= P_RDONLY; k++) {
		uint8_t *buf = k == P_STRADDLE ? p.area + 2 * PG - 8 :
			       ptr_of(&p, k, 16);
		struct cowmap_diff d = {
			.buf = (uintptr_t)buf, .buf_len = COWMAP_DIFF_MIN_BUF,
		};
		struct cowmap_info in;

		EXPECT_EQ(-EFAULT, cm_ioctl(dev, COWMAP_IOC_DIFF, &d))
			TH_LOG("DIFF into a %s buffer", ptr_names[k]);
		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(1, in.undrained_pages);
	}

	/*
	 * read(2) of a pending event into a bad buffer.  The event is gone
	 * after a faulting copy, so make a new one for each read.
	 */
	ASSERT_EQ(0, cm_set_nonblock(dev, true));
	errno = 0;
	EXPECT_EQ(-1, syscall(SYS_read, dev, NULL, sizeof(struct cowmap_event)));
	EXPECT_EQ(EFAULT, errno);
	m[PGS(2)] ^= 1;
	errno = 0;
	EXPECT_EQ(-1, read(dev, p.area + 2 * PG, sizeof(struct cowmap_event)));
	EXPECT_EQ(EFAULT, errno);

	munmap((void *)m, FILE_SIZE);
	close(dev);
	munmap(p.area, 2 * PG);
}

/*
 * A call that fails with EFAULT only when its result is copied out has
 * still been refused: the caller cannot tell it happened.  Check that it
 * did not (the read-only page takes the input, refuses the output).
 */
TEST_F(abi, efault_on_output_changes_nothing)
{
	struct ptrs p;
	struct cowmap_info in;
	volatile uint8_t *m;
	uint8_t *ro;
	int dev, log_fd;

	ASSERT_EQ(0, ptrs_init(&p));
	ro = p.area + PG;

	/* BIND: input readable, output not. */
	ASSERT_EQ(0, mprotect(ro, PG, PROT_READ | PROT_WRITE));
	*(struct cowmap_bind *)ro = (struct cowmap_bind){ .fd = self->fd };
	ASSERT_EQ(0, mprotect(ro, PG, PROT_READ));
	EXPECT_EQ(-EFAULT, cm_ioctl(self->dev, COWMAP_IOC_BIND, ro));
	EXPECT_EQ(-ENODEV, cm_info(self->dev, &in))
		TH_LOG("BIND returned EFAULT but bound the session");

	/* DISCARD: the pages must still be there. */
	dev = bound_session(self);
	ASSERT_LE(0, dev);
	m = cm_map(dev, 0, FILE_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	m[0] ^= 1;
	ASSERT_EQ(0, mprotect(ro, PG, PROT_READ | PROT_WRITE));
	*(struct cowmap_range *)ro = (struct cowmap_range){ .flags = COWMAP_RANGE_ALL };
	ASSERT_EQ(0, mprotect(ro, PG, PROT_READ));
	EXPECT_EQ(-EFAULT, cm_ioctl(dev, COWMAP_IOC_DISCARD, ro));
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(1, in.private_pages)
		TH_LOG("DISCARD returned EFAULT but dropped the pages");
	EXPECT_EQ(self->data[0] ^ 1, m[0]);

	/* DRAIN (DRAIN_FD into a new log): nothing drained, nothing written. */
	log_fd = new_file(self, "efault-drain-log", 0, O_WRONLY);
	ASSERT_LE(0, log_fd);
	ASSERT_EQ(0, mprotect(ro, PG, PROT_READ | PROT_WRITE));
	*(struct cowmap_drain *)ro = (struct cowmap_drain){
		.log_fd = log_fd, .flags = COWMAP_DRAIN_FD,
	};
	ASSERT_EQ(0, mprotect(ro, PG, PROT_READ));
	EXPECT_EQ(-EFAULT, cm_ioctl(dev, COWMAP_IOC_DRAIN, ro));
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(1, in.undrained_pages)
		TH_LOG("DRAIN returned EFAULT but drained");
	EXPECT_EQ(0, cm_fsize(log_fd));
	close(log_fd);
	munmap((void *)m, FILE_SIZE);
	close(dev);
	munmap(p.area, 2 * PG);
}

/* ------------------------------------------------------------------------
 * Structure sizes taken from the ioctl number
 */

#define IOC_SIZED(cmd, size) \
	_IOC(_IOC_DIR(cmd), _IOC_TYPE(cmd), _IOC_NR(cmd), (size))

/* In/out structures: the kernel reads the caller's whole structure. */
TEST_F(abi, struct_size_in)
{
	static const struct {
		const char *name;
		unsigned long cmd;
	} cmds[] = {
		{ "BIND", COWMAP_IOC_BIND },
		{ "DIFF", COWMAP_IOC_DIFF },
		{ "DRAIN", COWMAP_IOC_DRAIN },
		{ "DISCARD", COWMAP_IOC_DISCARD },
	};
	static const size_t extra[] = { 8, 64, 4096 };
	static const size_t fewer[] = { 8, 1 };
	uint8_t *diffbuf = malloc(COWMAP_DIFF_MIN_BUF);
	uint8_t *arg = calloc(1, 16384);

	ASSERT_NE(NULL, diffbuf);
	ASSERT_NE(NULL, arg);

	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		size_t v1 = _IOC_SIZE(cmds[i].cmd);
		/* size 0 .. v1-1, v1, bigger with zero and nonzero tails */
		struct {
			size_t size;
			bool dirty_tail;
			int err;
		} sizes[16];
		size_t ns = 0;

		sizes[ns++] = (typeof(sizes[0])){ 0, false, EINVAL };
		for (size_t j = 0; j < ARRAY_SIZE(fewer); j++)
			sizes[ns++] = (typeof(sizes[0])){ v1 - fewer[j], false, EINVAL };
		for (size_t j = 0; j < ARRAY_SIZE(extra); j++) {
			sizes[ns++] = (typeof(sizes[0])){ v1 + extra[j], true, E2BIG };
			sizes[ns++] = (typeof(sizes[0])){ v1 + extra[j], false, 0 };
		}

		for (size_t j = 0; j < ns; j++) {
			size_t size = sizes[j].size;
			struct cowmap_info in0, in1;
			volatile uint8_t *m = MAP_FAILED;
			int dev, log_fd = -1, err;

			dev = cm_open_dev();
			ASSERT_LE(0, dev);
			memset(arg, 0, 16384);
			if (cmds[i].cmd == COWMAP_IOC_BIND) {
				((struct cowmap_bind *)arg)->fd = self->fd;
			} else {
				log_fd = new_file(self, "struct-size-log", 0,
						  O_WRONLY | O_TRUNC);
				ASSERT_LE(0, log_fd);
				ASSERT_EQ(0, cm_bind(dev, self->fd, log_fd,
						     COWMAP_BIND_LOG, 0, NULL));
				m = cm_map(dev, 0, FILE_SIZE, PROT_READ | PROT_WRITE);
				ASSERT_NE(MAP_FAILED, m);
				m[5] ^= 0xff;
				m[PG + 5] ^= 0xff;
				ASSERT_EQ(0, cm_info(dev, &in0));
			}
			if (cmds[i].cmd == COWMAP_IOC_DIFF) {
				((struct cowmap_diff *)arg)->buf = (uintptr_t)diffbuf;
				((struct cowmap_diff *)arg)->buf_len = COWMAP_DIFF_MIN_BUF;
			}
			if (cmds[i].cmd == COWMAP_IOC_DISCARD)
				((struct cowmap_range *)arg)->flags = COWMAP_RANGE_ALL;
			if (sizes[j].dirty_tail)
				arg[size - 1] = 1;

			err = cm_ioctl(dev, IOC_SIZED(cmds[i].cmd, size), arg);
			EXPECT_EQ(-sizes[j].err, err)
				TH_LOG("%s with size %zu (v1 %zu)%s: %s",
				       cmds[i].name, size, v1,
				       sizes[j].dirty_tail ? ", nonzero tail" : "",
				       strerror(-err));

			if (cmds[i].cmd == COWMAP_IOC_BIND) {
				int want = sizes[j].err ? -ENODEV : 0;

				EXPECT_EQ(want, cm_info(dev, &in1))
					TH_LOG("BIND size %zu", size);
				if (!sizes[j].err) {
					EXPECT_EQ(in1.id, ((struct cowmap_bind *)arg)->id);
				}
			} else {
				ASSERT_EQ(0, cm_info(dev, &in1));
				if (sizes[j].err) {
					/* Refused: nothing happened. */
					EXPECT_EQ(in0.private_pages, in1.private_pages)
						TH_LOG("%s size %zu", cmds[i].name, size);
					EXPECT_EQ(in0.undrained_pages,
						  in1.undrained_pages)
						TH_LOG("%s size %zu", cmds[i].name, size);
				} else if (cmds[i].cmd == COWMAP_IOC_DIFF) {
					EXPECT_EQ(2, ((struct cowmap_diff *)arg)->records);
					EXPECT_EQ(COWMAP_DIFF_END,
						  ((struct cowmap_diff *)arg)->offset);
				} else if (cmds[i].cmd == COWMAP_IOC_DRAIN) {
					EXPECT_EQ(2, ((struct cowmap_drain *)arg)->records);
					EXPECT_EQ(0, in1.undrained_pages);
				} else {
					EXPECT_EQ(2, ((struct cowmap_range *)arg)->pages);
					EXPECT_EQ(0, in1.private_pages);
				}
			}
			if (m != MAP_FAILED)
				munmap((void *)m, FILE_SIZE);
			close(dev);
			if (log_fd >= 0)
				close(log_fd);
		}
	}
	free(arg);
	free(diffbuf);
}

/* Output-only structures: a bigger one gets the v1 fields, a smaller EINVAL. */
TEST_F(abi, struct_size_out)
{
	static const struct {
		const char *name;
		unsigned long cmd;
	} cmds[] = {
		{ "VERSION", COWMAP_IOC_VERSION },
		{ "INFO", COWMAP_IOC_INFO },
	};
	uint8_t ref[256], buf[8192];
	int dev = bound_session(self);

	ASSERT_LE(0, dev);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		size_t v1 = _IOC_SIZE(cmds[i].cmd);
		static const size_t bigger[] = { 8, 64, 4096 };

		memset(ref, 0, sizeof(ref));
		ASSERT_EQ(0, cm_ioctl(dev, cmds[i].cmd, ref));
		for (size_t j = 0; j < ARRAY_SIZE(bigger); j++) {
			memset(buf, 0, sizeof(buf));
			EXPECT_EQ(0, cm_ioctl(dev, IOC_SIZED(cmds[i].cmd,
							     v1 + bigger[j]), buf))
				TH_LOG("%s size %zu", cmds[i].name, v1 + bigger[j]);
			if (cmds[i].cmd == COWMAP_IOC_VERSION) {
				EXPECT_EQ(0, memcmp(ref, buf, v1));
			} else {	/* INFO: identity fields are stable */
				EXPECT_EQ(((struct cowmap_info *)ref)->id,
					  ((struct cowmap_info *)buf)->id);
			}
		}
		for (size_t size = 0; size < v1; size += v1 / 4) {
			errno = 0;
			EXPECT_EQ(-EINVAL, cm_ioctl(dev, IOC_SIZED(cmds[i].cmd, size),
						    buf))
				TH_LOG("%s size %zu", cmds[i].name, size);
		}
		EXPECT_EQ(-EINVAL, cm_ioctl(dev, IOC_SIZED(cmds[i].cmd, v1 - 1), buf))
			TH_LOG("%s size %zu", cmds[i].name, v1 - 1);
	}
	close(dev);
}

/* Unknown numbers and other magics: ENOTTY, bound or not. */
TEST_F(abi, unknown_ioctls)
{
	static const unsigned long cmds[] = {
		_IO(COWMAP_IOC_MAGIC, 0x06),
		_IOR(COWMAP_IOC_MAGIC, 0x06, struct cowmap_info),
		_IOWR(COWMAP_IOC_MAGIC, 0x07, struct cowmap_bind),
		_IOW(COWMAP_IOC_MAGIC, 0x10, uint64_t),
		_IOWR(COWMAP_IOC_MAGIC, 0x7f, struct cowmap_diff),
		_IOR(COWMAP_IOC_MAGIC, 0xff, uint32_t),
		_IOR(COWMAP_IOC_MAGIC - 1, 0x00, struct cowmap_version),
		_IOWR(COWMAP_IOC_MAGIC - 1, 0x01, struct cowmap_bind),
		_IOR(COWMAP_IOC_MAGIC + 1, 0x02, struct cowmap_info),
		_IOWR(COWMAP_IOC_MAGIC + 1, 0x03, struct cowmap_diff),
		_IOWR('f', 0x04, struct cowmap_drain),
		_IOWR('x', 0x05, struct cowmap_range),
	};
	uint8_t buf[256] = { 0 };
	int dev = bound_session(self);

	ASSERT_LE(0, dev);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		EXPECT_EQ(-ENOTTY, cm_ioctl(self->dev, cmds[i], buf))
			TH_LOG("unbound, cmd %#lx", cmds[i]);
		EXPECT_EQ(-ENOTTY, cm_ioctl(dev, cmds[i], buf))
			TH_LOG("bound, cmd %#lx", cmds[i]);
	}
	close(dev);
}

/* Every ioctl but VERSION needs a bound session; so does mmap. */
TEST_F(abi, unbound_session)
{
	uint8_t *buf = malloc(COWMAP_DIFF_MIN_BUF);
	struct cowmap_diff d = {
		.buf = (uintptr_t)buf, .buf_len = COWMAP_DIFF_MIN_BUF,
	};
	struct cowmap_drain dr = { .log_fd = -1 };
	struct cowmap_range r_all = { .flags = COWMAP_RANGE_ALL };
	struct cowmap_range r = { .offset = 0, .length = PG };
	struct cowmap_version v;
	struct cowmap_info in;
	int log_fd = new_file(self, "unbound-log", 0, O_WRONLY);
	void *m;

	ASSERT_NE(NULL, buf);
	ASSERT_LE(0, log_fd);
	EXPECT_EQ(-ENODEV, cm_ioctl(self->dev, COWMAP_IOC_INFO, &in));
	EXPECT_EQ(-ENODEV, cm_ioctl(self->dev, COWMAP_IOC_DIFF, &d));
	EXPECT_EQ(-ENODEV, cm_ioctl(self->dev, COWMAP_IOC_DRAIN, &dr));
	dr = (struct cowmap_drain){ .log_fd = log_fd, .flags = COWMAP_DRAIN_FD };
	EXPECT_EQ(-ENODEV, cm_ioctl(self->dev, COWMAP_IOC_DRAIN, &dr));
	EXPECT_EQ(0, cm_fsize(log_fd));
	EXPECT_EQ(-ENODEV, cm_ioctl(self->dev, COWMAP_IOC_DISCARD, &r_all));
	EXPECT_EQ(-ENODEV, cm_ioctl(self->dev, COWMAP_IOC_DISCARD, &r));
	EXPECT_EQ(0, cm_ioctl(self->dev, COWMAP_IOC_VERSION, &v));
	EXPECT_EQ(COWMAP_ABI_VERSION, v.abi);

	for (int w = 0; w < 2; w++) {
		int prot = PROT_READ | (w ? PROT_WRITE : 0);

		errno = 0;
		m = mmap(NULL, PG, prot, MAP_SHARED, self->dev, 0);
		EXPECT_EQ(MAP_FAILED, m);
		EXPECT_EQ(ENODEV, errno) TH_LOG("mmap prot %d: %s", prot,
						strerror(errno));
		if (m != MAP_FAILED)
			munmap(m, PG);
	}

	/* Still bindable after all that. */
	EXPECT_EQ(0, cm_bind(self->dev, self->fd, -1, 0, 0, NULL));
	close(log_fd);
	free(buf);
}

TEST_F(abi, version)
{
	struct cowmap_version v;
	int dev = bound_session(self);

	ASSERT_LE(0, dev);
	for (int i = 0; i < 2; i++) {
		memset(&v, 0xa5, sizeof(v));
		ASSERT_EQ(0, cm_ioctl(i ? dev : self->dev, COWMAP_IOC_VERSION, &v));
		EXPECT_EQ(COWMAP_VERSION_MAJOR, v.major);
		EXPECT_EQ(COWMAP_VERSION_MINOR, v.minor);
		EXPECT_EQ(COWMAP_VERSION_PATCH, v.patch);
		EXPECT_EQ(COWMAP_ABI_VERSION, v.abi);
		EXPECT_EQ(COWMAP_FEAT_LOG_FD | COWMAP_FEAT_DIFF |
			  COWMAP_FEAT_DISCARD | COWMAP_FEAT_NETLINK, v.features);
		EXPECT_EQ(PG, v.page_size);
		EXPECT_EQ(0, v.reserved[0]);
		EXPECT_EQ(0, v.reserved[1]);
		EXPECT_EQ(0, v.reserved[2]);
	}
	close(dev);
}

/* ------------------------------------------------------------------------
 * mmap
 */

TEST_F(abi, mmap_private)
{
	int dev = bound_session(self);
	struct cowmap_info in;

	ASSERT_LE(0, dev);
	for (int w = 0; w < 2; w++) {
		int prot = PROT_READ | (w ? PROT_WRITE : 0);
		void *m;

		errno = 0;
		m = mmap(NULL, FILE_SIZE, prot, MAP_PRIVATE, dev, 0);
		EXPECT_EQ(MAP_FAILED, m) TH_LOG("MAP_PRIVATE prot %d", prot);
		EXPECT_EQ(EINVAL, errno) TH_LOG("MAP_PRIVATE prot %d: %s", prot,
						strerror(errno));
		if (m != MAP_FAILED)
			munmap(m, FILE_SIZE);
	}
	ASSERT_EQ(0, cm_info(dev, &in));
	EXPECT_EQ(0, in.mapped_bytes);
	close(dev);
}

#define PMD_SZ	(2UL << 20)

TEST_F(abi, mmap_pmd_congruent)
{
	static const struct {
		long addr_pages;	/* from a 2 MiB-aligned address */
		long off_pages;
		int err;
	} cases[] = {
		{ 0, 0, EINVAL },
		{ 1, 1, EINVAL },
		{ 5, 5, EINVAL },
		{ 0, 512, EINVAL },
		{ 3, 515, EINVAL },
		{ 1, 0, 0 },
		{ 0, 1, 0 },
		{ 511, 0, 0 },
		{ 0, 511, 0 },
		{ 7, 3, 0 },
	};
	int dev = bound_session(self);
	struct cowmap_info in;

	ASSERT_LE(0, dev);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t *resv, *aligned, *want, *m;
		size_t len = 4 * PG;
		uint64_t off = PGS(cases[i].off_pages);

		/* A free, 2 MiB-aligned window to place the mapping in. */
		resv = mmap(NULL, 3 * PMD_SZ, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		ASSERT_NE(MAP_FAILED, resv);
		aligned = (uint8_t *)(((uintptr_t)resv + PMD_SZ - 1) & ~(PMD_SZ - 1));
		want = aligned + PGS(cases[i].addr_pages);

		errno = 0;
		m = mmap(want, len, PROT_READ, MAP_SHARED | MAP_FIXED, dev, off);
		if (cases[i].err) {
			EXPECT_EQ(MAP_FAILED, m)
				TH_LOG("case %zu: congruent mapping at +%ld pages, "
				       "offset %ld pages accepted", i,
				       cases[i].addr_pages, cases[i].off_pages);
			EXPECT_EQ(cases[i].err, errno) TH_LOG("case %zu: %s", i,
							      strerror(errno));
		} else {
			EXPECT_EQ(want, m) TH_LOG("case %zu: %s", i, strerror(errno));
			if (m == want && off < FILE_SIZE) {
				EXPECT_EQ(0, memcmp(m, self->data + off, PG));
			}
		}
		munmap(resv, 3 * PMD_SZ);
		ASSERT_EQ(0, cm_info(dev, &in));
		EXPECT_EQ(0, in.mapped_bytes) TH_LOG("case %zu", i);
	}

	/* Without MAP_FIXED the kernel picks a non-congruent address. */
	for (long off_pages = 0; off_pages < 600; off_pages += 37) {
		uint8_t *m = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, dev,
				  PGS(off_pages));
		uintptr_t pfn;

		ASSERT_NE(MAP_FAILED, m) TH_LOG("offset %ld pages", off_pages);
		pfn = (uintptr_t)m / PG;
		EXPECT_NE(0, (pfn - off_pages) % 512)
			TH_LOG("offset %ld pages mapped at %p", off_pages, m);
		if (PGS(off_pages) < FILE_SIZE) {
			EXPECT_EQ(0, memcmp(m, self->data + PGS(off_pages), PG));
		}
		munmap(m, 4 * PG);
	}
	close(dev);
}

/* ------------------------------------------------------------------------
 * DIFF, DISCARD, DRAIN arguments
 */

TEST_F(abi, diff_args)
{
	static const struct {
		const char *name;
		uint64_t offset, end, buf_len;
		uint32_t flags;
		uint64_t reserved0, reserved1;
		int err;
		uint32_t records;	/* when accepted */
	} cases[] = {
		{ "offset 1",		1, 0, COWMAP_DIFF_MIN_BUF, 0, 0, 0, EINVAL, 0 },
		{ "offset PG-1",	PG - 1, 0, COWMAP_DIFF_MIN_BUF, 0, 0, 0, EINVAL, 0 },
		{ "offset PG+1",	PG + 1, 0, COWMAP_DIFF_MIN_BUF, 0, 0, 0, EINVAL, 0 },
		{ "offset ~0",		~0ULL, 0, COWMAP_DIFF_MIN_BUF, 0, 0, 0, EINVAL, 0 },
		{ "buf_len 0",		0, 0, 0, 0, 0, 0, EINVAL, 0 },
		{ "buf_len 4096",	0, 0, PG, 0, 0, 0, EINVAL, 0 },
		{ "buf_len MIN-1",	0, 0, COWMAP_DIFF_MIN_BUF - 1, 0, 0, 0, EINVAL, 0 },
		{ "end == offset",	PG, PG, COWMAP_DIFF_MIN_BUF, 0, 0, 0, EINVAL, 0 },
		{ "end < offset",	PGS(2), PG, COWMAP_DIFF_MIN_BUF, 0, 0, 0, EINVAL, 0 },
		{ "flags bit 0",	0, 0, COWMAP_DIFF_MIN_BUF, 1, 0, 0, EINVAL, 0 },
		{ "flags bit 31",	0, 0, COWMAP_DIFF_MIN_BUF, 1U << 31, 0, 0, EINVAL, 0 },
		{ "reserved[0]",	0, 0, COWMAP_DIFF_MIN_BUF, 0, 1, 0, EINVAL, 0 },
		{ "reserved[1]",	0, 0, COWMAP_DIFF_MIN_BUF, 0, 0, 1, EINVAL, 0 },
		{ "all, MIN buffer",	0, 0, COWMAP_DIFF_MIN_BUF, 0, 0, 0, 0, 2 },
		{ "end = 1",		0, 1, COWMAP_DIFF_MIN_BUF, 0, 0, 0, 0, 1 },
		{ "offset PG",		PG, 0, COWMAP_DIFF_MIN_BUF, 0, 0, 0, 0, 1 },
		{ "past EOF",		PGS(1000), 0, COWMAP_DIFF_MIN_BUF, 0, 0, 0, 0, 0 },
		{ "end ~0",		0, ~0ULL, COWMAP_DIFF_MIN_BUF, 0, 0, 0, 0, 2 },
	};
	uint8_t *buf = malloc(COWMAP_DIFF_MIN_BUF);
	int dev = bound_session(self);
	volatile uint8_t *m;

	ASSERT_NE(NULL, buf);
	ASSERT_LE(0, dev);
	m = cm_map(dev, 0, FILE_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	m[10] ^= 1;
	m[PG + 10] ^= 1;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cowmap_diff d = {
			.offset = cases[i].offset, .end = cases[i].end,
			.buf = (uintptr_t)buf, .buf_len = cases[i].buf_len,
			.flags = cases[i].flags,
			.reserved = { cases[i].reserved0, cases[i].reserved1 },
		};
		int err = cm_ioctl(dev, COWMAP_IOC_DIFF, &d);

		EXPECT_EQ(-cases[i].err, err) TH_LOG("case '%s': %s",
						     cases[i].name, strerror(-err));
		if (!cases[i].err && !err) {
			EXPECT_EQ(cases[i].records, d.records)
				TH_LOG("case '%s'", cases[i].name);
			EXPECT_EQ(COWMAP_LOG_REC_SIZE(1) * cases[i].records, d.used)
				TH_LOG("case '%s'", cases[i].name);
			EXPECT_EQ(COWMAP_DIFF_END, d.offset)
				TH_LOG("case '%s'", cases[i].name);
			EXPECT_EQ(0, d.reserved[0]);
			EXPECT_EQ(0, d.reserved[1]);
		}
	}
	munmap((void *)m, FILE_SIZE);
	close(dev);
	free(buf);
}

TEST_F(abi, discard_args)
{
	static const struct {
		const char *name;
		uint64_t offset, length;
		uint32_t flags, reserved0;
		uint64_t reserved1;
		int err;
		uint64_t pages;		/* when accepted */
	} cases[] = {
		{ "offset 1",		1, PG, 0, 0, 0, EINVAL, 0 },
		{ "offset PG+7",	PG + 7, PG, 0, 0, 0, EINVAL, 0 },
		{ "length 0",		0, 0, 0, 0, 0, EINVAL, 0 },
		{ "length 1",		0, 1, 0, 0, 0, EINVAL, 0 },
		{ "length PG+1",	0, PG + 1, 0, 0, 0, EINVAL, 0 },
		{ "overflow",		~0ULL - PG + 1, PGS(2), 0, 0, 0, EINVAL, 0 },
		{ "overflow, huge",	PG, ~0ULL - PG + 1, 0, 0, 0, EINVAL, 0 },
		{ "flags bit 1",	0, PG, 1U << 1, 0, 0, EINVAL, 0 },
		{ "flags bit 31",	0, PG, 1U << 31, 0, 0, EINVAL, 0 },
		{ "reserved0",		0, PG, 0, 1, 0, EINVAL, 0 },
		{ "reserved[0]",	0, PG, 0, 0, 1, EINVAL, 0 },
		{ "ALL, reserved0",	0, 0, COWMAP_RANGE_ALL, 1, 0, EINVAL, 0 },
		{ "empty range",	PGS(5), PGS(3), 0, 0, 0, 0, 0 },
		{ "past EOF",		PGS(100), PG, 0, 0, 0, 0, 0 },
		{ "page 0",		0, PG, 0, 0, 0, 0, 1 },
		{ "ALL, junk offset/length", 12345, 3, COWMAP_RANGE_ALL, 0, 0, 0, 3 },
	};
	int dev = bound_session(self);
	volatile uint8_t *m;

	ASSERT_LE(0, dev);
	m = cm_map(dev, 0, FILE_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cowmap_range r = {
			.offset = cases[i].offset, .length = cases[i].length,
			.flags = cases[i].flags, .reserved0 = cases[i].reserved0,
			.reserved = { cases[i].reserved1 },
		};
		struct cowmap_info in;
		int err;

		/* Private pages 0, 1, 2. */
		m[0] = self->data[0] ^ 1;
		m[PG] = self->data[PG] ^ 1;
		m[PGS(2)] = self->data[PGS(2)] ^ 1;
		err = cm_ioctl(dev, COWMAP_IOC_DISCARD, &r);
		EXPECT_EQ(-cases[i].err, err) TH_LOG("case '%s': %s",
						     cases[i].name, strerror(-err));
		ASSERT_EQ(0, cm_info(dev, &in));
		if (cases[i].err) {
			EXPECT_EQ(3, in.private_pages) TH_LOG("case '%s'", cases[i].name);
			EXPECT_EQ(self->data[0] ^ 1, m[0]);
		} else {
			EXPECT_EQ(cases[i].pages, r.pages) TH_LOG("case '%s'", cases[i].name);
			EXPECT_EQ(3 - cases[i].pages, in.private_pages) TH_LOG("case '%s'", cases[i].name);
		}
		/* Back to no private pages for the next case. */
		ASSERT_EQ(0, cm_discard(dev, 0, 0, COWMAP_RANGE_ALL, NULL));
	}
	munmap((void *)m, FILE_SIZE);
	close(dev);
}

TEST_F(abi, drain_args)
{
	enum { D_FLAGS, D_RESERVED, D_NOLOG, D_NEG, D_CLOSED, D_NOT_EMPTY,
	       D_RDONLY, D_BACKING, D_PIPE, D_DIR, D_DIRECT,
	       D_OK };
	static const struct {
		const char *name;
		int kind;
		int err;
	} cases[] = {
		{ "flags bit 1",		D_FLAGS,	EINVAL },
		{ "reserved[1]",		D_RESERVED,	EINVAL },
		{ "no log, no DRAIN_FD",	D_NOLOG,	EBADFD },
		{ "DRAIN_FD, fd -1",		D_NEG,		EBADF },
		{ "DRAIN_FD, closed fd",	D_CLOSED,	EBADF },
		{ "DRAIN_FD, not empty",	D_NOT_EMPTY,	ENOTEMPTY },
		{ "DRAIN_FD, O_RDONLY",		D_RDONLY,	EINVAL },
		{ "DRAIN_FD, backing fd",	D_BACKING,	EINVAL },
		{ "DRAIN_FD, pipe",		D_PIPE,		EINVAL },
		{ "DRAIN_FD, directory",	D_DIR,		EINVAL },
		{ "DRAIN_FD, O_DIRECT",		D_DIRECT,	EINVAL },
		{ "DRAIN_FD, new empty file",	D_OK,		0 },
	};
	int dev = bound_session(self);
	volatile uint8_t *m;

	ASSERT_LE(0, dev);
	m = cm_map(dev, 0, FILE_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	m[100] ^= 0xff;
	m[PGS(3) + 100] ^= 0xff;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cowmap_drain d = { .flags = COWMAP_DRAIN_FD, .log_fd = -1 };
		struct cowmap_info in;
		off_t before = -1;
		int p[2], fd = -1, err;

		switch (cases[i].kind) {
		case D_FLAGS:
			d.flags = 1U << 1;
			break;
		case D_RESERVED:
			d.flags = 0;
			d.reserved[1] = 1;
			break;
		case D_NOLOG:
			d.flags = 0;
			break;
		case D_NEG:
			break;
		case D_CLOSED:
			d.log_fd = closed_fd();
			break;
		case D_NOT_EMPTY:
			fd = new_file(self, "drain-not-empty", 10, O_WRONLY);
			break;
		case D_RDONLY:
			fd = new_file(self, "drain-rdonly", 0, O_RDONLY);
			break;
		case D_BACKING:
			d.log_fd = self->fd;
			break;
		case D_PIPE:
			ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
			close(p[0]);
			fd = p[1];
			break;
		case D_DIR:
			fd = open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			break;
		case D_DIRECT:
			fd = new_file(self, "drain-direct", 0, O_WRONLY | O_DIRECT);
			break;
		case D_OK:
			fd = new_file(self, "drain-ok", 0, O_WRONLY);
			break;
		}
		if (fd >= 0) {
			d.log_fd = fd;
			if (cases[i].kind != D_PIPE && cases[i].kind != D_DIR)
				before = cm_fsize(fd);
		}
		err = cm_ioctl(dev, COWMAP_IOC_DRAIN, &d);
		EXPECT_EQ(-cases[i].err, err) TH_LOG("case '%s': %s",
						     cases[i].name, strerror(-err));
		ASSERT_EQ(0, cm_info(dev, &in));
		if (cases[i].err) {
			EXPECT_EQ(2, in.undrained_pages) TH_LOG("case '%s'", cases[i].name);
			if (before >= 0) {
				EXPECT_EQ(before, cm_fsize(fd))
					TH_LOG("case '%s'", cases[i].name);
			}
		} else {
			EXPECT_EQ(0, in.undrained_pages);
			EXPECT_EQ(2, d.records);
			EXPECT_EQ(2, d.pages);
			EXPECT_LT((off_t)d.bytes, cm_fsize(fd));
		}
		EXPECT_EQ(FILE_SIZE, cm_fsize(self->fd));
		if (fd >= 0)
			close(fd);
	}
	munmap((void *)m, FILE_SIZE);
	close(dev);
}

TEST_HARNESS_MAIN
