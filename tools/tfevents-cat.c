/* tfevents-cat: TensorBoard event files back to text, one line per value, every CRC checked. */
#include "util/cli.h"
#include "util/errmsg.h"
#include "tb/tfev_read.h"
#include "tb/tfrecord.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char PROG[] = "tfevents-cat";
static const char HELP[] =
	"Usage: tfevents-cat [OPTION]... [FILE|DIR]...\n"
	"Print the records of TensorBoard event files as text, checking every CRC.\n"
	"\n"
	"A DIR stands for every file under it whose name contains \"tfevents\", in path order\n"
	"(the order TensorBoard reads a run's files). With no argument, or -, read standard\n"
	"input. One line per value, tab-separated:\n"
	"\n"
	"  STEP  WALL_TIME  KIND  TAG  VALUE\n"
	"\n"
	"WALL_TIME is seconds since the epoch at full precision; TAG is - for records without\n"
	"one. KIND and VALUE:\n"
	"  file_version  the version string (brain.Event:2)\n"
	"  scalar        the value\n"
	"  histogram     num= min= max= sum= sum_squares= buckets=N, then LIMIT:COUNT for\n"
	"                every non-empty bucket (values in [previous limit, LIMIT))\n"
	"  image         WxH colorspace=C FORMAT BYTES bytes\n"
	"  text          the text, with tab, newline and backslash escaped as \\t \\n \\\\\n"
	"  tensor        dtype=D BYTES bytes (other tensor summaries)\n"
	"  graph         N nodes: NAME... (all node names, scopes included)\n"
	"  event         field=F BYTES bytes (other Event fields), or empty\n"
	"With several files each line starts with the file name and a tab (see -H).\n"
	"\n"
	"A record whose data CRC is wrong is reported (file and offset) and skipped; a bad\n"
	"length CRC or a truncated record ends that file, after everything before it was\n"
	"printed. Either way the exit status is 1, as it is for a file or input that holds\n"
	"no record at all (empty), which is named on stderr.\n"
	"\n"
	"Options:\n"
	"  -H, --with-filename  start every line with the file name, even for one file\n"
	"      --no-filename    never print file names\n"
	"  -h, --help           show this help and exit\n"
	"      --version        show the version and exit\n"
	"\n"
	"Exit status: 0 if every record of every file was read, 1 otherwise, 2 for a usage\n"
	"error.\n"
	"\n"
	"Example:\n"
	"  tfevents-cat runs/pets/train\n"
	"  tfevents-cat runs/pets | awk -F'\\t' '$4 == \"Loss\" {print $1, $5}'\n";

struct opts {
	int filename;  /* -1 auto, 0 never, 1 always */
	char **paths;
	int npaths;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "with-filename", no_argument, NULL, 'H' },
		{ "no-filename", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	o->filename = -1;
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "Hh", longopts, NULL)) != -1) {
		switch (c) {
		case 'H':
			o->filename = 1;
			break;
		case 'n':
			o->filename = 0;
			break;
		case 'h':
			cli_help(HELP);
		case 'V':
			cli_version();
		default:
			cli_try_help();
		}
	}
	o->paths = argv + optind;
	o->npaths = argc - optind;
}

static void put_escaped(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '\t': fputs("\\t", stdout); break;
		case '\n': fputs("\\n", stdout); break;
		case '\r': fputs("\\r", stdout); break;
		case '\\': fputs("\\\\", stdout); break;
		default:
			if (s[i] < 0x20 || s[i] == 0x7f)
				printf("\\x%02x", s[i]);
			else
				putchar(s[i]);
		}
	}
}

static const char *image_format(const unsigned char *p, size_t n)
{
	if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
		return "png";
	if (n >= 3 && !memcmp(p, "\xff\xd8\xff", 3))
		return "jpeg";
	if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
		return "gif";
	return "unknown";
}

static const char *kind_name(enum tfev_kind k)
{
	static const char *names[] = {
		[TFEV_VERSION] = "file_version", [TFEV_SCALAR] = "scalar",
		[TFEV_HISTOGRAM] = "histogram", [TFEV_IMAGE] = "image", [TFEV_TEXT] = "text",
		[TFEV_TENSOR] = "tensor", [TFEV_GRAPH] = "graph", [TFEV_EMPTY] = "event",
		[TFEV_OTHER] = "event",
	};
	return names[k];
}

static int print_graph(const tfev_item *it)
{
	pb_reader g;
	tfev_node_view nv;
	size_t n = 0;
	int rc;

	pb_reader_init(&g, it->data, it->len);
	while ((rc = tfev_graph_next(&g, &nv)) == 1)
		n++;
	if (rc < 0)
		return -1;
	printf("%zu nodes:", n);
	pb_reader_init(&g, it->data, it->len);
	while (tfev_graph_next(&g, &nv) == 1) {
		putchar(' ');
		put_escaped((const unsigned char *)nv.name, nv.name_len);
	}
	return 0;
}

/* The VALUE column. Returns -1 if the value's contents are malformed. */
static int print_value(const tfev_item *it)
{
	switch (it->kind) {
	case TFEV_VERSION:
	case TFEV_TEXT:
		put_escaped(it->data, it->len);
		return 0;
	case TFEV_SCALAR:
		printf("%.9g", it->value);
		return 0;
	case TFEV_HISTOGRAM:
		printf("num=%.17g min=%.9g max=%.9g sum=%.9g sum_squares=%.9g buckets=%zu",
		       it->num, it->min, it->max, it->sum, it->sum_squares,
		       pb_packed_count(&it->counts));
		for (size_t i = 0; i < pb_packed_count(&it->counts); i++) {
			double c = pb_packed_double_at(&it->counts, i);
			if (c > 0)
				printf(" %.9g:%.17g", pb_packed_double_at(&it->limits, i), c);
		}
		return 0;
	case TFEV_IMAGE:
		printf("%dx%d colorspace=%d %s %zu bytes", it->width, it->height, it->colorspace,
		       image_format(it->data, it->len), it->len);
		return 0;
	case TFEV_TENSOR:
		printf("dtype=%d %zu bytes", it->dtype, it->len);
		return 0;
	case TFEV_GRAPH:
		return print_graph(it);
	case TFEV_EMPTY:
		fputs("empty", stdout);
		return 0;
	case TFEV_OTHER:
		printf("field=%d %zu bytes", it->field, it->len);
		return 0;
	}
	return 0;
}

/* Prints one file's records; 0 if all were good, -1 after reporting a problem. */
static int cat_file(const char *path, int show_name)
{
	tfrecord_reader r;
	const unsigned char *p;
	size_t len;
	int64_t off;
	char err[ERR_MAX];
	int rc, bad = 0, nrec = 0;

	if (tfrecord_reader_open(&r, path, err)) {
		cli_warn("%s", err);
		return -1;
	}
	while ((rc = tfrecord_reader_next(&r, &p, &len, &off, err)) != TFRECORD_EOF) {
		tfev_iter it;
		tfev_item item;
		int k;

		if (rc == TFRECORD_FATAL || rc == TFRECORD_BADDATA) {
			/* stdout first, so the report follows what was printed before it. */
			fflush(stdout);
			cli_warn("%s", err);
			bad = 1;
			if (rc == TFRECORD_FATAL)
				break;
			continue;
		}
		nrec++;
		if (tfev_iter_init(&it, p, len, err) == 0) {
			while ((k = tfev_iter_next(&it, &item, err)) == 1) {
				if (show_name)
					printf("%s\t", r.name);
				printf("%lld\t%.17g\t%s\t", (long long)item.step, item.wall_time,
				       kind_name(item.kind));
				if (item.tag)
					put_escaped((const unsigned char *)item.tag, item.tag_len);
				else
					putchar('-');
				putchar('\t');
				if (print_value(&item))
					k = err_set(err, "malformed graph");
				putchar('\n');
				if (k < 0)
					break;
			}
			if (k == 0)
				continue;
		}
		fflush(stdout);
		cli_warn("%s: record at offset %lld: %s", r.name, (long long)off, err);
		bad = 1;
	}
	/* An empty file or stream is not an event file: say so rather than print nothing. */
	if (!nrec && !bad) {
		cli_warn("%s: empty: no event records in it", r.name);
		bad = 1;
	}
	tfrecord_reader_close(&r);
	return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	char *dash[] = { "-" }, err[ERR_MAX];
	int fail = 0, nfiles = 0;
	struct stat st;

	parse_args(argc, argv, &o);
	if (!o.npaths) {
		o.paths = dash;
		o.npaths = 1;
	}
	for (int i = 0; i < o.npaths; i++)
		nfiles += strcmp(o.paths[i], "-") && !stat(o.paths[i], &st) && S_ISDIR(st.st_mode) ? 2 : 1;
	for (int i = 0; i < o.npaths; i++) {
		int show = o.filename < 0 ? nfiles > 1 : o.filename;
		char **files;
		size_t n;

		if (!strcmp(o.paths[i], "-") || stat(o.paths[i], &st) || !S_ISDIR(st.st_mode)) {
			fail |= cat_file(o.paths[i], show);
			continue;
		}
		if (tfev_find_files(o.paths[i], &files, &n, err)) {
			cli_warn("%s", err);
			fail = 1;
			continue;
		}
		if (!n) {
			cli_warn("%s: no event files (named *tfevents*) in it", o.paths[i]);
			fail = 1;
		}
		for (size_t k = 0; k < n; k++)
			fail |= cat_file(files[k], show);
		tfev_files_free(files, n);
	}
	if (cli_close_stdout())
		return CLI_FAIL;
	return fail ? CLI_FAIL : CLI_OK;
}
