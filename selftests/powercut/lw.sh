#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Power cuts during merges, made from a log of the device's writes: in the
# test VM, the merge's filesystem (ext4, then XFS) sits on dm-log-writes,
# which records every write, flush and FUA the filesystem sends; marks
# merge-start and merge-end bracket a libcowmap merge (in place, journaled,
# several logs).  replay.c then rebuilds, on a copy of the device as it was
# before, the states a power cut can leave: every prefix up to a flush, and
# between flushes random subsets of the writes not yet flushed (whole, or
# torn at 4 KiB; a volatile cache may write them back in any order).  At
# each point: mount (journal recovery), cowmap_recover(), and the file
# must be exactly its old or new contents (checksums of pc.c's own model);
# once the merge has returned (after merge-end), exactly the new.
#
# usage: selftests/powercut/lw.sh [6.1|6.12|debug]     (default 6.12)
#
# Environment: POWERCUT_FS ("ext4 xfs"), POWERCUT_SEED, POWERCUT_MIB (8:
# file size), POWERCUT_CHANGE_MIB (3), POWERCUT_LOGS (4), POWERCUT_CRASH
# (random subset points per merge: 12), POWERCUT_ROUNDS (merges per
# filesystem: 1).  POWERCUT_LONG=1: every prefix of the log from
# merge-start to the end instead of only those ending at a flush, 32
# subset points per merge and 2 merges per filesystem unless set.
# One boot per merge.  POWERCUT_SEED=S repeats the data, the logs and
# the points' choices; the device log itself depends on the guest's timing.
#
# First replay-test.py checks the replay tool on the host.  Prints one
# line per point that failed, one summary line per merge and
# "powercut: N passed, N failed" last (one result per point, plus a
# failure for a boot that did not finish, a console error, or a merge no
# point of which landed inside it).  Exit status 1 if anything failed.
set -euo pipefail

# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
# shellcheck source=selftests/powercut/common.sh
. "$(dirname "$0")/common.sh"

PC_DIR=$(cd "$(dirname "$0")" && pwd)
kver=${1:-6.12}
long=${POWERCUT_LONG:-0}
seed=${POWERCUT_SEED:-$(( $(date +%s) % 100000 ))}
read -r -a fslist <<<"${POWERCUT_FS:-ext4 xfs}"
mib=${POWERCUT_MIB:-8}
change=${POWERCUT_CHANGE_MIB:-3}
nlogs=${POWERCUT_LOGS:-4}
all=''
if [ "$long" = 1 ]; then
	ncrash=${POWERCUT_CRASH:-32}
	rounds=${POWERCUT_ROUNDS:-2}
	all=all
else
	ncrash=${POWERCUT_CRASH:-12}
	rounds=${POWERCUT_ROUNDS:-1}
fi
out=$BUILD/powercut-lw
[ "$long" != 1 ] || out=$out-long
start_all=$SECONDS

pc_build "$kver" "$out"
[ -n "$KMODDIR" ] || die "lw.sh needs a Debian kernel (6.1 or 6.12): dm-log-writes is a module there"
${CC:-cc} -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o "$out/pl/powercut/replay" \
	"$PC_DIR/replay.c" || die "building replay failed"
install -m 0755 "$PC_DIR/lw-guest.sh" "$out/pl/powercut/lw-guest.sh"
PATH=$PATH:/sbin:/usr/sbin
dmsetup=$(command -v dmsetup) || die "dmsetup missing: install the dmsetup package ('make deps')"
"$VM_DIR/mkinitramfs.sh" --out "$out/initramfs.cpio" --ko "$KO" --release "$KRELEASE" \
	--moddir "$KMODDIR" --payload-dir "$out/pl/powercut" --payload true \
	--module dm_mod --module dm_log_writes --module dm_snapshot --bin "$dmsetup"
mkdir -p "$out/initroot"
install -m 0755 "$PC_DIR/lw-init" "$out/initroot/init"
(cd "$out/initroot" && echo init | cpio --quiet -o -H newc -R 0:0) >>"$out/initramfs.cpio"

mem=2G
passed=0 failed=0
# The replay tool itself, on a log made by hand (expected images from the
# test's own model).
rt=$(python3 "$PC_DIR/replay-test.py" "$out/pl/powercut/replay" 2>&1) || true
grep -v '^ok ' <<<"$rt" || true
rt=$(tail -n1 <<<"$rt")
if [[ $rt =~ ^replay:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
	passed=${BASH_REMATCH[1]} failed=${BASH_REMATCH[2]}
else
	echo "powercut: replay-test.py failed: no result line" >&2
	failed=1
fi
for ((r = 0; r < rounds; r++)); do
	for i in "${!fslist[@]}"; do
		fs=${fslist[$i]}
		tag=$fs.$r
		s=$((seed * 100 + r * 10 + i))
		case $fs in
		ext4) size=256M ;;
		xfs) size=320M ;;	# mkfs.xfs refuses less than 300 MB
		*) die "POWERCUT_FS: '$fs' is not ext4 or xfs" ;;
		esac
		rm -f "$out"/*.img
		truncate -s "$size" "$out/data.img"
		"mkfs.$fs" -q "$([ "$fs" = xfs ] && echo -f || echo -F)" "$out/data.img" ||
			die "mkfs.$fs failed"
		cp --sparse=always "$out/data.img" "$out/origin.img"
		truncate -s 2G "$out/log.img"
		truncate -s 256M "$out/cow.img"
		log=$out/output.$tag.log
		t0=$SECONDS
		drives=()
		for d in data log origin cow; do
			drives+=(-drive "file=$out/$d.img,if=virtio,format=raw,cache=unsafe")
		done
		# A second boot finds the disks untouched by a kernel that
		# never ran init.
		boot_twice "powercut: $tag" "$out/console.$tag.log" \
			timeout --foreground -k 10 3000 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "$mem" \
			-nographic -no-reboot -nodefaults -monitor none \
			-kernel "$KIMAGE" -initrd "$out/initramfs.cpio" \
			-append "$VM_CMDLINE_BASE rdinit=/init PC_FS=$fs PC_SEED=$s PC_MIB=$mib PC_LOGS=$nlogs PC_CHANGE_MIB=$change PC_CRASH=$ncrash PC_ALL=$all" \
			-serial "file:$out/console.$tag.log" -serial "file:$log" \
			"${drives[@]}" </dev/null >"$out/qemu.$tag.log" 2>&1
		tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"
		bad=''
		if grep -aEn -- "$KERNEL_ERROR_RE" "$out/console.$tag.log" >"$out/errors.$tag"; then
			head -n 5 "$out/errors.$tag" | sed "s/^/powercut: $tag: kernel error: /" >&2
			bad="kernel errors on the console ($out/console.$tag.log)"
		fi
		grep -q '^LW-END' "$log" || bad="${bad:+$bad; }the guest did not finish ($log)"
		# Counts: result per point; after merge-end only "new" is right.
		read -r np nf nwin wold wnew <<<"$(awk '
			/^LW-POINT/ {
				res = ""; win = 0
				for (i = 2; i <= NF; i++) {
					if ($i ~ /^result=/) res = substr($i, 8)
					if ($i == "window=1") win = 1
				}
				ok = (res == "old" || res == "new")
				if (ok) p++; else { f++; print "powercut: point failed: " $0 > "/dev/stderr" }
				if (win) { w++; if (res == "old") wo++; if (res == "new") wn++ }
			}
			END { printf "%d %d %d %d %d\n", p, f, w, wo, wn }' "$log" 2>>"$out/failed.log")"
		# A point after merge-end (window=0: the merge had returned) must be new.
		late_old=$(grep -c '^LW-POINT .*window=0.* result=old' "$log" || true)
		if [ "$late_old" != 0 ]; then
			grep '^LW-POINT .*window=0.* result=old' "$log" | sed 's/^/powercut: point failed: old after the merge returned: /' >&2
			nf=$((nf + late_old))
			np=$((np - late_old))
		fi
		[ -s "$out/failed.log" ] && cat "$out/failed.log" >&2 && : >"$out/failed.log"
		[ "$nwin" -gt 0 ] || bad="${bad:+$bad; }no point landed inside the merge"
		passed=$((passed + np))
		failed=$((failed + nf))
		if [ -n "$bad" ]; then
			failed=$((failed + 1))
			echo "powercut: $tag failed: $bad" >&2
			grep -a '^LW-FATAL' "$log" >&2 || true
		fi
		echo "powercut: $fs merge $r ($kver, seed $s): $(grep -a '^LW-PLAN' "$log" | cut -c9-), $np ok, $nf torn or lost; $nwin inside the merge ($wold old, $wnew new), $(grep -a '^LW-MERGED' "$log" | cut -c4-) ($((SECONDS - t0)) s)"
	done
done
echo "powercut: log-writes, $kver, seed $seed, $((SECONDS - start_all)) s"
echo "powercut: $passed passed, $failed failed"
[ "$failed" = 0 ]
