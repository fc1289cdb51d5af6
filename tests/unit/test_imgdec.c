/* Unit tests for imgdec: sniffing, JPEG (RGB, gray, Adobe CMYK, EXIF orientation, scaled
 * decoding, truncation), PNG and GIF, on images made in memory by imgenc; rows through a sink
 * are the whole image's, however many rows the sink takes at a time. */
#include "check.h"
#include "util/errmsg.h"
#include "img/imgdec.h"
#include "img/imgenc.h"

#include <stdlib.h>
#include <string.h>

/* w x h RGB: red rises with x, green with y, blue constant: every pixel tells where it is */
static uint8_t *ramp(int w, int h)
{
	uint8_t *p = malloc((size_t)w * h * 3);
	if (!p)
		abort();
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			p[(y * w + x) * 3] = (uint8_t)(x * 255 / (w - 1));
			p[(y * w + x) * 3 + 1] = (uint8_t)(y * 255 / (h - 1));
			p[(y * w + x) * 3 + 2] = 90;
		}
	return p;
}

static double mad_rgbx(const imgdec_image *im, const uint8_t *rgb)
{
	double s = 0;
	for (int i = 0; i < im->w * im->h; i++)
		for (int c = 0; c < 3; c++)
			s += abs(im->pix[i * 4 + c] - rgb[i * 3 + c]);
	return s / (im->w * im->h * 3);
}

static void test_sniff(void)
{
	CHECK(imgdec_sniff((const unsigned char *)"\xff\xd8\xff\xe0", 4) == IMGDEC_JPEG, "jpeg");
	CHECK(imgdec_sniff((const unsigned char *)"\x89PNG\r\n\x1a\n", 8) == IMGDEC_PNG, "png");
	CHECK(imgdec_sniff((const unsigned char *)"GIF89a", 6) == IMGDEC_GIF, "gif");
	CHECK(imgdec_sniff((const unsigned char *)"MATLAB 5.0", 10) == IMGDEC_UNKNOWN, "mat");
	CHECK(imgdec_sniff((const unsigned char *)"\xff", 1) == IMGDEC_UNKNOWN, "short");
}

static void test_jpeg(void)
{
	char err[ERR_MAX];
	int w = 64, h = 48;
	uint8_t *rgb = ramp(w, h), *gray = malloc((size_t)w * h), cmyk[16 * 16 * 4];
	unsigned char *j;
	size_t n;
	imgdec_image im;
	int ok = 1;

	CHECK(imgenc_jpeg(rgb, w, h, 3, 95, &j, &n, err) == 0, "%s", err);
	CHECK(imgdec_mem(j, n, "rgb.jpg", NULL, &im, err) == 0, "%s", err);
	CHECK(im.w == w && im.h == h && im.kind == IMGDEC_JPEG && im.scale == 8, "%dx%d", im.w, im.h);
	CHECK(mad_rgbx(&im, rgb) < 3, "RGB JPEG close to its source: %g", mad_rgbx(&im, rgb));
	imgdec_free(&im);

	/* scaled decoding: 1/2 when the target is at most half, never below the target */
	imgdec_hint cover = { IMGDEC_COVER, 32, 24, 0 }, inside = { IMGDEC_INSIDE, 20, 20, 0 }, big = { IMGDEC_COVER, 33, 24, 0 };
	imgdec_hint inside16 = { IMGDEC_INSIDE, 16, 16, 0 };
	CHECK(imgdec_mem(j, n, "rgb.jpg", &cover, &im, err) == 0 && im.w == 32 && im.h == 24 && im.scale == 4,
	      "cover: %dx%d scale %d", im.w, im.h, im.scale);
	imgdec_free(&im);
	CHECK(imgdec_mem(j, n, "rgb.jpg", &inside, &im, err) == 0 && im.w == 32 && im.h == 24 && im.scale == 4,
	      "inside 20x20, 64x48 fits as 20x15: 1/4 (16x12) is too small: %dx%d", im.w, im.h);
	imgdec_free(&im);
	CHECK(imgdec_mem(j, n, "rgb.jpg", &inside16, &im, err) == 0 && im.w == 16 && im.h == 12 && im.scale == 2,
	      "inside 16x16 fits as 16x12: 1/4 is enough: %dx%d", im.w, im.h);
	imgdec_free(&im);
	CHECK(imgdec_mem(j, n, "rgb.jpg", &big, &im, err) == 0 && im.w == 64 && im.scale == 8,
	      "33 wide needs full size: %dx%d", im.w, im.h);
	imgdec_free(&im);

	/* truncated: an error naming the file, not a grey-filled picture */
	CHECK(imgdec_mem(j, n - n / 4, "cut.jpg", NULL, &im, err) == -1 && !im.pix, "truncated JPEG refused");
	CHECK(strstr(err, "cut.jpg: ") == err && strstr(err, "truncated"), "message: %s", err);
	j[n / 3] ^= 0xff;
	j[n / 3 + 1] = 0xff;
	j[n / 3 + 2] = 0xd9;  /* an EOI in the middle of the scan */
	CHECK(imgdec_mem(j, n, "bad.jpg", NULL, &im, err) == -1 && !im.pix, "corrupt JPEG refused: %s", err);
	CHECK(imgdec_mem(j, 10, "tiny.jpg", NULL, &im, err) == -1 && strstr(err, "tiny.jpg"), "%s", err);
	free(j);

	for (int i = 0; i < w * h; i++)
		gray[i] = (uint8_t)(i * 7);
	CHECK(imgenc_jpeg(gray, w, h, 1, 90, &j, &n, err) == 0, "%s", err);
	CHECK(imgdec_mem(j, n, "gray.jpg", NULL, &im, err) == 0, "%s", err);
	for (int i = 0; i < w * h; i++)
		ok &= im.pix[i * 4] == im.pix[i * 4 + 1] && im.pix[i * 4 + 1] == im.pix[i * 4 + 2];
	CHECK(ok, "grayscale comes out R = G = B");
	imgdec_free(&im);
	free(j);

	/* Adobe CMYK stores inverted ink: cyan is C=255 stored as 0 */
	for (int i = 0; i < 16 * 16; i++)
		cmyk[i * 4] = 0, cmyk[i * 4 + 1] = 255, cmyk[i * 4 + 2] = 255, cmyk[i * 4 + 3] = 255;
	CHECK(imgenc_jpeg(cmyk, 16, 16, 4, 95, &j, &n, err) == 0, "%s", err);
	CHECK(imgdec_mem(j, n, "cmyk.jpg", NULL, &im, err) == 0, "%s", err);
	CHECK(im.pix[0] <= 3 && im.pix[1] >= 252 && im.pix[2] >= 252, "cyan: %d %d %d", im.pix[0], im.pix[1], im.pix[2]);
	imgdec_free(&im);
	free(j);
	free(rgb);
	free(gray);
}

/* A JPEG with an APP1 Exif block (little- or big-endian TIFF) carrying one orientation. */
static unsigned char *with_orientation(const unsigned char *j, size_t n, int o, int le, size_t *outn)
{
	unsigned char app[] = { 0xFF, 0xE1, 0, 34, 'E', 'x', 'i', 'f', 0, 0,
				'I', 'I', 42, 0, 8, 0, 0, 0,           /* TIFF header, IFD0 at 8 */
				1, 0,                                  /* one entry */
				0x12, 0x01, 3, 0, 1, 0, 0, 0, (unsigned char)o, 0, 0, 0,
				0, 0, 0, 0 };                          /* no next IFD */
	unsigned char *out = malloc(n + sizeof app);

	if (!le) {  /* the same in Motorola order */
		unsigned char be[] = { 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (unsigned char)o, 0, 0 };
		memcpy(app + 10, be, sizeof be);
	}
	memcpy(out, j, 2);
	memcpy(out + 2, app, sizeof app);
	memcpy(out + 2 + sizeof app, j + 2, n - 2);
	*outn = n + sizeof app;
	return out;
}

static void test_orientation(void)
{
	char err[ERR_MAX];
	int w = 40, h = 24;
	uint8_t *rgb = ramp(w, h);
	unsigned char *j, *e;
	size_t n, en;
	imgdec_image im;

	CHECK(imgenc_jpeg(rgb, w, h, 3, 95, &j, &n, err) == 0, "%s", err);
	for (int o = 1; o <= 8; o++)
		for (int le = 0; le <= 1; le++) {
			e = with_orientation(j, n, o, le, &en);
			CHECK(imgdec_mem(e, en, "o.jpg", NULL, &im, err) == 0, "%s", err);
			int sw = o >= 5, W = sw ? h : w, H = sw ? w : h;
			CHECK(im.w == W && im.h == H, "orientation %d: %dx%d", o, im.w, im.h);
			/* where the source's top-left (dark red, dark green) corner lands */
			static const int cx[9] = { 0, 0, 1, 1, 0, 0, 1, 1, 0 }, cy[9] = { 0, 0, 0, 1, 1, 0, 0, 1, 1 };
			const uint8_t *p = im.pix + ((size_t)(cy[o] * (H - 1)) * W + cx[o] * (W - 1)) * 4;
			CHECK(p[0] < 30 && p[1] < 30, "orientation %d (%s): corner %d %d", o, le ? "II" : "MM", p[0], p[1]);
			/* and the source's top-right corner (bright red): one step clockwise etc. */
			static const int rx[9] = { 0, 1, 0, 0, 1, 0, 1, 1, 0 }, ry[9] = { 0, 0, 0, 1, 1, 1, 1, 0, 0 };
			p = im.pix + ((size_t)(ry[o] * (H - 1)) * W + rx[o] * (W - 1)) * 4;
			CHECK(p[0] > 225 && p[1] < 30, "orientation %d: top-right corner went to %d,%d: %d %d", o, rx[o], ry[o], p[0], p[1]);
			imgdec_free(&im);
			free(e);
		}
	free(j);
	free(rgb);
}

static void test_png_gif(void)
{
	char err[ERR_MAX];
	int w = 30, h = 20;
	uint8_t *rgb = ramp(w, h), gray[30 * 20];
	const uint8_t *frames[2] = { gray, gray };
	unsigned char *b;
	size_t n;
	imgdec_image im;
	int ok = 1;

	CHECK(imgenc_png(rgb, w, h, 3, &b, &n, err) == 0, "%s", err);
	CHECK(imgdec_mem(b, n, "p.jpg", NULL, &im, err) == 0 && im.kind == IMGDEC_PNG, "%s", err);
	CHECK(im.w == w && im.h == h && mad_rgbx(&im, rgb) == 0, "PNG exact");
	imgdec_free(&im);
	CHECK(imgdec_mem(b, n - 20, "p.png", NULL, &im, err) == -1 && strstr(err, "p.png"), "cut PNG: %s", err);
	free(b);

	for (int i = 0; i < w * h; i++)
		gray[i] = (uint8_t)(i % 200);
	CHECK(imgenc_gif(frames, 2, w, h, 1, 10, &b, &n, err) == 0, "%s", err);
	CHECK(imgdec_mem(b, n, "g.jpg", NULL, &im, err) == 0 && im.kind == IMGDEC_GIF, "%s", err);
	CHECK(im.w == w && im.h == h, "GIF %dx%d", im.w, im.h);
	for (int i = 0; i < w * h; i++)
		ok &= abs(im.pix[i * 4] - gray[i]) <= 1 && im.pix[i * 4] == im.pix[i * 4 + 2];
	CHECK(ok, "GIF first frame: the gray values");
	imgdec_free(&im);
	CHECK(imgdec_mem(b, 40, "g.gif", NULL, &im, err) == -1 && strstr(err, "g.gif"), "cut GIF: %s", err);
	free(b);
	CHECK(imgdec_mem((const unsigned char *)"MATLAB 5.0 MAT-file", 19, "x.mat", NULL, &im, err) == -1 &&
	      !strcmp(err, "x.mat: not an image (neither JPEG, PNG nor GIF)"), "%s", err);
	CHECK(imgdec_file("/nonexistent/x.jpg", NULL, &im, err) == -1 && strstr(err, "/nonexistent/x.jpg: No such file"), "%s", err);
	free(rgb);
}

/* a sink keeping every row (RGB), taking at most max rows a push */
struct rows_sink {
	int max, w, h, begun, got, fail;
	uint8_t *rgb, *room;
};

static int rs_begin(void *ctx, int w, int h, char *err)
{
	struct rows_sink *r = ctx;

	r->begun++;
	r->w = w;
	r->h = h;
	if (r->fail)
		return err_set(err, "sink: no thanks");
	r->rgb = malloc((size_t)w * h * 3);
	r->room = malloc(((size_t)w * 3 + 7) * r->max);
	return r->rgb && r->room ? 0 : err_set(err, "sink: out of memory");
}

static uint8_t *rs_room(void *ctx, int *max, size_t *stride)
{
	struct rows_sink *r = ctx;

	*max = r->max;
	*stride = (size_t)r->w * 3 + 7;  /* rows need not be packed */
	return r->room;
}

static void rs_push(void *ctx, int n)
{
	struct rows_sink *r = ctx;

	for (int i = 0; i < n && r->got < r->h; i++, r->got++)
		memcpy(r->rgb + (size_t)r->got * r->w * 3, r->room + (size_t)i * (r->w * 3 + 7), (size_t)r->w * 3);
}

static void test_sink(void)
{
	char err[ERR_MAX];
	int w = 67, h = 45, ok;
	uint8_t *rgb = ramp(w, h), cmyk[16 * 16 * 4];
	unsigned char *b[6], *cut;
	size_t n[6];
	imgdec_hint half = { IMGDEC_COVER, 30, 20, 0 };
	imgdec_image im;

	for (int i = 0; i < 16 * 16 * 4; i++)
		cmyk[i] = (uint8_t)(i * 13);
	CHECK(imgenc_jpeg(rgb, w, h, 3, 90, &b[0], &n[0], err) == 0, "%s", err);
	CHECK(imgenc_jpeg(rgb, w * h / 4, 4, 1, 90, &b[1], &n[1], err) == 0, "%s", err);  /* gray */
	CHECK(imgenc_jpeg(cmyk, 16, 16, 4, 90, &b[2], &n[2], err) == 0, "%s", err);
	b[3] = with_orientation(b[0], n[0], 6, 1, &n[3]);
	CHECK(imgenc_png(rgb, w, h, 3, &b[4], &n[4], err) == 0, "%s", err);
	const uint8_t *frames[1] = { rgb };
	CHECK(imgenc_gif(frames, 1, w, h, 1, 10, &b[5], &n[5], err) == 0, "%s", err);
	for (int f = 0; f < 6; f++)
		for (int hinted = 0; hinted <= 1; hinted++)
			for (int max = 1; max <= 100; max = max * 4 + 1) {
				struct rows_sink r = { .max = max };
				imgdec_sink s = { &r, rs_begin, rs_room, rs_push };
				const imgdec_hint *hint = hinted ? &half : NULL;
				CHECK(imgdec_mem(b[f], n[f], "x", hint, &im, err) == 0, "%s", err);
				CHECK(imgdec_mem_sink(b[f], n[f], "x", hint, &s, err) == 0, "%s", err);
				ok = r.begun == 1 && r.w == im.w && r.h == im.h && r.got == im.h;
				for (int i = 0; ok && i < im.w * im.h; i++)
					ok &= !memcmp(r.rgb + i * 3, im.pix + i * 4, 3);
				CHECK(ok, "file %d, hint %d, %d rows a push: the whole image's rows (%dx%d, %d rows)",
				      f, hinted, max, r.w, r.h, r.got);
				imgdec_free(&im);
				free(r.rgb);
				free(r.room);
			}

	struct rows_sink r = { .max = 16 };
	imgdec_sink s = { &r, rs_begin, rs_room, rs_push };
	cut = b[0];
	CHECK(imgdec_mem_sink(cut, n[0] - 40, "cut.jpg", NULL, &s, err) == -1 && strstr(err, "cut.jpg: truncated"),
	      "truncated JPEG through a sink: %s", err);
	free(r.rgb);
	free(r.room);
	r = (struct rows_sink){ .max = 16, .fail = 1 };
	for (int f = 0; f < 6; f++) {
		CHECK(imgdec_mem_sink(b[f], n[f], "x", NULL, &s, err) == -1 && !strcmp(err, "sink: no thanks"),
		      "file %d: the sink's refusal stops the decoding: %s", f, err);
		free(b[f]);
	}
	CHECK(r.got == 0, "and no row was pushed");

	unsigned char *buf = NULL;
	size_t cap = 0, len;
	CHECK(imgdec_read("/nonexistent/y.jpg", &buf, &cap, &len, err) == -1 && strstr(err, "/nonexistent/y.jpg: No such file"),
	      "%s", err);
	CHECK(imgdec_read("/", &buf, &cap, &len, err) == -1 && strstr(err, "/: not a regular file"), "%s", err);
	CHECK(imgdec_read("/proc/self/stat", &buf, &cap, &len, err) == 0 && len > 0 && cap >= len, "%s", err);
	free(buf);
	free(rgb);
}

int main(void)
{
	test_sniff();
	test_jpeg();
	test_orientation();
	test_png_gif();
	test_sink();
	return check_done("test_imgdec");
}
