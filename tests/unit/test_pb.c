/* Unit tests for pb: encodings checked byte for byte against the protobuf encoding guide's
 * examples, nested lengths that need two bytes, the reader round trip, malformed input. */
#include "check.h"
#include "tb/pb.h"

#include <string.h>

static int same(const struct buf *b, const unsigned char *want, size_t n)
{
	return !b->oom && b->len == n && !memcmp(b->data, want, n);
}

static void test_writer(void)
{
	struct buf b;
	static const unsigned char v150[] = { 0x08, 0x96, 0x01 };
	static const unsigned char str[] = { 0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g' };
	static const unsigned char nested[] = { 0x1a, 0x03, 0x08, 0x96, 0x01 };
	static const unsigned char neg[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	static const unsigned char dbl[] = { 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f };
	static const unsigned char flt[] = { 0x15, 0, 0, 0x80, 0x3f };
	static const unsigned char packed[] = { 0x32, 0x10, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
						0, 0, 0, 0, 0, 0, 0, 0x40 };
	const double two[2] = { 1.0, 2.0 };
	size_t m;

	buf_init(&b);
	pb_uint(&b, 1, 150);
	CHECK(same(&b, v150, sizeof v150), "varint 150");
	buf_reset(&b);
	pb_string(&b, 2, "testing");
	CHECK(same(&b, str, sizeof str), "string");
	buf_reset(&b);
	m = pb_begin(&b, 3);
	pb_uint(&b, 1, 150);
	pb_end(&b, m);
	CHECK(same(&b, nested, sizeof nested), "nested message");
	buf_reset(&b);
	pb_int(&b, 1, -1);
	CHECK(same(&b, neg, sizeof neg), "int64 -1 takes ten bytes");
	buf_reset(&b);
	pb_double(&b, 1, 1.0);
	CHECK(same(&b, dbl, sizeof dbl), "double 1.0");
	buf_reset(&b);
	pb_float(&b, 2, 1.0f);
	CHECK(same(&b, flt, sizeof flt), "float 1.0");
	buf_reset(&b);
	pb_packed_double(&b, 6, two, 2);
	CHECK(same(&b, packed, sizeof packed), "packed doubles");
	/* Two levels of nesting, the inner one 200 bytes long: both lengths need 2 bytes. */
	buf_reset(&b);
	size_t outer = pb_begin(&b, 1);
	size_t inner = pb_begin(&b, 2);
	for (int i = 0; i < 100; i++)
		pb_uint(&b, 3, 1);
	pb_end(&b, inner);
	pb_end(&b, outer);
	CHECK(!b.oom && b.len == 1 + 2 + 1 + 2 + 200, "nested length %zu", b.len);
	CHECK(b.data[0] == 0x0a && b.data[1] == ((203 & 0x7f) | 0x80) && b.data[2] == 1,
	      "outer length 203 as varint");
	CHECK(b.data[3] == 0x12 && b.data[4] == ((200 & 0x7f) | 0x80) && b.data[5] == 1,
	      "inner length 200 as varint");
	buf_free(&b);
}

static void test_reader(void)
{
	struct buf b;
	pb_reader r, in;
	pb_field f;
	const double lim[3] = { -1.5, 0, 1e300 };
	int n = 0;

	buf_init(&b);
	pb_double(&b, 1, 1764270000.123456);
	pb_int(&b, 2, 123456789012LL);
	size_t m = pb_begin(&b, 5);
	pb_string(&b, 1, "Loss");
	pb_float(&b, 2, 0.6931f);
	pb_packed_double(&b, 6, lim, 3);
	pb_end(&b, m);
	CHECK(!b.oom, "encode");
	pb_reader_init(&r, b.data, b.len);
	while (pb_next(&r, &f) == 1) {
		n++;
		if (f.field == 1)
			CHECK(f.wire == PB_FIXED64 && pb_as_double(&f) == 1764270000.123456, "wall time");
		if (f.field == 2)
			CHECK(f.wire == PB_VARINT && (int64_t)f.u == 123456789012LL, "step");
		if (f.field != 5)
			continue;
		CHECK(f.wire == PB_LEN, "nested is LEN");
		pb_reader_init(&in, f.data, f.len);
		CHECK(pb_next(&in, &f) == 1 && f.len == 4 && !memcmp(f.data, "Loss", 4), "tag");
		CHECK(pb_next(&in, &f) == 1 && pb_as_float(&f) == 0.6931f, "simple value");
		CHECK(pb_next(&in, &f) == 1 && pb_packed_count(&f) == 3, "packed count");
		for (size_t i = 0; i < 3; i++)
			CHECK(pb_packed_double_at(&f, i) == lim[i], "packed element %zu", i);
		CHECK(pb_next(&in, &f) == 0, "end of nested");
	}
	CHECK(n == 3, "three top-level fields, got %d", n);

	/* Malformed: each must be -1, never a read past the end. */
	static const unsigned char trunc_varint[] = { 0x08, 0x96 };
	static const unsigned char long_len[] = { 0x0a, 0x05, 'a', 'b' };
	static const unsigned char group[] = { 0x0b };
	static const unsigned char field0[] = { 0x00, 0x01 };
	static const unsigned char short_fixed[] = { 0x09, 1, 2, 3 };
	static const unsigned char eleven[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	const unsigned char *bad[] = { trunc_varint, long_len, group, field0, short_fixed, eleven };
	size_t badn[] = { sizeof trunc_varint, sizeof long_len, sizeof group, sizeof field0,
			  sizeof short_fixed, sizeof eleven };
	for (int i = 0; i < 6; i++) {
		pb_reader_init(&r, bad[i], badn[i]);
		CHECK(pb_next(&r, &f) == -1, "malformed case %d", i);
	}
	buf_free(&b);
}

/* Found by fuzz_events: an empty graph field has no bytes at all, and reading it must not
 * compute NULL + 0 (UBSan stops the asan build there). */
static void test_empty_null(void)
{
	pb_reader r;
	pb_field f;

	pb_reader_init(&r, NULL, 0);
	CHECK(pb_next(&r, &f) == 0, "no bytes, no field");
}

int main(void)
{
	test_writer();
	test_reader();
	test_empty_null();
	return check_done("test_pb");
}
