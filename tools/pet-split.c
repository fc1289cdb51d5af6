/* pet-split: choose breeds of an extracted Oxford-IIIT Pet folder and split them into
 * train/test image lists (TSV), optionally laid out as ImageFolder symlinks. */
#include "util/cli.h"
#include "util/errmsg.h"
#include "util/outfile.h"
#include "pets/petset.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char PROG[] = "pet-split";

static const char HELP[] =
	"Usage: pet-split [OPTION]... DIR\n"
	"Choose breeds of an Oxford-IIIT Pet folder and split them into train/test image lists.\n"
	"\n"
	"DIR is an extracted dataset (DIR/annotations/list.txt, trainval.txt, test.txt, DIR/images/).\n"
	"\n"
	"  -b, --breeds LIST     comma-separated breeds, names as in the file names, any case;\n"
	"                        their order gives the class indices (default: every breed, sorted)\n"
	"  -s, --species KIND    every breed of one species: dog or cat\n"
	"  -t, --test FRACTION   fraction of each class put in the test split (default 0.15),\n"
	"                        drawn per class (stratified), reproducibly for a --seed\n"
	"      --seed N          random seed of the split (default 1)\n"
	"      --official        the dataset's own split (trainval.txt -> train, test.txt -> test)\n"
	"  -o, --output DIR      write DIR/train.tsv and DIR/test.tsv (default: one list on stdout)\n"
	"      --folders DIR     also lay out DIR/train/<class>/ and DIR/test/<class>/ with symbolic\n"
	"                        links to the images (torchvision ImageFolder, Keras); DIR/train and\n"
	"                        DIR/test must not exist yet\n"
	"  -q, --quiet           no summary on stderr\n"
	"  -h, --help            show this help and exit\n"
	"      --version         show the version and exit\n"
	"\n"
	"Lists are tab-separated, one image per line, after '#' comment lines (the first is\n"
	"'# classes: NAME...', every class in label order):\n"
	"  path    absolute path of the image\n"
	"  label   class index, 0-based\n"
	"  class   class (breed) name\n"
	"  split   train or test (stdout only)\n"
	"Rows go by class, then image number. Images listed in list.txt but missing, image files\n"
	"not in list.txt (not used) and unusable files ('._*', .mat, non-images) are counted on\n"
	"stderr.\n"
	"\n"
	"Example:\n"
	"  pet-split data --breeds samoyed,shiba_inu --test 0.15 --seed 1 -o lists\n"
	"  pet-split data --species cat --official | awk -F'\\t' '$4 == \"test\"' | cut -f1\n";

struct opts {
	const char *dir, *breeds, *species, *output, *folders;
	double test;
	uint64_t seed;
	int official, quiet;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_SEED = 256, OPT_OFFICIAL, OPT_FOLDERS, OPT_VERSION };
	static const struct option longs[] = {
		{ "breeds", required_argument, NULL, 'b' },
		{ "species", required_argument, NULL, 's' },
		{ "test", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "official", no_argument, NULL, OPT_OFFICIAL },
		{ "output", required_argument, NULL, 'o' },
		{ "folders", required_argument, NULL, OPT_FOLDERS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c, test_given = 0;

	memset(o, 0, sizeof *o);
	o->test = 0.15;
	o->seed = 1;
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "b:s:t:o:qh", longs, NULL)) != -1) {
		switch (c) {
		case 'b': o->breeds = optarg; break;
		case 's': o->species = optarg; break;
		case 't': o->test = cli_opt_double("--test", optarg, 0, 1); test_given = 1; break;
		case OPT_SEED: o->seed = (uint64_t)cli_opt_i64("--seed", optarg, 0, INT64_MAX); break;
		case OPT_OFFICIAL: o->official = 1; break;
		case 'o': o->output = optarg; break;
		case OPT_FOLDERS: o->folders = optarg; break;
		case 'q': o->quiet = 1; break;
		case 'h': cli_help(HELP);
		case OPT_VERSION: cli_version();
		default: cli_try_help();
		}
	}
	if (optind != argc - 1)
		cli_usage(optind == argc ? "missing dataset folder" : "one dataset folder only");
	o->dir = argv[optind];
	if (o->breeds && o->species)
		cli_usage("--breeds and --species are exclusive");
	if (o->species && strcmp(o->species, "dog") && strcmp(o->species, "cat"))
		cli_usage("--species: expected dog or cat, not '%s'", o->species);
	if (o->official && test_given)
		cli_usage("--official and --test are exclusive");
}

/* The class list: breed indices in class order. */
static int choose_classes(const struct opts *o, const petset *s, int *classes)
{
	int k = 0;

	if (!o->breeds) {
		int want = o->species ? (!strcmp(o->species, "cat") ? 1 : 2) : 0;
		for (int b = 0; b < s->nbreeds; b++)
			if (!want || s->breeds[b].species == want)
				classes[k++] = b;
		if (!k)
			cli_die("no %s breeds in %s/annotations/list.txt", o->species ? o->species : "", s->dir);
		return k;
	}
	char *list = strdup(o->breeds), *save;
	if (!list)
		cli_die("out of memory");
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int b = petset_find_breed(s, t);
		if (b < 0)
			cli_die("unknown breed '%s' (not in %s/annotations/list.txt)", t, s->dir);
		for (int i = 0; i < k; i++)
			if (classes[i] == b)
				cli_die("breed '%s' given twice", t);
		classes[k++] = b;
	}
	free(list);
	if (!k)
		cli_usage("--breeds: no breed given");
	return k;
}

static int class_of(const int *classes, int k, int breed)
{
	for (int c = 0; c < k; c++)
		if (classes[c] == breed)
			return c;
	return -1;
}

/* Rows of one split (or both, with the split column, when split is PETSET_NONE). */
static int write_list(FILE *f, const petset *s, const int *classes, int k, int split)
{
	fputs("# classes:", f);
	for (int c = 0; c < k; c++)
		fprintf(f, " %s", s->breeds[classes[c]].name);
	fprintf(f, "\n# path\tlabel\tclass%s\n", split == PETSET_NONE ? "\tsplit" : "");
	for (int c = 0; c < k; c++)
		for (size_t i = 0; i < s->nitems; i++) {
			const petset_item *it = &s->items[i];
			if (it->breed != classes[c] || it->split == PETSET_NONE || (split && it->split != split))
				continue;
			fprintf(f, "%s/images/%s\t%d\t%s", s->dir, it->file, c, s->breeds[classes[c]].name);
			if (split == PETSET_NONE)
				fprintf(f, "\t%s", it->split == PETSET_TEST ? "test" : "train");
			fputc('\n', f);
		}
	return ferror(f) ? -1 : 0;
}

/* A path from a format into buf[PATH_MAX]; too long is fatal, never silently cut. */
__attribute__((format(printf, 2, 3))) static char *pathf(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		cli_die("path too long: %.60s...", buf);
	return buf;
}

static void write_outputs(const struct opts *o, const petset *s, const int *classes, int k)
{
	static const char *const names[] = { "train", "test" };
	char err[ERR_MAX], path[PATH_MAX];
	outfile of;

	if (!o->output) {
		if (write_list(stdout, s, classes, k, PETSET_NONE) < 0)
			cli_die("write error on stdout:");
		return;
	}
	if (mkdir(o->output, 0777) < 0 && errno != EEXIST)
		cli_die("%s:", o->output);
	for (int i = 0; i < 2; i++) {
		pathf(path, "%s/%s.tsv", o->output, names[i]);
		if (outfile_open(&of, path, err) < 0)
			cli_die("%s", err);
		if (write_list(of.fp, s, classes, k, i == 0 ? PETSET_TRAIN : PETSET_TEST) < 0) {
			outfile_abort(&of);
			cli_die("%s: write error", path);
		}
		if (outfile_commit(&of, err) < 0)
			cli_die("%s", err);
	}
}

/* Built in a temporary folder inside DIR, then renamed to DIR/train and DIR/test, so an
 * interrupted run leaves no half layout under the final names. */
static void write_folders(const char *dir, const petset *s, const int *classes, int k)
{
	static const char *const names[] = { "", "train", "test" };
	char tmp[PATH_MAX], from[PATH_MAX], to[PATH_MAX], img[PATH_MAX];
	struct stat st;

	if (mkdir(dir, 0777) < 0 && errno != EEXIST)
		cli_die("%s:", dir);
	for (int i = 1; i <= 2; i++) {
		pathf(to, "%s/%s", dir, names[i]);
		if (lstat(to, &st) == 0)
			cli_die("%s already exists: remove it first", to);
	}
	pathf(tmp, "%s/.pet-split.XXXXXX", dir);
	if (!mkdtemp(tmp))
		cli_die("%s:", dir);
	for (int i = 1; i <= 2; i++) {
		if (mkdir(pathf(to, "%s/%s", tmp, names[i]), 0777) < 0)
			cli_die("%s:", tmp);
		for (int c = 0; c < k; c++)
			if (mkdir(pathf(to, "%s/%s/%s", tmp, names[i], s->breeds[classes[c]].name), 0777) < 0)
				cli_die("%s:", tmp);
	}
	for (size_t i = 0; i < s->nitems; i++) {
		const petset_item *it = &s->items[i];
		int c = class_of(classes, k, it->breed);
		if (c < 0 || it->split == PETSET_NONE)
			continue;
		pathf(img, "%s/images/%s", s->dir, it->file);
		pathf(from, "%s/%s/%s/%s", tmp, names[it->split], s->breeds[it->breed].name, it->file);
		if (symlink(img, from) < 0)
			cli_die("%s:", from);
	}
	for (int i = 1; i <= 2; i++) {
		pathf(from, "%s/%s", tmp, names[i]);
		pathf(to, "%s/%s", dir, names[i]);
		if (rename(from, to) < 0)
			cli_die("%s:", to);
	}
	if (rmdir(tmp) < 0)
		cli_die("%s:", tmp);
}

static void report(const struct opts *o, const petset *s, const int *classes, int k, size_t neither)
{
	if (o->quiet)
		return;
	for (int c = 0; c < k; c++) {
		size_t n[3] = { 0, 0, 0 };
		for (size_t i = 0; i < s->nitems; i++)
			if (s->items[i].breed == classes[c] && s->items[i].file)
				n[s->items[i].split]++;
		cli_warn("class %d %s: %zu train, %zu test", c, s->breeds[classes[c]].name,
			n[PETSET_TRAIN], n[PETSET_TEST]);
	}
	if (s->nmissing)
		cli_warn("%zu images in list.txt missing from images/ (skipped)", s->nmissing);
	if (s->nunlisted)
		cli_warn("%zu images not in list.txt, e.g. %s (not used)", s->nunlisted, s->unlisted[0]);
	if (s->nunusable)
		cli_warn("%zu unusable files in images/, e.g. %s (not images)", s->nunusable, s->unusable[0]);
	if (neither)
		cli_warn("%zu images in neither trainval.txt nor test.txt (not used)", neither);
}

int main(int argc, char **argv)
{
	struct opts o;
	petset s;
	char err[ERR_MAX];
	int *classes, k;
	size_t neither = 0;

	parse_args(argc, argv, &o);
	if (petset_load(&s, o.dir, err) < 0)
		cli_die("%s", err);
	if (!(classes = malloc(sizeof(int) * (size_t)s.nbreeds)))
		cli_die("out of memory");
	k = choose_classes(&o, &s, classes);
	if (o.official)
		neither = petset_split_official(&s, classes, k);
	else
		petset_split_fraction(&s, classes, k, o.test, o.seed);
	write_outputs(&o, &s, classes, k);
	if (o.folders)
		write_folders(o.folders, &s, classes, k);
	report(&o, &s, classes, k, neither);
	free(classes);
	petset_free(&s);
	return cli_close_stdout();
}
