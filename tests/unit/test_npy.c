/* Unit tests for tensor and npy: round trips of every dtype and rank, headers numpy writes,
 * and every malformed input we promise to refuse. With a directory argument, also leaves
 * stream.npy (+ manifest.txt) there for tests/formats.bats to check with numpy. */
#include "check.h"
#include "util/errmsg.h"
#include "array/npy.h"
#include "array/tensor.h"

#include <stdlib.h>
#include <string.h>

static const enum tensor_dtype DTYPES[] = { DT_U1, DT_I4, DT_I8, DT_F4, DT_F8, DT_U };
static const int64_t SHAPES[][6] = {
	/* ndim, dims... */
	{ 0 }, { 1, 0 }, { 1, 3 }, { 2, 2, 3 }, { 3, 2, 1, 3 }, { 4, 1, 2, 2, 2 }, { 5, 2, 1, 1, 2, 3 },
};
#define NSHAPES (int)(sizeof SHAPES / sizeof *SHAPES)
static const char *const WORDS[] = { "samoyed", "h\xc3\xa9llo", "", "\xe6\x97\xa5\xe6\x9c\xac", "shiba_inu" };

/* Element i of the test array: the formula tests/formats.bats repeats in Python. */
static void fill(tensor *t)
{
	int64_t n = tensor_numel(t);

	for (int64_t i = 0; i < n; i++) {
		switch (t->dtype) {
		case DT_U1:
			((uint8_t *)t->data)[i] = (uint8_t)((i * 7 + 3) % 256);
			break;
		case DT_I4:
			((int32_t *)t->data)[i] = (int32_t)(i * -123457 + 17);
			break;
		case DT_I8:
			((int64_t *)t->data)[i] = i * 3000000000LL - 7;
			break;
		case DT_F4:
			((float *)t->data)[i] = (float)(i - 3) * 0.25f;
			break;
		case DT_F8:
			((double *)t->data)[i] = (double)(i - 3) * 0.1;
			break;
		case DT_U:
			break;
		}
	}
}

static int make(tensor *t, enum tensor_dtype d, const int64_t *sh, char *err)
{
	if (d != DT_U) {
		if (tensor_alloc(t, d, (int)sh[0], sh + 1, 0, err))
			return -1;
		fill(t);
		return 0;
	}
	int64_t n = 1;
	const char *s[64];
	for (int i = 0; i < sh[0]; i++)
		n *= sh[i + 1];
	for (int64_t i = 0; i < n; i++)
		s[i] = WORDS[i % 5];
	if (tensor_from_strings(t, s, n, err))
		return -1;
	t->ndim = (int)sh[0];
	for (int i = 0; i < sh[0]; i++)
		t->shape[i] = sh[i + 1];
	return 0;
}

static int same(const tensor *a, const tensor *b)
{
	if (a->dtype != b->dtype || a->ndim != b->ndim || a->ulen != b->ulen)
		return 0;
	for (int i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return 0;
	return memcmp(a->data, b->data, (size_t)tensor_nbytes(a)) == 0;
}

static void test_roundtrip(const char *dir)
{
	char err[ERR_MAX], path[512];
	FILE *f = tmpfile(), *man = NULL, *out = NULL;
	int count = 0;

	CHECK(f != NULL, "tmpfile");
	if (!f)
		return;
	if (dir) {
		snprintf(path, sizeof path, "%s/stream.npy", dir);
		out = fopen(path, "wb");
		snprintf(path, sizeof path, "%s/manifest.txt", dir);
		man = fopen(path, "w");
		CHECK(out && man, "open files in %s", dir);
	}
	for (size_t d = 0; d < sizeof DTYPES / sizeof *DTYPES; d++)
		for (int s = 0; s < NSHAPES; s++) {
			tensor t;
			long before = ftell(f);
			CHECK(make(&t, DTYPES[d], SHAPES[s], err) == 0, "make: %s", err);
			CHECK(npy_write(f, "mem", &t, err) == 0, "write: %s", err);
			CHECK((ftell(f) - before - tensor_nbytes(&t)) % 64 == 0, "data starts on 64 bytes");
			if (out) {
				CHECK(npy_write(out, "stream.npy", &t, err) == 0, "write: %s", err);
				fprintf(man, "%s", t.dtype == DT_U ? "U" : tensor_dtype_name(t.dtype));
				for (int i = 0; i < t.ndim; i++)
					fprintf(man, "%c%lld", i ? ',' : ' ', (long long)t.shape[i]);
				fprintf(man, "%s\n", t.ndim ? "" : " -");
			}
			tensor_free(&t);
			count++;
		}
	if (out)
		CHECK(fclose(out) == 0 && fclose(man) == 0, "close");
	rewind(f);
	for (size_t d = 0; d < sizeof DTYPES / sizeof *DTYPES; d++)
		for (int s = 0; s < NSHAPES; s++) {
			tensor want, got;
			make(&want, DTYPES[d], SHAPES[s], err);
			int rc = npy_read(f, "mem", &got, err);
			CHECK(rc == 1, "read %zu/%d: %s", d, s, err);
			if (rc == 1) {
				CHECK(same(&want, &got), "round trip dtype %s ndim %d",
				      tensor_dtype_name(DTYPES[d]), (int)SHAPES[s][0]);
				tensor_free(&got);
			}
			tensor_free(&want);
			count--;
		}
	CHECK(count == 0, "read back all");
	tensor t;
	CHECK(npy_read(f, "mem", &t, err) == 0, "clean EOF returns 0");
	CHECK(npy_read(f, "mem", &t, err) == 0, "and again");
	fclose(f);
}

static void test_strings(void)
{
	char err[ERR_MAX], buf[64];
	tensor t;

	CHECK(tensor_from_strings(&t, WORDS, 5, err) == 0, "%s", err);
	CHECK(t.ulen == 9 && t.ndim == 1 && t.shape[0] == 5, "ulen %lld", (long long)t.ulen);
	for (int i = 0; i < 5; i++) {
		tensor_get_string(&t, i, buf, sizeof buf);
		CHECK(!strcmp(buf, WORDS[i]), "string %d: '%s'", i, buf);
	}
	tensor_get_string(&t, 0, buf, 4);
	CHECK(!strcmp(buf, "sam"), "truncated to the buffer: '%s'", buf);
	CHECK(tensor_get_string(&t, 5, buf, sizeof buf) == -1, "out of range");
	tensor_free(&t);
}

/* A .npy file from a header dict (padded as numpy would, version major) and body bytes. */
static size_t build(unsigned char *out, int major, const char *dict, const void *body, size_t blen)
{
	size_t pre = major == 1 ? 10 : 12, dlen = strlen(dict), hlen = dlen + 1;
	hlen += (64 - (pre + hlen) % 64) % 64;
	memcpy(out, "\x93NUMPY", 6);
	out[6] = (unsigned char)major;
	out[7] = 0;
	out[8] = hlen & 0xff;
	out[9] = hlen >> 8 & 0xff;
	if (pre == 12)
		out[10] = out[11] = 0;
	memcpy(out + pre, dict, dlen);
	memset(out + pre + dlen, ' ', hlen - dlen);
	out[pre + hlen - 1] = '\n';
	memcpy(out + pre + hlen, body, blen);
	return pre + hlen + blen;
}

/* Reads buf with npy_read through fmemopen (a stream of unknown size, like a pipe). */
static int read_mem(const unsigned char *buf, size_t len, tensor *t, char *err)
{
	FILE *f = fmemopen((void *)buf, len, "rb");
	int rc;

	if (!f)
		return err_set(err, "fmemopen");
	rc = npy_read(f, "x.npy", t, err);
	fclose(f);
	return rc;
}

static void test_headers(void)
{
	static const struct {
		int major;
		const char *dict;
		enum tensor_dtype dtype;
		int ndim;
		int64_t d0, ulen;
	} ok[] = {
		{ 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", DT_F4, 1, 3, 0 },
		{ 1, "{'shape': (3,), 'fortran_order': False, 'descr': '<i4'}", DT_I4, 1, 3, 0 },
		{ 1, "{\"descr\": \"<i8\", \"fortran_order\": False, \"shape\": (3, )}", DT_I8, 1, 3, 0 },
		{ 2, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,1), }", DT_U1, 2, 3, 0 },
		{ 3, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", DT_F8, 0, 0, 0 },
		{ 1, "{'descr': '<U7', 'fortran_order': False, 'shape': (0,), }", DT_U, 1, 0, 7 },
		{ 1, "{'descr': '<u1', 'fortran_order': False, 'shape': (3,), }", DT_U1, 1, 3, 0 },
		{ 1, "{'descr': '|i4', 'fortran_order': False, 'shape': (3,), }", DT_I4, 1, 3, 0 },
		{ 1, " { 'descr' : '=f4' , 'fortran_order' : False , 'shape' : ( 3 , ) , } ", DT_F4, 1, 3, 0 },
	};
	unsigned char file[512], body[64] = { 0 };
	char err[ERR_MAX];
	tensor t;

	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		size_t n = build(file, ok[i].major, ok[i].dict, body, ok[i].dtype == DT_U ? 0 : 24);
		int rc = read_mem(file, n, &t, err);
		CHECK(rc == 1, "header %zu: %s", i, err);
		if (rc != 1)
			continue;
		CHECK(t.dtype == ok[i].dtype && t.ndim == ok[i].ndim && t.ulen == ok[i].ulen &&
			      (t.ndim == 0 || t.shape[0] == ok[i].d0),
		      "header %zu parsed as dtype %d ndim %d", i, t.dtype, t.ndim);
		tensor_free(&t);
	}
}

static void expect_error(const unsigned char *buf, size_t len, const char *what, const char *msg)
{
	char err[ERR_MAX] = "";
	tensor t;
	int rc = read_mem(buf, len, &t, err);

	CHECK(rc == -1, "%s: refused (rc %d)", what, rc);
	if (rc == 1)
		tensor_free(&t);
	CHECK(strstr(err, "x.npy: ") == err, "%s: message names the file: %s", what, err);
	CHECK(strstr(err, msg) != NULL, "%s: message says '%s': %s", what, msg, err);
	CHECK(strchr(err, '\n') == NULL, "%s: one line", what);
}

static void test_errors(void)
{
	static const struct {
		const char *dict, *msg;
	} bad[] = {
		{ "['descr', '<f4']", "not a dict" },
		{ "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", "unknown dtype '<c8'" },
		{ "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", "unknown dtype '|b1'" },
		{ "{'descr': '|i1', 'fortran_order': False, 'shape': (3,), }", "unknown dtype '|i1'" },
		{ "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", "unknown dtype" },
		{ "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", "big-endian dtype '>f4'" },
		{ "{'descr': '>U3', 'fortran_order': False, 'shape': (3,), }", "big-endian" },
		{ "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", "fortran_order True" },
		{ "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", "overflows 64 bits" },
		{ "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }", "overflows 64 bits" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", "negative dimension" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", "more than 8 dimensions" },
		{ "{'descr': '<f4', 'shape': (3,), }", "lacks 'fortran_order'" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", "unexpected key 'x'" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } junk", "junk after" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", "expected 4000000000 bytes, got 12" },
	};
	unsigned char file[512], body[12] = { 0 };

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		expect_error(file, build(file, 1, bad[i].dict, body, sizeof body), bad[i].dict, bad[i].msg);

	size_t n = build(file, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", body, 12);
	expect_error(file, n - 1, "body one byte short", "expected 12 bytes, got 11");
	expect_error(file, 30, "header cut", "truncated header");
	expect_error(file, 5, "magic cut", "truncated header");
	file[1] = 'X';
	expect_error(file, n, "bad magic", "bad magic");
	file[1] = 'N';
	file[6] = 4;
	expect_error(file, n, "version 4", "unsupported .npy version 4.0");
	file[6] = 1;

	/* A regular file: the claimed size is checked against what is left before allocating. */
	char err[ERR_MAX];
	tensor t;
	FILE *f = tmpfile();
	n = build(file, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", body, 12);
	fwrite(file, 1, n, f);
	rewind(f);
	CHECK(npy_read(f, "big.npy", &t, err) == -1 && strstr(err, "big.npy: truncated data: expected 8000000000000 bytes, got 12"),
	      "huge claim in a file: %s", err);
	fclose(f);
}

/* A body larger than the first buffer, through a stream of unknown size: the growth path. */
static void test_growth(void)
{
	char err[ERR_MAX];
	tensor t, back;
	int64_t shape[1] = { 3 << 20 };
	size_t size = 0;
	char *mem = NULL;
	FILE *f = open_memstream(&mem, &size);

	CHECK(tensor_alloc(&t, DT_F4, 1, shape, 0, err) == 0, "%s", err);
	for (int64_t i = 0; i < shape[0]; i++)
		((float *)t.data)[i] = (float)i;
	CHECK(npy_write(f, "m", &t, err) == 0 && npy_write(f, "m", &t, err) == 0, "%s", err);
	fclose(f);
	f = fmemopen(mem, size, "rb");
	for (int k = 0; k < 2; k++) {
		CHECK(npy_read(f, "m", &back, err) == 1, "%s", err);
		CHECK(same(&t, &back), "12 MiB array through the growing buffer");
		tensor_free(&back);
	}
	CHECK(npy_read(f, "m", &back, err) == 0, "EOF");
	fclose(f);
	CHECK(read_mem((unsigned char *)mem, size - 100, &back, err) == 1, "first of two");
	tensor_free(&back);
	free(mem);
	tensor_free(&t);
}

static void test_numpy_bytes(void)
{
	/* np.save(f, np.arange(3, dtype='<f4')) in numpy 1.24, header bytes. */
	static const char want[] = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
	unsigned char buf[1024];
	char err[ERR_MAX];
	tensor t;
	int64_t shape[1] = { 3 };

	tensor_alloc(&t, DT_F4, 1, shape, 0, err);
	CHECK(npy_format_header(&t, buf, sizeof buf, "m", err) == 128, "header is 128 bytes");
	CHECK(memcmp(buf, want, sizeof want - 1) == 0, "numpy's header text");
	CHECK(buf[127] == '\n' && buf[126] == ' ', "padded with spaces and a newline");
	tensor_free(&t);
}

/* tensor_elem_f4 reads every numeric dtype at any alignment (npy data may be unaligned). */
static void test_elem_f4(void)
{
	unsigned char buf[1 + 2 * 8];
	int32_t i4 = -7;
	int64_t i8 = 1LL << 40;
	float f4 = 2.5f;
	double f8 = -0.125;

	buf[0] = 0xAA;
	memcpy(buf + 1 + 4, &i4, 4);
	CHECK(tensor_elem_f4(buf + 1, DT_I4, 1) == -7.0f, "i4");
	memcpy(buf + 1 + 8, &i8, 8);
	CHECK(tensor_elem_f4(buf + 1, DT_I8, 1) == 1099511627776.0f, "i8");
	memcpy(buf + 1 + 4, &f4, 4);
	CHECK(tensor_elem_f4(buf + 1, DT_F4, 1) == 2.5f, "f4");
	memcpy(buf + 1 + 8, &f8, 8);
	CHECK(tensor_elem_f4(buf + 1, DT_F8, 1) == -0.125f, "f8");
	buf[3] = 200;
	CHECK(tensor_elem_f4(buf + 1, DT_U1, 2) == 200.0f, "u1");
	CHECK(tensor_elem_f4(buf + 1, DT_U, 0) == 0.0f, "U has no number");
}

int main(int argc, char **argv)
{
	test_elem_f4();
	test_roundtrip(argc > 1 ? argv[1] : NULL);
	test_strings();
	test_headers();
	test_errors();
	test_growth();
	test_numpy_bytes();
	return check_done("test_npy");
}
