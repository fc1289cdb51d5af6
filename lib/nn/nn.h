/* nn: the ConvNet's layers, forward and backward, on NHWC float32 batches (llm.c style).
 * Conv weights are TensorFlow's HWIO [kh, kw, cin, cout], dense [in, out]; GEMMs on OpenBLAS. */
#ifndef PETCNN_NN_H
#define PETCNN_NN_H

#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

typedef enum { NN_SAME, NN_VALID } nn_pad;

/* Output length along one axis as TensorFlow defines it. SAME: ceil(in/stride), padded
 * by max((out-1)*stride + k - in, 0) of which pad/2 before (the extra after). VALID:
 * ceil((in-k+1)/stride), no padding. Returns the length (<= 0 if none fits). */
int nn_out_size(int in, int k, int stride, nn_pad pad, int *pad_before);

/* A window over an NHWC image: the geometry shared by conv2d and max-pool. */
typedef struct {
	int h, w, c;    /* input height, width, channels */
	int kh, kw;     /* window */
	int sh, sw;     /* stride */
	int oh, ow;     /* output height, width */
	int pt, pl;     /* padding before (top, left) */
	int oc;         /* output channels (conv: cout; pool: c) */
} nn_geom;

/* Fills g; -1 if the window does not fit (VALID with in < k) or a size is out of range. */
int nn_geom_init(nn_geom *g, int h, int w, int c, int kh, int kw, int sh, int sw,
		 nn_pad pad, int oc, char *err);

/* Floats of scratch conv2d forward and backward need with that many threads (im2col
 * tiles, or padded rows per thread); the same buffer serves every batch size. */
size_t nn_conv2d_workspace(const nn_geom *g, int threads);

/* out [B, oh, ow, cout] = conv(in [B, h, w, cin], w [kh, kw, cin, cout]) + b [cout],
 * then ReLU if relu. ws: nn_conv2d_workspace(g, threads) floats; threads: workers of our
 * own for the direct kernels (lib/conv), whose bits do not depend on their number. */
void nn_conv2d_forward(const nn_geom *g, float *out, const float *in, const float *w,
		       const float *b, int B, int relu, float *ws, int threads);
/* Given dout [B, oh, ow, cout] (already through the ReLU's backward), computes
 * dw [kh, kw, cin, cout] and db [cout] (added to them if acc, else overwriting them, which
 * spares a pass over a large dw), and sets din [B, h, w, cin] (NULL: skip). */
void nn_conv2d_backward(const nn_geom *g, float *din, float *dw, float *db,
			const float *dout, const float *in, const float *w, int B, int acc,
			float *ws, int threads);

/* The same, then din through the backward of a ReLU whose output was relu_y [B, h, w, cin]
 * (the layer before; NULL: none), fused into the computation of din (same bits as
 * nn_relu_backward after it). */
void nn_conv2d_backward_relu(const nn_geom *g, float *din, float *dw, float *db,
			     const float *dout, const float *in, const float *w,
			     const float *relu_y, int B, int acc, float *ws, int threads);

/* dx [n] = dy [n] where y [n] > 0, else 0 (y is the ReLU's output; dx may be dy). */
void nn_relu_backward(float *dx, const float *dy, const float *y, size_t n);

/* out [B, oh, ow, c] = max over each window of in [B, h, w, c] (padding never wins);
 * argmax [B, oh, ow, c] keeps the winner's offset within its image for backward. Images
 * are split over threads (same bits for any number). */
void nn_maxpool_forward(const nn_geom *g, float *out, int32_t *argmax, const float *in, int B,
			int threads);
/* din [B, h, w, c] = dout [B, oh, ow, c] routed to the winners (din is overwritten). */
void nn_maxpool_backward(const nn_geom *g, float *din, const float *dout,
			 const int32_t *argmax, int B);
/* The same, then through the backward of a ReLU before the pool, given pooled, this
 * pool's output (NULL: no ReLU): a winner's gradient passes iff its pooled value is > 0.
 * Same bits as nn_relu_backward after nn_maxpool_backward; images split over threads. */
void nn_maxpool_backward_relu(const nn_geom *g, float *din, const float *dout,
			      const int32_t *argmax, const float *pooled, int B, int threads);

/* Inverted dropout in place on x [n]: each element kept with probability keep and scaled
 * by 1/keep, else zeroed; mask [n] records 1 for kept. keep >= 1 keeps all (mask all 1). */
void nn_dropout_forward(float *x, uint8_t *mask, size_t n, float keep, rng *r);
/* dx [n] = dy [n] * mask / keep (dx may be dy). */
void nn_dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n, float keep);

/* out [B, nout] = in [B, nin] @ w [nin, nout] + b [nout], then ReLU if relu. For a small
 * batch over a large w, one pass over w split over threads by columns, skipping zero
 * inputs (dropout's): the same bits whatever the thread count; else sgemm. */
void nn_dense_forward(float *out, const float *in, const float *w, const float *b,
		      int B, int nin, int nout, int relu, int threads);
/* dw [nin, nout] (+)= in^T @ dout; db [nout] (+)= sum of dout (added if acc, else
 * overwritten); din [B, nin] = dout @ w^T (NULL: skip). dout [B, nout] is already through
 * the ReLU's backward. For a small batch over a large w, dw and din come from one pass
 * over w, split over threads by rows. Same threads, same bits. */
void nn_dense_backward(float *din, float *dw, float *db, const float *dout,
		       const float *in, const float *w, int B, int nin, int nout, int acc,
		       int threads);
/* Whether nn_dense_backward takes the streaming path for these sizes. */
int nn_dense_streams(int B, int nin, int nout);

/* The streaming backward (nn_dense_streams, and nout <= NN_ROW_MAX) handing each row i of
 * dw to row(ctx, i, dw_row) as soon as it is complete and row i of w is no longer needed,
 * instead of storing dw: the optimiser can update w's row while both are in cache. rows
 * are split over threads (row is called on them, for disjoint i). -1 (nothing done) if
 * the layer does not stream. */
#define NN_ROW_MAX 4096
typedef void (*nn_row_fn)(void *ctx, long i, const float *dw_row);
int nn_dense_backward_rows(float *din, float *db, const float *dout, const float *in,
			   const float *w, int B, int nin, int nout, nn_row_fn row, void *ctx,
			   int threads);

/* Stops OpenBLAS's idle worker threads (they restart with the next threaded GEMM), so
 * threads of our own get the cores; call before such a phase. No-op without them. */
void nn_blas_park(void);

/* Softmax cross-entropy over logits [B, K] with labels [B] in [0, K): probs [B, K]
 * (may be NULL), dlogits [B, K] = d(mean loss)/d(logits) (may be NULL), *correct the count
 * of argmax == label (may be NULL). Returns the mean loss. Computed stably in double. */
double nn_softmax_xent(float *probs, float *dlogits, int *correct, const float *logits,
		       const int *labels, int B, int K);
/* probs [B, K] = softmax(logits [B, K]) only (no labels). */
void nn_softmax(float *probs, const float *logits, int B, int K);

#endif
