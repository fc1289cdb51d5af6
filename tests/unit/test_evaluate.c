/* Unit tests for lib/nn/evaluate: the batched inference loop against the same images run
 * one at a time, with unlabelled images, a subset by index, the callbacks, and a stop. */
#include "check.h"
#include "nn/evaluate.h"
#include "util/errmsg.h"
#include "util/rng.h"

#include <stdlib.h>
#include <string.h>

#define N 10
#define H 6
#define K 3

typedef struct {
	int64_t index[2 * N], progress[4];
	int label[2 * N], pred[2 * N], calls, pcalls, stop_at;
	double psum[2 * N];
} seen;

static int on_image(void *ctx, int64_t index, int label, int pred, const float *probs)
{
	seen *s = ctx;
	double sum = 0;

	for (int j = 0; j < K; j++)
		sum += probs[j];
	if (s->calls < 2 * N) {
		s->index[s->calls] = index, s->label[s->calls] = label, s->pred[s->calls] = pred;
		s->psum[s->calls] = sum;
	}
	s->calls++;
	return 0;
}

static int on_progress(void *ctx, int64_t done, int64_t total)
{
	seen *s = ctx;

	if (s->pcalls < 4)
		s->progress[s->pcalls] = done * 100 + total;
	return ++s->pcalls == s->stop_at;
}

int main(void)
{
	static uint8_t pixels[N * H * H * 3];
	int labels[N];
	double want_loss[N];
	int want_pred[N];
	char err[ERR_MAX];
	model m;
	rng r;

	/* max_batch 4: ten images are batches of 4, 4 and 2 */
	CHECK(model_init(&m, "a=conv:3x3:4 p=maxpool:2x2 out=dense:K", (model_size){ .h = H, .w = H, .classes = K, .max_batch = 4, .train = 0 }, err) == 0,
	      "model: %s", err);
	model_init_params(&m, MODEL_INIT_HE, 3);
	rng_seed(&r, 5);
	for (size_t i = 0; i < sizeof pixels; i++)
		pixels[i] = (uint8_t)rng_below(&r, 256);
	for (int i = 0; i < N; i++)
		labels[i] = i == 3 || i == 7 ? -1 : i % K;

	dataset d = { .images = { .data = pixels }, .labels = labels, .n = N, .h = H, .w = H, .k = K };

	/* the reference: each image alone, its loss -log p[label] by hand from the logits */
	for (int i = 0; i < N; i++) {
		const float *z = m.layer[m.nlayer - 1].out;
		double mx, s = 0;

		model_forward(&m, pixels + (size_t)i * H * H * 3, NULL, 1);
		want_pred[i] = 0, mx = z[0];
		for (int j = 1; j < K; j++)
			if (z[j] > mx)
				mx = z[j], want_pred[i] = j;
		for (int j = 0; j < K; j++)
			s += exp(z[j] - mx);
		want_loss[i] = labels[i] < 0 ? 0 : log(s) + mx - z[labels[i]];
	}

	/* the whole set */
	int64_t confusion[K * K] = { 0 };
	seen s = { .stop_at = -1 };
	evaluate_opts o = { .confusion = confusion, .image = on_image, .progress = on_progress, .ctx = &s };
	evaluate_result res;
	double loss = 0;
	int correct = 0, bad = 0;

	CHECK(evaluate_run(&m, &d, &o, &res, err) == 0, "evaluate: %s", err);
	for (int i = 0; i < N; i++)
		if (labels[i] >= 0)
			loss += want_loss[i], correct += want_pred[i] == labels[i];
	CHECK(res.images == N && res.scored == N - 2, "images %lld, scored %lld",
	      (long long)res.images, (long long)res.scored);
	CHECK(res.correct == correct, "correct %lld, want %d", (long long)res.correct, correct);
	CHECK_NEAR(res.loss, loss / (N - 2), 1e-6, "mean cross-entropy over the labelled images");
	CHECK_NEAR(res.accuracy, (double)correct / (N - 2), 1e-12, "accuracy");
	CHECK(s.calls == N, "one image callback per image (%d)", s.calls);
	for (int i = 0; i < N && i < s.calls; i++)
		bad += s.index[i] != i || s.label[i] != labels[i] || s.pred[i] != want_pred[i] ||
		       fabs(s.psum[i] - 1) > 1e-5;
	CHECK(bad == 0, "%d images reported out of order or with a wrong class", bad);
	int64_t total = 0, diag = 0;
	for (int i = 0; i < K * K; i++)
		total += confusion[i], diag += i % (K + 1) == 0 ? confusion[i] : 0;
	CHECK(total == N - 2 && diag == correct, "confusion: %lld counted, %lld on the diagonal",
	      (long long)total, (long long)diag);
	CHECK(s.pcalls == 3 && s.progress[0] == 410 && s.progress[1] == 810 && s.progress[2] == 1010,
	      "progress after each batch: %d calls", s.pcalls);

	/* a subset by index, repeats allowed, unlabelled 3 among them; no confusion wanted */
	int64_t idx[5] = { 9, 2, 2, 3, 5 };
	seen s2 = { .stop_at = -1 };
	evaluate_opts o2 = { .idx = idx, .n = 5, .image = on_image, .ctx = &s2 };

	CHECK(evaluate_run(&m, &d, &o2, &res, err) == 0, "evaluate idx: %s", err);
	loss = want_loss[9] + 2 * want_loss[2] + want_loss[5];
	correct = (want_pred[9] == labels[9]) + 2 * (want_pred[2] == labels[2]) + (want_pred[5] == labels[5]);
	CHECK(res.images == 5 && res.scored == 4 && res.correct == correct, "idx: %lld images, %lld scored",
	      (long long)res.images, (long long)res.scored);
	CHECK_NEAR(res.loss, loss / 4, 1e-6, "idx: mean cross-entropy");
	bad = s2.calls != 5;
	for (int i = 0; i < 5 && i < s2.calls; i++)
		bad += s2.index[i] != idx[i] || s2.label[i] != labels[idx[i]] || s2.pred[i] != want_pred[idx[i]];
	CHECK(bad == 0, "idx: images reported as the dataset's, in idx order");

	/* a callback stops the run after the first batch */
	seen s3 = { .stop_at = 1 };
	evaluate_opts o3 = { .progress = on_progress, .ctx = &s3 };

	CHECK(evaluate_run(&m, &d, &o3, &res, err) == -1 && strstr(err, "stopped"),
	      "a progress callback stops the run: %s", err);
	CHECK(res.images == 4 && s3.pcalls == 1, "stopped after one batch: %lld images", (long long)res.images);

	model_free(&m);
	return check_done("test_evaluate");
}
