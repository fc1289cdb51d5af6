/* npy: NumPy .npy arrays one after another on a stream.
 * See npy.h for the format. Headers are parsed by a small scanner for exactly the dict
 * numpy writes (any key order, either quote, trailing comma, padding), nothing more. */
#include "array/npy.h"

#include "util/buf.h"
#include "util/errmsg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "petcnn stores tensors in host order and .npy data is little-endian"
#endif

static const unsigned char MAGIC[6] = { 0x93, 'N', 'U', 'M', 'P', 'Y' };

/* Above this a string dtype is surely an attack, and 4 * ulen stays far from overflow. */
#define ULEN_MAX ((int64_t)1 << 40)
/* First buffer for data whose size cannot be checked in advance (pipes, zip members). */
#define GROW_START ((size_t)1 << 20)

/* ---- header scanning ---- */

typedef struct {
	const unsigned char *p, *end;
} scan;

static void skip_ws(scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int eat(scan *s, char c)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return 1;
	}
	return 0;
}

/* A quoted Python string literal without escapes, into out (truncated to size). */
static int scan_string(scan *s, char *out, size_t size)
{
	unsigned char q;
	size_t n = 0;

	skip_ws(s);
	if (s->p >= s->end || (*s->p != '\'' && *s->p != '"'))
		return -1;
	q = *s->p++;
	while (s->p < s->end && *s->p != q) {
		if (*s->p == '\\')
			return -1;
		if (n + 1 < size)
			out[n++] = (char)*s->p;
		s->p++;
	}
	if (s->p >= s->end)
		return -1;
	s->p++;
	out[n] = 0;
	return 0;
}

static int scan_word(scan *s, const char *w)
{
	size_t n = strlen(w);

	skip_ws(s);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n))
		return 0;
	s->p += n;
	return 1;
}

/* descr string to dtype: little-endian or byte-order-free spellings of our dtypes only. */
static int parse_descr(const char *d, tensor *t, const char *name, char *err)
{
	char order = 0;
	const char *k = d;
	char *end;

	if (*k == '<' || *k == '>' || *k == '|' || *k == '=')
		order = *k++;
	if (!strcmp(k, "u1")) {
		t->dtype = DT_U1;
		return 0;
	}
	if (order == '>' && (!strcmp(k, "i4") || !strcmp(k, "i8") || !strcmp(k, "f4") ||
			     !strcmp(k, "f8") || k[0] == 'U'))
		return err_set(err, "%s: big-endian dtype '%s' is not supported (little-endian only)", name, d);
	if (!strcmp(k, "i4"))
		t->dtype = DT_I4;
	else if (!strcmp(k, "i8"))
		t->dtype = DT_I8;
	else if (!strcmp(k, "f4"))
		t->dtype = DT_F4;
	else if (!strcmp(k, "f8"))
		t->dtype = DT_F8;
	else if (k[0] == 'U' && k[1] >= '1' && k[1] <= '9') {
		errno = 0;
		long long n = strtoll(k + 1, &end, 10);
		if (*end || errno || n > ULEN_MAX)
			return err_set(err, "%s: unknown dtype '%s'", name, d);
		t->dtype = DT_U;
		t->ulen = n;
	} else {
		return err_set(err, "%s: unknown dtype '%s' (want u1, i4, i8, f4, f8 or U)", name, d);
	}
	return 0;
}

static int parse_shape(scan *s, tensor *t, const char *name, char *err)
{
	if (!eat(s, '('))
		return err_set(err, "%s: header 'shape' is not a tuple", name);
	t->ndim = 0;
	for (;;) {
		int64_t v = 0;
		skip_ws(s);
		if (eat(s, ')'))
			return 0;
		if (s->p < s->end && *s->p == '-')
			return err_set(err, "%s: negative dimension in shape", name);
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return err_set(err, "%s: header 'shape' is not a tuple of integers", name);
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
			int dig = *s->p++ - '0';
			if (v > (INT64_MAX - dig) / 10)
				return err_set(err, "%s: dimension in shape overflows 64 bits", name);
			v = v * 10 + dig;
		}
		if (t->ndim == TENSOR_MAXDIM)
			return err_set(err, "%s: more than %d dimensions", name, TENSOR_MAXDIM);
		t->shape[t->ndim++] = v;
		if (eat(s, ')'))
			return 0;
		if (!eat(s, ','))
			return err_set(err, "%s: header 'shape' is not a tuple of integers", name);
	}
}

static int parse_dict(scan *s, tensor *t, const char *name, char *err)
{
	int have_descr = 0, have_order = 0, have_shape = 0;
	char key[32], descr[64];

	if (!eat(s, '{'))
		return err_set(err, "%s: header is not a dict", name);
	while (!eat(s, '}')) {
		if (scan_string(s, key, sizeof key) || !eat(s, ':'))
			return err_set(err, "%s: header is not a dict", name);
		if (!strcmp(key, "descr")) {
			if (have_descr++)
				return err_set(err, "%s: duplicate key 'descr' in header", name);
			if (scan_string(s, descr, sizeof descr))
				return err_set(err, "%s: unknown dtype (a structured or non-string 'descr')", name);
			if (parse_descr(descr, t, name, err))
				return -1;
		} else if (!strcmp(key, "fortran_order")) {
			if (have_order++)
				return err_set(err, "%s: duplicate key 'fortran_order' in header", name);
			if (scan_word(s, "True"))
				return err_set(err, "%s: fortran_order True is not supported (C order only)", name);
			if (!scan_word(s, "False"))
				return err_set(err, "%s: header 'fortran_order' is not True or False", name);
		} else if (!strcmp(key, "shape")) {
			if (have_shape++)
				return err_set(err, "%s: duplicate key 'shape' in header", name);
			if (parse_shape(s, t, name, err))
				return -1;
		} else {
			return err_set(err, "%s: unexpected key '%s' in header", name, key);
		}
		if (!eat(s, ',')) {
			if (!eat(s, '}'))
				return err_set(err, "%s: header is not a dict", name);
			break;
		}
	}
	if (!have_descr || !have_order || !have_shape)
		return err_set(err, "%s: header lacks '%s'", name,
			       !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
	skip_ws(s);
	if (s->p != s->end)
		return err_set(err, "%s: junk after the header dict", name);
	return 0;
}

/* Bytes of the fixed prefix (magic, version, length) for a version; 0 if unsupported. */
static size_t prefix_len(unsigned major)
{
	return major == 1 ? 10 : major == 2 || major == 3 ? 12 : 0;
}

static int check_magic(const unsigned char *buf, size_t len, const char *name, char *err)
{
	if (memcmp(buf, MAGIC, len < 6 ? len : 6))
		return err_set(err, "%s: bad magic (not a .npy array)", name);
	if (len < 8)
		return err_set(err, "%s: truncated header (%zu bytes)", name, len);
	if (!prefix_len(buf[6]) || buf[7] != 0)
		return err_set(err, "%s: unsupported .npy version %u.%u", name, buf[6], buf[7]);
	return 0;
}

int npy_parse_header(const unsigned char *buf, size_t len, const char *name, tensor *t,
		     size_t *hdr_len, char *err)
{
	size_t pre;
	uint32_t hlen;
	scan s;

	memset(t, 0, sizeof *t);
	if (check_magic(buf, len, name, err))
		return -1;
	pre = prefix_len(buf[6]);
	if (len < pre)
		return err_set(err, "%s: truncated header (%zu bytes)", name, len);
	hlen = pre == 10 ? (uint32_t)buf[8] | (uint32_t)buf[9] << 8
			 : (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 |
				   (uint32_t)buf[11] << 24;
	if (hlen > NPY_HEADER_MAX)
		return err_set(err, "%s: header of %" PRIu32 " bytes is too long (at most %d)", name,
			       hlen, NPY_HEADER_MAX);
	if (len - pre < hlen)
		return err_set(err, "%s: truncated header: expected %" PRIu32 " bytes, got %zu", name,
			       hlen, len - pre);
	s.p = buf + pre;
	s.end = s.p + hlen;
	if (parse_dict(&s, t, name, err))
		return -1;
	if (tensor_nbytes(t) < 0) {
		char dims[TENSOR_MAXDIM * 21 + 8];
		size_t n = 0;
		for (int i = 0; i < t->ndim; i++)
			n += (size_t)snprintf(dims + n, sizeof dims - n, "%s%" PRId64, i ? ", " : "", t->shape[i]);
		return err_set(err, "%s: shape (%s) byte count overflows 64 bits", name, dims);
	}
	*hdr_len = pre + hlen;
	return 0;
}

/* ---- sources ---- */

static ptrdiff_t file_read(void *ctx, void *buf, size_t n, const char *name, char *err)
{
	FILE *f = ctx;
	size_t got = fread(buf, 1, n, f);

	if (got == 0 && ferror(f))
		return err_sys(err, "%s: read error", name);
	return (ptrdiff_t)got;
}

void npy_src_file(npy_src *s, FILE *f)
{
	struct stat st;
	off_t pos;

	s->read = file_read;
	s->ctx = f;
	s->left = -1;
	if (fileno(f) >= 0 && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
	    (pos = ftello(f)) >= 0)
		s->left = st.st_size > pos ? (int64_t)(st.st_size - pos) : 0;
}

int64_t npy_src_fill(npy_src *s, void *buf, size_t n, const char *name, char *err)
{
	size_t got = 0;

	while (got < n) {
		/* Bounded chunks so a short read from a pipe is retried, not mistaken for EOF. */
		ptrdiff_t r = s->read(s->ctx, (unsigned char *)buf + got, n - got, name, err);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (s->left >= 0)
		s->left = s->left > (int64_t)got ? s->left - (int64_t)got : 0;
	return (int64_t)got;
}

int npy_src_header(npy_src *s, const char *name, tensor *t, char *err)
{
	unsigned char fixed[12], *buf;
	int64_t got;
	size_t pre, hlen, used;
	int rc;

	memset(t, 0, sizeof *t);
	got = npy_src_fill(s, fixed, 8, name, err);
	if (got <= 0)
		return (int)got; /* 0: clean end of stream */
	if (check_magic(fixed, (size_t)got, name, err))
		return -1;
	pre = prefix_len(fixed[6]);
	got = npy_src_fill(s, fixed + 8, pre - 8, name, err);
	if (got < 0)
		return -1;
	if ((size_t)got < pre - 8)
		return err_set(err, "%s: truncated header (%zu bytes)", name, (size_t)got + 8);
	hlen = pre == 10 ? (size_t)fixed[8] | (size_t)fixed[9] << 8
			 : (size_t)fixed[8] | (size_t)fixed[9] << 8 | (size_t)fixed[10] << 16 |
				   (size_t)fixed[11] << 24;
	if (hlen > NPY_HEADER_MAX)
		return err_set(err, "%s: header of %zu bytes is too long (at most %d)", name, hlen,
			       NPY_HEADER_MAX);
	buf = malloc(pre + hlen);
	if (!buf)
		return err_set(err, "%s: out of memory", name);
	memcpy(buf, fixed, pre);
	got = npy_src_fill(s, buf + pre, hlen, name, err);
	if (got < 0) {
		free(buf);
		return -1;
	}
	rc = npy_parse_header(buf, pre + (size_t)got, name, t, &used, err);
	free(buf);
	return rc ? -1 : 1;
}

int npy_src_data(npy_src *s, const char *name, tensor *t, char *err)
{
	int64_t nbytes = tensor_nbytes(t), got;
	struct buf b;
	size_t step;

	t->data = NULL;
	if (nbytes < 0 || (uint64_t)nbytes > SIZE_MAX / 4)
		return err_set(err, "%s: array too large", name);
	if (s->left >= 0 && nbytes > s->left)
		return err_set(err, "%s: truncated data: expected %" PRId64 " bytes, got %" PRId64
			       " (the file ends first)", name, nbytes, s->left);
	/* A size we could check is read in one go; otherwise the buffer doubles only as data
	 * really arrives, so a lying header cannot make us allocate what is not there. */
	step = s->left >= 0 || nbytes <= (int64_t)GROW_START ? (size_t)nbytes : GROW_START;
	buf_init(&b);
	for (;;) {
		size_t want = (size_t)nbytes - b.len < step ? (size_t)nbytes - b.len : step;
		if (buf_reserve(&b, want)) {
			size_t len = b.len;
			buf_free(&b);
			return err_set(err, "%s: out of memory (%zu bytes)", name, len + want);
		}
		got = npy_src_fill(s, b.data + b.len, want, name, err);
		if (got < 0) {
			buf_free(&b);
			return -1;
		}
		b.len += (size_t)got;
		if ((size_t)got < want || b.len == (size_t)nbytes)
			break;
		step = b.len;  /* as much again as has arrived */
	}
	if (b.len < (size_t)nbytes) {
		size_t len = b.len;
		buf_free(&b);
		return err_set(err, "%s: truncated data: expected %" PRId64 " bytes, got %zu", name,
			       nbytes, len);
	}
	/* buf doubles its room: give the slack back, a dataset can be gigabytes */
	if (b.cap > b.len + 4096) {
		void *p = realloc(b.data, b.len + 1);
		if (p)
			b.data = p;
	}
	t->data = b.data;
	return 1;
}

int npy_read_header(FILE *f, const char *name, tensor *t, char *err)
{
	npy_src s;

	npy_src_file(&s, f);
	return npy_src_header(&s, name, t, err);
}

int npy_read(FILE *f, const char *name, tensor *t, char *err)
{
	npy_src s;
	int rc;

	npy_src_file(&s, f);
	rc = npy_src_header(&s, name, t, err);
	if (rc <= 0)
		return rc;
	return npy_src_data(&s, name, t, err) < 0 ? -1 : 1;
}

/* ---- writing ---- */

int64_t npy_format_header(const tensor *t, unsigned char *buf, size_t size, const char *name,
			  char *err)
{
	char dict[TENSOR_MAXDIM * 22 + 128], descr[32], dims[TENSOR_MAXDIM * 22 + 8];
	size_t n = 0, dlen, hlen, pre, total;

	if (t->ndim < 0 || t->ndim > TENSOR_MAXDIM || tensor_nbytes(t) < 0)
		return err_set(err, "%s: cannot write an array with a bad shape or dtype", name);
	if (t->dtype == DT_U)
		snprintf(descr, sizeof descr, "<U%" PRId64, t->ulen);
	else
		snprintf(descr, sizeof descr, "%c%s", t->dtype == DT_U1 ? '|' : '<',
			 tensor_dtype_name(t->dtype));
	/* Python's repr of a tuple: "()", "(3,)", "(2, 3)". */
	n = (size_t)snprintf(dims, sizeof dims, "(");
	for (int i = 0; i < t->ndim; i++)
		n += (size_t)snprintf(dims + n, sizeof dims - n, "%s%" PRId64, i ? ", " : "", t->shape[i]);
	snprintf(dims + n, sizeof dims - n, "%s)", t->ndim == 1 ? "," : "");
	dlen = (size_t)snprintf(dict, sizeof dict,
				"{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, dims);
	/* numpy 1.24 leaves room for the first axis to grow to 21 digits in place. */
	if (t->ndim > 0) {
		int digits = snprintf(NULL, 0, "%" PRId64, t->shape[0]);
		for (int k = digits; k < 21; k++)
			dict[dlen++] = ' ';
	}
	/* Then spaces and '\n' up to a multiple of 64; a full 64 when already aligned. */
	hlen = dlen + 1;
	pre = 10;
	if (hlen + 64 - (pre + hlen) % 64 > 65535)
		pre = 12;
	hlen += 64 - (pre + hlen) % 64;
	total = pre + hlen;
	if (total > size)
		return err_set(err, "%s: header too long", name);
	memcpy(buf, MAGIC, 6);
	buf[6] = pre == 10 ? 1 : 2;
	buf[7] = 0;
	buf[8] = hlen & 0xff;
	buf[9] = hlen >> 8 & 0xff;
	if (pre == 12) {
		buf[10] = hlen >> 16 & 0xff;
		buf[11] = hlen >> 24 & 0xff;
	}
	memcpy(buf + pre, dict, dlen);
	memset(buf + pre + dlen, ' ', hlen - dlen - 1);
	buf[total - 1] = '\n';
	return (int64_t)total;
}

int npy_write_header(FILE *f, const char *name, const tensor *t, char *err)
{
	unsigned char buf[1024];
	int64_t n = npy_format_header(t, buf, sizeof buf, name, err);

	if (n < 0)
		return -1;
	if (fwrite(buf, 1, (size_t)n, f) != (size_t)n)
		return err_sys(err, "%s: write error", name);
	return 0;
}

int npy_write(FILE *f, const char *name, const tensor *t, char *err)
{
	int64_t nbytes = tensor_nbytes(t);

	if (npy_write_header(f, name, t, err))
		return -1;
	if (nbytes > 0 && fwrite(t->data, 1, (size_t)nbytes, f) != (size_t)nbytes)
		return err_sys(err, "%s: write error", name);
	return 0;
}
