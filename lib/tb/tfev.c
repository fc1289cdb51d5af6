/* tfev: TensorBoard event files, written and read. See tfev.h for the format. */
#include "tb/tfev.h"

#include "tb/crc32c.h"
#include "util/errmsg.h"
#include "util/outfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Field numbers: see the table in tfev.h. */
enum {
	EV_WALL_TIME = 1, EV_STEP = 2, EV_FILE_VERSION = 3, EV_GRAPH_DEF = 4, EV_SUMMARY = 5,
	SUM_VALUE = 1,
	VAL_TAG = 1, VAL_SIMPLE = 2, VAL_IMAGE = 4, VAL_HISTO = 5, VAL_TENSOR = 8, VAL_META = 9,
	META_PLUGIN = 1, PLUGIN_NAME = 1,
	IMG_HEIGHT = 1, IMG_WIDTH = 2, IMG_COLORSPACE = 3, IMG_DATA = 4,
	HIS_MIN = 1, HIS_MAX = 2, HIS_NUM = 3, HIS_SUM = 4, HIS_SUMSQ = 5, HIS_LIMIT = 6, HIS_COUNT = 7,
	TEN_DTYPE = 1, TEN_SHAPE = 2, TEN_CONTENT = 4, TEN_FLOAT = 5, TEN_STRING = 8,
	DT_FLOAT_ = 1, DT_STRING_ = 7,
	GR_NODE = 1, GR_VERSIONS = 4, VER_PRODUCER = 1,
	NODE_NAME = 1, NODE_OP = 2, NODE_INPUT = 3, NODE_ATTR = 5, MAP_KEY = 1, MAP_VALUE = 2,
	ATTR_LIST = 1, ATTR_TYPE = 6, LIST_SHAPE = 7,
	SHAPE_DIM = 2, DIM_SIZE = 1,
};

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- writing ---- */

static void put_u32le(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Frames w->event as one TFRecord at the end of w->pending. */
static int frame_event(tfev_writer *w, char *err)
{
	unsigned char head[12], tail[4];
	uint64_t n = w->event.len;

	if (w->event.oom)
		return err_set(err, "%s: out of memory building an event", w->path);
	for (int i = 0; i < 8; i++)
		head[i] = (unsigned char)(n >> (8 * i));
	put_u32le(head + 8, crc32c_mask(crc32c(0, head, 8)));
	put_u32le(tail, crc32c_mask(crc32c(0, w->event.data, w->event.len)));
	buf_add(&w->pending, head, sizeof head);
	buf_add(&w->pending, w->event.data, w->event.len);
	buf_add(&w->pending, tail, sizeof tail);
	if (w->pending.oom) {
		w->failed = 1;
		return err_set(err, "%s: out of memory queueing an event", w->path);
	}
	w->records++;
	return 0;
}

int tfev_flush(tfev_writer *w, char *err)
{
	size_t off = 0;

	while (off < w->pending.len) {
		ssize_t k = write(w->fd, w->pending.data + off, w->pending.len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			/* Keep what did not go out at the front, so a retry cannot duplicate. */
			memmove(w->pending.data, w->pending.data + off, w->pending.len - off);
			w->pending.len -= off;
			w->failed = 1;
			return err_sys(err, "%s: write", w->path);
		}
		off += (size_t)k;
	}
	buf_reset(&w->pending);
	w->last_flush = now_mono();
	return 0;
}

int tfev_flush_if_due(tfev_writer *w, char *err)
{
	if (!w->pending.len)
		return 0;
	if (now_mono() - w->last_flush < TFEV_FLUSH_SECONDS && w->pending.len < (1u << 20))
		return 0;
	return tfev_flush(w, err);
}

/* Starts an Event with the current wall time and the step. */
static void event_begin(tfev_writer *w, int64_t step)
{
	buf_reset(&w->event);
	pb_double(&w->event, EV_WALL_TIME, now_real());
	if (step)
		pb_int(&w->event, EV_STEP, step);
}

static int event_finish(tfev_writer *w, char *err)
{
	if (frame_event(w, err))
		return -1;
	return tfev_flush_if_due(w, err);
}

int tfev_open(tfev_writer *w, const char *logdir, const char *run, char *err)
{
	char host[256], *dir;
	size_t n;
	long secs = (long)time(NULL);

	memset(w, 0, sizeof *w);
	w->fd = -1;
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
	w->path = malloc(n);
	if (!dir || !w->path) {
		free(dir);
		free(w->path);
		w->path = NULL;
		return err_set(err, "%s: out of memory", logdir);
	}
	snprintf(dir, n, "%s%s%s", logdir, run && *run ? "/" : "", run && *run ? run : "");
	if (outfile_mkdirs(dir, err)) {
		free(dir);
		free(w->path);
		w->path = NULL;
		return -1;
	}
	for (int k = 0; k < 1000 && w->fd < 0; k++) {
		if (k)
			snprintf(w->path, n, "%s/events.out.tfevents.%ld.%s.%d", dir, secs, host, k);
		else
			snprintf(w->path, n, "%s/events.out.tfevents.%ld.%s", dir, secs, host);
		w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (w->fd < 0 && errno != EEXIST)
			break;
	}
	free(dir);
	if (w->fd < 0) {
		err_sys(err, "%s: cannot create", w->path);
		free(w->path);
		w->path = NULL;
		return -1;
	}
	buf_init(&w->event);
	buf_init(&w->pending);
	w->last_flush = now_mono();
	event_begin(w, 0);
	pb_string(&w->event, EV_FILE_VERSION, TFEV_FILE_VERSION);
	/* The version record goes out at once: TensorBoard then knows the file is ours. */
	if (frame_event(w, err) || tfev_flush(w, err)) {
		char ignore[ERR_MAX];

		tfev_close(w, ignore);
		return -1;
	}
	return 0;
}

int tfev_close(tfev_writer *w, char *err)
{
	int rc = 0;

	if (w->fd >= 0) {
		rc = tfev_flush(w, err);
		if (close(w->fd) && !rc)
			rc = err_sys(err, "%s: close", w->path);
	}
	buf_free(&w->event);
	buf_free(&w->pending);
	free(w->path);
	w->path = NULL;
	w->fd = -1;
	return rc;
}

/* Summary { value { tag ... } }: returns the marks to close with value_end. */
static void value_begin(tfev_writer *w, int64_t step, const char *tag, size_t mark[2])
{
	event_begin(w, step);
	mark[0] = pb_begin(&w->event, EV_SUMMARY);
	mark[1] = pb_begin(&w->event, SUM_VALUE);
	pb_string(&w->event, VAL_TAG, tag);
}

static int value_end(tfev_writer *w, size_t mark[2], char *err)
{
	pb_end(&w->event, mark[1]);
	pb_end(&w->event, mark[0]);
	return event_finish(w, err);
}

static int check_tag(const tfev_writer *w, const char *tag, char *err)
{
	if (!tag || !*tag)
		return err_set(err, "%s: empty tag", w->path);
	return 0;
}

int tfev_scalar(tfev_writer *w, int64_t step, const char *tag, double value, char *err)
{
	size_t mark[2];

	if (check_tag(w, tag, err))
		return -1;
	value_begin(w, step, tag, mark);
	pb_float(&w->event, VAL_SIMPLE, (float)value);
	return value_end(w, mark, err);
}

size_t tfev_hist_default_limits(double *out, size_t cap)
{
	size_t npos = 0, n;

	/* Same recurrence as TensorFlow, so the limits match bit for bit. */
	for (double v = 1.0e-12; v < 1.0e20; v *= 1.1)
		npos++;
	npos++;                       /* DBL_MAX */
	n = 2 * npos + 1;
	if (!out || cap < n)
		return n;
	double v = 1.0e-12;
	for (size_t i = 0; i + 1 < npos; i++, v *= 1.1) {
		out[npos + 1 + i] = v;
		out[npos - 1 - i] = -v;
	}
	out[n - 1] = DBL_MAX;
	out[0] = -DBL_MAX;
	out[npos] = 0.0;
	return n;
}

/* Index of the first limit > x (std::upper_bound), as TensorFlow's Histogram::Add. */
static size_t upper_bound(const double *lim, size_t n, double x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lim[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int tfev_hist_compute(tfev_hist *h, const double *vd, const float *vf, size_t n, char *err)
{
	size_t nl = tfev_hist_default_limits(NULL, 0), nb = 0;
	double *lim = malloc(nl * sizeof *lim), *cnt = calloc(nl, sizeof *cnt);

	memset(h, 0, sizeof *h);
	if (!lim || !cnt) {
		free(lim);
		free(cnt);
		return err_set(err, "histogram: out of memory");
	}
	tfev_hist_default_limits(lim, nl);
	h->min = DBL_MAX;
	h->max = -DBL_MAX;
	for (size_t i = 0; i < n; i++) {
		double x = vd ? vd[i] : (double)vf[i];
		size_t b;

		if (isnan(x)) {
			h->skipped.nan++;
			continue;
		}
		if (isinf(x)) {
			if (x > 0)
				h->skipped.posinf++;
			else
				h->skipped.neginf++;
			continue;
		}
		/* The last limit is DBL_MAX itself, which no limit exceeds: the last bucket
		 * holds it too (TensorFlow's upper_bound writes one past its buckets there). */
		b = upper_bound(lim, nl, x);
		cnt[b < nl ? b : nl - 1] += 1;
		if (x < h->min)
			h->min = x;
		if (x > h->max)
			h->max = x;
		h->num += 1;
		h->sum += x;
		h->sum_squares += x * x;
	}
	if (h->num == 0)
		h->min = h->max = 0;
	/* Collapse runs of empty buckets in place, as TensorFlow's EncodeToProto. */
	for (size_t i = 0; i < nl;) {
		double end = lim[i], c = cnt[i];

		i++;
		if (c <= 0)
			while (i < nl && cnt[i] <= 0)
				end = lim[i++];
		lim[nb] = end;
		cnt[nb] = c;
		nb++;
	}
	h->limit = lim;
	h->count = cnt;
	h->nbuckets = nb;
	return 0;
}

void tfev_hist_free(tfev_hist *h)
{
	free(h->limit);
	free(h->count);
	memset(h, 0, sizeof *h);
}

int tfev_histogram_write(tfev_writer *w, int64_t step, const char *tag, const tfev_hist *h,
			 char *err)
{
	size_t mark[2], m;

	if (check_tag(w, tag, err))
		return -1;
	value_begin(w, step, tag, mark);
	m = pb_begin(&w->event, VAL_HISTO);
	pb_double(&w->event, HIS_MIN, h->min);
	pb_double(&w->event, HIS_MAX, h->max);
	pb_double(&w->event, HIS_NUM, h->num);
	pb_double(&w->event, HIS_SUM, h->sum);
	pb_double(&w->event, HIS_SUMSQ, h->sum_squares);
	pb_packed_double(&w->event, HIS_LIMIT, h->limit, h->nbuckets);
	pb_packed_double(&w->event, HIS_COUNT, h->count, h->nbuckets);
	pb_end(&w->event, m);
	return value_end(w, mark, err);
}

static int histogram_any(tfev_writer *w, int64_t step, const char *tag, const double *vd,
			 const float *vf, size_t n, tfev_nonfinite *skipped, char *err)
{
	tfev_hist h;
	int rc;

	if (tfev_hist_compute(&h, vd, vf, n, err))
		return -1;
	rc = tfev_histogram_write(w, step, tag, &h, err);
	if (skipped)
		*skipped = h.skipped;
	tfev_hist_free(&h);
	return rc;
}

int tfev_histogram(tfev_writer *w, int64_t step, const char *tag, const double *v, size_t n,
		   tfev_nonfinite *skipped, char *err)
{
	return histogram_any(w, step, tag, v, NULL, n, skipped, err);
}

int tfev_histogram_f(tfev_writer *w, int64_t step, const char *tag, const float *v, size_t n,
		     tfev_nonfinite *skipped, char *err)
{
	return histogram_any(w, step, tag, NULL, v, n, skipped, err);
}

int tfev_png_info(const void *png, size_t len, int *width, int *height, int *colorspace,
		  char *err)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	const unsigned char *p = png;
	uint32_t wd, ht;

	/* Signature, then the IHDR chunk: length 13, "IHDR", width, height (big-endian),
	 * bit depth, colour type. */
	if (len < 33 || memcmp(p, sig, 8) || memcmp(p + 12, "IHDR", 4))
		return err_set(err, "not a PNG file");
	wd = (uint32_t)p[16] << 24 | (uint32_t)p[17] << 16 | (uint32_t)p[18] << 8 | p[19];
	ht = (uint32_t)p[20] << 24 | (uint32_t)p[21] << 16 | (uint32_t)p[22] << 8 | p[23];
	if (!wd || !ht || wd > INT_MAX || ht > INT_MAX)
		return err_set(err, "PNG with a bad size %ux%u", wd, ht);
	*width = (int)wd;
	*height = (int)ht;
	switch (p[25]) {
	case 0: *colorspace = 1; break;            /* gray */
	case 4: *colorspace = 2; break;            /* gray + alpha */
	case 2: case 3: *colorspace = 3; break;    /* RGB, palette */
	case 6: *colorspace = 4; break;            /* RGBA */
	default:
		return err_set(err, "PNG with an unknown colour type %d", p[25]);
	}
	return 0;
}

int tfev_image_png(tfev_writer *w, int64_t step, const char *tag, const void *png, size_t len,
		   char *err)
{
	int width, height, cs;
	size_t mark[2], m;
	char why[ERR_MAX];

	if (check_tag(w, tag, err))
		return -1;
	if (tfev_png_info(png, len, &width, &height, &cs, why))
		return err_set(err, "%s: image %s: %s", w->path, tag, why);
	value_begin(w, step, tag, mark);
	m = pb_begin(&w->event, VAL_IMAGE);
	pb_int(&w->event, IMG_HEIGHT, height);
	pb_int(&w->event, IMG_WIDTH, width);
	pb_int(&w->event, IMG_COLORSPACE, cs);
	pb_bytes(&w->event, IMG_DATA, png, len);
	pb_end(&w->event, m);
	return value_end(w, mark, err);
}

int tfev_grid(const float *hwc, int h, int w, int c, uint8_t **out, int *gw, int *gh, char *err)
{
	int cols, rows;
	int64_t W, H;
	uint8_t *g;

	if (h < 1 || w < 1 || c < 1)
		return err_set(err, "feature grid: empty map %dx%dx%d", h, w, c);
	cols = (int)ceil(sqrt((double)c));
	rows = (c + cols - 1) / cols;
	W = (int64_t)cols * w + cols - 1;
	H = (int64_t)rows * h + rows - 1;
	if (W > 65535 || H > 65535)
		return err_set(err, "feature grid: %lldx%lld is too large for an image",
			       (long long)W, (long long)H);
	g = calloc((size_t)(W * H), 1);
	if (!g)
		return err_set(err, "feature grid: out of memory");
	for (int k = 0; k < c; k++) {
		float lo = INFINITY, hi = -INFINITY;
		int64_t x0 = (int64_t)(k % cols) * (w + 1), y0 = (int64_t)(k / cols) * (h + 1);

		for (int64_t i = 0; i < (int64_t)h * w; i++) {
			float v = hwc[i * c + k];
			if (v < lo)
				lo = v;
			if (v > hi)
				hi = v;
		}
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++) {
				float v = hwc[((int64_t)y * w + x) * c + k];
				uint8_t px;

				if (isnan(v))
					px = 0;
				else if (!(hi > lo) || !isfinite(hi - lo))
					px = 128;
				else
					px = (uint8_t)lrintf((v - lo) / (hi - lo) * 255.0f);
				g[(y0 + y) * W + x0 + x] = px;
			}
	}
	*out = g;
	*gw = (int)W;
	*gh = (int)H;
	return 0;
}

int tfev_text(tfev_writer *w, int64_t step, const char *tag, const char *text, char *err)
{
	size_t mark[2], m, p;

	if (check_tag(w, tag, err))
		return -1;
	value_begin(w, step, tag, mark);
	/* metadata.plugin_data.plugin_name = "text" routes it to the text plugin; its
	 * content (TextPluginData, version 0) serializes to nothing. */
	m = pb_begin(&w->event, VAL_META);
	p = pb_begin(&w->event, META_PLUGIN);
	pb_string(&w->event, PLUGIN_NAME, "text");
	pb_end(&w->event, p);
	pb_end(&w->event, m);
	m = pb_begin(&w->event, VAL_TENSOR);
	pb_int(&w->event, TEN_DTYPE, DT_STRING_);
	p = pb_begin(&w->event, TEN_SHAPE);     /* rank 0: one string */
	pb_end(&w->event, p);
	pb_string(&w->event, TEN_STRING, text);
	pb_end(&w->event, m);
	return value_end(w, mark, err);
}

static void put_shape(struct buf *b, int field, const tfev_node *nd)
{
	size_t s = pb_begin(b, field);

	for (int d = 0; d < nd->ndim; d++) {
		size_t dm = pb_begin(b, SHAPE_DIM);
		pb_int(b, DIM_SIZE, nd->shape[d]);
		pb_end(b, dm);
	}
	pb_end(b, s);
}

static void put_attr_begin(struct buf *b, const char *key, size_t *entry, size_t *val)
{
	*entry = pb_begin(b, NODE_ATTR);
	pb_string(b, MAP_KEY, key);
	*val = pb_begin(b, MAP_VALUE);
}

int tfev_graph(tfev_writer *w, const tfev_node *nodes, size_t n, char *err)
{
	struct buf g;
	int rc;

	buf_init(&g);
	for (size_t i = 0; i < n; i++) {
		const tfev_node *nd = &nodes[i];
		size_t m = pb_begin(&g, GR_NODE), e, v, l;

		if (!nd->name || !*nd->name || !nd->op || nd->ndim > 8) {
			buf_free(&g);
			return err_set(err, "%s: graph node %zu has no name or op", w->path, i);
		}
		pb_string(&g, NODE_NAME, nd->name);
		pb_string(&g, NODE_OP, nd->op);
		for (int k = 0; k < TFEV_MAX_INPUTS; k++)
			if (nd->input[k])
				pb_string(&g, NODE_INPUT, nd->input[k]);
		put_attr_begin(&g, "T", &e, &v);
		pb_int(&g, ATTR_TYPE, DT_FLOAT_);
		pb_end(&g, v);
		pb_end(&g, e);
		if (nd->ndim >= 0) {
			put_attr_begin(&g, "_output_shapes", &e, &v);
			l = pb_begin(&g, ATTR_LIST);
			put_shape(&g, LIST_SHAPE, nd);
			pb_end(&g, l);
			pb_end(&g, v);
			pb_end(&g, e);
		}
		pb_end(&g, m);
	}
	size_t vm = pb_begin(&g, GR_VERSIONS);
	pb_int(&g, VER_PRODUCER, 22);
	pb_end(&g, vm);
	if (g.oom) {
		buf_free(&g);
		return err_set(err, "%s: out of memory building the graph", w->path);
	}
	event_begin(w, 0);
	pb_bytes(&w->event, EV_GRAPH_DEF, g.data, g.len);
	buf_free(&g);
	rc = event_finish(w, err);
	return rc;
}

/* ---- reading ---- */

int tfev_reader_open(tfev_reader *r, const char *path, char *err)
{
	struct stat st;

	memset(r, 0, sizeof *r);
	r->size = -1;
	if (!strcmp(path, "-")) {
		r->fp = stdin;
		r->name = strdup("<stdin>");
	} else {
		r->fp = fopen(path, "rb");
		r->own = 1;
		r->name = strdup(path);
		if (!r->fp) {
			err_sys(err, "%s", path);
			free(r->name);
			r->name = NULL;
			return -1;
		}
	}
	if (!r->name) {
		tfev_reader_close(r);
		return err_set(err, "%s: out of memory", path);
	}
	if (!fstat(fileno(r->fp), &st)) {
		if (S_ISDIR(st.st_mode)) {
			tfev_reader_close(r);
			return err_set(err, "%s: is a directory", path);
		}
		if (S_ISREG(st.st_mode))
			r->size = st.st_size;
	}
	return 0;
}

void tfev_reader_close(tfev_reader *r)
{
	if (r->fp && r->own)
		fclose(r->fp);
	free(r->name);
	free(r->buf);
	memset(r, 0, sizeof *r);
}

static uint32_t get_u32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int tfev_reader_next(tfev_reader *r, const unsigned char **payload, size_t *len,
		     int64_t *offset, char *err)
{
	unsigned char head[12], tail[4];
	size_t got;
	uint64_t n;
	int64_t at = r->offset;

	*offset = at;
	got = fread(head, 1, sizeof head, r->fp);
	if (got == 0 && !ferror(r->fp))
		return TFEV_REC_EOF;
	if (got < sizeof head) {
		if (ferror(r->fp))
			return err_sys(err, "%s: read error at offset %lld", r->name, (long long)at);
		return err_set(err, "%s: truncated record at offset %lld (%zu of 12 header bytes)",
			       r->name, (long long)at, got);
	}
	n = (uint64_t)get_u32le(head) | (uint64_t)get_u32le(head + 4) << 32;
	if (crc32c_mask(crc32c(0, head, 8)) != get_u32le(head + 8))
		return err_set(err, "%s: bad length CRC in record at offset %lld", r->name,
			       (long long)at);
	if (n > (uint64_t)INT32_MAX)
		return err_set(err, "%s: implausible record length %llu at offset %lld", r->name,
			       (unsigned long long)n, (long long)at);
	if (r->size >= 0 && n + 16 > (uint64_t)(r->size - at))
		return err_set(err, "%s: truncated record at offset %lld (%llu-byte payload, "
			       "%lld bytes left)", r->name, (long long)at, (unsigned long long)n,
			       (long long)(r->size - at - 12));
	if (n + 1 > r->cap) {
		unsigned char *p = realloc(r->buf, n + 1);
		if (!p)
			return err_set(err, "%s: out of memory for a %llu-byte record", r->name,
				       (unsigned long long)n);
		r->buf = p;
		r->cap = n + 1;
	}
	got = fread(r->buf, 1, n, r->fp);
	if (got == n)
		got += fread(tail, 1, 4, r->fp);
	if (got < n + 4) {
		if (ferror(r->fp))
			return err_sys(err, "%s: read error at offset %lld", r->name, (long long)at);
		return err_set(err, "%s: truncated record at offset %lld (%zu of %llu bytes)",
			       r->name, (long long)at, got + 12, (unsigned long long)n + 16);
	}
	r->offset += (int64_t)n + 16;
	if (crc32c_mask(crc32c(0, r->buf, n)) != get_u32le(tail)) {
		err_set(err, "%s: bad data CRC in record at offset %lld", r->name, (long long)at);
		return TFEV_REC_BADDATA;
	}
	*payload = r->buf;
	*len = (size_t)n;
	return TFEV_REC_OK;
}

typedef struct {
	char **v;
	size_t n, cap;
} pathlist;

static int walk(const char *dir, pathlist *pl, int depth, char *err)
{
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (depth > 64)
		return err_set(err, "%s: directories nested too deep", dir);
	d = opendir(dir);
	if (!d)
		return err_sys(err, "%s", dir);
	while (!rc && (errno = 0, e = readdir(d))) {
		struct stat st;
		size_t len;
		char *p;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		len = strlen(dir) + strlen(e->d_name) + 2;
		p = malloc(len);
		if (!p) {
			rc = err_set(err, "%s: out of memory", dir);
			break;
		}
		snprintf(p, len, "%s/%s", dir, e->d_name);
		if (stat(p, &st)) {
			free(p);        /* a dangling link or a file gone meanwhile */
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			rc = walk(p, pl, depth + 1, err);
			free(p);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !strstr(e->d_name, "tfevents")) {
			free(p);
			continue;
		}
		if (pl->n == pl->cap) {
			size_t cap = pl->cap ? 2 * pl->cap : 16;
			char **v = realloc(pl->v, cap * sizeof *v);
			if (!v) {
				free(p);
				rc = err_set(err, "%s: out of memory", dir);
				break;
			}
			pl->v = v;
			pl->cap = cap;
		}
		pl->v[pl->n++] = p;
	}
	if (!rc && errno)
		rc = err_sys(err, "%s", dir);
	closedir(d);
	return rc;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int tfev_find_files(const char *dir, char ***paths, size_t *n, char *err)
{
	pathlist pl = { 0 };

	if (walk(dir, &pl, 0, err)) {
		tfev_files_free(pl.v, pl.n);
		return -1;
	}
	if (pl.n > 1)
		qsort(pl.v, pl.n, sizeof *pl.v, cmp_path);
	*paths = pl.v;
	*n = pl.n;
	return 0;
}

void tfev_files_free(char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

/* ---- decoding ---- */

int tfev_iter_init(tfev_iter *it, const void *payload, size_t len, char *err)
{
	pb_reader r;
	pb_field f;
	int rc;

	memset(it, 0, sizeof *it);
	/* Step and wall time may come after the payload field: read them first. */
	pb_reader_init(&r, payload, len);
	while ((rc = pb_next(&r, &f)) == 1) {
		if (f.field == EV_WALL_TIME && f.wire == PB_FIXED64)
			it->wall_time = pb_as_double(&f);
		else if (f.field == EV_STEP && f.wire == PB_VARINT)
			it->step = (int64_t)f.u;
	}
	if (rc < 0)
		return err_set(err, "malformed Event");
	pb_reader_init(&it->ev, payload, len);
	return 0;
}

static int decode_histo(tfev_item *item, const pb_field *h)
{
	pb_reader r;
	pb_field f;
	int rc;

	item->kind = TFEV_HISTOGRAM;
	pb_reader_init(&r, h->data, h->len);
	while ((rc = pb_next(&r, &f)) == 1) {
		double d = f.wire == PB_FIXED64 ? pb_as_double(&f) : 0;

		switch (f.field) {
		case HIS_MIN: item->min = d; break;
		case HIS_MAX: item->max = d; break;
		case HIS_NUM: item->num = d; break;
		case HIS_SUM: item->sum = d; break;
		case HIS_SUMSQ: item->sum_squares = d; break;
		case HIS_LIMIT: item->limits = f; break;
		case HIS_COUNT: item->counts = f; break;
		}
	}
	/* Only packed limits and counts (what every writer emits) are read. */
	if (rc < 0 || pb_packed_count(&item->limits) != pb_packed_count(&item->counts))
		return -1;
	return 0;
}

static int decode_image(tfev_item *item, const pb_field *im)
{
	pb_reader r;
	pb_field f;
	int rc;

	item->kind = TFEV_IMAGE;
	pb_reader_init(&r, im->data, im->len);
	while ((rc = pb_next(&r, &f)) == 1) {
		if (f.field == IMG_HEIGHT)
			item->height = (int)f.u;
		else if (f.field == IMG_WIDTH)
			item->width = (int)f.u;
		else if (f.field == IMG_COLORSPACE)
			item->colorspace = (int)f.u;
		else if (f.field == IMG_DATA && f.wire == PB_LEN) {
			item->data = f.data;
			item->len = f.len;
		}
	}
	return rc;
}

/* A TensorProto: a string (text plugin or not) becomes TEXT, a one-float tensor SCALAR. */
static int decode_tensor(tfev_item *item, const pb_field *t)
{
	pb_reader r;
	pb_field f;
	int rc, nstr = 0;

	item->kind = TFEV_TENSOR;
	item->data = t->data;
	item->len = t->len;
	pb_reader_init(&r, t->data, t->len);
	while ((rc = pb_next(&r, &f)) == 1) {
		if (f.field == TEN_DTYPE)
			item->dtype = (int)f.u;
		else if (f.field == TEN_STRING && f.wire == PB_LEN && !nstr++) {
			item->kind = TFEV_TEXT;
			item->data = f.data;
			item->len = f.len;
		} else if (f.field == TEN_FLOAT && f.wire == PB_LEN && f.len == 4) {
			pb_field one = { .wire = PB_FIXED32 };
			one.u = get_u32le(f.data);
			item->kind = TFEV_SCALAR;
			item->value = pb_as_float(&one);
		} else if (f.field == TEN_FLOAT && f.wire == PB_FIXED32) {
			item->kind = TFEV_SCALAR;
			item->value = pb_as_float(&f);
		} else if (f.field == TEN_CONTENT && f.wire == PB_LEN && f.len == 4 &&
			   item->dtype == DT_FLOAT_) {
			pb_field one = { .wire = PB_FIXED32 };
			one.u = get_u32le(f.data);
			item->kind = TFEV_SCALAR;
			item->value = pb_as_float(&one);
		}
	}
	return rc;
}

static int decode_value(tfev_item *item, const pb_field *v)
{
	pb_reader r;
	pb_field f;
	int rc, bad = 0;

	item->kind = TFEV_OTHER;
	pb_reader_init(&r, v->data, v->len);
	while ((rc = pb_next(&r, &f)) == 1) {
		if (f.field == VAL_TAG && f.wire == PB_LEN) {
			item->tag = (const char *)f.data;
			item->tag_len = f.len;
		} else if (f.field == VAL_SIMPLE && f.wire == PB_FIXED32) {
			item->kind = TFEV_SCALAR;
			item->value = pb_as_float(&f);
		} else if (f.field == VAL_HISTO && f.wire == PB_LEN) {
			bad |= decode_histo(item, &f);
		} else if (f.field == VAL_IMAGE && f.wire == PB_LEN) {
			bad |= decode_image(item, &f);
		} else if (f.field == VAL_TENSOR && f.wire == PB_LEN) {
			bad |= decode_tensor(item, &f);
		} else if (f.field != VAL_META) {
			item->field = f.field;
			item->data = f.data;
			item->len = f.len;
		}
	}
	return rc < 0 || bad ? -1 : 0;
}

int tfev_iter_next(tfev_iter *it, tfev_item *item, char *err)
{
	pb_field f;
	int rc;

	memset(item, 0, sizeof *item);
	item->step = it->step;
	item->wall_time = it->wall_time;
	for (;;) {
		if (it->in_summary) {
			while ((rc = pb_next(&it->sum, &f)) == 1) {
				if (f.field != SUM_VALUE || f.wire != PB_LEN)
					continue;
				if (decode_value(item, &f))
					return err_set(err, "malformed Summary.Value");
				it->emitted = 1;
				return 1;
			}
			if (rc < 0)
				return err_set(err, "malformed Summary");
			it->in_summary = 0;
		}
		rc = pb_next(&it->ev, &f);
		if (rc < 0)
			return err_set(err, "malformed Event");
		if (rc == 0) {
			if (it->emitted)
				return 0;
			it->emitted = 1;
			item->kind = TFEV_EMPTY;
			return 1;
		}
		if (f.field == EV_WALL_TIME || f.field == EV_STEP)
			continue;
		if (f.field == EV_SUMMARY && f.wire == PB_LEN) {
			pb_reader_init(&it->sum, f.data, f.len);
			it->in_summary = 1;
			continue;
		}
		item->kind = f.field == EV_FILE_VERSION ? TFEV_VERSION :
			     f.field == EV_GRAPH_DEF ? TFEV_GRAPH : TFEV_OTHER;
		item->field = f.field;
		item->data = f.data;
		item->len = f.len;
		it->emitted = 1;
		return 1;
	}
}

int tfev_graph_next(pb_reader *graph, tfev_node_view *nv)
{
	pb_field f, g;
	pb_reader r;
	int rc;

	memset(nv, 0, sizeof *nv);
	while ((rc = pb_next(graph, &f)) == 1) {
		if (f.field != GR_NODE || f.wire != PB_LEN)
			continue;
		pb_reader_init(&r, f.data, f.len);
		while ((rc = pb_next(&r, &g)) == 1) {
			if (g.wire != PB_LEN)
				continue;
			if (g.field == NODE_NAME) {
				nv->name = (const char *)g.data;
				nv->name_len = g.len;
			} else if (g.field == NODE_OP) {
				nv->op = (const char *)g.data;
				nv->op_len = g.len;
			} else if (g.field == NODE_INPUT) {
				nv->ninputs++;
			}
		}
		return rc < 0 ? -1 : 1;
	}
	return rc;
}
