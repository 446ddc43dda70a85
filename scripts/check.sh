#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The whole test suite ('make check', .ci/run).
#
# usage: scripts/check.sh [PHASE...]    (default: every phase)
#
# Runs, in order (only the PHASEs named, if any):
#   build   the module for the host's KDIR (W=1), the userspace (make all)
#           and the benchmark program; any compiler warning fails
#   host    libcowmap's host tests (make check-host)
#   install selftests/install-test.sh: make install/uninstall into a
#           temporary DESTDIR, the installed tree file by file, exported
#           symbols, no test hooks in the release build
#   deb     selftests/deb-test.sh: 'make deb', lintian, the packages' file
#           lists, then dpkg -i on this host (DKMS builds the module for 6.1
#           and 6.12) and the installed module and files booted in the VM
#           (cowmap run + merge); purged at the end
#   style   scripts/style.sh (checkpatch, sparse, shellcheck, version)
#   dkms    selftests/dkms-test.sh (private DKMS tree, 6.1 and 6.12 headers)
#   vm      selftests/vm/run-selftests.sh 6.1 6.12 debug (QEMU; the debug
#           kernel is built and cached on first use, ~17 min)
#   power   selftests/powercut/lw.sh 6.12: power cuts replayed from a
#           dm-log-writes log of merges on ext4 and XFS
# Every phase runs even if an earlier one failed.  Prints each phase's
# result and time, and as the very last line the sum:
#   N passed, N failed[, N skipped]
# Before it, the first lines of each failing phase's log that say what
# failed.  Exit status 1 if anything failed.  Works without a terminal
# (CI=true).
# Phase logs: $BUILD/check/<phase>.log.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
export BUILD
cd "$TOP"
logdir=$BUILD/check
mkdir -p "$logdir"

phases=(build host install deb style dkms vm power)
want=("$@")
for w in "${want[@]}"; do
	[[ " ${phases[*]} " == *" $w "* ]] ||
		{ echo "${0##*/}: unknown phase '$w' (phases: ${phases[*]})" >&2; exit 2; }
done

# selected NAME: whether phase NAME is to run
selected() {
	local w
	[ ${#want[@]} = 0 ] && return 0
	for w in "${want[@]}"; do
		[ "$w" = "$1" ] && return 0
	done
	return 1
}

total_pass=0 total_fail=0 total_skip=0
times=()
results=()
failures=()

# phase NAME COMMAND...: run COMMAND, show and log its output, take the
# counts from its last "[name: ]N passed, N failed[, N skipped]" line (a phase
# without one counts as one test).  A non-zero exit with no failure counted
# adds one failure.
phase() {
	local name=$1 start rc=0 line pass fail skip log=$logdir/$1.log
	selected "$name" || return 0
	shift
	echo
	echo "==== $name: $*"
	start=$SECONDS
	"$@" 2>&1 | tee "$log" || rc=$?
	line=$(grep -aE '^([[:alnum:]_.-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1 || true)
	line=${line#*: }
	if [ -n "$line" ]; then
		pass=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
		fail=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
		skip=$(sed -nE 's/.*, ([0-9]+) skipped.*/\1/p' <<<"$line")
		skip=${skip:-0}
	elif [ "$rc" = 0 ]; then
		pass=1 fail=0 skip=0
	else
		pass=0 fail=0 skip=0
	fi
	if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then
		echo "$name: exited with status $rc"
		fail=1
	fi
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
	times+=("$(printf '%-6s %5d s' "$name" $((SECONDS - start)))")
	results+=("$(printf '%-6s %d passed, %d failed, %d skipped' "$name" "$pass" "$fail" "$skip")")
	if [ "$fail" != 0 ]; then
		# The first lines saying what failed, repeated at the very end
		# (where a CI log's tail shows them).
		while IFS= read -r line; do
			failures+=("$name: ${line:0:300}")
		done < <(grep -avE '^([[:alnum:]_.-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" |
			grep -aE '^not ok|MISMATCH|:Expected |passed, [1-9][0-9]* failed|failed:|kernel error|timed out|TORN|FATAL|: exited with' |
			head -n 12 || true)
	fi
	return 0
}

# The same KDIR the Makefile picks.
kdir=${KDIR:-}
if [ -z "$kdir" ]; then
	if [ -d "/lib/modules/$(uname -r)/build" ]; then
		kdir=/lib/modules/$(uname -r)/build
	else
		kdir=$(find /usr/src -maxdepth 1 -name 'linux-headers-*-amd64' | sort -V | tail -n1)
	fi
fi

build() {
	local log=$logdir/build.make.log rc=0
	if [ -n "$kdir" ] && [ -d "$kdir" ]; then
		echo "building the module against $kdir and the userspace"
		make -C "$TOP" KDIR="$kdir" all >"$log" 2>&1 || rc=$?
	else
		echo "no kernel build tree on this host: building the userspace only" \
			"(the VM phase builds the module for each kernel)"
		make -C "$TOP" userspace >"$log" 2>&1 || rc=$?
	fi
	if [ "$rc" != 0 ]; then
		cat "$log"
		echo "build failed"
		return 1
	fi
	# The benchmark program is not run here, but must build ('make bench').
	make -C "$TOP/selftests/bench" BUILD="$BUILD" TOP="$TOP" >>"$log" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		tail -n 20 "$log"
		echo "building the benchmarks failed"
		return 1
	fi
	if grep -E '(warning|error):' "$log"; then
		echo "build has compiler warnings (above)"
		return 1
	fi
	echo "build ok"
}

host_tests() {
	make -s -C "$TOP" BUILD="$BUILD" check-host
}

start_all=$SECONDS
phase build build
phase host host_tests
phase install "$TOP/selftests/install-test.sh"
phase deb "$TOP/selftests/deb-test.sh"
phase style "$TOP/scripts/style.sh"
phase dkms "$TOP/selftests/dkms-test.sh"
# 6.1 and 6.12 (Debian's kernels), then the debug kernel (KASAN, lockdep,
# kmemleak, fault injection; built once per machine and cached).
read -ra vm_kernels <<<"${COWMAP_CHECK_KERNELS:-6.1 6.12 debug}"
phase vm "$TOP/selftests/vm/run-selftests.sh" "${vm_kernels[@]}"
# Power cuts: every flush point and 12 random crash states (unflushed
# writes dropped or torn) of one merge per filesystem, replayed from a
# dm-log-writes log (POWERCUT_LONG=1 selftests/powercut/lw.sh for every
# point of several merges; selftests/powercut/run.sh still kills QEMU
# mid-merge, by hand).
phase power "$TOP/selftests/powercut/lw.sh" 6.12

echo
echo "==== check summary"
printf '%s\n' "${results[@]}"
echo "---- times"
printf '%s\n' "${times[@]}"
printf '%-6s %5d s\n' total $((SECONDS - start_all))
if [ "${#failures[@]}" != 0 ]; then
	echo "---- what failed (first lines; whole logs in $logdir)"
	printf '%s\n' "${failures[@]}"
fi
line="$total_pass passed, $total_fail failed"
[ "$total_skip" = 0 ] || line="$line, $total_skip skipped"
echo "$line"
[ "$total_fail" = 0 ]
