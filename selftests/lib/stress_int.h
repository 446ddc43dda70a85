/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The stress engine's insides, shared by its files:
 *   stress.c        the controller: model, logs, checks, the run;
 *   stress_ops.c    one handler set per operation, the table st_ops[];
 *   stress_actor.c  the actors: the processes and threads that operate.
 */
#ifndef COWMAP_SELFTEST_STRESS_INT_H
#define COWMAP_SELFTEST_STRESS_INT_H

#include <stddef.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <linux/falloc.h>

#include "util.h"
#include "nl.h"
#include "stress.h"

#define ST_MAX_ACTORS	16
#define ST_MAX_PROCS	12
#define ST_MAX_SESS	4
#define ST_MAX_MAPS	48
#define ST_CAP_PAGES	64		/* offsets used: [0, ST_CAP_PAGES) pages */
#define ST_MAP_MAX	12		/* pages in one mapping at most */
#define ST_BATCH_MAX	4
#define ST_TRACE_LINES	256
#define ST_P0_WORKERS	2

/*
 * Operations, in the order st_choose() draws them (st_ops[]): the weights
 * of the actors' operations share one draw of 1000, the outsider's (after
 * OP_MADV) a second draw of 100.
 */
enum st_op {
	OP_NONE,
	OP_MAP,		/* mmap the session: addr out */
	OP_UNMAP,	/* munmap [addr, addr+len) */
	OP_READ,	/* copy the page at addr out (mode: memcpy, /proc/self/mem, O_DIRECT) */
	OP_WRITE,	/* write bytes (mode: memcpy, /proc/self/mem, O_DIRECT read into it) */
	OP_FORK,	/* fork a new actor process */
	OP_EXIT,	/* this process exits */
	OP_SEND,	/* send session fd over SCM_RIGHTS to actor peer */
	OP_RECV,	/* receive an fd */
	OP_CLOSE,	/* close session fd */
	OP_DISCARD,	/* COWMAP_IOC_DISCARD */
	OP_DRAIN,	/* drain (mode: ioctl bound, ioctl DRAIN_FD, netlink) */
	OP_MREMAP,	/* mode: move (congruent or not), shrink, grow */
	OP_MADV,	/* madvise(mode) */
	OP_OWRITE,	/* outsider: pwrite */
	OP_ODIRECT,	/* outsider: O_DIRECT pwrite of whole pages */
	OP_OTRUNC,	/* outsider: ftruncate */
	OP_OPUNCH,	/* outsider: punch a hole */
	OP_PROBE,	/* is [addr, addr+len) mapped? (cleanup after failures) */
	OP_QUIT,
	OP_NR
};

struct st_cmd {
	int op;
	int mode;
	int fd;
	int prot;
	int peer;		/* SEND: receiving actor; FORK: new actor */
	int sess;
	uint64_t addr, len;	/* user addresses */
	uint64_t off, flen;	/* file offset / length */
	uint32_t boff, blen;	/* WRITE: bytes within the page */
	uint64_t seed;		/* data pattern */
	uint64_t sess_id;
	char path[160];
	/* results */
	long ret;
	int err;
	int sig;
	uint64_t raddr;
	uint64_t r1, r2, r3;
	uint8_t page[PG] __attribute__((aligned(PG)));
};

struct st_slot {
	sem_t go, done;
	volatile int pid;
	struct sockaddr_un sock;	/* its process's SCM socket (autobound) */
	socklen_t socklen;
	struct st_cmd c;
};

/* Shared by every process of a run (MAP_SHARED anonymous). */
struct st_shared {
	struct st_slot slot[ST_MAX_ACTORS];
	char dir[256];
	char file[300];
	pid_t p0;
	int inject;
	int outsider;		/* actor never made to fail */
	uint64_t run_id;
	long kernel_segv;	/* SIGSEGVs the kernel sent on its own (SI_KERNEL) */
};

/* The user address of a command. */
#define ST_ADDR(c)	((uint8_t *)(uintptr_t)(c)->addr)

struct st_proc {
	int alive;
	pid_t pid;
	int actors[ST_P0_WORKERS];
	int nactors;
	int fd[ST_MAX_SESS];		/* fd number in this process, or -1 */
	int outsider;
	int busy_struct, busy_any;	/* batch bookkeeping */
};

struct st_map {
	int alive;
	int proc;
	int sess;
	uint64_t pgoff;			/* first page */
	uint64_t npages;
	uint64_t addr;
	int prot;
};

struct st_sess {
	int fd;				/* P0's fd */
	uint64_t id;
	char log[320];
	uint64_t log_pos;		/* bytes of the bound log consumed */
	uint64_t log_seq;		/* next record seq expected */
	uint8_t *priv[ST_CAP_PAGES];
	uint8_t *logimg[ST_CAP_PAGES];
	uint8_t und[ST_CAP_PAGES];
	int und_unsure;
	int od_since_drain;		/* an O_DIRECT transfer used the mapping */
	uint64_t cows;			/* copies since bind */
	uint64_t ev_cows;		/* copies already matched with events */
	uint64_t ev_seq;		/* last event seq seen */
	uint32_t ring;
	int nfdlogs;
};

/* A run: the controller's state. */
struct st_run {
	struct st_cfg cfg;
	struct st_stats st;
	uint64_t rng;
	uint8_t file[ST_CAP_PAGES * PG];
	uint64_t size;
	struct st_proc proc[ST_MAX_PROCS];
	struct st_map map[ST_MAX_MAPS];
	struct st_sess s[ST_MAX_SESS];
	int actor_proc[ST_MAX_ACTORS];	/* -1: free */
	pthread_t thr[ST_P0_WORKERS];
	int outsider_actor, fresh_actor;
	char trace[ST_TRACE_LINES][160];
	long ntrace;
	char why[512];
	struct timespec t0;
	int failed;
	int racing_ok;		/* sessions whose drain raced a write that landed */
	int batch_ops;		/* operations in the batch being completed */
};

struct st_pending {
	int actor;
	int proc;
	int op;
	int map;		/* mapping used, or -1 */
	int sess;
	uint64_t page;		/* READ/WRITE: file page */
	uint32_t boff, blen;	/* WRITE bytes */
	uint64_t p0, p1;	/* page range touched [p0, p1) */
	int expect_sig;		/* READ/WRITE: expected signal (or errno mode) */
	int structural;
	int size_change;
	char desc[140];
};

/* One operation: how it is drawn, issued, run and checked. */
struct st_op_desc {
	const char *name;
	int weight;		/* its share of st_choose()'s draw */
	int outsider;		/* run by the outsider, on the file */
	/* Controller: fill @pd (0), or -1 if none fits now. */
	int (*choose)(struct st_run *R, struct st_pending *pd);
	/* Controller: fill the actor's command from @pd. */
	void (*issue)(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
		      int *newactor);
	/* Actor: run it; 1 if "done" was posted by someone else. */
	int (*exec)(int self, struct st_cmd *c, long *r, int *sig);
	/* Controller: collect the result and update the model. */
	void (*complete)(struct st_run *R, struct st_pending *pd, struct st_cmd *c,
			 int newactor, int drains_racing);
};

extern const struct st_op_desc st_ops[OP_NR];

/* stress_actor.c */
extern struct st_shared *st_sh;
extern int st_ofd, st_odfd;
extern void *st_obuf;
void st_sig(int sig, siginfo_t *si, void *uc);
int st_proc_init(int actor);
void st_actor_loop(int self);
void *st_thread_main(void *arg);
/* The operations' st_ops[].exec. */
#define ST_EXEC(op) int st_exec_##op(int self, struct st_cmd *c, long *r, int *sig)
ST_EXEC(map);
ST_EXEC(unmap);
ST_EXEC(probe);
ST_EXEC(read);
ST_EXEC(write);
ST_EXEC(fork);
ST_EXEC(exit);
ST_EXEC(send);
ST_EXEC(recv);
ST_EXEC(close);
ST_EXEC(discard);
ST_EXEC(drain);
ST_EXEC(mremap);
ST_EXEC(madv);
ST_EXEC(owrite);
ST_EXEC(odirect);
ST_EXEC(otrunc);
ST_EXEC(opunch);

/* stress.c: the model and talking to actors */
void st_trace(struct st_run *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_fail(struct st_run *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t st_rnd(struct st_run *R, uint64_t n);
uint64_t st_npages_eof(struct st_run *R);
int st_expect(struct st_run *R, int s, uint64_t p, uint8_t *out);
uint64_t st_hash(const uint8_t *p, size_t n);
void st_post(struct st_run *R, int actor);
int st_wait(struct st_run *R, int actor);
struct st_cmd *st_cmd(int actor);
struct st_cmd *st_run1(struct st_run *R, int actor);
int st_new_actor(struct st_run *R, int proc);
int st_new_proc(struct st_run *R);
int st_nprocs(struct st_run *R);
int st_new_map(struct st_run *R);
uint64_t st_mapped_bytes(struct st_run *R, int s);
int st_consume_log(struct st_run *R, int s);
int st_consume_fdlog(struct st_run *R, int s, const char *path, int may_tear);
void st_check_logimg(struct st_run *R, int s, const char *when);
void st_model_cow(struct st_run *R, int s, uint64_t p);
void st_drop_priv(struct st_run *R, int s, uint64_t p);
int st_model_unmap(struct st_run *R, int actor, uint64_t addr, uint64_t len);
void st_cleanup_map(struct st_run *R, int m, uint64_t extra_addr, uint64_t extra_len);
int st_injected(struct st_run *R, int err);

/* stress_ops.c: batches */
int st_choose(struct st_run *R, struct st_pending *pd, int *busy_actor);
int st_compatible(struct st_pending *a, struct st_pending *b);
void st_issue(struct st_run *R, struct st_pending *pd, int *newactor);
void st_complete(struct st_run *R, struct st_pending *pd, int newactor, int drains_racing);

#endif /* COWMAP_SELFTEST_STRESS_INT_H */
