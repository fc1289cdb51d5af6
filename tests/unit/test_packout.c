/* Unit tests for packout: a regular file gets the images in place and the right header
 * last, stdout as a pipe or an O_APPEND file goes through staging, and a failed run leaves
 * stdout's file at its original length and no -o temporary. The reference stream is the
 * three arrays written whole by npy_write (tests/formats.bats checks npy against numpy). */
#include "check.h"
#include "util/errmsg.h"
#include "array/npy.h"
#include "pets/packout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { W = 5, H = 3, N = 4, BYTES = W * H * 3 };

static char dir[] = "/tmp/petcnn-packout-XXXXXX";
static const char *const classes[] = { "samoyed", "shiba_inu" };
static const int64_t labels[N] = { 1, 0, 1, 1 };

static void image(int i, uint8_t *pix)
{
	for (int k = 0; k < BYTES; k++)
		pix[k] = (uint8_t)(i * 61 + k * 7);
}

/* the stream of images 0..n-1, labels and classes, as npy_write writes it whole */
static size_t reference(int n, unsigned char **buf)
{
	char err[ERR_MAX];
	uint8_t pix[N * BYTES];
	int64_t shape[4] = { n, H, W, 3 }, nl = n;
	tensor t;
	size_t len = 0;
	FILE *f = open_memstream((char **)buf, &len);

	for (int i = 0; i < n; i++)
		image(i, pix + i * BYTES);
	tensor_alloc(&t, DT_U1, 4, shape, 0, err);
	memcpy(t.data, pix, (size_t)n * BYTES);
	CHECK(npy_write(f, "ref", &t, err) == 0, "%s", err);
	tensor_free(&t);
	tensor_alloc(&t, DT_I8, 1, &nl, 0, err);
	memcpy(t.data, labels, sizeof *labels * (size_t)n);
	CHECK(npy_write(f, "ref", &t, err) == 0, "%s", err);
	tensor_free(&t);
	tensor_from_strings(&t, classes, 2, err);
	CHECK(npy_write(f, "ref", &t, err) == 0, "%s", err);
	tensor_free(&t);
	fclose(f);
	return len;
}

static size_t slurp(const char *path, unsigned char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return (size_t)-1;
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* entries in dir other than . and .. */
static int entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

/* stdout onto fd for a while; returns the saved stdout */
static int stdout_to(int fd)
{
	int saved;

	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	return saved;
}

static void stdout_back(int saved)
{
	fflush(stdout);
	clearerr(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
}

/* adds images 0..n-1 of the N announced */
static void add(packout *p, int n)
{
	char err[ERR_MAX];
	uint8_t pix[BYTES];

	for (int i = 0; i < n; i++) {
		image(i, pix);
		CHECK(packout_add(p, pix, labels[i], err) == 0, "%s", err);
	}
}

static void test_file(void)
{
	char err[ERR_MAX], path[256], tmp[300];
	unsigned char *ref, got[8192], hdr[1024];
	packout p;
	size_t rlen, len;
	int64_t hlen;
	tensor t = { .dtype = DT_U1, .ndim = 4, .shape = { 3, H, W, 3 } };
	struct dirent *e;
	DIR *d;

	/* -o FILE: 3 of the 4 announced images pack (one skipped), the header says 3 */
	snprintf(path, sizeof path, "%s/out.npy", dir);
	CHECK(packout_open(&p, path, W, H, N, err) == 0, "%s", err);
	CHECK(p.direct, "a regular file takes the images in place");
	hlen = npy_format_header(&t, hdr, sizeof hdr, "t", err);
	CHECK(hlen > 0 && hlen % 64 == 0 && p.hlen == hlen, "header length %lld, numpy's %lld",
	      (long long)p.hlen, (long long)hlen);
	add(&p, 3);
	/* mid-run: the output (an anonymous file, or a hidden temporary where the file system
	 * has no O_TMPFILE) holds a zeroed header and the images right behind it */
	d = opendir(dir);
	while (d && (e = readdir(d)))
		CHECK(strcmp(e->d_name, "out.npy"), "the target does not exist before the end");
	if (d)
		closedir(d);
	snprintf(tmp, sizeof tmp, "/proc/self/fd/%d", fileno(p.out.fp));
	fflush(p.out.fp);
	len = slurp(tmp, got, sizeof got);
	CHECK(len == (size_t)hlen + 3 * BYTES, "temporary %s holds %zu bytes", tmp, len);
	CHECK(len != (size_t)-1 && got[0] == 0 && !memcmp(got, got + 1, (size_t)hlen - 1), "zeroed header");
	rlen = reference(3, &ref);
	CHECK(len != (size_t)-1 && !memcmp(got + hlen, ref + hlen, 3 * BYTES), "images in place");
	CHECK(packout_finish(&p, classes, 2, err) == 0, "%s", err);
	len = slurp(path, got, sizeof got);
	CHECK(len == rlen && !memcmp(got, ref, rlen), "-o stream: %zu bytes, %zu expected", len, rlen);
	CHECK(entries() == 1, "only out.npy left: %d entries", entries());
	unlink(path);
	free(ref);
}

/* stdout onto a file that holds "abc", opened with flags (O_TRUNC, O_APPEND): packed through
 * "-", in place (direct) or staged, the file ends as "abc" and the stream */
static void stdout_file(const char *name, int flags, int direct)
{
	char err[ERR_MAX], path[256];
	unsigned char *ref, got[8192];
	packout p;
	size_t rlen, len;
	int saved, fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
	CHECK(fd >= 0 && write(fd, "abc", 3) == 3, "%s", path);
	saved = stdout_to(fd);
	CHECK(packout_open(&p, "-", W, H, N, err) == 0, "%s", err);
	CHECK(p.direct == direct && (!direct || p.base == 3), "%s: direct %d (not %d) base %lld", name,
	      p.direct, direct, (long long)p.base);
	add(&p, N);
	CHECK(packout_finish(&p, classes, 2, err) == 0, "%s", err);
	stdout_back(saved);
	rlen = reference(N, &ref);
	len = slurp(path, got, sizeof got);
	CHECK(len == rlen + 3 && !memcmp(got, "abc", 3) && !memcmp(got + 3, ref, rlen),
	      "%s: %zu bytes, %zu expected", name, len, rlen + 3);
	unlink(path);
	free(ref);
}

static void test_staged(void)
{
	char err[ERR_MAX];
	unsigned char *ref, got[8192];
	packout p;
	size_t rlen = reference(N, &ref), len = 0;
	ssize_t n;
	int fds[2], saved;

	/* a pipe: nothing reaches it before finish, the staging file lives in $TMPDIR unlinked */
	setenv("TMPDIR", dir, 1);
	CHECK(pipe(fds) == 0, "pipe");
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	saved = stdout_to(fds[1]);
	CHECK(packout_open(&p, "-", W, H, N, err) == 0, "%s", err);
	CHECK(!p.direct, "a pipe is staged");
	add(&p, N);
	fflush(stdout);
	n = read(fds[0], got, sizeof got);
	CHECK(n < 0 && errno == EAGAIN, "the pipe is empty until finish (read %zd)", n);
	CHECK(entries() == 0, "the staging file is unlinked: %d entries", entries());
	CHECK(packout_finish(&p, classes, 2, err) == 0, "%s", err);
	stdout_back(saved);
	while (len < sizeof got && (n = read(fds[0], got + len, sizeof got - len)) > 0)
		len += (size_t)n;
	close(fds[0]);
	CHECK(len == rlen && !memcmp(got, ref, rlen), "pipe stream: %zu bytes, %zu expected", len, rlen);

	/* stdout opened O_APPEND cannot seek back to the header: staged too */
	stdout_file("append.npy", O_APPEND, 0);
	unsetenv("TMPDIR");
	free(ref);
}

static void test_abort(void)
{
	char err[ERR_MAX], path[256];
	unsigned char got[8192];
	packout p;
	struct stat st;
	size_t len;
	int saved, fd;

	/* stdout's file cut back to its original 3 bytes */
	snprintf(path, sizeof path, "%s/cut.npy", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, "abc", 3) == 3, "%s", path);
	saved = stdout_to(fd);
	CHECK(packout_open(&p, "-", W, H, N, err) == 0, "%s", err);
	add(&p, 2);
	fflush(stdout);
	CHECK(stat(path, &st) == 0 && st.st_size > 3, "images written in place: %lld bytes", (long long)st.st_size);
	CHECK(packout_abort(&p, err) == 0, "%s", err);
	CHECK(p.labels == NULL && p.images == NULL, "abort frees");
	stdout_back(saved);
	len = slurp(path, got, sizeof got);
	CHECK(len == 3 && !memcmp(got, "abc", 3), "stdout's file back to 3 bytes, not %zu", len);
	unlink(path);

	/* -o FILE: the temporary removed, an existing target untouched */
	snprintf(path, sizeof path, "%s/keep.npy", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, "old", 3) == 3, "%s", path);
	close(fd);
	CHECK(packout_open(&p, path, W, H, N, err) == 0, "%s", err);
	add(&p, 3);
	CHECK(entries() == (p.out.anon ? 1 : 2), "target (and a named temporary): %d entries", entries());
	CHECK(packout_abort(&p, err) == 0, "%s", err);
	CHECK(entries() == 1, "temporary removed: %d entries", entries());
	len = slurp(path, got, sizeof got);
	CHECK(len == 3 && !memcmp(got, "old", 3), "target untouched");
	unlink(path);

	/* an output that cannot be created: the error names it, nothing is left */
	snprintf(path, sizeof path, "%s/no/such/x.npy", dir);
	CHECK(packout_open(&p, path, W, H, N, err) < 0 && strstr(err, path), "error: %s", err);
	CHECK(entries() == 0, "nothing left: %d entries", entries());

	/* more images than announced is refused, not written past the labels */
	snprintf(path, sizeof path, "%s/over.npy", dir);
	CHECK(packout_open(&p, path, W, H, 1, err) == 0, "%s", err);
	add(&p, 1);
	CHECK(packout_add(&p, got, 0, err) < 0 && strstr(err, "announced"), "error: %s", err);
	packout_abort(&p, err);
	CHECK(entries() == 0, "nothing left: %d entries", entries());
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror(dir);
		return 1;
	}
	test_file();
	/* stdout redirected to a file after "abc": the stream starts at byte 3, in place */
	stdout_file("stdout.npy", O_TRUNC, 1);
	test_staged();
	test_abort();
	rmdir(dir);
	return check_done("test_packout");
}
