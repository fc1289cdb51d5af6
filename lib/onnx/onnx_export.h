/* onnx_export: a model's inference graph as an ONNX file (opset 13) that other runtimes
 * (python3-onnx, OpenCV's dnn) load, so a network trained here can be used elsewhere.
 *
 * The graph: input "images" float32 [N, 3, H, W], RGB pixels 0..255 (N symbolic); inside,
 * the model's input normalisation (Split and Concat for a BGR network, then x = p / (255
 * std) - mean / std per channel as a BatchNormalization of mean 0, variance 1, epsilon 0),
 * one node or a few per layer in NCHW, dropout left out, and Softmax; output
 * "probabilities" float32 [N, K].
 * conv: Conv (weights turned from our HWIO to ONNX's OIHW) then Relu; maxpool, avgpool:
 * MaxPool, AveragePool with the pads the geometry uses; gap: GlobalAveragePool; dense:
 * Flatten then Gemm, its weight rows permuted from our NHWC (h, w, c) order to the NCHW
 * (c, h, w) order Flatten gives; add: Add; concat: Concat on axis 1; relu, clip, leaky:
 * Relu, Relu with Add and Sub (OpenCV 4.6 runs no opset-13 Clip), LeakyRelu; bn: BatchNormalization as above; lrn: LRN. Value names are the
 * layers' names (".I" appended to one that is not unique), initialisers the parameters'.
 * metadata_props: "classes" (a JSON array of the class names, or of "0".."K-1" without
 * them) and "petcnn_spec" (the model spec). The file is one protobuf message, so it must
 * stay under protobuf's 2 GiB. */
#ifndef PETCNN_ONNX_EXPORT_H
#define PETCNN_ONNX_EXPORT_H

#include "array/tensor.h"
#include "nn/model.h"

#define ONNX_EXPORT_OPSET 13
#define ONNX_EXPORT_IR_VERSION 7   /* the IR of opset 13 (onnx 1.8) */

/* Writes m's inference graph with its current parameters to path atomically (outfile;
 * "-": stdout). classes: [K] DT_U class names, or NULL. m must have classes (K > 0) and
 * 3 input channels. */
int onnx_export(const model *m, const tensor *classes, const char *path, char *err);

#endif
