// SPDX-License-Identifier: GPL-2.0
/*
 * Basic checks of /dev/cowmap: the device node, COWMAP_IOC_VERSION, the
 * refusal of unknown ioctls and two opens being two sessions.  Outside the
 * test VM everything is skipped when the module is not loaded; in the VM
 * ($COWMAP_VM set) a missing device is a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/cowmap.h>

#include "cowmap_harness.h"
#include "lib/util.h"

/* In the VM the module is loaded by /init: its absence is a failure. */
#define SKIP_IF_NO_DEVICE()						\
	do {								\
		if (access(COWMAP_DEVICE_PATH, F_OK)) {			\
			ASSERT_EQ(NULL, getenv("COWMAP_VM"))		\
				TH_LOG(COWMAP_DEVICE_PATH " is absent in the VM"); \
			SKIP(return, COWMAP_DEVICE_PATH " is absent: "	\
			     "cowmap.ko not loaded");			\
		}							\
	} while (0)

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = -1;
	SKIP_IF_NO_DEVICE();
	self->fd = open(COWMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", COWMAP_DEVICE_PATH,
				      strerror(errno));
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST(device_node)
{
	struct stat st;

	SKIP_IF_NO_DEVICE();
	ASSERT_EQ(0, stat(COWMAP_DEVICE_PATH, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0666, st.st_mode & 07777)
		TH_LOG("mode is %04o", st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	/* A misc device: major 10. */
	EXPECT_EQ(10, major(st.st_rdev));
}

TEST_F(dev, version)
{
	struct cowmap_version v;
	long page_size = sysconf(_SC_PAGESIZE);

	memset(&v, 0xa5, sizeof(v));
	ASSERT_EQ(0, ioctl(self->fd, COWMAP_IOC_VERSION, &v))
		TH_LOG("COWMAP_IOC_VERSION: %s", strerror(errno));
	EXPECT_EQ(COWMAP_ABI_VERSION, v.abi);
	EXPECT_EQ(COWMAP_VERSION_MAJOR, v.major);
	EXPECT_EQ((uint32_t)page_size, v.page_size);
	EXPECT_EQ(0, v.reserved[0]);
	EXPECT_EQ(0, v.reserved[1]);
	EXPECT_EQ(0, v.reserved[2]);
}

TEST_F(dev, version_bad_pointer)
{
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, COWMAP_IOC_VERSION, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(dev, unknown_nr)
{
	char buf[64] = { 0 };
	/* Same magic, numbers the module does not define (yet). */
	static const unsigned int cmds[] = {
		_IO(COWMAP_IOC_MAGIC, 0x7f),
		_IOR(COWMAP_IOC_MAGIC, 0xfe, uint64_t),
		_IOWR(COWMAP_IOC_MAGIC, 0xff, uint32_t),
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], buf))
			TH_LOG("cmd %#x", cmds[i]);
		EXPECT_EQ(ENOTTY, errno) TH_LOG("cmd %#x: %s", cmds[i],
						strerror(errno));
	}
}

TEST_F(dev, version_wrong_size)
{
	char buf[sizeof(struct cowmap_version) * 2] = { 0 };
	/* COWMAP_IOC_VERSION's number with the direction/size bits changed. */
	unsigned int cmd = _IOR(COWMAP_IOC_MAGIC, _IOC_NR(COWMAP_IOC_VERSION),
				uint32_t);

	/* A size smaller than struct cowmap_version: EINVAL (uapi). */
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, cmd, buf));
	EXPECT_EQ(EINVAL, errno) TH_LOG("%s", strerror(errno));
}

TEST_F(dev, unknown_magic)
{
	char buf[64] = { 0 };
	/* Another driver's magic ('f' is the generic file ioctls' one). */
	unsigned int cmd = _IOR('x', _IOC_NR(COWMAP_IOC_VERSION),
				struct cowmap_version);

	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, cmd, buf));
	EXPECT_EQ(ENOTTY, errno) TH_LOG("%s", strerror(errno));
}

/*
 * Two opens of the device are two sessions: bound to the same file they get
 * distinct ids, and a write through one's mapping is private to it (the
 * other and the file still read what the test wrote to the file).  Closing
 * one leaves the other's private page in place.
 */
TEST_F(dev, two_opens_are_independent)
{
	const char *scratch = getenv("COWMAP_SCRATCH");
	struct cowmap_bind b1, b2;
	struct cowmap_info in;
	uint8_t data[PGS(2)], got[PGS(2)];
	uint8_t *m1, *m2;
	char *dir, *path;
	int fd2, bfd;

	if (!scratch || !*scratch) {
		ASSERT_EQ(NULL, getenv("COWMAP_VM")) TH_LOG("$COWMAP_SCRATCH unset in the VM");
		SKIP(return, "$COWMAP_SCRATCH is not set");
	}
	dir = cm_mkdtemp(scratch, "basic");
	ASSERT_NE(NULL, dir);
	path = cm_path(dir, "file");
	cm_fill(17, data, sizeof(data));
	bfd = cm_create(path, data, sizeof(data));
	ASSERT_LE(0, bfd);

	fd2 = open(COWMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	EXPECT_NE(self->fd, fd2);
	ASSERT_EQ(0, cm_bind(self->fd, bfd, -1, 0, 0, &b1));
	ASSERT_EQ(0, cm_bind(fd2, bfd, -1, 0, 0, &b2));
	EXPECT_NE(0, b1.id);
	EXPECT_NE(0, b2.id);
	EXPECT_NE(b1.id, b2.id);
	EXPECT_EQ(sizeof(data), b1.size);
	EXPECT_EQ(sizeof(data), b2.size);

	m1 = cm_map(self->fd, 0, sizeof(data), PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m1);
	m2 = cm_map(fd2, 0, sizeof(data), PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m2);
	memset(m1 + PG + 10, 0x5a, 100);
	m2[20] ^= 0xff;

	/* Each sees its own write and the file's bytes elsewhere. */
	EXPECT_EQ(0, memcmp(m2 + PG, data + PG, PG));
	EXPECT_EQ((uint8_t)(data[20] ^ 0xff), m2[20]);
	EXPECT_EQ(0, memcmp(m1, data, PG));
	EXPECT_EQ(0x5a, m1[PG + 10]);
	EXPECT_EQ(0x5a, m1[PG + 109]);
	ASSERT_EQ(sizeof(got), pread(bfd, got, sizeof(got), 0));
	EXPECT_EQ(0, memcmp(got, data, sizeof(data)));
	ASSERT_EQ(0, cm_info(self->fd, &in));
	EXPECT_EQ(b1.id, in.id);
	EXPECT_EQ(1, in.private_pages);
	ASSERT_EQ(0, cm_info(fd2, &in));
	EXPECT_EQ(b2.id, in.id);
	EXPECT_EQ(1, in.private_pages);

	/* Closing one leaves the other as it was. */
	ASSERT_EQ(0, munmap(m1, sizeof(data)));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_EQ((uint8_t)(data[20] ^ 0xff), m2[20]);
	EXPECT_EQ(0, memcmp(m2 + PG, data + PG, PG));
	ASSERT_EQ(0, cm_info(fd2, &in));
	EXPECT_EQ(b2.id, in.id);
	EXPECT_EQ(1, in.private_pages);
	munmap(m2, sizeof(data));
	close(fd2);
	close(bfd);
	cm_rm_rf(dir);
	free(path);
	free(dir);
}

TEST_F(dev, rdonly_open)
{
	struct cowmap_version v;
	int fd = open(COWMAP_DEVICE_PATH, O_RDONLY | O_CLOEXEC);

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, ioctl(fd, COWMAP_IOC_VERSION, &v));
	close(fd);
}

TEST_HARNESS_MAIN
