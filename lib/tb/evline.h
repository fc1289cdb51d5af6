/* evline: tfevents-write's line language ("STEP TAG VALUE", hist, image, text, graph)
 * applied to event files, one per run folder, each opened on first use. */
#ifndef PETCNN_EVLINE_H
#define PETCNN_EVLINE_H

#include "util/errmsg.h"
#include "tb/tfev_write.h"

#define EVLINE_MAXRUNS 64
/* Largest file a line may name (a PNG, a .npy): read whole, so bounded. */
#define EVLINE_FILE_MAX ((size_t)1 << 30)

typedef struct {
	const char *logdir, *run;     /* borrowed; run NULL: files in logdir itself */
	int split;                    /* a tag's first component names its run */
	int n;
	char *name[EVLINE_MAXRUNS];   /* the run folder under logdir, "" for itself */
	tfev_writer w[EVLINE_MAXRUNS];
	int failed;                   /* an event file failed: nothing more can be written */
	char warning[ERR_MAX];        /* what the last line left out ("" if nothing) */
} evline;

/* Starts writing under logdir; without split the one file is created now, so it exists
 * even before any line. */
int evline_open(evline *e, const char *logdir, const char *run, int split, char *err);
/* Applies one line (changed in place while parsed): 0, or -1 with err saying what is
 * wrong with it; e->failed then tells a write failure (fatal) from a bad line. */
int evline_do(evline *e, char *line, char *err);
/* Everything written so far to disk, for a live TensorBoard. */
int evline_flush(evline *e, char *err);
/* Closes every file (err: the first failure; NULL: not wanted). */
int evline_close(evline *e, char *err);

#endif
