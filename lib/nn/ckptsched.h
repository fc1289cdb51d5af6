/* ckptsched: when a training run writes its checkpoints (every N epochs, steps or minutes,
 * in the background or not; the last step's as the run finishes) and their cost.
 * The rule: a step takes a checkpoint during the run when it ends the interval (a multiple
 * of N steps, or of N epochs' steps; or N minutes since the last one started, or since the
 * run began) and is not the run's last step (the total, or --stop-after's if fewer): that
 * one is started by ckptsched_step at that step, written by a thread from the model itself
 * (no step changes it any more) while the run finishes (its last test, its logs: 1 s of
 * disk time for 1.2 GB at 224 hidden behind them), and ckptsched_end returns only once
 * it is on disk. A run stopped early (a signal) has ckptsched_end write its step's in the
 * foreground, unless a checkpoint already holds that step. Background writes go through
 * ckpt_writer one at a time; a failed one is the run's failure. */
#ifndef PETCNN_CKPTSCHED_H
#define PETCNN_CKPTSCHED_H

#include <stdint.h>

#include "nn/ckpt.h"

typedef struct {
	const char *path;     /* where every checkpoint goes (the caller's string) */
	char unit;            /* 'e'pochs, 's'teps or 'm'inutes */
	double every;         /* how many (whole for e and s) */
	int background;       /* checkpoints during the run from a copy, by a thread */
	int64_t last;         /* the run's last step: its checkpoint is the end's */
	ckpt_writer writer;
	int64_t saved_step;   /* the step of the last checkpoint started, -1: none */
	double saved_at;      /* when it was started (progress_now), or the run began */
	/* what they cost, in seconds: the training loop's share (t_ckpt) and its parts, the
	 * checkpoints taken during the run (a staging copy, or the whole write in the
	 * foreground), the waits for a writer and the end's checkpoint */
	double t_ckpt, t_copy, t_wait, t_last;
	double t_prep;        /* the loop's waits for the staging buffer to be faulted in */
	double prep_seconds;  /* that faulting's time from its start (after the first step) */
	int n_bg;             /* background checkpoints done, and their seconds to disk */
	double bg_sum, bg_max, bg_cpu;
	int end_lent;         /* the writer's last job is the last step's, from the model itself */
	double end_seconds;   /* its seconds from its start to its file named in place */
} ckptsched;

/* For a run starting now (progress_now) of total steps, stopping after stop_after if it is
 * not 0 and fewer. */
void ckptsched_init(ckptsched *s, const char *path, char unit, double every, int background,
		    int64_t total, int64_t stop_after, double now);
/* Whether the step just done (of spe steps per epoch) takes a checkpoint during the run,
 * at time now. */
int ckptsched_due(const ckptsched *s, int64_t step, int64_t spe, double now);
/* After each step (st->step just done): reaps a finished background checkpoint, then
 * unless stopping starts (or writes) the step's checkpoint of (m, classes, st) when due;
 * at the run's last step starts its checkpoint from m itself, which must then stay as it
 * is until ckptsched_end. -1 with err when a checkpoint failed. */
int ckptsched_step(ckptsched *s, int64_t spe, int stopping, const model *m, const tensor *classes,
		   const ckpt_state *st, char *err);
/* At the end: waits for the checkpoint being written, then writes st->step's unless one
 * holds it already. -1 with err when either failed. */
int ckptsched_end(ckptsched *s, const model *m, const tensor *classes, const ckpt_state *st,
		  char *err);
/* Waits for a running write, ignoring its result, and frees the staging copy. */
void ckptsched_free(ckptsched *s);

#endif
