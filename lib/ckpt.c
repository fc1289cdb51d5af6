/* ckpt: mapping a model's one parameter buffer to and from named npz members. */
#include "ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "npz.h"

static int add_i8(npz *z, const char *name, int64_t v, char *err)
{
	tensor t;

	if (tensor_alloc(&t, DT_I8, 0, NULL, 0, err))
		return -1;
	*(int64_t *)t.data = v;
	if (npz_add_move(z, name, &t, err)) {
		tensor_free(&t);
		return -1;
	}
	return 0;
}

static int add_str(npz *z, const char *name, const char *s, char *err)
{
	tensor t;

	if (tensor_from_strings(&t, &s, 1, err))
		return -1;
	if (npz_add_move(z, name, &t, err)) {
		tensor_free(&t);
		return -1;
	}
	return 0;
}

/* An entry whose data is the model's own memory: released (not freed) after writing. */
static int lend(npz *z, const char *prefix, const model_param *p, float *base, char *err)
{
	char name[2 * MODEL_NAME_MAX];
	tensor t;

	memset(&t, 0, sizeof t);
	t.dtype = DT_F4;
	t.ndim = p->ndim;
	memcpy(t.shape, p->shape, sizeof p->shape);
	t.data = base + p->off;
	snprintf(name, sizeof name, "%s%s", prefix, p->name);
	return npz_add_move(z, name, &t, err);
}

static const char *optim_name(enum ckpt_optim o)
{
	return o == CKPT_ADAM ? "adam" : o == CKPT_MOMENTUM ? "momentum" : "none";
}

int ckpt_save(const char *path, const model *m, const tensor *classes, const ckpt_state *st,
	      char *err)
{
	tensor in;
	npz z;
	int rc = -1, lent0;

	npz_init(&z);
	if (add_str(&z, "model/spec", m->spec, err) || tensor_alloc(&in, DT_I8, 1, (int64_t[]){ 3 }, 0, err))
		goto out;
	((int64_t *)in.data)[0] = m->h, ((int64_t *)in.data)[1] = m->w, ((int64_t *)in.data)[2] = 3;
	if (npz_add_move(&z, "model/input", &in, err)) {
		tensor_free(&in);
		goto out;
	}
	if (npz_add(&z, "classes", classes, err))
		goto out;
	if (st->optim != CKPT_NONE &&
	    (add_i8(&z, "train/step", st->step, err) || add_i8(&z, "train/seed", st->seed, err) ||
	     add_i8(&z, "train/batch", st->batch, err) || add_i8(&z, "train/examples", st->examples, err) ||
	     add_str(&z, "train/optimizer", optim_name(st->optim), err)))
		goto out;
	lent0 = z.n;
	for (int i = 0; i < m->nparam; i++)
		if (lend(&z, "", &m->param[i], m->params, err))
			goto unlend;
	for (int i = 0; st->optim != CKPT_NONE && i < m->nparam; i++)
		if (st->optim == CKPT_ADAM ? lend(&z, "adam/m/", &m->param[i], m->adam_m, err) ||
						     lend(&z, "adam/v/", &m->param[i], m->adam_v, err)
					   : lend(&z, "momentum/", &m->param[i], m->adam_m, err))
			goto unlend;
	rc = npz_write(&z, path, 0, err);
unlend:
	for (int i = lent0; i < z.n; i++)
		z.v[i].t.data = NULL;
out:
	npz_free(&z);
	return rc;
}

static int get_i8(const npz *z, const char *path, const char *name, int64_t *v, char *err)
{
	const tensor *t = npz_get(z, name);

	if (!t || t->dtype != DT_I8 || tensor_numel(t) != 1)
		return err_set(err, "%s: no int64 scalar '%s'", path, name);
	*v = *(const int64_t *)t->data;
	return 0;
}

/* Moves member prefix+name into base (its slot for p), then frees the member so that
 * loading never holds two copies of a large layer. */
static int take(npz *z, const char *path, const char *prefix, const model_param *p, float *base,
		char *err)
{
	char name[2 * MODEL_NAME_MAX];
	int i;

	snprintf(name, sizeof name, "%s%s", prefix, p->name);
	for (i = 0; i < z->n && strcmp(z->v[i].name, name); i++)
		;
	if (i == z->n)
		return err_set(err, "%s: no array '%s'", path, name);
	tensor *t = &z->v[i].t;
	int ok = t->dtype == DT_F4 && t->ndim == p->ndim;

	for (int d = 0; ok && d < p->ndim; d++)
		ok = t->shape[d] == p->shape[d];
	if (!ok)
		return err_set(err, "%s: '%s' is not float32 of the shape the model spec gives", path, name);
	memcpy(base + p->off, t->data, sizeof(float) * p->n);
	tensor_free(t);
	return 0;
}

int ckpt_load(const char *path, model *m, int max_batch, int train, tensor *classes,
	      ckpt_state *st, char *err)
{
	const tensor *spec_t, *in_t, *cl_t, *opt_t;
	char spec[4096], oname[32] = "none";
	int64_t h, w;
	npz z;

	memset(st, 0, sizeof *st);
	memset(classes, 0, sizeof *classes);
	memset(m, 0, sizeof *m);
	npz_init(&z);
	if (npz_read(&z, path, err))
		goto fail;
	spec_t = npz_get(&z, "model/spec");
	in_t = npz_get(&z, "model/input");
	cl_t = npz_get(&z, "classes");
	if (!spec_t || spec_t->dtype != DT_U || tensor_numel(spec_t) != 1 || !in_t || in_t->dtype != DT_I8 ||
	    tensor_numel(in_t) != 3 || !cl_t || cl_t->dtype != DT_U || cl_t->ndim != 1 || cl_t->shape[0] < 1) {
		err_set(err, "%s: not a petcnn checkpoint (model/spec, model/input, classes)", path);
		goto fail;
	}
	if (tensor_get_string(spec_t, 0, spec, sizeof spec) < 0 || strlen(spec) + 1 >= sizeof spec) {
		err_set(err, "%s: model spec too long", path);
		goto fail;
	}
	h = ((const int64_t *)in_t->data)[0], w = ((const int64_t *)in_t->data)[1];
	if (h < 1 || w < 1 || h > 1 << 16 || w > 1 << 16 || ((const int64_t *)in_t->data)[2] != 3) {
		err_set(err, "%s: bad model/input", path);
		goto fail;
	}
	if (model_init(m, spec, (int)h, (int)w, (int)cl_t->shape[0], max_batch, train, err)) {
		char inner[ERR_MAX];

		snprintf(inner, sizeof inner, "%s", err);
		err_set(err, "%s: %s", path, inner);
		goto fail;
	}
	if (tensor_alloc(classes, DT_U, 1, cl_t->shape, cl_t->ulen, err))
		goto fail;
	memcpy(classes->data, cl_t->data, (size_t)tensor_nbytes(cl_t));
	for (int i = 0; i < m->nparam; i++)
		if (take(&z, path, "", &m->param[i], m->params, err))
			goto fail;
	if ((opt_t = npz_get(&z, "train/optimizer")) && opt_t->dtype == DT_U)
		tensor_get_string(opt_t, 0, oname, sizeof oname);
	st->optim = !strcmp(oname, "adam") ? CKPT_ADAM : !strcmp(oname, "momentum") ? CKPT_MOMENTUM : CKPT_NONE;
	if (st->optim != CKPT_NONE &&
	    (get_i8(&z, path, "train/step", &st->step, err) || get_i8(&z, path, "train/seed", &st->seed, err) ||
	     get_i8(&z, path, "train/batch", &st->batch, err) ||
	     get_i8(&z, path, "train/examples", &st->examples, err)))
		goto fail;
	for (int i = 0; train && st->optim != CKPT_NONE && i < m->nparam; i++)
		if (st->optim == CKPT_ADAM ? take(&z, path, "adam/m/", &m->param[i], m->adam_m, err) ||
						     take(&z, path, "adam/v/", &m->param[i], m->adam_v, err)
					   : take(&z, path, "momentum/", &m->param[i], m->adam_m, err))
			goto fail;
	npz_free(&z);
	return 0;
fail:
	npz_free(&z);
	tensor_free(classes);
	model_free(m);
	return -1;
}
