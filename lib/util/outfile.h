/* outfile: atomic output. Data goes to a temporary file beside the target and is renamed
 * over it only when complete, so a failed or interrupted run never leaves a valid-looking
 * truncated file. "-" means stdout (written directly, checked on commit). */
#ifndef PETCNN_OUTFILE_H
#define PETCNN_OUTFILE_H

#include <stdio.h>

typedef struct {
	FILE *fp;      /* write here */
	char *path;    /* final name, NULL for stdout */
	char *tmp;     /* temporary name, NULL for stdout */
	int slot;      /* index in the signal-cleanup table, -1 if none */
} outfile;

/* Opens path ("-" or NULL: stdout) for writing. The temporary file is removed if the
 * process dies of SIGINT, SIGTERM, SIGHUP or SIGPIPE before commit. A program that
 * installs its own handler for these signals takes over that cleanup (outfile_abort). */
int outfile_open(outfile *o, const char *path, char *err);
/* Flushes, fsyncs, closes and renames into place; on failure removes the temporary. */
int outfile_commit(outfile *o, char *err);
/* Closes and removes the temporary; the target, if it existed, is untouched. */
void outfile_abort(outfile *o);

/* mkdir -p: creates dir and any missing parents (existing ones are fine). */
int outfile_mkdirs(const char *dir, char *err);

#endif
