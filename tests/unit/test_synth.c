/* Unit tests for synth: the breed table, breed parsing, rendering, and what libjpeg itself
 * says about the quirk files of a written set (warnings, colour space, Adobe marker). */
#include "check.h"
#include "util/errmsg.h"
#include "pets/synth.h"
#include "pets/synth_draw.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

static void test_breeds(void)
{
	int cats = 0, dogs = 0, idx[SYNTH_NBREEDS];
	char err[ERR_MAX] = "";

	CHECK(synth_breed_at(-1) == NULL && synth_breed_at(SYNTH_NBREEDS) == NULL, "bounds");
	for (int i = 0; i < SYNTH_NBREEDS; i++) {
		const synth_breed *b = synth_breed_at(i);

		CHECK(b->class_id == i + 1, "%s: class id %d", b->name, b->class_id);
		/* Breed ids count up within each species, in class-id order. */
		if (b->species == 1)
			CHECK(b->breed_id == ++cats, "%s: cat breed id %d", b->name, b->breed_id);
		else
			CHECK(b->species == 2 && b->breed_id == ++dogs, "%s: dog breed id %d", b->name, b->breed_id);
		/* The real naming: cats capitalised, dogs lower case. */
		CHECK(!!isupper((unsigned char)b->name[0]) == (b->species == 1), "%s: case", b->name);
		CHECK(synth_breed_find(b->name) == i, "find %s", b->name);
		if (i > 0)
			CHECK(strcasecmp(synth_breed_at(i - 1)->name, b->name) < 0, "alphabetical at %s", b->name);
	}
	CHECK(cats == 12 && dogs == 25, "12 cats (%d), 25 dogs (%d)", cats, dogs);
	CHECK(synth_breed_find("SHIBA_INU") == 31 && synth_breed_find("shiba") == -1, "case-insensitive, whole names");
	CHECK(synth_parse_breeds("samoyed,Abyssinian", idx, err) == 2 && idx[0] == 29 && idx[1] == 0, "parse two");
	CHECK(synth_parse_breeds("samoyed,dragon", idx, err) == -1 && strstr(err, "'dragon'"), "unknown named: %s", err);
	CHECK(synth_parse_breeds("pug,PUG", idx, err) == -1 && strstr(err, "twice"), "repeat: %s", err);
	CHECK(synth_parse_breeds("pug,", idx, err) == -1, "empty name");
	CHECK(synth_parse_breeds("", idx, err) == -1, "empty list");
}

static void test_render(void)
{
	enum { W = 90, H = 70 };
	static uint8_t a[H * W * 3], b[H * W * 3], tri[H * W];
	int box[4], seen[4] = { 0 };
	rng r1, r2;

	rng_seed(&r1, 7);
	rng_seed(&r2, 7);
	synth_draw(29, &r1, W, H, a, tri, box);
	synth_draw(29, &r2, W, H, b, NULL, NULL);
	CHECK(!memcmp(a, b, sizeof a), "same rng, same pixels (trimap or not)");
	for (int i = 0; i < W * H; i++)
		seen[tri[i] < 4 ? tri[i] : 0]++;
	CHECK(seen[0] == 0 && seen[1] > 0 && seen[2] > 0 && seen[3] > 0,
	      "trimap values 1/2/3 only: %d %d %d (other %d)", seen[1], seen[2], seen[3], seen[0]);
	CHECK(box[0] >= 0 && box[0] <= box[2] && box[2] < W && box[1] >= 0 && box[1] <= box[3] && box[3] < H,
	      "head box %d,%d..%d,%d inside", box[0], box[1], box[2], box[3]);
	rng_seed(&r2, 8);
	synth_draw(29, &r2, W, H, b, NULL, NULL);
	CHECK(memcmp(a, b, sizeof a) != 0, "another seed, other pixels");
}

struct jwarn {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char last[JMSG_LENGTH_MAX];
};

static void jw_exit(j_common_ptr c)
{
	struct jwarn *e = (struct jwarn *)c->err;

	c->err->format_message(c, e->last);
	longjmp(e->jb, 1);
}

static void jw_output(j_common_ptr c)
{
	struct jwarn *e = (struct jwarn *)c->err;

	c->err->format_message(c, e->last);
}

struct jinfo {
	int ok, warnings, cmyk, adobe, w, h, comps;
	double mean;
	char msg[JMSG_LENGTH_MAX];
};

/* Decodes fully with libjpeg, recording warnings and the file's colour space. */
static struct jinfo jpeg_probe(const unsigned char *buf, size_t len)
{
	struct jpeg_decompress_struct d;
	struct jwarn e;
	struct jinfo info;
	unsigned char *volatile row = NULL;
	volatile double sum = 0;

	memset(&info, 0, sizeof info);
	memset(&e, 0, sizeof e);
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = jw_exit;
	e.pub.output_message = jw_output;
	if (setjmp(e.jb)) {
		snprintf(info.msg, sizeof info.msg, "%s", e.last);
		jpeg_destroy_decompress(&d);
		free(row);
		return info;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, buf, (unsigned long)len);
	jpeg_read_header(&d, TRUE);
	info.cmyk = d.jpeg_color_space == JCS_CMYK;
	info.adobe = d.saw_Adobe_marker;
	jpeg_start_decompress(&d);
	info.w = (int)d.output_width;
	info.h = (int)d.output_height;
	info.comps = d.output_components;
	row = malloc((size_t)info.w * info.comps);
	while (d.output_scanline < d.output_height) {
		JSAMPROW rp = row;
		jpeg_read_scanlines(&d, &rp, 1);
		for (int i = 0; i < info.w * info.comps; i++)
			sum += row[i];
	}
	info.mean = sum / ((double)info.w * info.h * info.comps);
	jpeg_finish_decompress(&d);
	info.warnings = (int)e.pub.num_warnings;
	snprintf(info.msg, sizeof info.msg, "%s", e.last);
	info.ok = 1;
	jpeg_destroy_decompress(&d);
	free(row);
	return info;
}

/* Reads one member of a tar(.gz) into memory; NULL if absent. */
static unsigned char *tar_member(const char *path, const char *name, size_t *len)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	unsigned char *buf = NULL;

	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		if (strcmp(archive_entry_pathname(e), name))
			continue;
		*len = (size_t)archive_entry_size(e);
		buf = malloc(*len ? *len : 1);
		if (buf && archive_read_data(a, buf, *len) != (la_ssize_t)*len) {
			free(buf);
			buf = NULL;
		}
		break;
	}
	archive_read_free(a);
	return buf;
}

static void test_quirks_libjpeg(void)
{
	char dir[] = "/tmp/petcnn-synth-XXXXXX", path[256], err[ERR_MAX] = "";
	synth_opts o;
	unsigned char *buf;
	size_t len = 0;
	struct jinfo ji;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	synth_opts_default(&o);
	o.per_breed = 10;
	o.min_size = 48;
	o.max_size = 64;
	CHECK(synth_write(&o, dir, err) == 0, "write: %s", err);
	snprintf(path, sizeof path, "%s/images.tar.gz", dir);

	/* b1 = shiba_inu: image 5 has extraneous bytes, image 7 is CMYK; b2 = Abyssinian_6 is cut. */
	buf = tar_member(path, "images/shiba_inu_5.jpg", &len);
	CHECK(buf != NULL, "extraneous-bytes member");
	if (buf) {
		ji = jpeg_probe(buf, len);
		CHECK(ji.ok && ji.warnings > 0 && strstr(ji.msg, "extraneous bytes before marker"),
		      "decodes with a warning: ok %d, %d warnings, '%s'", ji.ok, ji.warnings, ji.msg);
		free(buf);
	}
	buf = tar_member(path, "images/Abyssinian_6.jpg", &len);
	CHECK(buf != NULL, "truncated member");
	if (buf) {
		ji = jpeg_probe(buf, len);
		CHECK(ji.warnings > 0 && strstr(ji.msg, "Premature end"), "truncated: '%s'", ji.msg);
		free(buf);
	}
	buf = tar_member(path, "images/shiba_inu_7.jpg", &len);
	CHECK(buf != NULL, "CMYK member");
	if (buf) {
		ji = jpeg_probe(buf, len);
		CHECK(ji.ok && ji.cmyk && ji.adobe && ji.comps == 4 && ji.warnings == 0,
		      "CMYK with Adobe marker: cmyk %d adobe %d comps %d", ji.cmyk, ji.adobe, ji.comps);
		/* Inverted storage: the K' channel is max(R,G,B), so the mean is far from 0. */
		CHECK(ji.mean > 60, "inverted CMYK mean %.1f (want > 60)", ji.mean);
		free(buf);
	}
	buf = tar_member(path, "images/samoyed_2.jpg", &len);
	CHECK(buf != NULL, "grayscale member");
	if (buf) {
		ji = jpeg_probe(buf, len);
		CHECK(ji.ok && ji.comps == 1 && ji.warnings == 0, "grayscale: %d components", ji.comps);
		CHECK(ji.w >= 48 && ji.w <= 64 && ji.h >= 48 && ji.h <= 64, "size %dx%d in range", ji.w, ji.h);
		free(buf);
	}
	buf = tar_member(path, "images/samoyed_1.jpg", &len);
	if (buf) {
		ji = jpeg_probe(buf, len);
		CHECK(ji.ok && ji.comps == 3 && ji.warnings == 0, "plain JPEG: %d warnings", ji.warnings);
		free(buf);
	}
	snprintf(path, sizeof path, "rm -r %s", dir);
	CHECK(system(path) == 0, "cleanup");

	/* Bad options are refused before anything is written. */
	o.per_breed = SYNTH_MIN_PER_BREED - 1;
	CHECK(synth_write(&o, "/nonexistent", err) == -1 && strstr(err, "per breed"), "per_breed: %s", err);
	o.per_breed = 10;
	o.min_size = 100;
	o.max_size = 50;
	CHECK(synth_write(&o, "/nonexistent", err) == -1 && strstr(err, "size range"), "sizes: %s", err);
	o.min_size = 48;
	o.max_size = 64;
	/* Under a regular file: fails even for root, unlike a missing directory. */
	CHECK(synth_write(&o, "/dev/null/dir", err) == -1 && strstr(err, "/dev/null/dir/"), "dir: %s", err);
}

int main(void)
{
	test_breeds();
	test_render();
	test_quirks_libjpeg();
	return check_done("test_synth");
}
