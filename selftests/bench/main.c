// SPDX-License-Identifier: GPL-2.0
/*
 * cowmap-bench: the cowmap benchmarks (selftests/bench, 'make bench').
 *
 *   cowmap-bench [options] [GROUP...]
 *
 * Groups: calib fault usercow scaling read drain mem merge (default: all but
 * merge, which run.sh runs on the host at full size).  Each group adds rows to one table, printed at the end
 * with the ratios and targets.  Numbers are medians over repetitions taken
 * in this run; ratios compare cases measured in the same run only.
 *
 * Options:
 *   -d DIR      scratch directory (default $COWMAP_SCRATCH or .)
 *   -r N        repetitions of the fault/drain cases (default 7; reads run
 *               twice as many, usercow at most 5, scaling at most 3)
 *   -f MB       file size of the fault and read cases (default 4)
 *   -u MB       file size of the userspace COW cases (default 1)
 *   -s MB       file size of the read cases (default 32)
 *   -m MB       file size of the memory case (default 256)
 *   -n LIST     session counts of the memory case (default 1,4,16)
 *   -p N        largest N run with private buffers; larger N are
 *               extrapolated from x1 (default 1)
 *   -D MB       private bytes of the drain case (default 4)
 *   -F MB       merge: file size (default 128)
 *   -C MB       merge: bytes changed, all logs together (default 32)
 *   -L N        merge: number of logs (default 64)
 *   -R N        merge: repetitions (default 3)
 *   -t TITLE    title line of the table (default: the kernel release)
 *   -c A|B|..   run only the cases named (for profiling)
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <linux/cowmap.h>

#include "bench.h"

struct opts opt = {
	.dir = ".",
	.reps = 7,
	.fault_mb = 4,
	.mem_mb = 256,
	.drain_mb = 4,
	.merge_file_mb = 128,
	.merge_change_mb = 32,
	.merge_logs = 64,
	.merge_reps = 3,
	.mem_n = "1,4,16",
	.usercow_mb = 1,
	.read_mb = 32,
	.priv_max_n = 1,
};

bool want(const char *name)
{
	size_t l = strlen(name);
	const char *p = opt.cases;

	if (!p)
		return true;
	while (*p) {
		const char *e = strchr(p, '|');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == l && !strncmp(p, name, l))
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

/* ------------------------------------------------------------------ */

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "cowmap-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (errno)
		fprintf(stderr, ": %s", strerror(errno));
	fprintf(stderr, "\n");
	exit(1);
}

char *path_in(const char *name)
{
	static char buf[8][4096];
	static int i;
	char *p = buf[i++ & 7];

	snprintf(p, 4096, "%s/%s", opt.dir, name);
	return p;
}

uint64_t rnd(uint64_t *seed)
{
	/* splitmix64 */
	uint64_t z = (*seed += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void shuffle(size_t *a, size_t n, uint64_t *seed)
{
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rnd(seed) % (i + 1), t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

/*
 * A file of @bytes: text without NUL or newline when @printable, so text
 * logs can carry it.  One MiB of pseudo-random bytes is generated (slow
 * under TCG) and repeated, each MiB rotated by a different amount.
 */
int make_file(const char *path, size_t bytes, int printable)
{
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t chunk = 1 * MIB, done = 0, k = 0;
	uint64_t seed = 42;
	char *pat = malloc(chunk), *buf = malloc(chunk);
	int fd;

	if (!pat || !buf)
		die("malloc");
	for (size_t i = 0; i < chunk; i += 8) {
		uint64_t r = rnd(&seed);

		for (int b = 0; b < 8; b++)
			pat[i + b] = printable ? alpha[(r >> (6 * b)) & 63] :
				     (char)(r >> (8 * b));
	}
	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("create %s", path);
	while (done < bytes) {
		size_t n = bytes - done < chunk ? bytes - done : chunk;
		size_t rot = (k++ * 4099) % chunk;

		memcpy(buf, pat + rot, chunk - rot);
		memcpy(buf + chunk - rot, pat, rot);
		if (pwrite(fd, buf, n, done) != (ssize_t)n)
			die("write %s", path);
		done += n;
	}
	if (fsync(fd))
		die("fsync %s", path);
	free(pat);
	free(buf);
	return fd;
}

/* Bring the whole file into the page cache. */
void warm_file(int fd, size_t bytes)
{
	size_t chunk = 1 * MIB;
	char *buf = malloc(chunk);

	posix_fadvise(fd, 0, bytes, POSIX_FADV_WILLNEED);
	for (size_t off = 0; off < bytes; off += chunk)
		if (pread(fd, buf, chunk, off) < 0)
			die("pread");
	free(buf);
}

int cowmap_open_bound(int fd, uint32_t ring_size)
{
	struct cowmap_bind b = { .fd = fd, .ring_size = ring_size };
	int s = open(COWMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (s < 0)
		die("open %s", COWMAP_DEVICE_PATH);
	if (ioctl(s, COWMAP_IOC_BIND, &b))
		die("COWMAP_IOC_BIND");
	return s;
}

void *xmmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = mmap(addr, len, prot, flags, fd, off);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double median(const double *v, int n)
{
	double t[MAX_REPS];

	if (n <= 0)
		return NAN;
	memcpy(t, v, n * sizeof(*v));
	qsort(t, n, sizeof(*t), cmp_double);
	return n & 1 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static long read_key(const char *file, const char *key, int colon)
{
	char line[512];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 &&
		    (colon ? line[kl] == ':' : line[kl] == ' ')) {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

long meminfo_kb(const char *key)
{
	return read_key("/proc/meminfo", key, 1);
}

long vmstat_val(const char *key)
{
	return read_key("/proc/vmstat", key, 0);
}

/* Sum of the "TLB shootdowns" interrupts over all CPUs (x86). */
long tlb_shootdowns(void)
{
	char line[1024];
	long sum = -1;
	FILE *f = fopen("/proc/interrupts", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = line;

		while (*p == ' ')
			p++;
		if (strncmp(p, "TLB:", 4))
			continue;
		p += 4;
		sum = 0;
		for (;;) {
			char *end;
			long v = strtol(p, &end, 10);

			if (end == p)
				break;
			sum += v;
			p = end;
		}
		break;
	}
	fclose(f);
	return sum;
}

const char *cur_case = "?";
static int mark_fd = -2;

void mark(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	if (mark_fd == -2) {
		const char *e = getenv("COWMAP_BENCH_MARK");

		mark_fd = -1;
		if (e && *e == '1') {
			mark_fd = open("/sys/kernel/tracing/trace_marker", O_WRONLY);
			if (mark_fd < 0)
				mark_fd = open("/sys/kernel/debug/tracing/trace_marker",
					       O_WRONLY);
		}
	}
	if (mark_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(mark_fd, buf, n) < 0)
		mark_fd = -1;
}

/* ------------------------------------------------------------------ */

void series_add(struct series *s, double v, double flt)
{
	if (s->n < MAX_REPS) {
		s->v[s->n] = v;
		s->flt[s->n] = flt;
		s->n++;
	}
}

struct row {
	char group[16];
	char name[64];
	char unit[16];
	double med, min, max, flt;
	double v[MAX_REPS];	/* per repetition, in run order */
	int n;
	char note[160];
	bool skipped;
};

#define MAX_ROWS 160
static struct row rows[MAX_ROWS];
static int nrows;

static struct row *new_row(const char *group, const char *name,
			   const char *unit, const char *note)
{
	struct row *r;

	if (nrows == MAX_ROWS)
		die("too many rows");
	r = &rows[nrows++];
	memset(r, 0, sizeof(*r));
	snprintf(r->group, sizeof(r->group), "%s", group);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->unit, sizeof(r->unit), "%s", unit ? unit : "");
	snprintf(r->note, sizeof(r->note), "%s", note ? note : "");
	r->flt = NAN;
	return r;
}

static void print_row(const struct row *r, FILE *f);

void row_series(const char *group, const char *name, const char *unit,
		const struct series *s, const char *note)
{
	struct row *r = new_row(group, name, unit, note);
	double fl[MAX_REPS];
	int nf = 0;

	r->n = s->n;
	memcpy(r->v, s->v, sizeof(r->v));
	r->med = median(s->v, s->n);
	r->min = r->max = s->n ? s->v[0] : NAN;
	for (int i = 0; i < s->n; i++) {
		if (s->v[i] < r->min)
			r->min = s->v[i];
		if (s->v[i] > r->max)
			r->max = s->v[i];
		if (s->flt[i] >= 0)
			fl[nf++] = s->flt[i];
	}
	if (nf)
		r->flt = median(fl, nf);
	fputs("# ", stdout);
	print_row(r, stdout);
	fflush(stdout);
}

void row_value(const char *group, const char *name, const char *unit,
	       double v, const char *note)
{
	struct row *r = new_row(group, name, unit, note);

	r->n = 1;
	r->v[0] = v;
	r->med = r->min = r->max = v;
	fputs("# ", stdout);
	print_row(r, stdout);
	fflush(stdout);
}

void row_skip(const char *group, const char *name, const char *why)
{
	struct row *r = new_row(group, name, "", why);

	r->skipped = true;
	r->med = NAN;
	fputs("# ", stdout);
	print_row(r, stdout);
	fflush(stdout);
}

static struct row *find_row(const char *name)
{
	for (int i = 0; i < nrows; i++)
		if (!strcmp(rows[i].name, name) && !rows[i].skipped)
			return &rows[i];
	return NULL;
}

double row_median(const char *name)
{
	struct row *r = find_row(name);

	return r ? r->med : NAN;
}

double row_flt(const char *name)
{
	struct row *r = find_row(name);

	return r ? r->flt : NAN;
}

static void fmt_num(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (fabs(v) >= 100)
		snprintf(buf, len, "%.0f", v);
	else if (fabs(v) >= 10)
		snprintf(buf, len, "%.1f", v);
	else
		snprintf(buf, len, "%.2f", v);
}

static void print_row(const struct row *r, FILE *f)
{
	char med[32], mn[32], mx[32], fl[32];

	if (r->skipped) {
		fprintf(f, "| %-8s | %-34s | %9s | %-19s | %-8s | %6s | %s |\n",
			r->group, r->name, "-", "-", "", "-", r->note);
		return;
	}
	fmt_num(med, sizeof(med), r->med);
	fmt_num(mn, sizeof(mn), r->min);
	fmt_num(mx, sizeof(mx), r->max);
	fmt_num(fl, sizeof(fl), r->flt);
	if (r->n > 1) {
		char range[64];

		snprintf(range, sizeof(range), "%s-%s", mn, mx);
		fprintf(f, "| %-8s | %-34s | %9s | %-19s | %-8s | %6s | %s |\n",
			r->group, r->name, med, range, r->unit, fl, r->note);
	} else {
		fprintf(f, "| %-8s | %-34s | %9s | %-19s | %-8s | %6s | %s |\n",
			r->group, r->name, med, "(1 run)", r->unit, fl, r->note);
	}
}

static char notes[64][256];
static int nnotes;

void note(const char *fmt, ...)
{
	va_list ap;

	if (nnotes == 64)
		return;
	va_start(ap, fmt);
	vsnprintf(notes[nnotes], sizeof(notes[0]), fmt, ap);
	va_end(ap);
	printf("# note: %s\n", notes[nnotes]);
	fflush(stdout);
	nnotes++;
}

/* ------------------------------------------------------------------ */
/* Ratios and targets */

static int npass, nshort, nna, ntlines;
static char tlines[32][320];

/*
 * A ratio of two rows: of their medians, and the median of the ratios of
 * the two cases' values in the same repetition ("paired").  The cases of
 * a group run interleaved, so the two values of a pair were measured
 * seconds apart: load from outside the VM, which drifts over longer times,
 * cancels out of the paired ratio much better than out of the medians.
 */
struct ratio {
	double med, paired;
	bool present;
};

static double div_(double a, double b)
{
	return (isnan(a) || isnan(b) || b == 0) ? NAN : a / b;
}

/* a / b; with @inv b / a ("speed of a relative to b", for times). */
static struct ratio rt(const char *a, const char *b, bool inv)
{
	struct row *ra = find_row(a), *rb = find_row(b);
	struct ratio r = { NAN, NAN, false };
	double p[MAX_REPS];
	int n = 0;

	if (!ra || !rb) {
		r.present = ra || rb;
		return r;
	}
	r.present = true;
	r.med = inv ? div_(rb->med, ra->med) : div_(ra->med, rb->med);
	if (ra->n == rb->n && ra->n > 1) {
		for (int i = 0; i < ra->n; i++)
			p[n++] = inv ? div_(rb->v[i], ra->v[i]) : div_(ra->v[i], rb->v[i]);
		r.paired = median(p, n);
	} else {
		r.paired = r.med;
	}
	return r;
}

/* (a + b) / c: a cost made of two measured parts, against c. */
static struct ratio rt_sum(const char *a, const char *b, const char *c)
{
	struct row *ra = find_row(a), *rb = find_row(b), *rc = find_row(c);
	struct ratio r = { NAN, NAN, ra && rb && rc };
	double p[MAX_REPS];

	if (!r.present)
		return r;
	r.med = div_(ra->med + rb->med, rc->med);
	r.paired = r.med;
	if (ra->n == rb->n && rb->n == rc->n && ra->n > 1) {
		for (int i = 0; i < ra->n; i++)
			p[i] = div_(ra->v[i] + rb->v[i], rc->v[i]);
		r.paired = median(p, ra->n);
	}
	return r;
}

static struct ratio one(double v)
{
	struct ratio r = { v, v, !isnan(v) };

	return r;
}

static void fmt_ratio(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (v < 0.1)
		snprintf(buf, len, "%.3fx", v);
	else
		snprintf(buf, len, "%.2fx", v);
}

static void ratio_line(const char *what, struct ratio r, const char *goal,
		       const char *verdict, const char *how)
{
	char m[32], b[32];

	fmt_ratio(m, sizeof(m), r.med);
	fmt_ratio(b, sizeof(b), r.paired);
	printf("| %-56s | %8s | %8s | %-8s | %-5s | %s |\n", what, m, b, goal,
	       verdict, how);
}

/*
 * The verdict is on the paired ratio (the ratio of the medians where the
 * cases are not paired).  @le: the target is ratio <= goal.  Targets whose
 * cases did not run at all are left out.
 */
static void target(const char *what, struct ratio r, bool le, double goal,
		   const char *how)
{
	const char *verdict;
	double v = isnan(r.paired) ? r.med : r.paired;
	char g[32];

	if (!r.present)
		return;
	if (isnan(v)) {
		verdict = "n/a";
		nna++;
	} else if (le ? v <= goal : v >= goal) {
		verdict = "pass";
		npass++;
	} else {
		verdict = "short";
		nshort++;
	}
	if (goal < 0.1)
		snprintf(g, sizeof(g), "%s %.3fx", le ? "<=" : ">=", goal);
	else
		snprintf(g, sizeof(g), "%s %.2fx", le ? "<=" : ">=", goal);
	ratio_line(what, r, g, verdict, how);
	if (ntlines < 32)
		snprintf(tlines[ntlines++], sizeof(tlines[0]),
			 "TARGET %s: %s: %.3fx (target %s; ratio of medians %.3fx)",
			 verdict, what, v, g, r.med);
}

static void info(const char *what, struct ratio r, const char *how)
{
	if (r.present)
		ratio_line(what, r, "", "", how);
}

/* The kernel-side copy routines, from the CPU flags and kernel version. */
struct copyinfo {
	bool rep_good, erms, fsrm;
	int kmaj, kmin;
	const char *cowmap_copy;	/* copy_highpage -> copy_page */
	const char *cow_fault_copy;	/* do_cow_fault */
	const char *wp_copy;		/* wp_page_copy */
	const char *memcpy_;		/* kernel memcpy (diff snapshots) */
	bool cow_fault_movsb, wp_movsb;
};

static struct copyinfo ci;

static bool cpu_flag(const char *flag)
{
	char line[8192];
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5))
			continue;
		for (char *t = strtok(strchr(line, ':') + 1, " \n"); t;
		     t = strtok(NULL, " \n"))
			if (!strcmp(t, flag))
				found = true;
		break;
	}
	fclose(f);
	return found;
}

static void copy_routines(void)
{
	struct utsname u;
	const char *copy_page, *copy_mc;

	uname(&u);
	sscanf(u.release, "%d.%d", &ci.kmaj, &ci.kmin);
	ci.rep_good = cpu_flag("rep_good");
	ci.erms = cpu_flag("erms");
	ci.fsrm = cpu_flag("fsrm");
	copy_page = ci.rep_good ? "copy_page: rep movsq" :
				  "copy_page: copy_page_regs (movq loop)";
	/* arch/x86/lib/copy_mc.c: copy_mc_fragile only on some Intel servers. */
	copy_mc = ci.erms ? "copy_mc_to_kernel: rep movsb (ERMS)" :
		  ci.fsrm ? "copy_mc_to_kernel: memcpy (FSRM: rep movsb)" :
			    "copy_mc_to_kernel: memcpy (movq loop)";
	ci.cowmap_copy = copy_page;
	/* mm/memory.c: 6.1 do_cow_fault uses copy_user_highpage; 6.12 copy_mc. */
	if (ci.kmaj > 6 || (ci.kmaj == 6 && ci.kmin >= 8)) {
		ci.cow_fault_copy = copy_mc;
		ci.cow_fault_movsb = ci.erms || ci.fsrm;
	} else {
		ci.cow_fault_copy = copy_page;
	}
	ci.wp_copy = copy_mc;
	ci.wp_movsb = ci.erms || ci.fsrm;
	/* arch/x86/lib/memcpy_64.S: memcpy_erms went away in 6.4. */
	if (ci.kmaj > 6 || (ci.kmaj == 6 && ci.kmin >= 4))
		ci.memcpy_ = ci.fsrm ? "rep movsb (FSRM)" : "memcpy_orig (movq loop)";
	else
		ci.memcpy_ = ci.erms ? "memcpy_erms (rep movsb)" :
			     ci.rep_good ? "rep movsq" : "memcpy_orig (movq loop)";
}

/*
 * What a module's write after read cannot go below: the kernel's COW with
 * the read fault, zap and second fault that ->page_mkwrite forces on
 * cowmap (docs/benchmarks.md, "The floor of a write after read").
 */
static void war_floor(void)
{
	static const char floor_[] = "MAP_PRIVATE read, drop, write";
	static const char each[] = "MAP_PRIVATE read, drop each, write";
	char how[160];

	snprintf(how, sizeof(how), "ns/page; flt/page %.2f vs %.2f; kernel COW after a zap",
		 row_flt(floor_), row_flt("MAP_PRIVATE write-after-read"));
	info("WAR floor for a module: MAP_PRIVATE read+drop+write / MAP_PRIVATE write-after-read",
	     rt(floor_, "MAP_PRIVATE write-after-read", false), how);
	snprintf(how, sizeof(how), "ns/page; flt/page %.2f vs %.2f; copies: %s x2 vs %s",
		 row_flt("cowmap write-after-read"), row_flt(floor_), ci.cowmap_copy,
		 ci.cow_fault_copy);
	info("cowmap write-after-read / that floor",
	     rt("cowmap write-after-read", floor_, false), how);
	/*
	 * The floor takes one timed fault, a module two: price the second at
	 * what cowmap's own refault of a private page costs.
	 */
	info("(floor + cowmap refault private) / MAP_PRIVATE write-after-read",
	     rt_sum(floor_, "cowmap refault private (no copy)",
		    "MAP_PRIVATE write-after-read"),
	     "the module's two faults with the kernel's COW work");
	/* The same with a zap and TLB flush per page, as a module's. */
	info("WAR floor, a zap per page: read+drop each+write / MAP_PRIVATE WAR",
	     rt(each, "MAP_PRIVATE write-after-read", false),
	     "ns/page; one madvise(DONTNEED) per page, syscall included");
	info("(floor, a zap per page, + cowmap refault) / MAP_PRIVATE WAR",
	     rt_sum(each, "cowmap refault private (no copy)",
		    "MAP_PRIVATE write-after-read"),
	     "the module's two faults and zap with the kernel's COW work");
}

static void print_ratios(void)
{
	static const char *const usercow[] = {
		"sigsegv+mremap (pool)", "sigsegv+mmap-fixed anon",
		"sigsegv+mprotect (MAP_PRIVATE)", NULL
	};
	const char *best_user = NULL;
	double pfile = (double)opt.mem_mb;
	char how[256];

	for (const char *const *n = usercow; *n; n++)
		if (!isnan(row_median(*n)) &&
		    (!best_user || row_median(*n) < row_median(best_user)))
			best_user = *n;

	printf("\n### Ratios and targets\n\n");
	printf("\"medians\": ratio of the two medians; \"paired\": median over the "
	       "repetitions of the ratio of the two values measured side by side "
	       "in the same repetition (robust to drifting host load); the verdict "
	       "is on \"paired\".\n\n");
	printf("| %-56s | %8s | %8s | %-8s | %-5s | %s |\n", "ratio", "medians",
	       "paired", "target", "", "how");
	printf("|----------------------------------------------------------|----------|----------|----------|-------|-----|\n");

	snprintf(how, sizeof(how), "ns/page; flt/page %.2f vs %.2f; copies: %s x2 vs %s",
		 row_flt("cowmap first-write"), row_flt("MAP_PRIVATE first-write"),
		 ci.cowmap_copy, ci.cow_fault_copy);
	target("COW first write: cowmap / MAP_PRIVATE",
	       rt("cowmap first-write", "MAP_PRIVATE first-write", false), true,
	       1.3, how);
	snprintf(how, sizeof(how), "ns/page; flt/page %.2f vs %.2f; copies: %s x2 vs %s",
		 row_flt("cowmap write-after-read"),
		 row_flt("MAP_PRIVATE write-after-read"), ci.cowmap_copy, ci.wp_copy);
	target("COW write after read: cowmap / MAP_PRIVATE",
	       rt("cowmap write-after-read", "MAP_PRIVATE write-after-read", false),
	       true, 1.3, how);
	war_floor();
	snprintf(how, sizeof(how), "fastest variant: %s", best_user ? best_user : "-");
	if (best_user)
		target("userspace SIGSEGV COW (fastest) / cowmap first write",
		       rt(best_user, "cowmap first-write (usercow)", false), false,
		       3.0, how);
	for (const char *const *n = usercow; *n; n++)
		info(*n, rt(*n, "cowmap first-write (usercow)", false),
		     "/ cowmap first write, same file, interleaved");
	info("uffd-wp (anon private copy) / cowmap first write",
	     rt("uffd-wp anon copy", "cowmap first-write (usercow)", false),
	     "closest uffd equivalent (see notes)");
	target("sequential reads: speed cowmap / MAP_SHARED",
	       rt("cowmap read seq", "MAP_SHARED read seq", true), false, 0.9,
	       "ns/page of MAP_SHARED / ns/page of cowmap");
	target("random reads: speed cowmap / MAP_SHARED",
	       rt("cowmap read random", "MAP_SHARED read random", true), false, 0.9,
	       "ns/page of MAP_SHARED / ns/page of cowmap");
	info("one read fault (no fault-around): speed cowmap / MAP_SHARED",
	     rt("cowmap read seq, no fault-around",
		"MAP_SHARED read seq, no fault-around", true),
	     "fault_around_bytes=4096");
	{
		double e = row_median("cowmap x16 extra (net of idle)");
		double raw = row_median("cowmap x16 extra");
		double sh = row_median("MAP_SHARED x16 extra (net of idle)");
		double pt = row_median("cowmap x16 PageTables");

		snprintf(how, sizeof(how),
			 "%.1f MiB net of 16 idle processes (%.1f MiB raw); MAP_SHARED %.1f MiB; page tables %.1f MiB",
			 e, raw, sh, pt);
		if (find_row("cowmap x16 extra")) {
			/*
			 * Any 16 processes mapping the file page by page pay
			 * its page tables (8 B per 4 KiB page each, 3.1 %):
			 * the target is what sessions cost beyond that.
			 */
			target("16 sessions: memory beyond 16 MAP_SHARED readers / file",
			       one(div_(e - sh, pfile)), true, 0.005, how);
			info("16 sessions: extra memory / file",
			     one(div_(e, pfile)), "");
			info("16 MAP_SHARED readers: extra memory / file (the floor)",
			     one(div_(sh, pfile)), "");
		}
	}
	target("drain (DIFF to buffer) / memcmp throughput",
	       rt("DIFF sparse", "memcmp sparse", false), false, 0.5,
	       "MB/s of private pages, 8 B changed per page");
	target("drain (DRAIN to ext4 log) / memcmp throughput",
	       rt("DRAIN sparse to ext4", "memcmp sparse", false), false, 0.5,
	       "MB/s of private pages, 8 B changed per page");
	info("DIFF dense / memcmp", rt("DIFF dense", "memcmp sparse", false),
	     "every byte changed: records carry whole pages");
	if (find_row("merge-all (libcowmap)")) {
		snprintf(how, sizeof(how), "seconds; %zu MiB of changes in %d logs, %zu MiB file",
			 opt.merge_change_mb, opt.merge_logs, opt.merge_file_mb);
		target("merge-all / pwrite+fsync of the changed bytes",
		       rt("merge-all (libcowmap)", "pwrite+fsync same bytes", false),
		       true, 2.0, how);
		info("text merge (prototype) / merge-all",
		     rt("text merge (prototype)", "merge-all (libcowmap)", false),
		     "prototype: copy the file, apply the text lines");
	}
	info("cowmap: 2 threads / 1 thread, distinct pages (speedup)",
	     rt("cowmap 2 threads distinct", "cowmap 1 thread", true),
	     "throughput ratio");
	info("cowmap: 2 threads / 1 thread, same pages",
	     rt("cowmap 2 threads same pages", "cowmap 1 thread", true),
	     "throughput ratio (one COW per page)");
	info("MAP_PRIVATE: 2 threads / 1 thread, distinct pages (speedup)",
	     rt("MAP_PRIVATE 2 threads distinct", "MAP_PRIVATE 1 thread", true),
	     "throughput ratio");
	info("cowmap 1 thread / MAP_PRIVATE 1 thread",
	     rt("cowmap 1 thread", "MAP_PRIVATE 1 thread", false), "time ratio");
	info("cowmap 2 threads distinct / MAP_PRIVATE same",
	     rt("cowmap 2 threads distinct", "MAP_PRIVATE 2 threads distinct", false),
	     "time ratio");
	info("cowmap first write with 8 other sessions mapped / alone",
	     rt("cowmap first-write, 8 other sessions", "cowmap first-write", false),
	     "time ratio: other sessions' VMAs are not zapped");
	info("cowmap first write, ring 16 / default ring (1024)",
	     rt("cowmap first-write ring 16", "cowmap first-write", false),
	     "time ratio; both rings overflow");
	info("cowmap first write, ring 16384 / default ring (1024)",
	     rt("cowmap first-write ring 16384", "cowmap first-write", false),
	     "time ratio; 16384 does not overflow");
	if (find_row("cowmap first-write"))
		printf("\nDerived (medians, ns/page): cowmap COW work beyond a fault "
	       "(first-write - refault of a private page) %.0f; "
	       "MAP_PRIVATE first write %.0f; cowmap write-after-read - first-write %.0f "
	       "(the second fault and the zap of the read-only PTE)\n",
	       row_median("cowmap first-write") -
	       row_median("cowmap refault private (no copy)"),
	       row_median("MAP_PRIVATE first-write"),
	       row_median("cowmap write-after-read") - row_median("cowmap first-write"));
	printf("\n");
	for (int i = 0; i < ntlines; i++)
		printf("%s\n", tlines[i]);
	printf("TARGETS: %d pass, %d short, %d n/a\n", npass, nshort, nna);
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: cowmap-bench [-d DIR] [-r N] [-f MB] [-u MB] [-s MB] [-m MB] [-n LIST] [-p N]\n"
		"                    [-D MB] [-F MB] [-C MB] [-L N] [-R N] [-t TITLE]\n"
		"                    [-c CASE|CASE...] [GROUP...]\n"
		"groups: calib fault usercow scaling read drain mem merge\n"
		"        (default: all but merge)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} groups[] = {
		{ "calib", bench_calibrate },
		{ "fault", bench_fault },
		{ "usercow", bench_usercow },
		{ "scaling", bench_scaling },
		{ "read", bench_read },
		{ "drain", bench_drain },
		{ "mem", bench_mem },
		{ "merge", bench_merge },
	};
	const char *title = NULL, *env;
	struct utsname u;
	char date[64];
	time_t t = time(NULL);
	int c;

	env = getenv("COWMAP_SCRATCH");
	if (env)
		opt.dir = env;
	while ((c = getopt(argc, argv, "d:r:f:u:s:m:n:p:D:F:C:L:R:t:c:h")) != -1) {
		switch (c) {
		case 'd': opt.dir = optarg; break;
		case 'r': opt.reps = atoi(optarg); break;
		case 'f': opt.fault_mb = strtoul(optarg, NULL, 0); break;
		case 'u': opt.usercow_mb = strtoul(optarg, NULL, 0); break;
		case 's': opt.read_mb = strtoul(optarg, NULL, 0); break;
		case 'p': opt.priv_max_n = atoi(optarg); break;
		case 'c': opt.cases = optarg; break;
		case 'm': opt.mem_mb = strtoul(optarg, NULL, 0); break;
		case 'n': opt.mem_n = optarg; break;
		case 'D': opt.drain_mb = strtoul(optarg, NULL, 0); break;
		case 'F': opt.merge_file_mb = strtoul(optarg, NULL, 0); break;
		case 'C': opt.merge_change_mb = strtoul(optarg, NULL, 0); break;
		case 'L': opt.merge_logs = atoi(optarg); break;
		case 'R': opt.merge_reps = atoi(optarg); break;
		case 't': title = optarg; break;
		default: usage();
		}
	}
	if (opt.reps < 1 || opt.reps > MAX_REPS || opt.merge_reps < 1 ||
	    opt.merge_reps > MAX_REPS || !opt.fault_mb || !opt.usercow_mb || !opt.read_mb ||
	    opt.merge_logs < 1)
		usage();
	opt.have_cowmap = access(COWMAP_DEVICE_PATH, R_OK | W_OK) == 0;

	uname(&u);
	copy_routines();
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&t));
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("## %s\n\n", title ? title : u.release);
	printf("kernel %s, %ld CPUs, MemTotal %ld MiB, %s; scratch %s; reps %d (merge %d)\n",
	       u.release, sysconf(_SC_NPROCESSORS_ONLN),
	       meminfo_kb("MemTotal") / 1024, date, opt.dir, opt.reps,
	       opt.merge_reps);
	printf("cpu flags: rep_good=%d erms=%d fsrm=%d\n", ci.rep_good, ci.erms,
	       ci.fsrm);
	printf("copy routines: cowmap COW = copy_highpage x2 -> %s; "
	       "MAP_PRIVATE first write (do_cow_fault) -> %s; "
	       "MAP_PRIVATE write after read (wp_page_copy) -> %s; "
	       "kernel memcpy (DIFF/DRAIN page snapshots) -> %s\n\n",
	       ci.cowmap_copy, ci.cow_fault_copy, ci.wp_copy, ci.memcpy_);

	for (int i = optind; i < argc; i++) {
		bool ok = false;

		for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
			if (!strcmp(argv[i], groups[g].name))
				ok = true;
		if (!ok)
			usage();
	}
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		bool run = optind == argc && strcmp(groups[g].name, "merge");
		uint64_t t0 = now_ns();

		for (int i = optind; i < argc; i++)
			if (!strcmp(argv[i], groups[g].name))
				run = true;
		if (!run)
			continue;
		printf("# -- %s\n", groups[g].name);
		groups[g].fn();
		printf("# -- %s done in %.1f s\n", groups[g].name,
		       (now_ns() - t0) / 1e9);
	}

	printf("\n### Results\n\n");
	printf("| %-8s | %-34s | %9s | %-19s | %-8s | %6s | %s |\n", "group",
	       "case", "median", "min-max", "unit", "flt/pg", "notes");
	printf("|----------|------------------------------------|-----------|---------------------|----------|--------|-------|\n");
	for (int i = 0; i < nrows; i++)
		print_row(&rows[i], stdout);
	if (nnotes) {
		printf("\nNotes:\n");
		for (int i = 0; i < nnotes; i++)
			printf("- %s\n", notes[i]);
	}
	print_ratios();
	return 0;
}
