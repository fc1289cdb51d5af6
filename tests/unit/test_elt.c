/* Unit tests for lib/nn/elt and lib/nn/lrn: every backward against central finite
 * differences in double, the clip's boundary rule (and clip 0..inf being our ReLU), the
 * affine's parameter gradients with and without acc, a concat round trip, LRN against its
 * ONNX formula, and the same bits from the vector body and the scalar tail.
 *   test_elt DIR   also write DIR/elt.npz for tests/elt_parity.py (PyTorch, float64). */
#include "check.h"
#include "array/npz.h"
#include "nn/elt.h"
#include "nn/lrn.h"
#include "nn/vec.h"
#include "util/errmsg.h"
#include "util/rng.h"

#include <stdlib.h>
#include <string.h>

/* L = sum(out * r) in double; gradients compared as max |numeric - analytic| / max
 * |analytic|. The pointwise layers are linear between kinks that the data keeps further
 * than FD_EPS away, so only float rounding is left (~1e-5); LRN is smooth, its central
 * difference off by ~eps^2 (measured ~1e-4 at eps 1e-2 with the parameters below). */
#define FD_EPS 1e-2f
#define GRAD_TOL 1e-3

typedef struct {
	int kind; /* 0 clip, 1 leaky, 2 affine, 3 lrn */
	float *x, *scale, *shift, *den;
	size_t rows;
	int c, size;
	float lo, hi, alpha, beta, bias;
} fd_layer;

static void fwd(fd_layer *l, float *out)
{
	size_t n = l->rows * l->c;

	switch (l->kind) {
	case 0: elt_clip_forward(out, l->x, n, l->lo, l->hi); break;
	case 1: elt_leaky_forward(out, l->x, n, l->alpha); break;
	case 2: elt_affine_forward(out, l->x, l->scale, l->shift, l->rows, l->c, 0); break;
	default: lrn_forward(out, l->den, l->x, l->rows, l->c, l->size, l->alpha, l->beta, l->bias);
	}
}

static double loss(fd_layer *l, float *out, const float *r, size_t nout)
{
	double s = 0;

	fwd(l, out);
	for (size_t i = 0; i < nout; i++)
		s += (double)out[i] * r[i];
	return s;
}

/* d loss / d p[i] for every i < n, numerically, against an [n] */
static double fd_err(fd_layer *l, float *p, const float *an, size_t n, const float *r, size_t nout)
{
	float *out = malloc(sizeof *out * nout);
	double maxerr = 0, maxan = 1e-6;

	for (size_t i = 0; i < n; i++) {
		float s = p[i];
		double lp, lm, num;

		p[i] = s + FD_EPS;
		lp = loss(l, out, r, nout);
		p[i] = s - FD_EPS;
		lm = loss(l, out, r, nout);
		p[i] = s;
		num = (lp - lm) / (2.0 * FD_EPS);
		if (fabs(num - an[i]) > maxerr)
			maxerr = fabs(num - an[i]);
		if (fabs(an[i]) > maxan)
			maxan = fabs(an[i]);
	}
	free(out);
	return maxerr / maxan;
}

static float *randv(rng *r, size_t n, float lo, float hi)
{
	float *v = malloc(sizeof *v * (n ? n : 1));

	for (size_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * rng_uniformf(r);
	return v;
}

/* random in [lo, hi], each at least 3 * FD_EPS from every kink k[0..nk) */
static float *away(rng *r, size_t n, float lo, float hi, const float *k, int nk)
{
	float *v = randv(r, n, lo, hi);

	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < nk; j++)
			if (fabsf(v[i] - k[j]) < 3 * FD_EPS)
				v[i] = k[j] + (v[i] < k[j] ? -3 : 3) * FD_EPS;
	return v;
}

static void test_add(rng *r)
{
	enum { N = 37, BIG = (1 << 17) + 37 };
	float *a = randv(r, N, -1, 1), *b = randv(r, N, -1, 1), out[N], one;
	float *ba = randv(r, BIG, -1, 1), *bb = randv(r, BIG, -1, 1), *b1 = malloc(sizeof *b1 * BIG),
	      *b3 = malloc(sizeof *b3 * BIG);
	int ok = 1, okr = 1, bits = 1;

	elt_add(out, a, b, N, 0, 1);
	for (int i = 0; i < N; i++)
		ok &= out[i] == a[i] + b[i];
	elt_add(out, a, b, N, 1, 1);
	for (int i = 0; i < N; i++) {
		okr &= out[i] == (a[i] + b[i] > 0 ? a[i] + b[i] : 0);
		elt_add(&one, a + i, b + i, 1, 1, 1);
		bits &= !memcmp(&one, out + i, sizeof one);
	}
	CHECK(ok, "add: a + b");
	CHECK(okr, "add:relu: max(a + b, 0)");
	CHECK(bits, "add:relu: the vector body and the scalar tail agree bit for bit");
	/* in place, into either operand */
	elt_add(a, a, b, N, 1, 1);
	CHECK(!memcmp(a, out, sizeof out), "add in place into a");
	/* shared over 3 threads (the last share ends inside a block of 16): every element
	 * written (-1 is no ReLU's output) */
	for (int i = 0; i < BIG; i++)
		b3[i] = -1;
	elt_add(b1, ba, bb, BIG, 1, 1);
	elt_add(b3, ba, bb, BIG, 1, 3);
	ok = 1;
	for (int i = 0; i < BIG; i++)
		ok &= b1[i] == (ba[i] + bb[i] > 0 ? ba[i] + bb[i] : 0);
	CHECK(ok && !memcmp(b1, b3, sizeof *b1 * BIG), "add: %d floats on 3 threads as on 1", BIG);
	free(a), free(b), free(ba), free(bb), free(b1), free(b3);
}

/* The activations' backward shared over 3 threads (the last share ends inside a block of
 * 16): every element the mask's, ReLU (0 < y) and ReLU6 (0 < y < 6), y spanning both
 * edges and landing on them, in place as the model runs it. */
static void test_act_backward(rng *r)
{
	enum { BIG = (1 << 17) + 37 };
	float *y = randv(r, BIG, -2, 8), *dy = randv(r, BIG, -1, 1), *d1 = malloc(sizeof *d1 * BIG);
	float *d3 = malloc(sizeof *d3 * BIG);

	for (int i = 0; i < BIG; i += 97)
		y[i] = i % 2 ? 6.0f : 0.0f;
	for (int act = VEC_RELU; act <= VEC_RELU6; act++) {
		int ok = 1;

		memcpy(d3, dy, sizeof *d3 * BIG);
		elt_act_backward(d1, dy, y, BIG, act, 1);
		elt_act_backward(d3, d3, y, BIG, act, 3);
		for (int i = 0; i < BIG; i++)
			ok &= d1[i] == (y[i] > 0 && (act == VEC_RELU || y[i] < 6) ? dy[i] : 0.0f);
		CHECK(ok && !memcmp(d1, d3, sizeof *d1 * BIG),
		      "act backward %d: the mask's, %d floats on 3 threads in place as on 1", act, BIG);
	}
	free(y), free(dy), free(d1), free(d3);
}

/* n elements of f at once and one at a time (the scalar tail only): the same bits */
static int same_bits_1(void (*f)(float *, const float *, size_t, float), const float *x,
		       size_t n, float p)
{
	float *all = malloc(sizeof *all * n), one;
	int ok = 1;

	f(all, x, n, p);
	for (size_t i = 0; i < n; i++) {
		f(&one, x + i, 1, p);
		ok &= !memcmp(&one, all + i, sizeof one);
	}
	free(all);
	return ok;
}

static void clip_6(float *y, const float *x, size_t n, float p)
{
	elt_clip_forward(y, x, n, -p, 6);
}

static void test_clip(rng *r)
{
	enum { N = 61 };
	static const float kinks[] = { -1, 1.5f };
	float *x = away(r, N, -3, 3, kinks, 2), *dy = randv(r, N, -1, 1), *rr = randv(r, N, -1, 1);
	float y[N], dx[N];
	fd_layer l = { .kind = 0, .x = x, .rows = N, .c = 1, .lo = -1, .hi = 1.5f };
	int ok = 1;

	elt_clip_forward(y, x, N, -1, 1.5f);
	for (int i = 0; i < N; i++)
		ok &= y[i] == (x[i] < -1 ? -1 : x[i] > 1.5f ? 1.5f : x[i]);
	CHECK(ok, "clip: min(max(x, lo), hi)");
	elt_clip_backward(dx, rr, x, N, -1, 1.5f);
	double e = fd_err(&l, x, dx, N, rr, N);
	CHECK(e < GRAD_TOL, "clip: dx off by %g (relative)", e);

	/* the boundary: exactly lo or hi blocks (PyTorch's hardtanh, ReLU6); an infinite bound
	 * blocks nothing */
	float b[4] = { -1, 1.5f, 0, 1 }, g[4] = { 1, 2, 3, 4 }, db[4];
	elt_clip_backward(db, g, b, 4, -1, 1.5f);
	CHECK(db[0] == 0 && db[1] == 0 && db[2] == 3 && db[3] == 4, "clip at lo, hi: %g %g %g %g",
	      db[0], db[1], db[2], db[3]);
	for (int i = 0; i < 4; i++)
		elt_clip_backward(db + i, g + i, b + i, 1, -1, 1.5f);
	CHECK(db[0] == 0 && db[1] == 0 && db[2] == 3 && db[3] == 4,
	      "clip at lo, hi, one at a time: %g %g %g %g", db[0], db[1], db[2], db[3]);
	float inf[2] = { INFINITY, -INFINITY };
	elt_clip_backward(db, g, inf, 2, -INFINITY, INFINITY);
	CHECK(db[0] == 1 && db[1] == 2, "clip -inf..inf passes everything: %g %g", db[0], db[1]);

	/* clip 0..inf is our ReLU: forward values, and the backward bits */
	float relu[N], gr[N], gc[N];
	memcpy(relu, x, sizeof relu);
	vec_bias_relu(relu, NULL, 1, N, 1);
	elt_clip_forward(y, x, N, 0, INFINITY);
	ok = 1;
	for (int i = 0; i < N; i++)
		ok &= y[i] == relu[i];
	CHECK(ok, "clip 0..inf forward is ReLU");
	vec_relu_backward(gr, dy, relu, N);
	elt_clip_backward(gc, dy, x, N, 0, INFINITY);
	CHECK(!memcmp(gr, gc, sizeof gr), "clip 0..inf backward is ReLU's");
	/* dx may be dy */
	memcpy(gc, dy, sizeof gc);
	elt_clip_backward(gc, gc, x, N, 0, INFINITY);
	CHECK(!memcmp(gr, gc, sizeof gr), "clip backward in place");

	CHECK(same_bits_1(clip_6, x, N, 0.5f), "clip: vector body and scalar tail agree");
	free(x);
	free(dy);
	free(rr);
}

static void test_leaky(rng *r)
{
	enum { N = 45 };
	static const float kinks[] = { 0 };
	float *x = away(r, N, -2, 2, kinks, 1), *rr = randv(r, N, -1, 1);
	float y[N], dx[N];
	fd_layer l = { .kind = 1, .x = x, .rows = N, .c = 1, .alpha = 0.2f };
	int ok = 1;

	elt_leaky_forward(y, x, N, 0.2f);
	for (int i = 0; i < N; i++)
		ok &= y[i] == (x[i] > 0 ? x[i] : 0.2f * x[i]);
	CHECK(ok, "leaky: x or alpha x");
	elt_leaky_backward(dx, rr, x, N, 0.2f);
	double e = fd_err(&l, x, dx, N, rr, N);
	CHECK(e < GRAD_TOL, "leaky: dx off by %g (relative)", e);
	/* x = 0 takes the alpha side, as in PyTorch */
	float z = 0, g = 5, dz;
	elt_leaky_backward(&dz, &g, &z, 1, 0.2f);
	CHECK(dz == 1.0f, "leaky at 0: %g", dz);
	CHECK(same_bits_1(elt_leaky_forward, x, N, 0.2f), "leaky: vector body and scalar tail agree");
	memcpy(y, rr, sizeof y);
	elt_leaky_backward(y, y, x, N, 0.2f);
	CHECK(!memcmp(y, dx, sizeof y), "leaky backward in place");
	free(x);
	free(rr);
}

static void test_affine_c(rng *r, size_t rows, int c)
{
	size_t n = rows * c;
	float *x = randv(r, n, -2, 2), *sc = randv(r, c, -1.5f, 1.5f), *sh = randv(r, c, -1, 1);
	float *rr = randv(r, n, -1, 1), *y = malloc(sizeof *y * n), *yr = malloc(sizeof *yr * n);
	float *dx = malloc(sizeof *dx * n), *ds = malloc(sizeof *ds * c), *db = malloc(sizeof *db * c);
	float *ds2 = malloc(sizeof *ds2 * c), *db2 = malloc(sizeof *db2 * c), *dx2 = malloc(sizeof *dx2 * n);
	fd_layer l = { .kind = 2, .x = x, .scale = sc, .shift = sh, .rows = rows, .c = c };
	char what[64];
	int ok = 1;

	elt_affine_forward(y, x, sc, sh, rows, c, 0);
	elt_affine_forward(yr, x, sc, sh, rows, c, 1);
	for (size_t i = 0; i < n; i++)
		ok &= y[i] == x[i] * sc[i % c] + sh[i % c] && yr[i] == (y[i] > 0 ? y[i] : 0);
	snprintf(what, sizeof what, "affine %zux%d", rows, c);
	CHECK(ok, "%s: forward x * scale + shift, then ReLU", what);

	elt_affine_backward(dx, ds, db, rr, x, sc, rows, c, 0);
	double ex = fd_err(&l, x, dx, n, rr, n), es = fd_err(&l, sc, ds, c, rr, n);
	double eb = fd_err(&l, sh, db, c, rr, n);
	CHECK(ex < GRAD_TOL && es < GRAD_TOL && eb < GRAD_TOL, "%s: dx %g dscale %g dshift %g", what,
	      ex, es, eb);

	/* acc adds; NULL skips; dx may be dy */
	for (int j = 0; j < c; j++)
		ds2[j] = db2[j] = 0.25f * j;
	elt_affine_backward(NULL, ds2, db2, rr, x, sc, rows, c, 1);
	ok = 1;
	for (int j = 0; j < c; j++)
		ok &= fabsf(ds2[j] - (0.25f * j + ds[j])) <= 1e-5f * (1 + fabsf(ds2[j])) &&
		      fabsf(db2[j] - (0.25f * j + db[j])) <= 1e-5f * (1 + fabsf(db2[j]));
	CHECK(ok, "%s: acc adds the parameter gradients", what);
	memcpy(ds2, ds, sizeof *ds * c);
	elt_affine_backward(NULL, ds2, NULL, rr, x, sc, rows, c, 0);
	CHECK(!memcmp(ds2, ds, sizeof *ds * c), "%s: dshift NULL leaves dscale the same", what);
	memcpy(dx2, rr, sizeof *dx2 * n);
	elt_affine_backward(dx2, ds2, db2, dx2, x, sc, rows, c, 0);
	CHECK(!memcmp(dx2, dx, sizeof *dx * n) && !memcmp(ds2, ds, sizeof *ds * c) &&
	      !memcmp(db2, db, sizeof *db * c), "%s: dx = dy in place, the sums from dy first", what);
	free(x), free(sc), free(sh), free(rr), free(y), free(yr), free(dx), free(ds), free(db);
	free(ds2), free(db2), free(dx2);
}

static void test_concat(rng *r)
{
	enum { R = 6, CA = 3, CB = 5, CO = 10 };
	float *a = randv(r, R * CA, -1, 1), *b = randv(r, R * CB, -1, 1), out[R * CO];
	float da[R * CA], dbk[R * CB];
	int ok = 1;

	for (int i = 0; i < R * CO; i++)
		out[i] = 99;
	elt_concat_forward(out, a, R, CA, CO, 0);
	elt_concat_forward(out, b, R, CB, CO, CA);
	for (int i = 0; i < R; i++)
		for (int j = 0; j < CO; j++)
			ok &= out[i * CO + j] == (j < CA ? a[i * CA + j] : j < CA + CB ? b[i * CB + j - CA] : 99);
	CHECK(ok, "concat: a then b along channels, the rest untouched");
	elt_concat_backward(da, out, R, CA, CO, 0);
	elt_concat_backward(dbk, out, R, CB, CO, CA);
	CHECK(!memcmp(da, a, sizeof da) && !memcmp(dbk, b, sizeof dbk), "concat backward: the slices back");
	free(a);
	free(b);
}

/* LRN by its ONNX definition, in double, from the spec's floor and ceil */
static double lrn_ref(const float *x, int c, int i, int size, double alpha, double beta, double bias)
{
	int lo = (int)fmax(0, i - floor((size - 1) / 2.0)), hi = (int)fmin(c - 1, i + ceil((size - 1) / 2.0));
	double sq = 0;

	for (int j = lo; j <= hi; j++)
		sq += (double)x[j] * x[j];
	return x[i] * pow(bias + alpha / size * sq, -beta);
}

/* A channel inside a long row (SSE, four at a time) gives the bits it gives as the middle
 * of a row of just its window (the scalar code for channels near an edge). */
static void test_lrn_bits(rng *r, int size, float beta)
{
	enum { C = 29 };
	int before = (size - 1) / 2, after = size / 2, okf = 1, okb = 1;
	float *x = randv(r, C, -2, 2), *dy = randv(r, C, -1, 1), y[C], den[C], dx[C];
	float ys[16], ds[16], dxs[16];

	lrn_forward(y, den, x, 1, C, size, 1.5f, beta, 1.25f);
	lrn_backward(dx, dy, x, y, den, 1, C, size, 1.5f, beta, 1.25f);
	for (int i = size; i + size < C; i++) {
		/* forward: x over i's window; backward: dy, y, den over the windows holding i */
		lrn_forward(ys, ds, x + i - before, 1, size, size, 1.5f, beta, 1.25f);
		okf &= !memcmp(&ys[before], &y[i], sizeof *y) && !memcmp(&ds[before], &den[i], sizeof *den);
		lrn_backward(dxs, dy + i - after, x + i - after, y + i - after, den + i - after, 1, size,
			     size, 1.5f, beta, 1.25f);
		okb &= !memcmp(&dxs[after], &dx[i], sizeof *dx);
	}
	CHECK(okf, "lrn size %d beta %g: forward, the same bits in and out of SSE", size, beta);
	CHECK(okb, "lrn size %d beta %g: backward, the same bits in and out of SSE", size, beta);
	free(x);
	free(dy);
}

static void test_lrn(rng *r)
{
	static const int cases[][3] = { { 1, 7, 4 }, { 2, 7, 4 }, { 3, 7, 4 }, { 5, 7, 4 }, { 5, 3, 3 },
					{ 4, 9, 2 }, { 5, 17, 2 }, { 2, 14, 2 } }; /* size, c, rows */

	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		int size = cases[k][0], c = cases[k][1];
		size_t rows = cases[k][2], n = rows * c;
		float *x = randv(r, n, -2, 2), *rr = randv(r, n, -1, 1), *y = malloc(sizeof *y * n);
		float *den = malloc(sizeof *den * n), *dx = malloc(sizeof *dx * n);
		fd_layer l = { .kind = 3, .x = x, .den = malloc(sizeof *den * n), .rows = rows, .c = c,
			       .size = size, .alpha = 1.5f, .beta = 0.75f, .bias = 1.25f };
		double maxe = 0;

		lrn_forward(y, den, x, rows, c, size, l.alpha, l.beta, l.bias);
		for (size_t i = 0; i < n; i++) {
			double want = lrn_ref(x + i / c * c, c, i % c, size, l.alpha, l.beta, l.bias);

			maxe = fmax(maxe, fabs(y[i] - want) / fmax(1e-3, fabs(want)));
		}
		CHECK(maxe < 1e-6, "lrn size %d c %d: forward off the ONNX formula by %g", size, c, maxe);
		lrn_backward(dx, rr, x, y, den, rows, c, size, l.alpha, l.beta, l.bias);
		double e = fd_err(&l, x, dx, n, rr, n);
		CHECK(e < GRAD_TOL, "lrn size %d c %d: dx off by %g (relative)", size, c, e);
		free(x), free(rr), free(y), free(den), free(dx), free(l.den);
	}
	test_lrn_bits(r, 5, 0.75f);
	test_lrn_bits(r, 4, 0.75f);
	test_lrn_bits(r, 3, 0.6f);
}

/* Parity data for tests/elt_parity.py: per case NAME, NAME/x [2,3,2,C] (NHWC), NAME/dy,
 * NAME/y and NAME/dx as our kernels give them, NAME/p the layer's numbers (f8), and for the
 * affine NAME/scale, NAME/shift, NAME/dscale, NAME/dshift. */
typedef struct {
	const char *name;
	int kind; /* 0 clip, 1 leaky, 2 affine (then ReLU if p[0]), 3 lrn */
	int c;
	float xlo, xhi;
	double p[4]; /* clip: lo, hi; leaky: alpha; affine: relu; lrn: size, alpha, beta, bias */
} parity_case;

static int add_f(npz *z, const char *pre, const char *what, const float *v, int ndim,
		 const int64_t *shape, char *err)
{
	char name[64];
	tensor t;

	snprintf(name, sizeof name, "%s/%s", pre, what);
	if (tensor_alloc(&t, DT_F4, ndim, shape, 0, err))
		return -1;
	memcpy(t.data, v, (size_t)tensor_nbytes(&t));
	return npz_add_move(z, name, &t, err);
}

static int parity_case_run(npz *z, const parity_case *pc, rng *r, char *err)
{
	enum { B = 2, H = 3, W = 2 };
	int c = pc->c, rc = -1;
	size_t rows = B * H * W, n = rows * c;
	int64_t shp[4] = { B, H, W, c }, cs[1] = { c }, ps[1] = { 4 };
	float *x = randv(r, n, pc->xlo, pc->xhi), *dy = randv(r, n, -1, 1);
	float *y = malloc(sizeof *y * n), *dx = malloc(sizeof *dx * n), *tmp = malloc(sizeof *tmp * n);
	float *sc = randv(r, c, -1.5f, 1.5f), *sh = randv(r, c, -1, 1);
	float ds[64], db[64];
	float lo = (float)pc->p[0], hi = (float)pc->p[1];
	tensor t;

	/* values right on a kink, where the convention shows: clip's bounds, leaky's 0 */
	if (pc->kind == 0)
		x[1] = lo, x[2] = hi, x[n - 1] = hi;
	if (pc->kind == 1)
		x[1] = 0, x[n - 2] = 0;
	switch (pc->kind) {
	case 0:
		elt_clip_forward(y, x, n, lo, hi);
		elt_clip_backward(dx, dy, x, n, lo, hi);
		break;
	case 1:
		elt_leaky_forward(y, x, n, lo);
		elt_leaky_backward(dx, dy, x, n, lo);
		break;
	case 2:
		/* as a graph runs bn:relu: the ReLU's backward by the output, then the affine's */
		elt_affine_forward(y, x, sc, sh, rows, c, pc->p[0] != 0);
		if (pc->p[0] != 0)
			vec_relu_backward(tmp, dy, y, n);
		else
			memcpy(tmp, dy, sizeof *tmp * n);
		elt_affine_backward(dx, ds, db, tmp, x, sc, rows, c, 0);
		break;
	default:
		lrn_forward(y, tmp, x, rows, c, (int)pc->p[0], (float)pc->p[1], (float)pc->p[2],
			    (float)pc->p[3]);
		lrn_backward(dx, dy, x, y, tmp, rows, c, (int)pc->p[0], (float)pc->p[1],
			     (float)pc->p[2], (float)pc->p[3]);
	}
	if (tensor_alloc(&t, DT_F8, 1, ps, 0, err))
		goto out;
	memcpy(t.data, pc->p, sizeof pc->p);
	char name[64];
	snprintf(name, sizeof name, "%s/p", pc->name);
	if (npz_add_move(z, name, &t, err) || add_f(z, pc->name, "x", x, 4, shp, err) ||
	    add_f(z, pc->name, "dy", dy, 4, shp, err) || add_f(z, pc->name, "y", y, 4, shp, err) ||
	    add_f(z, pc->name, "dx", dx, 4, shp, err))
		goto out;
	if (pc->kind == 2 &&
	    (add_f(z, pc->name, "scale", sc, 1, cs, err) || add_f(z, pc->name, "shift", sh, 1, cs, err) ||
	     add_f(z, pc->name, "dscale", ds, 1, cs, err) || add_f(z, pc->name, "dshift", db, 1, cs, err)))
		goto out;
	rc = 0;
out:
	free(x), free(dy), free(y), free(dx), free(tmp), free(sc), free(sh);
	return rc;
}

static int write_parity(const char *dir, rng *r, char *err)
{
	static const parity_case cases[] = {
		{ "clip6", 0, 5, -8, 8, { 0, 6 } },
		{ "clip", 0, 7, -2, 2, { -0.5, 1.25 } },
		{ "leaky", 1, 6, -2, 2, { 0.1 } },
		{ "affine", 2, 6, -2, 2, { 0 } },
		{ "affine_relu", 2, 13, -2, 2, { 1 } },
		{ "lrn1", 3, 7, -2, 2, { 1, 1.5, 0.75, 1.25 } },
		{ "lrn2", 3, 7, -2, 2, { 2, 1.5, 0.75, 1.25 } },
		{ "lrn3", 3, 7, -2, 2, { 3, 1.5, 0.75, 1.25 } },
		{ "lrn4", 3, 9, -2, 2, { 4, 2.0, 0.6, 0.5 } },
		{ "lrn5", 3, 7, -2, 2, { 5, 1.5, 0.75, 1.25 } },
		{ "lrn5_c3", 3, 3, -2, 2, { 5, 1.5, 0.75, 1.25 } },
		/* AlexNet's and GoogLeNet's numbers on ReLU outputs of their size */
		{ "lrn_alexnet", 3, 16, 0, 60, { 5, 1e-4, 0.75, 2 } },
		{ "lrn_googlenet", 3, 16, 0, 60, { 5, 1e-4, 0.75, 1 } },
	};
	char path[512];
	npz z;
	int rc = -1;

	npz_init(&z);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		if (parity_case_run(&z, &cases[i], r, err))
			goto out;
	snprintf(path, sizeof path, "%s/elt.npz", dir);
	rc = npz_write(&z, path, 0, err);
out:
	npz_free(&z);
	return rc;
}

int main(int argc, char **argv)
{
	char err[ERR_MAX];
	rng r;

	rng_seed(&r, 16);
	if (argc > 1) {
		if (write_parity(argv[1], &r, err)) {
			fprintf(stderr, "test_elt: %s\n", err);
			return 1;
		}
		return 0;
	}
	test_add(&r);
	test_act_backward(&r);
	test_clip(&r);
	test_leaky(&r);
	test_affine_c(&r, 7, 5);
	test_affine_c(&r, 3, 133);
	test_concat(&r);
	test_lrn(&r);
	return check_done("test_elt");
}
