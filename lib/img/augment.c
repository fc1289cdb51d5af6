/* augment: parsing the spec, drawing each image's changes, applying them on threads. */
#include "img/augment.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "array/npy.h"
#include "array/tensor.h"
#include "util/errmsg.h"
#include "util/par.h"
#include "util/rng.h"

/* ---- the spec ---- */

static const char *const NAMES[] = { "flip", "shift", "scale", "rotate", "color", "gray" };

/* A number that is all of [s, end): 0, or -1. */
static int number(const char *s, const char *end, double *v)
{
	char buf[64], *e;
	size_t n = (size_t)(end - s);

	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	errno = 0;
	*v = strtod(buf, &e);
	return *e || errno || !isfinite(*v) ? -1 : 0;
}

/* One item [s, end) into op; err names it. */
static int parse_item(aug_op *op, const char *s, const char *end, char *err)
{
	const char *colon = memchr(s, ':', (size_t)(end - s)), *arg = colon ? colon + 1 : end;
	size_t nl = (size_t)((colon ? colon : end) - s);
	int len = (int)(end - s), k;

	for (k = 0; k < 6; k++)
		if (strlen(NAMES[k]) == nl && !memcmp(s, NAMES[k], nl))
			break;
	if (k == 6)
		return err_set(err, "'%.*s': unknown (flip, shift:P, scale:LO-HI, rotate:DEG, color:J, gray:P)",
			       len, s);
	op->kind = (enum aug_kind)k;
	op->a = op->b = 0;
	if (k == AUG_FLIP && !colon) {
		op->a = 0.5;
		return 0;
	}
	if (!colon)
		return err_set(err, "'%.*s': %s needs a value (%s:...)", len, s, NAMES[k], NAMES[k]);
	if (k == AUG_SCALE) {
		/* LO-HI: the dash after the first character (LO may not be negative anyway) */
		const char *dash = arg < end ? memchr(arg + 1, '-', (size_t)(end - arg - 1)) : NULL;

		if (!dash || number(arg, dash, &op->a) || number(dash + 1, end, &op->b))
			return err_set(err, "'%.*s': scale wants LO-HI, two numbers", len, s);
		if (!(op->a > 0 && op->a <= op->b && op->b <= 1))
			return err_set(err, "'%.*s': scale wants 0 < LO <= HI <= 1", len, s);
		return 0;
	}
	if (number(arg, end, &op->a))
		return err_set(err, "'%.*s': '%.*s' is not a number", len, s, (int)(end - arg), arg);
	switch (op->kind) {
	case AUG_SHIFT:
		if (op->a != floor(op->a) || op->a < 0 || op->a > 65535)
			return err_set(err, "'%.*s': shift wants a whole number of pixels, 0 or more", len, s);
		break;
	case AUG_ROTATE:
		if (op->a < 0 || op->a > 180)
			return err_set(err, "'%.*s': rotate wants degrees in 0..180", len, s);
		break;
	case AUG_COLOR:
		if (op->a < 0 || op->a > 1)
			return err_set(err, "'%.*s': color wants J in 0..1", len, s);
		break;
	default:   /* flip, gray */
		if (op->a < 0 || op->a > 1)
			return err_set(err, "'%.*s': %s wants a probability in 0..1", len, s, NAMES[k]);
		break;
	}
	return 0;
}

int aug_parse(aug_spec *s, const char *text, char *err)
{
	size_t used = 0;

	memset(s, 0, sizeof *s);
	if (!strcmp(text, "none"))
		return 0;
	for (const char *p = text; *p;) {
		const char *end = strchr(p, ',');
		aug_op *op = &s->op[s->n];
		int n;

		if (!end)
			end = p + strlen(p);
		if (end == p)
			return err_set(err, "'%s': an empty item", text);
		if (s->n == AUG_MAX_OPS)
			return err_set(err, "'%s': more than %d items", text, AUG_MAX_OPS);
		if (parse_item(op, p, end, err))
			return -1;
		s->n++;
		if (op->kind == AUG_FLIP && op->a == 0.5)
			n = snprintf(s->text + used, sizeof s->text - used, "%sflip", used ? "," : "");
		else if (op->kind == AUG_SCALE)
			n = snprintf(s->text + used, sizeof s->text - used, "%sscale:%.9g-%.9g", used ? "," : "",
				     op->a, op->b);
		else
			n = snprintf(s->text + used, sizeof s->text - used, "%s%s:%.9g", used ? "," : "",
				     NAMES[op->kind], op->a);
		if (n < 0 || (size_t)n >= sizeof s->text - used)
			return err_set(err, "'%s': longer than %d characters", text, AUG_SPEC_MAX - 1);
		used += (size_t)n;
		p = *end ? end + 1 : end;
		if (*end && !*p)
			return err_set(err, "'%s': an empty item", text);
	}
	return 0;
}

int aug_check(const aug_spec *s, int h, int w, char *err)
{
	for (int i = 0; i < s->n; i++)
		if (s->op[i].kind == AUG_SHIFT && (s->op[i].a >= h || s->op[i].a >= w))
			return err_set(err, "'shift:%g': the pad is not smaller than the %dx%d images",
				       s->op[i].a, w, h);
	return 0;
}

/* ---- the draw ---- */

/* torchvision's RandomResizedCrop.get_params: ten tries at an area and aspect that fit,
 * then the whole image (its aspect clamped to 3/4..4/3), centred. */
static void draw_crop(rng *r, int h, int w, double lo, double hi, int box[4])
{
	double area = (double)h * w, lr0 = log(3.0 / 4), lr1 = log(4.0 / 3);
	int cw, ch;

	/* all of the area is the whole image: torchvision's rounding would let a 15x12 crop of
	 * a 16x12 image through (aspect 1.25, area 94%) */
	for (int t = 0; t < 10 && lo < 1; t++) {
		double target = area * (lo + (hi - lo) * rng_uniform(r));
		double ratio = exp(lr0 + (lr1 - lr0) * rng_uniform(r));

		cw = (int)lround(sqrt(target * ratio));
		ch = (int)lround(sqrt(target / ratio));
		if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
			box[1] = (int)rng_below(r, (uint64_t)(h - ch + 1));
			box[0] = (int)rng_below(r, (uint64_t)(w - cw + 1));
			box[2] = box[0] + cw, box[3] = box[1] + ch;
			return;
		}
	}
	cw = w, ch = h;
	if ((double)w / h < 3.0 / 4)
		ch = (int)lround(w / (3.0 / 4));
	else if ((double)w / h > 4.0 / 3)
		cw = (int)lround(h * (4.0 / 3));
	if (ch > h)
		ch = h;
	if (cw > w)
		cw = w;
	box[0] = (w - cw) / 2, box[1] = (h - ch) / 2;
	box[2] = box[0] + cw, box[3] = box[1] + ch;
}

static float factor(rng *r, double j)
{
	double f = 1 + j * (2 * rng_uniform(r) - 1);

	return f < 0 ? 0 : (float)f;
}

void aug_draw_image(const aug_spec *s, int h, int w, uint64_t seed, int64_t epoch, int64_t key,
		    aug_draw *d)
{
	rng r;

	/* two levels, so no (epoch, key) pair can share a stream with another */
	rng_stream(&r, seed, UINT64_C(0x6175676d656e7400) ^ (uint64_t)epoch);
	rng_stream(&r, rng_u64(&r), (uint64_t)key);
	memset(d, 0, sizeof *d);
	for (int i = 0; i < s->n; i++) {
		const aug_op *op = &s->op[i];
		aug_draw_op *o = &d->op[i];
		int pad = (int)op->a;

		switch (op->kind) {
		case AUG_FLIP:
		case AUG_GRAY:
			o->on = rng_uniform(&r) < op->a;
			break;
		case AUG_SHIFT:
			o->dx = (int)rng_below(&r, (uint64_t)(2 * pad + 1));
			o->dy = (int)rng_below(&r, (uint64_t)(2 * pad + 1));
			break;
		case AUG_SCALE:
			draw_crop(&r, h, w, op->a, op->b, o->box);
			break;
		case AUG_ROTATE:
			o->degrees = op->a * (2 * rng_uniform(&r) - 1);
			break;
		case AUG_COLOR:
			o->bright = factor(&r, op->a);
			o->contrast = factor(&r, op->a);
			o->sat = factor(&r, op->a);
			break;
		}
	}
}

/* ---- the operations ---- */

/* i reflected into [0, n) without repeating the edge (numpy's 'reflect'). */
static int reflect(int i, int n)
{
	int p = 2 * (n - 1);

	if (n == 1)
		return 0;
	i %= p;
	if (i < 0)
		i += p;
	return i < n ? i : p - i;
}

void aug_flip(uint8_t *dst, const uint8_t *src, int h, int w)
{
	for (int y = 0; y < h; y++) {
		const uint8_t *s = src + (size_t)y * w * 3;
		uint8_t *d = dst + (size_t)y * w * 3;

		for (int x = 0; x < w; x++)
			memcpy(d + 3 * x, s + 3 * (w - 1 - x), 3);
	}
}

void aug_shift(uint8_t *dst, const uint8_t *src, int h, int w, int pad, int dx, int dy)
{
	for (int y = 0; y < h; y++) {
		const uint8_t *s = src + (size_t)reflect(y + dy - pad, h) * w * 3;
		uint8_t *d = dst + (size_t)y * w * 3;
		int x = 0;

		/* the middle run is one copy; only the reflected edges go pixel by pixel */
		for (; x < w && x + dx - pad < 0; x++)
			memcpy(d + 3 * x, s + 3 * reflect(x + dx - pad, w), 3);
		if (x < w) {
			int run = w - (x + dx - pad);

			if (run > w - x)
				run = w - x;
			memcpy(d + 3 * x, s + 3 * (x + dx - pad), (size_t)run * 3);
			x += run;
		}
		for (; x < w; x++)
			memcpy(d + 3 * x, s + 3 * reflect(x + dx - pad, w), 3);
	}
}

/* A coordinate within 1e-6 of a whole number is that number: rotations by multiples of
 * 90 degrees then read whole pixels (sin(pi) is 1.2e-16, not 0). */
static double snap(double v)
{
	double r = nearbyint(v);

	return fabs(v - r) < 1e-6 ? r : v;
}

void aug_rotate(uint8_t *dst, const uint8_t *src, int h, int w, double degrees)
{
	double t = degrees * (M_PI / 180), c = cos(t), s = sin(t);
	double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;

	for (int y = 0; y < h; y++) {
		uint8_t *d = dst + (size_t)y * w * 3;

		for (int x = 0; x < w; x++) {
			/* the source of output (x, y): the output turned back clockwise */
			double u = snap(cx + c * (x - cx) - s * (y - cy));
			double v = snap(cy + s * (x - cx) + c * (y - cy));
			double fu = floor(u), fv = floor(v);
			float ax = (float)(u - fu), ay = (float)(v - fv);
			int x0 = reflect((int)fu, w), x1 = reflect((int)fu + 1, w);
			int y0 = reflect((int)fv, h), y1 = reflect((int)fv + 1, h);
			const uint8_t *r0 = src + (size_t)y0 * w * 3, *r1 = src + (size_t)y1 * w * 3;

			for (int k = 0; k < 3; k++) {
				float top = r0[3 * x0 + k] + ax * (r0[3 * x1 + k] - r0[3 * x0 + k]);
				float bot = r1[3 * x0 + k] + ax * (r1[3 * x1 + k] - r1[3 * x0 + k]);
				float val = top + ay * (bot - top);

				d[3 * x + k] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val + 0.5f);
			}
		}
	}
}

static float clamp255(float v)
{
	return v < 0 ? 0 : v > 255 ? 255 : v;
}

static float luma(float r, float g, float b)
{
	return 0.299f * r + 0.587f * g + 0.114f * b;
}

void aug_color(uint8_t *dst, const uint8_t *src, int h, int w, float bright, float contrast, float sat)
{
	size_t n = (size_t)h * w;
	double sum = 0;
	float mean;

	/* the contrast blends with the mean gray of the brightened image: one pass for it */
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = src + 3 * i;

		sum += luma(clamp255(p[0] * bright), clamp255(p[1] * bright), clamp255(p[2] * bright));
	}
	mean = (float)(sum / (double)n);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = src + 3 * i;
		float v[3], g;

		for (int k = 0; k < 3; k++)
			v[k] = clamp255((clamp255(p[k] * bright) - mean) * contrast + mean);
		g = luma(v[0], v[1], v[2]);
		for (int k = 0; k < 3; k++)
			dst[3 * i + k] = (uint8_t)(clamp255((v[k] - g) * sat + g) + 0.5f);
	}
}

void aug_gray(uint8_t *dst, const uint8_t *src, int h, int w)
{
	for (size_t i = 0, n = (size_t)h * w; i < n; i++) {
		float g = luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]);
		uint8_t v = (uint8_t)(clamp255(g) + 0.5f);

		dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = v;
	}
}

/* ---- batches on threads ---- */

struct aug_work {
	uint8_t *buf[2];      /* [h, w, 3] each: the image between operations */
	uint8_t *crop;        /* [h, w, 3]: a scale crop, contiguous */
	resize_stream rs;
	int rc;
	char err[ERR_MAX];
};

int aug_init(aug *a, const aug_spec *s, int h, int w, int threads, char *err)
{
	size_t img = (size_t)h * w * 3;

	memset(a, 0, sizeof *a);
	if (h < 1 || w < 1 || (size_t)w > SIZE_MAX / 3 / (size_t)h)
		return err_set(err, "augment: bad image size %dx%d", w, h);
	if (aug_check(s, h, w, err))
		return -1;
	a->spec = *s, a->h = h, a->w = w;
	a->threads = threads < 1 ? 1 : threads > PAR_MAX_THREADS ? PAR_MAX_THREADS : threads;
	if (!(a->work = calloc((size_t)a->threads, sizeof *a->work)))
		return err_set(err, "out of memory");
	for (int k = 0; k < a->threads; k++) {
		aug_work *wk = &a->work[k];

		resize_stream_init(&wk->rs);
		if (!(wk->buf[0] = malloc(img)) || !(wk->buf[1] = malloc(img)) || !(wk->crop = malloc(img))) {
			aug_free(a);
			return err_set(err, "out of memory");
		}
	}
	return 0;
}

void aug_free(aug *a)
{
	for (int k = 0; a->work && k < a->threads; k++) {
		free(a->work[k].buf[0]);
		free(a->work[k].buf[1]);
		free(a->work[k].crop);
		resize_stream_free(&a->work[k].rs);
	}
	free(a->work);
	memset(a, 0, sizeof *a);
}

/* The crop of box out of src resized to the whole of dst (crop first, as torchvision's
 * resized_crop does, so no pixel outside the box leaks in at the edges). */
static int crop_resize(aug_work *wk, uint8_t *dst, const uint8_t *src, int h, int w, const int box[4],
		       char *err)
{
	int cw = box[2] - box[0], ch = box[3] - box[1], got = 0;
	double full[4] = { 0, 0, cw, ch };

	if (cw == w && ch == h) {
		memcpy(dst, src, (size_t)h * w * 3);
		return 0;
	}
	for (int y = 0; y < ch; y++)
		memcpy(wk->crop + (size_t)y * cw * 3, src + ((size_t)(y + box[1]) * w + box[0]) * 3, (size_t)cw * 3);
	if (resize_stream_start(&wk->rs, cw, ch, full, dst, (size_t)w * 3, w, h, err))
		return -1;
	while (got < ch) {
		int max;
		size_t stride;
		uint8_t *room = resize_stream_room(&wk->rs, &max, &stride);
		int n = ch - got < max ? ch - got : max;

		for (int y = 0; y < n; y++)
			memcpy(room + (size_t)y * stride, wk->crop + (size_t)(got + y) * cw * 3, (size_t)cw * 3);
		resize_stream_push(&wk->rs, n);
		got += n;
	}
	return 0;
}

/* One image through the spec's operations with draw d, on wk's buffers. */
static int apply_one(const aug *a, aug_work *wk, uint8_t *dst, const uint8_t *src, const aug_draw *d,
		     char *err)
{
	int h = a->h, w = a->w, cur = -1;   /* cur: the buffer holding the image, -1: src */

	for (int i = 0; i < a->spec.n; i++) {
		const aug_draw_op *o = &d->op[i];
		const uint8_t *in = cur < 0 ? src : wk->buf[cur];
		uint8_t *out = wk->buf[cur < 0 ? 0 : !cur];

		switch (a->spec.op[i].kind) {
		case AUG_FLIP:
			if (!o->on)
				continue;
			aug_flip(out, in, h, w);
			break;
		case AUG_SHIFT:
			aug_shift(out, in, h, w, (int)a->spec.op[i].a, o->dx, o->dy);
			break;
		case AUG_SCALE:
			if (crop_resize(wk, out, in, h, w, o->box, err))
				return -1;
			break;
		case AUG_ROTATE:
			aug_rotate(out, in, h, w, o->degrees);
			break;
		case AUG_COLOR:
			aug_color(out, in, h, w, o->bright, o->contrast, o->sat);
			break;
		case AUG_GRAY:
			if (!o->on)
				continue;
			aug_gray(out, in, h, w);
			break;
		}
		cur = out == wk->buf[0] ? 0 : 1;
	}
	memcpy(dst, cur < 0 ? src : wk->buf[cur], (size_t)h * w * 3);
	return 0;
}

int aug_apply(aug *a, uint8_t *dst, const uint8_t *src, const aug_draw *d, char *err)
{
	return apply_one(a, &a->work[0], dst, src, d, err);
}

typedef struct {
	aug *a;
	uint8_t *dst;
	const uint8_t *src;
	int B;
	uint64_t seed;
	int64_t epoch;
	const int64_t *key;
} batch_job;

static void batch_worker(void *ctx, int k, int n)
{
	batch_job *j = ctx;
	aug_work *wk = &j->a->work[k];
	size_t img = (size_t)j->a->h * j->a->w * 3;
	long lo, hi;

	wk->rc = 0;
	par_share(j->B, k, n, &lo, &hi);
	for (long i = lo; i < hi && !wk->rc; i++) {
		aug_draw d;

		aug_draw_image(&j->a->spec, j->a->h, j->a->w, j->seed, j->epoch, j->key[i], &d);
		wk->rc = apply_one(j->a, wk, j->dst + (size_t)i * img, j->src + (size_t)i * img, &d, wk->err);
	}
}

int aug_batch(aug *a, uint8_t *dst, const uint8_t *src, int B, uint64_t seed, int64_t epoch,
	      const int64_t *key, char *err)
{
	batch_job j = { a, dst, src, B, seed, epoch, key };
	int n = B < a->threads ? B : a->threads;

	if (n < 1)
		return 0;
	par_run(n, batch_worker, &j);
	for (int k = 0; k < n; k++)
		if (a->work[k].rc)
			return err_set(err, "%s", a->work[k].err);
	return 0;
}

/* ---- cnn-apply's stream ---- */

#define STREAM_BATCH 16

static int read_all(npy_src *s, void *buf, size_t n, const char *name, char *err)
{
	int64_t got = npy_src_fill(s, buf, n, name, err);

	if (got < 0)
		return -1;
	if ((size_t)got < n)
		return err_set(err, "%s: truncated data: the stream ends inside an array", name);
	return 0;
}

/* An image array, its header read: [N, H, W, 3] -> [N * copies, H, W, 3], a few images
 * at a time, each copy a batch over them on the threads. */
static int stream_images(const aug_spec *s, npy_src *src, const tensor *hd, int64_t idx, const char *inname,
			 FILE *out, const char *outname, int copies, uint64_t seed, int threads,
			 int64_t *nimg, char *err)
{
	int r4 = hd->ndim == 4;
	int64_t N = r4 ? hd->shape[0] : 1, H = hd->shape[r4], W = hd->shape[r4 + 1];
	int per = copies < STREAM_BATCH ? STREAM_BATCH / copies : 1;
	tensor o = { .dtype = DT_U1, .ndim = 4 };
	uint8_t *in = NULL, *res = NULL;
	int64_t keys[STREAM_BATCH];
	size_t img;
	aug a;
	int rc = -1;

	if (H < 1 || W < 1 || W > INT32_MAX / 3 / H)
		return err_set(err, "%s: array %lld: images of %lldx%lld are empty or too large", inname,
			       (long long)idx, (long long)H, (long long)W);
	if (aug_check(s, (int)H, (int)W, err))
		return -2;
	if (aug_init(&a, s, (int)H, (int)W, threads, err))
		return -1;
	img = (size_t)(H * W * 3);
	o.shape[0] = N * copies, o.shape[1] = H, o.shape[2] = W, o.shape[3] = 3;
	/* res [copies, per, H, W, 3]: written out image-major */
	if (!(in = malloc(img * (size_t)per)) || !(res = malloc(img * (size_t)per * (size_t)copies))) {
		err_set(err, "out of memory");
		goto out;
	}
	if (npy_write_header(out, outname, &o, err))
		goto out;
	for (int64_t i = 0; i < N; i += per) {
		int b = N - i < per ? (int)(N - i) : per;

		if (read_all(src, in, img * (size_t)b, inname, err))
			goto out;
		for (int k = 0; k < b; k++)
			keys[k] = i + k;
		for (int c = 0; c < copies; c++)
			if (aug_batch(&a, res + (size_t)c * b * img, in, b, seed, c, keys, err))
				goto out;
		for (int k = 0; k < b; k++)
			for (int c = 0; c < copies; c++)
				if (fwrite(res + ((size_t)c * b + k) * img, img, 1, out) != 1) {
					err_sys(err, "%s: write error", outname);
					goto out;
				}
		*nimg += (int64_t)b * copies;
	}
	rc = 0;
out:
	free(in);
	free(res);
	aug_free(&a);
	return rc;
}

/* labels i8 [N] -> [N * copies]; any other array as it is. */
static int stream_other(npy_src *src, const tensor *hd, const char *inname, FILE *out, const char *outname,
			int copies, char *err)
{
	tensor t = *hd, o;
	int rc = -1;

	if (npy_src_data(src, inname, &t, err) != 1)
		return -1;
	if (t.dtype != DT_I8 || t.ndim != 1 || copies == 1) {
		rc = npy_write(out, outname, &t, err);
		tensor_free(&t);
		return rc;
	}
	if (tensor_alloc(&o, DT_I8, 1, (int64_t[]){ t.shape[0] * copies }, 0, err) == 0) {
		for (int64_t i = 0; i < t.shape[0]; i++)
			for (int c = 0; c < copies; c++)
				((int64_t *)o.data)[i * copies + c] = ((int64_t *)t.data)[i];
		rc = npy_write(out, outname, &o, err);
		tensor_free(&o);
	}
	tensor_free(&t);
	return rc;
}

int aug_stream(const aug_spec *s, FILE *in, const char *inname, FILE *out, const char *outname,
	       int copies, uint64_t seed, int threads, int64_t *nimg, char *err)
{
	npy_src src;
	int images = 0;

	*nimg = 0;
	npy_src_file(&src, in);
	for (int64_t idx = 0;; idx++) {
		tensor h;
		int rc = npy_src_header(&src, inname, &h, err);
		int64_t nbytes;

		if (rc < 0)
			return -1;
		if (rc == 0)
			break;
		nbytes = tensor_nbytes(&h);
		if (src.left >= 0 && nbytes > src.left)
			return err_set(err, "%s: truncated data: array %lld wants %lld bytes, %lld are left",
				       inname, (long long)idx, (long long)nbytes, (long long)src.left);
		if ((h.ndim == 3 || h.ndim == 4) && h.shape[h.ndim - 1] == 3 && h.dtype == DT_U1) {
			if ((rc = stream_images(s, &src, &h, idx, inname, out, outname, copies, seed, threads, nimg,
						err)))
				return rc;
			images++;
		} else if (h.ndim >= 3 || (h.dtype != DT_U && h.dtype != DT_I8)) {
			return err_set(err, "%s: array %lld is not uint8 RGB images [N, H, W, 3], labels or "
				       "class names", inname, (long long)idx);
		} else if (stream_other(&src, &h, inname, out, outname, copies, err)) {
			return -1;
		}
	}
	if (!images)
		return err_set(err, "%s: no uint8 image arrays [N, H, W, 3] in the input", inname);
	return 0;
}
