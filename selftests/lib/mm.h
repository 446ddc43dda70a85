/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of cowmap_mm_test.c and cowmap_hostile_test.c
 * (selftests/lib/mm.c): backing files with a recognisable pattern,
 * /proc/self/pagemap, /proc/self/smaps, probing an access for
 * SIGSEGV/SIGBUS, and small /proc and /sys readers.  Sessions are util.h's.
 *
 * Nothing here uses the kselftest harness: the helpers return errors and the
 * tests assert.
 */
#ifndef COWMAP_SELFTEST_MM_H
#define COWMAP_SELFTEST_MM_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/cowmap.h>

#define MM_EXT4_MAGIC	0xEF53
#define MM_XFS_MAGIC	0x58465342
#define MM_BTRFS_MAGIC	0x9123683E

#define MM_PAGE		4096UL
#define MM_PMD_SIZE	(2UL << 20)
#define MM_PMD_PAGES	(MM_PMD_SIZE / MM_PAGE)
#define MM_WORDS	(MM_PAGE / sizeof(uint64_t))

/*
 * Contents.  Word @j of page @pg of a backing file written with @seed, and
 * of a page the test wrote through cowmap with @tag.  Every word of every
 * page differs, so a page shown at the wrong offset is caught too.
 */
static inline uint64_t pat_word(uint32_t seed, uint64_t pg, unsigned int j)
{
	return 0x5EED000000000000ULL | ((uint64_t)(seed & 0xfff) << 36) |
	       ((pg & 0xffffff) << 12) | j;
}

static inline uint64_t priv_word(uint32_t tag, uint64_t pg, unsigned int j)
{
	return 0xC0DE000000000000ULL | ((uint64_t)(tag & 0xfff) << 36) |
	       ((pg & 0xffffff) << 12) | j;
}

void fill_pat(void *page, uint32_t seed, uint64_t pg);

void fill_priv(volatile void *page, uint32_t tag, uint64_t pg);

/* Index of the first word of @page that is not file page @pg, or -1. */
int bad_pat(const volatile void *page, uint32_t seed, uint64_t pg);

int bad_priv(const volatile void *page, uint32_t tag, uint64_t pg);

int bad_zero(const volatile void *page);

/* Write @pages pages of pattern @seed at page @first of @fd. */
int write_pat(int fd, uint32_t seed, uint64_t first, uint64_t pages);

/*
 * Compare pages [@first, @first + @pages) of @fd (read with pread) with
 * pattern @seed.  Returns the first differing page, or -1.
 */
int64_t file_bad_page(int fd, uint32_t seed, uint64_t first,
		      uint64_t pages);

int64_t file_bad_zero(int fd, uint64_t first, uint64_t pages);

/* Addresses. */

/* Is a mapping of file offset @off at @addr PMD-congruent? */
bool congruent(const volatile void *addr, uint64_t off);

/*
 * A free, 2 MiB-aligned range of @len bytes (reserved PROT_NONE; MAP_FIXED
 * and MREMAP_FIXED replace it).  The rest of the reservation is returned
 * to the system.  Returns NULL on failure.
 */
void *reserve_aligned(size_t len);

/* /proc/self/pagemap: the entry of @addr, or 0 on error. */
uint64_t pagemap_entry(const volatile void *addr);

#define PM_PRESENT	(1ULL << 63)
#define PM_PFN_MASK	((1ULL << 55) - 1)
#define PM_SOFT_DIRTY	(1ULL << 55)

bool pte_present(const volatile void *addr);

/* The PFN mapped at @addr; 0 if not present or hidden (not root). */
uint64_t pfn_of(const volatile void *addr);

/* /proc/kpageflags bits of @pfn, or 0. */
#define KPF_COMPOUND_HEAD	15
#define KPF_COMPOUND_TAIL	16
#define KPF_THP			22

uint64_t kpageflags(uint64_t pfn);

/*
 * The value (kB) of field @field ("FilePmdMapped:", "Rss:", ...) of the
 * /proc/self/smaps entry of the VMA containing @addr; -1 if not found.
 */
long smaps_field(const volatile void *addr, const char *field);

/* Probing accesses that may fault: returns 0 or the signal (SIGSEGV/SIGBUS). */
int probe_read(const volatile void *p, uint64_t *out);

int probe_write(volatile void *p, uint64_t v);

/* Small file readers (read_text(): util.h). */

int write_text(const char *path, const char *s);

/* "key value" files (memory.stat, memory.events, /proc/meminfo, vmstat). */
long long keyed_value(const char *path, const char *key);

#endif /* COWMAP_SELFTEST_MM_H */
