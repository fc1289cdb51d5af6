/* tfev_model: the graph of any model spec (lib/nn/model.h) for TensorBoard's graph view, with
 * the checkpoint's scopes and variable names. Apart from tfev_write.c so that only programs that
 * describe a model link the model code. See tfev_model.h. */
#include "tb/tfev_model.h"

#include "util/errmsg.h"
#include "nn/model.h"
#include "nn/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_LEN (2 * MODEL_NAME_MAX + 32)

typedef struct {
	char name[NAME_LEN], op[48], in[TFEV_MAX_INPUTS][NAME_LEN];
	int ndim;
	int64_t shape[4];
} node_buf;

typedef struct {
	node_buf *b;
	size_t n, cap;
} nodes;

/* Appends a node; in0/in1 may be NULL. Shape: ndim sizes, -1 for the batch. */
static node_buf *add(nodes *ns, const char *scope, const char *leaf, const char *op,
		     const char *in0, const char *in1, int ndim, int64_t d0, int64_t d1,
		     int64_t d2, int64_t d3)
{
	node_buf *b;

	if (ns->n == ns->cap)
		return NULL;
	b = &ns->b[ns->n++];
	memset(b, 0, sizeof *b);
	snprintf(b->name, sizeof b->name, "%s/%s", scope, leaf);
	snprintf(b->op, sizeof b->op, "%s", op);
	if (in0)
		snprintf(b->in[0], sizeof b->in[0], "%s", in0);
	if (in1)
		snprintf(b->in[1], sizeof b->in[1], "%s", in1);
	b->ndim = ndim;
	b->shape[0] = d0;
	b->shape[1] = d1;
	b->shape[2] = d2;
	b->shape[3] = d3;
	return b;
}

/* A layer's scope: its name, made unique (unnamed pools share the name "pool"); a drop
 * layer lives in the scope of the layer it drops from, as pool1/dropout does. */
static void scope_of(const model *m, int i, char *out, size_t n)
{
	const model_layer *l = &m->layer[i];
	int dup = 0;

	if (l->kind == MODEL_DROP && l->src[0] != MODEL_INPUT) {
		scope_of(m, l->src[0], out, n);
		return;
	}
	for (int j = 0; j < i; j++)
		dup += m->layer[j].kind != MODEL_DROP && !strcmp(m->layer[j].name, l->name);
	if (dup)
		snprintf(out, n, "%s_%d", l->name, dup + 1);
	else
		snprintf(out, n, "%s", l->name);
}

/* The graph node of one layer kind without variables: its op and leaf name. */
static const char *plain_op(enum model_kind k)
{
	switch (k) {
	case MODEL_POOL: return "MaxPool";
	case MODEL_AVGPOOL: return "AvgPool";
	case MODEL_GAP: return "Mean";
	case MODEL_ADD: return "AddV2";
	case MODEL_CONCAT: return "ConcatV2";
	case MODEL_RELU: return "Relu";
	case MODEL_CLIP: return "ClipByValue";
	case MODEL_LEAKY: return "LeakyRelu";
	case MODEL_LRN: return "LRN";
	default: return "Identity";
	}
}

int tfev_model_graph(tfev_writer *w, const model *m, char *err)
{
	nodes ns = { 0 };
	tfev_node *out;
	char prev[NAME_LEN] = "input/images", scope[NAME_LEN], (*outname)[NAME_LEN];
	char *spatial;
	int rc;
	node_buf *b = NULL;

	/* a concat of n inputs is a chain of n / 3 nodes */
	ns.cap = (size_t)m->nlayer * 7 + 16;
	for (int i = 0; i < m->nlayer; i++)
		ns.cap += (size_t)m->layer[i].nsrc / 3;
	ns.b = calloc(ns.cap, sizeof *ns.b);
	out = calloc(ns.cap, sizeof *out);
	outname = calloc((size_t)m->nlayer, sizeof *outname);
	spatial = calloc((size_t)m->nlayer, 1);
	if (!ns.b || !out || !outname || !spatial) {
		free(ns.b);
		free(out);
		free(outname);
		free(spatial);
		return err_set(err, "%s: out of memory building the graph", tfev_path(w));
	}
	add(&ns, "input", "images", "Placeholder", NULL, NULL, 4, -1, m->h, m->w, m->c);
	add(&ns, "input", "labels", "Placeholder", NULL, NULL, 1, -1, 0, 0, 0);
	add(&ns, "input", "keep_conv", "Placeholder", NULL, NULL, 0, 0, 0, 0, 0);
	add(&ns, "input", "keep_fc", "Placeholder", NULL, NULL, 0, 0, 0, 0, 0);
	for (int i = 0; i < m->nlayer; i++) {
		const model_layer *l = &m->layer[i];
		int last = i == m->nlayer - 1, s0 = l->src[0];

		snprintf(prev, sizeof prev, "%s", s0 == MODEL_INPUT ? "input/images" : outname[s0]);
		spatial[i] = s0 == MODEL_INPUT || spatial[s0];
		scope_of(m, i, scope, sizeof scope);
		b = NULL;
		switch (l->kind) {
		case MODEL_CONV:
		case MODEL_BN: {
			const model_param *wp = &m->param[l->wparam], *bp = &m->param[l->bparam];
			char conv[NAME_LEN], bias[NAME_LEN];
			int conv_ = l->kind == MODEL_CONV;

			add(&ns, scope, strchr(wp->name, '/') + 1, "VariableV2", NULL, NULL, wp->ndim,
			    wp->shape[0], wp->shape[1], wp->shape[2], wp->shape[3]);
			add(&ns, scope, strchr(bp->name, '/') + 1, "VariableV2", NULL, NULL, 1,
			    bp->shape[0], 0, 0, 0);
			b = add(&ns, scope, conv_ ? (l->g.groups > 1 ? "GroupedConv2D" : "Conv2D") : "Mul",
				conv_ ? "Conv2D" : "Mul", prev, wp->name, 4, -1, l->oh, l->ow, l->oc);
			snprintf(conv, sizeof conv, "%s", b ? b->name : "");
			b = add(&ns, scope, conv_ ? "BiasAdd" : "Add", conv_ ? "BiasAdd" : "AddV2", conv, bp->name, 4,
				-1, l->oh, l->ow, l->oc);
			if (l->relu) {
				/* TensorFlow's own op for min(max(x, 0), 6) */
				const char *op = l->relu == VEC_RELU6 ? "Relu6" : "Relu";

				snprintf(bias, sizeof bias, "%s", b ? b->name : "");
				b = add(&ns, scope, op, op, bias, NULL, 4, -1, l->oh, l->ow, l->oc);
			}
			break;
		}
		case MODEL_DROP:
			b = add(&ns, scope, "dropout", "Dropout", prev,
				l->fc ? "input/keep_fc" : "input/keep_conv",
				spatial[i] ? 4 : 2, -1, spatial[i] ? l->oh : l->oc, l->ow, l->oc);
			break;
		case MODEL_DENSE: {
			const model_param *wp = &m->param[l->wparam], *bp = &m->param[l->bparam];
			char x[NAME_LEN], mm[NAME_LEN];

			if (spatial[i]) {
				b = add(&ns, scope, "Reshape", "Reshape", prev, NULL, 2, -1, l->nin, 0, 0);
				snprintf(prev, sizeof prev, "%s", b ? b->name : "");
			}
			spatial[i] = 0;
			snprintf(x, sizeof x, "%s", prev);
			add(&ns, scope, strchr(wp->name, '/') + 1, "VariableV2", NULL, NULL, 2,
			    wp->shape[0], wp->shape[1], 0, 0);
			add(&ns, scope, strchr(bp->name, '/') + 1, "VariableV2", NULL, NULL, 1,
			    bp->shape[0], 0, 0, 0);
			b = add(&ns, scope, "MatMul", "MatMul", x, wp->name, 2, -1, l->nout, 0, 0);
			snprintf(mm, sizeof mm, "%s", b ? b->name : "");
			b = add(&ns, scope, last ? "logits" : "BiasAdd", "BiasAdd", mm, bp->name, 2, -1,
				l->nout, 0, 0);
			if (l->relu) {
				snprintf(x, sizeof x, "%s", b ? b->name : "");
				b = add(&ns, scope, "Relu", "Relu", x, NULL, 2, -1, l->nout, 0, 0);
			}
			break;
		}
		default: {
			const char *op = plain_op(l->kind);
			char leaf[NAME_LEN];

			b = add(&ns, scope, op, op, prev, NULL, 4, -1, l->oh, l->ow, l->oc);
			/* the other inputs, three more per node of a chain */
			for (int k = 1, part = 1; b && k < l->nsrc; k++) {
				int slot = (k - 1) % 3 + 1;

				if (slot == 1 && k > 1) {
					snprintf(leaf, sizeof leaf, "%s_%d", op, ++part);
					snprintf(prev, sizeof prev, "%s", b->name);
					if (!(b = add(&ns, scope, leaf, op, prev, NULL, 4, -1, l->oh, l->ow, l->oc)))
						break;
				}
				snprintf(b->in[slot], sizeof b->in[slot], "%s",
					 l->src[k] == MODEL_INPUT ? "input/images" : outname[l->src[k]]);
			}
			if (b && l->relu && l->kind != MODEL_RELU && l->kind != MODEL_POOL) {
				snprintf(leaf, sizeof leaf, "%s", b->name);
				b = add(&ns, scope, "Relu", "Relu", leaf, NULL, 4, -1, l->oh, l->ow, l->oc);
			}
			break;
		}
		}
		snprintf(outname[i], sizeof outname[i], "%s", b ? b->name : prev);
		snprintf(prev, sizeof prev, "%s", outname[i]);
	}
	/* prev is the logits: the softmax, the loss and the accuracy hang off them. */
	char logits[NAME_LEN], probs[NAME_LEN];
	snprintf(logits, sizeof logits, "%s", prev);
	scope_of(m, m->nlayer - 1, scope, sizeof scope);
	b = add(&ns, scope, "Softmax", "Softmax", logits, NULL, 2, -1, m->classes, 0, 0);
	snprintf(probs, sizeof probs, "%s", b ? b->name : "");
	add(&ns, "loss", "SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits",
	    logits, "input/labels", 1, -1, 0, 0, 0);
	add(&ns, "loss", "Mean", "Mean", "loss/SoftmaxCrossEntropyWithLogits", NULL, 0, 0, 0, 0, 0);
	add(&ns, "accuracy", "ArgMax", "ArgMax", probs, NULL, 1, -1, 0, 0, 0);
	add(&ns, "accuracy", "Equal", "Equal", "accuracy/ArgMax", "input/labels", 1, -1, 0, 0, 0);
	add(&ns, "accuracy", "Mean", "Mean", "accuracy/Equal", NULL, 0, 0, 0, 0, 0);
	add(&ns, "train", "Adam", "ApplyAdam", "loss/Mean", NULL, -1, 0, 0, 0, 0);

	for (size_t i = 0; i < ns.n; i++) {
		out[i].name = ns.b[i].name;
		out[i].op = ns.b[i].op;
		for (int k = 0; k < TFEV_MAX_INPUTS; k++)
			out[i].input[k] = ns.b[i].in[k][0] ? ns.b[i].in[k] : NULL;
		out[i].ndim = ns.b[i].ndim;
		memcpy(out[i].shape, ns.b[i].shape, sizeof ns.b[i].shape);
	}
	rc = tfev_graph(w, out, ns.n, err);
	free(ns.b);
	free(out);
	free(outname);
	free(spatial);
	return rc;
}
