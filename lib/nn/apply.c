#include "nn/apply.h"

#include <stdlib.h>
#include <string.h>

#include "nn/ckpt.h"
#include "nn/conv2d.h"
#include "nn/maxpool.h"
#include "util/errmsg.h"
#include "array/npy.h"

/* n items of size bytes, or NULL (also when n * size overflows). */
static void *alloc_n(int64_t n, size_t size)
{
	if (n < 1)
		n = 1;
	if ((uint64_t)n > SIZE_MAX / size)
		return NULL;
	return malloc((size_t)n * size);
}

static void clear_buffers(apply *a)
{
	free(a->in);
	free(a->out);
	free(a->ws);
	free(a->argmax);
	free(a->raw);
	a->in = a->out = a->ws = NULL;
	a->argmax = NULL;
	a->raw = NULL;
	a->raw_cap = 0;
	a->h = a->w = a->c = 0;
}

static void init_common(apply *a, enum apply_op op)
{
	memset(a, 0, sizeof *a);
	a->op = op;
	a->stride = 1;
	a->layer = -1;
}

void apply_init_gray(apply *a)
{
	init_common(a, APPLY_GRAY);
}

static int to_f4(tensor *t, const char *name, char *err)
{
	int64_t n = tensor_numel(t);
	float *f;

	if (t->dtype == DT_F4)
		return 0;
	if (t->dtype != DT_F8)
		return err_set(err, "%s: filters are %s; want f4 or f8", name, tensor_dtype_name(t->dtype));
	f = alloc_n(n, sizeof *f);
	if (!f)
		return err_set(err, "%s: out of memory", name);
	for (int64_t i = 0; i < n; i++) {
		double v;
		memcpy(&v, (const char *)t->data + 8 * i, 8);
		f[i] = (float)v;
	}
	free(t->data);
	t->data = f;
	t->dtype = DT_F4;
	return 0;
}

int apply_init_conv(apply *a, const char *path, int stride, geom_pad pad, char *err)
{
	FILE *f;
	int rc;

	init_common(a, APPLY_CONV);
	a->stride = stride;
	a->pad = pad;
	snprintf(a->source, sizeof a->source, "%s", path);
	if (isa_from_env(&a->isa, err))
		return -1;
	if (!strcmp(path, "-"))
		return err_set(err, "-: the filters cannot come from standard input (the images do)");
	f = fopen(path, "rb");
	if (!f)
		return err_sys(err, "%s: cannot open", path);
	rc = npy_read(f, path, &a->filters, err);
	fclose(f);
	if (rc == 0)
		return err_set(err, "%s: empty file, no filter array", path);
	if (rc < 0)
		return -1;
	if (a->filters.ndim != 4 || a->filters.dtype == DT_U) {
		err_set(err, "%s: filters must be a numeric [kh, kw, cin, cout] array, got %d dimensions",
			path, a->filters.ndim);
		goto fail;
	}
	for (int i = 0; i < 4; i++)
		if (a->filters.shape[i] < 1 || a->filters.shape[i] > 65536) {
			err_set(err, "%s: filter dimension %d is %lld", path, i,
				(long long)a->filters.shape[i]);
			goto fail;
		}
	if (to_f4(&a->filters, path, err))
		goto fail;
	return 0;
fail:
	tensor_free(&a->filters);
	return -1;
}

int apply_init_maxpool(apply *a, int k, int stride, geom_pad pad, char *err)
{
	init_common(a, APPLY_MAXPOOL);
	if (k < 1 || stride < 1)
		return err_set(err, "maxpool: window %d and stride %d must be positive", k, stride);
	a->k = k;
	a->stride = stride;
	a->pad = pad;
	return 0;
}

int apply_init_layer(apply *a, const char *path, const char *name, int max_batch, char *err)
{
	tensor classes;
	ckpt_state st;
	model m;

	if (ckpt_load(path, &m, max_batch, 0, &classes, &st, err))
		return -1;
	tensor_free(&classes);
	return apply_init_layer_model(a, &m, path, name, err);
}

int apply_init_layer_model(apply *a, model *m, const char *path, const char *name, char *err)
{
	char names[ERR_MAX / 2] = "";
	size_t used = 0;

	init_common(a, APPLY_LAYER);
	snprintf(a->source, sizeof a->source, "%s", path);
	a->m = *m;
	a->has_model = 1;
	for (int i = 0; i < a->m.nlayer; i++) {
		const char *ln = a->m.layer[i].name;

		if (!strcmp(ln, name))
			a->layer = i;
		if (used < sizeof names)
			used += (size_t)snprintf(names + used, sizeof names - used, "%s%s",
						 i ? " " : "", ln);
	}
	if (a->layer < 0) {
		err_set(err, "%s: no layer named '%s' (layers: %s)", path, name, names);
		apply_free(a);
		return -1;
	}
	model_keep(&a->m, a->layer);
	if (model_lean(&a->m, err)) {
		apply_free(a);
		return -1;
	}
	return 0;
}

int apply_init_explain(apply *a, enum apply_op op, model *m, const char *path,
		       const explain *ex, char *err)
{
	char e[ERR_MAX];

	init_common(a, op);
	snprintf(a->source, sizeof a->source, "%s", path);
	a->m = *m;
	a->has_model = 1;
	a->ex = *ex;
	if (explain_init(&a->ex, &a->m, op != APPLY_OCCLUSION, e)) {
		err_set(err, "%s: %s", path, e);
		apply_free(a);
		return -1;
	}
	a->has_ex = 1;
	return 0;
}

void apply_set_progress(apply *a, apply_progress_fn fn, void *ctx)
{
	a->progress = fn;
	a->progress_ctx = ctx;
}

void apply_free(apply *a)
{
	clear_buffers(a);
	tensor_free(&a->filters);
	if (a->has_ex)
		explain_free(&a->ex);
	a->has_ex = 0;
	if (a->has_model)
		model_free(&a->m);
	a->has_model = 0;
}

/* geom_init's message, prefixed by the input's name. */
static int set_geom(apply *a, int kh, int kw, int oc, const char *name, char *err)
{
	char e[ERR_MAX];

	if (geom_init(&a->g, a->h, a->w, a->c, kh, kw, a->stride, a->stride, a->pad, oc, e))
		return err_set(err, "%s: %s", name, e);
	a->oh = a->g.oh, a->ow = a->g.ow, a->oc = a->g.oc;
	return 0;
}

static int shape_for_op(apply *a, enum tensor_dtype dt, const char *name, char *err)
{
	const model_layer *l;

	switch (a->op) {
	case APPLY_GRAY:
		a->oh = a->h, a->ow = a->w, a->oc = 1;
		return 0;
	case APPLY_CONV:
		if (a->c != a->filters.shape[2])
			return err_set(err, "%s: images have %d channels but the filters in %s want %lld (cin)",
				       name, a->c, a->source, (long long)a->filters.shape[2]);
		return set_geom(a, (int)a->filters.shape[0], (int)a->filters.shape[1],
				(int)a->filters.shape[3], name, err);
	case APPLY_MAXPOOL:
		return set_geom(a, a->k, a->k, a->c, name, err);
	case APPLY_LAYER:
	case APPLY_GRADCAM:
	case APPLY_SALIENCY:
	case APPLY_OCCLUSION:
		if (dt != DT_U1)
			return err_set(err, "%s: %s wants uint8 images (the model scales them itself), got %s",
				       name, a->op == APPLY_LAYER ? "--layer" : "a model", tensor_dtype_name(dt));
		if (a->h != a->m.h || a->w != a->m.w || a->c != 3)
			return err_set(err, "%s: images are %dx%dx%d but the model in %s takes %dx%dx3",
				       name, a->h, a->w, a->c, a->source, a->m.h, a->m.w);
		a->batch = a->m.max_batch;
		if (a->op != APPLY_LAYER) {
			explain_map_size(&a->ex, a->op == APPLY_OCCLUSION, &a->oh, &a->ow);
			a->oc = 1;
			return 0;
		}
		l = &a->m.layer[a->layer];
		a->oh = l->oh, a->ow = l->ow, a->oc = l->oc;
		return 0;
	}
	return err_set(err, "%s: unknown operation", name);
}

int apply_prepare(apply *a, int h, int w, int c, enum tensor_dtype dt, const char *name,
		  char *err)
{
	tensor probe = { .dtype = dt };
	int64_t isz = (int64_t)h * w * c, osz;

	clear_buffers(a);
	if (h < 1 || w < 1 || c < 1 || isz > INT32_MAX)
		return err_set(err, "%s: images of %dx%dx%d are empty or too large", name, h, w, c);
	a->h = h, a->w = w, a->c = c;
	a->batch = 1;
	if (shape_for_op(a, dt, name, err))
		goto fail;
	osz = (int64_t)a->oh * a->ow * a->oc;
	a->out = alloc_n(a->batch * osz, sizeof(float));
	a->raw_cap = (size_t)a->batch * (size_t)isz * tensor_itemsize(&probe);
	a->raw = alloc_n((int64_t)a->raw_cap, 1);
	if (!a->out || !a->raw)
		goto oom;
	if (!a->has_model && !(a->in = alloc_n(a->batch * isz, sizeof(float))))
		goto oom;
	if (a->op == APPLY_CONV && !(a->ws = alloc_n((int64_t)conv2d_workspace(&a->g, 1), sizeof(float))))
		goto oom;
	if (a->op == APPLY_MAXPOOL && !(a->argmax = alloc_n(a->batch * osz, sizeof(int32_t))))
		goto oom;
	return 0;
oom:
	err_set(err, "%s: out of memory for %dx%dx%d images", name, h, w, c);
fail:
	clear_buffers(a);
	return -1;
}

static void to_float(float *dst, const void *src, enum tensor_dtype dt, size_t n)
{
	if (dt == DT_F4) {
		memcpy(dst, src, sizeof *dst * n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		dst[i] = tensor_elem_f4(src, dt, (int64_t)i);
}

void apply_run(apply *a, const void *raw, enum tensor_dtype dt, int B, float *out)
{
	size_t npix = (size_t)a->h * a->w, n = (size_t)B * npix * a->c;

	switch (a->op) {
	case APPLY_LAYER:
		model_forward(&a->m, raw, NULL, B);
		memcpy(out, a->m.layer[a->layer].out, sizeof *out * B * a->m.layer[a->layer].out_n);
		return;
	case APPLY_GRADCAM:
		explain_gradcam(&a->ex, raw, a->labels, B, out);
		return;
	case APPLY_SALIENCY:
		explain_saliency(&a->ex, raw, a->labels, B, a->first, out);
		return;
	case APPLY_OCCLUSION:
		explain_occlusion(&a->ex, raw, a->labels, B, out);
		return;
	default:
		break;
	}
	to_float(a->in, raw, dt, n);
	switch (a->op) {
	case APPLY_GRAY:
		for (size_t i = 0; i < (size_t)B * npix; i++) {
			double s = 0;
			for (int k = 0; k < a->c; k++)
				s += a->in[i * a->c + k];
			out[i] = (float)(s / a->c);
		}
		break;
	case APPLY_CONV:
		conv2d_forward(&a->g, out, a->in, a->filters.data, NULL, B, 0, a->ws, 1, a->isa);
		break;
	case APPLY_MAXPOOL:
		maxpool_forward(&a->g, out, a->argmax, a->in, B, 1);
		break;
	default:
		break;
	}
}

/* ---- the stream ---- */

static int read_exact(npy_src *s, void *buf, size_t n, const char *name, char *err)
{
	int64_t got = npy_src_fill(s, buf, n, name, err);

	if (got < 0)
		return -1;
	if ((size_t)got < n)
		return err_set(err, "%s: truncated data: the stream ends inside an array", name);
	return 0;
}

static int skip(npy_src *s, int64_t n, const char *name, char *err)
{
	unsigned char buf[16384];

	while (n > 0) {
		size_t k = n < (int64_t)sizeof buf ? (size_t)n : sizeof buf;
		if (read_exact(s, buf, k, name, err))
			return -1;
		n -= (int64_t)k;
	}
	return 0;
}

static void shape_str(const tensor *t, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "[");

	for (int i = 0; i < t->ndim && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
	if (n < size)
		snprintf(buf + n, size - n, "]");
}

static int run_batch(apply *a, const uint8_t *raw, const tensor *h, int B, FILE *out,
		     const char *outname, char *err)
{
	size_t osz = (size_t)a->oh * a->ow * a->oc;

	apply_run(a, raw, h->dtype, B, a->out);
	if (fwrite(a->out, sizeof(float) * osz, (size_t)B, out) != (size_t)B)
		return err_sys(err, "%s: write error", outname);
	return 0;
}

/* An explain op's image array whose target is each image's label: images first..+count
 * (the rest of the N skipped) are held until the labels array that must follow them is
 * read; then they go through as apply_array's do. s is at image first. */
static int labelled_array(apply *a, npy_src *s, const tensor *h, int64_t idx, int64_t first,
			  int64_t count, size_t isz, const char *inname, FILE *out,
			  const char *outname, char *err)
{
	int64_t N = h->ndim == 4 ? h->shape[0] : 1;
	uint8_t *held = alloc_n(count, isz);
	int *labels = alloc_n(count, sizeof *labels);
	tensor l = { .dtype = DT_U1 };
	int rc = -1, got;

	if (!held || !labels) {
		err_set(err, "%s: array %lld: out of memory holding %lld images for their labels", inname,
			(long long)idx, (long long)count);
		goto done;
	}
	if (read_exact(s, held, (size_t)count * isz, inname, err) ||
	    skip(s, (N - first - count) * (int64_t)isz, inname, err))
		goto done;
	got = npy_src_header(s, inname, &l, err);
	if (got < 0)
		goto done;
	if (got == 0 || l.ndim != 1 || l.shape[0] != N || (l.dtype != DT_I8 && l.dtype != DT_I4)) {
		err_set(err, "%s: array %lld is not followed by its %lld labels (int [N]): target label wants a dataset stream (images, labels, classes)",
			inname, (long long)idx, (long long)N);
		goto done;
	}
	if (npy_src_data(s, inname, &l, err) < 0)
		goto done;
	for (int64_t i = 0; i < count; i++) {
		float v = tensor_elem_f4(l.data, l.dtype, first + i);

		if (!(v >= 0 && v < (float)a->ex.K)) {
			err_set(err, "%s: image %lld of array %lld has label %.0f, not a class of the model in %s (%d classes)",
				inname, (long long)(first + i), (long long)idx, v, a->source, a->ex.K);
			goto done;
		}
		labels[i] = (int)v;
	}
	if (a->progress && a->progress(a->progress_ctx, 0, count)) {
		err_set(err, "%s: array %lld: stopped", inname, (long long)idx);
		goto done;
	}
	for (int64_t i = 0; i < count;) {
		int B = count - i < a->batch ? (int)(count - i) : a->batch;

		a->labels = labels + i;
		a->first = first + i;
		if (run_batch(a, held + (size_t)i * isz, h, B, out, outname, err))
			goto done;
		i += B;
		if (a->progress && a->progress(a->progress_ctx, i, count)) {
			err_set(err, "%s: array %lld: stopped after %lld images", inname, (long long)idx,
				(long long)i);
			goto done;
		}
	}
	rc = 0;
done:
	a->labels = NULL;
	free(held);
	free(labels);
	tensor_free(&l);
	return rc;
}

/* One image array: header read, data next on s. */
static int apply_array(apply *a, npy_src *s, const tensor *h, int64_t idx, const char *inname,
		       FILE *out, const char *outname, int64_t index, char *err)
{
	int r4 = h->ndim == 4;
	int64_t N = r4 ? h->shape[0] : 1, first = 0, count = N;
	int64_t H = h->shape[r4], W = h->shape[r4 + 1], C = h->shape[r4 + 2];
	size_t isz;
	tensor o = { .dtype = DT_F4 };

	/* An empty batch says nothing about H * W * C's size: bound it before multiplying. */
	if (H < 1 || W < 1 || C < 1 || W > INT32_MAX / H || C > INT32_MAX / (H * W))
		return err_set(err, "%s: array %lld: images of %lldx%lldx%lld are empty or too large",
			       inname, (long long)idx, (long long)H, (long long)W, (long long)C);
	isz = (size_t)(H * W * C) * tensor_itemsize(h);
	if (index >= 0) {
		if (index >= N)
			return err_set(err, "%s: array %lld holds %lld image%s, there is no index %lld",
				       inname, (long long)idx, (long long)N, N == 1 ? "" : "s",
				       (long long)index);
		first = index, count = 1;
	}
	if (apply_prepare(a, (int)H, (int)W, (int)C, h->dtype, inname, err))
		return -1;
	o.ndim = h->ndim;
	if (r4)
		o.shape[0] = count;
	o.shape[r4] = a->oh, o.shape[r4 + 1] = a->ow, o.shape[r4 + 2] = a->oc;
	if (npy_write_header(out, outname, &o, err))
		return -1;
	if (skip(s, first * (int64_t)isz, inname, err))
		return -1;
	if (a->has_ex && a->ex.target == EXPLAIN_LABEL)
		return labelled_array(a, s, h, idx, first, count, isz, inname, out, outname, err);
	if (a->progress && a->progress(a->progress_ctx, 0, count))
		return err_set(err, "%s: array %lld: stopped", inname, (long long)idx);
	for (int64_t i = 0; i < count;) {
		int B = count - i < a->batch ? (int)(count - i) : a->batch;

		if (read_exact(s, a->raw, (size_t)B * isz, inname, err))
			return -1;
		a->labels = NULL;
		a->first = first + i;
		if (run_batch(a, a->raw, h, B, out, outname, err))
			return -1;
		i += B;
		if (a->progress && a->progress(a->progress_ctx, i, count))
			return err_set(err, "%s: array %lld: stopped after %lld images", inname,
				       (long long)idx, (long long)i);
	}
	return skip(s, (N - first - count) * (int64_t)isz, inname, err);
}

int apply_stream(apply *a, FILE *in, const char *inname, FILE *out, const char *outname,
		 int64_t index, int64_t *nout, char *err)
{
	npy_src s;

	*nout = 0;
	npy_src_file(&s, in);
	for (int64_t idx = 0;; idx++) {
		tensor h;
		int64_t nbytes;
		char shape[TENSOR_MAXDIM * 24];
		int rc = npy_src_header(&s, inname, &h, err);

		if (rc < 0)
			return -1;
		if (rc == 0)
			break;
		nbytes = tensor_nbytes(&h);
		if (s.left >= 0 && nbytes > s.left)
			return err_set(err, "%s: truncated data: array %lld wants %lld bytes, %lld are left",
				       inname, (long long)idx, (long long)nbytes, (long long)s.left);
		if (h.dtype == DT_U || h.ndim <= 1) {
			if (skip(&s, nbytes, inname, err))
				return -1;
			continue;
		}
		if (h.ndim != 3 && h.ndim != 4) {
			shape_str(&h, shape, sizeof shape);
			return err_set(err, "%s: array %lld has shape %s: not images ([N, H, W, C] or [H, W, C])",
				       inname, (long long)idx, shape);
		}
		if (apply_array(a, &s, &h, idx, inname, out, outname, index, err))
			return -1;
		++*nout;
	}
	if (*nout == 0)
		return err_set(err, "%s: no image arrays in the input", inname);
	return 0;
}
