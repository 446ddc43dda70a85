// SPDX-License-Identifier: GPL-2.0
/*
 * Reads through cowmap against plain MAP_SHARED of the same warm file:
 * one byte of every page, in order and in a random order (the same
 * permutation for both), each repetition on a fresh mapping so every page
 * is faulted in.  With fault-around (the default 64 KiB) a read fault maps
 * 16 pages; the "no fault-around" cases set fault_around_bytes to 4096 in
 * debugfs to show the cost of one read fault through each path.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "bench.h"

#define FAB "/sys/kernel/debug/fault_around_bytes"

static long read_fab(void)
{
	char buf[32] = "";
	int fd = open(FAB, O_RDONLY);

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) <= 0)
		buf[0] = 0;
	close(fd);
	return buf[0] ? atol(buf) : -1;
}

static int write_fab(long v)
{
	char buf[32];
	int fd = open(FAB, O_WRONLY), n, ok;

	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld\n", v);
	ok = write(fd, buf, n) == n;
	close(fd);
	return ok ? 0 : -1;
}

static volatile long sink;

static double read_case(int fd, size_t len, const size_t *order, size_t n,
			bool cowmap, double *flt)
{
	int s = cowmap ? cowmap_open_bound(fd, 0) : -1;
	volatile char *p = xmmap(NULL, len, PROT_READ, MAP_SHARED,
				 cowmap ? s : fd, 0);
	long f0, sum = 0;
	uint64_t t0;

	f0 = minflt();
	mark("BENCH-BEGIN %s", cur_case);
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		sum += p[order[i] * PAGE];
	t0 = now_ns() - t0;
	mark("BENCH-END %zu", n);
	*flt = (double)(minflt() - f0) / n;
	sink += sum;
	munmap((void *)p, len);
	if (s >= 0)
		close(s);
	return (double)t0 / n;
}

void bench_read(void)
{
	enum { CS, SS, CR, SR, CS1, SS1, NC };
	static const char *const names[NC] = {
		"cowmap read seq", "MAP_SHARED read seq", "cowmap read random",
		"MAP_SHARED read random", "cowmap read seq, no fault-around",
		"MAP_SHARED read seq, no fault-around",
	};
	size_t n = opt.read_mb * MIB / PAGE, len = n * PAGE;
	size_t *seq = malloc(n * sizeof(*seq)), *rnd_ = malloc(n * sizeof(*rnd_));
	struct series ser[NC];
	uint64_t seed = 7;
	long fab = read_fab();
	char *path = path_in("bench-read.dat");
	int fd;

	fd = make_file(path, len, 0);
	close(fd);
	fd = open(path, O_RDONLY);
	warm_file(fd, len);
	for (size_t i = 0; i < n; i++)
		seq[i] = rnd_[i] = i;
	shuffle(rnd_, n, &seed);
	memset(ser, 0, sizeof(ser));
	/* Each pass takes tens of ms: twice the repetitions, for a stable median. */
	for (int r = 0; r < 2 * opt.reps && r < MAX_REPS; r++) {
		for (int k = 0; k < NC; k++) {
			int c = (k + r) % NC;	/* rotate the order */
			bool cm = !(c & 1);
			double v, f;

			if ((cm && !opt.have_cowmap) || !want(names[c]))
				continue;
			cur_case = names[c];
			if (c >= CS1 && (fab < 0 || write_fab(4096)))
				continue;
			v = read_case(fd, len, c == CR || c == SR ? rnd_ : seq, n,
				      cm, &f);
			if (c >= CS1)
				write_fab(fab);
			series_add(&ser[c], v, f);
		}
	}
	for (int c = 0; c < NC; c++) {
		if (!want(names[c]))
			continue;
		if (!ser[c].n)
			row_skip("read", names[c], c >= CS1 ? "no debugfs fault_around_bytes" :
				 "no /dev/cowmap");
		else
			row_series("read", names[c], "ns/page", &ser[c],
				   c >= CS1 ? "fault_around_bytes=4096: one fault per page" :
				   "one byte per page, fresh mapping");
	}
	if (fab > 0)
		note("read cases: %zu MiB file, fault_around_bytes %ld", opt.read_mb, fab);
	close(fd);
	unlink(path);
	free(seq);
	free(rnd_);
}
