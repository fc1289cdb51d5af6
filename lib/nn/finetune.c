/* finetune: matching another model's tensors to ours by layer and kind, rewriting the
 * head's count, and the per-image feature cache below the trainable layers. */
#include "nn/finetune.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"

static int prefixed(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

/* Members of a checkpoint a start needs: everything but the optimiser state, which may
 * be twice the parameters' size. */
static int want_member(void *ctx, const char *name, const char *label, const tensor *hdr, char *err)
{
	(void)ctx, (void)label, (void)hdr, (void)err;
	return !prefixed(name, "adam/") && !prefixed(name, "momentum/");
}

static int read_npz(const char *path, finetune_src *src, char *err)
{
	const tensor *spec, *cl, *mean, *sd, *bgr;

	if (npz_read_want(&src->tensors, path, NULL, want_member, NULL, err))
		return -1;
	spec = npz_get(&src->tensors, "model/spec");
	cl = npz_get(&src->tensors, "classes");
	if (spec && spec->dtype == DT_U && tensor_numel(spec) == 1 && spec->ulen <= 1 << 20) {
		size_t n = (size_t)spec->ulen * 4 + 1;

		if (!(src->spec = malloc(n)))
			return err_set(err, "out of memory");
		if (tensor_get_string(spec, 0, src->spec, n) < 0)
			return err_set(err, "%s: model/spec is not text", path);
	}
	if (cl && cl->ndim == 1)
		src->classes = cl->shape[0];
	mean = npz_get(&src->tensors, "model/mean"), sd = npz_get(&src->tensors, "model/std");
	bgr = npz_get(&src->tensors, "model/bgr");
	if (mean && sd && mean->dtype == DT_F4 && sd->dtype == DT_F4 && tensor_numel(mean) == 3 &&
	    tensor_numel(sd) == 3) {
		src->has_norm = 1;
		memcpy(src->mean, mean->data, sizeof src->mean);
		memcpy(src->std, sd->data, sizeof src->std);
		src->bgr = bgr && bgr->dtype == DT_I8 && tensor_numel(bgr) == 1 && *(const int64_t *)bgr->data;
	}
	return 0;
}

int finetune_read(const char *path, finetune_reader onnx, finetune_src *src, char *err)
{
	size_t n = strlen(path);
	int rc;

	memset(src, 0, sizeof *src);
	npz_init(&src->tensors);
	/* the one place a format is chosen: lib/onnx's reader is handed in by the tool */
	if (n >= 5 && !strcmp(path + n - 5, ".onnx")) {
		if (!onnx)
			return err_set(err, "%s: reading ONNX models is not built into this program", path);
		rc = onnx(path, src, err);
	} else {
		rc = read_npz(path, src, err);
	}
	if (rc)
		finetune_src_free(src);
	return rc;
}

void finetune_src_free(finetune_src *src)
{
	free(src->spec);
	npz_free(&src->tensors);
	memset(src, 0, sizeof *src);
}

/* The length of name's "LAYER/WHAT" part: a parameter's name without its B_I numbering. */
static size_t key_len(const char *name)
{
	const char *slash = strchr(name, '/'), *p;

	if (!slash)
		return strlen(name);
	for (p = slash + 1; isalpha((unsigned char)*p); p++)
		;
	return (size_t)(p - name);
}

static int is_param_member(const char *name)
{
	return strchr(name, '/') && !prefixed(name, "model/") && !prefixed(name, "train/") &&
	       !prefixed(name, "adam/") && !prefixed(name, "momentum/");
}

int finetune_head_spec(const char *spec, char **out, char *err)
{
	size_t n = strlen(spec), at = 0, len = 0;
	const char *p = spec;
	char *s;

	/* the last conv or dense token's count field: its position and length */
	while (*p) {
		const char *t, *e, *body, *f;
		int field;

		while (isspace((unsigned char)*p))
			p++;
		t = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		e = p;
		body = t;
		for (f = t; f < e && *f != ':' && *f != '@'; f++)
			if (*f == '=')
				body = f + 1;
		if (e - body > 5 && !strncmp(body, "conv:", 5))
			field = 2;
		else if (e - body > 6 && !strncmp(body, "dense:", 6))
			field = 1;
		else
			continue;
		f = body;
		for (int k = 0; k < field && f; k++) {
			f = memchr(f, ':', (size_t)(e - f));
			f = f ? f + 1 : NULL;
		}
		if (!f)
			continue;
		at = (size_t)(f - spec);
		for (len = 0; f + len < e && f[len] != ':' && f[len] != '@'; len++)
			;
	}
	if (!len)
		return err_set(err, "model spec: no conv or dense layer to make the head of");
	if (!(s = malloc(n + 2)))
		return err_set(err, "out of memory");
	memcpy(s, spec, at);
	s[at] = 'K';
	memcpy(s + at + 1, spec + at + len, n - at - len + 1);
	*out = s;
	return 0;
}

/* Appends name to list [n] (used so far: *used) unless it is the last one added; past
 * limit characters only counts it in *more. */
static void list_add(char *list, size_t n, size_t *used, const char *name, size_t limit, int *more)
{
	size_t l = strlen(name), last = *used;

	/* the previous entry: after the last space */
	while (last > 0 && list[last - 1] != ' ')
		last--;
	if (*used && *used - last == l && !strncmp(list + last, name, l))
		return;
	if (*used + l + 1 > limit || *used + l + 2 > n) {
		(*more)++;
		return;
	}
	*used += (size_t)snprintf(list + *used, n - *used, "%s%s", *used ? " " : "", name);
}

int finetune_apply(model *m, const finetune_src *src, int new_head, const char *path, char *msg,
		   size_t msg_n, char *err)
{
	char loaded[200] = "", fresh[200] = "";
	size_t lu = 0, fu = 0;
	int head = -1, nl = 0, nf = 0, lmore = 0, fmore = 0, unused = 0;
	unsigned char *used = calloc((size_t)src->tensors.n + 1, 1);

	if (!used)
		return err_set(err, "out of memory");
	for (int i = 0; i < m->nlayer; i++)
		if (m->layer[i].kind == MODEL_CONV || m->layer[i].kind == MODEL_DENSE)
			head = i;
	for (int i = 0; i < m->nparam; i++) {
		const model_param *p = &m->param[i];
		const char *lname = m->layer[p->layer].name;
		size_t kl = key_len(p->name);
		int j = -1;

		for (int k = 0; !(new_head && p->layer == head) && k < src->tensors.n && j < 0; k++) {
			const char *sn = src->tensors.v[k].name;
			const tensor *t = &src->tensors.v[k].t;
			int ok = is_param_member(sn) && key_len(sn) == kl && !strncmp(sn, p->name, kl) &&
				 t->dtype == DT_F4 && t->ndim == p->ndim;

			for (int d = 0; ok && d < p->ndim; d++)
				ok = t->shape[d] == p->shape[d];
			if (ok)
				j = k;
		}
		if (j < 0) {
			nf++;
			list_add(fresh, sizeof fresh, &fu, lname, 120, &fmore);
			continue;
		}
		memcpy(m->params + p->off, src->tensors.v[j].t.data, sizeof(float) * p->n);
		used[j] = 1;
		nl++;
		list_add(loaded, sizeof loaded, &lu, lname, 120, &lmore);
	}
	model_params_changed(m);
	for (int k = 0; k < src->tensors.n; k++)
		unused += is_param_member(src->tensors.v[k].name) && !used[k];
	free(used);
	if (src->has_norm && model_set_norm(m, src->mean, src->std, src->bgr, err))
		return -1;
	if (!nl)
		return err_set(err, "%s: no parameter matches the model by layer name and shape", path);
	snprintf(msg, msg_n, "%s: loaded %d tensors (%s%s), new %d%s%s%s%s; %d of its tensors unused", path, nl,
		 loaded, lmore ? " ..." : "", nf, nf ? " (" : "", fresh, fmore ? " ..." : "", nf ? ")" : "", unused);
	return 0;
}

int finetune_cache_init(finetune_cache *c, const model *m, int64_t n, float keep_conv,
			float keep_fc, size_t limit, char *note, size_t note_n, char *err)
{
	size_t bytes;

	memset(c, 0, sizeof *c);
	c->cut = -1;
	note[0] = 0;
	int cut = model_cache_cut(m, keep_conv, keep_fc);

	if (cut < 0 || n < 1 || !limit)
		return 0;
	c->per = m->layer[cut].out_n;
	bytes = sizeof(float) * c->per;
	if ((uint64_t)n > SIZE_MAX / bytes || (bytes *= (size_t)n) > limit) {
		snprintf(note, note_n, "the features of layer %s for %lld images would take %zu MB, more than "
			 "--feature-cache allows: computed at every step", m->layer[cut].name, (long long)n,
			 (size_t)((uint64_t)sizeof(float) * c->per * (uint64_t)n >> 20));
		return 0;
	}
	/* calloc'd: pages are mapped as the first epoch fills them */
	if (!(c->feats = calloc((size_t)n, sizeof(float) * c->per)) || !(c->have = calloc((size_t)n, 1)) ||
	    !(c->batch = calloc((size_t)m->max_batch, sizeof(float) * c->per))) {
		finetune_cache_free(c);
		return err_set(err, "out of memory for the feature cache (%zu MB)", bytes >> 20);
	}
	c->cut = cut;
	c->n = n;
	return 1;
}

void finetune_cache_forward(finetune_cache *c, model *m, const uint8_t *images, const int64_t *idx,
			    const int *labels, int B)
{
	int all = c->cut >= 0;
	float *out;

	if (c->cut < 0) {
		model_forward(m, images, labels, B);
		return;
	}
	for (int b = 0; b < B && all; b++)
		all = c->have[idx[b]];
	if (all) {
		for (int b = 0; b < B; b++)
			memcpy(c->batch + (size_t)b * c->per, c->feats + (size_t)idx[b] * c->per, sizeof(float) * c->per);
		model_forward_from(m, c->cut, c->batch, labels, B);
		return;
	}
	model_forward_to(m, images, c->cut, B);
	out = m->layer[c->cut].out;
	for (int b = 0; b < B; b++) {
		memcpy(c->feats + (size_t)idx[b] * c->per, out + (size_t)b * c->per, sizeof(float) * c->per);
		c->have[idx[b]] = 1;
	}
	model_forward_from(m, c->cut, out, labels, B);
}

size_t finetune_cache_bytes(const finetune_cache *c)
{
	return c->cut < 0 ? 0 : sizeof(float) * c->per * (size_t)c->n;
}

void finetune_cache_free(finetune_cache *c)
{
	free(c->feats);
	free(c->have);
	free(c->batch);
	memset(c, 0, sizeof *c);
	c->cut = -1;
}
