/* dropout: inverted dropout, forward (drawing the mask) and backward, on float arrays. */
#ifndef PETCNN_DROPOUT_H
#define PETCNN_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

/* Inverted dropout in place on x [n]: each element kept with probability keep and scaled
 * by 1/keep, else zeroed; mask [n] records 1 for kept. keep >= 1 keeps all (mask all 1). */
void dropout_forward(float *x, uint8_t *mask, size_t n, float keep, rng *r);
/* dx [n] = dy [n] * mask / keep (dx may be dy). */
void dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n, float keep);

#endif
