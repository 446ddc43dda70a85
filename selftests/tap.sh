# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# TAP results for the shell tests (install-test.sh, deb-test.sh, the guest
# side of deb-test): source it, then
#   ok RC DESCRIPTION [DETAILS...]
# prints "ok N - DESCRIPTION" when RC is 0, else "not ok N - DESCRIPTION"
# and the details as "# " lines (at most 40), and counts both in $pass and
# $fail.
pass=0 fail=0 n=0
ok() {	# rc description [details...]
	local rc=$1 what=$2
	shift 2
	n=$((n + 1))
	if [ "$rc" = 0 ]; then
		echo "ok $n - $what"
		pass=$((pass + 1))
	else
		echo "not ok $n - $what"
		[ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/# /' | head -n 40
		fail=$((fail + 1))
	fi
}
