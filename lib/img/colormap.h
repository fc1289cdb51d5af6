/* colormap: matplotlib's jet, viridis and inferno (256-entry tables, cmap_tables.c, made
 * by tests/colormaps.py), maps drawn over their images with them, and a colour bar. */
#ifndef PETCNN_COLORMAP_H
#define PETCNN_COLORMAP_H

#include <stddef.h>
#include <stdint.h>

#include "img/grid.h"

extern const float cmap_jet[256][3], cmap_viridis[256][3], cmap_inferno[256][3];

typedef struct {
	const char *name;
	const float (*rgb)[3];  /* [256][3] in [0, 1] */
} cmap;

/* The colormap called name, or NULL. CMAP_NAMES lists them for messages and help. */
#define CMAP_NAMES "jet, viridis, inferno"
const cmap *cmap_find(const char *name);

/* The colour of t as matplotlib's Colormap(t) for a float t: entry floor(t * 256),
 * clipped to 0..255 (NaN: entry 0). */
const float *cmap_color(const cmap *c, double t);

/* Per image, values to [0, 1]: (v - min) / (max - min) over its finite values, a constant
 * (or all non-finite) map all 0; with fixed, (v - lo) / (hi - lo) clipped. Non-finite
 * values become 0. t [n], v [n]. */
void cmap_normalize(float *t, const float *v, size_t n, int fixed, double lo, double hi);

/* One image's overlay: out = round((1 - alpha) * image + alpha * 255 * colour(t)) per
 * channel, so alpha 0 gives the image and alpha 1 the colormap. out [hw, 3], t [hw],
 * img [hw, ch] (ch 1: gray, repeated). */
void cmap_blend(uint8_t *out, const float *t, const uint8_t *img, int ch, size_t hw,
		const cmap *c, double alpha);

/* The maps (cells of ch 1) over images [>= label0 + n, h, w, ich] (uint8, cell k over
 * image label0 + k) as an RGB batch *out [n, h, w, 3] (malloc'ed), each map normalised as
 * cmap_normalize (o->fixed: o->lo..o->hi). */
int cmap_overlay(uint8_t **out, const grid_cells *maps, const uint8_t *images, int ich,
		 const grid_opts *o, const cmap *c, double alpha, char *err);

/* Widens an RGB picture (*pix [*w, h, 3], realloc'ed) by a colour bar at its right: gap
 * background pixels, CMAP_BAR_W pixels of the colormap from 1 at row top to 0 at the
 * bottom row, and "1" and "0" in grid digits beside its ends (when it is tall enough). */
#define CMAP_BAR_W 8
int cmap_add_bar(uint8_t **pix, int *w, int h, int top, int gap, const cmap *c, char *err);

#endif
