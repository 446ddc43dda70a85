#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run the cowmap kselftests in QEMU (TCG) on each kernel.
#
# usage: run-selftests.sh [6.1|6.12|debug ...]     (default: all three)
#
# Per kernel: builds cowmap.ko against it (W=1, warnings fail), builds the
# library, CLI and selftests, boots the VM with the module loaded and runs
# every $BUILD/selftests/*_test, then unloads the module (rmmod must
# succeed), loads and unloads it $COWMAP_LOAD_LOOPS (20) times and, on the
# debug kernel, scans for kmemleak leaks.  A run fails on a failed test, a
# missing result line, a timeout, or any kernel warning/oops/BUG/KASAN/
# lockdep/kmemleak/hung-task report on the console; when no test binary
# printed a result; and on each skip not listed for the kernel in
# selftests/expected-skips and each listed skip that did not happen
# (selftests/check-skips.sh; each counts as a failure).
#
# Prints "<kver>: N passed, N failed, N skipped" per kernel; the last line
# is the total "N passed, N failed[, N skipped]".  Exit status 1 on any
# failure.  Logs: $BUILD/vm/<kver>/{console,output}.log.
#
# Environment: COWMAP_VM_TIMEOUT (s, per boot), COWMAP_TEST_TIMEOUT (s, per
# test binary), COWMAP_LOAD_LOOPS, COWMAP_VM_CMDLINE (extra kernel
# parameters), COWMAP_CACHE (debug kernel cache).
set -euo pipefail

# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

kvers=("$@")
[ ${#kvers[@]} -gt 0 ] || kvers=(6.1 6.12 debug)
for k in "${kvers[@]}"; do
	case $k in 6.1 | 6.12 | debug) ;; *) die "unknown kernel '$k' (use 6.1, 6.12 or debug)" ;; esac
done

build_userspace

total_pass=0 total_fail=0 total_skip=0
summary=()
for kver in "${kvers[@]}"; do
	start=$SECONDS
	echo "==== selftests on $kver"
	resolve_kernel "$kver"
	build_module "$kver"
	dir=$BUILD/vm/$kver
	mkdir -p "$dir"
	# One run per kernel and build directory at a time.
	exec 8>"$dir.lock"
	flock -n 8 || { note "another run on $kver uses $dir; waiting"; flock 8; }
	"$VM_DIR/mkinitramfs.sh" --out "$dir/initramfs.cpio" --ko "$KO" \
		--release "$KRELEASE" --kver "$kver" ${KMODDIR:+--moddir "$KMODDIR"} \
		--payload "/opt/cowmap/guest/selftests.sh"
	ok=1
	vm_boot "$kver" "$dir/initramfs.cpio" "$dir" || ok=0
	check_results "$kver" "$dir" "$ok" || ok=0
	pass=$RUN_PASS fail=$RUN_FAIL skip=$RUN_SKIP
	# A broken VM run counts as one more failure, whatever the TAP said.
	[ "$ok" = 1 ] || fail=$((fail + 1))
	line="$kver: $pass passed, $fail failed, $skip skipped ($((SECONDS - start)) s)"
	echo "$line"
	summary+=("$line")
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
	exec 8>&-
done

echo "==== selftests summary"
printf '%s\n' "${summary[@]}"
line="$total_pass passed, $total_fail failed"
[ "$total_skip" = 0 ] || line="$line, $total_skip skipped"
echo "$line"
[ "$total_fail" = 0 ]
