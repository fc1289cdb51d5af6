/* evaluate: the inference network over a dataset, a batch at a time: each image's class
 * and probabilities, and the mean cross-entropy and accuracy over the labelled images. */
#include "nn/evaluate.h"

#include <stdlib.h>

#include "nn/softmax.h"
#include "util/errmsg.h"

typedef struct {
	uint8_t *img;   /* [max_batch, h, w, 3] gathered images (idx only) */
	int *labels;    /* [max_batch] gathered labels (idx only) */
	int *pred;      /* [max_batch] */
	double *loss;   /* [max_batch] */
} batch_bufs;

static void bufs_free(batch_bufs *b)
{
	free(b->img), free(b->labels), free(b->pred), free(b->loss);
}

static int bufs_init(batch_bufs *b, const model *m, int gather)
{
	size_t B = (size_t)m->max_batch;

	*b = (batch_bufs){ 0 };
	/* the model already holds max_batch images as floats, so these sizes cannot overflow */
	b->pred = malloc(sizeof *b->pred * B);
	b->loss = malloc(sizeof *b->loss * B);
	if (gather) {
		b->img = malloc(B * (size_t)m->h * (size_t)m->w * 3);
		b->labels = malloc(sizeof *b->labels * B);
	}
	if (!b->pred || !b->loss || (gather && (!b->img || !b->labels))) {
		bufs_free(b);
		return -1;
	}
	return 0;
}

int evaluate_run(model *m, const dataset *d, const evaluate_opts *o, evaluate_result *r,
		 char *err)
{
	int64_t n = o->idx ? o->n : d->n;
	size_t isz = (size_t)d->h * d->w * 3;
	const float *logits = m->layer[m->nlayer - 1].out;
	double sum = 0;
	batch_bufs b;
	int rc = 0, K = m->classes, training = m->training;

	*r = (evaluate_result){ 0 };
	/* no dropout here, whatever mode the trainer left the model in (restored below) */
	model_eval(m);
	if (bufs_init(&b, m, o->idx != NULL))
		return err_set(err, "evaluate: out of memory for a batch of %d", m->max_batch);
	for (int64_t i = 0; i < n && !rc; i += m->max_batch) {
		int B = (int)(n - i < m->max_batch ? n - i : m->max_batch);
		const uint8_t *img = (const uint8_t *)d->images.data + (size_t)i * isz;
		const int *labels = d->labels + i;

		if (o->idx) {
			dataset_gather(d, o->idx + i, B, b.img, b.labels);
			img = b.img, labels = b.labels;
		}
		model_forward(m, img, NULL, B);
		softmax_xent_rows(b.loss, b.pred, logits, labels, B, K);
		if (o->batch && o->batch(o->ctx, i, B))
			rc = err_set(err, "evaluate: stopped after %lld images", (long long)i);
		for (int k = 0; k < B && !rc; k++) {
			int y = labels[k], p = b.pred[k];

			if (o->image && o->image(o->ctx, o->idx ? o->idx[i + k] : i + k, y, p,
						 m->probs + (size_t)k * K))
				rc = err_set(err, "evaluate: stopped after %lld images", (long long)(i + k + 1));
			r->images++;
			if (y < 0)
				continue;
			sum += b.loss[k];
			r->scored++;
			r->correct += p == y;
			if (o->confusion)
				o->confusion[(size_t)y * K + p]++;
		}
		if (!rc && o->progress && o->progress(o->ctx, i + B, n))
			rc = err_set(err, "evaluate: stopped after %lld images", (long long)(i + B));
	}
	bufs_free(&b);
	m->training = training;
	r->loss_sum = sum;
	r->loss = r->scored ? sum / r->scored : 0;
	r->accuracy = r->scored ? (double)r->correct / r->scored : 0;
	return rc;
}
