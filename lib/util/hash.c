/* hash: SHA-256 through OpenSSL's EVP interface.
 * The opaque struct keeps OpenSSL's headers out of every caller. */
#include "util/hash.h"

#include "util/errmsg.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

struct hash_sha256 {
	EVP_MD_CTX *ctx;
};

hash_sha256 *hash_sha256_new(void)
{
	hash_sha256 *h = malloc(sizeof *h);

	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
		return NULL;
	}
	return h;
}

void hash_sha256_update(hash_sha256 *h, const void *p, size_t n)
{
	EVP_DigestUpdate(h->ctx, p, n);
}

void hash_sha256_hex(hash_sha256 *h, char hex[HASH_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(h->ctx, md, &n);
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = 0;
}

void hash_sha256_free(hash_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void hash_buf_sha256(const void *p, size_t n, char hex[HASH_HEX])
{
	hash_sha256 *h = hash_sha256_new();

	if (!h) {
		hex[0] = 0;
		return;
	}
	hash_sha256_update(h, p, n);
	hash_sha256_hex(h, hex);
	hash_sha256_free(h);
}

int hash_file_sha256(const char *path, char hex[HASH_HEX], char *err)
{
	enum { BLOCK = 1 << 20 };
	FILE *f = fopen(path, "rb");
	unsigned char *buf = malloc(BLOCK);
	hash_sha256 *h = hash_sha256_new();
	size_t n;
	int rc = 0;

	if (!f || !buf || !h) {
		rc = f ? err_set(err, "%s: out of memory", path) : err_sys(err, "%s: cannot open", path);
		goto out;
	}
	while ((n = fread(buf, 1, BLOCK, f)) > 0)
		hash_sha256_update(h, buf, n);
	if (ferror(f))
		rc = err_sys(err, "%s: read error", path);
	else
		hash_sha256_hex(h, hex);
out:
	if (f)
		fclose(f);
	free(buf);
	hash_sha256_free(h);
	return rc;
}
