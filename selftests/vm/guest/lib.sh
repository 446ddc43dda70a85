# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
# Helpers of the guest scripts (busybox sh); sourced.

kmemleak_available() {
	[ -w /sys/kernel/debug/kmemleak ]
}

# Scan twice (an object must be seen unreferenced by two scans, at least
# 5 s old) and forget everything reported so far.
kmemleak_baseline() {
	kmemleak_available || return 0
	echo scan >/sys/kernel/debug/kmemleak
	sleep 5
	echo scan >/sys/kernel/debug/kmemleak
	echo "cowmap-vm: kmemleak: $(grep -c '^unreferenced object' /sys/kernel/debug/kmemleak) suspects before the tests, ignored"
	echo clear >/sys/kernel/debug/kmemleak
}

# Scan for leaks; prints them and sets KMEMLEAK_LEAKS.  Returns 1 on leaks.
kmemleak_check() {
	KMEMLEAK_LEAKS=0
	kmemleak_available || return 0
	echo "# kmemleak: scanning ($(cut -d' ' -f1 /proc/uptime) s)"
	echo scan >/sys/kernel/debug/kmemleak
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	echo "# kmemleak: scanned ($(cut -d' ' -f1 /proc/uptime) s)"
	KMEMLEAK_LEAKS=$(grep -c '^unreferenced object' /sys/kernel/debug/kmemleak)
	touch /run/cowmap-kmemleak-checked
	echo "KMEMLEAK_LEAKS=$KMEMLEAK_LEAKS" >>/run/cowmap-counts
	if [ "$KMEMLEAK_LEAKS" != 0 ]; then
		echo "kmemleak: $KMEMLEAK_LEAKS suspected leaks:"
		cat /sys/kernel/debug/kmemleak
		return 1
	fi
	return 0
}
