/* fpmode: the floating-point mode a thread computes in; ours flush denormal numbers to zero,
 * since x86 cores take a slow microcode assist on each operation that meets one. */
#ifndef PETCNN_FPMODE_H
#define PETCNN_FPMODE_H

/* The calling thread's mode as one word (x86's MXCSR's control bits; 0 where there is none). */
unsigned fpmode_get(void);

/* Makes mode (from fpmode_get) the calling thread's: par's workers take their caller's
 * this way at each call, so a result does not depend on which thread computed it. */
void fpmode_set(unsigned mode);

/* 1 when the calling thread flushes denormal results and inputs to zero. */
int fpmode_flushing(void);

/* The calling thread flushes denormal results and inputs to zero from now on (x86's FTZ
 * and DAZ), as TensorFlow's threads and PyTorch's set_flush_denormal do. A gradient whose
 * softmax is near certain of an image is ~1e-40 all the way down the backward pass: a step
 * of the seed network at 224 took 1.0 s where it takes 0.25 s flushed, on a 2-core Intel
 * Xeon (AVX-512; the AMD EPYCs not measured). Results differ only below 1.2e-38.
 * OpenBLAS's workers, started before main with the default mode, are stopped so that its
 * next threaded call starts them afresh from the caller, in its mode (once: a thread
 * already flushing returns). */
void fpmode_flush_denormals(void);

#endif
