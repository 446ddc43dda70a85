// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap sessions [--json] [ID]: the table of live sessions the caller may
 * see (the kernel shows other users' sessions only to CAP_SYS_ADMIN), or
 * one session in detail.
 */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *user_name(uint32_t uid)
{
	static char b[32];
	struct passwd *pw = getpwuid(uid);

	if (pw && strlen(pw->pw_name) < sizeof(b))
		return strcpy(b, pw->pw_name);
	snprintf(b, sizeof(b), "%u", uid);
	return b;
}

static void print_table(const struct cowmap_nl_session *v, size_t n)
{
	int w_id = 2, w_pid = 3, w_user = 4, w_comm = 7;

	for (size_t i = 0; i < n; i++) {
		char b[32];
		int l;

		l = snprintf(b, sizeof(b), "%llu", (unsigned long long)v[i].id);
		w_id = l > w_id ? l : w_id;
		l = snprintf(b, sizeof(b), "%u", v[i].pid);
		w_pid = l > w_pid ? l : w_pid;
		l = (int)strlen(user_name(v[i].uid));
		w_user = l > w_user ? l : w_user;
		l = (int)strlen(esc(v[i].comm));
		w_comm = l > w_comm ? l : w_comm;
	}
	printf("%*s %*s %-*s %-*s %10s %8s %8s %6s  %s\n", w_id, "ID", w_pid, "PID",
	       w_user, "USER", w_comm, "COMMAND", "MAPPED", "PRIVATE", "EVENTS", "LOST",
	       "FILE");
	for (size_t i = 0; i < n; i++) {
		const struct cowmap_nl_session *s = &v[i];

		printf("%*llu %*u %-*s %-*s %10s %8llu %8llu %6llu  ", w_id,
		       (unsigned long long)s->id, w_pid, s->pid, w_user, user_name(s->uid),
		       w_comm, esc(s->comm), fmt_size(s->mapped_bytes),
		       (unsigned long long)s->private_pages, (unsigned long long)s->events,
		       (unsigned long long)s->events_lost);
		print_escaped(stdout, (const uint8_t *)s->path, strlen(s->path));
		printf("\n");
	}
}

static void print_one(const struct cowmap_nl_session *s, long page_size)
{
	printf("Session:        %llu\n", (unsigned long long)s->id);
	printf("Process:        %u (%s)\n", s->pid, esc(s->comm));
	printf("Owner:          %s\n", user_name(s->uid));
	printf("File:           ");
	print_escaped(stdout, (const uint8_t *)s->path, strlen(s->path));
	printf(" (dev %s, inode %llu)\n", fmt_dev(s->dev), (unsigned long long)s->ino);
	printf("Bound:          %s\n", fmt_time_ns(s->bind_time_ns));
	printf("Mapped:         %s\n", fmt_size(s->mapped_bytes));
	printf("Private pages:  %llu (%s)\n", (unsigned long long)s->private_pages,
	       fmt_size(s->private_pages * (uint64_t)page_size));
	printf("Events:         %llu (%llu lost)\n", (unsigned long long)s->events,
	       (unsigned long long)s->events_lost);
}

static int sessions_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, COMMON_LONGOPTS, {}
	};
	long page_size = sysconf(_SC_PAGESIZE);
	struct cowmap_nl_session *v = NULL, one;
	struct cowmap_nl *nl;
	bool json = false, have_id = false;
	uint64_t id = 0;
	size_t n = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		if (c == 'j') {
			json = json_mode = true;
			continue;
		}
		if ((r = common_option("sessions", c, argv)) >= 0)
			return r;
	}
	if (argc - optind > 1)
		return usage_error("sessions", "too many arguments");
	if (optind < argc) {
		if (!parse_session_id(argv[optind], &id))
			return usage_error("sessions", "'%s' is not a session id", argv[optind]);
		have_id = true;
	}
	nl = nl_open_or_fail("sessions");
	if (!nl)
		return EXIT_FAIL;
	if (have_id)
		r = cowmap_nl_get_session(nl, id, &one);
	else
		r = cowmap_nl_list_sessions(nl, &v, &n);
	cowmap_nl_close(nl);
	if (r)
		return fail_lib("sessions", r);

	if (json) {
		/* One shape with or without ID: {"sessions":[...]} */
		json_begin_object(NULL);
		json_begin_array("sessions");
		if (have_id)
			json_session(NULL, &one);
		for (size_t i = 0; i < n; i++)
			json_session(NULL, &v[i]);
		json_end_array();
		json_end_object();
		json_end_document();
	} else if (have_id) {
		print_one(&one, page_size);
	} else if (n) {
		print_table(v, n);
	} else {
		printf("No sessions.\n");
	}
	free(v);
	return EXIT_OK;
}

const struct subcommand cmd_sessions = {
	.name = "sessions",
	.fn = sessions_main,
	.synopsis = "[--json] [ID]",
	.help = "list the sessions you may see (all of them for root), or one in detail",
	.options = "  -j, --json           print JSON\n",
};
