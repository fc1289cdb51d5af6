/* optim: memory-bound element-wise updates; the loops are kept simple enough for the
 * compiler to vectorise, and threads take contiguous chunks so each streams its own. */
#include "nn/optim.h"

#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "util/par.h"

/* Below this many elements a thread costs more than it saves. */
#define OPTIM_MIN_CHUNK (1 << 16)
/* Floats ahead that optim_adam_row prefetches (4 KB: fc1's next two rows), into L2: fc1's
 * backward with Adam at 224, batch 10, Zen 4 (AMD EPYC family 25 model 17), 1 thread
 * 117-120 -> 105-109 ms, with dense's w prefetched into L2 too 96-99 (2 threads 62-67 ->
 * 54-56); on a Zen 5 L1, L2 or NTA had been alike. */
#define OPTIM_ROW_AHEAD 1024
/* Floats ahead that the AVX2 loop also prefetches into L1 in row mode. A line of AVX2
 * takes twice AVX-512's instructions, so the reorder window holds half as many lines'
 * loads from L2 at once, and the row stalled on L2's latency: fc1's backward with Adam
 * at 224, batch 10, Zen 4 held to AVX2 (PETCNN_ISA=avx2), 1 thread 108-117 -> 95-102 ms,
 * 2 threads 62-67 -> 51-56 (AVX-512's 107-113 on 1 thread; its own loop got slower with
 * one, 110-123). */
#define OPTIM_ROW_NEAR 64

typedef struct {
	int adam, avx2;   /* avx2: Adam's AVX2 loop (isa >= ISA_AVX2) before SSE2's */
	int avx512;       /* Adam's AVX-512 loop (isa >= ISA_AVX512) before AVX2's */
	int ahead;        /* AVX2, AVX-512 loops: prefetch p, m, v this many floats ahead */
	float lr, b1, b2, eps, mu;
	float *p, *m, *v;
	const float *g;
	size_t lo, hi;
} job;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OPTIM_AVX2 __attribute__((target("avx2")))

/* Adam over [i, hi), AVX2, 8 floats at a time: the SSE loop's operations in the same
 * order (no FMA: separate multiply and add, as the scalar loop rounds), so the same bits;
 * returns where it stopped (the caller finishes the tail). */
OPTIM_AVX2 static size_t adam_avx2(const job *j, size_t i)
{
	float *restrict p = j->p, *restrict m = j->m, *restrict v = j->v;
	const float *restrict g = j->g;
	__m256 vb1 = _mm256_set1_ps(j->b1), vb2 = _mm256_set1_ps(j->b2);
	__m256 vc1 = _mm256_set1_ps(1.0f - j->b1), vc2 = _mm256_set1_ps(1.0f - j->b2);
	__m256 vlr = _mm256_set1_ps(j->lr), veps = _mm256_set1_ps(j->eps);

	for (; i + 8 <= j->hi; i += 8) {
		__m256 gi = _mm256_loadu_ps(g + i);
		__m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(vc1, gi));
		__m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)),
					  _mm256_mul_ps(_mm256_mul_ps(vc2, gi), gi));
		__m256 step = _mm256_div_ps(_mm256_mul_ps(vlr, mi), _mm256_add_ps(_mm256_sqrt_ps(vi), veps));

		if (j->ahead && i % 16 == 0) {
			_mm_prefetch((const char *)(p + i + j->ahead), _MM_HINT_T1);
			_mm_prefetch((const char *)(m + i + j->ahead), _MM_HINT_T1);
			_mm_prefetch((const char *)(v + i + j->ahead), _MM_HINT_T1);
			_mm_prefetch((const char *)(p + i + OPTIM_ROW_NEAR), _MM_HINT_T0);
			_mm_prefetch((const char *)(m + i + OPTIM_ROW_NEAR), _MM_HINT_T0);
			_mm_prefetch((const char *)(v + i + OPTIM_ROW_NEAR), _MM_HINT_T0);
		}
		_mm256_storeu_ps(m + i, mi);
		_mm256_storeu_ps(v + i, vi);
		_mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_loadu_ps(p + i), step));
	}
	return i;
}

#define OPTIM_AVX512 __attribute__((target("avx512f")))

/* Adam over [i, hi), AVX-512, 16 floats at a time: the AVX2 loop's operations, each the
 * same correctly rounded IEEE one per element (-std=c11 contracts nothing into an FMA), so
 * the same bits. In cache (an L2-sized row run, Zen 5) 1.4x faster than AVX2's, whose
 * divide and square root bound it; streaming fc1 from memory, within the noise. */
OPTIM_AVX512 static size_t adam_avx512(const job *j, size_t i)
{
	float *restrict p = j->p, *restrict m = j->m, *restrict v = j->v;
	const float *restrict g = j->g;
	__m512 vb1 = _mm512_set1_ps(j->b1), vb2 = _mm512_set1_ps(j->b2);
	__m512 vc1 = _mm512_set1_ps(1.0f - j->b1), vc2 = _mm512_set1_ps(1.0f - j->b2);
	__m512 vlr = _mm512_set1_ps(j->lr), veps = _mm512_set1_ps(j->eps);

	for (; i + 16 <= j->hi; i += 16) {
		__m512 gi = _mm512_loadu_ps(g + i);
		__m512 mi = _mm512_add_ps(_mm512_mul_ps(vb1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(vc1, gi));
		__m512 vi = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_loadu_ps(v + i)),
					  _mm512_mul_ps(_mm512_mul_ps(vc2, gi), gi));
		__m512 step = _mm512_div_ps(_mm512_mul_ps(vlr, mi), _mm512_add_ps(_mm512_sqrt_ps(vi), veps));

		if (j->ahead) {
			_mm_prefetch((const char *)(p + i + j->ahead), _MM_HINT_T1);
			_mm_prefetch((const char *)(m + i + j->ahead), _MM_HINT_T1);
			_mm_prefetch((const char *)(v + i + j->ahead), _MM_HINT_T1);
		}
		_mm512_storeu_ps(m + i, mi);
		_mm512_storeu_ps(v + i, vi);
		_mm512_storeu_ps(p + i, _mm512_sub_ps(_mm512_loadu_ps(p + i), step));
	}
	return i;
}
#endif

static void run(const job *j)
{
	float *restrict p = j->p, *restrict m = j->m, *restrict v = j->v;
	const float *restrict g = j->g;
	float lr = j->lr, b1 = j->b1, b2 = j->b2, eps = j->eps, c1 = 1.0f - b1, c2 = 1.0f - b2;

	if (!j->adam) {
		for (size_t i = j->lo; i < j->hi; i++) {
			m[i] = j->mu * m[i] + g[i];
			p[i] -= lr * m[i];
		}
		return;
	}
	size_t i = j->lo;
#ifdef OPTIM_AVX2
	if (j->avx512)
		i = adam_avx512(j, i);
	if (j->avx2)
		i = adam_avx2(j, i);
#endif
#if defined(__SSE2__)
	/* -O2 leaves the scalar loop alone (sqrtf must be able to set errno); SSE's sqrt is
	 * the same correctly rounded IEEE operation and there is no FMA contraction, so each
	 * element gets exactly the scalar loop's bits and chunk boundaries do not matter. */
	__m128 vb1 = _mm_set1_ps(b1), vb2 = _mm_set1_ps(b2), vc1 = _mm_set1_ps(c1);
	__m128 vc2 = _mm_set1_ps(c2), vlr = _mm_set1_ps(lr), veps = _mm_set1_ps(eps);

	for (; i + 4 <= j->hi; i += 4) {
		__m128 gi = _mm_loadu_ps(g + i);
		__m128 mi = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)), _mm_mul_ps(vc1, gi));
		__m128 vi = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)),
				       _mm_mul_ps(_mm_mul_ps(vc2, gi), gi));
		__m128 step = _mm_div_ps(_mm_mul_ps(vlr, mi), _mm_add_ps(_mm_sqrt_ps(vi), veps));

		_mm_storeu_ps(m + i, mi);
		_mm_storeu_ps(v + i, vi);
		_mm_storeu_ps(p + i, _mm_sub_ps(_mm_loadu_ps(p + i), step));
	}
#endif
	for (; i < j->hi; i++) {
		float mi = b1 * m[i] + c1 * g[i], vi = b2 * v[i] + c2 * g[i] * g[i];

		m[i] = mi;
		v[i] = vi;
		p[i] -= lr * mi / (sqrtf(vi) + eps);
	}
}

/* Worker k of n updates its contiguous share: every element's result is the same
 * whichever thread computes it. */
static void worker(void *ctx, int k, int n)
{
	job j = *(const job *)ctx;
	long lo, hi;

	par_share((long)j.hi, k, n, &lo, &hi);
	j.lo = (size_t)lo, j.hi = (size_t)hi;
	run(&j);
}

static void run_threads(job *j, size_t n, int threads)
{
	/* below OPTIM_MIN_CHUNK elements a thread costs more than it saves */
	if ((size_t)threads > n / OPTIM_MIN_CHUNK)
		threads = (int)(n / OPTIM_MIN_CHUNK);
	j->hi = n;
	par_run(threads, worker, j);
}

void optim_adam_row_init(optim_adam_row_k *k, const optim_adam *o, int64_t t, isa_kind isa)
{
	double lr_t = o->lr * sqrt(1.0 - pow(o->beta2, (double)t)) / (1.0 - pow(o->beta1, (double)t));

	*k = (optim_adam_row_k){ .lr = (float)lr_t, .b1 = (float)o->beta1, .b2 = (float)o->beta2,
				 .eps = (float)o->eps, .isa = isa };
}

void optim_adam_row(const optim_adam_row_k *k, float *p, const float *g, float *m, float *v,
		    size_t n)
{
	/* the caller's next rows, which in the fused dense backward follow this one: rows are
	 * short and the dense loop's stream comes between them, so the hardware's prefetch
	 * alone leaves each row's start waiting on memory (fc1, Zen 5: 1.6x slower) */
	job j = { .adam = 1, .avx2 = k->isa >= ISA_AVX2, .avx512 = k->isa >= ISA_AVX512,
		  .ahead = OPTIM_ROW_AHEAD, .lr = k->lr, .b1 = k->b1, .b2 = k->b2, .eps = k->eps,
		  .p = p, .m = m, .v = v, .g = g, .lo = 0, .hi = n };

	run(&j);
}

void optim_adam_step(const optim_adam *o, int64_t t, float *p, const float *g, float *m,
		     float *v, size_t n, int threads, isa_kind isa)
{
	optim_adam_row_k k;
	job j;

	optim_adam_row_init(&k, o, t, isa);
	j = (job){ .adam = 1, .avx2 = k.isa >= ISA_AVX2, .avx512 = k.isa >= ISA_AVX512, .lr = k.lr, .b1 = k.b1,
		   .b2 = k.b2, .eps = k.eps, .p = p, .m = m, .v = v, .g = g };
	run_threads(&j, n, threads);
}

void optim_momentum_step(double lr, double mu, float *p, const float *g, float *acc,
			 size_t n, int threads)
{
	job j = { .adam = 0, .lr = (float)lr, .mu = (float)mu, .p = p, .m = acc, .g = g };

	run_threads(&j, n, threads);
}
