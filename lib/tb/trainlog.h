/* trainlog: everything cnn-train records while it trains: the tutorial's TensorBoard runs
 * (LOGDIR/train, LOGDIR/test) and a stream of feature-map snapshots for the evolution GIFs.
 *
 * LOGDIR/train: the graph (once, at open), scalars Loss and Accuracy, the histogram of the
 * first layer's weights (tag "weights1_1" for the default spec: the variable's name after
 * its scope), and the feature maps of one fixed image as gray grid images (img/grid.h),
 * tag "<layer>/maps" ("conv1_2/maps", "conv2_2/maps"). LOGDIR/test: Loss and Accuracy.
 * LOGDIR/test_epoch (created at its first scalar): Loss and Accuracy over the whole test
 * set, the run `cnn-train | tfevents-write --split` makes of the test_epoch/ lines.
 * With gradcam_every, LOGDIR/test also gets tag "gradcam": Grad-CAM (lib/nn/explain) of
 * the first TRAINLOG_GRADCAM test images for their labels, over the images in jet (alpha
 * 0.5), so the step slider shows where the network looks as it learns.
 * The maps are those of the last convolution of each block: a conv layer whose next layer,
 * dropout aside, is not a conv (conv1_2 before pool1, conv2_2 before pool2); at most
 * TRAINLOG_MAX_MAPS of them.
 *
 * Snapshot stream: per snapshot, the maps in layer order (conv1_2 then conv2_2), each a
 * .npy array f4 [1, H, W, C] (lib/array/npy.h), back to back, so `np.load(f)` in a loop or
 * `tensor-png --gif` reads them. Snapshot k is of step k * image_every (step 0 included
 * when the caller logs it). The stream is not an outfile (temp + rename): it is meant to
 * be read while training runs and to survive a crash, so each array is built in memory
 * and handed to the kernel with write() as soon as it is complete (no fsync: a killed
 * process loses nothing written, a power cut may). A resumed run appends: the arrays
 * already there are checked against the model's maps, and a torn array at the end or
 * snapshots of steps after the resumed step (a crash after the last checkpoint) are cut. */
#ifndef PETCNN_TRAINLOG_H
#define PETCNN_TRAINLOG_H

#include <stdint.h>

#include "nn/model.h"
#include "tb/tfev_write.h"
#include "util/buf.h"

#define TRAINLOG_MAX_MAPS 8
#define TRAINLOG_GRADCAM 4

enum trainlog_run { TRAINLOG_TRAIN, TRAINLOG_TEST, TRAINLOG_TEST_EPOCH, TRAINLOG_NRUN };

typedef struct {
	int hist_every;      /* weights histogram every N steps (cnn-train's --log-every); 0: never */
	int image_every;     /* feature-map images and snapshots every N steps; 0: never */
	int resume;          /* keep an existing snapshot stream up to start_step, append to it */
	int64_t start_step;  /* the step training starts from (resume) */
	int gradcam_every;   /* Grad-CAM images of the test images every N steps; 0: never */
} trainlog_opts;

typedef struct {
	trainlog_opts o;
	char *logdir;                     /* NULL: no TensorBoard runs */
	tfev_writer run[TRAINLOG_NRUN];
	int open[TRAINLOG_NRUN];
	uint8_t *image;                   /* the fixed image, [h, w, 3] */
	int h, w;
	int hist_param;                   /* index into model.param, -1: none */
	const char *hist_tag;             /* points into model.param[hist_param].name */
	int nmaps;                        /* the layers whose maps it shows (none: no log) */
	int map_layer[TRAINLOG_MAX_MAPS]; /* indices into model.layer */
	char map_tag[TRAINLOG_MAX_MAPS][MODEL_NAME_MAX + 8];
	char *snap_path;                  /* NULL: no snapshots */
	int snap_fd;
	int64_t snapshots;                /* complete snapshots in the stream */
	struct buf snap;                  /* one snapshot array, header and data */
	int ncam;                         /* Grad-CAM: test images (0: none) */
	uint8_t *cam_img;                 /* ... [ncam, h, w, 3] */
	int cam_label[TRAINLOG_GRADCAM];  /* ... their labels */
	int cam_layer;                    /* ... the layer weighted */
} trainlog;

/* Opens what is asked for: logdir (NULL: no event files) and snapshots (NULL: none).
 * image is the fixed image, m->h x m->w x 3 uint8, copied. Writes m's graph to the
 * train run. With neither logdir nor snapshots every call below does nothing. */
int trainlog_open(trainlog *tl, const char *logdir, const char *snapshots, const model *m,
		  const uint8_t *image, const trainlog_opts *o, char *err);

/* The test images Grad-CAM shows (gradcam_every): the first n (at most TRAINLOG_GRADCAM)
 * of images [n, h, w, 3] with labels, copied. m's layer is explain_gradcam_layer's
 * default; a model without one (no spatial layer) is an error. Makes m's activation
 * gradients (model_grad_init). */
int trainlog_gradcam_images(trainlog *tl, model *m, const uint8_t *images, const int *labels,
			    int n, char *err);

/* "train", "test", "test_epoch": the run's folder, and the prefix of cnn-train's stdout tags. */
const char *trainlog_run_name(enum trainlog_run run);

/* A scalar ("Loss", "Accuracy") in one run. */
int trainlog_scalar(trainlog *tl, enum trainlog_run run, int64_t step, const char *tag,
		    double value, char *err);

/* Called after every training step (and at step 0 before training, for the initial
 * state): the weights histogram when step is a multiple of hist_every; the feature maps
 * (images and snapshot) when a multiple of image_every. The maps come from running the
 * fixed image through m itself (batch 1, no dropout): m's buffers are only scratch
 * between steps (a forward rebuilds everything backward uses, and parameters and Adam
 * state are not touched), as cnn-train's own test evaluation relies on, so no second
 * model's memory is needed. Never call it between a forward and its backward. */
int trainlog_step(trainlog *tl, int64_t step, model *m, char *err);

/* A batch of uint8 images [n, h, w, 3] as one RGB grid image under tag in the train run
 * (cnn-train --augment: what the network is fed); nothing without a logdir. */
int trainlog_batch(trainlog *tl, int64_t step, const char *tag, const uint8_t *images, int n, int h,
		   int w, char *err);

/* Event records to the kernel if TFRECORD_FLUSH_SECONDS have passed (snapshots are never
 * held back). */
int trainlog_flush_if_due(trainlog *tl, char *err);
/* Flushes and closes everything; frees even on failure; the first error is reported. */
int trainlog_close(trainlog *tl, char *err);

#endif
