/* Unit tests for lib/fetch (file:// URLs, resume, verification, SHA256SUMS parsing) and
 * lib/extract (the entry checks, all-or-nothing extraction). No network needed. */
#include "check.h"
#include "util/errmsg.h"
#include "pets/extract.h"
#include "pets/fetch.h"
#include "util/hash.h"

#include <fcntl.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[256];

static void path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmp, name);
}

static void write_file(const char *p, const void *data, size_t n)
{
	FILE *f = fopen(p, "wb");

	CHECK(f && fwrite(data, 1, n, f) == n && fclose(f) == 0, "write %s", p);
}

static long file_size(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void test_sums(void)
{
	const char *h1 = "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d";
	const char *text =
		"# comment 52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91  x\n"
		"52425FB6DE5C424942B7626B428656FCBD798DB970A937DF61750C0F1D358E91 *./annotations.tar.gz\r\n"
		"0000000000000000000000000000000000000000000000000000000000000000  images.tar.gz.old\n"
		"67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d  images.tar.gz";
	char hex[HASH_HEX];

	CHECK(fetch_sums_lookup(text, "images.tar.gz", hex) == 0 && !strcmp(hex, h1), "text mode, last line");
	CHECK(fetch_sums_lookup(text, "annotations.tar.gz", hex) == 0 &&
		      !strcmp(hex, "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91"),
	      "binary mode, ./, upper case, CRLF: %s", hex);
	CHECK(fetch_sums_lookup(text, "x", hex) == -1, "comment lines are not entries");
	CHECK(fetch_sums_lookup(text, "images.tar", hex) == -1, "no prefix match");
	CHECK(fetch_sums_lookup("", "images.tar.gz", hex) == -1, "empty");
	CHECK(fetch_sums_lookup("abc  images.tar.gz\n", "images.tar.gz", hex) == -1, "short digest");
}

static void test_check_path(void)
{
	static const struct {
		const char *name, *link;
		int hard, ok;
	} cases[] = {
		{ "images/a.jpg", NULL, 0, 1 },
		{ "./images/a.jpg", NULL, 0, 1 },
		{ "images/", NULL, 0, 1 },
		{ "images/l", "a.jpg", 0, 1 },
		{ "images/sub/l", "../b.jpg", 0, 1 },
		{ "images/sub/l", "../../annotations/x", 0, 1 },
		{ "images/h", "images/a.jpg", 1, 1 },
		{ "", NULL, 0, 0 },
		{ "/etc/passwd", NULL, 0, 0 },
		{ "../x", NULL, 0, 0 },
		{ "images/../../x", NULL, 0, 0 },
		{ "images/..", NULL, 0, 0 },
		{ "images/l", "../../x", 0, 0 },
		{ "l", "..", 0, 0 },
		{ "images/l", "/etc", 0, 0 },
		{ "images/l", "", 0, 0 },
		/* '..' after a name may climb out of a symlinked directory: refused. */
		{ "images/l3", "d/l1/../..", 0, 0 },
		{ "images/l3", "d/../x", 0, 0 },
		{ "images/h", "../x", 1, 0 },
		{ "images/h", "/etc/passwd", 1, 0 },
		{ "images/h", "images/../../x", 1, 0 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = extract_check_path(cases[i].name, cases[i].link, cases[i].hard);

		CHECK((why == NULL) == cases[i].ok, "'%s' -> '%s' (%s): %s", cases[i].name,
		      cases[i].link ? cases[i].link : "", cases[i].hard ? "hard" : "sym", why ? why : "accepted");
	}
}

/* A tar.gz with the given entries: type 'f' file (link = content), 'l' symlink, 'h' hard link. */
struct ent {
	char type;
	const char *name, *link;
};

static void make_tar(const char *p, const struct ent *e, int n)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();

	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	CHECK(archive_write_open_filename(a, p) == ARCHIVE_OK, "open %s", p);
	for (int i = 0; i < n; i++) {
		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_perm(ae, 0644);
		if (e[i].type == 'f') {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae, (la_int64_t)strlen(e[i].link));
		} else if (e[i].type == 'd') {
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, 0755);
		} else if (e[i].type == 'l') {
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].link);
		} else {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].link);
		}
		CHECK(archive_write_header(a, ae) == ARCHIVE_OK, "header %s", e[i].name);
		if (e[i].type == 'f')
			archive_write_data(a, e[i].link, strlen(e[i].link));
	}
	archive_entry_free(ae);
	CHECK(archive_write_close(a) == ARCHIVE_OK, "close %s", p);
	archive_write_free(a);
}

static int count_entries(const char *dir)
{
	char cmd[512];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof cmd, "find '%s' -mindepth 1 | wc -l", dir);
	f = popen(cmd, "r");
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

/* What a progress callback saw. */
struct seen {
	int calls;
	int64_t first, last, total;
	int backwards;
};

static void count(void *ctx, int64_t done, int64_t total)
{
	struct seen *s = ctx;

	if (s->calls++ == 0)
		s->first = done;
	s->backwards |= done < s->last;
	s->last = done;
	s->total = total;
}

static void test_extract(void)
{
	static const struct ent good[] = {
		{ 'd', "images", NULL },
		{ 'f', "images/a.jpg", "AAAA" },
		{ 'l', "images/b.jpg", "a.jpg" },
		{ 'h', "images/c.jpg", "images/a.jpg" },
		{ 'f', "images/sub/d.jpg", "DD" },
	};
	/* A chain of symlinks, each harmless alone, that would reach outside together. */
	static const struct ent chain[] = {
		{ 'f', "images/a.jpg", "AAAA" },
		{ 'l', "images/d/l1", ".." },
		{ 'l', "images/l3", "d/l1/../.." },
		{ 'f', "images/l3/evil", "x" },
	};
	char ar[512], dir[512], p[600], err[ERR_MAX], buf[16] = "";
	extract_result r;
	FILE *f;

	path(ar, sizeof ar, "good.tar.gz");
	path(dir, sizeof dir, "out");
	mkdir(dir, 0755);
	make_tar(ar, good, 5);
	{
		struct seen sn = { 0 };
		extract_progress pr = { count, &sn };

		CHECK(extract_archive(ar, dir, &pr, &r, err) == 0, "good: %s", err);
		CHECK(sn.calls == 5 && !sn.backwards && sn.last > 0 && sn.last <= sn.total &&
			      sn.total == file_size(ar),
		      "progress: %d calls, %lld of %lld", sn.calls, (long long)sn.last, (long long)sn.total);
	}
	CHECK(r.entries == 5 && r.ntop == 1 && !strcmp(r.top[0], "images"), "entries %lld top %d",
	      (long long)r.entries, r.ntop);
	snprintf(p, sizeof p, "%s/images/b.jpg", dir);
	f = fopen(p, "rb");
	CHECK(f && fread(buf, 1, 4, f) == 4 && !memcmp(buf, "AAAA", 4), "symlink content");
	if (f)
		fclose(f);
	snprintf(p, sizeof p, "%s/images/c.jpg", dir);
	CHECK(file_size(p) == 4, "hard link");
	CHECK(count_entries(dir) == 6, "nothing but the archive's entries: %d", count_entries(dir));

	/* Refused: nothing changes in dir, the earlier extraction stays whole. */
	path(ar, sizeof ar, "chain.tar.gz");
	make_tar(ar, chain, 4);
	CHECK(extract_archive(ar, dir, NULL, &r, err) == -1, "chain refused");
	CHECK(strstr(err, "refused entry 'images/l3'") != NULL, "names the entry: %s", err);
	CHECK(count_entries(dir) == 6, "dir unchanged: %d", count_entries(dir));

	/* A truncated archive fails and leaves nothing behind either. */
	{
		static char big[200000];
		struct ent t[1] = { { 'f', "images/big", big } };
		char cut[512];
		FILE *in, *out;
		size_t n;

		for (size_t i = 0; i < sizeof big - 1; i++)
			big[i] = (char)('a' + (i * 7919) % 26);
		path(ar, sizeof ar, "big.tar.gz");
		make_tar(ar, t, 1);
		path(cut, sizeof cut, "cut.tar.gz");
		in = fopen(ar, "rb");
		out = fopen(cut, "wb");
		static char b[1 << 16];
		n = in ? fread(b, 1, (size_t)file_size(ar) / 2, in) : 0;
		if (out)
			fwrite(b, 1, n, out);
		if (in)
			fclose(in);
		if (out)
			fclose(out);
		CHECK(extract_archive(cut, dir, NULL, &r, err) == -1, "truncated fails");
		CHECK(count_entries(dir) == 6, "dir unchanged: %d (%s)", count_entries(dir), err);
	}
}

static void test_fetch_file(void)
{
	static char data[300000];
	char src[512], dst[512], part[600], url[600], err[ERR_MAX], hex[HASH_HEX];
	fetch_opts o;
	fetch_result r;

	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)(i * 2654435761u >> 24);
	hash_buf_sha256(data, sizeof data, hex);
	path(src, sizeof src, "src.bin");
	path(dst, sizeof dst, "dst.bin");
	snprintf(part, sizeof part, "%s.part", dst);
	snprintf(url, sizeof url, "file://%s", src);
	write_file(src, data, sizeof data);
	fetch_opts_init(&o);
	o.retry_delay = 0;

	/* Resume: the first third is already there. */
	write_file(part, data, sizeof data / 3);
	o.size = sizeof data;
	o.sha256 = hex;
	{
		struct seen sn = { 0 };

		o.progress = count;
		o.progress_ctx = &sn;
		CHECK(fetch_url(url, dst, &o, &r, err) == 0, "resume: %s", err);
		CHECK(sn.calls > 0 && !sn.backwards && sn.first > (int64_t)sizeof data / 3 &&
			      sn.last == (int64_t)sizeof data && sn.total == (int64_t)sizeof data,
		      "progress: %d calls, %lld..%lld of %lld", sn.calls, (long long)sn.first,
		      (long long)sn.last, (long long)sn.total);
		o.progress = NULL;
	}
	CHECK(r.resumed == 1 && r.restarted == 0 && !strcmp(r.sha256, hex), "resumed %d", r.resumed);
	CHECK(file_size(dst) == (long)sizeof data && access(part, F_OK) != 0, "renamed into place");

	/* A stale .part of another file: one fresh try from zero fixes it. */
	unlink(dst);
	write_file(part, "garbage", 7);
	CHECK(fetch_url(url, dst, &o, &r, err) == 0, "stale part: %s", err);
	CHECK(r.restarted == 1, "restarted %d", r.restarted);

	/* A complete-looking .part of the right size but wrong bytes: refetched, not trusted. */
	unlink(dst);
	{
		char head[10];

		memcpy(head, data, sizeof head);
		memset(data, 'x', sizeof head);
		write_file(part, data, sizeof data);
		memcpy(data, head, sizeof head);
	}
	CHECK(fetch_url(url, dst, &o, &r, err) == 0, "same-size stale part: %s", err);
	CHECK(r.restarted == 1 && r.attempts == 1, "restarted %d attempts %d", r.restarted, r.attempts);

	/* Wrong expectations: error names the file and both values; nothing kept. */
	unlink(dst);
	o.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
	CHECK(fetch_url(url, dst, &o, &r, err) == -1, "sha mismatch");
	CHECK(strstr(err, dst) && strstr(err, "sha256 mismatch") && strstr(err, o.sha256) && strstr(err, hex),
	      "message: %s", err);
	CHECK(access(dst, F_OK) != 0 && access(part, F_OK) != 0, "nothing kept");
	/* Every digit counts: the last one wrong, or a digest cut short, is a mismatch. */
	{
		char near[HASH_HEX];

		memcpy(near, hex, HASH_HEX);
		near[63] = near[63] == '0' ? '1' : '0';
		o.sha256 = near;
		CHECK(fetch_url(url, dst, &o, &r, err) == -1 && strstr(err, "sha256 mismatch"),
		      "last digit wrong: %s", err);
		near[63] = 0;
		memcpy(near, hex, 63);
		CHECK(fetch_url(url, dst, &o, &r, err) == -1 && strstr(err, "sha256 mismatch"),
		      "63 digits: %s", err);
		CHECK(access(dst, F_OK) != 0, "nothing kept");
	}
	o.sha256 = NULL;
	o.size = 12345;
	CHECK(fetch_url(url, dst, &o, &r, err) == -1 && strstr(err, "expected 12345 bytes, got 300000"),
	      "size mismatch: %s", err);
	CHECK(access(dst, F_OK) != 0 && access(part, F_OK) != 0, "nothing kept");

	/* Missing source: an error, no .part left. */
	snprintf(url, sizeof url, "file://%s/nope", tmp);
	o.size = -1;
	o.retries = 0;
	CHECK(fetch_url(url, dst, &o, &r, err) == -1 && strstr(err, url), "missing: %s", err);
	CHECK(access(part, F_OK) != 0, "no empty .part");

	/* A URL with control bytes is escaped in the message. */
	snprintf(url, sizeof url, "file://%s/no\033[2Jpe\r", tmp);
	CHECK(fetch_url(url, dst, &o, &r, err) == -1 && strstr(err, "/no\\x1b[2Jpe\\x0d") &&
		      !strchr(err, '\033') && !strchr(err, '\r'),
	      "escaped: %s", err);

	/* Bases: the first is missing, the second has it. */
	{
		char b1[600], b2[600];
		const char *bases[2] = { b1, b2 };

		snprintf(b1, sizeof b1, "file://%s/none/", tmp);
		snprintf(b2, sizeof b2, "file://%s", tmp);
		CHECK(fetch_from_bases(bases, 2, "src.bin", dst, &o, &r, err) == 1, "second base: %s", err);
		CHECK(file_size(dst) == (long)sizeof data, "fetched from base 2");
	}
}

static void test_lock(void)
{
	char err[ERR_MAX];
	int a, b;

	a = fetch_lock_dir(tmp, err);
	CHECK(a >= 0, "lock: %s", err);
	/* flock belongs to the open file: a second open conflicts even in this process. */
	b = fetch_lock_dir(tmp, err);
	CHECK(b == -1 && strstr(err, tmp) && strstr(err, "another pet-fetch is using this directory"),
	      "second lock: %s", err);
	if (a >= 0)
		close(a);
	b = fetch_lock_dir(tmp, err);
	CHECK(b >= 0, "free again: %s", err);
	if (b >= 0)
		close(b);
}

int main(void)
{
	char cmd[300];
	int rc;

	snprintf(tmp, sizeof tmp, "/tmp/petcnn-test-fetch.XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	CHECK(fetch_global_init(NULL) == 0, "curl init");
	test_sums();
	test_check_path();
	test_extract();
	test_fetch_file();
	test_lock();
	fetch_global_cleanup();
	rc = check_done("test_fetch");
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (rc == 0 && system(cmd) != 0)
		return 1;
	return rc;
}
