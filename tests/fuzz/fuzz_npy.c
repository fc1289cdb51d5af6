/* libFuzzer harness for the .npy reader: arbitrary bytes through npy_parse_header, then
 * through npy_read on a memory stream until it reports the end or an error. */
#include "util/errmsg.h"
#include "array/npy.h"

#include "touch.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERR_MAX];
	tensor t;
	size_t hdr;
	FILE *f;

	if (npy_parse_header(data, size, "fuzz", &t, &hdr, err) == 0 && hdr > size)
		__builtin_trap(); /* the data offset must lie within what was parsed */
	if (size == 0 || !(f = fmemopen((void *)data, size, "rb")))
		return 0;
	for (int i = 0; i < 64 && npy_read(f, "fuzz", &t, err) == 1; i++) {
		touch(&t);
		tensor_free(&t);
	}
	fclose(f);
	return 0;
}
