#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# One boot of the dm-log-writes power-cut test (selftests/powercut/lw.sh).
# vda: the filesystem ($PC_FS, made by the host), vdb: the log, vdc: a copy
# of vda as the host made it (the replay's origin), vdd: scratch for the
# snapshots.  Records a merge through dm-log-writes between the marks
# merge-start and merge-end, then for every point of 'replay plan': brings
# the origin forward to the point's base, takes a throwaway snapshot of it,
# writes the point's crash subset into the snapshot, mounts it (journal
# recovery), runs cowmap_recover() and checks the file is its old or new
# contents.  One "LW-POINT ..." line per point.
set -u
fs=$PC_FS data=/dev/vda log=/dev/vdb origin=/dev/vdc cow=/dev/vdd
dm() { dmsetup --noudevsync "$@"; }
fatal() {
	echo "LW-FATAL $*"
	exit 1
}
node() {	# /dev/mapper/NAME, made here if nothing made it
	local n=/dev/mapper/$1 mm
	if [ ! -b "$n" ]; then
		mm=$(dm info -c --noheadings -o major,minor "$1") || return 1
		mkdir -p /dev/mapper
		mknod "$n" b "${mm%:*}" "${mm#*:}" || return 1
	fi
	echo "$n"
}
sz=$(blockdev --getsz "$data") || fatal "no $data"
[ "$(blockdev --getsz "$origin")" = "$sz" ] || fatal "$origin is not the size of $data"
echo "LW-BOOT fs=$fs seed=$PC_SEED sectors=$sz"

dm create lw --table "0 $sz log-writes $data $log" || fatal "dmsetup create log-writes"
lw=$(node lw) || fatal "no node for lw"
mkdir -p /mnt/lw /mnt/r
mount -t "$fs" "$lw" /mnt/lw || fatal "mount $fs on log-writes"
./pc setup /mnt/lw/pc "$PC_SEED" "$PC_MIB" "$PC_LOGS" "$PC_CHANGE_MIB" || fatal "pc setup"
sync
dm message lw 0 mark merge-start || fatal "mark merge-start"
t0=$(date +%s)
./pc merge /mnt/lw/pc || fatal "pc merge"
dm message lw 0 mark merge-end || fatal "mark merge-end"
echo "LW-MERGED in $(($(date +%s) - t0)) s"
umount /mnt/lw || fatal "umount"
dm message lw 0 mark end || fatal "mark end"
dm remove lw || fatal "dmsetup remove lw"

# shellcheck disable=SC2086 # PC_ALL is empty or "all"
./replay plan "$log" merge-start merge-end end "$PC_SEED" "$PC_CRASH" $PC_ALL >/tmp/plan ||
	fatal "replay plan"
echo "LW-PLAN $(wc -l </tmp/plan) points"
pos=0
while read -r kind base a b c <&3; do
	if [ "$kind" = prefix ]; then
		cut=$base win=$a
	else
		cut=$a seed=$b win=$c
	fi
	t0=$(cut -d' ' -f1 /proc/uptime)
	./replay apply "$log" "$origin" "$pos" "$base" || fatal "replay apply $pos $base"
	pos=$base
	dm create snap --table "0 $sz snapshot $origin $cow N 8" || fatal "dmsetup create snapshot"
	snap=$(node snap) || fatal "no node for snap"
	what="kind=$kind base=$base cut=$cut window=$win"
	if [ "$kind" != prefix ]; then
		./replay crash "$log" "$snap" "$base" "$cut" "$seed" "$kind" >/tmp/crash ||
			fatal "replay crash $base $cut $seed $kind"
		what="$what seed=$seed ($(cat /tmp/crash))"
	fi
	if ! mount -t "$fs" "$snap" /mnt/r 2>/tmp/mount; then
		echo "LW-POINT $what result=MOUNTFAIL $(tr '\n' ' ' </tmp/mount)"
	elif [ ! -f /mnt/r/pc/state ]; then
		echo "LW-POINT $what result=nostate"
		umount /mnt/r
	else
		rec=$(./pc recover /mnt/r/pc)
		res=$(./pc check /mnt/r/pc)
		echo "LW-POINT $what $rec $res"
		umount /mnt/r || fatal "umount snapshot"
	fi
	dm remove snap || fatal "dmsetup remove snapshot"
	echo "LW-TIME $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }') s"
done 3</tmp/plan
echo "LW-END fs=$fs"
