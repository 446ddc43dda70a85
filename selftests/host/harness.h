/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A tiny TAP harness for the host tests: TEST() registers a case, EXPECT()
 * records a failure and goes on, ASSERT() records it and leaves the case.
 * main() in main.c prints "ok N - name" / "not ok N - name" per case and
 * finally "N passed, N failed, N skipped".
 */
#ifndef COWMAP_HARNESS_H
#define COWMAP_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
	const char *name;
	void (*fn)(void);
	bool slow;
};

extern struct test_case *tests[];
extern size_t n_tests;
void test_register(struct test_case *t);

extern bool test_failed;
extern bool test_skipped;
extern char test_skip_reason[256];

#define TEST_FLAGS(fname, is_slow)					\
	static void fname(void);					\
	static struct test_case tc_##fname = { #fname, fname, is_slow };	\
	__attribute__((constructor)) static void reg_##fname(void)	\
	{ test_register(&tc_##fname); }					\
	static void fname(void)

#define TEST(fname) TEST_FLAGS(fname, false)
#define TEST_SLOW(fname) TEST_FLAGS(fname, true)

#define DIAG(...) do {							\
	printf("# ");							\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	fflush(stdout);							\
} while (0)

#define EXPECT(cond, ...) do {						\
	if (!(cond)) {							\
		printf("# %s:%d: %s failed: ", __FILE__, __LINE__, #cond);	\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		fflush(stdout);						\
		test_failed = true;					\
	}								\
} while (0)

#define ASSERT(cond, ...) do {						\
	if (!(cond)) {							\
		EXPECT(cond, __VA_ARGS__);				\
		return;							\
	}								\
} while (0)

#define SKIP(...) do {							\
	snprintf(test_skip_reason, sizeof(test_skip_reason), __VA_ARGS__); \
	test_skipped = true;						\
	return;								\
} while (0)

/* helpers (util.c of the tests) */
const char *tmpdir(void);
char *tpath(const char *name);
/* tmpfs (/dev/shm) when available: for tests whose many fsyncs would
 * only measure the disk (crash points, model checks). */
const char *fastdir(void);
char *fpath(const char *name);
void fill_random(void *buf, size_t len);
uint64_t rnd64(void);
uint32_t rnd(uint32_t n);		/* 0..n-1 */
void rnd_seed(uint64_t seed);
int write_file(const char *path, const void *buf, size_t len);
uint8_t *read_file(const char *path, size_t *len);
double now_sec(void);

#endif
