#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Detect kernel features by looking at the headers, not at version numbers:
# distribution kernels carry backports.  Prints -D flags for compat.h.
src=$1
obj=$2
has() { grep -qs "$1" "$src/$2" "$obj/$2"; }

has 'static inline void vm_flags_set' include/linux/mm.h && echo -DCOWMAP_HAVE_VM_FLAGS_SET
has 'mm_get_unmapped_area(' include/linux/sched/mm.h && echo -DCOWMAP_HAVE_MM_GET_UNMAPPED_AREA
has 'int notify_change(struct mnt_idmap' include/linux/fs.h && echo -DCOWMAP_HAVE_MNT_IDMAP
has 'static inline void zap_vma_pages' include/linux/mm.h && echo -DCOWMAP_HAVE_ZAP_VMA_PAGES
has 'FAULT_FLAG_VMA_LOCK =' include/linux/mm_types.h && echo -DCOWMAP_HAVE_FAULT_FLAG_VMA_LOCK
exit 0
