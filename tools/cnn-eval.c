/* cnn-eval: score a checkpoint on a dataset stream: accuracy, loss, confusion matrix. */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/blas.h"
#include "nn/ckpt.h"
#include "onnx/onnx_load.h"
#include "util/cli.h"
#include "nn/dataset.h"
#include "nn/dist.h"
#include "nn/evaluate.h"
#include "util/errmsg.h"
#include "util/hash.h"
#include "nn/model.h"
#include "util/outfile.h"
#include "util/progress.h"
#include "tb/projector.h"

static const char PROG[] = "cnn-eval";
static const char HELP[] =
	"Usage: cnn-eval -m MODEL.npz|MODEL.onnx [OPTION]... [FILE]\n"
	"Score a trained ConvNet checkpoint on a dataset stream (accuracy, loss, confusion matrix).\n"
	"\n"
	"  FILE                  dataset stream (images, labels, classes); - or none: stdin\n"
	"  -m, --model FILE      checkpoint written by cnn-train, or an ONNX model (input\n"
	"                        /255, no mean or std: see cnn-convert for those)\n"
	"  -p, --predictions F   write a TSV: index, label, predicted, one probability per class\n"
	"  --format FMT          text (default) or tsv: 'STEP TAG VALUE' lines for tfevents-write\n"
	"  --projector DIR       the penultimate layer's activations (what the last layer reads)\n"
	"                        for every image, in TensorBoard's Projector format: DIR/tensors.tsv,\n"
	"                        DIR/metadata.tsv (true, predicted, correct), DIR/sprite.png\n"
	"                        (thumbnails, at most 64x64) and DIR/projector_config.pbtxt;\n"
	"                        then `tensorboard --logdir DIR` shows them in its Projector tab\n"
	"  --batch N             images per forward pass (default 32)\n"
	"  --threads N           BLAS threads (default 2)\n"
	"  -q, --quiet           no progress on stderr\n"
	"      --progress        progress on stderr even when it is not a terminal\n"
	"  -h, --help            show this help and exit\n"
	"      --version         show the version and exit\n"
	"\n"
	"Images labelled -1 are predicted (see --predictions) but not scored. Per class it prints\n"
	"precision, recall and F1; rows of the confusion matrix are true classes.\n"
	"Under mpirun -np N each process scores a share of FILE (read from its own path: the\n"
	"same data on every host) and the first prints the report (not with -p, --projector).\n"
	"\n"
	"Example:\n"
	"  cnn-eval -m model.npz -p predictions.tsv test.npy\n"
	"  cnn-eval -m model.npz --projector runs/embedding test.npy\n";

struct opts {
	const char *model, *input, *pred, *projector;
	int tsv, batch, threads;
	enum progress_mode progress;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_FORMAT = 256, O_BATCH, O_THREADS, O_PROGRESS, O_PROJECTOR, O_VERSION };
	static const struct option lo[] = {
		{ "model", 1, 0, 'm' }, { "predictions", 1, 0, 'p' }, { "format", 1, 0, O_FORMAT },
		{ "batch", 1, 0, O_BATCH }, { "threads", 1, 0, O_THREADS }, { "quiet", 0, 0, 'q' },
		{ "progress", 0, 0, O_PROGRESS }, { "projector", 1, 0, O_PROJECTOR },
		{ "help", 0, 0, 'h' }, { "version", 0, 0, O_VERSION },
		{ 0, 0, 0, 0 },
	};
	int c;

	*o = (struct opts){ .input = "-", .batch = 32, .threads = 2, .progress = PROGRESS_AUTO };
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "m:p:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'm': o->model = optarg; break;
		case 'p': o->pred = optarg; break;
		case O_FORMAT:
			if (strcmp(optarg, "text") && strcmp(optarg, "tsv"))
				cli_usage("--format: '%s' is neither text nor tsv", optarg);
			o->tsv = !strcmp(optarg, "tsv");
			break;
		case O_BATCH: o->batch = cli_opt_int("--batch", optarg, 1, 4096); break;
		case O_THREADS: o->threads = cli_opt_int("--threads", optarg, 1, 64); break;
		case 'q': o->progress = PROGRESS_OFF; break;
		case O_PROGRESS: o->progress = PROGRESS_ON; break;
		case O_PROJECTOR: o->projector = optarg; break;
		case 'h': cli_help(HELP);
		case O_VERSION: cli_version();
		default: cli_try_help();
		}
	}
	if (optind + 1 < argc)
		cli_usage("one dataset at a time");
	if (optind < argc)
		o->input = argv[optind];
	if (!o->model)
		cli_usage("-m MODEL.npz is required");
}

/* --projector: the vectors the last layer reads, written as the batches go */
typedef struct {
	proj_writer w;
	const model *m;
	const dataset *d;
	const tensor *classes;
	float *vec;              /* [dim] one image's, gathered from the last layer's inputs */
	int64_t first, seen;     /* the batch's first image, images reported so far */
} proj_ctx;

/* cnn-eval's context for evaluate_run's callbacks */
typedef struct {
	FILE *pred;      /* --predictions, or NULL */
	int k;           /* classes */
	progress bar;
	proj_ctx *proj;  /* --projector, or NULL */
	char *err;       /* ... its error */
} eval_ctx;

/* The layers the last layer reads, and their floats per image. The name is of the layer
 * that made the values: a dropout (the identity at inference) gives its input's. */
static int proj_dim(const model *m, char *name, size_t n)
{
	const model_layer *last = &m->layer[m->nlayer - 1];
	int dim = 0, s = last->src[0];

	for (int i = 0; i < last->nsrc; i++)
		dim += last->src[i] == MODEL_INPUT ? m->h * m->w * m->c : (int)m->layer[last->src[i]].out_n;
	while (s >= 0 && m->layer[s].kind == MODEL_DROP && m->layer[s].nsrc == 1)
		s = m->layer[s].src[0];
	if (last->nsrc > 1)
		snprintf(name, n, "%s/input", last->name);
	else
		snprintf(name, n, "%s", s == MODEL_INPUT ? "input" : m->layer[s].name);
	return dim;
}

static int proj_batch(void *ctx, int64_t first, int B)
{
	eval_ctx *c = ctx;

	(void)B;
	if (c->proj)
		c->proj->first = first;
	return 0;
}

/* The image's vector (row k of the batch in each input of the last layer), its
 * thumbnail and its classes. */
static int proj_image(eval_ctx *c, int64_t index, int label, int pred)
{
	proj_ctx *p = c->proj;
	const model *m = p->m;
	const model_layer *last = &m->layer[m->nlayer - 1];
	size_t k = (size_t)(p->seen++ - p->first), isz = (size_t)p->d->h * p->d->w * 3, at = 0;
	char truth[128], predicted[128];

	for (int i = 0; i < last->nsrc; i++) {
		int s = last->src[i];
		size_t n = s == MODEL_INPUT ? (size_t)m->h * m->w * m->c : m->layer[s].out_n;
		const float *v = s == MODEL_INPUT ? m->input : m->layer[s].out;

		memcpy(p->vec + at, v + k * n, n * sizeof *v);
		at += n;
	}
	tensor_get_string(p->classes, pred, predicted, sizeof predicted);
	if (label >= 0)
		tensor_get_string(p->classes, label, truth, sizeof truth);
	return proj_add(&p->w, p->vec, (const uint8_t *)p->d->images.data + (size_t)index * isz,
			label >= 0 ? truth : NULL, predicted, c->err);
}

/* Under mpirun, every rank's model (read from its own path) must be rank 0's. */
static int same_model(dist *dd, const char *path, const model *m, char *err)
{
	char hex[HASH_HEX];

	if (!dd->mpi)
		return 0;
	hash_buf_sha256(m->params, sizeof *m->params * m->nparams, hex);
	return dist_same(dd, path, hex, err);
}

/* The header of --predictions: index, label, predicted, p_CLASS per class. */
static void write_header(FILE *f, const tensor *classes, int k)
{
	char name[128];

	fputs("index\tlabel\tpredicted", f);
	for (int j = 0; j < k; j++) {
		tensor_get_string(classes, j, name, sizeof name);
		fprintf(f, "\tp_%s", name);
	}
	fputc('\n', f);
}

/* A row of --predictions: index, label, predicted, one probability per class. */
static int write_prediction(void *ctx, int64_t index, int label, int pred, const float *probs)
{
	eval_ctx *c = ctx;

	if (c->proj && proj_image(c, index, label, pred))
		return -1;
	if (!c->pred)
		return 0;
	fprintf(c->pred, "%lld\t%d\t%d", (long long)index, label, pred);
	for (int j = 0; j < c->k; j++)
		fprintf(c->pred, "\t%.6g", probs[j]);
	fputc('\n', c->pred);
	return 0;
}

static int draw_progress(void *ctx, int64_t done, int64_t total)
{
	(void)total;
	progress_update(&((eval_ctx *)ctx)->bar, done, NULL);
	return 0;
}

static void report(const evaluate_result *r, const int64_t *confusion, int k,
		   const tensor *classes, int64_t step, int tsv)
{
	double acc = r->accuracy, loss = r->loss;
	char name[128];

	/* With no labelled image there is no accuracy or loss to give: none is printed as 0. */
	if (tsv) {
		if (r->scored)
			printf("%lld eval/Accuracy %.6g\n%lld eval/Loss %.6g\n", (long long)step, acc,
			       (long long)step, loss);
	} else if (!r->scored) {
		printf("images %lld, scored 0\naccuracy -\nloss -\n\n", (long long)r->images);
	} else {
		printf("images %lld, scored %lld\naccuracy %.4f\nloss %.4f\n\n", (long long)r->images,
		       (long long)r->scored, acc, loss);
		printf("confusion (rows true, columns predicted)\n%-16s", "");
		for (int j = 0; j < k; j++) {
			tensor_get_string(classes, j, name, sizeof name);
			printf(" %12.12s", name);
		}
		putchar('\n');
		for (int i = 0; i < k; i++) {
			tensor_get_string(classes, i, name, sizeof name);
			printf("%-16.16s", name);
			for (int j = 0; j < k; j++)
				printf(" %12lld", (long long)confusion[(size_t)i * k + j]);
			putchar('\n');
		}
		printf("\n%-16s %9s %9s %9s %9s\n", "class", "precision", "recall", "f1", "support");
	}
	for (int c = 0; c < k; c++) {
		int64_t tp = confusion[(size_t)c * k + c], pred = 0, real = 0;

		for (int j = 0; j < k; j++)
			pred += confusion[(size_t)j * k + c], real += confusion[(size_t)c * k + j];
		double pr = pred ? (double)tp / pred : 0, rc = real ? (double)tp / real : 0;
		double f1 = pr + rc > 0 ? 2 * pr * rc / (pr + rc) : 0;

		tensor_get_string(classes, c, name, sizeof name);
		if (tsv)
			printf("%lld eval/precision/%s %.6g\n%lld eval/recall/%s %.6g\n%lld eval/f1/%s %.6g\n",
			       (long long)step, name, pr, (long long)step, name, rc, (long long)step, name, f1);
		else
			printf("%-16.16s %9.4f %9.4f %9.4f %9lld\n", name, pr, rc, f1, (long long)real);
	}
}

/* Under mpirun, this rank's share of the images as idx [*n] (NULL without: all of them). */
static int64_t *share(dist *dd, const dataset *d, int64_t *n)
{
	int64_t lo, hi, *idx;

	if (!dd->mpi)
		return NULL;
	dist_share(dd, d->n, &lo, &hi);
	if (!(idx = malloc(sizeof *idx * (size_t)(hi - lo + 1))))
		cli_die("out of memory");
	for (int64_t i = lo; i < hi; i++)
		idx[i - lo] = i;
	*n = hi - lo;
	return idx;
}

/* Under mpirun, every rank's counts and losses summed into r and confusion [k, k]. */
static void join(dist *dd, evaluate_result *r, int64_t *confusion, int k)
{
	int64_t c[3] = { r->images, r->scored, r->correct };

	dist_sum_i64(dd, c, 3);
	dist_sum_i64(dd, confusion, k * k);
	dist_sum_f64(dd, &r->loss_sum, 1);
	r->images = c[0], r->scored = c[1], r->correct = c[2];
	r->loss = r->scored ? r->loss_sum / r->scored : 0;
	r->accuracy = r->scored ? (double)r->correct / r->scored : 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	char err[ERR_MAX];
	model m;
	dataset d;
	tensor classes;
	ckpt_state st;
	outfile pf = { 0 };
	proj_ctx pj = { 0 };
	char pname[MODEL_NAME_MAX + 8], perr[ERR_MAX] = "";
	dist dd;

	/* before anything is read: OpenBLAS takes its core only as it loads */
	blas_use_machine(PROG, argv);

	parse_args(argc, argv, &o);
	if (dist_init(&dd, &argc, &argv, err))
		cli_die("%s", err);
	if (dd.mpi && (o.pred || o.projector))
		cli_usage("--predictions and --projector want every image in one process: run them without mpirun");
	if (dd.mpi && !strcmp(o.input, "-"))
		cli_usage("under mpirun every process reads the dataset: give its path, not stdin");
	if (dd.rank)
		o.progress = PROGRESS_OFF;
	if (dataset_read(&d, o.input, 1, err))
		cli_die("%s", err);
	if (d.n == 0)
		cli_die("%s: no images to evaluate", strcmp(o.input, "-") ? o.input : "<stdin>");
	if (model_load_any(o.model, d.h, d.w, &m, o.batch < d.n ? o.batch : (int)d.n, 0, &classes, &st, err))
		cli_die("%s", err);
	if (model_path_is_onnx(o.model) && classes.shape[0] == d.classes.shape[0]) {
		/* an ONNX file names no classes (class0..): the dataset's are the names */
		tensor t = classes;

		classes = d.classes, d.classes = t;
	} else if (dataset_same_classes(&classes, o.model, &d.classes, strcmp(o.input, "-") ? o.input : "<stdin>", err))
		cli_die("%s", err);
	/* only the last layer's output (and, for --projector, its input) is read */
	if (model_set_threads(&m, o.threads, err) || model_lean(&m, err))
		cli_die("%s", err);
	if (d.h != m.h || d.w != m.w)
		cli_die("%s: images are %dx%d but the model takes %dx%d", o.input, d.h, d.w, m.h, m.w);
	if (dist_same_data(&dd, o.input, &d, NULL, err) || same_model(&dd, o.model, &m, err))
		cli_die("%s", err);
	if (o.pred && outfile_open(&pf, o.pred, err))
		cli_die("%s", err);
	if (o.projector) {
		int dim = proj_dim(&m, pname, sizeof pname);

		pj = (proj_ctx){ .m = &m, .d = &d, .classes = &classes,
				 .vec = malloc(sizeof *pj.vec * (size_t)dim) };
		if (!pj.vec)
			cli_die("out of memory");
		if (proj_open(&pj.w, o.projector, d.n, dim, d.h, d.w, err))
			cli_die("%s", err);
	}

	int64_t *confusion = calloc((size_t)m.classes * m.classes, sizeof *confusion);
	eval_ctx c = { .pred = pf.fp, .k = m.classes, .proj = o.projector ? &pj : NULL, .err = perr };
	int64_t nshare = 0, *idx = share(&dd, &d, &nshare);
	evaluate_opts eo = { .idx = idx, .n = nshare, .confusion = confusion, .image = write_prediction,
			     .batch = proj_batch, .progress = draw_progress, .ctx = &c };
	evaluate_result r;

	if (!confusion)
		cli_die("out of memory");
	if (pf.fp)
		write_header(pf.fp, &classes, m.classes);
	progress_init(&c.bar, "eval", idx ? nshare : d.n, 0, o.progress);
	progress_set_unit(&c.bar, "img");
	if (evaluate_run(&m, &d, &eo, &r, err))
		cli_die("%s", perr[0] ? perr : err);
	progress_end(&c.bar);
	join(&dd, &r, confusion, m.classes);
	free(idx);
	dist_finish(&dd);
	if (pf.fp && outfile_commit(&pf, err))
		cli_die("%s", err);
	if (o.projector && proj_close(&pj.w, pname, err))
		cli_die("%s", err);
	free(pj.vec);
	if (!dd.rank && !r.scored)
		cli_warn("%s: no image is labelled: predictions only, no accuracy",
			 strcmp(o.input, "-") ? o.input : "<stdin>");
	if (!dd.rank)
		report(&r, confusion, m.classes, &classes, st.step, o.tsv);
	free(confusion);
	tensor_free(&classes);
	model_free(&m);
	dataset_free(&d);
	return cli_close_stdout() ? CLI_FAIL : CLI_OK;
}
