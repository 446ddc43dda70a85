// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap discard ID: drop a live session's private pages
 * (COWMAP_CMD_DISCARD; owner or CAP_SYS_ADMIN).  Its mappings show the
 * file again; changes not drained are lost.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static int discard_main(int argc, char **argv)
{
	static const struct option opts[] = { COMMON_LONGOPTS, {} };
	struct cowmap_nl *nl;
	uint64_t id;
	int c, r;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if ((r = common_option("discard", c, argv)) >= 0)
			return r;
	if (argc - optind != 1)
		return usage_error("discard", argc == optind ? "a session id is needed" :
				   "too many arguments");
	if (!parse_session_id(argv[optind], &id))
		return usage_error("discard", "'%s' is not a session id", argv[optind]);
	nl = nl_open_or_fail("discard");
	if (!nl)
		return EXIT_FAIL;
	r = cowmap_nl_discard(nl, id);
	cowmap_nl_close(nl);
	if (r)
		return fail_lib("discard", r);
	printf("session %llu: private pages discarded\n", (unsigned long long)id);
	return EXIT_OK;
}

const struct subcommand cmd_discard = {
	.name = "discard",
	.fn = discard_main,
	.synopsis = "ID",
	.help = "drop a live session's private pages: its changes not drained are lost",
};
