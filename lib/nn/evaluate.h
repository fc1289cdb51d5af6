/* evaluate: the inference network over a dataset, a batch at a time: each image's class
 * and probabilities, and the mean cross-entropy and accuracy over the labelled images. */
#ifndef PETCNN_EVALUATE_H
#define PETCNN_EVALUATE_H

#include <stdint.h>

#include "nn/dataset.h"
#include "nn/model.h"

/* After each batch: images done so far of total. Non-zero stops the run. */
typedef int (*evaluate_progress_fn)(void *ctx, int64_t done, int64_t total);
/* Per image, in order: its index in the dataset, its label (-1: unknown), the predicted
 * class and the probabilities probs [K]. Non-zero stops the run. */
typedef int (*evaluate_image_fn)(void *ctx, int64_t index, int label, int pred,
				 const float *probs);

/* After each batch's forward, before its images' calls: the batch is the run's images
 * first .. first + B - 1 (with idx: idx[first] ..), whose activations the model's layers
 * now hold, image k of the batch at row k of each layer's out (e.g. for embeddings).
 * Non-zero stops the run. */
typedef int (*evaluate_batch_fn)(void *ctx, int64_t first, int B);

typedef struct {
	const int64_t *idx;             /* the images idx [0..n) in that order; NULL: all */
	int64_t n;                      /* ... with idx */
	int64_t *confusion;             /* [K, K] added to: true row, predicted column (NULL: none) */
	evaluate_image_fn image;        /* NULL: none */
	evaluate_batch_fn batch;        /* NULL: none */
	evaluate_progress_fn progress;  /* NULL: none */
	void *ctx;                      /* for the callbacks */
} evaluate_opts;

typedef struct {
	int64_t images;         /* gone through the network */
	int64_t scored;         /* ... of them labelled */
	int64_t correct;        /* ... of those predicted right */
	double loss_sum;        /* cross-entropy summed over the scored images */
	double loss;            /* ... its mean (0 if none) */
	double accuracy;        /* correct / scored (0 if none) */
} evaluate_result;

/* Runs the images through m (no dropout) in batches of m->max_batch; classes and losses
 * are softmax_xent_rows'. -1 if out of memory or a callback stopped the run (err says
 * which); *r then holds the images done before. */
int evaluate_run(model *m, const dataset *d, const evaluate_opts *o, evaluate_result *r,
		 char *err);

#endif
