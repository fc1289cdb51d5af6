/* npz: named arrays in a zip, read through libarchive, written by zipw (stored) or libarchive.
 * See npz.h. Members are read through the same npy reader as streams, with the size a
 * member claims never trusted: the buffer grows only as decompressed bytes arrive. */
#include "array/npz.h"

#include "util/buf.h"
#include "util/errmsg.h"
#include "array/npy.h"
#include "util/outfile.h"
#include "array/zipw.h"

#include <archive.h>
#include <archive_entry.h>
#include <limits.h>
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
	if (z->n == INT_MAX || buf_grow_array(&z->v, &z->cap, (size_t)z->n + 1, sizeof *z->v))
		return err_set(err, "%s: out of memory", name);
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

/* Names seen so far in one archive, to refuse duplicates. */
typedef struct {
	char **v;
	size_t n, cap;
} names;

static int names_add(names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], name))
			return 1;
	if (buf_grow_array(&s->v, &s->cap, s->n + 1, sizeof *s->v) || !(s->v[s->n] = strdup(name)))
		return -1;
	s->n++;
	return 0;
}

static void names_free(names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static int scan_member(struct archive *a, struct archive_entry *e, const char *path, names *seen,
		       npz_visitor fn, void *ctx, char *err)
{
	const char *mname = archive_entry_pathname(e);
	char label[ERR_MAX / 2], *name;
	size_t len;
	member m = { a, 0 };
	npy_src src = { member_read, &m, -1 };
	tensor t;
	unsigned char extra;
	int64_t got, hlen;
	int rc;

	if (!mname)
		return err_set(err, "%s: a member without a name", path);
	len = strlen(mname);
	snprintf(label, sizeof label, "%s: member '%s'", path, mname);
	if (len <= 4 || strcmp(mname + len - 4, ".npy"))
		return err_set(err, "%s: not a .npy member", label);
	name = strndup(mname, len - 4);
	if (!name)
		return err_set(err, "%s: out of memory", label);
	rc = names_add(seen, name);
	if (rc) {
		free(name);
		return err_set(err, rc < 0 ? "%s: out of memory" : "%s: duplicate member", label);
	}
	rc = npy_src_header(&src, label, &t, err);
	if (rc == 0)
		rc = err_set(err, "%s: empty member (not a .npy array)", label);
	hlen = m.done;
	/* The zip's size is only a claim: a mismatch is an error, never an allocation. */
	if (rc == 1 && archive_entry_size_is_set(e) && archive_entry_size(e) - hlen != tensor_nbytes(&t))
		rc = err_set(err, "%s: the zip claims %lld bytes, its .npy array takes %lld", label,
			     (long long)archive_entry_size(e), (long long)(hlen + tensor_nbytes(&t)));
	if (rc == 1)
		rc = fn(ctx, name, label, &t, &src, err);
	free(name);
	if (rc < 0)
		return -1;
	if (m.done - hlen < tensor_nbytes(&t)) {
		/* left unread: passed over, never held (a zip bomb the caller has no use for) */
		if (archive_read_data_skip(a) < ARCHIVE_WARN)
			return err_set(err, "%s: %s", label, archive_error_string(a));
		return 0;
	}
	got = npy_src_fill(&src, &extra, 1, label, err);
	if (got > 0)
		return err_set(err, "%s: trailing bytes after the array", label);
	return got < 0 ? -1 : 0;
}

static int scan_all(struct archive *a, const char *path, npz_visitor fn, void *ctx, char *err)
{
	struct archive_entry *e;
	names seen = { NULL, 0, 0 };
	int r, rc = 0;

	while (!rc && (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN)
			rc = err_set(err, "%s: %s", path, archive_error_string(a));
		else if (archive_entry_filetype(e) != AE_IFDIR)
			rc = scan_member(a, e, path, &seen, fn, ctx, err);
	}
	names_free(&seen);
	return rc;
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

int npz_scan(const char *path, npy_src *src, npz_visitor fn, void *ctx, char *err)
{
	struct archive *a = archive_read_new();
	pull *p = NULL;
	npy_src in;
	int rc;

	if (!src && !strcmp(path, "-")) {
		npy_src_file(&in, stdin);
		src = &in;
		path = "<stdin>";
	}
	if (!a || (src && !(p = malloc(sizeof *p)))) {
		if (a)
			archive_read_free(a);
		return err_set(err, "%s: out of memory", path);
	}
	archive_read_support_format_zip(a);
	if (src) {
		/* Streamed: members in the order of their local headers. */
		p->src = src;
		p->name = path;
		rc = archive_read_open(a, p, NULL, pull_read, NULL);
	} else {
		/* A named file is read through its central directory. */
		rc = archive_read_open_filename(a, path, CHUNK);
	}
	if (rc != ARCHIVE_OK)
		rc = err_set(err, "%s: %s", path, archive_error_string(a));
	else
		rc = scan_all(a, path, fn, ctx, err);
	archive_read_free(a);
	free(p);
	return rc ? -1 : 0;
}

/* npz_read's visitor. A member joins z only once the next one starts or the scan ends,
 * because the scanner checks for trailing bytes after the visitor has read the array. */
typedef struct {
	npz *z;
	npz_want want;
	void *ctx;
	char *name;     /* the member read last, not yet in z */
	tensor t;
} reading;

static int commit(reading *r, char *err)
{
	int rc = 0;

	if (r->name) {
		rc = npz_add_move(r->z, r->name, &r->t, err);
		tensor_free(&r->t);
		free(r->name);
		r->name = NULL;
	}
	return rc;
}

static int add_member(void *ctx, const char *name, const char *label, const tensor *hdr,
		      npy_src *data, char *err)
{
	reading *r = ctx;

	if (commit(r, err))
		return -1;
	if (r->want) {
		int w = r->want(r->ctx, name, label, hdr, err);
		if (w <= 0)
			return w;  /* 0: the scanner skips the member unread */
	}
	r->t = *hdr;
	if (npy_src_data(data, label, &r->t, err) != 1)
		return -1;
	r->name = strdup(name);
	if (!r->name) {
		tensor_free(&r->t);
		return err_set(err, "%s: out of memory", label);
	}
	return 0;
}

int npz_read_want(npz *z, const char *path, npy_src *src, npz_want want, void *ctx, char *err)
{
	reading r = { z, want, ctx, NULL, { 0 } };
	int rc = npz_scan(path, src, add_member, &r, err);

	if (!rc)
		rc = commit(&r, err);
	tensor_free(&r.t);
	free(r.name);
	return rc;
}

int npz_read_src(npz *z, npy_src *src, const char *name, char *err)
{
	return npz_read_want(z, name, src, NULL, NULL, err);
}

int npz_read(npz *z, const char *path, char *err)
{
	return npz_read_want(z, path, NULL, NULL, NULL, err);
}

int npz_want_names(void *ctx, const char *name, const char *label, const tensor *hdr, char *err)
{
	(void)label, (void)hdr, (void)err;
	for (const char *const *w = ctx; *w; w++) {
		size_t n = strlen(*w);
		if (n && (*w)[n - 1] == '/' ? !strncmp(name, *w, n) : !strcmp(name, *w))
			return 1;
	}
	return 0;
}

/* ---- writing ---- */

/* Entry name's member, "NAME.npy" (malloc'ed; NULL when out of memory). */
static char *member_name(const char *name)
{
	size_t nlen = strlen(name);
	char *m = malloc(nlen + 5);

	if (m) {
		memcpy(m, name, nlen);
		memcpy(m + nlen, ".npy", 5);
	}
	return m;
}

static int write_entry(struct archive *a, const npz_entry *en, const char *path, char *err)
{
	unsigned char hdr[1024];
	int64_t hlen = npy_format_header(&en->t, hdr, sizeof hdr, path, err);
	int64_t nbytes = tensor_nbytes(&en->t);
	struct archive_entry *e;
	char *mname;
	int rc = 0;

	if (hlen < 0)
		return -1;
	mname = member_name(en->name);
	e = archive_entry_new();
	if (!mname || !e) {
		free(mname);
		if (e)
			archive_entry_free(e);
		return err_set(err, "%s: out of memory", path);
	}
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

/* Stored archives this large are written around the page cache (outfile_direct): checkpoints. */
#define DIRECT_MIN ((int64_t)64 << 20)

typedef struct {
	outfile *o;
	int failed;           /* err holds the write error */
	char err[ERR_MAX];
} sink;

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *p, size_t n)
{
	sink *s = ctx;

	(void)a;
	if (outfile_write(s->o, p, n, s->err) < 0) {
		s->failed = 1;
		return -1;
	}
	return (la_ssize_t)n;
}

/* Stored members, written by zipw: the CRC and the copies cost a fifth of libarchive's. */
static int write_stored(const npz *z, outfile *o, const char *path, int align, char *err)
{
	const char *force = getenv("PETCNN_ZIP64");
	zipw zw;
	int rc = 0;

	zipw_init(&zw, o, path, align, force && *force && strcmp(force, "0"));
	for (int i = 0; !rc && i < z->n; i++) {
		const npz_entry *en = &z->v[i];
		unsigned char hdr[1024];
		int64_t hlen = npy_format_header(&en->t, hdr, sizeof hdr, path, err);
		char *mname;

		if (hlen < 0 || !(mname = member_name(en->name))) {
			rc = hlen < 0 ? -1 : err_set(err, "%s: out of memory", path);
			break;
		}
		rc = zipw_add(&zw, mname, hdr, (size_t)hlen, en->t.data, tensor_nbytes(&en->t), err);
		free(mname);
	}
	if (!rc)
		rc = zipw_finish(&zw, err);
	zipw_free(&zw);
	return rc;
}

int npz_write(const npz *z, const char *path, int compress, char *err)
{
	outfile o;
	struct archive *a;
	sink s = { .o = &o };
	int64_t total = 0;
	int rc = 0;

	if (!path)
		path = "-";
	for (int i = 0; i < z->n; i++)
		total += tensor_nbytes(&z->v[i].t);
	if (outfile_open(&o, path, err))
		return -1;
	if (!compress) {
		/* a checkpoint: its large members aligned, so they go to the disk uncopied */
		if (total >= DIRECT_MIN)
			outfile_direct(&o);
		if (write_stored(z, &o, path, total >= DIRECT_MIN, err)) {
			outfile_abort(&o);
			return -1;
		}
		return outfile_commit(&o, err);
	}
	a = archive_write_new();
	if (!a) {
		outfile_abort(&o);
		return err_set(err, "%s: out of memory", path);
	}
	if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
	    archive_write_set_options(a, "zip:compression=deflate") != ARCHIVE_OK ||
	    /* 1 MiB blocks, not 10 KiB: half the CPU; no padding, so the same bytes */
	    archive_write_set_bytes_per_block(a, 1 << 20) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open2(a, &s, NULL, sink_write, NULL, NULL) != ARCHIVE_OK)
		rc = err_set(err, "%s: %s", path, archive_error_string(a));
	for (int i = 0; !rc && i < z->n; i++)
		rc = write_entry(a, &z->v[i], path, err);
	if (archive_write_close(a) != ARCHIVE_OK && !rc)
		rc = err_set(err, "%s: %s", path, archive_error_string(a));
	archive_write_free(a);
	/* the write's own message says which file and why, not libarchive's echo of it */
	if (rc && s.failed)
		snprintf(err, ERR_MAX, "%s", s.err);
	if (rc) {
		outfile_abort(&o);
		return -1;
	}
	return outfile_commit(&o, err);
}
