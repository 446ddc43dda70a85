#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run the host test binary, then the bounded fuzz run as one more test and
# the VM runners' console checks (selftests/vm/lib-test.sh) as one more;
# print TAP, the skips checked against selftests/expected-skips (kernel
# "host", "host-user" when not root: an unlisted skip and a listed skip that did not happen are each
# one more failure; selftests/check-skips.sh) and a final
# "N passed, N failed, N skipped" line.  Skips (COWMAP_TEST_QUICK ones, a
# fuzz run without clang) are counted as skips, never as passes.
#   run.sh BIN "FUZZ-COMMAND"
set -uo pipefail
shopt -s lastpipe

bin=$1
fuzz=${2:-}
pass=0
fail=0
skip=0
summary=
here=$(cd "$(dirname "$0")" && pwd)
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT

nfuzz=0
[ -n "$fuzz" ] && [ "${COWMAP_SKIP_FUZZ:-0}" != 1 ] && nfuzz=1
total=0
# out LINE: print LINE and keep it for the skip check.
out() {
	printf '%s\n' "$1"
	printf '%s\n' "$1" >>"$tap"
}

out "# ---- cowmap-host-tests"
"$bin" | while IFS= read -r line; do
	if [[ $line =~ ^1\.\.([0-9]+)$ ]]; then
		total=$((BASH_REMATCH[1] + nfuzz + 1))
		out "1..$total"
	elif [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
		summary=$line
		pass=${BASH_REMATCH[1]}
		fail=${BASH_REMATCH[2]}
		skip=${BASH_REMATCH[3]}
	else
		out "$line"
	fi
done
rc=${PIPESTATUS[0]}
if [ -z "$summary" ]; then
	echo "not ok - host test binary died (status $rc) before its summary"
	fail=$((fail + 1))
elif [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
	echo "not ok - host test binary exited with status $rc"
	fail=$((fail + 1))
fi

if [ "$nfuzz" = 1 ]; then
	log=$(mktemp)
	out "# ---- fuzz"
	if $fuzz run >"$log" 2>&1; then
		grep '^# ' "$log" || true
		if grep -q '^SKIP' "$log"; then
			line="ok $((total - 1)) - fuzz # SKIP $(sed -n 's/^SKIP:* *//p' "$log" | head -n1)"
			skip=$((skip + 1))
		else
			line="ok $((total - 1)) - fuzz (log reader and merge planner)"
			pass=$((pass + 1))
		fi
	else
		tail -n 40 "$log" | sed 's/^/# /'
		line="not ok $((total - 1)) - fuzz (log reader and merge planner)"
		fail=$((fail + 1))
	fi
	out "$line"
	rm -f "$log"
fi

log=$(mktemp)
if "$here/../vm/lib-test.sh" >"$log" 2>&1; then
	line="ok $total - VM runners' console checks"
	pass=$((pass + 1))
else
	sed 's/^/# /' "$log"
	line="not ok $total - VM runners' console checks"
	fail=$((fail + 1))
fi
out "$line"
rm -f "$log"

# As many results as the plan said.
ran=$(grep -cE '^(not )?ok( |$)' "$tap")
if [ "$ran" != "$total" ]; then
	echo "not ok - $ran results for a plan of $total"
	fail=$((fail + 1))
fi

# The skips: each one listed for "host" (as root; "host-user" otherwise),
# each listed one seen.
kernel=host
[ "$(id -u)" = 0 ] || kernel=host-user
skips=$(mktemp)
rc=0
"$here/../check-skips.sh" "$kernel" "$tap" >"$skips" 2>&1 || rc=$?
grep -v '^# skip expected' "$skips"
bad=$(grep -c '^not ok' "$skips")
# A malformed list (status 2) with nothing reported is one failure.
[ "$rc" = 0 ] || [ "$bad" != 0 ] || bad=1
rm -f "$skips"
fail=$((fail + bad))
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
