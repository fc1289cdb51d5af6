/* tfev_write: a TensorBoard event file being written: created in its run folder, then
 * scalars, text and the graph as Events (histograms: tfev_hist.h; images: tfev_image.h).
 * The format is in tfev.h, the framing and when records reach the disk in tfrecord.h. */
#ifndef PETCNN_TFEV_WRITE_H
#define PETCNN_TFEV_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "tb/pb.h"
#include "tb/tfrecord.h"
#include "util/buf.h"

typedef struct {
	tfrecord_writer out;   /* the event file */
	struct buf event;      /* scratch: the Event being built */
} tfev_writer;

/* Creates logdir/run (run NULL or "": logdir itself), parents included, and a new event
 * file in it, then writes the file_version record. Never overwrites: a name already taken
 * gets a ".<n>" suffix, which sorts after it as TensorBoard reads a run's files in order. */
int tfev_open(tfev_writer *w, const char *logdir, const char *run, char *err);
/* Flushes and closes; frees everything even on failure. */
int tfev_close(tfev_writer *w, char *err);
/* Hands every complete record to the kernel (tfrecord_flush). */
int tfev_flush(tfev_writer *w, char *err);
/* tfrecord_flush_if_due: a caller whose writes can pause for long (a training step) calls
 * this from its loop. */
int tfev_flush_if_due(tfev_writer *w, char *err);
/* The file's path, for messages; a write failed (later writes are pointless). */
static inline const char *tfev_path(const tfev_writer *w) { return w->out.path; }
static inline int tfev_failed(const tfev_writer *w) { return w->out.failed; }

int tfev_scalar(tfev_writer *w, int64_t step, const char *tag, double value, char *err);
/* A text summary (markdown, rendered by TensorBoard's text plugin). */
int tfev_text(tfev_writer *w, int64_t step, const char *tag, const char *text, char *err);

/* One node of a graph for TensorBoard's graph view: scopes come from '/' in the name. */
#define TFEV_MAX_INPUTS 4
typedef struct {
	const char *name;                       /* "conv1_1/Conv2D" */
	const char *op;                         /* "Conv2D" */
	const char *input[TFEV_MAX_INPUTS];     /* node names; unused slots NULL */
	int ndim;                               /* output shape rank, -1 if not given */
	int64_t shape[8];                       /* -1 for an unknown size (the batch) */
} tfev_node;

/* The graph (GraphDef in Event.graph_def, each node with an "_output_shapes" attr). */
int tfev_graph(tfev_writer *w, const tfev_node *nodes, size_t n, char *err);

/* For the summary writers of tfev_hist.c and tfev_image.c: an Event with one Summary
 * value for tag; the caller adds the value's fields to w->event between the two. */
int tfev_value_begin(tfev_writer *w, int64_t step, const char *tag, size_t mark[2], char *err);
int tfev_value_end(tfev_writer *w, size_t mark[2], char *err);

#endif
