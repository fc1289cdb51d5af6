/* pet-pack: decode and resize a list of images into a dataset tensor stream
 * (images u1 [N,H,W,3], labels i8 [N], classes <U [K]). */
#include "util/cli.h"
#include "util/errmsg.h"
#include "pets/pack.h"
#include "pets/packout.h"
#include "pets/petset.h"
#include "util/progress.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char PROG[] = "pet-pack";

static const char HELP[] =
	"Usage: pet-pack [OPTION]... [IMAGE]...\n"
	"Decode and resize images into a dataset tensor stream (images, labels, classes).\n"
	"\n"
	"Reads an image list (pet-split's TSV: path<TAB>label<TAB>class, '#' lines skipped, so a\n"
	"path starting with '#' is written './#...'; a '# classes: NAME...' line first naming the\n"
	"classes) from --list or standard input, or takes IMAGE paths as arguments (label -1, no\n"
	"classes: for prediction). JPEG, PNG and GIF are told apart by their bytes; grayscale\n"
	"and CMYK become RGB; EXIF orientation is applied. Writes three .npy arrays back to\n"
	"back: images uint8 [N,H,W,3] (RGB), labels int64 [N], classes unicode [K]. Unreadable,\n"
	"truncated or corrupt files, and anything not a regular file (a FIFO, a device), are\n"
	"skipped with a line each and a count on stderr, and N counts only the images packed.\n"
	"\n"
	"  -l, --list FILE      image list to read ('-': standard input, the default without IMAGE)\n"
	"  -s, --size S|WxH     output size in pixels, 1..4096 (default 224)\n"
	"  -f, --fit MODE       stretch: whole image to the size, aspect not kept (default);\n"
	"                       crop: scale to cover the size, keep the centre;\n"
	"                       pad: scale to fit inside the size, centred on black\n"
	"  -j, --jobs N         decoding threads, 1..256 (default: all cores); the output does\n"
	"                       not depend on it\n"
	"  -o, --output FILE    write the stream to FILE ('-': standard output, the default)\n"
	"      --strict         a file that cannot be used is an error, not a skip\n"
	"      --full-decode    always decode JPEGs at full size (else a JPEG at least twice the\n"
	"                       output size is decoded at 1/2, 1/4 or 1/8 scale, as Pillow's\n"
	"                       Image.draft() does: faster, slightly different pixels)\n"
	"      --max-pixels N   skip an image of more than N pixels (width x height at full size),\n"
	"                       seen from its header before any decoding (default 33554432, 32 Mi;\n"
	"                       an image decoded whole takes up to 6 bytes a pixel in its thread)\n"
	"  -q, --quiet          no progress bar\n"
	"      --progress       progress bar even when stderr is not a terminal\n"
	"  -h, --help           show this help and exit\n"
	"      --version        show the version and exit\n"
	"\n"
	"Resizing is antialiased: a triangle filter as wide as the reduction, Pillow's\n"
	"Image.resize(size, Image.BILINEAR) in 14-bit fixed point. N is known only at the end:\n"
	"a file gets the images in place and their header last; a pipe gets it all at the end,\n"
	"staged meanwhile in a temporary file in $TMPDIR.\n"
	"\n"
	"Example:\n"
	"  pet-split data --breeds samoyed,shiba_inu -o lists\n"
	"  pet-pack --size 224 < lists/train.tsv > train.npy\n"
	"  pet-pack -s 64x48 --fit crop photo1.jpg photo2.png -o photos.npy\n";

struct opts {
	const char *list, *output;
	pack_opts pack;
	int strict;
	enum progress_mode progress;
	char **images;
	int nimages;
};

static void parse_size(const char *s, int *w, int *h)
{
	char buf[32], *x;

	if (strlen(s) >= sizeof buf)
		cli_usage("--size: expected S or WxH, not '%s'", s);
	strcpy(buf, s);
	x = strchr(buf, 'x');
	if (x)
		*x = 0;
	*w = cli_opt_int("--size", buf, 1, 4096);
	*h = x ? cli_opt_int("--size", x + 1, 1, 4096) : *w;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_STRICT = 256, OPT_FULL, OPT_MAXPIX, OPT_PROGRESS, OPT_VERSION };
	static const struct option longs[] = {
		{ "list", required_argument, NULL, 'l' },
		{ "size", required_argument, NULL, 's' },
		{ "fit", required_argument, NULL, 'f' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "strict", no_argument, NULL, OPT_STRICT },
		{ "full-decode", no_argument, NULL, OPT_FULL },
		{ "max-pixels", required_argument, NULL, OPT_MAXPIX },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	memset(o, 0, sizeof *o);
	o->output = "-";
	o->pack.w = o->pack.h = 224;
	o->pack.fit = RESIZE_STRETCH;
	o->pack.threads = cores < 1 ? 1 : cores > 256 ? 256 : (int)cores;
	o->progress = PROGRESS_AUTO;
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "l:s:f:j:o:qh", longs, NULL)) != -1) {
		switch (c) {
		case 'l': o->list = optarg; break;
		case 's': parse_size(optarg, &o->pack.w, &o->pack.h); break;
		case 'f':
			if (resize_fit_parse(optarg, &o->pack.fit) < 0)
				cli_usage("--fit: expected stretch, crop or pad, not '%s'", optarg);
			break;
		case 'j': o->pack.threads = cli_opt_int("--jobs", optarg, 1, 256); break;
		case 'o': o->output = optarg; break;
		case OPT_STRICT: o->strict = 1; break;
		case OPT_FULL: o->pack.full_decode = 1; break;
		case OPT_MAXPIX: o->pack.max_pixels = cli_opt_i64("--max-pixels", optarg, 1, (int64_t)1 << 40); break;
		case 'q': o->progress = PROGRESS_OFF; break;
		case OPT_PROGRESS: o->progress = PROGRESS_ON; break;
		case 'h': cli_help(HELP);
		case OPT_VERSION: cli_version();
		default: cli_try_help();
		}
	}
	o->images = argv + optind;
	o->nimages = argc - optind;
	if (o->list && o->nimages)
		cli_usage("give a --list or IMAGE arguments, not both");
	if (!o->list && !o->nimages)
		o->list = "-";
	if (!strcmp(o->output, "-") && isatty(STDOUT_FILENO))
		cli_usage("refusing to write a binary stream to a terminal: use -o FILE or a pipe");
}

static void load_list(const struct opts *o, petset_list *l)
{
	char err[ERR_MAX];
	FILE *f;

	if (!o->list) {
		memset(l, 0, sizeof *l);
		for (int i = 0; i < o->nimages; i++)
			if (petset_list_add(l, o->images[i], -1, err) < 0)
				cli_die("%s", err);
		return;
	}
	f = strcmp(o->list, "-") ? fopen(o->list, "r") : stdin;
	if (!f)
		cli_die("%s:", o->list);
	if (petset_list_read(f, strcmp(o->list, "-") ? o->list : "<stdin>", l, err) < 0)
		cli_die("%s", err);
	if (f != stdin)
		fclose(f);
	if (!l->n)
		cli_die("%s: no images listed", strcmp(o->list, "-") ? o->list : "<stdin>");
}

struct run {
	const struct opts *o;
	const petset_list *l;
	packout out;
	size_t skipped;
	progress bar;
};

/* nothing written: the temporary removed, or stdout's file cut back to where it was */
static _Noreturn void fail(struct run *r, const char *msg)
{
	char err[ERR_MAX];

	if (packout_abort(&r->out, err) < 0)
		cli_warn("%s", err);
	cli_die("%s", msg);
}

static int on_image(void *ctx, size_t i, const uint8_t *pix, const char *msg, char *err)
{
	struct run *r = ctx;

	if (!pix) {
		if (r->o->strict)
			return err_set(err, "%s", msg);
		/* over the bar's line, which the next update redraws below */
		fprintf(stderr, "%s%s: skipped %s\n", r->bar.enabled ? "\r\033[K" : "", PROG, msg);
		r->skipped++;
	} else if (packout_add(&r->out, pix, r->l->e[i].label, err) < 0) {
		return -1;
	}
	progress_update(&r->bar, (int64_t)i + 1, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	petset_list l;
	struct run r = { 0 };
	char err[ERR_MAX];
	const char **paths;

	parse_args(argc, argv, &o);
	load_list(&o, &l);
	r.o = &o;
	r.l = &l;
	if (!(paths = malloc(sizeof *paths * l.n)))
		cli_die("out of memory");
	for (size_t i = 0; i < l.n; i++)
		paths[i] = l.e[i].path;
	if (packout_open(&r.out, o.output, o.pack.w, o.pack.h, l.n, err) < 0)
		cli_die("%s", err);
	progress_init(&r.bar, PROG, (int64_t)l.n, 0, o.progress);
	progress_set_unit(&r.bar, "img");
	if (pack_run(paths, l.n, &o.pack, on_image, &r, err) < 0)
		fail(&r, err);
	progress_end(&r.bar);
	if (r.skipped)
		cli_warn("%zu of %zu images skipped", r.skipped, l.n);
	if (!r.out.packed)
		fail(&r, "no image could be packed: nothing written");
	if (packout_finish(&r.out, (const char *const *)l.classes, l.nclasses, err) < 0)
		fail(&r, err);
	free(paths);
	petset_list_free(&l);
	return cli_close_stdout();
}
