/* convwino: Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions, 4x fewer multiplies: the
 * forward (weights transformed once per set, 36 GEMMs on transformed tiles), the dw. */
#ifndef PETCNN_CONVWINO_H
#define PETCNN_CONVWINO_H

#include <stddef.h>

#include "nn/geom.h"
#include "nn/isa.h"

/* Whether g can run here on isa: a 3x3 window, stride 1, one group, cin and cout multiples
 * of 16, any pads; on AVX-512 or AVX2 (which this CPU must have; both give the same bits). */
int convwino_fits(const geom *g, isa_kind isa);

/* Whether g has the shape convwino_fits asks for, whatever the CPU: what scratch is sized
 * by, so that no CPU's answer can leave too little. */
int convwino_shape(const geom *g);

/* Floats of the transformed weights convwino_pack writes: 36 x cin x cout. */
size_t convwino_weights(const geom *g);

/* u [convwino_weights(g)] = the weights w [3, 3, cin, cout] transformed (G w G^T per input
 * and output channel) and laid out for convwino_forward. Once per set of weights. On isa's
 * vectors (plain C where the CPU lacks it), the same bits on each. */
void convwino_pack(const geom *g, float *u, const float *w, int threads, isa_kind isa);

/* Floats of scratch convwino_forward needs with that many threads: each thread's block of
 * transformed input tiles and of their products, or one larger block the threads share
 * (layers with many channels; at most ~8 MB). */
size_t convwino_workspace(const geom *g, int threads);

/* out [B, oh, ow, cout] = conv(in [B, h, w, cin]) by the weights u packs, + b (NULL: none),
 * then the activation relu (enum vec_act). Each output is computed alone in one fixed
 * order: the same bits whatever the thread count. Results differ from the direct sum by
 * rounding (the transforms), within ~2e-6 of the sum of the terms' magnitudes. */
void convwino_forward(const geom *g, float *out, const float *in, const float *u,
		      const float *b, int relu, int B, int threads, float *ws, isa_kind isa);

/* out = the same convolution (no bias, no activation), then +0 wherever the activation
 * kact (VEC_RELU, VEC_RELU6) whose output was keep [B, oh, ow, cout] stops the gradient:
 * an input gradient through it, as vec_act_backward after convwino_forward gives it, in
 * one pass. */
void convwino_forward_keep(const geom *g, float *out, const float *in, const float *u,
			   const float *keep, int kact, int B, int threads, float *ws, isa_kind isa);

/* Floats of scratch convwino_wgrad needs, with any number of threads: the transformed
 * sums (36 x cin x cout) and one chunk of tiles the threads share (~8 MB). */
size_t convwino_wgrad_workspace(const geom *g);

/* Whether convwino_wgrad beats the direct kernels on g at batch B: not for a few tiles of
 * many channels (ResNet-18's 7x7x512 at batch 2). */
int convwino_wgrad_wins(const geom *g, int B);

/* dw [3, 3, cin, cout] = (acc: dw +) the sum over the batch of in's windows times dout
 * [B, oh, ow, cout], and db [cout] likewise the sum of dout (NULL: skip), as
 * convdirect_wgrad gives them a rounding apart (F(3x3, 4x4): 4x fewer multiplies). Each
 * sum runs in one fixed order: the same bits for any thread count, on AVX2 and AVX-512. */
void convwino_wgrad(const geom *g, float *dw, float *db, const float *dout, const float *in, int B,
		    int acc, int threads, float *ws, isa_kind isa);

#endif
