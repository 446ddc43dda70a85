/* SPDX-License-Identifier: GPL-2.0-or-later OR MIT */
/*
 * The cowmap command: the subcommand table, option handling, output helpers
 * (human and JSON) shared by the cli/<subcommand>.c files.
 */
#ifndef COWMAP_CLI_H
#define COWMAP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cowmap.h"

#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2
#define EXIT_CONFLICT	3
/* Merged or shown, but a log's whole last record failed its checksum and
 * was left out (COWMAP_LOG_TORN_CRC). */
#define EXIT_CRC_TAIL	4

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *synopsis;	/* arguments, after "cowmap NAME" */
	const char *help;	/* one line */
	const char *options;	/* option lines, or NULL */
	bool hidden;
};

/* Each in cli/<name>.c, beside its option parser. */
extern const struct subcommand cmd_status, cmd_sessions, cmd_config, cmd_monitor, cmd_drain,
	cmd_discard, cmd_log, cmd_merge, cmd_merge_all, cmd_recover, cmd_run, cmd_help,
	cmd_complete;
/* All of them, in the order of 'cowmap help'. */
extern const struct subcommand *const subcommands[];
extern const size_t n_subcommands;

const struct subcommand *find_subcommand(const char *name);
/* Full usage of @name ("cowmap" for the whole tool) to @f. */
void print_usage(FILE *f, const char *name);
void print_version(void);

/* Common options, to put in every subcommand's long option table. */
#define COMMON_LONGOPTS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, OPT_VERSION }
enum { OPT_VERSION = 0x100, OPT_TRUST_ALL_LOGS, OPT_WAIT, OPT_STRICT, OPT_UNDO_JOURNAL, OPT_FIRST_PRIVATE };

/*
 * Text from logs, the kernel or other users (comm, file and log names,
 * library messages naming them) with control characters as \xNN, so that
 * it cannot drive the terminal: esc() (which also doubles '\') returns one
 * of four rotating static buffers (for printf arguments); fputs_escaped()
 * (messages: '\' kept) writes to @f.
 */
const char *esc(const char *s);
void fputs_escaped(const char *s, FILE *f);

/* --wait SECONDS of merge, merge-all and recover: how long to wait for the
 * file's merge lock (cowmap_set_lock_wait()); false if @arg is not a
 * number of seconds. */
bool set_lock_wait(const char *arg);

/*
 * Handle what every subcommand's getopt loop shares: -h/--help (usage to
 * stdout, exit 0), --version, and unknown options or missing arguments
 * (usage to stderr, exit 2).  Returns -1 if @c is the subcommand's own.
 * Option strings start with ':' (after '+' where used).
 */
int common_option(const char *cmd, int c, char **argv);

/* "cowmap CMD: message", usage to stderr; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "cowmap CMD: message" to stderr; returns EXIT_FAIL. */
int failf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "cowmap CMD: <libcowmap's message for @err>"; returns EXIT_FAIL. */
int fail_lib(const char *cmd, int err);
/* "cowmap CMD: warning: ..." to stderr. */
void warnf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a decimal u64 (no sign, no junk); false if malformed. */
bool parse_u64(const char *s, uint64_t *v);
/* A session id: decimal, > 0. */
bool parse_session_id(const char *s, uint64_t *id);

/* Human formats; each returns a static buffer (one of a few rotating). */
const char *fmt_size(uint64_t bytes);		/* "12.0 KiB" */
const char *fmt_time_ns(uint64_t ns);		/* "2024-05-05 00:39:32" local */
const char *fmt_dev(uint64_t dev);		/* "254:0" */
/* Print @len bytes escaped: printable ASCII as is, \\ \n \t \r \xHH. */
void print_escaped(FILE *f, const uint8_t *p, size_t len);
/* Like print_escaped, at most @max bytes, then "...(+N bytes)". */
void print_escaped_max(FILE *f, const uint8_t *p, size_t len, size_t max);

/* Open the netlink family; on failure print the reason, return NULL. */
struct cowmap_nl *nl_open_or_fail(const char *cmd);
/* 1 if /sys/module/cowmap exists. */
bool module_loaded(void);

/* ------------------------------------------------------------------------
 * JSON output (json.c): one document, written as it goes, compact.
 * Strings are escaped for JSON; bytes that are not valid UTF-8 are
 * written as \u00XX.  @key is NULL inside arrays and at the top.
 * ------------------------------------------------------------------------
 */
void json_begin_object(const char *key);
void json_end_object(void);
void json_begin_array(const char *key);
void json_end_array(void);
void json_string(const char *key, const char *s);
void json_string_n(const char *key, const uint8_t *s, size_t len);
void json_hex(const char *key, const uint8_t *p, size_t len);
void json_u64(const char *key, uint64_t v);
void json_i64(const char *key, int64_t v);
void json_bool(const char *key, bool v);
void json_null(const char *key);
/* An ISO 8601 UTC time with nanoseconds, "2026-12-07T17:09:17.123456789Z"
 * (exact where a number of nanoseconds, above 2^53, is not for most JSON
 * readers). */
void json_time(const char *key, uint64_t ns);
/* End the document: newline and flush. */
void json_end_document(void);
/*
 * --json was asked for (set by each --json command's option loop, and
 * before it by main() when the arguments hold "--json" or "-j"): then
 * usage errors and failures (usage_error(), failf()) also print
 * {"error":"MESSAGE"} to stdout, unless a document was already printed
 * (json_lines: always; monitor prints one document per line).
 */
extern bool json_mode;
extern bool json_lines;
void json_error_document(const char *msg);

/* JSON of a session, shared by sessions and monitor. */
void json_session(const char *key, const struct cowmap_nl_session *s);

/* Merge and merge-all share this: runs @m, prints the report. */
struct merge_opts {
	const char *cmd;
	const char *file;
	const char *out;
	const char *dir;	/* merge-all */
	unsigned int flags;
	bool json;
};

/* The option lines of merge and merge-all's help. */
extern const char merge_options[];
int merge_parse_args(const char *cmd, int argc, char **argv, struct merge_opts *o,
		     int *first_arg);
int merge_report_run(struct cowmap_merge *m, const struct merge_opts *o);
/* A failure (@ret) before the merge ran (@m NULL if it was not made):
 * reported as merge_report_run() would, @m freed; the exit status. */
int merge_report_setup_error(struct cowmap_merge *m, const struct merge_opts *o, int ret);

/* config.c: the keys, one per line (cowmap __complete config-keys). */
void config_print_keys(void);

#endif /* COWMAP_CLI_H */
