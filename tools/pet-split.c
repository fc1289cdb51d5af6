/* pet-split: choose breeds of an extracted Oxford-IIIT Pet folder and split them into
 * train/test image lists (TSV), optionally laid out as ImageFolder symlinks. */
#include "util/cli.h"
#include "util/errmsg.h"
#include "pets/petset.h"
#include "pets/splitout.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	"not in list.txt (not used) and unusable files ('._*', .mat, non-images, FIFOs) are\n"
	"counted on stderr. The layout and the lists are made under temporary names and renamed\n"
	"into place only when all are complete: a failure leaves neither.\n"
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
	char *list = strdup(o->breeds), *save, msg[ERR_MAX] = "";
	char *given = calloc((size_t)s->nbreeds, 1);  /* per breed: already a class */
	if (!list || !given)
		cli_die("out of memory");
	for (char *t = strtok_r(list, ",", &save); t && !msg[0]; t = strtok_r(NULL, ",", &save)) {
		int b = petset_find_breed(s, t);
		if (b < 0)
			err_set(msg, "unknown breed '%s' (not in %s/annotations/list.txt)", t, s->dir);
		else if (given[b]++)
			err_set(msg, "breed '%s' given twice", t);
		else
			classes[k++] = b;
	}
	free(given);
	free(list);
	if (msg[0])
		cli_die("%s", msg);
	if (!k)
		cli_usage("--breeds: no breed given");
	return k;
}

static void report(const struct opts *o, const petset *s, const int *classes, int k, size_t neither)
{
	if (o->quiet)
		return;
	for (int c = 0; c < k; c++) {
		const petset_breed *b = &s->breeds[classes[c]];
		size_t n[3] = { 0, 0, 0 };
		for (size_t i = b->first; i < b->first + b->n; i++)
			if (s->items[i].file)
				n[s->items[i].split]++;
		cli_warn("class %d %s: %zu train, %zu test", c, b->name, n[PETSET_TRAIN], n[PETSET_TEST]);
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
	int *classes, k;
	char err[ERR_MAX];
	size_t neither = 0;

	parse_args(argc, argv, &o);
	if (petset_load(&s, o.dir, err) < 0)
		cli_die("%s", err);
	if (!(classes = malloc(sizeof *classes * (size_t)s.nbreeds)))
		cli_die("out of memory");
	k = choose_classes(&o, &s, classes);
	if (o.official)
		neither = petset_split_official(&s, classes, k);
	else if (petset_split_fraction(&s, classes, k, o.test, o.seed, err) < 0)
		cli_die("%s", err);
	if (splitout_write(&s, classes, k, &(splitout_opts){ .lists = o.output, .f = stdout, .f_name = "<stdout>",
							    .folders = o.folders }, err))
		cli_die("%s", err);
	report(&o, &s, classes, k, neither);
	free(classes);
	petset_free(&s);
	return cli_close_stdout();
}
