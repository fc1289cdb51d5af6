/* errmsg: how lib/ reports failure without printing or exiting.
 * See errmsg.h. */
#include "util/errmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(char *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, ERR_MAX, fmt, ap);
	va_end(ap);
	return -1;
}

int err_sys(char *err, const char *fmt, ...)
{
	int e = errno;
	size_t n;
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, ERR_MAX, fmt, ap);
	va_end(ap);
	n = strlen(err);
	snprintf(err + n, ERR_MAX - n, ": %s", strerror(e));
	return -1;
}
