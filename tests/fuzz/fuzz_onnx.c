/* libFuzzer harness for the ONNX reader: arbitrary bytes through onnx_graph_parse (protobuf-c
 * and our checks), then every part of an accepted graph walked: the values' data, the nodes'
 * inputs and outputs, and the attributes the importer asks for. */
#include "util/errmsg.h"
#include "onnx/onnx_graph.h"

#include "touch.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERR_MAX], buf[64];
	onnx_graph g;
	volatile int sum = 0;

	if (onnx_graph_parse(&g, data, size, "fuzz", err))
		return 0;
	for (int v = 0; v < g.nvalues; v++)
		if (g.values[v].has_data)
			touch(&g.values[v].data);
	for (int i = 0; i < g.nnodes; i++) {
		const int64_t *ints;
		int64_t x;
		float f;
		int n;
		for (int k = 0; k < g.nodes[i].nin + g.nodes[i].nout; k++) {
			int v = g.nodes[i].in[k];
			if (v >= 0)
				sum += g.values[v].nuse + g.values[v].producer;
		}
		onnx_attr_int(&g, i, "group", 1, &x, err);
		onnx_attr_float(&g, i, "alpha", 1, &f, err);
		onnx_attr_string(&g, i, "auto_pad", "NOTSET", buf, sizeof buf, err);
		if (!onnx_attr_ints(&g, i, "pads", &ints, &n, err))
			for (int k = 0; k < n; k++)
				sum += (int)ints[k];
	}
	for (int i = 0; i < g.ninputs; i++)
		sum += g.values[g.inputs[i]].ndim;
	onnx_graph_free(&g);
	return 0;
}
