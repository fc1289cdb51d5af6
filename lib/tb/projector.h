/* projector: TensorBoard's Embedding Projector files for one vector per image (cnn-eval
 * --projector), so `tensorboard --logdir DIR` shows the images as points.
 *
 * Format (TensorBoard's projector plugin, projector_config.proto):
 *   DIR/tensors.tsv    one row per point: its D values, tab-separated ("%.9g": the float32
 *                      exactly), written as the points come, never all held
 *   DIR/metadata.tsv   "true\tpredicted\tcorrect", then one row per point: class names
 *                      and yes/no ("-" for an unlabelled image); tabs and newlines in a
 *                      name become spaces
 *   DIR/sprite.png     RGB thumbnails in a side x side grid, side = ceil(sqrt(N)), point i
 *                      at column i % side, row i / side, black where no point is; each
 *                      thumbnail tw x th keeps its image's aspect, at most 64 a side and
 *                      no larger than the image, and the sprite is at most 8192 a side
 *                      (TensorBoard's limit: thumbnails shrink below 64 past 16384 points).
 *                      The grid is square because the projector finds a thumbnail's row
 *                      by dividing by the thumbnails per column.
 *   DIR/projector_config.pbtxt   a ProjectorConfig in protobuf text format:
 *     embeddings {
 *       tensor_name: "NAME"
 *       tensor_path: "tensors.tsv"
 *       metadata_path: "metadata.tsv"
 *       tensor_shape: N
 *       tensor_shape: D
 *       sprite {
 *         image_path: "sprite.png"
 *         single_image_dim: TW
 *         single_image_dim: TH
 *       }
 *     }
 *   (paths relative to the config's folder). Each file is written atomically, and the
 *   config last, so a TensorBoard never reads a config whose files are not there. */
#ifndef PETCNN_PROJECTOR_H
#define PETCNN_PROJECTOR_H

#include <stdint.h>

#include "util/outfile.h"

#define PROJ_THUMB_MAX 64
#define PROJ_SPRITE_MAX 8192

typedef struct {
	char *dir;
	outfile tsv, meta;
	int64_t n, done;        /* points planned, added */
	int dim;                /* D */
	int h, w;               /* the images */
	int side, tw, th;       /* the sprite: side x side thumbnails of tw x th */
	uint8_t *sprite;        /* [side * th, side * tw, 3] */
	uint8_t *thumb;         /* [th, tw, 3] */
} proj_writer;

/* The thumbnail size for n images of h x w (h, w >= 1) and the sprite's side in
 * thumbnails; -1 if n is too large for one sprite. */
int proj_sprite_plan(int64_t n, int h, int w, int *side, int *tw, int *th, char *err);

/* Creates dir (and its parents) and starts the files for n points of dim values, each
 * with an RGB image h x w. */
int proj_open(proj_writer *p, const char *dir, int64_t n, int dim, int h, int w, char *err);
/* The next point: vec [dim], img [h, w, 3], its true and predicted class names (truth
 * NULL: unlabelled, then correct is not given). */
int proj_add(proj_writer *p, const float *vec, const uint8_t *img, const char *truth,
	     const char *pred, char *err);
/* Writes the sprite and the config (tensor_name: name) and puts every file in place, the
 * config last; -1 if fewer than n points were added or a write failed (then no config is
 * put in place, nor any file if the points were short). Frees p either way. */
int proj_close(proj_writer *p, const char *name, char *err);
/* Drops whatever is not yet in place and frees p (also after proj_close, a no-op then). */
void proj_abort(proj_writer *p);

#endif
