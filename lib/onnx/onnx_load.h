/* onnx_load: an ONNX file as a ready petcnn model (onnx_import's spec built by model_init,
 * its parameters copied in by name), and the one loader tools call for -m (.npz or .onnx).
 *
 * ONNX files from elsewhere carry no input normalisation and no class names: the caller
 * gives them (cnn-convert's --mean/--std/--bgr/--classes), else the default /255 and
 * "class0"... A petcnn export (onnx_export) carries both, and they are taken from it
 * unless the caller gives its own: such a file comes back as the checkpoint it was. */
#ifndef PETCNN_ONNX_LOAD_H
#define PETCNN_ONNX_LOAD_H

#include "array/tensor.h"
#include "nn/ckpt.h"
#include "nn/finetune.h"
#include "nn/model.h"
#include "onnx/onnx_import.h"

typedef struct {
	int h, w;              /* input size for dynamic graph dims (0: the graph's own) */
	int has_norm;          /* mean, std, bgr given: they replace a petcnn export's own */
	float mean[3], std[3]; /* the input normalisation, in the network's channel order */
	int bgr;               /* ... which is B, G, R */
	const char *classes;   /* class names: a file with one per line, or a comma list;
	                        * NULL: a petcnn export's own, else class0..classK-1 */
} onnx_load_opts;

/* The defaults: graph's size, mean 0, std 1, RGB, class0... */
void onnx_load_opts_default(onnx_load_opts *o);

/* Builds *m (model_init with max_batch, train) from an imported model and copies its
 * parameters in by name: every model parameter must be there with its shape, and nothing
 * else may be. om->classes 0 (an output that is not 1x1xK) gives an inference-only model. */
int onnx_model_build(model *m, const onnx_model *om, int max_batch, int train, char *err);

/* K class names into t ([K] strings) from spec (see onnx_load_opts.classes); a count other
 * than K is an error naming both counts. what labels messages (e.g. "--classes"). */
int onnx_class_names(tensor *t, const char *spec, int k, const char *what, char *err);

/* Reads path (ONNX), imports, builds and sets the normalisation: *m and *classes (caller
 * frees both) or -1 with "path: ..." in err and nothing to free. opts may be NULL. When
 * the input must be h x w (opts->h, ->w non-zero) a graph of a fixed other size is refused.
 * classes NULL: any graph (any output shape, any input channels), built inference-only
 * with the default normalisation (a petcnn export's own), for a look at its layers
 * (cnn-apply --layer). */
int onnx_load_model(const char *path, const onnx_load_opts *opts, model *m, int max_batch,
		    int train, tensor *classes, char *err);

/* Whether path is an ONNX file rather than a checkpoint: by its extension (.onnx / .npz),
 * else by its first bytes (a zip, so an .npz, starts with "PK"). "-" is a checkpoint. */
int model_path_is_onnx(const char *path);

/* ckpt_load_sized for a checkpoint, onnx_load_model (default options but h, w) for an ONNX
 * file (st then says CKPT_NONE). h, w 0: any size. */
int model_load_any(const char *path, int h, int w, model *m, int max_batch, int train,
		   tensor *classes, ckpt_state *st, char *err);

/* cnn-train --init-from's reader of ONNX files (finetune_reader): the spec, class count
 * and parameters under our names, and the normalisation of a petcnn export (other files
 * have none: give the model's with cnn-convert). Open height and width are read at 224. */
int onnx_finetune_read(const char *path, finetune_src *src, char *err);

#endif
