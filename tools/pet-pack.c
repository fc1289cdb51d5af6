/* pet-pack: decode and resize a list of images into a dataset tensor stream
 * (images u1 [N,H,W,3], labels i8 [N], classes <U [K]). */
#include "cli.h"
#include "err.h"
#include "npy.h"
#include "outfile.h"
#include "pack.h"
#include "petset.h"
#include "progress.h"
#include "tensor.h"

#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char PROG[] = "pet-pack";

static const char HELP[] =
	"Usage: pet-pack [OPTION]... [IMAGE]...\n"
	"Decode and resize images into a dataset tensor stream (images, labels, classes).\n"
	"\n"
	"Reads an image list (pet-split's TSV: path<TAB>label<TAB>class, '#' lines skipped, a\n"
	"'# classes: NAME...' line naming the classes) from --list or standard input, or takes\n"
	"IMAGE paths as arguments (label -1, no classes: for prediction). JPEG, PNG and GIF are\n"
	"told apart by their bytes; grayscale and CMYK become RGB; EXIF orientation is applied.\n"
	"Writes three .npy arrays back to back: images uint8 [N,H,W,3] (RGB), labels int64 [N],\n"
	"classes unicode [K]. Unreadable, truncated or corrupt files are skipped with a line\n"
	"each and a count on stderr, and N counts only the images packed.\n"
	"\n"
	"  -l, --list FILE      image list to read ('-': standard input, the default without IMAGE)\n"
	"  -s, --size S|WxH     output size in pixels, 1..4096 (default 224)\n"
	"  -f, --fit MODE       stretch: whole image to the size, aspect not kept (default);\n"
	"                       crop: scale to cover the size, keep the centre;\n"
	"                       pad: scale to fit inside the size, centred on black\n"
	"  -j, --jobs N         decoding threads, 1..256 (default: all cores); the output does\n"
	"                       not depend on it\n"
	"  -o, --output FILE    write the stream to FILE ('-': standard output, the default)\n"
	"      --strict         a file that cannot be used is an error, not a skip\n"
	"      --full-decode    always decode JPEGs at full size (else a JPEG at least twice the\n"
	"                       output size is decoded at 1/2, 1/4 or 1/8 scale, as Pillow's\n"
	"                       Image.draft() does: faster, slightly different pixels)\n"
	"  -q, --quiet          no progress bar\n"
	"      --progress       progress bar even when stderr is not a terminal\n"
	"  -h, --help           show this help and exit\n"
	"      --version        show the version and exit\n"
	"\n"
	"Resizing is antialiased: a triangle filter as wide as the reduction, Pillow's\n"
	"Image.resize(size, Image.BILINEAR) in 14-bit fixed point. N is known only at the end:\n"
	"a file gets the images in place and their header last; a pipe gets it all at the end,\n"
	"staged meanwhile in a temporary file in $TMPDIR.\n"
	"\n"
	"Example:\n"
	"  pet-split data --breeds samoyed,shiba_inu -o lists\n"
	"  pet-pack --size 224 < lists/train.tsv > train.npy\n"
	"  pet-pack -s 64x48 --fit crop photo1.jpg photo2.png -o photos.npy\n";

struct opts {
	const char *list, *output;
	pack_opts pack;
	int strict;
	enum progress_mode progress;
	char **images;
	int nimages;
};

static void parse_size(const char *s, int *w, int *h)
{
	char buf[32], *x;

	if (strlen(s) >= sizeof buf)
		cli_usage(PROG, "--size: expected S or WxH, not '%s'", s);
	strcpy(buf, s);
	x = strchr(buf, 'x');
	if (x)
		*x = 0;
	*w = cli_opt_int(PROG, "--size", buf, 1, 4096);
	*h = x ? cli_opt_int(PROG, "--size", x + 1, 1, 4096) : *w;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_STRICT = 256, OPT_FULL, OPT_PROGRESS, OPT_VERSION };
	static const struct option longs[] = {
		{ "list", required_argument, NULL, 'l' },
		{ "size", required_argument, NULL, 's' },
		{ "fit", required_argument, NULL, 'f' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "strict", no_argument, NULL, OPT_STRICT },
		{ "full-decode", no_argument, NULL, OPT_FULL },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	memset(o, 0, sizeof *o);
	o->output = "-";
	o->pack.w = o->pack.h = 224;
	o->pack.fit = RESIZE_STRETCH;
	o->pack.threads = cores < 1 ? 1 : cores > 256 ? 256 : (int)cores;
	o->progress = PROGRESS_AUTO;
	argv[0] = (char *)PROG; /* so getopt names the program as we do */
	while ((c = getopt_long(argc, argv, "l:s:f:j:o:qh", longs, NULL)) != -1) {
		switch (c) {
		case 'l': o->list = optarg; break;
		case 's': parse_size(optarg, &o->pack.w, &o->pack.h); break;
		case 'f':
			if (resize_fit_parse(optarg, &o->pack.fit) < 0)
				cli_usage(PROG, "--fit: expected stretch, crop or pad, not '%s'", optarg);
			break;
		case 'j': o->pack.threads = cli_opt_int(PROG, "--jobs", optarg, 1, 256); break;
		case 'o': o->output = optarg; break;
		case OPT_STRICT: o->strict = 1; break;
		case OPT_FULL: o->pack.full_decode = 1; break;
		case 'q': o->progress = PROGRESS_OFF; break;
		case OPT_PROGRESS: o->progress = PROGRESS_ON; break;
		case 'h': cli_help(HELP);
		case OPT_VERSION: cli_version(PROG);
		default: cli_try_help(PROG);
		}
	}
	o->images = argv + optind;
	o->nimages = argc - optind;
	if (o->list && o->nimages)
		cli_usage(PROG, "give a --list or IMAGE arguments, not both");
	if (!o->list && !o->nimages)
		o->list = "-";
	if (!strcmp(o->output, "-") && isatty(STDOUT_FILENO))
		cli_usage(PROG, "refusing to write a binary stream to a terminal: use -o FILE or a pipe");
}

static void load_list(const struct opts *o, petset_list *l)
{
	char err[ERR_MAX];
	FILE *f;

	if (!o->list) {
		memset(l, 0, sizeof *l);
		for (int i = 0; i < o->nimages; i++)
			if (petset_list_add(l, o->images[i], -1, err) < 0)
				cli_die(PROG, "%s", err);
		return;
	}
	f = strcmp(o->list, "-") ? fopen(o->list, "r") : stdin;
	if (!f)
		cli_die(PROG, "%s:", o->list);
	if (petset_list_read(f, strcmp(o->list, "-") ? o->list : "<stdin>", l, err) < 0)
		cli_die(PROG, "%s", err);
	if (f != stdin)
		fclose(f);
	if (!l->n)
		cli_die(PROG, "%s: no images listed", strcmp(o->list, "-") ? o->list : "<stdin>");
}

/* Where packed images wait until N is known, when the output cannot take them at once (a
 * pipe): an unlinked file, beside the output so a big dataset lands on the disk the user
 * chose, else in $TMPDIR. Decoding twice to count first would double the slowest step;
 * keeping the images in memory would not be bounded. */
static FILE *open_stage(const char *output)
{
	char path[PATH_MAX], dir[PATH_MAX];
	const char *tmpdir = getenv("TMPDIR");
	FILE *f;
	int fd, n;

	if (strcmp(output, "-")) {
		if ((size_t)snprintf(dir, sizeof dir, "%s", output) >= sizeof dir)
			cli_die(PROG, "%s: path too long", output);
		n = snprintf(path, sizeof path, "%s/.pet-pack.XXXXXX", dirname(dir));
	} else {
		n = snprintf(path, sizeof path, "%s/pet-pack.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	}
	if (n < 0 || (size_t)n >= sizeof path)
		cli_die(PROG, "staging file name too long");
	fd = mkstemp(path);
	if (fd < 0)
		cli_die(PROG, "%s: cannot create a staging file there:", strcmp(output, "-") ? output : path);
	unlink(path);
	if (!(f = fdopen(fd, "w+b")))
		cli_die(PROG, "%s:", path);
	return f;
}

struct run {
	const struct opts *o;
	const petset_list *l;
	const char *name;       /* the output, for messages */
	outfile out;
	int direct;             /* images go straight into out (a regular file), header last */
	off_t base;             /* where the stream starts in out */
	int64_t hlen;           /* the images' header length, whatever N */
	FILE *images;           /* out.fp when direct, else the staging file */
	int64_t *labels, packed;
	size_t skipped;
	progress bar;
};

static tensor images_tensor(const struct run *r, int64_t n)
{
	tensor t = { .dtype = DT_U1, .ndim = 4, .shape = { n, r->o->pack.h, r->o->pack.w, 3 } };
	return t;
}

/* A regular file (the temporary beside -o FILE, or stdout redirected to a file) takes the
 * images where they belong at once, behind a zeroed header written when N is known: no
 * staging copy. numpy's header leaves room for N to grow to 21 digits in place, so the
 * length does not depend on N. A pipe gets everything at the end, from the staging file. */
static void open_output(struct run *r)
{
	char err[ERR_MAX];
	unsigned char hdr[1024] = { 0 };
	tensor t = images_tensor(r, (int64_t)r->l->n);
	struct stat st;
	int fd;

	if ((r->hlen = npy_format_header(&t, hdr, sizeof hdr, r->name, err)) < 0)
		cli_die(PROG, "%s", err);
	if (outfile_open(&r->out, r->o->output, err) < 0)
		cli_die(PROG, "%s", err);
	fd = fileno(r->out.fp);
	r->direct = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && !(fcntl(fd, F_GETFL) & O_APPEND) &&
		    (r->base = lseek(fd, 0, SEEK_CUR)) >= 0;
	if (!r->direct) {
		r->images = open_stage(r->o->output);
		return;
	}
	r->images = r->out.fp;
	memset(hdr, 0, sizeof hdr);  /* an interrupted run leaves no valid-looking header */
	if (fwrite(hdr, 1, (size_t)r->hlen, r->images) != (size_t)r->hlen)
		cli_die(PROG, "%s:", r->name);
}

/* nothing written: the temporary removed, or stdout's file cut back to where it was */
static _Noreturn void fail(struct run *r, const char *msg)
{
	if (r->out.path)
		outfile_abort(&r->out);
	else if (r->direct && (fflush(stdout), ftruncate(STDOUT_FILENO, r->base)) < 0)
		cli_warn(PROG, "%s: cannot remove what was written:", r->name);
	cli_die(PROG, "%s", msg);
}

static int on_image(void *ctx, size_t i, const uint8_t *pix, const char *msg, char *err)
{
	struct run *r = ctx;
	size_t bytes = (size_t)r->o->pack.w * r->o->pack.h * 3;

	if (!pix) {
		if (r->o->strict)
			return err_set(err, "%s", msg);
		/* over the bar's line, which the next update redraws below */
		fprintf(stderr, "%s%s: skipped %s\n", r->bar.enabled ? "\r\033[K" : "", PROG, msg);
		r->skipped++;
	} else {
		if (fwrite(pix, 1, bytes, r->images) != bytes)
			return err_sys(err, "%s: %s", r->name, r->direct ? "write error" : "staging file");
		r->labels[r->packed++] = r->l->e[i].label;
	}
	progress_update(&r->bar, (int64_t)i + 1, NULL);
	return 0;
}

/* the images' header, the staged images (unless already in place), labels, classes */
static int write_stream(struct run *r, char *err)
{
	tensor images = images_tensor(r, r->packed);
	tensor labels = { .dtype = DT_I8, .ndim = 1, .shape = { r->packed }, .data = r->labels };
	tensor classes;
	FILE *out = r->out.fp;
	char buf[1 << 16];
	size_t n;
	int rc;

	if (!r->direct) {
		if (npy_write_header(out, r->name, &images, err) < 0)
			return -1;
		if (fflush(r->images) != 0 || fseek(r->images, 0, SEEK_SET) != 0)
			return err_sys(err, "%s: staging file", r->name);
		while ((n = fread(buf, 1, sizeof buf, r->images)) > 0)
			if (fwrite(buf, 1, n, out) != n)
				return err_sys(err, "%s", r->name);
		if (ferror(r->images))
			return err_sys(err, "%s: staging file", r->name);
	}
	if (npy_write(out, r->name, &labels, err) < 0)
		return -1;
	if (tensor_from_strings(&classes, (const char *const *)r->l->classes, r->l->nclasses, err) < 0)
		return -1;
	rc = npy_write(out, r->name, &classes, err);
	tensor_free(&classes);
	if (rc == 0 && r->direct) {
		unsigned char hdr[1024];
		int64_t len = npy_format_header(&images, hdr, sizeof hdr, r->name, err);
		if (len < 0)
			return -1;
		if (len != r->hlen)  /* numpy's room for 21 digits makes this impossible */
			return err_set(err, "%s: the images' header changed length", r->name);
		if (fseeko(out, r->base, SEEK_SET) != 0 || fwrite(hdr, 1, (size_t)len, out) != (size_t)len ||
		    fseeko(out, 0, SEEK_END) != 0)
			return err_sys(err, "%s", r->name);
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	petset_list l;
	struct run r = { 0 };
	char err[ERR_MAX];
	const char **paths;

	parse_args(argc, argv, &o);
	load_list(&o, &l);
	r.o = &o;
	r.l = &l;
	r.name = strcmp(o.output, "-") ? o.output : "<stdout>";
	r.labels = malloc(sizeof *r.labels * l.n);
	paths = malloc(sizeof *paths * l.n);
	if (!r.labels || !paths)
		cli_die(PROG, "out of memory");
	for (size_t i = 0; i < l.n; i++)
		paths[i] = l.e[i].path;
	open_output(&r);
	progress_init(&r.bar, PROG, (int64_t)l.n, 0, o.progress);
	progress_set_unit(&r.bar, "img");
	if (pack_run(paths, l.n, &o.pack, on_image, &r, err) < 0)
		fail(&r, err);
	progress_end(&r.bar);
	if (r.skipped)
		cli_warn(PROG, "%zu of %zu images skipped", r.skipped, l.n);
	if (!r.packed)
		fail(&r, "no image could be packed: nothing written");
	if (write_stream(&r, err) < 0)
		fail(&r, err);
	if (outfile_commit(&r.out, err) < 0)
		cli_die(PROG, "%s", err);
	if (!r.direct)
		fclose(r.images);
	free(paths);
	free(r.labels);
	petset_list_free(&l);
	return cli_close_stdout(PROG);
}
