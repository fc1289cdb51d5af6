/* pack: decode and resize a list of images on N threads, delivering them strictly in list
 * order through a bounded window, so output bytes never depend on the thread count. */
#ifndef PETCNN_PACK_H
#define PETCNN_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "img/resize.h"

typedef struct {
	int w, h;               /* output size */
	enum resize_fit fit;
	int threads;            /* decoding threads; 1 decodes on the calling thread */
	int full_decode;        /* never use JPEG DCT scaling */
	int64_t max_pixels;     /* larger images are refused (imgdec_hint); 0: the default */
} pack_opts;

/* Called on the calling thread for item 0, 1, ... n-1 in order: pix is [h][w][3] RGB, or
 * NULL when the image could not be used, with why ("path: problem") in msg. Returns 0 to
 * go on, -1 to stop the run (pack_run then returns -1 with err as the callback set it). */
typedef int (*pack_emit)(void *ctx, size_t i, const uint8_t *pix, const char *msg, char *err);

/* Decodes paths[0..n-1]. At most 4 * threads images are in memory at once. */
int pack_run(const char *const *paths, size_t n, const pack_opts *o, pack_emit emit, void *ctx,
	     char *err);

/* One image: decode path and resize into out [o->h][o->w][3]; -1 with err on failure. */
int pack_one(const char *path, const pack_opts *o, uint8_t *out, char *err);

#endif
