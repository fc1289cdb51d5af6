/* par: the one way our kernels use threads: n workers, each told its index, the caller
 * being worker 0; workers that cannot start run on the caller, so the work always completes. */
#ifndef PETCNN_PAR_H
#define PETCNN_PAR_H

#define PAR_MAX_THREADS 64

/* Calls fn(ctx, k, n) for every k in [0, n) (n clamped to 1..PAR_MAX_THREADS), k > 0 on
 * threads of their own, and returns when all have returned. */
void par_run(int n, void (*fn)(void *ctx, int k, int n), void *ctx);

/* The k-th of n contiguous shares of [0, total): [*lo, *hi). */
void par_share(long total, int k, int n, long *lo, long *hi);

#endif
