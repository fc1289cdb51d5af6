/* conv_bench: GFLOP/s of the convolution kernels (forward, input gradient, weight gradient)
 * on the default network's four conv layers, per path, beside the machine's FMA peak as
 * measured here (not assumed: AVX-512 may run at a lower clock than AVX2).
 *
 * Usage: conv_bench SIZE THREADS [SECONDS]     e.g. conv_bench 224 2
 *        conv_bench peak THREADS [SECONDS]
 *        conv_bench nets THREADS [SECONDS [LAYER [BATCH]]]  (ResNet-18's, MobileNetV2's forwards)
 *        conv_bench bwd THREADS [SECONDS [LAYER [BATCH]]]   (their backwards)
 * The first prints, for each path this CPU has (PETCNN_ISA set: that one only), one line
 * per layer and phase (fwd, din, dw; and dw by Winograd where it fits, as cnn-train runs
 * it): 'conv PATH LAYER PHASE GFLOPS ...' at batch 10, best of several trials by wall time,
 * and by CPU time / threads (what an idle machine would give if the threads are balanced:
 * a shared machine's other jobs cost us wall time, not CPU time).
 * The second prints the clock and the FMA peak, found as:
 *   clock: a chain of dependent integer adds of a register, one a cycle on x86-64;
 *   peak per width: 12 independent FMA chains per thread (enough to hide the latency on
 *   every core we know), FLOP/s summed over the threads;
 *   both over each thread's CPU time, so that other jobs' turns on the cores do not count;
 *   FMA units: peak / (threads x clock x lanes x 2), rounded.
 * Built by bench/run against build/libpetcnn.a. */
#define _DEFAULT_SOURCE
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/conv2d.h"
#include "nn/convdirect.h"
#include "nn/convwino.h"
#include "nn/isa.h"
#include "nn/vec.h"
#include "util/errmsg.h"
#include "util/par.h"

#include "peak.h"

#define BATCH 10

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of this thread, or (process) of all threads: on a machine shared with other
 * jobs, the time we actually ran, where wall time would count their turns too. The kernel
 * adds a running thread's time to the process's at ticks and switches, and par's workers
 * stay running between calls, so the process's time is read over a whole loop of calls
 * (tenths of a second), never around one. */
static double cpu(int process)
{
	struct timespec ts;

	clock_gettime(process ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "conv_bench: out of memory\n");
		exit(1);
	}
	return p;
}

static float *randf(size_t n)
{
	float *p = xmalloc(n * sizeof *p);

	for (size_t i = 0; i < n; i++)
		p[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
	return p;
}

/* ---- peak ---- */

typedef struct {
	long iters;
	int width;        /* 0: clock loop, 8 or 16: FMA lanes */
	double rate[PAR_MAX_THREADS];   /* each thread's, per its CPU second */
} peak_job;

static void peak_worker(void *ctx, int k, int n)
{
	peak_job *j = ctx;

	(void)n;
	j->rate[k] = peak_rate_once(j->width == 16 ? PEAK_FMA16 : j->width == 8 ? PEAK_FMA8 : PEAK_ADD, j->iters);
}

/* Operations per second summed over threads, each over its own CPU time: adds (width 0)
 * or FLOPs (2 per FMA lane). */
static double peak_rate(int width, int threads, double secs)
{
	peak_job j = { .iters = 1 << 20, .width = width };
	double best = 0;

	for (;;) {
		double t0 = now();

		par_run(threads, peak_worker, &j);
		double dt = now() - t0;

		if (dt > secs / 6)
			break;
		j.iters *= 2;
	}
	for (int r = 0; r < 5; r++) {
		double rate = 0;

		par_run(threads, peak_worker, &j);
		for (int k = 0; k < threads; k++)
			rate += j.rate[k];

		best = rate > best ? rate : best;
	}
	return best;
}

static void peak(int threads, double secs)
{
	double hz = peak_rate(0, 1, secs);
	static const struct { isa_kind isa; int lanes; } w[] = { { ISA_AVX2, 8 }, { ISA_AVX512, 16 } };

	printf("clock %.2f GHz (dependent integer adds, 1 thread, per CPU second)\n", hz / 1e9);
	for (size_t i = 0; i < sizeof w / sizeof *w; i++) {
		if (!isa_supported(w[i].isa))
			continue;
		double r = peak_rate(w[i].lanes, threads, secs), per = r / threads / (w[i].lanes * 2);
		double thz = peak_rate(0, threads, secs) / threads;

		printf("peak %s %d threads: %.1f GFLOP/s per CPU second; = %d x %.2f GHz x %d lanes x %.2f"
		       " FMA/cycle x 2 (clock with every thread adding: %.2f GHz)\n", isa_name(w[i].isa),
		       threads, r / 1e9, threads, hz / 1e9, w[i].lanes, per / hz, thz / 1e9);
	}
}

/* ---- convolutions ---- */

struct layer {
	const char *name;
	int div, cin, cout;   /* input size = SIZE / div */
};

static const struct layer layers[] = {
	{ "conv1_1", 1, 3, 32 }, { "conv1_2", 1, 32, 32 }, { "conv2_1", 2, 32, 64 }, { "conv2_2", 2, 64, 64 },
};

typedef struct {
	geom g, t;
	float *in, *w, *wt, *b, *out, *dout, *din, *dw, *db, *ws;
	int threads;
	isa_kind isa;
} conv_case;

static void run_phase(conv_case *c, int phase)
{
	switch (phase) {
	case 0:
		conv2d_forward(&c->g, c->out, c->in, c->w, c->b, BATCH, 1, c->ws, c->threads, c->isa);
		break;
	case 1:
		/* din alone: the turned kernel's convolution (as conv2d_backward runs it) */
		if (convdirect_fits(&c->t, c->isa))
			convdirect_forward(&c->t, c->din, c->dout, c->wt, NULL, 0, c->in, VEC_RELU, BATCH,
					   c->threads, c->ws, c->isa);
		else
			conv2d_forward(&c->t, c->din, c->dout, c->wt, NULL, BATCH, 0, c->ws, c->threads, c->isa);
		break;
	case 2:
		conv2d_backward(&c->g, NULL, c->dw, c->db, c->dout, c->in, c->w, BATCH, 0, c->ws,
				c->threads, c->isa);
		break;
	default:
		/* dw as cnn-train takes it where Winograd fits */
		convwino_wgrad(&c->g, c->dw, c->db, c->dout, c->in, BATCH, 0, c->threads, c->ws, c->isa);
	}
}

/* The paths to time, widest first: every one this CPU has, or PETCNN_ISA's alone. */
static int bench_paths(isa_kind out[3])
{
	static const isa_kind all[] = { ISA_AVX512, ISA_AVX2, ISA_GENERIC };
	char err[ERR_MAX];
	isa_kind forced;
	int env = getenv("PETCNN_ISA") && *getenv("PETCNN_ISA"), n = 0;

	if (isa_from_env(&forced, err)) {
		fprintf(stderr, "conv_bench: %s\n", err);
		exit(2);
	}
	for (int p = 0; p < 3; p++)
		if (isa_supported(all[p]) && (!env || all[p] == forced))
			out[n++] = all[p];
	return n;
}

static void convs(int size, int threads, double secs)
{
	static const char *phase[] = { "fwd", "din", "dw", "dw" };
	isa_kind paths[3];
	int npaths = bench_paths(paths);
	char err[ERR_MAX];

	for (size_t l = 0; l < sizeof layers / sizeof *layers; l++) {
		const struct layer *L = &layers[l];
		int s = size / L->div;
		conv_case c = { .threads = threads };

		if (geom_init(&c.g, s, s, L->cin, 3, 3, 1, 1, GEOM_SAME, L->cout, err)) {
			fprintf(stderr, "conv_bench: %s\n", err);
			exit(2);
		}
		c.t = (geom){ .h = s, .w = s, .c = L->cout, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .oh = s,
			      .ow = s, .pt = 2 - c.g.pt, .pl = 2 - c.g.pl, .oc = L->cin };
		size_t nin = (size_t)BATCH * s * s * L->cin, nout = (size_t)BATCH * s * s * L->cout;
		size_t nw = (size_t)9 * L->cin * L->cout, nws = conv2d_workspace(&c.g, threads);

		if (conv2d_workspace(&c.t, threads) > nws)
			nws = conv2d_workspace(&c.t, threads);
		c.in = randf(nin), c.w = randf(nw), c.wt = randf(nw), c.b = randf(L->cout);
		c.out = randf(nout), c.dout = randf(nout), c.din = randf(nin), c.dw = randf(nw);
		c.db = randf(L->cout), c.ws = randf(nws);
		double flops = 2.0 * nout * 9 * L->cin;

		for (int p = 0; p < npaths; p++) {
			c.isa = paths[p];
			for (int ph = 0; ph < 4; ph++) {
				double best = 1e30, bestc, spent = 0, c0 = cpu(1);
				int n = 0;

				/* the first layer has no input gradient, nor (3 channels) Winograd */
				if ((ph == 1 && l == 0) || (ph == 3 && !convwino_fits(&c.g, c.isa)))
					continue;
				while (n < 3 || (spent < secs && n < 50)) {
					double t0 = now();

					run_phase(&c, ph);
					double dt = now() - t0;

					best = dt < best ? dt : best, spent += dt, n++;
				}
				bestc = (cpu(1) - c0) / threads / n;
				printf("conv %-7s %s %-3s %7.1f GFLOP/s %7.2f ms wall, %7.1f per CPU second"
				       " (%s)\n", isa_name(c.isa), L->name, phase[ph], flops / best / 1e9,
				       best * 1e3, flops / bestc / 1e9,
				       ph == 1 ? (convdirect_fits(&c.t, c.isa) ? "direct" : "sgemm")
				       : ph == 3 ? "winograd" : conv2d_path(&c.g, c.isa));
			}
		}
		free(c.in), free(c.w), free(c.wt), free(c.b), free(c.out), free(c.dout);
		free(c.din), free(c.dw), free(c.db), free(c.ws);
	}
}

/* ---- the forward of real networks' layers ---- */

/* ResNet-18's and MobileNetV2's convolutions at 224: name, input h (= w), cin, kernel,
 * stride, pad, cout, and whether depthwise (groups = cin = cout). */
static const struct netconv {
	const char *name;
	int h, cin, k, s, pad, cout, dw;
} netconvs[] = {
	{ "r18.conv1", 224, 3, 7, 2, 3, 64, 0 },     { "r18.l1.3x3", 56, 64, 3, 1, 1, 64, 0 },
	{ "r18.l2.s2", 56, 64, 3, 2, 1, 128, 0 },    { "r18.l2.ds", 56, 64, 1, 2, 0, 128, 0 },
	{ "r18.l2.3x3", 28, 128, 3, 1, 1, 128, 0 },  { "r18.l3.s2", 28, 128, 3, 2, 1, 256, 0 },
	{ "r18.l3.ds", 28, 128, 1, 2, 0, 256, 0 },   { "r18.l3.3x3", 14, 256, 3, 1, 1, 256, 0 },
	{ "r18.l4.s2", 14, 256, 3, 2, 1, 512, 0 },   { "r18.l4.ds", 14, 256, 1, 2, 0, 512, 0 },
	{ "r18.l4.3x3", 7, 512, 3, 1, 1, 512, 0 },   { "mv2.f0", 224, 3, 3, 2, 1, 32, 0 },
	{ "mv2.112.32-16", 112, 32, 1, 1, 0, 16, 0 }, { "mv2.112.16-96", 112, 16, 1, 1, 0, 96, 0 },
	{ "mv2.56.96-24", 56, 96, 1, 1, 0, 24, 0 },  { "mv2.56.24-144", 56, 24, 1, 1, 0, 144, 0 },
	{ "mv2.56.144-24", 56, 144, 1, 1, 0, 24, 0 }, { "mv2.28.144-32", 28, 144, 1, 1, 0, 32, 0 },
	{ "mv2.28.32-192", 28, 32, 1, 1, 0, 192, 0 }, { "mv2.28.192-32", 28, 192, 1, 1, 0, 32, 0 },
	{ "mv2.14.192-64", 14, 192, 1, 1, 0, 64, 0 }, { "mv2.14.64-384", 14, 64, 1, 1, 0, 384, 0 },
	{ "mv2.14.384-64", 14, 384, 1, 1, 0, 64, 0 }, { "mv2.14.384-96", 14, 384, 1, 1, 0, 96, 0 },
	{ "mv2.14.96-576", 14, 96, 1, 1, 0, 576, 0 }, { "mv2.14.576-96", 14, 576, 1, 1, 0, 96, 0 },
	{ "mv2.7.576-160", 7, 576, 1, 1, 0, 160, 0 }, { "mv2.7.160-960", 7, 160, 1, 1, 0, 960, 0 },
	{ "mv2.7.960-160", 7, 960, 1, 1, 0, 160, 0 }, { "mv2.7.960-320", 7, 960, 1, 1, 0, 320, 0 },
	{ "mv2.7.320-1280", 7, 320, 1, 1, 0, 1280, 0 },
	{ "mv2dw.112.32", 112, 32, 3, 1, 1, 32, 1 },  { "mv2dw.112.96s2", 112, 96, 3, 2, 1, 96, 1 },
	{ "mv2dw.56.144", 56, 144, 3, 1, 1, 144, 1 }, { "mv2dw.56.144s2", 56, 144, 3, 2, 1, 144, 1 },
	{ "mv2dw.28.192", 28, 192, 3, 1, 1, 192, 1 }, { "mv2dw.14.384", 14, 384, 3, 1, 1, 384, 1 },
	{ "mv2dw.14.576", 14, 576, 3, 1, 1, 576, 1 }, { "mv2dw.7.960", 7, 960, 3, 1, 1, 960, 1 },
	/* the default network's 3x3s, at 224 and at 64 */
	{ "def224.conv1_1", 224, 3, 3, 1, 1, 32, 0 },  { "def64.conv1_1", 64, 3, 3, 1, 1, 32, 0 },
	{ "def224.conv1_2", 224, 32, 3, 1, 1, 32, 0 }, { "def224.conv2_1", 112, 32, 3, 1, 1, 64, 0 },
	{ "def224.conv2_2", 112, 64, 3, 1, 1, 64, 0 }, { "def64.conv1_2", 64, 32, 3, 1, 1, 32, 0 },
	{ "def64.conv2_1", 32, 32, 3, 1, 1, 64, 0 },   { "def64.conv2_2", 32, 64, 3, 1, 1, 64, 0 },
};

/* Each layer's forward at batch B (8 unless given) with ReLU, on each path (PETCNN_ISA: that one only), and
 * by Winograd where it fits (its weights transformed once, outside the timing, as a model
 * with fixed weights does; GFLOP/s counted as the direct sums' for comparison);
 * NAME: only layers whose name starts so. bwd: the backward instead (din through a ReLU's
 * mask, dw and db, as a layer trained above another runs it; GFLOP/s of its two GEMM-sized
 * parts, twice the forward's; a first layer's, of 3 input channels, dw and db alone, as
 * training runs it, and its GEMM-sized part), on the plan's kernels. */
static void nets(int threads, double secs, const char *only, int B, int bwd)
{
	isa_kind paths[3];
	int npaths = bench_paths(paths);
	char err[ERR_MAX];

	for (size_t l = 0; l < sizeof netconvs / sizeof *netconvs; l++) {
		const struct netconv *L = &netconvs[l];
		int pads[4] = { L->pad, L->pad, L->pad, L->pad };
		geom g;

		if (only && strncmp(L->name, only, strlen(only)))
			continue;
		if (geom_init_pads(&g, L->h, L->h, L->cin, L->k, L->k, L->s, L->s, pads, 0, L->dw ? L->cin : 1,
				   L->cout, err)) {
			fprintf(stderr, "conv_bench: %s\n", err);
			exit(2);
		}
		size_t nin = (size_t)B * L->h * L->h * L->cin, nout = (size_t)B * g.oh * g.ow * L->cout;
		int cg = L->dw ? 1 : L->cin;
		float *in = randf(nin), *w = randf((size_t)L->k * L->k * cg * L->cout);
		float *b = randf(L->cout), *out = randf(nout), *ws = randf(conv2d_workspace(&g, threads));
		float *u = randf(convwino_weights(&g)), *wsw = randf(convwino_workspace(&g, threads));
		float *din = bwd && L->cin > 3 ? randf(nin) : NULL;
		float *dw = bwd ? randf((size_t)L->k * L->k * cg * L->cout) : NULL;
		double flops = 2.0 * nout * L->k * L->k * cg * (din ? 2 : 1);

		for (int p = 0; p < npaths; p++) {
			isa_kind isa = paths[p];
			conv2d_plan plan;

			conv2d_plan_init(&plan, &g, isa, threads);
			for (int wino = 0; wino < 2; wino++) {
				double best = 1e30, bestc, spent = 0, c0;
				int n = 0;

				if (wino && (bwd || !convwino_fits(&g, isa)))
					break;
				if (wino)
					convwino_pack(&g, u, w, threads, isa);
				c0 = cpu(1);
				while (n < 3 || (spent < secs && n < 200)) {
					double t0 = now();

					if (bwd)    /* out as dout, in as the ReLU's output below */
						conv2d_run_backward(&plan, din, dw, b, out, in, w, in, VEC_RELU,
								    B, 0, ws);
					else if (wino)
						convwino_forward(&g, out, in, u, b, 1, B, threads, wsw, isa);
					else
						conv2d_run_forward(&plan, out, in, w, b, B, 1, ws);
					double dt = now() - t0;

					best = dt < best ? dt : best, spent += dt, n++;
				}
				bestc = (cpu(1) - c0) / threads / n;
				printf("%s %-7s %-15s %7.1f GFLOP/s %7.2f ms wall, %7.1f per CPU second, %6.2f ms (%s)\n",
				       bwd ? "bwd" : "net", isa_name(isa), L->name, flops / best / 1e9,
				       best * 1e3, flops / bestc / 1e9, bestc * 1e3, wino ? "winograd" : conv2d_plan_path(&plan));
			}
		}
		free(in), free(w), free(b), free(out), free(ws), free(u), free(wsw), free(din), free(dw);
	}
}

int main(int argc, char **argv)
{
	int threads;
	double secs;

	if (argc < 3 || argc > 6) {
		fprintf(stderr, "usage: conv_bench SIZE|peak|nets|bwd THREADS [SECONDS [LAYER [BATCH]]]\n");
		return 2;
	}
	threads = atoi(argv[2]);
	secs = argc > 3 ? atof(argv[3]) : 1.0;
	if (threads < 1 || threads > PAR_MAX_THREADS || !(secs > 0)) {
		fprintf(stderr, "conv_bench: bad threads or seconds\n");
		return 2;
	}
	/* the generic path's sgemm on as many threads as ours */
	openblas_set_num_threads(threads);
	if (!strcmp(argv[1], "peak"))
		peak(threads, secs);
	else if (!strcmp(argv[1], "nets") || !strcmp(argv[1], "bwd"))
		nets(threads, secs, argc > 4 ? argv[4] : NULL, argc > 5 && atoi(argv[5]) > 0 ? atoi(argv[5]) : 8,
		     !strcmp(argv[1], "bwd"));
	else if (atoi(argv[1]) >= 8)
		convs(atoi(argv[1]), threads, secs);
	else {
		fprintf(stderr, "conv_bench: bad size %s\n", argv[1]);
		return 2;
	}
	return 0;
}
