/* libFuzzer harness for our readers: arbitrary bytes through npy_parse_header, through
 * npy_read on a memory stream until it reports the end or an error, and, when they look
 * like a zip, through npz_read_src (our glue over libarchive's streaming zip reader). */
#include "util/errmsg.h"
#include "array/npy.h"
#include "array/npz.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touches every byte so a buffer shorter than its tensor claims shows up under ASan. */
static void touch(const tensor *t)
{
	int64_t n = tensor_nbytes(t);
	volatile unsigned char sum = 0;

	for (int64_t k = 0; k < n; k++)
		sum ^= ((const unsigned char *)t->data)[k];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERR_MAX];
	tensor t;
	size_t hdr;
	FILE *f;

	if (npy_parse_header(data, size, "fuzz", &t, &hdr, err) == 0 && hdr > size)
		__builtin_trap(); /* the data offset must lie within what was parsed */
	if (size == 0)
		return 0;
	f = fmemopen((void *)data, size, "rb");
	if (!f)
		return 0;
	if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
		npy_src s;
		npz z;
		npy_src_file(&s, f);
		npz_init(&z);
		npz_read_src(&z, &s, "fuzz", err);
		for (int i = 0; i < z.n; i++)
			touch(&z.v[i].t);
		npz_free(&z);
	} else {
		for (int i = 0; i < 64 && npy_read(f, "fuzz", &t, err) == 1; i++) {
			touch(&t);
			tensor_free(&t);
		}
	}
	fclose(f);
	return 0;
}
