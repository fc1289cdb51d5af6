/* tstat: the sum is a long double so that the mean of a large float array keeps its
 * digits; min and max of integers stay exact as int64. */
#include "array/tstat.h"

#include <math.h>
#include <string.h>

void tstat_init(tstat *s, const tensor *h)
{
	memset(s, 0, sizeof *s);
	s->h = *h;
	s->h.data = NULL;
	s->itemsize = tensor_itemsize(h);
	s->imin = INT64_MAX;
	s->imax = INT64_MIN;
	s->fmin = INFINITY;
	s->fmax = -INFINITY;
	if (h->dtype == DT_U) {
		int64_t numel = tensor_numel(h);
		s->nstr = numel < TSTAT_NSHOW ? numel : TSTAT_NSHOW;
		s->more = numel > TSTAT_NSHOW || h->ulen > TSTAT_SHOWLEN;
	}
}

static void add_int(tstat *s, int64_t v)
{
	if (v < s->imin)
		s->imin = v;
	if (v > s->imax)
		s->imax = v;
	s->sum += v;
}

static void add_float(tstat *s, double v)
{
	if (v != v) {
		s->nan = 1;
		return;
	}
	if (v < s->fmin)
		s->fmin = v;
	if (v > s->fmax)
		s->fmax = v;
	s->sum += v;
}

void tstat_add(tstat *s, int64_t off, const unsigned char *p, size_t len)
{
	size_t k = len / (s->itemsize ? s->itemsize : 1);

	switch (s->h.dtype) {
	case DT_U1:
		for (size_t i = 0; i < k; i++)
			add_int(s, p[i]);
		break;
	case DT_I4:
		for (size_t i = 0; i < k; i++) {
			int32_t v;
			memcpy(&v, p + 4 * i, 4);
			add_int(s, v);
		}
		break;
	case DT_I8:
		for (size_t i = 0; i < k; i++) {
			int64_t v;
			memcpy(&v, p + 8 * i, 8);
			add_int(s, v);
		}
		break;
	case DT_F4:
		for (size_t i = 0; i < k; i++) {
			float v;
			memcpy(&v, p + 4 * i, 4);
			add_float(s, v);
		}
		break;
	case DT_F8:
		for (size_t i = 0; i < k; i++) {
			double v;
			memcpy(&v, p + 8 * i, 8);
			add_float(s, v);
		}
		break;
	case DT_U:
		/* Copy the shown code points of the first few strings that fall in this piece. */
		for (int64_t e = 0; e < s->nstr; e++) {
			int64_t lo = e * (int64_t)s->itemsize;
			int64_t hi = lo + 4 * (s->h.ulen < TSTAT_SHOWLEN ? s->h.ulen : TSTAT_SHOWLEN);
			for (int64_t b = lo > off ? lo : off; b < hi && b < off + (int64_t)len; b++) {
				uint32_t *cp = &s->str[e][(b - lo) / 4];
				*cp |= (uint32_t)p[b - off] << (8 * ((b - lo) % 4));
			}
		}
		return;
	}
	s->n += (int64_t)k;
}
