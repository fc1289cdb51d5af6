#include "img/grid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"
#include "array/tensor.h"

/* Digits 0-9, 3 pixels wide and 5 high: one row per byte, bit 2 the left column. */
static const uint8_t FONT[10][5] = {
	{ 7, 5, 5, 5, 7 }, { 2, 6, 2, 2, 7 }, { 7, 1, 7, 4, 7 }, { 7, 1, 7, 1, 7 },
	{ 5, 5, 7, 1, 1 }, { 7, 4, 7, 1, 7 }, { 7, 4, 7, 5, 7 }, { 7, 1, 1, 1, 1 },
	{ 7, 5, 7, 5, 7 }, { 7, 5, 7, 1, 7 },
};

void grid_opts_default(grid_opts *o)
{
	memset(o, 0, sizeof *o);
	o->scale = 1;
	o->gap = 2;
	o->labels = 1;
}

static int digits(int64_t v)
{
	int d = 1;

	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

static int columns(const grid_cells *c, const grid_opts *o)
{
	int cols = o->cols > 0 ? o->cols : (int)ceil(sqrt((double)c->n));

	return cols < c->n ? cols : c->n;
}

/* Box size in pixels (int64 so that callers can check before narrowing). */
static void box_size(const grid_cells *c, const grid_opts *o, int64_t *bw, int64_t *bh)
{
	int64_t label_w = o->labels ? 4 * (int64_t)digits(c->label0 + c->n - 1) + 1 : 0;

	*bw = (int64_t)c->w * o->scale;
	if (*bw < label_w)
		*bw = label_w;
	*bh = (int64_t)c->h * o->scale + (o->labels ? GRID_LABEL_H : 0);
}

int grid_size(const grid_cells *c, const grid_opts *o, int *gw, int *gh, char *err)
{
	int64_t bw, bh, W, H;
	int cols, rows;

	if (c->n < 1 || c->h < 1 || c->w < 1 || (c->ch != 1 && c->ch != 3) || c->label0 < 0)
		return err_set(err, "grid: bad cells (%d of %dx%dx%d)", c->n, c->h, c->w, c->ch);
	if (o->scale < 1 || o->scale > 4096 || o->gap < 0 || o->gap > 4096 || o->cols < 0)
		return err_set(err, "grid: bad layout (scale %d, gap %d, cols %d)", o->scale, o->gap,
			       o->cols);
	cols = columns(c, o);
	rows = (c->n + cols - 1) / cols;
	box_size(c, o, &bw, &bh);
	W = cols * bw + (int64_t)(cols - 1) * o->gap;
	H = rows * bh + (int64_t)(rows - 1) * o->gap;
	if (W > GRID_MAX_SIDE || H > GRID_MAX_SIDE)
		return err_set(err, "grid: a %lldx%lld picture is too large (at most %d a side): "
			       "pick fewer cells or a smaller scale", (long long)W, (long long)H,
			       GRID_MAX_SIDE);
	*gw = (int)W;
	*gh = (int)H;
	return 0;
}

void grid_cell_origin(const grid_cells *c, const grid_opts *o, int k, int *x, int *y)
{
	int cols = columns(c, o);
	int64_t bw, bh;

	box_size(c, o, &bw, &bh);
	*x = (int)((k % cols) * (bw + o->gap));
	*y = (int)((k / cols) * (bh + o->gap) + (o->labels ? GRID_LABEL_H : 0));
}

void grid_text(uint8_t *pix, int gw, int ch, int x0, int y0, int64_t v)
{
	char s[24];
	int n = snprintf(s, sizeof s, "%lld", (long long)v);

	for (int i = 0; i < n; i++)
		for (int r = 0; r < 5; r++)
			for (int b = 0; b < 3; b++) {
				if (!(FONT[s[i] - '0'][r] >> (2 - b) & 1))
					continue;
				uint8_t *p = pix + ((size_t)(y0 + r) * gw + x0 + 4 * i + b) * ch;
				memset(p, 255, (size_t)ch);
			}
}

static float value(const grid_cells *c, int k, int y, int x, int ch)
{
	return tensor_elem_f4(c->data, (enum tensor_dtype)c->dtype,
			      c->base + k * c->sn + y * c->sy + x * c->sx + ch * c->sc);
}

/* The range cell k is scaled from: fixed, or its finite min and max. */
static void cell_range(const grid_cells *c, const grid_opts *o, int k, double *lo, double *hi)
{
	*lo = INFINITY, *hi = -INFINITY;
	if (o->fixed) {
		*lo = o->lo, *hi = o->hi;
		return;
	}
	for (int y = 0; y < c->h; y++)
		for (int x = 0; x < c->w; x++)
			for (int ch = 0; ch < c->ch; ch++) {
				float v = value(c, k, y, x, ch);
				if (!isfinite(v))
					continue;
				if (v < *lo)
					*lo = v;
				if (v > *hi)
					*hi = v;
			}
}

static uint8_t to_byte(float v, double lo, double hi)
{
	double t;

	if (isnan(v))
		return 0;
	if (!(hi > lo))
		return 128;    /* a constant (or empty) cell: no contrast to show */
	t = ((double)v - lo) / (hi - lo);
	if (t <= 0)
		return 0;
	if (t >= 1)
		return 255;
	return (uint8_t)lrint(t * 255.0);
}

int grid_draw(const grid_cells *c, const grid_opts *o, uint8_t **out, int *gw, int *gh,
	      char *err)
{
	uint8_t *pix;
	int W, H, S = o->scale;

	if (grid_size(c, o, &W, &H, err))
		return -1;
	pix = calloc((size_t)W * H, (size_t)c->ch);
	if (!pix)
		return err_set(err, "grid: out of memory for a %dx%d picture", W, H);
	for (int k = 0; k < c->n; k++) {
		double lo, hi;
		int x0, y0;

		grid_cell_origin(c, o, k, &x0, &y0);
		if (o->labels)
			grid_text(pix, W, c->ch, x0 + 1, y0 - GRID_LABEL_H + 1, c->label0 + k);
		cell_range(c, o, k, &lo, &hi);
		for (int y = 0; y < c->h; y++)
			for (int x = 0; x < c->w; x++)
				for (int ch = 0; ch < c->ch; ch++) {
					uint8_t b = to_byte(value(c, k, y, x, ch), lo, hi);
					for (int dy = 0; dy < S; dy++)
						for (int dx = 0; dx < S; dx++) {
							size_t py = (size_t)y0 + (size_t)y * S + dy;
							size_t px = (size_t)x0 + (size_t)x * S + dx;
							pix[(py * W + px) * c->ch + ch] = b;
						}
				}
	}
	*out = pix;
	*gw = W;
	*gh = H;
	return 0;
}

int grid_cells_from(grid_cells *c, const void *data, int dtype, int ndim, const int64_t *shape, int maps,
		    int64_t index, const char *name, char *err)
{
	int64_t N = ndim == 4 ? shape[0] : 1, H, W, C = ndim == 2 ? 1 : shape[ndim - 1];

	memset(c, 0, sizeof *c);
	if (dtype != DT_U1 && dtype != DT_I4 && dtype != DT_I8 && dtype != DT_F4 && dtype != DT_F8)
		return err_set(err, "%s: strings are not pictures", name);
	if (ndim < 2 || ndim > 4)
		return err_set(err, "%s: %d dimensions: not images ([N, H, W, C], [H, W, C] or [H, W])",
			       name, ndim);
	H = shape[ndim == 4], W = shape[(ndim == 4) + 1];
	if (N < 1 || H < 1 || W < 1 || C < 1)
		return err_set(err, "%s: an empty array has nothing to draw", name);
	if (H > GRID_MAX_SIDE || W > GRID_MAX_SIDE || C > INT32_MAX || N > INT32_MAX)
		return err_set(err, "%s: %lldx%lld images are too large to draw", name,
			       (long long)H, (long long)W);
	if (index >= N)
		return err_set(err, "%s: no image %lld in a batch of %lld", name, (long long)index,
			       (long long)N);
	c->data = data;
	c->dtype = dtype;
	c->h = (int)H, c->w = (int)W;
	c->sy = W * C, c->sx = C;
	if (!maps && (C == 1 || C == 3)) {
		c->n = index >= 0 ? 1 : (int)N;
		c->ch = (int)C;
		c->sn = H * W * C, c->sc = 1;
		c->label0 = index >= 0 ? index : 0;
		c->base = (index >= 0 ? index : 0) * c->sn;
		return 0;
	}
	c->n = (int)C;
	c->ch = 1;
	c->sn = 1, c->sc = 0;
	c->base = (index >= 0 ? index : 0) * H * W * C;
	return 0;
}
