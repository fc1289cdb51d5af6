/* model: a ConvNet graph built from a short text spec, its parameters in one buffer split
 * into named tensors, with forward, backward and optimiser steps over a batch.
 *
 * Spec: tokens separated by white space, [NAME=]KIND[:OPT...][@IN[,IN...]]. A layer reads
 * the layers named after '@' ("input": the normalised image), else the token before it
 * (the image, for the first). Every output but the last token's must be read by a later
 * layer; the last one's is the logits, 1x1xK (K the class count).
 *   NAME=conv:KHxKW:COUT[:sS|:sSHxSW][:same|:valid|:pT,L,B,R][:gG][:linear|:relu|:relu6]
 *                 convolution (G groups) with bias, then ReLU (relu6: clipped to [0, 6],
 *                 as clip:0:6 after it would, in the conv's own pass); stride 1 and SAME
 *                 unless given; pT,L,B,R are explicit pads (top, left, bottom, right)
 *   [NAME=]maxpool:KHxKW[:sS|:sSHxSW][PADS][:ceil]   stride = kernel unless given
 *   [NAME=]avgpool:KHxKW[:sS|:sSHxSW][PADS][:ceil][:incl]   incl: pads count
 *   [NAME=]gap                  global average pool to 1x1xC
 *   NAME=dense:N[:linear|:relu] fully connected on the flattened NHWC input, bias, ReLU
 *   [NAME=]drop:conv | drop:fc  inverted dropout at keep-conv or keep-fc while training
 *   [NAME=]add[:relu]@A,B       sum of two outputs of one shape
 *   [NAME=]concat@A,B,...       along channels (same height and width)
 *   [NAME=]relu | clip:LO:HI | leaky:ALPHA
 *   NAME=bn[:relu]              batch norm with fixed statistics: x * scale + shift per channel
 *   [NAME=]lrn:SIZE:ALPHA:BETA:BIAS   local response normalisation across channels (ONNX's)
 * K may stand for one conv's or dense's count (the class count); the last token has no
 * ReLU unless it says :relu. Names are letters, digits and '_' (31 at most). Variables are
 * NAME/weightsB_I and NAME/biasesB_I (bn: NAME/scale, NAME/shift): B counts blocks (a pool
 * after a parametrised layer closes one, and so does the first dense after convolutions),
 * I counts layers within a block. MODEL_DEFAULT_SPEC is exactly the seed's network. */
#ifndef PETCNN_MODEL_H
#define PETCNN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "nn/conv2d.h"
#include "nn/geom.h"
#include "nn/isa.h"
#include "nn/optim.h"
#include "util/rng.h"

#define MODEL_DEFAULT_SPEC                                                               \
	"conv1_1=conv:3x3:32 conv1_2=conv:3x3:32 pool1=maxpool:2x2 drop:conv "          \
	"conv2_1=conv:3x3:64 conv2_2=conv:3x3:64 pool2=maxpool:2x2 drop:conv "          \
	"fc1=dense:512 drop:fc softmax=dense:K"

#define MODEL_NAME_MAX 64
#define MODEL_INPUT (-1)        /* a source index: the normalised image */
#define MODEL_LEAN_MAX_LAYERS 256  /* model_lean: the most layers run by micro-batches, */
#define MODEL_LEAN_BUFS 8          /* ... and of their buffers */
#define MODEL_LEAN_SEGS 16         /* ... and of their spans of one micro-batch size */

enum model_kind {
	MODEL_CONV, MODEL_POOL, MODEL_DROP, MODEL_DENSE, MODEL_AVGPOOL, MODEL_GAP, MODEL_ADD,
	MODEL_CONCAT, MODEL_RELU, MODEL_CLIP, MODEL_LEAKY, MODEL_BN, MODEL_LRN
};
enum model_init { MODEL_INIT_SEED, MODEL_INIT_HE };

typedef struct {
	char name[MODEL_NAME_MAX];  /* "conv1_1/weights1_1" */
	int ndim;                   /* 4: conv weights HWIO; 2: dense weights [in, out]; 1: bias */
	int64_t shape[4];
	size_t off, n;              /* floats into params, grads, adam_m, adam_v */
	int layer;                  /* the layer it belongs to */
} model_param;

typedef struct {
	enum model_kind kind;
	char name[MODEL_NAME_MAX];
	int relu;               /* the activation after, enum vec_act: ReLU (conv, dense, add,
	                         * bn; pool and drop: their input's) or ReLU6 (conv) */
	int fc;                 /* drop: at keep-fc (else keep-conv) */
	int incl;               /* avgpool: pads count */
	float a[4];             /* clip: lo, hi; leaky: alpha; lrn: size, alpha, beta, bias */
	geom g;                 /* conv, pools */
	conv2d_plan plan;       /* conv: its kernels and scratch, for m->threads and m->isa */
	float *wino;            /* conv with plan.wino: its weights for Winograd (NULL: not yet */
	int wino_ok;            /* ... made); made from the current weights */
	int wino_ran;           /* conv: its last forward ran by Winograd */
	float *wino_t;          /* conv with plan.wino_t: din's turned weights for Winograd, */
	int wino_t_ok;          /* ... made from the current weights */
	float *direct;          /* conv: its weights laid out for the direct kernels' forward */
	int direct_ok;          /* ... (NULL: not yet made), made from the current weights */
	int nin, nout;          /* dense */
	int *src, nsrc;         /* the layers it reads (MODEL_INPUT: the image) */
	int nuse;               /* how many layers read it */
	int oh, ow, oc;         /* output per image */
	size_t out_n;           /* floats of output per image */
	int wparam, bparam;     /* indices into params[] (-1 if none); bn: scale, shift */
	float *out;             /* [max_batch, oh, ow, oc]; a drop layer that is its input's
	                         * only reader works in place on that buffer and points there */
	int32_t *argmax;        /* maxpool: [max_batch, oh, ow, oc] */
	uint8_t *mask;          /* drop: [max_batch, oh, ow, oc] */
	float *aux;             /* lrn: its denominators [max_batch, oh, ow, oc] */
	int grad;               /* backward: which gradient buffer holds d(out) */
	int transient;          /* model_lean: out holds the current micro-batch only, in a
	                         * buffer later layers reuse (NULL: a band layer's) */
	size_t band_off;        /* a band layer but the last: its ring's offset in a thread's */
	int band_cap;           /* ... band memory, and its rows (model_lean) */
	int keep;               /* model_keep: the caller reads out after a forward */
	int frozen;             /* parameters fixed: no gradient, no optimiser state */
	double t_fwd, t_bwd;    /* seconds spent in training forwards / backwards (profile) */
} model_layer;

/* What a model is built for: input h x w x c (c 0: 3), classes K (0: an inference-only
 * graph whose output may have any shape), batches up to max_batch; train: also gradients,
 * optimiser state and dropout masks. */
typedef struct {
	int h, w, c, classes, max_batch, train;
	int fault_threads;      /* train: the threads faulting the parameters in (0: one) */
} model_size;

typedef struct {
	char *spec;             /* normalised: single spaces */
	int h, w, c, classes, max_batch, train;
	/* the input normalisation: x = (pixel / 255 - mean) / std per channel, in the
	 * network's channel order (bgr: B, G, R from our RGB images) */
	float mean[3], std[3];
	int bgr;
	model_layer *layer;
	int nlayer;
	model_param *param;
	int nparam;
	size_t nparams;         /* floats in all parameters */
	float *params;          /* [nparams] */
	float *grads, *adam_m, *adam_v;  /* [nparams] each, training only */
	float *input;           /* [max_batch, h, w, c] normalised pixels */
	float *probs;           /* [max_batch, K] */
	float *dlogits;         /* [max_batch, K] training only */
	float **gbuf;           /* [ngbuf] activation gradients of the largest layer's size, */
	int ngbuf;              /* ... as many as are live at once in backward, */
	float *gtmp;            /* ... and one to sum a second reader's share from (or NULL) */
	int act_grad;           /* model_grad_init: every layer's output gradient can be had */
	float *ginput;          /* ... and the input's [max_batch, h, w, c] */
	int grad_stop;          /* backward's stop layer (its output's gradient left unmasked) */
	int opt_faulted;        /* the optimiser state of trainable parameters is faulted in */
	float *ws;              /* conv scratch */
	size_t ws_n;            /* ... of this many floats */
	/* forward mode (model_train / model_eval) */
	int training;           /* dropout active */
	float keep[2];          /* ... at these keep rates: conv, fc */
	rng *drop_rng;          /* ... drawn from here */
	int drop_active;        /* the last forward applied dropout */
	int batch;              /* the last forward's batch size */
	/* data parallelism (model_share): this process's batch is rows share_lo .. share_lo +
	 * batch - 1 of a batch of share_of images (0: all its own) */
	int share_lo, share_of;
	/* called by backward as each layer's parameter gradients are complete, with ctx and
	 * the layer's index (NULL: none); data parallelism starts their sum there */
	void (*grad_ready)(void *ctx, int layer);
	void *grad_ctx;
	double loss;            /* the last forward's mean loss (with labels) */
	int correct;            /* ... and how many argmaxes were right */
	int threads;            /* for our kernels, OpenBLAS and the optimiser (model_set_threads) */
	isa_kind isa;           /* ... on this path: PETCNN_ISA or the widest the CPU has */
	int no_wino;            /* PETCNN_WINOGRAD=0: 3x3s run the direct kernels too */
	int lean_want;          /* model_lean was called (planned again after a freeze) */
	int lean_n;             /* model_lean: layers 0 .. lean_n-1 run in micro-batches, */
	int lean_nseg;          /* ... in spans: seg_mb[s] images at a time up to seg_end[s] */
	int lean_seg_end[MODEL_LEAN_SEGS], lean_seg_mb[MODEL_LEAN_SEGS];
	float *lean_buf[MODEL_LEAN_BUFS];  /* ... their transient outputs' buffers */
	int lean_nbuf;
	int band_n;             /* model_lean: layers 0 .. band_n-1 run by bands of rows, */
	int band_rows;          /* ... the last of them this many rows a step, */
	int band_threads;       /* ... an image on each of up to this many threads, */
	float *band_mem;        /* ... each with band_stride floats of this for its rows */
	size_t band_stride;
} model;

/* Parses spec for s and allocates everything for batches up to s.max_batch. Parameters
 * are zero until model_init_params or a load. Reads PETCNN_ISA (isa_from_env): a path this
 * CPU lacks is an error. Starts in eval mode with 1 thread. The calling thread, the one
 * that will compute with it, flushes denormals to zero from now on (fpmode_flush_denormals). */
int model_init(model *m, const char *spec, model_size s, char *err);
void model_free(model *m);
/* Threads for our kernels, the optimiser and OpenBLAS from now on; grows the scratch they
 * need, so -1 if out of memory (the model is left as it was). */
int model_set_threads(model *m, int threads, char *err);
/* The input normalisation (mean and std of pixels scaled to [0, 1], in the network's
 * channel order; bgr: it wants B, G, R). The default (0, 1, RGB) is the seed's /255. */
int model_set_norm(model *m, const float mean[3], const float std[3], int bgr, char *err);
/* Whether m's normalisation is the default one. */
int model_norm_default(const model *m);
/* Marks layer's output as read by the caller after a forward (cnn-apply --layer, the
 * TensorBoard feature maps): model_lean keeps it whole. Call before model_lean. */
void model_keep(model *m, int layer);
/* The layers before the first dense one run a few images at a time, as many as suit each
 * span of blocks (the wide early ones fewer), their outputs read back from cache and kept
 * only until read (memory drops too), where nothing else reads them: not the caller (it
 * reads the last layer's output, what that reads, and model_keep's) and not a backward (in
 * training, the layers below the lowest that trains: a frozen base; with nothing frozen
 * every output stays whole, the micro-batches alone). Where that leaves outputs to pass,
 * the first blocks whose maps of one image outgrow L2 run by bands of rows on AVX2 and
 * AVX-512 (an image per thread, rows into rings; not under PETCNN_BAND=0). The same bits
 * as without. From then on forwards start at layer 0 and pass the lean layers
 * (model_forward, model_forward_float, model_forward_to a later layer). Planned again
 * after a freeze; undone by model_grad_init; a no-op under PETCNN_LEAN=0. -1 if out of
 * memory. */
int model_lean(model *m, char *err);

/* Seed: weights truncated normal stddev 0.1, conv biases 0, dense biases 1.
 * He: weights normal stddev sqrt(2 / fan_in), biases 0. bn: scale 1, shift 0. One rng
 * stream per fixed block of each tensor, the blocks shared by m->threads threads: the same
 * values for any count. */
void model_init_params(model *m, enum model_init how, uint64_t seed);

/* To be called after m->params were written other than by the model's own updates (a
 * load, an init; model_adam_step and the like call it): what layers derive from their
 * weights (Winograd's transformed copies, the direct kernels' layouts) is made again when
 * next used. */
void model_params_changed(model *m);

/* The spec's word for a kind ("conv", "maxpool", ...). */
const char *model_kind_name(enum model_kind k);

/* The parameter of that name (e.g. "fc1/weights3_1"), or NULL. */
const model_param *model_find_param(const model *m, const char *name);
/* The layer of that name, or -1. */
int model_find_layer(const model *m, const char *name);

/* Training mode: forwards apply dropout at these keep rates, drawn from r (kept, not
 * owned); eval mode: they do not (as PyTorch's module.train() / eval()). */
void model_train(model *m, float keep_conv, float keep_fc, rng *r);
void model_eval(model *m);
/* Data parallelism: the next training forwards' batches are rows lo .. lo + B - 1 of a
 * batch of of images shared by several processes (of 0: their own, the default). Each
 * image's dropout masks are then the ones a forward of the whole batch would draw from
 * the same rng, and the loss gradient backward makes is that of the mean over all of
 * images, so the processes' gradients sum to the whole batch's. m->loss and m->correct
 * stay those of the B rows. */
void model_share(model *m, int lo, int of);

/* Runs images [B, h, w, c] (uint8, RGB) through the network. labels [B] (or NULL:
 * inference, no loss): sets m->loss and m->correct and prepares backward. probs land in
 * m->probs [B, K], the logits in the last layer's out. */
void model_forward(model *m, const uint8_t *images, const int *labels, int B);
/* The same from already normalised inputs x [B, h, w, c]. */
void model_forward_float(model *m, const float *x, const int *labels, int B);
/* Gradients of the last forward's mean loss into m->grads (overwritten). It needs the
 * activations of the forward just before it; any other forward (an inference pass on a
 * test sample or one image for logging, any batch up to max_batch) is safe between steps:
 * after model_backward or the optimiser step, before the next training forward. Nothing
 * but the activations, probs and dlogits changes in a forward: parameters, gradients and
 * optimiser state are untouched. */
void model_backward(model *m);
/* One Adam step (t counts from 1) / momentum step (momentum buffer in adam_m). */
void model_adam_step(model *m, const optim_adam *o, int64_t t);
/* model_backward then model_adam_step, to the same bits in parameters and Adam state, in
 * fewer passes over memory: a large dense layer (fc1) has its weights updated row by row
 * as their gradient is made, which then never goes to memory; its part of m->grads is
 * left as it was. For training loops that read no gradients. */
void model_backward_adam(model *m, const optim_adam *o, int64_t t);
void model_momentum_step(model *m, double lr, double mu);

/* Gradients of the logits with respect to activations, for seeing why the network
 * decides (Grad-CAM, saliency): model_grad_init makes room for them (and for any model,
 * trained or not; parameters' gradients are never made), then model_grad_at gives
 * d (sum over n, k of seed[n, k] * logits[n, k]) / d (layer's output) [B, oh, ow, oc]
 * (layer MODEL_INPUT: the normalised input [B, h, w, c]) for the last forward's B images
 * into out; seed [B, K] (K the last layer's size), e.g. one-hot at the target class. */
int model_grad_init(model *m, char *err);
void model_grad_at(model *m, const float *seed, int layer, float *out);
/* The same from another layer's output (feature visualisation: a channel's mean
 * activation): d (sum over n, i of seed[n, i] * from's output[n, i]) / d (layer's output)
 * (MODEL_INPUT: the normalised input) into out, for the last forward's B images; seed
 * [B, from's out_n], layer < from. */
void model_grad_from(model *m, int from, const float *seed, int layer, float *out);

/* Freezing (fine-tuning): a frozen layer's parameters get no gradient (their part of
 * m->grads is never written), no optimiser update and no optimiser state (their parts of
 * adam_m / adam_v are never written nor faulted in, so those pages stay unmapped), and
 * come out of any number of steps bit for bit as they went in. Backward stops below the
 * lowest layer whose output gradient a trainable parameter needs, and the gradient
 * buffers are planned again (fewer of them, often). The gradients of the trainable
 * parameters have the same bits as without freezing. Call before the first optimiser
 * step (or after a load, which restores only trainable state). */
/* Freezes the layers named in the comma list names (each must be a layer with
 * parameters: an unknown name is an error naming it and listing those layers). */
int model_freeze(model *m, const char *names, char *err);
/* Freezes every layer with parameters before the layer called name, in spec order. */
int model_freeze_below(model *m, const char *name, char *err);
/* Makes every layer trainable again (their optimiser state as it was: zero if never
 * trained). */
int model_unfreeze(model *m, char *err);
/* The frozen layers' names, comma-separated in spec order, into buf [n] ("" if none);
 * how many layers are frozen. */
int model_frozen_names(const model *m, char *buf, size_t n);
/* Whether parameter p (an index into m->param) is frozen. */
int model_param_frozen(const model *m, int p);

/* Feature caching: the last layer (an index) at which a training forward can be split,
 * so that everything at or below it is the same function of the image at every step:
 * no trainable parameter and no dropout with keep < 1 (keep_conv, keep_fc as
 * model_train will be given) at or below it, and every layer above it reads only layers
 * above it or it. -1 if there is none (nothing frozen, or dropout below the first
 * trainable layer). */
int model_cache_cut(const model *m, float keep_conv, float keep_fc);
/* The forward of images [B, h, w, c] up to and including layer cut (no loss): its output
 * is then m->layer[cut].out [B, out_n]. */
void model_forward_to(model *m, const uint8_t *images, int cut, int B);
/* The rest of a training or inference forward from layer cut's outputs feats [B, out_n]
 * (as model_forward_to left them, or saved from it): the same bits in probs, loss and
 * activations above cut as model_forward of the images, and model_backward may follow. */
void model_forward_from(model *m, int cut, const float *feats, const int *labels, int B);

#endif
