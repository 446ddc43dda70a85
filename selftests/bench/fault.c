// SPDX-License-Identifier: GPL-2.0
/*
 * COW write faults: cowmap against the kernel's MAP_PRIVATE COW, the
 * prototype's mechanism done in userspace (SIGSEGV + copy + remap), and
 * userfaultfd write-protect; thread scaling and the event ring's cost; and
 * calibrations of the copy instructions the kernel paths use.
 *
 * Every case maps a warm page-cache file of opt.fault_mb MiB and touches one
 * byte per page; ns/page is wall time of the touching loop divided by the
 * pages, flt/page the minor faults (getrusage) per page.  Cases of a group
 * run interleaved, one repetition of each in turn, so that load from outside
 * the VM spreads over all of them alike.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/cowmap.h>
#include <linux/userfaultfd.h>

#include "bench.h"

#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

static int ffd = -1;		/* the fault file, O_RDONLY */
static size_t npages, flen;

struct sample {
	double ns, flt, tlb;	/* per page */
};

static void fault_file(void)
{
	char *path;
	int fd;

	if (ffd >= 0)
		return;
	npages = opt.fault_mb * MIB / PAGE;
	flen = npages * PAGE;
	path = path_in("bench-fault.dat");
	fd = make_file(path, flen, 0);
	close(fd);
	ffd = open(path, O_RDONLY);
	if (ffd < 0)
		die("open %s", path);
	warm_file(ffd, flen);
}

static inline void touch_write(volatile char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i * PAGE] = (char)i;
}

static inline long touch_read(volatile char *p, size_t n)
{
	long sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += p[i * PAGE];
	return sum;
}

struct meter {
	uint64_t t;
	long flt, tlb;
};

static void meter_start(struct meter *m)
{
	m->tlb = tlb_shootdowns();
	m->flt = minflt();
	mark("BENCH-BEGIN %s", cur_case);
	m->t = now_ns();
}

static struct sample meter_stop(const struct meter *m, size_t pages)
{
	uint64_t t = now_ns();
	long flt = minflt(), tlb;

	mark("BENCH-END %zu", pages);
	tlb = tlb_shootdowns();
	struct sample s = {
		.ns = (double)(t - m->t) / pages,
		.flt = (double)(flt - m->flt) / pages,
		.tlb = m->tlb < 0 ? NAN : (double)(tlb - m->tlb) / pages,
	};
	return s;
}

static uint64_t cow_faults(int s)
{
	struct cowmap_info info;

	memset(&info, 0, sizeof(info));
	if (ioctl(s, COWMAP_IOC_INFO, &info))
		die("COWMAP_IOC_INFO");
	return info.cow_faults;
}

static int cow_count_bad;

/* kind: 0 first write, 1 write after read, 2 refault of private pages */
static struct sample cowmap_case(int kind, uint32_t ring)
{
	int s = cowmap_open_bound(ffd, ring);
	char *p = xmmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
	struct meter m;
	struct sample r;

	if (kind == 1)
		touch_read(p, npages);
	if (kind == 2) {
		touch_write(p, npages);
		if (madvise(p, flen, MADV_DONTNEED))
			die("madvise");
	}
	meter_start(&m);
	touch_write(p, npages);
	r = meter_stop(&m, npages);
	if (cow_faults(s) != npages)
		cow_count_bad++;
	munmap(p, flen);
	close(s);
	return r;
}

/*
 * First writes while @others other sessions (in this process) have the
 * whole file mapped and read.  A COW zaps the offset in its own session's
 * VMAs only, so the others keep their PTEs; *@induced is the faults per
 * page the others then take to read the file again (0 when they were left
 * alone).
 */
#define FANOUT 8

static struct sample cowmap_fanout_case(double *induced)
{
	int s = cowmap_open_bound(ffd, 0), os[FANOUT];
	char *p = xmmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
	char *op[FANOUT];
	struct meter m;
	struct sample r;
	long f0;

	for (int i = 0; i < FANOUT; i++) {
		os[i] = cowmap_open_bound(ffd, 0);
		op[i] = xmmap(NULL, flen, PROT_READ, MAP_SHARED, os[i], 0);
		touch_read(op[i], npages);
	}
	meter_start(&m);
	touch_write(p, npages);
	r = meter_stop(&m, npages);
	f0 = minflt();
	for (int i = 0; i < FANOUT; i++)
		touch_read(op[i], npages);
	*induced = (double)(minflt() - f0) / npages / FANOUT;
	for (int i = 0; i < FANOUT; i++) {
		munmap(op[i], flen);
		close(os[i]);
	}
	if (cow_faults(s) != npages)
		cow_count_bad++;
	munmap(p, flen);
	close(s);
	return r;
}

static struct sample private_case(int kind)
{
	char *p = xmmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_PRIVATE, ffd, 0);
	struct meter m;
	struct sample r;

	if (kind == 1)
		touch_read(p, npages);
	meter_start(&m);
	touch_write(p, npages);
	r = meter_stop(&m, npages);
	munmap(p, flen);
	return r;
}

/*
 * The floor of a write after read done from a module (docs/benchmarks.md,
 * "The floor of a write after read"): the kernel's own COW given the
 * structure ->page_mkwrite forces on cowmap, a read-only PTE zapped and a
 * full write fault afterwards.  As in private_case(1), the reads are not
 * timed; the zap is timed, as cowmap's is (inside its write fault).  Each
 * write is then a do_cow_fault().
 *
 * !@each: one madvise over the range, its syscall and TLB flush amortised;
 * *@zap_ns is its share.  @each: one madvise per page before its write,
 * a flush per page as a module's zap in ->page_mkwrite does (and one
 * syscall entry more); @zap_ns is not used.
 */
static struct sample private_drop_case(bool each, double *zap_ns)
{
	char *p = xmmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_PRIVATE, ffd, 0);
	struct meter m;
	struct sample r;
	uint64_t t;

	touch_read(p, npages);
	meter_start(&m);
	if (each) {
		for (size_t i = 0; i < npages; i++) {
			if (madvise(p + i * PAGE, PAGE, MADV_DONTNEED))
				die("madvise");
			((volatile char *)p)[i * PAGE] = (char)i;
		}
		r = meter_stop(&m, npages);
	} else {
		if (madvise(p, flen, MADV_DONTNEED))
			die("madvise");
		t = now_ns();
		touch_write(p, npages);
		r = meter_stop(&m, npages);
		*zap_ns = (double)(t - m.t) / npages;
	}
	munmap(p, flen);
	return r;
}

/* ------------------------------------------------------------------ */
/* Calibration: what the copy instructions cost in this (emulated) CPU. */

static void copy_movsb(void *d, const void *s, size_t n)
{
	asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static void copy_movsq(void *d, const void *s, size_t n)
{
	n /= 8;
	asm volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static void copy_regs(void *d, const void *s, size_t n)
{
	uint64_t *dd = d;
	const uint64_t *ss = s;

	for (size_t i = 0; i < n / 8; i += 8) {
		uint64_t a = ss[i], b = ss[i + 1], c = ss[i + 2], e = ss[i + 3];
		uint64_t f = ss[i + 4], g = ss[i + 5], h = ss[i + 6], k = ss[i + 7];

		asm volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(e));
		dd[i] = a; dd[i + 1] = b; dd[i + 2] = c; dd[i + 3] = e;
		dd[i + 4] = f; dd[i + 5] = g; dd[i + 6] = h; dd[i + 7] = k;
	}
}

static void copy_libc(void *d, const void *s, size_t n)
{
	memcpy(d, s, n);
}

static void clear_stosb(void *d, const void *s, size_t n)
{
	(void)s;
	asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(0) : "memory");
}

static void clear_stosq(void *d, const void *s, size_t n)
{
	(void)s;
	n /= 8;
	asm volatile("rep stosq" : "+D"(d), "+c"(n) : "a"(0) : "memory");
}

static double time_copy(void (*fn)(void *, const void *, size_t), char *dst,
			const char *src, size_t pages, int rounds)
{
	uint64_t t0 = now_ns();

	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < pages; i++)
			fn(dst + i * PAGE, src + i * PAGE, PAGE);
	return (double)(now_ns() - t0) / (pages * rounds);
}

/* libcowmap's CRC32C implementations (lib/crc32c.c, hidden in the .so). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool crc32c_hw_available(void);

static volatile uint32_t crc_sink;

static double time_crc(uint32_t (*fn)(uint32_t, const void *, size_t),
		       const char *buf, int rounds)
{
	uint64_t t0 = now_ns();

	for (int r = 0; r < rounds; r++)
		crc_sink += fn(0, buf + (r & 63) * PAGE, 2 * PAGE);
	return (double)(now_ns() - t0) / rounds;
}

static long getppid_raw(void)
{
	return syscall(SYS_getppid);
}

void bench_calibrate(void)
{
	static const struct {
		const char *name;
		void (*fn)(void *, const void *, size_t);
	} fns[] = {
		{ "copy 4KiB rep movsb", copy_movsb },
		{ "copy 4KiB rep movsq", copy_movsq },
		{ "copy 4KiB movq loop", copy_regs },
		{ "copy 4KiB glibc memcpy", copy_libc },
		{ "clear 4KiB rep stosb", clear_stosb },
		{ "clear 4KiB rep stosq", clear_stosq },
	};
	enum { NF = sizeof(fns) / sizeof(fns[0]) };
	struct series ser[NF + 5];
	size_t pages = 256;	/* 1 MiB: cache-warm, like one page at a time */
	char *src = xmmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	char *dst = xmmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	size_t an = 2048;

	memset(ser, 0, sizeof(ser));
	memset(src, 1, pages * PAGE);
	for (int r = 0; r < (opt.reps < 3 ? opt.reps : 3); r++) {
		uint64_t t0;
		long f0;
		char *a;

		for (int i = 0; i < NF; i++)
			series_add(&ser[i], time_copy(fns[i].fn, dst, src, pages, 4),
				   -1);
		t0 = now_ns();
		for (int i = 0; i < 20000; i++)
			getppid_raw();
		series_add(&ser[NF], (double)(now_ns() - t0) / 20000, -1);
		series_add(&ser[NF + 3], time_crc(crc32c_sw, src, 64), -1);
		if (crc32c_hw_available())
			series_add(&ser[NF + 4], time_crc(crc32c_hw, src, 64), -1);

		/* Anonymous first-touch fault: fault + allocation + zeroing. */
		prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
		a = xmmap(NULL, an * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		f0 = minflt();
		t0 = now_ns();
		touch_write(a, an);
		series_add(&ser[NF + 1], (double)(now_ns() - t0) / an,
			   (double)(minflt() - f0) / an);
		/* Zap one present page at a time (TLB flush included). */
		t0 = now_ns();
		for (size_t i = 0; i < an; i++)
			madvise(a + i * PAGE, PAGE, MADV_DONTNEED);
		series_add(&ser[NF + 2], (double)(now_ns() - t0) / an, -1);
		munmap(a, an * PAGE);
		prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
	}
	for (int i = 0; i < NF; i++)
		row_series("calib", fns[i].name, "ns/4KiB", &ser[i], "userspace");
	row_series("calib", "syscall getppid", "ns", &ser[NF], "kernel entry+exit");
	row_series("calib", "anon first-touch write fault", "ns/page", &ser[NF + 1],
		   "fault + alloc + clear_page");
	row_series("calib", "madvise(DONTNEED) one page", "ns/page", &ser[NF + 2],
		   "zap one present PTE + TLB flush");
	row_series("calib", "crc32c 8KiB slicing-by-8", "ns/8KiB", &ser[NF + 3],
		   "software CRC, as the kernel's __crc32c_le");
	if (ser[NF + 4].n)
		row_series("calib", "crc32c 8KiB SSE4.2 crc32", "ns/8KiB", &ser[NF + 4],
			   "the crc32 instruction, as crc32c-intel");
	munmap(src, pages * PAGE);
	munmap(dst, pages * PAGE);
}

/* ------------------------------------------------------------------ */

static void row_sample(const char *name, struct series *s, double *tlb, int n,
		       const char *extra)
{
	char note_[160];

	if (tlb && !isnan(median(tlb, n)))
		snprintf(note_, sizeof(note_), "TLB IPIs/page %.2f%s%s",
			 median(tlb, n), extra ? "; " : "", extra ? extra : "");
	else
		snprintf(note_, sizeof(note_), "%s", extra ? extra : "");
	row_series("fault", name, "ns/page", s, note_);
}

void bench_fault(void)
{
	enum { CF, PF, CW, PW, PD, PE, CR, R16, RBIG, FAN, NC };
	static const char *const names[NC] = {
		[CF] = "cowmap first-write",
		[PF] = "MAP_PRIVATE first-write",
		[CW] = "cowmap write-after-read",
		[PW] = "MAP_PRIVATE write-after-read",
		[PD] = "MAP_PRIVATE read, drop, write",
		[PE] = "MAP_PRIVATE read, drop each, write",
		[CR] = "cowmap refault private (no copy)",
		[R16] = "cowmap first-write ring 16",
		[RBIG] = "cowmap first-write ring 16384",
		[FAN] = "cowmap first-write, 8 other sessions",
	};
	static const char *const extra[NC] = {
		[CF] = "copy_highpage x2 (copy + base)",
		[PF] = "do_cow_fault",
		[CW] = "page_mkwrite COW, zap, refault",
		[PW] = "wp_page_copy",
		[PD] = "timed: one madvise(DONTNEED) of the read PTEs + do_cow_fault per page",
		[PE] = "timed: per page, madvise(DONTNEED) of its read PTE + do_cow_fault",
		[CR] = "after MADV_DONTNEED: fault + page_mkwrite",
		[R16] = "ring overflows",
		[RBIG] = "no overflow",
		[FAN] = "8 other sessions of this file have every page mapped",
	};
	struct series ser[NC];
	double tlb[NC][MAX_REPS], ind[MAX_REPS], zap[MAX_REPS];
	int nind = 0, nzap = 0;

	fault_file();
	memset(ser, 0, sizeof(ser));
	for (int r = 0; r < opt.reps; r++) {
		for (int k = 0; k < NC; k++) {
			int c = (k + r) % NC;	/* rotate the order */
			struct sample s;

			if ((!opt.have_cowmap && c != PF && c != PW && c != PD && c != PE) ||
			    !want(names[c]))
				continue;
			cur_case = names[c];
			switch (c) {
			case CF: s = cowmap_case(0, 0); break;
			case PF: s = private_case(0); break;
			case CW: s = cowmap_case(1, 0); break;
			case PW: s = private_case(1); break;
			case PD: s = private_drop_case(false, &zap[nzap++]); break;
			case PE: s = private_drop_case(true, NULL); break;
			case CR: s = cowmap_case(2, 0); break;
			case R16: s = cowmap_case(0, COWMAP_RING_MIN); break;
			case RBIG: s = cowmap_case(0, 16384); break;
			default: s = cowmap_fanout_case(&ind[nind++]); break;
			}
			tlb[c][ser[c].n] = s.tlb;
			series_add(&ser[c], s.ns, s.flt);
		}
	}
	for (int c = 0; c < NC; c++) {
		if (!want(names[c]))
			continue;
		if (!ser[c].n)
			row_skip("fault", names[c], "no /dev/cowmap");
		else
			row_sample(names[c], &ser[c], tlb[c], ser[c].n, extra[c]);
	}
	if (nind)
		note("COW with %d other sessions mapped: each of them then takes %.3f faults per page to read the file again (0 if a COW left other sessions' PTEs alone; 1/16 = every fault-around window zapped)",
		     FANOUT, median(ind, nind));
	if (nzap)
		note("MAP_PRIVATE read, drop, write: of its time per page, %.0f ns is the madvise(DONTNEED) over the range, the rest the write faults",
		     median(zap, nzap));
	if (cow_count_bad)
		note("%d cowmap runs did not report exactly one COW per page (INFO.cow_faults)",
		     cow_count_bad);
	note("fault cases: %zu MiB file (%zu pages), page cache warm, one byte written per page",
	     opt.fault_mb, npages);
}

/* ------------------------------------------------------------------ */
/* The prototype's mechanism in userspace. */

enum { U_MMAP, U_MREMAP, U_MPROTECT };
static int umode;
static char *pool;
static size_t pool_left;
static char bounce[PAGE] __attribute__((aligned(64)));
#define POOL_PAGES 512

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	char *page = (char *)((unsigned long)si->si_addr & ~(PAGE - 1));

	(void)sig;
	(void)uc;
	switch (umode) {
	case U_MMAP:
		/* The prototype: copy the page, put a private page there. */
		memcpy(bounce, page, PAGE);
		if (mmap(page, PAGE, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
			abort();
		memcpy(page, bounce, PAGE);
		break;
	case U_MREMAP: {
		/* Copy into a pre-populated page, then move it in place (the
		 * userspace equivalent of the prototype's PTE rewrite). */
		char *np;

		if (!pool_left) {
			pool = mmap(NULL, POOL_PAGES * PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
			if (pool == MAP_FAILED)
				abort();
			pool_left = POOL_PAGES;
		}
		np = pool + (POOL_PAGES - pool_left--) * PAGE;
		memcpy(np, page, PAGE);
		if (mremap(np, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, page) ==
		    MAP_FAILED)
			abort();
		break;
	}
	default:
		/* Let the kernel copy: the write refaults into MAP_PRIVATE COW. */
		if (mprotect(page, PAGE, PROT_READ | PROT_WRITE))
			abort();
		break;
	}
}

static struct sample usercow_case(int mode)
{
	int flags = mode == U_MPROTECT ? MAP_PRIVATE : MAP_SHARED;
	char *p = xmmap(NULL, flen, PROT_READ, flags, ffd, 0);
	struct meter m;
	struct sample r;

	umode = mode;
	pool_left = 0;
	meter_start(&m);
	touch_write(p, npages);
	r = meter_stop(&m, npages);
	munmap(p, flen);
	/* Pool chunks were all moved out: nothing left to unmap but a tail. */
	if (pool_left)
		munmap(pool + (POOL_PAGES - pool_left) * PAGE, pool_left * PAGE);
	return r;
}

/* userfaultfd write-protect, synchronous handler thread. */
struct uffd_ctx {
	int uffd;
	size_t pages;
	char *snap;		/* where the handler copies pages to */
	char **chunks;		/* every snapshot chunk, to unmap */
	size_t snapped;
	int err;
};

static void *uffd_thread(void *arg)
{
	struct uffd_ctx *c = arg;
	struct uffd_msg msg;
	size_t done = 0;

	while (done < c->pages) {
		struct pollfd pfd = { .fd = c->uffd, .events = POLLIN };
		struct uffdio_writeprotect wp;
		unsigned long page;

		if (poll(&pfd, 1, 20000) <= 0) {
			c->err = ETIMEDOUT;
			break;
		}
		if (read(c->uffd, &msg, sizeof(msg)) != sizeof(msg)) {
			if (errno == EAGAIN)
				continue;
			c->err = errno;
			break;
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT ||
		    !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP))
			continue;
		page = msg.arg.pagefault.address & ~(PAGE - 1);
		if (c->snapped % POOL_PAGES == 0) {
			c->snap = mmap(NULL, POOL_PAGES * PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
				       -1, 0);
			if (c->snap == MAP_FAILED) {
				c->err = errno;
				break;
			}
			c->chunks[c->snapped / POOL_PAGES] = c->snap;
		}
		/* The base snapshot cowmap keeps; the page itself is private. */
		memcpy(c->snap + (c->snapped++ % POOL_PAGES) * PAGE, (void *)page,
		       PAGE);
		wp.range.start = page;
		wp.range.len = PAGE;
		wp.mode = 0;
		if (ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp)) {
			c->err = errno;
			break;
		}
		done++;
	}
	return NULL;
}

static int uffd_open(uint64_t features, int *err)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

/* Can a mapping be registered for WP?  Returns 0 or the errno. */
static int uffd_try_register(void *addr, size_t len, uint64_t features)
{
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int err = 0, fd = uffd_open(features, &err);

	if (fd < 0)
		return err;
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		err = errno;
	close(fd);
	return err;
}

static void uffd_probe(void)
{
	int rw = open(path_in("bench-fault.dat"), O_RDWR);
	char *sh = xmmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
	char *pr = xmmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_PRIVATE, ffd, 0);
	int e1 = uffd_try_register(sh, flen, 0);
	int e2 = uffd_try_register(pr, flen, 0);
	int e3 = uffd_try_register(sh, flen, UFFD_FEATURE_WP_ASYNC);
	int e4 = -1;

	munmap(sh, flen);
	munmap(pr, flen);
	close(rw);
	if (opt.have_cowmap) {
		int s = cowmap_open_bound(ffd, 0);
		char *c = xmmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);

		e4 = uffd_try_register(c, flen, 0);
		munmap(c, flen);
		close(s);
	}
	note("uffd-wp register, synchronous: ext4 MAP_SHARED %s, ext4 MAP_PRIVATE %s, cowmap mapping %s; "
	     "with UFFD_FEATURE_WP_ASYNC on ext4 MAP_SHARED: %s (async mode resolves faults in the kernel, no handler runs: not an equivalent)",
	     e1 ? strerrorname_np(e1) : "ok", e2 ? strerrorname_np(e2) : "ok",
	     e4 < 0 ? "not tried" : e4 ? strerrorname_np(e4) : "ok",
	     e3 ? strerrorname_np(e3) : "accepted");
}

static struct sample uffd_case(int *errp)
{
	struct uffd_ctx c = { .pages = npages };
	char *chunks[npages / POOL_PAGES + 1];
	struct uffdio_register reg;
	struct uffdio_writeprotect wp;
	struct sample r = { NAN, NAN, NAN };
	struct meter m;
	pthread_t th;
	char *p;
	int err = 0;

	c.chunks = chunks;
	p = xmmap(NULL, flen, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(p, flen, MADV_NOHUGEPAGE);
	/* The private copy of the file (not timed). */
	if (pread(ffd, p, flen, 0) != (ssize_t)flen)
		die("pread");
	c.uffd = uffd_open(0, &err);
	if (c.uffd < 0)
		goto out;
	reg.range.start = (unsigned long)p;
	reg.range.len = flen;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(c.uffd, UFFDIO_REGISTER, &reg)) {
		err = errno;
		goto out_close;
	}
	wp.range = reg.range;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	if (ioctl(c.uffd, UFFDIO_WRITEPROTECT, &wp)) {
		err = errno;
		goto out_close;
	}
	pthread_create(&th, NULL, uffd_thread, &c);
	meter_start(&m);
	touch_write(p, npages);
	r = meter_stop(&m, npages);
	pthread_join(th, NULL);
	err = c.err;
	for (size_t i = 0; i < (c.snapped + POOL_PAGES - 1) / POOL_PAGES; i++)
		munmap(c.chunks[i], POOL_PAGES * PAGE);
out_close:
	close(c.uffd);
out:
	munmap(p, flen);
	*errp = err;
	return r;
}

void bench_usercow(void)
{
	enum { NU = 5 };
	static const char *const names[NU] = {
		"sigsegv+mmap-fixed anon", "sigsegv+mremap (pool)",
		"sigsegv+mprotect (MAP_PRIVATE)", "uffd-wp anon copy",
		"cowmap first-write (usercow)",
	};
	static const char *const extra[NU] = {
		"MAP_SHARED RO; handler: copy out, mmap anon MAP_FIXED, copy back",
		"MAP_SHARED RO; handler: copy to populated page, mremap in place",
		"MAP_PRIVATE RO; handler: mprotect RW, kernel COW on refault",
		"anon copy of file, WP; thread: copy page, un-WP",
		"the reference, interleaved with the above",
	};
	struct series ser[NU];
	double tlb[NU][MAX_REPS];
	struct sigaction sa, old;
	int uerr = 0, reps = opt.reps < 5 ? opt.reps : 5;
	size_t save = npages;

	fault_file();
	/* Signals and thread hand-offs are slow under TCG: a smaller file. */
	npages = opt.usercow_mb * MIB / PAGE;
	if (npages > save)
		npages = save;
	flen = npages * PAGE;
	memset(ser, 0, sizeof(ser));
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, &old);
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	uffd_probe();
	for (int r = 0; r < reps; r++) {
		for (int k = 0; k < NU; k++) {
			int c = (k + r) % NU;
			struct sample s;

			if (!want(names[c]) || (c == 4 && !opt.have_cowmap))
				continue;
			cur_case = names[c];
			if (c < 3) {
				s = usercow_case(c);
			} else if (c == 4) {
				s = cowmap_case(0, 0);
			} else {
				if (uerr)
					continue;
				s = uffd_case(&uerr);
				if (uerr)
					continue;
			}
			tlb[c][ser[c].n] = s.tlb;
			series_add(&ser[c], s.ns, s.flt);
		}
	}
	prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
	sigaction(SIGSEGV, &old, NULL);
	for (int c = 0; c < NU; c++) {
		if (!want(names[c]))
			continue;
		if (!ser[c].n) {
			char why[128];

			snprintf(why, sizeof(why), "%s",
				 c == 4 ? "no /dev/cowmap" : "not supported");
			if (c == 3)
				snprintf(why, sizeof(why), "not supported: %s",
					 strerrorname_np(uerr) ?: "?");
			row_skip("usercow", names[c], why);
			continue;
		}
		{
			char note_[200];

			snprintf(note_, sizeof(note_), "TLB IPIs/page %.2f; %s",
				 median(tlb[c], ser[c].n), extra[c]);
			row_series("usercow", names[c], "ns/page", &ser[c], note_);
		}
	}
	note("usercow cases: %zu MiB (%zu pages), %d repetitions; the SIGSEGV itself is not a counted fault",
	     npages * PAGE / MIB, npages, reps);
	npages = save;
	flen = npages * PAGE;
}

/* ------------------------------------------------------------------ */
/* Thread scaling. */

struct tctx {
	pthread_barrier_t *bar;
	volatile char *p;
	size_t first, n;
};

static void *writer(void *arg)
{
	struct tctx *t = arg;

	pthread_barrier_wait(t->bar);
	touch_write(t->p + t->first * PAGE, t->n);
	return NULL;
}

/* threads: 1 or 2; same: both threads write every page. */
static struct sample threads_case(bool cowmap, int threads, bool same)
{
	pthread_barrier_t bar;
	pthread_t th[2];
	struct tctx t[2];
	struct meter m;
	struct sample r;
	int s = -1;
	char *p;

	if (cowmap) {
		s = cowmap_open_bound(ffd, 0);
		p = xmmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
	} else {
		p = xmmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_PRIVATE, ffd, 0);
	}
	pthread_barrier_init(&bar, NULL, threads + 1);
	for (int i = 0; i < threads; i++) {
		t[i].bar = &bar;
		t[i].p = p;
		if (same || threads == 1) {
			t[i].first = 0;
			t[i].n = npages;
		} else {
			t[i].first = i * (npages / 2);
			t[i].n = i ? npages - npages / 2 : npages / 2;
		}
		pthread_create(&th[i], NULL, writer, &t[i]);
	}
	meter_start(&m);
	pthread_barrier_wait(&bar);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	r = meter_stop(&m, npages);
	pthread_barrier_destroy(&bar);
	if (cowmap && cow_faults(s) != npages)
		cow_count_bad++;
	munmap(p, flen);
	if (s >= 0)
		close(s);
	return r;
}

void bench_scaling(void)
{
	static const char *const names[6] = {
		"cowmap 1 thread", "cowmap 2 threads distinct",
		"cowmap 2 threads same pages", "MAP_PRIVATE 1 thread",
		"MAP_PRIVATE 2 threads distinct", "MAP_PRIVATE 2 threads same pages",
	};
	struct series ser[6];
	double tlb[6][MAX_REPS];
	int reps = opt.reps < 3 ? opt.reps : 3;

	fault_file();
	memset(ser, 0, sizeof(ser));
	cow_count_bad = 0;
	for (int r = 0; r < reps; r++) {
		for (int k = 0; k < 6; k++) {
			int c = (k + r) % 6;
			bool cm = c < 3;
			struct sample s;

			if ((cm && !opt.have_cowmap) || !want(names[c]))
				continue;
			cur_case = names[c];
			s = threads_case(cm, c % 3 ? 2 : 1, c % 3 == 2);
			tlb[c][ser[c].n] = s.tlb;
			series_add(&ser[c], s.ns, s.flt);
		}
	}
	for (int c = 0; c < 6; c++) {
		char note_[160];

		if (!want(names[c]))
			continue;
		if (!ser[c].n) {
			row_skip("scaling", names[c], "no /dev/cowmap");
			continue;
		}
		snprintf(note_, sizeof(note_),
			 "wall ns per page COWed (all threads); TLB IPIs/page %.2f",
			 median(tlb[c], ser[c].n));
		row_series("scaling", names[c], "ns/page", &ser[c], note_);
	}
	if (cow_count_bad)
		note("scaling: %d cowmap runs did not report exactly one COW per page",
		     cow_count_bad);
}
