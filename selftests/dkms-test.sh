#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Check that dkms.conf works: dkms add, then dkms build against every
# installed Debian linux-headers-*-amd64 (6.1 and 6.12).  Everything happens
# in a private DKMS tree (--dkmstree/--sourcetree/--installtree in a
# temporary directory, module signing key there too): the host's DKMS
# state is not touched and root is not needed.
#
# Prints TAP-style "ok"/"not ok" lines, then "N passed, N failed".
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
pass=0 fail=0
n=0
result() {	# rc description [log]
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
		pass=$((pass + 1))
	else
		echo "not ok $n - $2"
		[ -n "${3:-}" ] && [ -f "$3" ] && sed 's/^/# /' "$3" | tail -n 40
		fail=$((fail + 1))
	fi
}
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

command -v dkms >/dev/null || { echo "dkms-test.sh: dkms missing: run 'make deps'" >&2; exit 1; }
version=$("$TOP/scripts/version.sh")
# dkms.conf's PACKAGE_VERSION is a literal: the VERSION file is the one
# source, version.sh keeps them (and the other literals) equal.
out=$("$TOP/scripts/version.sh" check 2>&1)
result $? "version literals (dkms.conf's included) are VERSION's: $out"

tmp=$(realpath "$(mktemp -d "${TMPDIR:-/tmp}/cowmap-dkms.XXXXXX")")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/dkms" "$tmp/install"
# The private trees, and a signing key of our own (dkms would otherwise
# create /var/lib/dkms/mok.key).
export mok_signing_key=$tmp/mok.key mok_certificate=$tmp/mok.pub
dk() {
	dkms "$@" --dkmstree "$tmp/dkms" --sourcetree "$tmp/src" --installtree "$tmp/install"
}

# What dkms-install.sh and the cowmap-dkms package ship: the module's
# source tree (no top Makefile: dkms.conf must not need it).
src=$tmp/src/cowmap-$version
make -s -C "$TOP/kmod" srctree DEST="$src"

rc=0
dk add -m cowmap -v "$version" >"$tmp/add.log" 2>&1 || rc=$?
result "$rc" "dkms add cowmap/$version" "$tmp/add.log"
[ "$rc" = 0 ] || finish

rc=0
dk status -m cowmap -v "$version" >"$tmp/status.log" 2>&1 || rc=$?
grep -q "^cowmap/$version: added" "$tmp/status.log" || rc=1
result "$rc" "dkms status: cowmap/$version added" "$tmp/status.log"

mapfile -t headers < <(find /usr/src -maxdepth 1 -name 'linux-headers-*-amd64' | sort -V)
[ ${#headers[@]} -gt 0 ] || { result 1 "linux-headers-*-amd64 installed"; finish; }
for h in "${headers[@]}"; do
	krel=${h#/usr/src/linux-headers-}
	log=$tmp/build-$krel.log
	rc=0
	dk build -m cowmap -v "$version" -k "$krel" --kernelsourcedir "$h" >"$log" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		ko=$(find "$tmp/dkms/cowmap/$version/$krel" -name 'cowmap.ko*' -path '*/module/*' | head -n1)
		if [ -z "$ko" ]; then
			echo "no cowmap.ko in the DKMS tree" >>"$log"
			rc=1
		else
			info=$tmp/modinfo-$krel
			case $ko in
			*.xz) xz -dc "$ko" >"$tmp/cowmap-$krel.ko" ;;
			*.zst) zstd -q -dc "$ko" >"$tmp/cowmap-$krel.ko" ;;
			*.gz) gzip -dc "$ko" >"$tmp/cowmap-$krel.ko" ;;
			*) cp "$ko" "$tmp/cowmap-$krel.ko" ;;
			esac
			/sbin/modinfo "$tmp/cowmap-$krel.ko" >"$info"
			if [ "$(awk '$1 == "vermagic:" { print $2 }' "$info")" != "$krel" ]; then
				{ echo "vermagic is not $krel:" && cat "$info"; } >>"$log"
				rc=1
			fi
			if [ "$(awk '$1 == "version:" { print $2 }' "$info")" != "$version" ]; then
				{ echo "module version is not $version:" && cat "$info"; } >>"$log"
				rc=1
			fi
		fi
	fi
	dk status -m cowmap -v "$version" -k "$krel" >"$tmp/status.log" 2>&1 || true
	grep -qF "cowmap/$version, $krel, $(uname -m): built" "$tmp/status.log" || {
		[ "$rc" = 0 ] && cat "$tmp/status.log" >>"$log"
		rc=1
	}
	result "$rc" "dkms build for $krel" "$log"
done

rc=0
dk remove -m cowmap -v "$version" --all >"$tmp/remove.log" 2>&1 || rc=$?
result "$rc" "dkms remove --all" "$tmp/remove.log"
finish
