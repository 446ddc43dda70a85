// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * Helpers shared by the subcommands: number parsing, human formats.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cli.h"

bool parse_u64(const char *s, uint64_t *v)
{
	unsigned long long x;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*v = x;
	return true;
}

bool parse_session_id(const char *s, uint64_t *id)
{
	return parse_u64(s, id) && *id > 0;
}

static char *next_buf(void)
{
	static char bufs[4][64];
	static unsigned int i;

	return bufs[i++ % ARRAY_SIZE(bufs)];
}

const char *fmt_size(uint64_t bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	char *b = next_buf();
	double v = (double)bytes;
	unsigned int u = 0;

	if (bytes < 1024) {
		snprintf(b, 64, "%llu B", (unsigned long long)bytes);
		return b;
	}
	while (v >= 1024 && u < ARRAY_SIZE(units) - 1) {
		v /= 1024;
		u++;
	}
	snprintf(b, 64, "%.1f %s", v, units[u]);
	return b;
}

const char *fmt_time_ns(uint64_t ns)
{
	char *b = next_buf();
	time_t t = (time_t)(ns / 1000000000ULL);
	struct tm tm;

	if (!ns || !localtime_r(&t, &tm) || !strftime(b, 64, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(b, 64, "-");
	return b;
}

const char *fmt_dev(uint64_t dev)
{
	char *b = next_buf();

	snprintf(b, 64, "%u:%u", major((dev_t)dev), minor((dev_t)dev));
	return b;
}

void print_escaped_max(FILE *f, const uint8_t *p, size_t len, size_t max)
{
	size_t n = len < max ? len : max;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		switch (c) {
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (c >= 0x20 && c < 0x7f)
				fputc(c, f);
			else
				fprintf(f, "\\x%02x", c);
		}
	}
	if (n < len)
		fprintf(f, "...(+%zu bytes)", len - n);
}

void print_escaped(FILE *f, const uint8_t *p, size_t len)
{
	print_escaped_max(f, p, len, len);
}

bool module_loaded(void)
{
	struct stat st;

	return stat("/sys/module/cowmap", &st) == 0;
}

struct cowmap_nl *nl_open_or_fail(const char *cmd)
{
	struct cowmap_nl *nl;
	int ret = cowmap_nl_open(0, &nl);

	if (ret) {
		fail_lib(cmd, ret);
		return NULL;
	}
	return nl;
}

void json_session(const char *key, const struct cowmap_nl_session *s)
{
	json_begin_object(key);
	json_u64("id", s->id);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_PID))
		json_u64("pid", s->pid);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_UID))
		json_u64("uid", s->uid);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_COMM))
		json_string("comm", s->comm);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_PATH))
		json_string("path", s->path);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_DEV)) {
		json_u64("dev", s->dev);
		json_string("dev_name", fmt_dev(s->dev));
	}
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_INO))
		json_u64("ino", s->ino);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_MAPPED_BYTES))
		json_u64("mapped_bytes", s->mapped_bytes);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_PRIVATE_PAGES))
		json_u64("private_pages", s->private_pages);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_EVENTS))
		json_u64("events", s->events);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_EVENTS_LOST))
		json_u64("events_lost", s->events_lost);
	if (COWMAP_NL_HAS(s, COWMAP_SESSION_A_BIND_TIME)) {
		json_u64("bind_time_ns", s->bind_time_ns);
		json_time("bind_time", s->bind_time_ns);
	}
	json_end_object();
}

bool set_lock_wait(const char *arg)
{
	char *end;
	double s;

	errno = 0;
	s = strtod(arg, &end);
	if (errno || end == arg || *end || !(s >= 0) || s > 86400.0 * 365)
		return false;
	cowmap_set_lock_wait((int)(s * 1000 + 0.5));
	return true;
}

/* Control characters (C0, DEL) of @s as \xNN escapes, and '\' doubled if
 * @backslash, into @dst of @n bytes (cut with "..." if longer).  UTF-8 is
 * kept. */
static void escape_to(char *dst, size_t n, const char *s, bool backslash)
{
	size_t o = 0;

	for (; *s && o + 8 < n; s++) {
		uint8_t c = (uint8_t)*s;

		if (c == '\\' && backslash) {
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(dst + o, n - o, "\\x%02x", c);
		} else {
			dst[o++] = (char)c;
		}
	}
	snprintf(dst + o, n - o, "%s", *s ? "..." : "");
}

const char *esc(const char *s)
{
	static char ring[4][1024];
	static unsigned int k;
	char *b = ring[k++ % 4];

	escape_to(b, sizeof(ring[0]), s ? s : "", true);
	return b;
}

void fputs_escaped(const char *s, FILE *f)
{
	char buf[8192];

	escape_to(buf, sizeof(buf), s, false);
	fputs(buf, f);
}
