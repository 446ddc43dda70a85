#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The CLI's documentation agrees with its getopt tables (issue 13):
#   COWMAP=/path/to/cowmap cli-docs-check.sh TOP
# For every subcommand, the options of its getopt table(s) in cli/*.c
# (long names, short letters, which take a value) must equal those of
# 'cowmap SUB --help', of the bash completion's sources ('cowmap __complete
# options|value-options SUB') and of the man page's SYNOPSIS line for SUB;
# every short/long pair must be described in cowmap.8 ('\-x ", " \-\-long');
# every option the man pages or the completion script name must exist.
# The bash completion is then run: an option's value is not an argument
# (merge-all -f takes none, run -f does).  Finally the man pages format
# without a warning (groff -ww, man --warnings).  Prints every mismatch;
# exits 1 if there was one.
set -uo pipefail

top=${1:?usage: COWMAP=... cli-docs-check.sh TOP}
cowmap=${COWMAP:?COWMAP must name the cowmap binary}
man8=$top/cli/cowmap.8
man3=$top/lib/libcowmap.3
comp=$top/cli/completion.bash
bad=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "MISMATCH: $*"
	bad=1
}

# "A B" sets as sorted lines; print what differs, labelled.
compare() {
	local what=$1 a b la=$4 lb=$5
	a=$(echo "$2" | grep -v '^$')
	b=$(echo "$3" | grep -v '^$')
	if [ "$a" != "$b" ]; then
		fail "$what: $la and $lb differ"
		diff <([ -z "$a" ] || echo "$a") <([ -z "$b" ] || echo "$b") | sed -n "s/^</  only in $la:/p; s/^>/  only in $lb:/p"
	fi
}

# The source file(s) holding SUB's getopt table(s).
src_of() {
	case $1 in
	merge-all) echo "$top/cli/merge.c" ;;	# merge_parse_args()
	help) echo "$top/cli/cowmap.c" ;;
	*) echo "$top/cli/${1//-/_}.c" ;;
	esac
}

# Lines "--long ARG|-" and "-x ARG|-" from getopt tables, "-x --long" pairs
# in $tmp/pairs.  Entries look like { "name", required_argument, NULL, 'c' }.
getopt_opts() {
	local f=$1 name kind val letters i c
	: >"$tmp/pairs"
	{
		echo "--help -"
		echo "--version -"
		echo "-h -"
		echo "-h --help" >>"$tmp/pairs"
		grep -oE '\{ "[a-z-]+", (no|required|optional)_argument, NULL, [^ }]+ \}' "$f" |
			sed -E 's/\{ "([a-z-]+)", ([a-z]+)_argument, NULL, ([^ ]+) \}/\1 \2 \3/' |
			while read -r name kind val; do
				[ "$kind" = no ] && echo "--$name -" || echo "--$name ARG"
				if [[ $val =~ ^\'(.)\'$ ]]; then
					echo "-${BASH_REMATCH[1]} --$name" >>"$tmp/pairs"
				fi
			done
		grep -oE 'getopt_long\(argc, argv, "[^"]*"' "$f" | sed -E 's/.*"([^"]*)"/\1/' |
			while read -r letters; do
				letters=${letters#+}
				letters=${letters#:}
				for ((i = 0; i < ${#letters}; i++)); do
					c=${letters:i:1}
					[ "$c" = : ] && continue
					if [ "${letters:i+1:1}" = : ]; then echo "-$c ARG"; else echo "-$c -"; fi
				done
			done
	} | sort -u
}

# The same from 'cowmap SUB --help': "  -x, --long ARG   text" lines.
help_opts() {
	"$cowmap" "$1" --help | sed -nE 's/^ +(-([a-zA-Z]), )?--([a-z-]+)( ([A-Z]+))?( .*)?$/\2 \3 \5/p' |
		while read -r -a w; do
			local s='' l arg='-'
			if [ "${#w[@]}" -eq 3 ]; then s=${w[0]}; l=${w[1]}; arg=ARG
			elif [ "${#w[@]}" -eq 2 ] && [ ${#w[0]} -eq 1 ]; then s=${w[0]}; l=${w[1]}
			elif [ "${#w[@]}" -eq 2 ]; then l=${w[0]}; arg=ARG
			else l=${w[0]}
			fi
			echo "--$l $arg"
			[ -n "$s" ] && echo "-$s $arg"
		done
	echo "--help -"
	echo "--version -"
	echo "-h -"
}

# Long options on the man page's SYNOPSIS line(s) of SUB.
synopsis_opts() {
	sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' "$man8" |
		awk -v sub_="$1" '
			/^\.br/ { cur = ""; next }
			/^\.B cowmap / { cur = $3; gsub(/\\/, "", cur) }
			cur == sub_ { print }' |
		grep -oE '\\-\\-[a-z\\-]*[a-z]' | sed 's/\\-/-/g' | sort -u
}

# The man page without its SYNOPSIS: where options are described.
sed '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/d' "$man8" >"$tmp/body"

subs=$("$cowmap" __complete subcommands) || { echo "cowmap __complete subcommands failed"; exit 1; }
all_long=$(printf -- '--help\n--version\n')
all_short=$(printf -- '-h\n-V\n')
for s in $subs; do
	f=$(src_of "$s")
	[ -f "$f" ] || { fail "$s: no source file $f"; continue; }
	g=$(getopt_opts "$f")
	cp "$tmp/pairs" "$tmp/pairs.$s"
	h=$(help_opts "$s" | sort -u)
	compare "$s" "$g" "$h" "getopt table" "--help"

	glong=$(echo "$g" | awk '$1 ~ /^--/ { print $1 }' | sort -u)
	gval=$(echo "$g" | awk '$2 == "ARG" { print $1 }' | sort -u)
	all_long=$(printf '%s\n%s\n' "$all_long" "$glong" | sort -u)
	all_short=$(printf '%s\n%s\n' "$all_short" "$(echo "$g" | awk '$1 ~ /^-[^-]/ { print $1 }')" |
		sort -u)
	compare "$s" "$glong" "$("$cowmap" __complete options "$s" | sort -u)" \
		"getopt table" "completion (options)"
	compare "$s" "$gval" "$("$cowmap" __complete value-options "$s" | sort -u)" \
		"getopt table (taking a value)" "completion (value-options)"
	compare "$s" "$(echo "$glong" | grep -vxE -- '--help|--version')" "$(synopsis_opts "$s")" \
		"getopt table" "cowmap.8 SYNOPSIS"

	# Every "-x --long" pair described as such in the man page's body.
	while read -r short long; do
		[ "$short" = -h ] && continue
		es=${short//-/\\-}
		el=${long//-/\\-}
		grep -qF -e "$es \", \" $el" -e "$es \", \" \"$el" "$man8" ||
			fail "$s: cowmap.8 does not describe '$short, $long' (.BR $es \", \" $el)"
	done <"$tmp/pairs.$s"
	# Every long option without a short form is described outside SYNOPSIS.
	for long in $glong; do
		grep -q -- "^-. $long\$" "$tmp/pairs.$s" && continue
		el=${long//-/\\-}
		grep -qF -- "$el" "$tmp/body" ||
			fail "$s: cowmap.8 never describes $long"
	done
done

# Vice versa: what the man pages and the completion name exists.
echo "$all_long" >"$tmp/all_long"
echo "$all_short" >"$tmp/all_short"
while read -r long; do
	grep -qxF -- "$long" "$tmp/all_long" ||
		fail "cowmap.8/libcowmap.3 name $long, which no subcommand takes"
done < <(cat "$man8" "$man3" 2>/dev/null | grep -oE '\\-\\-[a-z][a-z\\-]*[a-z]' |
	sed 's/\\-/-/g' | sort -u)
while read -r short; do
	grep -qxF -- "$short" "$tmp/all_short" || fail "cowmap.8 names $short, which no subcommand takes"
done < <(grep -oE '\\-[a-zA-Z] ", "' "$man8" | cut -c1-3 | sed 's/\\-/-/' | sort -u)
grep -qF '.BR \-V ", " \-\-version' "$man8" || fail "cowmap.8 does not describe -V, --version"
while read -r long; do
	grep -qxF -- "$long" "$tmp/all_long" || fail "completion.bash names $long, which no subcommand takes"
done < <(grep -oE -- "--[a-z][a-z-]*[a-z]" "$comp" | sort -u)

# The completion itself: values of options are skipped, per subcommand.
mkdir -p "$tmp/c/adir" && touch "$tmp/c/afile"
complete_words() {	# WORD... (the last is completed); prints COMPREPLY
	(
		cd "$tmp/c" || exit 1
		# shellcheck disable=SC2317 # called by the completion script
		complete() { :; }
		# shellcheck disable=SC2317
		compopt() { :; }
		# shellcheck source=/dev/null
		. "$comp"
		COMP_WORDS=("$cowmap" "$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_cowmap
		printf '%s\n' "${COMPREPLY[@]}" | sort
	)
}
got=$(complete_words merge-all -f afile a)
[ "$got" = adir ] || fail "completion of 'merge-all -f afile a': [$got], want [adir] (-f takes no value)"
got=$(complete_words merge-all --force afile a)
[ "$got" = adir ] || fail "completion of 'merge-all --force afile a': [$got], want [adir]"
got=$(complete_words run -f a)
[ "$got" = "$(printf 'adir\nafile')" ] || fail "completion of 'run -f a': [$got], want files"
got=$(complete_words run -d a)
[ "$got" = adir ] || fail "completion of 'run -d a': [$got], want [adir]"
got=$(complete_words merge --prefer l)
[ "$got" = last ] || fail "completion of 'merge --prefer l': [$got], want [last]"
got=$(complete_words merge-all --wait 5 afile a)
[ "$got" = adir ] || fail "completion of 'merge-all --wait 5 afile a': [$got], want [adir]"
got=$(complete_words monitor --c)
[ "$got" = --count ] || fail "completion of 'monitor --c': [$got], want [--count]"

# The man pages format cleanly.
for page in "$man8" "$man3"; do
	[ -f "$page" ] || { fail "no man page $page"; continue; }
	warn=$(groff -ww -z -man "$page" 2>&1)
	[ -z "$warn" ] || fail "groff -ww $page: $warn"
	if command -v man >/dev/null; then
		warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		[ -z "$warn" ] || fail "man --warnings $page: $warn"
	fi
done

[ $bad = 0 ] && echo "cli-docs-check: all agree"
exit $bad
