// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of libcowmap: runs every registered case (or those named on
 * the command line), prints TAP and a final "N passed, N failed, N skipped"
 * line (a skip, COWMAP_TEST_QUICK ones included, is not a pass).
 * COWMAP_TEST_QUICK=1 skips the slow cases.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

struct test_case *tests[256];
size_t n_tests;
bool test_failed, test_skipped;
char test_skip_reason[256];

static char tmp_root[4096];
static char fast_root[4096];

void test_register(struct test_case *t)
{
	if (n_tests < sizeof(tests) / sizeof(tests[0]))
		tests[n_tests++] = t;
}

const char *tmpdir(void)
{
	return tmp_root;
}

const char *fastdir(void)
{
	return fast_root;
}

char *fpath(const char *name)
{
	size_t len = strlen(fast_root) + strlen(name) + 2;
	char *p = malloc(len);

	snprintf(p, len, "%s/%s", fast_root, name);
	return p;
}

/* A path in the test directory; never freed (tests are short-lived). */
char *tpath(const char *name)
{
	size_t len = strlen(tmp_root) + strlen(name) + 2;
	char *p = malloc(len);

	snprintf(p, len, "%s/%s", tmp_root, name);
	return p;
}

static uint64_t rstate = 0x9E3779B97F4A7C15ULL;

void rnd_seed(uint64_t seed)
{
	rstate = seed ? seed : 1;
}

uint64_t rnd64(void)
{
	/* xorshift64* */
	rstate ^= rstate >> 12;
	rstate ^= rstate << 25;
	rstate ^= rstate >> 27;
	return rstate * 0x2545F4914F6CDD1DULL;
}

uint32_t rnd(uint32_t n)
{
	return n ? (uint32_t)(rnd64() % n) : 0;
}

void fill_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len >= 8) {
		uint64_t v = rnd64();

		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	while (len--)
		*p++ = (uint8_t)rnd64();
}

int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	const uint8_t *p = buf;

	if (fd < 0)
		return -1;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0) {
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return close(fd);
}

uint8_t *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf;

	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	for (;;) {
		ssize_t r;

		if (n == cap)
			buf = realloc(buf, cap *= 2);
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			free(buf);
			close(fd);
			return NULL;
		}
		if (!r)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static bool selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR");
	bool quick = getenv("COWMAP_TEST_QUICK") && *getenv("COWMAP_TEST_QUICK") == '1';
	int pass = 0, fail = 0, skip = 0, num = 0, planned = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(tmp_root, sizeof(tmp_root), "%s/cowmap-host-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(fast_root, sizeof(fast_root), "/dev/shm/cowmap-host-XXXXXX");
	if (!mkdtemp(fast_root))
		snprintf(fast_root, sizeof(fast_root), "%s", tmp_root);
	for (size_t i = 0; i < n_tests; i++)
		if (selected(tests[i]->name, argc, argv))
			planned++;
	printf("TAP version 13\n1..%d\n", planned);
	for (size_t i = 0; i < n_tests; i++) {
		struct test_case *t = tests[i];
		double t0;

		if (!selected(t->name, argc, argv))
			continue;
		num++;
		if (quick && t->slow) {
			printf("ok %d - %s # SKIP COWMAP_TEST_QUICK\n", num, t->name);
			skip++;
			continue;
		}
		test_failed = false;
		test_skipped = false;
		rnd_seed(0x1234567ULL + i);
		t0 = now_sec();
		t->fn();
		if (test_skipped && !test_failed) {
			printf("ok %d - %s # SKIP %s\n", num, t->name, test_skip_reason);
			skip++;
		} else if (test_failed) {
			printf("not ok %d - %s (%.2fs)\n", num, t->name, now_sec() - t0);
			fail++;
		} else {
			printf("ok %d - %s (%.2fs)\n", num, t->name, now_sec() - t0);
			pass++;
		}
	}
	if (!getenv("COWMAP_TEST_KEEP")) {
		nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		if (strcmp(fast_root, tmp_root))
			nftw(fast_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
	return fail ? 1 : 0;
}
