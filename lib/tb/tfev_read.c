/* tfev_read: Events decoded a summary value at a time, and the directory walk that finds
 * a log folder's event files. See tfev_read.h. */
#include "tb/tfev_read.h"

#include "tb/tfev.h"
#include "util/buf.h"
#include "util/errmsg.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint32_t get_u32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
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
		if (buf_grow_array(&pl->v, &pl->cap, pl->n + 1, sizeof *pl->v)) {
			free(p);
			rc = err_set(err, "%s: out of memory", dir);
			break;
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
		if (f.field == TFEV_EV_WALL_TIME && f.wire == PB_FIXED64)
			it->wall_time = pb_as_double(&f);
		else if (f.field == TFEV_EV_STEP && f.wire == PB_VARINT)
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
		case TFEV_HIS_MIN: item->min = d; break;
		case TFEV_HIS_MAX: item->max = d; break;
		case TFEV_HIS_NUM: item->num = d; break;
		case TFEV_HIS_SUM: item->sum = d; break;
		case TFEV_HIS_SUMSQ: item->sum_squares = d; break;
		case TFEV_HIS_LIMIT: item->limits = f; break;
		case TFEV_HIS_COUNT: item->counts = f; break;
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
		if (f.field == TFEV_IMG_HEIGHT)
			item->height = (int)f.u;
		else if (f.field == TFEV_IMG_WIDTH)
			item->width = (int)f.u;
		else if (f.field == TFEV_IMG_COLORSPACE)
			item->colorspace = (int)f.u;
		else if (f.field == TFEV_IMG_DATA && f.wire == PB_LEN) {
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
		if (f.field == TFEV_TEN_DTYPE)
			item->dtype = (int)f.u;
		else if (f.field == TFEV_TEN_STRING && f.wire == PB_LEN && !nstr++) {
			item->kind = TFEV_TEXT;
			item->data = f.data;
			item->len = f.len;
		} else if (f.field == TFEV_TEN_FLOAT && f.wire == PB_LEN && f.len == 4) {
			pb_field one = { .wire = PB_FIXED32 };
			one.u = get_u32le(f.data);
			item->kind = TFEV_SCALAR;
			item->value = pb_as_float(&one);
		} else if (f.field == TFEV_TEN_FLOAT && f.wire == PB_FIXED32) {
			item->kind = TFEV_SCALAR;
			item->value = pb_as_float(&f);
		} else if (f.field == TFEV_TEN_CONTENT && f.wire == PB_LEN && f.len == 4 &&
			   item->dtype == TFEV_DT_FLOAT) {
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
		if (f.field == TFEV_VAL_TAG && f.wire == PB_LEN) {
			item->tag = (const char *)f.data;
			item->tag_len = f.len;
		} else if (f.field == TFEV_VAL_SIMPLE && f.wire == PB_FIXED32) {
			item->kind = TFEV_SCALAR;
			item->value = pb_as_float(&f);
		} else if (f.field == TFEV_VAL_HISTO && f.wire == PB_LEN) {
			bad |= decode_histo(item, &f);
		} else if (f.field == TFEV_VAL_IMAGE && f.wire == PB_LEN) {
			bad |= decode_image(item, &f);
		} else if (f.field == TFEV_VAL_TENSOR && f.wire == PB_LEN) {
			bad |= decode_tensor(item, &f);
		} else if (f.field != TFEV_VAL_META) {
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
				if (f.field != TFEV_SUM_VALUE || f.wire != PB_LEN)
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
		if (f.field == TFEV_EV_WALL_TIME || f.field == TFEV_EV_STEP)
			continue;
		if (f.field == TFEV_EV_SUMMARY && f.wire == PB_LEN) {
			pb_reader_init(&it->sum, f.data, f.len);
			it->in_summary = 1;
			continue;
		}
		item->kind = f.field == TFEV_EV_FILE_VERSION ? TFEV_VERSION :
			     f.field == TFEV_EV_GRAPH_DEF ? TFEV_GRAPH : TFEV_OTHER;
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
		if (f.field != TFEV_GR_NODE || f.wire != PB_LEN)
			continue;
		pb_reader_init(&r, f.data, f.len);
		while ((rc = pb_next(&r, &g)) == 1) {
			if (g.wire != PB_LEN)
				continue;
			if (g.field == TFEV_NODE_NAME) {
				nv->name = (const char *)g.data;
				nv->name_len = g.len;
			} else if (g.field == TFEV_NODE_OP) {
				nv->op = (const char *)g.data;
				nv->op_len = g.len;
			} else if (g.field == TFEV_NODE_INPUT) {
				nv->ninputs++;
			}
		}
		return rc < 0 ? -1 : 1;
	}
	return rc;
}
