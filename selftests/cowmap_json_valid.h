/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A JSON parser (RFC 8259), just to say whether a text is valid JSON:
 * json_valid(), json_valid_n().  Shared by the VM's CLI tests and the host
 * tests of the CLI.
 */
#ifndef COWMAP_JSON_VALID_H
#define COWMAP_JSON_VALID_H

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct jp {
	const unsigned char *p, *end;
	int depth;
};

static bool j_value(struct jp *j);

static void j_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' ||
				 *j->p == '\r'))
		j->p++;
}

static bool j_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
		return false;
	j->p += n;
	return true;
}

static bool j_digits(struct jp *j)
{
	const unsigned char *s = j->p;

	while (j->p < j->end && isdigit(*j->p))
		j->p++;
	return j->p > s;
}

static bool j_number(struct jp *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (!(j->p < j->end && *j->p >= '1' && *j->p <= '9') || !j_digits(j))
		return false;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!j_digits(j))
			return false;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!j_digits(j))
			return false;
	}
	return true;
}

/* One UTF-8 sequence (not ASCII) at j->p. */
static bool j_utf8(struct jp *j)
{
	unsigned char c = *j->p;
	uint32_t cp;
	int n;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		cp = c & 0x07;
	} else {
		return false;
	}
	if (j->end - j->p <= n)
		return false;
	for (int i = 1; i <= n; i++) {
		if ((j->p[i] & 0xc0) != 0x80)
			return false;
		cp = cp << 6 | (j->p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return false;
	j->p += n + 1;
	return true;
}

static bool j_string(struct jp *j)
{
	if (j->p >= j->end || *j->p != '"')
		return false;
	j->p++;
	while (j->p < j->end) {
		unsigned char c = *j->p;

		if (c == '"') {
			j->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			j->p++;
			if (j->p >= j->end)
				return false;
			if (*j->p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (j->p + i >= j->end || !isxdigit(j->p[i]))
						return false;
				j->p += 5;
				continue;
			}
			if (!strchr("\"\\/bfnrt", *j->p) || !*j->p)
				return false;
			j->p++;
			continue;
		}
		if (c < 0x80) {
			j->p++;
			continue;
		}
		if (!j_utf8(j))
			return false;
	}
	return false;
}

static bool j_container(struct jp *j, char close, bool object)
{
	if (++j->depth > 64)
		return false;
	j->p++;
	j_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return true;
	}
	for (;;) {
		j_ws(j);
		if (object) {
			if (!j_string(j))
				return false;
			j_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return false;
			j->p++;
		}
		if (!j_value(j))
			return false;
		j_ws(j);
		if (j->p >= j->end)
			return false;
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p != close)
			return false;
		j->p++;
		j->depth--;
		return true;
	}
}

static bool j_value(struct jp *j)
{
	j_ws(j);
	if (j->p >= j->end)
		return false;
	switch (*j->p) {
	case '{': return j_container(j, '}', true);
	case '[': return j_container(j, ']', false);
	case '"': return j_string(j);
	case 't': return j_lit(j, "true");
	case 'f': return j_lit(j, "false");
	case 'n': return j_lit(j, "null");
	default: return j_number(j);
	}
}

/* @s holds exactly one JSON value (surrounding white space allowed). */
static bool json_valid_n(const char *s, size_t len)
{
	struct jp j = { (const unsigned char *)s, (const unsigned char *)s + len, 0 };

	if (!j_value(&j))
		return false;
	j_ws(&j);
	return j.p == j.end;
}

static bool json_valid(const char *s)
{
	return s && json_valid_n(s, strlen(s));
}

#endif /* COWMAP_JSON_VALID_H */
