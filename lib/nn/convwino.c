/* convwino: Winograd F(4x4, 3x3) (Lavin and Gray, 2015). A tile of 4x4 outputs reads 6x6
 * inputs d; with V = B^T d B per input channel and U = G g G^T per kernel g, its outputs
 * are A^T M A where M = sum over input channels of V * U, position by position: 36
 * products per tile against 144 for the direct sums. Over a block of tiles the sums are 36
 * GEMMs [tiles x cin] x [cin x cout], one per position, so the multiplies run in the same
 * register tiles as the direct kernels' and the transforms are a few multiply-adds.
 * F(2x2, 3x3), which this replaced, did 64 products per 16 outputs (2.25x fewer than
 * direct where this does 4x) with a tenth of the rounding; this one's, against the sum of
 * the terms' magnitudes, stays near 1e-6 (tests/unit/test_wino.c).
 *
 * Layouts. u: position-major [36][cout / 64 blocks][cin][64] (the last block as wide as
 * cout leaves), so a GEMM's weights for 64 output channels are contiguous rows. Per
 * thread, a block of nb tiles: v [36][nb][cin] and m [36][nb][cout], sized so that one
 * position's v (nb x cin) and a block of u (cin x 64) stay in L2 while all of m's rows
 * for it are computed; or, for layers with many channels, one block all threads share
 * (shared_tiles). */
#include "nn/convwino.h"

#include <stdint.h>
#include <string.h>

#include "util/par.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define WINO_AVX2 __attribute__((target("avx2,fma")))
#define WINO_AVX512 __attribute__((target("avx512f,fma")))
#define INLINE static inline __attribute__((always_inline))
#endif

/* One position's v block (nb x cin floats) at most, and v and m together per thread. */
#ifndef WINO_V_FLOATS
#define WINO_V_FLOATS (1 << 16)
#endif
#ifndef WINO_VM_FLOATS
#define WINO_VM_FLOATS (1 << 18)
#endif
#ifndef WINO_SHARED_FLOATS
#define WINO_SHARED_FLOATS (1 << 21)
#endif
#ifndef WINO_SHARED_RATIO
#define WINO_SHARED_RATIO 2
#endif
#define WINO_NB_MAX 240
/* Tiles per block of AVX2's weight-gradient GEMMs (wpos256), and of AVX-512's (wpos512). */
#ifndef WINO_WTB
#define WINO_WTB 32
#endif
#define WINO_WTB512 128
/* Tiles ahead whose v and y lines the weight gradient's AVX-512 GEMMs prefetch (wtile512). */
#define WINO_WPF 8
/* Tiles ahead whose new inputs the input transform prefetches: at 224 the maps come from
 * memory and the transform waited on them (under F(2x2, 3x3): conv_bench nets def,
 * AVX-512, batch 8, conv1_2 12.1 -> 11.2-11.5 ms, conv2_2 9.5 -> 8.6-9.0 at 4 or 8 ahead,
 * 2 and 16 less; under F(4x4), 2 and 8 were no better than 4). */
#ifndef WINO_AHEAD
#define WINO_AHEAD 4
#endif

static int tiles_y(const geom *g)
{
	return (g->oh + 3) / 4;
}

static int tiles_x(const geom *g)
{
	return (g->ow + 3) / 4;
}

/* Tiles per thread's block: a multiple of the GEMM tile's 6 (and 12) rows where it can be. */
static int block_tiles(const geom *g)
{
	long nb = WINO_V_FLOATS / g->c, nvm = WINO_VM_FLOATS / (36L * (g->c + g->oc));

	nb = nb < nvm ? nb : nvm;
	nb = nb > WINO_NB_MAX ? WINO_NB_MAX : nb;
	nb = nb >= 12 ? nb / 12 * 12 : nb < 1 ? 1 : nb;
	return (int)nb;
}

/* Tiles of the chunk all threads share, or 0 where each thread takes blocks of its own.
 * A thread's block of nb tiles reads all of u (36 x C x O floats), C x O / nb per position
 * and tile: where that outweighs twice C + O (v and m's floats per position and tile, which
 * a shared chunk sends once more through L3), the threads share one larger chunk instead,
 * transform its tiles, then split its GEMMs by position and output channels so that u is
 * read once per chunk, not once per block and thread. conv_bench nets 2 1 r18 (AVX-512,
 * batch 8 / 32, ms): 7x7x512 3.5 -> 1.6-1.9 / 12.2-13.3 -> 6.0-6.9, 14x14x256 1.45 -> 1.3 /
 * 5.7-6.0 -> 5.3, 28x28x128 the same / 2% faster; AVX2 7x7x512 10 -> 3.5-3.9 / 40 -> 14.
 * The default network's layers (<= 64 channels) keep their own blocks. A chunk of 2^21
 * floats (8 MB) beat 2^20 and 2^19 on 7x7x512. */
static int shared_tiles(const geom *g)
{
	long nc = WINO_SHARED_FLOATS / (36L * (g->c + g->oc)), nb = block_tiles(g);

	if ((long)g->c * g->oc / nb <= WINO_SHARED_RATIO * (g->c + g->oc))
		return 0;
	nc = nc > WINO_NB_MAX ? WINO_NB_MAX : nc;
	return nc >= 12 ? (int)(nc / 12 * 12) : nc < 1 ? 1 : (int)nc;
}

int convwino_shape(const geom *g)
{
	return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->groups <= 1 &&
	       g->c % 16 == 0 && g->oc % 16 == 0 && g->c > 0 && g->oc > 0;
}

int convwino_fits(const geom *g, isa_kind isa)
{
#ifdef WINO_AVX512
	return (isa == ISA_AVX512 || isa == ISA_AVX2) && isa_supported(isa) && convwino_shape(g);
#else
	(void)g, (void)isa;
	return 0;
#endif
}

/* Floats between two positions' planes of a block of nb tiles x c channels: an odd number
 * of cache lines, so that a tile's 36 rows, one per plane, fall in 36 different sets of
 * L1. A stride of a multiple of 4 KB (nb 48 at 64 channels, 96 at 32) put them all in one
 * set: conv_bench nets def224.conv2_2 8.8 ms at nb 48 against 6.0 at 108, conv1_2 16.3 at
 * nb 96 against 9.5 at 120. */
static long plane(int nb, int c)
{
	long n = (long)nb * c;

	return n / 16 % 2 ? n : n + 16;
}

/* Floats between two tiles of the weight gradient's chunk, which keeps each tile's 36
 * positions together (tile-major: its transforms store in sequence): an odd number of
 * cache lines, so that the GEMMs' reads of one position across tiles do not all fall in
 * one set of L1: plane's padding, for 36 rows of c channels. */
static long tile_floats(int c)
{
	return plane(36, c);
}

size_t convwino_weights(const geom *g)
{
	return (size_t)36 * g->c * g->oc;
}

size_t convwino_workspace(const geom *g, int threads)
{
	int nb = block_tiles(g), nc = shared_tiles(g);
	size_t own = (size_t)(threads < 1 ? 1 : threads) * 36 * (plane(nb, g->c) + plane(nb, g->oc));
	size_t shared = (size_t)36 * (plane(nc, g->c) + plane(nc, g->oc));

	return nc && shared > own ? shared : own;
}

typedef struct {
	const geom *g;
	float *u;
	const float *w;
	int nt;                 /* u's rows stored past the caches: 1 u 16-byte aligned, 2 64 */
} pack_job;

/* Input channels a worker transforms before it stores their rows of u, plane by plane. */
#define PACK_CI 8

/* u past this many bytes is stored with non-temporal stores: it outgrows L2 and most of
 * L3 (a 512x512 layer's is 38 MB), and plain stores read each line from memory before
 * writing it, 36 planes' runs at a time. 512x512 on 2 threads, Zen 4, best of 5 runs of
 * 7 alternating: the forward's 3.82 -> 2.55 ms, the turned kernel's 5.20 -> 3.19. A
 * 256x256's 9.4 MB stays in L3 for the GEMMs that read it next (its pack alone 0.77 ->
 * 0.56 ms with them). Writing 8 input channels of one block before the next block's, not
 * each block's whole channel share at once, measured alike. */
#define PACK_NT_BYTES (16u << 20)

/* d [n] = s [n] (n a multiple of 4; with nt, d 16-byte aligned, stored past the caches). */
static inline __attribute__((always_inline)) void pack_put(float *d, const float *s, size_t n,
							    int nt)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (nt) {
		for (size_t i = 0; i < n; i += 4)
			_mm_stream_ps(d + i, _mm_loadu_ps(s + i));
		return;
	}
#endif
	(void)nt;
	memcpy(d, s, sizeof *d * n);
}

/* y[k * ys + o] = (G a)[k] for o < 64, a the three taps a0, a1, a2: G's rows share their
 * sums (a0 + a2 in rows 1 and 2, a0/24 + a2/6 in rows 3 and 4), 12 operations where the
 * products took 30. */
static inline __attribute__((always_inline)) void g3(float *y, long ys, const float *a0,
						     const float *a1, const float *a2)
{
	for (int o = 0; o < 64; o++) {
		float s = a0[o] + a2[o], q = a0[o] * (1.0f / 24) + a2[o] * (1.0f / 6);
		float d = a1[o] * (1.0f / 12);

		y[o] = a0[o] * 0.25f;
		y[ys + o] = (s + a1[o]) * (-1.0f / 6);
		y[2 * ys + o] = (s - a1[o]) * (-1.0f / 6);
		y[3 * ys + o] = q + d;
		y[4 * ys + o] = q - d;
		y[5 * ys + o] = a2[o];
	}
}

/* Worker k transforms its share of the input channels for every output channel: G g G^T,
 * in floats. A block's 64 output channels at a time, as u lays them out and w holds them,
 * so that the loops run over vectors; PACK_CI input channels at a time over all the
 * blocks, so that w's rows are read whole, in sequence, and each plane's rows for them
 * stored in one run by put (d [n] = s [n], as pack_put, in the path's widest stores). A
 * trained layer's weights are transformed twice a step (the forward's and the turned
 * kernel's): one pair at a time, scalar, a 512x512 3x3 took 16.5 ms on 2 threads (Zen 4),
 * where its forward takes 4; by blocks 5.5, by chunks 4.1. In double, rounded once, and
 * stored in xmm, 2.86 ms on an Intel Xeon (AVX-512, 2 threads; AVX2 3.29), where storing
 * u alone takes 0.75: in floats with G's shared sums (within 1e-6 of the terms'
 * magnitudes) and the path's widest stores 1.29 (AVX2 1.33), and ResNet-18's layer4
 * fine-tuned 156-160 -> 138 ms a step. The same operations per element in the same order
 * on every path, so the same bits. */
static inline __attribute__((always_inline)) void pack_rows(void *ctx, int k, int n,
	void (*put)(float *, const float *, size_t, int))
{
	const pack_job *j = ctx;
	const geom *g = j->g;
	int C = g->c, O = g->oc;
	long lo, hi, CO = (long)C * O;
	/* a chunk's rows of each plane, padded by a line so that the planes fall in
	 * different sets of L1 */
	enum { FS = PACK_CI * 64 + 16 };
	float f[36 * FS];

	par_share(C, k, n, &lo, &hi);
	for (long c0 = lo; c0 < hi; c0 += PACK_CI)
		for (int o0 = 0; o0 < O; o0 += 64) {
			int wb = O - o0 < 64 ? O - o0 : 64;
			int nc = hi - c0 < PACK_CI ? (int)(hi - c0) : PACK_CI;

			for (int i = 0; i < nc; i++) {
				const float *w = j->w + (c0 + i) * O + o0;
				float x[9][64], t[3][6][64];

				for (int q = 0; q < 9; q++)
					if (wb == 64)
						memcpy(x[q], w + q * CO, sizeof x[q]);
					else
						for (int o = 0; o < 64; o++)
							x[q][o] = o < wb ? w[q * CO + o] : 0;
				/* down each column of taps, then along each row of the result, whose 64
				 * columns go to the channel's run in each plane (past wb, a narrow
				 * block's, into the next channel's, which overwrites them) */
				for (int c = 0; c < 3; c++)
					g3(t[c][0], 64, x[c], x[3 + c], x[6 + c]);
				for (int r = 0; r < 6; r++)
					g3(f + r * 6 * FS + i * wb, FS, t[0][r], t[1][r], t[2][r]);
			}
			for (int p = 0; p < 36; p++)
				put(j->u + p * CO + (long)o0 * C + c0 * wb, f + p * FS, (size_t)nc * wb, j->nt);
		}
#if defined(__x86_64__) && defined(__GNUC__)
	/* the stores are weakly ordered: done before the workers' join says so */
	if (j->nt)
		_mm_sfence();
#endif
}

/* pack_rows compiled for each path's vectors; no FMA is contracted (-std=c11), so the
 * same operations and the same bits on each. */
static void pack_plain(void *ctx, int k, int n)
{
	pack_rows(ctx, k, n, pack_put);
}

#ifdef WINO_AVX512
/* pack_put in zmm stores: u's rows start at multiples of 16 floats (convwino_shape's
 * channels), so with u 64-byte aligned (nt 2), so are they. The 1.29 ms above took 2.15
 * in xmm stores. */
WINO_AVX512 static inline __attribute__((always_inline)) void put512(float *d, const float *s,
								     size_t n, int nt)
{
	if (nt != 2)
		pack_put(d, s, n, nt);
	else
		for (size_t i = 0; i < n; i += 16)
			_mm512_stream_ps(d + i, _mm512_loadu_ps(s + i));
}

WINO_AVX2 static inline __attribute__((always_inline)) void put256(float *d, const float *s,
								   size_t n, int nt)
{
	if (nt != 2)
		pack_put(d, s, n, nt);
	else
		for (size_t i = 0; i < n; i += 8)
			_mm256_stream_ps(d + i, _mm256_loadu_ps(s + i));
}

WINO_AVX512 static void pack512(void *ctx, int k, int n)
{
	pack_rows(ctx, k, n, put512);
}

WINO_AVX2 static void pack256(void *ctx, int k, int n)
{
	pack_rows(ctx, k, n, put256);
}
#endif

void convwino_pack(const geom *g, float *u, const float *w, int threads, isa_kind isa)
{
	pack_job j = { .g = g, .u = u, .w = w };
	void (*fn)(void *, int, int) = pack_plain;

	if (convwino_weights(g) * sizeof *u > PACK_NT_BYTES)
		j.nt = (uintptr_t)u % 64 == 0 ? 2 : (uintptr_t)u % 16 == 0;

#ifdef WINO_AVX512
	if (isa == ISA_AVX512 && isa_supported(ISA_AVX512))
		fn = pack512;
	else if (isa != ISA_GENERIC && isa_supported(ISA_AVX2))
		fn = pack256;
#else
	(void)isa;
#endif
	par_run(threads < g->c ? threads : g->c, fn, &j);
}

#ifdef WINO_AVX512
typedef struct {
	const geom *g;
	float *out, *ws;
	const float *in, *u, *b, *keep;
	int B, relu, kact, nb;
	long T;
	int nc, step;   /* shared_tiles' chunk: its tiles from t0, the step under way */
	long t0;
} wino_job;

/* The transforms are additions: written once on GCC's vector extensions (convwino_tf.h)
 * and compiled for a register's width, 16 floats for AVX-512 (one zmm), 8 for AVX2 (one
 * ymm). AVX2 on 16 took two ymm per vector and spilled the tile's 36 (conv_bench nets 1,
 * AVX2, batch 8, ms: def224.conv1_2 30.5-31.5 -> 23.6-24.4, conv2_1 12.4-12.8 ->
 * 10.4-11.1, conv2_2 20.2-21.8 -> 18.7-19.9, def64.conv1_2 2.02-2.14 -> 1.64-1.76; the
 * weight gradients at 224 by a third); AVX-512 on 8 was slower (56x56x64: 3.3-3.8 against
 * 2.8 ms per batch of 8). The same operations per float either way, so the same bits. */
typedef float vf16 __attribute__((vector_size(64)));
typedef int vi16 __attribute__((vector_size(64)));
typedef float vf8 __attribute__((vector_size(32)));
typedef int vi8 __attribute__((vector_size(32)));

#define WTF_V vf16
#define WTF_I vi16
#define WTF_N 16
#define WTF(name) name##16
#include "nn/convwino_tf.h"
#undef WTF_V
#undef WTF_I
#undef WTF_N
#undef WTF
#define WTF_V vf8
#define WTF_I vi8
#define WTF_N 8
#define WTF(name) name##8
#include "nn/convwino_tf.h"
#undef WTF_V
#undef WTF_I
#undef WTF_N
#undef WTF

/* The transforms of a path's width: wide, AVX-512's 16 floats, else AVX2's 8. */
INLINE void input_tile(const geom *g, float *o, long s, const float *img, int y0, int x0, int wide)
{
	if (wide)
		input_tile16(g, o, s, img, y0, x0);
	else
		input_tile8(g, o, s, img, y0, x0);
}

INLINE void output_tile(const geom *g, const float *m, int nb, int t, float *img, const float *keep,
			int kact, int y0, int x0, const float *b, int relu, int wide)
{
	if (wide)
		output_tile16(g, m, nb, t, img, keep, kact, y0, x0, b, relu);
	else
		output_tile8(g, m, nb, t, img, keep, kact, y0, x0, b, relu);
}

INLINE void dout_tile(const geom *g, float *o, long s, const float *img, int y0, int x0, int wide)
{
	if (wide)
		dout_tile16(g, o, s, img, y0, x0);
	else
		dout_tile8(g, o, s, img, y0, x0);
}

/* m's np rows (stride O) x nv vectors of 16 output channels = v's np rows (stride C) times
 * u's C rows (wb floats each): each sum in input-channel order. */
WINO_AVX512 INLINE void gemm_tile512(int np, int nv, const float *v, int C, const float *u, int wb,
				  float *m, int O)
{
	__m512 acc[12][4];

#pragma GCC unroll 12
	for (int p = 0; p < np; p++)
#pragma GCC unroll 4
		for (int q = 0; q < nv; q++)
			acc[p][q] = _mm512_setzero_ps();
	for (int c = 0; c < C; c++, u += wb) {
		__m512 w[4];

#pragma GCC unroll 4
		for (int q = 0; q < nv; q++)
			w[q] = _mm512_loadu_ps(u + 16 * q);
#pragma GCC unroll 12
		for (int p = 0; p < np; p++) {
			__m512 x = _mm512_set1_ps(v[(long)p * C + c]);

#pragma GCC unroll 4
			for (int q = 0; q < nv; q++)
				acc[p][q] = _mm512_fmadd_ps(x, w[q], acc[p][q]);
		}
	}
#pragma GCC unroll 12
	for (int p = 0; p < np; p++)
#pragma GCC unroll 4
		for (int q = 0; q < nv; q++)
			_mm512_storeu_ps(m + (long)p * O + 16 * q, acc[p][q]);
}

/* One position's m block [nb][wb of O] = v [nb][C] x u's block of wb (<= 64) output channels
 * (6 rows x 4 vectors: 24 accumulators), narrower blocks 12 rows at a time. */
WINO_AVX512 static void pos_gemm512(const geom *g, float *mp, const float *vp, const float *up, int wb,
				    int nb)
{
	int C = g->c, O = g->oc, t = 0;

#define GEMM(np, nv) gemm_tile512(np, nv, vp + (long)t * C, C, up, wb, mp + (long)t * O, O)
	switch (wb / 16) {
	case 4:
		for (; t + 6 <= nb; t += 6)
			GEMM(6, 4);
		for (; t + 2 <= nb; t += 2)
			GEMM(2, 4);
		for (; t < nb; t++)
			GEMM(1, 4);
		break;
	case 3:
		for (; t + 8 <= nb; t += 8)
			GEMM(8, 3);
		for (; t < nb; t++)
			GEMM(1, 3);
		break;
	case 2:
		for (; t + 12 <= nb; t += 12)
			GEMM(12, 2);
		for (; t < nb; t++)
			GEMM(1, 2);
		break;
	default:
		for (; t + 12 <= nb; t += 12)
			GEMM(12, 1);
		for (; t < nb; t++)
			GEMM(1, 1);
	}
#undef GEMM
}

/* AVX2: m's np rows x 8 nv output channels = v's np rows times u's C rows, the same sums
 * in the same order as gemm_tile512's (same bits). */
WINO_AVX2 INLINE void gemm_tile256(int np, int nv, const float *v, int C, const float *u, int wb,
				   float *m, int O)
{
	__m256 acc[6][8];

#pragma GCC unroll 6
	for (int p = 0; p < np; p++)
#pragma GCC unroll 8
		for (int q = 0; q < nv; q++)
			acc[p][q] = _mm256_setzero_ps();
	for (int c = 0; c < C; c++, u += wb) {
		__m256 w[8];

#pragma GCC unroll 8
		for (int q = 0; q < nv; q++)
			w[q] = _mm256_loadu_ps(u + 8 * q);
#pragma GCC unroll 6
		for (int p = 0; p < np; p++) {
			__m256 x = _mm256_broadcast_ss(v + (long)p * C + c);

#pragma GCC unroll 8
			for (int q = 0; q < nv; q++)
				acc[p][q] = _mm256_fmadd_ps(x, w[q], acc[p][q]);
		}
	}
#pragma GCC unroll 6
	for (int p = 0; p < np; p++)
#pragma GCC unroll 8
		for (int q = 0; q < nv; q++)
			_mm256_storeu_ps(m + (long)p * O + 8 * q, acc[p][q]);
}

/* pos_gemm512's products on AVX2: 6 rows x 16 output channels (12 of its 16 registers),
 * a 16-channel strip at a time over all the blocks of 6 rows, so that the strip's u stays
 * in L1. The rows past them go 2 at a time 32 channels wide and the last alone 64 wide, 8
 * accumulators each: one row 16 wide had 2, waiting on the FMA's latency at a quarter of
 * the rate, 2 of ResNet-18's 32 tiles a block at 7x7 (batch 8). Each output's sum runs over
 * the channels in order from zero in any tile, so the same bits. */
WINO_AVX2 static void pos_gemm256(const geom *g, float *mp, const float *vp, const float *up, int wb,
				  int nb)
{
	int C = g->c, O = g->oc, t6 = nb - nb % 6, t = t6;

#define GEMM(np, nv, q, t) \
	gemm_tile256(np, nv, vp + (long)(t) * C, C, up + (q), wb, mp + (long)(t) * O + (q), O)
	for (int q = 0; q < wb; q += 16)
		for (int r = 0; r < t6; r += 6)
			GEMM(6, 2, q, r);
	for (; t + 2 <= nb; t += 2) {
		int q = 0;

		for (; q + 32 <= wb; q += 32)
			GEMM(2, 4, q, t);
		if (q < wb)
			GEMM(2, 2, q, t);
	}
	if (t < nb)
		switch (wb / 16) {
		case 4:
			GEMM(1, 8, 0, t);
			break;
		case 3:
			GEMM(1, 6, 0, t);
			break;
		case 2:
			GEMM(1, 4, 0, t);
			break;
		default:
			GEMM(1, 2, 0, t);
		}
#undef GEMM
}

/* The GEMMs of position p and output channels ob..ob+63 (or to O) over a block of nb tiles:
 * v [36][nb][C], m [36][nb][O], u as convwino_pack lays it out. */
INLINE void gemm_item(const geom *g, float *m, const float *v, const float *u, int nb, int p,
		      int ob, int wide)
{
	int C = g->c, O = g->oc, wb = O - ob < 64 ? O - ob : 64;
	const float *up = u + (long)p * C * O + (long)ob * C, *vp = v + p * plane(nb, C);
	float *mp = m + p * plane(nb, O) + ob;

	if (wide)
		pos_gemm512(g, mp, vp, up, wb, nb);
	else
		pos_gemm256(g, mp, vp, up, wb, nb);
}

/* Prefetches the inputs that tile T (of the batch) reads and the tile before it in its
 * row did not: its right 4 columns of 6 rows, if inside the image. */
INLINE void prefetch_tile(const geom *g, const float *in, long T, long per, int TX)
{
	long r = T % per, rs = (long)g->w * g->c;
	int y0 = (int)(r / TX) * 4 - g->pt, x0 = (int)(r % TX) * 4 - g->pl + 2;
	const char *a = (const char *)(in + (T / per * g->h + y0) * rs + (long)x0 * g->c);

	if (y0 < 0 || x0 < 0 || y0 + 6 > g->h || x0 + 4 > g->w)
		return;
	for (int y = 0; y < 6; y++)
		for (long o = 0; o < 4L * g->c * (long)sizeof *in; o += 64)
			_mm_prefetch(a + y * rs * (long)sizeof *in + o, _MM_HINT_T0);
}

/* Tile T of the batch into row t of a block of nb tiles' v, and back out of m. */
INLINE void tile_in(const wino_job *j, float *v, int nb, int t, long T, int wide)
{
	const geom *g = j->g;
	int TX = tiles_x(g);
	long per = (long)tiles_y(g) * TX, r = T % per;

	input_tile(g, v + (long)t * g->c, plane(nb, g->c), j->in + T / per * g->h * g->w * g->c,
		   (int)(r / TX) * 4 - g->pt, (int)(r % TX) * 4 - g->pl, wide);
}

INLINE void tile_out(const wino_job *j, const float *m, int nb, int t, long T, int wide)
{
	const geom *g = j->g;
	int TX = tiles_x(g);
	long per = (long)tiles_y(g) * TX, r = T % per;

	long img = T / per * g->oh * g->ow * g->oc;

	output_tile(g, m, nb, t, j->out + img, j->keep ? j->keep + img : NULL, j->kact,
		    (int)(r / TX) * 4, (int)(r % TX) * 4, j->b, j->relu, wide);
}

/* Tiles lo..hi-1 of the batch into rows lo - first.. of the block, prefetching ahead. */
INLINE void tiles_in(const wino_job *j, float *v, int nb, long first, long lo, long hi, int wide)
{
	int TX = tiles_x(j->g);
	long per = (long)tiles_y(j->g) * TX;

	for (long T = lo; T < hi; T++) {
		if (T + WINO_AHEAD < hi)
			prefetch_tile(j->g, j->in, T + WINO_AHEAD, per, TX);
		tile_in(j, v, nb, (int)(T - first), T, wide);
	}
}

/* Worker k's share of the batch's tiles, a block of up to nb at a time: transform in,
 * 36 GEMMs, transform out; wide: on AVX-512, else AVX2. */
INLINE void own_blocks(const wino_job *j, int k, int n, int wide)
{
	const geom *g = j->g;
	long lo, hi;
	float *v = j->ws + (size_t)k * 36 * (plane(j->nb, g->c) + plane(j->nb, g->oc));
	float *m = v + (size_t)36 * plane(j->nb, g->c);

	par_share(j->T, k, n, &lo, &hi);
	for (long t0 = lo; t0 < hi; t0 += j->nb) {
		int nb = hi - t0 < j->nb ? (int)(hi - t0) : j->nb;

		tiles_in(j, v, nb, t0, t0, t0 + nb, wide);
		for (int p = 0; p < 36; p++)
			for (int ob = 0; ob < g->oc; ob += 64)
				gemm_item(g, m, v, j->u, nb, p, ob, wide);
		for (int t = 0; t < nb; t++)
			tile_out(j, m, nb, t, t0 + t, wide);
	}
}

/* Worker k's share of one step of the shared chunk of nc tiles from t0: its tiles' inputs
 * (step 0), its positions and output channels' GEMMs (1), its tiles' outputs (2). */
INLINE void shared_step(const wino_job *j, int k, int n, int wide)
{
	const geom *g = j->g;
	int nob = (g->oc + 63) / 64;
	long lo, hi;
	float *v = j->ws, *m = v + (size_t)36 * plane(j->nc, g->c);

	par_share(j->step == 1 ? 36L * nob : j->nc, k, n, &lo, &hi);
	if (j->step == 0)
		tiles_in(j, v, j->nc, j->t0, j->t0 + lo, j->t0 + hi, wide);
	for (long i = lo; j->step == 1 && i < hi; i++)
		gemm_item(g, m, v, j->u, j->nc, (int)(i / nob), (int)(i % nob) * 64, wide);
	for (long t = lo; j->step == 2 && t < hi; t++)
		tile_out(j, m, j->nc, (int)t, j->t0 + t, wide);
}

INLINE void worker(const wino_job *j, int k, int n, int wide)
{
	if (j->nc)
		shared_step(j, k, n, wide);
	else
		own_blocks(j, k, n, wide);
}

WINO_AVX512 static void worker512(void *ctx, int k, int n)
{
	worker(ctx, k, n, 1);
}

WINO_AVX2 static void worker256(void *ctx, int k, int n)
{
	worker(ctx, k, n, 0);
}

/* The weight gradient. dw [3][3] = G^T (sum over tiles of Y * V) G, position by position,
 * where V = B^T d B is the forward's transform of the tile's 6x6 inputs and Y = A y A^T
 * that of its 4x4 output gradients y (zero past the output's edge): F(3x3, 4x4), the
 * forward's F(4x4, 3x3) with the roles of the kernel and the outputs swapped (by the
 * transposition principle; A y A^T at position (1, 1) is the tile's sum of y: the bias
 * gradient). Per position, the sums over tiles are a GEMM [cin x tiles] x
 * [tiles x cout] into M [36][cin][cout]. The threads share chunks of tiles: together they
 * transform a chunk (step 0), then split its GEMMs by position and output block (1), each
 * adding into its own part of M; each of M's sums runs in tile order, whatever the chunks
 * and threads. The chunk is tile-major, v [tiles][36][cin] and y [tiles][36][cout]
 * (tile_floats apart), so a tile's transforms store in sequence, where 72 planes took a
 * stream each: conv1_2 at 224, 2 threads, Zen 5, 13.6-14.5 -> 12.4-12.7 ms, one thread
 * 25.1-25.6 -> 23.6-24.4 (bench/conv_bench 224; the stores were ~37% of the transforms,
 * which are ~2/3 of the time, the GEMMs the rest). */
typedef struct {
	const geom *g;
	const float *in, *dout;
	float *ws;      /* M [36][C][O], the bias sums [O], then the chunk's v, then its y */
	float *dw, *db;
	int nc, step, acc;
	long T, t0;
} wgrad_job;

/* Prefetches the output gradients of tile T (of the batch), if inside the map: they are
 * read once, where prefetch_tile's inputs are mostly the last tile's (conv_bench 224,
 * AVX2, ms: conv2_1 13.1 -> 11.9, conv2_2 21.6 -> 19.3; AVX-512 within noise). */
INLINE void prefetch_dout(const geom *g, const float *dout, long T, long per, int TX)
{
	long r = T % per, rs = (long)g->ow * g->oc * (long)sizeof *dout;
	int y0 = (int)(r / TX) * 4, x0 = (int)(r % TX) * 4;
	const char *a = (const char *)(dout + ((T / per * g->oh + y0) * g->ow + x0) * g->oc);

	if (y0 + 4 > g->oh || x0 + 4 > g->ow)
		return;
	for (int y = 0; y < 4; y++)
		for (long o = 0; o < 4L * g->oc * (long)sizeof *dout; o += 64)
			_mm_prefetch(a + y * rs + o, _MM_HINT_T0);
}

/* M's R rows (input channels, stride O) x nv vectors of 16 output channels, plus the sums
 * over nt tiles of v's column times y's row (v's tiles vs floats apart, y's ys): from zero
 * where first, else from M. */
WINO_AVX512 INLINE void wtile512(int R, int nv, const float *v, long vs, const float *y, long ys,
				 int O, int nt, float *mm, int first)
{
	__m512 acc[12][4];

#pragma GCC unroll 12
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int q = 0; q < nv; q++)
			acc[r][q] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(mm + (long)r * O + 16 * q);
	for (int t = 0; t < nt; t++, v += vs, y += ys) {
		__m512 w[4];

		/* the tiles are 4.7 KB apart: past the stride an Intel L1 prefetcher follows,
		 * and each on another 4 KB page, where the L2 streamer stops */
#pragma GCC unroll 4
		for (int q = 0; q < nv; q++)
			_mm_prefetch((const char *)(y + WINO_WPF * ys + 16 * q), _MM_HINT_T0);
		_mm_prefetch((const char *)(v + WINO_WPF * vs), _MM_HINT_T0);
		_mm_prefetch((const char *)(v + WINO_WPF * vs + R - 1), _MM_HINT_T0);
#pragma GCC unroll 4
		for (int q = 0; q < nv; q++)
			w[q] = _mm512_loadu_ps(y + 16 * q);
#pragma GCC unroll 12
		for (int r = 0; r < R; r++) {
			__m512 x = _mm512_set1_ps(v[r]);

#pragma GCC unroll 4
			for (int q = 0; q < nv; q++)
				acc[r][q] = _mm512_fmadd_ps(x, w[q], acc[r][q]);
		}
	}
#pragma GCC unroll 12
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int q = 0; q < nv; q++)
			_mm512_storeu_ps(mm + (long)r * O + 16 * q, acc[r][q]);
}

WINO_AVX512 static void wpos512_block(int C, int O, float *mm, const float *vp, long vs,
				      const float *yp, long ys, int wb, int nt, int first)
{
	int c = 0;

#define WT(R, nv) wtile512(R, nv, vp + c, vs, yp, ys, O, nt, mm + (long)c * O, first)
	switch (wb / 16) {
	case 4:
		for (; c + 6 <= C; c += 6)
			WT(6, 4);
		for (; c + 4 <= C; c += 4)
			WT(4, 4);
		for (; c < C; c += 2)
			WT(2, 4);
		break;
	case 3:
		for (; c < C; c += 8)
			WT(8, 3);
		break;
	case 2:
		for (; c + 12 <= C; c += 12)
			WT(12, 2);
		for (; c < C; c += 4)
			WT(4, 2);
		break;
	default:
		for (; c + 12 <= C; c += 12)
			WT(12, 1);
		for (; c < C; c += 4)
			WT(4, 1);
	}
#undef WT
}

/* One position's M rows, all C of them, for wb (<= 64) output channels: 6 rows x 4 vectors
 * (8 x 3, 12 x 2, 12 x 1 for narrower blocks), then 4 and 2 rows (C is a multiple of 16);
 * WINO_WTB512 tiles at a time, so that a block's lines stay in L1 across its passes (one
 * per block of rows), each sum still in tile order, through M between blocks (the same
 * bits). With wtile512's prefetches, conv1_2's weight gradient at 224 (batch 10, 2
 * threads, an Intel Xeon, AVX-512) 35.4-37.0 -> 28.5-28.9 ms; blocks alone 33.5,
 * prefetches alone 30.0-31.6. */
WINO_AVX512 static void wpos512(int C, int O, float *mm, const float *vp, long vs, const float *yp,
				long ys, int wb, int nt, int first)
{
	for (int t = 0; t < nt; t += WINO_WTB512) {
		int n = nt - t < WINO_WTB512 ? nt - t : WINO_WTB512;

		wpos512_block(C, O, mm, vp + t * vs, vs, yp + t * ys, ys, wb, n, first && t == 0);
	}
}

/* AVX2: M's R rows x 16 output channels (two vectors), the same sums in the same order as
 * wtile512's (same bits). */
WINO_AVX2 INLINE void wtile256(int R, const float *v, long vs, const float *y, long ys, int O, int nt,
			       float *mm, int first)
{
	__m256 acc[6][2];

#pragma GCC unroll 6
	for (int r = 0; r < R; r++)
		for (int q = 0; q < 2; q++)
			acc[r][q] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(mm + (long)r * O + 8 * q);
	for (int t = 0; t < nt; t++, v += vs, y += ys) {
		__m256 w0 = _mm256_loadu_ps(y), w1 = _mm256_loadu_ps(y + 8);

#pragma GCC unroll 6
		for (int r = 0; r < R; r++) {
			__m256 x = _mm256_broadcast_ss(v + r);

			acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);
			acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);
		}
	}
#pragma GCC unroll 6
	for (int r = 0; r < R; r++)
		for (int q = 0; q < 2; q++)
			_mm256_storeu_ps(mm + (long)r * O + 8 * q, acc[r][q]);
}

/* wpos512's sums on AVX2, WINO_WTB tiles at a time: a pass of wtile256 reads one line of y
 * and one of v per tile for 12 FMAs, where wtile512's reads 2-3 lines for 24 twice as wide,
 * and over a whole chunk (~900 tiles, 4.7 KB apart) those lines come from L2 again for
 * every block of rows: the GEMMs ran at ~47% of the FMA peak on a Zen 4, where its 512-bit
 * FMAs are two 256-bit ones and AVX2's peak is AVX-512's. 32 tiles' lines stay in L1
 * across the passes; each sum still runs in tile order, through M between blocks (the
 * same bits). */
WINO_AVX2 static void wpos256(int C, int O, float *mm, const float *vp, long vs, const float *yp,
			      long ys, int wb, int nt, int first)
{
	for (int t = 0; t < nt; t += WINO_WTB) {
		int n = nt - t < WINO_WTB ? nt - t : WINO_WTB, f = first && t == 0;
		const float *vt = vp + t * vs, *yt = yp + t * ys;

		for (int q = 0; q < wb; q += 16) {
			int c = 0;

			/* C (a multiple of 16) = 6k + 2 ends in two blocks of 4 rows, not one
			 * of 2, whose 4 accumulators would wait on the FMA latency: conv_bench
			 * 224 1, AVX2 on a Zen 4, dw by Winograd, conv1_2 157-166 -> 164-172
			 * GFLOP/s, conv2_1 182-189 -> 184-197 */
			for (; c + 6 <= C && C - c != 8; c += 6)
				wtile256(6, vt + c, vs, yt + q, ys, O, n, mm + (long)c * O + q, f);
			for (; c < C; c += 4)
				wtile256(4, vt + c, vs, yt + q, ys, O, n, mm + (long)c * O + q, f);
		}
	}
}

/* Worker k's share of a step of the chunk of nc tiles from t0: its tiles' v and y (step
 * 0), or its (position, output block) items' GEMMs into M (1), position 7's adding its
 * y rows into the bias sums as well. */
INLINE void wgrad_step(const wgrad_job *j, int k, int n, int wide)
{
	const geom *g = j->g;
	int C = g->c, O = g->oc, nob = (O + 63) / 64, TX = tiles_x(g);
	long per = (long)tiles_y(g) * TX, lo, hi;
	long vs = tile_floats(C), ys = tile_floats(O);
	float *mw = j->ws, *dbs = mw + (size_t)36 * C * O, *v = dbs + O, *y = v + j->nc * vs;

	par_share(j->step ? 36L * nob : j->nc, k, n, &lo, &hi);
	for (long i = lo; !j->step && i < hi; i++) {
		long T = j->t0 + i, r = T % per;
		int y0 = (int)(r / TX) * 4, x0 = (int)(r % TX) * 4;

		if (T + WINO_AHEAD < j->t0 + hi) {
			prefetch_tile(g, j->in, T + WINO_AHEAD, per, TX);
			prefetch_dout(g, j->dout, T + WINO_AHEAD, per, TX);
		}
		input_tile(g, v + i * vs, C, j->in + T / per * g->h * g->w * C, y0 - g->pt, x0 - g->pl, wide);
		dout_tile(g, y + i * ys, O, j->dout + T / per * g->oh * g->ow * O, y0, x0, wide);
	}
	for (long i = lo; j->step && i < hi; i++) {
		int p = (int)(i / nob), ob = (int)(i % nob) * 64, wb = O - ob < 64 ? O - ob : 64;
		const float *vp = v + (long)p * C, *yp = y + (long)p * O + ob;
		float *mm = mw + (long)p * C * O + ob;

		if (wide)
			wpos512(C, O, mm, vp, vs, yp, ys, wb, j->nc, j->t0 == 0);
		else
			wpos256(C, O, mm, vp, vs, yp, ys, wb, j->nc, j->t0 == 0);
		if (p != 7 || !j->db)
			continue;
		for (int o = ob; o < ob + wb; o += 16) {
			vf16 s = { 0 }, x;

			if (j->t0)
				memcpy(&s, dbs + o, sizeof s);
			for (int t = 0; t < j->nc; t++) {
				memcpy(&x, yp + t * ys + (o - ob), sizeof x);
				s += x;
			}
			memcpy(dbs + o, &s, sizeof s);
		}
	}
}

/* G^T x for one column (or row) of 6 to 3: G^T's rows (1/4 -1/6 -1/6 1/24 1/24 0),
 * (0 -1/6 1/6 1/12 -1/12 0), (0 -1/6 -1/6 1/6 1/6 1). */
INLINE void gt6(vf16 y[3], const vf16 x[6])
{
	vf16 a = x[1] + x[2], b = x[3] + x[4];

	y[0] = 0.25f * x[0] - a * (1.0f / 6) + b * (1.0f / 24);
	y[1] = (x[2] - x[1]) * (1.0f / 6) + (x[3] - x[4]) * (1.0f / 12);
	y[2] = (b - a) * (1.0f / 6) + x[5];
}

/* Floats ahead of its reads that wout prefetches in each of M's 36 planes: they are 36
 * streams at once, past what the prefetchers follow, and M (36 x cin x cout) comes from
 * memory for wide layers. Without, 79% of wout's time was its loads (perf), ~40% of the
 * weight gradient of ResNet-18's 7x7x512 at batch 10 (Zen 4). */
#define WOUT_AHEAD 128

/* Worker k's input channels of dw [3][3][C][O] = (acc: dw +) G^T M G, 16 output channels
 * at a time; worker 0 sets db from the bias sums as well. */
INLINE void wout(const wgrad_job *j, int k, int n)
{
	const geom *g = j->g;
	long C = g->c, O = g->oc, lo, hi;
	const float *mw = j->ws, *dbs = mw + (size_t)36 * C * O;

	par_share(C, k, n, &lo, &hi);
	for (long ci = lo; ci < hi; ci++)
		for (long o = 0; o < O; o += 16) {
			vf16 t[3][6];

			for (int p = 0; p < 36; p++)
				_mm_prefetch((const char *)(mw + (p * C + ci) * O + o + WOUT_AHEAD), _MM_HINT_T0);
			for (int p = 0; p < 6; p++) {
				vf16 x[6], y[3];

				for (int q = 0; q < 6; q++)
					memcpy(&x[q], mw + ((6 * p + q) * C + ci) * O + o, sizeof x[q]);
				gt6(y, x);
				for (int kx = 0; kx < 3; kx++)
					t[kx][p] = y[kx];
			}
			for (int kx = 0; kx < 3; kx++) {
				vf16 y[3], d;

				gt6(y, t[kx]);
				for (int ky = 0; ky < 3; ky++) {
					float *dp = j->dw + ((ky * 3 + kx) * C + ci) * O + o;

					d = y[ky];
					if (j->acc) {
						memcpy(&d, dp, sizeof d);
						d += y[ky];
					}
					memcpy(dp, &d, sizeof d);
				}
			}
		}
	for (long o = 0; k == 0 && j->db && o < O; o++)
		j->db[o] = j->acc ? j->db[o] + dbs[o] : dbs[o];
}

WINO_AVX512 static void wout512(void *ctx, int k, int n)
{
	wout(ctx, k, n);
}

WINO_AVX2 static void wout256(void *ctx, int k, int n)
{
	wout(ctx, k, n);
}

WINO_AVX512 static void wgrad512(void *ctx, int k, int n)
{
	wgrad_step(ctx, k, n, 1);
}

WINO_AVX2 static void wgrad256(void *ctx, int k, int n)
{
	wgrad_step(ctx, k, n, 0);
}
#endif

/* Tiles of the weight gradient's chunk: its v and y, as large as the forward's shared
 * chunk (~8 MB), which the GEMMs of step 1 read position by position. 2^17 to 2^21 floats
 * measured the same (conv_bench 224, AVX-512: conv1_2 15.6-16.6 ms, conv2_2 8.3-9.7), and
 * 2^18 to 2^21 again once tile-major, but for ResNet-18's 7x7x512 at batch 10 (5.4-5.7 ms
 * at 2^18, 3.8-3.9 at 2^21). */
static int wgrad_tiles(const geom *g)
{
	long nc = WINO_SHARED_FLOATS / (36L * (g->c + g->oc));

	return nc < 1 ? 1 : (int)nc;
}

/* Each pair of channels pays a fixed cost (M written and read per chunk, then G^T M G) and
 * 36 products per tile, against 9 per output pixel for the direct sums. Measured against
 * convdirect_wgrad (AVX-512, 2 threads, ms): 7x7x512 at batch 10 (40 tiles) 4.4 vs 7.3,
 * at batch 2 (8 tiles) 2.7 vs 1.5; 14x14x256 at batch 2 (32 tiles) 1.0 vs 1.1; where M
 * stays in L2 (1 MB) its cost is small at any count. */
int convwino_wgrad_wins(const geom *g, int B)
{
	return (long)B * tiles_y(g) * tiles_x(g) >= 32 || 36L * g->c * g->oc <= 1L << 18;
}

size_t convwino_wgrad_workspace(const geom *g)
{
	int nc = wgrad_tiles(g);

	return (size_t)36 * g->c * g->oc + g->oc + (size_t)nc * (tile_floats(g->c) + tile_floats(g->oc));
}

void convwino_wgrad(const geom *g, float *dw, float *db, const float *dout, const float *in, int B,
		    int acc, int threads, float *ws, isa_kind isa)
{
#ifdef WINO_AVX512
	wgrad_job j = { .g = g, .in = in, .dout = dout, .ws = ws, .dw = dw, .db = db, .acc = acc,
			.T = (long)B * tiles_y(g) * tiles_x(g) };
	int wide = isa == ISA_AVX512 && isa_supported(ISA_AVX512), nc = wgrad_tiles(g);

	for (j.t0 = 0; j.t0 < j.T; j.t0 += nc) {
		j.nc = j.T - j.t0 < nc ? (int)(j.T - j.t0) : nc;
		for (j.step = 0; j.step < 2; j.step++)
			par_run(threads, wide ? wgrad512 : wgrad256, &j);
	}
	par_run(threads < g->c ? threads : g->c, wide ? wout512 : wout256, &j);
#else
	(void)g, (void)dw, (void)db, (void)dout, (void)in, (void)B, (void)acc, (void)threads;
	(void)ws, (void)isa;
#endif
}

static void run(const geom *g, float *out, const float *in, const float *u, const float *b,
		int relu, const float *keep, int kact, int B, int threads, float *ws, isa_kind isa)
{
#ifdef WINO_AVX512
	wino_job j = { .g = g, .out = out, .ws = ws, .in = in, .u = u, .b = b, .keep = keep, .B = B,
		       .relu = relu, .kact = kact, .nb = block_tiles(g),
		       .T = (long)B * tiles_y(g) * tiles_x(g) };
	int wide = isa == ISA_AVX512 && isa_supported(ISA_AVX512);
	void (*fn)(void *, int, int) = wide ? worker512 : worker256;
	int nc = shared_tiles(g);

	if (!nc) {
		par_run(threads > j.T ? (int)j.T : threads, fn, &j);
		return;
	}
	for (j.t0 = 0; j.t0 < j.T; j.t0 += nc) {
		j.nc = j.T - j.t0 < nc ? (int)(j.T - j.t0) : nc;
		for (j.step = 0; j.step < 3; j.step++)
			par_run(threads, fn, &j);
	}
#else
	(void)g, (void)out, (void)in, (void)u, (void)b, (void)relu, (void)keep, (void)kact, (void)B;
	(void)threads, (void)ws, (void)isa;
#endif
}

void convwino_forward(const geom *g, float *out, const float *in, const float *u,
		      const float *b, int relu, int B, int threads, float *ws, isa_kind isa)
{
	run(g, out, in, u, b, relu, NULL, 0, B, threads, ws, isa);
}

void convwino_forward_keep(const geom *g, float *out, const float *in, const float *u,
			   const float *keep, int kact, int B, int threads, float *ws, isa_kind isa)
{
	run(g, out, in, u, NULL, 0, keep, kact, B, threads, ws, isa);
}
