/* SPDX-License-Identifier: GPL-2.0 */
#ifndef COWMAP_TUTIL_H
#define COWMAP_TUTIL_H

#include "cowmap.h"

/* One change for mklog(): old/new bytes given as strings of equal length
 * (binary-safe through @len). */
struct chg {
	uint64_t off;
	uint32_t len;
	const void *old;
	const void *new;
};

int mklog(const char *log, const char *file, const struct chg *c, int n);
int mklog_meta(const char *log, const char *file, const struct chg *c, int n,
	       uint64_t bind_time, uint64_t session_id);
/*
 * Merge @n logs into @file with @flags (and -o @out if not NULL), keeping
 * the merge in *@mp for inspection (caller frees); @mp NULL: freed.
 */
int merge_keep(struct cowmap_merge **mp, const char *file, unsigned int flags,
	       const char *out, int n, ...);
/* merge(file, flags, out, n, logs...): the same without keeping it. */
#define merge(...)	merge_keep(NULL, __VA_ARGS__)
bool file_is(const char *path, const void *data, size_t len);

/* What a run of the CLI printed, and how it ended. */
struct cli_res {
	int status;		/* exit status, or 128 + signal */
	char *out, *err;	/* NUL-terminated, to be freed */
};

/* Run the (test build's) cowmap CLI with @argv (NULL-terminated) as @uid
 * (-1: as root) in a directory of the tests. */
struct cli_res run_cli(int uid, const char *const *argv);
void cli_free(struct cli_res *r);

#endif
