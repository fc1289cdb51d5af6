/* Unit tests for lib/nn and lib/optim: every layer's backward against central finite
 * differences, TensorFlow's SAME/VALID geometry, the tiled conv against a naive one,
 * dropout statistics, and Adam/momentum against hand-computed steps. */
#include "check.h"
#include "nn/conv2d.h"
#include "nn/convdirect.h"
#include "nn/dense.h"
#include "nn/dropout.h"
#include "util/errmsg.h"
#include "nn/geom.h"
#include "nn/isa.h"
#include "nn/maxpool.h"
#include "nn/optim.h"
#include "nn/softmax.h"
#include "nn/vec.h"
#include "util/rng.h"

#include <stdlib.h>
#include <string.h>

/* Finite differences: L = sum(out * r) in double; gradients are compared as
 * max |numeric - analytic| / max |analytic|, which must stay below GRAD_TOL. The layers are
 * linear or piecewise linear between kinks kept further than FD_EPS away, so the only error
 * is float rounding (typically ~1e-5). */
#define FD_EPS 1e-2f
#define GRAD_TOL 1e-2

typedef struct {
	int kind; /* 0 conv, 1 pool, 2 dense, 3 dropout */
	geom g;
	float *in, *w, *b, *ws;
	int32_t *amax;
	uint8_t *mask;
	int B, nin, nout, relu, threads;
	float keep;
	uint8_t *pos;   /* ReLU pattern of the unperturbed output, to spot kink crossings */
	int crossed;
} layer;

static void fwd(layer *l, float *out)
{
	switch (l->kind) {
	case 0: conv2d_forward(&l->g, out, l->in, l->w, l->b, l->B, l->relu, l->ws, l->threads,
			       isa_best()); break;
	case 1: maxpool_forward(&l->g, out, l->amax, l->in, l->B, 1); break;
	case 2: dense_forward(out, l->in, l->w, l->b, l->B, l->nin, l->nout, l->relu, 1, isa_best()); break;
	default: {
		size_t n = (size_t)l->B * l->nin;

		/* replay the recorded mask so the function is deterministic */
		for (size_t i = 0; i < n; i++)
			out[i] = l->mask[i] ? l->in[i] / l->keep : 0;
	}
	}
}

static double loss(layer *l, float *out, const float *r, size_t nout)
{
	double s = 0;

	fwd(l, out);
	for (size_t i = 0; i < nout; i++) {
		s += (double)out[i] * r[i];
		if (l->pos && (out[i] > 0) != l->pos[i])
			l->crossed = 1;
	}
	return s;
}

static double fd_err(layer *l, float *x, const float *an, size_t n, float *out,
		     const float *r, size_t nout)
{
	double maxerr = 0, maxan = 1e-6;
	size_t skipped = 0;

	for (size_t i = 0; i < n; i++) {
		float s = x[i];
		double lp, lm, num;

		l->crossed = 0;
		x[i] = s + FD_EPS;
		lp = loss(l, out, r, nout);
		x[i] = s - FD_EPS;
		lm = loss(l, out, r, nout);
		x[i] = s;
		/* a ReLU input crossing zero within +-eps makes the difference meaningless */
		if (l->crossed) {
			skipped++;
			continue;
		}
		num = (lp - lm) / (2.0 * FD_EPS);
		if (fabs(num - an[i]) > maxerr)
			maxerr = fabs(num - an[i]);
		if (fabs(an[i]) > maxan)
			maxan = fabs(an[i]);
	}
	/* most elements must still be checked */
	if (skipped * 4 > n)
		return 1.0 / 0.0;
	return maxerr / maxan;
}

static float *randv(rng *r, size_t n, float lo, float hi)
{
	float *v = malloc(sizeof *v * (n ? n : 1));

	for (size_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * rng_uniformf(r);
	return v;
}

/* Distinct values at least 0.05 apart, shuffled: no max-pool ties, no ReLU input within
 * FD_EPS of zero. */
static float *spaced(rng *r, size_t n)
{
	float *v = malloc(sizeof *v * n);
	int64_t *idx = malloc(sizeof *idx * n);

	for (size_t i = 0; i < n; i++)
		idx[i] = (int64_t)i;
	rng_shuffle_i64(r, idx, n);
	for (size_t i = 0; i < n; i++)
		v[i] = 0.05f * ((float)idx[i] - (float)n / 2 + 0.5f);
	free(idx);
	return v;
}

static void test_geometry(void)
{
	/* in, k, stride, SAME?, expected out, expected pad before (TF's rules by hand) */
	static const int cases[][6] = {
		{ 5, 3, 2, 1, 3, 1 }, { 6, 3, 2, 1, 3, 0 }, { 4, 2, 2, 1, 2, 0 }, { 5, 2, 2, 1, 3, 0 },
		{ 7, 3, 1, 1, 7, 1 }, { 6, 4, 1, 1, 6, 1 }, { 224, 2, 2, 1, 112, 0 }, { 1, 3, 2, 1, 1, 1 },
		{ 5, 3, 2, 0, 2, 0 }, { 6, 3, 2, 0, 2, 0 }, { 7, 3, 1, 0, 5, 0 }, { 2, 3, 1, 0, 0, 0 },
		{ 7, 2, 3, 0, 2, 0 },
	};
	char err[ERR_MAX];
	geom g;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const int *c = cases[i];
		int pb = -1, out = geom_out_size(c[0], c[1], c[2], c[3] ? GEOM_SAME : GEOM_VALID, &pb);

		CHECK(out == c[4] && (out == 0 || pb == c[5]), "in %d k %d s %d %s: out %d pad %d",
		      c[0], c[1], c[2], c[3] ? "SAME" : "VALID", out, pb);
	}
	CHECK(geom_init(&g, 2, 2, 1, 3, 3, 1, 1, GEOM_VALID, 1, err) == -1 && strstr(err, "fit"),
	      "VALID window larger than input refused: %s", err);

	/* Where SAME puts its padding, seen through a ones-conv: 6x6, 3x3, stride 2 pads one row
	 * and column after only; 5x5 pads one on each side. */
	float in[36], w[9], out[9];
	static const float want6[9] = { 9, 9, 6, 9, 9, 6, 6, 6, 4 };
	static const float want5[9] = { 4, 6, 4, 6, 9, 6, 4, 6, 4 };
	for (int i = 0; i < 36; i++)
		in[i] = 1;
	for (int i = 0; i < 9; i++)
		w[i] = 1;
	geom_init(&g, 6, 6, 1, 3, 3, 2, 2, GEOM_SAME, 1, err);
	CHECK(conv2d_workspace(&g, 1) >= 2 * 9, "workspace holds a row of im2col and its gradient");
	float *big = malloc(sizeof *big * conv2d_workspace(&g, 1));
	conv2d_forward(&g, out, in, w, NULL, 1, 0, big, 1, isa_best());
	for (int i = 0; i < 9; i++)
		CHECK(out[i] == want6[i], "6x6 SAME s2 out[%d] = %g, want %g", i, out[i], want6[i]);
	geom_init(&g, 5, 5, 1, 3, 3, 2, 2, GEOM_SAME, 1, err);
	conv2d_forward(&g, out, in, w, NULL, 1, 0, big, 1, isa_best());
	for (int i = 0; i < 9; i++)
		CHECK(out[i] == want5[i], "5x5 SAME s2 out[%d] = %g, want %g", i, out[i], want5[i]);
	free(big);

	/* Max-pool 5x5, 2x2 stride 2 SAME: the extra padding is after, and never wins even
	 * against all-negative inputs. */
	int32_t am[9];
	for (int i = 0; i < 25; i++)
		in[i] = -(float)i - 1;
	geom_init(&g, 5, 5, 1, 2, 2, 2, 2, GEOM_SAME, 1, err);
	maxpool_forward(&g, out, am, in, 1, 1);
	CHECK(out[0] == -1 && out[2] == -5 && out[8] == -25 && out[6] == -21,
	      "pool SAME: %g %g %g %g", out[0], out[2], out[6], out[8]);
}

static void check_layer_grads(layer *l, size_t nin_total, size_t nout, const char *what,
			      rng *r)
{
	float *rr = randv(r, nout, -1, 1), *out = malloc(sizeof *out * nout);
	float *dout = malloc(sizeof *dout * nout), *din = calloc(nin_total, sizeof *din);
	size_t nw = 0, nb = 0;
	float *dw = NULL, *db = NULL;

	fwd(l, out);
	if (l->relu) {
		l->pos = malloc(nout);
		for (size_t i = 0; i < nout; i++)
			l->pos[i] = out[i] > 0;
	}
	/* dL/dout = r, through the ReLU by the output */
	if (l->relu)
		vec_relu_backward(dout, rr, out, nout);
	else
		memcpy(dout, rr, sizeof *dout * nout);
	if (l->kind == 0) {
		nw = (size_t)l->g.kh * l->g.kw * l->g.c * l->g.oc, nb = (size_t)l->g.oc;
		dw = calloc(nw, sizeof *dw), db = calloc(nb, sizeof *db);
		conv2d_backward(&l->g, din, dw, db, dout, l->in, l->w, l->B, 1, l->ws, l->threads,
					isa_best());
	} else if (l->kind == 1) {
		maxpool_backward(&l->g, din, dout, l->amax, l->B);
	} else if (l->kind == 2) {
		nw = (size_t)l->nin * l->nout, nb = (size_t)l->nout;
		dw = calloc(nw, sizeof *dw), db = calloc(nb, sizeof *db);
		dense_backward(din, dw, db, dout, l->in, l->w, NULL, l->B, l->nin, l->nout, 1, 1, isa_best());
	} else {
		dropout_backward(din, dout, l->mask, nin_total, l->keep);
	}
	double e = fd_err(l, l->in, din, nin_total, out, rr, nout);
	CHECK(e < GRAD_TOL, "%s: d input rel err %.3g", what, e);
	if (dw) {
		e = fd_err(l, l->w, dw, nw, out, rr, nout);
		CHECK(e < GRAD_TOL, "%s: d weights rel err %.3g", what, e);
		e = fd_err(l, l->b, db, nb, out, rr, nout);
		CHECK(e < GRAD_TOL, "%s: d bias rel err %.3g", what, e);
	}
	free(rr), free(out), free(dout), free(din), free(dw), free(db), free(l->pos);
	l->pos = NULL;
}

static void test_conv_grads(void)
{
	/* h, w, cin, kh, kw, sh, sw, SAME?, cout, B, relu */
	static const int cases[][11] = {
		{ 5, 6, 2, 3, 3, 1, 1, 1, 3, 2, 0 }, { 7, 6, 3, 3, 2, 2, 2, 1, 2, 2, 1 },
		{ 6, 7, 2, 3, 3, 2, 2, 0, 2, 1, 0 }, { 4, 5, 3, 1, 1, 1, 1, 1, 4, 2, 1 },
		{ 6, 6, 2, 2, 2, 2, 2, 1, 3, 2, 0 }, { 5, 5, 1, 5, 5, 1, 3, 1, 2, 1, 1 },
		/* cout a multiple of 8: convdirect's direct kernels (din too when cin is) */
		{ 5, 7, 3, 3, 3, 1, 1, 1, 8, 2, 1 }, { 6, 5, 8, 2, 2, 1, 1, 1, 16, 1, 0 },
		{ 4, 6, 8, 3, 2, 1, 1, 0, 8, 2, 1 },
	};
	rng r;
	char err[ERR_MAX], what[96];

	rng_seed(&r, 7);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const int *c = cases[i];
		layer l = { .kind = 0, .B = c[9], .relu = c[10], .threads = 2 };

		CHECK(geom_init(&l.g, c[0], c[1], c[2], c[3], c[4], c[5], c[6],
				c[7] ? GEOM_SAME : GEOM_VALID, c[8], err) == 0, "geom: %s", err);
		size_t nin = (size_t)l.B * c[0] * c[1] * c[2], nout = (size_t)l.B * l.g.oh * l.g.ow * c[8];
		size_t nw = (size_t)c[3] * c[4] * c[2] * c[8];

		l.in = spaced(&r, nin);
		l.w = randv(&r, nw, -1, 1);
		l.b = randv(&r, (size_t)c[8], -0.5f, 0.5f);
		l.ws = malloc(sizeof *l.ws * conv2d_workspace(&l.g, 2));
		snprintf(what, sizeof what, "conv %dx%dx%d k%dx%d s%dx%d %s relu %d", c[0], c[1],
			 c[2], c[3], c[4], c[5], c[6], c[7] ? "SAME" : "VALID", c[10]);
		check_layer_grads(&l, nin, nout, what, &r);
		free(l.in), free(l.w), free(l.b), free(l.ws);
	}
}

/* db's error against the sum of dout [nout / OC, OC] over its rows in double, relative to
 * the largest sum (1 where every sum is 0: a test of nothing fails). */
static double db_rel_err(const float *db, const float *dout, size_t nout, int OC)
{
	double e = 0, m = 0;

	for (int o = 0; o < OC; o++) {
		double want = 0;

		for (size_t i = (size_t)o; i < nout; i += (size_t)OC)
			want += dout[i];
		e = fmax(e, fabs(want - db[o])), m = fmax(m, fabs(want));
	}
	return m > 0 ? e / m : 1;
}

/* The convolution by definition, in double: out [B, oh, ow, cout] += conv(in, w), din +=
 * the transposed convolution of dout, dw += in's windows times dout (each may be NULL). */
static void naive_conv(const geom *g, int B, const float *in, const float *w, const float *dout,
		       double *out, double *din, double *dw)
{
	int C = g->c, OC = g->oc;

	for (int n = 0; n < B; n++)
		for (int oy = 0; oy < g->oh; oy++)
			for (int ox = 0; ox < g->ow; ox++)
				for (int ky = 0; ky < g->kh; ky++)
					for (int kx = 0; kx < g->kw; kx++) {
						int iy = oy * g->sh - g->pt + ky, ix = ox * g->sw - g->pl + kx;

						if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
							continue;
						for (int ci = 0; ci < C; ci++)
							for (int o = 0; o < OC; o++) {
								size_t ii = (((size_t)n * g->h + iy) * g->w + ix) * C + ci;
								size_t oi = (((size_t)n * g->oh + oy) * g->ow + ox) * OC + o;
								size_t wi = (((size_t)ky * g->kw + kx) * C + ci) * OC + o;

								if (out)
									out[oi] += (double)in[ii] * w[wi];
								if (din)
									din[ii] += (double)dout[oi] * w[wi];
								if (dw)
									dw[wi] += (double)dout[oi] * in[ii];
							}
					}
}

/* A naive double-precision conv over an input big enough that the tiled im2col spans many
 * tiles (cout 6 keeps the GEMM path; din, with cin 64, is convdirect's): forward, dw and din must agree to 1e-4 relative (float accumulation over K=576). */
static void test_conv_tiled(void)
{
	int B = 2, H = 40, W = 45, C = 64, KH = 3, KW = 3, OC = 6, S = 1;  /* OC: not convdirect's */
	geom g;
	char err[ERR_MAX];
	rng r;

	rng_seed(&r, 3);
	geom_init(&g, H, W, C, KH, KW, S, S, GEOM_SAME, OC, err);
	size_t nin = (size_t)B * H * W * C, nout = (size_t)B * g.oh * g.ow * OC, nw = (size_t)KH * KW * C * OC;
	float *in = randv(&r, nin, -1, 1), *w = randv(&r, nw, -1, 1), *b = randv(&r, OC, -1, 1);
	float *out = malloc(sizeof *out * nout), *dout = randv(&r, nout, -1, 1);
	float *din = malloc(sizeof *din * nin), *dw = calloc(nw, sizeof *dw), *db = calloc(OC, sizeof *db);
	float *ws = malloc(sizeof *ws * conv2d_workspace(&g, 1));
	double *rdin = calloc(nin, sizeof *rdin), *rdw = calloc(nw, sizeof *rdw);
	double *rout = malloc(sizeof *rout * nout), ef = 0, mf = 0, ei = 0, mi = 0, ew = 0, mw = 0;

	CHECK((size_t)B * g.oh * g.ow > conv2d_workspace(&g, 1) / (2 * KH * KW * C),
	      "test spans several tiles");
	conv2d_forward(&g, out, in, w, b, B, 0, ws, 1, isa_best());
	/* acc 0 must overwrite whatever dw held */
	for (size_t i = 0; i < nw; i++)
		dw[i] = 1e6f;
	conv2d_backward(&g, din, dw, db, dout, in, w, B, 0, ws, 1, isa_best());
	for (size_t i = 0; i < nout; i++)
		rout[i] = b[i % OC];
	naive_conv(&g, B, in, w, dout, rout, rdin, rdw);
	for (size_t i = 0; i < nout; i++)
		ef = fmax(ef, fabs(rout[i] - out[i])), mf = fmax(mf, fabs(rout[i]));
	for (size_t i = 0; i < nin; i++)
		ei = fmax(ei, fabs(rdin[i] - din[i])), mi = fmax(mi, fabs(rdin[i]));
	for (size_t i = 0; i < nw; i++)
		ew = fmax(ew, fabs(rdw[i] - dw[i])), mw = fmax(mw, fabs(rdw[i]));
	CHECK(ef / mf < 1e-4, "tiled conv forward rel err %.3g", ef / mf);
	CHECK(ei / mi < 1e-4, "tiled conv din rel err %.3g", ei / mi);
	CHECK(ew / mw < 1e-4, "tiled conv dw rel err %.3g", ew / mw);
	free(in), free(w), free(b), free(out), free(dout), free(din), free(dw), free(db), free(ws);
	free(rdin), free(rdw), free(rout);
}

/* Stride-1 convs compute din as a transposed convolution of dout, tile by tile, with the
 * ReLU mask of the layer before fused in. Against a double reference (1e-4 relative: float
 * sums over K = kh*kw*cout terms) on VALID, even-kernel SAME (padding after only) and a
 * cin=3 -> cout=32 layer whose transposed im2col spans several tiles; and the fused mask
 * gives the same bits as vec_relu_backward after the plain backward. */
static void test_conv_transposed(void)
{
	/* h, w, cin, kh, kw, SAME?, cout, B */
	static const int cases[][8] = {
		{ 9, 7, 5, 3, 3, 0, 6, 2 }, { 8, 9, 4, 2, 2, 1, 7, 2 }, { 6, 5, 3, 4, 3, 1, 5, 1 },
		{ 64, 60, 3, 3, 3, 1, 32, 2 },
	};
	char err[ERR_MAX];
	rng r;

	rng_seed(&r, 11);
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		const int *c = cases[k];
		int H = c[0], W = c[1], C = c[2], KH = c[3], KW = c[4], OC = c[6], B = c[7];
		geom g;

		CHECK(geom_init(&g, H, W, C, KH, KW, 1, 1, c[5] ? GEOM_SAME : GEOM_VALID, OC, err) == 0,
		      "geom: %s", err);
		size_t nin = (size_t)B * H * W * C, nout = (size_t)B * g.oh * g.ow * OC, nw = (size_t)KH * KW * C * OC;
		float *in = randv(&r, nin, -1, 1), *w = randv(&r, nw, -1, 1), *dout = randv(&r, nout, -1, 1);
		float *din = malloc(sizeof *din * nin), *din2 = malloc(sizeof *din2 * nin);
		float *dw = malloc(sizeof *dw * nw), *dw2 = malloc(sizeof *dw2 * nw), db[64], db2[64];
		float *ws = malloc(sizeof *ws * conv2d_workspace(&g, 1));
		double *rdin = calloc(nin, sizeof *rdin), ei = 0, mi = 0;
		int same = 1;

		if (k == 3)
			CHECK((size_t)B * H * W * KH * KW * OC > conv2d_workspace(&g, 1),
			      "the transposed im2col spans several tiles");
		/* in plays the ReLU's output: about half its entries are masked */
		conv2d_backward_relu(&g, din, dw, db, dout, in, w, in, VEC_RELU, B, 0, ws, 1, isa_best());
		conv2d_backward(&g, din2, dw2, db2, dout, in, w, B, 0, ws, 1, isa_best());
		vec_relu_backward(din2, din2, in, nin);
		same = !memcmp(din, din2, sizeof *din * nin) && !memcmp(dw, dw2, sizeof *dw * nw) &&
		       !memcmp(db, db2, sizeof *db * OC);
		CHECK(same, "case %zu: fused ReLU mask gives the unfused bits", k);
		naive_conv(&g, B, in, w, dout, NULL, rdin, NULL);
		for (size_t i = 0; i < nin; i++) {
			double want = in[i] > 0 ? rdin[i] : 0;

			ei = fmax(ei, fabs(want - din[i])), mi = fmax(mi, fabs(want));
		}
		CHECK(mi > 0 && ei / mi < 1e-4, "case %zu: transposed conv din rel err %.3g", k, ei / mi);
		free(in), free(w), free(dout), free(din), free(din2), free(dw), free(dw2), free(ws), free(rdin);
	}
}

/* convdirect's direct kernels against a double reference (1e-4 relative: float sums of up to
 * kh*kw*cin terms), on every path this CPU has (generic: im2col + sgemm), over every tile
 * shape: output channels 8..64 (AVX2 blocks of 32 in vectors of 8; AVX-512 blocks of 32 in
 * vectors of 16, a masked last one where a block ends at 8, 24, 40 or 56), row widths that
 * leave every remainder after AVX2's 3-pixel and AVX-512's 12- and 4-pixel tiles, 1..32
 * input channels (AVX-512's weight gradient takes them 12, 8, 4, then 3, 2 or 1), SAME
 * with odd and even kernels and VALID; with bias, ReLU and the fused ReLU mask of the layer
 * before; 1, 2 and 3 threads giving the same bits; and AVX2 and AVX-512 the same bits as
 * each other (each sum's order is the same, only the tiles differ). A path this CPU lacks
 * is said on stdout, not passed silently. */
static void test_conv_direct(void)
{
	/* h, w, cin, kh, kw, SAME?, cout, B */
	static const int cases[][8] = {
		{ 7, 9, 3, 3, 3, 1, 32, 2 }, { 5, 7, 1, 3, 3, 1, 8, 3 }, { 6, 8, 2, 2, 2, 1, 16, 1 },
		{ 9, 10, 5, 5, 3, 0, 24, 2 }, { 8, 11, 32, 3, 3, 1, 64, 2 }, { 4, 5, 4, 3, 3, 1, 40, 1 },
		{ 3, 3, 8, 3, 3, 0, 8, 2 },
		{ 23, 200, 32, 3, 3, 1, 32, 1 },   /* rows padded in several bands per image */
		{ 5, 27, 23, 3, 3, 1, 56, 1 },     /* 2 x 12 + 3 pixels; 12+8+3 channels in */
		{ 4, 17, 13, 3, 3, 1, 48, 2 },     /* 12 + 4 + 1 pixels; 12+1 channels in */
		{ 3, 40, 7, 3, 3, 1, 8, 1 },       /* 3 x 12 + 4 pixels; 4+3 channels in */
		{ 4, 6, 14, 3, 3, 1, 24, 1 },      /* 4 + 1 + 1 pixels; 12+2 channels in */
		{ 6, 29, 24, 3, 3, 1, 16, 1 },     /* din: 24 channels out of 29 = 2 x 12 + 4 + 1 */
	};
	static const isa_kind paths[] = { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };
	char err[ERR_MAX];

	for (size_t pi = 0; pi < sizeof paths / sizeof *paths; pi++) {
		isa_kind isa = paths[pi];
		rng r;

		if (!isa_supported(isa)) {
			printf("test_nn: the %s convolution path was not tested: this CPU lacks it\n",
			       isa_name(isa));
			continue;
		}
		rng_seed(&r, 31);
		for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
			const int *c = cases[k];
			int H = c[0], W = c[1], C = c[2], KH = c[3], KW = c[4], OC = c[6], B = c[7];
			const char *pn = isa_name(isa);
			geom g;

			CHECK(geom_init(&g, H, W, C, KH, KW, 1, 1, c[5] ? GEOM_SAME : GEOM_VALID, OC, err) == 0,
			      "geom: %s", err);
			CHECK(convdirect_fits(&g, isa) == (isa != ISA_GENERIC),
			      "%s case %zu takes the direct kernels unless generic", pn, k);
			/* din takes the direct kernels only if cin is a multiple of 8 */
			CHECK(!strcmp(conv2d_path(&g, isa), isa == ISA_GENERIC ? "sgemm" : C % 8 ? (
				isa == ISA_AVX2 ? "avx2, din sgemm" : "avx512, din sgemm") : pn),
			      "%s case %zu: path %s", pn, k, conv2d_path(&g, isa));
			size_t nin = (size_t)B * H * W * C, nout = (size_t)B * g.oh * g.ow * OC;
			size_t nw = (size_t)KH * KW * C * OC;
			float *in = randv(&r, nin, -1, 1), *w = randv(&r, nw, -1, 1), *b = randv(&r, OC, -1, 1);
			float *dout = randv(&r, nout, -1, 1), *out[3], *din[3], *dw[3], db[3][64];
			double *rout = calloc(nout, sizeof *rout), *rdin = calloc(nin, sizeof *rdin);
			double *rdw = calloc(nw, sizeof *rdw), ef = 0, mf = 0, ei = 0, mi = 0, ew = 0, mw = 0;

			for (int t = 0; t < 3; t++) {
				float *ws = malloc(sizeof *ws * conv2d_workspace(&g, t + 1));

				out[t] = malloc(sizeof *out[t] * nout);
				din[t] = malloc(sizeof *din[t] * nin);
				dw[t] = malloc(sizeof *dw[t] * nw);
				conv2d_forward(&g, out[t], in, w, b, B, 1, ws, t + 1, isa);
				/* in plays the ReLU output of the layer before: its mask */
				conv2d_backward_relu(&g, din[t], dw[t], db[t], dout, in, w, in, VEC_RELU, B, 0, ws, t + 1, isa);
				free(ws);
			}
			CHECK(!memcmp(out[0], out[1], sizeof *out[0] * nout) &&
			      !memcmp(out[0], out[2], sizeof *out[0] * nout) &&
			      !memcmp(din[0], din[1], sizeof *din[0] * nin) &&
			      !memcmp(din[0], din[2], sizeof *din[0] * nin) &&
			      !memcmp(dw[0], dw[1], sizeof *dw[0] * nw) && !memcmp(dw[0], dw[2], sizeof *dw[0] * nw) &&
			      !memcmp(db[0], db[1], sizeof *db[0] * OC) && !memcmp(db[0], db[2], sizeof *db[0] * OC),
			      "%s case %zu: 1, 2 and 3 threads give the same bits", pn, k);
			if (isa == ISA_AVX512 && isa_supported(ISA_AVX2)) {
				/* the AVX2 kernels on the same data: the same bits */
				float *o2 = malloc(sizeof *o2 * nout), *di2 = malloc(sizeof *di2 * nin);
				float *dw2 = malloc(sizeof *dw2 * nw), db2[64];
				float *ws = malloc(sizeof *ws * conv2d_workspace(&g, 2));

				conv2d_forward(&g, o2, in, w, b, B, 1, ws, 2, ISA_AVX2);
				conv2d_backward_relu(&g, di2, dw2, db2, dout, in, w, in, VEC_RELU, B, 0, ws, 2, ISA_AVX2);
				CHECK(!memcmp(o2, out[0], sizeof *o2 * nout) && !memcmp(di2, din[0], sizeof *di2 * nin) &&
				      !memcmp(dw2, dw[0], sizeof *dw2 * nw) && !memcmp(db2, db[0], sizeof *db2 * OC),
				      "case %zu: AVX-512 and AVX2 give the same bits", k);
				free(o2), free(di2), free(dw2), free(ws);
			}
			double eb = db_rel_err(db[0], dout, nout, OC);

			CHECK(eb < 1e-4, "%s case %zu: direct db rel err %.3g", pn, k, eb);
			for (size_t i = 0; i < nout; i++)
				rout[i] = b[i % OC];
			naive_conv(&g, B, in, w, dout, rout, rdin, rdw);
			for (size_t i = 0; i < nout; i++) {
				double want = rout[i] > 0 ? rout[i] : 0;

				ef = fmax(ef, fabs(want - out[0][i])), mf = fmax(mf, fabs(want));
			}
			for (size_t i = 0; i < nin; i++) {
				double want = in[i] > 0 ? rdin[i] : 0;

				ei = fmax(ei, fabs(want - din[0][i])), mi = fmax(mi, fabs(want));
			}
			for (size_t i = 0; i < nw; i++)
				ew = fmax(ew, fabs(rdw[i] - dw[0][i])), mw = fmax(mw, fabs(rdw[i]));
			CHECK(mf > 0 && ef / mf < 1e-4, "%s case %zu: forward rel err %.3g", pn, k, ef / mf);
			CHECK(mi > 0 && ei / mi < 1e-4, "%s case %zu: din rel err %.3g", pn, k, ei / mi);
			CHECK(mw > 0 && ew / mw < 1e-4, "%s case %zu: dw rel err %.3g", pn, k, ew / mw);
			for (int t = 0; t < 3; t++)
				free(out[t]), free(din[t]), free(dw[t]);
			free(in), free(w), free(b), free(dout), free(rout), free(rdin), free(rdw);
		}
	}
}

/* A pointwise layer's backward on the direct kernels (din: the turned 1x1 forward with the
 * ReLU mask fused; dw and db: the wgrad tiles over rows of up to 512 pixels, several map
 * rows or images a row): against the double reference (1e-4 relative), 1, 2 and 3 threads
 * the same bits, AVX2 the same bits as AVX-512, acc adding to dw and db; cin not a multiple
 * of 8 leaves din on sgemm. Cases: h, w, cin, cout, B. */
static void test_conv_pointwise(void)
{
	static const int cases[][5] = {
		{ 40, 40, 16, 24, 3 },  /* 12 map rows of 40 a row of 480; 12 + 4 channels in */
		{ 13, 37, 24, 16, 1 },  /* the whole map one row (481) */
		{ 9, 11, 23, 40, 2 },   /* cin 23: din on sgemm; a row of 198; AVX2 6+6+6+5 in */
		{ 5, 6, 13, 8, 2 },     /* AVX2's 1x1 tiles of 6 + 6 + 1 channels in */
		{ 7, 7, 96, 136, 2 },   /* a 7x7 map: two images a row; 8 blocks of 12 in, 4+ out */
		{ 31, 23, 8, 8, 1 },    /* a prime map height: rows of 23 */
	};
	static const isa_kind paths[] = { ISA_AVX2, ISA_AVX512 };
	char err[ERR_MAX];
	rng r;

	rng_seed(&r, 53);
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		const int *c = cases[k];
		int H = c[0], W = c[1], C = c[2], OC = c[3], B = c[4];
		geom g;

		CHECK(geom_init(&g, H, W, C, 1, 1, 1, 1, GEOM_VALID, OC, err) == 0, "geom: %s", err);
		size_t nin = (size_t)B * H * W * C, nout = (size_t)B * H * W * OC, nw = (size_t)C * OC;
		float *in = randv(&r, nin, -1, 1), *w = randv(&r, nw, -1, 1), *dout = randv(&r, nout, -1, 1);
		float *din[4], *dw[4], *db[4];
		double *rdin = calloc(nin, sizeof *rdin), *rdw = calloc(nw, sizeof *rdw);

		naive_conv(&g, B, in, w, dout, NULL, rdin, rdw);
		for (size_t pi = 0; pi < 2; pi++) {
			isa_kind isa = paths[pi];
			const char *pn = isa_name(isa);

			if (!isa_supported(isa))
				continue;
			CHECK(!strcmp(conv2d_path(&g, isa), C % 8 ? (isa == ISA_AVX2 ? "avx2, din sgemm" :
				"avx512, din sgemm") : pn), "%s pointwise case %zu: path %s", pn, k,
			      conv2d_path(&g, isa));
			for (int t = 0; t < 4; t++) {
				/* threads 1, 2, 3; then acc onto the 1-thread sums */
				int th = t < 3 ? t + 1 : 2, acc = t == 3;
				float *ws = malloc(sizeof *ws * conv2d_workspace(&g, th));

				din[t] = malloc(sizeof *din[t] * nin);
				dw[t] = malloc(sizeof *dw[t] * nw), db[t] = malloc(sizeof *db[t] * OC);
				if (acc)
					memcpy(dw[t], dw[0], sizeof *dw[t] * nw), memcpy(db[t], db[0], sizeof *db[t] * OC);
				/* in plays the ReLU output of the layer before: its mask */
				conv2d_backward_relu(&g, din[t], dw[t], db[t], dout, in, w, in, VEC_RELU, B, acc, ws, th, isa);
				free(ws);
			}
			int same = 1;
			double ea = 0, ma = 0, ei = 0, mi = 0, ew = 0, mw = 0, eb;

			for (int t = 1; t < 3; t++)
				same &= !memcmp(din[0], din[t], sizeof *din[0] * nin) &&
					!memcmp(dw[0], dw[t], sizeof *dw[0] * nw) && !memcmp(db[0], db[t], sizeof *db[0] * OC);
			CHECK(same, "%s pointwise case %zu: 1, 2 and 3 threads give the same bits", pn, k);
			/* the sums start from what is there: twice the sums, within their rounding */
			for (size_t i = 0; i < nw + (size_t)OC; i++) {
				double a = i < nw ? dw[3][i] : db[3][i - nw], o = i < nw ? dw[0][i] : db[0][i - nw];

				ea = fmax(ea, fabs(a - 2 * o)), ma = fmax(ma, fabs(2 * o));
			}
			CHECK(ma > 0 && ea / ma < 1e-5, "%s pointwise case %zu: acc adds dw and db: rel err %.3g", pn,
			      k, ea / ma);

			for (size_t i = 0; i < nin; i++) {
				double want = in[i] > 0 ? rdin[i] : 0;

				ei = fmax(ei, fabs(want - din[0][i])), mi = fmax(mi, fabs(want));
			}
			for (size_t i = 0; i < nw; i++)
				ew = fmax(ew, fabs(rdw[i] - dw[0][i])), mw = fmax(mw, fabs(rdw[i]));
			eb = db_rel_err(db[0], dout, nout, OC);
			CHECK(mi > 0 && ei / mi < 1e-4, "%s pointwise case %zu: din rel err %.3g", pn, k, ei / mi);
			CHECK(mw > 0 && ew / mw < 1e-4, "%s pointwise case %zu: dw rel err %.3g", pn, k, ew / mw);
			CHECK(eb < 1e-4, "%s pointwise case %zu: db rel err %.3g", pn, k, eb);
			if (isa == ISA_AVX512 && isa_supported(ISA_AVX2)) {
				float *d2 = malloc(sizeof *d2 * nin), *w2 = malloc(sizeof *w2 * nw);
				float *b2 = malloc(sizeof *b2 * OC), *ws = malloc(sizeof *ws * conv2d_workspace(&g, 2));

				conv2d_backward_relu(&g, d2, w2, b2, dout, in, w, in, VEC_RELU, B, 0, ws, 2, ISA_AVX2);
				CHECK(!memcmp(d2, din[0], sizeof *d2 * nin) && !memcmp(w2, dw[0], sizeof *w2 * nw) &&
				      !memcmp(b2, db[0], sizeof *b2 * OC),
				      "pointwise case %zu: AVX-512 and AVX2 give the same bits", k);
				free(d2), free(w2), free(b2), free(ws);
			}
			for (int t = 0; t < 4; t++)
				free(din[t]), free(dw[t]), free(db[t]);
		}
		free(in), free(w), free(dout), free(rdin), free(rdw);
	}
}

/* A strided (or padded 1x1) layer's weight gradient by convdirect's wgrad tiles, on the
 * layer itself (strided) or on im2col rows (its cout a multiple of 8): against the double
 * reference (1e-4 relative), 1, 2 and 3 threads the same bits, AVX2 the same bits as
 * AVX-512, and with din asked for or not (two code paths) the same dw. Cases: h, w, cin,
 * k, stride, pad, cout, B; the first spans two im2col tiles (2048 rows of K = 576: 1820 a
 * tile, 3 x 512 + 284 rows of tiles). */
static void test_conv_strided_dw(void)
{
	/* h, w, cin, k, stride, pads t l b r, cout, B; a first layer's 3 channels on AVX-512
	 * by its window rows' taps (21 in two groups; TensorFlow's SAME pads; 5x5 stride 1),
	 * small windows' rows all at once (conv1_1's 3x3x3; 5x5x1; 2x2x2 with 24 out: a
	 * block of 8; 2 threads there, 3 by window rows: the same bits) */
	static const int cases[][11] = {
		{ 64, 64, 64, 3, 2, 1, 1, 1, 1, 16, 2 }, { 23, 21, 3, 7, 2, 3, 3, 3, 3, 16, 2 },
		{ 13, 13, 24, 1, 2, 0, 0, 0, 0, 24, 2 }, { 6, 7, 8, 1, 1, 1, 1, 1, 1, 16, 2 },
		{ 20, 26, 3, 3, 2, 0, 0, 1, 1, 24, 3 },  { 11, 12, 3, 5, 1, 2, 1, 2, 3, 32, 2 },
		{ 17, 18, 3, 3, 1, 1, 1, 1, 1, 32, 2 },  { 12, 13, 1, 5, 1, 2, 2, 2, 2, 16, 3 },
		{ 9, 10, 2, 2, 1, 0, 0, 1, 1, 24, 2 },
		/* strided on the layer itself in bands of rows (7 wide: 5 + 2 rows; TF's SAME:
		 * 6 + 2; 5x5 s2: 4 + 4 + 1) */
		{ 14, 14, 16, 3, 2, 1, 1, 1, 1, 32, 3 }, { 15, 12, 8, 3, 2, 0, 0, 1, 1, 16, 2 },
		{ 17, 19, 12, 5, 2, 2, 2, 2, 2, 24, 2 },
		/* a padded 1x1 on im2col rows whose last pixel is not in the padding */
		{ 6, 7, 8, 1, 1, 1, 1, 0, 0, 16, 2 },
	};
	static const isa_kind paths[] = { ISA_AVX2, ISA_AVX512 };
	char err[ERR_MAX];
	rng r;

	rng_seed(&r, 59);
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		const int *c = cases[k];
		int pads[4] = { c[5], c[6], c[7], c[8] }, C = c[2], OC = c[9], B = c[10];
		geom g;

		CHECK(geom_init_pads(&g, c[0], c[1], C, c[3], c[3], c[4], c[4], pads, 0, 1, OC, err) == 0,
		      "geom: %s", err);
		size_t nin = (size_t)B * g.h * g.w * C, nout = (size_t)B * g.oh * g.ow * OC;
		size_t nw = (size_t)c[3] * c[3] * C * OC;
		float *in = randv(&r, nin, -1, 1), *w = randv(&r, nw, -1, 1), *dout = randv(&r, nout, -1, 1);
		float *din = malloc(sizeof *din * nin), *dw[5];
		double *rdw = calloc(nw, sizeof *rdw), e = 0, m = 0;
		float db[5][32];

		naive_conv(&g, B, in, w, dout, NULL, NULL, rdw);
		for (size_t pi = 0; pi < 2; pi++) {
			isa_kind isa = paths[pi];
			const char *pn = isa_name(isa);
			int same = 1;

			if (!isa_supported(isa))
				continue;
			for (int t = 0; t < 5; t++) {
				/* threads 1, 2, 3 with din; 2 without; 2 on AVX2 */
				int th = t < 3 ? t + 1 : 2;
				float *ws = malloc(sizeof *ws * conv2d_workspace(&g, th));

				dw[t] = malloc(sizeof *dw[t] * nw);
				if (t < 4 || isa_supported(ISA_AVX2))
					conv2d_backward(&g, t == 3 ? NULL : din, dw[t], db[t], dout, in, w, B, 0, ws, th,
							t == 4 ? ISA_AVX2 : isa);
				free(ws);
			}
			for (int t = 1; t < 4; t++)
				same &= !memcmp(dw[0], dw[t], sizeof *dw[0] * nw) && !memcmp(db[0], db[t], sizeof *db[0] * OC);
			CHECK(same, "%s strided dw case %zu: 1, 2, 3 threads, with and without din: the same bits",
			      pn, k);
			CHECK(!isa_supported(ISA_AVX2) || (!memcmp(dw[0], dw[4], sizeof *dw[0] * nw) &&
							   !memcmp(db[0], db[4], sizeof *db[0] * OC)),
			      "strided dw case %zu: %s and AVX2 give the same bits", k, pn);
			e = m = 0;
			for (size_t i = 0; i < nw; i++)
				e = fmax(e, fabs(rdw[i] - dw[0][i])), m = fmax(m, fabs(rdw[i]));
			CHECK(m > 0 && e / m < 1e-4, "%s strided dw case %zu: rel err %.3g", pn, k, e / m);
			e = db_rel_err(db[0], dout, nout, OC);
			CHECK(e < 1e-4, "%s strided dw case %zu: db rel err %.3g", pn, k, e);
			for (int t = 0; t < 5; t++)
				free(dw[t]);
		}
		free(in), free(w), free(dout), free(din), free(rdw);
	}
}

/* A strided layer's din by phases (a stride-1 convolution per residue of the input pixels
 * modulo the strides, laid into din): against the double reference (1e-5 of the largest),
 * through a ReLU's mask (what vec_act_backward makes of the unmasked din), 1, 2 and 3
 * threads the same bits, and the plan's path naming the phases where they run. Cases: h,
 * w, cin, kh, kw, sh, sw, pads t l b r, cout, B, phases on AVX-512 (1) or on either (2):
 * ResNet-18's 3x3 s2 (12+ wide) and 1x1 s2 downsample (odd rows, columns: din zero
 * there), TensorFlow's SAME pads (after only), a stride past the kernel (a phase of no
 * taps; dout 12 wide, the least that AVX-512 runs by phases), 5x5 s2, strides 2 x 1,
 * images in two chunks (64 channels x 26 x 26 a phase: 6 a chunk); sgemm and col2im for a
 * pad past the window (a phase would start inside dout) and for dout 11 wide. */
static void test_conv_strided_din(void)
{
	static const int cases[][14] = {
		{ 26, 27, 16, 3, 3, 2, 2, 1, 1, 1, 1, 24, 2, 1 },
		{ 13, 14, 24, 1, 1, 2, 2, 0, 0, 0, 0, 16, 2, 2 },
		{ 25, 26, 8, 3, 3, 2, 2, 0, 0, 1, 1, 32, 3, 1 },
		{ 38, 37, 8, 2, 2, 3, 3, 0, 0, 0, 0, 16, 2, 1 },
		{ 27, 28, 16, 5, 5, 2, 2, 2, 2, 2, 2, 16, 2, 1 },
		{ 9, 14, 8, 3, 5, 2, 1, 1, 2, 1, 2, 8, 2, 1 },
		{ 52, 52, 64, 1, 1, 2, 2, 0, 0, 0, 0, 8, 11, 2 },
		{ 11, 28, 8, 3, 3, 2, 2, 4, 1, 0, 1, 8, 2, 0 },
		{ 22, 22, 8, 3, 3, 2, 2, 1, 1, 1, 1, 8, 2, 0 },
	};
	static const isa_kind paths[] = { ISA_AVX2, ISA_AVX512 };
	char err[ERR_MAX];
	rng r;

	rng_seed(&r, 61);
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		const int *c = cases[k];
		int C = c[2], OC = c[11], B = c[12];
		geom g;

		CHECK(geom_init_pads(&g, c[0], c[1], C, c[3], c[4], c[5], c[6], c + 7, 0, 1, OC,
				     err) == 0, "geom: %s", err);
		size_t nin = (size_t)B * g.h * g.w * C, nout = (size_t)B * g.oh * g.ow * OC;
		size_t nw = (size_t)g.kh * g.kw * C * OC;
		float *in = randv(&r, nin, -1, 1), *w = randv(&r, nw, -1, 1), *dout = randv(&r, nout, -1, 1);
		float *ry = randv(&r, nin, -1, 1), *din[4], *masked = malloc(sizeof *masked * nin);
		double *rdin = calloc(nin, sizeof *rdin);

		naive_conv(&g, B, in, w, dout, NULL, rdin, NULL);
		for (size_t pi = 0; pi < 2; pi++) {
			isa_kind isa = paths[pi];
			const char *pn = isa_name(isa);
			int phases = c[13] == 2 || (c[13] == 1 && isa == ISA_AVX512), same = 1;
			double e = 0, m = 0;

			if (!isa_supported(isa))
				continue;
			CHECK(!!strstr(conv2d_path(&g, isa), "din phases") == phases,
			      "%s strided din case %zu: path %s", pn, k, conv2d_path(&g, isa));
			for (int t = 0; t < 4; t++) {
				/* threads 1, 2, 3 unmasked; 2 through the mask */
				int th = t < 3 ? t + 1 : 2;
				float *ws = malloc(sizeof *ws * conv2d_workspace(&g, th));

				din[t] = malloc(sizeof *din[t] * nin);
				memset(din[t], 0xff, sizeof *din[t] * nin);
				conv2d_backward_relu(&g, din[t], NULL, NULL, dout, in, w, t == 3 ? ry : NULL,
						     VEC_RELU, B, 0, ws, th, isa);
				free(ws);
			}
			for (int t = 1; t < 3; t++)
				same &= !memcmp(din[0], din[t], sizeof *din[0] * nin);
			CHECK(same, "%s strided din case %zu: 1, 2, 3 threads give the same bits", pn, k);
			vec_act_backward(masked, din[0], ry, nin, VEC_RELU);
			CHECK(!memcmp(masked, din[3], sizeof *masked * nin),
			      "%s strided din case %zu: the fused mask is not the pass after", pn, k);
			for (size_t i = 0; i < nin; i++)
				e = fmax(e, fabs(rdin[i] - din[0][i])), m = fmax(m, fabs(rdin[i]));
			CHECK(m > 0 && e / m < 1e-5, "%s strided din case %zu: rel err %.3g", pn, k, e / m);
			for (int t = 0; t < 4; t++)
				free(din[t]);
		}
		free(in), free(w), free(dout), free(ry), free(masked), free(rdin);
	}
}

/* The forward's plane kernels (strides and 1x1s on AVX2 and AVX-512, narrow maps on
 * AVX-512) against the convolution by definition, with each activation (0 none, 1 ReLU,
 * 2 ReLU6), on every path (ReLU6 only where convdirect runs: sgemm's epilogue is
 * vec_bias_relu's), and with convdirect's fused mask; 1, 2 and 3 threads give the same
 * bits, AVX2 gives AVX-512's (its plane tiles sum in the same order; on stride 1 the
 * plane kernels give the row kernels' bits). Cases: odd maps, channels not multiples of
 * 32, chunks that run across images. */
static void test_conv_planes(void)
{
	/* h, w, cin, kh, kw, sh, sw, pads t l b r, cout, B, activation */
	static const int cases[][15] = {
		{ 23, 21, 3, 7, 7, 2, 2, 3, 3, 3, 3, 16, 2, 1 },    /* conv1: 7x7 s2, 3 channels */
		{ 14, 14, 20, 3, 3, 2, 2, 1, 1, 1, 1, 40, 3, 2 },   /* 3x3 s2 to 7x7 */
		{ 13, 13, 24, 1, 1, 2, 2, 0, 0, 0, 0, 24, 2, 0 },   /* 1x1 s2 downsample */
		{ 12, 11, 20, 1, 1, 2, 2, 1, 0, 0, 1, 64, 2, 1 },   /* 1x1 s2, pads, 64 out */
		{ 11, 10, 16, 3, 1, 2, 2, 1, 0, 1, 0, 24, 2, 0 },   /* 3x1 s2: one column phase */
		{ 9, 11, 16, 1, 1, 1, 1, 0, 0, 0, 0, 96, 2, 2 },    /* 1x1 in place */
		{ 7, 7, 37, 3, 3, 1, 1, 1, 1, 1, 1, 72, 3, 1 },     /* 7x7 map, 37 in */
		{ 5, 9, 8, 3, 3, 1, 1, 0, 2, 1, 0, 8, 2, 2 },       /* asymmetric pads */
		{ 9, 10, 5, 3, 5, 2, 1, 1, 2, 1, 2, 24, 2, 1 },     /* stride 2 x 1 */
		{ 10, 11, 10, 2, 2, 3, 3, 0, 1, 1, 0, 8, 2, 0 },    /* stride past the kernel, split */
		{ 6, 7, 8, 1, 1, 1, 1, 1, 0, 0, 1, 16, 2, 1 },      /* 1x1 with pads: planes */
		{ 4, 20, 8, 3, 3, 1, 1, 1, 1, 1, 1, 32, 2, 2 },     /* wide: row kernels, ReLU6 */
		{ 30, 30, 160, 1, 1, 1, 1, 0, 0, 0, 0, 16, 3, 1 },  /* in place, chunks over images */
		{ 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 8, 6, 2 },       /* many chunks a band */
		{ 16, 15, 12, 5, 5, 2, 2, 2, 2, 1, 1, 56, 2, 0 },   /* 5x5 s2 */
		{ 9, 9, 72, 3, 3, 2, 2, 1, 1, 1, 1, 48, 2, 1 },     /* s2, K in 3 parts cut mid-run */
		{ 7, 7, 96, 3, 3, 1, 1, 1, 1, 1, 1, 320, 2, 2 },    /* weights repacked by every thread */
		{ 3, 8, 8, 3, 3, 1, 1, 0, 0, 0, 0, 16, 1, 1 },      /* one output row: one thread */
		{ 56, 56, 144, 1, 1, 1, 1, 0, 0, 0, 0, 24, 5, 1 },  /* 9 MB in place: prefetched */
		{ 15, 17, 3, 3, 3, 2, 2, 1, 1, 1, 1, 32, 2, 2 },    /* MobileNetV2's first: whole rows */
		{ 10, 13, 2, 2, 2, 3, 3, 0, 1, 1, 0, 8, 2, 0 },     /* 2 channels, stride past kernel */
		{ 9, 12, 4, 3, 5, 2, 3, 1, 2, 0, 1, 72, 3, 1 },     /* 4 channels, strides 2 x 3 */
		{ 9, 9, 80, 3, 3, 2, 2, 1, 1, 1, 1, 64, 2, 1 },     /* s2, 64 out: 128-row parts mid-run */
		{ 2, 3, 16904, 1, 1, 1, 1, 0, 0, 0, 0, 64, 1, 0 },  /* K past 128 parts of 128: of 256 */
	};
	static const isa_kind paths[] = { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };
	char err[ERR_MAX];

	for (size_t pi = 0; pi < sizeof paths / sizeof *paths; pi++) {
		isa_kind isa = paths[pi];
		rng r;

		if (!isa_supported(isa))
			continue;
		rng_seed(&r, 47);
		for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
			const int *c = cases[k];
			int C = c[2], OC = c[11], B = c[12], act = c[13];
			const char *pn = isa_name(isa);
			geom g;

			CHECK(geom_init_pads(&g, c[0], c[1], C, c[3], c[4], c[5], c[6], c + 7, 0, 1, OC,
					     err) == 0, "geom: %s", err);
			if (act == 2 && !convdirect_forward_fits(&g, isa))
				continue;
			if (isa != ISA_GENERIC) {
				int s1 = g.sh == 1 && g.sw == 1, one = g.kh == 1 && g.kw == 1;
				char want[32];

				/* strides and 1x1s on the plane kernels; stride-1 windows on the row
				 * kernels (AVX-512's planes for narrow maps have the rows' bits) */
				/* a pointwise layer's backward on the direct kernels too */
				int pw = s1 && one && !c[7] && !c[8] && !c[9] && !c[10];

				/* a strided layer's din by phases: 1x1s, and on AVX-512 rows of 12+ */
				int ph = !s1 && C % 8 == 0 &&
					 (one || (isa == ISA_AVX512 && g.ow >= 12));

				snprintf(want, sizeof want, "%s%s", pn, (s1 && !one) || pw ?
					 (C % 8 ? ", din sgemm" : "") : ph ? " fwd, din phases" : " fwd, sgemm");
				CHECK(convdirect_forward_fits(&g, isa), "%s planes case %zu fits", pn, k);
				CHECK(!strcmp(conv2d_path(&g, isa), want), "%s planes case %zu: path %s", pn, k,
				      conv2d_path(&g, isa));
			}
			size_t nin = (size_t)B * g.h * g.w * C, nout = (size_t)B * g.oh * g.ow * OC;
			size_t nw = (size_t)g.kh * g.kw * C * OC;
			float *in = randv(&r, nin, -1, 1), *w = randv(&r, nw, act == 2 ? -2 : -1, act == 2 ? 2 : 1);
			float *b = randv(&r, OC, -1, 1), *out[3];
			double *ref = calloc(nout, sizeof *ref), e = 0, m = 0;
			int over6 = 0;

			for (int t = 0; t < 3; t++) {
				size_t nws = conv2d_workspace(&g, t + 1);
				float *ws = malloc(sizeof *ws * nws);

				/* NaNs: scratch a kernel reads before writing spoils the output (a
				 * buffer just freed would otherwise hand back the last run's) */
				memset(ws, 0xff, sizeof *ws * nws);
				out[t] = malloc(sizeof *out[t] * nout);
				conv2d_forward(&g, out[t], in, w, b, B, act, ws, t + 1, isa);
				free(ws);
			}
			CHECK(!memcmp(out[0], out[1], sizeof *out[0] * nout) &&
			      !memcmp(out[0], out[2], sizeof *out[0] * nout),
			      "%s planes case %zu: 1, 2 and 3 threads give the same bits", pn, k);
			for (size_t i = 0; i < nout; i++)
				ref[i] = b[i % OC];
			naive_conv(&g, B, in, w, NULL, ref, NULL, NULL);
			for (size_t i = 0; i < nout; i++) {
				double want = act && ref[i] < 0 ? 0 : act == 2 && ref[i] > 6 ? 6 : ref[i];

				over6 += ref[i] > 6;
				e = fmax(e, fabs(want - out[0][i])), m = fmax(m, fabs(want));
			}
			CHECK(m > 0 && e / m < 1e-5, "%s planes case %zu: rel err %.3g", pn, k, e / m);
			CHECK(act != 2 || over6 > 0, "planes case %zu: ReLU6 clips nothing", k);
			if (isa == ISA_AVX512 && convdirect_forward_fits(&g, ISA_AVX2)) {
				float *o2 = malloc(sizeof *o2 * nout), *ws = malloc(sizeof *ws * conv2d_workspace(&g, 2));

				conv2d_forward(&g, o2, in, w, b, B, act, ws, 2, ISA_AVX2);
				CHECK(!memcmp(o2, out[0], sizeof *o2 * nout),
				      "planes case %zu: AVX-512 and AVX2 give the same bits", k);
				free(o2), free(ws);
			}
			if (isa != ISA_GENERIC) {
				/* the mask a fused input gradient passes (conv2d gives it only to stride-1
				 * windows), a ReLU's or a ReLU6's output: where it stops the gradient
				 * zero, elsewhere the bits without it */
				float *mk = randv(&r, nout, -1, 8), *om = malloc(sizeof *om * nout);
				float *ws = malloc(sizeof *ws * convdirect_workspace(&g, 2));

				for (int ma = VEC_RELU; ma <= VEC_RELU6; ma++) {
					int same = 1;

					convdirect_forward(&g, om, in, w, b, act, mk, ma, B, 2, ws, isa);
					for (size_t i = 0; i < nout; i++)
						same &= mk[i] > 0 && (ma == VEC_RELU || mk[i] < 6) ?
							!memcmp(om + i, out[0] + i, sizeof *om) : om[i] == 0;
					CHECK(same, "%s planes case %zu: the mask (act %d) zeroes where it stops"
					      " the gradient, no more", pn, k, ma);
				}
				free(mk), free(om), free(ws);
			}
			for (int t = 0; t < 3; t++)
				free(out[t]);
			free(in), free(w), free(b), free(ref);
		}
	}
}

/* PETCNN_ISA: unset or empty is the widest path; each name this CPU has is taken; an
 * unknown name, or one the CPU lacks, is an error with a message. */
static void test_isa_env(void)
{
	static const isa_kind all[] = { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };
	char err[ERR_MAX];
	isa_kind k;

	CHECK(isa_supported(ISA_GENERIC) && isa_supported(isa_best()), "the best path is supported");
	unsetenv("PETCNN_ISA");
	CHECK(isa_from_env(&k, err) == 0 && k == isa_best(), "unset: the widest path");
	setenv("PETCNN_ISA", "", 1);
	CHECK(isa_from_env(&k, err) == 0 && k == isa_best(), "empty: the widest path");
	for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
		setenv("PETCNN_ISA", isa_name(all[i]), 1);
		err[0] = 0;
		if (isa_supported(all[i]))
			CHECK(isa_from_env(&k, err) == 0 && k == all[i], "%s is taken", isa_name(all[i]));
		else
			CHECK(isa_from_env(&k, err) == -1 && strstr(err, "lacks"), "%s: %s", isa_name(all[i]), err);
	}
	setenv("PETCNN_ISA", "AVX2", 1);
	CHECK(isa_from_env(&k, err) == -1 && strstr(err, "PETCNN_ISA=AVX2: not generic, avx2 or avx512"),
	      "a wrong name: %s", err);
	unsetenv("PETCNN_ISA");
}

/* The paths (nn/isa.h) this CPU has into paths[], saying which of what's it cannot test. */
static int cpu_paths(isa_kind paths[3], const char *what)
{
	static const isa_kind all[] = { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };
	int n = 0;

	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		if (isa_supported(all[i]))
			paths[n++] = all[i];
		else
			printf("test_nn: the %s %s path was not tested: this CPU lacks it\n", isa_name(all[i]), what);
	return n;
}

/* The streaming dense forward splits w's columns over threads, so 1, 2 and 3 threads give
 * the same bits; batches to 32 take it (33 does not: sgemm), within 1e-5 relative of each
 * other (float sums over 6001 terms). w is past dense_streams' 2^20 weights (3001 x 200,
 * as this test had, is not, so sgemm served every call). On each path. */
static void dense_forward_threads(isa_kind isa)
{
	int nin = 6001, nout = 200;
	rng r;

	rng_seed(&r, 23);
	float *in = randv(&r, (size_t)33 * nin, -1, 1), *w = randv(&r, (size_t)nin * nout, -1, 1);
	float *b = randv(&r, nout, -1, 1), *o1 = malloc(sizeof *o1 * 33 * nout);
	float *o2 = malloc(sizeof *o2 * 33 * nout), *o3 = malloc(sizeof *o3 * 33 * nout);
	double e = 0, mx = 0;

	for (int i = 0; i < 33 * nin; i += 2)
		in[i] = 0;
	dense_forward(o1, in, w, b, 16, nin, nout, 0, 1, isa);
	dense_forward(o2, in, w, b, 16, nin, nout, 0, 2, isa);
	dense_forward(o3, in, w, b, 16, nin, nout, 0, 3, isa);
	CHECK(!memcmp(o1, o2, sizeof *o1 * 16 * nout) && !memcmp(o1, o3, sizeof *o1 * 16 * nout),
	      "%s streaming forward: 1, 2, 3 threads give the same bits", isa_name(isa));
	/* 32, the most that streams: its first 16 rows are 16's, whatever the threads */
	dense_forward(o2, in, w, b, 32, nin, nout, 0, 3, isa);
	CHECK(!memcmp(o1, o2, sizeof *o1 * 16 * nout), "%s streaming forward: a batch of 32 streams, "
	      "its rows as a batch of 16's", isa_name(isa));
	dense_forward(o2, in, w, b, 33, nin, nout, 0, 2, isa);
	for (int i = 0; i < 16 * nout; i++)
		e = fmax(e, fabs((double)o1[i] - o2[i])), mx = fmax(mx, fabs((double)o2[i]));
	CHECK(e > 0 && e / mx < 1e-5, "%s streaming forward against sgemm: rel err %.3g", isa_name(isa), e / mx);
	free(in), free(w), free(b), free(o1), free(o2), free(o3);
}

/* AVX-512's streaming forward runs AVX2's FMAs per output in the same order: their tiles
 * (a block's every input, zero or not) and their lists (its nonzero inputs only) both
 * sum the generic loop's terms in its order, the same bits on both paths, over blocks of
 * w's rows where the inputs are dense (tiles) and where most are zero (lists), and
 * columns past the 64-wide tiles; the generic loop, unfused, within 1e-5. w (6001 x 200)
 * streams. */
static void dense_forward_widths(void)
{
	static const isa_kind paths[] = { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };
	int B = 10, nin = 6001, nout = 200;
	rng r;

	rng_seed(&r, 31);
	float *in = randv(&r, (size_t)B * nin, -1, 1), *w = randv(&r, (size_t)nin * nout, -1, 1);
	float *b = randv(&r, nout, -1, 1), *o[3];
	double e = 0, mx = 0;

	CHECK(dense_streams(B, nin, nout), "the widths' forward streams");
	/* rows 0..2999 a third zero (tiles), the rest 95% zero (lists) */
	for (int k = 0; k < B; k++)
		for (int i = 0; i < nin; i++)
			if (i < 3000 ? (k + i) % 3 == 0 : (k + i) % 20 != 0)
				in[(long)k * nin + i] = 0;
	for (int p = 0; p < 3; p++) {
		o[p] = malloc(sizeof *o[p] * B * nout);
		dense_forward(o[p], in, w, b, B, nin, nout, 0, 2, paths[p]);
	}
	for (int i = 0; i < B * nout; i++)
		e = fmax(e, fabs((double)o[0][i] - o[1][i])), mx = fmax(mx, fabs((double)o[0][i]));
	CHECK(e / mx < 1e-5, "streaming forward: AVX2 against the generic loop: rel err %.3g", e / mx);
	CHECK(!memcmp(o[1], o[2], sizeof *o[0] * B * nout), "streaming forward: AVX-512 gives AVX2's bits");
	free(in), free(w), free(b), free(o[0]), free(o[1]), free(o[2]);
}

static void test_dense_forward_threads(void)
{
	isa_kind paths[3];

	for (int i = 0, n = cpu_paths(paths, "dense"); i < n; i++)
		dense_forward_threads(paths[i]);
	if (isa_supported(ISA_AVX512))
		dense_forward_widths();
}

/* The 2x2 stride-2 pool's fast path against the rule of the general loop (the first
 * in-bounds pixel seeds the max, a later one wins only if strictly greater; so ties go to
 * the first and a seeded NaN stays), exactly: values and argmax, with ties, NaNs and 7
 * channels (4 by SSE, 3 after); and an odd size (the general loop) agrees too. */
static void test_pool_2x2(void)
{
	int B = 2, C = 7;
	char err[ERR_MAX];
	rng r;

	rng_seed(&r, 29);
	for (int H = 6; H <= 7; H++) {
		geom g;

		CHECK(geom_init(&g, H, 8, C, 2, 2, 2, 2, GEOM_SAME, C, err) == 0, "geom: %s", err);
		size_t nin = (size_t)B * H * 8 * C, nout = (size_t)B * g.oh * g.ow * C;
		float *in = randv(&r, nin, -2, 2), *out = malloc(sizeof *out * nout);
		int32_t *am = malloc(sizeof *am * nout);
		int bad = 0;

		for (size_t i = 0; i < nin; i++)
			in[i] = (float)(int)in[i]; /* few distinct values: many ties */
		in[3] = NAN, in[8 * C + 5] = NAN;
		maxpool_forward(&g, out, am, in, B, 1);
		for (int n = 0; n < B; n++)
			for (int oy = 0; oy < g.oh; oy++)
				for (int ox = 0; ox < g.ow; ox++)
					for (int ch = 0; ch < C; ch++) {
						size_t o = (((size_t)n * g.oh + oy) * g.ow + ox) * C + ch;
						const float *img = in + (size_t)n * H * 8 * C;
						float v = 0;
						int32_t a = -1;

						for (int ky = 0; ky < 2; ky++)
							for (int kx = 0; kx < 2; kx++) {
								int iy = 2 * oy - g.pt + ky, ix = 2 * ox - g.pl + kx;
								int32_t off = (iy * 8 + ix) * C + ch;

								if (iy < 0 || iy >= H || ix < 0 || ix >= 8)
									continue;
								if (a < 0 || img[off] > v)
									v = img[off], a = off;
							}
						bad += am[o] != a || memcmp(&out[o], &v, sizeof v);
					}
		CHECK(bad == 0, "2x2 pool over %dx8x%d: %d outputs differ from the rule", H, C, bad);

		/* 3 threads: the same bits; backward against the scatter rule then the ReLU mask
		 * (in playing the ReLU's output), fused, every input overwritten, on 1 and 3 threads */
		float *out3 = malloc(sizeof *out3 * nout), *dout = randv(&r, nout, -1, 1);
		float *want = calloc(nin, sizeof *want), *din = malloc(sizeof *din * nin);
		int32_t *am3 = malloc(sizeof *am3 * nout);
		size_t isz = (size_t)H * 8 * C, osz = (size_t)g.oh * g.ow * C;

		maxpool_forward(&g, out3, am3, in, B, 3);
		CHECK(!memcmp(out, out3, sizeof *out * nout) && !memcmp(am, am3, sizeof *am * nout),
		      "pool %dx8 forward: 3 threads give the same bits", H);
		for (size_t o = 0; o < nout; o++)
			want[o / osz * isz + (size_t)am[o]] += dout[o];
		for (size_t i = 0; i < nin; i++)
			want[i] = in[i] > 0 ? want[i] : 0.0f;
		for (int t = 1; t <= 3; t += 2) {
			memset(din, 0x7f, sizeof *din * nin);
			maxpool_backward_relu(&g, din, dout, am, out, B, t);
			CHECK(!memcmp(din, want, sizeof *din * nin),
			      "pool %dx8 backward with the ReLU mask fused, %d threads: the rule's bits", H, t);
		}
		free(in), free(out), free(am), free(out3), free(dout), free(want), free(din), free(am3);
	}
}

/* dense_backward_rows's row callback: row i of dw into ctx's [nin, nout]. */
static void take_row(void *ctx, long i, const float *row)
{
	const float *const *c = ctx;
	float *dw = (float *)c[0];
	long nout = (long)*c[1];

	memcpy(dw + i * nout, row, sizeof *row * (size_t)nout);
}

/* The dense layer with a small batch over a large w (the streaming backward) against a
 * double reference, with sizes that are not multiples of the SSE width or the column tile, and the same bits
 * for the same thread count; dense_backward_rows gives dense_backward's bits. Tolerance 1e-5
 * relative: float sums over 5001 terms. On each path. */
static void dense_stream(isa_kind isa)
{
	const char *pn = isa_name(isa);
	int B = 10, nin = 5001, nout = 301;
	rng r;

	rng_seed(&r, 21);
	CHECK(dense_streams(B, nin, nout) && !dense_streams(B, 7, 5) && !dense_streams(64, nin, nout),
	      "streaming chosen for small batches over large weights only");
	size_t nw = (size_t)nin * nout;
	float *in = randv(&r, (size_t)B * nin, -1, 1), *w = randv(&r, nw, -1, 1), *b = randv(&r, nout, -1, 1);
	float *dout = randv(&r, (size_t)B * nout, -1, 1), *out = malloc(sizeof *out * B * nout);
	float *out3 = malloc(sizeof *out3 * B * nout), *din = malloc(sizeof *din * B * nin);
	float *din3 = malloc(sizeof *din3 * B * nin), *dw = malloc(sizeof *dw * nw), *dw3 = malloc(sizeof *dw3 * nw);
	float db[301];
	double ef = 0, mf = 0, ei = 0, mi = 0, ew = 0, mw = 0;

	for (int i = 0; i < nin; i += 3)
		in[i] = 0; /* zeros take the skip path */
	for (int n = 0; n < B; n++)
		in[(size_t)n * nin + 7] = 0; /* a row of w whose inputs are all zero: dw's row is 0 */
	dense_forward(out, in, w, b, B, nin, nout, 1, 2, isa);
	dense_forward(out3, in, w, b, B, nin, nout, 1, 2, isa);
	CHECK(!memcmp(out, out3, sizeof *out * B * nout), "%s forward: same threads, same bits", pn);
	dense_forward(out3, in, w, b, B, nin, nout, 1, 3, isa);
	for (size_t i = 0; i < nw; i++)
		dw[i] = 5.0f;
	dense_backward(din, dw, db, dout, in, w, NULL, B, nin, nout, 0, 2, isa);
	dense_backward(din3, dw3, db, dout, in, w, NULL, B, nin, nout, 0, 3, isa);
	CHECK(!memcmp(dw, dw3, sizeof *dw * nw) && !memcmp(din, din3, sizeof *din * B * nin),
	      "%s backward: split by rows, so thread count does not change the bits", pn);
	{
		float fn = (float)nout, db3[301];
		const float *ctx[2] = { dw3, &fn };

		memset(dw3, 0x7f, sizeof *dw3 * nw), memset(din3, 0x7f, sizeof *din3 * B * nin);
		CHECK(dense_backward_rows(din3, db3, dout, in, w, NULL, B, nin, nout, take_row, ctx, 3, isa) == 0 &&
		      !memcmp(dw, dw3, sizeof *dw * nw) && !memcmp(din, din3, sizeof *din * B * nin) &&
		      !memcmp(db, db3, sizeof db), "%s backward by rows: dense_backward's bits", pn);
	}
	{
		/* din through a ReLU's backward (its output y: positive, zero, negative, NaN):
		 * the unmasked din's bits where y > 0, 0 elsewhere, on every path */
		float fn = (float)nout, db3[301], *y = randv(&r, (size_t)B * nin, -1, 1);
		float *want = malloc(sizeof *want * B * nin), *dw4 = malloc(sizeof *dw4 * nw);
		const float *ctx[2] = { dw3, &fn };

		for (int i = 0; i < B * nin; i += 97)
			y[i] = i % 2 ? 0.0f : NAN;
		vec_relu_backward(want, din, y, (size_t)B * nin);
		memset(din3, 0x7f, sizeof *din3 * B * nin);
		dense_backward(din3, dw4, db3, dout, in, w, y, B, nin, nout, 0, 3, isa);
		CHECK(!memcmp(din3, want, sizeof *want * B * nin) && !memcmp(dw4, dw, sizeof *dw * nw),
		      "%s backward masked by a ReLU: the unmasked din's bits through its mask", pn);
		memset(din3, 0x7f, sizeof *din3 * B * nin);
		CHECK(dense_backward_rows(din3, db3, dout, in, w, y, B, nin, nout, take_row, ctx, 2, isa) == 0 &&
		      !memcmp(din3, want, sizeof *want * B * nin),
		      "%s backward by rows masked by a ReLU: the same bits", pn);
		/* a small layer (sgemm) masks after: din of the first 7 inputs into 5 outputs */
		float ds[2 * 7], dsm[2 * 7], dws[7 * 5], dbs[5], ys[2 * 7];

		for (int i = 0; i < 14; i++)
			ys[i] = i % 3 ? y[i] : -1.0f;
		dense_backward(ds, dws, dbs, dout, in, w, NULL, 2, 7, 5, 0, 1, isa);
		vec_relu_backward(ds, ds, ys, 14);
		dense_backward(dsm, dws, dbs, dout, in, w, ys, 2, 7, 5, 0, 1, isa);
		CHECK(!dense_streams(2, 7, 5) && !memcmp(ds, dsm, sizeof ds),
		      "%s small backward masked by a ReLU: sgemm's din through the mask", pn);
		free(y), free(want), free(dw4);
	}
	for (int n = 0; n < B; n++)
		for (int o = 0; o < nout; o++) {
			double s = b[o];

			for (int i = 0; i < nin; i++)
				s += (double)in[(size_t)n * nin + i] * w[(size_t)i * nout + o];
			s = s > 0 ? s : 0;
			ef = fmax(ef, fabs(s - out[n * nout + o])), mf = fmax(mf, fabs(s));
			ef = fmax(ef, fabs(s - out3[n * nout + o]));
		}
	for (int i = 0; i < nin; i++)
		for (int o = 0; o < nout; o++) {
			double s = 0;

			for (int n = 0; n < B; n++)
				s += (double)in[(size_t)n * nin + i] * dout[n * nout + o];
			ew = fmax(ew, fabs(s - dw[(size_t)i * nout + o])), mw = fmax(mw, fabs(s));
		}
	for (int n = 0; n < B; n++)
		for (int i = 0; i < nin; i++) {
			double s = 0;

			for (int o = 0; o < nout; o++)
				s += (double)dout[n * nout + o] * w[(size_t)i * nout + o];
			ei = fmax(ei, fabs(s - din[(size_t)n * nin + i])), mi = fmax(mi, fabs(s));
		}
	/* each path's own rule, bit for bit: every output and dw element sums its terms in
	 * row (batch) order, by FMA on AVX2's path (but for dw's last nout % 8 columns, its
	 * scalar tail), a multiply then an add on the portable one (which skips zero inputs:
	 * their +0 would change nothing) */
	float *ref = malloc(sizeof *ref * B * nout);
	int fma = isa >= ISA_AVX2, bad = 0;

	for (int n = 0; n < B; n++)
		for (int o = 0; o < nout; o++) {
			float acc = 0;

			for (int i = 0; i < nin; i++) {
				float x = in[(size_t)n * nin + i], y = w[(size_t)i * nout + o], p = x * y;

				if (x != 0.0f)
					acc = fma ? fmaf(x, y, acc) : acc + p;
			}
			ref[n * nout + o] = acc;
		}
	vec_bias_relu(ref, b, B, nout, 1);
	CHECK(!memcmp(ref, out, sizeof *out * B * nout), "%s forward: the bits of its rule (%s)", pn,
	      fma ? "FMA" : "multiply, add");
	for (int i = 0; i < nin; i++)
		for (int o = 0; o < nout; o++) {
			float acc = 0;

			for (int n = 0; n < B; n++) {
				float x = in[(size_t)n * nin + i], y = dout[n * nout + o], p = x * y;

				if (x != 0.0f)
					acc = fma && o < nout / 8 * 8 ? fmaf(x, y, acc) : acc + p;
			}
			bad += memcmp(&acc, &dw[(size_t)i * nout + o], sizeof acc) != 0;
		}
	CHECK(bad == 0, "%s dw: %d elements differ from the bits of its rule", pn, bad);
	free(ref);
	CHECK(ef / mf < 1e-5, "%s streaming forward rel err %.3g", pn, ef / mf);
	CHECK(ew / mw < 1e-5, "%s streaming dw rel err %.3g (acc 0 overwrote)", pn, ew / mw);
	CHECK(ei / mi < 1e-5, "%s streaming din rel err %.3g", pn, ei / mi);
	free(in), free(w), free(b), free(dout), free(out), free(out3), free(din), free(din3), free(dw), free(dw3);
}

static void test_dense_stream(void)
{
	isa_kind paths[3];

	for (int i = 0, n = cpu_paths(paths, "dense"); i < n; i++)
		dense_stream(paths[i]);
}

/* The streaming backward at every batch size that changes its grouping (the AVX2 kernel
 * covers the batch with groups of at most 12 rows: 1, 12, 13 = 7 + 6, 25 = 9 + 8 + 8, 32),
 * with acc adding onto dw and din skipped, against a double reference. Tolerance 1e-5
 * relative: float sums of up to 259 terms. On each path. */
static void dense_stream_batches(isa_kind isa)
{
	static const int sizes[] = { 1, 3, 8, 12, 13, 16, 25, 32 };
	int nin = 4099, nout = 259;
	size_t nw = (size_t)nin * nout;
	rng r;

	rng_seed(&r, 31);
	float *w = randv(&r, nw, -1, 1), *dw = malloc(sizeof *dw * nw), *db = malloc(sizeof *db * nout);
	float *in = randv(&r, (size_t)32 * nin, -1, 1), *dout = randv(&r, (size_t)32 * nout, -1, 1);
	float *din = malloc(sizeof *din * 32 * nin);

	for (size_t i = 0; i < (size_t)32 * nin; i += 2)
		in[i] = 0;
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		int B = sizes[k], acc = k % 2;
		double ew = 0, mw = 0, ei = 0, mi = 0;

		CHECK(dense_streams(B, nin, nout), "batch %d streams", B);
		for (size_t i = 0; i < nw; i++)
			dw[i] = acc ? (float)(i % 7) - 3.0f : NAN;
		dense_backward(B % 3 ? din : NULL, dw, db, dout, in, w, NULL, B, nin, nout, acc, 2, isa);
		for (int i = 0; i < nin; i++)
			for (int o = 0; o < nout; o++) {
				size_t at = (size_t)i * nout + o;
				double s = acc ? (double)(at % 7) - 3.0 : 0;

				for (int n = 0; n < B; n++)
					s += (double)in[(size_t)n * nin + i] * dout[n * nout + o];
				ew = fmax(ew, fabs(s - dw[at])), mw = fmax(mw, fabs(s));
			}
		for (int n = 0; B % 3 && n < B; n++)
			for (int i = 0; i < nin; i++) {
				double s = 0;

				for (int o = 0; o < nout; o++)
					s += (double)dout[n * nout + o] * w[(size_t)i * nout + o];
				ei = fmax(ei, fabs(s - din[(size_t)n * nin + i])), mi = fmax(mi, fabs(s));
			}
		CHECK(ew / mw < 1e-5, "%s batch %d, acc %d: dw rel err %.3g", isa_name(isa), B, acc, ew / mw);
		CHECK(!(B % 3) || ei / mi < 1e-5, "%s batch %d: din rel err %.3g", isa_name(isa), B, ei / mi);
	}
	free(w), free(dw), free(db), free(in), free(dout), free(din);
}

static void test_dense_stream_batches(void)
{
	isa_kind paths[3];

	for (int i = 0, n = cpu_paths(paths, "dense"); i < n; i++)
		dense_stream_batches(paths[i]);
}

static void test_pool_dense_dropout_grads(void)
{
	rng r;
	char err[ERR_MAX];

	rng_seed(&r, 11);
	/* max-pool: 2x2/2 SAME on odd sizes, 3x3/2 VALID, 3x3/1 SAME (overlapping windows) */
	static const int pc[][6] = { { 5, 7, 3, 2, 2, 1 }, { 7, 6, 2, 3, 2, 0 }, { 4, 5, 2, 3, 1, 1 } };
	for (size_t i = 0; i < sizeof pc / sizeof *pc; i++) {
		const int *c = pc[i];
		layer l = { .kind = 1, .B = 2 };
		char what[64];

		geom_init(&l.g, c[0], c[1], c[2], c[3], c[3], c[4], c[4], c[5] ? GEOM_SAME : GEOM_VALID,
			  c[2], err);
		size_t nin = (size_t)2 * c[0] * c[1] * c[2], nout = (size_t)2 * l.g.oh * l.g.ow * c[2];

		l.in = spaced(&r, nin);
		l.amax = malloc(sizeof *l.amax * nout);
		snprintf(what, sizeof what, "maxpool %dx%dx%d k%d s%d", c[0], c[1], c[2], c[3], c[4]);
		check_layer_grads(&l, nin, nout, what, &r);
		free(l.in), free(l.amax);
	}
	for (int relu = 0; relu <= 1; relu++) {
		layer l = { .kind = 2, .B = 3, .nin = 7, .nout = 5, .relu = relu };

		l.in = spaced(&r, 21);
		l.w = randv(&r, 35, -1, 1);
		l.b = randv(&r, 5, -0.5f, 0.5f);
		check_layer_grads(&l, 21, 15, relu ? "dense relu" : "dense", &r);
		free(l.in), free(l.w), free(l.b);
	}
	{
		layer l = { .kind = 3, .B = 4, .nin = 50, .keep = 0.3f };
		float *tmp = randv(&r, 200, -1, 1);

		l.in = randv(&r, 200, -1, 1);
		l.mask = malloc(200);
		dropout_forward(tmp, l.mask, 200, l.keep, &r);
		check_layer_grads(&l, 200, 200, "dropout", &r);
		free(l.in), free(l.mask), free(tmp);
	}
}

static void test_dropout_stats(void)
{
	size_t n = 1000000, kept = 0;
	float *x = malloc(sizeof *x * n), keep = 0.2f;
	uint8_t *mask = malloc(n);
	double sum = 0;
	int exact = 1;
	rng r, r2;

	for (size_t i = 0; i < n; i++)
		x[i] = 1.0f;
	rng_stream(&r, 5, 1);
	dropout_forward(x, mask, n, keep, &r);
	for (size_t i = 0; i < n; i++) {
		kept += mask[i];
		sum += x[i];
		exact &= mask[i] ? x[i] == 1.0f / keep : x[i] == 0.0f;
	}
	/* binomial sd of the kept fraction is sqrt(.2*.8/1e6) = 4e-4: allow 5 sd */
	CHECK(fabs((double)kept / n - keep) < 2e-3, "keep rate %.5f vs %.1f", (double)kept / n, keep);
	CHECK(fabs(sum / n - 1.0) < 1e-2, "inverted dropout keeps the mean: %.5f", sum / n);
	CHECK(exact, "kept scaled by exactly 1/keep, dropped zero");
	/* same stream, same mask */
	uint8_t *mask2 = malloc(n);
	rng_stream(&r2, 5, 1);
	for (size_t i = 0; i < n; i++)
		x[i] = 1.0f;
	dropout_forward(x, mask2, n, keep, &r2);
	CHECK(!memcmp(mask, mask2, n), "seeded dropout reproducible");
	/* keep 1: every value through untouched, every mask byte 1 (over varied values, some
	 * zero, and a mask that held zeros: a dropout that zeroes or scales anything fails) */
	float *y1 = randv(&r2, 1000, -3, 3);
	size_t kept1 = 0;

	for (size_t i = 0; i < 1000; i += 7)
		y1[i] = 0;
	memcpy(x, y1, sizeof *y1 * 1000);
	memset(mask2, 0, 1000);
	dropout_forward(x, mask2, 1000, 1.0f, &r2);
	for (size_t i = 0; i < 1000; i++)
		kept1 += mask2[i] == 1;
	CHECK(!memcmp(x, y1, sizeof *y1 * 1000) && kept1 == 1000, "keep 1 is the identity (%zu kept)",
	      kept1);
	free(y1);

	/* the vector path against the rule element by element, over a length that is no
	 * multiple of the vector, the chunk or the generator's round: element i is kept iff
	 * the i-th 32-bit value of rng_x4 seeded from r is below keep * 2^32 */
	size_t m = 5003;
	uint32_t *u = malloc(sizeof *u * m);
	float *y = randv(&r2, m, -3, 3);
	rng_x4 q;
	int bad = 0;

	memcpy(x, y, sizeof *y * m);
	rng_stream(&r, 6, 1), rng_stream(&r2, 6, 1);
	dropout_forward(x, mask, m, 0.3f, &r);
	rng_x4_init(&q, &r2);
	for (size_t i = 0; i < m; i += 1024)
		rng_x4_u32(&q, u + i, m - i < 1024 ? m - i : 1024);
	for (size_t i = 0; i < m; i++) {
		int k = u[i] < (uint32_t)(0.3f * 4294967296.0);
		float want = k ? y[i] * (1.0f / 0.3f) : 0.0f;

		bad += mask[i] != k || memcmp(&x[i], &want, sizeof want);
	}
	CHECK(bad == 0, "dropout: %d of %zu elements break the rule", bad, m);
	CHECK(r.s[0] == r2.s[0] && r.s[3] == r2.s[3], "dropout draws four values from r");

	/* backward, vector path and tail, in place too: dx = mask ? dy / keep : 0, bit for bit */
	bad = 0;
	for (size_t i = 0; i < m; i++)
		mask[i] = (uint8_t)(u[i] % 3), x[i] = y[i];
	dropout_backward(x, x, mask, m, 0.3f);
	for (size_t i = 0; i < m; i++) {
		float want = mask[i] ? y[i] * (1.0f / 0.3f) : 0.0f;

		bad += memcmp(&x[i], &want, sizeof want) != 0;
	}
	CHECK(bad == 0, "dropout backward: %d of %zu elements break the rule", bad, m);
	free(x), free(mask), free(mask2), free(u), free(y);
}

static void test_softmax(void)
{
	float z[6] = { 1.0f, 2.0f, 0.5f, 1000.0f, 0.0f, -1000.0f }, p[6], d[6];
	int y[2] = { 1, 1 }, correct = -1;
	double L = softmax_xent(p, d, &correct, z, y, 2, 3);
	double e1 = exp(1.0), e2 = exp(2.0), e05 = exp(0.5), s = e1 + e2 + e05;
	/* row 0 by hand; row 1: log-sum-exp ~ 1000, loss 1000 */
	double want = (-(log(e2 / s)) + 1000.0) / 2;

	CHECK_NEAR(L, want, 1e-6, "softmax xent loss");
	CHECK(correct == 1, "one of two correct (%d)", correct);
	CHECK(isfinite(d[3]) && isfinite(d[5]), "huge logits stay finite");
	CHECK_NEAR(d[1], (e2 / s - 1) / 2, 1e-6, "dlogits at the label");
	CHECK_NEAR(d[0], (e1 / s) / 2, 1e-6, "dlogits elsewhere");
	CHECK_NEAR(p[3], 1.0, 1e-6, "probs row 1");
	/* per row, as evaluate uses it: the same losses (their mean is softmax_xent's to the
	 * bit), the argmax, and no loss for an unknown label */
	double rl[2];
	int pred[2], y2[2] = { 1, -1 };
	softmax_xent_rows(rl, pred, z, y, 2, 3);
	CHECK((rl[0] + rl[1]) / 2 == L, "row losses %.17g %.17g average to %.17g", rl[0], rl[1], L);
	CHECK(pred[0] == 1 && pred[1] == 0, "row argmax %d %d", pred[0], pred[1]);
	softmax_xent_rows(rl, NULL, z, y2, 2, 3);
	CHECK(rl[1] == 0, "label -1: no loss (%g)", rl[1]);
	CHECK_NEAR(rl[0], -log(e2 / s), 1e-12, "row 0's loss by hand");
	/* finite differences on the loss itself */
	double maxerr = 0;
	float z2[6] = { 0.3f, -0.2f, 0.9f, 0.1f, 0.4f, -0.7f };
	softmax_xent(NULL, d, NULL, z2, y, 2, 3);
	for (int i = 0; i < 6; i++) {
		float s0 = z2[i];
		z2[i] = s0 + 1e-2f;
		double lp = softmax_xent(NULL, NULL, NULL, z2, y, 2, 3);
		z2[i] = s0 - 1e-2f;
		double lm = softmax_xent(NULL, NULL, NULL, z2, y, 2, 3);
		z2[i] = s0;
		maxerr = fmax(maxerr, fabs((lp - lm) / 2e-2 - d[i]));
	}
	/* the loss is smooth: central-difference error is O(eps^2) ~ 1e-5 */
	CHECK(maxerr < 1e-4, "softmax xent dlogits vs finite differences: %.3g", maxerr);
}

/* Adam on path isa: threads split the buffer, and the result must not depend on their
 * number; the vector loops (AVX2 then SSE, or SSE alone for generic) against the plain float
 * formula element by element, bit for bit (same operations, same rounding), so every path
 * gives the same bits; and optim_adam_row gives optim_adam_step's. */
static void adam_path(const optim_adam *o, isa_kind isa)
{
	const char *pn = isa_name(isa);
	size_t n = (1 << 20) + 37;
	rng r;
	rng_seed(&r, 1);
	float *p1 = randv(&r, n, -1, 1), *gg = randv(&r, n, -1, 1), *p2 = malloc(sizeof *p2 * n);
	float *m1 = calloc(n, 4), *v1 = calloc(n, 4), *m2 = calloc(n, 4), *v2 = calloc(n, 4);
	memcpy(p2, p1, sizeof *p2 * n);
	for (int t = 1; t <= 3; t++) {
		optim_adam_step(o, t, p1, gg, m1, v1, n, 1, isa);
		optim_adam_step(o, t, p2, gg, m2, v2, n, 3, isa);
	}
	CHECK(!memcmp(p1, p2, sizeof *p1 * n) && !memcmp(v1, v2, sizeof *v1 * n),
	      "%s adam: 1 and 3 threads give the same bytes", pn);

	float lr = (float)(o->lr * sqrt(1.0 - pow(o->beta2, 4.0)) / (1.0 - pow(o->beta1, 4.0)));
	float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
	int bad = 0;

	memcpy(p2, p1, sizeof *p2 * n), memcpy(m2, m1, sizeof *m2 * n), memcpy(v2, v1, sizeof *v2 * n);
	optim_adam_step(o, 4, p1, gg, m1, v1, n, 2, isa);
	for (size_t i = 0; i < n; i++) {
		float mi = b1 * m2[i] + (1.0f - b1) * gg[i];
		float vi = b2 * v2[i] + (1.0f - b2) * gg[i] * gg[i];
		float pi = p2[i] - lr * mi / (sqrtf(vi) + eps);

		bad += memcmp(&mi, &m1[i], 4) || memcmp(&vi, &v1[i], 4) || memcmp(&pi, &p1[i], 4);
	}
	CHECK(bad == 0, "%s adam: %d of %zu elements differ from the scalar formula's bits", pn, bad, n);

	optim_adam_row_k k;

	/* by rows of 1000 (and a short last one), as the fused dense backward does */
	optim_adam_row_init(&k, o, 4, isa);
	for (size_t at = 0; at < n; at += 1000)
		optim_adam_row(&k, p2 + at, gg + at, m2 + at, v2 + at, n - at < 1000 ? n - at : 1000);
	CHECK(!memcmp(p1, p2, sizeof *p1 * n) && !memcmp(m1, m2, sizeof *m1 * n) && !memcmp(v1, v2, sizeof *v1 * n),
	      "%s adam by rows: optim_adam_step's bits", pn);
	free(p1), free(gg), free(p2), free(m1), free(v1), free(m2), free(v2);
}

static void test_optim(void)
{
	optim_adam o = { .lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8 };
	float p = 1, g = 0.5f, m = 0, v = 0;

	/* by hand: m = .05, v = .00025, lr_t = .1*sqrt(.001)/.1, p = 1 - lr_t*.05/(.0158114+1e-8) */
	optim_adam_step(&o, 1, &p, &g, &m, &v, 1, 1, isa_best());
	CHECK_NEAR(p, 0.9000000632455132, 1e-6, "adam step 1");
	CHECK_NEAR(m, 0.05, 1e-7, "adam m");
	CHECK_NEAR(v, 0.00025, 1e-8, "adam v (float beta2)");
	g = -1;
	optim_adam_step(&o, 2, &p, &g, &m, &v, 1, 1, isa_best());
	CHECK_NEAR(p, 0.9366104055930933, 1e-6, "adam step 2");

	float q = 1, acc = 0;
	g = 0.5f;
	optim_momentum_step(0.1, 0.9, &q, &g, &acc, 1, 1);
	CHECK_NEAR(q, 0.95, 1e-7, "momentum step 1");
	g = -1;
	optim_momentum_step(0.1, 0.9, &q, &g, &acc, 1, 1);
	CHECK_NEAR(q, 1.005, 1e-6, "momentum step 2");

	isa_kind paths[3];

	for (int i = 0, np = cpu_paths(paths, "Adam"); i < np; i++)
		adam_path(&o, paths[i]);
}

/* vec_bias_relu for each activation and vec_relu6_backward against their definitions,
 * over rows of 7 (an SSE step and a scalar tail) and values on both sides of 0 and 6,
 * the bounds themselves included. */
static void test_vec_act(void)
{
	enum { R = 3, N = 7 };
	float x[R * N], b[N], o[R * N], dy[R * N], dx[R * N];
	int bad = 0, pass6 = 0;

	for (int i = 0; i < R * N; i++) {
		x[i] = (float)(i % 11) * 1.5f - 4.5f;   /* -4.5 .. 10.5, 0 and 6 among them */
		dy[i] = (float)i + 1;
	}
	for (int j = 0; j < N; j++)
		b[j] = j == 3 ? 0.0f : 0.25f * (float)(j - 3);
	for (int act = 0; act <= VEC_RELU6; act++)
		for (int withb = 0; withb < 2; withb++) {
			memcpy(o, x, sizeof o);
			vec_bias_relu(o, withb ? b : NULL, R, N, act);
			for (int i = 0; i < R * N; i++) {
				float v = x[i] + (withb ? b[i % N] : 0.0f);

				v = act && v < 0 ? 0.0f : v;
				v = act == VEC_RELU6 && v > 6 ? 6.0f : v;
				bad += o[i] != v;
			}
		}
	CHECK(!bad, "vec_bias_relu: %d outputs off", bad);
	memcpy(o, x, sizeof o);
	vec_bias_relu(o, NULL, R, N, VEC_RELU6);
	vec_relu6_backward(dx, dy, o, R * N);
	for (int i = 0; i < R * N; i++) {
		bad += dx[i] != (o[i] > 0 && o[i] < 6 ? dy[i] : 0.0f);
		pass6 += o[i] == 6 || o[i] == 0;
	}
	CHECK(!bad && pass6 > 2, "vec_relu6_backward: %d gradients off (%d at a bound)", bad, pass6);
	/* in place, as the model calls it */
	vec_relu6_backward(dy, dy, o, R * N);
	CHECK(!memcmp(dx, dy, sizeof dx), "vec_relu6_backward in place");
}

int main(void)
{
	test_vec_act();
	test_geometry();
	test_conv_grads();
	test_conv_tiled();
	test_conv_transposed();
	test_conv_direct();
	test_conv_planes();
	test_conv_pointwise();
	test_conv_strided_dw();
	test_conv_strided_din();
	test_isa_env();
	test_dense_stream();
	test_dense_stream_batches();
	test_dense_forward_threads();
	test_pool_dense_dropout_grads();
	test_pool_2x2();
	test_dropout_stats();
	test_softmax();
	test_optim();
	return check_done("test_nn");
}
