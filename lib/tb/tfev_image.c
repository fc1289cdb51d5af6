/* tfev_image: PNG image summaries; pixels and arrays go through lib/img's PNG encoder.
 * See tfev_image.h. */
#include "tb/tfev_image.h"

#include "img/imgenc.h"
#include "tb/tfev.h"
#include "util/errmsg.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int tfev_png_info(const void *png, size_t len, int *width, int *height, int *colorspace,
		  char *err)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	const unsigned char *p = png;
	uint32_t wd, ht;

	/* Signature, then the IHDR chunk: length 13, "IHDR", width, height (big-endian),
	 * bit depth, colour type. */
	if (len < 33 || memcmp(p, sig, 8) || memcmp(p + 12, "IHDR", 4))
		return err_set(err, "not a PNG file");
	wd = (uint32_t)p[16] << 24 | (uint32_t)p[17] << 16 | (uint32_t)p[18] << 8 | p[19];
	ht = (uint32_t)p[20] << 24 | (uint32_t)p[21] << 16 | (uint32_t)p[22] << 8 | p[23];
	if (!wd || !ht || wd > INT_MAX || ht > INT_MAX)
		return err_set(err, "PNG with a bad size %ux%u", wd, ht);
	*width = (int)wd;
	*height = (int)ht;
	switch (p[25]) {
	case 0: *colorspace = 1; break;            /* gray */
	case 4: *colorspace = 2; break;            /* gray + alpha */
	case 2: case 3: *colorspace = 3; break;    /* RGB, palette */
	case 6: *colorspace = 4; break;            /* RGBA */
	default:
		return err_set(err, "PNG with an unknown colour type %d", p[25]);
	}
	return 0;
}

int tfev_image_png(tfev_writer *w, int64_t step, const char *tag, const void *png, size_t len,
		   char *err)
{
	int width, height, cs;
	size_t mark[2], m;
	char why[ERR_MAX];

	if (tfev_png_info(png, len, &width, &height, &cs, why))
		return err_set(err, "%s: image %s: %s", w->out.path, tag, why);
	if (tfev_value_begin(w, step, tag, mark, err))
		return -1;
	m = pb_begin(&w->event, TFEV_VAL_IMAGE);
	pb_int(&w->event, TFEV_IMG_HEIGHT, height);
	pb_int(&w->event, TFEV_IMG_WIDTH, width);
	pb_int(&w->event, TFEV_IMG_COLORSPACE, cs);
	pb_bytes(&w->event, TFEV_IMG_DATA, png, len);
	pb_end(&w->event, m);
	return tfev_value_end(w, mark, err);
}

int tfev_image(tfev_writer *w, int64_t step, const char *tag, const uint8_t *pix, int width,
	       int height, int channels, char *err)
{
	unsigned char *png;
	size_t len;
	char why[ERR_MAX];
	int rc;

	if (imgenc_png(pix, width, height, channels, &png, &len, why))
		return err_set(err, "%s: image %s: %s", w->out.path, tag, why);
	rc = tfev_image_png(w, step, tag, png, len, err);
	free(png);
	return rc;
}

int tfev_image_tensor(tfev_writer *w, int64_t step, const char *tag, const tensor *t, char *err)
{
	int64_t h, wd, c, n;
	uint8_t *pix;
	int rc;

	c = t->ndim == 3 ? t->shape[2] : 1;
	if ((t->ndim != 2 && t->ndim != 3) || (c != 1 && c != 3 && c != 4)) {
		char shape[160] = "";
		size_t k = 0;

		for (int d = 0; d < t->ndim && k < sizeof shape - 24; d++)
			k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", d ? "x" : "",
					      (long long)t->shape[d]);
		return err_set(err, "an image array is HxW, HxWx1, HxWx3 or HxWx4, not %s",
			       t->ndim ? shape : "a scalar");
	}
	h = t->shape[0];
	wd = t->shape[1];
	if (h < 1 || wd < 1 || h > 65535 || wd > 65535)
		return err_set(err, "image size %lldx%lld out of range 1..65535",
			       (long long)wd, (long long)h);
	if (t->dtype == DT_U1)
		return tfev_image(w, step, tag, t->data, (int)wd, (int)h, (int)c, err);
	if (t->dtype != DT_F4 && t->dtype != DT_F8)
		return err_set(err, "an image array is uint8 (0-255) or float (0-1), not %s",
			       tensor_dtype_name(t->dtype));
	n = h * wd * c;
	pix = malloc((size_t)n);
	if (!pix)
		return err_set(err, "out of memory for a %lldx%lld image", (long long)wd, (long long)h);
	for (int64_t i = 0; i < n; i++) {
		double x = t->dtype == DT_F4 ? ((const float *)t->data)[i] : ((const double *)t->data)[i];
		/* Clamped: values a hair outside [0, 1] from arithmetic are not worth an error. */
		x = isnan(x) ? 0 : x < 0 ? 0 : x > 1 ? 1 : x;
		pix[i] = (uint8_t)lrint(x * 255);
	}
	rc = tfev_image(w, step, tag, pix, (int)wd, (int)h, (int)c, err);
	free(pix);
	return rc;
}
