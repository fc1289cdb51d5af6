/* onnx_import: an ONNX image network (onnx_graph) translated into a petcnn model spec and its
 * parameters in our layouts, ready for the checkpoint writer or the model builder.
 *
 * The graph must have one fed input, float32 [N, C, H, W] (NCHW; we run NHWC), and one
 * output. Supported ops (default domain) and what they become:
 *   Conv                      conv (weights OIHW -> HWIO [kh, kw, cin/g, cout], missing
 *                             bias -> zeros, pads/auto_pad -> explicit :pT,L,B,R, group)
 *   BatchNormalization        folded into the Conv before it when nothing else reads that
 *                             conv's output, else bn (scale = gamma/sqrt(var+eps),
 *                             shift = beta - mean*scale); inference mode only
 *   Relu                      :relu on the conv/dense/add/bn before it when it is that
 *                             layer's only reader, else a relu layer; convs and denses
 *                             without a fused Relu are written :linear
 *   Clip, LeakyRelu, LRN      clip:LO:HI (attributes before opset 11, constant inputs
 *                             from 11), leaky:ALPHA, lrn:SIZE:ALPHA:BETA:BIAS
 *   MaxPool, AveragePool      maxpool/avgpool with explicit strides and pads, :ceil,
 *                             :incl (count_include_pad); dilations and storage_order
 *                             other than 1 and 0 refused
 *   GlobalAveragePool         gap
 *   ReduceMean over H and W   gap (2-D without keepdims)
 *   Add, Concat (axis 1)      add, concat (same-shape / same H and W inputs)
 *   Flatten (axis 1), Reshape to [N, -1]   nothing (our dense flattens NHWC itself); the
 *                             dense after it has its weight rows permuted from NCHW
 *                             flatten order (c, h, w) to ours (h, w, c)
 *   Gemm, MatMul [+ Add]      dense (weights [in, out] = alpha * B or B^T, bias beta * C)
 *   Dropout, Identity         nothing (inference; a fine-tuner adds its own dropout)
 *   Constant                  data (folded by onnx_graph)
 *   Softmax                   at the output only: dropped, our output is the logits and
 *                             the softmax is ours (softmax = 1 says it was there)
 *   Pad (constant, H and W)   taken into the pads of the Conv or pool reading it (torch
 *                             writes AvgPool2d(padding) with count_include_pad so): zeros
 *                             before a Conv, an AveragePool (then :incl; its own pads must
 *                             count too) or a MaxPool of a ReLU's output (zeros never win
 *                             there); -inf before a MaxPool; pads given as data; not with a
 *                             ceil_mode that changes the output size
 * A graph of none of the layer-making ops (only Identity, Flatten or a Softmax) gets one
 * pass-through layer, clip:-FLT_MAX:FLT_MAX, to give its output.
 * Anything else is an error naming the node, its op and this list. Layer names come from
 * node names (else their first output) made [A-Za-z0-9_]{1,31} and unique. Parameters are
 * named as the spec's grammar says: conv and dense LAYER/weightsB_I and LAYER/biasesB_I
 * (B counts blocks, closed by a maxpool/avgpool after a parametrised layer and by the
 * first dense after convolutions; I counts parametrised layers in a block), bn
 * LAYER/scale and LAYER/shift.
 *
 * A petcnn export (onnx_export: producer "petcnn") comes back as it was: its leading
 * normalisation nodes are taken out and given as has_norm, mean, std, bgr (other files'
 * input is pixels / 255), its layer names are ours (its nodes are named so), its spec is
 * its metadata's "petcnn_spec" when that builds the same network as the translation but
 * for dropout (which the export leaves out), and the class names of metadata "classes"
 * (from any producer, when they are K strings) land in class_names. */
#ifndef PETCNN_ONNX_IMPORT_H
#define PETCNN_ONNX_IMPORT_H

#include "array/npz.h"
#include "onnx/onnx_graph.h"

typedef struct {
	char *spec;      /* the model spec, tokens separated by single spaces (malloc'ed) */
	int h, w, c;     /* input image size the spec was built for (NHWC) */
	int classes;     /* K, the size of a 1x1xK or [N, K] output; 0 for any other output */
	int out_h, out_w, out_c; /* the output's shape (NHWC; a [N, K] output is 1x1xK) */
	int softmax;     /* the graph ended in a Softmax we dropped */
	npz params;      /* parameters by name, float32, our layouts */
	/* A petcnn export's input normalisation, taken out of the graph (see above) */
	int has_norm;    /* mean, std, bgr hold it; 0: the input is pixels / 255 */
	float mean[3], std[3];
	int bgr;
	tensor class_names; /* [classes] DT_U from metadata "classes"; data NULL without */
} onnx_model;

/* Input height and width taken when the graph's are dynamic (0: refuse dynamic ones). */
typedef struct {
	int h, w;
} onnx_import_opts;

/* Reads path and translates it. 0, or -1 with "path: node 'x' (Op): ..." in err and m
 * empty (onnx_model_free is safe either way). opts may be NULL (no defaults). */
int onnx_import(onnx_model *m, const char *path, const onnx_import_opts *opts, char *err);
/* The same from a graph already read (the backend tests bind extra inputs first). */
int onnx_import_graph(onnx_model *m, const onnx_graph *g, const onnx_import_opts *opts,
		      char *err);
void onnx_model_free(onnx_model *m);

#endif
