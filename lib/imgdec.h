/* imgdec: any photo file to 8-bit RGB: JPEG (libjpeg-turbo; gray, CMYK/YCCK, EXIF orientation,
 * scaled decoding), PNG (libpng) and the first frame of a GIF (giflib), told apart by magic bytes. */
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
} imgdec_hint;

typedef struct {
	int w, h;
	uint8_t *pix;            /* [h][w][4] RGBX, row-major; X is 255 (PNG: alpha), to be
				  * ignored: 4-byte pixels let the resize use SIMD */
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

#define IMGDEC_MAX_FILE ((size_t)1 << 30)
/* Largest image we agree to decode (pixels at full size): a "decompression bomb" beyond. */
#define IMGDEC_MAX_PIXELS ((int64_t)1 << 28)

#endif
