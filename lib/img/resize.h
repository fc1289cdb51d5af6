/* resize: antialiased resizing of 8-bit RGB images (a triangle filter widened by the
 * reduction factor, i.e. Pillow's BILINEAR resize), with stretch, centre-crop or pad fits,
 * on a whole image or fed a few rows at a time straight from a decoder (resize_stream). */
#ifndef PETCNN_RESIZE_H
#define PETCNN_RESIZE_H

#include <stddef.h>
#include <stdint.h>

enum resize_fit {
	RESIZE_STRETCH, /* whole image to exactly the target, aspect ratio not kept */
	RESIZE_CROP,    /* scale to cover the target, keep the centre */
	RESIZE_PAD,     /* scale to fit inside the target, centred on black */
};

/* "stretch", "crop", "pad" -> 0 and *fit; -1 for anything else. */
int resize_fit_parse(const char *s, enum resize_fit *fit);

/* Where a fit puts an sw x sh source in a tw x th target: the source box
 * [box[0], box[2]) x [box[1], box[3]) (pixel coordinates) is resampled into the dw x dh
 * region at (dx, dy) of the target; with pad the rest of the target is black. */
typedef struct {
	double box[4];
	int dx, dy, dw, dh;
} resize_plan;

void resize_plan_fit(resize_plan *p, int sw, int sh, int tw, int th, enum resize_fit fit);

/* src [sh][sw][4] RGBX (the 4th byte ignored) -> dst [th][tw][3] RGB (caller-allocated).
 * Each output pixel is a weighted sum of the source pixels under a triangle of half-width
 * max(1, source/target) pixels, rounded to u8 between the horizontal and the vertical pass,
 * as Pillow's Image.resize(size, BILINEAR) does; Pillow's weights have 22 bits, ours 14
 * (SIMD-friendly), so a pixel differs from Pillow's by 1 now and then. */
int resize_rgbx(const uint8_t *src, int sw, int sh, uint8_t *dst, int tw, int th,
		enum resize_fit fit, char *err);
/* The same from src [sh][sw][3] RGB. */
int resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int tw, int th,
	       enum resize_fit fit, char *err);

/* The same on a source box [x0, x1) x [y0, y1) (source pixel coordinates) of an RGBX
 * image into a dw x dh RGB region of dst whose rows are dstride bytes apart. */
int resize_box(const uint8_t *src, int sw, int sh, const double box[4], uint8_t *dst,
	       int dstride, int dw, int dh, char *err);

/* Taps of one axis: output i reads first[i] .. first[i] + n[i] - 1 with 14-bit weights
 * w[i * ksize ..] (zero-padded to ksize), also as pairs (w[2j] | w[2j+1] << 16) for the
 * SIMD loops, which all run np pairs. Private to resize.c. */
typedef struct {
	int ksize, np, nout;  /* nout: outputs rounded up to 4, the last one repeated */
	int tailzero;         /* np odd and no output has 2 np taps: the last pair's 2nd is 0 */
	int *first, *n;
	int16_t *w;
	int32_t *pairs;
	int insize, outsize;  /* what they were made for: the next image may reuse them */
	double in0, in1;
	size_t cap;           /* outputs allocated */
} resize_taps;

/* The resampler fed rows top to bottom: ask for room, write up to *max RGB rows there,
 * push them. The horizontal pass runs on them at once (still in cache) and each output row
 * is written to dst as soon as its source rows are in. Reusable: start it again for the
 * next image and its buffers and taps are kept. Same bytes as resize_box. */
typedef struct {
	int simd;                     /* 0 portable C, 1 SSE2, 2 AVX2: the same bytes from each */
	int sw, sh, dw, dh, need_h, need_v;
	resize_taps tx, ty;
	uint8_t *dst;
	size_t dstride;
	uint8_t *in, *mid;            /* rows pushed; rows resampled along x */
	size_t istride, mstride, in_cap, mid_cap;
	int row0, rows;               /* the source rows [row0, row0 + rows) reach the output */
	int got, next;                /* source rows pushed, output rows written */
} resize_stream;

/* A stream with nothing allocated, using the fastest SIMD this CPU has. */
void resize_stream_init(resize_stream *rs);
/* Sets up the resize of the box of an sw x sh image into the dw x dh RGB region at dst
 * (rows dstride bytes apart); -1 with err when the sizes or box are bad or memory is short. */
int resize_stream_start(resize_stream *rs, int sw, int sh, const double box[4], uint8_t *dst,
			size_t dstride, int dw, int dh, char *err);
/* Room for the next *max (>= 1) rows of sw RGB pixels, *stride bytes apart. */
uint8_t *resize_stream_room(resize_stream *rs, int *max, size_t *stride);
/* The next n rows (n <= max) are in the room. After all sh rows, dst is complete. */
void resize_stream_push(resize_stream *rs, int n);
void resize_stream_free(resize_stream *rs);

#endif
