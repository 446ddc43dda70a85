// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap config [--json] [KEY VALUE]...: show the module's limits, or set
 * some (COWMAP_CMD_SET_CONFIG, CAP_SYS_ADMIN) and show the result.  Every
 * pair is checked before anything is sent.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const struct {
	const char *name;
	unsigned int attr;
} keys[] = {
	{ "max_session_pages", COWMAP_CONFIG_A_MAX_SESSION_PAGES },
	{ "max_total_pages", COWMAP_CONFIG_A_MAX_TOTAL_PAGES },
};

static int key_attr(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].name, name))
			return (int)keys[i].attr;
	return -1;
}

void config_print_keys(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		printf("%s\n", keys[i].name);
}

static int config_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, COMMON_LONGOPTS, {}
	};
	long page_size = sysconf(_SC_PAGESIZE);
	struct cowmap_nl_config set = {}, cfg;
	struct cowmap_nl *nl;
	bool json = false;
	int c, r;

	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		if (c == 'j') {
			json = json_mode = true;
			continue;
		}
		if ((r = common_option("config", c, argv)) >= 0)
			return r;
	}
	if ((argc - optind) % 2)
		return usage_error("config", "'%s' has no value", argv[argc - 1]);
	for (int i = optind; i < argc; i += 2) {
		int attr = key_attr(argv[i]);
		uint64_t v;

		if (attr < 0)
			return usage_error("config", "unknown key '%s'", argv[i]);
		if (!parse_u64(argv[i + 1], &v))
			return usage_error("config", "%s: '%s' is not a number of pages",
					   argv[i], argv[i + 1]);
		if (set.present & (1U << attr))
			return usage_error("config", "%s given twice", argv[i]);
		set.present |= 1U << attr;
		if (attr == COWMAP_CONFIG_A_MAX_SESSION_PAGES)
			set.max_session_pages = v;
		else
			set.max_total_pages = v;
	}

	nl = nl_open_or_fail("config");
	if (!nl)
		return EXIT_FAIL;
	r = set.present ? cowmap_nl_set_config(nl, &set) : 0;
	if (!r)
		r = cowmap_nl_get_config(nl, &cfg);
	cowmap_nl_close(nl);
	if (r)
		return fail_lib("config", r);

	if (json) {
		json_begin_object(NULL);
		if (COWMAP_NL_HAS(&cfg, COWMAP_CONFIG_A_MAX_SESSION_PAGES))
			json_u64("max_session_pages", cfg.max_session_pages);
		if (COWMAP_NL_HAS(&cfg, COWMAP_CONFIG_A_MAX_TOTAL_PAGES))
			json_u64("max_total_pages", cfg.max_total_pages);
		json_end_object();
		json_end_document();
		return EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		uint64_t v = keys[i].attr == COWMAP_CONFIG_A_MAX_SESSION_PAGES ?
			     cfg.max_session_pages : cfg.max_total_pages;

		if (!COWMAP_NL_HAS(&cfg, keys[i].attr))
			continue;
		if (v)
			printf("%-18s %llu (%s)\n", keys[i].name, (unsigned long long)v,
			       fmt_size(v * (uint64_t)page_size));
		else
			printf("%-18s 0 (no limit)\n", keys[i].name);
	}
	return EXIT_OK;
}

const struct subcommand cmd_config = {
	.name = "config",
	.fn = config_main,
	.synopsis = "[--json] [KEY VALUE]...",
	.help = "show the limits, or set them (needs CAP_SYS_ADMIN)",
	.options = "  -j, --json           print JSON\n"
		   "  KEY                  max_session_pages or max_total_pages (pages; 0 = none)\n",
};
