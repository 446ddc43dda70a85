#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build (once) the debug kernel for the VM tests and print its build tree.
#
# The kernel is Debian's linux-source-6.1 configured with
#   x86_64_defconfig + kvm_guest.config + selftests/vm/debug.config
# and built out of tree into
#   $COWMAP_CACHE/kernel-debug-<hash>    (default ~/.cache/cowmap)
# where <hash> covers debug.config and the linux-source version.  The
# directory appears only once the build succeeded (it is built under a
# temporary name and renamed); it is the KDIR for module builds and holds
# arch/x86/boot/bzImage.  The extracted source is kept next to it in
# $COWMAP_CACHE/linux-source-<version>, which the build tree refers to.
#
# Progress goes to stderr, the full build log to <tree>.log; the only
# stdout line is the build tree's path.
set -euo pipefail

# --config-only: configure and check the config in a temporary directory,
# print its .config and stop (for editing debug.config).
config_only=0
[ "${1:-}" = --config-only ] && config_only=1

# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

FRAGMENT=$VM_DIR/debug.config
JOBS=${JOBS:-$(($(nproc) + 1))}

srcver=$(linux_source_version)
hash=$({ cat "$FRAGMENT"; echo "linux-source-6.1 $srcver"; } | sha256sum | cut -c1-16)
out=$COWMAP_CACHE/kernel-debug-$hash
src=$COWMAP_CACHE/linux-source-6.1-$srcver

complete() {
	[ -f "$1/.cowmap-complete" ] && [ -f "$1/arch/x86/boot/bzImage" ] &&
		[ -f "$1/Module.symvers" ] && [ -L "$1/source" ] && [ -d "$(readlink "$1/source")" ]
}

if [ "$config_only" = 0 ] && complete "$out"; then
	echo "$out"
	exit 0
fi

mkdir -p "$COWMAP_CACHE"
exec 9>"$COWMAP_CACHE/.kernel-debug.lock"
if ! flock -n 9; then
	note "waiting for another debug kernel build to finish"
	flock 9
fi
if [ "$config_only" = 0 ] && complete "$out"; then
	echo "$out"
	exit 0
fi

start=$(date +%s)

# Leftovers of interrupted builds (we hold the lock, nobody uses them).
rm -rf "$COWMAP_CACHE"/kernel-debug-*.tmp.* "$COWMAP_CACHE"/linux-source-*.tmp.*

if [ ! -f "$src/.cowmap-complete" ]; then
	note "extracting $LINUX_SOURCE_TARBALL into $src"
	rm -rf "$src"
	stmp=$(mktemp -d "$src.tmp.XXXXXX")
	tar -xJf "$LINUX_SOURCE_TARBALL" -C "$stmp" --strip-components=1 ||
		die "cannot extract $LINUX_SOURCE_TARBALL"
	touch "$stmp/.cowmap-complete"
	mv "$stmp" "$src"
fi

tmp=$(mktemp -d "$out.tmp.XXXXXX")
log=$tmp.log
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
if [ "$config_only" = 1 ]; then
	note "configuring in $tmp"
else
	note "building the debug kernel in $tmp (log: $log), this takes a while"
fi

kmake() {
	make -C "$src" O="$tmp" "$@" >>"$log" 2>&1 || {
		tail -n 60 "$log" >&2
		die "'make $*' failed; full log in $log"
	}
}

: >"$log"
kmake x86_64_defconfig
kmake kvm_guest.config
(cd "$src" && scripts/kconfig/merge_config.sh -m -O "$tmp" "$tmp/.config" "$FRAGMENT") >>"$log" 2>&1 ||
	die "merge_config.sh failed; see $log"
kmake olddefconfig

# Every line of the fragment must have made it into the final .config.
bad=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)
		grep -qxF -- "$line" "$tmp/.config" || {
			sym=${line%%=*}
			got=$(grep -E "^($sym=|# $sym is not set)" "$tmp/.config" || echo "$sym absent")
			note "config: wanted '$line', got '$got'"
			bad=1
		}
		;;
	"# CONFIG_"*" is not set")
		sym=${line#\# }
		sym=${sym%% *}
		if grep -qE "^$sym=" "$tmp/.config"; then
			note "config: wanted '$line', got '$(grep -E "^$sym=" "$tmp/.config")'"
			bad=1
		fi
		;;
	esac
done <"$FRAGMENT"
[ "$bad" = 0 ] || die "the debug kernel config does not honour $FRAGMENT (see above)"
if [ "$config_only" = 1 ]; then
	cat "$tmp/.config"
	rm -f "$log"
	exit 0
fi

kmake -j"$JOBS" all

[ -f "$tmp/arch/x86/boot/bzImage" ] || die "no bzImage after the build; see $log"
[ -f "$tmp/Module.symvers" ] || die "no Module.symvers after the build; see $log"
# Objects of the kernel proper are not needed to build modules against the
# tree; keep the cache small.
find "$tmp" -name '*.o' ! -path '*/scripts/*' ! -path '*/tools/*' -delete
date -u +%FT%TZ >"$tmp/.cowmap-complete"

# Keep only the current debug kernel.
for old in "$COWMAP_CACHE"/kernel-debug-*; do
	[ -d "$old" ] && [ "$old" != "$out" ] && case $old in *.tmp.*) ;; *) rm -rf "$old" "$old.log" ;; esac
done
rm -rf "$out"
mv "$tmp" "$out"
mv "$log" "$out.log"
trap - EXIT
note "debug kernel built in $(($(date +%s) - start)) s: $out"
echo "$out"
