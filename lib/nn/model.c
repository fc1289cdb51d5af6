/* model: parsing the spec, laying out one parameter buffer, and running the layers of
 * lib/nn over buffers allocated once for the largest batch (nothing allocated per step). */
#include "nn/model.h"

#include <ctype.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "nn/blas.h"
#include "nn/conv2d.h"
#include "nn/dense.h"
#include "nn/dropout.h"
#include "nn/maxpool.h"
#include "nn/softmax.h"
#include "nn/vec.h"
#include "util/par.h"

#define MODEL_MAX_LAYERS 64

typedef struct {
	enum model_kind kind;
	char name[MODEL_NAME_MAX / 2];
	int kh, kw, stride, valid, linear, count, fc; /* count -1: the class count K */
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

static int parse_kxk(const char *s, int *kh, int *kw)
{
	char *end;
	long a = strtol(s, &end, 10), b;

	if (end == s || *end != 'x' || a < 1 || a > 4096)
		return -1;
	s = end + 1;
	b = strtol(s, &end, 10);
	if (end == s || *end || b < 1 || b > 4096)
		return -1;
	*kh = (int)a, *kw = (int)b;
	return 0;
}

static int parse_count(const char *s, int *out)
{
	char *end;
	long v;

	if (!strcmp(s, "K")) {
		*out = -1;
		return 0;
	}
	v = strtol(s, &end, 10);
	if (end == s || *end || v < 1 || v > 1 << 20)
		return -1;
	*out = (int)v;
	return 0;
}

/* One token: [NAME=]kind:arg:arg... */
static int parse_token(char *tok, layer_spec *ls, char *err)
{
	char *eq = strchr(tok, '='), *body = tok, *args[8];
	int nargs = 0;

	memset(ls, 0, sizeof *ls);
	if (eq) {
		*eq = 0;
		body = eq + 1;
		if (!valid_name(tok) || strlen(tok) >= sizeof ls->name)
			return err_set(err, "model spec: bad layer name '%s'", tok);
		strcpy(ls->name, tok);
	}
	char *save = NULL;

	for (char *p = strtok_r(body, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		if (nargs == 8)
			return err_set(err, "model spec: too many fields in '%s'", body);
		args[nargs++] = p;
	}
	if (!nargs)
		return err_set(err, "model spec: empty layer");
	int need_name = 1, i = 2;

	if (!strcmp(args[0], "conv")) {
		ls->kind = MODEL_CONV;
		if (nargs < 3 || parse_kxk(args[1], &ls->kh, &ls->kw) || parse_count(args[2], &ls->count) ||
		    ls->count < 0)
			return err_set(err, "model spec: conv wants conv:KHxKW:COUT, got '%s'", args[0]);
		i = 3;
	} else if (!strcmp(args[0], "maxpool")) {
		ls->kind = MODEL_POOL;
		need_name = 0;
		if (nargs < 2 || parse_kxk(args[1], &ls->kh, &ls->kw))
			return err_set(err, "model spec: maxpool wants maxpool:KHxKW");
	} else if (!strcmp(args[0], "dense")) {
		ls->kind = MODEL_DENSE;
		if (nargs < 2 || parse_count(args[1], &ls->count))
			return err_set(err, "model spec: dense wants dense:N or dense:K");
	} else if (!strcmp(args[0], "drop")) {
		ls->kind = MODEL_DROP;
		need_name = 0;
		if (nargs != 2 || (strcmp(args[1], "conv") && strcmp(args[1], "fc")))
			return err_set(err, "model spec: drop wants drop:conv or drop:fc");
		ls->fc = !strcmp(args[1], "fc");
		i = 2;
	} else {
		return err_set(err, "model spec: unknown layer kind '%s'", args[0]);
	}
	if (need_name && !eq)
		return err_set(err, "model spec: %s layer needs a NAME= (its variable scope)", args[0]);
	for (; i < nargs; i++) {
		const char *a = args[i];
		char *end;
		long s;

		if (!strcmp(a, "valid") && ls->kind != MODEL_DENSE) {
			ls->valid = 1;
		} else if (!strcmp(a, "same") && ls->kind != MODEL_DENSE) {
			ls->valid = 0;
		} else if (!strcmp(a, "linear") && ls->kind != MODEL_POOL) {
			ls->linear = 1;
		} else if (a[0] == 's' && ls->kind != MODEL_DENSE && (s = strtol(a + 1, &end, 10), end != a + 1) &&
			   !*end && s >= 1 && s <= 4096) {
			ls->stride = (int)s;
		} else {
			return err_set(err, "model spec: unknown option '%s' for %s", a, args[0]);
		}
	}
	if (ls->kind == MODEL_CONV && !ls->stride)
		ls->stride = 1;
	if (ls->kind == MODEL_POOL && !ls->stride)
		ls->stride = 0; /* = kernel, resolved per axis */
	return 0;
}

static int parse_spec(const char *spec, layer_spec *ls, int *n, char *err)
{
	char *copy = strdup(spec), *save = NULL;

	if (!copy)
		return err_set(err, "out of memory");
	*n = 0;
	for (char *tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
		if (*n == MODEL_MAX_LAYERS) {
			free(copy);
			return err_set(err, "model spec: more than %d layers", MODEL_MAX_LAYERS);
		}
		if (parse_token(tok, &ls[*n], err)) {
			free(copy);
			return -1;
		}
		(*n)++;
	}
	free(copy);
	if (!*n)
		return err_set(err, "model spec: no layers");
	for (int i = 0; i < *n; i++) {
		int last = i == *n - 1;

		if (last && (ls[i].kind != MODEL_DENSE || ls[i].count != -1))
			return err_set(err, "model spec: the last layer must be NAME=dense:K (the logits)");
		if (!last && ls[i].count == -1)
			return err_set(err, "model spec: only the last layer may have K outputs");
	}
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

static int add_param(model *m, const char *scope, const char *what, int blk, int idx,
		     int ndim, const int64_t *shape, char *err)
{
	model_param *p = &m->param[m->nparam];
	size_t n = 1;

	p->ndim = ndim;
	for (int i = 0; i < ndim; i++) {
		p->shape[i] = shape[i];
		if (!mul_ok(&n, n, (size_t)shape[i]))
			return err_set(err, "model: layer %s too large", scope);
	}
	snprintf(p->name, sizeof p->name, "%s/%s%d_%d", scope, what, blk, idx);
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

/* Shapes, names and parameter offsets for every layer. */
static int build_layers(model *m, const layer_spec *ls, int n, char *err)
{
	int h = m->h, w = m->w, c = 3, blk = 1, idx = 0, last_param = -1;

	for (int i = 0; i < n; i++) {
		model_layer *l = &m->layer[i];
		const layer_spec *s = &ls[i];

		l->kind = s->kind;
		l->relu = !s->linear && i != n - 1;
		l->fc = s->fc;
		l->wparam = l->bparam = -1;
		snprintf(l->name, sizeof l->name, "%s", s->name[0] ? s->name : s->kind == MODEL_DROP ? "dropout" : "pool");
		if (s->kind == MODEL_POOL) {
			int sh = s->stride ? s->stride : s->kh, sw = s->stride ? s->stride : s->kw;

			if (geom_init(&l->g, h, w, c, s->kh, s->kw, sh, sw, s->valid ? GEOM_VALID : GEOM_SAME, c, err))
				return -1;
			h = l->g.oh, w = l->g.ow;
			if (idx > 0)
				blk++, idx = 0;
		} else if (s->kind == MODEL_CONV) {
			int64_t ws[4] = { s->kh, s->kw, c, s->count }, bs[1] = { s->count };

			if (geom_init(&l->g, h, w, c, s->kh, s->kw, s->stride, s->stride,
				      s->valid ? GEOM_VALID : GEOM_SAME, s->count, err))
				return -1;
			h = l->g.oh, w = l->g.ow, c = s->count;
			idx++;
			if ((l->wparam = add_param(m, s->name, "weights", blk, idx, 4, ws, err)) < 0 ||
			    (l->bparam = add_param(m, s->name, "biases", blk, idx, 1, bs, err)) < 0)
				return -1;
			last_param = MODEL_CONV;
		} else if (s->kind == MODEL_DENSE) {
			int nout = s->count < 0 ? m->classes : s->count;
			int64_t nin = (int64_t)h * w * c;

			if (nin > INT32_MAX)
				return err_set(err, "model: %s input too large", s->name);
			if (last_param == MODEL_CONV && idx > 0)
				blk++, idx = 0;
			idx++;
			int64_t ws[2] = { nin, nout }, bs[1] = { nout };

			l->nin = (int)nin, l->nout = nout;
			if ((l->wparam = add_param(m, s->name, "weights", blk, idx, 2, ws, err)) < 0 ||
			    (l->bparam = add_param(m, s->name, "biases", blk, idx, 1, bs, err)) < 0)
				return -1;
			h = 1, w = 1, c = nout;
			last_param = MODEL_DENSE;
		}
		l->oh = h, l->ow = w, l->oc = c;
		l->out_n = (size_t)h * w * c;
	}
	return 0;
}

/* Faults in a fresh buffer that training writes in full at its first step anyway: in bulk
 * here, ~40 ms per 400 MB at 224 against ~225 ms of one-page faults inside the step. Only
 * the parameters and the first optimiser buffer: fc1's gradient is never written when
 * Adam is fused into its backward, and momentum never writes Adam's v, so those pages are
 * left untouched (400 MB each at 224). Advice only: a kernel without MADV_POPULATE_WRITE
 * (before 5.14) leaves them to fault as before. */
static void prefault(void *p, size_t bytes)
{
#ifdef MADV_POPULATE_WRITE
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), hi = (uintptr_t)p + bytes;
	uintptr_t lo = ((uintptr_t)p + page - 1) / page * page;

	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
#else
	(void)p, (void)bytes;
#endif
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

static int alloc_buffers(model *m, char *err)
{
	size_t B = (size_t)m->max_batch, maxact = (size_t)m->h * m->w * 3, wsn, K = (size_t)m->classes;

	if (!(m->params = alloc_floats(m->nparams, sizeof(float), err)))
		return -1;
	if (m->train && (!(m->grads = alloc_floats(m->nparams, sizeof(float), err)) ||
			 !(m->adam_m = alloc_floats(m->nparams, sizeof(float), err)) ||
			 !(m->adam_v = alloc_floats(m->nparams, sizeof(float), err))))
		return -1;
	if (m->train) {
		prefault(m->params, m->nparams * sizeof(float));
		prefault(m->adam_m, m->nparams * sizeof(float));
	}
	if (!(m->input = alloc_floats(B * maxact, sizeof(float), err)))
		return -1;
	for (int i = 0; i < m->nlayer; i++) {
		model_layer *l = &m->layer[i];
		size_t n = B * l->out_n;

		if (l->out_n > maxact)
			maxact = l->out_n;
		if (l->kind == MODEL_DROP) {
			/* in place on its input */
			l->out = i ? m->layer[i - 1].out : m->input;
			if (m->train && !(l->mask = alloc_floats(n, 1, err)))
				return -1;
			continue;
		}
		if (!(l->out = alloc_floats(n, sizeof(float), err)))
			return -1;
		if (l->kind == MODEL_POOL && !(l->argmax = alloc_floats(n, sizeof(int32_t), err)))
			return -1;
	}
	m->ws_n = wsn = conv_scratch(m, m->threads);
	if (!(m->ws = alloc_floats(wsn, sizeof(float), err)) ||
	    !(m->probs = alloc_floats(B * K, sizeof(float), err)))
		return -1;
	if (m->train && (!(m->dlogits = alloc_floats(B * K, sizeof(float), err)) ||
			 !(m->gbuf[0] = alloc_floats(B * maxact, sizeof(float), err)) ||
			 !(m->gbuf[1] = alloc_floats(B * maxact, sizeof(float), err))))
		return -1;
	return 0;
}

int model_init(model *m, const char *spec, int h, int w, int classes, int max_batch,
	       int train, char *err)
{
	layer_spec ls[MODEL_MAX_LAYERS];
	int n = 0;

	memset(m, 0, sizeof *m);
	if (h < 1 || w < 1 || classes < 1 || max_batch < 1)
		return err_set(err, "model: bad size %dx%d, %d classes, batch %d", h, w, classes, max_batch);
	if (parse_spec(spec, ls, &n, err) || isa_from_env(&m->isa, err))
		return -1;
	m->h = h, m->w = w, m->classes = classes, m->max_batch = max_batch, m->train = train;
	m->threads = 1;
	if (!(m->layer = calloc((size_t)n, sizeof *m->layer)) ||
	    !(m->param = calloc((size_t)n * 2, sizeof *m->param))) {
		model_free(m);
		return err_set(err, "out of memory");
	}
	m->nlayer = n;
	if (normalise_spec(m, spec, err) || build_layers(m, ls, n, err) || alloc_buffers(m, err)) {
		model_free(m);
		return -1;
	}
	return 0;
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
	m->threads = threads;
	return 0;
}

void model_free(model *m)
{
	for (int i = 0; i < m->nlayer; i++) {
		if (m->layer[i].kind != MODEL_DROP)
			free(m->layer[i].out);
		free(m->layer[i].argmax);
		free(m->layer[i].mask);
	}
	free(m->layer);
	free(m->param);
	free(m->spec);
	free(m->params);
	free(m->grads);
	free(m->adam_m);
	free(m->adam_v);
	free(m->input);
	free(m->probs);
	free(m->dlogits);
	free(m->gbuf[0]);
	free(m->gbuf[1]);
	free(m->ws);
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
	double fan_in = l->kind == MODEL_CONV ? (double)l->g.kh * l->g.kw * l->g.c : l->nin;
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

		if (l->wparam < 0)
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
	}
}

const model_param *model_find_param(const model *m, const char *name)
{
	for (int i = 0; i < m->nparam; i++)
		if (!strcmp(m->param[i].name, name))
			return &m->param[i];
	return NULL;
}

void model_forward(model *m, const uint8_t *images, const int *labels, int B, int train,
		   float keep_conv, float keep_fc, rng *r, double *loss, int *correct)
{
	size_t npix = (size_t)B * m->h * m->w * 3;
	const float *cur = m->input;

	for (size_t i = 0; i < npix; i++)
		m->input[i] = images[i] * (1.0f / 255.0f);
	m->batch = B;
	m->drop_active = train && m->train;
	for (int i = 0; i < m->nlayer; i++) {
		model_layer *l = &m->layer[i];
		const float *w = l->wparam >= 0 ? m->params + m->param[l->wparam].off : NULL;
		const float *b = l->bparam >= 0 ? m->params + m->param[l->bparam].off : NULL;
		double t0 = now();

		switch (l->kind) {
		case MODEL_CONV:
			conv2d_forward(&l->g, l->out, cur, w, b, B, l->relu, m->ws, m->threads, m->isa);
			break;
		case MODEL_POOL:
			maxpool_forward(&l->g, l->out, l->argmax, cur, B, m->threads);
			break;
		case MODEL_DENSE:
			dense_forward(l->out, cur, w, b, B, l->nin, l->nout, l->relu, m->threads);
			break;
		case MODEL_DROP:
			if (m->drop_active)
				dropout_forward(l->out, l->mask, B * l->out_n, l->fc ? keep_fc : keep_conv, r);
			break;
		}
		if (train)
			l->t_fwd += now() - t0;
		cur = l->out;
	}
	m->keep[0] = keep_conv, m->keep[1] = keep_fc;
	if (labels) {
		double L = softmax_xent(m->probs, m->dlogits, correct, cur, labels, B, m->classes);

		if (loss)
			*loss = L;
	} else {
		softmax_probs(m->probs, cur, B, m->classes);
	}
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

/* The backward; with fused, a streaming dense layer's weights are updated by fused->k as
 * their gradient is made (their grads left as they were) and fused->p names them (NULL if
 * no layer did). */
static void backward(model *m, adam_rows *fused)
{
	int B = m->batch, which = 0, masked = 0;
	float *g = m->dlogits;

	if (fused)
		fused->p = NULL;

	for (int i = m->nlayer - 1; i >= 0 && g; i--) {
		model_layer *l = &m->layer[i];
		const float *in = i ? m->layer[i - 1].out : m->input;
		float *din = i ? m->gbuf[which] : NULL;
		float *dw = l->wparam >= 0 ? m->grads + m->param[l->wparam].off : NULL;
		float *db = l->bparam >= 0 ? m->grads + m->param[l->bparam].off : NULL;
		const float *w = l->wparam >= 0 ? m->params + m->param[l->wparam].off : NULL;
		size_t n = (size_t)B * l->out_n;
		double t0 = now();

		/* a conv after this layer may have applied its ReLU's backward already */
		const float *relu_y = din && m->layer[i - 1].relu ? in : NULL;

		if (l->relu && !masked)
			vec_relu_backward(g, g, l->out, n);
		masked = 0;
		switch (l->kind) {
		case MODEL_CONV:
			/* the input of a conv after a ReLU is that ReLU's output: its mask */
			conv2d_backward_relu(&l->g, din, dw, db, g, in, w, relu_y, B, 0, m->ws, m->threads,
					     m->isa);
			masked = relu_y != NULL;
			break;
		case MODEL_DENSE:
			/* the first streaming dense layer going backwards: fc1 in the seed network */
			if (fused && !fused->p) {
				fused->p = &m->param[l->wparam];
				if (dense_backward_rows(din, db, g, in, w, B, l->nin, l->nout, adam_row,
							fused, m->threads) == 0)
					break;
				fused->p = NULL;
			}
			dense_backward(din, dw, db, g, in, w, B, l->nin, l->nout, 0, m->threads);
			break;
		case MODEL_POOL:
			/* pooling a ReLU's output: the pooled values are its mask */
			if (din)
				maxpool_backward_relu(&l->g, din, g, l->argmax, relu_y ? l->out : NULL, B,
						      m->threads);
			masked = relu_y != NULL;
			break;
		case MODEL_DROP:
			if (m->drop_active)
				dropout_backward(g, g, l->mask, n, m->keep[l->fc]);
			/* in place: the gradient stays where it is */
			din = i ? g : NULL;
			which ^= 1;
			break;
		}
		l->t_bwd += now() - t0;
		g = din;
		which ^= 1;
	}
}

void model_backward(model *m)
{
	backward(m, NULL);
}

void model_backward_adam(model *m, const optim_adam *o, int64_t t, int threads)
{
	adam_rows a = { .m = m };
	size_t lo, hi;

	optim_adam_row_init(&a.k, o, t);
	backward(m, &a);
	if (!a.p) {
		model_adam_step(m, o, t, threads);
		return;
	}
	/* the rest: the parameters before and after the updated weights */
	lo = a.p->off, hi = a.p->off + a.p->n;
	if (threads > 1)
		blas_park();
	optim_adam_step(o, t, m->params, m->grads, m->adam_m, m->adam_v, lo, threads);
	optim_adam_step(o, t, m->params + hi, m->grads + hi, m->adam_m + hi, m->adam_v + hi,
			m->nparams - hi, threads);
}

void model_adam_step(model *m, const optim_adam *o, int64_t t, int threads)
{
	if (threads > 1)
		blas_park();
	optim_adam_step(o, t, m->params, m->grads, m->adam_m, m->adam_v, m->nparams, threads);
}

void model_momentum_step(model *m, double lr, double mu, int threads)
{
	if (threads > 1)
		blas_park();
	optim_momentum_step(lr, mu, m->params, m->grads, m->adam_m, m->nparams, threads);
}
