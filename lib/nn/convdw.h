/* convdw: depthwise convolution (groups == input channels, each input channel feeding its
 * own cout/cin outputs) as direct loops on NHWC batches; conv2d routes such layers here. */
#ifndef PETCNN_CONVDW_H
#define PETCNN_CONVDW_H

#include "nn/geom.h"
#include "nn/isa.h"

/* Whether g is depthwise: more than one group, as many as input channels. */
int convdw_fits(const geom *g);

/* out [B, oh, ow, cout] = the depthwise conv of in [B, h, w, cin] by w [kh, kw, 1, cout]
 * (output channel o reads input channel o / (cout/cin)) + b [cout] (NULL: none), then
 * the activation act (enum vec_act: none, ReLU, ReLU6). Output rows split over threads;
 * same bits for any number, and on any isa (AVX-512 holds 32 channels, AVX2 16, SSE 8;
 * each lane multiplies then adds alike). */
void convdw_forward(const geom *g, float *out, const float *in, const float *w, const float *b,
		    int B, int act, int threads, isa_kind isa);

/* Given dout [B, oh, ow, cout]: dw [kh, kw, 1, cout] and db [cout] (NULL: skip) summed over
 * the batch (added to them if acc), din [B, h, w, cin] (NULL: skip) set, then zeroed where
 * the activation relu_act (VEC_RELU, VEC_RELU6) whose output was relu_y [B, h, w, cin]
 * (NULL: none) stops the gradient. Each sum runs in one fixed order: input rows
 * (din) and parts of dw split over threads give the same bits for any number, and on any
 * isa (its vectors multiply then add per lane as the scalar loops do). */
void convdw_backward(const geom *g, float *din, float *dw, float *db, const float *dout,
		     const float *in, const float *w, const float *relu_y, int relu_act, int B,
		     int acc, int threads, isa_kind isa);

#endif
