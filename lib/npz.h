/* npz: named arrays in a zip archive, NumPy's .npz, through libarchive. Member "NAME.npy"
 * holds array NAME (names may contain '/', e.g. "conv1_1/weights1_1"). We write stored or
 * deflated members; we read what np.savez and np.savez_compressed write. */
#ifndef PETCNN_NPZ_H
#define PETCNN_NPZ_H

#include "tensor.h"

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

/* Reads every member of path ("-": stdin) into z (which must be npz_init'ed). */
int npz_read(npz *z, const char *path, char *err);
/* Writes z to path atomically (outfile); compress: 0 stored, 1 deflate. */
int npz_write(const npz *z, const char *path, int compress, char *err);

#endif
