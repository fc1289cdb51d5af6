/* rng: xoshiro256** seeded by splitmix64; small, fast, and well studied.
 * Every consumer draws from its own rng_stream so adding a draw elsewhere changes nothing. */
#include "rng.h"

#include <math.h>

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
