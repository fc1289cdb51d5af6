/* splitout: pet-split's outputs, all made or none (see splitout.h). */
#include "pets/splitout.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "util/outfile.h"

/* What has been made so far, for undoing it on failure. */
typedef struct {
	const petset *s;
	const int *breed;
	int k;
	const splitout_opts *o;
	char tmp[PATH_MAX];      /* the layout being built, "" when none */
	int made_lists, made_folders;
	outfile lists[2];
	int nlists;
} out;

static const char *const split_name[] = { "", "train", "test" };

/* A path from a format into buf[PATH_MAX]; too long is an error, never silently cut. */
__attribute__((format(printf, 3, 4))) static int pathf(char *buf, char *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		return err_set(err, "path too long: %.60s...", buf);
	return 0;
}

/* Rows of one split (or both, with the split column, when split is PETSET_NONE). */
static int write_list(FILE *f, const char *name, const out *u, int split, char *err)
{
	const petset *s = u->s;
	const char **names = malloc(sizeof *names * (size_t)u->k);
	char path[PATH_MAX];
	petset_writer w;
	int rc = -1;

	if (!names)
		return err_set(err, "%s: out of memory", name);
	for (int c = 0; c < u->k; c++)
		names[c] = s->breeds[u->breed[c]].name;
	if (petset_list_write_start(&w, f, name, names, u->k, split == PETSET_NONE, err) < 0)
		goto out;
	for (int c = 0; c < u->k; c++) {
		const petset_breed *b = &s->breeds[u->breed[c]];
		for (size_t i = b->first; i < b->first + b->n; i++) {
			const petset_item *it = &s->items[i];
			if (it->split == PETSET_NONE || (split && it->split != split))
				continue;
			if (pathf(path, err, "%s/images/%s", s->dir, it->file) ||
			    petset_list_write_row(&w, path, c,
						  split ? NULL : it->split == PETSET_TEST ? "test" : "train", err) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	free(names);
	return rc;
}

/* Undoes prepare_folders, however far it got (what is missing fails harmlessly; a path
 * too long was never made). */
static void remove_layout(out *u)
{
	const petset *s = u->s;
	char path[PATH_MAX];

	for (int c = 0; c < u->k; c++) {
		const petset_breed *b = &s->breeds[u->breed[c]];
		for (size_t i = b->first; i < b->first + b->n; i++)
			if (s->items[i].split != PETSET_NONE &&
			    !pathf(path, NULL, "%s/%s/%s/%s", u->tmp, split_name[s->items[i].split], b->name,
				   s->items[i].file))
				unlink(path);
		for (int i = 1; i <= 2; i++)
			if (!pathf(path, NULL, "%s/%s/%s", u->tmp, split_name[i], b->name))
				rmdir(path);
	}
	for (int i = 1; i <= 2; i++)
		if (!pathf(path, NULL, "%s/%s", u->tmp, split_name[i]))
			rmdir(path);
	rmdir(u->tmp);
}

/* Takes back what was made; returns -1 for the caller to return (err already says why). */
static int undo(out *u)
{
	for (int i = 0; i < u->nlists; i++)
		outfile_abort(&u->lists[i]);
	u->nlists = 0;
	if (u->tmp[0])
		remove_layout(u);
	if (u->made_folders)
		rmdir(u->o->folders);
	if (u->made_lists)
		rmdir(u->o->lists);
	return -1;
}

/* mkdir that says whether it made the folder. */
static int make_dir(const char *dir, int *made)
{
	*made = mkdir(dir, 0777) == 0;
	return *made || errno == EEXIST ? 0 : -1;
}

/* Builds DIR/.pet-split.XXXXXX/{train,test}/<class>/ with symbolic links to the images. */
static int prepare_folders(out *u, char *err)
{
	const petset *s = u->s;
	const char *dir = u->o->folders;
	char path[PATH_MAX], img[PATH_MAX], made[PATH_MAX];
	struct stat st;

	if (make_dir(dir, &u->made_folders) < 0)
		return err_sys(err, "%s", dir);
	for (int i = 1; i <= 2; i++) {
		if (pathf(path, err, "%s/%s", dir, split_name[i]))
			return -1;
		if (lstat(path, &st) == 0)
			return err_set(err, "%s already exists: remove it first", path);
	}
	if (pathf(made, err, "%s/.pet-split.XXXXXX", dir))
		return -1;
	if (!mkdtemp(made))
		return err_sys(err, "%s", dir);
	memcpy(u->tmp, made, sizeof made);
	for (int i = 1; i <= 2; i++) {
		if (pathf(path, err, "%s/%s", u->tmp, split_name[i]))
			return -1;
		if (mkdir(path, 0777) < 0)
			return err_sys(err, "%s", path);
		for (int c = 0; c < u->k; c++) {
			if (pathf(path, err, "%s/%s/%s", u->tmp, split_name[i], s->breeds[u->breed[c]].name))
				return -1;
			if (mkdir(path, 0777) < 0)
				return err_sys(err, "%s", path);
		}
	}
	for (int c = 0; c < u->k; c++) {
		const petset_breed *b = &s->breeds[u->breed[c]];
		for (size_t i = b->first; i < b->first + b->n; i++) {
			const petset_item *it = &s->items[i];
			if (it->split == PETSET_NONE)
				continue;
			if (pathf(img, err, "%s/images/%s", s->dir, it->file) ||
			    pathf(path, err, "%s/%s/%s/%s", u->tmp, split_name[it->split], b->name, it->file))
				return -1;
			if (symlink(img, path) < 0)
				return err_sys(err, "%s", path);
		}
	}
	return 0;
}

/* The lists: one on f, or DIR/train.tsv and DIR/test.tsv written to temporary files. */
static int write_lists(out *u, char *err)
{
	char path[PATH_MAX];

	if (!u->o->lists)
		return write_list(u->o->f, u->o->f_name, u, PETSET_NONE, err);
	if (make_dir(u->o->lists, &u->made_lists) < 0)
		return err_sys(err, "%s", u->o->lists);
	for (int i = 0; i < 2; i++) {
		if (pathf(path, err, "%s/%s.tsv", u->o->lists, split_name[i + 1]) ||
		    outfile_open(&u->lists[i], path, err) < 0)
			return -1;
		u->nlists++;
		if (write_list(u->lists[i].fp, path, u, i + 1, err) < 0)
			return -1;
	}
	return 0;
}

/* The final names, last. */
static int commit(out *u, char *err)
{
	char from[PATH_MAX], to[PATH_MAX];

	for (int i = 0; i < u->nlists; i++)
		if (outfile_commit(&u->lists[i], err) < 0) {
			u->nlists = 0;  /* committed or removed already */
			return -1;
		}
	u->nlists = 0;
	if (!u->tmp[0])
		return 0;
	for (int i = 1; i <= 2; i++) {
		if (pathf(from, err, "%s/%s", u->tmp, split_name[i]) ||
		    pathf(to, err, "%s/%s", u->o->folders, split_name[i]))
			return -1;
		if (rename(from, to) < 0) {
			int e = errno;

			/* back into the temporary folder, which undo() removes (these paths were
			 * made above: they fit) */
			if (i == 2 && !pathf(to, NULL, "%s/%s", u->o->folders, split_name[1]) &&
			    !pathf(from, NULL, "%s/%s", u->tmp, split_name[1]))
				rename(to, from);
			errno = e;
			return err_sys(err, "%s/%s", u->o->folders, split_name[i]);
		}
	}
	return 0;
}

int splitout_write(const petset *s, const int *classes, int k, const splitout_opts *o, char *err)
{
	out u = { .s = s, .breed = classes, .k = k, .o = o };

	if ((o->folders && prepare_folders(&u, err)) || write_lists(&u, err) || commit(&u, err))
		return undo(&u);
	/* the outputs are in place: a temporary folder left behind is the only failure */
	if (u.tmp[0] && rmdir(u.tmp) < 0)
		return err_sys(err, "%s", u.tmp);
	return 0;
}
