/* stub */
#ifndef PETCNN_AVGPOOL_H
#define PETCNN_AVGPOOL_H
#include "nn/geom.h"
void avgpool_forward(const geom *g, float *out, const float *in, int B, int include_pad, int threads);
void avgpool_backward(const geom *g, float *din, const float *dout, int B, int include_pad, int threads);
void gap_forward(float *out, const float *in, int B, long hw, int c, int threads);
void gap_backward(float *din, const float *dout, int B, long hw, int c, int threads);
#endif
