// SPDX-License-Identifier: GPL-2.0
/*
 * Basic checks of /dev/cowmap: the device node, COWMAP_IOC_VERSION and the
 * refusal of unknown ioctls.  Everything is skipped when the module is not
 * loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/cowmap.h>

#include "cowmap_harness.h"

#define SKIP_IF_NO_DEVICE()						\
	do {								\
		if (access(COWMAP_DEVICE_PATH, F_OK))			\
			SKIP(return, COWMAP_DEVICE_PATH " is absent: "	\
			     "cowmap.ko not loaded");			\
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

	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, cmd, buf));
	EXPECT_NE(0, errno);
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

TEST_F(dev, two_opens_are_independent)
{
	struct cowmap_version v1, v2;
	struct stat st1, st2;
	int fd2;

	fd2 = open(COWMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	EXPECT_NE(self->fd, fd2);

	/* Same device, but two open files. */
	ASSERT_EQ(0, fstat(self->fd, &st1));
	ASSERT_EQ(0, fstat(fd2, &st2));
	EXPECT_EQ(st1.st_rdev, st2.st_rdev);
	EXPECT_EQ(0, ioctl(self->fd, COWMAP_IOC_VERSION, &v1));
	EXPECT_EQ(0, ioctl(fd2, COWMAP_IOC_VERSION, &v2));
	EXPECT_EQ(0, memcmp(&v1, &v2, sizeof(v1)));

	/* Closing one leaves the other usable. */
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_EQ(0, ioctl(fd2, COWMAP_IOC_VERSION, &v2));
	EXPECT_EQ(COWMAP_ABI_VERSION, v2.abi);
	close(fd2);
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
