/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cowmap-bench: shared declarations of the benchmark program.
 *
 * Every measurement is a row: a case name, a unit, the median and the
 * min-max over the repetitions, and minor faults per page where faults
 * matter.  Ratios and targets are computed from the rows at the end, from
 * numbers taken in the same boot.
 */
#ifndef COWMAP_BENCH_H
#define COWMAP_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#define PAGE		4096UL
#define MAX_REPS	64
#define MIB		(1024UL * 1024UL)

/* Options (main.c). */
struct opts {
	const char *dir;	/* scratch directory (ext4) */
	int reps;		/* repetitions of the fault/read cases */
	size_t fault_mb;	/* file size of the fault and read cases */
	size_t mem_mb;		/* file size of the memory case */
	size_t drain_mb;	/* private bytes of the drain case */
	size_t merge_file_mb;	/* merge: file size */
	size_t merge_change_mb;	/* merge: bytes changed, all logs together */
	int merge_logs;
	int merge_reps;
	const char *mem_n;	/* comma-separated session counts */
	size_t usercow_mb;	/* file size of the userspace COW cases */
	size_t read_mb;		/* file size of the read cases */
	int priv_max_n;		/* largest N with private buffers run */
	const char *cases;	/* '|'-separated case names to run, or NULL */
	bool have_cowmap;	/* /dev/cowmap usable */
};

extern struct opts opt;

/* A series of repetitions of one case. */
struct series {
	int n;
	double v[MAX_REPS];	/* value per repetition (ns/page, MB/s, ...) */
	double flt[MAX_REPS];	/* minor faults per page, or < 0 */
};

void series_add(struct series *s, double v, double flt);
/* Whether case @name is selected (-c). */
bool want(const char *name);

/* Rows of the result table. */
void row_series(const char *group, const char *name, const char *unit,
		const struct series *s, const char *note);
void row_value(const char *group, const char *name, const char *unit,
	       double v, const char *note);
void row_skip(const char *group, const char *name, const char *why);
/* Median of a row by name; NAN if missing or skipped. */
double row_median(const char *name);
double row_flt(const char *name);
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Utilities (main.c). */
uint64_t now_ns(void);
long minflt(void);
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
char *path_in(const char *name);	/* opt.dir/name, static buffer per call */
int make_file(const char *path, size_t bytes, int printable);
void warm_file(int fd, size_t bytes);
void shuffle(size_t *a, size_t n, uint64_t *seed);
uint64_t rnd(uint64_t *seed);
int cowmap_open_bound(int fd, uint32_t ring_size);
void *xmmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
double median(const double *v, int n);
long meminfo_kb(const char *key);
long vmstat_val(const char *key);
long tlb_shootdowns(void);
/* ftrace markers for the profile run (COWMAP_BENCH_MARK=1). */
void mark(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern const char *cur_case;

/* The benchmark groups. */
void bench_calibrate(void);
void bench_fault(void);
void bench_usercow(void);
void bench_scaling(void);
void bench_read(void);
void bench_mem(void);
void bench_drain(void);
void bench_merge(void);

#endif
