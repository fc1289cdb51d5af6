/* conv: direct convolution for stride-1 NHWC layers whose output channels are a multiple
 * of 8: AVX2+FMA register tiles, no im2col; nn uses it where it fits, GEMMs elsewhere. */
#ifndef PETCNN_CONV_H
#define PETCNN_CONV_H

#include <stddef.h>

#include "nn/nn.h"

/* Whether the direct kernels serve g on this CPU: stride 1, cout a multiple of 8, AVX2
 * and FMA present, not a 1x1 (a plain GEMM already does that best). */
int conv_fits(const nn_geom *g);

/* Floats of scratch conv_forward needs with that many threads: each thread's zero-padded
 * copy of the input rows it reads. */
size_t conv_forward_workspace(const nn_geom *g, int threads);

/* out [B, oh, ow, cout] = conv(in [B, h, w, cin], w [kh, kw, cin, cout]) + b (NULL: none),
 * then ReLU if relu, then zero where mask [B, oh, ow, cout] <= 0 (NULL: no mask). Every
 * output is summed in one fixed order: the same bits whatever the thread count. */
void conv_forward(const nn_geom *g, float *out, const float *in, const float *w,
		  const float *b, int relu, const float *mask, int B, int threads, float *ws);

/* dw [kh, kw, cin, cout] = (acc: dw +) the sum over the batch of in's windows times
 * dout [B, oh, ow, cout], and db [cout] likewise the sum of dout (NULL: skip); threads
 * take disjoint parts of dw and db, so the bits do not depend on their number. Needs no
 * scratch. */
void conv_wgrad(const nn_geom *g, float *dw, float *db, const float *dout, const float *in,
		int B, int acc, int threads);

#endif
