/* dense_fwd: fc1's forward (w [200704, 512], 411 MB, the default network at 224) through
 * our streaming dense_forward beside OpenBLAS's sgemm (M = batch) on the same data, per
 * batch size: which one dense_forward's DENSE_FWD_MAX_B should hand each batch to.
 *
 * Usage: dense_fwd THREADS [ROUNDS]     e.g. dense_fwd 2, or PETCNN_ISA=avx2 dense_fwd 2
 * Prints 'dense B ours_ms sgemm_ms ratio GB/s' per batch size, each time the best of
 * ROUNDS (default 5) alternating calls; GB/s is w's bytes over our time (w is read once
 * per call, so a pass runs at most at the memory's speed). Built by bench/run against
 * build/libpetcnn.a. */
#define _DEFAULT_SOURCE
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nn/dense.h"
#include "nn/isa.h"
#include "util/mem.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	const long nin = 200704, nout = 512, maxb = 32;
	const int sizes[] = { 8, 10, 16, 24, 32 };
	int threads = argc > 1 ? atoi(argv[1]) : 2, rounds = argc > 2 ? atoi(argv[2]) : 5;
	char err[256];
	isa_kind isa;
	/* w where the model keeps it: on a cache line (mem_calloc64) */
	float *w = mem_calloc64((size_t)nin * nout, sizeof *w), *in = malloc(sizeof *in * maxb * nin);
	float *out = malloc(sizeof *out * maxb * nout), *b = calloc(nout, sizeof *b);

	if (isa_from_env(&isa, err) < 0) {
		fprintf(stderr, "dense_fwd: %s\n", err);
		return 2;
	}
	if (!w || !in || !out || !b || threads < 1 || rounds < 1) {
		fprintf(stderr, "usage: dense_fwd THREADS [ROUNDS] (needs 450 MB)\n");
		return 2;
	}
	/* inference's dense inputs (dropout's zeros would favour the stream further) */
	for (long i = 0; i < nin * nout; i++)
		w[i] = (float)(i % 13) * 0.01f - 0.06f;
	for (long i = 0; i < maxb * nin; i++)
		in[i] = (float)(i % 7) * 0.1f;
	openblas_set_num_threads(threads);
	printf("fc1 forward, w %ld x %ld (%.0f MB), %d threads, %s; best of %d, ms\n", nin, nout,
	       nin * nout * 4 / 1e6, threads, isa_name(isa), rounds);
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		int B = sizes[k];
		double ours = 1e9, theirs = 1e9;

		for (int r = 0; r < rounds; r++) {
			double t0 = now(), t1, t2;

			dense_forward(out, in, w, b, B, (int)nin, (int)nout, 0, threads, isa);
			t1 = now();
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, (int)nout, (int)nin, 1.0f,
				    in, (int)nin, w, (int)nout, 0.0f, out, (int)nout);
			t2 = now();
			ours = t1 - t0 < ours ? t1 - t0 : ours;
			theirs = t2 - t1 < theirs ? t2 - t1 : theirs;
		}
		printf("dense %2d %7.1f %7.1f %5.2fx %5.1f GB/s\n", B, ours * 1e3, theirs * 1e3,
		       theirs / ours, nin * nout * 4 / ours / 1e9);
	}
	mem_free64(w), free(in), free(out), free(b);
	return 0;
}
