/* Unit tests for onnx_import over ONNX's own backend test models (Debian's libonnx-testdata,
 * weights fed as extra inputs, bound from their input_k.pb): the spec each becomes, the
 * weight layouts, and the refusals. With arguments, a tool for tests/onnx.bats:
 *   test_onnx_import MODEL.onnx OUT.npz [H W]   spec, input and classes to stdout, params to OUT.npz */
#include "check.h"
#include "onnx/onnx_import.h"
#include "util/errmsg.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODE "/usr/share/libonnx-testdata/data/node/"

/* Imports case (a directory under NODE), binding every input but the first from its data. */
static int import_case(onnx_model *m, const char *name, char *err)
{
	char path[512];
	onnx_graph g;
	int rc;

	snprintf(path, sizeof path, NODE "%s/model.onnx", name);
	if (onnx_graph_read(&g, path, err))
		return -1;
	for (int k = 1; g.ninputs > 1; k++) {
		tensor t;
		snprintf(path, sizeof path, NODE "%s/test_data_set_0/input_%d.pb", name, k);
		if (onnx_tensor_read(&t, path, NULL, 0, err) ||
		    onnx_graph_bind(&g, g.values[g.inputs[1]].name, &t, err)) {
			tensor_free(&t);
			onnx_graph_free(&g);
			return -1;
		}
	}
	rc = onnx_import_graph(m, &g, NULL, err);
	onnx_graph_free(&g);
	return rc;
}

static void spec_is(const char *name, const char *want)
{
	onnx_model m;
	char err[ERR_MAX];

	if (import_case(&m, name, err)) {
		CHECK(0, "%s: %s", name, err);
		return;
	}
	CHECK(!strcmp(m.spec, want), "%s: spec '%s', want '%s'", name, m.spec, want);
	onnx_model_free(&m);
}

static void refused(const char *name, const char *want)
{
	onnx_model m;
	char err[ERR_MAX] = "";

	CHECK(import_case(&m, name, err) == -1, "%s: accepted: %s", name, m.spec);
	CHECK(strstr(err, name) != NULL, "%s: the file is not named: %s", name, err);
	CHECK(strstr(err, want) != NULL, "%s: '%s' not in: %s", name, want, err);
	CHECK(m.spec == NULL && m.params.n == 0, "%s: model not emptied", name);
}

static void test_specs(void)
{
	onnx_model m;
	char err[ERR_MAX];

	/* unnamed nodes: layers are named after their output, here "y" */
	spec_is("test_conv_with_strides_padding", "y=conv:3x3:1:s2:p1,1,1,1:linear");
	spec_is("test_conv_with_strides_and_asymmetric_padding", "y=conv:3x3:1:s2:p1,0,1,0:linear");
	spec_is("test_conv_with_autopad_same", "y=conv:3x3:1:s2:p1,1,1,1:linear");
	spec_is("test_maxpool_2d_pads", "y=maxpool:3x3:s1:p2,2,2,2");
	spec_is("test_maxpool_2d_ceil", "y=maxpool:3x3:s2:valid:ceil");
	spec_is("test_maxpool_2d_same_lower", "y=maxpool:2x2:s1:p1,1,0,0");
	spec_is("test_maxpool_2d_same_upper", "y=maxpool:2x2:s1:p0,0,1,1");
	spec_is("test_averagepool_2d_pads_count_include_pad", "y=avgpool:3x3:s1:p2,2,2,2:incl");
	spec_is("test_globalaveragepool", "y=gap");
	spec_is("test_batchnorm_example", "y=bn");
	spec_is("test_lrn", "y=lrn:3:0.000199999995:0.5:2");
	spec_is("test_conv_with_strides_no_padding", "y=conv:3x3:1:s2:valid:linear");
	spec_is("test_gemm_default_no_bias", "y=dense:3:linear");

	/* conv weights OIHW -> HWIO: input_1.pb is W [1, 1, 3, 3] = 1 everywhere, so look at
	 * a grouped one's shape instead */
	CHECK(import_case(&m, "test_conv_with_strides_padding", err) == 0, "%s", err);
	if (m.spec) {
		const tensor *w = npz_get(&m.params, "y/weights1_1"), *b = npz_get(&m.params, "y/biases1_1");
		CHECK(w && w->ndim == 4 && w->shape[0] == 3 && w->shape[1] == 3 && w->shape[2] == 1 &&
		      w->shape[3] == 1, "HWIO shape");
		CHECK(b && b->ndim == 1 && b->shape[0] == 1 && ((float *)b->data)[0] == 0, "zero bias");
		CHECK(m.h == 7 && m.w == 5 && m.c == 1, "input %dx%dx%d", m.h, m.w, m.c);
		CHECK(m.out_h == 4 && m.out_w == 3 && m.out_c == 1 && m.classes == 0, "output %dx%dx%d",
		      m.out_h, m.out_w, m.out_c);
		onnx_model_free(&m);
	}
	CHECK(import_case(&m, "test_batchnorm_example", err) == 0, "%s", err);
	if (m.spec) {
		const tensor *s = npz_get(&m.params, "y/scale");
		CHECK(s && s->shape[0] == 3, "bn scale");
		onnx_model_free(&m);
	}
}

static void test_refusals(void)
{
	refused("test_maxpool_1d_default", "nor 2-D [N, F] (3 dims)");
	refused("test_maxpool_3d_default", "nor 2-D [N, F] (5 dims)");
	refused("test_maxpool_2d_dilations", "dilations other than 1");
	refused("test_softmax_axis_0", "(3 dims)");
	refused("test_gemm_all_attributes", "transA=1");
	refused("test_gemm_transposeA", "transA=1");
	refused("test_abs", "(3 dims)");
	refused("test_maxpool_with_argmax_2d_precomputed_pads", "2 graph outputs");
	/* a Pad is taken into the Conv or pool after it, only with zeros (or -inf) */
	refused("test_constant_pad", "node #0 (Pad): pad value 1.2: only 0 or -inf");
}

int main(int argc, char **argv)
{
	if (argc >= 3) {
		onnx_model m;
		onnx_import_opts o = { argc >= 5 ? atoi(argv[3]) : 0, argc >= 5 ? atoi(argv[4]) : 0 };
		char err[ERR_MAX];
		if (onnx_import(&m, argv[1], &o, err) || npz_write(&m.params, argv[2], 0, err)) {
			fprintf(stderr, "test_onnx_import: %s\n", err);
			return 1;
		}
		printf("%s\n%d %d %d\n%d %d %d %d %d\n", m.spec, m.h, m.w, m.c, m.classes, m.out_h,
		       m.out_w, m.out_c, m.softmax);
		onnx_model_free(&m);
		return 0;
	}
	if (access(NODE, R_OK)) {
		fprintf(stderr, "test_onnx_import: %s missing: install libonnx-testdata (scripts/setup)\n", NODE);
		return 1;
	}
	test_specs();
	test_refusals();
	return check_done("test_onnx_import");
}
