/* cnn-apply: one operation (gray, conv, max-pool, a trained layer, why a model decides,
 * augmentation) over an image stream; or a model's filters, or an input that maximises a
 * channel. */
#include "array/npy.h"
#include "img/augment.h"
#include "nn/apply.h"
#include "nn/blas.h"
#include "nn/explain.h"
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
	"Apply one operation (gray, convolution, max-pool, a trained layer, a map of why a model\n"
	"decides, augmentation) to an image stream; or show a model's filters or what excites a\n"
	"channel.\n"
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
	"Why the model in -m decides (uint8 images its size; one map per image, C' = 1).\n"
	"TARGET is pred (the predicted class), label (each image's label: the stream must be\n"
	"a dataset stream), a class name or a class index; logits are pre-softmax scores:\n"
	"  --gradcam TARGET     Grad-CAM: ReLU(sum_k alpha_k A_k), A the output of --layer NAME\n"
	"                       (default: the last convolution before the dense part),\n"
	"                       alpha_k the mean over positions of d logit / d A_k; upsampled\n"
	"                       bilinearly (half-pixel centres, as PyTorch's interpolate with\n"
	"                       align_corners=False) to H x W, or the layer's size with\n"
	"                       --no-upsample\n"
	"  --saliency TARGET    max over channels of |d logit / d x|, x the model's normalised\n"
	"                       input; --smoothgrad N[,SIGMA]: the mean over N copies of x plus\n"
	"                       normal noise of SIGMA (default 0.15) times the input's range\n"
	"  --occlusion TARGET   the target's probability with a P x P patch of grey (pixel\n"
	"                       value 128 before normalisation) at each position, its top-left\n"
	"                       corner every S pixels: [N, ceil(H/S), ceil(W/S), 1]; needs\n"
	"                       --patch P, --stride S (default P)\n"
	"\n"
	"Without input (one array out, to standard output or -o):\n"
	"  --weights NAME       the filters of convolution NAME in -m: f4 [COUT, KH, KW, CIN]\n"
	"                       (images for tensor-png, RGB when CIN is 3)\n"
	"  --maximize LAYER:CH  an image that maximises the mean of channel CH of LAYER's\n"
	"                       output (Olah et al.'s feature visualisation: gradient ascent on\n"
	"                       the pixels with random jitter and a blur every 4 steps): u1\n"
	"                       [1, H, W, 3], H x W the model's input\n"
	"\n"
	"Options:\n"
	"  -m, --model FILE     checkpoint (.npz) or ONNX model (.onnx)\n"
	"      --layer NAME     with --gradcam: the layer it weights\n"
	"      --no-upsample    --gradcam at the layer's resolution\n"
	"      --smoothgrad N[,SIGMA]  --saliency averaged over N noisy copies\n"
	"      --patch P        --occlusion's patch size\n"
	"      --steps N        --maximize's gradient steps (default 256)\n"
	"      --lr X           --maximize's step: pixels (0..1) move X on average (default 0.02)\n"
	"      --seed S         --smoothgrad's noise, --maximize's start and jitter, --augment's\n"
	"                       draws (default 1, cnn-train's)\n"
	"  -s, --stride S       window step for --conv (default 1), --maxpool (default K) and\n"
	"                       --occlusion (default P)\n"
	"  -p, --padding P      SAME (default) or VALID, as TensorFlow defines them: SAME gives\n"
	"                       ceil(in / S) outputs, padding by (out - 1) * S + k - in of which\n"
	"                       the extra odd pixel goes at the bottom/right; VALID gives\n"
	"                       ceil((in - k + 1) / S) outputs, no padding\n"
	"  -i, --index I        only image I of each array (the output keeps a batch of 1)\n"
	"  -n, --copies N       copies per image for --augment (default 1)\n"
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
	"  cnn-apply --gradcam pred -m model.npz test.npy | tensor-png --overlay test.npy > cam.png\n"
	"  cnn-apply --weights conv1_1 -m model.npz | tensor-png > filters.png\n"
	"  cnn-apply --maximize conv2_2:5 -m model.npz | tensor-png > conv2_2-5.png\n"
	"  cnn-apply --augment flip,scale:0.5-1,rotate:15 --copies 8 train.npy | tensor-png --cols 8 > aug.png\n";

#define LAYER_BATCH 4
/* images (or occluded copies, or noisy copies) through the model at once */
#define EXPLAIN_BATCH 8

/* the operations that read no images */
enum { OP_WEIGHTS = APPLY_OCCLUSION + 1, OP_MAXIMIZE };

struct opts {
	int nops;
	int op;                 /* an apply_op or OP_WEIGHTS, OP_MAXIMIZE */
	const char *filters, *model, *layer, *input, *output;
	const char *target;     /* --gradcam, --saliency, --occlusion */
	const char *name;       /* --weights NAME, --maximize LAYER (its :CH cut off) */
	char maxlayer[MODEL_NAME_MAX];
	int channel;            /* --maximize */
	int no_upsample, patch, sg_n, steps, steps_given, lr_given, seed_given;
	double sg_sigma, lr;
	uint64_t seed;
	int k, stride;          /* stride 0: the operation's default */
	int padding_given;
	geom_pad pad;
	int64_t index;          /* -1: every image */
	int augment, copies;    /* --augment (spec in aug), --copies */
	aug_spec aug;
	enum progress_mode pm;
};

static void set_op(struct opts *o, int op)
{
	o->op = op;
	o->nops++;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_GRAY = 256, OPT_CONV, OPT_MAXPOOL, OPT_LAYER, OPT_PROGRESS, OPT_VERSION,
	       OPT_GRADCAM, OPT_SALIENCY, OPT_OCCLUSION, OPT_WEIGHTS, OPT_MAXIMIZE, OPT_NOUP,
	       OPT_SMOOTH, OPT_PATCH, OPT_STEPS, OPT_LR, OPT_SEED, OPT_AUGMENT };
	static const struct option longopts[] = {
		{ "gradcam", required_argument, NULL, OPT_GRADCAM },
		{ "saliency", required_argument, NULL, OPT_SALIENCY },
		{ "occlusion", required_argument, NULL, OPT_OCCLUSION },
		{ "weights", required_argument, NULL, OPT_WEIGHTS },
		{ "maximize", required_argument, NULL, OPT_MAXIMIZE },
		{ "no-upsample", no_argument, NULL, OPT_NOUP },
		{ "smoothgrad", required_argument, NULL, OPT_SMOOTH },
		{ "patch", required_argument, NULL, OPT_PATCH },
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "lr", required_argument, NULL, OPT_LR },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "gray", no_argument, NULL, OPT_GRAY },
		{ "conv", required_argument, NULL, OPT_CONV },
		{ "maxpool", required_argument, NULL, OPT_MAXPOOL },
		{ "layer", required_argument, NULL, OPT_LAYER },
		{ "augment", required_argument, NULL, OPT_AUGMENT },
		{ "copies", required_argument, NULL, 'n' },
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
	int c, layer_op = 0;
	char *colon;

	memset(o, 0, sizeof *o);
	o->sg_sigma = 0.15;
	o->seed = 1;
	o->index = -1;
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
			/* an operation alone, else --gradcam's layer */
			layer_op = 1;
			o->layer = optarg;
			break;
		case OPT_GRADCAM:
		case OPT_SALIENCY:
		case OPT_OCCLUSION:
			set_op(o, c == OPT_GRADCAM ? APPLY_GRADCAM : c == OPT_SALIENCY ? APPLY_SALIENCY : APPLY_OCCLUSION);
			o->target = optarg;
			break;
		case OPT_WEIGHTS:
			set_op(o, OP_WEIGHTS);
			o->name = optarg;
			break;
		case OPT_MAXIMIZE:
			set_op(o, OP_MAXIMIZE);
			colon = strrchr(optarg, ':');
			if (!colon || colon == optarg || (size_t)(colon - optarg) >= sizeof o->maxlayer)
				cli_usage("--maximize: '%s' is not LAYER:CHANNEL", optarg);
			memcpy(o->maxlayer, optarg, (size_t)(colon - optarg));
			o->maxlayer[colon - optarg] = 0;
			o->name = o->maxlayer;
			o->channel = cli_opt_int("--maximize's channel", colon + 1, 0, 1 << 20);
			break;
		case OPT_NOUP:
			o->no_upsample = 1;
			break;
		case OPT_SMOOTH:
			colon = strchr(optarg, ',');
			if (colon)
				*colon = 0;
			o->sg_n = cli_opt_int("--smoothgrad", optarg, 1, 1 << 20);
			if (colon)
				o->sg_sigma = cli_opt_double("--smoothgrad's sigma", colon + 1, 0, 100);
			break;
		case OPT_PATCH:
			o->patch = cli_opt_int("--patch", optarg, 1, 65536);
			break;
		case OPT_STEPS:
			o->steps = cli_opt_int("--steps", optarg, 0, 1 << 24);
			o->steps_given = 1;
			break;
		case OPT_LR:
			o->lr = cli_opt_double("--lr", optarg, 0, 1e6);
			o->lr_given = 1;
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
			o->seed = (uint64_t)cli_opt_i64("--seed", optarg, 0, INT64_MAX);
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
	if (layer_op && o->nops == 0)
		set_op(o, APPLY_LAYER);
	if (o->nops != 1)
		cli_usage("give exactly one of --gray, --conv, --maxpool, --layer, --gradcam, --saliency, --occlusion, --weights, --maximize, --augment");
	if (o->copies && !o->augment)
		cli_usage("--copies goes with --augment");
	if (o->augment && o->index >= 0)
		cli_usage("--index does not go with --augment");
	if (!o->copies)
		o->copies = 1;
	if (layer_op && o->op != APPLY_LAYER && o->op != APPLY_GRADCAM)
		cli_usage("--layer is an operation, or --gradcam's layer");
	if (!o->augment && (o->op >= APPLY_LAYER) != (o->model != NULL))
		cli_usage("-m/--model goes with --layer, --gradcam, --saliency, --occlusion, --weights, --maximize");
	if (o->augment && o->model)
		cli_usage("-m/--model does not go with --augment");
	if (o->padding_given && o->op != APPLY_CONV && o->op != APPLY_MAXPOOL)
		cli_usage("--padding applies to --conv and --maxpool only");
	if (o->stride && o->op != APPLY_CONV && o->op != APPLY_MAXPOOL && o->op != APPLY_OCCLUSION)
		cli_usage("--stride applies to --conv, --maxpool and --occlusion only");
	if (o->no_upsample && o->op != APPLY_GRADCAM)
		cli_usage("--no-upsample applies to --gradcam only");
	if (o->sg_n && o->op != APPLY_SALIENCY)
		cli_usage("--smoothgrad applies to --saliency only");
	if ((o->patch != 0) != (o->op == APPLY_OCCLUSION && !o->augment))
		cli_usage("--occlusion and --patch go together");
	if ((o->steps_given || o->lr_given) && o->op != OP_MAXIMIZE)
		cli_usage("--steps and --lr apply to --maximize only");
	if (o->seed_given && !o->augment && o->op != OP_MAXIMIZE && !o->sg_n)
		cli_usage("--seed applies to --maximize, --smoothgrad and --augment only");
	if (argc - optind > 1)
		cli_usage("one input file at most");
	if (argc - optind == 1 && o->op >= OP_WEIGHTS)
		cli_usage("--weights and --maximize read no images");
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

/* -m's model (checkpoint or ONNX, at its own size) for batches of max_batch, with its class
 * names into classes. */
static int load_model(const struct opts *o, model *m, int max_batch, tensor *classes, char *err)
{
	ckpt_state st;

	return model_load_any(o->model, 0, 0, m, max_batch, 0, classes, &st, err);
}

static int init_explain(apply *a, const struct opts *o, char *err)
{
	explain ex = { .upsample = !o->no_upsample, .sg_n = o->sg_n, .sg_sigma = (float)o->sg_sigma,
		       .seed = o->seed, .patch = o->patch, .stride = o->stride ? o->stride : o->patch,
		       .layer = -1 };
	tensor classes;
	model m;
	char e[ERR_MAX];

	if (load_model(o, &m, EXPLAIN_BATCH, &classes, err))
		return -1;
	if (explain_target_parse(o->target, &classes, &ex.target, e) ||
	    (o->op == APPLY_GRADCAM && explain_gradcam_layer(&m, o->layer, o->model, &ex.layer, e))) {
		tensor_free(&classes);
		model_free(&m);
		/* explain_gradcam_layer's messages name the model already */
		return strncmp(e, o->model, strlen(o->model)) ? err_set(err, "%s: %s", o->model, e)
							      : err_set(err, "%s", e);
	}
	tensor_free(&classes);
	return apply_init_explain(a, o->op, &m, o->model, &ex, err);
}

static int init_op(apply *a, const struct opts *o, char *err)
{
	switch (o->op) {
	case APPLY_GRADCAM:
	case APPLY_SALIENCY:
	case APPLY_OCCLUSION:
		return init_explain(a, o, err);
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

/* --weights, --maximize: one array from the model alone into t (caller frees). */
static int model_op(const struct opts *o, tensor *t, char *err)
{
	tensor classes;
	model m;
	explain_max_opts mo;
	int layer, rc = -1;
	double act;

	if (load_model(o, &m, 1, &classes, err))
		return -1;
	tensor_free(&classes);
	if (o->op == OP_WEIGHTS) {
		rc = explain_weights(&m, o->name, o->model, t, err);
		model_free(&m);
		return rc;
	}
	explain_max_defaults(&mo, m.h, m.w);
	if (o->steps_given)
		mo.steps = o->steps;
	if (o->lr_given)
		mo.lr = (float)o->lr;
	mo.seed = o->seed;
	layer = model_find_layer(&m, o->name);
	if (layer < 0)
		err_set(err, "%s: no layer named '%s'", o->model, o->name);
	else if (o->channel >= m.layer[layer].oc)
		err_set(err, "%s: layer %s has %d channels, there is no channel %d", o->model, o->name,
			m.layer[layer].oc, o->channel);
	else if (m.c != 3)
		err_set(err, "%s: the model takes %d channels, not RGB images", o->model, m.c);
	else if (!model_grad_init(&m, err) &&
		 !tensor_alloc(t, DT_U1, 4, (const int64_t[]){ 1, m.h, m.w, 3 }, 0, err))
		rc = explain_maximize(&m, layer, o->channel, &mo, t->data, &act, err);
	model_free(&m);
	return rc;
}

static int write_one(const struct opts *o, const tensor *t, char *err)
{
	outfile out;

	if (outfile_open(&out, o->output, err))
		return -1;
	if (npy_write(out.fp, o->output ? o->output : "<stdout>", t, err)) {
		outfile_abort(&out);
		return -1;
	}
	return outfile_commit(&out, err);
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

	/* before anything is read: OpenBLAS takes its core only as it loads */
	blas_use_machine(PROG, argv);

	parse_args(argc, argv, &o);
	if (o.op >= OP_WEIGHTS) {
		tensor t;

		if (model_op(&o, &t, err) || write_one(&o, &t, err))
			cli_die("%s", err);
		tensor_free(&t);
		return cli_close_stdout() ? CLI_FAIL : CLI_OK;
	}
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
