/* convwino_tf: Winograd's tile transforms on one vector width, a template that convwino.c
 * includes once per width (16 floats for AVX-512, 8 for AVX2), each name carrying it. */
/* No include guard: meant to be included more than once. Define first WTF_V and WTF_I
 * (GCC vectors of WTF_N floats and ints) and WTF(name) (name and width). */

/* The activation as the direct kernels' max_ps and min_ps give it: ReLU is max(a, 0) (a NaN
 * becomes +0, as does -0), ReLU6 then min(a, 6), by compares into masks. (When AVX2 ran
 * 16-float vectors, which it cannot compare at once, GCC made each compare 16 scalar ones
 * and the results came from the floats' bits instead; on its 8-float vectors the compares
 * are single instructions, as fast as the bits were: conv_bench nets 1, AVX2.) */
INLINE void WTF(activate)(WTF_V *a, int relu)
{
	WTF_V zero = { 0 }, six = zero + 6.0f;

	if (relu)
		*a = (WTF_V)((WTF_I)*a & (*a > zero));
	if (relu == 2)
		*a = (WTF_V)(((WTF_I)*a & ~(*a > six)) | ((WTF_I)six & (*a > six)));
}

/* a where y > 0, and y < 6 for a ReLU6 (act 2), else +0 (the activation's backward, y its
 * output), as vec_relu_backward and vec_relu6_backward give it. */
INLINE void WTF(mask_by)(WTF_V *a, const float *yp, int act)
{
	WTF_V y, zero = { 0 }, six = zero + 6.0f;
	WTF_I pass;

	memcpy(&y, yp, sizeof y);
	pass = y > zero;
	if (act == 2)
		pass &= y < six;
	*a = (WTF_V)((WTF_I)*a & pass);
}

/* B^T x for one column (or row) of 6: B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
 * 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]. */
INLINE void WTF(bt6)(WTF_V y[6], const WTF_V x[6])
{
	WTF_V a = x[4] - 4.0f * x[2], b = x[3] - 4.0f * x[1], c = x[4] - x[2], e = 2.0f * (x[3] - x[1]);

	y[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];
	y[1] = a + b;
	y[2] = a - b;
	y[3] = c + e;
	y[4] = c - e;
	y[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];
}

/* v's rows for one tile and WTF_N channels from its 6x6 inputs d (d[i][k] at p + i * rs +
 * k * cs): B^T d B. Each column is loaded as its transform takes it: loading all 36 first
 * spilled them (36 vectors against AVX-512's 32 registers or AVX2's 16). */
INLINE void WTF(input_tf)(float *o, long s, const float *p, long rs, long cs)
{
	WTF_V r[6][6];

#pragma GCC unroll 6
	for (int k = 0; k < 6; k++) {
		WTF_V col[6], y[6];

#pragma GCC unroll 6
		for (int i = 0; i < 6; i++)
			memcpy(&col[i], p + i * rs + k * cs, sizeof col[i]);
		WTF(bt6)(y, col);
#pragma GCC unroll 6
		for (int i = 0; i < 6; i++)
			r[i][k] = y[i];
	}
#pragma GCC unroll 6
	for (int i = 0; i < 6; i++) {
		WTF_V x[6];

		WTF(bt6)(x, r[i]);
#pragma GCC unroll 6
		for (int k = 0; k < 6; k++)
			memcpy(o + (6 * i + k) * s, &x[k], sizeof x[k]);
	}
}

/* A tile's v = B^T d B, d its 6x6 inputs from (y0, x0) of img (zero outside it): C
 * floats per position at o, positions s floats apart. A tile inside the image (nearly
 * all) loads its 36 inputs at fixed offsets, unrolled: the general loop's per-input
 * bounds and index arithmetic cost 3x the sums. */
INLINE void WTF(input_tile)(const geom *g, float *o, long s, const float *img, int y0, int x0)
{
	int C = g->c;
	long rs = (long)g->w * C;

	if (y0 >= 0 && x0 >= 0 && y0 + 6 <= g->h && x0 + 6 <= g->w) {
		const float *p = img + (long)y0 * rs + (long)x0 * C;

		for (int c = 0; c < C; c += WTF_N)
			WTF(input_tf)(o + c, s, p + c, rs, C);
		return;
	}
	for (int c = 0; c < C; c += WTF_N) {
		WTF_V d[6][6], zero = { 0 };

		for (int i = 0; i < 6; i++)
			for (int k = 0; k < 6; k++) {
				int y = y0 + i, x = x0 + k;

				if (y >= 0 && y < g->h && x >= 0 && x < g->w)
					memcpy(&d[i][k], img + (long)y * rs + (long)x * C + c, sizeof d[i][k]);
				else
					d[i][k] = zero;
			}
		WTF(input_tf)(o + c, s, (const float *)d, 6 * WTF_N, WTF_N);
	}
}

/* A^T x for one column (or row) of 6: A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0;
 * 0 1 -1 8 -8 1]. */
INLINE void WTF(at6)(WTF_V y[4], const WTF_V x[6])
{
	WTF_V a = x[1] + x[2], b = x[1] - x[2], c = x[3] + x[4], e = x[3] - x[4];

	y[0] = x[0] + a + c;
	y[1] = b + 2.0f * e;
	y[2] = a + 4.0f * c;
	y[3] = b + 8.0f * e + x[5];
}

/* out's 4x4 pixels of tile t (of the block) = A^T m A + b, then the activation, then the
 * mask of keep (the output of activation kact); pixels past the output's edge are dropped. */
INLINE void WTF(output_tile)(const geom *g, const float *m, int nb, int t, float *img, const float *keep,
			int kact, int y0, int x0, const float *b, int relu)
{
	int O = g->oc, ny = g->oh - y0 < 4 ? g->oh - y0 : 4, nx = g->ow - x0 < 4 ? g->ow - x0 : 4;
	long s = plane(nb, O), rs = (long)g->ow * O, at = (long)y0 * rs + (long)x0 * O;
	float *q = img + at;

	for (int o = 0; o < O; o += WTF_N) {
		WTF_V r[4][6], bias = { 0 };
		const float *p = m + (long)t * O + o;

		if (b)
			memcpy(&bias, b + o, sizeof bias);
#pragma GCC unroll 6
		for (int k = 0; k < 6; k++) {
			WTF_V col[6], y[4];

#pragma GCC unroll 6
			for (int i = 0; i < 6; i++)
				memcpy(&col[i], p + (6 * i + k) * s, sizeof col[i]);
			WTF(at6)(y, col);
#pragma GCC unroll 4
			for (int i = 0; i < 4; i++)
				r[i][k] = y[i];
		}
#pragma GCC unroll 4
		for (int i = 0; i < 4; i++) {
			WTF_V y[4];

			WTF(at6)(y, r[i]);
#pragma GCC unroll 4
			for (int k = 0; k < 4; k++) {
				WTF_V a = y[k] + bias;

				if (i >= ny || k >= nx)
					continue;
				WTF(activate)(&a, relu);
				if (keep)
					WTF(mask_by)(&a, keep + at + i * rs + k * O + o, kact);
				memcpy(q + i * rs + k * O + o, &a, sizeof a);
			}
		}
	}
}

/* A x for one column (or row) of 4 to 6: A = A^T's transpose, rows (1 0 0 0), (1 1 1 1),
 * (1 -1 1 -1), (1 2 4 8), (1 -2 4 -8), (0 0 0 1). */
INLINE void WTF(a6)(WTF_V y[6], const WTF_V x[4])
{
	WTF_V a = x[0] + x[2], b = x[1] + x[3], c = x[0] + 4.0f * x[2], e = 2.0f * x[1] + 8.0f * x[3];

	y[0] = x[0];
	y[1] = a + b;
	y[2] = a - b;
	y[3] = c + e;
	y[4] = c - e;
	y[5] = x[3];
}

/* A tile's y = A y A^T of the 4x4 output gradients from (y0, x0) of one image's dout
 * (those past its edge zero), WTF_N channels at a time: O floats per position at o,
 * positions s floats apart. */
INLINE void WTF(dout_tile)(const geom *g, float *o, long s, const float *img, int y0, int x0)
{
	int O = g->oc, ny = g->oh - y0 < 4 ? g->oh - y0 : 4, nx = g->ow - x0 < 4 ? g->ow - x0 : 4;
	long rs = (long)g->ow * O;
	const float *p = img + (long)y0 * rs + (long)x0 * O;

	for (int c = 0; c < O; c += WTF_N) {
		WTF_V r[6][4], zero = { 0 };

#pragma GCC unroll 4
		for (int k = 0; k < 4; k++) {
			WTF_V col[4], z[6];

#pragma GCC unroll 4
			for (int i = 0; i < 4; i++) {
				col[i] = zero;
				if (i < ny && k < nx)
					memcpy(&col[i], p + i * rs + k * O + c, sizeof col[i]);
			}
			WTF(a6)(z, col);
#pragma GCC unroll 6
			for (int i = 0; i < 6; i++)
				r[i][k] = z[i];
		}
#pragma GCC unroll 6
		for (int i = 0; i < 6; i++) {
			WTF_V z[6];

			WTF(a6)(z, r[i]);
#pragma GCC unroll 6
			for (int k = 0; k < 6; k++)
				memcpy(o + (6 * i + k) * s + c, &z[k], sizeof z[k]);
		}
	}
}

