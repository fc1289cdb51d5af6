/* dropout: inverted dropout, forward (drawing the mask) and backward, on float arrays. */
#ifndef PETCNN_DROPOUT_H
#define PETCNN_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

/* Inverted dropout in place on x [n]: each element kept with probability keep and scaled
 * by 1/keep, else zeroed; mask [n] records 1 for kept. keep >= 1 keeps all (mask all 1). */
void dropout_forward(float *x, uint8_t *mask, size_t n, float keep, rng *r);
/* The same on x [n], the elements lo..lo+n-1 of a draw over total elements from r: the
 * mask those elements would get from dropout_forward over all total (a process's rows of
 * a batch shared by several, each image's mask as one process draws it). lo + n <= total. */
void dropout_forward_part(float *x, uint8_t *mask, size_t total, size_t lo, size_t n,
			  float keep, rng *r);
/* dx [n] = dy [n] * mask / keep (dx may be dy). */
void dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n, float keep);

#endif
