/* synth: the synthetic pet set. A plan (names, sizes, quirks, splits) is drawn first from
 * its own rng streams, so every image's pixels depend only on (seed, image index); then
 * both archives are streamed through libarchive, one image in memory at a time.
 * Pictures: a cluttered, noisy background and an animal (body, head, ears, eyes) whose
 * colours, coat pattern and outline are the breed's signature, jittered per image in
 * colour, lighting, position, scale and pose, so colour alone does not decide the class. */
#include "pets/synth.h"

#include "util/errmsg.h"
#include "util/hash.h"
#include "img/imgenc.h"
#include "util/outfile.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PI 3.14159265358979323846

/* ---- breeds: the real 37, in class-id order ---- */

enum coat { SOLID, STRIPES, SPOTS, UNDERSIDE, BLOTCH, FLUFFY, POINTS, SADDLE, WRINKLE };

struct look {
	uint8_t base[3], second[3];
	enum coat coat;
	int pointed;    /* ears: 1 pointed, 0 floppy */
	double aspect;  /* body length / height */
};

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

static const struct look looks[SYNTH_NBREEDS] = {
	{ { 176, 104, 58 }, { 92, 52, 28 }, STRIPES, 1, 1.5 },      /* Abyssinian: ruddy, barred */
	{ { 232, 226, 214 }, { 150, 100, 62 }, BLOTCH, 0, 1.5 },
	{ { 120, 120, 126 }, { 235, 230, 225 }, UNDERSIDE, 0, 1.4 },
	{ { 150, 88, 44 }, { 240, 238, 232 }, BLOTCH, 0, 2.0 },
	{ { 182, 122, 62 }, { 40, 35, 30 }, SADDLE, 0, 1.6 },
	{ { 204, 154, 72 }, { 60, 40, 20 }, SPOTS, 1, 1.6 },
	{ { 232, 216, 182 }, { 90, 66, 50 }, POINTS, 1, 1.5 },
	{ { 32, 30, 32 }, { 60, 58, 60 }, SOLID, 1, 1.5 },
	{ { 190, 130, 70 }, { 242, 236, 226 }, UNDERSIDE, 0, 1.4 },
	{ { 130, 136, 148 }, { 110, 116, 128 }, SOLID, 1, 1.3 },
	{ { 212, 172, 122 }, { 236, 220, 196 }, SOLID, 1, 1.2 },
	{ { 182, 182, 172 }, { 70, 70, 62 }, SPOTS, 1, 1.6 },
	{ { 190, 120, 52 }, { 150, 90, 40 }, FLUFFY, 0, 1.5 },
	{ { 238, 236, 230 }, { 60, 50, 40 }, SPOTS, 0, 1.7 },
	{ { 100, 60, 40 }, { 225, 220, 212 }, BLOTCH, 0, 1.7 },
	{ { 242, 242, 236 }, { 226, 222, 210 }, FLUFFY, 0, 1.5 },
	{ { 222, 202, 172 }, { 190, 170, 140 }, FLUFFY, 0, 1.3 },
	{ { 240, 238, 234 }, { 30, 28, 28 }, BLOTCH, 0, 1.2 },
	{ { 150, 150, 140 }, { 40, 40, 40 }, FLUFFY, 1, 1.3 },
	{ { 182, 132, 72 }, { 50, 40, 30 }, FLUFFY, 0, 1.6 },
	{ { 140, 100, 60 }, { 60, 40, 25 }, STRIPES, 1, 1.6 },
	{ { 40, 30, 25 }, { 170, 100, 50 }, SADDLE, 1, 1.4 },
	{ { 35, 33, 35 }, { 60, 55, 55 }, FLUFFY, 0, 1.6 },
	{ { 236, 230, 220 }, { 215, 205, 190 }, FLUFFY, 1, 1.2 },
	{ { 222, 142, 62 }, { 240, 190, 120 }, FLUFFY, 1, 1.1 },
	{ { 202, 172, 122 }, { 40, 35, 30 }, WRINKLE, 0, 1.3 },
	{ { 228, 220, 206 }, { 120, 110, 105 }, POINTS, 1, 1.5 },
	{ { 120, 130, 146 }, { 100, 110, 126 }, SOLID, 1, 1.5 },
	{ { 240, 236, 226 }, { 160, 80, 40 }, BLOTCH, 0, 1.6 },
	{ { 238, 236, 230 }, { 214, 206, 188 }, FLUFFY, 1, 1.5 },  /* samoyed: white, fluffy */
	{ { 42, 40, 40 }, { 70, 68, 66 }, FLUFFY, 1, 1.5 },
	{ { 206, 120, 54 }, { 242, 228, 196 }, UNDERSIDE, 1, 1.5 }, /* shiba_inu: orange, cream */
	{ { 228, 212, 182 }, { 70, 50, 40 }, POINTS, 1, 1.5 },
	{ { 222, 172, 160 }, { 190, 140, 130 }, WRINKLE, 1, 1.5 },
	{ { 120, 80, 50 }, { 60, 40, 25 }, STRIPES, 0, 1.4 },
	{ { 222, 202, 152 }, { 200, 180, 130 }, FLUFFY, 0, 1.4 },
	{ { 180, 140, 80 }, { 70, 75, 90 }, SADDLE, 1, 1.3 },
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

/* ---- rendering ---- */

static double clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static double unif(rng *r, double lo, double hi)
{
	return lo + (hi - lo) * rng_uniform(r);
}

/* An ellipse in its own frame: centre, semi-axes, rotation. */
struct ell {
	double cx, cy, a, b, c, s;
};

/* Local coordinates normalised by the semi-axes; returns the normalised radius. */
static double ell_at(const struct ell *e, double x, double y, double *u, double *v)
{
	double dx = x - e->cx, dy = y - e->cy;

	*u = (dx * e->c + dy * e->s) / e->a;
	*v = (-dx * e->s + dy * e->c) / e->b;
	return sqrt(*u * *u + *v * *v);
}

struct animal {
	const struct look *lk;
	struct ell body, head, ears[2], tail;
	int ring;                    /* tail curled into a ring over the back (spitz dogs) */
	double ring_in;              /* inner radius of the ring, normalised */
	double dir;                  /* +1 head to the right, -1 to the left */
	double base[3], second[3];   /* jittered coat colours */
	double fluff[3], fph[3];     /* outline wobble for fluffy coats */
	double stripes, sph;         /* stripe frequency and phase */
	double spots[12][3];         /* normalised body coords and radius */
	double fur[4];               /* fur texture frequencies */
};

struct clutter {
	int kind;                    /* 0 rectangle, 1 disc */
	double x0, y0, x1, y1;
	double col[3];
};

static void jitter_colour(rng *r, const uint8_t in[3], double bright, double out[3])
{
	for (int k = 0; k < 3; k++)
		out[k] = clampd(in[k] * bright * unif(r, 0.92, 1.08), 0, 255);
}

/* Cats: a long thin tail rising from the rump. Spitz dogs (pointed ears): a tail curled
 * into a ring over the back. Other dogs: a short tail. */
static void make_tail(struct animal *an, int b, rng *r)
{
	const struct ell *bo = &an->body;
	struct ell *t = &an->tail;
	double rx = bo->cx - an->dir * bo->a * 0.9 * bo->c, ry = bo->cy - an->dir * bo->a * 0.9 * bo->s;
	double tilt;

	if (breeds[b].species == 1) {
		t->a = bo->b * unif(r, 0.11, 0.15);
		t->b = bo->b * unif(r, 0.8, 1.0);
		tilt = -an->dir * unif(r, 0.3, 0.7);
		t->cx = rx - an->dir * t->b * 0.45;
		t->cy = ry - bo->b * 0.2 - t->b * 0.55;
	} else if (an->lk->pointed) {
		an->ring = 1;
		an->ring_in = unif(r, 0.45, 0.55);
		t->a = t->b = bo->b * unif(r, 0.42, 0.5);
		tilt = 0;
		t->cx = rx + an->dir * bo->b * 0.15;
		t->cy = ry - bo->b * 0.75;
	} else {
		t->a = bo->b * 0.12;
		t->b = bo->b * unif(r, 0.4, 0.55);
		tilt = -an->dir * unif(r, 0.7, 1.1);
		t->cx = rx - an->dir * t->b * 0.5;
		t->cy = ry - bo->b * 0.35;
	}
	t->c = cos(tilt);
	t->s = sin(tilt);
}

static void make_animal(struct animal *an, int b, rng *r, int w, int h)
{
	double m = w < h ? w : h, bright = unif(r, 0.8, 1.12);
	double sb = m * unif(r, 0.2, 0.3), ang = unif(r, -0.45, 0.45);
	struct ell *bo = &an->body, *he = &an->head;

	memset(an, 0, sizeof *an);
	an->lk = &looks[b];
	an->dir = rng_below(r, 2) ? 1 : -1;
	jitter_colour(r, an->lk->base, bright, an->base);
	jitter_colour(r, an->lk->second, bright, an->second);
	bo->b = sb;
	bo->a = sb * an->lk->aspect * unif(r, 0.9, 1.1);
	bo->c = cos(ang);
	bo->s = sin(ang);
	/* Keep the animal mostly in frame, anywhere. */
	bo->cx = unif(r, bo->a * 0.8, w - bo->a * 0.8);
	bo->cy = unif(r, h * 0.3, h * 0.78);
	he->a = he->b = sb * unif(r, 0.62, 0.78);
	he->c = 1;
	he->s = 0;
	he->cx = bo->cx + an->dir * bo->a * 0.95 * bo->c + bo->b * 0.5 * bo->s;
	he->cy = bo->cy + an->dir * bo->a * 0.95 * bo->s - bo->b * 0.5 * bo->c;
	for (int e = 0; e < 2; e++) {
		struct ell *ea = &an->ears[e];
		double side = e ? 1 : -1, t;

		if (an->lk->pointed) {
			/* A tall thin ellipse standing on the head, tilted outwards. */
			ea->a = he->a * 0.28;
			ea->b = he->a * 0.55;
			ea->cx = he->cx + side * he->a * 0.55;
			ea->cy = he->cy - he->a * 0.95;
			t = side * 0.35;
		} else {
			/* A floppy ear hanging beside the head. */
			ea->a = he->a * 0.32;
			ea->b = he->a * 0.75;
			ea->cx = he->cx + side * he->a * 0.9;
			ea->cy = he->cy + he->a * 0.2;
			t = -side * 0.25;
		}
		ea->c = cos(t);
		ea->s = sin(t);
	}
	make_tail(an, b, r);
	for (int k = 0; k < 3; k++) {
		an->fluff[k] = 0.05 * unif(r, 0.7, 1.3);
		an->fph[k] = unif(r, 0, 2 * PI);
	}
	an->stripes = unif(r, 3.5, 5.0);
	an->sph = unif(r, 0, 2 * PI);
	for (int i = 0; i < 12; i++) {
		an->spots[i][0] = unif(r, -0.85, 0.85);
		an->spots[i][1] = unif(r, -0.8, 0.8);
		an->spots[i][2] = unif(r, 0.1, 0.2);
	}
	for (int i = 0; i < 4; i++)
		an->fur[i] = unif(r, 0.6, 1.4);
}

/* Fluffy outlines wobble by at most 3 * 0.065 of the radius, so only a band around
 * q = 1 needs the (costly) angle. Returns the wobbled normalised radius. */
static double fluff_q(const struct animal *an, double q, double u, double v, const int f[3])
{
	double th;

	if (an->lk->coat != FLUFFY || q < 0.8 || q > 1.25)
		return q;
	th = atan2(v, u);
	return q * (1 - an->fluff[0] * sin(f[0] * th + an->fph[0]) -
		    an->fluff[1] * sin(f[1] * th + an->fph[1]) -
		    an->fluff[2] * sin(f[2] * th + an->fph[2]));
}

/* Where (x, y) falls: 0 outside, 1 body, 2 head, 3 ear, 4 tail; u, v normalised part coords. */
static int animal_part(const struct animal *an, double x, double y, double *u, double *v)
{
	static const int head_f[3] = { 9, 14, 23 }, body_f[3] = { 13, 21, 31 };
	double q;

	for (int e = 0; e < 2; e++)
		if (ell_at(&an->ears[e], x, y, u, v) <= 1)
			return 3;
	q = ell_at(&an->head, x, y, u, v);
	if (fluff_q(an, q, *u, *v, head_f) <= 1)
		return 2;
	q = ell_at(&an->body, x, y, u, v);
	if (fluff_q(an, q, *u, *v, body_f) <= 1)
		return 1;
	q = ell_at(&an->tail, x, y, u, v);
	return q <= 1 && (!an->ring || q >= an->ring_in) ? 4 : 0;
}

static void mix(const double a[3], const double b[3], double t, double out[3])
{
	for (int k = 0; k < 3; k++)
		out[k] = a[k] + (b[k] - a[k]) * t;
}

/* The coat colour at a point of a part, before lighting and noise. */
static void coat_colour(const struct animal *an, int part, double u, double v, double x, double y,
			double col[3])
{
	const struct look *lk = an->lk;
	double t;

	memcpy(col, an->base, sizeof an->base);
	switch (lk->coat) {
	case STRIPES:
		t = sin(2 * PI * an->stripes * (part == 1 ? u : u * 0.5 + v) / 2 + an->sph);
		if (t > 0.25)
			mix(an->base, an->second, clampd((t - 0.25) * 2.5, 0, 0.85), col);
		break;
	case SPOTS:
		if (part == 1)
			for (int i = 0; i < 12; i++) {
				double du = u - an->spots[i][0], dv = v - an->spots[i][1];
				if (du * du + dv * dv < an->spots[i][2] * an->spots[i][2])
					memcpy(col, an->second, sizeof an->second);
			}
		break;
	case UNDERSIDE:
		/* Pale belly, muzzle and cheeks, inner ears. */
		if ((part == 1 && v > 0.3) || (part == 2 && v > 0.05) || (part == 3 && fabs(u) < 0.45))
			memcpy(col, an->second, sizeof an->second);
		break;
	case BLOTCH:
		if (part != 3 && sin(u * 3.1 + an->sph) * sin(v * 2.7 + an->sph * 0.7) > 0.25)
			memcpy(col, an->second, sizeof an->second);
		if (part == 3)
			memcpy(col, an->second, sizeof an->second);
		break;
	case POINTS:
		if (part == 3 || (part == 2 && v > -0.2) || (part == 1 && u * an->dir < -0.7))
			memcpy(col, an->second, sizeof an->second);
		break;
	case SADDLE:
		if (part == 1 && v < -0.1)
			memcpy(col, an->second, sizeof an->second);
		break;
	case WRINKLE:
		t = sin(v * 14 + u * 3);
		if (t > 0.6)
			mix(an->base, an->second, 0.6, col);
		if (part == 2 && v > 0.2)
			memcpy(col, an->second, sizeof an->second);
		break;
	case FLUFFY:
		/* Fine wavy fur: strong texture at a few pixels' scale. */
		t = sin(an->fur[0] * x + 1.8 * sin(an->fur[1] * 0.3 * y)) *
		    sin(an->fur[2] * y + an->fur[3] * 0.5 * x);
		mix(an->base, an->second, 0.5 + 0.5 * t, col);
		break;
	case SOLID:
		break;
	}
}

static void make_clutter(rng *r, int w, int h, struct clutter *c, int n)
{
	for (int i = 0; i < n; i++) {
		double cx = unif(r, 0, w), cy = unif(r, 0, h), rx = unif(r, 0.04, 0.25) * w,
		       ry = unif(r, 0.04, 0.25) * h;

		c[i].kind = (int)rng_below(r, 2);
		c[i].x0 = cx - rx;
		c[i].x1 = cx + rx;
		c[i].y0 = cy - ry;
		c[i].y1 = cy + ry;
		for (int k = 0; k < 3; k++)
			c[i].col[k] = unif(r, 20, 250);
	}
}

static void background(const struct clutter *c, int nc, const double bg[2][3], int h, int x,
		       int y, double col[3])
{
	mix(bg[0], bg[1], (double)y / h, col);
	for (int i = 0; i < nc; i++) {
		const struct clutter *k = &c[i];
		int in;

		if (k->kind == 0) {
			in = x >= k->x0 && x <= k->x1 && y >= k->y0 && y <= k->y1;
		} else {
			double dx = (x - (k->x0 + k->x1) / 2) / ((k->x1 - k->x0) / 2),
			       dy = (y - (k->y0 + k->y1) / 2) / ((k->y1 - k->y0) / 2);
			in = dx * dx + dy * dy <= 1;
		}
		if (in)
			memcpy(col, k->col, 3 * sizeof *col);
	}
}

static void mark_border(uint8_t *tri, int w, int h)
{
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			uint8_t me = tri[(size_t)y * w + x] & 0x7F;
			int edge = 0;

			for (int dy = -2; dy <= 2 && !edge; dy++)
				for (int dx = -2; dx <= 2 && !edge; dx++) {
					int yy = y + dy, xx = x + dx;
					if (yy >= 0 && yy < h && xx >= 0 && xx < w &&
					    (tri[(size_t)yy * w + xx] & 0x7F) != me)
						edge = 1;
				}
			if (edge)
				tri[(size_t)y * w + x] |= 0x80;
		}
	for (size_t i = 0; i < (size_t)w * h; i++)
		tri[i] = tri[i] & 0x80 ? 3 : tri[i];
}

void synth_render(int b, rng *r, int w, int h, uint8_t *pix, uint8_t *trimap, int box[4])
{
	struct animal an;
	struct clutter cl[10];
	double bg[2][3], light = unif(r, 0.85, 1.1), noise = unif(r, 4, 14);
	int nc = 2 + (int)rng_below(r, 8);

	for (int k = 0; k < 3; k++) {
		bg[0][k] = unif(r, 30, 230);
		bg[1][k] = clampd(bg[0][k] + unif(r, -60, 60), 0, 255);
	}
	make_clutter(r, w, h, cl, nc);
	make_animal(&an, b, r, w, h);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			double col[3], u, v;
			int part = animal_part(&an, x + 0.5, y + 0.5, &u, &v);
			uint64_t bits = rng_u64(r);
			uint8_t *px = pix + ((size_t)y * w + x) * 3;

			if (part) {
				coat_colour(&an, part, u, v, x, y, col);
				/* Light from above: the underside is a little darker. */
				for (int k = 0; k < 3; k++)
					col[k] *= 1.05 - 0.12 * clampd(v, -1, 1);
				if (part == 2) {
					/* Eyes: two dark dots on the head, towards the facing side. */
					double ex = u - an.dir * 0.35, ey = v + 0.15;
					if ((ex - 0.22) * (ex - 0.22) + ey * ey < 0.012 ||
					    (ex + 0.22) * (ex + 0.22) + ey * ey < 0.012)
						col[0] = col[1] = col[2] = 20;
				}
			} else {
				background(cl, nc, (const double(*)[3])bg, h, x, y, col);
			}
			if (trimap)
				trimap[(size_t)y * w + x] = part ? 1 : 2;
			for (int k = 0; k < 3; k++) {
				/* Triangular noise from two random bytes per channel. */
				double n = ((double)(bits & 0xFF) + (double)((bits >> 8) & 0xFF) - 255) / 255 * noise;
				bits >>= 16;
				px[k] = (uint8_t)lrint(clampd(col[k] * light + n, 0, 255));
			}
		}
	if (trimap)
		mark_border(trimap, w, h);
	if (box) {
		/* The head box, as the real xmls give, clipped to the picture. */
		box[0] = (int)clampd(floor(an.head.cx - an.head.a), 0, w - 1);
		box[1] = (int)clampd(floor(an.head.cy - an.head.b), 0, h - 1);
		box[2] = (int)clampd(ceil(an.head.cx + an.head.a), 0, w - 1);
		box[3] = (int)clampd(ceil(an.head.cy + an.head.b), 0, h - 1);
	}
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

/* ---- text building ---- */

typedef struct {
	char *p;
	size_t n, cap;
	int oom;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *s, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (s->oom)
		return;
	va_start(ap, fmt);
	k = vsnprintf(s->p ? s->p + s->n : NULL, s->p ? s->cap - s->n : 0, fmt, ap);
	va_end(ap);
	if (k < 0) {
		s->oom = 1;
		return;
	}
	if (!s->p || s->n + (size_t)k >= s->cap) {
		size_t cap = (s->cap ? s->cap : 1024);
		char *q;

		while (cap <= s->n + (size_t)k)
			cap *= 2;
		q = realloc(s->p, cap);
		if (!q) {
			s->oom = 1;
			return;
		}
		s->p = q;
		s->cap = cap;
		va_start(ap, fmt);
		vsnprintf(s->p + s->n, s->cap - s->n, fmt, ap);
		va_end(ap);
	}
	s->n += (size_t)k;
}

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
static int write_list(sbuf *s, const struct plan *p, int which, char *err)
{
	const struct item **rows = malloc((size_t)p->n * sizeof *rows);
	char line[128];
	int n = 0;

	if (!rows)
		return err_set(err, "synth: out of memory");
	if (which == 0)
		sb_printf(s, "%s", list_header);
	for (int i = 0; i < p->n; i++) {
		const struct item *it = &p->it[i];

		if (it->listed && (which == 0 || (which == 1) == it->trainval))
			rows[n++] = it;
	}
	qsort(rows, (size_t)n, sizeof *rows, line_cmp);
	for (int i = 0; i < n; i++) {
		item_line(rows[i], line, sizeof line);
		sb_printf(s, "%s\n", line);
	}
	free(rows);
	return 0;
}

static void write_readme(sbuf *s, const struct plan *p, const synth_opts *o)
{
	char name[80];

	sb_printf(s,
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
		sb_printf(s, "%s\t", quirk_name[q]);
		for (int i = 0, first = 1; i < p->n; i++)
			if (p->it[i].q == (enum quirk)q) {
				item_name(&p->it[i], name, sizeof name);
				sb_printf(s, "%simages/%s.jpg", first ? "" : " ", name);
				first = 0;
			}
		sb_printf(s, "\n");
	}
	sb_printf(s, "unlisted\t");
	for (int i = 0, first = 1; i < p->n; i++)
		if (!p->it[i].listed) {
			item_name(&p->it[i], name, sizeof name);
			sb_printf(s, "%simages/%s.jpg", first ? "" : " ", name);
			first = 0;
		}
	sb_printf(s, "\nmat\timages/%s_100.mat\nappledouble\t", breeds[p->mat_breed].name);
	for (int i = 0, first = 1; i < p->n; i++)
		if (p->it[i].appledouble) {
			item_name(&p->it[i], name, sizeof name);
			sb_printf(s, "%simages/._%s.jpg annotations/trimaps/._%s.png", first ? "" : " ", name, name);
			first = 0;
		}
	sb_printf(s, "\n");
}

static void write_xml(sbuf *s, const struct item *it, int depth, const int box[4])
{
	char name[80];

	item_name(it, name, sizeof name);
	sb_printf(s,
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

/* ---- tar through libarchive, into an outfile ---- */

/* Fixed metadata so the same seed gives the same bytes: 2012-06-06, the set's release. */
enum { TAR_MTIME = 1338984000 };

struct tarw {
	outfile of;
	struct archive *a;
	const char *path;
	int open;
};

static int tar_open(struct tarw *t, const char *path, int gzip, char *err)
{
	memset(t, 0, sizeof *t);
	t->path = path;
	if (outfile_open(&t->of, path, err))
		return -1;
	t->a = archive_write_new();
	if (!t->a) {
		outfile_abort(&t->of);
		return err_set(err, "%s: out of memory", path);
	}
	if (archive_write_set_format_pax_restricted(t->a) != ARCHIVE_OK ||
	    (gzip && (archive_write_add_filter_gzip(t->a) != ARCHIVE_OK ||
		      archive_write_set_options(t->a, "gzip:!timestamp") != ARCHIVE_OK ||
		      /* no zero padding after the gzip stream, as gzip(1) writes it */
		      archive_write_set_bytes_in_last_block(t->a, 1) != ARCHIVE_OK)) ||
	    archive_write_open_FILE(t->a, t->of.fp) != ARCHIVE_OK) {
		err_set(err, "%s: %s", path, archive_error_string(t->a));
		archive_write_free(t->a);
		outfile_abort(&t->of);
		return -1;
	}
	t->open = 1;
	return 0;
}

/* A name ending in '/' is a directory. */
static int tar_add(struct tarw *t, const char *name, const void *p, size_t n, char *err)
{
	struct archive_entry *e = archive_entry_new();
	int dir = name[strlen(name) - 1] == '/';
	const unsigned char *q = p;

	if (!e)
		return err_set(err, "%s: out of memory", t->path);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(e, dir ? 0755 : 0644);
	archive_entry_set_size(e, dir ? 0 : (la_int64_t)n);
	archive_entry_set_mtime(e, TAR_MTIME, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
	if (archive_write_header(t->a, e) != ARCHIVE_OK) {
		archive_entry_free(e);
		return err_set(err, "%s: %s: %s", t->path, name, archive_error_string(t->a));
	}
	archive_entry_free(e);
	while (!dir && n > 0) {
		la_ssize_t k = archive_write_data(t->a, q, n);

		if (k <= 0)
			return err_set(err, "%s: %s: %s", t->path, name, archive_error_string(t->a));
		q += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Finishes the archive; the outfile stays pending until commit or abort. */
static int tar_finish(struct tarw *t, char *err)
{
	int rc = archive_write_close(t->a);

	if (rc != ARCHIVE_OK)
		err_set(err, "%s: %s", t->path, archive_error_string(t->a));
	archive_write_free(t->a);
	t->a = NULL;
	return rc == ARCHIVE_OK ? 0 : -1;
}

static void tar_abort(struct tarw *t)
{
	if (!t->open)
		return;
	if (t->a)
		archive_write_free(t->a);
	t->a = NULL;
	outfile_abort(&t->of);
	t->open = 0;
}

/* ---- one image: render, encode as its quirk says ---- */

struct scratch {
	uint8_t *rgb, *tri, *alt;   /* h*w*3, h*w, h*w*4 */
	size_t cap;                 /* pixels */
};

static int scratch_fit(struct scratch *s, int w, int h, char *err)
{
	size_t px = (size_t)w * (size_t)h;

	if (px <= s->cap)
		return 0;
	free(s->rgb);
	free(s->tri);
	free(s->alt);
	s->rgb = malloc(px * 3);
	s->tri = malloc(px);
	s->alt = malloc(px * 4);
	s->cap = px;
	if (!s->rgb || !s->tri || !s->alt) {
		s->cap = 0;
		return err_set(err, "synth: out of memory for a %dx%d image", w, h);
	}
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
	struct tarw img, ann;
	struct scratch s;
	sbuf text;
	char *img_path, *ann_path, *sum_path;
};

static int add_text(struct tarw *t, const char *name, sbuf *s, char *err)
{
	if (s->oom)
		return err_set(err, "synth: out of memory");
	if (tar_add(t, name, s->p ? s->p : "", s->n, err))
		return -1;
	s->n = 0;
	return 0;
}

static int write_annotation_texts(struct job *j, char *err)
{
	static const char *const lists[3] = { "annotations/list.txt", "annotations/trainval.txt",
					      "annotations/test.txt" };

	if (tar_add(&j->ann, "annotations/", NULL, 0, err))
		return -1;
	write_readme(&j->text, &j->plan, j->o);
	if (add_text(&j->ann, "annotations/README", &j->text, err))
		return -1;
	for (int k = 0; k < 3; k++) {
		if (write_list(&j->text, &j->plan, k, err) || add_text(&j->ann, lists[k], &j->text, err))
			return -1;
	}
	if (tar_add(&j->ann, "annotations/trimaps/", NULL, 0, err) ||
	    tar_add(&j->ann, "annotations/xmls/", NULL, 0, err))
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
	synth_render(it->breed, &r, it->w, it->h, j->s.rgb, j->s.tri, box);
	item_name(it, name, sizeof name);
	if (it->appledouble) {
		snprintf(path, sizeof path, "images/._%s.jpg", name);
		if (tar_add(&j->img, path, ad, adlen, err))
			return -1;
	}
	if (encode_item(it, &j->s, &buf, &len, err))
		return -1;
	snprintf(path, sizeof path, "images/%s.jpg", name);
	if (tar_add(&j->img, path, buf, len, err))
		goto done;
	free(buf);
	buf = NULL;
	if (it->appledouble) {
		snprintf(path, sizeof path, "annotations/trimaps/._%s.png", name);
		if (tar_add(&j->ann, path, ad, adlen, err))
			goto done;
	}
	if (imgenc_png(j->s.tri, it->w, it->h, 1, &buf, &len, err))
		goto done;
	snprintf(path, sizeof path, "annotations/trimaps/%s.png", name);
	if (tar_add(&j->ann, path, buf, len, err))
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
	return tar_add(&j->img, path, mat, n, err);
}

static int write_archives(struct job *j, char *err)
{
	int prev = -1;

	if (tar_open(&j->img, j->img_path, j->o->gzip, err) ||
	    tar_open(&j->ann, j->ann_path, j->o->gzip, err))
		return -1;
	if (tar_add(&j->img, "images/", NULL, 0, err) || write_annotation_texts(j, err))
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
	if (tar_finish(&j->img, err) || tar_finish(&j->ann, err))
		return -1;
	/* Both complete: only now do they replace anything. */
	if (outfile_commit(&j->img.of, err)) {
		j->img.open = 0;
		return -1;
	}
	j->img.open = 0;
	if (outfile_commit(&j->ann.of, err)) {
		j->ann.open = 0;
		return -1;
	}
	j->ann.open = 0;
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
		tar_abort(&j.img);
		tar_abort(&j.ann);
		goto done;
	}
	rc = write_sums(&j, err);
done:
	free(j.plan.it);
	free(j.s.rgb);
	free(j.s.tri);
	free(j.s.alt);
	free(j.text.p);
	free(j.img_path);
	free(j.ann_path);
	free(j.sum_path);
	return rc;
}
