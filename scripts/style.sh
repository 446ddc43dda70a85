#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Style checks of the kernel side ('make style'):
#  - checkpatch.pl --strict on the module's sources (make -C kmod sources)
#    and uapi/linux/cowmap.h, with
#    the checkpatch of Debian's linux-source-6.1 (extracted once into
#    $COWMAP_CACHE, never committed);
#  - sparse (C=2) on a copy of the module built against the 6.12 headers;
#  - scripts/version.sh check: the version's literal copies equal VERSION;
#  - shellcheck on the project's shell scripts, when shellcheck is installed.
# Anything reported fails.  Prints "N passed, N failed" last.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
COWMAP_CACHE=${COWMAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cowmap}
TARBALL=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}

die() {
	echo "style.sh: $*" >&2
	exit 1
}

cd "$TOP"
pass=0 fail=0
result() {	# name rc
	if [ "$2" = 0 ]; then
		echo "ok - $1"
		pass=$((pass + 1))
	else
		echo "not ok - $1"
		fail=$((fail + 1))
	fi
}

# ---- checkpatch --------------------------------------------------------
[ -f "$TARBALL" ] || die "$TARBALL missing: run 'make deps' (package linux-source-6.1)"
ver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || stat -c %Y "$TARBALL")
cpdir=$COWMAP_CACHE/checkpatch-$ver
if [ ! -f "$cpdir/checkpatch.pl" ]; then
	mkdir -p "$COWMAP_CACHE"
	tmp=$(mktemp -d "$cpdir.tmp.XXXXXX")
	tar -xJf "$TARBALL" -C "$tmp" --strip-components=2 \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch ||
		die "cannot extract checkpatch.pl from $TARBALL"
	rm -rf "$cpdir"
	mv "$tmp" "$cpdir"
fi

# No type is ignored: every file checked here is kernel code or a uapi
# header, where all of checkpatch's rules apply as they would in-tree.
# Out-of-tree-only rules are switched off by --no-tree (no MAINTAINERS,
# no kernel tree to look up).
# The module's sources as kmod/Kbuild lists them (not the build's
# generated cowmap.mod.c).
mapfile -t files < <(make -s -C kmod sources | sed 's|^|kmod/|')
files+=(uapi/linux/cowmap.h)
rc=0
perl "$cpdir/checkpatch.pl" --no-tree --strict --show-types --quiet --no-summary \
	--color=never -f "${files[@]}" || rc=$?
result "checkpatch --strict ${files[*]}" "$rc"

# ---- sparse --------------------------------------------------------------
kdir=$(find /usr/src -maxdepth 1 -name 'linux-headers-6.12.*+deb12-amd64' | sort -V | tail -n1)
[ -n "$kdir" ] || die "no /usr/src/linux-headers-6.12.*+deb12-amd64: run 'make deps'"
command -v sparse >/dev/null || die "sparse missing: run 'make deps'"
sdir=$BUILD/style-sparse
mkdir -p "$sdir"
make -s -C "$TOP/kmod" srctree DEST="$(realpath -m "$sdir")"
rc=0
make -s -j"$(nproc)" -C "$kdir" M="$sdir/kmod" C=2 W=1 modules >"$sdir.log" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
	cat "$sdir.log"
elif grep -E '(warning|error):' "$sdir.log"; then
	rc=1
fi
result "sparse (C=2) against $(basename "$kdir")" "$rc"

# ---- version -------------------------------------------------------------
# The literal copies of the VERSION file (uapi header, dkms.conf,
# debian/changelog, man pages) agree with it.
rc=0
scripts/version.sh check || rc=$?
result "version literals equal VERSION ($(cat VERSION))" "$rc"

# ---- shellcheck ------------------------------------------------------------
if command -v shellcheck >/dev/null; then
	mapfile -t scripts < <(
		{
			find scripts selftests -type f -name '*.sh'
			echo selftests/vm/guest/init
			echo selftests/powercut/init
			echo selftests/powercut/lw-init
			[ -f .ci/run ] && echo .ci/run
		} | sort -u
	)
	rc=0
	shellcheck -x "${scripts[@]}" || rc=$?
	result "shellcheck (${#scripts[@]} scripts)" "$rc"
else
	echo "# shellcheck not installed: shell scripts not checked"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
