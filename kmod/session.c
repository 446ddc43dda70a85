// SPDX-License-Identifier: GPL-2.0
/*
 * Sessions: one per open of /dev/cowmap.  Binding, caps, drain and discard,
 * and the lifetime of private pages.  The ioctls that call these are in
 * ioctl.c; the log files in log.c.
 */
#include <linux/file.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/magic.h>
#include <linux/namei.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <linux/delay.h>
#include <linux/sched/signal.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/sched/coredump.h>

#include "internal.h"

DEFINE_MUTEX(cowmap_sessions_lock);	/* protects the list and its gen */
LIST_HEAD(cowmap_sessions);
u64 cowmap_sessions_gen;
static atomic64_t next_id = ATOMIC64_INIT(0);

struct cowmap_session *cowmap_session_create(struct file *dev)
{
	struct cowmap_session *s;

	s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);
	if (!s)
		return NULL;
	kref_init(&s->ref);
	s->dev = dev;
	xa_init_flags(&s->pages, XA_FLAGS_ACCOUNT);
	rwlock_init(&s->publish_lock);
	mutex_init(&s->lock);
	spin_lock_init(&s->vmas_lock);
	INIT_LIST_HEAD(&s->vmas);
	spin_lock_init(&s->ring.lock);
	init_waitqueue_head(&s->ring.wait);
	INIT_LIST_HEAD(&s->node);
	s->log_cut = -1;
	/* Owner, credentials and pid are the binder's: see cowmap_session_bind(). */
	return s;
}

static void session_free(struct kref *ref)
{
	struct cowmap_session *s = container_of(ref, struct cowmap_session, ref);
	unsigned long idx;
	struct page *p;
	long n = 0;

	xa_for_each(&s->pages, idx, p) {
		__free_page((struct page *)page_private(p));
		set_page_private(p, 0);
		put_page(p);	/* the xarray's reference */
		n++;
		cond_resched();
	}
	xa_destroy(&s->pages);
	if (n)
		cowmap_session_uncharge(s, n);
	cowmap_ring_free(&s->ring);
	if (s->user) {
		cowmap_uncharge(s->user, s->ring_charge);
		cowmap_user_put(s->user);
	}
	if (s->cred)
		put_cred(s->cred);
	put_pid(s->tgid);
	if (s->ro)
		fput(s->ro);
	kfree(s->path);
	kfree(s);
}

void cowmap_session_put(struct cowmap_session *s)
{
	kref_put(&s->ref, session_free);
}

struct cowmap_session *cowmap_session_find(u64 id)
{
	struct cowmap_session *s, *found = NULL;

	mutex_lock(&cowmap_sessions_lock);
	list_for_each_entry(s, &cowmap_sessions, node) {
		if (s->id == id) {
			kref_get(&s->ref);
			found = s;
			break;
		}
	}
	mutex_unlock(&cowmap_sessions_lock);
	return found;
}

/*
 * Whether processes of the owner's uid other than the binder may act on
 * the session by id (netlink): not while the binding process is not
 * dumpable (setuid, or PR_SET_DUMPABLE 0), whose memory its uid's other
 * processes may not read either (/proc/PID/mem).  Once the binder is gone,
 * the uid is the rule.
 */
bool cowmap_session_uid_may_act(struct cowmap_session *s)
{
	struct task_struct *t = get_pid_task(s->tgid, PIDTYPE_TGID);
	struct mm_struct *mm;
	bool ok = true;

	if (!t)
		return true;
	if (same_thread_group(t, current)) {
		put_task_struct(t);
		return true;
	}
	mm = get_task_mm(t);
	put_task_struct(t);
	if (mm) {
		ok = get_dumpable(mm) == SUID_DUMP_USER;
		mmput(mm);
	}
	return ok;
}

/* One more private page: within the session's, its uid's and the total cap? */
bool cowmap_session_charge(struct cowmap_session *s)
{
	unsigned long max = READ_ONCE(cowmap_max_session_pages);

	if (atomic_long_inc_return(&s->npriv) > max && max)
		goto undo_session;
	max = READ_ONCE(cowmap_max_total_pages);
	if (atomic_long_inc_return(&cowmap_private_pages) > max)
		goto undo_total;
	if (!cowmap_charge(s->user, 1))
		goto undo_total;
	return true;

undo_total:
	atomic_long_dec(&cowmap_private_pages);
undo_session:
	atomic_long_dec(&s->npriv);
	return false;
}

void cowmap_session_uncharge(struct cowmap_session *s, long pages)
{
	atomic_long_sub(pages, &s->npriv);
	atomic_long_sub(pages, &cowmap_private_pages);
	cowmap_uncharge(s->user, pages);
}

u64 cowmap_session_mapped_bytes(struct cowmap_session *s)
{
	struct cowmap_vma *cv;
	u64 bytes = 0;

	/* VMAs stay on the list until ->close; their bounds may be moving. */
	spin_lock(&s->vmas_lock);
	list_for_each_entry(cv, &s->vmas, node)
		bytes += READ_ONCE(cv->vma->vm_end) - READ_ONCE(cv->vma->vm_start);
	spin_unlock(&s->vmas_lock);
	return bytes;
}

/*
 * The final drain runs on a workqueue, where no signal can cut its writes
 * short (a killed task may take a second SIGKILL while it exits), and is
 * retried when memory is short: the changes exist nowhere else.
 */
struct final_drain {
	struct work_struct work;
	struct cowmap_session *s;
	struct file *log;
	int err;
};

static void final_drain_fn(struct work_struct *work)
{
	struct final_drain *fd = container_of(work, struct final_drain, work);
	struct cowmap_session *s = fd->s;
	struct cowmap_drain out = {};
	const struct cred *old;
	int tries = 0;

	/*
	 * The binder's credentials, not the kworker's (init's): quotas, the
	 * root reserve and LSM checks apply to the user's log as they would
	 * to the user's own writes.
	 */
	old = override_creds(s->cred);
	mutex_lock(&s->lock);
	do {
		if (tries)
			msleep(20);
		fd->err = cowmap_log_drain(s, fd->log, &s->log_seq, &out);
	} while (fd->err == -ENOMEM && ++tries < 50);
	mutex_unlock(&s->lock);
	revert_creds(old);
}

void cowmap_session_release(struct cowmap_session *s)
{
	struct final_drain fd = { .s = s };
	bool listed;

	mutex_lock(&cowmap_sessions_lock);
	listed = !list_empty(&s->node);
	list_del_init(&s->node);
	if (listed)
		cowmap_sessions_gen++;
	mutex_unlock(&cowmap_sessions_lock);
	if (listed)
		cowmap_netlink_notify_session(s, COWMAP_CMD_SESSION_DEL);

	/*
	 * No VMA is left (each pins the file): nothing can change any more.
	 * s->log stays set for the final drain, so a torn tail left by an
	 * earlier drain is cut before anything is appended.
	 */
	mutex_lock(&s->lock);
	s->dead = true;
	s->final_fsize = rlimit(RLIMIT_FSIZE);
	fd.log = s->log;
	mutex_unlock(&s->lock);

	if (fd.log) {
		INIT_WORK_ONSTACK(&fd.work, final_drain_fn);
		queue_work(system_unbound_wq, &fd.work);
		flush_work(&fd.work);
		destroy_work_on_stack(&fd.work);
		if (fd.err)
			pr_warn_ratelimited("session %llu: final drain to the log failed (%d): undrained changes are lost\n",
					    s->id, fd.err);
		mutex_lock(&s->lock);
		s->log = NULL;
		mutex_unlock(&s->lock);
		fput(fd.log);
	}
	cowmap_session_put(s);
}

static int check_backing(struct file *f)
{
	struct inode *inode = file_inode(f);

	if (S_ISDIR(inode->i_mode))
		return -EISDIR;
	if (!S_ISREG(inode->i_mode))
		return -EINVAL;
	if (!(f->f_mode & FMODE_READ))
		return -EACCES;
	switch (inode->i_sb->s_magic) {
	case EXT4_SUPER_MAGIC:
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (IS_DAX(inode) || IS_SWAPFILE(inode) || !f->f_op->mmap ||
	    !f->f_mapping->a_ops->read_folio)
		return -EOPNOTSUPP;
	return 0;
}

/*
 * Sessions join the list in id order (an id is assigned before the bind
 * writes the log header, so a slow bind joins after later ones): a dump
 * resuming after the last id it sent skips none.
 */
static void session_list_add(struct cowmap_session *s)
{
	struct cowmap_session *pos;

	mutex_lock(&cowmap_sessions_lock);
	list_for_each_entry_reverse(pos, &cowmap_sessions, node) {
		if (pos->id < s->id)
			break;
	}
	/* After @pos, or first if the loop ran off the head. */
	list_add(&s->node, &pos->node);
	cowmap_sessions_gen++;
	mutex_unlock(&cowmap_sessions_lock);
}

/* The path as the binding process sees it, kept for logs and listings. */
static char *path_of(struct file *f)
{
	char *buf, *path, *dup;

	buf = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!buf)
		return NULL;
	path = d_path(&f->f_path, buf, PATH_MAX);
	dup = kstrdup(IS_ERR(path) ? "" : path, GFP_KERNEL_ACCOUNT);
	kfree(buf);
	return dup;
}

/*
 * Bind @s to the file @b->fd (and the log @b->log_fd with COWMAP_BIND_LOG);
 * @b was checked by the caller.  Sets @b->id and @b->size.
 */
int cowmap_session_bind(struct cowmap_session *s, struct cowmap_bind *b,
			u32 ring)
{
	struct file *f, *ro, *lf = NULL;
	struct kstat st;
	int err;

	f = fget(b->fd);
	if (!f)
		return -EBADF;
	err = check_backing(f);
	if (err)
		goto err_put_file;
	if (b->flags & COWMAP_BIND_LOG) {
		lf = cowmap_log_get(b->log_fd, f);
		if (IS_ERR(lf)) {
			err = PTR_ERR(lf);
			lf = NULL;
			goto err_put_file;
		}
	}

	mutex_lock(&s->lock);
	err = -EBUSY;
	if (s->ro)
		goto err_unlock;
	err = vfs_getattr(&f->f_path, &st, STATX_INO | STATX_SIZE,
			  AT_STATX_SYNC_AS_STAT);
	if (err)
		goto err_unlock;
	ro = dentry_open(&f->f_path, O_RDONLY | O_LARGEFILE, current_cred());
	if (IS_ERR(ro)) {
		err = PTR_ERR(ro);
		goto err_unlock;
	}
	err = -ENOMEM;
	s->user = cowmap_user_get(current_euid());
	if (!s->user)
		goto err_put_ro;
	/* The ring's memory counts as the private pages it would hold. */
	s->ring_charge = DIV_ROUND_UP((size_t)ring * sizeof(struct cowmap_event),
				      2 * PAGE_SIZE);
	err = -ENOSPC;
	if (!cowmap_charge(s->user, s->ring_charge))
		goto err_put_user;
	err = cowmap_ring_init(&s->ring, ring);
	if (err)
		goto err_uncharge;
	err = -ENOMEM;
	s->path = path_of(ro);
	if (!s->path)
		goto err_free_ring;

	s->id = atomic64_inc_return(&next_id);
	s->mapping = ro->f_mapping;
	s->dev_nr = new_encode_dev(st.dev);
	s->ino = st.ino;
	s->size = st.size;
	s->bind_time_ns = cowmap_now_ns();
	s->flags = b->flags;
	s->owner = current_euid();
	s->cred = get_current_cred();
	s->tgid = get_task_pid(current, PIDTYPE_TGID);
	s->pid = task_tgid_vnr(current);
	get_task_comm(s->comm, current);
	if (lf) {
		err = cowmap_log_start(s, lf);
		if (err)
			goto err_free_ring;
		s->log = lf;
		lf = NULL;
	}
	/* Publish: mmap may go ahead from here on. */
	smp_store_release(&s->ro, ro);
	mutex_unlock(&s->lock);
	fput(f);

	session_list_add(s);
	cowmap_netlink_notify_session(s, COWMAP_CMD_SESSION_NEW);

	b->id = s->id;
	b->size = s->size;
	return 0;

err_free_ring:
	kfree(s->path);
	s->path = NULL;
	s->mapping = NULL;
	if (s->cred) {
		put_cred(s->cred);
		s->cred = NULL;
	}
	put_pid(s->tgid);
	s->tgid = NULL;
	cowmap_ring_free(&s->ring);
err_uncharge:
	cowmap_uncharge(s->user, s->ring_charge);
err_put_user:
	cowmap_user_put(s->user);
	s->user = NULL;
	s->ring_charge = 0;
err_put_ro:
	fput(ro);
err_unlock:
	mutex_unlock(&s->lock);
	if (lf)
		fput(lf);
err_put_file:
	fput(f);
	return err;
}

long cowmap_do_discard(struct cowmap_session *s, pgoff_t first,
		       pgoff_t last)
{
	unsigned long idx = first;
	struct page *p, *base;
	long n = 0;

	/*
	 * Killable, and cut short by a fatal signal: a netlink DISCARD waits
	 * here behind an ioctl's drain, and zaps every mapped page.
	 */
	if (mutex_lock_killable(&s->lock))
		return -EINTR;
	while (xa_find(&s->pages, &idx, last, XA_PRESENT)) {
		if (fatal_signal_pending(current)) {
			n = -EINTR;
			break;
		}
		p = cowmap_page_get_locked(s, idx);
		if (p) {
			write_lock(&s->publish_lock);
			xa_erase(&s->pages, idx);
			write_unlock(&s->publish_lock);
			if (page_mapped(p))
				cowmap_zap(s, idx, 1, NULL);
			base = (struct page *)page_private(p);
			set_page_private(p, 0);
			unlock_page(p);
			put_page(p);	/* the xarray's reference */
			put_page(p);	/* ours */
			__free_page(base);
			cowmap_session_uncharge(s, 1);
			n++;
		}
		if (idx == last)
			break;
		idx++;
		cond_resched();
	}
	mutex_unlock(&s->lock);
	return n;
}

/* Drain into the bound log (@log_fd < 0) or into a new, empty log file. */
long cowmap_do_drain(struct cowmap_session *s, int log_fd,
		     struct cowmap_drain *d)
{
	struct file *lf = NULL;
	u64 seq = 0;
	long err;

	if (log_fd >= 0) {
		lf = cowmap_log_get(log_fd, s->ro);
		if (IS_ERR(lf))
			return PTR_ERR(lf);
	}
	/* Killable: netlink callers wait here behind an ioctl's drain. */
	err = mutex_lock_killable(&s->lock);
	if (err)
		goto out;
	if (s->dead)
		err = -ENODEV;
	else if (!lf)
		err = s->log ? cowmap_log_drain(s, s->log, &s->log_seq, d) : -EBADFD;
	else
		err = cowmap_log_start(s, lf) ?: cowmap_log_drain(s, lf, &seq, d);
	mutex_unlock(&s->lock);
out:
	if (lf)
		fput(lf);
	return err;
}
