/* softmax: class probabilities from logits, and the softmax cross-entropy (the one place
 * the loss is computed: training, cnn-train's test metrics and cnn-eval all come here). */
#ifndef PETCNN_SOFTMAX_H
#define PETCNN_SOFTMAX_H

/* Softmax cross-entropy over logits [B, K] with labels [B] in [0, K): probs [B, K]
 * (may be NULL), dlogits [B, K] = d(mean loss)/d(logits) (may be NULL), *correct the count
 * of argmax == label (may be NULL). Returns the mean loss. Computed stably in double. */
double softmax_xent(float *probs, float *dlogits, int *correct, const float *logits,
		    const int *labels, int B, int K);
/* The same for B rows of a batch of of rows shared by several processes: dlogits is
 * d(mean loss over all of)/d(logits), so the processes' gradients add up to the batch's.
 * Returns the mean loss over the B rows. */
double softmax_xent_share(float *probs, float *dlogits, int *correct, const float *logits,
			  const int *labels, int B, int K, int of);
/* Per row of logits [B, K]: pred [B] its class (the argmax, the first of equal maxima;
 * NULL: skip) and loss [B] its cross-entropy against labels [B] (0 where the label is -1,
 * unknown; NULL: skip), each as softmax_xent computes it. */
void softmax_xent_rows(double *loss, int *pred, const float *logits, const int *labels, int B,
		       int K);
/* probs [B, K] = softmax(logits [B, K]) only (no labels). */
void softmax_probs(float *probs, const float *logits, int B, int K);

#endif
