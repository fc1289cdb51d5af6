/* trainlog: cnn-train's TensorBoard runs and feature-map snapshots. See trainlog.h. */
#include "tb/trainlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "array/npy.h"
#include "img/colormap.h"
#include "img/grid.h"
#include "nn/explain.h"
#include "tb/tfev_hist.h"
#include "tb/tfev_image.h"
#include "tb/tfev_model.h"

/* A [1, H, W, C] f4 header is under 200 bytes; this leaves room to spare. */
#define HEADER_ROOM 512

static const char *const RUN_NAME[TRAINLOG_NRUN] = { "train", "test", "test_epoch" };

/* The first parametrised layer's weights, and the last conv of each block. */
static void choose(trainlog *tl, const model *m)
{
	tl->hist_param = -1;
	for (int i = 0; i < m->nlayer && tl->hist_param < 0; i++)
		if (m->layer[i].wparam >= 0)
			tl->hist_param = m->layer[i].wparam;
	if (tl->hist_param >= 0) {
		const char *name = m->param[tl->hist_param].name, *slash = strrchr(name, '/');

		tl->hist_tag = slash ? slash + 1 : name;
	}
	for (int i = 0; i < m->nlayer && tl->nmaps < TRAINLOG_MAX_MAPS; i++) {
		int j = i + 1;

		if (m->layer[i].kind != MODEL_CONV)
			continue;
		while (j < m->nlayer && m->layer[j].kind == MODEL_DROP)
			j++;
		if (j < m->nlayer && m->layer[j].kind == MODEL_CONV)
			continue;
		tl->map_layer[tl->nmaps] = i;
		snprintf(tl->map_tag[tl->nmaps], sizeof tl->map_tag[0], "%s/maps", m->layer[i].name);
		tl->nmaps++;
	}
}

static void map_shape(const model *m, int layer, int64_t shape[4])
{
	const model_layer *l = &m->layer[layer];

	shape[0] = 1, shape[1] = l->oh, shape[2] = l->ow, shape[3] = l->oc;
}

/* Resuming: keeps the complete snapshots of steps up to start_step and cuts the rest (a
 * torn array, or snapshots made after the checkpoint we resume from). Arrays that are not
 * the model's maps are an error: the file is someone else's, and we touch nothing. */
static int snap_trim(trainlog *tl, const model *m, char *err)
{
	FILE *f = fopen(tl->snap_path, "rb");
	struct stat st;
	int64_t keep = -1, count = 0, cut = 0;
	int rc = 0;

	if (!f)
		return errno == ENOENT ? 0 : err_sys(err, "%s: cannot read", tl->snap_path);
	if (fstat(fileno(f), &st)) {
		fclose(f);
		return err_sys(err, "%s: cannot stat", tl->snap_path);
	}
	if (!S_ISREG(st.st_mode)) {
		fclose(f);
		return 0;
	}
	if (tl->o.image_every > 0 && tl->o.start_step / tl->o.image_every < INT64_MAX / tl->nmaps - 1)
		keep = (tl->o.start_step / tl->o.image_every + 1) * tl->nmaps;
	while (keep < 0 || count < keep) {
		off_t pos = ftello(f);
		int64_t want[4];
		tensor t;
		char why[ERR_MAX];
		int got = npy_read_header(f, tl->snap_path, &t, why);

		if (got == 0)
			break;
		if (got < 0 && pos == 0) {
			rc = err_set(err, "%s: not a snapshot stream (%s); remove it or choose another file",
				     tl->snap_path, why);
			break;
		}
		if (got < 0 || ftello(f) + tensor_nbytes(&t) > st.st_size)
			break;  /* torn at the end: a crash while writing */
		map_shape(m, tl->map_layer[count % tl->nmaps], want);
		if (t.dtype != DT_F4 || t.ndim != 4 || memcmp(t.shape, want, sizeof want)) {
			rc = err_set(err, "%s: array %lld is not %s's map [1, %lld, %lld, %lld] f4: "
				     "snapshots of another model? remove it or choose another file",
				     tl->snap_path, (long long)count, tl->map_tag[count % tl->nmaps],
				     (long long)want[1], (long long)want[2], (long long)want[3]);
			break;
		}
		if (fseeko(f, ftello(f) + tensor_nbytes(&t), SEEK_SET)) {
			rc = err_sys(err, "%s: seek", tl->snap_path);
			break;
		}
		if (++count % tl->nmaps == 0)
			cut = ftello(f);
	}
	fclose(f);
	if (rc)
		return -1;
	tl->snapshots = count / tl->nmaps;
	if (cut < st.st_size && truncate(tl->snap_path, cut))
		return err_sys(err, "%s: cannot cut the snapshots after step %lld", tl->snap_path,
			       (long long)tl->o.start_step);
	return 0;
}

static int snap_open(trainlog *tl, const char *path, const model *m, char *err)
{
	if (!strcmp(path, "-"))
		return err_set(err, "snapshots: cannot go to stdout (the metrics do); give a file");
	if (!tl->nmaps)
		return err_set(err, "%s: the model has no convolution whose maps to snapshot", path);
	if (!(tl->snap_path = strdup(path)))
		return err_set(err, "%s: out of memory", path);
	if (tl->o.resume && snap_trim(tl, m, err))
		return -1;
	tl->snap_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (tl->o.resume ? O_APPEND : O_TRUNC), 0666);
	if (tl->snap_fd < 0)
		return err_sys(err, "%s: cannot create", path);
	return 0;
}

int trainlog_open(trainlog *tl, const char *logdir, const char *snapshots, const model *m,
		  const uint8_t *image, const trainlog_opts *o, char *err)
{
	size_t npix = (size_t)m->h * m->w * 3;
	char ignore[ERR_MAX];

	memset(tl, 0, sizeof *tl);
	tl->o = *o;
	tl->snap_fd = -1;
	tl->h = m->h, tl->w = m->w;
	tl->hist_param = -1;
	if (!logdir && !snapshots)
		return 0;
	choose(tl, m);
	if (!(tl->image = malloc(npix)))
		return err_set(err, "trainlog: out of memory");
	memcpy(tl->image, image, npix);
	/* The snapshot file first: its checks (a foreign file, another model's maps) then
	 * fail before any run folder is created. */
	if (snapshots && snap_open(tl, snapshots, m, err)) {
		trainlog_close(tl, ignore);
		return -1;
	}
	if (logdir) {
		if (!(tl->logdir = strdup(logdir))) {
			trainlog_close(tl, ignore);
			return err_set(err, "%s: out of memory", logdir);
		}
		for (int r = 0; r < TRAINLOG_TEST_EPOCH; r++) {
			if (tfev_open(&tl->run[r], logdir, RUN_NAME[r], err)) {
				trainlog_close(tl, ignore);
				return -1;
			}
			tl->open[r] = 1;
		}
		if (tfev_model_graph(&tl->run[TRAINLOG_TRAIN], m, err) ||
		    tfev_flush(&tl->run[TRAINLOG_TRAIN], err)) {
			trainlog_close(tl, ignore);
			return -1;
		}
	}
	return 0;
}

const char *trainlog_run_name(enum trainlog_run run)
{
	return RUN_NAME[run];
}

int trainlog_scalar(trainlog *tl, enum trainlog_run run, int64_t step, const char *tag,
		    double value, char *err)
{
	if ((unsigned)run >= TRAINLOG_NRUN)
		return err_set(err, "trainlog: no run %d", (int)run);
	if (!tl->logdir)
		return 0;
	if (!tl->open[run]) {
		if (tfev_open(&tl->run[run], tl->logdir, RUN_NAME[run], err))
			return -1;
		tl->open[run] = 1;
	}
	return tfev_scalar(&tl->run[run], step, tag, value, err);
}

/* One map as a complete .npy array in one write(), so a reader never sees half of it
 * unless the process dies inside the call. */
static int snap_append(trainlog *tl, const float *map, const int64_t shape[4], char *err)
{
	tensor t = { .dtype = DT_F4, .ndim = 4, .shape = { shape[0], shape[1], shape[2], shape[3] } };
	int64_t hdr, nbytes = tensor_nbytes(&t);
	size_t total;
	struct stat st;

	if (nbytes < 0 || (uint64_t)nbytes > SIZE_MAX - HEADER_ROOM)
		return err_set(err, "%s: map too large", tl->snap_path);
	buf_reset(&tl->snap);
	if (buf_reserve(&tl->snap, (size_t)nbytes + HEADER_ROOM))
		return err_set(err, "%s: out of memory", tl->snap_path);
	if ((hdr = npy_format_header(&t, tl->snap.data, HEADER_ROOM, tl->snap_path, err)) < 0)
		return -1;
	memcpy(tl->snap.data + hdr, map, (size_t)nbytes);
	total = (size_t)hdr + (size_t)nbytes;
	if (fstat(tl->snap_fd, &st))
		return err_sys(err, "%s: cannot stat", tl->snap_path);
	for (size_t done = 0; done < total;) {
		ssize_t n = write(tl->snap_fd, tl->snap.data + done, total - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : ENOSPC;

			/* A full disk: cut back to the last whole array, and take away a file
			 * this run made that holds none, so no torn or empty stream is left. */
			if (ftruncate(tl->snap_fd, st.st_size) == 0 && st.st_size == 0 && !tl->o.resume)
				unlink(tl->snap_path);
			errno = e;
			return err_sys(err, "%s: write error", tl->snap_path);
		}
		done += (size_t)n;
	}
	return 0;
}

/* A layer's feature maps (one image, oh x ow x oc) as tensor-png --maps draws them, but
 * without index labels and with 1-pixel gaps: a compact gray grid for TensorBoard. */
static int map_grid(const model_layer *l, const char *tag, uint8_t **grid, int *gw, int *gh,
		    char *err)
{
	int64_t shape[3] = { l->oh, l->ow, l->oc };
	grid_cells cells;
	grid_opts o;

	grid_opts_default(&o);
	o.gap = 1;
	o.labels = 0;
	if (grid_cells_from(&cells, l->out, DT_F4, 3, shape, 1, -1, tag, err))
		return -1;
	return grid_draw(&cells, &o, grid, gw, gh, err);
}

static int log_maps(trainlog *tl, int64_t step, model *m, char *err)
{
	tfev_writer *w = tl->open[TRAINLOG_TRAIN] ? &tl->run[TRAINLOG_TRAIN] : NULL;

	int training = m->training;

	model_eval(m);
	model_forward(m, tl->image, NULL, 1);
	m->training = training;
	for (int k = 0; k < tl->nmaps; k++) {
		const model_layer *l = &m->layer[tl->map_layer[k]];
		int64_t shape[4];

		if (w) {
			uint8_t *grid;
			int gw, gh, rc;

			if (map_grid(l, tl->map_tag[k], &grid, &gw, &gh, err))
				return -1;
			rc = tfev_image(w, step, tl->map_tag[k], grid, gw, gh, 1, err);
			free(grid);
			if (rc)
				return -1;
		}
		map_shape(m, tl->map_layer[k], shape);
		if (tl->snap_fd >= 0 && snap_append(tl, l->out, shape, err))
			return -1;
	}
	if (tl->snap_fd >= 0)
		tl->snapshots++;
	return 0;
}

/* images [n, h, w, 3] as one grid image in run's tag */
static int log_images(trainlog *tl, enum trainlog_run run, int64_t step, const char *tag,
		      const uint8_t *images, int n, int h, int w, char *err)
{
	tfev_writer *wr = tl->open[run] ? &tl->run[run] : NULL;
	int64_t shape[4] = { n, h, w, 3 };
	grid_cells cells;
	grid_opts o;
	uint8_t *grid;
	int gw, gh, rc;

	if (!wr || n < 1)
		return 0;
	grid_opts_default(&o);
	o.gap = 1;
	o.labels = 0;
	o.fixed = 1, o.lo = 0, o.hi = 255;   /* the pixels as they are */
	if (grid_cells_from(&cells, images, DT_U1, 4, shape, 0, -1, tag, err) ||
	    grid_draw(&cells, &o, &grid, &gw, &gh, err))
		return -1;
	rc = tfev_image(wr, step, tag, grid, gw, gh, 3, err);
	free(grid);
	return rc;
}

int trainlog_batch(trainlog *tl, int64_t step, const char *tag, const uint8_t *images, int n, int h,
		   int w, char *err)
{
	return log_images(tl, TRAINLOG_TRAIN, step, tag, images, n, h, w, err);
}

int trainlog_gradcam_images(trainlog *tl, model *m, const uint8_t *images, const int *labels,
			    int n, char *err)
{
	size_t isz = (size_t)m->h * m->w * 3;

	if (n > TRAINLOG_GRADCAM)
		n = TRAINLOG_GRADCAM;
	if (n < 1 || !tl->open[TRAINLOG_TEST])
		return 0;
	if (explain_gradcam_layer(m, NULL, "the model", &tl->cam_layer, err) || model_grad_init(m, err))
		return -1;
	if (!(tl->cam_img = malloc(isz * (size_t)n)))
		return err_set(err, "trainlog: out of memory");
	memcpy(tl->cam_img, images, isz * (size_t)n);
	for (int k = 0; k < n; k++)
		tl->cam_label[k] = labels[k];
	tl->ncam = n;
	return 0;
}

/* Grad-CAM of the test images for their labels, over them, into the test run. */
static int log_gradcam(trainlog *tl, int64_t step, model *m, char *err)
{
	size_t hw = (size_t)tl->h * tl->w;
	int training = m->training, n = tl->ncam, rc = -1;
	explain e = { .target = EXPLAIN_LABEL, .layer = tl->cam_layer, .upsample = 1 };
	float *map = malloc(sizeof *map * hw * (size_t)n), *t = malloc(sizeof *t * hw);
	uint8_t *over = malloc(hw * 3 * (size_t)n);

	if (!map || !t || !over) {
		err_set(err, "trainlog: out of memory");
		goto out;
	}
	if (explain_init(&e, m, 1, err))
		goto out;
	model_eval(m);
	/* the batch may be larger than the model's (a test batch of 4, a training batch of 2) */
	for (int k = 0; k < n; k += m->max_batch) {
		int b = n - k < m->max_batch ? n - k : m->max_batch;

		explain_gradcam(&e, tl->cam_img + (size_t)k * hw * 3, tl->cam_label + k, b, map + (size_t)k * hw);
	}
	m->training = training;
	explain_free(&e);
	for (int k = 0; k < n; k++) {
		cmap_normalize(t, map + (size_t)k * hw, hw, 0, 0, 0);
		cmap_blend(over + (size_t)k * hw * 3, t, tl->cam_img + (size_t)k * hw * 3, 3, hw,
			   cmap_find("jet"), 0.5);
	}
	rc = log_images(tl, TRAINLOG_TEST, step, "gradcam", over, n, tl->h, tl->w, err);
out:
	free(map), free(t), free(over);
	return rc;
}

int trainlog_step(trainlog *tl, int64_t step, model *m, char *err)
{
	tfev_writer *w = tl->open[TRAINLOG_TRAIN] ? &tl->run[TRAINLOG_TRAIN] : NULL;

	if (w && tl->hist_param >= 0 && tl->o.hist_every > 0 && step % tl->o.hist_every == 0) {
		const model_param *p = &m->param[tl->hist_param];

		if (tfev_histogram_f(w, step, tl->hist_tag, m->params + p->off, p->n, NULL, err))
			return -1;
	}
	if ((w || tl->snap_fd >= 0) && tl->nmaps && tl->o.image_every > 0 &&
	    step % tl->o.image_every == 0 && log_maps(tl, step, m, err))
		return -1;
	if (tl->ncam && tl->o.gradcam_every > 0 && step % tl->o.gradcam_every == 0 &&
	    log_gradcam(tl, step, m, err))
		return -1;
	return 0;
}

int trainlog_flush_if_due(trainlog *tl, char *err)
{
	for (int r = 0; r < TRAINLOG_NRUN; r++)
		if (tl->open[r] && tfev_flush_if_due(&tl->run[r], err))
			return -1;
	return 0;
}

int trainlog_close(trainlog *tl, char *err)
{
	char why[ERR_MAX];
	int rc = 0;

	for (int r = 0; r < TRAINLOG_NRUN; r++)
		if (tl->open[r] && tfev_close(&tl->run[r], rc ? why : err))
			rc = -1;
	if (tl->snap_fd >= 0 && close(tl->snap_fd) && !rc)
		rc = err_sys(err, "%s: close", tl->snap_path);
	free(tl->logdir);
	free(tl->image);
	free(tl->cam_img);
	free(tl->snap_path);
	buf_free(&tl->snap);
	memset(tl, 0, sizeof *tl);
	tl->snap_fd = -1;
	return rc;
}
