/* synth_tar: a tar (pax restricted, optionally gzip without a timestamp) written through
 * libarchive into an outfile, with fixed owner, modes and mtime so same input, same bytes. */
#ifndef PETCNN_SYNTH_TAR_H
#define PETCNN_SYNTH_TAR_H

#include <stddef.h>

#include "util/outfile.h"

struct archive;

typedef struct {
	outfile of;
	struct archive *a;
	const char *path;  /* for messages; not copied */
	int open;          /* the outfile is pending: synth_tar_abort removes it */
} synth_tar;

int synth_tar_open(synth_tar *t, const char *path, int gzip, char *err);
/* Adds a member; a name ending in '/' is a directory (p and n ignored). */
int synth_tar_add(synth_tar *t, const char *name, const void *p, size_t n, char *err);
/* Finishes the archive; the outfile stays pending until synth_tar_commit or _abort. */
int synth_tar_finish(synth_tar *t, char *err);
/* Renames the finished archive into place. */
int synth_tar_commit(synth_tar *t, char *err);
/* Drops a pending archive (no-op when none); safe after any failure. */
void synth_tar_abort(synth_tar *t);

#endif
