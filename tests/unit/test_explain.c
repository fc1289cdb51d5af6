/* explain and model_grad_from: the gradient from a layer's output against central
 * differences, Grad-CAM's default layer, targets, filters' layout. (The maps themselves are
 * checked against PyTorch in tests/cnn-apply-explain.bats.) */
#include "nn/explain.h"
#include "util/errmsg.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

/* d (sum seed * from's output) / d x by central differences (steps of 1e-4: 1e-3 crosses a
 * ReLU kink here), at every 5th input, against model_grad_from; a layer below from that
 * from does not read (c, for from b) must add nothing, even with its gradient buffer left
 * dirty by a full backward. */
static void test_grad_from(void)
{
	const char *spec = "a=conv:3x3:4 c=conv:3x3:3@a b=conv:3x3:4@a k=concat@b,c,a "
			   "s=add:relu@k,k p=maxpool:2x2 out=dense:K";
	int H = 5, W = 6, K = 3, B = 2;
	size_t nx = (size_t)B * H * W * 3;
	char err[ERR_MAX];
	model m;
	float *x = malloc(sizeof *x * nx), *gx = malloc(sizeof *gx * nx), *g2 = malloc(sizeof *g2 * nx);
	float dirty[6] = { 1, -2, 3, 0.5f, -1, 2 };
	const char *froms[] = { "b", "s", "k", "out" };

	CHECK(model_init(&m, spec, (model_size){ .h = H, .w = W, .classes = K, .max_batch = B }, err) == 0, "%s", err);
	model_init_params(&m, MODEL_INIT_HE, 7);
	CHECK(model_grad_init(&m, err) == 0, "grad init: %s", err);
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((i * 53 % 97) / 97.0 - 0.3);
	for (int f = 0; f < 4; f++) {
		int L = model_find_layer(&m, froms[f]);
		size_t no = (size_t)B * m.layer[L].out_n;
		float *seed = malloc(sizeof *seed * no);
		double maxerr = 0, maxg = 0;

		for (size_t i = 0; i < no; i++)
			seed[i] = (float)((i * 29 % 13) / 13.0 - 0.4);
		model_forward_float(&m, x, NULL, B);
		model_grad_at(&m, dirty, MODEL_INPUT, g2);    /* every buffer written */
		model_grad_from(&m, L, seed, MODEL_INPUT, gx);
		for (size_t i = 0; i < nx; i += 5) {
			float s0 = x[i];
			double lp = 0, lm = 0;

			x[i] = s0 + 1e-4f;
			model_forward_float(&m, x, NULL, B);
			for (size_t j = 0; j < no; j++)
				lp += (double)seed[j] * m.layer[L].out[j];
			x[i] = s0 - 1e-4f;
			model_forward_float(&m, x, NULL, B);
			for (size_t j = 0; j < no; j++)
				lm += (double)seed[j] * m.layer[L].out[j];
			x[i] = s0;
			maxerr = fmax(maxerr, fabs((lp - lm) / ((double)(s0 + 1e-4f) - (double)(s0 - 1e-4f)) - gx[i]));
			maxg = fmax(maxg, fabs(gx[i]));
		}
		CHECK(maxg > 0 && maxerr / maxg < 2e-2, "from %s: input gradient rel err %.3g (max %.3g)", froms[f],
		      maxerr / maxg, maxg);
		free(seed);
	}
	/* from the last layer it is model_grad_at, to the bit */
	model_forward_float(&m, x, NULL, B);
	model_grad_at(&m, dirty, MODEL_INPUT, g2);
	model_grad_from(&m, m.nlayer - 1, dirty, MODEL_INPUT, gx);
	CHECK(!memcmp(gx, g2, sizeof *gx * nx), "grad_from the logits = grad_at");
	free(x), free(gx), free(g2);
	model_free(&m);
}

static void test_layers_targets(void)
{
	char err[ERR_MAX];
	model m;
	int layer = -1, t = 99;
	tensor classes;
	const char *names[] = { "samoyed", "shiba_inu" };

	CHECK(model_init(&m, MODEL_DEFAULT_SPEC, (model_size){ .h = 16, .w = 16, .classes = 2, .max_batch = 1 }, err) == 0,
	      "%s", err);
	CHECK(explain_gradcam_layer(&m, NULL, "m.npz", &layer, err) == 0 && layer == model_find_layer(&m, "conv2_2"),
	      "default layer of the default network: conv2_2 (%d)", layer);
	CHECK(explain_gradcam_layer(&m, "fc1", "m.npz", &layer, err) == -1 && strstr(err, "m.npz: layer fc1 is dense"),
	      "a dense layer: %s", err);
	CHECK(explain_gradcam_layer(&m, "conv9", "m.npz", &layer, err) == -1 && strstr(err, "no layer named 'conv9'"),
	      "unknown layer: %s", err);
	CHECK(tensor_from_strings(&classes, names, 2, err) == 0, "%s", err);
	CHECK(explain_target_parse("shiba_inu", &classes, &t, err) == 0 && t == 1, "by name");
	CHECK(explain_target_parse("0", &classes, &t, err) == 0 && t == 0, "by index");
	CHECK(explain_target_parse("pred", &classes, &t, err) == 0 && t == EXPLAIN_PRED, "pred");
	CHECK(explain_target_parse("label", &classes, &t, err) == 0 && t == EXPLAIN_LABEL, "label");
	CHECK(explain_target_parse("2", &classes, &t, err) == -1 && strstr(err, "0 samoyed, 1 shiba_inu"),
	      "index past K: %s", err);
	CHECK(explain_target_parse("cat", &classes, &t, err) == -1 && strstr(err, "'cat'"), "unknown name: %s", err);
	tensor_free(&classes);
	model_free(&m);
	/* a graph: the concat of both branches, not the pool after it nor a branch's conv */
	CHECK(model_init(&m, "c1=conv:3x3:4 c2=conv:3x3:4 s=add:relu@c1,c2 c3=conv:1x1:3@c1 cat=concat@s,c3 "
			 "p=maxpool:2x2 out=dense:K",
			 (model_size){ .h = 8, .w = 8, .classes = 2, .max_batch = 1 }, err) == 0, "%s", err);
	CHECK(explain_gradcam_layer(&m, NULL, "g.npz", &layer, err) == 0 && layer == model_find_layer(&m, "cat"),
	      "default layer of the graph: cat (%d)", layer);
	model_free(&m);
}

static void test_weights(void)
{
	char err[ERR_MAX];
	model m;
	tensor t;
	const model_param *p;

	CHECK(model_init(&m, "c=conv:3x2:5 out=dense:K", (model_size){ .h = 4, .w = 4, .classes = 2, .max_batch = 1 },
			 err) == 0, "%s", err);
	model_init_params(&m, MODEL_INIT_HE, 3);
	p = model_find_param(&m, "c/weights1_1");
	CHECK(explain_weights(&m, "c", "m.npz", &t, err) == 0, "%s", err);
	CHECK(t.ndim == 4 && t.shape[0] == 5 && t.shape[1] == 3 && t.shape[2] == 2 && t.shape[3] == 3, "OHWI shape");
	/* filter 4, row 2, column 1, channel 1 is HWIO [2][1][1][4] */
	CHECK(((float *)t.data)[((4 * 3 + 2) * 2 + 1) * 3 + 1] == m.params[p->off + ((2 * 2 + 1) * 3 + 1) * 5 + 4],
	      "HWIO -> OHWI");
	tensor_free(&t);
	CHECK(explain_weights(&m, "out", "m.npz", &t, err) == -1 && strstr(err, "m.npz: layer out is dense, not a convolution"),
	      "%s", err);
	model_free(&m);
}

int main(void)
{
	test_grad_from();
	test_layers_targets();
	test_weights();
	return check_done("test_explain");
}
