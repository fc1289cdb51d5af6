/* fetch: resumable, verified downloads with libcurl.
 * The running SHA-256 always covers exactly the bytes in PATH.part, so a resumed transfer
 * is verified without reading the file twice. */
#define _GNU_SOURCE /* sync_file_range */
#include "pets/fetch.h"

#include "util/errmsg.h"
#include "util/esc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void fetch_opts_init(fetch_opts *o)
{
	memset(o, 0, sizeof *o);
	o->retries = 5;
	o->retry_delay = 1;
	o->timeout = 30;
	o->size = -1;
	o->durable = 1;
}

int fetch_global_init(char *err)
{
	CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (c != CURLE_OK)
		return err_set(err, "libcurl: %s", curl_easy_strerror(c));
	return 0;
}

void fetch_global_cleanup(void)
{
	curl_global_cleanup();
}

/* Writeback is started every SYNC_STEP bytes, so the fsync before the rename has little
 * left to do. The digest is taken inline, in the write callback: SHA-256 runs at ~1.8 GB/s
 * on one core (openssl speed, SHA-NI), so at a network's tens of MB/s it costs a few per
 * cent of a core while curl waits on the socket anyway (measured: 300 MiB from lighttpd
 * throttled to 40 MiB/s, 7.4-7.6 s with a hashing thread, 6.5-7.2 s inline). */
enum { SYNC_STEP = 8 << 20 };

/* The state of one call of fetch_url, shared by its attempts. */
struct xfer {
	int fd;            /* PATH.part, appending; -1 when closed */
	hash_sha256 *h;    /* digest of the bytes in fd so far */
	int64_t have;      /* bytes in fd so far */
	int64_t synced;    /* bytes handed to the kernel's writeback so far */
	int werrno;        /* errno of a failed write, 0 if none */
	int64_t total;     /* what progress reports expect in all, -1 if unknown */
	const fetch_opts *o;
	CURL *c;
	int sized;         /* total looked up for this attempt */
};

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
	struct xfer *x = user;
	size_t len = size * n;

	if (!x->sized && x->o->size < 0) {
		curl_off_t cl = -1;

		/* Content-Length counts what this attempt sends, after the Range's offset. */
		if (curl_easy_getinfo(x->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0)
			x->total = x->have + cl;
		x->sized = 1;
	}
	/* curl hands over up to CURLOPT_BUFFERSIZE at once: no stdio buffer needed. */
	for (size_t off = 0; off < len;) {
		ssize_t w = write(x->fd, p + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			x->werrno = w < 0 ? errno : EIO;
			return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
		}
		off += (size_t)w;
	}
	hash_sha256_update(x->h, p, len);
	x->have += (int64_t)len;
	/* Start writeback as we go, so the fsync before the rename has little left to do. */
	if (x->o->durable && x->have - x->synced >= SYNC_STEP) {
		sync_file_range(x->fd, x->synced, x->have - x->synced, SYNC_FILE_RANGE_WRITE);
		x->synced = x->have;
	}
	if (x->o->progress)
		x->o->progress(x->o->progress_ctx, x->have, x->total);
	return len;
}

static void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Worth another attempt: the network or the server may do better next time. */
static int retryable(CURLcode c, long status)
{
	switch (c) {
	case CURLE_HTTP_RETURNED_ERROR:
		return status >= 500 || status == 408 || status == 429;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
	case CURLE_QUIC_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

/* Discards the .part's content and the digest: the next attempt starts from byte 0. */
static int restart(struct xfer *x, const char *part, char *err)
{
	if (ftruncate(x->fd, 0) != 0)
		return err_sys(err, "%s: cannot truncate", part);
	hash_sha256_free(x->h);
	if (!(x->h = hash_sha256_new()))
		return err_set(err, "%s: out of memory", part);
	x->have = x->synced = 0;
	return 0;
}

/* Opens path.part for appending and hashes what it already holds. */
static int open_part(struct xfer *x, const char *part, char *err)
{
	enum { BLOCK = 1 << 20 };
	char *buf;
	ssize_t n;

	x->fd = open(part, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (x->fd < 0)
		return err_sys(err, "%s: cannot open", part);
	buf = malloc(BLOCK);
	x->h = hash_sha256_new();
	if (!x->h || !buf) {
		free(buf);
		return err_set(err, "%s: out of memory", part);
	}
	while ((n = pread(x->fd, buf, BLOCK, x->have)) > 0) {
		hash_sha256_update(x->h, buf, (size_t)n);
		x->have += n;
	}
	free(buf);
	if (n < 0)
		return err_sys(err, "%s: read error", part);
	x->synced = x->have;
	return 0;
}

static int setup(CURL *c, const char *url, const fetch_opts *o, char *cerr)
{
	CURLcode r = CURLE_OK;

#define SET(opt, val) if (r == CURLE_OK) r = curl_easy_setopt(c, opt, val)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_ERRORBUFFER, cerr);
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, 10L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https,file");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FAILONERROR, 1L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, o->timeout);
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, o->timeout);
	SET(CURLOPT_BUFFERSIZE, 512L * 1024);
	SET(CURLOPT_USERAGENT, "petcnn-fetch/1");
	if (o->cacert)
		SET(CURLOPT_CAINFO, o->cacert);
	/* Proxies: libcurl reads http_proxy, https_proxy and no_proxy itself; we keep that. */
#undef SET
	return r == CURLE_OK ? 0 : -1;
}

/* One transfer continuing from x->have. Returns the curl code; *status the HTTP status. */
static CURLcode attempt(struct xfer *x, long *status)
{
	CURLcode r;

	*status = 0;
	x->sized = 0;
	curl_easy_setopt(x->c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)x->have);
	r = curl_easy_perform(x->c);
	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, status);
	return r;
}

/* A URL, or what curl says (which may quote what a server sent), fit to print. */
#define ESC(buf, s) esc_str(buf, sizeof buf, s)
typedef char escbuf[ERR_MAX / 2];

static void describe(char *err, const char *url, CURLcode r, long status, const char *cerr)
{
	escbuf u, c;

	if (r == CURLE_HTTP_RETURNED_ERROR && status)
		err_set(err, "%s: HTTP status %ld", ESC(u, url), status);
	else
		err_set(err, "%s: %s", ESC(u, url), ESC(c, *cerr ? cerr : curl_easy_strerror(r)));
}

/* Size and digest against what the caller expects. 0 matches, -1 otherwise (err says how). */
static int verify(const struct xfer *x, const char *path, const char *url, char *hex, char *err)
{
	const fetch_opts *o = x->o;
	escbuf u, want;

	if (o->size >= 0 && x->have != o->size)
		return err_set(err, "%s: size mismatch (from %s): expected %lld bytes, got %lld",
			       path, ESC(u, url), (long long)o->size, (long long)x->have);
	/* All 64 digits and the terminator: a digest cut short never matches. */
	if (o->sha256 && strncmp(o->sha256, hex, HASH_HEX) != 0)
		return err_set(err, "%s: sha256 mismatch (from %s): expected %s, got %s", path,
			       ESC(u, url), ESC(want, o->sha256), hex);
	return 0;
}

static int finish(struct xfer *x, const char *part, const char *path, char *err)
{
	if (x->o->durable && fsync(x->fd) != 0)
		return err_sys(err, "%s: write error", part);
	if (rename(part, path) != 0)
		return err_sys(err, "%s: cannot rename to %s", part, path);
	return 0;
}

static int run(struct xfer *x, const char *url, const char *part, const char *path,
	       fetch_result *res, char *err)
{
	const fetch_opts *o = x->o;
	char cerr[CURL_ERROR_SIZE], hex[HASH_HEX];
	escbuf u;
	double delay = o->retry_delay;
	int failures = 0, fresh_tried = 0, had_part = x->have > 0;
	long status;
	CURLcode r;

	if (setup(x->c, url, o, cerr))
		return err_set(err, "%s: cannot set up libcurl", ESC(u, url));
	for (;;) {
		int64_t from = x->have;

		/* Already complete (e.g. killed before the rename): asking for more would be a 416. */
		if (o->size >= 0 && x->have == o->size) {
			r = CURLE_OK;
			status = 0;
		} else {
			if (o->size >= 0 && x->have > o->size && restart(x, part, err))
				return -1;
			from = x->have;
			cerr[0] = 0;
			res->attempts++;
			res->resumed += from > 0;
			had_part |= from > 0;
			r = attempt(x, &status);
		}
		if (x->werrno) {
			errno = x->werrno;
			return err_sys(err, "%s: write error", part);
		}
		/* The server ignored our Range (200, not 206), or the .part is longer than the file. */
		if (from > 0 && (r == CURLE_RANGE_ERROR || r == CURLE_BAD_DOWNLOAD_RESUME || status == 416)) {
			if (restart(x, part, err))
				return -1;
			res->restarted++;
			continue;
		}
		if (r == CURLE_OK) {
			/* Taking the digest ends the hash: a retry below starts a new one. */
			hash_sha256_hex(x->h, hex);
			if (verify(x, path, url, hex, err) == 0) {
				res->size = x->have;
				memcpy(res->sha256, hex, HASH_HEX);
				return finish(x, part, path, err);
			}
			/* A stale .part from another file can spoil a resumed download: one fresh try. */
			if (had_part && !fresh_tried) {
				fresh_tried = 1;
				if (restart(x, part, err))
					return -1;
				res->restarted++;
				continue;
			}
			close(x->fd);
			x->fd = -1;
			unlink(part);
			return -1;
		}
		describe(err, url, r, status, cerr);
		if (!retryable(r, status) || failures >= o->retries)
			return -1;
		failures++;
		sleep_s(delay);
		delay = delay * 2 > 60 ? 60 : delay * 2;
	}
}

int fetch_url(const char *url, const char *path, const fetch_opts *o, fetch_result *res, char *err)
{
	fetch_opts def;
	fetch_result dummy;
	struct xfer x;
	char *part;
	escbuf u;
	size_t n = strlen(path) + sizeof ".part";
	int rc;

	if (!o) {
		fetch_opts_init(&def);
		o = &def;
	}
	if (!res)
		res = &dummy;
	memset(res, 0, sizeof *res);
	memset(&x, 0, sizeof x);
	x.fd = -1;
	x.o = o;
	part = malloc(n);
	if (!part)
		return err_set(err, "%s: out of memory", path);
	snprintf(part, n, "%s.part", path);
	rc = open_part(&x, part, err);
	if (rc == 0) {
		x.c = curl_easy_init();
		if (!x.c)
			rc = err_set(err, "%s: cannot start libcurl", ESC(u, url));
	}
	if (rc == 0) {
		x.total = o->size;
		curl_easy_setopt(x.c, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(x.c, CURLOPT_WRITEDATA, &x);
		rc = run(&x, url, part, path, res, err);
	}
	/* Keep a .part only when it holds something to resume. */
	if (rc != 0 && x.have == 0 && x.fd >= 0)
		unlink(part);
	curl_easy_cleanup(x.c);
	if (x.fd >= 0)
		close(x.fd);
	hash_sha256_free(x.h);
	free(part);
	return rc;
}

int fetch_from_bases(const char *const *bases, int nbases, const char *name, const char *path,
		     const fetch_opts *o, fetch_result *res, char *err)
{
	char one[ERR_MAX];
	size_t used = 0;

	if (err)
		err[0] = 0;
	for (int i = 0; i < nbases; i++) {
		size_t bl = strlen(bases[i]), n = bl + strlen(name) + 2;
		char *url = malloc(n);
		int rc;

		if (!url)
			return err_set(err, "%s: out of memory", name);
		snprintf(url, n, "%s%s%s", bases[i], bl && bases[i][bl - 1] == '/' ? "" : "/", name);
		rc = fetch_url(url, path, o, res, one);
		free(url);
		if (rc == 0)
			return i;
		if (err) {
			snprintf(err + used, ERR_MAX - used, "%s%s", used ? "; " : "", one);
			used = strlen(err);
		}
	}
	if (nbases == 0)
		err_set(err, "%s: no base URL to fetch from", name);
	return -1;
}

/* fetch_small's sink: at most max bytes into a buf. */
struct capped {
	struct buf *b;
	size_t max;
	int over;
};

static size_t on_mem(char *p, size_t size, size_t n, void *user)
{
	struct capped *m = user;
	size_t len = size * n;

	if (len > m->max - m->b->len) {
		m->over = 1;
		return 0;
	}
	buf_add(m->b, p, len);
	return m->b->oom ? 0 : len;
}

int fetch_small(const char *url, size_t max, const fetch_opts *o, struct buf *out, char *err)
{
	struct capped m = { out, max, 0 };
	char cerr[CURL_ERROR_SIZE] = "";
	escbuf u;
	CURL *c = curl_easy_init();
	CURLcode r;
	long status = 0;
	double delay = o->retry_delay;

	buf_reset(out);
	if (!c)
		return err_set(err, "%s: cannot start libcurl", ESC(u, url));
	if (setup(c, url, o, cerr)) {
		curl_easy_cleanup(c);
		return err_set(err, "%s: cannot set up libcurl", ESC(u, url));
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_mem);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
	for (int tries = 0;; tries++) {
		buf_reset(out);
		m.over = 0;
		cerr[0] = 0;
		r = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (r == CURLE_OK || !retryable(r, status) || tries >= o->retries)
			break;
		sleep_s(delay);
		delay = delay * 2 > 60 ? 60 : delay * 2;
	}
	curl_easy_cleanup(c);
	/* An empty reply is an empty string: data must exist for the caller to read it. */
	if (r == CURLE_OK && buf_reserve(out, 0) == 0)
		return 0;
	if (r == CURLE_FILE_COULDNT_READ_FILE ||
	    (r == CURLE_HTTP_RETURNED_ERROR && (status == 404 || status == 410)))
		return 1;
	if (m.over)
		return err_set(err, "%s: larger than %zu bytes", ESC(u, url), max);
	if (r == CURLE_OK || r == CURLE_WRITE_ERROR)
		return err_set(err, "%s: out of memory", ESC(u, url));
	describe(err, url, r, status, cerr);
	return -1;
}

int fetch_lock_dir(const char *dir, char *err)
{
	struct buf p;
	int fd, e;

	buf_init(&p);
	buf_printf(&p, "%s/%s", dir, FETCH_LOCK_NAME);
	if (p.oom)
		return err_set(err, "%s: out of memory", dir);
	fd = open((char *)p.data, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	/* A complete dataset on a read-only mount still has its lock file to take. */
	if (fd < 0 && (errno == EROFS || errno == EACCES))
		fd = open((char *)p.data, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err_sys(err, "%s: cannot open the lock file", (char *)p.data);
	} else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
		if (e == EWOULDBLOCK)
			err_set(err, "%s: another pet-fetch is using this directory (it holds %s)", dir,
				(char *)p.data);
		else
			err_sys(err, "%s: cannot lock", (char *)p.data);
	}
	buf_free(&p);
	return fd;
}

static int is_hex64(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

int fetch_sums_lookup(const char *text, const char *name, char hex[HASH_HEX])
{
	size_t nl = strlen(name);

	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n'), *f;
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (len > 0 && line[len - 1] == '\r')
			len--;
		/* "HEX  NAME" (text mode) or "HEX *NAME" (binary mode); "./NAME" also matches. */
		if (len >= 66 && line[0] != '#' && is_hex64(line) && line[64] == ' ' &&
		    (line[65] == ' ' || line[65] == '*')) {
			f = line + 66;
			size_t fl = len - 66;
			if (fl >= 2 && f[0] == '.' && f[1] == '/') {
				f += 2;
				fl -= 2;
			}
			if (fl == nl && memcmp(f, name, nl) == 0) {
				for (int i = 0; i < 64; i++)
					hex[i] = (char)(line[i] >= 'A' && line[i] <= 'F' ? line[i] + 32 : line[i]);
				hex[64] = 0;
				return 0;
			}
		}
		line = end ? end + 1 : NULL;
	}
	return -1;
}
