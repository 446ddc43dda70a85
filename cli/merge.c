// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap merge [--dry-run] [--prefer first|last] [--force] [--trust-all-logs]
 * [--strict] [--undo-journal] [--wait SECONDS] [-o OUT] [--json] FILE LOG...:
 * apply logs to
 * FILE failure-atomically (libcowmap's merge), report what was written and
 * every conflict.  Exit status 3 when
 * unresolved conflicts left the file untouched, 4 when a log's whole last
 * record failed its checksum and was left out (--strict: 1, nothing
 * written, for any torn tail).  With --json, one object for every outcome.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* How libcowmap words the warning of a log of another file in merge-all. */
#define SKIPPED_WARNING "skipped, recorded against another file"

const char merge_options[] =
	"  -n, --dry-run        report what would change, write nothing\n"
	"  -p, --prefer WHICH   resolve conflicts: the first or the last log wins\n"
	"  -f, --force          accept logs recorded against another file\n"
	"  -o, --output OUT     write a merged copy to OUT, leave FILE as it is\n"
	"  -j, --json           print the report as JSON\n"
	"      --trust-all-logs merge logs of any owner (default: merge-all skips,\n"
	"                       and root refuses, logs owned by other users than\n"
	"                       the caller, FILE's owner or root)\n"
	"      --wait SECONDS   wait at most SECONDS for FILE's merge lock (10)\n"
	"      --strict         a torn tail of any kind is an error: nothing written\n"
	"                       (default: left out, with a warning; a whole last\n"
	"                       record failing its checksum makes the exit status 4)\n"
	"      --undo-journal   keep the old bytes in the journal too, so that an\n"
	"                       interrupted merge can be rolled back (recover -r)\n";

int merge_parse_args(const char *cmd, int argc, char **argv, struct merge_opts *o,
		     int *first_arg)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "prefer", required_argument, NULL, 'p' },
		{ "force", no_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "trust-all-logs", no_argument, NULL, OPT_TRUST_ALL_LOGS },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "strict", no_argument, NULL, OPT_STRICT },
		{ "undo-journal", no_argument, NULL, OPT_UNDO_JOURNAL },
		COMMON_LONGOPTS, {}
	};
	int c, r;

	memset(o, 0, sizeof(*o));
	o->cmd = cmd;
	while ((c = getopt_long(argc, argv, ":np:fo:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o->flags |= COWMAP_MERGE_DRY_RUN;
			continue;
		case 'p':
			o->flags &= ~(COWMAP_MERGE_PREFER_FIRST | COWMAP_MERGE_PREFER_LAST);
			if (!strcmp(optarg, "first"))
				o->flags |= COWMAP_MERGE_PREFER_FIRST;
			else if (!strcmp(optarg, "last"))
				o->flags |= COWMAP_MERGE_PREFER_LAST;
			else
				return usage_error(cmd, "--prefer takes 'first' or 'last', not '%s'",
						   optarg);
			continue;
		case 'f':
			o->flags |= COWMAP_MERGE_FORCE;
			continue;
		case 'o':
			o->out = optarg;
			continue;
		case 'j':
			o->json = json_mode = true;
			continue;
		case OPT_TRUST_ALL_LOGS:
			o->flags |= COWMAP_MERGE_TRUST_ALL_LOGS;
			continue;
		case OPT_STRICT:
			o->flags |= COWMAP_MERGE_STRICT;
			continue;
		case OPT_UNDO_JOURNAL:
			o->flags |= COWMAP_MERGE_UNDO_JOURNAL;
			continue;
		case OPT_WAIT:
			if (!set_lock_wait(optarg))
				return usage_error(cmd, "--wait takes a number of seconds, not '%s'",
						   optarg);
			continue;
		}
		if ((r = common_option(cmd, c, argv)) >= 0)
			return r;
	}
	*first_arg = optind;
	return -1;
}

static const char *kind_name(uint32_t kind)
{
	return kind == COWMAP_CONFLICT_LOGS ? "logs" :
	       kind == COWMAP_CONFLICT_STALE ? "stale" : "unknown";
}

static void print_preview(const uint8_t *p, uint32_t n, uint64_t len)
{
	putchar('"');
	print_escaped(stdout, p, n);
	putchar('"');
	if (len > n)
		printf("...");
}

static int merge_exit_status(const struct cowmap_merge_stats *st, int ret)
{
	if (ret == -COWMAP_ECONFLICT)
		return EXIT_CONFLICT;
	if (ret)
		return EXIT_FAIL;
	return st->crc_tail_logs ? EXIT_CRC_TAIL : EXIT_OK;
}

static void json_report(struct cowmap_merge *m, const struct merge_opts *o,
			const struct cowmap_merge_stats *st, int ret, const char *msg)
{
	struct cowmap_conflict c;
	const char *w;

	json_begin_object(NULL);
	json_string("file", o->file);
	if (o->out)
		json_string("output", o->out);
	if (o->dir)
		json_string("dir", o->dir);
	json_bool("dry_run", o->flags & COWMAP_MERGE_DRY_RUN);
	json_bool("strict", o->flags & COWMAP_MERGE_STRICT);
	json_string("prefer", o->flags & COWMAP_MERGE_PREFER_FIRST ? "first" :
		    o->flags & COWMAP_MERGE_PREFER_LAST ? "last" : "none");
	json_string("result", ret == -COWMAP_ECONFLICT ? "conflicts" :
		    ret ? "error" : (o->flags & COWMAP_MERGE_DRY_RUN) ? "planned" : "merged");
	json_u64("exit_status", (uint64_t)merge_exit_status(st, ret));
	if (ret && ret != -COWMAP_ECONFLICT)
		json_string("error", msg[0] ? msg : cowmap_strerror(ret));
	json_begin_array("logs");
	for (size_t i = 0; cowmap_merge_log_name(m, i); i++)
		json_string(NULL, cowmap_merge_log_name(m, i));
	json_end_array();
	json_begin_object("stats");
	json_u64("logs", st->logs);
	json_u64("skipped_logs", st->skipped_logs);
	json_u64("records", st->records);
	json_u64("torn_logs", st->torn_logs);
	json_u64("crc_tail_logs", st->crc_tail_logs);
	json_u64("changed_bytes", st->changed_bytes);
	json_u64("write_bytes", st->write_bytes);
	json_u64("write_ranges", st->write_ranges);
	json_u64("applied_bytes", st->applied_bytes);
	json_u64("conflicts", st->conflicts);
	json_u64("unresolved", st->unresolved);
	json_u64("conflict_bytes", st->conflict_bytes);
	json_u64("recovered", st->recovered);
	json_end_object();
	json_begin_array("conflicts");
	for (size_t i = 0; cowmap_merge_conflict(m, i, &c) == 0; i++) {
		json_begin_object(NULL);
		json_string("kind", kind_name(c.kind));
		json_bool("resolved", c.flags & COWMAP_CONFLICT_RESOLVED);
		json_u64("offset", c.offset);
		json_u64("length", c.length);
		json_i64("log_a", c.log_a);
		json_string("log_a_name", cowmap_merge_log_name(m, (size_t)c.log_a));
		json_i64("log_b", c.log_b);
		if (c.log_b >= 0)
			json_string("log_b_name", cowmap_merge_log_name(m, (size_t)c.log_b));
		json_hex("file", c.file, c.preview_len);
		json_hex("a", c.a, c.preview_len);
		json_hex("b", c.b, c.preview_len);
		json_end_object();
	}
	json_end_array();
	json_begin_array("warnings");
	for (size_t i = 0; (w = cowmap_merge_warning(m, i)); i++)
		json_string(NULL, w);
	json_end_array();
	json_end_object();
	json_end_document();
}

static void text_report(struct cowmap_merge *m, const struct merge_opts *o,
			const struct cowmap_merge_stats *st, int ret)
{
	struct cowmap_conflict c;
	const char *w;
	size_t listed;

	/* Logs of other files in a merge-all directory are counted below,
	 * not each warned about. */
	for (size_t i = 0; (w = cowmap_merge_warning(m, i)); i++)
		if (!strstr(w, SKIPPED_WARNING))
			warnf(o->cmd, "%s", w);
	if (st->recovered == COWMAP_RECOVER_REPLAYED)
		printf("%s: an interrupted merge was completed first\n", o->file);
	else if (st->recovered == COWMAP_RECOVER_DROPPED)
		printf("%s: an incomplete merge journal was dropped first\n", o->file);
	for (listed = 0; cowmap_merge_conflict(m, listed, &c) == 0; listed++) {
		const char *a = esc(cowmap_merge_log_name(m, (size_t)c.log_a));

		printf("%s: bytes %llu-%llu (%llu): ",
		       c.flags & COWMAP_CONFLICT_RESOLVED ? "resolved conflict" : "conflict",
		       (unsigned long long)c.offset,
		       (unsigned long long)(c.offset + c.length - 1),
		       (unsigned long long)c.length);
		if (c.kind == COWMAP_CONFLICT_LOGS) {
			printf("%s writes ", a);
			print_preview(c.a, c.preview_len, c.length);
			printf(", %s writes ", esc(cowmap_merge_log_name(m, (size_t)c.log_b)));
			print_preview(c.b, c.preview_len, c.length);
			printf(" (file holds ");
			print_preview(c.file, c.preview_len, c.length);
			printf(")\n");
		} else {
			printf("%s expected ", a);
			print_preview(c.a, c.preview_len, c.length);
			printf(" but the file holds ");
			print_preview(c.file, c.preview_len, c.length);
			printf("; the log writes ");
			print_preview(c.b, c.preview_len, c.length);
			printf("\n");
		}
	}
	if (st->conflicts > listed)
		printf("... and %llu more conflicting range%s, not listed (the first %zu are)\n",
		       (unsigned long long)(st->conflicts - listed),
		       st->conflicts - listed == 1 ? "" : "s", listed);
	if (ret == -COWMAP_ECONFLICT) {
		printf("%llu conflict%s, nothing written", (unsigned long long)st->unresolved,
		       st->unresolved == 1 ? "" : "s");
		if (!(o->flags & COWMAP_MERGE_DRY_RUN))
			printf(" (--prefer first|last resolves them by log order)");
		printf("\n");
		return;
	}
	if (ret)
		return;
	if (o->dir && !st->logs) {
		printf("%s: no logs of %s", o->dir, o->file);
		if (st->skipped_logs)
			printf(" (%llu log%s of other files skipped)",
			       (unsigned long long)st->skipped_logs, st->skipped_logs == 1 ? "" : "s");
		printf(": nothing to merge\n");
		return;
	}
	printf("%s %llu log%s (%llu record%s", (o->flags & COWMAP_MERGE_DRY_RUN) ?
	       "Dry run:" : "Merged", (unsigned long long)st->logs,
	       st->logs == 1 ? "" : "s", (unsigned long long)st->records,
	       st->records == 1 ? "" : "s");
	if (st->skipped_logs == 1)
		printf(", 1 log of another file skipped");
	else if (st->skipped_logs)
		printf(", %llu logs of other files skipped", (unsigned long long)st->skipped_logs);
	printf("): %llu byte%s %s in %llu range%s", (unsigned long long)st->write_bytes,
	       st->write_bytes == 1 ? "" : "s",
	       (o->flags & COWMAP_MERGE_DRY_RUN) ? "would be written" : "written",
	       (unsigned long long)st->write_ranges, st->write_ranges == 1 ? "" : "s");
	if (st->applied_bytes)
		printf(", %llu already in place", (unsigned long long)st->applied_bytes);
	if (st->conflicts)
		printf(", %llu conflict%s resolved", (unsigned long long)st->conflicts,
		       st->conflicts == 1 ? "" : "s");
	if (!(o->flags & COWMAP_MERGE_DRY_RUN))
		printf(" -> %s", o->out ? o->out : o->file);
	printf("\n");
}

/* Report @ret of cowmap_merge_run() (or of the setup before it, @m NULL
 * if there is no merge) and return the exit status. */
static int report(struct cowmap_merge *m, const struct merge_opts *o, int ret)
{
	struct cowmap_merge_stats st;
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", ret ? cowmap_errmsg() : "");
	memset(&st, 0, sizeof(st));
	if (m)
		cowmap_merge_stats(m, &st);
	if (o->json)
		json_report(m, o, &st, ret, msg);
	else
		text_report(m, o, &st, ret);
	if (ret && ret != -COWMAP_ECONFLICT)
		return failf(o->cmd, "%s", msg[0] ? msg : cowmap_strerror(ret));
	if (!ret && st.crc_tail_logs && !o->json)
		printf("%llu log%s ended in a damaged record (left out): exit status 4\n",
		       (unsigned long long)st.crc_tail_logs, st.crc_tail_logs == 1 ? "" : "s");
	return merge_exit_status(&st, ret);
}

int merge_report_run(struct cowmap_merge *m, const struct merge_opts *o)
{
	return report(m, o, cowmap_merge_run(m));
}

int merge_report_setup_error(struct cowmap_merge *m, const struct merge_opts *o, int ret)
{
	int r = report(m, o, ret);

	cowmap_merge_free(m);
	return r;
}

static int merge_main(int argc, char **argv)
{
	struct cowmap_merge *m;
	struct merge_opts o;
	int first, r;

	r = merge_parse_args("merge", argc, argv, &o, &first);
	if (r >= 0)
		return r;
	if (argc - first < 2)
		return usage_error("merge", argc == first ? "a file and at least one log are needed" :
				   "at least one log is needed");
	o.file = argv[first];
	r = cowmap_merge_new(o.file, o.flags, &m);
	if (r)
		return merge_report_setup_error(NULL, &o, r);
	if (o.out && (r = cowmap_merge_set_output(m, o.out)))
		return merge_report_setup_error(m, &o, r);
	for (int i = first + 1; i < argc; i++) {
		r = cowmap_merge_add_log(m, argv[i]);
		if (r)
			return merge_report_setup_error(m, &o, r);
	}
	r = merge_report_run(m, &o);
	cowmap_merge_free(m);
	return r;
}

const struct subcommand cmd_merge = {
	.name = "merge",
	.fn = merge_main,
	.synopsis = "[--dry-run] [--prefer first|last] [--force] [--trust-all-logs] [--strict] "
		    "[--undo-journal] [--wait SECONDS] [-o OUT] [--json] FILE LOG...",
	.help = "apply logs to FILE, all or nothing; conflicts are reported and nothing is written",
	.options = merge_options,
};
