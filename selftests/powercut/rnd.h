/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The power-cut tools' pseudo-random numbers (xorshift64*), shared by
 * pc.c (file contents) and replay.c (crash subsets): one seed gives the
 * same sequence in both.  *@s must not be 0.
 */
#ifndef COWMAP_POWERCUT_RND_H
#define COWMAP_POWERCUT_RND_H

#include <stdint.h>

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

#endif
