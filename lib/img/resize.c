/* resize: separable antialiased resampling of 8-bit RGB. See resize.h.
 * 14-bit integer weights, so pmaddwd does two taps of three channels at once; the portable,
 * SSE2 and AVX2 loops compute the very same integers (in any order: integer sums are exact),
 * so the bytes out never depend on the machine. Rows come in a few at a time: the horizontal
 * pass runs on them while they are still in cache from the decoder, and the vertical pass
 * follows as soon as an output row's source rows are in. */
#include "img/resize.h"

#include "util/errmsg.h"
#include "util/simd.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define RESIZE_SSE2 1
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define RESIZE_AVX2 1
#endif
#endif

#define PREC 14    /* weight bits: weights <= 1 fit int16, 255 * 2^14 * taps fits int32 */
#define CHUNK 16   /* rows per push: 16 rows of a 500-pixel photo stay in L1 */
#define SLACK 32   /* bytes after a row that SIMD loads and stores may touch */

int resize_fit_parse(const char *s, enum resize_fit *fit)
{
	if (!strcmp(s, "stretch"))
		*fit = RESIZE_STRETCH;
	else if (!strcmp(s, "crop"))
		*fit = RESIZE_CROP;
	else if (!strcmp(s, "pad"))
		*fit = RESIZE_PAD;
	else
		return -1;
	return 0;
}

void resize_plan_fit(resize_plan *p, int sw, int sh, int tw, int th, enum resize_fit fit)
{
	p->box[0] = p->box[1] = 0;
	p->box[2] = sw;
	p->box[3] = sh;
	p->dx = p->dy = 0;
	p->dw = tw;
	p->dh = th;
	if (sw <= 0 || sh <= 0 || tw <= 0 || th <= 0)
		return;
	if (fit == RESIZE_CROP) {
		/* the largest centred box of the target's aspect ratio */
		double s = fmax((double)tw / sw, (double)th / sh), bw = tw / s, bh = th / s;
		p->box[0] = (sw - bw) / 2;
		p->box[1] = (sh - bh) / 2;
		p->box[2] = p->box[0] + bw;
		p->box[3] = p->box[1] + bh;
		p->box[0] = fmax(p->box[0], 0);
		p->box[1] = fmax(p->box[1], 0);
		p->box[2] = fmin(p->box[2], sw);
		p->box[3] = fmin(p->box[3], sh);
	} else if (fit == RESIZE_PAD) {
		double s = fmin((double)tw / sw, (double)th / sh);
		int dw = (int)lround(sw * s), dh = (int)lround(sh * s);
		p->dw = dw < 1 ? 1 : dw > tw ? tw : dw;
		p->dh = dh < 1 ? 1 : dh > th ? th : dh;
		p->dx = (tw - p->dw) / 2;
		p->dy = (th - p->dh) / 2;
	}
}

/* --- taps ----------------------------------------------------------------------------- */

static void taps_free(resize_taps *t)
{
	free(t->first);
	free(t->n);
	free(t->w);
	free(t->pairs);
	memset(t, 0, sizeof *t);
}

static double triangle(double x)
{
	x = fabs(x);
	return x < 1 ? 1 - x : 0;
}

/* Pillow's coefficients: centre of output i at in0 + (i + 0.5) * scale, a triangle of
 * half-width max(1, scale) source pixels, normalised to sum 1. Kept when the geometry is
 * the one they were made for (a dataset's photos often share their size). */
static int taps_make(resize_taps *t, int insize, double in0, double in1, int outsize, char *err)
{
	double scale = (in1 - in0) / outsize, fscale = scale < 1 ? 1 : scale;
	double support = fscale, inv = 1.0 / fscale;
	int ksize = (int)ceil(support) * 2 + 2, nout = (outsize + 3) / 4 * 4;  /* +1 centre, +1 pairs */
	double *tmp;

	if (t->first && t->first[0] >= 0 && t->insize == insize && t->outsize == outsize && t->in0 == in0 && t->in1 == in1)
		return 0;
	if ((size_t)nout > SIZE_MAX / sizeof(int32_t) / (size_t)ksize)
		return err_set(err, "resize: %d x %d taps overflow", outsize, ksize);
	if (t->cap < (size_t)nout * ksize) {  /* first and n need only nout: ksize >= 4 */
		taps_free(t);
		t->cap = (size_t)nout * ksize;
		t->first = malloc(sizeof(int) * t->cap);
		t->n = malloc(sizeof(int) * t->cap);
		t->w = malloc(sizeof(int16_t) * t->cap);
		t->pairs = malloc(sizeof(int32_t) * t->cap);
		if (!t->first || !t->n || !t->w || !t->pairs) {
			taps_free(t);
			return err_set(err, "resize: out of memory");
		}
	}
	if (!(tmp = malloc(sizeof(double) * (size_t)ksize)))
		return err_set(err, "resize: out of memory");
	t->first[0] = -1;  /* not the old geometry's any more, should this fail half-way */
	t->ksize = ksize;
	t->nout = nout;
	t->np = 0;
	t->tailzero = 1;
	memset(t->w, 0, sizeof(int16_t) * (size_t)nout * ksize);
	for (int i = 0; i < nout; i++) {
		double center = in0 + ((i < outsize ? i : outsize - 1) + 0.5) * scale, sum = 0;
		int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
		int16_t *w = t->w + (size_t)i * ksize;
		if (lo < 0)
			lo = 0;
		if (hi > insize)
			hi = insize;
		if (hi - lo > ksize)
			hi = lo + ksize;
		for (int k = 0; k < hi - lo; k++)
			sum += tmp[k] = triangle((k + lo - center + 0.5) * inv);
		for (int k = 0; k < hi - lo; k++) {
			double v = sum != 0 ? tmp[k] / sum : 0;
			w[k] = (int16_t)(0.5 + v * (1 << PREC));  /* v in [0, 1] */
		}
		t->first[i] = lo;
		t->n[i] = hi - lo;
		if ((hi - lo + 1) / 2 > t->np)
			t->np = (hi - lo + 1) / 2;
		for (int j = 0; j < ksize / 2; j++)
			t->pairs[(size_t)i * (ksize / 2) + j] =
				(int32_t)((uint32_t)(uint16_t)w[2 * j] | (uint32_t)(uint16_t)w[2 * j + 1] << 16);
	}
	free(tmp);
	for (int i = 0; i < nout; i++)  /* does any output weigh pixel 2 np - 1? */
		if (t->np % 2 && t->n[i] >= 2 * t->np)
			t->tailzero = 0;
	t->insize = insize;
	t->outsize = outsize;
	t->in0 = in0;
	t->in1 = in1;
	return 0;
}

/* --- horizontal pass: RGB rows in, RGB rows out (each output row has SLACK bytes after) -- */

static inline uint8_t clip8(int32_t v)
{
	v >>= PREC;
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

static void hrow_c(const uint8_t *restrict s, uint8_t *restrict d, const resize_taps *t, int dw)
{
	for (int x = 0; x < dw; x++) {
		const uint8_t *p = s + (size_t)t->first[x] * 3;
		const int16_t *w = t->w + (size_t)x * t->ksize;
		int32_t a[3] = { 1 << (PREC - 1), 1 << (PREC - 1), 1 << (PREC - 1) };
		for (int k = 0; k < t->n[x]; k++)
			for (int c = 0; c < 3; c++)
				a[c] += p[k * 3 + c] * w[k];
		for (int c = 0; c < 3; c++)
			d[x * 3 + c] = clip8(a[c]);
	}
}

#ifdef RESIZE_SSE2
/* Two rows sharing the taps. A pair of pixels p, q (6 bytes) becomes p.r q.r p.g q.g p.b q.b
 * as 16-bit lanes, so one pmaddwd weighs both taps of three channels. Stores 4 bytes a pixel
 * (the 4th is the next pixel's, rewritten next, or slack). */
static void hrow2_sse2(const uint8_t *s0, const uint8_t *s1, uint8_t *d0, uint8_t *d1,
		       const resize_taps *t, int dw)
{
	const __m128i zero = _mm_setzero_si128(), half = _mm_set1_epi32(1 << (PREC - 1));
	int np = t->np, kp = t->ksize / 2;

	for (int x = 0; x < dw; x++) {
		size_t off = (size_t)t->first[x] * 3;
		const uint8_t *p0 = s0 + off, *p1 = s1 + off;
		const int32_t *wp = t->pairs + (size_t)x * kp;
		__m128i a0 = half, a1 = half;
		for (int j = 0; j < np; j++) {
			__m128i w = _mm_set1_epi32(wp[j]);
			__m128i v0 = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(p0 + 6 * j)), zero);
			__m128i v1 = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(p1 + 6 * j)), zero);
			v0 = _mm_unpacklo_epi16(v0, _mm_srli_si128(v0, 6));
			v1 = _mm_unpacklo_epi16(v1, _mm_srli_si128(v1, 6));
			a0 = _mm_add_epi32(a0, _mm_madd_epi16(v0, w));
			a1 = _mm_add_epi32(a1, _mm_madd_epi16(v1, w));
		}
		a0 = _mm_packs_epi32(_mm_srai_epi32(a0, PREC), _mm_srai_epi32(a1, PREC));
		a0 = _mm_packus_epi16(a0, a0);
		int32_t o0 = _mm_cvtsi128_si32(a0), o1 = _mm_cvtsi128_si32(_mm_srli_si128(a0, 4));
		memcpy(d0 + x * 3, &o0, 4);
		if (d1)
			memcpy(d1 + x * 3, &o1, 4);
	}
}
#endif

#ifdef RESIZE_AVX2
/* Four rows, two in the 128-bit lanes of each of two vectors, four output pixels a round.
 * One 16-byte load per row covers four taps (pixels 0-1 and 2-3 shuffled out of it) and,
 * when no output weighs the pixel after it, a fifth: for a 2:1 to 3:1 reduction that is one
 * load per row and pixel instead of three, and each weight serves four rows, not two.
 * The four sums of a row pack to 4 x RGB0, squeezed to 12 bytes of RGB by one shuffle.
 * Inlined with the tap counts of the common reductions as constants, so the tap loop
 * unrolls and the sums stay in registers. */
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2")))
#define CTRL(a, b, c, d, e, f) _mm256_setr_epi8(a, -1, b, -1, c, -1, d, -1, e, -1, f, -1, -1, -1, -1, -1, \
						 a, -1, b, -1, c, -1, d, -1, e, -1, f, -1, -1, -1, -1, -1)
#define LOAD2(p, q, off) _mm256_inserti128_si256(_mm256_castsi128_si256(                      \
		_mm_loadu_si128((const __m128i *)((p) + (off)))), _mm_loadu_si128((const __m128i *)((q) + (off))), 1)
#define MADD(acc, v, ctrl, wj) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_shuffle_epi8(v, ctrl), wj))

/* one output pixel of four rows: *a rows 0 and 1, *b rows 2 and 3 (32-bit R G B 0 each) */
AVX2_INLINE void hpix4(const uint8_t *s0, const uint8_t *s1, const uint8_t *s2, const uint8_t *s3,
		       size_t o, const int32_t *w, int nb, int odd, int tail, __m256i *a, __m256i *b)
{
	const __m256i pa = CTRL(0, 3, 1, 4, 2, 5), pb = CTRL(6, 9, 7, 10, 8, 11), pc = CTRL(12, -1, 13, -1, 14, -1);
	__m256i ai = _mm256_set1_epi32(1 << (PREC - 1)), bi = ai, v01 = ai, v23 = ai;

	for (int k = 0; k < nb; k++) {
		__m256i w0 = _mm256_set1_epi32(w[2 * k]), w1 = _mm256_set1_epi32(w[2 * k + 1]);
		v01 = LOAD2(s0, s1, o + 12 * k);
		v23 = LOAD2(s2, s3, o + 12 * k);
		MADD(ai, v01, pa, w0);
		MADD(bi, v23, pa, w0);
		MADD(ai, v01, pb, w1);
		MADD(bi, v23, pb, w1);
	}
	if (odd) {
		__m256i wl = _mm256_set1_epi32(w[2 * nb]);
		if (tail) {
			MADD(ai, v01, pc, wl);
			MADD(bi, v23, pc, wl);
		} else {
			v01 = LOAD2(s0, s1, o + 12 * nb);
			v23 = LOAD2(s2, s3, o + 12 * nb);
			MADD(ai, v01, pa, wl);
			MADD(bi, v23, pa, wl);
		}
	}
	*a = _mm256_srai_epi32(ai, PREC);
	*b = _mm256_srai_epi32(bi, PREC);
}

AVX2_INLINE void hrow4_body(const uint8_t *const s[4], uint8_t *const d[4], const resize_taps *t,
			    int nb, int odd, int tail)
{
	const __m256i squeeze = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
						 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
	const uint8_t *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3];
	uint8_t *d0 = d[0], *d1 = d[1], *d2 = d[2], *d3 = d[3];
	const int *first = t->first;
	const int32_t *pairs = t->pairs;
	int kp = t->ksize / 2, nout = t->nout;

	for (int x = 0; x < nout; x += 4) {
		const int32_t *w = pairs + (size_t)x * kp;
		__m256i a0, a1, a2, a3, b0, b1, b2, b3;
		hpix4(s0, s1, s2, s3, (size_t)first[x] * 3, w, nb, odd, tail, &a0, &b0);
		hpix4(s0, s1, s2, s3, (size_t)first[x + 1] * 3, w + kp, nb, odd, tail, &a1, &b1);
		hpix4(s0, s1, s2, s3, (size_t)first[x + 2] * 3, w + 2 * kp, nb, odd, tail, &a2, &b2);
		hpix4(s0, s1, s2, s3, (size_t)first[x + 3] * 3, w + 3 * kp, nb, odd, tail, &a3, &b3);
		a0 = _mm256_packus_epi16(_mm256_packs_epi32(a0, a1), _mm256_packs_epi32(a2, a3));
		b0 = _mm256_packus_epi16(_mm256_packs_epi32(b0, b1), _mm256_packs_epi32(b2, b3));
		a0 = _mm256_shuffle_epi8(a0, squeeze);
		b0 = _mm256_shuffle_epi8(b0, squeeze);
		if (d0)
			_mm_storeu_si128((__m128i *)(d0 + 3 * x), _mm256_castsi256_si128(a0));
		if (d1)
			_mm_storeu_si128((__m128i *)(d1 + 3 * x), _mm256_extracti128_si256(a0, 1));
		if (d2)
			_mm_storeu_si128((__m128i *)(d2 + 3 * x), _mm256_castsi256_si128(b0));
		if (d3)
			_mm_storeu_si128((__m128i *)(d3 + 3 * x), _mm256_extracti128_si256(b0, 1));
	}
}
#undef MADD
#undef LOAD2
#undef CTRL

__attribute__((target("avx2")))
static void hrow4_avx2(const uint8_t *const s[4], uint8_t *const d[4], const resize_taps *t)
{
	int nb = t->np / 2, odd = t->np % 2, tail = odd && t->tailzero && nb > 0;

	if (nb == 1 && tail)          /* 2:1 to 3:1 reductions, pet photos to 224 */
		hrow4_body(s, d, t, 1, 1, 1);
	else if (nb == 1 && !odd)     /* up to 2:1, and enlargements */
		hrow4_body(s, d, t, 1, 0, 0);
	else if (nb == 2 && tail)
		hrow4_body(s, d, t, 2, 1, 1);
	else
		hrow4_body(s, d, t, nb, odd, tail);
}
#endif

/* rows of the source (ss bytes apart) along x into rows of mid (ds apart) */
static void hpass(const resize_stream *rs, const uint8_t *s, size_t ss, uint8_t *d, size_t ds, int rows)
{
	const resize_taps *t = &rs->tx;
	int y = 0;

#ifdef RESIZE_AVX2
	if (rs->simd >= 2) {
		for (; y < rows; y += 4) {  /* a short last group repeats its last row, unstored */
			const uint8_t *sp[4];
			uint8_t *dp[4];
			for (int i = 0; i < 4; i++) {
				int k = y + i < rows ? y + i : rows - 1;
				sp[i] = s + (size_t)k * ss;
				dp[i] = y + i < rows ? d + (size_t)k * ds : NULL;
			}
			hrow4_avx2(sp, dp, t);
		}
		return;
	}
#endif
#ifdef RESIZE_SSE2
	if (rs->simd >= 1) {
		for (; y + 1 < rows; y += 2)
			hrow2_sse2(s + y * ss, s + (y + 1) * ss, d + y * ds, d + (y + 1) * ds, t, rs->dw);
		if (y < rows)
			hrow2_sse2(s + y * ss, s + y * ss, d + y * ds, NULL, t, rs->dw);
		return;
	}
#endif
	for (; y < rows; y++)
		hrow_c(s + y * ss, d + y * ds, t, rs->dw);
}

/* --- vertical pass: n rows (s + k * ss) weighed into one row of bytes ------------------ */

static void vrow_c(const uint8_t *restrict s, size_t ss, int n, const int16_t *w,
		   uint8_t *restrict d, int x, int bytes)
{
	for (; x < bytes; x++) {
		int32_t acc = 1 << (PREC - 1);
		for (int k = 0; k < n; k++)
			acc += s[k * ss + x] * w[k];
		d[x] = clip8(acc);
	}
}

#ifdef RESIZE_SSE2
/* rows k and k+1 interleaved byte by byte, so one pmaddwd weighs both; returns bytes done */
static int vrow_sse2(const uint8_t *restrict s, size_t ss, int n, const int16_t *w,
		     uint8_t *restrict d, int x, int bytes)
{
	const __m128i zero = _mm_setzero_si128();

	for (; x + 16 <= bytes; x += 16) {
		__m128i a0 = _mm_set1_epi32(1 << (PREC - 1)), a1 = a0, a2 = a0, a3 = a0;
		for (int k = 0; k < n; k += 2) {
			int two = k + 1 < n;
			__m128i r0 = _mm_loadu_si128((const __m128i *)(s + k * ss + x));
			__m128i r1 = two ? _mm_loadu_si128((const __m128i *)(s + (k + 1) * ss + x)) : zero;
			__m128i wk = _mm_set1_epi32((int32_t)((uint32_t)(uint16_t)w[k] |
							      (two ? (uint32_t)(uint16_t)w[k + 1] << 16 : 0)));
			__m128i lo = _mm_unpacklo_epi8(r0, r1), hi = _mm_unpackhi_epi8(r0, r1);
			a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_unpacklo_epi8(lo, zero), wk));
			a1 = _mm_add_epi32(a1, _mm_madd_epi16(_mm_unpackhi_epi8(lo, zero), wk));
			a2 = _mm_add_epi32(a2, _mm_madd_epi16(_mm_unpacklo_epi8(hi, zero), wk));
			a3 = _mm_add_epi32(a3, _mm_madd_epi16(_mm_unpackhi_epi8(hi, zero), wk));
		}
		a0 = _mm_packs_epi32(_mm_srai_epi32(a0, PREC), _mm_srai_epi32(a1, PREC));
		a2 = _mm_packs_epi32(_mm_srai_epi32(a2, PREC), _mm_srai_epi32(a3, PREC));
		_mm_storeu_si128((__m128i *)(d + x), _mm_packus_epi16(a0, a2));
	}
	return x;
}
#endif

#ifdef RESIZE_AVX2
/* the same, 32 bytes a round (unpack and pack work within 128-bit lanes, so the bytes come
 * back in order); inlined with the common tap counts as constants, the rows' pointers and
 * weights set up once per row instead of once per 32 bytes */
AVX2_INLINE int vrow_avx2_n(const uint8_t *restrict s, size_t ss, int n, const int16_t *w,
			    uint8_t *restrict d, int bytes)
{
	const __m256i zero = _mm256_setzero_si256();
	__m256i wk[8];
	int x = 0, np = (n + 1) / 2;

	for (int k = 0; k < np; k++)
		wk[k] = _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)w[2 * k] |
						    (2 * k + 1 < n ? (uint32_t)(uint16_t)w[2 * k + 1] << 16 : 0)));
	for (; x + 32 <= bytes; x += 32) {
		__m256i a0 = _mm256_set1_epi32(1 << (PREC - 1)), a1 = a0, a2 = a0, a3 = a0;
		const uint8_t *p = s + x;
		for (int k = 0; k < np; k++, p += 2 * ss) {
			__m256i r0 = _mm256_loadu_si256((const __m256i *)p);
			__m256i r1 = 2 * k + 1 < n ? _mm256_loadu_si256((const __m256i *)(p + ss)) : zero;
			__m256i lo = _mm256_unpacklo_epi8(r0, r1), hi = _mm256_unpackhi_epi8(r0, r1);
			a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi8(lo, zero), wk[k]));
			a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi8(lo, zero), wk[k]));
			a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_unpacklo_epi8(hi, zero), wk[k]));
			a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_unpackhi_epi8(hi, zero), wk[k]));
		}
		a0 = _mm256_packs_epi32(_mm256_srai_epi32(a0, PREC), _mm256_srai_epi32(a1, PREC));
		a2 = _mm256_packs_epi32(_mm256_srai_epi32(a2, PREC), _mm256_srai_epi32(a3, PREC));
		_mm256_storeu_si256((__m256i *)(d + x), _mm256_packus_epi16(a0, a2));
	}
	return x;
}

__attribute__((target("avx2")))
static int vrow_avx2(const uint8_t *restrict s, size_t ss, int n, const int16_t *w,
		     uint8_t *restrict d, int bytes)
{
	switch (n) {
	case 2: return vrow_avx2_n(s, ss, 2, w, d, bytes);
	case 3: return vrow_avx2_n(s, ss, 3, w, d, bytes);
	case 4: return vrow_avx2_n(s, ss, 4, w, d, bytes);
	case 5: return vrow_avx2_n(s, ss, 5, w, d, bytes);
	case 6: return vrow_avx2_n(s, ss, 6, w, d, bytes);
	default: return n <= 16 ? vrow_avx2_n(s, ss, n, w, d, bytes) : 0;  /* else SSE2's loop */
	}
}
#endif

static void vpass(const resize_stream *rs, const uint8_t *s, int n, const int16_t *w, uint8_t *d)
{
	int x = 0, bytes = rs->dw * 3;

#ifdef RESIZE_AVX2
	if (rs->simd >= 2)
		x = vrow_avx2(s, rs->mstride, n, w, d, bytes);
#endif
#ifdef RESIZE_SSE2
	if (rs->simd >= 1)
		x = vrow_sse2(s, rs->mstride, n, w, d, x, bytes);
#endif
	vrow_c(s, rs->mstride, n, w, d, x, bytes);
}

/* --- the stream ------------------------------------------------------------------------- */

void resize_stream_init(resize_stream *rs)
{
	memset(rs, 0, sizeof *rs);
#ifdef RESIZE_SSE2
	rs->simd = 1;
#endif
#ifdef RESIZE_AVX2
	if (simd_avx2())
		rs->simd = 2;
#endif
}

void resize_stream_free(resize_stream *rs)
{
	taps_free(&rs->tx);
	taps_free(&rs->ty);
	free(rs->in);
	free(rs->mid);
	rs->in = rs->mid = NULL;
	rs->in_cap = rs->mid_cap = 0;
}

/* *buf holds at least bytes, growing (contents lost) when it must */
static int reserve(uint8_t **buf, size_t *cap, size_t bytes, char *err)
{
	if (*cap >= bytes)
		return 0;
	free(*buf);
	*cap = 0;
	/* calloc: the slack SIMD loads read at zero weight is never uninitialised memory */
	if (!(*buf = calloc(bytes, 1)))
		return err_set(err, "resize: out of memory");
	*cap = bytes;
	return 0;
}

int resize_stream_start(resize_stream *rs, int sw, int sh, const double box[4], uint8_t *dst,
			size_t dstride, int dw, int dh, char *err)
{
	if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
		return err_set(err, "resize: empty image (%dx%d to %dx%d)", sw, sh, dw, dh);
	if (!(box[0] >= 0 && box[1] >= 0 && box[2] <= sw && box[3] <= sh && box[2] > box[0] && box[3] > box[1]))
		return err_set(err, "resize: box outside the %dx%d image", sw, sh);
	if (sw > (1 << 24) || dw > (1 << 24))
		return err_set(err, "resize: %d or %d pixels too wide", sw, dw);
	rs->sw = sw;
	rs->sh = sh;
	rs->dw = dw;
	rs->dh = dh;
	rs->dst = dst;
	rs->dstride = dstride;
	rs->got = rs->next = 0;
	rs->need_h = dw != sw || box[0] != 0 || box[2] != sw;
	rs->need_v = dh != sh || box[1] != 0 || box[3] != sh;
	if (rs->need_h && taps_make(&rs->tx, sw, box[0], box[2], dw, err) < 0)
		return -1;
	if (rs->need_v && taps_make(&rs->ty, sh, box[1], box[3], dh, err) < 0)
		return -1;
	rs->row0 = 0;
	rs->rows = sh;
	if (rs->need_v) {  /* only the source rows the vertical taps reach go through pass 1 */
		int end = 0;
		for (int y = 0; y < dh; y++)
			if (rs->ty.first[y] + rs->ty.n[y] > end)
				end = rs->ty.first[y] + rs->ty.n[y];
		rs->row0 = rs->ty.first[0];
		rs->rows = end - rs->row0;
	}
	rs->istride = (size_t)sw * 3 + (rs->need_h ? (size_t)rs->tx.ksize * 3 : 0) + SLACK;
	rs->mstride = (size_t)dw * 3 + SLACK;
	if ((size_t)rs->rows > SIZE_MAX / rs->mstride)
		return err_set(err, "resize: %dx%d too large", dw, rs->rows);
	if (reserve(&rs->in, &rs->in_cap, CHUNK * rs->istride, err) < 0 ||
	    reserve(&rs->mid, &rs->mid_cap, (size_t)rs->rows * rs->mstride, err) < 0)
		return -1;
	return 0;
}

uint8_t *resize_stream_room(resize_stream *rs, int *max, size_t *stride)
{
	*max = CHUNK;
	*stride = rs->istride;
	return rs->in;
}

void resize_stream_push(resize_stream *rs, int n)
{
	int end = rs->row0 + rs->rows, y0 = rs->got;

	assert(n >= 0 && n <= CHUNK && rs->got + n <= rs->sh);
	/* the rows of this push that reach the output */
	int i0 = rs->row0 > y0 ? rs->row0 - y0 : 0, i1 = end - y0 < n ? end - y0 : n;
	if (i1 > i0) {
		const uint8_t *s = rs->in + (size_t)i0 * rs->istride;
		uint8_t *d = rs->mid + (size_t)(y0 + i0 - rs->row0) * rs->mstride;
		if (rs->need_h)
			hpass(rs, s, rs->istride, d, rs->mstride, i1 - i0);
		else
			for (int i = 0; i < i1 - i0; i++)
				memcpy(d + i * rs->mstride, s + i * rs->istride, (size_t)rs->dw * 3);
	}
	rs->got += n;
	for (; rs->next < rs->dh; rs->next++) {
		int y = rs->next;
		uint8_t *d = rs->dst + (size_t)y * rs->dstride;
		if (!rs->need_v) {
			if (y >= rs->got)
				break;
			memcpy(d, rs->mid + (size_t)y * rs->mstride, (size_t)rs->dw * 3);
			continue;
		}
		if (rs->ty.first[y] + rs->ty.n[y] > rs->got)
			break;
		vpass(rs, rs->mid + (size_t)(rs->ty.first[y] - rs->row0) * rs->mstride, rs->ty.n[y],
		      rs->ty.w + (size_t)y * rs->ty.ksize, d);
	}
}

/* --- whole images ------------------------------------------------------------------------ */

/* src rows of bpp-byte pixels (RGB or RGBX) through a stream */
static int resize_whole(const uint8_t *src, int bpp, int sw, int sh, const double box[4],
			uint8_t *dst, size_t dstride, int dw, int dh, char *err)
{
	resize_stream rs;
	int r;

	resize_stream_init(&rs);
	r = resize_stream_start(&rs, sw, sh, box, dst, dstride, dw, dh, err);
	for (int y = 0; r == 0 && y < sh;) {
		int max, n;
		size_t stride;
		uint8_t *room = resize_stream_room(&rs, &max, &stride);
		n = sh - y < max ? sh - y : max;
		for (int i = 0; i < n; i++) {
			const uint8_t *s = src + ((size_t)(y + i) * sw) * bpp;
			uint8_t *d = room + i * stride;
			if (bpp == 3)
				memcpy(d, s, (size_t)sw * 3);
			else
				for (int x = 0; x < sw; x++)
					memcpy(d + x * 3, s + x * 4, 3);
		}
		resize_stream_push(&rs, n);
		y += n;
	}
	resize_stream_free(&rs);
	return r;
}

int resize_box(const uint8_t *src, int sw, int sh, const double box[4], uint8_t *dst,
	       int dstride, int dw, int dh, char *err)
{
	return resize_whole(src, 4, sw, sh, box, dst, (size_t)dstride, dw, dh, err);
}

static int resize_fit_whole(const uint8_t *src, int bpp, int sw, int sh, uint8_t *dst, int tw,
			    int th, enum resize_fit fit, char *err)
{
	resize_plan p;

	if (sw <= 0 || sh <= 0 || tw <= 0 || th <= 0)
		return err_set(err, "resize: empty image (%dx%d to %dx%d)", sw, sh, tw, th);
	resize_plan_fit(&p, sw, sh, tw, th, fit);
	if (fit == RESIZE_PAD)
		memset(dst, 0, (size_t)tw * th * 3);
	return resize_whole(src, bpp, sw, sh, p.box, dst + ((size_t)p.dy * tw + p.dx) * 3,
			    (size_t)tw * 3, p.dw, p.dh, err);
}

int resize_rgbx(const uint8_t *src, int sw, int sh, uint8_t *dst, int tw, int th,
		enum resize_fit fit, char *err)
{
	return resize_fit_whole(src, 4, sw, sh, dst, tw, th, fit, err);
}

int resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int tw, int th,
	       enum resize_fit fit, char *err)
{
	return resize_fit_whole(src, 3, sw, sh, dst, tw, th, fit, err);
}
