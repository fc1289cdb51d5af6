/* par: workers are started per call: the phases that use them last milliseconds, a
 * thread start tens of microseconds, and no pool means no state between calls. */
#include "util/par.h"

#include <pthread.h>

typedef struct {
	void (*fn)(void *ctx, int k, int n);
	void *ctx;
	int k, n;
} worker;

static void *start(void *arg)
{
	const worker *w = arg;

	w->fn(w->ctx, w->k, w->n);
	return NULL;
}

void par_run(int n, void (*fn)(void *ctx, int k, int n), void *ctx)
{
	worker w[PAR_MAX_THREADS];
	pthread_t tid[PAR_MAX_THREADS];
	int started[PAR_MAX_THREADS] = { 0 };

	if (n > PAR_MAX_THREADS)
		n = PAR_MAX_THREADS;
	if (n < 1)
		n = 1;
	for (int k = 0; k < n; k++)
		w[k] = (worker){ .fn = fn, .ctx = ctx, .k = k, .n = n };
	for (int k = 1; k < n; k++)
		started[k] = pthread_create(&tid[k], NULL, start, &w[k]) == 0;
	fn(ctx, 0, n);
	for (int k = 1; k < n; k++) {
		if (started[k])
			pthread_join(tid[k], NULL);
		else
			fn(ctx, k, n);
	}
}

void par_share(long total, int k, int n, long *lo, long *hi)
{
	*lo = total * k / n;
	*hi = total * (k + 1) / n;
}
