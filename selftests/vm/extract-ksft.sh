#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Extract kselftest_harness.h and kselftest.h from Debian's linux-source-6.1
# into $BUILD/ksft (selftests/Makefile calls this).
set -euo pipefail
# shellcheck source=selftests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
extract_ksft
