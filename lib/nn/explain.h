/* explain: why a model decides as it does, for cnn-apply: Grad-CAM, saliency (with
 * SmoothGrad), occlusion, a convolution's filters, and an input that maximises a channel.
 *
 * A target is the class whose logit (Grad-CAM, saliency) or probability (occlusion) is
 * explained: the predicted one, the image's label, or a fixed class. Gradients are the
 * model's own backward (model_grad_at, model_grad_from) in eval mode (no dropout). Maps
 * are [B, H', W'] floats, one channel, for tensor-png. */
#ifndef PETCNN_EXPLAIN_H
#define PETCNN_EXPLAIN_H

#include <stdint.h>

#include "array/tensor.h"
#include "nn/model.h"

#define EXPLAIN_PRED (-1)       /* the class with the largest logit */
#define EXPLAIN_LABEL (-2)      /* the image's label */

/* The occlusion patch's value, in pixels (0..255) before the model's normalisation: the
 * middle grey, whatever the model's mean. */
#define EXPLAIN_MID 128

typedef struct {
	model *m;               /* not owned; model_grad_init'ed by explain_init */
	int target;             /* a class index, EXPLAIN_PRED or EXPLAIN_LABEL */
	int layer;              /* Grad-CAM: the layer whose output is weighted */
	int upsample;           /* Grad-CAM: to the input's size (else the layer's) */
	int sg_n;               /* saliency: noisy copies (SmoothGrad); 0: none */
	float sg_sigma;         /* ... noise stddev, a fraction of each channel's range */
	uint64_t seed;          /* ... drawn from here, one stream per image index */
	int patch, stride;      /* occlusion: P x P patches every S pixels */
	int K;                  /* classes: the last layer's size */
	int *cls;               /* [max_batch] the classes explained */
	float *seed_buf;        /* [max_batch, K] the backward's seed */
	float *g;               /* [max_batch, largest of h*w*c and the layer's out_n] */
	float *x;               /* [max_batch + 1, h, w, c] normalised inputs (SmoothGrad): the
	                         * noisy copies, then the clean image */
	uint8_t *occ;           /* [max_batch, h, w, 3] occluded copies */
	double *acc;            /* [h * w] a map being summed, in double (Grad-CAM: its map and
	                         * weights, [oh * ow + oc]) */
} explain;

/* TARGET text: "pred", "label", a class name of classes ([K] strings) or an index below
 * K. An unknown name or an index out of range is an error listing the classes. */
int explain_target_parse(const char *s, const tensor *classes, int *target, char *err);

/* Grad-CAM's layer: name's (NULL: the default, the last layer with a spatial output before
 * the first dense or gap that is not a pool or dropout: conv2_2 in the default network;
 * the last spatial one if all are). A layer with a 1x1 output (dense, gap) is an error,
 * and so is an unknown name (listing the layers); path names the model in messages. */
int explain_gradcam_layer(const model *m, const char *name, const char *path, int *layer,
			  char *err);

/* Buffers for m's max_batch images, and with grads m's activation gradients (all but
 * occlusion need them; without, m is made lean: model_lean); e's options as set before
 * the call (target, layer, ...). m must have classes. */
int explain_init(explain *e, model *m, int grads, char *err);
void explain_free(explain *e);

/* The maps of B <= max_batch uint8 images [B, h, w, 3] into out; labels [B] for
 * EXPLAIN_LABEL (each below K, else ignored). */
/* Grad-CAM: ReLU(sum_k alpha_k A_k), A the layer's output, alpha_k = mean over positions
 * of d logit / d A_k; out [B, h, w] bilinear with half-pixel centres (PyTorch's
 * interpolate, align_corners=False), or [B, oh, ow] without upsample. */
void explain_gradcam(explain *e, const uint8_t *img, const int *labels, int B, float *out);
/* Saliency: max over channels of |d logit / d x|, x the normalised input: out [B, h, w].
 * SmoothGrad: the mean of those maps over sg_n copies of x plus normal noise of stddev
 * sg_sigma times the channel's range (1 / std: the span of pixels 0..255 once
 * normalised), drawn from stream (seed, first + b) for image b, so an image's map does not
 * depend on the batch it came in; the target is the clean image's. */
void explain_saliency(explain *e, const uint8_t *img, const int *labels, int B, int64_t first,
		      float *out);
/* Occlusion: the target's probability with the P x P patch whose top-left corner is at
 * (i*S, j*S) (clipped at the edges) set to EXPLAIN_MID: out [B, ceil(h/S), ceil(w/S)];
 * the target of pred is the unoccluded image's. Copies go through in batches. */
void explain_occlusion(explain *e, const uint8_t *img, const int *labels, int B, float *out);
/* The output size of a map (explain_gradcam etc. as set up in e) for h x w inputs. */
void explain_map_size(const explain *e, int occlusion, int *oh, int *ow);

/* Layer name's filters as an image batch: out f4 [COUT, KH, KW, CIN/groups] (caller frees);
 * a layer that is not a convolution is an error. */
int explain_weights(const model *m, const char *name, const char *path, tensor *out, char *err);

typedef struct {
	int steps;              /* gradient ascent steps */
	float lr;               /* each step moves pixels (0..1) lr on average */
	int jitter;             /* random shift of up to this many pixels per step */
	int blur_every;         /* a 3x3 blur every this many steps (0: never) */
	float blur;             /* ... of kernel (blur, 1 - 2 blur, blur) each way */
	uint64_t seed;          /* start image and jitter */
} explain_max_opts;

/* Sensible defaults for an h x w input. */
void explain_max_defaults(explain_max_opts *o, int h, int w);
/* Feature visualisation (Olah et al. 2017): an image that maximises the mean over
 * positions of channel ch of layer's output, by gradient ascent on pixels in [0, 1] from
 * mid grey plus a little noise, with a random jitter before each step (the gradient
 * shifted back) and a blur every blur_every steps, pixels clipped to [0, 1]: out u1
 * [h, w, 3] RGB. *act gets the channel's mean activation for out. m: max_batch >= 1,
 * model_grad_init'ed. Same seed and model, same bytes. */
int explain_maximize(model *m, int layer, int ch, const explain_max_opts *o, uint8_t *out,
		     double *act, char *err);

#endif
