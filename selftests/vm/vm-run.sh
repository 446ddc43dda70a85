#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run a script as root in the cowmap test VM (QEMU, TCG).
#
# usage: vm-run.sh --kver 6.1|6.12|debug [--demo] [--ko FILE]
#                  [--sysroot DIR] [SCRIPT]
#
# Builds cowmap.ko for the kernel, libcowmap, the CLI and the selftests,
# boots the VM with the module loaded (cowmap on PATH, libcowmap in
# /usr/local/lib), copies SCRIPT's directory to /payload/<dir name> and runs
# SCRIPT there as root, with $COWMAP_SCRATCH (ext4), $COWMAP_SCRATCH_XFS and
# $COWMAP_SCRATCH_BTRFS set.  Prints the script's output and exits with its
# status; exits 1 if the VM itself failed (kernel warning, oops, KASAN,
# lockdep, kmemleak, timeout...), printing the console's tail.
#
# --demo runs the example program cowmap-demo (examples/demo.c: the
# cowmap command's workflow, end to end) instead of SCRIPT.
#
# --ko FILE boots with FILE as cowmap.ko instead of building the tree's (its
# vermagic must be the kernel's release).  --sysroot DIR: the guest's cowmap
# userspace is DIR's (an installed tree, copied to the same paths) instead
# of the build tree's, which is then neither built nor packed
# (mkinitramfs.sh).  selftests/deb-test.sh boots the packages' files so.
set -euo pipefail

# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
	echo "usage: ${0##*/} --kver 6.1|6.12|debug [--demo] [--ko FILE] [--sysroot DIR] [SCRIPT]" >&2
	exit 2
}

kver='' demo=0 script='' ko='' sysroot=''
while [ $# -gt 0 ]; do
	case $1 in
	--kver) [ $# -ge 2 ] || usage; kver=$2; shift 2 ;;
	--kver=*) kver=${1#--kver=}; shift ;;
	--demo) demo=1; shift ;;
	--ko) [ $# -ge 2 ] || usage; ko=$2; shift 2 ;;
	--sysroot) [ $# -ge 2 ] || usage; sysroot=$2; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "${0##*/}: unknown option '$1'" >&2; usage ;;
	*) [ -z "$script" ] || usage; script=$1; shift ;;
	esac
done
[ -n "$kver" ] || usage
if [ "$demo" = 1 ]; then
	[ -z "$script" ] || usage
else
	[ -n "$script" ] || usage
	[ -f "$script" ] || die "$script: no such file"
fi

resolve_kernel "$kver"
if [ -n "$ko" ]; then
	[ -f "$ko" ] || die "$ko: no such module"
	magic=$(/sbin/modinfo -F vermagic "$ko") || die "$ko: not a kernel module"
	[ "${magic%% *}" = "$KRELEASE" ] ||
		die "$ko is built for ${magic%% *}, the $kver kernel is $KRELEASE"
	KO=$(cd "$(dirname "$ko")" && pwd)/$(basename "$ko")
else
	build_module "$kver"
fi
if [ -n "$sysroot" ]; then
	[ -d "$sysroot" ] || die "$sysroot: not a directory"
	[ "$demo" = 0 ] || die "--demo runs the build tree's CLI: not with --sysroot"
else
	build_userspace
fi

payload_dir=''
if [ "$demo" = 1 ]; then
	payload="cowmap-demo"
else
	payload_dir=$(cd "$(dirname "$script")" && pwd)
	name=$(basename "$script")
	if [ -x "$script" ]; then
		payload="./$name"
	else
		payload="sh ./$name"
	fi
fi

dir=$BUILD/vm/vm-run-$kver
mkdir -p "$dir"
exec 8>"$dir.lock"
flock -n 8 || { note "another vm-run on $kver is running; waiting"; flock 8; }
"$VM_DIR/mkinitramfs.sh" --out "$dir/initramfs.cpio" --ko "$KO" \
	--release "$KRELEASE" --kver "$kver" ${KMODDIR:+--moddir "$KMODDIR"} \
	${payload_dir:+--payload-dir "$payload_dir"} ${sysroot:+--sysroot "$sysroot"} \
	--payload "$payload"

vm_boot "$kver" "$dir/initramfs.cpio" "$dir" || exit 1
exit "$VM_STATUS"
