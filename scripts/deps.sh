#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install the Debian packages cowmap needs to build and test itself.
# Quiet and fast when everything is already there.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

base_pkgs=(
	build-essential pkg-config kmod cpio gzip xz-utils zstd
	qemu-system-x86 busybox-static
	libmnl-dev
	e2fsprogs xfsprogs btrfs-progs
	dmsetup
	linux-image-amd64 linux-headers-amd64
	linux-source-6.1
	flex bison bc libelf-dev libssl-dev dwarves rsync python3
	dkms sparse
	groff-base man-db
	debhelper dh-dkms dpkg-dev lintian
	clang llvm libclang-rt-14-dev
)

missing=()
for p in "${base_pkgs[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$p")
done

# 6.12: the newest Debian 12 backport image (unsigned) and its headers.
have612=$(dpkg-query -W -f='${Package} ${Status}\n' 'linux-image-6.12.*+deb12-amd64-unsigned' 2>/dev/null |
	grep 'install ok installed' | head -n1 | cut -d' ' -f1 || true)
if [ -n "$have612" ]; then
	v=${have612#linux-image-}
	v=${v%-unsigned}
	dpkg-query -W -f='${Status}\n' "linux-headers-$v" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("linux-headers-$v")
fi

updated=
apt_update() {
	[ -n "$updated" ] && return
	echo "deps: apt-get update" >&2
	apt-get update -q >/dev/null
	updated=1
}

if [ -z "$have612" ]; then
	apt_update
	img=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' |
		cut -d' ' -f1 | sort -V | tail -n1)
	[ -n "$img" ] || { echo "deps: no linux-image-6.12.*+deb12-amd64-unsigned in apt" >&2; exit 1; }
	v=${img#linux-image-}
	v=${v%-unsigned}
	missing+=("$img" "linux-headers-$v")
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run 'sudo make deps' (or install them with apt-get)" >&2
	exit 1
fi
apt_update
echo "deps: installing ${missing[*]}" >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/cowmap-deps.log 2>&1 || {
	tail -n 40 /tmp/cowmap-deps.log >&2
	exit 1
}
