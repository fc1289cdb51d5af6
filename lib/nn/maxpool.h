/* maxpool: max-pooling forward (the winners' offsets kept) and backward (the gradient
 * routed to the winners) on NHWC float32 batches. */
#ifndef PETCNN_MAXPOOL_H
#define PETCNN_MAXPOOL_H

#include <stdint.h>

#include "nn/geom.h"
#include "nn/isa.h"

/* out [B, oh, ow, c] = max over each window of in [B, h, w, c] (padding never wins; any
 * geometry: SAME/VALID, explicit pads, ceil mode); argmax [B, oh, ow, c] keeps the winner's
 * offset within its image for backward (NULL: not kept, for a forward no backward
 * follows). A window wholly in the padding (pads >= window) gives 0 and argmax -1, which
 * backward skips. Output rows are split over threads; every path (isa, or the widest
 * below it this CPU has) picks the same winners, so the same bits for any isa and any
 * number of threads. */
void maxpool_forward_isa(const geom *g, float *out, int32_t *argmax, const float *in, int B,
			 int threads, isa_kind isa);
/* The same on the widest path this CPU has. */
void maxpool_forward(const geom *g, float *out, int32_t *argmax, const float *in, int B,
		     int threads);
/* din [B, h, w, c] = dout [B, oh, ow, c] routed to the winners (din is overwritten). */
void maxpool_backward(const geom *g, float *din, const float *dout, const int32_t *argmax,
		      int B);
/* The same, then through the backward of a ReLU before the pool, given pooled, this
 * pool's output (NULL: no ReLU): a winner's gradient passes iff its pooled value is > 0.
 * Same bits as vec_relu_backward after maxpool_backward; images split over threads. */
void maxpool_backward_relu(const geom *g, float *din, const float *dout,
			   const int32_t *argmax, const float *pooled, int B, int threads);

#endif
