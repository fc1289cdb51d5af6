/* tfev_image: image summaries for TensorBoard (Summary.Value.image, tfev.h): a PNG stored
 * as it is (its size read from its IHDR), raw 8-bit pixels or an array encoded to PNG. */
#ifndef PETCNN_TFEV_IMAGE_H
#define PETCNN_TFEV_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "array/tensor.h"
#include "tb/tfev_write.h"

/* Width, height and colour space (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) from a PNG's IHDR. */
int tfev_png_info(const void *png, size_t len, int *width, int *height, int *colorspace,
		  char *err);
/* An already encoded PNG as an image summary (size read from the PNG). */
int tfev_image_png(tfev_writer *w, int64_t step, const char *tag, const void *png, size_t len,
		   char *err);
/* Raw 8-bit pixels (row-major, channels 1 gray, 3 RGB or 4 RGBA) encoded to PNG with
 * imgenc_png (lib/img/imgenc.h) and written as an image summary. */
int tfev_image(tfev_writer *w, int64_t step, const char *tag, const uint8_t *pix, int width,
	       int height, int channels, char *err);
/* An array as an image: HxW, HxWx1, HxWx3 or HxWx4; uint8 as it is, float scaled from
 * [0, 1] (values outside clamped, NaN black). */
int tfev_image_tensor(tfev_writer *w, int64_t step, const char *tag, const tensor *t, char *err);

#endif
