/* blas: living beside OpenBLAS's own worker threads when our kernels run threads of their
 * own. */
#include "nn/blas.h"

/* OpenBLAS's pthread build (0.3.x) exports this; its OpenMP and serial builds do not,
 * hence weak: absent, it is NULL and blas_park does nothing. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

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
