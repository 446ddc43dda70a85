#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The Debian packages ('make check' phase deb): builds them ('make deb'),
# runs lintian on them (any error or warning not overridden fails), checks
# each package's file list against the list below, then installs the four
# .debs on this host for real with dpkg (a disposable CI machine, as root):
# DKMS must build and install the module for the 6.1 and 6.12 kernels.
# Then boots the test VM with THAT module and the installed userspace
# (vm-run.sh --ko --sysroot; no build tree file in the guest) and runs
# selftests/deb/guest.sh there: cowmap run of a program built against the
# installed libcowmap-dev, then cowmap merge, the file's bytes checked.
# The packages are purged at the end (and on any exit).
#
# Refuses (and fails) if cowmap packages or a DKMS cowmap are already
# installed.  COWMAP_DEB_KERNELS: the kernels booted (default "6.12 6.1").
# Prints TAP-style "ok"/"not ok" lines, then "N passed, N failed".
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
export BUILD
PKGS=(cowmap-dkms libcowmap1 libcowmap-dev cowmap)
# shellcheck source=selftests/tap.sh
. "$TOP/selftests/tap.sh"
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

installed() {	# the cowmap packages dpkg knows (installed or with config files)
	dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null |
		awk '$2 != "not-installed" { print $1 }'
}

version=$("$TOP/scripts/version.sh")
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
arch=$(dpkg --print-architecture)

if [ "$(id -u)" != 0 ]; then
	ok 1 "deb-test.sh installs packages: it must run as root"
	finish
fi
out=$(installed)
dk=$(dkms status -m cowmap 2>/dev/null)
if [ -n "$out" ] || [ -n "$dk" ] || [ -e "/usr/src/cowmap-$version" ]; then
	ok 1 "no cowmap packages or DKMS cowmap installed before the test (refusing to touch them)" \
		"packages: $out" "dkms: $dk" "$(ls -d /usr/src/cowmap-* 2>/dev/null)"
	finish
fi

tmp=$(realpath "$(mktemp -d "${TMPDIR:-/tmp}/cowmap-deb.XXXXXX")")
we_installed=0
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	if [ "$we_installed" = 1 ] && [ -n "$(installed)" ]; then
		dpkg --purge "${PKGS[@]}" >>"$tmp/purge.log" 2>&1 ||
			echo "deb-test.sh: dpkg --purge failed: $(tail -n 5 "$tmp/purge.log")" >&2
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# ---- build ---------------------------------------------------------------
rc=0
"$TOP/scripts/mkdeb.sh" >"$tmp/mkdeb.log" 2>&1 || rc=$?
ok "$rc" "make deb (dpkg-buildpackage)" "$(tail -n 30 "$tmp/mkdeb.log")"
[ "$rc" = 0 ] || finish
deb=$BUILD/deb
debs=()
for p in "${PKGS[@]}"; do
	a=$arch
	[ "$p" = cowmap-dkms ] && a=all
	debs+=("$deb/${p}_${version}_$a.deb")
done
out=$(ls "$deb"/*.deb)
[ "$out" = "$(printf '%s\n' "${debs[@]}" | sort)" ]
ok $? "exactly the four packages, version $version" "$out"

# ---- lintian -------------------------------------------------------------
rc=0
lintian --fail-on error,warning --display-level '>=warning' --tag-display-limit 0 \
	"$deb/cowmap_${version}_$arch.changes" >"$tmp/lintian.log" 2>&1 || rc=$?
grep -v 'running with root privileges' "$tmp/lintian.log" | grep -q . && rc=1
ok "$rc" "lintian: no error or warning (source and the four packages)" "$(cat "$tmp/lintian.log")"

# ---- file lists ----------------------------------------------------------
# Files and symlinks ("path -> target"), directories left out.
contents() {
	dpkg-deb -c "$1" | awk '$1 !~ /^d/ { $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print }' |
		sed 's|^\./|/|' | LC_ALL=C sort
}
doc() {	# package: its copyright and changelog
	printf '/usr/share/doc/%s/%s\n' "$1" changelog.gz "$1" copyright
}
# Section 3 pages of the tree, when there are some.
man3=$(cd "$TOP" && for f in lib/*.3 cli/*.3; do
	[ -f "$f" ] && echo "/usr/share/man/man3/${f##*/}.gz"
done)
# The DKMS source tree: the build files, the .c files of kmod/Kbuild's
# cowmap-y, the module's headers and the uapi header, in the repository's
# layout.
kfiles=$(
	src=/usr/src/cowmap-$version
	printf '%s\n' "$src/dkms.conf" "$src/kmod/Kbuild" "$src/kmod/Makefile" \
		"$src/kmod/probe.sh" "$src/uapi/linux/cowmap.h"
	read -ra objs < <(sed -n 's/^cowmap-y[[:space:]]*:=//p' "$TOP/kmod/Kbuild")
	for o in "${objs[@]}"; do
		echo "$src/kmod/${o%.o}.c"
	done
	cd "$TOP" && for h in kmod/*.h; do echo "$src/$h"; done
)
declare -A expect
expect[cowmap-dkms]="$(doc cowmap-dkms)
$kfiles"
expect[libcowmap1]="$(doc libcowmap1)
/usr/lib/$ma/libcowmap.so.1 -> libcowmap.so.$version
/usr/lib/$ma/libcowmap.so.$version"
expect[libcowmap-dev]="$(doc libcowmap-dev)
/usr/include/cowmap.h
/usr/include/cowmap/linux/cowmap.h
/usr/lib/$ma/libcowmap.a
/usr/lib/$ma/libcowmap.so -> libcowmap.so.1
/usr/lib/$ma/pkgconfig/cowmap.pc
$(cd "$TOP" && for f in examples/*.c; do echo "/usr/share/doc/libcowmap-dev/examples/${f##*/}"; done)
$man3"
expect[cowmap]="$(doc cowmap)
/usr/bin/cowmap
/usr/lib/$ma/cowmap/libcowmap-preload.so
/usr/share/bash-completion/completions/cowmap
/usr/share/doc/cowmap/60-cowmap.rules.example
/usr/share/man/man8/cowmap.8.gz"
for i in "${!PKGS[@]}"; do
	p=${PKGS[$i]}
	want=$(grep . <<<"${expect[$p]}" | LC_ALL=C sort)
	got=$(contents "${debs[$i]}")
	[ "$got" = "$want" ]
	ok $? "$p: the expected files" "$(diff <(echo "$want") <(echo "$got"))"
done

# ---- install -------------------------------------------------------------
# DKMS signs the module with a key it makes: ours, in $tmp, not
# /var/lib/dkms/mok.key.
export mok_signing_key=$tmp/mok.key mok_certificate=$tmp/mok.pub
we_installed=1
rc=0
dpkg -i "${debs[@]}" >"$tmp/dpkg.log" 2>&1 || rc=$?
ok "$rc" "dpkg -i the four packages" "$(tail -n 30 "$tmp/dpkg.log")"
[ "$rc" = 0 ] || finish

mapfile -t krels < <(find /usr/src -maxdepth 1 -name 'linux-headers-6.1.0-*-amd64' | sort -V | tail -n1;
	find /usr/src -maxdepth 1 -name 'linux-headers-6.12.*-amd64' | sort -V | tail -n1)
declare -A ko_of
for h in "${krels[@]}"; do
	krel=${h#/usr/src/linux-headers-}
	st=$(dkms status -m cowmap -v "$version" -k "$krel" 2>&1)
	ko=$(find "/lib/modules/$krel/updates/dkms" -name 'cowmap.ko*' 2>/dev/null | head -n1)
	rc=1
	if grep -q "^cowmap/$version, $krel, [^:]*: installed" <<<"$st" && [ -n "$ko" ]; then
		case $ko in
		*.xz) xz -dc "$ko" >"$tmp/cowmap-$krel.ko" ;;
		*.zst) zstd -q -dc "$ko" >"$tmp/cowmap-$krel.ko" ;;
		*.gz) gzip -dc "$ko" >"$tmp/cowmap-$krel.ko" ;;
		*) cp "$ko" "$tmp/cowmap-$krel.ko" ;;
		esac
		[ "$(/sbin/modinfo -F version "$tmp/cowmap-$krel.ko")" = "$version" ] &&
			[ "$(/sbin/modinfo -F vermagic "$tmp/cowmap-$krel.ko" | cut -d' ' -f1)" = "$krel" ] &&
			rc=0
	fi
	ok "$rc" "DKMS installed cowmap $version for $krel: ${ko:-no .ko}" "$st" "$(tail -n 20 "$tmp/dpkg.log")"
	[ "$rc" = 0 ] && ko_of[$krel]=$tmp/cowmap-$krel.ko
done

# The installed development files: pkg-config, headers, -lcowmap.
out=$(pkg-config --modversion cowmap 2>&1)
[ "$out" = "$version" ]
ok $? "pkg-config --modversion cowmap (installed cowmap.pc): $version" "$out"
sysroot=$tmp/sysroot
mkdir -p "$sysroot/opt/cowmap-deb"
cp "$TOP/selftests/tap.sh" "$sysroot/opt/cowmap-deb/"
rc=0
# shellcheck disable=SC2046 # pkg-config's flags are words
cc -Wall -Wextra -Werror $(pkg-config --cflags cowmap) -o "$sysroot/opt/cowmap-deb/cowmap-deb-smoke" \
	"$TOP/selftests/deb/smoke.c" $(pkg-config --libs cowmap) >"$tmp/cc.log" 2>&1 || rc=$?
ok "$rc" "a program builds against the installed libcowmap-dev" "$(cat "$tmp/cc.log")"

# The guest's userspace: every file the three userspace packages installed.
dpkg -L cowmap libcowmap1 libcowmap-dev | while read -r f; do
	if [ -f "$f" ] || [ -L "$f" ]; then
		echo "${f#/}"
	fi
done >"$tmp/files"
tar -C / -cf - -T "$tmp/files" | tar -C "$sysroot" -xf -
ok $? "the installed files copied for the VM ($(wc -l <"$tmp/files") files)"

# ---- the VM ----------------------------------------------------------------
read -ra kernels <<<"${COWMAP_DEB_KERNELS:-6.12 6.1}"
for k in "${kernels[@]}"; do
	krel=''
	case $k in 6.1) pat='6.1.0-*' ;; *) pat="$k.*" ;; esac
	for r in "${!ko_of[@]}"; do
		# shellcheck disable=SC2053 # pat is a glob
		[[ $r == $pat ]] && krel=$r
	done
	if [ -z "$krel" ]; then
		ok 1 "VM $k: no DKMS-installed module for it"
		continue
	fi
	{
		printf 'VERSION=%q\n' "$version"
		printf 'SRCVERSION=%q\n' "$(/sbin/modinfo -F srcversion "${ko_of[$krel]}")"
		printf 'MULTIARCH=%q\n' "$ma"
		printf 'LIBSHA256=%q\n' "$(sha256sum "/usr/lib/$ma/libcowmap.so.$version" | cut -d' ' -f1)"
	} >"$sysroot/opt/cowmap-deb/expect"
	rc=0
	COWMAP_VM_QUIET=1 COWMAP_VM_TIMEOUT=${COWMAP_VM_TIMEOUT:-600} \
		"$TOP/selftests/vm/vm-run.sh" --kver "$k" --ko "${ko_of[$krel]}" --sysroot "$sysroot" \
		"$TOP/selftests/deb/guest.sh" >"$tmp/vm-$k.log" 2>&1 || rc=$?
	out=$(grep -a -E '^guest: [0-9]+ passed, [0-9]+ failed' "$BUILD/vm/vm-run-$k/output.log")
	sed -n 's/^/# '"$k"': /p' "$BUILD/vm/vm-run-$k/output.log" | grep -a -E '^# [^:]+: (ok|not ok) '
	[ "$rc" = 0 ] && [[ $out =~ ^guest:\ ([0-9]+)\ passed,\ 0\ failed$ ]] &&
		[ "${BASH_REMATCH[1]}" -gt 0 ]
	ok $? "VM $k ($krel): the installed module and files, cowmap run + merge (${out:-no result})" \
		"$(tail -n 30 "$tmp/vm-$k.log")"
done

# ---- purge -----------------------------------------------------------------
rc=0
dpkg --purge "${PKGS[@]}" >"$tmp/purge.log" 2>&1 || rc=$?
out="$(installed) $(dkms status -m cowmap 2>&1) $(ls -d "/usr/src/cowmap-$version" \
	/lib/modules/*/updates/dkms/cowmap.ko* 2>/dev/null)"
[ "$rc" = 0 ] && [ -z "${out// /}" ]
ok $? "dpkg --purge: no package, DKMS entry, source tree or module left" "$out" \
	"$(tail -n 20 "$tmp/purge.log")"
finish
