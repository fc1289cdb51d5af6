/* npy: NumPy .npy arrays, one after another on a FILE* (stdin/stdout included).
 * Format: "\x93NUMPY" major minor, header length (u16 for 1.0, u32 for 2.0/3.0), then an
 * ASCII (1.0/2.0) or UTF-8 (3.0) Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and '\n'
 * so the data starts at a multiple of 64 bytes, then the raw little-endian C-order data.
 * We write 1.0 (2.0 only when the header exceeds 65535 bytes) and read 1.0, 2.0 and 3.0. */
#ifndef PETCNN_NPY_H
#define PETCNN_NPY_H

#include <stddef.h>
#include <stdio.h>

#include "array/tensor.h"

/* Longest header we accept on read (numpy itself refuses more than 10000 bytes). */
#define NPY_HEADER_MAX (1 << 20)

/* Reads the next array. Returns 1 on success, 0 at a clean end of stream (EOF before
 * any byte of a new array), -1 on error (err: "name: problem"). name labels messages
 * (a path, or "<stdin>"). Never allocates more than the stream can hold: for a regular
 * file the claimed size is checked against the bytes left; for a pipe the buffer grows
 * as data actually arrives. */
int npy_read(FILE *f, const char *name, tensor *t, char *err);
/* Reads only the header: dtype/ndim/shape/ulen filled, data NULL, the stream left at
 * the start of the data (nbytes of it follow). Same return values as npy_read. */
int npy_read_header(FILE *f, const char *name, tensor *t, char *err);
/* Writes one array (header + data). */
int npy_write(FILE *f, const char *name, const tensor *t, char *err);
/* Writes a header for data the caller streams afterwards (tensor_nbytes(t) bytes). */
int npy_write_header(FILE *f, const char *name, const tensor *t, char *err);

/* Parses a header from memory (used by npz and the fuzzer): buf holds the whole file
 * prefix from the magic on; *hdr_len receives the offset where data starts. */
int npy_parse_header(const unsigned char *buf, size_t len, const char *name, tensor *t,
		     size_t *hdr_len, char *err);

/* A byte source other than a plain FILE*: a zip member, or a stream whose first bytes a
 * caller already consumed to sniff its type. read fills up to n bytes and returns the
 * count (0 only at the end), or -1 with err set. left is what is known to remain (a
 * regular file), -1 when unknown; the readers below keep it up to date. */
typedef struct {
	ptrdiff_t (*read)(void *ctx, void *buf, size_t n, const char *name, char *err);
	void *ctx;
	int64_t left;
} npy_src;

/* npy_src over a FILE* (left from fstat when it is a regular file). */
void npy_src_file(npy_src *s, FILE *f);
/* Reads bytes until n or the end; returns the count, or -1 on a read error. */
int64_t npy_src_fill(npy_src *s, void *buf, size_t n, const char *name, char *err);
/* npy_read_header / the data that follows it (allocates t->data), over a source. */
int npy_src_header(npy_src *s, const char *name, tensor *t, char *err);
int npy_src_data(npy_src *s, const char *name, tensor *t, char *err);

/* The header numpy 1.24 writes for t, into buf (1024 bytes always suffice); returns
 * its length (a multiple of 64), or -1 for a tensor that cannot be written. */
int64_t npy_format_header(const tensor *t, unsigned char *buf, size_t size, const char *name,
			  char *err);

#endif
