// SPDX-License-Identifier: GPL-2.0
/*
 * The stress engine's operations: for each, how the controller draws it
 * (choose), hands it to an actor (issue), how the actor runs it (exec, in
 * stress_actor.c) and how the controller checks its result and updates
 * the model (complete).  st_ops[] lists them in the order of the draw.
 */
#include "stress_int.h"

/* ------------------------------------------------------------------------
 * Picking the actors and objects of an operation; batches
 */

static int st_pick_actor(struct st_run *R, int proc)
{
	struct st_proc *P = &R->proc[proc];

	return P->actors[st_rnd(R, P->nactors)];
}

/* A random live process (not the outsider); -1 if none. */
static int st_pick_proc(struct st_run *R, int need_fd_sess)
{
	int cand[ST_MAX_PROCS], n = 0, i;

	for (i = 0; i < ST_MAX_PROCS; i++) {
		if (!R->proc[i].alive || R->proc[i].outsider)
			continue;
		if (need_fd_sess >= 0 && R->proc[i].fd[need_fd_sess] < 0)
			continue;
		cand[n++] = i;
	}
	return n ? cand[st_rnd(R, n)] : -1;
}

static int st_pick_map(struct st_run *R)
{
	int cand[ST_MAX_MAPS], n = 0, i;

	for (i = 0; i < ST_MAX_MAPS; i++)
		if (R->map[i].alive)
			cand[n++] = i;
	return n ? cand[st_rnd(R, n)] : -1;
}

static int st_overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 < b1 && b0 < a1;
}

/* May @b run in the same batch as @a? */
int st_compatible(struct st_pending *a, struct st_pending *b)
{
	if (a->actor == b->actor)
		return 0;
	/* A process receiving an fd takes part in nothing else. */
	if (a->op == OP_SEND && (b->proc == (int)a->p0 ||
				 (b->op == OP_SEND && b->p0 == a->p0)))
		return 0;
	if (b->op == OP_SEND && a->proc == (int)b->p0)
		return 0;
	if (a->size_change || b->size_change)
		return 0;
	if (a->proc == b->proc && (a->structural || b->structural))
		return 0;
	/* Anything on pages the outsider is changing. */
	if (st_ops[a->op].outsider || st_ops[b->op].outsider) {
		struct st_pending *o = st_ops[a->op].outsider ? a : b;
		struct st_pending *x = o == a ? b : a;

		if (st_ops[x->op].outsider)
			return 0;
		if ((x->op == OP_READ || x->op == OP_WRITE) &&
		    st_overlap(o->p0, o->p1, x->page, x->page + 1))
			return 0;
		return 1;
	}
	if (a->sess != b->sess || a->sess < 0)
		return 1;
	/* Same session. */
	if (a->op == OP_DRAIN || b->op == OP_DRAIN) {
		struct st_pending *x = a->op == OP_DRAIN ? b : a;

		return x->op == OP_READ || x->op == OP_WRITE || x->op == OP_MADV;
	}
	if (a->op == OP_DISCARD || b->op == OP_DISCARD) {
		struct st_pending *d = a->op == OP_DISCARD ? a : b;
		struct st_pending *x = d == a ? b : a;

		if (x->op == OP_DISCARD)
			return 0;
		if (x->op == OP_READ || x->op == OP_WRITE)
			return !st_overlap(d->p0, d->p1, x->page, x->page + 1);
		return 1;
	}
	if ((a->op == OP_READ || a->op == OP_WRITE) &&
	    (b->op == OP_READ || b->op == OP_WRITE) && a->page == b->page) {
		if (a->op == OP_READ && b->op == OP_READ)
			return 1;
		if (a->op == OP_WRITE && b->op == OP_WRITE &&
		    a->expect_sig == b->expect_sig &&
		    (a->boff + a->blen <= b->boff || b->boff + b->blen <= a->boff))
			return 1;	/* disjoint bytes of one page */
		return 0;
	}
	return 1;
}

static const char *st_sig_name(int sig)
{
	return sig == SIGBUS ? "SIGBUS" : sig == SIGSEGV ? "SIGSEGV" : sig ? "signal" : "ok";
}

/* ------------------------------------------------------------------------
 * Choosing (st_ops[].choose): fill @pd, or return -1 if the operation does
 * not fit now.  The draws from R->rng are the seed's: keep their order.
 */

static int st_choose_map(struct st_run *R, struct st_pending *pd)
{
	int proc = st_pick_proc(R, -1), s = st_rnd(R, R->cfg.nsess);

	if (proc < 0 || R->proc[proc].fd[s] < 0 || st_new_map(R) < 0)
		return -1;
	pd->proc = proc;
	pd->sess = s;
	pd->structural = 1;
	pd->p0 = st_rnd(R, ST_CAP_PAGES);
	pd->p1 = pd->p0 + 1 + st_rnd(R, ST_MAP_MAX);
	if (pd->p1 > ST_CAP_PAGES)
		pd->p1 = ST_CAP_PAGES;
	pd->expect_sig = st_rnd(R, 8) ? PROT_READ | PROT_WRITE : PROT_READ;
	return 0;
}

/* An operation on a random mapping: its process and session. */
static struct st_map *st_choose_on_map(struct st_run *R, struct st_pending *pd)
{
	int m = st_pick_map(R);

	if (m < 0)
		return NULL;
	pd->proc = R->map[m].proc;
	pd->map = m;
	pd->sess = R->map[m].sess;
	return &R->map[m];
}

static int st_choose_unmap(struct st_run *R, struct st_pending *pd)
{
	struct st_map *M = st_choose_on_map(R, pd);

	if (!M)
		return -1;
	pd->structural = 1;
	switch (st_rnd(R, 4)) {
	case 0:
		pd->p0 = 0;
		pd->p1 = M->npages;
		break;
	case 1:
		pd->p0 = 0;
		pd->p1 = 1 + st_rnd(R, M->npages);
		break;
	case 2:
		pd->p0 = st_rnd(R, M->npages);
		pd->p1 = M->npages;
		break;
	default:
		pd->p0 = st_rnd(R, M->npages);
		pd->p1 = pd->p0 + 1 + st_rnd(R, M->npages - pd->p0);
	}
	return 0;
}

/*
 * A READ or WRITE: a page of a random mapping, and one time in @one_in an
 * access through /proc/self/mem (mode 1) or O_DIRECT (mode 2, where the
 * filesystem has it) instead of a plain one.
 */
static int st_choose_access(struct st_run *R, struct st_pending *pd, int one_in)
{
	struct st_map *M = st_choose_on_map(R, pd);

	if (!M)
		return -1;
	pd->page = M->pgoff + st_rnd(R, M->npages);
	pd->expect_sig = st_rnd(R, one_in) == 0 ? 1 + st_rnd(R, R->cfg.fs_odirect ? 2 : 1) : 0;
	return 0;
}

static int st_choose_read(struct st_run *R, struct st_pending *pd)
{
	return st_choose_access(R, pd, 10);
}

static int st_choose_write(struct st_run *R, struct st_pending *pd)
{
	if (st_choose_access(R, pd, 12))
		return -1;
	if (R->cfg.inject)
		pd->expect_sig = 0;	/* a failed GUP write may land in part */
	if (pd->expect_sig == 2) {
		pd->boff = 0;
		pd->blen = PG;
	} else {
		pd->boff = st_rnd(R, PG);
		pd->blen = 1 + st_rnd(R, st_rnd(R, 4) ? 64 : PG - pd->boff);
		if (pd->boff + pd->blen > PG)
			pd->blen = PG - pd->boff;
	}
	return 0;
}

static int st_choose_fork(struct st_run *R, struct st_pending *pd)
{
	int proc = st_pick_proc(R, -1);

	if (proc < 0 || st_nprocs(R) >= R->cfg.max_procs)
		return -1;
	pd->proc = proc;
	pd->structural = 0;	/* races faults of its other threads */
	return 0;
}

static int st_choose_exit(struct st_run *R, struct st_pending *pd)
{
	int proc = st_pick_proc(R, -1);

	if (proc <= 0 || R->proc[proc].outsider || proc == R->actor_proc[R->fresh_actor])
		return -1;
	pd->proc = proc;
	pd->structural = 1;
	return 0;
}

static int st_choose_send(struct st_run *R, struct st_pending *pd)
{
	int s = st_rnd(R, R->cfg.nsess);
	int proc = st_pick_proc(R, s);
	int to = st_pick_proc(R, -1);

	if (proc < 0 || to < 0 || to == proc || R->proc[to].fd[s] >= 0)
		return -1;
	pd->proc = proc;
	pd->sess = s;
	pd->p0 = to;
	pd->structural = 1;
	return 0;
}

/* An operation on a session fd some process has: the process. */
static int st_choose_on_fd(struct st_run *R, struct st_pending *pd)
{
	int s = st_rnd(R, R->cfg.nsess);

	pd->sess = s;
	return st_pick_proc(R, s);
}

static int st_choose_close(struct st_run *R, struct st_pending *pd)
{
	pd->proc = st_choose_on_fd(R, pd);
	if (pd->proc <= 0)
		return -1;
	pd->structural = 1;
	return 0;
}

static int st_choose_discard(struct st_run *R, struct st_pending *pd)
{
	pd->proc = st_choose_on_fd(R, pd);
	if (pd->proc < 0)
		return -1;
	if (st_rnd(R, 4) == 0) {
		pd->p0 = 0;
		pd->p1 = ST_CAP_PAGES;
		pd->expect_sig = 1;	/* RANGE_ALL */
	} else {
		pd->p0 = st_rnd(R, ST_CAP_PAGES);
		pd->p1 = pd->p0 + 1 + st_rnd(R, 8);
		if (pd->p1 > ST_CAP_PAGES)
			pd->p1 = ST_CAP_PAGES;
	}
	return 0;
}

static int st_choose_drain(struct st_run *R, struct st_pending *pd)
{
	pd->proc = st_choose_on_fd(R, pd);
	if (pd->proc < 0)
		return -1;
	pd->expect_sig = st_rnd(R, 6) == 0 ? 1 : st_rnd(R, 6) == 0 ? 2 : 0;
	return 0;
}

static int st_choose_mremap(struct st_run *R, struct st_pending *pd)
{
	struct st_map *M = st_choose_on_map(R, pd);

	if (!M)
		return -1;
	pd->structural = 1;
	pd->expect_sig = st_rnd(R, 10);	/* 0-5 move, 6 congruent move, 7-8 shrink, 9 grow */
	if (pd->expect_sig >= 7 && pd->expect_sig <= 8 && M->npages < 2)
		pd->expect_sig = 0;
	return 0;
}

static int st_choose_madv(struct st_run *R, struct st_pending *pd)
{
	struct st_map *M = st_choose_on_map(R, pd);

	if (!M)
		return -1;
	pd->p0 = st_rnd(R, M->npages);
	pd->p1 = pd->p0 + 1 + st_rnd(R, M->npages - pd->p0);
	pd->expect_sig = st_rnd(R, 6);
	if (pd->expect_sig == 5) {
		/* Changes vm_flags: on part of it, it would split the VMA. */
		pd->p0 = 0;
		pd->p1 = M->npages;
	}
	return 0;
}

/*
 * The outsider's operations set the byte range they change: the offset in
 * pd->page, the length in pd->blen (0 for a truncate).
 */
static int st_set_range(struct st_pending *pd, uint64_t off, uint64_t len)
{
	if (off + len > PGS(ST_CAP_PAGES))
		len = PGS(ST_CAP_PAGES) - off;
	pd->page = off;
	pd->blen = len;
	return 0;
}

static int st_choose_owrite(struct st_run *R, struct st_pending *pd)
{
	uint64_t off = st_rnd(R, PGS(ST_CAP_PAGES));
	uint64_t len = 1 + st_rnd(R, st_rnd(R, 2) ? 100 : 2 * PG);

	return st_set_range(pd, off, len);
}

static int st_choose_odirect(struct st_run *R, struct st_pending *pd)
{
	uint64_t off, len;

	if (!R->cfg.fs_odirect)
		return -1;
	off = PGS(st_rnd(R, ST_CAP_PAGES));
	len = PG * (1 + st_rnd(R, 2));
	return st_set_range(pd, off, len);
}

static int st_choose_otrunc(struct st_run *R, struct st_pending *pd)
{
	uint64_t off;

	/* Mostly within the cap, biased towards larger sizes. */
	off = st_rnd(R, 3) ? PGS(ST_CAP_PAGES / 2) + st_rnd(R, PGS(ST_CAP_PAGES / 2) + 1) :
		st_rnd(R, PGS(ST_CAP_PAGES) + 1);
	if (st_rnd(R, 2))
		off &= ~(PG - 1);
	pd->page = off;
	pd->blen = 0;
	return 0;
}

static int st_choose_opunch(struct st_run *R, struct st_pending *pd)
{
	if (!R->size)
		return -1;
	pd->page = st_rnd(R, R->size);
	pd->blen = 1 + st_rnd(R, 3 * PG);
	return 0;
}

/* The operation whose share of a draw of @kind (per @outsider's table) it is. */
static int st_draw(int kind, int outsider)
{
	int op, sum = 0;

	for (op = OP_NONE + 1; op < OP_NR; op++) {
		if (st_ops[op].outsider != outsider || !st_ops[op].weight)
			continue;
		sum += st_ops[op].weight;
		if (kind < sum)
			return op;
	}
	return OP_NONE;
}

static int st_choose_outsider(struct st_run *R, struct st_pending *pd)
{
	uint64_t off, len;

	pd->proc = R->actor_proc[R->outsider_actor];
	pd->op = st_draw(st_rnd(R, 100), 1);
	if (st_ops[pd->op].choose(R, pd))
		return -1;
	off = pd->page;
	len = pd->blen;
	pd->p0 = off / PG;
	pd->p1 = len ? (off + len + PG - 1) / PG : ST_CAP_PAGES;
	pd->boff = 0;
	pd->size_change = pd->op == OP_OTRUNC ||
		((pd->op == OP_OWRITE || pd->op == OP_ODIRECT) && off + len > R->size);
	return 0;
}

/* Draw a new operation into @pd; returns 0, or -1 if none fits now. */
int st_choose(struct st_run *R, struct st_pending *pd, int *busy_actor)
{
	int kind = st_rnd(R, 1000), a;

	memset(pd, 0, sizeof(*pd));
	pd->map = -1;
	pd->sess = -1;
	pd->op = st_draw(kind, 0);
	if (pd->op == OP_NONE) {
		if (st_choose_outsider(R, pd))
			return -1;
	} else if (st_ops[pd->op].choose(R, pd)) {
		return -1;
	}
	a = st_pick_actor(R, pd->proc);
	if (busy_actor[a])
		return -1;
	pd->actor = a;
	return 0;
}

/* ------------------------------------------------------------------------
 * Issuing (st_ops[].issue): the actor's command and the trace's words
 */

static void st_issue_map(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			 int *newactor)
{
	struct st_proc *P = &R->proc[pd->proc];

	c->fd = P->fd[pd->sess];
	c->off = PGS(pd->p0);
	c->len = PGS(pd->p1 - pd->p0);
	c->prot = pd->expect_sig;
	snprintf(pd->desc, sizeof(pd->desc), "map s%d pages [%llu,%llu) %s",
		 pd->sess, (unsigned long long)pd->p0, (unsigned long long)pd->p1,
		 c->prot & PROT_WRITE ? "rw" : "ro");
}

static void st_issue_unmap(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			   int *newactor)
{
	struct st_map *M = &R->map[pd->map];

	c->addr = M->addr + PGS(pd->p0);
	c->len = PGS(pd->p1 - pd->p0);
	snprintf(pd->desc, sizeof(pd->desc), "unmap m%d [%llu,%llu) of %llu pages at file page %llu",
		 pd->map, (unsigned long long)pd->p0, (unsigned long long)pd->p1,
		 (unsigned long long)M->npages, (unsigned long long)M->pgoff);
}

static void st_issue_read(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			  int *newactor)
{
	struct st_map *M = &R->map[pd->map];

	c->addr = M->addr + PGS(pd->page - M->pgoff);
	c->mode = pd->expect_sig;
	snprintf(pd->desc, sizeof(pd->desc), "read s%d page %llu via m%d mode %d",
		 pd->sess, (unsigned long long)pd->page, pd->map, c->mode);
}

static void st_issue_write(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			   int *newactor)
{
	struct st_map *M = &R->map[pd->map];

	c->addr = M->addr + PGS(pd->page - M->pgoff);
	c->mode = pd->expect_sig;
	c->boff = pd->boff;
	c->blen = pd->blen;
	c->seed = cm_rand(&R->rng);
	pd->p0 = c->seed;
	snprintf(pd->desc, sizeof(pd->desc), "write s%d page %llu [%u,+%u) via m%d mode %d seed %llx",
		 pd->sess, (unsigned long long)pd->page, pd->boff, pd->blen, pd->map,
		 c->mode, (unsigned long long)c->seed);
}

static void st_issue_fork(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			  int *newactor)
{
	*newactor = st_new_actor(R, -2);
	c->peer = *newactor;
	snprintf(pd->desc, sizeof(pd->desc), "fork proc %d -> actor %d", pd->proc, *newactor);
}

static void st_issue_exit(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			  int *newactor)
{
	struct st_proc *P = &R->proc[pd->proc];

	snprintf(pd->desc, sizeof(pd->desc), "exit proc %d (pid %d)", pd->proc, P->pid);
}

static void st_issue_send(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			  int *newactor)
{
	struct st_proc *P = &R->proc[pd->proc];

	c->fd = P->fd[pd->sess];
	c->peer = R->proc[pd->p0].actors[0];
	snprintf(pd->desc, sizeof(pd->desc), "send s%d fd from proc %d to proc %d",
		 pd->sess, pd->proc, (int)pd->p0);
}

static void st_issue_close(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			   int *newactor)
{
	struct st_proc *P = &R->proc[pd->proc];

	c->fd = P->fd[pd->sess];
	snprintf(pd->desc, sizeof(pd->desc), "close s%d fd in proc %d", pd->sess, pd->proc);
}

static void st_issue_discard(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			     int *newactor)
{
	struct st_proc *P = &R->proc[pd->proc];

	c->fd = P->fd[pd->sess];
	c->mode = pd->expect_sig;
	c->off = PGS(pd->p0);
	c->flen = PGS(pd->p1 - pd->p0);
	snprintf(pd->desc, sizeof(pd->desc), "discard s%d %s[%llu,%llu)", pd->sess,
		 c->mode ? "all " : "", (unsigned long long)pd->p0,
		 (unsigned long long)pd->p1);
}

static void st_issue_drain(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			   int *newactor)
{
	struct st_proc *P = &R->proc[pd->proc];

	c->fd = P->fd[pd->sess];
	c->mode = pd->expect_sig;
	c->sess_id = R->s[pd->sess].id;
	snprintf(c->path, sizeof(c->path), "%s/fdlog.%d.%d", R->cfg.dir, pd->sess,
		 R->s[pd->sess].nfdlogs++);
	snprintf(pd->desc, sizeof(pd->desc), "drain s%d %s", pd->sess,
		 c->mode == 1 ? "DRAIN_FD" : c->mode == 2 ? "netlink" : "bound log");
}

static void st_issue_mremap(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			    int *newactor)
{
	struct st_map *M = &R->map[pd->map];

	c->addr = M->addr;
	c->len = PGS(M->npages);
	c->off = PGS(M->pgoff);
	if (pd->expect_sig <= 6) {
		c->mode = 0;
		c->flen = pd->expect_sig == 6;	/* congruent target */
		c->seed = cm_rand(&R->rng);
	} else if (pd->expect_sig <= 8) {
		c->mode = 1;
		c->flen = PGS(1 + st_rnd(R, M->npages - 1));
	} else {
		c->mode = 2;
		c->flen = c->len + PG;
	}
	snprintf(pd->desc, sizeof(pd->desc), "mremap m%d (%llu pages) %s", pd->map,
		 (unsigned long long)M->npages,
		 c->mode == 0 ? (c->flen ? "move congruent" : "move") :
		 c->mode == 1 ? "shrink" : "grow");
}

static void st_issue_madv(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			  int *newactor)
{
	struct st_map *M = &R->map[pd->map];

	c->addr = M->addr + PGS(pd->p0);
	c->len = PGS(pd->p1 - pd->p0);
	c->mode = pd->expect_sig;
	snprintf(pd->desc, sizeof(pd->desc), "madvise m%d [%llu,%llu) adv %d", pd->map,
		 (unsigned long long)pd->p0, (unsigned long long)pd->p1, c->mode);
}

static void st_issue_outsider(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			      int *newactor)
{
	c->off = pd->page;
	c->flen = pd->blen;
	c->seed = cm_rand(&R->rng);
	pd->p0 = c->seed;
	snprintf(pd->desc, sizeof(pd->desc), "%s off %llu len %llu (size %llu)",
		 st_ops[pd->op].name, (unsigned long long)c->off,
		 (unsigned long long)c->flen, (unsigned long long)R->size);
}

/* ------------------------------------------------------------------------
 * Completing (st_ops[].complete): check the outcome, update the model
 */

/*
 * The signal a READ or WRITE got (0: none), or -1 for an outcome no access
 * gives.  A plain access (mode 0) gets the signal itself.  Where a plain
 * access would get SIGBUS or SIGSEGV, reading or writing /proc/self/mem
 * (mode 1) fails with EIO (mem_rw(): access_remote_vm() copied nothing,
 * whatever get_user_pages() said), and an O_DIRECT transfer (mode 2) with
 * EFAULT (get_user_pages() on VM_FAULT_SIGBUS or a read-only VMA), on 6.1
 * and 6.12 alike; either errno stands for the expected signal (@want), or
 * for SIGBUS where none was expected.  A failed step around the access
 * (opening /proc/self/mem, the scratch file's buffered write or read back)
 * is never a signal.
 */
static int st_access_sig(const struct st_cmd *c, int want)
{
	if (c->mode == 0 || (!c->err && !c->sig))
		return c->sig;
	if (c->r3 || c->sig)
		return -1;
	if (c->err == (c->mode == 1 ? EIO : EFAULT))
		return want ? want : SIGBUS;
	return -1;
}

/*
 * Did a READ or WRITE end the way an allocation made to fail ends it?
 * Plain access: SIGBUS (filemap_fault() could not read the page; a failed
 * copy is VM_FAULT_OOM, retried).  /proc/self/mem: EIO (get_user_pages()
 * failed: ENOMEM or EFAULT, lost in access_remote_vm()) or ENOMEM
 * (mem_rw()'s bounce page, the open), or ENOENT (the open).  O_DIRECT: ENOMEM (VM_FAULT_OOM,
 * the dio's own allocations), and for a read of the mapping EFAULT (the
 * backing page could not be read).  The scratch file's buffered write,
 * fsync and read back: ENOMEM, EIO.
 */
static int st_access_injected(const struct st_cmd *c, int write)
{
	if (c->mode == 0)
		return c->sig == SIGBUS && !c->err;
	if (c->sig)
		return 0;
	/*
	 * Opening /proc/self/mem: ENOENT when proc could not allocate the
	 * inode of a /proc/PID entry (proc_pid_instantiate()).
	 */
	if (c->r3 && c->mode == 1 && c->err == ENOENT)
		return 1;
	if (c->r3 || c->mode == 1)
		return c->err == ENOMEM || c->err == EIO;
	return c->err == ENOMEM || (!write && c->err == EFAULT);
}

/* A READ or WRITE ended otherwise than the model says. */
static void st_fail_access(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			   int got, int want)
{
	st_fail(R, "%s: got %s (errno %d%s), expected %s", pd->desc,
		got < 0 ? "an unexpected errno" : st_sig_name(got),
		c->err, c->r3 ? ", around the access" : "", st_sig_name(want));
}

/*
 * An munmap or mremap move failed: under fault injection a clean failure,
 * whose uncertain effect on the mapping is cleaned up.
 */
static void st_failed_mm_op(struct st_run *R, struct st_pending *pd, struct st_cmd *c)
{
	if (!st_injected(R, c->err))
		st_fail(R, "%s: %s", pd->desc, strerror(c->err));
	R->st.failed_ops++;
	st_cleanup_map(R, pd->map, 0, 0);
}

static void st_complete_map(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			    int newactor, int drains_racing)
{
	struct st_map *M;
	int s = pd->sess;
	int m;

	R->st.maps++;
	if (c->err) {
		if (!st_injected(R, c->err))
			st_fail(R, "%s: %s", pd->desc, strerror(c->err));
		R->st.failed_ops++;
		return;
	}
	if ((((c->raddr >> 12) - pd->p0) & 511) == 0)
		st_fail(R, "%s: mmap chose a PMD-congruent address %#llx", pd->desc,
			(unsigned long long)c->raddr);
	m = st_new_map(R);
	if (m < 0) {
		/* Two maps in one batch took the last slot: drop this one. */
		st_model_unmap(R, pd->actor, c->raddr, PGS(pd->p1 - pd->p0));
		return;
	}
	M = &R->map[m];
	M->alive = 1;
	M->proc = pd->proc;
	M->sess = s;
	M->pgoff = pd->p0;
	M->npages = pd->p1 - pd->p0;
	M->addr = c->raddr;
	M->prot = c->prot;
	st_trace(R, "  -> m%d at %#llx", m, (unsigned long long)c->raddr);
}

static void st_complete_unmap(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			      int newactor, int drains_racing)
{
	struct st_map *M = &R->map[pd->map];

	R->st.unmaps++;
	if (c->err) {
		st_failed_mm_op(R, pd, c);
		return;
	}
	if (pd->p0 == 0 && pd->p1 == M->npages) {
		M->alive = 0;
	} else if (pd->p0 == 0) {
		M->addr += PGS(pd->p1);
		M->pgoff += pd->p1;
		M->npages -= pd->p1;
	} else if (pd->p1 == M->npages) {
		M->npages = pd->p0;
	} else {
		int m2 = st_new_map(R);

		if (m2 < 0) {
			/* No room to track the tail: unmap it too. */
			st_model_unmap(R, pd->actor, M->addr + PGS(pd->p1),
				       PGS(M->npages - pd->p1));
			M->npages = pd->p0;
			return;
		}
		R->map[m2] = *M;
		R->map[m2].addr = M->addr + PGS(pd->p1);
		R->map[m2].pgoff = M->pgoff + pd->p1;
		R->map[m2].npages = M->npages - pd->p1;
		M->npages = pd->p0;
		st_trace(R, "  -> tail is m%d", m2);
	}
}

static void st_complete_read(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			     int newactor, int drains_racing)
{
	int s = pd->sess;
	uint8_t exp[PG];
	int want = st_expect(R, s, pd->page, exp);
	int got = st_access_sig(c, want);

	R->st.reads++;
	R->st.rmodes[c->mode]++;
	/*
	 * A read through /proc/self/mem or an O_DIRECT write from the
	 * mapping holds the page (GUP): a drain that finds a private
	 * page held keeps it marked (the holder could store into it),
	 * so the session may count it undrained after the drain.
	 */
	if (c->mode && (drains_racing & (1 << s))) {
		R->s[s].und_unsure = 1;
		R->racing_ok |= 1 << s;
	}
	if (c->mode == 2)
		R->s[s].od_since_drain = 1;
	if (want != got && R->cfg.inject && st_access_injected(c, 0)) {
		/* An allocation failed (reading the backing page, say). */
		R->st.enomem++;
		return;
	}
	if (want != got) {
		st_fail_access(R, pd, c, got, want);
	} else if (!want && memcmp(exp, c->page, PG)) {
		size_t i2 = 0;

		while (exp[i2] == c->page[i2])
			i2++;
		st_fail(R, "%s: contents differ from the model at byte %zu (got %#x, expected %#x; page hash %llx, expected %llx; size %llu, private %d)",
			pd->desc, i2, c->page[i2], exp[i2],
			(unsigned long long)st_hash(c->page, PG),
			(unsigned long long)st_hash(exp, PG),
			(unsigned long long)R->size, !!R->s[s].priv[pd->page]);
	}
	if (got == SIGBUS)
		R->st.sigbus++;
}

static void st_complete_write(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			      int newactor, int drains_racing)
{
	struct st_map *M = &R->map[pd->map];
	int s = pd->sess;
	int want, got = c->sig;

	R->st.writes++;
	R->st.wmodes[c->mode]++;
	if (!(M->prot & PROT_WRITE))
		want = SIGSEGV;
	else if (!R->s[s].priv[pd->page] && pd->page >= st_npages_eof(R))
		want = SIGBUS;
	else
		want = 0;
	if (c->mode)
		got = st_access_sig(c, want);	/* EIO/EFAULT stand for the signal */
	if (want == 0 && got && R->cfg.inject && st_access_injected(c, 1)) {
		/*
		 * The kernel copy failed (allocation): the page may or
		 * may not have been copied already.  Resync from INFO:
		 * exact only if nothing else in the batch could have
		 * copied a page of this session.
		 */
		struct cowmap_info in;

		R->st.enomem++;
		if (R->batch_ops != 1) {
			st_fail(R, "%s: failed under injection in a batch of %d operations: the model cannot tell which one copied",
				pd->desc, R->batch_ops);
			return;
		}
		if (!cm_info(R->s[s].fd, &in) && in.cow_faults > R->s[s].cows) {
			st_model_cow(R, s, pd->page);
			R->s[s].und[pd->page] = 1;
		}
		return;
	}
	if (want != got) {
		st_fail_access(R, pd, c, got, want);
		return;
	}
	if (want == SIGBUS)
		R->st.sigbus++;
	if (want == SIGSEGV)
		R->st.sigsegv++;
	if (want)
		return;
	if (!R->s[s].priv[pd->page])
		st_model_cow(R, s, pd->page);
	{
		uint8_t buf[PG];

		cm_fill(pd->p0, buf, pd->blen);
		memcpy(R->s[s].priv[pd->page] + pd->boff, buf, pd->blen);
	}
	R->s[s].und[pd->page] = 1;
	if (drains_racing & (1 << s)) {
		R->s[s].und_unsure = 1;
		R->racing_ok |= 1 << s;
	}
	if (c->mode == 2)
		R->s[s].od_since_drain = 1;
}

static void st_complete_fork(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			     int newactor, int drains_racing)
{
	struct st_proc *P = &R->proc[pd->proc];
	int i;
	int np;

	R->st.forks++;
	if (c->err) {
		R->actor_proc[newactor] = -1;
		/*
		 * The child inherits the injection: any error of its
		 * set-up (socket, bind, open: ENOENT from XFS, ...)
		 * is one.  The child has exited; its copies are gone.
		 */
		if (!R->cfg.inject)
			st_fail(R, "%s: %s", pd->desc, strerror(c->err));
		else
			R->st.enomem++;
		/*
		 * Its copies of the mappings go when it has exited:
		 * wait for that (every process is P0's child).
		 */
		if (c->r1)
			waitpid((pid_t)c->r1, NULL, 0);
		R->st.failed_ops++;
		return;
	}
	np = st_new_proc(R);
	R->proc[np].pid = c->r1;
	R->proc[np].actors[0] = newactor;
	R->proc[np].nactors = 1;
	R->actor_proc[newactor] = np;
	for (i = 0; i < ST_MAX_SESS; i++)
		R->proc[np].fd[i] = P->fd[i];
	for (i = 0; i < ST_MAX_MAPS; i++) {
		int m2;

		if (!R->map[i].alive || R->map[i].proc != pd->proc)
			continue;
		m2 = st_new_map(R);
		if (m2 < 0) {
			/* Out of slots: the child drops the copy. */
			st_model_unmap(R, newactor, R->map[i].addr,
				       PGS(R->map[i].npages));
			continue;
		}
		R->map[m2] = R->map[i];
		R->map[m2].proc = np;
	}
	st_trace(R, "  -> proc %d pid %d", np, R->proc[np].pid);
}

static void st_complete_exit(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			     int newactor, int drains_racing)
{
	struct st_proc *P = &R->proc[pd->proc];
	int i;

	R->st.exits++;
	waitpid(P->pid, NULL, 0);
	for (i = 0; i < ST_MAX_MAPS; i++)
		if (R->map[i].alive && R->map[i].proc == pd->proc)
			R->map[i].alive = 0;
	R->actor_proc[pd->actor] = -1;
	P->alive = 0;
}

static void st_complete_send(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			     int newactor, int drains_racing)
{
	int s = pd->sess;
	int to = pd->p0, ra = R->proc[to].actors[0];
	struct st_cmd *c2;

	R->st.fdpass++;
	if (c->err) {
		if (!st_injected(R, c->err))
			st_fail(R, "%s: %s", pd->desc, strerror(c->err));
		return;
	}
	c2 = st_cmd(ra);
	c2->op = OP_RECV;
	if (!st_run1(R, ra))
		return;
	if (c2->err) {
		if (!st_injected(R, c2->err))
			st_fail(R, "%s: receive: %s", pd->desc, strerror(c2->err));
		return;
	}
	R->proc[to].fd[s] = c2->ret;
}

static void st_complete_close(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			      int newactor, int drains_racing)
{
	struct st_proc *P = &R->proc[pd->proc];
	int s = pd->sess;

	if (c->err)
		st_fail(R, "%s: %s", pd->desc, strerror(c->err));
	P->fd[s] = -1;
}

static void st_complete_discard(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
				int newactor, int drains_racing)
{
	int s = pd->sess;
	uint64_t p;
	uint64_t n = 0;

	R->st.discards++;
	if (c->err) {
		st_fail(R, "%s: %s", pd->desc, strerror(c->err));
		return;
	}
	for (p = pd->p0; p < pd->p1; p++) {
		if (R->s[s].priv[p]) {
			st_drop_priv(R, s, p);
			n++;
		}
	}
	if (c->r1 != n)
		st_fail(R, "%s: dropped %llu pages, the model %llu", pd->desc,
			(unsigned long long)c->r1, (unsigned long long)n);
}

static void st_complete_drain(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			      int newactor, int drains_racing)
{
	int s = pd->sess;
	uint64_t p;

	R->st.drains++;
	if (c->err && !st_injected(R, c->err)) {
		st_fail(R, "%s: %s", pd->desc, strerror(c->err));
		return;
	}
	if (c->mode == 1) {
		if (!c->err || access(c->path, F_OK) == 0) {
			struct stat sb;

			if (!stat(c->path, &sb) && sb.st_size)
				st_consume_fdlog(R, s, c->path, c->err);
			else
				unlink(c->path);
		}
	} else if (st_consume_log(R, s) > 0 && !c->err) {
		st_fail(R, "%s: the log ends in a torn record after a drain that returned 0",
			pd->desc);
	}
	if (c->err) {
		/*
		 * A drain that failed part way (an injected failure)
		 * has drained the batches before the failure: which
		 * pages are still undrained is known again after the
		 * next drain that succeeds.
		 */
		R->s[s].und_unsure = 1;
		return;
	}
	if (!(R->racing_ok & (1 << s))) {
		/*
		 * No write raced this drain: the logs are complete.
		 * The session may still count a page undrained if an
		 * O_DIRECT transfer used it since the last drain: the
		 * block layer wakes the reader before it releases the
		 * pages (iomap_dio_bio_end_io()), and a drain keeps a
		 * held page marked.  The next drain knows again.
		 */
		for (p = 0; p < ST_CAP_PAGES; p++)
			R->s[s].und[p] = 0;
		R->s[s].und_unsure = R->s[s].od_since_drain;
		R->s[s].od_since_drain = 0;
		st_check_logimg(R, s, pd->desc);
	}
}

static void st_complete_mremap(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			       int newactor, int drains_racing)
{
	struct st_map *M = &R->map[pd->map];

	R->st.mremaps++;
	if (c->mode == 0) {
		if (c->flen) {	/* congruent: refused, mapping unchanged */
			if (c->err != EINVAL && !(c->err && st_injected(R, c->err))) {
				st_fail(R, "%s: got %s, expected EINVAL", pd->desc,
					c->err ? strerror(c->err) : "success");
				if (!c->err)
					M->addr = c->raddr;
			}
			return;
		}
		if (c->err) {
			st_failed_mm_op(R, pd, c);
			return;
		}
		if (c->r3) {
			/* The old range stayed mapped: unmap it too. */
			if (!R->cfg.inject)
				st_fail(R, "%s: the old range is still mapped after the move",
					pd->desc);
			st_cleanup_map(R, pd->map, c->raddr, c->len);
			return;
		}
		M->addr = c->raddr;
	} else if (c->mode == 1) {
		if (c->err) {
			if (!st_injected(R, c->err))
				st_fail(R, "%s: %s", pd->desc, strerror(c->err));
			st_cleanup_map(R, pd->map, 0, 0);
			return;
		}
		M->npages = c->flen / PG;
	} else {
		if (c->err != EFAULT && !(c->err && st_injected(R, c->err)))
			st_fail(R, "%s: got %s, expected EFAULT (VM_DONTEXPAND)",
				pd->desc, c->err ? strerror(c->err) : "success");
		if (!c->err) {
			M->addr = c->raddr;
			M->npages++;
		}
	}
}

static void st_complete_madv(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			     int newactor, int drains_racing)
{
	R->st.madvs++;
	if (c->mode == 4) {
		/*
		 * MADV_REMOVE would punch the backing file: it fails
		 * with EBADF, the VMA's file being the session's
		 * read-only clone (as in cowmap_mm_test.c
		 * madv_remove_does_not_punch), read-only mapping or not
		 * (madvise_remove(): VM_SHARED | VM_MAYWRITE).
		 */
		if (c->err != EBADF)
			st_fail(R, "%s: MADV_REMOVE: got %s, expected EBADF",
				pd->desc, c->err ? strerror(c->err) : "success");
	} else if (c->err && !st_injected(R, c->err)) {
		st_fail(R, "%s: %s", pd->desc, strerror(c->err));
	}
}

/* OWRITE and ODIRECT. */
static void st_complete_owrite(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			       int newactor, int drains_racing)
{
	uint64_t off = pd->page, len = pd->blen;
	uint8_t buf[2 * PG];

	if (pd->op == OP_OWRITE)
		R->st.owrites++;
	else
		R->st.odirects++;
	if (c->err) {
		st_fail(R, "%s: %s", pd->desc, strerror(c->err));
		return;
	}
	cm_fill(pd->p0, buf, len);
	memcpy(R->file + off, buf, len);
	if (off + len > R->size)
		R->size = off + len;
}

static void st_complete_otrunc(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			       int newactor, int drains_racing)
{
	R->st.truncs++;
	if (c->err) {
		st_fail(R, "%s: %s", pd->desc, strerror(c->err));
		return;
	}
	if (pd->page < R->size)
		memset(R->file + pd->page, 0, R->size - pd->page);
	R->size = pd->page;
}

static void st_complete_opunch(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			       int newactor, int drains_racing)
{
	uint64_t off = pd->page, end = pd->page + pd->blen;

	R->st.punches++;
	if (c->err) {
		if (c->err != EOPNOTSUPP)
			st_fail(R, "%s: %s", pd->desc, strerror(c->err));
		return;
	}
	if (end > R->size)
		end = R->size;
	if (off < end)
		memset(R->file + off, 0, end - off);
}

#define ST_OP(nm, w, fn)						\
	{ .name = nm, .weight = w, .choose = st_choose_##fn,		\
	  .issue = st_issue_##fn, .exec = st_exec_##fn,		\
	  .complete = st_complete_##fn }
#define ST_OUTSIDER_OP(nm, w, fn, done)					\
	{ .name = nm, .weight = w, .outsider = 1,			\
	  .choose = st_choose_##fn, .issue = st_issue_outsider,		\
	  .exec = st_exec_##fn, .complete = st_complete_##done }

/*
 * The weights of the actors' operations are per 1000 draws (the 65 left
 * over go to the outsider), the outsider's per 100 of its draws.
 */
const struct st_op_desc st_ops[OP_NR] = {
	[OP_NONE] = { .name = "none" },
	[OP_MAP] = ST_OP("map", 70, map),
	[OP_UNMAP] = ST_OP("unmap", 40, unmap),
	[OP_READ] = ST_OP("read", 360, read),
	[OP_WRITE] = ST_OP("write", 330, write),
	[OP_FORK] = ST_OP("fork", 15, fork),
	[OP_EXIT] = ST_OP("exit", 12, exit),
	[OP_SEND] = ST_OP("send", 15, send),
	[OP_RECV] = { .name = "recv", .exec = st_exec_recv },
	[OP_CLOSE] = ST_OP("close", 8, close),
	[OP_DISCARD] = ST_OP("discard", 18, discard),
	[OP_DRAIN] = ST_OP("drain", 32, drain),
	[OP_MREMAP] = ST_OP("mremap", 15, mremap),
	[OP_MADV] = ST_OP("madvise", 20, madv),
	[OP_OWRITE] = ST_OUTSIDER_OP("owrite", 50, owrite, owrite),
	[OP_ODIRECT] = ST_OUTSIDER_OP("odirect", 20, odirect, owrite),
	[OP_OTRUNC] = ST_OUTSIDER_OP("otrunc", 15, otrunc, otrunc),
	[OP_OPUNCH] = ST_OUTSIDER_OP("opunch", 15, opunch, opunch),
	[OP_PROBE] = { .name = "probe", .exec = st_exec_probe },
	[OP_QUIT] = { .name = "quit" },
};

/* Issue @pd on its actor (the model is updated after the batch). */
void st_issue(struct st_run *R, struct st_pending *pd, int *newactor)
{
	struct st_cmd *c = st_cmd(pd->actor);

	c->op = pd->op;
	st_ops[pd->op].issue(R, pd, c, newactor);
	st_trace(R, "b%ld a%d: %s", R->st.batches, pd->actor, pd->desc);
	st_post(R, pd->actor);
}

/* Collect @pd's result and update the model. */
void st_complete(struct st_run *R, struct st_pending *pd, int newactor, int drains_racing)
{
	R->st.ops++;
	st_ops[pd->op].complete(R, pd, &st_sh->slot[pd->actor].c, newactor, drains_racing);
}
