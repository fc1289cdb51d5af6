/* pet-synth: write a small synthetic Oxford-IIIT Pet mirror for offline demos and tests. */
#include "util/cli.h"
#include "util/outfile.h"
#include "util/errmsg.h"
#include "util/progress.h"
#include "pets/synth.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char PROG[] = "pet-synth";

static const char HELP[] =
	"Usage: pet-synth -o DIR [OPTION]...\n"
	"Write a small synthetic Oxford-IIIT Pet dataset in the real layout, quirks included.\n"
	"\n"
	"Writes DIR/images.tar.gz (images/<Breed>_<n>.jpg), DIR/annotations.tar.gz\n"
	"(annotations/README, list.txt, trainval.txt, test.txt, trimaps/, xmls/) and\n"
	"DIR/SHA256SUMS, as pet-fetch finds them on the dataset's server. Each breed has a\n"
	"look of its own (coat colours, pattern, ears, outline) on a cluttered, noisy\n"
	"background, so a small ConvNet can learn it. DIR is created if missing.\n"
	"\n"
	"Options:\n"
	"  -o, --output DIR    directory to write into (required)\n"
	"  -b, --breeds LIST   comma list of breed names, any case (default\n"
	"                      samoyed,shiba_inu,Abyssinian); --list-breeds shows all 37\n"
	"  -n, --per-breed N   images per breed, 10..100000 (default 40)\n"
	"      --min-size N    smallest width or height in pixels, 32..4096 (default 120)\n"
	"      --max-size N    largest width or height in pixels, 32..4096 (default 320)\n"
	"  -s, --seed N        seed for every random choice: same seed, same bytes (default 1)\n"
	"      --format FMT    tar.gz (default) or tar: plain tar kept under the .tar.gz names,\n"
	"                      as the real server has sent them\n"
	"      --list-breeds   print the 37 breed names (class id order) and exit\n"
	"  -q, --quiet         no progress bar\n"
	"      --progress      progress bar even when stderr is not a terminal\n"
	"  -h, --help          show this help and exit\n"
	"      --version       show the version and exit\n"
	"\n"
	"Quirks (b0, b1, b2: the breeds in the order given, wrapping; N: --per-breed):\n"
	"  images/<breed>_2.jpg  grayscale JPEG, for every breed\n"
	"  images/b0_3.jpg       a PNG under a .jpg name\n"
	"  images/b0_4.jpg       a GIF under a .jpg name\n"
	"  images/b1_5.jpg       JPEG with extraneous bytes (libjpeg warns, decodes)\n"
	"  images/b2_6.jpg       truncated JPEG\n"
	"  images/b1_7.jpg       CMYK JPEG, Adobe inverted (as Photoshop writes)\n"
	"  images/<breed>_N.jpg  on disk but not in list.txt, trainval.txt or test.txt\n"
	"  images/Abyssinian_100.mat (else b0_100.mat)  a MATLAB 5.0 MAT-file\n"
	"  images/._<breed>_1.jpg, annotations/trimaps/._<breed>_1.png  AppleDouble files\n"
	"The annotations README ends with a QUIRKS table naming these files.\n"
	"\n"
	"Example:\n"
	"  pet-synth -o data --breeds samoyed,shiba_inu --per-breed 100 --seed 7\n"
	"  cd data && sha256sum -c SHA256SUMS\n";

enum { OPT_MIN = 256, OPT_MAX, OPT_FORMAT, OPT_LIST, OPT_PROGRESS, OPT_VERSION };

struct opts {
	const char *dir;
	synth_opts s;
	enum progress_mode progress;
};

static _Noreturn void list_breeds(void)
{
	for (int i = 0; i < SYNTH_NBREEDS; i++)
		printf("%s\n", synth_breed_at(i)->name);
	exit(cli_close_stdout());
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "breeds", required_argument, NULL, 'b' },
		{ "per-breed", required_argument, NULL, 'n' },
		{ "min-size", required_argument, NULL, OPT_MIN },
		{ "max-size", required_argument, NULL, OPT_MAX },
		{ "seed", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "list-breeds", no_argument, NULL, OPT_LIST },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	char err[ERR_MAX];
	int c;

	memset(o, 0, sizeof *o);
	synth_opts_default(&o->s);
	o->progress = PROGRESS_AUTO;
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "o:b:n:s:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->dir = optarg;
			break;
		case 'b':
			o->s.nbreeds = synth_parse_breeds(optarg, o->s.breeds, err);
			if (o->s.nbreeds < 0)
				cli_usage("%s (see --list-breeds)", err);
			break;
		case 'n':
			o->s.per_breed = cli_opt_int("--per-breed", optarg, SYNTH_MIN_PER_BREED, 100000);
			break;
		case OPT_MIN:
			o->s.min_size = cli_opt_int("--min-size", optarg, 32, 4096);
			break;
		case OPT_MAX:
			o->s.max_size = cli_opt_int("--max-size", optarg, 32, 4096);
			break;
		case 's':
			o->s.seed = (uint64_t)cli_opt_i64("--seed", optarg, 0, INT64_MAX);
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "tar") && strcmp(optarg, "tar.gz"))
				cli_usage("--format: '%s' is not tar or tar.gz", optarg);
			o->s.gzip = !strcmp(optarg, "tar.gz");
			break;
		case OPT_LIST:
			list_breeds();
		case 'q':
			o->progress = PROGRESS_OFF;
			break;
		case OPT_PROGRESS:
			o->progress = PROGRESS_ON;
			break;
		case 'h':
			cli_help(HELP);
		case OPT_VERSION:
			cli_version();
		default:
			cli_try_help();
		}
	}
	if (optind < argc)
		cli_usage("unexpected argument '%s'", argv[optind]);
	if (!o->dir)
		cli_usage("-o DIR is required");
	if (o->s.min_size > o->s.max_size)
		cli_usage("--min-size %d is larger than --max-size %d", o->s.min_size, o->s.max_size);
}

static void on_progress(void *ctx, int done, int total)
{
	(void)total;
	progress_update(ctx, done, NULL);
}

int main(int argc, char **argv)
{
	struct opts o;
	char err[ERR_MAX];
	progress p;

	parse_args(argc, argv, &o);
	if (outfile_mkdirs(o.dir, err))
		cli_die("%s", err);
	progress_init(&p, "pet-synth", (int64_t)o.s.nbreeds * o.s.per_breed, 0, o.progress);
	progress_set_unit(&p, "img");
	o.s.progress = on_progress;
	o.s.progress_ctx = &p;
	if (synth_write(&o.s, o.dir, err))
		cli_die("%s", err);
	progress_end(&p);
	return cli_close_stdout();
}
