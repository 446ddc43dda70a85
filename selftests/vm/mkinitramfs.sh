#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the initramfs (an uncompressed newc cpio) of the cowmap test VM.
# No root, loop mounts or fakeroot needed: cpio writes every file as root.
#
# usage: mkinitramfs.sh --out FILE --ko cowmap.ko --release KRELEASE
#                       --payload CMD [--kver 6.1|6.12|debug]
#                       [--moddir /lib/modules/REL] [--payload-dir DIR]
#                       [--sysroot DIR]
#                       [--module NAME]... [--bin PROGRAM]...
#
# Contents: busybox-static and its applets, /init (guest/init), the guest
# scripts (/opt/cowmap/guest), cowmap.ko (/opt/cowmap/cowmap.ko), the
# kselftest binaries of $BUILD/selftests (/opt/cowmap/selftests), the CLI
# ($BUILD/test/cowmap, the test build, else $BUILD/cowmap -> /usr/local/bin),
# the examples ($BUILD/examples/cowmap-* -> /usr/local/bin), libcowmap
# ($BUILD/libcowmap.so* -> /usr/local/lib) and the 'cowmap run' shim
# (libcowmap-preload.so -> /usr/local/lib/cowmap) when they are built, every shared library those need
# (ldd closure, plus libgcc_s for pthread_cancel), /etc/passwd and
# /etc/group (root, tester 1000, nobody), and with --moddir the Debian
# kernel's modules the VM needs (virtio, loop, ext4, xfs, btrfs, fuse, crc32c,
# hwpoison_inject and their dependencies, decompressed, indexed with depmod and listed in
# load order in /etc/cowmap/modules.load).  Only when asked: --module NAME
# adds a module (and its dependencies) to that list, --bin PROGRAM a host
# program (and its shared libraries) to /usr/sbin.  --payload-dir is copied to
# /payload/<its name>; --payload is the command /init runs there.
#
# --sysroot DIR: the cowmap userspace is DIR's instead of the build tree's:
# DIR's files are copied to the same paths in the initramfs (with the
# shared libraries their ELF files need) and nothing of $BUILD is packed
# (no selftests, CLI, examples, libcowmap or shim).  selftests/deb-test.sh
# uses it to run the files the Debian packages installed.
set -euo pipefail

# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

out='' ko='' release='' kver='' moddir='' payload_dir='' payload='' sysroot=''
extra_modules=() extra_bins=()
while [ $# -gt 0 ]; do
	case $1 in
	--out) out=$2; shift 2 ;;
	--ko) ko=$2; shift 2 ;;
	--release) release=$2; shift 2 ;;
	--kver) kver=$2; shift 2 ;;
	--moddir) moddir=$2; shift 2 ;;
	--payload-dir) payload_dir=$2; shift 2 ;;
	--payload) payload=$2; shift 2 ;;
	--sysroot) sysroot=$2; shift 2 ;;
	--module) extra_modules+=("$2"); shift 2 ;;
	--bin) extra_bins+=("$2"); shift 2 ;;
	*) die "unknown argument '$1'" ;;
	esac
done
if [ -z "$out" ] || [ -z "$ko" ] || [ -z "$release" ] || [ -z "$payload" ]; then
	die "usage: $0 --out FILE --ko cowmap.ko --release KRELEASE [--moddir DIR] [--payload-dir DIR] --payload CMD"
fi
[ -f "$ko" ] || die "$ko: no such module"

BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: install busybox-static ('make deps')"
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
	ldd "$BUSYBOX" 2>&1 | grep -q 'not a dynamic executable' ||
	die "$BUSYBOX is not statically linked: install busybox-static"

# Modules the VM loads on Debian kernels (those built in are skipped).
# crc32c: ext4, jbd2, btrfs and libcrc32c ask for it by alias at mount time;
# xxhash64 and blake2b are btrfs' other checksums (soft dependencies).
# hwpoison_inject: /sys/kernel/debug/hwpoison/corrupt-pfn for the poisoned
# private page test (cowmap_hostile_test.c); the debug kernel builds it in.
VM_MODULES=(virtio_pci virtio_blk loop ext4 xfs btrfs fuse
	crc32c_generic crc32c_intel xxhash_generic blake2b_generic
	hwpoison_inject)
if [ ${#extra_modules[@]} -gt 0 ]; then
	[ -n "$moddir" ] || die "--module needs --moddir"
	VM_MODULES+=("${extra_modules[@]}")
fi

root=$(mktemp -d "${out}.root.XXXXXX")
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/lib,etc/cowmap} \
	"$root"/{proc,sys,dev,tmp,run,root,home/tester,payload,opt/cowmap/selftests} \
	"$root"/mnt/{scratch,xfs,btrfs} "$root/lib/modules/$release"

# busybox and its applets.
install -m 0755 "$BUSYBOX" "$root/bin/busybox"
"$BUSYBOX" --list-full | while read -r applet; do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
[ -e "$root/bin/sh" ] || ln -s busybox "$root/bin/sh"

# Shared libraries: the ldd closure of every dynamic ELF we ship.
add_libs() {
	local elf=$1 lib
	ldd "$elf" >/dev/null 2>&1 || return 0	# static, or not an ELF
	if ldd "$elf" | grep -q 'not found'; then
		ldd "$elf" >&2
		die "$elf: shared library not found on the host"
	fi
	for lib in $(ldd "$elf" | sed -nE 's/.*=> (\/[^ ]+) .*/\1/p; s/^[[:space:]]*(\/[^ ]+) .*/\1/p'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# The binaries the guest must run: one per selftests/*_test.c (a binary
# missing from $BUILD/selftests then fails the run, it is not dropped).
for src in "$TOP"/selftests/*_test.c; do
	[ -f "$src" ] || continue
	src=${src##*/}
	echo "${src%.c}"
done >"$root/opt/cowmap/selftests.list"
elves=()
if [ -n "$sysroot" ]; then
	[ -d "$sysroot" ] || die "$sysroot: not a directory"
	tar -C "$sysroot" -cf - . | tar -C "$root" -xf - || die "cannot copy $sysroot"
	while IFS= read -r -d '' f; do
		elves+=("$f")
	done < <(find "$sysroot" -type f -print0)
	# Nothing of the build tree below.
	BUILD=$root/nonexistent
fi
for t in "$BUILD"/selftests/*_test; do
	[ -f "$t" ] || continue
	install -m 0755 "$t" "$root/opt/cowmap/selftests/"
	elves+=("$t")
done
# The CLI's test build (its crash-point hooks are used by cowmap_cli_test)
# when there is one, else the released one.
cli=$BUILD/cowmap
[ -x "$BUILD/test/cowmap" ] && cli=$BUILD/test/cowmap
if [ -x "$cli" ]; then
	install -m 0755 "$cli" "$root/usr/local/bin/cowmap"
	elves+=("$cli")
fi
for ex in "$BUILD"/examples/cowmap-*; do
	[ -x "$ex" ] || continue
	install -m 0755 "$ex" "$root/usr/local/bin/"
	elves+=("$ex")
done
for so in "$BUILD"/libcowmap.so*; do
	[ -e "$so" ] || continue
	cp -P "$so" "$root/usr/local/lib/"
	[ -L "$so" ] || elves+=("$so")
done
# Where 'make install' puts it: LIBDIR/cowmap/, found relative to the CLI.
if [ -e "$BUILD/libcowmap-preload.so" ]; then
	mkdir -p "$root/usr/local/lib/cowmap"
	cp "$BUILD/libcowmap-preload.so" "$root/usr/local/lib/cowmap/"
	elves+=("$BUILD/libcowmap-preload.so")
fi
# bash, so that payload scripts starting with #!/bin/bash run, and
# util-linux's setpriv (busybox's cannot change uids) to drop privileges.
install -m 0755 /bin/bash "$root/bin/bash"
elves+=(/bin/bash)
if [ -x /usr/bin/setpriv ]; then
	rm -f "$root/usr/bin/setpriv" "$root/bin/setpriv"
	install -m 0755 /usr/bin/setpriv "$root/usr/bin/setpriv"
	elves+=(/usr/bin/setpriv)
fi
for b in ${extra_bins[@]+"${extra_bins[@]}"}; do
	[ -x "$b" ] || die "$b: no such program on the host"
	install -m 0755 "$b" "$root/usr/sbin/$(basename "$b")"
	elves+=("$b")
done
for e in "${elves[@]}"; do
	add_libs "$e"
done
# glibc's pthread_cancel/pthread_exit load libgcc_s at run time.
gcc_s=$(ldconfig -p | sed -nE 's/^[[:space:]]*libgcc_s\.so\.1 \(libc6,x86-64\) => (.*)$/\1/p' | head -n1)
[ -n "$gcc_s" ] || die "libgcc_s.so.1 not found (package libgcc-s1)"
mkdir -p "$root$(dirname "$gcc_s")"
cp -L "$gcc_s" "$root$gcc_s"

printf '%s\n' /usr/local/lib /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu >"$root/etc/ld.so.conf"
/sbin/ldconfig -r "$root" || die "ldconfig -r $root failed"

# Users: tests drop privileges to tester (1000) or nobody.
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
tester:x:1000:1000:cowmap tester:/home/tester:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
tester:x:1000:
nogroup:x:65534:
GROUP
echo 'root::0:0:99999:7:::' >"$root/etc/shadow"
chmod 0600 "$root/etc/shadow"
echo cowmap-vm >"$root/etc/hostname"

# The guest side.
install -m 0755 "$VM_DIR/guest/init" "$root/init"
mkdir -p "$root/opt/cowmap/guest"
install -m 0755 "$VM_DIR"/guest/*.sh "$root/opt/cowmap/guest/"
install -m 0644 "$ko" "$root/opt/cowmap/cowmap.ko"

# Kernel modules of a Debian kernel, in load order.
: >"$root/etc/cowmap/modules.load"
if [ -n "$moddir" ]; then
	declare -A path_of=() loaded=()
	while IFS=: read -r path _; do
		m=${path##*/}
		m=${m%%.ko*}
		path_of[${m//-/_}]=$path
	done <"$moddir/modules.dep"
	deps_of() { grep -m1 -E "^$(printf '%s' "$1" | sed 's/[.+]/\\&/g'):" "$moddir/modules.dep" | cut -d: -f2; }
	add_module() {	# $1: path relative to $moddir
		local path=$1 dep dst
		[ -n "${loaded[$path]:-}" ] && return 0
		for dep in $(deps_of "$path"); do
			add_module "$dep"
		done
		loaded[$path]=1
		dst=${path%.xz}
		dst=${dst%.zst}
		dst=${dst%.gz}
		mkdir -p "$root/lib/modules/$release/$(dirname "$dst")"
		case $path in
		*.xz) xz -dc "$moddir/$path" >"$root/lib/modules/$release/$dst" ;;
		*.zst) zstd -q -dc "$moddir/$path" >"$root/lib/modules/$release/$dst" ;;
		*.gz) gzip -dc "$moddir/$path" >"$root/lib/modules/$release/$dst" ;;
		*) cp "$moddir/$path" "$root/lib/modules/$release/$dst" ;;
		esac
		echo "$dst" >>"$root/etc/cowmap/modules.load"
	}
	for m in "${VM_MODULES[@]}"; do
		if [ -n "${path_of[$m]:-}" ]; then
			add_module "${path_of[$m]}"
		elif grep -qE "/${m//_/[_-]}\.ko$" "$moddir/modules.builtin"; then
			continue
		else
			die "$moddir: module $m is neither a module nor built in"
		fi
	done
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[ -f "$moddir/$f" ] && cp "$moddir/$f" "$root/lib/modules/$release/"
	done
	/sbin/depmod -b "$root" "$release" || die "depmod failed for the VM's modules"
fi

# The payload.
if [ -n "$payload_dir" ]; then
	[ -d "$payload_dir" ] || die "$payload_dir: not a directory"
	size=$(du -sm --exclude=.git "$payload_dir" | cut -f1)
	[ "$size" -le 512 ] ||
		die "$payload_dir holds ${size} MiB; put the script in a smaller directory"
	pname=$(basename "$(cd "$payload_dir" && pwd)")
	mkdir -p "$root/payload/$pname"
	tar -C "$payload_dir" --exclude=.git -cf - . | tar -C "$root/payload/$pname" -xf -
	payload_cwd=/payload/$pname
else
	payload_cwd=/root
fi
{
	printf 'COWMAP_KRELEASE=%q\n' "$release"
	printf 'COWMAP_KVER=%q\n' "$kver"
	printf 'COWMAP_PAYLOAD=%q\n' "$payload"
	printf 'COWMAP_PAYLOAD_CWD=%q\n' "$payload_cwd"
} >"$root/etc/cowmap/vm.conf"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$out.tmp" ||
	die "cpio failed"
mv "$out.tmp" "$out"
