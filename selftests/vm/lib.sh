# SPDX-License-Identifier: GPL-2.0
# Shared helpers of the VM scripts; sourced, not run.
# shellcheck shell=bash

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$VM_DIR/../.." && pwd)
BUILD=${BUILD:-$TOP/build}
COWMAP_CACHE=${COWMAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cowmap}
LINUX_SOURCE_TARBALL=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}

die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

note() {
	echo "${0##*/}: $*" >&2
}

# Version of the linux-source-6.1 package (part of cache keys).
linux_source_version() {
	[ -f "$LINUX_SOURCE_TARBALL" ] ||
		die "$LINUX_SOURCE_TARBALL missing: run 'make deps' (package linux-source-6.1)"
	dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null ||
		stat -c '%s-%Y' "$LINUX_SOURCE_TARBALL"
}

# The directory holding the kselftest headers extracted from linux-source.
ksft_dir() {
	echo "$BUILD/ksft"
}

# Extract the kselftest harness headers into $BUILD/ksft (once per source
# version).
extract_ksft() {
	local dir ver
	dir=$(ksft_dir)
	ver=$(linux_source_version)
	if [ -f "$dir/kselftest_harness.h" ] && [ "$(cat "$dir/.version" 2>/dev/null)" = "$ver" ]; then
		return 0
	fi
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	tar -xJf "$LINUX_SOURCE_TARBALL" -C "$dir.tmp" --strip-components=4 \
		linux-source-6.1/tools/testing/selftests/kselftest_harness.h \
		linux-source-6.1/tools/testing/selftests/kselftest.h ||
		die "cannot extract the kselftest headers from $LINUX_SOURCE_TARBALL"
	echo "$ver" >"$dir.tmp/.version"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
}

# Resolve KVER (6.1, 6.12 or debug) into:
#   KIMAGE   the bzImage to boot
#   KDIR     the kernel build tree to build the module against
#   KMODDIR  /lib/modules/<release> of a Debian kernel (empty for debug)
#   KRELEASE the kernel release string
resolve_kernel() {
	local kver=$1 img
	KMODDIR=
	case $kver in
	6.1)
		img=$(find /boot -maxdepth 1 -name 'vmlinuz-6.1.0-*-amd64' | sort -V | tail -n1)
		;;
	6.12)
		img=$(find /boot -maxdepth 1 -name 'vmlinuz-6.12.*+deb12-amd64' | sort -V | tail -n1)
		;;
	debug)
		KDIR=$("$VM_DIR/build-debug-kernel.sh") || die "debug kernel build failed"
		KIMAGE=$KDIR/arch/x86/boot/bzImage
		KRELEASE=$(cat "$KDIR/include/config/kernel.release")
		return 0
		;;
	*)
		die "unknown kernel '$kver' (use 6.1, 6.12 or debug)"
		;;
	esac
	[ -n "$img" ] || die "no Debian $kver kernel in /boot: run 'make deps'"
	[ -r "$img" ] || die "$img is not readable"
	# shellcheck disable=SC2034 # for the caller
	KIMAGE=$img
	KRELEASE=${img#/boot/vmlinuz-}
	KDIR=/usr/src/linux-headers-$KRELEASE
	KMODDIR=/lib/modules/$KRELEASE
	[ -d "$KDIR" ] || die "$KDIR missing: install linux-headers-$KRELEASE ('make deps')"
	[ -f "$KMODDIR/modules.dep" ] || die "$KMODDIR/modules.dep missing: reinstall linux-image-$KRELEASE"
}

# Build cowmap.ko for the resolved kernel in $BUILD/kmod-<kver>, with W=1;
# any compiler warning fails.  Sets KO.
build_module() {
	local kver=$1 dir log
	dir=$BUILD/kmod-$kver
	log=$dir.log
	mkdir -p "$dir"
	# One build per tree at a time (vm-run and run-selftests may overlap).
	exec 9>"$dir.lock"
	flock 9
	make -s -C "$TOP/kmod" srctree DEST="$(realpath -m "$dir")" ||
		die "cannot copy the module sources to $dir"
	if ! make -C "$KDIR" M="$dir/kmod" W=1 modules >"$log" 2>&1; then
		cat "$log" >&2
		die "module build for $kver failed (KDIR=$KDIR)"
	fi
	if grep -E '(warning|error):' "$log" >&2; then
		die "module build for $kver has compiler warnings (see above; full log $log)"
	fi
	KO=$dir/kmod/cowmap.ko
	[ -f "$KO" ] || die "no $KO after the build"
	exec 9>&-
}

# Build libcowmap, the CLI (when their sources exist), the examples and the
# selftests.
build_userspace() {
	if compgen -G "$TOP/lib/*.c" >/dev/null; then
		make -s -C "$TOP" BUILD="$BUILD" lib || die "building libcowmap failed"
	fi
	if compgen -G "$TOP/cli/*.c" >/dev/null; then
		make -s -C "$TOP" BUILD="$BUILD" cli || die "building the CLI failed"
		# The library and CLI with test hooks (COWMAP_TEST_CRASH_AT),
		# for the VM.
		make -s -C "$TOP" BUILD="$BUILD" test-build || die "building the test CLI failed"
	fi
	make -s -C "$TOP" BUILD="$BUILD" examples || die "building the examples failed"
	make -s -C "$TOP/selftests" BUILD="$BUILD" TOP="$TOP" ||
		die "building the selftests failed"
}

# Kernel console lines that fail a run.  The console (ttyS0) carries only
# kernel messages and /init's own lines, never the payload's output.
KERNEL_ERROR_RE='-----------\[ cut here \]|WARNING:|BUG:|Oops|general protection fault|Kernel panic|kernel BUG at|KASAN|UBSAN|Call Trace|possible circular locking|possible recursive locking|inconsistent lock state|possible irq lock inversion|suspicious RCU usage|bad unlock balance|held lock freed|lock held when returning|lockdep is turned off|suspected memory leak|unreferenced object|leak detector disabled|blocked for more than|self-detected stall|detected stalls|list_add corruption|list_del corruption|refcount_t:|Unable to handle|invalid opcode|stack-protector|double fault|cowmap-vm: FATAL'

# Kernel parameters of every test VM: any warning is fatal, and every
# message reaches the console whatever its level (ignore_loglevel: a test
# lowering the console log level cannot hide a KERN_WARNING lockdep report
# from the console scan).  The RCU stall
# timeout is raised: TCG on a busy host is slow, and a real stall (a loop
# with preemption off) lasts longer anyway.  TCG on a loaded host can also
# miss the IO-APIC timer check at boot (no_timer_check).
# shellcheck disable=SC2034 # used by the scripts that source this file
VM_CMDLINE_BASE="console=ttyS0 ignore_loglevel panic_on_warn=1 oops=panic panic=-1 rcupdate.rcu_cpu_stall_timeout=120 no_timer_check"

# console_errors LOG: print "line:text" for each kernel error in LOG; status
# 0 if there is one.  Two exceptions.  While a test has armed fault
# injection (it writes "cowmap-selftest: fault injection armed" and
# "... disarmed" to /dev/kmsg), the allocator's own report of an injected
# failure ("page allocation failure:" or "vmalloc error:" followed by a
# stack dump) is the expected outcome, not an error.  While a test expects
# a memory cgroup's OOM ("cowmap-selftest: OOM expected" ... "OOM window
# closed"), the "Call Trace:" of an OOM report (within 8 lines of its
# "invoked oom-killer") is not one either.  Any other report in those
# windows (WARNING, BUG, KASAN, lockdep...) still is.  The accepted reports
# are counted on stderr.
console_errors() {
	RE=$KERNEL_ERROR_RE awk '
		/cowmap-selftest: fault injection armed/ { inj = 1 }
		/cowmap-selftest: fault injection disarmed/ { inj = 0 }
		inj && /page allocation failure:|vmalloc error:/ { alloc = NR; n++ }
		inj && alloc && NR - alloc <= 8 && /Call Trace:/ { next }
		/cowmap-selftest: OOM expected/ { oomw = 1 }
		/cowmap-selftest: OOM window closed/ { oomw = 0 }
		oomw && /invoked oom-killer/ { oom = NR; nooms++ }
		oomw && oom && NR - oom <= 8 && /Call Trace:/ { next }
		$0 ~ ENVIRON["RE"] { print NR ":" $0; found = 1 }
		END {
			if (n)
				printf "%d allocation-failure reports during fault injection (expected)\n", n > "/dev/stderr"
			if (nooms)
				printf "%d OOM reports while a test expected them\n", nooms > "/dev/stderr"
			exit !found
		}' "$1"
}

# early_boot_crash CONSOLE: true when CONSOLE shows a kernel error before
# the kernel ran init ("Run /init as init process"): the kernel died while
# booting, before any userspace ran, so before cowmap.ko was loaded and
# before any test touched a disk.  Under TCG with 2 vCPUs this happens,
# rarely, in Debian's own kernel ("Oops: int3" in a timer interrupt 2 s
# into boot: a CPU still ran an int3 that another CPU's text_poke_bp() had
# already removed; QEMU's cross-vCPU handling of self-modifying code).
# The runners then boot once more and say so (first console kept as
# console*.boot1.log); a second such crash, or any error after init
# started, fails the run.
early_boot_crash() {
	RE=$KERNEL_ERROR_RE awk '
		/Run .* as init process/ { init = 1; exit }
		$0 ~ ENVIRON["RE"] { found = 1; exit }
		END { exit !(found && !init) }' "$1"
}

# boot_twice WHAT CONSOLE CMD...: run CMD, one boot that writes CONSOLE;
# after an early_boot_crash, print its first errors, keep CONSOLE as
# CONSOLE.boot1.log and run CMD once more.  CMD's status is not looked at.
boot_twice() {
	local what=$1 console=$2

	shift 2
	"$@" || true
	early_boot_crash "$console" || return 0
	echo "$what: the kernel crashed while booting, before init ran (not a test, the module is not loaded yet); booting once more:" >&2
	grep -aEn -m 3 -- "$KERNEL_ERROR_RE" "$console" | sed "s/^/$what: first boot: /" >&2 || true
	mv "$console" "${console%.log}.boot1.log"
	"$@" || true
}

# vm_qemu DIR MEM TIMEOUT CMDLINE INITRD: one boot of vm_boot's VM, fresh
# scratch disks; QEMU's exit status in VM_QEMU_RC.
vm_qemu() {
	local dir=$1 mem=$2 timeout=$3 cmdline=$4 initrd=$5 qpid tailpid
	rm -f "$dir"/*.img
	truncate -s "${COWMAP_SCRATCH_SIZE:-4G}" "$dir/ext4.img"
	truncate -s 1G "$dir/xfs.img" "$dir/btrfs.img"
	mkfs.ext4 -q -F -L cowmap-ext4 "$dir/ext4.img" || die "mkfs.ext4 failed"
	mkfs.xfs -q -f -L cowmap-xfs "$dir/xfs.img" || die "mkfs.xfs failed"
	mkfs.btrfs -q -f -L cowmap-btrfs "$dir/btrfs.img" >/dev/null || die "mkfs.btrfs failed"

	: >"$dir/console.log"
	: >"$dir/output.log"
	timeout -k 10 "$timeout" qemu-system-x86_64 \
		-accel tcg -cpu max -smp 2 -m "$mem" \
		-nographic -no-reboot -nodefaults -monitor none \
		-kernel "$KIMAGE" -initrd "$initrd" -append "$cmdline" \
		-serial "file:$dir/console.log" -serial "file:$dir/output.log" \
		-drive "file=$dir/ext4.img,if=virtio,format=raw,cache=unsafe" \
		-drive "file=$dir/xfs.img,if=virtio,format=raw,cache=unsafe" \
		-drive "file=$dir/btrfs.img,if=virtio,format=raw,cache=unsafe" \
		</dev/null >"$dir/qemu.log" 2>&1 &
	qpid=$!
	# Interrupted (^C, a killed make check): take QEMU down with us.
	# shellcheck disable=SC2064 # expand qpid now
	trap "kill $qpid 2>/dev/null" EXIT
	# shellcheck disable=SC2064
	trap "kill $qpid 2>/dev/null; exit 130" INT TERM HUP
	if [ "${COWMAP_VM_QUIET:-0}" = 1 ]; then
		tailpid=
	else
		tail -n +1 -F --pid="$qpid" "$dir/output.log" 2>/dev/null | tr -d '\r' |
			grep -av --line-buffered '^COWMAP-RESULT: ' &
		tailpid=$!
	fi
	VM_QEMU_RC=0
	wait "$qpid" || VM_QEMU_RC=$?
	trap - EXIT INT TERM HUP
	[ -z "$tailpid" ] || wait "$tailpid" || true
	rm -f "$dir"/*.img
	tr -d '\r' <"$dir/console.log" >"$dir/console.log.tmp" && mv "$dir/console.log.tmp" "$dir/console.log"
	tr -d '\r' <"$dir/output.log" >"$dir/output.log.tmp" && mv "$dir/output.log.tmp" "$dir/output.log"
}

# vm_boot KVER INITRD DIR: boot the resolved kernel with INITRD, scratch
# disks and logs in DIR (console.log: ttyS0, output.log: ttyS1), streaming
# the payload's output to stdout.  Sets VM_STATUS (payload exit status) and
# VM_PASS/VM_FAIL/VM_SKIP/VM_LEAKS from the result line.  Returns 0 if the
# VM ran cleanly (result line present, no kernel error, no timeout); else
# prints why and the console's tail and returns 1.
vm_boot() {
	local kver=$1 initrd=$2 dir=$3 mem timeout cmdline rc line problems=()
	# shellcheck disable=SC2034 # results for the caller
	VM_STATUS='' VM_PASS=0 VM_FAIL=0 VM_SKIP=0 VM_LEAKS=0
	mkdir -p "$dir"
	rm -f "$dir"/console.log "$dir"/console.boot1.log "$dir"/output.log "$dir"/*.img

	mem=2G
	timeout=${COWMAP_VM_TIMEOUT:-1800}
	cmdline="$VM_CMDLINE_BASE hung_task_panic=1 rdinit=/init"
	if [ "$kver" = debug ]; then
		mem=3G
		timeout=${COWMAP_VM_TIMEOUT:-3600}
		# pci=noacpi: the AML interpreter under KASAN and TCG hits
		# ACPICA's 30 s loop timeout in _PRT, once per PCI device.
		cmdline="$cmdline kmemleak=on pci=noacpi"
		# A freed page in use is caught where it happens (debug.config).
		cmdline="$cmdline debug_pagealloc=on page_poison=1 page_owner=on"
		# KASAN, lockdep and kmemleak under TCG run ~10x slower: the
		# heaviest tests do less there (COWMAP_VM_CMDLINE overrides).
		cmdline="$cmdline ${COWMAP_DEBUG_WORKLOAD-FUZZ_ITERS=0.25 LOAD_SESSIONS=16 LOAD_PAGES=32 STRESS_OPS=600 COMMIT_KILLS=12 COWMAP_TIMEOUT_SCALE=8}"
	fi
	cmdline="$cmdline ${COWMAP_VM_CMDLINE:-}"

	PATH=$PATH:/sbin:/usr/sbin
	boot_twice "vm: $kver" "$dir/console.log" \
		vm_qemu "$dir" "$mem" "$timeout" "$cmdline" "$initrd"
	rc=$VM_QEMU_RC

	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		problems+=("timed out after ${timeout}s (COWMAP_VM_TIMEOUT)")
	elif [ "$rc" != 0 ]; then
		problems+=("qemu exited with status $rc: $(tail -n 5 "$dir/qemu.log")")
	fi
	line=$(grep -a '^COWMAP-RESULT: ' "$dir/output.log" | tail -n1 || true)
	if [ -z "$line" ]; then
		problems+=("no result line from the guest")
	else
		VM_STATUS=$(sed -nE 's/.* status=([0-9]+).*/\1/p' <<<"$line")
		# shellcheck disable=SC2034 # results for the caller
		VM_PASS=$(sed -nE 's/.* pass=([0-9]+).*/\1/p' <<<"$line")
		# shellcheck disable=SC2034
		VM_FAIL=$(sed -nE 's/.* fail=([0-9]+).*/\1/p' <<<"$line")
		# shellcheck disable=SC2034
		VM_SKIP=$(sed -nE 's/.* skip=([0-9]+).*/\1/p' <<<"$line")
		VM_LEAKS=$(sed -nE 's/.* kmemleak=([0-9]+).*/\1/p' <<<"$line")
		[ -n "$VM_STATUS" ] || problems+=("malformed result line: $line")
		[ "${VM_LEAKS:-0}" = 0 ] || problems+=("kmemleak: $VM_LEAKS suspected leaks")
	fi
	if console_errors "$dir/console.log" >"$dir/errors.log"; then
		problems+=("kernel errors on the console:")
	fi
	if [ ${#problems[@]} -eq 0 ]; then
		return 0
	fi
	{
		echo "---- $kver: console (tail) ----"
		tail -n "${COWMAP_VM_LOG_LINES:-120}" "$dir/console.log"
		echo "---- $kver: payload output (tail) ----"
		tail -n 15 "$dir/output.log"
		echo "---- $kver: VM FAILED ----"
		printf '%s\n' "${problems[@]}"
		if [ -s "$dir/errors.log" ]; then
			head -n 40 "$dir/errors.log"
		fi
		echo "full logs: $dir/console.log $dir/output.log"
	} >&2
	return 1
}

# check_results KVER DIR OK: the host's checks of a run of guest/selftests.sh
# whose output is DIR/output.log, after vm_boot (OK: 1 if it returned 0; its
# VM_PASS/VM_FAIL/VM_SKIP/VM_STATUS).  Sets RUN_PASS, RUN_FAIL and RUN_SKIP
# from the host's own count of the TAP lines, RUN_FAIL including one per
# unexpected skip and per listed skip that did not happen
# (selftests/check-skips.sh against selftests/expected-skips, its report in
# DIR/skips.log).  Returns 1 (with the reason on stderr) when OK is not 1,
# the guest's counts differ from the host's, the guest's runner failed with
# no failed test, or no test binary printed a result (the guest's own "vm:"
# results do not count).
check_results() {
	local kver=$1 dir=$2 ok=$3 log=$2/output.log ran bad rc=0
	RUN_PASS=$(grep -aE '^ok( |$)' "$log" | grep -viEc '# *skip' || true)
	RUN_SKIP=$(grep -aE '^ok( |$)' "$log" | grep -iEc '# *skip' || true)
	RUN_FAIL=$(grep -aEc '^not ok( |$)' "$log" || true)
	ran=$(grep -aE '^(not )?ok( |$)' "$log" | grep -vcE '^(not )?ok [0-9]+ vm: ' || true)
	[ "$ok" = 1 ] || return 1
	if [ "$RUN_PASS/$RUN_FAIL/$RUN_SKIP" != "$VM_PASS/$VM_FAIL/$VM_SKIP" ]; then
		echo "$kver: the guest counted $VM_PASS/$VM_FAIL/$VM_SKIP (pass/fail/skip), the host read $RUN_PASS/$RUN_FAIL/$RUN_SKIP: output lost" >&2
		ok=0
	elif [ "$VM_STATUS" != 0 ] && [ "$RUN_FAIL" = 0 ]; then
		echo "$kver: the guest's test runner exited with status $VM_STATUS" >&2
		ok=0
	elif [ "$ran" = 0 ]; then
		echo "$kver: no test ran" >&2
		ok=0
	fi
	# Every skip must be an expected one, and every expected one must
	# have happened.
	"$TOP/selftests/check-skips.sh" "$kver" "$log" >"$dir/skips.log" 2>&1 || rc=$?
	bad=$(grep -c '^not ok' "$dir/skips.log" || true)
	RUN_FAIL=$((RUN_FAIL + bad))
	# A malformed list with nothing reported fails the run.
	[ "$rc" = 0 ] || [ "$bad" != 0 ] || ok=0
	grep -v '^# skip expected' "$dir/skips.log" | sed -E "s/^skips: /$kver: skips: /" || true
	[ "$ok" = 1 ]
}
