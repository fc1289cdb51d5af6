/* projector: TensorBoard's Embedding Projector files for one vector per image (cnn-eval
 * --projector); the format is spelled out in projector.h. */
#include "tb/projector.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img/imgenc.h"
#include "img/resize.h"
#include "util/errmsg.h"

int proj_sprite_plan(int64_t n, int h, int w, int *side, int *tw, int *th, char *err)
{
	int64_t s = (int64_t)ceil(sqrt((double)n)), lim, big = h > w ? h : w;

	while (s * s < n)       /* sqrt's rounding, for huge n */
		s++;
	while (s > 1 && (s - 1) * (s - 1) >= n)
		s--;
	lim = s > 0 ? PROJ_SPRITE_MAX / s : 0;
	if (lim > PROJ_THUMB_MAX)
		lim = PROJ_THUMB_MAX;
	if (n < 1 || h < 1 || w < 1 || lim < 1)
		return err_set(err, "projector: no sprite of %dx%d thumbnails for %lld images "
			       "(at most %d x %d, one pixel each)", w, h, (long long)n,
			       PROJ_SPRITE_MAX, PROJ_SPRITE_MAX);
	*side = (int)s;
	if (big <= lim) {
		*tw = w, *th = h;
	} else {
		*tw = (int)((int64_t)w * lim / big), *th = (int)((int64_t)h * lim / big);
		*tw = *tw < 1 ? 1 : *tw;
		*th = *th < 1 ? 1 : *th;
	}
	return 0;
}

/* dir/name, malloc'ed */
static char *join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *s = malloc(a + b + 2);

	if (s)
		snprintf(s, a + b + 2, "%s/%s", dir, name);
	return s;
}

static int open_in(outfile *o, const char *dir, const char *name, char *err)
{
	char *path = join(dir, name);
	int rc;

	if (!path)
		return err_set(err, "%s: out of memory", dir);
	rc = outfile_open(o, path, err);
	free(path);
	return rc;
}

int proj_open(proj_writer *p, const char *dir, int64_t n, int dim, int h, int w, char *err)
{
	size_t sw, sh;

	memset(p, 0, sizeof *p);
	if (dim < 1)
		return err_set(err, "projector: vectors of %d values", dim);
	if (proj_sprite_plan(n, h, w, &p->side, &p->tw, &p->th, err))
		return -1;
	p->n = n, p->dim = dim, p->h = h, p->w = w;
	sw = (size_t)p->side * p->tw, sh = (size_t)p->side * p->th;
	p->dir = strdup(dir);
	p->sprite = calloc(sw * sh, 3);
	p->thumb = malloc((size_t)p->tw * p->th * 3);
	if (!p->dir || !p->sprite || !p->thumb) {
		proj_abort(p);
		return err_set(err, "%s: out of memory for a %zux%zu sprite", dir, sw, sh);
	}
	if (outfile_mkdirs(dir, err) || open_in(&p->tsv, dir, "tensors.tsv", err) ||
	    open_in(&p->meta, dir, "metadata.tsv", err)) {
		proj_abort(p);
		return -1;
	}
	fputs("true\tpredicted\tcorrect\n", p->meta.fp);
	return 0;
}

/* A class name as one metadata cell: no tab or line break inside. */
static void put_cell(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

int proj_add(proj_writer *p, const float *vec, const uint8_t *img, const char *truth,
	     const char *pred, char *err)
{
	int col, row;
	size_t stride = (size_t)p->side * p->tw * 3;

	if (p->done >= p->n)
		return err_set(err, "%s: more than the %lld points planned", p->dir, (long long)p->n);
	for (int j = 0; j < p->dim; j++)
		fprintf(p->tsv.fp, j ? "\t%.9g" : "%.9g", vec[j]);
	fputc('\n', p->tsv.fp);
	put_cell(p->meta.fp, truth ? truth : "-");
	fputc('\t', p->meta.fp);
	put_cell(p->meta.fp, pred);
	fprintf(p->meta.fp, "\t%s\n", !truth ? "-" : strcmp(truth, pred) ? "no" : "yes");
	if (p->tw == p->w && p->th == p->h)
		memcpy(p->thumb, img, (size_t)p->tw * p->th * 3);
	else if (resize_rgb(img, p->w, p->h, p->thumb, p->tw, p->th, RESIZE_STRETCH, err))
		return -1;
	col = (int)(p->done % p->side), row = (int)(p->done / p->side);
	for (int y = 0; y < p->th; y++)
		memcpy(p->sprite + ((size_t)row * p->th + y) * stride + (size_t)col * p->tw * 3,
		       p->thumb + (size_t)y * p->tw * 3, (size_t)p->tw * 3);
	p->done++;
	return 0;
}

/* name as a protobuf text-format string body: quotes, backslashes and bytes outside
 * printable ASCII escaped in octal, which every text-format parser reads. */
static void put_pbstring(FILE *f, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(f, "\\%c", *c);
		else if (*c < 0x20 || *c >= 0x7f)
			fprintf(f, "\\%03o", *c);
		else
			fputc(*c, f);
	}
}

int proj_close(proj_writer *p, const char *name, char *err)
{
	outfile sprite = { 0 }, cfg = { 0 };
	unsigned char *png = NULL;
	size_t len = 0;
	int sw = p->side * p->tw, sh = p->side * p->th;

	if (p->done != p->n) {
		err_set(err, "%s: %lld points of the %lld planned", p->dir, (long long)p->done,
			(long long)p->n);
		goto fail;
	}
	if (imgenc_png(p->sprite, sw, sh, 3, &png, &len, err) ||
	    open_in(&sprite, p->dir, "sprite.png", err))
		goto fail;
	if (fwrite(png, 1, len, sprite.fp) != len) {
		err_set(err, "%s/sprite.png: write error", p->dir);
		goto fail;
	}
	if (open_in(&cfg, p->dir, "projector_config.pbtxt", err))
		goto fail;
	fputs("embeddings {\n  tensor_name: \"", cfg.fp);
	put_pbstring(cfg.fp, name);
	fprintf(cfg.fp, "\"\n  tensor_path: \"tensors.tsv\"\n  metadata_path: \"metadata.tsv\"\n"
		"  tensor_shape: %lld\n  tensor_shape: %d\n  sprite {\n"
		"    image_path: \"sprite.png\"\n    single_image_dim: %d\n"
		"    single_image_dim: %d\n  }\n}\n", (long long)p->n, p->dim, p->tw, p->th);
	/* the config last: a TensorBoard reading the folder meanwhile finds no config, or
	 * one whose files are all in place */
	if (outfile_commit(&p->tsv, err) || outfile_commit(&p->meta, err) ||
	    outfile_commit(&sprite, err) || outfile_commit(&cfg, err))
		goto fail;
	free(png);
	proj_abort(p);
	return 0;
fail:
	free(png);
	outfile_abort(&sprite);
	outfile_abort(&cfg);
	proj_abort(p);
	return -1;
}

void proj_abort(proj_writer *p)
{
	outfile_abort(&p->tsv);
	outfile_abort(&p->meta);
	free(p->dir), free(p->sprite), free(p->thumb);
	p->dir = NULL, p->sprite = p->thumb = NULL;
}
