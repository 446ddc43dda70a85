// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap __complete WHAT: live values for cli/completion.bash, one per
 * line, nothing (and status 0) when there are none or the module is not
 * loaded.  WHAT: subcommands, sessions (ids of the sessions the caller may
 * see), config-keys, options SUBCOMMAND (its long options), value-options
 * SUBCOMMAND (its options that take a value, short and long: the word
 * after them is not an argument).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/*
 * The options of a subcommand's help text, whose option lines read
 * "  -x, --long ARG   help" or "      --long   help" (ARG upper case):
 * the long names, or (@values) every name, short and long, of the options
 * that take a value.
 */
static void option_line(const char *p, bool values)
{
	const char *q = p + strspn(p, " ");
	char s = 0;
	size_t n;

	if (q[0] != '-')
		return;			/* a continuation line, or KEY */
	if (q[1] != '-') {
		s = q[1];
		q += 2 + strspn(q + 2, ", ");
	}
	if (strncmp(q, "--", 2))
		return;
	n = strspn(q + 2, "abcdefghijklmnopqrstuvwxyz-");
	if (!values) {
		printf("--%.*s\n", (int)n, q + 2);
	} else if (q[2 + n] == ' ' && q[3 + n] >= 'A' && q[3 + n] <= 'Z') {
		if (s)
			printf("-%c\n", s);
		printf("--%.*s\n", (int)n, q + 2);
	}
}

static void print_options(const char *text, bool values)
{
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		option_line(p, values);
}

static int complete_main(int argc, char **argv)
{
	if (argc < 2)
		return EXIT_USAGE;
	if (!strcmp(argv[1], "subcommands")) {
		for (size_t i = 0; i < n_subcommands; i++)
			if (!subcommands[i]->hidden)
				printf("%s\n", subcommands[i]->name);
	} else if (!strcmp(argv[1], "config-keys")) {
		config_print_keys();
	} else if ((!strcmp(argv[1], "options") || !strcmp(argv[1], "value-options")) &&
		   argc == 3) {
		const struct subcommand *c = find_subcommand(argv[2]);
		bool values = !strcmp(argv[1], "value-options");

		if (!c)
			return EXIT_USAGE;
		print_options(c->options, values);
		if (!values)
			printf("--help\n--version\n");
	} else if (!strcmp(argv[1], "sessions")) {
		struct cowmap_nl_session *v;
		struct cowmap_nl *nl;
		size_t n;

		if (cowmap_nl_open(0, &nl))
			return EXIT_OK;
		if (!cowmap_nl_list_sessions(nl, &v, &n)) {
			for (size_t i = 0; i < n; i++)
				printf("%llu\n", (unsigned long long)v[i].id);
			free(v);
		}
		cowmap_nl_close(nl);
	} else {
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

const struct subcommand cmd_complete = {
	.name = "__complete",
	.fn = complete_main,
	.synopsis = "sessions|subcommands|config-keys|options|value-options SUBCOMMAND",
	.help = "values for shell completion, one per line",
	.hidden = true,
};
