/* resize: separable antialiased resampling of RGB u8. See resize.h. */
#include "resize.h"

#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PREC 22  /* weight bits: 255 * 2^22 * (sum of weights = 1) stays inside int32 */

int resize_fit_parse(const char *s, enum resize_fit *fit)
{
	if (!strcmp(s, "stretch"))
		*fit = RESIZE_STRETCH;
	else if (!strcmp(s, "crop"))
		*fit = RESIZE_CROP;
	else if (!strcmp(s, "pad"))
		*fit = RESIZE_PAD;
	else
		return -1;
	return 0;
}

/* Taps of one axis: output i reads first[i] .. first[i] + n[i] - 1 with weights
 * w[i * ksize ..], fixed point, summing to about 1 << PREC. */
typedef struct {
	int ksize;
	int *first, *n;
	int32_t *w;
} taps;

static void taps_free(taps *t)
{
	free(t->first);
	free(t->n);
	free(t->w);
}

static double triangle(double x)
{
	x = fabs(x);
	return x < 1 ? 1 - x : 0;
}

static int taps_init(taps *t, int insize, double in0, double in1, int outsize, char *err)
{
	double scale = (in1 - in0) / outsize, fscale = scale < 1 ? 1 : scale;
	double support = fscale;  /* the triangle's half-width is 1 source pixel when enlarging */
	double inv = 1.0 / fscale;
	double *tmp;

	memset(t, 0, sizeof *t);
	t->ksize = (int)ceil(support) * 2 + 1;
	if ((size_t)outsize > SIZE_MAX / sizeof(int32_t) / (size_t)t->ksize)
		return err_set(err, "resize: %d x %d taps overflow", outsize, t->ksize);
	t->first = malloc(sizeof(int) * (size_t)outsize);
	t->n = malloc(sizeof(int) * (size_t)outsize);
	t->w = calloc((size_t)outsize * t->ksize, sizeof(int32_t));
	tmp = malloc(sizeof(double) * (size_t)t->ksize);
	if (!t->first || !t->n || !t->w || !tmp) {
		free(tmp);
		taps_free(t);
		return err_set(err, "resize: out of memory");
	}
	for (int i = 0; i < outsize; i++) {
		double center = in0 + (i + 0.5) * scale, sum = 0;
		int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
		if (lo < 0)
			lo = 0;
		if (hi > insize)
			hi = insize;
		if (hi - lo > t->ksize)
			hi = lo + t->ksize;
		for (int k = 0; k < hi - lo; k++)
			sum += tmp[k] = triangle((k + lo - center + 0.5) * inv);
		for (int k = 0; k < hi - lo; k++) {
			double v = sum != 0 ? tmp[k] / sum : 0;
			t->w[(size_t)i * t->ksize + k] = (int32_t)(v < 0 ? -0.5 + v * (1 << PREC) : 0.5 + v * (1 << PREC));
		}
		t->first[i] = lo;
		t->n[i] = hi - lo;
	}
	free(tmp);
	return 0;
}

static inline uint8_t clip8(int32_t v)
{
	v >>= PREC;
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* rows of src (stride sstride) -> rows of dst, resampled along x */
static void pass_h(const uint8_t *restrict src, size_t sstride, int rows, uint8_t *restrict dst, size_t dstride,
		   const taps *t, int dw)
{
	for (int y = 0; y < rows; y++) {
		const uint8_t *s = src + y * sstride;
		uint8_t *d = dst + y * dstride;
		for (int x = 0; x < dw; x++) {
			const int32_t *w = t->w + (size_t)x * t->ksize;
			const uint8_t *p = s + (size_t)t->first[x] * 3;
			int32_t r = 1 << (PREC - 1), g = r, b = r;
			for (int k = 0; k < t->n[x]; k++, p += 3) {
				r += p[0] * w[k];
				g += p[1] * w[k];
				b += p[2] * w[k];
			}
			d[x * 3] = clip8(r);
			d[x * 3 + 1] = clip8(g);
			d[x * 3 + 2] = clip8(b);
		}
	}
}

/* columns: output row y is a weighted sum of source rows. Rows are summed whole, one tap at
 * a time, so the inner loop runs over contiguous bytes and vectorises. acc holds bytes ints. */
static void pass_v(const uint8_t *restrict src, size_t sstride, int bytes, uint8_t *restrict dst, size_t dstride,
		   const taps *t, int dh, int row0, int32_t *restrict acc)
{
	for (int y = 0; y < dh; y++) {
		const int32_t *w = t->w + (size_t)y * t->ksize;
		const uint8_t *s = src + (size_t)(t->first[y] - row0) * sstride;
		uint8_t *d = dst + y * dstride;
		for (int x = 0; x < bytes; x++)
			acc[x] = 1 << (PREC - 1);
		for (int k = 0; k < t->n[y]; k++) {
			const uint8_t *restrict r = s + k * sstride;
			int32_t wk = w[k];
			for (int x = 0; x < bytes; x++)
				acc[x] += r[x] * wk;
		}
		for (int x = 0; x < bytes; x++)
			d[x] = clip8(acc[x]);
	}
}

int resize_box(const uint8_t *src, int sw, int sh, const double box[4], uint8_t *dst,
	       int dstride, int dw, int dh, char *err)
{
	taps tx, ty;
	uint8_t *mid = NULL;
	int32_t *acc = NULL;
	int ok = 1, need_h, need_v, row0, rows;

	if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
		return err_set(err, "resize: empty image (%dx%d to %dx%d)", sw, sh, dw, dh);
	if (!(box[0] >= 0 && box[1] >= 0 && box[2] <= sw && box[3] <= sh && box[2] > box[0] && box[3] > box[1]))
		return err_set(err, "resize: box outside the %dx%d image", sw, sh);
	need_h = dw != sw || box[0] != 0 || box[2] != sw;
	need_v = dh != sh || box[1] != 0 || box[3] != sh;
	if (!need_h && !need_v) {
		for (int y = 0; y < dh; y++)
			memcpy(dst + (size_t)y * dstride, src + (size_t)y * sw * 3, (size_t)sw * 3);
		return 0;
	}
	if (taps_init(&tx, sw, box[0], box[2], dw, err) < 0)
		return -1;
	if (taps_init(&ty, sh, box[1], box[3], dh, err) < 0) {
		taps_free(&tx);
		return -1;
	}
	/* only the source rows the vertical taps reach go through the horizontal pass */
	row0 = ty.first[0];
	rows = ty.first[dh - 1] + ty.n[dh - 1] - row0;
	if (!need_v) {
		pass_h(src, (size_t)sw * 3, dh, dst, (size_t)dstride, &tx, dw);
	} else if (!(acc = malloc(sizeof(int32_t) * 3 * (size_t)(need_h ? dw : sw))) ||
		   (need_h && !(mid = malloc((size_t)rows * dw * 3)))) {
		ok = 0;
		err_set(err, "resize: out of memory");
	} else if (!need_h) {
		pass_v(src + (size_t)row0 * sw * 3, (size_t)sw * 3, sw * 3, dst, (size_t)dstride, &ty, dh, row0, acc);
	} else {
		pass_h(src + (size_t)row0 * sw * 3, (size_t)sw * 3, rows, mid, (size_t)dw * 3, &tx, dw);
		pass_v(mid, (size_t)dw * 3, dw * 3, dst, (size_t)dstride, &ty, dh, row0, acc);
	}
	taps_free(&tx);
	taps_free(&ty);
	free(mid);
	free(acc);
	return ok ? 0 : -1;
}

int resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int tw, int th,
	       enum resize_fit fit, char *err)
{
	double box[4] = { 0, 0, sw, sh };
	int dw = tw, dh = th, dx = 0, dy = 0;

	if (sw <= 0 || sh <= 0 || tw <= 0 || th <= 0)
		return err_set(err, "resize: empty image (%dx%d to %dx%d)", sw, sh, tw, th);
	if (fit == RESIZE_CROP) {
		/* the largest centred box of the target's aspect ratio */
		double s = fmax((double)tw / sw, (double)th / sh), bw = tw / s, bh = th / s;
		box[0] = (sw - bw) / 2;
		box[1] = (sh - bh) / 2;
		box[2] = box[0] + bw;
		box[3] = box[1] + bh;
		box[0] = fmax(box[0], 0);
		box[1] = fmax(box[1], 0);
		box[2] = fmin(box[2], sw);
		box[3] = fmin(box[3], sh);
	} else if (fit == RESIZE_PAD) {
		double s = fmin((double)tw / sw, (double)th / sh);
		dw = (int)lround(sw * s);
		dh = (int)lround(sh * s);
		dw = dw < 1 ? 1 : dw > tw ? tw : dw;
		dh = dh < 1 ? 1 : dh > th ? th : dh;
		dx = (tw - dw) / 2;
		dy = (th - dh) / 2;
		memset(dst, 0, (size_t)tw * th * 3);
	}
	return resize_box(src, sw, sh, box, dst + ((size_t)dy * tw + dx) * 3, tw * 3, dw, dh, err);
}
