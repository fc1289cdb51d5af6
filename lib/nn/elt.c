/* elt: the pointwise and channel layers of a graph network: sum, clip (ReLU6), leaky ReLU,
 * per-channel affine (a batch norm with fixed statistics) and channel concatenation. */
#include "nn/elt.h"

#include <math.h>
#include <string.h>

#include "nn/blas.h"
#include "nn/vec.h"
#include "util/par.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* SSE by hand, as in vec.c (-O2 leaves loops of unknown length scalar). Each scalar tail
 * computes exactly what the vector body does lane by lane (the same compare, the same
 * operand order in max and min), so a tensor's bits do not depend on where it ends. */

static void add_run(float *out, const float *a, const float *b, size_t n, int relu)
{
	size_t i = 0;
#if defined(__SSE2__)
	__m128 zero = _mm_setzero_ps();

	for (; i + 4 <= n; i += 4) {
		__m128 v = _mm_add_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i));

		_mm_storeu_ps(out + i, relu ? _mm_max_ps(v, zero) : v);
	}
#endif
	for (; i < n; i++) {
		float v = a[i] + b[i];

		/* max_ps(v, 0) is v > 0 ? v : 0 */
		out[i] = relu ? (v > 0 ? v : 0.0f) : v;
	}
}

typedef struct {
	float *out;
	const float *a, *b;
	size_t n;
	int relu;
} add_job;

/* Worker k's share of n floats, in blocks of 16 (whole cache lines where the tensors are
 * aligned, as the layers' outputs are). */
static void share16(size_t n, int k, int nth, long *lo, long *hi)
{
	par_share((long)((n + 15) / 16), k, nth, lo, hi);
	*lo *= 16, *hi = *hi * 16 < (long)n ? *hi * 16 : (long)n;
}

static void add_worker(void *ctx, int k, int n)
{
	const add_job *j = ctx;
	long lo, hi;

	share16(j->n, k, n, &lo, &hi);
	if (hi > lo)
		add_run(j->out + lo, j->a + lo, j->b + lo, (size_t)(hi - lo), j->relu);
}

/* A residual network's sums stream three tensors each (ResNet-18's first stage 1.6 M floats
 * at batch 8, 1.2 ms on one thread of a Zen 4): shared over the threads where each gets
 * ELT_ADD_MIN floats at least. Each element's sum is its own: the same bits. */
#define ELT_ADD_MIN (1 << 15)

/* The threads a pass over n floats takes: at most one per ELT_ADD_MIN. */
static int elt_threads(size_t n, int threads)
{
	return threads > 1 && n / ELT_ADD_MIN < (size_t)threads ? (int)(n / ELT_ADD_MIN) : threads;
}

void elt_add(float *out, const float *a, const float *b, size_t n, int relu, int threads)
{
	add_job j = { out, a, b, n, relu };

	threads = elt_threads(n, threads);
	if (threads <= 1) {
		add_run(out, a, b, n, relu);
		return;
	}
	blas_park();
	par_run(threads, add_worker, &j);
}

typedef struct {
	float *dx;
	const float *dy, *y;
	size_t n;
	int act;
} act_job;

static void act_worker(void *ctx, int k, int n)
{
	const act_job *j = ctx;
	long lo, hi;

	share16(j->n, k, n, &lo, &hi);
	if (hi > lo)
		vec_act_backward(j->dx + lo, j->dy + lo, j->y + lo, (size_t)(hi - lo), j->act);
}

/* A ReLU6's backward streams three tensors as a sum does (MobileNetV2's 35 of them, ~55 M
 * floats a step at batch 10): shared over the threads alike (a 56x56x144 batch of 10 on a
 * Zen 4: 1.87 ms on one thread, 1.21 on two). */
void elt_act_backward(float *dx, const float *dy, const float *y, size_t n, int act, int threads)
{
	act_job j = { dx, dy, y, n, act };

	threads = elt_threads(n, threads);
	if (threads <= 1) {
		vec_act_backward(dx, dy, y, n, act);
		return;
	}
	blas_park();
	par_run(threads, act_worker, &j);
}

void elt_clip_forward(float *y, const float *x, size_t n, float lo, float hi)
{
	size_t i = 0;
#if defined(__SSE2__)
	__m128 vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);

	/* max_ps(lo, x) is lo > x ? lo : x: a NaN x falls through both, as in PyTorch */
	for (; i + 4 <= n; i += 4)
		_mm_storeu_ps(y + i, _mm_min_ps(vhi, _mm_max_ps(vlo, _mm_loadu_ps(x + i))));
#endif
	for (; i < n; i++) {
		float v = lo > x[i] ? lo : x[i];

		y[i] = hi < v ? hi : v;
	}
}

void elt_clip_backward(float *dx, const float *dy, const float *x, size_t n, float lo, float hi)
{
	/* an infinite bound is no bound: x = +inf passes ReLU's backward (its y > 0) too */
	int lo_open = isinf(lo) && lo < 0, hi_open = isinf(hi) && hi > 0;
	size_t i = 0;
#if defined(__SSE2__)
	__m128 vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
	__m128 all = _mm_castsi128_ps(_mm_set1_epi32(-1));
	__m128 olo = lo_open ? all : _mm_setzero_ps(), ohi = hi_open ? all : _mm_setzero_ps();

	for (; i + 4 <= n; i += 4) {
		__m128 v = _mm_loadu_ps(x + i);
		__m128 m = _mm_and_ps(_mm_or_ps(_mm_cmpgt_ps(v, vlo), olo),
				      _mm_or_ps(_mm_cmplt_ps(v, vhi), ohi));

		_mm_storeu_ps(dx + i, _mm_and_ps(m, _mm_loadu_ps(dy + i)));
	}
#endif
	for (; i < n; i++)
		dx[i] = (lo_open || x[i] > lo) && (hi_open || x[i] < hi) ? dy[i] : 0.0f;
}

void elt_leaky_forward(float *y, const float *x, size_t n, float alpha)
{
	size_t i = 0;
#if defined(__SSE2__)
	__m128 va = _mm_set1_ps(alpha), zero = _mm_setzero_ps();

	for (; i + 4 <= n; i += 4) {
		__m128 v = _mm_loadu_ps(x + i), m = _mm_cmpgt_ps(v, zero);

		_mm_storeu_ps(y + i, _mm_or_ps(_mm_and_ps(m, v), _mm_andnot_ps(m, _mm_mul_ps(v, va))));
	}
#endif
	for (; i < n; i++)
		y[i] = x[i] > 0 ? x[i] : x[i] * alpha;
}

void elt_leaky_backward(float *dx, const float *dy, const float *x, size_t n, float alpha)
{
	size_t i = 0;
#if defined(__SSE2__)
	__m128 va = _mm_set1_ps(alpha), zero = _mm_setzero_ps();

	for (; i + 4 <= n; i += 4) {
		__m128 g = _mm_loadu_ps(dy + i), m = _mm_cmpgt_ps(_mm_loadu_ps(x + i), zero);

		_mm_storeu_ps(dx + i, _mm_or_ps(_mm_and_ps(m, g), _mm_andnot_ps(m, _mm_mul_ps(g, va))));
	}
#endif
	for (; i < n; i++)
		dx[i] = x[i] > 0 ? dy[i] : dy[i] * alpha;
}

void elt_affine_forward(float *y, const float *x, const float *scale, const float *shift,
			size_t rows, int c, int relu)
{
	for (size_t r = 0; r < rows; r++, x += c, y += c) {
		int j = 0;
#if defined(__SSE2__)
		__m128 zero = _mm_setzero_ps();

		for (; j + 4 <= c; j += 4) {
			__m128 v = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(x + j), _mm_loadu_ps(scale + j)),
					      _mm_loadu_ps(shift + j));

			_mm_storeu_ps(y + j, relu ? _mm_max_ps(v, zero) : v);
		}
#endif
		for (; j < c; j++) {
			float v = x[j] * scale[j] + shift[j];

			y[j] = relu ? (v > 0 ? v : 0.0f) : v;
		}
	}
}

/* Channels per pass of the parameter gradients: their double sums live on the stack (2 KiB
 * each), and a pass reads 512 contiguous bytes of every row, whole cache lines. */
#define ELT_CHUNK 128

void elt_affine_backward(float *dx, float *dscale, float *dshift, const float *dy,
			 const float *x, const float *scale, size_t rows, int c, int acc)
{
	/* the sums first: dx may be dy */
	if (dscale || dshift) {
		for (int c0 = 0; c0 < c; c0 += ELT_CHUNK) {
			int nc = c - c0 < ELT_CHUNK ? c - c0 : ELT_CHUNK;
			double ss[ELT_CHUNK] = { 0 }, sb[ELT_CHUNK] = { 0 };

			for (size_t r = 0; r < rows; r++) {
				const float *g = dy + r * c + c0, *v = x + r * c + c0;
				int j = 0;
#if defined(__SSE2__)
				/* a float product is exact in double: the same bits as the tail */
				for (; j + 2 <= nc; j += 2) {
					__m128d gd = _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(g + j))));
					__m128d vd = _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(v + j))));

					_mm_storeu_pd(ss + j, _mm_add_pd(_mm_loadu_pd(ss + j), _mm_mul_pd(gd, vd)));
					_mm_storeu_pd(sb + j, _mm_add_pd(_mm_loadu_pd(sb + j), gd));
				}
#endif
				for (; j < nc; j++) {
					ss[j] += (double)g[j] * v[j];
					sb[j] += g[j];
				}
			}
			for (int j = 0; j < nc; j++) {
				if (dscale)
					dscale[c0 + j] = (float)((acc ? dscale[c0 + j] : 0.0) + ss[j]);
				if (dshift)
					dshift[c0 + j] = (float)((acc ? dshift[c0 + j] : 0.0) + sb[j]);
			}
		}
	}
	if (!dx)
		return;
	for (size_t r = 0; r < rows; r++, dx += c, dy += c) {
		int j = 0;
#if defined(__SSE2__)
		for (; j + 4 <= c; j += 4)
			_mm_storeu_ps(dx + j, _mm_mul_ps(_mm_loadu_ps(dy + j), _mm_loadu_ps(scale + j)));
#endif
		for (; j < c; j++)
			dx[j] = dy[j] * scale[j];
	}
}

void elt_concat_forward(float *out, const float *in, size_t rows, int cin, int cout, int off)
{
	for (size_t r = 0; r < rows; r++)
		memcpy(out + r * cout + off, in + r * cin, sizeof *in * cin);
}

void elt_concat_backward(float *din, const float *dout, size_t rows, int cin, int cout, int off)
{
	for (size_t r = 0; r < rows; r++)
		memcpy(din + r * cin, dout + r * cout + off, sizeof *din * cin);
}
