/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The filesystems a test repeats on, one kselftest variant each, named as
 * the tests' names and selftests/expected-skips spell them:
 *
 *	FIXTURE_VARIANT(foo) {
 *		COWMAP_FS_VARIANT_FIELDS;
 *	};
 *	COWMAP_FS_VARIANTS(foo);
 *
 * env is the variable naming the scratch directory (selftests/vm/README.md),
 * name the filesystem as messages say it, magic its statfs f_type.  A test
 * that cannot run on one of them adds the others one by one (and says why).
 *
 * Include after "cowmap_harness.h".
 */
#ifndef COWMAP_FS_VARIANTS_H
#define COWMAP_FS_VARIANTS_H

#include <linux/magic.h>

#define COWMAP_FS_VARIANT_FIELDS					\
	const char *env;						\
	const char *name;						\
	unsigned long magic

#define COWMAP_FS_VARIANT_EXT4(fixture)					\
	FIXTURE_VARIANT_ADD(fixture, ext4) {				\
		.env = "COWMAP_SCRATCH", .name = "ext4",		\
		.magic = EXT4_SUPER_MAGIC,				\
	}

#define COWMAP_FS_VARIANT_XFS(fixture)					\
	FIXTURE_VARIANT_ADD(fixture, xfs) {				\
		.env = "COWMAP_SCRATCH_XFS", .name = "xfs",		\
		.magic = XFS_SUPER_MAGIC,				\
	}

#define COWMAP_FS_VARIANT_BTRFS(fixture)				\
	FIXTURE_VARIANT_ADD(fixture, btrfs) {				\
		.env = "COWMAP_SCRATCH_BTRFS", .name = "btrfs",		\
		.magic = BTRFS_SUPER_MAGIC,				\
	}

#define COWMAP_FS_VARIANTS(fixture)					\
	COWMAP_FS_VARIANT_EXT4(fixture);				\
	COWMAP_FS_VARIANT_XFS(fixture);					\
	COWMAP_FS_VARIANT_BTRFS(fixture)

#endif /* COWMAP_FS_VARIANTS_H */
