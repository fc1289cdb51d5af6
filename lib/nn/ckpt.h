/* ckpt: a model and its training state as a self-describing .npz checkpoint (DESIGN.md).
 * Members: "model/spec" <U [1] the model spec; "model/input" i8 [3] H, W, 3; "classes"
 * <U [K]; every parameter f4 under its name in TensorFlow's layout ("conv1_1/weights1_1"
 * [3, 3, 3, 32], ..., "fc1/weights3_1" [in, 512]); with training state also
 * "train/step", "train/seed", "train/batch", "train/examples" i8 [] (steps done, the
 * --seed, batch size and training-set size, which fix the epoch and position in it) and
 * "train/optimizer" <U [1] ("adam": "adam/m/NAME" and "adam/v/NAME" f4 per parameter;
 * "momentum": "momentum/NAME"), and the run's settings, checked on --resume: "train/lr",
 * "train/keep_conv", "train/keep_fc", "train/momentum" f8 [] and "train/data_sha256" <U [1]
 * (SHA-256 of the training images then labels; absent in checkpoints made before 0.2).
 * Every number read is checked against what it can be; members no loader needs are
 * skipped while streaming, never held. */
#ifndef PETCNN_CKPT_H
#define PETCNN_CKPT_H

#include <stdint.h>

#include "nn/model.h"
#include "array/tensor.h"

enum ckpt_optim { CKPT_NONE, CKPT_ADAM, CKPT_MOMENTUM };

typedef struct {
	int64_t step, seed, batch, examples;
	enum ckpt_optim optim;   /* CKPT_NONE: no training state saved / found */
	/* The settings a resumed run must share; has_settings 0 in older checkpoints. */
	int has_settings;
	double lr, keep_conv, keep_fc, momentum;
	char data_sha256[65];
} ckpt_state;

/* Writes m's parameters (and, if st->optim != CKPT_NONE, the training state and the
 * optimiser buffers) to path atomically. Lends the model's buffers to the writer: no
 * copy of the 400 MB layers is made. */
int ckpt_save(const char *path, const model *m, const tensor *classes, const ckpt_state *st,
	      char *err);

/* Builds *m from the checkpoint's spec and input size (model_init with max_batch and
 * train) and fills its parameters, classes (caller frees) and st (optim CKPT_NONE when the
 * file holds no training state). With train set, the optimiser buffers are restored too;
 * without, they are read past and never held. Members are read straight into the model
 * once its metadata has been seen (ckpt_save writes it first), so loading needs about the
 * model's own memory, not the file's too. */
int ckpt_load(const char *path, model *m, int max_batch, int train, tensor *classes,
	      ckpt_state *st, char *err);
/* ckpt_load for images of h x w: a checkpoint whose model/input differs is refused before
 * anything is allocated for it (a 1 KB file may declare a 1024x1024 input). */
int ckpt_load_sized(const char *path, int h, int w, model *m, int max_batch, int train,
		    tensor *classes, ckpt_state *st, char *err);

/* A checkpoint written in the background: a forked child writes the copy-on-write
 * snapshot of the process taken at the fork (the model and optimiser state of that step,
 * exactly) through ckpt_save, so training goes on while 1.2 GB go to disk. The file is
 * named only once complete and fsynced (outfile), as with ckpt_save. The child ignores
 * SIGINT, SIGTERM, SIGHUP and SIGPIPE (stopping is the parent's decision: it reaps or
 * waits for the child) and is killed if the parent dies, so a killed run stops writing
 * and leaves the last complete checkpoint. Copy-on-write costs the parent a copy of each
 * page it modifies while the child writes: up to the parameters and optimiser state. */
typedef struct {
	int pid;         /* the writer, 0 when none is running */
	int fd;          /* read end of the pipe its error message comes through */
	int64_t step;    /* the step its snapshot holds */
	char path[512];  /* for messages */
} ckpt_writer;

/* Starts a writer for (m, classes, st) to path; w must hold none (ckpt_writer_wait first).
 * A path that is not a regular file ("-", a FIFO, a device) is written before returning,
 * since its bytes would interleave with the parent's: w then holds no writer. */
int ckpt_save_start(ckpt_writer *w, const char *path, const model *m, const tensor *classes,
		    const ckpt_state *st, char *err);
/* Reaps the writer if it has finished (block: waits for it). 1: still running (block 0);
 * 0: none, or it succeeded; -1: it failed, err says why and names the file. */
int ckpt_writer_wait(ckpt_writer *w, int block, char *err);

#endif
