/* fma_peak: the machine's single-precision FMA peak, each factor found rather than taken
 * from a data sheet: cores x clock x lanes x FMA units x 2 (an FMA is two FLOPs).
 *   cores     the CPUs this process may run on (sched_getaffinity, as nproc)
 *   clock     a timed chain of dependent integer adds of a register (one cycle each on x86-64
 *             since the Pentium Pro), cross-checked by a dependent FMA chain whose
 *             latency in cycles is printed (4 on Zen and on Intel since Skylake)
 *   lanes     16 floats when the CPU has AVX-512F (cpuid, as lscpu's flags), 8 with AVX2+FMA
 *   FMA units independent FMAs of that width retired per cycle, measured with 12 chains
 *             (enough to cover 4 cycles of latency on 2 units), rounded to a whole number
 * The loops are bench/peak.h's (conv_bench's too), each timed over this thread's CPU time
 * and the best of several trials taken, so a shared machine reads the least disturbed one.
 * Prints 'key value' lines; 'peak1' (one core) and 'peak' (all) last.
 * Usage: fma_peak [SECONDS]   (built by bench/run; x86-64 with gcc or clang) */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "peak.h"

/* The best rate of kind with n iterations, over 7 trials. */
static double best_rate(enum peak_kind kind, long n)
{
	double best = 0;

	for (int t = 0; t < 7; t++) {
		double r = peak_rate_once(kind, n);

		best = r > best ? r : best;
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
	hz = best_rate(PEAK_ADD, n);
	for (; 32.0 * n / hz < trial; n *= 2)
		;
	hz = best_rate(PEAK_ADD, n);
	lat = hz / best_rate(PEAK_FMA_DEP, 4 * n);
	per_cycle = best_rate(avx512 ? PEAK_FMA16 : PEAK_FMA8, 4 * n) / (2.0 * lanes) / hz;
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
