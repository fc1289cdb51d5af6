/* libFuzzer harness for the ONNX importer and the model it builds: arbitrary bytes through
 * onnx_graph_parse; graph inputs after the first (the backend tests' weights, the seeds)
 * bound to small deterministic data of their declared shape; onnx_import_graph with a
 * default size for open dims; and an accepted graph of a small image built by
 * onnx_model_build and run forward once, so the spec and parameter names the importer
 * writes are exercised by model_init and the kernels. */
#include "onnx/onnx_load.h"
#include "util/errmsg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Binds graph input 1 (then the next one becomes 1) to data of its declared float shape, if
 * that is known and small; 0 when nothing is left to bind, -1 when it cannot be. */
static int bind_next(onnx_graph *g)
{
	const onnx_value *v = &g->values[g->inputs[1]];
	int64_t shape[TENSOR_MAXDIM], n = 1;
	char err[ERR_MAX];
	tensor t;

	if (v->elem_type != ONNX_FLOAT || v->ndim < 0 || v->ndim > TENSOR_MAXDIM)
		return -1;
	for (int d = 0; d < v->ndim; d++) {
		if (v->dims[d] < 1 || v->dims[d] > 4096 || (n *= v->dims[d]) > 4096)
			return -1;
		shape[d] = v->dims[d];
	}
	if (tensor_alloc(&t, DT_F4, v->ndim, shape, 0, err))
		return -1;
	for (int64_t i = 0; i < n; i++)
		((float *)t.data)[i] = (float)((i * 7 + 3) % 11) / 8 + 0.25f;  /* positive: a variance */
	if (onnx_graph_bind(g, v->name, &t, err)) {
		tensor_free(&t);
		return -1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERR_MAX];
	onnx_import_opts opts = { 8, 8 };
	onnx_graph g;
	onnx_model om;
	model m;

	if (onnx_graph_parse(&g, data, size, "fuzz", err))
		return 0;
	while (g.ninputs > 1)
		if (bind_next(&g))
			break;
	if (onnx_import_graph(&om, &g, &opts, err)) {
		onnx_graph_free(&g);
		return 0;
	}
	onnx_graph_free(&g);
	/* a small image and a short spec: a concat chain may multiply channels without the
	 * file growing, which is a big model, not a bug */
	if ((int64_t)om.h * om.w * om.c <= 4096 && strlen(om.spec) < 2000 &&
	    !onnx_model_build(&m, &om, 1, 0, err)) {
		size_t n = (size_t)m.h * m.w * m.c;
		float *x = calloc(n, sizeof *x);

		if (x) {
			for (size_t i = 0; i < n; i++)
				x[i] = (float)(i % 5) - 2;
			model_forward_float(&m, x, NULL, 1);
			free(x);
		}
		model_free(&m);
	}
	onnx_model_free(&om);
	return 0;
}
