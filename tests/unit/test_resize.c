/* Unit tests for resize: identities, constants, ramps, symmetry, the three fits, and the
 * stream: every SIMD level and every way of feeding rows gives the portable loops' bytes. */
#include "check.h"
#include "util/errmsg.h"
#include "img/resize.h"
#include "util/simd.h"

#include <stdlib.h>
#include <string.h>

static uint8_t *img(int w, int h)
{
	uint8_t *p = calloc((size_t)w * h * 3, 1);
	if (!p)
		abort();
	return p;
}

static void test_identity_and_constant(void)
{
	char err[ERR_MAX];
	int w = 37, h = 23;
	uint8_t *a = img(w, h), *b = img(w, h), *c = img(9, 31);
	int same = 1, flat = 1;

	for (int i = 0; i < w * h * 3; i++)
		a[i] = (uint8_t)(i * 7 + 3);
	CHECK(resize_rgb(a, w, h, b, w, h, RESIZE_STRETCH, err) == 0, "%s", err);
	CHECK(!memcmp(a, b, (size_t)w * h * 3), "same size is a copy");
	for (int i = 0; i < w * h; i++)
		a[i * 3] = 10, a[i * 3 + 1] = 200, a[i * 3 + 2] = 255;
	for (enum resize_fit f = RESIZE_STRETCH; f <= RESIZE_CROP; f++) {
		CHECK(resize_rgb(a, w, h, c, 9, 31, f, err) == 0, "%s", err);
		for (int i = 0; i < 9 * 31; i++)
			flat &= c[i * 3] == 10 && c[i * 3 + 1] == 200 && c[i * 3 + 2] == 255;
	}
	CHECK(flat, "a constant image stays constant, down and up");
	CHECK(resize_rgb(a, 1, 1, b, 5, 4, RESIZE_STRETCH, err) == 0, "%s", err);
	for (int i = 0; i < 20; i++)
		same &= b[i * 3] == 10 && b[i * 3 + 2] == 255;
	CHECK(same, "1x1 enlarged is one colour");
	free(a);
	free(b);
	free(c);
}

static void test_ramp_and_symmetry(void)
{
	char err[ERR_MAX];
	int w = 400, h = 8, tw = 100;
	uint8_t *a = img(w, h), *b = img(tw, h), *m = img(w, h), *mb = img(tw, h);
	int worst = 0, mirrored = 1;

	/* v = x * 0.6: a linear ramp stays linear under a symmetric filter, sampled at the
	 * output centres x = (i + 0.5) * 4 - 0.5 */
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < 3; c++) {
				a[(y * w + x) * 3 + c] = (uint8_t)(x * 0.6 + 0.5);
				m[(y * w + (w - 1 - x)) * 3 + c] = (uint8_t)(x * 0.6 + 0.5);
			}
	CHECK(resize_rgb(a, w, h, b, tw, h, RESIZE_STRETCH, err) == 0, "%s", err);
	CHECK(resize_rgb(m, w, h, mb, tw, h, RESIZE_STRETCH, err) == 0, "%s", err);
	for (int i = 2; i < tw - 2; i++) {
		int want = (int)(((i + 0.5) * 4 - 0.5) * 0.6 + 0.5), d = abs(b[i * 3] - want);
		worst = d > worst ? d : worst;
	}
	CHECK(worst <= 1, "interior of a ramp within 1 of the line, worst %d", worst);
	for (int i = 0; i < tw; i++)
		mirrored &= abs(b[i * 3] - mb[(tw - 1 - i) * 3]) <= 1;
	CHECK(mirrored, "mirrored input gives the mirrored output (within 1 for rounding)");
	free(a);
	free(b);
	free(m);
	free(mb);
}

/* a 2:1 image, left quarter red, middle half green, right quarter blue */
static void test_fits(void)
{
	char err[ERR_MAX];
	int w = 200, h = 100, t = 50;
	uint8_t *a = img(w, h), *b = img(t, t);
	int ok = 1;

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			a[(y * w + x) * 3 + (x < 50 ? 0 : x < 150 ? 1 : 2)] = 255;
	CHECK(resize_rgb(a, w, h, b, t, t, RESIZE_CROP, err) == 0, "%s", err);
	/* the filter reaches a pixel or two past the box, as Pillow's does: edges mostly green */
	for (int i = 0; i < t * t; i++)
		ok &= i % t == 0 || i % t == t - 1 ? b[i * 3 + 1] >= 180 : b[i * 3] == 0 && b[i * 3 + 1] == 255 && b[i * 3 + 2] == 0;
	CHECK(ok, "crop keeps the centre (all green)");
	CHECK(resize_rgb(a, w, h, b, t, t, RESIZE_PAD, err) == 0, "%s", err);
	/* fitted 50x25 at rows 12..36: rows above and below black */
	ok = 1;
	for (int x = 0; x < t * 3; x++)
		ok &= b[x] == 0 && b[(t - 1) * t * 3 + x] == 0 && b[11 * t * 3 + x] == 0 && b[37 * t * 3 + x] == 0;
	CHECK(ok, "pad bars are black");
	CHECK(b[(24 * t + 2) * 3] == 255 && b[(24 * t + 25) * 3 + 1] == 255 && b[(24 * t + 47) * 3 + 2] == 255,
	      "pad keeps the whole picture: red, green, blue across");
	CHECK(resize_rgb(a, w, h, b, t, t, RESIZE_STRETCH, err) == 0, "%s", err);
	CHECK(b[(10 * t + 2) * 3] == 255 && b[(10 * t + 47) * 3 + 2] == 255, "stretch keeps the edges");
	free(a);
	free(b);
}

static void test_errors(void)
{
	char err[ERR_MAX];
	uint8_t px[3] = { 0 }, out[3];
	double box[4] = { 0, 0, 2, 1 };
	enum resize_fit f;

	CHECK(resize_rgb(px, 0, 1, out, 1, 1, RESIZE_STRETCH, err) == -1, "empty source refused");
	CHECK(resize_box(px, 1, 1, box, out, 3, 1, 1, err) == -1, "box beyond the image refused");
	CHECK(resize_fit_parse("crop", &f) == 0 && f == RESIZE_CROP, "parse crop");
	CHECK(resize_fit_parse("fill", &f) == -1, "unknown fit refused");
}

/* sw x sh noise through a stream at SIMD level simd, fed rows chunk at a time (0: as many
 * as the room takes), into a dw x dh region with a 5-byte margin on the right */
static void stream_run(const uint8_t *src, int sw, int sh, const double box[4], uint8_t *dst,
		       int dw, int dh, int simd, int chunk)
{
	char err[ERR_MAX];
	resize_stream rs;
	size_t dstride = (size_t)dw * 3 + 5;

	resize_stream_init(&rs);
	if (simd > rs.simd)
		simd = rs.simd;
	rs.simd = simd;
	memset(dst, 0xAB, dstride * dh);
	CHECK(resize_stream_start(&rs, sw, sh, box, dst, dstride, dw, dh, err) == 0, "%s", err);
	for (int y = 0; y < sh;) {
		int max, n;
		size_t stride;
		uint8_t *room = resize_stream_room(&rs, &max, &stride);
		n = chunk && chunk < max ? chunk : max;
		n = n < sh - y ? n : sh - y;
		for (int i = 0; i < n; i++)
			memcpy(room + i * stride, src + (size_t)(y + i) * sw * 3, (size_t)sw * 3);
		resize_stream_push(&rs, n);
		y += n;
	}
	CHECK(rs.next == dh, "all %d output rows written: %d", dh, rs.next);
	resize_stream_free(&rs);
}

static void test_stream_simd(void)
{
	/* reductions (odd and even tap counts, with crop boxes), enlargements, one axis only */
	static const struct { int sw, sh, dw, dh; double box[4]; } cases[] = {
		{ 500, 375, 224, 224, { 0, 0, 500, 375 } },
		{ 375, 500, 224, 224, { 0, 0, 375, 500 } },
		{ 97, 61, 13, 7, { 0, 0, 97, 61 } },
		{ 97, 61, 13, 7, { 3.25, 1.5, 90.75, 60 } },
		{ 31, 29, 70, 45, { 0, 0, 31, 29 } },
		{ 31, 29, 31, 45, { 0, 0, 31, 29 } },
		{ 31, 29, 70, 29, { 0, 0, 31, 29 } },
		{ 1, 1, 5, 3, { 0, 0, 1, 1 } },
		{ 300, 2, 1, 1, { 0, 0, 300, 2 } },
		{ 1000, 9, 3, 9, { 0, 0, 1000, 9 } },
		{ 401, 50, 100, 20, { 0, 0, 401, 50 } },    /* up to 9 taps: 5 pairs, the last half zero */
		{ 260, 40, 100, 20, { 0, 0, 260, 40 } },    /* up to 6 taps: 3 whole pairs */
		{ 333, 17, 150, 17, { 0.5, 0, 333, 17 } },  /* up to 5 taps: 3 pairs, the last half zero */
	};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		int sw = cases[c].sw, sh = cases[c].sh, dw = cases[c].dw, dh = cases[c].dh;
		size_t bytes = ((size_t)dw * 3 + 5) * dh;
		uint8_t *src = img(sw, sh), *ref = malloc(bytes), *out = malloc(bytes);
		uint32_t r = 12345;
		if (!ref || !out)
			abort();
		for (size_t i = 0; i < (size_t)sw * sh * 3; i++) {
			r = r * 1103515245 + 12345;
			src[i] = (uint8_t)(r >> 24) / 2 + (uint8_t)(i % 97);  /* noise on a ramp */
		}
		stream_run(src, sw, sh, cases[c].box, ref, dw, dh, 0, 0);
		for (size_t y = 0; y < (size_t)dh; y++)
			CHECK(!memcmp(ref + y * (dw * 3 + 5) + dw * 3, "\xAB\xAB\xAB\xAB\xAB", 5),
			      "case %zu: row %zu's margin untouched", c, y);
		for (int simd = 0; simd <= 2; simd++)
			for (int chunk = 0; chunk <= 3; chunk += 1 + (chunk == 1)) {
				stream_run(src, sw, sh, cases[c].box, out, dw, dh, simd, chunk);
				CHECK(!memcmp(ref, out, bytes), "case %zu (%dx%d to %dx%d): simd %d, %d rows a push differ",
				      c, sw, sh, dw, dh, simd, chunk);
			}
		free(src);
		free(ref);
		free(out);
	}
	/* the level a stream starts at: AVX2 when simd_avx2 allows (PETCNN_ISA=generic: not) */
	resize_stream rs;

	unsetenv("PETCNN_ISA");
	resize_stream_init(&rs);
	CHECK(rs.simd == (simd_avx2() ? 2 : rs.simd < 2 ? rs.simd : -1), "default level %d", rs.simd);
	setenv("PETCNN_ISA", "generic", 1);
	resize_stream_init(&rs);
	CHECK(rs.simd < 2, "PETCNN_ISA=generic: level %d, not AVX2's", rs.simd);
	unsetenv("PETCNN_ISA");
}

int main(void)
{
	test_identity_and_constant();
	test_ramp_and_symmetry();
	test_fits();
	test_errors();
	test_stream_simd();
	return check_done("test_resize");
}
