/* cnn-apply: one operation (gray, conv, max-pool, a trained layer, augmentation) over an
 * image stream. */
#include "img/augment.h"
#include "nn/apply.h"
#include "onnx/onnx_load.h"
#include "util/cli.h"
#include "util/errmsg.h"
#include "util/outfile.h"
#include "util/progress.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char PROG[] = "cnn-apply";
static const char HELP[] =
	"Usage: cnn-apply OPERATION [OPTION]... [FILE]\n"
	"Apply one operation (gray, conv, max-pool, a trained layer, augmentation) to images.\n"
	"\n"
	"Reads a .npy stream (a dataset stream, or any arrays of images [N, H, W, C] or\n"
	"[H, W, C] of any numeric dtype) from FILE, or standard input when FILE is - or absent,\n"
	"and writes one float32 array per image array: [N, H', W', C'] (or [H', W', C']).\n"
	"String and 1-d arrays (a dataset stream's labels and classes) are dropped, so the\n"
	"output holds only images and chains into another cnn-apply or tensor-png.\n"
	"\n"
	"Operations (exactly one):\n"
	"  --augment SPEC       cnn-train's augmentation (cnn-train --help): --copies N copies\n"
	"                       of each uint8 image [N, H, W, 3], copy c of image i (row\n"
	"                       i * N + c) what training with --seed S feeds for image i at\n"
	"                       epoch c; uint8 out, labels repeated, classes kept, so a\n"
	"                       dataset stream stays one\n"
	"  --gray               mean over the channels (C' = 1), in the input's own scale\n"
	"                       (0..255 for uint8 images)\n"
	"  --conv FILTERS.npy   convolution with a filter bank [kh, kw, cin, cout] (TensorFlow's\n"
	"                       conv2d layout, f4 or f8), no bias: C' = cout\n"
	"  --maxpool K          max over K x K windows (padding never wins): C' = C\n"
	"  --layer NAME         the feature maps of layer NAME (conv1_1, conv1_2, pool1, ...)\n"
	"                       of the model in -m: uint8 images the model's size, scaled by the\n"
	"                       model itself as in training (no dropout); a dense layer gives\n"
	"                       [N, 1, 1, units] (softmax: the logits)\n"
	"\n"
	"Options:\n"
	"  -m, --model FILE     checkpoint (.npz) or ONNX model (.onnx) for --layer\n"
	"  -s, --stride S       window step for --conv (default 1) and --maxpool (default K)\n"
	"  -p, --padding P      SAME (default) or VALID, as TensorFlow defines them: SAME gives\n"
	"                       ceil(in / S) outputs, padding by (out - 1) * S + k - in of which\n"
	"                       the extra odd pixel goes at the bottom/right; VALID gives\n"
	"                       ceil((in - k + 1) / S) outputs, no padding\n"
	"  -i, --index I        only image I of each array (the output keeps a batch of 1)\n"
	"  -n, --copies N       copies per image for --augment (default 1)\n"
	"      --seed S         seed for --augment (default 1, cnn-train's)\n"
	"  -o, --output FILE    write here (atomically) instead of standard output\n"
	"  -q, --quiet          no progress on stderr\n"
	"      --progress       progress on stderr even when it is not a terminal\n"
	"  -h, --help           show this help and exit\n"
	"      --version        show the version and exit\n"
	"\n"
	"Example:\n"
	"  cnn-apply --gray test.npy | cnn-apply --conv pipelines/filters7x7.npy | tensor-png > maps.png\n"
	"  cnn-apply --maxpool 2 --padding VALID maps.npy > pooled.npy\n"
	"  cnn-apply --layer conv1_2 -m model.npz --index 0 test.npy | tensor-png -o conv1_2.png\n"
	"  cnn-apply --augment flip,scale:0.5-1,rotate:15 --copies 8 train.npy | tensor-png --cols 8 > aug.png\n";

#define LAYER_BATCH 4

struct opts {
	int nops;
	enum apply_op op;
	const char *filters, *model, *layer, *input, *output;
	int k, stride;          /* stride 0: the operation's default */
	int padding_given;
	geom_pad pad;
	int64_t index;          /* -1: every image */
	int augment, copies, seed_given;   /* --augment (spec in aug), --copies, --seed */
	int64_t seed;
	aug_spec aug;
	enum progress_mode pm;
};

static void set_op(struct opts *o, enum apply_op op)
{
	o->op = op;
	o->nops++;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_GRAY = 256, OPT_CONV, OPT_MAXPOOL, OPT_LAYER, OPT_PROGRESS, OPT_VERSION, OPT_AUGMENT,
	       OPT_SEED };
	static const struct option longopts[] = {
		{ "gray", no_argument, NULL, OPT_GRAY },
		{ "conv", required_argument, NULL, OPT_CONV },
		{ "maxpool", required_argument, NULL, OPT_MAXPOOL },
		{ "layer", required_argument, NULL, OPT_LAYER },
		{ "augment", required_argument, NULL, OPT_AUGMENT },
		{ "copies", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "model", required_argument, NULL, 'm' },
		{ "stride", required_argument, NULL, 's' },
		{ "padding", required_argument, NULL, 'p' },
		{ "index", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	char err[ERR_MAX];
	int c;

	memset(o, 0, sizeof *o);
	o->index = -1;
	o->seed = 1;
	o->pm = PROGRESS_AUTO;
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "m:s:p:i:n:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_GRAY:
			set_op(o, APPLY_GRAY);
			break;
		case OPT_CONV:
			set_op(o, APPLY_CONV);
			o->filters = optarg;
			break;
		case OPT_MAXPOOL:
			set_op(o, APPLY_MAXPOOL);
			o->k = cli_opt_int("--maxpool", optarg, 1, 65536);
			break;
		case OPT_LAYER:
			set_op(o, APPLY_LAYER);
			o->layer = optarg;
			break;
		case OPT_AUGMENT:
			o->nops++;
			o->augment = 1;
			if (aug_parse(&o->aug, optarg, err))
				cli_usage("--augment: %s", err);
			break;
		case 'n':
			o->copies = cli_opt_int("--copies", optarg, 1, 10000);
			break;
		case OPT_SEED:
			o->seed = cli_opt_i64("--seed", optarg, 0, INT64_MAX);
			o->seed_given = 1;
			break;
		case 'm':
			o->model = optarg;
			break;
		case 's':
			o->stride = cli_opt_int("--stride", optarg, 1, 65536);
			break;
		case 'p':
			if (!strcasecmp(optarg, "same"))
				o->pad = GEOM_SAME;
			else if (!strcasecmp(optarg, "valid"))
				o->pad = GEOM_VALID;
			else
				cli_usage("--padding: '%s' is neither SAME nor VALID", optarg);
			o->padding_given = 1;
			break;
		case 'i':
			o->index = cli_opt_i64("--index", optarg, 0, INT64_MAX);
			break;
		case 'o':
			o->output = optarg;
			break;
		case 'q':
			o->pm = PROGRESS_OFF;
			break;
		case OPT_PROGRESS:
			o->pm = PROGRESS_ON;
			break;
		case 'h':
			cli_help(HELP);
		case OPT_VERSION:
			cli_version();
		default:
			cli_try_help();
		}
	}
	if (o->nops != 1)
		cli_usage("give exactly one of --gray, --conv, --maxpool, --layer, --augment");
	if ((o->copies || o->seed_given) && !o->augment)
		cli_usage("--copies and --seed go with --augment");
	if (o->augment && o->index >= 0)
		cli_usage("--index does not go with --augment");
	if (!o->copies)
		o->copies = 1;
	if ((o->op == APPLY_LAYER) != (o->model != NULL))
		cli_usage("--layer and -m/--model go together");
	if ((o->stride || o->padding_given) && o->op != APPLY_CONV && o->op != APPLY_MAXPOOL)
		cli_usage("--stride and --padding apply to --conv and --maxpool only");
	if (argc - optind > 1)
		cli_usage("one input file at most");
	o->input = optind < argc ? argv[optind] : "-";
}

/* A bar per image array, drawn from apply's reports (see apply_progress_fn). */
typedef struct {
	enum progress_mode mode;
	progress bar;
} bar_ctx;

static int draw_progress(void *ctx, int64_t done, int64_t total)
{
	bar_ctx *b = ctx;

	if (done == 0) {
		progress_init(&b->bar, PROG, total, 0, b->mode);
		progress_set_unit(&b->bar, "img");
	} else {
		progress_update(&b->bar, done, NULL);
	}
	if (done == total)
		progress_end(&b->bar);
	return 0;
}

static int init_op(apply *a, const struct opts *o, char *err)
{
	switch (o->op) {
	case APPLY_GRAY:
		apply_init_gray(a);
		return 0;
	case APPLY_CONV:
		return apply_init_conv(a, o->filters, o->stride ? o->stride : 1, o->pad, err);
	case APPLY_MAXPOOL:
		return apply_init_maxpool(a, o->k, o->stride ? o->stride : o->k, o->pad, err);
	case APPLY_LAYER:
		if (model_path_is_onnx(o->model)) {
			model m;

			if (onnx_load_model(o->model, NULL, &m, LAYER_BATCH, 0, NULL, err))
				return -1;
			return apply_init_layer_model(a, &m, o->model, o->layer, err);
		}
		return apply_init_layer(a, o->model, o->layer, LAYER_BATCH, err);
	}
	return err_set(err, "unknown operation");
}

int main(int argc, char **argv)
{
	struct opts o;
	char err[ERR_MAX];
	const char *inname;
	FILE *in;
	apply a;
	outfile out;
	int64_t n;
	bar_ctx bar;
	int rc;

	parse_args(argc, argv, &o);
	inname = strcmp(o.input, "-") ? o.input : "<stdin>";
	in = strcmp(o.input, "-") ? fopen(o.input, "rb") : stdin;
	if (!in)
		cli_die("%s: cannot open:", o.input);
	if (!o.augment && init_op(&a, &o, err))
		cli_die("%s", err);
	bar.mode = o.pm;
	if (!o.augment)
		apply_set_progress(&a, draw_progress, &bar);
	if (outfile_open(&out, o.output, err))
		cli_die("%s", err);
	rc = o.augment ? aug_stream(&o.aug, in, inname, out.fp, o.output ? o.output : "<stdout>", o.copies,
				    (uint64_t)o.seed, 2, &n, err)
		       : apply_stream(&a, in, inname, out.fp, o.output ? o.output : "<stdout>", o.index, &n, err);
	if (rc) {
		outfile_abort(&out);
		if (rc == -2)
			cli_usage("--augment: %s", err);
		cli_die("%s", err);
	}
	if (outfile_commit(&out, err))
		cli_die("%s", err);
	if (!o.augment)
		apply_free(&a);
	if (in != stdin)
		fclose(in);
	return cli_close_stdout() ? CLI_FAIL : CLI_OK;
}
