/* par: a pool of workers that await the next call spinning a few tens of microseconds,
 * then asleep: a network's layers call one after another, and a new thread takes ~35 us. */
#include "util/par.h"

#include "util/fpmode.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define relax() _mm_pause()
#else
#define relax() ((void)0)
#endif

/* How long an idle worker spins before it sleeps: longer than the gap between a model's
 * layers, short enough that a core someone else needs is not held for long. */
#define SPIN_NS 60000L

/* The workers, process-wide like OpenBLAS's: threads and the call they run, no data of
 * ours, so a kernel's results do not depend on them. */
typedef struct {
	pthread_mutex_t mu;                 /* one caller at a time uses the workers */
	int nworkers;                       /* started so far: indices 1 .. nworkers */
	int forks_handled;                  /* a forked child forgets them (forget_workers) */
	_Atomic unsigned gen;               /* bumped per call: the workers' wake-up word */
	_Atomic int left;                   /* workers still running the current call */
	void (*fn)(void *ctx, int k, int n);
	void *ctx;
	int n;
	unsigned mode;                      /* the caller's fpmode, which the workers take */
} pool;

static pool the = { .mu = PTHREAD_MUTEX_INITIALIZER };

static long futex(_Atomic unsigned *addr, int op, unsigned val)
{
	return syscall(SYS_futex, (unsigned *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static long ns_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

/* Until gen moves past seen: spin, then sleep. */
static unsigned await(_Atomic unsigned *gen, unsigned seen)
{
	struct timespec t0;
	unsigned g;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 1;; i++) {
		if ((g = atomic_load_explicit(gen, memory_order_acquire)) != seen)
			return g;
		relax();
		if (i % 64 == 0 && ns_since(&t0) > SPIN_NS)
			break;
	}
	while ((g = atomic_load_explicit(gen, memory_order_acquire)) == seen)
		futex(gen, FUTEX_WAIT, seen);
	return g;
}

/* Until *left is 0: spin, then sleep. */
static void await_zero(_Atomic int *left)
{
	struct timespec t0;
	int l;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 1; (l = atomic_load_explicit(left, memory_order_acquire)) != 0; i++) {
		relax();
		if (i % 64 == 0 && ns_since(&t0) > SPIN_NS)
			break;
	}
	while ((l = atomic_load_explicit(left, memory_order_acquire)) != 0)
		futex((_Atomic unsigned *)left, FUTEX_WAIT, (unsigned)l);
}

static void *work(void *arg)
{
	/* its index and the call count when it was made: calls before it are not its own */
	int k = (int)((unsigned long)arg & 0xff);
	unsigned seen = (unsigned)((unsigned long)arg >> 8);

	for (;;) {
		seen = await(&the.gen, seen);
		if (k < the.n) {
			fpmode_set(the.mode);
			the.fn(the.ctx, k, the.n);
		}
		if (atomic_fetch_sub_explicit(&the.left, 1, memory_order_acq_rel) == 1)
			futex((_Atomic unsigned *)&the.left, FUTEX_WAKE, 1);
	}
	return NULL;
}

static void forget_workers(void)
{
	/* a forked child has none of its parent's threads */
	pthread_mutex_init(&the.mu, NULL);
	the.nworkers = 0;
}

/* Workers 1 .. n-1 started; how many there are. */
static int grow(int n)
{
	if (!the.forks_handled)
		the.forks_handled = pthread_atfork(NULL, NULL, forget_workers) == 0;
	while (the.nworkers < n - 1) {
		pthread_t t;
		pthread_attr_t a;
		int ok;

		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		ok = pthread_create(&t, &a, work, (void *)((unsigned long)(the.nworkers + 1) |
							   (unsigned long)atomic_load(&the.gen) << 8)) == 0;
		pthread_attr_destroy(&a);
		if (!ok)
			break;
		the.nworkers++;
	}
	return the.nworkers;
}

typedef struct {
	void (*fn)(void *ctx, int k, int n);
	void *ctx;
	int k, n;
} job;

static void *start(void *arg)
{
	const job *j = arg;

	j->fn(j->ctx, j->k, j->n);
	return NULL;
}

/* A thread per worker for this call only: while the pool serves another caller's call
 * (or this caller's, nested). A new thread starts in its creator's fpmode. */
static void run_own(int n, void (*fn)(void *ctx, int k, int n), void *ctx)
{
	job j[PAR_MAX_THREADS];
	pthread_t tid[PAR_MAX_THREADS];
	int started[PAR_MAX_THREADS] = { 0 };

	for (int k = 0; k < n; k++)
		j[k] = (job){ .fn = fn, .ctx = ctx, .k = k, .n = n };
	for (int k = 1; k < n; k++)
		started[k] = pthread_create(&tid[k], NULL, start, &j[k]) == 0;
	fn(ctx, 0, n);
	for (int k = 1; k < n; k++) {
		if (started[k])
			pthread_join(tid[k], NULL);
		else
			fn(ctx, k, n);
	}
}

void par_run(int n, void (*fn)(void *ctx, int k, int n), void *ctx)
{
	int have;

	if (n > PAR_MAX_THREADS)
		n = PAR_MAX_THREADS;
	if (n <= 1) {
		fn(ctx, 0, 1);
		return;
	}
	if (pthread_mutex_trylock(&the.mu) != 0) {
		run_own(n, fn, ctx);
		return;
	}
	have = grow(n);
	the.fn = fn, the.ctx = ctx, the.n = n, the.mode = fpmode_get();
	atomic_store_explicit(&the.left, have, memory_order_relaxed);
	atomic_fetch_add_explicit(&the.gen, 1, memory_order_release);
	futex(&the.gen, FUTEX_WAKE, have);
	fn(ctx, 0, n);
	for (int k = have + 1; k < n; k++)
		fn(ctx, k, n);
	await_zero(&the.left);
	pthread_mutex_unlock(&the.mu);
}

void par_share(long total, int k, int n, long *lo, long *hi)
{
	*lo = total * k / n;
	*hi = total * (k + 1) / n;
}
