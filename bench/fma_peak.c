/* fma_peak: the machine's single-precision FMA peak, each factor found rather than taken
 * from a data sheet: cores x clock x lanes x FMA units x 2 (an FMA is two FLOPs).
 *   cores     the CPUs this process may run on (sched_getaffinity, as nproc)
 *   clock     a timed chain of dependent integer adds (one cycle each on every x86-64
 *             since the Pentium Pro), cross-checked by a dependent FMA chain whose
 *             latency in cycles is printed (4 on Zen and on Intel since Skylake)
 *   lanes     16 floats when the CPU has AVX-512F (cpuid, as lscpu's flags), 8 with AVX2+FMA
 *   FMA units independent FMAs of that width retired per cycle, measured with 12 chains
 *             (enough to cover 4 cycles of latency on 2 units), rounded to a whole number
 * Every timing is the best of several trials, so a shared machine reads the least
 * disturbed one. Prints 'key value' lines; 'peak1' (one core) and 'peak' (all) last.
 * Usage: fma_peak [SECONDS]   (built by bench/run; x86-64 with gcc or clang) */
#define _GNU_SOURCE
#include <immintrin.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* n x 32 dependent adds: the asm keeps the compiler from folding them */
static void add_chain(long n)
{
	long x = 0;

	for (long i = 0; i < n; i++)
		__asm__ volatile(".rept 32\n\tadd $1, %0\n\t.endr" : "+r"(x));
}

#define REP8(s) s s s s s s s s

__attribute__((target("avx2,fma"))) static float fma_dep256(long n)
{
	__m256 a = _mm256_set1_ps(1.0f), b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);

	for (long i = 0; i < n; i++) {
		REP8(a = _mm256_fmadd_ps(a, b, c); __asm__ volatile("" : "+x"(a));)
	}
	return _mm256_cvtss_f32(a);
}

/* 12 independent chains in registers (an array would go through memory) */
#define CHAINS(T, FMA, K)                                                                   \
	T a0 = K(0), a1 = K(1), a2 = K(2), a3 = K(3), a4 = K(4), a5 = K(5), a6 = K(6),     \
	  a7 = K(7), a8 = K(8), a9 = K(9), a10 = K(10), a11 = K(11), b = K(0.999f),          \
	  c = K(1e-3f);                                                                     \
	for (long i = 0; i < n; i++) {                                                      \
		a0 = FMA(a0, b, c), a1 = FMA(a1, b, c), a2 = FMA(a2, b, c), a3 = FMA(a3, b, c); \
		a4 = FMA(a4, b, c), a5 = FMA(a5, b, c), a6 = FMA(a6, b, c), a7 = FMA(a7, b, c); \
		a8 = FMA(a8, b, c), a9 = FMA(a9, b, c), a10 = FMA(a10, b, c);                    \
		a11 = FMA(a11, b, c);                                                          \
	}                                                                                   \
	a0 += a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11

__attribute__((target("avx2,fma"))) static float fma_ind256(long n)
{
	CHAINS(__m256, _mm256_fmadd_ps, _mm256_set1_ps);
	return _mm256_cvtss_f32(a0);
}

__attribute__((target("avx512f"))) static float fma_ind512(long n)
{
	CHAINS(__m512, _mm512_fmadd_ps, _mm512_set1_ps);
	return _mm512_reduce_add_ps(a0);
}

static volatile float sink;

/* Best seconds per call of kernel which with n iterations, over 7 trials. */
static double best_time(int which, long n)
{
	double best = 1e30;

	for (int t = 0; t < 7; t++) {
		double t0 = now(), el;

		switch (which) {
		case 0: add_chain(n); break;
		case 1: sink = fma_dep256(n); break;
		case 2: sink = fma_ind256(n); break;
		default: sink = fma_ind512(n); break;
		}
		el = now() - t0;
		if (el < best)
			best = el;
	}
	return best;
}

int main(int argc, char **argv)
{
	double trial = argc > 1 ? strtod(argv[1], NULL) / 20 : 0.05;
	long n = 1 << 20;
	cpu_set_t set;
	int cores, avx512, fma, lanes, units;
	double hz, lat, per_cycle;

	__builtin_cpu_init();
	avx512 = __builtin_cpu_supports("avx512f");
	fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (!fma) {
		printf("isa none (no AVX2+FMA: no FMA peak measured)\n");
		return 0;
	}
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return 1;
	cores = CPU_COUNT(&set);
	lanes = avx512 ? 16 : 8;
	/* the clock: 32 adds of one cycle per iteration; n grown until a trial lasts long
	 * enough to time, then every kernel runs about 32 n cycles' worth */
	hz = 32.0 * n / best_time(0, n);
	for (; 32.0 * n / hz < trial; n *= 2)
		;
	hz = 32.0 * n / best_time(0, n);
	lat = best_time(1, 4 * n) * hz / (8.0 * 4 * n);
	per_cycle = 12.0 * 4 * n / (best_time(avx512 ? 3 : 2, 4 * n) * hz);
	units = (int)(per_cycle + 0.5);
	if (units < 1)
		units = 1;
	printf("isa %s\n", avx512 ? "avx512f" : "avx2+fma");
	printf("cores %d\n", cores);
	printf("clock_ghz %.2f\n", hz / 1e9);
	printf("fma_latency_cycles %.1f\n", lat);
	printf("lanes %d\n", lanes);
	printf("fma_per_cycle %.2f\n", per_cycle);
	printf("fma_units %d\n", units);
	printf("peak1 %.1f\n", hz / 1e9 * lanes * units * 2);
	printf("peak %.1f\n", cores * hz / 1e9 * lanes * units * 2);
	return ferror(stdout) || fclose(stdout) ? 1 : 0;
}
