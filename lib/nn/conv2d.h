/* conv2d: the convolution layer, forward and backward, on NHWC float32 batches; weights
 * TensorFlow's HWIO [kh, kw, cin/groups, cout]. Any geom (SAME/VALID, explicit pads, groups):
 * convdirect's kernels where they fit, convdw's for depthwise layers, else sgemm. */
#ifndef PETCNN_CONV2D_H
#define PETCNN_CONV2D_H

#include <stddef.h>

#include "nn/geom.h"
#include "nn/isa.h"

/* What one layer runs on, decided once: the kernels for g on isa, the input gradient's
 * turned convolution, and the scratch they need with threads. */
typedef enum { CONV2D_SGEMM, CONV2D_POINTWISE, CONV2D_DIRECT, CONV2D_DEPTHWISE, CONV2D_GROUPED } conv2d_kind;
typedef struct {
	geom g;                 /* the layer's window */
	geom t;                 /* stride 1, one group (has_t): din's turned convolution */
	isa_kind isa;
	int threads;            /* our own workers (convdirect, convdw) */
	conv2d_kind kind;       /* the weight gradient's kernels, and the forward's unless: */
	int fwd_direct;         /* the forward on convdirect (its plane kernels take strides
				 * and 1x1s on AVX2 and AVX-512, where the backward stays on
				 * sgemm but for a pointwise layer's: */
	int has_t, din_direct;  /* din by the turned convolution, on convdirect */
	int dw_direct;          /* a pointwise layer's dw and db on convdirect_wgrad (and
				 * its din on convdirect where the turned 1x1 fits) */
	int dw_cols;            /* an sgemm layer's dw by convdirect_wgrad on im2col rows
				 * (where its forward is on convdirect: cout a multiple of 8) */
	int dw_taps;            /* ... or on the layer itself, a first layer's few channels
				 * (convdirect_wgrad_taps: strided too) */
	int dw_strided;         /* ... or on the layer itself, a strided one's (no im2col;
				 * dw_cols then stays for padded 1x1s) */
	int din_phases;         /* a strided layer's din by a stride-1 convolution per phase
				 * of its input pixels, on convdirect */
	int wino;               /* the forward may run by Winograd (conv2d_run_wino), and
				 * the weight gradient (conv2d_run_backward_wino) */
	int wino_t;             /* din may too (conv2d_run_backward_wino) */
	size_t ws;              /* floats of scratch: conv2d_workspace(g, threads) */
} conv2d_plan;

int conv2d_plan_init(conv2d_plan *p, const geom *g, isa_kind isa, int threads);
/* conv2d_forward and conv2d_backward_relu on a plan (ws: p->ws floats). */
void conv2d_run_forward(const conv2d_plan *p, float *out, const float *in, const float *w,
			const float *b, int B, int relu, float *ws);
void conv2d_run_backward(const conv2d_plan *p, float *din, float *dw, float *db,
			 const float *dout, const float *in, const float *w, const float *relu_y,
			 int relu_act, int B, int acc, float *ws);
/* The direct kernels' forward (plans with fwd_direct) on weights laid out once for many
 * forwards: conv2d_pack_direct lays w out into pw (conv2d_direct_floats floats; 0: the
 * kernels read w as it is), conv2d_run_direct is conv2d_run_forward on them (pw: w where
 * the count is 0). The same bits. */
size_t conv2d_direct_floats(const conv2d_plan *p);
void conv2d_pack_direct(const conv2d_plan *p, float *pw, const float *w);
void conv2d_run_direct(const conv2d_plan *p, float *out, const float *in, const float *pw,
		       const float *b, int B, int relu, float *ws);
/* Winograd's forward, for plans with wino set: conv2d_pack_wino transforms the weights
 * into u (conv2d_wino_floats floats; once per set of weights), then conv2d_run_wino is
 * conv2d_run_forward on them (the same outputs a rounding apart: see
 * convwino.h). */
size_t conv2d_wino_floats(const conv2d_plan *p);
void conv2d_pack_wino(const conv2d_plan *p, float *u, const float *w);
void conv2d_run_wino(const conv2d_plan *p, float *out, const float *in, const float *u,
		     const float *b, int B, int relu, float *ws);
/* The same for din, the turned convolution (wino_t): conv2d_pack_wino_t transforms the
 * turned weights into ut (conv2d_wino_t_floats floats; ws: p->ws floats of scratch), then
 * conv2d_run_backward_wino is conv2d_run_backward with din by Winograd on them (ut NULL:
 * din as there) and, where wino (and convwino_wgrad_wins), dw and db by Winograd (the same
 * a rounding apart). */
size_t conv2d_wino_t_floats(const conv2d_plan *p);
void conv2d_pack_wino_t(const conv2d_plan *p, float *ut, const float *w, float *ws);
void conv2d_run_backward_wino(const conv2d_plan *p, float *din, float *dw, float *db,
			      const float *dout, const float *in, const float *w, const float *ut,
			      const float *relu_y, int relu_act, int B, int acc, float *ws);
/* conv2d_path of a plan. */
const char *conv2d_plan_path(const conv2d_plan *p);

/* The calls below plan for one call, then run: for one-off uses (cnn-apply, tests); a
 * model keeps a plan per layer.
 *
 * Floats of scratch conv2d forward and backward need with that many threads (im2col
 * tiles, or padded rows per thread); the same buffer serves every batch size and path. */
size_t conv2d_workspace(const geom *g, int threads);

/* out [B, oh, ow, cout] = conv(in [B, h, w, cin], w [kh, kw, cin/groups, cout]) + b [cout]
 * (NULL: none), then the activation relu (0 none, 1 ReLU, 2 ReLU6); output channel o of group o / (cout/groups) reads that
 * group's cin/groups input channels. ws: conv2d_workspace(g, threads) floats; threads: workers of our
 * own for the direct kernels (convdirect), whose bits do not depend on their number;
 * isa: the path (conv2d_path says which one g takes on it). */
void conv2d_forward(const geom *g, float *out, const float *in, const float *w,
		    const float *b, int B, int relu, float *ws, int threads, isa_kind isa);
/* Given dout [B, oh, ow, cout] (already through the ReLU's backward), computes
 * dw [kh, kw, cin/groups, cout] and db [cout] (added to them if acc, else overwriting them, which
 * spares a pass over a large dw), and sets din [B, h, w, cin] (NULL: skip). dw NULL: no
 * weight gradient (db may still be asked for), for frozen layers and input gradients. */
void conv2d_backward(const geom *g, float *din, float *dw, float *db, const float *dout,
		     const float *in, const float *w, int B, int acc, float *ws, int threads,
		     isa_kind isa);

/* The same, then din through the backward of the activation relu_act (VEC_RELU, VEC_RELU6)
 * whose output was relu_y [B, h, w, cin] (the layer before; NULL: none), fused into the
 * computation of din where the kernels can (same bits as vec_act_backward after it). */
void conv2d_backward_relu(const geom *g, float *din, float *dw, float *db,
			  const float *dout, const float *in, const float *w, const float *relu_y,
			  int relu_act, int B, int acc, float *ws, int threads, isa_kind isa);

/* The kernels g runs on with isa: "avx512" or "avx2" (the direct kernels; ", din sgemm"
 * when the input gradient's turned convolution does not fit them), "avx512 fwd, sgemm" or
 * "avx2 fwd, sgemm" (a stride or 1x1 forward on the plane kernels, the backward on sgemm;
 * a pointwise layer, 1x1 stride 1 unpadded, takes the direct kernels' names: its dw runs
 * on them, and its din where cin is a multiple of 8),
 * "sgemm", "depthwise" (convdw's loops) or "grouped sgemm" (a GEMM per group). Under 4
 * input channels, "avx512"'s weight gradient runs AVX2's tiles (faster there, same bits). */
const char *conv2d_path(const geom *g, isa_kind isa);

#endif
