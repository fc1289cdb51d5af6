/* Unit tests for onnx_graph: models built here with protobuf-c itself (packed to bytes, then
 * read back), a good one and the hostile ones: truncated, a cycle, a dangling input, a
 * missing initializer, huge and negative dims, a raw_data of the wrong size, a duplicate
 * output, an unsupported data type; every error names the file and the node. */
#include "check.h"
#include "onnx/onnx_graph.h"
#include "util/errmsg.h"

#include "onnx.pb-c.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A model under construction: small fixed pools of protobuf-c structs. */
struct mb {
	Onnx__ModelProto m;
	Onnx__GraphProto g;
	Onnx__OperatorSetIdProto opset, *opsets[1];
	Onnx__NodeProto nodes[8], *pnodes[8];
	char *ins[8][4], *outs[8][2];
	Onnx__AttributeProto attrs[8], *pattrs[8][2];
	Onnx__TensorProto inits[4], *pinits[4];
	int64_t idims[4][4];
	float idata[4][64];
	Onnx__ValueInfoProto vin[2], vout[2], *pvin[2], *pvout[2];
	Onnx__TypeProto tp[4];
	Onnx__TypeProto__Tensor tt[4];
	Onnx__TensorShapeProto sh[4];
	Onnx__TensorShapeProto__Dimension dims[4][4], *pdims[4][4];
};

static void value_info(struct mb *b, Onnx__ValueInfoProto *vi, int k, char *name, int n,
		       const int64_t *d)
{
	onnx__value_info_proto__init(vi);
	onnx__type_proto__init(&b->tp[k]);
	onnx__type_proto__tensor__init(&b->tt[k]);
	onnx__tensor_shape_proto__init(&b->sh[k]);
	vi->name = name;
	vi->type = &b->tp[k];
	b->tp[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	b->tp[k].tensor_type = &b->tt[k];
	b->tt[k].has_elem_type = 1, b->tt[k].elem_type = ONNX_FLOAT;
	b->tt[k].shape = &b->sh[k];
	b->sh[k].n_dim = (size_t)n;
	b->sh[k].dim = b->pdims[k];
	for (int i = 0; i < n; i++) {
		onnx__tensor_shape_proto__dimension__init(&b->dims[k][i]);
		b->pdims[k][i] = &b->dims[k][i];
		if (d[i] >= 0) {
			b->dims[k][i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			b->dims[k][i].dim_value = d[i];
		} else {
			b->dims[k][i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			b->dims[k][i].dim_param = "N";
		}
	}
}

static Onnx__NodeProto *node(struct mb *b, char *name, char *op, char *in0, char *in1, char *out)
{
	int k = (int)b->g.n_node++;
	Onnx__NodeProto *n = &b->nodes[k];

	onnx__node_proto__init(n);
	b->pnodes[k] = n;
	n->name = name, n->op_type = op;
	b->ins[k][0] = in0, b->ins[k][1] = in1;
	n->input = b->ins[k];
	n->n_input = in1 ? 2 : in0 ? 1 : 0;
	b->outs[k][0] = out;
	n->output = b->outs[k];
	n->n_output = 1;
	return n;
}

static void attr_int(struct mb *b, Onnx__NodeProto *n, char *name, int64_t v)
{
	int k = (int)(n - b->nodes);
	Onnx__AttributeProto *a = &b->attrs[k];

	onnx__attribute_proto__init(a);
	a->name = name;
	a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	a->has_i = 1, a->i = v;
	b->pattrs[k][0] = a;
	n->attribute = b->pattrs[k];
	n->n_attribute = 1;
}

static Onnx__TensorProto *init(struct mb *b, char *name, int n, const int64_t *d)
{
	int k = (int)b->g.n_initializer++;
	Onnx__TensorProto *t = &b->inits[k];
	size_t numel = 1;

	onnx__tensor_proto__init(t);
	b->pinits[k] = t;
	t->name = name;
	t->has_data_type = 1, t->data_type = ONNX_FLOAT;
	t->n_dims = (size_t)n;
	t->dims = b->idims[k];
	for (int i = 0; i < n; i++)
		b->idims[k][i] = d[i], numel *= (size_t)d[i];
	for (size_t i = 0; i < numel && i < 64; i++)
		b->idata[k][i] = (float)i + 0.5f;
	t->has_raw_data = 1;  /* little-endian, as this machine is */
	t->raw_data.data = (uint8_t *)b->idata[k];
	t->raw_data.len = numel * 4;
	return t;
}

/* X [N,2,3,3] -> Conv(W [2,2,1,1], B) -> Relu -> Y; nodes listed out of order. */
static void good(struct mb *b)
{
	static const int64_t xd[4] = { -1, 2, 3, 3 }, yd[4] = { -1, 2, 3, 3 }, wd[4] = { 2, 2, 1, 1 },
			     bd[1] = { 2 };
	Onnx__NodeProto *n;

	memset(b, 0, sizeof *b);
	onnx__model_proto__init(&b->m);
	onnx__graph_proto__init(&b->g);
	onnx__operator_set_id_proto__init(&b->opset);
	b->m.graph = &b->g;
	b->m.has_ir_version = 1, b->m.ir_version = 8;
	b->opset.domain = "", b->opset.has_version = 1, b->opset.version = 13;
	b->opsets[0] = &b->opset;
	b->m.opset_import = b->opsets, b->m.n_opset_import = 1;
	b->g.node = b->pnodes;
	b->g.initializer = b->pinits;
	node(b, "act", "Relu", "c", NULL, "Y");
	n = node(b, "conv", "Conv", "X", "W", "c");
	b->ins[1][2] = "B";
	n->n_input = 3;
	attr_int(b, n, "group", 1);
	init(b, "W", 4, wd);
	init(b, "B", 1, bd);
	value_info(b, &b->vin[0], 0, "X", 4, xd);
	value_info(b, &b->vout[0], 1, "Y", 4, yd);
	b->pvin[0] = &b->vin[0], b->pvout[0] = &b->vout[0];
	b->g.input = b->pvin, b->g.n_input = 1;
	b->g.output = b->pvout, b->g.n_output = 1;
}

static uint8_t *pack(struct mb *b, size_t *len)
{
	uint8_t *p;

	*len = onnx__model_proto__get_packed_size(&b->m);
	p = malloc(*len + 1);
	onnx__model_proto__pack(&b->m, p);
	return p;
}

/* Parses b; expects failure with every string of want (NULL-terminated) in the message. */
static void refused(struct mb *b, const char *what, const char *want1, const char *want2)
{
	size_t len;
	uint8_t *p = pack(b, &len);
	onnx_graph g;
	char err[ERR_MAX] = "";
	int rc = onnx_graph_parse(&g, p, len, "m.onnx", err);

	CHECK(rc == -1, "%s: accepted", what);
	CHECK(!strncmp(err, "m.onnx: ", 8), "%s: message does not name the file: %s", what, err);
	CHECK(!want1 || strstr(err, want1), "%s: '%s' not in: %s", what, want1, err);
	CHECK(!want2 || strstr(err, want2), "%s: '%s' not in: %s", what, want2, err);
	CHECK(g.nodes == NULL && g.pb == NULL, "%s: graph not emptied", what);
	onnx_graph_free(&g);
	free(p);
}

static void test_good(void)
{
	struct mb b;
	size_t len;
	uint8_t *p;
	onnx_graph g;
	char err[ERR_MAX], label[160];
	int64_t group;
	float f;
	const int64_t *ints;
	int n, w, x;

	good(&b);
	p = pack(&b, &len);
	CHECK(onnx_graph_parse(&g, p, len, "m.onnx", err) == 0, "%s", err);
	CHECK(g.opset == 13, "opset %lld", (long long)g.opset);
	CHECK(g.nnodes == 2, "%d nodes", g.nnodes);
	CHECK(!strcmp(g.nodes[0].op, "Conv") && !strcmp(g.nodes[1].op, "Relu"),
	      "not sorted: %s %s", g.nodes[0].op, g.nodes[1].op);
	CHECK(g.ninputs == 1 && !strcmp(g.values[g.inputs[0]].name, "X"), "inputs");
	x = g.inputs[0];
	CHECK(g.values[x].ndim == 4 && g.values[x].dims[0] == -1 && g.values[x].dims[1] == 2,
	      "input dims");
	w = onnx_graph_find(&g, "W");
	CHECK(w >= 0 && g.values[w].has_data && g.values[w].data.dtype == DT_F4 &&
	      g.values[w].data.ndim == 4 && ((float *)g.values[w].data.data)[3] == 3.5f, "W data");
	CHECK(g.values[w].nuse == 1, "W used once");
	CHECK(g.noutputs == 1 && g.values[g.outputs[0]].producer == 1, "output");
	CHECK(g.values[onnx_graph_find(&g, "c")].producer == 0, "c from conv");
	CHECK(onnx_graph_find(&g, "nope") == -1, "find");
	CHECK(onnx_attr_int(&g, 0, "group", 7, &group, err) == 0 && group == 1, "group");
	CHECK(onnx_attr_int(&g, 0, "absent", 7, &group, err) == 0 && group == 7, "default");
	CHECK(onnx_attr_float(&g, 0, "group", 0, &f, err) == -1 && strstr(err, "'conv' (Conv)") &&
	      strstr(err, "INT, not FLOAT"), "type check: %s", err);
	CHECK(onnx_attr_ints(&g, 0, "pads", &ints, &n, err) == 0 && n == 0, "absent ints");
	CHECK(!strcmp(onnx_node_label(&g, 1, label, sizeof label), "'act' (Relu)"), "%s", label);
	{
		static const char *const known[] = { "group", NULL }, *const none[] = { NULL };
		CHECK(onnx_attr_unknown(&g, 0, known) == NULL, "known");
		CHECK(onnx_attr_unknown(&g, 0, none) && !strcmp(onnx_attr_unknown(&g, 0, none), "group"),
		      "unknown");
	}
	onnx_graph_free(&g);

	/* binding a graph input turns it into data */
	CHECK(onnx_graph_parse(&g, p, len, "m.onnx", err) == 0, "%s", err);
	{
		tensor t;
		int64_t sh[4] = { 1, 2, 3, 3 };
		tensor_alloc(&t, DT_F4, 4, sh, 0, err);
		CHECK(onnx_graph_bind(&g, "X", &t, err) == 0, "%s", err);
		CHECK(g.ninputs == 0 && g.values[x].has_data && t.data == NULL, "bound");
		CHECK(onnx_graph_bind(&g, "W", &t, err) == -1, "W is no input");
	}
	onnx_graph_free(&g);
	free(p);
}

static void test_hostile(void)
{
	struct mb b;
	size_t len;
	uint8_t *p;
	onnx_graph g;
	char err[ERR_MAX];
	int fails = 0;

	/* every truncation of a good model is refused or read, never a crash */
	good(&b);
	p = pack(&b, &len);
	for (size_t cut = 0; cut < len; cut++) {
		if (onnx_graph_parse(&g, p, cut, "m.onnx", err)) {
			fails++;
			CHECK(!strncmp(err, "m.onnx: ", 8), "cut %zu: %s", cut, err);
		}
		onnx_graph_free(&g);
	}
	CHECK(fails > (int)len / 2, "only %d of %zu truncations refused", fails, len);
	CHECK(onnx_graph_parse(&g, p, len - 1, "m.onnx", err) == -1 && strstr(err, "truncated"),
	      "truncated: %s", err);
	free(p);

	good(&b);
	b.ins[1][0] = "Y";  /* conv reads relu's output: a cycle */
	refused(&b, "cycle", "on a cycle", ": node '");

	good(&b);
	b.ins[0][0] = "nowhere";
	refused(&b, "dangling", "'act' (Relu)", "input 'nowhere' is not produced");

	good(&b);
	b.g.n_initializer = 1;  /* B missing */
	refused(&b, "missing initializer", "'conv' (Conv)", "input 'B'");

	good(&b);
	b.outs[0][0] = "c";  /* relu writes conv's output too */
	refused(&b, "duplicate output", "output 'c' is already a node output", NULL);

	good(&b);
	b.idims[0][0] = (int64_t)1 << 40, b.idims[0][1] = (int64_t)1 << 40;
	refused(&b, "huge dims", "initializer 'W'", "overflow");

	good(&b);
	b.idims[0][0] = (int64_t)1 << 20;
	refused(&b, "huge dim, short data", "initializer 'W'", "raw_data holds 16 bytes");

	good(&b);
	b.idims[0][2] = -1;
	refused(&b, "negative dim", "initializer 'W'", "negative");

	good(&b);
	b.inits[1].raw_data.len = 7;
	refused(&b, "raw_data size", "initializer 'B'", "raw_data holds 7 bytes, its dims need 8");

	good(&b);
	b.inits[1].has_raw_data = 0;
	refused(&b, "no data", "initializer 'B'", "float_data holds 0 values");

	good(&b);
	b.inits[1].data_type = 10;
	refused(&b, "float16", "initializer 'B'", "FLOAT16");

	good(&b);
	b.opset.domain = "com.example";
	refused(&b, "no opset", "no opset", NULL);

	good(&b);
	b.dims[0][2].dim_value = -5;
	refused(&b, "input dim", "graph input 'X'", "-5");

	good(&b);
	b.vout[0].name = "nothing";
	refused(&b, "graph output", "graph output 'nothing'", NULL);

	good(&b);
	b.m.graph = NULL;
	refused(&b, "no graph", "no graph", NULL);

	/* random bytes */
	{
		uint8_t junk[256];
		for (int i = 0; i < 256; i++)
			junk[i] = (uint8_t)(i * 37 + 11);
		CHECK(onnx_graph_parse(&g, junk, sizeof junk, "j.onnx", err) == -1 &&
		      !strncmp(err, "j.onnx: ", 8), "junk: %s", err);
		onnx_graph_free(&g);
	}
}

static void test_constant(void)
{
	struct mb b;
	size_t len;
	uint8_t *p;
	onnx_graph g;
	char err[ERR_MAX];
	Onnx__NodeProto *n;
	Onnx__AttributeProto *a;
	int v;

	/* B comes from a Constant node (value_floats) instead of an initializer */
	good(&b);
	b.g.n_initializer = 1;
	n = node(&b, "k", "Constant", NULL, NULL, "B");
	a = &b.attrs[2];
	onnx__attribute_proto__init(a);
	a->name = "value_floats";
	a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
	a->n_floats = 2, a->floats = b.idata[3];
	b.idata[3][0] = 1.25f, b.idata[3][1] = -2;
	b.pattrs[2][0] = a;
	n->attribute = b.pattrs[2], n->n_attribute = 1;
	p = pack(&b, &len);
	CHECK(onnx_graph_parse(&g, p, len, "m.onnx", err) == 0, "%s", err);
	CHECK(g.nnodes == 2, "Constant not folded: %d nodes", g.nnodes);
	v = onnx_graph_find(&g, "B");
	CHECK(v >= 0 && g.values[v].has_data && g.values[v].producer == -1 &&
	      g.values[v].data.shape[0] == 2 && ((float *)g.values[v].data.data)[1] == -2.0f,
	      "constant data");
	onnx_graph_free(&g);
	free(p);

	a->name = "sparse_value";
	refused(&b, "constant kind", "'k' (Constant)", "sparse_value");
	/* found by fuzz_onnx: typed TENSOR, no tensor */
	a->name = "value";
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR, a->n_floats = 0;
	refused(&b, "constant without its tensor", "'k' (Constant)", "holds no tensor");
}

static void test_files(void)
{
	char dir[] = "/tmp/petcnn-onnx-XXXXXX", path[64], err[ERR_MAX];
	onnx_graph g;
	tensor t;
	struct mb b;
	size_t len;
	uint8_t *p;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof path, "%s/fifo", dir);
	CHECK(mkfifo(path, 0600) == 0, "mkfifo");
	CHECK(onnx_graph_read(&g, path, err) == -1 && strstr(err, "not a regular file"), "fifo: %s", err);
	onnx_graph_free(&g);
	unlink(path);

	good(&b);
	p = pack(&b, &len);
	snprintf(path, sizeof path, "%s/m.onnx", dir);
	f = fopen(path, "wb");
	fwrite(p, 1, len, f);
	fclose(f);
	CHECK(onnx_graph_read(&g, path, err) == 0, "%s", err);
	onnx_graph_free(&g);
	free(p);

	/* a standalone TensorProto (the backend tests' .pb files) */
	len = onnx__tensor_proto__get_packed_size(&b.inits[0]);
	p = malloc(len);
	onnx__tensor_proto__pack(&b.inits[0], p);
	f = fopen(path, "wb");
	fwrite(p, 1, len, f);
	fclose(f);
	{
		char name[32];
		CHECK(onnx_tensor_read(&t, path, name, sizeof name, err) == 0, "%s", err);
		CHECK(!strcmp(name, "W") && t.ndim == 4 && ((float *)t.data)[1] == 1.5f, "tensor");
		tensor_free(&t);
	}
	free(p);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_good();
	test_hostile();
	test_constant();
	test_files();
	return check_done("test_onnx_graph");
}
