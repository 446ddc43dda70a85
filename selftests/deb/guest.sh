#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The Debian packages' smoke test inside the VM (selftests/deb-test.sh boots
# it with vm-run.sh --ko <the .ko DKMS installed> --sysroot <the files the
# packages installed>).  Everything runs from /usr: /usr/bin/cowmap, its
# shim in /usr/lib/<multiarch>/cowmap/, libcowmap.so.1, and
# /opt/cowmap-deb/cowmap-deb-smoke built against the installed
# libcowmap-dev.  /opt/cowmap-deb/expect (from the host) holds VERSION, the
# installed module's srcversion, the multiarch triplet and the installed
# libcowmap.so.1's sha256.
# Prints "ok"/"not ok" lines, then "guest: N passed, N failed".
set -u

# shellcheck source=/dev/null # written by selftests/deb-test.sh
. /opt/cowmap-deb/expect
smoke=/opt/cowmap-deb/cowmap-deb-smoke
# shellcheck source=selftests/tap.sh
. /opt/cowmap-deb/tap.sh

# The installed files, not a build tree's.
out=$(command -v cowmap)
[ "$out" = /usr/bin/cowmap ] && [ ! -e /usr/local/bin/cowmap ]
ok $? "cowmap is /usr/bin/cowmap (no other)" "$out"
out=$(cowmap --version 2>&1)
[ "$out" = "cowmap $VERSION" ]
ok $? "cowmap --version says $VERSION" "$out"

# The module is the one DKMS built and installed.
out="$(cat /sys/module/cowmap/version) $(cat /sys/module/cowmap/srcversion)"
[ "$out" = "$VERSION $SRCVERSION" ]
ok $? "loaded module: version $VERSION, srcversion of the DKMS-installed .ko" "$out"

# The program built against libcowmap-dev runs with the packaged
# libcowmap.so.1 (the initramfs is not merged-/usr: the copy the loader
# finds may be in /lib; its bytes are the installed file's) and reads the
# module's version through it.
out=$(LD_TRACE_LOADED_OBJECTS=1 "$smoke" 2>&1)
lib=$(sed -nE 's/^[[:space:]]*libcowmap\.so\.1 => ([^ ]+) .*/\1/p' <<<"$out")
sum=$(sha256sum "${lib:-/nonexistent}" 2>&1 | cut -d' ' -f1)
[ "$sum" = "$LIBSHA256" ] && [ -z "$(ls /usr/local/lib/libcowmap* 2>/dev/null)" ]
ok $? "cowmap-deb-smoke runs with the installed libcowmap.so.1 ($lib)" "$out" "sha256 $sum"
out=$("$smoke" version 2>&1)
[ "$out" = "$VERSION" ]
ok $? "cowmap_session_version() through libcowmap.so.1: $VERSION" "$out"

# cowmap run + merge: the program's writes stay private until the merge,
# which applies exactly them.
dir=$COWMAP_SCRATCH/deb
rm -rf "$dir"
mkdir -p "$dir/logs"
text="written under cowmap run by pid $$"
off=4090	# across the first page boundary
head -c 12288 /dev/zero | tr '\0' 'a' >"$dir/data"
cp "$dir/data" "$dir/base"
cp "$dir/base" "$dir/expect"
printf '%s' "$text" | dd of="$dir/expect" bs=1 seek="$off" conv=notrunc status=none
cmp -s "$dir/base" "$dir/expect"
[ $? = 1 ]
ok $? "the expected file differs from the base"

out=$(cd "$dir" && cowmap run -f data -d logs -- "$smoke" write data "$off" "$text" 2>&1)
ok $? "cowmap run -f data -d logs -- cowmap-deb-smoke write" "$out"
out=$(cmp "$dir/data" "$dir/base" 2>&1)
ok $? "after the run the file is unchanged" "$out"
logs=("$dir"/logs/*)
[ ${#logs[@]} = 1 ] && [ -f "${logs[0]}" ]
ok $? "the run left one log" "$(ls -l "$dir/logs")"

out=$(cowmap merge "$dir/data" "${logs[0]}" 2>&1)
ok $? "cowmap merge data LOG" "$out"
out=$(cmp "$dir/data" "$dir/expect" 2>&1)
ok $? "after the merge the file holds the program's bytes, nothing else" \
	"$out $(cmp -l "$dir/data" "$dir/expect" 2>&1 | head -n 5)"

echo "guest: $pass passed, $fail failed"
{
	echo "COUNT_PASS=$pass"
	echo "COUNT_FAIL=$fail"
} >>/run/cowmap-counts
[ "$fail" = 0 ]
