/* synth: a small synthetic Oxford-IIIT Pet mirror (images.tar.gz, annotations.tar.gz,
 * SHA256SUMS) in the real layout and with the real set's quirks, for offline demos and tests.
 *
 * Layout written to DIR, as in the real download:
 *   images.tar.gz       images/<Breed>_<n>.jpg (cat breeds Capitalised, dogs lower case),
 *                       n = 1..per_breed, plus the quirk files below
 *   annotations.tar.gz  annotations/README, list.txt (the real six '#' header lines, then
 *                       "Image CLASS-ID SPECIES BREED-ID"), trainval.txt, test.txt (same
 *                       columns, no header, about half of each class each), trimaps/<name>.png
 *                       (1 pet, 2 background, 3 border), xmls/<name>.xml (VOC box, trainval only)
 *   SHA256SUMS          sha256sum format, both archives
 * Quirks (b0, b1, b2: the chosen breeds in the order given, wrapping when fewer; N: per_breed):
 *   <every breed>_2.jpg grayscale JPEG          b0_3.jpg  PNG under a .jpg name
 *   b0_4.jpg  GIF under a .jpg name            b1_5.jpg  JPEG with extraneous bytes (warns)
 *   b2_6.jpg  truncated JPEG                   b1_7.jpg  CMYK JPEG, Adobe inverted
 *   <every breed>_N.jpg is not listed in list.txt/trainval.txt/test.txt (unlisted)
 *   Abyssinian_100.mat (or b0_100.mat) a MATLAB 5.0 MAT-file stub inside images/
 *   images/._<breed>_1.jpg, annotations/trimaps/._<breed>_1.png: AppleDouble files
 * The annotations README ends with a QUIRKS table naming the files ("kind<TAB>paths").
 * The pictures are synth_draw's, the archives synth_tar's. */
#ifndef PETCNN_SYNTH_H
#define PETCNN_SYNTH_H

#include <stdint.h>

#define SYNTH_NBREEDS 37
#define SYNTH_MIN_PER_BREED 10 /* room for every quirk and a non-empty trainval and test */

typedef struct {
	const char *name;  /* as in the file names: "Abyssinian", "samoyed" */
	int class_id;      /* 1..37, the real order */
	int species;       /* 1 cat, 2 dog */
	int breed_id;      /* 1..12 within cats, 1..25 within dogs */
} synth_breed;

/* Breed i (0..36, class id i + 1); NULL when out of range. */
const synth_breed *synth_breed_at(int i);
/* Index of a breed by name, case-insensitive; -1 if unknown. */
int synth_breed_find(const char *name);
/* Parses a comma list of breed names into idx (at most SYNTH_NBREEDS); returns the count,
 * or -1 with err naming an unknown or repeated breed. */
int synth_parse_breeds(const char *list, int *idx, char *err);

typedef struct {
	int breeds[SYNTH_NBREEDS]; /* indices for synth_breed_at, in the order given */
	int nbreeds;
	int per_breed;             /* >= SYNTH_MIN_PER_BREED */
	int min_size, max_size;    /* each image's width and height, uniform in this range */
	uint64_t seed;
	int gzip;                  /* 0: plain tar, still named .tar.gz (a real-world quirk) */
	/* Called after each image (may be NULL). */
	void (*progress)(void *ctx, int done, int total);
	void *progress_ctx;
} synth_opts;

/* Defaults: samoyed, shiba_inu, Abyssinian; 40 per breed; 120..320 px; seed 1; gzip. */
void synth_opts_default(synth_opts *o);

/* Writes the three files into dir (which must exist), each atomically; the archives are
 * renamed into place only when both are complete. */
int synth_write(const synth_opts *o, const char *dir, char *err);

#endif
