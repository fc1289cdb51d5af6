/* npz: named arrays in a zip archive, NumPy's .npz, through libarchive. Member "NAME.npy"
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
	int n, cap;
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
/* Sees one member of an archive being scanned: its name (without .npy), a label for
 * messages ("file: member 'x.npy'"), its header (data NULL), and the source of its
 * tensor_nbytes(hdr) data bytes, all of which the visitor reads. Returns 0 to go on,
 * -1 (err set) to stop. */
typedef int (*npz_visitor)(void *ctx, const char *name, const char *label, const tensor *hdr,
			   npy_src *data, char *err);
/* Visits the members of path ("-": stdin), or of src when not NULL (path then labels
 * messages), in order, holding no more than the visitor does: the way to look at a
 * checkpoint larger than memory. Same errors as npz_read. */
int npz_scan(const char *path, npy_src *src, npz_visitor fn, void *ctx, char *err);
/* Writes z to path atomically (outfile); compress: 0 stored, 1 deflate. */
int npz_write(const npz *z, const char *path, int compress, char *err);

#endif
