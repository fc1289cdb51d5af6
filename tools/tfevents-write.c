/* tfevents-write: text lines on stdin to a TensorBoard event file, live. */
#include "cli.h"
#include "err.h"
#include "tfev.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char PROG[] = "tfevents-write";
static const char HELP[] =
	"Usage: tfevents-write --logdir DIR [OPTION]...\n"
	"Turn text lines on standard input into a TensorBoard event file, live.\n"
	"\n"
	"Writes DIR/RUN/events.out.tfevents.<seconds>.<hostname> (folders created; an\n"
	"existing file is never overwritten). Each line of standard input is one of:\n"
	"\n"
	"  STEP TAG VALUE               a scalar (VALUE a number; nan and inf allowed)\n"
	"  STEP TAG scalar VALUE        the same, spelled out\n"
	"  STEP TAG hist V1 V2 ...      a histogram of the numbers on the line\n"
	"  STEP TAG hist FILE.npy       a histogram of every element of the file's first array\n"
	"  STEP TAG image FILE.png      an image, the PNG stored as it is\n"
	"  STEP TAG image FILE.npy      an image from a uint8 (0-255) or float (0-1) array of\n"
	"                               shape HxW, HxWx1 or HxWx3\n"
	"  STEP TAG text WORDS...       text (markdown); the rest of the line, \\n for a newline\n"
	"  graph default [SIZE [K]]     the graph of the default network (SIZE x SIZE x 3\n"
	"                               inputs, default 224; K classes, default 2)\n"
	"\n"
	"STEP is an integer >= 0, TAG a word (slashes group tags in TensorBoard); fields are\n"
	"separated by spaces or tabs. Blank lines and lines starting with # are skipped. NaN\n"
	"and infinite values are left out of a histogram and reported on stderr.\n"
	"\n"
	"Everything read is in the file within 2 seconds, so a live TensorBoard follows a\n"
	"pipe. A bad line is an error naming its line number (exit 1); everything before it\n"
	"stays in the file, complete.\n"
	"\n"
	"Options:\n"
	"  -l, --logdir DIR   the log folder (required)\n"
	"  -r, --run NAME     the run's subfolder (default: none, files go in DIR itself)\n"
	"  -k, --keep-going   report a bad line, skip it and go on; exit 1 at the end\n"
	"  -q, --quiet        no warnings about NaN/Inf left out of histograms\n"
	"  -h, --help         show this help and exit\n"
	"      --version      show the version and exit\n"
	"\n"
	"Example:\n"
	"  (echo 'graph default'; for s in 1 2 3; do echo \"$s Loss 0.$((9 - s))\"; done) |\n"
	"      tfevents-write --logdir runs --run demo\n";

struct opts {
	const char *logdir, *run;
	int keep_going, quiet;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "logdir", required_argument, NULL, 'l' },
		{ "run", required_argument, NULL, 'r' },
		{ "keep-going", no_argument, NULL, 'k' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	while ((c = getopt_long(argc, argv, "l:r:kqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o->logdir = optarg;
			break;
		case 'r':
			o->run = optarg;
			break;
		case 'k':
			o->keep_going = 1;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'h':
			cli_help(HELP);
		case 'V':
			cli_version(PROG);
		default:
			cli_usage(PROG, "unknown option");
		}
	}
	if (optind < argc)
		cli_usage(PROG, "unexpected argument '%s' (lines come on standard input)", argv[optind]);
	if (!o->logdir || !*o->logdir)
		cli_usage(PROG, "--logdir DIR is required");
}

/* ---- lines from a file descriptor, flushing the writer before any read that may wait ---- */

typedef struct {
	int fd, eof;
	char *buf;
	size_t start, len, cap;
} lines;

/* The next line without its newline, NUL-terminated, or NULL at the end (0) or on a read
 * error (-1 in *rc). Before blocking it flushes w: whatever arrived is on disk while the
 * producer is quiet, which is what keeps a live TensorBoard current. */
static char *lines_next(lines *l, tfev_writer *w, int *rc, char *err)
{
	for (;;) {
		char *nl = l->len > l->start ? memchr(l->buf + l->start, '\n', l->len - l->start) : NULL;

		if (nl || (l->eof && l->len > l->start)) {
			char *line = l->buf + l->start;
			if (nl) {
				*nl = 0;
				l->start = (size_t)(nl - l->buf) + 1;
			} else {
				l->buf[l->len] = 0;   /* room kept below */
				l->start = l->len;
			}
			return line;
		}
		if (l->eof) {
			*rc = 0;
			return NULL;
		}
		if (l->start) {
			memmove(l->buf, l->buf + l->start, l->len - l->start);
			l->len -= l->start;
			l->start = 0;
		}
		if (l->cap - l->len < 4096) {
			size_t cap = l->cap ? 2 * l->cap : 65536;
			char *p = realloc(l->buf, cap);
			if (!p) {
				*rc = err_set(err, "out of memory for a line");
				return NULL;
			}
			l->buf = p;
			l->cap = cap;
		}
		if (tfev_flush(w, err)) {
			*rc = -1;
			return NULL;
		}
		ssize_t k = read(l->fd, l->buf + l->len, l->cap - l->len - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			*rc = err_sys(err, "<stdin>: read");
			return NULL;
		}
		if (k == 0)
			l->eof = 1;
		l->len += (size_t)k;
	}
}

/* ---- one line ---- */

#define MAXTOK 8

/* Splits off the next field; returns NULL when none is left. */
static char *next_field(char **s)
{
	char *p = *s, *start;

	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	if (!*p)
		return *s = p, NULL;
	start = p;
	while (*p && *p != ' ' && *p != '\t' && *p != '\r')
		p++;
	if (*p)
		*p++ = 0;
	*s = p;
	return start;
}

static int parse_number(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return end == s || *end || (errno == ERANGE && isinf(*v)) ? -1 : 0;
}

static int read_file(const char *path, unsigned char **data, size_t *len, char *err)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return err_sys(err, "%s", path);
	for (;;) {
		if (cap - n < 65536) {
			unsigned char *p = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap ? 2 * cap : 65536);
			if (!p) {
				free(buf);
				fclose(f);
				return err_set(err, "%s: too large or out of memory", path);
			}
			buf = p;
			cap = cap ? 2 * cap : 65536;
		}
		size_t k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return err_sys(err, "%s: read", path);
	}
	fclose(f);
	*data = buf;
	*len = n;
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

static int do_hist(tfev_writer *w, int64_t step, const char *tag, char *rest,
		   const struct opts *o, long lineno, char *err)
{
	double *v = NULL;
	size_t n = 0, cap = 0;
	tfev_nonfinite nf;
	char *f;
	int rc;

	while ((f = next_field(&rest))) {
		if (n == 0 && ends_with(f, ".npy"))
			return err_set(err, "%s: .npy histograms are not supported in this build yet", f);
		if (n == cap) {
			double *p = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof *v);
			if (!p) {
				free(v);
				return err_set(err, "out of memory");
			}
			v = p;
		}
		if (parse_number(f, &v[n++])) {
			free(v);
			return err_set(err, "histogram value '%s' is not a number", f);
		}
	}
	if (!n)
		return err_set(err, "hist needs numbers or a .npy file");
	rc = tfev_histogram(w, step, tag, v, n, &nf, err);
	free(v);
	if (!rc && !o->quiet && (nf.nan || nf.posinf || nf.neginf))
		cli_warn(PROG, "line %ld: %s: left out of the histogram: %lld NaN, %lld +Inf, %lld -Inf",
			 lineno, tag, (long long)nf.nan, (long long)nf.posinf, (long long)nf.neginf);
	return rc;
}

static int do_image(tfev_writer *w, int64_t step, const char *tag, char *rest, char *err)
{
	char *path = next_field(&rest), why[ERR_MAX];
	unsigned char *data = NULL;
	size_t len = 0;
	int rc, width, height, cs;

	if (!path || next_field(&rest))
		return err_set(err, "image needs exactly one FILE.png or FILE.npy");
	if (ends_with(path, ".npy"))
		return err_set(err, "%s: .npy images are not supported in this build yet", path);
	if (read_file(path, &data, &len, err))
		return -1;
	if (tfev_png_info(data, len, &width, &height, &cs, why)) {
		free(data);
		return err_set(err, "%s: %s", path, why);
	}
	rc = tfev_image_png(w, step, tag, data, len, err);
	free(data);
	return rc;
}

/* "text" then the rest of the line, leading blanks dropped, \n \t \\ unescaped. */
static int do_text(tfev_writer *w, int64_t step, const char *tag, char *rest, char *err)
{
	char *out;

	while (*rest == ' ' || *rest == '\t')
		rest++;
	out = rest;
	for (char *p = rest; *p; p++) {
		if (*p == '\\' && (p[1] == 'n' || p[1] == '\\' || p[1] == 't')) {
			p++;
			*out++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : '\\';
		} else {
			*out++ = *p;
		}
	}
	*out = 0;
	while (out > rest && out[-1] == '\r')
		*--out = 0;
	return tfev_text(w, step, tag, rest, err);
}

static int do_graph(tfev_writer *w, char *rest, char *err)
{
	char *what = next_field(&rest), *s = next_field(&rest), *k = next_field(&rest);
	int size = 224, nclass = 2;
	tfev_node nodes[TFEV_DEFAULT_GRAPH_NODES];
	size_t n;

	if (!what || strcmp(what, "default"))
		return err_set(err, "graph: only 'graph default [SIZE [K]]' is supported");
	if (next_field(&rest) || (s && cli_parse_int(s, 4, 1 << 14, &size)) ||
	    (k && cli_parse_int(k, 2, 1 << 20, &nclass)))
		return err_set(err, "graph default: SIZE must be 4..16384 and K 2..1048576");
	n = tfev_default_graph(nodes, TFEV_DEFAULT_GRAPH_NODES, size, size, nclass);
	return tfev_graph(w, nodes, n, err);
}

static int do_line(tfev_writer *w, char *line, const struct opts *o, long lineno, char *err)
{
	char *rest = line, *first = next_field(&rest), *tag, *kind;
	int64_t step;
	double v;

	if (!first || first[0] == '#')
		return 0;
	if (!strcmp(first, "graph"))
		return do_graph(w, rest, err);
	if (cli_parse_i64(first, 0, INT64_MAX, &step))
		return err_set(err, "'%s' is not a step (an integer >= 0) or 'graph'", first);
	tag = next_field(&rest);
	kind = next_field(&rest);
	if (!tag || !kind)
		return err_set(err, "expected STEP TAG VALUE");
	if (!strcmp(kind, "hist"))
		return do_hist(w, step, tag, rest, o, lineno, err);
	if (!strcmp(kind, "image"))
		return do_image(w, step, tag, rest, err);
	if (!strcmp(kind, "text"))
		return do_text(w, step, tag, rest, err);
	if (!strcmp(kind, "scalar") && !(kind = next_field(&rest)))
		return err_set(err, "scalar needs a VALUE");
	if (parse_number(kind, &v))
		return err_set(err, "'%s' is not a number nor one of hist, image, text, scalar", kind);
	if (next_field(&rest))
		return err_set(err, "unexpected text after the value");
	return tfev_scalar(w, step, tag, v, err);
}

int main(int argc, char **argv)
{
	struct opts o;
	tfev_writer w;
	lines in = { .fd = 0 };
	char err[ERR_MAX], *line;
	long lineno = 0;
	int rc = 0, bad = 0;

	parse_args(argc, argv, &o);
	if (tfev_open(&w, o.logdir, o.run, err))
		cli_die(PROG, "%s", err);
	while ((line = lines_next(&in, &w, &rc, err))) {
		char why[ERR_MAX];
		lineno++;
		if (do_line(&w, line, &o, lineno, why) == 0)
			continue;
		/* A failed write to the event file is fatal even with --keep-going. */
		if (w.failed) {
			rc = err_set(err, "%s", why);
			break;
		}
		bad = 1;
		if (!o.keep_going) {
			rc = err_set(err, "line %ld: %s", lineno, why);
			break;
		}
		cli_warn(PROG, "line %ld: %s (skipped)", lineno, why);
	}
	free(in.buf);
	if (tfev_close(&w, rc ? NULL : err) && !rc)
		rc = -1;
	if (rc)
		cli_die(PROG, "%s", err);
	return bad ? CLI_FAIL : CLI_OK;
}
