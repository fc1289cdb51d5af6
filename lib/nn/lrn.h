/* lrn: local response normalisation across channels as ONNX defines it (AlexNet's and
 * GoogLeNet's LRN), forward and its exact gradient, on NHWC rows. */
#ifndef PETCNN_LRN_H
#define PETCNN_LRN_H

#include <stddef.h>

/* For each of rows (B*h*w) and channel i of c: sq = the sum of x^2 over channels
 * max(0, i - floor((size-1)/2)) .. min(c-1, i + ceil((size-1)/2)), den = bias +
 * alpha/size * sq, y = x * den^-beta. PyTorch's local_response_norm centres an even
 * window the other way (i - size/2 .. i + (size-1)/2): it equals this on channels in
 * reverse order. y [rows, c] (not x), den [rows, c] kept for the backward, x [rows, c];
 * size >= 1 (it may exceed c). Window sums in double; single-threaded, and SSE or not,
 * the same bits. */
void lrn_forward(float *y, float *den, const float *x, size_t rows, int c, int size,
		 float alpha, float beta, float bias);
/* dx [rows, c] (not dy) from dy, x, y and den [rows, c] of the forward:
 * dx_i = dy_i den_i^-beta - 2 alpha beta / size * x_i * (the sum over the channels j whose
 * window holds i of dy_j y_j / den_j). bias is not needed (den holds it); it is taken so
 * both calls read alike. */
void lrn_backward(float *dx, const float *dy, const float *x, const float *y,
		  const float *den, size_t rows, int c, int size, float alpha, float beta,
		  float bias);

#endif
