/* stub */
#ifndef PETCNN_LRN_H
#define PETCNN_LRN_H
#include <stddef.h>
void lrn_forward(float *y, float *den, const float *x, size_t rows, int c, int size, float alpha, float beta, float bias);
void lrn_backward(float *dx, const float *dy, const float *x, const float *y, const float *den, size_t rows, int c, int size, float alpha, float beta, float bias);
#endif
