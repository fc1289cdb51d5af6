/* onnx_import: ONNX graphs into petcnn model specs and parameters. See onnx_import.h. */
#include "onnx/onnx_import.h"

#include "nn/model.h"
#include "onnx/onnx_export.h"
#include "util/buf.h"
#include "util/errmsg.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUPPORTED "Conv, BatchNormalization, Relu, Clip, LeakyRelu, LRN, MaxPool, AveragePool, " \
		  "GlobalAveragePool, Add, Concat, Flatten, Reshape, Gemm, MatMul, Dropout, "   \
		  "Identity, Constant, Softmax, Pad (before a Conv or pool), ReduceMean (over H, W), " \
		  "Sub (a min or max with a constant: x - Relu(x - c), x + Relu(c - x))"
#define MAX_IN 64          /* inputs of one concat */
#define MAX_SIDE (1 << 16) /* largest H, W or C we take from a graph */

enum { L_CONV, L_DENSE, L_MAXPOOL, L_AVGPOOL, L_GAP, L_ADD, L_CONCAT, L_RELU, L_CLIP, L_LEAKY,
       L_BN, L_LRN };
static const char *const kind_name[] = { "conv", "dense", "maxpool", "avgpool", "gap", "add",
					 "concat", "relu", "clip", "leaky", "bn", "lrn" };

struct layer {
	char name[32];
	int kind;
	char opt[160];        /* the token after the kind, without the activation */
	int relu;             /* conv, dense, add, bn: ReLU fused (1); conv: ReLU6 (2) */
	float lo, hi;         /* clip: its bounds; relu: 0 and FLT_MAX */
	int in[MAX_IN], nin;  /* layer indices, -1 the image */
	int h, w, c;          /* output shape, NHWC */
	tensor p0, p1;        /* conv/dense weights and biases; bn scale and shift */
};

/* What an ONNX value is to us: some layer's output (or the image), seen by ONNX as 4-D
 * NCHW or, after a Flatten, 2-D; the layer's output is NHWC h x w x c either way. */
struct val {
	int layer;            /* -1 the image, -2 not an activation (data, or not reached) */
	int excl;             /* the layer's output reaches only this value, read once */
	int rank;             /* 4 or 2 as ONNX sees it */
	int h, w, c;          /* the layer's output (before pad) */
	/* a spatial Pad of the layer's output not yet applied: the Conv or pool that reads it
	 * takes it into its own pads (torch writes AvgPool2d(padding, count_include_pad) and
	 * ZeroPad2d that way); PAD_NONE anywhere else */
	int padkind;          /* PAD_NONE, PAD_ZERO or PAD_NINF (-inf) */
	int pad[4];           /* top, left, bottom, right */
	int padnode;          /* the Pad node, for messages */
};

enum { PAD_NONE, PAD_ZERO, PAD_NINF };

struct ctx {
	const onnx_graph *g;
	struct val *v;        /* [nvalues] */
	struct layer *l;
	int nl;
	size_t lcap;
	char *err;
	int petcnn;           /* a petcnn export: its nodes are our layers as they were */
	char *minmax;         /* [nnodes]: a node that is the outer node of onnx_export's min
	                       * (MM_MIN) or max (MM_MAX) with a constant (clip_pattern) */
};

enum { MM_NONE, MM_MIN, MM_MAX };

static int nerr(struct ctx *x, int node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int nerr(struct ctx *x, int node, const char *fmt, ...)
{
	char msg[ERR_MAX], label[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return err_set(x->err, "%s: node %s: %s", x->g->file,
		       onnx_node_label(x->g, node, label, sizeof label), msg);
}

/* Node names made [A-Za-z0-9_]{1,31}, not "input", unique among the layers so far. */
static void layer_name(struct ctx *x, int node, struct layer *L)
{
	const onnx_node *n = &x->g->nodes[node];
	const char *src = n->name[0] ? n->name : n->nout && n->out[0] >= 0 ? x->g->values[n->out[0]].name : "";
	char clean[256], base[32];
	int k = 0;

	for (const char *p = src; *p && k < (int)sizeof clean - 1; p++) {
		char ch = isalnum((unsigned char)*p) ? *p : '_';
		if (ch == '_' && (k == 0 || clean[k - 1] == '_'))
			continue;  /* "/layer1/layer1.0/conv1/Conv" -> "layer1_layer1_0_conv1_Conv" */
		clean[k++] = ch;
	}
	while (k > 0 && clean[k - 1] == '_')
		k--;
	clean[k] = 0;
	/* too long: the end of a path names the layer best */
	src = k > 31 ? clean + k - 31 : clean;
	if (src > clean && src[-1] != '_' && strchr(src, '_') && strchr(src, '_')[1])
		src = strchr(src, '_');  /* whole words only */
	while (*src == '_')
		src++;
	snprintf(base, sizeof base, "%.31s", src);
	k = (int)strlen(base);
	if (!k || !strcmp(base, "input"))
		snprintf(base, sizeof base, "%s", kind_name[L->kind]);
	snprintf(L->name, sizeof L->name, "%s", base);
	for (int suffix = 2;; suffix++) {
		int taken = !strcmp(L->name, "input");
		for (int i = 0; !taken && i < x->nl; i++)
			taken = &x->l[i] != L && !strcmp(x->l[i].name, L->name);
		if (!taken)
			return;
		char tail[16];
		int tl = snprintf(tail, sizeof tail, "_%d", suffix);
		snprintf(L->name, sizeof L->name, "%.*s%s", 31 - tl, base, tail);
	}
}

/* A new layer for node, reading the given layers; its output becomes the node's output 0. */
static struct layer *add_layer(struct ctx *x, int node, int kind, const int *in, int nin,
			       int h, int w, int c, int rank)
{
	struct layer *L;
	int out = x->g->nodes[node].out[0];

	if (buf_grow_array(&x->l, &x->lcap, (size_t)x->nl + 1, sizeof *x->l)) {
		err_set(x->err, "%s: out of memory", x->g->file);
		return NULL;
	}
	L = &x->l[x->nl];
	memset(L, 0, sizeof *L);
	L->kind = kind;
	memcpy(L->in, in, (size_t)nin * sizeof *in);
	L->nin = nin;
	L->h = h, L->w = w, L->c = c;
	layer_name(x, node, L);
	x->nl++;
	x->v[out] = (struct val){ x->nl - 1, 1, rank, h, w, c, PAD_NONE, { 0 }, -1 };
	return L;
}

/* The output value reads as the input does (Dropout, Identity, a Relu fused, ...). */
static void alias(struct ctx *x, int node, int from)
{
	const onnx_value *fv = &x->g->values[from];
	int out = x->g->nodes[node].out[0];

	x->v[out] = x->v[from];
	x->v[out].excl = x->v[from].excl && fv->nuse == 1 && !fv->is_output;
}

static int act_in_pad(struct ctx *x, int node, int k, struct val *out);

/* Input k of node as an activation, not a pending Pad. */
static int act_in(struct ctx *x, int node, int k, struct val *out)
{
	char label[160];

	if (act_in_pad(x, node, k, out))
		return -1;
	if (out->padkind != PAD_NONE)
		return nerr(x, node, "its input comes from node %s, a Pad that only a Conv, MaxPool or "
			    "AveragePool can take into its own pads",
			    onnx_node_label(x->g, out->padnode, label, sizeof label));
	return 0;
}

/* Input k of node as an activation, maybe with a Pad pending (Conv and pools). */
static int act_in_pad(struct ctx *x, int node, int k, struct val *out)
{
	const onnx_node *n = &x->g->nodes[node];
	int v = k < n->nin ? n->in[k] : -1;

	if (v < 0)
		return nerr(x, node, "input %d is missing", k);
	if (x->v[v].layer == -2)
		return nerr(x, node, "input '%.64s' is constant data, not computed from the image",
			    x->g->values[v].name);
	*out = x->v[v];
	return 0;
}

/* Input k of node as float32 data (an initializer or Constant); NULL with err set. */
static const tensor *data_in(struct ctx *x, int node, int k, int optional)
{
	const onnx_node *n = &x->g->nodes[node];
	int v = k < n->nin ? n->in[k] : -1;

	if (v < 0) {
		if (!optional)
			nerr(x, node, "input %d is missing", k);
		return NULL;
	}
	if (!x->g->values[v].has_data) {
		nerr(x, node, "input '%.64s' must be an initializer or a Constant",
		     x->g->values[v].name);
		return NULL;
	}
	return &x->g->values[v].data;
}

static int fused_ok(struct ctx *x, int node, int k, int kinds_mask)
{
	int v = x->g->nodes[node].in[k];
	const struct val *s = &x->v[v];
	const onnx_value *gv = &x->g->values[v];

	return s->layer >= 0 && s->excl && gv->nuse == 1 && !gv->is_output &&
	       (kinds_mask >> x->l[s->layer].kind & 1) && !x->l[s->layer].relu;
}

/* Whether value v is a conv's output read by nuse node inputs alone (the pattern that
 * makes it ReLU6), the conv's ReLU fused already (need_relu) or either way. */
static int relu6_ok(struct ctx *x, int v, int nuse, int need_relu)
{
	const struct val *s = &x->v[v];
	const onnx_value *gv = &x->g->values[v];

	return s->layer >= 0 && s->excl && gv->nuse == nuse && !gv->is_output &&
	       x->l[s->layer].kind == L_CONV && (need_relu ? x->l[s->layer].relu == 1 : x->l[s->layer].relu != 2);
}

static int known_attrs(struct ctx *x, int node, const char *const *known)
{
	const char *a = onnx_attr_unknown(x->g, node, known);

	return a ? nerr(x, node, "attribute '%.64s' is not supported", a) : 0;
}

/* Kernel, strides and pads of a Conv or pool: [top, left, bottom, right] from pads or
 * auto_pad, output size with floor or ceil (a last window starting in the bottom/right
 * padding dropped, as PyTorch and geom_init_pads do). */
static int window(struct ctx *x, int node, const struct val *in, int kh, int kw, int *ceil,
		  int s[2], int pads[4], int *oh, int *ow)
{
	const int64_t *v;
	int n, in_hw[2] = { in->h + in->pad[0] + in->pad[2], in->w + in->pad[1] + in->pad[3] };
	int k[2] = { kh, kw }, o[2], ceil_mode = *ceil;
	char autopad[32];

	if (onnx_attr_ints(x->g, node, "strides", &v, &n, x->err))
		return -1;
	if (n && n != 2)
		return nerr(x, node, "%d strides: only 2-D windows are supported", n);
	for (int i = 0; i < 2; i++) {
		s[i] = n ? (int)(v[i] < 1 || v[i] > MAX_SIDE ? 0 : v[i]) : 1;
		if (!s[i])
			return nerr(x, node, "stride %lld is out of range", (long long)v[i]);
	}
	if (onnx_attr_ints(x->g, node, "dilations", &v, &n, x->err))
		return -1;
	for (int i = 0; i < n; i++)
		if (v[i] != 1)
			return nerr(x, node, "dilations other than 1 are not supported");
	if (onnx_attr_string(x->g, node, "auto_pad", "NOTSET", autopad, sizeof autopad, x->err))
		return -1;
	if (onnx_attr_ints(x->g, node, "pads", &v, &n, x->err))
		return -1;
	if (n && n != 4)
		return nerr(x, node, "%d pads: only 2-D windows are supported", n);
	if (!strcmp(autopad, "NOTSET")) {
		for (int i = 0; i < 4; i++) {
			if (n && (v[i] < 0 || v[i] > MAX_SIDE))
				return nerr(x, node, "pad %lld is out of range", (long long)v[i]);
			pads[i] = n ? (int)v[i] : 0;
		}
	} else if (!strcmp(autopad, "VALID")) {
		pads[0] = pads[1] = pads[2] = pads[3] = 0;
	} else if (!strcmp(autopad, "SAME_UPPER") || !strcmp(autopad, "SAME_LOWER")) {
		for (int i = 0; i < 2; i++) {
			int out = (in_hw[i] + s[i] - 1) / s[i];
			int total = (out - 1) * s[i] + k[i] - in_hw[i];
			if (total < 0)
				total = 0;
			/* the odd pixel goes after (UPPER) or before (LOWER) */
			pads[i] = autopad[5] == 'U' ? total / 2 : total - total / 2;
			pads[i + 2] = total - pads[i];
		}
		ceil_mode = 0;  /* SAME's size is ceil(in / s) whatever ceil_mode says */
	} else {
		return nerr(x, node, "auto_pad '%s' is not supported", autopad);
	}
	for (int i = 0; i < 2; i++) {
		int span = in_hw[i] + pads[i] + pads[i + 2] - k[i];
		if (span < 0)
			return nerr(x, node, "the %dx%d window does not fit the %dx%d input", kh, kw,
				    in_hw[0], in_hw[1]);
		o[i] = (ceil_mode ? (span + s[i] - 1) / s[i] : span / s[i]) + 1;
		if (ceil_mode && (o[i] - 1) * s[i] >= in_hw[i] + pads[i])
			o[i]--;
		/* a Pad's pixels are input to ONNX but padding to us, and ceil's rule (drop a
		 * window that starts in the padding) tells them apart: fine when ceil changes
		 * nothing */
		if (ceil_mode && in->padkind != PAD_NONE && o[i] != span / s[i] + 1)
			return nerr(x, node, "ceil_mode=1 after a Pad is not supported");
	}
	if (in->padkind != PAD_NONE) {
		ceil_mode = 0;
		for (int i = 0; i < 4; i++)
			pads[i] += in->pad[i];
	}
	*oh = o[0], *ow = o[1];
	*ceil = ceil_mode;
	return 0;
}

static void opt_window(char *opt, size_t size, int kh, int kw, const int s[2], int always_stride,
		       const int p[4])
{
	size_t len = strlen(opt);

	if (always_stride || s[0] != 1 || s[1] != 1) {
		if (s[0] == s[1])
			len += (size_t)snprintf(opt + len, size - len, ":s%d", s[0]);
		else
			len += (size_t)snprintf(opt + len, size - len, ":s%dx%d", s[0], s[1]);
	}
	if (!p[0] && !p[1] && !p[2] && !p[3])
		snprintf(opt + len, size - len, ":valid");
	else
		snprintf(opt + len, size - len, ":p%d,%d,%d,%d", p[0], p[1], p[2], p[3]);
	(void)kh, (void)kw;
}

static int op_conv(struct ctx *x, int node)
{
	static const char *const known[] = { "auto_pad", "dilations", "group", "kernel_shape",
					     "pads", "strides", NULL };
	const tensor *W, *B;
	struct val in;
	int64_t group;
	const int64_t *ks;
	int nks, s[2], p[4], oh, ow, O, cig, kh, kw, g;
	struct layer *L;

	if (known_attrs(x, node, known) || act_in_pad(x, node, 0, &in) || !(W = data_in(x, node, 1, 0)))
		return -1;
	if (in.padkind == PAD_NINF)
		return nerr(x, node, "its input is padded with -inf: a Conv pads with zeros");
	B = data_in(x, node, 2, 1);
	if (!B && x->g->nodes[node].nin > 2 && x->g->nodes[node].in[2] >= 0)
		return -1;
	if (in.rank != 4)
		return nerr(x, node, "the input is not 4-D NCHW");
	if (W->dtype != DT_F4 || W->ndim != 4)
		return nerr(x, node, "weights of %d dims: only 2-D convolutions (4-D float weights) are supported",
			    W->ndim);
	if (onnx_attr_int(x->g, node, "group", 1, &group, x->err) ||
	    onnx_attr_ints(x->g, node, "kernel_shape", &ks, &nks, x->err))
		return -1;
	O = (int)W->shape[0], cig = (int)W->shape[1], kh = (int)W->shape[2], kw = (int)W->shape[3];
	if (nks && (nks != 2 || ks[0] != kh || ks[1] != kw))
		return nerr(x, node, "kernel_shape does not match the weights");
	if (group < 1 || group > in.c || in.c % group || O % group || cig * group != in.c || !O ||
	    !kh || !kw)
		return nerr(x, node, "weights [%d, %d, %d, %d] with group %lld do not fit %d input channels",
			    O, cig, kh, kw, (long long)group, in.c);
	g = (int)group;
	if (B && (B->dtype != DT_F4 || tensor_numel(B) != O))
		return nerr(x, node, "the bias does not have %d float values", O);
	int no_ceil = 0;
	if (window(x, node, &in, kh, kw, &no_ceil, s, p, &oh, &ow))
		return -1;
	int inl = in.layer;
	if (!(L = add_layer(x, node, L_CONV, &inl, 1, oh, ow, O, 4)))
		return -1;
	snprintf(L->opt, sizeof L->opt, "conv:%dx%d:%d", kh, kw, O);
	opt_window(L->opt, sizeof L->opt, kh, kw, s, 0, p);
	if (g > 1)
		snprintf(L->opt + strlen(L->opt), sizeof L->opt - strlen(L->opt), ":g%d", g);
	{
		int64_t wsh[4] = { kh, kw, cig, O }, bsh[1] = { O };
		const float *src = W->data;
		float *dst;
		if (tensor_alloc(&L->p0, DT_F4, 4, wsh, 0, x->err) ||
		    tensor_alloc(&L->p1, DT_F4, 1, bsh, 0, x->err))
			return -1;
		dst = L->p0.data;
		/* OIHW -> HWIO */
		for (int o = 0; o < O; o++)
			for (int i = 0; i < cig; i++)
				for (int y = 0; y < kh; y++)
					for (int xx = 0; xx < kw; xx++)
						dst[(((size_t)y * kw + xx) * cig + i) * O + o] =
							src[(((size_t)o * cig + i) * kh + y) * kw + xx];
		if (B)
			memcpy(L->p1.data, B->data, (size_t)O * 4);
	}
	return 0;
}

static int op_bn(struct ctx *x, int node)
{
	static const char *const known[] = { "epsilon", "momentum", "spatial", "is_test",
					     "consumed_inputs", "training_mode", NULL };
	const onnx_node *n = &x->g->nodes[node];
	const tensor *t[4];
	struct val in;
	float eps;
	int64_t training;
	int C;
	double *scale, *shift;

	if (known_attrs(x, node, known) || act_in(x, node, 0, &in))
		return -1;
	for (int k = 0; k < 4; k++)
		if (!(t[k] = data_in(x, node, k + 1, 0)))
			return -1;
	if (onnx_attr_float(x->g, node, "epsilon", 1e-5f, &eps, x->err) ||
	    onnx_attr_int(x->g, node, "training_mode", 0, &training, x->err))
		return -1;
	for (int k = 1; k < n->nout; k++)
		if (n->out[k] >= 0)
			return nerr(x, node, "training-mode outputs (running mean and variance) are not supported");
	if (training)
		return nerr(x, node, "training_mode=1 is not supported (inference statistics only)");
	if (in.rank == 2 && in.h * in.w > 1)
		return nerr(x, node, "batch norm over a flattened image is not supported");
	C = in.c;
	for (int k = 0; k < 4; k++)
		if (t[k]->dtype != DT_F4 || tensor_numel(t[k]) != C)
			return nerr(x, node, "gamma, beta, mean and var must have %d float values each", C);
	scale = malloc(2 * (size_t)C * sizeof *scale);
	if (!scale)
		return err_set(x->err, "%s: out of memory", x->g->file);
	shift = scale + C;
	for (int c = 0; c < C; c++) {
		const float *gm = t[0]->data, *bt = t[1]->data, *mu = t[2]->data, *var = t[3]->data;
		double v = (double)var[c] + eps;
		if (!(v > 0)) {
			free(scale);
			return nerr(x, node, "variance + epsilon is not positive for channel %d", c);
		}
		scale[c] = gm[c] / sqrt(v);
		shift[c] = bt[c] - mu[c] * scale[c];
	}
	if (!x->petcnn && fused_ok(x, node, 0, 1 << L_CONV)) {
		/* folded: conv(x) * scale + shift, per output channel (the last axis of HWIO) */
		struct layer *L = &x->l[in.layer];
		float *w = L->p0.data, *b = L->p1.data;
		size_t nw = (size_t)tensor_numel(&L->p0);
		for (size_t i = 0; i < nw; i++)
			w[i] = (float)(w[i] * scale[i % (size_t)C]);
		for (int c = 0; c < C; c++)
			b[c] = (float)(b[c] * scale[c] + shift[c]);
		alias(x, node, n->in[0]);
		free(scale);
		return 0;
	}
	{
		int inl = in.layer;
		int64_t sh[1] = { C };
		struct layer *L = add_layer(x, node, L_BN, &inl, 1, in.h, in.w, in.c, in.rank);
		if (!L || tensor_alloc(&L->p0, DT_F4, 1, sh, 0, x->err) ||
		    tensor_alloc(&L->p1, DT_F4, 1, sh, 0, x->err)) {
			free(scale);
			return -1;
		}
		snprintf(L->opt, sizeof L->opt, "bn");
		for (int c = 0; c < C; c++)
			((float *)L->p0.data)[c] = (float)scale[c], ((float *)L->p1.data)[c] = (float)shift[c];
	}
	free(scale);
	return 0;
}

/* Relu, Clip, LeakyRelu: fused where they can be, else a layer of their own. */
static int op_act(struct ctx *x, int node, int kind)
{
	static const char *const known_relu[] = { "consumed_inputs", NULL },
				 *const known_clip[] = { "min", "max", "consumed_inputs", NULL },
				 *const known_leaky[] = { "alpha", "consumed_inputs", NULL };
	struct val in;
	struct layer *L;
	char opt[80];
	float clo = 0, chi = FLT_MAX;  /* the layer's bounds (a relu's: 0 and none) */

	if (known_attrs(x, node, kind == L_RELU ? known_relu : kind == L_CLIP ? known_clip : known_leaky) ||
	    act_in(x, node, 0, &in))
		return -1;
	if (kind == L_RELU) {
		const char *nm = x->g->nodes[node].name, *sl = strrchr(nm, '/');

		/* a petcnn export's fused ReLU is node NAME/relu, a relu layer is a node of its own */
		if ((!x->petcnn || (sl && !strcmp(sl, "/relu"))) &&
		    fused_ok(x, node, 0, 1 << L_CONV | 1 << L_DENSE | 1 << L_ADD | 1 << L_BN)) {
			x->l[in.layer].relu = 1;
			alias(x, node, x->g->nodes[node].in[0]);
			return 0;
		}
		snprintf(opt, sizeof opt, "relu");
	} else if (kind == L_CLIP) {
		float lo = -FLT_MAX, hi = FLT_MAX;
		if (x->g->opset < 11) {
			if (onnx_attr_float(x->g, node, "min", -FLT_MAX, &lo, x->err) ||
			    onnx_attr_float(x->g, node, "max", FLT_MAX, &hi, x->err))
				return -1;
		} else {
			for (int k = 1; k <= 2; k++) {
				const tensor *t = data_in(x, node, k, 1);
				const onnx_node *n = &x->g->nodes[node];
				if (!t && k < n->nin && n->in[k] >= 0)
					return -1;
				if (!t)
					continue;
				if (t->dtype != DT_F4 || tensor_numel(t) != 1)
					return nerr(x, node, "the %s is not one float", k == 1 ? "min" : "max");
				*(k == 1 ? &lo : &hi) = *(const float *)t->data;
			}
		}
		if (isnan(lo) || isnan(hi))
			return nerr(x, node, "a bound is NaN");
		lo = lo < -FLT_MAX ? -FLT_MAX : lo;
		hi = hi > FLT_MAX ? FLT_MAX : hi;
		/* MobileNetV2's Conv + Clip(0, 6), after a Relu fused or not */
		if (lo == 0 && hi == 6 && relu6_ok(x, x->g->nodes[node].in[0], 1, 0)) {
			x->l[in.layer].relu = 2;
			alias(x, node, x->g->nodes[node].in[0]);
			return 0;
		}
		snprintf(opt, sizeof opt, "clip:%.9g:%.9g", lo, hi);
		clo = lo, chi = hi;
	} else {
		float alpha;
		if (onnx_attr_float(x->g, node, "alpha", 0.01f, &alpha, x->err))
			return -1;
		snprintf(opt, sizeof opt, "leaky:%.9g", alpha);
	}
	int inl = in.layer;
	if (!(L = add_layer(x, node, kind, &inl, 1, in.h, in.w, in.c, in.rank)))
		return -1;
	snprintf(L->opt, sizeof L->opt, "%s", opt);
	L->lo = clo, L->hi = chi;
	return 0;
}

/* onnx_export's clip without Clip: min(t, c) = Sub(t, Relu(Sub(t, c))) and max(t, c) =
 * Add(t, Relu(Sub(c, t))) (Add's inputs either way round), c a float scalar constant, the
 * inner values read once: MM_MIN or MM_MAX at the outer node, with c, t's input index and
 * the inner Sub and Relu nodes; else MM_NONE. */
static int clip_pattern(const onnx_graph *g, int node, float *c, int *ti, int inner[2])
{
	const onnx_node *n = &g->nodes[node];
	int add = !strcmp(n->op, "Add");

	if ((!add && strcmp(n->op, "Sub")) || n->nin != 2 || n->in[0] < 0 || n->in[1] < 0)
		return MM_NONE;
	for (int k = add ? 0 : 1; k < 2; k++) {
		int t = n->in[!k], r = n->in[k], rp = g->values[r].producer, dp, d, cv;

		if (rp < 0 || strcmp(g->nodes[rp].op, "Relu") || g->nodes[rp].nin != 1 ||
		    g->values[r].nuse != 1 || g->values[r].is_output)
			continue;
		d = g->nodes[rp].in[0];
		if (d < 0 || (dp = g->values[d].producer) < 0 || strcmp(g->nodes[dp].op, "Sub") ||
		    g->nodes[dp].nin != 2 || g->values[d].nuse != 1 || g->values[d].is_output)
			continue;
		/* min: Sub(t, c); max: Sub(c, t) */
		if (g->nodes[dp].in[add ? 1 : 0] != t)
			continue;
		cv = g->nodes[dp].in[add ? 0 : 1];
		if (cv < 0 || !g->values[cv].has_data || g->values[cv].data.dtype != DT_F4 ||
		    tensor_numel(&g->values[cv].data) != 1 || isnan(*(const float *)g->values[cv].data.data))
			continue;
		*c = *(const float *)g->values[cv].data.data;
		*ti = !k;
		inner[0] = dp, inner[1] = rp;
		return add ? MM_MAX : MM_MIN;
	}
	return MM_NONE;
}

/* A min or max with a constant (clip_pattern): a clip layer, or taken into the layer it
 * reads when that layer's output is read by this pattern alone: a ReLU conv's min with 6
 * makes it ReLU6, a relu's or a lower-bounded clip's min gives it its upper bound. */
static int op_minmax(struct ctx *x, int node)
{
	const onnx_node *n = &x->g->nodes[node];
	float c;
	int ti, inner[2], kind = clip_pattern(x->g, node, &c, &ti, inner), out = n->out[0];
	struct val in;
	struct layer *L;

	if (act_in(x, node, ti, &in))
		return -1;
	int t = n->in[ti], only = in.layer >= 0 && in.excl && x->g->values[t].nuse == 2 &&
				  !x->g->values[t].is_output;
	int excl = only && x->g->values[out].nuse == 1 && !x->g->values[out].is_output;
	const char *nm = n->name, *sl = strrchr(nm, '/');

	L = only ? &x->l[in.layer] : NULL;
	/* a petcnn export's ReLU6 is node NAME/relu6; its clip layers stay clips */
	if (kind == MM_MIN && c == 6 && relu6_ok(x, t, 2, 1) &&
	    (!x->petcnn || (sl && !strcmp(sl, "/relu6")))) {
		x->l[in.layer].relu = 2;
		x->v[out] = x->v[t], x->v[out].excl = excl;
		return 0;
	}
	/* a petcnn export's clip layer gives its lower bound value NAME/floor, read by its
	 * upper bound's node NAME; a relu or clip layer before it stays a layer */
	const char *tn = x->g->values[t].name;
	size_t nl = strlen(nm);
	int floor = !strncmp(tn, nm, nl) && !strcmp(tn + nl, "/floor");

	if (kind == MM_MIN && L && (L->kind == L_RELU || L->kind == L_CLIP) && L->hi == FLT_MAX &&
	    L->lo <= c && (!x->petcnn || floor)) {
		L->kind = L_CLIP, L->hi = c;
		snprintf(L->opt, sizeof L->opt, "clip:%.9g:%.9g", L->lo, L->hi);
		layer_name(x, node, L);
		x->v[out] = x->v[t], x->v[out].excl = excl;
		return 0;
	}
	int inl = in.layer;
	if (!(L = add_layer(x, node, L_CLIP, &inl, 1, in.h, in.w, in.c, in.rank)))
		return -1;
	L->lo = kind == MM_MAX ? c : -FLT_MAX, L->hi = kind == MM_MIN ? c : FLT_MAX;
	snprintf(L->opt, sizeof L->opt, "clip:%.9g:%.9g", L->lo, L->hi);
	return 0;
}

static int op_pool(struct ctx *x, int node, int kind)
{
	static const char *const known[] = { "auto_pad", "ceil_mode", "count_include_pad", "dilations",
					     "kernel_shape", "pads", "storage_order", "strides", NULL };
	const onnx_node *n = &x->g->nodes[node];
	struct val in;
	const int64_t *ks;
	int64_t ceil_mode, incl, order;
	int nks, s[2], p[4], oh, ow, kh, kw;
	struct layer *L;

	if (known_attrs(x, node, known) || act_in_pad(x, node, 0, &in))
		return -1;
	if (n->nout > 1 && n->out[1] >= 0 && x->g->values[n->out[1]].nuse + x->g->values[n->out[1]].is_output)
		return nerr(x, node, "the Indices output is not supported");
	if (in.rank != 4)
		return nerr(x, node, "the input is not 4-D NCHW");
	if (onnx_attr_ints(x->g, node, "kernel_shape", &ks, &nks, x->err) ||
	    onnx_attr_int(x->g, node, "ceil_mode", 0, &ceil_mode, x->err) ||
	    onnx_attr_int(x->g, node, "count_include_pad", 0, &incl, x->err) ||
	    onnx_attr_int(x->g, node, "storage_order", 0, &order, x->err))
		return -1;
	if (nks != 2)
		return nerr(x, node, "a %d-D window: only 2-D pooling is supported", nks);
	if (ks[0] < 1 || ks[1] < 1 || ks[0] > MAX_SIDE || ks[1] > MAX_SIDE)
		return nerr(x, node, "kernel_shape is out of range");
	if (order)
		return nerr(x, node, "storage_order other than 0 is not supported");
	kh = (int)ks[0], kw = (int)ks[1];
	int ceil = ceil_mode != 0, own_pads = 0;
	if (in.padkind != PAD_NONE) {
		const int64_t *v;
		int nv;
		char ap[32];
		if (onnx_attr_ints(x->g, node, "pads", &v, &nv, x->err) ||
		    onnx_attr_string(x->g, node, "auto_pad", "NOTSET", ap, sizeof ap, x->err))
			return -1;
		for (int i = 0; i < nv; i++)
			own_pads |= v[i] != 0;
		own_pads |= strcmp(ap, "NOTSET") && strcmp(ap, "VALID");
		if (kind == L_AVGPOOL && in.padkind == PAD_NINF)
			return nerr(x, node, "its input is padded with -inf");
		/* the Pad's zeros count in every average: so must the pool's own pads */
		if (kind == L_AVGPOOL && own_pads && !incl)
			return nerr(x, node, "padding of its own without count_include_pad after a Pad is not supported");
		if (kind == L_AVGPOOL)
			incl = 1;
		/* zeros win a max only over negative values; a ReLU's output has none, and
		 * with pads smaller than the window every window holds an input pixel */
		if (kind == L_MAXPOOL && in.padkind == PAD_ZERO) {
			const struct layer *src = in.layer >= 0 ? &x->l[in.layer] : NULL;
			int nonneg = src && (src->relu || src->kind == L_RELU ||
					     (src->kind == L_CLIP && strtod(src->opt + 5, NULL) >= 0));
			if (!nonneg || in.pad[0] >= kh || in.pad[2] >= kh || in.pad[1] >= kw || in.pad[3] >= kw)
				return nerr(x, node, "zero padding of an input that may be negative (not a ReLU's "
					    "output) or wider than the window is not supported");
		}
	}
	if (window(x, node, &in, kh, kw, &ceil, s, p, &oh, &ow))
		return -1;
	int inl = in.layer;
	if (!(L = add_layer(x, node, kind, &inl, 1, oh, ow, in.c, 4)))
		return -1;
	snprintf(L->opt, sizeof L->opt, "%s:%dx%d", kind_name[kind], kh, kw);
	opt_window(L->opt, sizeof L->opt, kh, kw, s, 1, p);
	if (ceil)
		strcat(L->opt, ":ceil");
	if (kind == L_AVGPOOL && incl)
		strcat(L->opt, ":incl");
	return 0;
}

static int op_gap(struct ctx *x, int node)
{
	static const char *const none[] = { NULL };
	struct val in;
	struct layer *L;

	if (known_attrs(x, node, none) || act_in(x, node, 0, &in))
		return -1;
	if (in.rank != 4)
		return nerr(x, node, "the input is not 4-D NCHW");
	int inl = in.layer;
	if (!(L = add_layer(x, node, L_GAP, &inl, 1, 1, 1, in.c, 4)))
		return -1;
	snprintf(L->opt, sizeof L->opt, "gap");
	return 0;
}

/* ReduceMean over H and W (torch's x.mean([2, 3]), MNASNet's head): a global average
 * pool, 2-D without keepdims. */
static int op_reducemean(struct ctx *x, int node)
{
	static const char *const known[] = { "axes", "keepdims", "noop_with_empty_axes", NULL };
	const onnx_node *n = &x->g->nodes[node];
	const int64_t *axes;
	int64_t keep, hw[2] = { 0, 0 };
	int na;
	struct val in;
	struct layer *L;

	if (known_attrs(x, node, known) || act_in(x, node, 0, &in) ||
	    onnx_attr_int(x->g, node, "keepdims", 1, &keep, x->err) ||
	    onnx_attr_ints(x->g, node, "axes", &axes, &na, x->err))
		return -1;
	if (n->nin > 1 && n->in[1] >= 0) {
		/* opset 18: the axes are an input */
		const tensor *t = x->g->values[n->in[1]].has_data ? &x->g->values[n->in[1]].data : NULL;
		if (!t || t->dtype != DT_I8 || t->ndim > 1)
			return nerr(x, node, "the axes must be constant int64 values");
		axes = t->data, na = (int)tensor_numel(t);
	}
	if (in.rank != 4)
		return nerr(x, node, "the input is not 4-D NCHW");
	for (int i = 0; i < na; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + 4 : axes[i];
		if (a != 2 && a != 3)
			return nerr(x, node, "a mean over axis %lld: only over height and width (2, 3) is supported",
				    (long long)axes[i]);
		hw[a - 2] = 1;
	}
	if (!hw[0] || !hw[1])
		return nerr(x, node, "a mean over %s: only over both height and width is supported",
			    na ? "one spatial axis" : "every axis");
	int inl = in.layer;
	if (!(L = add_layer(x, node, L_GAP, &inl, 1, 1, 1, in.c, keep ? 4 : 2)))
		return -1;
	snprintf(L->opt, sizeof L->opt, "gap");
	return 0;
}

static int op_lrn(struct ctx *x, int node)
{
	static const char *const known[] = { "alpha", "beta", "bias", "size", NULL };
	struct val in;
	float alpha, beta, bias;
	int64_t size;
	struct layer *L;

	if (known_attrs(x, node, known) || act_in(x, node, 0, &in) ||
	    onnx_attr_float(x->g, node, "alpha", 1e-4f, &alpha, x->err) ||
	    onnx_attr_float(x->g, node, "beta", 0.75f, &beta, x->err) ||
	    onnx_attr_float(x->g, node, "bias", 1.0f, &bias, x->err) ||
	    onnx_attr_int(x->g, node, "size", 0, &size, x->err))
		return -1;
	if (in.rank != 4)
		return nerr(x, node, "the input is not 4-D NCHW");
	if (size < 1 || size > MAX_SIDE)
		return nerr(x, node, "size %lld is out of range", (long long)size);
	int inl = in.layer;
	if (!(L = add_layer(x, node, L_LRN, &inl, 1, in.h, in.w, in.c, 4)))
		return -1;
	snprintf(L->opt, sizeof L->opt, "lrn:%d:%.9g:%.9g:%.9g", (int)size, alpha, beta, bias);
	return 0;
}

/* A dense layer from a weight matrix given as [K, N] (trans 0) or [N, K] (trans 1), scaled
 * by alpha, bias beta * C (C NULL: zeros; one value or N). Its rows are permuted from ONNX's
 * flatten order (c, h, w) to ours (h, w, c) when the input is a flattened image. */
static int dense(struct ctx *x, int node, const struct val *in, const tensor *Bm, int trans,
		 float alpha, const tensor *C, float beta)
{
	int K, N, H = in->h, Wd = in->w, Ch = in->c;
	const float *src = Bm->data;
	struct layer *L;
	float *dst;

	if (in->rank != 2)
		return nerr(x, node, "the input is not 2-D (a Flatten or Reshape must come first)");
	if (Bm->dtype != DT_F4 || Bm->ndim != 2)
		return nerr(x, node, "the weights are not a 2-D float matrix");
	K = (int)Bm->shape[trans], N = (int)Bm->shape[!trans];
	if ((int64_t)K != (int64_t)H * Wd * Ch || N < 1)
		return nerr(x, node, "weights [%lld, %lld] do not fit %d inputs", (long long)Bm->shape[0],
			    (long long)Bm->shape[1], H * Wd * Ch);
	if (C && (C->dtype != DT_F4 || (tensor_numel(C) != N && tensor_numel(C) != 1)))
		return nerr(x, node, "the bias has neither 1 nor %d float values", N);
	int inl = in->layer;
	if (!(L = add_layer(x, node, L_DENSE, &inl, 1, 1, 1, N, 2)))
		return -1;
	snprintf(L->opt, sizeof L->opt, "dense:%d", N);
	{
		int64_t wsh[2] = { K, N }, bsh[1] = { N };
		if (tensor_alloc(&L->p0, DT_F4, 2, wsh, 0, x->err) ||
		    tensor_alloc(&L->p1, DT_F4, 1, bsh, 0, x->err))
			return -1;
	}
	dst = L->p0.data;
	for (int y = 0; y < H; y++)
		for (int xx = 0; xx < Wd; xx++)
			for (int c = 0; c < Ch; c++) {
				size_t ours = ((size_t)y * Wd + xx) * Ch + c,
				       theirs = ((size_t)c * H + y) * Wd + xx;
				for (int j = 0; j < N; j++)
					dst[ours * N + j] = alpha * (trans ? src[(size_t)j * K + theirs]
									   : src[theirs * N + j]);
			}
	if (C)
		for (int j = 0; j < N; j++)
			((float *)L->p1.data)[j] = beta * ((const float *)C->data)[tensor_numel(C) == 1 ? 0 : j];
	return 0;
}

static int op_gemm(struct ctx *x, int node)
{
	static const char *const known[] = { "alpha", "beta", "transA", "transB", "broadcast", NULL };
	struct val in;
	const tensor *Bm, *C;
	float alpha, beta;
	int64_t ta, tb;

	if (known_attrs(x, node, known) || act_in(x, node, 0, &in) || !(Bm = data_in(x, node, 1, 0)))
		return -1;
	C = data_in(x, node, 2, 1);
	if (!C && x->g->nodes[node].nin > 2 && x->g->nodes[node].in[2] >= 0)
		return -1;
	if (onnx_attr_float(x->g, node, "alpha", 1, &alpha, x->err) ||
	    onnx_attr_float(x->g, node, "beta", 1, &beta, x->err) ||
	    onnx_attr_int(x->g, node, "transA", 0, &ta, x->err) ||
	    onnx_attr_int(x->g, node, "transB", 0, &tb, x->err))
		return -1;
	if (ta)
		return nerr(x, node, "transA=1 is not supported (the batch is the first axis)");
	return dense(x, node, &in, Bm, tb != 0, alpha, C, beta);
}

static int op_matmul(struct ctx *x, int node)
{
	static const char *const none[] = { NULL };
	struct val in;
	const tensor *Bm;

	if (known_attrs(x, node, none) || act_in(x, node, 0, &in) || !(Bm = data_in(x, node, 1, 0)))
		return -1;
	return dense(x, node, &in, Bm, 0, 1, NULL, 0);
}

static int op_add(struct ctx *x, int node)
{
	static const char *const known[] = { "broadcast", "axis", "consumed_inputs", NULL };
	const onnx_node *n = &x->g->nodes[node];
	struct val a, b;
	struct layer *L;

	if (known_attrs(x, node, known))
		return -1;
	if (n->nin != 2 || n->in[0] < 0 || n->in[1] < 0)
		return nerr(x, node, "Add takes two inputs");
	for (int k = 0; k < 2; k++) {
		/* a constant added to a MatMul's (or Gemm's) output is its bias */
		const onnx_value *cv = &x->g->values[n->in[k]];
		if (!cv->has_data)
			continue;
		if (!fused_ok(x, node, !k, 1 << L_DENSE))
			return nerr(x, node, "adding a constant is supported only as the bias of a MatMul or Gemm");
		L = &x->l[x->v[n->in[!k]].layer];
		int N = L->c;
		int64_t cn = tensor_numel(&cv->data);
		if (cv->data.dtype != DT_F4 || (cn != N && cn != 1))
			return nerr(x, node, "the bias has neither 1 nor %d float values", N);
		for (int j = 0; j < N; j++)
			((float *)L->p1.data)[j] += ((const float *)cv->data.data)[cn == 1 ? 0 : j];
		alias(x, node, n->in[!k]);
		return 0;
	}
	if (act_in(x, node, 0, &a) || act_in(x, node, 1, &b))
		return -1;
	if (a.rank != b.rank || a.h != b.h || a.w != b.w || a.c != b.c)
		return nerr(x, node, "the inputs' shapes differ (%dx%dx%d and %dx%dx%d): broadcasting is not supported",
			    a.h, a.w, a.c, b.h, b.w, b.c);
	int in2[2] = { a.layer, b.layer };
	if (!(L = add_layer(x, node, L_ADD, in2, 2, a.h, a.w, a.c, a.rank)))
		return -1;
	snprintf(L->opt, sizeof L->opt, "add");
	return 0;
}

static int op_concat(struct ctx *x, int node)
{
	static const char *const known[] = { "axis", NULL };
	const onnx_node *n = &x->g->nodes[node];
	int64_t axis;
	int in[MAX_IN], c = 0;
	struct val v0, v;
	struct layer *L;

	if (known_attrs(x, node, known) || onnx_attr_int(x->g, node, "axis", 1, &axis, x->err))
		return -1;
	if (n->nin < 1 || n->nin > MAX_IN)
		return nerr(x, node, "%d inputs (1 to %d supported)", n->nin, MAX_IN);
	if (act_in(x, node, 0, &v0))
		return -1;
	if (axis < 0)
		axis += v0.rank;
	if (axis != 1)
		return nerr(x, node, "concat over axis %lld: our layout holds only channels (axis 1)",
			    (long long)axis);
	/* torch.cat([x]) (DenseNet's first layer of each block): x itself */
	if (n->nin == 1) {
		alias(x, node, n->in[0]);
		return 0;
	}
	for (int k = 0; k < n->nin; k++) {
		if (act_in(x, node, k, &v))
			return -1;
		if (v.rank != v0.rank || v.h != v0.h || v.w != v0.w || (v.rank == 2 && v.h * v.w > 1))
			return nerr(x, node, "the inputs' heights and widths differ");
		in[k] = v.layer;
		c += v.c;
	}
	if (!(L = add_layer(x, node, L_CONCAT, in, n->nin, v0.h, v0.w, c, v0.rank)))
		return -1;
	snprintf(L->opt, sizeof L->opt, "concat");
	return 0;
}

/* Flatten from axis 1, or Reshape to [N, -1]: nothing to compute in NHWC, the value just
 * becomes 2-D (and the dense after it permutes its rows). */
static int op_flatten(struct ctx *x, int node, int reshape)
{
	static const char *const known_f[] = { "axis", NULL }, *const known_r[] = { "allowzero", "shape", NULL };
	struct val in;
	int64_t axis;
	int out = x->g->nodes[node].out[0];

	if (known_attrs(x, node, reshape ? known_r : known_f) || act_in(x, node, 0, &in))
		return -1;
	if (!reshape) {
		if (onnx_attr_int(x->g, node, "axis", 1, &axis, x->err))
			return -1;
		if (axis != 1 && axis != 1 - in.rank)
			return nerr(x, node, "Flatten from axis %lld: only axis 1 (keep the batch) is supported",
				    (long long)axis);
	} else {
		const tensor *t;
		const int64_t *s;
		int64_t feat = (int64_t)in.h * in.w * in.c;
		if (x->g->opset < 5)
			return nerr(x, node, "Reshape with a shape attribute (opset < 5) is not supported");
		if (!(t = data_in(x, node, 1, 0)))
			return -1;
		s = t->data;
		if (t->dtype != DT_I8 || tensor_numel(t) != 2 || !((s[1] == -1 && s[0] != -1) || s[1] == feat))
			return nerr(x, node, "only a Reshape to [N, -1] (or [N, %lld]) is supported",
				    (long long)feat);
	}
	alias(x, node, x->g->nodes[node].in[0]);
	x->v[out].rank = 2;
	return 0;
}

static int op_dropout(struct ctx *x, int node)
{
	static const char *const known[] = { "ratio", "seed", "is_test", "consumed_inputs", NULL };
	const onnx_node *n = &x->g->nodes[node];
	struct val in;

	if (known_attrs(x, node, known) || act_in(x, node, 0, &in))
		return -1;
	if (n->nout > 1 && n->out[1] >= 0 && x->g->values[n->out[1]].nuse + x->g->values[n->out[1]].is_output)
		return nerr(x, node, "the mask output is not supported (training mode)");
	if (n->nin > 2 && n->in[2] >= 0) {
		const tensor *t = data_in(x, node, 2, 0);
		if (!t)
			return -1;
		if (tensor_numel(t) != 1 || tensor_elem_f4(t->data, t->dtype, 0) != 0)
			return nerr(x, node, "training_mode is not false: training-mode outputs are not supported");
	}
	alias(x, node, n->in[0]);
	return 0;
}

static int op_softmax(struct ctx *x, int node, int *softmax)
{
	static const char *const known[] = { "axis", NULL };
	const onnx_node *n = &x->g->nodes[node];
	const onnx_value *ov = &x->g->values[n->out[0]];
	struct val in;
	int64_t axis;

	if (known_attrs(x, node, known) || act_in(x, node, 0, &in) ||
	    onnx_attr_int(x->g, node, "axis", x->g->opset < 13 ? 1 : -1, &axis, x->err))
		return -1;
	if (!ov->is_output || ov->nuse)
		return nerr(x, node, "a Softmax is supported only as the graph's output");
	if (axis < 0)
		axis += in.rank;
	/* over the classes: the last axis of [N, K], or (before opset 13, which flattened from
	 * axis on) axis 1 of [N, K, 1, 1] */
	if (!(in.rank == 2 && axis == 1) &&
	    !(in.rank == 4 && axis == 1 && x->g->opset < 13 && in.h == 1 && in.w == 1))
		return nerr(x, node, "softmax over axis %lld of a %d-D input: our layout holds only a softmax over the classes",
			    (long long)axis, in.rank);
	alias(x, node, n->in[0]);
	*softmax = 1;
	return 0;
}

/* Pad (constant mode, of H and W only, with 0 or -inf): pending on its output value until
 * the Conv or pool that reads it takes it into its pads. */
static int op_pad(struct ctx *x, int node)
{
	static const char *const known[] = { "mode", "pads", "value", NULL };
	const onnx_node *n = &x->g->nodes[node];
	struct val in;
	char mode[32];
	int64_t pads[8];
	float value = 0;
	int np;

	if (known_attrs(x, node, known) || act_in(x, node, 0, &in) ||
	    onnx_attr_string(x->g, node, "mode", "constant", mode, sizeof mode, x->err))
		return -1;
	if (strcmp(mode, "constant"))
		return nerr(x, node, "mode '%.32s': only constant padding is supported", mode);
	if (in.rank != 4)
		return nerr(x, node, "the input is not 4-D NCHW");
	if (x->g->opset < 11) {
		const int64_t *v;
		if (onnx_attr_ints(x->g, node, "pads", &v, &np, x->err) ||
		    onnx_attr_float(x->g, node, "value", 0, &value, x->err))
			return -1;
		if (np != 8)
			return nerr(x, node, "%d pads for a 4-D input", np);
		memcpy(pads, v, sizeof pads);
	} else {
		const tensor *t = NULL, *cv;
		if (n->nin > 3 && n->in[3] >= 0)
			return nerr(x, node, "the axes input is not supported");
		if (n->nin > 1 && n->in[1] >= 0 && x->g->values[n->in[1]].has_data)
			t = &x->g->values[n->in[1]].data;
		if (!t || t->dtype != DT_I8 || tensor_numel(t) != 8)
			return nerr(x, node, "the pads must be 8 constant int64 values (pads computed in "
				    "the graph are not supported)");
		memcpy(pads, t->data, sizeof pads);
		if (n->nin > 2 && n->in[2] >= 0) {
			if (!(cv = data_in(x, node, 2, 0)))
				return -1;
			if (cv->dtype != DT_F4 || tensor_numel(cv) != 1)
				return nerr(x, node, "the constant_value is not one float");
			value = *(const float *)cv->data;
		}
	}
	/* ONNX order: begins of N, C, H, W then their ends */
	if (pads[0] || pads[1] || pads[4] || pads[5])
		return nerr(x, node, "padding of the batch or channel axis is not supported");
	for (int i = 0; i < 8; i++)
		if (pads[i] < 0 || pads[i] > MAX_SIDE)
			return nerr(x, node, "pad %lld: only 0 to %d is supported", (long long)pads[i], MAX_SIDE);
	if (value != 0 && !(isinf(value) && value < 0))
		return nerr(x, node, "pad value %g: only 0 or -inf is supported", value);
	alias(x, node, n->in[0]);
	{
		struct val *o = &x->v[n->out[0]];
		o->padkind = value == 0 ? PAD_ZERO : PAD_NINF;
		o->pad[0] = (int)pads[2], o->pad[1] = (int)pads[3];
		o->pad[2] = (int)pads[6], o->pad[3] = (int)pads[7];
		o->padnode = node;
	}
	return 0;
}

static int op_identity(struct ctx *x, int node)
{
	static const char *const none[] = { NULL };
	struct val in;

	if (known_attrs(x, node, none) || act_in(x, node, 0, &in))
		return -1;
	alias(x, node, x->g->nodes[node].in[0]);
	return 0;
}

static int translate_node(struct ctx *x, int node, int *softmax)
{
	const onnx_node *n = &x->g->nodes[node];
	const char *op = n->op;

	if (n->domain[0])
		return nerr(x, node, "domain '%.64s' is not supported (the default ai.onnx only; supported: %s)",
			    n->domain, SUPPORTED);
	if (n->nout < 1 || n->out[0] < 0)
		return nerr(x, node, "no output");
	for (int k = 1; k < n->nout; k++)
		if (n->out[k] >= 0 && strcmp(op, "Dropout") && strcmp(op, "MaxPool") &&
		    strcmp(op, "BatchNormalization"))
			return nerr(x, node, "%d outputs: one is supported", n->nout);
	if (x->minmax[node])
		return op_minmax(x, node);
	if (!strcmp(op, "Conv"))
		return op_conv(x, node);
	if (!strcmp(op, "BatchNormalization"))
		return op_bn(x, node);
	if (!strcmp(op, "Relu"))
		return op_act(x, node, L_RELU);
	if (!strcmp(op, "Clip"))
		return op_act(x, node, L_CLIP);
	if (!strcmp(op, "LeakyRelu"))
		return op_act(x, node, L_LEAKY);
	if (!strcmp(op, "MaxPool"))
		return op_pool(x, node, L_MAXPOOL);
	if (!strcmp(op, "AveragePool"))
		return op_pool(x, node, L_AVGPOOL);
	if (!strcmp(op, "GlobalAveragePool"))
		return op_gap(x, node);
	if (!strcmp(op, "ReduceMean"))
		return op_reducemean(x, node);
	if (!strcmp(op, "LRN"))
		return op_lrn(x, node);
	if (!strcmp(op, "Add"))
		return op_add(x, node);
	if (!strcmp(op, "Concat"))
		return op_concat(x, node);
	if (!strcmp(op, "Flatten"))
		return op_flatten(x, node, 0);
	if (!strcmp(op, "Reshape"))
		return op_flatten(x, node, 1);
	if (!strcmp(op, "Gemm"))
		return op_gemm(x, node);
	if (!strcmp(op, "MatMul"))
		return op_matmul(x, node);
	if (!strcmp(op, "Dropout"))
		return op_dropout(x, node);
	if (!strcmp(op, "Identity"))
		return op_identity(x, node);
	if (!strcmp(op, "Softmax"))
		return op_softmax(x, node, softmax);
	if (!strcmp(op, "Pad"))
		return op_pad(x, node);
	return nerr(x, node, "op %.64s is not supported (supported: %s)", op, SUPPORTED);
}

/* The image input: one graph input, float32 [N, C, H, W]; or [N, F], features for a
 * dense-only network (the ONNX backend tests of Gemm), a 1x1xF image to us. */
static int image_input(struct ctx *x, const onnx_import_opts *opts, int *h, int *w, int *c)
{
	const onnx_graph *g = x->g;
	const onnx_value *v;
	int64_t d[3] = { 1, 1, 1 };
	int rank;

	if (g->ninputs != 1)
		return err_set(x->err, "%s: %d graph inputs to feed: one image input is supported",
			       g->file, g->ninputs);
	v = &g->values[g->inputs[0]];
	rank = v->ndim;
	if (v->elem_type != ONNX_FLOAT)
		return err_set(x->err, "%s: input '%.64s' is %s, not FLOAT", g->file, v->name,
			       onnx_dtype_name(v->elem_type));
	if (rank != 4 && rank != 2)
		return err_set(x->err, "%s: input '%.64s' is neither 4-D [N, C, H, W] nor 2-D [N, F] (%d dims)",
			       g->file, v->name, rank);
	d[0] = v->dims[1];
	if (rank == 4) {
		d[1] = v->dims[2], d[2] = v->dims[3];
		if (d[1] < 0 && opts && opts->h > 0)
			d[1] = opts->h;
		if (d[2] < 0 && opts && opts->w > 0)
			d[2] = opts->w;
	}
	for (int i = 0; i < 3; i++)
		if (d[i] < 1 || d[i] > MAX_SIDE)
			return err_set(x->err, "%s: input '%.64s': %s %lld is %s (1 to %d supported)",
				       g->file, v->name, i == 0 ? "channels" : i == 1 ? "height" : "width",
				       (long long)d[i], d[i] < 0 ? "dynamic and no default was given" : "out of range",
				       MAX_SIDE);
	if (d[0] * d[1] * d[2] > INT32_MAX / 4)
		return err_set(x->err, "%s: input '%.64s' is too large", g->file, v->name);
	*c = (int)d[0], *h = (int)d[1], *w = (int)d[2];
	x->v[g->inputs[0]] = (struct val){ -1, 1, rank, *h, *w, *c, PAD_NONE, { 0 }, -1 };
	return 0;
}

/* Node index of the node called name with op op, or -1. */
static int node_named(const onnx_graph *g, const char *name, const char *op)
{
	for (int i = 0; i < g->nnodes; i++)
		if (!strcmp(g->nodes[i].name, name) && !strcmp(g->nodes[i].op, op))
			return i;
	return -1;
}

/* Value v is read by exactly one node input and is no graph output. */
static int used_once(const onnx_graph *g, int v)
{
	return v >= 0 && g->values[v].nuse == 1 && !g->values[v].is_output;
}

static int attr_is(struct ctx *x, int node, const char *name, int64_t want)
{
	int64_t v;
	char e[ERR_MAX];

	return onnx_attr_has(x->g, node, name) && !onnx_attr_int(x->g, node, name, 0, &v, e) &&
	       v == want;
}

/* "a,b,c" into v[3] (strtof: a float printed with %.9g comes back with its bits). */
static int parse3(const char *s, float v[3])
{
	for (int c = 0; s && c < 3; c++) {
		char *end;

		v[c] = strtof(s, &end);
		if (end == s || !isfinite(v[c]) || *end != (c < 2 ? ',' : '\0'))
			return -1;
		s = end + 1;
	}
	return s ? 0 : -1;
}

/* A petcnn export's input normalisation (onnx_export): the graph input read by the
 * Split and Concat of ONNX_EXPORT_BGR (a BGR network) and then by ONNX_EXPORT_NORM's
 * BatchNormalization, x = p * a + b on pixels 0..255, which nothing else reads. Those
 * nodes are dropped (skip[]), their output made the image, and m gets the normalisation
 * back: from the metadata petcnn_mean, petcnn_std, petcnn_bgr when they give these a and
 * b to the bit, else worked out from a and b. Any other graph is left as it is: its
 * input is pixels / 255 like any other file's. */
static void petcnn_input(struct ctx *x, onnx_model *m, char *skip)
{
	const onnx_graph *g = x->g;
	int img = g->inputs[0], bn, split = -1, cat = -1;
	const onnx_node *n;
	const tensor *t[4];
	float eps, a[3], b[3], mean[3], sd[3], ea[3], eb[3];
	char e[ERR_MAX];
	const char *bgr_meta;
	int bgr;

	if (strcmp(onnx_graph_producer(g), ONNX_EXPORT_PRODUCER) || x->v[img].c != 3 ||
	    x->v[img].rank != 4 || (bn = node_named(g, ONNX_EXPORT_NORM, "BatchNormalization")) < 0)
		return;
	n = &g->nodes[bn];
	if (n->nin != 5 || n->nout != 1 || n->in[0] < 0 || !used_once(g, n->in[0]) ||
	    onnx_attr_float(g, bn, "epsilon", 1e-5f, &eps, e) || eps != 0)
		return;
	if (n->in[0] != img) {
		/* BGR: images -> Split (r, g, b) -> Concat (b, g, r) -> the normalisation */
		const onnx_node *c, *sp;

		cat = g->values[n->in[0]].producer;
		if (cat < 0 || strcmp(g->nodes[cat].name, ONNX_EXPORT_BGR "/concat") ||
		    strcmp(g->nodes[cat].op, "Concat") || !attr_is(x, cat, "axis", 1))
			return;
		c = &g->nodes[cat];
		split = c->nin == 3 && c->in[0] >= 0 ? g->values[c->in[0]].producer : -1;
		if (split < 0 || strcmp(g->nodes[split].name, ONNX_EXPORT_BGR) ||
		    strcmp(g->nodes[split].op, "Split") || !attr_is(x, split, "axis", 1))
			return;
		sp = &g->nodes[split];
		if (sp->nin != 1 || sp->in[0] != img || sp->nout != 3)
			return;
		for (int k = 0; k < 3; k++)
			if (c->in[k] != sp->out[2 - k] || !used_once(g, c->in[k]))
				return;
	}
	if (!used_once(g, img))
		return;
	for (int k = 0; k < 4; k++) {
		int v = n->in[k + 1];

		if (v < 0 || !g->values[v].has_data)
			return;
		t[k] = &g->values[v].data;
		if (t[k]->dtype != DT_F4 || tensor_numel(t[k]) != 3)
			return;
	}
	for (int c = 0; c < 3; c++) {
		const float *f[4] = { t[0]->data, t[1]->data, t[2]->data, t[3]->data };

		if (f[2][c] != 0 || f[3][c] != 1 || !(f[0][c] > 0) || !isfinite(f[0][c]) ||
		    !isfinite(f[1][c]))
			return;
		a[c] = f[0][c], b[c] = f[1][c];
	}
	bgr = split >= 0;
	bgr_meta = onnx_graph_meta(g, "petcnn_bgr");
	if (!parse3(onnx_graph_meta(g, "petcnn_mean"), mean) &&
	    !parse3(onnx_graph_meta(g, "petcnn_std"), sd) && sd[0] > 0 && sd[1] > 0 && sd[2] > 0 &&
	    bgr_meta && !strcmp(bgr_meta, bgr ? "1" : "0")) {
		onnx_export_norm(mean, sd, ea, eb);
		if (memcmp(ea, a, sizeof a) || memcmp(eb, b, sizeof b))
			bgr_meta = NULL;
	} else {
		bgr_meta = NULL;
	}
	if (!bgr_meta)
		for (int c = 0; c < 3; c++) {
			/* a = 1 / (255 std), b = -mean / std */
			double s = 1.0 / (255.0 * a[c]);

			sd[c] = (float)s, mean[c] = (float)(-b[c] * s);
			if (!(sd[c] > 0) || !isfinite(sd[c]))
				return;
		}
	skip[bn] = 1;
	if (bgr)
		skip[split] = skip[cat] = 1;
	x->v[n->out[0]] = x->v[img];
	m->has_norm = 1, m->bgr = bgr;
	memcpy(m->mean, mean, sizeof mean);
	memcpy(m->std, sd, sizeof sd);
}

/* Appends code point cp to o as UTF-8 (a lone surrogate or one out of range: U+FFFD). */
static void add_utf8(struct buf *o, uint32_t cp)
{
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		buf_addc(o, (int)cp);
	} else if (cp < 0x800) {
		buf_addc(o, (int)(0xc0 | cp >> 6));
		buf_addc(o, (int)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_addc(o, (int)(0xe0 | cp >> 12));
		buf_addc(o, (int)(0x80 | (cp >> 6 & 0x3f)));
		buf_addc(o, (int)(0x80 | (cp & 0x3f)));
	} else {
		buf_addc(o, (int)(0xf0 | cp >> 18));
		buf_addc(o, (int)(0x80 | (cp >> 12 & 0x3f)));
		buf_addc(o, (int)(0x80 | (cp >> 6 & 0x3f)));
		buf_addc(o, (int)(0x80 | (cp & 0x3f)));
	}
}

static int hex4(const char *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)p[i], d = isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;

		if (d < 0)
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

/* The JSON array of strings s (onnx_export's "classes") into o, each string followed by
 * a NUL; their count in *n. -1 if s is anything else or a name is empty or holds a NUL. */
static int json_strings(const char *s, struct buf *o, int *n)
{
	const char *p = s;

	*n = 0;
	while (isspace((unsigned char)*p))
		p++;
	if (*p++ != '[')
		return -1;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == ']')
		return -1;
	for (;;) {
		size_t start = o->len;

		while (isspace((unsigned char)*p))
			p++;
		if (*p++ != '"')
			return -1;
		while (*p != '"') {
			uint32_t cp, lo;

			if (!*p || (unsigned char)*p < 0x20)
				return -1;
			if (*p != '\\') {
				buf_addc(o, *p++);
				continue;
			}
			p++;
			switch (*p++) {
			case '"': buf_addc(o, '"'); break;
			case '\\': buf_addc(o, '\\'); break;
			case '/': buf_addc(o, '/'); break;
			case 'b': buf_addc(o, '\b'); break;
			case 'f': buf_addc(o, '\f'); break;
			case 'n': buf_addc(o, '\n'); break;
			case 'r': buf_addc(o, '\r'); break;
			case 't': buf_addc(o, '\t'); break;
			case 'u':
				if (hex4(p, &cp) || !cp)
					return -1;
				p += 4;
				if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u' &&
				    !hex4(p + 2, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
				add_utf8(o, cp);
				break;
			default:
				return -1;
			}
		}
		p++;
		if (o->len == start)
			return -1;
		buf_addc(o, '\0');
		++*n;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == ']')
			break;
		if (*p++ != ',')
			return -1;
	}
	p++;
	while (isspace((unsigned char)*p))
		p++;
	return *p ? -1 : 0;
}

/* The class names of metadata "classes" (what onnx_export writes) into m->class_names
 * when they are a JSON array of exactly m->classes non-empty strings; anything else is
 * no names (a file from elsewhere may use the key otherwise). */
static int class_names(const onnx_graph *g, onnx_model *m, char *err)
{
	const char *json = onnx_graph_meta(g, "classes");
	struct buf o;
	const char **names = NULL;
	int n, rc = 0;

	if (!json || m->classes < 1)
		return 0;
	buf_init(&o);
	if (!json_strings(json, &o, &n) && n == m->classes && !o.oom) {
		const char *p = (const char *)o.data;

		if (!(names = malloc((size_t)n * sizeof *names))) {
			buf_free(&o);
			return err_set(err, "%s: out of memory", g->file);
		}
		for (int i = 0; i < n; i++, p += strlen(p) + 1)
			names[i] = p;
		rc = tensor_from_strings(&m->class_names, names, n, err);
		free(names);
	} else if (o.oom) {
		rc = err_set(err, "%s: out of memory", g->file);
	}
	buf_free(&o);
	return rc;
}

/* The pad after the input that windows reach (what onnx_export writes): more than that
 * is never read, so two geometries differing only there are the same. */
static int reach(int pad, int in, int k, int s, int out, int before)
{
	int r = (out - 1) * s + k - in - before;

	return pad < r ? pad : r < 0 ? 0 : r;
}

/* Whether two geometries compute alike. Only an average pool counting pads (incl) tells
 * the bottom and right pads from a ceil-mode window hanging past them (which it does not
 * count); to a conv (zeros) or any other pool (positions skipped) they are the same, so
 * a ceil max-pool's exported pads read back as the spec's :valid:ceil. */
static int same_geom(const geom *a, const geom *b, int incl)
{
	return a->h == b->h && a->w == b->w && a->c == b->c && a->kh == b->kh && a->kw == b->kw &&
	       a->sh == b->sh && a->sw == b->sw && a->oh == b->oh && a->ow == b->ow &&
	       a->pt == b->pt && a->pl == b->pl && a->oc == b->oc &&
	       (!incl || (reach(a->pb, a->h, a->kh, a->sh, a->oh, a->pt) == reach(b->pb, b->h, b->kh, b->sh, b->oh, b->pt) &&
			  reach(a->pr, a->w, a->kw, a->sw, a->ow, a->pl) == reach(b->pr, b->w, b->kw, b->sw, b->ow, b->pl))) &&
	       (a->groups > 1 ? a->groups : 1) == (b->groups > 1 ? b->groups : 1);
}

/* Layer i of b, read through its drop layers (identities at inference). */
static int through_drops(const model *b, int i)
{
	while (i >= 0 && b->layer[i].kind == MODEL_DROP)
		i = b->layer[i].src[0];
	return i;
}

/* Whether model a (the translation) is model b (the exporter's spec) but for b's drop
 * layers: the same layers in order, names, kinds, options, geometry, sources, and the
 * same parameters by name and shape. */
static int same_network(const model *a, const model *b)
{
	int *map = calloc((size_t)b->nlayer + 1, sizeof *map), j = 0, ok = 1;

	if (!map)
		return 0;
	for (int i = 0; i < b->nlayer && ok; i++) {
		const model_layer *lb = &b->layer[i], *la = &a->layer[j];

		map[i] = -2;
		if (lb->kind == MODEL_DROP)
			continue;
		/* a layer without parameters may be unnamed in the spec ("relu"), and the export
		 * then made its name unique ("relu.3", imported as relu_3) */
		ok = j < a->nlayer && la->kind == lb->kind &&
		     (lb->wparam < 0 || !strcmp(la->name, lb->name)) &&
		     la->relu == lb->relu && la->incl == lb->incl && la->nsrc == lb->nsrc &&
		     !memcmp(la->a, lb->a, sizeof la->a) && la->oh == lb->oh && la->ow == lb->ow &&
		     la->oc == lb->oc && la->nin == lb->nin && la->nout == lb->nout &&
		     same_geom(&la->g, &lb->g, la->incl);
		for (int k = 0; ok && k < lb->nsrc; k++) {
			int s = through_drops(b, lb->src[k]);

			ok = la->src[k] == (s < 0 ? MODEL_INPUT : map[s]);
		}
		map[i] = j++;
	}
	free(map);
	ok = ok && j == a->nlayer && a->nparam == b->nparam;
	for (int i = 0; ok && i < a->nparam; i++) {
		const model_param *pa = &a->param[i], *pb = &b->param[i];

		ok = !strcmp(pa->name, pb->name) && pa->ndim == pb->ndim &&
		     !memcmp(pa->shape, pb->shape, sizeof pa->shape);
	}
	return ok;
}

/* A petcnn export's own spec (metadata petcnn_spec) in place of the translation when
 * the two build the same network but for dropout, which the export leaves out: the
 * checkpoint then comes back with its spec, dropout included. Else (an edited graph, a
 * spec that does not parse) the translation stays. */
static int petcnn_spec(const onnx_graph *g, onnx_model *m, char *err)
{
	const char *spec = onnx_graph_meta(g, "petcnn_spec");
	model_size sz = { .h = m->h, .w = m->w, .c = m->c, .classes = m->classes, .max_batch = 1 };
	model a, b;
	char e[ERR_MAX], *copy;
	int same;

	if (!spec || !m->classes || strcmp(onnx_graph_producer(g), ONNX_EXPORT_PRODUCER) ||
	    !strcmp(spec, m->spec))
		return 0;
	if (model_init(&a, m->spec, sz, e))
		return 0;
	if (model_init(&b, spec, sz, e)) {
		model_free(&a);
		return 0;
	}
	same = same_network(&a, &b);
	model_free(&a);
	model_free(&b);
	if (!same)
		return 0;
	if (!(copy = strdup(spec)))
		return err_set(err, "%s: out of memory", g->file);
	free(m->spec);
	m->spec = copy;
	return 0;
}

/* The spec's text and the parameter names (B_I counting as the header says). */
static int emit(struct ctx *x, onnx_model *m)
{
	struct buf b;
	int block = 1, inblock = 0, last_param = -1;
	char name[80];

	buf_init(&b);
	for (int i = 0; i < x->nl; i++) {
		struct layer *L = &x->l[i];
		int prev = i - 1, chained = L->nin == 1 && L->in[0] == prev;
		if (i)
			buf_addc(&b, ' ');
		buf_printf(&b, "%s=%s", L->name, L->opt);
		if (L->kind == L_CONV || L->kind == L_DENSE)
			buf_adds(&b, L->relu == 2 ? ":relu6" : L->relu ? ":relu" : ":linear");
		else if (L->relu)
			buf_adds(&b, ":relu");
		if (!chained)
			for (int k = 0; k < L->nin; k++)
				buf_printf(&b, "%c%s", k ? ',' : '@', L->in[k] < 0 ? "input" : x->l[L->in[k]].name);
		if (L->kind == L_MAXPOOL || L->kind == L_AVGPOOL) {
			if (inblock)
				block++, inblock = 0;
			continue;
		}
		/* model.c's rule: a dense right after convolutions (no pool between) closes
		 * their block */
		if (L->kind == L_DENSE && last_param == L_CONV && inblock)
			block++, inblock = 0;
		if (L->kind == L_CONV || L->kind == L_DENSE) {
			last_param = L->kind;
			inblock++;
			snprintf(name, sizeof name, "%s/weights%d_%d", L->name, block, inblock);
			if (npz_add_move(&m->params, name, &L->p0, x->err))
				goto fail;
			snprintf(name, sizeof name, "%s/biases%d_%d", L->name, block, inblock);
			if (npz_add_move(&m->params, name, &L->p1, x->err))
				goto fail;
		} else if (L->kind == L_BN) {
			snprintf(name, sizeof name, "%s/scale", L->name);
			if (npz_add_move(&m->params, name, &L->p0, x->err))
				goto fail;
			snprintf(name, sizeof name, "%s/shift", L->name);
			if (npz_add_move(&m->params, name, &L->p1, x->err))
				goto fail;
		}
	}
	if (b.oom) {
		err_set(x->err, "%s: out of memory", x->g->file);
		goto fail;
	}
	m->spec = buf_take(&b, NULL);
	return 0;
fail:
	buf_free(&b);
	return -1;
}

int onnx_import_graph(onnx_model *m, const onnx_graph *g, const onnx_import_opts *opts, char *err)
{
	struct ctx x = { .g = g, .err = err };
	char *live = NULL, *skip = NULL;
	int rc = -1, out;

	memset(m, 0, sizeof *m);
	npz_init(&m->params);
	if (g->noutputs != 1) {
		err_set(err, "%s: %d graph outputs: one is supported", g->file, g->noutputs);
		goto out;
	}
	x.v = calloc((size_t)g->nvalues + 1, sizeof *x.v);
	live = calloc((size_t)g->nnodes + 1, 1);
	skip = calloc((size_t)g->nnodes + 1, 1);
	x.minmax = calloc((size_t)g->nnodes + 1, 1);
	if (!x.v || !live || !skip || !x.minmax) {
		err_set(err, "%s: out of memory", g->file);
		goto out;
	}
	for (int i = 0; i < g->nvalues; i++)
		x.v[i].layer = -2;
	if (image_input(&x, opts, &m->h, &m->w, &m->c))
		goto out;
	x.petcnn = !strcmp(onnx_graph_producer(g), ONNX_EXPORT_PRODUCER);
	petcnn_input(&x, m, skip);
	/* onnx_export's clips: the outer node reads as one, its inner nodes are skipped */
	for (int i = 0; i < g->nnodes; i++) {
		int ti, inner[2];
		float c;

		if (!skip[i] && (x.minmax[i] = (char)clip_pattern(g, i, &c, &ti, inner)))
			skip[inner[0]] = skip[inner[1]] = 1;
	}
	/* only what the output depends on is translated: walk back from it */
	out = g->outputs[0];
	if (g->values[out].producer >= 0)
		live[g->values[out].producer] = 1;
	for (int i = g->nnodes - 1; i >= 0; i--)
		if (live[i])
			for (int k = 0; k < g->nodes[i].nin; k++) {
				int v = g->nodes[i].in[k];
				if (v >= 0 && g->values[v].producer >= 0)
					live[g->values[v].producer] = 1;
			}
	for (int i = 0; i < g->nnodes; i++)
		if (live[i] && !skip[i] && translate_node(&x, i, &m->softmax))
			goto out;
	/* a graph that computes nothing of its own (an Identity, a Flatten, a Softmax of the
	 * input) still needs a layer to give its output: a clip with no bounds passes
	 * every finite value through */
	if (x.v[out].layer == -1 && x.nl == 0 && x.v[out].padkind == PAD_NONE &&
	    g->values[out].producer >= 0) {
		struct val in = x.v[out];
		int inl = -1;
		struct layer *L = add_layer(&x, g->values[out].producer, L_CLIP, &inl, 1, in.h, in.w,
					    in.c, in.rank);
		if (!L)
			goto out;
		snprintf(L->opt, sizeof L->opt, "clip:%.9g:%.9g", -FLT_MAX, FLT_MAX);
		L->lo = -FLT_MAX, L->hi = FLT_MAX;
	}
	if (x.v[out].layer < 0 || x.v[out].layer != x.nl - 1 || x.v[out].padkind != PAD_NONE) {
		err_set(err, "%s: the output '%.64s' is not computed from the image", g->file,
			g->values[out].name);
		goto out;
	}
	m->out_h = x.v[out].h, m->out_w = x.v[out].w, m->out_c = x.v[out].c;
	m->classes = m->out_h == 1 && m->out_w == 1 ? m->out_c : 0;
	if (emit(&x, m) || petcnn_spec(g, m, err) || class_names(g, m, err))
		goto out;
	rc = 0;
out:
	for (int i = 0; i < x.nl; i++)
		tensor_free(&x.l[i].p0), tensor_free(&x.l[i].p1);
	free(x.l);
	free(x.v);
	free(live);
	free(skip);
	free(x.minmax);
	if (rc)
		onnx_model_free(m);
	return rc;
}

int onnx_import(onnx_model *m, const char *path, const onnx_import_opts *opts, char *err)
{
	onnx_graph g;
	int rc;

	memset(m, 0, sizeof *m);
	npz_init(&m->params);
	if (onnx_graph_read(&g, path, err))
		return -1;
	rc = onnx_import_graph(m, &g, opts, err);
	onnx_graph_free(&g);
	return rc;
}

void onnx_model_free(onnx_model *m)
{
	free(m->spec);
	npz_free(&m->params);
	tensor_free(&m->class_names);
	memset(m, 0, sizeof *m);
	npz_init(&m->params);
}
