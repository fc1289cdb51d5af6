/* Unit tests for the window layers beyond TensorFlow's SAME/VALID: geom_init_pads (explicit
 * asymmetric pads, ceil mode, groups), grouped and depthwise convolution, average and global
 * average pooling, max-pooling over such geometries: each against a double-precision
 * reference loop and central finite differences, on every convolution path, with the same
 * bits for any thread count. Given a directory, also writes each case's inputs and our
 * outputs and gradients as DIR/NAME.npz for tests/window_ref.py to replay in PyTorch. */
#include "check.h"
#include "array/npz.h"
#include "nn/avgpool.h"
#include "nn/conv2d.h"
#include "nn/convdirect.h"
#include "nn/geom.h"
#include "nn/isa.h"
#include "nn/maxpool.h"
#include "nn/vec.h"
#include "util/errmsg.h"
#include "util/rng.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Finite differences as in test_nn: the layers are linear (max-pool piecewise, its inputs
 * spaced further apart than FD_EPS), so the only error is float rounding. */
#define FD_EPS 1e-2f
#define GRAD_TOL 1e-2
/* float kernels against the double reference: max |ours - ref| / max |ref| */
#define REF_TOL 1e-5

enum { K_CONV, K_MAX, K_AVG, K_AVGINCL, K_GAP };

typedef struct {
	const char *name;
	int kind;
	int h, w, c, kh, kw, sh, sw, pads[4], ceil, groups, oc, B;
	const char *path;   /* conv2d_path on the best ISA ("" for the pools) */
} wcase;

static const wcase cases[] = {
	/* grouped: per-group im2col + sgemm; stride 1 and strided (col2im) */
	{ "grouped", K_CONV, 7, 6, 4, 3, 3, 1, 1, { 1, 0, 2, 1 }, 0, 2, 6, 2, "grouped sgemm" },
	{ "grouped_s2", K_CONV, 8, 7, 6, 3, 2, 2, 1, { 0, 1, 1, 0 }, 0, 3, 3, 2, "grouped sgemm" },
	{ "grouped_1x1", K_CONV, 4, 5, 6, 1, 1, 1, 1, { 0, 0, 0, 0 }, 0, 2, 4, 2, "grouped sgemm" },
	/* depthwise: stride 2 and asymmetric pads, a multiplier of 2, more than one 64-channel
	 * block of the weight gradient, pads past the window */
	{ "dw_s2", K_CONV, 9, 8, 5, 3, 3, 2, 2, { 0, 1, 1, 2 }, 0, 5, 5, 2, "depthwise" },
	{ "dw_mult2", K_CONV, 6, 7, 3, 3, 3, 1, 1, { 1, 1, 1, 1 }, 0, 3, 6, 2, "depthwise" },
	{ "dw_wide", K_CONV, 5, 4, 70, 3, 3, 1, 2, { 2, 0, 0, 1 }, 0, 70, 70, 1, "depthwise" },
	{ "dw_bigpad", K_CONV, 4, 5, 2, 2, 3, 1, 1, { 3, 0, 1, 4 }, 0, 2, 4, 2, "depthwise" },
	{ "dw_allpad", K_CONV, 3, 4, 9, 2, 2, 1, 1, { 2, 0, 0, 3 }, 0, 9, 9, 2, "depthwise" },
	/* 3 wide, 5 high, strided down the rows: AVX-512's row kernel (two fours along a row,
	 * 32 channels then 4 masked) beside the pixels at the edges */
	{ "dw_5x3", K_CONV, 6, 13, 36, 5, 3, 2, 1, { 2, 1, 2, 1 }, 0, 36, 36, 1, "depthwise" },
	/* 5x5 stride 2: the other paths' fours of outputs (AVX-512's 32 channels, then AVX2's) */
	{ "dw_5x5_s2", K_CONV, 5, 15, 40, 5, 5, 2, 2, { 2, 2, 2, 2 }, 0, 40, 40, 1, "depthwise" },
	/* one group, explicit pads: convdirect (din too: cin 8) with asymmetric pads and pads
	 * past k-1 (the turned kernel's pad before goes negative), sgemm strided, a padded 1x1 */
	{ "direct_asym", K_CONV, 6, 7, 8, 3, 3, 1, 1, { 0, 2, 1, 0 }, 0, 1, 8, 2, NULL },
	{ "direct_bigpad", K_CONV, 5, 6, 8, 3, 3, 1, 1, { 3, 0, 0, 4 }, 0, 1, 8, 2, NULL },
	/* a first layer's few channels (AVX-512: every tap of a window row in one weight-
	 * gradient tile): an input narrower than the window with pads past it (every pixel at
	 * an edge), 16 + 8 output channels; and a 2x3 window with a row's middle inside */
	{ "direct_c3_narrow", K_CONV, 5, 2, 3, 3, 3, 1, 1, { 1, 3, 0, 2 }, 0, 1, 24, 2, NULL },
	{ "direct_c2_2x3", K_CONV, 4, 9, 2, 2, 3, 1, 1, { 0, 2, 1, 1 }, 0, 1, 16, 2, NULL },
	{ "sgemm_s2", K_CONV, 7, 7, 2, 3, 3, 2, 2, { 1, 0, 0, 1 }, 0, 1, 3, 2, "sgemm" },
	{ "sgemm_1x1pad", K_CONV, 4, 5, 3, 1, 1, 1, 1, { 1, 0, 0, 1 }, 0, 1, 4, 2, "sgemm" },
	/* pools: asymmetric pads with ceil mode; symmetric pads where the ceil rule drops a
	 * window starting in the padding (PyTorch's own padding argument then applies); a
	 * ceil overhang past an unpadded input (include_pad must not count it) */
	{ "max_asym_ceil", K_MAX, 7, 6, 3, 3, 3, 2, 2, { 1, 0, 1, 1 }, 1, 1, 3, 2, "" },
	{ "max_drop", K_MAX, 5, 5, 2, 2, 2, 2, 2, { 1, 1, 1, 1 }, 1, 1, 2, 2, "" },
	{ "max_overhang", K_MAX, 7, 8, 2, 3, 3, 3, 3, { 0, 0, 0, 0 }, 1, 1, 2, 1, "" },
	{ "avg_asym_ceil", K_AVG, 7, 6, 3, 3, 3, 2, 2, { 1, 0, 1, 1 }, 1, 1, 3, 2, "" },
	{ "avgincl_asym_ceil", K_AVGINCL, 7, 6, 3, 3, 3, 2, 2, { 1, 0, 1, 1 }, 1, 1, 3, 2, "" },
	{ "avg_drop", K_AVG, 5, 5, 2, 2, 2, 2, 2, { 1, 1, 1, 1 }, 1, 1, 2, 2, "" },
	{ "avgincl_drop", K_AVGINCL, 5, 5, 2, 2, 2, 2, 2, { 1, 1, 1, 1 }, 1, 1, 2, 2, "" },
	{ "avgincl_overhang", K_AVGINCL, 7, 8, 2, 3, 3, 3, 3, { 0, 0, 0, 0 }, 1, 1, 2, 1, "" },
	{ "avg_s1x2", K_AVG, 6, 5, 2, 3, 2, 1, 2, { 0, 0, 0, 0 }, 0, 1, 2, 2, "" },
	{ "avgincl_sym", K_AVGINCL, 6, 7, 3, 3, 3, 2, 2, { 1, 1, 1, 1 }, 0, 1, 3, 2, "" },
	{ "gap", K_GAP, 3, 4, 5, 1, 1, 1, 1, { 0, 0, 0, 0 }, 0, 1, 5, 2, "" },
};

/* One case's buffers: in [B, h, w, c], w [kh, kw, c/groups, oc], b [oc], out [B, oh, ow, oc]. */
typedef struct {
	const wcase *c;
	geom g;
	float *in, *w, *b, *ws;
	int32_t *amax;
	size_t nin, nw, nout;
	int threads;
	isa_kind isa;
} run;

static void fwd(run *r, float *out)
{
	const geom *g = &r->g;

	switch (r->c->kind) {
	case K_CONV:
		conv2d_forward(g, out, r->in, r->w, r->b, r->c->B, 0, r->ws, r->threads, r->isa);
		break;
	case K_MAX: maxpool_forward(g, out, r->amax, r->in, r->c->B, r->threads); break;
	case K_AVG:
	case K_AVGINCL:
		avgpool_forward(g, out, r->in, r->c->B, r->c->kind == K_AVGINCL, r->threads);
		break;
	default: gap_forward(out, r->in, r->c->B, (long)g->h * g->w, g->c, r->threads);
	}
}

/* din, dw, db given dout (dw, db only for conv; overwritten) */
static void bwd(run *r, float *din, float *dw, float *db, const float *dout)
{
	const geom *g = &r->g;

	switch (r->c->kind) {
	case K_CONV:
		conv2d_backward(g, din, dw, db, dout, r->in, r->w, r->c->B, 0, r->ws, r->threads, r->isa);
		break;
	case K_MAX: maxpool_backward_relu(g, din, dout, r->amax, NULL, r->c->B, r->threads); break;
	case K_AVG:
	case K_AVGINCL:
		avgpool_backward(g, din, dout, r->c->B, r->c->kind == K_AVGINCL, r->threads);
		break;
	default: gap_backward(din, dout, r->c->B, (long)g->h * g->w, g->c, r->threads);
	}
}

static float *randv(rng *rg, size_t n, float lo, float hi)
{
	float *v = malloc(sizeof *v * (n ? n : 1));

	for (size_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * rng_uniformf(rg);
	return v;
}

/* Distinct values 0.05 apart, shuffled: no max-pool ties within FD_EPS. */
static float *spaced(rng *rg, size_t n)
{
	float *v = malloc(sizeof *v * n);
	int64_t *idx = malloc(sizeof *idx * n);

	for (size_t i = 0; i < n; i++)
		idx[i] = (int64_t)i;
	rng_shuffle_i64(rg, idx, n);
	for (size_t i = 0; i < n; i++)
		v[i] = 0.05f * ((float)idx[i] - (float)n / 2 + 0.5f);
	free(idx);
	return v;
}

static int setup(run *r, const wcase *c, rng *rg, int threads, isa_kind isa, char *err)
{
	memset(r, 0, sizeof *r);
	r->c = c, r->threads = threads, r->isa = isa;
	if (c->kind == K_GAP) {
		r->g = (geom){ .h = c->h, .w = c->w, .c = c->c, .oh = 1, .ow = 1, .oc = c->c };
	} else if (geom_init_pads(&r->g, c->h, c->w, c->c, c->kh, c->kw, c->sh, c->sw, c->pads,
				  c->ceil, c->groups, c->oc, err)) {
		return -1;
	}
	r->nin = (size_t)c->B * c->h * c->w * c->c;
	r->nout = (size_t)c->B * r->g.oh * r->g.ow * c->oc;
	r->in = spaced(rg, r->nin);
	if (c->kind == K_CONV) {
		r->nw = (size_t)c->kh * c->kw * (c->c / c->groups) * c->oc;
		r->w = randv(rg, r->nw, -1, 1);
		r->b = randv(rg, (size_t)c->oc, -0.5f, 0.5f);
		r->ws = malloc(sizeof *r->ws * conv2d_workspace(&r->g, threads));
	}
	r->amax = malloc(sizeof *r->amax * r->nout);
	return 0;
}

static void release(run *r)
{
	free(r->in), free(r->w), free(r->b), free(r->ws), free(r->amax);
}

/* The layer by definition, in double: out = layer(in) (with bias), din/dw/db its gradients
 * given dout. Max-pool: the largest in-input value wins (ties: the first). */
static void reference(const run *r, const float *dout, double *out, double *din, double *dw,
		      double *db)
{
	const wcase *c = r->c;
	const geom *g = &r->g;
	int cg = c->c / c->groups, ng = c->oc / c->groups;

	memset(out, 0, sizeof *out * r->nout), memset(din, 0, sizeof *din * r->nin);
	if (c->kind == K_GAP) {
		long hw = (long)c->h * c->w;

		for (int n = 0; n < c->B; n++)
			for (long p = 0; p < hw; p++)
				for (int ch = 0; ch < c->c; ch++) {
					out[n * c->c + ch] += r->in[(n * hw + p) * c->c + ch] / (double)hw;
					din[(n * hw + p) * c->c + ch] = dout[n * c->c + ch] / (double)hw;
				}
		return;
	}
	if (c->kind == K_CONV) {
		memset(dw, 0, sizeof *dw * r->nw), memset(db, 0, sizeof *db * c->oc);
	}
	for (int n = 0; n < c->B; n++)
		for (int oy = 0; oy < g->oh; oy++)
			for (int ox = 0; ox < g->ow; ox++)
				for (int o = 0; o < c->oc; o++) {
					size_t oi = (((size_t)n * g->oh + oy) * g->ow + ox) * c->oc + o;
					int y0 = oy * g->sh - g->pt, x0 = ox * g->sw - g->pl, cells = 0;
					long best = -1;

					if (c->kind == K_CONV)
						out[oi] = r->b[o], db[o] += dout[oi];
					/* the divisor: cells in the input, or (include_pad) in the padded input */
					for (int ky = 0; ky < g->kh; ky++)
						for (int kx = 0; kx < g->kw; kx++) {
							int iy = y0 + ky, ix = x0 + kx;
							int inside = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
							int padded = iy >= -g->pt && iy < g->h + g->pb &&
								     ix >= -g->pl && ix < g->w + g->pr;

							cells += c->kind == K_AVGINCL ? padded : inside;
						}
					for (int ky = 0; ky < g->kh; ky++)
						for (int kx = 0; kx < g->kw; kx++) {
							int iy = y0 + ky, ix = x0 + kx;

							if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
								continue;
							size_t px = ((size_t)n * g->h + iy) * g->w + ix;

							if (c->kind == K_CONV) {
								int gi = o / ng;

								for (int ci = 0; ci < cg; ci++) {
									size_t ii = px * c->c + gi * cg + ci;
									size_t wi = (((size_t)ky * g->kw + kx) * cg + ci) * c->oc + o;

									out[oi] += (double)r->in[ii] * r->w[wi];
									din[ii] += (double)dout[oi] * r->w[wi];
									dw[wi] += (double)dout[oi] * r->in[ii];
								}
							} else if (c->kind == K_MAX) {
								size_t ii = px * c->c + o;

								if (best < 0 || r->in[ii] > r->in[best])
									best = (long)ii;
							} else {
								size_t ii = px * c->c + o;

								out[oi] += r->in[ii] / (double)cells;
								din[ii] += dout[oi] / (double)cells;
							}
						}
					if (c->kind == K_MAX && best >= 0)
						out[oi] = r->in[best], din[best] += dout[oi];
				}
}

static double relerr(const float *a, const double *ref, size_t n)
{
	double e = 0, m = 1e-12;

	for (size_t i = 0; i < n; i++) {
		if (fabs(a[i] - ref[i]) > e)
			e = fabs(a[i] - ref[i]);
		if (fabs(ref[i]) > m)
			m = fabs(ref[i]);
	}
	return e / m;
}

static double loss(run *r, float *out, const float *rr)
{
	double s = 0;

	fwd(r, out);
	for (size_t i = 0; i < r->nout; i++)
		s += (double)out[i] * rr[i];
	return s;
}

/* max |numeric - analytic| / max |analytic| of L = sum(out * rr) over the n floats x */
static double fd_err(run *r, float *x, const float *an, size_t n, float *out, const float *rr)
{
	double maxerr = 0, maxan = 1e-6;

	for (size_t i = 0; i < n; i++) {
		float s = x[i];
		double lp, lm, num;

		x[i] = s + FD_EPS;
		lp = loss(r, out, rr);
		x[i] = s - FD_EPS;
		lm = loss(r, out, rr);
		x[i] = s;
		num = (lp - lm) / (2.0 * FD_EPS);
		if (fabs(num - an[i]) > maxerr)
			maxerr = fabs(num - an[i]);
		if (fabs(an[i]) > maxan)
			maxan = fabs(an[i]);
	}
	return maxerr / maxan;
}

static int add_f(npz *z, const char *name, const float *v, int ndim, const int64_t *shape,
		 char *err)
{
	tensor t;

	if (tensor_alloc(&t, DT_F4, ndim, shape, 0, err))
		return -1;
	memcpy(t.data, v, (size_t)tensor_nbytes(&t));
	return npz_add_move(z, name, &t, err);
}

/* DIR/NAME.npz: meta (i8: kind, h, w, c, kh, kw, sh, sw, pads t l b r, ceil, groups, oc, B,
 * oh, ow), in, dout, out, din, and for conv w, b, dw, db. */
static int save(const run *r, const char *dir, const float *dout, const float *out,
		const float *din, const float *dw, const float *db, char *err)
{
	const wcase *c = r->c;
	const geom *g = &r->g;
	int64_t meta[] = { c->kind, c->h, c->w, c->c, c->kh, c->kw, c->sh, c->sw, c->pads[0],
			   c->pads[1], c->pads[2], c->pads[3], c->ceil, c->groups, c->oc, c->B,
			   g->oh, g->ow };
	int64_t is[] = { c->B, c->h, c->w, c->c }, os[] = { c->B, g->oh, g->ow, c->oc };
	int64_t wsh[] = { c->kh, c->kw, c->c / c->groups, c->oc }, bs[] = { c->oc };
	int64_t ms[] = { (int64_t)(sizeof meta / sizeof *meta) };
	char path[4096];
	npz z;
	tensor t;
	int rc = -1;

	npz_init(&z);
	if (tensor_alloc(&t, DT_I8, 1, ms, 0, err))
		goto out;
	memcpy(t.data, meta, sizeof meta);
	if (npz_add_move(&z, "meta", &t, err) || add_f(&z, "in", r->in, 4, is, err) ||
	    add_f(&z, "dout", dout, 4, os, err) || add_f(&z, "out", out, 4, os, err) ||
	    add_f(&z, "din", din, 4, is, err))
		goto out;
	if (c->kind == K_CONV &&
	    (add_f(&z, "w", r->w, 4, wsh, err) || add_f(&z, "b", r->b, 1, bs, err) ||
	     add_f(&z, "dw", dw, 4, wsh, err) || add_f(&z, "db", db, 1, bs, err)))
		goto out;
	snprintf(path, sizeof path, "%s/%s.npz", dir, c->name);
	rc = npz_write(&z, path, 0, err);
out:
	npz_free(&z);
	return rc;
}

/* One case on one ISA: against the reference, finite differences (best ISA only: slow),
 * the same bits with 1 and 3 threads, the ReLU variants; saved if dir. */
static void test_case(const wcase *c, isa_kind isa, int fd, const char *dir)
{
	char err[ERR_MAX], what[128];
	run r[2];
	rng rg;

	snprintf(what, sizeof what, "%s (%s)", c->name, isa_name(isa));
	for (int t = 0; t < 2; t++) {
		rng_seed(&rg, 1234);
		if (setup(&r[t], c, &rg, t ? 3 : 1, isa, err)) {
			CHECK(0, "%s: geom: %s", what, err);
			return;
		}
	}
	size_t nin = r[0].nin, nout = r[0].nout, nw = r[0].nw;
	float *dout = randv(&rg, nout, -1, 1), *out[2], *din[2], *dw[2] = { NULL, NULL }, *db[2];
	double *rout = malloc(sizeof *rout * nout), *rdin = malloc(sizeof *rdin * nin);
	double *rdw = malloc(sizeof *rdw * (nw + 1)), *rdb = malloc(sizeof *rdb * c->oc);

	if (c->kind == K_CONV && c->path)
		CHECK(!strcmp(conv2d_path(&r[0].g, isa), c->path), "%s: path %s, not %s", what,
		      conv2d_path(&r[0].g, isa), c->path);
	if (c->kind == K_CONV && !c->path)
		CHECK(convdirect_fits(&r[0].g, isa) == (isa != ISA_GENERIC), "%s: convdirect_fits", what);
	for (int t = 0; t < 2; t++) {
		out[t] = malloc(sizeof *out[t] * nout), din[t] = malloc(sizeof *din[t] * nin);
		db[t] = malloc(sizeof *db[t] * c->oc);
		if (nw)
			dw[t] = malloc(sizeof *dw[t] * nw);
		fwd(&r[t], out[t]);
		bwd(&r[t], din[t], dw[t], db[t], dout);
	}
	CHECK(!memcmp(out[0], out[1], sizeof *out[0] * nout), "%s: forward differs with 3 threads", what);
	CHECK(!memcmp(din[0], din[1], sizeof *din[0] * nin), "%s: din differs with 3 threads", what);
	if (nw)
		CHECK(!memcmp(dw[0], dw[1], sizeof *dw[0] * nw) && !memcmp(db[0], db[1], sizeof *db[0] * c->oc),
		      "%s: dw/db differ with 3 threads", what);

	reference(&r[0], dout, rout, rdin, rdw, rdb);
	CHECK(relerr(out[0], rout, nout) < REF_TOL, "%s: forward rel err %.3g", what, relerr(out[0], rout, nout));
	CHECK(relerr(din[0], rdin, nin) < REF_TOL, "%s: din rel err %.3g", what, relerr(din[0], rdin, nin));
	if (nw) {
		CHECK(relerr(dw[0], rdw, nw) < REF_TOL, "%s: dw rel err %.3g", what, relerr(dw[0], rdw, nw));
		CHECK(relerr(db[0], rdb, c->oc) < REF_TOL, "%s: db rel err %.3g", what,
		      relerr(db[0], rdb, c->oc));
	}

	if (c->kind == K_CONV) {
		/* the fused ReLUs: forward's is max(0, out); backward's masks din by relu_y (in),
		 * and acc adds to dw and db */
		float *o2 = malloc(sizeof *o2 * nout), *d2 = malloc(sizeof *d2 * nin);
		float *w2 = malloc(sizeof *w2 * nw), *b2 = malloc(sizeof *b2 * c->oc);
		int same = 1;

		conv2d_forward(&r[0].g, o2, r[0].in, r[0].w, r[0].b, c->B, 1, r[0].ws, 1, isa);
		for (size_t i = 0; i < nout; i++)
			same &= o2[i] == (out[0][i] > 0 ? out[0][i] : 0.0f);
		CHECK(same, "%s: forward's ReLU", what);
		memcpy(w2, dw[0], sizeof *w2 * nw), memcpy(b2, db[0], sizeof *b2 * c->oc);
		conv2d_backward_relu(&r[0].g, d2, w2, b2, dout, r[0].in, r[0].w, r[0].in, VEC_RELU, c->B,
				     1, r[0].ws, 1, isa);
		same = 1;
		for (size_t i = 0; i < nin; i++)
			same &= d2[i] == (r[0].in[i] > 0 ? din[0][i] : 0.0f);
		CHECK(same, "%s: backward's ReLU", what);
		/* to 1e-5 of the largest: an entry that sums large terms to near 0 rounds apart
		 * when the sum starts from the gradient before */
		double wmax = 1;

		for (size_t i = 0; i < nw; i++)
			wmax = fabs(dw[0][i]) > wmax ? fabs(dw[0][i]) : wmax;
		for (size_t i = 0; i < nw; i++)
			CHECK_NEAR(w2[i] / wmax, 2.0 * dw[0][i] / wmax, 1e-5, "dw accumulated");
		for (int i = 0; i < c->oc; i++)
			CHECK_NEAR(b2[i], 2.0 * db[0][i], 1e-5, "db accumulated");
		free(o2), free(d2), free(w2), free(b2);
	}
	if (fd) {
		double e = fd_err(&r[0], r[0].in, din[0], nin, out[1], dout);

		CHECK(e < GRAD_TOL, "%s: finite-difference din rel err %.3g", what, e);
		if (nw) {
			e = fd_err(&r[0], r[0].w, dw[0], nw, out[1], dout);
			CHECK(e < GRAD_TOL, "%s: finite-difference dw rel err %.3g", what, e);
			e = fd_err(&r[0], r[0].b, db[0], c->oc, out[1], dout);
			CHECK(e < GRAD_TOL, "%s: finite-difference db rel err %.3g", what, e);
		}
	}
	if (dir)
		CHECK(save(&r[0], dir, dout, out[0], din[0], dw[0], db[0], err) == 0, "%s: %s", what, err);
	for (int t = 0; t < 2; t++) {
		free(out[t]), free(din[t]), free(dw[t]), free(db[t]);
		release(&r[t]);
	}
	free(dout), free(rout), free(rdin), free(rdw), free(rdb);
}

static void test_geom(void)
{
	char err[ERR_MAX];
	geom g;

	/* geom_init: TensorFlow's sizes unchanged, pb/pr what SAME pads after, VALID none */
	CHECK(geom_init(&g, 6, 5, 1, 3, 2, 2, 2, GEOM_SAME, 1, err) == 0 && g.oh == 3 && g.ow == 3 &&
	      g.pt == 0 && g.pb == 1 && g.pl == 0 && g.pr == 1 && g.groups == 1, "SAME 6x5 k3x2 s2");
	CHECK(geom_init(&g, 7, 7, 1, 4, 4, 1, 1, GEOM_SAME, 1, err) == 0 && g.oh == 7 && g.pt == 1 &&
	      g.pb == 2, "SAME 7 k4: 1 before, 2 after");
	CHECK(geom_init(&g, 8, 8, 1, 3, 3, 2, 2, GEOM_VALID, 1, err) == 0 && g.oh == 3 && g.pt == 0 &&
	      g.pb == 0 && g.pr == 0, "VALID 8 k3 s2: a row unread, no pad");

	/* geom_init_pads: floor, ceil, the ceil window starting in the padding dropped, as
	 * torch.nn.functional.max_pool2d sizes them */
	static const struct { int in, k, s, pa, pb, ceil, out; } sz[] = {
		{ 5, 2, 2, 0, 0, 0, 2 }, { 5, 2, 2, 0, 0, 1, 3 }, { 5, 2, 2, 1, 1, 1, 3 },
		{ 6, 3, 2, 1, 1, 1, 4 }, { 7, 3, 3, 0, 0, 1, 3 }, { 7, 3, 2, 1, 0, 1, 4 },
		{ 4, 3, 1, 0, 2, 0, 4 }, { 3, 5, 1, 2, 0, 0, 1 }, { 8, 2, 3, 0, 1, 1, 3 },
		{ 1, 3, 2, 1, 1, 1, 1 },
	};
	for (size_t i = 0; i < sizeof sz / sizeof *sz; i++) {
		int pads[4] = { sz[i].pa, 0, sz[i].pb, 0 };

		CHECK(geom_init_pads(&g, sz[i].in, 4, 2, sz[i].k, 1, sz[i].s, 1, pads, sz[i].ceil, 1, 2, err) == 0 &&
		      g.oh == sz[i].out && g.ow == 4 && g.pt == sz[i].pa && g.pb == sz[i].pb,
		      "size case %zu: in %d k %d s %d pads %d,%d ceil %d: %d, not %d (%s)", i, sz[i].in,
		      sz[i].k, sz[i].s, sz[i].pa, sz[i].pb, sz[i].ceil, g.oh, sz[i].out, err);
	}
	CHECK(geom_init_pads(&g, 4, 4, 6, 3, 3, 1, 1, (int[]){ 0, 1, 2, 3 }, 0, 3, 9, err) == 0 &&
	      g.groups == 3 && g.oh == 4 && g.ow == 6 && g.pl == 1 && g.pr == 3, "grouped geometry");
	CHECK(geom_init_pads(&g, 4, 4, 6, 3, 3, 1, 1, (int[]){ 0, 0, 0, 0 }, 0, 4, 8, err) == -1 &&
	      strstr(err, "groups"), "4 groups of 6 channels refused: %s", err);
	CHECK(geom_init_pads(&g, 4, 4, 6, 3, 3, 1, 1, (int[]){ 0, 0, 0, 0 }, 0, 3, 4, err) == -1 &&
	      strstr(err, "groups"), "3 groups of 4 outputs refused: %s", err);
	CHECK(geom_init_pads(&g, 4, 4, 6, 3, 3, 1, 1, (int[]){ 0, 0, 0, 0 }, 0, 0, 6, err) == -1,
	      "0 groups refused");
	CHECK(geom_init_pads(&g, 4, 4, 1, 3, 3, 1, 1, (int[]){ 0, -1, 0, 0 }, 0, 1, 1, err) == -1 &&
	      strstr(err, "pads"), "a negative pad refused: %s", err);
	CHECK(geom_init_pads(&g, 2, 4, 1, 5, 3, 1, 1, (int[]){ 1, 0, 1, 0 }, 1, 1, 1, err) == -1 &&
	      strstr(err, "fit"), "a window larger than the padded input refused: %s", err);
	CHECK(geom_init_pads(&g, 4, 4, 1, 0, 3, 1, 1, (int[]){ 0, 0, 0, 0 }, 0, 1, 1, err) == -1,
	      "a 0 window refused");
	CHECK(geom_init_pads(&g, 4, 4, 1, 3, 3, 1, 1, (int[]){ 100, 0, 0, 0 }, 0, 1, 1, err) == -1 &&
	      strstr(err, "pads"), "a pad far past the input refused: %s", err);
}

/* A max-pool window wholly in the padding (pads >= window) takes nothing: 0, and no
 * gradient to anyone. */
static void test_max_all_padding(void)
{
	char err[ERR_MAX];
	geom g;
	float in[4] = { -1, -2, -3, -4 }, out[9], din[4], dout[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	int32_t amax[9];

	CHECK(geom_init_pads(&g, 2, 2, 1, 1, 1, 1, 1, (int[]){ 1, 0, 0, 1 }, 0, 1, 1, err) == 0 &&
	      g.oh == 3 && g.ow == 3, "geom: %s", err);
	maxpool_forward(&g, out, amax, in, 1, 1);
	CHECK(out[0] == 0 && amax[0] == -1 && out[3] == -1 && out[5] == 0 && out[7] == -4,
	      "all-padding windows: %g %d %g %g %g", out[0], amax[0], out[3], out[5], out[7]);
	maxpool_backward(&g, din, dout, amax, 1);
	CHECK(din[0] == 1 && din[1] == 1 && din[2] == 1 && din[3] == 1, "all-padding windows route nothing");
}

/* Depthwise forward on AVX-512 (32 channels a step), AVX2 (16; 8 in the stride-1 rows'
 * three-wide quads) and the portable path: the same bits, with 1 and 2 threads, on narrow
 * and wide rows and strides 1 and 2, over channels that leave every narrower path a tail
 * (55 = 32 + 16 + 7; 37 = 32 + 5; 24 = 16 + 8; 75 = 64 + 8 + 3), for each activation; the
 * inputs are large enough that ReLU6 clips, and its outputs are the linear ones clipped. */
static void test_depthwise_isa(void)
{
	static const int chans[] = { 55, 37, 24, 75 };
	static const isa_kind paths[] = { ISA_AVX2, ISA_AVX512 };

	/* h, w, stride, pads: rows with whole windows in fours (the paths' 4-pixel tiles) and
	 * one by one at the edges and the ends (15 whole ones at 17 wide: 3 left over) */
	static const struct { int h, w, sh, sw, pads[4]; } geo[] = {
		{ 7, 6, 2, 1, { 1, 0, 1, 1 } }, { 5, 17, 1, 1, { 1, 1, 1, 1 } },
		{ 6, 22, 2, 2, { 0, 1, 1, 0 } },
	};

	for (int t = 0; t < 12; t++) {
		int c = chans[t % 4], B = 2, H = geo[t / 4].h, W = geo[t / 4].w;
		geom g;
		char err[ERR_MAX];

		CHECK(geom_init_pads(&g, H, W, c, 3, 3, geo[t / 4].sh, geo[t / 4].sw, geo[t / 4].pads, 0, c,
				     c, err) == 0, "%s", err);
		size_t ni = (size_t)B * H * W * c, no = (size_t)B * g.oh * g.ow * c;
		float *in = malloc(sizeof *in * ni), *w = malloc(sizeof *w * 9 * c), *b = malloc(sizeof *b * c);
		float *lin = malloc(sizeof *lin * no), *o1 = malloc(sizeof *o1 * no), *o2 = malloc(sizeof *o2 * no), ws[4];

		for (size_t i = 0; i < ni; i++)
			in[i] = (float)((i * 7919 % 1009) / 1009.0 - 0.5) * 24;
		for (int i = 0; i < 9 * c; i++)
			w[i] = (float)((i * 104729 % 997) / 997.0 - 0.5);
		for (int i = 0; i < c; i++)
			b[i] = (float)(i % 5) * 0.1f - 0.2f;
		conv2d_forward(&g, lin, in, w, b, B, 0, ws, 1, ISA_GENERIC);
		for (int act = 0; act <= VEC_RELU6; act++) {
			size_t clipped = 0, bad = 0;

			conv2d_forward(&g, o1, in, w, b, B, act, ws, 1, ISA_GENERIC);
			for (size_t i = 0; i < no; i++) {
				float want = act && lin[i] < 0 ? 0.0f : act == VEC_RELU6 && lin[i] > 6 ? 6.0f : lin[i];

				bad += o1[i] != want;
				clipped += act == VEC_RELU6 && lin[i] > 6;
			}
			CHECK(!bad, "depthwise %d channels, act %d: %zu outputs are not the linear ones activated",
			      c, act, bad);
			CHECK(act != VEC_RELU6 || clipped, "depthwise %d channels: no output reaches 6", c);
			for (int pi = 0; pi < 2; pi++)
				for (int th = 1; th <= 2; th++) {
					if (!isa_supported(paths[pi]))
						continue;
					conv2d_forward(&g, o2, in, w, b, B, act, ws, th, paths[pi]);
					CHECK(!memcmp(o1, o2, sizeof *o1 * no),
					      "depthwise %d channels, act %d, %d threads: %s and portable bits differ",
					      c, act, th, isa_name(paths[pi]));
				}
		}
		free(in), free(w), free(b), free(lin), free(o1), free(o2);
	}
}

/* Depthwise backward on AVX-512 (up to 64 channels in registers, masked tails), AVX2 (8
 * a vector, the tail scalar) and the portable loops: the same din, dw and db bits with 1
 * and 2 threads, with and without accumulation and the ReLU or ReLU6 mask (the portable
 * din's the unmasked one through vec_act_backward), over strides, pads
 * (windows wholly in the padding), a 5x5 kernel and channels that leave tails (75 = 64 +
 * 11; 37; 24; 9); and multiplier 2 (the portable din, the vector db). */
static void test_depthwise_backward_isa(void)
{
	static const isa_kind paths[] = { ISA_AVX2, ISA_AVX512 };
	static const struct { int h, w, c, oc, k, sh, sw, pads[4]; } geo[] = {
		{ 7, 6, 75, 75, 3, 2, 1, { 1, 0, 1, 1 } }, { 5, 17, 37, 37, 3, 1, 1, { 1, 1, 1, 1 } },
		{ 6, 22, 24, 24, 3, 2, 2, { 0, 1, 1, 0 } }, { 9, 8, 9, 9, 5, 2, 2, { 2, 2, 2, 2 } },
		{ 4, 5, 144, 144, 3, 1, 1, { 3, 0, 1, 4 } }, { 6, 7, 5, 10, 3, 1, 1, { 1, 1, 1, 1 } },
	};

	for (size_t t = 0; t < sizeof geo / sizeof *geo; t++) {
		int c = geo[t].c, oc = geo[t].oc, k = geo[t].k, B = 2, H = geo[t].h, W = geo[t].w;
		geom g;
		char err[ERR_MAX];
		float ws[4];

		CHECK(geom_init_pads(&g, H, W, c, k, k, geo[t].sh, geo[t].sw, geo[t].pads, 0, c, oc,
				     err) == 0, "%s", err);
		size_t ni = (size_t)B * H * W * c, no = (size_t)B * g.oh * g.ow * oc, nw = (size_t)k * k * oc;
		float *in = malloc(sizeof *in * ni), *w = malloc(sizeof *w * nw);
		float *dout = malloc(sizeof *dout * no);
		float *ry = malloc(sizeof *ry * ni), *d1 = malloc(sizeof *d1 * ni), *d2 = malloc(sizeof *d2 * ni);
		float *d0 = malloc(sizeof *d0 * ni);
		float *w1 = malloc(sizeof *w1 * (nw + oc)), *w2 = malloc(sizeof *w2 * (nw + oc));

		for (size_t i = 0; i < ni; i++) {
			in[i] = (float)((i * 7919 % 1009) / 1009.0 - 0.5) * 3;
			ry[i] = (float)((i * 104729 % 31) - 10);
		}
		for (size_t i = 0; i < nw; i++)
			w[i] = (float)((i * 104729 % 997) / 997.0 - 0.5);
		for (size_t i = 0; i < no; i++)
			dout[i] = (float)((i * 6101 % 1013) / 1013.0 - 0.5);
		for (int mode = 0; mode < 6; mode++) {
			int acc = mode & 1, relu = mode >> 1;
			size_t zeroed = 0;

			for (size_t i = 0; i < nw + oc; i++)
				w1[i] = w2[i] = acc ? (float)i * 0.01f : NAN;
			conv2d_backward_relu(&g, d1, w1, w1 + nw, dout, in, w, relu ? ry : NULL, relu, B, acc,
					     ws, 1, ISA_GENERIC);
			conv2d_backward(&g, d0, NULL, NULL, dout, in, w, B, 0, ws, 1, ISA_GENERIC);
			if (relu)
				vec_act_backward(d0, d0, ry, ni, relu);
			CHECK(!memcmp(d0, d1, sizeof *d0 * ni),
			      "depthwise backward case %zu, act %d: the fused mask is not the pass after", t, relu);
			for (size_t i = 0; i < ni; i++)
				zeroed += relu && (ry[i] <= 0 || (relu == VEC_RELU6 && ry[i] >= 6)) && d1[i] == 0;
			CHECK(!relu || zeroed > 0, "depthwise backward case %zu: the mask zeroes nothing", t);
			for (int pi = 0; pi < 2; pi++)
				for (int th = 1; th <= 2; th++) {
					if (!isa_supported(paths[pi]))
						continue;
					for (size_t i = 0; i < nw + oc; i++)
						w2[i] = acc ? (float)i * 0.01f : NAN;
					memset(d2, 0xff, sizeof *d2 * ni);
					conv2d_backward_relu(&g, d2, w2, w2 + nw, dout, in, w, relu ? ry : NULL,
							     relu, B, acc, ws, th, paths[pi]);
					CHECK(!memcmp(d1, d2, sizeof *d1 * ni) && !memcmp(w1, w2, sizeof *w1 * (nw + oc)),
					      "depthwise backward case %zu, acc %d, relu %d, %d threads: %s and portable"
					      " bits differ (din %d, dw and db %d)", t, acc, relu, th,
					      isa_name(paths[pi]), !memcmp(d1, d2, sizeof *d1 * ni),
					      !memcmp(w1, w2, sizeof *w1 * (nw + oc)));
				}
		}
		free(in), free(w), free(dout), free(ry), free(d0), free(d1), free(d2), free(w1), free(w2);
	}
}

int main(int argc, char **argv)
{
	static const isa_kind paths[] = { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };
	const char *dir = argc > 1 ? argv[1] : NULL;

	test_geom();
	test_max_all_padding();
	test_depthwise_isa();
	test_depthwise_backward_isa();
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int n = 0;

		for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
			int best = paths[p] == isa_best();

			if (!isa_supported(paths[p]) || (cases[i].kind != K_CONV && !best))
				continue;
			test_case(&cases[i], paths[p], best, best ? dir : NULL);
			n++;
		}
		CHECK(n > 0, "%s: run on no path", cases[i].name);
	}
	return check_done("test_window");
}
