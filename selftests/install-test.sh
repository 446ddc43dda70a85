#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# 'make install' / 'make uninstall' as a packager runs them: into a
# temporary DESTDIR with a PREFIX other than the build's, no root.  Checks
# the installed tree file by file, that the installed files work from there
# (cowmap.pc, headers, static and shared library, the CLI finding its
# preload shim), that the libraries export only cowmap_*, that the release
# CLI has no test hooks, that nothing outside DESTDIR changed (no depmod,
# no ldconfig), and that uninstall leaves no file behind.  Then the same
# for install-module when a kernel tree is there.
#
# Prints TAP-style "ok"/"not ok" lines, then "N passed, N failed".
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
# shellcheck source=selftests/tap.sh
. "$TOP/selftests/tap.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cowmap-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
stamp=$tmp/stamp
touch "$stamp"
sleep 1
mk() {
	make -s -C "$TOP" BUILD="$BUILD" "$@" >"$tmp/make.log" 2>&1
}

# Build with the default PREFIX, install with another one.
mk userspace || { ok 1 "make userspace" "$(tail -n 20 "$tmp/make.log")"; exit 1; }

check_layout() {	# DESTDIR PREFIX LIBDIR [make variables...]
	local d=$1 p=$2 l=$3 rc out expect bin
	shift 3
	rc=0
	mk install-userspace DESTDIR="$d" PREFIX="$p" "$@" || rc=$?
	ok "$rc" "make install-userspace DESTDIR PREFIX=$p $*" "$(tail -n 20 "$tmp/make.log")"

	expect=$(sort <<EOF
$d$p/bin/cowmap
$d$p/include/cowmap.h
$d$p/include/cowmap/linux/cowmap.h
$d$l/cowmap/libcowmap-preload.so
$d$l/libcowmap.a
$d$l/libcowmap.so
$d$l/libcowmap.so.1
$d$l/libcowmap.so.1.0.0
$d$l/pkgconfig/cowmap.pc
$d$p/share/bash-completion/completions/cowmap
$d$p/share/doc/cowmap/60-cowmap.rules.example
$d$p/share/man/man3/libcowmap.3
$d$p/share/man/man8/cowmap.8
EOF
)
	out=$(find "$d" \( -type f -o -type l \) | sort)
	[ "$out" = "$expect" ]
	ok $? "installed tree is exactly the expected files" "$(diff <(echo "$expect") <(echo "$out"))"

	rc=0
	[ "$(readlink "$d$l/libcowmap.so")" = libcowmap.so.1 ] &&
		[ "$(readlink "$d$l/libcowmap.so.1")" = libcowmap.so.1.0.0 ] || rc=1
	[ -x "$d$p/bin/cowmap" ] && [ ! -x "$d$l/libcowmap.a" ] || rc=1
	ok "$rc" "symlinks and modes"

	# cowmap.pc: the install-time PREFIX, libmnl as a package.
	out=$(PKG_CONFIG_PATH=$d$l/pkgconfig PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 \
		PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 pkg-config --cflags --libs cowmap 2>&1)
	grep -q "^prefix=$p\$" "$d$l/pkgconfig/cowmap.pc" &&
		grep -q '^Requires.private: libmnl$' "$d$l/pkgconfig/cowmap.pc" &&
		grep -q -- "^-I$p/include/cowmap .*-L$l -lcowmap *\$" <<<"$out"
	ok $? "cowmap.pc says $p, Requires.private: libmnl" "$out" "$(cat "$d$l/pkgconfig/cowmap.pc")"

	# A program with its own xstrdup and write_full links with the
	# static library (its internal helpers are not global), and one
	# links with the shared library; both from the installed headers.
	cat >"$tmp/prog.c" <<'EOF'
#include <cowmap.h>
#include <stdio.h>
#include <string.h>
char *xstrdup(const char *s);
char *xstrdup(const char *s) { return strdup(s); }
int write_full(int fd, const void *b, size_t n);
int write_full(int fd, const void *b, size_t n) { (void)fd; (void)b; return (int)n; }
int main(void)
{
	printf("%s %s\n", cowmap_strerror(-22), xstrdup("x"));
	return write_full(1, "", 0);
}
EOF
	rc=0
	cc -Wall -I"$d$p/include/cowmap" -I"$d$p/include" -o "$tmp/prog-static" "$tmp/prog.c" \
		"$d$l/libcowmap.a" -lmnl -lpthread >"$tmp/cc.log" 2>&1 && "$tmp/prog-static" >/dev/null || rc=1
	ok "$rc" "a program defining xstrdup/write_full links with libcowmap.a" "$(cat "$tmp/cc.log")"
	rc=0
	cc -Wall -I"$d$p/include/cowmap" -I"$d$p/include" -o "$tmp/prog-shared" "$tmp/prog.c" \
		-L"$d$l" -lcowmap >"$tmp/cc.log" 2>&1 &&
		LD_LIBRARY_PATH=$d$l "$tmp/prog-shared" >/dev/null || rc=1
	ok "$rc" "and with libcowmap.so" "$(cat "$tmp/cc.log")"

	# The CLI finds the shim relative to itself (no build-time path).
	bin=$d$p/bin/cowmap
	out=$(env -u COWMAP_PRELOAD "$bin" run -f "$tmp/stamp" -d "$tmp" true 2>&1)
	if [ -e /dev/cowmap ]; then
		ok 0 "CLI finds its preload shim # SKIP /dev/cowmap exists here"
	else
		! grep -q 'cannot find libcowmap-preload.so' <<<"$out" &&
			grep -q '/dev/cowmap' <<<"$out"
		ok $? "installed CLI finds $l/cowmap/libcowmap-preload.so" "$out"
	fi

	rc=0
	mk uninstall-userspace DESTDIR="$d" PREFIX="$p" "$@" || rc=$?
	out=$(find "$d" \( -type f -o -type l \))
	[ "$rc" = 0 ] && [ -z "$out" ]
	ok $? "make uninstall-userspace leaves no file" "$out" "$(tail -n 20 "$tmp/make.log")"
}

check_layout "$tmp/root1" /opt/cm /opt/cm/lib
check_layout "$tmp/root2" /usr /usr/lib/x86_64-linux-gnu LIBDIR=/usr/lib/x86_64-linux-gnu
# Leave the build tree's CLI as a plain 'make' builds it.
mk cli

# Exported symbols of the built libraries.
out=$(nm -g --defined-only "$BUILD/libcowmap.a" | awk 'NF == 3 && $3 !~ /^cowmap_/')
[ -z "$out" ]
ok $? "libcowmap.a defines only cowmap_* globally" "$out"
out=$(nm -D --defined-only "$BUILD/libcowmap.so.1.0.0" | awk 'NF == 3 && $3 !~ /^cowmap_/ && $2 != "A"')
[ -z "$out" ]
ok $? "libcowmap.so exports only cowmap_*" "$out"
# The session calls' 1.0 names stay exported (COWMAP_1.0) at the address
# of their cowmap_session_* names (COWMAP_1.2).
out=''
syms=$(nm -D --defined-only "$BUILD/libcowmap.so.1.0.0")
for f in map unmap version read_events drain discard diff commit; do
	old=$(awk -v n="cowmap_$f@@COWMAP_1.0" '$3 == n { print $1 }' <<<"$syms")
	new=$(awk -v n="cowmap_session_$f@@COWMAP_1.2" '$3 == n { print $1 }' <<<"$syms")
	if [ -z "$old" ] || [ "$old" != "$new" ]; then
		out+="cowmap_$f@COWMAP_1.0 at '$old', cowmap_session_$f@COWMAP_1.2 at '$new'; "
	fi
done
[ -z "$out" ]
ok $? "libcowmap.so keeps the 1.0 names of the session calls" "$out"
out=$(readelf -d "$BUILD/libcowmap-preload.so" | grep SONAME)
grep -q 'libcowmap-preload.so' <<<"$out"
ok $? "libcowmap-preload.so has a SONAME" "$out"

# Test hooks only in the test build.
! grep -aq COWMAP_TEST_CRASH_AT "$BUILD/cowmap" "$BUILD/libcowmap.a" "$BUILD/libcowmap.so.1.0.0"
ok $? "release CLI and libraries have no COWMAP_TEST_CRASH_AT hook"
rc=0
mk test-build && grep -aq COWMAP_TEST_CRASH_AT "$BUILD/test/cowmap" || rc=1
ok "$rc" "the test build has it"

# The module, for KDIR or else for the newest Debian 6.1 and 6.12 header
# trees (their default module directories differ: extra/ and updates/).
# The release is the kernel's UTS_RELEASE (Debian's 6.1 headers have
# another string in include/config/kernel.release).
kdirs=()
if [ -n "${KDIR:-}" ]; then
	kdirs=("$KDIR")
else
	kdirs+=("$(find /usr/src -maxdepth 1 -name 'linux-headers-6.1.0-*-amd64' | sort -V | tail -n1)")
	kdirs+=("$(find /usr/src -maxdepth 1 -name 'linux-headers-6.12.*-amd64' | sort -V | tail -n1)")
fi
for kdir in "${kdirs[@]}"; do
	krel=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$kdir/include/generated/utsrelease.h" 2>/dev/null)
	if [ -z "$kdir" ] || [ -z "$krel" ]; then
		ok 0 "make install-module # SKIP no kernel tree ${kdir:-}"
		continue
	fi
	d=$tmp/root3
	rc=0
	mk install-module KDIR="$kdir" DESTDIR="$d" PREFIX=/usr || rc=$?
	out=$(find "$d" \( -type f -o -type l \) | sort)
	[ "$rc" = 0 ] && [[ $out =~ ^"$d/lib/modules/$krel/updates/cowmap.ko"(\.xz|\.zst|\.gz)?$ ]]
	ok $? "make install-module DESTDIR: only lib/modules/$krel/updates/cowmap.ko*" \
		"$out" "$(tail -n 20 "$tmp/make.log")"
	rc=0
	mk uninstall-module KDIR="$kdir" DESTDIR="$d" || rc=$?
	out=$(find "$d" \( -type f -o -type l \))
	[ "$rc" = 0 ] && [ -z "$out" ]
	ok $? "make uninstall-module DESTDIR leaves no file ($krel)" "$out"
done

# Every SPDX identifier of the tree has its licence text in LICENSES/.
missing=
while read -r id; do
	base=${id%-or-later}
	base=${base%-only}
	base=${base%+}
	[ -f "$TOP/LICENSES/$base" ] || missing="$missing $id"
done < <(git -C "$TOP" grep -h -E '^[^[:alnum:]]{1,4} ?SPDX-License-Identifier: ' 2>/dev/null |
	sed 's/.*SPDX-License-Identifier: //; s/\*\/.*//' | tr '()' '  ' | tr ' ' '\n' |
	grep -v -E '^(|OR|AND|WITH|\.\*)$' | sort -u)
[ -z "$missing" ] && [ -f "$TOP/COPYING" ]
ok $? "COPYING, and LICENSES/ has a text for every SPDX identifier" "missing:$missing"

# Nothing outside DESTDIR: no depmod, no ldconfig, no module in /lib/modules.
out=$(find /lib/modules/*/modules.dep /lib/modules/*/updates /etc/ld.so.cache \
	/etc/udev/rules.d /usr/share/bash-completion/completions \
	-maxdepth 1 -newer "$stamp" 2>/dev/null)
[ -z "$out" ]
ok $? "nothing changed outside DESTDIR (modules.dep, updates/, ld.so.cache, udev, completions)" "$out"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
