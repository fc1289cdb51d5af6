/* tfev_tensor: summaries from arrays: raw pixels or a .npy image to a PNG image summary,
 * any numeric array to a histogram. Apart from tfev.c so that programs which only log
 * scalars do not pull in the PNG encoder (lib/imgenc) and the tensor module. See tfev.h. */
#include "tb/tfev.h"

#include "util/errmsg.h"
#include "img/imgenc.h"

#include <math.h>
#include <stdlib.h>

int tfev_image(tfev_writer *w, int64_t step, const char *tag, const uint8_t *pix, int width,
	       int height, int channels, char *err)
{
	unsigned char *png;
	size_t len;
	char why[ERR_MAX];
	int rc;

	if (imgenc_png(pix, width, height, channels, &png, &len, why))
		return err_set(err, "%s: image %s: %s", w->path, tag, why);
	rc = tfev_image_png(w, step, tag, png, len, err);
	free(png);
	return rc;
}

int tfev_histogram_tensor(tfev_writer *w, int64_t step, const char *tag, const tensor *t,
			  tfev_nonfinite *skipped, char *err)
{
	int64_t n = tensor_numel(t);
	double *v;
	int rc;

	if (n < 0)
		return err_set(err, "array too large");
	if (t->dtype == DT_F4)
		return tfev_histogram_f(w, step, tag, t->data, (size_t)n, skipped, err);
	if (t->dtype == DT_F8)
		return tfev_histogram(w, step, tag, t->data, (size_t)n, skipped, err);
	if (t->dtype == DT_U)
		return err_set(err, "a string array has no histogram");
	if ((uint64_t)n > SIZE_MAX / sizeof *v || !(v = malloc((size_t)n * sizeof *v + 1)))
		return err_set(err, "out of memory for %lld values", (long long)n);
	for (int64_t i = 0; i < n; i++)
		v[i] = t->dtype == DT_U1 ? ((const uint8_t *)t->data)[i] :
		       t->dtype == DT_I4 ? ((const int32_t *)t->data)[i] :
		       (double)((const int64_t *)t->data)[i];
	rc = tfev_histogram(w, step, tag, v, (size_t)n, skipped, err);
	free(v);
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
