/* tfevents-write: text lines on stdin to a TensorBoard event file, live. */
#include "util/buf.h"
#include "util/cli.h"
#include "util/errmsg.h"
#include "tb/evline.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char PROG[] = "tfevents-write";
static const char HELP[] =
	"Usage: tfevents-write --logdir DIR [OPTION]...\n"
	"Turn text lines on standard input into a TensorBoard event file, live.\n"
	"\n"
	"Writes DIR/RUN/events.out.tfevents.<seconds>.<hostname> (folders created; an\n"
	"existing file is never overwritten). Each line of standard input is one of:\n"
	"\n"
	"  STEP TAG VALUE               a scalar (VALUE a number; nan and inf allowed)\n"
	"  STEP TAG scalar VALUE        the same, spelled out\n"
	"  STEP TAG hist V1 V2 ...      a histogram of the numbers on the line\n"
	"  STEP TAG hist FILE.npy       a histogram of every element of the file's first array\n"
	"  STEP TAG image FILE.png      an image, the PNG stored as it is\n"
	"  STEP TAG image FILE.npy      an image from a uint8 (0-255) or float (0-1) array of\n"
	"                               shape HxW, HxWx1 or HxWx3\n"
	"  STEP TAG text WORDS...       text (markdown); the rest of the line, \\n for a newline\n"
	"  graph default [SIZE [K]]     the graph of the default network (SIZE x SIZE x 3\n"
	"                               inputs, default 224; K classes, default 2)\n"
	"  graph MODEL.npz              the graph of a checkpoint's model (cnn-train -o)\n"
	"  graph spec H W K SPEC...     the graph of a model spec (see cnn-train --help)\n"
	"\n"
	"STEP is an integer >= 0, TAG a word (slashes group tags in TensorBoard); fields are\n"
	"separated by spaces or tabs. Blank lines and lines starting with # are skipped. NaN\n"
	"and infinite values are left out of a histogram and reported on stderr. A FILE must\n"
	"be a regular file of at most 1 GiB (not a FIFO or device).\n"
	"\n"
	"Everything read is in the file within 2 seconds, so a live TensorBoard follows a\n"
	"pipe. A bad line is an error naming its line number (exit 1); everything before it\n"
	"stays in the file, complete. So does a failed write (a full disk): the file is cut\n"
	"back to its last complete record.\n"
	"\n"
	"Options:\n"
	"  -l, --logdir DIR   the log folder (required)\n"
	"  -r, --run NAME     the run's subfolder (default: none, files go in DIR itself)\n"
	"  -s, --split        the tag's first component names the run: '5 train/Loss 0.7'\n"
	"                     goes to DIR/train as Loss, '5 test/Loss 0.8' to DIR/test, so\n"
	"                     TensorBoard draws both runs on one chart (tags without a /\n"
	"                     and graph lines go to --run)\n"
	"  -k, --keep-going   report a bad line, skip it and go on; exit 1 at the end\n"
	"  -q, --quiet        no warnings about NaN/Inf left out of histograms\n"
	"  -h, --help         show this help and exit\n"
	"      --version      show the version and exit\n"
	"\n"
	"Example:\n"
	"  (echo 'graph default'; for s in 1 2 3; do echo \"$s Loss 0.$((9 - s))\"; done) |\n"
	"      tfevents-write --logdir runs --run demo\n"
	"  cnn-train --train train.npy --test test.npy -o model.npz |\n"
	"      tfevents-write --logdir runs/pets --split --run train\n";

struct opts {
	const char *logdir, *run;
	int keep_going, quiet, split;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "logdir", required_argument, NULL, 'l' },
		{ "run", required_argument, NULL, 'r' },
		{ "keep-going", no_argument, NULL, 'k' },
		{ "split", no_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "l:r:kqsh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o->logdir = optarg;
			break;
		case 'r':
			o->run = optarg;
			break;
		case 'k':
			o->keep_going = 1;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 's':
			o->split = 1;
			break;
		case 'h':
			cli_help(HELP);
		case 'V':
			cli_version();
		default:
			cli_try_help();
		}
	}
	if (optind < argc)
		cli_usage("unexpected argument '%s' (lines come on standard input)", argv[optind]);
	if (!o->logdir || !*o->logdir)
		cli_usage("--logdir DIR is required");
}

/* ---- lines from a file descriptor, flushing the writer before any read that may wait ---- */

typedef struct {
	int fd, eof;
	struct buf buf;     /* buf.data[start, len) is what is read and not yet returned */
	size_t start;
} lines;

/* The next line without its newline, NUL-terminated, or NULL at the end (0) or on a read
 * error (-1 in *rc). Before blocking it flushes every run: whatever arrived is on disk while the
 * producer is quiet, which is what keeps a live TensorBoard current. */
static char *lines_next(lines *l, evline *ev, int *rc, char *err)
{
	struct buf *b = &l->buf;

	for (;;) {
		char *p = (char *)b->data, *nl = b->len > l->start ?
			memchr(p + l->start, '\n', b->len - l->start) : NULL;

		if (nl || (l->eof && b->len > l->start)) {
			char *line = p + l->start;
			if (nl) {
				*nl = 0;
				l->start = (size_t)(nl - p) + 1;
			} else {
				l->start = b->len;   /* buf keeps data NUL-terminated */
			}
			return line;
		}
		if (l->eof) {
			*rc = 0;
			return NULL;
		}
		if (l->start) {
			memmove(p, p + l->start, b->len - l->start);
			b->len -= l->start;
			l->start = 0;
		}
		if (buf_reserve(b, 65536)) {
			*rc = err_set(err, "out of memory for a line");
			return NULL;
		}
		if (evline_flush(ev, err)) {
			*rc = -1;
			return NULL;
		}
		ssize_t k = read(l->fd, b->data + b->len, b->cap - b->len - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			*rc = err_sys(err, "<stdin>: read");
			return NULL;
		}
		if (k == 0)
			l->eof = 1;
		b->len += (size_t)k;
		b->data[b->len] = 0;
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	evline ev;
	lines in = { .fd = 0 };
	char err[ERR_MAX], *line;
	long lineno = 0;
	int rc = 0, bad = 0;

	parse_args(argc, argv, &o);
	/* Past a file-size limit (ulimit -f) write() then fails with EFBIG, which the writer
	 * reports after cutting the torn record, instead of SIGXFSZ killing us mid-record. */
	signal(SIGXFSZ, SIG_IGN);
	if (evline_open(&ev, o.logdir, o.run, o.split, err))
		cli_die("%s", err);
	while ((line = lines_next(&in, &ev, &rc, err))) {
		char why[ERR_MAX];

		lineno++;
		if (evline_do(&ev, line, why) == 0) {
			if (ev.warning[0] && !o.quiet)
				cli_warn("line %ld: %s", lineno, ev.warning);
			continue;
		}
		/* A failed event file is fatal even with --keep-going. */
		if (ev.failed) {
			rc = err_set(err, "%s", why);
			break;
		}
		bad = 1;
		if (!o.keep_going) {
			rc = err_set(err, "line %ld: %s", lineno, why);
			break;
		}
		cli_warn("line %ld: %s (skipped)", lineno, why);
	}
	buf_free(&in.buf);
	if (evline_close(&ev, rc ? NULL : err) && !rc)
		rc = -1;
	if (rc)
		cli_die("%s", err);
	return bad ? CLI_FAIL : CLI_OK;
}
