/* imgdec: any photo file to 8-bit RGB: JPEG (libjpeg-turbo; gray, CMYK/YCCK, EXIF orientation,
 * scaled decoding), PNG (libpng) and the first frame of a GIF (giflib), told apart by magic bytes;
 * as a whole image, or as rows handed to a consumer a few at a time (imgdec_sink). */
#ifndef PETCNN_IMGDEC_H
#define PETCNN_IMGDEC_H

#include <stddef.h>
#include <stdint.h>

enum imgdec_kind { IMGDEC_UNKNOWN, IMGDEC_JPEG, IMGDEC_PNG, IMGDEC_GIF };

/* What the caller will make of the image, so a large JPEG can be decoded at 1/2, 1/4 or 1/8
 * of its size (libjpeg's DCT scaling, faster) while keeping at least as many pixels as the
 * resize needs. tw x th is the target; 0 x 0 (or IMGDEC_FULL) decodes at full size. */
enum imgdec_need {
	IMGDEC_FULL,   /* full size always */
	IMGDEC_COVER,  /* the image will cover tw x th (stretch, crop): keep >= tw wide, >= th high */
	IMGDEC_INSIDE, /* the image will fit inside tw x th (pad): keep >= its fitted size */
};

typedef struct {
	enum imgdec_need need;
	int tw, th;
	/* An image of more pixels than this at full size is refused from its header, before
	 * anything is allocated; 0 (or a NULL hint): IMGDEC_MAX_PIXELS. */
	int64_t max_pixels;
} imgdec_hint;

typedef struct {
	int w, h;
	uint8_t *pix;            /* [h][w][4] RGBX, row-major; X is 255, to be ignored:
				  * 4-byte pixels let the resize use SIMD */
	enum imgdec_kind kind;   /* what the bytes were */
	int scale;               /* JPEG decoded at scale/8 of full size (8: full); 8 otherwise */
} imgdec_image;

/* The format from the first bytes (needs at most 8). */
enum imgdec_kind imgdec_sniff(const unsigned char *buf, size_t len);

/* Decodes buf (name labels messages; hint may be NULL for full size). Orientation from EXIF
 * is applied, so w x h is the upright size. A truncated or corrupt file is an error, while
 * libjpeg's harmless warnings (extraneous bytes before a marker) are not. */
int imgdec_mem(const unsigned char *buf, size_t len, const char *name, const imgdec_hint *hint,
	       imgdec_image *img, char *err);
/* Reads the whole file (at most IMGDEC_MAX_FILE bytes) and decodes it. */
int imgdec_file(const char *path, const imgdec_hint *hint, imgdec_image *img, char *err);
void imgdec_free(imgdec_image *img);

/* Where decoded rows go, a few at a time, so that a consumer (pet-pack's resize) takes them
 * while they are still in cache instead of from a whole-image buffer. */
typedef struct {
	void *ctx;
	/* the upright size, before any row; 0, or -1 with err set to stop the decoding */
	int (*begin)(void *ctx, int w, int h, char *err);
	/* room for the next *max (>= 1) rows of w RGB pixels (3 bytes each), *stride bytes apart */
	uint8_t *(*room)(void *ctx, int *max, size_t *stride);
	/* the next n rows, top to bottom, are in the room */
	void (*push)(void *ctx, int n);
} imgdec_sink;

/* Decodes buf as imgdec_mem does, handing the upright rows to sink: all h of them on
 * success; a corrupt file may fail after some rows were handed over. A JPEG without
 * orientation and a non-interlaced PNG go straight from the decoder to the sink, a few rows
 * of memory whatever their size; an interlaced PNG (3 bytes a pixel), a GIF and an
 * EXIF-rotated JPEG (4) are decoded whole first, so hint->max_pixels bounds their memory. */
int imgdec_mem_sink(const unsigned char *buf, size_t len, const char *name, const imgdec_hint *hint,
		    const imgdec_sink *sink, char *err);
/* The whole file (at most IMGDEC_MAX_FILE bytes; a regular file, never a FIFO or device)
 * into *buf, *len bytes: *buf (*cap bytes, NULL and 0 at first) grows as needed and is kept,
 * to be reused for the next file. */
int imgdec_read(const char *path, unsigned char **buf, size_t *cap, size_t *len, char *err);

#define IMGDEC_MAX_FILE ((size_t)1 << 30)
/* Largest image decoded by default (pixels at full size): 32 Mi, so 8192x4096, any camera
 * up to 32 megapixels, at most 128 MB for an image decoded whole (4 bytes a pixel), 192 MB
 * for a progressive 4:4:4 JPEG's coefficients in libjpeg, where a 35-byte GIF or a 32 KB PNG
 * can claim 16384x16384 (1 GB); the pets photos are under 4 Mi. */
#define IMGDEC_MAX_PIXELS ((int64_t)1 << 25)

#endif
