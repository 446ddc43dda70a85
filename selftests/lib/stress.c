// SPDX-License-Identifier: GPL-2.0
/*
 * The cowmap stress engine: several processes and threads ("actors") do
 * random operations on a few sessions of one backing file while an outsider
 * process writes, truncates, punches and extends that file, and a reference
 * model predicts what every session must read at every step.
 *
 * One controller (the main thread of the test process, P0) draws every
 * operation from a seeded generator and hands it to an actor: a worker
 * thread of P0, or a process forked from an actor (fork inherits mappings
 * and session fds), a process that got the session fds over SCM_RIGHTS, or
 * the outsider.  Operations are grouped into batches of up to
 * cfg.batch_max that run at the same time on different actors; the
 * generator only puts operations in one batch whose effects on the model
 * commute (disjoint byte ranges of one page, a drain racing writes, a fork
 * racing faults, MADV_DONTNEED racing writes...), so the outcome is
 * predictable whatever the interleaving, and a seed replays a run.
 *
 * The model: the file's bytes and size; per session the private pages
 * (offset -> contents) and what its logs say (offset -> contents rebuilt
 * from the records drained so far, starting from the page as it was
 * copied).  A page's visible contents are its private copy if there is one,
 * else the file's current page; a non-private page at or beyond EOF gives
 * SIGBUS.  Checks: every read; every write's outcome (ok, SIGBUS at EOF,
 * SIGSEGV on a read-only mapping); DISCARD's page count; INFO's
 * private_pages, cow_faults, undrained_pages, mapped_bytes and sizes; the
 * event ring's sequence numbers and COW count; DIFF against the drained
 * logs; every drained record's old bytes against the log image (a chain),
 * and after a quiet drain the log image of every private page against the
 * page; at the end the kernel's final drain on close.
 *
 * On a mismatch the seed and the trace of the last operations are printed;
 * COWMAP_SEED=<seed> STRESS_OPS=<n> replays the run.
 *
 * The operations are a table (st_ops[], stress_ops.c): each has its share
 * of the draw and its handlers to choose, issue, run (stress_actor.c) and
 * complete it.  This file is the controller: the model, the logs, the
 * checks and the run.
 *
 * Fault injection (cowmap_faultinj_test.c) hooks in through cfg.inject:
 * actors run with make-it-fail set, and failed allocations must end as a
 * clean errno (ENOMEM, EAGAIN...), a retried fault, or nothing.  Operations
 * whose effect is then uncertain (an mmap/munmap/mremap that failed) are
 * cleaned up with injection paused, and the model stays exact.
 */
#include "stress_int.h"

/* ------------------------------------------------------------------------
 * The model, the trace and mismatches
 */

void st_trace(struct st_run *R, const char *fmt, ...)
{
	va_list ap;
	char *l = R->trace[R->ntrace++ % ST_TRACE_LINES];

	va_start(ap, fmt);
	vsnprintf(l, 160, fmt, ap);
	va_end(ap);
}

static void st_dump_trace(struct st_run *R)
{
	long i = R->ntrace > ST_TRACE_LINES ? R->ntrace - ST_TRACE_LINES : 0;

	fprintf(stderr, "# ---- stress trace (last %ld of %ld lines), seed %llu ----\n",
		R->ntrace - i, R->ntrace, (unsigned long long)R->cfg.seed);
	for (; i < R->ntrace; i++)
		fprintf(stderr, "#   %s\n", R->trace[i % ST_TRACE_LINES]);
	fprintf(stderr, "# replay: COWMAP_SEED=%llu STRESS_OPS=%ld (dir %s)\n",
		(unsigned long long)R->cfg.seed, R->st.ops, R->cfg.dir);
}

/* Record a mismatch; the run stops at the first one. */
void st_fail(struct st_run *R, const char *fmt, ...)
{
	va_list ap;

	if (R->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(R->why, sizeof(R->why), fmt, ap);
	va_end(ap);
	R->failed = 1;
	R->st.mismatches++;
	st_trace(R, "MISMATCH: %s", R->why);
	fprintf(stderr, "# MISMATCH: %s\n", R->why);
	st_dump_trace(R);
}

uint64_t st_rnd(struct st_run *R, uint64_t n)
{
	return n ? cm_rand(&R->rng) % n : 0;
}

uint64_t st_npages_eof(struct st_run *R)
{
	return (R->size + PG - 1) / PG;
}

/* Expected page contents for session @s at page @p; returns 0 or SIGBUS. */
int st_expect(struct st_run *R, int s, uint64_t p, uint8_t *out)
{
	if (R->s[s].priv[p]) {
		memcpy(out, R->s[s].priv[p], PG);
		return 0;
	}
	if (p >= st_npages_eof(R))
		return SIGBUS;
	memcpy(out, R->file + p * PG, PG);
	return 0;
}

uint64_t st_hash(const uint8_t *p, size_t n)
{
	return cm_crc32c_raw(~0U, p, n);
}

/* ------------------------------------------------------------------------
 * Talking to actors
 */

void st_post(struct st_run *R, int actor)
{
	(void)R;
	sem_post(&st_sh->slot[actor].go);
}

/*
 * Read /proc/<pid>[/task/<tid>]/stat (@tid 0: the process) into @buf and
 * return its fields after "(comm) ", state first; NULL if it is gone.
 */
static char *st_stat(pid_t pid, pid_t tid, char *buf, size_t len)
{
	char path[96], *p;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (cm_read_text(path, buf, len))
		return NULL;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] ? p + 2 : NULL;
}

/*
 * Where a stuck process is: each thread's state, minor faults (twice, 2 s
 * apart: a thread retrying a fault counts up) and kernel stack.
 */
static void st_dump_stuck(pid_t pid)
{
	char path[96], buf[4096], *p;
	unsigned long flt[2][64] = { { 0 } };
	char state[64] = { 0 };
	int tids[64], n = 0, round, i;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)) && n < 64) {
		if (de->d_name[0] != '.')
			tids[n++] = atoi(de->d_name);
	}
	closedir(d);
	for (round = 0; round < 2; round++) {
		if (round)
			sleep(2);
		for (i = 0; i < n; i++) {
			/* State, then minflt (the 10th field). */
			p = st_stat(pid, tids[i], buf, sizeof(buf));
			if (p && sscanf(p, "%c %*d %*d %*d %*d %*d %*u %lu",
					&state[i], &flt[round][i]) != 2)
				state[i] = '?';
		}
	}
	for (i = 0; i < n; i++) {
		printf("# stuck pid %d, thread %d: state %c, %lu minor faults in 2 s; kernel stack:\n",
		       pid, tids[i], state[i] ? state[i] : '?', flt[1][i] - flt[0][i]);
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", pid, tids[i]);
		if (!cm_read_text(path, buf, sizeof(buf))) {
			for (p = strtok(buf, "\n"); p; p = strtok(NULL, "\n"))
				printf("#   %s\n", p);
		}
	}
	fflush(stdout);
}

/*
 * State letter of process @pid ('?' if it is gone); a zombie's exit status
 * (the wait(2) status word: signal in the low bits) in *@status.
 */
static char st_proc_state(pid_t pid, int *status)
{
	char buf[2048], *p = st_stat(pid, 0, buf, sizeof(buf)), *q;
	int i;

	if (!p)
		return '?';
	/* exit_code is the last field (52nd; 49 fields after the state). */
	for (i = 0, q = p; q && i < 49; i++) {
		q = strchr(q, ' ');
		if (q)
			q++;
	}
	*status = q ? atoi(q) : 0;
	return p[0];
}

/*
 * Wait for @actor; fails the run if it does not answer in time, or at once
 * if its process died (of a signal it did not expect, say).
 */
int st_wait(struct st_run *R, int actor)
{
	struct timespec ts;
	pid_t pid = st_sh->slot[actor].pid;
	int waited = 0, status = 0;
	char state;

	for (;;) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (!sem_timedwait(&st_sh->slot[actor].done, &ts))
			return 0;
		if (errno == EINTR)
			continue;
		state = st_proc_state(pid, &status);
		if (state == 'Z' || state == '?') {
			st_fail(R, "actor %d (pid %d) died running %s: %s %d", actor, pid,
				st_ops[st_sh->slot[actor].c.op].name,
				WIFSIGNALED(status) ? "signal" : "exit status",
				WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			return -1;
		}
		if (++waited < 120)
			continue;
		st_dump_stuck(pid);
		st_fail(R, "actor %d (pid %d) did not answer %s within 120 s", actor,
			pid, st_ops[st_sh->slot[actor].c.op].name);
		return -1;
	}
}

struct st_cmd *st_cmd(int actor)
{
	struct st_cmd *c = &st_sh->slot[actor].c;

	memset(c, 0, offsetof(struct st_cmd, page));
	c->fd = -1;
	return c;
}

/* Run one command on @actor synchronously. */
struct st_cmd *st_run1(struct st_run *R, int actor)
{
	st_post(R, actor);
	if (st_wait(R, actor))
		return NULL;
	return &st_sh->slot[actor].c;
}

int st_new_actor(struct st_run *R, int proc)
{
	int a;

	/* -1: free; -2: taken by a fork still in flight. */
	for (a = 0; a < ST_MAX_ACTORS; a++) {
		if (R->actor_proc[a] == -1) {
			R->actor_proc[a] = proc;
			return a;
		}
	}
	return -1;
}

int st_new_proc(struct st_run *R)
{
	int i, s;

	for (i = 0; i < ST_MAX_PROCS; i++) {
		if (!R->proc[i].alive) {
			memset(&R->proc[i], 0, sizeof(R->proc[i]));
			for (s = 0; s < ST_MAX_SESS; s++)
				R->proc[i].fd[s] = -1;
			R->proc[i].alive = 1;
			return i;
		}
	}
	return -1;
}

int st_nprocs(struct st_run *R)
{
	int i, n = 0;

	for (i = 0; i < ST_MAX_PROCS; i++)
		n += R->proc[i].alive;
	return n;
}

int st_new_map(struct st_run *R)
{
	int i;

	for (i = 0; i < ST_MAX_MAPS; i++)
		if (!R->map[i].alive)
			return i;
	return -1;
}

uint64_t st_mapped_bytes(struct st_run *R, int s)
{
	uint64_t b = 0;
	int i;

	for (i = 0; i < ST_MAX_MAPS; i++)
		if (R->map[i].alive && R->map[i].sess == s)
			b += R->map[i].npages * PG;
	return b;
}

/* ------------------------------------------------------------------------
 * Logs: parse what a drain appended and replay it onto the log image
 */

static int st_apply_records(struct st_run *R, int s, const uint8_t *buf, size_t len,
			    uint64_t *seq, size_t *consumed, const char *what)
{
	struct st_sess *S = &R->s[s];
	size_t pos = 0;
	struct cm_rec r;
	char why[64];
	int n;

	while ((n = cm_rec_next(buf, len, &pos, &r, why)) == 1) {
		uint64_t p = r.offset / PG, o = r.offset % PG;

		if (r.seq != *seq) {
			st_fail(R, "%s: record seq %llu, expected %llu", what,
				(unsigned long long)r.seq, (unsigned long long)*seq);
			return -1;
		}
		(*seq)++;
		if (p >= ST_CAP_PAGES || o + r.length > PG || r.flags) {
			st_fail(R, "%s: record at %#llx+%u spans pages or has flags %#x",
				what, (unsigned long long)r.offset, r.length, r.flags);
			return -1;
		}
		if (!S->logimg[p]) {
			st_fail(R, "%s: record for page %llu, which session %d never copied",
				what, (unsigned long long)p, s);
			return -1;
		}
		if (memcmp(S->logimg[p] + o, r.old, r.length)) {
			st_fail(R, "%s: record seq %llu at %#llx+%u: old bytes do not match what the log said before (chain broken)",
				what, (unsigned long long)r.seq,
				(unsigned long long)r.offset, r.length);
			return -1;
		}
		memcpy(S->logimg[p] + o, r.new, r.length);
		R->st.records++;
		*consumed = pos;
	}
	*consumed = pos;
	if (n < 0) {
		/* A partial record at the very end is a torn tail (left for later). */
		if (cm_rec_torn(buf, len, pos))
			return 1;
		st_fail(R, "%s: bad record at byte %zu of the new part: %s", what, pos, why);
		return -1;
	}
	return 0;
}

static uint8_t *st_read_file(const char *path, uint64_t from, size_t *len)
{
	size_t all;
	uint8_t *b = cm_slurp(path, &all);

	if (!b)
		return NULL;
	if (from > all)
		from = all;
	memmove(b, b + from, all - from);
	*len = all - from;
	return b;
}

static int st_check_header(struct st_run *R, int s, const uint8_t *b, size_t len,
			   const char *what)
{
	const struct cowmap_log_header *h = (const void *)b;
	uint32_t hl;

	if (len < sizeof(*h) || memcmp(h->magic, COWMAP_LOG_MAGIC, 8)) {
		st_fail(R, "%s: no log header (%zu bytes)", what, len);
		return -1;
	}
	hl = le32toh(h->header_len);
	if (hl > len || hl % 8 ||
	    cm_crc32c_skip(b, hl, offsetof(struct cowmap_log_header, crc)) !=
	    le32toh(h->crc) || le64toh(h->session_id) != R->s[s].id) {
		st_fail(R, "%s: bad log header (len %u, session %llu)", what, hl,
			(unsigned long long)le64toh(h->session_id));
		return -1;
	}
	return hl;
}

/* Consume what the bound log of @s gained. */
int st_consume_log(struct st_run *R, int s)
{
	struct st_sess *S = &R->s[s];
	size_t len, used = 0;
	uint8_t *b = st_read_file(S->log, S->log_pos, &len);
	int r;

	if (!b) {
		st_fail(R, "cannot read %s", S->log);
		return -1;
	}
	if (!S->log_pos) {
		r = st_check_header(R, s, b, len, S->log);
		if (r < 0) {
			free(b);
			return -1;
		}
		S->log_pos = r;
		memmove(b, b + r, len - r);
		len -= r;
	}
	r = st_apply_records(R, s, b, len, &S->log_seq, &used, S->log);
	S->log_pos += used;
	free(b);
	return r;
}

int st_consume_fdlog(struct st_run *R, int s, const char *path, int may_tear)
{
	uint64_t seq = 0;
	size_t len, used;
	uint8_t *b = st_read_file(path, 0, &len);
	int r;

	if (!b) {
		st_fail(R, "cannot read %s", path);
		return -1;
	}
	r = st_check_header(R, s, b, len, path);
	if (r >= 0) {
		r = st_apply_records(R, s, b + r, len - r, &seq, &used, path);
		if (r > 0 && !may_tear) {
			st_fail(R, "%s: torn tail after a drain that returned", path);
			r = -1;
		}
	}
	free(b);
	unlink(path);
	return r < 0 ? -1 : 0;
}

/* After a quiet drain: the logs must say what every private page holds. */
void st_check_logimg(struct st_run *R, int s, const char *when)
{
	struct st_sess *S = &R->s[s];
	uint64_t p;

	for (p = 0; p < ST_CAP_PAGES; p++) {
		if (!S->priv[p])
			continue;
		if (!S->logimg[p] || memcmp(S->logimg[p], S->priv[p], PG)) {
			size_t i = 0;

			while (S->logimg[p] && i < PG && S->logimg[p][i] == S->priv[p][i])
				i++;
			st_fail(R, "%s: session %d page %llu: the drained logs do not reproduce it (first difference at byte %zu)",
				when, s, (unsigned long long)p, i);
			return;
		}
	}
}

/* ------------------------------------------------------------------------
 * Checks run by the controller on P0's session fds
 */

static void st_check_info(struct st_run *R, int s)
{
	struct st_sess *S = &R->s[s];
	struct cowmap_info in;
	uint64_t priv = 0, und = 0, p;
	int err = cm_info(S->fd, &in);

	R->st.checks++;
	if (err) {
		st_fail(R, "INFO of session %d: %s", s, strerror(-err));
		return;
	}
	for (p = 0; p < ST_CAP_PAGES; p++) {
		priv += !!S->priv[p];
		und += S->priv[p] && S->und[p];
	}
	st_trace(R, "info s%d: priv %llu cows %llu und %llu mapped %llu cur_size %llu",
		 s, (unsigned long long)in.private_pages,
		 (unsigned long long)in.cow_faults,
		 (unsigned long long)in.undrained_pages,
		 (unsigned long long)in.mapped_bytes,
		 (unsigned long long)in.cur_size);
	if (!S->und_unsure && in.undrained_pages != und) {
		char l[200] = "";
		size_t o = 0;

		for (p = 0; p < ST_CAP_PAGES && o < sizeof(l) - 8; p++)
			if (S->priv[p] && S->und[p])
				o += snprintf(l + o, sizeof(l) - o, " %llu", (unsigned long long)p);
		st_trace(R, "  model's undrained pages of s%d:%s", s, l);
	}
	if (in.private_pages != priv || in.cow_faults != S->cows ||
	    in.mapped_bytes != st_mapped_bytes(R, s) || in.cur_size != R->size ||
	    in.id != S->id || (!S->und_unsure && in.undrained_pages != und))
		st_fail(R, "INFO of session %d: private_pages %llu (model %llu), cow_faults %llu (%llu), mapped_bytes %llu (%llu), cur_size %llu (%llu), undrained %llu (%llu%s)",
			s, (unsigned long long)in.private_pages, (unsigned long long)priv,
			(unsigned long long)in.cow_faults, (unsigned long long)S->cows,
			(unsigned long long)in.mapped_bytes,
			(unsigned long long)st_mapped_bytes(R, s),
			(unsigned long long)in.cur_size, (unsigned long long)R->size,
			(unsigned long long)in.undrained_pages, (unsigned long long)und,
			S->und_unsure ? ", unsure" : "");
}

static void st_check_events(struct st_run *R, int s)
{
	struct st_sess *S = &R->s[s];
	struct cowmap_event ev[64];
	uint64_t cows = 0;
	int n, i;

	R->st.checks++;
	cm_set_nonblock(S->fd, true);
	for (;;) {
		n = cm_events(S->fd, ev, 64);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			st_fail(R, "read events of session %d: %s", s, strerror(-n));
			return;
		}
		for (i = 0; i < n; i++) {
			if (ev[i].type == COWMAP_EVENT_LOST) {
				S->ev_seq += ev[i].count;
				cows += ev[i].count;
				continue;
			}
			if (ev[i].type != COWMAP_EVENT_COW || ev[i].seq != S->ev_seq + 1 ||
			    ev[i].offset % PG || ev[i].offset >= PGS(ST_CAP_PAGES)) {
				st_fail(R, "session %d: event type %u seq %llu offset %#llx (expected COW seq %llu)",
					s, ev[i].type, (unsigned long long)ev[i].seq,
					(unsigned long long)ev[i].offset,
					(unsigned long long)S->ev_seq + 1);
				return;
			}
			S->ev_seq = ev[i].seq;
			cows++;
		}
	}
	if (S->ev_cows + cows != S->cows)
		st_fail(R, "session %d: %llu COW events (and lost) since the last read, the model made %llu copies",
			s, (unsigned long long)cows,
			(unsigned long long)(S->cows - S->ev_cows));
	S->ev_cows += cows;
}

/* DIFF must say exactly what the logs miss. */
static void st_check_diff(struct st_run *R, int s)
{
	struct st_sess *S = &R->s[s];
	uint8_t *buf = NULL, *img[ST_CAP_PAGES] = { 0 };
	size_t used = 0, pos = 0;
	uint32_t recs;
	struct cm_rec r;
	char why[64];
	uint64_t p;
	int n;

	R->st.checks++;
	n = cm_diff_all(S->fd, 0, 0, COWMAP_DIFF_MIN_BUF + st_rnd(R, 3) * PG, &buf,
			&used, &recs);
	if (n < 0) {
		st_fail(R, "DIFF of session %d: %s", s, strerror(-n));
		return;
	}
	for (p = 0; p < ST_CAP_PAGES; p++) {
		if (S->logimg[p]) {
			img[p] = malloc(PG);
			memcpy(img[p], S->logimg[p], PG);
		}
	}
	while ((n = cm_rec_next(buf, used, &pos, &r, why)) == 1) {
		p = r.offset / PG;
		if (p >= ST_CAP_PAGES || !img[p] || !S->priv[p] ||
		    r.offset % PG + r.length > PG ||
		    memcmp(img[p] + r.offset % PG, r.old, r.length)) {
			st_fail(R, "DIFF of session %d: record at %#llx+%u does not follow the drained logs",
				s, (unsigned long long)r.offset, r.length);
			goto out;
		}
		memcpy(img[p] + r.offset % PG, r.new, r.length);
	}
	if (n < 0) {
		st_fail(R, "DIFF of session %d: %s", s, why);
		goto out;
	}
	for (p = 0; p < ST_CAP_PAGES; p++) {
		if (S->priv[p] && (!img[p] || memcmp(img[p], S->priv[p], PG))) {
			st_fail(R, "DIFF of session %d: logs + diff do not give page %llu",
				s, (unsigned long long)p);
			break;
		}
	}
out:
	for (p = 0; p < ST_CAP_PAGES; p++)
		free(img[p]);
	free(buf);
}

void st_model_cow(struct st_run *R, int s, uint64_t p)
{
	struct st_sess *S = &R->s[s];

	S->priv[p] = malloc(PG);
	memcpy(S->priv[p], R->file + p * PG, PG);
	free(S->logimg[p]);
	S->logimg[p] = malloc(PG);
	memcpy(S->logimg[p], S->priv[p], PG);
	S->cows++;
	R->st.cows++;
}

void st_drop_priv(struct st_run *R, int s, uint64_t p)
{
	struct st_sess *S = &R->s[s];

	free(S->priv[p]);
	S->priv[p] = NULL;
	free(S->logimg[p]);
	S->logimg[p] = NULL;
	S->und[p] = 0;
}

/*
 * An munmap the model itself needs (a tail or a child's copy it has no slot
 * to track): made with injection paused, so that it cannot fail.
 */
int st_model_unmap(struct st_run *R, int actor, uint64_t addr, uint64_t len)
{
	struct st_cmd *c;
	int ret = 0;

	if (R->cfg.inject_off)
		R->cfg.inject_off(R->cfg.inject_arg);
	c = st_cmd(actor);
	c->op = OP_UNMAP;
	c->addr = addr;
	c->len = len;
	if (!st_run1(R, actor))
		ret = -1;	/* the actor is gone; st_run1() said why */
	else if (c->err)
		st_fail(R, "model's own munmap failed: %s", strerror(c->err));
	if (R->cfg.inject_on)
		R->cfg.inject_on(R->cfg.inject_arg);
	return ret;
}

/* An mmap/munmap/mremap failed under fault injection: drop the mapping. */
void st_cleanup_map(struct st_run *R, int m, uint64_t extra_addr, uint64_t extra_len)
{
	struct st_map *M = &R->map[m];
	int a = R->proc[M->proc].actors[0];

	if (st_model_unmap(R, a, M->addr, PGS(M->npages)))
		return;
	if (extra_len)
		st_model_unmap(R, a, extra_addr, extra_len);
	M->alive = 0;
	R->st.cleanups++;
}


/* An errno the kernel may give when an allocation was made to fail. */
int st_injected(struct st_run *R, int err)
{
	if (!R->cfg.inject)
		return 0;
	/* ENFILE: socket() when sock_alloc() fails (net/socket.c). */
	if (err == ENOMEM || err == EAGAIN || err == EINTR || err == ENOBUFS ||
	    err == EIO || err == ETIMEDOUT || err == ENFILE) {
		R->st.enomem++;
		return 1;
	}
	return 0;
}

/* Read every mapped page of every process and compare with the model. */
static void st_check_all(struct st_run *R)
{
	int i;

	for (i = 0; i < ST_MAX_MAPS && !R->failed; i++) {
		struct st_map *M = &R->map[i];
		uint64_t k;

		if (!M->alive)
			continue;
		for (k = 0; k < M->npages && !R->failed; k++) {
			struct st_pending pd = {
				.op = OP_READ, .proc = M->proc, .map = i, .sess = M->sess,
				.page = M->pgoff + k,
			};

			pd.actor = R->proc[M->proc].actors[0];
			snprintf(pd.desc, sizeof(pd.desc), "check s%d page %llu via m%d",
				 M->sess, (unsigned long long)pd.page, i);
			{
				struct st_cmd *c = st_cmd(pd.actor);

				c->op = OP_READ;
				c->addr = M->addr + PGS(k);
				if (!st_run1(R, pd.actor))
					return;
			}
			st_complete(R, &pd, -1, 0);
			R->st.ops--;
		}
	}
	R->st.checks++;
}

static double st_elapsed(struct st_run *R)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - R->t0.tv_sec) + (t.tv_nsec - R->t0.tv_nsec) / 1e9;
}

static void st_quiet_checks(struct st_run *R)
{
	int s;

	for (s = 0; s < R->cfg.nsess && !R->failed; s++) {
		st_check_diff(R, s);
		if (!R->failed)
			st_check_info(R, s);
		if (!R->failed)
			st_check_events(R, s);
	}
}

/* ------------------------------------------------------------------------
 * The run
 */

static int st_setup(struct st_run *R)
{
	int i, s, a, fd;
	pid_t pid;
	struct sigaction sa = { 0 };

	clock_gettime(CLOCK_MONOTONIC, &R->t0);
	R->rng = R->cfg.seed ? R->cfg.seed : 1;
	for (a = 0; a < ST_MAX_ACTORS; a++)
		R->actor_proc[a] = -1;
	if (!R->cfg.batch_max)
		R->cfg.batch_max = 3;
	if (!R->cfg.max_procs)
		R->cfg.max_procs = 6;

	st_sh = mmap(NULL, sizeof(*st_sh), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st_sh == MAP_FAILED)
		return -errno;
	memset(st_sh, 0, sizeof(*st_sh));
	for (a = 0; a < ST_MAX_ACTORS; a++) {
		sem_init(&st_sh->slot[a].go, 1, 0);
		sem_init(&st_sh->slot[a].done, 1, 0);
	}
	snprintf(st_sh->dir, sizeof(st_sh->dir), "%s", R->cfg.dir);
	snprintf(st_sh->file, sizeof(st_sh->file), "%s/backing", R->cfg.dir);
	st_sh->p0 = getpid();
	st_sh->inject = R->cfg.inject;
	st_sh->outsider = ST_P0_WORKERS;
	st_sh->run_id = R->cfg.seed ^ ((uint64_t)getpid() << 32) ^ cm_now_ns();
	if (posix_memalign(&st_obuf, PG, 2 * PG))
		return -ENOMEM;

	sa.sa_sigaction = st_sig;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);

	/* The backing file: 48 pages of pattern. */
	R->size = PGS(ST_CAP_PAGES * 3 / 4);
	cm_fill(R->cfg.seed + 7, R->file, R->size);
	fd = cm_create(st_sh->file, R->file, R->size);
	if (fd < 0)
		return -errno;
	close(fd);

	/* P0: the controller and its worker threads. */
	i = st_new_proc(R);
	R->proc[i].pid = getpid();
	if (st_proc_init(0))
		return -errno;
	st_sh->slot[1].sock = st_sh->slot[0].sock;
	st_sh->slot[1].socklen = st_sh->slot[0].socklen;
	for (a = 0; a < ST_P0_WORKERS; a++) {
		R->actor_proc[a] = i;
		R->proc[i].actors[a] = a;
		R->proc[i].nactors++;
		st_sh->slot[a].pid = getpid();
	}

	/* The outsider and a fresh process, forked before any session exists. */
	for (a = ST_P0_WORKERS; a < ST_P0_WORKERS + 2; a++) {
		int np = st_new_proc(R);

		R->actor_proc[a] = np;
		R->proc[np].actors[0] = a;
		R->proc[np].nactors = 1;
		pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0) {
			st_sh->slot[a].pid = getpid();
			if (st_proc_init(a))
				_exit(98);
			if (a == ST_P0_WORKERS) {
				st_ofd = open(st_sh->file, O_RDWR | O_CLOEXEC);
				st_odfd = open(st_sh->file, O_RDWR | O_DIRECT | O_CLOEXEC);
				st_actor_loop(a);
			} else {
				st_actor_loop(a);
			}
			_exit(0);
		}
		R->proc[np].pid = pid;
	}
	R->outsider_actor = ST_P0_WORKERS;
	st_sh->outsider = ST_P0_WORKERS;
	R->fresh_actor = ST_P0_WORKERS + 1;
	R->proc[R->actor_proc[R->outsider_actor]].outsider = 1;

	/* Sessions, each with a bound log; session 0 has a tiny ring. */
	for (s = 0; s < R->cfg.nsess; s++) {
		struct st_sess *S = &R->s[s];
		struct cowmap_bind b;
		int bfd, lfd;

		snprintf(S->log, sizeof(S->log), "%s/sess%d.log", R->cfg.dir, s);
		bfd = open(st_sh->file, O_RDONLY | O_CLOEXEC);
		lfd = open(S->log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		S->fd = cm_open_dev();
		if (bfd < 0 || lfd < 0 || S->fd < 0)
			return -errno;
		S->ring = s == 0 ? COWMAP_RING_MIN : 0;
		i = cm_bind(S->fd, bfd, lfd, COWMAP_BIND_LOG, S->ring, &b);
		close(bfd);
		close(lfd);
		if (i)
			return i;
		S->id = b.id;
		R->proc[0].fd[s] = S->fd;
	}

	/* Start P0's workers last (they inherit nothing of the above). */
	for (a = 0; a < ST_P0_WORKERS; a++)
		if (pthread_create(&R->thr[a], NULL, st_thread_main, (void *)(intptr_t)a))
			return -EAGAIN;
	return 0;
}

/* Stop everything; then the final drains must complete every log. */
static void st_teardown(struct st_run *R)
{
	int i, s, a;
	int sk;
	struct nlu_family f;

	if (R->cfg.inject_off)
		R->cfg.inject_off(R->cfg.inject_arg);
	for (a = 0; a < ST_MAX_ACTORS; a++) {
		if (R->actor_proc[a] < 0)
			continue;
		st_cmd(a)->op = OP_QUIT;
		st_post(R, a);
		st_wait(R, a);
	}
	for (a = 0; a < ST_P0_WORKERS; a++)
		pthread_join(R->thr[a], NULL);
	/* Whoever did not quit (a failed run) is killed: nothing may linger. */
	for (i = 1; i < ST_MAX_PROCS; i++) {
		if (R->proc[i].alive) {
			int tries;

			for (tries = 0; tries < 100; tries++) {
				if (waitpid(R->proc[i].pid, NULL, WNOHANG) != 0)
					break;
				usleep(20000);
			}
			if (tries == 100) {
				fprintf(stderr, "# proc %d (pid %d) did not quit: killed\n", i,
					R->proc[i].pid);
				kill(R->proc[i].pid, SIGKILL);
				waitpid(R->proc[i].pid, NULL, 0);
			}
		}
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	for (i = 0; i < ST_MAX_MAPS; i++)
		if (R->map[i].alive && R->map[i].proc == 0)
			munmap((void *)(uintptr_t)R->map[i].addr, PGS(R->map[i].npages));
	for (s = 0; s < R->cfg.nsess; s++)
		if (R->proc[0].fd[s] >= 0)
			close(R->proc[0].fd[s]);

	/* Wait until the kernel released every session (final drain done). */
	sk = nlu_socket();
	if (sk >= 0 && !nlu_resolve(sk, &f)) {
		for (s = 0; s < R->cfg.nsess; s++) {
			int tries = 0;

			while (nlu_session_exists(sk, &f, R->s[s].id) == 1 && tries++ < 300)
				usleep(50000);
			if (tries > 300 && !R->failed)
				st_fail(R, "session %d (id %llu) still exists 15 s after its last user went away",
					s, (unsigned long long)R->s[s].id);
		}
	}
	if (sk >= 0)
		close(sk);
	for (s = 0; s < R->cfg.nsess && !R->failed; s++) {
		if (st_consume_log(R, s)) {
			st_fail(R, "%s: torn or bad tail after the final drain", R->s[s].log);
			break;
		}
		st_check_logimg(R, s, "final drain on close");
		if (!R->failed) {
			struct stat sb;

			/* Nothing after the last whole record. */
			if (!stat(R->s[s].log, &sb) && (uint64_t)sb.st_size != R->s[s].log_pos)
				st_fail(R, "%s: %llu bytes after the last record", R->s[s].log,
					(unsigned long long)(sb.st_size - R->s[s].log_pos));
		}
	}
	for (s = 0; s < R->cfg.nsess; s++) {
		for (i = 0; i < ST_CAP_PAGES; i++) {
			free(R->s[s].priv[i]);
			free(R->s[s].logimg[i]);
		}
	}
	R->st.kernel_segv = st_sh->kernel_segv;
	munmap(st_sh, sizeof(*st_sh));
	st_sh = NULL;
}

/* Which sessions a drain in the batch races a write (or a GUP read) of. */
static int st_drains_racing(struct st_pending *pd, int n)
{
	int i, j, racing = 0;

	for (i = 0; i < n; i++)
		if (pd[i].op == OP_DRAIN)
			for (j = 0; j < n; j++)
				if (j != i && pd[j].sess == pd[i].sess &&
				    (pd[j].op == OP_WRITE ||
				     (pd[j].op == OP_READ && pd[j].expect_sig)))
					racing |= 1 << pd[i].sess;
	return racing;
}

/* VMAs are tracked exactly: check after every batch that changes them. */
static void st_check_mapped(struct st_run *R, struct st_pending *pd, int n)
{
	int i, j;

	for (i = 0; i < n && !R->failed; i++) {
		if (!pd[i].structural && pd[i].op != OP_FORK)
			continue;
		for (j = 0; j < R->cfg.nsess && !R->failed; j++) {
			struct cowmap_info in;

			if (!cm_info(R->s[j].fd, &in) &&
			    in.mapped_bytes != st_mapped_bytes(R, j))
				st_fail(R, "after batch %ld: session %d mapped_bytes %llu, model %llu",
					R->st.batches, j,
					(unsigned long long)in.mapped_bytes,
					(unsigned long long)st_mapped_bytes(R, j));
		}
		break;
	}
}

/*
 * Draw up to @want operations that may run at the same time (on different
 * actors, with commuting effects); returns how many.
 */
static int st_draw_batch(struct st_run *R, struct st_pending *pd, int want)
{
	int busy[ST_MAX_ACTORS] = { 0 };
	int n = 0, tries = 0, j;

	while (n < want && tries++ < 12) {
		if (st_choose(R, &pd[n], busy))
			continue;
		for (j = 0; j < n; j++)
			if (!st_compatible(&pd[j], &pd[n]))
				break;
		if (j < n)
			continue;
		busy[pd[n].actor] = 1;
		n++;
	}
	return n;
}

/* One batch: draw, issue, wait, then update the model and check. */
static void st_batch(struct st_run *R, long *next_check)
{
	struct st_pending pd[ST_BATCH_MAX];
	int newactor[ST_BATCH_MAX];
	int n, i, racing;

	n = st_draw_batch(R, pd, 1 + st_rnd(R, R->cfg.batch_max));
	if (!n)
		return;
	R->st.batches++;
	R->racing_ok = 0;
	R->batch_ops = n;
	racing = st_drains_racing(pd, n);
	for (i = 0; i < n; i++) {
		newactor[i] = -1;
		st_issue(R, &pd[i], &newactor[i]);
	}
	for (i = 0; i < n; i++)
		st_wait(R, pd[i].actor);
	if (R->failed)
		return;
	/* Model updates: everything but drains first, then the drains. */
	for (i = 0; i < n && !R->failed; i++)
		if (pd[i].op != OP_DRAIN)
			st_complete(R, &pd[i], newactor[i], racing);
	for (i = 0; i < n && !R->failed; i++)
		if (pd[i].op == OP_DRAIN)
			st_complete(R, &pd[i], newactor[i], racing);
	st_check_mapped(R, pd, n);
	if (R->st.ops >= *next_check && !R->failed) {
		*next_check = R->st.ops + 50 + st_rnd(R, 100);
		if (R->cfg.inject_off)
			R->cfg.inject_off(R->cfg.inject_arg);
		st_quiet_checks(R);
		if (st_rnd(R, 4) == 0)
			st_check_all(R);
		if (R->cfg.inject_on)
			R->cfg.inject_on(R->cfg.inject_arg);
	}
}

/* Returns 0 if the run matched the model all along. */
static int st_run_model(struct st_run *R)
{
	long next_check = 50;
	int err;

	/* The model resyncs a failed copy from INFO.cow_faults: see OP_WRITE. */
	if (R->cfg.inject && R->cfg.batch_max != 1) {
		snprintf(R->why, sizeof(R->why),
			 "fault injection needs batch_max = 1, not %d", R->cfg.batch_max);
		R->failed = 1;
		return -1;
	}
	err = st_setup(R);
	if (err) {
		snprintf(R->why, sizeof(R->why), "setup: %s", strerror(-err));
		R->failed = 1;
		return -1;
	}
	if (R->cfg.inject_on)
		R->cfg.inject_on(R->cfg.inject_arg);
	while (!R->failed) {
		if (R->cfg.ops && R->st.ops >= R->cfg.ops)
			break;
		if (R->cfg.seconds && st_elapsed(R) >= R->cfg.seconds)
			break;
		st_batch(R, &next_check);
	}
	if (R->cfg.inject_off)
		R->cfg.inject_off(R->cfg.inject_arg);
	if (!R->failed) {
		st_trace(R, "final checks");
		st_check_all(R);
		st_quiet_checks(R);
	}
	st_teardown(R);
	return R->failed ? -1 : 0;
}

int st_run(const struct st_cfg *cfg, struct st_result *res)
{
	struct st_run *R = calloc(1, sizeof(*R));

	memset(res, 0, sizeof(*res));
	if (!R) {
		snprintf(res->why, sizeof(res->why), "no memory for the model");
		res->failed = 1;
		return -1;
	}
	R->cfg = *cfg;
	st_run_model(R);
	res->st = R->st;
	res->failed = R->failed;
	snprintf(res->why, sizeof(res->why), "%s", R->why);
	res->seconds = st_elapsed(R);
	free(R);
	return res->failed ? -1 : 0;
}

void st_print_stats(const struct st_cfg *cfg, const struct st_result *res,
		    const char *tag)
{
	const struct st_stats *t = &res->st;

	printf("# %s: seed %llu: %ld ops in %ld batches, %.1f s: %ld reads, %ld writes, %ld COWs, %ld SIGBUS, %ld SIGSEGV, %ld drains (%ld records), %ld discards, %ld forks, %ld exits, %ld fd passes, %ld maps, %ld unmaps, %ld mremaps, %ld madvise, outsider %ld writes %ld O_DIRECT %ld truncates %ld punches; %ld checks, %ld injected-failure outcomes, %ld cleanups; %ld mismatches\n",
	       tag, (unsigned long long)cfg->seed, t->ops, t->batches, res->seconds,
	       t->reads, t->writes, t->cows, t->sigbus, t->sigsegv, t->drains,
	       t->records, t->discards, t->forks, t->exits, t->fdpass, t->maps,
	       t->unmaps, t->mremaps, t->madvs, t->owrites, t->odirects, t->truncs,
	       t->punches, t->checks, t->enomem, t->cleanups, t->mismatches);
	printf("# %s: reads by mode (plain, /proc/self/mem, O_DIRECT): %ld %ld %ld; writes: %ld %ld %ld\n",
	       tag, t->rmodes[0], t->rmodes[1], t->rmodes[2], t->wmodes[0],
	       t->wmodes[1], t->wmodes[2]);
	fflush(stdout);
}

/*
 * Did the run do enough to mean something?  At least @min_ops operations
 * (all of cfg.ops if fewer), and every kind of operation, READ and WRITE
 * by every access mode (O_DIRECT where the filesystem has it; WRITE by
 * plain stores only under fault injection), once the run is long enough
 * that missing it is improbable: each kind's rate (per 10000 operations,
 * under the lowest seen in 17 bounded runs of 2000 operations on 6.1 and
 * 6.12) must predict 12 or more (a Poisson count of mean 12 is 0 with
 * probability 6e-6).  A default run of 2000 thus needs all but forks,
 * exits, fd passes and truncates, which longer runs need too.  Returns
 * the number of shortfalls, listed in @why.
 */
int st_coverage(const struct st_cfg *cfg, const struct st_result *res,
		long min_ops, char *why, size_t len)
{
	const struct st_stats *t = &res->st;
	const struct {
		const char *name;
		long n;
		long per_10k;
		int needed;
	} k[] = {
		{ "reads", t->reads, 4000, 1 }, { "writes", t->writes, 3000, 1 },
		{ "COWs", t->cows, 600, 1 }, { "drains", t->drains, 250, 1 },
		{ "drained records", t->records, 1400, 1 },
		{ "discards", t->discards, 140, 1 }, { "forks", t->forks, 50, 1 },
		{ "exits", t->exits, 35, 1 }, { "fd passes", t->fdpass, 25, 1 },
		{ "maps", t->maps, 300, 1 }, { "unmaps", t->unmaps, 280, 1 },
		{ "mremaps", t->mremaps, 80, 1 }, { "madvises", t->madvs, 160, 1 },
		{ "outsider writes", t->owrites, 270, 1 },
		{ "outsider O_DIRECT writes", t->odirects, 90, cfg->fs_odirect },
		{ "truncates", t->truncs, 30, 1 }, { "punches", t->punches, 90, 1 },
		{ "plain reads", t->rmodes[0], 4000, 1 },
		{ "/proc/self/mem reads", t->rmodes[1], 120, 1 },
		{ "O_DIRECT reads", t->rmodes[2], 110, cfg->fs_odirect },
		{ "plain writes", t->wmodes[0], 2700, 1 },
		{ "/proc/self/mem writes", t->wmodes[1], 100, !cfg->inject },
		{ "O_DIRECT writes", t->wmodes[2], 90,
		  cfg->fs_odirect && !cfg->inject },
	};
	size_t used = 0;
	int short_of = 0;

	if (cfg->ops && cfg->ops < min_ops)
		min_ops = cfg->ops;
	why[0] = 0;
	if (t->ops < min_ops) {
		used += snprintf(why + used, len - used, " %ld operations (at least %ld wanted);",
				 t->ops, min_ops);
		short_of++;
	}
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		if (!k[i].needed || k[i].n || t->ops * k[i].per_10k < 12 * 10000)
			continue;
		if (used < len)
			used += snprintf(why + used, len - used, " no %s;", k[i].name);
		short_of++;
	}
	return short_of;
}

uint64_t st_seed(void)
{
	const char *e = getenv("COWMAP_SEED");

	if (e && *e)
		return strtoull(e, NULL, 0);
	return cm_now_ns() % 1000000007ULL;
}

long st_env_long(const char *name, long def)
{
	const char *e = getenv(name);

	return e && *e ? strtol(e, NULL, 0) : def;
}
