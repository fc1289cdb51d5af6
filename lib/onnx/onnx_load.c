/* onnx_load: an ONNX file as a ready petcnn model, and the loader tools call for -m. */
#include "onnx/onnx_load.h"

#include "util/buf.h"
#include "util/errmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* A class list file longer than this is not one (a million names of 60 bytes). */
#define CLASS_FILE_MAX ((size_t)64 << 20)

void onnx_load_opts_default(onnx_load_opts *o)
{
	memset(o, 0, sizeof *o);
	for (int c = 0; c < 3; c++)
		o->std[c] = 1;
}

int onnx_model_build(model *m, const onnx_model *om, int max_batch, int train, char *err)
{
	model_size s = { .h = om->h, .w = om->w, .c = om->c, .classes = om->classes,
			 .max_batch = max_batch, .train = train };

	if (model_init(m, om->spec, s, err))
		return -1;
	/* by name both ways: a parameter the spec has but the import lacks, or the reverse,
	 * is the importer's B_I numbering gone out of step with model.c's */
	for (int i = 0; i < m->nparam; i++) {
		const model_param *p = &m->param[i];
		const tensor *t = npz_get(&om->params, p->name);
		int ok = t && t->dtype == DT_F4 && t->ndim == p->ndim;

		for (int d = 0; ok && d < p->ndim; d++)
			ok = t->shape[d] == p->shape[d];
		if (!ok) {
			err_set(err, "model: parameter '%s' is %s in the import", p->name,
				t ? "of another shape or type" : "missing");
			model_free(m);
			return -1;
		}
		memcpy(m->params + p->off, t->data, p->n * sizeof(float));
	}
	for (int i = 0; i < om->params.n; i++)
		if (!model_find_param(m, om->params.v[i].name)) {
			err_set(err, "model: the import has '%s', which the spec does not",
				om->params.v[i].name);
			model_free(m);
			return -1;
		}
	return 0;
}

/* Splits text at any of seps into names (pointers into text, which is modified); blank
 * names are skipped when skip_blank (file lines), else an error. */
static int split_names(char *text, const char *seps, int skip_blank, char ***out, int64_t *n,
		       const char *what, char *err)
{
	char **v = NULL;
	size_t cap = 0;
	int64_t k = 0;
	char *p = text;

	for (;;) {
		size_t len = strcspn(p, seps);
		int end = p[len] == '\0';
		char *q = p + len, *name = p;

		p[len] = '\0';
		/* a file's CRLF lines and spaces around a name are not part of it */
		while (q > name && (q[-1] == '\r' || q[-1] == ' ' || q[-1] == '\t'))
			*--q = '\0';
		while (*name == ' ' || *name == '\t')
			name++;
		if (*name || !skip_blank) {
			if (!*name) {
				free(v);
				return err_set(err, "%s: an empty class name (name %lld)", what, (long long)k + 1);
			}
			if (buf_grow_array(&v, &cap, (size_t)k + 1, sizeof *v)) {
				free(v);
				return err_set(err, "%s: out of memory", what);
			}
			v[k++] = name;
		}
		if (end)
			break;
		p += len + 1;
	}
	*out = v, *n = k;
	return 0;
}

int onnx_class_names(tensor *t, const char *spec, int k, const char *what, char *err)
{
	struct buf b;
	struct stat st;
	char **names = NULL, *text;
	char label[ERR_MAX / 2];
	int64_t n = 0;
	int rc = -1, file;

	memset(t, 0, sizeof *t);
	if (!spec) {
		/* class0..: a stand-in a user can read, until they give the names */
		if (tensor_alloc(t, DT_U, 1, (int64_t[]){ k }, 16, err))
			return -1;
		for (int i = 0; i < k; i++) {
			char s[24];  /* "class" and any int: -O1 checks the bound */
			uint32_t *u = (uint32_t *)t->data + (size_t)i * 16;

			snprintf(s, sizeof s, "class%d", i);
			for (int j = 0; s[j]; j++)
				u[j] = (unsigned char)s[j];
		}
		return 0;
	}
	/* a file when one is there by that name, else a list */
	file = stat(spec, &st) == 0 && !S_ISDIR(st.st_mode);
	/* a mistyped file name would read as a list of one name */
	if (!file && !strchr(spec, ',') && k != 1)
		return err_set(err, "%s: no such file, nor a comma list of %d class names", spec, k);
	buf_init(&b);
	if (file) {
		snprintf(label, sizeof label, "%s", spec);
		if (buf_slurp(&b, spec, CLASS_FILE_MAX, err))
			return -1;
	} else {
		snprintf(label, sizeof label, "%s '%.200s'", what, spec);
		buf_adds(&b, spec);
	}
	buf_addc(&b, '\0');
	if (b.oom) {
		buf_free(&b);
		return err_set(err, "%s: out of memory", label);
	}
	text = (char *)b.data;
	if (split_names(text, file ? "\n" : ",", file, &names, &n, label, err))
		goto out;
	if (n != k) {
		err_set(err, "%s: %lld class names, the model has %d classes", label, (long long)n, k);
		goto out;
	}
	rc = tensor_from_strings(t, (const char *const *)names, n, err);
out:
	free(names);
	buf_free(&b);
	return rc;
}

/* "path: inner" into err. */
static int prefix_err(char *err, const char *path)
{
	char inner[ERR_MAX];

	snprintf(inner, sizeof inner, "%s", err);
	return err_set(err, "%s: %s", path, inner);
}

int onnx_load_model(const char *path, const onnx_load_opts *opts, model *m, int max_batch,
		    int train, tensor *classes, char *err)
{
	onnx_load_opts def;
	onnx_import_opts io = { 0, 0 };
	onnx_model om;

	if (!opts) {
		onnx_load_opts_default(&def);
		opts = &def;
	}
	if (classes)
		memset(classes, 0, sizeof *classes);
	io.h = opts->h, io.w = opts->w;
	if (onnx_import(&om, path, &io, err))
		return -1;
	if (opts->h && (om.h != opts->h || om.w != opts->w)) {
		err_set(err, "%s: the model takes %dx%d images, these are %dx%d", path, om.h, om.w,
			opts->h, opts->w);
		goto fail;
	}
	if (!classes) {
		/* any graph: a feature extractor, an inference-only model */
		if (onnx_model_build(m, &om, max_batch, 0, err)) {
			prefix_err(err, path);
			goto fail;
		}
		if (om.has_norm && model_set_norm(m, om.mean, om.std, om.bgr, err)) {
			prefix_err(err, path);
			model_free(m);
			goto fail;
		}
		onnx_model_free(&om);
		return 0;
	}
	if (om.c != 3) {
		err_set(err, "%s: the model's input has %d channels: images have 3", path, om.c);
		goto fail;
	}
	if (!om.classes) {
		err_set(err, "%s: the output is %dx%dx%d, not a class score per class (1x1xK or [N, K])",
			path, om.out_h, om.out_w, om.out_c);
		goto fail;
	}
	if (!opts->classes && om.class_names.data) {
		/* a petcnn export's names (metadata "classes") */
		*classes = om.class_names;
		memset(&om.class_names, 0, sizeof om.class_names);
	} else if (onnx_class_names(classes, opts->classes, om.classes, "--classes", err)) {
		goto fail;
	}
	if (onnx_model_build(m, &om, max_batch, train, err)) {
		prefix_err(err, path);
		tensor_free(classes);
		goto fail;
	}
	if (opts->has_norm || !om.has_norm ? model_set_norm(m, opts->mean, opts->std, opts->bgr, err)
					   : model_set_norm(m, om.mean, om.std, om.bgr, err)) {
		prefix_err(err, path);
		model_free(m);
		tensor_free(classes);
		goto fail;
	}
	onnx_model_free(&om);
	return 0;
fail:
	onnx_model_free(&om);
	return -1;
}

static int ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);

	return n >= k && !strcasecmp(s + n - k, tail);
}

int model_path_is_onnx(const char *path)
{
	char magic[2];
	FILE *fp;
	int onnx;

	if (!strcmp(path, "-") || ends_with(path, ".npz"))
		return 0;
	if (ends_with(path, ".onnx"))
		return 1;
	/* neither: a zip is a checkpoint, anything else is tried as ONNX only if readable
	 * (else the checkpoint loader says why it cannot be opened) */
	if (!(fp = fopen(path, "rb")))
		return 0;
	onnx = fread(magic, 1, 2, fp) == 2 && memcmp(magic, "PK", 2);
	fclose(fp);
	return onnx;
}

int model_load_any(const char *path, int h, int w, model *m, int max_batch, int train,
		   tensor *classes, ckpt_state *st, char *err)
{
	onnx_load_opts o;

	if (!model_path_is_onnx(path))
		return ckpt_load_sized(path, h, w, m, max_batch, train, classes, st, err);
	memset(st, 0, sizeof *st);
	st->optim = CKPT_NONE;
	onnx_load_opts_default(&o);
	o.h = h, o.w = w;
	return onnx_load_model(path, &o, m, max_batch, train, classes, err);
}

int onnx_finetune_read(const char *path, finetune_src *src, char *err)
{
	/* a graph with open height and width is read at ImageNet's 224; only a dense layer's
	 * input depends on it, and one of another size is made anew like any mismatch */
	onnx_import_opts io = { .h = 224, .w = 224 };
	onnx_model om;

	memset(src, 0, sizeof *src);
	npz_init(&src->tensors);
	if (onnx_import(&om, path, &io, err))
		return -1;
	/* moved, not copied: VGG-16's 528 MB once */
	src->spec = om.spec, om.spec = NULL;
	src->classes = om.classes;
	if (om.has_norm) {
		src->has_norm = 1, src->bgr = om.bgr;
		memcpy(src->mean, om.mean, sizeof src->mean);
		memcpy(src->std, om.std, sizeof src->std);
	}
	/* the parameters change hands: om's npz is left empty */
	src->tensors = om.params;
	npz_init(&om.params);
	onnx_model_free(&om);
	return 0;
}
