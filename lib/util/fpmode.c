/* fpmode: the floating-point mode a thread computes in; ours flush denormal numbers to zero,
 * since x86 cores take a slow microcode assist on each operation that meets one. */
#include "util/fpmode.h"

#if defined(__SSE__)
#include <xmmintrin.h>
#define FLUSH_BITS 0x8040u /* MXCSR's FTZ (bit 15) and DAZ (bit 6) */
#define FLAG_BITS 0x3fu    /* its sticky exception flags: a thread's own, not its mode */
#endif

/* OpenBLAS's own (pthreads build): joins its workers; its next threaded call starts them
 * again. Weak: another BLAS, or OpenBLAS built with OpenMP, has none, and keeps its mode. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

unsigned fpmode_get(void)
{
#if defined(__SSE__)
	return _mm_getcsr() & ~FLAG_BITS;
#else
	return 0;
#endif
}

void fpmode_set(unsigned mode)
{
#if defined(__SSE__)
	unsigned csr = _mm_getcsr();

	if ((csr & ~FLAG_BITS) != mode)
		_mm_setcsr((csr & FLAG_BITS) | (mode & ~FLAG_BITS));
#else
	(void)mode;
#endif
}

int fpmode_flushing(void)
{
#if defined(__SSE__)
	return (_mm_getcsr() & FLUSH_BITS) == FLUSH_BITS;
#else
	return 0;
#endif
}

void fpmode_flush_denormals(void)
{
#if defined(__SSE__)
	if (fpmode_flushing())
		return;
	_mm_setcsr(_mm_getcsr() | FLUSH_BITS);
	if (blas_thread_shutdown_)
		blas_thread_shutdown_();
#endif
}
