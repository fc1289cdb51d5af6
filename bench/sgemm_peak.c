/* sgemm_peak: what OpenBLAS's cblas_sgemm reaches on this machine on the GEMM shapes of
 * the seed network at 224x224 (one image per call, as im2col gives them), so the trainers'
 * GFLOP/s can be read as a share of what the BLAS itself can do.
 *
 * Usage: sgemm_peak THREADS [SECONDS]
 * Prints 'core NAME', 'config TEXT', then one line per shape
 *   'gemm NAME M N K GFLOPS' (best of 4 timed trials; all of them take about SECONDS)
 * and last 'peak GFLOPS': the best of the compute-bound shapes (the convolutions' and a
 * square one; fc1's M=10 shape is memory-bound and printed for information only). On a
 * shared machine the best shape is the least disturbed one, so the peak takes them all.
 * Built by bench/run with `pkg-config --cflags --libs openblas`, as cnn-train is. */
#define _DEFAULT_SOURCE
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct shape {
	const char *name;
	int m, n, k, trans_a, peak;  /* peak: compute-bound, counts for the peak */
};

/* Row-major C[M,N] = op(A)[M,K] B[K,N]. */
static const struct shape shapes[] = {
	{ "conv1_2.fwd", 50176, 32, 288, 0, 1 },    /* im2col [HW, 9*32] x W [288, 32] */
	{ "conv2_2.fwd", 12544, 64, 576, 0, 1 },    /* [HW, 9*64] x [576, 64] */
	{ "conv2_2.dW", 576, 64, 12544, 1, 1 },     /* im2col^T [576, HW] x dY [HW, 64] */
	{ "conv2_2.dX", 12544, 576, 64, 0, 1 },     /* dY [HW, 64] x W^T [64, 576] */
	{ "fc1.fwd", 10, 512, 200704, 0, 0 },       /* X [10, 200704] x W [200704, 512] */
	{ "square", 1024, 1024, 1024, 0, 1 },       /* the BLAS at its best, for reference */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *filled(size_t n)
{
	float *p = malloc(n * sizeof *p);

	if (!p) {
		fprintf(stderr, "sgemm_peak: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
	return p;
}

static void gemm(const struct shape *s, const float *a, const float *b, float *c)
{
	cblas_sgemm(CblasRowMajor, s->trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans,
		    s->m, s->n, s->k, 1.0f, a, s->trans_a ? s->m : s->k, b, s->n, 0.0f, c, s->n);
}

/* Best GFLOP/s over 4 trials of about trial seconds each. */
static double measure(const struct shape *s, double trial)
{
	size_t m = (size_t)s->m, n = (size_t)s->n, k = (size_t)s->k;
	float *a = filled(m * k), *b = filled(k * n), *c = filled(m * n);
	double flop = 2.0 * m * n * k, best = 0;

	gemm(s, a, b, c); /* warm the caches, start the threads */
	for (int t = 0; t < 4; t++) {
		double t0 = now(), el;
		long reps = 0;

		do {
			gemm(s, a, b, c);
			reps++;
			el = now() - t0;
		} while (el < trial);
		if (reps * flop / el / 1e9 > best)
			best = reps * flop / el / 1e9;
	}
	free(a), free(b), free(c);
	return best;
}

int main(int argc, char **argv)
{
	int threads;
	double seconds = 2, peak = 0;
	char *end;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "Usage: sgemm_peak THREADS [SECONDS]\n");
		return 2;
	}
	threads = (int)strtol(argv[1], &end, 10);
	if (*end || threads < 1 || threads > 256 ||
	    (argc == 3 && ((seconds = strtod(argv[2], &end)), *end || seconds <= 0 || seconds > 600))) {
		fprintf(stderr, "sgemm_peak: bad THREADS or SECONDS\n");
		return 2;
	}
	openblas_set_num_threads(threads);
	printf("core %s\nconfig %s\n", openblas_get_corename(), openblas_get_config());
	for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
		double g = measure(&shapes[i], seconds / 4 / (double)(sizeof shapes / sizeof *shapes));

		printf("gemm %s %d %d %d %.1f\n", shapes[i].name, shapes[i].m, shapes[i].n, shapes[i].k, g);
		fflush(stdout);
		if (shapes[i].peak && g > peak)
			peak = g;
	}
	printf("peak %.1f\n", peak);
	return ferror(stdout) || fclose(stdout) ? 1 : 0;
}
