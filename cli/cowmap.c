// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap: the command line tool.  A table of subcommands, each defined in
 * its own file beside its option parser (struct subcommand: its function,
 * synopsis, help and option lines); usage is generated from them.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* In the order "cowmap help" lists them; each is defined beside its parser. */
const struct subcommand *const subcommands[] = {
	&cmd_status, &cmd_sessions, &cmd_config, &cmd_monitor, &cmd_drain, &cmd_discard,
	&cmd_log, &cmd_merge, &cmd_merge_all, &cmd_recover, &cmd_run, &cmd_help, &cmd_complete,
};
const size_t n_subcommands = ARRAY_SIZE(subcommands);

const struct subcommand *find_subcommand(const char *name)
{
	for (size_t i = 0; i < n_subcommands; i++)
		if (!strcmp(subcommands[i]->name, name))
			return subcommands[i];
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
		if (!subcommands[i]->hidden)
			fprintf(f, "  %-10s %s\n", subcommands[i]->name, subcommands[i]->help);
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

static int help_main(int argc, char **argv)
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

const struct subcommand cmd_help = {
	.name = "help",
	.fn = help_main,
	.synopsis = "[SUBCOMMAND]",
	.help = "show this help, or a subcommand's",
};

int main(int argc, char **argv)
{
	const struct subcommand *c;

	opterr = 0;	/* common_option() says what is wrong */
	if (argc < 2)
		return cmd_status.fn(1, (char *[]){ "status", NULL });
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
