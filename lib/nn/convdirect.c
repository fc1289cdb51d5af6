/* convdirect: register tiles of 3 output pixels x 32 output channels (12 of AVX2's 16 registers
 * accumulating; AVX-512: 12 pixels x 32 channels, 24 of its 32) over a zero-padded copy of the
 * input rows, so the innermost loop has no bounds: for a window row, kw*cin input floats and
 * the matching weights are contiguous. Each output and each weight gradient is one sum in a
 * fixed order whatever the tile, so both instruction sets give the same bits. */
#include "nn/convdirect.h"

#include <string.h>

#include "nn/actmask.h"
#include "util/par.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CONV_AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))
#define CONV_PX 3   /* output pixels per tile */
#define CONV_CI 3   /* input channels per weight-gradient tile */
#define CONV_CI1 6  /* the same on a 1x1 (wgrad_tile6) */
#define CONV_AVX512 __attribute__((target("avx512f,fma")))
#define CONV512_PX 12  /* output pixels per AVX-512 tile */
#define CONV512_CI 12  /* input channels per AVX-512 weight-gradient part */
#define FLAT256_MAXP 7 /* positions per AVX2 plane tile at most (one vector of channels) */
#endif

int convdirect_fits(const geom *g, isa_kind isa)
{
#ifdef CONV_AVX2
	return g->sh == 1 && g->sw == 1 && g->oc % 8 == 0 && (g->kh > 1 || g->kw > 1) &&
	       g->groups <= 1 && isa >= ISA_AVX2 && isa_supported(ISA_AVX2);
#else
	(void)g, (void)isa;
	return 0;
#endif
}

/* Floats of a padded band: small enough to stay in L2 between being written and read. */
#define CONV_BAND_FLOATS (1 << 16)

/* Output rows per padded band; the band holds them and the kh - 1 rows below. */
static int band_rows(const geom *g)
{
	long row = (long)(g->ow + g->kw - 1) * g->c, r = CONV_BAND_FLOATS / row - (g->kh - 1);

	return r < 1 ? 1 : r > g->oh ? g->oh : (int)r;
}

/* a worker's padded copy of a band of rows: rows of ow + kw - 1 pixels */
static size_t pad_floats(const geom *g)
{
	return (size_t)(band_rows(g) + g->kh - 1) * (g->ow + g->kw - 1) * g->c;
}

/* The weights in blocks of 32 output channels (the last padded), each block's rows of 32
 * contiguous: the row kernels' layout above 32 output channels, the plane kernels' always. */
static size_t block_floats(const geom *g)
{
	return (size_t)(g->oc + 31) / 32 * 32 * g->kh * g->kw * g->c;
}

/* Above 32 output channels the weights are repacked block by block: a tile then reads one
 * compact run of weights, not every other line. */
static size_t packed_floats(const geom *g)
{
	return g->oc > 32 ? block_floats(g) : 0;
}

/* The plane path (AVX-512; AVX2 with tiles of 3 positions x 32 channels, each sum in the
 * same order: the same bits): a tile of 12 outputs runs along the flattened rows of a
 * "plane", so on a 7-wide map it is not 7/12 empty, and any stride reads its inputs one
 * pixel apart. Stride s splits the padded input into s x s planes by the parity (phase) of
 * the row and column: plane (a, c) row i, pixel j is padded input row i*sh + a, column
 * j*sw + c. Output (y, x) of a chunk is position q = y*R + x of its planes (R pixels a row,
 * x < ow; the R - ow positions past a row are computed and dropped), and its window's tap
 * (ky, kx) is position q + (ky/sh)*R + kx/sw of plane (ky%sh, kx%sw): one offset per tap
 * for the whole tile. Taps kx = c, c+sw, ... of one plane are adjacent pixels, so a window
 * row of a plane is a "segment" of contiguous floats; the weights are repacked in segment
 * order, 32 output channels a block. Stride 1 has one plane and one segment per window
 * row, summed in the row kernels' order (bias, then ky, kx, ci): the same bits. A strided
 * layer of at most FLAT_WHOLE_ROWS_CIN input channels (a first layer's RGB) splits its rows
 * only: plane a's pixel j is padded column j, positions sw pixels apart, and a window row
 * is one segment of kw x cin floats (ky, kx, ci), where the column phases' segments were
 * cin or 2*cin floats long, and its planes are copies of whole rows.
 * Workers take the batch's output rows, a band of chunks (up to FLAT_BAND_FLOATS of planes,
 * a chunk: rows of one image) at a time, and run every tile of the band for one block of
 * weights before the next: a block stays in L2 over the band, where the row kernels stream
 * the whole weight tensor from L3 once per output row (9.4 MB for 512x512x3x3). */
#ifndef FLAT_BAND_FLOATS
#define FLAT_BAND_FLOATS (1 << 17)
#endif
#define FLAT_MAX_SEGS 64
#define FLAT_MAX_CHUNKS 64
/* The sum over K = kh*kw*cin runs in parts of up to FLAT_KPART rows: a part's weights for
 * 32 output channels (32 KB) stay in L1 over every tile of the band, the partial sums in
 * the output between parts (stored and reloaded exactly: the same bits). */
#ifndef FLAT_KPART
#define FLAT_KPART 256
#endif
/* AVX-512's tiles take 64 output channels at once, two such blocks: 64 KB a part, past a
 * 48 KB L1, so where K has more than one part anyway they take parts of this many rows.
 * Measured (conv_bench nets 2, batch 10, Intel Xeon, GFLOP/s, 3 alternating runs):
 * ResNet-18's 3x3 stride-2 convolutions 291-324 -> 302-328 (64->128), 278-286 -> 308-316
 * (128->256), 240-242 -> 259-262 (256->512); conv1 (K = 147, one part either way) as it was. */
#ifndef FLAT_KPART_WIDE
#define FLAT_KPART_WIDE 128
#endif
#define FLAT_MAX_KPARTS 128
#define FLAT_MAX_RUNS (FLAT_MAX_KPARTS + FLAT_MAX_SEGS)
/* Whole rows for at most this many input channels (then a split plane's pixels are never
 * so few floats that memcpy's calls would cost more than their copies). Measured (conv_bench nets 1, batch 10,
 * Intel Xeon, GFLOP/s, alternating): MobileNetV2's first layer (3->32, 3x3, stride 2)
 * 73-76 -> 87-89, held to AVX2 61-63 -> 73-76 (in its bands, 2 threads: 2.11-2.20 ->
 * 1.58-1.65 ms a batch of 10); ResNet-18's conv1 (7x7) 115-125 -> 120-130, AVX2 86-89 ->
 * 87-100: a third of the first layer's time had gone in copying 3-float pixels into
 * column phases and in its 6 short runs a window. */
#ifndef FLAT_WHOLE_ROWS_CIN
#define FLAT_WHOLE_ROWS_CIN 8
#endif
/* Below this output width a stride-1 layer takes the plane path: its row tiles are part
 * empty and its rows few. Measured (conv_bench nets 1, 1 thread, CPU ms per batch of 8):
 * ResNet-18's 14x14x256 3x3 10.2 by planes, 11.5 by rows; 7x7x512 13.3 against 15+; its
 * 28- and 56-wide 3x3s 8.1 by rows, 8.9 by planes. The default network's 64-wide rows
 * keep the row kernels. (FLAT_BAND_FLOATS, FLAT_KPART and FLAT_MAX_OW may be set with -D
 * for such tuning runs.) */
#ifndef FLAT_MAX_OW
#define FLAT_MAX_OW 16
#endif
/* Above this many bytes of input (past what L3 keeps between layers), an AVX-512 tile of
 * a 1x1 layer read in place (no padded copy) prefetches its successor's inputs: a tile
 * reads its 12 positions cin floats apart, 12 streams the hardware prefetchers do not
 * follow, and a map from memory went at 3-5 GB/s. Measured (conv_bench nets 1, batch 10,
 * Zen 4, GFLOP/s): MobileNetV2's 56x56 144->24 (18 MB) 41-46 -> 75-76, 144->64 71-74 ->
 * 98-102, 96->24 68 -> 71-74; in cache the prefetches cost 1-9% (28x28 144->32, 4.5 MB:
 * 105.7 -> 102). AVX2's tiles of 3 positions are 3 streams, which the prefetchers follow:
 * there they cost more than they gained (56x56 96->24 101 -> 93). */
#ifndef FLAT_PF_BYTES
#define FLAT_PF_BYTES (8 << 20)
#endif

typedef struct {
	int psh, psw;          /* planes: the row and column phases windows read */
	int R, hr;             /* positions per plane row; plane rows past a chunk's output rows */
	int xs, cs;            /* pixels of a plane from one position to the next; padded input
				* columns from one pixel of a plane to the next (xs * cs = sw) */
	int inplace;           /* 1x1, stride 1, no pads: the input is its own plane */
	int rows;              /* output rows per chunk at most */
	long plane, slot;      /* floats per plane; per chunk (its planes; 0 in place) */
	int slots;             /* chunks per band */
	/* runs: the segments (ky, column phase; taps x cin contiguous floats each), in
	 * summation order, cut where a part of K ends */
	int nrun, nkp;
	long runoff[FLAT_MAX_RUNS];    /* a run's first float, from the tile's first in plane 0 */
	int runlen[FLAT_MAX_RUNS];
	int kprun[FLAT_MAX_KPARTS + 1];   /* part i: runs kprun[i] .. kprun[i+1]-1 */
	long kprow[FLAT_MAX_KPARTS];      /* its first row of K */
} flat_geom;

static int imin(int a, int b)
{
	return a < b ? a : b;
}

static int flat_fits(const geom *g)
{
	return g->oc % 8 == 0 && g->groups <= 1 && g->sh >= 1 && g->sw >= 1 &&
	       (long)g->kh * imin(g->sw, g->kw) <= FLAT_MAX_SEGS &&
	       (long)g->kh * g->kw * g->c <= (long)FLAT_KPART * FLAT_MAX_KPARTS;
}

static void flat_init(const geom *g, flat_geom *f, isa_kind isa)
{
	int c = g->c;
	long row, r, K = (long)g->kh * g->kw * c;
	long kpart = isa == ISA_AVX512 && g->oc >= 64 && K > FLAT_KPART &&
		     K <= (long)FLAT_KPART_WIDE * FLAT_MAX_KPARTS ? FLAT_KPART_WIDE : FLAT_KPART;

	/* Past FLAT_WHOLE_ROWS_CIN a plane holds only its phase's pixels, also where that is the
	 * only phase (kw < sw): a 1x1 of stride 2 then copies the quarter of its input it reads,
	 * not every other row whole. Measured (conv_bench nets 2, batch 10, AMD EPYC Zen 5,
	 * GFLOP/s, alternating; caches flushed before each call, as in a network): ResNet-18's
	 * downsamples 300-308 -> 334-339 (64->128), 328-338 -> 359-360 (128->256). */
	int whole = c <= FLAT_WHOLE_ROWS_CIN;

	f->psh = imin(g->sh, g->kh);
	f->psw = whole ? 1 : imin(g->sw, g->kw);
	f->xs = whole ? g->sw : 1, f->cs = g->sw / f->xs;
	f->R = g->ow + (g->kw - 1) / g->sw;
	f->hr = (g->kh - 1) / g->sh;
	f->inplace = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 &&
		     g->pl == 0 && g->h == g->oh && g->w == g->ow;
	row = (long)f->R * f->xs * c * (f->inplace ? 1 : f->psh * f->psw);
	r = FLAT_BAND_FLOATS / row - (f->inplace ? 0 : f->hr);
	/* in place, a chunk may run on into the next images: their rows follow */
	f->rows = r < 1 ? 1 : !f->inplace && r > g->oh ? g->oh : r > (1 << 24) ? 1 << 24 : (int)r;
	f->plane = (long)(f->rows + f->hr) * f->R * f->xs * c;
	f->slot = f->inplace ? 0 : f->psh * f->psw * f->plane;
	r = f->inplace ? 1 : FLAT_BAND_FLOATS / f->slot;
	f->slots = r < 1 ? 1 : r > FLAT_MAX_CHUNKS ? FLAT_MAX_CHUNKS : (int)r;
	f->nrun = f->nkp = 0;
	long krow = 0, fill = 0;

	for (int ky = 0; ky < g->kh; ky++)
		for (int cp = 0; cp < f->psw; cp++) {
			long off = ((long)(ky % g->sh) * f->psw + cp) * f->plane +
				   (long)(ky / g->sh) * f->R * f->xs * c;
			int len = ((g->kw - 1 - cp) / f->cs + 1) * c;

			for (int j = 0; j < len;) {
				int take = len - j < kpart - fill ? len - j : (int)(kpart - fill);

				if (fill == 0)
					f->kprun[f->nkp] = f->nrun, f->kprow[f->nkp++] = krow;
				f->runoff[f->nrun] = off + j, f->runlen[f->nrun++] = take;
				j += take, krow += take, fill += take;
				if (fill == kpart)
					fill = 0;
			}
		}
	f->kprun[f->nkp] = f->nrun;
}

static size_t flat_workspace(const geom *g, int threads)
{
	flat_geom f;

	flat_init(g, &f, ISA_AVX2);   /* the parts of K leave the planes' sizes as they are */
	return block_floats(g) + (size_t)(threads < 1 ? 1 : threads) * f.slots * f.slot;
}

size_t convdirect_workspace(const geom *g, int threads)
{
	size_t n = packed_floats(g) + (size_t)(threads < 1 ? 1 : threads) * pad_floats(g);

	if (flat_fits(g) && flat_workspace(g, threads) > n)
		n = flat_workspace(g, threads);
	return n;
}

#ifdef CONV_AVX2
/* Output rows oy0..oy1 of one image read padded rows oy0..oy1+kh-1: row r is input row
 * oy0+r-pt, column x input column x-pl, zero outside the image. */
static void pad_rows(const geom *g, float *dst, const float *img, int oy0, int oy1)
{
	int wp = g->ow + g->kw - 1, c = g->c;
	int x0 = g->pl > 0 ? g->pl : 0, x1 = g->w + g->pl < wp ? g->w + g->pl : wp;

	for (int r = 0; r < oy1 - oy0 + g->kh - 1; r++, dst += (long)wp * c) {
		int iy = oy0 + r - g->pt;

		if (iy < 0 || iy >= g->h || x0 >= x1) {
			memset(dst, 0, sizeof *dst * wp * c);
			continue;
		}
		memset(dst, 0, sizeof *dst * x0 * c);
		memcpy(dst + (long)x0 * c, img + ((long)iy * g->w + x0 - g->pl) * c,
		       sizeof *dst * (x1 - x0) * c);
		memset(dst + (long)x1 * c, 0, sizeof *dst * (wp - x1) * c);
	}
}

/* np pixels x nv*8 channels of output: in at the tile's first window (padded rows of rs
 * floats), w and b at the tile's first channel. */
CONV_AVX2 INLINE void fwd_tile(int np, int nv, const float *in, long rs, int kh, int kwc, int cin,
			       const float *w, int wst, int cout, const float *b, float *out, int relu,
			       const float *mask, int mact)
{
	__m256 acc[CONV_PX][4], zero = _mm256_setzero_ps();

#pragma GCC unroll 4
	for (int p = 0; p < np; p++)
#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
			acc[p][v] = b ? _mm256_loadu_ps(b + 8 * v) : zero;
	for (int ky = 0; ky < kh; ky++) {
		const float *ip = in + ky * rs, *wp = w + (long)ky * kwc * wst;

		for (int j = 0; j < kwc; j++, ip++, wp += wst) {
			__m256 x[CONV_PX];

#pragma GCC unroll 4
			for (int p = 0; p < np; p++)
				x[p] = _mm256_broadcast_ss(ip + p * cin);
#pragma GCC unroll 4
			for (int v = 0; v < nv; v++) {
				__m256 wv = _mm256_loadu_ps(wp + 8 * v);

#pragma GCC unroll 4
				for (int p = 0; p < np; p++)
					acc[p][v] = _mm256_fmadd_ps(x[p], wv, acc[p][v]);
			}
		}
	}
#pragma GCC unroll 4
	for (int p = 0; p < np; p++)
#pragma GCC unroll 4
		for (int v = 0; v < nv; v++) {
			__m256 a = acc[p][v];

			if (relu)
				a = _mm256_max_ps(a, zero);
			if (relu == 2)
				a = _mm256_min_ps(a, _mm256_set1_ps(6.0f));
			if (mask)
				a = actmask_keep256(a, mask + p * cout + 8 * v, mact);
			_mm256_storeu_ps(out + p * cout + 8 * v, a);
		}
}

CONV_AVX2 INLINE void fwd_tile_nv(int np, int nv, const float *in, long rs, int kh, int kwc,
				  int cin, const float *w, int wst, int cout, const float *b,
				  float *out, int relu, const float *mask, int mact)
{
	switch (nv) {
	case 4: fwd_tile(np, 4, in, rs, kh, kwc, cin, w, wst, cout, b, out, relu, mask, mact); break;
	case 3: fwd_tile(np, 3, in, rs, kh, kwc, cin, w, wst, cout, b, out, relu, mask, mact); break;
	case 2: fwd_tile(np, 2, in, rs, kh, kwc, cin, w, wst, cout, b, out, relu, mask, mact); break;
	default: fwd_tile(np, 1, in, rs, kh, kwc, cin, w, wst, cout, b, out, relu, mask, mact); break;
	}
}

/* One output row: in at its first window's top-left in the padded rows. */
CONV_AVX2 static void fwd_row(const geom *g, const float *in, long rs, const float *w,
			      const float *b, float *out, int relu, const float *mask, int mact)
{
	int cin = g->c, cout = g->oc, kwc = g->kw * cin, packed = cout > 32;
	int wst = packed ? 32 : cout;

	for (int cb = 0; cb < cout; cb += 32) {
		int nv = (cout - cb) / 8 < 4 ? (cout - cb) / 8 : 4, ox = 0;
		const float *bc = b ? b + cb : NULL;
		const float *wc = packed ? w + (long)cb * g->kh * kwc : w + cb;

		for (; ox + CONV_PX <= g->ow; ox += CONV_PX)
			fwd_tile_nv(CONV_PX, nv, in + (long)ox * cin, rs, g->kh, kwc, cin, wc, wst, cout, bc,
				    out + (long)ox * cout + cb, relu, mask ? mask + (long)ox * cout + cb : NULL,
				    mact);
		for (; ox < g->ow; ox++)
			fwd_tile_nv(1, nv, in + (long)ox * cin, rs, g->kh, kwc, cin, wc, wst, cout, bc,
				    out + (long)ox * cout + cb, relu, mask ? mask + (long)ox * cout + cb : NULL,
				    mact);
	}
}

/* AVX-512: np pixels x nv (1 or 2) vectors of 16 output channels, the last vector's lanes
 * in ml (a block of 8 or 24 channels ends mid-vector). The weights of a window column are
 * loaded once and each pixel's input broadcast as it is used, so 24 accumulators, 2 weight
 * vectors and a broadcast fit the 32 registers without spilling. */
CONV_AVX512 INLINE void fwd_tile512(int np, int nv, const float *in, long rs, int kh, int kwc,
				    int cin, const float *w, int wst, int cout, const float *b,
				    float *out, int relu, const float *mask, int mact, __mmask16 ml)
{
	__m512 acc[CONV512_PX][2], zero = _mm512_setzero_ps();
	__mmask16 m[2] = { nv == 1 ? ml : 0xffff, ml };

#pragma GCC unroll 12
	for (int p = 0; p < np; p++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			acc[p][v] = b ? _mm512_maskz_loadu_ps(m[v], b + 16 * v) : zero;
	for (int ky = 0; ky < kh; ky++) {
		const float *ip = in + ky * rs, *wp = w + (long)ky * kwc * wst;

		for (int j = 0; j < kwc; j++, ip++, wp += wst) {
			__m512 wv[2];

#pragma GCC unroll 2
			for (int v = 0; v < nv; v++)
				wv[v] = _mm512_maskz_loadu_ps(m[v], wp + 16 * v);
#pragma GCC unroll 12
			for (int p = 0; p < np; p++) {
				__m512 x = _mm512_set1_ps(ip[p * cin]);

#pragma GCC unroll 2
				for (int v = 0; v < nv; v++)
					acc[p][v] = _mm512_fmadd_ps(x, wv[v], acc[p][v]);
			}
		}
	}
#pragma GCC unroll 12
	for (int p = 0; p < np; p++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++) {
			__m512 a = acc[p][v];

			if (relu)
				a = _mm512_max_ps(a, zero);
			if (relu == 2)
				a = _mm512_min_ps(a, _mm512_set1_ps(6.0f));
			if (mask)
				a = actmask_keep512(a, mask + p * cout + 16 * v, m[v], mact);
			_mm512_mask_storeu_ps(out + p * cout + 16 * v, m[v], a);
		}
}

CONV_AVX512 INLINE void fwd_tile512_nv(int np, int nv, const float *in, long rs, int kh, int kwc,
				       int cin, const float *w, int wst, int cout, const float *b,
				       float *out, int relu, const float *mask, int mact, __mmask16 ml)
{
	if (nv == 2)
		fwd_tile512(np, 2, in, rs, kh, kwc, cin, w, wst, cout, b, out, relu, mask, mact, ml);
	else
		fwd_tile512(np, 1, in, rs, kh, kwc, cin, w, wst, cout, b, out, relu, mask, mact, ml);
}

/* fwd_row with AVX-512 tiles: 12 pixels, then 4, then 1 for the row's end. */
CONV_AVX512 static void fwd_row512(const geom *g, const float *in, long rs, const float *w,
				   const float *b, float *out, int relu, const float *mask, int mact)
{
	int cin = g->c, cout = g->oc, kwc = g->kw * cin, packed = cout > 32;
	int wst = packed ? 32 : cout;

	for (int cb = 0; cb < cout; cb += 32) {
		int nc = cout - cb < 32 ? cout - cb : 32, nv = (nc + 15) / 16, ox = 0;
		__mmask16 ml = (__mmask16)(0xffffu >> (16 * nv - nc));
		const float *bc = b ? b + cb : NULL;
		const float *wc = packed ? w + (long)cb * g->kh * kwc : w + cb;

#define FWD512(np)                                                                                 \
	fwd_tile512_nv(np, nv, in + (long)ox * cin, rs, g->kh, kwc, cin, wc, wst, cout, bc,        \
		       out + (long)ox * cout + cb, relu, mask ? mask + (long)ox * cout + cb : NULL, mact, \
		       ml)
		for (; ox + CONV512_PX <= g->ow; ox += CONV512_PX)
			FWD512(CONV512_PX);
		for (; ox + 4 <= g->ow; ox += 4)
			FWD512(4);
		for (; ox < g->ow; ox++)
			FWD512(1);
#undef FWD512
	}
}

typedef struct {
	const geom *g;
	float *out, *ws;
	const float *in, *w, *b, *mask;
	int B, relu, mact;
	isa_kind isa;
} fwd_job;

/* Worker k's share of the batch's output rows, image by image, band by band: pad the
 * rows a band reads, then run each of its output rows. */
static void fwd_worker(void *ctx, int k, int n)
{
	const fwd_job *j = ctx;
	const geom *g = j->g;
	long lo, hi, rs = (long)(g->ow + g->kw - 1) * g->c, osz = (long)g->ow * g->oc;
	float *buf = j->ws + packed_floats(g) + (size_t)k * pad_floats(g);

	par_share((long)j->B * g->oh, k, n, &lo, &hi);
	while (lo < hi) {
		long img = lo / g->oh;
		int oy0 = (int)(lo % g->oh), oy1 = hi - img * g->oh < g->oh ? (int)(hi - img * g->oh) : g->oh;

		if (oy1 - oy0 > band_rows(g))
			oy1 = oy0 + band_rows(g);

		pad_rows(g, buf, j->in + img * g->h * g->w * g->c, oy0, oy1);
		for (int oy = oy0; oy < oy1; oy++) {
			long o = (img * g->oh + oy) * osz;

			if (j->isa == ISA_AVX512)
				fwd_row512(g, buf + (oy - oy0) * rs, rs, j->w, j->b, j->out + o, j->relu,
					   j->mask ? j->mask + o : NULL, j->mact);
			else
				fwd_row(g, buf + (oy - oy0) * rs, rs, j->w, j->b, j->out + o, j->relu,
					j->mask ? j->mask + o : NULL, j->mact);
		}
		lo += oy1 - oy0;
	}
}

/* Chunk (img, oy0, nr rows) of the plane path: its planes, zero outside the image. */
static void flat_pad(const geom *g, const flat_geom *f, float *dst, const float *img, int oy0,
		     int nr)
{
	int c = g->c, cs = f->cs, px = f->R * f->xs;

	for (int a = 0; a < f->psh; a++)
		for (int cp = 0; cp < f->psw; cp++) {
			float *d = dst + ((long)a * f->psw + cp) * f->plane;
			/* the pixels j whose column j*cs + cp - pl is in the image: j0..j1-1 */
			int lo = g->pl - cp, hi = g->w - 1 + g->pl - cp;
			int j0 = lo <= 0 ? 0 : (lo + cs - 1) / cs, j1 = hi < 0 ? 0 : hi / cs + 1;

			j1 = j1 < px ? j1 : px;
			j0 = j0 < j1 ? j0 : j1;
			for (int i = 0; i < nr + f->hr; i++, d += (long)px * c) {
				int iy = (oy0 + i) * g->sh + a - g->pt;

				if (iy < 0 || iy >= g->h || j0 == j1) {
					memset(d, 0, sizeof *d * px * c);
					continue;
				}
				const float *src = img + ((long)iy * g->w + (long)j0 * cs + cp - g->pl) * c;

				memset(d, 0, sizeof *d * j0 * c);
				if (cs == 1)
					memcpy(d + (long)j0 * c, src, sizeof *d * (j1 - j0) * c);
				else
					for (int j = j0; j < j1; j++, src += (long)cs * c)
						memcpy(d + (long)j * c, src, sizeof *d * c);
				memset(d + (long)j1 * c, 0, sizeof *d * (px - j1) * c);
			}
		}
}

/* np positions of a chunk's planes from the tile's (in: its first input float in plane 0)
 * x nv (1, 2; or 4, all full) vectors of 16 output channels (with nv < 4 the last one's
 * lanes in ml), over part kp of K (w: its weights, packed 32 a row; vectors 2 and 3 from
 * the next block, w2 floats on). The sums start from the bias (b; NULL: zero) in
 * the first part, else from out, where the part before left them; the last applies the
 * activation and the mask. x: the first position's column (of R); out, mask: the first
 * kept output at or after it; ps: floats from one position to the next. Positions past ow
 * are computed and not stored. */
CONV_AVX512 INLINE void flat_tile512(int np, int nv, const float *in, const flat_geom *f, int kp,
				     int ps, const float *w, long w2, const float *b, float *out,
				     int cout, int relu, const float *mask, int mact, __mmask16 ml, int x,
				     int ow, int pf)
{
	__m512 acc[CONV512_PX][4], zero = _mm512_setzero_ps();
	__mmask16 m[4] = { nv == 1 ? ml : 0xffff, nv == 2 ? ml : 0xffff, 0xffff, 0xffff };
	const float *wp = w;
	int first = kp == 0, last = kp == f->nkp - 1, xs = x;
	float *o = out;

#pragma GCC unroll 12
	for (int p = 0; p < np; p++) {
		int keep = !first && x < ow;

#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
			acc[p][v] = keep ? _mm512_maskz_loadu_ps(m[v], o + 16 * v) : first && b ?
				_mm512_maskz_loadu_ps(m[v], b + 16 * v) : zero;
		o += keep ? cout : 0;
		if (++x == f->R)
			x = 0;
	}
	for (int r = f->kprun[kp]; r < f->kprun[kp + 1]; r++) {
		const float *ip = in + f->runoff[r];

		for (int j = 0, n = f->runlen[r]; j < n; j++, ip++, wp += 32) {
			__m512 wv[4];

			if (pf)
				_mm_prefetch((const char *)(ip + (np + j % np) * (long)ps), _MM_HINT_T0);

#pragma GCC unroll 4
			for (int v = 0; v < nv; v++)
				wv[v] = _mm512_maskz_loadu_ps(m[v], wp + (v < 2 ? 16 * v : w2 + 16 * (v - 2)));
#pragma GCC unroll 12
			for (int p = 0; p < np; p++) {
				__m512 xv = _mm512_set1_ps(ip[p * ps]);

#pragma GCC unroll 4
				for (int v = 0; v < nv; v++)
					acc[p][v] = _mm512_fmadd_ps(xv, wv[v], acc[p][v]);
			}
		}
	}
	x = xs;
#pragma GCC unroll 12
	for (int p = 0; p < np; p++) {
		if (x < ow) {
#pragma GCC unroll 4
			for (int v = 0; v < nv; v++) {
				__m512 a = acc[p][v];

				if (last && relu)
					a = _mm512_max_ps(a, zero);
				if (last && relu == 2)
					a = _mm512_min_ps(a, _mm512_set1_ps(6.0f));
				if (last && mask)
					a = actmask_keep512(a, mask + 16 * v, m[v], mact);
				_mm512_mask_storeu_ps(out + 16 * v, m[v], a);
			}
			out += cout;
			if (mask)
				mask += cout;
		}
		if (++x == f->R)
			x = 0;
	}
}

/* flat_tile512 on AVX2: np positions x nv (1 to 4) vectors of 8 output channels of one
 * block of 32 (w: part kp's weights, packed 32 a row), every output summed as there (bias
 * or the part before, then the runs in order): the same bits. Each position's input is
 * broadcast before the weights are loaded one vector at a time, so 3 positions x 4 vectors
 * take 12 accumulators, 3 broadcasts and a weight of the 16 registers, as fwd_tile does. */
CONV_AVX2 INLINE void flat_tile256(int np, int nv, const float *in, const flat_geom *f, int kp,
				   int ps, const float *w, const float *b, float *out, int cout,
				   int relu, const float *mask, int mact, int x, int ow)
{
	__m256 acc[FLAT256_MAXP][4], zero = _mm256_setzero_ps();
	const float *wp = w;
	int first = kp == 0, last = kp == f->nkp - 1, xs = x;
	float *o = out;

#pragma GCC unroll 8
	for (int p = 0; p < np; p++) {
		int keep = !first && x < ow;

#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
			acc[p][v] = keep ? _mm256_loadu_ps(o + 8 * v) : first && b ?
				_mm256_loadu_ps(b + 8 * v) : zero;
		o += keep ? cout : 0;
		if (++x == f->R)
			x = 0;
	}
	for (int r = f->kprun[kp]; r < f->kprun[kp + 1]; r++) {
		const float *ip = in + f->runoff[r];

		for (int j = 0, n = f->runlen[r]; j < n; j++, ip++, wp += 32) {
			__m256 xv[FLAT256_MAXP];

#pragma GCC unroll 8
			for (int p = 0; p < np; p++)
				xv[p] = _mm256_broadcast_ss(ip + p * ps);
#pragma GCC unroll 4
			for (int v = 0; v < nv; v++) {
				__m256 wv = _mm256_loadu_ps(wp + 8 * v);

#pragma GCC unroll 8
				for (int p = 0; p < np; p++)
					acc[p][v] = _mm256_fmadd_ps(xv[p], wv, acc[p][v]);
			}
		}
	}
	x = xs;
#pragma GCC unroll 8
	for (int p = 0; p < np; p++) {
		if (x < ow) {
#pragma GCC unroll 4
			for (int v = 0; v < nv; v++) {
				__m256 a = acc[p][v];

				if (last && relu)
					a = _mm256_max_ps(a, zero);
				if (last && relu == 2)
					a = _mm256_min_ps(a, _mm256_set1_ps(6.0f));
				if (last && mask)
					a = actmask_keep256(a, mask + 8 * v, mact);
				_mm256_storeu_ps(out + 8 * v, a);
			}
			out += cout;
			if (mask)
				mask += cout;
		}
		if (++x == f->R)
			x = 0;
	}
}

typedef struct {
	const geom *g;
	const flat_geom *f;
	float *out, *ws;
	const float *in, *w, *b, *mask;
	int B, relu, mact, pf;
} flat_job;

/* A position of a chunk as its plane row y and column x (of R), moved on tile by tile
 * without a division: two 64-bit divisions a tile had cost as much as a short-K tile's
 * work (a first layer's K is 27). */
typedef struct {
	long y;
	int x;
} flat_pos;

/* Where the position lands among the chunk's ow-wide output rows: the first kept output
 * at or after it. */
static inline long flat_out(const flat_pos *p, int ow)
{
	return p->y * ow + (p->x < ow ? p->x : ow);
}

static inline void flat_step(flat_pos *p, const flat_geom *f, int n)
{
	for (p->x += n; p->x >= f->R; p->x -= f->R)
		p->y++;
}

/* Every AVX-512 tile of a chunk's Q positions (in: its plane 0) for part kp of the block(s)
 * of output channels from cb (wc: the part's weights; oc0, mc0: the chunk's first output
 * and mask at cb). 6 positions x 64 channels where 64 are left (two blocks of weights at
 * once): 10 loads for 24 FMAs, not 14, and a 7-wide map's 61 positions are 10 tiles of 6
 * and one, not 5 of 12 and one. Measured (conv_bench nets 1, CPU ms): 7x7x512 3x3 14.9 ->
 * 13.3-14.2, 14x14x256 10.5 -> 9.8, 112x112 16->96 1x1 6.5 -> 3.4, conv1 7x7 s2 11.0 ->
 * 10.2; the row kernels stay faster on 28- and 56-wide 3x3s (8.1 against 8.9). */
CONV_AVX512 static void flat_chunk512(const flat_job *j, const float *in, long Q, int kp, int cb,
				      const float *wc, float *oc0, const float *mc0)
{
	const flat_geom *f = j->f;
	int cin = j->g->c, cout = j->g->oc, ow = j->g->ow, wide = cout - cb >= 64;
	int ncb = cout - cb < 32 ? cout - cb : 32, nv = wide ? 4 : (ncb + 15) / 16;
	__mmask16 ml = (__mmask16)(wide ? 0xffffu : 0xffffu >> (16 * nv - ncb));
	const float *bc = j->b ? j->b + cb : NULL;
	long q = 0, K = (long)j->g->kh * j->g->kw * cin;
	int ps = cin * f->xs;   /* floats from one position to the next */
	flat_pos at = { 0, 0 };

#define FLAT512(np, nv)                                                                            \
	do {                                                                                       \
		long o_ = flat_out(&at, ow) * cout;                                                \
		flat_tile512(np, nv, in + q * ps, f, kp, ps, wc, 32 * K, bc, oc0 + o_, cout,       \
			     j->relu, mc0 ? mc0 + o_ : NULL, j->mact, ml, at.x, ow, j->pf);         \
		flat_step(&at, f, np);                                                             \
	} while (0)
	if (nv == 4) {
		for (; q + 6 <= Q; q += 6)
			FLAT512(6, 4);
		for (; q + 2 <= Q; q += 2)
			FLAT512(2, 4);
		for (; q < Q; q++)
			FLAT512(1, 4);
		return;
	}
	for (; q + CONV512_PX <= Q; q += CONV512_PX)
		if (nv == 2)
			FLAT512(CONV512_PX, 2);
		else
			FLAT512(CONV512_PX, 1);
	for (; q + 4 <= Q; q += 4)
		if (nv == 2)
			FLAT512(4, 2);
		else
			FLAT512(4, 1);
	for (; q < Q; q++)
		if (nv == 2)
			FLAT512(1, 2);
		else
			FLAT512(1, 1);
#undef FLAT512
}

/* flat_chunk512 on AVX2, one block of 32 channels at a time: tiles of 3 positions x 4
 * vectors, or where the block is narrower (cout not a multiple of 32) as many positions
 * as leave the 16 registers unspilled, then single positions. */
CONV_AVX2 static void flat_chunk256(const flat_job *j, const float *in, long Q, int kp, int cb,
				    const float *wc, float *oc0, const float *mc0)
{
	const flat_geom *f = j->f;
	int cout = j->g->oc, ow = j->g->ow, ps = j->g->c * f->xs;
	int nv = cout - cb < 32 ? (cout - cb) / 8 : 4;
	const float *bc = j->b ? j->b + cb : NULL;
	long q = 0;
	flat_pos at = { 0, 0 };

#define FLAT256(np, nv)                                                                            \
	do {                                                                                       \
		long o_ = flat_out(&at, ow) * cout;                                                \
		flat_tile256(np, nv, in + q * ps, f, kp, ps, wc, bc, oc0 + o_, cout, j->relu,      \
			     mc0 ? mc0 + o_ : NULL, j->mact, at.x, ow);                             \
		flat_step(&at, f, np);                                                             \
	} while (0)
#define FLAT256_RUN(np, nv)                                                                        \
	for (; q + np <= Q; q += np)                                                               \
		FLAT256(np, nv);                                                                   \
	for (; q < Q; q++)                                                                         \
		FLAT256(1, nv)
	switch (nv) {
	case 4: FLAT256_RUN(3, 4); break;
	case 3: FLAT256_RUN(3, 3); break;
	case 2: FLAT256_RUN(5, 2); break;
	default: FLAT256_RUN(FLAT256_MAXP, 1); break;
	}
#undef FLAT256_RUN
#undef FLAT256
}

/* Worker k's share of the batch's output rows, a band of chunks at a time: the chunks'
 * planes, then for each block of 32 output channels every tile of the band; wide: on
 * AVX-512's tiles (which may take two blocks at once), else AVX2's. */
INLINE void flat_worker(const flat_job *j, int k, int n, int wide)
{
	const geom *g = j->g;
	const flat_geom *f = j->f;
	int cin = g->c, cout = g->oc, ow = g->ow;
	long lo, hi, K = (long)g->kh * g->kw * cin;
	float *buf = j->ws + block_floats(g) + (size_t)k * f->slots * f->slot;

	par_share((long)j->B * g->oh, k, n, &lo, &hi);
	while (lo < hi) {
		const float *chin[FLAT_MAX_CHUNKS];   /* a chunk's plane 0 */
		long r0[FLAT_MAX_CHUNKS];
		int nr[FLAT_MAX_CHUNKS], nc = 0;

		for (; nc < f->slots && lo < hi; nc++) {
			long img = lo / g->oh;
			int oy0 = (int)(lo % g->oh), rows = f->rows;

			if (!f->inplace && rows > g->oh - oy0)
				rows = g->oh - oy0;
			if (rows > hi - lo)
				rows = (int)(hi - lo);
			r0[nc] = lo, nr[nc] = rows;
			if (f->inplace) {
				chin[nc] = j->in + lo * ow * cin;
			} else {
				float *d = buf + (size_t)nc * f->slot;

				flat_pad(g, f, d, j->in + img * g->h * g->w * cin, oy0, rows);
				chin[nc] = d;
			}
			lo += rows;
		}
		for (int cb = 0, step; cb < cout; cb += step) {
			step = wide && cout - cb >= 64 ? 64 : 32;
			for (int kp = 0; kp < f->nkp; kp++) {
				const float *wc = j->w + (long)cb * K + f->kprow[kp] * 32;

				for (int ch = 0; ch < nc; ch++) {
					long Q = (long)(nr[ch] - 1) * f->R + ow;
					float *oc0 = j->out + r0[ch] * ow * cout + cb;
					const float *mc0 = j->mask ? j->mask + r0[ch] * ow * cout + cb : NULL;

					if (wide)
						flat_chunk512(j, chin[ch], Q, kp, cb, wc, oc0, mc0);
					else
						flat_chunk256(j, chin[ch], Q, kp, cb, wc, oc0, mc0);
				}
			}
		}
	}
}

CONV_AVX512 static void flat_worker512(void *ctx, int k, int n)
{
	flat_worker(ctx, k, n, 1);
}

CONV_AVX2 static void flat_worker256(void *ctx, int k, int n)
{
	flat_worker(ctx, k, n, 0);
}

/* nc input channels x nv*8 output channels of dw, summed over n output pixels of a row:
 * in at the first pixel's input (channel ci), d at its dout (channel cb). */
CONV_AVX2 INLINE void wgrad_tile(int nc, int nv, const float *in0, int cin, const float *d0,
				 int cout, int n, int nr, long ys, long ds, float *dw)
{
	__m256 acc[CONV_CI][4];

#pragma GCC unroll 4
	for (int c = 0; c < nc; c++)
#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
			acc[c][v] = _mm256_loadu_ps(dw + (long)c * cout + 8 * v);
	for (int r = 0; r < nr; r++) {
		const float *in = in0 + r * ys, *d = d0 + r * ds;

		for (int p = 0; p < n; p++, in += cin, d += cout) {
			__m256 x[CONV_CI];

#pragma GCC unroll 4
			for (int c = 0; c < nc; c++)
				x[c] = _mm256_broadcast_ss(in + c);
#pragma GCC unroll 4
			for (int v = 0; v < nv; v++) {
				__m256 dv = _mm256_loadu_ps(d + 8 * v);

#pragma GCC unroll 4
				for (int c = 0; c < nc; c++)
					acc[c][v] = _mm256_fmadd_ps(x[c], dv, acc[c][v]);
			}
		}
	}
#pragma GCC unroll 4
	for (int c = 0; c < nc; c++)
#pragma GCC unroll 4
		for (int v = 0; v < nv; v++)
			_mm256_storeu_ps(dw + (long)c * cout + 8 * v, acc[c][v]);
}

CONV_AVX2 INLINE void wgrad_tile_nv(int nc, int nv, const float *in, int cin, const float *d,
				    int cout, int n, int nr, long ys, long ds, float *dw)
{
	switch (nv) {
	case 4: wgrad_tile(nc, 4, in, cin, d, cout, n, nr, ys, ds, dw); break;
	case 3: wgrad_tile(nc, 3, in, cin, d, cout, n, nr, ys, ds, dw); break;
	case 2: wgrad_tile(nc, 2, in, cin, d, cout, n, nr, ys, ds, dw); break;
	default: wgrad_tile(nc, 1, in, cin, d, cout, n, nr, ys, ds, dw); break;
	}
}

/* AVX-512: nc input channels x nv (1 or 2) vectors of output channels of dw (the last
 * vector's lanes in ml), summed over n output pixels of a row. */
CONV_AVX512 INLINE void wgrad_tile512(int nc, int nv, const float *in0, int cin, const float *d0,
				      int cout, int n, int nr, long ys, long ds, float *dw, __mmask16 ml)
{
	__m512 acc[CONV512_CI][2];
	__mmask16 m[2] = { nv == 1 ? ml : 0xffff, ml };

#pragma GCC unroll 12
	for (int c = 0; c < nc; c++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			acc[c][v] = _mm512_maskz_loadu_ps(m[v], dw + (long)c * cout + 16 * v);
	for (int r = 0; r < nr; r++) {
		const float *in = in0 + r * ys, *d = d0 + r * ds;

		for (int p = 0; p < n; p++, in += cin, d += cout) {
			__m512 dv[2];

#pragma GCC unroll 2
			for (int v = 0; v < nv; v++)
				dv[v] = _mm512_maskz_loadu_ps(m[v], d + 16 * v);
#pragma GCC unroll 12
			for (int c = 0; c < nc; c++) {
				__m512 x = _mm512_set1_ps(in[c]);

#pragma GCC unroll 2
				for (int v = 0; v < nv; v++)
					acc[c][v] = _mm512_fmadd_ps(x, dv[v], acc[c][v]);
			}
		}
	}
#pragma GCC unroll 12
	for (int c = 0; c < nc; c++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			_mm512_mask_storeu_ps(dw + (long)c * cout + 16 * v, m[v], acc[c][v]);
}

CONV_AVX512 INLINE void wgrad_tile512_nv(int nc, int nv, const float *in, int cin, const float *d,
					 int cout, int n, int nr, long ys, long ds, float *dw,
					 __mmask16 ml)
{
	if (nv == 2)
		wgrad_tile512(nc, 2, in, cin, d, cout, n, nr, ys, ds, dw, ml);
	else
		wgrad_tile512(nc, 1, in, cin, d, cout, n, nr, ys, ds, dw, ml);
}

/* One part's nc input channels of dw, every output channel, over n pixels of a row: input
 * channels 12 at a time, then 8, 4, then the rest at once (a part ends where cin does; a
 * first layer's 3 channels make 6 accumulators, where 2 + 1 would leave the FMA units
 * waiting on their latency). */
CONV_AVX512 static void wgrad_row512(int nc, const float *in, int cin, const float *d, int cout,
				     int n, int nr, long ys, long ds, float *dw)
{
	for (int cb = 0; cb < cout; cb += 32) {
		int no = cout - cb < 32 ? cout - cb : 32, nv = (no + 15) / 16;
		__mmask16 ml = (__mmask16)(0xffffu >> (16 * nv - no));

		for (int c = 0; c < nc;) {
			int left = nc - c, take = left >= 12 ? 12 : left >= 8 ? 8 : left >= 4 ? 4 : left;
			const float *ic = in + c;
			float *dc = dw + (long)c * cout + cb;

			switch (take) {
			case 12: wgrad_tile512_nv(12, nv, ic, cin, d + cb, cout, n, nr, ys, ds, dc, ml); break;
			case 8: wgrad_tile512_nv(8, nv, ic, cin, d + cb, cout, n, nr, ys, ds, dc, ml); break;
			case 4: wgrad_tile512_nv(4, nv, ic, cin, d + cb, cout, n, nr, ys, ds, dc, ml); break;
			case 3: wgrad_tile512_nv(3, nv, ic, cin, d + cb, cout, n, nr, ys, ds, dc, ml); break;
			case 2: wgrad_tile512_nv(2, nv, ic, cin, d + cb, cout, n, nr, ys, ds, dc, ml); break;
			default: wgrad_tile512_nv(1, nv, ic, cin, d + cb, cout, n, nr, ys, ds, dc, ml); break;
			}
			c += take;
		}
	}
}

/* AVX2 on a 1x1's dw: nc (up to 6) input channels x nv (1 or 2) vectors of 8 output
 * channels, summed over n pixels. Against 3 x 32 (wgrad_tile) it reads a pixel's inputs
 * 24 bytes at a time, not 12, and each dout vector once for 6 channels, not 3: a 1x1 of
 * many input channels reads a new line of them for every pixel of a part. The dout
 * vectors are loaded first, then each channel broadcast in turn (15 registers), where
 * wgrad_tile's order, every broadcast first, would hold 19 of the 16. */
CONV_AVX2 INLINE void wgrad_tile6(int nc, int nv, const float *in0, int cin, const float *d0,
				  int cout, int n, int nr, long ys, long ds, float *dw)
{
	__m256 acc[CONV_CI1][2];

#pragma GCC unroll 6
	for (int c = 0; c < nc; c++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			acc[c][v] = _mm256_loadu_ps(dw + (long)c * cout + 8 * v);
	for (int r = 0; r < nr; r++) {
		const float *in = in0 + r * ys, *d = d0 + r * ds;

		for (int p = 0; p < n; p++, in += cin, d += cout) {
			__m256 dv[2];

#pragma GCC unroll 2
			for (int v = 0; v < nv; v++)
				dv[v] = _mm256_loadu_ps(d + 8 * v);
#pragma GCC unroll 6
			for (int c = 0; c < nc; c++) {
				__m256 x = _mm256_broadcast_ss(in + c);

#pragma GCC unroll 2
				for (int v = 0; v < nv; v++)
					acc[c][v] = _mm256_fmadd_ps(x, dv[v], acc[c][v]);
			}
		}
	}
#pragma GCC unroll 6
	for (int c = 0; c < nc; c++)
#pragma GCC unroll 2
		for (int v = 0; v < nv; v++)
			_mm256_storeu_ps(dw + (long)c * cout + 8 * v, acc[c][v]);
}

/* A part's nc (up to 6) input channels of a 1x1's dw, every output channel, over n pixels
 * of a row: 16 output channels at a time, then 8. */
CONV_AVX2 static void wgrad_row6(int nc, const float *in, int cin, const float *d, int cout,
				 int n, int nr, long ys, long ds, float *dw)
{
	for (int cb = 0; cb < cout; cb += 16) {
		int nv = cout - cb >= 16 ? 2 : 1;

		switch (nc * 2 + nv - 1) {
#define TILE6(c)                                                                                 \
	case 2 * c: wgrad_tile6(c, 1, in, cin, d + cb, cout, n, nr, ys, ds, dw + cb); break;       \
	case 2 * c + 1: wgrad_tile6(c, 2, in, cin, d + cb, cout, n, nr, ys, ds, dw + cb); break;
		TILE6(6) TILE6(5) TILE6(4) TILE6(3) TILE6(2) TILE6(1)
#undef TILE6
		}
	}
}

/* db [cout] += the n pixels of d, in pixel order (as a row-by-row sum would). */
CONV_AVX2 static void bias_row(float *db, const float *d, int cout, int n)
{
	for (int cb = 0; cb < cout; cb += 8) {
		__m256 a = _mm256_loadu_ps(db + cb);

		for (int p = 0; p < n; p++)
			a = _mm256_add_ps(a, _mm256_loadu_ps(d + (long)p * cout + cb));
		_mm256_storeu_ps(db + cb, a);
	}
}

typedef struct {
	const geom *g;
	float *dw, *db;
	const float *dout, *in;
	int B, acc;
	isa_kind isa;
} wgrad_job;

/* Input channels per part of dw a worker owns: an AVX-512 part feeds 12-channel tiles;
 * AVX2's 1x1s (a pointwise layer, im2col rows) 6-channel ones (wgrad_tile6). */
static int wgrad_ci(const geom *g, isa_kind isa)
{
	return isa == ISA_AVX512 ? CONV512_CI : g->kh == 1 && g->kw == 1 ? CONV_CI1 : CONV_CI;
}

/* Output rows per band of the weight gradient: a part's tiles run over a band's rows at
 * once, loading and storing their sums once a band, not once a row: enough rows for
 * WG_BAND_PX pixels (ResNet-18's 7-wide maps had 7 a row), while the band's dout stays in
 * L2 for the other parts (WG_BAND_FLOATS). Longer bands read dout from L2 where one row
 * came from L1, which cost AVX2's 3-channel tiles (ResNet-18's 56x56x64 3x3, rows of 9:
 * 36.8-38.7 -> 40.4-41.7 ms). ResNet-18's 7x7x512 3x3 backward on the direct kernels,
 * batch 10, 2 threads, Intel Xeon (conv_bench bwd): AVX-512 31-33 -> 22-25 ms, AVX2 49-53
 * -> 45-47; the wider layers within noise. */
#ifndef WG_BAND_FLOATS
#define WG_BAND_FLOATS (1 << 15)
#endif
#ifndef WG_BAND_PX
#define WG_BAND_PX 32
#endif

static int wgrad_band(const geom *g)
{
	long r = WG_BAND_FLOATS / ((long)g->ow * g->oc), p = (WG_BAND_PX + g->ow - 1) / g->ow;

	r = p < r ? p : r;

	return r < 1 ? 1 : r > g->oh ? g->oh : (int)r;
}

/* Worker k owns a contiguous share of the (ky, kx, block of wgrad_ci input channels) parts
 * of dw and sums every pixel of the batch into them, in the same order for any k and n:
 * a band of rows at a time, each part over its rows. Strided layers too: a pixel's input
 * is stride x cin floats after the one before. */
CONV_AVX2 static void wgrad_worker(void *ctx, int k, int n)
{
	const wgrad_job *j = ctx;
	const geom *g = j->g;
	int cin = g->c, cout = g->oc, CI = wgrad_ci(g, j->isa), ncb = (cin + CI - 1) / CI;
	long lo, hi;

	long nparts = (long)g->kh * g->kw * ncb;   /* and db, the part after them */
	int has_db = 0;

	par_share(nparts + (j->db != NULL), k, n, &lo, &hi);
	if (hi > nparts) {
		has_db = 1, hi = nparts;
		if (!j->acc)
			memset(j->db, 0, sizeof *j->db * cout);
	}
	if (!j->acc)
		for (long it = lo; it < hi; it++) {
			int ci = (int)(it % ncb) * CI, nc = cin - ci < CI ? cin - ci : CI;

			memset(j->dw + ((it / ncb) * cin + ci) * cout, 0, sizeof *j->dw * nc * cout);
		}
	for (long img = 0; img < j->B; img++)
		for (int y0 = 0, band = wgrad_band(g); y0 < g->oh; y0 += band) {
			int y1 = y0 + band < g->oh ? y0 + band : g->oh;

			for (int oy = y0; has_db && oy < y1; oy++)
				bias_row(j->db, j->dout + (img * g->oh + oy) * g->ow * cout, cout, g->ow);
			for (long it = lo; it < hi; it++) {
				int kk = (int)(it / ncb), ky = kk / g->kw, kx = kk % g->kw, sh = g->sh, sw = g->sw;
				int ci = (int)(it % ncb) * CI, nc = cin - ci < CI ? cin - ci : CI;
				/* the outputs whose tap (ky, kx) falls inside the input: rows [ya, yb)
				 * of the band, columns [ox0, ox1) */
				int top = g->pt - ky, bot = g->h - 1 + g->pt - ky;
				int lft = g->pl - kx, rgt = g->w - 1 + g->pl - kx;
				int ya = top > 0 ? (top + sh - 1) / sh : 0, yb = bot < 0 ? 0 : bot / sh + 1;
				int ox0 = lft > 0 ? (lft + sw - 1) / sw : 0, ox1 = rgt < 0 ? 0 : rgt / sw + 1;
				int xs = sw * cin, n;   /* floats from one output's input to the next's */
				long ys = (long)sh * g->w * cin, ds = (long)g->ow * cout;

				ya = ya > y0 ? ya : y0, yb = yb < y1 ? yb : y1;
				ox1 = ox1 < g->ow ? ox1 : g->ow;
				if (ya >= yb || ox0 >= ox1)
					continue;
				n = ox1 - ox0;
				const float *in = j->in + ((img * g->h + ya * sh - top) * g->w + ox0 * sw - lft) * cin + ci;
				const float *d = j->dout + ((img * g->oh + ya) * g->ow + ox0) * cout;
				float *dw = j->dw + ((long)kk * cin + ci) * cout;

				if (j->isa == ISA_AVX512) {
					wgrad_row512(nc, in, xs, d, cout, n, yb - ya, ys, ds, dw);
					continue;
				}
				if (CI == CONV_CI1) {
					wgrad_row6(nc, in, xs, d, cout, n, yb - ya, ys, ds, dw);
					continue;
				}
				for (int cb = 0; cb < cout; cb += 32) {
					int nv = (cout - cb) / 8 < 4 ? (cout - cb) / 8 : 4;

					switch (nc) {
#define TILE_CASE(c)                                                                             \
	case c: wgrad_tile_nv(c, nv, in, xs, d + cb, cout, n, yb - ya, ys, ds, dw + cb); break;
					TILE_CASE(3) TILE_CASE(2) default: TILE_CASE(1)
#undef TILE_CASE
					}
				}
			}
		}
}

/* A first layer's few input channels: a window row's kw * cin taps (conv1_1: 3 x 3) are
 * few enough for AVX-512 tiles to take them all against 16 output channels, where the
 * per-(ky, kx) parts above leave a tile 3 accumulators (too few to cover the FMA latency;
 * hence AVX2's 3 x 4 for them until now). Where the whole window row is inside the input
 * row the taps are contiguous there: a broadcast each and one vector of dout per pixel.
 * conv1_1's weight gradient at 224, batch 10, 2 threads, Zen 5: 5.1-5.2 -> 4.2-4.3 ms
 * (bench/conv_bench 224 2; the rest is both threads reading all of dout, a part's 16
 * channels straddling two cache lines at calloc's offset). Strided windows too (a
 * window row's taps stay contiguous; pixels sw * cin floats apart), and more than 12 taps
 * in groups of at most 12 (ResNet-18's conv1, 7x7 s2: 21), where conv2d took them as a
 * 1x1 of im2col's rows: no im2col, and each dout vector read once per group, not per 12
 * output channels' tile. */
#define CONV512_TAPS 12

/* dw's nt tap rows (stride cout; the lanes in ml) += the n pixels' taps (in, xs floats a
 * pixel) times their dout vectors (d, stride cout), in pixel order. */
CONV_AVX512 INLINE void wgrad_taps512(int nt, const float *in, long xs, const float *d, int cout,
				      int n, float *dw, __mmask16 ml)
{
	__m512 acc[CONV512_TAPS];

#pragma GCC unroll 12
	for (int t = 0; t < nt; t++)
		acc[t] = _mm512_maskz_loadu_ps(ml, dw + (long)t * cout);
	for (int p = 0; p < n; p++, in += xs, d += cout) {
		__m512 dv = _mm512_maskz_loadu_ps(ml, d);

#pragma GCC unroll 12
		for (int t = 0; t < nt; t++)
			acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(in[t]), dv, acc[t]);
	}
#pragma GCC unroll 12
	for (int t = 0; t < nt; t++)
		_mm512_mask_storeu_ps(dw + (long)t * cout, ml, acc[t]);
}

/* db [cout] += the n pixels' dout (d), in pixel order, 16 channels a vector (the last
 * one's lanes masked: a first layer's cout need not be a multiple of 8). */
CONV_AVX512 static void bias_row512(float *db, const float *d, int cout, int n)
{
	for (int cb = 0; cb < cout; cb += 16) {
		__mmask16 ml = (__mmask16)(0xffffu >> (cout - cb < 16 ? 16 - (cout - cb) : 0));
		__m512 a = _mm512_maskz_loadu_ps(ml, db + cb);

		for (int p = 0; p < n; p++)
			a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(ml, d + (long)p * cout + cb));
		_mm512_mask_storeu_ps(db + cb, ml, a);
	}
}

/* The window columns [*k0, *k1) of output pixel ox that fall inside the input row; its
 * first column's input column is returned. */
static int edge_span(const geom *g, int ox, int *k0, int *k1)
{
	int x0 = ox * g->sw - g->pl;

	*k0 = x0 < 0 ? -x0 : 0;
	*k1 = g->w - x0 < g->kw ? g->w - x0 : g->kw;
	*k1 = *k1 > *k0 ? *k1 : *k0;
	return x0;
}

/* Groups of at most CONV512_TAPS a window row's nt taps take. */
static int taps_groups(int nt)
{
	return (nt + CONV512_TAPS - 1) / CONV512_TAPS;
}

/* Output pixel ox of a row at the edge, where some taps fall in the padding: each tap
 * inside the input row added to its dw row on its own. */
CONV_AVX512 static void wgrad_edge512(const geom *g, const float *irow, const float *d, int ox,
				      float *dw, __mmask16 ml)
{
	int cin = g->c, cout = g->oc, k0, k1, x0 = edge_span(g, ox, &k0, &k1);
	__m512 dv = _mm512_maskz_loadu_ps(ml, d);

	for (int kx = k0; kx < k1; kx++) {
		int ix = x0 + kx;

		for (int c = 0; c < cin; c++) {
			float *r = dw + (long)(kx * cin + c) * cout;

			_mm512_mask_storeu_ps(r, ml, _mm512_fmadd_ps(_mm512_set1_ps(irow[(long)ix * cin + c]), dv,
								     _mm512_maskz_loadu_ps(ml, r)));
		}
	}
}

/* One output row's part of dw (its window row ky's taps, no <= 16 output channels from dw
 * and d): the edges [0, L) and [H, ow) a pixel at a time, the middle by groups of taps as
 * even as may be (21 as 11 and 10, not 12 and 9). */
CONV_AVX512 static void taps_row512(const geom *g, const float *irow, const float *d, float *dw,
				    int no, int L, int H)
{
	int cin = g->c, cout = g->oc, nt = g->kw * cin, sw = g->sw;
	int ng = taps_groups(nt);
	__mmask16 ml = (__mmask16)(0xffffu >> (16 - no));

	for (int ox = 0; ox < L; ox++)
		wgrad_edge512(g, irow, d + (long)ox * cout, ox, dw, ml);
	for (int g0 = 0, t0 = 0; L < H && g0 < ng; g0++) {
		int q = (nt - t0) / (ng - g0);
		const float *ip = irow + ((long)L * sw - g->pl) * cin + t0, *dp = d + (long)L * cout;
		float *dq = dw + (long)t0 * cout;

		switch (q) {
#define TAPS_CASE(q) case q: wgrad_taps512(q, ip, (long)sw * cin, dp, cout, H - L, dq, ml); break;
		TAPS_CASE(1) TAPS_CASE(2) TAPS_CASE(3) TAPS_CASE(4) TAPS_CASE(5) TAPS_CASE(6)
		TAPS_CASE(7) TAPS_CASE(8) TAPS_CASE(9) TAPS_CASE(10) TAPS_CASE(11) TAPS_CASE(12)
#undef TAPS_CASE
		}
		t0 += q;
	}
	for (int ox = H; ox < g->ow; ox++)
		wgrad_edge512(g, irow, d + (long)ox * cout, ox, dw, ml);
}

/* wgrad_taps512 on AVX2: 8 output channels (all there), 12 accumulators, the dout vector
 * and a broadcast in its 16 registers. */
CONV_AVX2 INLINE void wgrad_taps256(int nt, const float *in, long xs, const float *d, int cout,
				    int n, float *dw)
{
	__m256 acc[CONV512_TAPS];

#pragma GCC unroll 12
	for (int t = 0; t < nt; t++)
		acc[t] = _mm256_loadu_ps(dw + (long)t * cout);
	for (int p = 0; p < n; p++, in += xs, d += cout) {
		__m256 dv = _mm256_loadu_ps(d);

#pragma GCC unroll 12
		for (int t = 0; t < nt; t++)
			acc[t] = _mm256_fmadd_ps(_mm256_broadcast_ss(in + t), dv, acc[t]);
	}
#pragma GCC unroll 12
	for (int t = 0; t < nt; t++)
		_mm256_storeu_ps(dw + (long)t * cout, acc[t]);
}

/* wgrad_edge512 on AVX2, 8 output channels. */
CONV_AVX2 static void wgrad_edge256(const geom *g, const float *irow, const float *d, int ox,
				    float *dw)
{
	int cin = g->c, cout = g->oc, k0, k1, x0 = edge_span(g, ox, &k0, &k1);
	__m256 dv = _mm256_loadu_ps(d);

	for (int kx = k0; kx < k1; kx++) {
		int ix = x0 + kx;

		for (int c = 0; c < cin; c++) {
			float *r = dw + (long)(kx * cin + c) * cout;

			_mm256_storeu_ps(r, _mm256_fmadd_ps(_mm256_broadcast_ss(irow + (long)ix * cin + c), dv,
							    _mm256_loadu_ps(r)));
		}
	}
}

/* taps_row512 on AVX2, 8 output channels. */
CONV_AVX2 static void taps_row256(const geom *g, const float *irow, const float *d, float *dw,
				  int L, int H)
{
	int cin = g->c, cout = g->oc, nt = g->kw * cin, sw = g->sw;
	int ng = taps_groups(nt);

	for (int ox = 0; ox < L; ox++)
		wgrad_edge256(g, irow, d + (long)ox * cout, ox, dw);
	for (int g0 = 0, t0 = 0; L < H && g0 < ng; g0++) {
		int q = (nt - t0) / (ng - g0);
		const float *ip = irow + ((long)L * sw - g->pl) * cin + t0, *dp = d + (long)L * cout;
		float *dq = dw + (long)t0 * cout;

		switch (q) {
#define TAPS_CASE(q) case q: wgrad_taps256(q, ip, (long)sw * cin, dp, cout, H - L, dq); break;
		TAPS_CASE(1) TAPS_CASE(2) TAPS_CASE(3) TAPS_CASE(4) TAPS_CASE(5) TAPS_CASE(6)
		TAPS_CASE(7) TAPS_CASE(8) TAPS_CASE(9) TAPS_CASE(10) TAPS_CASE(11) TAPS_CASE(12)
#undef TAPS_CASE
		}
		t0 += q;
	}
	for (int ox = H; ox < g->ow; ox++)
		wgrad_edge256(g, irow, d + (long)ox * cout, ox, dw);
}

/* Every window row's taps at once for a first layer's small square windows (conv1_1: 3
 * rows of 3 x 3 taps): the kh * nt taps of a pixel (row ky's at in + ky * rs) against one
 * vector of dout, so each vector of dout is read once per output row, not once per window
 * row, and a worker reads only its block's line of each pixel; db's sums ride along. kh
 * and nt are constants (all_row512's cases): the taps' offsets fold into the broadcasts'
 * addresses. dout is prefetched CONV512_ALL_PF pixels ahead: its lines are 128 bytes
 * apart, one of two read, and the loads waited on memory. conv1_1's weight gradient and
 * db at 224, batch 10, 2 threads, Intel Xeon (AVX-512; conv_bench bwd 2 0.5
 * def224.conv1_1): 6.7-7.2 ms by window rows, 6.2 all at once, 3.8-4.5 prefetched
 * (distances 8 to 48 alike); in cnn-train --profile its backward 8.7-9.2 -> 7.0-7.3 ms. */
#define CONV512_ALL 28
#ifndef CONV512_ALL_PF
#define CONV512_ALL_PF 24
#endif

CONV_AVX512 INLINE void wgrad_all512(int kh, int nt, const float *in, long rs, long xs,
				     const float *d, int cout, int n, float *dw, float *db, __mmask16 ml)
{
	__m512 acc[CONV512_ALL], bias = _mm512_setzero_ps();
	const float *r[5];

#pragma GCC unroll 5
	for (int ky = 0; ky < kh; ky++)
		r[ky] = in + ky * rs;
#pragma GCC unroll 28
	for (int t = 0; t < kh * nt; t++)
		acc[t] = _mm512_maskz_loadu_ps(ml, dw + (long)t * cout);
	if (db)
		bias = _mm512_maskz_loadu_ps(ml, db);
	for (int p = 0; p < n; p++, d += cout) {
		__m512 dv = _mm512_maskz_loadu_ps(ml, d);

		_mm_prefetch((const char *)(d + CONV512_ALL_PF * cout), _MM_HINT_T0);
		/* db's chain of adds hides behind the FMAs, where alone it waited on each add */
		if (db)
			bias = _mm512_add_ps(bias, dv);
		/* a pointer a window row: the taps' offsets are immediates (with rs in them,
		 * 18 registers of offsets spilled) */
#pragma GCC unroll 5
		for (int ky = 0; ky < kh; ky++) {
#pragma GCC unroll 9
			for (int t = 0; t < nt; t++)
				acc[ky * nt + t] = _mm512_fmadd_ps(_mm512_set1_ps(r[ky][t]), dv, acc[ky * nt + t]);
			r[ky] += xs;
		}
	}
#pragma GCC unroll 28
	for (int t = 0; t < kh * nt; t++)
		_mm512_mask_storeu_ps(dw + (long)t * cout, ml, acc[t]);
	if (db)
		_mm512_mask_storeu_ps(db, ml, bias);
}

/* db's lanes ml += the n pixels' dout (d, stride cout), in pixel order: bias_row512's
 * sums for one block. */
CONV_AVX512 static void bias_block512(float *db, const float *d, int cout, int n, __mmask16 ml)
{
	__m512 a = _mm512_maskz_loadu_ps(ml, db);

	for (int p = 0; p < n; p++)
		a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(ml, d + (long)p * cout));
	_mm512_mask_storeu_ps(db, ml, a);
}

/* The (kh, kw * cin) that wgrad_all512 is built for: square windows of 2 to 5 with 1 to 3
 * input channels, at most CONV512_ALL taps. */
#define ALL_SHAPES(X) X(2, 2) X(2, 4) X(2, 6) X(3, 3) X(3, 6) X(3, 9) X(4, 4) X(5, 5)

static int all_fits(const geom *g)
{
	int nt = g->kw * g->c;
#define ALL_FITS(r, n) || (g->kh == r && nt == n)
	return 0 ALL_SHAPES(ALL_FITS);
#undef ALL_FITS
}

/* One output row's part of dw for all kh window rows (all inside the input), no <= 16
 * output channels, and of db where given: per window row the edges as taps_row512 takes
 * them, the middle by wgrad_all512. Each dw and db element sums its pixels in the same
 * order as there and bias_row512: its bits. */
CONV_AVX512 static void all_row512(const geom *g, const float *irow, const float *d, float *dw,
				   float *db, int no, int L, int H)
{
	int cin = g->c, cout = g->oc, nt = g->kw * cin, sw = g->sw;
	long rs = (long)g->w * cin;
	__mmask16 ml = (__mmask16)(0xffffu >> (16 - no));

	for (int ky = 0; ky < g->kh; ky++)
		for (int ox = 0; ox < L; ox++)
			wgrad_edge512(g, irow + ky * rs, d + (long)ox * cout, ox, dw + (long)ky * nt * cout, ml);
	if (db)
		bias_block512(db, d, cout, L, ml);
	if (L < H) {
		const float *ip = irow + ((long)L * sw - g->pl) * cin, *dp = d + (long)L * cout;

#define ALL_CASE(r, n)                                                                            \
	if (g->kh == r && nt == n)                                                                 \
		wgrad_all512(r, n, ip, rs, (long)sw * cin, dp, cout, H - L, dw, db, ml);
		ALL_SHAPES(ALL_CASE)
#undef ALL_CASE
	}
	if (db)
		bias_block512(db, d + (long)H * cout, cout, g->ow - H, ml);
	for (int ky = 0; ky < g->kh; ky++)
		for (int ox = H; ox < g->ow; ox++)
			wgrad_edge512(g, irow + ky * rs, d + (long)ox * cout, ox, dw + (long)ky * nt * cout, ml);
}

/* Worker k owns a contiguous share of the (ky, block of bw output channels: 16 on AVX-512
 * if wide, else 8) parts, or of the blocks alone where all_row512 takes every window row
 * and there are no more workers than blocks; the last worker also sums db, or each block's
 * owner its part. Every pixel in the order of
 * wgrad_worker's (and of an im2col row's): its bits. */
INLINE void taps_worker(const wgrad_job *j, int k, int n, int wide)
{
	const geom *g = j->g;
	int cin = g->c, cout = g->oc, nt = g->kw * cin, bw = wide ? 16 : 8;
	int nob = (cout + bw - 1) / bw, sw = g->sw;
	/* the outputs whose window row is wholly inside the input row: [L, H) */
	int L = g->pl > 0 ? (g->pl + sw - 1) / sw : 0, H = g->w - g->kw + g->pl;
	long lo, hi;

	/* a part: all window rows of a block where they fit and the blocks go round */
	int all = wide && all_fits(g) && n <= nob, nky = all ? 1 : g->kh;

	H = H < 0 ? 0 : H / sw + 1;
	L = L < g->ow ? L : g->ow;
	H = H < g->ow ? H : g->ow;
	H = H > L ? H : L;
	par_share((long)nky * nob, k, n, &lo, &hi);
	if (k == n - 1 && j->db && !j->acc && !all)
		memset(j->db, 0, sizeof *j->db * cout);
	for (long it = lo; it < hi && !j->acc; it++) {
		int ob = (int)(it % nob) * bw, no = cout - ob < bw ? cout - ob : bw;

		for (int t = 0; t < nt * (all ? g->kh : 1); t++)
			memset(j->dw + ((it / nob) * nt + t) * cout + ob, 0, sizeof *j->dw * no);
		/* all: a block's owner sums its db */
		if (all && j->db)
			memset(j->db + ob, 0, sizeof *j->db * no);
	}
	for (long img = 0; img < j->B; img++)
		for (int oy = 0; oy < g->oh; oy++) {
			const float *drow = j->dout + (img * g->oh + oy) * g->ow * cout;

			if (k == n - 1 && j->db && !all) {
				if (wide)
					bias_row512(j->db, drow, cout, g->ow);
				else
					bias_row(j->db, drow, cout, g->ow);
			}
			for (long it = lo; it < hi; it++) {
				int iy0 = oy * g->sh - g->pt, ob = (int)(it % nob) * bw;
				int no = cout - ob < bw ? cout - ob : bw;

				if (all && iy0 >= 0 && iy0 + g->kh <= g->h) {
					all_row512(g, j->in + (img * g->h + iy0) * g->w * cin, drow + ob,
						   j->dw + ob, j->db ? j->db + ob : NULL, no, L, H);
					continue;
				}
				if (all && j->db)
					bias_block512(j->db + ob, drow + ob, cout, g->ow,
						      (__mmask16)(0xffffu >> (16 - no)));
				/* a window row, or all of them where their row is partly outside */
				int ky0 = all ? 0 : (int)(it / nob), ky1 = all ? g->kh : ky0 + 1;

				for (int ky = ky0; ky < ky1; ky++) {
					int iy = iy0 + ky;
					float *dw = j->dw + (long)ky * nt * cout + ob;

					if (iy < 0 || iy >= g->h)
						continue;
					const float *irow = j->in + (img * g->h + iy) * g->w * cin;

					if (wide)
						taps_row512(g, irow, drow + ob, dw, no, L, H);
					else
						taps_row256(g, irow, drow + ob, dw, L, H);
				}
			}
		}
}

CONV_AVX512 static void wgrad_taps_worker512(void *ctx, int k, int n)
{
	taps_worker(ctx, k, n, 1);
}

CONV_AVX2 static void wgrad_taps_worker256(void *ctx, int k, int n)
{
	taps_worker(ctx, k, n, 0);
}

/* The kernels isa asks for, or the widest below it this CPU has: never an illegal
 * instruction. */
static isa_kind usable(isa_kind isa)
{
	return isa == ISA_AVX512 && !isa_supported(ISA_AVX512) ? ISA_AVX2 : isa;
}

/* Whether the forward on isa (usable) takes the plane path: strides and 1x1s (the row
 * kernels take neither), and on AVX-512 narrow maps too. On AVX2 a narrow stride-1 map
 * stays on the row kernels (the same bits either way), measured faster there
 * (PETCNN_ISA=avx2 conv_bench nets 2, CPU ms, best of 3: ResNet-18's 14x14x256 3x3 8.2 by
 * rows, 8.5 by planes; 7x7x512 8.7 against 9.6). */
static int flat_wanted(const geom *g, isa_kind isa)
{
	if (isa < ISA_AVX2 || !isa_supported(ISA_AVX2) || !flat_fits(g))
		return 0;
	return g->sh > 1 || g->sw > 1 || (g->kh == 1 && g->kw == 1) ||
	       (isa == ISA_AVX512 && g->ow < FLAT_MAX_OW);
}
#endif

int convdirect_wgrad_taps(const geom *g, isa_kind isa)
{
#ifdef CONV_AVX2
	isa = usable(isa);
	/* AVX2's tiles take whole vectors of 8 output channels; at stride 1 its 3 x 4 tiles
	 * measured faster (conv1_1 at 224, 2 threads, Zen 4: 6.7 against 8.1 ms) */
	return g->c < 4 && g->groups <= 1 && g->kw * g->c <= 64 && isa_supported(ISA_AVX2) &&
	       (isa == ISA_AVX512 || (isa == ISA_AVX2 && g->oc % 8 == 0 && (g->sh > 1 || g->sw > 1)));
#else
	(void)g, (void)isa;
	return 0;
#endif
}

int convdirect_forward_fits(const geom *g, isa_kind isa)
{
#ifdef CONV_AVX2
	return convdirect_fits(g, isa) || flat_wanted(g, usable(isa));
#else
	(void)g, (void)isa;
	return 0;
#endif
}

#ifdef CONV_AVX2
typedef struct {
	const geom *g;
	const flat_geom *f;
	const float *w;
	float *d;
} pack_job;

/* The weights for the plane kernels: blocks of 32 output channels, rows in segment order
 * (ky, column phase, then its taps kx and their channels). Worker k repacks its share of
 * the rows into every block (one thread alone would leave the other idle for ~1 ms on
 * 512x512x3x3's 9.4 MB; below 1 MB one thread does it, sparing a thread's start). */
static void flat_pack_worker(void *ctx, int k, int n)
{
	const pack_job *j = ctx;
	const geom *g = j->g;
	long K = (long)g->kh * g->kw * g->c, lo, hi, i = 0;

	par_share(K, k, n, &lo, &hi);
	for (int ky = 0; ky < g->kh; ky++)
		for (int cp = 0; cp < j->f->psw; cp++)
			for (int kx = cp; kx < g->kw; kx += j->f->cs)
				for (int ci = 0; ci < g->c; ci++, i++) {
					const float *src = j->w + (((long)ky * g->kw + kx) * g->c + ci) * g->oc;

					if (i < lo)
						continue;
					if (i >= hi)
						return;
					for (int cb = 0; cb < g->oc; cb += 32)
						memcpy(j->d + cb * K + i * 32, src + cb,
						       sizeof *j->d * (g->oc - cb < 32 ? g->oc - cb : 32));
				}
}

/* The forward's weights laid out for its kernels, into d (convdirect_packed_floats). */
static void pack_weights(const geom *g, float *d, const float *w, int threads, isa_kind isa)
{
	long K = (long)g->kh * g->kw * g->c;

	if (flat_wanted(g, isa)) {
		flat_geom f;
		pack_job pj = { .g = g, .f = &f, .w = w, .d = d };

		flat_init(g, &f, isa);
		/* a thread's start costs about what a memcpy of 1 MB does */
		par_run(K * g->oc < (1 << 18) ? 1 : threads < K ? threads : (int)K, flat_pack_worker, &pj);
		return;
	}
	for (int cb = 0; cb < g->oc; cb += 32)
		for (long k = 0; k < K; k++)
			memcpy(d + (cb * K + k * 32), w + k * g->oc + cb,
			       sizeof *d * (g->oc - cb < 32 ? g->oc - cb : 32));
}

/* pw: the weights as pack_weights lays them out */
static void flat_forward(const geom *g, float *out, const float *in, const float *pw,
			 const float *b, int relu, const float *mask, int mact, int B, int threads,
			 float *ws, isa_kind isa)
{
	flat_geom f;
	flat_job j = { .g = g, .f = &f, .out = out, .ws = ws, .in = in, .w = pw, .b = b,
		       .mask = mask, .B = B, .relu = relu, .mact = mact };

	flat_init(g, &f, isa);
	j.pf = isa == ISA_AVX512 && f.inplace &&
	       (size_t)B * g->h * g->w * g->c * sizeof *in > FLAT_PF_BYTES;
	if ((long)threads > (long)B * g->oh)
		threads = (int)((long)B * g->oh);
	par_run(threads, isa == ISA_AVX512 ? flat_worker512 : flat_worker256, &j);
}
#endif

size_t convdirect_packed_floats(const geom *g, isa_kind isa)
{
#ifdef CONV_AVX2
	return flat_wanted(g, usable(isa)) ? block_floats(g) : packed_floats(g);
#else
	(void)g, (void)isa;
	return 0;
#endif
}

void convdirect_pack(const geom *g, float *pw, const float *w, int threads, isa_kind isa)
{
#ifdef CONV_AVX2
	if (convdirect_packed_floats(g, isa))
		pack_weights(g, pw, w, threads, usable(isa));
#else
	(void)g, (void)pw, (void)w, (void)threads, (void)isa;
#endif
}

void convdirect_forward_packed(const geom *g, float *out, const float *in, const float *pw,
			       const float *b, int relu, const float *mask, int mact, int B,
			       int threads, float *ws, isa_kind isa)
{
#ifdef CONV_AVX2
	fwd_job j = { .g = g, .out = out, .ws = ws, .in = in, .w = pw, .b = b, .mask = mask,
		      .B = B, .relu = relu, .mact = mact, .isa = usable(isa) };

	if (flat_wanted(g, j.isa)) {
		flat_forward(g, out, in, pw, b, relu, mask, mact, B, threads, ws, j.isa);
		return;
	}
	if ((long)threads > (long)B * g->oh)
		threads = (int)((long)B * g->oh);
	par_run(threads, fwd_worker, &j);
#else
	(void)g, (void)out, (void)in, (void)pw, (void)b, (void)relu, (void)mask, (void)mact, (void)B;
	(void)threads, (void)ws, (void)isa;
#endif
}

void convdirect_forward(const geom *g, float *out, const float *in, const float *w,
			const float *b, int relu, const float *mask, int mact, int B, int threads,
			float *ws, isa_kind isa)
{
	/* the packed weights go first in the scratch, where the kernels' own parts start
	 * after them (flat_worker, fwd_worker) */
	if (convdirect_packed_floats(g, isa)) {
		convdirect_pack(g, ws, w, threads, isa);
		w = ws;
	}
	convdirect_forward_packed(g, out, in, w, b, relu, mask, mact, B, threads, ws, isa);
}

void convdirect_wgrad(const geom *g, float *dw, float *db, const float *dout, const float *in,
		      int B, int acc, int threads, isa_kind isa)
{
#ifdef CONV_AVX2
	wgrad_job j = { .g = g, .dw = dw, .db = db, .dout = dout, .in = in, .B = B, .acc = acc,
			.isa = usable(isa) };

	/* Below 4 input channels (a first layer's 3) an AVX-512 part has at most 6
	 * accumulators and waits on the FMA latency: all a window row's taps at once if they
	 * fit a tile, else AVX2's 3 x 4 tile (conv1_1 at 64: 110 GFLOP/s against 100); the
	 * same bits either way. */
	if (convdirect_wgrad_taps(g, j.isa)) {
		int bw = j.isa == ISA_AVX512 ? 16 : 8;
		long parts = (long)g->kh * ((g->oc + bw - 1) / bw);

		par_run(threads < parts ? threads : (int)parts,
			j.isa == ISA_AVX512 ? wgrad_taps_worker512 : wgrad_taps_worker256, &j);
		return;
	}
	if (j.isa == ISA_AVX512 && g->c < 4)
		j.isa = ISA_AVX2;
	int CI = wgrad_ci(g, j.isa);
	long parts = (long)g->kh * g->kw * ((g->c + CI - 1) / CI) + (db != NULL);

	if (threads > parts)
		threads = (int)parts;
	par_run(threads, wgrad_worker, &j);
#else
	(void)g, (void)dw, (void)db, (void)dout, (void)in, (void)B, (void)acc, (void)threads;
	(void)isa;
#endif
}
