/* conv2d: convolution as tiled im2col + sgemm (batch folded into the GEMM's M, tiles sized
 * to stay near cache), bias and ReLU fused into one pass over each tile; convdirect where it
 * fits, convdw for depthwise layers, one GEMM per group (on the shared tile) for grouped ones. */
#include "nn/conv2d.h"

#include <cblas.h>
#include <string.h>

#include "nn/blas.h"
#include "nn/convdirect.h"
#include "nn/convdw.h"
#include "nn/convwino.h"
#include "nn/elt.h"
#include "nn/vec.h"
#include "util/par.h"

/* Floats per im2col tile: large enough that sgemm sees a tall M, small enough that the
 * tile is still in L2/L3 when the GEMM reads it. */
#define CONV2D_TILE_FLOATS (1 << 20)

/* a geom written by hand may leave groups 0: one group */
static int groups(const geom *g)
{
	return g->groups > 1 ? g->groups : 1;
}

/* 1x1 stride-1 convolutions need no im2col: the input already is the [M, cin] matrix. */
static int is_pointwise(const geom *g)
{
	return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->oh == g->h &&
	       g->ow == g->w && g->pt == 0 && g->pl == 0 && groups(g) == 1;
}

/* im2col rows per tile; a group's columns (K = kh*kw*cin/groups) are what one tile holds */
static long tile_rows(const geom *g)
{
	long K = (long)g->kh * g->kw * (g->c / groups(g)), tm = CONV2D_TILE_FLOATS / K;

	return tm > 0 ? tm : 1;
}

/* For stride 1 and one group, the input gradient is itself a convolution: of dout, by the
 * kernel turned half a circle with cin and cout swapped, padded by kh-1-pt, kw-1-pl before
 * (negative, when pt > kh-1: rows of dout no input reaches are skipped) and kh-1-pb,
 * kw-1-pr after. This is its window. The kernels bound their reads by t's input (dout),
 * so the after-pads are implied by t's output size (the input's) and any pads work. */
static int transposed(const geom *g, geom *t)
{
	if (g->sh != 1 || g->sw != 1 || groups(g) > 1)
		return 0;
	*t = (geom){ .h = g->oh, .w = g->ow, .c = g->oc, .kh = g->kh, .kw = g->kw, .sh = 1, .sw = 1,
			.oh = g->h, .ow = g->w, .pt = g->kh - 1 - g->pt, .pl = g->kw - 1 - g->pl,
			.oc = g->c, .groups = 1 };
	t->pb = g->kh - 1 - g->pb > 0 ? g->kh - 1 - g->pb : 0;
	t->pr = g->kw - 1 - g->pr > 0 ? g->kw - 1 - g->pr : 0;
	return 1;
}

typedef struct {
	const geom *g;
	float *wt;
	const float *w;
	const int *tap;   /* wt's position q from w's position tap[q] (NULL: kh*kw-1-q) */
	int n;            /* positions */
} turn_job;

/* wt [j, i, co, ci] = w [kh-1-j, kw-1-i, ci, co]: the kernel of the transposed convolution.
 * Worker k turns its share of the (position, 16 output channels) strips by 16x16 blocks,
 * which stay in L1: row by row on one thread, reading a column of w per row of wt, a
 * 512x512 3x3 took 5 ms on a Zen 4, a trained layer's every step. */
static void turn_worker(void *ctx, int k, int n)
{
	const turn_job *t = ctx;
	const geom *g = t->g;
	int C = g->c, O = g->oc, strips = (O + 15) / 16;
	long lo, hi;

	par_share((long)t->n * strips, k, n, &lo, &hi);
	for (long q = lo; q < hi; q++) {
		int pos = (int)(q / strips), co0 = (int)(q % strips) * 16;
		long from = t->tap ? t->tap[pos] : g->kh * g->kw - 1 - pos;
		const float *s = t->w + from * C * O;
		float *d = t->wt + (long)pos * O * C;

		for (int ci0 = 0; ci0 < C; ci0 += 16)
			for (int co = co0; co < O && co < co0 + 16; co++)
				for (int ci = ci0; ci < C && ci < ci0 + 16; ci++)
					d[(long)co * C + ci] = s[(long)ci * O + co];
	}
}

static void turn_kernel(const geom *g, float *wt, const float *w, int threads)
{
	turn_job t = { g, wt, w, NULL, g->kh * g->kw };

	par_run(threads, turn_worker, &t);
}

/* wt's n positions [co, ci] from w's positions tap[0..n) [ci, co]: din's phases' kernels. */
static void turn_taps(const geom *g, float *wt, const float *w, const int *tap, int n,
		      int threads)
{
	turn_job t = { g, wt, w, tap, n };

	par_run(threads, turn_worker, &t);
}

/* A strided layer's din by phases: the input pixels (iy, ix) of one residue (ry, rx) modulo
 * the strides take their gradient from the taps ky = ky0 + sh*j (ky0 = (ry + pt) mod sh), and
 * from dout's row a + q - j for input row ry + sh*a, q = (ry + pt - ky0) / sh: per phase a
 * stride-1 convolution of dout by those taps, run on convdirect's kernels, then laid into
 * din's pixels of the phase. Where sgemm and col2im summed kh*kw products per pixel through
 * a scatter (ResNet-18's 3x3 s2 56 -> 28, Intel Xeon: din 7.6 ms of its 12.6 backward). */
typedef struct {
	int n;          /* input rows (columns) of the phase; 0: none */
	int k, k0;      /* its taps, the first */
	int pre, post;  /* its convolution's pads (before: -1 if it would be negative) */
	int out;        /* its convolution's rows (columns): n and any its pads make past n */
} phase_axis;

static phase_axis phase_along(int in, int out, int k, int s, int pad, int r)
{
	phase_axis a = { 0 };
	int q;

	if (r >= in)
		return a;
	a.n = (in - r + s - 1) / s;
	a.k0 = (r + pad) % s;
	a.k = a.k0 < k ? (k - a.k0 + s - 1) / s : 0;
	q = (r + pad - a.k0) / s;
	a.pre = a.k - 1 - q >= 0 ? a.k - 1 - q : -1;
	a.post = a.n - out + q > 0 ? a.n - out + q : 0;
	a.out = out - q + a.post;
	return a;
}

/* Phase (ry, rx)'s convolution over dout; 0 if it has no taps (its pixels' din is zero). */
static int phase_geom(const geom *g, int ry, int rx, geom *pg, phase_axis *y, phase_axis *x)
{
	*y = phase_along(g->h, g->oh, g->kh, g->sh, g->pt, ry);
	*x = phase_along(g->w, g->ow, g->kw, g->sw, g->pl, rx);
	*pg = (geom){ .h = g->oh, .w = g->ow, .c = g->oc, .kh = y->k, .kw = x->k, .sh = 1, .sw = 1,
		      .oh = y->out, .ow = x->out, .pt = y->pre, .pl = x->pre, .pb = y->post,
		      .pr = x->post, .oc = g->c, .groups = 1 };
	return y->n && x->n && y->k && x->k;
}

/* Floats of one image's largest phase output. */
static long phase_image_floats(const geom *g)
{
	long most = 0;

	for (int ry = 0; ry < g->sh; ry++)
		for (int rx = 0; rx < g->sw; rx++) {
			geom pg;
			phase_axis y, x;

			if (phase_geom(g, ry, rx, &pg, &y, &x) && (long)pg.oh * pg.ow * pg.oc > most)
				most = (long)pg.oh * pg.ow * pg.oc;
		}
	return most;
}

/* Images per chunk of the phases' outputs: about a megabyte, which L2 keeps until it is
 * laid into din. */
#define CONV2D_PHASE_FLOATS (1 << 18)
/* Taps at most of a layer whose din runs by phases (a 16x16 window). */
#define CONV2D_PHASE_TAPS 256

static int phase_images(const geom *g)
{
	long per = phase_image_floats(g);

	return per > 0 && per < CONV2D_PHASE_FLOATS ? (int)(CONV2D_PHASE_FLOATS / per) : 1;
}

static size_t round16(size_t n)
{
	return (n + 15) / 16 * 16;
}

/* The phases' scratch, in this order: their kernels (kh*kw*cin*cout floats in all, *kern
 * with its padding to a line), a chunk's outputs (*outs), then convdirect's workspace. */
static void phase_scratch(const geom *g, size_t *kern, size_t *outs)
{
	*kern = round16((size_t)g->kh * g->kw * g->c * g->oc);
	*outs = round16((size_t)phase_images(g) * phase_image_floats(g));
}

/* Whether din runs by phases on isa (every phase with taps on convdirect_forward), and the
 * scratch it takes (phase_scratch's, with convdirect's workspace for the largest phase). */
static int phases_fit(const geom *g, isa_kind isa, int threads, size_t *ws)
{
	size_t most = 0;

	if ((g->sh == 1 && g->sw == 1) || groups(g) > 1 || isa == ISA_GENERIC ||
	    g->kh * g->kw > CONV2D_PHASE_TAPS)
		return 0;
	for (int ry = 0; ry < g->sh; ry++)
		for (int rx = 0; rx < g->sw; rx++) {
			geom pg;
			phase_axis y, x;

			if (!phase_geom(g, ry, rx, &pg, &y, &x))
				continue;
			if (y.pre < 0 || x.pre < 0 || !convdirect_forward_fits(&pg, isa))
				return 0;
			if (convdirect_workspace(&pg, threads) > most)
				most = convdirect_workspace(&pg, threads);
		}
	if (ws) {
		size_t kern, outs;

		phase_scratch(g, &kern, &outs);
		*ws = kern + outs + most;
	}
	return 1;
}

size_t conv2d_workspace(const geom *g, int threads)
{
	size_t K = (size_t)g->kh * g->kw * (g->c / groups(g)), n;
	geom t;

	if (convdw_fits(g))
		return 1;   /* direct loops, no scratch (1: callers may allocate it) */

	/* forward and dw: convdirect's padded bands, or a tile of im2col and (backward) one of
	 * its gradient; room for either, so one buffer serves every path */
	n = 2 * (size_t)tile_rows(g) * K;
	if (convdirect_forward_fits(g, ISA_AVX512) && convdirect_workspace(g, threads) > n)
		n = convdirect_workspace(g, threads);
	if (convwino_shape(g)) {
		/* Winograd's forward, and its weight gradient */
		if (convwino_workspace(g, threads) > n)
			n = convwino_workspace(g, threads);
		if (convwino_wgrad_workspace(g) > n)
			n = convwino_wgrad_workspace(g);
	}
	for (int i = 0; i < 2; i++) {
		size_t np;

		/* either path's, which may take different kernels */
		if (phases_fit(g, i ? ISA_AVX512 : ISA_AVX2, threads, &np) && np > n)
			n = np;
	}
	if (transposed(g, &t)) {
		/* din: the turned kernel, and convdirect's bands or a tile of dout's im2col */
		size_t kt = (size_t)t.kh * t.kw * t.c, nd = (size_t)tile_rows(&t) * kt;
		size_t nt;

		if ((convdirect_fits(&t, ISA_AVX2) ||
		     (is_pointwise(g) && convdirect_forward_fits(&t, ISA_AVX512))) &&
		    convdirect_workspace(&t, threads) > nd)
			nd = convdirect_workspace(&t, threads);
		if (convwino_shape(&t) && convwino_workspace(&t, threads) > nd)
			nd = convwino_workspace(&t, threads);
		nt = kt * t.oc + nd;

		if (nt > n)
			n = nt;
	}
	return n;
}

/* Rows m0..m1 of the im2col matrix [B*oh*ow, kh*kw*cg] of input channels ci0..ci0+cg-1
 * (row: one output pixel, columns in HWIO order ky, kx, ci so that it multiplies the
 * weights directly). With add set, the reverse: col's rows are summed back into the image
 * (col2im). */
/* im2col for a group: a window row's channels are not contiguous, so pixel by pixel. */
static void im2col_group(const geom *g, float *col, float *in, long m0, long m1, int ci0,
			 int cg, int add)
{
	long hw = (long)g->oh * g->ow, isz = (long)g->h * g->w * g->c;
	int K = g->kh * g->kw * cg;

	for (long m = m0; m < m1; m++) {
		long n = m / hw, r = m % hw;
		int oy = (int)(r / g->ow), ox = (int)(r % g->ow);
		float *dst = col + (m - m0) * K, *img = in + n * isz + ci0;

		for (int ky = 0; ky < g->kh; ky++) {
			int iy = oy * g->sh - g->pt + ky;

			for (int kx = 0; kx < g->kw; kx++, dst += cg) {
				int ix = ox * g->sw - g->pl + kx;
				float *src = img + ((long)iy * g->w + ix) * g->c;

				if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) {
					if (!add)
						memset(dst, 0, sizeof *dst * cg);
				} else if (add) {
					vec_add(src, dst, cg);
				} else {
					memcpy(dst, src, sizeof *dst * cg);
				}
			}
		}
	}
}

static void im2col(const geom *g, float *col, float *in, long m0, long m1, int ci0, int cg,
		   int add)
{
	long hw = (long)g->oh * g->ow, isz = (long)g->h * g->w * g->c;
	int c = g->c, K = g->kh * g->kw * cg;

	if (cg < c) {
		im2col_group(g, col, in, m0, m1, ci0, cg, add);
		return;
	}

	for (long m = m0; m < m1; m++) {
		long n = m / hw, r = m % hw;
		int oy = (int)(r / g->ow), ox = (int)(r % g->ow);
		int iy0 = oy * g->sh - g->pt, ix0 = ox * g->sw - g->pl;
		int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = g->w - ix0 < g->kw ? g->w - ix0 : g->kw;
		float *dst = col + (m - m0) * K, *img = in + n * isz;

		for (int ky = 0; ky < g->kh; ky++, dst += g->kw * c) {
			int iy = iy0 + ky;

			if (iy < 0 || iy >= g->h || kx0 >= kx1) {
				if (!add)
					memset(dst, 0, sizeof *dst * g->kw * c);
				continue;
			}
			/* the in-bounds columns of a window row are contiguous in NHWC */
			float *src = img + ((long)iy * g->w + ix0 + kx0) * c, *d = dst + kx0 * c;
			long len = (long)(kx1 - kx0) * c;

			if (add) {
				vec_add(src, d, len);
				continue;
			}
			if (g->kw * c <= 32) {
				/* a first layer's window rows (7 x 3 floats): the calls cost more */
				for (int i = 0; i < g->kw * c; i++)
					dst[i] = i < kx0 * c || i >= kx1 * c ? 0.0f : src[i - kx0 * c];
				continue;
			}
			memset(dst, 0, sizeof *dst * kx0 * c);
			memcpy(d, src, sizeof *d * len);
			memset(dst + kx1 * c, 0, sizeof *dst * (g->kw - kx1) * c);
		}
	}
}

typedef struct {
	const geom *g;
	float *col, *in;
	long m0, m1;
} im2col_job;

static void im2col_worker(void *ctx, int k, int n)
{
	const im2col_job *j = ctx;
	long lo, hi;
	int K = j->g->kh * j->g->kw * j->g->c;

	par_share(j->m1 - j->m0, k, n, &lo, &hi);
	if (lo < hi)
		im2col(j->g, j->col + lo * K, j->in, j->m0 + lo, j->m0 + hi, 0, j->g->c, 0);
}

/* im2col's gather of every channel, its rows shared over the threads (each row is written
 * alone: the same bits). */
static void im2col_rows(const geom *g, float *col, const float *in, long m0, long m1, int threads)
{
	im2col_job j = { .g = g, .col = col, .in = (float *)in, .m0 = m0, .m1 = m1 };

	par_run(threads < m1 - m0 ? threads : (int)(m1 - m0), im2col_worker, &j);
}

/* Groups share each tile's rows: the tile starts as the bias, and each group's im2col and
 * GEMM add its outputs' columns (weights [kh*kw*cg, cout] read group by group, ld cout). */
static void forward_grouped(const geom *g, float *out, const float *in, const float *w,
			    const float *b, int B, int relu, float *ws)
{
	long M = (long)B * g->oh * g->ow, tm = tile_rows(g);
	int G = groups(g), cg = g->c / G, N = g->oc, ng = N / G, K = g->kh * g->kw * cg;

	for (long m0 = 0; m0 < M; m0 += tm) {
		long m1 = m0 + tm < M ? m0 + tm : M;
		float *o = out + m0 * N;

		for (long r = 0; r < m1 - m0; r++)
			if (b)
				memcpy(o + r * N, b, sizeof *b * N);
			else
				memset(o + r * N, 0, sizeof *o * N);
		for (int gi = 0; gi < G; gi++) {
			im2col(g, ws, (float *)in, m0, m1, gi * cg, cg, 0);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(m1 - m0), ng, K,
				    1.0f, ws, K, w + gi * ng, N, 1.0f, o + gi * ng, N);
		}
		if (relu)
			vec_bias_relu(o, NULL, m1 - m0, N, relu);
	}
}

int conv2d_plan_init(conv2d_plan *p, const geom *g, isa_kind isa, int threads)
{
	memset(p, 0, sizeof *p);
	p->g = *g;
	p->g.groups = groups(g);
	p->isa = isa;
	p->threads = threads > 0 ? threads : 1;
	if (convdw_fits(g))
		p->kind = CONV2D_DEPTHWISE;
	else if (groups(g) > 1)
		p->kind = CONV2D_GROUPED;
	else if (convdirect_fits(g, isa))
		p->kind = CONV2D_DIRECT;
	else if (is_pointwise(g))
		p->kind = CONV2D_POINTWISE;
	else
		p->kind = CONV2D_SGEMM;
	/* Strided and 1x1 forwards on the plane kernels wherever they fit: measured faster than
	 * im2col/sgemm on every such layer of ResNet-18 and MobileNetV2 at 224, batch 8, 2
	 * threads (conv_bench nets: conv1 7x7 s2 ~5x; 1x1s 1.1x (7x7x320->1280) to 5x (112x112
	 * 16->96), K = cin from 16 to 960), so no rule by shape is needed. On AVX2 (PETCNN_ISA=avx2,
	 * CPU ms) against OpenBLAS's AVX2 (Haswell) sgemm: 1.0x (ResNet-18's 3x3 s2 to 7x7x512,
	 * 0.96-1.06 run to run) to 6x (112x112 16->96), conv1 1.5x; against its SSE3 fallback
	 * (OPENBLAS_CORETYPE=Prescott, issue 15) 2.5x to 8.5x on every such layer. */
	p->fwd_direct = p->kind == CONV2D_DIRECT ||
			((p->kind == CONV2D_SGEMM || p->kind == CONV2D_POINTWISE) &&
			 convdirect_forward_fits(g, isa));
	p->has_t = p->kind != CONV2D_DEPTHWISE && transposed(g, &p->t);
	/* A pointwise layer's backward on the direct kernels too: its din is a 1x1 forward
	 * of dout by the turned weights, with the ReLU mask fused, and dw the wgrad tiles'
	 * 1x1 case. OpenBLAS's sgemm took them at a third of the forward's rate on
	 * MobileNetV2's 112x112 and 56x56 layers, whose M = B*h*w is long and K or N short
	 * (batch 10, 2 threads, Zen 4, conv_bench bwd: 112x112 16->96 din 7.1 ms, dw 7.5,
	 * forward 2.9). */
	p->dw_direct = p->kind == CONV2D_POINTWISE && p->fwd_direct;
	p->dw_cols = p->kind == CONV2D_SGEMM && p->fwd_direct;
	/* a first layer's: ResNet-18's conv1 (7x7 s2, 3 channels), batch 10, 2 threads, Zen 4,
	 * conv_bench bwd: dw and db 18.6-18.9 ms on im2col rows, 13.8-14.0 by taps */
	p->dw_taps = p->kind == CONV2D_SGEMM && convdirect_wgrad_taps(g, isa);
	/* a strided layer's dw on the layer itself: no im2col rows, a band of the input's rows
	 * and of dout in cache for every part (ResNet-18's 3x3 s2 and 1x1 s2 at 224, batch
	 * 10, 2 threads, Intel Xeon, conv_bench bwd, ms with din: AVX-512 l2.s2 14.0-14.2 ->
	 * 11.7-12.0, l3.s2 10.9-11.8 -> 9.5-9.9, l4.s2 10.1-10.5 -> 10.2-11.1, l2.ds
	 * 2.8-3.0 -> 2.7; held to AVX2 16.1-17.2 -> 12.7-13.0, 14.1-14.7 -> 10.8-11.1,
	 * 13.6-14.1 -> 12.9-13.1) */
	p->dw_strided = p->dw_cols && !p->dw_taps && (g->sh > 1 || g->sw > 1);
	/* din by phases where measured faster than sgemm and col2im (ResNet-18 at 224, batch 10,
	 * 2 threads, Intel Xeon, conv_bench bwd with dw left out, ms): its 1x1 s2 on either path
	 * (AVX-512 l2.ds 1.86 -> 0.77, l3.ds 1.09 -> 0.62, l4.ds 0.90 -> 0.61; AVX2 1.81 ->
	 * 0.98, 1.14 -> 0.81, 0.89 -> 0.83), its 3x3 s2 on AVX-512 where dout's rows hold a row
	 * tile of 12 pixels (l2.s2 7.1 -> 4.75, l3.s2 5.45 -> 5.1; 7 wide, l4.s2, 5.05 -> 5.7),
	 * not on AVX2 (its row tiles took l2.s2 6.7 -> 10.7) */
	p->din_phases = !p->has_t && phases_fit(g, isa, p->threads, NULL) &&
			((g->kh == 1 && g->kw == 1) ||
			 (isa == ISA_AVX512 && isa_supported(ISA_AVX512) && g->ow >= 12));
	p->din_direct = p->has_t && (convdirect_fits(&p->t, isa) ||
				     (p->dw_direct && convdirect_forward_fits(&p->t, isa)));
	p->wino = convwino_fits(g, isa);
	p->wino_t = p->has_t && convwino_fits(&p->t, isa) && p->t.pt >= 0 && p->t.pl >= 0;
	p->ws = conv2d_workspace(g, p->threads);
	return 0;
}

size_t conv2d_wino_floats(const conv2d_plan *p)
{
	return convwino_weights(&p->g);
}

void conv2d_pack_wino(const conv2d_plan *p, float *u, const float *w)
{
	if (p->threads > 1)
		blas_park();
	convwino_pack(&p->g, u, w, p->threads, p->isa);
}

size_t conv2d_direct_floats(const conv2d_plan *p)
{
	return p->fwd_direct ? convdirect_packed_floats(&p->g, p->isa) : 0;
}

void conv2d_pack_direct(const conv2d_plan *p, float *pw, const float *w)
{
	if (p->threads > 1)
		blas_park();
	convdirect_pack(&p->g, pw, w, p->threads, p->isa);
}

void conv2d_run_direct(const conv2d_plan *p, float *out, const float *in, const float *pw,
		       const float *b, int B, int relu, float *ws)
{
	if (p->threads > 1)
		blas_park();
	convdirect_forward_packed(&p->g, out, in, pw, b, relu, NULL, 0, B, p->threads, ws, p->isa);
}

void conv2d_run_wino(const conv2d_plan *p, float *out, const float *in, const float *u,
		     const float *b, int B, int relu, float *ws)
{
	if (p->threads > 1)
		blas_park();
	convwino_forward(&p->g, out, in, u, b, relu, B, p->threads, ws, p->isa);
}

void conv2d_run_forward(const conv2d_plan *p, float *out, const float *in, const float *w,
			const float *b, int B, int relu, float *ws)
{
	const geom *g = &p->g;
	long M = (long)B * g->oh * g->ow, tm = tile_rows(g);
	int K = g->kh * g->kw * g->c, N = g->oc, threads = p->threads;

	if (p->fwd_direct) {
		if (threads > 1)
			blas_park();
		convdirect_forward(g, out, in, w, b, relu, NULL, 0, B, threads, ws, p->isa);
		return;
	}
	switch (p->kind) {
	case CONV2D_DEPTHWISE:
		if (threads > 1)
			blas_park();
		convdw_forward(g, out, in, w, b, B, relu, threads, p->isa);
		return;
	case CONV2D_GROUPED:
		forward_grouped(g, out, in, w, b, B, relu, ws);
		return;
	case CONV2D_POINTWISE:
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, N, K, 1.0f,
			    in, K, w, N, 0.0f, out, N);
		vec_bias_relu(out, b, M, N, relu);
		return;
	case CONV2D_DIRECT:   /* always fwd_direct, above */
	case CONV2D_SGEMM:
		break;
	}
	for (long m0 = 0; m0 < M; m0 += tm) {
		long m1 = m0 + tm < M ? m0 + tm : M;
		float *o = out + m0 * N;

		/* im2col only reads the input; the cast is for the shared col2im signature */
		im2col(g, ws, (float *)in, m0, m1, 0, g->c, 0);
		/* the tile starts as the bias and sgemm adds into it (beta 1): OpenBLAS would
		 * otherwise spend a pass zeroing it for beta 0, and another adding the bias */
		if (b)
			for (long r = 0; r < m1 - m0; r++)
				memcpy(o + r * N, b, sizeof *b * N);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(m1 - m0), N, K,
			    1.0f, ws, K, w, N, b ? 1.0f : 0.0f, o, N);
		if (relu)
			vec_bias_relu(o, NULL, m1 - m0, N, relu);
	}
}

/* din [B, h, w, cin] = the transposed convolution of dout by w, tile by tile with each
 * tile complete when computed (no col2im scatter, no zeroing of din), the activation's mask
 * (relu_y, relu_act) applied while the tile is still in cache. The GEMM has the forward's
 * shape: K = kh*kw*cout long, N = cin. */
static void conv_din(const geom *g, const geom *t, float *din, const float *dout,
		     const float *w, const float *relu_y, int relu_act, int B, int threads,
		     float *ws)
{
	long M = (long)B * t->oh * t->ow, tm = tile_rows(t);
	int K = t->kh * t->kw * t->c, N = t->oc;
	float *col = ws, *wt = ws + tm * K;

	turn_kernel(g, wt, w, threads);
	for (long m0 = 0; m0 < M; m0 += tm) {
		long m1 = m0 + tm < M ? m0 + tm : M;
		float *d = din + m0 * N;

		im2col(t, col, (float *)dout, m0, m1, 0, t->c, 0);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(m1 - m0), N, K, 1.0f,
			    col, K, wt, N, 0.0f, d, N);
		if (relu_y)
			vec_act_backward(d, d, relu_y + m0 * N, (size_t)(m1 - m0) * N, relu_act);
	}
}

typedef struct {
	const geom *g;
	float *din;
	const float *ph, *relu_y;   /* the chunk's phase outputs (NULL: a phase of no taps) */
	int relu_act, n0, nimg, ry, rx;
	phase_axis y, x;
	int ow;                     /* the phase outputs' row length */
} lay_job;

/* Worker k's share of the chunk's phase rows into din, through the activation's mask. */
static void lay_worker(void *ctx, int k, int n)
{
	const lay_job *j = ctx;
	const geom *g = j->g;
	int c = g->c;
	long lo, hi, rows = (long)j->nimg * j->y.n;

	par_share(rows, k, n, &lo, &hi);
	for (long r = lo; r < hi; r++) {
		long i = r / j->y.n, a = r % j->y.n, img = j->n0 + i, iy = j->ry + (long)g->sh * a;
		long at = ((img * g->h + iy) * g->w + j->rx) * c, step = (long)g->sw * c;
		const float *src = j->ph ? j->ph + (i * j->y.out + a) * j->ow * c : NULL;

		for (int b = 0; b < j->x.n; b++, at += step, src += src ? c : 0) {
			if (!src)
				memset(j->din + at, 0, sizeof *j->din * c);
			else if (j->relu_y)
				vec_act_backward(j->din + at, src, j->relu_y + at, (size_t)c, j->relu_act);
			else
				memcpy(j->din + at, src, sizeof *j->din * c);
		}
	}
}

/* din [B, h, w, cin] by phases (phases_fit): each phase's kernel [j, i, cout, cin] =
 * w [ky0 + sh*(k-1-j), kx0 + sw*(kx-1-i), cin, cout] (its taps in dout's order), the
 * phases' one after another in ws; then per chunk of images each phase's convolution, its
 * pixels laid into din: each pixel of din belongs to one phase, so it is written once, with
 * no zeroing and no sums across phases. */
static void din_phases(const conv2d_plan *p, float *din, const float *dout, const float *w,
		       const float *relu_y, int relu_act, int B, float *ws)
{
	const geom *g = &p->g;
	int C = g->c, O = g->oc, chunk = phase_images(g), tap[CONV2D_PHASE_TAPS], nt = 0;
	size_t kern, outs;
	float *ph, *cws;

	phase_scratch(g, &kern, &outs);
	ph = ws + kern, cws = ph + outs;

	for (int ry = 0; ry < g->sh; ry++)
		for (int rx = 0; rx < g->sw; rx++) {
			geom pg;
			phase_axis y, x;

			if (phase_geom(g, ry, rx, &pg, &y, &x))
				for (int j = 0; j < y.k; j++)
					for (int i = 0; i < x.k; i++)
						tap[nt++] = (y.k0 + g->sh * (y.k - 1 - j)) * g->kw +
							    x.k0 + g->sw * (x.k - 1 - i);
		}
	turn_taps(g, ws, w, tap, nt, p->threads);
	for (int n0 = 0; n0 < B; n0 += chunk) {
		int nimg = B - n0 < chunk ? B - n0 : chunk;
		const float *wp = ws, *d = dout + (long)n0 * g->oh * g->ow * O;

		for (int ry = 0; ry < g->sh; ry++)
			for (int rx = 0; rx < g->sw; rx++) {
				geom pg;
				lay_job j = { .g = g, .din = din, .relu_y = relu_y, .n0 = n0, .nimg = nimg,
					      .ry = ry, .rx = rx, .relu_act = relu_act };
				int taps = phase_geom(g, ry, rx, &pg, &j.y, &j.x);

				if (!j.y.n || !j.x.n)
					continue;
				j.ow = pg.ow;
				if (taps) {
					convdirect_forward(&pg, ph, d, wp, NULL, 0, NULL, 0, nimg, p->threads,
							   cws, p->isa);
					j.ph = ph;
					wp += (size_t)pg.kh * pg.kw * O * C;
				}
				par_run(p->threads, lay_worker, &j);
			}
	}
}

/* Pixels per row at most of a weight gradient on convdirect's tiles over 1x1 rows (a
 * pointwise layer's, a strided layer's im2col rows). AVX2's tiles take 16 output channels
 * a pass, so a row's inputs are read cout/16 times, and rows of 128 keep them in L1 (held
 * to AVX2, Zen 4, conv_bench bwd with din left out: 14x14 96->576 2.10 -> 1.13 ms, 7x7
 * 160->960 1.64 -> 0.87, 320->1280 3.40 -> 2.34, where OpenBLAS's Haswell core takes 1.13,
 * 0.75 and 1.90); AVX-512's take 32 a pass, and rows of 512 and 256 measured alike. */
static int pw_row(const conv2d_plan *p)
{
	return p->isa == ISA_AVX512 && isa_supported(ISA_AVX512) ? 512 : 128;
}

/* dw [K, N] = (acc: dw +) col^T d over n pixels: col their im2col rows [n, K], d their
 * dout rows [n, N]. On convdirect's wgrad tiles (dw_cols) as a 1x1 layer of K input
 * channels in rows of pw_row pixels: OpenBLAS's sgemm took a strided layer's long, thin
 * product at 20-55 GFLOP/s (MobileNetV2's first layer, K = 27: 10.8 ms at batch 10;
 * ResNet-18's conv1, K = 147: 42; Zen 4, 2 threads). The pixels in order: the same bits
 * for any thread count. */
static void dw_cols(const conv2d_plan *p, float *dw, const float *col, const float *d, long n,
		    int K, int N, int acc)
{
	if (!p->dw_cols) {
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, (int)n, 1.0f, col, K, d, N,
			    acc ? 1.0f : 0.0f, dw, N);
		return;
	}
	int R = pw_row(p);
	geom r = { .h = (int)(n / R), .w = R, .c = K, .kh = 1, .kw = 1, .sh = 1, .sw = 1,
		   .oh = (int)(n / R), .ow = R, .oc = N, .groups = 1 };
	long whole = n / R * R;

	if (p->threads > 1)
		blas_park();
	if (whole) {
		convdirect_wgrad(&r, dw, NULL, d, col, 1, acc, p->threads, p->isa);
		acc = 1;
	}
	if (n > whole) {
		r.h = r.oh = 1, r.w = r.ow = (int)(n - whole);
		convdirect_wgrad(&r, dw, NULL, d + whole * N, col + whole * K, 1, acc, p->threads, p->isa);
	}
}

static void backward(const conv2d_plan *p, float *din, float *dw, float *db, const float *dout,
		     const float *in, const float *w, int wino, const float *ut, const float *relu_y,
		     int relu_act, int B, int acc, float *ws)
{
	const geom *g = &p->g, *t = &p->t;
	int threads = p->threads;
	isa_kind isa = p->isa;
	long M = (long)B * g->oh * g->ow, tm = tile_rows(g);
	int G = groups(g), cg = g->c / G, ng = g->oc / G;
	int K = g->kh * g->kw * cg, N = g->oc;
	float *col = ws, *dcol = ws + tm * K;

	if (p->kind == CONV2D_DEPTHWISE) {
		if (threads > 1)
			blas_park();
		convdw_backward(g, din, dw, db, dout, in, w, relu_y, relu_act, B, acc, threads, isa);
		return;
	}
	wino = wino && p->wino && dw && convwino_wgrad_wins(g, B);
	if (db && !wino && ((p->kind != CONV2D_DIRECT && !p->dw_direct && !p->dw_taps) || !dw)) {
		if (!acc)
			memset(db, 0, sizeof *db * N);
		vec_sum_rows(db, dout, M, N);
	}
	if (dw && p->dw_taps) {
		if (threads > 1)
			blas_park();
		convdirect_wgrad(g, dw, db, dout, in, B, acc, threads, isa);
		if (!din)
			return;
		dw = db = NULL;
	}
	if (p->kind == CONV2D_POINTWISE) {
		if (threads > 1 && (p->dw_direct || p->din_direct))
			blas_park();
		if (dw && p->dw_direct) {
			/* its pixels in rows of k of the map's rows, up to pw_row pixels: a tile's
			 * sums are stored at each row's end, every 7 pixels on a 7x7 map (0.75x
			 * sgemm there), and a row's pixels are read once per 32 output channels,
			 * from memory if the row is the whole batch (112x112 16->96: 2.9x slower).
			 * The pixels' order is the same: the same bits. */
			geom rows = *g;
			int k = 1;

			for (int d = 2; (long)d * g->ow <= pw_row(p) && d <= B * g->oh; d++)
				if ((B * g->oh) % d == 0)
					k = d;
			rows.h = rows.oh = B * g->oh / k, rows.w = rows.ow = k * g->ow;
			convdirect_wgrad(&rows, dw, db, dout, in, 1, acc, threads, isa);
		} else if (dw) {
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, (int)M, 1.0f,
				    in, K, dout, N, acc ? 1.0f : 0.0f, dw, N);
		}
		if (din && p->din_direct) {
			turn_kernel(g, ws, w, threads);
			convdirect_forward(t, din, dout, ws, NULL, 0, relu_y, relu_act, B, threads,
					   ws + (size_t)t->c * t->oc, isa);
			return;
		}
		if (din)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, K, N, 1.0f,
				    dout, N, w, N, 0.0f, din, K);
		if (din && relu_y)
			elt_act_backward(din, din, relu_y, (size_t)M * K, relu_act, threads);
		return;
	}
	if ((din && !p->has_t) || G > 1) {
		/* strided or grouped: din by col2im, tile by tile beside dw's, group by group
		 * (a group's dw and w are columns gi*ng.. of [K, cout]) */
		if (dw && p->dw_strided) {
			if (threads > 1)
				blas_park();
			convdirect_wgrad(g, dw, NULL, dout, in, B, acc, threads, isa);
			dw = NULL;
		}
		if (din && p->din_phases) {
			din_phases(p, din, dout, w, relu_y, relu_act, B, ws);
			din = NULL;
		}
		if (din)
			memset(din, 0, sizeof *din * (size_t)B * g->h * g->w * g->c);
		for (long m0 = 0; m0 < M && (din || dw); m0 += tm) {
			long m1 = m0 + tm < M ? m0 + tm : M;

			for (int gi = 0; gi < G; gi++) {
				const float *d = dout + m0 * N + gi * ng;

				if (dw && G == 1) {
					if (p->dw_cols)
						im2col_rows(g, col, in, m0, m1, threads);
					else
						im2col(g, col, (float *)in, m0, m1, 0, cg, 0);
					dw_cols(p, dw, col, d, m1 - m0, K, N, acc || m0 > 0);
				} else if (dw) {
					im2col(g, col, (float *)in, m0, m1, gi * cg, cg, 0);
					cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, ng, (int)(m1 - m0),
						    1.0f, col, K, d, N, acc || m0 > 0 ? 1.0f : 0.0f, dw + gi * ng, N);
				}
				if (!din)
					continue;
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(m1 - m0), K, ng,
					    1.0f, d, N, w + gi * ng, N, 0.0f, dcol, K);
				im2col(g, dcol, din, m0, m1, gi * cg, cg, 1);
			}
		}
		if (din && relu_y)
			elt_act_backward(din, din, relu_y, (size_t)B * g->h * g->w * g->c, relu_act,
					 threads);
		return;
	}
	if (threads > 1)
		blas_park();
	if (!dw) {
		/* no weight gradient wanted (a frozen layer, an input gradient) */
	} else if (wino) {
		convwino_wgrad(g, dw, db, dout, in, B, acc, threads, ws, isa);
	} else if (p->kind == CONV2D_DIRECT) {
		convdirect_wgrad(g, dw, db, dout, in, B, acc, threads, isa);
	} else if (p->dw_strided) {
		convdirect_wgrad(g, dw, NULL, dout, in, B, acc, threads, isa);
	} else {
		for (long m0 = 0; m0 < M; m0 += tm) {
			long m1 = m0 + tm < M ? m0 + tm : M;

			if (p->dw_cols)
				im2col_rows(g, col, in, m0, m1, threads);
			else
				im2col(g, col, (float *)in, m0, m1, 0, g->c, 0);
			dw_cols(p, dw, col, dout + m0 * N, m1 - m0, K, N, acc || m0 > 0);
		}
	}
	if (!din)
		return;
	/* stride 1: din is the convolution of dout by the turned kernel (t) */
	if (ut && p->wino_t) {
		convwino_forward_keep(t, din, dout, ut, relu_y, relu_act, B, threads, ws, isa);
		return;
	}
	if (p->din_direct) {
		turn_kernel(g, ws, w, threads);
		convdirect_forward(t, din, dout, ws, NULL, 0, relu_y, relu_act, B, threads,
			     ws + (size_t)t->kh * t->kw * t->c * t->oc, isa);
		return;
	}
	conv_din(g, t, din, dout, w, relu_y, relu_act, B, threads, ws);
}

void conv2d_run_backward(const conv2d_plan *p, float *din, float *dw, float *db,
			 const float *dout, const float *in, const float *w, const float *relu_y,
			 int relu_act, int B, int acc, float *ws)
{
	backward(p, din, dw, db, dout, in, w, 0, NULL, relu_y, relu_act, B, acc, ws);
}

void conv2d_run_backward_wino(const conv2d_plan *p, float *din, float *dw, float *db,
			      const float *dout, const float *in, const float *w, const float *ut,
			      const float *relu_y, int relu_act, int B, int acc, float *ws)
{
	backward(p, din, dw, db, dout, in, w, 1, ut, relu_y, relu_act, B, acc, ws);
}

size_t conv2d_wino_t_floats(const conv2d_plan *p)
{
	return convwino_weights(&p->t);
}

void conv2d_pack_wino_t(const conv2d_plan *p, float *ut, const float *w, float *ws)
{
	if (p->threads > 1)
		blas_park();
	turn_kernel(&p->g, ws, w, p->threads);
	convwino_pack(&p->t, ut, ws, p->threads, p->isa);
}

const char *conv2d_plan_path(const conv2d_plan *p)
{
	switch (p->kind) {
	case CONV2D_DEPTHWISE:
		return "depthwise";
	case CONV2D_GROUPED:
		return "grouped sgemm";
	case CONV2D_DIRECT:
		if (p->isa == ISA_AVX512 && isa_supported(ISA_AVX512))
			return p->din_direct ? "avx512" : "avx512, din sgemm";
		return p->din_direct ? "avx2" : "avx2, din sgemm";
	default:
		if (!p->fwd_direct)
			return "sgemm";
		if (p->isa == ISA_AVX512 && isa_supported(ISA_AVX512))
			return p->din_phases    ? "avx512 fwd, din phases"
			       : !p->dw_direct  ? "avx512 fwd, sgemm"
			       : p->din_direct ? "avx512" : "avx512, din sgemm";
		return p->din_phases    ? "avx2 fwd, din phases"
		       : !p->dw_direct  ? "avx2 fwd, sgemm"
		       : p->din_direct ? "avx2" : "avx2, din sgemm";
	}
}

/* One-off calls: plan, then run. */
void conv2d_forward(const geom *g, float *out, const float *in, const float *w,
		    const float *b, int B, int relu, float *ws, int threads, isa_kind isa)
{
	conv2d_plan p;

	conv2d_plan_init(&p, g, isa, threads);
	conv2d_run_forward(&p, out, in, w, b, B, relu, ws);
}

void conv2d_backward(const geom *g, float *din, float *dw, float *db,
		     const float *dout, const float *in, const float *w, int B, int acc,
		     float *ws, int threads, isa_kind isa)
{
	conv2d_backward_relu(g, din, dw, db, dout, in, w, NULL, 0, B, acc, ws, threads, isa);
}

void conv2d_backward_relu(const geom *g, float *din, float *dw, float *db,
			  const float *dout, const float *in, const float *w, const float *relu_y,
			  int relu_act, int B, int acc, float *ws, int threads, isa_kind isa)
{
	conv2d_plan p;

	conv2d_plan_init(&p, g, isa, threads);
	conv2d_run_backward(&p, din, dw, db, dout, in, w, relu_y, relu_act, B, acc, ws);
}

const char *conv2d_path(const geom *g, isa_kind isa)
{
	conv2d_plan p;

	conv2d_plan_init(&p, g, isa, 1);
	return conv2d_plan_path(&p);
}
