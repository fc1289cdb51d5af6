/* pet-fetch: download the Oxford-IIIT Pet archives, verify them, extract them safely. */
#include "util/buf.h"
#include "util/cli.h"
#include "util/errmsg.h"
#include "util/esc.h"
#include "pets/extract.h"
#include "pets/fetch.h"
#include "util/hash.h"
#include "util/outfile.h"
#include "util/progress.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char PROG[] = "pet-fetch";
static const char HELP[] =
	"Usage: pet-fetch -o DIR [OPTION]...\n"
	"Download, verify and extract the Oxford-IIIT Pet dataset (images and annotations).\n"
	"\n"
	"Fetches images.tar.gz and annotations.tar.gz, resuming partial downloads (kept as\n"
	"DIR/NAME.part), checks their size and SHA-256, and extracts them into DIR/images and\n"
	"DIR/annotations. Entries with absolute paths, '..', links leaving DIR or device files\n"
	"are refused. A second run on a complete DIR downloads and writes nothing; a run\n"
	"started while another works in DIR fails at once (DIR/.petcnn-fetch.lock).\n"
	"\n"
	"Options:\n"
	"  -o, --output DIR      where the dataset goes (created if missing; required)\n"
	"      --mirror URL      fetch from this base (http, https or file URL) instead of the\n"
	"                        official ones (robots.ox.ac.uk, then thor.robots.ox.ac.uk)\n"
	"      --checksums FILE  sha256sum-format FILE to verify a mirror's archives against\n"
	"                        (default: the mirror's SHA256SUMS if it has one)\n"
	"      --retries N       retry a failed transfer N times, with backoff (default 5)\n"
	"      --retry-delay S   seconds before the first retry; doubles each time (default 1)\n"
	"      --timeout S       connect timeout, and give up when stalled S seconds (default 30)\n"
	"      --cacert FILE     trust the CA certificates in PEM FILE for https instead of\n"
	"                        the system's (a mirror with its own certificate authority)\n"
	"      --keep-archives   keep the archives in DIR after extracting them\n"
	"      --no-extract      only download and verify the archives into DIR\n"
	"  -q, --quiet           no progress bars and no messages except errors\n"
	"      --progress        progress bars even when stderr is not a terminal\n"
	"  -h, --help            show this help and exit\n"
	"      --version         show the version and exit\n"
	"\n"
	"Proxies come from http_proxy, https_proxy and no_proxy. Exit status: 0 on success,\n"
	"1 on a failed download, a checksum mismatch or a refused archive entry, 2 on usage.\n"
	"\n"
	"Example:\n"
	"  pet-fetch -o data && ls data/images | head\n";

enum { NFILES = 2 };
static const char *const NAMES[NFILES] = { "images.tar.gz", "annotations.tar.gz" };
/* The published files; public loaders agree on these sizes and digests. */
static const int64_t OFFICIAL_SIZE[NFILES] = { 791918971, 19173078 };
static const char *const OFFICIAL_SHA[NFILES] = {
	"67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
	"52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91",
};
static const char *const OFFICIAL_BASES[] = {
	"https://www.robots.ox.ac.uk/~vgg/data/pets/data/",
	"https://thor.robots.ox.ac.uk/~vgg/data/pets/",
};
static const char MARKER[] = ".petcnn-fetch";
enum { SUMS_MAX = 1 << 20 }; /* a SHA256SUMS or --checksums file: two lines expected */

struct opts {
	const char *dir, *mirror, *checksums, *cacert;
	int retries, keep, no_extract, quiet;
	double retry_delay;
	long timeout;
	enum progress_mode progress;
};

/* What one archive is expected to be: size -1 and sha "" when unknown. */
struct want {
	int64_t size;
	char sha[HASH_HEX];
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_MIRROR = 256, O_SUMS, O_RETRIES, O_DELAY, O_TIMEOUT, O_CACERT, O_KEEP, O_NOEXT, O_PROG, O_VER };
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "mirror", required_argument, NULL, O_MIRROR },
		{ "checksums", required_argument, NULL, O_SUMS },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "retry-delay", required_argument, NULL, O_DELAY },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ "keep-archives", no_argument, NULL, O_KEEP },
		{ "no-extract", no_argument, NULL, O_NOEXT },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, O_PROG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VER },
		{ 0, 0, 0, 0 },
	};
	int c;

	*o = (struct opts){ .retries = 5, .retry_delay = 1, .timeout = 30, .progress = PROGRESS_AUTO };
	cli_init(argc, argv, PROG);
	while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'o': o->dir = optarg; break;
		case O_MIRROR: o->mirror = optarg; break;
		case O_SUMS: o->checksums = optarg; break;
		case O_RETRIES: o->retries = cli_opt_int("--retries", optarg, 0, 100); break;
		case O_DELAY: o->retry_delay = cli_opt_double("--retry-delay", optarg, 0, 600); break;
		case O_TIMEOUT: o->timeout = cli_opt_int("--timeout", optarg, 1, 86400); break;
		case O_CACERT: o->cacert = optarg; break;
		case O_KEEP: o->keep = 1; break;
		case O_NOEXT: o->no_extract = 1; break;
		case 'q': o->quiet = 1; o->progress = PROGRESS_OFF; break;
		case O_PROG: o->progress = PROGRESS_ON; break;
		case 'h': cli_help(HELP);
		case O_VER: cli_version();
		default: cli_try_help();
		}
	}
	if (optind < argc)
		cli_usage("unexpected argument '%s'", argv[optind]);
	if (!o->dir)
		cli_usage("-o DIR is required");
	if (o->checksums && !o->mirror)
		cli_usage("--checksums verifies a --mirror; the official files have known digests");
	if (o->keep && o->no_extract)
		cli_usage("--keep-archives and --no-extract do not go together");
	if (o->mirror && strncasecmp(o->mirror, "http://", 7) && strncasecmp(o->mirror, "https://", 8) &&
	    strncasecmp(o->mirror, "file://", 7)) {
		char e[ERR_MAX];

		cli_usage("--mirror '%s' is not an http://, https:// or file:// URL",
			  esc_str(e, sizeof e, o->mirror));
	}
}

static void info(const struct opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info(const struct opts *o, const char *fmt, ...)
{
	va_list ap;

	if (o->quiet)
		return;
	fprintf(stderr, "%s: ", PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (!p)
		cli_die("out of memory");
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Fills want[] from the table or --checksums FILE, or (network, only when asked)
 * from the mirror's SHA256SUMS. */
static void resolve_wants(const struct opts *o, const fetch_opts *fo, struct want *w, int network)
{
	char err[ERR_MAX], e[ERR_MAX], *from;
	struct buf sums;
	int rc = 0;

	for (int i = 0; i < NFILES && !network; i++) {
		w[i].size = o->mirror ? -1 : OFFICIAL_SIZE[i];
		snprintf(w[i].sha, HASH_HEX, "%s", o->mirror ? "" : OFFICIAL_SHA[i]);
	}
	if (!o->mirror || (!network && !o->checksums) || (network && o->checksums))
		return;
	buf_init(&sums);
	if (o->checksums) {
		if (!(from = strdup(o->checksums)))
			cli_die("out of memory");
		if (buf_slurp(&sums, o->checksums, SUMS_MAX, err))
			cli_die("%s", err);
	} else {
		size_t n = strlen(o->mirror);

		from = path_join(o->mirror, "SHA256SUMS");
		if (n && o->mirror[n - 1] == '/')
			memmove(from + n, from + n + 1, sizeof "SHA256SUMS");
		rc = fetch_small(from, SUMS_MAX, fo, &sums, err);
		if (rc < 0)
			cli_die("%s", err);
		if (rc > 0)
			info(o, "%s: not found; the archives will not be verified", esc_str(e, sizeof e, from));
	}
	for (int i = 0; rc == 0 && i < NFILES; i++)
		if (fetch_sums_lookup((char *)sums.data, NAMES[i], w[i].sha) != 0)
			cli_die("%s: no checksum for %s", esc_str(e, sizeof e, from), NAMES[i]);
	free(from);
	buf_free(&sums);
}

/* The digests the marker in dir records as extracted, "" for an archive it does not name. */
static void marker_load(const char *dir, char done[NFILES][HASH_HEX])
{
	char err[ERR_MAX], *path = path_join(dir, MARKER);
	struct buf text;
	struct stat st;

	buf_init(&text);
	if ((stat(path, &st) == 0 || errno != ENOENT) && buf_slurp(&text, path, SUMS_MAX, err))
		cli_die("%s", err);
	for (int i = 0; i < NFILES; i++)
		if (!text.data || fetch_sums_lookup((char *)text.data, NAMES[i], done[i]) != 0)
			done[i][0] = 0;
	buf_free(&text);
	free(path);
}

static void marker_save(const char *dir, char done[NFILES][HASH_HEX])
{
	char err[ERR_MAX], *path = path_join(dir, MARKER);
	outfile f;

	if (outfile_open(&f, path, err))
		cli_die("%s", err);
	fprintf(f.fp, "# pet-fetch: these archives are completely extracted here (sha256sum format)\n");
	for (int i = 0; i < NFILES; i++)
		if (done[i][0])
			fprintf(f.fp, "%s  %s\n", done[i], NAMES[i]);
	if (outfile_commit(&f, err))
		cli_die("%s", err);
	free(path);
}

/* Draws what lib/ reports: fetch and extract only count. */
static void draw(void *ctx, int64_t done, int64_t total)
{
	progress *p = ctx;

	if (total > 0)
		p->total = total;
	progress_update(p, done, NULL);
}

/* Leaves a verified archive at path: the one already there if it checks out, else a download. */
static void obtain(const struct opts *o, const fetch_opts *base_fo, int i, const struct want *w,
		   const char *path, char sha[HASH_HEX])
{
	const char *mirror[1] = { o->mirror };
	char err[ERR_MAX];
	fetch_opts fo;
	fetch_result res;
	struct stat st;
	progress bar;
	int base;

	if (stat(path, &st) == 0) {
		if (hash_file_sha256(path, sha, err))
			cli_die("%s", err);
		if ((w->size < 0 || st.st_size == w->size) && (!w->sha[0] || !strcmp(sha, w->sha))) {
			info(o, "%s: already downloaded (%lld bytes, sha256 %s)", path,
			     (long long)st.st_size, sha);
			return;
		}
		info(o, "%s: does not match its checksum; downloading it again", path);
		if (unlink(path) != 0)
			cli_die("%s: cannot remove:", path);
	}
	fo = *base_fo;
	fo.size = w->size;
	fo.sha256 = w->sha[0] ? w->sha : NULL;
	progress_init(&bar, NAMES[i], w->size, 1, o->progress);
	fo.progress = draw;
	fo.progress_ctx = &bar;
	/* An archive deleted right after extraction needs no fsync: an interrupted run never
	 * leaves it under its final name, and a later run re-verifies one that is there. */
	fo.durable = o->keep || o->no_extract;
	base = o->mirror ? fetch_from_bases(mirror, 1, NAMES[i], path, &fo, &res, err)
			 : fetch_from_bases(OFFICIAL_BASES, 2, NAMES[i], path, &fo, &res, err);
	progress_end(&bar);
	if (base < 0)
		cli_die("%s", err);
	memcpy(sha, res.sha256, HASH_HEX);
	info(o, "%s: %lld bytes, sha256 %s (%s%s)", path, (long long)res.size, res.sha256,
	     w->sha[0] ? "verified" : "not verified: no checksum known",
	     res.restarted ? ", restarted from byte 0" : res.resumed ? ", resumed" : "");
}

/* Downloads (or reuses) one archive, extracts it unless --no-extract, records it as done. */
static void fetch_one(const struct opts *o, const fetch_opts *fo, int i, const struct want *w,
		      char done[NFILES][HASH_HEX])
{
	char err[ERR_MAX], sha[HASH_HEX], *path = path_join(o->dir, NAMES[i]);
	extract_result er;
	progress bar;
	extract_progress pr = { draw, &bar };

	obtain(o, fo, i, w, path, sha);
	if (!o->no_extract) {
		progress_init(&bar, NAMES[i], 0, 1, o->progress);
		if (extract_archive(path, o->dir, &pr, &er, err))
			cli_die("%s", err);
		progress_end(&bar);
		memcpy(done[i], sha, HASH_HEX);
		marker_save(o->dir, done);
		info(o, "%s: extracted %lld entries (%lld bytes) into %s", NAMES[i],
		     (long long)er.entries, (long long)er.bytes, o->dir);
		if (!o->keep && unlink(path) != 0)
			cli_die("%s: cannot remove:", path);
	}
	free(path);
}

/* Removes what killed runs left in dir, other than the .part files that are resumed: the
 * extraction trees and the marker's temporary files. The lock says no run is using them. */
static void clean_leftovers(const char *dir)
{
	char err[ERR_MAX], tmpname[64];
	DIR *d;
	struct dirent *de;

	if (extract_clean_stale(dir, err))
		cli_warn("%s", err);
	/* outfile's temporaries of the marker: "." MARKER ".XXXXXX" */
	snprintf(tmpname, sizeof tmpname, ".%s.", MARKER);
	if (!(d = opendir(dir)))
		cli_die("%s: cannot open:", dir);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, tmpname, strlen(tmpname)) || strlen(de->d_name) != strlen(tmpname) + 6)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT)
			cli_warn("%s/%s: cannot remove:", dir, de->d_name);
	}
	closedir(d);
}

/* Whether the marker says archive i is extracted (with the digest we expect, if we know
 * one) and its directory (images/, annotations/) is still there. */
static int is_done(const struct opts *o, int i, const char *done_sha, const struct want *w)
{
	char stem[32], *p;
	struct stat st;
	int ok;

	if (!done_sha[0] || (w->sha[0] && strcmp(done_sha, w->sha)))
		return 0;
	snprintf(stem, sizeof stem, "%.*s", (int)(strlen(NAMES[i]) - strlen(".tar.gz")), NAMES[i]);
	p = path_join(o->dir, stem);
	ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
	free(p);
	return ok;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct want w[NFILES];
	fetch_opts fo;
	char err[ERR_MAX], done[NFILES][HASH_HEX];
	int need[NFILES], work = 0, lock;

	parse_args(argc, argv, &o);
	if (o.cacert && access(o.cacert, R_OK) != 0)
		cli_die("%s: cannot read the CA certificates:", o.cacert);
	if (outfile_mkdirs(o.dir, err))
		cli_die("%s", err);
	if ((lock = fetch_lock_dir(o.dir, err)) < 0)
		cli_die("%s", err);
	clean_leftovers(o.dir);
	if (fetch_global_init(err))
		cli_die("%s", err);
	fetch_opts_init(&fo);
	fo.retries = o.retries;
	fo.retry_delay = o.retry_delay;
	fo.timeout = o.timeout;
	fo.cacert = o.cacert;
	marker_load(o.dir, done);
	resolve_wants(&o, &fo, w, 0);
	for (int i = 0; i < NFILES; i++) {
		need[i] = o.no_extract || !is_done(&o, i, done[i], &w[i]);
		work |= need[i];
	}
	/* A mirror's SHA256SUMS is only downloaded when there is something to verify. */
	if (work)
		resolve_wants(&o, &fo, w, 1);
	for (int i = 0; i < NFILES; i++)
		if (need[i])
			fetch_one(&o, &fo, i, &w[i], done);
	if (!work)
		info(&o, "%s: already complete (%s and %s extracted); nothing to download", o.dir,
		     NAMES[0], NAMES[1]);
	fetch_global_cleanup();
	close(lock);
	return cli_close_stdout();
}
