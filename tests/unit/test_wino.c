/* Unit tests for the Winograd F(4x4, 3x3) forward and weight gradient (convwino) against a double-precision
 * direct convolution written out here: odd and even map sizes (partial edge tiles),
 * symmetric, asymmetric and absent pads, channel counts that fill 64-wide blocks or leave
 * 16, 32 or 48, bias or none, each activation, batches, 1..3 threads and both paths (AVX2,
 * AVX-512: the same bits, their sums run in one order). */
#include "check.h"
#include "nn/conv2d.h"
#include "nn/convwino.h"
#include "nn/geom.h"
#include "nn/isa.h"
#include "nn/vec.h"
#include "util/mem.h"
#include "util/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* out = the convolution in double; mag = the sum of its terms' magnitudes, the scale of
 * any rounding on the way (a transform's error grows with its inputs, not its result). */
static void ref_conv(const geom *g, double *out, double *mag, const float *in, const float *w,
		     const float *b, int relu, int B)
{
	for (int n = 0; n < B; n++)
		for (int oy = 0; oy < g->oh; oy++)
			for (int ox = 0; ox < g->ow; ox++)
				for (int co = 0; co < g->oc; co++) {
					double s = b ? b[co] : 0, m = fabs(s);

					for (int ky = 0; ky < 3; ky++)
						for (int kx = 0; kx < 3; kx++) {
							int iy = oy - g->pt + ky, ix = ox - g->pl + kx;

							if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
								continue;
							for (int ci = 0; ci < g->c; ci++) {
								double t = (double)in[(((long)n * g->h + iy) * g->w + ix) * g->c + ci] *
									   w[((ky * 3 + kx) * g->c + ci) * g->oc + co];

								s += t, m += fabs(t);
							}
						}
					if (relu && s < 0)
						s = 0;
					if (relu == 2 && s > 6)
						s = 6;
					out[(((long)n * g->oh + oy) * g->ow + ox) * g->oc + co] = s;
					mag[(((long)n * g->oh + oy) * g->ow + ox) * g->oc + co] = m;
				}
}

static void fill(rng *r, float *x, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (rng_uniformf(r) * 2 - 1) * scale;
}

/* g = a 3x3 stride-1 window over h x w x c with those pads, oc outputs; 0 if it is one. */
static int window(geom *g, int h, int w, int c, int oc, const int pads[4])
{
	char err[256];

	if (geom_init_pads(g, h, w, c, 3, 3, 1, 1, pads, 0, 1, oc, err)) {
		CHECK(0, "geom %dx%dx%d: %s", h, w, c, err);
		return -1;
	}
	return 0;
}

static void run_case(int h, int w, int c, int oc, const int pads[4], int B, int bias, int relu,
		     float scale)
{
	geom g;
	rng r;

	if (window(&g, h, w, c, oc, pads))
		return;
	CHECK(convwino_fits(&g, ISA_AVX2), "%dx%dx%d->%d fits", h, w, c, oc);
	size_t nin = (size_t)B * h * w * c, nout = (size_t)B * g.oh * g.ow * oc;
	float *in = malloc(sizeof *in * nin), *wt = malloc(sizeof *wt * 9 * c * oc);
	float *b = malloc(sizeof *b * oc), *u = malloc(sizeof *u * convwino_weights(&g));
	float *u2 = malloc(sizeof *u2 * convwino_weights(&g));
	float *out[4], *ws = malloc(sizeof *ws * convwino_workspace(&g, 3));
	double *ref = malloc(sizeof *ref * nout), *mag = malloc(sizeof *mag * nout), worst = 0;

	rng_seed(&r, (uint64_t)h * 1000003 + w * 1009 + c * 31 + oc + B);
	fill(&r, in, nin, 1.0f);
	fill(&r, wt, (size_t)9 * c * oc, scale / c);
	fill(&r, b, oc, 0.5f);
	ref_conv(&g, ref, mag, in, wt, bias ? b : NULL, relu, B);
	/* the weights on plain C's path, then each path's own for its forward: the same bits */
	convwino_pack(&g, u, wt, 3, ISA_GENERIC);
	convwino_pack(&g, u2, wt, 2, isa_best());
	CHECK(!memcmp(u, u2, sizeof *u * convwino_weights(&g)), "%dx%dx%d->%d: the weights "
	      "transformed on %s and in plain C give the same bits", h, w, c, oc,
	      isa_name(isa_best()));
	convwino_pack(&g, u2, wt, 1, ISA_AVX2);
	/* 1, 2, 3 threads on the widest path, then 2 on AVX2 */
	for (int t = 0; t < 4; t++) {
		out[t] = malloc(sizeof *out[t] * nout);
		for (size_t i = 0; i < nout; i++)
			out[t][i] = NAN;   /* an output left unwritten shows */
		convwino_forward(&g, out[t], in, t < 3 ? u : u2, bias ? b : NULL, relu, B,
				 t < 3 ? t + 1 : 2, ws, t < 3 ? isa_best() : ISA_AVX2);
	}
	for (size_t i = 0; i < nout; i++) {
		double e = fabs(out[0][i] - ref[i]) / fmax(1e-3, mag[i]);

		if (!(e <= worst))
			worst = e;
	}
	/* the transforms' rounding against the terms' magnitudes: 1.3e-7 to 2e-6 measured
	 * (F(2x2), before, 6e-8 to 1.1e-7) */
	CHECK(worst <= 1e-5, "%dx%dx%d->%d pads %d,%d,%d,%d B %d: worst error %g", h, w, c, oc,
	      pads[0], pads[1], pads[2], pads[3], B, worst);
	CHECK(!memcmp(out[0], out[1], sizeof *out[0] * nout) &&
	      !memcmp(out[0], out[2], sizeof *out[0] * nout),
	      "%dx%dx%d->%d: 1, 2 and 3 threads give the same bits", h, w, c, oc);
	CHECK(!memcmp(out[0], out[3], sizeof *out[0] * nout), "%dx%dx%d->%d: %s and avx2 give the same bits",
	      h, w, c, oc, isa_name(isa_best()));
	for (int t = 0; t < 4; t++)
		free(out[t]);
	free(in), free(wt), free(b), free(u), free(u2), free(ws), free(ref), free(mag);
}
/* ReLU and ReLU6 as max_ps and min_ps give them, on each path: a NaN output (a NaN input
 * reaches most outputs of its tiles; with its sign bit too) becomes +0, a negative one +0
 * (not -0), a large one 6, the same bits on both paths; AVX2 gets these from the bits,
 * AVX-512 from compares. */
static void activation_edges(void)
{
	int pads[4] = { 1, 1, 1, 1 }, n = 8 * 8 * 16;
	isa_kind paths[2] = { ISA_AVX2, ISA_AVX512 };
	geom g;
	char err[256];
	rng r;
	float in[8 * 8 * 16], w[9 * 16 * 16], out[2][3][8 * 8 * 16], u[36 * 16 * 16];
	float *ws;

	if (geom_init_pads(&g, 8, 8, 16, 3, 3, 1, 1, pads, 0, 1, 16, err)) {
		CHECK(0, "geom: %s", err);
		return;
	}
	ws = malloc(sizeof *ws * convwino_workspace(&g, 1));
	rng_seed(&r, 7);
	fill(&r, in, (size_t)n, 1.0f);
	fill(&r, w, sizeof w / sizeof *w, 8.0f / 16);
	/* row 3, column 2 (both tiles of columns 0-3); a NaN with its sign bit in columns 4-7 */
	in[(3 * 8 + 2) * 16 + 5] = NAN;
	in[(5 * 8 + 6) * 16 + 9] = -NAN;
	convwino_pack(&g, u, w, 1, isa_best());
	for (int p = 0; p < 2; p++) {
		if (!isa_supported(paths[p]))
			continue;
		for (int relu = 0; relu <= 2; relu++) {
			int nan = 0, zero = 0, pos = 0, big = 0, bad = 0;

			convwino_forward(&g, out[p][relu], in, u, NULL, relu, 1, 1, ws, paths[p]);
			for (int i = 0; i < n; i++) {
				float a = out[0][0][i], y = out[p][relu][i];
				uint32_t bits;

				memcpy(&bits, &y, sizeof bits);
				if (isnan(a)) {   /* the activation's input, as AVX2 gave it */
					nan++, bad += relu && bits != 0;
					continue;
				}
				bad += relu && (bits >> 31 || isnan(y) || (relu == 2 && y > 6.0f));
				zero += bits == 0, pos += y > 0, big += y == 6.0f;
			}
			CHECK(!bad && nan > 0 && (!relu || zero > 0) && pos > 0 && (relu != 2 || big > 0),
			      "%s relu %d: %d outputs NaN, negative, -0 or past 6; %d NaN before, %d +0, %d "
			      "positive, %d at 6", isa_name(paths[p]), relu, bad, nan, zero, pos, big);
			if (p == 1)
				CHECK(!memcmp(out[0][relu], out[1][relu], sizeof out[0][relu]),
				      "relu %d with a NaN: avx2 and avx512 give the same bits", relu);
		}
	}
	free(ws);
}

/* A 512x512 layer's transformed weights (38 MB, stored past the caches) against G g G^T
 * by definition, every element: within a float's rounding of its terms' magnitudes; an
 * element left unwritten (NaN) shows. On 2 threads, each path, into a buffer aligned to
 * 64 bytes (the path's widest stores) and to 16 only (xmm stores): the same bits. */
static void pack_large(void)
{
	static const double G[6][3] = { { 1.0 / 4, 0, 0 }, { -1.0 / 6, -1.0 / 6, -1.0 / 6 },
					{ -1.0 / 6, 1.0 / 6, -1.0 / 6 }, { 1.0 / 24, 1.0 / 12, 1.0 / 6 },
					{ 1.0 / 24, -1.0 / 12, 1.0 / 6 }, { 0, 0, 1 } };
	static const isa_kind paths[] = { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };
	enum { C = 512, O = 512 };
	int pads[4] = { 1, 1, 1, 1 };
	geom g;
	rng r;

	if (window(&g, 7, 7, C, O, pads))
		return;
	size_t n = convwino_weights(&g);
	float *w = malloc(sizeof *w * 9 * C * O), *mem = mem_calloc64(n + 16, sizeof *mem);
	float *first = malloc(sizeof *first * n), *u;

	rng_seed(&r, 71);
	fill(&r, w, (size_t)9 * C * O, 1.0f);
	for (size_t pi = 0; pi < 2 * sizeof paths / sizeof *paths; pi++) {
		isa_kind isa = paths[pi / 2];
		size_t bad = 0;

		if (!isa_supported(isa))
			continue;
		u = mem + (pi % 2 ? 4 : 0);
		for (size_t i = 0; i < n; i++)
			u[i] = NAN;
		convwino_pack(&g, u, w, 2, isa);
		for (int c = 0; c < C; c++)
			for (int o = 0; o < O; o++)
				for (int p = 0; p < 36; p++) {
					double v = 0, mag = 0;

					for (int a = 0; a < 3; a++)
						for (int b = 0; b < 3; b++) {
							double t = G[p / 6][a] * w[((a * 3 + b) * C + c) * O + o] *
								   G[p % 6][b];

							v += t, mag += fabs(t);
						}
					/* plane p, block of 64 outputs, channel c, output in the block */
					float got = u[(size_t)p * C * O + (size_t)(o / 64 * 64) * C + c * 64 + o % 64];

					bad += !(fabs(got - v) <= 1e-6 * mag + 1e-30);
				}
		CHECK(!bad, "a 512x512 layer's transformed weights on %s, %d-byte aligned: %zu of %zu off",
		      isa_name(isa), pi % 2 ? 16 : 64, bad, n);
		if (pi == 0)
			memcpy(first, u, sizeof *u * n);
		CHECK(!memcmp(first, u, sizeof *u * n), "the weights on %s, %d-byte aligned: plain C's bits",
		      isa_name(isa), pi % 2 ? 16 : 64);
	}
	free(w), mem_free64(mem), free(first);
}

/* convwino_forward_keep: the convolution, then +0 wherever keep stops the gradient of a
 * ReLU (keep not > 0) or a ReLU6 (nor < 6), the same bits as convwino_forward then
 * vec_act_backward, on each path. */
static void keep_mask(void)
{
	int pads[4] = { 1, 1, 1, 1 }, n = 2 * 9 * 9 * 32;
	isa_kind paths[2] = { ISA_AVX2, ISA_AVX512 };
	geom g;
	char err[256];
	rng r;
	float *in = malloc(sizeof *in * 2 * 9 * 9 * 16), *w = malloc(sizeof *w * 9 * 16 * 32);
	float *u = malloc(sizeof *u * 36 * 16 * 32), *keep = malloc(sizeof *keep * n);
	float *a = malloc(sizeof *a * n), *b = malloc(sizeof *b * n), *ws;

	if (geom_init_pads(&g, 9, 9, 16, 3, 3, 1, 1, pads, 0, 1, 32, err)) {
		CHECK(0, "geom: %s", err);
		return;
	}
	ws = malloc(sizeof *ws * convwino_workspace(&g, 2));
	rng_seed(&r, 9);
	fill(&r, in, (size_t)2 * 9 * 9 * 16, 1.0f);
	fill(&r, w, (size_t)9 * 16 * 32, 1.0f / 16);
	fill(&r, keep, (size_t)n, 8.0f);
	for (int i = 0; i < n; i++)   /* an activation's outputs: +0 or positive; and odd ones */
		keep[i] = keep[i] < 0 ? 0.0f : keep[i];
	keep[7] = NAN, keep[8] = -0.0f, keep[9] = -1.0f, keep[10] = INFINITY, keep[11] = 1e-40f;
	keep[12] = 6.0f, keep[13] = nextafterf(6.0f, 0.0f);
	convwino_pack(&g, u, w, 2, isa_best());
	for (int p = 0; p < 2; p++)
		for (int act = VEC_RELU; act <= VEC_RELU6; act++) {
			if (!isa_supported(paths[p]))
				continue;
			convwino_forward(&g, a, in, u, NULL, 0, 2, 2, ws, paths[p]);
			vec_act_backward(a, a, keep, (size_t)n, act);
			convwino_forward_keep(&g, b, in, u, keep, act, 2, 2, ws, paths[p]);
			CHECK(!memcmp(a, b, sizeof *a * n), "%s: keep's mask (act %d) is vec_act_backward's",
			      isa_name(paths[p]), act);
		}
	free(in), free(w), free(u), free(keep), free(a), free(b), free(ws);
}

/* convwino_wgrad against dw and db summed in double, with the magnitudes of their terms;
 * 1, 2 and 3 threads and AVX2 the same bits; acc adds to what dw and db held. */
static void wgrad_case(int h, int w, int c, int oc, const int pads[4], int B)
{
	geom g;
	rng r;

	if (window(&g, h, w, c, oc, pads))
		return;
	size_t nin = (size_t)B * h * w * c, nout = (size_t)B * g.oh * g.ow * oc, nw = (size_t)9 * c * oc;
	float *in = malloc(sizeof *in * nin), *dout = malloc(sizeof *dout * nout);
	size_t nws = convwino_wgrad_workspace(&g);
	float *ws = malloc(sizeof *ws * nws), *dw[5], *db[5];
	double *ref = calloc(nw + oc, sizeof *ref), *mag = calloc(nw + oc, sizeof *mag), worst = 0;

	/* a model's scratch (conv2d's, sized whatever the CPU) has room for it */
	CHECK(conv2d_workspace(&g, 3) >= nws && conv2d_workspace(&g, 3) >= convwino_workspace(&g, 3),
	      "%dx%dx%d->%d: conv2d_workspace has room for Winograd", h, w, c, oc);
	rng_seed(&r, (uint64_t)h * 7919 + w * 104729 + c * 13 + oc + B);
	fill(&r, in, nin, 1.0f);
	fill(&r, dout, nout, 1.0f);
	for (int n = 0; n < B; n++)
		for (int oy = 0; oy < g.oh; oy++)
			for (int ox = 0; ox < g.ow; ox++)
				for (int co = 0; co < oc; co++) {
					double d = dout[(((long)n * g.oh + oy) * g.ow + ox) * oc + co];

					ref[nw + co] += d, mag[nw + co] += fabs(d);
					for (int ky = 0; ky < 3; ky++)
						for (int kx = 0; kx < 3; kx++) {
							int iy = oy - g.pt + ky, ix = ox - g.pl + kx;

							if (iy < 0 || iy >= h || ix < 0 || ix >= w)
								continue;
							for (int ci = 0; ci < c; ci++) {
								long k = ((ky * 3 + kx) * c + ci) * (long)oc + co;
								double t = d * in[(((long)n * h + iy) * w + ix) * c + ci];

								ref[k] += t, mag[k] += fabs(t);
							}
						}
				}
	/* 1, 2, 3 threads on the widest path, 2 on AVX2, then 2 again adding to 1s */
	for (int t = 0; t < 5; t++) {
		dw[t] = malloc(sizeof *dw[t] * nw), db[t] = malloc(sizeof *db[t] * oc);
		for (size_t i = 0; i < nw; i++)
			dw[t][i] = t == 4 ? 1.0f : NAN;
		for (int i = 0; i < oc; i++)
			db[t][i] = t == 4 ? 1.0f : NAN;
		for (size_t i = 0; i < nws; i++)
			ws[i] = NAN;   /* a sum left unwritten shows, not the last run's */
		convwino_wgrad(&g, dw[t], db[t], dout, in, B, t == 4, t < 3 ? t + 1 : 2, ws,
			       t < 3 || t == 4 ? isa_best() : ISA_AVX2);
	}
	for (size_t i = 0; i < nw + oc; i++) {
		double got = i < nw ? dw[0][i] : db[0][i - nw], e = fabs(got - ref[i]) / fmax(1e-3, mag[i]);
		double sum = i < nw ? dw[4][i] : db[4][i - nw];

		if (!(e <= worst))
			worst = e;
		if (!(fabs(sum - 1.0 - got) <= 1e-6 * fmax(1, fabs(got))))
			worst = INFINITY;
	}
	CHECK(worst <= 1e-5, "dw of %dx%dx%d->%d pads %d,%d,%d,%d B %d: worst error %g (inf: acc did not add)",
	      h, w, c, oc, pads[0], pads[1], pads[2], pads[3], B, worst);
	for (int t = 1; t < 4; t++)
		CHECK(!memcmp(dw[0], dw[t], sizeof *dw[0] * nw) && !memcmp(db[0], db[t], sizeof *db[0] * oc),
		      "dw of %dx%dx%d->%d: %s the same bits as 1 thread on %s", h, w, c, oc,
		      t < 3 ? (t == 1 ? "2 threads" : "3 threads") : "avx2", isa_name(isa_best()));
	for (int t = 0; t < 5; t++)
		free(dw[t]), free(db[t]);
	free(in), free(dout), free(ws), free(ref), free(mag);
}

int main(void)
{
	static const struct {
		int h, w, c, oc, pads[4], B, bias, relu;
		float scale;   /* of the weights, times cin: 40 puts many outputs past ReLU6's 6 */
	} cases[] = {
		{ 7, 7, 16, 16, { 1, 1, 1, 1 }, 2, 1, 0, 1 },      /* odd map: half-empty edge tiles */
		{ 8, 8, 32, 64, { 1, 1, 1, 1 }, 1, 1, 1, 1 },
		{ 14, 14, 64, 48, { 1, 1, 1, 1 }, 3, 0, 2, 40 },    /* a 48-wide block */
		{ 9, 6, 16, 80, { 0, 0, 0, 0 }, 2, 1, 0, 1 },      /* valid: 7x4 */
		{ 5, 11, 48, 32, { 2, 0, 1, 2 }, 1, 1, 1, 1 },     /* asymmetric and past k-1 */
		{ 3, 3, 16, 16, { 1, 1, 1, 1 }, 5, 1, 0, 1 },
		{ 1, 1, 16, 16, { 1, 1, 1, 1 }, 2, 1, 0, 1 },      /* all but the centre in the pads */
		{ 28, 28, 128, 128, { 1, 1, 1, 1 }, 2, 1, 1, 1 },  /* several blocks of tiles */
		/* long sums; shared chunks of 96 tiles, the last of 4 */
		{ 7, 7, 512, 64, { 1, 1, 1, 1 }, 25, 1, 1, 1 },
		{ 5, 5, 256, 112, { 1, 1, 1, 1 }, 3, 0, 2, 4 },    /* shared, a 64 and a 48-wide block */
		{ 9, 13, 32, 32, { 1, 1, 1, 1 }, 2, 1, 1, 1 },     /* 1 row and column past the tiles */
		/* 9 tiles: past the 6, a pair and a last row, 48 wide */
		{ 9, 9, 16, 48, { 1, 1, 1, 1 }, 1, 1, 0, 1 },
	};

	if (!isa_supported(ISA_AVX2)) {
		printf("test_wino: no AVX2 on this CPU: no Winograd path\n");
		CHECK(!convwino_fits(&(geom){ .h = 8, .w = 8, .c = 16, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
					     .oh = 8, .ow = 8, .pt = 1, .pl = 1, .oc = 16, .pb = 1, .pr = 1 },
				     ISA_AVX2), "no AVX2: does not fit");
		return check_done("test_wino");
	}
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
		run_case(cases[k].h, cases[k].w, cases[k].c, cases[k].oc, cases[k].pads, cases[k].B,
			 cases[k].bias, cases[k].relu, cases[k].scale);
	activation_edges();
	keep_mask();
	pack_large();
	{
		/* edge tiles, pads of each kind, 16..64-wide blocks, the tails of 32 channels
		 * (AVX-512's 5 x 6 + 2, AVX2's 4 x 6 + 4 + 4), several chunks (2^21 / (36 x 32) =
		 * 1820 tiles each: 9 x 16 x 16 tiles are two) */
		static const struct { int h, w, c, oc, pads[4], B; } wc[] = {
			{ 7, 7, 16, 16, { 1, 1, 1, 1 }, 2 },   { 8, 8, 32, 64, { 1, 1, 1, 1 }, 1 },
			{ 9, 6, 16, 80, { 0, 0, 0, 0 }, 2 },   { 5, 11, 48, 32, { 2, 0, 1, 2 }, 1 },
			{ 14, 14, 64, 48, { 1, 1, 1, 1 }, 3 }, { 1, 1, 16, 16, { 1, 1, 1, 1 }, 2 },
			{ 7, 7, 32, 128, { 1, 1, 1, 1 }, 2 },  { 64, 64, 16, 16, { 1, 1, 1, 1 }, 9 },
		};

		for (size_t k = 0; k < sizeof wc / sizeof wc[0]; k++)
			wgrad_case(wc[k].h, wc[k].w, wc[k].c, wc[k].oc, wc[k].pads, wc[k].B);
	}
	{
		geom g = { .h = 8, .w = 8, .c = 16, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .oh = 4, .ow = 4,
			   .pt = 1, .pl = 1, .oc = 16, .pb = 1, .pr = 1 };

		CHECK(!convwino_fits(&g, ISA_AVX512), "stride 2 does not fit");
		g.sh = g.sw = 1, g.oh = g.ow = 8, g.c = 24;
		CHECK(!convwino_fits(&g, ISA_AVX512), "24 input channels do not fit");
		g.c = 16, g.kh = g.kw = 5;
		CHECK(!convwino_fits(&g, ISA_AVX512), "5x5 does not fit");
		g.kh = g.kw = 3, g.groups = 2;
		CHECK(!convwino_fits(&g, ISA_AVX512), "groups do not fit");
		g.groups = 1;
		CHECK(!convwino_fits(&g, ISA_GENERIC), "the generic path has none");
	}
	return check_done("test_wino");
}
