/* tfev_hist: histograms for TensorBoard: values bucketed over TensorFlow's default limits,
 * and written as a histogram summary (HistogramProto, tfev.h), from numbers or an array. */
#ifndef PETCNN_TFEV_HIST_H
#define PETCNN_TFEV_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "array/tensor.h"
#include "tb/tfev_write.h"

/* Values TensorFlow's histogram cannot place: left out of num, sum, min, max and buckets,
 * counted here so the caller can say so. */
typedef struct {
	int64_t nan, posinf, neginf;
} tfev_nonfinite;

/* A histogram over TensorFlow's default bucket limits (histogram.cc: 1e-12 growing by 10%
 * while below 1e20, then DBL_MAX; the same mirrored negative; and 0), runs of empty
 * buckets collapsed into one as TensorFlow's EncodeToProto does. Bucket i holds
 * [limit[i-1], limit[i]); the last one holds DBL_MAX too, so every finite value has one. */
typedef struct {
	double min, max, num, sum, sum_squares;  /* min = max = 0 when num == 0 */
	size_t nbuckets;
	double *limit, *count;                   /* nbuckets each */
	tfev_nonfinite skipped;
} tfev_hist;

/* The default limits into out[cap]; returns how many there are (out may be NULL). */
size_t tfev_hist_default_limits(double *out, size_t cap);
/* From n doubles (vd) or n floats (vf): exactly one of them non-NULL. */
int tfev_hist_compute(tfev_hist *h, const double *vd, const float *vf, size_t n, char *err);
void tfev_hist_free(tfev_hist *h);
int tfev_histogram_write(tfev_writer *w, int64_t step, const char *tag, const tfev_hist *h,
			 char *err);
/* Compute and write in one go; skipped (may be NULL) receives the non-finite counts. */
int tfev_histogram(tfev_writer *w, int64_t step, const char *tag, const double *v, size_t n,
		   tfev_nonfinite *skipped, char *err);
int tfev_histogram_f(tfev_writer *w, int64_t step, const char *tag, const float *v, size_t n,
		     tfev_nonfinite *skipped, char *err);
/* Every element of a numeric array (any shape, any numeric dtype) as a histogram. */
int tfev_histogram_tensor(tfev_writer *w, int64_t step, const char *tag, const tensor *t,
			  tfev_nonfinite *skipped, char *err);

#endif
