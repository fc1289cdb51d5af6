/* dense: fully connected layers; for a small batch over a large weight matrix (fc1) a
 * streaming path that reads w once per step, else sgemm. */
#include "nn/dense.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
/* AVX2+FMA versions of the streaming dense kernels, compiled for that target only and
 * taken when the caller's isa allows (nn/isa.h): the build itself stays baseline x86-64. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DENSE_AVX2 __attribute__((target("avx2,fma")))
#endif

#include "nn/blas.h"
#include "nn/vec.h"
#include "util/par.h"

/* The streaming dense backward: worth it when w is large and the batch small, where
 * sgemm's two calls (dw, din) each stream w or dw through its packing. */
#define DENSE_STREAM_MAX_B 32
#define DENSE_STREAM_MIN_W (1 << 20)
#define DENSE_FWD_MAX_B 32

int dense_streams(int B, int nin, int nout)
{
	return B <= DENSE_STREAM_MAX_B && (int64_t)nin * nout >= DENSE_STREAM_MIN_W;
}

typedef struct {
	float *din, *dw, *out;
	const float *in, *w, *dout;
	const float *relu_y; /* not NULL: din only where relu_y [B, nin] > 0, else 0 */
	int B, nin, nout, acc;
	int avx2;      /* the AVX2+FMA loops (isa >= ISA_AVX2), else portable C */
	int avx512;    /* the forward's AVX-512 loop (isa >= ISA_AVX512) */
	long lo, hi;   /* rows of w */
	dense_row_fn row; /* not NULL: dw's rows go to it, not to dw */
	void *ctx;
} dense_job;

/* y[0..n) += a * x[0..n) */
static void axpy(float *restrict y, float a, const float *restrict x, int n)
{
	int j = 0;
#if defined(__SSE2__)
	__m128 va = _mm_set1_ps(a);

	for (; j + 4 <= n; j += 4)
		_mm_storeu_ps(y + j, _mm_add_ps(_mm_loadu_ps(y + j), _mm_mul_ps(va, _mm_loadu_ps(x + j))));
#endif
	for (; j < n; j++)
		y[j] += a * x[j];
}

static float dot(const float *restrict x, const float *restrict y, int n)
{
	float s = 0;
	int j = 0;
#if defined(__SSE2__)
	__m128 v = _mm_setzero_ps();
	float t[4];

	for (; j + 4 <= n; j += 4)
		v = _mm_add_ps(v, _mm_mul_ps(_mm_loadu_ps(x + j), _mm_loadu_ps(y + j)));
	_mm_storeu_ps(t, v);
	s = (t[0] + t[1]) + (t[2] + t[3]);
#endif
	for (; j < n; j++)
		s += x[j] * y[j];
	return s;
}

#ifdef DENSE_AVX2
DENSE_AVX2 static float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
	return _mm_cvtss_f32(s);
}

/* Batch rows per group in the AVX2 backward: din's pass holds an accumulator each plus
 * w's and dout's vectors, dw's a broadcast input each plus dw's and dout's vectors: 14 of
 * the 16 ymm registers. */
#define DENSE_BWD_GROUP 12
/* Rows of w ahead that the AVX2 backward prefetches (fc1, 2 threads, Zen 5: 2 to 8 are
 * alike, none is 1.7x slower). */
#define DENSE_BWD_AHEAD 4

/* din for row i of w and the G batch rows bs[0..G), AVX2, G a constant once inlined (so
 * the loop over the group unrolls and the accumulators stay in registers): each load of w
 * feeds G FMAs, 8 lanes per batch row, summed at the row's end. A batch row's sum is its
 * own, whichever rows share its group. */
DENSE_AVX2 static inline __attribute__((always_inline)) void
bwd_din(const dense_job *j, long i, const int *bs, const int G)
{
	long nin = j->nin;
	int n = j->nout, nv = n / 8 * 8;
	const float *wr = j->w + i * n, *d[DENSE_BWD_GROUP];
	float tail[DENSE_BWD_GROUP];
	__m256 acc[DENSE_BWD_GROUP];

#pragma GCC unroll 12
	for (int b = 0; b < G; b++) {
		d[b] = j->dout + (long)bs[b] * n;
		acc[b] = _mm256_setzero_ps();
		tail[b] = 0.0f;
	}
	for (int s = 0; s < nv; s += 8) {
		__m256 wv = _mm256_loadu_ps(wr + s);

		/* without it the loop waits on w at each row's start: rows are short (fc1: 2 KB)
		 * and the row callback's own streams come between them; into L2, as Adam's
		 * (optim.c says what that gained) */
		_mm_prefetch((const char *)(wr + s + DENSE_BWD_AHEAD * (long)n), _MM_HINT_T1);
#pragma GCC unroll 12
		for (int b = 0; b < G; b++)
			acc[b] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(d[b] + s), acc[b]);
	}
	for (int s = nv; s < n; s++)
#pragma GCC unroll 12
		for (int b = 0; b < G; b++)
			tail[b] += wr[s] * d[b][s];
#pragma GCC unroll 12
	for (int b = 0; b < G; b++)
		j->din[(long)bs[b] * nin + i] = hsum8(acc[b]) + tail[b];
}

/* dw's row += the K dout rows nz[0..K) times their inputs x[0..K) (in batch order), AVX2,
 * K a constant once inlined; fresh: onto zeros, not onto dwr. */
DENSE_AVX2 static inline __attribute__((always_inline)) void
bwd_dw(const dense_job *j, const int *nz, const float *x, const int K, int fresh, float *dwr)
{
	int n = j->nout, nv = n / 8 * 8;
	const float *d[DENSE_BWD_GROUP];
	__m256 xv[DENSE_BWD_GROUP];

#pragma GCC unroll 12
	for (int k = 0; k < K; k++) {
		d[k] = j->dout + (long)nz[k] * n;
		xv[k] = _mm256_set1_ps(x[k]);
	}
	for (int s = 0; s < nv; s += 8) {
		__m256 g = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(dwr + s);

#pragma GCC unroll 12
		for (int k = 0; k < K; k++)
			g = _mm256_fmadd_ps(xv[k], _mm256_loadu_ps(d[k] + s), g);
		_mm256_storeu_ps(dwr + s, g);
	}
	for (int s = nv; s < n; s++) {
		float g = fresh ? 0.0f : dwr[s];

#pragma GCC unroll 12
		for (int k = 0; k < K; k++)
			g += x[k] * d[k][s];
		dwr[s] = g;
	}
}

/* Backward, AVX2, row by row of w: din's pass reads the row once for the batch rows din
 * is wanted for (with relu_y, those the ReLU let through: after fc1's dropout that keeps
 * 20%, a few of 10; fc1's backward 41 -> 33 ms at 224, batch 10, 2 threads, Zen 5), in as
 * few groups of at most DENSE_BWD_GROUP rows as cover them, of near equal sizes (10: one
 * group; 16: 8 + 8), so no FMA is spent on padding rows; then dw's pass, from L1, over
 * the batch rows whose input is not zero (the same few): their FMAs would add +0 (the
 * portable loop skips them too), so dw keeps its bits, summed in batch order whatever
 * the grouping. Measured on fc1 (Zen 5): one pass feeding din and dw from each load was
 * slower, its 2B FMAs per 8 columns spilling registers for B > 5. */
DENSE_AVX2 static void bwd_avx2(const dense_job *j, float *row)
{
	int nz[DENSE_STREAM_MAX_B], all[DENSE_STREAM_MAX_B];
	float x[DENSE_STREAM_MAX_B];

	for (int b = 0; b < j->B; b++)
		all[b] = b;
	for (long i = j->lo; i < j->hi; i++) {
		float *dwr = j->row ? row : j->dw + i * j->nout;
		int K = 0, fresh = !j->acc || j->row, nb = j->B, live[DENSE_STREAM_MAX_B];
		const int *bs = all;

		if (j->din && j->relu_y) {
			/* the masked rows' din is 0 whatever w holds: no FMA spent on them */
			nb = 0, bs = live;
			for (int b = 0; b < j->B; b++)
				if (j->relu_y[(long)b * j->nin + i] > 0.0f)
					live[nb++] = b;
				else
					j->din[(long)b * j->nin + i] = 0.0f;
		}
		int ng = (nb + DENSE_BWD_GROUP - 1) / DENSE_BWD_GROUP;

		for (int k = 0, b0 = 0; j->din && k < ng; k++) {
			int G = nb / ng + (k < nb % ng);

			switch (G) {
#define DENSE_BWD_CASE(g) case g: bwd_din(j, i, bs + b0, g); break;
			DENSE_BWD_CASE(1) DENSE_BWD_CASE(2) DENSE_BWD_CASE(3) DENSE_BWD_CASE(4)
			DENSE_BWD_CASE(5) DENSE_BWD_CASE(6) DENSE_BWD_CASE(7) DENSE_BWD_CASE(8)
			DENSE_BWD_CASE(9) DENSE_BWD_CASE(10) DENSE_BWD_CASE(11) DENSE_BWD_CASE(12)
#undef DENSE_BWD_CASE
			}
			b0 += G;
		}
		for (int b = 0; b < j->B; b++) {
			float a = j->in[(long)b * j->nin + i];

			if (a != 0.0f)
				nz[K] = b, x[K++] = a;
		}
		if (K == 0 && fresh)
			memset(dwr, 0, sizeof *dwr * j->nout);
		for (int k = 0, k0 = 0, nk = (K + DENSE_BWD_GROUP - 1) / DENSE_BWD_GROUP; k < nk; k++) {
			int G = K / nk + (k < K % nk), f = fresh && k == 0;

			switch (G) {
#define DENSE_BWD_CASE(g) case g: bwd_dw(j, nz + k0, x + k0, g, f, dwr); break;
			DENSE_BWD_CASE(1) DENSE_BWD_CASE(2) DENSE_BWD_CASE(3) DENSE_BWD_CASE(4)
			DENSE_BWD_CASE(5) DENSE_BWD_CASE(6) DENSE_BWD_CASE(7) DENSE_BWD_CASE(8)
			DENSE_BWD_CASE(9) DENSE_BWD_CASE(10) DENSE_BWD_CASE(11) DENSE_BWD_CASE(12)
#undef DENSE_BWD_CASE
			}
			k0 += G;
		}
		if (j->row)
			j->row(j->ctx, i, dwr);
	}
}
#endif

#ifdef DENSE_AVX2
/* y[0..n) += a * x[0..n), AVX2 with FMA. */
DENSE_AVX2 static void axpy_avx2(float *restrict y, float a, const float *restrict x, int n)
{
	__m256 va = _mm256_set1_ps(a);
	int j = 0;

	for (; j + 8 <= n; j += 8)
		_mm256_storeu_ps(y + j, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + j), _mm256_loadu_ps(y + j)));
	for (; j < n; j++)
		y[j] = fmaf(a, x[j], y[j]);
}
#endif

#ifdef DENSE_AVX2
#define DENSE_FWD_IB 128   /* rows of w per block: block x thread's columns stays in L2 */
/* A block of w's rows takes the tiles when at least 1 in DENSE_FWD_SPARSE of the batch's
 * inputs there is not zero, else the lists. fc1's forward, 2 threads, Zen 5, inputs zero at
 * random: AVX-512's tiles are as fast as the lists at 5% nonzero and faster above, 1.2x
 * at 20% (training's dropout and ReLU), 2x at 50%; AVX2's are 10% slower at 5%, even at
 * 10%. Re-measure: bench/dense_fwd.c with its inputs thinned. */
#define DENSE_FWD_SPARSE 10

typedef struct {
	int idx[DENSE_STREAM_MAX_B][DENSE_FWD_IB];   /* per batch row, its nonzero inputs' rows */
	float val[DENSE_STREAM_MAX_B][DENSE_FWD_IB]; /* in the block, and their values */
	int cnt[DENSE_STREAM_MAX_B];
} fwd_block;

/* Lists each batch row's nonzero inputs among w's rows i0..i1. */
static void fwd_list(const dense_job *j, long i0, long i1, fwd_block *k)
{
	for (int b = 0; b < j->B; b++) {
		const float *x = j->in + (long)b * j->nin;

		k->cnt[b] = 0;
		for (long i = i0; i < i1; i++)
			if (x[i] != 0.0f) {
				k->idx[b][k->cnt[b]] = (int)(i - i0);
				k->val[b][k->cnt[b]++] = x[i];
			}
	}
}

/* w's rows i0..i1, columns c..c+64, copied together: read in row order (the memory streams
 * them, where the gather below would fetch them in the inputs' scattered order) into 32 KB
 * that L1 holds (rows 2 KB apart map onto 8 of its 64 sets and evicted each other). */
static void fwd_pack(const dense_job *j, long i0, long i1, long c, float *pk)
{
	for (long i = i0; i < i1; i++)
		memcpy(pk + (i - i0) * 64, j->w + i * j->nout + c, 64 * sizeof *pk);
}

/* Adds to batch row b's 64 outputs at o the products of its listed inputs with the packed
 * rows: AVX2 (8 accumulators) or AVX-512 (4), the same FMAs per output in the same order,
 * so the same bits. */
typedef void (*fwd_rows_fn)(const fwd_block *k, const float *pk, float *o, int b);

DENSE_AVX2 static void fwd_rows256(const fwd_block *k, const float *pk, float *o, int b)
{
	__m256 a0 = _mm256_loadu_ps(o), a1 = _mm256_loadu_ps(o + 8);
	__m256 a2 = _mm256_loadu_ps(o + 16), a3 = _mm256_loadu_ps(o + 24);
	__m256 a4 = _mm256_loadu_ps(o + 32), a5 = _mm256_loadu_ps(o + 40);
	__m256 a6 = _mm256_loadu_ps(o + 48), a7 = _mm256_loadu_ps(o + 56);

	for (int q = 0; q < k->cnt[b]; q++) {
		const float *wr = pk + k->idx[b][q] * 64;
		__m256 x = _mm256_set1_ps(k->val[b][q]);

		a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr), a0);
		a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 8), a1);
		a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 16), a2);
		a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 24), a3);
		a4 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 32), a4);
		a5 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 40), a5);
		a6 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 48), a6);
		a7 = _mm256_fmadd_ps(x, _mm256_loadu_ps(wr + 56), a7);
	}
	_mm256_storeu_ps(o, a0), _mm256_storeu_ps(o + 8, a1);
	_mm256_storeu_ps(o + 16, a2), _mm256_storeu_ps(o + 24, a3);
	_mm256_storeu_ps(o + 32, a4), _mm256_storeu_ps(o + 40, a5);
	_mm256_storeu_ps(o + 48, a6), _mm256_storeu_ps(o + 56, a7);
}

#define DENSE_AVX512 __attribute__((target("avx512f,fma")))

/* Half the loads and instructions of AVX2's where the inputs are dense (inference). */
DENSE_AVX512 static void fwd_rows512(const fwd_block *k, const float *pk, float *o, int b)
{
	__m512 a0 = _mm512_loadu_ps(o), a1 = _mm512_loadu_ps(o + 16);
	__m512 a2 = _mm512_loadu_ps(o + 32), a3 = _mm512_loadu_ps(o + 48);

	for (int q = 0; q < k->cnt[b]; q++) {
		const float *wr = pk + k->idx[b][q] * 64;
		__m512 x = _mm512_set1_ps(k->val[b][q]);

		a0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(wr), a0);
		a1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(wr + 16), a1);
		a2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(wr + 32), a2);
		a3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(wr + 48), a3);
	}
	_mm512_storeu_ps(o, a0), _mm512_storeu_ps(o + 16, a1);
	_mm512_storeu_ps(o + 32, a2), _mm512_storeu_ps(o + 48, a3);
}

/* Prefetches the next tile's row at p, its 64-byte lines, into L2 (l2) or L1: the hint must
 * be a constant, hence the two loops. */
static inline __attribute__((always_inline)) void fwd_prefetch_row(const char *p, const int lines,
								   int l2)
{
	if (l2)
		for (int k = 0; k < lines; k++)
			_mm_prefetch(p + 64 * k, _MM_HINT_T1);
	else
		for (int k = 0; k < lines; k++)
			_mm_prefetch(p + 64 * k, _MM_HINT_T0);
}

/* Batch rows per group in the AVX-512 dense tile: 4 accumulators each, and w's 4 vectors,
 * in 28 of the 32 zmm registers. */
#define DENSE_FWD_GROUP 6
/* Up to this many passes over the AVX-512 tile (batch 24), its prefetches go into L2, as
 * AVX2's do (below). The tile cannot stay in L1 whatever the hint: its rows are 2 KB apart
 * and fall in 8 of L1's 64 sets. Into L1 they cost a Zen 4 (32 KB L1, family 25 model 17)
 * dearly: fc1, bench/dense_fwd, ms, L1's -> L2's, 1 thread batch 10 46.1 -> 28.3, 2 threads
 * 24.2 -> 16.8, batch 16 27.0 -> 20.5, 24 30.2 -> 27.4, but 32 33.5 -> 35.1 (1 thread 62.9
 * -> 66.4): from 6 passes L1's won. On a Zen 5 L1's had been 5% faster at batch 10. */
#define DENSE_FWD_L2_TURNS512 4

/* Batch rows b0..b0+G's 64 outputs at column c += their inputs i0..i0+nr times w's rows
 * (w points at row i0, column c), every input taken, zero or not, G a constant once
 * inlined: each load of w feeds G rows' FMAs, where the lists' one batch row per pass
 * keeps 4 accumulators (4 FMAs per FMA latency, half what the machine issues). An FMA of
 * a zero input adds +-0 to a sum that starts at +0, and +0 + -0 is +0: for finite w the
 * same bits as skipping it. Group turn of turns prefetches every turns-th of nxt's nnxt
 * rows (256 bytes each) from its turn-th: the groups together fetch the next tile once,
 * which the memory streams while this one computes (fc1 at batch 10: 13.4 ms, 14.5
 * without). Rows are read in place: with the tiles' few passes over them, copying them
 * apart first (as the lists do) cost more than it saved. */
DENSE_AVX512 static inline __attribute__((always_inline)) void
fwd_tile512(const dense_job *j, const float *w, long i0, int nr, long c, int b0, const int G,
	    const float *nxt, int nnxt, int turn, int turns)
{
	const float *x[DENSE_FWD_GROUP];
	__m512 a[DENSE_FWD_GROUP][4];
	long n = j->nout;

#pragma GCC unroll 6
	for (int g = 0; g < G; g++) {
		const float *o = j->out + (b0 + g) * n + c;

		x[g] = j->in + (long)(b0 + g) * j->nin + i0;
		a[g][0] = _mm512_loadu_ps(o), a[g][1] = _mm512_loadu_ps(o + 16);
		a[g][2] = _mm512_loadu_ps(o + 32), a[g][3] = _mm512_loadu_ps(o + 48);
	}
	for (int r = 0, pf = turn; r < nr; r++) {
		const float *wr = w + r * n;
		__m512 w0 = _mm512_loadu_ps(wr), w1 = _mm512_loadu_ps(wr + 16);
		__m512 w2 = _mm512_loadu_ps(wr + 32), w3 = _mm512_loadu_ps(wr + 48);

		if (r == pf && r < nnxt) {
			fwd_prefetch_row((const char *)(nxt + r * n), 4, turns <= DENSE_FWD_L2_TURNS512);
			pf += turns;
		}
#pragma GCC unroll 6
		for (int g = 0; g < G; g++) {
			__m512 xv = _mm512_set1_ps(x[g][r]);

			a[g][0] = _mm512_fmadd_ps(xv, w0, a[g][0]);
			a[g][1] = _mm512_fmadd_ps(xv, w1, a[g][1]);
			a[g][2] = _mm512_fmadd_ps(xv, w2, a[g][2]);
			a[g][3] = _mm512_fmadd_ps(xv, w3, a[g][3]);
		}
	}
#pragma GCC unroll 6
	for (int g = 0; g < G; g++) {
		float *o = j->out + (b0 + g) * n + c;

		_mm512_storeu_ps(o, a[g][0]), _mm512_storeu_ps(o + 16, a[g][1]);
		_mm512_storeu_ps(o + 32, a[g][2]), _mm512_storeu_ps(o + 48, a[g][3]);
	}
}

/* How many of the batch's inputs i0..i1 are not zero. */
DENSE_AVX512 static long fwd_nonzero512(const dense_job *j, long i0, long i1)
{
	long nz = 0;

	for (int b = 0; b < j->B; b++) {
		const float *x = j->in + (long)b * j->nin;
		long i = i0;

		for (; i + 16 <= i1; i += 16)
			nz += __builtin_popcount(_mm512_cmp_ps_mask(_mm512_loadu_ps(x + i),
								    _mm512_setzero_ps(), _CMP_NEQ_UQ));
		for (; i < i1; i++)
			nz += x[i] != 0.0f;
	}
	return nz;
}

/* The whole batch's 64 outputs at column c from w's rows i0..i0+nr, in as few groups of
 * at most DENSE_FWD_GROUP batch rows as cover it, of near equal sizes. */
DENSE_AVX512 static void fwd_dense512(const dense_job *j, const float *w, long i0, int nr, long c,
				      const float *nxt, int nnxt)
{
	int ng = (j->B + DENSE_FWD_GROUP - 1) / DENSE_FWD_GROUP;

	for (int k = 0, b0 = 0; k < ng; k++) {
		int G = j->B / ng + (k < j->B % ng);

		switch (G) {
#define DENSE_FWD_CASE(g) case g: fwd_tile512(j, w, i0, nr, c, b0, g, nxt, nnxt, k, ng); break;
		DENSE_FWD_CASE(1) DENSE_FWD_CASE(2) DENSE_FWD_CASE(3)
		DENSE_FWD_CASE(4) DENSE_FWD_CASE(5) DENSE_FWD_CASE(6)
#undef DENSE_FWD_CASE
		}
		b0 += G;
	}
}

/* AVX2's tile: 32 columns, at most 3 batch rows (their 12 accumulators, a broadcast
 * input each and w's vector fill the 16 ymm registers), else as fwd_tile512 but for where
 * L1's prefetches begin to win. A batch of 10 passes over this tile 4 times (AVX-512's
 * twice), long enough for the next tile's prefetches to finish, and prefetches into L1
 * held the few buffers its misses need, so the stream waited: into L2 instead, fc1, Zen 5,
 * 2 threads, batch 10 19.1-19.4 -> 13.3-13.7 ms (1 thread 30.3-31.0 -> 20.9-22.4), batch
 * 16 18.0-19.3 -> 16.4-19.7; from 11 passes (batch 32) L1's was 5-10% faster, at 8 alike
 * (bench/dense_fwd, PETCNN_ISA=avx2; AVX-512's tile then: L1's, L2's 5% slower at 10). */
#define DENSE_FWD_GROUP2 3
/* Up to this many passes (groups) over the tile, its prefetches go into L2. */
#define DENSE_FWD_L2_TURNS 8

DENSE_AVX2 static inline __attribute__((always_inline)) void
fwd_tile256(const dense_job *j, const float *w, long i0, int nr, long c, int b0, const int G,
	    const float *nxt, int nnxt, int turn, int turns)
{
	const float *x[DENSE_FWD_GROUP2];
	__m256 a[DENSE_FWD_GROUP2][4];
	long n = j->nout;

#pragma GCC unroll 3
	for (int g = 0; g < G; g++) {
		const float *o = j->out + (b0 + g) * n + c;

		x[g] = j->in + (long)(b0 + g) * j->nin + i0;
		for (int q = 0; q < 4; q++)
			a[g][q] = _mm256_loadu_ps(o + 8 * q);
	}
	for (int r = 0, pf = turn; r < nr; r++) {
		const float *wr = w + r * n;
		__m256 xv[DENSE_FWD_GROUP2];

		if (r == pf && r < nnxt) {
			fwd_prefetch_row((const char *)(nxt + r * n), 2, turns <= DENSE_FWD_L2_TURNS);
			pf += turns;
		}
#pragma GCC unroll 3
		for (int g = 0; g < G; g++)
			xv[g] = _mm256_set1_ps(x[g][r]);
#pragma GCC unroll 4
		for (int q = 0; q < 4; q++) {
			__m256 wv = _mm256_loadu_ps(wr + 8 * q);

#pragma GCC unroll 3
			for (int g = 0; g < G; g++)
				a[g][q] = _mm256_fmadd_ps(xv[g], wv, a[g][q]);
		}
	}
#pragma GCC unroll 3
	for (int g = 0; g < G; g++) {
		float *o = j->out + (b0 + g) * n + c;

		for (int q = 0; q < 4; q++)
			_mm256_storeu_ps(o + 8 * q, a[g][q]);
	}
}

/* As fwd_dense512, on 32 columns at a time: the second half's groups prefetch nxt's
 * second half. */
DENSE_AVX2 static void fwd_dense256(const dense_job *j, const float *w, long i0, int nr, long c,
				    const float *nxt, int nnxt)
{
	int ng = (j->B + DENSE_FWD_GROUP2 - 1) / DENSE_FWD_GROUP2;

	for (int h = 0; h < 64; h += 32)
		for (int k = 0, b0 = 0; k < ng; k++) {
			int G = j->B / ng + (k < j->B % ng);

			switch (G) {
#define DENSE_FWD_CASE(g) case g: fwd_tile256(j, w + h, i0, nr, c + h, b0, g, nxt + h, nnxt, k, ng); break;
			DENSE_FWD_CASE(1) DENSE_FWD_CASE(2) DENSE_FWD_CASE(3)
#undef DENSE_FWD_CASE
			}
			b0 += G;
		}
}

DENSE_AVX2 static long fwd_nonzero256(const dense_job *j, long i0, long i1)
{
	long nz = 0;

	for (int b = 0; b < j->B; b++) {
		const float *x = j->in + (long)b * j->nin;
		long i = i0;

		for (; i + 8 <= i1; i += 8)
			nz += __builtin_popcount(_mm256_movemask_ps(
				_mm256_cmp_ps(_mm256_loadu_ps(x + i), _mm256_setzero_ps(), _CMP_NEQ_UQ)));
		for (; i < i1; i++)
			nz += x[i] != 0.0f;
	}
	return nz;
}

/* The forward's columns c0..c0+64*nc of its thread, per block of w's rows and 64 columns:
 * where the batch's inputs in the block are dense enough, tiles; else each batch row's
 * nonzero inputs are listed once per block, every 64 columns packed, and each batch row
 * sums over its listed rows from the pack. Either way every output sums its terms in
 * row order, as the generic loop does. */
typedef void (*fwd_dense_fn)(const dense_job *j, const float *w, long i0, int nr, long c,
			     const float *nxt, int nnxt);
typedef long (*fwd_nonzero_fn)(const dense_job *j, long i0, long i1);

static inline __attribute__((always_inline)) void
fwd_blocks(const dense_job *j, long c0, long nc, fwd_rows_fn rows, fwd_dense_fn tile,
	   fwd_nonzero_fn nonzero)
{
	long n = j->nout;
	fwd_block k;
	float pk[DENSE_FWD_IB * 64] __attribute__((aligned(64)));

	for (long i0 = 0; i0 < j->nin; i0 += DENSE_FWD_IB) {
		long i1 = i0 + DENSE_FWD_IB < j->nin ? i0 + DENSE_FWD_IB : j->nin;
		int dense = nonzero(j, i0, i1) * DENSE_FWD_SPARSE >= (i1 - i0) * j->B;

		if (!dense)
			fwd_list(j, i0, i1, &k);
		for (long c = c0; c < c0 + 64 * nc; c += 64) {
			if (dense) {
				long ni = c + 64 < c0 + 64 * nc ? i0 : i1, nc2 = c + 64 < c0 + 64 * nc ? c + 64 : c0;
				int nn = ni + DENSE_FWD_IB <= j->nin ? DENSE_FWD_IB : (int)(j->nin - ni);

				tile(j, j->w + i0 * n + c, i0, (int)(i1 - i0), c, j->w + ni * n + nc2, nn);
				continue;
			}
			fwd_pack(j, i0, i1, c, pk);
			for (int b = 0; b < j->B; b++)
				rows(&k, pk, j->out + b * n + c, b);
		}
	}
}

/* fwd_blocks inlined per width, so that rows is a direct call, itself inlined. */
DENSE_AVX2 static void fwd_avx2(const dense_job *j, long c0, long nc)
{
	fwd_blocks(j, c0, nc, fwd_rows256, fwd_dense256, fwd_nonzero256);
}

DENSE_AVX512 static void fwd_avx512(const dense_job *j, long c0, long nc)
{
	fwd_blocks(j, c0, nc, fwd_rows512, fwd_dense512, fwd_nonzero512);
}
#endif

/* Forward over columns lo..hi of w: each row of w is read once for the whole batch and
 * feeds only the batch rows whose input is not zero, which in training after a dropout
 * that keeps 20% is most of them (fc1: w is 400 MB, the batch 10 rows). Columns, not
 * rows, are split over threads, so every output sums the same terms in the same order
 * whatever the thread count. */
static void *dense_fwd_job(void *arg)
{
	const dense_job *j = arg;
	long n = j->nout, len = j->hi - j->lo;
	int nz[DENSE_STREAM_MAX_B];
	long lo = j->lo;

	for (int b = 0; b < j->B; b++)
		memset(j->out + b * n + j->lo, 0, sizeof *j->out * len);
#ifdef DENSE_AVX2
	if (j->avx2 && len >= 64) {
		if (j->avx512)
			fwd_avx512(j, lo, len / 64);
		else
			fwd_avx2(j, lo, len / 64);
		lo += len / 64 * 64;
		len = j->hi - lo;
	}
#endif
	for (long i = 0; len > 0 && i < j->nin; i++) {
		const float *wr = j->w + i * n + lo;
		int k = 0;

		for (int b = 0; b < j->B; b++)
			if (j->in[(long)b * j->nin + i] != 0.0f)
				nz[k++] = b;
		for (int q = 0; q < k; q++) {
			float a = j->in[(long)nz[q] * j->nin + i], *o = j->out + nz[q] * n + lo;
#ifdef DENSE_AVX2
			if (j->avx2) {
				axpy_avx2(o, a, wr, (int)len);
				continue;
			}
#endif
			axpy(o, a, wr, (int)len);
		}
	}
	return NULL;
}

/* Rows lo..hi of w: dw's row and din's column from one read of w's row. */
static void *dense_bwd_job(void *arg)
{
	const dense_job *j = arg;
	int n = j->nout;
	float row[DENSE_ROW_MAX];   /* dw's row, when it goes to j->row */

#ifdef DENSE_AVX2
	if (j->avx2) {
		bwd_avx2(j, row);
		return NULL;
	}
#endif
	for (long i = j->lo; i < j->hi; i++) {
		const float *wr = j->w + i * n;
		float *dwr = j->row ? row : j->dw + i * n;

		if (!j->acc || j->row)
			memset(dwr, 0, sizeof *dwr * n);
		for (int b = 0; b < j->B; b++) {
			float a = j->in[(long)b * j->nin + i];

			if (a != 0.0f)
				axpy(dwr, a, j->dout + (long)b * n, n);
			if (j->din)
				j->din[(long)b * j->nin + i] =
					j->relu_y && !(j->relu_y[(long)b * j->nin + i] > 0.0f) ? 0.0f
					: dot(wr, j->dout + (long)b * n, n);
		}
		if (j->row)
			j->row(j->ctx, i, dwr);
	}
	return NULL;
}

typedef struct {
	void *(*fn)(void *);
	const dense_job *proto;
	long n, align;
} split;

/* Worker k of n runs fn over its share of [0, s->n), bounds multiples of s->align. */
static void split_worker(void *ctx, int k, int n)
{
	const split *s = ctx;
	dense_job j = *s->proto;
	long per = (s->n + n - 1) / n;

	per = (per + s->align - 1) / s->align * s->align;
	j.lo = per * k < s->n ? per * k : s->n;
	j.hi = per * (k + 1) < s->n ? per * (k + 1) : s->n;
	if (j.lo < j.hi)
		s->fn(&j);
}

static void run_split(void *(*fn)(void *), const dense_job *proto, long n, long align, int threads)
{
	split s = { fn, proto, n, align };

	if (threads > 1)
		blas_park();
	par_run(threads, split_worker, &s);
}

void dense_forward(float *out, const float *in, const float *w, const float *b,
		   int B, int nin, int nout, int relu, int threads, isa_kind isa)
{
	/* against OpenBLAS's M = B sgemm (Haswell core, 2 threads, AMD EPYC Zen 5), fc1's
	 * stream is 3.2-3.4x as fast at B 10, 1.6-1.9x at 32 on AVX-512, 3.3-3.45x at B 10 and
	 * 1.3-1.4x at 32 on AVX2 (re-measure: bench/dense_fwd.c, PETCNN_ISA=avx2 for the
	 * narrower) */
	if (B <= DENSE_FWD_MAX_B && dense_streams(B, nin, nout)) {
		dense_job j = { .out = out, .in = in, .w = w, .B = B, .nin = nin, .nout = nout,
				.avx2 = isa >= ISA_AVX2, .avx512 = isa >= ISA_AVX512 };

		/* columns in multiples of 16 floats: threads never share a cache line of out */
		run_split(dense_fwd_job, &j, nout, 16, threads);
		vec_bias_relu(out, b, B, nout, relu);
		return;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, nout, nin, 1.0f,
		    in, nin, w, nout, 0.0f, out, nout);
	vec_bias_relu(out, b, B, nout, relu);
}

void dense_backward(float *din, float *dw, float *db, const float *dout,
		    const float *in, const float *w, const float *relu_y, int B, int nin, int nout,
		    int acc, int threads, isa_kind isa)
{
	if (db) {
		if (!acc)
			memset(db, 0, sizeof *db * nout);
		vec_sum_rows(db, dout, B, nout);
	}
	if (dw && dense_streams(B, nin, nout)) {
		dense_job j = { .din = din, .dw = dw, .in = in, .w = w, .dout = dout, .relu_y = relu_y,
				.B = B, .nin = nin, .nout = nout, .acc = acc, .avx2 = isa >= ISA_AVX2 };

		run_split(dense_bwd_job, &j, nin, 1, threads);
		return;
	}
	if (dw)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nin, nout, B, 1.0f,
			    in, nin, dout, nout, acc ? 1.0f : 0.0f, dw, nout);
	if (din)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, nin, nout, 1.0f,
			    dout, nout, w, nout, 0.0f, din, nin);
	if (din && relu_y)
		vec_relu_backward(din, din, relu_y, (size_t)B * nin);
}

int dense_backward_rows(float *din, float *db, const float *dout, const float *in,
			const float *w, const float *relu_y, int B, int nin, int nout, dense_row_fn row,
			void *ctx, int threads, isa_kind isa)
{
	dense_job j = { .din = din, .in = in, .w = w, .dout = dout, .relu_y = relu_y, .B = B,
			.nin = nin, .nout = nout, .row = row, .ctx = ctx, .avx2 = isa >= ISA_AVX2 };

	if (!dense_streams(B, nin, nout) || nout > DENSE_ROW_MAX)
		return -1;
	if (db) {
		memset(db, 0, sizeof *db * nout);
		vec_sum_rows(db, dout, B, nout);
	}
	run_split(dense_bwd_job, &j, nin, 1, threads);
	return 0;
}
