// SPDX-License-Identifier: GPL-2.0
/*
 * Drain throughput: bytes of private pages diffed per second.
 *
 * A session copies every page of an opt.drain_mb MiB file; "sparse" writes
 * 8 bytes at the end of each page (so a comparison must read the whole
 * page and a record is small), "dense" rewrites every byte.  Measured:
 * - COWMAP_IOC_DIFF into a 4 MiB user buffer (no I/O; drains nothing, so
 *   every repetition diffs the same pages);
 * - COWMAP_IOC_DRAIN into a new log on ext4 (the pages are written again,
 *   untimed, before each repetition), and the same followed by fsync;
 * - memcmp(3) of two user buffers of the same size that differ the same
 *   way, page by page: the userspace floor of finding the changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/cowmap.h>

#include "bench.h"

#define DIFF_BUF (4 * MIB)

static void dirty_sparse(volatile char *p, size_t n, char v)
{
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 8; k++)
			p[i * PAGE + PAGE - 8 + k] = (char)(v + k + i);
}

/* Returns ns for one full DIFF pass; *records and *used summed. */
static uint64_t diff_pass(int s, void *buf, uint64_t *records, uint64_t *used)
{
	struct cowmap_diff d;
	uint64_t t0 = now_ns();

	memset(&d, 0, sizeof(d));
	*records = *used = 0;
	do {
		d.buf = (unsigned long)buf;
		d.buf_len = DIFF_BUF;
		d.end = 0;
		if (ioctl(s, COWMAP_IOC_DIFF, &d))
			die("COWMAP_IOC_DIFF");
		*records += d.records;
		*used += d.used;
	} while (d.offset != COWMAP_DIFF_END);
	return now_ns() - t0;
}

void bench_drain(void)
{
	size_t n = opt.drain_mb * MIB / PAGE, len = n * PAGE;
	double mb = len / 1e6;
	struct series diff_s = { 0 }, diff_d = { 0 }, drain_s = { 0 },
		      drainf_s = { 0 }, cmp_s = { 0 };
	char *path = path_in("bench-drain.dat"), *logp = path_in("bench-drain.log");
	uint64_t recs = 0, used = 0, drained = 0;
	char *buf, *base, *cur, *p, *q;
	volatile long sink = 0;
	int fd, s, s2, bad_recs = 0;
	char note_[200];

	base = xmmap(NULL, len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	cur = xmmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	fd = make_file(path, len, 0);
	if (pread(fd, base, len, 0) != (ssize_t)len)
		die("pread");
	memcpy(cur, base, len);
	dirty_sparse(cur, n, 1);
	close(fd);
	fd = open(path, O_RDONLY);
	warm_file(fd, len);

	if (!opt.have_cowmap) {
		row_skip("drain", "DIFF sparse", "no /dev/cowmap");
		goto memcmp_only;
	}
	buf = xmmap(NULL, DIFF_BUF, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	s = cowmap_open_bound(fd, 0);
	p = xmmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
	dirty_sparse(p, n, 1);
	s2 = cowmap_open_bound(fd, 0);
	q = xmmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s2, 0);
	for (size_t i = 0; i < n; i++)
		memset(q + i * PAGE, 0x5a, PAGE);
	/*
	 * The private pages stay in the session; without a mapping its VMA
	 * is not among the file's, which every freeze of a page of @s would
	 * otherwise zap too.
	 */
	munmap(q, len);

	for (int r = 0; r < opt.reps; r++) {
		struct cowmap_drain dr;
		uint64_t t0, t1, t2;
		int lfd;

		/* New changes since the last drain (not timed). */
		if (r)
			dirty_sparse(p, n, (char)(r + 1));

		/* DIFF, sparse and dense. */
		cur_case = "DIFF sparse";
		mark("BENCH-BEGIN %s", cur_case);
		t0 = diff_pass(s, buf, &recs, &used);
		mark("BENCH-END %zu", n);
		if (recs != n)
			bad_recs++;
		series_add(&diff_s, mb / (t0 / 1e9), -1);
		if (want("DIFF dense")) {
			t0 = diff_pass(s2, buf, &recs, &used);
			series_add(&diff_d, mb / (t0 / 1e9), -1);
		}

		/* memcmp of the same bytes. */
		t0 = now_ns();
		for (size_t i = 0; i < n; i++)
			sink += memcmp(base + i * PAGE, cur + i * PAGE, PAGE) != 0;
		series_add(&cmp_s, mb / ((now_ns() - t0) / 1e9), -1);

		/* DRAIN the same changes into a new log on ext4. */
		if (!want("DRAIN sparse to ext4"))
			continue;
		unlink(logp);
		lfd = open(logp, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (lfd < 0)
			die("create %s", logp);
		memset(&dr, 0, sizeof(dr));
		dr.log_fd = lfd;
		dr.flags = COWMAP_DRAIN_FD;
		cur_case = "DRAIN sparse to ext4";
		mark("BENCH-BEGIN %s", cur_case);
		t0 = now_ns();
		if (ioctl(s, COWMAP_IOC_DRAIN, &dr))
			die("COWMAP_IOC_DRAIN");
		t1 = now_ns();
		mark("BENCH-END %zu", n);
		if (fsync(lfd))
			die("fsync");
		t2 = now_ns();
		drained = dr.bytes;
		if (dr.pages != n)
			note("DRAIN rep %d: %llu pages, expected %zu", r,
			     (unsigned long long)dr.pages, n);
		series_add(&drain_s, mb / ((t1 - t0) / 1e9), -1);
		series_add(&drainf_s, mb / ((t2 - t0) / 1e9), -1);
		close(lfd);
	}
	if (bad_recs)
		note("DIFF sparse: %d passes did not return one record per page", bad_recs);
	snprintf(note_, sizeof(note_), "%zu MiB private; 8 B changed at each page end",
		 opt.drain_mb);
	row_series("drain", "DIFF sparse", "MB/s", &diff_s, note_);
	snprintf(note_, sizeof(note_), "every byte changed; %llu KiB of records per pass",
		 (unsigned long long)used / 1024);
	if (diff_d.n)
		row_series("drain", "DIFF dense", "MB/s", &diff_d, note_);
	snprintf(note_, sizeof(note_), "COWMAP_IOC_DRAIN to a new log, no fsync; %llu KiB log",
		 (unsigned long long)drained / 1024);
	if (drain_s.n) {
		row_series("drain", "DRAIN sparse to ext4", "MB/s", &drain_s, note_);
		row_series("drain", "DRAIN sparse to ext4 + fsync", "MB/s", &drainf_s,
			   "same, including fsync of the log");
	}
	munmap(p, len);
	close(s);
	close(s2);
	munmap(buf, DIFF_BUF);
	unlink(logp);
	goto out;

memcmp_only:
	for (int r = 0; r < opt.reps; r++) {
		uint64_t t0 = now_ns();

		for (size_t i = 0; i < n; i++)
			sink += memcmp(base + i * PAGE, cur + i * PAGE, PAGE) != 0;
		series_add(&cmp_s, mb / ((now_ns() - t0) / 1e9), -1);
	}
out:
	row_series("drain", "memcmp sparse", "MB/s", &cmp_s,
		   "glibc memcmp per page of two user buffers");
	(void)sink;
	munmap(base, len);
	munmap(cur, len);
	close(fd);
	unlink(path);
}
