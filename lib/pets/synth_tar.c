/* synth_tar: reproducible tar archives for pet-synth. See synth_tar.h. */
#include "pets/synth_tar.h"

#include "util/errmsg.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>

/* Fixed metadata so the same seed gives the same bytes: 2012-06-06, the set's release. */
enum { TAR_MTIME = 1338984000 };

int synth_tar_open(synth_tar *t, const char *path, int gzip, char *err)
{
	memset(t, 0, sizeof *t);
	t->path = path;
	if (outfile_open(&t->of, path, err))
		return -1;
	t->a = archive_write_new();
	if (!t->a) {
		outfile_abort(&t->of);
		return err_set(err, "%s: out of memory", path);
	}
	if (archive_write_set_format_pax_restricted(t->a) != ARCHIVE_OK ||
	    (gzip && (archive_write_add_filter_gzip(t->a) != ARCHIVE_OK ||
		      archive_write_set_options(t->a, "gzip:!timestamp") != ARCHIVE_OK ||
		      /* no zero padding after the gzip stream, as gzip(1) writes it */
		      archive_write_set_bytes_in_last_block(t->a, 1) != ARCHIVE_OK)) ||
	    archive_write_open_FILE(t->a, t->of.fp) != ARCHIVE_OK) {
		err_set(err, "%s: %s", path, archive_error_string(t->a));
		archive_write_free(t->a);
		outfile_abort(&t->of);
		return -1;
	}
	t->open = 1;
	return 0;
}

int synth_tar_add(synth_tar *t, const char *name, const void *p, size_t n, char *err)
{
	struct archive_entry *e = archive_entry_new();
	int dir = name[strlen(name) - 1] == '/';
	const unsigned char *q = p;

	if (!e)
		return err_set(err, "%s: out of memory", t->path);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(e, dir ? 0755 : 0644);
	archive_entry_set_size(e, dir ? 0 : (la_int64_t)n);
	archive_entry_set_mtime(e, TAR_MTIME, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
	if (archive_write_header(t->a, e) != ARCHIVE_OK) {
		archive_entry_free(e);
		return err_set(err, "%s: %s: %s", t->path, name, archive_error_string(t->a));
	}
	archive_entry_free(e);
	while (!dir && n > 0) {
		la_ssize_t k = archive_write_data(t->a, q, n);

		if (k <= 0)
			return err_set(err, "%s: %s: %s", t->path, name, archive_error_string(t->a));
		q += k;
		n -= (size_t)k;
	}
	return 0;
}

int synth_tar_finish(synth_tar *t, char *err)
{
	int rc = archive_write_close(t->a);

	if (rc != ARCHIVE_OK)
		err_set(err, "%s: %s", t->path, archive_error_string(t->a));
	archive_write_free(t->a);
	t->a = NULL;
	return rc == ARCHIVE_OK ? 0 : -1;
}

void synth_tar_abort(synth_tar *t)
{
	if (!t->open)
		return;
	if (t->a)
		archive_write_free(t->a);
	t->a = NULL;
	outfile_abort(&t->of);
	t->open = 0;
}

int synth_tar_commit(synth_tar *t, char *err)
{
	/* committed or not, the outfile is closed: nothing left for synth_tar_abort */
	t->open = 0;
	return outfile_commit(&t->of, err);
}
