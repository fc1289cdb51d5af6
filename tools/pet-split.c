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

/* The chosen classes: breed indices and their names, in label order. */
struct classes {
	int *breed, k;
	const char **name;
};

/* Rows of one split (or both, with the split column, when split is PETSET_NONE). */
static int write_list(FILE *f, const char *name, const petset *s, const struct classes *cl, int split,
		      char *err)
{
	char path[PATH_MAX];
	petset_writer w;

	if (petset_list_write_start(&w, f, name, cl->name, cl->k, split == PETSET_NONE, err) < 0)
		return -1;
	for (int c = 0; c < cl->k; c++) {
		const petset_breed *b = &s->breeds[cl->breed[c]];
		for (size_t i = b->first; i < b->first + b->n; i++) {
			const petset_item *it = &s->items[i];
			if (it->split == PETSET_NONE || (split && it->split != split))
				continue;
			pathf(path, "%s/images/%s", s->dir, it->file);
			if (petset_list_write_row(&w, path, c,
						  split ? NULL : it->split == PETSET_TEST ? "test" : "train", err) < 0)
				return -1;
		}
	}
	return 0;
}

/* Everything that may fail is done before anything takes a final name: the layout is built
 * under a temporary name, the lists go to temporary files, and only then are they renamed
 * into place. A folder this run created is removed again on failure. */
struct out {
	const struct opts *o;
	const petset *s;
	const struct classes *cl;
	char tmp[PATH_MAX];      /* the layout being built, "" when none */
	int made_output, made_folders;
	outfile lists[2];
	int nlists;
};

static const char *const split_name[] = { "", "train", "test" };

/* Undoes prepare_folders, however far it got (what is missing fails harmlessly). */
static void remove_layout(struct out *u)
{
	const petset *s = u->s;
	char path[PATH_MAX];

	for (int c = 0; c < u->cl->k; c++) {
		const petset_breed *b = &s->breeds[u->cl->breed[c]];
		for (size_t i = b->first; i < b->first + b->n; i++)
			if (s->items[i].split != PETSET_NONE) {
				pathf(path, "%s/%s/%s/%s", u->tmp, split_name[s->items[i].split], b->name,
				      s->items[i].file);
				unlink(path);
			}
		for (int i = 1; i <= 2; i++)
			rmdir(pathf(path, "%s/%s/%s", u->tmp, split_name[i], b->name));
	}
	for (int i = 1; i <= 2; i++)
		rmdir(pathf(path, "%s/%s", u->tmp, split_name[i]));
	rmdir(u->tmp);
}

static _Noreturn void fail(struct out *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static _Noreturn void fail(struct out *u, const char *fmt, ...)
{
	char msg[ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (int i = 0; i < u->nlists; i++)
		outfile_abort(&u->lists[i]);
	if (u->tmp[0])
		remove_layout(u);
	if (u->made_folders)
		rmdir(u->o->folders);
	if (u->made_output)
		rmdir(u->o->output);
	cli_die("%s", msg);
}

/* mkdir that says whether it made the folder. */
static int make_dir(const char *dir, int *made)
{
	*made = mkdir(dir, 0777) == 0;
	return *made || errno == EEXIST ? 0 : -1;
}

/* Builds DIR/.pet-split.XXXXXX/{train,test}/<class>/ with symbolic links to the images. */
static void prepare_folders(struct out *u, const petset *s, const struct classes *cl)
{
	const char *dir = u->o->folders;
	char path[PATH_MAX], img[PATH_MAX], made[PATH_MAX];
	struct stat st;

	if (make_dir(dir, &u->made_folders) < 0)
		fail(u, "%s: %s", dir, strerror(errno));
	for (int i = 1; i <= 2; i++)
		if (lstat(pathf(path, "%s/%s", dir, split_name[i]), &st) == 0)
			fail(u, "%s already exists: remove it first", path);
	pathf(made, "%s/.pet-split.XXXXXX", dir);
	if (!mkdtemp(made))
		fail(u, "%s: %s", dir, strerror(errno));
	memcpy(u->tmp, made, sizeof made);
	for (int i = 1; i <= 2; i++) {
		if (mkdir(pathf(path, "%s/%s", u->tmp, split_name[i]), 0777) < 0)
			fail(u, "%s: %s", path, strerror(errno));
		for (int c = 0; c < cl->k; c++)
			if (mkdir(pathf(path, "%s/%s/%s", u->tmp, split_name[i], cl->name[c]), 0777) < 0)
				fail(u, "%s: %s", path, strerror(errno));
	}
	for (int c = 0; c < cl->k; c++) {
		const petset_breed *b = &s->breeds[cl->breed[c]];
		for (size_t i = b->first; i < b->first + b->n; i++) {
			const petset_item *it = &s->items[i];
			if (it->split == PETSET_NONE)
				continue;
			pathf(img, "%s/images/%s", s->dir, it->file);
			pathf(path, "%s/%s/%s/%s", u->tmp, split_name[it->split], b->name, it->file);
			if (symlink(img, path) < 0)
				fail(u, "%s: %s", path, strerror(errno));
		}
	}
}

/* The lists: stdout, or DIR/train.tsv and DIR/test.tsv written to temporary files. */
static void write_lists(struct out *u, const petset *s, const struct classes *cl)
{
	char err[ERR_MAX], path[PATH_MAX];

	if (!u->o->output) {
		if (write_list(stdout, "<stdout>", s, cl, PETSET_NONE, err) < 0)
			fail(u, "%s", err);
		return;
	}
	if (make_dir(u->o->output, &u->made_output) < 0)
		fail(u, "%s: %s", u->o->output, strerror(errno));
	for (int i = 0; i < 2; i++) {
		pathf(path, "%s/%s.tsv", u->o->output, split_name[i + 1]);
		if (outfile_open(&u->lists[i], path, err) < 0)
			fail(u, "%s", err);
		u->nlists++;
		if (write_list(u->lists[i].fp, path, s, cl, i + 1, err) < 0)
			fail(u, "%s", err);
	}
}

/* The final names, last. */
static void commit(struct out *u)
{
	char err[ERR_MAX], from[PATH_MAX], to[PATH_MAX];

	for (int i = 0; i < u->nlists; i++)
		if (outfile_commit(&u->lists[i], err) < 0) {
			u->nlists = 0;  /* committed or removed already */
			fail(u, "%s", err);
		}
	u->nlists = 0;
	if (!u->tmp[0])
		return;
	for (int i = 1; i <= 2; i++) {
		pathf(from, "%s/%s", u->tmp, split_name[i]);
		pathf(to, "%s/%s", u->o->folders, split_name[i]);
		if (rename(from, to) < 0) {
			int e = errno;
			if (i == 2)  /* back into the temporary folder, which fail() removes */
				rename(pathf(to, "%s/%s", u->o->folders, split_name[1]),
				       pathf(from, "%s/%s", u->tmp, split_name[1]));
			fail(u, "%s: %s", to, strerror(e));
		}
	}
	if (rmdir(u->tmp) < 0)
		cli_die("%s:", u->tmp);
}

static void report(const struct opts *o, const petset *s, const struct classes *cl, size_t neither)
{
	if (o->quiet)
		return;
	for (int c = 0; c < cl->k; c++) {
		const petset_breed *b = &s->breeds[cl->breed[c]];
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
	struct out u;
	struct classes cl;
	petset s;
	char err[ERR_MAX];
	size_t neither = 0;

	parse_args(argc, argv, &o);
	if (petset_load(&s, o.dir, err) < 0)
		cli_die("%s", err);
	cl.breed = malloc(sizeof *cl.breed * (size_t)s.nbreeds);
	cl.name = malloc(sizeof *cl.name * (size_t)s.nbreeds);
	if (!cl.breed || !cl.name)
		cli_die("out of memory");
	cl.k = choose_classes(&o, &s, cl.breed);
	for (int c = 0; c < cl.k; c++)
		cl.name[c] = s.breeds[cl.breed[c]].name;
	if (o.official)
		neither = petset_split_official(&s, cl.breed, cl.k);
	else if (petset_split_fraction(&s, cl.breed, cl.k, o.test, o.seed, err) < 0)
		cli_die("%s", err);
	memset(&u, 0, sizeof u);
	u.o = &o;
	u.s = &s;
	u.cl = &cl;
	if (o.folders)
		prepare_folders(&u, &s, &cl);
	write_lists(&u, &s, &cl);
	commit(&u);
	report(&o, &s, &cl, neither);
	free(cl.breed);
	free(cl.name);
	petset_free(&s);
	return cli_close_stdout();
}
