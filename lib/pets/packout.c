/* packout: a dataset stream whose N is known only at the end. See packout.h. */
#include "pets/packout.h"

#include "util/errmsg.h"
#include "array/npy.h"
#include "array/tensor.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where packed images wait until N is known, when the output cannot take them at once (a
 * pipe): an unlinked file in $TMPDIR. Decoding twice to count first would double the
 * slowest step; keeping the images in memory would not be bounded. */
static FILE *open_stage(char *err)
{
	char path[PATH_MAX];
	const char *tmpdir = getenv("TMPDIR");
	FILE *f;
	int fd, n;

	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	n = snprintf(path, sizeof path, "%s/pet-pack.XXXXXX", tmpdir);
	if (n < 0 || (size_t)n >= sizeof path) {
		err_set(err, "%s: staging file name too long", tmpdir);
		return NULL;
	}
	if ((fd = mkstemp(path)) < 0) {
		err_sys(err, "%s: cannot create a staging file there", path);
		return NULL;
	}
	unlink(path);
	if (!(f = fdopen(fd, "w+b"))) {
		err_sys(err, "%s", path);
		close(fd);
	}
	return f;
}

static tensor images_tensor(const packout *p, int64_t n)
{
	tensor t = { .dtype = DT_U1, .ndim = 4, .shape = { n, p->h, p->w, 3 } };
	return t;
}

int packout_open(packout *p, const char *path, int w, int h, size_t n, char *err)
{
	unsigned char hdr[1024] = { 0 };
	tensor t;
	struct stat st;
	int fd;

	memset(p, 0, sizeof *p);
	p->name = strcmp(path, "-") ? path : "<stdout>";
	p->w = w;
	p->h = h;
	if (w <= 0 || h <= 0 || n > (size_t)INT64_MAX / sizeof *p->labels)
		return err_set(err, "%s: bad image size %dx%d or count %zu", p->name, w, h, n);
	p->cap = (int64_t)n;
	if (!(p->labels = malloc(sizeof *p->labels * (n ? n : 1))))
		return err_set(err, "%s: out of memory for %zu labels", p->name, n);
	t = images_tensor(p, p->cap);
	if ((p->hlen = npy_format_header(&t, hdr, sizeof hdr, p->name, err)) < 0 ||
	    outfile_open(&p->out, path, err) < 0) {
		free(p->labels);
		p->labels = NULL;
		return -1;
	}
	p->undo = 1;
	fd = fileno(p->out.fp);
	p->direct = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && !(fcntl(fd, F_GETFL) & O_APPEND) &&
		    (p->base = lseek(fd, 0, SEEK_CUR)) >= 0;
	if (!p->direct) {
		if ((p->images = open_stage(err)))
			return 0;
	} else {
		p->images = p->out.fp;
		memset(hdr, 0, sizeof hdr);  /* an interrupted run leaves no valid-looking header */
		if (fwrite(hdr, 1, (size_t)p->hlen, p->images) == (size_t)p->hlen)
			return 0;
		err_sys(err, "%s", p->name);
	}
	packout_abort(p, NULL);
	return -1;
}

int packout_add(packout *p, const uint8_t *pix, int64_t label, char *err)
{
	size_t bytes = (size_t)p->w * p->h * 3;

	if (p->packed >= p->cap)
		return err_set(err, "%s: more than the %lld images announced", p->name, (long long)p->cap);
	if (fwrite(pix, 1, bytes, p->images) != bytes)
		return err_sys(err, "%s: %s", p->name, p->direct ? "write error" : "staging file");
	p->labels[p->packed++] = label;
	return 0;
}

/* the images' header, the staged images (unless already in place), labels, classes */
static int write_stream(packout *p, const char *const *names, int64_t nclasses, char *err)
{
	tensor images = images_tensor(p, p->packed);
	tensor labels = { .dtype = DT_I8, .ndim = 1, .shape = { p->packed }, .data = p->labels };
	tensor classes;
	FILE *out = p->out.fp;
	char buf[1 << 16];
	size_t n;
	int rc;

	if (!p->direct) {
		if (npy_write_header(out, p->name, &images, err) < 0)
			return -1;
		if (fflush(p->images) != 0 || fseek(p->images, 0, SEEK_SET) != 0)
			return err_sys(err, "%s: staging file", p->name);
		while ((n = fread(buf, 1, sizeof buf, p->images)) > 0)
			if (fwrite(buf, 1, n, out) != n)
				return err_sys(err, "%s", p->name);
		if (ferror(p->images))
			return err_sys(err, "%s: staging file", p->name);
	}
	if (npy_write(out, p->name, &labels, err) < 0)
		return -1;
	if (tensor_from_strings(&classes, names, nclasses, err) < 0)
		return -1;
	rc = npy_write(out, p->name, &classes, err);
	tensor_free(&classes);
	if (rc == 0 && p->direct) {
		unsigned char hdr[1024];
		int64_t len = npy_format_header(&images, hdr, sizeof hdr, p->name, err);
		if (len < 0)
			return -1;
		if (len != p->hlen)  /* numpy's room for 21 digits makes this impossible */
			return err_set(err, "%s: the images' header changed length", p->name);
		if (fseeko(out, p->base, SEEK_SET) != 0 || fwrite(hdr, 1, (size_t)len, out) != (size_t)len ||
		    fseeko(out, 0, SEEK_END) != 0)
			return err_sys(err, "%s", p->name);
	}
	return rc;
}

/* the staging file and the labels; the output is outfile's to close */
static void release(packout *p)
{
	if (p->images && !p->direct)
		fclose(p->images);
	p->images = NULL;
	free(p->labels);
	p->labels = NULL;
}

int packout_finish(packout *p, const char *const *classes, int64_t nclasses, char *err)
{
	int rc;

	if (write_stream(p, classes, nclasses, err) < 0)
		return -1;
	p->undo = 0;  /* a failed commit removes -o's temporary itself; stdout's file stays */
	rc = outfile_commit(&p->out, err);
	release(p);
	return rc;
}

int packout_abort(packout *p, char *err)
{
	int rc = 0;

	if (p->undo && p->out.path) {
		outfile_abort(&p->out);
	} else if (p->undo && p->direct) {
		fflush(p->out.fp);
		if (ftruncate(fileno(p->out.fp), p->base) < 0)
			rc = err_sys(err, "%s: cannot remove what was written", p->name);
	}
	p->undo = 0;
	release(p);
	return rc;
}
