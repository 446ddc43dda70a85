#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run the host test binary, then the bounded fuzz run as one more test;
# print TAP and a final "N passed, N failed" line.
#   run.sh BIN "FUZZ-COMMAND"
set -uo pipefail
shopt -s lastpipe

bin=$1
fuzz=${2:-}
pass=0
fail=0
summary=

nfuzz=0
[ -n "$fuzz" ] && [ "${COWMAP_SKIP_FUZZ:-0}" != 1 ] && nfuzz=1
total=0
"$bin" | while IFS= read -r line; do
	if [[ $line =~ ^1\.\.([0-9]+)$ ]]; then
		total=$((BASH_REMATCH[1] + nfuzz))
		echo "1..$total"
	elif [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		summary=$line
		pass=${BASH_REMATCH[1]}
		fail=${BASH_REMATCH[2]}
	else
		printf '%s\n' "$line"
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
	if $fuzz run >"$log" 2>&1; then
		grep '^# ' "$log" || true
		if grep -q '^SKIP' "$log"; then
			echo "ok $total - fuzz # SKIP $(grep '^SKIP' "$log" | head -n1)"
		else
			echo "ok $total - fuzz (log reader and merge planner)"
		fi
		pass=$((pass + 1))
	else
		tail -n 40 "$log" | sed 's/^/# /'
		echo "not ok $total - fuzz (log reader and merge planner)"
		fail=$((fail + 1))
	fi
	rm -f "$log"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
