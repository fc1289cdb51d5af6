/* petset: the Pet dataset's folder and our TSV image lists. See petset.h. */
#include "pets/petset.h"

#include "img/imgdec.h"
#include "util/buf.h"
#include "util/errmsg.h"
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
#include <sys/stat.h>
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
	int lo = 0, hi = s->nbreeds;

	/* breeds are sorted case-insensitively first: the leftmost case-insensitive match */
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (strcasecmp(s->breeds[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nbreeds && !strcasecmp(s->breeds[lo].name, name) ? lo : -1;
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

/* Breeds by name while list.txt is read: open addressing over indices into s->breeds, so
 * a list of many breeds costs O(lines), not O(lines * breeds). */
struct breed_map {
	int *slot;       /* breed index, -1 empty */
	size_t size;     /* a power of two, kept above twice the breeds */
};

static uint64_t hash_name(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;  /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h;
}

/* The slot holding the breed named p[0..n), or the empty slot where it would go. */
static size_t map_slot(const struct breed_map *m, const petset *s, const char *p, size_t n)
{
	size_t i = (size_t)hash_name(p, n) & (m->size - 1);

	while (m->slot[i] >= 0) {
		const char *name = s->breeds[m->slot[i]].name;
		if (!strncmp(name, p, n) && !name[n])
			return i;
		i = (i + 1) & (m->size - 1);
	}
	return i;
}

/* Room for one more breed: doubles and rehashes when half full. */
static int map_reserve(struct breed_map *m, const petset *s)
{
	size_t size = m->size ? m->size : 64;
	int *slot;

	while ((size_t)s->nbreeds + 1 > size / 2) {
		if (size > SIZE_MAX / 2 / sizeof *slot)
			return -1;
		size *= 2;
	}
	if (size == m->size)
		return 0;
	if (!(slot = malloc(size * sizeof *slot)))
		return -1;
	free(m->slot);
	m->slot = slot;
	m->size = size;
	for (size_t i = 0; i < size; i++)
		slot[i] = -1;
	for (int b = 0; b < s->nbreeds; b++)
		slot[map_slot(m, s, s->breeds[b].name, strlen(s->breeds[b].name))] = b;
	return 0;
}

static int read_list(petset *s, const char *path, char *err)
{
	FILE *f = fopen(path, "r");
	struct breed_map map = { NULL, 0 };
	char *line = NULL, *stem;
	size_t lcap = 0, icap = 0, bcap = 0;
	long lineno = 0;
	int species, r = -1;

	if (!f)
		return err_sys(err, "%s", path);
	while (getline(&line, &lcap, f) > 0) {
		size_t blen, at;
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
		if (map_reserve(&map, s) < 0)
			goto oom;
		at = map_slot(&map, s, stem, blen);
		if ((b = map.slot[at]) < 0) {
			b = s->nbreeds;
			if (buf_grow_array(&s->breeds, &bcap, (size_t)b + 1, sizeof *s->breeds) < 0 ||
			    !(s->breeds[b].name = dupstr(stem, blen)))
				goto oom;
			s->breeds[b].species = species;
			s->nbreeds++;
			map.slot[at] = b;
		}
		if (buf_grow_array(&s->items, &icap, s->nitems + 1, sizeof *s->items) < 0 ||
		    !(s->items[s->nitems].stem = dupstr(stem, strlen(stem))))
			goto oom;
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
	goto out;
oom:
	err_set(err, "%s: out of memory", path);
out:
	free(map.slot);
	free(line);
	fclose(f);
	return r;
}

/* Sorts breeds (case-insensitively, as CLASS-IDs go) and items, keeping item->breed right,
 * and gives each breed its range of items. */
static int sort_set(petset *s, char *err)
{
	int *map = malloc(sizeof(int) * (size_t)s->nbreeds);

	if (!map)
		return err_set(err, "%s: out of memory", s->dir);
	/* first holds the discovery index across the sort */
	for (int i = 0; i < s->nbreeds; i++)
		s->breeds[i].first = (size_t)i;
	qsort(s->breeds, (size_t)s->nbreeds, sizeof *s->breeds, cmp_breed);
	for (int j = 0; j < s->nbreeds; j++) {
		map[s->breeds[j].first] = j;
		s->breeds[j].first = s->breeds[j].n = 0;
	}
	for (size_t i = 0; i < s->nitems; i++)
		s->items[i].breed = map[s->items[i].breed];
	qsort(s->items, s->nitems, sizeof *s->items, cmp_item);
	for (size_t i = 0; i < s->nitems; i++) {
		petset_breed *b = &s->breeds[s->items[i].breed];
		if (!b->n++)
			b->first = i;
	}
	free(map);
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

	if (!d || buf_grow_array(v, cap, *n + 1, sizeof **v) < 0) {
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

/* Reads the first bytes of a file to tell an image from anything else. Only a regular file
 * (or a link to one) can be: a FIFO named .jpg would block the read for ever. */
static int looks_like_image(const char *dir, const char *name)
{
	char path[PATH_MAX];
	unsigned char b[8];
	struct stat st;
	ssize_t n = -1;
	int fd;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
		return 0;
	/* O_NONBLOCK: opening a FIFO without a writer would wait too */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode))
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
	/* readdir's order is the file system's: sort so messages are reproducible (qsort
	 * wants an array even for none) */
	if (s->nunusable)
		qsort(s->unusable, s->nunusable, sizeof *s->unusable, cmp_str);
	if (s->nunlisted)
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

int petset_split_fraction(petset *s, const int *classes, int k, double frac, uint64_t seed, char *err)
{
	int64_t *idx = malloc(sizeof *idx * (s->nitems ? s->nitems : 1));

	if (!idx)
		return err_set(err, "%s: out of memory", s->dir);
	for (int c = 0; c < k; c++) {
		const petset_breed *b = &s->breeds[classes[c]];
		size_t n = 0, ntest;
		rng r;
		for (size_t i = b->first; i < b->first + b->n; i++)
			if (s->items[i].file)
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
	return 0;
}

size_t petset_split_official(petset *s, const int *classes, int k)
{
	size_t neither = 0;

	for (int c = 0; c < k; c++) {
		const petset_breed *b = &s->breeds[classes[c]];
		for (size_t i = b->first; i < b->first + b->n; i++)
			if (s->items[i].file) {
				s->items[i].split = s->items[i].official;
				neither += s->items[i].official == PETSET_NONE;
			}
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
	char *p = dupstr(path, strlen(path));

	if (!p || buf_grow_array(&l->e, &l->cap, l->n + 1, sizeof *l->e) < 0) {
		free(p);
		return err_set(err, "%s: out of memory", path);
	}
	l->e[l->n].path = p;
	l->e[l->n++].label = label;
	return 0;
}

#define MAX_CLASSES 100000

/* The reader's state beside the list: where each class got its name, for messages. */
struct reader {
	const char *name;
	petset_list *l;
	long *named_at;         /* line that named class i (0: none yet) */
	size_t ccap, lcap;      /* room in l->classes and named_at */
	int64_t declared;       /* classes in the "# classes:" line, -1 without one */
};

/* Grows the class table to n entries, new ones unnamed (NULL). */
static int ensure_classes(struct reader *r, int64_t n)
{
	petset_list *l = r->l;

	if (n <= l->nclasses)
		return 0;
	if (buf_grow_array(&l->classes, &r->ccap, (size_t)n, sizeof *l->classes) < 0 ||
	    buf_grow_array(&r->named_at, &r->lcap, (size_t)n, sizeof *r->named_at) < 0)
		return -1;
	for (int64_t i = l->nclasses; i < n; i++) {
		l->classes[i] = NULL;
		r->named_at[i] = 0;
	}
	l->nclasses = n;
	return 0;
}

/* Names class `label` (growing the table); a different earlier name is a clash. */
static int name_class(struct reader *r, int64_t label, const char *name, size_t len, long lineno,
		      int *clash)
{
	petset_list *l = r->l;

	*clash = 0;
	if (ensure_classes(r, label + 1) < 0)
		return -1;
	if (!l->classes[label]) {
		r->named_at[label] = lineno;
		return (l->classes[label] = dupstr(name, len)) ? 0 : -1;
	}
	*clash = strlen(l->classes[label]) != len || strncmp(l->classes[label], name, len);
	return 0;
}

static int read_classes_comment(struct reader *r, char *line, long lineno, char *err)
{
	char *save;
	int64_t label = 0;
	int clash;

	if (r->declared >= 0)
		return err_set(err, "%s:%ld: a second '# classes:' line", r->name, lineno);
	if (r->l->n)
		return err_set(err, "%s:%ld: '# classes:' after the first row", r->name, lineno);
	for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
		if (label >= MAX_CLASSES)
			return err_set(err, "%s:%ld: more than %d classes", r->name, lineno, MAX_CLASSES);
		if (name_class(r, label, t, strlen(t), lineno, &clash) < 0)
			return err_set(err, "%s: out of memory", r->name);
		label++;
	}
	r->declared = label;
	return 0;
}

struct named {
	const char *name;
	int64_t label;
};

static int cmp_named(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->label > y->label) - (x->label < y->label);
}

/* Finds two labels with one name (the lowest such name's first two labels): 1 with them in
 * *a < *b, 0 if all distinct, -1 out of memory. */
static int find_duplicate(const char *const *names, int64_t n, int64_t *a, int64_t *b)
{
	struct named *v = malloc(sizeof *v * (size_t)(n ? n : 1));
	int found = 0;

	if (!v)
		return -1;
	for (int64_t i = 0; i < n; i++)
		v[i] = (struct named){ names[i], i };
	qsort(v, (size_t)n, sizeof *v, cmp_named);
	for (int64_t i = 1; i < n && !found; i++)
		if (!strcmp(v[i - 1].name, v[i].name)) {
			*a = v[i - 1].label;
			*b = v[i].label;
			found = 1;
		}
	free(v);
	return found;
}

/* Two labels with one name would merge classes downstream: an error at the later line. */
static int check_distinct(struct reader *r, char *err)
{
	petset_list *l = r->l;
	int64_t a, b;
	int found = find_duplicate((const char *const *)l->classes, l->nclasses, &a, &b);

	if (found < 0)
		return err_set(err, "%s: out of memory", r->name);
	if (!found)
		return 0;
	return err_set(err, "%s:%ld: class '%s' is label %lld and label %lld", r->name,
		       r->named_at[a] > r->named_at[b] ? r->named_at[a] : r->named_at[b], l->classes[a],
		       (long long)a, (long long)b);
}

/* A '#' line whose second field is a number reads like a row whose path starts with '#'. */
static int looks_like_row(const char *line)
{
	const char *tab = strchr(line, '\t');
	char *end;

	if (!tab || !isdigit((unsigned char)tab[1 + (tab[1] == '-')]))
		return 0;
	(void)strtoll(tab + 1, &end, 10);
	return *end == '\t' || *end == 0;
}

static int read_row(struct reader *r, char *line, size_t len, long lineno, char *err)
{
	petset_list *l = r->l;
	char *tab1, *tab2, *end, *cls;
	size_t clen;
	int64_t label;
	int clash;

	if (len != strlen(line))
		return err_set(err, "%s:%ld: NUL byte in line", r->name, lineno);
	tab1 = strchr(line, '\t');
	if (!tab1 || tab1 == line)
		return err_set(err, "%s:%ld: expected 'path<TAB>label<TAB>class'", r->name, lineno);
	*tab1 = 0;
	errno = 0;
	label = strtoll(tab1 + 1, &end, 10);
	if (end == tab1 + 1 || (*end && *end != '\t') || errno || label < -1 || label >= MAX_CLASSES)
		return err_set(err, "%s:%ld: bad label '%.20s'", r->name, lineno, tab1 + 1);
	if (r->declared >= 0 && label >= r->declared)
		return err_set(err, "%s:%ld: label %lld, but the classes line declares %lld classes", r->name,
			       lineno, (long long)label, (long long)r->declared);
	cls = *end ? end + 1 : end;
	tab2 = strchr(cls, '\t');
	clen = tab2 ? (size_t)(tab2 - cls) : strlen(cls);
	if (label >= 0 && clen == 0 && ensure_classes(r, label + 1) < 0)
		return err_set(err, "%s: out of memory", r->name);
	if (label >= 0 && clen > 0) {
		if (name_class(r, label, cls, clen, lineno, &clash) < 0)
			return err_set(err, "%s: out of memory", r->name);
		if (clash)
			return err_set(err, "%s:%ld: label %lld is '%s' here but '%.*s' on this line", r->name,
				       lineno, (long long)label, l->classes[label], (int)clen, cls);
	}
	if (petset_list_add(l, line, label, err) < 0)
		return err_set(err, "%s: out of memory", r->name);
	return 0;
}

int petset_list_read(FILE *f, const char *name, petset_list *l, char *err)
{
	struct reader r = { name, l, NULL, 0, 0, -1 };
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	long lineno = 0;
	int rc = -1;

	memset(l, 0, sizeof *l);
	while ((len = getline(&line, &lcap, f)) > 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!strncmp(line, "# classes:", 10)) {
			if (read_classes_comment(&r, line + 10, lineno, err) < 0)
				goto out;
			continue;
		}
		if (line[0] == '#' && looks_like_row(line)) {
			err_set(err, "%s:%ld: a comment shaped like a row: write a path starting with '#' as './#...'",
				name, lineno);
			goto out;
		}
		if (line[0] == '#' || len == 0)
			continue;
		if (read_row(&r, line, (size_t)len, lineno, err) < 0)
			goto out;
	}
	if (ferror(f)) {
		err_sys(err, "%s:%ld", name, lineno + 1);
		goto out;
	}
	/* a label no line names still needs a name */
	for (int64_t i = 0; i < l->nclasses; i++)
		if (!l->classes[i]) {
			char buf[32];
			int clash;
			snprintf(buf, sizeof buf, "class%lld", (long long)i);
			if (name_class(&r, i, buf, strlen(buf), 0, &clash) < 0) {
				err_set(err, "%s: out of memory", name);
				goto out;
			}
		}
	if (check_distinct(&r, err) < 0)
		goto out;
	rc = 0;
out:
	free(line);
	free(r.named_at);
	if (rc < 0)
		petset_list_free(l);
	return rc;
}

static int write_failed(petset_writer *w, char *err)
{
	return ferror(w->f) ? err_sys(err, "%s:%ld: write error", w->name, w->line) : 0;
}

int petset_list_write_start(petset_writer *w, FILE *f, const char *name, const char *const *classes,
			    int64_t nclasses, int split_column, char *err)
{
	int64_t a, b;

	memset(w, 0, sizeof *w);
	w->f = f;
	w->name = name;
	w->classes = classes;
	w->nclasses = nclasses;
	w->split_column = split_column;
	if (nclasses > MAX_CLASSES)
		return err_set(err, "%s:1: %lld classes (at most %d)", name, (long long)nclasses, MAX_CLASSES);
	for (int64_t c = 0; c < nclasses; c++)
		if (!classes[c][0] || strpbrk(classes[c], " \t\r\n"))
			return err_set(err, "%s:1: class %lld '%s': empty or with a blank", name, (long long)c,
				       classes[c]);
	switch (find_duplicate(classes, nclasses, &a, &b)) {
	case -1: return err_set(err, "%s: out of memory", name);
	case 1: return err_set(err, "%s:1: class '%s' is label %lld and label %lld", name, classes[a],
			       (long long)a, (long long)b);
	}
	fputs("# classes:", f);
	for (int64_t c = 0; c < nclasses; c++)
		fprintf(f, " %s", classes[c]);
	fprintf(f, "\n# path\tlabel\tclass%s\n", split_column ? "\tsplit" : "");
	w->line = 2;
	return write_failed(w, err);
}

int petset_list_write_row(petset_writer *w, const char *path, int64_t label, const char *split,
			  char *err)
{
	long line = w->line + 1;

	if (!path[0] || strpbrk(path, "\t\r\n"))
		return err_set(err, "%s:%ld: path '%s': empty, or a tab or newline in it", w->name, line, path);
	if (label < -1 || label >= w->nclasses)
		return err_set(err, "%s:%ld: label %lld (classes: %lld)", w->name, line, (long long)label,
			       (long long)w->nclasses);
	if (!split != !w->split_column || (split && strpbrk(split, "\t\r\n")))
		return err_set(err, "%s:%ld: split column %s", w->name, line, split ? split : "missing");
	fprintf(w->f, "%s%s\t%lld\t%s", path[0] == '#' ? "./" : "", path, (long long)label,
		label >= 0 ? w->classes[label] : "");
	if (split)
		fprintf(w->f, "\t%s", split);
	fputc('\n', w->f);
	w->line = line;
	return write_failed(w, err);
}
