/* Unit tests for petset's image lists: every error path of the reader and of the writer,
 * each message naming the file and the line, and what the writer writes reads back the same
 * (a path starting with '#' included). */
#include "check.h"
#include "util/errmsg.h"
#include "pets/petset.h"

#include <stdlib.h>
#include <string.h>

/* Reads text (len bytes, so a NUL can be in it) as a list named "t.tsv"; err gets the
 * message. Returns petset_list_read's result; l is freed on success too unless keep. */
static int read_text(const char *text, size_t len, petset_list *l, char *err, int keep)
{
	FILE *f = fmemopen((void *)text, len, "r");
	int r;

	err[0] = 0;
	if (!f)
		return -2;
	r = petset_list_read(f, "t.tsv", l, err);
	fclose(f);
	if (r == 0 && !keep)
		petset_list_free(l);
	return r;
}

/* The reader fails on text, with a message starting "t.tsv:<line>:" and containing what. */
static void check_error(const char *text, size_t len, const char *where, const char *what)
{
	char err[ERR_MAX];
	petset_list l;
	int r = read_text(text, len, &l, err, 0);

	CHECK(r == -1, "%s: accepted", where);
	CHECK(!strncmp(err, where, strlen(where)) && strstr(err, what), "want '%s...%s', got '%s'", where,
	      what, err);
	CHECK(l.n == 0 && l.e == NULL && l.classes == NULL, "%s: list left empty", where);
}

#define ERROR_CASE(text, where, what) check_error(text, sizeof text - 1, where, what)

static void test_reader_errors(void)
{
	/* one case per error path of petset_list_read */
	ERROR_CASE("# classes: a b\n# classes: a b\n", "t.tsv:2:", "second '# classes:'");
	ERROR_CASE("/x.jpg\t0\ta\n# classes: a\n", "t.tsv:2:", "after the first row");
	ERROR_CASE("# classes: a b\n/x.jpg\t0\ta\n/y.jpg\t2\tc\n", "t.tsv:3:", "declares 2 classes");
	ERROR_CASE("# classes: a b a\n", "t.tsv:1:", "class 'a' is label 0 and label 2");
	ERROR_CASE("# c\n/x.jpg\t0\tdog\n/y.jpg\t1\tcat\n/z.jpg\t2\tdog\n", "t.tsv:4:",
		   "class 'dog' is label 0 and label 2");
	/* a name given by the classes line and again by a row for another label */
	ERROR_CASE("/x.jpg\t1\tclass0\n", "t.tsv:1:", "class 'class0' is label 0 and label 1");
	ERROR_CASE("/x.jpg\t0\ta\n/y.jpg\t0\tb\n", "t.tsv:2:", "label 0 is 'a' here but 'b'");
	ERROR_CASE("# classes: a b\n/x.jpg\t1\ta\n", "t.tsv:2:", "label 1 is 'b' here but 'a'");
	ERROR_CASE("/x.jpg\t0\ta\n#y.jpg\t0\ta\n", "t.tsv:2:", "'./#...'");
	ERROR_CASE("#y.jpg\t-1\n", "t.tsv:1:", "'./#...'");
	ERROR_CASE("/x.jpg\t0\ta\n/y\0.jpg\t0\ta\n", "t.tsv:2:", "NUL byte");
	ERROR_CASE("/x.jpg 0 a\n", "t.tsv:1:", "expected 'path<TAB>label<TAB>class'");
	ERROR_CASE("\t0\ta\n", "t.tsv:1:", "expected 'path<TAB>label<TAB>class'");
	ERROR_CASE("/x.jpg\tzero\ta\n", "t.tsv:1:", "bad label 'zero");
	ERROR_CASE("/x.jpg\t1x\ta\n", "t.tsv:1:", "bad label '1x");
	ERROR_CASE("/x.jpg\t-2\ta\n", "t.tsv:1:", "bad label '-2");
	ERROR_CASE("/x.jpg\t100000\ta\n", "t.tsv:1:", "bad label '100000");
	ERROR_CASE("/x.jpg\t99999999999999999999\ta\n", "t.tsv:1:", "bad label");
	ERROR_CASE("/x.jpg\t\ta\n", "t.tsv:1:", "bad label");

	/* more than 100000 names on the classes line */
	{
		size_t n = 100001, len = 10 + n * 8 + 1;
		char *text = malloc(len + 1), *p = text;

		CHECK(text != NULL, "malloc");
		if (!text)
			return;
		p += sprintf(p, "# classes:");
		for (size_t i = 0; i < n; i++)
			p += sprintf(p, " c%06zu", i);
		*p++ = '\n';
		check_error(text, (size_t)(p - text), "t.tsv:1:", "more than 100000 classes");
		free(text);
	}

	/* a read error: a directory opened as a stream fails on the first read */
	{
		char err[ERR_MAX] = "";
		petset_list l;
		FILE *f = fopen("/", "r");

		CHECK(f != NULL, "fopen /");
		if (f) {
			CHECK(petset_list_read(f, "dir.tsv", &l, err) == -1 && !strncmp(err, "dir.tsv:1: ", 11),
			      "read error: %s", err);
			fclose(f);
		}
	}
}

static void test_reader_accepts(void)
{
	static const char text[] = "# classes: a b c\r\n"
				   "# path\tlabel\tclass\tsplit\n"
				   "\n"
				   "./#x.jpg\t1\tb\ttrain\n"
				   "# a comment\twith a tab\n"
				   "/y.jpg\t-1\t\n"
				   "/z.jpg\t0\n";
	char err[ERR_MAX];
	petset_list l;

	CHECK(read_text(text, sizeof text - 1, &l, err, 1) == 0, "reads: %s", err);
	CHECK(l.n == 3 && l.nclasses == 3, "3 rows (%zu), 3 classes (%lld)", l.n, (long long)l.nclasses);
	if (l.n == 3 && l.nclasses == 3) {
		CHECK(!strcmp(l.e[0].path, "./#x.jpg") && l.e[0].label == 1, "escaped '#' path");
		CHECK(!strcmp(l.e[1].path, "/y.jpg") && l.e[1].label == -1, "unknown label");
		CHECK(!strcmp(l.e[2].path, "/z.jpg") && l.e[2].label == 0, "no class column");
		CHECK(!strcmp(l.classes[0], "a") && !strcmp(l.classes[2], "c"), "declared names kept");
	}
	petset_list_free(&l);
	/* without a classes line the rows name the classes; a label no row names is made up */
	static const char rows[] = "/x.jpg\t2\tdog\n/y.jpg\t0\tcat\n";
	CHECK(read_text(rows, sizeof rows - 1, &l, err, 1) == 0, "reads: %s", err);
	CHECK(l.nclasses == 3 && !strcmp(l.classes[0], "cat") && !strcmp(l.classes[1], "class1") &&
		      !strcmp(l.classes[2], "dog"), "names from rows");
	petset_list_free(&l);
}

/* Writes with the given classes and rows into a memory stream; returns the first failing
 * call's result (0 if all succeed) and leaves the text in *out. */
struct row {
	const char *path;
	int64_t label;
	const char *split;
};

static int write_text(const char *const *classes, int64_t k, int split_column, const struct row *rows,
		      int n, char **out, char *err)
{
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	petset_writer w;
	int r;

	err[0] = 0;
	r = petset_list_write_start(&w, f, "out.tsv", classes, k, split_column, err);
	for (int i = 0; i < n && r == 0; i++)
		r = petset_list_write_row(&w, rows[i].path, rows[i].label, rows[i].split, err);
	fclose(f);
	return r;
}

static void check_write_error(const char *const *classes, int64_t k, int split_column, const struct row *rows,
			      int n, const char *where, const char *what)
{
	char err[ERR_MAX], *text = NULL;

	CHECK(write_text(classes, k, split_column, rows, n, &text, err) == -1, "%s: accepted", where);
	CHECK(!strncmp(err, where, strlen(where)) && strstr(err, what), "want '%s...%s', got '%s'", where,
	      what, err);
	free(text);
}

static void test_writer(void)
{
	static const char *const ab[] = { "a", "b" }, *const aba[] = { "a", "b", "a" },
				 *const blank[] = { "a", "b c" }, *const empty[] = { "" };
	const struct row ok[] = { { "/x.jpg", 0, NULL }, { "#y.jpg", 1, NULL }, { "z.jpg", -1, NULL } };
	char err[ERR_MAX], *text = NULL;
	petset_list l;

	/* every error path, each naming the file and the line it would have written */
	check_write_error(aba, 3, 0, NULL, 0, "out.tsv:1:", "class 'a' is label 0 and label 2");
	check_write_error(blank, 2, 0, NULL, 0, "out.tsv:1:", "class 1 'b c'");
	check_write_error(empty, 1, 0, NULL, 0, "out.tsv:1:", "class 0 ''");
	check_write_error(ab, 100001, 0, NULL, 0, "out.tsv:1:", "100001 classes");
	check_write_error(ab, 2, 0, (const struct row[]){ { "/x\t.jpg", 0, NULL } }, 1, "out.tsv:3:", "a tab or newline");
	check_write_error(ab, 2, 0, (const struct row[]){ { "/x.jpg", 0, NULL }, { "/y\n.jpg", 0, NULL } }, 2,
			  "out.tsv:4:", "a tab or newline");
	check_write_error(ab, 2, 0, (const struct row[]){ { "", 0, NULL } }, 1, "out.tsv:3:", "empty");
	check_write_error(ab, 2, 0, (const struct row[]){ { "/x.jpg", 2, NULL } }, 1, "out.tsv:3:", "label 2");
	check_write_error(ab, 2, 0, (const struct row[]){ { "/x.jpg", -2, NULL } }, 1, "out.tsv:3:", "label -2");
	check_write_error(ab, 2, 0, (const struct row[]){ { "/x.jpg", 0, "train" } }, 1, "out.tsv:3:", "split column");
	check_write_error(ab, 2, 1, (const struct row[]){ { "/x.jpg", 0, NULL } }, 1, "out.tsv:3:", "split column");
	check_write_error(ab, 2, 1, (const struct row[]){ { "/x.jpg", 0, "tr\tain" } }, 1, "out.tsv:3:", "split column");
	/* a write error: /dev/full, unbuffered so the failure shows at once */
	{
		FILE *f = fopen("/dev/full", "w");
		petset_writer w;

		CHECK(f != NULL, "open /dev/full");
		if (f) {
			setvbuf(f, NULL, _IONBF, 0);
			CHECK(petset_list_write_start(&w, f, "full.tsv", ab, 2, 0, err) == -1 &&
				      !strncmp(err, "full.tsv:2: write error", 23),
			      "write error: %s", err);
			fclose(f);
		}
	}

	/* what it writes, byte for byte, and back through the reader */
	CHECK(write_text(ab, 2, 0, ok, 3, &text, err) == 0, "writes: %s", err);
	CHECK(text && !strcmp(text, "# classes: a b\n# path\tlabel\tclass\n/x.jpg\t0\ta\n./#y.jpg\t1\tb\nz.jpg\t-1\t\n"),
	      "text: %s", text ? text : "(null)");
	if (text) {
		CHECK(read_text(text, strlen(text), &l, err, 1) == 0, "reads back: %s", err);
		CHECK(l.n == 3 && l.nclasses == 2 && !strcmp(l.e[1].path, "./#y.jpg") && l.e[1].label == 1 &&
			      l.e[2].label == -1 && !strcmp(l.classes[1], "b"),
		      "round trip");
		petset_list_free(&l);
	}
	free(text);
	text = NULL;
	CHECK(write_text(ab, 2, 1, (const struct row[]){ { "/x.jpg", 1, "test" } }, 1, &text, err) == 0,
	      "split column: %s", err);
	CHECK(text && !strcmp(text, "# classes: a b\n# path\tlabel\tclass\tsplit\n/x.jpg\t1\tb\ttest\n"), "text: %s",
	      text ? text : "(null)");
	free(text);
}

int main(void)
{
	test_reader_errors();
	test_reader_accepts();
	test_writer();
	return check_done("test_petset");
}
