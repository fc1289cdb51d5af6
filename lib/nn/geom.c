/* geom: TensorFlow's output sizes and padding for a window over an NHWC image, shared by
 * the convolution and max-pool layers. */
#include "nn/geom.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "util/errmsg.h"

int geom_out_size(int in, int k, int stride, geom_pad pad, int *pad_before)
{
	int out;

	if (pad == GEOM_SAME) {
		long total;

		out = (in + stride - 1) / stride;
		total = (long)(out - 1) * stride + k - in;
		if (total < 0)
			total = 0;
		if (pad_before)
			*pad_before = (int)(total / 2);
		return out;
	}
	if (pad_before)
		*pad_before = 0;
	if (in < k)
		return 0;
	return (in - k + 1 + stride - 1) / stride;
}

int geom_init(geom *g, int h, int w, int c, int kh, int kw, int sh, int sw,
	      geom_pad pad, int oc, char *err)
{
	memset(g, 0, sizeof *g);
	if (h < 1 || w < 1 || c < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || oc < 1)
		return err_set(err, "window %dx%d stride %dx%d over %dx%dx%d: sizes must be positive",
			       kh, kw, sh, sw, h, w, c);
	g->groups = 1;
	g->h = h, g->w = w, g->c = c, g->kh = kh, g->kw = kw, g->sh = sh, g->sw = sw, g->oc = oc;
	g->oh = geom_out_size(h, kh, sh, pad, &g->pt);
	g->ow = geom_out_size(w, kw, sw, pad, &g->pl);
	if (g->oh < 1 || g->ow < 1)
		return err_set(err, "window %dx%d does not fit a %dx%d input (VALID)", kh, kw, h, w);
	/* Offsets within one image are int32 (max-pool argmax) and K must fit an int. */
	if ((int64_t)h * w * c > INT32_MAX || (int64_t)g->oh * g->ow * oc > INT32_MAX ||
	    (int64_t)kh * kw * c > INT32_MAX / 2)
		return err_set(err, "layer of %dx%dx%d too large", h, w, c);
	return 0;
}

int geom_init_pads(geom *g, int h, int w, int c, int kh, int kw, int sh, int sw, const int pads[4], int ceil_mode, int groups, int oc, char *err)
{
	memset(g, 0, sizeof *g);
	g->h = h, g->w = w, g->c = c, g->kh = kh, g->kw = kw, g->sh = sh, g->sw = sw, g->oc = oc, g->groups = groups;
	g->pt = pads[0], g->pl = pads[1], g->pb = pads[2], g->pr = pads[3];
	(void)ceil_mode;
	g->oh = (h + pads[0] + pads[2] - kh) / sh + 1;
	g->ow = (w + pads[1] + pads[3] - kw) / sw + 1;
	if (g->oh < 1 || g->ow < 1)
		return err_set(err, "does not fit");
	return 0;
}
