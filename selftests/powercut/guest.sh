#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# One boot of the power-cut test: check the previous cycle (recover, then
# old/new/TORN), then prepare and start this cycle's merge, which the host
# cuts short by killing QEMU.
set -u
prev=/mnt/$PC_PREV_FS/pc
echo "POWERCUT-BOOT cycle=$PC_CYCLE fs=$PC_FS"
if [ "$PC_CYCLE" != 0 ] && [ -f "$prev/state" ]; then
	rec=$(./pc recover "$prev")
	res=$(./pc check "$prev")
	echo "POWERCUT-CHECK cycle=$((PC_CYCLE - 1)) fs=$PC_PREV_FS $rec $res"
	rm -rf "$prev"
fi
if [ "$PC_NEXT" = 1 ]; then
	d=/mnt/$PC_FS/pc
	rm -rf "$d"
	./pc setup "$d" "$PC_SEED" "$PC_MIB" "$PC_LOGS" "$PC_CHANGE_MIB" || exit 1
	sync
	echo POWERCUT-READY
	./pc merge "$d" && echo POWERCUT-MERGED
fi
