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

/* Reaps a finished background checkpoint (block: waits for it); its failure is the run's. */
static int reap(ckptsched *s, int block, char *err)
{
	double t0 = progress_now();
	int was = s->writer.running;

	if (ckpt_writer_wait(&s->writer, block, err) < 0)
		return -1;
	s->t_ckpt += progress_now() - t0;
	s->t_wait += progress_now() - t0;
	if (was && !s->writer.running && s->writer.writing) {
		s->n_bg++;
		s->bg_cpu += s->writer.cpu_seconds;
		s->bg_sum += s->writer.seconds;
		if (s->writer.seconds > s->bg_max)
			s->bg_max = s->writer.seconds;
	}
	return 0;
}

/* The checkpoint of st's step: in the background during the run (after the previous one
 * is done), in the foreground at the end, so that exit means written. */
static int save(ckptsched *s, int background, const model *m, const tensor *classes,
		const ckpt_state *st, char *err)
{
	double t0;

	if (reap(s, 1, err))
		return -1;
	t0 = progress_now();
	if (background ? ckpt_save_start(&s->writer, s->path, m, classes, st, err)
		       : ckpt_save(s->path, m, classes, st, err))
		return -1;
	s->saved_step = st->step;
	s->saved_at = t0;
	s->t_ckpt += progress_now() - t0;
	*(background ? &s->t_copy : &s->t_last) += progress_now() - t0;
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
	if (reap(s, 0, err))
		return -1;
	if (stopping)
		return 0;
	/* the staging buffer is faulted in by the writer while training goes on, once one
	 * will be needed: the first copy then costs what every other does */
	if (s->background && !s->writer.running && !s->writer.stage && more_due(s, st->step, spe) &&
	    ckpt_writer_prepare(&s->writer, s->path, m, st->optim, err))
		return -1;
	if (!ckptsched_due(s, st->step, spe, progress_now()))
		return 0;
	return save(s, s->background, m, classes, st, err);
}

int ckptsched_end(ckptsched *s, const model *m, const tensor *classes, const ckpt_state *st,
		  char *err)
{
	if (reap(s, 1, err))
		return -1;
	/* unless a background one holds this very step */
	if (s->saved_step != st->step)
		return save(s, 0, m, classes, st, err);
	return 0;
}

void ckptsched_free(ckptsched *s)
{
	ckpt_writer_free(&s->writer);
}
