/* onnx_graph: an ONNX model file read (protobuf-c over Debian's onnx.proto) and checked
 * into a plain graph that later code can trust: values by index, nodes in topological order.
 *
 * What is checked, so that a truncated or hostile file is one clear error naming the file
 * and, where it applies, the node (name and op_type): the size (at most ONNX_MAX_BYTES,
 * read through buf_slurp, so FIFOs and devices are refused); the protobuf encoding; an
 * opset for the default domain; every node input produced by an earlier node, a graph
 * input or an initializer (no dangling names, no cycles); every value produced once (no
 * duplicate outputs, no output that shadows an input or initializer); unique attribute
 * names per node; initializer dims (0 <= d, at most TENSOR_MAXDIM of them, byte count
 * without overflow) and data (raw_data little-endian of exactly the byte count, or the
 * typed field with exactly numel entries; external data refused); graph input dims.
 * Initializers and Constant nodes become float32 or int64 tensors (array/tensor.h, shapes
 * as ONNX has them, e.g. OIHW); any other data type is refused with its name. Constant
 * nodes, and Identity nodes of data (torch writes one per shared weight), are folded away:
 * their output is a value with data and they are not in nodes[]. */
#ifndef PETCNN_ONNX_GRAPH_H
#define PETCNN_ONNX_GRAPH_H

#include "array/tensor.h"

#include <stdint.h>

/* The largest file read: VGG-16 (528 MB, the largest family issue 16 names) fits. */
#define ONNX_MAX_BYTES ((size_t)1 << 30)
/* The largest dim a graph input may declare (a dynamic dim is -1). */
#define ONNX_MAX_DIM ((int64_t)1 << 31)

/* ONNX TensorProto.DataType numbers we name. */
enum { ONNX_FLOAT = 1, ONNX_INT64 = 7 };

typedef struct {
	const char *name;       /* ONNX's name, never empty */
	int producer;           /* index into nodes[], -1 for a graph input or data */
	int nuse;               /* node inputs that read it */
	int is_output;          /* one of the graph's outputs */
	int is_input;           /* a graph input without an initializer (fed at run time) */
	int has_data;           /* an initializer or a folded Constant: data holds it */
	tensor data;            /* DT_F4 or DT_I8, ONNX's shape */
	int elem_type;          /* graph inputs: ONNX data type (ONNX_FLOAT, ...), 0 unknown */
	int ndim;               /* graph inputs: declared rank, -1 when not declared */
	int64_t dims[TENSOR_MAXDIM]; /* graph inputs: declared dims, -1 where dynamic */
} onnx_value;

typedef struct {
	const char *name;       /* node name, may be "" */
	const char *op;         /* op_type, never empty */
	const char *domain;     /* "" for the default (ai.onnx) domain */
	int nin, nout;
	int *in;                /* [nin] value indices, -1 for an omitted optional input */
	int *out;               /* [nout] value indices, -1 for an omitted optional output */
	const void *pb;         /* the node as protobuf-c unpacked it (for onnx_attr_*) */
} onnx_node;

typedef struct {
	char *file;             /* the path read, for messages */
	int64_t opset;          /* version of the default domain */
	int nvalues, nnodes, ninputs, noutputs;
	onnx_value *values;     /* [nvalues] */
	onnx_node *nodes;       /* [nnodes], topological order (a node after its inputs) */
	int *inputs;            /* [ninputs] value indices of the graph inputs without data */
	int *outputs;           /* [noutputs] value indices of the graph outputs */
	int *byname;            /* [nvalues] value indices sorted by name (onnx_graph_find) */
	void *pb;               /* the unpacked ModelProto, owned */
} onnx_graph;

/* Reads and checks path ("-" is stdin). 0, or -1 with "path: ..." in err and g empty
 * (onnx_graph_free is safe either way). */
int onnx_graph_read(onnx_graph *g, const char *path, char *err);
/* The same from bytes in memory (the fuzzer, the tests); name is used in messages. */
int onnx_graph_parse(onnx_graph *g, const void *data, size_t len, const char *name, char *err);
void onnx_graph_free(onnx_graph *g);

/* The value called name, or -1. */
int onnx_graph_find(const onnx_graph *g, const char *name);
/* The model's producer_name ("" when absent): onnx_export writes "petcnn". */
const char *onnx_graph_producer(const onnx_graph *g);
/* The value of metadata_props entry key (the first of that key), or NULL. */
const char *onnx_graph_meta(const onnx_graph *g, const char *key);
/* Gives graph input name the data t (moved: t is emptied), as an initializer would: the
 * ONNX backend tests feed weights as inputs. The shape must match a declared one. */
int onnx_graph_bind(onnx_graph *g, const char *name, tensor *t, char *err);

/* "'conv1' (Conv)" or, for an unnamed node, "#3 (Conv)": how messages name a node. */
const char *onnx_node_label(const onnx_graph *g, int node, char *buf, size_t size);

/* Attributes of node by name, type-checked. Absent: *out = def (ints/floats: *n = 0) and
 * 0. Present with another type: -1 with "file: node ...: attribute 'x' is T, not U". */
int onnx_attr_int(const onnx_graph *g, int node, const char *name, int64_t def, int64_t *out,
		  char *err);
int onnx_attr_float(const onnx_graph *g, int node, const char *name, float def, float *out,
		    char *err);
/* A string attribute, NUL-terminated into buf (longer than size is an error). */
int onnx_attr_string(const onnx_graph *g, int node, const char *name, const char *def,
		     char *buf, size_t size, char *err);
/* Arrays point into the graph (valid until onnx_graph_free). */
int onnx_attr_ints(const onnx_graph *g, int node, const char *name, const int64_t **v, int *n,
		   char *err);
int onnx_attr_floats(const onnx_graph *g, int node, const char *name, const float **v, int *n,
		     char *err);
/* Whether node has an attribute called name (of any type). */
int onnx_attr_has(const onnx_graph *g, int node, const char *name);
/* The name of the first attribute of node not in the NULL-terminated list known, or NULL:
 * an attribute we would silently ignore is a reason to refuse the node. */
const char *onnx_attr_unknown(const onnx_graph *g, int node, const char *const *known);

/* A standalone TensorProto file (the backend tests' input_0.pb, output_0.pb) as a tensor,
 * with the same checks and data types as initializers; name (may be NULL) gets its name. */
int onnx_tensor_read(tensor *t, const char *path, char *name, size_t size, char *err);

/* ONNX's name of a TensorProto data type ("FLOAT16", ...) or "unknown". */
const char *onnx_dtype_name(int dtype);

#endif
