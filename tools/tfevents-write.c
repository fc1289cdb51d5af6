/* tfevents-write: text lines on stdin to a TensorBoard event file, live. */
#include "ckpt.h"
#include "cli.h"
#include "err.h"
#include "npy.h"
#include "tfev.h"
#include "tfev_model.h"

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
	"  graph MODEL.npz              the graph of a checkpoint's model (cnn-train -o)\n"
	"  graph spec H W K SPEC...     the graph of a model spec (see cnn-train --help)\n"
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
	"  -s, --split        the tag's first component names the run: '5 train/Loss 0.7'\n"
	"                     goes to DIR/train as Loss, '5 test/Loss 0.8' to DIR/test, so\n"
	"                     TensorBoard draws both runs on one chart (tags without a /\n"
	"                     and graph lines go to --run)\n"
	"  -k, --keep-going   report a bad line, skip it and go on; exit 1 at the end\n"
	"  -q, --quiet        no warnings about NaN/Inf left out of histograms\n"
	"  -h, --help         show this help and exit\n"
	"      --version      show the version and exit\n"
	"\n"
	"Example:\n"
	"  (echo 'graph default'; for s in 1 2 3; do echo \"$s Loss 0.$((9 - s))\"; done) |\n"
	"      tfevents-write --logdir runs --run demo\n"
	"  cnn-train --train train.npy --test test.npy -o model.npz |\n"
	"      tfevents-write --logdir runs/pets --split --run train\n";

struct opts {
	const char *logdir, *run;
	int keep_going, quiet, split;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "logdir", required_argument, NULL, 'l' },
		{ "run", required_argument, NULL, 'r' },
		{ "keep-going", no_argument, NULL, 'k' },
		{ "split", no_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	argv[0] = (char *)PROG; /* so getopt names the program as we do */
	while ((c = getopt_long(argc, argv, "l:r:kqsh", longopts, NULL)) != -1) {
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
		case 's':
			o->split = 1;
			break;
		case 'h':
			cli_help(HELP);
		case 'V':
			cli_version(PROG);
		default:
			cli_try_help(PROG);
		}
	}
	if (optind < argc)
		cli_usage(PROG, "unexpected argument '%s' (lines come on standard input)", argv[optind]);
	if (!o->logdir || !*o->logdir)
		cli_usage(PROG, "--logdir DIR is required");
}

/* ---- the open event files, one per run ---- */

#define MAXRUNS 64

typedef struct {
	const struct opts *o;
	int n;
	char *name[MAXRUNS];          /* the run folder under --logdir, "" for itself */
	tfev_writer w[MAXRUNS];
	int failed;                   /* a write failed: stop, even with --keep-going */
} runs;

/* The writer for run name (NULL: --run), opened on first use. A tag's run and --run
 * naming the same folder share one file. */
static tfev_writer *runs_get(runs *rs, const char *name, char *err)
{
	const char *dir = name ? name : rs->o->run ? rs->o->run : "";
	char why[ERR_MAX];

	for (int i = 0; i < rs->n; i++)
		if (!strcmp(rs->name[i], dir))
			return &rs->w[i];
	if (rs->n == MAXRUNS)
		return err_set(err, "more than %d runs", MAXRUNS), NULL;
	if (name && (!strcmp(name, ".") || !strcmp(name, "..")))
		return err_set(err, "'%s' is not a run name", name), NULL;
	if (!(rs->name[rs->n] = strdup(dir)))
		return err_set(err, "out of memory"), NULL;
	if (tfev_open(&rs->w[rs->n], rs->o->logdir, dir, why)) {
		free(rs->name[rs->n]);
		rs->failed = 1;
		return err_set(err, "%s", why), NULL;
	}
	return &rs->w[rs->n++];
}

static int runs_flush(runs *rs, char *err)
{
	for (int i = 0; i < rs->n; i++)
		if (tfev_flush(&rs->w[i], err)) {
			rs->failed = 1;
			return -1;
		}
	return 0;
}

static int runs_close(runs *rs, char *err)
{
	int rc = 0;

	for (int i = 0; i < rs->n; i++) {
		if (tfev_close(&rs->w[i], rc ? NULL : err))
			rc = -1;
		free(rs->name[i]);
	}
	rs->n = 0;
	return rc;
}

/* ---- lines from a file descriptor, flushing the writer before any read that may wait ---- */

typedef struct {
	int fd, eof;
	char *buf;
	size_t start, len, cap;
} lines;

/* The next line without its newline, NUL-terminated, or NULL at the end (0) or on a read
 * error (-1 in *rc). Before blocking it flushes every run: whatever arrived is on disk while the
 * producer is quiet, which is what keeps a live TensorBoard current. */
static char *lines_next(lines *l, runs *rs, int *rc, char *err)
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
		if (runs_flush(rs, err)) {
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

/* The first array of a .npy file. */
static int load_npy(const char *path, tensor *t, char *err)
{
	FILE *f = fopen(path, "rb");
	int rc;

	if (!f)
		return err_sys(err, "%s", path);
	rc = npy_read(f, path, t, err);
	fclose(f);
	if (rc == 0)
		return err_set(err, "%s: no array in it", path);
	return rc < 0 ? -1 : 0;
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
		if (n == 0 && ends_with(f, ".npy")) {
			tensor t;
			char why[ERR_MAX];

			if (next_field(&rest))
				return err_set(err, "hist FILE.npy takes nothing after the file");
			if (load_npy(f, &t, err))
				return -1;
			rc = tfev_histogram_tensor(w, step, tag, &t, &nf, why);
			tensor_free(&t);
			if (rc)
				return w->failed ? err_set(err, "%s", why) : err_set(err, "%s: %s", f, why);
			goto done;
		}
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
done:
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
	if (ends_with(path, ".npy")) {
		tensor t;

		if (load_npy(path, &t, err))
			return -1;
		rc = tfev_image_tensor(w, step, tag, &t, why);
		tensor_free(&t);
		if (rc)
			return w->failed ? err_set(err, "%s", why) : err_set(err, "%s: %s", path, why);
		return 0;
	}
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

/* graph default [SIZE [K]] | graph MODEL.npz | graph spec H W K SPEC... */
static int do_graph(tfev_writer *w, char *rest, char *err)
{
	char *what = next_field(&rest), *a, *b, *c;
	int size = 224, h, wd, nclass = 2, rc;
	model m;

	if (what && !strcmp(what, "default")) {
		a = next_field(&rest);
		b = next_field(&rest);
		if (next_field(&rest) || (a && cli_parse_int(a, 4, 1 << 14, &size)) ||
		    (b && cli_parse_int(b, 2, 1 << 20, &nclass)))
			return err_set(err, "graph default: SIZE must be 4..16384 and K 2..1048576");
		if (model_init(&m, MODEL_DEFAULT_SPEC, size, size, nclass, 1, 0, err))
			return -1;
	} else if (what && !strcmp(what, "spec")) {
		a = next_field(&rest);
		b = next_field(&rest);
		c = next_field(&rest);
		while (*rest == ' ' || *rest == '\t')
			rest++;
		if (!c || !*rest || cli_parse_int(a, 1, 1 << 14, &h) ||
		    cli_parse_int(b, 1, 1 << 14, &wd) || cli_parse_int(c, 2, 1 << 20, &nclass))
			return err_set(err, "graph spec: expected H W K SPEC (H, W 1..16384, K >= 2)");
		if (model_init(&m, rest, h, wd, nclass, 1, 0, err))
			return -1;
	} else if (what && ends_with(what, ".npz") && !next_field(&rest)) {
		tensor classes;
		ckpt_state st;

		if (ckpt_load(what, &m, 1, 0, &classes, &st, err))
			return -1;
		tensor_free(&classes);
	} else {
		return err_set(err, "graph: expected 'default [SIZE [K]]', MODEL.npz or 'spec H W K SPEC'");
	}
	rc = tfev_model_graph(w, &m, err);
	model_free(&m);
	return rc;
}

static int do_line(runs *rs, char *line, long lineno, char *err)
{
	char *rest = line, *first = next_field(&rest), *tag, *kind, *slash;
	tfev_writer *w;
	int64_t step;
	double v;

	if (!first || first[0] == '#')
		return 0;
	if (!strcmp(first, "graph"))
		return (w = runs_get(rs, NULL, err)) ? do_graph(w, rest, err) : -1;
	if (cli_parse_i64(first, 0, INT64_MAX, &step))
		return err_set(err, "'%s' is not a step (an integer >= 0) or 'graph'", first);
	tag = next_field(&rest);
	kind = next_field(&rest);
	if (!tag || !kind)
		return err_set(err, "expected STEP TAG VALUE");
	if (rs->o->split && (slash = strchr(tag, '/')) && slash > tag && slash[1]) {
		*slash = 0;
		w = runs_get(rs, tag, err);
		tag = slash + 1;
	} else {
		w = runs_get(rs, NULL, err);
	}
	if (!w)
		return -1;
	if (!strcmp(kind, "hist"))
		return do_hist(w, step, tag, rest, rs->o, lineno, err);
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
	runs rs = { 0 };
	lines in = { .fd = 0 };
	char err[ERR_MAX], *line;
	long lineno = 0;
	int rc = 0, bad = 0;

	parse_args(argc, argv, &o);
	rs.o = &o;
	/* Without --split the one file exists from the start, even before any input. */
	if (!o.split && !runs_get(&rs, NULL, err))
		cli_die(PROG, "%s", err);
	while ((line = lines_next(&in, &rs, &rc, err))) {
		char why[ERR_MAX];
		int k;

		lineno++;
		if (do_line(&rs, line, lineno, why) == 0)
			continue;
		for (k = 0; k < rs.n; k++)
			rs.failed |= rs.w[k].failed;
		/* A failed event file is fatal even with --keep-going. */
		if (rs.failed) {
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
	if (runs_close(&rs, rc ? NULL : err) && !rc)
		rc = -1;
	if (rc)
		cli_die(PROG, "%s", err);
	return bad ? CLI_FAIL : CLI_OK;
}
