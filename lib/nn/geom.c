/* geom: output sizes and padding for a window over an NHWC image (TensorFlow's SAME/VALID,
 * or explicit ONNX/PyTorch pads and ceil mode), shared by the convolution and pool layers. */
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

/* Offsets within one image are int32 (max-pool argmax) and K must fit an int. */
static int check_size(const geom *g, char *err)
{
	if ((int64_t)g->h * g->w * g->c > INT32_MAX || (int64_t)g->oh * g->ow * g->oc > INT32_MAX ||
	    (int64_t)g->kh * g->kw * g->c > INT32_MAX / 2)
		return err_set(err, "layer of %dx%dx%d too large", g->h, g->w, g->c);
	return 0;
}

/* What a window of k at stride s leaves of in + before after its last placement. */
static int pad_after(int in, int k, int s, int out, int before)
{
	long after = (long)(out - 1) * s + k - in - before;

	return after > 0 ? (int)after : 0;
}

int geom_init(geom *g, int h, int w, int c, int kh, int kw, int sh, int sw,
	      geom_pad pad, int oc, char *err)
{
	memset(g, 0, sizeof *g);
	if (h < 1 || w < 1 || c < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || oc < 1)
		return err_set(err, "window %dx%d stride %dx%d over %dx%dx%d: sizes must be positive",
			       kh, kw, sh, sw, h, w, c);
	g->h = h, g->w = w, g->c = c, g->kh = kh, g->kw = kw, g->sh = sh, g->sw = sw, g->oc = oc;
	g->groups = 1;
	g->oh = geom_out_size(h, kh, sh, pad, &g->pt);
	g->ow = geom_out_size(w, kw, sw, pad, &g->pl);
	if (g->oh < 1 || g->ow < 1)
		return err_set(err, "window %dx%d does not fit a %dx%d input (VALID)", kh, kw, h, w);
	if (pad == GEOM_SAME)
		g->pb = pad_after(h, kh, sh, g->oh, g->pt), g->pr = pad_after(w, kw, sw, g->ow, g->pl);
	return check_size(g, err);
}

/* Output length along one axis with explicit pads; <= 0 if no window fits. */
static int pads_out_size(int in, int k, int s, int before, int after, int ceil_mode)
{
	long span = (long)in + before + after - k, out;

	if (span < 0)
		return 0;
	out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
	/* the last window must start inside the input or its before-padding */
	if (ceil_mode && (out - 1) * s >= (long)in + before)
		out--;
	return out > INT32_MAX ? -1 : (int)out;
}

int geom_init_pads(geom *g, int h, int w, int c, int kh, int kw, int sh, int sw,
		   const int pads[4], int ceil_mode, int groups, int oc, char *err)
{
	memset(g, 0, sizeof *g);
	if (h < 1 || w < 1 || c < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || oc < 1)
		return err_set(err, "window %dx%d stride %dx%d over %dx%dx%d: sizes must be positive",
			       kh, kw, sh, sw, h, w, c);
	for (int i = 0; i < 4; i++)
		if (pads[i] < 0 || pads[i] > (i % 2 ? w : h) + (i % 2 ? kw : kh))
			return err_set(err, "pads %d,%d,%d,%d around %dx%d with a %dx%d window: each must be "
				       "in 0..input+window", pads[0], pads[1], pads[2], pads[3], h, w, kh, kw);
	if (groups < 1 || c % groups || oc % groups)
		return err_set(err, "%d groups must divide the %d input and %d output channels",
			       groups, c, oc);
	g->h = h, g->w = w, g->c = c, g->kh = kh, g->kw = kw, g->sh = sh, g->sw = sw, g->oc = oc;
	g->pt = pads[0], g->pl = pads[1], g->pb = pads[2], g->pr = pads[3], g->groups = groups;
	g->oh = pads_out_size(h, kh, sh, pads[0], pads[2], ceil_mode);
	g->ow = pads_out_size(w, kw, sw, pads[1], pads[3], ceil_mode);
	if (g->oh < 1 || g->ow < 1)
		return err_set(err, "window %dx%d does not fit a %dx%d input padded by %d,%d,%d,%d",
			       kh, kw, h, w, pads[0], pads[1], pads[2], pads[3]);
	return check_size(g, err);
}

void geom_window(int o, int s, int before, int k, int min, int max, int *lo, int *hi)
{
	int a = o * s - before, b = a + k;

	*lo = a > min ? a : min;
	*hi = b < max ? b : max;
}
