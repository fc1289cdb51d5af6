/* ONNX's own backend tests (Debian's libonnx-testdata) for the ops issue 16 names, run
 * end to end: each case's graph, its weights (fed as inputs 1.. there) bound as data,
 * imported (onnx_import), built (onnx_model_build, model_init) and run by
 * model_forward_float on input_0.pb (NCHW to our NHWC), the output (back to NCHW or
 * [N, K]) compared with output_0.pb within the suite's tolerance (rtol 1e-3, atol 1e-7).
 * A case the importer refuses is counted as refused, and its message must name the file
 * and, for a node, the node and its op; a case that imports must pass. One line per case,
 * then "passed N, refused M, failed F"; exit 1 if any failed.
 *   test_onnx_backend [--perturb] [CASE...]   (default: all of CASES)
 * --perturb moves our first output value by 0.2% before the comparison: the comparison
 * must then fail (the test of the test). */
#include "nn/model.h"
#include "onnx/onnx_load.h"
#include "util/errmsg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODE "/usr/share/libonnx-testdata/data/node/"

/* Every case of libonnx-testdata 1.14 whose nodes all have an op from issue 16's list
 * (Conv, Relu, Clip, LeakyRelu, MaxPool, AveragePool, GlobalAveragePool,
 * BatchNormalization, Add, Concat, Flatten, Reshape, Gemm, MatMul, Dropout, Identity,
 * Constant, Softmax, LRN), listed by python3-onnx from the op_types in each model.onnx:
 * the selection does not depend on our reader. */
static const char *const CASES[] = {
	"test_add", "test_add_bcast", "test_add_uint8", "test_averagepool_1d_default",
	"test_averagepool_2d_ceil", "test_averagepool_2d_default", "test_averagepool_2d_pads",
	"test_averagepool_2d_pads_count_include_pad", "test_averagepool_2d_precomputed_pads",
	"test_averagepool_2d_precomputed_pads_count_include_pad",
	"test_averagepool_2d_precomputed_same_upper", "test_averagepool_2d_precomputed_strides",
	"test_averagepool_2d_same_lower", "test_averagepool_2d_same_upper",
	"test_averagepool_2d_strides", "test_averagepool_3d_default",
	"test_basic_conv_with_padding", "test_basic_conv_without_padding",
	"test_batchnorm_epsilon", "test_batchnorm_epsilon_training_mode",
	"test_batchnorm_example", "test_batchnorm_example_training_mode", "test_clip",
	"test_clip_default_inbounds", "test_clip_default_int8_inbounds",
	"test_clip_default_int8_max", "test_clip_default_int8_min", "test_clip_default_max",
	"test_clip_default_min", "test_clip_example", "test_clip_inbounds", "test_clip_outbounds",
	"test_clip_splitbounds", "test_concat_1d_axis_0", "test_concat_1d_axis_negative_1",
	"test_concat_2d_axis_0", "test_concat_2d_axis_1", "test_concat_2d_axis_negative_1",
	"test_concat_2d_axis_negative_2", "test_concat_3d_axis_0", "test_concat_3d_axis_1",
	"test_concat_3d_axis_2", "test_concat_3d_axis_negative_1",
	"test_concat_3d_axis_negative_2", "test_concat_3d_axis_negative_3", "test_constant",
	"test_conv_with_autopad_same", "test_conv_with_strides_and_asymmetric_padding",
	"test_conv_with_strides_no_padding", "test_conv_with_strides_padding",
	"test_dropout_default", "test_dropout_default_mask", "test_dropout_default_mask_ratio",
	"test_dropout_default_old", "test_dropout_default_ratio", "test_dropout_random_old",
	"test_flatten_axis0", "test_flatten_axis1", "test_flatten_axis2", "test_flatten_axis3",
	"test_flatten_default_axis", "test_flatten_negative_axis1", "test_flatten_negative_axis2",
	"test_flatten_negative_axis3", "test_flatten_negative_axis4", "test_gemm_all_attributes",
	"test_gemm_alpha", "test_gemm_beta", "test_gemm_default_matrix_bias",
	"test_gemm_default_no_bias", "test_gemm_default_scalar_bias",
	"test_gemm_default_single_elem_vector_bias", "test_gemm_default_vector_bias",
	"test_gemm_default_zero_bias", "test_gemm_transposeA", "test_gemm_transposeB",
	"test_globalaveragepool", "test_globalaveragepool_precomputed", "test_identity",
	"test_identity_opt", "test_identity_sequence", "test_leakyrelu", "test_leakyrelu_default",
	"test_leakyrelu_example", "test_lrn", "test_lrn_default", "test_matmul_2d",
	"test_matmul_3d", "test_matmul_4d", "test_maxpool_1d_default", "test_maxpool_2d_ceil",
	"test_maxpool_2d_default", "test_maxpool_2d_dilations", "test_maxpool_2d_pads",
	"test_maxpool_2d_precomputed_pads", "test_maxpool_2d_precomputed_same_upper",
	"test_maxpool_2d_precomputed_strides", "test_maxpool_2d_same_lower",
	"test_maxpool_2d_same_upper", "test_maxpool_2d_strides", "test_maxpool_2d_uint8",
	"test_maxpool_3d_default", "test_maxpool_with_argmax_2d_precomputed_pads",
	"test_maxpool_with_argmax_2d_precomputed_strides", "test_relu",
	"test_reshape_allowzero_reordered", "test_reshape_extended_dims",
	"test_reshape_negative_dim", "test_reshape_negative_extended_dims",
	"test_reshape_one_dim", "test_reshape_reduced_dims", "test_reshape_reordered_all_dims",
	"test_reshape_reordered_last_dims", "test_reshape_zero_and_negative_dim",
	"test_reshape_zero_dim", "test_softmax_axis_0", "test_softmax_axis_1",
	"test_softmax_axis_2", "test_softmax_default_axis", "test_softmax_example",
	"test_softmax_large_number", "test_softmax_negative_axis", "test_training_dropout",
	"test_training_dropout_default", "test_training_dropout_default_mask",
	"test_training_dropout_mask", "test_training_dropout_zero_ratio",
	"test_training_dropout_zero_ratio_mask",
};

enum { PASS, REFUSED, FAILED };

/* Reads and binds every graph input but the first from its input_k.pb. */
static int read_case(onnx_graph *g, const char *name, char *err)
{
	char path[512];

	snprintf(path, sizeof path, NODE "%s/model.onnx", name);
	if (onnx_graph_read(g, path, err))
		return -1;
	for (int k = 1; g->ninputs > 1; k++) {
		tensor t;

		snprintf(path, sizeof path, NODE "%s/test_data_set_0/input_%d.pb", name, k);
		if (onnx_tensor_read(&t, path, NULL, 0, err) ||
		    onnx_graph_bind(g, g->values[g->inputs[1]].name, &t, err)) {
			tensor_free(&t);
			onnx_graph_free(g);
			return -1;
		}
	}
	return 0;
}

/* Runs an imported case; PASS or FAILED with why in msg. */
static int run_case(const onnx_model *om, const char *name, int perturb, char *msg)
{
	char path[512], err[ERR_MAX];
	tensor x = { 0 }, y = { 0 };
	model m;
	float *in = NULL, *got = NULL;
	int rc = FAILED, n, h = om->h, w = om->w, c = om->c;
	const float *out;
	int oh, ow, oc;
	double worst = 0;
	int64_t at = -1;

	snprintf(path, sizeof path, NODE "%s/test_data_set_0/input_0.pb", name);
	if (onnx_tensor_read(&x, path, NULL, 0, err))
		return err_set(msg, "input: %s", err), FAILED;
	snprintf(path, sizeof path, NODE "%s/test_data_set_0/output_0.pb", name);
	if (onnx_tensor_read(&y, path, NULL, 0, err)) {
		tensor_free(&x);
		return err_set(msg, "output: %s", err), FAILED;
	}
	n = (int)x.shape[0];
	if (x.dtype != DT_F4 || y.dtype != DT_F4 || tensor_numel(&x) != (int64_t)n * h * w * c) {
		err_set(msg, "input_0.pb is not float [%d, %d, %d, %d]", n, c, h, w);
		goto out;
	}
	if (onnx_model_build(&m, om, n, 0, err)) {
		err_set(msg, "imported, but the model is refused: %s (spec '%s')", err, om->spec);
		goto out;
	}
	if (!(in = malloc((size_t)n * h * w * c * sizeof *in)))
		goto out_model;
	/* NCHW -> NHWC */
	for (int b = 0; b < n; b++)
		for (int ch = 0; ch < c; ch++)
			for (int i = 0; i < h * w; i++)
				in[((size_t)b * h * w + i) * c + ch] = ((const float *)x.data)[((size_t)b * c + ch) * h * w + i];
	model_eval(&m);
	model_forward_float(&m, in, NULL, n);
	{
		const model_layer *last = &m.layer[m.nlayer - 1];

		oh = last->oh, ow = last->ow, oc = last->oc;
		out = om->softmax ? m.probs : last->out;
	}
	if (om->softmax && !om->classes) {
		err_set(msg, "a softmax over a %dx%dx%d output", oh, ow, oc);
		goto out_model;
	}
	/* back to ONNX's layout: [N, C, H, W], or [N, C*H*W] as ONNX flattens that (our dense
	 * layers read NHWC and the importer permutes their weights to match) */
	if (!((y.ndim == 4 && y.shape[0] == n && y.shape[1] == oc && y.shape[2] == oh && y.shape[3] == ow) ||
	      (y.ndim == 2 && y.shape[0] == n && y.shape[1] == (int64_t)oc * oh * ow))) {
		err_set(msg, "output %dx%dx%dx%d (NHWC), expected a %d-D one of %lld elements", n, oh, ow,
			oc, y.ndim, (long long)tensor_numel(&y));
		goto out_model;
	}
	if (!(got = malloc((size_t)n * oh * ow * oc * sizeof *got)))
		goto out_model;
	for (int b = 0; b < n; b++)
		for (int ch = 0; ch < oc; ch++)
			for (int i = 0; i < oh * ow; i++)
				got[((size_t)b * oc + ch) * oh * ow + i] = out[((size_t)b * oh * ow + i) * oc + ch];
	if (perturb)
		got[0] = got[0] * 1.002f + 1e-6f;
	rc = PASS;
	for (int64_t i = 0; i < tensor_numel(&y); i++) {
		double want = ((const float *)y.data)[i], d = fabs(got[i] - want);

		if (!(d <= 1e-7 + 1e-3 * fabs(want))) {
			rc = FAILED;
			if (at < 0 || d > worst)
				worst = d, at = i;
		}
	}
	if (rc == FAILED)
		err_set(msg, "element %lld is %.9g, expected %.9g (spec '%s')", (long long)at,
			got[at], ((const float *)y.data)[at], om->spec);
out_model:
	model_free(&m);
out:
	free(in);
	free(got);
	tensor_free(&x);
	tensor_free(&y);
	return rc;
}

static int one_case(const char *name, int perturb, char *msg)
{
	onnx_graph g;
	onnx_model om;
	char err[ERR_MAX];
	int rc;

	if (read_case(&g, name, err) || onnx_import_graph(&om, &g, NULL, err)) {
		if (!strstr(err, name))
			return err_set(msg, "the message does not name the file: %s", err), FAILED;
		/* a node's fault names the node and its op: "node 'x' (Op)" or "node #3 (Op)" */
		if (strstr(err, ": node ") && !strstr(err, "): "))
			return err_set(msg, "the message does not name the op: %s", err), FAILED;
		/* what the reader or importer says, without the long path before it */
		snprintf(msg, ERR_MAX, "%s", strstr(err, "model.onnx: ") ? strstr(err, "model.onnx: ") + 12 : err);
		onnx_graph_free(&g);
		return REFUSED;
	}
	onnx_graph_free(&g);
	rc = run_case(&om, name, perturb, msg);
	onnx_model_free(&om);
	return rc;
}

int main(int argc, char **argv)
{
	int perturb = argc > 1 && !strcmp(argv[1], "--perturb"), first = 1 + perturb;
	int count[3] = { 0 }, ncases = argc > first ? argc - first : (int)(sizeof CASES / sizeof *CASES);
	static const char *const tag[3] = { "pass", "refused", "FAIL" };

	if (access(NODE, R_OK)) {
		fprintf(stderr, "test_onnx_backend: %s missing: install libonnx-testdata (scripts/setup)\n", NODE);
		return 1;
	}
	for (int i = 0; i < ncases; i++) {
		const char *name = argc > first ? argv[i + first] : CASES[i];
		char msg[ERR_MAX] = "";
		int rc = one_case(name, perturb, msg);

		count[rc]++;
		printf("%-8s %s%s%s\n", tag[rc], name, msg[0] ? ": " : "", msg);
	}
	printf("passed %d, refused %d, failed %d\n", count[PASS], count[REFUSED], count[FAILED]);
	return count[FAILED] ? 1 : 0;
}
