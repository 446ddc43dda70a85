// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * CRC32C (Castagnoli): reflected polynomial 0x82F63B78, initial value ~0,
 * final xor ~0.  Slicing-by-8 tables, and the SSE4.2 crc32 instruction
 * when the CPU has it (checked at run time).
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
__attribute__((target("sse4.2")))
static uint32_t hw_update(uint32_t c, const uint8_t *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8(c, *p++);
		len--;
	}
#ifdef __x86_64__
	{
		uint64_t c64 = c;

		while (len >= 32) {
			uint64_t a, b, d, e;

			memcpy(&a, p, 8);
			memcpy(&b, p + 8, 8);
			memcpy(&d, p + 16, 8);
			memcpy(&e, p + 24, 8);
			c64 = _mm_crc32_u64(c64, a);
			c64 = _mm_crc32_u64(c64, b);
			c64 = _mm_crc32_u64(c64, d);
			c64 = _mm_crc32_u64(c64, e);
			p += 32;
			len -= 32;
		}
		while (len >= 8) {
			uint64_t a;

			memcpy(&a, p, 8);
			c64 = _mm_crc32_u64(c64, a);
			p += 8;
			len -= 8;
		}
		c = (uint32_t)c64;
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

COWMAP_EXPORT uint32_t cowmap_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return ~crc32c_update(~crc, buf, len);
}
