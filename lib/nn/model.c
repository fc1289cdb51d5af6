/* model: parsing the spec into a graph, laying out one parameter buffer, and running the
 * layers of lib/nn over buffers allocated once for the largest batch (nothing per step). */
#include "nn/model.h"

#include <cblas.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nn/avgpool.h"
#include "nn/blas.h"
#include "nn/conv2d.h"
#include "nn/convdirect.h"
#include "nn/convdw.h"
#include "nn/dense.h"
#include "nn/dropout.h"
#include "nn/elt.h"
#include "nn/lrn.h"
#include "nn/maxpool.h"
#include "nn/softmax.h"
#include "nn/vec.h"
#include "util/errmsg.h"
#include "util/fpmode.h"
#include "util/mem.h"
#include "util/par.h"

/* A spec longer than this is not a network anyone writes or converts (GoogLeNet's is
 * ~6 KB); the cap keeps every count below in int. */
#define MODEL_SPEC_MAX (1 << 20)
#define MODEL_MAX_LAYERS 4096
#define MODEL_GRAD_DLOGITS (-2)

enum { PAD_SAME, PAD_VALID, PAD_EXPLICIT };

typedef struct {
	enum model_kind kind;
	char name[MODEL_NAME_MAX / 2];
	int named;              /* given a NAME= (only those can be read by name) */
	int kh, kw, sh, sw, pad, pads[4], ceil, groups, incl;
	int act;                /* -1: the kind's default; else enum vec_act (relu6: conv only) */
	int count, fc;          /* count -1: the class count K */
	float a[4];
	char *ins;              /* the text after '@' (NULL: the token before) */
} layer_spec;

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

static int parse_int(const char *s, char **end, long lo, long hi, int *out)
{
	long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	v = strtol(s, end, 10);
	if (v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* "AxB" */
static int parse_kxk(const char *s, int *kh, int *kw)
{
	char *end;

	if (parse_int(s, &end, 1, 4096, kh) || *end != 'x' || parse_int(end + 1, &end, 1, 4096, kw) || *end)
		return -1;
	return 0;
}

static int parse_count(const char *s, int *out)
{
	char *end;

	if (!strcmp(s, "K")) {
		*out = -1;
		return 0;
	}
	return parse_int(s, &end, 1, 1 << 20, out) || *end ? -1 : 0;
}

static int parse_float(const char *s, float *out)
{
	char *end;
	float v;

	if (!*s)
		return -1;
	v = strtof(s, &end);
	if (*end || isnan(v))
		return -1;
	*out = v;
	return 0;
}

/* "pN" or "pT,L,B,R" */
static int parse_pads(const char *s, int pads[4])
{
	char *end;
	int n = 0;

	for (s++;; s = end + 1) {
		if (n == 4 || parse_int(s, &end, 0, 4096, &pads[n++]))
			return -1;
		if (!*end)
			break;
		if (*end != ',')
			return -1;
	}
	if (n == 1)
		pads[1] = pads[2] = pads[3] = pads[0];
	return n == 1 || n == 4 ? 0 : -1;
}

static int is_window(enum model_kind k)
{
	return k == MODEL_CONV || k == MODEL_POOL || k == MODEL_AVGPOOL;
}

/* One option of a layer; 0 if it took it. */
static int parse_option(layer_spec *ls, const char *a)
{
	char *end;
	enum model_kind k = ls->kind;

	if (is_window(k) && !strcmp(a, "same"))
		return ls->pad = PAD_SAME, 0;
	if (is_window(k) && !strcmp(a, "valid"))
		return ls->pad = PAD_VALID, 0;
	if (is_window(k) && a[0] == 'p' && !parse_pads(a, ls->pads))
		return ls->pad = PAD_EXPLICIT, 0;
	if (is_window(k) && a[0] == 's') {
		if (parse_int(a + 1, &end, 1, 4096, &ls->sh))
			return -1;
		ls->sw = ls->sh;
		if (*end == 'x' && parse_int(end + 1, &end, 1, 4096, &ls->sw))
			return -1;
		return *end ? -1 : 0;
	}
	if (k == MODEL_CONV && a[0] == 'g')
		return parse_int(a + 1, &end, 1, 1 << 20, &ls->groups) || *end ? -1 : 0;
	if ((k == MODEL_POOL || k == MODEL_AVGPOOL) && !strcmp(a, "ceil"))
		return ls->ceil = 1, 0;
	if (k == MODEL_AVGPOOL && !strcmp(a, "incl"))
		return ls->incl = 1, 0;
	if ((k == MODEL_CONV || k == MODEL_DENSE) && !strcmp(a, "linear"))
		return ls->act = VEC_LINEAR, 0;
	if ((k == MODEL_CONV || k == MODEL_DENSE || k == MODEL_ADD || k == MODEL_BN) && !strcmp(a, "relu"))
		return ls->act = VEC_RELU, 0;
	if (k == MODEL_CONV && !strcmp(a, "relu6"))
		return ls->act = VEC_RELU6, 0;
	return -1;
}

static const struct {
	const char *word;
	enum model_kind kind;
	int need_name, nargs;   /* nargs: fixed arguments after the kind */
} kinds[] = {
	{ "conv", MODEL_CONV, 1, 2 },   { "maxpool", MODEL_POOL, 0, 1 }, { "avgpool", MODEL_AVGPOOL, 0, 1 },
	{ "gap", MODEL_GAP, 0, 0 },     { "dense", MODEL_DENSE, 1, 1 },  { "drop", MODEL_DROP, 0, 1 },
	{ "add", MODEL_ADD, 0, 0 },     { "concat", MODEL_CONCAT, 0, 0 }, { "relu", MODEL_RELU, 0, 0 },
	{ "clip", MODEL_CLIP, 0, 2 },   { "leaky", MODEL_LEAKY, 0, 1 },  { "bn", MODEL_BN, 1, 0 },
	{ "lrn", MODEL_LRN, 0, 4 },
};

/* The fixed arguments of ls's kind: args[1..] */
static int parse_args(layer_spec *ls, char **args, int nargs, char *err)
{
	switch (ls->kind) {
	case MODEL_CONV:
		if (nargs < 3 || parse_kxk(args[1], &ls->kh, &ls->kw) || parse_count(args[2], &ls->count))
			return err_set(err, "model spec: conv wants conv:KHxKW:COUT, got '%s'", args[0]);
		return 0;
	case MODEL_POOL:
	case MODEL_AVGPOOL:
		if (nargs < 2 || parse_kxk(args[1], &ls->kh, &ls->kw))
			return err_set(err, "model spec: %s wants %s:KHxKW", args[0], args[0]);
		return 0;
	case MODEL_DENSE:
		if (nargs < 2 || parse_count(args[1], &ls->count))
			return err_set(err, "model spec: dense wants dense:N or dense:K");
		return 0;
	case MODEL_DROP:
		if (nargs != 2 || (strcmp(args[1], "conv") && strcmp(args[1], "fc")))
			return err_set(err, "model spec: drop wants drop:conv or drop:fc");
		ls->fc = !strcmp(args[1], "fc");
		return 0;
	case MODEL_CLIP:
		if (nargs != 3 || parse_float(args[1], &ls->a[0]) || parse_float(args[2], &ls->a[1]) ||
		    ls->a[0] > ls->a[1])
			return err_set(err, "model spec: clip wants clip:LO:HI with LO <= HI");
		return 0;
	case MODEL_LEAKY:
		if (nargs != 2 || parse_float(args[1], &ls->a[0]) || !isfinite(ls->a[0]))
			return err_set(err, "model spec: leaky wants leaky:ALPHA");
		return 0;
	case MODEL_LRN: {
		int size;
		char *end;

		if (nargs != 5 || parse_int(args[1], &end, 1, 1 << 16, &size) || *end ||
		    parse_float(args[2], &ls->a[1]) || parse_float(args[3], &ls->a[2]) ||
		    parse_float(args[4], &ls->a[3]) || !isfinite(ls->a[1]) || !isfinite(ls->a[2]) ||
		    !(ls->a[3] > 0) || !isfinite(ls->a[3]))
			return err_set(err, "model spec: lrn wants lrn:SIZE:ALPHA:BETA:BIAS (BIAS > 0)");
		ls->a[0] = (float)size;
		return 0;
	}
	default:
		return 0;
	}
}

/* One token: [NAME=]kind[:arg...][@in,...]; tok is modified (and ls->ins points into it). */
static int parse_token(char *tok, layer_spec *ls, char *err)
{
	char *eq = strchr(tok, '='), *at = strchr(tok, '@'), *body = tok, *args[16], *save = NULL;
	int nargs = 0, k;

	memset(ls, 0, sizeof *ls);
	ls->act = -1, ls->groups = 1;
	if (at) {
		*at = 0;
		ls->ins = at + 1;
	}
	if (eq && (!at || eq < at)) {
		*eq = 0;
		body = eq + 1;
		if (!valid_name(tok) || strlen(tok) >= sizeof ls->name)
			return err_set(err, "model spec: bad layer name '%s'", tok);
		strcpy(ls->name, tok);
		ls->named = 1;
	}
	for (char *p = strtok_r(body, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		if (nargs == 16)
			return err_set(err, "model spec: too many fields in '%s'", body);
		args[nargs++] = p;
	}
	if (!nargs)
		return err_set(err, "model spec: empty layer");
	for (k = 0; k < (int)(sizeof kinds / sizeof *kinds); k++)
		if (!strcmp(args[0], kinds[k].word))
			break;
	if (k == (int)(sizeof kinds / sizeof *kinds))
		return err_set(err, "model spec: unknown layer kind '%s'", args[0]);
	ls->kind = kinds[k].kind;
	if (parse_args(ls, args, nargs, err))
		return -1;
	if (kinds[k].need_name && !ls->named)
		return err_set(err, "model spec: %s layer needs a NAME= (its variable scope)", args[0]);
	if (ls->ins && ls->kind != MODEL_ADD && ls->kind != MODEL_CONCAT && strchr(ls->ins, ','))
		return err_set(err, "model spec: only add and concat read more than one layer ('%s')",
			       ls->ins);
	if ((ls->kind == MODEL_ADD || ls->kind == MODEL_CONCAT) && !ls->ins)
		return err_set(err, "model spec: %s wants the layers it reads: %s@A,B", args[0], args[0]);
	for (int i = 1 + kinds[k].nargs; i < nargs; i++)
		if (parse_option(ls, args[i]))
			return err_set(err, "model spec: unknown option '%s' for %s", args[i], args[0]);
	if (ls->kind == MODEL_CONV && !ls->sh)
		ls->sh = ls->sw = 1;
	if (ls->ceil && ls->pad == PAD_SAME)
		return err_set(err, "model spec: ceil wants explicit pads or valid, not same");
	return 0;
}

/* Splits spec into ls (allocated, *n of them); copy keeps the text ls->ins points into. */
static int parse_spec(const char *spec, char *copy, layer_spec **out, int *n, char *err)
{
	char *save = NULL;
	int cap = 1;
	layer_spec *ls;

	for (const char *p = spec; *p; p++)
		cap += isspace((unsigned char)*p) != 0;
	if (cap > MODEL_MAX_LAYERS)
		cap = MODEL_MAX_LAYERS + 1;
	if (!(ls = calloc((size_t)cap, sizeof *ls)))
		return err_set(err, "out of memory");
	*out = ls;
	*n = 0;
	for (char *tok = strtok_r(copy, " \t\n\r", &save); tok; tok = strtok_r(NULL, " \t\n\r", &save)) {
		if (*n == MODEL_MAX_LAYERS)
			return err_set(err, "model spec: more than %d layers", MODEL_MAX_LAYERS);
		if (parse_token(tok, &ls[*n], err))
			return -1;
		(*n)++;
	}
	if (!*n)
		return err_set(err, "model spec: no layers");
	return 0;
}

/* Monotonic seconds, for the per-layer profile (two clock reads per layer per step). */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int mul_ok(size_t *r, size_t a, size_t b)
{
	if (b && a > SIZE_MAX / b)
		return 0;
	*r = a * b;
	return 1;
}

static void *alloc_floats(size_t n, size_t each, char *err)
{
	size_t bytes;
	void *p;

	if (!mul_ok(&bytes, n, each) || !(p = calloc(bytes ? bytes : 1, 1))) {
		err_set(err, "model: cannot allocate %zu x %zu bytes", n, each);
		return NULL;
	}
	return p;
}

/* alloc_floats on a cache line, for the parameters, the optimiser's buffers and the layers'
 * outputs (freed by mem_free64): fc1's streaming passes over the parameters load whole
 * 64-byte vectors, each of which spanned two lines where glibc's block began (16 bytes
 * past a page). fc1's forward at 224, batch 10, 2 threads, Zen 5 (cnn-train --profile,
 * runs alternating): 13.9-15.0 -> 12.1-12.2 ms; its backward with Adam, bound by memory,
 * gained less than the noise. The depthwise convolutions' loads of their inputs did the
 * same: MobileNetV2's, 1 thread, batch 8, Zen 4 (frozen, --profile, 3 runs alternating),
 * 12.2-12.6 -> 10.7-11.1 ms in all; the default network's layers at 224 within the noise.
 * The network's input, the gradient buffers and the conv scratch stay where calloc puts
 * them: at offset 0 of a line (not 16, 32 or 48) the input made conv1_1's forward 0.7 ms
 * slower (Zen 5), the gradient buffers its weight gradient 1.5 ms (Zen 4), the scratch
 * each Winograd layer's passes 1-3 ms (measured, not understood). All in small pages:
 * advised into huge ones they faulted in 7x slower on memory a VM host had reclaimed
 * (bench/HISTORY.md, "stay in small pages on purpose"). */
static float *alloc_lines(size_t n, char *err)
{
	float *p = mem_calloc64(n, sizeof *p);

	if (!p)
		err_set(err, "model: cannot allocate %zu x %zu bytes", n, sizeof *p);
	return p;
}

/* Adds a parameter NAME/WHAT (with "B_I" when blk > 0) of that shape to layer li. */
static int add_param(model *m, int li, const char *what, int blk, int idx, int ndim,
		     const int64_t *shape, char *err)
{
	model_param *p = &m->param[m->nparam];
	char scope[MODEL_NAME_MAX / 2];
	size_t n = 1;

	/* spec names are shorter than this (parse_token) */
	snprintf(scope, sizeof scope, "%.*s", (int)sizeof scope - 1, m->layer[li].name);

	p->ndim = ndim;
	p->layer = li;
	for (int i = 0; i < ndim; i++) {
		p->shape[i] = shape[i];
		if (!mul_ok(&n, n, (size_t)shape[i]))
			return err_set(err, "model: layer %s too large", scope);
	}
	if (blk)
		snprintf(p->name, sizeof p->name, "%s/%s%d_%d", scope, what, blk, idx);
	else
		snprintf(p->name, sizeof p->name, "%s/%s", scope, what);
	p->off = m->nparams;
	p->n = n;
	if (m->nparams > SIZE_MAX / 4 - n)
		return err_set(err, "model: too many parameters");
	m->nparams += n;
	return m->nparam++;
}

static int normalise_spec(model *m, const char *spec, char *err)
{
	size_t len = strlen(spec), j = 0;
	int space = 0;

	if (!(m->spec = malloc(len + 1)))
		return err_set(err, "out of memory");
	for (size_t i = 0; i < len; i++) {
		if (isspace((unsigned char)spec[i])) {
			space = j > 0;
			continue;
		}
		if (space)
			m->spec[j++] = ' ';
		space = 0;
		m->spec[j++] = spec[i];
	}
	m->spec[j] = 0;
	return 0;
}

/* The layers layer i reads: the names after its '@' (the latest earlier layer of that
 * name), else the one before it. */
static int resolve_sources(model *m, const layer_spec *ls, int i, char *err)
{
	model_layer *l = &m->layer[i];
	char names[MODEL_SPEC_MAX > 4096 ? 4096 : MODEL_SPEC_MAX], *save = NULL;
	int n = 1;

	if (!ls[i].ins) {
		if (!(l->src = malloc(sizeof *l->src)))
			return err_set(err, "out of memory");
		l->src[0] = i ? i - 1 : MODEL_INPUT;
		l->nsrc = 1;
		return 0;
	}
	if (strlen(ls[i].ins) >= sizeof names)
		return err_set(err, "model spec: %s reads too many layers", l->name);
	strcpy(names, ls[i].ins);
	for (const char *p = names; *p; p++)
		n += *p == ',';
	if (!(l->src = malloc(sizeof *l->src * (size_t)n)))
		return err_set(err, "out of memory");
	for (char *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int j = i - 1;

		if (!strcmp(t, "input")) {
			l->src[l->nsrc++] = MODEL_INPUT;
			continue;
		}
		while (j >= 0 && !(ls[j].named && !strcmp(ls[j].name, t)))
			j--;
		if (j < 0)
			return err_set(err, "model spec: %s reads '%s', which is no earlier layer's name",
				       l->name, t);
		l->src[l->nsrc++] = j;
	}
	if (!l->nsrc)
		return err_set(err, "model spec: %s reads no layer", l->name);
	if (l->kind == MODEL_ADD && l->nsrc != 2)
		return err_set(err, "model spec: add reads two layers, %s names %d", l->name, l->nsrc);
	return 0;
}

/* The window of a conv or pool layer over an h x w x c input. */
static int window(geom *g, const layer_spec *s, int h, int w, int c, int oc, char *err)
{
	int sh = s->sh ? s->sh : s->kh, sw = s->sw ? s->sw : s->kw;

	if (s->pad == PAD_EXPLICIT || s->ceil || s->groups > 1) {
		int pads[4] = { 0, 0, 0, 0 };

		if (s->pad == PAD_EXPLICIT) {
			memcpy(pads, s->pads, sizeof pads);
		} else if (s->pad == PAD_SAME) {
			int ph, pw;
			int oh = geom_out_size(h, s->kh, sh, GEOM_SAME, &ph), ow = geom_out_size(w, s->kw, sw, GEOM_SAME, &pw);

			pads[0] = ph, pads[1] = pw;
			pads[2] = (oh - 1) * sh + s->kh - h - ph, pads[3] = (ow - 1) * sw + s->kw - w - pw;
			pads[2] = pads[2] < 0 ? 0 : pads[2], pads[3] = pads[3] < 0 ? 0 : pads[3];
		}
		return geom_init_pads(g, h, w, c, s->kh, s->kw, sh, sw, pads, s->ceil, s->groups, oc, err);
	}
	return geom_init(g, h, w, c, s->kh, s->kw, sh, sw, s->pad == PAD_VALID ? GEOM_VALID : GEOM_SAME, oc, err);
}

static void shape_of(const model *m, int src, int *h, int *w, int *c)
{
	if (src == MODEL_INPUT) {
		*h = m->h, *w = m->w, *c = m->c;
	} else {
		*h = m->layer[src].oh, *w = m->layer[src].ow, *c = m->layer[src].oc;
	}
}

/* Shapes, names, sources and parameter offsets for every layer. */
static int build_layers(model *m, const layer_spec *ls, int n, char *err)
{
	int blk = 1, idx = 0, last_param = -1, nk = 0;
	char inner[ERR_MAX];

	for (int i = 0; i < n; i++) {
		model_layer *l = &m->layer[i];
		const layer_spec *s = &ls[i];
		int h, w, c, last = i == n - 1;

		l->kind = s->kind;
		l->fc = s->fc, l->incl = s->incl;
		memcpy(l->a, s->a, sizeof l->a);
		l->wparam = l->bparam = -1;
		if (resolve_sources(m, ls, i, err))
			return -1;
		shape_of(m, l->src[0], &h, &w, &c);
		for (int k = 0; k < l->nsrc; k++)
			if (l->src[k] != MODEL_INPUT)
				m->layer[l->src[k]].nuse++;
		if (s->count == -1) {
			if (!m->classes)
				return err_set(err, "model spec: %s has K outputs, but no class count is given", l->name);
			if (nk++)
				return err_set(err, "model spec: only one layer may have K outputs (the logits)");
		}
		/* the activation after; by default a ReLU for conv and dense but the last */
		l->relu = s->act != -1 ? s->act
			: !last && (s->kind == MODEL_CONV || s->kind == MODEL_DENSE) ? VEC_RELU : VEC_LINEAR;
		switch (s->kind) {
		case MODEL_POOL:
		case MODEL_AVGPOOL:
			if (window(&l->g, s, h, w, c, c, inner))
				return err_set(err, "model spec: %s: %s", l->name, inner);
			h = l->g.oh, w = l->g.ow;
			if (idx > 0)
				blk++, idx = 0;
			break;
		case MODEL_GAP:
			h = w = 1;
			break;
		case MODEL_CONV: {
			int cout = s->count < 0 ? m->classes : s->count;

			if (c % s->groups || cout % s->groups)
				return err_set(err, "model spec: %s: %d groups do not divide %d inputs and %d outputs",
					       l->name, s->groups, c, cout);
			if (window(&l->g, s, h, w, c, cout, inner))
				return err_set(err, "model spec: %s: %s", l->name, inner);
			int64_t ws[4] = { s->kh, s->kw, c / s->groups, cout }, bs[1] = { cout };

			h = l->g.oh, w = l->g.ow, c = cout;
			idx++;
			if ((l->wparam = add_param(m, i, "weights", blk, idx, 4, ws, err)) < 0 ||
			    (l->bparam = add_param(m, i, "biases", blk, idx, 1, bs, err)) < 0)
				return -1;
			last_param = MODEL_CONV;
			break;
		}
		case MODEL_DENSE: {
			int nout = s->count < 0 ? m->classes : s->count;
			int64_t nin = (int64_t)h * w * c;

			if (nin > INT32_MAX)
				return err_set(err, "model: %s input too large", l->name);
			if (last_param == MODEL_CONV && idx > 0)
				blk++, idx = 0;
			idx++;
			int64_t ws[2] = { nin, nout }, bs[1] = { nout };

			l->nin = (int)nin, l->nout = nout;
			if ((l->wparam = add_param(m, i, "weights", blk, idx, 2, ws, err)) < 0 ||
			    (l->bparam = add_param(m, i, "biases", blk, idx, 1, bs, err)) < 0)
				return -1;
			h = 1, w = 1, c = nout;
			last_param = MODEL_DENSE;
			break;
		}
		case MODEL_BN: {
			int64_t cs[1] = { c };

			if ((l->wparam = add_param(m, i, "scale", 0, 0, 1, cs, err)) < 0 ||
			    (l->bparam = add_param(m, i, "shift", 0, 0, 1, cs, err)) < 0)
				return -1;
			break;
		}
		case MODEL_ADD:
		case MODEL_CONCAT: {
			int sum = 0;

			for (int k = 0; k < l->nsrc; k++) {
				int h2, w2, c2;

				shape_of(m, l->src[k], &h2, &w2, &c2);
				if (h2 != h || w2 != w || (s->kind == MODEL_ADD && c2 != c))
					return err_set(err, "model spec: %s: its inputs are %dx%dx%d and %dx%dx%d",
						       l->name, h, w, c, h2, w2, c2);
				if (sum > INT32_MAX - c2)
					return err_set(err, "model: %s too large", l->name);
				sum += c2;
			}
			if (s->kind == MODEL_CONCAT)
				c = sum;
			break;
		}
		case MODEL_DROP:
			/* a dropped ReLU output is still one: backward may mask by it (not a
			 * ReLU6's: scaled up, its 6 is no longer the clipped value) */
			l->relu = l->src[0] != MODEL_INPUT && m->layer[l->src[0]].relu == VEC_RELU;
			break;
		case MODEL_RELU:
			l->relu = 1;
			break;
		case MODEL_CLIP:
		case MODEL_LEAKY:
		case MODEL_LRN:
			break;
		}
		/* a max of ReLU outputs is one too (of ReLU6 outputs the input masks itself) */
		if (s->kind == MODEL_POOL)
			l->relu = l->src[0] != MODEL_INPUT && m->layer[l->src[0]].relu == VEC_RELU;
		if ((int64_t)h * w * c > INT32_MAX)
			return err_set(err, "model: %s output too large", l->name);
		l->oh = h, l->ow = w, l->oc = c;
		l->out_n = (size_t)h * w * c;
	}
	for (int i = 0; i < n - 1; i++)
		if (!m->layer[i].nuse)
			return err_set(err, "model spec: the output of %s is never read", m->layer[i].name);
	if (m->classes) {
		const model_layer *l = &m->layer[n - 1];

		if (l->oh != 1 || l->ow != 1 || l->oc != m->classes)
			return err_set(err, "model spec: the last layer must give the %d logits (1x1x%d), not %dx%dx%d",
				       m->classes, m->classes, l->oh, l->ow, l->oc);
	}
	return 0;
}

/* Whether each layer's output gradient is needed: it has trainable parameters, or a layer
 * it reads does (need [nlayer]). */
static void needs_grad(const model *m, char *need)
{
	for (int i = 0; i < m->nlayer; i++) {
		const model_layer *l = &m->layer[i];

		need[i] = (l->wparam >= 0 && !l->frozen) || m->act_grad;
		for (int k = 0; k < l->nsrc; k++)
			if (l->src[k] != MODEL_INPUT && need[l->src[k]])
				need[i] = 1;
	}
}

/* A drop layer works in place on its input when nothing else reads that. */
static int in_place(const model *m, const model_layer *l)
{
	return l->kind == MODEL_DROP && l->src && l->src[0] != MODEL_INPUT && m->layer[l->src[0]].nuse == 1;
}

/* Whether layer l's output gradient may serve as its source s's too: l is s's only
 * reader, and changes the gradient in place (dropout: in_place) or passes it on unchanged
 * (an add, a ReLU: their own masks applied before). An add gives its buffer to one source;
 * the other gets a copy. ResNet-18's adds copied 30 MB a step at 224, batch 10. */
static int grad_in_place(const model *m, const model_layer *l, int s)
{
	return in_place(m, l) ||
	       ((l->kind == MODEL_ADD || l->kind == MODEL_RELU) && s != MODEL_INPUT &&
		m->layer[s].nuse == 1);
}

/* Plans backward's gradient buffers: a layer's output gradient gets a buffer when its
 * last reader (the first met going backwards) writes it, and gives it back once the
 * layer's own backward has used it, so a chain needs two and each branch one more.
 * Later readers add theirs through gtmp. Sets every layer's grad, *ngbuf and *tmp. */
static int plan_grads(model *m, int *ngbuf, int *tmp, char *err)
{
	int n = m->nlayer, nfree = 0, total = 0;
	size_t nz = n > 0 ? (size_t)n : 1;     /* model_init makes n >= 1 */
	int *freel = malloc(sizeof(int) * (nz + 1));
	char *need = malloc(nz);

	if (!freel || !need) {
		free(freel), free(need);
		return err_set(err, "out of memory");
	}
	needs_grad(m, need);
	*tmp = 0;
	for (int i = 0; i < n; i++)
		m->layer[i].grad = -1;
	m->layer[n - 1].grad = MODEL_GRAD_DLOGITS;
	for (int i = n - 1; i >= 0; i--) {
		model_layer *l = &m->layer[i];
		int passed = 0;

		if (!need[i] || l->grad == -1)
			continue;
		for (int k = 0; k < l->nsrc; k++) {
			int s = l->src[k];

			if (s == MODEL_INPUT || !need[s])
				continue;
			if (grad_in_place(m, l, s) && l->grad >= 0 && !passed && m->layer[s].grad == -1) {
				m->layer[s].grad = l->grad;
				passed = 1;
			} else if (m->layer[s].grad == -1) {
				m->layer[s].grad = nfree ? freel[--nfree] : total++;
			} else {
				*tmp = 1;
			}
		}
		if (l->grad >= 0 && !passed)
			freel[nfree++] = l->grad;
	}
	*ngbuf = total;
	free(freel), free(need);
	return 0;
}

typedef struct {
	char *p;
	long pages;
	size_t page;
} fault_span;

/* Worker k's share of the span's pages (the last page may be partly outside the buffer:
 * mem_fault takes whole pages inside the range it is given only). */
static void prefault_share(void *ctx, int k, int n)
{
	const fault_span *f = ctx;
	long a, b;

	par_share(f->pages, k, n, &a, &b);
	mem_fault(f->p + (size_t)a * f->page, (size_t)(b - a) * f->page);
}

/* Faults in a fresh buffer that training writes in full at its first step anyway: in bulk
 * here, ~40 ms per 400 MB at 224 against ~225 ms of one-page faults inside the step. Only
 * the parameters and the optimiser buffers it writes: fc1's gradient is never written
 * when Adam is fused into its backward, and momentum never writes Adam's v, so those
 * pages are left untouched (400 MB each at 224). On threads threads: a KVM guest faults
 * memory its host reclaimed at 0.4-0.8 GB/s per thread, so 800 MB of Adam's state took
 * 1.0-1.4 s on one and about half that on two. */
static void prefault(void *p, size_t bytes, int threads)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + bytes) / page * page;
	fault_span f = { .p = (char *)lo, .pages = hi > lo ? (long)((hi - lo) / page) : 0, .page = page };

	if (f.pages)
		par_run(threads, prefault_share, &f);
}

/* Floats of scratch the conv layers need with that many threads: one buffer serves all. */
static size_t conv_scratch(const model *m, int threads)
{
	size_t n = 0;

	for (int i = 0; i < m->nlayer; i++)
		if (m->layer[i].kind == MODEL_CONV && conv2d_workspace(&m->layer[i].g, threads) > n)
			n = conv2d_workspace(&m->layer[i].g, threads);
	return n;
}

/* Every conv layer's kernels, decided once for m->isa and m->threads. */
static void plan_convs(model *m)
{
	for (int i = 0; i < m->nlayer; i++)
		if (m->layer[i].kind == MODEL_CONV)
			conv2d_plan_init(&m->layer[i].plan, &m->layer[i].g, m->isa, m->threads);
}

static void free_grads(model *m)
{
	for (int i = 0; m->gbuf && i < m->ngbuf; i++)
		free(m->gbuf[i]);
	free(m->gbuf);
	free(m->gtmp);
	m->gbuf = NULL, m->gtmp = NULL;
	m->ngbuf = 0;
}

/* Plans backward (plan_grads) and allocates its gradient buffers, those before freed:
 * called again whenever freezing changes. */
static int alloc_grads(model *m, char *err)
{
	size_t B = (size_t)m->max_batch, maxact = (size_t)m->h * m->w * m->c;
	int tmp = 0;

	free_grads(m);
	for (int i = 0; i < m->nlayer; i++)
		if (m->layer[i].out_n > maxact)
			maxact = m->layer[i].out_n;
	if (plan_grads(m, &m->ngbuf, &tmp, err))
		return -1;
	if (!(m->gbuf = calloc((size_t)m->ngbuf + 1, sizeof *m->gbuf)))
		return m->ngbuf = 0, err_set(err, "out of memory");
	for (int i = 0; i < m->ngbuf; i++)
		if (!(m->gbuf[i] = alloc_floats(B * maxact, sizeof(float), err)))
			return -1;
	if (tmp && !(m->gtmp = alloc_floats(B * maxact, sizeof(float), err)))
		return -1;
	return 0;
}

static int alloc_buffers(model *m, int fault_threads, char *err)
{
	size_t B = (size_t)m->max_batch, maxact = (size_t)m->h * m->w * m->c, K = (size_t)m->classes;
	size_t last = m->layer[m->nlayer - 1].out_n;

	if (!(m->params = alloc_lines(m->nparams, err)))
		return -1;
	if (m->train && (!(m->grads = alloc_lines(m->nparams, err)) ||
			 !(m->adam_m = alloc_lines(m->nparams, err)) ||
			 !(m->adam_v = alloc_lines(m->nparams, err))))
		return -1;
	/* the optimiser buffers are faulted in at the first step, once freezing and the
	 * optimiser say which parts of them are ever written (fault_state) */
	if (m->train)
		prefault(m->params, m->nparams * sizeof(float), fault_threads);
	if (!(m->input = alloc_floats(B * maxact, sizeof(float), err)))
		return -1;
	for (int i = 0; i < m->nlayer; i++) {
		model_layer *l = &m->layer[i];
		size_t n = B * l->out_n;

		if (l->out_n > maxact)
			maxact = l->out_n;
		if (l->kind == MODEL_DROP && m->train && !(l->mask = alloc_floats(n, 1, err)))
			return -1;
		if (in_place(m, l)) {
			l->out = m->layer[l->src[0]].out;
			continue;
		}
		if (!(l->out = alloc_lines(n, err)))
			return -1;
		if (l->kind == MODEL_POOL && !(l->argmax = alloc_floats(n, sizeof(int32_t), err)))
			return -1;
		if (l->kind == MODEL_LRN && !(l->aux = alloc_floats(n, sizeof(float), err)))
			return -1;
	}
	plan_convs(m);
	m->ws_n = conv_scratch(m, m->threads);
	if (!(m->ws = alloc_floats(m->ws_n, sizeof(float), err)) ||
	    !(m->probs = alloc_floats(B * (K ? K : last), sizeof(float), err)))
		return -1;
	if (!m->train)
		return 0;
	if (!(m->dlogits = alloc_floats(B * K, sizeof(float), err)))
		return -1;
	return alloc_grads(m, err);
}

const char *model_kind_name(enum model_kind k)
{
	for (int i = 0; i < (int)(sizeof kinds / sizeof *kinds); i++)
		if (kinds[i].kind == k)
			return kinds[i].word;
	return "?";
}

int model_init(model *m, const char *spec, model_size s, char *err)
{
	layer_spec *ls = NULL;
	char *copy = NULL;
	int n = 0, rc = -1;

	memset(m, 0, sizeof *m);
	if (!s.c)
		s.c = 3;
	if (s.h < 1 || s.w < 1 || s.c < 1 || s.classes < 0 || s.max_batch < 1 || (s.train && !s.classes))
		return err_set(err, "model: bad size %dx%dx%d, %d classes, batch %d%s", s.h, s.w, s.c,
			       s.classes, s.max_batch, s.train && !s.classes ? " (training needs classes)" : "");
	if (strlen(spec) > MODEL_SPEC_MAX)
		return err_set(err, "model spec: longer than %d bytes", MODEL_SPEC_MAX);
	if (isa_from_env(&m->isa, err))
		return -1;
	fpmode_flush_denormals();
	const char *wino = getenv("PETCNN_WINOGRAD");

	m->no_wino = wino && !strcmp(wino, "0");
	m->h = s.h, m->w = s.w, m->c = s.c, m->classes = s.classes, m->max_batch = s.max_batch;
	m->train = s.train;
	m->threads = 1;
	m->keep[0] = m->keep[1] = 1;
	for (int c = 0; c < 3; c++)
		m->mean[c] = 0, m->std[c] = 1;
	if (!(copy = strdup(spec))) {
		err_set(err, "out of memory");
		goto out;
	}
	if (parse_spec(spec, copy, &ls, &n, err))
		goto out;
	if (!(m->layer = calloc((size_t)n, sizeof *m->layer)) ||
	    !(m->param = calloc((size_t)n * 2, sizeof *m->param))) {
		err_set(err, "out of memory");
		goto out;
	}
	m->nlayer = n;
	for (int i = 0; i < n; i++)
		snprintf(m->layer[i].name, sizeof m->layer[i].name, "%s",
			 ls[i].named ? ls[i].name : ls[i].kind == MODEL_DROP ? "dropout" :
			 ls[i].kind == MODEL_POOL ? "pool" : model_kind_name(ls[i].kind));
	if (normalise_spec(m, spec, err) || build_layers(m, ls, n, err) || alloc_buffers(m, s.fault_threads, err))
		goto out;
	rc = 0;
out:
	free(copy);
	free(ls);
	if (rc)
		model_free(m);
	return rc;
}

int model_set_threads(model *m, int threads, char *err)
{
	size_t wsn;
	float *ws;

	if (threads < 1)
		return err_set(err, "model: %d threads", threads);
	wsn = conv_scratch(m, threads);
	if (wsn > m->ws_n) {
		if (!(ws = alloc_floats(wsn, sizeof(float), err)))
			return -1;
		free(m->ws);
		m->ws = ws, m->ws_n = wsn;
	}
	if (m->band_n && threads > m->band_threads) {
		if (!(ws = alloc_lines(m->band_stride * (size_t)threads, err)))
			return -1;
		mem_free64(m->band_mem);
		m->band_mem = ws, m->band_threads = threads;
	}
	m->threads = threads;
	plan_convs(m);
	openblas_set_num_threads(threads);
	return 0;
}

/* model_lean's micro-batches: as many images as keep a layer's input and output within
 * LEAN_BUDGET_BYTES, about what a core's L2 and its share of L3 hold, so the next layer
 * reads them from cache. Deeper layers take more images than the wide early ones (a 1x1
 * reads its weights once a micro-batch, and each call starts and ends its threads), so the
 * lean layers run in spans of blocks, each span at its own size. */
#define LEAN_BUDGET_BYTES ((size_t)8 << 20)

static size_t src_n(const model *m, int src)
{
	return src == MODEL_INPUT ? (size_t)m->h * m->w * m->c : m->layer[src].out_n;
}

/* Layer i's input and output floats an image. */
static size_t layer_io(const model *m, int i)
{
	size_t io = m->layer[i].out_n;

	for (int k = 0; k < m->layer[i].nsrc; k++)
		io += src_n(m, m->layer[i].src[k]);
	return io;
}

/* The lean layers: those before the first dense or dropout layer (0: too few). */
static int lean_span(const model *m)
{
	int n = 0;

	while (n < m->nlayer - 1 && n < MODEL_LEAN_MAX_LAYERS && m->layer[n].kind != MODEL_DROP &&
	       m->layer[n].kind != MODEL_DENSE)
		n++;
	return n >= 2 ? n : 0;
}

/* The last layer that reads layer i (-1: none). */
static int last_reader(const model *m, int i)
{
	int r = -1;

	for (int j = i + 1; j < m->nlayer; j++)
		for (int k = 0; k < m->layer[j].nsrc; k++)
			if (m->layer[j].src[k] == i)
				r = j;
	return r;
}

/* How many layers read layer i. */
static int readers(const model *m, int i)
{
	int n = 0;

	for (int j = i + 1; j < m->nlayer; j++)
		for (int k = 0; k < m->layer[j].nsrc; k++)
			if (m->layer[j].src[k] == i) {
				n++;
				break;
			}
	return n;
}

/* Whether spans may part after layer i (last: each layer's last reader): between blocks,
 * where one output alone crosses, as a whole batch in cache, and narrow (at most half the
 * channels of the widest since the last such place) or a residual's junction (read twice);
 * never inside a block, where a wide map would cross and need a whole-batch buffer. */
static int lean_cut(const model *m, const int *last, int i, int widest)
{
	int cross = -1;

	for (int j = 0; j <= i; j++)
		if (last[j] > i) {
			if (cross >= 0)
				return 0;
			cross = j;
		}
	if (cross < 0)
		return 1;
	return m->layer[cross].out_n * sizeof(float) * m->max_batch <= LEAN_BUDGET_BYTES / 2 &&
	       (m->layer[cross].oc * 2 <= widest || readers(m, cross) > 1);
}

/* Splits layers 0 .. n-1 into spans (m->lean_nseg, lean_seg_end, lean_seg_mb): each block
 * between cuts takes the images that suit its widest layer, and next blocks taking as
 * many form one span. */
static void lean_segments(model *m, int n)
{
	int last[MODEL_LEAN_MAX_LAYERS], ns = 0, mb = 0, widest = 0;

	for (int i = 0; i < n; i++)
		last[i] = last_reader(m, i);
	for (int i = 0; i < n; i++) {
		size_t want = LEAN_BUDGET_BYTES / (layer_io(m, i) * sizeof(float));
		int w = want < 1 ? 1 : want > (size_t)m->max_batch ? m->max_batch : (int)want;

		widest = m->layer[i].oc > widest ? m->layer[i].oc : widest;
		mb = !mb || w < mb ? w : mb;
		if (i < n - 1 && !lean_cut(m, last, i, widest))
			continue;
		if (ns && (m->lean_seg_mb[ns - 1] == mb || ns == MODEL_LEAN_SEGS)) {
			if (mb < m->lean_seg_mb[ns - 1])
				m->lean_seg_mb[ns - 1] = mb;
			m->lean_seg_end[ns - 1] = i + 1;
		} else {
			m->lean_seg_end[ns] = i + 1, m->lean_seg_mb[ns++] = mb;
		}
		mb = 0, widest = 0;
	}
	m->lean_nseg = ns;
}

/* The span layer i runs in. */
static int lean_seg_of(const model *m, int i)
{
	int s = 0;

	while (s < m->lean_nseg - 1 && i >= m->lean_seg_end[s])
		s++;
	return s;
}

/* Whether layer i's output may live for one micro-batch only: read by later layers of its
 * span alone (its last reader r), and not by the caller (model_keep). */
static int may_pass(const model *m, int i, int *r)
{
	*r = last_reader(m, i);
	return *r >= 0 && *r < m->lean_seg_end[m->lean_nseg - 1] &&
	       lean_seg_of(m, *r) == lean_seg_of(m, i) && !m->layer[i].keep;
}

/* model_lean's bands: the first layers, where a map of one image outgrows a core's L2,
 * run an image per thread, each layer a few rows at a time as soon as the rows below it
 * are there, so the next layer reads them from L2. MobileNetV2's 16->96 expansion at
 * 112x112 writes 4.8 MB an image, which a micro-batch of one left in L3 and DRAM for the
 * depthwise layer to read back: its first 12 layers took 16.3 ms a batch of 10 (2 threads,
 * the Intel Xeon of the benchmarks), 12.1 by bands. BAND_MIN_BYTES: a block with a map of
 * one image this big joins the bands; BAND_BUDGET_BYTES: the rows of every band layer one
 * step makes (256 KB to 1 MB measured alike there, 2 MB slower). */
#define BAND_MIN_BYTES ((size_t)1 << 20)
#define BAND_BUDGET_BYTES ((size_t)512 << 10)
/* A batch that does not share out evenly over the threads, at under 4 images a thread,
 * takes each image in as many parts of rows as threads, up to this many (more threads: an
 * image each). */
#define BAND_MAX_PARTS 8

/* Whether layer i can run by bands of rows: its output rows read a window of rows of its
 * sources (a conv on the direct or depthwise kernels, not Winograd's tiles; a max pool
 * with no winners to keep) or the same rows (adds and per-pixel layers). */
static int band_kind(const model *m, int i)
{
	const model_layer *l = &m->layer[i];

	switch (l->kind) {
	case MODEL_CONV:
		if (l->plan.wino && !m->no_wino)
			return 0;
		return l->plan.fwd_direct || l->plan.kind == CONV2D_DEPTHWISE;
	case MODEL_POOL:
		return !((m->train || m->act_grad) && l->grad != -1);
	case MODEL_ADD: case MODEL_BN: case MODEL_RELU: case MODEL_CLIP: case MODEL_LEAKY:
		return 1;
	default:
		return 0;
	}
}

/* Whether a conv layer reads layer i's output. */
static int conv_reads(const model *m, int i)
{
	for (int j = i + 1; j < m->nlayer; j++)
		for (int k = 0; k < m->layer[j].nsrc; k++)
			if (m->layer[j].src[k] == i && m->layer[j].kind == MODEL_CONV)
				return 1;
	return 0;
}

/* How many of the first n layers run by bands (0: none): whole blocks, up to a place where
 * one output alone crosses (its own), as far as a block still holds a big map. */
static int band_span(const model *m, int n)
{
	int last[MODEL_LEAN_MAX_LAYERS], end = 0, big = 0, grow = 0;
	const char *env = getenv("PETCNN_BAND");

	if (m->isa < ISA_AVX2 || (env && !strcmp(env, "0")))
		return 0;
	for (int i = 0; i < n; i++)
		last[i] = last_reader(m, i);
	for (int i = 0; i < n && band_kind(m, i); i++) {
		int cut = 1;

		if (m->layer[i].out_n * sizeof(float) >= BAND_MIN_BYTES)
			big |= conv_reads(m, i);
		for (int j = 0; j < i; j++)
			cut &= last[j] <= i;
		/* not after a big map: it would cross through memory whole; then on to the
		 * next place if a smaller one crosses there */
		if (cut && i >= 1 && m->layer[i].out_n * sizeof(float) < BAND_MIN_BYTES &&
		    (big || (end && end == grow && m->layer[i].out_n < m->layer[end - 1].out_n)))
			end = i + 1, grow = big ? end : 0, big = 0;
		else if (cut)
			grow = 0;
		if (m->layer[i].keep)   /* the caller reads it whole: only the last may be */
			break;
	}
	return end;
}

/* The first input row that output row r0 on of layer l reads (window layers; the
 * others read their own rows). */
static int band_lo(const model_layer *l, int r0)
{
	int top;

	if (l->kind != MODEL_CONV && l->kind != MODEL_POOL)
		return r0;
	top = r0 * l->g.sh - l->g.pt;
	return top < 0 ? 0 : top < l->g.h ? top : l->g.h - 1;
}

/* The rows of layer l's sources that its output rows [0, r) read. */
static int band_needs(const model_layer *l, int r)
{
	int hi;

	if (r <= 0 || (l->kind != MODEL_CONV && l->kind != MODEL_POOL))
		return r;
	hi = (r - 1) * l->g.sh - l->g.pt + l->g.kh;
	return hi < 0 ? 0 : hi > l->g.h ? l->g.h : hi;
}

/* The first row of band layer j that its readers read from their rows done on (init: no
 * later than this). */
static int band_first(const model *m, int j, const int *done, int init)
{
	for (int q = j + 1; q < m->band_n; q++)
		for (int k = 0; k < m->layer[q].nsrc; k++)
			if (m->layer[q].src[k] == j && band_lo(&m->layer[q], done[q]) < init)
				init = band_lo(&m->layer[q], done[q]);
	return init;
}

/* The rows of band layer j its readers' rows up to want need (init: at least these). */
static int band_wants(const model *m, int j, const int *want, int init)
{
	for (int q = j + 1; q < m->band_n; q++)
		for (int k = 0; k < m->layer[q].nsrc; k++)
			if (m->layer[q].src[k] == j && band_needs(&m->layer[q], want[q]) > init)
				init = band_needs(&m->layer[q], want[q]);
	return init;
}

static void band_layer(model *m, int i, int b, int r0, int r1, float *mem, const int *base);

/* Rows [lo, hi) of image b's last band layer: each step the last makes band_rows more
 * rows, and each layer below it first the rows its readers' new rows need (from the first
 * they read: a part of an image makes the rows at its seam again), into a ring of band_cap
 * rows in the thread's memory mem (never wrapped: the rows still to be read move to its
 * start when the next would pass its end). With live set, only the plan: live[j] the most
 * rows of layer j ever held at once. */
static void band_rows(model *m, int b, int lo, int hi, float *mem, int *live, double *t)
{
	int done[MODEL_LEAN_MAX_LAYERS], want[MODEL_LEAN_MAX_LAYERS], base[MODEL_LEAN_MAX_LAYERS];
	int last = m->band_n - 1;

	done[last] = lo;
	for (int j = last - 1; j >= 0; j--)
		done[j] = band_first(m, j, done, m->layer[j].oh);
	memcpy(base, done, sizeof base[0] * (size_t)m->band_n);
	while (done[last] < hi) {
		want[last] = done[last] + m->band_rows < hi ? done[last] + m->band_rows : hi;
		for (int j = last - 1; j >= 0; j--)
			want[j] = band_wants(m, j, want, done[j]);
		for (int j = 0; j <= last; j++) {
			model_layer *l = &m->layer[j];
			int keep;

			if (want[j] <= done[j])
				continue;
			keep = band_first(m, j, done, done[j]);
			if (live && j < last && want[j] - keep > live[j])
				live[j] = want[j] - keep;
			if (!live && j < last && want[j] - base[j] > l->band_cap) {
				size_t row = (size_t)l->ow * l->oc;

				memmove(mem + l->band_off, mem + l->band_off + (keep - base[j]) * row,
					sizeof *mem * (done[j] - keep) * row);
				base[j] = keep;
			}
			if (!live) {
				double t0 = t ? now() : 0;

				band_layer(m, j, b, done[j], want[j], mem, base);
				if (t)
					t[j] += now() - t0;
			}
			done[j] = want[j];
		}
	}
}

/* Plans the bands over the first e layers (band_span's): their rows a step, and each
 * thread's memory: the scratch, then each layer's ring (the last's output stays whole,
 * for the layers after). */
static int band_plan(model *m, int e, char *err)
{
	size_t per_row = 0, ws = 0, off;
	int last = e - 1, live[MODEL_LEAN_MAX_LAYERS] = { 0 };

	if (!e)
		return 0;
	for (int i = 0; i < e; i++) {
		model_layer *l = &m->layer[i];
		size_t k;

		/* a step makes about oh / oh_last rows of each layer for a row of the last */
		per_row += (l->out_n * sizeof(float) + m->layer[last].oh - 1) / m->layer[last].oh;
		if (l->kind != MODEL_CONV)
			continue;
		if ((k = conv2d_workspace(&l->g, 1)) > ws)
			ws = k;
		/* made here, where a lack of memory can be told (direct_ready only fills it) */
		if ((k = conv2d_direct_floats(&l->plan)) && !l->direct &&
		    !(l->direct = mem_calloc64(k, sizeof *l->direct)))
			return err_set(err, "model: cannot allocate %zu floats", k);
	}
	m->band_rows = (int)(BAND_BUDGET_BYTES / per_row);
	m->band_rows = m->band_rows < 1 ? 1 : m->band_rows;
	m->band_n = e;
	/* the rings' sizes for an image in any number of parts model_set_threads may ask for */
	for (int parts = 1; parts <= BAND_MAX_PARTS; parts++)
		for (int p = 0; p < parts; p++)
			band_rows(m, 0, m->layer[last].oh * p / parts, m->layer[last].oh * (p + 1) / parts,
				  NULL, live, NULL);
	off = (ws + 15) / 16 * 16;
	for (int i = 0; i < last; i++) {
		model_layer *l = &m->layer[i];

		/* room for twice what is live, so that rows move once every few steps */
		l->band_cap = 2 * live[i] < l->oh ? 2 * live[i] : l->oh;
		l->band_off = off;
		off += ((size_t)l->band_cap * l->ow * l->oc + 15) / 16 * 16;
	}
	m->band_stride = off;
	m->band_threads = m->threads;
	if (!(m->band_mem = alloc_lines(off * (size_t)m->threads, err)))
		return m->band_n = 0, -1;
	for (int i = 0; i < last; i++) {
		mem_free64(m->layer[i].out);
		m->layer[i].out = NULL;
		m->layer[i].transient = 1;
	}
	return 0;
}

/* Plans the lean forward (model_lean) for the model as it is. */
static int lean_plan(model *m, char *err)
{
	int n, until[MODEL_LEAN_BUFS], nbuf = 0, end = 0, whole = 0, band;
	size_t size[MODEL_LEAN_BUFS] = { 0 };

	if (!(n = lean_span(m)))
		return 0;
	if (m->train) {
		/* the lean layers end at the highest cut below every trainable layer (the
		 * feature cache's, forwards run to and from it): no backward reads an output
		 * below it, since every layer above reads only from the cut or above. With
		 * none (nothing frozen) they keep every output whole for the backward, and
		 * run in micro-batches all the same: a layer reads its input from cache, not
		 * memory, just after it was written */
		int cut = model_cache_cut(m, 1.0f, 1.0f);

		whole = cut < 0;
		if (!whole && n > cut + 1)
			n = cut + 1;
	}
	lean_segments(m, n);
	if (whole) {
		m->lean_n = n;
		return 0;
	}
	/* a layer whose output may pass keeps its micro-batch's output in a buffer that a
	 * later such layer takes over once its last reader has run; the band layers' pass in
	 * their threads' memory, and the last of them stays whole */
	band = band_span(m, n);
	for (int i = band; i < n - 1; i++) {
		model_layer *l = &m->layer[i];
		size_t need = (size_t)m->lean_seg_mb[lean_seg_of(m, i)] * l->out_n;
		int r, b = 0;

		if (!may_pass(m, i, &r))
			continue;
		while (b < nbuf && until[b] >= i)
			b++;
		if (b == MODEL_LEAN_BUFS)
			continue;       /* more branches live at once than we keep buffers for */
		if (b == nbuf)
			nbuf++;
		until[b] = r;
		size[b] = need > size[b] ? need : size[b];
		l->transient = b + 1;   /* its buffer's index + 1, for now */
		if (r + 1 > end)
			end = r + 1;
	}
	for (int b = 0; b < nbuf; b++)
		if (!(m->lean_buf[b] = alloc_lines(size[b], err))) {
			for (int i = 0; i < n; i++)
				m->layer[i].transient = 0;
			for (int k = 0; k < b; k++)
				mem_free64(m->lean_buf[k]), m->lean_buf[k] = NULL;
			m->lean_nseg = 0;
			return -1;
		}
	for (int i = 0; i < end; i++) {
		model_layer *l = &m->layer[i];

		if (l->transient) {
			mem_free64(l->out);
			l->out = m->lean_buf[l->transient - 1];
			l->transient = 1;
		}
	}
	/* past the last transient output's last reader, micro-batches would gain nothing */
	m->lean_nbuf = nbuf;
	m->lean_n = nbuf && end > band ? end : band;
	while (m->lean_nseg > 1 && m->lean_seg_end[m->lean_nseg - 2] >= m->lean_n)
		m->lean_nseg--;
	if (!m->lean_n)
		m->lean_nseg = 0;
	else
		m->lean_seg_end[m->lean_nseg - 1] = m->lean_n;
	return band_plan(m, band, err);
}

/* Back to whole-batch buffers for every output (before gradients change which may pass). */
static int lean_undo(model *m, char *err)
{
	float *whole[MODEL_LEAN_MAX_LAYERS];
	int n = m->lean_n;

	if (!n)
		return 0;
	for (int i = 0; i < n; i++) {
		whole[i] = NULL;
		if (m->layer[i].transient &&
		    !(whole[i] = alloc_lines((size_t)m->max_batch * m->layer[i].out_n, err))) {
			while (i-- > 0)
				mem_free64(whole[i]);
			return -1;
		}
	}
	for (int i = 0; i < n; i++)
		if (m->layer[i].transient)
			m->layer[i].out = whole[i], m->layer[i].transient = 0;
	for (int b = 0; b < m->lean_nbuf; b++)
		mem_free64(m->lean_buf[b]), m->lean_buf[b] = NULL;
	mem_free64(m->band_mem);
	m->band_mem = NULL;
	m->lean_n = m->lean_nbuf = m->lean_nseg = m->band_n = 0;
	return 0;
}

void model_keep(model *m, int layer)
{
	if (layer >= 0 && layer < m->nlayer)
		m->layer[layer].keep = 1;
}

int model_lean(model *m, char *err)
{
	const char *env = getenv("PETCNN_LEAN");

	if (m->act_grad || m->lean_want || (env && !strcmp(env, "0")))
		return 0;
	m->lean_want = 1;
	return lean_plan(m, err);
}

int model_set_norm(model *m, const float mean[3], const float std[3], int bgr, char *err)
{
	for (int c = 0; c < 3; c++)
		if (!isfinite(mean[c]) || !isfinite(std[c]) || !(std[c] > 0))
			return err_set(err, "model: normalisation mean %g std %g (channel %d): std must be "
				       "positive and both finite", mean[c], std[c], c);
	memcpy(m->mean, mean, sizeof m->mean);
	memcpy(m->std, std, sizeof m->std);
	m->bgr = bgr != 0;
	return 0;
}

int model_norm_default(const model *m)
{
	for (int c = 0; c < 3; c++)
		if (m->mean[c] != 0 || m->std[c] != 1)
			return 0;
	return !m->bgr;
}

void model_free(model *m)
{
	for (int i = 0; m->layer && i < m->nlayer; i++) {
		model_layer *l = &m->layer[i];

		if (!in_place(m, l) && !l->transient)
			mem_free64(l->out);
		free(l->argmax);
		free(l->mask);
		free(l->aux);
		free(l->src);
		mem_free64(l->wino);
		mem_free64(l->wino_t);
		mem_free64(l->direct);
	}
	free_grads(m);
	free(m->layer);
	free(m->param);
	free(m->spec);
	mem_free64(m->params);
	mem_free64(m->grads);
	mem_free64(m->adam_m);
	mem_free64(m->adam_v);
	free(m->input);
	free(m->probs);
	free(m->dlogits);
	free(m->ginput);
	free(m->ws);
	for (int i = 0; i < m->lean_nbuf; i++)
		mem_free64(m->lean_buf[i]);
	mem_free64(m->band_mem);
	memset(m, 0, sizeof *m);
}
/* Initialisation runs over fixed blocks of each weight tensor, each block from its own rng
 * stream, so the values depend on the seed only, not on how many threads share the blocks. */
#define MODEL_INIT_BLOCK (1 << 14)
/* Intervals of the truncated normal's inverse-CDF table: linear interpolation between knots
 * is off by at most 3e-7 sd (at the 2 sd edges, where the curve bends most). */
#define MODEL_TN_BITS 14
#define MODEL_TN_KNOTS ((1 << MODEL_TN_BITS) + 1)

typedef struct {
	const model *m;
	enum model_init how;
	uint64_t seed;
	const double *tn;       /* [MODEL_TN_KNOTS] */
} init_job;

/* Standard normal CDF. */
static double phi_cdf(double x)
{
	return 0.5 * erfc(-x / sqrt(2.0));
}

/* t[i] = the standard normal truncated to [-2, 2] at probability i / (knots - 1): its
 * inverse CDF, by Newton's method from the previous knot (the density is >= 0.054 there). */
static void tn_table(double *t)
{
	double lo = phi_cdf(-2.0), span = phi_cdf(2.0) - lo, x = -2.0;

	t[0] = -2.0;
	for (int i = 1; i < MODEL_TN_KNOTS - 1; i++) {
		double p = lo + span * i / (MODEL_TN_KNOTS - 1);

		for (int it = 0; it < 50; it++) {
			double dx = (phi_cdf(x) - p) / (exp(-0.5 * x * x) / sqrt(2.0 * M_PI));

			x -= dx;
			if (fabs(dx) < 1e-15)
				break;
		}
		t[i] = x;
	}
	t[MODEL_TN_KNOTS - 1] = 2.0;
}

/* Block blk (elements [lo, hi)) of weight tensor l. Seed: TensorFlow's truncated_normal
 * (stddev 0.1) by inverse CDF from a 32-bit uniform (same distribution as redrawing beyond
 * 2 sd, without the redraws); He: Box-Muller, both values of each pair. */
static void init_block(const init_job *j, const model_layer *l, uint64_t blk, float *w, size_t lo, size_t hi)
{
	uint32_t u[MODEL_INIT_BLOCK];
	rng r;

	rng_stream(&r, j->seed, (0x1000 + (uint64_t)l->wparam) << 32 | blk);
	if (j->how == MODEL_INIT_SEED) {
		rng_x4 q;

		rng_x4_init(&q, &r);
		rng_x4_u32(&q, u, hi - lo);
		for (size_t i = lo; i < hi; i++) {
			uint32_t k = u[i - lo] >> (32 - MODEL_TN_BITS);
			double f = (u[i - lo] & ((1u << (32 - MODEL_TN_BITS)) - 1)) * (1.0 / (1u << (32 - MODEL_TN_BITS)));

			w[i] = (float)(0.1 * (j->tn[k] + f * (j->tn[k + 1] - j->tn[k])));
		}
		return;
	}
	double fan_in = l->kind == MODEL_CONV ? (double)l->g.kh * l->g.kw * (l->g.c / l->g.groups) : l->nin;
	double sd = sqrt(2.0 / fan_in);

	for (size_t i = lo; i < hi; i += 2) {
		double r1 = sqrt(-2.0 * log(1.0 - rng_uniform(&r))), a = 2.0 * M_PI * rng_uniform(&r);

		w[i] = (float)(r1 * cos(a) * sd);
		if (i + 1 < hi)
			w[i + 1] = (float)(r1 * sin(a) * sd);
	}
}

/* Worker k of n takes blocks k, k + n, ... counted over all tensors. */
static void init_worker(void *ctx, int k, int nthreads)
{
	const init_job *j = ctx;
	const model *m = j->m;
	uint64_t n = 0;

	for (int i = 0; i < m->nlayer; i++) {
		const model_layer *l = &m->layer[i];

		if (l->wparam < 0 || l->kind == MODEL_BN)
			continue;
		const model_param *pw = &m->param[l->wparam];

		for (size_t lo = 0, blk = 0; lo < pw->n; lo += MODEL_INIT_BLOCK, blk++, n++)
			if (n % (uint64_t)nthreads == (uint64_t)k)
				init_block(j, l, blk, m->params + pw->off, lo,
					   pw->n - lo < MODEL_INIT_BLOCK ? pw->n : lo + MODEL_INIT_BLOCK);
	}
}

void model_init_params(model *m, enum model_init how, uint64_t seed)
{
	double tn[MODEL_TN_KNOTS];  /* 128 KB */
	init_job j = { .m = m, .how = how, .seed = seed, .tn = tn };

	if (how == MODEL_INIT_SEED)
		tn_table(tn);
	par_run(m->threads, init_worker, &j);
	for (int i = 0; i < m->nlayer; i++) {
		const model_layer *l = &m->layer[i];

		if (l->bparam < 0)
			continue;
		const model_param *pb = &m->param[l->bparam];
		float bias = how == MODEL_INIT_SEED && l->kind == MODEL_DENSE ? 1.0f : 0.0f;

		for (size_t k = 0; k < pb->n; k++)
			m->params[pb->off + k] = bias;
		/* batch norm starts as the identity */
		for (size_t k = 0; l->kind == MODEL_BN && k < pb->n; k++)
			m->params[m->param[l->wparam].off + k] = 1.0f;
	}
	model_params_changed(m);
}

void model_params_changed(model *m)
{
	for (int i = 0; i < m->nlayer; i++)
		m->layer[i].wino_ok = m->layer[i].wino_t_ok = m->layer[i].direct_ok = 0;
}

/* After an optimiser step, which leaves frozen layers as they were: their Winograd weights
 * stay. Made again every step, a frozen ResNet-18's took 17 ms for each 512x512 layer (4x
 * its 3x3 weights, 38 MB written), 60 of a 155 ms step at 224, batch 8, on a Zen 4. */
static void trained_changed(model *m)
{
	for (int i = 0; i < m->nlayer; i++)
		if (!m->layer[i].frozen)
			m->layer[i].wino_ok = m->layer[i].wino_t_ok = m->layer[i].direct_ok = 0;
}


const model_param *model_find_param(const model *m, const char *name)
{
	for (int i = 0; i < m->nparam; i++)
		if (!strcmp(m->param[i].name, name))
			return &m->param[i];
	return NULL;
}

int model_find_layer(const model *m, const char *name)
{
	for (int i = m->nlayer - 1; i >= 0; i--)
		if (!strcmp(m->layer[i].name, name))
			return i;
	return -1;
}

void model_train(model *m, float keep_conv, float keep_fc, rng *r)
{
	m->training = 1;
	m->keep[0] = keep_conv, m->keep[1] = keep_fc;
	m->drop_rng = r;
}

void model_share(model *m, int lo, int of)
{
	m->share_lo = lo, m->share_of = of;
}

void model_eval(model *m)
{
	m->training = 0;
}

static const float *layer_in(const model *m, int src)
{
	return src == MODEL_INPUT ? m->input : m->layer[src].out;
}

static const float *param(const model *m, int p)
{
	return p >= 0 ? m->params + m->param[p].off : NULL;
}

/* Whether l's forward runs by Winograd (wherever its plan allows), its transformed weights
 * made if need be: again after every update of a layer that trains, never for a frozen
 * one (they are 4x its 3x3 weights: 0.03 ms for 64x64 channels, 4 for 512x512 on 2
 * threads of a Zen 4). Its outputs are the direct sums' within rounding (~1e-6 of the
 * terms' magnitudes); the backward's input gradient runs by Winograd too (wino_t_ready),
 * and its weight gradient (conv2d_run_backward_wino). Without memory for them, the direct
 * kernels serve. */
static int wino_ready(model *m, model_layer *l)
{
	if (!l->plan.wino || m->no_wino)
		return 0;
	/* on a line, so that a trained layer's remakes store in whole zmm (convwino_pack):
	 * malloc's 16-byte offset left them xmm stores, ResNet-18's trained layer4 3x3
	 * forwards 7.8-8.8 ms against 6.9-7.2 (an Intel Xeon, AVX-512, 2 threads) */
	if (!l->wino && !(l->wino = mem_calloc64(conv2d_wino_floats(&l->plan), sizeof *l->wino)))
		return 0;
	if (!l->wino_ok)
		conv2d_pack_wino(&l->plan, l->wino, param(m, l->wparam));
	l->wino_ok = 1;
	return 1;
}

/* Layer l's turned weights for din by Winograd, made if need be; NULL: the direct kernels
 * serve (none, or no memory for them). PETCNN_WINOGRAD=0 is its caller's: it takes
 * conv2d_run_backward instead, dw included. */
static const float *wino_t_ready(model *m, model_layer *l)
{
	if (!l->plan.wino_t)
		return NULL;
	if (!l->wino_t && !(l->wino_t = mem_calloc64(conv2d_wino_t_floats(&l->plan), sizeof *l->wino_t)))
		return NULL;
	if (!l->wino_t_ok)
		conv2d_pack_wino_t(&l->plan, l->wino_t, param(m, l->wparam), m->ws);
	l->wino_t_ok = 1;
	return l->wino_t;
}

/* Layer l's weights laid out for the direct kernels' forward, made if need be: once per
 * set of weights, as Winograd's are, where every forward (every image's, in a lean pass)
 * had laid them out again in the scratch, on one thread below 1 MB while the other
 * waited: MobileNetV2's 1x1s, ~1 ms a batch of 10 at 224 (perf: 1.5% of cnn-eval's
 * samples). Again after every update of a layer that trains. NULL: the kernels read the
 * weights as they are, or there is no memory for them (conv2d_run_forward then lays them
 * out in the scratch, as before). */
static const float *direct_ready(model *m, model_layer *l)
{
	size_t n = conv2d_direct_floats(&l->plan);

	/* the layout is the geometry's and the ISA's, which the model keeps for its life */
	if (!n || (!l->direct && !(l->direct = mem_calloc64(n, sizeof *l->direct))))
		return NULL;
	if (!l->direct_ok)
		conv2d_pack_direct(&l->plan, l->direct, param(m, l->wparam));
	l->direct_ok = 1;
	return l->direct;
}

/* g narrowed to output rows [r0, r1) and the input rows they read, from lo on (band_lo):
 * the same sums, on a map of those rows alone (kernels read nothing past h, as they read
 * nothing past the padded edge). */
static void band_geom(const model_layer *l, int r0, int r1, geom *sub, int lo)
{
	const geom *g = &l->g;
	int hi = band_needs(l, r1);

	*sub = *g;
	sub->h = hi > lo ? hi - lo : 1;
	sub->pt = lo - (r0 * g->sh - g->pt);
	sub->oh = r1 - r0;
	sub->pb = r1 == g->oh ? g->pb : 0;
}

typedef struct {
	model *m;
	int B, parts;           /* images, and the parts of rows each is made in */
	double *t;              /* the first worker's seconds in each layer (NULL: none) */
} band_job;

/* Layer i's output rows [r0, r1) of image b, on one thread (mem: its band memory, base:
 * the first row each ring holds). */
static void band_layer(model *m, int i, int b, int r0, int r1, float *mem, const int *base)
{
	const model_layer *l = &m->layer[i];
	const float *in[2], *w = param(m, l->wparam), *bias = param(m, l->bparam);
	size_t row = (size_t)l->ow * l->oc, n = (size_t)(r1 - r0) * row;
	float *out = i == m->band_n - 1 ? l->out + (size_t)b * l->out_n + r0 * row
					: mem + l->band_off + (r0 - base[i]) * row;
	int lo = band_lo(l, r0);
	geom g;

	/* the sources' rows from lo on */
	for (int k = 0; k < l->nsrc && k < 2; k++) {
		const model_layer *s = l->src[k] == MODEL_INPUT ? NULL : &m->layer[l->src[k]];

		in[k] = s ? mem + s->band_off + (size_t)(lo - base[l->src[k]]) * s->ow * s->oc
			  : m->input + ((size_t)b * m->h + lo) * m->w * m->c;
	}
	switch (l->kind) {
	case MODEL_CONV:
	case MODEL_POOL:
		band_geom(l, r0, r1, &g, lo);
		if (l->kind == MODEL_POOL)
			maxpool_forward_isa(&g, out, NULL, in[0], 1, 1, m->isa);
		else if (l->plan.fwd_direct)
			convdirect_forward_packed(&g, out, in[0], l->direct ? l->direct : w, bias,
						  l->relu, NULL, 0, 1, 1, mem, m->isa);
		else
			convdw_forward(&g, out, in[0], w, bias, 1, l->relu, 1, m->isa);
		return;
	case MODEL_ADD:
		elt_add(out, in[0], in[1], n, l->relu, 1);
		return;
	case MODEL_BN:
		elt_affine_forward(out, in[0], w, bias, (size_t)(r1 - r0) * l->ow, l->oc, l->relu);
		return;
	case MODEL_RELU:
		elt_clip_forward(out, in[0], n, 0.0f, INFINITY);
		return;
	case MODEL_CLIP:
		elt_clip_forward(out, in[0], n, l->a[0], l->a[1]);
		return;
	case MODEL_LEAKY:
		elt_leaky_forward(out, in[0], n, l->a[0]);
		return;
	default:
		abort();        /* band_kind lets no other kind in */
	}
}

static void band_worker(void *ctx, int k, int n)
{
	const band_job *j = ctx;
	int oh = j->m->layer[j->m->band_n - 1].oh;
	long lo, hi;

	par_share((long)j->B * j->parts, k, n, &lo, &hi);
	for (long u = lo; u < hi; u++) {
		int b = (int)(u / j->parts), p = (int)(u % j->parts);

		band_rows(j->m, b, oh * p / j->parts, oh * (p + 1) / j->parts,
			  j->m->band_mem + (size_t)k * j->m->band_stride, NULL, k ? NULL : j->t);
	}
}

/* The band layers over a batch of B: an image per thread at a time, or where the images do
 * not share out evenly, parts of them (their weights laid out here first, on this thread:
 * the workers only read them). Training, for the profile: the bands' wall time shared out
 * over their layers as the first worker's time went. */
static void band_forward(model *m, int B)
{
	int n = m->threads < m->band_threads ? m->threads : m->band_threads;
	double t[MODEL_LEAN_MAX_LAYERS] = { 0 }, t0 = now(), sum = 0;
	band_job j = { m, B, B % n == 0 || B >= 4 * n || n > BAND_MAX_PARTS ? 1 : n,
		       m->training ? t : NULL };

	for (int i = 0; i < m->band_n; i++)
		if (m->layer[i].kind == MODEL_CONV && m->layer[i].plan.fwd_direct)
			direct_ready(m, &m->layer[i]);
	if (n > 1)
		blas_park();
	par_run(n < B * j.parts ? n : B * j.parts, band_worker, &j);
	if (!m->training)
		return;
	t0 = now() - t0;
	for (int k = 0; k < m->band_n; k++)
		sum += t[k];
	for (int k = 0; k < m->band_n; k++)
		m->layer[k].t_fwd += sum > 0 ? t0 * t[k] / sum : k == m->band_n - 1 ? t0 : 0;
}

/* Source src's output for images b0 on (a transient output holds those images only). */
static const float *src_at(const model *m, int src, int b0)
{
	if (src == MODEL_INPUT)
		return m->input + (size_t)b0 * m->h * m->w * m->c;
	return m->layer[src].out + (m->layer[src].transient ? 0 : (size_t)b0 * m->layer[src].out_n);
}

/* l's forward for images b0 .. b0 + B - 1 of the batch. */
static void forward_layer(model *m, model_layer *l, int b0, int B)
{
	const float *in = src_at(m, l->src[0], b0), *w = param(m, l->wparam), *b = param(m, l->bparam);
	const float *pw;
	size_t n = (size_t)B * l->out_n, rows = (size_t)B * l->oh * l->ow;
	size_t at = l->transient ? 0 : (size_t)b0 * l->out_n;
	float *out = l->out + at;

	switch (l->kind) {
	case MODEL_CONV:
		if ((l->wino_ran = wino_ready(m, l)))
			conv2d_run_wino(&l->plan, out, in, l->wino, b, B, l->relu, m->ws);
		else if ((pw = direct_ready(m, l)))
			conv2d_run_direct(&l->plan, out, in, pw, b, B, l->relu, m->ws);
		else
			conv2d_run_forward(&l->plan, out, in, w, b, B, l->relu, m->ws);
		break;
	case MODEL_POOL:
		/* the winners only where a backward may read them: a layer whose output
		 * gradient backward's plan leaves out (all below it frozen) never does */
		maxpool_forward_isa(&l->g, out, (m->train || m->act_grad) && l->grad != -1 ? l->argmax + at : NULL,
				    in, B, m->threads, m->isa);
		break;
	case MODEL_AVGPOOL:
		avgpool_forward(&l->g, out, in, B, l->incl, m->threads);
		break;
	case MODEL_GAP: {
		const model_layer *s = l->src[0] == MODEL_INPUT ? NULL : &m->layer[l->src[0]];

		gap_forward(out, in, B, s ? (long)s->oh * s->ow : (long)m->h * m->w, l->oc, m->threads);
		break;
	}
	case MODEL_DENSE:
		dense_forward(out, in, w, b, B, l->nin, l->nout, l->relu, m->threads, m->isa);
		break;
	case MODEL_DROP:        /* with dropout active, whole batches only (b0 0) */
		if (out != in)
			memcpy(out, in, sizeof *in * n);
		if (m->drop_active && m->share_of)
			dropout_forward_part(l->out, l->mask, (size_t)m->share_of * l->out_n,
					     (size_t)m->share_lo * l->out_n, n, m->keep[l->fc], m->drop_rng);
		else if (m->drop_active)
			dropout_forward(l->out, l->mask, n, m->keep[l->fc], m->drop_rng);
		break;
	case MODEL_ADD:
		elt_add(out, in, src_at(m, l->src[1], b0), n, l->relu, m->threads);
		break;
	case MODEL_CONCAT:
		for (int k = 0, off = 0; k < l->nsrc; k++) {
			int c = l->src[k] == MODEL_INPUT ? m->c : m->layer[l->src[k]].oc;

			elt_concat_forward(out, src_at(m, l->src[k], b0), rows, c, l->oc, off);
			off += c;
		}
		break;
	case MODEL_RELU:
		elt_clip_forward(out, in, n, 0.0f, INFINITY);
		break;
	case MODEL_CLIP:
		elt_clip_forward(out, in, n, l->a[0], l->a[1]);
		break;
	case MODEL_LEAKY:
		elt_leaky_forward(out, in, n, l->a[0]);
		break;
	case MODEL_BN:
		elt_affine_forward(out, in, w, b, rows, l->oc, l->relu);
		break;
	case MODEL_LRN:
		lrn_forward(out, l->aux + at, in, rows, l->oc, (int)l->a[0], l->a[1], l->a[2], l->a[3]);
		break;
	}
}

static void forward_timed(model *m, model_layer *l, int b0, int B)
{
	double t0 = now();

	forward_layer(m, l, b0, B);
	if (m->training)
		l->t_fwd += now() - t0;
}

/* Layers lo..hi-1; after model_lean the first m->lean_n span by span, a micro-batch at a time. */
static void forward_layers(model *m, int lo, int hi, int B)
{
	int i = lo;

	m->batch = B;
	m->drop_active = m->training && m->train;
	if (m->lean_n && lo < m->lean_n) {
		if (lo != 0 || hi < m->lean_n)
			abort();        /* model_lean's contract: whole forwards only */
		if (m->band_n) {
			band_forward(m, B);
			i = m->band_n;
		}
		for (int s = 0; s < m->lean_nseg; s++) {
			/* as few micro-batches as the span's size allows, of even sizes (10
			 * images at 9: 5 and 5, not 9 and 1) */
			int nb = (B + m->lean_seg_mb[s] - 1) / m->lean_seg_mb[s];

			if (m->lean_seg_end[s] <= i)
				continue;
			for (int q = 0; q < nb; q++)
				for (int k = i, b0 = B * q / nb; k < m->lean_seg_end[s]; k++)
					forward_timed(m, &m->layer[k], b0, B * (q + 1) / nb - b0);
			i = m->lean_seg_end[s];
		}
	}
	for (; i < hi; i++)
		forward_timed(m, &m->layer[i], 0, B);
}

/* The loss, or the probabilities, from the last layer's output. */
static void forward_end(model *m, const int *labels, int B)
{
	const model_layer *last = &m->layer[m->nlayer - 1];

	m->loss = 0, m->correct = 0;
	if (!m->classes)
		return;
	if (labels)
		m->loss = softmax_xent_share(m->probs, m->dlogits, &m->correct, last->out, labels, B, m->classes,
					     m->share_of ? m->share_of : B);
	else
		softmax_probs(m->probs, last->out, B, m->classes);
}

static void forward(model *m, const int *labels, int B)
{
	forward_layers(m, 0, m->nlayer, B);
	forward_end(m, labels, B);
}

typedef struct {
	float *out;
	const uint8_t *images;
	size_t npix;
	int c, bgr;
	float a[3], b[3];
} norm_job;

/* Worker k's share of the pixels: ~1.2 ms a batch of 10 at 224 on one thread, which the
 * other thread spent waiting. */
static void norm_share(void *ctx, int k, int n)
{
	const norm_job *j = ctx;
	const uint8_t *p = j->images;
	float *x = j->out;
	long lo, hi;

	par_share((long)j->npix, k, n, &lo, &hi);
	if (j->c == 3 && j->bgr) {
		for (long i = lo; i < hi; i++)
			for (int c = 0; c < 3; c++)
				x[i * 3 + c] = p[i * 3 + 2 - c] * j->a[c] + j->b[c];
	} else if (j->c == 3) {
		for (long i = lo; i < hi; i++)
			for (int c = 0; c < 3; c++)
				x[i * 3 + c] = p[i * 3 + c] * j->a[c] + j->b[c];
	} else {
		for (long i = lo * j->c; i < hi * j->c; i++)
			x[i] = p[i] * (1.0f / 255.0f);
	}
}

/* m->input from images [B, h, w, c] */
static void normalise(model *m, const uint8_t *images, int B)
{
	norm_job j = { .out = m->input, .images = images, .npix = (size_t)B * m->h * m->w,
		       .c = m->c, .bgr = m->bgr };

	/* x = p * a + b: for the seed's /255, a is 1/255 and b 0, the bits of p * (1 / 255) */
	for (int c = 0; c < 3; c++) {
		j.a[c] = m->std[c] == 1.0f ? 1.0f / 255.0f : 1.0f / (255.0f * m->std[c]);
		j.b[c] = -m->mean[c] / m->std[c];
	}
	par_run(j.npix * j.c < (1 << 16) ? 1 : m->threads, norm_share, &j);
}

void model_forward(model *m, const uint8_t *images, const int *labels, int B)
{
	normalise(m, images, B);
	forward(m, labels, B);
}

void model_forward_to(model *m, const uint8_t *images, int cut, int B)
{
	normalise(m, images, B);
	forward_layers(m, 0, cut + 1, B);
}

void model_forward_from(model *m, int cut, const float *feats, const int *labels, int B)
{
	model_layer *l = &m->layer[cut];

	if (feats != l->out)
		memcpy(l->out, feats, sizeof *feats * (size_t)B * l->out_n);
	forward_layers(m, cut + 1, m->nlayer, B);
	forward_end(m, labels, B);
}

void model_forward_float(model *m, const float *x, const int *labels, int B)
{
	memcpy(m->input, x, sizeof *x * (size_t)B * m->h * m->w * m->c);
	forward(m, labels, B);
}

/* Adam applied to a dense layer's weights row by row, as its backward makes each row of
 * their gradient: the row never goes to memory (model_backward_adam). */
typedef struct {
	model *m;
	const model_param *p;
	optim_adam_row_k k;
} adam_rows;

static void adam_row(void *ctx, long i, const float *g)
{
	const adam_rows *a = ctx;
	size_t n = (size_t)a->p->shape[1], at = a->p->off + (size_t)i * n;

	optim_adam_row(&a->k, a->m->params + at, g, a->m->adam_m + at, a->m->adam_v + at, n);
}

static float *grad_of(const model *m, int layer)
{
	int g = m->layer[layer].grad;

	return g == MODEL_GRAD_DLOGITS ? m->dlogits : g >= 0 ? m->gbuf[g] : NULL;
}

/* Where layer l's backward writes the gradient of its k-th input: straight into that
 * input's buffer if l is its last reader (met first going backwards), else into gtmp to
 * be added (sum_into). NULL: not needed. */
typedef struct {
	float *to;              /* where to write */
	float *sum_into;        /* then add it here (NULL: written in place) */
	const float *relu_y;    /* the input's ReLU output, when l may apply its mask */
	int relu_act;           /* ... of that activation (VEC_RELU, VEC_RELU6) */
	int src;
} din_target;

/* Whether layer l's output gradient may be masked by its ReLU before its own backward. A
 * pool's or dropout's ReLU is its input's: for activation gradients (grad_stop not -2)
 * that input masks it itself, for it may be the stop layer, whose output's gradient is
 * wanted unmasked (a max over zeros still passes it on to one of them, as PyTorch does). */
static int relu_masks(const model *m, const model_layer *l)
{
	return l->relu && !(m->grad_stop != -2 && (l->kind == MODEL_POOL || l->kind == MODEL_DROP));
}

static din_target din_for(model *m, const model_layer *l, int k, char *started, char *masked)
{
	din_target t = { .src = l->src[k] };
	int s = l->src[k], at = s == MODEL_INPUT ? m->nlayer : s;

	if (s == MODEL_INPUT && (!m->ginput || m->grad_stop != MODEL_INPUT))
		return t;
	if (s != MODEL_INPUT && m->layer[s].grad < 0)
		return t;
	t.to = s == MODEL_INPUT ? m->ginput : grad_of(m, s);
	if (started[at]) {
		t.sum_into = t.to;
		t.to = m->gtmp;
	} else if (s != MODEL_INPUT && s != m->grad_stop && relu_masks(m, &m->layer[s]) &&
		   (m->layer[s].relu == VEC_RELU || (m->layer[s].relu == VEC_RELU6 &&
						     l->kind == MODEL_CONV)) &&
		   m->layer[s].nuse == 1) {
		/* the only reader applies the input's ReLU mask as it writes (a ReLU6's only a
		 * conv does: MobileNetV2's 35, 61 M floats a step at batch 10 streamed once
		 * more by a pass of their own) */
		t.relu_y = m->layer[s].out;
		t.relu_act = m->layer[s].relu;
		masked[s] = 1;
	}
	started[at] = 1;
	return t;
}

static void din_done(const din_target *t, size_t n)
{
	if (t->sum_into)
		vec_add(t->sum_into, t->to, (long)n);
}

/* The backward; with fused, a streaming dense layer's weights are updated by fused->k as
 * their gradient is made (their grads left as they were) and fused->p names them (NULL if
 * no layer did). */
static void backward_to(model *m, adam_rows *fused, int top, int stop, int no_params);

static void backward(model *m, adam_rows *fused)
{
	backward_to(m, fused, m->nlayer - 1, -1, 0);
}

/* The backward from layer top (its output's gradient in place: the last layer's in
 * dlogits) down to (not through) layer stop (-1: all, and into ginput if there is one);
 * with no_params, no parameter gradients (the activations' alone). A layer's readers leave
 * stop's ReLU mask to it, so its gradient is that of its output. */
static void backward_to(model *m, adam_rows *fused, int top, int stop, int no_params)
{
	int B = m->batch, n = m->nlayer;
	char *started = calloc((size_t)(n + 1) * 2, 1), *masked = started + n + 1;

	if (fused)
		fused->p = NULL;
	if (!started)
		return;
	/* training's backward (no_params 0) never wants the input's gradient */
	m->grad_stop = no_params ? stop : -2;
	for (int i = top; i > stop; i--) {
		model_layer *l = &m->layer[i];
		float *g = grad_of(m, i), *dw = l->wparam >= 0 ? m->grads + m->param[l->wparam].off : NULL;
		float *db = l->bparam >= 0 ? m->grads + m->param[l->bparam].off : NULL;

		/* frozen: its parameters' gradient goes nowhere */
		if (l->frozen || no_params || !m->grads)
			dw = db = NULL;
		const float *w = param(m, l->wparam), *in = layer_in(m, l->src[0]);
		size_t nout = (size_t)B * l->out_n, rows = (size_t)B * l->oh * l->ow;
		size_t nin = l->src[0] == MODEL_INPUT ? (size_t)B * m->h * m->w * m->c
						       : (size_t)B * m->layer[l->src[0]].out_n;
		double t0 = now();
		din_target t;

		/* below top, a layer no reader gave a gradient to is not under top */
		if (!g || (i < top && !started[i]))
			continue;
		if (relu_masks(m, l) && !masked[i])
			elt_act_backward(g, g, l->out, nout, l->relu, m->threads);
		switch (l->kind) {
		case MODEL_CONV:
			/* the input of a conv after a ReLU is that ReLU's output: its mask */
			t = din_for(m, l, 0, started, masked);
			if (m->no_wino)
				conv2d_run_backward(&l->plan, t.to, dw, db, g, in, w, t.relu_y, t.relu_act, B,
						    0, m->ws);
			else
				conv2d_run_backward_wino(&l->plan, t.to, dw, db, g, in, w,
							 t.to ? wino_t_ready(m, l) : NULL, t.relu_y,
							 t.relu_act, B, 0, m->ws);
			din_done(&t, nin);
			break;
		case MODEL_DENSE:
			/* the input's ReLU mask applied by the dense backward: fc1's din only where
			 * dropout and the ReLU let the input through (a fifth at the seed's keep) */
			t = din_for(m, l, 0, started, masked);
			/* the first streaming dense layer going backwards: fc1 in the seed network */
			if (fused && !fused->p && !l->frozen) {
				fused->p = &m->param[l->wparam];
				if (dense_backward_rows(t.to, db, g, in, w, t.relu_y, B, l->nin, l->nout,
							adam_row, fused, m->threads, m->isa) == 0) {
					din_done(&t, nin);
					break;
				}
				fused->p = NULL;
			}
			dense_backward(t.to, dw, db, g, in, w, t.relu_y, B, l->nin, l->nout, 0, m->threads,
				       m->isa);
			din_done(&t, nin);
			break;
		case MODEL_POOL:
			/* pooling a ReLU's output: the pooled values are its mask */
			t = din_for(m, l, 0, started, masked);
			if (t.to)
				maxpool_backward_relu(&l->g, t.to, g, l->argmax, t.relu_y ? l->out : NULL, B,
						      m->threads);
			din_done(&t, nin);
			break;
		case MODEL_AVGPOOL:
			t = din_for(m, l, 0, started, masked);
			if (t.relu_y)
				masked[t.src] = 0;
			if (t.to)
				avgpool_backward(&l->g, t.to, g, B, l->incl, m->threads);
			din_done(&t, nin);
			break;
		case MODEL_GAP:
			t = din_for(m, l, 0, started, masked);
			if (t.relu_y)
				masked[t.src] = 0;
			if (t.to)
				gap_backward(t.to, g, B, (long)(nin / (size_t)B / (size_t)l->oc), l->oc, m->threads);
			din_done(&t, nin);
			break;
		case MODEL_DROP:
			t = din_for(m, l, 0, started, masked);
			if (t.relu_y)
				masked[t.src] = 0;
			/* in place, the gradient stays where it is (and is its input's) */
			if (t.to && m->drop_active)
				dropout_backward(t.to, g, l->mask, nout, m->keep[l->fc]);
			else if (t.to && t.to != g)
				memcpy(t.to, g, sizeof *g * nout);
			din_done(&t, nin);
			break;
		case MODEL_ADD:
		case MODEL_RELU:
			/* the ReLU's backward is done above; the rest passes the gradient on (to
			 * a source that has its buffer, in place) */
			for (int k = 0; k < l->nsrc; k++) {
				t = din_for(m, l, k, started, masked);
				if (t.relu_y)
					masked[t.src] = 0;
				if (t.to && t.to != g)
					memcpy(t.to, g, sizeof *g * nout);
				din_done(&t, nout);
			}
			break;
		case MODEL_CONCAT:
			for (int k = 0, off = 0; k < l->nsrc; k++) {
				int c = l->src[k] == MODEL_INPUT ? m->c : m->layer[l->src[k]].oc;

				t = din_for(m, l, k, started, masked);
				if (t.relu_y)
					masked[t.src] = 0;
				if (t.to)
					elt_concat_backward(t.to, g, rows, c, l->oc, off);
				din_done(&t, rows * (size_t)c);
				off += c;
			}
			break;
		case MODEL_CLIP:
		case MODEL_LEAKY:
		case MODEL_BN:
		case MODEL_LRN:
			t = din_for(m, l, 0, started, masked);
			if (t.relu_y)
				masked[t.src] = 0;
			if (l->kind == MODEL_CLIP && t.to)
				elt_clip_backward(t.to, g, in, nout, l->a[0], l->a[1]);
			else if (l->kind == MODEL_LEAKY && t.to)
				elt_leaky_backward(t.to, g, in, nout, l->a[0]);
			else if (l->kind == MODEL_BN)
				elt_affine_backward(t.to, dw, db, g, in, w, rows, l->oc, 0);
			else if (l->kind == MODEL_LRN && t.to)
				lrn_backward(t.to, g, in, l->out, l->aux, rows, l->oc, (int)l->a[0], l->a[1],
					     l->a[2], l->a[3]);
			din_done(&t, nin);
			break;
		}
		l->t_bwd += now() - t0;
		/* the layer's parameter gradients are final: data parallelism starts their sum */
		if (m->grad_ready && (dw || db))
			m->grad_ready(m->grad_ctx, i);
	}
	free(started);
}

void model_backward(model *m)
{
	backward(m, NULL);
}

/* The next run of trainable parameters at or after float `from`, less the range
 * [skip_lo, skip_hi) (the fused layer's): *lo, *hi; 0 when there is none. Parameters are
 * laid out in spec order, so a run spans consecutive trainable tensors. */
static int next_run(const model *m, size_t from, size_t skip_lo, size_t skip_hi, size_t *lo,
		    size_t *hi)
{
	int i = 0;

	while (i < m->nparam && (m->param[i].off + m->param[i].n <= from || m->layer[m->param[i].layer].frozen ||
				 (m->param[i].off >= skip_lo && m->param[i].off < skip_hi)))
		i++;
	if (i == m->nparam)
		return 0;
	*lo = m->param[i].off > from ? m->param[i].off : from;
	while (i < m->nparam && !m->layer[m->param[i].layer].frozen &&
	       !(m->param[i].off >= skip_lo && m->param[i].off < skip_hi))
		i++;
	*hi = i < m->nparam ? m->param[i].off : m->nparams;
	return 1;
}

/* Faults in the optimiser buffers' trainable parts in bulk (see prefault), once: the
 * first, and with adam Adam's v too (momentum never writes it). */
static void fault_state(model *m, int adam)
{
	size_t lo, hi;

	if (m->opt_faulted)
		return;
	m->opt_faulted = 1;
	for (size_t at = 0; next_run(m, at, 0, 0, &lo, &hi); at = hi) {
		prefault(m->adam_m + lo, (hi - lo) * sizeof(float), m->threads);
		if (adam)
			prefault(m->adam_v + lo, (hi - lo) * sizeof(float), m->threads);
	}
}

/* Adam over the trainable parameters but [skip_lo, skip_hi): each element's update is
 * its own, so the runs give the bits of one pass. */
static void adam_runs(model *m, const optim_adam *o, int64_t t, size_t skip_lo, size_t skip_hi)
{
	size_t lo, hi;

	if (m->threads > 1)
		blas_park();
	fault_state(m, 1);
	for (size_t at = 0; next_run(m, at, skip_lo, skip_hi, &lo, &hi); at = hi)
		optim_adam_step(o, t, m->params + lo, m->grads + lo, m->adam_m + lo, m->adam_v + lo, hi - lo,
				m->threads, m->isa);
}

void model_backward_adam(model *m, const optim_adam *o, int64_t t)
{
	adam_rows a = { .m = m };

	optim_adam_row_init(&a.k, o, t, m->isa);
	fault_state(m, 1);
	backward(m, &a);
	/* the rest: the parameters before and after the updated weights */
	if (a.p)
		adam_runs(m, o, t, a.p->off, a.p->off + a.p->n);
	else
		adam_runs(m, o, t, 0, 0);
	trained_changed(m);
}

void model_adam_step(model *m, const optim_adam *o, int64_t t)
{
	adam_runs(m, o, t, 0, 0);
	trained_changed(m);
}

void model_momentum_step(model *m, double lr, double mu)
{
	size_t lo, hi;

	if (m->threads > 1)
		blas_park();
	fault_state(m, 0);
	for (size_t at = 0; next_run(m, at, 0, 0, &lo, &hi); at = hi)
		optim_momentum_step(lr, mu, m->params + lo, m->grads + lo, m->adam_m + lo, hi - lo, m->threads);
	trained_changed(m);
}

/* The layers with parameters, space-separated into buf [n] (for messages). */
static void param_layers(const model *m, char *buf, size_t n)
{
	size_t used = 0;

	buf[0] = 0;
	for (int i = 0; i < m->nlayer && used < n; i++)
		if (m->layer[i].wparam >= 0)
			used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? " " : "", m->layer[i].name);
}

/* After the flags change: backward's plan and buffers. */
static int refreeze(model *m, char *err)
{
	/* a layer frozen again has trained since its Winograd weights were made */
	model_params_changed(m);
	/* which outputs a backward reads changes: the lean forward is planned again */
	if (lean_undo(m, err) || (m->train && alloc_grads(m, err)))
		return -1;
	return m->lean_want ? lean_plan(m, err) : 0;
}

int model_freeze(model *m, const char *names, char *err)
{
	char *copy = strdup(names), *save = NULL, list[ERR_MAX / 2];
	int rc = 0;

	if (!copy)
		return err_set(err, "out of memory");
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int i = model_find_layer(m, t);

		if (i < 0 || m->layer[i].wparam < 0) {
			param_layers(m, list, sizeof list);
			rc = err_set(err, "cannot freeze '%s': %s (layers with parameters: %s)", t,
				     i < 0 ? "no layer of that name" : "it has no parameters", list);
			break;
		}
		m->layer[i].frozen = 1;
	}
	free(copy);
	return rc ? rc : refreeze(m, err);
}

int model_freeze_below(model *m, const char *name, char *err)
{
	int at = model_find_layer(m, name);
	char list[ERR_MAX / 2];

	if (at < 0) {
		param_layers(m, list, sizeof list);
		return err_set(err, "cannot freeze below '%s': no layer of that name (layers with "
			       "parameters: %s)", name, list);
	}
	for (int i = 0; i < at; i++)
		if (m->layer[i].wparam >= 0)
			m->layer[i].frozen = 1;
	return refreeze(m, err);
}

int model_unfreeze(model *m, char *err)
{
	for (int i = 0; i < m->nlayer; i++)
		m->layer[i].frozen = 0;
	/* state of parameters frozen so far is faulted in at the next step */
	m->opt_faulted = 0;
	return refreeze(m, err);
}

int model_frozen_names(const model *m, char *buf, size_t n)
{
	size_t used = 0;
	int k = 0;

	if (n)
		buf[0] = 0;
	for (int i = 0; i < m->nlayer; i++) {
		if (!m->layer[i].frozen)
			continue;
		if (used < n)
			used += (size_t)snprintf(buf + used, n - used, "%s%s", k ? "," : "", m->layer[i].name);
		k++;
	}
	return k;
}

int model_param_frozen(const model *m, int p)
{
	return m->layer[m->param[p].layer].frozen;
}

int model_cache_cut(const model *m, float keep_conv, float keep_fc)
{
	int lim = m->nlayer - 1, any = 0;

	/* below the first trainable layer and the first dropout that draws */
	for (int i = 0; i < m->nlayer; i++) {
		const model_layer *l = &m->layer[i];

		any |= l->frozen;
		if ((l->wparam >= 0 && !l->frozen) || (l->kind == MODEL_DROP && (l->fc ? keep_fc : keep_conv) < 1.0f)) {
			lim = i;
			break;
		}
	}
	if (!any || !m->train)
		return -1;
	/* the highest cut that everything above reads only from (or from above) */
	for (int cut = lim - 1; cut >= 0; cut--) {
		int ok = 1;

		for (int j = cut + 1; j < m->nlayer && ok; j++)
			for (int k = 0; k < m->layer[j].nsrc && ok; k++)
				ok = m->layer[j].src[k] >= cut;
		if (ok)
			return cut;
	}
	return -1;
}

int model_grad_init(model *m, char *err)
{
	size_t B = (size_t)m->max_batch, maxact = (size_t)m->h * m->w * m->c;
	size_t nlast = m->layer[m->nlayer - 1].out_n;

	if (m->act_grad)
		return 0;
	/* every layer's output gradient can be had: every output is read back */
	if (lean_undo(m, err))
		return -1;
	m->lean_want = 0;
	for (int i = 0; i < m->nlayer; i++)
		if (m->layer[i].out_n > maxact)
			maxact = m->layer[i].out_n;
	m->act_grad = 1;
	free(m->dlogits);
	free(m->ginput);
	m->dlogits = m->ginput = NULL;
	if (alloc_grads(m, err) || !(m->dlogits = alloc_floats(B * nlast, sizeof(float), err)) ||
	    !(m->ginput = alloc_floats(B * (size_t)m->h * m->w * m->c, sizeof(float), err)) ||
	    (!m->gtmp && !(m->gtmp = alloc_floats(B * maxact, sizeof(float), err))))
		return -1;
	return 0;
}

void model_grad_at(model *m, const float *seed, int layer, float *out)
{
	model_grad_from(m, m->nlayer - 1, seed, layer, out);
}

void model_grad_from(model *m, int from, const float *seed, int layer, float *out)
{
	int B = m->batch;

	/* Layers above from are skipped: a layer below that they also read gets from's share
	 * alone, which is the gradient of from's output. */
	memcpy(grad_of(m, from), seed, sizeof *seed * (size_t)B * m->layer[from].out_n);
	backward_to(m, NULL, from, layer, 1);
	if (layer == MODEL_INPUT)
		memcpy(out, m->ginput, sizeof *out * (size_t)B * m->h * m->w * m->c);
	else
		memcpy(out, grad_of(m, layer), sizeof *out * (size_t)B * m->layer[layer].out_n);
}
