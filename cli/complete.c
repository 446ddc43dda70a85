// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap __complete WHAT: live values for cli/completion.bash, one per
 * line, nothing (and status 0) when there are none or the module is not
 * loaded.  WHAT: subcommands, sessions (ids of the sessions the caller may
 * see), config-keys, options SUBCOMMAND (its long options).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_options(const char *text)
{
	const char *p = text;

	while (p && (p = strstr(p, "--"))) {
		size_t n = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");

		if (n)
			printf("--%.*s\n", (int)n, p + 2);
		p += 2 + n;
	}
}

int complete_main(int argc, char **argv)
{
	if (argc < 2)
		return EXIT_USAGE;
	if (!strcmp(argv[1], "subcommands")) {
		for (size_t i = 0; i < n_subcommands; i++)
			if (!subcommands[i].hidden)
				printf("%s\n", subcommands[i].name);
	} else if (!strcmp(argv[1], "config-keys")) {
		config_print_keys();
	} else if (!strcmp(argv[1], "options") && argc == 3) {
		const struct subcommand *c = find_subcommand(argv[2]);

		if (!c)
			return EXIT_USAGE;
		print_options(c->options);
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
