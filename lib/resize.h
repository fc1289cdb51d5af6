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

/* src [sh][sw][3] -> dst [th][tw][3] (caller-allocated). Each output pixel is a weighted sum
 * of the source pixels under a triangle of half-width max(1, source/target) pixels, weights
 * in 22-bit fixed point and rounded to u8 between the horizontal and the vertical pass,
 * exactly as Pillow 9's Image.resize(size, BILINEAR) does. */
int resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int tw, int th,
	       enum resize_fit fit, char *err);

/* The same on a source box [x0, x1) x [y0, y1) in source pixel coordinates into a
 * dw x dh region of dst whose rows are dstride bytes apart. */
int resize_box(const uint8_t *src, int sw, int sh, const double box[4], uint8_t *dst,
	       int dstride, int dw, int dh, char *err);

#endif
