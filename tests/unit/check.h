/* check: the few macros our C unit tests need; each test binary prints "N passed, N failed"
 * and exits 1 if anything failed, so `make check` stops on the first broken module. */
#ifndef PETCNN_CHECK_H
#define PETCNN_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_pass, check_fail;

#define CHECK(cond, ...)                                                         \
	do {                                                                     \
		if (cond) {                                                      \
			check_pass++;                                            \
		} else {                                                         \
			check_fail++;                                            \
			fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                            \
			fputc('\n', stderr);                                     \
		}                                                                \
	} while (0)

/* |a - b| <= tol * max(1, |a|, |b|): relative for large values, absolute near zero. */
#define CHECK_NEAR(a, b, tol, what)                                              \
	do {                                                                     \
		double ca_ = (a), cb_ = (b), cm_ = fabs(ca_) > fabs(cb_) ? fabs(ca_) : fabs(cb_); \
		CHECK(fabs(ca_ - cb_) <= (tol) * (cm_ > 1 ? cm_ : 1),            \
		      "%s: %.9g vs %.9g (tol %g)", what, ca_, cb_, (double)(tol)); \
	} while (0)

static inline int check_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_pass, check_fail);
	return check_fail ? 1 : 0;
}

#endif
