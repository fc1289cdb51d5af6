/* tfev: TensorBoard event files without TensorFlow: a writer for scalars, histograms,
 * images, text and the graph, and a reader that checks every CRC.
 *
 * A run folder holds events.out.tfevents.<unix-seconds>.<hostname>[.<n>], a sequence of
 * TFRecords: u64le payload length, u32le masked CRC32C of those 8 bytes, the payload (one
 * serialized Event protobuf), u32le masked CRC32C of the payload (crc32c.h). The first
 * Event carries file_version "brain.Event:2". Field numbers, from TensorBoard's copies of
 * TensorFlow's protos (tensorboard/compat/proto/):
 *   event.proto      Event: wall_time 1 (double s), step 2 (int64), file_version 3 (string),
 *                    graph_def 4 (bytes: a GraphDef), summary 5 (Summary)
 *   summary.proto    Summary: value 1 (repeated Value)
 *                    Value: tag 1, simple_value 2 (float), image 4, histo 5, tensor 8,
 *                           metadata 9 (SummaryMetadata: plugin_data 1 {plugin_name 1, content 2})
 *                    Image: height 1, width 2, colorspace 3 (1 gray, 3 RGB, 4 RGBA),
 *                           encoded_image_string 4 (PNG bytes)
 *   histogram.proto  HistogramProto: min 1, max 2, num 3, sum 4, sum_squares 5 (doubles),
 *                    bucket_limit 6, bucket 7 (packed doubles; bucket i counts values in
 *                    [bucket_limit[i-1], bucket_limit[i]))
 *   tensor.proto     TensorProto: dtype 1 (types.proto: DT_FLOAT 1, DT_STRING 7),
 *                    tensor_shape 2, float_val 5, string_val 8, tensor_content 4
 *   graph.proto      GraphDef: node 1 (repeated NodeDef), versions 4 (VersionDef: producer 1)
 *   node_def.proto   NodeDef: name 1, op 2, input 3 (repeated), attr 5 (map: key 1, value 2)
 *   attr_value.proto AttrValue: list 1 (ListValue: shape 7), type 6, shape 7
 *   tensor_shape.proto TensorShapeProto: dim 2 (Dim: size 1, -1 unknown)
 *
 * Durability: records are built in memory and handed to the kernel whole: a write flushes
 * once TFEV_FLUSH_SECONDS have passed since the last flush (or 1 MiB is pending), and a
 * caller that can go quiet calls tfev_flush_if_due from its loop (or tfev_flush before it
 * blocks), so the file on disk is always a sequence of complete records and a crash loses
 * only the unflushed tail. Images and histograms from arrays live in tfev_tensor.c, the
 * graph of a model spec in tfev_model.{c,h}, so scalar-only users link neither. */
#ifndef PETCNN_TFEV_H
#define PETCNN_TFEV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tb/pb.h"
#include "array/tensor.h"

#define TFEV_FLUSH_SECONDS 2.0
#define TFEV_FILE_VERSION "brain.Event:2"

typedef struct {
	int fd;
	char *path;         /* the event file */
	struct buf event;       /* scratch: the Event being built */
	struct buf pending;     /* complete records not yet written */
	double last_flush;  /* monotonic seconds */
	int64_t records;
	int failed;         /* a write to the file failed: later writes are pointless */
} tfev_writer;

/* Creates logdir/run (run NULL or "": logdir itself), parents included, and a new event
 * file in it, then writes the file_version record. Never overwrites: a name already taken
 * gets a ".<n>" suffix, which sorts after it as TensorBoard reads a run's files in order. */
int tfev_open(tfev_writer *w, const char *logdir, const char *run, char *err);
/* Flushes and closes; frees everything even on failure. */
int tfev_close(tfev_writer *w, char *err);
/* Hands every complete record to the kernel. */
int tfev_flush(tfev_writer *w, char *err);
/* tfev_flush if TFEV_FLUSH_SECONDS have passed since the last one; a caller whose writes
 * can pause for long (a training step) calls this from its loop. */
int tfev_flush_if_due(tfev_writer *w, char *err);

int tfev_scalar(tfev_writer *w, int64_t step, const char *tag, double value, char *err);

/* Values TensorFlow's histogram cannot place: left out of num, sum, min, max and buckets,
 * counted here so the caller can say so. */
typedef struct {
	int64_t nan, posinf, neginf;
} tfev_nonfinite;

/* A histogram over TensorFlow's default bucket limits (histogram.cc: 1e-12 growing by 10%
 * while below 1e20, then DBL_MAX; the same mirrored negative; and 0), runs of empty
 * buckets collapsed into one as TensorFlow's EncodeToProto does. */
typedef struct {
	double min, max, num, sum, sum_squares;  /* min = max = 0 when num == 0 */
	size_t nbuckets;
	double *limit, *count;                   /* nbuckets each */
	tfev_nonfinite skipped;
} tfev_hist;

/* The default limits into out[cap]; returns how many there are (out may be NULL). */
size_t tfev_hist_default_limits(double *out, size_t cap);
/* From n doubles (vd) or n floats (vf): exactly one of them non-NULL. */
int tfev_hist_compute(tfev_hist *h, const double *vd, const float *vf, size_t n, char *err);
void tfev_hist_free(tfev_hist *h);
int tfev_histogram_write(tfev_writer *w, int64_t step, const char *tag, const tfev_hist *h,
			 char *err);
/* Compute and write in one go; skipped (may be NULL) receives the non-finite counts. */
int tfev_histogram(tfev_writer *w, int64_t step, const char *tag, const double *v, size_t n,
		   tfev_nonfinite *skipped, char *err);
int tfev_histogram_f(tfev_writer *w, int64_t step, const char *tag, const float *v, size_t n,
		     tfev_nonfinite *skipped, char *err);

/* Width, height and colour space (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) from a PNG's IHDR. */
int tfev_png_info(const void *png, size_t len, int *width, int *height, int *colorspace,
		  char *err);
/* An already encoded PNG as an image summary (size read from the PNG). */
int tfev_image_png(tfev_writer *w, int64_t step, const char *tag, const void *png, size_t len,
		   char *err);

/* Raw 8-bit pixels (row-major, channels 1 gray, 3 RGB or 4 RGBA) encoded to PNG with
 * imgenc_png (lib/img/imgenc.h) and written as an image summary. */
int tfev_image(tfev_writer *w, int64_t step, const char *tag, const uint8_t *pix, int width,
	       int height, int channels, char *err);
/* An array as an image: HxW, HxWx1, HxWx3 or HxWx4; uint8 as it is, float scaled from
 * [0, 1] (values outside clamped, NaN black). */
int tfev_image_tensor(tfev_writer *w, int64_t step, const char *tag, const tensor *t, char *err);
/* Every element of a numeric array (any shape, any numeric dtype) as a histogram. */
int tfev_histogram_tensor(tfev_writer *w, int64_t step, const char *tag, const tensor *t,
			  tfev_nonfinite *skipped, char *err);
/* One image's feature maps (h x w x c floats, HWC) tiled into a gray grid for an image
 * summary: cols = ceil(sqrt(c)) tiles across, each channel scaled to 0..255 by its own min
 * and max (a constant channel is mid-gray, NaN black), 1-pixel black lines between tiles.
 * *out is malloc'ed, *gw x *gh bytes. */
int tfev_grid(const float *hwc, int h, int w, int c, uint8_t **out, int *gw, int *gh, char *err);

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

/* Reading: records one by one, every CRC checked. */
enum {
	TFEV_REC_OK = 1,
	TFEV_REC_EOF = 0,       /* clean end: no byte of a new record */
	TFEV_REC_FATAL = -1,    /* truncated, bad length CRC, read error: stop */
	TFEV_REC_BADDATA = -2,  /* payload CRC wrong: this record skipped, the next is readable */
};

typedef struct {
	FILE *fp;
	int own;              /* fp opened by us (not stdin) */
	char *name;
	int64_t offset;       /* of the next record */
	int64_t size;         /* file size if regular, else -1 */
	unsigned char *buf;
	size_t cap;
} tfev_reader;

/* path "-" is stdin. */
int tfev_reader_open(tfev_reader *r, const char *path, char *err);
/* One of the TFEV_REC_ codes; on OK *payload (valid until the next call) and *len.
 * *offset receives the record's offset in every case. */
int tfev_reader_next(tfev_reader *r, const unsigned char **payload, size_t *len,
		     int64_t *offset, char *err);
void tfev_reader_close(tfev_reader *r);

/* Every file whose name contains "tfevents" under dir (recursively), sorted by path, as
 * TensorBoard orders a run's files. *paths and each string are malloc'ed: tfev_files_free. */
int tfev_find_files(const char *dir, char ***paths, size_t *n, char *err);
void tfev_files_free(char **paths, size_t n);

/* What one Event says, a value at a time (a Summary may hold several). Strings and bytes
 * are views into the payload, not NUL-terminated. */
enum tfev_kind {
	TFEV_VERSION, TFEV_SCALAR, TFEV_HISTOGRAM, TFEV_IMAGE, TFEV_TEXT, TFEV_TENSOR,
	TFEV_GRAPH, TFEV_EMPTY, TFEV_OTHER,
};

typedef struct {
	int64_t step;
	double wall_time;
	enum tfev_kind kind;
	const char *tag;               /* summary values only, else NULL */
	size_t tag_len;
	double value;                  /* SCALAR */
	double min, max, num, sum, sum_squares;  /* HISTOGRAM */
	pb_field limits, counts;       /* HISTOGRAM: pb_packed_count / pb_packed_double_at */
	int width, height, colorspace; /* IMAGE */
	const unsigned char *data;     /* VERSION string, IMAGE bytes, TEXT, GRAPH GraphDef, */
	size_t len;                    /* TENSOR TensorProto, OTHER field bytes */
	int field;                     /* OTHER: the Event or Value field number */
	int dtype;                     /* TENSOR: TensorProto dtype */
} tfev_item;

typedef struct {
	pb_reader ev, sum;
	int in_summary, emitted;
	int64_t step;
	double wall_time;
} tfev_iter;

int tfev_iter_init(tfev_iter *it, const void *payload, size_t len, char *err);
/* 1 and item filled, 0 when the Event is done, -1 if it is malformed. */
int tfev_iter_next(tfev_iter *it, tfev_item *item, char *err);

/* The nodes of a GraphDef in turn: 1 with name/op views, 0 at the end, -1 if malformed. */
typedef struct {
	const char *name, *op;
	size_t name_len, op_len;
	int ninputs;
} tfev_node_view;
int tfev_graph_next(pb_reader *graph, tfev_node_view *nv);

#endif
