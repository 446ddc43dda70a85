// SPDX-License-Identifier: GPL-2.0
/*
 * Memory of N processes each viewing a whole opt.mem_mb MiB file: each
 * process binds its own cowmap session and reads every page through it;
 * against N processes mapping the file MAP_SHARED, N processes reading it
 * into private buffers, and N idle processes (the cost of a process alone).
 *
 * The file is in the page cache (charged to the root cgroup) before the
 * processes start.  Extra memory is measured while all N are alive:
 * - meminfo: the change of MemTotal - MemFree - Cached - Buffers (after
 *   /proc/sys/vm/stat_refresh), i.e. memory beyond the page cache;
 * - memcg: memory.current of a fresh cgroup v2 group holding only the N
 *   processes (if cgroup v2 with the memory controller is available).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bench.h"

#define CGROOT "/sys/fs/cgroup"

enum { M_IDLE, M_COWMAP, M_SHARED, M_PRIV, NMODES };
static const char *const mode_name[NMODES] = {
	"idle", "cowmap", "MAP_SHARED", "private buffer",
};

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -1;
}

static long read_long(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	long v = -1;

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		v = atol(buf);
	close(fd);
	return v;
}

static long memstat(const char *cg, const char *key)
{
	char path[256], line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.stat", cg);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ' ') {
			v = atol(line + kl + 1);
			break;
		}
	fclose(f);
	return v;
}

struct snap {
	long used_kb, pt_kb, cached_kb;
};

static void take(struct snap *s)
{
	write_str("/proc/sys/vm/stat_refresh", "1\n");
	s->used_kb = meminfo_kb("MemTotal") - meminfo_kb("MemFree") -
		     meminfo_kb("Cached") - meminfo_kb("Buffers");
	s->pt_kb = meminfo_kb("PageTables");
	s->cached_kb = meminfo_kb("Cached");
}

static void child(int mode, const char *path, size_t len, const char *cg,
		  int ready, int go)
{
	volatile char *p;
	long sum = 0;
	char c = 1;
	int fd;

	if (cg) {
		char procs[300];

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
		write_str(procs, "0\n");
	}
	fd = open(path, O_RDONLY);
	if (fd < 0)
		_exit(1);
	switch (mode) {
	case M_COWMAP:
	case M_SHARED: {
		/* The same read of every page, through a session or not. */
		int s = mode == M_COWMAP ? cowmap_open_bound(fd, 0) : fd;

		p = mmap(NULL, len, PROT_READ, MAP_SHARED, s, 0);
		if (p == MAP_FAILED)
			_exit(1);
		for (size_t i = 0; i < len; i += PAGE)
			sum += p[i];
		break;
	}
	case M_PRIV: {
		char *buf = malloc(len);
		size_t done = 0;

		if (!buf)
			_exit(1);
		while (done < len) {
			ssize_t n = read(fd, buf + done, len - done);

			if (n <= 0)
				_exit(1);
			done += n;
		}
		sum = buf[len - 1];
		break;
	}
	default:
		break;
	}
	(void)sum;
	if (write(ready, &c, 1) != 1)
		_exit(1);
	/* Stay until the parent closes its end. */
	while (read(go, &c, 1) > 0)
		;
	_exit(0);
}

struct result {
	double extra, memcg, pt, cached;
	bool ok;
};

static struct result run(int mode, int n, const char *path, size_t len,
			 bool have_cg)
{
	struct result r = { 0 };
	struct snap a, b;
	int rp[2], gp[2], got = 0, failed = 0;
	char cg[256], f[300], c;
	pid_t pids[256];

	snprintf(cg, sizeof(cg), CGROOT "/cowmap-bench-%d-%d", mode, n);
	if (have_cg) {
		rmdir(cg);
		if (mkdir(cg, 0755) && errno != EEXIST)
			have_cg = false;
	}
	if (pipe(rp) || pipe(gp))
		die("pipe");
	take(&a);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork");
		if (!pids[i]) {
			close(rp[0]);
			close(gp[1]);
			child(mode, path, len, have_cg ? cg : NULL, rp[1], gp[0]);
		}
	}
	close(rp[1]);
	close(gp[0]);
	while (got < n && read(rp[0], &c, 1) == 1)
		got++;
	if (got == n) {
		take(&b);
		r.extra = (b.used_kb - a.used_kb) / 1024.0;
		r.pt = (b.pt_kb - a.pt_kb) / 1024.0;
		r.cached = (b.cached_kb - a.cached_kb) / 1024.0;
		snprintf(f, sizeof(f), "%s/memory.current", cg);
		r.memcg = have_cg ? read_long(f) / (double)MIB : -1;
		r.ok = true;
		if (have_cg && mode == M_COWMAP && n >= 16) {
			note("memcg memory.stat of 16 cowmap sessions: anon %ld KiB, file %ld KiB, kernel_stack %ld KiB, pagetables %ld KiB, slab %ld KiB, percpu %ld KiB, sock %ld KiB",
			     memstat(cg, "anon") / 1024, memstat(cg, "file") / 1024,
			     memstat(cg, "kernel_stack") / 1024,
			     memstat(cg, "pagetables") / 1024, memstat(cg, "slab") / 1024,
			     memstat(cg, "percpu") / 1024, memstat(cg, "sock") / 1024);
		}
	}
	close(gp[1]);
	for (int i = 0; i < n; i++) {
		int st;

		waitpid(pids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			failed++;
	}
	close(rp[0]);
	if (have_cg)
		rmdir(cg);
	if (failed)
		r.ok = false;
	return r;
}

void bench_mem(void)
{
	size_t len = opt.mem_mb * MIB;
	char *path = path_in("bench-mem.dat");
	int ns[16], nn = 0, fd;
	char list[64], *tok, *save;
	bool have_cg;
	struct result idle[16] = { 0 };
	double priv1 = -1, priv1net = -1;

	snprintf(list, sizeof(list), "%s", opt.mem_n);
	for (tok = strtok_r(list, ",", &save); tok && nn < 16;
	     tok = strtok_r(NULL, ",", &save))
		if (atoi(tok) > 0 && atoi(tok) <= 256)
			ns[nn++] = atoi(tok);
	fd = make_file(path, len, 0);
	warm_file(fd, len);
	close(fd);

	write_str(CGROOT "/cgroup.subtree_control", "+memory\n");
	{
		struct stat st;
		char buf[256] = "";
		int cfd = open(CGROOT "/cgroup.subtree_control", O_RDONLY);

		if (cfd >= 0) {
			if (read(cfd, buf, sizeof(buf) - 1) < 0)
				buf[0] = 0;
			close(cfd);
		}
		have_cg = strstr(buf, "memory") && !stat(CGROOT, &st);
	}
	if (!have_cg)
		note("memory: no cgroup v2 memory controller; meminfo only");

	for (int i = 0; i < nn; i++) {
		for (int m = 0; m < NMODES; m++) {
			char name[64], note_[240];
			struct result r;
			long avail = meminfo_kb("MemAvailable");
			double v, vi, secs;
			uint64_t t0;

			snprintf(name, sizeof(name), "%s x%d extra", mode_name[m], ns[i]);
			if (m == M_COWMAP && !opt.have_cowmap) {
				row_skip("mem", name, "no /dev/cowmap");
				continue;
			}
			if (m == M_PRIV && (ns[i] > opt.priv_max_n ||
			    (double)ns[i] * len / 1024 + 128 * 1024 > avail)) {
				/* N private copies: N times one, by construction. */
				if (priv1 > 0) {
					snprintf(note_, sizeof(note_),
						 "extrapolated: %d x the measured x1 (copying %zu MiB per process under TCG takes too long)",
						 ns[i], opt.mem_mb);
					row_value("mem", name, "MiB", ns[i] * priv1, note_);
					snprintf(name, sizeof(name), "%s x%d extra (net of idle)",
						 mode_name[m], ns[i]);
					row_value("mem", name, "MiB", ns[i] * priv1net, note_);
				} else {
					row_skip("mem", name, "not run (-p)");
				}
				continue;
			}
			t0 = now_ns();
			r = run(m, ns[i], path, len, have_cg);
			secs = (now_ns() - t0) / 1e9;
			if (!r.ok) {
				row_skip("mem", name, "a process failed");
				continue;
			}
			/* memcg is exact for the group; meminfo is system-wide. */
			v = have_cg ? r.memcg : r.extra;
			if (m == M_IDLE)
				idle[i] = r;
			vi = have_cg ? idle[i].memcg : idle[i].extra;
			snprintf(note_, sizeof(note_),
				 "%s; meminfo used-minus-cache %+.1f MiB, PageTables %+.1f MiB, Cached %+.1f MiB; %.0f s",
				 have_cg ? "memcg memory.current" : "meminfo",
				 r.extra, r.pt, r.cached, secs);
			row_value("mem", name, "MiB", v, note_);
			if (m != M_IDLE && idle[i].ok) {
				double net = v - vi;

				if (m == M_PRIV && ns[i] == 1) {
					priv1 = v;
					priv1net = net;
				}
				snprintf(name, sizeof(name), "%s x%d extra (net of idle)",
					 mode_name[m], ns[i]);
				snprintf(note_, sizeof(note_),
					 "%.2f%% of the file; %.3f MiB per process",
					 100.0 * net / opt.mem_mb, net / ns[i]);
				row_value("mem", name, "MiB", net, note_);
			}
			if (m == M_COWMAP) {
				snprintf(name, sizeof(name), "cowmap x%d PageTables", ns[i]);
				snprintf(note_, sizeof(note_),
					 "meminfo; floor of any 4 KiB mapping: %.1f MiB (8 B per page per process)",
					 ns[i] * (double)len / PAGE * 8 / MIB);
				row_value("mem", name, "MiB", r.pt, note_);
			}
		}
	}
	note("memory cases: %zu MiB file on ext4, page cache warm; each process reads every page",
	     opt.mem_mb);
	unlink(path);
}
