// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap merge-all [merge options] FILE DIR: merge every log in DIR that
 * was recorded against FILE (same st_dev and st_ino), in time order.
 * Logs of other files are skipped and counted;
 * logs owned by other users than the caller, FILE's owner or root are
 * skipped with a warning unless --trust-all-logs.
 */
#include <stdio.h>

#include "cli.h"

static int merge_all_main(int argc, char **argv)
{
	struct cowmap_merge *m;
	struct merge_opts o;
	int first, r;

	r = merge_parse_args("merge-all", argc, argv, &o, &first);
	if (r >= 0)
		return r;
	if (argc - first != 2)
		return usage_error("merge-all", argc - first < 2 ? "a file and a directory "
				   "are needed" : "too many arguments");
	o.file = argv[first];
	o.dir = argv[first + 1];
	r = cowmap_merge_new(o.file, o.flags, &m);
	if (r)
		return merge_report_setup_error(NULL, &o, r);
	if (o.out && (r = cowmap_merge_set_output(m, o.out)))
		return merge_report_setup_error(m, &o, r);
	r = cowmap_merge_add_dir(m, o.dir);
	if (r < 0)
		return merge_report_setup_error(m, &o, r);
	r = merge_report_run(m, &o);
	cowmap_merge_free(m);
	return r;
}

const struct subcommand cmd_merge_all = {
	.name = "merge-all",
	.fn = merge_all_main,
	.synopsis = "[--dry-run] [--prefer first|last] [--force] [--trust-all-logs] [--strict] "
		    "[--undo-journal] [--wait SECONDS] [-o OUT] [--json] FILE DIR",
	.help = "merge every log in DIR recorded against FILE, in time order",
	.options = merge_options,
};
