// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * CRC32C (Castagnoli): reflected polynomial 0x82F63B78, initial value ~0,
 * final xor ~0.  Slicing-by-8 tables, and the SSE4.2 crc32 instruction
 * (three streams in parallel) when the CPU has it (checked at run time).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define HAVE_X86_CRC 1
#endif

#define POLY 0x82F63B78U

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static int hw_state;	/* 0 unknown, 1 yes, -1 no */

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (POLY & (0U - (c & 1)));
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^
				      table[0][table[t - 1][i] & 0xff];
}

static uint32_t sw_update(uint32_t c, const uint8_t *p, size_t len)
{
	pthread_once(&table_once, table_init);
	while (len && ((uintptr_t)p & 7)) {
		c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		len--;
	}
	while (len >= 8) {
		uint32_t lo = get_le32(p) ^ c;
		uint32_t hi = get_le32(p + 4);

		c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		    table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
		    table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
		    table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#ifdef HAVE_X86_CRC
/*
 * Three-way parallel crc32 instructions (the instruction has a latency of
 * three cycles and a throughput of one), combined with "zeros operator"
 * tables that shift a CRC over LONG or SHORT zero bytes; after Mark
 * Adler's crc32c.c.
 */
#define LONG	8192
#define SHORT	256

static uint32_t zeros_long[4][256], zeros_short[4][256];
static pthread_once_t zeros_once = PTHREAD_ONCE_INIT;

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	while (vec) {
		if (vec & 1)
			sum ^= *mat;
		vec >>= 1;
		mat++;
	}
	return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++)
		square[n] = gf2_times(mat, mat[n]);
}

/* The operator that appends @len (a power of two) zero bytes. */
static void zeros_op(uint32_t *even, size_t len)
{
	uint32_t odd[32], row = 1;

	odd[0] = POLY;
	for (int n = 1; n < 32; n++) {
		odd[n] = row;
		row <<= 1;
	}
	gf2_square(even, odd);		/* 2 zero bits */
	gf2_square(odd, even);		/* 4 zero bits */
	do {
		gf2_square(even, odd);
		len >>= 1;
		if (!len)
			return;
		gf2_square(odd, even);
		len >>= 1;
	} while (len);
	memcpy(even, odd, sizeof(odd));
}

static void zeros_table(uint32_t zeros[][256], size_t len)
{
	uint32_t op[32];

	zeros_op(op, len);
	for (uint32_t n = 0; n < 256; n++) {
		zeros[0][n] = gf2_times(op, n);
		zeros[1][n] = gf2_times(op, n << 8);
		zeros[2][n] = gf2_times(op, n << 16);
		zeros[3][n] = gf2_times(op, n << 24);
	}
}

static void zeros_init(void)
{
	zeros_table(zeros_long, LONG);
	zeros_table(zeros_short, SHORT);
}

static uint32_t shift(uint32_t zeros[][256], uint32_t crc)
{
	return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^
	       zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

#ifdef __x86_64__
/*
 * Consume @blk-byte triples of *@p while *@len has one: three streams of
 * @blk bytes each, shifted together with @zeros (the operator for @blk
 * zero bytes).  Always inlined: @blk is then a constant, as it was.
 */
__attribute__((target("sse4.2"), always_inline))
static inline uint64_t hw_triples(uint64_t c0, const uint8_t **pp, size_t *lenp,
				  size_t blk, uint32_t zeros[][256])
{
	const uint8_t *p = *pp;
	size_t len = *lenp;

	while (len >= 3 * blk) {
		uint64_t c1 = 0, c2 = 0;
		const uint8_t *end = p + blk;

		do {
			uint64_t a, b, d;

			memcpy(&a, p, 8);
			memcpy(&b, p + blk, 8);
			memcpy(&d, p + 2 * blk, 8);
			c0 = _mm_crc32_u64(c0, a);
			c1 = _mm_crc32_u64(c1, b);
			c2 = _mm_crc32_u64(c2, d);
			p += 8;
		} while (p < end);
		c0 = shift(zeros, (uint32_t)c0) ^ (uint32_t)c1;
		c0 = shift(zeros, (uint32_t)c0) ^ (uint32_t)c2;
		p += 2 * blk;
		len -= 3 * blk;
	}
	*pp = p;
	*lenp = len;
	return c0;
}
#endif

__attribute__((target("sse4.2")))
static uint32_t hw_update(uint32_t c, const uint8_t *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8(c, *p++);
		len--;
	}
#ifdef __x86_64__
	{
		uint64_t c0 = c;

		if (len >= 3 * SHORT)
			pthread_once(&zeros_once, zeros_init);
		c0 = hw_triples(c0, &p, &len, LONG, zeros_long);
		c0 = hw_triples(c0, &p, &len, SHORT, zeros_short);
		while (len >= 8) {
			uint64_t a;

			memcpy(&a, p, 8);
			c0 = _mm_crc32_u64(c0, a);
			p += 8;
			len -= 8;
		}
		c = (uint32_t)c0;
	}
#endif
	while (len >= 4) {
		uint32_t a;

		memcpy(&a, p, 4);
		c = _mm_crc32_u32(c, a);
		p += 4;
		len -= 4;
	}
	while (len--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}
#endif

bool crc32c_hw_available(void)
{
#ifdef HAVE_X86_CRC
	if (!hw_state) {
		__builtin_cpu_init();
		hw_state = __builtin_cpu_supports("sse4.2") ? 1 : -1;
	}
	return hw_state > 0;
#else
	return false;
#endif
}

uint32_t crc32c_update(uint32_t reg, const void *buf, size_t len)
{
#ifdef HAVE_X86_CRC
	if (crc32c_hw_available())
		return hw_update(reg, buf, len);
#endif
	return sw_update(reg, buf, len);
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	return ~sw_update(~crc, buf, len);
}

uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
#ifdef HAVE_X86_CRC
	if (crc32c_hw_available())
		return ~hw_update(~crc, buf, len);
#endif
	return crc32c_sw(crc, buf, len);
}

uint32_t crc32c_skip4(const void *buf, uint64_t len, size_t crc_at)
{
	static const uint8_t zero4[4];
	const uint8_t *p = buf;
	uint32_t c = ~0U;

	c = crc32c_update(c, p, crc_at);
	c = crc32c_update(c, zero4, 4);
	c = crc32c_update(c, p + crc_at + 4, len - crc_at - 4);
	return ~c;
}

COWMAP_EXPORT uint32_t cowmap_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return ~crc32c_update(~crc, buf, len);
}
