/* tensor: an n-d array in memory with a NumPy dtype.
 * See tensor.h. */
#include "array/tensor.h"

#include "util/errmsg.h"

#include <stdlib.h>
#include <string.h>

size_t tensor_itemsize(const tensor *t)
{
	switch (t->dtype) {
	case DT_U1:
		return 1;
	case DT_I4:
	case DT_F4:
		return 4;
	case DT_I8:
	case DT_F8:
		return 8;
	case DT_U:
		/* ulen is bounded where tensors are made (tensor_alloc, npy headers). */
		return t->ulen > 0 && (uint64_t)t->ulen <= SIZE_MAX / 4 ? (size_t)t->ulen * 4 : 0;
	}
	return 0;
}

int64_t tensor_numel(const tensor *t)
{
	int64_t n = 1;

	for (int i = 0; i < t->ndim; i++) {
		if (t->shape[i] < 0)
			return -1;
		if (t->shape[i] == 0)
			return 0;
		if (n > INT64_MAX / t->shape[i])
			return -1;
		n *= t->shape[i];
	}
	return n;
}

int64_t tensor_nbytes(const tensor *t)
{
	int64_t n = tensor_numel(t);
	size_t size = tensor_itemsize(t);

	if (n < 0 || size == 0)
		return -1;
	if (n > INT64_MAX / (int64_t)size)
		return -1;
	return n * (int64_t)size;
}

float tensor_elem_f4(const void *data, enum tensor_dtype d, int64_t i)
{
	const unsigned char *p = data;
	int32_t i4;
	int64_t i8;
	float f4;
	double f8;

	/* memcpy: the data of a .npy may sit at any alignment */
	switch (d) {
	case DT_U1:
		return p[i];
	case DT_I4:
		memcpy(&i4, p + 4 * i, 4);
		return (float)i4;
	case DT_I8:
		memcpy(&i8, p + 8 * i, 8);
		return (float)i8;
	case DT_F4:
		memcpy(&f4, p + 4 * i, 4);
		return f4;
	case DT_F8:
		memcpy(&f8, p + 8 * i, 8);
		return (float)f8;
	default:
		return 0;
	}
}

const char *tensor_dtype_name(enum tensor_dtype d)
{
	switch (d) {
	case DT_U1:
		return "u1";
	case DT_I4:
		return "i4";
	case DT_I8:
		return "i8";
	case DT_F4:
		return "f4";
	case DT_F8:
		return "f8";
	case DT_U:
		return "U";
	}
	return "?";
}

int tensor_alloc(tensor *t, enum tensor_dtype dtype, int ndim, const int64_t *shape,
		 int64_t ulen, char *err)
{
	int64_t nbytes;

	memset(t, 0, sizeof *t);
	if (ndim < 0 || ndim > TENSOR_MAXDIM)
		return err_set(err, "tensor: %d dimensions (at most %d)", ndim, TENSOR_MAXDIM);
	t->dtype = dtype;
	t->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		t->shape[i] = shape[i];
	t->ulen = dtype == DT_U ? ulen : 0;
	if (dtype == DT_U && ulen < 1)
		return err_set(err, "tensor: string length %lld (at least 1)", (long long)ulen);
	nbytes = tensor_nbytes(t);
	if (nbytes < 0 || (uint64_t)nbytes > SIZE_MAX)
		return err_set(err, "tensor: shape is negative or too large");
	/* Never NULL, even for an empty array, so callers can tell "allocated" from "not". */
	t->data = calloc(nbytes ? (size_t)nbytes : 1, 1);
	if (!t->data)
		return err_set(err, "tensor: out of memory (%lld bytes)", (long long)nbytes);
	return 0;
}

void tensor_free(tensor *t)
{
	free(t->data);
	t->data = NULL;
}

/* Decodes one UTF-8 sequence at s; returns its length (invalid bytes decode as U+FFFD, 1 byte). */
static int utf8_decode(const unsigned char *s, uint32_t *cp)
{
	int n;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		c = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		c = s[0] & 0x07;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*cp = 0xfffd;
			return 1;
		}
		c = c << 6 | (s[i] & 0x3f);
	}
	*cp = c > 0x10ffff ? 0xfffd : c;
	return n;
}

static int64_t utf8_count(const char *s)
{
	int64_t n = 0;
	uint32_t cp;

	for (const unsigned char *p = (const unsigned char *)s; *p; n++)
		p += utf8_decode(p, &cp);
	return n;
}

int tensor_from_strings(tensor *t, const char *const *s, int64_t n, char *err)
{
	int64_t ulen = 1, shape[1] = { n };

	for (int64_t i = 0; i < n; i++) {
		int64_t len = utf8_count(s[i]);
		if (len > ulen)
			ulen = len;
	}
	if (tensor_alloc(t, DT_U, 1, shape, ulen, err))
		return -1;
	for (int64_t i = 0; i < n; i++) {
		unsigned char *out = (unsigned char *)t->data + i * ulen * 4;
		uint32_t cp;
		for (const unsigned char *p = (const unsigned char *)s[i]; *p; out += 4) {
			p += utf8_decode(p, &cp);
			out[0] = cp & 0xff;
			out[1] = cp >> 8 & 0xff;
			out[2] = cp >> 16 & 0xff;
			out[3] = cp >> 24 & 0xff;
		}
	}
	return 0;
}

static size_t utf8_encode(uint32_t c, char *o)
{
	if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		c = 0xfffd;
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | c >> 12);
		o[1] = (char)(0x80 | (c >> 6 & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | c >> 18);
	o[1] = (char)(0x80 | (c >> 12 & 0x3f));
	o[2] = (char)(0x80 | (c >> 6 & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

int tensor_get_string(const tensor *t, int64_t i, char *buf, size_t bufsize)
{
	int64_t n = tensor_numel(t);
	const unsigned char *p;
	size_t used = 0;

	if (!bufsize)
		return -1;
	buf[0] = 0;
	if (t->dtype != DT_U || !t->data || i < 0 || i >= n)
		return -1;
	p = (const unsigned char *)t->data + i * t->ulen * 4;
	/* numpy pads with NUL code points and drops them on read; so do we. */
	for (int64_t k = 0; k < t->ulen; k++, p += 4) {
		uint32_t c = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		char tmp[4];
		size_t len;
		if (!c)
			break;
		len = utf8_encode(c, tmp);
		if (used + len >= bufsize)
			break;
		memcpy(buf + used, tmp, len);
		used += len;
	}
	buf[used] = 0;
	return 0;
}
