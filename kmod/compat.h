/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where Debian's 6.1 and 6.12 kernels differ for cowmap.
 * Features are detected by kmod/probe.sh from the kernel headers (not from
 * version numbers: distribution kernels carry backports); each shim supplies
 * the modern name on the older kernel.  kmod/Kbuild includes this file into
 * every source file (-include).
 */
#ifndef _COWMAP_COMPAT_H
#define _COWMAP_COMPAT_H

#include <linux/mm.h>
#include <linux/sched/mm.h>

#if IS_ENABLED(CONFIG_READ_ONLY_THP_FOR_FS)
/*
 * khugepaged's retract_page_tables() would free page tables holding our
 * private PTEs in VMAs of a collapsed file.
 */
#error "cowmap cannot be built for kernels with CONFIG_READ_ONLY_THP_FOR_FS"
#endif

#ifndef COWMAP_HAVE_VM_FLAGS_SET
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

#ifndef COWMAP_HAVE_MM_GET_UNMAPPED_AREA
static inline unsigned long
mm_get_unmapped_area(struct mm_struct *mm, struct file *file, unsigned long addr,
		     unsigned long len, unsigned long pgoff, unsigned long flags)
{
	return mm->get_unmapped_area(file, addr, len, pgoff, flags);
}
#endif

/*
 * Zap one VMA's range: zap_page_range() until 6.3 (the range must lie in
 * the VMA: it would walk on to the next VMAs without their lock), then
 * zap_page_range_single().
 */
#ifdef COWMAP_HAVE_ZAP_VMA_PAGES
#define cowmap_zap_vma_range(vma, addr, size) \
	zap_page_range_single(vma, addr, size, NULL)
#else
#define cowmap_zap_vma_range(vma, addr, size) zap_page_range(vma, addr, size)
#endif

/* Faults under a VMA lock instead of the mmap lock: 6.4+. */
#ifndef COWMAP_HAVE_FAULT_FLAG_VMA_LOCK
#define FAULT_FLAG_VMA_LOCK	0
#endif

/* notify_change() takes the mount's idmap (6.3+) or its user namespace. */
#ifdef COWMAP_HAVE_MNT_IDMAP
#define cowmap_file_idmap(f)	file_mnt_idmap(f)
#else
#define cowmap_file_idmap(f)	file_mnt_user_ns(f)
#endif

#endif /* _COWMAP_COMPAT_H */
