/* dense: fully connected layers, forward and backward, weights [in, out]; a small batch
 * over a large w (fc1) streams w once per pass, split over threads, else sgemm. */
#ifndef PETCNN_DENSE_H
#define PETCNN_DENSE_H

#include "nn/isa.h"

/* Every function takes the path isa (one isa_supported: the model's m->isa): the streaming
 * loops run on AVX2 with FMA for ISA_AVX2 and ISA_AVX512, portable C for ISA_GENERIC. */

/* out [B, nout] = in [B, nin] @ w [nin, nout] + b [nout], then ReLU if relu. For a small
 * batch over a large w, one pass over w split over threads by columns, skipping zero
 * inputs (dropout's): the same bits whatever the thread count; else sgemm. */
void dense_forward(float *out, const float *in, const float *w, const float *b, int B,
		   int nin, int nout, int relu, int threads, isa_kind isa);
/* dw [nin, nout] (+)= in^T @ dout; db [nout] (+)= sum of dout (added if acc, else
 * overwritten); din [B, nin] = dout @ w^T (NULL: skip), then through the backward of a
 * ReLU whose output was relu_y [B, nin] (NULL: none): 0 where relu_y is not > 0. dout
 * [B, nout] is already through the ReLU's backward. For a small batch over a large w, dw
 * and din come from one pass over w, split over threads by rows, din's masked entries not
 * computed. Same threads, same bits. dw NULL: no weight gradient (din by sgemm). */
void dense_backward(float *din, float *dw, float *db, const float *dout, const float *in,
		    const float *w, const float *relu_y, int B, int nin, int nout, int acc,
		    int threads, isa_kind isa);
/* Whether dense_backward takes the streaming path for these sizes. */
int dense_streams(int B, int nin, int nout);

/* The streaming backward (dense_streams, and nout <= DENSE_ROW_MAX) handing each row i of
 * dw to row(ctx, i, dw_row) as soon as it is complete and row i of w is no longer needed,
 * instead of storing dw: the optimiser can update w's row while both are in cache. rows
 * are split over threads (row is called on them, for disjoint i). din and relu_y as
 * dense_backward's. -1 (nothing done) if the layer does not stream. */
#define DENSE_ROW_MAX 4096
typedef void (*dense_row_fn)(void *ctx, long i, const float *dw_row);
int dense_backward_rows(float *din, float *db, const float *dout, const float *in,
			const float *w, const float *relu_y, int B, int nin, int nout, dense_row_fn row,
			void *ctx, int threads, isa_kind isa);

#endif
