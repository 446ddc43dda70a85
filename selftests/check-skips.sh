#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Check the skips of a test run against the allow-list selftests/expected-skips.
#
# usage: check-skips.sh KERNEL LOG [LIST]
#
# KERNEL is 6.1, 6.12, debug (a VM run), or host or host-user (the host
# tests run as root or not).  LOG is
# TAP output in sections: a line "# ---- NAME" starts the output of test
# binary NAME (the VM runner's guest prints one per binary; "vm" holds the
# guest's own tests).  A skip is a TAP line "ok ... # SKIP reason"; its test
# is the line's description ("ok 3 - name # SKIP ..."; "ok 3 vm: name # SKIP
# ...") or, in kselftest harness output (where the skip line has none), the
# name of the harness's "#   OK  fixture.test" line just before it.
#
# Every skip must match a line of LIST for KERNEL; every line of LIST for
# KERNEL must match a skip of the run (a listed skip that did not happen,
# the test having passed, failed or not run, is reported too: the list stays
# true).  A LIST line whose kernels start with "?" is a skip that may
# happen or not (one that depends on the machine's state, never on the
# kernel's features): it is never reported as missing.  Prints one line per skip ("# skip expected: ..." or "not ok -
# unexpected skip: ...") and per unmet list line, then
#   skips: N expected, N unexpected, N listed but not seen
# Exit status 0 when both of the last two are 0, 1 otherwise, 2 on bad usage
# or a malformed LIST (a LIST line with no reason is malformed).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: ${0##*/} KERNEL LOG [LIST]" >&2
	exit 2
fi
kernel=$1 log=$2
list=${3:-$(cd "$(dirname "$0")" && pwd)/expected-skips}
[ -r "$log" ] || { echo "${0##*/}: $log: cannot read" >&2; exit 2; }
[ -r "$list" ] || { echo "${0##*/}: $list: cannot read" >&2; exit 2; }

KERNEL=$kernel LIST=$list awk '
# A glob (only "*" is special) as an anchored regular expression.
function glob_re(g,    i, c, re) {
	re = "^"
	for (i = 1; i <= length(g); i++) {
		c = substr(g, i, 1)
		if (c == "*")
			re = re ".*"
		else if (index("\\^$.[]|()+?{}/", c))
			re = re "\\" c
		else
			re = re c
	}
	return re "$"
}
function trim(s) {
	sub(/^[ \t]+/, "", s)
	sub(/[ \t\r]+$/, "", s)
	return s
}
function for_kernel(ks,    n, i, k) {
	n = split(ks, k, ",")
	for (i = 1; i <= n; i++)
		if (k[i] == ENVIRON["KERNEL"] || (k[i] == "*" && ENVIRON["KERNEL"] !~ /^host/))
			return 1
	return 0
}
BEGIN {
	nl = 0
	while ((getline line < ENVIRON["LIST"]) > 0) {
		lineno++
		if (line ~ /^[ \t]*(#|$)/)
			continue
		if (split(line, f, /[ \t]+/) < 4) {
			printf "%s:%d: malformed (want: kernels binary test reason): %s\n",
			       ENVIRON["LIST"], lineno, line > "/dev/stderr"
			bad_list = 1
			continue
		}
		maybe = sub(/^\?/, "", f[1])
		if (!for_kernel(f[1]))
			continue
		nl++
		lk[nl] = f[1]; lb[nl] = f[2]; lt[nl] = f[3]; lmaybe[nl] = maybe
		r = line
		sub(/^[ \t]*[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+/, "", r)
		lr[nl] = trim(r)
		ltre[nl] = glob_re(lt[nl]); lrre[nl] = glob_re(lr[nl])
		seen[nl] = 0
	}
	if (bad_list)
		exit 2
	bin = "?"
	test = ""
}
/^# ---- / { bin = trim(substr($0, 8)); test = ""; next }
# The kselftest harness: "#            OK  fixture.test" before the result.
/^#[ \t]+(OK|FAIL)[ \t]+[^ \t]+[ \t]*$/ { test = $3; next }
/^ok( |$)/ && /#[ \t]*[Ss][Kk][Ii][Pp]/ {
	desc = $0
	sub(/^ok[ \t]*[0-9]*[ \t]*/, "", desc)
	reason = desc
	sub(/#[ \t]*[Ss][Kk][Ii][Pp].*/, "", desc)
	sub(/^.*#[ \t]*[Ss][Kk][Ii][Pp]:?[ \t]*/, "", reason)
	desc = trim(desc)
	sub(/^- */, "", desc)
	sub(/^vm: */, "", desc)
	name = desc != "" ? desc : test
	if (name == "")
		name = "?"
	reason = trim(reason)
	hit = 0
	for (i = 1; i <= nl; i++)
		if (lb[i] == bin && name ~ ltre[i] && reason ~ lrre[i]) {
			seen[i]++
			hit = 1
			break
		}
	if (hit) {
		expected++
		printf "# skip expected: %s %s: %s\n", bin, name, reason
	} else {
		unexpected++
		printf "not ok - unexpected skip (not in %s for %s): %s %s: %s\n",
		       ENVIRON["LIST"], ENVIRON["KERNEL"], bin, name, reason
	}
	test = ""
	next
}
/^(not )?ok( |$)/ { test = "" }
END {
	if (bad_list)
		exit 2
	for (i = 1; i <= nl; i++)
		if (!seen[i] && !lmaybe[i]) {
			missing++
			printf "not ok - listed skip did not happen on %s: %s %s %s: %s\n",
			       ENVIRON["KERNEL"], lk[i], lb[i], lt[i], lr[i]
		}
	printf "skips: %d expected, %d unexpected, %d listed but not seen\n",
	       expected, unexpected, missing
	exit (unexpected || missing) ? 1 : 0
}' "$log"
