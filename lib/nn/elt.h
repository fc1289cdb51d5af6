/* stub */
#ifndef PETCNN_ELT_H
#define PETCNN_ELT_H
#include <stddef.h>
void elt_add(float *out, const float *a, const float *b, size_t n, int relu);
void elt_clip_forward(float *y, const float *x, size_t n, float lo, float hi);
void elt_clip_backward(float *dx, const float *dy, const float *x, size_t n, float lo, float hi);
void elt_leaky_forward(float *y, const float *x, size_t n, float alpha);
void elt_leaky_backward(float *dx, const float *dy, const float *x, size_t n, float alpha);
void elt_affine_forward(float *y, const float *x, const float *scale, const float *shift, size_t rows, int c, int relu);
void elt_affine_backward(float *dx, float *dscale, float *dshift, const float *dy, const float *x, const float *scale, size_t rows, int c, int acc);
void elt_concat_forward(float *out, const float *in, size_t rows, int cin, int cout, int off);
void elt_concat_backward(float *din, const float *dout, size_t rows, int cin, int cout, int off);
#endif
