/* dist: data parallelism over Open MPI for cnn-train and cnn-eval: this process's share of
 * the work, and the sums that join the shares into one process's result.
 *
 * The only file that touches MPI. It initialises MPI only when Open MPI's mpirun started
 * the process (OMPI_COMM_WORLD_SIZE is in its environment); otherwise there is one process
 * of rank 0 and every call here is a no-op or a copy, so a run without mpirun is the one
 * it always was. MPI's errors are fatal to the whole job (its default handler): a rank that
 * dies or fails ends every rank, and mpirun names it, so no call here returns an MPI error.
 *
 * Training: each process takes its share of every batch (dist_share), runs the forward and
 * backward of its rows with the loss gradient of the whole batch's mean (model_share), and
 * the backward's hook starts each layer's gradient sum (MPI_Iallreduce, in place) as soon
 * as the layer is done, the last layer's first, while the layers below are still being
 * worked; dist_grads_end waits for all of them. Every process then holds the whole batch's
 * gradient and applies the same optimiser step. */
#ifndef PETCNN_DIST_H
#define PETCNN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "nn/dataset.h"
#include "nn/model.h"

typedef struct {
	int rank, size;         /* this process of how many (0 of 1 without mpirun) */
	int mpi;                /* MPI is initialised (mpirun started us) */
	model *m;               /* dist_grads_begin's model */
	void *req;              /* MPI_Request [maxreq]: the step's reductions in flight */
	int nreq, maxreq;
	int64_t steps;          /* dist_grads_end calls */
	double bytes;           /* gradient bytes summed over them, in all */
	double t_wait;          /* seconds dist_grads_end has waited, in all */
	double t_comm;          /* seconds in the sums' MPI calls (backward's hook, the wait) */
} dist;

/* MPI_Init (threads: the calling one only makes MPI calls) when mpirun started us, else
 * rank 0 of 1 without MPI. -1 with err when MPI does not start. */
int dist_init(dist *d, int *argc, char ***argv, char *err);
/* MPI_Finalize, after every rank's last collective call; frees what dist allocated. */
void dist_finish(dist *d);

/* Rank's share of n items: [*lo, *hi), contiguous, in rank order, sizes differing by at
 * most one (a rank may get none when n < size). */
void dist_share(const dist *d, int64_t n, int64_t *lo, int64_t *hi);

/* Sums v [n] over every rank, in place (the same result on every rank). */
void dist_sum_f64(dist *d, double *v, int n);
void dist_sum_i64(dist *d, int64_t *v, int n);
/* The largest of every rank's v. */
int64_t dist_max_i64(dist *d, int64_t v);

/* Whether every rank's value (a short string, e.g. a size and SHA-256) is rank 0's: 0 if
 * so; else -1 on every rank with err "WHAT differs on rank R (...) from rank 0's (...)"
 * for the lowest such rank. Collective. */
int dist_same(dist *d, const char *what, const char *value, char *err);

/* dist_same for a dataset read from path on each rank: its size and SHA-256 (sha, or NULL:
 * computed here); err then says every rank must read the same data. */
int dist_same_data(dist *d, const char *path, const dataset *ds, const char *sha, char *err);

/* From now on m's backward starts each layer's parameter gradient sum as it completes
 * (m->grad_ready). -1 if out of memory. */
int dist_grads_begin(dist *d, model *m, char *err);
/* For a rank with no rows in this batch: zero gradients, their sums started in the order
 * backward would start them. */
void dist_grads_none(dist *d);
/* Waits for the step's sums: m->grads then holds the sum over ranks. */
void dist_grads_end(dist *d);

#endif
