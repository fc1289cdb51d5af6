/* dist: data parallelism over Open MPI for cnn-train and cnn-eval: this process's share of
 * the work, and the sums that join the shares into one process's result. */
#include "nn/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "util/errmsg.h"
#include "util/hash.h"

/* A value dist_same compares: a size and a hash fit with room to spare. */
#define SAME_MAX 256
/* Floats in one MPI_Iallreduce: its count is an int. */
#define SUM_MAX (INT_MAX / 2)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int dist_init(dist *d, int *argc, char ***argv, char *err)
{
	int provided;

	*d = (dist){ .rank = 0, .size = 1 };
	/* Open MPI sets it in every process mpirun starts; without it, no MPI at all */
	if (!getenv("OMPI_COMM_WORLD_SIZE"))
		return 0;
	/* only the main thread calls MPI; our kernels' and OpenBLAS's threads never do */
	if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
		return err_set(err, "MPI_Init_thread failed");
	d->mpi = 1;
	MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
	MPI_Comm_size(MPI_COMM_WORLD, &d->size);
	return 0;
}

void dist_finish(dist *d)
{
	if (d->m)
		d->m->grad_ready = NULL, d->m->grad_ctx = NULL;
	free(d->req);
	d->req = NULL;
	if (d->mpi)
		MPI_Finalize();
	d->mpi = 0;
}

void dist_share(const dist *d, int64_t n, int64_t *lo, int64_t *hi)
{
	*lo = n * d->rank / d->size;
	*hi = n * (d->rank + 1) / d->size;
}

void dist_sum_f64(dist *d, double *v, int n)
{
	if (d->mpi)
		MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void dist_sum_i64(dist *d, int64_t *v, int n)
{
	if (d->mpi)
		MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
}

int64_t dist_max_i64(dist *d, int64_t v)
{
	if (d->mpi)
		MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
	return v;
}

int dist_same(dist *d, const char *what, const char *value, char *err)
{
	char mine[SAME_MAX] = "", zero[SAME_MAX], other[SAME_MAX];
	int bad, lowest;

	if (!d->mpi)
		return 0;
	snprintf(mine, sizeof mine, "%s", value);
	memcpy(zero, mine, sizeof zero);
	MPI_Bcast(zero, SAME_MAX, MPI_CHAR, 0, MPI_COMM_WORLD);
	bad = strcmp(mine, zero) ? d->rank : INT_MAX;
	MPI_Allreduce(&bad, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
	if (lowest == INT_MAX)
		return 0;
	/* every rank learns the first differing one's value, to say both */
	memcpy(other, mine, sizeof other);
	MPI_Bcast(other, SAME_MAX, MPI_CHAR, lowest, MPI_COMM_WORLD);
	return err_set(err, "%s differs on rank %d (%s) from rank 0's (%s)", what, lowest, other, zero);
}

int dist_same_data(dist *d, const char *path, const dataset *ds, const char *sha, char *err)
{
	char hex[HASH_HEX], v[SAME_MAX], why[ERR_MAX];

	if (!d->mpi)
		return 0;
	if (!sha && dataset_sha256(ds, hex, err))
		return -1;
	snprintf(v, sizeof v, "%lld images %dx%d, SHA-256 %.16s...", (long long)ds->n, ds->h, ds->w,
		 sha ? sha : hex);
	if (dist_same(d, path, v, why))
		return err_set(err, "%s: every rank must read the same data", why);
	return 0;
}

/* Layer i's parameters, [*lo, *hi) floats into params and grads: 0 if it has none. */
static int layer_range(const model *m, int i, size_t *lo, size_t *hi)
{
	const model_layer *l = &m->layer[i];
	int p[2] = { l->wparam, l->bparam }, any = 0;

	for (int k = 0; k < 2; k++) {
		if (p[k] < 0)
			continue;
		const model_param *q = &m->param[p[k]];

		if (!any || q->off < *lo)
			*lo = q->off;
		if (!any || q->off + q->n > *hi)
			*hi = q->off + q->n;
		any = 1;
	}
	return any;
}

/* backward's hook: layer i's gradients are final, their sum over ranks starts. Testing
 * the sums in flight here gives MPI the chance to move them on (Open MPI progresses a
 * non-blocking collective only inside MPI calls). */
static void grad_ready(void *ctx, int i)
{
	dist *d = ctx;
	model *m = d->m;
	size_t lo, hi;
	int done;
	double t0 = now();

	if (!layer_range(m, i, &lo, &hi))
		return;
	d->bytes += (hi - lo) * sizeof(float);
	for (size_t at = lo; at < hi; at += SUM_MAX) {
		int n = (int)(hi - at < SUM_MAX ? hi - at : SUM_MAX);

		/* room: one per layer, and a layer beyond SUM_MAX floats gets more (begin) */
		if (d->nreq == d->maxreq)
			MPI_Wait(&((MPI_Request *)d->req)[--d->nreq], MPI_STATUS_IGNORE);
		MPI_Iallreduce(MPI_IN_PLACE, m->grads + at, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
			       &((MPI_Request *)d->req)[d->nreq++]);
	}
	MPI_Testall(d->nreq, (MPI_Request *)d->req, &done, MPI_STATUSES_IGNORE);
	d->t_comm += now() - t0;
}

int dist_grads_begin(dist *d, model *m, char *err)
{
	int n = 0;

	d->m = m;
	if (!d->mpi)
		return 0;
	for (int i = 0; i < m->nlayer; i++) {
		size_t lo, hi;

		if (layer_range(m, i, &lo, &hi))
			n += (int)((hi - lo + SUM_MAX - 1) / SUM_MAX);
	}
	free(d->req);
	d->nreq = 0, d->maxreq = n > 0 ? n : 1;
	if (!(d->req = malloc(sizeof(MPI_Request) * (size_t)d->maxreq)))
		return err_set(err, "dist: out of memory");
	m->grad_ready = grad_ready;
	m->grad_ctx = d;
	return 0;
}

void dist_grads_none(dist *d)
{
	model *m = d->m;

	/* backward goes down from the last layer; frozen layers make no gradient */
	for (int i = m->nlayer - 1; i >= 0; i--) {
		size_t lo, hi;

		if (m->layer[i].frozen || !layer_range(m, i, &lo, &hi))
			continue;
		memset(m->grads + lo, 0, (hi - lo) * sizeof(float));
		if (m->grad_ready)
			m->grad_ready(m->grad_ctx, i);
	}
}

void dist_grads_end(dist *d)
{
	double t0 = now();

	if (d->nreq)
		MPI_Waitall(d->nreq, (MPI_Request *)d->req, MPI_STATUSES_IGNORE);
	d->nreq = 0;
	d->steps++;
	d->t_wait += now() - t0;
	d->t_comm += now() - t0;
}
