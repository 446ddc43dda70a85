// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap drain ID [-o LOG]: append a live session's changes to LOG (a new
 * file: an existing one is refused, whoever made it, since another user
 * could read or edit what we drain into it) or, without -o, to the log the session was
 * bound with (COWMAP_CMD_DRAIN; owner or CAP_SYS_ADMIN).  The kernel writes
 * the log; it receives our file descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cli.h"

static int drain_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' }, COMMON_LONGOPTS, {}
	};
	const char *out = NULL;
	struct cowmap_nl *nl;
	struct cowmap_log *log;
	struct cowmap_log_info info;
	bool created = false;
	struct stat st;
	uint64_t id;
	int c, r, fd = -1;

	while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
		if (c == 'o') {
			out = optarg;
			continue;
		}
		if ((r = common_option("drain", c, argv)) >= 0)
			return r;
	}
	if (argc - optind != 1)
		return usage_error("drain", argc == optind ? "a session id is needed" :
				   "too many arguments");
	if (!parse_session_id(argv[optind], &id))
		return usage_error("drain", "'%s' is not a session id", argv[optind]);

	if (out) {
		fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			return failf("drain", "%s exists%s; remove it or choose another name", out,
				     lstat(out, &st) == 0 && S_ISREG(st.st_mode) && st.st_size ?
				     " and is not empty" : "");
		if (fd < 0)
			return failf("drain", "%s: %s", out, strerror(errno));
		created = true;
	}
	nl = nl_open_or_fail("drain");
	if (!nl) {
		if (created) {
			unlink(out);
			close(fd);
		}
		return EXIT_FAIL;
	}
	r = cowmap_nl_drain(nl, id, fd);
	cowmap_nl_close(nl);
	if (r) {
		if (created)
			unlink(out);
		if (fd >= 0)
			close(fd);
		if (r == -EBADFD && !out)
			return failf("drain", "session %llu has no log of its own: give one "
				     "with -o LOG", (unsigned long long)id);
		return fail_lib("drain", r);
	}
	if (fd >= 0)
		close(fd);
	if (!out) {
		printf("session %llu: changes appended to its log\n", (unsigned long long)id);
		return EXIT_OK;
	}
	r = cowmap_log_open(out, 0, &log);
	if (r)
		return fail_lib("drain", r);
	cowmap_log_info(log, &info);
	cowmap_log_close(log);
	printf("session %llu: %llu record%s drained to %s\n", (unsigned long long)id,
	       (unsigned long long)info.records, info.records == 1 ? "" : "s", out);
	return EXIT_OK;
}

const struct subcommand cmd_drain = {
	.name = "drain",
	.fn = drain_main,
	.synopsis = "ID [-o LOG]",
	.help = "append a live session's changes to LOG (or to the log it was bound with)",
	.options = "  -o, --output LOG     log file to write; created, or empty\n",
};
