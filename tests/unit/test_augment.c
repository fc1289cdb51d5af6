/* Unit tests for augment: the spec's grammar and errors, each operation's geometry exact
 * on a fixed draw, the identities (rotate 0, colour 0, scale 1-1), and draws that depend
 * on (seed, epoch, image) alone: any thread count, any place in a batch. */
#include "check.h"
#include "img/augment.h"
#include "util/errmsg.h"

#include <stdlib.h>
#include <string.h>

static uint8_t *noise(int h, int w, unsigned seed)
{
	uint8_t *p = malloc((size_t)h * w * 3);

	if (!p)
		abort();
	for (size_t i = 0; i < (size_t)h * w * 3; i++)
		p[i] = (uint8_t)((seed = seed * 1103515245u + 12345u) >> 16);
	return p;
}

static const uint8_t *px(const uint8_t *img, int w, int y, int x)
{
	return img + ((size_t)y * w + x) * 3;
}

static void test_parse(void)
{
	static const struct { const char *in, *canon; } good[] = {
		{ "flip", "flip" },
		{ "flip:0.5", "flip" },
		{ "flip:1,gray:0.25", "flip:1,gray:0.25" },
		{ "shift:4,scale:0.08-1,rotate:15,color:0.4", "shift:4,scale:0.08-1,rotate:15,color:0.4" },
		{ "none", "" },
		{ "", "" },
	};
	/* each bad spec and the text its error must hold (the item named) */
	static const struct { const char *in, *names; } bad[] = {
		{ "flip,blur:3", "'blur:3'" },
		{ "rotate:x", "'rotate:x'" },
		{ "rotate:200", "'rotate:200'" },
		{ "scale:0.9-0.5", "'scale:0.9-0.5'" },
		{ "scale:-0.5-1", "'scale:-0.5-1'" },
		{ "scale:0.5", "'scale:0.5'" },
		{ "shift:-2", "'shift:-2'" },
		{ "shift:2.5", "'shift:2.5'" },
		{ "shift", "'shift'" },
		{ "color:1.5", "'color:1.5'" },
		{ "gray:-0.1", "'gray:-0.1'" },
		{ "flip,,gray:1", "an empty item" },
		{ "flip,", "an empty item" },
	};
	char err[ERR_MAX];
	aug_spec s;

	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		CHECK(aug_parse(&s, good[i].in, err) == 0, "'%s': %s", good[i].in, err);
		CHECK(!strcmp(s.text, good[i].canon), "'%s' reads as '%s', not '%s'", good[i].in, s.text,
		      good[i].canon);
	}
	CHECK(aug_parse(&s, "scale:0.5-0.75,flip", err) == 0 && s.n == 2 && s.op[0].kind == AUG_SCALE &&
		      s.op[0].a == 0.5 && s.op[0].b == 0.75 && s.op[1].kind == AUG_FLIP && s.op[1].a == 0.5,
	      "items in order with their numbers");
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = 0;
		CHECK(aug_parse(&s, bad[i].in, err) < 0, "'%s' is refused", bad[i].in);
		CHECK(strstr(err, bad[i].names), "'%s': the error '%s' names %s", bad[i].in, err, bad[i].names);
	}
	CHECK(aug_parse(&s, "flip,shift:8", err) == 0 && aug_check(&s, 8, 20, err) < 0 && strstr(err, "shift:8"),
	      "a pad of 8 on 8-pixel-high images is refused, naming the item: %s", err);
	CHECK(aug_check(&s, 9, 9, err) == 0, "a pad of 8 fits 9x9: %s", err);
}

static void test_flip_shift(void)
{
	int h = 7, w = 10, pad = 4;
	uint8_t *a = noise(h, w, 1), *b = noise(h, w, 2), *c = noise(h, w, 3);
	int ok = 1;

	aug_flip(b, a, h, w);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			ok &= !memcmp(px(b, w, y, x), px(a, w, y, w - 1 - x), 3);
	CHECK(ok, "flip gives the mirrored bytes");
	aug_shift(b, a, h, w, pad, pad, pad);
	CHECK(!memcmp(a, b, (size_t)h * w * 3), "shift at the centre of the padding is the identity");
	/* the crop's corner at (pad + 3, pad - 2): the image moves 3 left and 2 down */
	aug_shift(b, a, h, w, pad, pad + 3, pad - 2);
	ok = 1;
	for (int y = 2; y < h; y++)
		for (int x = 0; x + 3 < w; x++)
			ok &= !memcmp(px(b, w, y, x), px(a, w, y - 2, x + 3), 3);
	CHECK(ok, "shift by (3, -2) moves every pixel it keeps by (3, -2)");
	/* what came from outside is reflected without repeating the edge: row -1 is row 1,
	 * column w is column w - 2 */
	CHECK(!memcmp(px(b, w, 1, 0), px(a, w, 1, 3), 3) && !memcmp(px(b, w, 0, 0), px(a, w, 2, 3), 3),
	      "rows from above the image are its rows 1, 2 reflected");
	CHECK(!memcmp(px(b, w, 3, w - 3), px(a, w, 1, w - 2), 3) && !memcmp(px(b, w, 3, w - 1), px(a, w, 1, w - 4), 3),
	      "columns from beyond the right edge are reflected");
	/* the fastest path (a middle run copied whole) against a pixel-by-pixel reference */
	ok = 1;
	for (int dy = 0; dy <= 2 * pad; dy++)
		for (int dx = 0; dx <= 2 * pad; dx++) {
			aug_shift(c, a, h, w, pad, dx, dy);
			for (int y = 0; y < h; y++)
				for (int x = 0; x < w; x++) {
					int sy = y + dy - pad, sx = x + dx - pad;

					sy = sy < 0 ? -sy : sy >= h ? 2 * (h - 1) - sy : sy;
					sx = sx < 0 ? -sx : sx >= w ? 2 * (w - 1) - sx : sx;
					ok &= !memcmp(px(c, w, y, x), px(a, w, sy, sx), 3);
				}
		}
	CHECK(ok, "every shift of a 7x10 image by up to 4 equals the reflected reference");
	free(a);
	free(b);
	free(c);
}

static void test_rotate(void)
{
	int h = 9, w = 12;
	uint8_t *a = noise(h, w, 4), *b = noise(h, w, 5), *c = noise(h, w, 6), *d = noise(h, w, 7);
	int ok = 1;

	aug_rotate(b, a, h, w, 0);
	CHECK(!memcmp(a, b, (size_t)h * w * 3), "rotate 0 is the identity");
	aug_rotate(b, a, h, w, 180);
	aug_rotate(d, a, h, w, -180);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			ok &= !memcmp(px(b, w, y, x), px(a, w, h - 1 - y, w - 1 - x), 3);
	CHECK(ok, "rotate 180 turns the image upside down and mirrors it");
	CHECK(!memcmp(b, d, (size_t)h * w * 3), "rotate -180 is rotate 180");
	/* a double flip: left-right, then (transposed by hand) top-bottom */
	aug_flip(c, a, h, w);
	for (int y = 0; y < h; y++)
		memcpy(d + (size_t)y * w * 3, c + (size_t)(h - 1 - y) * w * 3, (size_t)w * 3);
	CHECK(!memcmp(b, d, (size_t)h * w * 3), "rotate 180 equals a double flip");
	free(a);
	free(b);
	free(c);
	free(d);
	/* 90 degrees on a square: counter-clockwise as displayed, so the right edge goes up */
	h = w = 11;
	a = noise(h, w, 8), b = noise(h, w, 9);
	aug_rotate(b, a, h, w, 90);
	ok = 1;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			ok &= !memcmp(px(b, w, y, x), px(a, w, x, w - 1 - y), 3);
	CHECK(ok, "rotate 90 puts the right column on the top row, exactly");
	aug_rotate(b, a, h, w, 17);
	CHECK(!memcmp(px(b, w, 5, 5), px(a, w, 5, 5), 3), "a rotation keeps the centre pixel");
	free(a);
	free(b);
}

static void test_color_gray(void)
{
	int h = 6, w = 5;
	uint8_t *a = noise(h, w, 10), *b = noise(h, w, 11);
	int ok = 1, lo = 1;

	aug_color(b, a, h, w, 1, 1, 1);
	CHECK(!memcmp(a, b, (size_t)h * w * 3), "colour factors of 1 are the identity");
	aug_color(b, a, h, w, 2, 1, 1);
	for (int i = 0; i < h * w * 3; i++)
		ok &= b[i] == (a[i] * 2 > 255 ? 255 : a[i] * 2);
	CHECK(ok, "brightness 2 doubles each value, clipped at 255");
	aug_color(b, a, h, w, 1, 1, 0);
	ok = 1;
	for (int i = 0; i < h * w; i++)
		ok &= b[3 * i] == b[3 * i + 1] && b[3 * i] == b[3 * i + 2];
	CHECK(ok, "saturation 0 is gray");
	aug_color(b, a, h, w, 1, 0, 1);
	for (int i = 1; i < h * w * 3; i++)
		lo &= b[i] == b[0];
	CHECK(lo, "contrast 0 is one flat gray (the mean)");
	aug_gray(b, a, h, w);
	ok = 1;
	for (int i = 0; i < h * w; i++) {
		double g = 0.299 * a[3 * i] + 0.587 * a[3 * i + 1] + 0.114 * a[3 * i + 2];

		ok &= b[3 * i] == b[3 * i + 2] && b[3 * i] == b[3 * i + 1] && fabs(b[3 * i] - g) <= 0.5001;
	}
	CHECK(ok, "gray is 0.299 R + 0.587 G + 0.114 B, rounded, in all three channels");
	memcpy(b, a, (size_t)h * w * 3);
	aug_color(b, b, h, w, 1.3f, 0.7f, 1.2f);
	aug_color(a, a, h, w, 1.3f, 0.7f, 1.2f);
	CHECK(!memcmp(a, b, (size_t)h * w * 3), "colour in place");
	free(a);
	free(b);
}

/* B images through spec at (seed 5, epoch) with keys; -1 on error. */
static int run(const char *spec, const uint8_t *src, uint8_t *dst, int B, int h, int w, int threads,
	       int64_t epoch, const int64_t *keys)
{
	char err[ERR_MAX];
	aug_spec s;
	aug a;
	int rc;

	if (aug_parse(&s, spec, err) || aug_init(&a, &s, h, w, threads, err)) {
		fprintf(stderr, "%s: %s\n", spec, err);
		return -1;
	}
	rc = aug_batch(&a, dst, src, B, 5, epoch, keys, err);
	aug_free(&a);
	return rc;
}

static void test_identities_and_draws(void)
{
	enum { B = 12 };
	int h = 24, w = 32;
	size_t img = (size_t)h * w * 3;
	uint8_t *src = noise(h * B, w, 12), *x = malloc(img * B), *y = malloc(img * B);
	int64_t keys[B], rev[B];
	const char *full = "flip,shift:3,scale:0.3-0.9,rotate:25,color:0.4,gray:0.3";
	int same = 1, differ = 0;

	for (int i = 0; i < B; i++)
		keys[i] = 100 + i, rev[i] = 100 + B - 1 - i;
	CHECK(run("color:0,rotate:0,scale:1-1,flip:0,gray:0,shift:0", src, x, B, h, w, 2, 0, keys) == 0 &&
		      !memcmp(src, x, img * B),
	      "colour 0, rotate 0, scale 1-1, shift 0 and probability-0 flip and gray leave every image");
	CHECK(run("flip:1", src, x, B, h, w, 1, 0, keys) == 0, "flip:1");
	aug_flip(y, src, h, w);
	CHECK(!memcmp(x, y, img), "flip:1 always flips");
	CHECK(run(full, src, x, B, h, w, 1, 3, keys) == 0 && run(full, src, y, B, h, w, 3, 3, keys) == 0 &&
		      !memcmp(x, y, img * B),
	      "1 and 3 threads give the same bytes");
	/* the batch reversed, each image with its own key: each comes out the same */
	for (int i = 0; i < B; i++)
		memcpy(y + img * i, src + img * (B - 1 - i), img);
	CHECK(run(full, y, y, 0, h, w, 2, 3, rev) == 0, "an empty batch");
	{
		uint8_t *r = malloc(img * B);

		for (int i = 0; i < B; i++)
			memcpy(r + img * i, src + img * (B - 1 - i), img);
		CHECK(run(full, r, y, B, h, w, 2, 3, rev) == 0, "reversed batch");
		for (int i = 0; i < B; i++)
			same &= !memcmp(x + img * i, y + img * (B - 1 - i), img);
		CHECK(same, "an image's draw depends on its key, not its place in the batch");
		free(r);
	}
	CHECK(run(full, src, y, B, h, w, 2, 4, keys) == 0, "epoch 4");
	for (int i = 0; i < B; i++)
		differ += !!memcmp(x + img * i, y + img * i, img);
	CHECK(differ >= B - 1, "another epoch draws anew (%d of %d images differ)", differ, B);
	{
		aug_spec s;
		aug_draw d1, d2;
		char err[ERR_MAX];

		CHECK(aug_parse(&s, "scale:0.3-0.6", err) == 0, "%s", err);
		aug_draw_image(&s, h, w, 5, 0, 7, &d1);
		aug_draw_image(&s, h, w, 5, 0, 7, &d2);
		CHECK(!memcmp(&d1, &d2, sizeof d1), "a draw is a function of its key");
		for (int k = 0; k < 200; k++) {
			const int *b;
			double area;

			aug_draw_image(&s, h, w, 5, 0, k, &d1);
			b = d1.op[0].box;
			area = (double)(b[2] - b[0]) * (b[3] - b[1]) / (h * w);
			if (b[0] < 0 || b[1] < 0 || b[2] > w || b[3] > h || area < 0.25 || area > 0.7) {
				CHECK(0, "crop %d,%d,%d,%d (area %.2f) outside the image or 0.3-0.6", b[0], b[1], b[2],
				      b[3], area);
				break;
			}
		}
	}
	free(src);
	free(x);
	free(y);
}

/* scale:1-1 on images of aspect 4/3 (where a rounded 15x12 crop has 94% of the area) */
static void test_scale_whole(void)
{
	int h = 12, w = 16, ok = 1;
	uint8_t *a = noise(h, w, 13), *b = malloc((size_t)h * w * 3);

	for (int64_t k = 0; k < 300 && ok; k++) {
		CHECK(run("scale:1-1", a, b, 1, h, w, 1, k, &k) == 0, "run");
		ok = !memcmp(a, b, (size_t)h * w * 3);
	}
	CHECK(ok, "scale:1-1 is the identity on 16x12 images, for every draw");
	free(a);
	free(b);
}

static void test_scale_constant(void)
{
	int h = 20, w = 30, ok = 1;
	uint8_t *a = malloc((size_t)h * w * 3), *b = malloc((size_t)h * w * 3);
	int64_t keys[1] = { 0 };

	for (int i = 0; i < h * w; i++)
		a[3 * i] = 12, a[3 * i + 1] = 130, a[3 * i + 2] = 250;
	for (int k = 0; k < 20 && ok; k++) {
		keys[0] = k;
		CHECK(run("scale:0.1-0.5,rotate:30,shift:5", a, b, 1, h, w, 1, 0, keys) == 0, "run");
		ok = !memcmp(a, b, (size_t)h * w * 3);
	}
	CHECK(ok, "a constant image stays the same constant under crops, rotations, shifts");
	free(a);
	free(b);
}

int main(void)
{
	test_parse();
	test_flip_shift();
	test_rotate();
	test_color_gray();
	test_identities_and_draws();
	test_scale_whole();
	test_scale_constant();
	return check_done("test_augment");
}
