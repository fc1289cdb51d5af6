/* tfev_read: what the Events of event files say, a summary value at a time, and where a
 * log folder's event files are (records themselves: tfrecord.h; fields: tfev.h). */
#ifndef PETCNN_TFEV_READ_H
#define PETCNN_TFEV_READ_H

#include <stddef.h>
#include <stdint.h>

#include "tb/pb.h"

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
