/* petset: the Pet dataset's folder and our TSV image lists. See petset.h. */
#include "pets/petset.h"

#include "util/errmsg.h"
#include "img/imgdec.h"
#include "util/rng.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static char *dupstr(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

/* Grows *p (of *cap elements of size sz) to hold need elements. */
static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
	size_t nc = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return 0;
	while (nc < need) {
		if (nc > SIZE_MAX / 2 / sz)
			return -1;
		nc *= 2;
	}
	q = realloc(*p, nc * sz);
	if (!q)
		return -1;
	*p = q;
	*cap = nc;
	return 0;
}

/* "Abyssinian_12" -> breed length 10, number 12; -1 if the stem has no "_<digits>" tail. */
static int split_stem(const char *stem, size_t *blen, long *num)
{
	const char *u = strrchr(stem, '_');
	char *end;

	if (!u || u == stem || !isdigit((unsigned char)u[1]))
		return -1;
	errno = 0;
	*num = strtol(u + 1, &end, 10);
	if (*end || errno)
		return -1;
	*blen = (size_t)(u - stem);
	return 0;
}

static int cmp_breed(const void *a, const void *b)
{
	const petset_breed *x = a, *y = b;
	int c = strcasecmp(x->name, y->name);
	return c ? c : strcmp(x->name, y->name);
}

static int cmp_item(const void *a, const void *b)
{
	const petset_item *x = a, *y = b;

	if (x->breed != y->breed)
		return x->breed < y->breed ? -1 : 1;
	if (x->num != y->num)
		return x->num < y->num ? -1 : 1;
	return strcmp(x->stem, y->stem);
}

static int cmp_stem(const void *key, const void *b)
{
	return strcmp(key, ((const petset_item *)b)->stem);
}

int petset_find_breed(const petset *s, const char *name)
{
	for (int i = 0; i < s->nbreeds; i++)
		if (!strcasecmp(s->breeds[i].name, name))
			return i;
	return -1;
}

/* Items sorted by stem for lookups; returns an array of pointers into s->items. */
static petset_item *find_item(petset_item **by_stem, size_t n, const char *stem)
{
	petset_item **p = NULL;
	size_t lo = 0, hi = n;

	while (lo < hi) {  /* bsearch over pointers */
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_stem(stem, by_stem[mid]);
		if (!c) {
			p = &by_stem[mid];
			break;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return p ? *p : NULL;
}

static int cmp_pitem(const void *a, const void *b)
{
	return strcmp((*(petset_item *const *)a)->stem, (*(petset_item *const *)b)->stem);
}

/* One line of list.txt / trainval.txt / test.txt: "Image CLASS-ID SPECIES BREED-ID". */
static int parse_row(char *line, char **stem, int *species)
{
	char *save, *f[4];
	int n = 0;
	long v;
	char *end;

	for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 4; t = strtok_r(NULL, " \t\r\n", &save))
		f[n++] = t;
	if (n < 3)
		return -1;
	v = strtol(f[2], &end, 10);
	if (*end || (v != 1 && v != 2))
		return -1;
	*stem = f[0];
	*species = (int)v;
	return 0;
}

static int read_list(petset *s, const char *path, char *err)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *stem;
	size_t lcap = 0, icap = 0, bcap = 0;
	long lineno = 0;
	int species, r = -1;

	if (!f)
		return err_sys(err, "%s", path);
	while (getline(&line, &lcap, f) > 0) {
		size_t blen;
		long num;
		int b;
		lineno++;
		if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
			continue;
		if (parse_row(line, &stem, &species) < 0 || split_stem(stem, &blen, &num) < 0) {
			err_set(err, "%s:%ld: expected 'Image CLASS-ID SPECIES BREED-ID'", path, lineno);
			goto out;
		}
		/* names become folder names (--folders) and TSV fields: keep them plain */
		if (stem[0] == '.' || strpbrk(stem, "/\\\t")) {
			err_set(err, "%s:%ld: bad image name '%s'", path, lineno, stem);
			goto out;
		}
		for (b = 0; b < s->nbreeds; b++)
			if (strlen(s->breeds[b].name) == blen && !strncmp(s->breeds[b].name, stem, blen))
				break;
		if (b == s->nbreeds) {
			if (grow((void **)&s->breeds, &bcap, (size_t)s->nbreeds + 1, sizeof *s->breeds) < 0 ||
			    !(s->breeds[b].name = dupstr(stem, blen))) {
				err_set(err, "%s: out of memory", path);
				goto out;
			}
			s->breeds[b].species = species;
			s->nbreeds++;
		}
		if (grow((void **)&s->items, &icap, s->nitems + 1, sizeof *s->items) < 0 ||
		    !(s->items[s->nitems].stem = dupstr(stem, strlen(stem)))) {
			err_set(err, "%s: out of memory", path);
			goto out;
		}
		petset_item *it = &s->items[s->nitems++];
		it->file = NULL;
		it->num = num;
		it->breed = b;   /* index in discovery order for now; remapped after sorting */
		it->official = it->split = PETSET_NONE;
	}
	if (ferror(f)) {
		err_sys(err, "%s", path);
		goto out;
	}
	if (!s->nitems) {
		err_set(err, "%s: no images listed", path);
		goto out;
	}
	r = 0;
out:
	free(line);
	fclose(f);
	return r;
}

/* Sorts breeds (case-insensitively, as CLASS-IDs go) and items, keeping item->breed right. */
static int sort_set(petset *s, char *err)
{
	int *map = malloc(sizeof(int) * (size_t)s->nbreeds);
	petset_breed *old = malloc(sizeof *old * (size_t)s->nbreeds);

	if (!map || !old) {
		free(map);
		free(old);
		return err_set(err, "%s: out of memory", s->dir);
	}
	memcpy(old, s->breeds, sizeof *old * (size_t)s->nbreeds);
	qsort(s->breeds, (size_t)s->nbreeds, sizeof *s->breeds, cmp_breed);
	for (int i = 0; i < s->nbreeds; i++)
		for (int j = 0; j < s->nbreeds; j++)
			if (s->breeds[j].name == old[i].name)
				map[i] = j;
	for (size_t i = 0; i < s->nitems; i++)
		s->items[i].breed = map[s->items[i].breed];
	qsort(s->items, s->nitems, sizeof *s->items, cmp_item);
	free(map);
	free(old);
	return 0;
}

static int read_official(petset *s, petset_item **by_stem, const char *path, int split, char *err)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *stem;
	size_t lcap = 0;
	long lineno = 0;
	int species;

	if (!f)
		return err_sys(err, "%s", path);
	while (getline(&line, &lcap, f) > 0) {
		petset_item *it;
		lineno++;
		if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
			continue;
		if (parse_row(line, &stem, &species) < 0) {
			err_set(err, "%s:%ld: expected 'Image CLASS-ID SPECIES BREED-ID'", path, lineno);
			free(line);
			fclose(f);
			return -1;
		}
		if ((it = find_item(by_stem, s->nitems, stem)))
			it->official = split;
	}
	free(line);
	if (ferror(f)) {
		err_sys(err, "%s", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static int has_ext(const char *name, const char *ext)
{
	size_t n = strlen(name), e = strlen(ext);
	return n > e && !strcasecmp(name + n - e, ext);
}

static int push_name(char ***v, size_t *n, size_t *cap, const char *name)
{
	char *d = dupstr(name, strlen(name));

	if (!d || grow((void **)v, cap, *n + 1, sizeof **v) < 0) {
		free(d);
		return -1;
	}
	(*v)[(*n)++] = d;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the first bytes of a file to tell an image from anything else. */
static int looks_like_image(const char *dir, const char *name)
{
	char path[PATH_MAX];
	unsigned char b[8];
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
		return 0;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, b, sizeof b);
	close(fd);
	return n > 0 && imgdec_sniff(b, (size_t)n) != IMGDEC_UNKNOWN;
}

static int scan_images(petset *s, petset_item **by_stem, const char *dir, char *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t ucap = 0, ncap = 0;

	if (!d)
		return err_sys(err, "%s", dir);
	while ((errno = 0, e = readdir(d))) {
		const char *n = e->d_name, *dot = strrchr(n, '.');
		petset_item *it;
		char stem[NAME_MAX + 1];
		int ok;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		ok = strncmp(n, "._", 2) && (has_ext(n, ".jpg") || has_ext(n, ".jpeg") ||
					     has_ext(n, ".png") || has_ext(n, ".gif")) &&
		     looks_like_image(dir, n);
		if (!ok) {
			if (push_name(&s->unusable, &s->nunusable, &ucap, n) < 0)
				goto oom;
			continue;
		}
		memcpy(stem, n, (size_t)(dot - n));
		stem[dot - n] = 0;
		it = find_item(by_stem, s->nitems, stem);
		if (!it || it->file) {  /* unlisted, or a second file for one stem (x.jpg and x.png) */
			if (push_name(&s->unlisted, &s->nunlisted, &ncap, n) < 0)
				goto oom;
			continue;
		}
		if (!(it->file = dupstr(n, strlen(n))))
			goto oom;
	}
	if (errno) {
		err_sys(err, "%s", dir);
		closedir(d);
		return -1;
	}
	closedir(d);
	/* readdir's order is the file system's: sort so messages are reproducible */
	qsort(s->unusable, s->nunusable, sizeof *s->unusable, cmp_str);
	qsort(s->unlisted, s->nunlisted, sizeof *s->unlisted, cmp_str);
	for (size_t i = 0; i < s->nitems; i++)
		s->nmissing += !s->items[i].file;
	return 0;
oom:
	closedir(d);
	return err_set(err, "%s: out of memory", dir);
}

int petset_load(petset *s, const char *dir, char *err)
{
	char path[PATH_MAX];
	petset_item **by_stem = NULL;
	int r = -1;

	memset(s, 0, sizeof *s);
	if (!(s->dir = realpath(dir, NULL)))
		return err_sys(err, "%s", dir);
	if (strpbrk(s->dir, "\t\n"))
		return err_set(err, "%s: a tab or newline in the path cannot go in a TSV list", dir);
	if (snprintf(path, sizeof path, "%s/annotations/list.txt", s->dir) >= (int)sizeof path)
		return err_set(err, "%s: path too long", dir);
	if (read_list(s, path, err) < 0 || sort_set(s, err) < 0)
		return -1;
	if (!(by_stem = malloc(sizeof *by_stem * s->nitems)))
		return err_set(err, "%s: out of memory", dir);
	for (size_t i = 0; i < s->nitems; i++)
		by_stem[i] = &s->items[i];
	qsort(by_stem, s->nitems, sizeof *by_stem, cmp_pitem);
	for (size_t i = 1; i < s->nitems; i++)
		if (!strcmp(by_stem[i - 1]->stem, by_stem[i]->stem)) {
			err_set(err, "%s: %s listed twice", path, by_stem[i]->stem);
			goto out;
		}
	snprintf(path, sizeof path, "%s/annotations/trainval.txt", s->dir);
	if (read_official(s, by_stem, path, PETSET_TRAIN, err) < 0)
		goto out;
	snprintf(path, sizeof path, "%s/annotations/test.txt", s->dir);
	if (read_official(s, by_stem, path, PETSET_TEST, err) < 0)
		goto out;
	snprintf(path, sizeof path, "%s/images", s->dir);
	if (scan_images(s, by_stem, path, err) < 0)
		goto out;
	r = 0;
out:
	free(by_stem);
	return r;
}

void petset_free(petset *s)
{
	for (int i = 0; i < s->nbreeds; i++)
		free(s->breeds[i].name);
	for (size_t i = 0; i < s->nitems; i++) {
		free(s->items[i].stem);
		free(s->items[i].file);
	}
	for (size_t i = 0; i < s->nunusable; i++)
		free(s->unusable[i]);
	for (size_t i = 0; i < s->nunlisted; i++)
		free(s->unlisted[i]);
	free(s->unusable);
	free(s->unlisted);
	free(s->breeds);
	free(s->items);
	free(s->dir);
	memset(s, 0, sizeof *s);
}

void petset_split_fraction(petset *s, const int *classes, int k, double frac, uint64_t seed)
{
	int64_t *idx = malloc(sizeof *idx * (s->nitems ? s->nitems : 1));

	for (int c = 0; c < k; c++) {
		size_t n = 0, ntest;
		rng r;
		for (size_t i = 0; i < s->nitems; i++)
			if (s->items[i].breed == classes[c] && s->items[i].file)
				idx[n++] = (int64_t)i;
		/* round half up, but keep one of each side when the class has two or more images */
		ntest = (size_t)floor(frac * (double)n + 0.5);
		if (frac > 0 && ntest == 0 && n >= 2)
			ntest = 1;
		if (frac < 1 && ntest == n && n >= 2)
			ntest = n - 1;
		rng_stream(&r, seed, (uint64_t)classes[c]);
		rng_shuffle_i64(&r, idx, n);
		for (size_t i = 0; i < n; i++)
			s->items[idx[i]].split = i < ntest ? PETSET_TEST : PETSET_TRAIN;
	}
	free(idx);
}

size_t petset_split_official(petset *s, const int *classes, int k)
{
	size_t neither = 0;

	for (size_t i = 0; i < s->nitems; i++)
		for (int c = 0; c < k; c++)
			if (s->items[i].breed == classes[c] && s->items[i].file) {
				s->items[i].split = s->items[i].official;
				neither += s->items[i].official == PETSET_NONE;
			}
	return neither;
}

/* --- image lists -------------------------------------------------------------------------- */

void petset_list_free(petset_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].path);
	for (int64_t i = 0; i < l->nclasses; i++)
		free(l->classes[i]);
	free(l->e);
	free(l->classes);
	memset(l, 0, sizeof *l);
}

int petset_list_add(petset_list *l, const char *path, int64_t label, char *err)
{
	size_t cap = l->n;  /* grown one at a time on the command-line path: few entries */
	char *p = dupstr(path, strlen(path));

	if (!p || grow((void **)&l->e, &cap, l->n + 1, sizeof *l->e) < 0) {
		free(p);
		return err_set(err, "%s: out of memory", path);
	}
	l->e[l->n].path = p;
	l->e[l->n++].label = label;
	return 0;
}

/* Grows the class table to n entries, new ones unnamed (NULL). */
static int ensure_classes(petset_list *l, int64_t n)
{
	char **c;

	if (n <= l->nclasses)
		return 0;
	if (!(c = realloc(l->classes, sizeof *c * (size_t)n)))
		return -1;
	for (int64_t i = l->nclasses; i < n; i++)
		c[i] = NULL;
	l->classes = c;
	l->nclasses = n;
	return 0;
}

/* Names class `label` (growing the table); a different earlier name is an error. */
static int name_class(petset_list *l, int64_t label, const char *name, size_t len, int *clash)
{
	*clash = 0;
	if (ensure_classes(l, label + 1) < 0)
		return -1;
	if (!l->classes[label])
		return (l->classes[label] = dupstr(name, len)) ? 0 : -1;
	*clash = strlen(l->classes[label]) != len || strncmp(l->classes[label], name, len);
	return 0;
}

#define MAX_CLASSES 100000

static int read_classes_comment(petset_list *l, char *line, const char *name, long lineno, char *err)
{
	char *save;
	int64_t label = 0;
	int clash;

	for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
		if (label >= MAX_CLASSES)
			return err_set(err, "%s:%ld: more than %d classes", name, lineno, MAX_CLASSES);
		if (name_class(l, label, t, strlen(t), &clash) < 0)
			return err_set(err, "%s: out of memory", name);
		if (clash)
			return err_set(err, "%s:%ld: class %lld named twice", name, lineno, (long long)label);
		label++;
	}
	return 0;
}

int petset_list_read(FILE *f, const char *name, petset_list *l, char *err)
{
	char *line = NULL;
	size_t lcap = 0, cap = 0;
	ssize_t len;
	long lineno = 0;
	int r = -1;

	memset(l, 0, sizeof *l);
	while ((len = getline(&line, &lcap, f)) > 0) {
		char *tab1, *tab2, *end, *cls;
		size_t clen;
		int64_t label;
		int clash;
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!strncmp(line, "# classes:", 10)) {
			if (read_classes_comment(l, line + 10, name, lineno, err) < 0)
				goto out;
			continue;
		}
		if (line[0] == '#' || len == 0)
			continue;
		if ((size_t)len != strlen(line)) {
			err_set(err, "%s:%ld: NUL byte in line", name, lineno);
			goto out;
		}
		tab1 = strchr(line, '\t');
		if (!tab1 || tab1 == line) {
			err_set(err, "%s:%ld: expected 'path<TAB>label<TAB>class'", name, lineno);
			goto out;
		}
		*tab1 = 0;
		errno = 0;
		label = strtoll(tab1 + 1, &end, 10);
		if (end == tab1 + 1 || (*end && *end != '\t') || errno || label < -1 || label >= MAX_CLASSES) {
			err_set(err, "%s:%ld: bad label '%.20s'", name, lineno, tab1 + 1);
			goto out;
		}
		cls = *end ? end + 1 : end;
		tab2 = strchr(cls, '\t');
		clen = tab2 ? (size_t)(tab2 - cls) : strlen(cls);
		if (label >= 0 && clen == 0 && ensure_classes(l, label + 1) < 0) {
			err_set(err, "%s: out of memory", name);
			goto out;
		}
		if (label >= 0 && clen > 0) {
			if (name_class(l, label, cls, clen, &clash) < 0) {
				err_set(err, "%s: out of memory", name);
				goto out;
			}
			if (clash) {
				err_set(err, "%s:%ld: label %lld is '%s' here but '%.*s' on this line", name, lineno,
					(long long)label, l->classes[label], (int)clen, cls);
				goto out;
			}
		}
		if (grow((void **)&l->e, &cap, l->n + 1, sizeof *l->e) < 0 ||
		    !(l->e[l->n].path = dupstr(line, strlen(line)))) {
			err_set(err, "%s: out of memory", name);
			goto out;
		}
		l->e[l->n++].label = label;
	}
	if (ferror(f)) {
		err_sys(err, "%s", name);
		goto out;
	}
	/* a label no line names still needs a name */
	for (int64_t i = 0; i < l->nclasses; i++)
		if (!l->classes[i]) {
			char buf[32];
			int clash;
			snprintf(buf, sizeof buf, "class%lld", (long long)i);
			if (name_class(l, i, buf, strlen(buf), &clash) < 0) {
				err_set(err, "%s: out of memory", name);
				goto out;
			}
		}
	r = 0;
out:
	free(line);
	if (r < 0)
		petset_list_free(l);
	return r;
}
