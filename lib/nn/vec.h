/* vec: the float loops the layers share (sums, bias and activation, the activations'
 * backward), SSE by hand: -O2 leaves loops of unknown length scalar. */
#ifndef PETCNN_VEC_H
#define PETCNN_VEC_H

#include <stddef.h>

/* The activation a layer fuses into its forward (an int argument named act or relu). */
enum vec_act {
	VEC_LINEAR = 0,
	VEC_RELU = 1,           /* max(x, 0) */
	VEC_RELU6 = 2,          /* min(max(x, 0), 6): MobileNetV2's Clip(0, 6) */
};

/* y [n] += x [n] */
void vec_add(float *restrict y, const float *restrict x, long n);
/* db [n] += the sum of the rows of d [rows, n] (in row order) */
void vec_sum_rows(float *db, const float *d, long rows, int n);
/* out [rows, n] += b [n] (NULL: none), then the activation act (enum vec_act): one pass
 * over freshly computed outputs, still in cache. */
void vec_bias_relu(float *out, const float *b, long rows, int n, int act);
/* dx [n] = dy [n] where y [n] > 0, else 0 (y is the ReLU's output; dx may be dy). */
void vec_relu_backward(float *dx, const float *dy, const float *y, size_t n);
/* dx [n] = dy [n] where 0 < y [n] < 6, else 0 (y is the ReLU6's output; dx may be dy):
 * a clipped output does not move with its input. */
void vec_relu6_backward(float *dx, const float *dy, const float *y, size_t n);
/* The one of the two for the activation act (VEC_RELU, VEC_RELU6). */
void vec_act_backward(float *dx, const float *dy, const float *y, size_t n, int act);

#endif
