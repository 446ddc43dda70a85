// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap status: is the module loaded, its version, configuration and
 * global statistics.  Exit status 1 when the module is not loaded.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void read_module_version(char *buf, size_t size)
{
	FILE *f = fopen("/sys/module/cowmap/version", "r");

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, (int)size, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static const char *limit(uint64_t pages, long page_size)
{
	static char b[2][64];
	static int i;
	char *s = b[i++ & 1];

	if (!pages)
		snprintf(s, 64, "0 (no limit)");
	else
		snprintf(s, 64, "%llu (%s)", (unsigned long long)pages,
			 fmt_size(pages * (uint64_t)page_size));
	return s;
}

static void print_features(uint64_t f)
{
	static const char *const names[] = { "log-fd", "diff", "discard", "netlink" };

	for (unsigned int i = 0; i < 64; i++) {
		if (!(f & (1ULL << i)))
			continue;
		if (i < ARRAY_SIZE(names))
			printf(" %s", names[i]);
		else
			printf(" bit%u", i);
	}
}

static int status_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, COMMON_LONGOPTS, {}
	};
	struct cowmap_nl_config cfg;
	struct cowmap_nl_stats st;
	struct cowmap_version v;
	struct cowmap_nl *nl;
	bool json = false, have_v;
	long page_size = sysconf(_SC_PAGESIZE);
	char version[64];
	int c, r;

	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		if (c == 'j') {
			json = json_mode = true;
			continue;
		}
		if ((r = common_option("status", c, argv)) >= 0)
			return r;
	}
	if (optind < argc)
		return usage_error("status", "unexpected argument '%s'", argv[optind]);

	if (!module_loaded()) {
		if (json) {
			json_begin_object(NULL);
			json_bool("loaded", false);
			json_string("error", "the cowmap module is not loaded");
			json_end_object();
			json_end_document();
		} else {
			printf("cowmap module: not loaded (load it with 'modprobe cowmap')\n");
		}
		return EXIT_FAIL;
	}
	read_module_version(version, sizeof(version));
	have_v = cowmap_session_version(NULL, &v) == 0;
	nl = nl_open_or_fail("status");
	if (!nl)
		return EXIT_FAIL;
	r = cowmap_nl_get_config(nl, &cfg);
	if (!r)
		r = cowmap_nl_get_stats(nl, &st);
	if (r) {
		cowmap_nl_close(nl);
		return fail_lib("status", r);
	}

	if (json) {
		json_begin_object(NULL);
		json_bool("loaded", true);
		json_string("version", version);
		if (have_v) {
			json_u64("abi", v.abi);
			json_u64("features", v.features);
			json_u64("page_size", v.page_size);
		}
		json_u64("netlink_version", cowmap_nl_family_version(nl));
		json_begin_object("config");
		if (COWMAP_NL_HAS(&cfg, COWMAP_CONFIG_A_MAX_SESSION_PAGES))
			json_u64("max_session_pages", cfg.max_session_pages);
		if (COWMAP_NL_HAS(&cfg, COWMAP_CONFIG_A_MAX_TOTAL_PAGES))
			json_u64("max_total_pages", cfg.max_total_pages);
		json_end_object();
		json_begin_object("stats");
		json_u64("sessions", st.sessions);
		json_u64("private_pages", st.private_pages);
		json_u64("cow_faults", st.cow_faults);
		json_u64("read_faults", st.read_faults);
		json_u64("events_lost", st.events_lost);
		json_u64("cap_hits", st.cap_hits);
		json_u64("drained_bytes", st.drained_bytes);
		json_end_object();
		json_end_object();
		json_end_document();
	} else {
		if (have_v)
			page_size = v.page_size;
		printf("cowmap module: loaded, version %s", version[0] ? version : "?");
		if (have_v)
			printf(" (ABI %u, netlink family version %u)", v.abi,
			       cowmap_nl_family_version(nl));
		printf("\n");
		if (have_v) {
			printf("Device:        %s, page size %u, features:", COWMAP_DEVICE_PATH,
			       v.page_size);
			print_features(v.features);
			printf("\n");
		} else {
			printf("Device:        %s: %s\n", COWMAP_DEVICE_PATH, cowmap_errmsg());
		}
		printf("\nConfiguration:\n");
		printf("  max_session_pages  %s\n", limit(cfg.max_session_pages, page_size));
		printf("  max_total_pages    %s\n", limit(cfg.max_total_pages, page_size));
		printf("\nStatistics:\n");
		printf("  sessions           %llu\n", (unsigned long long)st.sessions);
		printf("  private pages      %llu (%s)\n", (unsigned long long)st.private_pages,
		       fmt_size(st.private_pages * (uint64_t)page_size));
		printf("  COW faults         %llu\n", (unsigned long long)st.cow_faults);
		printf("  read faults        %llu\n", (unsigned long long)st.read_faults);
		printf("  events lost        %llu\n", (unsigned long long)st.events_lost);
		printf("  cap hits           %llu\n", (unsigned long long)st.cap_hits);
		printf("  drained            %s\n", fmt_size(st.drained_bytes));
	}
	cowmap_nl_close(nl);
	return EXIT_OK;
}

const struct subcommand cmd_status = {
	.name = "status",
	.fn = status_main,
	.synopsis = "[--json]",
	.help = "show whether the module is loaded, its version, configuration and statistics",
	.options = "  -j, --json           print JSON\n",
};
