/* fetch: download one URL (http, https, file) to a local file with libcurl, resumably and
 * verified: partial data lives in PATH.part, is continued with a Range request, and is renamed
 * to PATH only once its size and SHA-256 match what the caller expects. */
#ifndef PETCNN_FETCH_H
#define PETCNN_FETCH_H

#include "util/buf.h"
#include "util/hash.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
	int retries;            /* further attempts after a failed one (exponential backoff) */
	double retry_delay;     /* seconds before the first retry; doubles each time, max 60 */
	long timeout;           /* seconds: connect timeout, and abort when stalled this long */
	int64_t size;           /* expected bytes, -1 when unknown */
	const char *sha256;     /* expected lowercase hex digest, NULL when unknown */
	/* Called as data arrives, for the caller to draw: done counts the bytes of a resumed
	 * .part too; total is size, else what the server announced, else -1. NULL: silent. */
	void (*progress)(void *ctx, int64_t done, int64_t total);
	void *progress_ctx;
	int durable;            /* fsync before the rename (default 1); 0 for a file that is
				 * about to be consumed and deleted, where the flush is wasted */
	const char *cacert;     /* PEM file of the CA certificates https trusts (NULL: the
				 * system's) */
} fetch_opts;

typedef struct {
	int64_t size;           /* bytes of the verified file */
	char sha256[HASH_HEX];  /* its digest */
	int attempts;           /* transfers started */
	int resumed;            /* transfers that continued a .part with a Range request */
	int restarted;          /* times a .part was thrown away (range ignored, stale data) */
} fetch_result;

/* Defaults: 5 retries, 1 s first delay, 30 s timeout, nothing expected, no progress
 * reports, durable. */
void fetch_opts_init(fetch_opts *o);

/* libcurl's process-wide set-up; call once before any transfer, cleanup at the end. */
int fetch_global_init(char *err);
void fetch_global_cleanup(void);

/* Downloads url to path (via path.part, resumed if present). Fails on HTTP >= 400 naming
 * the URL and status, and on a size or digest mismatch naming path, the expected and the
 * actual value (the .part is then deleted). res may be NULL. */
int fetch_url(const char *url, const char *path, const fetch_opts *o, fetch_result *res, char *err);

/* fetch_url from each base in turn (base + name; a '/' is added if missing) until one
 * succeeds; err then lists what went wrong with every base. Returns the index of the base
 * used, or -1. */
int fetch_from_bases(const char *const *bases, int nbases, const char *name, const char *path,
		     const fetch_opts *o, fetch_result *res, char *err);

/* A small resource (at most max bytes) into out (emptied first; NUL-terminated, as every
 * buf), with o's retries and timeout (size, digest and progress ignored). Returns 0, 1
 * when the resource does not exist (HTTP 404/410, missing file://), -1 on error. */
int fetch_small(const char *url, size_t max, const fetch_opts *o, struct buf *out, char *err);

/* The file in a download directory whose lock keeps a second run out. */
#define FETCH_LOCK_NAME ".petcnn-fetch.lock"

/* Takes dir's lock (an flock on dir/FETCH_LOCK_NAME, created if missing), without waiting:
 * two runs sharing dir would append to the same .part files. Returns the descriptor that
 * holds it (closing it, or exiting, releases it), or -1 with err naming dir and saying that
 * another pet-fetch holds it. */
int fetch_lock_dir(const char *dir, char *err);

/* Looks name up in sha256sum-format text ("HEX  NAME" or "HEX *NAME" per line, '#'
 * comments allowed); copies the lowercase digest to hex. Returns 0, or -1 if absent. */
int fetch_sums_lookup(const char *text, const char *name, char hex[HASH_HEX]);

#endif
