/* tfev_hist: TensorFlow's histogram buckets and the histogram summary. See tfev_hist.h. */
#include "tb/tfev_hist.h"

#include "tb/tfev.h"
#include "util/errmsg.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t tfev_hist_default_limits(double *out, size_t cap)
{
	size_t npos = 0, n;

	/* Same recurrence as TensorFlow, so the limits match bit for bit. */
	for (double v = 1.0e-12; v < 1.0e20; v *= 1.1)
		npos++;
	npos++;                       /* DBL_MAX */
	n = 2 * npos + 1;
	if (!out || cap < n)
		return n;
	double v = 1.0e-12;
	for (size_t i = 0; i + 1 < npos; i++, v *= 1.1) {
		out[npos + 1 + i] = v;
		out[npos - 1 - i] = -v;
	}
	out[n - 1] = DBL_MAX;
	out[0] = -DBL_MAX;
	out[npos] = 0.0;
	return n;
}

/* Index of the first limit > x (std::upper_bound), as TensorFlow's Histogram::Add. */
static size_t upper_bound(const double *lim, size_t n, double x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lim[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int tfev_hist_compute(tfev_hist *h, const double *vd, const float *vf, size_t n, char *err)
{
	size_t nl = tfev_hist_default_limits(NULL, 0), nb = 0;
	double *lim = malloc(nl * sizeof *lim), *cnt = calloc(nl, sizeof *cnt);

	memset(h, 0, sizeof *h);
	if (!lim || !cnt) {
		free(lim);
		free(cnt);
		return err_set(err, "histogram: out of memory");
	}
	tfev_hist_default_limits(lim, nl);
	h->min = DBL_MAX;
	h->max = -DBL_MAX;
	for (size_t i = 0; i < n; i++) {
		double x = vd ? vd[i] : (double)vf[i];
		size_t b;

		if (isnan(x)) {
			h->skipped.nan++;
			continue;
		}
		if (isinf(x)) {
			if (x > 0)
				h->skipped.posinf++;
			else
				h->skipped.neginf++;
			continue;
		}
		/* The last limit is DBL_MAX itself, which no limit exceeds: the last bucket
		 * holds it too (TensorFlow's upper_bound writes one past its buckets there). */
		b = upper_bound(lim, nl, x);
		cnt[b < nl ? b : nl - 1] += 1;
		if (x < h->min)
			h->min = x;
		if (x > h->max)
			h->max = x;
		h->num += 1;
		h->sum += x;
		h->sum_squares += x * x;
	}
	if (h->num == 0)
		h->min = h->max = 0;
	/* Collapse runs of empty buckets in place, as TensorFlow's EncodeToProto. */
	for (size_t i = 0; i < nl;) {
		double end = lim[i], c = cnt[i];

		i++;
		if (c <= 0)
			while (i < nl && cnt[i] <= 0)
				end = lim[i++];
		lim[nb] = end;
		cnt[nb] = c;
		nb++;
	}
	h->limit = lim;
	h->count = cnt;
	h->nbuckets = nb;
	return 0;
}

void tfev_hist_free(tfev_hist *h)
{
	free(h->limit);
	free(h->count);
	memset(h, 0, sizeof *h);
}

int tfev_histogram_write(tfev_writer *w, int64_t step, const char *tag, const tfev_hist *h,
			 char *err)
{
	size_t mark[2], m;

	if (tfev_value_begin(w, step, tag, mark, err))
		return -1;
	m = pb_begin(&w->event, TFEV_VAL_HISTO);
	pb_double(&w->event, TFEV_HIS_MIN, h->min);
	pb_double(&w->event, TFEV_HIS_MAX, h->max);
	pb_double(&w->event, TFEV_HIS_NUM, h->num);
	pb_double(&w->event, TFEV_HIS_SUM, h->sum);
	pb_double(&w->event, TFEV_HIS_SUMSQ, h->sum_squares);
	pb_packed_double(&w->event, TFEV_HIS_LIMIT, h->limit, h->nbuckets);
	pb_packed_double(&w->event, TFEV_HIS_COUNT, h->count, h->nbuckets);
	pb_end(&w->event, m);
	return tfev_value_end(w, mark, err);
}

static int histogram_any(tfev_writer *w, int64_t step, const char *tag, const double *vd,
			 const float *vf, size_t n, tfev_nonfinite *skipped, char *err)
{
	tfev_hist h;
	int rc;

	if (tfev_hist_compute(&h, vd, vf, n, err))
		return -1;
	rc = tfev_histogram_write(w, step, tag, &h, err);
	if (skipped)
		*skipped = h.skipped;
	tfev_hist_free(&h);
	return rc;
}

int tfev_histogram(tfev_writer *w, int64_t step, const char *tag, const double *v, size_t n,
		   tfev_nonfinite *skipped, char *err)
{
	return histogram_any(w, step, tag, v, NULL, n, skipped, err);
}

int tfev_histogram_f(tfev_writer *w, int64_t step, const char *tag, const float *v, size_t n,
		     tfev_nonfinite *skipped, char *err)
{
	return histogram_any(w, step, tag, NULL, v, n, skipped, err);
}

int tfev_histogram_tensor(tfev_writer *w, int64_t step, const char *tag, const tensor *t,
			  tfev_nonfinite *skipped, char *err)
{
	int64_t n = tensor_numel(t);
	double *v;
	int rc;

	if (n < 0)
		return err_set(err, "array too large");
	if (t->dtype == DT_F4)
		return tfev_histogram_f(w, step, tag, t->data, (size_t)n, skipped, err);
	if (t->dtype == DT_F8)
		return tfev_histogram(w, step, tag, t->data, (size_t)n, skipped, err);
	if (t->dtype == DT_U)
		return err_set(err, "a string array has no histogram");
	if ((uint64_t)n > SIZE_MAX / sizeof *v || !(v = malloc((size_t)n * sizeof *v + 1)))
		return err_set(err, "out of memory for %lld values", (long long)n);
	for (int64_t i = 0; i < n; i++)
		v[i] = t->dtype == DT_U1 ? ((const uint8_t *)t->data)[i] :
		       t->dtype == DT_I4 ? ((const int32_t *)t->data)[i] :
		       (double)((const int64_t *)t->data)[i];
	rc = tfev_histogram(w, step, tag, v, (size_t)n, skipped, err);
	free(v);
	return rc;
}
