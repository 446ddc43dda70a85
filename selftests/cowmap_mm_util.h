/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of cowmap_mm_test.c: backing files with a recognisable pattern,
 * sessions, /proc/self/pagemap, /proc/self/smaps, probing an access for
 * SIGSEGV/SIGBUS, and small /proc and /sys readers.
 *
 * Nothing here uses the kselftest harness: the helpers return errors and the
 * tests assert.
 */
#ifndef COWMAP_MM_UTIL_H
#define COWMAP_MM_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/cowmap.h>

#define MM_EXT4_MAGIC	0xEF53
#define MM_XFS_MAGIC	0x58465342
#define MM_BTRFS_MAGIC	0x9123683E

#define MM_PAGE		4096UL
#define MM_PMD_SIZE	(2UL << 20)
#define MM_PMD_PAGES	(MM_PMD_SIZE / MM_PAGE)
#define MM_WORDS	(MM_PAGE / sizeof(uint64_t))

/*
 * Contents.  Word @j of page @pg of a backing file written with @seed, and
 * of a page the test wrote through cowmap with @tag.  Every word of every
 * page differs, so a page shown at the wrong offset is caught too.
 */
static inline uint64_t pat_word(uint32_t seed, uint64_t pg, unsigned int j)
{
	return 0x5EED000000000000ULL | ((uint64_t)(seed & 0xfff) << 36) |
	       ((pg & 0xffffff) << 12) | j;
}

static inline uint64_t priv_word(uint32_t tag, uint64_t pg, unsigned int j)
{
	return 0xC0DE000000000000ULL | ((uint64_t)(tag & 0xfff) << 36) |
	       ((pg & 0xffffff) << 12) | j;
}

static inline void fill_pat(void *page, uint32_t seed, uint64_t pg)
{
	uint64_t *w = page;

	for (unsigned int j = 0; j < MM_WORDS; j++)
		w[j] = pat_word(seed, pg, j);
}

static inline void fill_priv(volatile void *page, uint32_t tag, uint64_t pg)
{
	volatile uint64_t *w = page;

	for (unsigned int j = 0; j < MM_WORDS; j++)
		w[j] = priv_word(tag, pg, j);
}

/* Index of the first word of @page that is not file page @pg, or -1. */
static inline int bad_pat(const volatile void *page, uint32_t seed, uint64_t pg)
{
	const volatile uint64_t *w = page;

	for (unsigned int j = 0; j < MM_WORDS; j++)
		if (w[j] != pat_word(seed, pg, j))
			return j;
	return -1;
}

static inline int bad_priv(const volatile void *page, uint32_t tag, uint64_t pg)
{
	const volatile uint64_t *w = page;

	for (unsigned int j = 0; j < MM_WORDS; j++)
		if (w[j] != priv_word(tag, pg, j))
			return j;
	return -1;
}

static inline int bad_zero(const volatile void *page)
{
	const volatile uint64_t *w = page;

	for (unsigned int j = 0; j < MM_WORDS; j++)
		if (w[j])
			return j;
	return -1;
}

/* Write @pages pages of pattern @seed at page @first of @fd. */
static inline int write_pat(int fd, uint32_t seed, uint64_t first, uint64_t pages)
{
	const uint64_t chunk = 256;	/* pages per write: 1 MiB */
	char *buf = malloc(chunk * MM_PAGE);

	if (!buf)
		return -ENOMEM;
	for (uint64_t done = 0; done < pages;) {
		uint64_t n = pages - done < chunk ? pages - done : chunk;
		ssize_t w;

		for (uint64_t i = 0; i < n; i++)
			fill_pat(buf + i * MM_PAGE, seed, first + done + i);
		w = pwrite(fd, buf, n * MM_PAGE, (first + done) * MM_PAGE);
		if (w != (ssize_t)(n * MM_PAGE)) {
			free(buf);
			return w < 0 ? -errno : -EIO;
		}
		done += n;
	}
	free(buf);
	return 0;
}

/*
 * Compare pages [@first, @first + @pages) of @fd (read with pread) with
 * pattern @seed.  Returns the first differing page, or -1.
 */
static inline int64_t file_bad_page(int fd, uint32_t seed, uint64_t first,
				    uint64_t pages)
{
	static char buf[MM_PAGE] __attribute__((aligned(64)));

	for (uint64_t i = first; i < first + pages; i++) {
		if (pread(fd, buf, MM_PAGE, i * MM_PAGE) != (ssize_t)MM_PAGE ||
		    bad_pat(buf, seed, i) >= 0)
			return i;
	}
	return -1;
}

static inline int64_t file_bad_zero(int fd, uint64_t first, uint64_t pages)
{
	static char buf[MM_PAGE] __attribute__((aligned(64)));

	for (uint64_t i = first; i < first + pages; i++) {
		if (pread(fd, buf, MM_PAGE, i * MM_PAGE) != (ssize_t)MM_PAGE ||
		    bad_zero(buf) >= 0)
			return i;
	}
	return -1;
}

/* Sessions. */

/* Open /dev/cowmap and bind it to @backing_fd; returns the fd or -errno. */
static inline int cm_session(int backing_fd, uint32_t ring_size)
{
	struct cowmap_bind b = {
		.fd = backing_fd,
		.ring_size = ring_size,
	};
	int fd = open(COWMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, COWMAP_IOC_BIND, &b)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static inline int cm_info(int fd, struct cowmap_info *in)
{
	memset(in, 0, sizeof(*in));
	return ioctl(fd, COWMAP_IOC_INFO, in) ? -errno : 0;
}

/*
 * Read every queued event of session @fd (without blocking) into @ev (at
 * most @max).  Returns the count or -errno.
 */
static inline long cm_events(int fd, struct cowmap_event *ev, size_t max)
{
	int fl = fcntl(fd, F_GETFL);
	size_t n = 0;
	long ret;

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	for (;;) {
		ssize_t r;

		if (n == max)
			break;
		r = read(fd, ev + n, (max - n) * sizeof(*ev));
		if (r < 0) {
			if (errno == EAGAIN)
				break;
			ret = -errno;
			fcntl(fd, F_SETFL, fl);
			return ret;
		}
		if (r == 0 || r % sizeof(*ev)) {
			fcntl(fd, F_SETFL, fl);
			return -EPROTO;
		}
		n += r / sizeof(*ev);
	}
	fcntl(fd, F_SETFL, fl);
	return n;
}

/* Addresses. */

/* Is a mapping of file offset @off at @addr PMD-congruent? */
static inline bool congruent(const volatile void *addr, uint64_t off)
{
	return ((((uintptr_t)addr / MM_PAGE) - off / MM_PAGE) % MM_PMD_PAGES) == 0;
}

/*
 * A free, 2 MiB-aligned range of @len bytes (reserved PROT_NONE; MAP_FIXED
 * and MREMAP_FIXED replace it).  The rest of the reservation is returned
 * to the system.  Returns NULL on failure.
 */
static inline void *reserve_aligned(size_t len)
{
	size_t total = len + MM_PMD_SIZE;
	char *r = mmap(NULL, total, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *a;

	if (r == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)r + MM_PMD_SIZE - 1) & ~(MM_PMD_SIZE - 1));
	if (a > r)
		munmap(r, a - r);
	if (r + total > a + len)
		munmap(a + len, r + total - (a + len));
	return a;
}

/* /proc/self/pagemap: the entry of @addr, or 0 on error. */
static inline uint64_t pagemap_entry(const volatile void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, sizeof(e), ((uintptr_t)addr / MM_PAGE) * sizeof(e)) !=
	    sizeof(e))
		e = 0;
	close(fd);
	return e;
}

#define PM_PRESENT	(1ULL << 63)
#define PM_PFN_MASK	((1ULL << 55) - 1)
#define PM_SOFT_DIRTY	(1ULL << 55)

static inline bool pte_present(const volatile void *addr)
{
	return pagemap_entry(addr) & PM_PRESENT;
}

/* The PFN mapped at @addr; 0 if not present or hidden (not root). */
static inline uint64_t pfn_of(const volatile void *addr)
{
	uint64_t e = pagemap_entry(addr);

	return (e & PM_PRESENT) ? (e & PM_PFN_MASK) : 0;
}

/* /proc/kpageflags bits of @pfn, or 0. */
#define KPF_COMPOUND_HEAD	15
#define KPF_COMPOUND_TAIL	16
#define KPF_THP			22

static inline uint64_t kpageflags(uint64_t pfn)
{
	uint64_t f = 0;
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &f, sizeof(f), pfn * sizeof(f)) != sizeof(f))
		f = 0;
	close(fd);
	return f;
}

/*
 * The value (kB) of field @field ("FilePmdMapped:", "Rss:", ...) of the
 * /proc/self/smaps entry of the VMA containing @addr; -1 if not found.
 */
static inline long smaps_field(const volatile void *addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	uintptr_t a = (uintptr_t)addr;
	char line[512];
	bool in = false;
	long val = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		long v;

		/* VMA lines start with a lower-case hex address, fields with a
		 * capital letter ("Rss:", "FilePmdMapped:", "VmFlags:"). */
		if ((line[0] >= '0' && line[0] <= '9') ||
		    (line[0] >= 'a' && line[0] <= 'f')) {
			in = sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
			     a >= lo && a < hi;
			continue;
		}
		if (in && !strncmp(line, field, strlen(field)) &&
		    sscanf(line + strlen(field), "%ld", &v) == 1) {
			val = v;
			break;
		}
	}
	fclose(f);
	return val;
}

/* Probing accesses that may fault: returns 0 or the signal (SIGSEGV/SIGBUS). */
static __thread sigjmp_buf *volatile probe_jb;

static void probe_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (probe_jb)
		siglongjmp(*probe_jb, sig);
	/* Not a probe: die of it. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static inline void probe_install(void)
{
	struct sigaction sa = {
		.sa_sigaction = probe_handler,
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

static inline int probe_read(const volatile void *p, uint64_t *out)
{
	sigjmp_buf jb;
	int sig;

	probe_install();
	sig = sigsetjmp(jb, 1);
	if (sig == 0) {
		uint64_t v;

		probe_jb = &jb;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		v = *(const volatile uint64_t *)p;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		probe_jb = NULL;
		if (out)
			*out = v;
		return 0;
	}
	probe_jb = NULL;
	return sig;
}

static inline int probe_write(volatile void *p, uint64_t v)
{
	sigjmp_buf jb;
	int sig;

	probe_install();
	sig = sigsetjmp(jb, 1);
	if (sig == 0) {
		probe_jb = &jb;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		*(volatile uint64_t *)p = v;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		probe_jb = NULL;
		return 0;
	}
	probe_jb = NULL;
	return sig;
}

/* Small file readers. */

static inline int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return n;
}

static inline int write_text(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err = 0;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0)
		err = -errno;
	else if ((size_t)n != strlen(s))
		err = -EIO;
	close(fd);
	return err;
}

/* "key value" files (memory.stat, memory.events, /proc/meminfo, vmstat). */
static inline long long keyed_value(const char *path, const char *key)
{
	FILE *f = fopen(path, "re");
	char k[128];
	long long v, ret = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%127s %lld%*[^\n]", k, &v) == 2) {
		size_t kl = strlen(k);

		if (kl && k[kl - 1] == ':')
			k[kl - 1] = 0;
		if (!strcmp(k, key)) {
			ret = v;
			break;
		}
	}
	fclose(f);
	return ret;
}

#endif /* COWMAP_MM_UTIL_H */
