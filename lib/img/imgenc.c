/* imgenc: JPEG, PNG and GIF encoding to memory over libjpeg-turbo, libpng and giflib.
 * The libraries report errors by longjmp (libjpeg, libpng) or codes (giflib); here every
 * one becomes a message in err and a -1, and nothing allocated outlives a failure.
 * GIF colour: RGB is mapped onto a fixed 6x7x6 colour cube (252 entries, 7 levels of
 * green because the eye is most sensitive to it), so the palette is the same for every
 * image and frame, quantisation is deterministic and needs no pass over the pixels;
 * the largest per-channel error is half a step (26 for red and blue, 21 for green). */
#include "img/imgenc.h"

#include "util/buf.h"
#include "util/errmsg.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <gif_lib.h>
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

/* The encoders' output grows in a buf; a failed append is reported to the library at once */
static int membuf_put(struct buf *m, const void *src, size_t len)
{
	buf_add(m, src, len);
	return m->oom ? -1 : 0;
}

static int check_dims(const char *what, int w, int h, int maxdim, char *err)
{
	if (w <= 0 || h <= 0 || w > maxdim || h > maxdim)
		return err_set(err, "%s: image size %dx%d outside 1..%d", what, w, h, maxdim);
	return 0;
}

/* ---- JPEG ---- */

struct jerr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
};

static void jerr_exit(j_common_ptr c)
{
	struct jerr *e = (struct jerr *)c->err;

	c->err->format_message(c, e->msg);
	longjmp(e->jb, 1);
}

/* Warnings stay silent: lib/ never prints. */
static void jerr_output(j_common_ptr c)
{
	(void)c;
}

/* Our own destination manager over a buf: libjpeg's jpeg_mem_dest frees and replaces
 * its buffer as it grows, so after an error longjmp the caller could not free it safely. */
struct jdest {
	struct jpeg_destination_mgr pub;
	struct buf m;
	unsigned char block[16384];
};

static void jdest_init(j_compress_ptr c)
{
	struct jdest *d = (struct jdest *)c->dest;

	d->pub.next_output_byte = d->block;
	d->pub.free_in_buffer = sizeof d->block;
}

static boolean jdest_empty(j_compress_ptr c)
{
	struct jdest *d = (struct jdest *)c->dest;

	/* libjpeg asks us to take the whole block, whatever free_in_buffer says. */
	if (membuf_put(&d->m, d->block, sizeof d->block))
		ERREXIT(c, JERR_OUT_OF_MEMORY);
	jdest_init(c);
	return TRUE;
}

static void jdest_term(j_compress_ptr c)
{
	struct jdest *d = (struct jdest *)c->dest;

	if (membuf_put(&d->m, d->block, sizeof d->block - d->pub.free_in_buffer))
		ERREXIT(c, JERR_OUT_OF_MEMORY);
}

int imgenc_jpeg(const uint8_t *pix, int w, int h, int channels, int quality,
		unsigned char **out, size_t *outlen, char *err)
{
	struct jpeg_compress_struct cinfo;
	struct jerr je;
	struct jdest *dest;

	*out = NULL;
	*outlen = 0;
	if (check_dims("jpeg", w, h, JPEG_MAX_DIMENSION, err))
		return -1;
	if (channels != 1 && channels != 3 && channels != 4)
		return err_set(err, "jpeg: %d channels (want 1, 3 or 4)", channels);
	if (quality < 1 || quality > 100)
		return err_set(err, "jpeg: quality %d outside 1..100", quality);
	dest = calloc(1, sizeof *dest);
	if (!dest)
		return err_set(err, "jpeg: out of memory");
	dest->pub.init_destination = jdest_init;
	dest->pub.empty_output_buffer = jdest_empty;
	dest->pub.term_destination = jdest_term;
	memset(&cinfo, 0, sizeof cinfo);
	cinfo.err = jpeg_std_error(&je.pub);
	je.pub.error_exit = jerr_exit;
	je.pub.output_message = jerr_output;
	je.msg[0] = 0;
	if (setjmp(je.jb)) {
		jpeg_destroy_compress(&cinfo);
		free(dest->m.data);
		free(dest);
		return err_set(err, "jpeg: %s", je.msg);
	}
	jpeg_create_compress(&cinfo);
	cinfo.dest = &dest->pub;
	cinfo.image_width = (JDIMENSION)w;
	cinfo.image_height = (JDIMENSION)h;
	cinfo.input_components = channels;
	cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : channels == 3 ? JCS_RGB : JCS_CMYK;
	/* For CMYK this keeps CMYK (no YCCK) and writes the Adobe APP14 marker. */
	jpeg_set_defaults(&cinfo);
	jpeg_set_quality(&cinfo, quality, TRUE);
	jpeg_start_compress(&cinfo, TRUE);
	while (cinfo.next_scanline < cinfo.image_height) {
		JSAMPROW row = (JSAMPROW)(pix + (size_t)cinfo.next_scanline * (size_t)w * (size_t)channels);
		jpeg_write_scanlines(&cinfo, &row, 1);
	}
	jpeg_finish_compress(&cinfo);
	jpeg_destroy_compress(&cinfo);
	*out = dest->m.data;
	*outlen = dest->m.len;
	free(dest);
	return 0;
}

/* ---- PNG ---- */

struct pngctx {
	struct buf m;
	char msg[200];
};

static void png_on_error(png_structp png, png_const_charp msg)
{
	struct pngctx *c = png_get_error_ptr(png);

	snprintf(c->msg, sizeof c->msg, "%s", msg);
	png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static void png_on_write(png_structp png, png_bytep data, size_t len)
{
	struct pngctx *c = png_get_io_ptr(png);

	if (membuf_put(&c->m, data, len))
		png_error(png, "out of memory");
}

static void png_on_flush(png_structp png)
{
	(void)png;
}

int imgenc_png(const uint8_t *pix, int w, int h, int channels,
	       unsigned char **out, size_t *outlen, char *err)
{
	static const int types[5] = { 0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
				      PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA };
	struct pngctx ctx;
	png_structp png;
	png_infop info = NULL;

	*out = NULL;
	*outlen = 0;
	if (check_dims("png", w, h, 1 << 20, err))
		return -1;
	if (channels < 1 || channels > 4)
		return err_set(err, "png: %d channels (want 1 to 4)", channels);
	memset(&ctx, 0, sizeof ctx);
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
	if (!png)
		return err_set(err, "png: out of memory");
	info = png_create_info_struct(png);
	if (!info) {
		png_destroy_write_struct(&png, NULL);
		return err_set(err, "png: out of memory");
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		free(ctx.m.data);
		return err_set(err, "png: %s", ctx.msg);
	}
	png_set_write_fn(png, &ctx, png_on_write, png_on_flush);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, types[channels],
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < h; y++)
		png_write_row(png, pix + (size_t)y * (size_t)w * (size_t)channels);
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	*out = ctx.m.data;
	*outlen = ctx.m.len;
	return 0;
}

/* ---- GIF ---- */

static int gif_on_write(GifFileType *gif, const GifByteType *data, int len)
{
	struct buf *m = gif->UserData;

	if (len < 0 || membuf_put(m, data, (size_t)len))
		return 0;
	return len;
}

/* Index of the nearest cube colour: levels 6 (red), 7 (green), 6 (blue). */
static GifPixelType cube_index(const uint8_t *p)
{
	int r = (p[0] * 5 + 127) / 255, g = (p[1] * 6 + 127) / 255, b = (p[2] * 5 + 127) / 255;

	return (GifPixelType)((r * 7 + g) * 6 + b);
}

static ColorMapObject *gif_palette(int channels)
{
	ColorMapObject *cm = GifMakeMapObject(256, NULL);

	if (!cm)
		return NULL;
	for (int i = 0; i < 256; i++) {
		GifColorType *c = &cm->Colors[i];

		if (channels == 1) {
			c->Red = c->Green = c->Blue = (GifByteType)i;
		} else if (i < 252) {
			c->Red = (GifByteType)((i / 42) * 255 / 5);
			c->Green = (GifByteType)((i / 6 % 7) * 255 / 6);
			c->Blue = (GifByteType)((i % 6) * 255 / 5);
		} else {
			c->Red = c->Green = c->Blue = 0;
		}
	}
	return cm;
}

static int gif_frames(GifFileType *gif, const uint8_t *const *frames, int nframes, int w,
		      int h, int channels, int delay_cs, GifPixelType *line)
{
	static const GifByteType loop[3] = { 1, 0, 0 }; /* sub-block 1, loop count 0: forever */
	GraphicsControlBlock gcb = { .DisposalMode = DISPOSE_DO_NOT, .UserInputFlag = false,
				     .DelayTime = delay_cs, .TransparentColor = NO_TRANSPARENT_COLOR };
	GifByteType ext[4];

	if (EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) == GIF_ERROR ||
	    EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0") == GIF_ERROR ||
	    EGifPutExtensionBlock(gif, 3, loop) == GIF_ERROR ||
	    EGifPutExtensionTrailer(gif) == GIF_ERROR)
		return -1;
	EGifGCBToExtension(&gcb, ext);
	for (int f = 0; f < nframes; f++) {
		if (EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, ext) == GIF_ERROR ||
		    EGifPutImageDesc(gif, 0, 0, w, h, false, NULL) == GIF_ERROR)
			return -1;
		for (int y = 0; y < h; y++) {
			const uint8_t *row = frames[f] + (size_t)y * (size_t)w * (size_t)channels;

			for (int x = 0; x < w; x++)
				line[x] = channels == 1 ? row[x] : cube_index(row + 3 * (size_t)x);
			if (EGifPutLine(gif, line, w) == GIF_ERROR)
				return -1;
		}
	}
	return 0;
}

int imgenc_gif(const uint8_t *const *frames, int nframes, int w, int h, int channels,
	       int delay_cs, unsigned char **out, size_t *outlen, char *err)
{
	struct buf m = { 0 };
	GifFileType *gif;
	ColorMapObject *cm = NULL;
	GifPixelType *line = NULL;
	int gerr = 0, rc = -1;

	*out = NULL;
	*outlen = 0;
	if (check_dims("gif", w, h, 65535, err))
		return -1;
	if (channels != 1 && channels != 3)
		return err_set(err, "gif: %d channels (want 1 or 3)", channels);
	if (nframes < 1)
		return err_set(err, "gif: no frames");
	if (delay_cs < 0 || delay_cs > 65535)
		return err_set(err, "gif: frame delay %d outside 0..65535", delay_cs);
	gif = EGifOpen(&m, gif_on_write, &gerr);
	if (!gif)
		return err_set(err, "gif: %s", GifErrorString(gerr));
	cm = gif_palette(channels);
	line = malloc((size_t)w);
	if (!cm || !line) {
		err_set(err, "gif: out of memory");
		goto done;
	}
	EGifSetGifVersion(gif, true);
	if (EGifPutScreenDesc(gif, w, h, 8, 0, cm) == GIF_ERROR ||
	    gif_frames(gif, frames, nframes, w, h, channels, delay_cs, line)) {
		err_set(err, "gif: %s", m.oom ? "out of memory" : GifErrorString(gif->Error));
		goto done;
	}
	rc = 0;
done:
	if (EGifCloseFile(gif, &gerr) == GIF_ERROR && rc == 0) {
		err_set(err, "gif: %s", m.oom ? "out of memory" : GifErrorString(gerr));
		rc = -1;
	}
	GifFreeMapObject(cm);
	free(line);
	if (rc) {
		free(m.data);
		return -1;
	}
	*out = m.data;
	*outlen = m.len;
	return 0;
}
