/* Unit tests for lib/model: the spec grammar and its errors, the seed's variable names and
 * shapes, initialisation, and a whole-network gradient check on a tiny spec. */
#include "check.h"
#include "util/errmsg.h"
#include "util/fpmode.h"
#include "nn/dense.h"
#include "nn/convwino.h"
#include "nn/model.h"
#include "nn/vec.h"
#include "nn/ckpt.h"
#include "array/npz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static void test_default_names(void)
{
	static const struct { const char *name; int ndim; int64_t shape[4]; } want[] = {
		{ "conv1_1/weights1_1", 4, { 3, 3, 3, 32 } }, { "conv1_1/biases1_1", 1, { 32 } },
		{ "conv1_2/weights1_2", 4, { 3, 3, 32, 32 } }, { "conv1_2/biases1_2", 1, { 32 } },
		{ "conv2_1/weights2_1", 4, { 3, 3, 32, 64 } }, { "conv2_1/biases2_1", 1, { 64 } },
		{ "conv2_2/weights2_2", 4, { 3, 3, 64, 64 } }, { "conv2_2/biases2_2", 1, { 64 } },
		{ "fc1/weights3_1", 2, { 56 * 56 * 64, 512 } }, { "fc1/biases3_1", 1, { 512 } },
		{ "softmax/weights3_2", 2, { 512, 2 } }, { "softmax/biases3_2", 1, { 2 } },
	};
	char err[ERR_MAX];
	model m;

	/* inference at 224 allocates fc1 (411 MB) lazily: calloc'd pages are never touched */
	CHECK(!fpmode_flushing(), "before a model, IEEE denormals");
	CHECK(model_init(&m, MODEL_DEFAULT_SPEC, (model_size){ .h = 224, .w = 224, .classes = 2, .max_batch = 1, .train = 0 }, err) == 0, "default spec: %s", err);
#if defined(__SSE__)
	CHECK(fpmode_flushing(), "model_init: its caller flushes denormals from now on");
#endif
	CHECK(m.nparam == 12, "12 variables (%d)", m.nparam);
	for (int i = 0; i < 12 && i < m.nparam; i++) {
		const model_param *p = &m.param[i];
		int same = !strcmp(p->name, want[i].name) && p->ndim == want[i].ndim;

		for (int d = 0; same && d < p->ndim; d++)
			same = p->shape[d] == want[i].shape[d];
		CHECK(same, "variable %d is %s ndim %d, want %s", i, p->name, p->ndim, want[i].name);
	}
	CHECK(m.nparams == 864 + 32 + 9216 + 32 + 18432 + 64 + 36864 + 64 + 102760448 + 512 + 1024 + 2,
	      "parameter count %zu", m.nparams);
	CHECK(model_find_param(&m, "fc1/weights3_1") == &m.param[8], "find by name");
	CHECK(model_find_param(&m, "fc1/weights") == NULL, "unknown name");
	CHECK(!strcmp(m.spec, MODEL_DEFAULT_SPEC), "spec kept: %s", m.spec);
	model_free(&m);
	/* the parameters and the optimiser's buffers start on a cache line (fc1's weights a
	 * whole number of lines past them, so their vectors never straddle two) */
	CHECK(model_init(&m, MODEL_DEFAULT_SPEC, (model_size){ .h = 64, .w = 64, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0, "train: %s", err);
	CHECK((uintptr_t)m.params % 64 == 0 && (uintptr_t)m.grads % 64 == 0 && (uintptr_t)m.adam_m % 64 == 0 &&
	      (uintptr_t)m.adam_v % 64 == 0 && m.param[8].off % 16 == 0,
	      "parameters and Adam's moments on 64-byte boundaries");
	model_free(&m);

	/* other specs derive names the same way; odd sizes pool SAME to ceil */
	CHECK(model_init(&m, "  a=conv:5x5:8:s2   b=conv:1x1:4:linear\tpool=maxpool:3x3:s2:valid drop:conv "
			 "c=conv:3x3:4 p2=maxpool:2x2 d1=dense:16 d2=dense:8 out=dense:K", (model_size){ .h = 33, .w = 31, .classes = 3, .max_batch = 2, .train = 0 }, err) == 0,
	      "custom spec: %s", err);
	if (m.nparam == 12) {
		CHECK(!strcmp(m.param[2].name, "b/weights1_2") && !strcmp(m.param[4].name, "c/weights2_1") &&
		      !strcmp(m.param[6].name, "d1/weights3_1") && !strcmp(m.param[11].name, "out/biases3_3"),
		      "derived names %s %s %s %s", m.param[2].name, m.param[4].name, m.param[6].name, m.param[11].name);
		/* 33x31 -s2-> 17x16 -pool 3x3/2 VALID-> 8x7 -SAME-> 8x7 -pool 2x2-> 4x4 */
		CHECK(m.param[6].shape[0] == 4 * 4 * 4, "d1 input %lld", (long long)m.param[6].shape[0]);
	} else {
		CHECK(0, "custom spec has %d variables", m.nparam);
	}
	CHECK(m.spec[0] == 'a' && !strstr(m.spec, "  ") && !strchr(m.spec, '\t'), "normalised: %s", m.spec);
	model_free(&m);
}

static void test_bad_specs(void)
{
	static const char *bad[][2] = {
		{ "", "no layers" },
		{ "conv:3x3:8 out=dense:K", "needs a NAME" },
		{ "a=conv:3x3 out=dense:K", "conv wants" },
		{ "a=conv:3y3:8 out=dense:K", "conv wants" },
		{ "a=conv:3x3:8:s0 out=dense:K", "unknown option" },
		{ "a=conv:3x3:8", "last layer" },
		{ "a=dense:K out=dense:K", "only one layer may have K" },
		{ "a=blur:3 out=dense:K", "unknown layer kind" },
		{ "drop:half out=dense:K", "drop wants" },
		{ "a-b=dense:4 out=dense:K", "bad layer name" },
		{ "a=conv:9x9:4:valid out=dense:K", "does not fit" },
		{ "a=dense:4:relu6 out=dense:K", "unknown option" },
		{ "a=conv:3x3:4 b=add:relu6@a,a out=dense:K", "unknown option" },
	};
	char err[ERR_MAX];
	model m;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = 0;
		CHECK(model_init(&m, bad[i][0], (model_size){ .h = 8, .w = 8, .classes = 2, .max_batch = 1, .train = 1 }, err) == -1 && strstr(err, bad[i][1]),
		      "'%s' refused with '%s': got '%s'", bad[i][0], bad[i][1], err);
	}
}

static void test_init(void)
{
	char err[ERR_MAX];
	model m;

	CHECK(model_init(&m, MODEL_DEFAULT_SPEC, (model_size){ .h = 32, .w = 32, .classes = 3, .max_batch = 2, .train = 0 }, err) == 0, "%s", err);
	model_init_params(&m, MODEL_INIT_SEED, 42);
	const model_param *w = model_find_param(&m, "conv1_2/weights1_2");
	const model_param *cb = model_find_param(&m, "conv1_2/biases1_2");
	const model_param *fb = model_find_param(&m, "fc1/biases3_1");
	const model_param *sb = model_find_param(&m, "softmax/biases3_2");
	double sq = 0, mx = 0;

	for (size_t i = 0; i < w->n; i++) {
		double x = m.params[w->off + i];

		sq += x * x;
		mx = fmax(mx, fabs(x));
	}
	/* a normal truncated at 2 sd has sd 0.8796 of the untruncated one */
	CHECK(fabs(sqrt(sq / w->n) - 0.08796) < 0.005, "trunc normal sd %.4f", sqrt(sq / w->n));
	CHECK(mx <= 0.2 + 1e-6, "within 2 sd (%g)", mx);
	CHECK(m.params[cb->off] == 0 && m.params[fb->off + 511] == 1 && m.params[sb->off] == 1,
	      "conv biases 0, fc biases 1");
	float first = m.params[w->off];
	model_init_params(&m, MODEL_INIT_SEED, 42);
	CHECK(m.params[w->off] == first, "same seed, same weights");

	/* fc1's 2M weights against the exact truncated normal: mean, sd, and the empirical CDF
	 * at 41 points (its sd is at most 0.5/sqrt(2M) = 3.5e-4; allow 2e-3) */
	const model_param *f = model_find_param(&m, "fc1/weights3_1");
	double lo = 0.5 * erfc(2.0 / sqrt(2.0)), span = 1.0 - 2.0 * lo, sum = 0, dev = 0;
	size_t below[41] = { 0 };

	sq = mx = 0;
	for (size_t i = 0; i < f->n; i++) {
		double x = m.params[f->off + i];

		sum += x, sq += x * x, mx = fmax(mx, fabs(x));
		for (int k = 0; k < 41; k++)
			below[k] += x <= -0.2 + 0.01 * k;
	}
	for (int k = 0; k < 41; k++) {
		double x = (-0.2 + 0.01 * k) / 0.1, want = (0.5 * erfc(-x / sqrt(2.0)) - lo) / span;

		dev = fmax(dev, fabs((double)below[k] / f->n - want));
	}
	CHECK(fabs(sum / f->n) < 3e-4, "fc1 mean %.2g", sum / f->n);
	CHECK(fabs(sqrt(sq / f->n) - 0.0879626) < 5e-4, "fc1 sd %.5f (0.0879626)", sqrt(sq / f->n));
	CHECK(mx <= 0.2 && dev < 2e-3, "fc1 within 2 sd (%g), CDF off by %.2g", mx, dev);

	/* blocks with their own streams: any thread count, the same bytes */
	float *one = malloc(sizeof *one * m.nparams);

	memcpy(one, m.params, sizeof *one * m.nparams);
	m.threads = 3;
	model_init_params(&m, MODEL_INIT_SEED, 42);
	CHECK(!memcmp(one, m.params, sizeof *one * m.nparams), "seed init: 1 and 3 threads, same bytes");
	model_init_params(&m, MODEL_INIT_HE, 42);
	memcpy(one, m.params, sizeof *one * m.nparams);
	m.threads = 1;
	model_init_params(&m, MODEL_INIT_HE, 42);
	CHECK(!memcmp(one, m.params, sizeof *one * m.nparams), "he init: 1 and 3 threads, same bytes");
	free(one);
	sum = sq = 0;
	for (size_t i = 0; i < f->n; i++)
		sum += m.params[f->off + i], sq += (double)m.params[f->off + i] * m.params[f->off + i];
	CHECK(fabs(sum / f->n) < 5 * sqrt(2.0 / 4096) / sqrt((double)f->n) &&
	      fabs(sqrt(sq / f->n) / sqrt(2.0 / 4096) - 1) < 3e-3, "he fc1 mean %.2g sd %.5f (%.5f)",
	      sum / f->n, sqrt(sq / f->n), sqrt(2.0 / 4096));
	model_init_params(&m, MODEL_INIT_HE, 42);
	CHECK(m.params[fb->off] == 0, "he: biases 0");
	sq = 0;
	for (size_t i = 0; i < w->n; i++)
		sq += (double)m.params[w->off + i] * m.params[w->off + i];
	CHECK(fabs(sqrt(sq / w->n) / sqrt(2.0 / 288) - 1) < 0.05, "he sd %.4f", sqrt(sq / w->n));

	/* inference: probabilities, no dropout, independent of the rng */
	uint8_t img[2 * 32 * 32 * 3];
	float p0[6];
	rng r;

	for (size_t i = 0; i < sizeof img; i++)
		img[i] = (uint8_t)(i * 7);
	rng_seed(&r, 1);
	model_eval(&m);
	model_forward(&m, img, NULL, 2);
	memcpy(p0, m.probs, sizeof p0);
	CHECK(fabs(p0[0] + p0[1] + p0[2] - 1) < 1e-5, "probs sum to 1");
	rng_seed(&r, 2);
	model_train(&m, 0.2f, 0.5f, &r);
	model_forward(&m, img, NULL, 2);
	CHECK(!memcmp(p0, m.probs, sizeof p0), "an inference model never drops");
	model_free(&m);
}

/* Whole network, dropout included (the same masks replayed by re-seeding), against
 * central differences of the mean loss over every parameter. Reported as
 * max |numeric - analytic| / max |analytic|, which must stay below 1e-2; parameters whose
 * perturbation crosses a ReLU or max-pool kink (one-sided slopes disagree) are skipped,
 * at most a tenth of them. Then a step of Adam must lower the loss. */
static void grad_check(const char *spec, int H, int W, int K)
{
	int B = 3, labels[3] = { 0, 2 % K, 1 }, skipped = 0;
	uint8_t *img = malloc((size_t)B * H * W * 3);
	char err[ERR_MAX];
	model m;
	rng r;
	double L0, maxerr = 0, maxg = 0;
	const float eps = 1e-3f;

	for (size_t i = 0; i < (size_t)B * H * W * 3; i++)
		img[i] = (uint8_t)((i * 37 + 11) % 256);
	CHECK(model_init(&m, spec, (model_size){ .h = H, .w = W, .classes = K, .max_batch = B, .train = 1 }, err) == 0,
	      "%s: %s", spec, err);
	if (!m.params) {
		free(img);
		return;
	}
	model_init_params(&m, MODEL_INIT_HE, 3);
	for (size_t i = 0; i < m.nparams; i++)
		m.params[i] += 0.05f; /* biases away from 0 keep units alive */
	rng_stream(&r, 9, 1);
	model_train(&m, 0.7f, 0.8f, &r);
	model_forward(&m, img, labels, B);
	L0 = m.loss;
	model_backward(&m);
	float *an = malloc(sizeof *an * m.nparams);
	memcpy(an, m.grads, sizeof *an * m.nparams);
	for (size_t i = 0; i < m.nparams; i++) {
		float s = m.params[i];
		double lp, lm;

		m.params[i] = s + eps;
		rng_stream(&r, 9, 1);
		model_forward(&m, img, labels, B);
		lp = m.loss;
		m.params[i] = s - eps;
		rng_stream(&r, 9, 1);
		model_forward(&m, img, labels, B);
		lm = m.loss;
		m.params[i] = s;
		if (fabs((lp - L0) - (L0 - lm)) > 1e-2 * fabs(lp - lm) + 1e-7) {
			skipped++;
			continue;
		}
		maxerr = fmax(maxerr, fabs((lp - lm) / (2 * eps) - an[i]));
		maxg = fmax(maxg, fabs(an[i]));
	}
	CHECK(skipped * 10 < (int)m.nparams, "%s: kinks skipped %d of %zu", spec, skipped, m.nparams);
	CHECK(maxg > 0 && maxerr / maxg < 1e-2, "%s: gradient rel err %.3g (max grad %.3g)", spec,
	      maxerr / maxg, maxg);
	optim_adam o = { 1e-2, 0.9, 0.999, 1e-8 };
	double L1;
	model_adam_step(&m, &o, 1);
	rng_stream(&r, 9, 1);
	model_forward(&m, img, labels, B);
	L1 = m.loss;
	CHECK(L1 < L0, "%s: adam step lowers the loss: %g -> %g", spec, L0, L1);
	free(an);
	free(img);
	model_free(&m);
}

static void test_model_grad(void)
{
	grad_check("c1=conv:3x3:3 p=maxpool:2x2 drop:conv c2=conv:2x2:4:s2:valid fc=dense:5 drop:fc out=dense:K",
		   6, 5, 3);
	/* a linear conv before a pool: the pool's output may be negative, so no ReLU mask */
	grad_check("c1=conv:3x3:4:linear p=maxpool:2x2 out=dense:K", 6, 6, 3);
	/* residual: two readers of one output, their gradients summed; an add with a ReLU,
	 * whose gradient's buffer c (its only reader's) takes in place */
	grad_check("a=conv:3x3:4 b=conv:3x3:4 c=conv:3x3:4:linear r=add:relu@a,c out=dense:K", 5, 5, 3);
	/* branches concatenated, a dropout of an output that is read twice (not in place),
	 * the image read by two layers, batch norm, clip, leaky, global pooling */
	grad_check("a=conv:3x3:4 d=drop:conv@a b=conv:1x1:3@a c=conv:3x3:2:linear@input "
		   "k=concat@d,b,c n=bn:relu m=clip:-0.5:0.7 l=leaky:0.1@n s=add@m,l g=gap out=dense:K",
		   5, 6, 3);
	/* depthwise with asymmetric pads and stride, an average pool rounding up and counting
	 * pads, a grouped 1x1, a max pool rounding up over explicit pads */
	grad_check("a=conv:3x3:4 d=conv:3x3:4:g4:p1,0,1,1:s2 q=avgpool:3x3:s2:p1:ceil:incl g=conv:1x1:4:g2 "
		   "m=maxpool:2x2:s2:p0,0,1,1:ceil out=dense:K", 7, 7, 3);
	/* GoogLeNet's local response normalisation */
	grad_check("a=conv:3x3:5 n=lrn:3:0.01:0.75:1 p=maxpool:2x2 out=dense:K", 6, 6, 3);
	/* SqueezeNet's head: a conv to K channels, then global pooling gives the logits */
	grad_check("a=conv:3x3:4:s2 f=conv:1x1:K:relu gap", 6, 6, 3);
	/* MobileNetV2's ReLU6 on a strided, a depthwise and a pointwise conv, one read twice
	 * (no reader masks it), then a pool of ReLU6 outputs; an add of two single-use ReLU6
	 * outputs, of which one takes its gradient's buffer (each masks it in place) */
	grad_check("a=conv:3x3:5:s2:relu6 d=conv:3x3:5:g5:relu6 p=conv:1x1:4:relu6 q=conv:1x1:4:relu6@d "
		   "s=add@p,q m=maxpool:2x2 out=dense:K", 9, 9, 3);
}

/* conv:...:relu6 is conv:...:linear then clip:0:6, to the bit: forward, backward (the
 * gradient passes where 0 < y < 6, the mask applied by the reader's kernels as they write
 * the gradient, or after them), on the strided sgemm, depthwise (multiplier 1 and 2),
 * pointwise, stride-1 (u on Winograd where isa has it) and grouped paths of isa, weights large enough that every layer's
 * outputs are clipped at both ends and pass between; and the same bits on 2 threads. */
static void test_relu6(isa_kind isa)
{
	static const char *const conv[] = { "a=conv:3x3:8:s2", "d=conv:3x3:8:g8", "e=conv:3x3:16:g8",
					    "p=conv:1x1:6", "c=conv:3x3:6", "g=conv:1x1:4:g2", "t=conv:3x3:16",
					    "u=conv:3x3:16" };
	enum { NC = 8, B = 2, H = 12, W = 12, K = 3 };
	char fused[512] = "", split[512] = "", err[ERR_MAX];
	const char *on = isa_name(isa);
	int labels[B] = { 0, 2 };
	uint8_t img[B * H * W * 3];
	model m[3];

	for (int i = 0; i < NC; i++) {
		snprintf(fused + strlen(fused), sizeof fused - strlen(fused), "%s:relu6 ", conv[i]);
		snprintf(split + strlen(split), sizeof split - strlen(split), "%s:linear %c6=clip:0:6 ",
			 conv[i], conv[i][0]);
	}
	strcat(fused, "out=dense:K"), strcat(split, "out=dense:K");
	for (int i = 0; i < B * H * W * 3; i++)
		img[i] = (uint8_t)((i * 37 + 11) % 256);
	for (int k = 0; k < 3; k++) {
		CHECK(model_init(&m[k], k == 1 ? split : fused,
				 (model_size){ .h = H, .w = W, .classes = K, .max_batch = B, .train = 1 }, err) == 0,
		      "%s", err);
		if (!m[k].params)
			return;
		model_init_params(&m[k], MODEL_INIT_HE, 7);
		/* the image's [0, 1] wants the first layer's weights larger still */
		for (size_t i = 0; i < m[k].nparams; i++)
			m[k].params[i] = m[k].params[i] * (i < m[k].param[0].n ? 12.0f : 3.0f) - 0.05f;
	}
	CHECK(model_set_threads(&m[2], 2, err) == 0, "%s", err);
	for (int k = 0; k < 3; k++) {
		model_forward(&m[k], img, labels, B);
		model_backward(&m[k]);
	}
	for (int i = 0; i < NC; i++) {
		const model_layer *lf = &m[0].layer[i], *ls = &m[1].layer[2 * i + 1];
		size_t n = (size_t)B * lf->out_n, lo = 0, hi = 0;

		CHECK(lf->relu == VEC_RELU6 && ls->kind == MODEL_CLIP, "%s: relu6", lf->name);
		for (size_t j = 0; j < n; j++)
			lo += lf->out[j] == 0, hi += lf->out[j] == 6;
		CHECK(lo && hi && lo + hi < n, "%s: %zu of %zu outputs at 0, %zu at 6", lf->name, lo, n, hi);
		CHECK(!memcmp(lf->out, ls->out, sizeof *lf->out * n), "%s, %s: relu6 is linear then clip:0:6",
		      on, lf->name);
		CHECK(!memcmp(lf->out, m[2].layer[i].out, sizeof *lf->out * n), "%s, %s: 2 threads' bits", on,
		      lf->name);
	}
	CHECK(m[0].nparams == m[1].nparams && m[0].loss == m[1].loss, "the loss: %g and %g", m[0].loss, m[1].loss);
	CHECK(!memcmp(m[0].grads, m[1].grads, sizeof *m[0].grads * m[0].nparams),
	      "%s: relu6's parameter gradients are linear then clip:0:6's", on);
	CHECK(!memcmp(m[0].grads, m[2].grads, sizeof *m[0].grads * m[0].nparams),
	      "%s: relu6's parameter gradients on 2 threads", on);
	for (int k = 0; k < 3; k++)
		model_free(&m[k]);
}

/* The spec's graph: sources, shapes, the gradient buffers a chain and a branch need. */
static void test_graph(void)
{
	char err[ERR_MAX];
	model m;

	CHECK(model_init(&m, MODEL_DEFAULT_SPEC, (model_size){ .h = 16, .w = 16, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0,
	      "%s", err);
	CHECK(m.ngbuf == 2 && m.gtmp == NULL, "a chain backs up through 2 buffers, not %d", m.ngbuf);
	CHECK(m.layer[3].out == m.layer[2].out, "dropout works in place on its only reader's input");
	model_free(&m);
	CHECK(model_init(&m, "a=conv:3x3:4 b=conv:3x3:4 c=conv:3x3:4 r=add@a,c k=concat@r,b out=dense:K",
			 (model_size){ .h = 5, .w = 5, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0, "%s", err);
	CHECK(m.layer[3].nsrc == 2 && m.layer[3].src[0] == 0 && m.layer[3].src[1] == 2, "add reads a and c");
	CHECK(m.layer[4].oc == 8 && m.layer[0].nuse == 2 && m.layer[1].nuse == 2, "concat: 8 channels; a, b read twice");
	CHECK(m.ngbuf >= 3 && m.gtmp != NULL, "branches: %d buffers and a sum buffer", m.ngbuf);
	CHECK(model_find_layer(&m, "k") == 4 && model_find_layer(&m, "zz") == -1, "layers by name");
	model_free(&m);
	/* inference-only graphs (classes 0) may end anywhere, on any input depth */
	CHECK(model_init(&m, "a=conv:3x3:4:linear", (model_size){ .h = 5, .w = 4, .c = 2, .max_batch = 2 }, err) == 0,
	      "classes 0: %s", err);
	CHECK(m.c == 2 && m.layer[0].oc == 4 && m.layer[0].g.c == 2, "2 input channels");
	float x[2 * 5 * 4 * 2] = { 0 };

	/* channel 1 of pixel (0, 0) through tap (1, 1), input channel 1, output 3 */
	x[1] = 1;
	m.params[model_find_param(&m, "a/weights1_1")->off + ((1 * 3 + 1) * 2 + 1) * 4 + 3] = 2;
	model_forward_float(&m, x, NULL, 2);
	CHECK(m.layer[0].out[3] == 2 && m.layer[0].out[4 * 5 * 4] == 0, "float input through the centre tap");
	model_free(&m);
}

/* A batch large enough to be normalised on the model's threads (3 images of 120x100x3):
 * every pixel of every image its own value, in each channel order, on 1, 2 and 3. */
static void test_norm_threads(const float *mean, const float *sd)
{
	enum { B = 3, H = 120, W = 100, N = B * H * W * 3 };
	char err[ERR_MAX];
	model m;
	uint8_t *img = malloc(N);

	CHECK(img != NULL, "out of memory");
	for (int i = 0; i < N; i++)
		img[i] = (uint8_t)(i * 7 + i / 251);
	CHECK(model_init(&m, "a=conv:1x1:2:linear gap", (model_size){ .h = H, .w = W, .classes = 2, .max_batch = B }, err) == 0, "%s", err);
	for (int bgr = -1; bgr <= 1; bgr++)
		for (int t = 1; t <= 3; t++) {
			int bad = 0;

			CHECK(model_set_threads(&m, t, err) == 0, "%s", err);
			if (bgr >= 0)
				CHECK(model_set_norm(&m, mean, sd, bgr, err) == 0, "%s", err);
			memset(m.input, 0xff, sizeof *m.input * N);
			model_forward(&m, img, NULL, B);
			for (int i = 0; i < N && !bad; i++) {
				int c = i % 3, p = bgr == 1 ? i - c + 2 - c : i;
				double want = bgr < 0 ? img[i] / 255.0 : (img[p] / 255.0 - mean[c]) / sd[c];

				bad = !(fabs(m.input[i] - want) <= 1e-5);   /* a NaN left by 0xff too */
				CHECK(!bad, "bgr %d, %d threads: float %d is %g, want %g", bgr, t, i, m.input[i], want);
			}
		}
	model_free(&m);
	free(img);
}

static void test_norm(void)
{
	char err[ERR_MAX];
	model m;
	uint8_t img[4 * 4 * 3];
	float x[4 * 4 * 3];
	const float mean[3] = { 0.485f, 0.456f, 0.406f }, sd[3] = { 0.229f, 0.224f, 0.225f };

	for (int i = 0; i < 4 * 4 * 3; i++)
		img[i] = (uint8_t)(i * 5 + 3);
	CHECK(model_init(&m, "a=conv:1x1:2:linear gap", (model_size){ .h = 4, .w = 4, .classes = 2, .max_batch = 1 }, err) == 0, "%s", err);
	CHECK(model_norm_default(&m), "default: plain /255");
	model_forward(&m, img, NULL, 1);
	for (int i = 0; i < 48; i++)
		CHECK(m.input[i] == img[i] * (1.0f / 255.0f), "default: pixel %d is p/255", i);
	CHECK(model_set_norm(&m, mean, sd, 1, err) == 0 && !model_norm_default(&m), "%s", err);
	model_forward(&m, img, NULL, 1);
	memcpy(x, m.input, sizeof x);
	for (int i = 0, bad = 0; i < 16 && !bad; i++)
		for (int c = 0; c < 3; c++) {
			double want = (img[i * 3 + 2 - c] / 255.0 - mean[c]) / sd[c];

			bad += fabs(x[i * 3 + c] - want) > 1e-5;
			CHECK(!bad, "bgr pixel %d channel %d: %g, want %g", i, c, x[i * 3 + c], want);
		}
	CHECK(model_set_norm(&m, mean, (float[]){ 1, 0, 1 }, 0, err) == -1 && strstr(err, "std"), "std 0 refused: %s", err);
	test_norm_threads(mean, sd);

	/* the checkpoint carries it; a default model's has no member for it */
	char dir[] = "/tmp/petcnn-norm-XXXXXX", path[64];
	tensor classes, names;
	ckpt_state st = { .optim = CKPT_NONE };
	model back;
	npz z;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof path, "%s/m.npz", dir);
	CHECK(tensor_from_strings(&names, (const char *[]){ "a", "b" }, 2, err) == 0, "%s", err);
	CHECK(ckpt_save(path, &m, &names, &st, err) == 0, "save: %s", err);
	CHECK(ckpt_load(path, &back, 1, 0, &classes, &st, err) == 0, "load: %s", err);
	CHECK(!memcmp(back.mean, mean, sizeof mean) && !memcmp(back.std, sd, sizeof sd) && back.bgr == 1,
	      "mean, std and channel order come back");
	model_free(&back);
	tensor_free(&classes);
	model_free(&m);
	CHECK(model_init(&m, "a=conv:1x1:2:linear gap", (model_size){ .h = 4, .w = 4, .classes = 2, .max_batch = 1 }, err) == 0, "%s", err);
	CHECK(ckpt_save(path, &m, &names, &st, err) == 0, "save: %s", err);
	npz_init(&z);
	CHECK(npz_read(&z, path, err) == 0, "%s", err);
	CHECK(!npz_get(&z, "model/mean") && !npz_get(&z, "model/std") && !npz_get(&z, "model/bgr"),
	      "the default normalisation writes nothing");
	npz_free(&z);
	tensor_free(&names);
	unlink(path);
	rmdir(dir);
	model_free(&m);
}

/* model_backward_adam against model_backward then model_adam_step: the same parameters and
 * Adam state to the bit after three steps, on 1 and 2 threads, on models whose fc1
 * (4096 x 512 at 32x32: streaming) takes the fused path and whose other layers do not:
 * the seed's, and one whose fc1 reads a ReLU conv directly (no dropout or pool below to
 * mask its din again: the fused path must apply the ReLU's mask itself). */
static void test_backward_adam(void)
{
	int B = 4, S = 32, K = 2, labels[4] = { 0, 1, 1, 0 };
	uint8_t *img = malloc((size_t)B * S * S * 3);
	optim_adam o = { 1e-3, 0.9, 0.999, 1e-8 };
	const char *specs[] = { MODEL_DEFAULT_SPEC,
				"conv1=conv:3x3:8 conv2=conv:3x3:4 fc1=dense:512 softmax=dense:K" };
	char err[ERR_MAX];

	for (size_t i = 0; i < (size_t)B * S * S * 3; i++)
		img[i] = (uint8_t)((i * 131 + 7) % 251);
	for (int k = 0; k < 2; k++)
		for (int threads = 1; threads <= 2; threads++) {
			model a, b;
			const model_param *fc1;
			int same = 1;

			CHECK(model_init(&a, specs[k], (model_size){ .h = S, .w = S, .classes = K, .max_batch = B, .train = 1 }, err) == 0 &&
			      model_init(&b, specs[k], (model_size){ .h = S, .w = S, .classes = K, .max_batch = B, .train = 1 }, err) == 0, "init: %s", err);
			model_set_threads(&a, threads, err);
			model_set_threads(&b, threads, err);
			model_init_params(&a, MODEL_INIT_SEED, 5);
			model_init_params(&b, MODEL_INIT_SEED, 5);
			fc1 = &a.param[a.layer[model_find_layer(&a, "fc1")].wparam];
			CHECK(dense_streams(B, (int)fc1->shape[0], (int)fc1->shape[1]),
			      "model %d: fc1 streams here, so the fused path is taken", k);
			float *w0 = malloc(sizeof *w0 * fc1->n);

			memcpy(w0, b.params + fc1->off, sizeof *w0 * fc1->n);
			for (int t = 1; t <= 3; t++) {
				rng ra, rb;

				rng_stream(&ra, 4, (uint64_t)t);
				rng_stream(&rb, 4, (uint64_t)t);
				model_train(&a, 0.8f, 0.5f, &ra);
				model_train(&b, 0.8f, 0.5f, &rb);
				model_forward(&a, img, labels, B);
				model_forward(&b, img, labels, B);
				model_backward(&a);
				model_adam_step(&a, &o, t);
				model_backward_adam(&b, &o, t);
			}
			same = !memcmp(a.params, b.params, sizeof *a.params * a.nparams) &&
			       !memcmp(a.adam_m, b.adam_m, sizeof *a.adam_m * a.nparams) &&
			       !memcmp(a.adam_v, b.adam_v, sizeof *a.adam_v * a.nparams);
			CHECK(same, "model %d, %d thread(s): fused backward+Adam gives the unfused bits", k,
			      threads);
			/* equal because both moved, not because neither did */
			CHECK(memcmp(b.params + fc1->off, w0, sizeof *w0 * fc1->n) != 0, "fc1's weights moved");
			free(w0);
			model_free(&a);
			model_free(&b);
		}
	free(img);
}

/* Sentinel bits no gradient can have: a NaN with a payload. */
static float sentinel(void)
{
	uint32_t u = 0x7fc0beefu;
	float f;

	memcpy(&f, &u, sizeof f);
	return f;
}

static int all_sentinel(const float *x, size_t n)
{
	float s = sentinel();

	for (size_t i = 0; i < n; i++)
		if (memcmp(&x[i], &s, sizeof s))
			return 0;
	return 1;
}

static int all_zero_bits(const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (x[i] != 0 || signbit(x[i]))
			return 0;
	return 1;
}

/* One training forward and backward of m on (img, labels), dropout from seed 5. */
static void fwd_bwd(model *m, const uint8_t *img, const int *labels, int B)
{
	rng r;

	rng_seed(&r, 5);
	model_train(m, 0.5f, 0.5f, &r);
	model_forward(m, img, labels, B);
	model_backward(m);
}

static void test_freeze(void)
{
	const char *spec = "conv1_1=conv:3x3:8 conv1_2=conv:3x3:8 pool1=maxpool:2x2 drop:conv "
			   "conv2_1=conv:3x3:8 a=conv:3x3:8 r=add:relu@conv2_1,a pool2=maxpool:2x2 drop:conv "
			   "fc1=dense:32 drop:fc softmax=dense:K";
	model_size sz = { .h = 16, .w = 16, .classes = 3, .max_batch = 4, .train = 1 };
	/* which layers to freeze, how: below (freeze_below) or a list */
	static const struct { const char *names; int below; } cases[] = {
		{ "conv2_1", 1 }, { "fc1", 1 }, { "conv1_2,fc1", 0 }, { "a", 0 },
	};
	int B = 4, labels[4] = { 0, 1, 2, 1 };
	uint8_t img[4 * 16 * 16 * 3];
	char err[ERR_MAX];
	model a, b;

	for (size_t i = 0; i < sizeof img; i++)
		img[i] = (uint8_t)(i * 37 % 251);
	CHECK(model_init(&a, spec, sz, err) == 0, "%s", err);
	model_init_params(&a, MODEL_INIT_HE, 3);
	fwd_bwd(&a, img, labels, B);
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		optim_adam o = { 1e-3, 0.9, 0.999, 1e-8 };
		float *p0;
		int ok = 1, nfrozen = 0;

		CHECK(model_init(&b, spec, sz, err) == 0, "%s", err);
		model_init_params(&b, MODEL_INIT_HE, 3);
		CHECK((cases[c].below ? model_freeze_below(&b, cases[c].names, err)
				      : model_freeze(&b, cases[c].names, err)) == 0, "%s", err);
		CHECK(b.ngbuf <= a.ngbuf, "%s: %d gradient buffers, unfrozen %d", cases[c].names, b.ngbuf, a.ngbuf);
		for (size_t i = 0; i < b.nparams; i++)
			b.grads[i] = sentinel();
		fwd_bwd(&b, img, labels, B);
		CHECK(!memcmp(a.probs, b.probs, sizeof *a.probs * 3 * B), "%s: the same forward", cases[c].names);
		for (int i = 0; i < b.nparam; i++) {
			const model_param *p = &b.param[i];

			if (model_param_frozen(&b, i)) {
				nfrozen++;
				ok &= all_sentinel(b.grads + p->off, p->n);
				CHECK(all_sentinel(b.grads + p->off, p->n), "%s: frozen %s got a gradient", cases[c].names, p->name);
			} else {
				CHECK(!memcmp(a.grads + p->off, b.grads + p->off, sizeof(float) * p->n),
				      "%s: %s's gradient differs from the unfrozen model's", cases[c].names, p->name);
			}
		}
		CHECK(nfrozen > 0 && ok, "%s: %d frozen tensors", cases[c].names, nfrozen);
		/* Adam steps (fused and not): frozen parameters keep their bits, their state
		 * stays unwritten */
		p0 = malloc(sizeof *p0 * b.nparams);
		memcpy(p0, b.params, sizeof *p0 * b.nparams);
		model_adam_step(&b, &o, 1);
		for (int t = 2; t < 5; t++) {
			fwd_bwd(&b, img, labels, B);
			model_backward_adam(&b, &o, t);
		}
		for (int i = 0; i < b.nparam; i++) {
			const model_param *p = &b.param[i];
			int moved = memcmp(p0 + p->off, b.params + p->off, sizeof(float) * p->n) != 0;

			if (model_param_frozen(&b, i))
				CHECK(!moved && all_zero_bits(b.adam_m + p->off, p->n) &&
				      all_zero_bits(b.adam_v + p->off, p->n) && all_sentinel(b.grads + p->off, p->n),
				      "%s: frozen %s changed (or its state or gradient was written)", cases[c].names,
				      p->name);
			else
				CHECK(moved, "%s: trainable %s did not move", cases[c].names, p->name);
		}
		free(p0);
		model_free(&b);
	}
	/* the layers below the lowest trainable one need no gradient buffers */
	CHECK(model_init(&b, spec, sz, err) == 0 && model_freeze_below(&b, "fc1", err) == 0, "%s", err);
	CHECK(b.ngbuf < a.ngbuf && b.gtmp == NULL, "frozen below fc1: %d gradient buffers (unfrozen %d), tmp %p",
	      b.ngbuf, a.ngbuf, (void *)b.gtmp);
	{
		char names[256];

		CHECK(model_frozen_names(&b, names, sizeof names) == 4 && !strcmp(names, "conv1_1,conv1_2,conv2_1,a"),
		      "frozen names '%s'", names);
	}
	CHECK(model_unfreeze(&b, err) == 0 && b.ngbuf == a.ngbuf, "unfrozen again: %d buffers", b.ngbuf);
	/* names that are no parametrised layer */
	CHECK(model_freeze(&b, "conv1_1,nope", err) == -1 && strstr(err, "'nope'") &&
	      strstr(err, "conv1_1 conv1_2 conv2_1 a fc1 softmax"), "unknown name: %s", err);
	CHECK(model_freeze(&b, "pool1", err) == -1 && strstr(err, "no parameters"), "pool: %s", err);
	CHECK(model_freeze_below(&b, "nope", err) == -1 && strstr(err, "'nope'"), "below unknown: %s", err);
	model_free(&b);
	model_free(&a);
}

/* The cut for feature caching, and forward_to + forward_from = forward, bit for bit. */
static void test_cache_cut(void)
{
	model_size sz = { .h = 16, .w = 16, .classes = 2, .max_batch = 3, .train = 1 };
	int labels[3] = { 0, 1, 1 }, cut;
	uint8_t img[3 * 16 * 16 * 3];
	float *probs, *feats;
	char err[ERR_MAX];
	double loss;
	model m;
	rng r;

	for (size_t i = 0; i < sizeof img; i++)
		img[i] = (uint8_t)(i * 91 % 253);
	CHECK(model_init(&m, MODEL_DEFAULT_SPEC, sz, err) == 0, "%s", err);
	model_init_params(&m, MODEL_INIT_SEED, 1);
	CHECK(model_cache_cut(&m, 1, 0.5f) == -1, "nothing frozen: no cut");
	CHECK(model_freeze_below(&m, "fc1", err) == 0, "%s", err);
	CHECK(model_cache_cut(&m, 0.2f, 0.5f) == 2, "dropout after pool1 draws: the cut is pool1 (%d)",
	      model_cache_cut(&m, 0.2f, 0.5f));
	cut = model_cache_cut(&m, 1, 0.5f);
	CHECK(cut == 7, "cut at the dropout after pool2 (%d)", cut);
	probs = malloc(sizeof *probs * 6);
	feats = malloc(sizeof *feats * 3 * m.layer[7].out_n);
	rng_seed(&r, 9);
	model_train(&m, 1, 0.5f, &r);
	model_forward(&m, img, labels, 3);
	memcpy(probs, m.probs, sizeof *probs * 6);
	loss = m.loss;
	model_forward_to(&m, img, cut, 3);
	memcpy(feats, m.layer[cut].out, sizeof *feats * 3 * m.layer[cut].out_n);
	model_forward(&m, img + 16 * 16 * 3, labels, 1);   /* something else in between */
	rng_seed(&r, 9);
	model_forward_from(&m, cut, feats, labels, 3);
	CHECK(!memcmp(probs, m.probs, sizeof *probs * 6) && loss == m.loss, "forward from the cut: the same bits");
	free(probs), free(feats);
	model_free(&m);
	/* a branch reading across the cut moves it down */
	CHECK(model_init(&m, "c1=conv:3x3:4 c2=conv:3x3:4 s=add@c1,c2 p=maxpool:2x2 fc=dense:K", sz, err) == 0, "%s", err);
	CHECK(model_freeze(&m, "c1,c2", err) == 0, "%s", err);
	CHECK(model_cache_cut(&m, 1, 1) == 3, "cut at p (%d)", model_cache_cut(&m, 1, 1));
	model_free(&m);
	CHECK(model_init(&m, "c1=conv:3x3:4 c2=conv:3x3:4 p=maxpool:2x2 c3=conv:3x3:4@c1 q=maxpool:2x2 s=add@p,q fc=dense:K",
			 sz, err) == 0, "%s", err);
	CHECK(model_freeze(&m, "c1,c2", err) == 0, "%s", err);
	CHECK(model_cache_cut(&m, 1, 1) == 0, "c3 reads c1: cut at c1 (%d)", model_cache_cut(&m, 1, 1));
	model_free(&m);
}

/* Activation gradients (Grad-CAM, saliency): the input's against central differences of
 * a logit, on a graph with every kind of reader; a layer's read by a dense layer alone
 * is that layer's weight column. Parameters' gradients are never written. */
static void test_grad_at(void)
{
	const char *spec = "a=conv:3x3:4 b=conv:3x3:4:linear@input s=add:relu@a,b k=concat@s,a "
			   "p=maxpool:2x2 q=avgpool:2x2:s1:p0,0,1,1 n=bn c=clip:-0.3:0.8 out=dense:K";
	int H = 5, W = 6, K = 3, B = 2;
	size_t nx = (size_t)B * H * W * 3;
	char err[ERR_MAX];
	model m;
	float *x = malloc(sizeof *x * nx), *gx = malloc(sizeof *gx * nx), seed[6] = { 0 };
	double maxerr = 0, maxg = 0;

	CHECK(model_init(&m, spec, (model_size){ .h = H, .w = W, .classes = K, .max_batch = B }, err) == 0, "%s", err);
	model_init_params(&m, MODEL_INIT_HE, 5);
	CHECK(model_grad_init(&m, err) == 0, "grad init: %s", err);
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((i * 37 % 101) / 101.0 - 0.4);
	seed[0 * K + 2] = 1, seed[1 * K + 1] = 1;       /* image 0: class 2; image 1: class 1 */
	model_forward_float(&m, x, NULL, B);
	model_grad_at(&m, seed, MODEL_INPUT, gx);
	for (size_t i = 0; i < nx; i += 7) {
		float s0 = x[i];
		double lp, lm;
		int n = (int)(i / (nx / B)), c = n ? 1 : 2;

		x[i] = s0 + 1e-3f;
		model_forward_float(&m, x, NULL, B);
		lp = m.layer[m.nlayer - 1].out[n * K + c];
		x[i] = s0 - 1e-3f;
		model_forward_float(&m, x, NULL, B);
		lm = m.layer[m.nlayer - 1].out[n * K + c];
		x[i] = s0;
		if (fabs((lp - lm) / 2e-3 - gx[i]) > maxerr)
			maxerr = fabs((lp - lm) / 2e-3 - gx[i]);
		maxg = fmax(maxg, fabs(gx[i]));
	}
	CHECK(maxg > 0 && maxerr / maxg < 2e-2, "input gradient rel err %.3g (max %.3g)", maxerr / maxg, maxg);
	/* c is read by the dense layer alone: d logit / d c is its weight column */
	int lc = model_find_layer(&m, "c");
	const model_param *wp = model_find_param(&m, "out/weights2_1");
	size_t nc = m.layer[lc].out_n;
	float *gc = malloc(sizeof *gc * B * nc);

	model_forward_float(&m, x, NULL, B);
	model_grad_at(&m, seed, lc, gc);
	int same = wp != NULL;
	for (size_t i = 0; same && i < nc; i++)
		same = gc[i] == m.params[wp->off + i * K + 2] && gc[nc + i] == m.params[wp->off + i * K + 1];
	CHECK(same, "d logit / d c is the dense layer's weight column");
	CHECK(m.grads == NULL, "an inference model has no parameter gradients to write");
	free(gc);
	free(x);
	free(gx);
	model_free(&m);
}

/* Winograd in a model: every 3x3 layer it fits runs on transformed weights, made again
 * after the weights change (a load, an init, each training update), whether the layer
 * trains, is frozen, is an inference model's, or the explainers read its gradients
 * (model_grad_init); so does its input gradient, on the turned weights. Its outputs, and
 * the gradients below it, are the direct kernels' within rounding each time. */
/* Layer li's output in tr equals, to the bit, that of a model made afresh with tr's
 * parameters (its direct kernels' weights laid out anew). */
static int direct_fresh(const model *tr, const char *spec, model_size sz, const uint8_t *img,
			int B, int li)
{
	char err[ERR_MAX];
	model f;
	int same;

	sz.train = 0;
	CHECK(model_init(&f, spec, sz, err) == 0 && model_set_threads(&f, tr->threads, err) == 0,
	      "%s", err);
	memcpy(f.params, tr->params, sizeof *f.params * f.nparams);
	model_forward(&f, img, NULL, B);
	same = !memcmp(f.layer[li].out, tr->layer[li].out, sizeof(float) * (size_t)B * f.layer[li].out_n);
	model_free(&f);
	return same;
}

/* The direct kernels' forward lays out a layer's weights once per set of weights: after
 * an update of a layer that trains, a freeze, new threads, a load (model_params_changed),
 * every output is still a fresh model's. A strided 3x3 (the row or the plane kernels by
 * ISA) and a 1x1 (the plane kernels), each with more than 32 output channels, whose
 * layouts differ from the weights'. */
static void test_direct_layout(void)
{
	enum { H = 12, W = 12, K = 3, B = 2 };
	const char *spec = "a=conv:3x3:48:s2 b=conv:1x1:40 gap out=dense:K";
	model tr;
	char err[ERR_MAX];
	uint8_t img[B * H * W * 3];
	int labels[B] = { 0, 2 };
	model_size sz = { .h = H, .w = W, .classes = K, .max_batch = B, .train = 1 };
	optim_adam o = { 1e-1, 0.9, 0.999, 1e-8 };

	for (size_t i = 0; i < sizeof img; i++)
		img[i] = (uint8_t)((i * 29 + 5) % 256);
	CHECK(model_init(&tr, spec, sz, err) == 0 && model_set_threads(&tr, 2, err) == 0, "%s", err);
	int ia = model_find_layer(&tr, "a"), ib = model_find_layer(&tr, "b");
	int laid = conv2d_direct_floats(&tr.layer[ia].plan) > 0 &&
		   conv2d_direct_floats(&tr.layer[ib].plan) > 0;

	model_forward(&tr, img, labels, B);
	CHECK(!laid || (tr.layer[ia].direct_ok && tr.layer[ib].direct_ok), "%s: both laid out",
	      isa_name(tr.isa));
	for (int round = 0; round < 5; round++) {
		if (round == 1 || round == 2) {
			/* 2: a frozen, so its layout outlives the update */
			if (round == 2) {
				CHECK(model_freeze(&tr, "a", err) == 0, "%s", err);
				model_forward(&tr, img, labels, B);
			}
			model_backward(&tr);
			model_adam_step(&tr, &o, round);
			CHECK(!laid || (tr.layer[ia].direct_ok == (round == 2) && !tr.layer[ib].direct_ok),
			      "round %d: an update makes a trained layer's layout stale", round);
		} else if (round == 3) {
			CHECK(model_unfreeze(&tr, err) == 0 && model_set_threads(&tr, 3, err) == 0, "%s", err);
		} else if (round == 4) {
			for (size_t i = 0; i < tr.nparams; i++)
				tr.params[i] *= -0.5f;
			model_params_changed(&tr);
			CHECK(!tr.layer[ia].direct_ok && !tr.layer[ib].direct_ok, "a load makes them stale");
		}
		model_forward(&tr, img, labels, B);
		CHECK(direct_fresh(&tr, spec, sz, img, B, ia) && direct_fresh(&tr, spec, sz, img, B, ib),
		      "%s, round %d: the outputs are a fresh model's", isa_name(tr.isa), round);
	}
	model_free(&tr);
}

static void test_wino(void)
{
	enum { H = 8, W = 8, K = 3, B = 2 };
	const char *spec = "a=conv:3x3:16 b=conv:3x3:16 gap out=dense:K";
	model inf, tr, dir, ex, trd;
	char err[ERR_MAX];
	uint8_t img[B * H * W * 3];
	int labels[B] = { 0, 2 };
	model_size sz = { .h = H, .w = W, .classes = K, .max_batch = B };

	for (size_t i = 0; i < sizeof img; i++)
		img[i] = (uint8_t)((i * 53 + 7) % 256);
	CHECK(model_init(&inf, spec, sz, err) == 0 && model_init(&dir, spec, sz, err) == 0 &&
	      model_init(&ex, spec, sz, err) == 0, "%s", err);
	sz.train = 1;
	CHECK(model_init(&tr, spec, sz, err) == 0 && model_init(&trd, spec, sz, err) == 0, "%s", err);
	/* the references: direct kernels throughout, as PETCNN_WINOGRAD=0 */
	dir.no_wino = trd.no_wino = 1;
	int ib = model_find_layer(&inf, "b");

	if (!convwino_fits(&inf.layer[ib].g, inf.isa)) {
		printf("test_model: no Winograd path on %s: its model tests skipped\n", isa_name(inf.isa));
		model_free(&inf), model_free(&tr), model_free(&dir), model_free(&ex), model_free(&trd);
		return;
	}
	size_t n = (size_t)B * inf.layer[ib].out_n;
	optim_adam o = { 1e-1, 0.9, 0.999, 1e-8 };

	/* which layers run by Winograd */
	model_init_params(&inf, MODEL_INIT_HE, 11);
	model_init_params(&tr, MODEL_INIT_HE, 11);
	model_init_params(&ex, MODEL_INIT_HE, 11);
	model_forward(&inf, img, NULL, B);
	CHECK(inf.layer[ib].wino_ok, "an inference model's 3x3 16->16 runs by Winograd");
	model_forward(&tr, img, labels, B);
	CHECK(tr.layer[ib].wino_ok, "a trained layer runs by Winograd");
	/* on a cache line: a trained layer's remakes store in whole vectors (convwino_pack) */
	CHECK((uintptr_t)tr.layer[ib].wino % 64 == 0, "its Winograd weights start on a cache line");
	model_backward(&tr);
	model_adam_step(&tr, &o, 1);
	CHECK(!tr.layer[ib].wino_ok, "an update makes its Winograd weights stale");
	CHECK(model_grad_init(&ex, err) == 0, "%s", err);
	model_forward(&ex, img, NULL, B);
	CHECK(ex.layer[ib].wino_ok, "where the explainers read gradients too");
	/* after each change of the weights, Winograd's outputs are the direct ones' */
	for (int round = 0; round < 5; round++) {
		double worst = 0, worst_tr = 0;

		CHECK(model_unfreeze(&tr, err) == 0, "%s", err);
		if (round == 1) {
			model_init_params(&tr, MODEL_INIT_HE, 12);
		} else if (round >= 2) {
			/* a trained layer (rounds 2 and 4: Adam, momentum), one frozen again after
			 * training (3) */
			model_forward(&tr, img, labels, B);
			model_backward(&tr);
			if (round == 4)
				model_momentum_step(&tr, 0.1, 0.9);
			else
				model_adam_step(&tr, &o, round);
		}
		if (round == 3)
			CHECK(model_freeze_below(&tr, "out", err) == 0, "%s", err);
		memcpy(inf.params, tr.params, sizeof *inf.params * inf.nparams);
		memcpy(dir.params, tr.params, sizeof *dir.params * dir.nparams);
		model_params_changed(&inf);
		model_params_changed(&dir);
		model_forward(&dir, img, NULL, B);
		model_forward(&inf, img, NULL, B);
		model_forward(&tr, img, labels, B);
		CHECK(tr.layer[ib].wino_ok && inf.layer[ib].wino_ok && !dir.layer[ib].wino_ok,
		      "round %d: by Winograd, the reference not", round);
		for (size_t i = 0; i < n; i++) {
			worst = fmax(worst, fabs(inf.layer[ib].out[i] - dir.layer[ib].out[i]));
			worst_tr = fmax(worst_tr, fabs(tr.layer[ib].out[i] - dir.layer[ib].out[i]));
		}
		CHECK(worst > 0 && worst < 1e-4 && worst_tr > 0 && worst_tr < 1e-4,
		      "round %d: Winograd's outputs are the direct ones' within rounding (worst %g, "
		      "training %g)", round, worst, worst_tr);
		if (round == 3) {
			/* an update leaves a frozen layer's Winograd weights as they are */
			model_backward(&tr);
			model_adam_step(&tr, &o, round);
			CHECK(tr.layer[ib].wino_ok, "a frozen layer's Winograd weights outlive an update");
		}
		/* and b's weight and bias gradients (Winograd's), and a's weight gradient, which b's
		 * input gradient (Winograd's too) feeds */
		if (round != 3) {
			int pp[3] = { tr.layer[model_find_layer(&tr, "a")].wparam, tr.layer[ib].wparam,
				      tr.layer[ib].bparam };

			memcpy(trd.params, tr.params, sizeof *trd.params * trd.nparams);
			model_params_changed(&trd);
			model_forward(&trd, img, labels, B);
			model_backward(&trd);
			model_backward(&tr);
			for (int k = 0; k < 3; k++) {
				const model_param *pa = &tr.param[pp[k]];
				double gw = 0, gmax = 0;

				for (size_t i = 0; i < pa->n; i++) {
					gw = fmax(gw, fabs(tr.grads[pa->off + i] - trd.grads[pa->off + i]));
					gmax = fmax(gmax, fabs(trd.grads[pa->off + i]));
				}
				CHECK(tr.layer[ib].wino_t_ok && gmax > 0 && gw <= 1e-4 * gmax && (k == 0 || gw > 0),
				      "round %d: %s gradient (b's by Winograd, its din too): %g of %g", round,
				      k == 0 ? "a's weight" : k == 1 ? "b's weight" : "b's bias", gw, gmax);
			}
		}
	}
	model_free(&inf), model_free(&tr), model_free(&dir), model_free(&ex), model_free(&trd);
}

/* model_lean: the same bits as whole batches, for a graph with branches, a partial last
 * micro-batch and every kind the early layers of the torchvision networks have. */
static void test_lean(void)
{
	enum { H = 96, W = 96, K = 5, B = 7 };
	const char *spec = "a=conv:3x3:16 d=conv:3x3:16:g16:relu6 p=conv:1x1:16:linear r=add@a,p "
			   "k=concat@r,d n=bn:relu c=clip:0:4 m=maxpool:3x3:s1:same v=avgpool:3x3:s1:same "
			   "e=conv:3x3:32:s2 gap out=dense:K";
	model lean, whole, tr;
	char err[ERR_MAX];
	uint8_t *img = malloc((size_t)B * H * W * 3);
	size_t nl;

	for (size_t i = 0; i < (size_t)B * H * W * 3; i++)
		img[i] = (uint8_t)((i * 97 + i / 7) % 251);
	CHECK(model_init(&lean, spec, (model_size){ .h = H, .w = W, .classes = K, .max_batch = B }, err) == 0 &&
	      model_init(&whole, spec, (model_size){ .h = H, .w = W, .classes = K, .max_batch = B }, err) == 0 &&
	      model_init(&tr, spec, (model_size){ .h = H, .w = W, .classes = K, .max_batch = B, .train = 1 }, err) == 0,
	      "%s", err);
	model_init_params(&lean, MODEL_INIT_HE, 5);
	model_init_params(&whole, MODEL_INIT_HE, 5);
	model_set_threads(&lean, 2, err), model_set_threads(&whole, 2, err);
	CHECK(model_lean(&lean, err) == 0 && model_lean(&tr, err) == 0, "%s", err);
	int parts = 0;

	for (int i = 0; i < tr.nlayer; i++)
		parts += tr.layer[i].transient;
	CHECK(tr.lean_n == 11 && parts == 0, "a training model runs in micro-batches, every output whole "
	      "(%d layers, %d transient)", tr.lean_n, parts);
	/* a residual's input parts the spans: a alone takes the batch (0.7 MB an image in and
	 * out), the rest 3 images at a time (the largest: concat's 2 x 16 channels in, 32 out,
	 * 2.4 MB an image) */
	CHECK(lean.lean_n == 11 && lean.lean_nseg == 2 && lean.lean_seg_end[0] == 1 && lean.lean_seg_mb[0] == B &&
	      lean.lean_seg_end[1] == 11 && lean.lean_seg_mb[1] == 3, "the layers before the dense one run lean "
	      "(%d layers, %d spans, %d and %d at a time)", lean.lean_n, lean.lean_nseg, lean.lean_seg_mb[0],
	      lean.lean_seg_mb[1]);
	CHECK(!lean.layer[lean.lean_n - 1].transient && !lean.layer[0].transient && lean.layer[1].transient &&
	      lean.layer[5].transient && lean.layer[9].transient,
	      "the last lean layer's output and a (read by two spans) whole, the others' transient");
	CHECK(lean.lean_nbuf >= 3 && lean.lean_nbuf < lean.lean_n - 2, "%d buffers for %d transient outputs",
	      lean.lean_nbuf, lean.lean_n - 2);
	/* no map of an image reaches 1 MB: no bands */
	CHECK(lean.band_n == 0, "%d band layers", lean.band_n);
	/* every output starts on a cache line, transient or whole (model.c, alloc_lines: the
	 * depthwise layers' vectors must not straddle two) */
	int unaligned = 0;

	for (int i = 0; i < lean.nlayer; i++)
		unaligned += (uintptr_t)lean.layer[i].out % 64 != 0 || (uintptr_t)whole.layer[i].out % 64 != 0;
	CHECK(unaligned == 0, "%d layers' outputs not on a 64-byte boundary", unaligned);
	nl = (size_t)B * K;
	for (int b = B; b >= B - 1; b--) {
		model_forward(&lean, img, NULL, b);
		model_forward(&whole, img, NULL, b);
		CHECK(!memcmp(lean.layer[lean.nlayer - 1].out, whole.layer[whole.nlayer - 1].out,
			      sizeof(float) * (size_t)b * K) && !memcmp(lean.probs, whole.probs, sizeof(float) * nl / B * b),
		      "batch %d: lean and whole give the same bits", b);
		CHECK(!memcmp(lean.layer[10].out, whole.layer[10].out, sizeof(float) * (size_t)b * whole.layer[10].out_n),
		      "batch %d: the last lean layer holds every image", b);
	}
	/* a layer the caller reads (cnn-apply --layer) keeps every image's output */
	model_free(&lean);
	CHECK(model_init(&lean, spec, (model_size){ .h = H, .w = W, .classes = K, .max_batch = B }, err) == 0 &&
	      (model_keep(&lean, 5), model_lean(&lean, err)) == 0, "%s", err);
	model_init_params(&lean, MODEL_INIT_HE, 5);
	model_forward(&lean, img, NULL, B);
	CHECK(lean.lean_n == 11 && !lean.layer[5].transient && lean.layer[4].transient &&
	      !memcmp(lean.layer[5].out, whole.layer[5].out, sizeof(float) * (B - 1) * whole.layer[5].out_n),
	      "layer 5 kept whole: every image's output is the whole batch's");
	/* gradients of every layer's output need every output whole */
	CHECK(model_grad_init(&lean, err) == 0 && lean.lean_n == 0 && !lean.layer[4].transient, "%s", err);
	model_forward(&lean, img, NULL, B - 1);
	CHECK(!memcmp(lean.layer[4].out, whole.layer[4].out, sizeof(float) * (B - 1) * whole.layer[4].out_n) &&
	      !memcmp(lean.probs, whole.probs, sizeof(float) * (B - 1) * K), "after model_grad_init: whole again");
	model_free(&lean), model_free(&whole), model_free(&tr);

	/* training: a frozen base runs lean, the rest in micro-batches with whole outputs, and
	 * the steps are the same bits; a freeze or an unfreeze plans it again */
	model_size ts = { .h = H, .w = W, .classes = K, .max_batch = B, .train = 1 };
	optim_adam o = { 1e-3, 0.9, 0.999, 1e-8 };
	int labels[B] = { 0, 1, 2, 3, 4, 0, 1 };
	const char *freezes[] = { "out", "", "e" };
	int want[] = { 1, 0, 1 };

	CHECK(model_init(&lean, spec, ts, err) == 0 && model_init(&whole, spec, ts, err) == 0, "%s", err);
	model_init_params(&lean, MODEL_INIT_HE, 6);
	model_init_params(&whole, MODEL_INIT_HE, 6);
	model_set_threads(&lean, 2, err), model_set_threads(&whole, 2, err);
	CHECK(model_lean(&lean, err) == 0 && lean.lean_n == 11 && !lean.layer[1].transient,
	      "nothing frozen: micro-batches, no output transient");
	for (int f = 0, t = 1; f < 3; f++) {
		CHECK(model_unfreeze(&lean, err) == 0 && model_unfreeze(&whole, err) == 0, "%s", err);
		if (*freezes[f])
			CHECK(model_freeze_below(&lean, freezes[f], err) == 0 &&
			      model_freeze_below(&whole, freezes[f], err) == 0, "%s", err);
		CHECK(lean.lean_n > 0 && !lean.layer[1].transient == !want[f],
		      "frozen below '%s': lean %d layers, a transient output or not", freezes[f], lean.lean_n);
		for (int step = 0; step < 2; step++, t++) {
			model_forward(&lean, img, labels, B);
			model_forward(&whole, img, labels, B);
			model_backward(&lean), model_backward(&whole);
			model_adam_step(&lean, &o, t), model_adam_step(&whole, &o, t);
		}
		CHECK(lean.loss == whole.loss && !memcmp(lean.params, whole.params, sizeof(float) * lean.nparams),
		      "frozen below '%s': the same loss and parameters", freezes[f]);
	}
	model_free(&lean), model_free(&whole);
	free(img);
}

/* model_lean's spans: blocks of inverted residuals, a wide 96x96 part taking 3 images at
 * a time and a 48x48 part the whole batch; they part only between blocks, where one narrow
 * output crosses, which stays whole; the same bits as whole batches. */
static void test_lean_spans(void)
{
	enum { H = 96, W = 96, K = 5, B = 7 };
	const char *spec = "a=conv:3x3:32 d=conv:3x3:32:g32:relu6 p=conv:1x1:8:linear x=conv:1x1:48 "
			   "y=conv:3x3:48:g48:s2 z=conv:1x1:16:linear u=conv:1x1:64 w=conv:3x3:64:g64 "
			   "q=conv:1x1:16:linear r=add@z,q gap out=dense:K";
	model lean, whole;
	char err[ERR_MAX];
	uint8_t *img = malloc((size_t)B * H * W * 3);

	for (size_t i = 0; i < (size_t)B * H * W * 3; i++)
		img[i] = (uint8_t)((i * 89 + i / 5) % 253);
	CHECK(model_init(&lean, spec, (model_size){ .h = H, .w = W, .classes = K, .max_batch = B }, err) == 0 &&
	      model_init(&whole, spec, (model_size){ .h = H, .w = W, .classes = K, .max_batch = B }, err) == 0,
	      "%s", err);
	model_init_params(&lean, MODEL_INIT_HE, 7);
	model_init_params(&whole, MODEL_INIT_HE, 7);
	model_set_threads(&lean, 2, err), model_set_threads(&whole, 2, err);
	CHECK(model_lean(&lean, err) == 0, "%s", err);
	/* d's 2.4 MB an image allow 3 in 8 MB; u's 0.7 MB allow 11, the batch's 7 */
	CHECK(lean.lean_n == 11 && lean.lean_nseg == 2 && lean.lean_seg_end[0] == 6 && lean.lean_seg_mb[0] == 3 &&
	      lean.lean_seg_end[1] == 11 && lean.lean_seg_mb[1] == B, "spans: %d layers, %d spans (%d, %d images; "
	      "%d, %d)", lean.lean_n, lean.lean_nseg, lean.lean_seg_end[0], lean.lean_seg_mb[0],
	      lean.lean_seg_end[1], lean.lean_seg_mb[1]);
	CHECK(lean.layer[1].transient && lean.layer[2].transient && lean.layer[4].transient &&
	      !lean.layer[5].transient && lean.layer[8].transient && lean.layer[9].transient &&
	      !lean.layer[10].transient, "inside a span transient; z (read by both spans) and gap whole");
	for (int b = B; b >= B - 2; b--) {
		model_forward(&lean, img, NULL, b);
		model_forward(&whole, img, NULL, b);
		CHECK(!memcmp(lean.probs, whole.probs, sizeof(float) * (size_t)b * K) &&
		      !memcmp(lean.layer[5].out, whole.layer[5].out, sizeof(float) * (size_t)b * whole.layer[5].out_n),
		      "batch %d: lean and whole give the same bits", b);
	}
	model_free(&lean), model_free(&whole);
	free(img);
}

/* model_lean's bands on spec at 126x110 (keep: a layer the caller reads, or -1): want
 * band layers on AVX2 and AVX-512, none on the generic path; the same bits as whole
 * batches on 1 to 3 threads for 5, 3 and 1 images (2 or 3 threads take the odd batches
 * and the single image in parts of rows, a seam in each), the last band layer's output
 * every image's. */
static void bands_vs_whole(const char *spec, int keep, int want)
{
	enum { H = 126, W = 110, K = 5, B = 5 };
	model_size sz = { .h = H, .w = W, .classes = K, .max_batch = B };
	model band, whole;
	char err[ERR_MAX];
	uint8_t *img = malloc((size_t)B * H * W * 3);

	for (size_t i = 0; i < (size_t)B * H * W * 3; i++)
		img[i] = (uint8_t)((i * 83 + i / 11) % 241);
	CHECK(model_init(&whole, spec, sz, err) == 0, "%s", err);
	want = whole.isa >= ISA_AVX2 ? want : 0;
	model_init_params(&whole, MODEL_INIT_HE, 8);
	/* a bn's scale and shift away from 1 and 0 */
	for (int p = 0; p < whole.nparam; p++)
		if (!strncmp(whole.param[p].name, "n/", 2))
			for (size_t i = 0; i < whole.param[p].n; i++)
				whole.params[whole.param[p].off + i] = 0.5f + 0.1f * (float)(i % 7);
	for (int t = 1; t <= 3; t++) {
		int last = (want ? want : 1) - 1;

		CHECK(model_init(&band, spec, sz, err) == 0 && model_set_threads(&band, t, err) == 0 &&
		      (model_keep(&band, keep), model_lean(&band, err)) == 0, "%s", err);
		memcpy(band.params, whole.params, sizeof(float) * whole.nparams);
		model_params_changed(&band);
		CHECK(band.band_n == want && band.lean_n >= band.band_n, "%s, %d threads: %d band layers",
		      spec, t, band.band_n);
		CHECK(!want || (band.band_rows >= 1 && band.band_rows < band.layer[last].oh &&
				band.layer[1].band_cap < band.layer[1].oh && !band.layer[last].transient &&
				band.layer[last - 1].transient),
		      "%s, %d threads: %d rows a step, a ring of %d rows of %d", spec, t, band.band_rows,
		      band.layer[1].band_cap, band.layer[1].oh);
		for (int b = B; b >= 1; b -= 2) {
			model_forward(&band, img, NULL, b);
			model_forward(&whole, img, NULL, b);
			CHECK(!memcmp(band.layer[last].out, whole.layer[last].out,
				      sizeof(float) * (size_t)b * whole.layer[last].out_n) &&
			      !memcmp(band.probs, whole.probs, sizeof(float) * (size_t)b * K),
			      "%s, %d threads, batch %d: bands and whole give the same bits", spec, t, b);
		}
		/* gradients of every output need them whole: the bands undone */
		if (t == 2) {
			int same = 1;

			CHECK(model_grad_init(&band, err) == 0 && band.band_n == 0 && !band.layer[0].transient,
			      "%s: model_grad_init: %s", spec, err);
			model_forward(&band, img, NULL, B);
			model_forward(&whole, img, NULL, B);
			for (int i = 0; i < whole.nlayer; i++)
				same &= !memcmp(band.layer[i].out, whole.layer[i].out,
						sizeof(float) * B * whole.layer[i].out_n);
			CHECK(same, "%s: after model_grad_init every output whole, the same bits", spec);
		}
		model_free(&band);
	}
	model_free(&whole);
	free(img);
}

/* model_lean's bands: an inverted residual's first layers, a big map each (1.1 MB an
 * image) read by a conv, through every kind a band takes (a strided first conv, a
 * depthwise one with uneven pads and a strided one, a 1x1, bn, leaky, clip, relu, a
 * residual add, a max pool), a and b to c's small map alone (the last band layer at the
 * resolution of a padded 3x3: the parts' seams read rows above), and a layer the caller
 * reads ending them. */
static void test_bands(void)
{
	const char *spec = "a=conv:3x3:80:s2:relu6 b=conv:3x3:80:g80:p1,0,1,2:linear n=bn:relu "
			   "l=leaky:0.1 c=clip:-1:4 p=conv:1x1:80:linear r=relu s=add@a,r "
			   "m=maxpool:3x3:s1:p1,1,1,1 e=conv:3x3:80:s2:g80:relu6 d=conv:1x1:32:relu6 "
			   "x=conv:1x1:96 gap out=dense:K";

	/* a..e: after e's small map; then on to d's smaller one */
	bands_vs_whole(spec, -1, 11);
	/* e read by the caller: the bands end there */
	bands_vs_whole(spec, 9, 10);
	bands_vs_whole("a=conv:3x3:80:s2:relu6 b=conv:3x3:80:g80:p1,0,1,2:linear c=conv:1x1:24:linear "
		       "x=conv:1x1:96 gap out=dense:K", -1, 3);
}

/* Bytes of [p, p + n) resident in memory (whole pages inside it). */
static size_t resident(const void *p, size_t n)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = ((uintptr_t)p + page - 1) / page * page;
	uintptr_t hi = ((uintptr_t)p + n) / page * page;
	size_t pages = hi > lo ? (hi - lo) / page : 0, got = 0;
	unsigned char *v = malloc(pages + 1);

	if (v && pages && mincore((void *)lo, hi - lo, v) == 0)
		for (size_t i = 0; i < pages; i++)
			got += v[i] & 1;
	free(v);
	return got * page;
}

/* A training model's parameters are faulted in by model_init (on one thread or the
 * fault_threads asked for), and the optimiser state at the first step as each optimiser
 * writes it: Adam's m and v, momentum's one buffer; momentum never touches v (400 MB at
 * 224). */
static void test_fault_state(void)
{
	char err[ERR_MAX];
	model m;
	size_t bytes, v0;

	for (int adam = 0; adam < 2; adam++) {
		/* 50 MB a buffer: mapped afresh (past glibc's largest threshold for reusing freed blocks) */
		CHECK(model_init(&m, "fc=dense:1024 out=dense:K", (model_size){ .h = 64, .w = 64, .c = 3, .classes = 2, .max_batch = 1, .train = 1,
										 .fault_threads = 2 * adam }, err) == 0,
		      "%s", err);
		bytes = m.nparams * sizeof(float);
		CHECK(resident(m.params, bytes) + 2 * (size_t)sysconf(_SC_PAGESIZE) >= bytes, "fault_threads %d: "
		      "the parameters are resident (%zu of %zu bytes)", 2 * adam, resident(m.params, bytes), bytes);
		/* what is resident before the step (nothing, mapped afresh) stays */
		v0 = resident(m.adam_v, bytes);
		CHECK(adam || v0 < bytes / 4, "v mostly untouched before the first step (%zu bytes)", v0);
		if (adam)
			model_adam_step(&m, &(optim_adam){ 1e-3, 0.9, 0.999, 1e-8 }, 1);
		else
			model_momentum_step(&m, 0.1, 0.9);
		CHECK(resident(m.adam_m, bytes) > bytes / 2, "adam %d: the first buffer written", adam);
		CHECK(adam ? resident(m.adam_v, bytes) > bytes / 2 : resident(m.adam_v, bytes) == v0,
		      "adam %d: v %zu of %zu bytes resident", adam, resident(m.adam_v, bytes), bytes);
		model_free(&m);
	}
}

int main(void)
{
	test_default_names();
	test_fault_state();
	test_bad_specs();
	test_init();
	test_model_grad();
	for (isa_kind k = ISA_GENERIC; k <= ISA_AVX512; k++)
		if (isa_supported(k)) {
			setenv("PETCNN_ISA", isa_name(k), 1);
			test_relu6(k);
			unsetenv("PETCNN_ISA");
		}
	test_graph();
	test_norm();
	test_grad_at();
	test_backward_adam();
	test_freeze();
	test_cache_cut();
	test_wino();
	test_direct_layout();
	test_lean();
	test_lean_spans();
	test_bands();
	return check_done("test_model");
}
