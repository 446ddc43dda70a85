#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# What 'make demo' shows until the CLI has a demo subcommand: the module is
# loaded and answers.
set -e
echo "== kernel"
uname -a
echo "== module"
grep '^cowmap ' /proc/modules
echo "version $(cat /sys/module/cowmap/version)"
echo "== device"
ls -l /dev/cowmap
echo "== misc devices"
grep cowmap /proc/misc
if command -v cowmap >/dev/null 2>&1; then
	echo "== cowmap --version"
	cowmap --version
fi
echo "== scratch filesystems"
df -h "$COWMAP_SCRATCH" "$COWMAP_SCRATCH_XFS" "$COWMAP_SCRATCH_BTRFS"
