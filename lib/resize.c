/* resize: separable antialiased resampling of 8-bit RGB. See resize.h.
 * Works on 4-byte pixels (RGBX) with 14-bit integer weights, so SSE2's pmaddwd does two taps
 * of four channels at once; the portable loops compute the very same integers, so the bytes
 * out never depend on the machine. */
#include "resize.h"

#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define RESIZE_SSE2 1
#endif

#define PREC 14  /* weight bits: weights <= 1 fit int16, 255 * 2^14 * 1 fits int32 */

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

/* Taps of one axis: output i reads first[i] .. first[i] + n[i] - 1 with weights
 * w[i * ksize ..] in fixed point summing to about 1 << PREC (zero-padded to ksize). */
typedef struct {
	int ksize;
	int *first, *n;
	int16_t *w;
	int32_t *pairs;  /* w[2j] | w[2j+1] << 16 for pmaddwd, ksize / 2 per output */
} taps;

static void taps_free(taps *t)
{
	free(t->first);
	free(t->n);
	free(t->w);
	free(t->pairs);
}

static double triangle(double x)
{
	x = fabs(x);
	return x < 1 ? 1 - x : 0;
}

/* Pillow's coefficients: centre of output i at in0 + (i + 0.5) * scale, a triangle of
 * half-width max(1, scale) source pixels, normalised to sum 1. */
static int taps_init(taps *t, int insize, double in0, double in1, int outsize, char *err)
{
	double scale = (in1 - in0) / outsize, fscale = scale < 1 ? 1 : scale;
	double support = fscale, inv = 1.0 / fscale;
	double *tmp;

	memset(t, 0, sizeof *t);
	t->ksize = (int)ceil(support) * 2 + 2;  /* +1 for the centre, +1 to pad to pairs */
	if ((size_t)outsize > SIZE_MAX / sizeof(int16_t) / (size_t)t->ksize)
		return err_set(err, "resize: %d x %d taps overflow", outsize, t->ksize);
	t->first = malloc(sizeof(int) * (size_t)outsize);
	t->n = malloc(sizeof(int) * (size_t)outsize);
	t->w = calloc((size_t)outsize * t->ksize, sizeof(int16_t));
	t->pairs = malloc(sizeof(int32_t) * (size_t)outsize * (t->ksize / 2));
	tmp = malloc(sizeof(double) * (size_t)t->ksize);
	if (!t->first || !t->n || !t->w || !t->pairs || !tmp) {
		free(tmp);
		taps_free(t);
		return err_set(err, "resize: out of memory");
	}
	for (int i = 0; i < outsize; i++) {
		double center = in0 + (i + 0.5) * scale, sum = 0;
		int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
		if (lo < 0)
			lo = 0;
		if (hi > insize)
			hi = insize;
		if (hi - lo > t->ksize)
			hi = lo + t->ksize;
		for (int k = 0; k < hi - lo; k++)
			sum += tmp[k] = triangle((k + lo - center + 0.5) * inv);
		for (int k = 0; k < hi - lo; k++) {
			double v = sum != 0 ? tmp[k] / sum : 0;
			t->w[(size_t)i * t->ksize + k] = (int16_t)(0.5 + v * (1 << PREC));  /* v in [0, 1] */
		}
		t->first[i] = lo;
		/* an odd count takes one more (zero-weight) pixel when there is one, so the SIMD
		 * loops run on whole pairs: adding zero changes no result */
		t->n[i] = hi - lo + ((hi - lo) % 2 && hi < insize && hi - lo < t->ksize);
		for (int j = 0; j < t->ksize / 2; j++) {
			const int16_t *w = t->w + (size_t)i * t->ksize + 2 * j;
			t->pairs[(size_t)i * (t->ksize / 2) + j] = (int32_t)((uint32_t)(uint16_t)w[0] | (uint32_t)(uint16_t)w[1] << 16);
		}
	}
	free(tmp);
	return 0;
}

static inline uint8_t clip8(int32_t v)
{
	v >>= PREC;
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

#ifdef RESIZE_SSE2
/* One output pixel of two rows s0, s1 (same taps): results packed as 8 bytes, s0's first. */
static inline __m128i hpix2(const uint8_t *s0, const uint8_t *s1, int n, const int32_t *wp)
{
	const __m128i zero = _mm_setzero_si128();
	__m128i a0 = _mm_set1_epi32(1 << (PREC - 1)), a1 = a0;
	int k = 0;

	for (; k + 1 < n; k += 2) {  /* pixels k, k+1 as r0 r1 g0 g1 b0 b1 x0 x1 */
		__m128i w = _mm_set1_epi32(wp[k / 2]);
		__m128i v0 = _mm_loadl_epi64((const __m128i *)(s0 + k * 4));
		__m128i v1 = _mm_loadl_epi64((const __m128i *)(s1 + k * 4));
		v0 = _mm_unpacklo_epi8(_mm_unpacklo_epi8(v0, _mm_srli_si128(v0, 4)), zero);
		v1 = _mm_unpacklo_epi8(_mm_unpacklo_epi8(v1, _mm_srli_si128(v1, 4)), zero);
		a0 = _mm_add_epi32(a0, _mm_madd_epi16(v0, w));
		a1 = _mm_add_epi32(a1, _mm_madd_epi16(v1, w));
	}
	if (k < n) {  /* an odd last tap at the right edge: its pair's second weight is zero */
		__m128i w = _mm_set1_epi32(wp[k / 2]);
		int32_t p0, p1;
		memcpy(&p0, s0 + k * 4, 4);
		memcpy(&p1, s1 + k * 4, 4);
		__m128i v0 = _mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(p0), zero), zero);
		__m128i v1 = _mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(p1), zero), zero);
		a0 = _mm_add_epi32(a0, _mm_madd_epi16(v0, w));
		a1 = _mm_add_epi32(a1, _mm_madd_epi16(v1, w));
	}
	a0 = _mm_packs_epi32(_mm_srai_epi32(a0, PREC), _mm_srai_epi32(a1, PREC));
	return _mm_packus_epi16(a0, a0);
}
#endif

/* rows of RGBX src (stride sstride) -> rows of RGBX dst, resampled along x; two rows at a
 * time so the taps' bookkeeping is shared */
static void pass_h(const uint8_t *restrict src, size_t sstride, int rows, uint8_t *restrict dst,
		   const taps *t, int dw)
{
	for (int y = 0; y < rows; y += 2) {
		const uint8_t *s0 = src + y * sstride, *s1 = y + 1 < rows ? s0 + sstride : s0;
		uint8_t *d0 = dst + (size_t)y * dw * 4, *d1 = d0 + (size_t)dw * 4;
		for (int x = 0; x < dw; x++) {
			size_t off = (size_t)t->first[x] * 4;
			int n = t->n[x];
#ifdef RESIZE_SSE2
			__m128i r = hpix2(s0 + off, s1 + off, n, t->pairs + (size_t)x * (t->ksize / 2));
			int32_t o0 = _mm_cvtsi128_si32(r), o1 = _mm_cvtsi128_si32(_mm_srli_si128(r, 4));
			memcpy(d0 + x * 4, &o0, 4);
			if (y + 1 < rows)
				memcpy(d1 + x * 4, &o1, 4);
#else
			const int16_t *w = t->w + (size_t)x * t->ksize;
			for (int r = 0; r < 2 && y + r < rows; r++) {
				const uint8_t *p = (r ? s1 : s0) + off;
				int32_t a[4] = { 1 << (PREC - 1), 1 << (PREC - 1), 1 << (PREC - 1), 1 << (PREC - 1) };
				for (int k = 0; k < n; k++)
					for (int c = 0; c < 4; c++)
						a[c] += p[k * 4 + c] * w[k];
				for (int c = 0; c < 4; c++)
					(r ? d1 : d0)[x * 4 + c] = clip8(a[c]);
			}
#endif
		}
	}
}

/* One output row from n source rows (rows[k] = s + k * sstride) and weights w, over bytes. */
static void vrow(const uint8_t *restrict s, size_t sstride, int n, const int16_t *w,
		 uint8_t *restrict d, int bytes)
{
	int x = 0;
#ifdef RESIZE_SSE2
	const __m128i zero = _mm_setzero_si128();
	for (; x + 16 <= bytes; x += 16) {
		__m128i a0 = _mm_set1_epi32(1 << (PREC - 1)), a1 = a0, a2 = a0, a3 = a0;
		int k = 0;
		for (; k < n; k += 2) {  /* rows k and k+1 interleaved: (r_k, r_k+1) pairs */
			__m128i r0 = _mm_loadu_si128((const __m128i *)(s + k * sstride + x));
			__m128i r1 = k + 1 < n ? _mm_loadu_si128((const __m128i *)(s + (k + 1) * sstride + x)) : zero;
			__m128i wk = _mm_set1_epi32((uint16_t)w[k] | (k + 1 < n ? (int32_t)w[k + 1] << 16 : 0));
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
#endif
	for (; x < bytes; x++) {
		int32_t acc = 1 << (PREC - 1);
		for (int k = 0; k < n; k++)
			acc += s[k * sstride + x] * w[k];
		d[x] = clip8(acc);
	}
}

/* RGBX row -> RGB row */
static void to_rgb(const uint8_t *restrict s, uint8_t *restrict d, int w)
{
	for (int x = 0; x < w; x++)
		memcpy(d + x * 3, s + x * 4, 3);
}

int resize_box(const uint8_t *src, int sw, int sh, const double box[4], uint8_t *dst,
	       int dstride, int dw, int dh, char *err)
{
	taps tx, ty;
	uint8_t *mid = NULL, *row = NULL;
	int ok = 1, need_h, need_v, row0, rows;
	size_t sstride = (size_t)sw * 4;

	if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
		return err_set(err, "resize: empty image (%dx%d to %dx%d)", sw, sh, dw, dh);
	if (!(box[0] >= 0 && box[1] >= 0 && box[2] <= sw && box[3] <= sh && box[2] > box[0] && box[3] > box[1]))
		return err_set(err, "resize: box outside the %dx%d image", sw, sh);
	need_h = dw != sw || box[0] != 0 || box[2] != sw;
	need_v = dh != sh || box[1] != 0 || box[3] != sh;
	if (!need_h && !need_v) {
		for (int y = 0; y < dh; y++)
			to_rgb(src + y * sstride, dst + (size_t)y * dstride, sw);
		return 0;
	}
	if (taps_init(&tx, sw, box[0], box[2], dw, err) < 0)
		return -1;
	if (taps_init(&ty, sh, box[1], box[3], dh, err) < 0) {
		taps_free(&tx);
		return -1;
	}
	/* only the source rows the vertical taps reach go through the horizontal pass */
	row0 = need_v ? ty.first[0] : 0;
	rows = need_v ? ty.first[dh - 1] + ty.n[dh - 1] - row0 : dh;
	if ((need_h && !(mid = malloc((size_t)rows * dw * 4))) || !(row = malloc((size_t)dw * 4))) {
		ok = 0;
		err_set(err, "resize: out of memory");
	} else {
		const uint8_t *v = src + (size_t)row0 * sstride;
		size_t vstride = sstride;
		if (need_h) {
			pass_h(v, sstride, rows, mid, &tx, dw);
			v = mid;
			vstride = (size_t)dw * 4;
		}
		for (int y = 0; y < dh; y++) {
			if (need_v)
				vrow(v + (size_t)(ty.first[y] - row0) * vstride, vstride, ty.n[y],
				     ty.w + (size_t)y * ty.ksize, row, dw * 4);
			to_rgb(need_v ? row : v + y * vstride, dst + (size_t)y * dstride, dw);
		}
	}
	taps_free(&tx);
	taps_free(&ty);
	free(mid);
	free(row);
	return ok ? 0 : -1;
}

int resize_rgbx(const uint8_t *src, int sw, int sh, uint8_t *dst, int tw, int th,
		enum resize_fit fit, char *err)
{
	double box[4] = { 0, 0, sw, sh };
	int dw = tw, dh = th, dx = 0, dy = 0;

	if (sw <= 0 || sh <= 0 || tw <= 0 || th <= 0)
		return err_set(err, "resize: empty image (%dx%d to %dx%d)", sw, sh, tw, th);
	if (fit == RESIZE_CROP) {
		/* the largest centred box of the target's aspect ratio */
		double s = fmax((double)tw / sw, (double)th / sh), bw = tw / s, bh = th / s;
		box[0] = (sw - bw) / 2;
		box[1] = (sh - bh) / 2;
		box[2] = box[0] + bw;
		box[3] = box[1] + bh;
		box[0] = fmax(box[0], 0);
		box[1] = fmax(box[1], 0);
		box[2] = fmin(box[2], sw);
		box[3] = fmin(box[3], sh);
	} else if (fit == RESIZE_PAD) {
		double s = fmin((double)tw / sw, (double)th / sh);
		dw = (int)lround(sw * s);
		dh = (int)lround(sh * s);
		dw = dw < 1 ? 1 : dw > tw ? tw : dw;
		dh = dh < 1 ? 1 : dh > th ? th : dh;
		dx = (tw - dw) / 2;
		dy = (th - dh) / 2;
		memset(dst, 0, (size_t)tw * th * 3);
	}
	return resize_box(src, sw, sh, box, dst + ((size_t)dy * tw + dx) * 3, tw * 3, dw, dh, err);
}

int resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int tw, int th,
	       enum resize_fit fit, char *err)
{
	uint8_t *x;
	int r;

	if (sw <= 0 || sh <= 0 || (size_t)sw * sh > SIZE_MAX / 4)
		return err_set(err, "resize: bad source size %dx%d", sw, sh);
	if (!(x = malloc((size_t)sw * sh * 4)))
		return err_set(err, "resize: out of memory");
	for (size_t i = 0, n = (size_t)sw * sh; i < n; i++) {
		memcpy(x + i * 4, src + i * 3, 3);
		x[i * 4 + 3] = 255;
	}
	r = resize_rgbx(x, sw, sh, dst, tw, th, fit, err);
	free(x);
	return r;
}
