/* ckpt: a model and its training state as a self-describing .npz checkpoint (DESIGN.md).
 * Members: "model/spec" <U [1] the model spec; "model/input" i8 [3] H, W, 3; when the input
 * normalisation is not the default, "model/mean" and "model/std" f4 [3] and "model/bgr" i8 [];
 * "classes"
 * <U [K]; every parameter f4 under its name in TensorFlow's layout ("conv1_1/weights1_1"
 * [3, 3, 3, 32], ..., "fc1/weights3_1" [in, 512]); with training state also
 * "train/step", "train/seed", "train/batch", "train/examples" i8 [] (steps done, the
 * --seed, batch size and training-set size, which fix the epoch and position in it) and
 * "train/optimizer" <U [1] ("adam": "adam/m/NAME" and "adam/v/NAME" f4 per parameter;
 * "momentum": "momentum/NAME"), and the run's settings, checked on --resume: "train/lr",
 * "train/keep_conv", "train/keep_fc", "train/momentum" f8 [] and "train/data_sha256" <U [1]
 * (SHA-256 of the training images then labels; absent in checkpoints made before 0.2),
 * and "train/augment" <U [1] (cnn-train --augment's spec, only when augmenting, so a
 * checkpoint trained without keeps its bytes).
 * Every number read is checked against what it can be; members no loader needs are
 * skipped while streaming, never held. */
#ifndef PETCNN_CKPT_H
#define PETCNN_CKPT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/model.h"
#include "array/tensor.h"
#include "util/errmsg.h"

#define CKPT_AUGMENT_MAX 256

enum ckpt_optim { CKPT_NONE, CKPT_ADAM, CKPT_MOMENTUM };

typedef struct {
	int64_t step, seed, batch, examples;
	enum ckpt_optim optim;   /* CKPT_NONE: no training state saved / found */
	/* The settings a resumed run must share; has_settings 0 in older checkpoints. */
	int has_settings;
	double lr, keep_conv, keep_fc, momentum;
	char data_sha256[65];
	char augment[CKPT_AUGMENT_MAX];   /* the augmentation spec, "" for none */
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

/* A checkpoint written in the background: the model's parameters and optimiser state are
 * copied (a memcpy on the model's threads, ~0.06 s for 1.2 GB) into a staging buffer that
 * the writer keeps, and a thread writes that copy through ckpt_save while training goes
 * on, so the file holds exactly the state of the step it claims and is named only once
 * complete and fsynced (outfile). A thread, not a forked child: after a fork every page
 * the trainer writes (the 1.2 GB of parameters and moments at the next step, and the
 * activations) is copied on a fault, 0.8-2.6 s per GB measured on a KVM guest, against
 * 0.1 s for the memcpy.
 * The thread blocks every signal, so the program's handlers run where they did; a killed
 * process stops writing with it and leaves the last complete checkpoint. The thread runs
 * at nice 19 (on Linux the nice value is the thread's), where at the default priority it
 * preempted one of two training threads and the other waited at the next barrier. Its
 * CPU is little: the copy's tensors sit in page-aligned slots, which zipw writes at
 * page-aligned file offsets, so O_DIRECT takes them uncopied, and the CRC-32 is ISA-L's:
 * 0.04-0.05 s per 1.2 GB, against 0.33 s through libarchive (zlib's CRC, then two copies).
 * On 2 busy cores the steps it runs beside then take ~0.1 s more per checkpoint at 224
 * and the file is on disk ~1 s after its step. ckpt_save_start_lent's job, which the run
 * waits for, keeps the program's priority. The staging buffer is the cost: the size of the
 * parameters and optimiser state, kept until ckpt_writer_free. Its pages are faulted in a
 * chunk at a time, each chunk claimed once from a shared count: by ckpt_writer_prepare's
 * thread while training goes on, and by whoever waits for that job, on the model's threads.
 * That thread keeps the program's priority: at nice 19 beside two training threads on 2
 * cores it faulted 1.2 GB (huge pages) in 0.05-0.4 s in some runs and 6.6-7.2 s in others,
 * and then the first checkpoint waited up to 0.83 s and the first step ran 0.3 s longer
 * (cnn-train --profile, 224, 2026-12-05); at the program's priority 0.09-0.11 s every run,
 * no wait, the first step as before. A KVM guest faults memory the host has reclaimed at
 * 0.4-0.8 GB/s per thread, so the thread may still not be done by the first checkpoint;
 * the wait then shares its rest out over the model's threads. The chunks come in huge
 * pages until one of them faults in slower than small pages would (a host that reclaimed
 * the guest's free 2 MB blocks backs them at 0.4 GB/s, against 8-23 GB/s where it has
 * not), the rest in small ones: 1.2 GB after 1.6 GB of model took 2.1-3.1 s of CPU that
 * way, 2.9-3.3 all in huge pages and 3.2-3.4 all in small ones (an Intel Xeon guest,
 * 2026-12-07, five runs each, alternating). */
typedef struct {
	int running;          /* a job was started and not yet waited for */
	int writing;          /* that job (or the last one) writes a file; 0: it faults the buffer in */
	int64_t step;         /* the step its copy holds */
	float *stage;         /* [stage_n]: params, then adam_m, then adam_v as needed, each
	                       * tensor in a page-aligned slot */
	size_t stage_n;
	size_t stage_bytes;   /* its mapping's length */
	_Atomic size_t fault_next; /* the next chunk of the mapping to fault in */
	size_t fault_chunks;  /* its chunks (STAGE_CHUNK bytes, the last shorter) */
	_Atomic size_t fault_waited; /* bytes the waiters faulted in, since ckpt_writer_init */
	_Atomic int huge;     /* the chunks yet to come are advised into huge pages */
	_Atomic size_t huge_bytes; /* bytes faulted in under that advice */
	double huge_rate;     /* bytes per CPU second of the chunk that turned it off, or 0 */
	int threads;          /* the waiters' threads (the model's at ckpt_writer_prepare) */
	model view;           /* the model over the staging buffer: its param are vparam */
	model_param *vparam;  /* [nvparam]: the model's parameters at their slots' offsets */
	int nvparam;
	const tensor *classes;
	ckpt_state st;
	char *path;
	int rc;               /* the job's result, once done */
	double seconds;       /* how long it took, from its start to its file named in place */
	double cpu_seconds;   /* the CPU time it took (the share it took from training) */
	int low;              /* the job runs at the lowest priority (nice 19, this thread only) */
	int nice;             /* the nice value it ran at */
	char err[ERR_MAX];
	pthread_t thread;
	_Atomic int done;     /* set by the thread as it finishes */
} ckpt_writer;

void ckpt_writer_init(ckpt_writer *w);
/* Starts writing (m, classes, st) to path; w must have no write running (ckpt_writer_wait
 * first); classes and m's layout must stay as they are until it is waited for. A path
 * that is not a regular file ("-", a FIFO, a device) is written before returning, since
 * its bytes would interleave with the program's own output. */
int ckpt_save_start(ckpt_writer *w, const char *path, const model *m, const tensor *classes,
		    const ckpt_state *st, char *err);
/* ckpt_save_start with no copy: m's own buffers are written, so m (its parameters and
 * optimiser state) must not change until the write is waited for; unless w has a staging
 * buffer for m, which it copies into on m's threads, as faster to write. At the program's
 * priority. For a run's last checkpoint, written while the run finishes (its last test,
 * its logs). */
int ckpt_save_start_lent(ckpt_writer *w, const char *path, const model *m, const tensor *classes,
			 const ckpt_state *st, char *err);
/* Maps the staging buffer for (m, optim) (-1: out of memory) and faults it in on the
 * thread, at the program's priority, so that the first ckpt_save_start is a plain
 * memcpy: faulting in 1.2 GB of fresh memory inside the training loop took 1.5-4 s on a
 * KVM guest, against 0.07 s for the copy once mapped. Nothing is done when the buffer is
 * already that large or path is not a regular file (written in place, never staged). w
 * must have nothing running; ckpt_writer_wait reaps it like a write. */
int ckpt_writer_prepare(ckpt_writer *w, const char *path, const model *m, enum ckpt_optim optim,
			char *err);
/* Whether checkpoints of (m, optim) are best written in the background: whether their
 * staging buffer (*stage bytes, what the background costs in memory) fits in a quarter of
 * the memory available (*avail bytes, mem_available). In the foreground a checkpoint
 * stops training for its whole write (at 224, 1.2 GB: 1.2 s of an 8.5 s epoch), in the
 * background for a copy (0.06 s), so the background wherever memory is no concern. */
int ckpt_background_fits(const model *m, enum ckpt_optim optim, size_t *stage, size_t *avail);
/* Waits for the job (block 0: only if it is done). 1: still running (block 0); 0: none
 * running, or it succeeded; -1: it failed, err says why and names the file. A blocking
 * wait for ckpt_writer_prepare's job faults in what is left of the buffer on w->threads
 * threads. */
int ckpt_writer_wait(ckpt_writer *w, int block, char *err);
/* Waits for a running write, ignoring its result, and frees the staging buffer. */
void ckpt_writer_free(ckpt_writer *w);

#endif
