/* ONNX export: the graphs onnx_export writes, read back with protobuf-c (ops, attributes,
 * weight layouts, metadata) and with onnx_import (the same spec, parameters to the bit,
 * normalisation and class names) and, for tests/onnx-export.bats, run elsewhere.
 *   test_onnx_export DIR   also write, per case, DIR/CASE.onnx, DIR/CASE.probs.npy (our
 *                          probabilities [B, K] for DIR/images.npy, uint8 [B, H, W, 3]) and
 *                          DIR/CASE.shapes (a line per layer value: name C H W); the
 *                          "numeric" column of DIR/cases lists which ones to compare. */
#include "check.h"
#include "array/npy.h"
#include "nn/model.h"
#include "onnx/onnx_export.h"
#include "onnx/onnx_import.h"
#include "onnx.pb-c.h"
#include "util/errmsg.h"
#include "util/rng.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define H 32
#define W 32
#define B 4
#define K 5

/* add, concat, bn (after a conv and standing alone), clip, leaky, gap, explicit
 * asymmetric pads, a ceil max-pool, two dense layers on a 1x1 input, a BGR network */
#define GRAPH_SPEC                                                                       \
	"stem=conv:3x3:8:s2:p0,0,1,1:linear bn1=bn:relu c1=conv:3x3:8:linear bn2=bn "   \
	"res=add:relu@bn1,bn2 p1=maxpool:3x3:s2:valid:ceil a=conv:1x1:6@p1 "             \
	"b=conv:3x3:6:linear@p1 bl=leaky:0.1@b cat=concat@a,bl r6=clip:0:6 gap "         \
	"fc=dense:16 drop:fc logits=dense:K"

typedef struct {
	const char *name, *spec;
	int norm;       /* ImageNet's mean and std, BGR */
	int numeric;    /* OpenCV's probabilities compared with ours */
	float gain;     /* conv weights scaled by it (0: not), for activations that reach 6 */
} export_case;

static const export_case cases[] = {
	{ "default", MODEL_DEFAULT_SPEC, 0, 1, 0 },
	{ "graph", GRAPH_SPEC, 1, 1, 0 },
	/* SqueezeNet's head: a conv classifier and global pooling; unnamed relus */
	{ "squeeze", "c1=conv:3x3:8:s2:linear relu c2=conv:3x3:8:linear relu drop:conv "
		     "sq=conv:1x1:K:relu gap", 0, 1, 0 },
	/* a Gemm's [N, C] read by bn, then by a conv (reshaped to [N, C, 1, 1]); clips with a
	 * lower bound not 0, and with none */
	{ "dense2d", "c1=conv:3x3:4:s4:linear lc=clip:-0.1:0.3 gap id=clip:-3.4e38:3.4e38 "
		     "fc=dense:8:linear bnf=bn:relu cls=conv:1x1:K", 0, 1, 0 },
	/* grouped conv, average pools (ceil, counting pads; SAME), LRN: checked structurally,
	 * since OpenCV 4.6's AveragePool counts pads otherwise than ONNX and PyTorch do (0.03
	 * off with ceil, 0.018 without), while our kernels match PyTorch (nn-window.bats) */
	{ "ops", "c1=conv:3x3:8:s2 g=conv:3x3:8:g4 ap=avgpool:3x3:s2:p1,1,1,1:ceil:incl "
		 "n=lrn:5:0.0001:0.75:1 ap2=avgpool:2x2:s1 gap cls=dense:K", 0, 0, 0 },
	/* the same with pads not counted, compared */
	{ "ops2", "c1=conv:3x3:8:s2 g=conv:3x3:8:g4 ap=avgpool:3x3:s2:p1,1,1,1 "
		  "n=lrn:5:0.0001:0.75:1 ap2=avgpool:2x2:s1 gap cls=dense:K", 0, 1, 0 },
	/* MobileNetV2's ReLU6 on a strided, a depthwise and a pointwise conv, beside a ReLU6
	 * conv's twin: a linear conv and clip:0:6; a ReLU conv then clip:0:4, and clip:0:6
	 * of an add (ReLU, then the upper bound; read back as clips) */
	{ "mobile", "s=conv:3x3:8:s2:relu6 d=conv:3x3:8:g8:relu6 p=conv:1x1:8:relu6 "
		    "q=conv:1x1:8:linear@d q6=clip:0:6 r=conv:1x1:8:relu@d r4=clip:0:4 "
		    "a=add@p,q6 a6=clip:0:6 cat=concat@a6,r4 gap cls=dense:K", 1, 1, 6 },
	/* read back (check_round_trip) with its BGR normalisation, a bn after a conv (not
	 * folded into it), a relu layer after a conv (not fused), dropout */
	{ "roundtrip", "c1=conv:3x3:8:s2:linear bn1=bn:relu c2=conv:3x3:8:linear relu drop:conv "
		       "p=avgpool:2x2 fc=dense:16 drop:fc cls=dense:K", 1, 1, 0 },
};

/* Cases onnx_import reads back: all but a clip without bounds, which the export leaves out. */
static int reads_back(const export_case *c)
{
	return !strstr(c->spec, "clip:-3.4e38:3.4e38");
}

static const char *class_names[K] = { "samoyed", "shiba \"inu\"", "a,b", "d", "e" };

static int make_model(model *m, const export_case *c, char *err)
{
	static const float mean[3] = { 0.406f, 0.456f, 0.485f }, sd[3] = { 0.225f, 0.224f, 0.229f };
	rng r;

	if (model_init(m, c->spec, (model_size){ .h = H, .w = W, .classes = K, .max_batch = B }, err))
		return -1;
	if (c->norm && model_set_norm(m, mean, sd, 1, err)) {
		model_free(m);
		return -1;
	}
	model_init_params(m, MODEL_INIT_HE, 7);
	/* every parameter nudged (biases not zero), bn's scale and shift made far from 1, 0 */
	rng_seed(&r, 8);
	for (size_t i = 0; i < m->nparams; i++)
		m->params[i] += 0.05f * (rng_uniformf(&r) - 0.5f);
	for (int i = 0; i < m->nparam; i++)
		if (c->gain && m->param[i].ndim == 4)
			for (size_t k = 0; k < m->param[i].n; k++)
				m->params[m->param[i].off + k] *= c->gain;
	for (int i = 0; i < m->nparam; i++)
		if (m->layer[m->param[i].layer].kind == MODEL_BN)
			for (size_t k = 0; k < m->param[i].n; k++)
				m->params[m->param[i].off + k] = strstr(m->param[i].name, "/scale")
					? 0.5f + rng_uniformf(&r) : rng_uniformf(&r) - 0.5f;
	return 0;
}

static Onnx__ModelProto *read_back(const char *path)
{
	FILE *f = fopen(path, "rb");
	Onnx__ModelProto *mp = NULL;
	struct stat st;
	uint8_t *data;

	if (!f)
		return NULL;
	if (!fstat(fileno(f), &st) && (data = malloc((size_t)st.st_size + 1))) {
		if (fread(data, 1, (size_t)st.st_size + 1, f) == (size_t)st.st_size)
			mp = onnx__model_proto__unpack(NULL, (size_t)st.st_size, data);
		free(data);
	}
	fclose(f);
	return mp;
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name)
{
	for (size_t i = 0; i < g->n_initializer; i++)
		if (!strcmp(g->initializer[i]->name, name))
			return g->initializer[i];
	return NULL;
}

static const Onnx__NodeProto *find_node(const Onnx__GraphProto *g, const char *out)
{
	for (size_t i = 0; i < g->n_node; i++)
		if (!strcmp(g->node[i]->output[0], out))
			return g->node[i];
	return NULL;
}

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *n, const char *name)
{
	for (size_t i = 0; n && i < n->n_attribute; i++)
		if (!strcmp(n->attribute[i]->name, name))
			return n->attribute[i];
	return NULL;
}

static float raw_f(const Onnx__TensorProto *t, size_t i)
{
	float v;

	memcpy(&v, t->raw_data.data + 4 * i, 4);
	return v;
}

static const char *meta(const Onnx__ModelProto *mp, const char *key)
{
	for (size_t i = 0; i < mp->n_metadata_props; i++)
		if (!strcmp(mp->metadata_props[i]->key, key))
			return mp->metadata_props[i]->value;
	return NULL;
}

/* The default network: its node sequence, conv1_2's weights in OIHW, fc1's rows in NCHW
 * order, the metadata. */
static void check_default(const model *m, const char *path)
{
	static const char *ops[] = { "BatchNormalization", "Conv", "Relu", "Conv", "Relu", "MaxPool", "Conv",
				     "Relu", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu",
				     "Gemm", "Softmax" };
	Onnx__ModelProto *mp = read_back(path);
	const Onnx__GraphProto *g;
	const Onnx__TensorProto *t;
	const model_param *p;
	int nops = (int)(sizeof ops / sizeof *ops);

	CHECK(mp != NULL, "%s reads back", path);
	if (!mp)
		return;
	g = mp->graph;
	CHECK(mp->ir_version == ONNX_EXPORT_IR_VERSION && mp->n_opset_import == 1 &&
	      mp->opset_import[0]->version == 13, "ir %lld opset", (long long)mp->ir_version);
	CHECK(g->n_node == (size_t)nops, "%zu nodes", g->n_node);
	for (int i = 0; i < nops && i < (int)g->n_node; i++)
		CHECK(!strcmp(g->node[i]->op_type, ops[i]), "node %d: %s, not %s", i, g->node[i]->op_type, ops[i]);
	CHECK(g->n_input == 1 && !strcmp(g->input[0]->name, "images") && g->n_output == 1 &&
	      !strcmp(g->output[0]->name, "probabilities"), "graph input and output");
	CHECK(g->input[0]->type->tensor_type->shape->n_dim == 4 &&
	      !strcmp(g->input[0]->type->tensor_type->shape->dim[0]->dim_param, "N") &&
	      g->input[0]->type->tensor_type->shape->dim[1]->dim_value == 3, "input [N, 3, H, W]");

	p = model_find_param(m, "conv1_2/weights1_2");   /* HWIO [3, 3, 32, 32] */
	t = find_init(g, p->name);
	CHECK(t && t->n_dims == 4 && t->dims[0] == 32 && t->dims[1] == 32 && t->dims[2] == 3 &&
	      t->dims[3] == 3, "conv weights OIHW");
	if (t) {
		/* o 5, i 7, y 2, x 1 */
		float ours = m->params[p->off + ((2 * 3 + 1) * 32 + 7) * 32 + 5];
		CHECK(raw_f(t, ((5 * 32 + 7) * 3 + 2) * 3 + 1) == ours, "conv weight transposed");
	}
	const Onnx__NodeProto *c = find_node(g, "conv1_1/preact");
	const Onnx__AttributeProto *pads = find_attr(c, "pads");
	CHECK(pads && pads->n_ints == 4 && pads->ints[0] == 1 && pads->ints[1] == 1 &&
	      pads->ints[2] == 1 && pads->ints[3] == 1, "SAME 3x3: pads 1, 1, 1, 1");

	p = model_find_param(m, "fc1/weights3_1");   /* [8 * 8 * 64, 512], rows (h, w, c) */
	t = find_init(g, p->name);
	CHECK(t && t->n_dims == 2 && t->dims[0] == 512 && t->dims[1] == 8 * 8 * 64, "fc1 [nout, nin]");
	if (t) {
		/* h 3, w 5, c 9, out 11: our row (3*8+5)*64+9, ONNX's column 9*64+3*8+5 */
		float ours = m->params[p->off + ((size_t)(3 * 8 + 5) * 64 + 9) * 512 + 11];
		CHECK(raw_f(t, (size_t)11 * 8 * 8 * 64 + 9 * 64 + 3 * 8 + 5) == ours, "fc1 columns in NCHW order");
	}
	CHECK(meta(mp, "classes") && !strcmp(meta(mp, "classes"),
	      "[\"samoyed\",\"shiba \\\"inu\\\"\",\"a,b\",\"d\",\"e\"]"), "classes: %s", meta(mp, "classes"));
	CHECK(meta(mp, "petcnn_spec") && !strcmp(meta(mp, "petcnn_spec"), m->spec), "spec");
	onnx__model_proto__free_unpacked(mp, NULL);
}

/* The graph network: BGR first, bn:relu, add, concat, Clip's bounds, no dropout. */
static void check_graph(const char *path)
{
	Onnx__ModelProto *mp = read_back(path);
	const Onnx__GraphProto *g;

	CHECK(mp != NULL, "%s reads back", path);
	if (!mp)
		return;
	g = mp->graph;
	CHECK(!strcmp(g->node[0]->op_type, "Split") && !strcmp(g->node[0]->input[0], "images") &&
	      g->node[0]->n_output == 3 && !strcmp(g->node[1]->input[0], "input/b"), "BGR first");
	CHECK(find_node(g, "bn1/preact") && find_node(g, "bn1") &&
	      !strcmp(find_node(g, "bn1")->op_type, "Relu"), "bn:relu");
	CHECK(find_node(g, "res") && find_node(g, "cat") && find_attr(find_node(g, "cat"), "axis")->i == 1,
	      "add and concat");
	CHECK(find_node(g, "r6/floor") && !strcmp(find_node(g, "r6/floor")->op_type, "Relu") &&
	      !find_init(g, "r6/lo") && find_init(g, "r6/hi") && raw_f(find_init(g, "r6/hi"), 0) == 6,
	      "clip 0..6: a Relu, then the upper bound");
	CHECK(find_node(g, "drop") == NULL && find_node(g, "dropout") == NULL, "no dropout node");
	onnx__model_proto__free_unpacked(mp, NULL);
}

/* onnx_import of an export gives the model back: the spec, the parameters to the bit,
 * the normalisation and the class names. */
static void check_round_trip(const model *m, const char *path, const char *name)
{
	char err[ERR_MAX], s[64];
	onnx_model om;

	if (onnx_import(&om, path, NULL, err)) {
		CHECK(0, "%s reads back: %s", name, err);
		return;
	}
	CHECK(!strcmp(om.spec, m->spec), "%s: spec '%s', not '%s'", name, om.spec, m->spec);
	CHECK(om.params.n == m->nparam, "%s: %d parameters, not %d", name, om.params.n, m->nparam);
	for (int i = 0; i < m->nparam; i++) {
		const model_param *p = &m->param[i];
		const tensor *t = npz_get(&om.params, p->name);

		CHECK(t && t->dtype == DT_F4 && tensor_numel(t) == (int64_t)p->n &&
		      !memcmp(t->data, m->params + p->off, p->n * sizeof(float)), "%s: %s bit for bit",
		      name, p->name);
	}
	CHECK(om.has_norm && om.bgr == m->bgr && !memcmp(om.mean, m->mean, sizeof om.mean) &&
	      !memcmp(om.std, m->std, sizeof om.std), "%s: normalisation (has %d, bgr %d, mean %g)",
	      name, om.has_norm, om.bgr, om.mean[0]);
	CHECK(om.class_names.data && om.class_names.shape[0] == K, "%s: class names", name);
	for (int i = 0; om.class_names.data && i < K; i++) {
		tensor_get_string(&om.class_names, i, s, sizeof s);
		CHECK(!strcmp(s, class_names[i]), "%s: class %d '%s', not '%s'", name, i, s, class_names[i]);
	}
	onnx_model_free(&om);
}

static int write_npy(const char *path, enum tensor_dtype dt, int ndim, const int64_t *shape,
		     const void *data, char *err)
{
	tensor t;
	FILE *f;
	int rc;

	if (tensor_alloc(&t, dt, ndim, shape, 0, err))
		return -1;
	memcpy(t.data, data, (size_t)tensor_nbytes(&t));
	if (!(f = fopen(path, "wb"))) {
		tensor_free(&t);
		return err_set(err, "%s: cannot create", path);
	}
	rc = npy_write(f, path, &t, err);
	if (fclose(f) && !rc)
		rc = err_set(err, "%s: write error", path);
	tensor_free(&t);
	return rc;
}

/* Every layer's output as onnx_export names it (drop layers have none): name C H W. */
static int write_shapes(const model *m, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	for (int i = 0; i < m->nlayer; i++) {
		const model_layer *l = &m->layer[i];
		int dup = 0;

		if (l->kind == MODEL_DROP || (l->kind == MODEL_CLIP && l->a[0] <= -3e38f && l->a[1] >= 3e38f))
			continue;   /* no node: its readers read its input */
		for (int j = 0; j < m->nlayer; j++)
			dup |= j != i && !strcmp(l->name, m->layer[j].name);
		if (dup)
			fprintf(f, "%s.%d %d %d %d\n", l->name, i, l->oc, l->oh, l->ow);
		else
			fprintf(f, "%s %d %d %d\n", l->name, l->oc, l->oh, l->ow);
	}
	return fclose(f);
}

static void run_case(const export_case *c, const uint8_t *images, const char *dir, FILE *list)
{
	char err[ERR_MAX], path[512];
	model m;
	tensor classes;

	CHECK(tensor_from_strings(&classes, class_names, K, err) == 0, "classes: %s", err);
	if (make_model(&m, c, err)) {
		CHECK(0, "%s: %s", c->name, err);
		tensor_free(&classes);
		return;
	}
	snprintf(path, sizeof path, "%s/%s.onnx", dir, c->name);
	CHECK(onnx_export(&m, &classes, path, err) == 0, "%s: %s", c->name, err);
	if (!strcmp(c->name, "default"))
		check_default(&m, path);
	if (!strcmp(c->name, "graph"))
		check_graph(path);
	if (reads_back(c))
		check_round_trip(&m, path, c->name);
	model_forward(&m, images, NULL, B);
	if (c->gain) {
		/* ReLU6 clips (the first layer's outputs at 6) and passes (at 6 not all) */
		const model_layer *l = &m.layer[0];
		size_t at6 = 0, n = (size_t)B * l->out_n;

		for (size_t i = 0; i < n; i++)
			at6 += l->out[i] == 6;
		CHECK(l->relu == 2 && at6 > 0 && at6 < n, "%s: %zu of %zu outputs of %s at 6", c->name, at6, n, l->name);
	}
	int64_t ps[2] = { B, K };
	snprintf(path, sizeof path, "%s/%s.probs.npy", dir, c->name);
	CHECK(write_npy(path, DT_F4, 2, ps, m.probs, err) == 0, "%s", err);
	snprintf(path, sizeof path, "%s/%s.shapes", dir, c->name);
	CHECK(write_shapes(&m, path) == 0, "%s", path);
	fprintf(list, "%s %d\n", c->name, c->numeric);
	model_free(&m);
	tensor_free(&classes);
}

/* What is refused, and that a refused or failed export leaves no file. */
static void check_errors(const char *dir)
{
	char err[ERR_MAX], path[512];
	model m;
	tensor classes;
	const char *two[2] = { "a", "b" };

	snprintf(path, sizeof path, "%s/refused.onnx", dir);
	CHECK(model_init(&m, "c=conv:3x3:4 gap", (model_size){ .h = 8, .w = 8, .max_batch = 1 }, err) == 0, "%s", err);
	CHECK(onnx_export(&m, NULL, path, err) == -1 && strstr(err, "classifier"), "no classes: %s", err);
	model_free(&m);
	CHECK(model_init(&m, "c=conv:3x3:K gap", (model_size){ .h = 8, .w = 8, .classes = 3, .max_batch = 1 }, err) == 0, "%s", err);
	CHECK(tensor_from_strings(&classes, two, 2, err) == 0, "%s", err);
	CHECK(onnx_export(&m, &classes, path, err) == -1 && strstr(err, "not 3 strings"), "2 names for 3: %s", err);
	CHECK(access(path, F_OK) != 0, "nothing written");
	snprintf(path, sizeof path, "%s/no/such/dir.onnx", dir);
	CHECK(onnx_export(&m, NULL, path, err) == -1, "a missing directory is an error");
	tensor_free(&classes);
	model_free(&m);
}

int main(int argc, char **argv)
{
	char tmp[] = "/tmp/test_onnx_export.XXXXXX", path[512];
	const char *dir = argc > 1 ? argv[1] : mkdtemp(tmp);
	uint8_t images[B * H * W * 3];
	int64_t is[4] = { B, H, W, 3 };
	char err[ERR_MAX];
	FILE *list;
	rng r;

	if (!dir) {
		perror("mkdtemp");
		return 1;
	}
	rng_seed(&r, 9);
	for (size_t i = 0; i < sizeof images; i++)
		images[i] = (uint8_t)rng_below(&r, 256);
	snprintf(path, sizeof path, "%s/images.npy", dir);
	CHECK(write_npy(path, DT_U1, 4, is, images, err) == 0, "%s", err);
	snprintf(path, sizeof path, "%s/cases", dir);
	if (!(list = fopen(path, "w"))) {
		perror(path);
		return 1;
	}
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		run_case(&cases[i], images, dir, list);
	fclose(list);
	check_errors(dir);
	if (argc < 2) {
		char cmd[600];

		snprintf(cmd, sizeof cmd, "rm -r '%s'", dir);
		CHECK(system(cmd) == 0, "rm %s", dir);
	}
	return check_done("test_onnx_export");
}
