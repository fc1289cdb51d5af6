/* extract: unpack an archive of any format and compression libarchive detects into a
 * directory, safely and all-or-nothing, so a hostile or interrupted archive never writes
 * outside the directory nor leaves something there that looks complete. */
#ifndef PETCNN_EXTRACT_H
#define PETCNN_EXTRACT_H

#include <stdint.h>

typedef struct {
	int64_t entries;      /* entries extracted */
	int64_t bytes;        /* bytes of file data written */
	char top[4][64];      /* the first few top-level names moved into the directory */
	int ntop;             /* how many top-level names there were in all */
} extract_result;

/* Progress reports, for the caller to draw: fn gets the bytes of the archive file read so
 * far and its size, after each entry. */
typedef struct {
	void (*fn)(void *ctx, int64_t done, int64_t total);
	void *ctx;
} extract_progress;

/* Extracts archive into dir (which must exist): first into a fresh temporary directory
 * dir/.petcnn-extract.PID.XXXXXX, then each top-level entry is renamed into dir, replacing one
 * of the same name. Refused, and the whole run fails naming the entry: absolute paths,
 * '..' components, symbolic links whose target could leave dir, hard links to absolute or
 * '..' paths, devices, fifos and sockets. On failure nothing in dir has changed.
 * The working directory is changed during the call and restored before it returns, so
 * this is not for multi-threaded callers. progress and res may be NULL. */
int extract_archive(const char *archive, const char *dir, const extract_progress *progress,
		    extract_result *res, char *err);

/* The reason a path or link target of an entry is refused, or NULL if it is acceptable
 * (exposed for unit tests). link may be NULL; hard says whether it is a hard link. */
const char *extract_check_path(const char *name, const char *link, int hard);

/* Removes every temporary directory that extract_archive left in dir (a run killed with
 * SIGKILL leaves one). Only for a caller that keeps other runs out of dir, as pet-fetch's
 * lock does: a live run's directory goes too. 0 or -1. */
int extract_clean_stale(const char *dir, char *err);

/* Removes a directory tree (also one whose directories are read-only); 0 or -1. */
int extract_remove_tree(const char *path, char *err);

#endif
