/* Unit tests for npz: round trips stored and deflated, through a file and a stream,
 * byte-identical output for the same arrays, zipw's zip64 and aligned records, and the
 * malformed archives we refuse. With a directory argument, also leaves model.npz,
 * model_deflate.npz, model_zip64.npz and model_aligned.npz there for tests/formats.bats
 * to check with numpy. */
#include "check.h"
#include "util/errmsg.h"
#include "array/npy.h"
#include "array/npz.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/petcnn-npz-XXXXXX";

/* The arrays tests/formats.bats expects, by the same formulas. */
static void model(npz *z)
{
	char err[ERR_MAX];
	tensor t;
	int64_t w[4] = { 3, 3, 3, 32 }, b[1] = { 32 }, big[2] = { 300, 1000 };
	static const char *const classes[] = { "samoyed", "shiba_inu" };

	npz_init(z);
	tensor_alloc(&t, DT_F4, 4, w, 0, err);
	for (int i = 0; i < 864; i++)
		((float *)t.data)[i] = (float)(i % 17 - 8) / 16.0f;
	CHECK(npz_add_move(z, "conv1_1/weights1_1", &t, err) == 0, "%s", err);
	tensor_alloc(&t, DT_F4, 1, b, 0, err);
	for (int i = 0; i < 32; i++)
		((float *)t.data)[i] = 0.5f;
	CHECK(npz_add(z, "conv1_1/biases1_1", &t, err) == 0, "%s", err);
	tensor_free(&t);
	tensor_alloc(&t, DT_I8, 0, NULL, 0, err);
	*(int64_t *)t.data = 1234567890123LL;
	CHECK(npz_add_move(z, "step", &t, err) == 0, "%s", err);
	tensor_from_strings(&t, classes, 2, err);
	CHECK(npz_add_move(z, "classes", &t, err) == 0, "%s", err);
	tensor_alloc(&t, DT_F8, 2, big, 0, err);
	for (int i = 0; i < 300000; i++)
		((double *)t.data)[i] = i * 0.5;
	CHECK(npz_add_move(z, "big", &t, err) == 0, "%s", err);
	tensor_alloc(&t, DT_U1, 2, big, 0, err);
	CHECK(npz_add_move(z, "pool/zeros_u1", &t, err) == 0, "%s", err);
}

static int same(const tensor *a, const tensor *b)
{
	if (!a || !b || a->dtype != b->dtype || a->ndim != b->ndim || a->ulen != b->ulen)
		return 0;
	for (int i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return 0;
	return memcmp(a->data, b->data, (size_t)tensor_nbytes(a)) == 0;
}

static void check_same(const npz *a, const npz *b, const char *what)
{
	CHECK(a->n == b->n, "%s: %d vs %d arrays", what, a->n, b->n);
	for (int i = 0; i < a->n; i++)
		CHECK(same(&a->v[i].t, npz_get(b, a->v[i].name)), "%s: %s", what, a->v[i].name);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0;

	*len = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
		}
		size_t n = fread(buf + *len, 1, cap - *len, f);
		if (!n)
			break;
		*len += n;
	}
	fclose(f);
	return buf;
}

static void test_roundtrip(const char *outdir)
{
	char err[ERR_MAX], path[512], again[512];
	npz z, back;
	size_t la, lb;

	model(&z);
	for (int compress = 0; compress < 2; compress++) {
		snprintf(path, sizeof path, "%s/%s.npz", outdir ? outdir : dir, compress ? "model_deflate" : "model");
		CHECK(npz_write(&z, path, compress, err) == 0, "write: %s", err);
		npz_init(&back);
		CHECK(npz_read(&back, path, err) == 0, "read: %s", err);
		check_same(&z, &back, compress ? "deflate" : "store");
		CHECK(back.n > 0 && !strcmp(back.v[0].name, "conv1_1/weights1_1"), "member order kept");
		npz_free(&back);

		/* The same arrays give the same bytes, whatever the time zone. */
		snprintf(again, sizeof again, "%s/again.npz", dir);
		setenv("TZ", "America/Los_Angeles", 1);
		tzset();
		CHECK(npz_write(&z, again, compress, err) == 0, "write again: %s", err);
		unsetenv("TZ");
		tzset();
		char *a = slurp(path, &la), *b = slurp(again, &lb);
		CHECK(a && b && la == lb && !memcmp(a, b, la), "byte-identical (%zu vs %zu bytes)", la, lb);
		/* Streamed (not seekable) reading, as from stdin. */
		FILE *f = fmemopen(a, la, "rb");
		npy_src s;
		npy_src_file(&s, f);
		npz_init(&back);
		CHECK(npz_read_src(&back, &s, "<pipe>", err) == 0, "streamed read: %s", err);
		check_same(&z, &back, "streamed");
		npz_free(&back);
		fclose(f);
		free(a);
		free(b);
	}
	npz_free(&z);
}

static uint32_t le(const unsigned char *p, int n)
{
	uint32_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* zipw's records: zip64 everywhere when asked (so the 4 GiB paths run on small files),
 * and in an archive of 64 MiB or more each large member's data at a 4096-byte file offset
 * (a local header's padding), read back whole through a file and a stream. With outdir,
 * leaves model_zip64.npz and model_aligned.npz there for tests/formats.bats. */
static void test_zipw(const char *outdir)
{
	char err[ERR_MAX], path[512];
	npz z, back;
	tensor t;
	int64_t shape[1] = { ((int64_t)17 << 20) + 3 };  /* not whole pages: a tail goes copied */
	size_t len;

	model(&z);
	snprintf(path, sizeof path, "%s/model_zip64.npz", outdir ? outdir : dir);
	setenv("PETCNN_ZIP64", "1", 1);
	CHECK(npz_write(&z, path, 0, err) == 0, "zip64: %s", err);
	unsetenv("PETCNN_ZIP64");
	char *a = slurp(path, &len);
	CHECK(a && len > 98 && le((unsigned char *)a + 4, 2) == 45 && le((unsigned char *)a + 18, 4) == 0xffffffffu,
	      "zip64: version 4.5, sizes in the extra field");
	CHECK(a && le((unsigned char *)a + len - 22 - 20, 4) == 0x07064b50, "zip64: its end locator");
	npz_init(&back);
	CHECK(npz_read(&back, path, err) == 0, "zip64 read: %s", err);
	check_same(&z, &back, "zip64");
	npz_free(&back);
	free(a);

	/* 68 MB of float32 past the rest: large enough to be written around the page cache */
	CHECK(tensor_alloc(&t, DT_F4, 1, shape, 0, err) == 0, "%s", err);
	/* page-aligned, as a checkpoint writer's staging copy is: written uncopied */
	free(t.data);
	CHECK((t.data = aligned_alloc(4096, ((size_t)shape[0] * 4 + 4095) / 4096 * 4096)) != NULL, "out of memory");
	for (int64_t i = 0; i < shape[0]; i++)
		((float *)t.data)[i] = (float)(i % 1001);
	CHECK(npz_add_move(&z, "huge", &t, err) == 0, "%s", err);
	snprintf(path, sizeof path, "%s/model_aligned.npz", outdir ? outdir : dir);
	CHECK(npz_write(&z, path, 0, err) == 0, "aligned: %s", err);
	unsigned char *b = (unsigned char *)slurp(path, &len);
	int aligned = 0, small = 0;
	for (size_t off = 0; b && off + 30 <= len && le(b + off, 4) == 0x04034b50;) {
		size_t nl = le(b + off + 26, 2), xl = le(b + off + 28, 2), size = le(b + off + 22, 4);
		size_t body = off + 30 + nl + xl, hl = le(b + body + 8, 2), data = body + 10 + hl;

		if (size - 10 - hl >= 65536)
			aligned += data % 4096 == 0;
		else
			small += xl == 0;
		off = body + size;
	}
	CHECK(aligned == 3 && small == 4, "aligned: the 3 large members' data at 4096 bytes, the 4 small "
	      "ones unpadded (%d, %d)", aligned, small);
	npz_init(&back);
	CHECK(npz_read(&back, path, err) == 0, "aligned read: %s", err);
	check_same(&z, &back, "aligned");
	npz_free(&back);
	FILE *f = b ? fmemopen(b, len, "rb") : NULL;
	npy_src s;
	npy_src_file(&s, f);
	npz_init(&back);
	CHECK(f && npz_read_src(&back, &s, "<pipe>", err) == 0, "aligned, streamed: %s", err);
	check_same(&z, &back, "aligned, streamed");
	npz_free(&back);
	if (f)
		fclose(f);
	free(b);
	npz_free(&z);
}

/* A zip made directly with libarchive, members given as name/bytes pairs. */
static void raw_zip(const char *path, int n, const char *const *names, const char *const *data,
		    const size_t *lens, int sized)
{
	struct archive *a = archive_write_new();

	archive_write_set_format_zip(a);
	/* Unsized members are deflated with the sizes after the data, where a streaming
	 * reader cannot see them in advance. */
	archive_write_set_options(a, sized ? "zip:compression=store" : "zip:compression=deflate");
	archive_write_open_filename(a, path);
	for (int i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, names[i]);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		if (sized)
			archive_entry_set_size(e, (la_int64_t)lens[i]);
		archive_write_header(a, e);
		archive_write_data(a, data[i], lens[i]);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static size_t npy_bytes(char *out, const char *dict, size_t body)
{
	size_t hlen = strlen(dict) + 1;

	hlen += (64 - (10 + hlen) % 64) % 64;
	memcpy(out, "\x93NUMPY\x01\x00", 8);
	out[8] = (char)(hlen & 0xff);
	out[9] = (char)(hlen >> 8);
	memset(out + 10, ' ', hlen);
	memcpy(out + 10, dict, strlen(dict));
	out[10 + hlen - 1] = '\n';
	memset(out + 10 + hlen, 0, body);
	return 10 + hlen + body;
}

static void expect_bad(int n, const char *const *names, const char *const *data, const size_t *lens,
		       const char *what, const char *msg)
{
	char err[ERR_MAX] = "", path[512];
	npz z;

	snprintf(path, sizeof path, "%s/bad.npz", dir);
	raw_zip(path, n, names, data, lens, 1);
	npz_init(&z);
	CHECK(npz_read(&z, path, err) == -1, "%s: refused", what);
	CHECK(strstr(err, path) == err, "%s: names the file: %s", what, err);
	CHECK(strstr(err, msg) != NULL, "%s: says '%s': %s", what, msg, err);
	npz_free(&z);
}

static void test_errors(void)
{
	char good[256], huge[256], longer[256];
	size_t lg = npy_bytes(good, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 12);
	size_t lh = npy_bytes(huge, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", 12);
	size_t ll = npy_bytes(longer, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 20);
	const char *names[] = { "a.npy", "a.npy" }, *data[] = { good, good };
	size_t lens[] = { lg, lg };

	expect_bad(2, names, data, lens, "duplicate", "member 'a.npy': duplicate member");
	names[1] = "README.txt";
	expect_bad(2, names, data, lens, "not npy", "member 'README.txt': not a .npy member");
	names[1] = "b.npy";
	data[1] = "hello, world";
	lens[1] = 12;
	expect_bad(2, names, data, lens, "bad npy", "member 'b.npy': bad magic");
	data[1] = huge;
	lens[1] = lh;
	expect_bad(2, names, data, lens, "huge claim", "member 'b.npy': the zip claims 140 bytes, its .npy array takes 8000000000128");
	data[1] = longer;
	lens[1] = ll;
	expect_bad(2, names, data, lens, "zip size", "member 'b.npy': the zip claims 148 bytes, its .npy array takes 140");

	/* Streamed, with no size ahead of the data: the reader must trust nothing and find out. */
	static const struct {
		const char *what, *msg;
	} streamed[] = {
		{ "huge claim", "<pipe>: member 'b.npy': truncated data: expected 8000000000000 bytes, got 12" },
		{ "trailing", "<pipe>: member 'b.npy': trailing bytes after the array" },
	};
	for (int k = 0; k < 2; k++) {
		char err[ERR_MAX] = "", path[512];
		size_t len;
		npz z;
		data[1] = k ? longer : huge;
		lens[1] = k ? ll : lh;
		snprintf(path, sizeof path, "%s/unsized.npz", dir);
		raw_zip(path, 2, names, data, lens, 0);
		char *mem = slurp(path, &len);
		FILE *f = fmemopen(mem, len, "rb");
		npy_src s;
		npy_src_file(&s, f);
		npz_init(&z);
		CHECK(npz_read_src(&z, &s, "<pipe>", err) == -1, "%s streamed: refused", streamed[k].what);
		CHECK(!strcmp(err, streamed[k].msg), "%s streamed: '%s'", streamed[k].what, err);
		CHECK(z.n == 1 && npz_get(&z, "a"), "%s streamed: the good member kept", streamed[k].what);
		npz_free(&z);
		fclose(f);
		free(mem);
	}

	char err[ERR_MAX], path[512];
	npz z;
	snprintf(path, sizeof path, "%s/none.npz", dir);
	npz_init(&z);
	CHECK(npz_read(&z, path, err) == -1 && strstr(err, path), "missing file: %s", err);
	snprintf(path, sizeof path, "%s/notzip.npz", dir);
	FILE *f = fopen(path, "wb");
	fputs("this is not a zip file at all\n", f);
	fclose(f);
	CHECK(npz_read(&z, path, err) == -1 && strstr(err, path), "not a zip: %s", err);
	npz_free(&z);
	snprintf(path, sizeof path, "%s/no/such/dir/x.npz", dir);
	CHECK(npz_write(&z, path, 0, err) == -1 && strstr(err, "no/such/dir/x.npz"), "unwritable: %s", err);
}

/* a want that takes every member but refuses a "b" that is not float32 */
static int want_checked(void *ctx, const char *name, const char *label, const tensor *hdr, char *err)
{
	int *asked = ctx;

	(*asked)++;
	if (!strcmp(name, "b") && hdr->dtype != DT_F4)
		return err_set(err, "%s: not float32", label);
	return 1;
}

static void test_want(void)
{
	char err[ERR_MAX], path[512];
	const char *only[] = { "step", "conv1_1/", NULL };
	npz z, got;
	int asked = 0;

	model(&z);
	snprintf(path, sizeof path, "%s/want.npz", dir);
	for (int compress = 0; compress <= 1; compress++) {
		CHECK(npz_write(&z, path, compress, err) == 0, "%s", err);
		for (int streamed = 0; streamed <= 1; streamed++) {
			FILE *f = streamed ? fopen(path, "rb") : NULL;
			npy_src s;
			if (f)
				npy_src_file(&s, f);
			npz_init(&got);
			CHECK(npz_read_want(&got, path, f ? &s : NULL, npz_want_names, only, err) == 0, "%s", err);
			CHECK(got.n == 3 && npz_get(&got, "step") && npz_get(&got, "conv1_1/weights1_1") &&
				      npz_get(&got, "conv1_1/biases1_1") && !npz_get(&got, "big"),
			      "compress %d, streamed %d: only the members asked for (%d)", compress, streamed, got.n);
			CHECK(same(npz_get(&got, "conv1_1/weights1_1"), npz_get(&z, "conv1_1/weights1_1")),
			      "and those whole");
			npz_free(&got);
			if (f)
				fclose(f);
		}
	}
	npz_init(&got);
	CHECK(npz_read_want(&got, path, NULL, want_checked, &asked, err) == 0 && got.n == z.n && asked == z.n,
	      "a want asked once a member, all taken: %s", err);
	npz_free(&got);
	tensor bad;
	int64_t one = 1;
	tensor_alloc(&bad, DT_I4, 1, &one, 0, err);
	CHECK(npz_add_move(&z, "b", &bad, err) == 0, "%s", err);
	CHECK(npz_write(&z, path, 1, err) == 0, "%s", err);
	CHECK(npz_read_want(&got, path, NULL, want_checked, &asked, err) == -1 && strstr(err, "member 'b.npy': not float32"),
	      "a want's refusal stops the read: %s", err);
	npz_free(&got);
	npz_free(&z);
}

/* test_npz --only FILE NAME...: reads FILE ("-": stdin) keeping the members named (a name
 * ending in '/' keeps those under it), prints "name dtype numel" for each, for
 * tests/faults.bats to measure the memory a skipped member costs. */
static int only(int argc, char **argv)
{
	char err[ERR_MAX];
	npz z;

	npz_init(&z);
	if (npz_read_want(&z, argv[2], NULL, npz_want_names, argv + 3, err)) {
		fprintf(stderr, "test_npz: %s\n", err);
		npz_free(&z);
		return 1;
	}
	for (int i = 0; i < z.n; i++)
		printf("%s %s %lld\n", z.v[i].name, tensor_dtype_name(z.v[i].t.dtype),
		       (long long)tensor_numel(&z.v[i].t));
	npz_free(&z);
	(void)argc;
	return 0;
}

int main(int argc, char **argv)
{
	char cmd[600];

	if (argc >= 3 && !strcmp(argv[1], "--only"))
		return only(argc, argv);

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_roundtrip(argc > 1 ? argv[1] : NULL);
	test_zipw(argc > 1 ? argv[1] : NULL);
	test_errors();
	test_want();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK(system(cmd) == 0, "cleanup");
	return check_done("test_npz");
}
