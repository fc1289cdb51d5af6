/* Unit tests for the pools' SIMD loops against naive loops written out here: max-pooling's
 * winners (ties, NaNs, windows wholly in the padding) and its backward, average and global
 * average pooling's sums (the same additions in the same order, so the same bits), forward
 * and backward, on random geometries
 * (windows 1..4, strides 1..3, asymmetric pads up to the window, ceil mode, channel counts
 * that are no multiple of a vector), on every path this CPU has and 1..3 threads. */
#include "check.h"
#include "nn/avgpool.h"
#include "nn/geom.h"
#include "nn/isa.h"
#include "nn/maxpool.h"
#include "util/errmsg.h"
#include "util/rng.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NCASES 300

static const isa_kind paths[] = { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };

/* The loop maxpool_forward has always meant: taps in row-major order, the first in-bounds
 * pixel seeds the max, a later one wins only if greater. */
static void ref_max(const geom *g, float *out, int32_t *am, const float *in, int B)
{
	int c = g->c;

	for (int n = 0; n < B; n++)
		for (int oy = 0; oy < g->oh; oy++)
			for (int ox = 0; ox < g->ow; ox++)
				for (int ch = 0; ch < c; ch++) {
					long o = (((long)n * g->oh + oy) * g->ow + ox) * c + ch;
					const float *img = in + (long)n * g->h * g->w * c;
					int first = 1;

					out[o] = 0.0f, am[o] = -1;
					for (int ky = 0; ky < g->kh; ky++)
						for (int kx = 0; kx < g->kw; kx++) {
							int iy = oy * g->sh - g->pt + ky, ix = ox * g->sw - g->pl + kx;
							int32_t off = (int32_t)(((long)iy * g->w + ix) * c + ch);

							if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
								continue;
							if (first || img[off] > out[o])
								out[o] = img[off], am[o] = off;
							first = 0;
						}
				}
}

/* din = dout routed to the winners in output order, gated by pooled > 0 if pooled. */
static void ref_unmax(const geom *g, float *din, const float *dout, const int32_t *am,
		      const float *pooled, int B)
{
	long isz = (long)g->h * g->w * g->c, osz = (long)g->oh * g->ow * g->c;

	memset(din, 0, sizeof *din * (size_t)(B * isz));
	for (long n = 0; n < B; n++)
		for (long i = 0; i < osz; i++)
			if (am[n * osz + i] >= 0)
				din[n * isz + am[n * osz + i]] +=
					pooled && !(pooled[n * osz + i] > 0) ? 0.0f : dout[n * osz + i];
}

/* The divisor of window (oy, ox): its in-bounds cells, or with incl its cells within the
 * padded input; 0 if it has no in-bounds cell. */
static int ref_div(const geom *g, int oy, int ox, int incl)
{
	int y0 = oy * g->sh - g->pt, x0 = ox * g->sw - g->pl;
	int ylo = y0 > 0 ? y0 : 0, yhi = y0 + g->kh < g->h ? y0 + g->kh : g->h;
	int xlo = x0 > 0 ? x0 : 0, xhi = x0 + g->kw < g->w ? x0 + g->kw : g->w;

	if (yhi <= ylo || xhi <= xlo)
		return 0;
	if (!incl)
		return (yhi - ylo) * (xhi - xlo);
	ylo = y0 > -g->pt ? y0 : -g->pt, yhi = y0 + g->kh < g->h + g->pb ? y0 + g->kh : g->h + g->pb;
	xlo = x0 > -g->pl ? x0 : -g->pl, xhi = x0 + g->kw < g->w + g->pr ? x0 + g->kw : g->w + g->pr;
	return (yhi - ylo) * (xhi - xlo);
}

/* The mean: a float sum from zero over the window's in-bounds taps in row-major order, then
 * divided. */
static void ref_avg(const geom *g, float *out, const float *in, int B, int incl)
{
	int c = g->c;

	for (int n = 0; n < B; n++)
		for (int oy = 0; oy < g->oh; oy++)
			for (int ox = 0; ox < g->ow; ox++)
				for (int ch = 0; ch < c; ch++) {
					int div = ref_div(g, oy, ox, incl);
					float s = 0.0f;

					for (int iy = oy * g->sh - g->pt; iy < oy * g->sh - g->pt + g->kh; iy++)
						for (int ix = ox * g->sw - g->pl; ix < ox * g->sw - g->pl + g->kw; ix++)
							if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
								s += in[(((long)n * g->h + iy) * g->w + ix) * c + ch];
					out[(((long)n * g->oh + oy) * g->ow + ox) * c + ch] = div ? s / (float)div : 0.0f;
				}
}

/* Its gradient: each input cell sums from zero, over the windows holding it in row-major
 * order, dout / divisor. */
static void ref_avg_bwd(const geom *g, float *din, const float *dout, int B, int incl)
{
	int c = g->c;

	for (int n = 0; n < B; n++)
		for (int iy = 0; iy < g->h; iy++)
			for (int ix = 0; ix < g->w; ix++)
				for (int ch = 0; ch < c; ch++) {
					float s = 0.0f;

					for (int oy = 0; oy < g->oh; oy++)
						for (int ox = 0; ox < g->ow; ox++) {
							int y0 = oy * g->sh - g->pt, x0 = ox * g->sw - g->pl;

							if (iy >= y0 && iy < y0 + g->kh && ix >= x0 && ix < x0 + g->kw)
								s += dout[(((long)n * g->oh + oy) * g->ow + ox) * c + ch] /
								     (float)ref_div(g, oy, ox, incl);
						}
					din[(((long)n * g->h + iy) * g->w + ix) * c + ch] = s;
				}
}

/* Values from a few levels (ties everywhere), signed zeros, now and then a NaN. */
static float pick(rng *r, int nan)
{
	uint64_t k = rng_below(r, 40);

	if (nan && k == 0)
		return NAN;
	if (k == 1)
		return -0.0f;
	return (float)((int)rng_below(r, 7) - 3) * 0.5f;
}

static int random_geom(rng *r, geom *g, int *B)
{
	char err[ERR_MAX];
	int kh = 1 + (int)rng_below(r, 4), kw = 1 + (int)rng_below(r, 4);
	int pads[4] = { (int)rng_below(r, (uint64_t)kh + 1), (int)rng_below(r, (uint64_t)kw + 1),
			(int)rng_below(r, (uint64_t)kh + 1), (int)rng_below(r, (uint64_t)kw + 1) };
	int c = 1 + (int)rng_below(r, 70);

	/* mostly no pads, as in a network; else any up to the window */
	if (rng_below(r, 3) == 0)
		memset(pads, 0, sizeof pads);
	*B = 1 + (int)rng_below(r, 3);
	return geom_init_pads(g, 1 + (int)rng_below(r, 9), 1 + (int)rng_below(r, 9), c, kh, kw,
			      1 + (int)rng_below(r, 3), 1 + (int)rng_below(r, 3), pads, (int)rng_below(r, 2), 1,
			      c, err);
}

/* Max-pooling over g (batch B, inputs from pick, NaNs if nan) against the reference on
 * every path and 1 to 3 threads, forward with and without the winners, backward with and
 * without the ReLU mask; t numbers the case in messages. Returns the count of windows
 * wholly in the padding. */
static int check_max(const geom *g, int B, rng *r, int nan, int t)
{
	size_t ni = (size_t)B * g->h * g->w * g->c, no = (size_t)B * g->oh * g->ow * g->c;
	float *in = malloc(sizeof *in * ni), *ref = malloc(sizeof *ref * no);
	float *out = malloc(sizeof *out * no), *dout = malloc(sizeof *dout * no);
	float *din = malloc(sizeof *din * ni), *dref = malloc(sizeof *dref * ni);
	int32_t *am = malloc(sizeof *am * no), *amref = malloc(sizeof *amref * no);
	int allpad = 0;

	for (size_t i = 0; i < ni; i++)
		in[i] = pick(r, nan);
	for (size_t i = 0; i < no; i++)
		dout[i] = pick(r, 0) + 0.25f;
	ref_max(g, ref, amref, in, B);
	for (size_t i = 0; i < no; i++)
		allpad += amref[i] < 0;
	for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
		if (!isa_supported(paths[p]))
			continue;
		for (int th = 1; th <= 3; th++) {
			memset(out, 0x55, sizeof *out * no);
			memset(am, 0x55, sizeof *am * no);
			maxpool_forward_isa(g, out, am, in, B, th, paths[p]);
			CHECK(!memcmp(out, ref, sizeof *out * no) && !memcmp(am, amref, sizeof *am * no),
			      "case %d %s threads %d: %dx%d s%dx%d pads %d,%d,%d,%d %dx%dx%d", t,
			      isa_name(paths[p]), th, g->kh, g->kw, g->sh, g->sw, g->pt, g->pl, g->pb, g->pr,
			      g->h, g->w, g->c);
			memset(out, 0x55, sizeof *out * no);
			maxpool_forward_isa(g, out, NULL, in, B, th, paths[p]);
			CHECK(!memcmp(out, ref, sizeof *out * no), "case %d %s threads %d: without the winners",
			      t, isa_name(paths[p]), th);
		}
	}
	for (int relu = 0; relu < 2; relu++)
		for (int th = 1; th <= 3; th++) {
			ref_unmax(g, dref, dout, amref, relu ? ref : NULL, B);
			memset(din, 0x55, sizeof *din * ni);
			maxpool_backward_relu(g, din, dout, amref, relu ? ref : NULL, B, th);
			CHECK(!memcmp(din, dref, sizeof *din * ni), "case %d backward relu %d threads %d", t,
			      relu, th);
		}
	free(in), free(ref), free(out), free(dout), free(din), free(dref), free(am), free(amref);
	return allpad;
}

static void test_max(void)
{
	rng r;
	int done = 0, allpad = 0;

	rng_seed(&r, 16);
	for (int t = 0; t < NCASES; t++) {
		geom g;
		int B;

		if (random_geom(&r, &g, &B))
			continue;
		allpad += check_max(&g, B, &r, t % 2, t);
		done++;
	}
	CHECK(done > NCASES / 2 && allpad > 0, "%d cases, %d windows in the padding", done, allpad);
}

/* The 2x2 stride-2 pool (the seed's pool1 and pool2), which has a forward of its own:
 * channel counts below, at and past a vector's 8 and 16, NaNs and ties, different heights,
 * widths and batches (cases 1000 on in messages). */
static void test_max_2x2(void)
{
	static const int chans[] = { 1, 3, 8, 13, 16, 32, 64, 70 };
	rng r;

	rng_seed(&r, 17);
	for (size_t k = 0; k < sizeof chans / sizeof *chans; k++) {
		geom g;
		char err[ERR_MAX];
		int B = 1 + (int)(k % 3), h = 2 + 2 * (int)(k % 4), w = 8 - 2 * (int)(k % 3);

		CHECK(geom_init(&g, h, w, chans[k], 2, 2, 2, 2, GEOM_VALID, chans[k], err) == 0, "%s", err);
		check_max(&g, B, &r, 1, 1000 + (int)k);
	}
}

static void test_avg(void)
{
	rng r;
	int done = 0;

	rng_seed(&r, 61);
	for (int t = 0; t < NCASES; t++) {
		geom g;
		int B;

		if (random_geom(&r, &g, &B))
			continue;
		size_t ni = (size_t)B * g.h * g.w * g.c, no = (size_t)B * g.oh * g.ow * g.c;
		float *in = malloc(sizeof *in * ni), *ref = malloc(sizeof *ref * no), *out = malloc(sizeof *out * no);
		float *dout = malloc(sizeof *dout * no), *din = malloc(sizeof *din * ni), *dref = malloc(sizeof *dref * ni);

		/* values whose float sums round differently in another order */
		for (size_t i = 0; i < ni; i++)
			in[i] = (rng_uniformf(&r) - 0.5f) * (float)(1 << rng_below(&r, 20));
		for (size_t i = 0; i < no; i++)
			dout[i] = (rng_uniformf(&r) - 0.5f) * (float)(1 << rng_below(&r, 20));
		for (int incl = 0; incl < 2; incl++) {
			ref_avg(&g, ref, in, B, incl);
			for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
				if (!isa_supported(paths[p]))
					continue;
				for (int th = 1; th <= 3; th++) {
					memset(out, 0x55, sizeof *out * no);
					avgpool_forward(&g, out, in, B, incl, th);
					CHECK(!memcmp(out, ref, sizeof *out * no),
					      "case %d incl %d %s threads %d: %dx%d s%dx%d pads %d,%d,%d,%d %dx%dx%d", t, incl,
					      isa_name(paths[p]), th, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.pb, g.pr, g.h,
					      g.w, g.c);
				}
			}
			ref_avg_bwd(&g, dref, dout, B, incl);
			for (int th = 1; th <= 3; th++) {
				memset(din, 0x55, sizeof *din * ni);
				avgpool_backward(&g, din, dout, B, incl, th);
				CHECK(!memcmp(din, dref, sizeof *din * ni), "case %d incl %d threads %d: backward", t, incl,
				      th);
			}
		}
		free(in), free(ref), free(out), free(dout), free(din), free(dref);
		done++;
	}
	CHECK(done > NCASES / 2, "%d cases", done);
}

/* Global average pooling: sums from zero pixel by pixel, then divided; small inputs run on
 * one thread, large ones (past 2^20 floats) split, with the same bits. */
static void test_gap(void)
{
	static const int shapes[][3] = { { 2, 49, 5 }, { 3, 7, 70 }, { 1, 1, 1 }, { 3, 1000, 401 }, { 5, 3, 17 } };
	rng r;

	rng_seed(&r, 7);
	for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
		int B = shapes[t][0], hw = shapes[t][1], c = shapes[t][2];
		size_t ni = (size_t)B * hw * c, no = (size_t)B * c;
		float *in = malloc(sizeof *in * ni), *ref = malloc(sizeof *ref * no), *out = malloc(sizeof *out * no);
		float *din = malloc(sizeof *din * ni), *dref = malloc(sizeof *dref * ni);

		for (size_t i = 0; i < ni; i++)
			in[i] = (rng_uniformf(&r) - 0.5f) * (float)(1 << rng_below(&r, 20));
		for (int b = 0; b < B; b++)
			for (int ch = 0; ch < c; ch++) {
				float sum = 0.0f;

				for (int p = 0; p < hw; p++)
					sum += in[((size_t)b * hw + p) * c + ch];
				ref[(size_t)b * c + ch] = sum / (float)hw;
				for (int p = 0; p < hw; p++)
					dref[((size_t)b * hw + p) * c + ch] = in[(size_t)b * c + ch] / (float)hw;
			}
		for (int th = 1; th <= 3; th++) {
			memset(out, 0x55, sizeof *out * no);
			gap_forward(out, in, B, hw, c, th);
			CHECK(!memcmp(out, ref, sizeof *out * no), "gap %dx%dx%d threads %d", B, hw, c, th);
			memset(din, 0x55, sizeof *din * ni);
			gap_backward(din, in, B, hw, c, th);
			CHECK(!memcmp(din, dref, sizeof *din * ni), "gap backward %dx%dx%d threads %d", B, hw, c, th);
		}
		free(in), free(ref), free(out), free(din), free(dref);
	}
}

int main(void)
{
	test_max();
	test_max_2x2();
	test_avg();
	test_gap();
	return check_done("test_pool");
}
