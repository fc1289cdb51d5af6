/* synth: the synthetic pet set. A plan (names, sizes, quirks, splits) is drawn first from
 * its own rng streams, so every image's pixels depend only on (seed, image index); then
 * both archives are streamed through synth_tar, one image in memory at a time. The pictures
 * are synth_draw's; this file names, lists, encodes (quirks included) and packs them. */
#include "pets/synth.h"

#include "img/imgenc.h"
#include "pets/synth_draw.h"
#include "pets/synth_tar.h"
#include "util/buf.h"
#include "util/errmsg.h"
#include "util/hash.h"
#include "util/outfile.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- breeds: the real 37, in class-id order ---- */


static const synth_breed breeds[SYNTH_NBREEDS] = {
	{ "Abyssinian", 1, 1, 1 }, { "american_bulldog", 2, 2, 1 },
	{ "american_pit_bull_terrier", 3, 2, 2 }, { "basset_hound", 4, 2, 3 },
	{ "beagle", 5, 2, 4 }, { "Bengal", 6, 1, 2 }, { "Birman", 7, 1, 3 },
	{ "Bombay", 8, 1, 4 }, { "boxer", 9, 2, 5 }, { "British_Shorthair", 10, 1, 5 },
	{ "chihuahua", 11, 2, 6 }, { "Egyptian_Mau", 12, 1, 6 },
	{ "english_cocker_spaniel", 13, 2, 7 }, { "english_setter", 14, 2, 8 },
	{ "german_shorthaired", 15, 2, 9 }, { "great_pyrenees", 16, 2, 10 },
	{ "havanese", 17, 2, 11 }, { "japanese_chin", 18, 2, 12 }, { "keeshond", 19, 2, 13 },
	{ "leonberger", 20, 2, 14 }, { "Maine_Coon", 21, 1, 7 },
	{ "miniature_pinscher", 22, 2, 15 }, { "newfoundland", 23, 2, 16 },
	{ "Persian", 24, 1, 8 }, { "pomeranian", 25, 2, 17 }, { "pug", 26, 2, 18 },
	{ "Ragdoll", 27, 1, 9 }, { "Russian_Blue", 28, 1, 10 }, { "saint_bernard", 29, 2, 19 },
	{ "samoyed", 30, 2, 20 }, { "scottish_terrier", 31, 2, 21 }, { "shiba_inu", 32, 2, 22 },
	{ "Siamese", 33, 1, 11 }, { "Sphynx", 34, 1, 12 },
	{ "staffordshire_bull_terrier", 35, 2, 23 }, { "wheaten_terrier", 36, 2, 24 },
	{ "yorkshire_terrier", 37, 2, 25 },
};


const synth_breed *synth_breed_at(int i)
{
	return i >= 0 && i < SYNTH_NBREEDS ? &breeds[i] : NULL;
}

int synth_breed_find(const char *name)
{
	for (int i = 0; i < SYNTH_NBREEDS; i++)
		if (!strcasecmp(name, breeds[i].name))
			return i;
	return -1;
}

int synth_parse_breeds(const char *list, int *idx, char *err)
{
	char name[64];
	const char *p = list;
	int n = 0;

	for (;;) {
		size_t len = strcspn(p, ",");
		int b;

		if (len == 0 || len >= sizeof name)
			return err_set(err, "breeds: '%.*s' is not a breed name", (int)(len > 60 ? 60 : len), p);
		memcpy(name, p, len);
		name[len] = 0;
		b = synth_breed_find(name);
		if (b < 0)
			return err_set(err, "breeds: unknown breed '%s'", name);
		for (int i = 0; i < n; i++)
			if (idx[i] == b)
				return err_set(err, "breeds: '%s' given twice", name);
		idx[n++] = b;
		if (!p[len])
			return n;
		p += len + 1;
	}
}

void synth_opts_default(synth_opts *o)
{
	memset(o, 0, sizeof *o);
	o->breeds[0] = synth_breed_find("samoyed");
	o->breeds[1] = synth_breed_find("shiba_inu");
	o->breeds[2] = synth_breed_find("Abyssinian");
	o->nbreeds = 3;
	o->per_breed = 40;
	o->min_size = 120;
	o->max_size = 320;
	o->seed = 1;
	o->gzip = 1;
}

/* ---- the plan: every file's name, size, quirk and split, drawn before any pixel ---- */

enum quirk { Q_NONE, Q_GRAY, Q_PNG, Q_GIF, Q_EXTRA, Q_TRUNC, Q_CMYK, Q_COUNT };

static const char *const quirk_name[Q_COUNT] = {
	"", "grayscale", "png-as-jpg", "gif-as-jpg", "extraneous-bytes", "truncated", "cmyk",
};

struct item {
	int breed, n, w, h, quality;
	enum quirk q;
	int listed, trainval, appledouble;
};

struct plan {
	struct item *it;
	int n;
	int mat_breed;   /* the breed whose _100.mat sits in images/ */
};

/* rng streams: one per purpose, and one per image so its pixels depend on nothing else. */
enum { STREAM_SIZES = 1, STREAM_SPLIT = 2, STREAM_IMAGE = 1000 };

static enum quirk quirk_of(const synth_opts *o, int breed, int n)
{
	int k = o->nbreeds, b0 = o->breeds[0], b1 = o->breeds[1 % k], b2 = o->breeds[2 % k];

	if (n == 2)
		return Q_GRAY;
	if (breed == b0 && n == 3)
		return Q_PNG;
	if (breed == b0 && n == 4)
		return Q_GIF;
	if (breed == b1 && n == 5)
		return Q_EXTRA;
	if (breed == b2 && n == 6)
		return Q_TRUNC;
	if (breed == b1 && n == 7)
		return Q_CMYK;
	return Q_NONE;
}

static int chosen(const synth_opts *o, int b)
{
	for (int i = 0; i < o->nbreeds; i++)
		if (o->breeds[i] == b)
			return 1;
	return 0;
}

static int plan_make(struct plan *p, const synth_opts *o, char *err)
{
	rng rs, rsplit;
	int N = o->per_breed, *perm, i = 0;

	p->n = o->nbreeds * N;
	p->it = calloc((size_t)p->n, sizeof *p->it);
	perm = malloc((size_t)N * sizeof *perm);
	if (!p->it || !perm) {
		free(p->it);
		free(perm);
		return err_set(err, "synth: out of memory");
	}
	rng_stream(&rs, o->seed, STREAM_SIZES);
	rng_stream(&rsplit, o->seed, STREAM_SPLIT);
	/* Archive and list order is the real one: by class id, then by number. */
	for (int b = 0; b < SYNTH_NBREEDS; b++) {
		int listed = N - 1;

		if (!chosen(o, b))
			continue;
		/* Listed images 1..N-1 shuffled; the first half (rounded up) is trainval. */
		for (int k = 0; k < listed; k++)
			perm[k] = k + 1;
		for (int k = listed - 1; k > 0; k--) {
			int j = (int)rng_below(&rsplit, (uint64_t)k + 1), t = perm[k];
			perm[k] = perm[j];
			perm[j] = t;
		}
		for (int n = 1; n <= N; n++, i++) {
			struct item *it = &p->it[i];

			it->breed = b;
			it->n = n;
			it->w = o->min_size + (int)rng_below(&rs, (uint64_t)(o->max_size - o->min_size) + 1);
			it->h = o->min_size + (int)rng_below(&rs, (uint64_t)(o->max_size - o->min_size) + 1);
			it->quality = 80 + (int)rng_below(&rs, 16);
			it->q = quirk_of(o, b, n);
			it->listed = n < N;
			it->appledouble = n == 1;
		}
		for (int k = 0; k < (listed + 1) / 2; k++)
			p->it[i - N + perm[k] - 1].trainval = 1;
	}
	free(perm);
	p->mat_breed = chosen(o, 0) ? 0 : o->breeds[0];
	return 0;
}

/* ---- the annotation texts ---- */

static void item_name(const struct item *it, char *buf, size_t n)
{
	snprintf(buf, n, "%s_%d", breeds[it->breed].name, it->n);
}

/* The real list.txt header, typos and the swapped breed-id ranges included. */
static const char list_header[] =
	"#Image CLASS-ID SPECIES BREED ID\n"
	"#ID: 1:37 Class ids\n"
	"#SPECIES: 1:Cat 2:Dog\n"
	"#BREED ID: 1-25:Cat 1:12:Dog\n"
	"#All images with 1st letter as captial are cat images\n"
	"#images with small first letter are dog images\n";

static void item_line(const struct item *it, char *buf, size_t n)
{
	const synth_breed *b = &breeds[it->breed];

	snprintf(buf, n, "%s_%d %d %d %d", b->name, it->n, b->class_id, b->species, b->breed_id);
}

/* The real lists were sorted in a locale that ignores case and punctuation at first
 * (Abyssinian_100 comes before Abyssinian_1): compare letters and digits only, lowered. */
static void line_key(const struct item *it, char *key, size_t n)
{
	char line[128];
	size_t k = 0;

	item_line(it, line, sizeof line);
	for (const char *p = line; *p && k + 1 < n; p++)
		if (isalnum((unsigned char)*p))
			key[k++] = (char)tolower((unsigned char)*p);
	key[k] = 0;
}

static int line_cmp(const void *a, const void *b)
{
	const struct item *x = *(const struct item *const *)a, *y = *(const struct item *const *)b;
	char kx[128], ky[128];
	int c;

	line_key(x, kx, sizeof kx);
	line_key(y, ky, sizeof ky);
	c = strcmp(kx, ky);
	if (c)
		return c;
	item_line(x, kx, sizeof kx);
	item_line(y, ky, sizeof ky);
	return strcmp(kx, ky);
}

/* which: 0 list.txt, 1 trainval.txt, 2 test.txt */
static int write_list(struct buf *s, const struct plan *p, int which, char *err)
{
	const struct item **rows = malloc((size_t)p->n * sizeof *rows);
	char line[128];
	int n = 0;

	if (!rows)
		return err_set(err, "synth: out of memory");
	if (which == 0)
		buf_printf(s, "%s", list_header);
	for (int i = 0; i < p->n; i++) {
		const struct item *it = &p->it[i];

		if (it->listed && (which == 0 || (which == 1) == it->trainval))
			rows[n++] = it;
	}
	qsort(rows, (size_t)n, sizeof *rows, line_cmp);
	for (int i = 0; i < n; i++) {
		item_line(rows[i], line, sizeof line);
		buf_printf(s, "%s\n", line);
	}
	free(rows);
	return 0;
}

static void write_readme(struct buf *s, const struct plan *p, const synth_opts *o)
{
	char name[80];

	buf_printf(s,
		  "OXFORD-IIIT PET Dataset (synthetic mirror, written by pet-synth)\n"
		  "-----------------------\n"
		  "The real dataset is by Omkar M Parkhi, Andrea Vedaldi, Andrew Zisserman and\n"
		  "C. V. Jawahar. This sample has the same layout, names and quirks, but every\n"
		  "picture is drawn by a program: %d breeds, %d images each, seed %llu.\n\n"
		  "Contents:\n"
		  "--------\n"
		  "trimaps/    Trimap annotations for every image in the dataset\n"
		  "            Pixel Annotations: 1: Foreground 2:Background 3: Not classified\n"
		  "xmls/       Head bounding box annotations in PASCAL VOC Format (trainval only)\n\n"
		  "list.txt    Combined list of all images in the dataset\n"
		  "            Each entry in the file is of following nature:\n"
		  "            Image CLASS-ID SPECIES BREED-ID\n"
		  "            ID: 1:37 Class ids\n"
		  "            SPECIES: 1:Cat 2:Dog\n"
		  "            BREED ID: 1-12:Cat 1:25:Dog\n"
		  "            All images with 1st letter as captial are cat images while\n"
		  "            images with small first letter are dog images.\n"
		  "trainval.txt Files describing splits used in the paper. However,\n"
		  "test.txt     you are encouraged to try random splits.\n\n"
		  "QUIRKS\n"
		  "------\n"
		  "Files that, as in the real set, are not what their names promise (kind, tab,\n"
		  "paths relative to the archive root):\n",
		  o->nbreeds, o->per_breed, (unsigned long long)o->seed);
	for (int q = Q_GRAY; q < Q_COUNT; q++) {
		buf_printf(s, "%s\t", quirk_name[q]);
		for (int i = 0, first = 1; i < p->n; i++)
			if (p->it[i].q == (enum quirk)q) {
				item_name(&p->it[i], name, sizeof name);
				buf_printf(s, "%simages/%s.jpg", first ? "" : " ", name);
				first = 0;
			}
		buf_printf(s, "\n");
	}
	buf_printf(s, "unlisted\t");
	for (int i = 0, first = 1; i < p->n; i++)
		if (!p->it[i].listed) {
			item_name(&p->it[i], name, sizeof name);
			buf_printf(s, "%simages/%s.jpg", first ? "" : " ", name);
			first = 0;
		}
	buf_printf(s, "\nmat\timages/%s_100.mat\nappledouble\t", breeds[p->mat_breed].name);
	for (int i = 0, first = 1; i < p->n; i++)
		if (p->it[i].appledouble) {
			item_name(&p->it[i], name, sizeof name);
			buf_printf(s, "%simages/._%s.jpg annotations/trimaps/._%s.png", first ? "" : " ", name, name);
			first = 0;
		}
	buf_printf(s, "\n");
}

static void write_xml(struct buf *s, const struct item *it, int depth, const int box[4])
{
	char name[80];

	item_name(it, name, sizeof name);
	buf_printf(s,
		  "<annotation><folder>OXIIIT</folder><filename>%s.jpg</filename>"
		  "<source><database>OXFORD-IIIT Pet Dataset</database><annotation>OXIIIT</annotation>"
		  "<image>pet-synth</image></source><size><width>%d</width><height>%d</height>"
		  "<depth>%d</depth></size><segmented>0</segmented><object><name>%s</name>"
		  "<pose>Frontal</pose><truncated>0</truncated><occluded>0</occluded><bndbox>"
		  "<xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox>"
		  "<difficult>0</difficult></object></annotation>\n",
		  name, it->w, it->h, depth, breeds[it->breed].species == 1 ? "cat" : "dog",
		  box[0] + 1, box[1] + 1, box[2] + 1, box[3] + 1);
}

/* A macOS AppleDouble header ("._" file): magic, version, filler, two entries
 * (Finder info and an empty resource fork). */
static size_t appledouble(unsigned char *b)
{
	static const unsigned char head[26] = { 0x00, 0x05, 0x16, 0x07, 0x00, 0x02, 0x00, 0x00,
						'M', 'a', 'c', ' ', 'O', 'S', ' ', 'X',
						' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', 0x00, 0x02 };
	static const unsigned char ent[24] = { 0, 0, 0, 9, 0, 0, 0, 50, 0, 0, 0, 32,
					       0, 0, 0, 2, 0, 0, 0, 82, 0, 0, 0, 0 };

	memset(b, 0, 82);
	memcpy(b, head, sizeof head);
	memcpy(b + 26, ent, sizeof ent);
	return 82;
}

/* A MATLAB 5.0 MAT-file header with no variables: 116 bytes of text, subsystem offset,
 * version 0x0100 and the "IM" endian mark (little-endian writer). */
static size_t matfile(unsigned char *b)
{
	static const char text[] =
		"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Wed Jun  6 12:00:00 2012";

	memset(b, ' ', 116);
	memcpy(b, text, sizeof text - 1);
	memset(b + 116, 0, 8);
	b[124] = 0x00;
	b[125] = 0x01;
	b[126] = 'I';
	b[127] = 'M';
	return 128;
}

/* ---- one image: render, encode as its quirk says ---- */

struct scratch {
	uint8_t *rgb, *tri, *alt;   /* h*w*3, h*w, h*w*4 */
	size_t cap[3];              /* pixels each holds */
};

static int scratch_fit(struct scratch *s, int w, int h, char *err)
{
	size_t px = (size_t)w * (size_t)h;

	if (buf_grow_array(&s->rgb, &s->cap[0], px, 3) || buf_grow_array(&s->tri, &s->cap[1], px, 1) ||
	    buf_grow_array(&s->alt, &s->cap[2], px, 4))
		return err_set(err, "synth: out of memory for a %dx%d image", w, h);
	return 0;
}

/* Inserts junk before the marker after SOI+APP0: libjpeg then warns "Corrupt JPEG data:
 * 4 extraneous bytes before marker 0xdb" and decodes anyway, as with the real beagle_116. */
static int add_extraneous(unsigned char **buf, size_t *len, char *err)
{
	static const unsigned char junk[4] = { 0x00, 0x5A, 0xA5, 0x00 };
	size_t at, n = *len;
	unsigned char *b = *buf, *q;

	if (n < 6 || b[2] != 0xFF || b[3] != 0xE0)
		return err_set(err, "synth: unexpected JPEG layout");
	at = 4 + ((size_t)b[4] << 8 | b[5]);
	if (at > n)
		return err_set(err, "synth: unexpected JPEG layout");
	q = malloc(n + sizeof junk);
	if (!q)
		return err_set(err, "synth: out of memory");
	memcpy(q, b, at);
	memcpy(q + at, junk, sizeof junk);
	memcpy(q + at + sizeof junk, b + at, n - at);
	free(b);
	*buf = q;
	*len = n + sizeof junk;
	return 0;
}

static int encode_item(const struct item *it, struct scratch *s, unsigned char **out, size_t *len,
		       char *err)
{
	size_t px = (size_t)it->w * (size_t)it->h;
	const uint8_t *frame[1] = { s->rgb };

	switch (it->q) {
	case Q_GRAY:
		for (size_t i = 0; i < px; i++) {
			const uint8_t *p = s->rgb + 3 * i;
			s->alt[i] = (uint8_t)((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
		}
		return imgenc_jpeg(s->alt, it->w, it->h, 1, it->quality, out, len, err);
	case Q_PNG:
		return imgenc_png(s->rgb, it->w, it->h, 3, out, len, err);
	case Q_GIF:
		return imgenc_gif(frame, 1, it->w, it->h, 3, 0, out, len, err);
	case Q_CMYK:
		/* Stored inverted, as Photoshop does with an Adobe marker: C' = 255 - cyan ink,
		 * which makes R = C' * K' / 255 exactly, K' = max(R, G, B). */
		for (size_t i = 0; i < px; i++) {
			const uint8_t *p = s->rgb + 3 * i;
			uint8_t *c = s->alt + 4 * i;
			int mx = p[0] > p[1] ? p[0] : p[1];

			mx = p[2] > mx ? p[2] : mx;
			for (int k = 0; k < 3; k++)
				c[k] = (uint8_t)(mx ? (p[k] * 255 + mx / 2) / mx : 0);
			c[3] = (uint8_t)mx;
		}
		return imgenc_jpeg(s->alt, it->w, it->h, 4, it->quality, out, len, err);
	default:
		break;
	}
	if (imgenc_jpeg(s->rgb, it->w, it->h, 3, it->quality, out, len, err))
		return -1;
	if (it->q == Q_EXTRA && add_extraneous(out, len, err)) {
		free(*out);
		*out = NULL;
		return -1;
	}
	if (it->q == Q_TRUNC)
		*len = *len * 3 / 5; /* cut mid-scan: no EOI, most rows missing */
	return 0;
}

/* ---- the whole set ---- */

struct job {
	const synth_opts *o;
	struct plan plan;
	synth_tar img, ann;
	struct scratch s;
	struct buf text;
	char *img_path, *ann_path, *sum_path;
};

static int add_text(synth_tar *t, const char *name, struct buf *s, char *err)
{
	if (s->oom)
		return err_set(err, "synth: out of memory");
	if (synth_tar_add(t, name, s->data ? s->data : (const unsigned char *)"", s->len, err))
		return -1;
	buf_reset(s);
	return 0;
}

static int write_annotation_texts(struct job *j, char *err)
{
	static const char *const lists[3] = { "annotations/list.txt", "annotations/trainval.txt",
					      "annotations/test.txt" };

	if (synth_tar_add(&j->ann, "annotations/", NULL, 0, err))
		return -1;
	write_readme(&j->text, &j->plan, j->o);
	if (add_text(&j->ann, "annotations/README", &j->text, err))
		return -1;
	for (int k = 0; k < 3; k++) {
		if (write_list(&j->text, &j->plan, k, err) || add_text(&j->ann, lists[k], &j->text, err))
			return -1;
	}
	if (synth_tar_add(&j->ann, "annotations/trimaps/", NULL, 0, err) ||
	    synth_tar_add(&j->ann, "annotations/xmls/", NULL, 0, err))
		return -1;
	return 0;
}

static int write_item(struct job *j, int idx, char *err)
{
	const struct item *it = &j->plan.it[idx];
	unsigned char *buf = NULL, ad[82];
	size_t len = 0, adlen = appledouble(ad);
	char name[80], path[128];
	int box[4], rc = -1;
	rng r;

	if (scratch_fit(&j->s, it->w, it->h, err))
		return -1;
	rng_stream(&r, j->o->seed, STREAM_IMAGE + (uint64_t)idx);
	synth_draw(it->breed, &r, it->w, it->h, j->s.rgb, j->s.tri, box);
	item_name(it, name, sizeof name);
	if (it->appledouble) {
		snprintf(path, sizeof path, "images/._%s.jpg", name);
		if (synth_tar_add(&j->img, path, ad, adlen, err))
			return -1;
	}
	if (encode_item(it, &j->s, &buf, &len, err))
		return -1;
	snprintf(path, sizeof path, "images/%s.jpg", name);
	if (synth_tar_add(&j->img, path, buf, len, err))
		goto done;
	free(buf);
	buf = NULL;
	if (it->appledouble) {
		snprintf(path, sizeof path, "annotations/trimaps/._%s.png", name);
		if (synth_tar_add(&j->ann, path, ad, adlen, err))
			goto done;
	}
	if (imgenc_png(j->s.tri, it->w, it->h, 1, &buf, &len, err))
		goto done;
	snprintf(path, sizeof path, "annotations/trimaps/%s.png", name);
	if (synth_tar_add(&j->ann, path, buf, len, err))
		goto done;
	if (it->trainval) {
		write_xml(&j->text, it, it->q == Q_GRAY ? 1 : 3, box);
		snprintf(path, sizeof path, "annotations/xmls/%s.xml", name);
		if (add_text(&j->ann, path, &j->text, err))
			goto done;
	}
	rc = 0;
done:
	free(buf);
	return rc;
}

static int write_mat(struct job *j, char *err)
{
	unsigned char mat[128];
	size_t n = matfile(mat);
	char path[128];

	snprintf(path, sizeof path, "images/%s_100.mat", breeds[j->plan.mat_breed].name);
	return synth_tar_add(&j->img, path, mat, n, err);
}

static int write_archives(struct job *j, char *err)
{
	int prev = -1;

	if (synth_tar_open(&j->img, j->img_path, j->o->gzip, err) ||
	    synth_tar_open(&j->ann, j->ann_path, j->o->gzip, err))
		return -1;
	if (synth_tar_add(&j->img, "images/", NULL, 0, err) || write_annotation_texts(j, err))
		return -1;
	for (int i = 0; i < j->plan.n; i++) {
		int b = j->plan.it[i].breed;

		/* The .mat file follows its breed's images. */
		if (prev == j->plan.mat_breed && b != prev && write_mat(j, err))
			return -1;
		prev = b;
		if (write_item(j, i, err))
			return -1;
		if (j->o->progress)
			j->o->progress(j->o->progress_ctx, i + 1, j->plan.n);
	}
	if (prev == j->plan.mat_breed && write_mat(j, err))
		return -1;
	if (synth_tar_finish(&j->img, err) || synth_tar_finish(&j->ann, err))
		return -1;
	/* Both complete: only now do they replace anything. */
	if (synth_tar_commit(&j->img, err) || synth_tar_commit(&j->ann, err))
		return -1;
	return 0;
}

static int write_sums(struct job *j, char *err)
{
	char h1[HASH_HEX], h2[HASH_HEX];
	outfile of;

	if (hash_file_sha256(j->img_path, h1, err) || hash_file_sha256(j->ann_path, h2, err))
		return -1;
	if (outfile_open(&of, j->sum_path, err))
		return -1;
	fprintf(of.fp, "%s  images.tar.gz\n%s  annotations.tar.gz\n", h1, h2);
	return outfile_commit(&of, err);
}

static char *join(const char *dir, const char *name)
{
	size_t d = strlen(dir), n = d + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s%s%s", dir, d && dir[d - 1] == '/' ? "" : "/", name);
	return p;
}

int synth_write(const synth_opts *o, const char *dir, char *err)
{
	struct job j;
	int rc = -1;

	if (o->nbreeds < 1 || o->nbreeds > SYNTH_NBREEDS)
		return err_set(err, "synth: %d breeds (want 1 to %d)", o->nbreeds, SYNTH_NBREEDS);
	for (int i = 0; i < o->nbreeds; i++)
		if (!synth_breed_at(o->breeds[i]))
			return err_set(err, "synth: breed index %d out of range", o->breeds[i]);
	if (o->per_breed < SYNTH_MIN_PER_BREED || o->per_breed > 100000)
		return err_set(err, "synth: %d images per breed (want %d to 100000)", o->per_breed,
			       SYNTH_MIN_PER_BREED);
	if (o->min_size < 32 || o->max_size > 4096 || o->min_size > o->max_size)
		return err_set(err, "synth: size range %d..%d (want 32 <= min <= max <= 4096)",
			       o->min_size, o->max_size);
	memset(&j, 0, sizeof j);
	j.o = o;
	j.img_path = join(dir, "images.tar.gz");
	j.ann_path = join(dir, "annotations.tar.gz");
	j.sum_path = join(dir, "SHA256SUMS");
	if (!j.img_path || !j.ann_path || !j.sum_path) {
		err_set(err, "synth: out of memory");
		goto done;
	}
	if (plan_make(&j.plan, o, err))
		goto done;
	if (write_archives(&j, err)) {
		synth_tar_abort(&j.img);
		synth_tar_abort(&j.ann);
		goto done;
	}
	rc = write_sums(&j, err);
done:
	free(j.plan.it);
	free(j.s.rgb);
	free(j.s.tri);
	free(j.s.alt);
	buf_free(&j.text);
	free(j.img_path);
	free(j.ann_path);
	free(j.sum_path);
	return rc;
}
