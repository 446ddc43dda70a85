// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap monitor [--json] [-t] [-c COUNT]: print the module's notifications
 * as they arrive, one per line, like 'ip monitor'.  Ends on SIGINT/SIGTERM
 * (status 0) or after COUNT notifications.
 *
 * A notification names the session and its owner only (anyone may listen).
 * For a new session, monitor asks the module for the rest
 * (COWMAP_CMD_GET_SESSION, on a second socket), which the module answers
 * only for sessions the caller may see; what it learnt is remembered and
 * shown again with the session's later notifications.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Sessions whose details we know, by id; bounded, oldest dropped first. */
#define KNOWN_MAX 256

static struct cowmap_nl_session *known;
static size_t n_known;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static struct cowmap_nl_session *find_known(uint64_t id)
{
	for (size_t i = 0; i < n_known; i++)
		if (known[i].id == id)
			return &known[i];
	return NULL;
}

static void forget(uint64_t id)
{
	struct cowmap_nl_session *s = find_known(id);

	if (!s)
		return;
	memmove(s, s + 1, (size_t)(known + n_known - (s + 1)) * sizeof(*s));
	n_known--;
}

static void remember(const struct cowmap_nl_session *s)
{
	if (!known) {
		known = calloc(KNOWN_MAX, sizeof(*known));
		if (!known)
			return;
	}
	forget(s->id);
	if (n_known == KNOWN_MAX) {
		memmove(known, known + 1, (KNOWN_MAX - 1) * sizeof(*known));
		n_known--;
	}
	known[n_known++] = *s;
}

/* Complete @ev->session with what the module tells us, or we remember. */
static void add_details(struct cowmap_nl *q, struct cowmap_nl_event *ev)
{
	struct cowmap_nl_session *k, full;

	if (!ev->session_id)
		return;
	if (ev->cmd == COWMAP_CMD_SESSION_NEW && q &&
	    cowmap_nl_get_session(q, ev->session_id, &full) == 0) {
		/* The notification's own attributes stand. */
		full.present |= ev->session.present;
		if (COWMAP_NL_HAS(&ev->session, COWMAP_SESSION_A_UID))
			full.uid = ev->session.uid;
		ev->session = full;
		remember(&full);
		return;
	}
	k = find_known(ev->session_id);
	if (k) {
		uint64_t present = ev->session.present;
		uint32_t uid = ev->session.uid;

		ev->session = *k;
		ev->session.present |= present;
		if (present & (1ULL << COWMAP_SESSION_A_UID))
			ev->session.uid = uid;
	}
	if (ev->cmd == COWMAP_CMD_SESSION_DEL)
		forget(ev->session_id);
}

static void print_stamp(bool json)
{
	struct timespec ts;
	struct tm tm;
	char b[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	if (json) {
		uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;

		json_u64("time_ns", ns);
		json_time("time", ns);
		return;
	}
	localtime_r(&ts.tv_sec, &tm);
	strftime(b, sizeof(b), "%H:%M:%S", &tm);
	printf("[%s.%06ld] ", b, ts.tv_nsec / 1000);
}

/* " pid 42 (comm) uid 0 /path", each part only if known. */
static void print_session_brief(const struct cowmap_nl_session *s)
{
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_PID))
		printf(" pid %u", s->pid);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_COMM))
		printf(" (%s)", esc(s->comm));
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_UID))
		printf(" uid %u", s->uid);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_PATH)) {
		putchar(' ');
		print_escaped(stdout, (const uint8_t *)s->path, strlen(s->path));
	}
}

static void print_event(const struct cowmap_nl_event *ev, bool json, bool stamp)
{
	const struct cowmap_nl_session *s = &ev->session;
	const char *name = cowmap_nl_cmd_name(ev->cmd);

	if (json) {
		json_begin_object(NULL);
		if (stamp)
			print_stamp(true);
		json_string("event", name);
		json_u64("cmd", ev->cmd);
		json_u64("session_id", ev->session_id);
		if (ev->cmd == COWMAP_CMD_CAP_REACHED || ev->cmd == COWMAP_CMD_RING_OVERFLOW)
			json_u64("offset", ev->offset);
		if (s->present)
			json_session("session", s);
		json_end_object();
		json_end_document();
		return;
	}
	if (stamp)
		print_stamp(false);
	switch (ev->cmd) {
	case COWMAP_CMD_SESSION_NEW:
	case COWMAP_CMD_SESSION_DEL:
		printf("%s session %llu", name, (unsigned long long)ev->session_id);
		print_session_brief(s);
		break;
	case COWMAP_CMD_CAP_REACHED:
		printf("%s session %llu offset %llu: a write was refused (SIGBUS)", name,
		       (unsigned long long)ev->session_id, (unsigned long long)ev->offset);
		print_session_brief(s);
		break;
	case COWMAP_CMD_RING_OVERFLOW:
		printf("%s session %llu offset %llu: events were overwritten", name,
		       (unsigned long long)ev->session_id, (unsigned long long)ev->offset);
		print_session_brief(s);
		break;
	default:
		printf("unknown notification (command %u) session %llu", ev->cmd,
		       (unsigned long long)ev->session_id);
	}
	printf("\n");
	fflush(stdout);
}

static int monitor_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "timestamp", no_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'c' },
		COMMON_LONGOPTS, {}
	};
	struct sigaction sa = { .sa_handler = on_signal };
	bool json = false, stamp = false;
	uint64_t count = 0, seen = 0;
	struct cowmap_nl_event ev;
	struct cowmap_nl *nl, *q = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, ":jtc:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = json_mode = json_lines = true;
			continue;
		case 't':
			stamp = true;
			continue;
		case 'c':
			if (!parse_u64(optarg, &count) || !count)
				return usage_error("monitor", "'%s' is not a positive count", optarg);
			continue;
		}
		if ((r = common_option("monitor", c, argv)) >= 0)
			return r;
	}
	if (optind < argc)
		return usage_error("monitor", "unexpected argument '%s'", argv[optind]);

	nl = nl_open_or_fail("monitor");
	if (!nl)
		return EXIT_FAIL;
	r = cowmap_nl_subscribe(nl);
	if (r) {
		cowmap_nl_close(nl);
		return fail_lib("monitor", r);
	}
	/* Requests go on their own socket; without it, notifications stay brief. */
	if (cowmap_nl_open(0, &q))
		q = NULL;
	/* No SA_RESTART: a signal ends the wait in poll(2). */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	r = EXIT_OK;
	while (!stop && (!count || seen < count)) {
		int n = cowmap_nl_next_event(nl, &ev, -1);

		if (n == -EINTR)
			continue;
		if (n == -ENOBUFS) {
			if (json) {
				json_begin_object(NULL);
				json_string("event", "lost");
				json_end_object();
				json_end_document();
			} else {
				printf("lost: %s\n", cowmap_errmsg());
			}
			continue;
		}
		if (n < 0) {
			r = fail_lib("monitor", n);
			break;
		}
		if (n == 0)
			continue;
		add_details(q, &ev);
		print_event(&ev, json, stamp);
		seen++;
	}
	cowmap_nl_close(q);
	cowmap_nl_close(nl);
	free(known);
	return r;
}

const struct subcommand cmd_monitor = {
	.name = "monitor",
	.fn = monitor_main,
	.synopsis = "[--json] [-t] [-c COUNT]",
	.help = "print notifications as they happen: sessions created and closed, caps reached",
	.options = "  -j, --json           print one JSON object per line\n"
		   "  -t, --timestamp      prefix each line with the time it was received\n"
		   "  -c, --count COUNT    exit after COUNT notifications\n",
};
