#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install the cowmap module with DKMS ('make dkms-install'): copies the
# module's source tree ('make -C kmod srctree') to /usr/src/cowmap-VERSION
# (VERSION: the top VERSION file), then dkms add, build and install for the
# running kernel (DKMS rebuilds it for later kernels).
#
# usage: dkms-install.sh      (run as root)
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
die() {
	echo "dkms-install.sh: $*" >&2
	exit 1
}

[ $# -eq 0 ] || die "usage: $0"
version=$("$TOP/scripts/version.sh")
"$TOP/scripts/version.sh" check >/dev/null || die "$("$TOP/scripts/version.sh" check)"
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
make -s -C "$TOP/kmod" srctree DEST="$src"

dkms add -m cowmap -v "$version"
dkms build -m cowmap -v "$version" -k "$krel"
dkms install -m cowmap -v "$version" -k "$krel"
echo "cowmap $version installed with DKMS for $krel; load it with: modprobe cowmap"
