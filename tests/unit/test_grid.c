/* grid: layout arithmetic, the views grid_cells_from makes, scaling and its edge cases. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util/errmsg.h"
#include "img/grid.h"
#include "array/tensor.h"

static void test_layout(void)
{
	float v[3 * 2 * 2] = { 0 };
	grid_cells c = { .data = v, .dtype = DT_F4, .n = 3, .h = 2, .w = 2, .ch = 1,
			 .sn = 4, .sy = 2, .sx = 1, .label0 = 98 };
	grid_opts o;
	char err[ERR_MAX];
	int w, h, x, y;

	grid_opts_default(&o);
	/* labels 98..100: three digits, 4 * 3 + 1 = 13 pixels, wider than the 2-pixel cell */
	CHECK(grid_size(&c, &o, &w, &h, err) == 0, "%s", err);
	CHECK(w == 2 * 13 + 2 && h == 2 * (2 + GRID_LABEL_H) + 2, "%dx%d", w, h);
	grid_cell_origin(&c, &o, 2, &x, &y);
	CHECK(x == 0 && y == (2 + GRID_LABEL_H) + 2 + GRID_LABEL_H, "cell 2 at %d,%d", x, y);
	o.labels = 0, o.scale = 5, o.cols = 3, o.gap = 0;
	CHECK(grid_size(&c, &o, &w, &h, err) == 0 && w == 30 && h == 10, "%dx%d", w, h);
	/* more columns than cells: no empty columns */
	o.cols = 10;
	CHECK(grid_size(&c, &o, &w, &h, err) == 0 && w == 30, "%d", w);
	o.scale = 4096, o.cols = 0, c.w = 100;
	CHECK(grid_size(&c, &o, &w, &h, err) == -1 && strstr(err, "too large"), "%s", err);
	c.ch = 2, c.w = 2;
	grid_opts_default(&o);
	CHECK(grid_size(&c, &o, &w, &h, err) == -1, "2 channels accepted");
}

static void test_views(void)
{
	int64_t batch[4] = { 5, 4, 3, 3 }, maps[4] = { 2, 4, 3, 7 }, one[2] = { 4, 3 };
	unsigned char d[5 * 4 * 3 * 3] = { 0 };
	grid_cells c;
	char err[ERR_MAX];

	CHECK(grid_cells_from(&c, d, DT_U1, 4, batch, 0, -1, "x", err) == 0, "%s", err);
	CHECK(c.n == 5 && c.ch == 3 && c.sn == 36 && c.sy == 9 && c.sx == 3 && c.sc == 1 &&
	      c.base == 0 && c.label0 == 0, "batch view");
	CHECK(grid_cells_from(&c, d, DT_U1, 4, batch, 0, 3, "x", err) == 0, "%s", err);
	CHECK(c.n == 1 && c.base == 3 * 36 && c.label0 == 3, "index view");
	CHECK(grid_cells_from(&c, d, DT_U1, 4, batch, 1, 4, "x", err) == 0, "%s", err);
	CHECK(c.n == 3 && c.ch == 1 && c.sn == 1 && c.base == 4 * 36 && c.label0 == 0, "--maps");
	CHECK(grid_cells_from(&c, d, DT_F4, 4, maps, 0, -1, "x", err) == 0, "%s", err);
	CHECK(c.n == 7 && c.ch == 1 && c.sy == 21 && c.sx == 7 && c.base == 0, "maps view");
	CHECK(grid_cells_from(&c, d, DT_F4, 2, one, 0, -1, "x", err) == 0, "%s", err);
	CHECK(c.n == 1 && c.ch == 1 && c.h == 4 && c.w == 3, "2-d view");
	CHECK(grid_cells_from(&c, d, DT_U1, 4, batch, 0, 5, "x", err) == -1 &&
	      strstr(err, "x: no image 5 in a batch of 5"), "%s", err);
	CHECK(grid_cells_from(&c, d, DT_U, 2, one, 0, -1, "x", err) == -1, "strings drawn");
}

static void test_scaling(void)
{
	/* cell 0: ramp -1 .. 1 with a NaN and an inf; cell 1: constant */
	float v[2][4] = { { -1, 1, NAN, INFINITY }, { 3, 3, 3, 3 } };
	double d[2][4] = { { -1, 1, 0, 1 }, { 3, 3, 3, 3 } };
	grid_cells c = { .data = v, .dtype = DT_F4, .n = 2, .h = 1, .w = 4, .ch = 1,
			 .sn = 4, .sy = 4, .sx = 1 };
	grid_opts o;
	uint8_t *pix;
	int w, h, x, y;
	char err[ERR_MAX];

	grid_opts_default(&o);
	o.labels = 0;
	o.gap = 1;
	o.cols = 1;
	CHECK(grid_draw(&c, &o, &pix, &w, &h, err) == 0, "%s", err);
	CHECK(w == 4 && h == 3, "%dx%d", w, h);
	CHECK(pix[0] == 0 && pix[1] == 255 && pix[2] == 0 && pix[3] == 255, "%d %d %d %d",
	      pix[0], pix[1], pix[2], pix[3]);
	CHECK(pix[4] == 0 && pix[8] == 128 && pix[11] == 128, "gap %d, constant %d", pix[4], pix[8]);
	free(pix);
	/* a fixed range clamps; f8 data reads the same */
	c.data = d, c.dtype = DT_F8;
	o.fixed = 1, o.lo = 0, o.hi = 2;
	CHECK(grid_draw(&c, &o, &pix, &w, &h, err) == 0, "%s", err);
	grid_cell_origin(&c, &o, 1, &x, &y);
	CHECK(pix[0] == 0 && pix[1] == 128 && pix[2] == 0 && pix[y * w + x] == 255,
	      "%d %d %d %d", pix[0], pix[1], pix[2], pix[y * w + x]);
	free(pix);
}

/* The feature-map grid of cnn-train's TensorBoard images (lib/tb/trainlog.c): the channels
 * of one HxWxC map, 1-pixel gaps, no labels. */
static void test_maps(void)
{
	/* 2x3 maps, 5 channels: channel k holds k*100 + y*3 + x, except channel 4 constant. */
	float m[2 * 3 * 5];
	int64_t shape[3] = { 2, 3, 5 };
	grid_cells c;
	grid_opts o;
	uint8_t *g;
	int gw, gh;
	char err[ERR_MAX];

	for (int y = 0; y < 2; y++)
		for (int x = 0; x < 3; x++)
			for (int k = 0; k < 5; k++)
				m[(y * 3 + x) * 5 + k] = k == 4 ? 7.0f : (float)(k * 100 + y * 3 + x);
	grid_opts_default(&o);
	o.gap = 1;
	o.labels = 0;
	CHECK(grid_cells_from(&c, m, DT_F4, 3, shape, 1, -1, "m", err) == 0, "%s", err);
	CHECK(grid_draw(&c, &o, &g, &gw, &gh, err) == 0, "grid: %s", err);
	/* ceil(sqrt(5)) = 3 columns, 2 rows: 3*3 + 2 wide, 2*2 + 1 high. */
	CHECK(gw == 11 && gh == 5, "grid size %dx%d", gw, gh);
	CHECK(g[0] == 0 && g[2] == 102, "tile 0 row 0 is 0, 2/5: %d %d", g[0], g[2]);
	CHECK(g[1 * 11 + 2] == 255 && g[1 * 11 + 0] == 153, "tile 0 row 1: %d %d", g[13], g[11]);
	CHECK(g[4] == 0 && g[6] == 102 && g[8] == 0, "tiles 1 and 2 at x=4, 8: %d %d", g[4], g[6]);
	CHECK(g[3] == 0 && g[2 * 11 + 0] == 0, "separators are black");
	CHECK(g[3 * 11 + 4] == 128 && g[4 * 11 + 6] == 128, "constant channel is mid-gray");
	CHECK(g[3 * 11 + 8] == 0 && g[4 * 11 + 10] == 0, "unused tile black");
	free(g);
	/* An infinity is drawn at the end of the scale, not allowed to flatten its channel. */
	m[0] = INFINITY;
	m[1] = -INFINITY;
	CHECK(grid_draw(&c, &o, &g, &gw, &gh, err) == 0, "grid: %s", err);
	CHECK(g[0] == 255 && g[4] == 0 && g[1 * 11 + 2] == 255 && g[1 * 11 + 6] == 255,
	      "+inf white, -inf black, the rest scaled by the finite range: %d %d %d %d", g[0],
	      g[4], g[13], g[17]);
	free(g);
	shape[0] = 0;
	CHECK(grid_cells_from(&c, m, DT_F4, 3, shape, 1, -1, "m", err) == -1, "empty refused");
}

int main(void)
{
	test_layout();
	test_views();
	test_scaling();
	test_maps();
	return check_done("test_grid");
}
