#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The benchmark's payload in the test VM (busybox sh, run as root by the VM's
# /init with $COWMAP_SCRATCH on ext4).  run.sh puts cowmap-bench and
# bench.conf beside this script.
#
# bench.conf sets BENCH_ARGS (arguments of cowmap-bench) and BENCH_PROFILE
# (1: afterwards, trace the fault paths with ftrace's function_graph tracer
# and print the average time per call of the main kernel functions).
cd "$(dirname "$0")" || exit 1
BENCH_ARGS=
BENCH_PROFILE=0
# shellcheck source=/dev/null
[ -f ./bench.conf ] && . ./bench.conf

echo "bench-vm: $(uname -r), $(nproc) CPUs, $(sed -n 's/^MemTotal: *//p' /proc/meminfo)"
echo "bench-vm: cpu $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "bench-vm: fault_around_bytes $(cat /sys/kernel/debug/fault_around_bytes 2>/dev/null || echo '?')," \
	"THP $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"

start=$(date +%s)
# shellcheck disable=SC2086 # word splitting of the argument list
./cowmap-bench -d "$COWMAP_SCRATCH" $BENCH_ARGS
rc=$?
echo "bench-vm: cowmap-bench took $(($(date +%s) - start)) s"
[ "$rc" = 0 ] || { echo "bench-vm: cowmap-bench failed with status $rc"; exit "$rc"; }

if [ "$BENCH_PROFILE" = 1 ]; then
	start=$(date +%s)
	sh ./profile.sh || echo "bench-vm: profile failed (ignored)"
	echo "bench-vm: profile took $(($(date +%s) - start)) s"
fi
exit 0
