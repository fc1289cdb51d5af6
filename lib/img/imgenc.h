/* imgenc: 8-bit images encoded to memory as JPEG (libjpeg-turbo), PNG (libpng) or GIF
 * (giflib), for pet-synth's sample data, TensorBoard image summaries and tensor-png. */
#ifndef PETCNN_IMGENC_H
#define PETCNN_IMGENC_H

#include <stddef.h>
#include <stdint.h>

/* Pixels are row-major, interleaved, channels 1 (gray), 3 (RGB) or 4 (CMYK for JPEG,
 * RGBA for PNG). On success *out is malloc'ed (caller frees) and *outlen its size. */
int imgenc_jpeg(const uint8_t *pix, int w, int h, int channels, int quality,
		unsigned char **out, size_t *outlen, char *err);
int imgenc_png(const uint8_t *pix, int w, int h, int channels,
	       unsigned char **out, size_t *outlen, char *err);
/* Animated GIF from nframes frames of the same size (channels 1 or 3; RGB is quantised
 * to one shared 256-colour palette), delay_cs hundredths of a second per frame, looping. */
int imgenc_gif(const uint8_t *const *frames, int nframes, int w, int h, int channels,
	       int delay_cs, unsigned char **out, size_t *outlen, char *err);

#endif
