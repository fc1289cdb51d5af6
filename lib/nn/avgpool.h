/* avgpool: average pooling over windows (any geom: SAME/VALID, explicit pads, ceil mode)
 * and global average pooling, forward and backward, on NHWC float32 batches. */
#ifndef PETCNN_AVGPOOL_H
#define PETCNN_AVGPOOL_H

#include "nn/geom.h"

/* out [B, oh, ow, c] = the mean of each window of in [B, h, w, c]. include_pad (PyTorch's
 * count_include_pad, ONNX's count_include_pad=1): the window's cells within the padded
 * input (pads pt..pb, pl..pr) count, zeros included, a ceil-mode overhang past them does
 * not; else only its cells in the input (none: 0). Output rows split over threads (same
 * bits for any number). */
void avgpool_forward(const geom *g, float *out, const float *in, int B, int include_pad,
		     int threads);
/* din [B, h, w, c] = the gradient of the above given dout [B, oh, ow, c] (din
 * overwritten); input rows split over threads, same bits for any number. */
void avgpool_backward(const geom *g, float *din, const float *dout, int B, int include_pad,
		      int threads);

/* out [B, c] = the mean over the hw pixels of each image of in [B, hw, c]. */
void gap_forward(float *out, const float *in, int B, long hw, int c, int threads);
/* din [B, hw, c] = dout [B, c] / hw at every pixel. */
void gap_backward(float *din, const float *dout, int B, long hw, int c, int threads);

#endif
