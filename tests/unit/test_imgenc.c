/* Unit tests for imgenc: encode to memory, decode back with the reference libraries
 * (libjpeg, libpng, giflib's DGifSlurp) and check sizes, channels, frames and pixel error. */
#include "check.h"
#include "util/errmsg.h"
#include "img/imgenc.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gif_lib.h>
#include <jpeglib.h>
#include <png.h>

enum { W = 37, H = 23 };

/* A smooth test pattern (JPEG handles it well) with distinct ramps per channel. */
static uint8_t *pattern(int w, int h, int c, int phase)
{
	uint8_t *p = malloc((size_t)w * h * c);

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int k = 0; k < c; k++) {
				int a = k + 1, b = 3 - k % 3;
				int v = (x * 255 / (w - 1) * a + y * 255 / (h - 1) * b) / (a + b);

				p[((size_t)y * w + x) * c + k] = (uint8_t)((k + phase) % 2 ? 255 - v : v);
			}
	return p;
}

struct derr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
};

static void derr_exit(j_common_ptr c)
{
	longjmp(((struct derr *)c->err)->jb, 1);
}

/* Decodes with libjpeg in the file's own colour space; returns pixels or NULL. */
static uint8_t *jpeg_decode(const unsigned char *buf, size_t len, int *w, int *h, int *c,
			    int *adobe, int *cmyk)
{
	struct jpeg_decompress_struct d;
	struct derr e;
	uint8_t *volatile pix = NULL;

	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = derr_exit;
	if (setjmp(e.jb)) {
		jpeg_destroy_decompress(&d);
		free(pix);
		return NULL;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, buf, (unsigned long)len);
	jpeg_read_header(&d, TRUE);
	*adobe = d.saw_Adobe_marker;
	*cmyk = d.jpeg_color_space == JCS_CMYK;
	jpeg_start_decompress(&d);
	*w = (int)d.output_width;
	*h = (int)d.output_height;
	*c = d.output_components;
	pix = malloc((size_t)*w * *h * *c);
	while (d.output_scanline < d.output_height) {
		JSAMPROW row = pix + (size_t)d.output_scanline * *w * *c;
		jpeg_read_scanlines(&d, &row, 1);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return pix;
}

static void diff(const uint8_t *a, const uint8_t *b, size_t n, int *maxd, double *meand)
{
	double sum = 0;

	*maxd = 0;
	for (size_t i = 0; i < n; i++) {
		int d = abs((int)a[i] - (int)b[i]);
		sum += d;
		if (d > *maxd)
			*maxd = d;
	}
	*meand = sum / (double)n;
}

static void test_jpeg(void)
{
	char err[ERR_MAX];

	for (int c = 1; c <= 4; c++) {
		uint8_t *p, *q;
		unsigned char *buf;
		size_t len;
		int w, h, ch, adobe, cmyk, maxd;
		double meand;

		if (c == 2)
			continue;
		p = pattern(W, H, c, 0);
		CHECK(imgenc_jpeg(p, W, H, c, 95, &buf, &len, err) == 0, "encode %d: %s", c, err);
		CHECK(len > 100 && buf[0] == 0xFF && buf[1] == 0xD8, "SOI, %zu bytes", len);
		CHECK(buf[len - 2] == 0xFF && buf[len - 1] == 0xD9, "EOI at the end");
		q = jpeg_decode(buf, len, &w, &h, &ch, &adobe, &cmyk);
		CHECK(q != NULL, "decodes (%d channels)", c);
		if (q) {
			CHECK(w == W && h == H && ch == c, "size %dx%dx%d", w, h, ch);
			CHECK(adobe == (c == 4) && cmyk == (c == 4), "Adobe marker %d, CMYK %d", adobe, cmyk);
			diff(p, q, (size_t)W * H * c, &maxd, &meand);
			/* Quality 95 on a smooth pattern: small mean error, bounded worst case. */
			CHECK(meand < 3.0 && maxd <= 40, "JPEG error mean %.2f (tol 3) max %d (tol 40)", meand, maxd);
		}
		free(p);
		free(q);
		free(buf);
	}
}

static void test_png(void)
{
	char err[ERR_MAX];

	for (int c = 1; c <= 4; c++) {
		png_image img;
		uint8_t *p = pattern(W, H, c, 1), *q = NULL;
		unsigned char *buf;
		size_t len;
		static const png_uint_32 fmt[5] = { 0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA };

		CHECK(imgenc_png(p, W, H, c, &buf, &len, err) == 0, "encode %d: %s", c, err);
		memset(&img, 0, sizeof img);
		img.version = PNG_IMAGE_VERSION;
		CHECK(png_image_begin_read_from_memory(&img, buf, len), "png header: %s", img.message);
		CHECK(img.width == W && img.height == H, "png size %ux%u", img.width, img.height);
		CHECK(PNG_IMAGE_SAMPLE_CHANNELS(img.format) == (unsigned)c, "png channels %u",
		      PNG_IMAGE_SAMPLE_CHANNELS(img.format));
		img.format = fmt[c];
		q = malloc(PNG_IMAGE_SIZE(img));
		CHECK(png_image_finish_read(&img, NULL, q, 0, NULL), "png body: %s", img.message);
		CHECK(!memcmp(p, q, (size_t)W * H * c), "PNG is lossless (%d channels)", c);
		png_image_free(&img);
		free(p);
		free(q);
		free(buf);
	}
}

/* memmem is a GNU extension; a plain search keeps us within _DEFAULT_SOURCE. */
static int contains(const unsigned char *p, size_t n, const char *s)
{
	size_t k = strlen(s);

	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(p + i, s, k))
			return 1;
	return 0;
}

struct rd {
	const unsigned char *p;
	size_t n, at;
};

static int gif_read(GifFileType *g, GifByteType *dst, int len)
{
	struct rd *r = g->UserData;
	size_t k = (size_t)len < r->n - r->at ? (size_t)len : r->n - r->at;

	memcpy(dst, r->p + r->at, k);
	r->at += k;
	return (int)k;
}

static void test_gif(void)
{
	char err[ERR_MAX];

	for (int c = 1; c <= 3; c += 2) {
		uint8_t *fr[3];
		unsigned char *buf;
		size_t len;
		struct rd r;
		GifFileType *g;
		int e = 0;

		for (int f = 0; f < 3; f++)
			fr[f] = pattern(W, H, c, f);
		CHECK(imgenc_gif((const uint8_t *const *)fr, 3, W, H, c, 25, &buf, &len, err) == 0, "encode %d: %s", c, err);
		CHECK(len > 6 && !memcmp(buf, "GIF89a", 6), "GIF89a signature");
		CHECK(contains(buf, len, "NETSCAPE2.0"), "Netscape looping extension");
		r = (struct rd){ buf, len, 0 };
		g = DGifOpen(&r, gif_read, &e);
		CHECK(g != NULL, "DGifOpen: %d", e);
		if (!g)
			continue;
		CHECK(DGifSlurp(g) == GIF_OK, "DGifSlurp: %d", g->Error);
		CHECK(g->SWidth == W && g->SHeight == H && g->ImageCount == 3, "%dx%d, %d frames",
		      g->SWidth, g->SHeight, g->ImageCount);
		for (int f = 0; f < g->ImageCount && f < 3; f++) {
			const SavedImage *si = &g->SavedImages[f];
			GraphicsControlBlock gcb;
			const ColorMapObject *cm = g->SColorMap;
			int maxd = 0;

			CHECK(DGifSavedExtensionToGCB(g, f, &gcb) == GIF_OK && gcb.DelayTime == 25,
			      "frame %d delay %d", f, gcb.DelayTime);
			for (int i = 0; i < W * H; i++) {
				const GifColorType *col = &cm->Colors[si->RasterBits[i]];
				int got[3] = { col->Red, col->Green, col->Blue };

				for (int k = 0; k < c; k++) {
					int d = abs(got[k] - fr[f][(size_t)i * c + k]);
					maxd = d > maxd ? d : maxd;
				}
			}
			/* Gray is exact; the 6x7x6 cube is off by at most half a step (25.5). */
			CHECK(maxd <= (c == 1 ? 0 : 26), "frame %d max error %d (tol %d)", f, maxd, c == 1 ? 0 : 26);
		}
		DGifCloseFile(g, &e);
		for (int f = 0; f < 3; f++)
			free(fr[f]);
		free(buf);
	}
}

static void test_errors(void)
{
	char err[ERR_MAX] = "";
	uint8_t px[16] = { 0 };
	const uint8_t *fr[1] = { px };
	unsigned char *buf = (unsigned char *)1;
	size_t len = 1;

	CHECK(imgenc_jpeg(px, 2, 2, 2, 90, &buf, &len, err) == -1 && buf == NULL && len == 0,
	      "2-channel JPEG refused");
	CHECK(strstr(err, "channels") != NULL, "message: %s", err);
	CHECK(imgenc_jpeg(px, 0, 2, 3, 90, &buf, &len, err) == -1, "zero width refused");
	CHECK(imgenc_jpeg(px, 2, 2, 3, 0, &buf, &len, err) == -1, "quality 0 refused");
	CHECK(imgenc_png(px, 2, 2, 5, &buf, &len, err) == -1, "5-channel PNG refused");
	CHECK(imgenc_gif(fr, 0, 2, 2, 3, 10, &buf, &len, err) == -1, "no frames refused");
	CHECK(imgenc_gif(fr, 1, 2, 2, 4, 10, &buf, &len, err) == -1, "RGBA GIF refused");
}

int main(void)
{
	test_jpeg();
	test_png();
	test_gif();
	test_errors();
	return check_done("test_imgenc");
}
