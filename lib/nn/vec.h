/* vec: the float loops the layers share (sums, bias and ReLU, ReLU's backward), SSE by
 * hand: -O2 leaves loops of unknown length scalar. */
#ifndef PETCNN_VEC_H
#define PETCNN_VEC_H

#include <stddef.h>

/* y [n] += x [n] */
void vec_add(float *restrict y, const float *restrict x, long n);
/* db [n] += the sum of the rows of d [rows, n] (in row order) */
void vec_sum_rows(float *db, const float *d, long rows, int n);
/* out [rows, n] += b [n] (NULL: none), then ReLU if relu: one pass over freshly computed
 * outputs, still in cache. */
void vec_bias_relu(float *out, const float *b, long rows, int n, int relu);
/* dx [n] = dy [n] where y [n] > 0, else 0 (y is the ReLU's output; dx may be dy). */
void vec_relu_backward(float *dx, const float *dy, const float *y, size_t n);

#endif
