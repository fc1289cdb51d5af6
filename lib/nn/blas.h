/* blas: living beside OpenBLAS: its own worker threads when our kernels run threads of
 * their own, and the core its CPU detection picked. */
#ifndef PETCNN_BLAS_H
#define PETCNN_BLAS_H

/* Stops OpenBLAS's idle worker threads (they restart with the next threaded GEMM), so
 * threads of our own get the cores; call before such a phase. No-op without them. */
void blas_park(void);

/* The core OpenBLAS chose when it loaded ("Haswell", "SkylakeX", "Prescott", ...; "not
 * OpenBLAS" for another BLAS). */
const char *blas_core(void);

/* The core to ask OpenBLAS for instead (OPENBLAS_CORETYPE), or NULL: when it chose one
 * (or PETCNN_BLAS_CORE, for tests, names one)
 * without AVX2 (its detection falls back to Prescott on CPU models it does not know, as
 * Debian's 0.3.21 does on new Xeons) on a CPU with AVX-512 ("SkylakeX") or AVX2 and FMA
 * ("Haswell"), and OPENBLAS_CORETYPE is unset (a core the user chose stays). */
const char *blas_better_core(void);

/* With blas_better_core: says so on stderr and runs this program again (argv, before
 * anything is read) with OPENBLAS_CORETYPE set, read by OpenBLAS only as it loads. Returns
 * when there is nothing to do, or the exec failed (then OpenBLAS's core stays). */
void blas_use_machine(const char *prog, char **argv);

#endif
