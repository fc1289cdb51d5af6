/* softmax: class probabilities from logits, and the softmax cross-entropy (the one place
 * the loss is computed: training, cnn-train's test metrics and cnn-eval all come here). */
#include "nn/softmax.h"

#include <math.h>

/* The row's maximum *mx (its first position returned) and sum of exp(z - mx), in double:
 * subtracting the maximum keeps exp finite for any logits. */
static int row_stats(const float *z, int K, double *mx, double *sum)
{
	int best = 0;

	*mx = z[0], *sum = 0;
	for (int k = 1; k < K; k++)
		if (z[k] > *mx)
			*mx = z[k], best = k;
	for (int k = 0; k < K; k++)
		*sum += exp(z[k] - *mx);
	return best;
}

/* -log softmax(z)[y] = log(sum exp z) - z[y], from row_stats: a confidently wrong row
 * costs its true, finite loss. */
static double row_xent(const float *z, int y, double mx, double sum)
{
	return log(sum) - (z[y] - mx);
}

double softmax_xent(float *probs, float *dlogits, int *correct, const float *logits,
		    const int *labels, int B, int K)
{
	return softmax_xent_share(probs, dlogits, correct, logits, labels, B, K, B);
}

double softmax_xent_share(float *probs, float *dlogits, int *correct, const float *logits,
			  const int *labels, int B, int K, int of)
{
	double loss = 0;
	int ok = 0;

	for (int n = 0; n < B; n++) {
		const float *z = logits + (long)n * K;
		double mx, sum;
		int y = labels[n], best = row_stats(z, K, &mx, &sum);

		loss += row_xent(z, y, mx, sum);
		ok += best == y;
		for (int k = 0; k < K; k++) {
			double p = exp(z[k] - mx) / sum;

			if (probs)
				probs[(long)n * K + k] = (float)p;
			if (dlogits)
				dlogits[(long)n * K + k] = (float)((p - (k == y)) / of);
		}
	}
	if (correct)
		*correct = ok;
	return loss / B;
}

void softmax_xent_rows(double *loss, int *pred, const float *logits, const int *labels, int B,
		       int K)
{
	for (int n = 0; n < B; n++) {
		const float *z = logits + (long)n * K;
		double mx, sum;
		int best = row_stats(z, K, &mx, &sum);

		if (pred)
			pred[n] = best;
		if (loss)
			loss[n] = labels[n] < 0 ? 0 : row_xent(z, labels[n], mx, sum);
	}
}

void softmax_probs(float *probs, const float *logits, int B, int K)
{
	for (int n = 0; n < B; n++) {
		const float *z = logits + (long)n * K;
		double mx, sum;

		row_stats(z, K, &mx, &sum);
		for (int k = 0; k < K; k++)
			probs[(long)n * K + k] = (float)(exp(z[k] - mx) / sum);
	}
}
