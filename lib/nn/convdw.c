/* convdw: depthwise convolution as direct loops: a layer of k*k*cout weights does too
 * little work per output for im2col + sgemm to pay (a GEMM with K = kh*kw per group). The
 * channel loop is innermost and contiguous in NHWC, so it vectorises; window positions
 * outside the image are skipped, never read. */
#include "nn/convdw.h"

#include <string.h>

#include "nn/actmask.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#define DW_AVX2 __attribute__((target("avx2")))
#define DW_AVX512 __attribute__((target("avx512f")))
#endif

#include "nn/vec.h"
#include "util/par.h"

/* Output channels per part of dw a worker owns in the weight gradient. */
#define DW_CHANNELS 64

/* o[i] += a[i] * b[i], 4 channels at a time where SSE2 is there: a multiply then an add,
 * rounded as the scalar loop rounds them (no FMA), so the same bits either way. */
static inline void madd(float *o, const float *a, const float *b, int n)
{
	int i = 0;

#if defined(__SSE2__)
	for (; i + 4 <= n; i += 4)
		_mm_storeu_ps(o + i, _mm_add_ps(_mm_loadu_ps(o + i),
						_mm_mul_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i))));
#endif
	for (; i < n; i++)
		o[i] += a[i] * b[i];
}

/* The window positions [*k0, *k1) of output o that fall inside an input of n. */
static void inside(int o, int s, int before, int k, int n, int *k0, int *k1)
{
	int i0 = o * s - before;

	*k0 = i0 < 0 ? -i0 : 0;
	*k1 = n - i0 < k ? n - i0 : k;
}

/* The in-bounds part of output pixel (oy, ox)'s window: its first position's input pixel
 * *x0 and weights *w0, *ny rows by *nx columns of it (0 by 0 when none is inside: the bias
 * alone). */
static void window_start(const geom *g, const float *im, const float *w, int oy, int ox,
			 const float **x0, const float **w0, int *ny, int *nx)
{
	int ky0, ky1, kx0, kx1;

	inside(oy, g->sh, g->pt, g->kh, g->h, &ky0, &ky1);
	inside(ox, g->sw, g->pl, g->kw, g->w, &kx0, &kx1);
	*x0 = im, *w0 = w;
	if (ky1 <= ky0 || kx1 <= kx0) {
		*ny = *nx = 0;
		return;
	}
	*x0 += ((long)(oy * g->sh - g->pt + ky0) * g->w + ox * g->sw - g->pl + kx0) * g->c;
	*w0 += ((long)ky0 * g->kw + kx0) * g->c;
	*ny = ky1 - ky0, *nx = kx1 - kx0;
}

/* The scalar activation, as the vector loops' max then min round it. */
static inline float act1(float a, int act)
{
	if (act && !(a > 0))
		return 0.0f;
	return act == VEC_RELU6 && a > 6.0f ? 6.0f : a;
}

/* One output pixel of a multiplier-1 layer, from channel ch0 on: channels 8 at a time held
 * in registers while the window's positions are added in the scalar loop's order (bias,
 * then row by row). */
static void fwd_pixel(const geom *g, float *o, const float *im, const float *w, const float *b,
		      int oy, int ox, int act, int ch0)
{
	int c = g->c, ny, nx, ch = ch0;
	const float *x0, *w0;

	window_start(g, im, w, oy, ox, &x0, &w0, &ny, &nx);
#if defined(__SSE2__)
	__m128 zero = _mm_setzero_ps(), six = _mm_set1_ps(6.0f);

	for (; ch + 8 <= c; ch += 8) {
		__m128 a0 = b ? _mm_loadu_ps(b + ch) : _mm_setzero_ps();
		__m128 a1 = b ? _mm_loadu_ps(b + ch + 4) : _mm_setzero_ps();

		for (int ky = 0; ky < ny; ky++)
			for (int kx = 0; kx < nx; kx++) {
				const float *x = x0 + ((long)ky * g->w + kx) * c + ch;
				const float *wk = w0 + ((long)ky * g->kw + kx) * c + ch;

				a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_loadu_ps(x), _mm_loadu_ps(wk)));
				a1 = _mm_add_ps(a1, _mm_mul_ps(_mm_loadu_ps(x + 4), _mm_loadu_ps(wk + 4)));
			}
		if (act) {
			a0 = _mm_max_ps(a0, zero);
			a1 = _mm_max_ps(a1, zero);
		}
		if (act == VEC_RELU6) {
			a0 = _mm_min_ps(a0, six);
			a1 = _mm_min_ps(a1, six);
		}
		_mm_storeu_ps(o + ch, a0);
		_mm_storeu_ps(o + ch + 4, a1);
	}
#endif
	for (; ch < c; ch++) {
		float a = b ? b[ch] : 0.0f;

		for (int ky = 0; ky < ny; ky++)
			for (int kx = 0; kx < nx; kx++)
				a += x0[((long)ky * g->w + kx) * c + ch] * w0[((long)ky * g->kw + kx) * c + ch];
		o[ch] = act1(a, act);
	}
}

#if defined(__x86_64__)
/* np (1 or 4) adjacent output pixels (their windows ps floats apart in the input, their
 * outputs c apart), 16 channels at a time in AVX2's registers: fwd_pixel's multiply then
 * add per lane in the same order (no FMA), so the same bits as the SSE and scalar loops,
 * which then take the channels left over (from ch0 on; returned: the first of them). Four
 * pixels at once keep 8 sums in flight where one pixel's 2 wait on the adds' latency. */
DW_AVX2 static inline __attribute__((always_inline)) int
fwd_px256(int np, const geom *g, float *o, const float *x0, long ps, const float *w0,
	  const float *b, int ny, int nx, int act, int ch0)
{
	int c = g->c, ch = ch0;
	__m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);

	for (; ch + 16 <= c; ch += 16) {
		__m256 a[4][2];

#pragma GCC unroll 4
		for (int p = 0; p < np; p++) {
			a[p][0] = b ? _mm256_loadu_ps(b + ch) : zero;
			a[p][1] = b ? _mm256_loadu_ps(b + ch + 8) : zero;
		}
		for (int ky = 0; ky < ny; ky++)
			for (int kx = 0; kx < nx; kx++) {
				const float *x = x0 + ((long)ky * g->w + kx) * c + ch;
				const float *wk = w0 + ((long)ky * g->kw + kx) * c + ch;
				__m256 w0v = _mm256_loadu_ps(wk), w1v = _mm256_loadu_ps(wk + 8);

#pragma GCC unroll 4
				for (int p = 0; p < np; p++) {
					a[p][0] = _mm256_add_ps(a[p][0], _mm256_mul_ps(_mm256_loadu_ps(x + p * ps), w0v));
					a[p][1] = _mm256_add_ps(a[p][1], _mm256_mul_ps(_mm256_loadu_ps(x + p * ps + 8), w1v));
				}
			}
#pragma GCC unroll 4
		for (int p = 0; p < np; p++)
#pragma GCC unroll 2
			for (int v = 0; v < 2; v++) {
				if (act)
					a[p][v] = _mm256_max_ps(a[p][v], zero);
				if (act == VEC_RELU6)
					a[p][v] = _mm256_min_ps(a[p][v], six);
				_mm256_storeu_ps(o + (long)p * c + ch + 8 * v, a[p][v]);
			}
	}
	return ch;
}

DW_AVX2 static int fwd_pixel_avx2(const geom *g, float *o, const float *x0, const float *w0,
				  const float *b, int ny, int nx, int act, int ch0)
{
	return fwd_px256(1, g, o, x0, 0, w0, b, ny, nx, act, ch0);
}

/* fwd_px256's four pixels where the stride is 1 and the windows 3 wide (MobileNetV2's):
 * each row's six input columns are loaded once and feed every pixel whose window holds
 * them, pixel p taking column q as its kx = q - p, so each sum still adds in kx order (the
 * same bits), from 12 loads of x a row to 6. 8 channels at a time: 16 would need all 16
 * registers and spill. convdw_forward alone, 1 thread, a map in L2, Zen 4 held to AVX2, ms:
 * 14x14x384 0.030 -> 0.025, 56x56x144 0.191 -> 0.166, 112x112x32 0.184 -> 0.153. */
DW_AVX2 static int fwd_quad3_256(const geom *g, float *o, const float *x0, const float *w0,
				 const float *b, int ny, int act, int ch0)
{
	int c = g->c, ch = ch0;

	for (; ch + 8 <= c; ch += 8) {
		__m256 a[4];

#pragma GCC unroll 4
		for (int p = 0; p < 4; p++)
			a[p] = b ? _mm256_loadu_ps(b + ch) : _mm256_setzero_ps();
		for (int ky = 0; ky < ny; ky++) {
			const float *x = x0 + (long)ky * g->w * c + ch;
			const float *wk = w0 + (long)ky * g->kw * c + ch;
			__m256 wv[3];

#pragma GCC unroll 3
			for (int kx = 0; kx < 3; kx++)
				wv[kx] = _mm256_loadu_ps(wk + kx * c);
#pragma GCC unroll 6
			for (int q = 0; q < 6; q++) {
				__m256 xv = _mm256_loadu_ps(x + (long)q * c);

#pragma GCC unroll 4
				for (int p = q < 3 ? 0 : q - 2; p < 4 && p <= q; p++)
					a[p] = _mm256_add_ps(a[p], _mm256_mul_ps(xv, wv[q - p]));
			}
		}
#pragma GCC unroll 4
		for (int p = 0; p < 4; p++) {
			if (act)
				a[p] = _mm256_max_ps(a[p], _mm256_setzero_ps());
			if (act == VEC_RELU6)
				a[p] = _mm256_min_ps(a[p], _mm256_set1_ps(6.0f));
			_mm256_storeu_ps(o + (long)p * c + ch, a[p]);
		}
	}
	return ch;
}

DW_AVX2 static int fwd_quad_avx2(const geom *g, float *o, const float *x0, long ps,
				 const float *w0, const float *b, int ny, int nx, int act, int ch0)
{
	if (nx == 3 && g->kw == 3 && ps == g->c)
		return fwd_quad3_256(g, o, x0, w0, b, ny, act, ch0);
	return fwd_px256(4, g, o, x0, ps, w0, b, ny, nx, act, ch0);
}

/* fwd_px256 32 channels at a time in AVX-512's registers (the same bits again); the
 * channels left over go to the AVX2 loop. */
DW_AVX512 static inline __attribute__((always_inline)) int
fwd_px512(int np, const geom *g, float *o, const float *x0, long ps, const float *w0,
	  const float *b, int ny, int nx, int act)
{
	int c = g->c, ch = 0;
	__m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);

	for (; ch + 32 <= c; ch += 32) {
		__m512 a[4][2];

#pragma GCC unroll 4
		for (int p = 0; p < np; p++) {
			a[p][0] = b ? _mm512_loadu_ps(b + ch) : zero;
			a[p][1] = b ? _mm512_loadu_ps(b + ch + 16) : zero;
		}
		for (int ky = 0; ky < ny; ky++)
			for (int kx = 0; kx < nx; kx++) {
				const float *x = x0 + ((long)ky * g->w + kx) * c + ch;
				const float *wk = w0 + ((long)ky * g->kw + kx) * c + ch;
				__m512 w0v = _mm512_loadu_ps(wk), w1v = _mm512_loadu_ps(wk + 16);

#pragma GCC unroll 4
				for (int p = 0; p < np; p++) {
					a[p][0] = _mm512_add_ps(a[p][0], _mm512_mul_ps(_mm512_loadu_ps(x + p * ps), w0v));
					a[p][1] = _mm512_add_ps(a[p][1], _mm512_mul_ps(_mm512_loadu_ps(x + p * ps + 16), w1v));
				}
			}
#pragma GCC unroll 4
		for (int p = 0; p < np; p++)
#pragma GCC unroll 2
			for (int v = 0; v < 2; v++) {
				if (act)
					a[p][v] = _mm512_max_ps(a[p][v], zero);
				if (act == VEC_RELU6)
					a[p][v] = _mm512_min_ps(a[p][v], six);
				_mm512_storeu_ps(o + (long)p * c + ch + 16 * v, a[p][v]);
			}
	}
	return ch;
}

DW_AVX512 static int fwd_pixel_avx512(const geom *g, float *o, const float *x0, const float *w0,
				      const float *b, int ny, int nx, int act)
{
	return fwd_px512(1, g, o, x0, 0, w0, b, ny, nx, act);
}

/* (3-wide windows of stride 1 or 2 take fwd_row3_512 instead.) */
DW_AVX512 static int fwd_quad_avx512(const geom *g, float *o, const float *x0, long ps,
				     const float *w0, const float *b, int ny, int nx, int act)
{
	return fwd_px512(4, g, o, x0, ps, w0, b, ny, nx, act);
}

/* Four adjacent outputs of a 3-wide multiplier-1 layer of stride sw (1 or 2) along the row,
 * their windows whole along it (ny rows of them from x0 and w0), nv vectors of 16 channels
 * from ch (the last one's lanes in m): each input column loaded once for the outputs whose
 * windows hold it, output p taking column q as its kx = q - p * sw, so each sum adds bias,
 * then row by row, column by column, as fwd_pixel does: the same bits (8 sums in flight
 * with 32 channels, where a full-width AVX-512 needs more than 4 to hide the adds'
 * latency). */
DW_AVX512 static inline __attribute__((always_inline)) void
row3_block512(int nv, int sw, const geom *g, float *o, const float *x0, const float *w0,
	      const float *b, int ny, int act, int ch, __mmask16 m)
{
	long c = g->c, row = (long)g->w * g->c;
	__m512 a[4][2], zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
	__mmask16 mv[2] = { nv == 1 ? m : 0xffff, m };

#pragma GCC unroll 4
	for (int p = 0; p < 4; p++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			a[p][v] = b ? _mm512_maskz_loadu_ps(mv[v], b + ch + 16 * v) : zero;
	for (int ky = 0; ky < ny; ky++) {
		const float *x = x0 + ky * row + ch, *wk = w0 + ky * g->kw * c + ch;
		__m512 wv[3][2];

#pragma GCC unroll 3
		for (int kx = 0; kx < 3; kx++)
#pragma GCC unroll 2
			for (int v = 0; v < nv; v++)
				wv[kx][v] = _mm512_maskz_loadu_ps(mv[v], wk + kx * c + 16 * v);
#pragma GCC unroll 9
		for (int q = 0; q < 3 * sw + 3; q++) {
			__m512 xv[2];

#pragma GCC unroll 2
			for (int v = 0; v < nv; v++)
				xv[v] = _mm512_maskz_loadu_ps(mv[v], x + q * c + 16 * v);
#pragma GCC unroll 4
			for (int p = 0; p < 4; p++)
				if (q - p * sw >= 0 && q - p * sw < 3)
#pragma GCC unroll 2
					for (int v = 0; v < nv; v++)
						a[p][v] = _mm512_add_ps(a[p][v],
							_mm512_mul_ps(xv[v], wv[q - p * sw][v]));
		}
	}
#pragma GCC unroll 4
	for (int p = 0; p < 4; p++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++) {
			if (act)
				a[p][v] = _mm512_max_ps(a[p][v], zero);
			if (act == VEC_RELU6)
				a[p][v] = _mm512_min_ps(a[p][v], six);
			_mm512_mask_storeu_ps(o + p * c + ch + 16 * v, mv[v], a[p][v]);
		}
}

/* A row's nq fours of outputs from x0 and w0 (see row3_block512), all channels of four
 * before the next four (the input rows they read stay in L1): one call a row where
 * fwd_quad_isa made one and found the window again for every four. MobileNetV2's
 * depthwise layers, 1 thread, batch 1, Intel Xeon (AVX-512), GFLOP/s: 112x112x32 32.0-32.3
 * -> 41.2, 56x56x144 34.4-34.6 -> 38.8, 14x14x576 34.6-35.0 -> 36.8-36.9, the rest the same
 * within 1-3%. */
DW_AVX512 static void fwd_row3_512(int sw, const geom *g, float *o, const float *x0,
				   const float *w0, const float *b, int ny, int nq, int act)
{
	int c = g->c;

	for (int qd = 0; qd < nq; qd++, x0 += 4L * sw * c, o += 4L * c) {
		int ch = 0;

		for (; ch + 32 <= c; ch += 32)
			if (sw == 1)
				row3_block512(2, 1, g, o, x0, w0, b, ny, act, ch, 0xffff);
			else
				row3_block512(2, 2, g, o, x0, w0, b, ny, act, ch, 0xffff);
		for (; ch < c; ch += 16) {
			__mmask16 m = c - ch >= 16 ? 0xffff : (__mmask16)((1u << (c - ch)) - 1);

			if (sw == 1)
				row3_block512(1, 1, g, o, x0, w0, b, ny, act, ch, m);
			else
				row3_block512(1, 2, g, o, x0, w0, b, ny, act, ch, m);
		}
	}
}
#endif

/* Four adjacent output pixels (oy, ox..ox+3) whose windows are whole along the row, on the
 * widest path isa allows (AVX2 or AVX-512); the channels the vectors leave, pixel by pixel. */
static void fwd_quad_isa(const geom *g, float *o, const float *im, const float *w,
			 const float *b, int oy, int ox, int act, isa_kind isa)
{
#if defined(__x86_64__)
	const float *x0, *w0;
	long ps = (long)g->sw * g->c;
	int ny, nx, ch = 0;

	window_start(g, im, w, oy, ox, &x0, &w0, &ny, &nx);
	if (isa >= ISA_AVX512)
		ch = fwd_quad_avx512(g, o, x0, ps, w0, b, ny, nx, act);
	ch = fwd_quad_avx2(g, o, x0, ps, w0, b, ny, nx, act, ch);
	for (int p = 0; ch < g->c && p < 4; p++)
		fwd_pixel(g, o + (long)p * g->c, im, w, b, oy, ox + p, act, ch);
#else
	(void)g, (void)o, (void)im, (void)w, (void)b, (void)oy, (void)ox, (void)act, (void)isa;
#endif
}

/* One output pixel of a multiplier-1 layer on the widest path isa allows; each narrower
 * one takes the channels the wider left. */
static void fwd_pixel_isa(const geom *g, float *o, const float *im, const float *w,
			  const float *b, int oy, int ox, int act, isa_kind isa)
{
#if defined(__x86_64__)
	const float *x0, *w0;
	int ny, nx, ch = 0;

	if (isa >= ISA_AVX2) {
		window_start(g, im, w, oy, ox, &x0, &w0, &ny, &nx);
		if (isa >= ISA_AVX512)
			ch = fwd_pixel_avx512(g, o, x0, w0, b, ny, nx, act);
		ch = fwd_pixel_avx2(g, o, x0, w0, b, ny, nx, act, ch);
		if (ch < g->c)
			fwd_pixel(g, o, im, w, b, oy, ox, act, ch);
		return;
	}
#endif
	(void)isa;
	fwd_pixel(g, o, im, w, b, oy, ox, act, 0);
}

/* Whether fwd_row3 takes g's rows: AVX-512, 3 wide, multiplier 1, stride 1 or 2 along them
 * (MobileNetV2's). */
static int row3_fits(const geom *g, int mult, isa_kind isa)
{
#if defined(__x86_64__)
	return isa >= ISA_AVX512 && mult == 1 && g->kw == 3 && (g->sw == 1 || g->sw == 2);
#else
	(void)g, (void)mult, (void)isa;
	return 0;
#endif
}

/* Output row oy's nq fours of outputs from ox (their windows whole along the row) on
 * fwd_row3_512, into o. */
static void fwd_row3(const geom *g, float *o, const float *im, const float *w, const float *b,
		     int oy, int ox, int nq, int act)
{
#if defined(__x86_64__)
	const float *x0, *w0;
	int ny, nx;

	window_start(g, im, w, oy, ox, &x0, &w0, &ny, &nx);
	fwd_row3_512(g->sw, g, o, x0, w0, b, ny, nq, act);
#else
	(void)g, (void)o, (void)im, (void)w, (void)b, (void)oy, (void)ox, (void)nq, (void)act;
#endif
}

int convdw_fits(const geom *g)
{
	return g->groups > 1 && g->groups == g->c;
}

typedef struct {
	const geom *g;
	float *out, *din, *dw, *db;
	const float *in, *w, *b, *dout, *relu_y;
	int B, act, acc, relu_act;
	isa_kind isa;           /* the vector loops on it */
} dw_job;

/* Worker k's share of the batch's output rows; each output starts from its bias and adds
 * the window's in-bounds positions row by row, column by column. */
static void fwd_worker(void *ctx, int k, int n)
{
	const dw_job *j = ctx;
	const geom *g = j->g;
	int c = g->c, oc = g->oc, mult = oc / c;
	long lo, hi;

	/* the outputs whose windows are whole along a row: [qlo, qhi) */
	int qlo = (g->pl + g->sw - 1) / g->sw, qhi = g->w - g->kw + g->pl < 0 ? 0 :
		(g->w - g->kw + g->pl) / g->sw + 1;

	qhi = qhi < g->ow ? qhi : g->ow;
	/* the row kernels' fours of them, from qlo */
	int rq = row3_fits(g, mult, j->isa) && qhi > qlo ? (qhi - qlo) / 4 * 4 : 0;

	par_share((long)j->B * g->oh, k, n, &lo, &hi);
	for (long r = lo; r < hi; r++) {
		long img = r / g->oh;
		int oy = (int)(r % g->oh);
		const float *im = j->in + img * g->h * g->w * c;

		if (rq)
			fwd_row3(g, j->out + (r * g->ow + qlo) * oc, im, j->w, j->b, oy, qlo, rq / 4, j->act);
		for (int ox = 0; ox < g->ow; ox++) {
			float *o = j->out + (r * g->ow + ox) * oc;

			if (rq && ox == qlo) {
				ox += rq - 1;
				continue;
			}

			if (mult == 1 && j->isa >= ISA_AVX2 && ox >= qlo && ox + 4 <= qhi) {
				fwd_quad_isa(g, o, im, j->w, j->b, oy, ox, j->act, j->isa);
				ox += 3;
				continue;
			}
			if (mult == 1) {
				fwd_pixel_isa(g, o, im, j->w, j->b, oy, ox, j->act, j->isa);
				continue;
			}
			if (j->b)
				memcpy(o, j->b, sizeof *o * oc);
			else
				memset(o, 0, sizeof *o * oc);
			for (int ky = 0; ky < g->kh; ky++) {
				int iy = oy * g->sh - g->pt + ky;

				if (iy < 0 || iy >= g->h)
					continue;
				for (int kx = 0; kx < g->kw; kx++) {
					int ix = ox * g->sw - g->pl + kx;

					if (ix < 0 || ix >= g->w)
						continue;
					const float *x = im + ((long)iy * g->w + ix) * c;
					const float *wk = j->w + ((long)ky * g->kw + kx) * oc;

					for (int ch = 0; ch < oc; ch++)
						o[ch] += x[ch / mult] * wk[ch];
				}
			}
			if (j->act)
				for (int ch = 0; ch < oc; ch++)
					o[ch] = act1(o[ch], j->act);
		}
	}
}

void convdw_forward(const geom *g, float *out, const float *in, const float *w, const float *b,
		    int B, int act, int threads, isa_kind isa)
{
	dw_job j = { .g = g, .out = out, .in = in, .w = w, .b = b, .B = B, .act = act, .isa = isa };

	/* a path this CPU (or build) lacks falls to the next narrower one */
	while (j.isa > ISA_GENERIC && !isa_supported(j.isa))
		j.isa--;
	long rows = (long)B * g->oh;

	par_run(threads < rows ? threads : (int)rows, fwd_worker, &j);
}

/* ---- the backward's vector loops: the scalar loops' multiplies then adds per lane, in
 * their order, so the same bits on every path. Where they ran 4 channels at a time through
 * memory (madd), MobileNetV2's depthwise backward took 83 of a whole-network training
 * step's 362 ms (batch 10, 2 threads, Zen 4) against 14 for its forward. ---- */

/* Window positions an input pixel's gradient gathers at most on the vector path (an
 * 8x8 kernel's; larger kernels take the scalar loop). */
#define DW_MAXPOS 64

/* din of one pixel, d[ch] for ch >= ch0: 0, plus dys[i][ch] * wks[i][ch] for i < n in
 * order, zeroed where the activation act's output mk (NULL: none) does not pass it. */
static void din_pixel(float *d, const float *const *dys, const float *const *wks, int n,
		      const float *mk, int act, int ch0, int c)
{
	for (int ch = ch0; ch < c; ch++) {
		float a = 0.0f;

		for (int i = 0; i < n; i++)
			a += dys[i][ch] * wks[i][ch];
		d[ch] = mk && !actmask_pass(mk[ch], act) ? 0.0f : a;
	}
}

/* dw[ch] += x[ch] * dy[ch] (db: dy[ch] alone, x NULL) over n output pixels in order, x
 * and dy xs and ds floats a pixel apart, for ch < nc. */
static void wgrad_run(float *dw, const float *x, long xs, const float *dy, long ds, int n,
		      int ch0, int nc)
{
	for (int k = 0; k < n; k++, x = x ? x + xs : NULL, dy += ds)
		for (int ch = ch0; ch < nc; ch++)
			dw[ch] += x ? x[ch] * dy[ch] : dy[ch];
}

#if defined(__x86_64__)
/* din_pixel nv vectors of 16 channels at a time from ch (the last one's lanes in m): up to
 * 64 channels' sums in flight, where one vector's would wait on the adds' latency. */
DW_AVX512 static inline __attribute__((always_inline)) void
din_block512(int nv, float *d, const float *const *dys, const float *const *wks, int n,
	     const float *mk, int act, int ch, __mmask16 m)
{
	__m512 a[4], zero = _mm512_setzero_ps();
	__mmask16 mv[4];

#pragma GCC unroll 4
	for (int v = 0; v < nv; v++)
		a[v] = zero, mv[v] = v == nv - 1 ? m : 0xffff;
	for (int i = 0; i < n; i++)
#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
			a[v] = _mm512_add_ps(a[v], _mm512_mul_ps(
				_mm512_maskz_loadu_ps(mv[v], dys[i] + ch + 16 * v),
				_mm512_maskz_loadu_ps(mv[v], wks[i] + ch + 16 * v)));
#pragma GCC unroll 4
	for (int v = 0; v < nv; v++) {
		if (mk)
			a[v] = actmask_keep512(a[v], mk + ch + 16 * v, mv[v], act);
		_mm512_mask_storeu_ps(d + ch + 16 * v, mv[v], a[v]);
	}
}

DW_AVX512 static void din_pixel512(float *d, const float *const *dys, const float *const *wks,
				   int n, const float *mk, int act, int c)
{
	int ch = 0;

	for (; c - ch >= 64; ch += 64)
		din_block512(4, d, dys, wks, n, mk, act, ch, 0xffff);
	if (ch < c) {
		int left = c - ch, nv = (left + 15) / 16;
		__mmask16 m = (__mmask16)(0xffffu >> (16 * nv - left));

		if (nv == 3)
			din_block512(3, d, dys, wks, n, mk, act, ch, m);
		else if (nv == 2)
			din_block512(2, d, dys, wks, n, mk, act, ch, m);
		else
			din_block512(1, d, dys, wks, n, mk, act, ch, m);
	}
}

/* wgrad_run nv vectors of 16 channels (the last one's lanes in m), the sums held in
 * registers over the n pixels. */
DW_AVX512 static inline __attribute__((always_inline)) void
wgrad_block512(int nv, float *dw, const float *x, long xs, const float *dy, long ds, int n,
	       __mmask16 m)
{
	__m512 a[4];
	__mmask16 mv[4];

#pragma GCC unroll 4
	for (int v = 0; v < nv; v++)
		mv[v] = v == nv - 1 ? m : 0xffff, a[v] = _mm512_maskz_loadu_ps(mv[v], dw + 16 * v);
	for (int k = 0; k < n; k++, dy += ds) {
#pragma GCC unroll 4
		for (int v = 0; v < nv; v++) {
			__m512 g = _mm512_maskz_loadu_ps(mv[v], dy + 16 * v);

			a[v] = _mm512_add_ps(a[v], x ? _mm512_mul_ps(
				_mm512_maskz_loadu_ps(mv[v], x + 16 * v), g) : g);
		}
		x = x ? x + xs : NULL;
	}
#pragma GCC unroll 4
	for (int v = 0; v < nv; v++)
		_mm512_mask_storeu_ps(dw + 16 * v, mv[v], a[v]);
}

/* wgrad_run on at most 64 channels (nc). */
DW_AVX512 static void wgrad_run512(float *dw, const float *x, long xs, const float *dy, long ds,
				   int n, int nc)
{
	int nv = (nc + 15) / 16;
	__mmask16 m = (__mmask16)(0xffffu >> (16 * nv - nc));

	switch (nv) {
	case 4: wgrad_block512(4, dw, x, xs, dy, ds, n, m); break;
	case 3: wgrad_block512(3, dw, x, xs, dy, ds, n, m); break;
	case 2: wgrad_block512(2, dw, x, xs, dy, ds, n, m); break;
	default: wgrad_block512(1, dw, x, xs, dy, ds, n, m); break;
	}
}

/* din_block512 on AVX2: nv vectors of 8 channels, all full. */
DW_AVX2 static inline __attribute__((always_inline)) void
din_block256(int nv, float *d, const float *const *dys, const float *const *wks, int n,
	     const float *mk, int act, int ch)
{
	__m256 a[8], zero = _mm256_setzero_ps();

#pragma GCC unroll 8
	for (int v = 0; v < nv; v++)
		a[v] = zero;
	for (int i = 0; i < n; i++)
#pragma GCC unroll 8
		for (int v = 0; v < nv; v++)
			a[v] = _mm256_add_ps(a[v], _mm256_mul_ps(_mm256_loadu_ps(dys[i] + ch + 8 * v),
								 _mm256_loadu_ps(wks[i] + ch + 8 * v)));
#pragma GCC unroll 8
	for (int v = 0; v < nv; v++) {
		if (mk)
			a[v] = actmask_keep256(a[v], mk + ch + 8 * v, act);
		_mm256_storeu_ps(d + ch + 8 * v, a[v]);
	}
}

/* din_pixel's channels a multiple of 8 from the first; returns the first left over. */
DW_AVX2 static int din_pixel256(float *d, const float *const *dys, const float *const *wks,
				int n, const float *mk, int act, int c)
{
	int ch = 0;

	for (; c - ch >= 64; ch += 64)
		din_block256(8, d, dys, wks, n, mk, act, ch);
	for (; c - ch >= 16; ch += 16)
		din_block256(2, d, dys, wks, n, mk, act, ch);
	for (; c - ch >= 8; ch += 8)
		din_block256(1, d, dys, wks, n, mk, act, ch);
	return ch;
}

/* wgrad_block512 on AVX2: nv vectors of 8 channels, all full. */
DW_AVX2 static inline __attribute__((always_inline)) void
wgrad_block256(int nv, float *dw, const float *x, long xs, const float *dy, long ds, int n)
{
	__m256 a[8];

#pragma GCC unroll 8
	for (int v = 0; v < nv; v++)
		a[v] = _mm256_loadu_ps(dw + 8 * v);
	for (int k = 0; k < n; k++, dy += ds) {
#pragma GCC unroll 8
		for (int v = 0; v < nv; v++) {
			__m256 g = _mm256_loadu_ps(dy + 8 * v);

			a[v] = _mm256_add_ps(a[v], x ? _mm256_mul_ps(_mm256_loadu_ps(x + 8 * v), g) : g);
		}
		x = x ? x + xs : NULL;
	}
#pragma GCC unroll 8
	for (int v = 0; v < nv; v++)
		_mm256_storeu_ps(dw + 8 * v, a[v]);
}

/* wgrad_run's channels a multiple of 8 from the first, of at most 64 (nc); returns the
 * first left over. */
DW_AVX2 static int wgrad_run256(float *dw, const float *x, long xs, const float *dy, long ds,
				int n, int nc)
{
	int ch = 0;

	if (nc - ch >= 64)
		wgrad_block256(8, dw, x, xs, dy, ds, n), ch += 64;
	for (; nc - ch >= 32; ch += 32)
		wgrad_block256(4, dw + ch, x ? x + ch : NULL, xs, dy + ch, ds, n);
	for (; nc - ch >= 8; ch += 8)
		wgrad_block256(1, dw + ch, x ? x + ch : NULL, xs, dy + ch, ds, n);
	return ch;
}
#endif

/* din_pixel on the widest path isa allows. */
static void din_pixel_isa(float *d, const float *const *dys, const float *const *wks, int n,
			  const float *mk, int act, int c, isa_kind isa)
{
	int ch = 0;

#if defined(__x86_64__)
	if (isa >= ISA_AVX512) {
		din_pixel512(d, dys, wks, n, mk, act, c);
		return;
	}
	if (isa >= ISA_AVX2)
		ch = din_pixel256(d, dys, wks, n, mk, act, c);
#endif
	(void)isa;
	din_pixel(d, dys, wks, n, mk, act, ch, c);
}

/* wgrad_run on at most 64 channels (nc), on the widest path isa allows. */
static void wgrad_run_isa(float *dw, const float *x, long xs, const float *dy, long ds, int n,
			  int nc, isa_kind isa)
{
	int ch = 0;

#if defined(__x86_64__)
	if (isa >= ISA_AVX512) {
		wgrad_run512(dw, x, xs, dy, ds, n, nc);
		return;
	}
	if (isa >= ISA_AVX2)
		ch = wgrad_run256(dw, x, xs, dy, ds, n, nc);
#endif
	(void)isa;
	wgrad_run(dw, x, xs, dy, ds, n, ch, nc);
}

/* Whether window position (ky, kx) of some output covers input pixel (iy, ix), and which
 * output (*oy, *ox). */
static int covers(const geom *g, int iy, int ix, int ky, int kx, int *oy, int *ox)
{
	int ty = iy + g->pt - ky, tx = ix + g->pl - kx;

	*oy = ty / g->sh, *ox = tx / g->sw;
	return !(ty < 0 || ty % g->sh || *oy >= g->oh) && !(tx < 0 || tx % g->sw || *ox >= g->ow);
}

/* Worker k's share of the batch's input rows: din gathered from every output whose window
 * covers it, window positions in the forward's order (on the vector path, a multiplier of
 * 1, listed first, then summed in registers). */
static void din_worker(void *ctx, int k, int n)
{
	const dw_job *j = ctx;
	const geom *g = j->g;
	int c = g->c, oc = g->oc, mult = oc / c, oy, ox;
	int vec = mult == 1 && j->isa > ISA_GENERIC && g->kh * g->kw <= DW_MAXPOS;
	long lo, hi;

	par_share((long)j->B * g->h, k, n, &lo, &hi);
	for (long r = lo; r < hi; r++) {
		long img = r / g->h;
		int iy = (int)(r % g->h);
		const float *dimg = j->dout + img * g->oh * g->ow * oc;

		for (int ix = 0; ix < g->w; ix++) {
			long p = r * g->w + ix;
			float *d = j->din + p * c;

			if (vec) {
				const float *dys[DW_MAXPOS], *wks[DW_MAXPOS];
				int np = 0;

				for (int ky = 0; ky < g->kh; ky++)
					for (int kx = 0; kx < g->kw; kx++)
						if (covers(g, iy, ix, ky, kx, &oy, &ox)) {
							dys[np] = dimg + ((long)oy * g->ow + ox) * oc;
							wks[np++] = j->w + ((long)ky * g->kw + kx) * oc;
						}
				din_pixel_isa(d, dys, wks, np, j->relu_y ? j->relu_y + p * c : NULL,
					      j->relu_act, c, j->isa);
				continue;
			}
			memset(d, 0, sizeof *d * c);
			for (int ky = 0; ky < g->kh; ky++)
				for (int kx = 0; kx < g->kw; kx++) {
					if (!covers(g, iy, ix, ky, kx, &oy, &ox))
						continue;
					const float *dy = dimg + ((long)oy * g->ow + ox) * oc;
					const float *wk = j->w + ((long)ky * g->kw + kx) * oc;

					if (mult == 1)
						madd(d, dy, wk, c);
					else
						for (int ch = 0; ch < c; ch++)
							for (int m = 0; m < mult; m++)
								d[ch] += dy[ch * mult + m] * wk[ch * mult + m];
				}
			if (j->relu_y)
				for (int ch = 0; ch < c; ch++)
					if (!actmask_pass(j->relu_y[p * c + ch], j->relu_act))
						d[ch] = 0.0f;
		}
	}
}

/* Worker k owns a contiguous share of the parts (window position or, last, the bias) x
 * (block of DW_CHANNELS output channels) and sums every output pixel of the batch into
 * them in image, row, column order, whatever k and n. */
static void wgrad_worker(void *ctx, int k, int n)
{
	const dw_job *j = ctx;
	const geom *g = j->g;
	int c = g->c, oc = g->oc, mult = oc / c, ncb = (oc + DW_CHANNELS - 1) / DW_CHANNELS;
	long lo, hi, khw = (long)g->kh * g->kw;

	par_share((khw + (j->db != NULL)) * ncb, k, n, &lo, &hi);
	if (!j->acc)
		for (long it = lo; it < hi; it++) {
			int c0 = (int)(it % ncb) * DW_CHANNELS, nc = oc - c0 < DW_CHANNELS ? oc - c0 : DW_CHANNELS;
			float *dst = it / ncb == khw ? j->db + c0 : j->dw + (it / ncb) * oc + c0;

			memset(dst, 0, sizeof *dst * nc);
		}
	for (long img = 0; img < j->B; img++)
		for (int oy = 0; oy < g->oh; oy++) {
			const float *drow = j->dout + (img * g->oh + oy) * g->ow * oc;

			for (long it = lo; it < hi; it++) {
				long kk = it / ncb;
				int c0 = (int)(it % ncb) * DW_CHANNELS;
				int c1 = oc - c0 < DW_CHANNELS ? oc : c0 + DW_CHANNELS;

				if (kk == khw) {
					wgrad_run_isa(j->db + c0, NULL, 0, drow + c0, oc, g->ow, c1 - c0, j->isa);
					continue;
				}
				int ky = (int)(kk / g->kw), kx = (int)(kk % g->kw), iy = oy * g->sh - g->pt + ky;
				float *dwk = j->dw + kk * oc;

				if (iy < 0 || iy >= g->h)
					continue;
				const float *irow = j->in + (img * g->h + iy) * g->w * c;

				if (mult == 1) {
					/* the outputs whose tap kx is inside the row: [ox0, ox1) */
					int ox0 = kx >= g->pl ? 0 : (g->pl - kx + g->sw - 1) / g->sw;
					int ox1 = g->w - 1 + g->pl - kx < 0 ? 0 : (g->w - 1 + g->pl - kx) / g->sw + 1;

					ox1 = ox1 < g->ow ? ox1 : g->ow;
					if (ox0 < ox1)
						wgrad_run_isa(dwk + c0, irow + (long)(ox0 * g->sw - g->pl + kx) * c + c0,
							      (long)g->sw * c, drow + (long)ox0 * oc + c0, oc,
							      ox1 - ox0, c1 - c0, j->isa);
					continue;
				}
				for (int ox = 0; ox < g->ow; ox++) {
					int ix = ox * g->sw - g->pl + kx;

					if (ix < 0 || ix >= g->w)
						continue;
					const float *x = irow + (long)ix * c, *dy = drow + (long)ox * oc;

					for (int ch = c0; ch < c1; ch++)
						dwk[ch] += x[ch / mult] * dy[ch];
				}
			}
		}
}

void convdw_backward(const geom *g, float *din, float *dw, float *db, const float *dout,
		     const float *in, const float *w, const float *relu_y, int relu_act, int B,
		     int acc, int threads, isa_kind isa)
{
	dw_job j = { .g = g, .din = din, .dw = dw, .db = db, .dout = dout, .in = in, .w = w,
		     .relu_y = relu_y, .B = B, .acc = acc, .relu_act = relu_act, .isa = isa };
	long parts = ((long)g->kh * g->kw + (db != NULL)) * ((g->oc + DW_CHANNELS - 1) / DW_CHANNELS);
	long rows = (long)B * g->h;

	while (j.isa > ISA_GENERIC && !isa_supported(j.isa))
		j.isa--;
	if (dw)
		par_run(threads < parts ? threads : (int)parts, wgrad_worker, &j);
	if (din)
		par_run(threads < rows ? threads : (int)rows, din_worker, &j);
}
