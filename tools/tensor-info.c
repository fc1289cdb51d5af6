/* tensor-info: what is in a .npy stream or an .npz, one line per array, stats streamed. */
#include "util/cli.h"
#include "util/errmsg.h"
#include "array/npy.h"
#include "array/npz.h"
#include "array/tstat.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char PROG[] = "tensor-info";
static const char HELP[] =
	"Usage: tensor-info [OPTION]... [FILE]...\n"
	"Show the arrays in .npy streams and .npz archives: name, dtype, shape, min, max, mean.\n"
	"\n"
	"With no FILE, or when FILE is -, read standard input. A file that starts with the zip\n"
	"magic is read as an .npz (one line per member, by name), anything else as a stream of\n"
	".npy arrays (one line per array, by index 0, 1, ...). With several files each name is\n"
	"prefixed by its file and a colon. Stream data is read in chunks, never whole.\n"
	"\n"
	"Each line is tab-separated: name, dtype (u1 i4 i8 f4 f8, or UN for strings of N code\n"
	"points), shape as [d0,d1,...], then min=, max=, mean= (\"-\" for an empty array); for\n"
	"strings, the first few values instead of stats.\n"
	"\n"
	"Options:\n"
	"  -j, --json     one JSON object per array per line, with keys file, name, dtype,\n"
	"                 shape, min, max, mean (null when empty, NaN or infinite), and\n"
	"                 strings (the first few) for string arrays\n"
	"  -h, --help     show this help and exit\n"
	"      --version  show the version and exit\n"
	"\n"
	"Exit status: 0 if every file was read, 1 if any was bad or held no array at all\n"
	"(after printing what it could), 2 for a usage error.\n"
	"\n"
	"Example:\n"
	"  tensor-info train.npy\n"
	"  pet-pack --size 64 < lists/test.tsv | tensor-info --json\n"
	"  tensor-info model.npz\n";

#define CHUNK ((size_t)1 << 20)

struct opts {
	int json;
	char **files;
	int nfiles;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o->json = 1;
			break;
		case 'h':
			cli_help(HELP);
		case 'V':
			cli_version();
		default:
			cli_try_help();
		}
	}
	o->files = argv + optind;
	o->nfiles = argc - optind;
}

/* ---- output ---- */

static void put_json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void put_string_value(const tstat *s, int64_t e)
{
	tensor one = { .dtype = DT_U, .ndim = 0, .ulen = TSTAT_SHOWLEN + 1, .data = (void *)s->str[e] };
	char buf[4 * TSTAT_SHOWLEN + 8];

	/* str[] holds host-order code points: little-endian, as .npy data, on our hosts. */
	tensor_get_string(&one, 0, buf, sizeof buf);
	put_json_string(buf);
}

/* A number for the min, max or mean fields; JSON has no NaN or infinity, so null. */
static void put_num(const tstat *s, int which, int json)
{
	int is_float = s->h.dtype == DT_F4 || s->h.dtype == DT_F8;
	double v;

	if (s->n == 0) {
		fputs(json ? "null" : "-", stdout);
		return;
	}
	if (which == 2) {
		v = s->nan ? NAN : (double)(s->sum / s->n);
	} else if (!is_float) {
		printf("%lld", (long long)(which == 0 ? s->imin : s->imax));
		return;
	} else {
		v = s->nan ? NAN : which == 0 ? s->fmin : s->fmax;
	}
	/* min and max print exactly (9 digits round-trip a float, 17 a double); the mean,
	 * an estimate anyway, gets 10 digits for people and 17 for scripts. */
	if (json && !isfinite(v))
		fputs("null", stdout);
	else if (which == 2)
		printf(json ? "%.17g" : "%.10g", v);
	else
		printf(s->h.dtype == DT_F4 ? "%.9g" : "%.17g", v);
}

static void report(const tstat *s, const char *file, const char *name, int prefix, int json)
{
	static const char *const keys[] = { "min", "max", "mean" };
	char dtype[32];

	if (s->h.dtype == DT_U)
		snprintf(dtype, sizeof dtype, "U%lld", (long long)s->h.ulen);
	else
		snprintf(dtype, sizeof dtype, "%s", tensor_dtype_name(s->h.dtype));
	if (json) {
		fputs("{\"file\": ", stdout);
		put_json_string(file);
		fputs(", \"name\": ", stdout);
		put_json_string(name);
		printf(", \"dtype\": \"%s\", \"shape\": [", dtype);
	} else {
		if (prefix)
			printf("%s:", file);
		printf("%s\t%s\t[", name, dtype);
	}
	for (int i = 0; i < s->h.ndim; i++)
		printf("%s%lld", i ? (json ? ", " : ",") : "", (long long)s->h.shape[i]);
	putchar(']');
	if (s->h.dtype == DT_U) {
		fputs(json ? ", \"min\": null, \"max\": null, \"mean\": null, \"strings\": [" : "\t", stdout);
		for (int64_t e = 0; e < s->nstr; e++) {
			fputs(e ? (json ? ", " : " ") : "", stdout);
			put_string_value(s, e);
		}
		fputs(json ? "]}\n" : s->more ? " ...\n" : "\n", stdout);
		return;
	}
	for (int k = 0; k < 3; k++) {
		printf(json ? ", \"%s\": " : "\t%s=", keys[k]);
		put_num(s, k, json);
	}
	fputs(json ? "}\n" : "\n", stdout);
}

/* ---- inputs ---- */

/* A FILE* whose first bytes were already read to sniff the format. */
typedef struct {
	FILE *f;
	unsigned char pre[4];
	size_t npre, off;
} sniffed;

static ptrdiff_t sniffed_read(void *ctx, void *buf, size_t n, const char *name, char *err)
{
	sniffed *s = ctx;
	size_t got;

	if (s->off < s->npre) {
		got = s->npre - s->off < n ? s->npre - s->off : n;
		memcpy(buf, s->pre + s->off, got);
		s->off += got;
		return (ptrdiff_t)got;
	}
	got = fread(buf, 1, n, s->f);
	if (got == 0 && ferror(s->f))
		return err_sys(err, "%s: read error", name);
	return (ptrdiff_t)got;
}

/* Where lines go, and the buffer data passes through. */
typedef struct {
	const char *file;
	int prefix, json;
	unsigned char *buf;    /* CHUNK bytes */
	int64_t arrays;        /* lines printed */
} sink;

/* Reads the data of the array whose header is h in chunks, and prints its line. */
static int summarise(sink *o, npy_src *src, const char *label, const tensor *h, const char *name,
		     char *err)
{
	int64_t nbytes = tensor_nbytes(h), off = 0;
	tstat s;

	if (src->left >= 0 && nbytes > src->left)
		return err_set(err, "%s: truncated data: expected %lld bytes, got %lld (the file ends first)",
			       label, (long long)nbytes, (long long)src->left);
	tstat_init(&s, h);
	while (off < nbytes) {
		size_t want = nbytes - off < (int64_t)CHUNK ? (size_t)(nbytes - off) : CHUNK;
		int64_t got = npy_src_fill(src, o->buf, want, label, err);
		if (got < 0)
			return -1;
		tstat_add(&s, off, o->buf, (size_t)got);
		off += got;
		if ((size_t)got < want)
			return err_set(err, "%s: truncated data: expected %lld bytes, got %lld", label,
				       (long long)nbytes, (long long)off);
	}
	report(&s, o->file, name, o->prefix, o->json);
	o->arrays++;
	return 0;
}

/* Every array of a .npy stream, named by its index. */
static int info_stream(sink *o, npy_src *src, const char *label, char *err)
{
	for (int64_t idx = 0;; idx++) {
		tensor h;
		char name[32];
		int rc = npy_src_header(src, label, &h, err);
		if (rc <= 0)
			return rc;
		snprintf(name, sizeof name, "%lld", (long long)idx);
		if (summarise(o, src, label, &h, name, err))
			return -1;
	}
}

/* Every member of an .npz, one at a time, so a checkpoint need not fit in memory. */
static int visit_member(void *ctx, const char *name, const char *label, const tensor *hdr,
			npy_src *data, char *err)
{
	return summarise(ctx, data, label, hdr, name, err);
}

static int info_file(const char *path, int prefix, int json, char *err)
{
	int is_stdin = !strcmp(path, "-");
	const char *label = is_stdin ? "<stdin>" : path;
	sniffed sn = { 0 };
	sink o = { path, prefix, json, NULL, 0 };
	npy_src src;
	int rc;

	sn.f = is_stdin ? stdin : fopen(path, "rb");
	if (!sn.f)
		return err_sys(err, "%s: cannot open", path);
	o.buf = malloc(CHUNK);
	if (!o.buf) {
		rc = err_set(err, "%s: out of memory", label);
		goto out;
	}
	sn.npre = fread(sn.pre, 1, sizeof sn.pre, sn.f);
	if (sn.npre < sizeof sn.pre && ferror(sn.f)) {
		rc = err_sys(err, "%s: read error", label);
		goto out;
	}
	npy_src_file(&src, sn.f);
	if (src.left >= 0)
		src.left += (int64_t)sn.npre;
	src.read = sniffed_read;
	src.ctx = &sn;
	if (sn.npre == 4 && (!memcmp(sn.pre, "PK\3\4", 4) || !memcmp(sn.pre, "PK\5\6", 4)))
		/* A named file is read through its central directory; stdin is streamed. */
		rc = npz_scan(label, is_stdin ? &src : NULL, visit_member, &o, err);
	else
		rc = info_stream(&o, &src, label, err);
	/* a silent exit 0 would pass an empty file (a failed download, a producer that died
	 * before writing) as an empty dataset */
	if (rc == 0 && o.arrays == 0)
		rc = err_set(err, "%s: %s", label, sn.npre ? "no array in the archive" : "empty: no array in it");
out:
	free(o.buf);
	if (!is_stdin)
		fclose(sn.f);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	char err[ERR_MAX];
	char *dash[] = { "-" };
	int status = CLI_OK;

	parse_args(argc, argv, &o);
	if (o.nfiles == 0) {
		o.files = dash;
		o.nfiles = 1;
	}
	for (int i = 0; i < o.nfiles; i++) {
		if (info_file(o.files[i], o.nfiles > 1, o.json, err)) {
			fflush(stdout);
			cli_warn("%s", err);
			status = CLI_FAIL;
		}
	}
	if (cli_close_stdout())
		status = CLI_FAIL;
	return status;
}
