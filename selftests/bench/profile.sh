#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Where the time of a COW fault goes, measured in the guest with ftrace's
# function_graph tracer restricted to a list of kernel functions (those the
# running kernel can trace; static functions the compiler inlined are not
# there).  Runs the fault cases of cowmap-bench once on a small file with
# trace markers around each case, then prints per case and function: calls
# per page, average microseconds per call (inclusive of traced and
# untraced callees) and microseconds per page.  Tracing slows every traced
# call, so compare functions with each other, not with the untraced table.
cd "$(dirname "$0")" || exit 1
T=/sys/kernel/tracing
[ -f $T/current_tracer ] || T=/sys/kernel/debug/tracing
[ -f $T/current_tracer ] || { echo "profile: no tracefs"; exit 0; }
PAGES_MB=${PROFILE_MB:-1}

FUNCS="handle_mm_fault cowmap_fault cowmap_page_mkwrite cowmap_map_pages
cowmap_page_get_locked cowmap_zap cowmap_ring_push cowmap_diff_ioctl
filemap_fault filemap_map_pages unmap_mapping_range zap_page_range_single
flush_tlb_mm_range alloc_pages alloc_pages_noprof __xa_cmpxchg __xa_store
copy_mc_to_kernel __folio_lock finish_fault __mem_cgroup_charge
mem_cgroup_charge folio_add_lru lru_cache_add page_add_new_anon_rmap
folio_add_new_anon_rmap page_add_file_rmap folio_add_file_rmap_ptes
wp_page_copy do_wp_page do_cow_fault do_shared_fault do_read_fault
do_fault_around ktime_get_real_ts64 memcpy_from_page __crc32c_le
crc32c_le_base _copy_to_user"
CASES=${PROFILE_CASES:-"cowmap first-write|MAP_PRIVATE first-write|cowmap write-after-read|MAP_PRIVATE write-after-read|cowmap refault private (no copy)|cowmap read seq|MAP_SHARED read seq|cowmap read seq, no fault-around|MAP_SHARED read seq, no fault-around|DIFF sparse"}

echo 0 >$T/tracing_on
echo >$T/trace
echo nop >$T/current_tracer
: >$T/set_ftrace_filter
# One pass over the (long) list of traceable functions.
awk -v want="$FUNCS" 'BEGIN { n = split(want, w, /[ \n]+/); for (i = 1; i <= n; i++) ok[w[i]] = 1 }
	{ if ($1 in ok && !seen[$1]++) print $1 }' $T/available_filter_functions >/tmp/profile-funcs
n=0
while read -r f; do
	echo "$f" >>$T/set_ftrace_filter 2>/dev/null && n=$((n + 1))
done </tmp/profile-funcs
[ "$n" -gt 0 ] || { echo "profile: no traceable function found"; exit 0; }
echo "## profile: function_graph over $n kernel functions, $PAGES_MB MiB file, one run per case"
echo "traced: $(tr '\n' ' ' </tmp/profile-funcs | sed 's/ *$//')"
echo 32768 >$T/buffer_size_kb
echo function_graph >$T/current_tracer
echo 1 >$T/options/funcgraph-tail 2>/dev/null
echo 0 >$T/options/funcgraph-irqs 2>/dev/null

COWMAP_BENCH_MARK=1 T=$T PAGES_MB=$PAGES_MB CASES="$CASES" sh -c '
	echo $$ >$T/set_ftrace_pid
	echo 1 >$T/tracing_on
	exec ./cowmap-bench -d "$COWMAP_SCRATCH" -r 1 -f $PAGES_MB -D $PAGES_MB -c "$CASES" fault read drain >/dev/null'
echo 0 >$T/tracing_on
echo >$T/set_ftrace_pid

# Lines: " 1)   3.210 us    |      filemap_fault();", " 1) + 12.3 us | } /* name */",
# markers " 1)   |  /* BENCH-BEGIN name */".
awk '
/BENCH-BEGIN/ {
	s = $0; sub(/.*BENCH-BEGIN /, "", s); sub(/ *\*\/.*/, "", s)
	cur = s; order[++ncase] = s; next
}
/BENCH-END/ {
	s = $0; sub(/.*BENCH-END /, "", s); sub(/ *\*\/.*/, "", s)
	pages[cur] = s + 0; cur = ""; next
}
cur != "" && / us +\|/ {
	line = $0
	if (match(line, /[0-9]+\.[0-9]+ us/) == 0) next
	d = substr(line, RSTART, RLENGTH - 3) + 0
	rest = substr(line, RSTART + RLENGTH)
	sub(/^[^|]*\| */, "", rest)
	if (rest ~ /^}/) { name = rest; sub(/^} *\/\* */, "", name); sub(/ *\*\/.*/, "", name) }
	else { name = rest; sub(/\(\).*/, "", name) }
	gsub(/ /, "", name)
	k = cur SUBSEP name
	if (!(k in calls)) { fn[cur, ++nf[cur]] = name }
	calls[k]++; tot[k] += d
}
END {
	printf "\n| case | function | calls/page | avg us/call | us/page |\n|---|---|---|---|---|\n"
	for (i = 1; i <= ncase; i++) {
		c = order[i]; p = pages[c]; if (p <= 0) p = 1
		for (j = 1; j <= nf[c]; j++) {
			f = fn[c, j]; k = c SUBSEP f
			printf "| %s | %s | %.2f | %.2f | %.2f |\n", c, f, calls[k] / p, tot[k] / calls[k], tot[k] / p
		}
	}
}' $T/trace
echo nop >$T/current_tracer
echo >$T/trace
: >$T/set_ftrace_filter
echo 1408 >$T/buffer_size_kb
