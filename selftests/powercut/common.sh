# SPDX-License-Identifier: GPL-2.0
# Shared by the power-cut runners (run.sh, lw.sh); sourced after
# selftests/vm/lib.sh, not run.
# shellcheck shell=bash

# pc_build KVER OUT: the module for KVER, libcowmap, and the guest's merge
# program pc in a fresh OUT/pl/powercut.
pc_build() {
	local kver=$1 out=$2

	resolve_kernel "$kver"
	build_module "$kver"
	make -s -C "$TOP" BUILD="$BUILD" lib || die "building libcowmap failed"
	rm -rf "$out"
	mkdir -p "$out/pl/powercut"
	${CC:-cc} -O2 -g -Wall -Wextra -D_GNU_SOURCE -I"$TOP/uapi" -I"$TOP/lib" \
		-o "$out/pl/powercut/pc" "$PC_DIR/pc.c" "$BUILD/libcowmap.a" \
		-Wl,--as-needed -lmnl -lpthread || die "building pc failed"
}
