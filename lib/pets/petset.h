/* petset: an extracted Oxford-IIIT Pet folder (annotations/{list,trainval,test}.txt, images/)
 * and the image lists pet-split writes and pet-pack reads.
 * list.txt: '#' comment lines, then "Image CLASS-ID SPECIES BREED-ID" (SPECIES 1 cat, 2 dog);
 * trainval.txt and test.txt: the same columns, no header. Image is the file's stem, whose breed
 * is the stem less its "_<number>" (cats capitalised, dogs lower case).
 * An image list (TSV) is '#' comment lines, then rows "path<TAB>label<TAB>class[<TAB>...]":
 * path to the image, label an int64 class index (-1: unknown), class its name. A comment
 * "# classes: NAME NAME ..." names every class in label order, so a class with no rows keeps
 * its name. */
#ifndef PETCNN_PETSET_H
#define PETCNN_PETSET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum petset_split { PETSET_NONE, PETSET_TRAIN, PETSET_TEST };

typedef struct {
	char *stem;        /* "Abyssinian_12" */
	char *file;        /* name in images/ ("Abyssinian_12.jpg"), NULL when missing */
	long num;          /* the trailing number, for natural order */
	int breed;         /* index into petset.breeds */
	int official;      /* enum petset_split from trainval.txt / test.txt */
	int split;         /* the split chosen (petset_split_*) */
} petset_item;

typedef struct {
	char *name;        /* as in the file names: "Abyssinian", "samoyed" */
	int species;       /* 1 cat, 2 dog */
} petset_breed;

typedef struct {
	char *dir;                 /* absolute path of the dataset folder */
	petset_breed *breeds;      /* sorted case-insensitively, as the CLASS-IDs are */
	int nbreeds;
	petset_item *items;        /* sorted by breed, then number */
	size_t nitems;
	/* what images/ holds beyond the listed images; names kept for messages */
	size_t nunlisted, nunusable, nmissing;
	char **unlisted, **unusable;
} petset;

/* Reads annotations/list.txt, trainval.txt, test.txt and scans images/ (an unusable file is
 * '._*' AppleDouble, an extension other than .jpg/.jpeg/.png/.gif, or bytes that are none
 * of them). Errors name the file and line. */
int petset_load(petset *s, const char *dir, char *err);
void petset_free(petset *s);

/* Index of a breed by name, case-insensitively; -1 if none. */
int petset_find_breed(const petset *s, const char *name);

/* Sets items[].split for the items of the chosen breeds (classes[0..k-1]) that exist in
 * images/: per class, round(frac * n) test items drawn with the seeded rng (stream = the
 * breed's index, so one breed's split does not depend on which others are chosen). */
void petset_split_fraction(petset *s, const int *classes, int k, double frac, uint64_t seed);
/* The dataset's own split; returns how many chosen items are in neither list. */
size_t petset_split_official(petset *s, const int *classes, int k);

/* --- image lists -------------------------------------------------------------------------- */

typedef struct {
	char *path;
	int64_t label;
} petset_entry;

typedef struct {
	petset_entry *e;
	size_t n;
	char **classes;    /* nclasses names, label order */
	int64_t nclasses;
} petset_list;

/* Reads a TSV list (name labels messages). Class names come from the "# classes:" comment,
 * else from the rows; a row whose class disagrees with its label's name is an error. */
int petset_list_read(FILE *f, const char *name, petset_list *l, char *err);
/* Adds an image with label -1 (paths given on a command line). */
int petset_list_add(petset_list *l, const char *path, int64_t label, char *err);
void petset_list_free(petset_list *l);

#endif
