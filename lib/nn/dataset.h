/* dataset: the dataset stream cnn-train and cnn-eval read (DESIGN.md): three .npy arrays in
 * order, images uint8 [N, H, W, 3], labels int64 [N] (-1: unknown), classes <U [K]. */
#ifndef PETCNN_DATASET_H
#define PETCNN_DATASET_H

#include <stdint.h>

#include "array/tensor.h"

typedef struct {
	tensor images;      /* u1 [n, h, w, 3] */
	tensor classes;     /* <U [k] */
	int *labels;        /* [n], each in [0, k), or -1 where allowed */
	int64_t n;
	int h, w, k;
	int unlabelled;     /* count of -1 labels */
} dataset;

/* Reads path ("-": stdin). Every dtype, shape and label is checked; a label of -1 is an
 * error unless allow_unlabelled. Errors name the file. */
int dataset_read(dataset *d, const char *path, int allow_unlabelled, char *err);
void dataset_free(dataset *d);

/* Copies images idx[0..n) into img [n, h, w, 3] and their labels into labels [n]. */
/* SHA-256 of the images then the labels into hex [65]: what a checkpoint records as its
 * training set, and what ranks under mpirun compare. -1 if out of memory. */
int dataset_sha256(const dataset *d, char *hex, char *err);
void dataset_gather(const dataset *d, const int64_t *idx, int n, uint8_t *img, int *labels);

/* The class names of a and b agree (same count, same names, same order); else an error
 * naming both files. */
int dataset_same_classes(const tensor *a, const char *an, const tensor *b, const char *bn,
			 char *err);

#endif
