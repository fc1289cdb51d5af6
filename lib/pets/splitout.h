/* splitout: pet-split's outputs, all made or none: the image lists (one on a stream, or
 * DIR/train.tsv and DIR/test.tsv) and the ImageFolder layout of symbolic links. */
#ifndef PETCNN_SPLITOUT_H
#define PETCNN_SPLITOUT_H

#include <stdio.h>

#include "pets/petset.h"

/* Where the split of s's chosen breeds (classes[0..k), label order; items[].split set by
 * petset_split_*) goes. */
typedef struct {
	const char *lists;     /* DIR for DIR/train.tsv and DIR/test.tsv (made if missing); NULL:
				* one list with the split column to f */
	FILE *f;               /* and its name for messages */
	const char *f_name;
	const char *folders;   /* NULL, or DIR for DIR/train/<class>/ and DIR/test/<class>/ of
				* symbolic links to the images; they must not exist yet */
} splitout_opts;

/* Writes them. Everything that may fail is done before anything takes a final name: the
 * layout is built in a temporary folder inside o->folders and the lists go to temporary
 * files; only then are they renamed into place. On -1 err says why and nothing this call
 * made is left (the folders it created are removed again), but for rows already written
 * to f. It allocates nothing that outlives it. */
int splitout_write(const petset *s, const int *classes, int k, const splitout_opts *o, char *err);

#endif
