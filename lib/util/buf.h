/* buf: the one growable byte buffer of lib/, where every size computation is overflow-safe,
 * and buf_slurp, the one way to read a whole file or stream into memory under a cap. */
#ifndef PETCNN_BUF_H
#define PETCNN_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* Appends never fail loudly: a failed allocation (or a size that would overflow) sets oom
 * and turns every later append into a no-op, so a caller checks once, at the end. data is
 * NUL-terminated after every append (not counted in len), so text can be used as a string. */
struct buf {
	unsigned char *data;
	size_t len, cap;
	int oom;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);          /* len = 0 and oom cleared; memory kept */

/* Room for n more bytes (plus the terminator); 0, or -1 with oom set. */
int buf_reserve(struct buf *b, size_t n);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_addc(struct buf *b, int c);
void buf_adds(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Inserts n bytes at offset at (<= len), moving what follows. */
void buf_insert(struct buf *b, size_t at, const void *p, size_t n);
/* Hands the bytes to the caller (free() them; never NULL unless oom) and empties b. */
void *buf_take(struct buf *b, size_t *len);

/* For arrays of any element type: makes *arr hold at least need elements of size elem,
 * doubling *cap (from at least 8). 0, or -1 with *arr and *cap untouched. */
int buf_grow_array(void *arr, size_t *cap, size_t need, size_t elem);

/* Reads all of path ("-" is stdin) into b, appended. A named path must be a regular file
 * (a FIFO or device is refused, never waited on or read forever); more than max bytes is
 * an error. 0, or -1 with "path: problem" in err. */
int buf_slurp(struct buf *b, const char *path, size_t max, char *err);
/* The same from an open descriptor, named name in messages; no regular-file check. */
int buf_slurp_fd(struct buf *b, int fd, const char *name, size_t max, char *err);

#endif
