/* onnx_graph: ONNX files read with protobuf-c and checked into a plain graph. See onnx_graph.h. */
#include "onnx/onnx_graph.h"

#include "util/buf.h"
#include "util/errmsg.h"

#include "onnx.pb-c.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const char *s)
{
	return s ? s : "";
}

const char *onnx_dtype_name(int dtype)
{
	static const char *const names[] = {
		"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
		"STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
		"COMPLEX128", "BFLOAT16",
	};
	if (dtype >= 0 && dtype < (int)(sizeof names / sizeof names[0]))
		return names[dtype];
	return "unknown";
}

const char *onnx_node_label(const onnx_graph *g, int node, char *buf, size_t size)
{
	const onnx_node *n = &g->nodes[node];

	if (n->name[0])
		snprintf(buf, size, "'%.64s' (%.64s)", n->name, n->op);
	else
		snprintf(buf, size, "#%d (%.64s)", node, n->op);
	return buf;
}

/* "file: node 'x' (Op): message". */
static int node_err(const onnx_graph *g, int node, char *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int node_err(const onnx_graph *g, int node, char *err, const char *fmt, ...)
{
	char msg[ERR_MAX], label[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return err_set(err, "%s: node %s: %s", g->file, onnx_node_label(g, node, label, sizeof label),
		       msg);
}

/* Little-endian bytes of n elements of size 4 or 8 into host order. */
static void from_le(void *dst, const uint8_t *src, int64_t n, int size)
{
	if (size == 4) {
		uint32_t *d = dst;
		for (int64_t i = 0; i < n; i++, src += 4)
			d[i] = (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
			       (uint32_t)src[3] << 24;
	} else {
		uint64_t *d = dst;
		for (int64_t i = 0; i < n; i++, src += 8) {
			uint64_t v = 0;
			for (int k = 7; k >= 0; k--)
				v = v << 8 | src[k];
			d[i] = v;
		}
	}
}

/* A TensorProto as a tensor. what names it in messages ("file: initializer 'w'"). Its
 * payload is freed from tp once copied: a large model is not held twice. */
static int tensor_from_proto(tensor *t, Onnx__TensorProto *tp, const char *what, char *err)
{
	int64_t shape[TENSOR_MAXDIM], numel = 1, have;
	enum tensor_dtype dt;
	int dtype = tp->has_data_type ? tp->data_type : 0, size;

	memset(t, 0, sizeof *t);
	if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
		return err_set(err, "%s: external data is not supported (save the model with its weights inside)",
			       what);
	if (tp->segment)
		return err_set(err, "%s: segmented tensors are not supported", what);
	if (dtype == ONNX_FLOAT) {
		dt = DT_F4, size = 4;
	} else if (dtype == ONNX_INT64) {
		dt = DT_I8, size = 8;
	} else {
		return err_set(err, "%s: data type %s (%d) is not supported (FLOAT and INT64 only)",
			       what, onnx_dtype_name(dtype), dtype);
	}
	if (tp->n_dims > TENSOR_MAXDIM)
		return err_set(err, "%s: %zu dims, at most %d supported", what, tp->n_dims,
			       TENSOR_MAXDIM);
	for (size_t i = 0; i < tp->n_dims; i++) {
		int64_t d = tp->dims[i];
		if (d < 0)
			return err_set(err, "%s: dim %zu is negative (%lld)", what, i, (long long)d);
		if (d && numel > INT64_MAX / size / d)
			return err_set(err, "%s: dims overflow a byte count (dim %zu is %lld)", what, i,
				       (long long)d);
		numel *= d;
		shape[i] = d;
	}
	for (size_t i = 0; i < tp->n_dims; i++)  /* a 0 dim after a huge one */
		if (!tp->dims[i])
			numel = 0;
	if (tp->has_raw_data) {
		if ((uint64_t)tp->raw_data.len != (uint64_t)numel * (uint64_t)size)
			return err_set(err, "%s: raw_data holds %zu bytes, its dims need %lld", what,
				       tp->raw_data.len, (long long)(numel * size));
	} else {
		have = (int64_t)(dt == DT_F4 ? tp->n_float_data : tp->n_int64_data);
		if (have != numel)
			return err_set(err, "%s: %s_data holds %lld values, its dims need %lld", what,
				       dt == DT_F4 ? "float" : "int64", (long long)have,
				       (long long)numel);
	}
	if (tensor_alloc(t, dt, (int)tp->n_dims, shape, 0, err))
		return err_set(err, "%s: out of memory", what);
	if (tp->has_raw_data) {
		from_le(t->data, tp->raw_data.data, numel, size);
		free(tp->raw_data.data);
		tp->raw_data.data = NULL;
		tp->raw_data.len = 0;
	} else if (dt == DT_F4 && numel) {
		memcpy(t->data, tp->float_data, (size_t)numel * 4);
		free(tp->float_data);
		tp->float_data = NULL;
		tp->n_float_data = 0;
	} else if (numel) {
		memcpy(t->data, tp->int64_data, (size_t)numel * 8);
		free(tp->int64_data);
		tp->int64_data = NULL;
		tp->n_int64_data = 0;
	}
	return 0;
}

/* ---- attributes ---- */

static const Onnx__AttributeProto *attr_find(const onnx_graph *g, int node, const char *name)
{
	const Onnx__NodeProto *np = g->nodes[node].pb;

	for (size_t i = 0; i < np->n_attribute; i++)
		if (!strcmp(str(np->attribute[i]->name), name))
			return np->attribute[i];
	return NULL;
}

/* The declared type, or the one its fields imply (writers before IR 3 left type out). */
static int attr_type(const Onnx__AttributeProto *a)
{
	if (a->has_type && a->type)
		return a->type;
	if (a->has_f)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
	if (a->has_i)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	if (a->has_s)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
	if (a->t)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
	if (a->n_floats)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
	if (a->n_ints)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	return 0;
}

static const char *attr_type_name(int type)
{
	static const char *const names[] = {
		"UNDEFINED", "FLOAT", "INT", "STRING", "TENSOR", "GRAPH", "FLOATS", "INTS",
		"STRINGS", "TENSORS", "GRAPHS", "SPARSE_TENSOR", "SPARSE_TENSORS", "TYPE_PROTO",
		"TYPE_PROTOS",
	};
	return type >= 0 && type < (int)(sizeof names / sizeof names[0]) ? names[type] : "unknown";
}

/* The attribute if present with type want; NULL (and 0) if absent; -1 on another type. */
static int attr_get(const onnx_graph *g, int node, const char *name, int want,
		    const Onnx__AttributeProto **out, char *err)
{
	const Onnx__AttributeProto *a = attr_find(g, node, name);

	*out = NULL;
	if (!a)
		return 0;
	if (attr_type(a) != want)
		return node_err(g, node, err, "attribute '%s' is %s, not %s", name,
				attr_type_name(attr_type(a)), attr_type_name(want));
	*out = a;
	return 0;
}

int onnx_attr_int(const onnx_graph *g, int node, const char *name, int64_t def, int64_t *out,
		  char *err)
{
	const Onnx__AttributeProto *a;

	if (attr_get(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, &a, err))
		return -1;
	*out = a ? a->i : def;
	return 0;
}

int onnx_attr_float(const onnx_graph *g, int node, const char *name, float def, float *out,
		    char *err)
{
	const Onnx__AttributeProto *a;

	if (attr_get(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, &a, err))
		return -1;
	*out = a ? a->f : def;
	return 0;
}

int onnx_attr_string(const onnx_graph *g, int node, const char *name, const char *def,
		     char *buf, size_t size, char *err)
{
	const Onnx__AttributeProto *a;
	size_t len;

	if (attr_get(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, &a, err))
		return -1;
	if (!a) {
		snprintf(buf, size, "%s", def);
		return 0;
	}
	len = a->s.len;
	if (len >= size || memchr(a->s.data, 0, len))
		return node_err(g, node, err, "attribute '%s' is not a short string", name);
	memcpy(buf, a->s.data, len);
	buf[len] = 0;
	return 0;
}

int onnx_attr_ints(const onnx_graph *g, int node, const char *name, const int64_t **v, int *n,
		   char *err)
{
	const Onnx__AttributeProto *a;

	*v = NULL, *n = 0;
	if (attr_get(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, &a, err))
		return -1;
	if (a && a->n_ints > 1024)
		return node_err(g, node, err, "attribute '%s' has %zu values", name, a->n_ints);
	if (a)
		*v = a->ints, *n = (int)a->n_ints;
	return 0;
}

int onnx_attr_floats(const onnx_graph *g, int node, const char *name, const float **v, int *n,
		     char *err)
{
	const Onnx__AttributeProto *a;

	*v = NULL, *n = 0;
	if (attr_get(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS, &a, err))
		return -1;
	if (a && a->n_floats > 1024)
		return node_err(g, node, err, "attribute '%s' has %zu values", name, a->n_floats);
	if (a)
		*v = a->floats, *n = (int)a->n_floats;
	return 0;
}

int onnx_attr_has(const onnx_graph *g, int node, const char *name)
{
	return attr_find(g, node, name) != NULL;
}

const char *onnx_attr_unknown(const onnx_graph *g, int node, const char *const *known)
{
	const Onnx__NodeProto *np = g->nodes[node].pb;

	for (size_t i = 0; i < np->n_attribute; i++) {
		const char *name = str(np->attribute[i]->name);
		int k = 0;
		while (known[k] && strcmp(known[k], name))
			k++;
		if (!known[k])
			return name;
	}
	return NULL;
}

/* ---- the graph ---- */

/* Every definition of a name: an initializer, a graph input or a node's output. */
enum { DEF_INIT, DEF_INPUT, DEF_NODE };
struct def {
	const char *name;
	int kind, ref, slot, order;
};

static int def_cmp(const void *a, const void *b)
{
	const struct def *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : x->order - y->order;
}

static int byname_cmp(const void *key, const void *elem, const onnx_graph *g)
{
	return strcmp(key, g->values[*(const int *)elem].name);
}

const char *onnx_graph_producer(const onnx_graph *g)
{
	const Onnx__ModelProto *m = g->pb;

	return m ? str(m->producer_name) : "";
}

const char *onnx_graph_meta(const onnx_graph *g, const char *key)
{
	const Onnx__ModelProto *m = g->pb;

	for (size_t i = 0; m && i < m->n_metadata_props; i++)
		if (m->metadata_props[i] && !strcmp(str(m->metadata_props[i]->key), key))
			return str(m->metadata_props[i]->value);
	return NULL;
}

int onnx_graph_find(const onnx_graph *g, const char *name)
{
	/* bsearch has no context argument: a plain binary search. */
	int lo = 0, hi = g->nvalues;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2, c = byname_cmp(name, &g->byname[mid], g);
		if (!c)
			return g->byname[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

void onnx_graph_free(onnx_graph *g)
{
	for (int i = 0; i < g->nvalues; i++)
		tensor_free(&g->values[i].data);
	for (int i = 0; i < g->nnodes; i++)
		free(g->nodes[i].in);
	free(g->values);
	free(g->nodes);
	free(g->inputs);
	free(g->outputs);
	free(g->byname);
	free(g->file);
	if (g->pb)
		onnx__model_proto__free_unpacked(g->pb, NULL);
	memset(g, 0, sizeof *g);
}

/* A graph input's declared type and shape. */
static int input_shape(onnx_graph *g, onnx_value *v, const Onnx__ValueInfoProto *vi, char *err)
{
	const Onnx__TypeProto *tp = vi->type;
	const Onnx__TensorShapeProto *sh;

	v->ndim = -1;
	if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
		return 0;
	v->elem_type = tp->tensor_type->has_elem_type ? tp->tensor_type->elem_type : 0;
	sh = tp->tensor_type->shape;
	if (!sh)
		return 0;
	if (sh->n_dim > TENSOR_MAXDIM)
		return err_set(err, "%s: graph input '%.64s' has %zu dims, at most %d supported",
			       g->file, v->name, sh->n_dim, TENSOR_MAXDIM);
	v->ndim = (int)sh->n_dim;
	for (size_t i = 0; i < sh->n_dim; i++) {
		const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
		v->dims[i] = -1;
		if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
			continue;
		if (d->dim_value < 0 || d->dim_value > ONNX_MAX_DIM)
			return err_set(err, "%s: graph input '%.64s' dim %zu is %lld (0 to %lld allowed)",
				       g->file, v->name, i, (long long)d->dim_value,
				       (long long)ONNX_MAX_DIM);
		v->dims[i] = d->dim_value;
	}
	return 0;
}

/* A Constant node's value as data on its output. */
static int fold_constant(onnx_graph *g, int node, Onnx__NodeProto *np, char *err)
{
	onnx_value *v;
	char what[ERR_MAX], label[160];
	int64_t n;

	if (np->n_input || np->n_output != 1 || np->n_attribute != 1 || g->nodes[node].out[0] < 0)
		return node_err(g, node, err, "a Constant takes no inputs, one named output and one attribute");
	v = &g->values[g->nodes[node].out[0]];
	snprintf(what, sizeof what, "%s: node %s: value", g->file, onnx_node_label(g, node, label, sizeof label));
	Onnx__AttributeProto *a = np->attribute[0];
	const char *name = str(a->name);
	int type = attr_type(a);
	/* the declared type is no promise that its field is there */
	if (!strcmp(name, "value") && type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR && !a->t)
		return node_err(g, node, err, "attribute 'value' holds no tensor");
	if (!strcmp(name, "value") && type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)
		return tensor_from_proto(&v->data, a->t, what, err) ? -1 : (v->has_data = 1, 0);
	if (!strcmp(name, "value_float") && type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) {
		if (tensor_alloc(&v->data, DT_F4, 0, NULL, 0, err))
			return -1;
		*(float *)v->data.data = a->f;
	} else if (!strcmp(name, "value_int") && type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) {
		if (tensor_alloc(&v->data, DT_I8, 0, NULL, 0, err))
			return -1;
		*(int64_t *)v->data.data = a->i;
	} else if (!strcmp(name, "value_floats") && type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS) {
		n = (int64_t)a->n_floats;
		if (tensor_alloc(&v->data, DT_F4, 1, &n, 0, err))
			return -1;
		memcpy(v->data.data, a->floats, (size_t)n * 4);
	} else if (!strcmp(name, "value_ints") && type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) {
		n = (int64_t)a->n_ints;
		if (tensor_alloc(&v->data, DT_I8, 1, &n, 0, err))
			return -1;
		memcpy(v->data.data, a->ints, (size_t)n * 8);
	} else {
		return node_err(g, node, err, "attribute '%.64s' (%s) is not supported (value, value_float(s), value_int(s))",
				name, attr_type_name(type));
	}
	v->has_data = 1;
	return 0;
}

/* Pushes node i onto the min-heap h [*n] of ready nodes. */
static void ready_push(int *h, int *n, int i)
{
	int k = (*n)++;

	for (; k > 0 && h[(k - 1) / 2] > i; k = (k - 1) / 2)
		h[k] = h[(k - 1) / 2];
	h[k] = i;
}

/* Pops the first in file order of the ready nodes h [*n] (*n > 0). */
static int ready_pop(int *h, int *n)
{
	int top = h[0], last = h[--(*n)], k = 0;

	for (;;) {
		int c = 2 * k + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] < h[c])
			c++;
		if (h[c] >= last)
			break;
		h[k] = h[c], k = c;
	}
	h[k] = last;
	return top;
}

/* Kahn's order over the nodes that remain (Constants removed): a node after every node
 * whose output it reads, the first ready node in file order taken first, so a file
 * already in order stays so (branches are not interleaved: a layer's nodes stay together,
 * and a petcnn export's layers come back in its spec's order). A node left over sits on a
 * cycle. */
static int topo_sort(onnx_graph *g, char *err)
{
	int n = g->nnodes, *indeg, *order, *first, *next_use, *use_node, nuses = 0, tail = 0;
	int *ready, nready = 0;
	onnx_node *sorted;
	int rc = -1;

	for (int i = 0; i < n; i++)
		nuses += g->nodes[i].nin;
	indeg = calloc((size_t)n + 1, sizeof *indeg);
	order = calloc((size_t)n + 1, sizeof *order);
	first = malloc(((size_t)g->nvalues + 1) * sizeof *first);
	next_use = calloc((size_t)nuses + 1, sizeof *next_use);
	use_node = calloc((size_t)nuses + 1, sizeof *use_node);
	sorted = calloc((size_t)n + 1, sizeof *sorted);
	ready = calloc((size_t)n + 1, sizeof *ready);
	if (!indeg || !order || !first || !next_use || !use_node || !sorted || !ready) {
		err_set(err, "%s: out of memory", g->file);
		goto out;
	}
	for (int v = 0; v < g->nvalues; v++)
		first[v] = -1;
	/* use lists per value, built backwards so that walking them is in file order */
	for (int i = n - 1, u = nuses; i >= 0; i--)
		for (int k = g->nodes[i].nin - 1; k >= 0; k--) {
			int v = g->nodes[i].in[k];
			if (v < 0)
				continue;
			u--;
			use_node[u] = i, next_use[u] = first[v], first[v] = u;
			if (g->values[v].producer >= 0)
				indeg[i]++;
		}
	for (int i = 0; i < n; i++)
		if (!indeg[i])
			ready_push(ready, &nready, i);
	while (nready) {
		int i = order[tail++] = ready_pop(ready, &nready);
		for (int k = 0; k < g->nodes[i].nout; k++) {
			int v = g->nodes[i].out[k];
			for (int u = v < 0 ? -1 : first[v]; u >= 0; u = next_use[u])
				if (!--indeg[use_node[u]])
					ready_push(ready, &nready, use_node[u]);
		}
	}
	if (tail < n) {
		int i = 0;
		while (!indeg[i])
			i++;
		node_err(g, i, err, "is on a cycle (it depends on its own output)");
		goto out;
	}
	/* renumber: values' producers follow their nodes */
	for (int k = 0; k < n; k++) {
		sorted[k] = g->nodes[order[k]];
		for (int o = 0; o < sorted[k].nout; o++)
			if (sorted[k].out[o] >= 0)
				g->values[sorted[k].out[o]].producer = k;
	}
	free(g->nodes);
	g->nodes = sorted;
	sorted = NULL;
	rc = 0;
out:
	free(indeg);
	free(order);
	free(first);
	free(next_use);
	free(use_node);
	free(sorted);
	free(ready);
	return rc;
}

static const char *def_what(const struct def *d)
{
	return d->kind == DEF_INIT ? "an initializer" : d->kind == DEF_INPUT ? "a graph input" : "a node output";
}

static int build(onnx_graph *g, char *err)
{
	Onnx__ModelProto *m = g->pb;
	Onnx__GraphProto *gp = m->graph;
	struct def *defs = NULL;
	size_t ndefs = 0, cap;
	int rc = -1, nv = 0, *input_of = NULL;

	if (!gp)
		return err_set(err, "%s: no graph in the model", g->file);
	g->opset = -1;
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const char *d = str(m->opset_import[i]->domain);
		if (!*d || !strcmp(d, "ai.onnx"))
			g->opset = m->opset_import[i]->has_version ? m->opset_import[i]->version : -1;
	}
	if (g->opset < 1)
		return err_set(err, "%s: no opset version for the default (ai.onnx) domain", g->file);
	if (gp->n_node > (1u << 24) || gp->n_initializer > (1u << 24) || gp->n_input > (1u << 24) ||
	    gp->n_output > (1u << 24))
		return err_set(err, "%s: too many nodes, initializers, inputs or outputs", g->file);
	if (gp->n_sparse_initializer)
		return err_set(err, "%s: sparse initializers are not supported", g->file);

	/* nodes, before their inputs are resolved */
	g->nnodes = (int)gp->n_node;
	g->nodes = calloc(gp->n_node + 1, sizeof *g->nodes);
	cap = gp->n_initializer + gp->n_input;
	for (size_t i = 0; i < gp->n_node; i++)
		cap += gp->node[i]->n_output;
	defs = calloc(cap + 1, sizeof *defs);
	if (!g->nodes || !defs) {
		err_set(err, "%s: out of memory", g->file);
		goto out;
	}
	for (int i = 0; i < g->nnodes; i++) {
		Onnx__NodeProto *np = gp->node[i];
		onnx_node *n = &g->nodes[i];
		n->name = str(np->name), n->op = str(np->op_type), n->domain = str(np->domain);
		n->pb = np;
		if (!strcmp(n->domain, "ai.onnx"))
			n->domain = "";
		if (np->n_input > 4096 || np->n_output > 4096) {
			node_err(g, i, err, "too many inputs or outputs");
			goto out;
		}
		n->nin = (int)np->n_input, n->nout = (int)np->n_output;
		n->in = malloc((np->n_input + np->n_output + 1) * sizeof *n->in);
		if (!n->in) {
			err_set(err, "%s: out of memory", g->file);
			goto out;
		}
		n->out = n->in + n->nin;
		if (!n->op[0]) {
			node_err(g, i, err, "no op_type");
			goto out;
		}
		for (size_t a = 0; a < np->n_attribute; a++)
			for (size_t b = 0; b < a; b++)
				if (!strcmp(str(np->attribute[a]->name), str(np->attribute[b]->name))) {
					node_err(g, i, err, "attribute '%.64s' given twice",
						 str(np->attribute[a]->name));
					goto out;
				}
	}

	/* every definition of a name, sorted by name: equal names meet */
	for (size_t i = 0; i < gp->n_initializer; i++)
		defs[ndefs] = (struct def){ str(gp->initializer[i]->name), DEF_INIT, (int)i, 0, (int)ndefs },
		ndefs++;
	for (size_t i = 0; i < gp->n_input; i++)
		defs[ndefs] = (struct def){ str(gp->input[i]->name), DEF_INPUT, (int)i, 0, (int)ndefs },
		ndefs++;
	for (int i = 0; i < g->nnodes; i++)
		for (int k = 0; k < g->nodes[i].nout; k++) {
			const char *name = str(gp->node[i]->output[k]);
			g->nodes[i].out[k] = -1;
			if (*name)
				defs[ndefs] = (struct def){ name, DEF_NODE, i, k, (int)ndefs }, ndefs++;
		}
	for (size_t i = 0; i < ndefs; i++)
		if (!defs[i].name[0]) {
			err_set(err, "%s: %s without a name", g->file, def_what(&defs[i]));
			goto out;
		}
	qsort(defs, ndefs, sizeof *defs, def_cmp);

	g->values = calloc(ndefs + 1, sizeof *g->values);
	g->byname = calloc(ndefs + 1, sizeof *g->byname);
	input_of = calloc(ndefs + 1, sizeof *input_of);
	if (!g->values || !g->byname || !input_of) {
		err_set(err, "%s: out of memory", g->file);
		goto out;
	}
	for (size_t i = 0; i < ndefs;) {
		size_t j = i + 1;
		int ninit = 0, ninput = 0, nnode = 0;
		onnx_value *v = &g->values[nv];
		while (j < ndefs && !strcmp(defs[j].name, defs[i].name))
			j++;
		for (size_t k = i; k < j; k++)
			ninit += defs[k].kind == DEF_INIT, ninput += defs[k].kind == DEF_INPUT,
				nnode += defs[k].kind == DEF_NODE;
		if (j - i > 1 && !(j - i == 2 && ninit == 1 && ninput == 1)) {
			/* defs[i+1] is the later one in file order */
			const struct def *d = &defs[i + 1];
			if (d->kind == DEF_NODE)
				node_err(g, d->ref, err, "output '%.64s' is already %s", d->name,
					 def_what(&defs[i]));
			else
				err_set(err, "%s: '%.64s' is %s and also %s", g->file, d->name,
					def_what(&defs[i]), def_what(d));
			goto out;
		}
		v->name = defs[i].name;
		v->producer = -1;
		v->ndim = -1;
		input_of[nv] = -1;
		for (size_t k = i; k < j; k++) {
			const struct def *d = &defs[k];
			if (d->kind == DEF_NODE) {
				v->producer = d->ref;
				g->nodes[d->ref].out[d->slot] = nv;
			} else if (d->kind == DEF_INPUT) {
				input_of[nv] = d->ref;
			} else {
				char what[ERR_MAX];
				snprintf(what, sizeof what, "%s: initializer '%.64s'", g->file, v->name);
				if (tensor_from_proto(&v->data, gp->initializer[d->ref], what, err))
					goto out;
				v->has_data = 1;
			}
		}
		g->byname[nv] = nv;  /* defs are sorted by name, so values are too */
		nv++;
		g->nvalues = nv;
		i = j;
	}

	/* graph inputs: their shapes; those without data are fed at run time */
	g->inputs = calloc(gp->n_input + 1, sizeof *g->inputs);
	g->outputs = calloc(gp->n_output + 1, sizeof *g->outputs);
	if (!g->inputs || !g->outputs) {
		err_set(err, "%s: out of memory", g->file);
		goto out;
	}
	for (int v = 0; v < nv; v++) {
		if (input_of[v] < 0 || g->values[v].has_data)
			continue;
		g->values[v].is_input = 1;
		if (input_shape(g, &g->values[v], gp->input[input_of[v]], err))
			goto out;
	}
	for (size_t i = 0; i < gp->n_input; i++) {  /* in the file's order */
		int v = onnx_graph_find(g, str(gp->input[i]->name));
		if (g->values[v].is_input)
			g->inputs[g->ninputs++] = v;
	}

	/* node inputs: each must name a value */
	for (int i = 0; i < g->nnodes; i++)
		for (int k = 0; k < g->nodes[i].nin; k++) {
			const char *name = str(gp->node[i]->input[k]);
			int v = *name ? onnx_graph_find(g, name) : -1;
			if (*name && v < 0) {
				node_err(g, i, err, "input '%.64s' is not produced by any node, input or initializer",
					 name);
				goto out;
			}
			g->nodes[i].in[k] = v;
		}

	/* Constants become data (all first: a failure leaves the nodes as they were), and so
	 * does an Identity of data (torch.onnx.export writes one per shared weight); the rest
	 * is sorted */
	for (int i = 0; i < g->nnodes; i++)
		if (!strcmp(g->nodes[i].op, "Constant") && !g->nodes[i].domain[0] &&
		    fold_constant(g, i, gp->node[i], err))
			goto out;
	for (int changed = 1; changed;) {
		changed = 0;
		for (int i = 0; i < g->nnodes; i++) {
			onnx_node *n = &g->nodes[i];
			onnx_value *src, *dst;
			if (strcmp(n->op, "Identity") || n->domain[0] || n->nin != 1 || n->nout != 1 ||
			    n->in[0] < 0 || n->out[0] < 0)
				continue;
			src = &g->values[n->in[0]], dst = &g->values[n->out[0]];
			if (!src->has_data || dst->has_data)
				continue;
			if (tensor_alloc(&dst->data, src->data.dtype, src->data.ndim, src->data.shape, 0, err))
				goto out;
			memcpy(dst->data.data, src->data.data, (size_t)tensor_nbytes(&src->data));
			dst->has_data = 1;
			changed = 1;
		}
	}
	{
		int kept = 0;
		for (int i = 0; i < g->nnodes; i++) {
			onnx_node n = g->nodes[i];
			if ((!strcmp(n.op, "Constant") || !strcmp(n.op, "Identity")) && !n.domain[0] &&
			    n.nout == 1 && n.out[0] >= 0 && g->values[n.out[0]].has_data) {
				g->values[n.out[0]].producer = -1;
				free(n.in);
				continue;
			}
			for (int o = 0; o < n.nout; o++)
				if (n.out[o] >= 0)
					g->values[n.out[o]].producer = kept;
			g->nodes[kept++] = n;
		}
		g->nnodes = kept;
	}
	if (topo_sort(g, err))
		goto out;
	for (int i = 0; i < g->nnodes; i++)
		for (int k = 0; k < g->nodes[i].nin; k++)
			if (g->nodes[i].in[k] >= 0)
				g->values[g->nodes[i].in[k]].nuse++;

	for (size_t i = 0; i < gp->n_output; i++) {
		int v = onnx_graph_find(g, str(gp->output[i]->name));
		if (v < 0) {
			err_set(err, "%s: graph output '%.64s' is not produced by any node, input or initializer",
				g->file, str(gp->output[i]->name));
			goto out;
		}
		g->values[v].is_output = 1;
		g->outputs[g->noutputs++] = v;
	}
	if (!g->noutputs) {
		err_set(err, "%s: the graph has no outputs", g->file);
		goto out;
	}
	rc = 0;
out:
	free(defs);
	free(input_of);
	return rc;
}

int onnx_graph_parse(onnx_graph *g, const void *data, size_t len, const char *name, char *err)
{
	memset(g, 0, sizeof *g);
	g->file = strdup(name);
	if (!g->file)
		return err_set(err, "%s: out of memory", name);
	if (len > ONNX_MAX_BYTES) {
		err_set(err, "%s: larger than %zu bytes", name, ONNX_MAX_BYTES);
		goto fail;
	}
	g->pb = onnx__model_proto__unpack(NULL, len, data);
	if (!g->pb) {
		err_set(err, "%s: not an ONNX model (the protobuf is truncated or corrupt)", name);
		goto fail;
	}
	if (build(g, err))
		goto fail;
	return 0;
fail:
	onnx_graph_free(g);
	return -1;
}

int onnx_graph_read(onnx_graph *g, const char *path, char *err)
{
	struct buf b;
	int rc;

	memset(g, 0, sizeof *g);
	buf_init(&b);
	rc = buf_slurp(&b, path, ONNX_MAX_BYTES, err);
	if (!rc)
		rc = onnx_graph_parse(g, b.data, b.len, path, err);
	buf_free(&b);
	return rc;
}

int onnx_graph_bind(onnx_graph *g, const char *name, tensor *t, char *err)
{
	int v = onnx_graph_find(g, name), k = 0;
	onnx_value *val;

	if (v < 0 || !g->values[v].is_input)
		return err_set(err, "%s: '%.64s' is not a graph input", g->file, name);
	val = &g->values[v];
	if ((val->elem_type == ONNX_FLOAT && t->dtype != DT_F4) ||
	    (val->elem_type == ONNX_INT64 && t->dtype != DT_I8))
		return err_set(err, "%s: input '%.64s' is %s, the data %s", g->file, name,
			       onnx_dtype_name(val->elem_type), tensor_dtype_name(t->dtype));
	if (val->ndim >= 0) {
		int ok = val->ndim == t->ndim;
		for (int i = 0; ok && i < t->ndim; i++)
			ok = val->dims[i] < 0 || val->dims[i] == t->shape[i];
		if (!ok)
			return err_set(err, "%s: input '%.64s': the data's shape differs from the declared one",
				       g->file, name);
	}
	val->data = *t;
	val->has_data = 1;
	val->is_input = 0;
	memset(t, 0, sizeof *t);
	for (int i = 0; i < g->ninputs; i++)
		if (g->inputs[i] != v)
			g->inputs[k++] = g->inputs[i];
	g->ninputs = k;
	return 0;
}

int onnx_tensor_read(tensor *t, const char *path, char *name, size_t size, char *err)
{
	struct buf b;
	Onnx__TensorProto *tp = NULL;
	char what[ERR_MAX];
	int rc;

	memset(t, 0, sizeof *t);
	buf_init(&b);
	rc = buf_slurp(&b, path, ONNX_MAX_BYTES, err);
	if (!rc) {
		tp = onnx__tensor_proto__unpack(NULL, b.len, b.data);
		if (!tp)
			rc = err_set(err, "%s: not an ONNX tensor (the protobuf is truncated or corrupt)", path);
	}
	buf_free(&b);
	if (rc)
		return rc;
	snprintf(what, sizeof what, "%s", path);
	rc = tensor_from_proto(t, tp, what, err);
	if (!rc && name)
		snprintf(name, size, "%s", str(tp->name));
	onnx__tensor_proto__free_unpacked(tp, NULL);
	return rc;
}
