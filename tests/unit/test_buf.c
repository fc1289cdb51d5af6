/* Unit tests for util/buf: growth, the sticky out-of-memory flag, insert, arrays, slurp. */
#include "check.h"
#include "util/buf.h"
#include "util/errmsg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_append(void)
{
	struct buf b;
	size_t n;
	char *s;

	buf_init(&b);
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	CHECK(!b.oom && b.len == 3890, "1000 numbers: %zu bytes", b.len);
	CHECK(!memcmp(b.data, "0,1,2,", 6) && !strcmp((char *)b.data + b.len - 4, "999,"),
	      "content and terminator");
	buf_insert(&b, 2, "xy", 2);
	CHECK(!memcmp(b.data, "0,xy1,", 6) && b.len == 3892, "insert in the middle");
	buf_reset(&b);
	buf_adds(&b, "ab");
	buf_addc(&b, 'c');
	s = buf_take(&b, &n);
	CHECK(s && n == 3 && !strcmp(s, "abc"), "take hands over a string");
	CHECK(!b.data && !b.len, "take empties the buffer");
	free(s);

	/* A size that would overflow sets oom, and it sticks until reset. */
	buf_adds(&b, "x");
	buf_add(&b, "", SIZE_MAX - 4);
	CHECK(b.oom, "overflowing size sets oom");
	buf_adds(&b, "more");
	CHECK(b.oom && b.len == 1, "later appends are no-ops (len %zu)", b.len);
	CHECK(buf_take(&b, NULL) == NULL, "take after oom gives NULL");
	buf_free(&b);
}

static void test_array(void)
{
	int *a = NULL;
	size_t cap = 0;

	CHECK(buf_grow_array(&a, &cap, 1, sizeof *a) == 0 && cap == 8, "first growth to 8");
	CHECK(buf_grow_array(&a, &cap, 9, sizeof *a) == 0 && cap == 16, "doubles");
	for (int i = 0; i < 16; i++)
		a[i] = i;
	CHECK(buf_grow_array(&a, &cap, 100, sizeof *a) == 0 && cap == 128 && a[15] == 15,
	      "keeps the elements");
	CHECK(buf_grow_array(&a, &cap, SIZE_MAX / 2, sizeof *a) == -1 && cap == 128,
	      "an overflowing count fails and changes nothing");
	free(a);
}

static void test_slurp(void)
{
	char dir[] = "/tmp/test_buf.XXXXXX", path[64], fifo[64], err[ERR_MAX];
	struct buf b;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof path, "%s/f", dir);
	snprintf(fifo, sizeof fifo, "%s/fifo", dir);
	f = fopen(path, "w");
	for (int i = 0; i < 100000; i++)
		fputc('a' + i % 26, f);
	fclose(f);
	buf_init(&b);
	CHECK(buf_slurp(&b, path, 100000, err) == 0 && b.len == 100000 && b.data[99999] == 'a' + 99999 % 26,
	      "a whole file (%zu bytes)", b.len);
	buf_reset(&b);
	CHECK(buf_slurp(&b, path, 99999, err) == -1 && strstr(err, "larger than 99999"),
	      "over the cap: %s", err);
	CHECK(buf_slurp(&b, dir, 10, err) == -1 && strstr(err, "not a regular file"), "a directory: %s", err);
	CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
	CHECK(buf_slurp(&b, fifo, 10, err) == -1 && strstr(err, "not a regular file"), "a FIFO: %s", err);
	CHECK(buf_slurp(&b, "/dev/zero", 10, err) == -1 && strstr(err, "not a regular file"), "a device: %s", err);
	CHECK(buf_slurp(&b, "/nonexistent/x", 10, err) == -1 && strstr(err, "/nonexistent/x: No such file"),
	      "a missing file: %s", err);
	buf_free(&b);
	unlink(path);
	unlink(fifo);
	rmdir(dir);
}

int main(void)
{
	test_append();
	test_array();
	test_slurp();
	return check_done("test_buf");
}
