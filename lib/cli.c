/* cli: what every petcnn program's main shares: diagnostics, exit codes, number parsing.
 * Only tools call the functions here that exit; the rest of lib/ returns errors. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vwarn(const char *prog, const char *fmt, va_list ap)
{
	int e = errno;
	size_t n = strlen(fmt);

	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	if (n && fmt[n - 1] == ':')
		fprintf(stderr, " %s", strerror(e));
	fputc('\n', stderr);
}

void cli_warn(const char *prog, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(prog, fmt, ap);
	va_end(ap);
}

void cli_die(const char *prog, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(prog, fmt, ap);
	va_end(ap);
	exit(CLI_FAIL);
}

void cli_usage(const char *prog, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(prog, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", prog);
	exit(CLI_USAGE);
}

void cli_try_help(const char *prog)
{
	fprintf(stderr, "Try '%s --help' for more information.\n", prog);
	exit(CLI_USAGE);
}

void cli_help(const char *text)
{
	fputs(text, stdout);
	exit(fflush(stdout) || ferror(stdout) ? CLI_FAIL : CLI_OK);
}

void cli_version(const char *prog)
{
	printf("%s (petcnn) %s\n", prog, PETCNN_VERSION);
	exit(fflush(stdout) || ferror(stdout) ? CLI_FAIL : CLI_OK);
}

int cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int cli_parse_int(const char *s, int min, int max, int *out)
{
	int64_t v;

	if (cli_parse_i64(s, min, max, &v))
		return -1;
	*out = (int)v;
	return 0;
}

int cli_parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int cli_opt_int(const char *prog, const char *opt, const char *s, int min, int max)
{
	int v;

	if (cli_parse_int(s, min, max, &v))
		cli_usage(prog, "%s: '%s' is not an integer in [%d, %d]", opt, s, min, max);
	return v;
}

int64_t cli_opt_i64(const char *prog, const char *opt, const char *s, int64_t min, int64_t max)
{
	int64_t v;

	if (cli_parse_i64(s, min, max, &v))
		cli_usage(prog, "%s: '%s' is not an integer in [%lld, %lld]", opt, s,
			  (long long)min, (long long)max);
	return v;
}

double cli_opt_double(const char *prog, const char *opt, const char *s, double min, double max)
{
	double v;

	if (cli_parse_double(s, min, max, &v))
		cli_usage(prog, "%s: '%s' is not a number in [%g, %g]", opt, s, min, max);
	return v;
}

int cli_close_stdout(const char *prog)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_warn(prog, "write error on standard output:");
		return CLI_FAIL;
	}
	return CLI_OK;
}
