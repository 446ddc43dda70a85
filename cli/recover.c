// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap recover [--rollback | --discard] FILE: finish an interrupted
 * merge of FILE from its journal (or undo it with --rollback, or remove
 * the journal unapplied with --discard), or drop a journal that was never
 * complete (the file was not touched then).
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

/* What each COWMAP_RECOVER_* result did, as the line after "FILE: " says it. */
static const char *const outcomes[] = {
	[COWMAP_RECOVER_NONE] = "no interrupted merge, nothing to do",
	[COWMAP_RECOVER_REPLAYED] = "the interrupted merge was completed",
	[COWMAP_RECOVER_DROPPED] =
		"an incomplete merge journal was removed (the file had not been touched)",
	[COWMAP_RECOVER_ROLLED_BACK] = "the interrupted merge was rolled back",
	[COWMAP_RECOVER_DISCARDED] =
		"the merge journal was removed unapplied (the file is left as it is)",
};

static int recover_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rollback", no_argument, NULL, 'r' },
		{ "discard", no_argument, NULL, OPT_FIRST_PRIVATE },
		{ "wait", required_argument, NULL, OPT_WAIT },
		COMMON_LONGOPTS, {}
	};
	unsigned int flags = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, ":rh", opts, NULL)) != -1) {
		if (c == 'r' || c == OPT_FIRST_PRIVATE) {
			flags |= c == 'r' ? COWMAP_RECOVER_ROLLBACK : COWMAP_RECOVER_DISCARD;
			continue;
		}
		if (c == OPT_WAIT) {
			if (!set_lock_wait(optarg))
				return usage_error("recover", "--wait takes a number of seconds, "
						   "not '%s'", optarg);
			continue;
		}
		if ((r = common_option("recover", c, argv)) >= 0)
			return r;
	}
	if (argc - optind != 1)
		return usage_error("recover", argc == optind ? "a file is needed" :
				   "too many arguments");
	if ((flags & COWMAP_RECOVER_ROLLBACK) && (flags & COWMAP_RECOVER_DISCARD))
		return usage_error("recover", "--rollback and --discard are exclusive");
	r = cowmap_recover(argv[optind], flags);
	if (r < 0 || (size_t)r >= ARRAY_SIZE(outcomes) || !outcomes[r])
		return fail_lib("recover", r);
	printf("%s: %s\n", argv[optind], outcomes[r]);
	return EXIT_OK;
}

const struct subcommand cmd_recover = {
	.name = "recover",
	.fn = recover_main,
	.synopsis = "[--rollback | --discard] [--wait SECONDS] FILE",
	.help = "finish (or with --rollback undo) an interrupted merge of FILE",
	.options = "  -r, --rollback       undo a completed journal instead of replaying it (one\n"
		   "                       written by merge --undo-journal)\n"
		   "      --discard        remove the journal, apply nothing (after checking\n"
		   "                       the file by hand: the file is left as it is)\n"
		   "      --wait SECONDS   wait at most SECONDS for FILE's merge lock (10)\n",
};
