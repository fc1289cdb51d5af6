/* evline: a line is split into fields in place; files named on a line are read whole
 * (a PNG is stored as it is) or as their first .npy array. */
#include "tb/evline.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ckpt.h"
#include "util/buf.h"
#include "util/cli.h"
#include "array/npy.h"
#include "tb/tfev_hist.h"
#include "tb/tfev_image.h"
#include "tb/tfev_model.h"

/* The writer for run name (NULL: --run), opened on first use. A tag's run and --run
 * naming the same folder share one file. */
static tfev_writer *run_writer(evline *e, const char *name, char *err)
{
	const char *dir = name ? name : e->run ? e->run : "";
	char why[ERR_MAX];

	for (int i = 0; i < e->n; i++)
		if (!strcmp(e->name[i], dir))
			return &e->w[i];
	if (e->n == EVLINE_MAXRUNS)
		return err_set(err, "more than %d runs", EVLINE_MAXRUNS), NULL;
	if (name && (!strcmp(name, ".") || !strcmp(name, "..")))
		return err_set(err, "'%s' is not a run name", name), NULL;
	if (!(e->name[e->n] = strdup(dir)))
		return err_set(err, "out of memory"), NULL;
	if (tfev_open(&e->w[e->n], e->logdir, dir, why)) {
		free(e->name[e->n]);
		e->failed = 1;
		return err_set(err, "%s", why), NULL;
	}
	return &e->w[e->n++];
}

int evline_flush(evline *e, char *err)
{
	for (int i = 0; i < e->n; i++)
		if (tfev_flush(&e->w[i], err)) {
			e->failed = 1;
			return -1;
		}
	return 0;
}

int evline_close(evline *e, char *err)
{
	int rc = 0;

	for (int i = 0; i < e->n; i++) {
		if (tfev_close(&e->w[i], rc ? NULL : err))
			rc = -1;
		free(e->name[i]);
	}
	e->n = 0;
	return rc;
}

int evline_open(evline *e, const char *logdir, const char *run, int split, char *err)
{
	memset(e, 0, sizeof *e);
	e->logdir = logdir, e->run = run, e->split = split;
	return !split && !run_writer(e, NULL, err) ? -1 : 0;
}

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

/* A file named on a line, whole: a regular file of at most EVLINE_FILE_MAX bytes (a FIFO
 * or device such as /dev/zero is refused, never waited on or read forever). "-" is a file
 * of that name here, not stdin, which carries the lines themselves. */
static int slurp(const char *path, struct buf *b, char *err)
{
	buf_init(b);
	if (buf_slurp(b, strcmp(path, "-") ? path : "./-", EVLINE_FILE_MAX, err)) {
		buf_free(b);
		return -1;
	}
	return 0;
}

/* The first array of a .npy file. */
static int load_npy(const char *path, tensor *t, char *err)
{
	struct buf b;
	FILE *f;
	int rc;

	if (slurp(path, &b, err))
		return -1;
	if (!b.len) {
		buf_free(&b);
		return err_set(err, "%s: empty file, no array in it", path);
	}
	if (!(f = fmemopen(b.data, b.len, "rb"))) {
		buf_free(&b);
		return err_sys(err, "%s", path);
	}
	rc = npy_read(f, path, t, err);
	fclose(f);
	buf_free(&b);
	if (rc == 0)
		return err_set(err, "%s: no array in it", path);
	return rc < 0 ? -1 : 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

static int do_hist(evline *e, tfev_writer *w, int64_t step, const char *tag, char *rest,
		   char *err)
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
				return tfev_failed(w) ? err_set(err, "%s", why) : err_set(err, "%s: %s", f, why);
			goto done;
		}
		if (buf_grow_array(&v, &cap, n + 1, sizeof *v)) {
			free(v);
			return err_set(err, "out of memory");
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
	if (!rc && (nf.nan || nf.posinf || nf.neginf))
		snprintf(e->warning, sizeof e->warning,
			 "%s: left out of the histogram: %lld NaN, %lld +Inf, %lld -Inf",
			 tag, (long long)nf.nan, (long long)nf.posinf, (long long)nf.neginf);
	return rc;
}

static int do_image(tfev_writer *w, int64_t step, const char *tag, char *rest, char *err)
{
	char *path = next_field(&rest), why[ERR_MAX];
	struct buf png;
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
			return tfev_failed(w) ? err_set(err, "%s", why) : err_set(err, "%s: %s", path, why);
		return 0;
	}
	if (slurp(path, &png, err))
		return -1;
	if (tfev_png_info(png.data, png.len, &width, &height, &cs, why)) {
		buf_free(&png);
		return err_set(err, "%s: %s", path, why);
	}
	rc = tfev_image_png(w, step, tag, png.data, png.len, err);
	buf_free(&png);
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
		if (model_init(&m, MODEL_DEFAULT_SPEC, (model_size){ .h = size, .w = size, .classes = nclass, .max_batch = 1 }, err))
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
		if (model_init(&m, rest, (model_size){ .h = h, .w = wd, .classes = nclass, .max_batch = 1 }, err))
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

static int do_line(evline *e, char *line, char *err)
{
	char *rest = line, *first = next_field(&rest), *tag, *kind, *slash;
	tfev_writer *w;
	int64_t step;
	double v;

	if (!first || first[0] == '#')
		return 0;
	if (!strcmp(first, "graph"))
		return (w = run_writer(e, NULL, err)) ? do_graph(w, rest, err) : -1;
	if (cli_parse_i64(first, 0, INT64_MAX, &step))
		return err_set(err, "'%s' is not a step (an integer >= 0) or 'graph'", first);
	tag = next_field(&rest);
	kind = next_field(&rest);
	if (!tag || !kind)
		return err_set(err, "expected STEP TAG VALUE");
	if (e->split && (slash = strchr(tag, '/')) && slash > tag && slash[1]) {
		*slash = 0;
		w = run_writer(e, tag, err);
		tag = slash + 1;
	} else {
		w = run_writer(e, NULL, err);
	}
	if (!w)
		return -1;
	if (!strcmp(kind, "hist"))
		return do_hist(e, w, step, tag, rest, err);
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

int evline_do(evline *e, char *line, char *err)
{
	e->warning[0] = 0;
	if (do_line(e, line, err) == 0)
		return 0;
	for (int k = 0; k < e->n; k++)
		e->failed |= tfev_failed(&e->w[k]);
	return -1;
}
