/* Unit tests for crc32c: RFC 3720 vectors, both paths against a bitwise reference on
 * random lengths and alignments, TFRecord masking. */
#include "check.h"
#include "tb/crc32c.h"
#include "util/rng.h"

#include <string.h>

/* The definition itself: one bit at a time, nothing shared with the table path. */
static uint32_t crc_bitwise(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
	}
	return ~c;
}

static void test_vectors(void)
{
	unsigned char buf[32];
	uint32_t (*fn[2])(uint32_t, const void *, size_t) = { crc32c_sw, crc32c_hw };
	const char *names[2] = { "sw", "hw" };

	for (int i = 0; i < 2; i++) {
		memset(buf, 0, sizeof buf);
		CHECK(fn[i](0, buf, 32) == 0x8a9136aau, "%s: 32 zeros %08x", names[i], fn[i](0, buf, 32));
		memset(buf, 0xff, sizeof buf);
		CHECK(fn[i](0, buf, 32) == 0x62a8ab43u, "%s: 32 0xff %08x", names[i], fn[i](0, buf, 32));
		for (int k = 0; k < 32; k++)
			buf[k] = (unsigned char)k;
		CHECK(fn[i](0, buf, 32) == 0x46dd794eu, "%s: 0..31 %08x", names[i], fn[i](0, buf, 32));
		CHECK(fn[i](0, "123456789", 9) == 0xe3069283u, "%s: 123456789", names[i]);
		CHECK(fn[i](0, "", 0) == 0, "%s: empty", names[i]);
	}
	printf("crc32c: hardware path %s\n", crc32c_have_hw() ? "available" : "not available");
}

static void test_random(void)
{
	enum { MAX = 4096 };
	static unsigned char buf[MAX + 16];
	rng r;
	int bad_sw = 0, bad_hw = 0, bad_ext = 0;

	rng_seed(&r, 3720);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)rng_u64(&r);
	for (int t = 0; t < 2000; t++) {
		size_t off = (size_t)rng_below(&r, 16);
		size_t n = t < 64 ? (size_t)t : (size_t)rng_below(&r, MAX);
		size_t cut = n ? (size_t)rng_below(&r, n + 1) : 0;
		uint32_t want = crc_bitwise(buf + off, n);

		bad_sw += crc32c_sw(0, buf + off, n) != want;
		bad_hw += crc32c_hw(0, buf + off, n) != want;
		bad_ext += crc32c(crc32c(0, buf + off, cut), buf + off + cut, n - cut) != want;
	}
	CHECK(bad_sw == 0, "table path differs from bitwise on %d of 2000 buffers", bad_sw);
	CHECK(bad_hw == 0, "hardware path differs from bitwise on %d of 2000 buffers", bad_hw);
	CHECK(bad_ext == 0, "extending in two pieces differs on %d of 2000 buffers", bad_ext);
}

static void test_mask(void)
{
	/* Value from the TFRecord formula computed independently in Python. */
	CHECK(crc32c_mask(0xe3069283u) == 0xc78ab0e5u, "mask %08x", crc32c_mask(0xe3069283u));
	for (uint32_t i = 0, c = 1; i < 300; i++, c = c * 2654435761u + 12345u)
		CHECK(crc32c_unmask(crc32c_mask(c)) == c, "unmask(mask(%08x))", c);
}

int main(void)
{
	test_vectors();
	test_random();
	test_mask();
	return check_done("test_crc32c");
}
