// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Error numbers and the per-thread detailed message.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static __thread char last_msg[1024];

static const char *const cowmap_errors[] = {
	[COWMAP_ECONFLICT - COWMAP_EBASE] = "Merge conflicts, nothing written",
	[COWMAP_EBADLOG - COWMAP_EBASE] = "Invalid or corrupt cowmap log",
	[COWMAP_EWRONGFILE - COWMAP_EBASE] = "Log was recorded against another file",
	[COWMAP_ECHAIN - COWMAP_EBASE] = "Log records contradict each other",
	[COWMAP_EBADJOURNAL - COWMAP_EBASE] = "Corrupt cowmap merge journal",
};

COWMAP_EXPORT const char *cowmap_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err > COWMAP_EBASE && err <= COWMAP_EMAX)
		return cowmap_errors[err - COWMAP_EBASE];
	if (err == 0)
		return "Success";
	return strerror(err);
}

COWMAP_EXPORT const char *cowmap_errmsg(void)
{
	return last_msg;
}

int err_set(int err, const char *fmt, ...)
{
	va_list ap;

	if (err < 0)
		err = -err;
	va_start(ap, fmt);
	vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
	va_end(ap);
	errno = err;
	return -err;
}

int err_prefix(int err, const char *fmt, ...)
{
	char prefix[512], old[sizeof(last_msg)];
	va_list ap;

	if (err < 0)
		err = -err;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, last_msg, sizeof(old));
	snprintf(last_msg, sizeof(last_msg), "%.500s: %.500s", prefix, old);
	errno = err;
	return -err;
}

int err_ret(int err)
{
	if (err < 0)
		err = -err;
	errno = err;
	return -err;
}
