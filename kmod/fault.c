// SPDX-License-Identifier: GPL-2.0
/*
 * The fault path: mmap of /dev/cowmap and the VMA operations.
 *
 * A cowmap VMA's vm_file is the session's O_RDONLY clone of the backing file,
 * so the VMA sits in the backing file's i_mmap and every backing page-cache
 * page we map is visible to rmap: reclaim, migration, truncation, hole
 * punching and O_DIRECT invalidation treat it like any shared file mapping.
 * Private copies are order-0 pages owned by the session (never on the LRU,
 * never movable); they are foreign to i_mmap, which only ever zaps them, and
 * a zapped private page simply refaults from the session's xarray.
 *
 * Publishing a private page at an offset happens with the backing folio at
 * that offset locked and ends with a zap of the offset in the session's
 * VMAs, so a backing PTE installed before the publish is zapped and none
 * can be installed after it: ->fault re-checks the xarray under the folio lock, and
 * ->map_pages skips private offsets under publish_lock.
 *
 * The reasons for each of these choices: docs/design.md.
 */
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/highmem.h>
#include <linux/mman.h>
#include <linux/slab.h>
#include <linux/file.h>
#include <linux/sched/signal.h>

#include "internal.h"

#define PMD_PAGES	(PMD_SIZE >> PAGE_SHIFT)

static const struct vm_operations_struct cowmap_vm_ops;

/* VMAs of one mm a zap handles itself; more fall back to the file-wide zap. */
#define ZAP_OWN_MAX	8

/* Does @vma map any of the offsets [idx, idx + nr)? */
static bool vma_covers(struct vm_area_struct *vma, pgoff_t idx,
		       unsigned long nr)
{
	return idx + nr > vma->vm_pgoff &&
	       idx < vma->vm_pgoff + vma_pages(vma);
}

/* Zap the part of [idx, idx + nr) that @vma maps. */
static void zap_in(struct vm_area_struct *vma, pgoff_t idx, unsigned long nr)
{
	pgoff_t first = max_t(pgoff_t, idx, vma->vm_pgoff);
	pgoff_t end = min_t(pgoff_t, idx + nr, vma->vm_pgoff + vma_pages(vma));

	cowmap_zap_vma_range(vma, vma->vm_start +
			     ((first - vma->vm_pgoff) << PAGE_SHIFT),
			     (end - first) << PAGE_SHIFT);
}

/*
 * Collect the session's VMAs other than @cur that map any of [idx, idx +
 * nr), if all of them are VMAs of @mm, whose layout the caller keeps still
 * (its mmap lock).  Returns how many, or -1 if some VMA of the session is
 * elsewhere (another mm, or any other VMA when @mm is NULL) or there are
 * too many.
 */
static int own_vmas(struct cowmap_session *s, pgoff_t idx, unsigned long nr,
		    struct mm_struct *mm, struct vm_area_struct *cur,
		    struct vm_area_struct **own, unsigned long *start)
{
	struct cowmap_vma *cv;
	int n = 0;

	spin_lock(&s->vmas_lock);
	list_for_each_entry(cv, &s->vmas, node) {
		struct vm_area_struct *vma = cv->vma;

		if (vma == cur)
			continue;
		if (!mm || vma->vm_mm != mm || n == ZAP_OWN_MAX) {
			n = -1;
			break;
		}
		if (vma_covers(vma, idx, nr)) {
			own[n] = vma;
			start[n++] = vma->vm_start;
		}
	}
	spin_unlock(&s->vmas_lock);
	return n;
}

/*
 * cowmap_zap_own() zaps [idx, idx + nr) in the session's own VMAs if it
 * can, and returns whether it could; cowmap_zap() falls back to every
 * mapping of the file when it could not.
 *
 * Zap the offsets [idx, idx + nr) in the session's own VMAs: the backing
 * PTE after a copy is published (nr = 1, with the fault's @vmf), or private
 * pages' PTEs to freeze or discard them.  Other
 * mappings of the file are none of our business (zapping them would let
 * any user make every process mapping, say, libc refault).
 *
 * Zapping a VMA needs its page tables to stay: that holds for the faulting
 * VMA (@vmf), and for the VMAs of an mm whose mmap lock is held, once
 * vma_lookup() shows them attached (munmap detaches a VMA under the write
 * lock before it frees its page tables, possibly under the read lock only).
 * A fault holds its mm's mmap lock, or under a VMA lock tries to take it
 * if the session has another VMA;
 * an ioctl tries current's (trylocks: a page lock is held).  When a VMA
 * of the session is in another mm (fork, fd passing), or the lock cannot
 * be had, every VMA of the file is zapped there, which is always safe:
 * unmap_mapping_range() walks i_mmap under its lock.
 */
bool cowmap_zap_own(struct cowmap_session *s, pgoff_t idx, unsigned long nr,
		    struct vm_fault *vmf)
{
	struct vm_area_struct *own[ZAP_OWN_MAX], *cur = NULL;
	unsigned long start[ZAP_OWN_MAX];
	struct mm_struct *mm = NULL;
	bool locked = false;
	int i, n = -1;

	if (vmf) {
		cur = vmf->vma;
		mm = cur->vm_mm;
		/*
		 * Under a VMA lock, the mmap lock is tried only when the
		 * session has a VMA other than @cur: @cur's page tables stay
		 * while we hold its VMA lock, and a VMA that joins the session
		 * now (mmap) has never mapped @idx before the copy we zap for
		 * was published (the walk without @mm says so, n = 0).
		 * Without the lock, mm = NULL makes a VMA seen from now on
		 * fall back to the file-wide zap.
		 */
		if (vmf->flags & FAULT_FLAG_VMA_LOCK) {
			n = own_vmas(s, idx, nr, NULL, cur, own, start);
			if (n < 0)
				locked = mmap_read_trylock(mm);
			if (!locked)
				mm = NULL;
		}
	} else if (current->mm && mmap_read_trylock(current->mm)) {
		mm = current->mm;
		locked = true;
	}

	/* One walk of the session's VMAs unless the first one already did. */
	if (n < 0)
		n = own_vmas(s, idx, nr, mm, cur, own, start);
	if (n >= 0) {
		if (cur && vma_covers(cur, idx, nr))
			zap_in(cur, idx, nr);
		for (i = 0; i < n; i++)
			if (vma_lookup(mm, start[i]) == own[i])
				zap_in(own[i], idx, nr);
	}
	if (locked)
		mmap_read_unlock(mm);
	return n >= 0;
}

void cowmap_zap(struct cowmap_session *s, pgoff_t idx, unsigned long nr,
		struct vm_fault *vmf)
{
	if (!cowmap_zap_own(s, idx, nr, vmf))
		unmap_mapping_range(s->mapping, (loff_t)idx << PAGE_SHIFT,
				    (loff_t)nr << PAGE_SHIFT, 0);
}

/*
 * Returns the private page at @idx locked and referenced, or NULL.  The lock
 * orders us against discard, which unpublishes under the page lock.  The
 * reference is speculative until the xarray is seen to still hold the page:
 * only then is it ours to lock (a freed and reused page is someone else's).
 */
struct page *cowmap_page_get_locked(struct cowmap_session *s, pgoff_t idx)
{
	struct page *p;

	for (;;) {
		rcu_read_lock();
		p = xa_load(&s->pages, idx);
		if (!p) {
			rcu_read_unlock();
			return NULL;
		}
		if (!get_page_unless_zero(p)) {
			rcu_read_unlock();
			continue;
		}
		if (unlikely(xa_load(&s->pages, idx) != p)) {
			rcu_read_unlock();
			put_page(p);
			continue;
		}
		rcu_read_unlock();
		lock_page(p);
		if (likely(xa_load(&s->pages, idx) == p)) {
			VM_WARN_ON_ONCE_PAGE(page_count(p) < 2, p);
			return p;
		}
		unlock_page(p);
		put_page(p);
	}
}

static void free_pair(struct page *copy, struct page *base)
{
	if (copy)
		__free_page(copy);
	if (base)
		__free_page(base);
}

/*
 * A private page and its base snapshot: one order-1 block split in two when
 * one is at hand without reclaim (one trip to the page allocator and one
 * memory-cgroup charge), else two order-0 pages.  The order-1 attempt does
 * not wake kswapd either: an order-1 shortage is no reason to reclaim or
 * compact when two order-0 pages do as well.  Either way each page is
 * freed on its own.
 */
static int alloc_pair(struct page **copy, struct page **base)
{
	const gfp_t gfp = GFP_HIGHUSER | __GFP_ACCOUNT;
	struct page *p;

	p = alloc_pages((gfp & ~__GFP_RECLAIM) | __GFP_NOWARN, 1);
	if (p) {
		split_page(p, 1);
		*copy = p;
		*base = p + 1;
		return 0;
	}
	*copy = alloc_page(gfp);
	*base = alloc_page(gfp);
	if (*copy && *base)
		return 0;
	free_pair(*copy, *base);
	*copy = NULL;
	*base = NULL;
	return -ENOMEM;
}

/*
 * Copy the backing page @src at the faulting offset idx into @copy (and its
 * base snapshot into @base) and publish it.  The caller holds the backing
 * folio's lock, which serializes copies of idx, and has checked that the folio is still in the
 * page cache.  On success the pages belong to the session: @copy's
 * allocation reference becomes the xarray's, and any other reference the
 * caller wants to keep must be taken before the call (after it, a discard
 * may free the page at once).
 *
 * Returns 0, -EEXIST if idx is already private, -ENOSPC at a cap, or
 * -ENOMEM.
 */
static int cow_locked(struct cowmap_session *s, struct vm_fault *vmf,
		      struct page *src, struct page *copy, struct page *base)
{
	pgoff_t idx = vmf->pgoff;
	void *old;

	if (xa_load(&s->pages, idx))
		return -EEXIST;
	if (!cowmap_session_charge(s)) {
		cowmap_count(COWMAP_STAT_CAP_HITS, 1);
		cowmap_ring_push(&s->ring, COWMAP_EVENT_CAP, (u64)idx << PAGE_SHIFT);
		cowmap_netlink_notify_offset(s, COWMAP_CMD_CAP_REACHED,
					     (u64)idx << PAGE_SHIFT);
		return -ENOSPC;
	}
	/* Allocate the slot now: the store below runs under a spinlock. */
	if (xa_reserve(&s->pages, idx, GFP_KERNEL_ACCOUNT)) {
		cowmap_session_uncharge(s, 1);
		return -ENOMEM;
	}

	VM_WARN_ON_ONCE_PAGE(page_private(copy), copy);
	copy_highpage(copy, src);
	copy_highpage(base, copy);
	set_page_private(copy, (unsigned long)base);

	write_lock(&s->publish_lock);
	xa_lock(&s->pages);
	old = __xa_store(&s->pages, idx, copy, GFP_NOWAIT);
	if (!xa_is_err(old))
		__xa_set_mark(&s->pages, idx, COWMAP_CHANGED);
	xa_unlock(&s->pages);
	write_unlock(&s->publish_lock);
	if (xa_is_err(old)) {
		set_page_private(copy, 0);
		xa_release(&s->pages, idx);
		cowmap_session_uncharge(s, 1);
		return xa_err(old);
	}

	/*
	 * Zap backing PTEs of @idx in the session's VMAs.  Installing one
	 * takes the folio lock we hold, so an unmapped folio stays unmapped
	 * and needs no zap (the first write without a read).
	 */
	if (folio_mapped(page_folio(src)))
		cowmap_zap(s, idx, 1, vmf);

	atomic64_inc(&s->cow_faults);
	cowmap_count(COWMAP_STAT_COW_FAULTS, 1);
	cowmap_ring_push(&s->ring, COWMAP_EVENT_COW, (u64)idx << PAGE_SHIFT);
	return 0;
}

static vm_fault_t cow_errno(int err)
{
	switch (err) {
	case -ENOSPC:
		return VM_FAULT_SIGBUS;
	case -ENOMEM:
		return VM_FAULT_OOM;
	default:
		return VM_FAULT_NOPAGE;
	}
}

/* Mark a private page written; its PTE is about to become writable. */
static void mark_changed(struct cowmap_session *s, pgoff_t idx)
{
	if (!xa_get_mark(&s->pages, idx, COWMAP_CHANGED))
		xa_set_mark(&s->pages, idx, COWMAP_CHANGED);
}

/*
 * A write to a page that is not mapped and not private: copy it here, so the
 * first write costs one fault.  The pages are allocated before
 * filemap_fault(), which may drop the mmap or VMA lock and return
 * VM_FAULT_RETRY: then the session must not be touched any more.
 */
static vm_fault_t write_fault(struct cowmap_session *s, struct vm_fault *vmf)
{
	struct page *copy, *base, *src;
	vm_fault_t ret;
	int err;

	if (alloc_pair(&copy, &base))
		return VM_FAULT_OOM;

	ret = filemap_fault(vmf);
	if (unlikely(ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY |
			    VM_FAULT_DONE_COW))) {
		free_pair(copy, base);
		return ret;
	}

	/*
	 * The reference and the lock we return the copy with are taken while
	 * the copy is still ours alone: once published, a discard may erase
	 * and free it, and it waits for the page lock to do so, which we hold
	 * until the core has mapped the page.  Nobody else can see the copy
	 * yet, so its lock bit is set without an atomic operation.
	 */
	get_page(copy);
	__folio_set_locked(page_folio(copy));

	/* filemap_fault() returned the backing page locked, still cached. */
	src = vmf->page;
	err = cow_locked(s, vmf, src, copy, base);
	unlock_page(src);
	put_page(src);
	vmf->page = NULL;
	if (err) {
		unlock_page(copy);
		put_page(copy);
		free_pair(copy, base);
		return cow_errno(err);
	}
	vmf->page = copy;
	return VM_FAULT_LOCKED;
}

static vm_fault_t cowmap_fault(struct vm_fault *vmf)
{
	struct cowmap_session *s = cowmap_vma_session(vmf->vma);
	pgoff_t idx = vmf->pgoff;
	struct page *p;
	vm_fault_t ret;

	p = cowmap_page_get_locked(s, idx);
	if (p) {
		/*
		 * Not for __do_fault()'s poison handling: it would unmap the
		 * offset through the page's (NULL) mapping.
		 */
		if (unlikely(PageHWPoison(p))) {
			unlock_page(p);
			put_page(p);
			return VM_FAULT_HWPOISON;
		}
		vmf->page = p;
		return VM_FAULT_LOCKED;
	}
	if (vmf->flags & FAULT_FLAG_WRITE)
		return write_fault(s, vmf);

	ret = filemap_fault(vmf);
	if (unlikely(ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY |
			    VM_FAULT_DONE_COW)))
		return ret;
	cowmap_count(COWMAP_STAT_READ_FAULTS, 1);

	/* A copy published while we read: never map the backing page. */
	if (unlikely(xa_load(&s->pages, idx))) {
		unlock_page(vmf->page);
		put_page(vmf->page);
		vmf->page = NULL;
		return VM_FAULT_NOPAGE;
	}
	return ret;
}

/*
 * Fault-around: map the backing pages of the non-private offsets.  6.12 calls
 * this under rcu_read_lock(): nothing here may sleep.
 */
static vm_fault_t cowmap_map_pages(struct vm_fault *vmf, pgoff_t start,
				   pgoff_t end)
{
	struct cowmap_session *s = cowmap_vma_session(vmf->vma);
	unsigned long idx;
	pgoff_t from = start;
	vm_fault_t ret = 0;
	void *entry;

	read_lock(&s->publish_lock);
	xa_for_each_range(&s->pages, idx, entry, start, end) {
		if (idx > from)
			ret |= filemap_map_pages(vmf, from, idx - 1);
		from = idx + 1;
	}
	if (from <= end)
		ret |= filemap_map_pages(vmf, from, end);
	read_unlock(&s->publish_lock);
	return ret;
}

/*
 * A write to a present read-only PTE, or the write half of a write fault
 * after ->fault.  @vmf->page is referenced and unlocked.
 */
static vm_fault_t cowmap_page_mkwrite(struct vm_fault *vmf)
{
	struct cowmap_session *s = cowmap_vma_session(vmf->vma);
	struct page *page = vmf->page;
	struct folio *folio = page_folio(page);
	pgoff_t idx = vmf->pgoff;
	struct page *copy, *base;
	void *entry;
	int err;

	entry = xa_load(&s->pages, idx);
	if (entry == page) {
		/* Our own private page: just make it writable. */
		lock_page(page);
		if (unlikely(xa_load(&s->pages, idx) != page)) {
			unlock_page(page);
			return VM_FAULT_NOPAGE;
		}
		mark_changed(s, idx);
		return VM_FAULT_LOCKED;
	}
	if (entry) {
		/* A stale mapping of what is no longer this offset's page. */
		cowmap_zap(s, idx, 1, vmf);
		return VM_FAULT_NOPAGE;
	}

	if (alloc_pair(&copy, &base))
		return VM_FAULT_OOM;
	folio_lock(folio);
	if (unlikely(folio->mapping != s->mapping)) {
		/* Truncated, invalidated, or a discarded private page. */
		folio_unlock(folio);
		free_pair(copy, base);
		return VM_FAULT_NOPAGE;
	}
	err = cow_locked(s, vmf, page, copy, base);
	folio_unlock(folio);
	if (err)
		free_pair(copy, base);
	/* The refault finds the private page and maps it writable. */
	return err ? cow_errno(err) : VM_FAULT_NOPAGE;
}

static void track_vma(struct cowmap_session *s, struct vm_area_struct *vma)
{
	struct cowmap_vma *cv;

	/* ->open cannot fail; the allocation is tiny. */
	cv = kmalloc(sizeof(*cv), GFP_KERNEL_ACCOUNT | __GFP_NOFAIL);
	cv->s = s;
	cv->vma = vma;
	spin_lock(&s->vmas_lock);
	list_add(&cv->node, &s->vmas);
	spin_unlock(&s->vmas_lock);
	vma->vm_private_data = cv;
	/* Each VMA pins the device file, hence the session and the module. */
	get_file(s->dev);
}

static void cowmap_vm_open(struct vm_area_struct *vma)
{
	track_vma(cowmap_vma_session(vma), vma);
}

static void cowmap_vm_close(struct vm_area_struct *vma)
{
	struct cowmap_vma *cv = vma->vm_private_data;
	struct cowmap_session *s = cv->s;

	spin_lock(&s->vmas_lock);
	list_del(&cv->node);
	spin_unlock(&s->vmas_lock);
	kfree(cv);
	fput(s->dev);
}

static bool pmd_congruent(unsigned long start, unsigned long pgoff)
{
	return (((start >> PAGE_SHIFT) - pgoff) & (PMD_PAGES - 1)) == 0;
}

/*
 * A VMA whose start and file offset are congruent modulo the PMD size could
 * get a PMD mapping of a large backing folio over private offsets.
 */
static int cowmap_vm_mremap(struct vm_area_struct *vma)
{
	return pmd_congruent(vma->vm_start, vma->vm_pgoff) ? -EINVAL : 0;
}

static const struct vm_operations_struct cowmap_vm_ops = {
	.open = cowmap_vm_open,
	.close = cowmap_vm_close,
	.mremap = cowmap_vm_mremap,
	.fault = cowmap_fault,
	.map_pages = cowmap_map_pages,
	.page_mkwrite = cowmap_page_mkwrite,
};

int cowmap_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct cowmap_session *s = file->private_data;
	struct file *ro = cowmap_session_bound(s);

	if (!ro)
		return -ENODEV;
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	/*
	 * Never executable: the backing file's mount (noexec) and the LSMs'
	 * mmap hooks are not consulted for the backing file (6.1 exports no
	 * hook a module could call), so nothing may run from it.
	 */
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (pmd_congruent(vma->vm_start, vma->vm_pgoff))
		return -EINVAL;

	/*
	 * VM_DONTEXPAND makes the VMA VM_SPECIAL: never merged (6.1 retries a
	 * merge with the new vm_file after ->mmap), never mlocked, never
	 * collapsed by khugepaged, never grown by mremap.
	 */
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP | VM_NOHUGEPAGE);
	vm_flags_clear(vma, VM_MAYEXEC);
	vma->vm_ops = &cowmap_vm_ops;
	track_vma(s, vma);
	vma_set_file(vma, ro);
	return 0;
}

unsigned long cowmap_get_unmapped_area(struct file *file, unsigned long addr,
				       unsigned long len, unsigned long pgoff,
				       unsigned long flags)
{
	unsigned long got, want, have;

	if (flags & MAP_FIXED)
		return addr;
	if (len > TASK_SIZE - PMD_SIZE)
		return -ENOMEM;
	/* Ask for a PMD more, then shift to a non-congruent start. */
	got = mm_get_unmapped_area(current->mm, NULL, addr, len + PMD_SIZE, 0,
				   flags);
	if (IS_ERR_VALUE(got))
		return got;
	want = (pgoff + 1) & (PMD_PAGES - 1);
	have = (got >> PAGE_SHIFT) & (PMD_PAGES - 1);
	return got + (((want - have) & (PMD_PAGES - 1)) << PAGE_SHIFT);
}
