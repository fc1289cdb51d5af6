/* dropout: inverted dropout, its mask drawn from four generators side by side. */
#include "nn/dropout.h"

#include <limits.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Random values per chunk of dropout: a multiple of 8 (rng_x4's round), small enough for L1. */
#define DROPOUT_CHUNK 1024

/* Kept elements of xc [len] (their coins uc [len] below thr) times scale, the others 0,
 * and the mask mc [len]. */
static void apply_coins(float *xc, uint8_t *mc, const uint32_t *uc, size_t len, uint32_t thr,
			float scale)
{
	size_t i = 0;
#if defined(__SSE2__)
	/* unsigned u < thr as a signed compare of both shifted by 2^31 */
	__m128i bias = _mm_set1_epi32(INT32_MIN), vt = _mm_xor_si128(_mm_set1_epi32((int)thr), bias);
	__m128i one = _mm_set1_epi8(1);
	__m128 vs = _mm_set1_ps(scale);

	for (; i + 16 <= len; i += 16) {
		__m128i k[4];

		for (int h = 0; h < 4; h++) {
			__m128i v = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(uc + i + 4 * h)), bias);

			k[h] = _mm_cmplt_epi32(v, vt);
			_mm_storeu_ps(xc + i + 4 * h, _mm_and_ps(_mm_castsi128_ps(k[h]),
								 _mm_mul_ps(_mm_loadu_ps(xc + i + 4 * h), vs)));
		}
		__m128i b = _mm_packs_epi16(_mm_packs_epi32(k[0], k[1]), _mm_packs_epi32(k[2], k[3]));

		_mm_storeu_si128((__m128i *)(mc + i), _mm_and_si128(b, one));
	}
#endif
	for (; i < len; i++) {
		mc[i] = uc[i] < thr;
		xc[i] = mc[i] ? xc[i] * scale : 0.0f;
	}
}

/* Each element's coin is a 32-bit value below keep * 2^32, from four generators run side
 * by side (rng_x4: one vector step gives 8 coins) seeded by four draws of r: ~10x faster
 * than a 64-bit draw per element, and the same masks for a seed on any CPU. */
void dropout_forward(float *x, uint8_t *mask, size_t n, float keep, rng *r)
{
	dropout_forward_part(x, mask, n, 0, n, keep, r);
}

/* The coins are made in the chunks of a draw over all total elements (rng_x4_u32's
 * rounds depend on the lengths asked for), those before lo made and passed over: the
 * part's mask has the bits of the whole draw's. */
void dropout_forward_part(float *x, uint8_t *mask, size_t total, size_t lo, size_t n,
			  float keep, rng *r)
{
	float scale = 1.0f / keep;
	double t = keep > 0.0f ? (double)keep * 4294967296.0 : 0.0;
	uint32_t u[DROPOUT_CHUNK], thr = (uint32_t)t;
	rng_x4 q;

	if (keep >= 1.0f) {
		memset(mask, 1, n);
		return;
	}
	rng_x4_init(&q, r);
	for (size_t c = 0; c < lo + n; c += DROPOUT_CHUNK) {
		size_t len = total - c < DROPOUT_CHUNK ? total - c : DROPOUT_CHUNK;
		size_t a = c > lo ? c : lo, b = c + len < lo + n ? c + len : lo + n;

		rng_x4_u32(&q, u, len);
		if (a < b)
			apply_coins(x + (a - lo), mask + (a - lo), u + (a - c), b - a, thr, scale);
	}
}

void dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n, float keep)
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
