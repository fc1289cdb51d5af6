/* ckptsched: when a training run writes its checkpoints (see ckptsched.h). */
#include "nn/ckptsched.h"

#include <string.h>

#include "util/progress.h"

void ckptsched_init(ckptsched *s, const char *path, char unit, double every, int background,
		    int64_t total, int64_t stop_after, double now)
{
	memset(s, 0, sizeof *s);
	ckpt_writer_init(&s->writer);
	s->path = path;
	s->unit = unit;
	s->every = every;
	s->background = background;
	s->last = stop_after && stop_after < total ? stop_after : total;
	s->saved_step = -1;
	s->saved_at = now;
}

int ckptsched_due(const ckptsched *s, int64_t step, int64_t spe, double now)
{
	/* the last step's checkpoint is the end's, in the foreground */
	if (step >= s->last)
		return 0;
	if (s->unit == 'm')
		return now - s->saved_at >= s->every * 60;
	return step % (s->unit == 's' ? (int64_t)s->every : spe * (int64_t)s->every) == 0;
}

/* Reaps a finished background checkpoint (block: waits for it, adding the wait to *into);
 * its failure is the run's. */
static int reap(ckptsched *s, int block, double *into, char *err)
{
	double t0 = progress_now();
	int was = s->writer.running;

	/* a wait for the staging buffer is its own cost, not a checkpoint's */
	if (was && !s->writer.writing)
		into = &s->t_prep;
	if (ckpt_writer_wait(&s->writer, block, err) < 0)
		return -1;
	s->t_ckpt += progress_now() - t0;
	*into += progress_now() - t0;
	if (was && !s->writer.running && !s->writer.writing)
		s->prep_seconds = s->writer.seconds;
	if (was && !s->writer.running && s->writer.writing) {
		if (s->end_lent) {
			s->end_seconds = s->writer.seconds;
			return 0;
		}
		s->n_bg++;
		s->bg_cpu += s->writer.cpu_seconds;
		s->bg_sum += s->writer.seconds;
		if (s->writer.seconds > s->bg_max)
			s->bg_max = s->writer.seconds;
	}
	return 0;
}

enum how { FOREGROUND, STAGED, LENT };

/* The checkpoint of st's step: in the foreground (written before returning), from a
 * staging copy by the writer (during the run), or from the model itself by the writer
 * (the run's last step: no step changes the model after it). One at a time. */
static int save(ckptsched *s, enum how how, const model *m, const tensor *classes,
		const ckpt_state *st, double *into, char *err)
{
	double t0;

	if (reap(s, 1, &s->t_wait, err))
		return -1;
	t0 = progress_now();
	if (how == FOREGROUND ? ckpt_save(s->path, m, classes, st, err)
	    : how == STAGED   ? ckpt_save_start(&s->writer, s->path, m, classes, st, err)
			      : ckpt_save_start_lent(&s->writer, s->path, m, classes, st, err))
		return -1;
	s->saved_step = st->step;
	s->saved_at = t0;
	/* a path written in place ("-", a FIFO) was written before returning */
	s->end_lent = how == LENT && s->writer.running;
	s->t_ckpt += progress_now() - t0;
	*into += progress_now() - t0;
	return 0;
}

/* Whether a checkpoint during the run may still come after step (the end's is not one). */
static int more_due(const ckptsched *s, int64_t step, int64_t spe)
{
	int64_t k = s->unit == 's' ? (int64_t)s->every : spe * (int64_t)s->every;

	if (s->unit == 'm')
		return step + 1 < s->last;
	return (step / k + 1) * k < s->last;
}

int ckptsched_step(ckptsched *s, int64_t spe, int stopping, const model *m, const tensor *classes,
		   const ckpt_state *st, char *err)
{
	if (reap(s, 0, &s->t_wait, err))
		return -1;
	if (stopping)
		return 0;
	/* the run's last step: its checkpoint is written while the run finishes (its last
	 * test, its logs, freeing), and ckptsched_end waits for it */
	if (st->step == s->last)
		return save(s, LENT, m, classes, st, &s->t_last, err);
	/* the staging buffer is faulted in by the writer while training goes on, once one
	 * will be needed: the first copy then costs what every other does */
	if (s->background && !s->writer.running && !s->writer.stage && more_due(s, st->step, spe) &&
	    ckpt_writer_prepare(&s->writer, s->path, m, st->optim, err))
		return -1;
	if (!ckptsched_due(s, st->step, spe, progress_now()))
		return 0;
	return save(s, s->background ? STAGED : FOREGROUND, m, classes, st, &s->t_copy, err);
}

int ckptsched_end(ckptsched *s, const model *m, const tensor *classes, const ckpt_state *st,
		  char *err)
{
	/* the end's own write started at the last step is waited for here: that wait is
	 * what the run pays for it */
	if (reap(s, 1, s->end_lent ? &s->t_last : &s->t_wait, err))
		return -1;
	/* unless a checkpoint holds this very step (the end's own started at the last step) */
	if (s->saved_step != st->step)
		return save(s, FOREGROUND, m, classes, st, &s->t_last, err);
	return 0;
}

void ckptsched_free(ckptsched *s)
{
	ckpt_writer_free(&s->writer);
}
