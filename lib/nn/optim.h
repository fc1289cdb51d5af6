/* optim: parameter updates over one flat float buffer: Adam as tf.train.AdamOptimizer
 * computes it, and SGD with momentum; one fused pass, split over threads by chunk. */
#ifndef PETCNN_OPTIM_H
#define PETCNN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "nn/isa.h"

typedef struct {
	double lr, beta1, beta2, eps;  /* the seed's: 1e-5, 0.9, 0.999, 1e-8 */
} optim_adam;

/* Step t (1 for the first update): lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t);
 * m = beta1*m + (1-beta1)*g; v = beta2*v + (1-beta2)*g^2; p -= lr_t*m/(sqrt(v)+eps).
 * p, g, m, v: [n]. threads >= 1; each element's result is independent of threads, and of
 * isa (one isa_supported; AVX-512's loop for ISA_AVX512, AVX2's for ISA_AVX2, SSE2 and C
 * for ISA_GENERIC, each finishing with the narrower ones: the same operations in the same
 * order, no FMA, so the same bits). */
void optim_adam_step(const optim_adam *o, int64_t t, float *p, const float *g, float *m,
		     float *v, size_t n, int threads, isa_kind isa);

/* The same update applied by a caller that holds a gradient in hand (a row of it, say,
 * still in cache): optim_adam_row_init fixes step t's constants and the path, optim_adam_row
 * updates p, m, v [n] from g [n], each element exactly as optim_adam_step would. */
typedef struct {
	float lr, b1, b2, eps;
	isa_kind isa;
} optim_adam_row_k;
void optim_adam_row_init(optim_adam_row_k *k, const optim_adam *o, int64_t t, isa_kind isa);
void optim_adam_row(const optim_adam_row_k *k, float *p, const float *g, float *m, float *v,
		    size_t n);

/* tf.train.MomentumOptimizer: acc = mu*acc + g; p -= lr*acc. p, g, acc: [n]. */
void optim_momentum_step(double lr, double mu, float *p, const float *g, float *acc,
			 size_t n, int threads);

#endif
