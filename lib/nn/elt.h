/* elt: the pointwise and channel layers of a graph network: sum, clip (ReLU6), leaky ReLU,
 * per-channel affine (a batch norm with fixed statistics) and channel concatenation. */
#ifndef PETCNN_ELT_H
#define PETCNN_ELT_H

#include <stddef.h>

/* n: element count; rows: B*h*w of an NHWC tensor; c: its channels (the last axis).
 * Every function gives the same bits on every CPU path and, elt_add and elt_act_backward,
 * for any threads;
 * the others are single-threaded. */

/* out [n] = a [n] + b [n], then ReLU if relu (out may be a or b), on up to threads. */
void elt_add(float *out, const float *a, const float *b, size_t n, int relu, int threads);

/* dx [n] = dy where the activation act (VEC_RELU, VEC_RELU6) let y [n] through (0 < y,
 * and y < 6), else 0 (dx may be dy): vec_relu_backward's and vec_relu6_backward's bits,
 * on up to threads. */
void elt_act_backward(float *dx, const float *dy, const float *y, size_t n, int act, int threads);

/* y [n] = min(max(x [n], lo), hi) (y may be x; a NaN stays NaN). */
void elt_clip_forward(float *y, const float *x, size_t n, float lo, float hi);
/* dx [n] = dy [n] where lo < x [n] < hi, else 0 (PyTorch's hardtanh, ReLU6), x the
 * forward's input; an infinite bound never blocks, so lo 0, hi +inf is our ReLU exactly.
 * dx may be dy. */
void elt_clip_backward(float *dx, const float *dy, const float *x, size_t n, float lo, float hi);

/* y [n] = x where x > 0, else alpha * x (y may be x). */
void elt_leaky_forward(float *y, const float *x, size_t n, float alpha);
/* dx [n] = dy where x > 0, else alpha * dy (x the forward's input; dx may be dy). */
void elt_leaky_backward(float *dx, const float *dy, const float *x, size_t n, float alpha);

/* y [rows, c] = x [rows, c] * scale [c] + shift [c], then ReLU if relu (y may be x). */
void elt_affine_forward(float *y, const float *x, const float *scale, const float *shift,
			size_t rows, int c, int relu);
/* From dy [rows, c], the gradient at the affine's output (a fused ReLU's backward already
 * applied): dx [rows, c] = dy * scale (NULL: skip; dx may be dy), dscale [c] = the sum over
 * rows of dy * x and dshift [c] = the sum over rows of dy (NULL: frozen, skip), added to
 * what they hold if acc, else stored. Sums in double, rows in order. */
void elt_affine_backward(float *dx, float *dscale, float *dshift, const float *dy,
			 const float *x, const float *scale, size_t rows, int c, int acc);

/* out [rows, cout] channels off..off+cin-1 = in [rows, cin]; the other channels untouched. */
void elt_concat_forward(float *out, const float *in, size_t rows, int cin, int cout, int off);
/* din [rows, cin] = dout [rows, cout] channels off..off+cin-1 (overwritten). */
void elt_concat_backward(float *din, const float *dout, size_t rows, int cin, int cout, int off);

#endif
