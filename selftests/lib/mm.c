// SPDX-License-Identifier: GPL-2.0
/*
 * Memory-management helpers of the selftests: see mm.h.
 */
#include "mm.h"

void fill_pat(void *page, uint32_t seed, uint64_t pg)
{
	uint64_t *w = page;

	for (unsigned int j = 0; j < MM_WORDS; j++)
		w[j] = pat_word(seed, pg, j);
}

void fill_priv(volatile void *page, uint32_t tag, uint64_t pg)
{
	volatile uint64_t *w = page;

	for (unsigned int j = 0; j < MM_WORDS; j++)
		w[j] = priv_word(tag, pg, j);
}

int bad_pat(const volatile void *page, uint32_t seed, uint64_t pg)
{
	const volatile uint64_t *w = page;

	for (unsigned int j = 0; j < MM_WORDS; j++)
		if (w[j] != pat_word(seed, pg, j))
			return j;
	return -1;
}

int bad_priv(const volatile void *page, uint32_t tag, uint64_t pg)
{
	const volatile uint64_t *w = page;

	for (unsigned int j = 0; j < MM_WORDS; j++)
		if (w[j] != priv_word(tag, pg, j))
			return j;
	return -1;
}

int bad_zero(const volatile void *page)
{
	const volatile uint64_t *w = page;

	for (unsigned int j = 0; j < MM_WORDS; j++)
		if (w[j])
			return j;
	return -1;
}

int write_pat(int fd, uint32_t seed, uint64_t first, uint64_t pages)
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

int64_t file_bad_page(int fd, uint32_t seed, uint64_t first,
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

int64_t file_bad_zero(int fd, uint64_t first, uint64_t pages)
{
	static char buf[MM_PAGE] __attribute__((aligned(64)));

	for (uint64_t i = first; i < first + pages; i++) {
		if (pread(fd, buf, MM_PAGE, i * MM_PAGE) != (ssize_t)MM_PAGE ||
		    bad_zero(buf) >= 0)
			return i;
	}
	return -1;
}

bool congruent(const volatile void *addr, uint64_t off)
{
	return ((((uintptr_t)addr / MM_PAGE) - off / MM_PAGE) % MM_PMD_PAGES) == 0;
}

void *reserve_aligned(size_t len)
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

uint64_t pagemap_entry(const volatile void *addr)
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

bool pte_present(const volatile void *addr)
{
	return pagemap_entry(addr) & PM_PRESENT;
}

uint64_t pfn_of(const volatile void *addr)
{
	uint64_t e = pagemap_entry(addr);

	return (e & PM_PRESENT) ? (e & PM_PFN_MASK) : 0;
}

uint64_t kpageflags(uint64_t pfn)
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

long smaps_field(const volatile void *addr, const char *field)
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

static void probe_install(void)
{
	struct sigaction sa = {
		.sa_sigaction = probe_handler,
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

int probe_read(const volatile void *p, uint64_t *out)
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

int probe_write(volatile void *p, uint64_t v)
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

int write_text(const char *path, const char *s)
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

long long keyed_value(const char *path, const char *key)
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
