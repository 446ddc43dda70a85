// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the log reader and the merge planner.
 *
 * The first input byte picks a mode:
 *   0  the rest is a log file, read as is;
 *   1  the rest is a log file whose header and record CRCs are fixed up
 *      first, so that the reader's structural checks are reached;
 *   2  the rest is a program of changes: up to 4 logs are written with
 *      the library's writer and merged into a small file (dry run,
 *      -o, or in place, with or without prefer), which exercises record
 *      composition, the k-way sweep, conflicts, the journal and -o.
 * Files live on tmpfs (/dev/shm) so that fsync costs nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define FILE_SIZE 8192
#define NLOGS 4

static int memfd = -1;
static char dir[64], file_path[96], out_path[96];
static uint8_t base[FILE_SIZE];
static int log_fd[NLOGS];

static void die(const char *what)
{
	fprintf(stderr, "fuzz setup: %s: %s\n", what, strerror(errno));
	abort();
}

static void cleanup(void)
{
	unlink(file_path);
	unlink(out_path);
	rmdir(dir);
}

static void setup(void)
{
	int fd;

	if (memfd >= 0)
		return;
	memfd = memfd_create("fuzzlog", MFD_CLOEXEC);
	if (memfd < 0)
		die("memfd_create");
	snprintf(dir, sizeof(dir), "/dev/shm/cowmap-fuzz-%d", (int)getpid());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(dir, sizeof(dir), "/tmp/cowmap-fuzz-%d", (int)getpid());
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			die("mkdir");
	}
	snprintf(file_path, sizeof(file_path), "%s/file", dir);
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	atexit(cleanup);
	for (int i = 0; i < FILE_SIZE; i++)
		base[i] = (uint8_t)(i * 7 + (i >> 8));
	fd = open(file_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || pwrite(fd, base, FILE_SIZE, 0) != FILE_SIZE)
		die("file");
	close(fd);
	for (int i = 0; i < NLOGS; i++) {
		log_fd[i] = memfd_create("fuzzmerge", MFD_CLOEXEC);
		if (log_fd[i] < 0)
			die("memfd_create");
	}
}

static void read_log(const uint8_t *data, size_t size)
{
	struct cowmap_log_info info;
	struct cowmap_log_rec r;
	struct cowmap_log *log;
	uint64_t n = 0, prev_end;
	int ret;

	if (ftruncate(memfd, 0) < 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
		abort();
	if (cowmap_log_open_fd(memfd, "fuzz", 0, &log))
		return;
	cowmap_log_info(log, &info);
	prev_end = info.header_len;
	while ((ret = cowmap_log_next(log, &r)) == 1) {
		/* invariants of an accepted log */
		if (r.seq != n || r.log_offset != prev_end || !r.length ||
		    r.length > COWMAP_LOG_REC_MAX || r.flags)
			abort();
		prev_end = r.log_offset + COWMAP_LOG_REC_SIZE(r.length);
		if (prev_end > info.valid_end || info.valid_end > size)
			abort();
		/* touch the payload: ASan checks the pointers */
		if (r.old_data[0] == 0x5a && r.new_data[r.length - 1] == 0xa5)
			n += 0;
		n++;
	}
	if (ret != 0 || n != info.records || prev_end != info.valid_end)
		abort();
	if (info.torn && info.torn_offset != info.valid_end)
		abort();
	cowmap_log_close(log);
}

/* Recompute the CRCs a structurally plausible log would have. */
static void fixup_and_read(const uint8_t *data, size_t size)
{
	uint8_t *d = malloc(size ? size : 1);
	uint64_t p;

	memcpy(d, data, size);
	if (size >= 96) {
		uint32_t hlen = get_le32(d + 12);

		if (hlen >= 96 && hlen <= size) {
			put_le32(d + 92, log_hdr_crc(d, hlen));
			for (p = hlen; p + 32 <= size;) {
				uint32_t len = get_le32(d + p + 16);
				uint64_t total;

				if (!len || len > COWMAP_LOG_REC_MAX)
					break;
				total = COWMAP_LOG_REC_SIZE(len);
				if (total > size - p)
					break;
				if (d[p + 31] & 1)	/* leave some CRCs wrong */
					put_le32(d + p + 4, log_rec_crc(d + p, total));
				p += total;
			}
		}
	}
	read_log(d, size);
	free(d);
}

static void merge_program(const uint8_t *data, size_t size)
{
	static const unsigned int modes[] = {
		COWMAP_MERGE_DRY_RUN, 0, COWMAP_MERGE_PREFER_FIRST, COWMAP_MERGE_PREFER_LAST,
	};
	struct cowmap_log_writer *w[NLOGS] = { 0 };
	uint8_t view[NLOGS][FILE_SIZE];
	struct cowmap_log_info info;
	struct cowmap_merge_stats st;
	struct cowmap_merge *m;
	unsigned int flags;
	size_t p = 2;
	int fd, nlogs, out;

	if (size < 2)
		return;
	flags = modes[data[0] & 3] | ((data[0] & 4) ? COWMAP_MERGE_DRY_RUN : 0);
	out = (data[0] >> 3) & 1;
	nlogs = 1 + ((data[0] >> 4) & 3);

	/* the file, possibly changed a little from the logs' base */
	fd = open(file_path, O_RDWR);
	if (fd < 0 || pwrite(fd, base, FILE_SIZE, 0) != FILE_SIZE)
		abort();
	if (data[1] & 0x80) {
		uint8_t b = data[1];

		if (pwrite(fd, &b, 1, (off_t)(b * 61 % FILE_SIZE)) != 1)
			abort();
	}
	if (ftruncate(fd, FILE_SIZE - ((data[1] & 0x40) ? (data[1] & 0x3f) : 0)) < 0)
		abort();
	if (cowmap_log_info_init(&info, fd, file_path))
		abort();
	close(fd);

	for (int l = 0; l < nlogs; l++) {
		memcpy(view[l], base, FILE_SIZE);
		if (ftruncate(log_fd[l], 0) < 0 || cowmap_log_create_fd(log_fd[l], &info, 0, &w[l]))
			abort();
	}
	/* op: [log:2 | consistent:1 | len-1:5] [offset lo] [offset hi] then
	 * len new bytes (and len old bytes when not consistent) */
	while (p + 3 <= size) {
		uint8_t op = data[p];
		int l = (op >> 6) % nlogs;
		uint32_t len = (op & 0x1f) + 1 + (data[p + 2] & 0x80 ? 200 : 0);
		uint32_t off = (data[p + 1] | (uint32_t)(data[p + 2] & 0x7f) << 8) % FILE_SIZE;
		const uint8_t *nb, *ob;
		bool consistent = !(op & 0x20);

		p += 3;
		if (off + len > FILE_SIZE + 16)	/* a little beyond the end too */
			len = FILE_SIZE + 16 - off;
		if (p + len > size)
			break;
		nb = data + p;
		p += len;
		if (consistent) {
			uint8_t old[FILE_SIZE + 16] = { 0 };

			memcpy(old, view[l] + off, MIN(len, FILE_SIZE - off));
			ob = old;
			if (cowmap_log_append(w[l], off, ob, nb, len))
				abort();
			memcpy(view[l] + off, nb, MIN(len, FILE_SIZE - off));
			continue;
		}
		if (p + len > size)
			break;
		ob = data + p;
		p += len;
		if (cowmap_log_append(w[l], off, ob, nb, len))
			abort();
	}
	for (int l = 0; l < nlogs; l++)
		if (cowmap_log_writer_close(w[l]))
			abort();

	if (cowmap_merge_new(file_path, flags, &m))
		abort();
	if (out && cowmap_merge_set_output(m, out_path))
		abort();
	for (int l = 0; l < nlogs; l++)
		if (cowmap_merge_add_log_fd(m, log_fd[l], "fuzz"))
			abort();
	int ret = cowmap_merge_run(m);

	cowmap_merge_stats(m, &st);
	if (ret == 0 && st.unresolved)
		abort();
	if (ret == -COWMAP_ECONFLICT && (!st.unresolved || (flags & (COWMAP_MERGE_PREFER_FIRST |
							     COWMAP_MERGE_PREFER_LAST))))
		abort();
	for (size_t i = 0; i < st.conflicts; i++) {
		struct cowmap_conflict c;

		if (cowmap_merge_conflict(m, i, &c) || !c.length || c.preview_len > c.length ||
		    c.log_a < 0 || c.log_a >= nlogs)
			abort();
	}
	if (ret != 0 && ret != -COWMAP_ECONFLICT && ret != -COWMAP_ECHAIN)
		abort();
	cowmap_merge_free(m);
	if (access(out_path, F_OK) == 0 && (!out || ret))
		abort();	/* -o left a file although it failed */
	unlink(out_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (!size)
		return 0;
	switch (data[0] % 3) {
	case 0:
		read_log(data + 1, size - 1);
		break;
	case 1:
		fixup_and_read(data + 1, size - 1);
		break;
	case 2:
		merge_program(data + 1, size - 1);
		break;
	}
	return 0;
}
