/* model: a ConvNet built from a short text spec, its parameters in one buffer split into
 * the seed's named tensors, with forward, backward and optimiser steps over a batch.
 *
 * Spec: layers separated by spaces, applied in order to an H x W x 3 image:
 *   NAME=conv:KHxKW:COUT[:sS][:valid][:linear]  convolution with bias, then ReLU
 *                                                (stride 1 and SAME unless given)
 *   [NAME=]maxpool:KHxKW[:sS][:valid]          max-pool (stride = kernel, SAME unless given)
 *   [NAME=]drop:conv | drop:fc                 inverted dropout at keep-conv or keep-fc
 *                                                while training, nothing at inference
 *   NAME=dense:N[:linear]                       fully connected on the flattened NHWC
 *                                                input, bias, then ReLU
 * The last layer must be dense with N the letter K (the class count): it gives the logits
 * and has no ReLU. Names are letters, digits and '_'. Variables are NAME/weightsB_I and
 * NAME/biasesB_I: B counts blocks (a maxpool after a parametrised layer closes a block, and
 * so does the first dense after convolutions), I counts layers within a block.
 * MODEL_DEFAULT_SPEC is exactly the seed's network and its names. */
#ifndef PETCNN_MODEL_H
#define PETCNN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "nn/geom.h"
#include "nn/isa.h"
#include "nn/optim.h"
#include "util/rng.h"

#define MODEL_DEFAULT_SPEC                                                               \
	"conv1_1=conv:3x3:32 conv1_2=conv:3x3:32 pool1=maxpool:2x2 drop:conv "          \
	"conv2_1=conv:3x3:64 conv2_2=conv:3x3:64 pool2=maxpool:2x2 drop:conv "          \
	"fc1=dense:512 drop:fc softmax=dense:K"

#define MODEL_NAME_MAX 64

enum model_kind { MODEL_CONV, MODEL_POOL, MODEL_DROP, MODEL_DENSE };
enum model_init { MODEL_INIT_SEED, MODEL_INIT_HE };

typedef struct {
	char name[MODEL_NAME_MAX];  /* "conv1_1/weights1_1" */
	int ndim;                   /* 4: conv weights HWIO; 2: dense weights [in, out]; 1: bias */
	int64_t shape[4];
	size_t off, n;              /* floats into params, grads, adam_m, adam_v */
} model_param;

typedef struct {
	enum model_kind kind;
	char name[MODEL_NAME_MAX];
	int relu, fc;           /* fc: drop at keep-fc (else keep-conv) */
	geom g;              /* conv, maxpool */
	int nin, nout;          /* dense */
	int oh, ow, oc;         /* output per image */
	size_t out_n;           /* floats of output per image */
	int wparam, bparam;     /* indices into params[] (-1 if none) */
	float *out;             /* [max_batch, oh, ow, oc]; a drop layer works in place on
	                         * its input's buffer and points there */
	int32_t *argmax;        /* maxpool: [max_batch, oh, ow, oc] */
	uint8_t *mask;          /* drop: [max_batch, oh, ow, oc] */
	double t_fwd, t_bwd;    /* seconds spent in training forwards / backwards (profile) */
} model_layer;

typedef struct {
	char *spec;             /* normalised: single spaces */
	int h, w, classes, max_batch, train;
	model_layer *layer;
	int nlayer;
	model_param *param;
	int nparam;
	size_t nparams;         /* floats in all parameters */
	float *params;          /* [nparams] */
	float *grads, *adam_m, *adam_v;  /* [nparams] each, training only */
	float *input;           /* [max_batch, h, w, 3] pixels / 255 */
	float *probs;           /* [max_batch, K] */
	float *dlogits;         /* [max_batch, K] training only */
	float *gbuf[2];         /* activation gradients, ping-pong, largest layer size */
	float *ws;              /* conv scratch */
	size_t ws_n;            /* ... of this many floats */
	int drop_active;        /* the last forward applied dropout */
	float keep[2];          /* ... at these keep rates: conv, fc */
	int batch;              /* the last forward's batch size */
	int threads;            /* for our own kernels (1 after model_init: model_set_threads) */
	isa_kind isa;           /* ... on this path: PETCNN_ISA or the widest the CPU has */
} model;

/* Parses spec for H x W x 3 input and classes outputs and allocates everything for
 * batches up to max_batch (train: also gradients, Adam state, dropout masks). Parameters
 * are zero until model_init_params or a load. Reads PETCNN_ISA (isa_from_env): a path
 * this CPU lacks is an error. */
int model_init(model *m, const char *spec, int h, int w, int classes, int max_batch,
	       int train, char *err);
void model_free(model *m);
/* Our own kernels' threads from now on (OpenBLAS has its own setting); grows the scratch
 * they need, so -1 if out of memory (the model is left as it was). */
int model_set_threads(model *m, int threads, char *err);

/* Seed: weights truncated normal stddev 0.1, conv biases 0, dense biases 1.
 * He: weights normal stddev sqrt(2 / fan_in), biases 0. One rng stream per fixed block of
 * each tensor, the blocks shared by m->threads threads: the same values for any count. */
void model_init_params(model *m, enum model_init how, uint64_t seed);

/* The parameter of that name (e.g. "fc1/weights3_1"), or NULL. */
const model_param *model_find_param(const model *m, const char *name);

/* Runs images [B, h, w, 3] (uint8) through the network. train: dropout at the given keep
 * rates drawn from r. labels [B] (or NULL: inference only, no loss): fills loss and the
 * count of correct argmax and prepares backward. probs land in m->probs [B, K]. */
void model_forward(model *m, const uint8_t *images, const int *labels, int B, int train,
		   float keep_conv, float keep_fc, rng *r, double *loss, int *correct);
/* Gradients of the last forward's mean loss into m->grads (overwritten). It needs the
 * activations of the forward just before it; any other forward (an inference pass on a
 * test sample or one image for logging, any batch up to max_batch) is safe between steps:
 * after model_backward or the optimiser step, before the next training forward. Nothing
 * but the activations, probs and dlogits changes in a forward: parameters, gradients and
 * optimiser state are untouched. */
void model_backward(model *m);
/* One Adam step (t counts from 1) / momentum step (momentum buffer in adam_m). */
void model_adam_step(model *m, const optim_adam *o, int64_t t, int threads);
/* model_backward then model_adam_step, to the same bits in parameters and Adam state, in
 * fewer passes over memory: a large dense layer (fc1) has its weights updated row by row
 * as their gradient is made, which then never goes to memory; its part of m->grads is
 * left as it was. For training loops that read no gradients. */
void model_backward_adam(model *m, const optim_adam *o, int64_t t, int threads);
void model_momentum_step(model *m, double lr, double mu, int threads);

#endif
