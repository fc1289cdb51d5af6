/* actmask: the backward of a ReLU or ReLU6 applied to a gradient sum still in registers, by
 * the kernels that write an input's gradient (the input being that activation's output y). */
#ifndef PETCNN_ACTMASK_H
#define PETCNN_ACTMASK_H

#include "nn/vec.h"

/* Whether the gradient passes y: 0 < y, and y < 6 for a ReLU6 (act), as
 * vec_relu_backward and vec_relu6_backward decide it. */
static inline int actmask_pass(float y, int act)
{
	return y > 0 && (act != VEC_RELU6 || y < 6.0f);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* a where y [8] passes, else +0. */
static inline __attribute__((always_inline, target("avx"))) __m256
actmask_keep256(__m256 a, const float *y, int act)
{
	__m256 v = _mm256_loadu_ps(y), keep = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ);

	if (act == VEC_RELU6)
		keep = _mm256_and_ps(keep, _mm256_cmp_ps(v, _mm256_set1_ps(6.0f), _CMP_LT_OQ));
	return _mm256_and_ps(a, keep);
}

/* a where y [16] passes, else +0, in the lanes of m (y read there alone). */
static inline __attribute__((always_inline, target("avx512f"))) __m512
actmask_keep512(__m512 a, const float *y, __mmask16 m, int act)
{
	__m512 v = _mm512_maskz_loadu_ps(m, y);
	__mmask16 keep = _mm512_mask_cmp_ps_mask(m, v, _mm512_setzero_ps(), _CMP_GT_OQ);

	if (act == VEC_RELU6)
		keep = _mm512_mask_cmp_ps_mask(keep, v, _mm512_set1_ps(6.0f), _CMP_LT_OQ);
	return _mm512_maskz_mov_ps(keep, a);
}
#endif

#endif
