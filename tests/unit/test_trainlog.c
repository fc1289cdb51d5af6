/* Unit tests for trainlog: a tiny model trained a few steps with logging, the runs read back
 * with tfev's reader (scalars, histogram, images, graph), the snapshot stream with npy_read
 * (shapes, and the values of an independent inference forward), logging leaving training
 * bit-identical, resuming (tail cut, foreign file refused) and bad paths. */
#include "check.h"
#include "util/errmsg.h"
#include "array/npy.h"
#include "util/rng.h"
#include "tb/tfev_hist.h"
#include "tb/tfev_image.h"
#include "tb/tfev_read.h"
#include "tb/tfrecord.h"
#include "tb/trainlog.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define H 16
#define W 12
#define STEPS 20

/* What one run folder holds, per kind, with the details the tests look at. */
typedef struct {
	int files, version, graph, graph_conv1_1, images[2], hist, hist_bad;
	int scalar_loss, scalar_acc, other;
	int img_w[2], img_h[2];
	int64_t last_img_step;
	double loss_at_5;
} run_seen;

static int tag_is(const tfev_item *it, const char *s)
{
	return it->tag && it->tag_len == strlen(s) && !memcmp(it->tag, s, it->tag_len);
}

static void read_run(const char *dir, run_seen *s)
{
	char **paths, err[ERR_MAX];
	size_t n = 0;

	memset(s, 0, sizeof *s);
	if (tfev_find_files(dir, &paths, &n, err)) {
		CHECK(0, "find %s: %s", dir, err);
		return;
	}
	s->files = (int)n;
	for (size_t f = 0; f < n; f++) {
		tfrecord_reader r;
		const unsigned char *p;
		size_t len;
		int64_t off;
		int rc;

		CHECK(tfrecord_reader_open(&r, paths[f], err) == 0, "open %s: %s", paths[f], err);
		while ((rc = tfrecord_reader_next(&r, &p, &len, &off, err)) == TFRECORD_OK) {
			tfev_iter it;
			tfev_item item;

			CHECK(tfev_iter_init(&it, p, len, err) == 0, "iter: %s", err);
			while (tfev_iter_next(&it, &item, err) == 1) {
				switch (item.kind) {
				case TFEV_VERSION: s->version++; break;
				case TFEV_SCALAR:
					if (tag_is(&item, "Loss")) {
						s->scalar_loss++;
						if (item.step == 5)
							s->loss_at_5 = item.value;
					} else if (tag_is(&item, "Accuracy")) {
						s->scalar_acc++;
					} else {
						s->other++;
					}
					break;
				case TFEV_HISTOGRAM: {
					double total = 0;

					for (size_t i = 0; i < pb_packed_count(&item.counts); i++)
						total += pb_packed_double_at(&item.counts, i);
					s->hist++;
					/* conv1_1's weights: 3x3x3x8 */
					s->hist_bad += !tag_is(&item, "weights1_1") || total != 216 || item.num != 216 ||
						       item.step % 5 != 0;
					break;
				}
				case TFEV_IMAGE: {
					int k = tag_is(&item, "c1b/maps") ? 0 : tag_is(&item, "c2b/maps") ? 1 : -1;

					if (k < 0) {
						s->other++;
						break;
					}
					s->images[k]++;
					s->img_w[k] = item.width, s->img_h[k] = item.height;
					s->last_img_step = item.step;
					CHECK(item.colorspace == 1 && item.len > 8 && !memcmp(item.data, "\x89PNG", 4),
					      "gray PNG for %s", k ? "c2b" : "c1b");
					break;
				}
				case TFEV_GRAPH: {
					pb_reader g;
					tfev_node_view nv;

					s->graph++;
					pb_reader_init(&g, item.data, item.len);
					while (tfev_graph_next(&g, &nv) == 1)
						s->graph_conv1_1 += nv.name_len > 8 && !memcmp(nv.name, "conv1_1/", 8);
					break;
				}
				default: s->other++; break;
				}
			}
		}
		CHECK(rc == TFRECORD_EOF, "%s reads to a clean end: %s", paths[f], err);
		tfrecord_reader_close(&r);
	}
	tfev_files_free(paths, n);
}

/* conv1_1 and c1b form block 1, c2a and c2b block 2: maps of c1b (before the pool) and c2b. */
static const char SPEC[] = "conv1_1=conv:3x3:8 c1b=conv:3x3:6 pool1=maxpool:2x2 drop:conv "
			   "c2a=conv:3x3:8 c2b=conv:3x3:5 pool2=maxpool:2x2 drop:conv "
			   "fc1=dense:16 drop:fc softmax=dense:K";

typedef struct {
	uint8_t img[2 * H * W * 3];
	int lab[2];
} batch;

/* STEPS Adam steps over one fixed batch; with tl, logging as cnn-train does. */
static void train(model *m, batch *b, trainlog *tl, char *err)
{
	optim_adam adam = { 1e-3, 0.9, 0.999, 1e-8 };

	model_init_params(m, MODEL_INIT_SEED, 7);
	if (tl)
		CHECK(trainlog_step(tl, 0, m, err) == 0, "step 0: %s", err);
	for (int64_t step = 1; step <= STEPS; step++) {
		rng r;
		double loss = 0;
		int correct = 0;

		rng_stream(&r, 1, (uint64_t)step);
		model_train(m, 0.8f, 0.5f, &r);
		model_forward(m, b->img, b->lab, 2);
		loss = m->loss, correct = m->correct;
		model_backward(m);
		model_adam_step(m, &adam, step);
		if (tl && step % 5 == 0) {
			CHECK(trainlog_scalar(tl, TRAINLOG_TRAIN, step, "Loss", loss, err) == 0, "%s", err);
			CHECK(trainlog_scalar(tl, TRAINLOG_TRAIN, step, "Accuracy", correct / 2.0, err) == 0, "%s", err);
			CHECK(trainlog_scalar(tl, TRAINLOG_TEST, step, "Loss", loss + 1, err) == 0, "%s", err);
			CHECK(trainlog_scalar(tl, TRAINLOG_TEST, step, "Accuracy", 0.5, err) == 0, "%s", err);
		}
		if (tl && step % 10 == 0)
			CHECK(trainlog_scalar(tl, TRAINLOG_TEST_EPOCH, step, "Loss", loss, err) == 0, "%s", err);
		if (tl) {
			CHECK(trainlog_step(tl, step, m, err) == 0, "step %lld: %s", (long long)step, err);
			CHECK(trainlog_flush_if_due(tl, err) == 0, "flush: %s", err);
		}
	}
}

/* Reads the snapshot stream: count arrays; with check, check shapes alternate [1,16,12,6] [1,8,6,5];
 * the last pair is copied into last[0], last[1] (malloc'ed). */
static int read_snapshots(const char *path, float *last[2], int check)
{
	FILE *f = fopen(path, "rb");
	char err[ERR_MAX];
	tensor t;
	int n = 0, rc;
	static const int64_t want[2][4] = { { 1, H, W, 6 }, { 1, H / 2, W / 2, 5 } };

	if (!f)
		return -1;
	while ((rc = npy_read(f, path, &t, err)) == 1) {
		int k = n % 2;

		CHECK(!check || (t.dtype == DT_F4 && t.ndim == 4 && !memcmp(t.shape, want[k], sizeof want[k])),
		      "snapshot array %d: dtype %s shape [%lld, %lld, %lld, %lld]", n,
		      tensor_dtype_name(t.dtype), (long long)t.shape[0], (long long)t.shape[1],
		      (long long)t.shape[2], (long long)t.shape[3]);
		if (last) {
			free(last[k]);
			last[k] = t.data;
			t.data = NULL;
		}
		tensor_free(&t);
		n++;
	}
	CHECK(rc == 0, "snapshot stream ends cleanly: %s", err);
	fclose(f);
	return n;
}

static void test_logging(const char *tmp)
{
	char err[ERR_MAX], logdir[512], snap[512], dir[600];
	model a, b, inf;
	batch bt;
	trainlog tl;
	trainlog_opts o = { .hist_every = 5, .image_every = 10 };
	run_seen s;
	float *last[2] = { NULL, NULL };
	rng r;

	rng_stream(&r, 3, 0);
	for (size_t i = 0; i < sizeof bt.img; i++)
		bt.img[i] = (uint8_t)rng_below(&r, 256);
	bt.lab[0] = 0, bt.lab[1] = 1;
	snprintf(logdir, sizeof logdir, "%s/runs", tmp);
	snprintf(snap, sizeof snap, "%s/snap.npy", tmp);
	CHECK(model_init(&a, SPEC, (model_size){ .h = H, .w = W, .classes = 2, .max_batch = 2, .train = 1 }, err) == 0, "model: %s", err);
	CHECK(model_init(&b, SPEC, (model_size){ .h = H, .w = W, .classes = 2, .max_batch = 2, .train = 1 }, err) == 0, "model: %s", err);
	model_init_params(&a, MODEL_INIT_SEED, 7);
	CHECK(trainlog_open(&tl, logdir, snap, &a, bt.img, &o, err) == 0, "open: %s", err);
	CHECK(tl.nmaps == 2 && !strcmp(tl.map_tag[0], "c1b/maps") && !strcmp(tl.map_tag[1], "c2b/maps"),
	      "maps: the last conv of each block (%d)", tl.nmaps);
	{
		/* no log: no maps to read after a forward (cnn-train keeps those whole) */
		trainlog none;

		CHECK(trainlog_open(&none, NULL, NULL, &a, bt.img, &o, err) == 0 && none.nmaps == 0 &&
		      trainlog_close(&none, err) == 0, "no log: %d maps (%s)", none.nmaps, err);
	}
	train(&a, &bt, &tl, err);
	CHECK(trainlog_close(&tl, err) == 0, "close: %s", err);
	train(&b, &bt, NULL, err);
	CHECK(!memcmp(a.params, b.params, a.nparams * sizeof(float)) &&
	      !memcmp(a.adam_m, b.adam_m, a.nparams * sizeof(float)),
	      "logging leaves training bit-identical");

	snprintf(dir, sizeof dir, "%s/train", logdir);
	read_run(dir, &s);
	CHECK(s.files == 1 && s.version == 1 && s.graph == 1 && s.graph_conv1_1 >= 3,
	      "train: one file, version, graph with conv1_1 scope (%d files, %d graphs, %d conv1_1 nodes)",
	      s.files, s.graph, s.graph_conv1_1);
	CHECK(s.scalar_loss == 4 && s.scalar_acc == 4 && s.other == 0, "train scalars %d %d, other %d",
	      s.scalar_loss, s.scalar_acc, s.other);
	CHECK(s.hist == 5 && s.hist_bad == 0, "weights1_1 at steps 0, 5, ..., 20 with 216 counts (%d, %d bad)",
	      s.hist, s.hist_bad);
	/* 6 maps of 16x12: 3x2 tiles of 12 wide, 16 high; 5 maps of 8x6: 3x2 tiles */
	CHECK(s.images[0] == 3 && s.images[1] == 3 && s.last_img_step == 20, "images at 0, 10, 20: %d %d",
	      s.images[0], s.images[1]);
	CHECK(s.img_w[0] == 3 * 12 + 2 && s.img_h[0] == 2 * 16 + 1 && s.img_w[1] == 3 * 6 + 2 &&
	      s.img_h[1] == 2 * 8 + 1, "grid sizes %dx%d %dx%d", s.img_w[0], s.img_h[0], s.img_w[1], s.img_h[1]);
	snprintf(dir, sizeof dir, "%s/test", logdir);
	read_run(dir, &s);
	CHECK(s.files == 1 && s.scalar_loss == 4 && s.scalar_acc == 4 && s.hist == 0 && s.graph == 0 &&
	      s.images[0] == 0 && s.other == 0, "test: Loss and Accuracy only");
	snprintf(dir, sizeof dir, "%s/test_epoch", logdir);
	read_run(dir, &s);
	CHECK(s.files == 1 && s.scalar_loss == 2 && s.scalar_acc == 0, "test_epoch: two Loss");

	/* The last snapshot is what an independent inference model computes from the final
	 * parameters (same code path, batch 1, so bit-identical). */
	CHECK(read_snapshots(snap, last, 1) == 6, "3 snapshots of 2 maps");
	CHECK(model_init(&inf, SPEC, (model_size){ .h = H, .w = W, .classes = 2, .max_batch = 1, .train = 0 }, err) == 0, "inference model: %s", err);
	memcpy(inf.params, a.params, a.nparams * sizeof(float));
	model_forward(&inf, bt.img, NULL, 1);
	CHECK(last[0] && !memcmp(last[0], inf.layer[1].out, H * W * 6 * sizeof(float)), "c1b maps match");
	CHECK(last[1] && !memcmp(last[1], inf.layer[5].out, H / 2 * W / 2 * 5 * sizeof(float)), "c2b maps match");
	free(last[0]), free(last[1]);
	model_free(&inf);
	model_free(&a);
	model_free(&b);
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : st.st_size;
}

static void test_resume(const char *tmp)
{
	char err[ERR_MAX], snap[512], other[512], cmd[1200];
	uint8_t img[H * W * 3] = { 0 };
	trainlog_opts o = { .hist_every = 5, .image_every = 10, .resume = 1, .start_step = 10 };
	trainlog tl;
	model m;
	off_t full, pair;

	snprintf(snap, sizeof snap, "%s/snap.npy", tmp);
	CHECK(model_init(&m, SPEC, (model_size){ .h = H, .w = W, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0, "model: %s", err);
	model_init_params(&m, MODEL_INIT_SEED, 7);
	full = file_size(snap);
	pair = full / 3;
	/* A torn array at the end (as if killed mid-write) and the step-20 snapshot, made
	 * after the step-10 checkpoint we resume from: both cut. */
	snprintf(cmd, sizeof cmd, "head -c 100 '%s' >> '%s'", snap, snap);
	CHECK(system(cmd) == 0, "tear");
	CHECK(trainlog_open(&tl, NULL, snap, &m, img, &o, err) == 0, "resume: %s", err);
	CHECK(tl.snapshots == 2 && file_size(snap) == 2 * pair, "kept snapshots of steps 0 and 10: %lld, %lld bytes",
	      (long long)tl.snapshots, (long long)file_size(snap));
	CHECK(trainlog_step(&tl, 20, &m, err) == 0, "step 20: %s", err);
	CHECK(trainlog_close(&tl, err) == 0, "close: %s", err);
	CHECK(read_snapshots(snap, NULL, 1) == 6 && file_size(snap) == full, "appended: 3 snapshots again");

	/* Without resume the stream starts afresh. */
	o.resume = 0;
	CHECK(trainlog_open(&tl, NULL, snap, &m, img, &o, err) == 0 && file_size(snap) == 0, "truncated");
	CHECK(trainlog_close(&tl, err) == 0, "close: %s", err);

	/* A file that is not our snapshots is refused and left alone. */
	o.resume = 1;
	snprintf(other, sizeof other, "%s/notes.txt", tmp);
	snprintf(cmd, sizeof cmd, "echo 'precious' > '%s'", other);
	CHECK(system(cmd) == 0, "notes");
	CHECK(trainlog_open(&tl, NULL, other, &m, img, &o, err) == -1 && strstr(err, other) &&
	      strstr(err, "not a snapshot stream"), "foreign file: %s", err);
	CHECK(file_size(other) == 9, "foreign file untouched");
	/* Snapshots of another model: the first array's shape gives it away. */
	model_free(&m);
	CHECK(model_init(&m, "c1=conv:3x3:4 p=maxpool:2x2 out=dense:K", (model_size){ .h = H, .w = W, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0, "model: %s", err);
	o.resume = 0;
	snprintf(other, sizeof other, "%s/small.npy", tmp);
	CHECK(trainlog_open(&tl, NULL, other, &m, img, &o, err) == 0 && trainlog_step(&tl, 0, &m, err) == 0 &&
	      trainlog_close(&tl, err) == 0, "small model snapshots: %s", err);
	model_free(&m);
	CHECK(model_init(&m, SPEC, (model_size){ .h = H, .w = W, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0, "model: %s", err);
	o.resume = 1;
	CHECK(trainlog_open(&tl, NULL, other, &m, img, &o, err) == -1 && strstr(err, "another model") &&
	      strstr(err, "c1b/maps"), "other model's snapshots: %s", err);
	CHECK(read_snapshots(other, NULL, 0) == 1, "left alone");
	model_free(&m);
}

static void test_errors(const char *tmp)
{
	char err[ERR_MAX], path[512];
	uint8_t img[H * W * 3] = { 0 };
	trainlog_opts o = { .hist_every = 5, .image_every = 10 };
	trainlog tl;
	model m;
	FILE *f;

	CHECK(model_init(&m, SPEC, (model_size){ .h = H, .w = W, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0, "model: %s", err);
	CHECK(trainlog_open(&tl, NULL, "-", &m, img, &o, err) == -1 && strstr(err, "stdout"), "stdout: %s", err);
	/* A refused snapshot file fails before any run folder is made. */
	snprintf(path, sizeof path, "%s/fresh-runs", tmp);
	CHECK(trainlog_open(&tl, path, "-", &m, img, &o, err) == -1 && file_size(path) < 0,
	      "no run folder left behind: %s", err);
	/* A log directory that is a file. */
	snprintf(path, sizeof path, "%s/afile", tmp);
	f = fopen(path, "w");
	CHECK(f != NULL, "create %s", path);
	if (f)
		fclose(f);
	CHECK(trainlog_open(&tl, path, NULL, &m, img, &o, err) == -1 && strstr(err, path), "logdir is a file: %s", err);
	snprintf(path, sizeof path, "%s/no/such/dir/snap.npy", tmp);
	CHECK(trainlog_open(&tl, NULL, path, &m, img, &o, err) == -1 && strstr(err, path), "snapshot dir: %s", err);
	/* Neither: every call does nothing. */
	CHECK(trainlog_open(&tl, NULL, NULL, &m, img, &o, err) == 0 && trainlog_step(&tl, 0, &m, err) == 0 &&
	      trainlog_scalar(&tl, TRAINLOG_TRAIN, 0, "Loss", 1, err) == 0 && trainlog_close(&tl, err) == 0,
	      "nothing asked, nothing done");
	model_free(&m);
	/* A model without convolutions has nothing to snapshot. */
	CHECK(model_init(&m, "fc=dense:4 out=dense:K", (model_size){ .h = H, .w = W, .classes = 2, .max_batch = 1, .train = 1 }, err) == 0, "model: %s", err);
	snprintf(path, sizeof path, "%s/none.npy", tmp);
	CHECK(trainlog_open(&tl, NULL, path, &m, img, &o, err) == -1 && strstr(err, "no convolution"), "%s", err);
	model_free(&m);
}

int main(void)
{
	char tmp[] = "/tmp/petcnn-trainlog-XXXXXX", cmd[64];

	if (!mkdtemp(tmp))
		return 1;
	test_logging(tmp);
	test_resume(tmp);
	test_errors(tmp);
	snprintf(cmd, sizeof cmd, "rm -r '%s'", tmp);
	CHECK(system(cmd) == 0, "cleanup");
	return check_done("test_trainlog");
}
