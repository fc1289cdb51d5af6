/* finetune: starting a training run from another model (cnn-train --init-from): its
 * parameters taken by layer name and shape, a new head for another class count, and the
 * cache of frozen layers' features that spares their forward after the first epoch. */
#ifndef PETCNN_FINETUNE_H
#define PETCNN_FINETUNE_H

#include <stddef.h>
#include <stdint.h>

#include "array/npz.h"
#include "nn/model.h"

/* A model to start from, as read from a file. */
typedef struct {
	char *spec;             /* its model spec (malloc'd; NULL if the file has none) */
	int64_t classes;        /* its class count (0: unknown) */
	int has_norm;           /* mean, std, bgr hold its input normalisation */
	float mean[3], std[3];
	int bgr;
	npz tensors;            /* its parameters, f4, under names "LAYER/WHAT[B_I]" */
} finetune_src;

/* Reads a model file of another format into src (the ONNX reader of lib/onnx): the
 * parameters under our names ("LAYER/weights" HWIO or [in, out], "LAYER/biases",
 * "LAYER/scale", "LAYER/shift"), the spec in our grammar. */
typedef int (*finetune_reader)(const char *path, finetune_src *src, char *err);

/* Reads path by its extension: ".onnx" through onnx (NULL: refused, not built in), any
 * other as a petcnn checkpoint (.npz; its optimiser state is skipped unread). */
int finetune_read(const char *path, finetune_reader onnx, finetune_src *src, char *err);
void finetune_src_free(finetune_src *src);

/* spec with the count of its last conv or dense layer (the head) made K, into *out
 * (malloc'd): the head is then made for the dataset's classes. */
int finetune_head_spec(const char *spec, char **out, char *err);

/* Copies into m every parameter of src whose layer name, kind (weights, biases, scale,
 * shift; the B_I numbering ignored) and shape match, but the head's (the last layer
 * with parameters) when new_head; the rest keep their initialisation. Sets m's input
 * normalisation to src's. msg [msg_n]: one line saying what was loaded and what is new
 * (layer names, shortened when long). */
int finetune_apply(model *m, const finetune_src *src, int new_head, const char *path, char *msg,
		   size_t msg_n, char *err);

/* Each training image's features at the cut (model_cache_cut), computed at its first
 * forward and reused after: the same bits as computing them every time. */
typedef struct {
	int cut;                /* the layer, -1: not caching */
	size_t per;             /* floats per image: the cut's out_n */
	int64_t n;              /* images */
	float *feats;           /* [n, per] */
	uint8_t *have;          /* [n]: feats of image i are there */
	float *batch;           /* [max_batch, per] gathered for a step */
} finetune_cache;

/* Sets c up for m's n training images under dropout keep rates keep_conv, keep_fc, if m
 * has a cut and the features fit in limit bytes (0: never caches): 1 if it caches, 0 if
 * not (note [note_n] then says why, or is "" when there is no cut), -1 out of memory. */
int finetune_cache_init(finetune_cache *c, const model *m, int64_t n, float keep_conv,
			float keep_fc, size_t limit, char *note, size_t note_n, char *err);
/* A training forward of images [B, h, w, c], the training-set indices idx [B], labels
 * [B]: from the cache when every image is in it, else in full (saving the features);
 * without a cut, model_forward. */
void finetune_cache_forward(finetune_cache *c, model *m, const uint8_t *images, const int64_t *idx,
			    const int *labels, int B);
/* Bytes the cache holds when full. */
size_t finetune_cache_bytes(const finetune_cache *c);
void finetune_cache_free(finetune_cache *c);

#endif
