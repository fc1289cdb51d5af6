/* zipw: a zip archive of stored (uncompressed) members, written front to back into an
 * outfile: what an .npz of float arrays is, at the speed a checkpoint needs. */
#ifndef PETCNN_ZIPW_H
#define PETCNN_ZIPW_H

#include <stddef.h>
#include <stdint.h>

#include "util/outfile.h"

/* A body of this many bytes or more starts at a file offset that is a multiple of
 * ZIPW_ALIGN when the archive is opened with align (padding in its local header's extra
 * field, as Android's zipalign does): written from a ZIPW_ALIGN-aligned buffer, it then
 * goes to the disk without a copy (outfile_direct). */
#define ZIPW_ALIGN ((size_t)4096)
#define ZIPW_ALIGN_MIN ((int64_t)64 << 10)

typedef struct zipw_member zipw_member;

typedef struct {
	outfile *o;
	const char *path;     /* for messages */
	int align;            /* pad large bodies to ZIPW_ALIGN */
	int zip64;            /* zip64 records for every member, not only where needed */
	int64_t pos;          /* bytes written */
	zipw_member *m;       /* what the central directory lists */
	int n, cap;
} zipw;

/* Starts an archive on o (open, nothing written yet); path labels messages. zip64 forces
 * the zip64 records a member needs only past 4 GiB (tests use it on small archives). */
void zipw_init(zipw *z, outfile *o, const char *path, int align, int zip64);
/* Writes member name: head (hlen bytes, e.g. an .npy header), then body (n bytes). Its
 * CRC-32 is taken before a byte is written (ISA-L: 5x zlib's), so there is no data
 * descriptor and a streaming reader knows every size from the local header. */
int zipw_add(zipw *z, const char *name, const void *head, size_t hlen, const void *body,
	     int64_t n, char *err);
/* Writes the central directory and the end records. */
int zipw_finish(zipw *z, char *err);
void zipw_free(zipw *z);

#endif
