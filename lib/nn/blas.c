/* blas: living beside OpenBLAS: its own worker threads when our kernels run threads of
 * their own, and the core its CPU detection picked. */
#include "nn/blas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/isa.h"

/* OpenBLAS's pthread build (0.3.x) exports these; its OpenMP and serial builds do not the
 * first, other BLAS libraries neither, hence weak: absent, they are NULL. */
extern int blas_thread_shutdown_(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));

void blas_park(void)
{
	/* After a GEMM, OpenBLAS's workers spin for about 2^28 cycles (~0.1 s) awaiting the
	 * next one, and OPENBLAS_THREAD_TIMEOUT is read only when the library loads. On two
	 * cores a spinner halves whatever thread of ours lands on its core (fc1 forward at
	 * 128x128, threads 2: 18 -> 10 ms, Adam: 58 -> 39 ms). Stopping the workers costs a
	 * thread start at the next threaded GEMM, tens of microseconds. */
	if (blas_thread_shutdown_)
		blas_thread_shutdown_();
}

const char *blas_core(void)
{
	return openblas_get_corename ? openblas_get_corename() : "not OpenBLAS";
}

/* The core blas_better_core judges: OpenBLAS's, or for tests PETCNN_BLAS_CORE's. */
static const char *judged_core(void)
{
	const char *test = getenv("PETCNN_BLAS_CORE");

	return test && *test ? test : blas_core();
}

/* OpenBLAS's x86-64 cores without AVX2 and FMA (its dynamic.c's names): what its
 * detection falls back to on a CPU model it does not know (Prescott, mostly). */
static const char *const narrow[] = {
	"Unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2",
	"Penryn", "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona",
	"Nano", "Bobcat", "Sandybridge", "Bulldozer", "Piledriver", "Steamroller",
};

const char *blas_better_core(void)
{
	const char *core = judged_core(), *set = getenv("OPENBLAS_CORETYPE");
	size_t i = 0;

	if (!openblas_get_corename || (set && *set))
		return NULL;    /* not OpenBLAS, or a core the user chose */
	while (i < sizeof narrow / sizeof *narrow && strcasecmp(core, narrow[i]))
		i++;
	if (i == sizeof narrow / sizeof *narrow)
		return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512cd"))
		return "SkylakeX";
#endif
	return isa_supported(ISA_AVX2) ? "Haswell" : NULL;
}

void blas_use_machine(const char *prog, char **argv)
{
	const char *core = blas_better_core();

	if (!core)
		return;
	fprintf(stderr, "%s: OpenBLAS chose its %s core, which leaves this CPU's %s vectors unused: "
		"running again with OPENBLAS_CORETYPE=%s (set OPENBLAS_CORETYPE to choose)\n", prog,
		judged_core(), strcmp(core, "SkylakeX") ? "AVX2" : "AVX-512", core);
	if (setenv("OPENBLAS_CORETYPE", core, 1) == 0)
		execv("/proc/self/exe", argv);
	/* no exec: go on with the core OpenBLAS chose */
	unsetenv("OPENBLAS_CORETYPE");
}
