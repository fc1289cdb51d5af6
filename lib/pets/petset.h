/* petset: an extracted Oxford-IIIT Pet folder (annotations/{list,trainval,test}.txt, images/)
 * and the image lists pet-split writes and pet-pack reads, both ways.
 * list.txt: '#' comment lines, then "Image CLASS-ID SPECIES BREED-ID" (SPECIES 1 cat, 2 dog);
 * trainval.txt and test.txt: the same columns, no header. Image is the file's stem, whose breed
 * is the stem less its "_<number>" (cats capitalised, dogs lower case).
 *
 * An image list (TSV), one line each, '\n' ended ('\r\n' read too):
 *   # classes: NAME NAME ...      optional, before the first row: every class in label order
 *                                 (names distinct, no blanks), so a class with no rows keeps its
 *                                 name; when given, every label must be below the count
 *   # anything else               comment; empty lines are skipped
 *   path<TAB>label<TAB>class[<TAB>more...]
 *       path   the image; no tab, newline or NUL. A path starting with '#' would read as a
 *              comment: write it as "./#..." (petset_list_write does), a comment line shaped
 *              like a row ("#x<TAB>0<TAB>...") is an error rather than a row silently dropped
 *       label  int64 class index, -1 for unknown, below 100000
 *       class  the label's name (may be empty); one label, one name, and without a classes
 *              line the rows name the classes, distinct names for distinct labels
 *       more   further columns, ignored (pet-split's stdout adds "split": train or test)
 * Every reader error names the file and the line. */
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
	int species;       /* 1 cat, 2 dog (from the breed's first line in list.txt) */
	size_t first, n;   /* its items: items[first .. first + n) */
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

/* Index of a breed by name, case-insensitively (the first of names differing in case only);
 * -1 if none. O(log nbreeds). */
int petset_find_breed(const petset *s, const char *name);

/* Sets items[].split for the items of the chosen breeds (classes[0..k-1]) that exist in
 * images/: per class, round(frac * n) test items drawn with the seeded rng (stream = the
 * breed's index, so one breed's split does not depend on which others are chosen). */
int petset_split_fraction(petset *s, const int *classes, int k, double frac, uint64_t seed,
			  char *err);
/* The dataset's own split; returns how many chosen items are in neither list. */
size_t petset_split_official(petset *s, const int *classes, int k);

/* --- image lists -------------------------------------------------------------------------- */

typedef struct {
	char *path;
	int64_t label;
} petset_entry;

typedef struct {
	petset_entry *e;
	size_t n, cap;     /* cap: room in e */
	char **classes;    /* nclasses names, label order */
	int64_t nclasses;
} petset_list;

/* Reads a TSV list (name labels messages). Class names come from the "# classes:" comment,
 * else from the rows (a label no row names is called "class<label>"). */
int petset_list_read(FILE *f, const char *name, petset_list *l, char *err);
/* Adds an image (paths given on a command line: label -1). l starts zeroed. */
int petset_list_add(petset_list *l, const char *path, int64_t label, char *err);
void petset_list_free(petset_list *l);

/* Writing a list: start (the "# classes:" line and a column header), then one row per image.
 * Errors name the file and the line that could not be written as the reader would read it. */
typedef struct {
	FILE *f;
	const char *name;              /* for messages */
	const char *const *classes;    /* not copied */
	int64_t nclasses;
	int split_column;
	long line;                     /* lines written */
} petset_writer;

/* Class names must be non-empty, blank-free and distinct; split_column adds the "split"
 * column (petset_list_write_row's split). */
int petset_list_write_start(petset_writer *w, FILE *f, const char *name, const char *const *classes,
			    int64_t nclasses, int split_column, char *err);
/* label in -1..nclasses-1; split ("train", "test") only with split_column. A path starting
 * with '#' is written "./#...". */
int petset_list_write_row(petset_writer *w, const char *path, int64_t label, const char *split,
			  char *err);

#endif
