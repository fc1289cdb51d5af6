/* tfrecord: TFRecord framing, written in whole records and read with every CRC checked.
 * See tfrecord.h. */
#include "tb/tfrecord.h"

#include "tb/crc32c.h"
#include "util/errmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void put_u32le(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64le(const unsigned char *p)
{
	return (uint64_t)get_u32le(p) | (uint64_t)get_u32le(p + 4) << 32;
}

uint32_t tfrecord_masked_crc(const void *p, size_t len)
{
	return crc32c_mask(crc32c(0, p, len));
}

/* ---- writing ---- */

void tfrecord_writer_init(tfrecord_writer *w, int fd, char *path)
{
	memset(w, 0, sizeof *w);
	w->fd = fd;
	w->path = path;
	buf_init(&w->pending);
	w->last_flush = now_mono();
}

int tfrecord_write(tfrecord_writer *w, const void *payload, size_t len, char *err)
{
	unsigned char head[12], tail[4];
	uint64_t n = len;

	for (int i = 0; i < 8; i++)
		head[i] = (unsigned char)(n >> (8 * i));
	put_u32le(head + 8, tfrecord_masked_crc(head, 8));
	put_u32le(tail, tfrecord_masked_crc(payload, len));
	buf_add(&w->pending, head, sizeof head);
	buf_add(&w->pending, payload, len);
	buf_add(&w->pending, tail, sizeof tail);
	if (w->pending.oom) {
		w->failed = 1;
		return err_set(err, "%s: out of memory queueing an event", w->path);
	}
	w->records++;
	return tfrecord_flush_if_due(w, err);
}

/* How many bytes of the first done pending bytes are whole records. */
static size_t whole_records(const struct buf *p, size_t done)
{
	size_t at = 0;

	while (p->len - at >= 16) {
		uint64_t rec = get_u64le(p->data + at) + 16;

		if (rec > done - at)
			break;
		at += (size_t)rec;
	}
	return at;
}

int tfrecord_flush(tfrecord_writer *w, char *err)
{
	size_t off = 0, keep;

	while (off < w->pending.len) {
		ssize_t k = write(w->fd, w->pending.data + off, w->pending.len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k > 0) {
			off += (size_t)k;
			continue;
		}
		/* A full disk or a size limit: what went out of a torn record is cut off, so the
		 * file ends on a whole record; what did not go out stays pending, so a retry
		 * neither duplicates nor tears. */
		int e = k < 0 ? errno : ENOSPC;
		keep = whole_records(&w->pending, off);
		w->size += (int64_t)keep;
		memmove(w->pending.data, w->pending.data + keep, w->pending.len - keep);
		w->pending.len -= keep;
		w->failed = 1;
		if (ftruncate(w->fd, (off_t)w->size) || lseek(w->fd, (off_t)w->size, SEEK_SET) < 0)
			return err_sys(err, "%s: write failed (%s), and cutting the torn record "
				       "failed", w->path, strerror(e));
		errno = e;
		return err_sys(err, "%s: write", w->path);
	}
	w->size += (int64_t)w->pending.len;
	buf_reset(&w->pending);
	w->last_flush = now_mono();
	return 0;
}

int tfrecord_flush_if_due(tfrecord_writer *w, char *err)
{
	if (!w->pending.len)
		return 0;
	if (now_mono() - w->last_flush < TFRECORD_FLUSH_SECONDS && w->pending.len < (1u << 20))
		return 0;
	return tfrecord_flush(w, err);
}

int tfrecord_close(tfrecord_writer *w, char *err)
{
	int rc = 0;

	if (w->fd >= 0) {
		rc = tfrecord_flush(w, err);
		if (close(w->fd) && !rc)
			rc = err_sys(err, "%s: close", w->path);
	}
	buf_free(&w->pending);
	free(w->path);
	w->path = NULL;
	w->fd = -1;
	return rc;
}
/* ---- reading ---- */

int tfrecord_reader_open(tfrecord_reader *r, const char *path, char *err)
{
	struct stat st;

	memset(r, 0, sizeof *r);
	r->size = -1;
	if (!strcmp(path, "-")) {
		r->fp = stdin;
		r->name = strdup("<stdin>");
	} else {
		r->fp = fopen(path, "rb");
		r->own = 1;
		r->name = strdup(path);
		if (!r->fp) {
			err_sys(err, "%s", path);
			free(r->name);
			r->name = NULL;
			return -1;
		}
	}
	if (!r->name) {
		tfrecord_reader_close(r);
		return err_set(err, "%s: out of memory", path);
	}
	if (!fstat(fileno(r->fp), &st)) {
		if (S_ISDIR(st.st_mode)) {
			tfrecord_reader_close(r);
			return err_set(err, "%s: is a directory", path);
		}
		if (S_ISREG(st.st_mode))
			r->size = st.st_size;
	}
	return 0;
}

void tfrecord_reader_close(tfrecord_reader *r)
{
	if (r->fp && r->own)
		fclose(r->fp);
	free(r->name);
	buf_free(&r->buf);
	memset(r, 0, sizeof *r);
}

int tfrecord_reader_next(tfrecord_reader *r, const unsigned char **payload, size_t *len,
			 int64_t *offset, char *err)
{
	unsigned char head[12], tail[4];
	size_t got;
	uint64_t n;
	int64_t at = r->offset;

	*offset = at;
	got = fread(head, 1, sizeof head, r->fp);
	if (got == 0 && !ferror(r->fp))
		return TFRECORD_EOF;
	if (got < sizeof head) {
		if (ferror(r->fp))
			return err_sys(err, "%s: read error at offset %lld", r->name, (long long)at);
		return err_set(err, "%s: truncated record at offset %lld (%zu of 12 header bytes)",
			       r->name, (long long)at, got);
	}
	n = get_u64le(head);
	if (tfrecord_masked_crc(head, 8) != get_u32le(head + 8))
		return err_set(err, "%s: bad length CRC in record at offset %lld", r->name,
			       (long long)at);
	if (n > (uint64_t)INT32_MAX)
		return err_set(err, "%s: implausible record length %llu at offset %lld", r->name,
			       (unsigned long long)n, (long long)at);
	if (r->size >= 0 && n + 16 > (uint64_t)(r->size - at))
		return err_set(err, "%s: truncated record at offset %lld (%llu-byte payload, "
			       "%lld bytes left)", r->name, (long long)at, (unsigned long long)n,
			       (long long)(r->size - at - 12));
	buf_reset(&r->buf);
	if (buf_reserve(&r->buf, (size_t)n))
		return err_set(err, "%s: out of memory for a %llu-byte record", r->name,
			       (unsigned long long)n);
	got = fread(r->buf.data, 1, n, r->fp);
	if (got == n)
		got += fread(tail, 1, 4, r->fp);
	if (got < n + 4) {
		if (ferror(r->fp))
			return err_sys(err, "%s: read error at offset %lld", r->name, (long long)at);
		return err_set(err, "%s: truncated record at offset %lld (%zu of %llu bytes)",
			       r->name, (long long)at, got + 12, (unsigned long long)n + 16);
	}
	r->offset += (int64_t)n + 16;
	if (tfrecord_masked_crc(r->buf.data, n) != get_u32le(tail)) {
		err_set(err, "%s: bad data CRC in record at offset %lld", r->name, (long long)at);
		return TFRECORD_BADDATA;
	}
	*payload = r->buf.data;
	*len = (size_t)n;
	return TFRECORD_OK;
}

