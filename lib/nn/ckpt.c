/* ckpt: mapping a model's one parameter buffer to and from named npz members. */
#include "nn/ckpt.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "util/errmsg.h"
#include "array/npz.h"
#include "util/mem.h"
#include "util/outfile.h"
#include "util/par.h"

/* A scalar member of dtype (DT_I8 or DT_F8) holding the 8 bytes at v. */
static int add_scalar(npz *z, const char *name, enum tensor_dtype dtype, const void *v, char *err)
{
	tensor t;

	if (tensor_alloc(&t, dtype, 0, NULL, 0, err))
		return -1;
	memcpy(t.data, v, 8);
	if (npz_add_move(z, name, &t, err)) {
		tensor_free(&t);
		return -1;
	}
	return 0;
}

static int add_i8(npz *z, const char *name, int64_t v, char *err)
{
	return add_scalar(z, name, DT_I8, &v, err);
}

static int add_f8(npz *z, const char *name, double v, char *err)
{
	return add_scalar(z, name, DT_F8, &v, err);
}

/* "model/mean", "model/std" f4 [3] and "model/bgr" i8 []: written only when not the
 * default, so a default model's checkpoint keeps its bytes. */
static int add_norm(npz *z, const model *m, char *err)
{
	tensor t;

	for (int k = 0; k < 2; k++) {
		if (tensor_alloc(&t, DT_F4, 1, (int64_t[]){ 3 }, 0, err))
			return -1;
		memcpy(t.data, k ? m->std : m->mean, sizeof(float) * 3);
		if (npz_add_move(z, k ? "model/std" : "model/mean", &t, err)) {
			tensor_free(&t);
			return -1;
		}
	}
	return add_i8(z, "model/bgr", m->bgr, err);
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

/* "train/frozen" <U [n]: the frozen layers, only when there are some (a default
 * checkpoint keeps its bytes). */
static int add_frozen(npz *z, const model *m, char *err)
{
	const char **names;
	tensor t;
	int n = 0;

	for (int i = 0; i < m->nlayer; i++)
		n += m->layer[i].frozen;
	if (!n)
		return 0;
	if (!(names = malloc(sizeof *names * (size_t)n)))
		return err_set(err, "out of memory");
	n = 0;
	for (int i = 0; i < m->nlayer; i++)
		if (m->layer[i].frozen)
			names[n++] = m->layer[i].name;
	if (tensor_from_strings(&t, names, n, err)) {
		free(names);
		return -1;
	}
	free(names);
	if (npz_add_move(z, "train/frozen", &t, err)) {
		tensor_free(&t);
		return -1;
	}
	return 0;
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
	if (!model_norm_default(m) && add_norm(&z, m, err))
		goto out;
	if (npz_add(&z, "classes", classes, err))
		goto out;
	if (st->optim != CKPT_NONE &&
	    (add_i8(&z, "train/step", st->step, err) || add_i8(&z, "train/seed", st->seed, err) ||
	     add_i8(&z, "train/batch", st->batch, err) || add_i8(&z, "train/examples", st->examples, err) ||
	     add_str(&z, "train/optimizer", optim_name(st->optim), err)))
		goto out;
	if (st->optim != CKPT_NONE && st->has_settings &&
	    (add_f8(&z, "train/lr", st->lr, err) || add_f8(&z, "train/keep_conv", st->keep_conv, err) ||
	     add_f8(&z, "train/keep_fc", st->keep_fc, err) || add_f8(&z, "train/momentum", st->momentum, err) ||
	     add_str(&z, "train/data_sha256", st->data_sha256, err)))
		goto out;
	if (st->optim != CKPT_NONE && st->augment[0] && add_str(&z, "train/augment", st->augment, err))
		goto out;
	if (st->optim != CKPT_NONE && add_frozen(&z, m, err))
		goto out;
	lent0 = z.n;
	for (int i = 0; i < m->nparam; i++)
		if (lend(&z, "", &m->param[i], m->params, err))
			goto unlend;
	/* a frozen parameter has no optimiser state */
	for (int i = 0; st->optim != CKPT_NONE && i < m->nparam; i++)
		if (!model_param_frozen(m, i) &&
		    (st->optim == CKPT_ADAM ? lend(&z, "adam/m/", &m->param[i], m->adam_m, err) ||
						      lend(&z, "adam/v/", &m->param[i], m->adam_v, err)
					    : lend(&z, "momentum/", &m->param[i], m->adam_m, err)))
			goto unlend;
	rc = npz_write(&z, path, 0, err);
unlend:
	for (int i = lent0; i < z.n; i++)
		z.v[i].t.data = NULL;
out:
	npz_free(&z);
	return rc;
}

/* An int64 scalar member within [min, max]. */
static int get_i8(const npz *z, const char *path, const char *name, int64_t min, int64_t max,
		  int64_t *v, char *err)
{
	const tensor *t = npz_get(z, name);

	if (!t || t->dtype != DT_I8 || tensor_numel(t) != 1)
		return err_set(err, "%s: no int64 scalar '%s'", path, name);
	*v = *(const int64_t *)t->data;
	if (*v < min || *v > max)
		return err_set(err, "%s: '%s' is %lld, not in [%lld, %lld]", path, name, (long long)*v,
			       (long long)min, (long long)max);
	return 0;
}

/* A float64 scalar member within [min, max] (so never NaN). */
static int get_f8(const npz *z, const char *path, const char *name, double min, double max,
		  double *v, char *err)
{
	const tensor *t = npz_get(z, name);

	if (!t || t->dtype != DT_F8 || tensor_numel(t) != 1)
		return err_set(err, "%s: no float64 scalar '%s'", path, name);
	*v = *(const double *)t->data;
	if (!(*v >= min && *v <= max))
		return err_set(err, "%s: '%s' is %g, not in [%g, %g]", path, name, *v, min, max);
	return 0;
}

/* The run's settings, when the checkpoint has them (all or none). */
/* The input normalisation, if the checkpoint has one (else the default stays). */
static int get_norm(const npz *z, const char *path, model *m, char *err)
{
	const tensor *mean = npz_get(z, "model/mean"), *sd = npz_get(z, "model/std");
	int64_t bgr = 0;
	char inner[ERR_MAX];

	if (!mean && !sd && !npz_get(z, "model/bgr"))
		return 0;
	if (!mean || !sd || mean->dtype != DT_F4 || sd->dtype != DT_F4 || tensor_numel(mean) != 3 ||
	    tensor_numel(sd) != 3)
		return err_set(err, "%s: 'model/mean' and 'model/std' must both be float32 [3]", path);
	if (get_i8(z, path, "model/bgr", 0, 1, &bgr, err))
		return -1;
	if (model_set_norm(m, mean->data, sd->data, (int)bgr, inner))
		return err_set(err, "%s: %s", path, inner);
	return 0;
}

/* "train/frozen": the layers to freeze again (their optimiser state is not in the file). */
static int get_frozen(const npz *z, const char *path, model *m, char *err)
{
	const tensor *t = npz_get(z, "train/frozen");
	char name[MODEL_NAME_MAX], inner[ERR_MAX];

	if (!t)
		return 0;
	if (t->dtype != DT_U || t->ndim != 1)
		return err_set(err, "%s: 'train/frozen' is not a list of layer names", path);
	for (int64_t i = 0; i < t->shape[0]; i++) {
		if (tensor_get_string(t, i, name, sizeof name) < 0)
			return err_set(err, "%s: 'train/frozen' holds a name too long for a layer", path);
		if (model_freeze(m, name, inner))
			return err_set(err, "%s: train/frozen: %s", path, inner);
	}
	return 0;
}

static int get_settings(const npz *z, const char *path, ckpt_state *st, char *err)
{
	const tensor *h = npz_get(z, "train/data_sha256");

	if (!h && !npz_get(z, "train/lr"))
		return 0;
	if (get_f8(z, path, "train/lr", 0, 10, &st->lr, err) ||
	    get_f8(z, path, "train/keep_conv", 1e-6, 1, &st->keep_conv, err) ||
	    get_f8(z, path, "train/keep_fc", 1e-6, 1, &st->keep_fc, err) ||
	    get_f8(z, path, "train/momentum", 0, 1, &st->momentum, err))
		return -1;
	if (!h || h->dtype != DT_U || tensor_numel(h) != 1 ||
	    tensor_get_string(h, 0, st->data_sha256, sizeof st->data_sha256) < 0 || strlen(st->data_sha256) != 64 ||
	    strspn(st->data_sha256, "0123456789abcdef") != 64)
		return err_set(err, "%s: 'train/data_sha256' is not a SHA-256 in hex", path);
	st->has_settings = 1;
	return 0;
}

/* "train/augment": the spec as written (tools parse it again, so this only bounds it). */
static int get_augment(const npz *z, const char *path, ckpt_state *st, char *err)
{
	const tensor *t = npz_get(z, "train/augment");

	if (!t)
		return 0;
	if (t->dtype != DT_U || tensor_numel(t) != 1 || t->ulen >= CKPT_AUGMENT_MAX ||
	    tensor_get_string(t, 0, st->augment, sizeof st->augment) < 0)
		return err_set(err, "%s: 'train/augment' is not one augmentation spec", path);
	return 0;
}

/* Copies member prefix+name, left in z because it came before the metadata, into base
 * (its slot for p), then frees it. */
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

/* Loading as the archive streams by: small members are kept in z; once the model's
 * metadata has been seen (ckpt_save writes it first) each parameter and optimiser member
 * is read straight into the model's buffers, and the optimiser members an inference load
 * does not need are read past, so peak memory is the model's own, not the file's too. */
typedef struct {
	const char *path;
	npz z;
	model *m;
	int want_h, want_w;     /* 0: any input size */
	int max_batch, train, inited;
	enum ckpt_optim optim;  /* once train/optimizer has been seen */
	unsigned char *done;    /* [3 * nparam]: params, adam/m or momentum, adam/v read directly */
} loading;

static int prefixed(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static void set_optim(loading *L)
{
	const tensor *opt_t = npz_get(&L->z, "train/optimizer");
	char oname[32] = "none";

	if (opt_t && opt_t->dtype == DT_U)
		tensor_get_string(opt_t, 0, oname, sizeof oname);
	L->optim = !strcmp(oname, "adam") ? CKPT_ADAM : !strcmp(oname, "momentum") ? CKPT_MOMENTUM : CKPT_NONE;
}

/* Builds the model once spec, input and classes are all at hand (now = 1: they must be). */
static int init_model(loading *L, int now, char *err)
{
	const tensor *spec_t = npz_get(&L->z, "model/spec"), *in_t = npz_get(&L->z, "model/input");
	const tensor *cl_t = npz_get(&L->z, "classes");
	char *spec;
	const int64_t *hw;
	int rc;

	if (L->inited || (!now && (!spec_t || !in_t || !cl_t)))
		return 0;
	if (!spec_t || spec_t->dtype != DT_U || tensor_numel(spec_t) != 1 || !in_t || in_t->dtype != DT_I8 ||
	    tensor_numel(in_t) != 3 || !cl_t || cl_t->dtype != DT_U || cl_t->ndim != 1 || cl_t->shape[0] < 1)
		return err_set(err, "%s: not a petcnn checkpoint (model/spec, model/input, classes)", L->path);
	hw = in_t->data;
	if (hw[0] < 1 || hw[1] < 1 || hw[0] > 1 << 16 || hw[1] > 1 << 16 || hw[2] != 3)
		return err_set(err, "%s: bad model/input", L->path);
	if (L->want_h && (hw[0] != L->want_h || hw[1] != L->want_w))
		return err_set(err, "%s: the model takes %lldx%lld images, these are %dx%d", L->path,
			       (long long)hw[0], (long long)hw[1], L->want_h, L->want_w);
	/* UTF-8 takes at most 4 bytes per code point */
	if (spec_t->ulen > 1 << 20 || !(spec = malloc((size_t)spec_t->ulen * 4 + 1)))
		return err_set(err, "%s: model spec too long", L->path);
	if (tensor_get_string(spec_t, 0, spec, (size_t)spec_t->ulen * 4 + 1) < 0) {
		free(spec);
		return err_set(err, "%s: model spec is not text", L->path);
	}
	rc = model_init(L->m, spec, (model_size){ .h = (int)hw[0], .w = (int)hw[1], .c = 3, .classes = (int)cl_t->shape[0],
						   .max_batch = L->max_batch, .train = L->train }, err);
	free(spec);
	if (rc) {
		char inner[ERR_MAX];

		snprintf(inner, sizeof inner, "%s", err);
		return err_set(err, "%s: %s", L->path, inner);
	}
	L->inited = 1;
	if (!(L->done = calloc((size_t)L->m->nparam, 3)))
		return err_set(err, "%s: out of memory", L->path);
	return 0;
}

/* Reads member name straight into the model if it is one of its buffers' slots; 1 if it
 * did, 0 if the member is not one (the caller keeps it), -1 on error. */
static int read_direct(loading *L, const char *name, const char *label, const tensor *hdr,
		       npy_src *data, char *err)
{
	static const char *const prefix[] = { "adam/m/", "adam/v/", "momentum/", "" };
	model *m = L->m;
	int k = 0;

	while (k < 3 && !prefixed(name, prefix[k]))
		k++;
	/* with another optimiser's state (or none) the member is not ours */
	if (k < 3 && (!L->train || L->optim != (k == 2 ? CKPT_MOMENTUM : CKPT_ADAM)))
		return 0;
	for (int i = 0; i < m->nparam; i++) {
		const model_param *p = &m->param[i];
		int slot = k == 3 ? 0 : k == 1 ? 2 : 1, ok = hdr->dtype == DT_F4 && hdr->ndim == p->ndim;
		float *base = slot == 0 ? m->params : slot == 1 ? m->adam_m : m->adam_v;

		if (strcmp(name + strlen(prefix[k]), p->name))
			continue;
		for (int d = 0; ok && d < p->ndim; d++)
			ok = hdr->shape[d] == p->shape[d];
		if (!ok)
			return err_set(err, "%s: '%s' is not float32 of the shape the model spec gives",
				       L->path, name);
		int64_t got = npy_src_fill(data, base + p->off, sizeof(float) * p->n, label, err);

		if (got < 0)
			return -1;
		if (got < (int64_t)(sizeof(float) * p->n))
			return err_set(err, "%s: truncated data: expected %zu bytes, got %lld", label,
				       sizeof(float) * p->n, (long long)got);
		L->done[(size_t)slot * m->nparam + i] = 1;
		return 1;
	}
	return 0;
}

static int visit(void *ctx, const char *name, const char *label, const tensor *hdr, npy_src *data,
		 char *err)
{
	loading *L = ctx;
	tensor t = *hdr;
	int rc;

	if (L->inited && (rc = read_direct(L, name, label, hdr, data, err)) != 0)
		return rc < 0 ? -1 : 0;
	/* A member left unread is skipped by npz_scan, never held. */
	if (!L->train && (prefixed(name, "adam/") || prefixed(name, "momentum/")))
		return 0;
	/* Past the metadata, a member that is not one of the model's buffers is nothing a
	 * loader needs: read past, never held (a junk member may be hundreds of MB). */
	if (L->inited && !((prefixed(name, "train/") || prefixed(name, "model/")) && tensor_nbytes(hdr) <= 4096))
		return 0;
	if (npy_src_data(data, label, &t, err) != 1)
		return -1;
	if (npz_add_move(&L->z, name, &t, err)) {
		tensor_free(&t);
		return -1;
	}
	if (!strcmp(name, "train/optimizer"))
		set_optim(L);
	return init_model(L, 0, err);
}

int ckpt_load(const char *path, model *m, int max_batch, int train, tensor *classes,
	      ckpt_state *st, char *err)
{
	return ckpt_load_sized(path, 0, 0, m, max_batch, train, classes, st, err);
}

int ckpt_load_sized(const char *path, int h, int w, model *m, int max_batch, int train,
		    tensor *classes, ckpt_state *st, char *err)
{
	loading L = { .path = path, .m = m, .want_h = h, .want_w = w, .max_batch = max_batch,
		      .train = train };
	const tensor *cl_t;

	memset(st, 0, sizeof *st);
	memset(classes, 0, sizeof *classes);
	memset(m, 0, sizeof *m);
	npz_init(&L.z);
	if (npz_scan(path, NULL, visit, &L, err) || init_model(&L, 1, err))
		goto fail;
	if (get_norm(&L.z, path, m, err))
		goto fail;
	cl_t = npz_get(&L.z, "classes");
	if (tensor_alloc(classes, DT_U, 1, cl_t->shape, cl_t->ulen, err))
		goto fail;
	memcpy(classes->data, cl_t->data, (size_t)tensor_nbytes(cl_t));
	for (int i = 0; i < m->nparam; i++)
		if (!L.done[i] && take(&L.z, path, "", &m->param[i], m->params, err))
			goto fail;
	st->optim = L.optim;
	if (st->optim != CKPT_NONE &&
	    (get_i8(&L.z, path, "train/step", 0, INT64_MAX / 2, &st->step, err) ||
	     get_i8(&L.z, path, "train/seed", 0, INT64_MAX, &st->seed, err) ||
	     get_i8(&L.z, path, "train/batch", 1, 100000, &st->batch, err) ||
	     get_i8(&L.z, path, "train/examples", 1, INT64_C(1) << 40, &st->examples, err) ||
	     get_settings(&L.z, path, st, err) || get_augment(&L.z, path, st, err)))
		goto fail;
	if (train && st->optim != CKPT_NONE && get_frozen(&L.z, path, m, err))
		goto fail;
	for (int i = 0; train && st->optim != CKPT_NONE && i < m->nparam; i++) {
		const unsigned char *d = L.done + i;

		if (model_param_frozen(m, i))
			continue;
		if (st->optim == CKPT_ADAM
			    ? (!d[m->nparam] && take(&L.z, path, "adam/m/", &m->param[i], m->adam_m, err)) ||
				      (!d[2 * m->nparam] &&
				       take(&L.z, path, "adam/v/", &m->param[i], m->adam_v, err))
			    : !d[m->nparam] && take(&L.z, path, "momentum/", &m->param[i], m->adam_m, err))
			goto fail;
	}
	npz_free(&L.z);
	free(L.done);
	return 0;
fail:
	npz_free(&L.z);
	free(L.done);
	tensor_free(classes);
	model_free(m);
	return -1;
}

void ckpt_writer_init(ckpt_writer *w)
{
	memset(w, 0, sizeof *w);
}

static double seconds(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Huge pages where the kernel gives them on advice: 600 faults for 1.2 GB, not 300,000. */
#define STAGE_ALIGN ((size_t)2 << 20)
/* The share of faulting one claim takes: 16 MB, 20-40 ms on memory the host reclaimed,
 * the longest a waiter waits for the faulting thread's last chunk. */
#define STAGE_CHUNK ((size_t)16 << 20)
/* Huge pages are kept while they fault in faster than small ones: on the KVM guests
 * measured, 8-23 GB/s where the host still backs the guest's free 2 MB blocks, 0.4-0.5
 * GB/s where it has reclaimed them (every 2 MB block left free for a few seconds), where
 * small pages come at 3.5-3.8 GB/s either way (from the guest's smaller free blocks, which
 * the host leaves alone). 1.2 GB took 2.9 s of CPU in cold huge pages, 0.33 s in small
 * ones (an Intel Xeon guest, 2026-12-07). Bytes per CPU second. */
#define STAGE_HUGE_MIN 2e9

/* The staging buffer's mapping for n floats: whole 2 MB pages (SIZE_MAX: too large). */
static size_t stage_span(size_t n)
{
	return n > (SIZE_MAX - STAGE_ALIGN) / sizeof(float) ? SIZE_MAX
	       : (n * sizeof(float) + STAGE_ALIGN - 1) / STAGE_ALIGN * STAGE_ALIGN;
}

/* Maps the staging buffer of n floats, none of it faulted in yet (stage_fault). */
static int stage_map(ckpt_writer *w, size_t n, const char *path, char *err)
{
	size_t bytes;
	void *p;

	if (w->stage_n >= n)
		return 0;
	if ((bytes = stage_span(n)) == SIZE_MAX)
		return err_set(err, "%s: model too large", path);
	if (w->stage)
		munmap(w->stage, w->stage_bytes);
	w->stage = NULL, w->stage_n = w->stage_bytes = 0;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return err_set(err, "%s: out of memory for the %zu MB staging copy", path, bytes >> 20);
	w->huge = 0;
#ifdef MADV_HUGEPAGE
	w->huge = madvise(p, bytes, MADV_HUGEPAGE) == 0;
#endif
	w->stage = p, w->stage_n = n, w->stage_bytes = bytes;
	w->fault_chunks = (bytes + STAGE_CHUNK - 1) / STAGE_CHUNK;
	atomic_store(&w->fault_next, 0);
	w->huge_bytes = w->huge_rate = 0;
	return 0;
}

/* Faults in the staging buffer's unclaimed chunks (the kernel's zeroing is the cost, paid
 * here, not by a copy); the bytes this call faulted in. A chunk of huge pages that came in
 * slower than small ones would (STAGE_HUGE_MIN) turns the advice off for the rest. */
static size_t stage_fault(ckpt_writer *w)
{
	size_t c, did = 0;

	while ((c = atomic_fetch_add(&w->fault_next, 1)) < w->fault_chunks) {
		size_t lo = c * STAGE_CHUNK;
		size_t hi = w->stage_bytes - lo < STAGE_CHUNK ? w->stage_bytes : lo + STAGE_CHUNK;
		int huge = atomic_load(&w->huge);
		double t0 = huge ? seconds(CLOCK_THREAD_CPUTIME_ID) : 0, rate;

		mem_fault((char *)w->stage + lo, hi - lo);
		did += hi - lo;
		if (!huge)
			continue;
		atomic_fetch_add(&w->huge_bytes, hi - lo);
		rate = (double)(hi - lo) / (seconds(CLOCK_THREAD_CPUTIME_ID) - t0 + 1e-9);
		/* the first to see it slow: another thread's chunk may be on its way in already */
		if (rate < STAGE_HUGE_MIN && atomic_exchange(&w->huge, 0)) {
			w->huge_rate = rate;
#ifdef MADV_NOHUGEPAGE
			if (hi < w->stage_bytes)
				madvise((char *)w->stage + hi, w->stage_bytes - hi, MADV_NOHUGEPAGE);
#endif
		}
	}
	return did;
}

static void fault_share(void *ctx, int k, int n)
{
	ckpt_writer *w = ctx;
	size_t did = stage_fault(w);

	(void)k, (void)n;
	atomic_fetch_add(&w->fault_waited, did);
}

static void *writer_main(void *arg)
{
	ckpt_writer *w = arg;
	double t0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_THREAD_CPUTIME_ID);

#ifdef __linux__
	/* this thread alone: elsewhere PRIO_PROCESS would lower the whole program */
	if (w->low)
		setpriority(PRIO_PROCESS, 0, 19);
	errno = 0;
	w->nice = getpriority(PRIO_PROCESS, 0);
#endif

	if (w->writing)
		w->rc = ckpt_save(w->path, &w->view, w->classes, &w->st, w->err);
	else
		stage_fault(w);
	w->seconds = seconds(CLOCK_MONOTONIC) - t0;
	w->cpu_seconds = seconds(CLOCK_THREAD_CPUTIME_ID) - c0;
	w->done = 1;
	return NULL;
}

/* Each tensor's slot in the staging buffer starts page-aligned, as zipw starts its data in
 * the file: the writer's O_DIRECT writes then take it uncopied (outfile_write). */
#define SLOT_FLOATS (OUTFILE_DIRECT_ALIGN / sizeof(float))

static size_t slot(size_t n)
{
	return (n + SLOT_FLOATS - 1) / SLOT_FLOATS * SLOT_FLOATS;
}

/* Floats of one buffer (params, or one optimiser buffer) laid out in slots. */
static size_t slotted(const model *m)
{
	size_t n = 0;

	for (int i = 0; i < m->nparam; i++)
		n += slot(m->param[i].n);
	return n;
}

/* Floats the staging buffer holds for optim: params, then the optimiser buffers. */
static size_t stage_floats(const model *m, enum ckpt_optim optim)
{
	size_t bufs = optim == CKPT_ADAM ? 3 : optim == CKPT_MOMENTUM ? 2 : 1, one = slotted(m);

	return one > SIZE_MAX / sizeof(float) / 3 ? SIZE_MAX : bufs * one;
}

int ckpt_background_fits(const model *m, enum ckpt_optim optim, size_t *stage, size_t *avail)
{
	*stage = stage_span(stage_floats(m, optim));
	*avail = mem_available();
	return *stage <= *avail / 4;
}

typedef struct {
	const ckpt_writer *w;
	const model *m;
} copy_job;

/* Worker k's share of each tensor's copy into its slot (the view's offsets). */
static void copy_share(void *ctx, int k, int n)
{
	const copy_job *j = ctx;
	const model *m = j->m, *v = &j->w->view;

	for (int i = 0; i < m->nparam; i++) {
		const model_param *p = &m->param[i];
		size_t at = v->param[i].off;
		long lo, hi;

		par_share((long)p->n, k, n, &lo, &hi);
		if (hi <= lo)
			continue;
		memcpy(v->params + at + lo, m->params + p->off + lo, sizeof(float) * (size_t)(hi - lo));
		/* a frozen parameter has no optimiser state to save */
		if (model_param_frozen(m, i))
			continue;
		if (v->adam_m)
			memcpy(v->adam_m + at + lo, m->adam_m + p->off + lo, sizeof(float) * (size_t)(hi - lo));
		if (v->adam_v)
			memcpy(v->adam_v + at + lo, m->adam_v + p->off + lo, sizeof(float) * (size_t)(hi - lo));
	}
}

/* The staging buffer holds params, then the optimiser buffers st saves, each tensor in its
 * slot: the view's parameters (names, shapes) are the model's, their offsets the slots'. */
static int stage(ckpt_writer *w, const char *path, const model *m, const ckpt_state *st,
		 char *err)
{
	size_t n = stage_floats(m, st->optim), one = slotted(m), off = 0;
	model_param *vp;

	if (stage_map(w, n, path, err))
		return -1;
	/* not prepared (a checkpoint at the first step): the copy would fault it in on one thread */
	w->threads = m->threads;
	par_run(w->threads, fault_share, w);
	if (w->nvparam < m->nparam) {
		if (!(vp = realloc(w->vparam, sizeof *vp * (size_t)m->nparam)))
			return err_set(err, "%s: out of memory", path);
		w->vparam = vp, w->nvparam = m->nparam;
	}
	w->view = *m;
	w->view.param = w->vparam;
	w->view.params = w->stage;
	w->view.grads = w->view.adam_m = w->view.adam_v = NULL;
	if (n > one)
		w->view.adam_m = w->stage + one;
	if (n > 2 * one)
		w->view.adam_v = w->stage + 2 * one;
	for (int i = 0; i < m->nparam; i++) {
		w->vparam[i] = m->param[i];
		w->vparam[i].off = off;
		off += slot(m->param[i].n);
	}
	/* on the model's threads: 1.2 GB in 0.108 s on one, 0.058 on two (an Intel Xeon KVM
	 * guest, 2026-12-06), where an AMD EPYC Zen 5 guest's one thread already copied at
	 * its memory's speed (0.06 s, the README) */
	par_run(w->threads, copy_share, &(copy_job){ .w = w, .m = m });
	return 0;
}

/* "-", a FIFO, a device: written in place, never staged. */
static int in_place(const char *path)
{
	struct stat sb;

	return !strcmp(path, "-") || (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode));
}

/* Starts the thread on w's job (w->writing says which). */
static int start(ckpt_writer *w, const char *path, char *err)
{
	sigset_t all, old;
	int rc;

	free(w->path);
	if (!(w->path = strdup(path)))
		return err_set(err, "%s: out of memory", path);
	w->rc = 0;
	w->err[0] = 0;
	w->done = 0;
	/* the thread starts with every signal blocked: handlers run in the program's threads */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		return err_sys(err, "%s: cannot start the checkpoint writer", path);
	}
	w->running = 1;
	return 0;
}

int ckpt_writer_prepare(ckpt_writer *w, const char *path, const model *m, enum ckpt_optim optim,
			char *err)
{
	size_t n = stage_floats(m, optim);

	if (w->running)
		return err_set(err, "%s: a checkpoint is still being written", path);
	if (w->stage_n >= n || in_place(path))
		return 0;
	if (stage_map(w, n, path, err))
		return -1;
	w->writing = 0;
	w->low = 0;   /* at nice 19 it was starved for seconds at a time: see ckpt.h */
	w->threads = m->threads;
	return start(w, path, err);
}

/* Starts writing (m, classes, st): from the staging copy (copy), else from m's own buffers. */
static int begin(ckpt_writer *w, const char *path, const model *m, const tensor *classes,
		 const ckpt_state *st, int copy, char *err)
{
	if (w->running)
		return err_set(err, "%s: a checkpoint is still being written", path);
	if (in_place(path))
		return ckpt_save(path, m, classes, st, err);
	/* a lent write with a staging buffer at hand copies into it all the same: its slots are
	 * page-aligned, so O_DIRECT takes them uncopied where m's own tensors go through a
	 * bounce buffer, a copy and then a write at a time. A run's last 1.2 GB (224, 2
	 * threads, an Intel Xeon KVM guest): on disk 0.92-0.95 s after its step -> 0.73-0.77,
	 * the run's wait for it (the copy's 0.06 s included) 0.92-0.95 -> 0.78-0.83 */
	if (copy || (w->stage && w->stage_n >= stage_floats(m, st->optim))) {
		if (stage(w, path, m, st, err))
			return -1;
	} else {
		w->view = *m;
	}
	w->classes = classes;
	w->st = *st;
	w->step = st->step;
	w->writing = 1;
	w->low = copy;
	return start(w, path, err);
}

int ckpt_save_start(ckpt_writer *w, const char *path, const model *m, const tensor *classes,
		    const ckpt_state *st, char *err)
{
	return begin(w, path, m, classes, st, 1, err);
}

int ckpt_save_start_lent(ckpt_writer *w, const char *path, const model *m, const tensor *classes,
			 const ckpt_state *st, char *err)
{
	return begin(w, path, m, classes, st, 0, err);
}

int ckpt_writer_wait(ckpt_writer *w, int block, char *err)
{
	if (!w->running)
		return 0;
	if (!block && !w->done)
		return 1;
	/* the caller's threads would idle while the faulting thread does the rest alone */
	if (!w->writing)
		par_run(w->threads, fault_share, w);
	pthread_join(w->thread, NULL);
	w->running = 0;
	if (w->rc)
		return err_set(err, "%s", w->err);
	return 0;
}

void ckpt_writer_free(ckpt_writer *w)
{
	/* a buffer no checkpoint will use: the thread stops after its chunk */
	if (w->running && !w->writing)
		atomic_store(&w->fault_next, w->fault_chunks);
	if (w->running)
		pthread_join(w->thread, NULL);
	if (w->stage)
		munmap(w->stage, w->stage_bytes);
	free(w->path);
	free(w->vparam);
	ckpt_writer_init(w);
}
