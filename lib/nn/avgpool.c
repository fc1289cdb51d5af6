/* avgpool: average pooling as direct loops: forward sums each window's in-bounds cells,
 * backward gathers into each input the shares of the windows covering it (no scatter, so
 * rows split over threads without two writing one cell); global average pooling. */
#include "nn/avgpool.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "nn/blas.h"
#include "nn/vec.h"
#include "util/par.h"

/* The cells of the window starting at o (output index along an axis) that count: [*lo,
 * *hi) in input coordinates, clipped to the padded input if include_pad, else the input. */
static int window_count(int o, int s, int k, int before, int after, int in, int include_pad)
{
	int lo, hi;

	geom_window(o, s, before, k, include_pad ? -before : 0, include_pad ? in + after : in, &lo, &hi);
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

/* SSE by hand across the channels (NHWC: contiguous), 4 at a time, the rest scalar: each
 * lane does what the scalar loop does, in the same order, so the same bits. */

/* o [c] = the sum of the taps [y0, y1) x [x0, x1) of im [h, w, c] (row stride w * c), from
 * zero, row by row, divided by div: 4 channels at a time in a register. */
static void mean_c(float *o, const float *im, long w, int c, int y0, int y1, int x0, int x1,
		   float div)
{
	int ch = 0;
#if defined(__SSE2__)
	for (__m128 d = _mm_set1_ps(div); ch + 4 <= c; ch += 4) {
		__m128 s = _mm_setzero_ps();

		for (int iy = y0; iy < y1; iy++)
			for (int ix = x0; ix < x1; ix++)
				s = _mm_add_ps(s, _mm_loadu_ps(im + (iy * w + ix) * c + ch));
		_mm_storeu_ps(o + ch, _mm_div_ps(s, d));
	}
#endif
	for (; ch < c; ch++) {
		float s = 0.0f;

		for (int iy = y0; iy < y1; iy++)
			for (int ix = x0; ix < x1; ix++)
				s += im[(iy * w + ix) * c + ch];
		o[ch] = s / div;
	}
}

/* o [c] += x [c] / div */
static void add_div_c(float *o, const float *x, float div, int c)
{
	int ch = 0;
#if defined(__SSE2__)
	for (__m128 d = _mm_set1_ps(div); ch + 4 <= c; ch += 4)
		_mm_storeu_ps(o + ch, _mm_add_ps(_mm_loadu_ps(o + ch), _mm_div_ps(_mm_loadu_ps(x + ch), d)));
#endif
	for (; ch < c; ch++)
		o[ch] += x[ch] / div;
}

/* Each output: its window's in-bounds taps added from zero row by row, then divided (a
 * window with none: 0). */
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
		int y0 = oy * g->sh - g->pt, y1 = y0 + g->kh;

		y0 = y0 > 0 ? y0 : 0, y1 = y1 < g->h ? y1 : g->h;
		for (int ox = 0; ox < g->ow; ox++) {
			float *o = j->out + (r * g->ow + ox) * c;
			int div = divisor(g, oy, ox, j->include_pad);
			int x0 = ox * g->sw - g->pl, x1 = x0 + g->kw;

			x0 = x0 > 0 ? x0 : 0, x1 = x1 < g->w ? x1 : g->w;
			if (div)
				mean_c(o, im, g->w, c, y0, y1, x0, x1, (float)div);
			else
				memset(o, 0, sizeof *o * c);
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

					add_div_c(d, dy, (float)divisor(g, oy, ox, j->include_pad), c);
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
			vec_add(o, x, c);
		for (int ch = 0; ch < c; ch++)
			o[ch] /= (float)j->hw;
	}
}

/* Below this many floats a global pool runs on the caller alone: starting a thread and
 * parking OpenBLAS's cost more than the sum (MobileNetV2's 8x7x7x1280: 0.14 ms on one
 * thread, 0.28 on two). Each image is summed alone either way: the same bits. */
#define GAP_ONE_THREAD (1L << 20)

void gap_forward(float *out, const float *in, int B, long hw, int c, int threads)
{
	geom g = { .c = c };
	pool_job j = { .g = &g, .out = out, .in = in, .B = B, .hw = hw };

	if ((long)B * hw * c < GAP_ONE_THREAD)
		threads = 1;
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

	if (rows * c < GAP_ONE_THREAD)
		threads = 1;
	if (threads > 1)
		blas_park();
	par_run(threads < rows ? threads : (int)rows, gap_bwd_worker, &j);
}
