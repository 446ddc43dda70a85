/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the cowmap selftests (selftests/lib/util.c): scratch
 * directories, deterministic file contents, sessions and thin ioctl
 * wrappers that return -errno, an independent CRC32C and log record parser
 * (so the tests do not trust the code they test), module parameters, a
 * minimal generic netlink GET_STATS query and child processes.
 *
 * The functions use no harness macro: they return errors and the tests
 * assert.  CM_SETUP_SKIP(), CM_SKIP_IF_NO_DEVICE() and CM_SETUP_SCRATCH*()
 * are for a fixture's setup: include "kselftest_harness.h"
 * (cowmap_harness.h) first.
 */
#ifndef COWMAP_SELFTEST_UTIL_H
#define COWMAP_SELFTEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <endian.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <linux/cowmap.h>

/* The tests' tables use 4 KiB pages (x86-64, the VM's architecture). */
#define PG		4096UL
#define PGS(n)		((uint64_t)(n) * PG)

#define MODPARAM_DIR	"/sys/module/cowmap/parameters/"

/*
 * Skip from FIXTURE_SETUP.  The 6.1 harness would still run the test body
 * after a SKIP() in the setup, so the test process ends here with the
 * harness's skip status (255); the reason is in shared memory already.
 */
#define CM_SETUP_SKIP(fmt, ...)						\
	SKIP({ fflush(NULL); _exit(255); }, fmt, ##__VA_ARGS__)

/* A skip outside the test VM; in it ($COWMAP_VM set) /init loaded the module. */
#define CM_SKIP_IF_NO_DEVICE()						\
	do {								\
		if (access(COWMAP_DEVICE_PATH, F_OK)) {			\
			ASSERT_EQ(NULL, getenv("COWMAP_VM"))		\
				TH_LOG(COWMAP_DEVICE_PATH " is absent in the VM"); \
			CM_SETUP_SKIP(COWMAP_DEVICE_PATH " is absent: "	\
				      "cowmap.ko not loaded");		\
		}							\
	} while (0)

/* @scratch: $COWMAP_SCRATCH, the ext4 scratch directory; skips without it. */
#define CM_SETUP_SCRATCH(scratch)					\
	do {								\
		const char *_why;					\
									\
		scratch = cm_scratch_dir("COWMAP_SCRATCH", &_why);	\
		if (!scratch)						\
			CM_SETUP_SKIP("$COWMAP_SCRATCH %s", _why);	\
	} while (0)

/* The same, and @dir: a new directory in it (cm_mkdtemp(), tag @tag). */
#define CM_SETUP_SCRATCH_DIR(scratch, dir, tag)				\
	do {								\
		CM_SETUP_SCRATCH(scratch);				\
		dir = cm_mkdtemp(scratch, tag);				\
		ASSERT_NE(NULL, dir);					\
	} while (0)

/* ------------------------------------------------------------------------
 * Scratch directories and files
 */

/* $env if it names a directory, else NULL (*why says what is wrong). */
const char *cm_scratch_dir(const char *env, const char **why);

/* A new private directory under @base; the path is malloc()ed. */
char *cm_mkdtemp(const char *base, const char *tag);

/* rm -rf @dir (never crosses into other filesystems: FTW_MOUNT). */
void cm_rm_rf(const char *dir);

char *cm_path(const char *dir, const char *name);

/* xorshift64*: the deterministic byte source of every pattern. */
static inline uint64_t cm_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

void cm_fill(uint64_t seed, void *buf, size_t len);

int cm_write_all(int fd, const void *buf, size_t len, off_t off);

int cm_read_all(int fd, void *buf, size_t len, off_t off);

/* Create @path with @len bytes of @data; returns an O_RDWR fd or -1. */
int cm_create(const char *path, const void *data, size_t len);

/* Read a whole file into a malloc()ed buffer. */
uint8_t *cm_slurp(const char *path, size_t *lenp);

off_t cm_fsize(int fd);

/* ------------------------------------------------------------------------
 * Sessions
 */

int cm_open_dev(void);

/* ioctl returning 0 or -errno. */
int cm_ioctl(int fd, unsigned long cmd, void *arg);

int cm_bind(int dev, int fd, int log_fd, uint32_t flags,
	    uint32_t ring, struct cowmap_bind *out);

/* A new session bound to @fd (optionally with a log); -errno on failure. */
int cm_session(int fd, int log_fd, uint32_t ring);

int cm_info(int dev, struct cowmap_info *in);

void *cm_map(int dev, uint64_t off, size_t len, int prot);

int cm_discard(int dev, uint64_t off, uint64_t len, uint32_t flags,
	       uint64_t *pages);

int cm_drain(int dev, int log_fd, struct cowmap_drain *out);

/*
 * DIFF over [@off, @end) with a buffer of @buf_len, repeated until
 * COWMAP_DIFF_END; every call's records are appended to *@bufp (grown as
 * needed).  Returns the number of calls made, or -errno.
 */
int cm_diff_all(int dev, uint64_t off, uint64_t end,
		size_t buf_len, uint8_t **bufp, size_t *usedp,
		uint32_t *recordsp);

/*
 * Read events (one read(2), blocking unless the fd is O_NONBLOCK); returns
 * the count, or -errno.
 */
int cm_events(int dev, struct cowmap_event *ev, size_t max);

/*
 * Read every queued event of session @dev without blocking into @ev (at
 * most @max), whatever the fd's O_NONBLOCK.  Returns the count or -errno.
 */
int cm_events_all(int dev, struct cowmap_event *ev, size_t max);

int cm_set_nonblock(int fd, bool on);

uint64_t cm_now_ns(void);

/* ------------------------------------------------------------------------
 * CRC32C and log records, written independently of libcowmap
 */

uint32_t cm_crc32c_raw(uint32_t crc, const void *buf, size_t len);

/* CRC32C of @len bytes at @buf whose 4 bytes at @crc_off count as zero. */
uint32_t cm_crc32c_skip(const void *buf, size_t len, size_t crc_off);

struct cm_rec {
	uint64_t seq;
	uint64_t offset;
	uint32_t length;
	uint32_t flags;
	const uint8_t *old;
	const uint8_t *new;
};

/*
 * The next record of a buffer of log records (a DIFF buffer or a log after
 * its header).  Checks magic, CRC, zero padding and that it fits.  Returns
 * 1, 0 at the end, or -1 with a reason in @why (64 bytes).
 */
int cm_rec_next(const uint8_t *buf, size_t used, size_t *pos,
		struct cm_rec *r, char *why);

/*
 * After cm_rec_next() failed at @pos: is the rest of @buf the start of a
 * record cut short (a torn tail), rather than a bad record?
 */
int cm_rec_torn(const uint8_t *buf, size_t used, size_t pos);

/* ------------------------------------------------------------------------
 * Module parameters
 */

/*
 * Small text files (sysfs, procfs, cgroupfs): read one into @buf (trailing
 * newlines and blanks cut), or write @val to one.  0 or -errno.
 */
int cm_read_text(const char *path, char *buf, size_t len);

/* The same, untrimmed; returns the bytes read or -errno. */
int read_text(const char *path, char *buf, size_t len);

int cm_write_text(const char *path, const char *val);

int cm_param_read(const char *name, char *buf, size_t len);

int cm_param_write(const char *name, const char *val);

int cm_param_write_u64(const char *name, uint64_t v);

/* ------------------------------------------------------------------------
 * Generic netlink: COWMAP_CMD_GET_STATS -> one u64 of the STATS nest
 */

/* Reads COWMAP_STATS_A_@stat; returns 0 or -errno. */
int cm_nl_stat(int stat, uint64_t *val);

/* ------------------------------------------------------------------------
 * Child processes
 */

/* Wait for @pid; returns its wait status, or -1. */
int cm_wait(pid_t pid);

/* 1 if @name is in the comma-separated list $@env, or the list is unset. */
int cm_selected(const char *env, const char *name);

/* @len bytes of memory shared with forked children, or NULL. */
void *cm_shared(size_t len);

#endif /* COWMAP_SELFTEST_UTIL_H */
