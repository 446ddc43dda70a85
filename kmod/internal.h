/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _COWMAP_INTERNAL_H
#define _COWMAP_INTERNAL_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/poll.h>
#include <linux/xarray.h>
#include <linux/uidgid.h>
#include <linux/sched.h>
#include <linux/refcount.h>
#include <linux/cred.h>
#include <linux/pid.h>
#include <linux/crc32.h>
#include <linux/percpu.h>

#include <linux/cowmap.h>

/*
 * Locking and reference rules (the design behind them: docs/design.md).
 *
 * Lock order, outermost first:
 *   cowmap_sessions_lock (mutex: the session list)
 *   s->lock (mutex: bind, diff, drain, discard, release; the bound log)
 *   mmap/VMA lock (a fault's) -> page lock of a backing folio or of a
 *     private page -> s->publish_lock (rwlock) -> xa_lock(&s->pages)
 *   s->ring.lock, s->vmas_lock, cowmap_users_lock (spinlocks, leaves)
 * A private page's lock is taken with s->lock held (drain, diff, discard)
 * or from a fault (no s->lock): faults never take s->lock.
 *
 * References of a private page (order-0, never on the LRU, no mapping):
 *   - the xarray's: the allocation reference, owned by s->pages from the
 *     moment the page is stored there; dropped only by whoever erases it
 *     (discard, under the page lock) or by session_free();
 *   - a fault's: taken *before* the page is published when the fault
 *     returns it (write_fault(): the page is also locked before it is
 *     published, so a discard waits until the page is mapped), else by
 *     cowmap_page_get_locked(); handed to the core with VM_FAULT_LOCKED;
 *   - one per PTE mapping it (the core's), dropped by zaps;
 *   - transient: cowmap_page_get_locked() callers (drain, diff, discard).
 * The base snapshot (page_private()) has one reference, the session's,
 * and lives exactly as long as its page is in s->pages; it is only read or
 * written under s->lock.
 */

/* Xarray mark: the private page may differ from its base snapshot. */
#define COWMAP_CHANGED	XA_MARK_0

/* Bytes of log records one page can produce at most (see diff.c). */
#define COWMAP_PAGE_RECS_MAX	(2 * PAGE_SIZE + 64)

struct cowmap_ring {
	spinlock_t lock;		/* protects all fields below */
	struct cowmap_event *ev;
	u32 mask;
	u64 head;			/* events produced */
	u64 tail;			/* events consumed */
	u64 lost;			/* overwritten since the last read */
	u64 total_lost;
	wait_queue_head_t wait;
};

struct cowmap_session {
	struct kref ref;
	u64 id;
	struct file *dev;		/* our /dev/cowmap file, not counted */

	/* Set once by bind under @lock, then read-only. */
	struct file *ro;		/* O_RDONLY clone of the backing file */
	struct address_space *mapping;	/* ro->f_mapping */
	u64 dev_nr, ino, size;
	u64 bind_time_ns;
	u32 flags;
	const char *path;		/* backing path at bind, for logs and listings */

	kuid_t owner;			/* euid of the binder */
	struct cowmap_user *user;	/* charged for this session's pages */
	long ring_charge;		/* private pages the ring is charged as */
	const struct cred *cred;	/* the binder's, for the final drain */
	struct pid *tgid;		/* the binder's process */
	pid_t pid;			/* the same, as the binder saw it */
	char comm[TASK_COMM_LEN];

	/*
	 * pgoff -> private page.  The page's base snapshot hangs off its
	 * page_private().  Entries are published (and erased) under
	 * @publish_lock for write, after the backing folio at that offset was
	 * locked, so ->map_pages, holding it for read, never maps a backing
	 * page over a private one.
	 */
	struct xarray pages;
	rwlock_t publish_lock;

	/* Serializes bind, diff, drain, discard and release; protects @log*. */
	struct mutex lock;
	struct file *log;		/* bound log, or NULL */
	u64 log_seq;			/* next record number in @log */
	loff_t log_cut;			/* torn tail of @log from here, or -1 */
	bool dead;			/* released: no more drains */
	/* The final drain's limit: RLIMIT_FSIZE of the last closer. */
	unsigned long final_fsize;

	atomic_long_t npriv;		/* private pages */
	atomic64_t cow_faults;
	atomic64_t drained_bytes;

	spinlock_t vmas_lock;		/* protects @vmas */
	struct list_head vmas;		/* struct cowmap_vma, for mapped_bytes */

	struct cowmap_ring ring;
	struct list_head node;		/* in the global session list */
};

/* vm_private_data of every cowmap VMA. */
struct cowmap_vma {
	struct cowmap_session *s;
	struct vm_area_struct *vma;
	struct list_head node;
};

/* Pages charged to one uid (charge.c). */
struct cowmap_user {
	kuid_t uid;
	refcount_t ref;
	atomic_long_t pages;
	struct hlist_node node;
};

/*
 * Global event counters (main.c): per CPU, summed when read, so that faults
 * on different CPUs never share a cache line for them.
 */
enum cowmap_stat {
	COWMAP_STAT_COW_FAULTS,
	COWMAP_STAT_READ_FAULTS,
	COWMAP_STAT_EVENTS_LOST,
	COWMAP_STAT_CAP_HITS,
	COWMAP_STAT_DRAINED_BYTES,
	COWMAP_NR_STATS
};

struct cowmap_stats {
	u64 n[COWMAP_NR_STATS];
};

DECLARE_PER_CPU(struct cowmap_stats, cowmap_stats);
u64 cowmap_stat_sum(enum cowmap_stat item);

static inline void cowmap_count(enum cowmap_stat item, u64 n)
{
	this_cpu_add(cowmap_stats.n[item], n);
}

/* Private pages of all sessions: max_total_pages caps it (session.c). */
extern atomic_long_t cowmap_private_pages;
extern unsigned long cowmap_max_session_pages;
extern unsigned long cowmap_max_total_pages;
extern unsigned long cowmap_max_user_pages;

/* charge.c */
struct cowmap_user *cowmap_user_get(kuid_t uid);
void cowmap_user_put(struct cowmap_user *u);
bool cowmap_charge(struct cowmap_user *u, long pages);
void cowmap_uncharge(struct cowmap_user *u, long pages);

/* session.c */
extern struct mutex cowmap_sessions_lock;
extern struct list_head cowmap_sessions;
extern u64 cowmap_sessions_gen;
struct cowmap_session *cowmap_session_create(struct file *dev);
void cowmap_session_release(struct cowmap_session *s);
void cowmap_session_put(struct cowmap_session *s);
struct cowmap_session *cowmap_session_find(u64 id);
bool cowmap_session_charge(struct cowmap_session *s);
bool cowmap_session_uid_may_act(struct cowmap_session *s);
void cowmap_session_uncharge(struct cowmap_session *s, long pages);
u64 cowmap_session_mapped_bytes(struct cowmap_session *s);
int cowmap_session_bind(struct cowmap_session *s, struct cowmap_bind *b,
			u32 ring);
long cowmap_do_drain(struct cowmap_session *s, int log_fd,
		     struct cowmap_drain *d);
long cowmap_do_discard(struct cowmap_session *s, pgoff_t first,
		       pgoff_t last);

/* fault.c */
int cowmap_mmap(struct file *file, struct vm_area_struct *vma);
unsigned long cowmap_get_unmapped_area(struct file *file, unsigned long addr,
				       unsigned long len, unsigned long pgoff,
				       unsigned long flags);
struct page *cowmap_page_get_locked(struct cowmap_session *s, pgoff_t idx);
bool cowmap_zap_own(struct cowmap_session *s, pgoff_t idx, unsigned long nr,
		    struct vm_fault *vmf);
void cowmap_zap(struct cowmap_session *s, pgoff_t idx, unsigned long nr,
		struct vm_fault *vmf);

/* ring.c */
int cowmap_ring_init(struct cowmap_ring *r, u32 size);
void cowmap_ring_free(struct cowmap_ring *r);
void cowmap_ring_push(struct cowmap_ring *r, u32 type, u64 offset);
ssize_t cowmap_ring_read(struct cowmap_ring *r, char __user *buf, size_t len,
			 bool nonblock);
__poll_t cowmap_ring_poll(struct cowmap_ring *r, struct file *file,
			  poll_table *wait);

/* ioctl.c */
long cowmap_session_ioctl(struct cowmap_session *s, unsigned int cmd,
			  void __user *arg);

/* diff.c */
long cowmap_do_diff(struct cowmap_session *s, struct cowmap_diff *d);
long cowmap_diff_frozen(struct cowmap_session *s, pgoff_t idx, u8 *out,
			u64 *seq, u32 *records, bool clear_mark,
			struct page **basep);
unsigned long cowmap_freeze_ahead(struct cowmap_session *s, unsigned long idx,
				  unsigned long last);

/* log.c */
struct file *cowmap_log_get(int fd, struct file *backing);
int cowmap_log_start(struct cowmap_session *s, struct file *lf);
int cowmap_log_drain(struct cowmap_session *s, struct file *log, u64 *seq,
		     struct cowmap_drain *st);

/* netlink.c */
int cowmap_netlink_init(void);
void cowmap_netlink_exit(void);
void cowmap_netlink_notify_session(struct cowmap_session *s, u8 cmd);
void cowmap_netlink_notify_offset(struct cowmap_session *s, u8 cmd, u64 offset);

static inline struct cowmap_session *cowmap_vma_session(struct vm_area_struct *vma)
{
	return ((struct cowmap_vma *)vma->vm_private_data)->s;
}

static inline u64 cowmap_now_ns(void)
{
	return ktime_get_real_ns();
}

/* The session's backing file once bound (mmap and the ioctls may go ahead). */
static inline struct file *cowmap_session_bound(struct cowmap_session *s)
{
	/* Pairs with the release in cowmap_session_bind(). */
	return smp_load_acquire(&s->ro);
}

/* CRC32C as the log format uses it (uapi/linux/cowmap.h). */
static inline u32 cowmap_crc32c(u32 crc, const void *p, size_t len)
{
	return __crc32c_le(crc, p, len);
}

#endif /* _COWMAP_INTERNAL_H */
