/* tensor-png: image batches and feature maps as labelled grid PNGs, and animated GIFs. */
#include "util/buf.h"
#include "util/cli.h"
#include "util/errmsg.h"
#include "img/colormap.h"
#include "img/grid.h"
#include "img/imgenc.h"
#include "array/npy.h"
#include "util/outfile.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char PROG[] = "tensor-png";
static const char HELP[] =
	"Usage: tensor-png [OPTION]... [FILE]\n"
	"Draw tensors as labelled grid pictures: a PNG, or an animated GIF from a stream.\n"
	"\n"
	"Reads a .npy stream from FILE, or standard input when FILE is - or absent. Each image\n"
	"array becomes one grid picture, cells numbered by their index in small digits above\n"
	"them:\n"
	"  [N, H, W, 3] or [N, H, W, 1]  a batch: one RGB or gray cell per image\n"
	"  [N, H, W, C], other C         feature maps: one gray cell per channel of one image\n"
	"  [H, W, C]                     the same for a batch of one; [H, W] one gray image\n"
	"String and 1-d arrays (a dataset stream's labels and classes) are skipped.\n"
	"Each cell is scaled from its own min..max to 0..255 (a constant cell is mid-gray,\n"
	"NaN black); uint8 arrays are drawn as they are (0..255) unless --range is given.\n"
	"Without --gif the first selected array is drawn and the rest of the stream is read\n"
	"and checked; with --gif every selected array is a frame (all the same size), each\n"
	"held in memory until the GIF is written: thin a long stream with --every.\n"
	"\n"
	"Options:\n"
	"  -o, --output FILE   write here (atomically) instead of standard output\n"
	"  -g, --gif           an animated GIF, one frame per selected array, looping\n"
	"  -d, --delay CS      GIF frame delay in hundredths of a second (default 50)\n"
	"      --first F       the first array drawn, counting image arrays from 0 (default 0)\n"
	"      --every E       then every E-th image array after it (default 1): a stream that\n"
	"                      alternates two layers gives each with --every 2 --first 0|1\n"
	"  -i, --index I       only image I of a batch; the image whose maps are drawn (default 0)\n"
	"  -m, --maps          draw the channels as maps even when C is 1 or 3\n"
	"  -r, --range LO,HI   scale LO..HI to 0..255 in every cell (values beyond are clipped)\n"
	"  -c, --cols N        cells across (default: ceil(sqrt(cells)))\n"
	"  -s, --scale Z       draw each value as Z x Z pixels (default 1)\n"
	"  -n, --no-labels     no index above the cells\n"
	"      --overlay IMAGES  draw maps over their images: the arrays drawn are maps\n"
	"                      [N, H, W, 1] (e.g. cnn-apply --gradcam), IMAGES a .npy whose first\n"
	"                      array is their uint8 images [N, H, W, 3|1] (a dataset stream is);\n"
	"                      map k is normalised to 0..1 from its own min..max (a constant map\n"
	"                      is all 0, NaN is 0; --range LO,HI instead scales every map from\n"
	"                      LO..HI, clipped), coloured and blended over image k:\n"
	"                      round((1 - A) * image + A * 255 * colour); a colour bar (0 at the\n"
	"                      bottom, 1 at the top) stands at the right of the grid\n"
	"      --colormap NAME  jet (default), viridis or inferno: matplotlib's tables\n"
	"      --alpha A       the colormap's weight in the blend, 0..1 (default 0.5): 0 gives\n"
	"                      the image, 1 the colormap alone\n"
	"  -h, --help          show this help and exit\n"
	"      --version       show the version and exit\n"
	"\n"
	"Layout: cells fill rows left to right; each sits under a 7-pixel label strip and is\n"
	"as wide as its picture or its label; 2 black pixels separate cells.\n"
	"\n"
	"Example:\n"
	"  cnn-apply --gray test.npy | cnn-apply --conv pipelines/filters7x7.npy | tensor-png > maps.png\n"
	"  tensor-png --index 0 --scale 2 -o photo.png test.npy\n"
	"  tensor-png --gif --every 2 --first 0 --delay 20 -o conv1_2.gif snapshots.npy\n"
	"  tensor-png --overlay test.npy --colormap jet --alpha 0.4 -o gradcam.png cam.npy\n";

struct opts {
	const char *input, *output, *overlay;
	int gif, delay, every, maps;
	int64_t first, index;
	const cmap *cm;         /* with overlay */
	double alpha;
	grid_opts g;
};

/* --overlay: the images under the maps. */
typedef struct {
	tensor images;          /* u1 [n, h, w, ch] */
	int64_t n;
	int h, w, ch;
} overlay;

static void parse_range(const char *s, grid_opts *g)
{
	char lo[64];
	const char *comma = strchr(s, ',');

	if (!comma || (size_t)(comma - s) >= sizeof lo)
		cli_usage("--range wants LO,HI, got '%s'", s);
	memcpy(lo, s, (size_t)(comma - s));
	lo[comma - s] = '\0';
	g->lo = cli_opt_double("--range", lo, -1e300, 1e300);
	g->hi = cli_opt_double("--range", comma + 1, -1e300, 1e300);
	if (!(g->lo < g->hi))
		cli_usage("--range: LO must be below HI, got '%s'", s);
	g->fixed = 1;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_FIRST = 256, OPT_EVERY, OPT_OVERLAY, OPT_COLORMAP, OPT_ALPHA, OPT_VERSION };
	int cm_given = 0, alpha_given = 0;
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "gif", no_argument, NULL, 'g' },
		{ "delay", required_argument, NULL, 'd' },
		{ "first", required_argument, NULL, OPT_FIRST },
		{ "every", required_argument, NULL, OPT_EVERY },
		{ "index", required_argument, NULL, 'i' },
		{ "maps", no_argument, NULL, 'm' },
		{ "range", required_argument, NULL, 'r' },
		{ "cols", required_argument, NULL, 'c' },
		{ "scale", required_argument, NULL, 's' },
		{ "no-labels", no_argument, NULL, 'n' },
		{ "overlay", required_argument, NULL, OPT_OVERLAY },
		{ "colormap", required_argument, NULL, OPT_COLORMAP },
		{ "alpha", required_argument, NULL, OPT_ALPHA },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	grid_opts_default(&o->g);
	o->delay = 50;
	o->every = 1;
	o->index = -1;
	o->cm = cmap_find("jet");
	o->alpha = 0.5;
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "o:gd:i:mr:c:s:nh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case 'g':
			o->gif = 1;
			break;
		case 'd':
			o->delay = cli_opt_int("--delay", optarg, 0, 65535);
			break;
		case OPT_FIRST:
			o->first = cli_opt_i64("--first", optarg, 0, INT64_MAX);
			break;
		case OPT_EVERY:
			o->every = cli_opt_int("--every", optarg, 1, 1 << 30);
			break;
		case 'i':
			o->index = cli_opt_i64("--index", optarg, 0, INT64_MAX);
			break;
		case 'm':
			o->maps = 1;
			break;
		case 'r':
			parse_range(optarg, &o->g);
			break;
		case 'c':
			o->g.cols = cli_opt_int("--cols", optarg, 1, GRID_MAX_SIDE);
			break;
		case 's':
			o->g.scale = cli_opt_int("--scale", optarg, 1, 256);
			break;
		case 'n':
			o->g.labels = 0;
			break;
		case OPT_OVERLAY:
			o->overlay = optarg;
			break;
		case OPT_COLORMAP:
			o->cm = cmap_find(optarg);
			if (!o->cm)
				cli_usage("--colormap: no colormap '%s' (there are " CMAP_NAMES ")", optarg);
			cm_given = 1;
			break;
		case OPT_ALPHA:
			o->alpha = cli_opt_double("--alpha", optarg, 0, 1);
			alpha_given = 1;
			break;
		case 'h':
			cli_help(HELP);
		case OPT_VERSION:
			cli_version();
		default:
			cli_try_help();
		}
	}
	if (argc - optind > 1)
		cli_usage("one input file at most");
	if (!o->overlay && (cm_given || alpha_given))
		cli_usage("--colormap and --alpha colour maps drawn over images: they need --overlay");
	if (o->overlay && o->maps)
		cli_usage("--overlay draws one-channel maps over images: not with --maps");
	o->input = optind < argc ? argv[optind] : "-";
	if (!o->output && isatty(STDOUT_FILENO))
		cli_usage("refusing to write a picture to a terminal: use -o FILE or redirect");
}

/* The frames drawn so far: each w x h x ch bytes. */
typedef struct {
	uint8_t **pix;
	size_t cap;
	int n, w, h, ch;
} frames;

static void frames_free(frames *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->pix[i]);
	free(f->pix);
}

/* The first array of path: the images maps are drawn over (--overlay). */
static int overlay_read(overlay *ov, const char *path, char *err)
{
	FILE *f = fopen(path, "rb");
	tensor *t = &ov->images;
	int rc;

	memset(ov, 0, sizeof *ov);
	if (!f)
		return err_set(err, "%s: cannot open: %s", path, strerror(errno));
	rc = npy_read(f, path, t, err);
	fclose(f);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return err_set(err, "%s: empty: no images to draw the maps over", path);
	if (t->dtype != DT_U1 || t->ndim < 3 || t->ndim > 4 ||
	    (t->shape[t->ndim - 1] != 3 && t->shape[t->ndim - 1] != 1)) {
		tensor_free(t);
		return err_set(err, "%s: the first array is not uint8 images [N, H, W, 3] or "
			       "[N, H, W, 1]: the maps are drawn over it", path);
	}
	ov->n = t->ndim == 4 ? t->shape[0] : 1;
	ov->h = (int)t->shape[t->ndim - 3], ov->w = (int)t->shape[t->ndim - 2];
	ov->ch = (int)t->shape[t->ndim - 1];
	if (t->shape[t->ndim - 3] > GRID_MAX_SIDE || t->shape[t->ndim - 2] > GRID_MAX_SIDE) {
		tensor_free(t);
		return err_set(err, "%s: images too large to draw", path);
	}
	return 0;
}

/* The maps of t over ov's images as an RGB grid with a colour bar. */
static int draw_overlay(const struct opts *o, const overlay *ov, const tensor *t,
			const char *name, uint8_t **pix, int *w, int *h, char *err)
{
	const char *ovname = o->overlay;
	grid_cells maps, rgb;
	grid_opts g = o->g;
	int64_t n = t->ndim == 4 ? t->shape[0] : 1;
	uint8_t *blend;
	int rc;

	if (grid_cells_from(&maps, t->data, t->dtype, t->ndim, t->shape, 0, o->index, name, err))
		return -1;
	if (t->ndim > 2 && t->shape[t->ndim - 1] != 1)
		return err_set(err, "%s: %lld channels: maps drawn over images have one, [N, H, W, 1]",
			       name, (long long)t->shape[t->ndim - 1]);
	if (n != ov->n || maps.h != ov->h || maps.w != ov->w)
		return err_set(err, "%s: %lld maps of %dx%d, but %s holds %lld images of %dx%d: "
			       "a map for each image, the same size", name, (long long)n, maps.w,
			       maps.h, ovname, (long long)ov->n, ov->w, ov->h);
	if (cmap_overlay(&blend, &maps, ov->images.data, ov->ch, &g, o->cm, o->alpha, err))
		return -1;
	rgb = maps;
	rgb.data = blend, rgb.dtype = DT_U1, rgb.ch = 3;
	rgb.base = 0, rgb.sn = (int64_t)maps.h * maps.w * 3, rgb.sy = (int64_t)maps.w * 3;
	rgb.sx = 3, rgb.sc = 1;
	g.fixed = 1, g.lo = 0, g.hi = 255;
	rc = grid_draw(&rgb, &g, pix, w, h, err);
	free(blend);
	if (rc)
		return -1;
	if (cmap_add_bar(pix, w, *h, g.labels ? GRID_LABEL_H : 0, g.gap > 2 ? g.gap : 2, o->cm,
			 err)) {
		free(*pix);
		return -1;
	}
	return 0;
}

/* Draws one array as a picture and keeps it as the next frame. */
static int draw(const struct opts *o, const overlay *ov, const tensor *t, int64_t idx,
		const char *inname, frames *f, char *err)
{
	char name[ERR_MAX / 2];
	grid_cells cells;
	grid_opts g = o->g;
	uint8_t *pix;
	int w, h, rc;

	snprintf(name, sizeof name, "%s: array %lld", inname, (long long)idx);
	if (o->overlay) {
		if (draw_overlay(o, ov, t, name, &pix, &w, &h, err))
			return -1;
		cells.ch = 3;
	} else {
		if (!g.fixed && t->dtype == DT_U1)
			g.fixed = 1, g.lo = 0, g.hi = 255;
		rc = grid_cells_from(&cells, t->data, t->dtype, t->ndim, t->shape, o->maps,
				     o->index, name, err);
		if (rc || grid_draw(&cells, &g, &pix, &w, &h, err))
			return -1;
	}
	if (f->n && (w != f->w || h != f->h || cells.ch != f->ch)) {
		free(pix);
		return err_set(err, "%s: a %dx%d %s picture, but the first frame is %dx%d %s: "
			       "GIF frames must match", name, w, h, cells.ch == 3 ? "RGB" : "gray",
			       f->w, f->h, f->ch == 3 ? "RGB" : "gray");
	}
	if (f->n == INT_MAX || buf_grow_array(&f->pix, &f->cap, (size_t)f->n + 1, sizeof *f->pix)) {
		free(pix);
		return err_set(err, "%s: out of memory", name);
	}
	f->pix[f->n++] = pix;
	f->w = w, f->h = h, f->ch = cells.ch;
	return 0;
}

/* Reads past n bytes of data we do not draw, so nothing unwanted is held in memory. */
static int skip(npy_src *s, int64_t n, const char *name, char *err)
{
	unsigned char buf[16384];

	while (n > 0) {
		size_t k = n < (int64_t)sizeof buf ? (size_t)n : sizeof buf;
		int64_t got = npy_src_fill(s, buf, k, name, err);
		if (got < 0)
			return -1;
		if ((size_t)got < k)
			return err_set(err, "%s: truncated data: the stream ends inside an array", name);
		n -= got;
	}
	return 0;
}

/* Every array of the stream; the selected image arrays drawn into f. */
static int read_stream(const struct opts *o, const overlay *ov, FILE *in, const char *inname,
		       frames *f, int64_t *nimages, char *err)
{
	npy_src s;
	int64_t nimg = 0;

	npy_src_file(&s, in);
	for (int64_t idx = 0;; idx++) {
		tensor t;
		int rc = npy_src_header(&s, inname, &t, err), want;

		*nimages = nimg;
		if (rc <= 0)
			return rc;
		want = t.dtype != DT_U && t.ndim > 1 && nimg >= o->first &&
		       (nimg - o->first) % o->every == 0 && (o->gif || f->n == 0);
		nimg += t.dtype != DT_U && t.ndim > 1;
		if (!want) {
			if (s.left >= 0 && tensor_nbytes(&t) > s.left)
				return err_set(err, "%s: truncated data: array %lld wants %lld bytes, %lld are left",
					       inname, (long long)idx, (long long)tensor_nbytes(&t),
					       (long long)s.left);
			if (skip(&s, tensor_nbytes(&t), inname, err))
				return -1;
			continue;
		}
		if (npy_src_data(&s, inname, &t, err) < 0)
			return -1;
		rc = draw(o, ov, &t, idx, inname, f, err);
		tensor_free(&t);
		if (rc)
			return -1;
	}
}

static int encode(const struct opts *o, const frames *f, unsigned char **buf, size_t *len,
		  char *err)
{
	if (o->gif)
		return imgenc_gif((const uint8_t *const *)f->pix, f->n, f->w, f->h, f->ch, o->delay,
				  buf, len, err);
	return imgenc_png(f->pix[0], f->w, f->h, f->ch, buf, len, err);
}

int main(int argc, char **argv)
{
	struct opts o;
	char err[ERR_MAX];
	const char *inname;
	FILE *in;
	frames f = { 0 };
	overlay ov = { 0 };
	int64_t nimg;
	unsigned char *buf = NULL;
	size_t len = 0;
	outfile out;

	parse_args(argc, argv, &o);
	if (o.overlay && overlay_read(&ov, o.overlay, err))
		cli_die("%s", err);
	inname = strcmp(o.input, "-") ? o.input : "<stdin>";
	in = strcmp(o.input, "-") ? fopen(o.input, "rb") : stdin;
	if (!in)
		cli_die("%s: cannot open:", o.input);
	if (read_stream(&o, &ov, in, inname, &f, &nimg, err))
		cli_die("%s", err);
	if (f.n == 0)
		cli_die("%s: no image array to draw (%lld image array%s in the stream, --first %lld)",
			inname, (long long)nimg, nimg == 1 ? "" : "s", (long long)o.first);
	if (encode(&o, &f, &buf, &len, err))
		cli_die("%s", err);
	if (outfile_open(&out, o.output, err))
		cli_die("%s", err);
	if (fwrite(buf, 1, len, out.fp) != len) {
		outfile_abort(&out);
		cli_die("%s: write error:", o.output ? o.output : "<stdout>");
	}
	if (outfile_commit(&out, err))
		cli_die("%s", err);
	free(buf);
	frames_free(&f);
	tensor_free(&ov.images);
	if (in != stdin)
		fclose(in);
	return cli_close_stdout() ? CLI_FAIL : CLI_OK;
}
