/* cli: what every petcnn program's main shares: `prog: message` diagnostics, exit codes,
 * bounded number parsing, --help/--version, and checking stdout before exit. */
#ifndef PETCNN_CLI_H
#define PETCNN_CLI_H

#include <stdint.h>

#define PETCNN_VERSION "0.1.0"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Names the program for every message below, sets argv[0] to it (so getopt's own messages
 * name it as we do) and makes sure fds 0, 1 and 2 are open: a closed one is reopened on
 * /dev/null the wrong way round, so that writing data to a closed stdout fails instead of
 * landing in the first file the program opens. Call it first in main. */
void cli_init(int argc, char **argv, const char *prog);
/* The name cli_init was given ("petcnn" before). */
const char *cli_prog(void);

/* "prog: message" on stderr; a format ending in ':' gets strerror(errno) appended. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_warn, then exit(CLI_FAIL). */
_Noreturn void cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: message" and "Try 'prog --help' for more information.", then exit(CLI_USAGE). */
_Noreturn void cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* For getopt's default case: getopt has already said what was wrong; adds "Try 'prog
 * --help'..." and exits CLI_USAGE. */
_Noreturn void cli_try_help(void);

/* --help text to stdout, exit 0. The text starts with "Usage:", its second line says
 * what the program does (the man page's NAME line), and it ends with an example. */
_Noreturn void cli_help(const char *text);
/* "prog (petcnn) VERSION" to stdout, exit 0. */
_Noreturn void cli_version(void);

/* Whole-string numbers within [min, max]; 0 on success, -1 (nothing stored) otherwise. */
int cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
int cli_parse_int(const char *s, int min, int max, int *out);
int cli_parse_double(const char *s, double min, double max, double *out);
/* The option's value parsed or a usage error naming the option: for getopt loops. */
int cli_opt_int(const char *opt, const char *s, int min, int max);
int64_t cli_opt_i64(const char *opt, const char *s, int64_t min, int64_t max);
double cli_opt_double(const char *opt, const char *s, double min, double max);

/* Flush and check stdout, so a full disk or closed pipe is exit 1, not silent loss. */
int cli_close_stdout(void);

#endif
