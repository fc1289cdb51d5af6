/* apply: one operation over a stream of image arrays for cnn-apply: the channel mean, a
 * convolution with a filter bank, a max-pool, the feature maps of a trained model's layer,
 * or a map of why the model decides (explain: Grad-CAM, saliency, occlusion).
 *
 * Input arrays [N, H, W, C] or [H, W, C] of any numeric dtype become f4 [N, H', W', C'] or
 * [H', W', C'] on the output, one image at a time (a batch at a time for a model), so a
 * stream larger than memory passes through. Strings and 1-d arrays (a dataset stream's
 * labels and classes) are dropped; any other array is an error. Window geometry (output
 * size, where SAME puts its padding) is TensorFlow's, from geom_init. */
#ifndef PETCNN_APPLY_H
#define PETCNN_APPLY_H

#include <stdint.h>
#include <stdio.h>

#include "nn/explain.h"
#include "nn/model.h"
#include "nn/geom.h"
#include "array/tensor.h"

enum apply_op {
	APPLY_GRAY,     /* C' = 1: mean over the channels, in the input's own scale */
	APPLY_CONV,     /* C' = cout: conv2d with filters [kh, kw, cin, cout], no bias */
	APPLY_MAXPOOL,  /* C' = C: max over k x k windows (padding never wins) */
	APPLY_LAYER,    /* C' = the layer's: uint8 images through the model up to that layer */
	APPLY_GRADCAM,  /* C' = 1: explain's maps of the model's decision on uint8 images */
	APPLY_SALIENCY,
	APPLY_OCCLUSION,
};

/* Progress through an image array of total images: called with done 0 as it starts, then
 * after each batch (as curl's XFERINFOFUNCTION: the library reports, the tool draws).
 * Non-zero stops the stream with an error. */
typedef int (*apply_progress_fn)(void *ctx, int64_t done, int64_t total);

typedef struct {
	enum apply_op op;
	int k, stride;          /* maxpool window; conv and maxpool stride */
	geom_pad pad;
	tensor filters;         /* conv: f4 [kh, kw, cin, cout] */
	model m;                /* layer, explain ops */
	int layer, has_model;   /* layer: index into m.layer */
	explain ex;             /* explain ops: over m */
	int has_ex;
	const int *labels;      /* explain ops: the labels of the batch apply_run is given */
	int64_t first;          /* ... and the index of its first image in its array */
	char source[256];       /* the filter or model file, for messages */
	/* for the current input size (apply_prepare) */
	int h, w, c, oh, ow, oc, batch;
	geom g;
	float *in;              /* [batch, h, w, c] */
	float *out;             /* [batch, oh, ow, oc] */
	float *ws;              /* conv im2col scratch */
	isa_kind isa;           /* conv: its path (PETCNN_ISA, isa_from_env) */
	int32_t *argmax;        /* maxpool: [oh, ow, c] */
	uint8_t *raw;           /* [batch, h, w, c] input bytes as read */
	size_t raw_cap;
	apply_progress_fn progress;     /* NULL: none (apply_set_progress) */
	void *progress_ctx;
} apply;

void apply_init_gray(apply *a);
/* Filters from a .npy file: f4 or f8 [kh, kw, cin, cout] (TensorFlow's conv2d layout). */
int apply_init_conv(apply *a, const char *filters_path, int stride, geom_pad pad, char *err);
int apply_init_maxpool(apply *a, int k, int stride, geom_pad pad, char *err);
/* The checkpoint's model, for the feature maps of the layer named name (cnn-train's names:
 * conv1_1, pool1, ...); max_batch images go through it at once. */
int apply_init_layer(apply *a, const char *model_path, const char *name, int max_batch,
		     char *err);
/* The same with a model already loaded (e.g. from ONNX), which a now owns; path names it. */
int apply_init_layer_model(apply *a, model *m, const char *path, const char *name, char *err);
/* An explain operation (op APPLY_GRADCAM, _SALIENCY or _OCCLUSION) with the options set in
 * ex (all but m; explain_init's): a owns m from now on, even on error; path names it.
 * With target EXPLAIN_LABEL each image array must be followed by its labels (as in a
 * dataset stream): the array's images are held until they are read. */
int apply_init_explain(apply *a, enum apply_op op, model *m, const char *path,
		       const explain *ex, char *err);
void apply_free(apply *a);
/* Reports progress through fn(ctx, ...) from now on (after an apply_init_*). */
void apply_set_progress(apply *a, apply_progress_fn fn, void *ctx);

/* Sets up for inputs of h x w x c with dtype dt; fills the output size. Errors (filter
 * channels, model input size, window larger than a VALID input) name the input. */
int apply_prepare(apply *a, int h, int w, int c, enum tensor_dtype dt, const char *name,
		  char *err);
/* out [B, oh, ow, oc] = the operation on B <= a->batch images of raw bytes [B, h, w, c]
 * of dtype dt (as apply_prepare was told). */
void apply_run(apply *a, const void *raw, enum tensor_dtype dt, int B, float *out);

/* Reads every array of in, writes the results to out. index >= 0 keeps only image index
 * of each array (the output keeps a batch axis of 1). *nout counts arrays written. */
int apply_stream(apply *a, FILE *in, const char *inname, FILE *out, const char *outname,
		 int64_t index, int64_t *nout, char *err);

#endif
