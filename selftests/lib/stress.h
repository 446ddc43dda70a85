/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The cowmap stress engine (selftests/lib/stress*.c): several processes
 * and threads do random operations on a few sessions of one backing file
 * while an outsider process writes, truncates, punches and extends that
 * file, and a reference model predicts what every session must read at
 * every step.  docs/testing.md describes it; stress.c says how it works.
 *
 * Used by cowmap_stress_test.c and cowmap_faultinj_test.c:
 *
 *	struct st_cfg cfg = { .dir = ..., .seed = st_seed(), ... };
 *	struct st_result res;
 *
 *	st_run(&cfg, &res);
 *	st_print_stats(&cfg, &res, "ext4");
 *	... res.failed, res.why, st_coverage(&cfg, &res, ...)
 *
 * On a mismatch the seed and the trace of the last operations are printed;
 * COWMAP_SEED=<seed> STRESS_OPS=<n> replays the run.
 */
#ifndef COWMAP_SELFTEST_STRESS_H
#define COWMAP_SELFTEST_STRESS_H

#include <stddef.h>
#include <stdint.h>

struct st_cfg {
	const char *dir;	/* scratch directory (created files go here) */
	uint64_t seed;
	long ops;		/* operations to run (0: by time) */
	long seconds;		/* stop after this long (0: no limit) */
	int nsess;
	int batch_max;
	int max_procs;
	int fs_odirect;		/* O_DIRECT usable on this filesystem */
	int inject;		/* fault injection: actors make-it-fail */
	/* Called around the random phase when inject is set. */
	void (*inject_on)(void *arg);
	void (*inject_off)(void *arg);
	void *inject_arg;
};

struct st_stats {
	long ops, batches, reads, writes, sigbus, sigsegv, cows, drains, records;
	long discards, forks, exits, fdpass, maps, unmaps, mremaps, madvs, owrites;
	long truncs, punches, odirects, checks, enomem, failed_ops, cleanups;
	long kernel_segv;	/* SIGSEGVs the kernel sent on its own (SI_KERNEL) */
	long mismatches;
	long rmodes[3], wmodes[3];	/* READs and WRITEs by mode */
};

struct st_result {
	struct st_stats st;
	int failed;		/* the run did not match the model */
	char why[512];		/* the first mismatch */
	double seconds;		/* the run's length */
};

/* Run @cfg; returns 0 if the run matched the model all along. */
int st_run(const struct st_cfg *cfg, struct st_result *res);

void st_print_stats(const struct st_cfg *cfg, const struct st_result *res,
		    const char *tag);

/*
 * Did the run do enough to mean something?  Returns the number of
 * shortfalls, listed in @why (stress.c says what is needed).
 */
int st_coverage(const struct st_cfg *cfg, const struct st_result *res,
		long min_ops, char *why, size_t len);

/* Seed from COWMAP_SEED, else the clock. */
uint64_t st_seed(void);

/* $name as a number, or @def if unset. */
long st_env_long(const char *name, long def);

#endif /* COWMAP_SELFTEST_STRESS_H */
