/* buf: a growable byte buffer and a capped whole-file reader. See buf.h. */
#include "util/buf.h"

#include "util/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void buf_init(struct buf *b)
{
	memset(b, 0, sizeof *b);
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->oom = 0;
	if (b->data)
		b->data[0] = 0;
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t cap;
	unsigned char *p;

	if (b->oom)
		return -1;
	if (b->cap && n < b->cap - b->len)
		return 0;
	/* One byte for the terminator; keep every doubling below SIZE_MAX. */
	if (n >= SIZE_MAX / 2 - b->len) {
		b->oom = 1;
		return -1;
	}
	cap = b->cap ? b->cap : 256;
	while (cap - b->len <= n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n))
		return;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
}

void buf_addc(struct buf *b, int c)
{
	unsigned char ch = (unsigned char)c;

	buf_add(b, &ch, 1);
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	if (buf_reserve(b, (size_t)n))
		return;
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void buf_insert(struct buf *b, size_t at, const void *p, size_t n)
{
	if (at > b->len || buf_reserve(b, n))
		return;
	memmove(b->data + at + n, b->data + at, b->len - at);
	if (n)
		memcpy(b->data + at, p, n);
	b->len += n;
	b->data[b->len] = 0;
}

void *buf_take(struct buf *b, size_t *len)
{
	void *p;

	if (b->oom) {
		buf_free(b);
		return NULL;
	}
	if (!b->data && buf_reserve(b, 0))
		return NULL;
	p = b->data;
	if (len)
		*len = b->len;
	buf_init(b);
	return p;
}

int buf_grow_array(void *arr, size_t *cap, size_t need, size_t elem)
{
	void **pp = arr;
	size_t c = *cap ? *cap : 8;
	void *p;

	if (need <= *cap)
		return 0;
	while (c < need) {
		if (c > SIZE_MAX / 2)
			return -1;
		c *= 2;
	}
	if (elem && c > SIZE_MAX / elem)
		return -1;
	p = realloc(*pp, c * elem);
	if (!p)
		return -1;
	*pp = p;
	*cap = c;
	return 0;
}

int buf_slurp_fd(struct buf *b, int fd, const char *name, size_t max, char *err)
{
	size_t start = b->len;

	for (;;) {
		ssize_t n;

		if (buf_reserve(b, 65536))
			return err_set(err, "%s: out of memory", name);
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(err, "%s: read", name);
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->data[b->len] = 0;
		if (b->len - start > max)
			return err_set(err, "%s: larger than %zu bytes", name, max);
	}
	return 0;
}

int buf_slurp(struct buf *b, const char *path, size_t max, char *err)
{
	struct stat st;
	int fd, rc;

	if (!strcmp(path, "-"))
		return buf_slurp_fd(b, 0, "<stdin>", max, err);
	/* O_NONBLOCK so that opening a FIFO with no writer does not wait forever. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, "%s", path);
	if (fstat(fd, &st)) {
		rc = err_sys(err, "%s", path);
	} else if (!S_ISREG(st.st_mode)) {
		rc = err_set(err, "%s: not a regular file", path);
	} else if ((uint64_t)st.st_size > max) {
		rc = err_set(err, "%s: larger than %zu bytes", path, max);
	} else {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		rc = buf_slurp_fd(b, fd, path, max, err);
	}
	close(fd);
	return rc;
}
