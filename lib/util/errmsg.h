/* errmsg: how lib/ reports failure without printing or exiting.
 * Functions return 0 or -1 and fill a caller-owned char[ERR_MAX] with "file: what went wrong". */
#ifndef PETCNN_ERRMSG_H
#define PETCNN_ERRMSG_H

#define ERR_MAX 512

/* Formats into err (may be NULL); returns -1 so callers can `return err_set(...)`. */
int err_set(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like err_set, with ": strerror(errno)" appended (errno captured on entry). */
int err_sys(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
