// SPDX-License-Identifier: GPL-2.0
/*
 * cowmap-counter: a persistent variable that survives program runs and is
 * never half-updated, in the spirit of the "map to persistence" lab.
 *
 * The lab maps a file MAP_SHARED and lets the program's stores reach the
 * file directly: a program killed between two related stores leaves the
 * file inconsistent.  Here the program maps the file through a cowmap
 * session instead.  Its stores land in private pages; cowmap_session_commit()
 * then merges them into the file through the journal, so the file holds
 * either every store of an update or none of them, whenever the program
 * is killed.
 *
 * The state spans two pages on purpose: the counter at the start of the
 * first page, its complement at the end of the second, and a note of who
 * updated it.  A file where they disagree is torn.
 *
 *   cowmap-counter FILE          print the counter, add one, commit
 *   cowmap-counter -n N FILE     the same N times (for crash tests)
 *   cowmap-counter -c FILE       check the file only: print the counter
 *
 * Each commit prints "committed N" once the file holds N.  Exit status:
 * 0, 1 on errors (a torn file included), 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cowmap.h"

#define STATE_SIZE	8192
#define CHECK_OFF	(STATE_SIZE - 8)
#define INITIAL		10

struct head {
	char magic[8];		/* "CMCOUNT1" */
	uint64_t count;
	char note[48];
};

static const char magic[8] = "CMCOUNT1";

static void usage(FILE *f)
{
	fprintf(f, "usage: cowmap-counter [-n COUNT] [-c] FILE\n");
}

/* Create FILE with the initial state, atomically (tmp + link). */
static int create_state(const char *path)
{
	static uint8_t buf[STATE_SIZE];
	struct head *h = (struct head *)buf;
	uint64_t check = ~(uint64_t)INITIAL;
	char tmp[4096];
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new.%d", path, getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(h->magic, magic, sizeof(magic));
	h->count = INITIAL;
	snprintf(h->note, sizeof(h->note), "created by pid %d", getpid());
	memcpy(buf + CHECK_OFF, &check, sizeof(check));
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, sizeof(buf)) != sizeof(buf) || fsync(fd))
		ret = errno ? -errno : -EIO;
	close(fd);
	if (!ret && link(tmp, path) && errno != EEXIST)
		ret = -errno;
	unlink(tmp);
	return ret;
}

/* The counter in @p, or -1 (and a message) if the state is not valid. */
static int64_t state_value(const char *path, const uint8_t *p)
{
	const struct head *h = (const struct head *)p;
	uint64_t check;

	memcpy(&check, p + CHECK_OFF, sizeof(check));
	if (memcmp(h->magic, magic, sizeof(magic))) {
		fprintf(stderr, "cowmap-counter: %s: not a counter file\n", path);
		return -1;
	}
	if (check != ~h->count) {
		fprintf(stderr, "cowmap-counter: %s: TORN: count %" PRIu64
			" but check word %#" PRIx64 " (expected %#" PRIx64 ")\n",
			path, h->count, check, ~h->count);
		return -1;
	}
	return (int64_t)(h->count & INT64_MAX);
}

static int check_only(const char *path)
{
	uint8_t buf[STATE_SIZE];
	int64_t v;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "cowmap-counter: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (pread(fd, buf, sizeof(buf), 0) != sizeof(buf)) {
		fprintf(stderr, "cowmap-counter: %s: shorter than %d bytes\n", path,
			STATE_SIZE);
		close(fd);
		return 1;
	}
	close(fd);
	v = state_value(path, buf);
	if (v < 0)
		return 1;
	printf("count = %" PRId64 "\n", v);
	return 0;
}

int main(int argc, char **argv)
{
	struct cowmap_session *s = NULL;
	long n = 1, i;
	int opt, check = 0, ret, rc = 1;
	const char *path;
	uint8_t *p = NULL;
	struct stat sb;
	int64_t v;

	while ((opt = getopt(argc, argv, "n:ch")) != -1) {
		switch (opt) {
		case 'n': {
			char *end;

			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || n < 1) {
				fprintf(stderr, "cowmap-counter: -n: not a positive number: '%s'\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'c':
			check = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	path = argv[optind];
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Finish (or drop) a commit that was killed half-way. */
	ret = cowmap_recover(path, 0);
	if (ret == -ENOENT) {
		ret = create_state(path);
		if (ret) {
			fprintf(stderr, "cowmap-counter: %s: %s\n", path, strerror(-ret));
			return 1;
		}
	} else if (ret < 0) {
		fprintf(stderr, "cowmap-counter: %s: %s\n", path, cowmap_errmsg());
		return 1;
	} else if (ret == COWMAP_RECOVER_REPLAYED) {
		printf("recovered: an interrupted commit was completed\n");
	} else if (ret == COWMAP_RECOVER_DROPPED) {
		printf("recovered: an interrupted commit was dropped\n");
	}
	if (check)
		return check_only(path);

	if (stat(path, &sb) || sb.st_size != STATE_SIZE) {
		fprintf(stderr, "cowmap-counter: %s: not a counter file (size %lld, expected %d)\n",
			path, (long long)sb.st_size, STATE_SIZE);
		return 1;
	}
	ret = cowmap_session_open(path, 0, NULL, 0, &s);
	if (!ret)
		ret = cowmap_session_map(s, 0, STATE_SIZE, PROT_READ | PROT_WRITE, (void **)&p);
	if (ret) {
		fprintf(stderr, "cowmap-counter: %s: %s\n", path, cowmap_errmsg());
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct head *h = (struct head *)p;
		uint64_t c;

		v = state_value(path, p);
		if (v < 0)
			goto out;
		if (i == 0)
			printf("count = %" PRId64 "\n", v);
		/* Three stores on two pages: all of them or none reach the file. */
		h->count = (uint64_t)v + 1;
		snprintf(h->note, sizeof(h->note), "pid %d, update %ld", getpid(), i + 1);
		c = ~h->count;
		memcpy(p + CHECK_OFF, &c, sizeof(c));
		ret = cowmap_session_commit(s, 0, NULL);
		if (ret) {
			fprintf(stderr, "cowmap-counter: commit: %s\n", cowmap_errmsg());
			goto out;
		}
		printf("committed %" PRId64 "\n", v + 1);
	}
	rc = 0;
out:
	if (p)
		cowmap_session_unmap(s, p, STATE_SIZE);
	cowmap_session_close(s);
	return rc;
}
