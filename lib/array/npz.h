/* npz: named arrays in a zip archive, NumPy's .npz, read through libarchive. Member "NAME.npy"
 * holds array NAME (names may contain '/', e.g. "conv1_1/weights1_1"). We write stored or
 * deflated members; we read what np.savez and np.savez_compressed write. */
#ifndef PETCNN_NPZ_H
#define PETCNN_NPZ_H

#include "array/npy.h"
#include "array/tensor.h"

typedef struct {
	char *name;     /* without the .npy suffix; owned */
	tensor t;       /* owned */
} npz_entry;

typedef struct {
	npz_entry *v;
	int n;
	size_t cap;
} npz;

void npz_init(npz *z);
void npz_free(npz *z);
/* Adds a copy of t under name (replacing an entry of that name). */
int npz_add(npz *z, const char *name, const tensor *t, char *err);
/* Adds t under name, taking ownership of its data (t->data set to NULL). */
int npz_add_move(npz *z, const char *name, tensor *t, char *err);
/* The entry's tensor, or NULL. */
const tensor *npz_get(const npz *z, const char *name);

/* Reads every member of path ("-": stdin) into z (which must be npz_init'ed). A member
 * not named *.npy, not a valid .npy, with bytes after its array, or a duplicate is an
 * error; z then holds the members read before it (npz_free it either way). */
int npz_read(npz *z, const char *path, char *err);
/* Reads every member from a source (e.g. stdin after its first bytes were sniffed). */
int npz_read_src(npz *z, npy_src *src, const char *name, char *err);
/* Which members a reader takes, asked of each member from its name and header (dtype and
 * shape; no data read yet) before anything is allocated for it: 1 reads it; 0 skips it
 * unread (libarchive passes over its bytes, nothing of it is held in memory, so an unneeded
 * member of any size costs nothing); -1 with err set stops the read, the way to refuse a
 * member whose dtype or shape is not what the caller can use. label is for messages. */
typedef int (*npz_want)(void *ctx, const char *name, const char *label, const tensor *hdr,
			char *err);
/* npz_read (src NULL) or npz_read_src (src given; path then labels messages) keeping only
 * the members want takes (every member if want is NULL). */
int npz_read_want(npz *z, const char *path, npy_src *src, npz_want want, void *ctx, char *err);
/* A ready npz_want: ctx is a NULL-terminated array of names; a name ending in '/' takes
 * every member under it. */
int npz_want_names(void *ctx, const char *name, const char *label, const tensor *hdr, char *err);
/* Sees one member of an archive being scanned: its name (without .npy), a label for
 * messages ("file: member 'x.npy'"), its header (data NULL), and the source of its
 * tensor_nbytes(hdr) data bytes, which the visitor reads all of, or none: a member left
 * unread is skipped (archive_read_data_skip), never decompressed into memory. Returns 0 to
 * go on, -1 (err set) to stop. */
typedef int (*npz_visitor)(void *ctx, const char *name, const char *label, const tensor *hdr,
			   npy_src *data, char *err);
/* Visits the members of path ("-": stdin), or of src when not NULL (path then labels
 * messages), in order, holding no more than the visitor does: the way to look at a
 * checkpoint larger than memory. Same errors as npz_read. */
int npz_scan(const char *path, npy_src *src, npz_visitor fn, void *ctx, char *err);
/* Writes z to path atomically (outfile); compress: 0 stored (zipw; an archive of 64 MiB
 * or more goes around the page cache with its large members aligned), 1 deflate
 * (libarchive). PETCNN_ZIP64=1 in the environment writes zip64 records for every member
 * (a test hook: otherwise only past 4 GiB). */
int npz_write(const npz *z, const char *path, int compress, char *err);

#endif
