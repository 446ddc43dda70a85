// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * A small streaming JSON writer for --json output (stdout, compact).
 * Strings are always valid JSON: quotes, backslashes and control
 * characters are escaped, valid UTF-8 passes through, and any byte that is
 * not part of a valid UTF-8 sequence is written as \u00XX.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define MAX_DEPTH 32

static struct {
	int depth;
	bool need_comma[MAX_DEPTH + 1];
	unsigned long documents;	/* ended so far */
} js;

bool json_mode;
bool json_lines;

static void put_raw_string(const uint8_t *s, size_t len);

static void sep(const char *key)
{
	if (js.need_comma[js.depth])
		putchar(',');
	js.need_comma[js.depth] = true;
	if (key) {
		put_raw_string((const uint8_t *)key, strlen(key));
		putchar(':');
	}
}

/* Length of the valid UTF-8 sequence at @s (at most @len bytes), 0 if none. */
static size_t utf8_seq(const uint8_t *s, size_t len)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void put_raw_string(const uint8_t *s, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len;) {
		uint8_t c = s[i];
		size_t n;

		switch (c) {
		case '"': fputs("\\\"", stdout); i++; continue;
		case '\\': fputs("\\\\", stdout); i++; continue;
		case '\b': fputs("\\b", stdout); i++; continue;
		case '\f': fputs("\\f", stdout); i++; continue;
		case '\n': fputs("\\n", stdout); i++; continue;
		case '\r': fputs("\\r", stdout); i++; continue;
		case '\t': fputs("\\t", stdout); i++; continue;
		}
		if (c < 0x20 || c == 0x7f) {
			printf("\\u%04x", c);
			i++;
			continue;
		}
		n = utf8_seq(s + i, len - i);
		if (!n) {
			printf("\\u%04x", c);	/* not UTF-8: the byte as U+00XX */
			i++;
			continue;
		}
		fwrite(s + i, 1, n, stdout);
		i += n;
	}
	putchar('"');
}

static void open_container(const char *key, char c)
{
	sep(key);
	putchar(c);
	if (js.depth < MAX_DEPTH)
		js.depth++;
	js.need_comma[js.depth] = false;
}

static void close_container(char c)
{
	if (js.depth > 0)
		js.depth--;
	putchar(c);
}

void json_begin_object(const char *key)
{
	open_container(key, '{');
}

void json_end_object(void)
{
	close_container('}');
}

void json_begin_array(const char *key)
{
	open_container(key, '[');
}

void json_end_array(void)
{
	close_container(']');
}

void json_string(const char *key, const char *s)
{
	if (!s) {
		json_null(key);
		return;
	}
	json_string_n(key, (const uint8_t *)s, strlen(s));
}

void json_string_n(const char *key, const uint8_t *s, size_t len)
{
	sep(key);
	put_raw_string(s, len);
}

void json_hex(const char *key, const uint8_t *p, size_t len)
{
	sep(key);
	putchar('"');
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
	putchar('"');
}

void json_u64(const char *key, uint64_t v)
{
	sep(key);
	printf("%" PRIu64, v);
}

void json_i64(const char *key, int64_t v)
{
	sep(key);
	printf("%" PRId64, v);
}

void json_bool(const char *key, bool v)
{
	sep(key);
	fputs(v ? "true" : "false", stdout);
}

void json_null(const char *key)
{
	sep(key);
	fputs("null", stdout);
}

void json_time(const char *key, uint64_t ns)
{
	time_t t = (time_t)(ns / 1000000000ULL);
	char b[64];
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm)) {
		json_null(key);
		return;
	}
	sep(key);
	printf("\"%s.%09uZ\"", b, (unsigned int)(ns % 1000000000ULL));
}

void json_end_document(void)
{
	putchar('\n');
	fflush(stdout);
	js.depth = 0;
	js.need_comma[0] = false;
	js.documents++;
}

void json_error_document(const char *msg)
{
	if (js.documents && !json_lines)
		return;
	if (js.depth)		/* never inside a document: its writer reports there */
		return;
	json_begin_object(NULL);
	json_string("error", msg);
	json_end_object();
	json_end_document();
}
