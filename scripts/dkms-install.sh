#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install the cowmap module with DKMS ('make dkms-install'): copies the
# module sources to /usr/src/cowmap-VERSION, then dkms add, build and
# install for the running kernel (DKMS rebuilds it for later kernels).
#
# usage: dkms-install.sh VERSION      (run as root)
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
die() {
	echo "dkms-install.sh: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: $0 VERSION"
version=$1
mkver=$(sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*//p' "$TOP/Makefile")
[ "$version" = "$mkver" ] || die "version $version is not the Makefile's VERSION ($mkver)"
confver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$TOP/dkms.conf")
[ "$confver" = "$mkver" ] || die "dkms.conf's PACKAGE_VERSION ($confver) is not the Makefile's VERSION ($mkver)"
[ "$(id -u)" = 0 ] || die "must be run as root (try: sudo make dkms-install)"
command -v dkms >/dev/null || die "dkms is not installed (apt-get install dkms)"
krel=$(uname -r)
[ -d "/lib/modules/$krel/build" ] ||
	die "no kernel headers for $krel: install linux-headers-$krel"

src=/usr/src/cowmap-$version
if dkms status -m cowmap -v "$version" | grep -q .; then
	echo "removing the registered cowmap/$version first"
	dkms remove -m cowmap -v "$version" --all
fi
rm -rf "$src"
mkdir -p "$src"
cp -r "$TOP/dkms.conf" "$TOP/Kbuild" "$TOP/kmod" "$TOP/uapi" "$src/"
rm -f "$src"/kmod/*.o "$src"/kmod/.*.cmd

dkms add -m cowmap -v "$version"
dkms build -m cowmap -v "$version" -k "$krel"
dkms install -m cowmap -v "$version" -k "$krel"
echo "cowmap $version installed with DKMS for $krel; load it with: modprobe cowmap"
