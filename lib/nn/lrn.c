/* lrn: local response normalisation across channels as ONNX defines it (AlexNet's and
 * GoogLeNet's LRN), forward and its exact gradient, on NHWC rows. */
#include "nn/lrn.h"

#include <math.h>

/* Window sums are taken afresh for every channel, not slid along the row: a window is a
 * handful of channels (5 in AlexNet and GoogLeNet), its cost is small beside the powf, and
 * each sum is then the same few terms in the same order wherever the channel sits. */

void lrn_forward(float *y, float *den, const float *x, size_t rows, int c, int size,
		 float alpha, float beta, float bias)
{
	int before = (size - 1) / 2, after = size / 2; /* floor and ceil of (size-1)/2 */
	double k = (double)alpha / size;

	for (size_t r = 0; r < rows; r++, x += c, y += c, den += c) {
		for (int i = 0; i < c; i++) {
			int lo = i - before > 0 ? i - before : 0;
			int hi = i + after < c - 1 ? i + after : c - 1;
			double sq = 0;

			for (int j = lo; j <= hi; j++)
				sq += (double)x[j] * x[j];
			den[i] = (float)(bias + k * sq);
			y[i] = x[i] * powf(den[i], -beta);
		}
	}
}

void lrn_backward(float *dx, const float *dy, const float *x, const float *y,
		  const float *den, size_t rows, int c, int size, float alpha, float beta,
		  float bias)
{
	int before = (size - 1) / 2, after = size / 2;
	/* d den_j / d x_i = 2 alpha/size x_i, and d(den^-beta)/d den = -beta den^-beta / den:
	 * x_j den_j^(-beta-1) is y_j / den_j */
	double k = 2.0 * alpha * beta / size;

	(void)bias;
	for (size_t r = 0; r < rows; r++, x += c, y += c, den += c, dy += c, dx += c) {
		for (int i = 0; i < c; i++) {
			/* the windows holding i: j - before <= i <= j + after */
			int lo = i - after > 0 ? i - after : 0;
			int hi = i + before < c - 1 ? i + before : c - 1;
			double s = 0;

			for (int j = lo; j <= hi; j++)
				s += (double)dy[j] * y[j] / den[j];
			dx[i] = (float)((double)dy[i] * powf(den[i], -beta) - k * x[i] * s);
		}
	}
}
