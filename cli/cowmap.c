// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap: the command line tool.  A table of subcommands, each in its own
 * file as <name>_main(); usage is generated from the table.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD(n, f, syn, h, opt) \
	{ .name = n, .fn = f, .synopsis = syn, .help = h, .options = opt }
#define HIDDEN(n, f, syn, h) \
	{ .name = n, .fn = f, .synopsis = syn, .help = h, .hidden = true }

#define MERGE_OPTIONS \
	"  -n, --dry-run        report what would change, write nothing\n" \
	"  -p, --prefer WHICH   resolve conflicts: the first or the last log wins\n" \
	"  -f, --force          accept logs recorded against another file\n" \
	"  -o, --output OUT     write a merged copy to OUT, leave FILE as it is\n" \
	"  -j, --json           print the report as JSON\n" \
	"      --trust-all-logs merge logs of any owner (default: merge-all skips,\n" \
	"                       and root refuses, logs owned by other users than\n" \
	"                       the caller, FILE's owner or root)\n" \
	"      --wait SECONDS   wait at most SECONDS for FILE's merge lock (10)\n" \
	"      --strict         a torn tail of any kind is an error: nothing written\n" \
	"                       (default: left out, with a warning; a whole last\n" \
	"                       record failing its checksum makes the exit status 4)\n" \
	"      --undo-journal   keep the old bytes in the journal too, so that an\n" \
	"                       interrupted merge can be rolled back (recover -r)\n"

const struct subcommand subcommands[] = {
	CMD("status", status_main, "[--json]",
	  "show whether the module is loaded, its version, configuration and statistics",
	  "  -j, --json           print JSON\n"),
	CMD("sessions", sessions_main, "[--json] [ID]",
	  "list the sessions you may see (all of them for root), or one in detail",
	  "  -j, --json           print JSON\n"),
	CMD("config", config_main, "[--json] [KEY VALUE]...",
	  "show the limits, or set them (needs CAP_SYS_ADMIN)",
	  "  -j, --json           print JSON\n"
	  "  KEY                  max_session_pages or max_total_pages (pages; 0 = none)\n"),
	CMD("monitor", monitor_main, "[--json] [-t] [-c COUNT]",
	  "print notifications as they happen: sessions created and closed, caps reached",
	  "  -j, --json           print one JSON object per line\n"
	  "  -t, --timestamp      prefix each line with the time it was received\n"
	  "  -c, --count COUNT    exit after COUNT notifications\n"),
	CMD("drain", drain_main, "ID [-o LOG]",
	  "append a live session's changes to LOG (or to the log it was bound with)",
	  "  -o, --output LOG     log file to write; created, or empty\n"),
	CMD("discard", discard_main, "ID",
	  "drop a live session's private pages: its changes not drained are lost",
	  NULL),
	CMD("log", log_main, "show [--json] [--full] LOG...",
	  "print a log's records, one per line",
	  "  -j, --json           print JSON (old and new bytes in hex)\n"
	  "  -f, --full           print whole records (default: the first 64 bytes)\n"),
	CMD("merge", merge_main, "[--dry-run] [--prefer first|last] [--force] [--trust-all-logs] [--strict] [--undo-journal] [--wait SECONDS] [-o OUT] [--json] FILE LOG...",
	  "apply logs to FILE, all or nothing; conflicts are reported and nothing is written",
	  MERGE_OPTIONS),
	CMD("merge-all", merge_all_main, "[--dry-run] [--prefer first|last] [--force] [--trust-all-logs] [--strict] [--undo-journal] [--wait SECONDS] [-o OUT] [--json] FILE DIR",
	  "merge every log in DIR recorded against FILE, in time order",
	  MERGE_OPTIONS),
	CMD("recover", recover_main, "[--rollback | --discard] [--wait SECONDS] FILE",
	  "finish (or with --rollback undo) an interrupted merge of FILE",
	  "  -r, --rollback       undo a completed journal instead of replaying it (one\n"
	  "                       written by merge --undo-journal)\n"
	  "      --discard        remove the journal, apply nothing (after checking\n"
	  "                       the file by hand: the file is left as it is)\n"
	  "      --wait SECONDS   wait at most SECONDS for FILE's merge lock (10)\n"),
	CMD("run", run_main, "[-f FILE]... [-d LOGDIR] -- PROGRAM [ARGS]...",
	  "run a program whose MAP_SHARED mappings of each FILE go through cowmap",
	  "  -f, --file FILE      a file to redirect (at least one)\n"
	  "  -d, --log-dir LOGDIR where each session's log goes (default: .)\n"),
	CMD("demo", demo_main, "[--keep]",
	  "the whole workflow, end to end: writers, logs, merges, a conflict",
	  "  -k, --keep           keep the work directory\n"),
	CMD("help", help_main, "[SUBCOMMAND]", "show this help, or a subcommand's", NULL),
	HIDDEN("__complete", complete_main, "sessions|subcommands|config-keys|options|value-options SUBCOMMAND",
	       "values for shell completion, one per line"),
	HIDDEN("__demo-writer", demo_writer_main, "NAME READY_FD GO_FD [FILE OLD NEW]...",
	       "the writer program of cowmap demo"),
};
const size_t n_subcommands = ARRAY_SIZE(subcommands);

const struct subcommand *find_subcommand(const char *name)
{
	for (size_t i = 0; i < n_subcommands; i++)
		if (!strcmp(subcommands[i].name, name))
			return &subcommands[i];
	return NULL;
}

void print_version(void)
{
	printf("cowmap %s\n", COWMAP_VERSION_STRING);
}

void print_usage(FILE *f, const char *name)
{
	const struct subcommand *c = name ? find_subcommand(name) : NULL;

	if (c) {
		fprintf(f, "Usage: cowmap %s %s\n\n%c%s.\n", c->name, c->synopsis,
			toupper((unsigned char)c->help[0]), c->help + 1);
		if (c->options)
			fprintf(f, "\nOptions:\n%s", c->options);
		fprintf(f, "  -h, --help           show this help\n"
			"      --version        show the version\n");
		return;
	}
	fprintf(f, "Usage: cowmap [SUBCOMMAND] [ARGS]...\n\n"
		"Private copy-on-write views of shared memory-mapped files.\n"
		"With no subcommand, cowmap shows its status.\n\nSubcommands:\n");
	for (size_t i = 0; i < n_subcommands; i++)
		if (!subcommands[i].hidden)
			fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(f, "\n'cowmap help SUBCOMMAND' or 'cowmap SUBCOMMAND --help' shows its "
		"arguments.\nExit status: 0 success, 1 failure, 2 usage error, "
		"3 merge conflicts (nothing written),\n4 a log's damaged last record was left out.\n");
}

/* After a usage error: the one synopsis line and where the help is, as git
 * does (the whole help is for --help). */
static void print_usage_hint(FILE *f, const char *name)
{
	const struct subcommand *c = name ? find_subcommand(name) : NULL;

	if (c) {
		fprintf(f, "Usage: cowmap %s %s\nTry 'cowmap %s --help' for more.\n",
			c->name, c->synopsis, c->name);
		return;
	}
	fprintf(f, "Usage: cowmap [SUBCOMMAND] [ARGS]...\nTry 'cowmap --help' for more.\n");
}

int common_option(const char *cmd, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	switch (c) {
	case 'h':
		print_usage(stdout, cmd);
		return EXIT_OK;
	case OPT_VERSION:
		print_version();
		return EXIT_OK;
	case '?':
		if (optopt && optopt < 0x100)
			return usage_error(cmd, "unknown option '-%c'", optopt);
		return usage_error(cmd, "unknown option '%s'", arg);
	case ':':
		if (optopt && optopt < 0x100 && strncmp(arg, "--", 2))
			return usage_error(cmd, "option '-%c' needs an argument", optopt);
		return usage_error(cmd, "option '%s' needs an argument", arg);
	default:
		return -1;
	}
}

static void vmsg(const char *cmd, const char *kind, const char *fmt, va_list ap,
		 bool json_error)
{
	char buf[4096];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (json_error && json_mode)
		json_error_document(buf);
	fflush(stdout);
	fprintf(stderr, "cowmap%s%s: %s", cmd ? " " : "", cmd ? cmd : "", kind);
	fputs_escaped(buf, stderr);	/* names from logs and directories */
	fputc('\n', stderr);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(cmd, "", fmt, ap, true);
	va_end(ap);
	print_usage_hint(stderr, cmd);
	return EXIT_USAGE;
}

int failf(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(cmd, "", fmt, ap, true);
	va_end(ap);
	return EXIT_FAIL;
}

void warnf(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(cmd, "warning: ", fmt, ap, false);
	va_end(ap);
}

int fail_lib(const char *cmd, int err)
{
	const char *msg = cowmap_errmsg();

	if (msg && *msg)
		return failf(cmd, "%s", msg);
	return failf(cmd, "%s", cowmap_strerror(err));
}

int help_main(int argc, char **argv)
{
	static const struct option opts[] = { COMMON_LONGOPTS, {} };
	int c, r;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if ((r = common_option("help", c, argv)) >= 0)
			return r;
	if (argc - optind > 1)
		return usage_error("help", "too many arguments");
	if (optind < argc) {
		if (!find_subcommand(argv[optind]))
			return usage_error("help", "unknown subcommand '%s'", argv[optind]);
		print_usage(stdout, argv[optind]);
		return EXIT_OK;
	}
	print_usage(stdout, NULL);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct subcommand *c;

	opterr = 0;	/* common_option() says what is wrong */
	if (argc < 2)
		return status_main(1, (char *[]){ "status", NULL });
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		print_usage(stdout, NULL);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		print_version();
		return EXIT_OK;
	}
	c = find_subcommand(argv[1]);
	if (!c) {
		if (argv[1][0] == '-')
			fprintf(stderr, "cowmap: unknown option '%s'\n", argv[1]);
		else
			fprintf(stderr, "cowmap: unknown subcommand '%s'\n", argv[1]);
		print_usage_hint(stderr, NULL);
		return EXIT_USAGE;
	}
	/* So that a usage error found before getopt reaches --json is JSON too. */
	if (c->options && strstr(c->options, "--json"))
		for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
			if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
				json_mode = true;
	return c->fn(argc - 1, argv + 1);
}
