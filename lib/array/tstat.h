/* tstat: summary statistics of one array whose data arrives in pieces (tensor-info reads
 * arrays of any size this way): count, min, max, mean, NaN seen, first strings of text. */
#ifndef PETCNN_TSTAT_H
#define PETCNN_TSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "array/tensor.h"

#define TSTAT_NSHOW 5       /* strings kept */
#define TSTAT_SHOWLEN 40    /* code points kept per string */

typedef struct {
	tensor h;             /* dtype and shape; data unused */
	size_t itemsize;
	int64_t n;            /* elements seen */
	int64_t imin, imax;   /* integer dtypes */
	double fmin, fmax;    /* float dtypes (NaN skipped) */
	int nan;              /* a NaN was seen */
	long double sum;
	int64_t nstr;                                   /* strings: how many kept */
	uint32_t str[TSTAT_NSHOW][TSTAT_SHOWLEN + 1];  /* their first code points, 0-terminated */
	int more;                                       /* strings cut short or left out */
} tstat;

/* Starts the statistics of an array with header h (its data is not read). */
void tstat_init(tstat *s, const tensor *h);
/* Feeds bytes [off, off + len) of the array's data; off is a multiple of the item size
 * for numbers (whole elements), anything for strings. */
void tstat_add(tstat *s, int64_t off, const unsigned char *p, size_t len);

#endif
