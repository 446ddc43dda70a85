# SPDX-License-Identifier: GPL-2.0-or-later OR MIT
# bash completion for cowmap(8).  Live values come from the tool itself:
# subcommands, options and config keys from 'cowmap __complete', session
# ids from the running module ('cowmap __complete sessions'), log files
# and directories from the filesystem.

_cowmap_words()
{
	"${1:-cowmap}" __complete "${@:2}" 2>/dev/null
}

# Whether $1 is one of the other arguments.
_cowmap_in()
{
	local w=$1 x
	shift
	for x; do
		[[ $x == "$w" ]] && return 0
	done
	return 1
}

_cowmap()
{
	local cur prev cmd tool i nargs
	local -a words_before=()
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	tool=${COMP_WORDS[0]}

	if [[ $COMP_CWORD -eq 1 ]]; then
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W '--help --version' -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$(_cowmap_words "$tool" subcommands)" -- "$cur")
		fi
		return
	fi
	cmd=${COMP_WORDS[1]}

	# 'run' hands everything after '--' (or the program) to the program.
	if [[ $cmd == run ]]; then
		for ((i = 2; i < COMP_CWORD; i++)); do
			if [[ ${COMP_WORDS[i]} == -- ]]; then
				if [[ $i -eq $((COMP_CWORD - 1)) ]]; then
					mapfile -t COMPREPLY < <(compgen -c -- "$cur")
				else
					mapfile -t COMPREPLY < <(compgen -f -- "$cur")
				fi
				return
			fi
		done
	fi

	# Option arguments: which options of $cmd take a value comes from the
	# tool (merge's -f is --force, run's -f is --file FILE).
	local -a vopts
	mapfile -t vopts < <(_cowmap_words "$tool" value-options "$cmd")
	if _cowmap_in "$prev" "${vopts[@]}"; then
		case $prev in
		-o | --output | -f | --file)
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			compopt -o filenames 2>/dev/null
			;;
		-d | --log-dir)
			mapfile -t COMPREPLY < <(compgen -d -- "$cur")
			compopt -o filenames 2>/dev/null
			;;
		-p | --prefer)
			mapfile -t COMPREPLY < <(compgen -W 'first last' -- "$cur")
			;;
		esac
		return
	fi

	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_cowmap_words "$tool" options "$cmd")" -- "$cur")
		return
	fi

	# Positional arguments so far (options and their values skipped).
	for ((i = 2; i < COMP_CWORD; i++)); do
		if _cowmap_in "${COMP_WORDS[i]}" "${vopts[@]}"; then
			((i++))
			continue
		fi
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) words_before+=("${COMP_WORDS[i]}") ;;
		esac
	done
	nargs=${#words_before[@]}

	case $cmd in
	sessions | drain | discard)
		[[ $nargs -eq 0 ]] &&
			mapfile -t COMPREPLY < <(compgen -W "$(_cowmap_words "$tool" sessions)" -- "$cur")
		;;
	config)
		if ((nargs % 2 == 0)); then
			mapfile -t COMPREPLY < <(compgen -W "$(_cowmap_words "$tool" config-keys)" -- "$cur")
		fi
		;;
	log)
		if [[ $nargs -eq 0 ]]; then
			mapfile -t COMPREPLY < <(compgen -W 'show' -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			compopt -o filenames 2>/dev/null
		fi
		;;
	merge | recover)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		compopt -o filenames 2>/dev/null
		;;
	merge-all)
		if [[ $nargs -eq 0 ]]; then
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		fi
		compopt -o filenames 2>/dev/null
		;;
	run)
		mapfile -t COMPREPLY < <(compgen -c -- "$cur")
		;;
	help)
		[[ $nargs -eq 0 ]] &&
			mapfile -t COMPREPLY < <(compgen -W "$(_cowmap_words "$tool" subcommands)" -- "$cur")
		;;
	esac
}

complete -F _cowmap cowmap
