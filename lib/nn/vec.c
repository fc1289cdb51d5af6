/* vec: the float loops the layers share (sums, bias and activation, the activations'
 * backward), SSE by hand: -O2 leaves loops of unknown length scalar. */
#include "nn/vec.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* y[0..n) += x[0..n) */
void vec_add(float *restrict y, const float *restrict x, long n)
{
	long i = 0;
#if defined(__SSE2__)
	for (; i + 4 <= n; i += 4)
		_mm_storeu_ps(y + i, _mm_add_ps(_mm_loadu_ps(y + i), _mm_loadu_ps(x + i)));
#endif
	for (; i < n; i++)
		y[i] += x[i];
}

void vec_bias_relu(float *out, const float *b, long rows, int n, int act)
{
	for (long i = 0; i < rows; i++, out += n) {
		int j = 0;
#if defined(__SSE2__)
		__m128 zero = _mm_setzero_ps(), six = _mm_set1_ps(6.0f);

		for (; j + 4 <= n; j += 4) {
			__m128 v = _mm_loadu_ps(out + j);

			if (b)
				v = _mm_add_ps(v, _mm_loadu_ps(b + j));
			if (act)
				v = _mm_max_ps(v, zero);
			if (act == VEC_RELU6)
				v = _mm_min_ps(v, six);
			_mm_storeu_ps(out + j, v);
		}
#endif
		for (; j < n; j++) {
			float v = out[j] + (b ? b[j] : 0.0f);

			v = act && v < 0 ? 0.0f : v;
			out[j] = act == VEC_RELU6 && v > 6.0f ? 6.0f : v;
		}
	}
}

void vec_sum_rows(float *db, const float *d, long rows, int n)
{
	for (long i = 0; i < rows; i++, d += n)
		vec_add(db, d, n);
}

void vec_relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
	size_t i = 0;
#if defined(__SSE2__)
	__m128 zero = _mm_setzero_ps();

	for (; i + 4 <= n; i += 4)
		_mm_storeu_ps(dx + i, _mm_and_ps(_mm_cmpgt_ps(_mm_loadu_ps(y + i), zero), _mm_loadu_ps(dy + i)));
#endif
	for (; i < n; i++)
		dx[i] = y[i] > 0 ? dy[i] : 0;
}

void vec_relu6_backward(float *dx, const float *dy, const float *y, size_t n)
{
	size_t i = 0;
#if defined(__SSE2__)
	__m128 zero = _mm_setzero_ps(), six = _mm_set1_ps(6.0f);

	for (; i + 4 <= n; i += 4) {
		__m128 v = _mm_loadu_ps(y + i);
		__m128 in = _mm_and_ps(_mm_cmpgt_ps(v, zero), _mm_cmplt_ps(v, six));

		_mm_storeu_ps(dx + i, _mm_and_ps(in, _mm_loadu_ps(dy + i)));
	}
#endif
	for (; i < n; i++)
		dx[i] = y[i] > 0 && y[i] < 6.0f ? dy[i] : 0;
}

void vec_act_backward(float *dx, const float *dy, const float *y, size_t n, int act)
{
	if (act == VEC_RELU6)
		vec_relu6_backward(dx, dy, y, n);
	else
		vec_relu_backward(dx, dy, y, n);
}
