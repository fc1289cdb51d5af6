/* dataset: reading and checking a dataset stream before any work is done on it. */
#include "nn/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"
#include "util/hash.h"
#include "array/npy.h"

static int next(FILE *f, const char *name, tensor *t, const char *what, char *err)
{
	int rc = npy_read(f, name, t, err);

	if (rc == 0)
		return err_set(err, "%s: ends before the %s array (a dataset stream is images, labels, classes)",
			       name, what);
	return rc < 0 ? -1 : 0;
}

static int check(dataset *d, const char *name, char *err)
{
	const tensor *im = &d->images, *cl = &d->classes;

	if (im->dtype != DT_U1 || im->ndim != 4 || im->shape[3] != 3)
		return err_set(err, "%s: images must be uint8 [N, H, W, 3]", name);
	if (im->shape[1] < 1 || im->shape[2] < 1 || im->shape[1] > 1 << 16 || im->shape[2] > 1 << 16)
		return err_set(err, "%s: image size %lldx%lld out of range", name,
			       (long long)im->shape[1], (long long)im->shape[2]);
	if (cl->dtype != DT_U || cl->ndim != 1 || cl->shape[0] < 1 || cl->shape[0] > 1 << 20)
		return err_set(err, "%s: classes must be a non-empty string array [K]", name);
	d->n = im->shape[0];
	d->h = (int)im->shape[1];
	d->w = (int)im->shape[2];
	d->k = (int)cl->shape[0];
	return 0;
}

int dataset_read(dataset *d, const char *path, int allow_unlabelled, char *err)
{
	const char *name = strcmp(path, "-") ? path : "<stdin>";
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	tensor lab;
	int rc = -1;

	memset(d, 0, sizeof *d);
	memset(&lab, 0, sizeof lab);
	if (!f)
		return err_sys(err, "%s", path);
	if (next(f, name, &d->images, "images", err) || next(f, name, &lab, "labels", err) ||
	    next(f, name, &d->classes, "classes", err) || check(d, name, err))
		goto out;
	if (lab.dtype != DT_I8 || lab.ndim != 1 || lab.shape[0] != d->n) {
		err_set(err, "%s: labels must be int64 [%lld], one per image", name, (long long)d->n);
		goto out;
	}
	if (!(d->labels = malloc(sizeof *d->labels * (size_t)(d->n ? d->n : 1)))) {
		err_set(err, "%s: out of memory", name);
		goto out;
	}
	for (int64_t i = 0; i < d->n; i++) {
		int64_t y = ((const int64_t *)lab.data)[i];

		if (y == -1 && allow_unlabelled) {
			d->unlabelled++;
		} else if (y < 0 || y >= d->k) {
			err_set(err, "%s: label %lld of image %lld is not a class index in [0, %d)%s", name,
				(long long)y, (long long)i, d->k,
				y == -1 ? " (unlabelled images cannot be trained on)" : "");
			goto out;
		}
		d->labels[i] = (int)y;
	}
	rc = 0;
out:
	tensor_free(&lab);
	if (f != stdin)
		fclose(f);
	if (rc)
		dataset_free(d);
	return rc;
}

void dataset_free(dataset *d)
{
	tensor_free(&d->images);
	tensor_free(&d->classes);
	free(d->labels);
	memset(d, 0, sizeof *d);
}

int dataset_same_classes(const tensor *a, const char *an, const tensor *b, const char *bn,
			 char *err)
{
	char x[256], y[256];

	if (a->shape[0] != b->shape[0])
		return err_set(err, "%s has %lld classes but %s has %lld", bn, (long long)b->shape[0], an,
			       (long long)a->shape[0]);
	for (int64_t i = 0; i < a->shape[0]; i++) {
		tensor_get_string(a, i, x, sizeof x);
		tensor_get_string(b, i, y, sizeof y);
		if (strcmp(x, y))
			return err_set(err, "%s: class %lld is '%s' but %s has '%s'", bn, (long long)i, y, an, x);
	}
	return 0;
}

int dataset_sha256(const dataset *d, char *hex, char *err)
{
	hash_sha256 *h = hash_sha256_new();

	if (!h)
		return err_set(err, "dataset: out of memory");
	hash_sha256_update(h, d->images.data, (size_t)tensor_nbytes(&d->images));
	hash_sha256_update(h, d->labels, sizeof *d->labels * (size_t)d->n);
	hash_sha256_hex(h, hex);
	hash_sha256_free(h);
	return 0;
}

void dataset_gather(const dataset *d, const int64_t *idx, int n, uint8_t *img, int *labels)
{
	size_t sz = (size_t)d->h * d->w * 3;

	for (int i = 0; i < n; i++) {
		memcpy(img + sz * i, (const uint8_t *)d->images.data + sz * idx[i], sz);
		labels[i] = d->labels[idx[i]];
	}
}
