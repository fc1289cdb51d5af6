/* extract: safe, all-or-nothing extraction with libarchive.
 * Our own checks run on every entry before libarchive sees it; libarchive's SECURE flags
 * are a second line of defence (they also refuse writing through a symlink on disk). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "pets/extract.h"

#include "util/errmsg.h"
#include "util/esc.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The shape of a relative path ('.' and empty components skipped): how many '..' lead it,
 * how many names it has, and whether a '..' comes after a name. */
struct walk {
	int up_first;     /* leading '..' components */
	int normal;       /* normal components */
	int late_up;      /* a '..' after a normal component */
};

static struct walk walk_path(const char *p)
{
	struct walk w = { 0, 0, 0 };

	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (w.normal)
				w.late_up = 1;
			else
				w.up_first++;
		} else if (!(n == 0 || (n == 1 && p[0] == '.'))) {
			w.normal++;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return w;
}

static int has_dotdot(const char *p)
{
	struct walk w = walk_path(p);

	return w.up_first || w.late_up;
}

const char *extract_check_path(const char *name, const char *link, int hard)
{
	struct walk w;
	int depth;

	if (!name || !*name)
		return "empty path";
	if (name[0] == '/')
		return "absolute path";
	if (has_dotdot(name))
		return "'..' in path";
	if (walk_path(name).normal == 0 && link)
		return "link at the top directory";
	if (!link)
		return NULL;
	if (!*link)
		return "empty link target";
	if (link[0] == '/')
		return hard ? "hard link to an absolute path" : "symlink to an absolute path";
	if (hard)
		return has_dotdot(link) ? "hard link target with '..'" : NULL;
	/* A symlink's leading '..'s climb from its own directory, made of real directories
	 * (libarchive refuses to extract through symlinks). After a normal component the path
	 * may pass through another symlink, where '..' no longer means "one up": refuse it. */
	depth = walk_path(name).normal - 1;
	w = walk_path(link);
	if (w.up_first > depth)
		return "symlink pointing outside the directory";
	if (w.late_up)
		return "symlink target with '..' after a name";
	return NULL;
}

static const char *check_entry(struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e), *hl = archive_entry_hardlink(e);

	if (hl)
		return extract_check_path(name, hl, 1);
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
	case AE_IFDIR:
		return extract_check_path(name, NULL, 0);
	case AE_IFLNK:
		return extract_check_path(name, archive_entry_symlink(e) ? archive_entry_symlink(e) : "", 0);
	case AE_IFCHR:
	case AE_IFBLK:
		return "device node";
	case AE_IFIFO:
		return "fifo";
	case AE_IFSOCK:
		return "socket";
	default:
		return "unknown entry type";
	}
}

static int rm_chmod(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)f;
	if (flag == FTW_D && (st->st_mode & 0700) != 0700)
		chmod(p, st->st_mode | 0700);
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if ((flag == FTW_DP ? rmdir(p) : unlink(p)) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

int extract_remove_tree(const char *path, char *err)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : err_sys(err, "%s: cannot remove", path);
	/* Read-only directories from the archive must become writable to be emptied. */
	nftw(path, rm_chmod, 16, FTW_PHYS);
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return err_sys(err, "%s: cannot remove", path);
	return 0;
}

static int copy_data(struct archive *in, struct archive *out, int64_t *bytes)
{
	const void *buf;
	size_t n;
	la_int64_t off;
	int r;

	/* A warning when reading (e.g. an odd pax attribute) is not worth failing the whole
	 * dataset for; when writing it is not a warning at all: libarchive reports a failed
	 * write(2) (ENOSPC, EFBIG) as ARCHIVE_WARN and goes on, leaving a hole in the file. */
	while ((r = archive_read_data_block(in, &buf, &n, &off)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		if (archive_write_data_block(out, buf, n, off) < ARCHIVE_OK)
			return -1;
		*bytes += (int64_t)n;
	}
	return r == ARCHIVE_EOF ? 0 : -1;
}

/* The message for an entry that could not be extracted: libarchive's reason (the writer's
 * if it has one), with strerror when it gives an errno. Names are escaped: they come from
 * the archive. */
static int entry_error(char *err, const char *archive, struct archive_entry *e,
		       struct archive *in, struct archive *out)
{
	struct archive *a = archive_error_string(out) ? out : in;
	const char *m = archive_error_string(a);
	int eno = archive_errno(a);
	char name[ERR_MAX / 2], why[ERR_MAX / 2];

	esc_str(name, sizeof name, archive_entry_pathname(e));
	esc_str(why, sizeof why, m ? m : "cannot extract");
	if (eno > 0)
		return err_set(err, "%s: entry '%s': %s: %s", archive, name, why, strerror(eno));
	return err_set(err, "%s: entry '%s': %s", archive, name, why);
}

/* Reads every entry of the archive on fd into the current directory. */
static int unpack(int fd, const char *archive, const extract_progress *pr, extract_result *res,
		  char *err)
{
	const int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
			  ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
	struct archive *in = archive_read_new(), *out = archive_write_disk_new();
	struct archive_entry *e;
	struct stat st;
	int64_t total;
	char msg[ERR_MAX / 2];
	int r, rc = 0;

	if (!in || !out) {
		rc = err_set(err, "%s: out of memory", archive);
		goto done;
	}
	archive_read_support_format_all(in);
	archive_read_support_filter_all(in);
	archive_write_disk_set_options(out, flags);
	total = fstat(fd, &st) == 0 ? (int64_t)st.st_size : -1;
	if (archive_read_open_fd(in, fd, 1 << 20) != ARCHIVE_OK) {
		rc = err_set(err, "%s: %s", archive, esc_str(msg, sizeof msg, archive_error_string(in)));
		goto done;
	}
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *why = check_entry(e);

		if (why) {
			char name[ERR_MAX];

			rc = err_set(err, "%s: refused entry '%s': %s", archive,
				     esc_str(name, sizeof name, archive_entry_pathname(e)), why);
			break;
		}
		if (archive_write_header(out, e) < ARCHIVE_WARN ||
		    (archive_entry_size(e) > 0 && copy_data(in, out, &res->bytes) != 0) ||
		    archive_write_finish_entry(out) < ARCHIVE_WARN) {
			rc = entry_error(err, archive, e, in, out);
			break;
		}
		res->entries++;
		if (pr && pr->fn)
			pr->fn(pr->ctx, archive_filter_bytes(in, -1), total);
	}
	if (rc == 0 && r != ARCHIVE_EOF)
		rc = err_set(err, "%s: %s", archive, esc_str(msg, sizeof msg, archive_error_string(in)));
	if (rc == 0 && archive_write_close(out) < ARCHIVE_WARN)
		rc = err_set(err, "%s: %s", archive, esc_str(msg, sizeof msg, archive_error_string(out)));
	if (rc == 0 && res->entries == 0)
		rc = err_set(err, "%s: empty archive", archive);
done:
	archive_read_free(in);
	archive_write_free(out);
	return rc;
}

/* Temporary directories are TMP_PREFIX PID.XXXXXX; the pid only says who made one. */
static const char TMP_PREFIX[] = ".petcnn-extract.";

static int join(char *out, size_t n, const char *a, const char *b)
{
	int k = snprintf(out, n, "%s/%s", a, b);

	return k < 0 || (size_t)k >= n ? -1 : 0;
}

/* Moves every top-level entry of tmp/root into dir; what it replaces goes to tmp/old. */
static int move_into_place(const char *tmp, int dirfd, extract_result *res, char *err)
{
	char root[4096], old[4096], name[ERR_MAX / 2];
	DIR *d;
	struct dirent *de;
	int rootfd, oldfd, rc = 0;

	if (join(root, sizeof root, tmp, "root") || join(old, sizeof old, tmp, "old"))
		return err_set(err, "%s: path too long", tmp);
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	oldfd = open(old, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = rootfd >= 0 ? fdopendir(dup(rootfd)) : NULL;
	if (!d || oldfd < 0) {
		rc = err_sys(err, "%s: cannot open", tmp);
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;

		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		/* n comes from the archive: escaped in messages (esc_str keeps errno). */
		if (renameat(dirfd, n, oldfd, n) != 0 && errno != ENOENT) {
			rc = err_sys(err, "%s: cannot move the old '%s' aside", tmp,
				     esc_str(name, sizeof name, n));
			break;
		}
		if (renameat(rootfd, n, dirfd, n) != 0) {
			rc = err_sys(err, "%s: cannot move '%s' into place", tmp,
				     esc_str(name, sizeof name, n));
			break;
		}
		if (res->ntop < 4) {
			size_t len = strnlen(n, sizeof res->top[0] - 1);

			memcpy(res->top[res->ntop], n, len);
			res->top[res->ntop][len] = 0;
		}
		res->ntop++;
	}
out:
	if (d)
		closedir(d);
	if (rootfd >= 0)
		close(rootfd);
	if (oldfd >= 0)
		close(oldfd);
	return rc;
}

int extract_archive(const char *archive, const char *dir, const extract_progress *progress,
		    extract_result *res, char *err)
{
	extract_result dummy;
	char tmp[4096], sub[4096];
	int fd = -1, dirfd = -1, cwd = -1, rc = -1, made = 0;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof *res);
	if ((size_t)snprintf(tmp, sizeof tmp, "%s/%s%ld.XXXXXX", dir, TMP_PREFIX, (long)getpid()) >=
	    sizeof tmp - 8)
		return err_set(err, "%s: path too long", dir);
	fd = open(archive, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, "%s: cannot open", archive);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || cwd < 0) {
		err_sys(err, "%s: cannot open", dirfd < 0 ? dir : ".");
		goto out;
	}
	if (!mkdtemp(tmp)) {
		err_sys(err, "%s: cannot create a temporary directory", dir);
		goto out;
	}
	made = 1;
	if (join(sub, sizeof sub, tmp, "old") || mkdir(sub, 0700) != 0) {
		err_sys(err, "%s: cannot create", sub);
		goto out;
	}
	if (join(sub, sizeof sub, tmp, "root") || mkdir(sub, 0755) != 0 || chdir(sub) != 0) {
		err_sys(err, "%s: cannot create", sub);
		goto out;
	}
	rc = unpack(fd, archive, progress, res, err);
	if (fchdir(cwd) != 0 && rc == 0)
		rc = err_sys(err, "cannot return to the working directory");
	if (rc == 0)
		rc = move_into_place(tmp, dirfd, res, err);
out:
	if (made) {
		if (fchdir(cwd) != 0 && rc == 0)
			rc = err_sys(err, "cannot return to the working directory");
		if (extract_remove_tree(tmp, rc == 0 ? err : NULL) != 0 && rc == 0)
			rc = -1;
	}
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	if (cwd >= 0)
		close(cwd);
	return rc;
}

int extract_clean_stale(const char *dir, char *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : err_sys(err, "%s: cannot open", dir);
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		char p[4096];

		/* Not "is its pid still alive": pids are reused, and a run killed in a container
		 * comes back as the same small pid, so its leftovers would stay for ever. */
		if (strncmp(n, TMP_PREFIX, sizeof TMP_PREFIX - 1) != 0)
			continue;
		if (join(p, sizeof p, dir, n) == 0 && extract_remove_tree(p, err) != 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}
