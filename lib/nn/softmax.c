/* softmax: probabilities and the softmax cross-entropy over logits, stably in double. */
#include "nn/softmax.h"

#include <math.h>

double softmax_xent(float *probs, float *dlogits, int *correct, const float *logits,
		    const int *labels, int B, int K)
{
	double loss = 0;
	int ok = 0;

	for (int n = 0; n < B; n++) {
		const float *z = logits + (long)n * K;
		double mx = z[0], sum = 0;
		int best = 0, y = labels[n];

		for (int k = 1; k < K; k++)
			if (z[k] > mx)
				mx = z[k], best = k;
		for (int k = 0; k < K; k++)
			sum += exp(z[k] - mx);
		loss += log(sum) - (z[y] - mx);
		ok += best == y;
		for (int k = 0; k < K; k++) {
			double p = exp(z[k] - mx) / sum;

			if (probs)
				probs[(long)n * K + k] = (float)p;
			if (dlogits)
				dlogits[(long)n * K + k] = (float)((p - (k == y)) / B);
		}
	}
	if (correct)
		*correct = ok;
	return loss / B;
}

void softmax_probs(float *probs, const float *logits, int B, int K)
{
	for (int n = 0; n < B; n++) {
		const float *z = logits + (long)n * K;
		double mx = z[0], sum = 0;

		for (int k = 1; k < K; k++)
			if (z[k] > mx)
				mx = z[k];
		for (int k = 0; k < K; k++)
			sum += exp(z[k] - mx);
		for (int k = 0; k < K; k++)
			probs[(long)n * K + k] = (float)(exp(z[k] - mx) / sum);
	}
}
