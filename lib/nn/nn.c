/* nn: convolution as tiled im2col + sgemm (batch folded into the GEMM's M, tiles sized to
 * stay near cache), bias and ReLU fused into one pass over each freshly computed tile. */
#include "nn/nn.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
/* AVX2+FMA versions of the streaming dense kernels, compiled for that target only and
 * chosen at run time when the CPU has it: the build itself stays baseline x86-64. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NN_AVX2 __attribute__((target("avx2,fma")))
#endif

#include "nn/conv.h"
#include "util/errmsg.h"
#include "util/par.h"

/* OpenBLAS's pthread build (0.3.x) exports this; its OpenMP and serial builds do not,
 * hence weak: absent, it is NULL and nn_blas_park does nothing. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

/* Floats per im2col tile: large enough that sgemm sees a tall M, small enough that the
 * tile is still in L2/L3 when the GEMM reads it. */
#define NN_TILE_FLOATS (1 << 20)

int nn_out_size(int in, int k, int stride, nn_pad pad, int *pad_before)
{
	int out;

	if (pad == NN_SAME) {
		long total;

		out = (in + stride - 1) / stride;
		total = (long)(out - 1) * stride + k - in;
		if (total < 0)
			total = 0;
		if (pad_before)
			*pad_before = (int)(total / 2);
		return out;
	}
	if (pad_before)
		*pad_before = 0;
	if (in < k)
		return 0;
	return (in - k + 1 + stride - 1) / stride;
}

int nn_geom_init(nn_geom *g, int h, int w, int c, int kh, int kw, int sh, int sw,
		 nn_pad pad, int oc, char *err)
{
	memset(g, 0, sizeof *g);
	if (h < 1 || w < 1 || c < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || oc < 1)
		return err_set(err, "window %dx%d stride %dx%d over %dx%dx%d: sizes must be positive",
			       kh, kw, sh, sw, h, w, c);
	g->h = h, g->w = w, g->c = c, g->kh = kh, g->kw = kw, g->sh = sh, g->sw = sw, g->oc = oc;
	g->oh = nn_out_size(h, kh, sh, pad, &g->pt);
	g->ow = nn_out_size(w, kw, sw, pad, &g->pl);
	if (g->oh < 1 || g->ow < 1)
		return err_set(err, "window %dx%d does not fit a %dx%d input (VALID)", kh, kw, h, w);
	/* Offsets within one image are int32 (max-pool argmax) and K must fit an int. */
	if ((int64_t)h * w * c > INT32_MAX || (int64_t)g->oh * g->ow * oc > INT32_MAX ||
	    (int64_t)kh * kw * c > INT32_MAX / 2)
		return err_set(err, "layer of %dx%dx%d too large", h, w, c);
	return 0;
}

/* 1x1 stride-1 convolutions need no im2col: the input already is the [M, cin] matrix. */
static int is_pointwise(const nn_geom *g)
{
	return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->oh == g->h && g->ow == g->w;
}

static long tile_rows(const nn_geom *g)
{
	long K = (long)g->kh * g->kw * g->c, tm = NN_TILE_FLOATS / K;

	return tm > 0 ? tm : 1;
}

/* For stride 1, the input gradient is itself a convolution: of dout, by the kernel turned
 * half a circle with cin and cout swapped, padded by kh-1-pt, kw-1-pl. This is its window. */
static int transposed(const nn_geom *g, nn_geom *t)
{
	if (g->sh != 1 || g->sw != 1)
		return 0;
	*t = (nn_geom){ .h = g->oh, .w = g->ow, .c = g->oc, .kh = g->kh, .kw = g->kw, .sh = 1, .sw = 1,
			.oh = g->h, .ow = g->w, .pt = g->kh - 1 - g->pt, .pl = g->kw - 1 - g->pl,
			.oc = g->c };
	return 1;
}

/* wt [j, i, co, ci] = w [kh-1-j, kw-1-i, ci, co]: the kernel of the transposed convolution */
static void turn_kernel(const nn_geom *g, float *wt, const float *w)
{
	for (int j = 0; j < g->kh; j++)
		for (int i = 0; i < g->kw; i++)
			for (int co = 0; co < g->oc; co++)
				for (int ci = 0; ci < g->c; ci++)
					wt[(((long)j * g->kw + i) * g->oc + co) * g->c + ci] =
						w[(((long)(g->kh - 1 - j) * g->kw + (g->kw - 1 - i)) * g->c + ci) * g->oc + co];
}

size_t nn_conv2d_workspace(const nn_geom *g, int threads)
{
	size_t K = (size_t)g->kh * g->kw * g->c, n;
	nn_geom t;

	/* forward and dw: lib/conv's padded bands, or a tile of im2col and (backward) one of
	 * its gradient */
	n = conv_fits(g) ? conv_forward_workspace(g, threads) : 2 * (size_t)tile_rows(g) * K;
	if (transposed(g, &t)) {
		/* din: the turned kernel, and lib/conv's bands or a tile of dout's im2col */
		size_t kt = (size_t)t.kh * t.kw * t.c;
		size_t nt = kt * t.oc + (conv_fits(&t) ? conv_forward_workspace(&t, threads)
						       : (size_t)tile_rows(&t) * kt);

		if (nt > n)
			n = nt;
	}
	return n;
}

/* y[0..n) += x[0..n), SSE by hand (-O2 leaves loops of unknown length scalar). */
static void add_into(float *restrict y, const float *restrict x, long n)
{
	long i = 0;
#if defined(__SSE2__)
	for (; i + 4 <= n; i += 4)
		_mm_storeu_ps(y + i, _mm_add_ps(_mm_loadu_ps(y + i), _mm_loadu_ps(x + i)));
#endif
	for (; i < n; i++)
		y[i] += x[i];
}

/* Rows m0..m1 of the im2col matrix [B*oh*ow, kh*kw*c] (row: one output pixel, columns in
 * HWIO order ky, kx, ci so that it multiplies the weights directly). With add set, the
 * reverse: col's rows are summed back into the image (col2im). */
static void im2col(const nn_geom *g, float *col, float *in, long m0, long m1, int add)
{
	long hw = (long)g->oh * g->ow, isz = (long)g->h * g->w * g->c;
	int c = g->c, K = g->kh * g->kw * c;

	for (long m = m0; m < m1; m++) {
		long n = m / hw, r = m % hw;
		int oy = (int)(r / g->ow), ox = (int)(r % g->ow);
		int iy0 = oy * g->sh - g->pt, ix0 = ox * g->sw - g->pl;
		int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = g->w - ix0 < g->kw ? g->w - ix0 : g->kw;
		float *dst = col + (m - m0) * K, *img = in + n * isz;

		for (int ky = 0; ky < g->kh; ky++, dst += g->kw * c) {
			int iy = iy0 + ky;

			if (iy < 0 || iy >= g->h || kx0 >= kx1) {
				if (!add)
					memset(dst, 0, sizeof *dst * g->kw * c);
				continue;
			}
			/* the in-bounds columns of a window row are contiguous in NHWC */
			float *src = img + ((long)iy * g->w + ix0 + kx0) * c, *d = dst + kx0 * c;
			long len = (long)(kx1 - kx0) * c;

			if (add) {
				add_into(src, d, len);
				continue;
			}
			memset(dst, 0, sizeof *dst * kx0 * c);
			memcpy(d, src, sizeof *d * len);
			memset(dst + kx1 * c, 0, sizeof *dst * (g->kw - kx1) * c);
		}
	}
}

/* Bias and ReLU over rows of n freshly computed outputs (still in cache). SSE by hand:
 * -O2 does not vectorise loops of unknown length. */
static void bias_relu(float *out, const float *b, long rows, int n, int relu)
{
	for (long i = 0; i < rows; i++, out += n) {
		int j = 0;
#if defined(__SSE2__)
		__m128 zero = _mm_setzero_ps();

		for (; j + 4 <= n; j += 4) {
			__m128 v = _mm_loadu_ps(out + j);

			if (b)
				v = _mm_add_ps(v, _mm_loadu_ps(b + j));
			if (relu)
				v = _mm_max_ps(v, zero);
			_mm_storeu_ps(out + j, v);
		}
#endif
		for (; j < n; j++) {
			float v = out[j] + (b ? b[j] : 0.0f);

			out[j] = relu && v < 0 ? 0.0f : v;
		}
	}
}

void nn_conv2d_forward(const nn_geom *g, float *out, const float *in, const float *w,
		       const float *b, int B, int relu, float *ws, int threads)
{
	long M = (long)B * g->oh * g->ow, tm = tile_rows(g);
	int K = g->kh * g->kw * g->c, N = g->oc;

	if (conv_fits(g)) {
		if (threads > 1)
			nn_blas_park();
		conv_forward(g, out, in, w, b, relu, NULL, B, threads, ws);
		return;
	}

	if (is_pointwise(g)) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, N, K, 1.0f,
			    in, K, w, N, 0.0f, out, N);
		bias_relu(out, b, M, N, relu);
		return;
	}
	for (long m0 = 0; m0 < M; m0 += tm) {
		long m1 = m0 + tm < M ? m0 + tm : M;
		float *o = out + m0 * N;

		/* im2col only reads the input; the cast is for the shared col2im signature */
		im2col(g, ws, (float *)in, m0, m1, 0);
		/* the tile starts as the bias and sgemm adds into it (beta 1): OpenBLAS would
		 * otherwise spend a pass zeroing it for beta 0, and another adding the bias */
		if (b)
			for (long r = 0; r < m1 - m0; r++)
				memcpy(o + r * N, b, sizeof *b * N);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(m1 - m0), N, K,
			    1.0f, ws, K, w, N, b ? 1.0f : 0.0f, o, N);
		if (relu)
			bias_relu(o, NULL, m1 - m0, N, relu);
	}
}

static void sum_rows(float *db, const float *d, long rows, int n)
{
	for (long i = 0; i < rows; i++, d += n)
		add_into(db, d, n);
}

/* din [B, h, w, cin] = the transposed convolution of dout by w, tile by tile with each
 * tile complete when computed (no col2im scatter, no zeroing of din), the ReLU mask of
 * relu_y applied while the tile is still in cache. The GEMM has the forward's shape:
 * K = kh*kw*cout long, N = cin. */
static void conv_din(const nn_geom *g, const nn_geom *t, float *din, const float *dout,
		     const float *w, const float *relu_y, int B, float *ws)
{
	long M = (long)B * t->oh * t->ow, tm = tile_rows(t);
	int K = t->kh * t->kw * t->c, N = t->oc;
	float *col = ws, *wt = ws + tm * K;

	turn_kernel(g, wt, w);
	for (long m0 = 0; m0 < M; m0 += tm) {
		long m1 = m0 + tm < M ? m0 + tm : M;
		float *d = din + m0 * N;

		im2col(t, col, (float *)dout, m0, m1, 0);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(m1 - m0), N, K, 1.0f,
			    col, K, wt, N, 0.0f, d, N);
		if (relu_y)
			nn_relu_backward(d, d, relu_y + m0 * N, (size_t)(m1 - m0) * N);
	}
}

void nn_conv2d_backward(const nn_geom *g, float *din, float *dw, float *db,
			const float *dout, const float *in, const float *w, int B, int acc,
			float *ws, int threads)
{
	nn_conv2d_backward_relu(g, din, dw, db, dout, in, w, NULL, B, acc, ws, threads);
}

void nn_conv2d_backward_relu(const nn_geom *g, float *din, float *dw, float *db,
			     const float *dout, const float *in, const float *w,
			     const float *relu_y, int B, int acc, float *ws, int threads)
{
	nn_geom t;
	long M = (long)B * g->oh * g->ow, tm = tile_rows(g);
	int K = g->kh * g->kw * g->c, N = g->oc;
	float *col = ws, *dcol = ws + tm * K;

	if (db && !conv_fits(g)) {
		if (!acc)
			memset(db, 0, sizeof *db * N);
		sum_rows(db, dout, M, N);
	}
	if (is_pointwise(g)) {
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, (int)M, 1.0f,
			    in, K, dout, N, acc ? 1.0f : 0.0f, dw, N);
		if (din)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, K, N, 1.0f,
				    dout, N, w, N, 0.0f, din, K);
		if (din && relu_y)
			nn_relu_backward(din, din, relu_y, (size_t)M * K);
		return;
	}
	if (din && !transposed(g, &t)) {
		/* strided: din by col2im, tile by tile beside dw's */
		memset(din, 0, sizeof *din * (size_t)B * g->h * g->w * g->c);
		for (long m0 = 0; m0 < M; m0 += tm) {
			long m1 = m0 + tm < M ? m0 + tm : M;
			const float *d = dout + m0 * N;

			im2col(g, col, (float *)in, m0, m1, 0);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, (int)(m1 - m0), 1.0f,
				    col, K, d, N, acc || m0 > 0 ? 1.0f : 0.0f, dw, N);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(m1 - m0), K, N, 1.0f,
				    d, N, w, N, 0.0f, dcol, K);
			im2col(g, dcol, din, m0, m1, 1);
		}
		if (relu_y)
			nn_relu_backward(din, din, relu_y, (size_t)B * g->h * g->w * g->c);
		return;
	}
	if (threads > 1)
		nn_blas_park();
	if (conv_fits(g)) {
		conv_wgrad(g, dw, db, dout, in, B, acc, threads);
	} else {
		for (long m0 = 0; m0 < M; m0 += tm) {
			long m1 = m0 + tm < M ? m0 + tm : M;

			im2col(g, col, (float *)in, m0, m1, 0);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, (int)(m1 - m0), 1.0f,
				    col, K, dout + m0 * N, N, acc || m0 > 0 ? 1.0f : 0.0f, dw, N);
		}
	}
	if (!din)
		return;
	/* stride 1: din is the convolution of dout by the turned kernel (t) */
	if (conv_fits(&t)) {
		turn_kernel(g, ws, w);
		conv_forward(&t, din, dout, ws, NULL, 0, relu_y, B, threads,
			     ws + (size_t)t.kh * t.kw * t.c * t.oc);
		return;
	}
	conv_din(g, &t, din, dout, w, relu_y, B, ws);
}

void nn_relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
	size_t i = 0;
#if defined(__SSE2__)
	__m128 zero = _mm_setzero_ps();

	for (; i + 4 <= n; i += 4)
		_mm_storeu_ps(dx + i, _mm_and_ps(_mm_cmpgt_ps(_mm_loadu_ps(y + i), zero), _mm_loadu_ps(dy + i)));
#endif
	for (; i < n; i++)
		dx[i] = y[i] > 0 ? dy[i] : 0;
}

/* out = a where take, else b (all lanes as masks). */
#if defined(__SSE2__)
static __m128 pick_ps(__m128 take, __m128 a, __m128 b)
{
	return _mm_or_ps(_mm_and_ps(take, a), _mm_andnot_ps(take, b));
}
#endif

/* The offsets within its image of the 2x2 window of output (oy, ox), channel 0. */
static void window_2x2(const nn_geom *g, int oy, int ox, int32_t off[4])
{
	off[0] = (int32_t)((2L * oy * g->w + 2L * ox) * g->c);
	off[1] = off[0] + g->c, off[2] = (int32_t)(off[0] + (long)g->w * g->c), off[3] = off[2] + g->c;
}

/* The 2x2 stride-2 pool over even sizes (every window whole), 4 channels at a time: the
 * same comparisons in the same order as the general loop, so the same winners. */
static void maxpool_2x2(const nn_geom *g, float *out, int32_t *argmax, const float *in, int B)
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

static int is_2x2(const nn_geom *g)
{
	return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->pt == 0 && g->pl == 0 &&
	       g->h == 2 * g->oh && g->w == 2 * g->ow;
}

static void maxpool_images(const nn_geom *g, float *out, int32_t *argmax, const float *in, int B)
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
			}
	}
}

typedef struct {
	const nn_geom *g;
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
	const nn_geom *g = j->g;
	long lo, hi, isz = (long)g->h * g->w * g->c, osz = (long)g->oh * g->ow * g->c;

	par_share(j->B, k, n, &lo, &hi);
	maxpool_images(g, j->out + lo * osz, j->argmax + lo * osz, j->in + lo * isz, (int)(hi - lo));
}

void nn_maxpool_forward(const nn_geom *g, float *out, int32_t *argmax, const float *in, int B,
			int threads)
{
	pool_job j = { .g = g, .out = out, .argmax = argmax, .in = in, .B = B };

	if (threads > 1)
		nn_blas_park();
	par_run(threads < B ? threads : B, pool_fwd_worker, &j);
}

/* The 2x2 pool's backward writes every input once, window by window (no zeroing pass):
 * the winner gets the gradient, gated by the pooled value (a ReLU before the pool let the
 * winner through iff it is > 0), the other three zero. SSE: 4 channels at a time. */
static void unpool_2x2(const nn_geom *g, float *din, const float *dout, const int32_t *argmax,
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
	const nn_geom *g = j->g;
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
			img[a[i]] += y && !(y[i] > 0) ? 0.0f : d[i];
	}
}

void nn_maxpool_backward(const nn_geom *g, float *din, const float *dout,
			 const int32_t *argmax, int B)
{
	nn_maxpool_backward_relu(g, din, dout, argmax, NULL, B, 1);
}

void nn_maxpool_backward_relu(const nn_geom *g, float *din, const float *dout,
			      const int32_t *argmax, const float *pooled, int B, int threads)
{
	pool_job j = { .g = g, .din = din, .dout = dout, .amax = argmax, .pooled = pooled, .B = B };

	if (threads > 1)
		nn_blas_park();
	par_run(threads < B ? threads : B, pool_bwd_worker, &j);
}

/* Random values per chunk of dropout: a multiple of 8 (rng_x4's round), small enough for L1. */
#define NN_DROP_CHUNK 1024

/* Each element's coin is a 32-bit value below keep * 2^32, from four generators run side
 * by side (rng_x4: one vector step gives 8 coins) seeded by four draws of r: ~10x faster
 * than a 64-bit draw per element, and the same masks for a seed on any CPU. */
void nn_dropout_forward(float *x, uint8_t *mask, size_t n, float keep, rng *r)
{
	float scale = 1.0f / keep;
	double t = keep > 0.0f ? (double)keep * 4294967296.0 : 0.0;
	uint32_t u[NN_DROP_CHUNK], thr = (uint32_t)t;
	rng_x4 q;

	if (keep >= 1.0f) {
		memset(mask, 1, n);
		return;
	}
	rng_x4_init(&q, r);
	for (size_t c = 0; c < n; c += NN_DROP_CHUNK) {
		size_t len = n - c < NN_DROP_CHUNK ? n - c : NN_DROP_CHUNK, i = 0;
		float *xc = x + c;
		uint8_t *mc = mask + c;

		rng_x4_u32(&q, u, len);
#if defined(__SSE2__)
		/* unsigned u < thr as a signed compare of both shifted by 2^31 */
		__m128i bias = _mm_set1_epi32(INT32_MIN), vt = _mm_xor_si128(_mm_set1_epi32((int)thr), bias);
		__m128i one = _mm_set1_epi8(1);
		__m128 vs = _mm_set1_ps(scale);

		for (; i + 16 <= len; i += 16) {
			__m128i k[4];

			for (int h = 0; h < 4; h++) {
				__m128i v = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(u + i + 4 * h)), bias);

				k[h] = _mm_cmplt_epi32(v, vt);
				_mm_storeu_ps(xc + i + 4 * h, _mm_and_ps(_mm_castsi128_ps(k[h]),
									 _mm_mul_ps(_mm_loadu_ps(xc + i + 4 * h), vs)));
			}
			__m128i b = _mm_packs_epi16(_mm_packs_epi32(k[0], k[1]), _mm_packs_epi32(k[2], k[3]));

			_mm_storeu_si128((__m128i *)(mc + i), _mm_and_si128(b, one));
		}
#endif
		for (; i < len; i++) {
			mc[i] = u[i] < thr;
			xc[i] = mc[i] ? xc[i] * scale : 0.0f;
		}
	}
}

void nn_dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n, float keep)
{
	float scale = keep >= 1.0f ? 1.0f : 1.0f / keep;
	size_t i = 0;
#if defined(__SSE2__)
	/* 16 mask bytes widened to four 4-lane masks (nonzero -> all ones), as the loop's
	 * select: the same bits */
	__m128i zero = _mm_setzero_si128();
	__m128 vs = _mm_set1_ps(scale);

	for (; i + 16 <= n; i += 16) {
		__m128i k = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(mask + i)), zero);
		__m128i lo = _mm_unpacklo_epi8(k, k), hi = _mm_unpackhi_epi8(k, k);
		__m128i kw[4] = { _mm_unpacklo_epi16(lo, lo), _mm_unpackhi_epi16(lo, lo),
				  _mm_unpacklo_epi16(hi, hi), _mm_unpackhi_epi16(hi, hi) };

		for (int h = 0; h < 4; h++)
			_mm_storeu_ps(dx + i + 4 * h, _mm_andnot_ps(_mm_castsi128_ps(kw[h]),
								   _mm_mul_ps(_mm_loadu_ps(dy + i + 4 * h), vs)));
	}
#endif
	for (; i < n; i++)
		dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}

/* The streaming dense backward: worth it when w is large and the batch small, where
 * sgemm's two calls (dw, din) each stream w or dw through its packing. */
#define NN_STREAM_MAX_B 32
#define NN_STREAM_MIN_W (1 << 20)
#define NN_FWD_MAX_B 16

int nn_dense_streams(int B, int nin, int nout)
{
	return B <= NN_STREAM_MAX_B && (int64_t)nin * nout >= NN_STREAM_MIN_W;
}

typedef struct {
	float *din, *dw, *out;
	const float *in, *w, *dout;
	int B, nin, nout, acc;
	long lo, hi;   /* rows of w */
	nn_row_fn row; /* not NULL: dw's rows go to it, not to dw */
	void *ctx;
} dense_job;

/* y[0..n) += a * x[0..n) */
static void axpy(float *restrict y, float a, const float *restrict x, int n)
{
	int j = 0;
#if defined(__SSE2__)
	__m128 va = _mm_set1_ps(a);

	for (; j + 4 <= n; j += 4)
		_mm_storeu_ps(y + j, _mm_add_ps(_mm_loadu_ps(y + j), _mm_mul_ps(va, _mm_loadu_ps(x + j))));
#endif
	for (; j < n; j++)
		y[j] += a * x[j];
}

static float dot(const float *restrict x, const float *restrict y, int n)
{
	float s = 0;
	int j = 0;
#if defined(__SSE2__)
	__m128 v = _mm_setzero_ps();
	float t[4];

	for (; j + 4 <= n; j += 4)
		v = _mm_add_ps(v, _mm_mul_ps(_mm_loadu_ps(x + j), _mm_loadu_ps(y + j)));
	_mm_storeu_ps(t, v);
	s = (t[0] + t[1]) + (t[2] + t[3]);
#endif
	for (; j < n; j++)
		s += x[j] * y[j];
	return s;
}

#ifdef NN_AVX2
static int have_avx2(void)
{
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

NN_AVX2 static float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
	return _mm_cvtss_f32(s);
}

/* Batch rows per group in the AVX2 backward: a din accumulator each, plus w's, dout's and
 * dw's vectors, is 15 of the 16 ymm registers (the broadcast inputs are read from memory). */
#define NN_BWD_GROUP 12

/* One row i of w for batch rows b0..b0+G of the backward, AVX2, G a constant once inlined
 * (so the loops over the group unroll and the accumulators stay in registers): for each 8
 * columns one load of w and of each dout row feeds both dw (summed over the group in batch
 * order, onto dw's earlier groups) and din (8 lanes per batch row, summed at the row's end).
 * Measured: skipping dw's zero inputs (a second pass over the row in L1) is slower, as are
 * streaming stores of dw: at fc1's size the kernel is bound by memory, not FMAs. */
NN_AVX2 static inline __attribute__((always_inline)) void
bwd_group(const dense_job *j, long i, int b0, const int G, int fresh, float *dwr)
{
	long nin = j->nin;
	int n = j->nout, nv = n / 8 * 8;
	const float *wr = j->w + i * n, *d[NN_BWD_GROUP];
	float xs[NN_BWD_GROUP], tail[NN_BWD_GROUP];
	__m256 acc[NN_BWD_GROUP], xv[NN_BWD_GROUP];

#pragma GCC unroll 12
	for (int b = 0; b < G; b++) {
		d[b] = j->dout + (long)(b0 + b) * n;
		xs[b] = j->in[(long)(b0 + b) * nin + i];
		xv[b] = _mm256_set1_ps(xs[b]);
		acc[b] = _mm256_setzero_ps();
		tail[b] = 0.0f;
	}
	for (int s = 0; s < nv; s += 8) {
		__m256 wv = _mm256_loadu_ps(wr + s);
		__m256 g = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(dwr + s);

#pragma GCC unroll 12
		for (int b = 0; b < G; b++) {
			__m256 dv = _mm256_loadu_ps(d[b] + s);

			g = _mm256_fmadd_ps(xv[b], dv, g);
			acc[b] = _mm256_fmadd_ps(wv, dv, acc[b]);
		}
		_mm256_storeu_ps(dwr + s, g);
	}
	for (int s = nv; s < n; s++) {
		float g = fresh ? 0.0f : dwr[s];

#pragma GCC unroll 12
		for (int b = 0; b < G; b++) {
			g += xs[b] * d[b][s];
			tail[b] += wr[s] * d[b][s];
		}
		dwr[s] = g;
	}
	if (!j->din)
		return;
#pragma GCC unroll 12
	for (int b = 0; b < G; b++)
		j->din[(long)(b0 + b) * nin + i] = hsum8(acc[b]) + tail[b];
}

/* Backward, AVX2: each row of w once, the batch in as few groups of at most NN_BWD_GROUP
 * rows as cover it, of near equal sizes (10: one group; 16: 8 + 8), so no FMA is spent on
 * padding rows. dw sums the batch in order whatever the grouping; each din is its own sum. */
NN_AVX2 static void bwd_avx2(const dense_job *j, float *row)
{
	int ng = (j->B + NN_BWD_GROUP - 1) / NN_BWD_GROUP;

	for (long i = j->lo; i < j->hi; i++) {
		float *dwr = j->row ? row : j->dw + i * j->nout;

		for (int k = 0, b0 = 0; k < ng; k++) {
			int G = j->B / ng + (k < j->B % ng), fresh = k == 0 && (!j->acc || j->row);

			switch (G) {
#define NN_BWD_CASE(g) case g: bwd_group(j, i, b0, g, fresh, dwr); break;
			NN_BWD_CASE(1) NN_BWD_CASE(2) NN_BWD_CASE(3) NN_BWD_CASE(4)
			NN_BWD_CASE(5) NN_BWD_CASE(6) NN_BWD_CASE(7) NN_BWD_CASE(8)
			NN_BWD_CASE(9) NN_BWD_CASE(10) NN_BWD_CASE(11) NN_BWD_CASE(12)
#undef NN_BWD_CASE
			}
			b0 += G;
		}
		if (j->row)
			j->row(j->ctx, i, dwr);
	}
}
#endif

#ifdef NN_AVX2
/* y[0..n) += a * x[0..n), AVX2 with FMA. */
NN_AVX2 static void axpy_avx2(float *restrict y, float a, const float *restrict x, int n)
{
	__m256 va = _mm256_set1_ps(a);
	int j = 0;

	for (; j + 8 <= n; j += 8)
		_mm256_storeu_ps(y + j, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + j), _mm256_loadu_ps(y + j)));
	for (; j < n; j++)
		y[j] = fmaf(a, x[j], y[j]);
}
#endif

#ifdef NN_AVX2
#define NN_FWD_IB 128   /* rows of w per block: block x thread's columns stays in L2 */

/* The forward's columns c0..c0+64*nc of its thread, AVX2: per block of w's rows, each
 * batch row's nonzero inputs are listed once; then for every 64 columns and batch row, 8
 * accumulators sum over the listed rows, w's block being read from cache. Every output
 * still sums its terms in row order, as the generic loop does. */
NN_AVX2 static void fwd_avx2(const dense_job *j, long c0, long nc)
{
	long n = j->nout;
	int idx[NN_STREAM_MAX_B][NN_FWD_IB], cnt[NN_STREAM_MAX_B];
	float val[NN_STREAM_MAX_B][NN_FWD_IB];

	for (long i0 = 0; i0 < j->nin; i0 += NN_FWD_IB) {
		long i1 = i0 + NN_FWD_IB < j->nin ? i0 + NN_FWD_IB : j->nin;

		for (int b = 0; b < j->B; b++) {
			const float *x = j->in + (long)b * j->nin;

			cnt[b] = 0;
			for (long i = i0; i < i1; i++)
				if (x[i] != 0.0f) {
					idx[b][cnt[b]] = (int)(i - i0);
					val[b][cnt[b]++] = x[i];
				}
		}
		for (long c = c0; c < c0 + 64 * nc; c += 64) {
			const float *wb = j->w + i0 * n + c;

			for (int b = 0; b < j->B; b++) {
				float *o = j->out + b * n + c;
				__m256 a0 = _mm256_loadu_ps(o), a1 = _mm256_loadu_ps(o + 8);
				__m256 a2 = _mm256_loadu_ps(o + 16), a3 = _mm256_loadu_ps(o + 24);
				__m256 a4 = _mm256_loadu_ps(o + 32), a5 = _mm256_loadu_ps(o + 40);
				__m256 a6 = _mm256_loadu_ps(o + 48), a7 = _mm256_loadu_ps(o + 56);

				for (int k = 0; k < cnt[b]; k++) {
					const float *wr = wb + idx[b][k] * n;
					__m256 x = _mm256_set1_ps(val[b][k]);

					a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr), a0);
					a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 8), a1);
					a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 16), a2);
					a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 24), a3);
					a4 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 32), a4);
					a5 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 40), a5);
					a6 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 48), a6);
					a7 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 56), a7);
				}
				_mm256_storeu_ps(o, a0), _mm256_storeu_ps(o + 8, a1);
				_mm256_storeu_ps(o + 16, a2), _mm256_storeu_ps(o + 24, a3);
				_mm256_storeu_ps(o + 32, a4), _mm256_storeu_ps(o + 40, a5);
				_mm256_storeu_ps(o + 48, a6), _mm256_storeu_ps(o + 56, a7);
			}
		}
	}
}
#endif

/* Forward over columns lo..hi of w: each row of w is read once for the whole batch and
 * feeds only the batch rows whose input is not zero, which in training after a dropout
 * that keeps 20% is most of them (fc1: w is 400 MB, the batch 10 rows). Columns, not
 * rows, are split over threads, so every output sums the same terms in the same order
 * whatever the thread count. */
static void *dense_fwd_job(void *arg)
{
	const dense_job *j = arg;
	long n = j->nout, len = j->hi - j->lo;
	int nz[NN_STREAM_MAX_B];
#ifdef NN_AVX2
	int avx = have_avx2();
#endif

	long lo = j->lo;

	for (int b = 0; b < j->B; b++)
		memset(j->out + b * n + j->lo, 0, sizeof *j->out * len);
#ifdef NN_AVX2
	if (avx && len >= 64) {
		fwd_avx2(j, lo, len / 64);
		lo += len / 64 * 64;
		len = j->hi - lo;
	}
#endif
	for (long i = 0; len > 0 && i < j->nin; i++) {
		const float *wr = j->w + i * n + lo;
		int k = 0;

		for (int b = 0; b < j->B; b++)
			if (j->in[(long)b * j->nin + i] != 0.0f)
				nz[k++] = b;
		for (int q = 0; q < k; q++) {
			float a = j->in[(long)nz[q] * j->nin + i], *o = j->out + nz[q] * n + lo;
#ifdef NN_AVX2
			if (avx) {
				axpy_avx2(o, a, wr, (int)len);
				continue;
			}
#endif
			axpy(o, a, wr, (int)len);
		}
	}
	return NULL;
}

/* Rows lo..hi of w: dw's row and din's column from one read of w's row. */
static void *dense_bwd_job(void *arg)
{
	const dense_job *j = arg;
	int n = j->nout;
	float row[NN_ROW_MAX];   /* dw's row, when it goes to j->row */

#ifdef NN_AVX2
	if (have_avx2()) {
		bwd_avx2(j, row);
		return NULL;
	}
#endif
	for (long i = j->lo; i < j->hi; i++) {
		const float *wr = j->w + i * n;
		float *dwr = j->row ? row : j->dw + i * n;

		if (!j->acc || j->row)
			memset(dwr, 0, sizeof *dwr * n);
		for (int b = 0; b < j->B; b++) {
			float a = j->in[(long)b * j->nin + i];

			if (a != 0.0f)
				axpy(dwr, a, j->dout + (long)b * n, n);
			if (j->din)
				j->din[(long)b * j->nin + i] = dot(wr, j->dout + (long)b * n, n);
		}
		if (j->row)
			j->row(j->ctx, i, dwr);
	}
	return NULL;
}

/* Runs fn over [0, n) split into threads contiguous ranges whose bounds are multiples of
 * align; a thread that cannot start has its range run here. */
void nn_blas_park(void)
{
	/* After a GEMM, OpenBLAS's workers spin for about 2^28 cycles (~0.1 s) awaiting the
	 * next one, and OPENBLAS_THREAD_TIMEOUT is read only when the library loads. On two
	 * cores a spinner halves whatever thread of ours lands on its core (fc1 forward at
	 * 128x128, threads 2: 18 -> 10 ms, Adam: 58 -> 39 ms). Stopping the workers costs a
	 * thread start at the next threaded GEMM, tens of microseconds. */
	if (blas_thread_shutdown_)
		blas_thread_shutdown_();
}

typedef struct {
	void *(*fn)(void *);
	const dense_job *proto;
	long n, align;
} split;

/* Worker k of n runs fn over its share of [0, s->n), bounds multiples of s->align. */
static void split_worker(void *ctx, int k, int n)
{
	const split *s = ctx;
	dense_job j = *s->proto;
	long per = (s->n + n - 1) / n;

	per = (per + s->align - 1) / s->align * s->align;
	j.lo = per * k < s->n ? per * k : s->n;
	j.hi = per * (k + 1) < s->n ? per * (k + 1) : s->n;
	if (j.lo < j.hi)
		s->fn(&j);
}

static void run_split(void *(*fn)(void *), const dense_job *proto, long n, long align, int threads)
{
	split s = { fn, proto, n, align };

	if (threads > 1)
		nn_blas_park();
	par_run(threads, split_worker, &s);
}

void nn_dense_forward(float *out, const float *in, const float *w, const float *b,
		      int B, int nin, int nout, int relu, int threads)
{
	/* against OpenBLAS's M = B sgemm this wins below 16 rows (at 10: 115 ms against
	 * 165 for fc1, 90 with dropout's zeros) and loses above (at 32: 290 against 140) */
	if (B <= NN_FWD_MAX_B && nn_dense_streams(B, nin, nout)) {
		dense_job j = { .out = out, .in = in, .w = w, .B = B, .nin = nin, .nout = nout };

		/* columns in multiples of 16 floats: threads never share a cache line of out */
		run_split(dense_fwd_job, &j, nout, 16, threads);
		bias_relu(out, b, B, nout, relu);
		return;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, nout, nin, 1.0f,
		    in, nin, w, nout, 0.0f, out, nout);
	bias_relu(out, b, B, nout, relu);
}

void nn_dense_backward(float *din, float *dw, float *db, const float *dout,
		       const float *in, const float *w, int B, int nin, int nout, int acc,
		       int threads)
{
	if (db) {
		if (!acc)
			memset(db, 0, sizeof *db * nout);
		sum_rows(db, dout, B, nout);
	}
	if (nn_dense_streams(B, nin, nout)) {
		dense_job j = { .din = din, .dw = dw, .in = in, .w = w, .dout = dout, .B = B,
				.nin = nin, .nout = nout, .acc = acc };

		run_split(dense_bwd_job, &j, nin, 1, threads);
		return;
	}
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nin, nout, B, 1.0f,
		    in, nin, dout, nout, acc ? 1.0f : 0.0f, dw, nout);
	if (din)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, nin, nout, 1.0f,
			    dout, nout, w, nout, 0.0f, din, nin);
}

int nn_dense_backward_rows(float *din, float *db, const float *dout, const float *in,
			   const float *w, int B, int nin, int nout, nn_row_fn row, void *ctx,
			   int threads)
{
	dense_job j = { .din = din, .in = in, .w = w, .dout = dout, .B = B, .nin = nin,
			.nout = nout, .row = row, .ctx = ctx };

	if (!nn_dense_streams(B, nin, nout) || nout > NN_ROW_MAX)
		return -1;
	if (db) {
		memset(db, 0, sizeof *db * nout);
		sum_rows(db, dout, B, nout);
	}
	run_split(dense_bwd_job, &j, nin, 1, threads);
	return 0;
}

double nn_softmax_xent(float *probs, float *dlogits, int *correct, const float *logits,
		       const int *labels, int B, int K)
{
	double loss = 0;
	int ok = 0;

	for (int n = 0; n < B; n++) {
		const float *z = logits + (long)n * K;
		double mx = z[0], sum = 0;
		int best = 0, y = labels[n];

		for (int k = 1; k < K; k++)
			if (z[k] > mx)
				mx = z[k], best = k;
		for (int k = 0; k < K; k++)
			sum += exp(z[k] - mx);
		loss += log(sum) - (z[y] - mx);
		ok += best == y;
		for (int k = 0; k < K; k++) {
			double p = exp(z[k] - mx) / sum;

			if (probs)
				probs[(long)n * K + k] = (float)p;
			if (dlogits)
				dlogits[(long)n * K + k] = (float)((p - (k == y)) / B);
		}
	}
	if (correct)
		*correct = ok;
	return loss / B;
}

void nn_softmax(float *probs, const float *logits, int B, int K)
{
	for (int n = 0; n < B; n++) {
		const float *z = logits + (long)n * K;
		double mx = z[0], sum = 0;

		for (int k = 1; k < K; k++)
			if (z[k] > mx)
				mx = z[k];
		for (int k = 0; k < K; k++)
			sum += exp(z[k] - mx);
		for (int k = 0; k < K; k++)
			probs[(long)n * K + k] = (float)(exp(z[k] - mx) / sum);
	}
}
