/* cnn-convert: an ONNX image classifier into a petcnn checkpoint, and a checkpoint into
 * ONNX (its inference graph, opset 13). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nn/ckpt.h"
#include "nn/model.h"
#include "onnx/onnx_export.h"
#include "onnx/onnx_load.h"
#include "util/cli.h"
#include "util/errmsg.h"

static const char PROG[] = "cnn-convert";
static const char HELP[] =
	"Usage: cnn-convert MODEL.onnx -o MODEL.npz [OPTION]...\n"
	"   or: cnn-convert MODEL.npz -o MODEL.onnx\n"
	"Turn an ONNX image classifier (e.g. torchvision's, exported by torch.onnx.export) into a\n"
	"petcnn checkpoint that cnn-eval, cnn-apply and cnn-train --init-from take; or a\n"
	"checkpoint into ONNX: input float32 [N, 3, H, W] of RGB pixels 0..255 (the scaling and\n"
	"normalisation are nodes inside), output the class probabilities [N, K], opset 13.\n"
	"\n"
	"  -o, --output FILE     the checkpoint to write (replaced only once complete)\n"
	"      --mean A,B,C      mean of the pixels scaled to [0, 1] that the network was\n"
	"                        trained with, per channel in its order (default 0,0,0)\n"
	"      --std A,B,C       their standard deviation (default 1,1,1)\n"
	"      --bgr             the network wants channels B, G, R (Caffe's); --mean and --std\n"
	"                        are then given in that order too\n"
	"      --classes LIST    class names: a file with one per line, or a comma list; as\n"
	"                        many as the network has outputs (default class0,class1,...)\n"
	"      --size HxW        input height and width when the graph leaves them open\n"
	"  -q, --quiet           no summary on stderr\n"
	"  -h, --help            show this help and exit\n"
	"      --version         show the version and exit\n"
	"\n"
	"The input must be float32 [N, 3, H, W] and the output the class scores [N, K] (a\n"
	"final Softmax is dropped: petcnn applies its own). Unsupported operators are refused\n"
	"with the node that uses them; nothing is written then.\n"
	"\n"
	"Example (ImageNet's normalisation, as torchvision's models want):\n"
	"  cnn-convert resnet18.onnx -o resnet18.npz --mean 0.485,0.456,0.406 \\\n"
	"      --std 0.229,0.224,0.225 --classes imagenet_classes.txt\n";

struct opts {
	const char *input, *output, *classes;
	float mean[3], std[3];
	int bgr, h, w, quiet, has_norm;
};


/* "a,b,c" into v[3], each in (min, max]. */
static void parse3(const char *opt, const char *s, float v[3], int positive)
{
	char buf[256], *p = buf;

	if (strlen(s) >= sizeof buf)
		cli_usage("%s: '%.40s...' is too long", opt, s);
	strcpy(buf, s);
	for (int c = 0; c < 3; c++) {
		char *end = strchr(p, ',');
		double d;

		if ((c < 2) != (end != NULL))
			cli_usage("%s: '%s' is not three comma-separated numbers", opt, s);
		if (end)
			*end = '\0';
		if (cli_parse_double(p, positive ? 1e-30 : -1e30, 1e30, &d))
			cli_usage("%s: '%s' is not a%s number", opt, p, positive ? " positive" : "");
		v[c] = (float)d;
		p = end + 1;
	}
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_MEAN = 256, O_STD, O_BGR, O_CLASSES, O_SIZE, O_VERSION };
	static const struct option lo[] = {
		{ "output", 1, 0, 'o' }, { "mean", 1, 0, O_MEAN }, { "std", 1, 0, O_STD },
		{ "bgr", 0, 0, O_BGR }, { "classes", 1, 0, O_CLASSES }, { "size", 1, 0, O_SIZE },
		{ "quiet", 0, 0, 'q' }, { "help", 0, 0, 'h' }, { "version", 0, 0, O_VERSION },
		{ 0, 0, 0, 0 },
	};
	int c;

	*o = (struct opts){ .std = { 1, 1, 1 } };
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'o': o->output = optarg; break;
		case O_MEAN: parse3("--mean", optarg, o->mean, 0); o->has_norm = 1; break;
		case O_STD: parse3("--std", optarg, o->std, 1); o->has_norm = 1; break;
		case O_BGR: o->bgr = 1; o->has_norm = 1; break;
		case O_CLASSES: o->classes = optarg; break;
		case O_SIZE: {
			char *x = strchr(optarg, 'x');

			if (!x || cli_parse_int(x + 1, 1, 65536, &o->w))
				cli_usage("--size: '%s' is not HxW", optarg);
			*x = '\0';
			if (cli_parse_int(optarg, 1, 65536, &o->h))
				cli_usage("--size: '%s' is not a height", optarg);
			break;
		}
		case 'q': o->quiet = 1; break;
		case 'h': cli_help(HELP);
		case O_VERSION: cli_version();
		default: cli_try_help();
		}
	}
	if (optind + 1 != argc)
		cli_usage(optind < argc ? "one model at a time" : "a model to convert is required");
	o->input = argv[optind];
	if (!o->output)
		cli_usage("-o FILE is required");
}

static int to_npz(const struct opts *o, char *err)
{
	onnx_load_opts lo;
	model m;
	tensor classes;
	ckpt_state st = { .optim = CKPT_NONE };
	int rc;

	onnx_load_opts_default(&lo);
	lo.h = o->h, lo.w = o->w, lo.bgr = o->bgr, lo.classes = o->classes;
	memcpy(lo.mean, o->mean, sizeof lo.mean);
	memcpy(lo.std, o->std, sizeof lo.std);
	/* --size is for open dims only: a fixed graph of another size is refused below */
	if (onnx_load_model(o->input, &lo, &m, 1, 0, &classes, err))
		return -1;
	rc = ckpt_save(o->output, &m, &classes, &st, err);
	if (!rc && !o->quiet)
		fprintf(stderr, "%s: %s -> %s: %d layers, %zu parameters, %dx%d input, %d classes\n",
			PROG, o->input, o->output, m.nlayer, m.nparams, m.h, m.w, m.classes);
	tensor_free(&classes);
	model_free(&m);
	return rc;
}

static int to_onnx(const struct opts *o, char *err)
{
	model m;
	tensor classes;
	ckpt_state st;
	int rc;

	if (o->classes || o->h)
		cli_usage("--classes and --size apply to an ONNX input only");
	if (ckpt_load(o->input, &m, 1, 0, &classes, &st, err))
		return -1;
	rc = o->has_norm ? model_set_norm(&m, o->mean, o->std, o->bgr, err) : 0;
	if (!rc)
		rc = onnx_export(&m, &classes, o->output, err);
	tensor_free(&classes);
	model_free(&m);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	char err[ERR_MAX];
	int in_onnx, out_onnx;
	size_t n;

	parse_args(argc, argv, &o);
	in_onnx = model_path_is_onnx(o.input);
	n = strlen(o.output);
	out_onnx = n >= 5 && !strcasecmp(o.output + n - 5, ".onnx");
	if (in_onnx == out_onnx)
		cli_usage("%s and %s: one must be ONNX (.onnx) and the other a checkpoint (.npz)",
			  o.input, o.output);
	if (in_onnx ? to_npz(&o, err) : to_onnx(&o, err))
		cli_die("%s", err);
	return cli_close_stdout() ? CLI_FAIL : CLI_OK;
}
