/* resize: antialiased resizing of 8-bit RGB images (a triangle filter widened by the
 * reduction factor, i.e. Pillow's BILINEAR resize), with stretch, centre-crop or pad fits. */
#ifndef PETCNN_RESIZE_H
#define PETCNN_RESIZE_H

#include <stdint.h>

enum resize_fit {
	RESIZE_STRETCH, /* whole image to exactly the target, aspect ratio not kept */
	RESIZE_CROP,    /* scale to cover the target, keep the centre */
	RESIZE_PAD,     /* scale to fit inside the target, centred on black */
};

/* "stretch", "crop", "pad" -> 0 and *fit; -1 for anything else. */
int resize_fit_parse(const char *s, enum resize_fit *fit);

/* src [sh][sw][4] RGBX (the 4th byte ignored) -> dst [th][tw][3] RGB (caller-allocated).
 * Each output pixel is a weighted sum of the source pixels under a triangle of half-width
 * max(1, source/target) pixels, rounded to u8 between the horizontal and the vertical pass,
 * as Pillow's Image.resize(size, BILINEAR) does; Pillow's weights have 22 bits, ours 14
 * (SIMD-friendly), so a pixel differs from Pillow's by 1 now and then. */
int resize_rgbx(const uint8_t *src, int sw, int sh, uint8_t *dst, int tw, int th,
		enum resize_fit fit, char *err);
/* The same from src [sh][sw][3] RGB (a copy to RGBX first: for tests and small jobs). */
int resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int tw, int th,
	       enum resize_fit fit, char *err);

/* The same on a source box [x0, x1) x [y0, y1) (source pixel coordinates) of an RGBX
 * image into a dw x dh RGB region of dst whose rows are dstride bytes apart. */
int resize_box(const uint8_t *src, int sw, int sh, const double box[4], uint8_t *dst,
	       int dstride, int dw, int dh, char *err);

#endif
