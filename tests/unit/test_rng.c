/* Unit tests for lib/rng's bulk generators: rng_x4 against four ordinary generators, value
 * for value, on each path this CPU has (AVX2, and portable C as PETCNN_ISA=generic asks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util/rng.h"
#include "util/simd.h"

/* Lane k is rng_seed(k-th draw of r); a round is lane 0's low, high halves, lane 1's, ...;
 * calls of multiples of 8 continue the sequence, a tail discards the rest of its round. */
static void x4_lanes(const char *path)
{
	enum { N = 8 * 300 };
	uint32_t *got = malloc(sizeof *got * (N + 8)), want[N + 8];
	rng r, r2, lane[4];
	rng_x4 q;
	int bad = 0;

	rng_stream(&r, 9, 4), rng_stream(&r2, 9, 4);
	rng_x4_init(&q, &r);
	CHECK(q.avx2 == simd_avx2(), "%s: init takes simd_avx2's path (%d)", path, q.avx2);
	for (int k = 0; k < 4; k++)
		rng_seed(&lane[k], rng_u64(&r2));
	CHECK(!memcmp(&r, &r2, sizeof r), "init draws four values from r");
	for (int i = 0; i < N + 8; i += 8)
		for (int k = 0; k < 4; k++) {
			uint64_t v = rng_u64(&lane[k]);

			want[i + 2 * k] = (uint32_t)v, want[i + 2 * k + 1] = (uint32_t)(v >> 32);
		}
	rng_x4_u32(&q, got, 8);
	rng_x4_u32(&q, got + 8, 1000);
	rng_x4_u32(&q, got + 1008, N - 1008 - 3);  /* ends 3 short of a round */
	rng_x4_u32(&q, got + N - 3, 5);             /* the next round's first 5 */
	for (int i = 0; i < N - 3; i++)
		bad += got[i] != want[i];
	for (int i = 0; i < 5; i++)
		bad += got[N - 3 + i] != want[N + i];
	CHECK(bad == 0, "rng_x4 %s: %d of %d values differ from the four scalar lanes", path, bad, N + 2);

	/* roughly uniform: the mean of 2400 values within 5 sd of 2^31 */
	double s = 0;

	for (int i = 0; i < N; i++)
		s += got[i];
	CHECK(fabs(s / N / 4294967296.0 - 0.5) < 5 * 0.2887 / sqrt(N), "rng_x4 mean %.4f", s / N / 4294967296.0);
	free(got);
}

/* The same values on every path: each against the scalar lanes. */
static void test_x4_lanes(void)
{
	unsetenv("PETCNN_ISA");
	if (simd_avx2())
		x4_lanes("avx2");
	else
		printf("test_rng: the avx2 path was not tested: this CPU lacks it\n");
	setenv("PETCNN_ISA", "generic", 1);
	CHECK(!simd_avx2(), "PETCNN_ISA=generic: no AVX2 loop");
	x4_lanes("generic");
	unsetenv("PETCNN_ISA");
}

int main(void)
{
	test_x4_lanes();
	return check_done("test_rng");
}
