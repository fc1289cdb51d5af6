/* packout: where a dataset stream (images u1 [N,H,W,3], labels i8 [N], classes <U [K]) goes
 * when N is known only at the end, leaving nothing written if the run fails. */
#ifndef PETCNN_PACKOUT_H
#define PETCNN_PACKOUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "util/outfile.h"

/* A regular file (-o's temporary, or stdout redirected to a file without O_APPEND) takes
 * the images in place behind a zeroed header written last, when N is known: numpy leaves
 * room for N to grow to 21 digits, so the header's length does not depend on N. Anything
 * else (a pipe) gets the whole stream at the end, the images staged meanwhile in an
 * unlinked file in $TMPDIR. */
typedef struct {
	const char *name;       /* the output, for messages: the path, or "<stdout>" */
	int w, h;               /* each image is [h][w][3] */
	int64_t packed;         /* images added so far */
	/* private */
	outfile out;
	int direct;             /* images go straight into out.fp, header last */
	int undo;               /* something was opened that abort must take back */
	off_t base;             /* where the stream starts in out.fp */
	int64_t hlen;           /* the images' header length, whatever N */
	int64_t cap;            /* room in labels */
	FILE *images;           /* out.fp when direct, else the staging file */
	int64_t *labels;        /* [cap] */
} packout;

/* Opens path ("-": stdout; it must outlive p) for at most n images of w x h. On -1, err
 * is set and nothing is left open or written. */
int packout_open(packout *p, const char *path, int w, int h, size_t n, char *err);
/* Appends one image pix [h][w][3] with its label. */
int packout_add(packout *p, const uint8_t *pix, int64_t label, char *err);
/* Writes the rest of the stream (the images' header, staged images, labels, classes),
 * commits the output and frees p. On -1, call packout_abort. */
int packout_finish(packout *p, const char *const *classes, int64_t nclasses, char *err);
/* Takes back a run that did not finish (-o's temporary removed, stdout's file cut back to
 * where the stream started) and frees p. -1 with err when stdout's file could not be cut
 * back: the failure that led here is still the one to report. */
int packout_abort(packout *p, char *err);

#endif
