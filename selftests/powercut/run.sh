#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Power cuts during merges, on the host: boot the test VM with persistent
# disks (ext4 and XFS), start a large merge (libcowmap's in-place,
# journaled merge of several logs), kill QEMU itself with SIGKILL at a
# random moment, boot again on the same disks, run cowmap_recover() on the
# file (what 'cowmap recover FILE' does) and check it is byte for byte the
# old or the new contents (checksums computed before the merge, from the
# test's own model of the changes).
#
# usage: selftests/powercut/run.sh [6.1|6.12|debug]     (default 6.1)
#
# Environment: POWERCUT_CYCLES (10 power cuts; one more cycle first, not
# cut, times the merge, so that cuts land in [0, 1.1 x merge time], every
# other one late in the merge, where its journal is durable),
# POWERCUT_SEED, POWERCUT_FS ("ext4 xfs", used in turn), POWERCUT_MIB (64:
# file size), POWERCUT_CHANGE_MIB (24: bytes changed by the logs),
# POWERCUT_LOGS (4).  Logs in $BUILD/powercut/.
#
# Prints one line per cycle and "powercut: N passed, N failed" last; exit
# status 1 if a file was torn (or a boot failed).  Each cycle is one boot
# (30 s under TCG on an idle 2-core host, 90 s on a busy one, plus the
# merge); the guest's /init is replaced (an appended cpio) by a lean one
# that loads no cowmap.ko and no btrfs.  Kernel parameters: the test VM's
# (VM_CMDLINE_BASE in selftests/vm/lib.sh: warnings are fatal; the RCU
# stall timeout is raised for a starved TCG vCPU on a busy host).
set -euo pipefail

# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
# shellcheck source=selftests/powercut/common.sh
. "$(dirname "$0")/common.sh"

PC_DIR=$(cd "$(dirname "$0")" && pwd)
kver=${1:-6.1}
cuts=${POWERCUT_CYCLES:-10}
cycles=$((cuts + 1))		# cycle 0 times the merge and is not cut
seed=${POWERCUT_SEED:-$(( $(date +%s) % 100000 ))}
read -r -a fslist <<<"${POWERCUT_FS:-ext4 xfs}"
mib=${POWERCUT_MIB:-64}
change=${POWERCUT_CHANGE_MIB:-24}
nlogs=${POWERCUT_LOGS:-4}
out=$BUILD/powercut
start_all=$SECONDS

pc_build "$kver" "$out"
install -m 0755 "$PC_DIR/guest.sh" "$out/pl/powercut/guest.sh"
"$VM_DIR/mkinitramfs.sh" --out "$out/initramfs.cpio" --ko "$KO" --release "$KRELEASE" \
	${KMODDIR:+--moddir "$KMODDIR"} --payload-dir "$out/pl/powercut" --payload true
# Our /init, appended: the kernel unpacks concatenated archives in order.
mkdir -p "$out/initroot"
install -m 0755 "$PC_DIR/init" "$out/initroot/init"
(cd "$out/initroot" && echo init | cpio --quiet -o -H newc -R 0:0) >>"$out/initramfs.cpio"

PATH=$PATH:/sbin:/usr/sbin
truncate -s 2G "$out/ext4.img"
truncate -s 2G "$out/xfs.img"
mkfs.ext4 -q -F "$out/ext4.img" || die "mkfs.ext4 failed"
mkfs.xfs -q -f "$out/xfs.img" || die "mkfs.xfs failed"

mem=2G
[ "$kver" = debug ] && mem=4G

# boot_once CYCLE NEXT DELAY: boot once; kill QEMU DELAY seconds after
# POWERCUT-READY (empty DELAY: let it run to the end).  Sets BOOT_LOG,
# READY_AT, MERGED_AT.
boot_once() {
	local cycle=$1 next=$2 delay=$3 fs prev qpid t0 now
	fs=${fslist[$((cycle % ${#fslist[@]}))]}
	prev=${fslist[$(((cycle + ${#fslist[@]} - 1) % ${#fslist[@]}))]}
	BOOT_LOG=$out/output.$cycle.log
	: >"$BOOT_LOG"
	: >"$out/console.$cycle.log"
	READY_AT='' MERGED_AT=''
	qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "$mem" \
		-nographic -no-reboot -nodefaults -monitor none \
		-kernel "$KIMAGE" -initrd "$out/initramfs.cpio" \
		-append "$VM_CMDLINE_BASE rdinit=/init PC_CYCLE=$cycle PC_NEXT=$next PC_FS=$fs PC_PREV_FS=$prev PC_SEED=$((seed + cycle)) PC_MIB=$mib PC_LOGS=$nlogs PC_CHANGE_MIB=$change" \
		-serial "file:$out/console.$cycle.log" -serial "file:$BOOT_LOG" \
		-drive "file=$out/ext4.img,if=virtio,format=raw,cache=writeback" \
		-drive "file=$out/xfs.img,if=virtio,format=raw,cache=writeback" \
		</dev/null >"$out/qemu.$cycle.log" 2>&1 &
	qpid=$!
	t0=$(date +%s.%N)
	while kill -0 "$qpid" 2>/dev/null; do
		now=$(date +%s.%N)
		if [ -z "$READY_AT" ] && grep -q POWERCUT-READY "$BOOT_LOG"; then
			READY_AT=$now
		fi
		if [ -z "$MERGED_AT" ] && grep -q POWERCUT-MERGED "$BOOT_LOG"; then
			MERGED_AT=$now
		fi
		if [ -n "$READY_AT" ] && [ -n "$delay" ] &&
			awk -v a="$now" -v b="$READY_AT" -v d="$delay" 'BEGIN { exit !(a - b >= d) }'; then
			kill -KILL "$qpid" 2>/dev/null || true
			break
		fi
		if awk -v a="$now" -v b="$t0" 'BEGIN { exit !(a - b >= 900) }'; then
			kill -KILL "$qpid" 2>/dev/null || true
			echo "cycle $cycle: VM timed out" >&2
			break
		fi
		sleep 0.05
	done
	wait "$qpid" 2>/dev/null || true
	tr -d '\r' <"$BOOT_LOG" >"$BOOT_LOG.tmp" && mv "$BOOT_LOG.tmp" "$BOOT_LOG"
}

# boot CYCLE NEXT DELAY: boot_once, again if the kernel crashed before init
# (the disks are untouched then); BOOT_BAD=1 on kernel errors.
boot() {
	local cycle=$1

	boot_twice "powercut: cycle $cycle" "$out/console.$cycle.log" boot_once "$@"
	if grep -aEn -- "$KERNEL_ERROR_RE" "$out/console.$cycle.log" >"$out/errors.$cycle"; then
		echo "cycle $cycle: kernel errors on the console ($out/console.$cycle.log):" >&2
		head -n 5 "$out/errors.$cycle" | sed "s/^/cycle $cycle: kernel error: /" >&2
		BOOT_BAD=1
	fi
}

passed=0 failed=0 old=0 new=0 torn=0 merge_time='' cut_mid=0
for ((c = 0; c <= cycles; c++)); do
	next=$((c < cycles ? 1 : 0))
	BOOT_BAD=0
	delay=''
	if [ "$c" -gt 0 ] && [ "$next" = 1 ]; then
		# Odd cycles: uniform in [0, 1.1 T]; even ones: in [0.6 T, 1.1 T],
		# where the journal is durable and the file is being written
		# (T: the calibration merge's time; boots vary in speed).
		delay=$(awk -v t="$merge_time" -v r="$RANDOM$RANDOM" -v c="$c" \
			'BEGIN { srand(r); lo = c % 2 ? 0 : 0.6; printf "%.3f", t * (lo + rand() * (1.1 - lo)) }')
	fi
	boot "$c" "$next" "$delay"
	if [ "$c" = 0 ]; then
		if [ -z "$READY_AT" ] || [ -z "$MERGED_AT" ]; then
			cat "$BOOT_LOG" >&2
			die "calibration boot did not complete a merge"
		fi
		merge_time=$(awk -v a="$MERGED_AT" -v b="$READY_AT" 'BEGIN { printf "%.2f", a - b }')
		echo "powercut: cycle 0 (calibration, $kver): merge of $change MiB into a $mib MiB file took ${merge_time} s"
	fi
	if [ "$c" -gt 0 ]; then
		line=$(grep -a '^POWERCUT-CHECK' "$BOOT_LOG" | tail -n1 || true)
		res=$(sed -nE 's/.*result=([A-Za-z]+).*/\1/p' <<<"$line")
		case $res in
		old) old=$((old + 1)) ;;
		new) new=$((new + 1)) ;;
		*) torn=$((torn + 1)) ;;
		esac
		if [ "$res" = old ] || [ "$res" = new ]; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			echo "cycle $((c - 1)) failed: ${line:-no check line (that boot, or the one before, failed)}" >&2
			cat "$BOOT_LOG" >&2
		fi
		if [ -n "$prev_delay" ]; then
			when="cut ${prev_delay} s into the merge${prev_merged:+ (it had finished)}"
		else
			when="not cut (calibration)"
		fi
		echo "powercut: cycle $((c - 1)), $when: ${line#POWERCUT-CHECK }"
	fi
	[ "$BOOT_BAD" = 0 ] || failed=$((failed + 1))
	prev_delay=$delay
	prev_merged=
	[ -n "$MERGED_AT" ] && prev_merged=1
	[ -n "$delay" ] && [ -z "$MERGED_AT" ] && cut_mid=$((cut_mid + 1))
done
echo "powercut: $kver, seed $seed: $cuts power cuts ($cut_mid during the merge), $cycles files checked: $old old, $new new, $torn torn ($((SECONDS - start_all)) s)"
echo "powercut: $passed passed, $failed failed"
[ "$failed" = 0 ]
