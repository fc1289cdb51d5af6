/* rng: xoshiro256** seeded by splitmix64; small, fast, and well studied.
 * Every consumer draws from its own rng_stream so adding a draw elsewhere changes nothing. */
#include "util/rng.h"

#include "util/simd.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RNG_AVX2 __attribute__((target("avx2")))
#endif

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void rng_seed(rng *r, uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

void rng_stream(rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = stream;

	rng_seed(r, seed ^ splitmix64(&x));
}

uint64_t rng_u64(rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

uint64_t rng_below(rng *r, uint64_t n)
{
	unsigned __int128 m = (unsigned __int128)rng_u64(r) * n;
	uint64_t lo = (uint64_t)m;

	if (lo < n) {
		uint64_t t = -n % n;

		while (lo < t) {
			m = (unsigned __int128)rng_u64(r) * n;
			lo = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

double rng_uniform(rng *r)
{
	return (double)(rng_u64(r) >> 11) * 0x1.0p-53;
}

float rng_uniformf(rng *r)
{
	return (float)(rng_u64(r) >> 40) * 0x1.0p-24f;
}

double rng_normal(rng *r)
{
	double u1 = 1.0 - rng_uniform(r); /* (0, 1]: log stays finite */
	double u2 = rng_uniform(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double rng_trunc_normal(rng *r, double stddev)
{
	double x;

	do
		x = rng_normal(r);
	while (fabs(x) > 2.0);
	return x * stddev;
}

void rng_shuffle_i64(rng *r, int64_t *a, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(r, i);
		int64_t t = a[i - 1];

		a[i - 1] = a[j];
		a[j] = t;
	}
}

void rng_x4_init(rng_x4 *q, rng *r)
{
	for (int k = 0; k < 4; k++) {
		rng lane;

		rng_seed(&lane, rng_u64(r));
		for (int w = 0; w < 4; w++)
			q->s[w][k] = lane.s[w];
	}
	q->avx2 = simd_avx2();
}

/* rounds x 8 values; rng_u64's steps, lane by lane */
static void x4_rounds(rng_x4 *q, uint32_t *out, size_t rounds)
{
	for (size_t i = 0; i < rounds; i++)
		for (int k = 0; k < 4; k++) {
			rng lane = { { q->s[0][k], q->s[1][k], q->s[2][k], q->s[3][k] } };
			uint64_t v = rng_u64(&lane);

			out[8 * i + 2 * k] = (uint32_t)v;
			out[8 * i + 2 * k + 1] = (uint32_t)(v >> 32);
			for (int w = 0; w < 4; w++)
				q->s[w][k] = lane.s[w];
		}
}

#ifdef RNG_AVX2
RNG_AVX2 static __m256i rotl4(__m256i x, int k)
{
	return _mm256_or_si256(_mm256_slli_epi64(x, k), _mm256_srli_epi64(x, 64 - k));
}

/* The same steps on the four lanes at once; AVX2 has no 64-bit multiply, but *5 and *9
 * are a shift and an add. Stored little-endian, a lane's value is its low then high half. */
RNG_AVX2 static void x4_rounds_avx2(rng_x4 *q, uint32_t *out, size_t rounds)
{
	__m256i s0 = _mm256_loadu_si256((const __m256i *)q->s[0]);
	__m256i s1 = _mm256_loadu_si256((const __m256i *)q->s[1]);
	__m256i s2 = _mm256_loadu_si256((const __m256i *)q->s[2]);
	__m256i s3 = _mm256_loadu_si256((const __m256i *)q->s[3]);

	for (size_t i = 0; i < rounds; i++) {
		__m256i x = _mm256_add_epi64(s1, _mm256_slli_epi64(s1, 2));
		__m256i t = _mm256_slli_epi64(s1, 17);

		x = rotl4(x, 7);
		_mm256_storeu_si256((__m256i *)(out + 8 * i), _mm256_add_epi64(x, _mm256_slli_epi64(x, 3)));
		s2 = _mm256_xor_si256(s2, s0);
		s3 = _mm256_xor_si256(s3, s1);
		s1 = _mm256_xor_si256(s1, s2);
		s0 = _mm256_xor_si256(s0, s3);
		s2 = _mm256_xor_si256(s2, t);
		s3 = rotl4(s3, 45);
	}
	_mm256_storeu_si256((__m256i *)q->s[0], s0);
	_mm256_storeu_si256((__m256i *)q->s[1], s1);
	_mm256_storeu_si256((__m256i *)q->s[2], s2);
	_mm256_storeu_si256((__m256i *)q->s[3], s3);
}
#endif

void rng_x4_u32(rng_x4 *q, uint32_t *out, size_t n)
{
	void (*rounds)(rng_x4 *, uint32_t *, size_t) = x4_rounds;
	uint32_t last[8];

#ifdef RNG_AVX2
	if (q->avx2)
		rounds = x4_rounds_avx2;
#endif
	rounds(q, out, n / 8);
	if (n % 8) {
		rounds(q, last, 1);
		memcpy(out + n / 8 * 8, last, sizeof *last * (n % 8));
	}
}
