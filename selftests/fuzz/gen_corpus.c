// SPDX-License-Identifier: GPL-2.0
/*
 * Writes the fuzz seed corpus into the directory given: valid, torn and
 * damaged logs (modes 0 and 1) and merge programs (mode 2); see
 * fuzz_cowmap.c for the input format.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cowmap.h"

static const char *outdir;

static void put(const char *name, uint8_t mode, const uint8_t *d, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%s", outdir, name);
	f = fopen(path, "wb");
	if (!f || fputc(mode, f) == EOF || fwrite(d, 1, n, f) != n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct cowmap_log_writer *w;
	struct cowmap_log_info info;
	uint8_t old[300], new[300], *d;
	int fd, ret;
	off_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	memset(&info, 0, sizeof(info));
	info.dev = 0xfe01;
	info.ino = 1234;
	info.size = 8192;
	info.session_id = 7;
	info.bind_time_ns = 1700000000000000000ULL;
	info.pid = 42;
	strcpy(info.comm, "seed");
	strcpy(info.path, "/tmp/seed.file");
	fd = memfd_create("seed", 0);
	ret = cowmap_log_create_fd(fd, &info, 0, &w);
	if (ret) {
		fprintf(stderr, "create: %s\n", cowmap_errmsg());
		return 1;
	}
	for (int i = 0; i < 300; i++) {
		old[i] = (uint8_t)i;
		new[i] = (uint8_t)(i ^ 0x5a);
	}
	cowmap_log_append(w, 0, old, new, 1);
	cowmap_log_append(w, 100, old, new, 7);
	cowmap_log_append(w, 104, new, old, 3);	/* overlapping, chain */
	cowmap_log_append(w, 4000, old, new, 300);
	cowmap_log_writer_close(w);
	n = lseek(fd, 0, SEEK_END);
	d = malloc((size_t)n + 64);
	if (pread(fd, d, (size_t)n, 0) != n)
		return 1;
	put("log", 0, d, (size_t)n);
	put("log-fixup", 1, d, (size_t)n);
	put("log-torn", 0, d, (size_t)n - 5);
	memset(d + n, 0, 64);
	put("log-zero-tail", 0, d, (size_t)n + 64);
	d[200] ^= 4;
	put("log-flip", 0, d, (size_t)n);
	put("log-flip-fixup", 1, d, (size_t)n);
	put("header", 0, d, 96 + 16);

	{
		/* merge programs: flags byte, file byte, then ops */
		static const uint8_t p1[] = {
			0x01, 0x00,			/* in place, 1 log */
			0x03, 0x10, 0x00, 'a', 'b', 'c', 'd',
			0x01, 0x40, 0x00, 'x', 'y',
		};
		static const uint8_t p2[] = {
			0x12, 0x00,			/* prefer first, 2 logs */
			0x03, 0x10, 0x00, 'a', 'b', 'c', 'd',
			0x43, 0x12, 0x00, 'Q', 'R', 'S', 'T',
		};
		static const uint8_t p3[] = {
			0x23, 0x85,			/* prefer last, 3 logs, file changed */
			0x1f, 0x00, 0x01, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l',
			'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '0',
			'1', '2', '3', '4', '5',
			0x45, 0x04, 0x01, '1', '1', '1', '1', '1', '1',
			0x82, 0x08, 0x01, '2', '2', '2',
			0x22, 0x05, 0x00, 'o', 'l', 'd', 'n', 'e', 'w',	/* inconsistent */
		};
		static const uint8_t p4[] = {
			0x08, 0x4a,			/* -o, file truncated */
			0x07, 0xf8, 0x1f, 'e', 'n', 'd', 'e', 'n', 'd', 'e', 'n',
		};

		put("merge-1", 2, p1, sizeof(p1));
		put("merge-2", 2, p2, sizeof(p2));
		put("merge-3", 2, p3, sizeof(p3));
		put("merge-4", 2, p4, sizeof(p4));
	}
	free(d);
	return 0;
}
