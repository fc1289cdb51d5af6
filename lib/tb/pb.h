/* pb: the small part of Protocol Buffers that event files need: a writer (varint, fixed64
 * double, fixed32 float, length-delimited bytes and nested messages, packed doubles) into a
 * struct buf, and a reader that walks the fields of an encoded message.
 * Wire format: each field is a key varint (field_number << 3 | wire_type) then its value;
 * wire types 0 varint, 1 fixed64 (little-endian), 2 length-delimited (varint length, bytes),
 * 5 fixed32. Varints are little-endian base-128, 7 bits per byte, high bit = more. */
#ifndef PETCNN_PB_H
#define PETCNN_PB_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

/* Writers append to a struct buf (util/buf.h): they never fail loudly, an allocation
 * failure sets its oom flag and makes every later write a no-op, so a caller checks once,
 * at the end. */
void pb_raw_varint(struct buf *b, uint64_t v);
void pb_key(struct buf *b, int field, int wire);

void pb_uint(struct buf *b, int field, uint64_t v);   /* uint32/uint64/enum/bool */
void pb_int(struct buf *b, int field, int64_t v);     /* int32/int64: negatives take 10 bytes */
void pb_double(struct buf *b, int field, double v);
void pb_float(struct buf *b, int field, float v);
void pb_bytes(struct buf *b, int field, const void *p, size_t n);
void pb_string(struct buf *b, int field, const char *s);
void pb_packed_double(struct buf *b, int field, const double *v, size_t n);

/* Nested message: pb_begin writes the key and returns a mark; the fields that follow are
 * the message's; pb_end(b, mark) inserts their length after the key. Nest freely. */
size_t pb_begin(struct buf *b, int field);
void pb_end(struct buf *b, size_t mark);

/* Reader: walks one message's fields in order. */
typedef struct {
	const unsigned char *p, *end;
} pb_reader;

typedef struct {
	int field, wire;
	uint64_t u;                 /* VARINT value; FIXED64/FIXED32 raw bits */
	const unsigned char *data;  /* LEN: the bytes (a view into the message) */
	size_t len;
} pb_field;

void pb_reader_init(pb_reader *r, const void *p, size_t n);
/* 1 and f filled, 0 at the end of the message, -1 if malformed (truncated varint or
 * value, length beyond the message, unknown or group wire type, field number 0). */
int pb_next(pb_reader *r, pb_field *f);
double pb_as_double(const pb_field *f);   /* FIXED64 */
float pb_as_float(const pb_field *f);     /* FIXED32 */
/* Element i of packed doubles (f->len / 8 of them); also accepts one unpacked FIXED64. */
size_t pb_packed_count(const pb_field *f);
double pb_packed_double_at(const pb_field *f, size_t i);

#endif
