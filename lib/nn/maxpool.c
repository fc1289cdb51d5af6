/* maxpool: max-pooling forward (the winners' offsets kept) and backward (the gradient
 * routed to the winners), images split over threads; a 2x2 stride-2 fast path. */
#include "nn/maxpool.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "nn/blas.h"
#include "util/par.h"

/* out = a where take, else b (all lanes as masks). */
#if defined(__SSE2__)
static __m128 pick_ps(__m128 take, __m128 a, __m128 b)
{
	return _mm_or_ps(_mm_and_ps(take, a), _mm_andnot_ps(take, b));
}
#endif

/* The offsets within its image of the 2x2 window of output (oy, ox), channel 0. */
static void window_2x2(const geom *g, int oy, int ox, int32_t off[4])
{
	off[0] = (int32_t)((2L * oy * g->w + 2L * ox) * g->c);
	off[1] = off[0] + g->c, off[2] = (int32_t)(off[0] + (long)g->w * g->c), off[3] = off[2] + g->c;
}

/* The 2x2 stride-2 pool over even sizes (every window whole), 4 channels at a time: the
 * same comparisons in the same order as the general loop, so the same winners. */
static void maxpool_2x2(const geom *g, float *out, int32_t *argmax, const float *in, int B)
{
	int c = g->c;
	long isz = (long)g->h * g->w * c;

	for (long n = 0; n < B; n++)
		for (int oy = 0; oy < g->oh; oy++)
			for (int ox = 0; ox < g->ow; ox++) {
				long o = ((n * g->oh + oy) * g->ow + ox) * c;
				int32_t off[4];
				const float *img = in + n * isz;

				window_2x2(g, oy, ox, off);
				int ch = 0;
#if defined(__SSE2__)
				for (; ch + 4 <= c; ch += 4) {
					__m128 v = _mm_loadu_ps(img + off[0] + ch);
					__m128i base = _mm_add_epi32(_mm_set1_epi32(ch), _mm_setr_epi32(0, 1, 2, 3));
					__m128 a = _mm_castsi128_ps(_mm_add_epi32(base, _mm_set1_epi32(off[0])));

					for (int k = 1; k < 4; k++) {
						__m128 x = _mm_loadu_ps(img + off[k] + ch);
						__m128 gt = _mm_cmpgt_ps(x, v);

						v = pick_ps(gt, x, v);
						a = pick_ps(gt, _mm_castsi128_ps(_mm_add_epi32(base, _mm_set1_epi32(off[k]))), a);
					}
					_mm_storeu_ps(out + o + ch, v);
					_mm_storeu_si128((__m128i *)(argmax + o + ch), _mm_castps_si128(a));
				}
#endif
				for (; ch < c; ch++) {
					float v = img[off[0] + ch];
					int32_t a = off[0] + ch;

					for (int k = 1; k < 4; k++)
						if (img[off[k] + ch] > v)
							v = img[off[k] + ch], a = off[k] + ch;
					out[o + ch] = v;
					argmax[o + ch] = a;
				}
			}
}

static int is_2x2(const geom *g)
{
	return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->pt == 0 && g->pl == 0 &&
	       g->h == 2 * g->oh && g->w == 2 * g->ow;
}

static void maxpool_images(const geom *g, float *out, int32_t *argmax, const float *in, int B)
{
	int c = g->c;
	long isz = (long)g->h * g->w * c;

	if (is_2x2(g)) {
		maxpool_2x2(g, out, argmax, in, B);
		return;
	}
	for (long n = 0; n < B; n++) {
		const float *img = in + n * isz;

		for (int oy = 0; oy < g->oh; oy++)
			for (int ox = 0; ox < g->ow; ox++) {
				long o = ((n * g->oh + oy) * g->ow + ox) * c;
				float *po = out + o;
				int32_t *pa = argmax + o;
				int first = 1;

				for (int ky = 0; ky < g->kh; ky++) {
					int iy = oy * g->sh - g->pt + ky;

					if (iy < 0 || iy >= g->h)
						continue;
					for (int kx = 0; kx < g->kw; kx++) {
						int ix = ox * g->sw - g->pl + kx;
						int32_t off = (int32_t)(((long)iy * g->w + ix) * c);

						if (ix < 0 || ix >= g->w)
							continue;
						/* the first in-bounds pixel seeds the max, so
						 * padding never wins and NaN still has a winner */
						for (int ch = 0; ch < c; ch++)
							if (first || img[off + ch] > po[ch]) {
								po[ch] = img[off + ch];
								pa[ch] = off + ch;
							}
						first = 0;
					}
				}
				/* explicit pads as large as the window: nothing to take */
				if (first)
					for (int ch = 0; ch < c; ch++)
						po[ch] = 0.0f, pa[ch] = -1;
			}
	}
}

typedef struct {
	const geom *g;
	float *out, *din;
	int32_t *argmax;
	const float *in, *dout, *pooled;
	const int32_t *amax;
	int B;
} pool_job;

/* pooling is memory-bound: images split over threads, each output computed as alone */
static void pool_fwd_worker(void *ctx, int k, int n)
{
	const pool_job *j = ctx;
	const geom *g = j->g;
	long lo, hi, isz = (long)g->h * g->w * g->c, osz = (long)g->oh * g->ow * g->c;

	par_share(j->B, k, n, &lo, &hi);
	maxpool_images(g, j->out + lo * osz, j->argmax + lo * osz, j->in + lo * isz, (int)(hi - lo));
}

void maxpool_forward(const geom *g, float *out, int32_t *argmax, const float *in, int B,
		     int threads)
{
	pool_job j = { .g = g, .out = out, .argmax = argmax, .in = in, .B = B };

	if (threads > 1)
		blas_park();
	par_run(threads < B ? threads : B, pool_fwd_worker, &j);
}

/* The 2x2 pool's backward writes every input once, window by window (no zeroing pass):
 * the winner gets the gradient, gated by the pooled value (a ReLU before the pool let the
 * winner through iff it is > 0), the other three zero. SSE: 4 channels at a time. */
static void unpool_2x2(const geom *g, float *din, const float *dout, const int32_t *argmax,
		       const float *pooled, int B)
{
	int c = g->c;
	long isz = (long)g->h * g->w * c;

	for (long n = 0; n < B; n++)
		for (int oy = 0; oy < g->oh; oy++)
			for (int ox = 0; ox < g->ow; ox++) {
				long o = ((n * g->oh + oy) * g->ow + ox) * c;
				int32_t off[4];
				float *img = din + n * isz;
				int ch = 0;

				window_2x2(g, oy, ox, off);
#if defined(__SSE2__)
				for (; ch + 4 <= c; ch += 4) {
					__m128i a = _mm_loadu_si128((const __m128i *)(argmax + o + ch));
					__m128i lane = _mm_add_epi32(_mm_set1_epi32(ch), _mm_setr_epi32(0, 1, 2, 3));
					__m128 d = _mm_loadu_ps(dout + o + ch);

					if (pooled)
						d = _mm_and_ps(d, _mm_cmpgt_ps(_mm_loadu_ps(pooled + o + ch), _mm_setzero_ps()));
					for (int k = 0; k < 4; k++) {
						__m128i at = _mm_add_epi32(lane, _mm_set1_epi32(off[k]));

						_mm_storeu_ps(img + off[k] + ch,
							      _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a, at)), d));
					}
				}
#endif
				for (; ch < c; ch++) {
					int32_t a = argmax[o + ch];
					float d = pooled && !(pooled[o + ch] > 0) ? 0.0f : dout[o + ch];

					for (int k = 0; k < 4; k++)
						img[off[k] + ch] = off[k] + ch == a ? d : 0.0f;
				}
			}
}

static void pool_bwd_worker(void *ctx, int k, int n)
{
	const pool_job *j = ctx;
	const geom *g = j->g;
	long lo, hi, isz = (long)g->h * g->w * g->c, osz = (long)g->oh * g->ow * g->c;

	par_share(j->B, k, n, &lo, &hi);
	if (is_2x2(g)) {
		unpool_2x2(g, j->din + lo * isz, j->dout + lo * osz, j->amax + lo * osz,
			   j->pooled ? j->pooled + lo * osz : NULL, (int)(hi - lo));
		return;
	}
	memset(j->din + lo * isz, 0, sizeof *j->din * (size_t)(hi - lo) * isz);
	for (long b = lo; b < hi; b++) {
		float *img = j->din + b * isz;
		const float *d = j->dout + b * osz, *y = j->pooled ? j->pooled + b * osz : NULL;
		const int32_t *a = j->amax + b * osz;

		/* an input winning several windows gets their sum; a gated one only zeros */
		for (long i = 0; i < osz; i++)
			if (a[i] >= 0)
				img[a[i]] += y && !(y[i] > 0) ? 0.0f : d[i];
	}
}

void maxpool_backward(const geom *g, float *din, const float *dout,
		      const int32_t *argmax, int B)
{
	maxpool_backward_relu(g, din, dout, argmax, NULL, B, 1);
}

void maxpool_backward_relu(const geom *g, float *din, const float *dout,
			   const int32_t *argmax, const float *pooled, int B, int threads)
{
	pool_job j = { .g = g, .din = din, .dout = dout, .amax = argmax, .pooled = pooled, .B = B };

	if (threads > 1)
		blas_park();
	par_run(threads < B ? threads : B, pool_bwd_worker, &j);
}
