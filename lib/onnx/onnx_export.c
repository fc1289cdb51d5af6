/* onnx_export: a model's inference graph as an ONNX file (opset 13) that other runtimes
 * (python3-onnx, OpenCV's dnn) load, so a network trained here can be used elsewhere. */
#include "onnx/onnx_export.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/vec.h"
#include "onnx.pb-c.h"
#include "util/buf.h"
#include "util/cli.h"
#include "util/errmsg.h"
#include "util/outfile.h"

#define ATTR_MAX 6      /* the most any node here gets (AveragePool's five) */
#define PB_MAX 2147483647LL   /* protobuf's limit on one message */

/* The message under construction. Every piece of it is allocated through here and freed
 * together (protobuf-c's own free is for messages it unpacked). Allocation failures are
 * sticky: oom is set, the pieces asked for come back NULL, and the caller checks once. */
typedef struct {
	void **mem;
	size_t nmem, capmem;
	Onnx__NodeProto **node;
	size_t nnode, capnode;
	Onnx__TensorProto **init;
	size_t ninit, capinit;
	int oom;
} bld;

/* One layer's output in the graph: its value name, its rank (4: [N, C, H, W]; 2: [N, C],
 * what Gemm gives) and, once some reader needed it, its 4-D view. */
typedef struct {
	const char *v, *v4;
	int rank;
} val;

static void *alloc(bld *b, size_t n)
{
	void *p;

	if (b->oom || buf_grow_array(&b->mem, &b->capmem, b->nmem + 1, sizeof *b->mem) ||
	    !(p = calloc(1, n ? n : 1))) {
		b->oom = 1;
		return NULL;
	}
	return b->mem[b->nmem++] = p;
}

static const char *str(bld *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *str(bld *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(s = alloc(b, (size_t)n + 1)))
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* A node op(in[0..nin-1]) -> out; NULL when out of memory (the attr_ calls accept it). */
static Onnx__NodeProto *node_n(bld *b, const char *op, const char *out, int nin, const char *const *in)
{
	Onnx__NodeProto *n = alloc(b, sizeof *n);
	char **ins = alloc(b, sizeof *ins * (size_t)nin), **outs = alloc(b, sizeof *outs);
	Onnx__AttributeProto **attrs = alloc(b, sizeof *attrs * ATTR_MAX);

	if (!n || !ins || !outs || !attrs || !out ||
	    buf_grow_array(&b->node, &b->capnode, b->nnode + 1, sizeof *b->node)) {
		b->oom = 1;
		return NULL;
	}
	for (int k = 0; k < nin; k++) {
		if (!in[k])
			return b->oom = 1, NULL;
		ins[k] = (char *)in[k];
	}
	*n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
	outs[0] = (char *)out;
	n->input = ins, n->n_input = (size_t)nin;
	n->output = outs, n->n_output = 1;
	n->name = (char *)out;
	n->op_type = (char *)op;
	n->attribute = attrs;
	return b->node[b->nnode++] = n;
}

static Onnx__NodeProto *node(bld *b, const char *op, const char *out, const char *in0,
			     const char *in1, const char *in2)
{
	const char *in[3] = { in0, in1, in2 };

	return node_n(b, op, out, in2 ? 3 : in1 ? 2 : 1, in);
}

/* A node named otherwise than its output: a layer's main node is named the layer (so an
 * importer, ours included, that names layers after nodes gets our names back) while its
 * value may be NAME/preact. */
static Onnx__NodeProto *named(bld *b, Onnx__NodeProto *n, const char *name)
{
	if (!name)
		b->oom = 1;
	else if (n)
		n->name = (char *)name;
	return n;
}

static Onnx__AttributeProto *attr(bld *b, Onnx__NodeProto *n, const char *name,
				  Onnx__AttributeProto__AttributeType type)
{
	Onnx__AttributeProto *a = alloc(b, sizeof *a);

	if (!a || !n)
		return NULL;
	*a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
	a->name = (char *)name;
	a->has_type = 1, a->type = type;
	n->attribute[n->n_attribute++] = a;
	return a;
}

static void attr_i(bld *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);

	if (a)
		a->has_i = 1, a->i = v;
}

static void attr_f(bld *b, Onnx__NodeProto *n, const char *name, float v)
{
	Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);

	if (a)
		a->has_f = 1, a->f = v;
}

static void attr_ints(bld *b, Onnx__NodeProto *n, const char *name, int count, const int64_t *v)
{
	Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	int64_t *d = alloc(b, sizeof *d * (size_t)count);

	if (a && d) {
		memcpy(d, v, sizeof *d * (size_t)count);
		a->ints = d, a->n_ints = (size_t)count;
	}
}

/* An initialiser of that name and shape; returns its zeroed raw data (little-endian, as
 * ours is) for the caller to fill, or NULL when out of memory. */
static void *init(bld *b, const char *name, int dtype, int ndim, const int64_t *dims)
{
	Onnx__TensorProto *t = alloc(b, sizeof *t);
	int64_t *d = alloc(b, sizeof *d * (size_t)(ndim ? ndim : 1));
	size_t n = dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8 : 4;
	void *data;

	for (int k = 0; k < ndim; k++)
		n *= (size_t)dims[k];
	if (!t || !d || !name || !(data = alloc(b, n)) ||
	    buf_grow_array(&b->init, &b->capinit, b->ninit + 1, sizeof *b->init)) {
		b->oom = 1;
		return NULL;
	}
	*t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
	if (ndim)
		memcpy(d, dims, sizeof *d * (size_t)ndim);  /* a scalar has no dims (NULL) */
	t->dims = d, t->n_dims = (size_t)ndim;
	t->has_data_type = 1, t->data_type = dtype;
	t->name = (char *)name;
	t->has_raw_data = 1, t->raw_data.len = n, t->raw_data.data = data;
	b->init[b->ninit++] = t;
	return data;
}

static float *init_f(bld *b, const char *name, int ndim, const int64_t *dims)
{
	return init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, dims);
}

/* The pad after the input along one axis that gives out windows in ONNX's floor mode:
 * what the last window reaches past the input, whatever the geometry's own pads were
 * (TF's SAME, explicit pads, or the ceil rule's overhang). */
static int64_t pad_after(int in, int k, int s, int out, int before)
{
	int64_t p = (int64_t)(out - 1) * s + k - in - before;

	return p < 0 ? 0 : p;
}

/* kernel_shape, strides and pads of a window; ceil_mode only where floor mode with
 * longer pads would differ: an average that counts pads must not count the overhang. */
static void window_attrs(bld *b, Onnx__NodeProto *n, const model_layer *l)
{
	const geom *g = &l->g;
	int64_t k[2] = { g->kh, g->kw }, s[2] = { g->sh, g->sw };
	int64_t p[4] = { g->pt, g->pl, pad_after(g->h, g->kh, g->sh, g->oh, g->pt),
			 pad_after(g->w, g->kw, g->sw, g->ow, g->pl) };
	int ceil = l->kind == MODEL_AVGPOOL && l->incl && (p[2] > g->pb || p[3] > g->pr);

	if (ceil)
		p[2] = g->pb, p[3] = g->pr;
	attr_ints(b, n, "kernel_shape", 2, k);
	attr_ints(b, n, "strides", 2, s);
	attr_ints(b, n, "pads", 4, p);
	if (ceil)
		attr_i(b, n, "ceil_mode", 1);
}

typedef struct {
	bld *b;
	const model *m;
	val *out;       /* [nlayer] */
	val in;         /* the normalised image */
} ctx;

static val *src_of(ctx *x, int src)
{
	return src == MODEL_INPUT ? &x->in : &x->out[src];
}

/* The value as [N, C, H, W]: a Gemm's [N, C] gets a Reshape to [N, C, 1, 1] (once; 0
 * copies N, so shape inference keeps it symbolic). */
static const char *as4d(ctx *x, val *v, int c)
{
	int64_t d[1] = { 4 };
	const char *sname;
	int64_t *shape;

	if (v->rank == 4)
		return v->v;
	if (!v->v4) {
		v->v4 = str(x->b, "%s/4d", v->v);
		sname = str(x->b, "%s/4d_shape", v->v);
		if ((shape = init(x->b, sname, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, d))) {
			shape[0] = 0, shape[1] = c, shape[2] = 1, shape[3] = 1;
			node(x->b, "Reshape", v->v4, v->v, sname, NULL);
		}
	}
	return v->v4;
}

/* out = NAME, or NAME/preact followed by the activation to NAME. */
static const char *pre(ctx *x, const model_layer *l, const char *name)
{
	return l->relu ? str(x->b, "%s/preact", name) : name;
}

static Onnx__NodeProto *emit_min(bld *b, const char *t, float hi, const char *name);

/* A Relu node NAME/relu (onnx_import fuses a node so named into the layer before it); a
 * ReLU6 then takes the upper bound as a clip layer does. */
static void relu_after(ctx *x, const model_layer *l, const char *pre_name, const char *name)
{
	const char *floor = l->relu == VEC_RELU6 ? str(x->b, "%s/floor", name) : name;

	if (l->relu)
		named(x->b, node(x->b, "Relu", floor, pre_name, NULL, NULL), str(x->b, "%s/relu", name));
	if (l->relu == VEC_RELU6)
		named(x->b, emit_min(x->b, floor, 6.0f, name), str(x->b, "%s/relu6", name));
}

/* conv: our weights [kh, kw, cin/G, cout] (HWIO) as ONNX's [cout, cin/G, kh, kw] (OIHW). */
static void emit_conv(ctx *x, const model_layer *l, const char *in, const char *name)
{
	const model_param *wp = &x->m->param[l->wparam], *bp = &x->m->param[l->bparam];
	const float *w = x->m->params + wp->off, *bias = x->m->params + bp->off;
	int64_t kh = wp->shape[0], kw = wp->shape[1], ci = wp->shape[2], co = wp->shape[3];
	int64_t wd[4] = { co, ci, kh, kw }, bd[1] = { co };
	float *W = init_f(x->b, wp->name, 4, wd), *B = init_f(x->b, bp->name, 1, bd);
	const char *p = pre(x, l, name);
	Onnx__NodeProto *n;

	if (!W || !B)
		return;
	for (int64_t y = 0; y < kh; y++)
		for (int64_t xx = 0; xx < kw; xx++)
			for (int64_t i = 0; i < ci; i++)
				for (int64_t o = 0; o < co; o++)
					W[((o * ci + i) * kh + y) * kw + xx] = w[((y * kw + xx) * ci + i) * co + o];
	memcpy(B, bias, sizeof *B * (size_t)co);
	n = named(x->b, node(x->b, "Conv", p, in, wp->name, bp->name), name);
	window_attrs(x->b, n, l);
	attr_i(x->b, n, "group", l->g.groups > 1 ? l->g.groups : 1);
	relu_after(x, l, p, name);
}

/* dense: our weights [nin, nout] have a row per input of the flattened NHWC input,
 * (h, w, c); Flatten of NCHW gives (c, h, w). ONNX's B is [nout, nin] (transB, the layout
 * OpenCV 4.6 reads: with transB 0 and a bias its importer fails), so its column
 * j = c*HW + hw is our row hw*C + c. Written 16 columns at a time, a cache line of B, while
 * the 16 rows they come from stay in cache. */
static void emit_dense(ctx *x, const model_layer *l, val *src, int h, int w, int c, const char *name)
{
	const model_param *wp = &x->m->param[l->wparam], *bp = &x->m->param[l->bparam];
	const float *wt = x->m->params + wp->off;
	int64_t nin = wp->shape[0], nout = wp->shape[1], hw = (int64_t)h * w;
	int64_t wd[2] = { nout, nin }, bd[1] = { nout };
	float *W = init_f(x->b, wp->name, 2, wd), *B = init_f(x->b, bp->name, 1, bd);
	const char *in = src->v, *p = pre(x, l, name);
	Onnx__NodeProto *n;

	if (!W || !B)
		return;
	if (src->rank == 4) {
		in = str(x->b, "%s/flat", name);
		attr_i(x->b, node(x->b, "Flatten", in, src->v, NULL, NULL), "axis", 1);
	} else {
		hw = 1, c = (int)nin;
	}
	for (int64_t j0 = 0; j0 < nin; j0 += 16) {
		int64_t j1 = j0 + 16 < nin ? j0 + 16 : nin;

		for (int64_t o = 0; o < nout; o++)
			for (int64_t j = j0; j < j1; j++)
				W[o * nin + j] = wt[((j % hw) * c + j / hw) * nout + o];
	}
	memcpy(B, x->m->params + bp->off, sizeof *B * (size_t)nout);
	n = named(x->b, node(x->b, "Gemm", p, in, wp->name, bp->name), name);
	attr_i(x->b, n, "transB", 1);
	relu_after(x, l, p, name);
}

/* name = min(t, hi) = t - Relu(t - hi): emit_clip's upper bound; its last node. */
static Onnx__NodeProto *emit_min(bld *b, const char *t, float hi, const char *name)
{
	const char *c = str(b, "%s/hi", name), *d = str(b, "%s/above", name);
	const char *r = str(b, "%s/above_relu", name);
	float *v = init_f(b, c, 0, NULL);

	if (!v)
		return NULL;
	*v = hi;
	node(b, "Sub", d, t, c, NULL);
	node(b, "Relu", r, d, NULL, NULL);
	return node(b, "Sub", name, t, r, NULL);
}

/* clip: min(max(x, lo), hi) from Relu, Add and Sub, not Clip: opset 13 gives Clip its
 * bounds as inputs, which OpenCV 4.6 refuses (it reads only the attributes of opset 6),
 * and it has no Max or Min with a constant either. max(x, lo) = x + Relu(lo - x) (Relu(x)
 * for lo 0) and min(t, hi) = t - Relu(t - hi) give x exactly inside the bounds; at a bound
 * the result is within a rounding of it. A bound of magnitude FLT_MAX or more is none.
 * onnx_import reads these patterns back as the clip (a ReLU6 conv's too). */
static void emit_clip(ctx *x, const model_layer *l, const val *s, val *o)
{
	bld *b = x->b;
	float lo = l->a[0], hi = l->a[1];
	int has_lo = fabsf(lo) < FLT_MAX, has_hi = fabsf(hi) < FLT_MAX;
	const char *t = s->v, *name = o->v;

	if (!has_lo && !has_hi) {
		*o = *s;        /* no bounds: the identity, no node */
		return;
	}
	if (has_lo) {
		const char *out = has_hi ? str(b, "%s/floor", name) : name;

		if (lo == 0) {
			node(b, "Relu", out, t, NULL, NULL);
		} else {
			const char *c = str(b, "%s/lo", name), *d = str(b, "%s/below", name);
			const char *r = str(b, "%s/below_relu", name);
			float *v = init_f(b, c, 0, NULL);

			if (!v)
				return;
			*v = lo;
			node(b, "Sub", d, c, t, NULL);
			node(b, "Relu", r, d, NULL, NULL);
			node(b, "Add", out, t, r, NULL);
		}
		t = out;
	}
	if (has_hi)
		emit_min(b, t, hi, name);
}

/* y = x * scale[c] + shift[c] as BatchNormalization with mean 0, variance 1, epsilon 0
 * (OpenCV 4.6 runs no Add of a [1, C, 1, 1] constant), the node called node_name, its
 * initialisers name/scale...; its scale and shift are set by the caller through *scale
 * and *shift ([C] each). */
static void affine(bld *b, const char *in, const char *out, const char *name,
		   const char *node_name, int c, float **scale, float **shift)
{
	int64_t d[1] = { c };
	const char *sn = str(b, "%s/scale", name), *tn = str(b, "%s/shift", name);
	const char *mn = str(b, "%s/mean0", name), *vn = str(b, "%s/var1", name);
	float *mean = init_f(b, mn, 1, d), *var = init_f(b, vn, 1, d);

	*scale = init_f(b, sn, 1, d), *shift = init_f(b, tn, 1, d);
	if (!mean || !var || !*scale || !*shift)
		return;
	for (int k = 0; k < c; k++)
		var[k] = 1;
	const char *in5[5] = { in, sn, tn, mn, vn };
	attr_f(b, named(b, node_n(b, "BatchNormalization", out, 5, in5), node_name), "epsilon", 0);
}

static void emit_layer(ctx *x, int i)
{
	bld *b = x->b;
	const model_layer *l = &x->m->layer[i];
	val *o = &x->out[i], *s = src_of(x, l->src[0]);
	const char *name = o->v, *p;
	int h, w, c;
	Onnx__NodeProto *n;

	if (l->src[0] == MODEL_INPUT)
		h = x->m->h, w = x->m->w, c = x->m->c;
	else
		h = x->m->layer[l->src[0]].oh, w = x->m->layer[l->src[0]].ow, c = x->m->layer[l->src[0]].oc;
	o->rank = s->rank;
	switch (l->kind) {
	case MODEL_CONV:
		o->rank = 4;
		emit_conv(x, l, as4d(x, s, c), name);
		break;
	case MODEL_POOL:
	case MODEL_AVGPOOL:
		o->rank = 4;
		n = node(b, l->kind == MODEL_POOL ? "MaxPool" : "AveragePool", name, as4d(x, s, c), NULL, NULL);
		window_attrs(b, n, l);
		if (l->kind == MODEL_AVGPOOL)
			attr_i(b, n, "count_include_pad", l->incl);
		break;
	case MODEL_GAP:
		o->rank = 4;
		node(b, "GlobalAveragePool", name, as4d(x, s, c), NULL, NULL);
		break;
	case MODEL_DENSE:
		o->rank = 2;
		emit_dense(x, l, s, h, w, c, name);
		break;
	case MODEL_DROP:
		/* inference: the identity, so no node; readers read its input */
		*o = *s;
		break;
	case MODEL_ADD: {
		val *s2 = src_of(x, l->src[1]);
		const char *a = s->v, *a2 = s2->v;

		if (s->rank != s2->rank)
			a = as4d(x, s, c), a2 = as4d(x, s2, c), o->rank = 4;
		p = pre(x, l, name);
		named(b, node(b, "Add", p, a, a2, NULL), name);
		relu_after(x, l, p, name);
		break;
	}
	case MODEL_CONCAT: {
		const char **ins = alloc(b, sizeof *ins * (size_t)l->nsrc);
		int any4 = 0;

		if (!ins)
			return;
		for (int k = 0; k < l->nsrc; k++)
			any4 |= src_of(x, l->src[k])->rank == 4;
		for (int k = 0; k < l->nsrc; k++) {
			val *v = src_of(x, l->src[k]);
			int ck = l->src[k] == MODEL_INPUT ? x->m->c : x->m->layer[l->src[k]].oc;

			ins[k] = any4 ? as4d(x, v, ck) : v->v;
		}
		o->rank = any4 ? 4 : 2;
		attr_i(b, node_n(b, "Concat", name, l->nsrc, ins), "axis", 1);
		break;
	}
	case MODEL_RELU:
		node(b, "Relu", name, s->v, NULL, NULL);
		break;
	case MODEL_CLIP:
		emit_clip(x, l, s, o);
		break;
	case MODEL_LEAKY:
		attr_f(b, node(b, "LeakyRelu", name, s->v, NULL, NULL), "alpha", l->a[0]);
		break;
	case MODEL_BN: {
		const model_param *sp = &x->m->param[l->wparam], *tp = &x->m->param[l->bparam];
		float *sc, *sh;

		p = pre(x, l, name);
		affine(b, s->v, p, name, name, c, &sc, &sh);
		if (!sc || !sh)
			return;
		memcpy(sc, x->m->params + sp->off, sizeof *sc * (size_t)c);
		memcpy(sh, x->m->params + tp->off, sizeof *sh * (size_t)c);
		relu_after(x, l, p, name);
		break;
	}
	case MODEL_LRN:
		o->rank = 4;
		n = node(b, "LRN", name, as4d(x, s, c), NULL, NULL);
		attr_i(b, n, "size", (int64_t)l->a[0]);
		attr_f(b, n, "alpha", l->a[1]);
		attr_f(b, n, "beta", l->a[2]);
		attr_f(b, n, "bias", l->a[3]);
		break;
	}
}

void onnx_export_norm(const float mean[3], const float std[3], float a[3], float b[3])
{
	for (int c = 0; c < 3; c++) {
		a[c] = std[c] == 1.0f ? 1.0f / 255.0f : 1.0f / (255.0f * std[c]);
		b[c] = -mean[c] / std[c];
	}
}

/* "images" [N, 3, H, W] -> "input": channels reversed for a BGR network (Split and
 * Concat: OpenCV 4.6 cannot Gather), then x = p * a + b per channel (onnx_export_norm).
 * The nodes are named ONNX_EXPORT_BGR... and ONNX_EXPORT_NORM: onnx_import drops them
 * again (it feeds its input pixels / 255 and applies the normalisation itself). */
static void emit_input(ctx *x)
{
	bld *b = x->b;
	const model *m = x->m;
	const char *px = "images";
	float *a, *sh;

	x->in.v = "input", x->in.rank = 4;
	if (m->bgr) {
		Onnx__NodeProto *n = named(b, node(b, "Split", "input/r", px, NULL, NULL), ONNX_EXPORT_BGR);
		char **outs = alloc(b, sizeof *outs * 3);

		if (!n || !outs)
			return;
		outs[0] = "input/r", outs[1] = "input/g", outs[2] = "input/b";
		n->output = outs, n->n_output = 3;
		attr_i(b, n, "axis", 1);
		attr_i(b, named(b, node(b, "Concat", "input/bgr", "input/b", "input/g", "input/r"),
				ONNX_EXPORT_BGR "/concat"), "axis", 1);
		px = "input/bgr";
	}
	affine(b, px, "input", "input", ONNX_EXPORT_NORM, 3, &a, &sh);
	if (a && sh)
		onnx_export_norm(m->mean, m->std, a, sh);
}

/* Layer names as value names; one that two layers share (an unnamed "pool"), or that is
 * the graph's input or output, gets ".I" (a '.' no spec name has). */
static int name_values(ctx *x)
{
	const model *m = x->m;

	for (int i = 0; i < m->nlayer; i++) {
		const char *nm = m->layer[i].name;
		int dup = !strcmp(nm, "images") || !strcmp(nm, "probabilities");

		for (int j = 0; j < m->nlayer && !dup; j++)
			dup = j != i && !strcmp(nm, m->layer[j].name);
		x->out[i].v = dup ? str(x->b, "%s.%d", nm, i) : nm;
		if (!x->out[i].v)
			return -1;
	}
	return 0;
}

static Onnx__ValueInfoProto *value_info(bld *b, const char *name, int ndim, const int64_t *dims)
{
	Onnx__ValueInfoProto *v = alloc(b, sizeof *v);
	Onnx__TypeProto *t = alloc(b, sizeof *t);
	Onnx__TypeProto__Tensor *tt = alloc(b, sizeof *tt);
	Onnx__TensorShapeProto *s = alloc(b, sizeof *s);
	Onnx__TensorShapeProto__Dimension **dv = alloc(b, sizeof *dv * (size_t)ndim);

	if (!v || !t || !tt || !s || !dv)
		return NULL;
	for (int k = 0; k < ndim; k++) {
		Onnx__TensorShapeProto__Dimension *d = alloc(b, sizeof *d);

		if (!d)
			return NULL;
		*d = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
		if (dims[k] < 0) {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			d->dim_param = "N";
		} else {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			d->dim_value = dims[k];
		}
		dv[k] = d;
	}
	*s = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
	s->dim = dv, s->n_dim = (size_t)ndim;
	*tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
	tt->has_elem_type = 1, tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tt->shape = s;
	*t = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
	t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	t->tensor_type = tt;
	*v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
	v->name = (char *)name;
	v->type = t;
	return v;
}

/* The class names as a JSON array of strings ("0".."K-1" without names). */
static const char *classes_json(bld *b, const tensor *classes, int K)
{
	struct buf j;
	size_t nb = classes ? (size_t)classes->ulen * 4 + 1 : 32;
	char *name = alloc(b, nb);
	const char *s;

	if (!name)
		return NULL;
	buf_init(&j);
	buf_addc(&j, '[');
	for (int i = 0; i < K; i++) {
		if (classes)
			tensor_get_string(classes, i, name, nb);
		else
			snprintf(name, nb, "%d", i);
		buf_adds(&j, i ? ",\"" : "\"");
		for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_printf(&j, "\\%c", *p);
			else if (*p < 0x20)
				buf_printf(&j, "\\u%04x", *p);
			else
				buf_addc(&j, *p);
		}
		buf_addc(&j, '"');
	}
	buf_addc(&j, ']');
	s = j.oom ? NULL : str(b, "%s", (const char *)j.data);
	buf_free(&j);
	return s;
}

static Onnx__StringStringEntryProto *entry(bld *b, const char *key, const char *value)
{
	Onnx__StringStringEntryProto *e = alloc(b, sizeof *e);

	if (!e || !value)
		return NULL;
	*e = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
	e->key = (char *)key, e->value = (char *)value;
	return e;
}

/* protobuf-c packs through this straight into the file: no copy of the whole message. */
typedef struct {
	ProtobufCBuffer base;
	FILE *fp;
	int bad;
} file_buffer;

static void file_append(ProtobufCBuffer *pb, size_t len, const uint8_t *data)
{
	file_buffer *f = (file_buffer *)pb;

	if (!f->bad && len && fwrite(data, 1, len, f->fp) != len)
		f->bad = 1;
}

static int write_model(const Onnx__ModelProto *mp, const char *path, char *err)
{
	size_t size = onnx__model_proto__get_packed_size(mp);
	file_buffer f = { { file_append }, NULL, 0 };
	outfile o;

	if (size > PB_MAX)
		return err_set(err, "%s: the ONNX model would be %zu bytes, over protobuf's 2 GiB limit",
			       path, size);
	if (outfile_open(&o, path, err))
		return -1;
	f.fp = o.fp;
	if (onnx__model_proto__pack_to_buffer(mp, &f.base) != size || f.bad) {
		err_sys(err, "%s: write error", path);
		outfile_abort(&o);
		return -1;
	}
	return outfile_commit(&o, err);
}

int onnx_export(const model *m, const tensor *classes, const char *path, char *err)
{
	bld b = { 0 };
	ctx x = { &b, m, NULL, { 0 } };
	Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
	Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
	Onnx__OperatorSetIdProto ops = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsp = &ops;
	Onnx__ValueInfoProto *gin, *gout;
	Onnx__StringStringEntryProto *meta[5];
	int64_t din[4] = { -1, 3, m->h, m->w }, dout[2] = { -1, m->classes };
	const model_layer *last = &m->layer[m->nlayer - 1];
	const char *logits;
	int rc = -1;

	if (!path)
		path = "-";
	if (m->classes < 1)
		return err_set(err, "%s: an ONNX export needs a classifier (a model with classes)", path);
	if (m->c != 3)
		return err_set(err, "%s: an ONNX export takes RGB images, not %d channels", path, m->c);
	if (classes && (classes->dtype != DT_U || classes->ndim != 1 || classes->shape[0] != m->classes))
		return err_set(err, "%s: the class names are not %d strings", path, m->classes);
	if (last->oh != 1 || last->ow != 1 || last->oc != m->classes)
		return err_set(err, "%s: the last layer is not the %d logits", path, m->classes);
	if (!(x.out = calloc((size_t)m->nlayer, sizeof *x.out))) {
		err_set(err, "%s: out of memory", path);
		goto out;
	}
	if (!name_values(&x)) {
		emit_input(&x);
		for (int i = 0; i < m->nlayer; i++)
			emit_layer(&x, i);
		logits = x.out[m->nlayer - 1].v;
		if (x.out[m->nlayer - 1].rank == 4) {
			const char *flat = str(&b, "%s/flat", logits);

			attr_i(&b, node(&b, "Flatten", flat, logits, NULL, NULL), "axis", 1);
			logits = flat;
		}
		attr_i(&b, node(&b, "Softmax", "probabilities", logits, NULL, NULL), "axis", 1);
	}
	gin = value_info(&b, "images", 4, din);
	gout = value_info(&b, "probabilities", 2, dout);
	meta[0] = entry(&b, "classes", classes_json(&b, classes, m->classes));
	meta[1] = entry(&b, "petcnn_spec", m->spec);
	meta[2] = entry(&b, "petcnn_mean", str(&b, "%.9g,%.9g,%.9g", m->mean[0], m->mean[1], m->mean[2]));
	meta[3] = entry(&b, "petcnn_std", str(&b, "%.9g,%.9g,%.9g", m->std[0], m->std[1], m->std[2]));
	meta[4] = entry(&b, "petcnn_bgr", m->bgr ? "1" : "0");
	if (b.oom) {
		err_set(err, "%s: out of memory", path);
		goto out;
	}
	g.name = "petcnn";
	g.node = b.node, g.n_node = b.nnode;
	g.initializer = b.init, g.n_initializer = b.ninit;
	g.input = &gin, g.n_input = 1;
	g.output = &gout, g.n_output = 1;
	ops.domain = "", ops.has_version = 1, ops.version = ONNX_EXPORT_OPSET;
	mp.has_ir_version = 1, mp.ir_version = ONNX_EXPORT_IR_VERSION;
	mp.opset_import = &opsp, mp.n_opset_import = 1;
	mp.producer_name = ONNX_EXPORT_PRODUCER;
	mp.producer_version = PETCNN_VERSION;
	mp.graph = &g;
	mp.metadata_props = meta, mp.n_metadata_props = 5;
	rc = write_model(&mp, path, err);
out:
	for (size_t i = 0; i < b.nmem; i++)
		free(b.mem[i]);
	free(b.mem);
	free(b.node);
	free(b.init);
	free(x.out);
	return rc;
}
