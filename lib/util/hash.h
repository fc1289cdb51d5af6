/* hash: SHA-256 of byte streams and files, for verifying downloads and writing SHA256SUMS.
 * Backed by OpenSSL's libcrypto (already linked by libcurl): no hand-written crypto. */
#ifndef PETCNN_HASH_H
#define PETCNN_HASH_H

#include <stddef.h>

#define HASH_HEX 65 /* 64 hex digits + NUL */

typedef struct hash_sha256 hash_sha256;

/* Allocates a running hash; NULL when out of memory. Free with hash_sha256_free. */
hash_sha256 *hash_sha256_new(void);
void hash_sha256_update(hash_sha256 *h, const void *p, size_t n);
/* Writes the lowercase hex digest; the hash can not be updated afterwards. */
void hash_sha256_hex(hash_sha256 *h, char hex[HASH_HEX]);
void hash_sha256_free(hash_sha256 *h);

/* SHA-256 of a whole file (hex), streamed in 1 MiB blocks. */
int hash_file_sha256(const char *path, char hex[HASH_HEX], char *err);
/* SHA-256 of a buffer (hex). */
void hash_buf_sha256(const void *p, size_t n, char hex[HASH_HEX]);

#endif
