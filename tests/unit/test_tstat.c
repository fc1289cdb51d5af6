/* Unit tests for lib/tstat: statistics fed in uneven pieces equal those of the whole array
 * (floats with NaN, int64 extremes exactly), and strings split across pieces come out whole. */
#include "check.h"
#include "array/tstat.h"

#include <string.h>

/* feeds data in pieces of `each` elements (the last shorter) */
static void feed(tstat *s, const void *data, size_t itemsize, size_t n, size_t each)
{
	for (size_t i = 0; i < n; i += each) {
		size_t k = n - i < each ? n - i : each;

		tstat_add(s, (int64_t)(i * itemsize), (const unsigned char *)data + i * itemsize, k * itemsize);
	}
}

static void test_numbers(void)
{
	float f[7] = { 1.5f, -2.0f, 4.0f, 0.25f, 3.0f, -0.75f, 10.0f };
	int64_t i8[4] = { INT64_MIN, 5, -3, INT64_MAX };
	tensor hf = { .dtype = DT_F4, .ndim = 1, .shape = { 7 } };
	tensor hi = { .dtype = DT_I8, .ndim = 1, .shape = { 4 } };
	tstat s;

	for (size_t each = 1; each <= 7; each++) {
		tstat_init(&s, &hf);
		feed(&s, f, 4, 7, each);
		CHECK(s.n == 7 && s.fmin == -2.0 && s.fmax == 10.0 && !s.nan,
		      "f4 in pieces of %zu: n %lld min %g max %g", each, (long long)s.n, s.fmin, s.fmax);
		CHECK_NEAR((double)(s.sum / s.n), 16.0 / 7, 1e-15, "f4 mean");
	}
	f[3] = NAN;
	tstat_init(&s, &hf);
	feed(&s, f, 4, 7, 3);
	CHECK(s.nan && s.fmin == -2.0 && s.fmax == 10.0, "a NaN is noted and skipped by min/max");
	tstat_init(&s, &hi);
	feed(&s, i8, 8, 4, 3);
	CHECK(s.imin == INT64_MIN && s.imax == INT64_MAX && s.n == 4, "int64 extremes exact");
}

static void test_strings(void)
{
	uint32_t u[3][4] = { { 'c', 'a', 't', 0 }, { 'd', 'o', 'g', 's' }, { 'x', 0, 0, 0 } };
	tensor h = { .dtype = DT_U, .ndim = 1, .shape = { 3 }, .ulen = 4 };
	tstat s;

	for (size_t each = 1; each <= 48; each += 5) {
		tstat_init(&s, &h);
		/* strings arrive as bytes, pieces of any length */
		for (size_t b = 0; b < sizeof u; b += each)
			tstat_add(&s, (int64_t)b, (const unsigned char *)u + b, sizeof u - b < each ? sizeof u - b : each);
		CHECK(s.nstr == 3 && !s.more && s.str[0][2] == 't' && s.str[1][3] == 's' &&
		      s.str[1][4] == 0 && s.str[2][0] == 'x', "strings in byte pieces of %zu", each);
	}
}

int main(void)
{
	test_numbers();
	test_strings();
	return check_done("test_tstat");
}
