/* libFuzzer harness for the .npz reader: arbitrary bytes through npz_read_src (our glue over
 * libarchive's streaming zip reader), then again keeping only some members (the others
 * skipped unread, as a checkpoint loader does). */
#include "util/errmsg.h"
#include "array/npz.h"

#include "touch.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keep[] = { "a", "b/", NULL };
	char err[ERR_MAX];
	npy_src s;
	npz z;
	FILE *f;

	if (size == 0 || !(f = fmemopen((void *)data, size, "rb")))
		return 0;
	npy_src_file(&s, f);
	npz_init(&z);
	npz_read_src(&z, &s, "fuzz", err);
	for (int i = 0; i < z.n; i++)
		touch(&z.v[i].t);
	npz_free(&z);
	rewind(f);
	npy_src_file(&s, f);
	npz_read_want(&z, "fuzz", &s, npz_want_names, (void *)keep, err);
	for (int i = 0; i < z.n; i++)
		touch(&z.v[i].t);
	npz_free(&z);
	fclose(f);
	return 0;
}
