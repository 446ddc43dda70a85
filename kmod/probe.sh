#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Detect kernel features by looking at the headers, not at version numbers:
# distribution kernels carry backports.  Prints -D flags for compat.h.
src=$1
obj=$2
has() { grep -qs "$1" "$src/$2" "$obj/$2"; }

has 'static inline void vm_flags_set' include/linux/mm.h && echo -DCOWMAP_HAVE_VM_FLAGS_SET
has 'FAULT_FLAG_VMA_LOCK' include/linux/mm_types.h && echo -DCOWMAP_HAVE_VMA_LOCK
has 'mm_get_unmapped_area(' include/linux/sched/mm.h && echo -DCOWMAP_HAVE_MM_GET_UNMAPPED_AREA
has 'int security_mmap_backing_file' include/linux/security.h && echo -DCOWMAP_HAVE_MMAP_BACKING_FILE
has 'fgf_t' include/linux/pagemap.h && echo -DCOWMAP_HAVE_FGF_T
has 'shrinker_alloc(' include/linux/shrinker.h && echo -DCOWMAP_HAVE_SHRINKER_ALLOC
has 'int genl_split_ops\|struct genl_split_ops' include/net/genetlink.h && echo -DCOWMAP_HAVE_GENL_SPLIT_OPS
exit 0
