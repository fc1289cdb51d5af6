/* blas: living beside OpenBLAS's own worker threads when our kernels run threads of their
 * own. */
#ifndef PETCNN_BLAS_H
#define PETCNN_BLAS_H

/* Stops OpenBLAS's idle worker threads (they restart with the next threaded GEMM), so
 * threads of our own get the cores; call before such a phase. No-op without them. */
void blas_park(void);

#endif
