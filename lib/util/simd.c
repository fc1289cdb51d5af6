/* simd: the AVX2 choice of util and img, following PETCNN_ISA=generic (see simd.h). */
#include "util/simd.h"

#include <stdlib.h>
#include <string.h>

int simd_avx2(void)
{
	const char *s = getenv("PETCNN_ISA");

	if (s && !strcmp(s, "generic"))
		return 0;
#if defined(__x86_64__) && defined(__GNUC__)
	return __builtin_cpu_supports("avx2");
#else
	return 0;
#endif
}
