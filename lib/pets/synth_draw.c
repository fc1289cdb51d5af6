/* synth_draw: the pictures of the synthetic pet set. A cluttered, noisy background and an
 * animal (body, head, ears, eyes, tail) whose colours, coat pattern and outline are the breed's
 * signature, jittered per image in colour, lighting, position, scale and pose, so colour alone
 * does not decide the class. Every choice comes from the rng passed in. */
#include "pets/synth_draw.h"

#include "pets/synth.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

/* ---- each breed's look, in class-id order (the table in synth.c) ---- */
enum coat { SOLID, STRIPES, SPOTS, UNDERSIDE, BLOTCH, FLUFFY, POINTS, SADDLE, WRINKLE };

struct look {
	uint8_t base[3], second[3];
	enum coat coat;
	int pointed;    /* ears: 1 pointed, 0 floppy */
	double aspect;  /* body length / height */
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

	if (synth_breed_at(b)->species == 1) {
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

void synth_draw(int b, rng *r, int w, int h, uint8_t *pix, uint8_t *trimap, int box[4])
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
