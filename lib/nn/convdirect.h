/* convdirect: direct convolution for NHWC layers whose output channels are a multiple of 8:
 * AVX2+FMA or AVX-512 register tiles, no im2col; conv2d uses it where it fits. Stride 1
 * (not 1x1) forward and weight gradient on both; the forward of any stride and of 1x1s
 * too on both, by tiles that run across rows (see convdirect.c, "the plane path"), and the
 * weight gradient of 1x1s. */
#ifndef PETCNN_CONVDIRECT_H
#define PETCNN_CONVDIRECT_H

#include <stddef.h>

#include "nn/geom.h"
#include "nn/isa.h"

/* Whether the direct kernels serve g on the path isa (AVX2 or AVX-512, which this CPU
 * must have): stride 1, cout a multiple of 8, not a 1x1 (a plain GEMM already does that
 * best), one group. Any pads (asymmetric, or past k-1, even negative): reads are bounded by
 * the input. The kernels below run on isa's registers; asked for AVX-512 on a CPU without it,
 * they run AVX2's. Both give the same bits: the tiles differ, each sum's order does not. */
int convdirect_fits(const geom *g, isa_kind isa);

/* Whether convdirect_forward serves g on isa: what convdirect_fits says, and on AVX2 or
 * AVX-512 (what this CPU has of them) any stride and 1x1s too (cout a multiple of 8, one
 * group), by the plane kernels; convdirect_wgrad still needs convdirect_fits. */
int convdirect_forward_fits(const geom *g, isa_kind isa);

/* Floats of scratch convdirect_forward needs with that many threads on any path: the
 * repacked weights and each thread's zero-padded copy of the input rows it reads. */
size_t convdirect_workspace(const geom *g, int threads);

/* out [B, oh, ow, cout] = conv(in [B, h, w, cin], w [kh, kw, cin, cout]) + b (NULL: none),
 * then the activation relu (0 none, 1 ReLU, 2 ReLU6: clipped to [0, 6]), then zero where
 * the activation mact (VEC_RELU, VEC_RELU6) whose output was mask [B, oh, ow, cout] (NULL:
 * none) stops a gradient: a transposed convolution's din through the activation below.
 * Every output is summed in one fixed order: the same bits whatever the thread count. */
void convdirect_forward(const geom *g, float *out, const float *in, const float *w,
			const float *b, int relu, const float *mask, int mact, int B, int threads,
			float *ws, isa_kind isa);

/* convdirect_forward in two parts, for weights that serve many forwards (inference, a
 * frozen layer): the floats of w laid out for g's kernels on isa (0: they read w as it
 * is), convdirect_pack's layout of them (on up to threads threads), and the forward on it
 * (pw: w itself where the count is 0), ws as convdirect_forward's. The same bits. */
size_t convdirect_packed_floats(const geom *g, isa_kind isa);
void convdirect_pack(const geom *g, float *pw, const float *w, int threads, isa_kind isa);
void convdirect_forward_packed(const geom *g, float *out, const float *in, const float *pw,
			       const float *b, int relu, const float *mask, int mact, int B,
			       int threads, float *ws, isa_kind isa);

/* Whether convdirect_wgrad takes g on isa by a window row's taps at once, strides too: a
 * first layer's few input channels (cin < 4) on AVX-512, and on AVX2 a strided one's with
 * cout a multiple of 8. */
int convdirect_wgrad_taps(const geom *g, isa_kind isa);

/* dw [kh, kw, cin, cout] = (acc: dw +) the sum over the batch of in's windows times
 * dout [B, oh, ow, cout], and db [cout] likewise the sum of dout (NULL: skip); threads
 * take disjoint parts of dw and db, so the bits do not depend on their number. Needs no
 * scratch. g: what convdirect_fits takes, what convdirect_wgrad_taps does, any unpadded
 * 1x1 of stride 1 and cout a multiple of 8 (conv2d's pointwise layers, and a padded 1x1's
 * im2col rows), or any strided layer with cout a multiple of 8 and one group. Each sum
 * runs over the pixels in order (images, rows, columns), on every path: the same bits. */
void convdirect_wgrad(const geom *g, float *dw, float *db, const float *dout, const float *in,
		      int B, int acc, int threads, isa_kind isa);

#endif
