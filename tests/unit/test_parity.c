/* Parity with PyTorch, our half: runs networks on a fixed batch and writes, per case
 * directory, model.npz (our checkpoint) and data.npz (the batch, dropout masks, logits,
 * loss and every gradient) for tests/parity.py to recompute in torch.
 *   test_parity DIR [224]   write DIR/tiny, DIR/default64 (and DIR/default224: forward only)
 *   test_parity             (make unit) write the tiny case to a temporary directory and
 *                           check that the checkpoint reloads to the same logits. */
#include "check.h"
#include "nn/ckpt.h"
#include "util/errmsg.h"
#include "nn/model.h"
#include "array/npz.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TINY_SPEC "c1=conv:3x3:4 c2=conv:3x3:5:s2 p1=maxpool:2x2 drop:conv c3=conv:2x2:6:valid " \
		  "p2=maxpool:3x3:s2:valid fc=dense:7 drop:fc out=dense:K"

typedef struct {
	const char *name, *spec;
	int h, w, k, b, train;
	float keep_conv, keep_fc;
	enum model_init init;
} parity_case;

static int add_f(npz *z, const char *name, const float *v, int ndim, const int64_t *shape, char *err)
{
	tensor t;

	if (tensor_alloc(&t, DT_F4, ndim, shape, 0, err))
		return -1;
	memcpy(t.data, v, (size_t)tensor_nbytes(&t));
	return npz_add_move(z, name, &t, err);
}

static int add_scalar(npz *z, const char *name, double v, char *err)
{
	tensor t;

	if (tensor_alloc(&t, DT_F8, 0, NULL, 0, err))
		return -1;
	*(double *)t.data = v;
	return npz_add_move(z, name, &t, err);
}

/* Runs case c and writes dir/c->name/{model,data}.npz; logits [b, k] are returned. */
static int run_case(const parity_case *c, const char *dir, float *logits_out, char *err)
{
	char path[512], name[160];
	model m;
	rng r;
	tensor t, classes;
	npz z;
	double loss = 0;
	int rc = -1;
	int64_t shp[4] = { c->b, c->h, c->w, 3 };
	const char *cls[] = { "a", "b", "c", "d", "e" };

	if (c->k > 5 || model_init(&m, c->spec, (model_size){ .h = c->h, .w = c->w, .classes = c->k, .max_batch = c->b, .train = c->train }, err))
		return -1;
	/* then every parameter nudged so conv biases are not all zero. (The seed's init
	 * saturates the default network's softmax, where the bias gradient is a cancellation
	 * of 1 - p ~ 1e-15 terms that no float computation resolves: gradients there use He.) */
	model_init_params(&m, c->init, 5);
	rng_seed(&r, 6);
	for (size_t i = 0; i < m.nparams; i++)
		m.params[i] += 0.02f * (rng_uniformf(&r) - 0.5f);
	npz_init(&z);
	memset(&classes, 0, sizeof classes);
	if (tensor_alloc(&t, DT_U1, 4, shp, 0, err))
		goto out;
	/* noise images: no flat regions, so no max-pool ties to break differently */
	for (int64_t i = 0; i < tensor_numel(&t); i++)
		((uint8_t *)t.data)[i] = (uint8_t)rng_below(&r, 256);
	int labels[16];
	int64_t *lab;
	tensor lt;

	if (tensor_alloc(&lt, DT_I8, 1, (int64_t[]){ c->b }, 0, err)) {
		tensor_free(&t);
		goto out;
	}
	lab = lt.data;
	for (int i = 0; i < c->b; i++)
		lab[i] = labels[i] = i % c->k;
	rng_stream(&r, 7, 1);
	if (c->train)
		model_train(&m, c->keep_conv, c->keep_fc, &r);
	model_forward(&m, t.data, labels, c->b);
	loss = m.loss;
	if (c->train)
		model_backward(&m);
	if (npz_add_move(&z, "x", &t, err) || npz_add_move(&z, "labels", &lt, err))
		goto out;
	memcpy(logits_out, m.layer[m.nlayer - 1].out, sizeof(float) * c->b * c->k);
	if (add_f(&z, "logits", logits_out, 2, (int64_t[]){ c->b, c->k }, err) ||
	    add_scalar(&z, "loss", loss, err) ||
	    add_scalar(&z, "train", c->train, err) || add_scalar(&z, "keep_conv", c->keep_conv, err) ||
	    add_scalar(&z, "keep_fc", c->keep_fc, err))
		goto out;
	for (int i = 0; c->train && i < m.nparam; i++) {
		snprintf(name, sizeof name, "grad/%s", m.param[i].name);
		if (add_f(&z, name, m.grads + m.param[i].off, m.param[i].ndim, m.param[i].shape, err))
			goto out;
	}
	for (int i = 0; c->train && i < m.nlayer; i++) {
		const model_layer *l = &m.layer[i];
		tensor mt;

		if (l->kind != MODEL_DROP)
			continue;
		if (tensor_alloc(&mt, DT_U1, 4, (int64_t[]){ c->b, l->oh, l->ow, l->oc }, 0, err))
			goto out;
		memcpy(mt.data, l->mask, (size_t)c->b * l->out_n);
		snprintf(name, sizeof name, "mask/%d", i);
		if (npz_add_move(&z, name, &mt, err))
			goto out;
	}
	/* and the inference network (no dropout) on the same batch */
	model_eval(&m);
	model_forward(&m, npz_get(&z, "x")->data, NULL, c->b);
	if (add_f(&z, "logits_eval", m.layer[m.nlayer - 1].out, 2, (int64_t[]){ c->b, c->k }, err))
		goto out;
	snprintf(path, sizeof path, "%s/%s", dir, c->name);
	if (mkdir(path, 0777) && access(path, F_OK)) {
		err_sys(err, "%s", path);
		goto out;
	}
	snprintf(path, sizeof path, "%s/%s/data.npz", dir, c->name);
	if (npz_write(&z, path, 0, err) || tensor_from_strings(&classes, cls, c->k, err))
		goto out;
	snprintf(path, sizeof path, "%s/%s/model.npz", dir, c->name);
	rc = ckpt_save(path, &m, &classes, &(ckpt_state){ .optim = CKPT_NONE }, err);
out:
	tensor_free(&classes);
	npz_free(&z);
	model_free(&m);
	return rc;
}

static const parity_case TINY = { "tiny", TINY_SPEC, 23, 21, 3, 3, 1, 0.6f, 0.7f, MODEL_INIT_SEED };

/* make unit: the checkpoint written reloads into a network giving the same logits. */
static void self_check(void)
{
	char dir[] = "/tmp/petcnn-parity-XXXXXX", path[256], err[ERR_MAX];
	float logits[9];
	model m;
	tensor classes;
	ckpt_state st;
	npz z;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	CHECK(run_case(&TINY, dir, logits, err) == 0, "tiny case: %s", err);
	snprintf(path, sizeof path, "%s/tiny/model.npz", dir);
	CHECK(ckpt_load(path, &m, 3, 0, &classes, &st, err) == 0, "reload: %s", err);
	if (m.params) {
		npz_init(&z);
		snprintf(path, sizeof path, "%s/tiny/data.npz", dir);
		CHECK(npz_read(&z, path, err) == 0, "data: %s", err);
		const tensor *x = npz_get(&z, "x"), *g = npz_get(&z, "grad/fc/weights3_1");

		CHECK(x && g && npz_get(&z, "mask/3") && npz_get(&z, "mask/7"), "data members present");
		const tensor *le = npz_get(&z, "logits_eval");

		if (x && le) {
			model_forward(&m, x->data, NULL, 3);
			CHECK(!memcmp(le->data, m.layer[m.nlayer - 1].out, sizeof(float) * 9),
			      "reloaded checkpoint gives the same logits, bit for bit");
			CHECK(memcmp(le->data, logits, sizeof logits), "dropout changed the training logits");
		}
		CHECK(st.optim == CKPT_NONE && classes.shape[0] == 3, "no training state, 3 classes");
		npz_free(&z);
		tensor_free(&classes);
		model_free(&m);
	}
	snprintf(path, sizeof path, "rm -r %s", dir);
	CHECK(system(path) == 0, "cleanup");
}

int main(int argc, char **argv)
{
	static const parity_case cases[] = {
		{ "default64", MODEL_DEFAULT_SPEC, 64, 64, 2, 2, 1, 0.5f, 0.5f, MODEL_INIT_HE },
		{ "default224", MODEL_DEFAULT_SPEC, 224, 224, 2, 1, 0, 1, 1, MODEL_INIT_SEED },
	};
	char err[ERR_MAX];
	float logits[64];

	if (argc < 2) {
		self_check();
		return check_done("test_parity");
	}
	if (run_case(&TINY, argv[1], logits, err) || run_case(&cases[0], argv[1], logits, err) ||
	    (argc > 2 && !strcmp(argv[2], "224") && run_case(&cases[1], argv[1], logits, err))) {
		fprintf(stderr, "test_parity: %s\n", err);
		return 1;
	}
	return 0;
}
