/* colormap: matplotlib's jet, viridis and inferno (256-entry tables, cmap_tables.c, made
 * by tests/colormaps.py), maps drawn over their images with them, and a colour bar. */
#include "img/colormap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "array/tensor.h"
#include "util/errmsg.h"

static const cmap CMAPS[] = {
	{ "jet", cmap_jet }, { "viridis", cmap_viridis }, { "inferno", cmap_inferno },
};

const cmap *cmap_find(const char *name)
{
	for (size_t i = 0; i < sizeof CMAPS / sizeof *CMAPS; i++)
		if (!strcmp(CMAPS[i].name, name))
			return &CMAPS[i];
	return NULL;
}

const float *cmap_color(const cmap *c, double t)
{
	double x = t * 256;
	int i = x >= 255 ? 255 : x > 0 ? (int)x : 0;    /* NaN fails both tests: 0 */

	return c->rgb[i];
}

void cmap_normalize(float *t, const float *v, size_t n, int fixed, double lo, double hi)
{
	if (!fixed) {
		lo = INFINITY, hi = -INFINITY;
		for (size_t i = 0; i < n; i++)
			if (isfinite(v[i])) {
				lo = v[i] < lo ? v[i] : lo;
				hi = v[i] > hi ? v[i] : hi;
			}
	}
	for (size_t i = 0; i < n; i++) {
		double x = isfinite(v[i]) && hi > lo ? ((double)v[i] - lo) / (hi - lo) : 0;
		t[i] = (float)(x < 0 ? 0 : x > 1 ? 1 : x);
	}
}

void cmap_blend(uint8_t *out, const float *t, const uint8_t *img, int ch, size_t hw,
		const cmap *c, double alpha)
{
	for (size_t i = 0; i < hw; i++) {
		const float *rgb = cmap_color(c, t[i]);

		for (int k = 0; k < 3; k++) {
			double p = img[i * ch + (ch == 3 ? k : 0)];
			out[i * 3 + k] = (uint8_t)lrint((1 - alpha) * p + alpha * 255.0 * rgb[k]);
		}
	}
}

int cmap_overlay(uint8_t **out, const grid_cells *maps, const uint8_t *images, int ich,
		 const grid_opts *o, const cmap *c, double alpha, char *err)
{
	size_t hw = (size_t)maps->h * maps->w, n = (size_t)maps->n;
	float *v;          /* [2, hw]: one map's values, then their normalised t */
	uint8_t *rgb;      /* [n, hw, 3] */

	if (maps->ch != 1)
		return err_set(err, "overlay: maps have one channel, not %d", maps->ch);
	v = malloc(hw * 2 * sizeof *v);
	rgb = n && hw <= SIZE_MAX / 3 / n ? malloc(n * hw * 3) : NULL;
	if (!v || !rgb) {
		free(v), free(rgb);
		return err_set(err, "overlay: out of memory for %zu %dx%d images", n, maps->w, maps->h);
	}
	for (size_t k = 0; k < n; k++) {
		const uint8_t *img = images + (size_t)(maps->label0 + (int64_t)k) * hw * ich;

		for (int y = 0; y < maps->h; y++)
			for (int x = 0; x < maps->w; x++)
				v[(size_t)y * maps->w + x] = tensor_elem_f4(
					maps->data, maps->dtype,
					maps->base + (int64_t)k * maps->sn + y * maps->sy + x * maps->sx);
		cmap_normalize(v + hw, v, hw, o->fixed, o->lo, o->hi);
		cmap_blend(rgb + k * hw * 3, v + hw, img, ich, hw, c, alpha);
	}
	free(v);
	*out = rgb;
	return 0;
}

int cmap_add_bar(uint8_t **pix, int *w, int h, int top, int gap, const cmap *c, char *err)
{
	int bx = *w + gap, W = bx + CMAP_BAR_W + 5, bh = h - top;
	uint8_t *p;

	if (W > GRID_MAX_SIDE || bh < 1)
		return err_set(err, "overlay: no room for a colour bar beside a %dx%d picture", *w, h);
	p = calloc((size_t)W * h, 3);
	if (!p)
		return err_set(err, "overlay: out of memory for a %dx%d picture", W, h);
	for (int y = 0; y < h; y++)
		memcpy(p + (size_t)y * W * 3, *pix + (size_t)y * *w * 3, (size_t)*w * 3);
	for (int y = 0; y < bh; y++) {
		const float *rgb = cmap_color(c, bh > 1 ? 1 - (double)y / (bh - 1) : 1);

		for (int x = 0; x < CMAP_BAR_W; x++)
			for (int k = 0; k < 3; k++)
				p[((size_t)(top + y) * W + bx + x) * 3 + k] = (uint8_t)lrint(255.0 * rgb[k]);
	}
	if (bh >= 11) {
		grid_text(p, W, 3, bx + CMAP_BAR_W + 1, top, 1);
		grid_text(p, W, 3, bx + CMAP_BAR_W + 1, h - 5, 0);
	}
	free(*pix);
	*pix = p;
	*w = W;
	return 0;
}
