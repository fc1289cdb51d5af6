/* imgdec: decoding JPEG, PNG and GIF to RGB. See imgdec.h. */
#include "img/imgdec.h"

#include "util/buf.h"
#include "util/errmsg.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gif_lib.h>
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

enum imgdec_kind imgdec_sniff(const unsigned char *buf, size_t len)
{
	if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
		return IMGDEC_JPEG;
	if (len >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8))
		return IMGDEC_PNG;
	if (len >= 6 && (!memcmp(buf, "GIF87a", 6) || !memcmp(buf, "GIF89a", 6)))
		return IMGDEC_GIF;
	return IMGDEC_UNKNOWN;
}

void imgdec_free(imgdec_image *img)
{
	free(img->pix);
	img->pix = NULL;
}

static int64_t max_pixels(const imgdec_hint *hint)
{
	return hint && hint->max_pixels > 0 ? hint->max_pixels : IMGDEC_MAX_PIXELS;
}

/* Every size a header claims passes here before anything is allocated for it. */
static int check_size(int64_t w, int64_t h, int64_t max, const char *name, char *err)
{
	if (w <= 0 || h <= 0)
		return err_set(err, "%s: image size %lldx%lld out of range", name, (long long)w, (long long)h);
	if (w * h > max)
		return err_set(err, "%s: image of %lldx%lld pixels is over the limit of %lld pixels",
			       name, (long long)w, (long long)h, (long long)max);
	return 0;
}

static uint8_t *alloc_rgbx(int w, int h, int64_t max, const char *name, char *err)
{
	uint8_t *p;

	if (check_size(w, h, max, name, err))
		return NULL;
	p = malloc((size_t)w * h * 4);
	if (!p)
		err_set(err, "%s: out of memory for a %dx%d image", name, w, h);
	return p;
}

/* --- EXIF orientation ------------------------------------------------------------------ */

static unsigned rd16(const unsigned char *p, int le)
{
	return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1];
}

static uint32_t rd32(const unsigned char *p, int le)
{
	return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
		  : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Tag 0x0112 of IFD0 in an APP1 "Exif\0\0" + TIFF block; 1 (upright) when absent or bad:
 * a broken EXIF block never costs the picture. */
static int exif_orientation(const unsigned char *d, size_t len)
{
	const unsigned char *t = d + 6;
	size_t tl, off;
	unsigned n;
	int le;

	if (len < 6 + 8 || memcmp(d, "Exif\0\0", 6))
		return 1;
	tl = len - 6;
	if (!memcmp(t, "II*\0", 4))
		le = 1;
	else if (!memcmp(t, "MM\0*", 4))
		le = 0;
	else
		return 1;
	off = rd32(t + 4, le);
	if (off > tl - 2)
		return 1;
	n = rd16(t + off, le);
	for (unsigned i = 0; i < n; i++) {
		size_t e = off + 2 + (size_t)i * 12;
		if (e + 12 > tl)
			break;
		if (rd16(t + e, le) == 0x0112 && rd16(t + e + 2, le) == 3) {
			unsigned v = rd16(t + e + 8, le);
			return v >= 1 && v <= 8 ? (int)v : 1;
		}
	}
	return 1;
}

/* Where pixel x of row y of the upright image comes from in the w x h decoded one.
 * Orientations 5-8 swap width and height. */
static const uint8_t *oriented_src(const imgdec_image *img, int o, int x, int y)
{
	int w = img->w, h = img->h, sx, sy;

	switch (o) {
	case 2: sx = w - 1 - x; sy = y; break;
	case 3: sx = w - 1 - x; sy = h - 1 - y; break;
	case 4: sx = x; sy = h - 1 - y; break;
	case 5: sx = y; sy = x; break;
	case 6: sx = y; sy = h - 1 - x; break;
	case 7: sx = w - 1 - y; sy = h - 1 - x; break;
	case 8: sx = w - 1 - y; sy = x; break;
	default: sx = x; sy = y; break;
	}
	return img->pix + ((size_t)sy * w + sx) * 4;
}

/* --- JPEG -------------------------------------------------------------------------------- */

struct jpeg_fail {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	int corrupt;      /* a warning that means lost image data */
	char msg[JMSG_LENGTH_MAX];
};

static void jpeg_on_error(j_common_ptr c)
{
	struct jpeg_fail *f = (struct jpeg_fail *)c->err;

	c->err->format_message(c, f->msg);
	longjmp(f->jb, 1);
}

/* libjpeg reports a truncated or damaged scan only as a warning and fills the rest with grey;
 * for a training set that is a broken file. Extraneous bytes and the like decode correctly. */
static void jpeg_on_message(j_common_ptr c, int level)
{
	struct jpeg_fail *f = (struct jpeg_fail *)c->err;
	int code = c->err->msg_code;

	if (level >= 0 || f->corrupt)
		return;
	if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE ||
	    code == JWRN_MUST_RESYNC) {
		f->corrupt = 1;
		c->err->format_message(c, f->msg);
	}
}

/* The smallest of 1/8, 1/4, 1/2 that still leaves the resize enough pixels (see imgdec_hint);
 * 8 (full size) otherwise. Only these three: libjpeg-turbo has fast IDCTs for them, while
 * 3/8, 5/8... are slower here than decoding at full size. "Enough" counts whole pixels, as
 * Pillow's Image.draft() does, so both pick the same scale. */
static int jpeg_pick_scale(int w, int h, const imgdec_hint *hint)
{
	int64_t nw, nh;

	if (!hint || hint->need == IMGDEC_FULL || hint->tw <= 0 || hint->th <= 0)
		return 8;
	nw = hint->tw;
	nh = hint->th;
	if (hint->need == IMGDEC_INSIDE) {
		/* fitted size: the limiting side is the target, the other rounded up */
		if ((int64_t)hint->tw * h <= (int64_t)hint->th * w)
			nh = ((int64_t)h * hint->tw + w - 1) / w;
		else
			nw = ((int64_t)w * hint->th + h - 1) / h;
	}
	for (int m = 1; m < 8; m *= 2)
		if ((int64_t)w * m >= 8 * nw && (int64_t)h * m >= 8 * nh)
			return m;
	return 8;
}

/* Pillow's CMYK -> RGB (R = (255-C)(255-K)/255 with its rounding), so we agree with it. */
static void cmyk_row(uint8_t *rgb, const uint8_t *cmyk, int w, int inverted)
{
	for (int x = 0; x < w; x++, rgb += 3, cmyk += 4) {
		int k = inverted ? 255 - cmyk[3] : cmyk[3], nk = 255 - k;
		for (int i = 0; i < 3; i++) {
			int c = inverted ? 255 - cmyk[i] : cmyk[i], t = c * nk + 128;
			rgb[i] = (uint8_t)(nk - (((t >> 8) + t) >> 8));
		}
	}
}

/* --- sinks ------------------------------------------------------------------------------- */

/* The sink that builds a whole RGBX image (imgdec_mem, and orientation, which needs it all) */
struct collect {
	imgdec_image *img;
	const char *name;
	int64_t max;    /* pixels */
	uint8_t *rows;  /* COLLECT_ROWS rows of RGB */
	int y;
};

#define COLLECT_ROWS 16

static int collect_begin(void *ctx, int w, int h, char *err)
{
	struct collect *c = ctx;

	if (!(c->img->pix = alloc_rgbx(w, h, c->max, c->name, err)))
		return -1;
	c->img->w = w;
	c->img->h = h;
	c->y = 0;
	if (!(c->rows = malloc((size_t)w * 3 * COLLECT_ROWS)))
		return err_set(err, "%s: out of memory", c->name);
	return 0;
}

static uint8_t *collect_room(void *ctx, int *max, size_t *stride)
{
	struct collect *c = ctx;

	*max = COLLECT_ROWS;
	*stride = (size_t)c->img->w * 3;
	return c->rows;
}

static void collect_push(void *ctx, int n)
{
	struct collect *c = ctx;
	size_t w = (size_t)c->img->w;

	for (int i = 0; i < n && c->y < c->img->h; i++, c->y++) {
		uint8_t *d = c->img->pix + (size_t)c->y * w * 4;
		const uint8_t *s = c->rows + (size_t)i * w * 3;
		for (size_t x = 0; x < w; x++, d += 4, s += 3) {
			d[0] = s[0], d[1] = s[1], d[2] = s[2];
			d[3] = 255;
		}
	}
}

static void collect_init(struct collect *c, imgdec_sink *s, imgdec_image *img, const char *name,
			 int64_t max)
{
	memset(c, 0, sizeof *c);
	c->img = img;
	c->name = name;
	c->max = max;
	s->ctx = c;
	s->begin = collect_begin;
	s->room = collect_room;
	s->push = collect_push;
}

/* A whole RGBX image handed to a sink as RGB rows, turned upright (orientation o) on the
 * way, so that no second whole image is needed. */
static int feed_rgbx(const imgdec_image *img, int o, const imgdec_sink *sink, char *err)
{
	int ow = o >= 5 ? img->h : img->w, oh = o >= 5 ? img->w : img->h;

	if (sink->begin(sink->ctx, ow, oh, err) < 0)
		return -1;
	for (int y = 0; y < oh;) {
		int max, n;
		size_t stride;
		uint8_t *room = sink->room(sink->ctx, &max, &stride);
		n = oh - y < max ? oh - y : max;
		for (int i = 0; i < n; i++) {
			uint8_t *d = room + (size_t)i * stride;
			if (o <= 1) {
				const uint8_t *s = img->pix + (size_t)(y + i) * img->w * 4;
				for (int x = 0; x < ow; x++)
					d[x * 3] = s[x * 4], d[x * 3 + 1] = s[x * 4 + 1], d[x * 3 + 2] = s[x * 4 + 2];
				continue;
			}
			for (int x = 0; x < ow; x++) {
				const uint8_t *s = oriented_src(img, o, x, y + i);
				d[x * 3] = s[0], d[x * 3 + 1] = s[1], d[x * 3 + 2] = s[2];
			}
		}
		sink->push(sink->ctx, n);
		y += n;
	}
	return 0;
}

/* --- JPEG, continued ------------------------------------------------------------------- */

struct jpeg_job {
	struct jpeg_decompress_struct cinfo;
	struct jpeg_fail fail;
	uint8_t *row4;    /* one CMYK row */
	int orient;
	/* an oriented JPEG is decoded whole into here, then turned upright */
	imgdec_image whole;
	struct collect collect;
	imgdec_sink to_whole;
};

/* Up to max rows into room; libjpeg hands out one or two per call */
static int jpeg_rows(struct jpeg_job *j, uint8_t *room, size_t stride, int max, int cmyk)
{
	struct jpeg_decompress_struct *c = &j->cinfo;
	int n = 0;

	while (n < max && c->output_scanline < c->output_height && !j->fail.corrupt) {
		JSAMPROW rp[COLLECT_ROWS];
		int k = max - n < COLLECT_ROWS ? max - n : COLLECT_ROWS, got;
		if (cmyk) {
			rp[0] = j->row4;
			if (jpeg_read_scanlines(c, rp, 1) != 1)
				break;
			/* Adobe's (Photoshop's) CMYK JPEGs store inverted values */
			cmyk_row(room + (size_t)n * stride, j->row4, (int)c->output_width, c->saw_Adobe_marker);
			n++;
			continue;
		}
		for (int i = 0; i < k; i++)
			rp[i] = room + (size_t)(n + i) * stride;
		got = (int)jpeg_read_scanlines(c, rp, (JDIMENSION)k);
		if (got <= 0)
			break;
		n += got;
	}
	return n;
}

/* Everything libjpeg may longjmp out of; the setjmp is in jpeg_run so no local here is clobbered. */
static int jpeg_body(struct jpeg_job *j, const unsigned char *buf, size_t len, const char *name,
		     const imgdec_hint *hint, const imgdec_sink *sink, int *scale, char *err)
{
	struct jpeg_decompress_struct *c = &j->cinfo;
	int orient = 1, cmyk = 0, w, h;

	jpeg_mem_src(c, buf, (unsigned long)len);
	jpeg_save_markers(c, JPEG_APP0 + 1, 0xFFFF);
	jpeg_read_header(c, TRUE);
	for (jpeg_saved_marker_ptr m = c->marker_list; m; m = m->next)
		if (m->marker == JPEG_APP0 + 1 && (orient = exif_orientation(m->data, m->data_length)) != 1)
			break;
	if (check_size(c->image_width, c->image_height, max_pixels(hint), name, err))
		return -1;
	if (c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK) {
		c->out_color_space = JCS_CMYK;
		cmyk = 1;
	} else if (c->num_components == 1 || c->num_components == 3) {
		c->out_color_space = JCS_EXT_RGB;  /* libjpeg-turbo expands grayscale itself */
	} else {
		return err_set(err, "%s: JPEG with %d colour components not supported", name, c->num_components);
	}
	w = (int)c->image_width;
	h = (int)c->image_height;
	c->scale_num = (unsigned)(orient >= 5 ? jpeg_pick_scale(h, w, hint) : jpeg_pick_scale(w, h, hint));
	c->scale_denom = 8;
	j->orient = orient;
	if (orient != 1) {
		collect_init(&j->collect, &j->to_whole, &j->whole, name, max_pixels(hint));
		sink = &j->to_whole;
	}
	jpeg_start_decompress(c);
	*scale = (int)c->scale_num;
	if (sink->begin(sink->ctx, (int)c->output_width, (int)c->output_height, err) < 0)
		return -1;
	if (cmyk && !(j->row4 = malloc((size_t)c->output_width * 4)))
		return err_set(err, "%s: out of memory", name);
	while (c->output_scanline < c->output_height && !j->fail.corrupt) {
		int max, n;
		size_t stride;
		uint8_t *room = sink->room(sink->ctx, &max, &stride);
		if ((n = jpeg_rows(j, room, stride, max, cmyk)) <= 0)
			break;
		sink->push(sink->ctx, n);
	}
	if (!j->fail.corrupt)
		jpeg_finish_decompress(c);
	if (j->fail.corrupt)
		return err_set(err, "%s: truncated or corrupt JPEG: %s", name, j->fail.msg);
	return 0;
}

static int jpeg_run(struct jpeg_job *j, const unsigned char *buf, size_t len, const char *name,
		    const imgdec_hint *hint, const imgdec_sink *sink, int *scale, char *err)
{
	if (setjmp(j->fail.jb))
		return err_set(err, "%s: bad JPEG: %s", name, j->fail.msg);
	return jpeg_body(j, buf, len, name, hint, sink, scale, err);
}

static int decode_jpeg(const unsigned char *buf, size_t len, const char *name,
		       const imgdec_hint *hint, const imgdec_sink *sink, int *scale, char *err)
{
	struct jpeg_job *j = calloc(1, sizeof *j);
	int r;

	if (!j)
		return err_set(err, "%s: out of memory", name);
	j->cinfo.err = jpeg_std_error(&j->fail.pub);
	j->fail.pub.error_exit = jpeg_on_error;
	j->fail.pub.emit_message = jpeg_on_message;
	jpeg_create_decompress(&j->cinfo);
	r = jpeg_run(j, buf, len, name, hint, sink, scale, err);
	jpeg_destroy_decompress(&j->cinfo);
	if (r == 0 && j->orient != 1)
		r = feed_rgbx(&j->whole, j->orient, sink, err);
	imgdec_free(&j->whole);
	free(j->collect.rows);
	free(j->row4);
	free(j);
	return r;
}

/* --- PNG --------------------------------------------------------------------------------- */

/* libpng's full interface rather than its simplified one, for two reasons: rows go to the
 * sink as they are decoded (the simplified one wants the whole image), and no gamma is
 * applied: the simplified one takes 16-bit samples as linear light and re-encodes them
 * (0x8000 became 186), where Pillow, like us now, keeps the high byte (128). */
struct png_job {
	const unsigned char *p;
	size_t left;
	char msg[256];
	uint8_t *whole;   /* an interlaced image, RGB, and its row pointers */
	png_bytep *rows;
};

static void png_on_error(png_structp png, png_const_charp msg)
{
	struct png_job *j = png_get_error_ptr(png);

	snprintf(j->msg, sizeof j->msg, "%s", msg);
	png_longjmp(png, 1);
}

/* lib/ never prints; what libpng only warns about (a bad ancillary chunk) costs nothing */
static void png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static void png_on_read(png_structp png, png_bytep out, size_t n)
{
	struct png_job *j = png_get_io_ptr(png);

	if (n > j->left)
		png_error(png, "truncated file");
	memcpy(out, j->p, n);
	j->p += n;
	j->left -= n;
}

/* Everything libpng may longjmp out of; the setjmp is in png_run. */
static int png_body(struct png_job *j, png_structp png, png_infop info, const char *name,
		    const imgdec_hint *hint, const imgdec_sink *sink, char *err)
{
	png_uint_32 w, h;
	int depth, ctype, interlace, passes;

	png_read_info(png, info);
	png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
	if (check_size(w, h, max_pixels(hint), name, err))
		return -1;
	/* 8-bit RGB whatever the file holds, as Pillow's convert("RGB"): 16-bit samples keep
	 * their high byte, palettes and grey expand, alpha and tRNS are dropped, not composited */
	if (depth == 16)
		png_set_strip_16(png);
	if (ctype == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (!(ctype & PNG_COLOR_MASK_COLOR)) {
		if (depth < 8)
			png_set_expand_gray_1_2_4_to_8(png);
		png_set_gray_to_rgb(png);
	}
	if (ctype & PNG_COLOR_MASK_ALPHA)
		png_set_strip_alpha(png);
	passes = png_set_interlace_handling(png);
	png_read_update_info(png, info);
	if (png_get_rowbytes(png, info) != (size_t)w * 3)
		return err_set(err, "%s: bad PNG: unexpected row layout", name);
	if (sink->begin(sink->ctx, (int)w, (int)h, err) < 0)
		return -1;
	if (passes > 1) {  /* Adam7: each pass revisits every row, so the rows wait in one buffer */
		if (!(j->whole = malloc((size_t)w * h * 3)) || !(j->rows = malloc(sizeof *j->rows * h)))
			return err_set(err, "%s: out of memory for a %ux%u image", name, w, h);
		for (png_uint_32 y = 0; y < h; y++)
			j->rows[y] = j->whole + (size_t)y * w * 3;
		png_read_image(png, j->rows);
	}
	for (png_uint_32 y = 0; y < h;) {
		int max;
		size_t stride;
		uint8_t *room = sink->room(sink->ctx, &max, &stride);
		png_uint_32 n = h - y < (png_uint_32)max ? h - y : (png_uint_32)max;
		for (png_uint_32 i = 0; i < n; i++) {
			if (j->whole)
				memcpy(room + i * stride, j->rows[y + i], (size_t)w * 3);
			else
				png_read_row(png, room + i * stride, NULL);
		}
		sink->push(sink->ctx, (int)n);
		y += n;
	}
	png_read_end(png, NULL);
	return 0;
}

static int png_run(struct png_job *j, png_structp png, png_infop info, const char *name,
		   const imgdec_hint *hint, const imgdec_sink *sink, char *err)
{
	if (setjmp(png_jmpbuf(png)))
		return err_set(err, "%s: bad PNG: %s", name, j->msg);
	return png_body(j, png, info, name, hint, sink, err);
}

static int decode_png(const unsigned char *buf, size_t len, const char *name,
		      const imgdec_hint *hint, const imgdec_sink *sink, char *err)
{
	struct png_job j = { buf, len, "", NULL, NULL };
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, png_on_error, png_on_warning);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	int r;

	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		return err_set(err, "%s: out of memory", name);
	}
	png_set_read_fn(png, &j, png_on_read);
	r = png_run(&j, png, info, name, hint, sink, err);
	png_destroy_read_struct(&png, &info, NULL);
	free(j.whole);
	free(j.rows);
	return r;
}

/* --- GIF --------------------------------------------------------------------------------- */

struct gif_src {
	const unsigned char *p;
	size_t left;
};

static int gif_read(GifFileType *g, GifByteType *dst, int n)
{
	struct gif_src *s = g->UserData;
	size_t k = n < 0 ? 0 : (size_t)n;

	if (k > s->left)
		k = s->left;
	memcpy(dst, s->p, k);
	s->p += k;
	s->left -= k;
	return (int)k;
}

/* The first frame drawn on the logical screen (background colour, then the frame with its
 * transparent pixels left alone), as a viewer shows the still image. */
static int gif_first_frame(GifFileType *g, const char *name, int64_t max, imgdec_image *img, char *err)
{
	GifRecordType rt;
	int transparent = -1, sw = g->SWidth, sh = g->SHeight;

	for (;;) {
		if (DGifGetRecordType(g, &rt) == GIF_ERROR)
			return err_set(err, "%s: bad GIF: %s", name, GifErrorString(g->Error));
		if (rt == TERMINATE_RECORD_TYPE)
			return err_set(err, "%s: GIF without an image", name);
		if (rt == EXTENSION_RECORD_TYPE) {
			GifByteType *ext;
			int code;
			GraphicsControlBlock gcb;
			if (DGifGetExtension(g, &code, &ext) == GIF_ERROR)
				return err_set(err, "%s: bad GIF: %s", name, GifErrorString(g->Error));
			if (code == GRAPHICS_EXT_FUNC_CODE && ext && DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_OK)
				transparent = gcb.TransparentColor;
			while (ext)
				if (DGifGetExtensionNext(g, &ext) == GIF_ERROR)
					return err_set(err, "%s: bad GIF: %s", name, GifErrorString(g->Error));
			continue;
		}
		if (rt == IMAGE_DESC_RECORD_TYPE)
			break;
	}
	if (DGifGetImageDesc(g) == GIF_ERROR)
		return err_set(err, "%s: bad GIF: %s", name, GifErrorString(g->Error));

	GifImageDesc *d = &g->Image;
	ColorMapObject *cm = d->ColorMap ? d->ColorMap : g->SColorMap;
	int fw = d->Width, fh = d->Height;
	GifPixelType *line;

	if (!cm)
		return err_set(err, "%s: bad GIF: no colour map", name);
	if (fw <= 0 || fh <= 0 || d->Left < 0 || d->Top < 0)
		return err_set(err, "%s: GIF frame size %dx%d out of range", name, fw, fh);
	if (sw < d->Left + fw || sh < d->Top + fh) {  /* a screen smaller than its frame */
		sw = sw > d->Left + fw ? sw : d->Left + fw;
		sh = sh > d->Top + fh ? sh : d->Top + fh;
	}
	/* the screen is what gets allocated: a tiny frame far out claims a huge one */
	img->pix = alloc_rgbx(sw, sh, max, name, err);
	if (!img->pix)
		return -1;
	img->w = sw;
	img->h = sh;
	uint8_t bg[4] = { 0, 0, 0, 255 };
	if (g->SColorMap && g->SBackGroundColor < g->SColorMap->ColorCount) {
		GifColorType c = g->SColorMap->Colors[g->SBackGroundColor];
		bg[0] = c.Red, bg[1] = c.Green, bg[2] = c.Blue;
	}
	for (size_t i = 0, n = (size_t)sw * sh; i < n; i++)
		memcpy(img->pix + i * 4, bg, 4);
	line = malloc((size_t)fw);
	if (!line)
		return err_set(err, "%s: out of memory", name);

	static const int start[4] = { 0, 4, 2, 1 }, step[4] = { 8, 8, 4, 2 };
	int passes = d->Interlace ? 4 : 1;
	for (int pass = 0; pass < passes; pass++)
		for (int y = d->Interlace ? start[pass] : 0; y < fh; y += d->Interlace ? step[pass] : 1) {
			if (DGifGetLine(g, line, fw) == GIF_ERROR) {
				free(line);
				return err_set(err, "%s: truncated or corrupt GIF: %s", name, GifErrorString(g->Error));
			}
			uint8_t *row = img->pix + ((size_t)(d->Top + y) * sw + d->Left) * 4;
			for (int x = 0; x < fw; x++) {
				int v = line[x];
				if (v == transparent)
					continue;
				if (v >= cm->ColorCount) {
					free(line);
					return err_set(err, "%s: bad GIF: colour index %d beyond its map", name, v);
				}
				row[x * 4] = cm->Colors[v].Red;
				row[x * 4 + 1] = cm->Colors[v].Green;
				row[x * 4 + 2] = cm->Colors[v].Blue;
			}
		}
	free(line);
	return 0;
}

static int decode_gif(const unsigned char *buf, size_t len, const char *name, int64_t max,
		      imgdec_image *img, char *err)
{
	struct gif_src s = { buf, len };
	int e = 0, r;
	GifFileType *g = DGifOpen(&s, gif_read, &e);

	if (!g)
		return err_set(err, "%s: bad GIF: %s", name, GifErrorString(e));
	r = gif_first_frame(g, name, max, img, err);
	DGifCloseFile(g, &e);
	if (r < 0)
		imgdec_free(img);
	return r;
}

/* --- entry points ------------------------------------------------------------------------ */

static int not_an_image(size_t len, const char *name, char *err)
{
	if (len == 0)
		return err_set(err, "%s: empty file", name);
	return err_set(err, "%s: not an image (neither JPEG, PNG nor GIF)", name);
}

/* Any format to the sink; *scale as in imgdec_image. */
static int decode_sink(const unsigned char *buf, size_t len, const char *name, const imgdec_hint *hint,
		       const imgdec_sink *sink, int *scale, char *err)
{
	imgdec_image img;
	int r;

	*scale = 8;
	switch (imgdec_sniff(buf, len)) {
	case IMGDEC_JPEG: return decode_jpeg(buf, len, name, hint, sink, scale, err);
	case IMGDEC_PNG: return decode_png(buf, len, name, hint, sink, err);
	case IMGDEC_GIF: break;
	default: return not_an_image(len, name, err);
	}
	memset(&img, 0, sizeof img);
	r = decode_gif(buf, len, name, max_pixels(hint), &img, err);
	if (r == 0)
		r = feed_rgbx(&img, 1, sink, err);
	imgdec_free(&img);
	return r;
}

int imgdec_mem(const unsigned char *buf, size_t len, const char *name, const imgdec_hint *hint,
	       imgdec_image *img, char *err)
{
	struct collect c;
	imgdec_sink s;
	int r;

	memset(img, 0, sizeof *img);
	img->kind = imgdec_sniff(buf, len);
	collect_init(&c, &s, img, name, max_pixels(hint));
	r = decode_sink(buf, len, name, hint, &s, &img->scale, err);
	free(c.rows);
	if (r < 0)
		imgdec_free(img);
	return r;
}

int imgdec_mem_sink(const unsigned char *buf, size_t len, const char *name, const imgdec_hint *hint,
		    const imgdec_sink *sink, char *err)
{
	int scale;

	return decode_sink(buf, len, name, hint, sink, &scale, err);
}

int imgdec_read(const char *path, unsigned char **buf, size_t *cap, size_t *len, char *err)
{
	struct buf b = { *buf, 0, *cap, 0 };
	int r = buf_slurp(&b, path, IMGDEC_MAX_FILE, err);

	*buf = b.data;
	*cap = b.cap;
	*len = b.len;
	return r;
}

int imgdec_file(const char *path, const imgdec_hint *hint, imgdec_image *img, char *err)
{
	unsigned char *buf = NULL;
	size_t cap = 0, len;
	int r;

	memset(img, 0, sizeof *img);
	if (imgdec_read(path, &buf, &cap, &len, err) < 0) {
		free(buf);
		return -1;
	}
	r = imgdec_mem(buf, len, path, hint, img, err);
	free(buf);
	return r;
}
