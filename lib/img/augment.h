/* augment: the random changes cnn-train makes to a training image at each epoch (flips,
 * shifts, scaled crops, rotations, colour, grayscale), each image's draw a function of
 * (seed, epoch, image index) alone, so any thread count and a resumed run give the same bytes.
 *
 * A spec is a comma list of items applied in the order given (as torchvision's Compose):
 *   flip[:P]      mirror left-right with probability P (default 0.5)
 *   shift:P       pad P pixels on every side (reflected) and crop back at a random place
 *   scale:LO-HI   a random crop of LO..HI of the area, aspect 3/4..4/3, resized back to
 *                 the image's size, antialiased (torchvision's RandomResizedCrop)
 *   rotate:DEG    a rotation by a uniform angle in +-DEG degrees about the centre,
 *                 bilinear, reflected border
 *   color:J       brightness, contrast, saturation each scaled by a factor in 1 +- J
 *   gray:P        grayscale (0.299 R + 0.587 G + 0.114 B) with probability P
 * "none" (or "") is the empty spec. Images are uint8 [h, w, 3] RGB, row-major. */
#ifndef PETCNN_AUGMENT_H
#define PETCNN_AUGMENT_H

#include <stdint.h>
#include <stdio.h>

#include "img/resize.h"

#define AUG_SPEC_MAX 256   /* the spec's canonical text, its NUL included */
#define AUG_MAX_OPS 16

enum aug_kind { AUG_FLIP, AUG_SHIFT, AUG_SCALE, AUG_ROTATE, AUG_COLOR, AUG_GRAY };

typedef struct {
	enum aug_kind kind;
	double a, b;   /* flip, gray: a = P; shift: a = pad; scale: a = LO, b = HI; rotate: a = DEG; color: a = J */
} aug_op;

typedef struct {
	int n;
	aug_op op[AUG_MAX_OPS];
	char text[AUG_SPEC_MAX];   /* canonical: "flip,shift:4,scale:0.5-1"; "" when empty */
} aug_spec;

/* Parses text into s; -1 with err naming the bad item ("rotate:x: ... ") otherwise. */
int aug_parse(aug_spec *s, const char *text, char *err);
/* Whether s can be applied to h x w images (a shift pad must be smaller than each side). */
int aug_check(const aug_spec *s, int h, int w, char *err);

/* One image's draw: per op of the spec, what it does this time. */
typedef struct {
	int on;            /* flip, gray: applied */
	int dx, dy;        /* shift: the crop's corner in the padded image, 0..2*pad */
	int box[4];        /* scale: the crop [box[0], box[2]) x [box[1], box[3]) */
	double degrees;    /* rotate: counter-clockwise as displayed */
	float bright, contrast, sat;   /* color: the factors */
} aug_draw_op;

typedef struct {
	aug_draw_op op[AUG_MAX_OPS];
} aug_draw;

/* The draw for image key of epoch under seed (independent of every other image's). */
void aug_draw_image(const aug_spec *s, int h, int w, uint64_t seed, int64_t epoch, int64_t key,
		    aug_draw *d);

/* The operations with a fixed draw; dst and src are [h, w, 3] and must not overlap, except
 * where "in place" says. */
void aug_flip(uint8_t *dst, const uint8_t *src, int h, int w);
/* dst(y, x) = src reflected at (y + dy - pad, x + dx - pad); pad < h, w. */
void aug_shift(uint8_t *dst, const uint8_t *src, int h, int w, int pad, int dx, int dy);
/* Bilinear, reflected border; angles that are multiples of 90 degrees are exact. */
void aug_rotate(uint8_t *dst, const uint8_t *src, int h, int w, double degrees);
/* In place allowed. Each step clamped to 0..255, rounded once at the end. */
void aug_color(uint8_t *dst, const uint8_t *src, int h, int w, float bright, float contrast, float sat);
/* In place allowed. */
void aug_gray(uint8_t *dst, const uint8_t *src, int h, int w);

/* Batches of images on threads: per worker the buffers an image needs. */
typedef struct aug_work aug_work;

typedef struct {
	aug_spec spec;
	int h, w, threads;
	aug_work *work;   /* [threads] */
} aug;

int aug_init(aug *a, const aug_spec *s, int h, int w, int threads, char *err);
/* dst [B, h, w, 3] = src's images augmented, image i by its draw (seed, epoch, key[i]). */
int aug_batch(aug *a, uint8_t *dst, const uint8_t *src, int B, uint64_t seed, int64_t epoch,
	      const int64_t *key, char *err);
/* One image with a given draw, on worker 0's buffers (what the tests and tools use). */
int aug_apply(aug *a, uint8_t *dst, const uint8_t *src, const aug_draw *d, char *err);
void aug_free(aug *a);

/* cnn-apply --augment: a .npy stream in, each uint8 image array [N, H, W, 3] (or
 * [H, W, 3]) out as [N * copies, H, W, 3], copy c of image i at row i * copies + c drawn as
 * epoch c of key i (what cnn-train with this seed gives image i at epoch c); int64 1-d
 * arrays (a dataset stream's labels) are repeated to match, string arrays (classes) copied,
 * so a dataset stream stays one. *nimg: images written. -2 (err set) when the spec does
 * not fit an array's images (aug_check: the caller's usage error), -1 on other errors. */
int aug_stream(const aug_spec *s, FILE *in, const char *inname, FILE *out, const char *outname,
	       int copies, uint64_t seed, int threads, int64_t *nimg, char *err);

#endif
