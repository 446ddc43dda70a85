/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kselftest harness, with every test's timeout multiplied by
 * $COWMAP_TIMEOUT_SCALE (an integer, default 1).  The VM runner sets it on
 * the debug kernel, where KASAN and lockdep under QEMU's emulation make
 * everything several times slower than the harness's 30 s default allows.
 *
 * Include instead of "kselftest_harness.h"; a test with its own main()
 * calls cm_scale_timeouts() before test_harness_run().
 */
#ifndef COWMAP_HARNESS_H
#define COWMAP_HARNESS_H

#include <stdlib.h>

#include "kselftest_harness.h"

static inline void cm_scale_timeouts(void)
{
	const char *e = getenv("COWMAP_TIMEOUT_SCALE");
	struct __fixture_metadata *f;
	struct __test_metadata *t;
	long k = e ? strtol(e, NULL, 10) : 1;

	if (k <= 1 || k > 100)
		return;
	for (f = __fixture_list; f; f = f->next)
		for (t = f->tests; t; t = t->next)
			t->timeout *= k;
}

#undef TEST_HARNESS_MAIN
#define TEST_HARNESS_MAIN				\
	int main(int argc, char **argv)			\
	{						\
		cm_scale_timeouts();			\
		return test_harness_run(argc, argv);	\
	}

#endif /* COWMAP_HARNESS_H */
