// SPDX-License-Identifier: GPL-2.0
/*
 * Guest side of the power-cut test (selftests/powercut/run.sh): prepares a
 * file and logs whose merge changes many MiB, merges them in place with
 * libcowmap (the same failure-atomic merge as 'cowmap merge'), recovers
 * after a power cut, and says whether the file holds exactly its old or
 * its new contents.
 *
 *   pc setup DIR SEED FILE_MIB LOGS CHANGE_MIB   -> DIR/file, DIR/logs/, DIR/state
 *   pc merge DIR                                 merge DIR/logs into DIR/file
 *   pc recover DIR                               cowmap_recover(DIR/file)
 *   pc check DIR                                 old, new or TORN
 *
 * The new contents are computed by the program itself (its own model of
 * the changes), not by the merge under test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cowmap.h"
#include "rnd.h"

static void fill(uint64_t *s, uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!(i & 7))
			rnd(s);
		p[i] = (uint8_t)(*s >> ((i & 7) * 8));
	}
}

struct sum {
	uint32_t crc;
	uint64_t fnv;
	uint64_t size;
};

static void sum_buf(const uint8_t *p, size_t n, struct sum *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	s->crc = cowmap_crc32c(0, p, n);
	s->fnv = h;
	s->size = n;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	size_t got = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		return NULL;
	b = malloc(st.st_size + 1);
	while (b && got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, st.st_size - got);

		if (n <= 0) {
			free(b);
			b = NULL;
			break;
		}
		got += n;
	}
	close(fd);
	*len = st.st_size;
	return b;
}

static int write_file(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	size_t done = 0;

	if (fd < 0)
		return -1;
	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);

		if (w <= 0)
			return -1;
		done += w;
	}
	if (fsync(fd))
		return -1;
	return close(fd);
}

static int setup(const char *dir, uint64_t seed, size_t mib, int nlogs, size_t change_mib)
{
	size_t size = mib << 20, budget = change_mib << 20, stripe;
	char path[600], file[512], logs[512];
	uint8_t *cur, *orig, *newb;
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
	struct sum so, sn;
	FILE *f;
	int i, err;

	snprintf(file, sizeof(file), "%s/file", dir);
	snprintf(logs, sizeof(logs), "%s/logs", dir);
	mkdir(dir, 0755);
	mkdir(logs, 0755);
	cur = malloc(size);
	orig = malloc(size);
	newb = malloc(1 << 16);
	fill(&s, cur, size);
	memcpy(orig, cur, size);
	if (write_file(file, cur, size)) {
		perror(file);
		return 1;
	}
	/* Log i changes only stripe i of every nlogs stripes: no conflicts. */
	stripe = size / (nlogs * 64);
	for (i = 0; i < nlogs; i++) {
		struct cowmap_log_writer *w;
		size_t done = 0;

		snprintf(path, sizeof(path), "%s/log%02d", logs, i);
		unlink(path);
		err = cowmap_log_create(path, file, 0, &w);
		if (err) {
			fprintf(stderr, "log create %s: %s\n", path, cowmap_errmsg());
			return 1;
		}
		while (done < budget / nlogs) {
			size_t k = rnd(&s) % 64, len = 1 + rnd(&s) % (1 << 16);
			size_t off = (k * nlogs + i) * stripe + rnd(&s) % stripe;

			if (off + len > (k * nlogs + i + 1) * stripe)
				len = (k * nlogs + i + 1) * stripe - off;
			fill(&s, newb, len);
			err = cowmap_log_append(w, off, cur + off, newb, len);
			if (err) {
				fprintf(stderr, "append: %s\n", cowmap_errmsg());
				return 1;
			}
			memcpy(cur + off, newb, len);
			done += len;
		}
		if (cowmap_log_writer_close(w))
			return 1;
	}
	sum_buf(orig, size, &so);
	sum_buf(cur, size, &sn);
	snprintf(path, sizeof(path), "%s/state", dir);
	f = fopen(path, "w");
	fprintf(f, "old %08x %016llx %llu\nnew %08x %016llx %llu\n", so.crc,
		(unsigned long long)so.fnv, (unsigned long long)so.size, sn.crc,
		(unsigned long long)sn.fnv, (unsigned long long)sn.size);
	fflush(f);
	fsync(fileno(f));
	fclose(f);
	sync();
	printf("setup: %zu MiB file, %d logs, %zu MiB of changes, old %08x new %08x\n",
	       mib, nlogs, change_mib, so.crc, sn.crc);
	free(cur);
	free(orig);
	free(newb);
	return 0;
}

static int merge(const char *dir)
{
	char file[512], logs[512];
	struct cowmap_merge_stats st;
	struct cowmap_merge *m;
	int err;

	snprintf(file, sizeof(file), "%s/file", dir);
	snprintf(logs, sizeof(logs), "%s/logs", dir);
	err = cowmap_merge_new(file, 0, &m);
	if (!err)
		err = cowmap_merge_add_dir(m, logs) < 0 ? -1 : 0;
	if (!err)
		err = cowmap_merge_run(m);
	if (err) {
		fprintf(stderr, "merge: %s\n", cowmap_errmsg());
		return 1;
	}
	cowmap_merge_stats(m, &st);
	printf("merge: %llu logs, %llu records, %llu bytes written in %llu ranges\n",
	       (unsigned long long)st.logs, (unsigned long long)st.records,
	       (unsigned long long)st.write_bytes, (unsigned long long)st.write_ranges);
	cowmap_merge_free(m);
	return 0;
}

static int check(const char *dir)
{
	char path[512], file[512];
	unsigned int oc, nc;
	unsigned long long of, nf, os, ns;
	struct sum s;
	uint8_t *b;
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/state", dir);
	snprintf(file, sizeof(file), "%s/file", dir);
	f = fopen(path, "r");
	if (!f || fscanf(f, "old %x %llx %llu new %x %llx %llu", &oc, &of, &os, &nc, &nf, &ns) != 6) {
		printf("result=nostate\n");
		return 1;
	}
	fclose(f);
	b = slurp(file, &len);
	if (!b) {
		printf("result=TORN (unreadable)\n");
		return 1;
	}
	sum_buf(b, len, &s);
	free(b);
	if (s.crc == oc && s.fnv == of && s.size == os)
		printf("result=old\n");
	else if (s.crc == nc && s.fnv == nf && s.size == ns)
		printf("result=new\n");
	else {
		printf("result=TORN (crc %08x size %llu; old %08x new %08x)\n", s.crc,
		       (unsigned long long)s.size, oc, nc);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char file[512];
	int r;

	if (argc >= 7 && !strcmp(argv[1], "setup"))
		return setup(argv[2], strtoull(argv[3], NULL, 0), strtoul(argv[4], NULL, 0),
			     atoi(argv[5]), strtoul(argv[6], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "merge"))
		return merge(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "check"))
		return check(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "recover")) {
		snprintf(file, sizeof(file), "%s/file", argv[2]);
		r = cowmap_recover(file, 0);
		if (r < 0) {
			printf("recovered=error (%s)\n", cowmap_errmsg());
			return 1;
		}
		printf("recovered=%s\n", r == COWMAP_RECOVER_NONE ? "none" :
		       r == COWMAP_RECOVER_REPLAYED ? "replayed" :
		       r == COWMAP_RECOVER_DROPPED ? "dropped" : "other");
		return 0;
	}
	fprintf(stderr, "usage: pc setup DIR SEED FILE_MIB LOGS CHANGE_MIB | merge DIR | recover DIR | check DIR\n");
	return 2;
}
