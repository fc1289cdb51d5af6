/* libFuzzer harness for the .npy reader: arbitrary bytes through npy_parse_header, and
 * through npy_read on a memory stream until it reports the end or an error. */
#include "err.h"
#include "npy.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	for (int i = 0; i < 64; i++) {
		int rc = npy_read(f, "fuzz", &t, err);
		if (rc != 1)
			break;
		/* Touch every byte so a short buffer shows up under ASan. */
		int64_t n = tensor_nbytes(&t);
		volatile unsigned char sum = 0;
		for (int64_t k = 0; k < n; k++)
			sum ^= ((unsigned char *)t.data)[k];
		tensor_free(&t);
	}
	fclose(f);
	return 0;
}
