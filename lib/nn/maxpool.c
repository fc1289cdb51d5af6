/* maxpool: max-pooling forward (the winners' offsets kept) and backward (the gradient
 * routed to the winners), split over threads; SIMD across the channels (NHWC) for any
 * window, and a 2x2 stride-2 forward and backward of their own. */
#include "nn/maxpool.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define POOL_AVX2 __attribute__((target("avx2")))
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

static int is_2x2(const geom *g)
{
	return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->pt == 0 && g->pl == 0 &&
	       g->h == 2 * g->oh && g->w == 2 * g->ow;
}

/* One output pixel: its window's in-bounds rows [y0, y1) and columns [x0, x1) of the image
 * img [h, w, c], visited in the reference order (rows, then columns, ascending). The first
 * pixel seeds the max and a later one wins only if greater (x > v: a tie keeps the earlier
 * pixel, a NaN never wins and a NaN seed is never beaten), so the winner, and its offset
 * kept in pa (NULL: not wanted), are those of the per-tap loop the model was tested with.
 * Each tap runs over all channels into po and pa, which stay in L1: the channels'
 * dependency chains interleave, and any c takes the same code. */
typedef struct {
	const float *img;
	float *po;
	int32_t *pa;
	int w, c, y0, y1, x0, x1;
} pool_px;

/* The seed: po = the first pixel, pa its offsets. */
static void px_seed(const pool_px *p, int32_t off0)
{
	memcpy(p->po, p->img + off0, sizeof *p->po * (size_t)p->c);
	if (p->pa)
		for (int ch = 0; ch < p->c; ch++)
			p->pa[ch] = off0 + ch;
}

/* The generic path: SSE2 (every x86-64) 4 channels at a time, the rest scalar; max_ps(x, v)
 * is x > v ? x : v, the reference's comparison exactly. */
static void px_generic(const pool_px *p)
{
	const float *img = p->img;
	float *po = p->po;
	int32_t *pa = p->pa;
	int c = p->c, w = p->w;
	int32_t off0 = (int32_t)(((long)p->y0 * w + p->x0) * c);

	px_seed(p, off0);
	for (int iy = p->y0; iy < p->y1; iy++)
		for (int ix = iy == p->y0 ? p->x0 + 1 : p->x0; ix < p->x1; ix++) {
			int32_t off = (int32_t)(((long)iy * w + ix) * c);
			const float *x = img + off;
			int ch = 0;
#if defined(__SSE2__)
			if (!pa)
				for (; ch + 4 <= c; ch += 4)
					_mm_storeu_ps(po + ch, _mm_max_ps(_mm_loadu_ps(x + ch), _mm_loadu_ps(po + ch)));
			for (; pa && ch + 4 <= c; ch += 4) {
				__m128 xv = _mm_loadu_ps(x + ch), v = _mm_loadu_ps(po + ch);
				__m128 gt = _mm_cmpgt_ps(xv, v);
				__m128i at = _mm_add_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32(off + ch));
				__m128 a = _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)(pa + ch)));

				_mm_storeu_ps(po + ch, pick_ps(gt, xv, v));
				_mm_storeu_si128((__m128i *)(pa + ch), _mm_castps_si128(pick_ps(gt, _mm_castsi128_ps(at), a)));
			}
#endif
			for (; ch < c; ch++)
				if (x[ch] > po[ch]) {
					po[ch] = x[ch];
					if (pa)
						pa[ch] = off + ch;
				}
		}
}

#ifdef POOL_AVX2
/* AVX2, 8 channels a step; the AVX-512 path runs it too: our activations start 16 bytes
 * past a page (calloc), so every 64-byte load would straddle two cache lines, and 16-wide
 * kernels measured slower (ResNet-18's pool, 8x112x112x64, one thread: 2.7 ms against
 * 1.9 without the winners, 4.5 against 3.3 with them). */
POOL_AVX2 static void px_avx2(const pool_px *p)
{
	const float *img = p->img;
	float *po = p->po;
	int32_t *pa = p->pa;
	int c = p->c, w = p->w;
	int32_t off0 = (int32_t)(((long)p->y0 * w + p->x0) * c);
	__m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	int body = c - c % 8;

	px_seed(p, off0);
	for (int iy = p->y0; iy < p->y1; iy++)
		for (int ix = iy == p->y0 ? p->x0 + 1 : p->x0; ix < p->x1; ix++) {
			int32_t off = (int32_t)(((long)iy * w + ix) * c);
			const float *x = img + off;

			if (!pa) {
				for (int ch = 0; ch < body; ch += 8)
					_mm256_storeu_ps(po + ch, _mm256_max_ps(_mm256_loadu_ps(x + ch), _mm256_loadu_ps(po + ch)));
				for (int ch = body; ch < c; ch++)
					po[ch] = x[ch] > po[ch] ? x[ch] : po[ch];
				continue;
			}
			for (int ch = 0; ch < body; ch += 8) {
				__m256 xv = _mm256_loadu_ps(x + ch), v = _mm256_loadu_ps(po + ch);
				__m256 gt = _mm256_cmp_ps(xv, v, _CMP_GT_OQ);
				__m256i at = _mm256_add_epi32(lane, _mm256_set1_epi32(off + ch));
				__m256 a = _mm256_loadu_ps((const float *)(pa + ch));

				_mm256_storeu_ps(po + ch, _mm256_blendv_ps(v, xv, gt));
				_mm256_storeu_ps((float *)(pa + ch), _mm256_blendv_ps(a, _mm256_castsi256_ps(at), gt));
			}
			/* the tail by hand: AMD runs vmaskmov stores slowly */
			for (int ch = body; ch < c; ch++)
				if (x[ch] > po[ch])
					po[ch] = x[ch], pa[ch] = off + ch;
		}
}
#endif

#ifdef POOL_AVX2
/* The 2x2 stride-2 window (pool1, pool2), AVX2, output rows [r0, r1): a window's four
 * taps read, compared and blended in registers, 8 channels a step, the max and its
 * offset stored once, where px_avx2 passes over the output in L1 per tap (pool1 at 224,
 * batch 10, 2 threads, Zen 5: 4.4-4.5 -> 2.5-2.75 ms; pool2 1.3-1.8 -> 1.2). The taps in
 * the reference order, a later one winning only if greater: px_avx2's winners. An AVX2
 * backward of the same shape was no faster than unpool_2x2's SSE: both are bound by
 * memory (64 MB of din written at pool1). */
POOL_AVX2 static void rows_2x2_avx2(const geom *g, float *out, int32_t *argmax, const float *in,
				    long r0, long r1)
{
	int c = g->c, body = c - c % 8;
	long isz = (long)g->h * g->w * c, rowsz = (long)g->w * c;
	__m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	__m256i k1 = _mm256_set1_epi32(c), k2 = _mm256_set1_epi32((int)rowsz),
		k3 = _mm256_set1_epi32((int)rowsz + c);

	for (long r = r0; r < r1; r++) {
		const float *img = in + r / g->oh * isz;
		int oy = (int)(r % g->oh);

		for (int ox = 0; ox < g->ow; ox++) {
			int32_t off0 = (int32_t)(2L * oy * rowsz + 2L * ox * c);
			const float *t0 = img + off0, *t1 = t0 + c, *t2 = t0 + rowsz, *t3 = t2 + c;
			const float *tap[4] = { t0, t1, t2, t3 };
			int32_t toff[4] = { off0, off0 + c, off0 + (int32_t)rowsz, off0 + (int32_t)rowsz + c };
			long o = (r * g->ow + ox) * c;
			float *po = out + o;

			for (int ch = 0; ch < body; ch += 8) {
				__m256 v = _mm256_loadu_ps(t0 + ch), x1 = _mm256_loadu_ps(t1 + ch);
				__m256 x2 = _mm256_loadu_ps(t2 + ch), x3 = _mm256_loadu_ps(t3 + ch);
				__m256 g1 = _mm256_cmp_ps(x1, v, _CMP_GT_OQ);

				if (!argmax) {
					v = _mm256_blendv_ps(v, x1, g1);
					v = _mm256_blendv_ps(v, x2, _mm256_cmp_ps(x2, v, _CMP_GT_OQ));
					v = _mm256_blendv_ps(v, x3, _mm256_cmp_ps(x3, v, _CMP_GT_OQ));
					_mm256_storeu_ps(po + ch, v);
					continue;
				}
				__m256i a0 = _mm256_add_epi32(lane, _mm256_set1_epi32(off0 + ch));
				__m256 a = _mm256_castsi256_ps(a0), gt;

				v = _mm256_blendv_ps(v, x1, g1);
				a = _mm256_blendv_ps(a, _mm256_castsi256_ps(_mm256_add_epi32(a0, k1)), g1);
				gt = _mm256_cmp_ps(x2, v, _CMP_GT_OQ);
				v = _mm256_blendv_ps(v, x2, gt);
				a = _mm256_blendv_ps(a, _mm256_castsi256_ps(_mm256_add_epi32(a0, k2)), gt);
				gt = _mm256_cmp_ps(x3, v, _CMP_GT_OQ);
				v = _mm256_blendv_ps(v, x3, gt);
				a = _mm256_blendv_ps(a, _mm256_castsi256_ps(_mm256_add_epi32(a0, k3)), gt);
				_mm256_storeu_ps(po + ch, v);
				_mm256_storeu_ps((float *)(argmax + o + ch), a);
			}
			for (int ch = body; ch < c; ch++) {
				float v = t0[ch];
				int32_t at = off0 + ch;

				for (int k = 1; k < 4; k++)
					if (tap[k][ch] > v)
						v = tap[k][ch], at = toff[k] + ch;
				po[ch] = v;
				if (argmax)
					argmax[o + ch] = at;
			}
		}
	}
}
#endif

/* Output rows [r0, r1) of the batch (row r: image r / oh, output row r % oh). */
static void maxpool_rows(const geom *g, float *out, int32_t *argmax, const float *in, long r0,
			 long r1, isa_kind isa)
{
	int c = g->c;
	long isz = (long)g->h * g->w * c;

#ifdef POOL_AVX2
	if (isa >= ISA_AVX2 && is_2x2(g)) {
		rows_2x2_avx2(g, out, argmax, in, r0, r1);
		return;
	}
#endif
	for (long r = r0; r < r1; r++) {
		pool_px p = { .img = in + r / g->oh * isz, .w = g->w, .c = c };
		int oy = (int)(r % g->oh);

		geom_window(oy, g->sh, g->pt, g->kh, 0, g->h, &p.y0, &p.y1);
		for (int ox = 0; ox < g->ow; ox++) {
			long o = (r * g->ow + ox) * c;

			p.po = out + o;
			p.pa = argmax ? argmax + o : NULL;
			geom_window(ox, g->sw, g->pl, g->kw, 0, g->w, &p.x0, &p.x1);
			/* explicit pads as large as the window: nothing to take */
			if (p.y0 >= p.y1 || p.x0 >= p.x1) {
				for (int ch = 0; ch < c; ch++) {
					p.po[ch] = 0.0f;
					if (p.pa)
						p.pa[ch] = -1;
				}
				continue;
			}
#ifdef POOL_AVX2
			if (isa >= ISA_AVX2) {
				px_avx2(&p);
				continue;
			}
#endif
			px_generic(&p);
		}
	}
	(void)isa;
}

typedef struct {
	const geom *g;
	float *out, *din;
	int32_t *argmax;
	const float *in, *dout, *pooled;
	const int32_t *amax;
	int B;
	isa_kind isa;
} pool_job;

/* pooling is memory-bound: output rows split over threads, each output computed as alone */
static void pool_fwd_worker(void *ctx, int k, int n)
{
	const pool_job *j = ctx;
	long lo, hi;

	par_share((long)j->B * j->g->oh, k, n, &lo, &hi);
	maxpool_rows(j->g, j->out, j->argmax, j->in, lo, hi, j->isa);
}

/* The kernels isa asks for, or the widest below it this CPU has: never an illegal
 * instruction. */
static isa_kind usable(isa_kind isa)
{
	return isa >= ISA_AVX2 && !isa_supported(ISA_AVX2) ? ISA_GENERIC : isa;
}

void maxpool_forward_isa(const geom *g, float *out, int32_t *argmax, const float *in, int B,
			 int threads, isa_kind isa)
{
	pool_job j = { .g = g, .out = out, .argmax = argmax, .in = in, .B = B, .isa = usable(isa) };
	long rows = (long)B * g->oh;

	if (threads > 1)
		blas_park();
	par_run(threads < rows ? threads : (int)rows, pool_fwd_worker, &j);
}

void maxpool_forward(const geom *g, float *out, int32_t *argmax, const float *in, int B,
		     int threads)
{
	maxpool_forward_isa(g, out, argmax, in, B, threads, isa_best());
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
	for (long b = lo; b < hi; b++) {
		float *img = j->din + b * isz;
		const float *d = j->dout + b * osz, *y = j->pooled ? j->pooled + b * osz : NULL;
		const int32_t *a = j->amax + b * osz;

		/* image by image: the zeros are still in cache when the gradients land */
		memset(img, 0, sizeof *img * (size_t)isz);
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
