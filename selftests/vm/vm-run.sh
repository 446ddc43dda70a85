#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run a script as root in the cowmap test VM (QEMU, TCG).
#
# usage: vm-run.sh --kver 6.1|6.12|debug [--demo] [SCRIPT]
#
# Builds cowmap.ko for the kernel, libcowmap, the CLI and the selftests,
# boots the VM with the module loaded (cowmap on PATH, libcowmap in
# /usr/local/lib), copies SCRIPT's directory to /payload/<dir name> and runs
# SCRIPT there as root, with $COWMAP_SCRATCH (ext4), $COWMAP_SCRATCH_XFS and
# $COWMAP_SCRATCH_BTRFS set.  Prints the script's output and exits with its
# status; exits 1 if the VM itself failed (kernel warning, oops, KASAN,
# lockdep, kmemleak, timeout...), printing the console's tail.
#
# --demo runs 'cowmap demo' (or, while the CLI has no demo subcommand, a
# script showing the loaded module) instead of SCRIPT.
set -euo pipefail

# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
	echo "usage: ${0##*/} --kver 6.1|6.12|debug [--demo] [SCRIPT]" >&2
	exit 2
}

kver='' demo=0 script=''
while [ $# -gt 0 ]; do
	case $1 in
	--kver) [ $# -ge 2 ] || usage; kver=$2; shift 2 ;;
	--kver=*) kver=${1#--kver=}; shift ;;
	--demo) demo=1; shift ;;
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
build_module "$kver"
build_userspace

payload_dir=''
if [ "$demo" = 1 ]; then
	if [ -x "$BUILD/cowmap" ] && "$BUILD/cowmap" help 2>&1 | grep -qw demo; then
		payload="cowmap demo"
	else
		note "the CLI has no 'demo' subcommand yet: showing the loaded module instead"
		payload=/opt/cowmap/guest/demo.sh
	fi
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
	${payload_dir:+--payload-dir "$payload_dir"} --payload "$payload"

vm_boot "$kver" "$dir/initramfs.cpio" "$dir" || exit 1
exit "$VM_STATUS"
