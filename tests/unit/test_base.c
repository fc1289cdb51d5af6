/* Unit tests for the program-support modules: rng, cli number parsing, outfile, hash, the
 * worker pool, faulting memory in. */
#include "check.h"
#include "util/cli.h"
#include "util/errmsg.h"
#include "util/fpmode.h"
#include "util/hash.h"
#include "util/mem.h"
#include "util/outfile.h"
#include "util/par.h"
#include "util/rng.h"

#include <cblas.h>
#include <float.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void test_rng(void)
{
	rng a, b;
	uint64_t first;
	double sum = 0, sq = 0;
	int64_t idx[100], seen[100] = { 0 };
	int n = 200000, beyond = 0;

	/* Reference value: xoshiro256** from splitmix64(0) state, first output. */
	rng_seed(&a, 0);
	rng_seed(&b, 0);
	first = rng_u64(&a);
	CHECK(first == rng_u64(&b), "same seed, same stream");
	CHECK(first == 0x99ec5f36cb75f2b4ULL, "known first output %llx", (unsigned long long)first);
	rng_stream(&a, 1, 1);
	rng_stream(&b, 1, 2);
	CHECK(rng_u64(&a) != rng_u64(&b), "streams differ");
	for (int i = 0; i < n; i++) {
		double x = rng_normal(&a);
		sum += x;
		sq += x * x;
	}
	CHECK_NEAR(sum / n, 0.0, 0.01, "normal mean");
	CHECK_NEAR(sq / n, 1.0, 0.02, "normal variance");
	for (int i = 0; i < n; i++)
		beyond += fabs(rng_trunc_normal(&a, 0.1)) > 0.2;
	CHECK(beyond == 0, "truncated normal stays within 2 stddev (%d beyond)", beyond);
	for (int i = 0; i < 1000; i++) {
		uint64_t v = rng_below(&a, 7);
		CHECK(v < 7, "below 7: %llu", (unsigned long long)v);
		double u = rng_uniform(&a);
		float f = rng_uniformf(&a);
		CHECK(u >= 0 && u < 1 && f >= 0 && f < 1, "uniform in [0,1)");
	}
	for (int i = 0; i < 100; i++)
		idx[i] = i;
	rng_shuffle_i64(&a, idx, 100);
	for (int i = 0; i < 100; i++)
		seen[idx[i]]++;
	for (int i = 0; i < 100; i++)
		CHECK(seen[i] == 1, "shuffle is a permutation (%d seen %lld times)", i, (long long)seen[i]);
}

static void test_parse(void)
{
	int v = 0;
	double d = 0;

	CHECK(cli_parse_int("42", 0, 100, &v) == 0 && v == 42, "42");
	CHECK(cli_parse_int("101", 0, 100, &v) == -1, "out of range");
	CHECK(cli_parse_int("4x", 0, 100, &v) == -1, "trailing junk");
	CHECK(cli_parse_int("", 0, 100, &v) == -1, "empty");
	CHECK(cli_parse_int("99999999999999999999", 0, 100, &v) == -1, "overflow");
	CHECK(cli_parse_double("0.15", 0, 1, &d) == 0 && d == 0.15, "0.15");
	CHECK(cli_parse_double("nan", 0, 1, &d) == -1, "nan refused");
	CHECK(cli_parse_double("1.5", 0, 1, &d) == -1, "double range");
}

static void test_outfile(void)
{
	char dir[] = "/tmp/petcnn-outfile-XXXXXX", path[256], err[ERR_MAX];
	outfile o;
	FILE *f;
	char buf[16] = { 0 };

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof path, "%s/out.bin", dir);
	CHECK(outfile_open(&o, path, err) == 0, "open: %s", err);
	fputs("hello", o.fp);
	CHECK(access(path, F_OK) != 0, "target absent before commit");
	CHECK(outfile_commit(&o, err) == 0, "commit: %s", err);
	f = fopen(path, "rb");
	CHECK(f && fread(buf, 1, sizeof buf, f) == 5 && !strcmp(buf, "hello"), "content");
	if (f)
		fclose(f);
	/* An aborted rewrite leaves the old file as it was. */
	CHECK(outfile_open(&o, path, err) == 0, "reopen: %s", err);
	fputs("partial", o.fp);
	outfile_abort(&o);
	f = fopen(path, "rb");
	memset(buf, 0, sizeof buf);
	CHECK(f && fread(buf, 1, sizeof buf, f) == 5 && !strcmp(buf, "hello"), "old content kept");
	if (f)
		fclose(f);
	snprintf(path, sizeof path, "%s/no/such/dir/x", dir);
	CHECK(outfile_open(&o, path, err) == -1 && strstr(err, "no/such/dir/x"), "error names the file: %s", err);
	snprintf(path, sizeof path, "%s/a/b/c", dir);
	CHECK(outfile_mkdirs(path, err) == 0 && access(path, W_OK) == 0, "mkdirs: %s", err);
	CHECK(outfile_mkdirs(path, err) == 0, "mkdirs on existing: %s", err);
	snprintf(path, sizeof path, "%s/out.bin/x", dir);
	CHECK(outfile_mkdirs(path, err) == -1 && strstr(err, "out.bin"), "mkdirs through a file: %s", err);
	snprintf(path, sizeof path, "rm -r %s", dir);
	CHECK(system(path) == 0, "cleanup");
}

/* n bytes of data through outfile_direct to path, in pieces of odd sizes that straddle
 * the staging buffer and end in a part that is no whole block; head: bytes written
 * through stdio first (the file offset then fits no block: the first direct write is
 * refused and the rest goes buffered). Then the file must hold head and data. */
static void direct_case(const char *path, const char *head, const unsigned char *data, size_t n,
			unsigned char *back)
{
	size_t piece = 1000003, h = strlen(head), got = 0;
	char err[ERR_MAX];
	outfile o;
	FILE *f;

	CHECK(outfile_open(&o, path, err) == 0, "open: %s", err);
	fputs(head, o.fp);
	outfile_direct(&o);
	for (size_t off = 0; off < n; off += piece)
		CHECK(outfile_write(&o, data + off, n - off < piece ? n - off : piece, err) == 0,
		      "write: %s", err);
	CHECK(outfile_commit(&o, err) == 0, "commit: %s", err);
	f = fopen(path, "rb");
	CHECK(f && fread(back, 1, h, f) == h && !memcmp(back, head, h), "stdio's head first");
	if (f) {
		got = fread(back, 1, n + 1, f);
		fclose(f);
	}
	CHECK(got == n && !memcmp(back, data, n), "head '%s': %zu of %zu bytes, the same", head, got, n);
}

static void test_outfile_direct(void)
{
	char dir[] = "/tmp/petcnn-outfile-XXXXXX", path[256], err[ERR_MAX];
	size_t n = 2 * OUTFILE_DIRECT_BUF + 12345;
	unsigned char *data = malloc(n), *back = malloc(n + 1);
	outfile o;

	CHECK(data && back && mkdtemp(dir) != NULL, "setup");
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	snprintf(path, sizeof path, "%s/big.bin", dir);
	direct_case(path, "", data, n, back);
	direct_case(path, "head", data, n, back);
	/* A stream cannot be written direct: outfile_direct leaves it buffered. */
	CHECK(outfile_open(&o, "-", err) == 0, "stdout: %s", err);
	outfile_direct(&o);
	CHECK(o.dbuf == NULL, "standard output stays buffered");
	outfile_abort(&o);
	snprintf(path, sizeof path, "rm -r %s", dir);
	CHECK(system(path) == 0, "cleanup");
	free(data);
	free(back);
}

/* Count of entries in dir other than . and .. */
static int entries(const char *dir)
{
	char cmd[512];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
	if ((p = popen(cmd, "r"))) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

static void test_outfile_targets(void)
{
	char dir[] = "/tmp/petcnn-outfile-XXXXXX", path[600], link[300], err[ERR_MAX], got[16] = { 0 };
	struct stat st;
	outfile o;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	/* Nothing is visible in the directory before commit (the data is in an anonymous file
	 * or a hidden temporary; either way the target does not exist yet). */
	snprintf(path, sizeof path, "%s/real", dir);
	CHECK(outfile_open(&o, path, err) == 0, "open: %s", err);
	fputs("one", o.fp);
	CHECK(access(path, F_OK) != 0, "no target before commit");
	CHECK(outfile_commit(&o, err) == 0 && entries(dir) == 1, "commit leaves just the target: %s", err);

	/* A symlink to a regular file: the file is replaced, the link stays a link. */
	snprintf(link, sizeof link, "%s/link", dir);
	CHECK(symlink("real", link) == 0, "symlink");
	CHECK(outfile_open(&o, link, err) == 0, "open through a link: %s", err);
	fputs("two", o.fp);
	CHECK(outfile_commit(&o, err) == 0, "commit through a link: %s", err);
	CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link is still a link");
	f = fopen(path, "rb");
	CHECK(f && fread(got, 1, sizeof got, f) == 3 && !strcmp(got, "two"), "its target was replaced");
	if (f)
		fclose(f);

	/* A device is written in place, never replaced by a file. Our own nodes when we may
	 * make them (root), so a broken outfile replaces a test file, not the system's. */
	{
		char null[400], full[400];

		snprintf(null, sizeof null, "%s/null", dir);
		snprintf(full, sizeof full, "%s/full", dir);
		if (mknod(null, S_IFCHR | 0666, makedev(1, 3)) || mknod(full, S_IFCHR | 0666, makedev(1, 7))) {
			snprintf(null, sizeof null, "/dev/null");
			snprintf(full, sizeof full, "/dev/full");
		}
		CHECK(outfile_open(&o, null, err) == 0, "open %s: %s", null, err);
		fputs("x", o.fp);
		CHECK(outfile_commit(&o, err) == 0, "commit %s: %s", null, err);
		CHECK(stat(null, &st) == 0 && S_ISCHR(st.st_mode), "%s is still a device", null);
		CHECK(outfile_open(&o, full, err) == 0, "open %s: %s", full, err);
		fputs("x", o.fp);
		CHECK(outfile_commit(&o, err) == -1 && strstr(err, "full: write error"), "full device: %s", err);
		CHECK(stat(full, &st) == 0 && S_ISCHR(st.st_mode), "%s is still a device", full);
	}
	CHECK(outfile_open(&o, dir, err) == -1 && strstr(err, "is a directory"), "a directory: %s", err);

	/* A 250-byte name (NAME_MAX is 255) still gets its temporary. */
	{
		int n = snprintf(path, sizeof path, "%s/", dir);
		memset(path + n, 'n', 250);
		path[n + 250] = 0;
	}
	CHECK(outfile_open(&o, path, err) == 0, "open a 250-byte name: %s", err);
	fputs("long", o.fp);
	CHECK(outfile_commit(&o, err) == 0 && access(path, F_OK) == 0, "commit a 250-byte name: %s", err);
	snprintf(path, sizeof path, "rm -r %s", dir);
	CHECK(system(path) == 0, "cleanup");
}

static void test_hash(void)
{
	char hex[HASH_HEX];

	/* FIPS 180-2 test vectors. */
	hash_buf_sha256("abc", 3, hex);
	CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256(abc) %s", hex);
	hash_buf_sha256("", 0, hex);
	CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256() %s", hex);
}

typedef struct {
	_Atomic int calls[PAR_MAX_THREADS + 1];
	_Atomic int bad_n;
	int want_n;
	int nest;               /* worker 1 calls par_run(3) itself */
	_Atomic int nested;
} par_probe;

static void probe(void *ctx, int k, int n)
{
	par_probe *p = ctx;

	if (n != p->want_n || k < 0 || k >= n)
		atomic_fetch_add(&p->bad_n, 1);
	else
		atomic_fetch_add(&p->calls[k], 1);
	if (p->nest && k == 1) {
		par_probe q = { .want_n = 3 };

		par_run(3, probe, &q);
		for (int i = 0; i < 3; i++)
			atomic_fetch_add(&p->nested, q.calls[i] == 1);
	}
}

/* par_run(n): each k in [0, n) once, told n; the pool grown, shrunk and reused. */
static int par_once(int n, int nest)
{
	par_probe p = { .want_n = n < 1 ? 1 : n > PAR_MAX_THREADS ? PAR_MAX_THREADS : n, .nest = nest };
	int ok = 1;

	par_run(n, probe, &p);
	for (int k = 0; k < p.want_n; k++)
		ok &= p.calls[k] == 1;
	return ok && p.bad_n == 0 && (!nest || p.nested == 3);
}

static void *par_thread(void *arg)
{
	int *ok = arg;

	for (int i = 0; i < 2000; i++)
		*ok &= par_once(1 + i % 4, 0);
	return NULL;
}

static void test_par(void)
{
	int ok = 1, other = 1, status = -1;
	pthread_t t;
	pid_t pid;

	for (int i = 0; i < 3000; i++)
		ok &= par_once(i % 7 - 1, 0);
	CHECK(ok, "every worker index once per call, n from -1 to 5, 3000 calls");
	CHECK(par_once(PAR_MAX_THREADS + 3, 0), "n clamped to %d", PAR_MAX_THREADS);
	CHECK(par_once(2, 1) && par_once(4, 1), "a call from inside a worker completes (its own threads)");
	/* two callers at once: one has the pool, the other its own threads */
	CHECK(pthread_create(&t, NULL, par_thread, &other) == 0, "a second caller started");
	for (int i = 0; i < 2000; i++)
		ok &= par_once(2 + i % 3, 0);
	pthread_join(t, NULL);
	CHECK(ok && other, "two threads calling at once: every index once per call");
	/* a forked child has no workers of its parent's: it starts its own */
	if ((pid = fork()) == 0)
		_exit(par_once(3, 0) && par_once(2, 0) ? 0 : 1);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "par_run in a forked child (status %d)", status);
}

/* Worker k halves the smallest normal float: 0 on a thread that flushes denormals, a
 * denormal on one that does not; with nest, worker 1 also runs a nested call (on threads
 * of its own, not the pool's) into sub. */
typedef struct {
	float out[4], sub[4];
	int nest;
} halving;

static void halve(void *ctx, int k, int n)
{
	halving *h = ctx;
	volatile float x = FLT_MIN;

	h->out[k] = x * 0.5f;
	if (h->nest && k == 1) {
		halving in = { .nest = 0 };

		par_run(n, halve, &in);
		memcpy(h->sub, in.out, sizeof h->sub);
	}
}

/* f's bits are all 0: compared as bits, since a float compare on a thread with DAZ
 * reads a denormal as 0 */
static int bits_zero(const float *f)
{
	uint32_t u;

	memcpy(&u, f, sizeof u);
	return u == 0;
}

/* How many of par_run(3)'s workers, and of a nested call's, gave 0. */
static int halved_to_zero(void)
{
	halving h = { .nest = 1 };
	int zero = 0;

	par_run(3, halve, &h);
	for (int k = 0; k < 3; k++)
		zero += bits_zero(&h.out[k]) + bits_zero(&h.sub[k]);
	return zero;
}

/* c = a b, n x n: how many of c's entries are 0 */
static size_t sgemm_zeros(const float *a, const float *b, float *c, int n)
{
	size_t zeros = 0;

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
	for (size_t i = 0; i < (size_t)n * n; i++)
		zeros += bits_zero(&c[i]);
	return zeros;
}

/* fpmode_flush_denormals: the caller flushes, par's workers (started before, in the other
 * mode) take the caller's mode at each call, and so do OpenBLAS's, started before main. */
static void test_fpmode(void)
{
	unsigned ieee = fpmode_get();
	enum { N = 512 };
	float *a = malloc(sizeof(float) * N * N), *b = malloc(sizeof(float) * N * N);
	float *c = malloc(sizeof(float) * N * N);
	uint32_t tiny = 0x00400000; /* a denormal, half FLT_MIN: 512 of them make a normal */

	if (!a || !b || !c)
		abort();
	for (size_t i = 0; i < (size_t)N * N; i++)
		memcpy(&a[i], &tiny, sizeof tiny), b[i] = 1;
	CHECK(!fpmode_flushing(), "a thread starts with IEEE denormals");
	CHECK(halved_to_zero() == 0, "IEEE: every worker gives a denormal");
	/* OpenBLAS's workers started here, in IEEE mode; each entry of c a normal float */
	openblas_set_num_threads(2);
	CHECK(sgemm_zeros(a, b, c, N) == 0, "IEEE: OpenBLAS sums denormals");
	fpmode_flush_denormals();
	CHECK(fpmode_flushing(), "fpmode_flush_denormals: the caller flushes");
	CHECK(halved_to_zero() == 6, "flushing: every worker, pool's or own, gives 0 (%d of 6)",
	      halved_to_zero());
	/* with DAZ on every thread, each entry's sum of denormals reads as 0 */
	CHECK(sgemm_zeros(a, b, c, N) == (size_t)N * N, "flushing: OpenBLAS's sgemm on 2 threads "
	      "reads denormals as 0 (%zu of %d entries 0)", sgemm_zeros(a, b, c, N), N * N);
	fpmode_set(ieee);
	CHECK(!fpmode_flushing() && halved_to_zero() == 0, "fpmode_set restores IEEE, workers too");
	free(a), free(b), free(c);
}

/* Pages of [p, p + n) resident in memory. */
static size_t resident(const void *p, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = n / page, got = 0;
	unsigned char *v = malloc(pages + 1);

	if (v && mincore((void *)p, n, v) == 0)
		for (size_t i = 0; i < pages; i++)
			got += v[i] & 1;
	free(v);
	return got * page;
}

/* mem_fault faults in the whole pages of its range, none past it, and keeps what they hold. */
static void test_mem_fault(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 64 * page;
	unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED, "mmap");
	if (p == MAP_FAILED)
		return;
	p[5 * page + 7] = 0xa5;
	/* from the middle of page 3 to the middle of page 40: pages 4..39 */
	mem_fault(p + 3 * page + 100, 37 * page);
	CHECK(resident(p + 4 * page, 36 * page) == 36 * page, "the 36 whole pages inside are resident: %zu",
	      resident(p + 4 * page, 36 * page) / page);
	CHECK(resident(p + 41 * page, 23 * page) == 0, "none past the range: %zu", resident(p + 41 * page, 23 * page) / page);
	CHECK(p[5 * page + 7] == 0xa5 && p[6 * page] == 0, "contents kept");
	mem_fault(p, page - 1);
	CHECK(resident(p, page) == 0, "less than a page: nothing");
	munmap(p, n);
}

/* mem_calloc64: 64-byte aligned and zeroed at every size; a large block comes as fresh
 * pages, not faulted in (only the page holding calloc's header and ours); all n bytes
 * writable (ASan checks the edges); an overflowing n x size refused; mem_free64 takes NULL. */
static void test_mem_calloc64(void)
{
	static const size_t sizes[] = { 1, 63, 64, 1000, 8u << 20 };
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		size_t n = sizes[k], nz = 0;
		unsigned char *p = mem_calloc64(n, 1);

		CHECK(p && (uintptr_t)p % 64 == 0, "%zu bytes: on a 64-byte boundary", n);
		if (!p)
			continue;
		/* the whole pages after the one holding the headers */
		unsigned char *q = (unsigned char *)(((uintptr_t)p + page) / page * page);
		size_t len = n > 2 * page ? (size_t)(p + n - q) / page * page : 0;

		CHECK(resident(q, len) == 0, "%zu bytes: fresh pages, not faulted in (%zu)", n, resident(q, len) / page);
		for (size_t i = 0; i < n; i++)
			nz += p[i] != 0;
		CHECK(nz == 0, "%zu bytes: zeroed (%zu not)", n, nz);
		memset(p, 0xa5, n);
		CHECK(resident(q, len) == len, "%zu bytes: resident once written", n);
		mem_free64(p);
	}
	CHECK(mem_calloc64(SIZE_MAX / 2, 4) == NULL, "n x size past SIZE_MAX: NULL");
	mem_free64(NULL);
}

/* mem_available: some memory, no more than the machine has, and less once 1 GB more is
 * faulted in: by a quarter of it at least, since MemAvailable lags (a Firecracker guest,
 * kernel 6.18: 256 MB took 86-125 MB off it, 1 GB 566-771) and other programs come and go. */
static void test_mem_available(void)
{
	size_t a = mem_available(), b, n = (size_t)1 << 30;
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(a > n && a <= (size_t)pages * (size_t)page, "%zu MB of %ld MB", a >> 20, pages * page >> 20);
	CHECK(p != MAP_FAILED, "mmap");
	if (p == MAP_FAILED)
		return;
	mem_fault(p, n);
	b = mem_available();
	CHECK(b + n / 4 <= a, "1 GB faulted in: %zu MB available, %zu before", b >> 20, a >> 20);
	munmap(p, n);
}

int main(void)
{
	test_mem_fault();
	test_mem_available();
	test_mem_calloc64();
	test_hash();
	test_par();
	test_fpmode();
	test_rng();
	test_parse();
	test_outfile();
	test_outfile_direct();
	test_outfile_targets();
	return check_done("test_base");
}
