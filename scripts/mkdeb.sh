#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# 'make deb': the Debian packages cowmap-dkms, libcowmap1, libcowmap-dev and
# cowmap, built by dpkg-buildpackage (debian/) from a copy of the tree (the
# files git tracks or would track, as they are in the work tree), with the
# native source package beside them.  Output: $BUILD/deb/ (the .debs, the
# .dsc and .tar.xz, .buildinfo, .changes); build log: $BUILD/deb/build.log.
# No root needed (Rules-Requires-Root: no).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
die() {
	echo "mkdeb.sh: $*" >&2
	exit 1
}

command -v dpkg-buildpackage >/dev/null || die "dpkg-buildpackage missing: run 'make deps'"
version=$("$TOP/scripts/version.sh")
"$TOP/scripts/version.sh" check >/dev/null || die "$("$TOP/scripts/version.sh" check)"

out=$BUILD/deb
work=$BUILD/deb-src
rm -rf "$out" "$work"
mkdir -p "$out" "$work/cowmap-$version"
if git -C "$TOP" rev-parse --git-dir >/dev/null 2>&1; then
	# Deleted but not yet committed files are left out.
	# shellcheck disable=SC2016 # the inner shell expands $f
	git -C "$TOP" ls-files -z --cached --others --exclude-standard |
		(cd "$TOP" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
		tar -C "$TOP" --null -T - -cf - | tar -C "$work/cowmap-$version" -xf -
else
	tar -C "$TOP" --exclude=./build --exclude='*.o' --exclude='*.ko' -cf - . |
		tar -C "$work/cowmap-$version" -xf -
fi

echo "building cowmap $version packages in $out (log: $out/build.log)"
rc=0
(cd "$work/cowmap-$version" && dpkg-buildpackage -us -uc -j"$(nproc)") >"$out/build.log" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
	tail -n 40 "$out/build.log" >&2
	die "dpkg-buildpackage failed (status $rc)"
fi
find "$work" -maxdepth 1 -type f -exec mv -t "$out" {} +
rm -rf "$work"
ls -1 "$out"/*.deb
