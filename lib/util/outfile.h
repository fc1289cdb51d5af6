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
	unsigned char *dbuf; /* outfile_direct's aligned staging (OUTFILE_DIRECT_BUF bytes), or NULL */
	size_t dlen;   /* bytes staged in dbuf */
} outfile;

/* Bytes outfile_direct stages before each write: a multiple of any block size O_DIRECT asks. */
#define OUTFILE_DIRECT_BUF ((size_t)4 << 20)
/* A buffer at this alignment, written at a file offset of it, goes to the disk uncopied. */
#define OUTFILE_DIRECT_ALIGN ((size_t)4096)

/* Opens path ("-" or NULL: stdout) for writing; a symlink to a regular file replaces the
 * file and keeps the link; a directory is an error. A temporary file is removed if the
 * process dies of SIGINT, SIGTERM, SIGHUP or SIGPIPE before commit. A program that
 * installs its own handler for these signals takes over that cleanup (outfile_abort). */
int outfile_open(outfile *o, const char *path, char *err);
/* Flushes, fsyncs, closes and renames into place; on failure removes the temporary. */
int outfile_commit(outfile *o, char *err);
/* For a large output: its bytes go to the disk around the page cache (O_DIRECT), written
 * from here on with outfile_write only. Copying a 1.2 GB checkpoint into the page cache
 * took 1.3 s of system CPU (measured on a KVM guest, ext4), written direct 0.13 s: CPU a
 * checkpoint written during training takes from the training. A no-op (buffered writes)
 * where the output is not a regular file or its file system refuses O_DIRECT. */
void outfile_direct(outfile *o);
/* Writes n bytes of p (through o->fp unless outfile_direct took effect); -1 with
 * "PATH: write error: ..." in err. */
int outfile_write(outfile *o, const void *p, size_t n, char *err);
/* Closes and removes the temporary; the target, if it existed, is untouched. */
void outfile_abort(outfile *o);

/* mkdir -p: creates dir and any missing parents (existing ones are fine). */
int outfile_mkdirs(const char *dir, char *err);

#endif
