/* tfev_model: TensorBoard's graph of any model spec (lib/nn/model.h), with the checkpoint's
 * scopes and variable names, for cnn-train and `tfevents-write` (graph MODEL.npz). */
#ifndef PETCNN_TFEV_MODEL_H
#define PETCNN_TFEV_MODEL_H

#include "nn/model.h"
#include "tb/tfev_write.h"

/* Writes m's graph: input placeholders, per layer its variables and ops (conv: Conv2D,
 * BiasAdd, Relu; pool: MaxPool; dropout in the scope before it; dense: Reshape when the
 * input is spatial, MatMul, BiasAdd or logits, Relu), then Softmax, loss, accuracy and
 * the Adam step. For MODEL_DEFAULT_SPEC it equals the graph tests/unit/test_tfev.c writes
 * out by hand, node by node. */
int tfev_model_graph(tfev_writer *w, const model *m, char *err);

#endif
