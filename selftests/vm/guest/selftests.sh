#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Guest side of run-selftests.sh: runs every kselftest binary in
# $COWMAP_SELFTESTS (TAP on stdout), then the VM's own tests: unload while
# in use, unload, a load/unload loop and (where the kernel has it) a
# kmemleak scan.  Writes the totals to /run/cowmap-counts and exits 1 if
# anything failed.
#
# Every result is a TAP line ("ok"/"not ok" at the start of a line, "# SKIP"
# for skips); the host counts the same lines and compares its totals with
# the ones in the result line, and checks the skips against
# selftests/expected-skips.  Each binary's output follows a line
# "# ---- NAME", the guest's own tests "# ---- vm".
#
# The binaries to run are those named in $COWMAP_SELFTESTS_LIST (default
# /opt/cowmap/selftests.list, written by mkinitramfs.sh from the sources):
# one that is not there, or not executable, is a failure, as is a binary
# whose results (ok / not ok lines) are not exactly its plan ("1..N").
# shellcheck source=selftests/vm/guest/lib.sh
. /opt/cowmap/guest/lib.sh

TEST_TIMEOUT=${COWMAP_TEST_TIMEOUT:-900}
LOOPS=${COWMAP_LOAD_LOOPS:-20}
COUNT_PASS=0
COUNT_FAIL=0
COUNT_SKIP=0
vmtest=0

count() {	# file: add its TAP results to the totals
	p=$(grep -E '^ok( |$)' "$1" | grep -viEc '# *skip')
	s=$(grep -E '^ok( |$)' "$1" | grep -iEc '# *skip')
	f=$(grep -Ec '^not ok( |$)' "$1")
	COUNT_PASS=$((COUNT_PASS + p))
	COUNT_SKIP=$((COUNT_SKIP + s))
	COUNT_FAIL=$((COUNT_FAIL + f))
}

# vm_result ok|fail|skip description [reason]
vm_result() {
	vmtest=$((vmtest + 1))
	case $1 in
	ok) echo "ok $vmtest vm: $2"; COUNT_PASS=$((COUNT_PASS + 1)) ;;
	skip) echo "ok $vmtest vm: $2 # SKIP $3"; COUNT_SKIP=$((COUNT_SKIP + 1)) ;;
	*) echo "not ok $vmtest vm: $2${3:+ ($3)}"; COUNT_FAIL=$((COUNT_FAIL + 1)) ;;
	esac
}

LIST=${COWMAP_SELFTESTS_LIST:-/opt/cowmap/selftests.list}
names=
if [ -s "$LIST" ]; then
	names=$(grep -v '^#' "$LIST")
fi

echo "# cowmap selftests on $(uname -r)"
if [ -z "$names" ]; then
	echo "# ---- vm"
	vm_result fail "the list of test binaries" "$LIST is missing or empty"
fi
for name in $names; do
	t=$COWMAP_SELFTESTS/$name
	echo "# ---- $name"
	if [ ! -f "$t" ] || [ ! -x "$t" ]; then
		vm_result fail "$name" "$t is missing or not executable"
		continue
	fi
	log=/tmp/$name.tap
	work=/tmp/$name.cwd
	mkdir -p "$work"
	# The binary's TAP goes to the console as it comes; its exit status
	# survives the pipe through a file.
	( cd "$work" && timeout "$TEST_TIMEOUT" "$t"; echo $? >"/tmp/$name.rc" ) 2>&1 | tee "$log"
	rc=$(cat "/tmp/$name.rc")
	count "$log"
	plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$log" | head -n1)
	results=$(grep -Ec '^(not )?ok( |$)' "$log")
	fails=$(grep -Ec '^not ok( |$)' "$log")
	if [ "$rc" = 143 ] || [ "$rc" = 124 ]; then
		vm_result fail "$name" "killed after ${TEST_TIMEOUT}s"
	elif [ -z "$plan" ]; then
		vm_result fail "$name" "no TAP plan, exit status $rc"
	elif [ "$results" != "$plan" ]; then
		vm_result fail "$name" "$results results for a plan of $plan, exit status $rc"
	elif [ "$rc" != 0 ] && [ "$rc" != 4 ] && [ "$fails" = 0 ]; then
		vm_result fail "$name" "exit status $rc without a failed test"
	elif [ "$rc" = 4 ] && [ "$plan" = 0 ]; then
		# "1..0 # SKIP reason": the whole binary skipped itself.
		vm_result skip "$name" "$(sed -nE 's/^1\.\.0 *# *[Ss][Kk][Ii][Pp] *//p' "$log" | head -n1)"
	fi
done

echo "# ---- vm"
# The module must refuse to go while a file of it is open, and go after.
exec 7</dev/cowmap
if rmmod cowmap 2>/dev/null; then
	vm_result fail "rmmod refused while /dev/cowmap is open" "rmmod succeeded"
	insmod "$COWMAP_KO"
else
	vm_result ok "rmmod refused while /dev/cowmap is open"
fi
exec 7<&-

if out=$(rmmod cowmap 2>&1) && [ ! -e /sys/module/cowmap ] && [ ! -e /dev/cowmap ]; then
	vm_result ok "rmmod cowmap"
else
	vm_result fail "rmmod cowmap" "$out"
fi

echo "# load/unload x$LOOPS ($(cut -d' ' -f1 /proc/uptime) s)"
bad=
i=0
while [ $i -lt "$LOOPS" ]; do
	i=$((i + 1))
	out=$(insmod "$COWMAP_KO" 2>&1) || { bad="insmod #$i: $out"; break; }
	[ -c /dev/cowmap ] || { bad="no /dev/cowmap after insmod #$i"; break; }
	# Open and close it once per cycle.
	: </dev/cowmap || { bad="open #$i failed"; break; }
	out=$(rmmod cowmap 2>&1) || { bad="rmmod #$i: $out"; break; }
	[ ! -e /dev/cowmap ] || { bad="/dev/cowmap left after rmmod #$i"; break; }
done
if [ -z "$bad" ]; then
	vm_result ok "load/unload x$LOOPS"
else
	vm_result fail "load/unload x$LOOPS" "$bad"
fi

if kmemleak_available; then
	if kmemleak_check; then
		vm_result ok "kmemleak: no suspected leaks"
	else
		vm_result fail "kmemleak: $KMEMLEAK_LEAKS suspected leaks"
	fi
else
	vm_result skip "kmemleak" "not in this kernel"
fi

echo "# totals: pass:$COUNT_PASS fail:$COUNT_FAIL skip:$COUNT_SKIP"
{
	echo "COUNT_PASS=$COUNT_PASS"
	echo "COUNT_FAIL=$COUNT_FAIL"
	echo "COUNT_SKIP=$COUNT_SKIP"
} >>/run/cowmap-counts
[ "$COUNT_FAIL" = 0 ]
