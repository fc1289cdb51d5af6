/* progress: a one-line progress bar on stderr (count or bytes, rate, ETA), drawn at most
 * a few times a second, only when stderr is a terminal unless forced; silent otherwise. */
#ifndef PETCNN_PROGRESS_H
#define PETCNN_PROGRESS_H

#include <stdint.h>

enum progress_mode { PROGRESS_AUTO, PROGRESS_ON, PROGRESS_OFF };

typedef struct {
	char label[32];
	int64_t total;    /* 0 when unknown: no bar, no ETA */
	int64_t done;
	int bytes;        /* show sizes as KiB/MiB instead of counts */
	int enabled;
	double t0, last;  /* monotonic seconds */
	char unit[16];    /* "img", "step", ...: shown in the rate */
} progress;

/* mode from -q (OFF), --progress (ON), else AUTO (isatty(2)). */
void progress_init(progress *p, const char *label, int64_t total, int bytes, enum progress_mode mode);
void progress_set_unit(progress *p, const char *unit);
/* Sets the count done so far; redraws if 0.2 s have passed. extra (may be NULL) is
 * appended to the line, e.g. "loss 0.693". */
void progress_update(progress *p, int64_t done, const char *extra);
/* Final draw and newline (only if anything was drawn). */
void progress_end(progress *p);

double progress_now(void);

#endif
