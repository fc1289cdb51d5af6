/* outfile: atomic output. Data goes to an anonymous file (O_TMPFILE; else a hidden temporary)
 * beside the target and is named over it only when complete, so a failed, interrupted or
 * killed run never leaves a valid-looking truncated file, nor a stray temporary. "-" means
 * stdout; a device, FIFO or socket is written in place (checked on commit). */
#ifndef PETCNN_OUTFILE_H
#define PETCNN_OUTFILE_H

#include <stdio.h>

typedef struct {
	FILE *fp;      /* write here */
	char *path;    /* final name, NULL for stdout */
	char *tmp;     /* temporary name while one exists, else NULL */
	int slot;      /* index in the signal-cleanup table, -1 if none */
	int anon;      /* fp is an O_TMPFILE file, named only at commit */
	int inplace;   /* path is not a regular file: written directly */
} outfile;

/* Opens path ("-" or NULL: stdout) for writing; a symlink to a regular file replaces the
 * file and keeps the link; a directory is an error. A temporary file is removed if the
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
