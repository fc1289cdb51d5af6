/* tfev_write: an event file's Events: the file_version, scalars, text, the graph, and the
 * Summary value frame the other summary writers fill. See tfev_write.h. */
#include "tb/tfev_write.h"

#include "tb/tfev.h"
#include "util/errmsg.h"
#include "util/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int tfev_flush(tfev_writer *w, char *err)
{
	return tfrecord_flush(&w->out, err);
}

int tfev_flush_if_due(tfev_writer *w, char *err)
{
	return tfrecord_flush_if_due(&w->out, err);
}

/* Starts an Event with the current wall time and the step. */
static void event_begin(tfev_writer *w, int64_t step)
{
	buf_reset(&w->event);
	pb_double(&w->event, TFEV_EV_WALL_TIME, now_real());
	if (step)
		pb_int(&w->event, TFEV_EV_STEP, step);
}

/* Frames the Event as one record (flushed when due). */
static int event_finish(tfev_writer *w, char *err)
{
	if (w->event.oom)
		return err_set(err, "%s: out of memory building an event", w->out.path);
	return tfrecord_write(&w->out, w->event.data, w->event.len, err);
}

int tfev_open(tfev_writer *w, const char *logdir, const char *run, char *err)
{
	char host[256], *dir, *path;
	size_t n;
	long secs = (long)time(NULL);
	int fd = -1;

	memset(w, 0, sizeof *w);
	tfrecord_writer_init(&w->out, -1, NULL);
	if (!logdir || !*logdir)
		return err_set(err, "tfev: empty log directory");
	if (gethostname(host, sizeof host))
		strcpy(host, "localhost");
	host[sizeof host - 1] = 0;
	for (char *p = host; *p; p++)
		if (*p == '/')
			*p = '_';
	n = strlen(logdir) + (run ? strlen(run) : 0) + strlen(host) + 80;
	dir = malloc(n);
	path = malloc(n);
	if (!dir || !path) {
		free(dir);
		free(path);
		return err_set(err, "%s: out of memory", logdir);
	}
	snprintf(dir, n, "%s%s%s", logdir, run && *run ? "/" : "", run && *run ? run : "");
	if (outfile_mkdirs(dir, err)) {
		free(dir);
		free(path);
		return -1;
	}
	for (int k = 0; k < 1000 && fd < 0; k++) {
		if (k)
			snprintf(path, n, "%s/events.out.tfevents.%ld.%s.%d", dir, secs, host, k);
		else
			snprintf(path, n, "%s/events.out.tfevents.%ld.%s", dir, secs, host);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	free(dir);
	if (fd < 0) {
		err_sys(err, "%s: cannot create", path);
		free(path);
		return -1;
	}
	tfrecord_writer_init(&w->out, fd, path);
	buf_init(&w->event);
	event_begin(w, 0);
	pb_string(&w->event, TFEV_EV_FILE_VERSION, TFEV_FILE_VERSION);
	/* The version record goes out at once: TensorBoard then knows the file is ours. */
	if (event_finish(w, err) || tfev_flush(w, err)) {
		char ignore[ERR_MAX];

		tfev_close(w, ignore);
		return -1;
	}
	return 0;
}

int tfev_close(tfev_writer *w, char *err)
{
	int rc = tfrecord_close(&w->out, err);

	buf_free(&w->event);
	return rc;
}

int tfev_value_begin(tfev_writer *w, int64_t step, const char *tag, size_t mark[2], char *err)
{
	if (!tag || !*tag)
		return err_set(err, "%s: empty tag", w->out.path);
	event_begin(w, step);
	mark[0] = pb_begin(&w->event, TFEV_EV_SUMMARY);
	mark[1] = pb_begin(&w->event, TFEV_SUM_VALUE);
	pb_string(&w->event, TFEV_VAL_TAG, tag);
	return 0;
}

int tfev_value_end(tfev_writer *w, size_t mark[2], char *err)
{
	pb_end(&w->event, mark[1]);
	pb_end(&w->event, mark[0]);
	return event_finish(w, err);
}

int tfev_scalar(tfev_writer *w, int64_t step, const char *tag, double value, char *err)
{
	size_t mark[2];

	if (tfev_value_begin(w, step, tag, mark, err))
		return -1;
	pb_float(&w->event, TFEV_VAL_SIMPLE, (float)value);
	return tfev_value_end(w, mark, err);
}

int tfev_text(tfev_writer *w, int64_t step, const char *tag, const char *text, char *err)
{
	size_t mark[2], m, p;

	if (tfev_value_begin(w, step, tag, mark, err))
		return -1;
	/* metadata.plugin_data.plugin_name = "text" routes it to the text plugin; its
	 * content (TextPluginData, version 0) serializes to nothing. */
	m = pb_begin(&w->event, TFEV_VAL_META);
	p = pb_begin(&w->event, TFEV_META_PLUGIN);
	pb_string(&w->event, TFEV_PLUGIN_NAME, "text");
	pb_end(&w->event, p);
	pb_end(&w->event, m);
	m = pb_begin(&w->event, TFEV_VAL_TENSOR);
	pb_int(&w->event, TFEV_TEN_DTYPE, TFEV_DT_STRING);
	p = pb_begin(&w->event, TFEV_TEN_SHAPE);     /* rank 0: one string */
	pb_end(&w->event, p);
	pb_string(&w->event, TFEV_TEN_STRING, text);
	pb_end(&w->event, m);
	return tfev_value_end(w, mark, err);
}

static void put_shape(struct buf *b, int field, const tfev_node *nd)
{
	size_t s = pb_begin(b, field);

	for (int d = 0; d < nd->ndim; d++) {
		size_t dm = pb_begin(b, TFEV_SHAPE_DIM);
		pb_int(b, TFEV_DIM_SIZE, nd->shape[d]);
		pb_end(b, dm);
	}
	pb_end(b, s);
}

static void put_attr_begin(struct buf *b, const char *key, size_t *entry, size_t *val)
{
	*entry = pb_begin(b, TFEV_NODE_ATTR);
	pb_string(b, TFEV_MAP_KEY, key);
	*val = pb_begin(b, TFEV_MAP_VALUE);
}

int tfev_graph(tfev_writer *w, const tfev_node *nodes, size_t n, char *err)
{
	struct buf g;
	int rc;

	buf_init(&g);
	for (size_t i = 0; i < n; i++) {
		const tfev_node *nd = &nodes[i];
		size_t m = pb_begin(&g, TFEV_GR_NODE), e, v, l;

		if (!nd->name || !*nd->name || !nd->op || nd->ndim > 8) {
			buf_free(&g);
			return err_set(err, "%s: graph node %zu has no name or op", w->out.path, i);
		}
		pb_string(&g, TFEV_NODE_NAME, nd->name);
		pb_string(&g, TFEV_NODE_OP, nd->op);
		for (int k = 0; k < TFEV_MAX_INPUTS; k++)
			if (nd->input[k])
				pb_string(&g, TFEV_NODE_INPUT, nd->input[k]);
		put_attr_begin(&g, "T", &e, &v);
		pb_int(&g, TFEV_ATTR_TYPE, TFEV_DT_FLOAT);
		pb_end(&g, v);
		pb_end(&g, e);
		if (nd->ndim >= 0) {
			put_attr_begin(&g, "_output_shapes", &e, &v);
			l = pb_begin(&g, TFEV_ATTR_LIST);
			put_shape(&g, TFEV_LIST_SHAPE, nd);
			pb_end(&g, l);
			pb_end(&g, v);
			pb_end(&g, e);
		}
		pb_end(&g, m);
	}
	size_t vm = pb_begin(&g, TFEV_GR_VERSIONS);
	pb_int(&g, TFEV_VER_PRODUCER, 22);
	pb_end(&g, vm);
	if (g.oom) {
		buf_free(&g);
		return err_set(err, "%s: out of memory building the graph", w->out.path);
	}
	event_begin(w, 0);
	pb_bytes(&w->event, TFEV_EV_GRAPH_DEF, g.data, g.len);
	buf_free(&g);
	rc = event_finish(w, err);
	return rc;
}
