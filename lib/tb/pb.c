/* pb: a minimal protobuf writer and reader. See pb.h. */
#include "tb/pb.h"

#include <stdlib.h>
#include <string.h>

static size_t varint_encode(unsigned char *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (unsigned char)v;
	return n;
}

void pb_raw_varint(struct buf *b, uint64_t v)
{
	unsigned char tmp[10];

	buf_add(b, tmp, varint_encode(tmp, v));
}

void pb_key(struct buf *b, int field, int wire)
{
	pb_raw_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

void pb_uint(struct buf *b, int field, uint64_t v)
{
	pb_key(b, field, PB_VARINT);
	pb_raw_varint(b, v);
}

void pb_int(struct buf *b, int field, int64_t v)
{
	pb_uint(b, field, (uint64_t)v);
}

static void put_le(struct buf *b, uint64_t bits, int n)
{
	unsigned char tmp[8];

	for (int i = 0; i < n; i++)
		tmp[i] = (unsigned char)(bits >> (8 * i));
	buf_add(b, tmp, (size_t)n);
}

void pb_double(struct buf *b, int field, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, 8);
	pb_key(b, field, PB_FIXED64);
	put_le(b, bits, 8);
}

void pb_float(struct buf *b, int field, float v)
{
	uint32_t bits;

	memcpy(&bits, &v, 4);
	pb_key(b, field, PB_FIXED32);
	put_le(b, bits, 4);
}

void pb_bytes(struct buf *b, int field, const void *p, size_t n)
{
	pb_key(b, field, PB_LEN);
	pb_raw_varint(b, n);
	buf_add(b, p, n);
}

void pb_string(struct buf *b, int field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

void pb_packed_double(struct buf *b, int field, const double *v, size_t n)
{
	if (n > SIZE_MAX / 8) {
		b->oom = 1;
		return;
	}
	pb_key(b, field, PB_LEN);
	pb_raw_varint(b, (uint64_t)n * 8);
	if (buf_reserve(b, n * 8))
		return;
	for (size_t i = 0; i < n; i++) {
		uint64_t bits;

		memcpy(&bits, &v[i], 8);
		put_le(b, bits, 8);
	}
}

size_t pb_begin(struct buf *b, int field)
{
	pb_key(b, field, PB_LEN);
	return b->len;
}

void pb_end(struct buf *b, size_t mark)
{
	unsigned char tmp[10];

	if (b->oom)
		return;
	buf_insert(b, mark, tmp, varint_encode(tmp, b->len - mark));
}

void pb_reader_init(pb_reader *r, const void *p, size_t n)
{
	r->p = p;
	/* An empty field may have no bytes at all (NULL): NULL + 0 is undefined in C. */
	r->end = p ? r->p + n : r->p;
}

static int read_varint(pb_reader *r, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return -1;
		unsigned char c = *r->p++;
		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int pb_next(pb_reader *r, pb_field *f)
{
	uint64_t key, n;

	if (r->p >= r->end)
		return 0;
	if (read_varint(r, &key) || key >> 3 == 0 || key >> 3 > 0x1fffffff)
		return -1;
	memset(f, 0, sizeof *f);
	f->field = (int)(key >> 3);
	f->wire = (int)(key & 7);
	switch (f->wire) {
	case PB_VARINT:
		return read_varint(r, &f->u) ? -1 : 1;
	case PB_FIXED64:
	case PB_FIXED32:
		n = f->wire == PB_FIXED64 ? 8 : 4;
		if ((size_t)(r->end - r->p) < n)
			return -1;
		f->u = get_le(r->p, (int)n);
		r->p += n;
		return 1;
	case PB_LEN:
		if (read_varint(r, &n) || n > (uint64_t)(r->end - r->p))
			return -1;
		f->data = r->p;
		f->len = (size_t)n;
		r->p += n;
		return 1;
	default:
		return -1;
	}
}

double pb_as_double(const pb_field *f)
{
	double d;
	uint64_t bits = f->u;

	memcpy(&d, &bits, 8);
	return d;
}

float pb_as_float(const pb_field *f)
{
	float x;
	uint32_t bits = (uint32_t)f->u;

	memcpy(&x, &bits, 4);
	return x;
}

size_t pb_packed_count(const pb_field *f)
{
	if (f->wire == PB_FIXED64)
		return 1;
	return f->wire == PB_LEN ? f->len / 8 : 0;
}

double pb_packed_double_at(const pb_field *f, size_t i)
{
	pb_field one = { .wire = PB_FIXED64 };

	if (f->wire == PB_FIXED64)
		return pb_as_double(f);
	one.u = get_le(f->data + 8 * i, 8);
	return pb_as_double(&one);
}
