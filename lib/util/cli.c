/* cli: what every petcnn program's main shares: diagnostics, exit codes, number parsing.
 * Only tools call the functions here that exit; the rest of lib/ returns errors. */
#include "util/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set once by cli_init before anything else runs, then only read: the one piece of state
 * a program's messages share (sbase's argv0). */
static const char *prog_name = "petcnn";

void cli_init(int argc, char **argv, const char *prog)
{
	prog_name = prog;
	if (argc > 0)
		argv[0] = (char *)prog;
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		/* open() returns the lowest free descriptor, which is fd itself. */
		if (open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY) != fd)
			_exit(CLI_FAIL);
	}
}

const char *cli_prog(void)
{
	return prog_name;
}

static void vwarn(const char *fmt, va_list ap)
{
	int e = errno;
	size_t n = strlen(fmt), len;
	char line[4096];

	/* one write per line: processes sharing stderr (mpirun's ranks) do not interleave
	 * inside lines */
	len = (size_t)snprintf(line, sizeof line, "%s: ", prog_name);
	if (len < sizeof line)
		len += (size_t)vsnprintf(line + len, sizeof line - len, fmt, ap);
	if (len < sizeof line && n && fmt[n - 1] == ':')
		len += (size_t)snprintf(line + len, sizeof line - len, " %s", strerror(e));
	if (len > sizeof line - 2)
		len = sizeof line - 2;  /* cut, still a line */
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

void cli_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(CLI_FAIL);
}

void cli_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", prog_name);
	exit(CLI_USAGE);
}

void cli_try_help(void)
{
	fprintf(stderr, "Try '%s --help' for more information.\n", prog_name);
	exit(CLI_USAGE);
}

void cli_help(const char *text)
{
	fputs(text, stdout);
	exit(cli_close_stdout());
}

void cli_version(void)
{
	printf("%s (petcnn) %s\n", prog_name, PETCNN_VERSION);
	exit(cli_close_stdout());
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

int cli_opt_int(const char *opt, const char *s, int min, int max)
{
	int v;

	if (cli_parse_int(s, min, max, &v))
		cli_usage("%s: '%s' is not an integer in [%d, %d]", opt, s, min, max);
	return v;
}

int64_t cli_opt_i64(const char *opt, const char *s, int64_t min, int64_t max)
{
	int64_t v;

	if (cli_parse_i64(s, min, max, &v))
		cli_usage("%s: '%s' is not an integer in [%lld, %lld]", opt, s,
			  (long long)min, (long long)max);
	return v;
}

double cli_opt_double(const char *opt, const char *s, double min, double max)
{
	double v;

	if (cli_parse_double(s, min, max, &v))
		cli_usage("%s: '%s' is not a number in [%g, %g]", opt, s, min, max);
	return v;
}

int cli_close_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_warn("write error on standard output:");
		return CLI_FAIL;
	}
	return CLI_OK;
}
