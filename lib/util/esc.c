/* esc: control bytes and broken UTF-8 as \xHH. See esc.h. */
#include "util/esc.h"

#include <string.h>

/* The length of the valid UTF-8 sequence at p (2 to 4), or 0 if there is none. Overlong
 * forms, surrogates, code points past U+10FFFF and the C1 controls (U+0080 to U+009F,
 * which some terminals obey) do not count as valid. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned c = p[0], cp;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
		return 0;
	return len;
}

const char *esc_str(char *out, size_t n, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t o = 0;

	if (n == 0)
		return out;
	while (*p) {
		char e[4];
		const char *piece = (const char *)p;
		size_t len = 1, take = 1;

		if (*p == '\\') {
			piece = "\\\\";
			len = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			e[0] = '\\', e[1] = 'x', e[2] = hex[*p >> 4], e[3] = hex[*p & 15];
			piece = e;
			len = 4;
		} else if (*p >= 0x80) {
			take = len = utf8_len(p);
			if (len == 0) {
				e[0] = '\\', e[1] = 'x', e[2] = hex[*p >> 4], e[3] = hex[*p & 15];
				piece = e;
				len = 4;
				take = 1;
			}
		}
		if (len >= n - o)
			break;
		memcpy(out + o, piece, len);
		o += len;
		p += take;
	}
	out[o] = 0;
	return out;
}
