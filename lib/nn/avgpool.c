/* avgpool: average pooling as direct loops: forward sums each window's in-bounds cells,
 * backward gathers into each input the shares of the windows covering it (no scatter, so
 * rows split over threads without two writing one cell); global average pooling. */
#include "nn/avgpool.h"

#include <string.h>

#include "nn/blas.h"
#include "util/par.h"

/* The cells of the window starting at o (output index along an axis) that count: [*lo,
 * *hi) in input coordinates, clipped to the padded input if include_pad, else the input. */
static int window_count(int o, int s, int k, int before, int after, int in, int include_pad)
{
	int lo = o * s - before, hi = lo + k;
	int min = include_pad ? -before : 0, max = include_pad ? in + after : in;

	lo = lo > min ? lo : min;
	hi = hi < max ? hi : max;
	return hi > lo ? hi - lo : 0;
}

/* The divisor of output (oy, ox): 0 for a window with no input cell (its output is 0). */
static int divisor(const geom *g, int oy, int ox, int include_pad)
{
	if (!window_count(oy, g->sh, g->kh, g->pt, g->pb, g->h, 0) ||
	    !window_count(ox, g->sw, g->kw, g->pl, g->pr, g->w, 0))
		return 0;
	return window_count(oy, g->sh, g->kh, g->pt, g->pb, g->h, include_pad) *
	       window_count(ox, g->sw, g->kw, g->pl, g->pr, g->w, include_pad);
}

typedef struct {
	const geom *g;
	float *out;
	const float *in;
	int B, include_pad;
	long hw;
} pool_job;

static void fwd_worker(void *ctx, int k, int n)
{
	const pool_job *j = ctx;
	const geom *g = j->g;
	int c = g->c;
	long lo, hi;

	par_share((long)j->B * g->oh, k, n, &lo, &hi);
	for (long r = lo; r < hi; r++) {
		long img = r / g->oh;
		int oy = (int)(r % g->oh);
		const float *im = j->in + img * g->h * g->w * c;

		for (int ox = 0; ox < g->ow; ox++) {
			float *o = j->out + (r * g->ow + ox) * c;
			int div = divisor(g, oy, ox, j->include_pad);

			memset(o, 0, sizeof *o * c);
			if (!div)
				continue;
			for (int ky = 0; ky < g->kh; ky++) {
				int iy = oy * g->sh - g->pt + ky;

				if (iy < 0 || iy >= g->h)
					continue;
				for (int kx = 0; kx < g->kw; kx++) {
					int ix = ox * g->sw - g->pl + kx;
					const float *x = im + ((long)iy * g->w + ix) * c;

					if (ix < 0 || ix >= g->w)
						continue;
					for (int ch = 0; ch < c; ch++)
						o[ch] += x[ch];
				}
			}
			for (int ch = 0; ch < c; ch++)
				o[ch] /= (float)div;
		}
	}
}

void avgpool_forward(const geom *g, float *out, const float *in, int B, int include_pad,
		     int threads)
{
	pool_job j = { .g = g, .out = out, .in = in, .B = B, .include_pad = include_pad };
	long rows = (long)B * g->oh;

	if (threads > 1)
		blas_park();
	par_run(threads < rows ? threads : (int)rows, fwd_worker, &j);
}

/* din: out is din, in is dout. Input (iy, ix) is in window (oy, ox) iff oy*sh - pt <= iy <
 * oy*sh - pt + kh: the outputs ceil((iy+pt-kh+1)/sh) .. floor((iy+pt)/sh). */
static void bwd_worker(void *ctx, int k, int n)
{
	const pool_job *j = ctx;
	const geom *g = j->g;
	int c = g->c;
	long lo, hi;

	par_share((long)j->B * g->h, k, n, &lo, &hi);
	for (long r = lo; r < hi; r++) {
		long img = r / g->h;
		int iy = (int)(r % g->h), ty = iy + g->pt - g->kh + 1;
		int oy0 = ty > 0 ? (ty + g->sh - 1) / g->sh : 0, oy1 = (iy + g->pt) / g->sh;
		const float *dimg = j->in + img * g->oh * g->ow * c;

		oy1 = oy1 < g->oh - 1 ? oy1 : g->oh - 1;
		for (int ix = 0; ix < g->w; ix++) {
			float *d = j->out + (r * g->w + ix) * c;
			int tx = ix + g->pl - g->kw + 1;
			int ox0 = tx > 0 ? (tx + g->sw - 1) / g->sw : 0, ox1 = (ix + g->pl) / g->sw;

			ox1 = ox1 < g->ow - 1 ? ox1 : g->ow - 1;
			memset(d, 0, sizeof *d * c);
			for (int oy = oy0; oy <= oy1; oy++)
				for (int ox = ox0; ox <= ox1; ox++) {
					const float *dy = dimg + ((long)oy * g->ow + ox) * c;
					float div = (float)divisor(g, oy, ox, j->include_pad);

					for (int ch = 0; ch < c; ch++)
						d[ch] += dy[ch] / div;
				}
		}
	}
}

void avgpool_backward(const geom *g, float *din, const float *dout, int B, int include_pad,
		      int threads)
{
	pool_job j = { .g = g, .out = din, .in = dout, .B = B, .include_pad = include_pad };
	long rows = (long)B * g->h;

	if (threads > 1)
		blas_park();
	par_run(threads < rows ? threads : (int)rows, bwd_worker, &j);
}

/* images split over threads, each summed pixel by pixel */
static void gap_fwd_worker(void *ctx, int k, int n)
{
	const pool_job *j = ctx;
	int c = j->g->c;
	long lo, hi;

	par_share(j->B, k, n, &lo, &hi);
	for (long b = lo; b < hi; b++) {
		float *o = j->out + b * c;
		const float *x = j->in + b * j->hw * c;

		memset(o, 0, sizeof *o * c);
		for (long p = 0; p < j->hw; p++, x += c)
			for (int ch = 0; ch < c; ch++)
				o[ch] += x[ch];
		for (int ch = 0; ch < c; ch++)
			o[ch] /= (float)j->hw;
	}
}

void gap_forward(float *out, const float *in, int B, long hw, int c, int threads)
{
	geom g = { .c = c };
	pool_job j = { .g = &g, .out = out, .in = in, .B = B, .hw = hw };

	if (threads > 1)
		blas_park();
	par_run(threads < B ? threads : B, gap_fwd_worker, &j);
}

/* pixels of the batch split over threads */
static void gap_bwd_worker(void *ctx, int k, int n)
{
	const pool_job *j = ctx;
	int c = j->g->c;
	long lo, hi;

	par_share((long)j->B * j->hw, k, n, &lo, &hi);
	for (long p = lo; p < hi; p++) {
		const float *d = j->in + p / j->hw * c;
		float *o = j->out + p * c;

		for (int ch = 0; ch < c; ch++)
			o[ch] = d[ch] / (float)j->hw;
	}
}

void gap_backward(float *din, const float *dout, int B, long hw, int c, int threads)
{
	geom g = { .c = c };
	pool_job j = { .g = &g, .out = din, .in = dout, .B = B, .hw = hw };
	long rows = (long)B * hw;

	if (threads > 1)
		blas_park();
	par_run(threads < rows ? threads : (int)rows, gap_bwd_worker, &j);
}
