/* libFuzzer harness for the TSV list reader (pet-split writes, pet-pack reads): arbitrary
 * bytes through petset_list_read, every entry's path and label then read back. */
#include "util/errmsg.h"
#include "pets/petset.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERR_MAX];
	petset_list l;
	FILE *f;

	if (size == 0 || !(f = fmemopen((void *)data, size, "rb")))
		return 0;
	memset(&l, 0, sizeof l);
	if (petset_list_read(f, "fuzz", &l, err) == 0) {
		volatile size_t sum = 0;

		for (size_t i = 0; i < l.n; i++) {
			sum += strlen(l.e[i].path);
			if (l.e[i].label < -1 || l.e[i].label >= l.nclasses)
				__builtin_trap(); /* a label the classes do not name */
		}
		for (int64_t c = 0; c < l.nclasses; c++)
			sum += strlen(l.classes[c]);
	}
	petset_list_free(&l);
	fclose(f);
	return 0;
}
