#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# cowmap's one version is the top VERSION file (MAJOR.MINOR.PATCH).  The
# Makefiles and scripts read it; the places that need a literal carry a
# copy that this script checks:
#   uapi/linux/cowmap.h   COWMAP_VERSION_MAJOR, _MINOR, _PATCH (and from
#                         them the module's MODULE_VERSION)
#   kmod/dkms.conf        PACKAGE_VERSION (dh_dkms and DKMS read it as is)
#   debian/changelog      the newest entry's version (dpkg reads it)
#   man pages             .TH's "cowmap VERSION" (cli/*.[1-8], lib/*.3,
#                         any other tracked page)
#
# usage: version.sh             print the version
#        version.sh check       every literal equals it (exit 1 if not,
#                               naming each one that differs)
#        version.sh set X.Y.Z   write X.Y.Z into VERSION and every literal
#                               (a new debian/changelog entry)
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"

die() {
	echo "version.sh: $*" >&2
	exit 1
}

read_version() {
	local v
	[ -f VERSION ] || die "$TOP/VERSION missing"
	v=$(cat VERSION)
	[[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "VERSION is '$v', not MAJOR.MINOR.PATCH"
	echo "$v"
}

man_pages() {
	git ls-files -- 'cli/*.[1-8]' 'lib/*.3' 'man/*.[1-8]' 'docs/*.[1-8]' 2>/dev/null ||
		find cli lib -name '*.[1-8]'
}

uapi_version() {
	local maj min pat
	maj=$(sed -nE 's/^#define COWMAP_VERSION_MAJOR[[:space:]]+([0-9]+)$/\1/p' uapi/linux/cowmap.h)
	min=$(sed -nE 's/^#define COWMAP_VERSION_MINOR[[:space:]]+([0-9]+)$/\1/p' uapi/linux/cowmap.h)
	pat=$(sed -nE 's/^#define COWMAP_VERSION_PATCH[[:space:]]+([0-9]+)$/\1/p' uapi/linux/cowmap.h)
	echo "$maj.$min.$pat"
}

dkms_version() {
	sed -nE 's/^PACKAGE_VERSION="(.*)"$/\1/p' kmod/dkms.conf
}

changelog_version() {
	[ -f debian/changelog ] || return 0
	sed -nE '1s/^[a-z0-9.+-]+ \(([^)]*)\).*/\1/p' debian/changelog
}

# .TH NAME SECTION DATE "cowmap X.Y.Z" ...: the version of one page.
man_version() {
	sed -nE 's/^\.TH .*"cowmap ([^"]*)".*/\1/p' "$1" | head -n1
}

check() {
	local v bad=0 got f
	v=$(read_version)
	got=$(uapi_version)
	[ "$got" = "$v" ] || { echo "uapi/linux/cowmap.h: COWMAP_VERSION_* say $got, VERSION says $v"; bad=1; }
	got=$(dkms_version)
	[ "$got" = "$v" ] || { echo "kmod/dkms.conf: PACKAGE_VERSION is '$got', VERSION says $v"; bad=1; }
	if [ -f debian/changelog ]; then
		got=$(changelog_version)
		[ "$got" = "$v" ] || { echo "debian/changelog: newest entry is '$got', VERSION says $v"; bad=1; }
	fi
	while read -r f; do
		[ -n "$f" ] || continue
		got=$(man_version "$f")
		[ "$got" = "$v" ] || { echo "$f: .TH says 'cowmap $got', VERSION says $v"; bad=1; }
	done < <(man_pages)
	if [ "$bad" = 0 ]; then
		echo "version $v: uapi header, dkms.conf, debian/changelog and man pages agree"
	fi
	return "$bad"
}

set_version() {
	local new=$1 maj min pat f old
	[[ $new =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "'$new' is not MAJOR.MINOR.PATCH"
	maj=${BASH_REMATCH[1]} min=${BASH_REMATCH[2]} pat=${BASH_REMATCH[3]}
	old=$(read_version)
	echo "$new" >VERSION
	sed -i -E "s/^(#define COWMAP_VERSION_MAJOR[[:space:]]+)[0-9]+$/\1$maj/; \
		s/^(#define COWMAP_VERSION_MINOR[[:space:]]+)[0-9]+$/\1$min/; \
		s/^(#define COWMAP_VERSION_PATCH[[:space:]]+)[0-9]+$/\1$pat/" uapi/linux/cowmap.h
	sed -i -E "s/^PACKAGE_VERSION=\".*\"$/PACKAGE_VERSION=\"$new\"/" kmod/dkms.conf
	while read -r f; do
		[ -n "$f" ] && sed -i -E "s/^(\.TH .*\"cowmap )[^\"]*(\".*)/\1$new\2/" "$f"
	done < <(man_pages)
	if [ -f debian/changelog ] && [ "$(changelog_version)" != "$new" ]; then
		local who
		who=$(sed -nE 's/^ -- (.*>)  .*/\1/p' debian/changelog | head -n1)
		{
			printf 'cowmap (%s) unstable; urgency=medium\n\n' "$new"
			printf '  * Version %s (was %s).\n\n' "$new" "$old"
			printf ' -- %s  %s\n\n' "$who" "$(date -R)"
			cat debian/changelog
		} >debian/changelog.new
		mv debian/changelog.new debian/changelog
	fi
	check
}

case ${1:-} in
'') read_version ;;
check) check ;;
set) [ $# -eq 2 ] || die "usage: $0 set X.Y.Z"; set_version "$2" ;;
*) die "usage: $0 [check | set X.Y.Z]" ;;
esac
