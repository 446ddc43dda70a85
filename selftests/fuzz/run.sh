#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the fuzz target, write the seed corpus, fuzz for a bounded time.
# Prints "# fuzz: ..." lines; exits non-zero on a crash or a build error.
# Prints "SKIP ..." (and exits 0) when clang or the libFuzzer runtime is
# missing.
#   run.sh OUTDIR SECONDS "BUILD-COMMAND"
set -uo pipefail
cd "$(dirname "$0")" || exit 1

out=$1
secs=$2
build=$3

if ! command -v "${CLANG:-clang}" >/dev/null; then
	echo "SKIP: clang not installed (scripts/deps.sh installs it)"
	exit 0
fi
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
	"${CLANG:-clang}" -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
	echo "SKIP: no libFuzzer runtime (libclang-rt-14-dev)"
	exit 0
fi
$build || exit 1
mkdir -p "$out/corpus" "$out/artifacts"
"$out/gen_corpus" "$out/corpus" || exit 1

log="$out/fuzz.log"
"$out/fuzz_cowmap" "$out/corpus" -max_total_time="$secs" -timeout=20 \
	-rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
	-artifact_prefix="$out/artifacts/" >"$log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
t=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1)
if [ "$rc" -ne 0 ]; then
	grep -E 'ERROR|SUMMARY|==[0-9]+==|runtime error|Test unit written' "$log" | head -n 20
	echo "# fuzz: FAILED after ${runs:-?} runs; log $log"
	exit 1
fi
if [ -n "$runs" ] && [ -n "$t" ] && [ "$t" -gt 0 ]; then
	echo "# fuzz: $runs runs in ${t}s ($((runs / t)) exec/s), $cov, corpus $(find "$out/corpus" -type f | wc -l) inputs"
else
	echo "# fuzz: ${runs:-?} runs, $cov"
fi
