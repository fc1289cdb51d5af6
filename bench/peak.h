/* peak: the loops that measure this CPU's clock and FMA peak, for bench/fma_peak.c and
 * bench/conv_bench.c alike (x86-64, gcc or clang; include after the feature macros).
 *   clock      a chain of dependent integer adds of a register: one cycle each on every
 *              x86-64 core (adds of an immediate are not: Intel since Golden Cove folds
 *              them at rename, several a cycle, which read a 4.2 GHz Xeon as 23 GHz)
 *   latency    a chain of dependent 8-lane FMAs, in cycles once the clock is known
 *   throughput 12 independent FMA chains of 8 or 16 lanes, in registers: enough to cover
 *              4 cycles of latency on 2 units, the most any core we know needs
 * Each is timed over the calling thread's CPU time, not the wall clock: on a machine
 * shared with other jobs their turns on the core do not count against us. */
#ifndef PETCNN_BENCH_PEAK_H
#define PETCNN_BENCH_PEAK_H

#include <immintrin.h>
#include <time.h>

enum peak_kind {
	PEAK_ADD,      /* dependent integer adds */
	PEAK_FMA_DEP,  /* dependent 8-lane FMAs (counted as FMAs, not FLOPs) */
	PEAK_FMA8,     /* independent 8-lane FMAs, in FLOPs (2 per lane) */
	PEAK_FMA16,    /* independent 16-lane FMAs, in FLOPs */
};

/* n x 32 dependent adds: the asm keeps the compiler from folding them; step, n itself,
 * is a register the core cannot know at rename */
__attribute__((noinline)) static long peak_add_chain(long n)
{
	long x = 0, step = n;

	for (long i = 0; i < n; i++)
		__asm__ volatile(".rept 32\n\tadd %1, %0\n\t.endr" : "+r"(x) : "r"(step));
	return x;
}

#define PEAK_REP8(s) s s s s s s s s

/* n x 8 dependent FMAs: the empty asm keeps each result in its register */
__attribute__((target("avx2,fma"), noinline)) static float peak_fma_dep(long n)
{
	__m256 a = _mm256_set1_ps(1.0f), b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);

	for (long i = 0; i < n; i++) {
		PEAK_REP8(a = _mm256_fmadd_ps(a, b, c); __asm__ volatile("" : "+x"(a));)
	}
	return _mm256_cvtss_f32(a);
}

/* n x 12 independent FMAs: twelve named accumulators, not an array, which would be kept
 * in memory with each FMA then waiting on a store */
#define PEAK_FMA12(T, set1, fma, add)                                                      \
	T m = set1(0.999999f), c = set1(1e-7f), a0 = set1(0), a1 = set1(1), a2 = set1(2),   \
	  a3 = set1(3), a4 = set1(4), a5 = set1(5), a6 = set1(6), a7 = set1(7), a8 = set1(8), \
	  a9 = set1(9), a10 = set1(10), a11 = set1(11);                                      \
	for (long i = 0; i < n; i++) {                                                     \
		a0 = fma(a0, m, c), a1 = fma(a1, m, c), a2 = fma(a2, m, c);                  \
		a3 = fma(a3, m, c), a4 = fma(a4, m, c), a5 = fma(a5, m, c);                  \
		a6 = fma(a6, m, c), a7 = fma(a7, m, c), a8 = fma(a8, m, c);                  \
		a9 = fma(a9, m, c), a10 = fma(a10, m, c), a11 = fma(a11, m, c);              \
	}                                                                                  \
	a0 = add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7)));             \
	a0 = add(a0, add(add(a8, a9), add(a10, a11)))

__attribute__((target("avx2,fma"), noinline)) static float peak_fma8(long n)
{
	PEAK_FMA12(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps);
	return _mm256_cvtss_f32(a0);
}

__attribute__((target("avx512f"), noinline)) static float peak_fma16(long n)
{
	PEAK_FMA12(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps);
	return _mm512_cvtss_f32(a0);
}

static inline double peak_thread_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs kind for n iterations on the calling thread: its operations (see peak_kind) per
 * second of this thread's CPU time. */
static inline double peak_rate_once(enum peak_kind kind, long n)
{
	double t0 = peak_thread_seconds(), ops;
	float r;

	switch (kind) {
	case PEAK_ADD: r = (float)peak_add_chain(n), ops = 32.0 * n; break;
	case PEAK_FMA_DEP: r = peak_fma_dep(n), ops = 8.0 * n; break;
	case PEAK_FMA8: r = peak_fma8(n), ops = 12.0 * 2 * 8 * n; break;
	default: r = peak_fma16(n), ops = 12.0 * 2 * 16 * n; break;
	}
	/* the result used, so that no call is dropped as having no effect */
	__asm__ volatile("" : : "x"(r));
	return ops / (peak_thread_seconds() - t0);
}

#endif
