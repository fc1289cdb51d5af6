/* npz: named arrays in a zip through libarchive.
 * See npz.h. Members are read through the same npy reader as streams, with the size a
 * member claims never trusted: the buffer grows only as decompressed bytes arrive. */
#include "npz.h"

#include "err.h"
#include "npy.h"
#include "outfile.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK ((size_t)1 << 16)
/* archive_write_data takes a size_t but answers in a la_ssize_t; stay well inside both. */
#define WRITE_CHUNK ((size_t)1 << 26)

void npz_init(npz *z)
{
	z->v = NULL;
	z->n = z->cap = 0;
}

void npz_free(npz *z)
{
	for (int i = 0; i < z->n; i++) {
		free(z->v[i].name);
		tensor_free(&z->v[i].t);
	}
	free(z->v);
	npz_init(z);
}

static int find(const npz *z, const char *name)
{
	for (int i = 0; i < z->n; i++)
		if (!strcmp(z->v[i].name, name))
			return i;
	return -1;
}

const tensor *npz_get(const npz *z, const char *name)
{
	int i = find(z, name);

	return i < 0 ? NULL : &z->v[i].t;
}

int npz_add_move(npz *z, const char *name, tensor *t, char *err)
{
	int i = find(z, name);

	if (i >= 0) {
		tensor_free(&z->v[i].t);
		z->v[i].t = *t;
		t->data = NULL;
		return 0;
	}
	if (z->n == z->cap) {
		int cap = z->cap ? z->cap * 2 : 16;
		npz_entry *v;
		if (cap <= z->cap || (size_t)cap > SIZE_MAX / sizeof *v)
			return err_set(err, "%s: too many arrays", name);
		v = realloc(z->v, (size_t)cap * sizeof *v);
		if (!v)
			return err_set(err, "%s: out of memory", name);
		z->v = v;
		z->cap = cap;
	}
	z->v[z->n].name = strdup(name);
	if (!z->v[z->n].name)
		return err_set(err, "%s: out of memory", name);
	z->v[z->n].t = *t;
	z->n++;
	t->data = NULL;
	return 0;
}

int npz_add(npz *z, const char *name, const tensor *t, char *err)
{
	tensor c;
	int64_t nbytes;

	if (tensor_alloc(&c, t->dtype, t->ndim, t->shape, t->ulen, err))
		return -1;
	nbytes = tensor_nbytes(t);
	if (nbytes > 0)
		memcpy(c.data, t->data, (size_t)nbytes);
	if (npz_add_move(z, name, &c, err)) {
		tensor_free(&c);
		return -1;
	}
	return 0;
}

/* ---- reading ---- */

/* A zip member as an npy_src. */
typedef struct {
	struct archive *a;
	int64_t done;   /* bytes read so far */
} member;

static ptrdiff_t member_read(void *ctx, void *buf, size_t n, const char *name, char *err)
{
	member *m = ctx;
	la_ssize_t r = archive_read_data(m->a, buf, n);

	if (r < 0)
		return err_set(err, "%s: %s", name, archive_error_string(m->a));
	m->done += r;
	return (ptrdiff_t)r;
}

static int read_member(npz *z, struct archive *a, struct archive_entry *e, const char *path,
		       char *err)
{
	const char *mname = archive_entry_pathname(e);
	char label[ERR_MAX / 2], *name;
	size_t len;
	member m = { a, 0 };
	npy_src src = { member_read, &m, -1 };
	tensor t;
	unsigned char extra;
	int64_t got;

	if (!mname)
		return err_set(err, "%s: a member without a name", path);
	len = strlen(mname);
	snprintf(label, sizeof label, "%s: member '%s'", path, mname);
	if (len <= 4 || strcmp(mname + len - 4, ".npy"))
		return err_set(err, "%s: not a .npy member", label);
	name = strndup(mname, len - 4);
	if (!name)
		return err_set(err, "%s: out of memory", label);
	if (find(z, name) >= 0) {
		free(name);
		return err_set(err, "%s: duplicate member", label);
	}
	int rc = npy_src_header(&src, label, &t, err);
	if (rc == 0)
		err_set(err, "%s: empty member (not a .npy array)", label);
	/* The zip's size is only a claim: a mismatch is an error, never an allocation. */
	if (rc == 1 && archive_entry_size_is_set(e) &&
	    archive_entry_size(e) - m.done != tensor_nbytes(&t)) {
		rc = err_set(err, "%s: the zip claims %lld bytes, its .npy array takes %lld", label,
			     (long long)archive_entry_size(e), (long long)(m.done + tensor_nbytes(&t)));
	}
	if (rc == 1)
		rc = npy_src_data(&src, label, &t, err);
	if (rc != 1) {
		free(name);
		return -1;
	}
	got = npy_src_fill(&src, &extra, 1, label, err);
	if (got != 0) {
		if (got > 0)
			err_set(err, "%s: trailing bytes after the array", label);
		tensor_free(&t);
		free(name);
		return -1;
	}
	rc = npz_add_move(z, name, &t, err);
	if (rc)
		tensor_free(&t);
	free(name);
	return rc;
}

static int read_all(npz *z, struct archive *a, const char *path, char *err)
{
	struct archive_entry *e;
	int r;

	while ((r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN)
			return err_set(err, "%s: %s", path, archive_error_string(a));
		if (archive_entry_filetype(e) == AE_IFDIR)
			continue;
		if (read_member(z, a, e, path, err))
			return -1;
	}
	return 0;
}

/* libarchive pulling from an npy_src (stdin after a sniff, a pipe). */
typedef struct {
	npy_src *src;
	const char *name;
	unsigned char buf[CHUNK];
	char err[ERR_MAX];
} pull;

static la_ssize_t pull_read(struct archive *a, void *ctx, const void **out)
{
	pull *p = ctx;
	ptrdiff_t r = p->src->read(p->src->ctx, p->buf, sizeof p->buf, p->name, p->err);

	if (r < 0) {
		archive_set_error(a, -1, "%s", p->err);
		return -1;
	}
	*out = p->buf;
	return r;
}

static int read_opened(npz *z, struct archive *a, int rc, const char *path, char *err)
{
	if (rc != ARCHIVE_OK)
		err_set(err, "%s: %s", path, archive_error_string(a));
	else
		rc = read_all(z, a, path, err);
	archive_read_free(a);
	return rc ? -1 : 0;
}

static struct archive *reader(void)
{
	struct archive *a = archive_read_new();

	if (a)
		archive_read_support_format_zip(a);
	return a;
}

int npz_read_src(npz *z, npy_src *src, const char *name, char *err)
{
	struct archive *a = reader();
	pull *p = malloc(sizeof *p);

	if (!a || !p) {
		free(p);
		if (a)
			archive_read_free(a);
		return err_set(err, "%s: out of memory", name);
	}
	p->src = src;
	p->name = name;
	int rc = read_opened(z, a, archive_read_open(a, p, NULL, pull_read, NULL), name, err);
	free(p);
	return rc;
}

int npz_read(npz *z, const char *path, char *err)
{
	struct archive *a;

	if (!strcmp(path, "-")) {
		npy_src s;
		npy_src_file(&s, stdin);
		return npz_read_src(z, &s, "<stdin>", err);
	}
	a = reader();
	if (!a)
		return err_set(err, "%s: out of memory", path);
	return read_opened(z, a, archive_read_open_filename(a, path, CHUNK), path, err);
}

/* ---- writing ---- */

static int write_entry(struct archive *a, const npz_entry *en, const char *path, char *err)
{
	unsigned char hdr[1024];
	int64_t hlen = npy_format_header(&en->t, hdr, sizeof hdr, path, err);
	int64_t nbytes = tensor_nbytes(&en->t);
	struct archive_entry *e;
	size_t nlen = strlen(en->name);
	char *mname;
	int rc = 0;

	if (hlen < 0)
		return -1;
	mname = malloc(nlen + 5);
	e = archive_entry_new();
	if (!mname || !e) {
		free(mname);
		if (e)
			archive_entry_free(e);
		return err_set(err, "%s: out of memory", path);
	}
	memcpy(mname, en->name, nlen);
	memcpy(mname + nlen, ".npy", 5);
	archive_entry_set_pathname(e, mname);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, hlen + nbytes);
	/* No mtime: the zip's DOS time is then the fixed 1980-01-01 whatever the clock or
	 * time zone, so the same arrays give the same bytes. */
	if (archive_write_header(a, e) < ARCHIVE_WARN ||
	    archive_write_data(a, hdr, (size_t)hlen) != (la_ssize_t)hlen)
		rc = err_set(err, "%s: %s: %s", path, mname, archive_error_string(a));
	for (int64_t off = 0; !rc && off < nbytes;) {
		size_t n = nbytes - off < (int64_t)WRITE_CHUNK ? (size_t)(nbytes - off) : WRITE_CHUNK;
		la_ssize_t w = archive_write_data(a, (const unsigned char *)en->t.data + off, n);
		if (w <= 0)
			rc = err_set(err, "%s: %s: %s", path, mname, archive_error_string(a));
		else
			off += w;
	}
	if (!rc && archive_write_finish_entry(a) < ARCHIVE_WARN)
		rc = err_set(err, "%s: %s: %s", path, mname, archive_error_string(a));
	archive_entry_free(e);
	free(mname);
	return rc;
}

int npz_write(const npz *z, const char *path, int compress, char *err)
{
	outfile o;
	struct archive *a;
	int rc = 0;

	if (!path)
		path = "-";
	if (outfile_open(&o, path, err))
		return -1;
	a = archive_write_new();
	if (!a) {
		outfile_abort(&o);
		return err_set(err, "%s: out of memory", path);
	}
	if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
	    archive_write_set_options(a, compress ? "zip:compression=deflate"
						  : "zip:compression=store") != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_FILE(a, o.fp) != ARCHIVE_OK)
		rc = err_set(err, "%s: %s", path, archive_error_string(a));
	for (int i = 0; !rc && i < z->n; i++)
		rc = write_entry(a, &z->v[i], path, err);
	if (archive_write_close(a) != ARCHIVE_OK && !rc)
		rc = err_set(err, "%s: %s", path, archive_error_string(a));
	archive_write_free(a);
	if (rc) {
		outfile_abort(&o);
		return -1;
	}
	return outfile_commit(&o, err);
}
