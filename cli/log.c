// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap log show [--json] [--full] LOG...: a log's header, then its
 * records one per line,
 *   Offset: 8, Length: 3, Old: abc, Data: xxx
 * with non-printable bytes escaped, and a torn tail reported (which kind:
 * cut short, zero bytes, or a whole last record failing its checksum; the
 * last exits 4).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define PREVIEW 64

/* JSON names of struct cowmap_log_info.torn_kind. */
static const char *torn_kind_name(uint32_t kind)
{
	return kind == COWMAP_LOG_TORN_SHORT ? "short" : kind == COWMAP_LOG_TORN_ZERO ? "zero" :
	       kind == COWMAP_LOG_TORN_CRC ? "crc" : "unknown";
}

static void show_json(struct cowmap_log *log, const char *name,
		      const struct cowmap_log_info *in)
{
	struct cowmap_log_rec rec;
	int r;

	json_begin_object(NULL);
	json_string("log", name);
	json_string("path", in->path);
	json_u64("dev", in->dev);
	json_string("dev_name", fmt_dev(in->dev));
	json_u64("ino", in->ino);
	json_u64("size", in->size);
	json_u64("session_id", in->session_id);
	json_u64("pid", in->pid);
	json_u64("uid", in->uid);
	json_string("comm", in->comm);
	json_u64("bind_time_ns", in->bind_time_ns);
	json_time("bind_time", in->bind_time_ns);
	json_u64("version", in->version);
	json_u64("log_size", in->log_size);
	json_u64("records_count", in->records);
	json_bool("torn", in->torn);
	if (in->torn) {
		json_u64("torn_offset", in->torn_offset);
		json_string("torn_kind", torn_kind_name(in->torn_kind));
	}
	json_begin_array("records");
	while ((r = cowmap_log_next(log, &rec)) == 1) {
		json_begin_object(NULL);
		json_u64("seq", rec.seq);
		json_u64("offset", rec.offset);
		json_u64("length", rec.length);
		json_hex("old", rec.old_data, rec.length);
		json_hex("new", rec.new_data, rec.length);
		json_end_object();
	}
	json_end_array();
	json_end_object();
}

static void show_text(struct cowmap_log *log, const char *name,
		      const struct cowmap_log_info *in, bool full)
{
	struct cowmap_log_rec rec;
	unsigned long long n;

	printf("Log:      %s\n", esc(name));
	printf("File:     ");
	print_escaped(stdout, (const uint8_t *)in->path, strlen(in->path));
	printf(" (dev %s, inode %llu, %llu byte%s at bind)\n", fmt_dev(in->dev),
	       (unsigned long long)in->ino, (unsigned long long)in->size,
	       in->size == 1 ? "" : "s");
	if (in->session_id)
		printf("Session:  %llu, pid %u (%s), uid %u, bound %s\n",
		       (unsigned long long)in->session_id, in->pid, esc(in->comm), in->uid,
		       fmt_time_ns(in->bind_time_ns));
	else
		printf("Session:  none (written by pid %u (%s), uid %u, %s)\n", in->pid,
		       esc(in->comm), in->uid, fmt_time_ns(in->bind_time_ns));
	printf("Records:  %llu\n", (unsigned long long)in->records);
	while (cowmap_log_next(log, &rec) == 1) {
		printf("Offset: %llu, Length: %u, Old: ", (unsigned long long)rec.offset,
		       rec.length);
		print_escaped_max(stdout, rec.old_data, rec.length, full ? rec.length : PREVIEW);
		printf(", Data: ");
		print_escaped_max(stdout, rec.new_data, rec.length, full ? rec.length : PREVIEW);
		printf("\n");
	}
	if (!in->torn)
		return;
	n = (unsigned long long)in->records;
	if (in->torn_kind == COWMAP_LOG_TORN_CRC)
		printf("Damaged:  the whole last record, at byte %llu, fails its checksum "
		       "(left out): the %llu record%s before it %s valid\n",
		       (unsigned long long)in->torn_offset, n, n == 1 ? "" : "s",
		       n == 1 ? "is" : "are");
	else
		printf("Torn:     tail at byte %llu, %s (an interrupted append): the %llu "
		       "record%s before it %s valid\n", (unsigned long long)in->torn_offset,
		       in->torn_kind == COWMAP_LOG_TORN_ZERO ? "zero bytes" :
		       "a record cut short by the end of the file", n, n == 1 ? "" : "s",
		       n == 1 ? "is" : "are");
}

static int show_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "full", no_argument, NULL, 'f' },
		COMMON_LONGOPTS, {}
	};
	bool json = false, full = false;
	int c, r, ret = EXIT_OK;

	while ((c = getopt_long(argc, argv, ":jfh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = json_mode = true;
			continue;
		case 'f':
			full = true;
			continue;
		}
		if ((r = common_option("log", c, argv)) >= 0)
			return r;
	}
	if (optind == argc)
		return usage_error("log", "show: a log file is needed");
	/* JSON: {"logs":[...]}, one object per LOG, in order; a log that
	 * cannot be read is {"log":NAME,"error":MESSAGE}. */
	if (json) {
		json_begin_object(NULL);
		json_begin_array("logs");
	}
	for (int i = optind; i < argc; i++) {
		struct cowmap_log_info in;
		struct cowmap_log *log;

		r = cowmap_log_open(argv[i], 0, &log);
		if (r) {
			ret = EXIT_FAIL;
			if (json) {
				json_begin_object(NULL);
				json_string("log", argv[i]);
				json_string("error", cowmap_errmsg()[0] ? cowmap_errmsg() :
					    cowmap_strerror(r));
				json_end_object();
			}
			fail_lib("log show", r);	/* stderr, with or without --json */
			continue;
		}
		cowmap_log_info(log, &in);
		if (in.torn && in.torn_kind == COWMAP_LOG_TORN_CRC && ret == EXIT_OK)
			ret = EXIT_CRC_TAIL;
		if (json) {
			show_json(log, argv[i], &in);
		} else {
			if (i > optind)
				printf("\n");
			show_text(log, argv[i], &in, full);
		}
		cowmap_log_close(log);
	}
	if (json) {
		json_end_array();
		json_end_object();
		json_end_document();
	}
	return ret;
}

static int log_main(int argc, char **argv)
{
	static const struct option opts[] = { COMMON_LONGOPTS, {} };
	int c, r;

	/* Options before the verb (cowmap log --help); the verb's own follow it. */
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1)
		if ((r = common_option("log", c, argv)) >= 0)
			return r;
	if (optind == argc)
		return usage_error("log", "a verb is needed: show");
	if (strcmp(argv[optind], "show"))
		return usage_error("log", "unknown verb '%s' (known: show)", argv[optind]);
	argc -= optind;
	argv += optind;
	optind = 0;	/* restart getopt for the verb */
	return show_main(argc, argv);
}

const struct subcommand cmd_log = {
	.name = "log",
	.fn = log_main,
	.synopsis = "show [--json] [--full] LOG...",
	.help = "print a log's records, one per line",
	.options = "  -j, --json           print JSON (old and new bytes in hex)\n"
		   "  -f, --full           print whole records (default: the first 64 bytes)\n",
};
