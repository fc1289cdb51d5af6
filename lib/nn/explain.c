#include "nn/explain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"
#include "util/rng.h"

/* n floats (or other items of size bytes), or NULL also when n * size overflows. */
static void *alloc_n(size_t n, size_t size)
{
	if (n < 1)
		n = 1;
	if (n > SIZE_MAX / size)
		return NULL;
	return malloc(n * size);
}

int explain_target_parse(const char *s, const tensor *classes, int *target, char *err)
{
	int64_t k = classes->shape[0];
	char name[256], list[ERR_MAX / 2] = "";
	size_t used = 0;
	char *end;
	long v;

	if (!strcmp(s, "pred")) {
		*target = EXPLAIN_PRED;
		return 0;
	}
	if (!strcmp(s, "label")) {
		*target = EXPLAIN_LABEL;
		return 0;
	}
	for (int64_t i = 0; i < k; i++) {
		tensor_get_string(classes, i, name, sizeof name);
		if (!strcmp(name, s)) {
			*target = (int)i;
			return 0;
		}
		if (used < sizeof list)
			used += (size_t)snprintf(list + used, sizeof list - used, "%s%lld %s", i ? ", " : "",
						 (long long)i, name);
	}
	v = strtol(s, &end, 10);
	if (*s && !*end && s[0] != '-' && s[0] != '+' && v >= 0 && v < k) {
		*target = (int)v;
		return 0;
	}
	return err_set(err, "target '%s' is not pred, label or a class of the model (%s)", s, list);
}

static void layer_list(const model *m, char *buf, size_t n)
{
	size_t used = 0;

	buf[0] = 0;
	for (int i = 0; i < m->nlayer && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? " " : "", m->layer[i].name);
}

int explain_gradcam_layer(const model *m, const char *name, const char *path, int *layer,
			  char *err)
{
	char names[ERR_MAX / 2];
	int last = -1, any = -1;

	if (name) {
		int i = model_find_layer(m, name);
		const model_layer *l;

		if (i < 0) {
			layer_list(m, names, sizeof names);
			return err_set(err, "%s: no layer named '%s' (layers: %s)", path, name, names);
		}
		l = &m->layer[i];
		if (l->oh * l->ow == 1)
			return err_set(err, "%s: layer %s is %s with a 1x1 output: Grad-CAM wants a layer with a spatial output (e.g. a convolution)",
				       path, name, model_kind_name(l->kind));
		*layer = i;
		return 0;
	}
	for (int i = 0; i < m->nlayer; i++) {
		const model_layer *l = &m->layer[i];

		if (l->kind == MODEL_DENSE || l->kind == MODEL_GAP)
			break;
		if (l->oh * l->ow == 1)
			continue;
		any = i;
		if (l->kind != MODEL_POOL && l->kind != MODEL_AVGPOOL && l->kind != MODEL_DROP)
			last = i;
	}
	if (last < 0)
		last = any;
	if (last < 0)
		return err_set(err, "%s: no layer with a spatial output before the dense part, for Grad-CAM",
			       path);
	*layer = last;
	return 0;
}

int explain_init(explain *e, model *m, int grads, char *err)
{
	size_t B = (size_t)m->max_batch, nx = (size_t)m->h * m->w * m->c, ng = nx, nacc = (size_t)m->h * m->w;

	e->m = m;
	e->cls = NULL, e->seed_buf = e->g = e->x = NULL, e->occ = NULL, e->acc = NULL;
	if (m->classes < 1)
		return err_set(err, "the model has no classes (an inference-only graph): nothing to explain");
	e->K = m->classes;
	if (m->c != 3)
		return err_set(err, "the model takes %d channels, not RGB images", m->c);
	/* Grad-CAM's map and weights (oh*ow + oc <= out_n + 1) in acc too */
	if (e->layer >= 0 && e->layer < m->nlayer) {
		if (m->layer[e->layer].out_n > ng)
			ng = m->layer[e->layer].out_n;
		if (m->layer[e->layer].out_n + 1 > nacc)
			nacc = m->layer[e->layer].out_n + 1;
	}
	/* occlusion reads only the probabilities */
	if (grads ? model_grad_init(m, err) : model_lean(m, err))
		return -1;
	if (!(e->cls = alloc_n(B, sizeof *e->cls)) || !(e->seed_buf = alloc_n(B * (size_t)e->K, sizeof(float))) ||
	    !(e->g = alloc_n(B * ng, sizeof(float))) || !(e->x = alloc_n((B + 1) * nx, sizeof(float))) ||
	    !(e->occ = alloc_n(B * nx, 1)) || !(e->acc = alloc_n(nacc, sizeof(double)))) {
		explain_free(e);
		return err_set(err, "out of memory for %d images of %dx%d", m->max_batch, m->h, m->w);
	}
	return 0;
}

void explain_free(explain *e)
{
	free(e->cls), free(e->seed_buf), free(e->g), free(e->x), free(e->occ), free(e->acc);
	e->cls = NULL, e->seed_buf = e->g = e->x = NULL, e->occ = NULL, e->acc = NULL;
}

void explain_map_size(const explain *e, int occlusion, int *oh, int *ow)
{
	const model *m = e->m;

	if (occlusion) {
		*oh = (m->h + e->stride - 1) / e->stride;
		*ow = (m->w + e->stride - 1) / e->stride;
	} else if (!e->upsample && e->layer >= 0) {
		*oh = m->layer[e->layer].oh;
		*ow = m->layer[e->layer].ow;
	} else {
		*oh = m->h, *ow = m->w;
	}
}

/* After a forward of B images: the classes explained, from the logits (pred), the labels
 * or the target. */
static void classes_for(explain *e, const int *labels, int B)
{
	const float *logits = e->m->layer[e->m->nlayer - 1].out;

	for (int b = 0; b < B; b++) {
		int c = e->target;

		if (c == EXPLAIN_PRED) {
			c = 0;
			for (int k = 1; k < e->K; k++)
				if (logits[(size_t)b * e->K + k] > logits[(size_t)b * e->K + c])
					c = k;
		} else if (c == EXPLAIN_LABEL) {
			c = labels && labels[b] >= 0 && labels[b] < e->K ? labels[b] : 0;
		}
		e->cls[b] = c;
	}
}

/* seed_buf [B, K]: one-hot at each image's class: the backward of its logit. */
static void one_hot(explain *e, const int *cls, int B)
{
	memset(e->seed_buf, 0, sizeof *e->seed_buf * (size_t)B * e->K);
	for (int b = 0; b < B; b++)
		e->seed_buf[(size_t)b * e->K + cls[b]] = 1;
}

/* PyTorch's source index for align_corners=False: half-pixel centres, clamped at 0. */
static void bilinear_src(int o, int in, int out, int *i0, int *i1, double *t)
{
	double s = ((double)o + 0.5) * in / out - 0.5;

	if (s < 0)
		s = 0;
	*i0 = (int)s;
	*i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
	*t = s - *i0;
}

/* out [oh, ow] = in [ih, iw] resized bilinearly (F.interpolate, align_corners=False). */
static void upsample(float *out, int oh, int ow, const double *in, int ih, int iw)
{
	for (int y = 0; y < oh; y++) {
		int y0, y1;
		double ty;

		bilinear_src(y, ih, oh, &y0, &y1, &ty);
		for (int x = 0; x < ow; x++) {
			int x0, x1;
			double tx;

			bilinear_src(x, iw, ow, &x0, &x1, &tx);
			out[(size_t)y * ow + x] = (float)((1 - ty) * ((1 - tx) * in[(size_t)y0 * iw + x0] + tx * in[(size_t)y0 * iw + x1]) +
							  ty * ((1 - tx) * in[(size_t)y1 * iw + x0] + tx * in[(size_t)y1 * iw + x1]));
		}
	}
}

void explain_gradcam(explain *e, const uint8_t *img, const int *labels, int B, float *out)
{
	model *m = e->m;
	const model_layer *l = &m->layer[e->layer];
	size_t np = (size_t)l->oh * l->ow, nc = (size_t)l->oc;
	double *cam = e->acc, *alpha = cam + np;
	int oh, ow;

	explain_map_size(e, 0, &oh, &ow);
	model_forward(m, img, NULL, B);
	classes_for(e, labels, B);
	one_hot(e, e->cls, B);
	/* e->g [B, oh*ow, oc]: d logit / d A; A is the layer's output, still there */
	model_grad_at(m, e->seed_buf, e->layer, e->g);
	for (int b = 0; b < B; b++) {
		const float *g = e->g + (size_t)b * l->out_n, *A = l->out + (size_t)b * l->out_n;
		float *o = out + (size_t)b * oh * ow;

		for (size_t k = 0; k < nc; k++)
			alpha[k] = 0;
		for (size_t p = 0; p < np; p++)
			for (size_t k = 0; k < nc; k++)
				alpha[k] += g[p * nc + k];
		for (size_t k = 0; k < nc; k++)
			alpha[k] /= (double)np;
		for (size_t p = 0; p < np; p++) {
			double s = 0;

			for (size_t k = 0; k < nc; k++)
				s += alpha[k] * A[p * nc + k];
			cam[p] = s > 0 ? s : 0;
		}
		if (e->upsample)
			upsample(o, oh, ow, cam, l->oh, l->ow);
		else
			for (size_t p = 0; p < np; p++)
				o[p] = (float)cam[p];
	}
}

/* acc [h*w] += scale * max over channels of |g [h*w, c]| */
static void add_saliency(double *acc, const float *g, size_t np, int c, double scale)
{
	for (size_t p = 0; p < np; p++) {
		float v = 0;

		for (int k = 0; k < c; k++)
			if (fabsf(g[p * c + k]) > v)
				v = fabsf(g[p * c + k]);
		acc[p] += scale * v;
	}
}

void explain_saliency(explain *e, const uint8_t *img, const int *labels, int B, int64_t first,
		      float *out)
{
	model *m = e->m;
	size_t np = (size_t)m->h * m->w, nx = np * m->c;
	float *x0 = e->x + (size_t)m->max_batch * nx;

	if (e->sg_n < 1) {
		model_forward(m, img, NULL, B);
		classes_for(e, labels, B);
		one_hot(e, e->cls, B);
		model_grad_at(m, e->seed_buf, MODEL_INPUT, e->g);
		for (int b = 0; b < B; b++) {
			memset(e->acc, 0, sizeof *e->acc * np);
			add_saliency(e->acc, e->g + (size_t)b * nx, np, m->c, 1);
			for (size_t p = 0; p < np; p++)
				out[(size_t)b * np + p] = (float)e->acc[p];
		}
		return;
	}
	for (int b = 0; b < B; b++) {
		int cls;
		rng r;

		model_forward(m, img + (size_t)b * nx, NULL, 1);
		classes_for(e, labels ? labels + b : NULL, 1);
		cls = e->cls[0];
		/* the clean image, normalised, after the batch's slots: copies are drawn from it */
		memcpy(x0, m->input, sizeof *x0 * nx);
		memset(e->acc, 0, sizeof *e->acc * np);
		rng_stream(&r, e->seed, (uint64_t)(first + b));
		for (int done = 0; done < e->sg_n;) {
			int n = e->sg_n - done < m->max_batch ? e->sg_n - done : m->max_batch;

			for (int j = 0; j < n; j++)
				for (size_t i = 0; i < nx; i++)
					e->x[(size_t)j * nx + i] = x0[i] + (float)(rng_normal(&r) * e->sg_sigma /
										   m->std[i % (size_t)m->c]);
			model_forward_float(m, e->x, NULL, n);
			for (int j = 0; j < n; j++)
				e->cls[j] = cls;
			one_hot(e, e->cls, n);
			model_grad_at(m, e->seed_buf, MODEL_INPUT, e->g);
			for (int j = 0; j < n; j++)
				add_saliency(e->acc, e->g + (size_t)j * nx, np, m->c, 1.0 / e->sg_n);
			done += n;
		}
		for (size_t p = 0; p < np; p++)
			out[(size_t)b * np + p] = (float)e->acc[p];
	}
}

void explain_occlusion(explain *e, const uint8_t *img, const int *labels, int B, float *out)
{
	model *m = e->m;
	int oh, ow, P = e->patch, S = e->stride;
	size_t nx = (size_t)m->h * m->w * 3, rowb = (size_t)m->w * 3;

	explain_map_size(e, 1, &oh, &ow);
	for (int b = 0; b < B; b++) {
		const uint8_t *im = img + (size_t)b * nx;
		int cls, npos = oh * ow;

		model_forward(m, im, NULL, 1);
		classes_for(e, labels ? labels + b : NULL, 1);
		cls = e->cls[0];
		for (int done = 0; done < npos;) {
			int n = npos - done < m->max_batch ? npos - done : m->max_batch;

			for (int j = 0; j < n; j++) {
				uint8_t *c = e->occ + (size_t)j * nx;
				int y0 = (done + j) / ow * S, x0 = (done + j) % ow * S;
				int y1 = y0 + P < m->h ? y0 + P : m->h, x1 = x0 + P < m->w ? x0 + P : m->w;

				memcpy(c, im, nx);
				for (int y = y0; y < y1; y++)
					memset(c + (size_t)y * rowb + (size_t)x0 * 3, EXPLAIN_MID, (size_t)(x1 - x0) * 3);
			}
			model_forward(m, e->occ, NULL, n);
			for (int j = 0; j < n; j++)
				out[(size_t)b * npos + done + j] = m->probs[(size_t)j * e->K + cls];
			done += n;
		}
	}
}

int explain_weights(const model *m, const char *name, const char *path, tensor *out, char *err)
{
	char names[ERR_MAX / 2];
	int i = model_find_layer(m, name);
	const model_param *p;
	int64_t kh, kw, ci, co, shape[4];
	const float *w;

	if (i < 0) {
		layer_list(m, names, sizeof names);
		return err_set(err, "%s: no layer named '%s' (layers: %s)", path, name, names);
	}
	if (m->layer[i].kind != MODEL_CONV)
		return err_set(err, "%s: layer %s is %s, not a convolution: it has no filters to show", path,
			       name, model_kind_name(m->layer[i].kind));
	p = &m->param[m->layer[i].wparam];
	kh = p->shape[0], kw = p->shape[1], ci = p->shape[2], co = p->shape[3];
	shape[0] = co, shape[1] = kh, shape[2] = kw, shape[3] = ci;
	if (tensor_alloc(out, DT_F4, 4, shape, 0, err))
		return -1;
	w = m->params + p->off;
	/* HWIO -> OHWI: filter o as a kh x kw image of ci channels */
	for (int64_t o = 0; o < co; o++)
		for (int64_t y = 0; y < kh; y++)
			for (int64_t x = 0; x < kw; x++)
				for (int64_t c = 0; c < ci; c++)
					((float *)out->data)[((o * kh + y) * kw + x) * ci + c] = w[((y * kw + x) * ci + c) * co + o];
	return 0;
}

void explain_max_defaults(explain_max_opts *o, int h, int w)
{
	int s = h < w ? h : w;

	o->steps = 256;
	o->lr = 0.02f;
	o->jitter = s / 16 > 1 ? s / 16 : 1;
	o->blur_every = 4;
	/* the binomial 1 2 1 from 128 pixels up; weaker below, where one pixel is more of the
	 * picture (at 16x16 the full one held a channel to 1.5x the test images' against 8x) */
	o->blur = 0.25f * (s < 128 ? (float)s / 128 : 1);
	o->seed = 1;
}

/* x [h, w, 3] normalised as the model does it, from pixels p [h, w, 3] in [0, 1], RGB,
 * rolled by (dy, dx): x at (y, x) is p at (y - dy, x - dx), wrapping. */
static void to_input(const model *m, float *x, const float *p, int dy, int dx)
{
	int h = m->h, w = m->w;

	for (int y = 0; y < h; y++)
		for (int xx = 0; xx < w; xx++) {
			const float *s = p + ((size_t)((y - dy + h) % h) * w + (size_t)((xx - dx + w) % w)) * 3;
			float *d = x + ((size_t)y * w + xx) * 3;

			for (int c = 0; c < 3; c++)
				d[c] = (s[m->bgr ? 2 - c : c] - m->mean[c]) / m->std[c];
		}
}

/* The gradient in pixels: g [h, w, 3] with respect to x, shifted back by (dy, dx) and
 * chained through the normalisation, into gp [h, w, 3] RGB. */
static void to_pixels(const model *m, float *gp, const float *g, int dy, int dx)
{
	int h = m->h, w = m->w;

	for (int y = 0; y < h; y++)
		for (int xx = 0; xx < w; xx++) {
			const float *s = g + ((size_t)((y + dy) % h) * w + (size_t)((xx + dx) % w)) * 3;
			float *d = gp + ((size_t)y * w + xx) * 3;

			for (int c = 0; c < 3; c++)
				d[m->bgr ? 2 - c : c] = s[c] / m->std[c];
		}
}

/* p [h, w, 3] = p blurred by the separable 3x3 kernel (a, 1 - 2a, a) each way (a = 1/4:
 * the binomial 1 2 1), edges replicated; t is scratch of the same size. */
static void blur(float *p, float *t, int h, int w, float a)
{
	float b = 1 - 2 * a;

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < 3; c++) {
				int xl = x > 0 ? x - 1 : 0, xr = x < w - 1 ? x + 1 : x;
				const float *r = p + (size_t)y * w * 3;

				t[((size_t)y * w + x) * 3 + c] = a * r[xl * 3 + c] + b * r[x * 3 + c] + a * r[xr * 3 + c];
			}
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < 3; c++) {
				int yu = y > 0 ? y - 1 : 0, yd = y < h - 1 ? y + 1 : y;

				p[((size_t)y * w + x) * 3 + c] = a * t[((size_t)yu * w + x) * 3 + c] +
								 b * t[((size_t)y * w + x) * 3 + c] +
								 a * t[((size_t)yd * w + x) * 3 + c];
			}
}

/* The mean of channel ch of layer's output for the last forward's first image. */
static double channel_mean(const model *m, int layer, int ch)
{
	const model_layer *l = &m->layer[layer];
	size_t np = (size_t)l->oh * l->ow;
	double s = 0;

	for (size_t p = 0; p < np; p++)
		s += l->out[p * l->oc + ch];
	return s / (double)np;
}

int explain_maximize(model *m, int layer, int ch, const explain_max_opts *o, uint8_t *out,
		     double *act, char *err)
{
	const model_layer *l = &m->layer[layer];
	size_t np = (size_t)m->h * m->w, nx = np * 3;
	float *p = alloc_n(nx, sizeof *p), *x = alloc_n(nx, sizeof *x), *g = alloc_n(nx, sizeof *g);
	float *gp = alloc_n(nx, sizeof *gp), *seed = alloc_n(l->out_n, sizeof *seed);
	rng r;

	if (!p || !x || !g || !gp || !seed) {
		free(p), free(x), free(g), free(gp), free(seed);
		return err_set(err, "out of memory for a %dx%d image", m->h, m->w);
	}
	/* d (mean over positions of channel ch) / d (layer's output) */
	memset(seed, 0, sizeof *seed * l->out_n);
	for (size_t i = (size_t)ch; i < l->out_n; i += (size_t)l->oc)
		seed[i] = 1.0f / (float)(l->out_n / (size_t)l->oc);
	rng_seed(&r, o->seed);
	for (size_t i = 0; i < nx; i++)
		p[i] = 0.5f + 0.05f * (float)rng_normal(&r);
	for (int step = 1; step <= o->steps; step++) {
		int dy = (int)rng_below(&r, 2 * (uint64_t)o->jitter + 1) - o->jitter;
		int dx = (int)rng_below(&r, 2 * (uint64_t)o->jitter + 1) - o->jitter;
		double sum = 0;

		/* before the step, not after: the last change to the image is an ascent */
		if (o->blur_every > 0 && step % o->blur_every == 0)
			blur(p, x, m->h, m->w, o->blur);
		to_input(m, x, p, (dy + m->h) % m->h, (dx + m->w) % m->w);
		model_forward_float(m, x, NULL, 1);
		model_grad_from(m, layer, seed, MODEL_INPUT, g);
		to_pixels(m, gp, g, (dy + m->h) % m->h, (dx + m->w) % m->w);
		for (size_t i = 0; i < nx; i++)
			sum += fabsf(gp[i]);
		/* a step of lr per pixel on average, whatever the gradient's scale */
		if (sum > 0) {
			float k = (float)(o->lr * (double)nx / sum);

			for (size_t i = 0; i < nx; i++) {
				float v = p[i] + k * gp[i];

				p[i] = v < 0 ? 0 : v > 1 ? 1 : v;
			}
		}
	}
	for (size_t i = 0; i < nx; i++)
		out[i] = (uint8_t)lrintf(p[i] * 255.0f);
	model_forward(m, out, NULL, 1);
	*act = channel_mean(m, layer, ch);
	free(p), free(x), free(g), free(gp), free(seed);
	return 0;
}
