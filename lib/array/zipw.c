/* zipw: stored zip members written by hand (see zipw.h). libarchive still reads every
 * archive and writes the deflated ones; this one exists for speed: its zip writer takes
 * zlib's CRC-32 (7 GB/s here) and copies each block before our O_DIRECT copy, 0.33 s of
 * a checkpoint writer's CPU per 1.2 GB, taken from training on a 2-core machine. */
#include "array/zipw.h"

#include <isa-l/crc.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"

struct zipw_member {
	char *name;
	uint32_t crc;
	int64_t size;        /* head and body: stored, so also the compressed size */
	int64_t off;         /* of its local header */
	int zip64;
};

#define MAX16 0xffffu
#define MAX32 0xffffffffu
enum {
	LOCAL = 30, CENTRAL = 46, END = 22, END64 = 56, LOCATOR = 20,
	ZIP64_ID = 0x0001, PAD_ID = 0xd935,   /* zipalign's: a u16 alignment, then zeros */
	DOS_DATE = 0x21,                      /* 1980-01-01: the same bytes whatever the clock */
	UNIX = 3 << 8,
};
#define REGULAR_0644 (0100644u << 16)

static unsigned char *put16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
	return p + 2;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
	return put16(put16(p, v & MAX16), v >> 16);
}

static unsigned char *put64(unsigned char *p, uint64_t v)
{
	return put32(put32(p, (uint32_t)v), (uint32_t)(v >> 32));
}

static int put(zipw *z, const void *p, size_t n, char *err)
{
	if (n && outfile_write(z->o, p, n, err))
		return -1;
	z->pos += (int64_t)n;
	return 0;
}

/* Names in UTF-8 say so (general purpose bit 11); ASCII ones need not. */
static uint32_t name_flags(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1u << 11;
	return 0;
}

void zipw_init(zipw *z, outfile *o, const char *path, int align, int zip64)
{
	memset(z, 0, sizeof *z);
	z->o = o;
	z->path = path;
	z->align = align;
	z->zip64 = zip64;
}

/* Bytes of padding that start a body of n bytes at a multiple of ZIPW_ALIGN when its
 * member's fixed parts end at "at" (0, or at least the 6 bytes of a padding field). */
static size_t pad_for(const zipw *z, int64_t at, int64_t n)
{
	size_t pad;

	if (!z->align || n < ZIPW_ALIGN_MIN)
		return 0;
	pad = (ZIPW_ALIGN - (size_t)(at % (int64_t)ZIPW_ALIGN)) % ZIPW_ALIGN;
	return pad && pad < 6 ? pad + ZIPW_ALIGN : pad;
}

int zipw_add(zipw *z, const char *name, const void *head, size_t hlen, const void *body,
	     int64_t n, char *err)
{
	unsigned char h[LOCAL + 20 + 6], pad[ZIPW_ALIGN + 6], *p;
	size_t nl = strlen(name), extra, npad;
	zipw_member *m;
	int64_t size = (int64_t)hlen + n;
	int big = z->zip64 || size >= (int64_t)MAX32;

	if (nl > MAX16)
		return err_set(err, "%s: member name too long", z->path);
	if (z->n == z->cap) {
		int cap = z->cap ? 2 * z->cap : 32;
		zipw_member *v = realloc(z->m, sizeof *v * (size_t)cap);

		if (!v)
			return err_set(err, "%s: out of memory", z->path);
		z->m = v, z->cap = cap;
	}
	m = &z->m[z->n];
	if (!(m->name = strdup(name)))
		return err_set(err, "%s: out of memory", z->path);
	z->n++;
	m->crc = crc32_gzip_refl(crc32_gzip_refl(0, head, hlen), body, (uint64_t)n);
	m->size = size;
	m->off = z->pos;
	m->zip64 = big;
	extra = big ? 20 : 0;
	npad = pad_for(z, z->pos + LOCAL + (int64_t)nl + (int64_t)extra + (int64_t)hlen, n);

	p = put32(h, 0x04034b50);
	p = put16(p, big ? 45 : 20);
	p = put16(p, name_flags(name));
	p = put16(p, 0);                           /* stored */
	p = put16(p, 0);                           /* 00:00:00 */
	p = put16(p, DOS_DATE);
	p = put32(p, m->crc);
	p = put32(p, big ? MAX32 : (uint32_t)size);
	p = put32(p, big ? MAX32 : (uint32_t)size);
	p = put16(p, (uint32_t)nl);
	p = put16(p, (uint32_t)(extra + npad));
	if (put(z, h, LOCAL, err) || put(z, name, nl, err))
		return -1;
	if (big) {
		p = put16(put16(h, ZIP64_ID), 16);
		p = put64(put64(p, (uint64_t)size), (uint64_t)size);
		if (put(z, h, 20, err))
			return -1;
	}
	if (npad) {
		memset(pad, 0, npad);
		put16(put16(put16(pad, PAD_ID), (uint32_t)(npad - 4)), (uint32_t)ZIPW_ALIGN);
		if (put(z, pad, npad, err))
			return -1;
	}
	return put(z, head, hlen, err) || put(z, body, (size_t)n, err) ? -1 : 0;
}

int zipw_finish(zipw *z, char *err)
{
	unsigned char h[CENTRAL + 28 > END64 + LOCATOR + END ? CENTRAL + 28 : END64 + LOCATOR + END];
	int64_t cd = z->pos, cd_size, end64;
	int big;

	for (int i = 0; i < z->n; i++) {
		const zipw_member *m = &z->m[i];
		int far = z->zip64 || m->off >= (int64_t)MAX32;
		size_t nl = strlen(m->name), extra = (m->zip64 ? 16 : 0) + (far ? 8 : 0);
		unsigned char *p = put32(h, 0x02014b50);

		extra += extra ? 4 : 0;
		p = put16(p, UNIX | (m->zip64 || far ? 45 : 20));
		p = put16(p, m->zip64 || far ? 45 : 20);
		p = put16(p, name_flags(m->name));
		p = put16(p, 0);
		p = put16(p, 0);
		p = put16(p, DOS_DATE);
		p = put32(p, m->crc);
		p = put32(p, m->zip64 ? MAX32 : (uint32_t)m->size);
		p = put32(p, m->zip64 ? MAX32 : (uint32_t)m->size);
		p = put16(p, (uint32_t)nl);
		p = put16(p, (uint32_t)extra);
		p = put16(p, 0);                   /* comment */
		p = put16(p, 0);                   /* disk */
		p = put16(p, 0);                   /* internal attributes */
		p = put32(p, REGULAR_0644);
		p = put32(p, far ? MAX32 : (uint32_t)m->off);
		if (put(z, h, CENTRAL, err) || put(z, m->name, nl, err))
			return -1;
		/* zip64's extra holds only the fields set to MAX32, in this order */
		if (extra) {
			p = put16(put16(h, ZIP64_ID), (uint32_t)(extra - 4));
			if (m->zip64)
				p = put64(put64(p, (uint64_t)m->size), (uint64_t)m->size);
			if (far)
				p = put64(p, (uint64_t)m->off);
			if (put(z, h, extra, err))
				return -1;
		}
	}
	cd_size = z->pos - cd;
	end64 = z->pos;
	big = z->zip64 || z->n >= (int)MAX16 || cd >= (int64_t)MAX32 || cd_size >= (int64_t)MAX32;
	if (big) {
		unsigned char *p = put32(h, 0x06064b50);

		p = put64(p, END64 - 12);
		p = put16(p, UNIX | 45);
		p = put16(p, 45);
		p = put32(p, 0);
		p = put32(p, 0);
		p = put64(p, (uint64_t)z->n);
		p = put64(p, (uint64_t)z->n);
		p = put64(p, (uint64_t)cd_size);
		p = put64(p, (uint64_t)cd);
		p = put32(p, 0x07064b50);
		p = put32(p, 0);
		p = put64(p, (uint64_t)end64);
		put32(p, 1);
		if (put(z, h, END64 + LOCATOR, err))
			return -1;
	}
	{
		unsigned char *p = put32(h, 0x06054b50);

		p = put16(p, 0);
		p = put16(p, 0);
		p = put16(p, big ? MAX16 : (uint32_t)z->n);
		p = put16(p, big ? MAX16 : (uint32_t)z->n);
		p = put32(p, big ? MAX32 : (uint32_t)cd_size);
		p = put32(p, big ? MAX32 : (uint32_t)cd);
		put16(p, 0);
	}
	return put(z, h, END, err);
}

void zipw_free(zipw *z)
{
	for (int i = 0; i < z->n; i++)
		free(z->m[i].name);
	free(z->m);
	z->m = NULL;
	z->n = z->cap = 0;
}
