/* cnn-train: train the ConvNet on a dataset stream with Adam, checkpointing as it goes. */
#include <cblas.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/blas.h"
#include "nn/ckpt.h"
#include "nn/ckptsched.h"
#include "nn/conv2d.h"
#include "util/cli.h"
#include "util/hash.h"
#include "nn/dataset.h"
#include "nn/dist.h"
#include "nn/evaluate.h"
#include "nn/finetune.h"
#include "util/errmsg.h"
#include "nn/model.h"
#include "onnx/onnx_load.h"
#include "util/progress.h"
#include "img/augment.h"
#include "tb/trainlog.h"

static const char PROG[] = "cnn-train";
static const char HELP[] =
	"Usage: cnn-train --train FILE [--test FILE] -o MODEL.npz [OPTION]...\n"
	"Train the ConvNet on a dataset stream, log metrics, checkpoint as it goes.\n"
	"\n"
	"  --train FILE       training dataset stream (images, labels, classes; - for stdin)\n"
	"  --test FILE        held-out dataset stream for the test metrics\n"
	"  -o, --output FILE  checkpoint (.npz), written as --checkpoint-every says and at the end\n"
	"  --checkpoint-every N[e|s|m]  a checkpoint every N epochs (e, the default: 1e), steps\n"
	"                     (s) or minutes (m, e.g. 30m or 0.5m)\n"
	"  --checkpoint-background  write them from a copy while training goes on (a second\n"
	"                     copy of the parameters and optimiser state in memory); the\n"
	"                     default where that copy fits in a quarter of the memory available\n"
	"  --checkpoint-foreground  write them with training paused, from the model itself\n"
	"  --resume FILE      continue from a checkpoint: its model, seed, batch size, rates and\n"
	"                     training set; an option given that differs is refused\n"
	"  --allow-changes    with --resume: continue with the differing options (said on stderr)\n"
	"  --epochs N         passes over the training set (default 400)\n"
	"  --batch N          images per step (default 10)\n"
	"  --lr X             learning rate (default 1e-5)\n"
	"  --keep-conv P      dropout keep probability after the pools (default 0.2)\n"
	"  --keep-fc P        dropout keep probability after fc1 (default 0.5)\n"
	"  --optimizer NAME   adam (default) or momentum\n"
	"  --momentum X       momentum for --optimizer momentum (default 0.9)\n"
	"  --model SPEC       architecture (default: the seed's network, see below)\n"
	"  --init NAME        seed (truncated normal 0.1, default) or he\n"
	"  --init-from FILE   start from another model (.npz checkpoint, .onnx): its spec\n"
	"                     unless --model is given, its parameters by layer name and shape;\n"
	"                     the head (last conv or dense) is made anew when the class count\n"
	"                     differs; stderr says what was loaded and what is new\n"
	"  --new-head         with --init-from: make the head anew even for the same classes\n"
	"  --freeze NAME,...  keep these layers' parameters fixed (no gradient, no optimiser\n"
	"                     state; recorded in the checkpoint, kept by --resume)\n"
	"  --freeze-below NAME  freeze every layer with parameters before layer NAME\n"
	"  --feature-cache MB  when only layers above a frozen part train and no dropout draws\n"
	"                     below them, keep each image's features there from the first\n"
	"                     epoch, up to MB (default 2048; 0: never; off with --augment)\n"
	"  --augment SPEC     change each training image at each epoch, drawn from the seed,\n"
	"                     the epoch and the image alone (any --threads, --resume: same\n"
	"                     bytes); SPEC a comma list applied in order (none: no change):\n"
	"                       flip[:P]     mirror left-right with probability P (0.5)\n"
	"                       shift:P      pad P pixels (reflected), crop back at random\n"
	"                       scale:LO-HI  crop LO..HI of the area (aspect 3/4..4/3), resize back\n"
	"                       rotate:DEG   rotate by up to +-DEG degrees (bilinear, reflected)\n"
	"                       color:J      brightness, contrast, saturation times 1 +- J\n"
	"                       gray:P       grayscale with probability P\n"
	"                     recorded in the checkpoint, kept by --resume\n"
	"  --seed N           seed for initialisation, shuffling, dropout (default 1)\n"
	"  --threads N        threads for BLAS, the convolutions and the optimiser (default 2)\n"
	"  --log-every N      log train and test-sample metrics every N steps (default 5)\n"
	"  --test-sample N    random test images per logged step (default 10)\n"
	"  --stop-after N     stop (with a checkpoint) once N steps in total are done\n"
	"  --profile          at the end, time per step of each layer and phase on stderr (the\n"
	"                     first step left out when more follow: it pays the first touches\n"
	"                     of memory), and the kernels each convolution ran on\n"
	"  --logdir DIR       TensorBoard runs DIR/train and DIR/test (see below)\n"
	"  --image-every N    feature maps of the first training image every N steps (default 50)\n"
	"  --snapshots FILE   append those maps to FILE as a .npy stream (for tensor-png --gif)\n"
	"  --gradcam-every N  with --logdir and --test: Grad-CAM of the first 4 test images for\n"
	"                     their labels, over them, every N steps (run test, tag gradcam)\n"
	"  -q, --quiet        no progress on stderr\n"
	"      --progress     progress on stderr even when it is not a terminal\n"
	"  -h, --help         show this help and exit\n"
	"      --version      show the version and exit\n"
	"\n"
	"Metrics go to stdout as 'STEP TAG VALUE' lines (tfevents-write's input): train/Loss,\n"
	"train/Accuracy (the training batch, dropout on), test/Loss, test/Accuracy (random test\n"
	"images), and at each epoch end test_epoch/Loss, test_epoch/Accuracy (the whole test set).\n"
	"With --logdir they also go to TensorBoard as tags Loss and Accuracy of the runs train,\n"
	"test and test_epoch, with the graph, the weights1_1 histogram (every --log-every steps)\n"
	"and grid images conv1_2/maps, conv2_2/maps (every --image-every steps, from step 0);\n"
	"with --augment the first augmented batch too (augment/batch, at step 0).\n"
	"--snapshots writes those maps as f4 [1, H, W, C] arrays, conv1_2 then conv2_2 per\n"
	"snapshot (other specs: the last conv before each pool); with --resume it continues.\n"
	"Checkpoints during the run are written by a thread from a copy of the step's state\n"
	"while training goes on; each is named only once complete and on disk, so a run killed\n"
	"at any moment leaves the last complete one. The last is written before exiting.\n"
	"On SIGINT, SIGTERM, SIGHUP or SIGPIPE (a closed metrics pipe) the checkpoint is written\n"
	"and the exit status is 128+signal.\n"
	"Under mpirun -np N (Open MPI) the ranks split every batch of the one shuffled order\n"
	"(--batch stays the global batch), sum their gradients and take the same steps: the run\n"
	"equals one process's up to float summation order; rank 0 alone writes. Without mpirun\n"
	"no MPI is started.\n"
	"PETCNN_ISA=avx512|avx2|generic forces our kernels' path: the convolutions, the dense\n"
	"layers and the optimiser (default: the widest this CPU has; one it lacks is an error).\n"
	"\n"
	"Default model spec:\n"
	"  " MODEL_DEFAULT_SPEC "\n"
	"A spec is a graph of [NAME=]KIND[:OPT...][@IN,...] tokens; kinds: conv maxpool avgpool\n"
	"gap dense drop add concat relu clip leaky bn lrn (README.md, \"The network\").\n"
	"\n"
	"Example:\n"
	"  cnn-train --train train.npy --test test.npy -o model.npz | tfevents-write --logdir runs/pets\n";

struct opts {
	const char *train, *test, *out, *resume, *spec, *logdir, *snapshots;
	const char *init_from, *freeze, *freeze_below;
	aug_spec aug;        /* --augment (n 0: none) */
	int new_head;
	int64_t cache_mb;    /* --feature-cache */
	int epochs, batch, threads, log_every, test_sample, optim, image_every, profile, gradcam_every;
	int64_t seed, stop_after;
	double lr, keep_conv, keep_fc, momentum;
	int ckpt_bg;         /* --checkpoint-background 1, --checkpoint-foreground 0, else -1 */
	char ckpt_unit;      /* --checkpoint-every: 'e'pochs, 's'teps or 'm'inutes */
	double ckpt_every;   /* how many (whole for e and s) */
	enum model_init init;
	enum progress_mode progress;
	int allow_changes;
	unsigned given;   /* GIVEN_* bits: options set on the command line */
};

enum { GIVEN_LR = 1, GIVEN_KC = 2, GIVEN_KF = 4, GIVEN_MOM = 8, GIVEN_SEED = 16, GIVEN_MODEL = 32,
       GIVEN_AUG = 64, GIVEN_CACHE = 128 };

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* --checkpoint-every N[e|s|m]: a count of epochs or steps, or minutes (fractions too). */
static void parse_every(const char *s, struct opts *o)
{
	size_t n = strlen(s);
	char num[64], unit = n ? s[n - 1] : 0;

	if (n && unit >= '0' && unit <= '9')
		unit = 'e';
	else if (n && strchr("esm", unit))
		n--;
	else
		cli_usage("--checkpoint-every: '%s' does not end in e (epochs), s (steps) or m (minutes)", s);
	if (n == 0 || n >= sizeof num)
		cli_usage("--checkpoint-every: '%s' is not a number of epochs, steps or minutes", s);
	memcpy(num, s, n);
	num[n] = 0;
	o->ckpt_unit = unit;
	if (unit == 'm')
		o->ckpt_every = cli_opt_double("--checkpoint-every", num, 1e-3, 1e7);
	else
		o->ckpt_every = cli_opt_i64("--checkpoint-every", num, 1, INT64_C(1) << 40);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_TRAIN = 256, O_TEST, O_RESUME, O_EPOCHS, O_BATCH, O_LR, O_KC, O_KF, O_OPT, O_MOM,
	       O_MODEL, O_INIT, O_SEED, O_THREADS, O_LOG, O_SAMPLE, O_STOP, O_PROGRESS, O_VERSION, O_PROFILE,
	       O_LOGDIR, O_IMAGE_EVERY, O_GRADCAM_EVERY, O_SNAPSHOTS, O_ALLOW, O_CKPT_EVERY, O_CKPT_BG, O_CKPT_FG,
	       O_INIT_FROM, O_NEW_HEAD, O_FREEZE, O_FREEZE_BELOW, O_CACHE, O_AUGMENT };
	static const struct option lo[] = {
		{ "train", 1, 0, O_TRAIN }, { "test", 1, 0, O_TEST }, { "output", 1, 0, 'o' },
		{ "resume", 1, 0, O_RESUME }, { "epochs", 1, 0, O_EPOCHS }, { "batch", 1, 0, O_BATCH },
		{ "lr", 1, 0, O_LR }, { "keep-conv", 1, 0, O_KC }, { "keep-fc", 1, 0, O_KF },
		{ "optimizer", 1, 0, O_OPT }, { "momentum", 1, 0, O_MOM }, { "model", 1, 0, O_MODEL },
		{ "init", 1, 0, O_INIT }, { "seed", 1, 0, O_SEED }, { "threads", 1, 0, O_THREADS },
		{ "log-every", 1, 0, O_LOG }, { "test-sample", 1, 0, O_SAMPLE },
		{ "stop-after", 1, 0, O_STOP }, { "profile", 0, 0, O_PROFILE }, { "quiet", 0, 0, 'q' }, { "progress", 0, 0, O_PROGRESS },
		{ "logdir", 1, 0, O_LOGDIR }, { "image-every", 1, 0, O_IMAGE_EVERY },
		{ "gradcam-every", 1, 0, O_GRADCAM_EVERY },
		{ "snapshots", 1, 0, O_SNAPSHOTS }, { "allow-changes", 0, 0, O_ALLOW },
		{ "checkpoint-every", 1, 0, O_CKPT_EVERY }, { "checkpoint-background", 0, 0, O_CKPT_BG },
		{ "checkpoint-foreground", 0, 0, O_CKPT_FG },
		{ "init-from", 1, 0, O_INIT_FROM }, { "new-head", 0, 0, O_NEW_HEAD }, { "freeze", 1, 0, O_FREEZE },
		{ "freeze-below", 1, 0, O_FREEZE_BELOW }, { "feature-cache", 1, 0, O_CACHE },
		{ "augment", 1, 0, O_AUGMENT }, { "help", 0, 0, 'h' }, { "version", 0, 0, O_VERSION }, { 0, 0, 0, 0 },
	};
	char err[ERR_MAX];
	int c;

	*o = (struct opts){ .epochs = 400, .batch = 10, .threads = 2, .log_every = 5, .test_sample = 10, .image_every = 50,
			    .optim = CKPT_ADAM, .seed = 1, .lr = 1e-5, .keep_conv = 0.2, .keep_fc = 0.5,
			    .momentum = 0.9, .spec = MODEL_DEFAULT_SPEC, .progress = PROGRESS_AUTO,
			    .ckpt_unit = 'e', .ckpt_every = 1, .ckpt_bg = -1, .cache_mb = 2048 };
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
		switch (c) {
		case O_TRAIN: o->train = optarg; break;
		case O_TEST: o->test = optarg; break;
		case 'o': o->out = optarg; break;
		case O_RESUME: o->resume = optarg; break;
		case O_EPOCHS: o->epochs = cli_opt_int("--epochs", optarg, 1, 1000000); break;
		case O_BATCH: o->batch = cli_opt_int("--batch", optarg, 1, 100000); break;
		case O_LR: o->lr = cli_opt_double("--lr", optarg, 0, 10), o->given |= GIVEN_LR; break;
		case O_KC: o->keep_conv = cli_opt_double("--keep-conv", optarg, 1e-6, 1), o->given |= GIVEN_KC; break;
		case O_KF: o->keep_fc = cli_opt_double("--keep-fc", optarg, 1e-6, 1), o->given |= GIVEN_KF; break;
		case O_MOM: o->momentum = cli_opt_double("--momentum", optarg, 0, 1), o->given |= GIVEN_MOM; break;
		case O_MODEL: o->spec = optarg, o->given |= GIVEN_MODEL; break;
		case O_SEED: o->seed = cli_opt_i64("--seed", optarg, 0, INT64_MAX), o->given |= GIVEN_SEED; break;
		case O_ALLOW: o->allow_changes = 1; break;
		case O_CKPT_EVERY: parse_every(optarg, o); break;
		case O_CKPT_BG: o->ckpt_bg = 1; break;
		case O_CKPT_FG: o->ckpt_bg = 0; break;
		case O_INIT_FROM: o->init_from = optarg; break;
		case O_NEW_HEAD: o->new_head = 1; break;
		case O_FREEZE: o->freeze = optarg; break;
		case O_FREEZE_BELOW: o->freeze_below = optarg; break;
		case O_CACHE: o->cache_mb = cli_opt_i64("--feature-cache", optarg, 0, INT64_C(1) << 30), o->given |= GIVEN_CACHE; break;
		case O_AUGMENT:
			if (aug_parse(&o->aug, optarg, err))
				cli_usage("--augment: %s", err);
			o->given |= GIVEN_AUG;
			break;
		case O_THREADS: o->threads = cli_opt_int("--threads", optarg, 1, 64); break;
		case O_LOG: o->log_every = cli_opt_int("--log-every", optarg, 1, 1 << 30); break;
		case O_SAMPLE: o->test_sample = cli_opt_int("--test-sample", optarg, 0, 1 << 20); break;
		case O_STOP: o->stop_after = cli_opt_i64("--stop-after", optarg, 1, INT64_MAX); break;
		case O_OPT:
			if (strcmp(optarg, "adam") && strcmp(optarg, "momentum"))
				cli_usage("--optimizer: '%s' is neither adam nor momentum", optarg);
			o->optim = !strcmp(optarg, "adam") ? CKPT_ADAM : CKPT_MOMENTUM;
			break;
		case O_INIT:
			if (strcmp(optarg, "seed") && strcmp(optarg, "he"))
				cli_usage("--init: '%s' is neither seed nor he", optarg);
			o->init = !strcmp(optarg, "he") ? MODEL_INIT_HE : MODEL_INIT_SEED;
			break;
		case O_LOGDIR: o->logdir = optarg; break;
		case O_IMAGE_EVERY: o->image_every = cli_opt_int("--image-every", optarg, 1, 1 << 30); break;
		case O_GRADCAM_EVERY: o->gradcam_every = cli_opt_int("--gradcam-every", optarg, 1, 1 << 30); break;
		case O_SNAPSHOTS: o->snapshots = optarg; break;
		case 'q': o->progress = PROGRESS_OFF; break;
		case O_PROGRESS: o->progress = PROGRESS_ON; break;
		case O_PROFILE: o->profile = 1; break;
		case 'h': cli_help(HELP);
		case O_VERSION: cli_version();
		default: cli_try_help();
		}
	}
	if (optind < argc)
		cli_usage("unexpected argument '%s'", argv[optind]);
	if (!o->train || !o->out)
		cli_usage("--train and -o are required");
	if (o->allow_changes && !o->resume)
		cli_usage("--allow-changes goes with --resume");
	if (o->init_from && o->resume)
		cli_usage("--init-from starts a run, --resume continues one: give one of them");
	if (o->new_head && !o->init_from)
		cli_usage("--new-head goes with --init-from");
	if (o->gradcam_every && (!o->logdir || !o->test))
		cli_usage("--gradcam-every goes with --logdir and --test");
}

/* rng streams: each random choice is a function of (seed, purpose, epoch or step), so a
 * resumed run draws exactly what an uninterrupted one would. */
enum { STREAM_SHUFFLE = 1, STREAM_DROPOUT = 2, STREAM_SAMPLE = 3 };

static void stream(rng *r, int64_t seed, int purpose, int64_t n)
{
	rng_stream(r, (uint64_t)seed, ((uint64_t)purpose << 48) ^ (uint64_t)n);
}

typedef struct {
	struct opts *o;
	model m;
	dataset train, test;
	ckpt_state st;
	int64_t *perm, *idx;
	uint8_t *img;
	int *lab;
	trainlog log;
	finetune_cache cache; /* --feature-cache */
	aug aug;              /* --augment: its threads' buffers */
	uint8_t *aug_img;     /* [batch, h, w, 3]: the batch augmented */
	double t_aug;         /* --profile: seconds spent augmenting */
	double t_test;        /* --profile: seconds of the epochs' tests (within their steps) */
	ckptsched ckpt;       /* when checkpoints are written, and what they cost */
	int ckpt_bg;          /* they are written in the background (o->ckpt_bg, or chosen) */
	size_t stage_bytes, avail_bytes; /* what chose: the staging copy, the memory available */
	double t_start, t_read, t_hash, t_model;   /* --profile: start-up, in seconds */
	double *step_s;       /* --profile: each step's wall time, checkpoints included */
	int64_t beside_n;     /* --profile: steps begun while a background checkpoint was */
	double beside_s;      /* being written, and their wall time (less copies and waits) */
	dist dist;            /* under mpirun: this rank's share; else rank 0 of 1 */
	int64_t stop;         /* under mpirun: the signal any rank got by the last step */
} trainer;

/* A signal stops the run; under mpirun every rank stops after the step in which any got
 * one, so none waits for a sum the others never start. */
static int stopping(const trainer *t)
{
	return t->dist.mpi ? (int)t->stop : stop_signal;
}

/* Mean loss and accuracy of the inference network over test images idx[0..n), under
 * mpirun each rank's share of them, summed. */
static void evaluate(trainer *t, const int64_t *idx, int64_t n, double *loss, double *acc)
{
	int64_t lo, hi;
	evaluate_opts eo;
	evaluate_result r;
	char err[ERR_MAX];
	double sum[3];

	dist_share(&t->dist, n, &lo, &hi);
	eo = (evaluate_opts){ .idx = idx + lo, .n = hi - lo };
	if (evaluate_run(&t->m, &t->test, &eo, &r, err))
		cli_die("%s", err);
	sum[0] = r.loss_sum, sum[1] = (double)r.scored, sum[2] = (double)r.correct;
	dist_sum_f64(&t->dist, sum, 3);
	*loss = sum[1] ? sum[0] / sum[1] : 0;
	*acc = sum[1] ? sum[2] / sum[1] : 0;
}

/* A metric on stdout as RUN/TAG, and with --logdir as TAG in the run's event file. */
static void metric(trainer *t, int64_t step, enum trainlog_run run, const char *tag, double v)
{
	char err[ERR_MAX];

	if (t->dist.rank)
		return;
	printf("%lld %s/%s %.6g\n", (long long)step, trainlog_run_name(run), tag, v);
	if (trainlog_scalar(&t->log, run, step, tag, v, err))
		cli_die("%s", err);
}

/* The weights histogram and feature maps when due, between steps (see trainlog.h). */
static void log_model(trainer *t, int64_t step)
{
	char err[ERR_MAX];

	if (trainlog_step(&t->log, step, &t->m, err) || trainlog_flush_if_due(&t->log, err))
		cli_die("%s", err);
}

/* SHA-256 of the parameters (with state: and the optimiser's moments), to check that
 * every rank starts from and keeps the same. */
static void params_sha256(const model *m, int state, char hex[HASH_HEX])
{
	hash_sha256 *h = hash_sha256_new();

	if (!h)
		cli_die("out of memory");
	hash_sha256_update(h, m->params, sizeof *m->params * m->nparams);
	if (state && m->adam_m)
		hash_sha256_update(h, m->adam_m, sizeof *m->adam_m * m->nparams);
	if (state && m->adam_v)
		hash_sha256_update(h, m->adam_v, sizeof *m->adam_v * m->nparams);
	hash_sha256_hex(h, hex);
	hash_sha256_free(h);
}

/* One setting of a resumed run: an option not given takes the checkpoint's value; one
 * given that differs is refused, or with --allow-changes used and said. */
static int resume_setting(const struct opts *o, unsigned bit, const char *opt, double *now,
			  double was)
{
	if (!(o->given & bit) || *now == was) {
		*now = was;
		return 0;
	}
	if (o->allow_changes) {
		cli_warn("%s: resuming with %s %g (it was %g)", o->resume, opt, *now, was);
		return 0;
	}
	cli_warn("%s: was trained with %s %g, not %g", o->resume, opt, was, *now);
	return 1;
}

/* --freeze and --freeze-below on m (nothing if neither is given). */
static void freeze(trainer *t)
{
	char err[ERR_MAX];

	if ((t->o->freeze && model_freeze(&t->m, t->o->freeze, err)) ||
	    (t->o->freeze_below && model_freeze_below(&t->m, t->o->freeze_below, err)))
		cli_die("%s", err);
}

/* A resumed run keeps the checkpoint's frozen layers; --freeze or --freeze-below giving
 * others is refused, or with --allow-changes used and said. 1 if refused. */
static int resume_frozen(trainer *t)
{
	const struct opts *o = t->o;
	char was[1024], now[1024], err[ERR_MAX];

	if (!o->freeze && !o->freeze_below)
		return 0;
	model_frozen_names(&t->m, was, sizeof was);
	if (model_unfreeze(&t->m, err))
		cli_die("%s", err);
	freeze(t);
	model_frozen_names(&t->m, now, sizeof now);
	if (!strcmp(was, now))
		return 0;
	if (o->allow_changes) {
		cli_warn("%s: resuming with frozen layers '%s' (they were '%s')", o->resume, now, was);
		return 0;
	}
	cli_warn("%s: was trained with frozen layers '%s', not '%s'", o->resume, was, now);
	return 1;
}

/* A resumed run keeps the checkpoint's --augment; another one given is refused, or with
 * --allow-changes used and said. 1 if refused. */
static int resume_augment(trainer *t)
{
	struct opts *o = t->o;
	char err[ERR_MAX];

	if (!(o->given & GIVEN_AUG)) {
		if (aug_parse(&o->aug, t->st.augment, err))
			cli_die("%s: train/augment: %s", o->resume, err);
		return 0;
	}
	if (!strcmp(o->aug.text, t->st.augment))
		return 0;
	if (o->allow_changes) {
		cli_warn("%s: resuming with --augment '%s' (it was '%s')", o->resume, o->aug.n ? o->aug.text : "none",
			 t->st.augment[0] ? t->st.augment : "none");
		return 0;
	}
	cli_warn("%s: was trained with --augment '%s', not '%s'", o->resume,
		 t->st.augment[0] ? t->st.augment : "none", o->aug.n ? o->aug.text : "none");
	return 1;
}

/* --init-from: the model to start from (its spec unless --model, the head made anew for
 * another class count or with --new-head), built and initialised, then its parameters. */
static void init_from(trainer *t)
{
	struct opts *o = t->o;
	char err[ERR_MAX], msg[1024], *spec = NULL;
	finetune_src src;
	int new_head;

	if (finetune_read(o->init_from, onnx_finetune_read, &src, err))
		cli_die("%s", err);
	if (!(o->given & GIVEN_MODEL) && !src.spec)
		cli_die("%s: holds no model spec: give --model", o->init_from);
	new_head = o->new_head || src.classes != t->train.k;
	if (finetune_head_spec((o->given & GIVEN_MODEL) ? o->spec : src.spec, &spec, err))
		cli_die("%s", err);
	if (model_init(&t->m, new_head ? spec : (o->given & GIVEN_MODEL) ? o->spec : src.spec,
		       (model_size){ .h = t->train.h, .w = t->train.w, .classes = (int)t->train.k,
				     .max_batch = o->batch, .train = 1, .fault_threads = o->threads }, err))
		cli_die("%s: %s", o->init_from, err);
	free(spec);
	if (model_set_threads(&t->m, o->threads, err))
		cli_die("%s", err);
	model_init_params(&t->m, o->init, (uint64_t)o->seed);
	if (finetune_apply(&t->m, &src, new_head, o->init_from, msg, sizeof msg, err))
		cli_die("%s", err);
	cli_warn("%s", msg);
	finetune_src_free(&src);
}

/* The checkpoint's settings against the command line's and the training set. */
static void check_resume(trainer *t, const char *data_sha)
{
	struct opts *o = t->o;
	ckpt_state *st = &t->st;
	int bad = 0;

	if ((o->given & GIVEN_MODEL) && strcmp(o->spec, t->m.spec))
		cli_die("%s: holds the model '%s', not '%s' (a model cannot change on resume)",
			o->resume, t->m.spec, o->spec);
	if ((o->given & GIVEN_SEED) && o->seed != st->seed) {
		if (!o->allow_changes) {
			cli_warn("%s: was trained with --seed %lld, not %lld", o->resume,
				 (long long)st->seed, (long long)o->seed);
			bad = 1;
		} else {
			cli_warn("%s: resuming with --seed %lld (it was %lld)", o->resume,
				 (long long)o->seed, (long long)st->seed);
			st->seed = o->seed;
		}
	}
	o->seed = st->seed;
	bad |= resume_frozen(t);
	bad |= resume_augment(t);
	if (st->has_settings) {
		bad |= resume_setting(o, GIVEN_LR, "--lr", &o->lr, st->lr);
		bad |= resume_setting(o, GIVEN_KC, "--keep-conv", &o->keep_conv, st->keep_conv);
		bad |= resume_setting(o, GIVEN_KF, "--keep-fc", &o->keep_fc, st->keep_fc);
		bad |= resume_setting(o, GIVEN_MOM, "--momentum", &o->momentum, st->momentum);
		if (strcmp(st->data_sha256, data_sha)) {
			if (o->allow_changes)
				cli_warn("%s: resuming on another training set (%s)", o->resume, o->train);
			else
				cli_warn("%s: was trained on another training set than %s (SHA-256 differs)",
					 o->resume, o->train), bad = 1;
		}
	} else {
		cli_warn("%s: holds no settings (made before petcnn 0.2): --lr, keep rates and the "
			 "training set are not checked", o->resume);
	}
	if (bad)
		cli_die("%s: resume with the same settings, or add --allow-changes", o->resume);
}

/* --feature-cache: said on stderr when it caches, or why not when it could. */
static void feature_cache(trainer *t)
{
	char err[ERR_MAX], note[256];
	/* augmented images differ at every epoch: no feature of theirs can be reused */
	size_t limit = t->o->aug.n ? 0 : (size_t)t->o->cache_mb << 20;
	int rc = finetune_cache_init(&t->cache, &t->m, t->train.n, (float)t->o->keep_conv, (float)t->o->keep_fc,
				     limit, note, sizeof note, err);

	if (t->o->aug.n && (t->o->given & GIVEN_CACHE) && t->o->cache_mb)
		cli_warn("--feature-cache: off with --augment (the images change at every epoch)");
	if (rc < 0)
		cli_die("%s", err);
	if (rc)
		cli_warn("feature cache: the output of %s (layer %d of %d, %dx%dx%d; all at or below it "
			 "frozen) for %lld images, %.1f MB, computed in the first epoch and reused",
			 t->m.layer[t->cache.cut].name, t->cache.cut + 1, t->m.nlayer, t->m.layer[t->cache.cut].oh,
			 t->m.layer[t->cache.cut].ow, t->m.layer[t->cache.cut].oc, (long long)t->train.n,
			 finetune_cache_bytes(&t->cache) / 1048576.0);
	else if (*note)
		cli_warn("%s", note);
}

static void setup(trainer *t)
{
	struct opts *o = t->o;
	char err[ERR_MAX], data_sha[HASH_HEX];
	tensor classes;

	double t0 = progress_now();

	if (dataset_read(&t->train, o->train, 0, err))
		cli_die("%s", err);
	if (t->train.n < 1)
		cli_die("%s: no images to train on", o->train);
	if (aug_check(&o->aug, t->train.h, t->train.w, err))
		cli_usage("--augment: %s", err);
	if (o->test && (dataset_read(&t->test, o->test, 0, err) ||
			dataset_same_classes(&t->train.classes, o->train, &t->test.classes, o->test, err)))
		cli_die("%s", err);
	if (o->test && (t->test.h != t->train.h || t->test.w != t->train.w))
		cli_die("%s: images are %dx%d but %s has %dx%d", o->test, t->test.h, t->test.w,
			o->train, t->train.h, t->train.w);
	/* A batch larger than the set is the whole set in one step: buffers sized for it. */
	if (o->batch > t->train.n) {
		cli_warn("--batch %d is more than the %lld training images: using %lld", o->batch,
			 (long long)t->train.n, (long long)t->train.n);
		o->batch = (int)t->train.n;
	}
	t->t_read = progress_now() - t0;
	t0 = progress_now();
	/* what --resume checks "the same training set" against (the size alone let another
	 * set of the same size through) */
	if (dataset_sha256(&t->train, data_sha, err))
		cli_die("%s", err);
	t->t_hash = progress_now() - t0;
	/* under mpirun every rank reads its own path: the same data, or an error on all */
	if (dist_same_data(&t->dist, o->train, &t->train, data_sha, err) ||
	    (o->test && dist_same_data(&t->dist, o->test, &t->test, NULL, err)))
		cli_die("%s", err);
	t0 = progress_now();
	if (o->resume) {
		if (ckpt_load_sized(o->resume, t->train.h, t->train.w, &t->m, o->batch, 1, &classes, &t->st, err))
			cli_die("%s", err);
		if (dataset_same_classes(&classes, o->resume, &t->train.classes, o->train, err))
			cli_die("%s", err);
		tensor_free(&classes);
		if (t->st.optim == CKPT_NONE)
			cli_die("%s: holds no training state to resume", o->resume);
		if (t->st.optim != (enum ckpt_optim)o->optim || t->st.batch != o->batch ||
		    t->st.examples != t->train.n)
			cli_die("%s: was trained with %s, batch %lld, %lld examples; resume with the same",
				o->resume, t->st.optim == CKPT_ADAM ? "adam" : "momentum",
				(long long)t->st.batch, (long long)t->st.examples);
		check_resume(t, data_sha);
		if (t->st.step > (t->train.n + o->batch - 1) / o->batch * o->epochs)
			cli_die("%s: has done %lld steps, more than --epochs %d gives (%lld)", o->resume,
				(long long)t->st.step, o->epochs,
				(long long)((t->train.n + o->batch - 1) / o->batch * o->epochs));
	} else if (o->init_from) {
		init_from(t);
		t->st = (ckpt_state){ .seed = o->seed, .batch = o->batch, .examples = t->train.n,
				      .optim = (enum ckpt_optim)o->optim };
	} else {
		if (model_init(&t->m, o->spec, (model_size){ .h = t->train.h, .w = t->train.w, .classes = t->train.k,
						     .max_batch = o->batch, .train = 1, .fault_threads = o->threads }, err))
			cli_die("%s", err);
		t->st = (ckpt_state){ .seed = o->seed, .batch = o->batch, .examples = t->train.n,
				      .optim = (enum ckpt_optim)o->optim };
	}
	/* what the checkpoint records (and a resume with --allow-changes now continues with) */
	t->st.has_settings = 1;
	t->st.lr = o->lr, t->st.keep_conv = o->keep_conv, t->st.keep_fc = o->keep_fc;
	t->st.momentum = o->momentum;
	memcpy(t->st.data_sha256, data_sha, sizeof t->st.data_sha256);
	snprintf(t->st.augment, sizeof t->st.augment, "%s", o->aug.text);
	if (model_set_threads(&t->m, o->threads, err))
		cli_die("%s", err);
	/* after the threads: the initialisation shares them (same values for any number) */
	if (!o->resume && !o->init_from)
		model_init_params(&t->m, o->init, (uint64_t)o->seed);
	if (!o->resume)
		freeze(t);
	feature_cache(t);
	if (t->m.h != t->train.h || t->m.w != t->train.w)
		cli_die("%s: images are %dx%d but the model takes %dx%d", o->train, t->train.h,
			t->train.w, t->m.h, t->m.w);
	t->t_model = progress_now() - t0;
	t->perm = malloc(sizeof *t->perm * (size_t)t->train.n);
	t->idx = malloc(sizeof *t->idx * (size_t)(t->test.n > o->test_sample ? t->test.n : o->test_sample + 1));
	t->img = malloc((size_t)o->batch * t->m.h * t->m.w * 3);
	t->lab = malloc(sizeof *t->lab * (size_t)o->batch);
	if (!t->perm || !t->idx || !t->img || !t->lab)
		cli_die("out of memory");
	if (o->aug.n && (aug_init(&t->aug, &o->aug, t->m.h, t->m.w, o->threads, err) ||
			 !(t->aug_img = malloc((size_t)o->batch * t->m.h * t->m.w * 3))))
		cli_die("%s", t->aug_img ? err : "out of memory");
	trainlog_opts lo = { .hist_every = o->log_every, .image_every = o->image_every,
			     .resume = o->resume != NULL, .start_step = t->st.step,
			     .gradcam_every = o->gradcam_every };
	/* rank 0 alone writes: the others log nothing */
	if (trainlog_open(&t->log, t->dist.rank ? NULL : o->logdir, t->dist.rank ? NULL : o->snapshots, &t->m,
			  t->train.images.data, &lo, err))
		cli_die("%s", err);
	if (o->gradcam_every && t->test.n && !t->dist.rank &&
	    trainlog_gradcam_images(&t->log, &t->m, t->test.images.data, t->test.labels, (int)t->test.n, err))
		cli_die("--gradcam-every: %s", err);
	/* a frozen base's large layers a few images at a time; the feature maps TensorBoard
	 * shows are read after a forward */
	for (int k = 0; k < t->log.nmaps; k++)
		model_keep(&t->m, t->log.map_layer[k]);
	if (model_lean(&t->m, err))
		cli_die("%s", err);
	if (t->dist.mpi) {
		char sha[HASH_HEX];

		params_sha256(&t->m, 0, sha);
		if (dist_same(&t->dist, "the initial parameters (SHA-256)", sha, err) ||
		    dist_grads_begin(&t->dist, &t->m, err))
			cli_die("%s", err);
	}
}

/* The step's metrics: the training batch's, and a random sample of the test set's. */
static void log_step(trainer *t, int64_t step, double loss, double acc)
{
	metric(t, step, TRAINLOG_TRAIN, "Loss", loss);
	metric(t, step, TRAINLOG_TRAIN, "Accuracy", acc);
	if (t->test.n && t->o->test_sample) {
		rng r;
		double tl, ta;

		stream(&r, t->o->seed, STREAM_SAMPLE, step);
		for (int i = 0; i < t->o->test_sample; i++)
			t->idx[i] = (int64_t)rng_below(&r, (uint64_t)t->test.n);
		evaluate(t, t->idx, t->o->test_sample, &tl, &ta);
		metric(t, step, TRAINLOG_TEST, "Loss", tl);
		metric(t, step, TRAINLOG_TEST, "Accuracy", ta);
	}
	fflush(stdout);
}

/* --profile: milliseconds per step of each layer and of the optimiser; the rest of the
 * wall time is data, metrics, logging and checkpoints. */
static double backward_seconds(const model *m)
{
	double s = 0;

	for (int i = 0; i < m->nlayer; i++)
		s += m->layer[i].t_bwd;
	return s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* --profile's counters start again after a run's first step when more follow: that step
 * carries the first touches of the activations and of Adam's moments (page faults, 0.3 s
 * or more at 224), start-up costs that would otherwise read as a layer's. */
static void profile_restart(trainer *t, double *t_opt, double *tp)
{
	for (int i = 0; i < t->m.nlayer; i++)
		t->m.layer[i].t_fwd = t->m.layer[i].t_bwd = 0;
	t->t_aug = t->dist.t_comm = t->ckpt.t_ckpt = *t_opt = 0;
	*tp = progress_now();
}

/* The steady state of a run that logs every `every` steps: the median over stretches of
 * that many steps (the first step left out), per step. A stretch holds one logged step
 * (its test sample, its images), so this is the loop's own rate, logging included, which
 * start-up, checkpoints and the end are measured against; 0 when too few stretches ran. */
static double period(const double *step_s, int64_t ran, int every)
{
	int64_t k = ran > 1 ? (ran - 1) / every : 0;
	double *v, med;

	if (k < 3 || !(v = malloc(sizeof *v * (size_t)k)))
		return 0;
	for (int64_t i = 0; i < k; i++) {
		v[i] = 0;
		for (int j = 0; j < every; j++)
			v[i] += step_s[1 + i * every + j];
	}
	qsort(v, (size_t)k, sizeof *v, cmp_double);
	med = v[k / 2] / every;
	free(v);
	return med;
}

/* steps: the profiled ones, from tp (after the first step when more than one ran); t0: the
 * run's steps began; the whole run's wall time is read here. */
static void profile(trainer *t, int64_t steps, int64_t ran, double t_opt, double t0, double tp)
{
	const ckptsched *c = &t->ckpt;
	double ms = steps ? 1e3 / steps : 0, sum = t_opt, wall = progress_now() - tp;
	fprintf(stderr, "%s: profile over %lld step%s%s, ms per step (batch %d, %d threads, %s, "
		"OpenBLAS core %s)\n", PROG, (long long)steps, steps == 1 ? "" : "s",
		steps < ran ? " after the first" : "", t->o->batch, t->o->threads, isa_name(t->m.isa), blas_core());
	fprintf(stderr, "  %-12s %-8s %-14s %9s %9s  %s\n", "layer", "kind", "output", "forward",
		"backward", "kernels");
	for (int i = 0; i < t->m.nlayer; i++) {
		const model_layer *l = &t->m.layer[i];
		char shape[32];

		snprintf(shape, sizeof shape, "%dx%dx%d", l->oh, l->ow, l->oc);
		fprintf(stderr, "  %-12s %-8s %-14s %9.2f %9.2f%s%s%s\n", l->name,
			model_kind_name(l->kind), shape, l->t_fwd * ms, l->t_bwd * ms,
			l->kind == MODEL_CONV ? "  " : "",
			l->kind != MODEL_CONV ? "" : l->wino_ran ? "winograd" : conv2d_plan_path(&l->plan),
			i < t->m.band_n ? "  (by bands)" : "");
		sum += l->t_fwd + l->t_bwd;
	}
	sum += t->dist.t_comm;
	fprintf(stderr, "  %-36s %9.2f\n", "optimiser", t_opt * ms);
	if (t->dist.mpi)
		fprintf(stderr, "  %-36s %9.2f\n", "gradient sums (MPI calls)", t->dist.t_comm * ms);
	fprintf(stderr, "  %-36s %9.2f\n", "checkpoints (copies, waits, the last)", c->t_ckpt * ms);
	if (t->o->aug.n)
		fprintf(stderr, "  %-36s %9.2f\n", "augmentation", t->t_aug * ms);
	fprintf(stderr, "  %-36s %9.2f\n  %-36s %9.2f\n", "data, metrics, logging",
		(wall - sum - c->t_ckpt - t->t_aug) * ms, "total", wall * ms);
	fprintf(stderr, "%s: the whole run %.2f s: start-up %.2f s (reading the data %.2f, its SHA-256 "
		"%.2f, the model %.2f), %lld steps and checkpoints %.2f s\n", PROG,
		progress_now() - t->t_start, t0 - t->t_start, t->t_read, t->t_hash, t->t_model,
		(long long)ran, progress_now() - t0);
	if (ran && t->step_s) {
		double med, run = progress_now() - t->t_start, first = t->step_s[0], sum = 0, beside;
		double per = period(t->step_s, ran, t->o->log_every), logs;

		for (int64_t i = 0; i < ran; i++)
			sum += t->step_s[i];
		qsort(t->step_s, (size_t)ran, sizeof *t->step_s, cmp_double);
		med = t->step_s[ran / 2];
		per = per > med ? per : med;
		logs = (per - med) * ran;
		beside = t->beside_s - med * t->beside_n;
		fprintf(stderr, "%s: steady-state step (the median) %.1f ms; with the logging every %d steps "
			"(the median %d-step stretch) %.1f ms; x %lld steps = %.2f s; the whole run takes %.1f%% "
			"more (%.1f%% without the epochs' tests)\n", PROG, med * 1e3, t->o->log_every,
			t->o->log_every, per * 1e3, (long long)ran, per * ran, 100 * (run / (per * ran) - 1),
			100 * ((run - t->t_test) / (per * ran) - 1));
		/* the writer's CPU comes out of the steps it runs beside */
		if (t->beside_n)
			fprintf(stderr, "%s: %lld steps ran beside a background checkpoint's writing, %.1f ms "
				"each on average: %.2f s more than at the median\n", PROG, (long long)t->beside_n,
				t->beside_s / t->beside_n * 1e3, beside);
		/* where the whole run's time past the median's goes */
		fprintf(stderr, "%s: the whole run past the median x steps, %.2f s: start-up %.2f, the first "
			"step %.2f, checkpoints in the loop %.2f, waits for their staging buffer %.2f, the "
			"steps beside a checkpoint's writing %.2f, the epochs' tests %.2f, the logging (test "
			"samples, images) %.2f, the other steps %.2f, after the last step %.2f\n", PROG,
			run - med * ran, t0 - t->t_start, first - med, c->t_copy + c->t_wait, c->t_prep,
			beside, t->t_test, logs, sum - med * ran - (first - med) - c->t_copy - c->t_wait -
			c->t_prep - beside - t->t_test - logs, run - (t0 - t->t_start) - sum);
	}
	if (t->o->ckpt_bg >= 0)
		fprintf(stderr, "%s: checkpoints in the %s (--checkpoint-%s)\n", PROG,
			t->ckpt_bg ? "background" : "foreground", t->ckpt_bg ? "background" : "foreground");
	else
		fprintf(stderr, "%s: checkpoints in the %s, the default where their staging copy (%zu MB) "
			"%s a quarter of the memory available (%zu MB)\n", PROG,
			t->ckpt_bg ? "background" : "foreground", t->stage_bytes >> 20,
			t->ckpt_bg ? "fits in" : "would take more than", t->avail_bytes >> 20);
	if (c->n_bg)
		fprintf(stderr, "%s: %d checkpoints written in the background, each on disk (fsynced, "
			"named) %.2f s after its step on average, %.2f s at most; each cost the training "
			"loop %.3f s (its copy) and %.3f s of waits, and the writer %.2f s of CPU\n",
			PROG, c->n_bg, c->bg_sum / c->n_bg, c->bg_max, c->t_copy / c->n_bg,
			c->t_wait / c->n_bg, c->bg_cpu / c->n_bg);
	/* fresh memory is the one cost a first checkpoint has that the others have not */
	if (c->writer.stage) {
		char why[96] = "";

		if (c->writer.huge_rate > 0)
			snprintf(why, sizeof why, " (the rest in small ones: a chunk in huge ones came at "
				 "%.2f GB/s)", c->writer.huge_rate / 1e9);
		fprintf(stderr, "%s: the staging buffer, %zu MB, was faulted in over %.2f s from the "
			"first step, %zu MB of it in huge pages%s; the loop waited %.2f s for it, faulting "
			"%zu MB of it on %d threads\n", PROG, c->writer.stage_bytes >> 20, c->prep_seconds,
			(size_t)c->writer.huge_bytes >> 20, why, c->t_prep,
			(size_t)c->writer.fault_waited >> 20, c->writer.threads);
	}
	if (c->end_lent)
		fprintf(stderr, "%s: the last checkpoint was on disk %.2f s after its step, written while "
			"the run finished; the run waited %.2f s for it\n", PROG, c->end_seconds, c->t_last);
	else
		fprintf(stderr, "%s: the last checkpoint took %.2f s\n", PROG, c->t_last);
	if (t->dist.mpi && t->dist.steps)
		fprintf(stderr, "%s: %d ranks: %.1f MB of gradients summed per step; rank 0 waited %.2f ms "
			"per step for the sums after its backward\n", PROG,
			t->dist.size, t->dist.bytes / t->dist.steps / 1e6, t->dist.t_wait / t->dist.steps * 1e3);
}

/* Under mpirun, the batch's mean loss and correct count from each rank's (of its rows of
 * the b); and whether any rank got a signal (all then stop after this step). */
static void joined(trainer *t, double *loss, int *c, int rows, int b)
{
	double v[2] = { *loss * rows, *c };

	dist_sum_f64(&t->dist, v, 2);
	*loss = v[0] / b, *c = (int)v[1];
	t->stop = dist_max_i64(&t->dist, stop_signal);
}

/* --augment: the batch's images idx [b] into aug_img, each drawn by (seed, epoch, its index
 * in the training set); the first batch of a run from step 0 goes to TensorBoard. */
static void augment(trainer *t, int64_t epoch, const int64_t *idx, int b)
{
	char err[ERR_MAX];
	double t0 = progress_now();

	if (!t->o->aug.n)
		return;
	if (aug_batch(&t->aug, t->aug_img, t->img, b, (uint64_t)t->o->seed, epoch, idx, err))
		cli_die("%s", err);
	t->t_aug += progress_now() - t0;
	if (t->st.step == 0 && trainlog_batch(&t->log, 0, "augment/batch", t->aug_img, b, t->m.h, t->m.w, err))
		cli_die("%s", err);
}

/* Checkpoints in the background or the foreground as asked, else as memory allows. */
static void ckpt_mode(trainer *t)
{
	t->ckpt_bg = t->o->ckpt_bg >= 0 ? t->o->ckpt_bg
		     : ckpt_background_fits(&t->m, t->st.optim, &t->stage_bytes, &t->avail_bytes);
	/* once: a run that became slower for want of memory should say why */
	if (t->o->ckpt_bg < 0 && !t->ckpt_bg && !t->dist.rank)
		fprintf(stderr, "%s: checkpoints in the foreground (training waits for each): their "
			"staging copy (%zu MB) would take more than a quarter of the memory available "
			"(%zu MB); --checkpoint-background writes them beside training anyway\n", PROG,
			t->stage_bytes >> 20, t->avail_bytes >> 20);
}

static int train(trainer *t)
{
	struct opts *o = t->o;
	int64_t n = t->train.n, spe = (n + o->batch - 1) / o->batch, total = spe * o->epochs;
	int64_t epoch_ready = -1, images = 0, first = t->st.step, pfirst = first;
	int64_t last = o->stop_after && o->stop_after < total ? o->stop_after : total;
	double t0 = progress_now(), t_opt = 0, t1, b0, c0, ts = t0, tp = t0;
	optim_adam adam = { o->lr, 0.9, 0.999, 1e-8 };
	progress p;
	char extra[96], err[ERR_MAX];

	ckpt_mode(t);
	ckptsched_init(&t->ckpt, o->out, o->ckpt_unit, o->ckpt_every, t->ckpt_bg, total, o->stop_after, t0);
	if (o->profile && total > first && !(t->step_s = calloc((size_t)(total - first), sizeof *t->step_s)))
		cli_die("out of memory");
	progress_init(&p, "train", total, 0, o->progress);
	progress_set_unit(&p, "step");
	if (t->st.step == 0)
		log_model(t, 0);
	while (t->st.step < total && !stopping(t) && (!o->stop_after || t->st.step < o->stop_after)) {
		int64_t step = t->st.step, epoch = step / spe, pos = step % spe;
		int b = (int)(n - pos * o->batch < o->batch ? n - pos * o->batch : o->batch), c = 0, rows;
		int64_t lo, hi;
		double loss = 0;
		int beside = t->ckpt.writer.running && t->ckpt.writer.writing;
		double cw = t->ckpt.t_copy + t->ckpt.t_wait;
		rng r;

		if (epoch != epoch_ready) {
			for (int64_t i = 0; i < n; i++)
				t->perm[i] = i;
			stream(&r, o->seed, STREAM_SHUFFLE, epoch);
			rng_shuffle_i64(&r, t->perm, (size_t)n);
			epoch_ready = epoch;
		}
		/* under mpirun this rank's rows lo..hi-1 of the batch; else all of them */
		dist_share(&t->dist, b, &lo, &hi);
		rows = (int)(hi - lo);
		dataset_gather(&t->train, t->perm + pos * o->batch + lo, rows, t->img, t->lab);
		augment(t, epoch, t->perm + pos * o->batch + lo, rows);
		stream(&r, o->seed, STREAM_DROPOUT, step);
		model_train(&t->m, (float)o->keep_conv, (float)o->keep_fc, &r);
		if (t->dist.mpi)
			model_share(&t->m, (int)lo, b);
		if (rows)
			finetune_cache_forward(&t->cache, &t->m, o->aug.n ? t->aug_img : t->img,
					       t->perm + pos * o->batch + lo, t->lab, rows);
		loss = rows ? t->m.loss : 0, c = rows ? t->m.correct : 0;
		/* the optimiser's time: the step's, less the layers' backward (fc1's includes its
		 * own weights' Adam update, fused into it) */
		b0 = backward_seconds(&t->m), c0 = t->dist.t_comm;
		t1 = progress_now();
		if (t->dist.mpi) {
			/* the gradients are summed over ranks before any update: no fused Adam */
			if (rows)
				model_backward(&t->m);
			else
				dist_grads_none(&t->dist);
			dist_grads_end(&t->dist);
			if (o->optim == CKPT_ADAM)
				model_adam_step(&t->m, &adam, step + 1);
			else
				model_momentum_step(&t->m, o->lr, o->momentum);
			joined(t, &loss, &c, rows, b);
		} else if (o->optim == CKPT_ADAM) {
			model_backward_adam(&t->m, &adam, step + 1);
		} else {
			model_backward(&t->m);
			model_momentum_step(&t->m, o->lr, o->momentum);
		}
		t_opt += progress_now() - t1 - (backward_seconds(&t->m) - b0) - (t->dist.t_comm - c0);
		t->st.step = ++step;
		/* rank 0 alone writes; first, so that a checkpoint written by a thread (the run's
		 * last step's always) overlaps the logs and the epoch's test */
		if (!t->dist.rank && ckptsched_step(&t->ckpt, spe, stopping(t), &t->m, &t->train.classes, &t->st, err))
			cli_die("%s", err);
		if (step % o->log_every == 0)
			log_step(t, step, loss, (double)c / b);
		log_model(t, step);
		if (step % spe == 0) {
			if (t->test.n) {
				double tl, ta;

				for (int64_t i = 0; i < t->test.n; i++)
					t->idx[i] = i;
				double e0 = progress_now();

				evaluate(t, t->idx, t->test.n, &tl, &ta);
				t->t_test += progress_now() - e0;
				metric(t, step, TRAINLOG_TEST_EPOCH, "Loss", tl);
				metric(t, step, TRAINLOG_TEST_EPOCH, "Accuracy", ta);
				fflush(stdout);
			}
		}
		images += b;
		snprintf(extra, sizeof extra, "epoch %lld/%d loss %.4f acc %.2f %.1f img/s", (long long)epoch + 1,
			 o->epochs, loss, (double)c / b, images / (progress_now() - t0 + 1e-9));
		progress_update(&p, step, extra);
		if (t->step_s) {
			t->step_s[step - 1 - first] = progress_now() - ts;
			/* less a copy or wait of its own: those are counted as such */
			if (beside)
				t->beside_n++, t->beside_s += progress_now() - ts - (t->ckpt.t_copy + t->ckpt.t_wait - cw);
		}
		ts = progress_now();
		if (o->profile && step == first + 1 && step < last && !stopping(t)) {
			profile_restart(t, &t_opt, &tp);
			pfirst = step;
		}
	}
	progress_end(&p);
	if (!t->dist.rank && ckptsched_end(&t->ckpt, &t->m, &t->train.classes, &t->st, err))
		cli_die("%s", err);
	if (o->profile && !t->dist.rank)
		profile(t, t->st.step - pfirst, t->st.step - first, t_opt, t0, tp);
	return stopping(t) ? 128 + stopping(t) : 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	trainer t = { .o = &o };
	struct sigaction sa = { .sa_handler = on_signal };
	char err[ERR_MAX];
	int rc;

	/* before anything is read: OpenBLAS takes its core only as it loads */
	blas_use_machine(PROG, argv);

	t.t_start = progress_now();
	parse_args(argc, argv, &o);
	/* under mpirun: MPI, and rank 0 alone draws progress */
	if (dist_init(&t.dist, &argc, &argv, err))
		cli_die("%s", err);
	if (t.dist.rank)
		o.progress = PROGRESS_OFF;
	sigemptyset(&sa.sa_mask);
	/* A closed terminal or metrics pipe stops the run like SIGTERM: checkpoint, then exit. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	setup(&t);
	rc = train(&t);
	/* for tests: every rank's parameters and optimiser state end the same */
	if (getenv("PETCNN_DIST_SHA")) {
		char sha[HASH_HEX];

		params_sha256(&t.m, 1, sha);
		cli_warn("rank %d of %d: parameters and optimiser state SHA-256 %s", t.dist.rank, t.dist.size, sha);
	}
	dist_finish(&t.dist);
	if (trainlog_close(&t.log, err))
		cli_die("%s", err);
	ckptsched_free(&t.ckpt);
	finetune_cache_free(&t.cache);
	aug_free(&t.aug);
	model_free(&t.m);
	dataset_free(&t.train);
	dataset_free(&t.test);
	free(t.perm), free(t.idx), free(t.img), free(t.lab), free(t.step_s), free(t.aug_img);
	if (cli_close_stdout() && !rc)
		return CLI_FAIL;
	return rc;
}
