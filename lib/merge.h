/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Merging logs into their backing file: state shared by merge.c (public
 * setup, running), merge_net.c (net changes per log) and merge_plan.c
 * (planning).  The algorithm is described at the top of merge.c.
 */
#ifndef COWMAP_MERGE_H
#define COWMAP_MERGE_H

#include "internal.h"

#define TRIM_GAP	64		/* unchanged bytes that split an extent */
#define CHUNK		(1U << 20)	/* bytes decided at a time */
#define WINDOW		(64U << 10)	/* file read-ahead for small segments */
#define JOIN_GAP	64		/* unchanged bytes rewritten to join writes */

struct ext {
	uint64_t off;
	uint64_t len;
	const uint8_t *old;
	const uint8_t *new;
};

struct extv {
	struct ext *v;
	size_t n, cap;
};

struct mlog {
	struct cowmap_log *log;
	char *name;
	struct extv net;
	size_t cur;		/* sweep cursor */
};

struct act {
	uint32_t log;
	const struct ext *e;
};

enum sink_mode { SINK_COUNT, SINK_JOURNAL, SINK_FILE };

/*
 * Conflicts kept for cowmap_merge_conflict(): the first MAX_KEPT_CONFLICTS;
 * later ones are only counted (in the stats), so a log with millions of
 * stale bytes costs neither memory nor time per conflict.
 */
#define MAX_KEPT_CONFLICTS 1000

/* A conflict that covers the byte before (touched_prev) or this byte
 * (touched_cur): its key, and its index in conf (SIZE_MAX: only counted). */
struct touch {
	uint32_t rank;		/* 0: stale, 1: logs (the order decide() adds them) */
	int32_t a, b;
	size_t idx;
};

struct cowmap_merge {
	char *file_path;
	char *out_path;
	unsigned int flags;
	bool ran;

	struct mlog *logs;
	size_t n_logs, cap_logs;

	struct cowmap_conflict *conf;
	size_t n_conf, cap_conf;
	struct touch *touched_prev, *touched_cur;
	size_t n_prev, n_cur, cursor;
	uint64_t touched_at;

	char **warn;
	size_t n_warn, cap_warn;

	struct cowmap_merge_stats st;

	/* planning state */
	int fd;
	uint64_t fsize;
	uint8_t *win;
	size_t win_cap;
	uint64_t win_off, win_len, win_valid;
	uint64_t hole_from, hole_to;	/* a known hole of the file */
	uint64_t data_from, data_to;	/* known data of the file */
	bool no_seek;			/* SEEK_DATA unsupported */
	uint8_t *out, *wmask;
	size_t out_cap, wmask_cap;
	enum sink_mode sink;
	bool sink_stopped;
	struct journal *j;
	int out_fd;
	const char *out_name;
};

/* merge_net.c */
int extv_push(struct extv *x, uint64_t off, uint64_t len,
	      const uint8_t *o, const uint8_t *n);
void extv_free(struct extv *x);
/* First index >= k where a and b differ, or len. */
uint64_t merge_first_diff(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len);
/* End of the changed region starting at @k: the first run of at least
 * @gap equal bytes, or @len; adds the bytes that differ to *@ndiff. */
uint64_t merge_changed_end(const uint8_t *a, const uint8_t *b, uint64_t k, uint64_t len,
			   uint64_t gap, uint64_t *ndiff);
/* Reduce @l to its net changes (l->net). */
int merge_build_net(struct cowmap_merge *m, struct mlog *l);

/* merge_plan.c: decide every byte, sending writes to m->sink. */
int merge_plan(struct cowmap_merge *m);

#endif /* COWMAP_MERGE_H */
