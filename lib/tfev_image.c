/* tfev_image: raw pixels to a PNG image summary. Apart from tfev.c so that programs which
 * never encode pixels do not pull in the PNG encoder (lib/imgenc). See tfev.h. */
#include "tfev.h"

#include "err.h"
#include "imgenc.h"

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
