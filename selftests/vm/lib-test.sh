#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The VM runners' console checks (lib.sh), on consoles written here: which
# lines fail a run (console_errors) and which crash counts as the kernel's
# own, before init, and earns a second boot (early_boot_crash).  Each
# case's expected answer is part of the case.  Prints "ok"/"not ok" per
# case and exits 1 if any failed.
set -uo pipefail

# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

BOOT='[    0.000000] Linux version 6.12.118+deb12-amd64
[    2.041496] zbud: loaded'
INIT='[    6.347424] Run /init as init process'
OOPS='[    2.132248] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI
[    2.133738] Call Trace:
[    2.136785] Kernel panic - not syncing: Fatal exception in interrupt'
WARN='[   40.100000] WARNING: CPU: 1 PID: 311 at mm/memory.c:1 cowmap_fault+0x1/0x2 [cowmap]'
OK_LINES='[    7.000000] cowmap: loaded
[   80.000000] cowmap-selftest: done'

# expect NAME WANT_ERRORS WANT_EARLY TEXT: WANT_* are yes/no.
expect() {
	local name=$1 want_err=$2 want_early=$3 got_err=no got_early=no
	printf '%s\n' "$4" >"$tmp/console.log"
	console_errors "$tmp/console.log" >/dev/null 2>&1 && got_err=yes
	early_boot_crash "$tmp/console.log" && got_early=yes
	if [ "$got_err" = "$want_err" ] && [ "$got_early" = "$want_early" ]; then
		echo "ok - $name"
	else
		echo "not ok - $name: errors $got_err (want $want_err), crash before init $got_early (want $want_early)"
		failed=1
	fi
}

expect "clean boot" no no "$BOOT
$INIT
$OK_LINES"
expect "oops while booting, before init" yes yes "$BOOT
$OOPS"
expect "oops before init, init line after it" yes yes "$BOOT
$OOPS
$INIT"
expect "warning after init" yes no "$BOOT
$INIT
$WARN"
expect "oops after init" yes no "$BOOT
$INIT
$OK_LINES
$OOPS"
expect "no init line, no error" no no "$BOOT"

# boot_twice boots again after a crash before init only, keeping the
# first console.  fake_boot N: boot number N writes a crash before init if
# it is listed in $crash, else a clean boot.
# shellcheck disable=SC2317 # called through boot_twice
fake_boot() {
	boots=$((boots + 1))
	if [[ " $crash " == *" $boots "* ]]; then
		printf '%s\n%s\n' "$BOOT" "$OOPS" >"$tmp/console.x.log"
	else
		printf '%s\n%s\n' "$BOOT" "$INIT" >"$tmp/console.x.log"
	fi
}
# twice NAME CRASH WANT_BOOTS WANT_BOOT1
twice() {
	local msg kept=no
	boots=0 crash=$2
	rm -f "$tmp"/console.x*.log
	msg=$(boot_twice "t" "$tmp/console.x.log" fake_boot 2>&1; echo "boots=$boots")
	boots=${msg##*boots=}
	[ -f "$tmp/console.x.boot1.log" ] && kept=yes
	if [ "$boots" = "$3" ] && [ "$kept" = "$4" ] &&
		{ [ "$kept" = no ] || grep -q 'Oops: int3' <<<"$msg"; }; then
		echo "ok - boot_twice: $1"
	else
		echo "not ok - boot_twice: $1: $boots boots (want $3), first console kept $kept (want $4): $msg"
		failed=1
	fi
}
twice "a clean boot runs once" "" 1 no
twice "a crash before init boots again" "1" 2 yes
twice "never a third boot" "1 2" 2 yes
exit "$failed"
