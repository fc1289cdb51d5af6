/* rng: the one seeded PRNG behind every random choice (xoshiro256** by Blackman and Vigna,
 * state filled by splitmix64 from the --seed), so the same seed gives the same bytes. */
#ifndef PETCNN_RNG_H
#define PETCNN_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint64_t s[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
/* An independent stream for a purpose (shuffle, dropout, init, a thread...): the same
 * (seed, stream) pair always gives the same sequence, whatever else drew numbers. */
void rng_stream(rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_u64(rng *r);
/* Uniform in [0, n), unbiased (Lemire's multiply-and-reject); n > 0. */
uint64_t rng_below(rng *r, uint64_t n);
/* Uniform in [0, 1) with 53 (double) or 24 (float) random bits. */
double rng_uniform(rng *r);
float rng_uniformf(rng *r);
/* Standard normal (Box-Muller, one value per call, no hidden cache). */
double rng_normal(rng *r);
/* TensorFlow's truncated_normal: normal(0, stddev) redrawn while beyond 2 stddev. */
double rng_trunc_normal(rng *r, double stddev);
/* Fisher-Yates shuffle of n int64 indices. */
void rng_shuffle_i64(rng *r, int64_t *a, size_t n);

/* Four xoshiro256** generators side by side, for bulk draws (dropout masks) that a vector
 * unit makes four at a time, with the same values on any CPU. */
typedef struct {
	uint64_t s[4][4];  /* [state word][lane] */
	int avx2;          /* rounds by AVX2 (simd_avx2), else portable C: the same values */
} rng_x4;

/* Lane k is the generator rng_seed would make from the k-th of four draws of r. */
void rng_x4_init(rng_x4 *q, rng *r);
/* out [n] = uniform 32-bit values. A round draws once from each lane in order and gives
 * 8 values: lane 0's low and high halves, then lane 1's, ... A call takes ceil(n/8)
 * rounds (the extra values of the last one are discarded), so calls of multiples of 8
 * continue one sequence. */
void rng_x4_u32(rng_x4 *q, uint32_t *out, size_t n);

#endif
