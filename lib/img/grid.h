/* grid: tensors as pictures for tensor-png: image batches or feature maps tiled into one
 * 8-bit picture, each cell scaled to 0..255, its index written above it in a 3x5 font. */
#ifndef PETCNN_GRID_H
#define PETCNN_GRID_H

#include <stdint.h>

/* Layout: cells fill rows of cols; cell k's box is at column k % cols, row k / cols, boxes
 * gap background pixels apart. A box is the label strip (GRID_LABEL_H pixels, only with
 * labels) over the cell's h*scale x w*scale pixels, left-aligned; a box is as wide as the
 * cell or its widest label, whichever is wider. Background is black, labels white. */
#define GRID_LABEL_H 7
#define GRID_MAX_SIDE 65535

/* The values: n cells of h x w pixels with ch channels (1 gray, 3 RGB); value (k, y, x, c)
 * is element k * sn + y * sy + x * sx + c * sc of data, of a numeric tensor dtype (u1 i4
 * i8 f4 f8, tensor.h), so an image batch [N, H, W, C] and the C channels of one feature
 * map [H, W, C] are both views of the array as read, without a copy. */
typedef struct {
	const void *data;
	int dtype;
	int n, h, w, ch;
	int64_t base;       /* element of cell 0's first value */
	int64_t sn, sy, sx, sc;
	int64_t label0;     /* cell k is labelled label0 + k */
} grid_cells;

typedef struct {
	int cols;           /* cells across; 0: ceil(sqrt(n)) */
	int scale;          /* each value drawn as scale x scale pixels, >= 1 */
	int gap;            /* pixels between boxes, >= 0 */
	int labels;         /* draw the index above each cell */
	int fixed;          /* scale lo..hi to 0..255 in every cell (clamped); else each
	                     * cell's own finite min..max (a constant cell is mid-gray) */
	double lo, hi;      /* fixed range, lo < hi */
} grid_opts;

/* The cells of one array (data of a numeric dtype, shape[ndim], ndim 2 to 4; name labels
 * errors): [N, H, W, 1|3] is a batch of N images (index >= 0: image index alone), [H, W, C]
 * a batch of one, [H, W] one gray image; with maps set, or any other C, the cells are the
 * C channels (feature maps) of image index (-1: 0) as gray pictures. */
int grid_cells_from(grid_cells *c, const void *data, int dtype, int ndim, const int64_t *shape, int maps,
		    int64_t index, const char *name, char *err);

/* cols 0, scale 1, gap 2, labels on, per-cell range. */
void grid_opts_default(grid_opts *o);

/* The picture's width and height; -1 if a side exceeds GRID_MAX_SIDE or a size is bad. */
int grid_size(const grid_cells *c, const grid_opts *o, int *gw, int *gh, char *err);
/* Top-left pixel of cell k's values (below its label). */
void grid_cell_origin(const grid_cells *c, const grid_opts *o, int k, int *x, int *y);
/* Writes the digits of v >= 0 white in the 3x5 font, 4 pixels apart, top-left at (x0, y0)
 * of a picture gw pixels wide with ch channels (the caller makes room). */
void grid_text(uint8_t *pix, int gw, int ch, int x0, int y0, int64_t v);
/* Draws the grid into *out (malloc'ed, gw * gh * ch bytes, row-major interleaved). */
int grid_draw(const grid_cells *c, const grid_opts *o, uint8_t **out, int *gw, int *gh,
	      char *err);

#endif
